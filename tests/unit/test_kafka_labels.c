/* test_kafka_labels.c - labels read from the labels topic (engine/kafka.c, handle_label)
 * wait for their input partition: against librdkafka's mock cluster in this process,
 * the input partition has no leader while the labels partition has one, so the labels
 * (produced after the transactions they name) arrive first; each must wait until the
 * partition has processed the input produced before it, then apply (applied at once,
 * they would find no transaction and be lost: fraud_count 0).
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

#define NACCT 10
#define NMSG 200
#define NLATE 100   /* transactions produced after the labels */

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Produces each value of vals (keyed by keys) to partition 0 of topic, acknowledged. */
static void produce(const char *bootstrap, const char *topic, char **keys, char **vals, int n) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    assert_non_null(p);
    for (int i = 0; i < n; i++)
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_KEY(keys[i], strlen(keys[i])),
                                           RD_KAFKA_V_VALUE(vals[i], strlen(vals[i])),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

static vg_kafka_stats_t stats(vg_kafka_t *k) {
    vg_kafka_stats_t st;
    vg_kafka_get_stats(k, &st);
    return st;
}

static void test_labels_wait_for_their_input(void **state) {
    (void)state;
    char err[512];
    const char *topics[] = {"transactions:1", "alerts:1", "transactions.dlq:1", "kl.labels:1",
                            NULL};
    vg_kafka_mock_t *mock = start_mock(topics);
    const char *bs = vg_kafka_mock_bootstrap(mock);

    /* the transactions, then one fraud label per account (its first transaction) */
    static char kbuf[NMSG][32], vbuf[NMSG][256];
    char *keys[NMSG], *vals[NMSG];
    int64_t t0 = now_ms() - 60000;
    for (int i = 0; i < NMSG; i++) {
        snprintf(kbuf[i], sizeof kbuf[i], "acct-%d", i % NACCT);
        snprintf(vbuf[i], sizeof vbuf[i],
                 "{\"id\":\"e-%d\",\"account\":\"%s\",\"ts\":%lld,\"amount\":%d}", i, kbuf[i],
                 (long long)(t0 + i), 10 + i);
        keys[i] = kbuf[i];
        vals[i] = vbuf[i];
    }
    produce(bs, "transactions", keys, vals, NMSG);
    sleep_ms(20);   /* the labels' timestamps after every transaction's */
    for (int a = 0; a < NACCT; a++) {
        snprintf(vbuf[a], sizeof vbuf[a], "{\"id\":\"e-%d\",\"account\":\"%s\",\"fraud\":true}",
                 a, kbuf[a]);
    }
    produce(bs, "kl.labels", keys, vals, NACCT);
    /* then more transactions of every account: read from the backlog after the labels
     * are, each must see its account's label (applied before the first of them, not
     * once the labels partition is read again after the backlog) */
    sleep_ms(20);
    for (int i = 0; i < NLATE; i++) {
        snprintf(kbuf[i], sizeof kbuf[i], "acct-%d", i % NACCT);
        snprintf(vbuf[i], sizeof vbuf[i],
                 "{\"id\":\"late-%d\",\"account\":\"%s\",\"ts\":%lld,\"amount\":%d}", i,
                 kbuf[i], (long long)(t0 + NMSG + 100 + i), 10 + i);
    }
    produce(bs, "transactions", keys, vals, NLATE);
    /* the input partition has no leader: nothing of it can be read yet */
    assert_int_equal(vg_kafka_mock_set_leader(mock, "transactions", 0, -1), 0);

    char dir[] = "/tmp/vigil-test-klabels.XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_program_t *prog = compile_rules("feature fc = fraud_count(30d)\n"
                                       "rule known action alert score 50 when fc >= 1 end\n");
    static const char *const conf[] = {"session.timeout.ms=6000", NULL};
    vg_kafka_opts_t o;
    vg_kafka_opts_default(&o);
    o.brokers = bs;
    o.group = "kl";
    o.topic_labels = "kl.labels";
    o.state_dir = dir;
    o.prog = prog;
    o.threads = 1;
    o.conf = conf;
    o.quiet = 1;
    o.future_ms = -1;
    vg_kafka_t *k = vg_kafka_new(&o, err, sizeof(err));
    assert_non_null(k);
    assert_int_equal(vg_kafka_start(k, err, sizeof(err)), 0);
    assert_string_equal(vg_kafka_topic_labels(k), "kl.labels");

    /* the labels arrive and wait: none applied while no transaction was read */
    vg_kafka_stats_t st;
    for (int i = 0; i < 300 && stats(k).labels_waits == 0; i++) sleep_ms(100);
    sleep_ms(500);
    st = stats(k);
    assert_true(st.labels_waits >= 1);
    assert_int_equal(st.labels, 0);
    assert_int_equal(st.messages, 0);

    /* the leader is back: the transactions, then the labels */
    assert_int_equal(vg_kafka_mock_set_leader(mock, "transactions", 0, 1), 0);
    for (int i = 0; i < 600; i++) {
        st = stats(k);
        if ((st.messages == NMSG + NLATE && st.labels == NACCT && st.alerts == NLATE) ||
            vg_kafka_failed(k))
            break;
        sleep_ms(100);
    }
    assert_int_equal(st.messages, NMSG + NLATE);
    assert_int_equal(st.labels, NACCT);
    assert_int_equal(st.alerts, NLATE);   /* every later transaction saw its label */

    /* every account's next event counts its label */
    for (int a = 0; a < NACCT; a++) {
        char ev[256];
        int n = snprintf(ev, sizeof ev,
                         "{\"id\":\"probe-%d\",\"account\":\"acct-%d\",\"ts\":%lld,\"amount\":1}",
                         a, a, (long long)(t0 + NMSG + a));
        vg_buf_t out;
        vg_buf_init(&out);
        vg_kafka_score_res_t res;
        int rc = VG_ELIMIT;
        for (int tries = 0; tries < 100 && (rc == VG_ELIMIT || rc == VG_ENOTFOUND); tries++) {
            vg_buf_clear(&out);
            rc = vg_kafka_score(k, kbuf[a], strlen(kbuf[a]), ev, (size_t)n, 0, 5000, &out, &res);
            if (rc) sleep_ms(50);
        }
        assert_int_equal(rc, 0);
        assert_int_equal(vg_buf_putc(&out, 0), 0);
        if (!strstr(out.p, "\"fc\":1")) fail_msg("acct-%d: %s", a, out.p);
        vg_buf_deinit(&out);
    }
    vg_kafka_stop(k);
    assert_int_equal(vg_kafka_wait(k), 0);
    end_service(k, prog, mock, dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_wait_for_their_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
