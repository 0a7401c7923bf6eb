/* test_kafka.c - unit tests of the Kafka helpers (engine/kafka.h): the partitioners
 * against librdkafka's own (the keying `replay --partitions` must reproduce), the alert
 * id, and the `ts` peek used by the `future` check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "engine/kafka.h"
#include "rules/errors.h"
#include "rules/program.h"

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

/* --kafka embedded (the mock broker in process) shortens the consumers' group session
 * timeout, unless the user set it: the mock delays a rebalance by the session timeout
 * less 1 s (a late processing thread waited ~44 s at librdkafka's 45 s default). */
static void test_embedded_session_timeout(void **st) {
    (void)st;
    char err[256], v[64], dir[] = "/tmp/vigil-test-kafka-conf.XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_source_t src = {"t.vrl", "feature n = count(1h)\n", 22};
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *prog = vg_prog_compile(&src, 1, &d);
    vg_diags_deinit(&d);
    assert_non_null(prog);
    const char *user[] = {"consumer.session.timeout.ms=9000", NULL};
    for (int embedded = 0; embedded <= 1; embedded++) {
        for (int with_user = 0; with_user <= 1; with_user++) {
            vg_kafka_opts_t o;
            vg_kafka_opts_default(&o);
            o.brokers = "127.0.0.1:9";
            o.state_dir = dir;
            o.prog = prog;
            o.embedded = embedded;
            o.conf = with_user ? user : NULL;
            vg_kafka_t *k = vg_kafka_new(&o, err, sizeof err);
            assert_non_null(k);
            assert_int_equal(vg_kafka_client_conf(k, 1, "session.timeout.ms", v, sizeof v), 0);
            assert_string_equal(v, with_user ? "9000" : embedded ? "6000" : "45000");
            assert_int_equal(vg_kafka_client_conf(k, 1, "heartbeat.interval.ms", v, sizeof v), 0);
            assert_string_equal(v, embedded ? "1500" : "3000");
            vg_kafka_free(k);
        }
    }
    vg_prog_unref(prog);
    rmdir(dir);
}

/* The consumers' heartbeat against the session timeout: one the user set at or above
 * it is refused (the group timed the consumers out and rebalanced every few seconds
 * with -X session.timeout.ms=3000 and librdkafka's 3 s heartbeat); one not set is a
 * third of the session timeout at most. */
static void test_heartbeat(void **st) {
    (void)st;
    char err[512], v[64], dir[] = "/tmp/vigil-test-kafka-hb.XXXXXX";
    const char *same[] = {"session.timeout.ms=3000", "heartbeat.interval.ms=3000", NULL};
    assert_int_equal(vg_kafka_conf_try(same, err, sizeof err), VG_EINVAL);
    assert_non_null(strstr(err, "heartbeat.interval.ms=3000 is not below session.timeout.ms=3000"));
    const char *deflt[] = {"consumer.heartbeat.interval.ms=45000", NULL};   /* 45 s default */
    assert_int_equal(vg_kafka_conf_try(deflt, err, sizeof err), VG_EINVAL);
    assert_non_null(strstr(err, "librdkafka's default"));
    const char *alone[] = {"session.timeout.ms=3000", NULL};
    assert_int_equal(vg_kafka_conf_try(alone, err, sizeof err), 0);
    const char *both[] = {"session.timeout.ms=3000", "heartbeat.interval.ms=300", NULL};
    assert_int_equal(vg_kafka_conf_try(both, err, sizeof err), 0);
    /* a producer-only prefix does not count for the consumers */
    const char *prod[] = {"session.timeout.ms=3000", "producer.linger.ms=3000", NULL};
    assert_int_equal(vg_kafka_conf_try(prod, err, sizeof err), 0);

    assert_non_null(mkdtemp(dir));
    vg_source_t src = {"t.vrl", "feature n = count(1h)\n", 22};
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *prog = vg_prog_compile(&src, 1, &d);
    vg_diags_deinit(&d);
    assert_non_null(prog);
    const struct {
        int embedded;
        const char *const *conf;
        const char *hb;   /* NULL: refused */
    } cases[] = {
        {0, alone, "1000"}, {1, alone, "1000"}, {0, both, "300"}, {1, both, "300"},
        {0, NULL, "3000"},  {1, NULL, "1500"},  {0, same, NULL},  {1, deflt, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vg_kafka_opts_t o;
        vg_kafka_opts_default(&o);
        o.brokers = "127.0.0.1:9";
        o.state_dir = dir;
        o.prog = prog;
        o.embedded = cases[i].embedded;
        o.conf = cases[i].conf;
        vg_kafka_t *k = vg_kafka_new(&o, err, sizeof err);
        if (!cases[i].hb) {
            assert_null(k);
            assert_non_null(strstr(err, "is not below session.timeout.ms"));
            continue;
        }
        assert_non_null(k);
        assert_int_equal(vg_kafka_client_conf(k, 1, "heartbeat.interval.ms", v, sizeof v), 0);
        assert_string_equal(v, cases[i].hb);
        vg_kafka_free(k);
    }
    vg_prog_unref(prog);
    rmdir(dir);
}

/* A prefix of the wrong kind is refused (that kind of client would ignore the property);
 * settings librdkafka checks only when it makes a client are found by making them. */
static void test_conf_kinds_and_clients(void **st) {
    (void)st;
    char err[512];
    assert_int_equal(vg_kafka_conf_check("consumer.session.timeout.ms=9000", err, sizeof err), 0);
    assert_int_equal(vg_kafka_conf_check("producer.linger.ms=20", err, sizeof err), 0);
    assert_int_equal(vg_kafka_conf_check("producer.client.rack=r1", err, sizeof err), 0);
    assert_int_equal(vg_kafka_conf_check("producer.session.timeout.ms=9000", err, sizeof err),
                     VG_EINVAL);
    assert_non_null(strstr(err, "consumer property"));
    assert_int_equal(vg_kafka_conf_check("consumer.compression.type=zstd", err, sizeof err),
                     VG_EINVAL);
    assert_non_null(strstr(err, "producer property"));
    const char *ok[] = {"compression.type=zstd", "session.timeout.ms=9000", NULL};
    assert_int_equal(vg_kafka_conf_try(ok, err, sizeof err), 0);
    assert_int_equal(vg_kafka_conf_try(NULL, err, sizeof err), 0);
    const char *ca[] = {"security.protocol=ssl", "ssl.ca.location=/nonexistent/ca.pem", NULL};
    assert_int_equal(vg_kafka_conf_try(ca, err, sizeof err), VG_EINVAL);
    assert_non_null(strstr(err, "ssl.ca.location"));
    const char *sasl[] = {"security.protocol=sasl_plaintext", "sasl.mechanism=NOPE", NULL};
    assert_int_equal(vg_kafka_conf_try(sasl, err, sizeof err), VG_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_kinds_and_clients),
        cmocka_unit_test(test_murmur2_java_vector),
        cmocka_unit_test(test_partitioners_match_librdkafka),
        cmocka_unit_test(test_alert_id),
        cmocka_unit_test(test_embedded_session_timeout),
        cmocka_unit_test(test_heartbeat),
    };
    return cmocka_run_group_tests_name("kafka", tests, NULL, NULL);
}
