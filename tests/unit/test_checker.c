/* test_checker.c - unit tests of the rules checker (rules/checker.c) through
 * vg_prog_compile(): name resolution, duplicates, cycles, every type error, aggregate
 * argument purity, windows, rule blocks, warnings, limits, and the SPEC example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/program.h"

/* Compiles src; returns the program (or NULL) and leaves the diagnostics in *d. */
static vg_program_t *compile(const char *src, vg_diags_t *d) {
    vg_diags_init(d);
    vg_source_t s = {"m.vrl", src, strlen(src)};
    return vg_prog_compile(&s, 1, d);
}

static void expect_ok(const char *src) {
    vg_diags_t d;
    vg_program_t *p = compile(src, &d);
    if (!p || d.n_errors) fail_msg("'%s' failed: %s", src, d.n ? d.v[0].msg : "?");
    vg_prog_unref(p);
    vg_diags_deinit(&d);
}

/* Expects exactly one error, at line:col, whose message contains `want`. */
static void expect_err(const char *src, int line, int col, const char *want) {
    vg_diags_t d;
    vg_program_t *p = compile(src, &d);
    if (p) fail_msg("'%s' compiled", src);
    int k = -1;
    for (int i = 0; i < d.n; i++) if (d.v[i].is_error) { k = i; break; }
    if (k < 0 || d.n_errors != 1 || !strstr(d.v[k].msg, want) || d.v[k].line != line ||
        d.v[k].col != col)
        fail_msg("'%s':\n got  %d errors, first %d:%d %s\n want %d:%d ...%s...", src,
                 d.n_errors, k >= 0 ? d.v[k].line : 0, k >= 0 ? d.v[k].col : 0,
                 k >= 0 ? d.v[k].msg : "", line, col, want);
    vg_diags_deinit(&d);
}

static void test_names(void **state) {
    (void)state;
    expect_ok("feature a = b + 1\nfeature b = 2");            /* order-free */
    expect_err("feature a = nope + 1", 1, 13, "unknown feature 'nope'");
    expect_err("feature a = 1\nfeature a = 2", 2, 9,
               "duplicate feature 'a' (first declared at m.vrl:1:9)");
    expect_err("list l\nlist l", 2, 6, "duplicate list 'l'");
    expect_err("rule r action block score 1 when true end\nrule r action block score 1 when true end",
               2, 6, "duplicate rule 'r'");
    expect_err("feature f = frob(1)", 1, 13, "unknown function 'frob'");
    /* an unknown name inside an aggregate, prev() or seen() is one error, not two */
    expect_err("feature x = prev(nosuch)", 1, 18, "unknown feature 'nosuch'");
    expect_err("feature y = count(1h where nosuch2 > 1)", 1, 28, "unknown feature 'nosuch2'");
    expect_err("feature bad = sum(spend_1h, 1d)", 1, 19, "unknown feature 'spend_1h'");
    expect_err("feature s = seen(tx.card, 1h) and seen(nope, 1h)", 1, 40, "unknown feature 'nope'");
    expect_err("feature spend_1h = sum(tx.amount, 1h)\nfeature bad = sum(spend_1h, 1d)", 2, 19,
               "feature 'spend_1h' cannot be used inside an aggregate");
}

/* Every error of a file, in source order, even after a syntax error. */
static void test_recovery(void **state) {
    (void)state;
    vg_diags_t d;
    const char *src = "feature x = prev(nosuch)\nfeature y = count(1h where nosuch2 > 1)\n";
    assert_null(compile(src, &d));
    assert_int_equal(d.n_errors, 2);
    assert_int_equal(d.v[0].line, 1);
    assert_int_equal(d.v[1].line, 2);
    vg_diags_deinit(&d);
    /* a syntax error hides nothing else; a reference to the broken feature is not
     * "unknown" (nor in a message), a reference to a truly unknown one is */
    src = "feature f = 1 +* 2\n"
          "rule r\n  action review\n  score 1\n  when unknown_feat > 1\nend\n"
          "feature g = f + 1\n"
          "rule s action block score 1 when f > 1 and g > 2 message \"{f}\" end\n"
          "feature h = sum(tx.amount, 1h\n"
          "feature i = \"a\" + 1\n"
          "rule t action block score -5 when h > 1 end\n";
    assert_null(compile(src, &d));
    static const struct { int line, col; const char *msg; } want[] = {
        {1, 16, "expected an expression, found '*'"},
        {5, 8, "unknown feature 'unknown_feat'"},
        {10, 1, "expected ',', 'where', 'by' or ')', found 'feature'"},
        {10, 17, "cannot apply '+' to string and number"},
        {11, 27, "score -5 is out of range 0..100"},
    };
    int nw = (int)(sizeof want / sizeof want[0]);
    for (int i = 0; i < d.n && i < nw; i++)
        if (d.v[i].line != want[i].line || d.v[i].col != want[i].col ||
            !strstr(d.v[i].msg, want[i].msg))
            fail_msg("diagnostic %d: got %d:%d %s, want %d:%d %s", i, d.v[i].line, d.v[i].col,
                     d.v[i].msg, want[i].line, want[i].col, want[i].msg);
    assert_int_equal(d.n, nw);
    assert_int_equal(d.n_errors, nw);
    vg_diags_deinit(&d);
    /* a declaration whose name is taken is checked as well: its other mistakes are
     * reported in the same run (they were hidden behind "duplicate") */
    src = "rule r1\n  action review\n  score 5\n  when true\nend\n"
          "rule r1\n  action reviewx\n  score 200\n  when tx.amount + 1\n  message \"{nope}\"\nend\n"
          "feature f = 1\nfeature f = tx.merchant + 1\n";
    assert_null(compile(src, &d));
    static const struct { int line, col; const char *msg; } want2[] = {
        {6, 6, "duplicate rule 'r1'"},
        {7, 10, "unknown action 'reviewx'"},
        {8, 9, "score 200 is out of range 0..100"},
        {9, 18, "the condition of rule 'r1' must be a bool, found number"},
        {10, 12, "message placeholder {nope} names no feature"},
        {13, 9, "duplicate feature 'f'"},
        {13, 25, "cannot apply '+' to string and number"},
    };
    nw = (int)(sizeof want2 / sizeof want2[0]);
    for (int i = 0; i < d.n && i < nw; i++)
        if (d.v[i].line != want2[i].line || d.v[i].col != want2[i].col ||
            !strstr(d.v[i].msg, want2[i].msg))
            fail_msg("diagnostic %d: got %d:%d %s, want %d:%d %s", i, d.v[i].line, d.v[i].col,
                     d.v[i].msg, want2[i].line, want2[i].col, want2[i].msg);
    assert_int_equal(d.n, nw);
    vg_diags_deinit(&d);
    /* across modules: in the order of the sources, then lines */
    vg_source_t s[2] = {{"a.vrl", "feature a = 1 +\nfeature b = zz", 30},
                        {"b.vrl", "feature c = yy\nfeature d = a * 2 +", 34}};
    vg_diags_init(&d);
    assert_null(vg_prog_compile(s, 2, &d));
    assert_int_equal(d.n, 4);
    assert_string_equal(d.v[0].file, "a.vrl");
    assert_int_equal(d.v[0].line, 2);   /* expected an expression, found 'feature' */
    assert_non_null(strstr(d.v[1].msg, "unknown feature 'zz'"));
    assert_string_equal(d.v[2].file, "b.vrl");
    assert_non_null(strstr(d.v[2].msg, "unknown feature 'yy'"));
    assert_int_equal(d.v[3].line, 2);
    vg_diags_deinit(&d);
}

static void test_cycles(void **state) {
    (void)state;
    expect_err("feature a = a + 1", 1, 9, "feature 'a' depends on itself: a -> a");
    expect_err("feature a = b\nfeature b = c\nfeature c = a\nfeature d = a", 1, 9,
               "feature 'a' depends on itself: a -> b -> c -> a");
    /* a long chain is fine (iterative ordering) */
    size_t cap = 40 * 3000;
    char *src = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(src + n, cap - n, "feature f%d = %s%d + 1\n", i, i ? "f" : "",
                              i ? i - 1 : 0);
    expect_ok(src);
    free(src);
    /* a long cycle: the true path, elided in the middle with a count */
    char buf[2048];
    for (int len = 20; len <= 60; len += 1) {
        n = 0;
        for (int i = 0; i < len; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "feature f%d = f%d + 1\n", i,
                                  (i + 1) % len);
        vg_diags_t d;
        assert_null(compile(buf, &d));
        assert_int_equal(d.n_errors, 1);
        const char *m = strstr(d.v[0].msg, ": ");
        assert_non_null(m);
        m += 2;
        /* every shown step is a true dependency; an elision names how many it hides */
        int prev = -1, shown = 0, hidden = 0;
        while (*m) {
            int f, k = 0, more;
            if (sscanf(m, "f%d%n", &f, &k) == 1) {
                if (prev >= 0 && f != (prev + 1) % len && hidden == 0)
                    fail_msg("cycle of %d: f%d -> f%d is not a dependency: %s", len, prev, f,
                             d.v[0].msg);
                if (hidden && f != (prev + 1 + hidden) % len)
                    fail_msg("cycle of %d: %d hidden after f%d, then f%d: %s", len, hidden,
                             prev, f, d.v[0].msg);
                prev = f;
                hidden = 0;
                shown++;
            } else if (sscanf(m, "... (%d more)%n", &more, &k) == 1) {
                hidden = more;
            } else {
                fail_msg("cycle of %d: unexpected '%s'", len, m);
            }
            m += k;
            if (strncmp(m, " -> ", 4) == 0) m += 4;
        }
        assert_int_equal(prev, 0);      /* back to the start */
        if (len < 25) assert_int_equal(shown, len + 1);   /* short ones in full */
        vg_diags_deinit(&d);
    }
    /* long names are cut visibly */
    expect_err("feature a234567890123456789012345678901234567890 = b\n"
               "feature b = a234567890123456789012345678901234567890", 1, 9,
               "feature 'a23456789012345678901234567...' depends on itself: "
               "a23456789012345678901234567... -> b -> a23456789012345678901234567...");
}

static void test_type_errors(void **state) {
    (void)state;
    expect_err("feature f = \"a\" + 1", 1, 17, "cannot apply '+' to string and number");
    expect_err("feature f = tx.ts * 2", 1, 19, "cannot apply '*' to time and number");
    expect_err("feature f = tx.ts + tx.ts", 1, 19, "cannot apply '+' to time and time");
    expect_err("feature f = 1h - tx.ts", 1, 16, "cannot apply '-' to duration and time");
    expect_err("feature f = 2 / 1h", 1, 15, "cannot apply '/' to number and duration");
    expect_err("feature f = 1 < \"a\"", 1, 15, "cannot compare number with string");
    expect_err("feature f = true == 1", 1, 18, "cannot compare bool with number");
    expect_err("feature f = seconds_between(prev(tx.ts), tx.ts) < 1h", 1, 49,
               "cannot compare number with duration (seconds_between()");
    expect_err("feature f = 5 > 1m", 1, 15, "cannot compare number with duration");
    expect_err("feature f = not 1", 1, 13, "'not' needs a bool, found number");
    expect_err("feature f = 1 and true", 1, 15, "'and' needs bools, found number and bool");
    expect_err("feature f = tx.merchant or true", 1, 25, "'or' needs bools, found string and bool");
    expect_err("feature f = -\"a\"", 1, 13, "cannot negate a string");
    expect_err("feature f = tx.amount in [\"a\"]", 1, 23,
               "cannot test a number for membership in a list of string");
    expect_err("feature f = tx.mcc in [\"a\", 1]", 1, 29, "mixed types in [..]: string and number");
    expect_err("feature f = tx.mcc in [tx.card]", 1, 24, "must be string, number or bool literals");
    expect_err("list l\nfeature f = list(\"l\")", 2, 13, "a list can only be used after 'in'");
    expect_err("list l\nfeature f = tx.card in list(\"l\")", 2, 24,
               "can only be used in rules for now");
    expect_err("feature f = anomaly.nope", 1, 13, "unknown anomaly signal 'anomaly.nope'");
    expect_err("feature f = fraud_count(1h where tx.amount > 1)", 1, 28,
               "'where' is not allowed in fraud_count()");
    expect_err("feature f = labelled_count(1h, 2h)", 1, 13, "labelled_count() takes 1 argument");
    expect_err("feature f = count(1h where fraud_count(1d) > 0)", 1, 28,
               "fraud_count() cannot be used inside an aggregate");
    /* what is allowed */
    expect_ok("feature a = tx.ts - tx.ts\n"           /* duration */
              "feature b = tx.ts + 1h - 30m\n"        /* time */
              "feature c = 1h + 30m\n"
              "feature d = 2 * 1h / 4\n"
              "feature e = 1h / 30m\n"                /* number */
              "feature g = -1h\n"
              "feature h = a > 1h and b >= tx.ts and e == 2\n"
              "feature i = \"a\" < \"b\" and true > false\n"
              "feature j = tx.foo + 1 > tx.bar\n"     /* extra fields: any */
              "feature k = tx.x and not tx.y\n"
              "feature l = tx.country in [\"US\", \"CA\"] or tx.amount in [1, -2.5]\n"
              "feature m = tx.whatever\n");
}

static void test_calls(void **state) {
    (void)state;
    expect_err("feature f = count()", 1, 13,
               "count() takes 1 argument, 0 given: count(W [where P] [by K])");
    expect_err("feature f = sum(10m)", 1, 13, "sum() takes 2 arguments, 1 given");
    expect_err("feature f = geo_km(1, 2, 3)", 1, 13, "geo_km() takes 4 arguments, 3 given");
    expect_err("feature f = prev(tx.ts, 1h)", 1, 13, "prev() takes 1 argument, 2 given");
    expect_err("feature f = count(10)", 1, 19, "the window of count() must be a duration literal");
    expect_err("feature f = count(0s)", 1, 19, "the window of count() must be positive");
    expect_err("feature f = session_count(tx.amount)", 1, 27,
               "the gap of session_count() must be a duration literal");
    expect_err("feature w = 10m\nfeature f = count(w)", 2, 19, "must be a duration literal");
    expect_ok("feature f = min(tx.amount, 3)");   /* min of two numbers */
    /* a duration second argument makes the aggregate: more arguments are its arity error */
    expect_err("feature f = max(tx.amount, 10m, 5)", 1, 13,
               "max() takes 2 arguments, 3 given: max(x, W [where P] [by K])");
    expect_err("feature f = min(tx.amount, 1h, 2h, 3h)", 1, 13,
               "min() takes 2 arguments, 4 given: min(x, W [where P] [by K])");
    expect_err("feature f = min(tx.amount, 3 where tx.amount > 1)", 1, 28,
               "the window of min() must be a duration literal");
    expect_err("feature f = sum(tx.merchant, 1h)", 1, 17, "sum() needs a number, found string");
    expect_err("feature f = session_sum(tx.ts, 1h)", 1, 25, "session_sum() needs a number, found time");
    expect_err("feature f = geo_km(tx.lat, tx.lon, \"x\", 1)", 1, 36,
               "geo_km() needs numbers (degrees), found string");
    expect_err("feature f = seconds_between(tx.amount, tx.ts)", 1, 29,
               "seconds_between() needs times");
    /* a misplaced where/by: the caret under the keyword, not the expression after it */
    expect_err("feature f = prev(tx.ts where true)", 1, 24, "'where' is only allowed in count");
    expect_err("feature x = seen(tx.device, 1h where tx.amount > 2)", 1, 32,
               "'where' is only allowed in count");
    expect_err("feature x = session_count(30m where tx.amount > 2)", 1, 31,
               "'where' is only allowed in count");
    expect_err("feature x = seen(tx.device, 1h by tx.card)", 1, 32, "'by' is only allowed in count");
    expect_err("feature x = lower(tx.card\n  by tx.card)", 2, 3, "'by' is only allowed in count");
    expect_err("feature x = fraud_sum(tx.amount, 1h by tx.card)", 1, 37,
               "'by' is not supported in fraud_sum()");
    expect_err("feature f = seen(tx.ip, 1d by tx.card)", 1, 28, "'by' is only allowed in count");
    expect_err("feature f = count(1h where tx.amount)", 1, 28, "'where' needs a boolean condition, found number");
    expect_err("feature f = count(1h by tx.ts)", 1, 25, "'by' needs a string, number or bool key, found time");
    expect_err("feature f = distinct(null, 1h)", 1, 22, "distinct() of null is always null");
    /* purity of aggregate, prev and seen arguments */
    expect_err("feature a = 1\nfeature f = sum(a, 1h)", 2, 17,
               "feature 'a' cannot be used inside an aggregate");
    expect_err("feature f = sum(prev(tx.amount), 1h)", 1, 17,
               "prev() cannot be used inside an aggregate");
    expect_err("feature f = count(1h where seen(tx.ip, 1h))", 1, 28,
               "seen() cannot be used inside an aggregate");
    expect_err("feature f = prev(count(1h))", 1, 18, "count() cannot be used inside");
    expect_err("feature f = count(1h by anomaly.score)", 1, 25,
               "anomaly.score cannot be used in a 'by' key");
    expect_err("feature f = fraud_count(1d by anomaly.amount > 0.5)", 1, 31,
               "anomaly.amount cannot be used in a 'by' key");
    /* the event's own anomaly values in x, where and prev()/seen() (read before the
     * windows take the event) */
    expect_ok("feature a = count(7d where anomaly.score >= 0.5)\n"
              "feature b = sum(anomaly.amount, 1d by tx.merchant)\n"
              "feature c = prev(anomaly.score) + coalesce(prev(anomaly.velocity), 0)\n"
              "feature d = seen(anomaly.compromise > 0.5, 7d)\n");
    expect_ok("feature a = sum(tx.amount * 2 + 1, 1h where tx.amount > 5 and tx.mcc in [\"1\"] by tx.card)\n"
              "feature b = count(1d by tx.extra_key)\n"
              "feature c = prev(geo_km(tx.lat, tx.lon, 0, 0))\n"
              "feature d = seen(tx.ip, 1d) and distinct(tx.device, 7d) > 2\n"
              "feature e = max(tx.amount, 1d) - min(tx.amount, 1d) + avg(tx.amount, 1d) + stddev(tx.amount, 1d)\n"
              "feature f = session_count(30m) + session_sum(tx.amount, 30m) + session_duration(30m)\n"
              "feature g = sum(tx.other, 1h)\n");
}

static void test_rules(void **state) {
    (void)state;
    expect_ok("feature n = count(1h)\n"
              "list l\n"
              "rule r\n severity critical action alert score 10 + n mode disabled\n"
              " when n > 2 and tx.card in list(\"l\")\n message \"{n} at {tx.merchant}\" suppress 1h\nend\n"
              "rule s action allow score 0 when count(1m) > 1 end\n");
    expect_err("rule r severity huge action block score 1 when true end", 1, 17,
               "unknown severity 'huge' (expected low, medium, high or critical)");
    expect_err("rule r action ban score 1 when true end", 1, 15, "unknown action 'ban'");
    expect_err("rule r mode on action block score 1 when true end", 1, 13, "unknown mode 'on'");
    expect_err("rule r action block score 101 when true end", 1, 27, "score 101 is out of range 0..100");
    expect_err("rule r action block score -1 when true end", 1, 27, "score -1 is out of range 0..100");
    expect_err("rule r action block score -0.5 when true end", 1, 27,
               "score -0.5 is out of range 0..100");
    /* the value to its last digit (%g printed "score 100 is out of range 0..100") */
    expect_err("rule r action block score 100.0000000001 when true end", 1, 27,
               "score 100.0000000001 is out of range 0..100");
    expect_err("rule r action block score -0.0000001 when true end", 1, 27,
               "score -1e-7 is out of range 0..100");
    expect_ok("rule r action block score -0 when true end");
    expect_ok("rule r action block score -tx.amount when true end");   /* clamped when run */
    expect_err("rule r action block score \"x\" when true end", 1, 27, "a score must be a number, found string");
    expect_err("rule r action block score 1 when 1 end", 1, 34,
               "the condition of rule 'r' must be a bool, found number");
    expect_err("rule r action block score 1 end", 1, 1, "rule 'r' has no 'when' clause");
    expect_err("rule r score 1 when true end", 1, 1, "rule 'r' has no 'action' clause");
    expect_err("rule r action block when true end", 1, 1, "rule 'r' has no 'score' clause");
    expect_err("rule r action block action allow score 1 when true end", 1, 21,
               "duplicate 'action' clause in rule 'r'");
    expect_err("rule r action block score 1 when nope end", 1, 34, "unknown feature 'nope'");
    expect_err("rule r action block score 1 when tx.card in list(\"x\") end", 1, 45,
               "unknown list \"x\" (declare it with `list x`)");
    /* a placeholder's error is at its '{' (an escape before it counts its source bytes) */
    expect_err("rule r action block score 1 when true message \"{nope}\" end", 1, 48,
               "message placeholder {nope} names no feature");
    expect_err("rule r action block score 1 when true message \"\\u00e9 \\\" {nope}\" end", 1,
               58, "message placeholder {nope} names no feature");
    expect_err("list x\nrule r action block score 1 when tx.amount in list(\"x\") end", 2, 44,
               "named lists hold strings, not number");
    expect_ok("feature f = anomaly.score\nfeature g = fraud_count(28d by tx.merchant) / "
              "labelled_count(28d by tx.merchant)\n"
              "rule r action block score 40 + 60 * anomaly.amount when anomaly.velocity > 0.5 "
              "and f > 0.1 and g > 0 end");
}

static void test_warnings(void **state) {
    (void)state;
    vg_diags_t d;
    vg_program_t *p = compile("feature f = tx.amount == null", &d);
    assert_non_null(p);
    assert_int_equal(d.n_errors, 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.v[0].is_error, 0);
    assert_non_null(strstr(d.v[0].msg, "comparison with null is always null"));
    vg_prog_unref(p);
    vg_diags_deinit(&d);
}

/* Compiles src and expects exactly the warnings want[0..n) (line:col: message), in
 * order, and no error. */
static void expect_warnings(const char *src, const char *const *want, int n) {
    vg_diags_t d;
    vg_program_t *p = compile(src, &d);
    if (!p || d.n_errors) fail_msg("'%s' failed: %s", src, d.n ? d.v[0].msg : "?");
    for (int i = 0; i < d.n || i < n; i++) {
        char got[320] = "(none)";
        if (i < d.n) snprintf(got, sizeof got, "%d:%d: %s", d.v[i].line, d.v[i].col, d.v[i].msg);
        if (i >= n || strcmp(got, want[i]) != 0)
            fail_msg("'%s': warning %d:\n got  %s\n want %s", src, i, got, i < n ? want[i] : "(none)");
    }
    vg_prog_unref(p);
    vg_diags_deinit(&d);
}

/* An extra field (tx.<other>) that looks like a misspelt known field is read as the
 * extra field, with a warning naming the likely field; names far from any are not. */
static void test_field_typos(void **state) {
    (void)state;
    static const char *const w1[] = {
        "4:8: tx.amuont is read as an extra field; did you mean tx.amount?",
        "5:26: tx.amuont is read as an extra field; did you mean tx.amount?",
        "5:41: tx.crad is read as an extra field; did you mean tx.card?"};
    expect_warnings("rule ct_small\n  action review\n  score 60\n  when tx.amuont < 5\n"
                    "  message \"small payment {tx.amuont} on {tx.crad}\"\nend\n", w1, 3);
    static const struct { const char *field, *known; } near[] = {
        {"Amount", "amount"}, {"AMOUNT", "amount"}, {"amout", "amount"}, {"ammount", "amount"},
        {"acount", "account"}, {"cuntry", "country"}, {"marchent", "merchant"},
        {"Merchnat", "merchant"}, {"currancy", "currency"}, {"chanel", "channel"},
        {"devcie", "device"}, {"ID", "id"}, {"Ts", "ts"}, {"IP", "ip"}, {"tpye", "type"},
        {"cmc", "mcc"}, {"lno", "lon"}};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        char src[128], want[200];
        snprintf(src, sizeof src, "feature f = is_null(tx.%s)", near[i].field);
        snprintf(want, sizeof want, "1:21: tx.%s is read as an extra field; did you mean tx.%s?",
                 near[i].field, near[i].known);
        const char *const w[] = {want};
        expect_warnings(src, w, 1);
    }
    /* short names take only a swap of two letters; a known name with more after it and
     * names two or more slips away (three for currency, merchant) are extra fields */
    static const char *const far[] = {"tz", "it", "cart", "cards", "crd", "types", "amount2",
                                      "devices", "amount_usd", "amnt", "bin", "user_agent",
                                      "email", "x", "nope", "my_field", "attrs", "counter",
                                      "merch", "score"};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        char src[128];
        snprintf(src, sizeof src, "feature f = is_null(tx.%s)", far[i]);
        expect_warnings(src, NULL, 0);
    }
    /* a known field, and a message placeholder of one, never warn */
    expect_warnings("rule r action block score 1 when tx.amount > 1 and tx.lat > 0 "
                    "message \"{tx.card} {tx.amount}\" end", NULL, 0);
}

static void test_limits(void **state) {
    (void)state;
    size_t cap = 30 * (VG_RULES_MAX_FEATURES + 2);
    char *src = malloc(cap);
    size_t n = 0;
    for (int i = 0; i <= VG_RULES_MAX_FEATURES; i++)
        n += (size_t)snprintf(src + n, cap - n, "feature f%d = %d\n", i, i);
    expect_err(src, VG_RULES_MAX_FEATURES + 1, 1, "too many features (limit 10000)");
    free(src);
    src = malloc(60 * (VG_RULES_MAX_RULES + 2));
    n = 0;
    for (int i = 0; i <= VG_RULES_MAX_RULES; i++)
        n += (size_t)sprintf(src + n, "rule r%d action block score 1 when true end\n", i);
    expect_err(src, VG_RULES_MAX_RULES + 1, 1, "too many rules (limit 10000)");
    free(src);
}

/* The example module of SPEC section 2 compiles (anomaly.amount included). */
static void test_spec_example(void **state) {
    (void)state;
    /* the sources are found from this file's path (CMake compiles it by absolute path) */
    char path[1024];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strstr(path, "tests/unit/test_checker.c");
    assert_non_null(slash);
    strcpy(slash, "tests/rules/spec_example.vrl");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 16);
    size_t len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    buf[len] = 0;
    vg_diags_t d;
    vg_program_t *p = compile(buf, &d);
    assert_non_null(p);
    assert_int_equal(d.n_errors, 0);
    for (int i = 0; i < d.n; i++)   /* only "not used by any rule" warnings */
        assert_non_null(strstr(d.v[i].msg, "is not used by any rule or feature"));
    assert_int_equal(vg_prog_nfeatures(p), 14);
    assert_int_equal(vg_prog_nrules(p), 4);
    vg_prog_unref(p);
    vg_diags_deinit(&d);
    free(buf);
}

static void test_multi_module(void **state) {
    (void)state;
    vg_source_t s[2] = {{"a.vrl", "feature a = b * 2", 17}, {"b.vrl", "feature b = 1\nfeature a = 3", 27}};
    vg_diags_t d;
    vg_diags_init(&d);
    assert_null(vg_prog_compile(s, 2, &d));
    assert_int_equal(d.n_errors, 1);
    assert_string_equal(d.v[0].file, "b.vrl");
    assert_non_null(strstr(d.v[0].msg, "duplicate feature 'a' (first declared at a.vrl:1:9)"));
    vg_diags_deinit(&d);
    s[1].len = 13;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(s, 2, &d);
    assert_non_null(p);
    assert_string_equal(vg_prog_feature_name(p, 0), "a");
    assert_string_equal(vg_prog_feature_name(p, 1), "b");
    vg_prog_unref(p);
    vg_diags_deinit(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_cycles),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_field_typos),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_multi_module),
        cmocka_unit_test(test_recovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
