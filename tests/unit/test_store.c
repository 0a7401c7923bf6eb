/* test_store.c - the RocksDB store (engine/store.c) against a real database in a
 * temporary directory: put/get/delete, atomic batches, scan order and prefix bounds,
 * persistence across reopen, a clear refusal of a directory locked by another
 * process, and an erasure's purge (vg_store_purge_account: the erased account's bytes
 * leave every file of the directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "engine/state.h"
#include "engine/store.h"
#include "rules/errors.h"

typedef struct fx {
    char dir[64];
    vg_store_t *s;
    vg_buf_t buf;
} fx_t;

static void rm_rf(const char *dir) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vg_store_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    char err[512] = "";
    f->s = vg_store_open(f->dir, err, sizeof err);
    if (!f->s) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    vg_buf_init(&f->buf);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    vg_store_close(f->s);
    vg_buf_deinit(&f->buf);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static void put1(vg_store_t *s, const char *k, const char *v) {
    vg_batch_t *b = vg_batch_new();
    assert_non_null(b);
    vg_batch_put(b, k, strlen(k), v, strlen(v));
    char err[256];
    assert_int_equal(vg_store_write(s, b, 0, err, sizeof err), 0);
    vg_batch_free(b);
}

static void assert_val(vg_store_t *s, vg_buf_t *buf, const char *k, const char *want) {
    int rc = vg_store_get(s, k, strlen(k), buf);
    if (!want) {
        assert_int_equal(rc, VG_ENOTFOUND);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(buf->len, strlen(want));
    assert_memory_equal(buf->p, want, buf->len);
}

static void test_put_get_delete(void **state) {
    fx_t *f = *state;
    assert_val(f->s, &f->buf, "a/x", NULL);
    put1(f->s, "a/x", "one");
    assert_val(f->s, &f->buf, "a/x", "one");
    put1(f->s, "a/x", "two-longer");
    assert_val(f->s, &f->buf, "a/x", "two-longer");
    /* binary keys and values with NUL bytes */
    vg_batch_t *b = vg_batch_new();
    const char bk[] = {'k', 0, 1, 2}, bv[] = {0, 0, 'z', 0};
    vg_batch_put(b, bk, sizeof bk, bv, sizeof bv);
    vg_batch_put(b, "empty", 5, "", 0);
    char err[256];
    assert_int_equal(vg_store_write(f->s, b, 1, err, sizeof err), 0);
    assert_int_equal(vg_store_get(f->s, bk, sizeof bk, &f->buf), 0);
    assert_int_equal(f->buf.len, sizeof bv);
    assert_memory_equal(f->buf.p, bv, sizeof bv);
    assert_int_equal(vg_store_get(f->s, bk, 3, &f->buf), VG_ENOTFOUND);
    assert_int_equal(vg_store_get(f->s, "empty", 5, &f->buf), 0);
    assert_int_equal(f->buf.len, 0);
    vg_batch_clear(b);
    vg_batch_delete(b, "a/x", 3);
    assert_int_equal(vg_store_write(f->s, b, 0, err, sizeof err), 0);
    assert_val(f->s, &f->buf, "a/x", NULL);
    vg_batch_free(b);
}

static void test_batch_atomic_and_count(void **state) {
    fx_t *f = *state;
    put1(f->s, "k/gone", "x");
    vg_batch_t *b = vg_batch_new();
    assert_int_equal(vg_batch_count(b), 0);
    char k[32], v[32];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "a/%03d", i);
        snprintf(v, sizeof v, "v%d", i);
        vg_batch_put(b, k, strlen(k), v, strlen(v));
    }
    vg_batch_delete(b, "k/gone", 6);
    assert_int_equal(vg_batch_count(b), 101);
    /* nothing visible before the write */
    assert_val(f->s, &f->buf, "a/000", NULL);
    assert_val(f->s, &f->buf, "k/gone", "x");
    char err[256];
    assert_int_equal(vg_store_write(f->s, b, 1, err, sizeof err), 0);
    assert_val(f->s, &f->buf, "a/000", "v0");
    assert_val(f->s, &f->buf, "a/099", "v99");
    assert_val(f->s, &f->buf, "k/gone", NULL);
    vg_batch_clear(b);
    assert_int_equal(vg_batch_count(b), 0);
    vg_batch_free(b);
    vg_batch_free(NULL);
}

typedef struct scan_ctx {
    char keys[64][32];
    int n;
    int stop_after;
} scan_ctx_t;

static int scan_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    scan_ctx_t *c = ctx;
    (void)v;
    (void)vl;
    assert_true(kl < 32);
    memcpy(c->keys[c->n], k, kl);
    c->keys[c->n][kl] = 0;
    c->n++;
    return c->stop_after && c->n == c->stop_after ? 7 : 0;
}

static void test_scan_prefix(void **state) {
    fx_t *f = *state;
    const char *keys[] = {"m/z", "a/b", "a/a", "a", "a0", "a/\xff", "b/a", "a/ab", "m/a"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) put1(f->s, keys[i], "v");
    scan_ctx_t c = {.n = 0};
    assert_int_equal(vg_store_scan(f->s, "a/", 2, scan_cb, &c), 0);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.keys[0], "a/a");
    assert_string_equal(c.keys[1], "a/ab");
    assert_string_equal(c.keys[2], "a/b");
    assert_string_equal(c.keys[3], "a/\xff");
    memset(&c, 0, sizeof c);
    assert_int_equal(vg_store_scan(f->s, "m/", 2, scan_cb, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.keys[0], "m/a");
    assert_string_equal(c.keys[1], "m/z");
    /* a prefix ending in 0xff, and no match */
    memset(&c, 0, sizeof c);
    assert_int_equal(vg_store_scan(f->s, "a/\xff", 3, scan_cb, &c), 0);
    assert_int_equal(c.n, 1);
    memset(&c, 0, sizeof c);
    assert_int_equal(vg_store_scan(f->s, "q", 1, scan_cb, &c), 0);
    assert_int_equal(c.n, 0);
    /* the callback stops the scan and its value is returned */
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(vg_store_scan(f->s, "a", 1, scan_cb, &c), 7);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.keys[0], "a");
    assert_string_equal(c.keys[1], "a/a");
    /* empty prefix: everything in order */
    memset(&c, 0, sizeof c);
    assert_int_equal(vg_store_scan(f->s, "", 0, scan_cb, &c), 0);
    assert_int_equal(c.n, 9);
    assert_string_equal(c.keys[0], "a");
    assert_string_equal(c.keys[8], "m/z");
}

static void test_reopen_persists(void **state) {
    fx_t *f = *state;
    put1(f->s, "m/pos", "12345");
    assert_string_equal(vg_store_path(f->s), f->dir);
    vg_store_close(f->s);
    char err[512];
    f->s = vg_store_open(f->dir, err, sizeof err);
    assert_non_null(f->s);
    assert_val(f->s, &f->buf, "m/pos", "12345");
}

static void test_locked_dir_refused(void **state) {
    fx_t *f = *state;
    char err[512] = "";
    /* a second handle in this process */
    vg_store_t *s2 = vg_store_open(f->dir, err, sizeof err);
    assert_null(s2);
    assert_non_null(strstr(err, f->dir));
    assert_non_null(strstr(err, "in use by another process"));
    /* and from another process */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char e[512] = "";
        vg_store_t *s3 = vg_store_open(f->dir, e, sizeof e);
        ssize_t w = write(pfd[1], e, strlen(e));
        (void)w;
        _exit(s3 ? 1 : 0);
    }
    close(pfd[1]);
    char msg[512] = "";
    ssize_t n = read(pfd[0], msg, sizeof msg - 1);
    close(pfd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(n > 0);
    assert_non_null(strstr(msg, "in use by another process"));
}

static void test_open_bad_dir(void **state) {
    (void)state;
    char err[512] = "";
    vg_store_t *s = vg_store_open("/proc/vg_no_such/dir", err, sizeof err);
    assert_null(s);
    assert_non_null(strstr(err, "/proc/vg_no_such/dir"));
    vg_store_close(NULL);
}

/* ---- an erasure's purge ---------------------------------------------------------- */

#define ERASED "acct-erased-QZX7"   /* distinctive: its bytes are looked for in files */

/* engine/state.c's keys of an account: "a/" + name; KIND "/" + u32be length + name +
 * u64be n for 'd' and 'w'. */
static size_t acct_key(char *out, char kind, const char *name, uint64_t n) {
    size_t l = strlen(name), o = 0;
    out[o++] = kind;
    out[o++] = '/';
    if (kind != 'a')
        for (int j = 0; j < 4; j++) out[o++] = (char)((uint32_t)l >> (24 - 8 * j));
    memcpy(out + o, name, l);
    o += l;
    if (kind != 'a')
        for (int j = 0; j < 8; j++) out[o++] = (char)(n >> (56 - 8 * j));
    return o;
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

/* A value of vl bytes: the name (so that a WAL or table holding it shows it), then
 * incompressible bytes (so that the store's size is what the count says). */
static void fill_val(char *v, size_t vl, const char *name) {
    size_t l = strlen(name) < vl ? strlen(name) : vl;
    memcpy(v, name, l);
    for (size_t i = l; i < vl; i++) v[i] = (char)(rnd() >> 56);
}

/* The account's records: its "a/" record, `nd` dedupe and `nw` window records numbered
 * from `from`. Returns how many. */
static int put_account(vg_store_t *s, vg_batch_t *b, const char *name, uint64_t from,
                       int nd, int nw, int with_a) {
    char k[64 + 128], v[400];
    int n = 0;
    if (with_a) {
        fill_val(v, 300, name);
        vg_batch_put(b, k, acct_key(k, 'a', name, 0), v, 300);
        n++;
    }
    for (int i = 0; i < nd; i++, n++) {
        fill_val(v, 200, name);
        vg_batch_put(b, k, acct_key(k, 'd', name, from + (uint64_t)i), v, 200);
    }
    for (int i = 0; i < nw; i++, n++) {
        fill_val(v, 300, name);
        vg_batch_put(b, k, acct_key(k, 'w', name, from + (uint64_t)i), v, 300);
    }
    (void)s;
    return n;
}

static void write_batch(vg_store_t *s, vg_batch_t *b) {
    char err[512] = "";
    if (vg_store_write(s, b, 0, err, sizeof err) != 0) fail_msg("%s", err);
    vg_batch_clear(b);
}

static void flush(vg_store_t *s) {
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    rocksdb_flush(vg_store_rocksdb(s), fo, &err);
    rocksdb_flushoptions_destroy(fo);
    if (err) fail_msg("flush: %s", err);
}

/* Whether the file holds the bytes n[0..nl). */
static int file_has(const char *path, const char *n, size_t nl) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t cap = 1 << 20, len = 0;
    char *p = malloc(cap);
    assert_non_null(p);
    size_t r;
    while ((r = fread(p + len, 1, cap - len, fp)) > 0) {
        len += r;
        if (len == cap) {
            cap *= 2;
            p = realloc(p, cap);
            assert_non_null(p);
        }
    }
    fclose(fp);
    int has = 0;
    for (size_t i = 0; !has && i + nl <= len; i++)
        has = p[i] == n[0] && memcmp(p + i, n, nl) == 0;
    free(p);
    return has;
}

/* Whether the key is one of the erased account's (its "a/", "d/" or "w/" records). */
static int is_erased_key(const char *k, size_t kl) {
    char p[64];
    size_t pl = acct_key(p, 'a', ERASED, 0);
    if (kl >= pl && memcmp(k, p, pl) == 0) return 1;
    for (int i = 0; i < 2; i++) {
        pl = acct_key(p, i ? 'w' : 'd', ERASED, 0) - 8;
        if (kl >= pl && memcmp(k, p, pl) == 0) return 1;
    }
    return 0;
}

static int count_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    if (is_erased_key(k, kl)) fail_msg("an erased key is still read");
    (*(int *)ctx)++;
    return 0;
}

/* Accounts A, B (ERASED) and C and `VG_PURGE_FILLER` others (default 2000; the purge's
 * time is printed, e.g. with 100000 for docs/architecture.md, Erasure; VG_PURGE_SETTLE
 * compacts them to the last level first): B's records in
 * flushed tables (one table of B's alone, whose smallest and largest keys are B's) and
 * in the WAL; B deleted as DELETE /v1/accounts does (vg_state_delete_account), then
 * purged. No live file may then hold a deletion (but the purge's marker) or a record of
 * B, and no file in the directory (WAL, MANIFEST, tables, ...) B's name. */
static void test_purge_erases_account(void **state) {
    fx_t *f = *state;
    const char *e = getenv("VG_PURGE_FILLER");
    int filler = e ? atoi(e) : 2000;
    vg_batch_t *b = vg_batch_new();
    assert_non_null(b);
    int live = 0;
    live += put_account(f->s, b, "acct-alpha-1111", 0, 100, 50, 1);
    live += put_account(f->s, b, "acct-gamma-3333", 0, 100, 50, 1);
    write_batch(f->s, b);
    char name[32];
    for (int i = 0; i < filler; i++) {
        snprintf(name, sizeof name, "f%08d", i);
        live += put_account(f->s, b, name, 0, 2, 2, 1);
        if (i % 1000 == 999) write_batch(f->s, b);
    }
    write_batch(f->s, b);
    flush(f->s);
    if (getenv("VG_PURGE_SETTLE"))   /* the others in the last level, as in a store run for long */
        rocksdb_compact_range(vg_store_rocksdb(f->s), NULL, 0, NULL, 0);
    put_account(f->s, b, ERASED, 0, 100, 50, 1);   /* a table of B's alone */
    write_batch(f->s, b);
    flush(f->s);
    put_account(f->s, b, ERASED, 100, 100, 50, 0);   /* and in the WAL */
    live += put_account(f->s, b, "acct-alpha-1111", 100, 20, 10, 0);
    live += put_account(f->s, b, "acct-gamma-3333", 100, 20, 10, 0);
    write_batch(f->s, b);
    vg_batch_free(b);

    char err[512] = "";
    assert_int_equal(vg_state_delete_account(f->s, ERASED, strlen(ERASED), NULL, err,
                                             sizeof err), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (vg_store_purge_account(f->s, ERASED, strlen(ERASED), err, sizeof err) != 0)
        fail_msg("%s", err);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    int seen = 0;
    const char *pre[] = {"a/", "d/", "w/"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(vg_store_scan(f->s, pre[i], 2, count_cb, &seen), 0);
    assert_int_equal(seen, live);

    /* the live tables: no deletion but the marker's, no key of B as a bound, and as many
     * entries as live records (so none of B's) */
    const rocksdb_livefiles_t *lf = rocksdb_livefiles(vg_store_rocksdb(f->s));
    assert_non_null(lf);
    uint64_t entries = 0, bytes = 0;
    for (int i = 0; i < rocksdb_livefiles_count(lf); i++) {
        size_t sl, ll;
        const char *sk = rocksdb_livefiles_smallestkey(lf, i, &sl);
        const char *lk = rocksdb_livefiles_largestkey(lf, i, &ll);
        uint64_t ne = rocksdb_livefiles_entries(lf, i), nd = rocksdb_livefiles_deletions(lf, i);
        bytes += rocksdb_livefiles_size(lf, i);
        if (is_erased_key(sk, sl) || is_erased_key(lk, ll))
            fail_msg("table %s is bounded by a key of the erased account",
                     rocksdb_livefiles_name(lf, i));
        int marker = sl == strlen(VG_PURGE_MARKER) && ll == sl &&
                     memcmp(sk, VG_PURGE_MARKER, sl) == 0 && memcmp(lk, VG_PURGE_MARKER, ll) == 0;
        if (nd && !marker)
            fail_msg("table %s holds %llu deletions", rocksdb_livefiles_name(lf, i),
                     (unsigned long long)nd);
        if (!marker) entries += ne;
    }
    rocksdb_livefiles_destroy(lf);
    assert_int_equal(entries, (uint64_t)live);

    /* no file of the directory holds B's name: the WAL files (*.log, not compressed),
     * the MANIFEST (the tables' bounds), the tables, the rest */
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *de;
    int logs = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", f->dir, de->d_name);
        size_t nl = strlen(de->d_name);
        if (nl > 4 && strcmp(de->d_name + nl - 4, ".log") == 0) logs++;
        if (file_has(path, ERASED, strlen(ERASED)))
            fail_msg("%s holds the erased account's name", de->d_name);
    }
    closedir(d);
    assert_true(logs >= 1);
    printf("purge of one account among %d (%.1f MB of tables): %.1f ms\n", filler + 2,
           (double)bytes / 1e6,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic_and_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_dir_refused, setup, teardown),
        cmocka_unit_test(test_open_bad_dir),
        cmocka_unit_test_setup_teardown(test_purge_erases_account, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
