/* test_swap.c - unit tests for a ruleset swap (vg_pipeline_set_program): kept specs
 * keep their state exactly (equal to an uninterrupted run of the new rules), new specs
 * start cold (equal to a run that started at the swap) or warm where documented,
 * removed state is freed; with a store, checkpoints, a reopen and a tiny memory budget
 * change nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/pipeline.h"
#include "engine/store.h"
#include "rules/errors.h"

static const char *OLD_SRC =
    "feature c1 = count(1h)\n"
    "feature s1 = sum(tx.amount, 2h)\n"
    "feature mx = max(tx.amount, 30m)\n"
    "feature mc = distinct(tx.merchant, 1h by tx.card)\n"
    "feature pv = prev(tx.amount)\n"
    "feature sc = session_count(10m)\n"
    "feature rm = avg(tx.amount, 1h)\n"
    "feature rk = count(1h by tx.device)\n"
    "feature sd = stddev(tx.amount, 1h)\n"
    "feature ow = count(2h where tx.amount > 100)\n";

/* tx.country becomes `by` group 0: tx.card moves from group 0 to 1 */
static const char *NEW_SRC =
    "feature nk = count(1h by tx.country)\n"
    "feature s1 = sum(tx.amount, 2h)\n"
    "feature mx = max(tx.amount, 30m)\n"
    "feature mc = distinct(tx.merchant, 1h by tx.card)\n"
    "feature pv = prev(tx.amount)\n"
    "feature sc = session_count(10m)\n"
    "feature sd = stddev(tx.amount, 1h)\n"
    "feature c2 = count(30m)\n"
    "feature w2 = count(30m where tx.amount > 50)\n"
    "feature ns = min(tx.amount, 1h)\n"
    "feature np = prev(tx.merchant)\n"
    "feature nss = session_duration(5m)\n"
    "feature nsm = session_sum(tx.amount, 5m)\n"
    "feature nd = seen(tx.merchant, 1h)\n"
    "feature wa = avg(tx.amount, 1h)\n"
    "feature wx = min(tx.amount, 2h)\n"
    "feature wd = distinct(tx.merchant, 30m by tx.card)\n"
    "feature wc = count(1h where tx.amount > 100)\n"
    "feature cm = max(tx.amount, 3h)\n";

/* kept; warm (rebuilt from the rows of an old spec with the same inputs, within the
 * old log's span); cold */
static const char *KEPT[] = {"s1", "mx", "mc", "pv", "sc", "sd"};
static const char *WARM[] = {"c2", "wa", "wx", "wd", "wc", "ns"};
static const char *COLD[] = {"nk", "w2", "np", "nss", "nsm", "nd", "cm"};

#define NEV 600
#define SWAP_AT 350

static vg_program_t *compile(const char *src) {
    vg_source_t s = {"t.vrl", src, strlen(src)};
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(&s, 1, &d);
    if (!p) vg_diags_print(&d, &s, 1, stderr);
    vg_diags_deinit(&d);
    assert_non_null(p);
    return p;
}

/* Event i: 6 accounts, cards shared across accounts, times that go back a little
 * (late, within the lateness) but never across the swap. */
static void event(int i, char *buf, size_t n) {
    uint64_t x = (uint64_t)i * 2654435761u + 12345;
    x ^= x >> 13;
    x *= 0x9E3779B97F4A7C15ULL;
    x ^= x >> 29;
    int64_t base = 1767225600000LL + (int64_t)i * 45000;
    int64_t jitter = (int64_t)(x % 240000);   /* up to 4 minutes back */
    if (i >= SWAP_AT && base - jitter < 1767225600000LL + (int64_t)SWAP_AT * 45000)
        jitter = 0;
    int64_t ts = base - jitter;
    double amount = (double)((x >> 8) % 20000) / 100.0;
    snprintf(buf, n,
             "{\"id\":\"e%d\",\"account\":\"acc%d\",\"ts\":%lld,\"amount\":%.2f,"
             "\"merchant\":\"m%d\",\"card\":\"c%d\",\"device\":\"d%d\",\"country\":\"%s\"}",
             i, (int)((x >> 20) % 6), (long long)ts, amount, (int)((x >> 24) % 9),
             (int)((x >> 32) % 4), (int)((x >> 36) % 3), ((x >> 40) % 2) ? "FR" : "DE");
}

/* The value text of feature `name` in a decision line ("" when absent). */
static void feature_value(const char *line, const char *name, char *out, size_t n) {
    out[0] = 0;
    const char *f = strstr(line, "\"features\":{");
    if (!f) return;
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *k = f;
    for (;;) {
        k = strstr(k, key);
        if (!k) return;
        if (k[-1] == '{' || k[-1] == ',') break;
        k++;
    }
    k += strlen(key);
    size_t i = 0;
    int inq = 0;
    while (k[i] && (inq || (k[i] != ',' && k[i] != '}')) && i + 1 < n) {
        if (k[i] == '"') inq = !inq;
        out[i] = k[i];
        i++;
    }
    out[i] = 0;
}

typedef struct run {
    char **lines;   /* decision line per event index (NULL: not fed) */
} run_t;

static void run_free(run_t *r) {
    for (int i = 0; i < NEV; i++) free(r->lines[i]);
    free(r->lines);
}

static void feed(vg_pipeline_t *pl, run_t *r, int i) {
    char ev[512];
    event(i, ev, sizeof ev);
    vg_buf_t out;
    vg_buf_init(&out);
    vg_outcome_t oc;
    assert_int_equal(vg_pipeline_line(pl, ev, strlen(ev), &out, &oc), 0);
    if (oc != VG_OUT_DECIDED) fprintf(stderr, "event %d: %.*s", i, (int)out.len, out.p);
    assert_int_equal(oc, VG_OUT_DECIDED);
    r->lines[i] = strndup(out.p, out.len);
    vg_buf_deinit(&out);
}

/* Runs program `p` over events [from, to) into r. */
static void plain_run(vg_program_t *p, int from, int to, run_t *r) {
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_pipeline_t *pl = vg_pipeline_new(p, &o, err, sizeof err);
    assert_non_null(pl);
    for (int i = from; i < to; i++) feed(pl, r, i);
    vg_pipeline_free(pl);
}

/* Features `names` of the events after the swap equal those of `ref`: as text, or
 * (approx) numbers within 1e-9 relative (sums rebuilt from the rows, not carried). */
static void check_against(const run_t *a, const run_t *ref, const char **names, int nn,
                          int approx) {
    char va[256], vb[256];
    for (int i = SWAP_AT; i < NEV; i++)
        for (int j = 0; j < nn; j++) {
            feature_value(a->lines[i], names[j], va, sizeof va);
            feature_value(ref->lines[i], names[j], vb, sizeof vb);
            if (approx && strcmp(va, vb) != 0 && strcmp(va, "null") && strcmp(vb, "null")) {
                double x = strtod(va, NULL), y = strtod(vb, NULL);
                double m = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
                if (fabs(x - y) <= 1e-9 * (m > 1 ? m : 1)) continue;
            }
            if (strcmp(va, vb) != 0)
                fail_msg("event %d feature %s: %s after the swap, %s expected", i, names[j], va,
                         vb);
        }
}

/* A checkpoint: whole (vg_pipeline_checkpoint), or as serve writes them, slices of 16
 * records and the pipeline's meta records in the caller's batch (after a swap the first
 * slice takes everything). */
static void ckpt(vg_pipeline_t *pl, vg_store_t *store, int sliced) {
    char err[256];
    if (!sliced) {
        assert_int_equal(vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err), 0);
        return;
    }
    vg_batch_t *b = vg_batch_new();
    assert_non_null(b);
    size_t left = 1;
    for (int first = 1; left; first = 0) {
        vg_batch_clear(b);
        assert_int_equal(vg_state_checkpoint_some(vg_pipeline_state(pl), 16, b, &left), 0);
        if (first) assert_int_equal(vg_pipeline_checkpoint_meta(pl, b), 0);
        assert_int_equal(vg_store_write(store, b, 0, err, sizeof err), 0);
        vg_state_checkpoint_done(vg_pipeline_state(pl), 1);
        vg_state_evict(vg_pipeline_state(pl));
    }
    vg_batch_free(b);
}

/* Old rules, then the new ones from event SWAP_AT on (memory only, or with a store:
 * checkpoints, a tiny budget, a reopen with the new rules halfway after the swap). */
static void swap_run(vg_program_t *po, vg_program_t *pn, const char *dir, int sliced,
                     run_t *r) {
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_store_t *store = NULL;
    if (dir) {
        store = vg_store_open(dir, err, sizeof err);
        assert_non_null(store);
        o.store = store;
        o.mem_budget = 4096;   /* evicts nearly everything at each checkpoint */
    }
    vg_pipeline_t *pl = vg_pipeline_new(po, &o, err, sizeof err);
    assert_non_null(pl);
    for (int i = 0; i < SWAP_AT; i++) {
        feed(pl, r, i);
        if (store && i % 50 == 49) ckpt(pl, store, sliced);
    }
    if (store) {
        vg_state_stats_t ss;
        vg_state_get_stats(vg_pipeline_state(pl), &ss);
        assert_true(ss.evictions > 0);
    }
    int rc = vg_pipeline_set_program(pl, pn, err, sizeof err);
    if (rc) fail_msg("swap: %s", err);
    /* a duplicate of an event decided before the swap gets its original decision */
    {
        char ev[512];
        event(SWAP_AT - 1, ev, sizeof ev);
        vg_buf_t out;
        vg_buf_init(&out);
        vg_outcome_t oc;
        assert_int_equal(vg_pipeline_line(pl, ev, strlen(ev), &out, &oc), 0);
        assert_int_equal(oc, VG_OUT_DUPLICATE);
        assert_int_equal(out.len, strlen(r->lines[SWAP_AT - 1]));
        assert_memory_equal(out.p, r->lines[SWAP_AT - 1], out.len);
        vg_buf_deinit(&out);
    }
    int half = (SWAP_AT + NEV) / 2;
    for (int i = SWAP_AT; i < NEV; i++) {
        feed(pl, r, i);
        if (store && i == half) {
            ckpt(pl, store, sliced);
            vg_pipeline_free(pl);
            vg_store_close(store);
            store = vg_store_open(dir, err, sizeof err);
            assert_non_null(store);
            o.store = store;
            pl = vg_pipeline_new(pn, &o, err, sizeof err);
            if (!pl) fail_msg("reopen with the new rules: %s", err);
        } else if (store && i % 40 == 39) {
            ckpt(pl, store, sliced);
        }
    }
    vg_pipeline_free(pl);
    vg_store_close(store);
}

static void test_swap_kept_new_removed(void **st) {
    (void)st;
    vg_program_t *po = compile(OLD_SRC), *pn = compile(NEW_SRC);
    run_t a = {calloc(NEV, sizeof(char *))}, b = {calloc(NEV, sizeof(char *))},
          c = {calloc(NEV, sizeof(char *))};
    swap_run(po, pn, NULL, 0, &a);
    plain_run(pn, 0, NEV, &b);          /* uninterrupted, new rules */
    plain_run(pn, SWAP_AT, NEV, &c);    /* started at the swap */
    check_against(&a, &b, KEPT, (int)(sizeof KEPT / sizeof *KEPT), 0);
    check_against(&a, &b, WARM, (int)(sizeof WARM / sizeof *WARM), 1);
    check_against(&a, &c, COLD, (int)(sizeof COLD / sizeof *COLD), 0);
    /* the removed features are gone from the decisions */
    char v[64];
    feature_value(a.lines[NEV - 1], "rm", v, sizeof v);
    assert_string_equal(v, "");
    /* a warm feature is not what a cold run gives (else the check above is vacuous) */
    char vb[64];
    for (size_t w = 0; w < sizeof WARM / sizeof *WARM; w++) {
        int differ = 0;
        for (int i = SWAP_AT; i < SWAP_AT + 40; i++) {
            feature_value(a.lines[i], WARM[w], v, sizeof v);
            feature_value(c.lines[i], WARM[w], vb, sizeof vb);
            differ |= strcmp(v, vb) != 0;
        }
        if (!differ) fail_msg("warm feature %s equals a cold start", WARM[w]);
    }
    run_free(&a);
    run_free(&b);
    run_free(&c);
    vg_prog_unref(po);
    vg_prog_unref(pn);
}

static void swap_with_store(int sliced) {
    char dir[] = "/tmp/vigil-test-swap-XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_program_t *po = compile(OLD_SRC), *pn = compile(NEW_SRC);
    run_t a = {calloc(NEV, sizeof(char *))}, s = {calloc(NEV, sizeof(char *))};
    swap_run(po, pn, NULL, 0, &a);
    swap_run(po, pn, dir, sliced, &s);
    for (int i = 0; i < NEV; i++)
        if (strcmp(a.lines[i], s.lines[i]) != 0)
            fail_msg("event %d:\n%s%s", i, a.lines[i], s.lines[i]);
    run_free(&a);
    run_free(&s);
    vg_prog_unref(po);
    vg_prog_unref(pn);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_swap_with_store(void **st) {
    (void)st;
    swap_with_store(0);
}

static void test_swap_with_store_sliced(void **st) {
    (void)st;
    swap_with_store(1);
}

static void test_swap_frees(void **st) {
    (void)st;
    vg_program_t *po = compile(OLD_SRC), *pn = compile("feature c2 = count(30m)\n");
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_pipeline_t *pl = vg_pipeline_new(po, &o, err, sizeof err);
    assert_non_null(pl);
    run_t r = {calloc(NEV, sizeof(char *))};
    for (int i = 0; i < SWAP_AT; i++) feed(pl, &r, i);
    vg_state_stats_t before, after;
    vg_state_get_stats(vg_pipeline_state(pl), &before);
    assert_true(before.keys_in_memory > 0);
    assert_int_equal(vg_pipeline_set_program(pl, pn, err, sizeof err), 0);
    vg_state_get_stats(vg_pipeline_state(pl), &after);
    assert_int_equal(after.keys_in_memory, 0);
    assert_int_equal(after.accounts_in_memory, before.accounts_in_memory);
    assert_true(after.bytes < before.bytes);
    /* and back: the old rules start cold (count(1h) too: the log covers only 30m) */
    assert_int_equal(vg_pipeline_set_program(pl, po, err, sizeof err), 0);
    for (int i = SWAP_AT; i < NEV; i++) feed(pl, &r, i);
    vg_pipeline_free(pl);
    run_free(&r);
    vg_prog_unref(po);
    vg_prog_unref(pn);
}

/* Serve's way of checkpointing: slices of vg_state_checkpoint_some plus the pipeline's
 * own records (vg_pipeline_checkpoint_meta) written by the caller; a pipeline reopened
 * on that store goes on exactly like one that never stopped (anomaly population, label
 * windows by key, label memos). */
static void test_sliced_checkpoint_meta(void **st) {
    (void)st;
    char dir[] = "/tmp/vigil-test-swapmeta-XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_program_t *p = compile("feature fm = fraud_count(30d by tx.merchant)\n"
                              "feature fa = fraud_count(30d)\n"
                              "feature an = anomaly.score\n");
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    run_t a = {calloc(NEV, sizeof(char *))}, b = {calloc(NEV, sizeof(char *))};
    vg_pipeline_t *ref = vg_pipeline_new(p, &o, err, sizeof err);
    assert_non_null(ref);
    vg_store_t *store = vg_store_open(dir, err, sizeof err);
    assert_non_null(store);
    o.store = store;
    vg_pipeline_t *pl = vg_pipeline_new(p, &o, err, sizeof err);
    assert_non_null(pl);
    vg_batch_t *bt = vg_batch_new();
    int stop = 200;
    for (int i = 0; i < NEV; i++) {
        feed(ref, &a, i);
        feed(pl, &b, i);
        if (i % 7 == 3) {   /* label event i - 2 as fraud in both */
            char id[16], acct[16], ev[512];
            snprintf(id, sizeof id, "e%d", i - 2);
            event(i - 2, ev, sizeof ev);
            const char *q = strstr(ev, "\"account\":\"") + 11;
            size_t al = (size_t)(strchr(q, '"') - q);
            memcpy(acct, q, al);
            acct[al] = 0;
            vg_label_t lb = {id, strlen(id), acct, al, 1, INT64_MIN};
            assert_int_equal(vg_pipeline_label(ref, &lb), 0);
            assert_int_equal(vg_pipeline_label(pl, &lb), 0);
        }
        if (i == stop) {
            size_t left = 1;
            int first = 1;
            while (left) {
                vg_batch_clear(bt);
                assert_int_equal(
                    vg_state_checkpoint_some(vg_pipeline_state(pl), 16, bt, &left), 0);
                if (first) assert_int_equal(vg_pipeline_checkpoint_meta(pl, bt), 0);
                first = 0;
                assert_int_equal(vg_store_write(store, bt, 0, err, sizeof err), 0);
                vg_state_checkpoint_done(vg_pipeline_state(pl), 1);
            }
            vg_pipeline_free(pl);
            vg_store_close(store);
            store = vg_store_open(dir, err, sizeof err);
            assert_non_null(store);
            o.store = store;
            pl = vg_pipeline_new(p, &o, err, sizeof err);
            if (!pl) fail_msg("reopen: %s", err);
        }
    }
    int fraud_seen = 0;
    for (int i = 0; i < NEV; i++) {
        if (strcmp(a.lines[i], b.lines[i]) != 0) fail_msg("event %d:\n%s%s", i, a.lines[i], b.lines[i]);
        char v[64];
        feature_value(a.lines[i], "fm", v, sizeof v);
        fraud_seen |= i > stop && strcmp(v, "0") != 0;
    }
    assert_true(fraud_seen);
    vg_batch_free(bt);
    vg_pipeline_free(pl);
    vg_pipeline_free(ref);
    vg_store_close(store);
    run_free(&a);
    run_free(&b);
    vg_prog_unref(p);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Only rules change: the layouts are the same, nothing is loaded or rewritten, and the
 * features go on exactly. */
static void test_swap_same_layout(void **st) {
    (void)st;
    char dir[] = "/tmp/vigil-test-swapsame-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char src2[2048];
    snprintf(src2, sizeof src2, "%srule big\n  action review\n  score 50\n  when s1 > 1000\nend\n",
             OLD_SRC);
    vg_program_t *po = compile(OLD_SRC), *p2 = compile(src2);
    char err[256];
    vg_store_t *store = vg_store_open(dir, err, sizeof err);
    assert_non_null(store);
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    o.store = store;
    o.mem_budget = 4096;
    vg_pipeline_t *pl = vg_pipeline_new(po, &o, err, sizeof err);
    assert_non_null(pl);
    run_t a = {calloc(NEV, sizeof(char *))}, b = {calloc(NEV, sizeof(char *))};
    for (int i = 0; i < SWAP_AT; i++) feed(pl, &a, i);
    assert_int_equal(vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err), 0);
    vg_state_stats_t before, after;
    vg_state_get_stats(vg_pipeline_state(pl), &before);
    assert_int_equal(vg_pipeline_set_program(pl, p2, err, sizeof err), 0);
    vg_state_get_stats(vg_pipeline_state(pl), &after);
    assert_int_equal(after.accounts_in_memory, before.accounts_in_memory);   /* none loaded */
    assert_int_equal(after.loads, before.loads);
    for (int i = SWAP_AT; i < NEV; i++) feed(pl, &a, i);
    vg_pipeline_free(pl);
    vg_store_close(store);
    plain_run(p2, 0, NEV, &b);
    const char *all[] = {"c1", "s1", "mx", "mc", "pv", "sc", "rm", "rk", "sd", "ow"};
    check_against(&a, &b, all, (int)(sizeof all / sizeof *all), 0);
    int fired = 0;
    for (int i = SWAP_AT; i < NEV; i++) fired |= strstr(a.lines[i], "\"big\"") != NULL;
    assert_true(fired);
    run_free(&a);
    run_free(&b);
    vg_prog_unref(po);
    vg_prog_unref(p2);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_kept_new_removed),
        cmocka_unit_test(test_swap_with_store),
        cmocka_unit_test(test_swap_with_store_sliced),
        cmocka_unit_test(test_swap_frees),
        cmocka_unit_test(test_swap_same_layout),
        cmocka_unit_test(test_sliced_checkpoint_meta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
