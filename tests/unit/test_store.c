/* test_store.c - the RocksDB store (engine/store.c) against a real database in a
 * temporary directory: put/get/delete, atomic batches, scan order and prefix bounds,
 * persistence across reopen, and a clear refusal of a directory locked by another
 * process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic_and_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_dir_refused, setup, teardown),
        cmocka_unit_test(test_open_bad_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
