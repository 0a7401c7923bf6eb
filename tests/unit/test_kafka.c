/* test_kafka.c - unit tests of the Kafka helpers (engine/kafka.h): the partitioners
 * against librdkafka's own (the keying `replay --partitions` must reproduce), the alert
 * id, and the `ts` peek used by the `future` check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "engine/kafka.h"
#include "rules/errors.h"

static uint64_t rnd(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Kafka's Java client: Utils.murmur2("21") == -973932308, so toPositive() % n. */
static void test_murmur2_java_vector(void **st) {
    (void)st;
    uint32_t h = (uint32_t)-973932308 & 0x7fffffff;
    for (int32_t n = 1; n <= 64; n++)
        assert_int_equal(vg_kafka_partition("21", 2, n, 0), (int32_t)(h % (uint32_t)n));
}

/* Equal to librdkafka's murmur2 and consistent (CRC32) partitioners on random keys of
 * every length 0..64 (all tail cases) and partition counts 1..100. */
static void test_partitioners_match_librdkafka(void **st) {
    (void)st;
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    unsigned char key[64];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rnd(&s) % (sizeof(key) + 1));
        for (size_t i = 0; i < len; i++) key[i] = (unsigned char)rnd(&s);
        int32_t n = (int32_t)(rnd(&s) % 100) + 1;
        int32_t want_m = rd_kafka_msg_partitioner_murmur2(NULL, key, len, n, NULL, NULL);
        int32_t want_c = rd_kafka_msg_partitioner_consistent(NULL, key, len, n, NULL, NULL);
        assert_int_equal(vg_kafka_partition(key, len, n, 0), want_m);
        assert_int_equal(vg_kafka_partition(key, len, n, 1), want_c);
    }
    /* the account keys of the tests */
    const char *acct[] = {"acct-0001", "acct-0125", "c-17", "x", ""};
    for (size_t i = 0; i < sizeof(acct) / sizeof(acct[0]); i++)
        assert_int_equal(vg_kafka_partition(acct[i], strlen(acct[i]), 16, 0),
                         rd_kafka_msg_partitioner_murmur2(NULL, acct[i], strlen(acct[i]), 16,
                                                          NULL, NULL));
}

static void test_alert_id(void **st) {
    (void)st;
    char a[33], b[33], c[33];
    vg_kafka_alert_id("acct-1", 6, "tx-1", 4, 7, a);
    vg_kafka_alert_id("acct-1", 6, "tx-1", 4, 7, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 32);
    for (int i = 0; i < 32; i++)
        assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
    vg_kafka_alert_id("acct-1", 6, "tx-1", 4, 8, c);   /* another ruleset version */
    assert_string_not_equal(a, c);
    vg_kafka_alert_id("acct-1", 6, "tx-2", 4, 7, c);   /* another event */
    assert_string_not_equal(a, c);
    /* the fields are delimited: ("ab","c") is not ("a","bc") */
    vg_kafka_alert_id("ab", 2, "c", 1, 1, b);
    vg_kafka_alert_id("a", 1, "bc", 2, 1, c);
    assert_string_not_equal(b, c);
}

static void test_peek_ts(void **st) {
    (void)st;
    int64_t ms = 0;
    const char *s1 = "{\"id\":\"a\",\"ts\":\"2026-11-01T00:00:01.500Z\",\"amount\":1}";
    assert_int_equal(vg_kafka_peek_ts(s1, strlen(s1), &ms), 0);
    assert_int_equal(ms, INT64_C(1793491201500));
    const char *s2 = " { \"nested\" : {\"ts\": 5}, \"ts\" : 1700000000000 }";
    assert_int_equal(vg_kafka_peek_ts(s2, strlen(s2), &ms), 0);
    assert_int_equal(ms, INT64_C(1700000000000));
    const char *bad[] = {"", "[1]", "{\"id\":\"a\"}", "{\"ts\":\"yesterday\"}", "{\"ts\":true}",
                         "{\"t\\u0073\":1}", "{\"ts\":\"2026-11-01T00:00:01Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(vg_kafka_peek_ts(bad[i], strlen(bad[i]), &ms), VG_ENOTFOUND);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_java_vector),
        cmocka_unit_test(test_partitioners_match_librdkafka),
        cmocka_unit_test(test_alert_id),
        cmocka_unit_test(test_peek_ts),
    };
    return cmocka_run_group_tests_name("kafka", tests, NULL, NULL);
}
