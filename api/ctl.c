/* ctl.c - the control store on RocksDB's C API (see ctl.h).
 *
 * Write-behind (vg_ctl_write_later): the operations are appended to a pending batch under
 * a mutex and a writer thread writes whatever is pending as one RocksDB write, so that
 * while it writes one batch the next fills up (group commit); woken by the first record
 * of a batch, it lets others gather for 1 ms (unless someone waits). Every other call first
 * waits until everything enqueued before it is written, so that readers see the writes
 * that came before them. At most PEND_MAX bytes wait; a writer past that waits too.
 */
#include "api/ctl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "engine/store.h"
#include "rules/errors.h"

#define PEND_MAX (16u << 20)
#define GATHER_NS 1000000L      /* how long the writer lets records gather */

struct vg_ctl {
    atomic_int broken;   /* a write failed: resume RocksDB before the next one */
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_readoptions_t *ro;
    rocksdb_writeoptions_t *wo;
    pthread_mutex_t mu;
    pthread_cond_t work, done_cv;
    pthread_t th;
    int running, stop;
    int hurry;                  /* someone waits for the pending records: write now */
    rocksdb_writebatch_t *pend, *spare;
    vg_buf_t trims, trims_spare; /* trim_later requests: u32 keep, u32 plen, prefix */
    uint64_t enq, done;         /* write_later calls enqueued / written (or failed) */
    uint64_t failed;
    uint64_t fail_run;          /* writes failed in a row (logged: the first, then once a minute) */
    int64_t fail_logged_ms;
    uint64_t trim_failed;       /* trims that failed (the first logged) */
};

static int64_t mono_ms_(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* rocksdb_write, but first resuming RocksDB after a failed write (a full disk): it
 * refuses every write until then, even once there is room again (engine/store.h). */
static void ctl_rocks_write(vg_ctl_t *c, rocksdb_writebatch_t *b, char **err) {
    if (atomic_load(&c->broken)) {
        char why[512];
        if (vg_rocksdb_resume(c->db, why, sizeof(why)) != 0) {
            *err = strdup(why);
            if (!*err) *err = strdup("out of memory");
            return;
        }
        atomic_store(&c->broken, 0);
    }
    rocksdb_write(c->db, c->wo, b, err);
    if (*err) atomic_store(&c->broken, 1);
}

#define TRIM_MAX 64   /* keys deleted by one trim at most (the rest by the next) */

/* The writer's trims (their puts are written): deletes, in one write, the keys of each
 * prefix past its newest `keep`. */
static void run_trims(vg_ctl_t *c, const vg_buf_t *q) {
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    /* one iterator for all (making one costs more than a seek) */
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ro);
    for (size_t off = 0; off + 8 <= q->len;) {
        uint32_t keep, plen;
        memcpy(&keep, q->p + off, 4);
        memcpy(&plen, q->p + off + 4, 4);
        const char *prefix = q->p + off + 8;
        uint32_t seen = 0;   /* keys of the prefix so far: the first `keep` stay */
        for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it) &&
                                                  seen < keep + TRIM_MAX;
             rocksdb_iter_next(it), seen++) {
            size_t kl;
            const char *k = rocksdb_iter_key(it, &kl);
            if (kl < plen || memcmp(k, prefix, plen) != 0) break;
            if (seen >= keep) rocksdb_writebatch_delete(b, k, kl);
        }
        off += 8 + plen;
    }
    rocksdb_iter_destroy(it);
    /* while writes fail (a full disk) trims wait: the next write resumes the store, and
     * a trim leaves what it did not delete for the next one (a trim per write logged
     * "trim failed" many times a second) */
    if (rocksdb_writebatch_count(b) > 0 && !atomic_load(&c->broken)) {
        char *err = NULL;
        ctl_rocks_write(c, b, &err);
        if (err) {
            if (c->trim_failed++ == 0)
                fprintf(stderr, "vigil serve: control store trim failed: %s (trims wait for the "
                        "next successful write)\n", err);
            rocksdb_free(err);
        }
    }
    rocksdb_writebatch_destroy(b);
}

/* The writer (holding c->mu): moves the enqueued trims to trims_spare, its own. */
static void take_trims(vg_ctl_t *c) {
    vg_buf_t q = c->trims;
    c->trims = c->trims_spare;
    c->trims_spare = q;
}

/* The writer (holding c->mu, released meanwhile): runs the trims it took. */
static void run_taken_trims(vg_ctl_t *c) {
    if (!c->trims_spare.len) return;
    pthread_mutex_unlock(&c->mu);
    run_trims(c, &c->trims_spare);
    vg_buf_clear(&c->trims_spare);
    pthread_mutex_lock(&c->mu);
}

static void *writer_main(void *arg) {
    vg_ctl_t *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && c->done == c->enq && c->trims.len == 0)
            pthread_cond_wait(&c->work, &c->mu);
        if (c->trims.len && c->done == c->enq) {   /* their puts are all written */
            take_trims(c);
            run_taken_trims(c);
            continue;
        }
        if (c->done == c->enq) break;   /* stopping, nothing left */
        if (!c->stop && !c->hurry) {
            /* let a few more come: one write for many records (a reader waiting for
             * them wakes this thread at once) */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += GATHER_NS;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            while (!c->stop && !c->hurry &&
                   pthread_cond_timedwait(&c->work, &c->mu, &until) == 0) {
            }
        }
        c->hurry = 0;
        rocksdb_writebatch_t *b = c->pend;
        c->pend = c->spare;
        c->spare = b;
        uint64_t upto = c->enq;
        take_trims(c);   /* enqueued so far: their puts are in b or written before */
        pthread_cond_broadcast(&c->done_cv);   /* room again for waiting writers */
        pthread_mutex_unlock(&c->mu);
        char *err = NULL;
        ctl_rocks_write(c, b, &err);
        rocksdb_writebatch_clear(b);
        pthread_mutex_lock(&c->mu);
        if (err) {
            c->failed++;
            int64_t now = mono_ms_();
            if (c->fail_run++ == 0 || now - c->fail_logged_ms >= 60000) {
                fprintf(stderr, "vigil serve: control store write failed (%llu in a row; "
                        "the alerts, decisions and audit entries of these writes are not kept; "
                        "the next write tries again): %s\n", (unsigned long long)c->fail_run, err);
                c->fail_logged_ms = now;
            }
            rocksdb_free(err);
        } else if (c->fail_run) {
            fprintf(stderr, "vigil serve: control store written again after %llu failed "
                    "writes\n", (unsigned long long)c->fail_run);
            c->fail_run = 0;
        }
        c->done = upto;
        pthread_cond_broadcast(&c->done_cv);
        run_taken_trims(c);   /* after the readers are released */
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Waits until every write_later call made before is written. */
static void drain(vg_ctl_t *c) {
    if (!c->running) return;
    pthread_mutex_lock(&c->mu);
    uint64_t want = c->enq;
    if (c->done < want) {
        c->hurry = 1;
        pthread_cond_signal(&c->work);
    }
    while (c->done < want) pthread_cond_wait(&c->done_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void vg_be64(unsigned char out[8], uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

size_t vg_ctl_version_key(unsigned char *out, const char *name, int64_t version) {
    size_t nl = strlen(name);
    if (nl == 0 || nl > 64) return 0;
    out[0] = 'V';
    out[1] = '/';
    memcpy(out + 2, name, nl);
    out[2 + nl] = 0;
    vg_be64(out + 3 + nl, (uint64_t)version);
    return 3 + nl + 8;
}

uint64_t vg_rd_be64(const unsigned char in[8]) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | in[i];
    return v;
}

vg_ctl_t *vg_ctl_open(const char *dir, char *errbuf, size_t errlen) {
    vg_ctl_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->work, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    c->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(c->opts, 1);
    rocksdb_options_set_keep_log_file_num(c->opts, 2);
    rocksdb_options_set_info_log_level(c->opts, 4 /* FATAL: as engine/store.c, a full disk
                                                      must fail writes, not abort */);
    rocksdb_options_set_max_open_files(c->opts, 64);
    /* a new MANIFEST at each change of files, for an erasure's purge (vg_ctl_purge) */
    rocksdb_options_set_max_manifest_file_size(c->opts, 0);
    c->ro = rocksdb_readoptions_create();
    c->wo = rocksdb_writeoptions_create();
    char *err = NULL;
    c->db = rocksdb_open(c->opts, dir, &err);
    if (!c->db) {
        snprintf(errbuf, errlen, "%s", err ? err : "cannot open");
        rocksdb_free(err);
        vg_ctl_close(c);
        return NULL;
    }
    c->pend = rocksdb_writebatch_create();
    c->spare = rocksdb_writebatch_create();
    /* without the thread, write_later writes at once */
    c->running = pthread_create(&c->th, NULL, writer_main, c) == 0;
    return c;
}

void vg_ctl_close(vg_ctl_t *c) {
    if (!c) return;
    if (c->running) {   /* what is pending is written first */
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->work);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->th, NULL);
        c->running = 0;
    }
    vg_buf_deinit(&c->trims);
    vg_buf_deinit(&c->trims_spare);
    if (c->pend) rocksdb_writebatch_destroy(c->pend);
    if (c->spare) rocksdb_writebatch_destroy(c->spare);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->done_cv);
    if (c->db) rocksdb_close(c->db);
    if (c->opts) rocksdb_options_destroy(c->opts);
    if (c->ro) rocksdb_readoptions_destroy(c->ro);
    if (c->wo) rocksdb_writeoptions_destroy(c->wo);
    free(c);
}

int vg_ctl_get(vg_ctl_t *c, const void *key, size_t klen, vg_buf_t *out) {
    drain(c);
    char *err = NULL;
    size_t vl = 0;
    char *v = rocksdb_get(c->db, c->ro, key, klen, &vl, &err);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    if (!v) return VG_ENOTFOUND;
    vg_buf_clear(out);
    int rc = vg_buf_append(out, v, vl);
    rocksdb_free(v);
    return rc;
}

static void add_ops(rocksdb_writebatch_t *b, const vg_ctl_op_t *ops, int n) {
    for (int i = 0; i < n; i++) {
        if (ops[i].val) rocksdb_writebatch_put(b, ops[i].key, ops[i].klen, ops[i].val, ops[i].vlen);
        else rocksdb_writebatch_delete(b, ops[i].key, ops[i].klen);
    }
}

void vg_ctl_write_later(vg_ctl_t *c, const vg_ctl_op_t *ops, int n) {
    if (!c->running) {
        vg_ctl_write(c, ops, n);
        return;
    }
    pthread_mutex_lock(&c->mu);
    size_t sz;
    while (rocksdb_writebatch_data(c->pend, &sz), sz > PEND_MAX) {
        c->hurry = 1;
        pthread_cond_signal(&c->work);
        pthread_cond_wait(&c->done_cv, &c->mu);
    }
    add_ops(c->pend, ops, n);
    if (c->enq++ == c->done) pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->mu);
}

void vg_ctl_trim_later(vg_ctl_t *c, const void *prefix, size_t plen, uint32_t keep) {
    if (plen > UINT32_MAX) return;
    uint32_t h[2] = {keep, (uint32_t)plen};
    if (!c->running) {
        vg_buf_t q;
        vg_buf_init(&q);
        if (!vg_buf_append(&q, h, sizeof h) && !vg_buf_append(&q, prefix, plen))
            run_trims(c, &q);
        vg_buf_deinit(&q);
        return;
    }
    pthread_mutex_lock(&c->mu);
    size_t mark = c->trims.len;
    if (c->trims.len < PEND_MAX &&
        (vg_buf_append(&c->trims, h, sizeof h) || vg_buf_append(&c->trims, prefix, plen)))
        c->trims.len = mark;   /* out of memory: this trim is skipped (a later one does it) */
    if (c->trims.len > mark) pthread_cond_signal(&c->work);
    pthread_mutex_unlock(&c->mu);
}

uint64_t vg_ctl_failed_writes(vg_ctl_t *c) {
    pthread_mutex_lock(&c->mu);
    uint64_t f = c->failed;
    pthread_mutex_unlock(&c->mu);
    return f;
}

int vg_ctl_write(vg_ctl_t *c, const vg_ctl_op_t *ops, int n) {
    drain(c);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    add_ops(b, ops, n);
    char *err = NULL;
    ctl_rocks_write(c, b, &err);
    rocksdb_writebatch_destroy(b);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    return 0;
}

int vg_ctl_scan(vg_ctl_t *c, const void *prefix, size_t plen, const void *from, size_t flen,
                vg_ctl_scan_cb cb, void *ctx) {
    drain(c);
    return vg_ctl_scan_written(c, prefix, plen, from, flen, cb, ctx);
}

int vg_ctl_scan_written(vg_ctl_t *c, const void *prefix, size_t plen, const void *from,
                        size_t flen, vg_ctl_scan_cb cb, void *ctx) {
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ro);
    if (from && flen >= plen) rocksdb_iter_seek(it, from, flen);
    else rocksdb_iter_seek(it, prefix, plen);
    int rc = 0;
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0) break;
        const char *v = rocksdb_iter_value(it, &vl);
        rc = cb(ctx, k, kl, v, vl);
        if (rc) break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    return rc;
}

int vg_ctl_purge(vg_ctl_t *c, const vg_key_range_t *r, int n, char *errbuf, size_t errlen) {
    drain(c);   /* the deletes enqueued before are written */
    return vg_rocksdb_purge(c->db, r, n, errbuf, errlen);
}

void vg_ctl_span_init(vg_ctl_span_t *s) {
    vg_buf_init(&s->first);
    vg_buf_init(&s->last);
    s->n = s->oom = 0;
}

void vg_ctl_span_add(vg_ctl_span_t *s, const void *k, size_t kl) {
    if (s->n == 0 && vg_buf_append(&s->first, k, kl)) s->oom = 1;
    vg_buf_clear(&s->last);
    if (vg_buf_append(&s->last, k, kl) || vg_buf_putc(&s->last, 0)) s->oom = 1;
    s->n++;
}

void vg_ctl_span_deinit(vg_ctl_span_t *s) {
    vg_buf_deinit(&s->first);
    vg_buf_deinit(&s->last);
}

int vg_ctl_purge_account(vg_ctl_t *c, const char *acct, size_t al, const vg_ctl_span_t *alerts,
                         char *errbuf, size_t errlen) {
    unsigned char *pre = malloc(6 * (al + 3));
    if (!pre) {
        snprintf(errbuf, errlen, "out of memory");
        return VG_ESTORE;
    }
    vg_key_range_t kr[4];
    int nr = 0;
    for (int kind = 0; kind < 3; kind++) {   /* its decisions, labels and alert index */
        unsigned char *p = pre + (size_t)kind * 2 * (al + 3);
        p[0] = "DBM"[kind];
        p[1] = '/';
        memcpy(p + 2, acct, al);
        p[2 + al] = 0;
        vg_key_range_prefix(&kr[nr++], p, al + 3, p + al + 3);
    }
    if (alerts && alerts->oom) kr[nr++] = (vg_key_range_t){"N/", 2, "N0", 2};
    else if (alerts && alerts->n)
        kr[nr++] = (vg_key_range_t){alerts->first.p, alerts->first.len, alerts->last.p,
                                    alerts->last.len};
    int rc = vg_ctl_purge(c, kr, nr, errbuf, errlen);
    free(pre);
    return rc;
}

int vg_ctl_delete_range(vg_ctl_t *c, const void *from, size_t flen, const void *to,
                        size_t tlen) {
    drain(c);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(b, from, flen, to, tlen);
    char *err = NULL;
    ctl_rocks_write(c, b, &err);
    rocksdb_writebatch_destroy(b);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    return 0;
}

/* ---- the alert index ----------------------------------------------------------------- */

size_t vg_ctl_alert_ikey(unsigned char *out, const char *acct, size_t al,
                         const unsigned char nkey[10]) {
    out[0] = 'M';
    out[1] = '/';
    memcpy(out + 2, acct, al);
    out[2 + al] = 0;
    memcpy(out + 3 + al, nkey + 2, 8);
    return VG_CTL_AIDX_LEN(al);
}

int vg_ctl_alert_del(vg_ctl_t *c, const unsigned char nkey[10], const char *acct, size_t al) {
    unsigned char buf[VG_CTL_AIDX_LEN(256)];
    unsigned char *ik = al <= 256 ? buf : malloc(VG_CTL_AIDX_LEN(al));
    if (!ik) return VG_ENOMEM;
    vg_ctl_op_t ops[2] = {{nkey, 10, NULL, 0}, {ik, vg_ctl_alert_ikey(ik, acct, al, nkey), NULL, 0}};
    int rc = vg_ctl_write(c, ops, 2);
    if (ik != buf) free(ik);
    return rc;
}

int vg_ctl_alerts_of(vg_ctl_t *c, const char *acct, size_t al, const unsigned char *from,
                     vg_ctl_scan_cb cb, void *ctx) {
    static const unsigned char newest[10] = {'N', '/'};   /* BE64(0): before every key */
    unsigned char *k0 = malloc(VG_CTL_AIDX_LEN(al));
    if (!k0) return VG_ENOMEM;
    size_t pl = 3 + al;   /* "M/" account NUL */
    vg_ctl_alert_ikey(k0, acct, al, from ? from : newest);
    drain(c);
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ro);
    int rc = 0;
    char *err = NULL;
    for (rocksdb_iter_seek(it, (const char *)k0, pl + 8); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < pl || memcmp(k, k0, pl) != 0) break;
        if (kl != pl + 8) continue;
        unsigned char nkey[10] = {'N', '/'};
        memcpy(nkey + 2, k + pl, 8);
        char *v = rocksdb_get(c->db, c->ro, (const char *)nkey, sizeof nkey, &vl, &err);
        if (err) break;
        if (!v) continue;   /* gone with the retention: the next pruning deletes the entry */
        rc = cb(ctx, (const char *)nkey, sizeof nkey, v, vl);
        rocksdb_free(v);
        if (rc) break;
    }
    if (!err) rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    free(k0);
    if (err) {
        rocksdb_free(err);
        return VG_ESTORE;
    }
    return rc;
}

typedef struct aidx_prune {
    vg_ctl_keys_t del;
    uint64_t below;   /* prune: ids under this */
    int gone;         /* drop_gone: entries whose record is gone */
} aidx_prune_t;

static int aidx_prune_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)v, (void)vl;
    aidx_prune_t *p = ctx;
    if (kl < 2 + 1 + 8) return 0;
    if (p->gone) {
        unsigned char nkey[10] = {'N', '/'};
        memcpy(nkey + 2, k + kl - 8, 8);
        char *err = NULL;
        size_t l;
        char *r = rocksdb_get(p->del.c->db, p->del.c->ro, (const char *)nkey, sizeof nkey, &l,
                              &err);
        if (err) {
            rocksdb_free(err);
            return VG_ESTORE;
        }
        if (r) {
            rocksdb_free(r);
            return 0;
        }
    } else if (~vg_rd_be64((const unsigned char *)k + kl - 8) >= p->below) {
        return 0;
    }
    return vg_ctl_keys_add(&p->del, k, kl);
}

static int64_t aidx_prune(vg_ctl_t *c, const void *prefix, size_t plen, uint64_t below,
                          int gone) {
    aidx_prune_t p = {{0}, below, gone};
    vg_ctl_keys_init(&p.del, c, 1);
    int rc = vg_ctl_scan(c, prefix, plen, NULL, 0, aidx_prune_cb, &p);
    int erc = vg_ctl_keys_end(&p.del);
    if (rc < 0) return rc;
    if (erc < 0) return erc;
    return p.del.n;
}

int64_t vg_ctl_alert_index_prune(vg_ctl_t *c, uint64_t below) {
    return aidx_prune(c, "M/", 2, below, 0);
}

int64_t vg_ctl_alert_index_drop_gone(vg_ctl_t *c, const char *acct, size_t al) {
    unsigned char *pre = malloc(al + 3);
    if (!pre) return VG_ENOMEM;
    pre[0] = 'M';
    pre[1] = '/';
    memcpy(pre + 2, acct, al);
    pre[2 + al] = 0;
    int64_t n = aidx_prune(c, pre, al + 3, 0, 1);
    free(pre);
    return n;
}

#define KEYS_BATCH 1024

void vg_ctl_keys_init(vg_ctl_keys_t *b, vg_ctl_t *c, int del) {
    b->c = c;
    b->wb = rocksdb_writebatch_create();
    b->del = del;
    b->rc = 0;
    b->n = 0;
}

/* Writes the pending keys. */
static int keys_flush(vg_ctl_keys_t *b) {
    rocksdb_writebatch_t *wb = b->wb;
    int cnt = rocksdb_writebatch_count(wb);
    if (!cnt || b->rc) return b->rc;
    drain(b->c);
    char *err = NULL;
    ctl_rocks_write(b->c, wb, &err);
    rocksdb_writebatch_clear(wb);
    if (err) {
        rocksdb_free(err);
        b->rc = VG_ESTORE;
    } else {
        b->n += cnt;
    }
    return b->rc;
}

int vg_ctl_keys_add(vg_ctl_keys_t *b, const void *k, size_t kl) {
    if (b->rc) return b->rc;
    if (b->del) rocksdb_writebatch_delete(b->wb, k, kl);
    else rocksdb_writebatch_put(b->wb, k, kl, "", 0);
    if (rocksdb_writebatch_count(b->wb) >= KEYS_BATCH) return keys_flush(b);
    return 0;
}

int vg_ctl_keys_end(vg_ctl_keys_t *b) {
    int rc = keys_flush(b);
    rocksdb_writebatch_destroy(b->wb);
    b->wb = NULL;
    return rc;
}
