/* test_kafka_start.c - where the Kafka service starts a partition that has no
 * checkpoint (engine/kafka.c, start_offset), against librdkafka's mock cluster in this
 * process: at its low watermark when the leader answers, at RD_KAFKA_OFFSET_BEGINNING
 * when it does not (here: a partition without a leader at assignment, given one
 * later). Either way every message is decided exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "engine/kafka.h"
#include "rules/errors.h"
#include "rules/program.h"
#include "tests/unit/kafka_service.h"

#define NPART 4
#define NMSG 400

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int per_part[NPART];

static void dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    assert_int_equal(m->err, 0);
    assert_true(m->partition >= 0 && m->partition < NPART);
    per_part[m->partition]++;
}

/* Produces NMSG events keyed by account; per_part[] counts them by partition. */
static void produce_events(const char *bootstrap) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(c, dr);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    assert_non_null(p);
    int64_t t0 = now_ms() - 60000;
    for (int i = 0; i < NMSG; i++) {
        char acct[32], ev[256];
        snprintf(acct, sizeof(acct), "acct-%d", i % 37);
        int n = snprintf(ev, sizeof(ev),
                         "{\"id\":\"e-%d\",\"account\":\"%s\",\"ts\":%lld,\"amount\":%d.5}", i,
                         acct, (long long)(t0 + i), i % 1000);
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("transactions"),
                                           RD_KAFKA_V_KEY(acct, strlen(acct)),
                                           RD_KAFKA_V_VALUE(ev, (size_t)n),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(p, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
    int sum = 0;
    for (int i = 0; i < NPART; i++) sum += per_part[i];
    assert_int_equal(sum, NMSG);
}

/* Waits (up to 60 s) until the service has processed at least `want` messages; returns
 * the count. */
static uint64_t wait_messages(vg_kafka_t *k, uint64_t want) {
    vg_kafka_stats_t st;
    for (int i = 0; i < 600; i++) {
        vg_kafka_get_stats(k, &st);
        if (st.messages >= want || vg_kafka_failed(k)) break;
        sleep_ms(100);
    }
    vg_kafka_get_stats(k, &st);
    return st.messages;
}

static void run(int leaderless) {
    char err[512];
    memset(per_part, 0, sizeof(per_part));
    const char *topics[] = {"transactions:4", "alerts:1", "transactions.dlq:1", NULL};
    vg_kafka_mock_t *mock = start_mock(topics);
    produce_events(vg_kafka_mock_bootstrap(mock));
    /* partition 1 has messages and, while the group assigns it, no leader */
    assert_true(per_part[1] > 0);
    if (leaderless) assert_int_equal(vg_kafka_mock_set_leader(mock, "transactions", 1, -1), 0);

    char dir[] = "/tmp/vigil-test-kstart.XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_program_t *prog = compile_rules("feature n_1h = count(1h)\n"
                                 "rule big\n  severity high\n  action review\n  score 70\n"
                                 "  when tx.amount > 900\nend\n");
    static const char *const conf[] = {"session.timeout.ms=6000", NULL};
    vg_kafka_opts_t o;
    vg_kafka_opts_default(&o);
    o.brokers = vg_kafka_mock_bootstrap(mock);
    o.group = leaderless ? "kstart-leaderless" : "kstart";
    o.state_dir = dir;
    o.prog = prog;
    o.threads = 1;
    o.conf = conf;
    o.quiet = 1;
    vg_kafka_t *k = vg_kafka_new(&o, err, sizeof(err));
    assert_non_null(k);
    assert_int_equal(vg_kafka_start(k, err, sizeof(err)), 0);

    uint64_t others = (uint64_t)(NMSG - (leaderless ? per_part[1] : 0));
    assert_int_equal(wait_messages(k, others), others);
    if (leaderless) {
        /* the other partitions are done; partition 1 has not started */
        sleep_ms(500);
        vg_kafka_stats_t st;
        vg_kafka_get_stats(k, &st);
        assert_int_equal(st.messages, others);
        assert_int_equal(vg_kafka_mock_set_leader(mock, "transactions", 1, 1), 0);
        assert_int_equal(wait_messages(k, NMSG), NMSG);
    }
    sleep_ms(300);   /* nothing more comes */
    vg_kafka_stats_t st;
    vg_kafka_get_stats(k, &st);
    assert_int_equal(st.messages, NMSG);
    assert_int_equal(st.decided, NMSG);
    assert_int_equal(st.duplicates, 0);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.gaps, 0);
    vg_kafka_stop(k);
    assert_int_equal(vg_kafka_wait(k), 0);
    end_service(k, prog, mock, dir);
}

static void test_start_at_low_watermark(void **st) {
    (void)st;
    run(0);
}

static void test_start_without_leader(void **st) {
    (void)st;
    run(1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_at_low_watermark),
        cmocka_unit_test(test_start_without_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
