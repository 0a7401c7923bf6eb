/* test_ctl.c - the control store (api/ctl.c) against a real RocksDB database in a
 * temporary directory: records written behind by the writer thread are seen by the next
 * read, and trims (vg_ctl_trim_later) keep the newest records of a prefix and nothing
 * of other prefixes, after the writes enqueued before them; module version keys scan
 * in version order; the alert index ("M/") lists one account's alerts without visiting
 * the others', skips and prunes entries whose alert is gone. */
#define _GNU_SOURCE   /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
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

/* ---- the alert index ---------------------------------------------------------------- */

/* Alert i: id (1000 + i) << 16 | i, of account "x" for i % 500 == 7, of "xy" for
 * i % 500 == 8 (its index prefix starts with "M/x" too), else "o<i % 97>". Written as the
 * server writes them: the record and its index entry in one write behind. */
static const char *alert_acct(int i, char *buf) {
    if (i % 500 == 7) return "x";
    if (i % 500 == 8) return "xy";
    snprintf(buf, 16, "o%d", i % 97);
    return buf;
}

static uint64_t alert_id(int i) { return (uint64_t)(1000 + i) << 16 | (uint64_t)i; }

static void put_alerts(vg_ctl_t *c, int n) {
    for (int i = 0; i < n; i++) {
        char ab[16], rec[64];
        const char *acct = alert_acct(i, ab);
        unsigned char nk[10] = {'N', '/'}, ik[VG_CTL_AIDX_LEN(16)];
        vg_be64(nk + 2, ~alert_id(i));
        snprintf(rec, sizeof rec, "{\"account\":\"%s\",\"n\":%d}", acct, i);
        vg_ctl_op_t ops[2] = {{nk, 10, rec, strlen(rec)},
                              {ik, vg_ctl_alert_ikey(ik, acct, strlen(acct), nk), "", 0}};
        vg_ctl_write_later(c, ops, 2);
    }
}

typedef struct seen {
    int n;
    uint64_t id[64];
    int stop_at;   /* return 1 at this many (0: never) */
} seen_t;

static int seen_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    seen_t *s = ctx;
    assert_int_equal(kl, 10);
    assert_memory_equal(k, "N/", 2);
    assert_non_null(memmem(v, vl, "\"account\":\"x\"", 13));
    if (s->n < 64) s->id[s->n] = ~vg_rd_be64((const unsigned char *)k + 2);
    s->n++;
    return s->stop_at && s->n == s->stop_at;
}

static int count_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)k, (void)kl, (void)v, (void)vl;
    (*(int *)ctx)++;
    return 0;
}

static int count_keys(vg_ctl_t *c, const char *prefix, size_t plen) {
    int n = 0;
    assert_int_equal(vg_ctl_scan(c, prefix, plen, NULL, 0, count_cb, &n), 0);
    return n;
}

/* 3,000 alerts, 6 of "x": its alerts come newest first, each once, and the callback
 * sees none of the others (a filtering scan of the list would call it 3,000 times);
 * from a cursor, the rest; a record deleted by hand is skipped. */
static void test_alert_index_lists_account(void **state) {
    fx_t *f = *state;
    put_alerts(f->c, 3000);
    seen_t s = {0};
    assert_int_equal(vg_ctl_alerts_of(f->c, "x", 1, NULL, seen_cb, &s), 0);
    assert_int_equal(s.n, 6);
    for (int j = 0; j < 6; j++) assert_true(s.id[j] == alert_id(2507 - 500 * j));
    /* stopped by the callback after 2, then on from after the second */
    seen_t s2 = {0, {0}, 2};
    assert_int_equal(vg_ctl_alerts_of(f->c, "x", 1, NULL, seen_cb, &s2), 1);
    assert_int_equal(s2.n, 2);
    unsigned char from[10] = {'N', '/'};
    vg_be64(from + 2, ~s2.id[1] + 1);
    seen_t s3 = {0};
    assert_int_equal(vg_ctl_alerts_of(f->c, "x", 1, from, seen_cb, &s3), 0);
    assert_int_equal(s3.n, 4);
    assert_true(s3.id[0] == alert_id(1507));
    /* an account never seen, an account whose name is a prefix of none */
    seen_t s4 = {0};
    assert_int_equal(vg_ctl_alerts_of(f->c, "q", 1, NULL, seen_cb, &s4), 0);
    assert_int_equal(s4.n, 0);
    /* the record of alert 1507 gone (as by the retention): skipped, then its entry
     * dropped by drop_gone, and only it */
    unsigned char nk[10] = {'N', '/'};
    vg_be64(nk + 2, ~alert_id(1507));
    assert_int_equal(vg_ctl_del(f->c, nk, 10), 0);
    seen_t s5 = {0};
    assert_int_equal(vg_ctl_alerts_of(f->c, "x", 1, NULL, seen_cb, &s5), 0);
    assert_int_equal(s5.n, 5);
    assert_int_equal(vg_ctl_alert_index_drop_gone(f->c, "x", 1), 1);
    assert_int_equal(count_keys(f->c, "M/x", 4), 5);   /* "M/x\0" */
    assert_int_equal(vg_ctl_alert_index_drop_gone(f->c, "x", 1), 0);
    assert_int_equal(count_keys(f->c, "M/", 2), 2999);
}

/* The retention: the list's records below a time deleted by range, then the index's
 * entries below it pruned, and only those. */
static void test_alert_index_prune(void **state) {
    fx_t *f = *state;
    put_alerts(f->c, 3000);
    unsigned char from[10] = {'N', '/'};
    vg_be64(from + 2, ~((uint64_t)(1000 + 2000) << 16) + 1);
    assert_int_equal(vg_ctl_delete_range(f->c, from, 10, "N0", 2), 0);
    assert_int_equal(count_keys(f->c, "N/", 2), 1000);   /* 2000 .. 2999 stay */
    seen_t s = {0};
    assert_int_equal(vg_ctl_alerts_of(f->c, "x", 1, NULL, seen_cb, &s), 0);
    assert_int_equal(s.n, 2);   /* 2507, 2007; the entries of 1507 .. 7 skipped */
    assert_int_equal(count_keys(f->c, "M/", 2), 3000);
    assert_int_equal(vg_ctl_alert_index_prune(f->c, (uint64_t)(1000 + 2000) << 16), 2000);
    assert_int_equal(count_keys(f->c, "M/", 2), 1000);
    assert_int_equal(count_keys(f->c, "M/x", 4), 2);
    assert_int_equal(count_keys(f->c, "M/xy", 5), 2);
    assert_int_equal(vg_ctl_alert_index_prune(f->c, (uint64_t)(1000 + 2000) << 16), 0);
}

/* The batch writer of the index's build: every key, across batches. */
static void test_keys_batches(void **state) {
    fx_t *f = *state;
    vg_ctl_keys_t b;
    vg_ctl_keys_init(&b, f->c, 0);
    char k[32];
    for (int i = 0; i < 2500; i++) {
        snprintf(k, sizeof k, "M/k%05d", i);
        assert_int_equal(vg_ctl_keys_add(&b, k, strlen(k)), 0);
    }
    assert_int_equal(vg_ctl_keys_end(&b), 0);
    assert_int_equal(b.n, 2500);
    assert_int_equal(count_keys(f->c, "M/k", 3), 2500);
    vg_ctl_keys_init(&b, f->c, 1);
    for (int i = 0; i < 2500; i += 2) {
        snprintf(k, sizeof k, "M/k%05d", i);
        assert_int_equal(vg_ctl_keys_add(&b, k, strlen(k)), 0);
    }
    assert_int_equal(vg_ctl_keys_end(&b), 0);
    assert_int_equal(count_keys(f->c, "M/k", 3), 1250);
}

/* Whether any file of dir holds the bytes s. */
static int dir_holds(const char *dir, const char *s) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        if (!fp) continue;
        static char buf[1 << 20];
        size_t n, keep = 0, sl = strlen(s);
        while ((n = fread(buf + keep, 1, sizeof buf - keep, fp)) > 0) {
            n += keep;
            if (memmem(buf, n, s, sl)) found = 1;
            keep = n < sl ? n : sl - 1;
            memmove(buf, buf + n - keep, keep);
        }
        fclose(fp);
    }
    closedir(d);
    return found;
}

/* An erasure: the account's alerts and their index entries deleted, then purged
 * (vg_ctl_purge_account): no file of the store holds the account's name any more, its
 * index keys' tombstones included; other accounts' entries stay. Here the retention took
 * the account's alerts before the erasure: their index entries are all the erasure finds
 * (vg_ctl_alert_index_drop_gone), no alert span to purge. */
static void test_alert_index_purged(void **state) {
    fx_t *f = *state;
    const char *acct = "erase-me-Q7Z";
    size_t al = strlen(acct);
    for (int i = 0; i < 200; i++) {
        const char *ac = i % 10 == 3 && i < 100 ? acct : "other-acct";
        unsigned char nk[10] = {'N', '/'}, ik[VG_CTL_AIDX_LEN(16)];
        vg_be64(nk + 2, ~alert_id(i));
        char rec[64];
        snprintf(rec, sizeof rec, "{\"account\":\"%s\"}", ac);
        vg_ctl_op_t ops[2] = {{nk, 10, rec, strlen(rec)},
                              {ik, vg_ctl_alert_ikey(ik, ac, strlen(ac), nk), "", 0}};
        assert_int_equal(vg_ctl_write(f->c, ops, 2), 0);
    }
    /* into the store's tables (the purge compacts them) */
    vg_ctl_close(f->c);
    char err[512] = "";
    f->c = vg_ctl_open(f->dir, err, sizeof err);
    assert_non_null(f->c);
    /* the retention: alerts 0 .. 99 */
    unsigned char from[10] = {'N', '/'};
    vg_be64(from + 2, ~alert_id(100) + 1);
    assert_int_equal(vg_ctl_delete_range(f->c, from, 10, "N0", 2), 0);
    /* the erasure: none of its alerts listed, the entries of those gone deleted */
    vg_ctl_span_t span;
    vg_ctl_span_init(&span);
    assert_int_equal(vg_ctl_alert_index_drop_gone(f->c, acct, al), 10);
    assert_true(dir_holds(f->dir, acct));
    assert_int_equal(vg_ctl_purge_account(f->c, acct, al, &span, err, sizeof err), 0);
    vg_ctl_span_deinit(&span);
    assert_false(dir_holds(f->dir, acct));
    assert_int_equal(count_keys(f->c, "M/", 2), 190);
    seen_t s = {0};
    assert_int_equal(vg_ctl_alerts_of(f->c, acct, al, NULL, seen_cb, &s), 0);
    assert_int_equal(s.n, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_trim_keeps_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alert_index_lists_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alert_index_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alert_index_purged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
