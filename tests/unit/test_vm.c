/* test_vm.c - unit tests of the compiler and VM (rules/compiler.c, rules/vm.c,
 * rules/program.c): evaluation of features from hand-made events and spec values
 * (phase 2), spec inputs (phase 1: x, where, by), three-valued logic, null semantics,
 * time and duration arithmetic, geo_km, seconds_between, spec deduplication and by-
 * groups, constant folding, the disassembler and the diagnostics printer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "rules/program.h"
#include "rules/vm.h"

static vg_program_t *compile(const char *src) {
    vg_diags_t d;
    vg_diags_init(&d);
    vg_source_t s = {"t.vrl", src, strlen(src)};
    vg_program_t *p = vg_prog_compile(&s, 1, &d);
    if (!p) fail_msg("'%s' failed: %s", src, d.n ? d.v[0].msg : "?");
    vg_diags_deinit(&d);
    return p;
}

/* An event with every field null but ts/amount, and extras a, b (set per test). */
typedef struct {
    vg_tx_t tx;
    vg_extra_t ex[4];
} event_t;

static void event_init(event_t *e) {
    memset(e, 0, sizeof *e);
    for (int i = 0; i < VG_FIELD__COUNT; i++) e->tx.f[i] = vg_null();
    e->tx.f[VG_FIELD_ID] = vg_strv("tx-1", 4);
    e->tx.f[VG_FIELD_ACCOUNT] = vg_strv("acct", 4);
    e->tx.f[VG_FIELD_TS] = vg_time(1700000000000);
    e->tx.f[VG_FIELD_AMOUNT] = vg_num(12.5);
    e->tx.extra = e->ex;
}

static void event_extra(event_t *e, const char *name, vg_value_t v) {
    e->ex[e->tx.n_extra].name = vg_strv(name, (uint32_t)strlen(name)).u.s;
    e->ex[e->tx.n_extra].v = v;
    e->tx.n_extra++;
}

/* Compiles `feature f = <expr>` and evaluates it on ev with spec values `sv`. */
static vg_value_t eval(const char *expr, const event_t *ev, const vg_value_t *sv) {
    char src[1024];
    snprintf(src, sizeof src, "feature f = %s", expr);
    vg_program_t *p = compile(src);
    vg_arena_t ar;
    vg_arena_init(&ar);
    vg_value_t out[1];
    vg_value_t none[1] = {{0}};
    assert_int_equal(vg_prog_eval_features(p, &ev->tx, sv ? sv : none, &ar, out), 0);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
    return out[0];
}

static void expect_num(const char *expr, const event_t *ev, double want) {
    vg_value_t v = eval(expr, ev, NULL);
    if (v.type != VG_T_NUM || fabs(v.u.n - want) > 1e-9 * (fabs(want) + 1))
        fail_msg("'%s': got type %d %g, want %g", expr, v.type, v.u.n, want);
}

static void expect_type(const char *expr, const event_t *ev, int type, int64_t ms) {
    vg_value_t v = eval(expr, ev, NULL);
    if (v.type != type || ((type == VG_T_TIME || type == VG_T_DUR) && v.u.ms != ms))
        fail_msg("'%s': got type %d %lld, want type %d %lld", expr, v.type, (long long)v.u.ms,
                 type, (long long)ms);
}

/* b: 1 true, 0 false, -1 null */
static void expect_bool(const char *expr, const event_t *ev, int want) {
    vg_value_t v = eval(expr, ev, NULL);
    int got = v.type == VG_T_BOOL ? v.u.b : v.type == VG_T_NULL ? -1 : 99;
    if (got != want) fail_msg("'%s': got %d, want %d", expr, got, want);
}

static vg_value_t tri(int b) { return b < 0 ? vg_null() : vg_bool(b); }

static void test_three_valued_logic(void **state) {
    (void)state;
    static const int vals[3] = {1, 0, -1};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            int a = vals[i], b = vals[j];
            int and_ = (a == 0 || b == 0) ? 0 : (a == 1 && b == 1) ? 1 : -1;
            int or_ = (a == 1 || b == 1) ? 1 : (a == 0 && b == 0) ? 0 : -1;
            event_t ev;
            event_init(&ev);
            event_extra(&ev, "a", tri(a));
            event_extra(&ev, "b", tri(b));
            expect_bool("tx.a and tx.b", &ev, and_);
            expect_bool("tx.a or tx.b", &ev, or_);
            /* the same with literals: folded at compile time, same answers */
            static const char *lit[] = {"null", "true", "false"};
            char e[64];
            snprintf(e, sizeof e, "%s and %s", lit[a == 1 ? 1 : a == 0 ? 2 : 0],
                     lit[b == 1 ? 1 : b == 0 ? 2 : 0]);
            expect_bool(e, &ev, and_);
            snprintf(e, sizeof e, "%s or %s", lit[a == 1 ? 1 : a == 0 ? 2 : 0],
                     lit[b == 1 ? 1 : b == 0 ? 2 : 0]);
            expect_bool(e, &ev, or_);
        }
        event_t ev;
        event_init(&ev);
        event_extra(&ev, "a", tri(vals[i]));
        expect_bool("not tx.a", &ev, vals[i] < 0 ? -1 : !vals[i]);
    }
    event_t ev;
    event_init(&ev);
    event_extra(&ev, "s", vg_strv("x", 1));
    expect_bool("not tx.s", &ev, -1);            /* not a bool at run time: null */
    expect_bool("tx.s and false", &ev, 0);
    expect_bool("tx.s or true", &ev, 1);
    expect_bool("not null", &ev, -1);
}

static void test_null_semantics(void **state) {
    (void)state;
    event_t ev;
    event_init(&ev);
    event_extra(&ev, "zero", vg_num(0));
    event_extra(&ev, "big", vg_num(1e308));
    event_extra(&ev, "s", vg_strv("abc", 3));
    expect_num("tx.amount * 2 + 1", &ev, 26);
    expect_type("tx.missing + 1", &ev, VG_T_NULL, 0);
    expect_type("tx.lat - 1", &ev, VG_T_NULL, 0);            /* absent known field */
    expect_type("tx.amount / tx.zero", &ev, VG_T_NULL, 0);   /* division by zero */
    expect_type("1 / 0", &ev, VG_T_NULL, 0);                 /* folded: same rule */
    expect_type("tx.big * 10", &ev, VG_T_NULL, 0);           /* overflow: not finite */
    expect_type("-tx.missing", &ev, VG_T_NULL, 0);
    expect_type("tx.s + 1", &ev, VG_T_NULL, 0);              /* a string at run time */
    expect_bool("tx.missing > 1", &ev, -1);
    expect_bool("tx.missing == tx.missing", &ev, -1);
    expect_bool("tx.s == 1", &ev, -1);                       /* runtime type mismatch */
    expect_bool("tx.amount == null", &ev, -1);
    expect_bool("tx.missing in [\"a\"]", &ev, -1);
    expect_bool("(tx.missing > 1) or tx.amount > 1", &ev, 1);
    expect_bool("(tx.missing > 1) and tx.amount > 100", &ev, 0);
    expect_num("tx.amount - tx.zero", &ev, 12.5);
}

static void test_comparisons(void **state) {
    (void)state;
    event_t ev;
    event_init(&ev);
    ev.tx.f[VG_FIELD_MCC] = vg_strv("5411", 4);
    ev.tx.f[VG_FIELD_COUNTRY] = vg_strv("US", 2);
    event_extra(&ev, "flag", vg_bool(1));
    expect_bool("tx.amount > 12", &ev, 1);
    expect_bool("tx.amount >= 12.5", &ev, 1);
    expect_bool("tx.amount < 12.5", &ev, 0);
    expect_bool("tx.amount <= 12.5", &ev, 1);
    expect_bool("tx.amount == 12.5", &ev, 1);
    expect_bool("tx.amount != 12.5", &ev, 0);
    expect_bool("tx.mcc == \"5411\"", &ev, 1);
    expect_bool("tx.mcc < \"5412\"", &ev, 1);
    expect_bool("tx.mcc < \"541\"", &ev, 0);                 /* bytewise, prefix first */
    expect_bool("tx.mcc > \"5410\\u00e9\"", &ev, 1);
    expect_bool("tx.country in [\"CA\", \"US\"]", &ev, 1);
    expect_bool("tx.country in [\"CA\"]", &ev, 0);
    expect_bool("tx.country in []", &ev, 0);
    expect_bool("tx.amount in [1, 12.5]", &ev, 1);
    expect_bool("tx.amount in [-12.5]", &ev, 0);
    expect_bool("tx.flag == true", &ev, 1);
    expect_bool("false < true", &ev, 1);
    expect_bool("tx.ts > tx.ts - 1ms", &ev, 1);
    expect_bool("30s < 1m", &ev, 1);
    expect_bool("tx.ts - tx.ts == 0s", &ev, 1);
}

static void test_time_duration(void **state) {
    (void)state;
    event_t ev;
    event_init(&ev);
    int64_t t = 1700000000000;
    expect_type("tx.ts + 1h", &ev, VG_T_TIME, t + 3600000);
    expect_type("1h + tx.ts", &ev, VG_T_TIME, t + 3600000);
    expect_type("tx.ts - 30m", &ev, VG_T_TIME, t - 1800000);
    expect_type("(tx.ts + 90s) - tx.ts", &ev, VG_T_DUR, 90000);
    expect_type("1h + 30m", &ev, VG_T_DUR, 5400000);
    expect_type("1h - 2h", &ev, VG_T_DUR, -3600000);
    expect_type("-500ms", &ev, VG_T_DUR, -500);
    expect_type("1m * 1.5", &ev, VG_T_DUR, 90000);
    expect_type("2 * 1d", &ev, VG_T_DUR, 172800000);
    expect_type("1s / 3", &ev, VG_T_DUR, 333);
    expect_type("1s / 0", &ev, VG_T_NULL, 0);
    expect_num("1h / 30m", &ev, 2);
    expect_type("1h / 0s", &ev, VG_T_NULL, 0);
    expect_type("tx.amount * 1m", &ev, VG_T_DUR, 750000);
    expect_num("seconds_between(tx.ts - 1h, tx.ts)", &ev, 3600);
    expect_num("seconds_between(tx.ts, tx.ts - 500ms)", &ev, -0.5);
    expect_type("seconds_between(tx.ts, null)", &ev, VG_T_NULL, 0);
    /* a time outside years 0000-9999 is null (it printed clamped to 9999-12-31, so two
     * different times looked equal) */
    expect_type("tx.ts + 2900000d", &ev, VG_T_TIME, t + 2900000LL * 86400000);
    expect_type("tx.ts + 3000000d", &ev, VG_T_NULL, 0);
    expect_type("tx.ts - 800000d", &ev, VG_T_NULL, 0);
    expect_type("hour_of_day(tx.ts + 3000000d)", &ev, VG_T_NULL, 0);
    expect_type("(tx.ts + 3000000d) - tx.ts", &ev, VG_T_NULL, 0);
}

static void test_geo_km(void **state) {
    (void)state;
    event_t ev;
    event_init(&ev);
    ev.tx.f[VG_FIELD_LAT] = vg_num(40.7128);
    ev.tx.f[VG_FIELD_LON] = vg_num(-74.0060);
    vg_value_t v = eval("geo_km(tx.lat, tx.lon, 51.5074, -0.1278)", &ev, NULL);
    assert_int_equal(v.type, VG_T_NUM);
    assert_true(v.u.n > 5565 && v.u.n < 5575);   /* New York - London, about 5570 km */
    expect_num("geo_km(tx.lat, tx.lon, tx.lat, tx.lon)", &ev, 0);
    expect_num("geo_km(0, 0, 0, 180)", &ev, 6371.0 * 3.14159265358979323846);
    expect_num("geo_km(90, 0, -90, 0)", &ev, 6371.0 * 3.14159265358979323846);
    expect_type("geo_km(tx.lat, tx.lon, tx.nope, 0)", &ev, VG_T_NULL, 0);
    assert_true(fabs(vg_vm_geo_km(0, 0, 1, 0) - 111.19492664455873) < 1e-9);
}

/* The reference for round(): the shortest "%.Ng" that reads back as x, rounded half
 * away from zero as a decimal string, read back with strtod. */
static double round_ref(double x, int d) {
    char s[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(s, sizeof s, "%.*e", p - 1, x);
        if (strtod(s, NULL) == x) break;
    }
    /* s is [-]D.DDDDe[+-]X: digits and the decimal exponent */
    char dig[24];
    int k = 0, neg = s[0] == '-';
    char *c = s + neg;
    for (; *c != 'e'; c++)
        if (*c != '.') dig[k++] = *c;
    int point = atoi(c + 1) + 1, keep = point + d;
    if (keep >= k) return x;
    if (keep < 0) return neg ? -0.0 : 0.0;
    char out[64];
    unsigned long long q = 0;
    for (int i = 0; i < keep; i++) q = q * 10 + (unsigned)(dig[i] - '0');
    if (dig[keep] >= '5') q++;
    snprintf(out, sizeof out, "%s%llue%d", neg ? "-" : "", q, -d);
    return strtod(out, NULL);
}

static void test_round(void **state) {
    (void)state;
    event_t ev;
    event_init(&ev);
    /* as written and printed, half away from zero: the tester's four, consistent */
    assert_true(vg_vm_round(2.675, 2) == 2.68);
    assert_true(vg_vm_round(1.005, 2) == 1.01);
    assert_true(vg_vm_round(1.115, 2) == 1.12);
    assert_true(vg_vm_round(4.435, 2) == 4.44);
    assert_true(vg_vm_round(-4.435, 2) == -4.44);
    assert_true(vg_vm_round(-1.005, 2) == -1.01);
    assert_true(vg_vm_round(2.5, 0) == 3 && vg_vm_round(-2.5, 0) == -3);
    assert_true(vg_vm_round(0.49999999999999994, 0) == 0);
    assert_true(vg_vm_round(9.995, 2) == 10);
    assert_true(vg_vm_round(0.000125, 5) == 0.00013);
    assert_true(vg_vm_round(1.5e-7, 6) == 0);
    assert_true(vg_vm_round(5e-7, 6) == 1e-6);
    assert_true(signbit(vg_vm_round(-0.4, 0)) && vg_vm_round(-0.4, 0) == 0);
    assert_true(vg_vm_round(1234.5, -2) == 1200 && vg_vm_round(1250, -2) == 1300);
    assert_true(vg_vm_round(1.23456789012345678, 15) == 1.234567890123457);
    assert_true(vg_vm_round(0.1 + 0.2, 15) == 0.3);        /* 0.30000000000000004 */
    assert_true(vg_vm_round(123456789.123456789, 7) == 123456789.1234568);
    assert_true(vg_vm_round(1e300, 2) == 1e300 && vg_vm_round(-1.7976931348623157e308, 0) ==
                -1.7976931348623157e308);
    assert_true(vg_vm_round(4.5e15, 0) == 4.5e15 && vg_vm_round(2.5e-300, 15) == 0);
    assert_true(isinf(vg_vm_round(INFINITY, 2)) && isnan(vg_vm_round(NAN, 2)));
    assert_true(vg_vm_round(2.675, NAN) == 2.675 && vg_vm_round(2.675, 1e9) == 2.675);
    assert_true(vg_vm_round(2.675, -1e9) == 0);
    /* against the string reference, on random doubles of every magnitude and on
     * decimals with a trailing 5 */
    uint64_t st = 88172645463325252ULL;
    for (int i = 0; i < 50000; i++) {
        st ^= st << 13; st ^= st >> 7; st ^= st << 17;
        double x;
        int d = (int)(st % 16);
        if (i % 2) {
            x = ldexp((double)(st >> 11) / 9007199254740992.0, (int)((st >> 3) % 120) - 60);
        } else {   /* k.ddd5 with up to 15 significant digits */
            char t[40];
            int nd = (int)(st >> 40) % 8 + 1;
            snprintf(t, sizeof t, "%llu.%0*llu5", (unsigned long long)((st >> 20) % 100000),
                     nd, (unsigned long long)((st >> 8) % 10000000));
            x = strtod(t, NULL);
            d = nd;
        }
        if (st & 1024) x = -x;
        double got = vg_vm_round(x, d), want = round_ref(x, d);
        if (!(got == want && signbit(got) == signbit(want)))
            fail_msg("round(%.17g, %d) = %.17g, want %.17g", x, d, got, want);
    }
    /* through the language */
    expect_num("round(2.675, 2)", &ev, 2.68);
    expect_num("round(1.005, 2)", &ev, 1.01);
    expect_num("round(-4.435, 2)", &ev, -4.44);
    ev.tx.f[VG_FIELD_AMOUNT] = vg_num(1.115);
    expect_num("round(tx.amount, 2)", &ev, 1.12);
    expect_num("round(tx.amount)", &ev, 1);
}

static void test_phase2_specs(void **state) {
    (void)state;
    vg_program_t *p = compile(
        "feature tx_10m = count(10m)\n"
        "feature again = count(600s) + 0\n"          /* same spec as count(10m) */
        "feature avg_30d = avg(tx.amount, 30d)\n"
        "feature big = tx.amount > 3 * avg_30d\n"
        "feature new_device = not seen(tx.device, 90d)\n"
        "feature gap = seconds_between(prev(tx.ts), tx.ts)\n"
        "feature ratio = tx_10m / avg_30d\n");
    assert_int_equal(vg_prog_nspecs(p), 4);   /* count(600s) is count(10m) */
    assert_string_equal(vg_prog_spec(p, 0)->text, "count(10m)");
    assert_int_equal(vg_prog_spec(p, 0)->kind, VG_SPEC_COUNT);
    assert_int_equal(vg_prog_spec(p, 0)->window_ms, 600000);
    assert_string_equal(vg_prog_spec(p, 1)->text, "avg(tx.amount, 30d)");
    assert_int_equal(vg_prog_spec(p, 1)->x_type, VG_T_NUM);
    assert_string_equal(vg_prog_spec(p, 2)->text, "seen(tx.device, 90d)");
    assert_int_equal(vg_prog_spec(p, 2)->x_type, VG_T_STR);
    assert_string_equal(vg_prog_spec(p, 3)->text, "prev(tx.ts)");
    assert_int_equal(vg_prog_spec(p, 3)->x_type, VG_T_TIME);
    assert_int_equal(vg_prog_spec(p, 3)->window_ms, 0);
    assert_int_equal(vg_prog_max_window(p), 90LL * 86400000);
    assert_int_equal(vg_prog_nfeatures(p), 7);
    assert_int_equal(vg_prog_feature_type(p, 4), VG_T_BOOL);
    assert_null(vg_prog_spec(p, 4));
    assert_null(vg_prog_feature_name(p, 7));

    event_t ev;
    event_init(&ev);
    vg_value_t sv[4] = {vg_num(7), vg_num(2.5), vg_bool(0),
                        vg_time(1700000000000 - 90000)};
    vg_value_t out[7];
    vg_arena_t ar;
    vg_arena_init(&ar);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, sv, &ar, out), 0);
    assert_int_equal(out[0].type, VG_T_NUM);
    assert_true(out[0].u.n == 7);
    assert_true(out[1].u.n == 7);
    assert_true(out[2].u.n == 2.5);
    assert_int_equal(out[3].type, VG_T_BOOL);
    assert_int_equal(out[3].u.b, 1);                 /* 12.5 > 7.5 */
    assert_int_equal(out[4].u.b, 1);                 /* not seen */
    assert_true(out[5].u.n == 90);
    assert_true(out[6].u.n == 2.8);
    /* empty avg (null) and first event (no prev) */
    sv[1] = vg_null();
    sv[2] = vg_null();
    sv[3] = vg_null();
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, sv, &ar, out), 0);
    assert_int_equal(out[3].type, VG_T_NULL);
    assert_int_equal(out[4].type, VG_T_NULL);
    assert_int_equal(out[5].type, VG_T_NULL);
    assert_int_equal(out[6].type, VG_T_NULL);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
}

static void test_phase1_inputs(void **state) {
    (void)state;
    vg_program_t *p = compile(
        "feature a = count(1h by tx.card)\n"
        "feature b = sum(tx.amount, 1d where tx.amount < 20 by tx.card)\n"
        "feature c = count(1m where tx.amount < 5)\n"
        "feature d = distinct(tx.merchant, 1d by tx.ip)\n"
        "feature e = sum(tx.points, 1h)\n"
        "feature f = prev(tx.lat)\n"
        "feature g = session_count(30m)\n"
        "feature h = count(1m where tx.flag)\n"
        "feature i = avg(tx.amount * 2, 1d)\n");
    assert_int_equal(vg_prog_nspecs(p), 9);
    assert_int_equal(vg_prog_nbygroups(p), 2);
    assert_string_equal(vg_prog_bygroup_text(p, 0), "tx.card");
    assert_string_equal(vg_prog_bygroup_text(p, 1), "tx.ip");
    assert_null(vg_prog_bygroup_text(p, 2));
    assert_int_equal(vg_prog_spec(p, 0)->by_group, 0);
    assert_int_equal(vg_prog_spec(p, 1)->by_group, 0);
    assert_int_equal(vg_prog_spec(p, 1)->has_where, 1);
    assert_int_equal(vg_prog_spec(p, 2)->by_group, -1);
    assert_int_equal(vg_prog_spec(p, 3)->by_group, 1);
    assert_int_equal(vg_prog_spec(p, 0)->has_x, 0);
    assert_int_equal(vg_prog_spec(p, 4)->x_type, VG_T_NUM);  /* extra field, cast */
    assert_int_equal(vg_prog_spec(p, 6)->kind, VG_SPEC_SESSION_COUNT);
    assert_int_equal(vg_prog_spec(p, 6)->window_ms, 1800000);
    assert_int_equal(vg_prog_max_window(p), 86400000);  /* sessions do not count */

    event_t ev;
    event_init(&ev);
    ev.tx.f[VG_FIELD_CARD] = vg_strv("card-1", 6);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("m-1", 3);
    ev.tx.f[VG_FIELD_LAT] = vg_num(40.5);
    event_extra(&ev, "points", vg_strv("x", 1));   /* not a number: x is null */
    vg_spec_input_t in[9];
    vg_arena_t ar;
    vg_arena_init(&ar);
    memset(in, 0xAB, sizeof in);
    assert_int_equal(vg_prog_eval_inputs(p, &ev.tx, NULL, &ar, in), 0);
    assert_int_equal(in[0].key.type, VG_T_STR);
    assert_memory_equal(in[0].key.u.s.p, "card-1", 6);
    assert_int_equal(in[0].keep, 1);
    assert_int_equal(in[0].x.type, VG_T_NULL);
    assert_int_equal(in[1].keep, 1);                  /* 12.5 < 20 */
    assert_true(in[1].x.type == VG_T_NUM && in[1].x.u.n == 12.5);
    assert_int_equal(in[1].key.type, VG_T_STR);
    assert_int_equal(in[2].keep, 0);                  /* 12.5 < 5 is false */
    assert_int_equal(in[2].key.type, VG_T_NULL);
    assert_int_equal(in[3].key.type, VG_T_NULL);      /* no ip: no key */
    assert_int_equal(in[3].x.type, VG_T_STR);
    assert_int_equal(in[4].x.type, VG_T_NULL);
    assert_int_equal(in[4].keep, 1);
    assert_true(in[5].x.type == VG_T_NUM && in[5].x.u.n == 40.5);
    assert_int_equal(in[6].keep, 1);
    assert_int_equal(in[7].keep, 0);                  /* where null: not kept */
    assert_true(in[8].x.u.n == 25);
    /* a true `where` from an extra field */
    event_extra(&ev, "flag", vg_bool(1));
    ev.tx.f[VG_FIELD_AMOUNT] = vg_num(3);
    assert_int_equal(vg_prog_eval_inputs(p, &ev.tx, NULL, &ar, in), 0);
    assert_int_equal(in[7].keep, 1);
    assert_int_equal(in[2].keep, 1);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
}

static char *explain(vg_program_t *p) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vg_prog_explain(p, f);
    fclose(f);
    return buf;
}

static void test_folding_and_explain(void **state) {
    (void)state;
    vg_program_t *p = compile("feature k = 2 * 3 + 1 > 6 and not false\n"
                              "feature n = count(10m where tx.amount > 10 / 2)\n");
    char *text = explain(p);
    assert_null(strstr(text, " Mul "));     /* folded */
    assert_null(strstr(text, " Div "));
    assert_non_null(strstr(text, "count(10m where tx.amount > 10 / 2)"));
    assert_non_null(strstr(text, "Gt"));
    assert_non_null(strstr(text, "r[3]=r[2]>r[1]"));  /* constants first, synopsis filled */
    assert_non_null(strstr(text, "feature[0]=r[0]"));
    assert_non_null(strstr(text, "; k"));
    free(text);
    vg_value_t out[2], sv[1] = {vg_num(3)};
    event_t ev;
    event_init(&ev);
    vg_arena_t ar;
    vg_arena_init(&ar);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, sv, &ar, out), 0);
    assert_int_equal(out[0].type, VG_T_BOOL);
    assert_int_equal(out[0].u.b, 1);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
}

static void test_big_program(void **state) {
    (void)state;
    /* more registers than the VM keeps on the stack: the arena is used */
    size_t cap = 64 * 400;
    char *src = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(src + n, cap - n, "feature f%d = tx.amount * %d + %s\n", i, i,
                              i ? "f0" : "1");
    vg_program_t *p = compile(src);
    free(src);
    vg_value_t out[300];
    event_t ev;
    event_init(&ev);
    vg_arena_t ar;
    vg_arena_init(&ar);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    assert_true(out[0].u.n == 1);
    assert_true(out[299].u.n == 12.5 * 299 + 1);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
}

/* The matches() of one event share a budget of VG_VM_REGEX_EVENT_STEPS steps (rules/vm.h),
 * kept in the arena and zeroed by vg_arena_reset(): once catastrophic backtracking has
 * used it up, the event's later matches give null without running, in every phase; the
 * next event starts afresh. Counted in steps, never timed. */
static void test_regex_event_budget(void **state) {
    (void)state;
    /* 40 patterns that backtrack catastrophically on "aaa...a!" (each distinct, so none
     * is shared), then a cheap one */
    size_t cap = 64 * 50;
    char *src = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(src + n, cap - n,
                              "feature slow%d = matches(tx.merchant, \"(a+)+$|z%d\")\n", i, i);
    snprintf(src + n, cap - n, "feature cheap = matches(tx.merchant, \"^a\")\n");
    vg_program_t *p = compile(src);
    free(src);
    vg_value_t out[41];
    event_t ev;
    event_init(&ev);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", 31);
    vg_arena_t ar;
    vg_arena_init(&ar);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    for (int i = 0; i < 40; i++) assert_int_equal(out[i].type, VG_T_NULL);
    /* before the budget, all 41 matches ran (40 to their limit) and cheap was true */
    assert_int_equal(out[40].type, VG_T_NULL);
    assert_true(ar.rx_steps <= VG_VM_REGEX_EVENT_STEPS);
    assert_int_equal(ar.rx_steps, VG_VM_REGEX_EVENT_STEPS);   /* all of it */
    /* the first runs to the per-match limit; the second to what is left; then none */
    assert_int_equal(ar.rx_skipped, 39);
    /* a second run over the same event (arena not reset) finds the budget used up */
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    assert_int_equal(out[40].type, VG_T_NULL);
    assert_int_equal(ar.rx_skipped, 39 + 41);

    /* the next event starts with the whole budget */
    vg_arena_reset(&ar);
    assert_int_equal(ar.rx_steps, 0);
    assert_int_equal(ar.rx_skipped, 0);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("m-1", 3);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    for (int i = 0; i < 41; i++) {
        assert_int_equal(out[i].type, VG_T_BOOL);
        assert_int_equal(out[i].u.b, 0);
    }
    /* an ordinary match is charged the first limit only */
    assert_int_equal(ar.rx_steps, 41 * VG_VM_REGEX_FIRST_STEPS);
    assert_int_equal(ar.rx_skipped, 0);
    vg_arena_reset(&ar);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("aaa", 3);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    for (int i = 0; i < 41; i++) assert_true(out[i].type == VG_T_BOOL && out[i].u.b);
    /* a match that needs more steps than the first limit (10,240 for 12 a's) runs again
     * under larger ones and gives its answer, not null; charged 16 + 64 + ... + 16,384
     * each, nine such matches fit in the budget, and the rest give null */
    vg_arena_reset(&ar);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("aaaaaaaaaaaa!", 13);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    for (int i = 0; i < 9; i++) assert_true(out[i].type == VG_T_BOOL && !out[i].u.b);
    for (int i = 9; i < 41; i++) assert_int_equal(out[i].type, VG_T_NULL);
    assert_int_equal(ar.rx_skipped, 31);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);

    /* phase 1 (an aggregate's where) and phase 2 draw on the same budget */
    p = compile("feature c = count(1h where matches(tx.merchant, \"(a+)+$|w1\")\n"
                "                   or matches(tx.merchant, \"(a+)+$|w2\"))\n"
                "feature cheap = matches(tx.merchant, \"^a\")\n");
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", 31);
    vg_arena_init(&ar);
    vg_spec_input_t in[1];
    assert_int_equal(vg_prog_eval_inputs(p, &ev.tx, NULL, &ar, in), 0);
    assert_int_equal(in[0].keep, 0);                    /* where null: not kept */
    assert_int_equal(ar.rx_steps, VG_VM_REGEX_EVENT_STEPS);
    vg_value_t sv[1] = {vg_num(0)};
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, sv, &ar, out), 0);
    assert_int_equal(out[1].type, VG_T_NULL);
    assert_int_equal(ar.rx_skipped, 1);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
}

/* A match is also charged for its subject's length (1 step per VG_VM_REGEX_SCAN_BYTES
 * bytes per run): a cheap anchored pattern costs time proportional to a long subject
 * (PCRE2 scans it), so on a 65,000-byte merchant only 49 of 100 such matches fit in the
 * budget (16 + 4,062 each) and the rest give null without running. Strings are UTF-8
 * (not checked again by PCRE2): a multibyte character is still one character. */
static void test_regex_subject_charge(void **state) {
    (void)state;
    size_t cap = 64 * 100;
    char *src = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(src + n, cap - n,
                              "feature f%d = matches(tx.merchant, \"^evil-shop-%d\")\n", i, i);
    vg_program_t *p = compile(src);
    free(src);
    vg_value_t out[100];
    event_t ev;
    event_init(&ev);
    char *big = malloc(65000);
    memset(big, 'm', 65000);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv(big, 65000);
    vg_arena_t ar;
    vg_arena_init(&ar);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    /* a long subject's match is charged its callouts (a few for an anchored pattern
     * that fails at once) plus the scan */
    uint32_t scan = 65000 / VG_VM_REGEX_SCAN_BYTES;
    uint32_t fit = VG_VM_REGEX_EVENT_STEPS / scan;
    assert_int_equal(fit, 49);
    for (uint32_t i = 0; i < fit; i++) assert_true(out[i].type == VG_T_BOOL && !out[i].u.b);
    for (uint32_t i = fit; i < 100; i++) assert_int_equal(out[i].type, VG_T_NULL);
    assert_int_equal(ar.rx_skipped, 100 - fit);
    assert_true(ar.rx_steps >= fit * scan && ar.rx_steps <= fit * (scan + 8));
    assert_true(ar.rx_steps <= VG_VM_REGEX_EVENT_STEPS);
    /* a short subject (under 16 bytes) is charged the first limit only */
    vg_arena_reset(&ar);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("evil-shop-7", 11);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    assert_true(out[7].type == VG_T_BOOL && out[7].u.b);
    assert_int_equal(ar.rx_steps, 100 * VG_VM_REGEX_FIRST_STEPS);
    free(big);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);

    p = compile("feature one = matches(tx.merchant, \"^.$\")\n"
                "feature e = matches(tx.merchant, \"^\\\\x{e9}\")\n");
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("\xc3\xa9", 2);   /* U+00E9 */
    vg_arena_init(&ar);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    assert_true(out[0].type == VG_T_BOOL && out[0].u.b);
    assert_true(out[1].type == VG_T_BOOL && out[1].u.b);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
}

/* PCRE2's own step count starts afresh at every start position and does not see a repeat
 * that cannot give characters back: `[a-z]+[0-9]` on a long run of letters does work that
 * grows with the square of its length, charged almost nothing (a tester held a shard for
 * 475 s with one 65,000-byte event and 50 such rules). On a subject longer than
 * VG_VM_REGEX_SHORT the steps are callouts, counted across start positions: the first
 * matches reach their limit (null) and use up the budget, the rest give null without
 * running. Counted in steps, never timed. The answers are those of the pattern as
 * written (no automatic possessification only changes the work). */
static void test_regex_quadratic(void **state) {
    (void)state;
    size_t cap = 64 * 50;
    char *src = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(src + n, cap - n,
                              "feature f%d = matches(tx.merchant, \"[a-z]+[0-9]{1,%d}\")\n", i,
                              i + 1);
    vg_program_t *p = compile(src);
    free(src);
    vg_value_t out[50];
    event_t ev;
    event_init(&ev);
    char *big = malloc(4001);
    memset(big, 'a', 4000);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv(big, 4000);
    vg_arena_t ar;
    vg_arena_init(&ar);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    for (int i = 0; i < 50; i++) assert_int_equal(out[i].type, VG_T_NULL);
    assert_int_equal(ar.rx_skipped, 48);   /* two ran to their limit */
    assert_int_equal(ar.rx_steps, VG_VM_REGEX_EVENT_STEPS);
    /* the same patterns answer as written when they can: a digit at the end matches,
     * a short subject takes the other code */
    vg_arena_reset(&ar);
    big[3999] = '7';
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    for (int i = 0; i < 50; i++) assert_true(out[i].type == VG_T_BOOL && out[i].u.b);
    assert_true(ar.rx_steps < VG_VM_REGEX_EVENT_STEPS);
    vg_arena_reset(&ar);
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv("shop", 4);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    for (int i = 0; i < 50; i++) assert_true(out[i].type == VG_T_BOOL && !out[i].u.b);
    free(big);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);

    /* an ordinary unanchored pattern on a field of a few hundred bytes answers as it
     * always did (with callouts from 33 bytes on, a 450-byte user agent made the fifth
     * of these null: a tester) */
    p = compile("feature e1 = matches(tx.merchant, \"[^@]+@evil1\\\\.com\")\n"
                "feature e2 = matches(tx.merchant, \"[^@]+@evil2\\\\.com\")\n"
                "feature e3 = matches(tx.merchant, \"[^@]+@evil3\\\\.com\")\n"
                "feature e4 = matches(tx.merchant, \"[^@]+@evil4\\\\.com\")\n"
                "feature e5 = matches(tx.merchant, \"[^@]+@evil5\\\\.com\")\n"
                "feature e6 = matches(tx.merchant, \"[^@]+@evil6\\\\.com\")\n"
                "feature e7 = matches(tx.merchant, \"[^@]+@evil7\\\\.com\")\n");
    char ua[461];
    for (int i = 0; i < 460; i++) ua[i] = "Mozilla/5.0 (X11; Linux x86_64) "[i % 32];
    ev.tx.f[VG_FIELD_MERCHANT] = vg_strv(ua, 460);
    vg_arena_init(&ar);
    assert_int_equal(vg_prog_eval_features(p, &ev.tx, NULL, &ar, out), 0);
    for (int i = 0; i < 7; i++) assert_true(out[i].type == VG_T_BOOL && !out[i].u.b);
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
}

static void test_refcount(void **state) {
    (void)state;
    vg_program_t *p = compile("feature a = 1");
    assert_ptr_equal(vg_prog_ref(p), p);
    vg_prog_unref(p);
    vg_prog_unref(p);
    vg_prog_unref(NULL);
}

static void test_diags_print(void **state) {
    (void)state;
    const char *src = "feature a = 1\n\tfeature b = nope + 1\n";
    vg_source_t s = {"x.vrl", src, strlen(src)};
    vg_diags_t d;
    vg_diags_init(&d);
    assert_null(vg_prog_compile(&s, 1, &d));
    vg_diags_add(&d, 0, "x.vrl", 1, 9, "a warning");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    vg_diags_print(&d, &s, 1, f);
    fclose(f);
    assert_string_equal(buf,
                        "x.vrl:2:14: error: unknown feature 'nope'\n"
                        "  \tfeature b = nope + 1\n"
                        "  \t            ^\n"
                        "x.vrl:1:9: warning: a warning\n"
                        "  feature a = 1\n"
                        "          ^\n");
    free(buf);
    vg_diags_deinit(&d);
    vg_diags_deinit(&d);   /* idempotent */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_valued_logic),
        cmocka_unit_test(test_null_semantics),
        cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_time_duration),
        cmocka_unit_test(test_geo_km),
        cmocka_unit_test(test_round),
        cmocka_unit_test(test_phase2_specs),
        cmocka_unit_test(test_phase1_inputs),
        cmocka_unit_test(test_folding_and_explain),
        cmocka_unit_test(test_big_program),
        cmocka_unit_test(test_regex_event_budget),
        cmocka_unit_test(test_regex_subject_charge),
        cmocka_unit_test(test_regex_quadratic),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_diags_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
