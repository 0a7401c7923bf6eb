/* test_ctl.c - the control store (api/ctl.c) against a real RocksDB database in a
 * temporary directory: records written behind by the writer thread are seen by the next
 * read, and trims (vg_ctl_trim_later) keep the newest records of a prefix and nothing
 * of other prefixes, after the writes enqueued before them; module version keys scan
 * in version order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/ctl.h"
#include "rules/errors.h"

typedef struct fx {
    char dir[64];
    vg_ctl_t *c;
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/vg_ctl_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    char err[512] = "";
    f->c = vg_ctl_open(f->dir, err, sizeof err);
    if (!f->c) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    vg_ctl_close(f->c);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", f->dir);
    free(f);
    return 0;
}

typedef struct keys {
    int n;
    char k[64][32];
} keys_t;

static int collect(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)v;
    (void)vl;
    keys_t *x = ctx;
    if (x->n < 64 && kl < 32) {
        memcpy(x->k[x->n], k, kl);
        x->k[x->n][kl] = 0;
    }
    x->n++;
    return 0;
}

/* "D/<acct>/<~i>": the newest first in key order, as the recent decisions are. */
static void key_of(char *out, const char *acct, int i) {
    snprintf(out, 32, "D/%s/%04d", acct, 9999 - i);
}

/* Waits (up to 5 s) until the prefix holds `want` keys: a trim runs on the writer
 * thread, after the write that precedes it. */
static keys_t wait_for(vg_ctl_t *c, const char *prefix, int want) {
    keys_t x;
    for (int tries = 0; tries < 500; tries++) {
        x.n = 0;
        assert_int_equal(vg_ctl_scan(c, prefix, strlen(prefix), NULL, 0, collect, &x), 0);
        if (x.n == want) break;
        usleep(10000);
    }
    return x;
}

/* Enqueues records from .. to-1 of `acct`, written behind. */
static void put_later(vg_ctl_t *c, const char *acct, int from, int to) {
    char k[32];
    for (int i = from; i < to; i++) {
        key_of(k, acct, i);
        vg_ctl_op_t op = {k, strlen(k), "v", 1};
        vg_ctl_write_later(c, &op, 1);
    }
}

static void test_trim_keeps_newest(void **state) {
    fx_t *f = *state;
    char k[32];
    put_later(f->c, "a", 0, 30);
    put_later(f->c, "b", 0, 30);
    vg_ctl_trim_later(f->c, "D/a/", 4, 10);
    keys_t x = wait_for(f->c, "D/a/", 10);
    assert_int_equal(x.n, 10);
    for (int i = 0; i < 10; i++) {   /* the ten newest, 29 .. 20 */
        key_of(k, "a", 29 - i);
        assert_string_equal(x.k[i], k);
    }
    /* another prefix untouched */
    x = wait_for(f->c, "D/b/", 30);
    assert_int_equal(x.n, 30);
    /* a trim right after more writes keeps the newest of them too */
    put_later(f->c, "a", 30, 40);
    vg_ctl_trim_later(f->c, "D/a/", 4, 3);
    x = wait_for(f->c, "D/a/", 3);
    assert_int_equal(x.n, 3);
    key_of(k, "a", 39);
    assert_string_equal(x.k[0], k);
    key_of(k, "a", 37);
    assert_string_equal(x.k[2], k);
}

/* At most 64 keys go per trim; the next trim takes the rest. */
static void test_trim_bounded(void **state) {
    fx_t *f = *state;
    char k[32];
    put_later(f->c, "c", 0, 100);
    vg_ctl_trim_later(f->c, "D/c/", 4, 1);
    keys_t x = wait_for(f->c, "D/c/", 100 - 64);
    assert_int_equal(x.n, 100 - 64);
    vg_ctl_trim_later(f->c, "D/c/", 4, 1);
    x = wait_for(f->c, "D/c/", 1);
    assert_int_equal(x.n, 1);
    key_of(k, "c", 99);
    assert_string_equal(x.k[0], k);
}

static int version_of(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)v;
    (void)vl;
    keys_t *x = ctx;
    if (x->n < 64)
        snprintf(x->k[x->n], 32, "%llu",
                 (unsigned long long)vg_rd_be64((const unsigned char *)k + kl - 8));
    x->n++;
    return 0;
}

/* A module's versions (vg_ctl_version_key, read by the Redis control plane to find the
 * versions an instance lacks) scan in version order, and a module's prefix holds none
 * of another module whose name starts with its name. */
static void test_version_keys(void **state) {
    fx_t *f = *state;
    unsigned char k[VG_CTL_VKEY_MAX];
    static const int64_t vs[] = {300, 2, 1, 256, 10};
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        size_t kl = vg_ctl_version_key(k, "m", vs[i]);
        assert_int_equal(kl, 3 + 1 + 8);
        assert_int_equal(vg_ctl_put(f->c, k, kl, "r", 1), 0);
        kl = vg_ctl_version_key(k, "m3", vs[i]);   /* "m3" sorts after "m\0" */
        assert_int_equal(vg_ctl_put(f->c, k, kl, "r", 1), 0);
    }
    size_t pl = vg_ctl_version_key(k, "m", 0) - 8;
    keys_t x = {0};
    assert_int_equal(vg_ctl_scan(f->c, k, pl, NULL, 0, version_of, &x), 0);
    assert_int_equal(x.n, 5);
    static const char *const want[] = {"1", "2", "10", "256", "300"};
    for (int i = 0; i < 5; i++) assert_string_equal(x.k[i], want[i]);
    /* names the control store cannot hold */
    assert_int_equal(vg_ctl_version_key(k, "", 1), 0);
    char longname[66];
    memset(longname, 'a', 65);
    longname[65] = 0;
    assert_int_equal(vg_ctl_version_key(k, longname, 1), 0);
    longname[64] = 0;
    assert_int_equal(vg_ctl_version_key(k, longname, 1), VG_CTL_VKEY_MAX);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trim_keeps_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
