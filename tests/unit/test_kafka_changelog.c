/* test_kafka_changelog.c - unit tests of the changelog restore (engine/kafka_changelog.c,
 * format in engine/kafka_int.h) against librdkafka's mock cluster in this process: a
 * changelog partition written by a plain producer (records, markers, a wipe, an
 * unfinished tail) is applied marker by marker into a RocksDB store; the tail's keys
 * come back as redo keys; a store ahead of or without a changelog asks for a seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "engine/kafka.h"
#include "engine/kafka_int.h"
#include "engine/le.h"
#include "engine/store.h"
#include "rules/errors.h"

typedef struct {
    vg_kafka_mock_t *mock;
    rd_kafka_t *p, *c;
    char dir[64];
    vg_store_t *s;
    atomic_int stop;
} fx_t;

static int setup(void **st) {
    fx_t *f = calloc(1, sizeof(*f));
    char err[512];
    const char *topics[] = {"cl:2", NULL};
    f->mock = vg_kafka_mock_new(1, topics, 2, err, sizeof(err));
    assert_non_null(f->mock);
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", vg_kafka_mock_bootstrap(f->mock), err, sizeof(err));
    rd_kafka_conf_set(pc, "enable.idempotence", "true", err, sizeof(err));
    f->p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    assert_non_null(f->p);
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    rd_kafka_conf_set(cc, "bootstrap.servers", vg_kafka_mock_bootstrap(f->mock), err, sizeof(err));
    rd_kafka_conf_set(cc, "group.id", "restore", err, sizeof(err));
    rd_kafka_conf_set(cc, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(cc, "enable.auto.commit", "false", err, sizeof(err));
    f->c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    assert_non_null(f->c);
    rd_kafka_poll_set_consumer(f->c);
    snprintf(f->dir, sizeof(f->dir), "/tmp/vigil-test-cl.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->s = vg_store_open(f->dir, err, sizeof(err));
    assert_non_null(f->s);
    *st = f;
    return 0;
}

static int teardown(void **st) {
    fx_t *f = *st;
    vg_store_close(f->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", f->dir);
    rd_kafka_consumer_close(f->c);
    rd_kafka_destroy(f->c);
    rd_kafka_destroy(f->p);
    vg_kafka_mock_free(f->mock);
    free(f);
    return 0;
}

/* Produces key=value (value NULL: a tombstone) to cl [part] and waits for it. */
static void put(fx_t *f, int32_t part, const char *k, const void *v, size_t vl) {
    rd_kafka_resp_err_t e = rd_kafka_producev(
        f->p, RD_KAFKA_V_TOPIC("cl"), RD_KAFKA_V_PARTITION(part),
        RD_KAFKA_V_KEY(k, strlen(k)), RD_KAFKA_V_VALUE((void *)v, vl),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    assert_int_equal(e, 0);
    assert_int_equal(rd_kafka_flush(f->p, 10000), 0);
}

static void put_s(fx_t *f, int32_t part, const char *k, const char *v) {
    put(f, part, k, v, v ? strlen(v) : 0);
}

static void mark(fx_t *f, int32_t part, int64_t off) {
    put(f, part, VG_CL_MARK_KEY, &off, sizeof(off));
}

/* The store's value of k as a string ("" when absent: the tests never store "") */
static const char *get(fx_t *f, const char *k, vg_buf_t *b) {
    if (vg_store_get(f->s, k, strlen(k), b) != 0) return "";
    if (vg_buf_putc(b, 0) != 0) return "";
    return b->p;
}

static int64_t i64(fx_t *f, const char *k) {
    int64_t v = -1;
    return vg_cl_get_i64(f->s, k, &v) == 0 ? v : -1;
}

static void restore(fx_t *f, int32_t part, vg_buf_t *redo, vg_cl_restore_t *r) {
    char err[512];
    int rc = vg_cl_restore(f->c, "cl", part, f->s, &f->stop, redo, r, err, sizeof(err));
    if (rc) fprintf(stderr, "restore: %s\n", err);
    assert_int_equal(rc, 0);
}

/* The keys of a redo list, joined by ',' */
static void redo_keys(const vg_buf_t *redo, char *out, size_t n) {
    out[0] = 0;
    vg_le_rd_t r = {(const unsigned char *)redo->p, redo->len, 0, 0};
    size_t l;
    for (const char *k; (k = vg_le_get_key(&r, &l)) != NULL;) {
        size_t o = strlen(out);
        snprintf(out + o, n - o, "%s%.*s", o ? "," : "", (int)l, k);
    }
}

/* Records are applied only up to the last marker; the tail's keys are redo keys; a
 * second restore from the stored position reads only what came since. */
static void test_markers_and_tail(void **st) {
    fx_t *f = *st;
    vg_buf_t b, redo;
    vg_buf_init(&b);
    vg_buf_init(&redo);
    put_s(f, 0, "a/x", "1");
    put_s(f, 0, "a/y", "2");
    mark(f, 0, 100);                 /* offset 2 */
    put_s(f, 0, "a/x", "3");
    put_s(f, 0, "a/y", NULL);        /* a delete */
    mark(f, 0, 200);                 /* offset 5 */
    put_s(f, 0, "a/x", "4");         /* the tail: never committed */
    put_s(f, 0, "a/z", "5");
    vg_cl_restore_t r;
    restore(f, 0, &redo, &r);
    assert_int_equal(r.markers, 2);
    assert_int_equal(r.records, 8);
    assert_int_equal(r.tail, 1);
    assert_int_equal(r.seed, 0);
    assert_int_equal(r.wiped, 0);   /* a fresh store: nothing replaced (the log said so) */
    assert_string_equal(get(f, "a/x", &b), "3");
    assert_string_equal(get(f, "a/y", &b), "");
    assert_string_equal(get(f, "a/z", &b), "");
    assert_int_equal(i64(f, VG_CL_MARK_KEY), 200);
    assert_int_equal(i64(f, VG_CL_POS_KEY), 6);
    char keys[256];
    redo_keys(&redo, keys, sizeof(keys));
    assert_string_equal(keys, "a/x,a/z");
    /* the next owner repairs the tail (stored values), then checkpoints */
    put_s(f, 0, "a/x", "3");
    put_s(f, 0, "a/z", NULL);
    put_s(f, 0, "a/w", "6");
    mark(f, 0, 300);
    vg_buf_clear(&redo);
    restore(f, 0, &redo, &r);
    assert_int_equal(r.from, 6);
    assert_int_equal(r.records, 6);   /* the old tail is read again, then applied over */
    assert_int_equal(r.markers, 1);
    assert_int_equal(r.tail, 0);
    assert_int_equal(redo.len, 0);
    assert_string_equal(get(f, "a/x", &b), "3");
    assert_string_equal(get(f, "a/z", &b), "");
    assert_string_equal(get(f, "a/w", &b), "6");
    assert_int_equal(i64(f, VG_CL_MARK_KEY), 300);
    /* up to date: nothing read */
    restore(f, 0, &redo, &r);
    assert_int_equal(r.records, 0);
    vg_buf_deinit(&b);
    vg_buf_deinit(&redo);
}

/* Produces a chunk of a large record (kafka_int.h): key c/ + le32(index) + k. */
static void put_chunk(fx_t *f, int32_t part, const char *k, uint32_t index, const void *v,
                      size_t vl) {
    unsigned char key[128];
    size_t kl = strlen(k);
    memcpy(key, VG_CL_CHUNK_PREFIX, 2);
    vg_le_store32(key + 2, index);
    memcpy(key + 6, k, kl);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        f->p, RD_KAFKA_V_TOPIC("cl"), RD_KAFKA_V_PARTITION(part), RD_KAFKA_V_KEY(key, kl + 6),
        RD_KAFKA_V_VALUE((void *)v, vl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    assert_int_equal(e, 0);
    assert_int_equal(rd_kafka_flush(f->p, 10000), 0);
}

static void put_chunk_header(fx_t *f, int32_t part, const char *k, uint32_t n, uint64_t total) {
    unsigned char h[VG_CL_CHUNK_HDR];
    memcpy(h, VG_CL_CHUNK_MAGIC, 8);
    vg_le_store32(h + 8, n);
    vg_le_store64(h + 12, total);
    put(f, part, k, h, sizeof h);
}

/* A record in chunks is assembled when its header comes (chunks never reach the store);
 * chunks of an older, larger value are not used; chunks in a tail make their record's
 * key a redo key; a header whose chunks are missing is an error. */
static void test_chunks(void **st) {
    fx_t *f = *st;
    vg_buf_t b, redo;
    vg_buf_init(&b);
    vg_buf_init(&redo);
    char v[4001];
    for (int i = 0; i < 4000; i++) v[i] = (char)('a' + i % 26);
    v[4000] = 0;
    /* an older value in 4 chunks, then the newer in 3 over the first three */
    for (uint32_t i = 0; i < 4; i++) put_chunk(f, 0, "k/big", i, "old-", 4);
    put_chunk_header(f, 0, "k/big", 4, 16);
    put_s(f, 0, "a/x", "1");
    mark(f, 0, 100);
    for (uint32_t i = 0; i < 3; i++) put_chunk(f, 0, "k/big", i, v + 1000 * i, i < 2 ? 1000 : 2000);
    put_chunk_header(f, 0, "k/big", 3, 4000);
    mark(f, 0, 200);
    put_chunk(f, 0, "k/hot", 0, "partial", 7);   /* a tail: the header never came */
    vg_cl_restore_t r;
    restore(f, 0, &redo, &r);
    assert_int_equal(r.markers, 2);
    assert_string_equal(get(f, "k/big", &b), v);
    assert_string_equal(get(f, "a/x", &b), "1");
    assert_string_equal(get(f, "k/hot", &b), "");
    char keys[256];
    redo_keys(&redo, keys, sizeof(keys));
    assert_string_equal(keys, "k/hot");
    /* nothing with the chunk prefix was stored */
    vg_buf_t ck;
    vg_buf_init(&ck);
    assert_int_equal(vg_buf_append(&ck, VG_CL_CHUNK_PREFIX, 2), 0);
    unsigned char idx[4] = {0, 0, 0, 0};
    assert_int_equal(vg_buf_append(&ck, idx, 4), 0);
    assert_int_equal(vg_buf_append(&ck, "k/big", 5), 0);
    assert_int_equal(vg_store_get(f->s, ck.p, ck.len, &b), VG_ENOTFOUND);
    vg_buf_deinit(&ck);
    /* a header without all its chunks */
    put_chunk(f, 0, "k/q", 0, "abc", 3);
    put_chunk_header(f, 0, "k/q", 2, 6);
    mark(f, 0, 300);
    char err[512];
    vg_buf_clear(&redo);
    assert_int_equal(vg_cl_restore(f->c, "cl", 0, f->s, &f->stop, &redo, &r, err, sizeof(err)),
                     VG_EINVAL);
    assert_non_null(strstr(err, "chunks are not all there"));
    vg_buf_deinit(&b);
    vg_buf_deinit(&redo);
}

/* A wipe voids everything before it, local keys included, once its marker comes; a
 * wipe in the tail asks for a seed. */
static void test_wipe(void **st) {
    fx_t *f = *st;
    vg_buf_t b, redo;
    vg_buf_init(&b);
    vg_buf_init(&redo);
    put_s(f, 1, "a/x", "1");
    put_s(f, 1, "k/m", "2");
    mark(f, 1, 10);
    put_s(f, 1, VG_CL_WIPE_KEY, "1");
    put_s(f, 1, "a/y", "3");
    mark(f, 1, 20);
    vg_cl_restore_t r;
    restore(f, 1, &redo, &r);
    assert_int_equal(r.markers, 2);
    assert_string_equal(get(f, "a/x", &b), "");
    assert_string_equal(get(f, "k/m", &b), "");
    assert_string_equal(get(f, "a/y", &b), "3");
    assert_int_equal(i64(f, VG_CL_MARK_KEY), 20);
    put_s(f, 1, VG_CL_WIPE_KEY, "1");   /* an unfinished reset */
    put_s(f, 1, "a/q", "4");
    restore(f, 1, &redo, &r);
    assert_int_equal(r.markers, 0);
    assert_int_equal(r.seed, 1);
    assert_string_equal(get(f, "a/y", &b), "3");   /* nothing applied */
    vg_buf_deinit(&b);
    vg_buf_deinit(&redo);
}

/* A store with state and no changelog position (made without a changelog) over an
 * empty changelog: seed. A fresh store over a changelog: the changelog's state. */
static void test_seed_and_fresh(void **st) {
    fx_t *f = *st;
    vg_buf_t b, redo;
    vg_buf_init(&b);
    vg_buf_init(&redo);
    vg_batch_t *bt = vg_batch_new();
    int64_t off = 42;
    vg_batch_put(bt, VG_CL_MARK_KEY, strlen(VG_CL_MARK_KEY), &off, sizeof(off));
    vg_batch_put(bt, "a/old", 5, "9", 1);
    char err[256];
    assert_int_equal(vg_store_write(f->s, bt, 0, err, sizeof(err)), 0);
    vg_cl_restore_t r;
    restore(f, 0, &redo, &r);   /* partition 0 is empty in this test */
    assert_int_equal(r.seed, 1);
    assert_int_equal(r.records, 0);
    /* the same store over a changelog with state: replaced by it */
    put_s(f, 1, "a/new", "7");
    mark(f, 1, 77);
    restore(f, 1, &redo, &r);
    assert_int_equal(r.wiped, 1);
    assert_int_equal(r.seed, 0);
    assert_string_equal(get(f, "a/old", &b), "");
    assert_string_equal(get(f, "a/new", &b), "7");
    assert_int_equal(i64(f, VG_CL_MARK_KEY), 77);
    vg_batch_free(bt);
    vg_buf_deinit(&b);
    vg_buf_deinit(&redo);
}

/* Pushes the start of cl [part] out: the mock broker keeps at most 5 MiB per partition
 * (as retention would, older records are dropped). Returns the new low watermark. */
static int64_t drop_head(fx_t *f, int32_t part) {
    static char big[256 * 1024];
    memset(big, 'f', sizeof(big));
    for (int i = 0; i < 24; i++) put(f, part, "a/filler", big, sizeof(big));   /* 6 MiB */
    int64_t lo = -1, hi = -1;
    assert_int_equal(rd_kafka_query_watermark_offsets(f->p, "cl", part, &lo, &hi, 5000), 0);
    assert_true(lo > 0);
    return lo;
}

/* A changelog whose first records are gone (records written once, and the accounts not
 * changed since, among them) and that holds no wipe after them is not a whole state: a
 * new store does not apply what is left (it was loaded before, and its accounts could
 * not be decoded) but starts empty at the last marker's input offset, with the labels
 * position of that marker, and asks for a seed. */
static void test_head_lost_fresh(void **st) {
    fx_t *f = *st;
    vg_buf_t b, redo;
    vg_buf_init(&b);
    vg_buf_init(&redo);
    put_s(f, 1, "m/dtpl", "T");   /* written once */
    put_s(f, 1, "a/x", "1");
    mark(f, 1, 10);
    int64_t lo = drop_head(f, 1);
    int64_t lab = 7;
    put(f, 1, "m/kafka/labels", &lab, sizeof(lab));
    put_s(f, 1, "a/y", "2");
    mark(f, 1, 30);
    put_s(f, 1, "a/z", "3");   /* an unfinished tail */
    vg_cl_restore_t r;
    restore(f, 1, &redo, &r);
    assert_int_equal(r.head_lost, 1);
    assert_int_equal(r.emptied, 1);
    assert_int_equal(r.kept, 0);
    assert_int_equal(r.seed, 1);
    assert_int_equal(r.lo, lo);
    assert_int_equal(r.lost_mark, 30);
    assert_string_equal(get(f, "a/y", &b), "");
    assert_string_equal(get(f, "a/z", &b), "");
    assert_string_equal(get(f, "a/filler", &b), "");
    assert_int_equal(i64(f, VG_CL_MARK_KEY), 30);
    assert_int_equal(i64(f, "m/kafka/labels"), 7);
    assert_int_equal(i64(f, VG_CL_POS_KEY), -1);   /* not until the seed is written */
    assert_int_equal(redo.len, 0);
    /* restored again before the seed: the same (the empty state is kept) */
    restore(f, 1, &redo, &r);
    assert_int_equal(r.head_lost, 1);
    assert_int_equal(r.kept, 1);
    assert_int_equal(r.seed, 1);
    assert_string_equal(get(f, "a/y", &b), "");
    assert_int_equal(i64(f, VG_CL_MARK_KEY), 30);
    vg_buf_deinit(&b);
    vg_buf_deinit(&redo);
}

/* The same changelog with a seed after the lost start (wipe, the whole state, marker):
 * a whole state, applied from the wipe on. A store with a checkpoint whose position is
 * before the changelog's start, over a changelog without a seed, keeps its state. */
static void test_head_lost_seed_and_kept(void **st) {
    fx_t *f = *st;
    vg_buf_t b, redo;
    vg_buf_init(&b);
    vg_buf_init(&redo);
    put_s(f, 1, "a/x", "1");
    mark(f, 1, 10);
    drop_head(f, 1);
    put_s(f, 1, "a/y", "2");
    mark(f, 1, 30);
    put_s(f, 1, VG_CL_WIPE_KEY, "1");
    put_s(f, 1, "m/dtpl", "T");
    put_s(f, 1, "a/y", "2");
    mark(f, 1, 30);
    put_s(f, 1, "a/w", "4");
    mark(f, 1, 40);
    vg_cl_restore_t r;
    restore(f, 1, &redo, &r);
    assert_int_equal(r.head_lost, 0);
    assert_int_equal(r.seed, 0);
    assert_int_equal(r.markers, 2);
    assert_string_equal(get(f, "m/dtpl", &b), "T");
    assert_string_equal(get(f, "a/y", &b), "2");
    assert_string_equal(get(f, "a/w", &b), "4");
    assert_string_equal(get(f, "a/filler", &b), "");
    assert_int_equal(i64(f, VG_CL_MARK_KEY), 40);
    /* a store at position 1 of partition 0, whose start is then dropped */
    vg_batch_t *bt = vg_batch_new();
    int64_t off = 5, p1 = 1;
    vg_batch_put(bt, VG_CL_MARK_KEY, strlen(VG_CL_MARK_KEY), &off, sizeof(off));
    vg_batch_put(bt, VG_CL_POS_KEY, strlen(VG_CL_POS_KEY), &p1, sizeof(p1));
    vg_batch_put(bt, "a/old", 5, "9", 1);
    vg_batch_delete(bt, "a/y", 3);
    char err[256];
    assert_int_equal(vg_store_write(f->s, bt, 0, err, sizeof(err)), 0);
    drop_head(f, 0);
    put_s(f, 0, "a/new", "7");
    mark(f, 0, 77);
    restore(f, 0, &redo, &r);
    assert_int_equal(r.head_lost, 1);
    assert_int_equal(r.truncated, 1);
    assert_int_equal(r.kept, 1);
    assert_int_equal(r.seed, 1);
    assert_string_equal(get(f, "a/old", &b), "9");
    assert_string_equal(get(f, "a/new", &b), "");
    assert_int_equal(i64(f, VG_CL_MARK_KEY), 5);
    assert_int_equal(i64(f, VG_CL_POS_KEY), 1);
    vg_batch_free(bt);
    vg_buf_deinit(&b);
    vg_buf_deinit(&redo);
}

/* Whether some file of directory dir holds the bytes n (WAL files are not compressed;
 * the values below are long runs that lz4 keeps recognisable only uncompressed). */
static int dir_has(const char *dir, const char *n) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int has = 0;
    size_t nl = strlen(n);
    while (!has && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *fp = fopen(path, "rb");
        if (!fp) continue;
        char buf[65536 + 64];
        size_t keep = 0, r;
        while (!has && (r = fread(buf + keep, 1, 65536, fp)) > 0) {
            size_t len = keep + r;
            for (size_t i = 0; !has && i + nl <= len; i++) has = memcmp(buf + i, n, nl) == 0;
            keep = len < nl ? len : nl - 1;
            memmove(buf, buf + len - keep, keep);
        }
        fclose(fp);
    }
    closedir(d);
    return has;
}

/* An account erased at the owner (its records' tombstones in the changelog) whose
 * records this store holds from before, and reads again from the changelog before the
 * tombstones: once the restore is done, no file of the store holds them (an instance
 * that owned the partition before kept the erased account on its disk). */
static void test_erased_purged(void **st) {
    fx_t *f = *st;
    vg_buf_t b, redo;
    vg_buf_init(&b);
    vg_buf_init(&redo);
    /* this store: a copy from before, at position -1 (no changelog read yet) */
    vg_batch_t *bt = vg_batch_new();
    vg_batch_put(bt, "a/gone-acct", 11, "SECRET-OLD-COPY", 15);
    vg_batch_put(bt, "a/kept", 6, "KEPT-VALUE", 10);
    char err[256];
    assert_int_equal(vg_store_write(f->s, bt, 0, err, sizeof(err)), 0);
    vg_batch_free(bt);
    put_s(f, 1, "a/gone-acct", "SECRET-IN-CHANGELOG");
    put_s(f, 1, "a/kept", "KEPT-VALUE");
    mark(f, 1, 10);
    put(f, 1, "a/gone-acct", NULL, 0);   /* the erasure's tombstone */
    mark(f, 1, 11);
    vg_cl_restore_t r;
    restore(f, 1, &redo, &r);
    assert_int_equal(r.markers, 2);
    assert_string_equal(get(f, "a/gone-acct", &b), "");
    assert_string_equal(get(f, "a/kept", &b), "KEPT-VALUE");
    assert_false(dir_has(f->dir, "SECRET-IN-CHANGELOG"));
    assert_false(dir_has(f->dir, "SECRET-OLD-COPY"));
    assert_false(dir_has(f->dir, "gone-acct"));
    assert_int_equal(r.purged, 1);
    vg_buf_deinit(&b);
    vg_buf_deinit(&redo);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_markers_and_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_and_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_lost_fresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_lost_seed_and_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erased_purged, setup, teardown),
    };
    return cmocka_run_group_tests_name("kafka_changelog", tests, NULL, NULL);
}
