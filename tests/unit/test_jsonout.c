/* test_jsonout.c - unit tests for engine/jsonout.c and vg_time_format (engine/time.c):
 * shortest round-trip numbers, string escaping, values, times, buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/digits.h"
#include "engine/event.h"
#include "engine/jsonout.h"
#include "rules/errors.h"

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void expect_num(double d, const char *want) {
    char buf[40];
    size_t n = vg_fmt_double(d, buf);
    if (n != strlen(want) || strcmp(buf, want) != 0) fail_msg("%.17g: got '%s' want '%s'", d, buf, want);
    vg_buf_t b;
    vg_buf_init(&b);
    assert_int_equal(vg_json_num(&b, d), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.p, want, b.len);
    vg_buf_deinit(&b);
}

static void test_numbers_shortest(void **state) {
    (void)state;
    expect_num(0.1, "0.1");
    expect_num(1.0 / 3, "0.3333333333333333");
    expect_num(2.0 / 3, "0.6666666666666666");
    expect_num(1e300, "1e300");
    expect_num(5e-324, "5e-324");
    expect_num(-5e-324, "-5e-324");
    expect_num(1e-320, "1e-320");
    expect_num(123.45, "123.45");
    expect_num(7, "7");
    expect_num(-3, "-3");
    expect_num(0, "0");
    expect_num(-0.0, "-0");   /* reads back as -0 (SPEC section 3) */
    expect_num(-1.5, "-1.5");
    expect_num(100, "100");
    expect_num(1e15, "1000000000000000");
    expect_num(9007199254740991.0, "9007199254740991");
    expect_num(9007199254740992.0, "9007199254740992");
    expect_num(-9007199254740991.0, "-9007199254740991");
    expect_num(1e16, "1e16");
    expect_num(1e21, "1e21");
    expect_num(123456789012345678901234567890.0, "1.2345678901234568e29");
    expect_num(0.30000000000000004, "0.30000000000000004");
    expect_num(0.1 + 0.2, "0.30000000000000004");
    expect_num(1e-7, "1e-7");
    expect_num(0.0001, "0.0001");
    expect_num(0.000123, "0.000123");
    expect_num(123456789.125, "123456789.125");
    expect_num(DBL_MAX, "1.7976931348623157e308");
    expect_num(-DBL_MAX, "-1.7976931348623157e308");
    expect_num(DBL_MIN, "2.2250738585072014e-308");
    expect_num(31.5, "31.5");
    expect_num(NAN, "null");
    expect_num(INFINITY, "null");
    expect_num(-INFINITY, "null");
}

/* Significant digits of a formatted number (mantissa without sign, point, leading and
 * trailing zeros). */
static int sig_digits(const char *s) {
    char m[40];
    int k = 0;
    for (const char *p = s; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') m[k++] = *p;
    int a = 0, z = k;
    while (a < k && m[a] == '0') a++;
    while (z > a && m[z - 1] == '0') z--;
    return z - a;
}

static void test_numbers_round_trip_random(void **state) {
    (void)state;
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    char buf[40];
    int checked_shortest = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t bits = rng_next(&s);
        double d;
        if (i % 4 == 3) {
            /* values that look like amounts: cents */
            d = (double)(int64_t)(bits % 10000000) / 100.0;
        } else {
            memcpy(&d, &bits, sizeof d);
        }
        if (!isfinite(d)) continue;
        size_t n = vg_fmt_double(d, buf);
        assert_int_equal(n, strlen(buf));
        assert_true(n <= 24);
        double back = strtod(buf, NULL);
        if (back != d) fail_msg("%a printed as %s reads back as %a", d, buf, back);
        assert_null(strchr(buf, '+'));
        if (i % 50 == 0) {
            /* no shorter precision round-trips */
            int p = 1;
            char t[40];
            for (; p <= 17; p++) {
                snprintf(t, sizeof t, "%.*g", p, d);
                if (strtod(t, NULL) == d) break;
            }
            if (sig_digits(buf) > p)
                fail_msg("%a printed as %s, shorter %s", d, buf, t);
            checked_shortest++;
        }
    }
    assert_true(checked_shortest > 1000);
}

static void expect_str_json(const char *in, size_t len, const char *want) {
    vg_buf_t b;
    vg_buf_init(&b);
    assert_int_equal(vg_json_str(&b, in, len), 0);
    if (b.len != strlen(want) || memcmp(b.p, want, b.len) != 0)
        fail_msg("got %.*s want %s", (int)b.len, b.p, want);
    vg_buf_deinit(&b);
}
#define EXPECT_STR(lit, want) expect_str_json(lit, sizeof(lit) - 1, want)

/* Decimal-looking values (a few decimals, as amounts and their sums are) take a fast
 * path; it must print exactly what the general %.15g/%.16g/%.17g search prints. */
static void test_numbers_fast_path_matches_general(void **state) {
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11};
    for (int i = 0; i < 300000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        int k = (int)(x % 12);
        int64_t m = (int64_t)((x >> 8) % 100000000000000000ULL) >> (int)((x >> 3) % 50);
        if (x & 1) m = -m;
        double d = (double)m / p10[k];
        if (i % 7 == 0) d = d + d * 1e-16 * (double)((x >> 20) % 5);  /* near misses */
        if (!isfinite(d) || d == 0) continue;
        double ad = fabs(d);
        if (ad < 1e-4 || ad >= 1e15) continue;
        char got[40], want[40];
        vg_fmt_double(d, got);
        int p = 15;
        for (; p <= 17; p++) {
            snprintf(want, sizeof(want), "%.*g", p, d);
            if (strtod(want, NULL) == d) break;
        }
        if (strchr(want, 'e')) continue;   /* exponent forms are tidied differently */
        if (strcmp(got, want) != 0) fail_msg("d=%.17g: got %s, want %s", d, got, want);
    }
    char buf[40];
    vg_fmt_double(16.53, buf);
    assert_string_equal(buf, "16.53");
    vg_fmt_double(-0.0001, buf);
    assert_string_equal(buf, "-0.0001");
    vg_fmt_double(0.30000000000000004, buf);
    assert_string_equal(buf, "0.30000000000000004");
    vg_fmt_double(123456789012345.6, buf);
    assert_string_equal(buf, "123456789012345.6");
}

static void test_string_escaping(void **state) {
    (void)state;
    EXPECT_STR("", "\"\"");
    EXPECT_STR("plain text", "\"plain text\"");
    EXPECT_STR("q\"b\\s/", "\"q\\\"b\\\\s/\"");
    EXPECT_STR("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    EXPECT_STR("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
    EXPECT_STR("a\0b", "\"a\\u0000b\"");
    /* valid UTF-8 passes through: 2, 3 and 4 byte sequences, and the edges */
    EXPECT_STR("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    EXPECT_STR("\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf",
               "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
    /* invalid bytes become \ufffd, one per byte that cannot start a sequence */
    EXPECT_STR("a\xff" "b", "\"a\\ufffdb\"");
    EXPECT_STR("\xc3", "\"\\ufffd\"");                           /* truncated */
    EXPECT_STR("\xc3(", "\"\\ufffd(\"");                         /* bad continuation */
    EXPECT_STR("\xc0\xaf", "\"\\ufffd\\ufffd\"");                /* overlong */
    EXPECT_STR("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");     /* overlong */
    EXPECT_STR("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");     /* surrogate */
    EXPECT_STR("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    EXPECT_STR("\x80", "\"\\ufffd\"");                           /* lone continuation */
}

static void expect_time(int64_t ms, const char *want) {
    char buf[32];
    size_t n = vg_time_format(ms, buf);
    assert_int_equal(n, 24);
    assert_string_equal(buf, want);
}

static void test_times(void **state) {
    (void)state;
    expect_time(0, "1970-01-01T00:00:00.000Z");
    expect_time(-1, "1969-12-31T23:59:59.999Z");
    expect_time(1795468423123LL, "2026-11-23T21:13:43.123Z");
    expect_time(1709164800000LL, "2024-02-29T00:00:00.000Z");
    expect_time(951825600007LL, "2000-02-29T12:00:00.007Z");
    expect_time(VG_TIME_MIN_MS, "0000-01-01T00:00:00.000Z");
    expect_time(VG_TIME_MAX_MS, "9999-12-31T23:59:59.999Z");
    /* out of range is clamped */
    expect_time(VG_TIME_MIN_MS - 5, "0000-01-01T00:00:00.000Z");
    expect_time(INT64_MAX, "9999-12-31T23:59:59.999Z");
    /* format then parse is the identity over the whole range */
    uint64_t s = 12345;
    char buf[32], err[128];
    uint64_t span = (uint64_t)(VG_TIME_MAX_MS - VG_TIME_MIN_MS) + 1;
    for (int i = 0; i < 20000; i++) {
        int64_t ms = VG_TIME_MIN_MS + (int64_t)(rng_next(&s) % span);
        size_t n = vg_time_format(ms, buf);
        int64_t back = 0;
        assert_int_equal(vg_time_parse(buf, n, &back, err, sizeof err), 0);
        if (back != ms) fail_msg("%lld -> %s -> %lld", (long long)ms, buf, (long long)back);
    }
}

static void test_values(void **state) {
    (void)state;
    vg_buf_t b;
    vg_buf_init(&b);
    vg_value_t vals[9];
    vals[0] = vg_bool(1);
    vals[1] = vg_bool(0);
    vals[2] = vg_num(31.5);
    vals[3] = vg_strv("a\"b", 3);
    vals[4] = vg_time(1795468423123LL);
    vals[5] = vg_dur(1500);
    vals[6] = vg_dur(60000);
    vals[7] = vg_null();
    vals[8].type = VG_T_JSON;
    vals[8].u.s.p = "{\"x\":[1,2]}";
    vals[8].u.s.len = 11;
    for (int i = 0; i < 9; i++) {
        if (i) assert_int_equal(vg_buf_putc(&b, ','), 0);
        assert_int_equal(vg_json_value(&b, &vals[i]), 0);
    }
    const char *want = "true,false,31.5,\"a\\\"b\",\"2026-11-23T21:13:43.123Z\",1.5,60,null,{\"x\":[1,2]}";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.p, want, b.len);
    vg_buf_deinit(&b);
}

static void test_buffers(void **state) {
    (void)state;
    vg_buf_t b;
    vg_buf_init(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    for (int i = 0; i < 10000; i++) assert_int_equal(vg_buf_putc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 10000);
    assert_true(b.cap >= 10000);
    assert_int_equal(b.p[9999], 'a' + 9999 % 26);
    size_t cap = b.cap;
    char *p = b.p;
    vg_buf_clear(&b);
    assert_int_equal(vg_buf_puts(&b, "hello"), 0);
    assert_int_equal(vg_buf_append(&b, " world", 6), 0);
    assert_int_equal(vg_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 11);
    assert_memory_equal(b.p, "hello world", 11);
    assert_true(b.cap == cap && b.p == p); /* reused, not reallocated */
    assert_int_equal(vg_buf_reserve(&b, SIZE_MAX), VG_ENOMEM);
    assert_int_equal(b.len, 11);
    vg_buf_deinit(&b);
    vg_buf_deinit(&b); /* deinit twice is harmless */
}

/* rules/digits.h against snprintf: every digit count and sign boundary, the extremes,
 * and random values of every length. */
static void test_integer_digits(void **state) {
    (void)state;
    int64_t v[64];
    int n = 0;
    v[n++] = 0;
    v[n++] = INT64_MIN;
    v[n++] = INT64_MAX;
    for (int64_t p = 1; n < 60; p *= 10) {
        v[n++] = p;
        v[n++] = p - 1;
        v[n++] = -p;
        if (p > INT64_MAX / 10) break;
    }
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000 + n; i++) {
        int64_t a;
        if (i < n) {
            a = v[i];
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a = (int64_t)(x >> (x % 64));
            if (x & 1) a = -a;
        }
        char want[32], got[32];
        int wl = snprintf(want, sizeof want, "%lld", (long long)a);
        size_t gl = vg_fmt_i64(a, got);
        assert_int_equal(gl, (size_t)wl);
        assert_memory_equal(got, want, gl);
        uint64_t u = (uint64_t)a;
        wl = snprintf(want, sizeof want, "%llu", (unsigned long long)u);
        assert_int_equal(vg_ndigits(u), wl);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_shortest),
        cmocka_unit_test(test_numbers_round_trip_random),
        cmocka_unit_test(test_numbers_fast_path_matches_general),
        cmocka_unit_test(test_string_escaping),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_buffers),
        cmocka_unit_test(test_integer_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
