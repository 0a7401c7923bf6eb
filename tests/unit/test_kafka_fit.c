/* test_kafka_fit.c - records larger than their topic takes (engine/kafka_util.c,
 * vg_kafka_fit_record; engine/kafka.c, produce and dr_cb).
 *
 * A decision can be far larger than an event (features that copy a long field, rule
 * messages that quote it), and a Kafka message far larger than the 64 KiB event limit.
 * Producing such an alert or dead letter failed for good: at every restart the same
 * record failed again (a poison pill that stopped the partition). Now the record is cut
 * to fit and says what was left out. Checked here: the cutting itself on hand-made
 * records, and the service against librdkafka's mock cluster in this process with a
 * producer limit (cut before producing) and with the broker refusing a record as too
 * large (cut when the rewind produces it again).
 */
#define _GNU_SOURCE   /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "engine/kafka.h"
#include "engine/kafka_int.h"
#include "engine/store.h"
#include "rules/errors.h"
#include "rules/program.h"
#include "tests/unit/kafka_service.h"

/* ---- vg_kafka_fit_record ---- */

static char *repeat(char c, size_t n) {
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* A decision as vigil writes it, with a long feature and rule message. */
static char *decision(size_t big) {
    char *x = repeat('x', big);
    size_t cap = 3 * big + 1024;
    char *d = malloc(cap);
    assert_non_null(d);
    snprintf(d, cap,
             "{\"id\":\"e1\",\"account\":\"a{,}\\\"1\",\"ts\":\"2026-03-01T10:00:00.000Z\","
             "\"decision\":\"alert\",\"score\":90,\"rules\":[{\"rule\":\"huge\",\"module\":\"m\","
             "\"version\":1,\"action\":\"alert\",\"severity\":\"high\",\"score\":90,"
             "\"message\":\"note %s\",\"values\":{\"tx.amount\":5000.25}}],\"shadow\":[{\"rule\":"
             "\"s1\",\"module\":\"m\",\"version\":1,\"action\":\"review\",\"severity\":\"low\","
             "\"score\":1,\"message\":\"%s\",\"values\":{}}],\"features\":{\"n\":\"%s\",\"q\":0.1},"
             "\"anomaly\":{\"score\":0.25},\"ruleset\":7,\"alert_id\":\"abc\",\"severity\":\"high\"}",
             x, x, x);
    free(x);
    return d;
}

static json_t *parse(const vg_buf_t *b) {
    json_error_t je;
    json_t *j = json_loadb(b->p, b->len, 0, &je);
    if (!j) fail_msg("not JSON: %s: %.*s", je.text, (int)(b->len > 300 ? 300 : b->len), b->p);
    return j;
}

static void test_fit_stages(void **st) {
    (void)st;
    vg_buf_t out;
    vg_buf_init(&out);
    char *d = decision(3000);
    size_t n = strlen(d);
    /* stage 1: features and anomaly left out; every other member byte for byte */
    assert_int_equal(vg_kafka_fit_record(d, n, 7000, &out), 0);
    assert_true(out.len <= 7000);
    json_t *j = parse(&out);
    assert_null(json_object_get(j, "features"));
    assert_null(json_object_get(j, "anomaly"));
    assert_string_equal(json_string_value(json_object_get(j, "account")), "a{,}\"1");
    assert_int_equal(json_integer_value(json_object_get(j, "ruleset")), 7);
    assert_string_equal(json_string_value(json_object_get(j, "alert_id")), "abc");
    json_t *t = json_object_get(j, "truncated");
    assert_int_equal(json_integer_value(json_object_get(t, "bytes")), (json_int_t)n);
    assert_int_equal(json_integer_value(json_object_get(t, "limit")), 7000);
    assert_int_equal(json_array_size(json_object_get(t, "left_out")), 2);
    const char *rules = strstr(d, "\"rules\":");
    const char *shadow_end = strstr(d, ",\"features\"");
    assert_non_null(memmem(out.p, out.len, rules, (size_t)(shadow_end - rules)));
    assert_non_null(memmem(out.p, out.len, "5000.25", 7));   /* numbers keep their text */
    json_decref(j);
    /* stage 2: rules reduced, messages cut to 256 bytes, values left out */
    assert_int_equal(vg_kafka_fit_record(d, n, 1500, &out), 0);
    assert_true(out.len <= 1500);
    j = parse(&out);
    json_t *r0 = json_array_get(json_object_get(j, "rules"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "rule")), "huge");
    assert_string_equal(json_string_value(json_object_get(r0, "severity")), "high");
    assert_int_equal(json_string_length(json_object_get(r0, "message")), 256);
    assert_null(json_object_get(r0, "values"));
    json_t *s0 = json_array_get(json_object_get(j, "shadow"), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "rule")), "s1");
    assert_null(json_object_get(s0, "message"));
    t = json_object_get(j, "truncated");
    assert_int_equal(json_array_size(json_object_get(t, "left_out")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(t, "left_out"), 2)),
                        "rules.values");
    json_decref(j);
    /* stage 3: only the identifying members */
    assert_int_equal(vg_kafka_fit_record(d, n, 400, &out), 0);
    assert_true(out.len <= 400);
    j = parse(&out);
    assert_int_equal(json_object_size(j), 9);   /* 8 kept + truncated */
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "alert");
    assert_string_equal(json_string_value(json_object_get(j, "severity")), "high");
    assert_int_equal(json_integer_value(json_object_get(j, "score")), 90);
    json_decref(j);
    /* nothing fits: -1 */
    assert_int_equal(vg_kafka_fit_record(d, n, 100, &out), -1);
    /* not an object */
    assert_int_equal(vg_kafka_fit_record("[1,2]", 5, 100, &out), -1);
    assert_int_equal(vg_kafka_fit_record("{\"a\":1", 6, 100, &out), -1);
    free(d);
    vg_buf_deinit(&out);
}

/* ---- the service against the mock cluster ---- */

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void produce(const char *bootstrap, const char *const *vals, int n) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(c, "message.max.bytes", "2000000", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    assert_non_null(p);
    for (int i = 0; i < n; i++)
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC("transactions"),
                                           RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE((void *)vals[i], strlen(vals[i])),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* A consumer of the mock cluster at bootstrap in `group` that reports partition ends
 * and takes records up to 2 MB. */
static rd_kafka_t *reader(const char *bootstrap, const char *group) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(c, "group.id", group, err, sizeof(err));
    rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(c, "fetch.message.max.bytes", "2000000", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    assert_non_null(rk);
    return rk;
}

/* Reads every record of partition 0 of `topic` into recs (at most max); their count. */
static int read_all(const char *bootstrap, const char *topic, char **recs, int max) {
    rd_kafka_t *rk = reader(bootstrap, "fit-reader");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    int n = 0;
    for (int tries = 0; tries < 200; tries++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(m);
            break;
        }
        if (!m->err && n < max) recs[n++] = strndup(m->payload, m->len);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* Compiles `src` and starts the service (one thread) on the mock cluster at bs; the
 * program is returned in *prog (the caller unrefs it after vg_kafka_free). */
static vg_kafka_t *start_service(const char *bs, const char *src, const char *const *conf,
                                 const char *group, const char *changelog, const char *dir,
                                 vg_program_t **prog) {
    char err[512];
    vg_source_t s = {"t.vrl", src, strlen(src)};
    vg_diags_t d;
    vg_diags_init(&d);
    *prog = vg_prog_compile(&s, 1, &d);
    vg_diags_deinit(&d);
    assert_non_null(*prog);
    vg_kafka_opts_t o;
    vg_kafka_opts_default(&o);
    o.brokers = bs;
    o.group = group;
    o.topic_changelog = changelog;
    o.state_dir = dir;
    o.prog = *prog;
    o.threads = 1;
    o.conf = conf;
    o.quiet = 1;
    o.future_ms = -1;
    vg_kafka_t *k = vg_kafka_new(&o, err, sizeof(err));
    assert_non_null(k);
    assert_int_equal(vg_kafka_start(k, err, sizeof(err)), 0);
    return k;
}

/* Runs the service over: a small event, an event whose alert is ~3x its 40 KB note (an
 * array of strings: a decision writes JSON values whole, while it cuts a string to
 * 1,024 bytes), a 300 KB message that is not an event, a last small event. `conf`:
 * extra client settings; `refuse`: the broker refuses the first record vigil produces
 * as too large. */
static void run(const char *const *conf, int refuse) {
    const char *topics[] = {"transactions:1", "alerts:1", "transactions.dlq:1", NULL};
    vg_kafka_mock_t *mock = start_mock(topics);
    const char *bs = vg_kafka_mock_bootstrap(mock);
    char *piece = repeat('n', 990), *junk = repeat('j', 300000);
    char *note = malloc(40 * 993 + 3);
    assert_non_null(note);
    size_t nl = 0;
    note[nl++] = '[';
    for (int i = 0; i < 40; i++)
        nl += (size_t)sprintf(note + nl, "%s\"%s\"", i ? "," : "", piece);
    note[nl++] = ']';
    note[nl] = 0;
    free(piece);
    char *big = malloc(40 * 993 + 200);
    assert_non_null(big);
    snprintf(big, 40 * 993 + 200, "{\"id\":\"big\",\"account\":\"a\",\"ts\":"
                                  "\"2026-03-01T10:00:01Z\",\"amount\":5000,\"note\":%s}", note);
    const char *vals[] = {
        "{\"id\":\"e1\",\"account\":\"a\",\"ts\":\"2026-03-01T10:00:00Z\",\"amount\":1}", big,
        junk, "{\"id\":\"e2\",\"account\":\"a\",\"ts\":\"2026-03-01T10:00:02Z\",\"amount\":2}"};
    /* with a refusal, only the alert is produced (no dead letter): it is the record refused */
    const char *only[] = {vals[0], vals[1], vals[3]};
    if (refuse) produce(bs, only, 3);
    else produce(bs, vals, 4);
    if (refuse) vg_kafka_mock_produce_errors(mock, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);

    char dir[] = "/tmp/vigil-test-kfit.XXXXXX";
    assert_non_null(mkdtemp(dir));
    vg_program_t *prog;
    vg_kafka_t *k = start_service(bs,
                                  "feature n1 = tx.note\nfeature n2 = tx.note\n"
                                  "feature n3 = tx.note\n"
                                  "rule huge\n  severity high\n  action alert\n  score 90\n"
                                  "  when tx.amount > 1000\n  message \"note {tx.note}\"\nend\n",
                                  conf, "kfit", NULL, dir, &prog);
    vg_kafka_stats_t st;
    for (int i = 0; i < 600; i++) {
        vg_kafka_get_stats(k, &st);
        /* with a refusal: until the rewind has produced the refused record again, cut */
        if ((st.messages >= (uint64_t)(refuse ? 3 : 4) && st.alerts >= 1 &&
             st.dead_letters >= (uint64_t)(refuse ? 0 : 1) &&
             st.truncated >= (uint64_t)(refuse ? 1 : 2)) ||
            vg_kafka_failed(k))
            break;
        sleep_ms(100);
    }
    assert_false(vg_kafka_failed(k));
    vg_kafka_stop(k);
    assert_int_equal(vg_kafka_wait(k), 0);
    vg_kafka_get_stats(k, &st);
    /* a rewind decides the events after the checkpoint again (same decisions) */
    assert_true(refuse ? st.decided > 3 : st.decided == 3);   /* rewound: decided again */
    assert_int_equal(st.rejected, refuse ? 0 : 1);
    assert_true(st.truncated >= (uint64_t)(refuse ? 1 : 2));

    char *recs[8];
    int na = read_all(bs, "alerts", recs, 8);
    assert_true(na >= 1);   /* at least once (a rewind may repeat it, same alert_id) */
    for (int i = 0; i < na; i++) {
        json_t *j = json_loads(recs[i], 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "id")), "big");
        assert_string_equal(json_string_value(json_object_get(j, "severity")), "high");
        json_t *t = json_object_get(j, "truncated");
        assert_non_null(t);
        assert_true(json_integer_value(json_object_get(t, "bytes")) > 120000);
        assert_null(json_object_get(j, "features"));
        json_decref(j);
        free(recs[i]);
    }
    int nd = read_all(bs, "transactions.dlq", recs, 8);
    assert_int_equal(nd, refuse ? 0 : 1);
    for (int i = 0; i < nd; i++) {
        json_t *j = json_loads(recs[i], 0, NULL);
        assert_non_null(j);
        assert_true(json_is_true(json_object_get(j, "original_truncated")));
        assert_int_equal(json_integer_value(json_object_get(j, "original_bytes")), 300000);
        assert_string_equal(json_string_value(json_object_get(j, "code")), "too_large");
        assert_int_equal(json_integer_value(json_object_get(j, "offset")), 2);
        json_decref(j);
        free(recs[i]);
    }
    end_service(k, prog, mock, dir);
    free(note);
    free(junk);
    free(big);
}

/* The producer takes at most 100,000 bytes: the ~120 KB alert and the 300 KB message's
 * dead letter are cut before producing (both were fatal at every restart). */
static void test_producer_limit(void **st) {
    (void)st;
    static const char *const conf[] = {"session.timeout.ms=6000",
                                       "producer.message.max.bytes=100000", NULL};
    run(conf, 0);
}

/* The broker refuses the first record vigil produces (the alert, ~120 KB, under the
 * producer's default 1 MB) as too large: the rewind produces it again, cut below that
 * size (before: rewound and refused for ever, had the broker kept refusing). */
static void test_broker_refuses(void **st) {
    (void)st;
    static const char *const conf[] = {"session.timeout.ms=6000",
                                       "producer.message.max.bytes=1000000", NULL};
    run(conf, 1);
}

/* Every key and value of a store, as one text for comparison (m/kafka/changelog, the
 * restore's own bookkeeping, left out). */
static int dump_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    vg_buf_t *b = ctx;
    if (kl == 17 && memcmp(k, "m/kafka/changelog", 17) == 0) return 0;
    char num[64];
    snprintf(num, sizeof num, "%zu:%zu:", kl, vl);
    if (vg_buf_puts(b, num) || vg_buf_append(b, k, kl) || vg_buf_append(b, v, vl)) return -1;
    return 0;
}

static void dump(const char *dir, vg_buf_t *out) {
    char err[512];
    vg_store_t *s = vg_store_open(dir, err, sizeof(err));
    assert_non_null(s);
    vg_buf_clear(out);
    assert_int_equal(vg_store_scan(s, "", 0, dump_cb, out), 0);
    vg_store_close(s);
}

/* A `by` key's state larger than a changelog record may be (here the producer takes
 * 100,000 bytes and one merchant's 6,000 events make a ~150 KB record) is produced in
 * chunks; restored from the changelog into an empty store it equals the worker's own
 * store key for key. Before: the worker stopped ("Message size too large") at every
 * restart. */
/* vg_kafka_score_async (POST /v1/score with Kafka, the connection suspended): done is
 * called exactly once per request, from the service's threads; a request whose deadline
 * passed before its thread took it is not decided (VG_ELIMIT), also through the
 * synchronous form; many requests queued at once are all answered and decided. */
typedef struct {
    atomic_int calls;
} done_t;

static void on_done(void *arg) { atomic_fetch_add(&((done_t *)arg)->calls, 1); }

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void wait_done(done_t *d, int n) {
    for (int i = 0; i < 1000 && atomic_load(&d->calls) < n; i++) sleep_ms(10);
    sleep_ms(50);   /* and no second call */
    assert_int_equal(atomic_load(&d->calls), n);
}

/* vg_kafka_account_view_async of acct (at most 3 decisions), waited for: q.rc, with the
 * view in out and the partition in *part. */
static int view_wait(vg_kafka_t *k, const char *acct, int64_t deadline_us, vg_buf_t *out,
                     int32_t *part) {
    vg_kafka_req_t q;
    vg_kafka_score_res_t res;
    done_t d = {0};
    vg_buf_clear(out);
    assert_int_equal(vg_kafka_account_view_async(k, &q, acct, strlen(acct), 3, deadline_us, out,
                                                 &res, on_done, &d), 0);
    wait_done(&d, 1);
    *part = res.partition;
    return q.rc;
}

/* vg_kafka_account_op_async (erase 1: erasure, 0: baseline reset), waited for: q.rc. */
static int op_wait_found(vg_kafka_t *k, int erase, const char *acct, int *found) {
    vg_kafka_req_t q;
    vg_kafka_score_res_t res;
    done_t d = {0};
    assert_int_equal(vg_kafka_account_op_async(k, &q, erase, acct, strlen(acct),
                                               now_us() + 5000000, &res, on_done, &d), 0);
    wait_done(&d, 1);
    if (found) *found = res.found;
    return q.rc;
}

static int op_wait(vg_kafka_t *k, int erase, const char *acct) {
    return op_wait_found(k, erase, acct, NULL);
}

static void test_score_async(void **st) {
    (void)st;
    const char *topics[] = {"transactions:1", "alerts:1", "transactions.dlq:1", NULL};
    vg_kafka_mock_t *mock = start_mock(topics);
    const char *bs = vg_kafka_mock_bootstrap(mock);
    const char *first[] = {"{\"id\":\"k1\",\"account\":\"a\",\"ts\":\"2026-03-01T10:00:00Z\","
                           "\"amount\":1}"};
    produce(bs, first, 1);
    char dir[] = "/tmp/vigil-test-kasync.XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const conf[] = {"session.timeout.ms=6000", NULL};
    vg_program_t *prog;
    vg_kafka_t *k = start_service(bs, "feature n = count(1d)\n", conf, "kasync", NULL, dir,
                                  &prog);
    vg_buf_t out;
    vg_buf_init(&out);
    vg_kafka_score_res_t res;
    char body[160];
    int rc = VG_ENOTFOUND;
    for (int i = 0; i < 300 && rc == VG_ENOTFOUND; i++) {   /* until it owns the partition */
        snprintf(body, sizeof body, "{\"id\":\"s%d\",\"account\":\"a\",\"ts\":"
                 "\"2026-03-01T10:01:00Z\",\"amount\":2}", i);
        rc = vg_kafka_score(k, "a", 1, body, strlen(body), 0, 5000, &out, &res);
        if (rc == VG_ENOTFOUND) sleep_ms(50);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(res.outcome, VG_OUT_DECIDED);

    /* in time: decided */
    vg_kafka_req_t q;
    done_t d = {0};
    snprintf(body, sizeof body, "{\"id\":\"x1\",\"account\":\"a\",\"ts\":"
             "\"2026-03-01T10:02:00Z\",\"amount\":3}");
    vg_buf_clear(&out);
    assert_int_equal(vg_kafka_score_async(k, &q, "a", 1, body, strlen(body), 0,
                                          now_us() + 5000000, &out, &res, on_done, &d), 0);
    wait_done(&d, 1);
    assert_int_equal(q.rc, 0);
    assert_int_equal(res.outcome, VG_OUT_DECIDED);
    assert_non_null(strstr(out.p, "\"id\":\"x1\""));

    /* past its deadline: not decided, by either form */
    done_t d2 = {0};
    snprintf(body, sizeof body, "{\"id\":\"x2\",\"account\":\"a\",\"ts\":"
             "\"2026-03-01T10:03:00Z\",\"amount\":4}");
    vg_buf_clear(&out);
    assert_int_equal(vg_kafka_score_async(k, &q, "a", 1, body, strlen(body), 0, now_us() - 1000,
                                          &out, &res, on_done, &d2), 0);
    wait_done(&d2, 1);
    assert_int_equal(q.rc, VG_ELIMIT);
    assert_int_equal(out.len, 0);
    assert_int_equal(vg_kafka_score(k, "a", 1, body, strlen(body), 0, -1, &out, &res), VG_ELIMIT);
    assert_int_equal(out.len, 0);

    /* many at once, each with its own request, buffers and result */
    enum { M = 200 };
    vg_kafka_req_t *qs = calloc(M, sizeof(*qs));
    vg_kafka_score_res_t *rs = calloc(M, sizeof(*rs));
    vg_buf_t *outs = calloc(M, sizeof(*outs));
    char (*bodies)[160] = calloc(M, sizeof(*bodies));
    assert_true(qs && rs && outs && bodies);
    done_t dm = {0};
    vg_kafka_stats_t before, after;
    vg_kafka_get_stats(k, &before);
    for (int i = 0; i < M; i++) {
        vg_buf_init(&outs[i]);
        snprintf(bodies[i], sizeof bodies[i], "{\"id\":\"m%d\",\"account\":\"a\",\"ts\":"
                 "\"2026-03-01T10:04:%02d.%03dZ\",\"amount\":5}", i, i / 100, i % 100);
        assert_int_equal(vg_kafka_score_async(k, &qs[i], "a", 1, bodies[i], strlen(bodies[i]), 0,
                                              now_us() + 10000000, &outs[i], &rs[i], on_done,
                                              &dm), 0);
    }
    wait_done(&dm, M);
    for (int i = 0; i < M; i++) {
        assert_int_equal(qs[i].rc, 0);
        assert_int_equal(rs[i].outcome, VG_OUT_DECIDED);
        char id[32];
        snprintf(id, sizeof id, "\"id\":\"m%d\"", i);
        assert_non_null(strstr(outs[i].p, id));
        /* decided in the order they were queued: 3 events before m0 */
        snprintf(id, sizeof id, "\"n\":%d}", 4 + i);
        assert_non_null(strstr(outs[i].p, id));
        vg_buf_deinit(&outs[i]);
    }
    vg_kafka_get_stats(k, &after);
    assert_int_equal(after.scored - before.scored, M);

    /* account views, baseline resets and erasures the same way (GET, POST reset-baseline
     * and DELETE /v1/accounts/{a} with Kafka: the HTTP thread does not wait) */
    int32_t part = -1;
    assert_int_equal(view_wait(k, "a", now_us() + 5000000, &out, &part), 0);
    assert_int_equal(part, 0);
    assert_int_equal(vg_buf_putc(&out, '\0'), 0);   /* for strstr */
    assert_non_null(strstr(out.p, "\"recent_decisions\""));
    assert_non_null(strstr(out.p, "\"id\":\"m199\""));   /* the newest first, 3 at most */
    assert_null(strstr(out.p, "\"id\":\"m196\""));
    /* no state for the account: nothing written */
    assert_int_equal(view_wait(k, "nobody", now_us() + 5000000, &out, &part), 0);
    assert_int_equal(out.len, 0);
    /* past its deadline: not asked */
    assert_int_equal(view_wait(k, "a", now_us() - 1000, &out, &part), VG_ELIMIT);
    assert_int_equal(out.len, 0);
    assert_int_equal(vg_kafka_account_view_async(k, &q, "a", 1, 3, now_us(), &out, &res, NULL,
                                                 NULL), VG_EINVAL);
    /* a baseline reset says whether the partition holds the account (the HTTP API
     * answers 404 for one it does not, as GET does) and makes none */
    int found = -1;
    assert_int_equal(op_wait_found(k, 0, "nobody", &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(view_wait(k, "nobody", now_us() + 5000000, &out, &part), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(op_wait_found(k, 0, "a", &found), 0);   /* baseline reset */
    assert_int_equal(found, 1);
    assert_int_equal(op_wait(k, 1, "a"), 0);   /* erasure */
    /* erased: the partition holds nothing for it any more */
    assert_int_equal(view_wait(k, "a", now_us() + 5000000, &out, &part), 0);
    assert_int_equal(out.len, 0);
    free(qs);
    free(rs);
    free(outs);
    free(bodies);
    vg_buf_deinit(&out);
    vg_kafka_stop(k);
    assert_int_equal(vg_kafka_wait(k), 0);
    end_service(k, prog, mock, dir);
}

static void test_changelog_chunks(void **st) {
    (void)st;
    char err[512];
    const char *topics[] = {"transactions:1", "alerts:1", "transactions.dlq:1", "kcl.changelog:1",
                            NULL};
    vg_kafka_mock_t *mock = start_mock(topics);
    const char *bs = vg_kafka_mock_bootstrap(mock);
    enum { N = 6000 };
    char **vals = calloc(N, sizeof(*vals));
    assert_non_null(vals);
    for (int i = 0; i < N; i++) {
        vals[i] = malloc(200);
        assert_non_null(vals[i]);
        snprintf(vals[i], 200, "{\"id\":\"e%d\",\"account\":\"acct-%d\",\"ts\":%lld,"
                 "\"amount\":%d.25,\"merchant\":\"BIG-MART\"}", i, i % 50,
                 1772359200000LL + i * 1000LL, i % 97);
    }
    produce(bs, (const char *const *)vals, N);
    char dir[] = "/tmp/vigil-test-kcl.XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const conf[] = {"session.timeout.ms=6000",
                                       "producer.message.max.bytes=100000", NULL};
    vg_program_t *prog;
    vg_kafka_t *k = start_service(bs, "feature m_1d = count(1d by tx.merchant)\n"
                                      "feature s_1d = sum(tx.amount, 1d by tx.merchant)\n",
                                  conf, "kcl", "kcl.changelog", dir, &prog);
    vg_kafka_stats_t kst;
    for (int i = 0; i < 600; i++) {
        vg_kafka_get_stats(k, &kst);
        if (kst.messages >= N || vg_kafka_failed(k)) break;
        sleep_ms(100);
    }
    assert_false(vg_kafka_failed(k));
    vg_kafka_stop(k);   /* a final checkpoint, to the changelog too */
    assert_int_equal(vg_kafka_wait(k), 0);
    vg_kafka_get_stats(k, &kst);
    assert_int_equal(kst.decided, N);
    assert_true(kst.changelog_chunked >= 1);
    vg_kafka_free(k);

    /* restore the changelog partition into an empty store */
    char dir2[] = "/tmp/vigil-test-kcl2.XXXXXX";
    assert_non_null(mkdtemp(dir2));
    vg_store_t *s2 = vg_store_open(dir2, err, sizeof(err));
    assert_non_null(s2);
    rd_kafka_t *rc = reader(bs, "kcl-restore");
    rd_kafka_poll_set_consumer(rc);
    atomic_int stop = 0;
    vg_buf_t redo;
    vg_buf_init(&redo);
    vg_cl_restore_t r;
    int rrc = vg_cl_restore(rc, "kcl.changelog", 0, s2, &stop, &redo, &r, err, sizeof(err));
    if (rrc) fprintf(stderr, "restore: %s\n", err);
    assert_int_equal(rrc, 0);
    assert_true(r.markers >= 1);
    assert_int_equal(r.tail, 0);
    vg_store_close(s2);
    rd_kafka_consumer_close(rc);
    rd_kafka_destroy(rc);
    vg_buf_deinit(&redo);
    char own[512];
    snprintf(own, sizeof own, "%s/kafka/transactions-0", dir);
    vg_buf_t a, b;
    vg_buf_init(&a);
    vg_buf_init(&b);
    dump(own, &a);
    dump(dir2, &b);
    assert_true(a.len > 100000);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    vg_buf_deinit(&a);
    vg_buf_deinit(&b);

    vg_prog_unref(prog);
    vg_kafka_mock_free(mock);
    for (int i = 0; i < N; i++) free(vals[i]);
    free(vals);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir, dir2);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_stages),
        cmocka_unit_test(test_producer_limit),
        cmocka_unit_test(test_broker_refuses),
        cmocka_unit_test(test_changelog_chunks),
        cmocka_unit_test(test_score_async),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
