/* store.c - the store of record over RocksDB's C API (see store.h).
 *
 * One database, the default column family, LZ4-compressed block-based tables with a
 * 64 MiB LRU block cache and a 10-bit bloom filter, partitioned with the index (so
 * that looking up an account that was never stored costs no disk read). Point reads use pinnable slices and copy
 * into the caller's vg_buf_t; batches are RocksDB write batches; prefix scans use an
 * iterator with an upper bound just past the prefix.
 */
#include "engine/store.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rules/errors.h"

#define BLOCK_CACHE_BYTES ((size_t)64 << 20)

struct vg_store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *table;
    rocksdb_cache_t *cache;
    rocksdb_filterpolicy_t *bloom;   /* owned by `table` once set */
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo;
    rocksdb_writeoptions_t *wo_sync;
    char *dir;
    atomic_int broken;   /* a write failed: resume RocksDB before the next one */
};

struct vg_batch {
    rocksdb_writebatch_t *wb;
};

static rocksdb_env_t *the_env;

static void make_env(void) {
    the_env = rocksdb_create_default_env();
    rocksdb_env_lower_thread_pool_cpu_priority(the_env);
    rocksdb_env_lower_high_priority_thread_pool_cpu_priority(the_env);
}

static void set_err(char *errbuf, size_t errlen, const char *fmt, const char *a,
                    const char *b) {
    if (errbuf && errlen) snprintf(errbuf, errlen, fmt, a, b);
}

/* RocksDB's default environment (one per process: its thread pools are shared by every
 * store) with its flush and compaction threads at nice 19. */
static rocksdb_env_t *background_env(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_env);
    return the_env;
}

vg_store_t *vg_store_open(const char *dir, char *errbuf, size_t errlen) {
    char *err = NULL;
    vg_store_t *s = calloc(1, sizeof *s);
    if (!s) goto nomem;
    s->dir = strdup(dir);
    s->opts = rocksdb_options_create();
    s->table = rocksdb_block_based_options_create();
    s->cache = rocksdb_cache_create_lru(BLOCK_CACHE_BYTES);
    s->ro = rocksdb_readoptions_create();
    s->wo = rocksdb_writeoptions_create();
    s->wo_sync = rocksdb_writeoptions_create();
    if (!s->dir || !s->opts || !s->table || !s->cache || !s->ro || !s->wo || !s->wo_sync)
        goto nomem;

    rocksdb_block_based_options_set_block_cache(s->table, s->cache);
    s->bloom = rocksdb_filterpolicy_create_bloom(10);
    rocksdb_block_based_options_set_filter_policy(s->table, s->bloom);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(s->table, 1);
    /* index and filter in partitions of ~4 KB, with only their top level pinned: a file
     * of a million accounts has a 1.2 MB filter, more than a shard of the 64 MiB cache
     * (1 MiB), so it was read from the file again at every lookup that missed memory:
     * `vigil replay --mem-budget 256M` over 700k accounts fell from 28k to 1.3k events/s
     * (a scale tester) */
    rocksdb_block_based_options_set_index_type(
        s->table, rocksdb_block_based_table_index_type_two_level_index_search);
    rocksdb_block_based_options_set_partition_filters(s->table, 1);
    rocksdb_block_based_options_set_pin_top_level_index_and_filter(s->table, 1);
    rocksdb_options_set_block_based_table_factory(s->opts, s->table);
    rocksdb_options_set_create_if_missing(s->opts, 1);
    rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
    rocksdb_options_set_max_open_files(s->opts, 512);
    rocksdb_options_set_keep_log_file_num(s->opts, 3);
    /* every change of files writes a new MANIFEST (a snapshot of the live files, a few
     * KB), so that an erasure's purge leaves no MANIFEST naming an erased key as a
     * file's smallest or largest (vg_rocksdb_purge) */
    rocksdb_options_set_max_manifest_file_size(s->opts, 0);
    /* RocksDB's own LOG file only for fatal errors: Debian's librocksdb is built with
     * assertions, and once an append to LOG has failed (a full disk) the next message
     * aborts the process (WritableFileWriter: "Writer has previous error" asserts). The
     * error handler writes such messages when a WAL write fails, so at INFO a full disk
     * killed vigil instead of failing the write; at FATAL it fails the checkpoint with
     * "No space left on device" and vigil says so (tests/integration/test_disk_full.sh). */
    rocksdb_options_set_info_log_level(s->opts, 4 /* FATAL_LEVEL */);
    rocksdb_writeoptions_set_sync(s->wo_sync, 1);
    /* flushes and compactions are background work: at the lowest CPU priority, so that
     * they take the cores only when the threads that answer (HTTP, Kafka) leave them */
    rocksdb_options_set_env(s->opts, background_env());

    s->db = rocksdb_open(s->opts, dir, &err);
    if (!s->db) {
        if (err && (strstr(err, "lock") || strstr(err, "LOCK")))
            set_err(errbuf, errlen,
                    "state directory %s is in use by another process (its LOCK file is "
                    "held): %s", dir, err);
        else
            set_err(errbuf, errlen, "cannot open state directory %s: %s", dir,
                    err ? err : "unknown error");
        rocksdb_free(err);
        vg_store_close(s);
        return NULL;
    }
    return s;

nomem:
    set_err(errbuf, errlen, "cannot open state directory %s: %s", dir, "out of memory");
    vg_store_close(s);
    return NULL;
}

void vg_store_close(vg_store_t *s) {
    if (!s) return;
    if (s->db) rocksdb_close(s->db);
    if (s->opts) rocksdb_options_destroy(s->opts);
    if (s->table) rocksdb_block_based_options_destroy(s->table);  /* frees bloom */
    if (s->cache) rocksdb_cache_destroy(s->cache);
    if (s->ro) rocksdb_readoptions_destroy(s->ro);
    if (s->wo) rocksdb_writeoptions_destroy(s->wo);
    if (s->wo_sync) rocksdb_writeoptions_destroy(s->wo_sync);
    free(s->dir);
    free(s);
}

const char *vg_store_path(const vg_store_t *s) { return s->dir; }

/* RocksDB counts every key comparison in a thread-local perf context by default
 * (kEnableCount): ~10% of a checkpoint write's CPU in the memtable insert, through
 * __tls_get_addr. The level is per thread (a plain thread-local store), so it is set
 * by every call that reaches the memtable or the tables. */
static inline void no_perf_counts(void) { rocksdb_set_perf_level(rocksdb_disable); }

int vg_store_get(vg_store_t *s, const void *key, size_t klen, vg_buf_t *out) {
    char *err = NULL;
    no_perf_counts();
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(s->db, s->ro, key, klen, &err);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    if (!ps) return VG_ENOTFOUND;
    size_t vl = 0;
    const char *v = rocksdb_pinnableslice_value(ps, &vl);
    vg_buf_clear(out);
    int rc = vg_buf_append(out, v, vl);
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

vg_batch_t *vg_batch_new(void) {
    vg_batch_t *b = malloc(sizeof *b);
    if (!b) return NULL;
    b->wb = rocksdb_writebatch_create();
    if (!b->wb) {
        free(b);
        return NULL;
    }
    return b;
}

void vg_batch_free(vg_batch_t *b) {
    if (!b) return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void vg_batch_clear(vg_batch_t *b) { rocksdb_writebatch_clear(b->wb); }

int vg_batch_count(const vg_batch_t *b) {
    return rocksdb_writebatch_count((rocksdb_writebatch_t *)b->wb);
}

void vg_batch_put(vg_batch_t *b, const void *k, size_t kl, const void *v, size_t vl) {
    rocksdb_writebatch_put(b->wb, k, kl, v, vl);
}

void vg_batch_delete(vg_batch_t *b, const void *k, size_t kl) {
    rocksdb_writebatch_delete(b->wb, k, kl);
}

typedef struct {
    vg_batch_op_cb cb;
    void *ctx;
} iter_t;

static void iter_put(void *st, const char *k, size_t kl, const char *v, size_t vl) {
    iter_t *it = st;
    it->cb(it->ctx, k, kl, v ? v : "", vl);
}

static void iter_del(void *st, const char *k, size_t kl) {
    iter_t *it = st;
    it->cb(it->ctx, k, kl, NULL, 0);
}

void vg_batch_iterate(const vg_batch_t *b, vg_batch_op_cb cb, void *ctx) {
    iter_t it = {cb, ctx};
    rocksdb_writebatch_iterate(b->wb, &it, iter_put, iter_del);
}

int vg_store_write(vg_store_t *s, vg_batch_t *b, int sync, char *errbuf, size_t errlen) {
    char *err = NULL;
    no_perf_counts();
    if (atomic_load(&s->broken)) {
        /* RocksDB refuses every write after a failed one (a full disk) until resumed,
         * even once there is room again: try that first */
        char why[512];
        if (vg_rocksdb_resume(s->db, why, sizeof why) != 0) {
            set_err(errbuf, errlen, "cannot write to state directory %s: %s", s->dir, why);
            return VG_ESTORE;
        }
        atomic_store(&s->broken, 0);
    }
    rocksdb_write(s->db, sync ? s->wo_sync : s->wo, b->wb, &err);
    if (err) {
        atomic_store(&s->broken, 1);
        set_err(errbuf, errlen, "cannot write to state directory %s: %s", s->dir, err);
        rocksdb_free(err);
        return VG_ESTORE;
    }
    return 0;
}

/* The smallest key greater than every key starting with p[0..n): p with its last
 * non-0xff byte incremented and the rest cut. Returns its length, 0 when none. */
static size_t prefix_end(const unsigned char *p, size_t n, unsigned char *out) {
    while (n > 0 && p[n - 1] == 0xff) n--;
    if (n == 0) return 0;
    memcpy(out, p, n);
    out[n - 1]++;
    return n;
}

void vg_key_range_prefix(vg_key_range_t *r, const void *p, size_t n, unsigned char *out) {
    size_t e = prefix_end(p, n, out);
    *r = (vg_key_range_t){p, n, e ? out : NULL, e};
}

rocksdb_t *vg_store_rocksdb(vg_store_t *s) { return s->db; }

int vg_store_purge(vg_store_t *s, const vg_key_range_t *r, int n, char *errbuf,
                   size_t errlen) {
    char why[512];
    if (vg_rocksdb_purge(s->db, r, n, why, sizeof why) != 0) {
        set_err(errbuf, errlen, "state directory %s: %s", s->dir, why);
        return VG_ESTORE;
    }
    return 0;
}

int vg_store_purge_account(vg_store_t *s, const char *account, size_t len, char *errbuf,
                           size_t errlen) {
    if (len > UINT32_MAX - 6) {
        set_err(errbuf, errlen, "state directory %s: %s", s->dir, "account too long");
        return VG_EINVAL;
    }
    unsigned char *k = malloc(3 * (len + 6) * 2);
    if (!k) {
        set_err(errbuf, errlen, "state directory %s: %s", s->dir, "out of memory");
        return VG_ENOMEM;
    }
    vg_key_range_t r[3];
    static const char kinds[3] = {'a', 'd', 'w'};
    for (int i = 0; i < 3; i++) {
        unsigned char *p = k + (size_t)i * 2 * (len + 6), *e = p + len + 6;
        size_t n = 0;
        p[n++] = (unsigned char)kinds[i];
        p[n++] = '/';
        if (i > 0)   /* u32be name length */
            for (int j = 0; j < 4; j++) p[n++] = (unsigned char)((uint64_t)len >> (24 - 8 * j));
        memcpy(p + n, account, len);
        vg_key_range_prefix(&r[i], p, n + len, e);
    }
    int rc = vg_store_purge(s, r, 3, errbuf, errlen);
    free(k);
    return rc;
}

int vg_store_scan(vg_store_t *s, const void *prefix, size_t plen, vg_store_scan_cb cb,
                  void *ctx) {
    no_perf_counts();
    unsigned char stackbuf[256];
    unsigned char *end = plen <= sizeof stackbuf ? stackbuf : malloc(plen);
    if (!end) return VG_ENOMEM;
    size_t elen = prefix_end(prefix, plen, end);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (elen) rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)end, elen);
    rocksdb_iterator_t *it = rocksdb_create_iterator(s->db, ro);
    int rc = 0;
    if (plen) rocksdb_iter_seek(it, prefix, plen);
    else rocksdb_iter_seek_to_first(it);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0) break;
        const char *v = rocksdb_iter_value(it, &vl);
        rc = cb(ctx, k, kl, v, vl);
        if (rc) break;
    }
    if (rc == 0) {
        char *err = NULL;
        rocksdb_iter_get_error(it, &err);
        if (err) {
            rocksdb_free(err);
            rc = VG_ESTORE;
        }
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (end != stackbuf) free(end);
    return rc;
}
