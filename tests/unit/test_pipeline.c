/* test_pipeline.c - unit tests for engine/pipeline.c: the per-event path from bytes to
 * a decision line, duplicates, lateness, rejections, blank lines, checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Feeds one line and returns its output (static buffer), asserting the outcome. */
static const char *feed(vg_pipeline_t *pl, const char *line, vg_outcome_t want) {
    static vg_buf_t out;
    static char copy[4096];
    vg_buf_init(&out);
    vg_outcome_t oc;
    assert_int_equal(vg_pipeline_line(pl, line, strlen(line), &out, &oc), 0);
    assert_int_equal(oc, want);
    size_t n = out.len < sizeof(copy) - 1 ? out.len : sizeof(copy) - 1;
    memcpy(copy, out.p ? out.p : "", n);
    copy[n] = 0;
    vg_buf_deinit(&out);
    return copy;
}

/* A pipeline with the default options (asserted). */
static vg_pipeline_t *new_pipeline(vg_program_t *p) {
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_pipeline_t *pl = vg_pipeline_new(p, &o, err, sizeof(err));
    if (!pl) fprintf(stderr, "%s\n", err);
    assert_non_null(pl);
    return pl;
}

static const char *SRC =
    "feature n = count(1h)\n"
    "feature s = sum(tx.amount, 1h)\n"
    "feature big = tx.amount > 100\n";

static void test_decision_line(void **st) {
    (void)st;
    vg_program_t *p = compile(SRC);
    vg_pipeline_t *pl = new_pipeline(p);
    const char *out = feed(pl,
        "{\"id\":\"t1\",\"account\":\"a\",\"ts\":\"2026-01-01T00:00:00Z\",\"amount\":0.1}",
        VG_OUT_DECIDED);
    assert_string_equal(out,
        "{\"id\":\"t1\",\"account\":\"a\",\"ts\":\"2026-01-01T00:00:00.000Z\","
        "\"decision\":\"allow\",\"score\":0,\"rules\":[],\"shadow\":[],"
        "\"features\":{\"n\":1,\"s\":0.1,\"big\":false},\"anomaly\":{},\"ruleset\":1}\n");
    out = feed(pl,
        "{\"id\":\"t2\",\"account\":\"a\",\"ts\":\"2026-01-01T00:30:00+00:00\",\"amount\":0.2}",
        VG_OUT_DECIDED);
    assert_non_null(strstr(out, "\"features\":{\"n\":2,\"s\":0.30000000000000004,\"big\":false}"));
    vg_pipeline_free(pl);
    vg_prog_unref(p);
}

static void test_duplicates_late_rejects(void **st) {
    (void)st;
    vg_program_t *p = compile(SRC);
    vg_pipeline_t *pl = new_pipeline(p);
    char first[4096];
    strcpy(first, feed(pl,
        "{\"id\":\"t1\",\"account\":\"a\",\"ts\":\"2026-01-01T10:00:00Z\",\"amount\":5}",
        VG_OUT_DECIDED));
    /* the same (account, id) again, even with other content: the original decision */
    const char *dup = feed(pl,
        "{\"id\":\"t1\",\"account\":\"a\",\"ts\":\"2026-01-01T10:05:00Z\",\"amount\":500}",
        VG_OUT_DUPLICATE);
    assert_string_equal(dup, first);
    /* the same id for another account is another transaction */
    const char *other = feed(pl,
        "{\"id\":\"t1\",\"account\":\"b\",\"ts\":\"2026-01-01T10:05:00Z\",\"amount\":7}",
        VG_OUT_DECIDED);
    assert_non_null(strstr(other, "\"n\":1,\"s\":7"));
    /* late: more than 1 h older than the account's newest */
    const char *late = feed(pl,
        "{\"id\":\"t0\",\"account\":\"a\",\"ts\":\"2026-01-01T08:59:59.999Z\",\"amount\":1}",
        VG_OUT_REJECTED);
    assert_non_null(strstr(late, "\"code\":\"late\""));
    assert_non_null(strstr(late, "{\"id\":\"t0\""));
    assert_int_equal(vg_pipeline_last_reject(pl), VG_REJECT_LATE);
    /* exactly the lateness is accepted, and counted with the others in [t-1h, t] */
    const char *edge = feed(pl,
        "{\"id\":\"t3\",\"account\":\"a\",\"ts\":\"2026-01-01T09:00:00Z\",\"amount\":1}",
        VG_OUT_DECIDED);
    assert_non_null(strstr(edge, "\"n\":1,\"s\":1"));
    /* blank lines produce nothing */
    feed(pl, "   ", VG_OUT_BLANK);
    feed(pl, "", VG_OUT_BLANK);
    /* invalid JSON: id null */
    const char *bad = feed(pl, "{not json", VG_OUT_REJECTED);
    assert_non_null(strstr(bad, "{\"id\":null,\"error\":"));
    assert_non_null(strstr(bad, "\"code\":\"invalid_json\""));
    /* a rejected event leaves no trace: its corrected re-send is processed normally */
    const char *r1 = feed(pl, "{\"id\":\"t9\",\"account\":\"a\",\"ts\":\"2026-01-01T10:10:00\",\"amount\":3}",
                          VG_OUT_REJECTED);
    assert_non_null(strstr(r1, "\"id\":\"t9\""));
    assert_non_null(strstr(r1, "bad_timestamp"));
    const char *r2 = feed(pl, "{\"id\":\"t9\",\"account\":\"a\",\"ts\":\"2026-01-01T10:10:00Z\",\"amount\":3}",
                          VG_OUT_DECIDED);
    assert_non_null(strstr(r2, "\"n\":2,\"s\":8"));
    /* an oversize line */
    vg_buf_t out;
    vg_buf_init(&out);
    assert_int_equal(vg_pipeline_oversize(pl, 100000, &out), 0);
    assert_non_null(strstr(out.p, "\"code\":\"too_large\""));
    vg_buf_deinit(&out);
    vg_pipeline_stats_t s;
    vg_pipeline_get_stats(pl, &s);
    assert_int_equal(s.decided, 4);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.rejected, 4);
    assert_int_equal(s.rejected_by[VG_REJECT_LATE], 1);
    vg_pipeline_free(pl);
    vg_prog_unref(p);
}

static void test_checkpoint_resume(void **st) {
    (void)st;
    char dir[] = "/tmp/vigil-test-pipeline-XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_program_t *p = compile(SRC);
    char err[256];
    vg_store_t *store = vg_store_open(dir, err, sizeof(err));
    assert_non_null(store);
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    o.store = store;
    vg_pipeline_t *pl = vg_pipeline_new(p, &o, err, sizeof(err));
    assert_non_null(pl);
    feed(pl, "{\"id\":\"t1\",\"account\":\"a\",\"ts\":1767261600000,\"amount\":5}", VG_OUT_DECIDED);
    uint64_t pos = 42;
    vg_kv_t meta = {"pos", &pos, sizeof(pos)};
    assert_int_equal(vg_pipeline_checkpoint(pl, &meta, 1, 0, err, sizeof(err)), 0);
    /* changes after the checkpoint are lost with the process */
    feed(pl, "{\"id\":\"t2\",\"account\":\"a\",\"ts\":1767261600001,\"amount\":50}", VG_OUT_DECIDED);
    vg_pipeline_free(pl);
    vg_store_close(store);

    store = vg_store_open(dir, err, sizeof(err));
    assert_non_null(store);
    o.store = store;
    pl = vg_pipeline_new(p, &o, err, sizeof(err));
    assert_non_null(pl);
    vg_buf_t b;
    vg_buf_init(&b);
    assert_int_equal(vg_pipeline_meta(pl, "pos", &b), 0);
    assert_int_equal(b.len, sizeof(pos));
    uint64_t got;
    memcpy(&got, b.p, sizeof(got));
    assert_int_equal(got, 42);
    assert_int_equal(vg_pipeline_meta(pl, "nope", &b), VG_ENOTFOUND);
    vg_buf_deinit(&b);
    const char *out =
        feed(pl, "{\"id\":\"t2\",\"account\":\"a\",\"ts\":1767261600001,\"amount\":50}", VG_OUT_DECIDED);
    assert_non_null(strstr(out, "\"n\":2,\"s\":55"));
    assert_int_equal(vg_pipeline_checkpoint(pl, &meta, 1, 0, err, sizeof(err)), 0);
    vg_pipeline_free(pl);
    vg_store_close(store);

    /* other rules on the same state are refused */
    vg_program_t *p2 = compile("feature m = max(tx.amount, 2h)\n");
    store = vg_store_open(dir, err, sizeof(err));
    o.store = store;
    pl = vg_pipeline_new(p2, &o, err, sizeof(err));
    assert_null(pl);
    /* ... unless opened as a restarting service does: the state is carried over from
     * the rules recorded with it (a kept window goes on, the dedupe history is kept) */
    vg_program_t *p3 = compile("feature n = count(1h)\nfeature m = max(tx.amount, 2h)\n");
    int carried = 0, reset = 0;
    o.reset_mismatch = 1;
    o.was_reset = &reset;
    pl = vg_pipeline_open(p3, &o, &carried, err, sizeof(err));
    assert_non_null(pl);
    assert_int_equal(carried, 1);
    assert_int_equal(reset, 0);
    out = feed(pl, "{\"id\":\"t2\",\"account\":\"a\",\"ts\":1767261600001,\"amount\":50}",
               VG_OUT_DUPLICATE);
    assert_non_null(strstr(out, "\"n\":2,\"s\":55"));   /* its original decision */
    out = feed(pl, "{\"id\":\"t3\",\"account\":\"a\",\"ts\":1767261600002,\"amount\":7}",
               VG_OUT_DECIDED);
    assert_non_null(strstr(out, "\"n\":3,"));
    vg_pipeline_free(pl);
    /* ... but never with other options (a restart with another --lateness or
     * --dedupe-horizon started empty and its first checkpoint overwrote the state):
     * refused, saying which, and the state is kept */
    o.lateness_ms = 2 * 3600 * 1000LL;
    pl = vg_pipeline_open(p3, &o, &carried, err, sizeof(err));
    assert_null(pl);
    assert_int_equal(reset, 0);
    assert_non_null(strstr(err, "was made with --lateness 1h, and this run has --lateness 2h"));
    o.lateness_ms = 3600 * 1000LL;
    o.dedupe_horizon_ms = 48 * 3600 * 1000LL;
    pl = vg_pipeline_open(p, &o, &carried, err, sizeof(err));
    assert_null(pl);
    assert_int_equal(reset, 0);
    assert_non_null(strstr(err, "was made with --dedupe-horizon 24h, and this run has "
                                "--dedupe-horizon 2d"));
    o.dedupe_horizon_ms = 24 * 3600 * 1000LL;
    pl = vg_pipeline_open(p, &o, &carried, err, sizeof(err));
    assert_non_null(pl);
    assert_int_equal(reset, 0);
    out = feed(pl, "{\"id\":\"t2\",\"account\":\"a\",\"ts\":1767261600001,\"amount\":50}",
               VG_OUT_DUPLICATE);
    assert_non_null(strstr(out, "\"n\":2,\"s\":55"));
    vg_pipeline_free(pl);
    o.reset_mismatch = 0;
    o.was_reset = NULL;
    vg_prog_unref(p3);
    vg_store_close(store);
    vg_prog_unref(p2);
    vg_prog_unref(p);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* vg_peek_string: the raw bytes of a string field, or 0 when not found simply. */
/* vg_pipeline_account_view: the account's remembered decisions (latest arrival first, at
 * most max, within the dedupe horizon), its sessions as of its newest event (a late event
 * included), its anomaly baseline; an unknown account is not found and not created. */
static void test_account_view(void **st) {
    (void)st;
    vg_program_t *p = compile("feature n = count(1h)\n"
                              "feature s30 = session_count(30m)\n"
                              "feature s5 = session_count(5m)\n"
                              "rule odd\n  action review\n  score 10\n"
                              "  when anomaly.score > 0.999999\nend\n");
    vg_pipeline_t *pl = new_pipeline(p);
    /* e1..e7 every 5 minutes from 00:00, e8..e14 every 2 minutes from 00:50, then e15
     * late at 00:40 and a duplicate of e3 */
    static const int min[15] = {0, 5, 10, 15, 20, 25, 30, 50, 52, 54, 56, 58, 60, 62, 40};
    char lines[15][1024];
    for (int i = 0; i < 15; i++) {
        char ev[256];
        snprintf(ev, sizeof ev,
                 "{\"id\":\"e%d\",\"account\":\"a\",\"ts\":\"2026-01-01T%02d:%02d:00Z\","
                 "\"amount\":%d.5,\"merchant\":\"m%d\"}", i + 1, min[i] / 60, min[i] % 60,
                 10 + i, i % 3);
        const char *d = feed(pl, ev, VG_OUT_DECIDED);
        size_t n = strlen(d) - 1;   /* without the newline */
        memcpy(lines[i], d, n);
        lines[i][n] = 0;
    }
    feed(pl, "{\"id\":\"e3\",\"account\":\"a\",\"ts\":\"2026-01-01T00:10:00Z\",\"amount\":1}",
         VG_OUT_DUPLICATE);
    feed(pl, "{\"id\":\"x1\",\"account\":\"b\",\"ts\":\"2026-01-01T00:00:00Z\",\"amount\":1}",
         VG_OUT_DECIDED);
    vg_buf_t out, want;
    vg_buf_init(&out);
    vg_buf_init(&want);
    assert_int_equal(vg_pipeline_account_view(pl, "a", 1, 10, &out), 0);
    assert_int_equal(vg_buf_putc(&out, 0), 0);
    /* the ten latest arrivals, e15 first, each byte for byte its decision */
    assert_int_equal(vg_buf_puts(&want, "\"newest\":\"2026-01-01T01:02:00.000Z\","
                                        "\"recent_decisions\":["), 0);
    for (int i = 14; i >= 5; i--) {
        assert_int_equal(vg_buf_puts(&want, lines[i]), 0);
        assert_int_equal(vg_buf_puts(&want, i > 5 ? "," : "]"), 0);
    }
    assert_int_equal(vg_buf_putc(&want, 0), 0);
    assert_int_equal(strncmp(out.p, want.p, want.len - 1), 0);
    /* sessions of the newest event (e14 at 01:02): 30m holds all 15 (e15 at 00:40 fills
     * the 20-minute gap), 5m the run e8..e14 (e15 is 10 minutes before e8) */
    assert_non_null(strstr(out.p,
        "\"sessions\":[{\"gap_seconds\":1800,\"start\":\"2026-01-01T00:00:00.000Z\","
        "\"last\":\"2026-01-01T01:02:00.000Z\",\"open_until\":\"2026-01-01T01:32:00.000Z\","
        "\"events\":15},{\"gap_seconds\":300,\"start\":\"2026-01-01T00:50:00.000Z\","
        "\"last\":\"2026-01-01T01:02:00.000Z\",\"open_until\":\"2026-01-01T01:07:00.000Z\","
        "\"events\":7}]"));
    /* the anomaly baseline learned the 15 events (not the duplicate), 3 merchants */
    assert_non_null(strstr(out.p, ",\"baseline\":{\"events\":15,\"since\":\"2026-01-01T00:00:00.000Z\""));
    assert_non_null(strstr(out.p, "\"known_values\":{\"merchant\":3,"));
    assert_non_null(strstr(out.p, "\"hours_utc\":[13,2,0,"));
    /* fewer decisions asked; none */
    vg_buf_clear(&out);
    assert_int_equal(vg_pipeline_account_view(pl, "a", 1, 1, &out), 0);
    assert_int_equal(vg_buf_putc(&out, 0), 0);
    assert_non_null(strstr(out.p, lines[14]));
    assert_null(strstr(out.p, lines[13]));
    vg_buf_clear(&out);
    assert_int_equal(vg_pipeline_account_view(pl, "a", 1, 0, &out), 0);
    assert_int_equal(vg_buf_putc(&out, 0), 0);
    assert_non_null(strstr(out.p, "\"recent_decisions\":[],"));
    /* an unknown account: not found, nothing written, and not created (its first event
     * is still new) */
    vg_buf_clear(&out);
    assert_int_equal(vg_pipeline_account_view(pl, "zz", 2, 10, &out), VG_ENOTFOUND);
    assert_int_equal(out.len, 0);
    const char *d = feed(pl, "{\"id\":\"z1\",\"account\":\"zz\",\"ts\":\"2026-01-01T00:00:00Z\",\"amount\":1}",
                         VG_OUT_DECIDED);
    assert_non_null(strstr(d, "\"n\":1,\"s30\":1,\"s5\":1"));
    vg_buf_deinit(&out);
    vg_buf_deinit(&want);
    vg_pipeline_free(pl);
    vg_prog_unref(p);
}

static void test_peek_string(void **st) {
    (void)st;
    static const char ak[] = "\"account\":\"", ik[] = "\"id\":\"";
    const char *line = "{\"id\":\"t-1\",\"device_id\":\"d\",\"account\":\"acct 7\",\"ts\":1}";
    const char *v = NULL;
    assert_int_equal(vg_peek_string(line, strlen(line), ak, sizeof ak - 1, &v), 6);
    assert_memory_equal(v, "acct 7", 6);
    /* "device_id" is not "id" */
    assert_int_equal(vg_peek_string(line, strlen(line), ik, sizeof ik - 1, &v), 3);
    assert_memory_equal(v, "t-1", 3);
    const char *esc = "{\"account\":\"a\\\"b\"}", *empty = "{\"account\":\"\"}";
    assert_int_equal(vg_peek_string(esc, strlen(esc), ak, sizeof ak - 1, &v), 0);
    assert_int_equal(vg_peek_string(empty, strlen(empty), ak, sizeof ak - 1, &v), 0);
    /* cut before the closing quote, or before the key ends */
    assert_int_equal(vg_peek_string(line, 30, ak, sizeof ak - 1, &v), 0);
    assert_int_equal(vg_peek_string("{\"accou", 7, ak, sizeof ak - 1, &v), 0);
    assert_int_equal(vg_peek_string("{\"account\":7}", 13, ak, sizeof ak - 1, &v), 0);
}

/* The reference for vg_peek_string: the first occurrence of the key by a plain scan. */
static uint32_t naive_peek(const char *s, size_t n, const char *key, size_t kl,
                           const char **val) {
    for (size_t i = 0; i + kl <= n; i++) {
        if (memcmp(s + i, key, kl) != 0) continue;
        size_t a = i + kl, q = a;
        while (q < n && s[q] != '"') q++;
        if (q == n || q == a || memchr(s + a, '\\', q - a)) return 0;
        *val = s + a;
        return (uint32_t)(q - a);
    }
    return 0;
}

/* vg_peek_string against the plain scan on random lines over a small alphabet, with
 * keys of 5 to 12 bytes planted (whole or cut short) anywhere, also in the last 16
 * bytes (where the 16-byte search hands over to a byte loop). Each line sits in its
 * own allocation of exactly its length, so that ASan catches a read past it. */
static void test_peek_string_random(void **st) {
    (void)st;
    static const char alpha[] = "\"\\:,{}acdnrt 0";
    static const char *keys[] = {"\"id\":\"", "\"card\":\"", "\"account\":\"", "\"ac\":\"",
                                 "\"merchant\":\""};
    uint64_t x = 88172645463325252ULL;
    int found = 0;
    for (int it = 0; it < 200000; it++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t n = (size_t)(x % 90);
        char *s = malloc(n ? n : 1);
        assert_non_null(s);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            s[i] = alpha[x % (sizeof alpha - 1)];
        }
        const char *key = keys[(x >> 20) % 5];
        size_t kl = strlen(key);
        for (int k = 0; k < 3; k++) {   /* plant up to 3 copies, some cut short */
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = n ? (size_t)(x % n) : 0, m = (x >> 32) % 4 == 0 ? kl - 1 : kl;
            if (at + m <= n) memcpy(s + at, key, m);
        }
        const char *v1 = NULL, *v2 = NULL;
        uint32_t r1 = vg_peek_string(s, n, key, kl, &v1), r2 = naive_peek(s, n, key, kl, &v2);
        assert_int_equal(r1, r2);
        if (r1) {
            assert_ptr_equal(v1, v2);
            found++;
        }
        free(s);
    }
    assert_true(found > 10000);   /* the check saw many hits, not only misses */
}

/* Prefetch hints change nothing: an account with many remembered ids (so that it keeps
 * an id index) answers duplicates with their original decisions whether or not its
 * events were announced with vg_pipeline_prefetch first, and hints for unknown
 * accounts, lines without an account and garbage are harmless. */
static void test_prefetch_hints(void **st) {
    (void)st;
    vg_program_t *p = compile(SRC);
    vg_pipeline_t *pl = new_pipeline(p);
    static char dec[40][512];
    char line[256];
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof line,
                 "{\"id\":\"e%d\",\"account\":\"a\",\"ts\":\"2026-01-01T10:%02d:00Z\","
                 "\"amount\":%d}", i, i, i);
        for (int stage = 0; stage <= 2; stage++)
            vg_pipeline_prefetch(pl, line, strlen(line), stage);
        const char *d = feed(pl, line, VG_OUT_DECIDED);
        assert_true(strlen(d) < sizeof dec[i]);
        strcpy(dec[i], d);
    }
    for (int i = 39; i >= 0; i -= 3) {
        snprintf(line, sizeof line,
                 "{\"id\":\"e%d\",\"account\":\"a\",\"ts\":\"2026-01-01T10:45:00Z\","
                 "\"amount\":1}", i);
        for (int stage = 0; stage <= 2; stage++)
            vg_pipeline_prefetch(pl, line, strlen(line), stage);
        assert_string_equal(feed(pl, line, VG_OUT_DUPLICATE), dec[i]);
    }
    const char *junk[] = {"", "{", "{\"account\":\"nobody\",\"id\":\"x\"}",
                          "{\"account\":\"a\"}", "{\"account\":\"a\",\"id\":\"\"}"};
    for (size_t j = 0; j < sizeof junk / sizeof *junk; j++)
        for (int stage = -1; stage <= 3; stage++)
            vg_pipeline_prefetch(pl, junk[j], strlen(junk[j]), stage);
    /* a new id after all that is still new */
    const char *n = feed(pl,
        "{\"id\":\"e40\",\"account\":\"a\",\"ts\":\"2026-01-01T10:46:00Z\",\"amount\":2}",
        VG_OUT_DECIDED);
    assert_non_null(strstr(n, "\"n\":41"));
    vg_pipeline_free(pl);
    vg_prog_unref(p);
}

/* A string written into a decision (feature, a rule's values, a message placeholder) is
 * cut to VG_PIPELINE_OUT_STR bytes on a character boundary and marked with U+2026; the
 * rules saw the whole value; a duplicate answers the same cut decision. */
static void test_long_strings_cut(void **st) {
    (void)st;
    vg_program_t *p = compile("feature lm = lower(tx.merchant)\n"
                              "feature tail = ends_with(tx.merchant, \"MMM\")\n"
                              "rule r\n  action review\n  score 5\n"
                              "  message \"m={tx.merchant}!\"\n"
                              "  when starts_with(tx.merchant, \"\\u00e9\") and tail\nend\n");
    vg_pipeline_t *pl = new_pipeline(p);
    /* 600 x U+00E9 (1,200 bytes) then 60,000 M: byte 1,024 starts a character */
    size_t cap = 70000, n = 0;
    char *ev = malloc(cap), *want = malloc(4096);
    n += (size_t)snprintf(ev, cap, "{\"id\":\"t1\",\"account\":\"a\",\"ts\":1767225600000,"
                                   "\"amount\":1,\"merchant\":\"");
    for (int i = 0; i < 600; i++) n += (size_t)snprintf(ev + n, cap - n, "\xc3\xa9");
    memset(ev + n, 'M', 60000);
    n += 60000;
    n += (size_t)snprintf(ev + n, cap - n, "\"}");
    size_t w = 0;
    for (int i = 0; i < 512; i++) w += (size_t)snprintf(want + w, 4096 - w, "\xc3\xa9");
    w += (size_t)snprintf(want + w, 4096 - w, "\xe2\x80\xa6");
    char *cut = malloc(w + 64);
    vg_buf_t out, dup;
    vg_buf_init(&out);
    vg_buf_init(&dup);
    vg_outcome_t oc;
    assert_int_equal(vg_pipeline_line(pl, ev, n, &out, &oc), 0);
    assert_int_equal(oc, VG_OUT_DECIDED);
    assert_int_equal(vg_buf_putc(&out, 0), 0);
    assert_true(out.len < 5000);
    assert_non_null(strstr(out.p, "\"decision\":\"review\""));   /* the whole value ran */
    assert_non_null(strstr(out.p, "\"tail\":true"));
    snprintf(cut, w + 64, "\"lm\":\"%s\"", want);
    assert_non_null(strstr(out.p, cut));
    snprintf(cut, w + 64, "\"message\":\"m=%s!\"", want);
    assert_non_null(strstr(out.p, cut));
    snprintf(cut, w + 64, "\"tx.merchant\":\"%s\"", want);
    assert_non_null(strstr(out.p, cut));
    assert_null(strstr(out.p, "MM"));
    /* the duplicate answers the decision as it was written */
    assert_int_equal(vg_pipeline_line(pl, ev, n, &dup, &oc), 0);
    assert_int_equal(oc, VG_OUT_DUPLICATE);
    assert_int_equal(vg_buf_putc(&dup, 0), 0);
    assert_string_equal(dup.p, out.p);
    vg_buf_deinit(&out);
    vg_buf_deinit(&dup);
    free(cut);
    free(want);
    free(ev);
    vg_pipeline_free(pl);
    vg_prog_unref(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peek_string),
        cmocka_unit_test(test_peek_string_random),
        cmocka_unit_test(test_prefetch_hints),
        cmocka_unit_test(test_decision_line),
        cmocka_unit_test(test_duplicates_late_rejects),
        cmocka_unit_test(test_checkpoint_resume),
        cmocka_unit_test(test_account_view),
        cmocka_unit_test(test_long_strings_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
