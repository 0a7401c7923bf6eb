/* bench_kafka.c - end-to-end throughput and event-to-alert latency of the Kafka service,
 * next to raw librdkafka produce and consume rates measured in the same run.
 *
 *   bench_kafka [--events N] [--partitions P] [--threads T] [--rules FILE]
 *               [--brokers B] [--rate R] [--latency-events N] [--checkpoint-ms MS]
 *               [--changelog] [--conf NAME=VALUE]... [--client-conf NAME=VALUE]...
 *               [--accounts N] [--alert-partitions P] [--input-hop]
 *
 * --conf passes a librdkafka setting to vigil's clients (as serve's `--kafka-conf`
 * would); --client-conf one to the benchmark's own load producer and readers, after
 * their defaults (linger.ms 5, fetch.wait.max.ms 2). --accounts: distinct accounts of
 * the generated events (default 20,000); --alert-partitions: the alerts topic's (default
 * P); --input-hop: step 4 reads the input topic instead of the alerts (the first hop's
 * latency alone). The state directory is made under $TMPDIR (default /tmp).
 * BENCH_KAFKA_TIMELINE=1 prints step 3's messages per 100 ms and step 4's worst latency
 * per 100 ms; BENCH_KAFKA_VERBOSE=1 vigil's log (partition assignments, revocations).
 * Steps 3 and 4 end with their CPU split by kind of thread (/proc/self/task).
 *
 * With no --brokers, librdkafka's mock cluster runs in this process (the broker, the
 * load and vigil then share the machine). Steps:
 *   1. raw produce: N events (key = account, lz4, acks=all) -> events/s
 *   2. raw consume: a plain consumer reads them all -> events/s
 *   3. vigil end to end: the service consumes the N events, decides, produces alerts
 *      (topic alerts), acknowledged and checkpointed -> events/s
 *   4. latency: events paced at R/s (default half of step 3's rate), each alert read
 *      back by a consumer; latency = alert read - event sent (microseconds) -> p50, p99,
 *      p99.9; and its two halves, split at the alert's Kafka timestamp (vigil's producer
 *      sets it when it produces the alert; milliseconds).
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/cli.h"
#include "engine/kafka.h"

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t real_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* CPU time of the whole process (every thread: vigil, librdkafka, the mock broker) in
 * microseconds: less sensitive than wall time to other load on a shared machine. */
static int64_t cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static long n_accounts = 20000;

/* CPU time per kind of thread, from /proc/self/task/<tid>/stat (utime + stime, in clock
 * ticks): vigil's processing threads, its checkpoint writers, librdkafka's threads (every
 * client's: load producer, vigil's consumers and producers, the reader), the mock broker,
 * the bench's main thread (load producer and reader), RocksDB's background threads, the
 * rest. Threads that ended in between are not counted. */
enum { TK_PROC, TK_CKPT, TK_RDK, TK_MOCK, TK_MAIN, TK_ROCKS, TK_OTHER, TK_N };
static const char *const TK_NAME[TK_N] = {"vigil processing", "checkpoint writes",
                                          "librdkafka clients", "mock broker",
                                          "load + reader (main)", "RocksDB background",
                                          "other"};

static void thread_cpu(double out[TK_N]) {
    for (int i = 0; i < TK_N; i++) out[i] = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return;
    struct dirent *e;
    pid_t self = getpid();
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300], line[1024];
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        line[n] = 0;
        char *lp = strchr(line, '('), *rp = strrchr(line, ')');
        if (!lp || !rp) continue;
        char comm[64];
        size_t cl = (size_t)(rp - lp - 1) < sizeof(comm) - 1 ? (size_t)(rp - lp - 1) : sizeof(comm) - 1;
        memcpy(comm, lp + 1, cl);
        comm[cl] = 0;
        /* after ") ": state (field 3) ... utime is field 14, stime 15 */
        unsigned long ut = 0, st = 0;
        if (sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
            continue;
        int k = TK_OTHER;
        if (atol(e->d_name) == (long)self) k = TK_MAIN;
        else if (!strncmp(comm, "vigil-kafka", 11)) k = TK_PROC;
        else if (!strncmp(comm, "vigil-ckpt", 10)) k = TK_CKPT;
        else if (!strncmp(comm, "rdk:mock", 8)) k = TK_MOCK;
        else if (!strncmp(comm, "rdk:", 4)) k = TK_RDK;
        else if (!strncmp(comm, "rocksdb", 7)) k = TK_ROCKS;
        out[k] += (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    closedir(d);
}

static const char *RULES =
    "feature n_1h = count(1h)\n"
    "feature spend_1h = sum(tx.amount, 1h)\n"
    "feature avg_1d = avg(tx.amount, 1d)\n"
    "feature merch_1h = distinct(tx.merchant, 1h)\n"
    "rule big\n  severity high\n  action review\n  score 70\n"
    "  when tx.amount > 900\nend\n";

static int make_event(char *buf, size_t cap, const char *prefix, long i, int64_t ts_ms,
                      char *acct, size_t acap) {
    snprintf(acct, acap, "acct-%ld", (i * 7919) % n_accounts);
    double amount = (double)((i * 37) % 1000) + 0.5;   /* 1 in 10 over 900: an alert */
    return snprintf(buf, cap,
                    "{\"id\":\"%s-%ld\",\"account\":\"%s\",\"ts\":%" PRId64 ",\"amount\":%.2f,"
                    "\"currency\":\"USD\",\"merchant\":\"m-%ld\",\"country\":\"US\","
                    "\"channel\":\"ecom\",\"device\":\"d-%ld\"}",
                    prefix, i, acct, ts_ms, amount, i % 300, i % 5000);
}

#define MAX_CONF 32
static const char *client_conf[MAX_CONF + 1];
static int nclient_conf;

static rd_kafka_t *client(rd_kafka_type_t type, const char *brokers, const char *group) {
    char e[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", brokers, e, sizeof(e));
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(c, "compression.codec", "lz4", e, sizeof(e));
        rd_kafka_conf_set(c, "acks", "all", e, sizeof(e));
        rd_kafka_conf_set(c, "linger.ms", "5", e, sizeof(e));
        rd_kafka_conf_set(c, "partitioner", "murmur2_random", e, sizeof(e));
    } else {
        rd_kafka_conf_set(c, "group.id", group, e, sizeof(e));
        rd_kafka_conf_set(c, "auto.offset.reset", "earliest", e, sizeof(e));
        rd_kafka_conf_set(c, "enable.auto.commit", "false", e, sizeof(e));
        /* as vigil's: the mock broker holds an empty fetch for all of it */
        rd_kafka_conf_set(c, "fetch.wait.max.ms", "2", e, sizeof(e));
    }
    for (int i = 0; i < nclient_conf; i++) {
        char name[256];
        const char *eq = strchr(client_conf[i], '=');
        size_t n = (size_t)(eq - client_conf[i]);
        if (n >= sizeof(name)) n = sizeof(name) - 1;
        memcpy(name, client_conf[i], n);
        name[n] = 0;
        /* producer-only or consumer-only names are refused by the other kind: skipped */
        rd_kafka_conf_set(c, name, eq + 1, e, sizeof(e));
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, e, sizeof(e));   /* takes c on success */
    if (!rk) {
        fprintf(stderr, "bench_kafka: %s\n", e);
        exit(1);
    }
    if (type == RD_KAFKA_CONSUMER) rd_kafka_poll_set_consumer(rk);
    return rk;
}

static void produce_one_n(rd_kafka_t *p, const char *topic, const char *v, size_t n,
                          const char *key, size_t kl) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, kl),
            RD_KAFKA_V_VALUE((void *)v, n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (!e) return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "bench_kafka: produce: %s\n", rd_kafka_err2str(e));
            exit(1);
        }
        rd_kafka_poll(p, 1);
    }
}

static void produce_one(rd_kafka_t *p, const char *topic, const char *v, size_t n,
                        const char *key) {
    produce_one_n(p, topic, v, n, key, strlen(key));
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    long events = 400000, lat_events = 300000;
    int partitions = 8, threads = 2, alert_partitions = 0, input_hop = 0;
    double rate = 0;
    long ckpt_ms = 1000;
    const char *brokers = NULL, *rules_file = NULL;
    int changelog = 0;
    static const char *vconf[MAX_CONF + 3] = {"session.timeout.ms=6000",
                                              "heartbeat.interval.ms=500"};
    int nvconf = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) events = atol(argv[++i]);
        else if (!strcmp(argv[i], "--partitions") && i + 1 < argc) partitions = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--accounts") && i + 1 < argc) n_accounts = atol(argv[++i]);
        else if (!strcmp(argv[i], "--input-hop")) input_hop = 1;
        else if (!strcmp(argv[i], "--alert-partitions") && i + 1 < argc)
            alert_partitions = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc) rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--brokers") && i + 1 < argc) brokers = argv[++i];
        else if (!strcmp(argv[i], "--rules") && i + 1 < argc) rules_file = argv[++i];
        else if (!strcmp(argv[i], "--latency-events") && i + 1 < argc) lat_events = atol(argv[++i]);
        else if (!strcmp(argv[i], "--checkpoint-ms") && i + 1 < argc) ckpt_ms = atol(argv[++i]);
        else if (!strcmp(argv[i], "--changelog")) changelog = 1;
        else if (!strcmp(argv[i], "--conf") && i + 1 < argc && strchr(argv[i + 1], '=') &&
                 nvconf < MAX_CONF)
            vconf[nvconf++] = argv[++i];
        else if (!strcmp(argv[i], "--client-conf") && i + 1 < argc &&
                 strchr(argv[i + 1], '=') && nclient_conf < MAX_CONF)
            client_conf[nclient_conf++] = argv[++i];
        else {
            fprintf(stderr, "usage: bench_kafka [--events N] [--partitions P] [--threads T] "
                            "[--rules FILE] [--brokers B] [--rate R] [--latency-events N] "
                            "[--checkpoint-ms MS] [--changelog] [--conf NAME=VALUE]... "
                            "[--client-conf NAME=VALUE]... [--accounts N] "
                            "[--alert-partitions P] [--input-hop]\n");
            return 2;
        }
    }
    char err[1024];
    vg_kafka_mock_t *mock = NULL;
    char topic_spec[4][64];
    snprintf(topic_spec[0], 64, "bench-in:%d", partitions);
    if (alert_partitions <= 0) alert_partitions = partitions;
    snprintf(topic_spec[1], 64, "bench-alerts:%d", alert_partitions);
    snprintf(topic_spec[2], 64, "bench-dlq:%d", 1);
    snprintf(topic_spec[3], 64, "bench-vigil.changelog:%d", partitions);
    const char *topics[] = {topic_spec[0], topic_spec[1], topic_spec[2],
                            changelog ? topic_spec[3] : NULL, NULL};
    if (!brokers) {
        mock = vg_kafka_mock_new(1, topics, partitions, err, sizeof(err));
        if (!mock) {
            fprintf(stderr, "bench_kafka: %s\n", err);
            return 1;
        }
        brokers = vg_kafka_mock_bootstrap(mock);
    }
    printf("bench_kafka: %ld events, %d partitions, %d vigil threads, checkpoint every %ld ms, "
           "state changelog %s, broker %s\n", events, partitions, threads, ckpt_ms,
           changelog ? "on" : "off",
           mock ? "in-process mock cluster" : brokers);

    /* 1. raw produce */
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, brokers, NULL);
    char buf[512], acct[64];
    int64_t base_ts = (int64_t)time(NULL) * 1000 - 3600 * 1000;
    int64_t t0 = now_us(), c0 = cpu_us();
    for (long i = 0; i < events; i++) {
        int n = make_event(buf, sizeof(buf), "b", i, base_ts + i / 100, acct, sizeof(acct));
        produce_one(p, "bench-in", buf, (size_t)n, acct);
        if ((i & 1023) == 0) rd_kafka_poll(p, 0);
    }
    rd_kafka_flush(p, 60000);
    double produce_s = (double)(now_us() - t0) / 1e6;
    double produce_rate = (double)events / produce_s;
    printf("raw produce:       %9.0f events/s (%.2f s; %.2f us of CPU per event)\n", produce_rate,
           produce_s, (double)(cpu_us() - c0) / (double)events);

    /* 2. raw consume */
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, brokers, "bench-raw");
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, "bench-in", RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    long got = 0;
    int64_t first = 0;
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(c);
    rd_kafka_message_t *msgs[1024];
    c0 = cpu_us();
    while (got < events) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, 1024);
        for (ssize_t i = 0; i < n; i++) {
            if (!msgs[i]->err) {
                if (!first) first = now_us();
                got++;
            }
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    double consume_s = (double)(now_us() - first) / 1e6;
    double consume_rate = (double)events / consume_s;
    printf("raw consume:       %9.0f events/s (%.2f s, from the first message; %.2f us of CPU per "
           "event)\n", consume_rate, consume_s, (double)(cpu_us() - c0) / (double)events);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);

    /* 3. vigil end to end */
    vg_source_t src = {.name = "bench.vrl", .text = RULES, .len = strlen(RULES)};
    vg_sources_t srcs = {&src, 1};
    vg_sources_t loaded = {0};
    if (rules_file) {
        char *paths[] = {(char *)rules_file};
        if (vg_sources_load(&loaded, paths, 1, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_kafka: %s\n", err);
            return 1;
        }
    }
    vg_program_t *prog = vg_cli_compile(rules_file ? &loaded : &srcs, NULL, NULL);
    if (!prog) return 1;
    /* the state directory: under $TMPDIR (default /tmp) */
    const char *tmpdir = getenv("TMPDIR");
    char state[512];
    snprintf(state, sizeof(state), "%s/bench_kafka.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(state)) return 1;
    vg_kafka_opts_t o;
    vg_kafka_opts_default(&o);
    o.brokers = brokers;
    o.group = "bench-vigil";
    if (changelog) o.topic_changelog = "bench-vigil.changelog";   /* with --brokers: exists */
    o.topic_in = "bench-in";
    o.topic_alerts = "bench-alerts";
    o.topic_dlq = "bench-dlq";
    o.state_dir = state;
    o.prog = prog;
    o.threads = threads;
    o.sync = 0;
    o.quiet = getenv("BENCH_KAFKA_VERBOSE") ? 0 : 1;   /* 1: vigil's log (assignments) */
    o.future_ms = -1;
    o.checkpoint_ms = ckpt_ms;
    /* the second thread's join rebalances the group once; a short session timeout
     * bounds the rare stall of librdkafka's mock coordinator there (seen: 45 s) */
    o.conf = vconf;
    vg_kafka_t *k = vg_kafka_new(&o, err, sizeof(err));
    if (!k || vg_kafka_start(k, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_kafka: %s\n", err);
        return 1;
    }
    vg_kafka_stats_t st;
    int64_t v0 = 0, vc0 = cpu_us();
    double e2e_cpu0[TK_N];
    thread_cpu(e2e_cpu0);
    int64_t tl_last = 0;
    uint64_t tl_msgs = 0;
    int tl = getenv("BENCH_KAFKA_TIMELINE") != NULL;
    if (tl)
        printf("timeline, end to end: in each 100 ms, messages processed/partitions owned/"
               "checkpoints so far/backpressure waits so far:\n");
    for (;;) {
        vg_kafka_get_stats(k, &st);
        if (!v0 && st.messages > 0) v0 = tl_last = now_us();
        if (tl && v0 && now_us() - tl_last >= 100000) {
            printf("%6" PRIu64 "/%u/%" PRIu64 "/%" PRIu64 " ", st.messages - tl_msgs, st.partitions,
                   st.checkpoints, st.backpressure);
            tl_msgs = st.messages;
            tl_last += 100000;
        }
        if ((long)st.messages >= events && st.alerts_acked >= st.alerts) break;
        if (vg_kafka_failed(k)) return 1;
        usleep(1000);
    }
    if (tl) printf("\n");
    double e2e_s = (double)(now_us() - v0) / 1e6;
    double e2e_rate = (double)events / e2e_s;
    printf("vigil end to end:  %9.0f events/s (%.2f s from the first message; %" PRIu64
           " alerts acknowledged; %.2f us of CPU per event)\n", e2e_rate, e2e_s, st.alerts_acked,
           (double)(cpu_us() - vc0) / (double)events);
    double raw = consume_rate < produce_rate ? consume_rate : produce_rate;
    printf("  = %.0f%% of the slower raw rate (%.0f events/s); target >= 300000 events/s and "
           ">= 50%%\n", 100.0 * e2e_rate / raw, raw);
    {
        double e2e_cpu1[TK_N];
        thread_cpu(e2e_cpu1);
        printf("  CPU in cores over the step:");
        for (int t = 0; t < TK_N; t++)
            if (e2e_cpu1[t] - e2e_cpu0[t] > 0)
                printf("%s %s %.2f", t ? "," : "", TK_NAME[t], (e2e_cpu1[t] - e2e_cpu0[t]) / e2e_s);
        printf("\n");
    }

    /* 4. latency at a paced rate */
    if (rate <= 0) rate = e2e_rate / 2;
    rd_kafka_t *ac = client(RD_KAFKA_CONSUMER, brokers, "bench-alerts-reader");
    sub = rd_kafka_topic_partition_list_new(1);
    /* --input-hop: the reader reads the input topic (every paced event) instead of the
     * alerts: the latency of the first hop alone, load producer -> broker -> a plain
     * consumer, with vigil consuming beside it */
    rd_kafka_topic_partition_list_add(sub, input_hop ? "bench-in" : "bench-alerts",
                                      RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(ac, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    /* skip the alerts of step 3 */
    uint64_t skip = input_hop ? (uint64_t)events : st.alerts_acked;
    int64_t *sent = calloc((size_t)lat_events, sizeof(int64_t));
    int64_t *lat = calloc((size_t)lat_events, sizeof(int64_t));
    /* the two halves of each latency, split at the alert's timestamp (set by vigil's
     * producer when it produced the alert, wall clock, milliseconds): event sent ->
     * alert produced (load producer, broker, vigil's fetch and processing) and alert
     * produced -> alert read (vigil's producer, broker, the reader's fetch) */
    int64_t *sent_rt = calloc((size_t)lat_events, sizeof(int64_t));
    int64_t *lat_a = calloc((size_t)lat_events, sizeof(int64_t));
    int64_t *lat_b = calloc((size_t)lat_events, sizeof(int64_t));
    long nsplit = 0;
    long nlat = 0;
    uint64_t seen = 0;
    q = rd_kafka_queue_get_consumer(ac);
    /* join the group and read the alerts of step 3 before sending */
    int64_t wait_until = now_us() + 30 * 1000000;
    while (seen < skip && now_us() < wait_until) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 100, msgs, 1024);
        for (ssize_t j = 0; j < n; j++) {
            if (!msgs[j]->err) seen++;
            rd_kafka_message_destroy(msgs[j]);
        }
    }
    /* BENCH_KAFKA_TIMELINE=1: the worst latency of each 100 ms of sending (and, in step
     * 3, the messages processed in each 100 ms) */
    int timeline = getenv("BENCH_KAFKA_TIMELINE") != NULL;
    static int64_t tl_max[1000];
    /* the paced events are formatted before the step, so that the load generator's own
     * formatting (snprintf of a double) takes no CPU from the machine while it is timed */
    size_t gen_cap = (size_t)lat_events * 256 + 1;
    char *gen = malloc(gen_cap);
    uint32_t *gen_off = malloc(((size_t)lat_events + 1) * sizeof *gen_off);
    uint8_t *gen_alen = malloc((size_t)lat_events);
    char (*gen_acct)[16] = malloc((size_t)lat_events * sizeof *gen_acct);
    if (!gen || !gen_off || !gen_alen || !gen_acct || gen_cap > UINT32_MAX) {
        fprintf(stderr, "bench_kafka: out of memory for %ld events\n", lat_events);
        return 1;
    }
    size_t gen_len = 0;
    for (long g = 0; g < lat_events; g++) {
        int n = make_event(gen + gen_len, gen_cap - gen_len, "L", g,
                           base_ts + 3600 * 1000 + g / 100, acct, sizeof(acct));
        gen_off[g] = (uint32_t)gen_len;
        gen_len += (size_t)n;
        size_t al = strlen(acct);
        if (al >= sizeof gen_acct[g]) al = sizeof gen_acct[g] - 1;
        memcpy(gen_acct[g], acct, al);
        gen_alen[g] = (uint8_t)al;
    }
    gen_off[lat_events] = (uint32_t)gen_len;
    /* one clock read per event: the wall clock (for the split at the alert's timestamp)
     * is derived from the monotonic one */
    int64_t rt_minus_mono = real_us() - now_us();
    double tcpu0[TK_N];
    thread_cpu(tcpu0);
    int64_t cpu0 = cpu_us();
    int64_t start = now_us();
    long i = 0;
    int64_t deadline = 0;
    while (i < lat_events || (nlat < (long)(lat_events / 10) && now_us() < deadline)) {
        int64_t t = now_us();
        long due = (long)((double)(t - start) * rate / 1e6);
        if (due > lat_events) due = lat_events;
        for (; i < due; i++) {
            sent[i] = now_us();
            sent_rt[i] = sent[i] + rt_minus_mono;
            produce_one_n(p, "bench-in", gen + gen_off[i], gen_off[i + 1] - gen_off[i],
                          gen_acct[i], gen_alen[i]);
        }
        rd_kafka_poll(p, 0);
        if (i >= lat_events && !deadline) deadline = now_us() + 10 * 1000000;
        ssize_t n = rd_kafka_consume_batch_queue(q, 0, msgs, 1024);
        for (ssize_t j = 0; j < n; j++) {
            rd_kafka_message_t *m = msgs[j];
            if (!m->err && ++seen > skip && m->len > 12) {
                const char *s = m->payload;
                if (!memcmp(s, "{\"id\":\"L-", 9)) {
                    long idx = atol(s + 9);
                    if (idx >= 0 && idx < lat_events && nlat < lat_events) {
                        lat[nlat++] = now_us() - sent[idx];
                        rd_kafka_timestamp_type_t tt;
                        int64_t ats = rd_kafka_message_timestamp(m, &tt);
                        if (ats > 0 && tt == RD_KAFKA_TIMESTAMP_CREATE_TIME) {
                            int64_t r = real_us();
                            lat_a[nsplit] = ats * 1000 - sent_rt[idx];
                            lat_b[nsplit++] = r - ats * 1000;
                        }
                        if (timeline) {
                            long b = (long)((sent[idx] - start) / 100000);
                            if (b >= 0 && b < 1000 && lat[nlat - 1] > tl_max[b])
                                tl_max[b] = lat[nlat - 1];
                        }
                    }
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (n <= 0) usleep(50);
    }
    double step_s = (double)(now_us() - start) / 1e6, tcpu1[TK_N];
    thread_cpu(tcpu1);
    double step_cpu = (double)(cpu_us() - cpu0) / 1e6;
    if (timeline) {
        printf("timeline: worst latency (ms) of the events sent in each 100 ms:\n");
        for (long b = 0; b < 1000 && b * 100000 < now_us() - start; b++)
            printf("%5.1f%s", tl_max[b] / 1e3, b % 20 == 19 ? "\n" : " ");
        printf("\n");
    }
    qsort(lat, (size_t)nlat, sizeof(int64_t), cmp_i64);
    if (nlat > 0)
        printf("latency at %.0f events/s (%ld alerts): p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, "
               "max %.2f ms (event sent -> alert read; target p99 < 20 ms)\n",
               rate, nlat, lat[nlat / 2] / 1e3, lat[(long)(nlat * 0.99)] / 1e3,
               lat[(long)(nlat * 0.999)] / 1e3, lat[nlat - 1] / 1e3);
    else
        printf("latency: no alerts read back\n");
    if (nsplit > 0 && !input_hop) {
        qsort(lat_a, (size_t)nsplit, sizeof(int64_t), cmp_i64);
        qsort(lat_b, (size_t)nsplit, sizeof(int64_t), cmp_i64);
        printf("  split at the alert's timestamp (ms resolution): event sent -> alert produced "
               "p50 %.1f, p99 %.1f ms; alert produced -> read p50 %.1f, p99 %.1f ms\n",
               lat_a[nsplit / 2] / 1e3, lat_a[(long)(nsplit * 0.99)] / 1e3,
               lat_b[nsplit / 2] / 1e3, lat_b[(long)(nsplit * 0.99)] / 1e3);
    }
    printf("CPU during the latency step: %.2f of %ld cores (%.2f us per event sent):", step_cpu / step_s,
           sysconf(_SC_NPROCESSORS_ONLN), step_cpu * 1e6 / (double)lat_events);
    for (int t = 0; t < TK_N; t++)
        if (tcpu1[t] - tcpu0[t] > 0)
            printf("%s %s %.2f", t ? "," : "", TK_NAME[t], (tcpu1[t] - tcpu0[t]) / step_s);
    printf("\n");
    vg_kafka_get_stats(k, &st);
    printf("checkpoints: %" PRIu64 ", %.1f ms on average, %.1f ms at most from encoding to "
           "written (acknowledgements + write; processing goes on)\n", st.checkpoints,
           st.checkpoints ? (double)st.checkpoint_us_sum / 1e3 / (double)st.checkpoints : 0.0,
           (double)st.checkpoint_us_max / 1e3);
    printf("checkpoint encoding on the processing threads (slices of at most 0.5 ms between "
           "batches): %.2f ms per checkpoint on average, %.2f ms at most\n",
           st.checkpoints ? (double)st.checkpoint_encode_us_sum / 1e3 / (double)st.checkpoints
                          : 0.0,
           (double)st.checkpoint_encode_us_max / 1e3);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(ac);
    rd_kafka_destroy(ac);
    vg_kafka_free(k);
    rd_kafka_flush(p, 5000);
    rd_kafka_destroy(p);
    vg_prog_unref(prog);
    vg_sources_free(&loaded);
    vg_kafka_mock_free(mock);
    free(sent);
    free(lat);
    free(sent_rt);
    free(gen);
    free(gen_off);
    free(gen_alen);
    free(gen_acct);
    free(lat_a);
    free(lat_b);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
    if (system(cmd) != 0) return 1;
    return 0;
}
