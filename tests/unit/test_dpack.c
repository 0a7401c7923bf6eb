/* test_dpack.c - decision-line packing (engine/dpack.c): exact round trips of lines
 * like and unlike the template, long literals and matches, no template, corrupt input
 * refused, and the size of a packed typical decision line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dpack.h"
#include "rules/errors.h"

static const char *TPL =
    "{\"id\":\"tx-000001\",\"account\":\"acct-42\",\"ts\":\"2024-03-01T10:00:00.000Z\","
    "\"decision\":\"allow\",\"score\":0,\"rules\":[],\"shadow\":[],\"features\":{"
    "\"tx_count_1h\":1,\"amount_sum_24h\":12.5,\"distinct_merchants_24h\":1,"
    "\"card_count_1h\":1,\"new_device\":false,\"prev_country\":null,"
    "\"session_duration\":0},\"anomaly\":{\"score\":0.12},\"ruleset\":1}";

static void roundtrip(const vg_dpack_t *d, const char *p, size_t n, size_t *packed) {
    vg_buf_t a, b;
    vg_buf_init(&a);
    vg_buf_init(&b);
    assert_int_equal(vg_dpack_pack(d, p, n, &a), 0);
    assert_int_equal(vg_dpack_unpack(d, a.p, a.len, &b), 0);
    assert_int_equal(b.len, n);
    if (n) assert_memory_equal(b.p, p, n);
    if (packed) *packed = a.len;
    vg_buf_deinit(&a);
    vg_buf_deinit(&b);
}

static void test_typical_line_small(void **state) {
    (void)state;
    vg_dpack_t d;
    vg_dpack_init(&d);
    assert_int_equal(vg_dpack_set_template(&d, TPL, strlen(TPL)), 0);
    const char *line =
        "{\"id\":\"tx-918273\",\"account\":\"acct-7781\",\"ts\":\"2024-03-02T17:41:09.512Z\","
        "\"decision\":\"review\",\"score\":55,\"rules\":[\"velocity\"],\"shadow\":[],"
        "\"features\":{\"tx_count_1h\":7,\"amount_sum_24h\":1830.25,"
        "\"distinct_merchants_24h\":4,\"card_count_1h\":3,\"new_device\":true,"
        "\"prev_country\":\"FR\",\"session_duration\":412.5},\"anomaly\":{\"score\":0.87},"
        "\"ruleset\":1}";
    size_t packed;
    roundtrip(&d, line, strlen(line), &packed);
    print_message("typical line: %zu -> %zu bytes\n", strlen(line), packed);
    assert_true(packed * 100 < strlen(line) * 40);
    /* the template itself packs to a few bytes */
    roundtrip(&d, TPL, strlen(TPL), &packed);
    assert_true(packed < 10);
    /* a second template is ignored */
    assert_int_equal(vg_dpack_set_template(&d, "xxxx", 4), 0);
    roundtrip(&d, TPL, strlen(TPL), &packed);
    assert_true(packed < 10);
    vg_dpack_deinit(&d);
}

static void test_edges(void **state) {
    (void)state;
    vg_dpack_t d;
    vg_dpack_init(&d);
    /* no template: still exact */
    roundtrip(&d, "", 0, NULL);
    roundtrip(&d, "abc", 3, NULL);
    roundtrip(&d, TPL, strlen(TPL), NULL);
    assert_int_equal(vg_dpack_set_template(&d, TPL, strlen(TPL)), 0);
    roundtrip(&d, "", 0, NULL);
    roundtrip(&d, "{", 1, NULL);
    roundtrip(&d, "{\"id", 4, NULL);
    /* literal runs of every length around the nibble and byte boundaries */
    char buf[2000];
    for (size_t n = 0; n < 700; n++) {
        for (size_t i = 0; i < n; i++) buf[i] = (char)('A' + (i * 7 + n) % 26);
        roundtrip(&d, buf, n, NULL);
    }
    /* matches of every length, with literals between, and binary bytes */
    size_t tl = strlen(TPL);
    for (size_t m = 1; m < tl; m += 3) {
        size_t n = 0;
        buf[n++] = '\0';
        memcpy(buf + n, TPL, m);
        n += m;
        buf[n++] = (char)0xff;
        memcpy(buf + n, TPL + tl - m, m);
        n += m;
        roundtrip(&d, buf, n, NULL);
    }
    vg_dpack_deinit(&d);
}

static void test_random_lines(void **state) {
    (void)state;
    vg_dpack_t d;
    vg_dpack_init(&d);
    assert_int_equal(vg_dpack_set_template(&d, TPL, strlen(TPL)), 0);
    uint64_t x = 12345;
    char buf[1500];
    size_t tl = strlen(TPL);
    for (int k = 0; k < 3000; k++) {
        size_t n = 0;
        while (n < 1000) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            uint32_t r = (uint32_t)(x >> 33);
            if (r % 3 == 0) {   /* a piece of the template */
                size_t off = r % tl, len = (r >> 8) % 60;
                if (off + len > tl) len = tl - off;
                memcpy(buf + n, TPL + off, len);
                n += len;
            } else {
                buf[n++] = (char)(r >> 5);
            }
        }
        roundtrip(&d, buf, n, NULL);
    }
    vg_dpack_deinit(&d);
}

static void test_corrupt_refused(void **state) {
    (void)state;
    vg_dpack_t d;
    vg_dpack_init(&d);
    assert_int_equal(vg_dpack_set_template(&d, TPL, strlen(TPL)), 0);
    vg_buf_t out;
    vg_buf_init(&out);
    /* literal count past the end */
    assert_int_equal(vg_dpack_unpack(&d, "\x50" "ab", 3, &out), VG_EINVAL);
    /* match offset past the template */
    assert_int_equal(vg_dpack_unpack(&d, "\x01\xff\xff", 3, &out), VG_EINVAL);
    /* match without its offset */
    assert_int_equal(vg_dpack_unpack(&d, "\x01\x00", 2, &out), VG_EINVAL);
    /* unterminated length */
    assert_int_equal(vg_dpack_unpack(&d, "\xf0\xff", 2, &out), VG_EINVAL);
    assert_int_equal(out.len, 0);
    /* a match without a template */
    vg_dpack_t none;
    vg_dpack_init(&none);
    assert_int_equal(vg_dpack_unpack(&none, "\x01\x00\x00", 3, &out), VG_EINVAL);
    vg_buf_deinit(&out);
    vg_dpack_deinit(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typical_line_small),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random_lines),
        cmocka_unit_test(test_corrupt_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
