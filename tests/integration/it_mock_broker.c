/* it_mock_broker.c - a Kafka-protocol test broker: librdkafka's mock cluster in its own
 * process, on loopback.
 *
 *   it_mock_broker [--brokers N] [--topic NAME:PARTITIONS]... [--addr-file FILE]
 *
 * Starts rd_kafka_mock_cluster_new() with N brokers (default 1), creates the topics,
 * prints the bootstrap address ("127.0.0.1:PORT,...") on one line of stdout (and into
 * FILE when given), then serves until SIGTERM or SIGINT. Test controls, by signal:
 *   SIGUSR1  every broker goes down (connections closed, new ones refused)
 *   SIGUSR2  every broker comes back up
 * Limits of librdkafka 2.0.2's mock cluster that tests must respect: at most 100,000
 * messages or 5 MiB per partition (older ones silently dropped: check the low
 * watermark), no log compaction, no static group membership.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t g_stop, g_down, g_up;

static void on_signal(int sig) {
    if (sig == SIGUSR1) g_down = 1;
    else if (sig == SIGUSR2) g_up = 1;
    else g_stop = 1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: it_mock_broker [--brokers N] [--topic NAME:PARTITIONS]... "
               "[--addr-file FILE]\n"
               "Serves a librdkafka mock cluster on loopback until SIGTERM; SIGUSR1 sets "
               "every broker down, SIGUSR2 up.\n");
}

int main(int argc, char **argv) {
    int nbrokers = 1;
    const char *addr_file = NULL;
    const char *topics[64];
    int ntopics = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            nbrokers = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc && ntopics < 64) {
            topics[ntopics++] = argv[++i];
        } else if (strcmp(argv[i], "--addr-file") == 0 && i + 1 < argc) {
            addr_file = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (nbrokers < 1 || nbrokers > 16) {
        fprintf(stderr, "it_mock_broker: --brokers must be 1..16\n");
        return 2;
    }
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    /* rd_kafka_new() takes ownership of conf on success */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "it_mock_broker: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (!mc) {
        fprintf(stderr, "it_mock_broker: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < ntopics; i++) {
        char name[256];
        const char *colon = strrchr(topics[i], ':');
        int parts = colon ? atoi(colon + 1) : 1;
        size_t n = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);
        if (n == 0 || n >= sizeof(name) || parts < 1) {
            fprintf(stderr, "it_mock_broker: bad --topic '%s' (NAME:PARTITIONS)\n", topics[i]);
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 2;
        }
        memcpy(name, topics[i], n);
        name[n] = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(mc, name, parts, nbrokers < 3 ? nbrokers : 3);
        if (err) {
            fprintf(stderr, "it_mock_broker: creating %s: %s\n", name, rd_kafka_err2str(err));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);

    const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
    if (addr_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", addr_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%s\n", boot) < 0 || fclose(f) != 0 || rename(tmp, addr_file) != 0) {
            fprintf(stderr, "it_mock_broker: cannot write %s\n", addr_file);
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    printf("%s\n", boot);
    fflush(stdout);

    while (!g_stop) {
        if (g_down) {
            g_down = 0;
            for (int b = 1; b <= nbrokers; b++) rd_kafka_mock_broker_set_down(mc, b);
            fprintf(stderr, "it_mock_broker: brokers down\n");
        }
        if (g_up) {
            g_up = 0;
            for (int b = 1; b <= nbrokers; b++) rd_kafka_mock_broker_set_up(mc, b);
            fprintf(stderr, "it_mock_broker: brokers up\n");
        }
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
