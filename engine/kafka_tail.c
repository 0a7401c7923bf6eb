/* kafka_tail.c - reading every partition of one topic outside the consumer group
 * (vg_kafka_tail_*, engine/kafka.h): the alerts topic for the HTTP API's alert list.
 *
 * One consumer of its own (the service's consumer settings, another group id, never
 * joined: partitions are assigned directly, nothing is committed; the caller keeps
 * the positions). A thread waits for the topic to exist (its partition count is read
 * once), assigns every partition at the offset the caller gives, and hands the messages
 * to the caller in batches, in order per partition. librdkafka retries broker outages
 * itself; the thread keeps polling until vg_kafka_tail_stop.
 */
#define _GNU_SOURCE
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kafka.h"
#include "engine/kafka_int.h"
#include "rules/errors.h"

#define TAIL_BATCH 512

struct vg_kafka_tail {
    rd_kafka_t *rk;
    char *topic;
    int64_t (*start)(void *ctx, int32_t partition);
    void (*fn)(void *ctx, const vg_kafka_tail_msg_t *m, int n);
    void *ctx;
    pthread_t th;
    atomic_int quit;
    atomic_int parts;   /* assigned partitions (0: waiting for the topic) */
};

static void *tail_main(void *arg) {
    vg_kafka_tail_t *t = arg;
    pthread_setname_np(pthread_self(), "vigil-tail");
    int32_t n = -1;
    while (!atomic_load(&t->quit) && n <= 0) {   /* the topic may not exist yet */
        n = vg_cl_topic_parts(t->rk, t->topic, 1000);
        for (int i = 0; n <= 0 && i < 10 && !atomic_load(&t->quit); i++) {
            struct timespec ts = {0, 100000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (n <= 0) return NULL;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int32_t p = 0; p < n; p++) {
        int64_t off = t->start(t->ctx, p);
        rd_kafka_topic_partition_list_add(l, t->topic, p)->offset =
            off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(t->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        fprintf(stderr, "vigil: reading %s: %s\n", t->topic, rd_kafka_err2str(e));
        return NULL;
    }
    atomic_store(&t->parts, n);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(t->rk);
    rd_kafka_message_t *msgs[TAIL_BATCH];
    vg_kafka_tail_msg_t out[TAIL_BATCH];
    while (!atomic_load(&t->quit)) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 100, msgs, TAIL_BATCH);
        int k = 0;
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            if (!m->err) {
                rd_kafka_timestamp_type_t tt;
                out[k++] = (vg_kafka_tail_msg_t){m->partition, m->offset,
                                                 rd_kafka_message_timestamp(m, &tt),
                                                 m->payload, m->payload ? m->len : 0};
            }
        }
        if (k) t->fn(t->ctx, out, k);
        for (ssize_t i = 0; i < got; i++) rd_kafka_message_destroy(msgs[i]);
    }
    rd_kafka_queue_destroy(q);
    return NULL;
}

vg_kafka_tail_t *vg_kafka_tail_start(vg_kafka_t *k, const char *topic,
                                     int64_t (*start)(void *ctx, int32_t partition),
                                     void (*fn)(void *ctx, const vg_kafka_tail_msg_t *m, int n),
                                     void *ctx, char *errbuf, size_t errlen) {
    vg_kafka_tail_t *t = calloc(1, sizeof *t);
    if (!t || !(t->topic = strdup(topic))) {
        free(t);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    t->start = start;
    t->fn = fn;
    t->ctx = ctx;
    char gid[300], e[512];
    snprintf(gid, sizeof gid, "%.200s.tail", vg_kafka_group(k));
    rd_kafka_conf_t *c = vg_kafka_consumer_conf(k, errbuf, errlen);
    /* not on the latency path, unlike the workers' consumers: an idle fetch waits 100 ms
     * (not 2: 500 fetches a second per broker), and less is prefetched (16 MB, not 256) */
    static const char *const set[][2] = {{"group.id", NULL},
                                         {"fetch.wait.max.ms", "100"},
                                         {"queued.min.messages", "10000"},
                                         {"queued.max.messages.kbytes", "16384"}};
    for (size_t i = 0; c && i < sizeof set / sizeof set[0]; i++) {
        const char *val = set[i][1] ? set[i][1] : gid;
        if (rd_kafka_conf_set(c, set[i][0], val, e, sizeof e) != RD_KAFKA_CONF_OK) {
            snprintf(errbuf, errlen, "kafka setting %s: %s", set[i][0], e);
            rd_kafka_conf_destroy(c);
            c = NULL;
        }
    }
    if (c && !(t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof e))) {
        snprintf(errbuf, errlen, "kafka consumer for %s: %s", topic, e);
        rd_kafka_conf_destroy(c);
    }
    if (!t->rk || pthread_create(&t->th, NULL, tail_main, t) != 0) {
        if (t->rk) snprintf(errbuf, errlen, "cannot start a thread");
        if (t->rk) rd_kafka_destroy(t->rk);
        free(t->topic);
        free(t);
        return NULL;
    }
    return t;
}

int vg_kafka_tail_partitions(const vg_kafka_tail_t *t) { return atomic_load(&t->parts); }

void vg_kafka_tail_stop(vg_kafka_tail_t *t) {
    if (!t) return;
    atomic_store(&t->quit, 1);
    pthread_join(t->th, NULL);
    rd_kafka_consumer_close(t->rk);
    rd_kafka_destroy(t->rk);
    free(t->topic);
    free(t);
}
