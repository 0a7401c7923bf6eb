/* test_labels.c - unit tests for labels and anomaly scores in the pipeline
 * (engine/labels.c, engine/acctx.c, engine/pipeline.c): the label file, label
 * application order, fraud_count/labelled_count and fraud_sum/labelled_sum against a
 * brute-force recomputation, the decision's anomaly object, identical scores and label
 * sums after a checkpoint and restart, and label sums carried over a ruleset change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/labels.h"
#include "engine/pipeline.h"
#include "engine/store.h"
#include "rules/errors.h"

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

static char OUT[8192];

static const char *feed(vg_pipeline_t *pl, const char *line) {
    vg_buf_t out;
    vg_buf_init(&out);
    vg_outcome_t oc;
    assert_int_equal(vg_pipeline_line(pl, line, strlen(line), &out, &oc), 0);
    assert_int_equal(oc, VG_OUT_DECIDED);
    size_t n = out.len < sizeof(OUT) - 1 ? out.len : sizeof(OUT) - 1;
    memcpy(OUT, out.p, n);
    OUT[n] = 0;
    vg_buf_deinit(&out);
    return OUT;
}

/* The number after "name": in a decision line; -1 for null. */
static double feat(const char *line, const char *name) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", name);
    const char *p = strstr(line, k);
    assert_non_null(p);
    p += strlen(k);
    if (strncmp(p, "null", 4) == 0) return -1;
    return strtod(p, NULL);
}

static vg_labels_t *labels_from(const char *text, char *err, size_t errlen) {
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    vg_labels_t *l = vg_labels_read(f, "l.csv", err, errlen);
    fclose(f);
    return l;
}

static void test_label_file(void **st) {
    (void)st;
    char err[256];
    vg_labels_t *l = labels_from("id,account,fraud,at\n"
                                 "t2,a,1,2026-01-01T02:00:00Z\n"
                                 "\n"
                                 "t1,a,0,1767225600000\n"
                                 "t3,b,1,2026-01-01T02:00:00Z\n", err, sizeof err);
    assert_non_null(l);
    assert_int_equal(vg_labels_count(l), 3);
    /* sorted by time, stable */
    assert_string_equal(vg_labels_get(l, 0)->id, "t1");
    assert_int_equal(vg_labels_get(l, 0)->fraud, 0);
    assert_string_equal(vg_labels_get(l, 1)->id, "t2");
    assert_string_equal(vg_labels_get(l, 2)->id, "t3");
    assert_int_equal(vg_labels_get(l, 2)->fraud, 1);
    vg_labels_free(l);
    assert_null(labels_from("id,fraud\nt1,1\n", err, sizeof err));
    assert_non_null(strstr(err, "l.csv:1: expected the header"));
    assert_null(labels_from("id,account,fraud,at\nt1,a,1,2026-01-01T00:00:00Z\nt2,a,2,2026-01-01T00:00:00Z\n",
                            err, sizeof err));
    assert_non_null(strstr(err, "l.csv:3: fraud must be 0 or 1"));
    /* fraud is exactly 0 or 1 (docs/replay.md): true/false and " 1" were taken */
    assert_null(labels_from("id,account,fraud,at\nt1,a,true,2026-01-01T00:00:00Z\n", err,
                            sizeof err));
    assert_non_null(strstr(err, "l.csv:2: fraud must be 0 or 1, found 'true'"));
    assert_null(labels_from("id,account,fraud,at\nt1,a,false,2026-01-01T00:00:00Z\n", err,
                            sizeof err));
    assert_non_null(strstr(err, "l.csv:2: fraud must be 0 or 1, found 'false'"));
    assert_null(labels_from("id,account,fraud,at\nt1,a, 1,2026-01-01T00:00:00Z\n", err,
                            sizeof err));
    assert_non_null(strstr(err, "l.csv:2: fraud: spaces around the value ' 1'"));
    assert_null(labels_from("id,account,fraud,at\nt1,a ,1,2026-01-01T00:00:00Z\n", err,
                            sizeof err));
    assert_non_null(strstr(err, "l.csv:2: account: spaces around the value 'a '"));
    /* RFC 4180 quoting (SPEC section 5: a CSV): a quoted field kept its quotes in the
     * id, which then matched no event; now they are removed, "" is a quote, and a comma
     * may be quoted */
    vg_labels_t *q = labels_from("id,account,fraud,at\n\"e1\",\"A\",\"1\",2026-11-01T00:30:00Z\n"
                                 "\"x,\"\"y\"\"\",B,0,2026-11-01T00:31:00Z\n", err, sizeof err);
    assert_non_null(q);
    assert_int_equal(vg_labels_count(q), 2);
    const vg_label_t *q0 = vg_labels_get(q, 0), *q1 = vg_labels_get(q, 1);
    assert_int_equal(q0->idlen, 2);
    assert_memory_equal(q0->id, "e1", 2);
    assert_int_equal(q0->alen, 1);
    assert_int_equal(q0->fraud, 1);
    assert_int_equal(q1->idlen, 5);
    assert_memory_equal(q1->id, "x,\"y\"", 5);
    vg_labels_free(q);
    assert_null(labels_from("id,account,fraud,at\n\"e1,A,1,2026-01-01T00:00:00Z\n", err,
                            sizeof err));
    assert_non_null(strstr(err, "l.csv:2: id: a quoted field without its closing quote"));
    assert_null(labels_from("id,account,fraud,at\ne\"1,A,1,2026-01-01T00:00:00Z\n", err,
                            sizeof err));
    assert_non_null(strstr(err, "l.csv:2: id: a quote inside an unquoted field"));
    assert_null(labels_from("id,account,fraud,at\nt1,a,1,yesterday\n", err, sizeof err));
    assert_non_null(strstr(err, "l.csv:2: bad time"));
    assert_null(labels_from("id,account,fraud,at\nt1,a,1\n", err, sizeof err));
    assert_non_null(strstr(err, "l.csv:2: expected 4 fields"));
    /* a fifth field is an error, not ignored (it was: the 4th ended at its comma) */
    assert_null(labels_from("id,account,fraud,at\nt1,a,1,2026-01-01T00:00:00Z,x\n", err,
                            sizeof err));
    assert_non_null(strstr(err, "l.csv:2: expected 4 fields"));
    assert_null(labels_from("id,account,fraud,at\nt1,a,1,1767225600000,\n", err, sizeof err));
    assert_non_null(strstr(err, "l.csv:2: expected 4 fields"));
    /* epoch milliseconds within the years 0000-9999, as an event's ts */
    assert_null(labels_from("id,account,fraud,at\nt1,a,1,253402300800000\n", err, sizeof err));
    assert_non_null(strstr(err, "l.csv:2: epoch milliseconds 253402300800000 out of range"));
    l = labels_from("id,account,fraud,at\nt1,a,1,253402300799999 \n", err, sizeof err);
    assert_non_null(l);
    assert_true(vg_labels_get(l, 0)->at_ms == INT64_C(253402300799999));
    vg_labels_free(l);
}

/* An id or account with U+0000 or invalid UTF-8 is refused with its line, as POST
 * /v1/labels and events refuse it (it was loaded, then matched no event in silence) */
static void test_label_file_text(void **st) {
    (void)st;
    static const struct {
        const char *text;
        size_t len;
        const char *want;
    } bad[] = {
#define T(s, w) {s, sizeof(s) - 1, w}
        T("id,account,fraud,at\ne1,A\0,1,2026-12-07T10:30:00Z\n",
          "l.csv:2: account may not contain U+0000"),
        T("id,account,fraud,at\n\"e\0001\",A,1,2026-12-07T10:30:00Z\n",
          "l.csv:2: id may not contain U+0000"),
        T("id,account,fraud,at\ne0,A,1,2026-12-07T10:30:00Z\ne1,A\xc0\xaf,1,2026-12-07T10:30:00Z\n",
          "l.csv:3: account is not valid UTF-8 (byte 0xc0 at offset 1)"),   /* overlong '/' */
        T("id,account,fraud,at\ne1\xed\xa0\x80,A,1,2026-12-07T10:30:00Z\n",
          "l.csv:2: id is not valid UTF-8 (byte 0xed at offset 2)"),   /* a surrogate */
        T("id,account,fraud,at\ne1,caf\xe9,1,2026-12-07T10:30:00Z\n",
          "l.csv:2: account is not valid UTF-8 (byte 0xe9 at offset 3)"),   /* Latin-1 */
        T("id,account,fraud,at\ne1,A\xf4\x90\x80\x80,0,2026-12-07T10:30:00Z\n",
          "l.csv:2: account is not valid UTF-8 (byte 0xf4 at offset 1)"),   /* > U+10FFFF */
#undef T
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fmemopen((void *)bad[i].text, bad[i].len, "r");
        assert_non_null(f);
        err[0] = 0;
        vg_labels_t *l = vg_labels_read(f, "l.csv", err, sizeof err);
        fclose(f);
        if (l || strcmp(err, bad[i].want) != 0)
            fail_msg("case %zu: %s, err '%s', want '%s'", i, l ? "loaded" : "refused", err,
                     bad[i].want);
    }
    /* valid UTF-8 of every length is kept as written */
    vg_labels_t *l = labels_from("id,account,fraud,at\n\xc3\xa9" "1,\xe2\x82\xac\xf0\x9f\x92\xb3,1,"
                                 "2026-12-07T10:30:00Z\n", err, sizeof err);
    assert_non_null(l);
    assert_int_equal(vg_labels_get(l, 0)->idlen, 3);
    assert_int_equal(vg_labels_get(l, 0)->alen, 7);
    vg_labels_free(l);
}

/* vg_labels_load reads a regular file only: /dev/zero grew its buffer without end (GBs
 * a second), a FIFO waited for a writer */
static void test_label_file_not_regular(void **st) {
    (void)st;
    char err[256];
    char dir[] = "/tmp/vigil-test-labels-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/l.csv", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(30);   /* a FIFO waited for a writer for good: fail, don't hang */
    vg_labels_t *l = vg_labels_load(fifo, err, sizeof err);   /* at once, no writer */
    alarm(0);
    unlink(fifo);
    assert_null(l);
    char want[400];
    snprintf(want, sizeof want, "%s: not a regular file", fifo);
    assert_string_equal(err, want);
    assert_null(vg_labels_load("/dev/zero", err, sizeof err));
    assert_string_equal(err, "/dev/zero: not a regular file");
    assert_null(vg_labels_load(dir, err, sizeof err));
    assert_non_null(strstr(err, ": not a regular file"));
    rmdir(dir);
    assert_null(vg_labels_load("/nonexistent/l.csv", err, sizeof err));
    assert_string_equal(err, "/nonexistent/l.csv: No such file or directory");
}

static const char *LSRC =
    "feature mf = fraud_count(2h by tx.merchant)\n"
    "feature ml = labelled_count(2h by tx.merchant)\n"
    "feature af = fraud_count(2h)\n"
    "feature al = labelled_count(2h)\n"
    "feature fs = fraud_sum(tx.amount, 2h)\n"
    "feature ls = labelled_sum(tx.amount, 2h)\n"
    "feature ns = labelled_sum(tx.n, 2h)\n";   /* tx.n is sometimes a string: null */

/* A label is applied before the first event whose time is at or after its `at`, and
 * counts by its event's time and keys. */
static void test_label_order(void **st) {
    (void)st;
    vg_program_t *p = compile(LSRC);
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_pipeline_t *pl = vg_pipeline_new(p, &o, err, sizeof err);
    assert_non_null(pl);
    vg_labels_t *l = labels_from("id,account,fraud,at\n"
                                 "t1,a,1,2026-01-01T00:30:00Z\n"
                                 "t2,b,0,2026-01-01T00:40:00Z\n"
                                 "nope,a,1,2026-01-01T00:40:00Z\n", err, sizeof err);
    assert_non_null(l);
    vg_pipeline_set_labels(pl, l);
    feed(pl, "{\"id\":\"t1\",\"account\":\"a\",\"ts\":\"2026-01-01T00:00:00Z\",\"amount\":1,\"merchant\":\"m\"}");
    feed(pl, "{\"id\":\"t2\",\"account\":\"b\",\"ts\":\"2026-01-01T00:10:00Z\",\"amount\":1,\"merchant\":\"m\"}");
    /* before t1's label time: nothing known */
    const char *o1 = feed(pl, "{\"id\":\"t3\",\"account\":\"c\",\"ts\":\"2026-01-01T00:29:59.999Z\",\"amount\":1,\"merchant\":\"m\"}");
    assert_true(feat(o1, "mf") == 0 && feat(o1, "ml") == 0);
    /* at exactly its time: applied first */
    const char *o2 = feed(pl, "{\"id\":\"t4\",\"account\":\"a\",\"ts\":\"2026-01-01T00:30:00Z\",\"amount\":1,\"merchant\":\"m\"}");
    assert_true(feat(o2, "mf") == 1 && feat(o2, "ml") == 1);
    assert_true(feat(o2, "af") == 1 && feat(o2, "al") == 1);
    /* another merchant: nothing; t2's label (genuine) comes at 00:40 */
    const char *o3 = feed(pl, "{\"id\":\"t5\",\"account\":\"b\",\"ts\":\"2026-01-01T00:45:00Z\",\"amount\":1,\"merchant\":\"x\"}");
    assert_true(feat(o3, "mf") == 0 && feat(o3, "ml") == 0);
    assert_true(feat(o3, "af") == 0 && feat(o3, "al") == 1);
    const char *o4 = feed(pl, "{\"id\":\"t6\",\"account\":\"d\",\"ts\":\"2026-01-01T00:50:00Z\",\"amount\":1,\"merchant\":\"m\"}");
    assert_true(feat(o4, "mf") == 1 && feat(o4, "ml") == 2);
    /* no merchant: the by-key features are null */
    const char *o5 = feed(pl, "{\"id\":\"t7\",\"account\":\"a\",\"ts\":\"2026-01-01T00:51:00Z\",\"amount\":1}");
    assert_true(feat(o5, "mf") == -1 && feat(o5, "af") == 1);
    /* the window is by the labelled event's time: t1 (00:00) leaves at 02:00:00.001 */
    const char *o6 = feed(pl, "{\"id\":\"t8\",\"account\":\"a\",\"ts\":\"2026-01-01T02:00:00.001Z\",\"amount\":1,\"merchant\":\"m\"}");
    assert_true(feat(o6, "mf") == 0 && feat(o6, "ml") == 1 && feat(o6, "af") == 0);
    /* a live relabel: t2 was fraud after all */
    vg_label_t lb = {"t2", 2, "b", 1, 1, 0};
    assert_int_equal(vg_pipeline_label(pl, &lb), 0);
    const char *o7 = feed(pl, "{\"id\":\"t9\",\"account\":\"e\",\"ts\":\"2026-01-01T02:00:01Z\",\"amount\":1,\"merchant\":\"m\"}");
    assert_true(feat(o7, "mf") == 1 && feat(o7, "ml") == 1);
    uint64_t ap, un;
    vg_pipeline_label_stats(pl, &ap, &un);
    assert_int_equal(ap, 3);
    assert_int_equal(un, 1);   /* "nope" */
    /* no anomaly.* in the rules: the object stays empty */
    assert_non_null(strstr(o7, "\"anomaly\":{},\"ruleset\":1}"));
    vg_pipeline_free(pl);
    vg_labels_free(l);
    vg_prog_unref(p);
}

/* Random events and labels against a brute-force recomputation. */
typedef struct bev {
    char id[16];
    int acct, merch;      /* merch -1: none */
    int64_t ts;
    int status;           /* 0 none, 1 genuine, 2 fraud */
    int amount;           /* tx.amount; tx.n is amount / 2 when amount is even, else "s" */
} bev_t;

static uint64_t rng = 88172645463325252ULL;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void test_differential(void **st) {
    (void)st;
    vg_program_t *p = compile(LSRC);
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    o.lateness_ms = 10 * 60000;
    char err[256];
    vg_pipeline_t *pl = vg_pipeline_new(p, &o, err, sizeof err);
    assert_non_null(pl);
    enum { N = 3000, NA = 6, NM = 4 };
    const int64_t W = 2 * 3600000, LATE = 10 * 60000, H = W + LATE;
    bev_t *ev = calloc(N, sizeof *ev);
    int64_t anew[NA], mnew[NM];
    for (int i = 0; i < NA; i++) anew[i] = INT64_MIN;
    for (int i = 0; i < NM; i++) mnew[i] = INT64_MIN;
    int64_t t = 1767225600000LL;
    int n = 0, checked = 0;
    for (int k = 0; k < N; k++) {
        /* sometimes a label for a random earlier event (maybe forgotten) */
        if (n > 0 && rnd(3) == 0) {
            int j = n - 1 - (int)rnd(n < 200 ? (uint32_t)n : 200);
            int fraud = rnd(3) == 0;
            vg_label_t lb = {ev[j].id, strlen(ev[j].id), NULL, 2, fraud, 0};
            char an[8];
            snprintf(an, sizeof an, "a%d", ev[j].acct);
            lb.account = an;
            assert_int_equal(vg_pipeline_label(pl, &lb), 0);
            if (ev[j].ts >= anew[ev[j].acct] - H) ev[j].status = fraud ? 2 : 1;
        }
        t += rnd(120000);
        bev_t *e = &ev[n];
        snprintf(e->id, sizeof e->id, "e%d", k);
        e->acct = (int)rnd(NA);
        e->merch = rnd(8) == 0 ? -1 : (int)rnd(NM);
        e->ts = t - (int64_t)rnd(8 * 60000);   /* out of order within the lateness */
        char line[256], nv[16];
        e->amount = 1 + (int)rnd(100);
        if (e->amount % 2 == 0) snprintf(nv, sizeof nv, "%d", e->amount / 2);
        else snprintf(nv, sizeof nv, "\"s\"");
        if (e->merch >= 0)
            snprintf(line, sizeof line,
                     "{\"id\":\"%s\",\"account\":\"a%d\",\"ts\":%lld,\"amount\":%d,\"n\":%s,\"merchant\":\"m%d\"}",
                     e->id, e->acct, (long long)e->ts, e->amount, nv, e->merch);
        else
            snprintf(line, sizeof line, "{\"id\":\"%s\",\"account\":\"a%d\",\"ts\":%lld,\"amount\":%d,\"n\":%s}",
                     e->id, e->acct, (long long)e->ts, e->amount, nv);
        if (anew[e->acct] != INT64_MIN && e->ts < anew[e->acct] - LATE) continue;   /* late */
        const char *out = feed(pl, line);
        if (e->ts > anew[e->acct]) anew[e->acct] = e->ts;
        int mlate = e->merch >= 0 && mnew[e->merch] != INT64_MIN && e->ts < mnew[e->merch] - LATE;
        if (e->merch >= 0 && e->ts > mnew[e->merch]) mnew[e->merch] = e->ts;
        /* brute force over the earlier events */
        int mf = 0, ml = 0, af = 0, al = 0, fs = 0, ls = 0, ns = 0;
        for (int j = 0; j < n; j++) {
            const bev_t *x = &ev[j];
            if (!x->status || x->ts < e->ts - W || x->ts > e->ts) continue;
            if (x->acct == e->acct) {
                al++;
                af += x->status == 2;
                ls += x->amount;
                fs += x->status == 2 ? x->amount : 0;
                ns += x->amount % 2 == 0 ? x->amount / 2 : 0;
            }
            if (e->merch >= 0 && x->merch == e->merch) {
                ml++;
                mf += x->status == 2;
            }
        }
        assert_true(feat(out, "af") == af);
        assert_true(feat(out, "al") == al);
        if (feat(out, "fs") != fs || feat(out, "ls") != ls || feat(out, "ns") != ns)
            fail_msg("event %d: fs %g/%d ls %g/%d ns %g/%d", k, feat(out, "fs"), fs,
                     feat(out, "ls"), ls, feat(out, "ns"), ns);
        if (e->merch < 0 || mlate) {
            assert_true(feat(out, "mf") == -1 && feat(out, "ml") == -1);
        } else {
            if (feat(out, "mf") != mf || feat(out, "ml") != ml)
                fail_msg("event %d: mf %g/%d ml %g/%d", k, feat(out, "mf"), mf, feat(out, "ml"), ml);
            checked += ml > 0;
        }
        n++;
    }
    assert_true(checked > 100);   /* the windows did hold labels */
    free(ev);
    vg_pipeline_free(pl);
    vg_prog_unref(p);
}

static const char *ASRC =
    "feature a = anomaly.score\n"
    "feature am = anomaly.amount\n"
    "feature af = fraud_count(1d)\n"
    "feature fsa = fraud_sum(tx.amount * anomaly.score, 1d)\n"   /* x kept through eviction */
    "rule r action review score 100 * anomaly.score when anomaly.score > 0.5 end\n";

static void line_of(char *buf, size_t cap, int i) {
    snprintf(buf, cap,
             "{\"id\":\"e%d\",\"account\":\"a%d\",\"ts\":%lld,\"amount\":%d.5,\"merchant\":\"m%d\"}",
             i, i % 7, 1767225600000LL + (long long)i * 600000, i % 50 == 49 ? 5000 : 20 + i % 13,
             i % 5);
}

/* The decision's anomaly object, and the same scores after a checkpoint and restart. */
static void test_anomaly_resume(void **st) {
    (void)st;
    vg_program_t *p = compile(ASRC);
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_pipeline_t *ref = vg_pipeline_new(p, &o, err, sizeof err);
    assert_non_null(ref);
    enum { N = 600, CUT = 350 };
    char **want = calloc(N, sizeof *want);
    char line[256];
    for (int i = 0; i < N; i++) {
        line_of(line, sizeof line, i);
        if (i == 300) {
            vg_label_t lb = {"e249", 4, "a4", 2, 1, 0};
            assert_int_equal(vg_pipeline_label(ref, &lb), 0);
        }
        want[i] = strdup(feed(ref, line));
    }
    /* the anomaly object: score, signals, reasons; the big amounts stand out */
    assert_non_null(strstr(want[10], "\"anomaly\":{\"score\":"));
    assert_non_null(strstr(want[10], "\"reasons\":["));
    assert_true(feat(want[549], "am") > feat(want[548], "am"));
    vg_pipeline_free(ref);

    char dir[] = "/tmp/vigil-test-labels-XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_store_t *store = vg_store_open(dir, err, sizeof err);
    assert_non_null(store);
    o.store = store;
    o.mem_budget = 1;   /* evict every clean account at each checkpoint */
    vg_pipeline_t *pl = vg_pipeline_new(p, &o, err, sizeof err);
    assert_non_null(pl);
    for (int i = 0; i < CUT; i++) {
        line_of(line, sizeof line, i);
        if (i == 300) {
            vg_label_t lb = {"e249", 4, "a4", 2, 1, 0};
            assert_int_equal(vg_pipeline_label(pl, &lb), 0);
        }
        assert_string_equal(feed(pl, line), want[i]);
        if (i % 50 == 0) assert_int_equal(vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err), 0);
    }
    assert_int_equal(vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err), 0);
    vg_pipeline_free(pl);
    vg_store_close(store);
    store = vg_store_open(dir, err, sizeof err);
    assert_non_null(store);
    o.store = store;
    pl = vg_pipeline_new(p, &o, err, sizeof err);
    assert_non_null(pl);
    for (int i = CUT; i < N; i++) {
        line_of(line, sizeof line, i);
        assert_string_equal(feed(pl, line), want[i]);
    }
    /* a reset baseline scores the account as new */
    assert_int_equal(vg_pipeline_reset_baseline(pl, "a3", 2), 0);
    vg_pipeline_free(pl);
    vg_store_close(store);
    for (int i = 0; i < N; i++) free(want[i]);
    free(want);
    vg_prog_unref(p);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A ruleset change keeps the label memo's x values of the sums whose x is unchanged; a new
 * x starts with nothing (null in the old events). */
static void test_sum_migrate(void **st) {
    (void)st;
    vg_program_t *p1 = compile("feature ls = labelled_sum(tx.amount, 1d)\n");
    vg_program_t *p2 = compile("feature c = labelled_count(1d)\n"
                               "feature two = labelled_sum(2 * tx.amount, 1d)\n"
                               "feature ls = labelled_sum(tx.amount, 1d)\n"
                               "feature fs = fraud_sum(tx.amount, 1d)\n");
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_pipeline_t *pl = vg_pipeline_new(p1, &o, err, sizeof err);
    assert_non_null(pl);
    feed(pl, "{\"id\":\"1\",\"account\":\"a\",\"ts\":\"2026-01-01T00:00:00Z\",\"amount\":7}");
    feed(pl, "{\"id\":\"2\",\"account\":\"a\",\"ts\":\"2026-01-01T00:01:00Z\",\"amount\":5}");
    vg_label_t lb = {"1", 1, "a", 1, 1, 0};
    assert_int_equal(vg_pipeline_label(pl, &lb), 0);
    assert_true(feat(feed(pl, "{\"id\":\"3\",\"account\":\"a\",\"ts\":\"2026-01-01T00:02:00Z\",\"amount\":1}"), "ls") == 7);
    assert_int_equal(vg_pipeline_set_program(pl, p2, err, sizeof err), 0);
    vg_label_t lb2 = {"2", 1, "a", 1, 0, 0};
    assert_int_equal(vg_pipeline_label(pl, &lb2), 0);
    const char *o1 = feed(pl, "{\"id\":\"4\",\"account\":\"a\",\"ts\":\"2026-01-01T00:03:00Z\",\"amount\":1}");
    assert_true(feat(o1, "ls") == 12 && feat(o1, "fs") == 7 && feat(o1, "c") == 2);
    assert_true(feat(o1, "two") == 0);   /* nothing kept for the new x */
    vg_label_t lb4 = {"4", 1, "a", 1, 0, 0};
    assert_int_equal(vg_pipeline_label(pl, &lb4), 0);
    const char *o2 = feed(pl, "{\"id\":\"5\",\"account\":\"a\",\"ts\":\"2026-01-01T00:04:00Z\",\"amount\":1}");
    assert_true(feat(o2, "ls") == 13 && feat(o2, "two") == 2);
    vg_pipeline_free(pl);
    vg_prog_unref(p1);
    vg_prog_unref(p2);
}

/* Account a's payment `id` at `ts` (merchant m): its decision line. */
static const char *ev(vg_pipeline_t *pl, const char *id, const char *ts) {
    char line[256];
    snprintf(line, sizeof line,
             "{\"id\":\"%s\",\"account\":\"a\",\"ts\":\"%s\",\"amount\":1,\"merchant\":\"m\"}",
             id, ts);
    return feed(pl, line);
}

/* Labels across rules that read none (docs/rules.md "Ruleset changes"): a label posted
 * while no rule reads labels counts once a rule does; a swap to label-free rules and
 * back keeps every label, those posted in between included; the same with the label
 * posted to an evicted account and the state reopened between the label and the swap.
 * Before, such labels were counted as unmatched and the swap freed the memos. */
static void test_label_free_swap(void **st) {
    (void)st;
    vg_program_t *p0 = compile("feature n = count(1h)\n");
    vg_program_t *p1 = compile("feature f = fraud_count(30d)\n"
                               "feature l = labelled_count(30d)\n"
                               "feature fm = fraud_count(30d by tx.merchant)\n");
    char dir[] = "/tmp/vigil-test-labels-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char err[256];
    for (int stored = 0; stored < 2; stored++) {
        vg_pipeline_opts_t o;
        vg_pipeline_opts_default(&o);
        vg_store_t *store = NULL;
        if (stored) {
            assert_non_null(store = vg_store_open(dir, err, sizeof err));
            o.store = store;
            o.mem_budget = 1;   /* evict every clean account at each checkpoint */
        }
        vg_pipeline_t *pl = vg_pipeline_new(p0, &o, err, sizeof err);
        assert_non_null(pl);
        ev(pl, "1", "2026-01-01T00:00:00Z");
        ev(pl, "2", "2026-01-01T00:01:00Z");
        if (stored) {   /* the label finds the account in the store, then a restart */
            assert_int_equal(vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err), 0);
            assert_int_equal(vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err), 0);
        }
        vg_label_t l1 = {"1", 1, "a", 1, 1, 0}, l2 = {"2", 1, "a", 1, 0, 0};
        vg_label_t lx = {"9", 1, "a", 1, 1, 0}, ly = {"1", 1, "b", 1, 1, 0};
        assert_int_equal(vg_pipeline_label(pl, &l1), 0);
        assert_int_equal(vg_pipeline_label(pl, &l2), 0);
        assert_int_equal(vg_pipeline_label(pl, &lx), 0);   /* unknown id */
        assert_int_equal(vg_pipeline_label(pl, &ly), 0);   /* unknown account */
        uint64_t ap, un;
        vg_pipeline_label_stats(pl, &ap, &un);
        assert_true(ap == 2 && un == 2);
        if (stored) {
            assert_int_equal(vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err), 0);
            vg_pipeline_free(pl);
            assert_non_null(pl = vg_pipeline_new(p0, &o, err, sizeof err));
        }
        assert_int_equal(vg_pipeline_set_program(pl, p1, err, sizeof err), 0);
        const char *d = ev(pl, "3", "2026-01-01T00:02:00Z");
        assert_true(feat(d, "f") == 1 && feat(d, "l") == 2);
        assert_true(feat(d, "fm") == 0);   /* the key of an event scored without label
                                              aggregates is not known (documented) */
        vg_label_t l3 = {"3", 1, "a", 1, 1, 0};
        assert_int_equal(vg_pipeline_label(pl, &l3), 0);
        d = ev(pl, "4", "2026-01-01T00:03:00Z");
        assert_true(feat(d, "f") == 2 && feat(d, "l") == 3 && feat(d, "fm") == 1);
        /* to label-free rules and back: every label kept, one posted in between too */
        assert_int_equal(vg_pipeline_set_program(pl, p0, err, sizeof err), 0);
        ev(pl, "5", "2026-01-01T00:04:00Z");
        vg_label_t l4 = {"4", 1, "a", 1, 1, 0}, l5 = {"5", 1, "a", 1, 1, 0};
        assert_int_equal(vg_pipeline_label(pl, &l4), 0);
        assert_int_equal(vg_pipeline_label(pl, &l5), 0);
        if (stored) assert_int_equal(vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err), 0);
        assert_int_equal(vg_pipeline_set_program(pl, p1, err, sizeof err), 0);
        d = ev(pl, "6", "2026-01-01T00:05:00Z");
        assert_true(feat(d, "f") == 4 && feat(d, "l") == 5);
        /* a relabel of an event kept through the swaps replaces its status */
        vg_label_t g1 = {"1", 1, "a", 1, 0, 0};
        assert_int_equal(vg_pipeline_label(pl, &g1), 0);
        d = ev(pl, "7", "2026-01-01T00:06:00Z");
        assert_true(feat(d, "f") == 3 && feat(d, "l") == 5);
        /* an event older than the label window + lateness cannot count: unmatched */
        vg_pipeline_label_stats(pl, &ap, &un);
        ev(pl, "8", "2026-03-01T00:00:00Z");
        vg_label_t l7 = {"7", 1, "a", 1, 1, 0};
        assert_int_equal(vg_pipeline_label(pl, &l7), 0);
        uint64_t ap2, un2;
        vg_pipeline_label_stats(pl, &ap2, &un2);
        assert_true(ap2 == ap && un2 == un + 1);
        vg_pipeline_free(pl);
        vg_store_close(store);
    }
    vg_prog_unref(p0);
    vg_prog_unref(p1);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_file),
        cmocka_unit_test(test_label_file_text),
        cmocka_unit_test(test_label_file_not_regular),
        cmocka_unit_test(test_label_order),
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_anomaly_resume),
        cmocka_unit_test(test_sum_migrate),
        cmocka_unit_test(test_label_free_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
