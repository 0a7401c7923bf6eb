/* kafka.c - the streaming service core (see kafka.h for the design and guarantees).
 *
 * Each worker thread is one consumer-group member with its own producer. Its loop:
 * consume a batch -> for each message: the `future` check, vg_pipeline_line() on the
 * partition's pipeline, produce alert / decision / dead letter -> serve delivery
 * reports -> one step of the asynchronous checkpoints (see "asynchronous checkpoints"
 * below: one partition at a time has its changes encoded with its next offset, written
 * by the worker's helper thread once the broker acknowledged what was produced before,
 * while its events go on being processed). At a
 * revocation, a rewind and at shutdown: flush the producer, then write every changed
 * partition's state with its next offset, then commit the offsets to the group
 * (informational).
 * A failed delivery rewinds: the partitions' in-memory state is dropped and reloaded
 * from their last checkpoint, and the consumer seeks back to the checkpoint offsets,
 * so that the lost outputs are produced again.
 */
#define _GNU_SOURCE   /* memmem */
#include "engine/kafka.h"

#include <errno.h>
#include <unistd.h>
#include <poll.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine/kafka_int.h"
#include "engine/le.h"
#include "engine/state.h"
#include "engine/store.h"
#include "rules/errors.h"

#define BATCH 1024
#define STOP_GRACE_MS 30000      /* how long a stopping worker waits for the broker */
#define OPEN_RETRY_MS 30000      /* how long an assigned store may stay locked */
#define NB VG_KAFKA_NB

const double vg_kafka_latency_bounds_ms[NB] = {1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 100,
                                               250, 500, 1000, 5000, INFINITY};

enum { OUT_CL = 0, OUT_ALERT = 1, OUT_DECISION = 2, OUT_DLQ = 3 };

/* A produced message's opaque tag: kind (2 bits), the input partition's checkpoint
 * epoch (1 bit) and the input partition (19 bits; for the per-partition acknowledgement
 * counts; PART_NONE when it does not fit), and the input message's timestamp in ms (42
 * bits: until the year 2109) for the latency histogram. */
#define PART_BITS 19
/* What librdkafka adds to a record's value and key when it checks message.max.bytes
 * (the record batch's per-message overhead, with room to spare). */
#define REC_OVERHEAD 512
#define TAG_PART_SHIFT 3
#define PART_NONE ((1u << PART_BITS) - 1)
_Static_assert(sizeof(uintptr_t) >= 8, "the produce tag needs 64 bits");

/* Written by the owning worker only, read by anyone: relaxed load + store. */
#define INC(x, n) atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + (n), memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define SET(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)

typedef struct counters {
    _Atomic uint64_t messages, decided, duplicates, rejected, blank;
    _Atomic uint64_t by_decision[4];
    _Atomic uint64_t rejected_by[VG_REJECT__COUNT];
    _Atomic uint64_t alerts, alerts_acked, decisions_out, dead_letters;
    _Atomic uint64_t stale, gaps, backpressure, checkpoints, ckpt_us_sum, ckpt_us_max;
    _Atomic uint64_t enc_us_sum, enc_us_max;   /* encoding, on the processing thread */
    _Atomic uint64_t delivery_errors, rewinds, truncated;
    _Atomic uint64_t reprocessed;   /* messages processed again after a rewind */
    _Atomic uint64_t cl_records, cl_restores, cl_restored, cl_seeds, cl_restore_us, cl_chunked;
    _Atomic uint64_t cl_head_lost;
    _Atomic uint64_t scored, labels, labels_invalid, labels_waits;
    _Atomic int64_t lag;
    _Atomic uint32_t partitions;
    _Atomic uint64_t lat[NB], lat_count, lat_sum_us;
} counters_t;

typedef struct part {
    int32_t id;
    vg_store_t *store;
    vg_pipeline_t *pl;
    int64_t next_off;     /* next offset to process; -1: take the first one that comes */
    int64_t ckpt_off;     /* next_off as of the last checkpoint (-1: none) */
    int resync;           /* after an assign or a rewind: wait for next_off itself */
    /* the input partition ended before the checkpoint's offset (recreated, or the
     * embedded broker, new at each start): read from in_from instead of in_stale, also
     * after a rewind to that checkpoint (-1: not so) */
    int64_t in_stale, in_from;
    int64_t in_max;       /* the highest next_off reached in this process (-1: none;
                             kept in k->in_max while another thread owns the partition):
                             a message below it is processed again (after a rewind, or a
                             revocation that could not checkpoint) */
    int64_t last_ckpt;    /* monotonic ms of the last checkpoint (or of the assignment) */
    /* an asynchronous checkpoint (see ckpt_step) encodes the state at ck_off and flips
     * the epoch: it is written once every message of the old epoch (produced before
     * ck_off) is acknowledged */
    int ep;               /* the epoch of the messages produced now */
    int64_t out_ep[2];    /* produced in each epoch, not yet acknowledged */
    int64_t ck_off;       /* the offset being checkpointed */
    /* the changelog (kafka_int.h) */
    int64_t cl_last;      /* highest acknowledged changelog offset */
    vg_buf_t cl_redo;     /* keys to produce again with their stored values */
    int cl_wipe;          /* the state was reset: the next checkpoint starts with a wipe */
    int ck_cl;            /* the pending checkpoint's records were produced */
    int cl_seed;          /* after the assignment: produce the whole local state */
    /* changes of the state that no offset records (a rule change, an event scored over
     * HTTP, an erasure): counted, so that a checkpoint writes them even at the same
     * offset; ck_: as of the pending checkpoint's start, ckpt_: as of the last one */
    uint64_t unlogged, ck_unlogged, ckpt_unlogged;
    /* the labels topic's partition of the same number: the next offset to apply, as of
     * the pending checkpoint's start and of the last one; lab_resync: after an assign or
     * a rewind, wait for lab_next itself */
    int64_t lab_next, lab_ck, lab_ckpt;
    int lab_resync;
    /* a label waits until this partition has processed the input produced before it
     * (lab_ready): lab_wait_ts is the Kafka timestamp of the first one waiting; in_ts
     * the newest timestamp of the input messages processed here; lab_paused: the labels
     * partition is paused (too many wait) */
    int lab_paused;
    int64_t lab_wait_ts, in_ts;
    /* labels kept until then, in offset order (lab_next is the first one's offset until
     * it is applied): each applied before the first input message at least as new
     * (Kafka timestamp), so that every later event of its account sees it, also when
     * the input is read from a backlog. At most LAB_HOLD_MAX; beyond, the labels
     * partition is paused, sought to the next one. */
    rd_kafka_message_t **lab_held;
    int lab_nheld, lab_hcap;
} part_t;
#define LAB_HOLD_MAX 4096

/* Something to checkpoint: events since the last checkpoint, or unlogged changes. */
static inline int part_changed(const part_t *pt) {
    return pt->next_off != pt->ckpt_off || pt->unlogged != pt->ckpt_unlogged ||
           pt->lab_next != pt->lab_ckpt;
}

/* A scoring request of vg_kafka_score(_async), queued for the worker owning its
 * partition (kafka.h). */
enum { REQ_SCORE, REQ_FORGET, REQ_RESET, REQ_VIEW, REQ_LABEL };   /* REQ_LABEL: `body`
                                                                      is a vg_label_t */   /* REQ_VIEW: `dry` is the most
                                                          decisions wanted */
typedef vg_kafka_req_t kreq_t;

/* The checkpoint helper of a worker: writes one partition's checkpoint while the
 * worker goes on with its other partitions. */
typedef struct helper {
    pthread_t tid;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    part_t *job;          /* its batch (the worker's ckb) being written (set by the
                             worker, cleared by the helper) */
    int done, rc, quit;
    char err[512];
} helper_t;

typedef struct worker {
    vg_kafka_t *k;
    int index;
    uint32_t keys_seen;          /* messages with a key (1 in 64 sampled: route_sample) */
    pthread_t tid;
    int started;
    rd_kafka_t *c, *p;
    rd_kafka_topic_t *rkt_in;    /* the input topic's handle in c (messages' rkt), once seen */
    rd_kafka_topic_t *t_alerts, *t_dec, *t_dlq, *t_cl;
    rd_kafka_topic_t *t_er;      /* GROUP.erasures, made at the first erasure */
    rd_kafka_t *rc;       /* reads changelog partitions on assignment (not in the group) */
    part_t **parts;       /* indexed by partition id */
    int32_t cap;
    vg_buf_t out, rec, fit;
    /* the largest record the broker takes per output kind (OUT_*): the producer's
     * message.max.bytes, lowered when the broker refuses a record as too large; an
     * alert, decision or dead letter above it is cut to fit (vg_kafka_fit_record) */
    size_t out_max[4];
    int fatal;
    /* monotonic ms since the consumer's statistics (stats_cb, every second) showed no
     * broker connection up (0: one is); the lag is unknown (-1) meanwhile. Set and
     * cleared by this thread, read by vg_kafka_down_ms */
    _Atomic int64_t down_since;
    /* monotonic ms since the group took this consumer's partitions (an eager revoke, or
     * lost ones) and before it gave it an assignment again, for vg_kafka_rebalancing_ms
     * (0: assigned) */
    _Atomic int64_t unassigned_since;
    int need_rewind;      /* a delivery failed since the last checkpoint */
    uint64_t dr_failed;   /* deliveries failed since the last rewind (logged once, by it) */
    char dr_first[320];   /* the first of them: "to TOPIC: error" */
    atomic_int ready;
    int64_t stop_at;      /* monotonic ms when the stop was seen, 0 before */
    part_t *pending;      /* the partition of the asynchronous checkpoint under way */
    int64_t pending_t0;   /* real_us() when it started */
    int encoding;         /* 1: its changes are still being encoded, a slice per step */
    int emitting;         /* 1: its changelog records are being produced, a slice per step */
    size_t cl_next;       /* the next operation of ckb to produce (cl_emit_step) */
    int64_t enc_us;       /* time those slices took so far */
    int writing;          /* 0: waiting for its acknowledgements; 1: handed to the helper */
    int marked;           /* its changelog marker was produced (after everything before
                             ck_off was acknowledged) */
    vg_batch_t *ckb;      /* the pending checkpoint's records */
    helper_t h;
    /* scoring requests (vg_kafka_score) */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    kreq_t *qhead;
    int qinit;
    int pfd[2];           /* wakes the thread from its wait for messages (poll) */
    rd_kafka_queue_t *cq; /* the consumer's queue: yielded to wake the thread */
    uint64_t rules_gen;   /* the change of the rules this worker applied last */
    int64_t ruleset;      /* the ruleset version of its partitions (alert ids) */
    counters_t ct;
} worker_t;

struct vg_kafka {
    vg_kafka_opts_t o;
    char *brokers, *group, *topic_in, *topic_alerts, *topic_dec, *topic_dlq, *state_dir;
    char *topic_cl;              /* NULL: no changelog */
    char *topic_lab;             /* NULL: no labels topic (the workers' view: set before
                                    they start) */
    char *lab_name;              /* the labels topic asked for (owns the string) */
    atomic_int lab_off;          /* 1: the labels topic was dropped (it cannot be made);
                                    read by other threads, with lab_name */
    _Atomic int64_t *lab_applied;   /* per input partition: the next labels offset its
                                       owner here applied up to (-1: not owned here) */
    atomic_int *lab_waiting;        /* per input partition: 1 while its labels wait for
                                       the input to catch up (lab_ready) */
    char **conf;
    char *conf_scope;            /* per conf entry: 'C' consumer, 'P' producer, '*' both */
    int nconf;
    worker_t *w;
    int nw;
    atomic_int stop;
    atomic_int failed;
    int running;
    /* o.prog, o.pipeline.lists and o.pipeline.ruleset_version change at runtime
     * (vg_kafka_set_program / _set_lists) under rmu; rules_gen counts the changes */
    pthread_mutex_t rmu;
    _Atomic uint64_t rules_gen;
    _Atomic int32_t nparts;      /* the input topic's partitions (0: unknown; set once,
                                    after owner, taken and the labels arrays) */
    _Atomic int *owner;          /* per input partition: the owning worker, or -1 */
    atomic_uchar *taken;         /* per input partition: assigned in this process before
                                    (the embedded broker: its offsets are this run's) */
    _Atomic int64_t *in_max;     /* per input partition: part_t.in_max at its revocation */
    /* the deadline thread: answers queued requests whose deadline passed while their
     * worker was busy (a long batch, a rebalance, a synchronous checkpoint) */
    pthread_t reaper;
    int reaper_started;
    atomic_int reaper_quit;
    atomic_int nqueued;          /* requests in the workers' queues */
    /* vg_kafka_publish: a producer of its own, made on first use, under pmu */
    char *topic_er;              /* GROUP.erasures */
    /* which partitioner the producers use (route_sample): among sampled keys whose
     * murmur2 and CRC32 partitions differ, how many arrived on each one's or on
     * neither's; route_crc: requests are routed by CRC32 (librdkafka's default) */
    _Atomic uint32_t keys_mm, keys_crc, keys_neither;
    atomic_int route_crc, warned_neither;
    /* decided events whose message key is not their account (key_check): counted, the
     * first of each kind logged */
    _Atomic uint64_t keys_other, keys_none;
    atomic_int warned_other, warned_none;
    pthread_mutex_t pmu;
    rd_kafka_t *pub;
    /* an input topic missing at start: this thread waits for it, then sizes the
     * changelog and labels topics and starts the workers (setup_main) */
    pthread_t setup;
    int setup_started;
    rd_kafka_t *setup_rk;
};

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void) { return mono_us() / 1000; }

static int64_t real_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void logf_(const vg_kafka_t *k, int always, const char *fmt, ...) {
    if (k->o.quiet && !always) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "vigil kafka: %s\n", line);
}

void vg_kafka_opts_default(vg_kafka_opts_t *o) {
    memset(o, 0, sizeof(*o));
    o->group = "vigil";
    o->topic_in = "transactions";
    o->topic_alerts = "alerts";
    o->topic_dlq = "transactions.dlq";
    vg_pipeline_opts_default(&o->pipeline);
    o->threads = 2;
    o->future_ms = 5 * 60 * 1000;
    o->checkpoint_ms = 5000;
    o->sync = 1;
}

/* ---- client configuration ---- */

static int conf_set(rd_kafka_conf_t *c, const char *name, const char *val, char *errbuf,
                    size_t errlen) {
    char e[512];
    if (rd_kafka_conf_set(c, name, val, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        snprintf(errbuf, errlen, "kafka setting %.100s=%.100s: %.250s", name, val, e);
        return VG_EINVAL;
    }
    return 0;
}

/* The settings vigil's guarantees depend on (SPEC section 7): a user setting may
 * repeat vigil's value (in any spelling librdkafka accepts) but not change it. A NULL
 * value: vigil sets it from its own options, never from a passed-through setting. */
static const struct {
    const char *name, *value, *why;
} PROTECTED[] = {
    {"enable.auto.commit", "false", "offsets are committed with the state, not by the client"},
    {"enable.auto.offset.store", "false", "offsets are stored with the state, not by the client"},
    {"enable.idempotence", "true", "the producers must not duplicate or reorder output"},
    {"acks", "all", "no alert may be lost when a broker fails"},
    {"request.required.acks", "all", "no alert may be lost when a broker fails"},
    {"isolation.level", "read_committed", "aborted transactions must not be consumed"},
    {"transactional.id", NULL, "vigil's producers are idempotent, not transactional"},
    {"bootstrap.servers", NULL, "the brokers are set with --kafka"},
    {"metadata.broker.list", NULL, "the brokers are set with --kafka"},
    {"group.id", NULL, "the group is set with --group"},
};

/* librdkafka's canonical text of name=val (rd_kafka_conf_get after a set), or -1 with
 * librdkafka's reason in errbuf. */
static int canon(const char *name, const char *val, char *out, size_t outlen, char *errbuf,
                 size_t errlen) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (!c) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    if (rd_kafka_conf_set(c, name, val, errbuf, errlen) != RD_KAFKA_CONF_OK) rc = -1;
    else if (out && rd_kafka_conf_get(c, name, out, &outlen) != RD_KAFKA_CONF_OK) *out = 0;
    rd_kafka_conf_destroy(c);
    return rc;
}

static char prop_scope(const char *name, size_t nl);

int vg_kafka_conf_check(const char *kv, char *errbuf, size_t errlen) {
    const char *p = kv;
    char kind = 0;
    if (strncmp(p, "consumer.", 9) == 0 || strncmp(p, "producer.", 9) == 0) {
        kind = *p == 'c' ? 'C' : 'P';
        p += 9;
    }
    const char *eq = strchr(p, '=');
    char name[256];
    size_t n = eq ? (size_t)(eq - p) : 0;
    if (!eq || n == 0 || n >= sizeof(name)) {
        snprintf(errbuf, errlen, "kafka setting '%.200s': expected name=value", kv);
        return VG_EINVAL;
    }
    memcpy(name, p, n);
    name[n] = 0;
    char sc = kind ? prop_scope(name, n) : '*';
    if (kind && sc != '*' && sc != kind) {   /* librdkafka would ignore it, with a warning */
        snprintf(errbuf, errlen, "kafka setting %.260s: %s is a %s property, so the %s "
                 "would ignore it (give it as %s.%s, or without a prefix)", kv, name,
                 sc == 'C' ? "consumer" : "producer", kind == 'C' ? "consumers" : "producers",
                 sc == 'C' ? "consumer" : "producer", name);
        return VG_EINVAL;
    }
    const char *val = eq + 1;
    char got[512], want[512], e[512];
    if (canon(name, val, got, sizeof(got), e, sizeof(e)) != 0) {
        snprintf(errbuf, errlen, "kafka setting %s=%.200s: %s", name, val, e);
        return VG_EINVAL;
    }
    for (size_t i = 0; i < sizeof(PROTECTED) / sizeof(PROTECTED[0]); i++) {
        if (strcmp(name, PROTECTED[i].name) != 0) continue;
        if (PROTECTED[i].value && canon(name, PROTECTED[i].value, want, sizeof(want), e,
                                        sizeof(e)) == 0 && strcmp(got, want) == 0)
            return 0;   /* vigil's own value, spelled another way */
        if (PROTECTED[i].value)
            snprintf(errbuf, errlen, "kafka setting %s=%.200s is refused: vigil needs %s=%s "
                     "(%s)", name, val, name, PROTECTED[i].value, PROTECTED[i].why);
        else
            snprintf(errbuf, errlen, "kafka setting %s is refused: %s", name, PROTECTED[i].why);
        return VG_EINVAL;
    }
    return 0;
}

/* librdkafka's table of properties (rd_kafka_conf_properties_show), read once. */
static char *g_props;
static pthread_once_t g_props_once = PTHREAD_ONCE_INIT;
static void props_load(void) {
    size_t len = 0;
    FILE *f = open_memstream(&g_props, &len);
    if (!f) return;
    rd_kafka_conf_properties_show(f);
    if (fclose(f) != 0) {
        free(g_props);
        g_props = NULL;
    }
}

/* The kind of client property name[0..nl) is for: 'C' consumer, 'P' producer, '*' both
 * or unknown (the C, P or * column of librdkafka's table). */
static char prop_scope(const char *name, size_t nl) {
    pthread_once(&g_props_once, props_load);
    for (const char *l = g_props; l && *l;) {   /* each line: "name   |  C  | range | ..." */
        const char *next = strchr(l, '\n');
        if (strncmp(l, name, nl) == 0 && l[nl] == ' ') {
            const char *bar = strchr(l + nl, '|');
            if (bar && (!next || bar < next)) {
                bar++;
                while (*bar == ' ') bar++;
                return *bar == 'C' || *bar == 'P' ? *bar : '*';
            }
        }
        l = next ? next + 1 : NULL;
    }
    return '*';
}

/* Which clients each user setting applies to: "consumer."/"producer." prefixes, else
 * librdkafka's own table, so that a producer setting such as compression.type is not
 * given to the consumers (librdkafka would warn that it ignores it). Unknown names get
 * '*' (the check reports them). */
static void conf_scopes(const char *const *conf, int n, char *scope) {
    for (int i = 0; i < n; i++) {
        const char *kv = conf[i], *eq = strchr(kv, '=');
        scope[i] = '*';
        if (strncmp(kv, "consumer.", 9) == 0) scope[i] = 'C';
        else if (strncmp(kv, "producer.", 9) == 0) scope[i] = 'P';
        else if (eq) scope[i] = prop_scope(kv, (size_t)(eq - kv));
    }
}

/* The consumers' heartbeat against their group session timeout (librdkafka's defaults
 * counted: 3 s and 45 s). A heartbeat the user set at or above the session timeout is
 * refused: the group coordinator would time the member out between two heartbeats
 * and rebalance every few seconds (-X session.timeout.ms=3000 alone did so: 6 session
 * timeouts and 16 revocations in 35 s with an idle input). One the user did not set is
 * lowered to a third of the session timeout when it is above that (Kafka's advice),
 * so that a short session timeout alone works. 0 or VG_EINVAL with errbuf. */
static int conf_heartbeat(rd_kafka_conf_t *c, int user_hb, char *errbuf, size_t errlen) {
    char sv[32], hv[32];
    size_t sl = sizeof sv, hl = sizeof hv;
    if (rd_kafka_conf_get(c, "session.timeout.ms", sv, &sl) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_get(c, "heartbeat.interval.ms", hv, &hl) != RD_KAFKA_CONF_OK)
        return 0;
    long sess = strtol(sv, NULL, 10), hb = strtol(hv, NULL, 10);
    if (user_hb && hb >= sess) {
        snprintf(errbuf, errlen, "kafka settings: heartbeat.interval.ms=%ld is not below "
                 "session.timeout.ms=%ld%s: the group would time the consumers out between "
                 "two heartbeats and rebalance every few seconds (set heartbeat.interval.ms "
                 "to a third of the session timeout, or leave it unset: vigil then takes a "
                 "third)", hb, sess, sess == 45000 ? " (librdkafka's default)" : "");
        return VG_EINVAL;
    }
    if (!user_hb && hb * 3 > sess) {
        char v[32];
        snprintf(v, sizeof v, "%ld", sess / 3 > 0 ? sess / 3 : 1);
        return conf_set(c, "heartbeat.interval.ms", v, errbuf, errlen);
    }
    return 0;
}

/* 1 when the setting kv ("name=value", perhaps prefixed) names the property `name`. */
static int conf_names(const char *kv, const char *name) {
    if (strncmp(kv, "consumer.", 9) == 0 || strncmp(kv, "producer.", 9) == 0) kv += 9;
    size_t n = strlen(name);
    return strncmp(kv, name, n) == 0 && kv[n] == '=';
}

int vg_kafka_conf_try(const char *const *conf, char *errbuf, size_t errlen) {
    int n = 0;
    while (conf && conf[n]) n++;
    if (n == 0) return 0;
    char *scope = malloc((size_t)n);
    if (!scope) {
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    conf_scopes(conf, n, scope);
    int rc = 0;
    for (int kind = 0; !rc && kind < 2; kind++) {   /* 0 producer, 1 consumer */
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        int any = 0;
        rc = c ? conf_set(c, "log_level", "0", errbuf, errlen) : VG_ENOMEM;
        for (int i = 0; !rc && i < n; i++) {
            if (scope[i] == (kind ? 'P' : 'C')) continue;
            const char *kv = conf[i];
            if (strncmp(kv, "consumer.", 9) == 0 || strncmp(kv, "producer.", 9) == 0) kv += 9;
            const char *eq = strchr(kv, '=');
            char name[256];
            if (!eq || (size_t)(eq - kv) >= sizeof name) continue;   /* the check says so */
            memcpy(name, kv, (size_t)(eq - kv));
            name[eq - kv] = 0;
            rc = conf_set(c, name, eq + 1, errbuf, errlen);
            any = 1;
        }
        if (!rc && kind == 1) {
            int user_hb = 0;
            for (int i = 0; i < n; i++)
                if (scope[i] != 'P' && conf_names(conf[i], "heartbeat.interval.ms")) user_hb = 1;
            rc = conf_heartbeat(c, user_hb, errbuf, errlen);
        }
        if (!rc && any) {
            char e[512];
            rd_kafka_t *rk = rd_kafka_new(kind ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, c, e,
                                          sizeof e);
            if (!rk) {
                snprintf(errbuf, errlen, "kafka settings: a %s cannot be made with them: %s",
                         kind ? "consumer" : "producer", e);
                rc = VG_EINVAL;
            } else {
                c = NULL;   /* rd_kafka_new took it */
                rd_kafka_destroy(rk);
            }
        }
        if (c) rd_kafka_conf_destroy(c);
    }
    free(scope);
    return rc;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque);

/* The configuration of a consumer (consumer=1) or producer; NULL with errbuf. */
static rd_kafka_conf_t *make_conf(vg_kafka_t *k, int consumer, void *opaque, char *errbuf,
                                  size_t errlen) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (!c) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    int rc = conf_set(c, "bootstrap.servers", k->brokers, errbuf, errlen);
    if (!rc) rc = conf_set(c, "client.id", "vigil", errbuf, errlen);
    if (consumer) {
        if (!rc) rc = conf_set(c, "group.id", k->group, errbuf, errlen);
        if (!rc) rc = conf_set(c, "enable.auto.commit", "false", errbuf, errlen);
        if (!rc) rc = conf_set(c, "enable.auto.offset.store", "false", errbuf, errlen);
        if (!rc) rc = conf_set(c, "auto.offset.reset", "earliest", errbuf, errlen);
        if (!rc) rc = conf_set(c, "enable.partition.eof", "false", errbuf, errlen);
        /* a broker answers a fetch as soon as data comes; an empty one waits this long
         * (librdkafka's mock cluster, the test broker, always waits it out: 2 ms keeps
         * that below the latency budget, at most 500 fetches/s per idle broker) */
        if (!rc) rc = conf_set(c, "fetch.wait.max.ms", "2", errbuf, errlen);
        /* librdkafka (2.0.2, Debian 12's) stops fetching once the consumer queue holds
         * queued.min.messages (all the consumer's partitions together) or
         * queued.max.messages.kbytes, and starts again only about a second later: a
         * thread that catches up drains its queue long before and waits (bench_kafka:
         * 100-500 ms of nothing every second at the defaults of 100,000 messages and 64
         * MiB, 210k-300k events/s end to end; 420k-480k with these). The prefetch is
         * bounded by these, per processing thread. */
        if (!rc) rc = conf_set(c, "queued.min.messages", "1000000", errbuf, errlen);
        if (!rc) rc = conf_set(c, "queued.max.messages.kbytes", "262144", errbuf, errlen);
        /* the in-process mock broker (vg_kafka_opts_t.embedded): a second member's join
         * waits the session timeout less 1 s there */
        if (!rc && k->o.embedded) rc = conf_set(c, "session.timeout.ms", "6000", errbuf, errlen);
        if (!rc && k->o.embedded) rc = conf_set(c, "heartbeat.interval.ms", "1500", errbuf, errlen);
        /* a processing thread's consumer: its statistics say whether any broker is
         * reachable (stats_cb; -X statistics.interval.ms overrides, 0 turns it off) */
        if (!rc && opaque) rc = conf_set(c, "statistics.interval.ms", "1000", errbuf, errlen);
    } else {
        if (!rc) rc = conf_set(c, "enable.idempotence", "true", errbuf, errlen);
        if (!rc) rc = conf_set(c, "acks", "all", errbuf, errlen);
        if (!rc) rc = conf_set(c, "compression.codec", "lz4", errbuf, errlen);
        if (!rc) rc = conf_set(c, "linger.ms", "2", errbuf, errlen);
    }
    for (int i = 0; !rc && i < k->nconf; i++) {
        const char *kv = k->conf[i];
        if (k->conf_scope[i] == (consumer ? 'P' : 'C')) continue;
        if (strncmp(kv, "consumer.", 9) == 0 || strncmp(kv, "producer.", 9) == 0) kv += 9;
        const char *eq = strchr(kv, '=');
        if ((rc = vg_kafka_conf_check(kv, errbuf, errlen)) != 0) break;
        char name[256];
        size_t n = (size_t)(eq - kv);
        if (n >= sizeof(name)) n = sizeof(name) - 1;
        memcpy(name, kv, n);
        name[n] = 0;
        rc = conf_set(c, name, eq + 1, errbuf, errlen);
    }
    if (!rc && consumer) {
        int user_hb = 0;
        for (int i = 0; i < k->nconf; i++)
            if (k->conf_scope[i] != 'P' && conf_names(k->conf[i], "heartbeat.interval.ms"))
                user_hb = 1;
        rc = conf_heartbeat(c, user_hb, errbuf, errlen);
    }
    if (rc) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_conf_set_opaque(c, opaque);
    if (consumer) rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    else rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    if (consumer && opaque) rd_kafka_conf_set_stats_cb(c, stats_cb);
    return c;
}

rd_kafka_conf_t *vg_kafka_consumer_conf(vg_kafka_t *k, char *errbuf, size_t errlen) {
    return make_conf(k, 1, NULL, errbuf, errlen);
}

const char *vg_kafka_group(const vg_kafka_t *k) { return k->group; }
const char *vg_kafka_topic_erasures(const vg_kafka_t *k) { return k->topic_er; }

/* vg_kafka_publish's acknowledgement: the message's opaque is its status */
typedef struct pub_st {
    rd_kafka_resp_err_t err;   /* RD_KAFKA_RESP_ERR__IN_PROGRESS until acknowledged */
    int64_t offset;
} pub_st_t;

static void pub_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    pub_st_t *st = m->_private;
    if (!st) return;
    st->offset = m->offset;
    st->err = m->err;
}

/* The publishing producer, made on first use (under pmu). 0 or VG_EIO with errbuf. */
static int pub_client(vg_kafka_t *k, char *errbuf, size_t errlen) {
    if (!k->pub) {
        rd_kafka_conf_t *c = make_conf(k, 0, NULL, errbuf, errlen);
        char e[512];
        if (c) {
            rd_kafka_conf_set_dr_msg_cb(c, pub_dr);
            if (!(k->pub = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof e))) {
                rd_kafka_conf_destroy(c);
                snprintf(errbuf, errlen, "kafka producer: %.400s", e);
            }
        }
        if (!k->pub) return VG_EIO;
    }
    return 0;
}

static int pub_in_progress(const pub_st_t *st, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) c += st[i].err == RD_KAFKA_RESP_ERR__IN_PROGRESS;
    return c;
}

/* Produces n messages (copied; partition RD_KAFKA_PARTITION_UA: by key) and waits up to
 * timeout_ms for all their acknowledgements (st[i]); under pmu. 0 or the first error. */
static rd_kafka_resp_err_t pub_many(vg_kafka_t *k, const char *topic, int n,
                                    const char *const *keys, const size_t *kls,
                                    const char *const *vals, const size_t *vls,
                                    const int32_t *parts, pub_st_t *st, int64_t timeout_ms) {
    rd_kafka_resp_err_t e = 0;
    int sent = 0;
    for (; sent < n && !e; sent++) {
        st[sent] = (pub_st_t){RD_KAFKA_RESP_ERR__IN_PROGRESS, -1};
        e = rd_kafka_producev(
            k->pub, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(keys[sent], kls[sent]),
            /* parenthesized: the macro casts its argument unparenthesized, which made
             * `(int32_t)parts ? ...` of this, a pointer cut to its low 32 bits */
            RD_KAFKA_V_PARTITION((parts ? parts[sent] : RD_KAFKA_PARTITION_UA)),
            RD_KAFKA_V_VALUE((void *)vals[sent], vls[sent]),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&st[sent]),
            RD_KAFKA_V_END);
        if (e) st[sent].err = e;   /* not queued: no report comes */
    }
    int64_t t0 = mono_ms();
    while (pub_in_progress(st, sent)) {
        if (mono_ms() - t0 >= timeout_ms) {
            /* not acknowledged in time: purged, so that no late report writes `st` */
            rd_kafka_purge(k->pub, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            while (pub_in_progress(st, sent)) rd_kafka_poll(k->pub, 50);
            if (!e) e = RD_KAFKA_RESP_ERR__TIMED_OUT;
            break;
        }
        rd_kafka_poll(k->pub, 5);
    }
    for (int i = 0; i < sent && !e; i++) e = st[i].err;
    return e;
}

int vg_kafka_publish(vg_kafka_t *k, const char *topic, const void *key, size_t kl,
                     const void *val, size_t vl, int64_t timeout_ms, char *errbuf,
                     size_t errlen) {
    pthread_mutex_lock(&k->pmu);
    if (pub_client(k, errbuf, errlen) != 0) {
        pthread_mutex_unlock(&k->pmu);
        return VG_EIO;
    }
    pub_st_t st;
    const char *kk = key, *vv = val;
    rd_kafka_resp_err_t e = pub_many(k, topic, 1, &kk, &kl, &vv, &vl, NULL, &st, timeout_ms);
    pthread_mutex_unlock(&k->pmu);
    if (e) snprintf(errbuf, errlen, "producing to %.200s: %s", topic, rd_kafka_err2str(e));
    return e ? VG_EIO : 0;
}

const char *vg_kafka_topic_labels(const vg_kafka_t *k) {
    return atomic_load(&((vg_kafka_t *)k)->lab_off) ? NULL : k->lab_name;
}

int vg_kafka_post_labels(vg_kafka_t *k, const vg_label_t *lbs, const char *const *vals,
                         int n, int64_t timeout_ms, int *applied, int *elsewhere,
                         char *errbuf, size_t errlen) {
    *applied = *elsewhere = 0;
    /* nparts first: it is set after the labels topic is settled and its arrays made
     * (the input topic may appear only after the start) */
    if (k->nparts <= 0 || atomic_load(&k->lab_off) || !k->lab_name || !k->lab_applied) {
        if (k->nparts <= 0) snprintf(errbuf, errlen, "the input topic %s does not exist yet",
                                     k->topic_in);
        else snprintf(errbuf, errlen, "no labels topic");
        return VG_EINVAL;
    }
    if (n <= 0) return 0;
    const char **keys = calloc((size_t)n, sizeof(*keys));
    size_t *kls = calloc((size_t)n, sizeof(*kls)), *vls = calloc((size_t)n, sizeof(*vls));
    int32_t *parts = calloc((size_t)n, sizeof(*parts));
    pub_st_t *st = calloc((size_t)n, sizeof(*st));
    if (!keys || !kls || !vls || !parts || !st) {
        free(keys), free(kls), free(vls), free(parts), free(st);
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    int crc = atomic_load(&k->route_crc);
    for (int i = 0; i < n; i++) {
        keys[i] = lbs[i].account;
        kls[i] = lbs[i].alen;
        vls[i] = strlen(vals[i]);
        parts[i] = vg_kafka_partition(lbs[i].account, lbs[i].alen, k->nparts, crc);
    }
    int64_t t0 = mono_ms();
    pthread_mutex_lock(&k->pmu);
    int rc = pub_client(k, errbuf, errlen);
    rd_kafka_resp_err_t e = 0;
    if (!rc) e = pub_many(k, k->lab_name, n, keys, kls, vals, vls, parts, st, timeout_ms);
    pthread_mutex_unlock(&k->pmu);
    if (e) {
        snprintf(errbuf, errlen, "producing to %.200s: %s", k->topic_lab, rd_kafka_err2str(e));
        rc = VG_EIO;
    } else if (!rc) {
        /* the ones this instance owns: wait until their threads applied them */
        for (;;) {
            int here = 0, done = 0, away = 0;
            for (int i = 0; i < n; i++) {
                int64_t a = atomic_load(&k->lab_applied[parts[i]]);
                if (a < 0) {
                    away++;
                    continue;
                }
                if (a > st[i].offset) done++;
                else if (atomic_load(&k->lab_waiting[parts[i]])) continue;   /* not soon */
                here++;
            }
            *applied = done;
            *elsewhere = away;
            if (done == here || mono_ms() - t0 >= timeout_ms || GET(k->stop)) break;
            struct timespec ts = {0, 2 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    free(keys), free(kls), free(vls), free(parts), free(st);
    return rc;
}

/* A client of its own with the producers' settings, for metadata and the admin API
 * (nothing is produced with it). NULL with errbuf. */
static rd_kafka_t *meta_client(vg_kafka_t *k, char *errbuf, size_t errlen) {
    rd_kafka_conf_t *c = make_conf(k, 0, NULL, errbuf, errlen);
    if (!c) return NULL;
    rd_kafka_conf_set_dr_msg_cb(c, NULL);
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
    if (!rk) {
        rd_kafka_conf_destroy(c);
        snprintf(errbuf, errlen, "kafka client: %.400s", e);
    }
    return rk;
}

int vg_kafka_ensure_topic(vg_kafka_t *k, const char *topic, int32_t parts, int compact,
                          char *errbuf, size_t errlen) {
    rd_kafka_t *rk = meta_client(k, errbuf, errlen);
    if (!rk) return VG_EIO;
    int rc = vg_cl_topic_parts(rk, topic, 5000) > 0
                 ? 0
                 : vg_cl_create_topic(rk, topic, parts, compact, errbuf, errlen);
    rd_kafka_destroy(rk);
    return rc;
}
const char *vg_kafka_topic_alerts(const vg_kafka_t *k) { return k->topic_alerts; }

/* ---- partitions ---- */

static int mkdir_p(const char *dir) {
    char tmp[4096];
    size_t n = strlen(dir);
    if (n >= sizeof(tmp)) return -1;
    memcpy(tmp, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == 0) {
            char c = tmp[i];
            tmp[i] = 0;
            if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -1;
            tmp[i] = c;
        }
    }
    return 0;
}

/* The pipeline options of the rules and lists in force, and (prog not NULL) their
 * program, read together; lists and program referenced (the caller unrefs them). */
static vg_pipeline_opts_t opts_now(vg_kafka_t *k, vg_program_t **prog) {
    pthread_mutex_lock(&k->rmu);
    vg_pipeline_opts_t po = k->o.pipeline;
    po.future_ms = k->o.future_ms > 0 ? k->o.future_ms : 0;   /* input and HTTP scores */
    if (po.lists) vg_lists_ref(po.lists);
    if (prog) *prog = vg_prog_ref(k->o.prog);
    pthread_mutex_unlock(&k->rmu);
    return po;
}

/* The checkpoint's meta records: the input offset (first, as the changelog reads it),
 * and with a labels topic the labels partition's next offset (stored as "m/" + key). */
#define LAB_META "kafka/labels"
#define LAB_KEY "m/" LAB_META
static int ckpt_meta(const vg_kafka_t *k, vg_kv_t meta[2], const int64_t *off,
                     const int64_t *lab) {
    meta[0] = (vg_kv_t){"kafka/offset", off, sizeof(*off)};
    meta[1] = (vg_kv_t){LAB_META, lab, sizeof(*lab)};
    return k->topic_lab ? 2 : 1;
}

/* A pipeline over the partition's store, resuming at its checkpoint. */
static int part_load(worker_t *w, part_t *pt, char *errbuf, size_t errlen) {
    vg_kafka_t *k = w->k;
    vg_program_t *p;
    vg_pipeline_opts_t po = opts_now(k, &p);
    po.store = pt->store;
    /* a state made by other rules (killed between a rule change and the checkpoint of
     * its moved state): like the HTTP engine's shards, it starts empty at its
     * checkpointed offset, loudly */
    int reset = 0, carried = 0;
    po.reset_mismatch = 1;
    po.was_reset = &reset;
    pt->pl = vg_pipeline_open(p, &po, &carried, errbuf, errlen);
    if (carried)   /* restarted with other rules: the moved state goes with the next checkpoint */
        logf_(k, 0, "partition %d: state in %s was made by other rules (or anomaly setting); carried over to "
              "these (as a live change of rules would)", (int)pt->id, vg_store_path(pt->store));
    if (reset) pt->cl_wipe = 1;
    if (reset)
        logf_(k, 1, "partition %d: state in %s was made by other rules or options; its state "
              "starts empty at its checkpoint", (int)pt->id, vg_store_path(pt->store));
    vg_prog_unref(p);
    vg_lists_unref(po.lists);
    if (!pt->pl) return VG_ESTORE;
    int64_t off = -1;
    int rc = vg_cl_get_i64(pt->store, VG_CL_MARK_KEY, &off);
    if (rc && rc != VG_ENOTFOUND) {
        snprintf(errbuf, errlen, "partition %d: unreadable checkpoint offset", (int)pt->id);
        return rc;
    }
    pt->next_off = pt->ckpt_off = off;
    pt->resync = 1;
    /* the labels partition's position (none: its start, whatever the broker still has) */
    int64_t loff = 0;
    rc = vg_cl_get_i64(pt->store, LAB_KEY, &loff);
    if ((rc && rc != VG_ENOTFOUND) || loff < 0) {
        snprintf(errbuf, errlen, "partition %d: unreadable labels offset", (int)pt->id);
        return rc ? rc : VG_ESTORE;
    }
    pt->lab_next = pt->lab_ckpt = rc ? 0 : loff;
    pt->lab_resync = 1;
    return 0;
}

/* The assignment's offset of a labels partition at lab_next (0: the first the broker
 * still has, as when nothing was applied yet). */
static int64_t lab_start(const part_t *pt) {
    return pt->lab_next > 0 ? pt->lab_next : RD_KAFKA_OFFSET_BEGINNING;
}

static void part_free(part_t *pt) {
    if (!pt) return;
    for (int i = 0; i < pt->lab_nheld; i++) rd_kafka_message_destroy(pt->lab_held[i]);
    free(pt->lab_held);
    vg_buf_deinit(&pt->cl_redo);
    vg_pipeline_free(pt->pl);
    vg_store_close(pt->store);
    free(pt);
}

/* The partition's store brought up to date with its changelog partition (another
 * instance may have owned it since this store was last written). */
static int cl_restore(worker_t *w, part_t *pt, char *errbuf, size_t errlen) {
    vg_kafka_t *k = w->k;
    if (!w->rc) {
        rd_kafka_conf_t *c = make_conf(k, 1, NULL, errbuf, errlen);
        if (!c) return VG_EINVAL;
        char e[512], gid[300];
        snprintf(gid, sizeof(gid), "%.250s.restore", k->group);   /* never joins: assign only */
        if (conf_set(c, "group.id", gid, errbuf, errlen) ||
            conf_set(c, "enable.partition.eof", "true", errbuf, errlen)) {
            rd_kafka_conf_destroy(c);
            return VG_EINVAL;
        }
        w->rc = rd_kafka_new(RD_KAFKA_CONSUMER, c, e, sizeof(e));
        if (!w->rc) {
            rd_kafka_conf_destroy(c);
            snprintf(errbuf, errlen, "kafka consumer (changelog): %.400s", e);
            return VG_EIO;
        }
        rd_kafka_poll_set_consumer(w->rc);
    }
    int64_t t0 = real_us();
    vg_cl_restore_t r;
    int rc = vg_cl_restore(w->rc, k->topic_cl, pt->id, pt->store, &k->stop, &pt->cl_redo, &r,
                           errbuf, errlen);
    if (rc) return rc;
    pt->cl_seed = r.seed;
    if (r.head_lost) {
        INC(w->ct.cl_head_lost, 1);
        int64_t off = -1;
        if (r.kept) vg_cl_get_i64(pt->store, VG_CL_MARK_KEY, &off);
        else pt->cl_wipe = 1;   /* no marker: the first checkpoint starts with a wipe */
        if (r.kept)
            logf_(k, 1, "partition %d: changelog %s [%d] starts at offset %" PRId64 ", after "
                  "this store's position %" PRId64 ", and holds no whole state after that (its "
                  "first records were deleted: retention, not compaction?): its %" PRIu64
                  " records are not applied; the local state (checkpoint at input offset %"
                  PRId64 ") is kept, the input is read again from there, and the state is "
                  "written to the changelog whole", (int)pt->id, k->topic_cl, (int)pt->id,
                  r.lo, r.pos, r.records, off);
        else if (r.lost_mark >= 0)
            logf_(k, 1, "partition %d: changelog %s [%d] starts at offset %" PRId64 " and holds "
                  "no whole state (its first records were deleted: retention, not "
                  "compaction?): its %" PRIu64 " records are not applied; the partition's "
                  "state starts EMPTY at the last checkpoint's input offset %" PRId64 " (the "
                  "history of its accounts is lost) and is written to the changelog whole",
                  (int)pt->id, k->topic_cl, (int)pt->id, r.lo, r.records, r.lost_mark);
        else
            logf_(k, 1, "partition %d: changelog %s [%d] starts at offset %" PRId64 " and holds "
                  "no whole state and no checkpoint (its first records were deleted: "
                  "retention, not compaction?): its %" PRIu64 " records are not applied; the "
                  "partition's state starts EMPTY at the input's start",
                  (int)pt->id, k->topic_cl, (int)pt->id, r.lo, r.records);
        return 0;
    }
    if (r.records) {
        INC(w->ct.cl_restores, 1);
        INC(w->ct.cl_restored, r.records);
        INC(w->ct.cl_restore_us, (uint64_t)(real_us() - t0));
    }
    if (r.records || r.seed)
        logf_(k, r.truncated || r.recreated, "partition %d: changelog %s [%d] offsets %" PRId64
              "..%" PRId64 ": %" PRIu64 " records, %" PRIu64 " checkpoints applied%s%s%s%s",
              (int)pt->id, k->topic_cl, (int)pt->id, r.from, r.hi, r.records, r.markers,
              r.wiped ? ", local state replaced" : "",
              r.tail ? ", an unfinished checkpoint after the last one (written again)" : "",
              r.truncated ? ", the changelog starts after this store's position (read from "
                            "its start)" : "",
              r.recreated ? "; the changelog ends before this store's position (recreated?): "
                            "the local state is written to it" : 
                            (r.seed ? "; the local state is written to it" : ""));
    if (r.purged)
        logf_(k, 0, "partition %d: %zu erased account%s purged from the store's files "
              "(their records were read from the changelog before their erasure)", (int)pt->id,
              r.purged, r.purged == 1 ? "" : "s");
    return 0;
}

static part_t *part_open(worker_t *w, int32_t id, char *errbuf, size_t errlen) {
    vg_kafka_t *k = w->k;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/kafka/%s-%d", k->state_dir, k->topic_in, (int)id);
    if (mkdir_p(dir) < 0) {
        snprintf(errbuf, errlen, "%.300s: %s", dir, strerror(errno));
        return NULL;
    }
    part_t *pt = calloc(1, sizeof(*pt));
    if (!pt) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    pt->id = id;
    pt->last_ckpt = mono_ms();
    pt->cl_last = -1;
    pt->in_ts = -1;
    pt->in_stale = pt->in_from = pt->in_max = -1;
    vg_buf_init(&pt->cl_redo);
    /* the previous owner (another thread or instance sharing the directory) may still
     * be closing it */
    int64_t t0 = mono_ms();
    for (;;) {
        pt->store = vg_store_open(dir, errbuf, errlen);
        if (pt->store || mono_ms() - t0 > OPEN_RETRY_MS || GET(k->stop)) break;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!pt->store || (k->topic_cl && cl_restore(w, pt, errbuf, errlen) != 0) ||
        part_load(w, pt, errbuf, errlen) != 0) {
        part_free(pt);
        return NULL;
    }
    return pt;
}

static int part_put(worker_t *w, part_t *pt) {
    if (pt->id >= w->cap) {
        int32_t ncap = w->cap ? w->cap : 16;
        while (ncap <= pt->id) ncap *= 2;
        part_t **np = realloc(w->parts, (size_t)ncap * sizeof(*np));
        if (!np) return VG_ENOMEM;
        memset(np + w->cap, 0, (size_t)(ncap - w->cap) * sizeof(*np));
        w->parts = np;
        w->cap = ncap;
    }
    part_free(w->parts[pt->id]);
    w->parts[pt->id] = pt;
    return 0;
}

static void set_fatal(worker_t *w, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    logf_(w->k, 1, "worker %d: fatal: %s", w->index, line);
    w->fatal = 1;
    SET(w->k->failed, 1);
    SET(w->k->stop, 1);
}

static int cl_emit(worker_t *w, part_t *pt, vg_batch_t *b, int mark, int64_t off);
static int cl_emit_step(worker_t *w, part_t *pt, vg_batch_t *b, int *done);
static int cl_mark(worker_t *w, part_t *pt, int64_t off);
static void cl_abandon(worker_t *w, part_t *pt, vg_batch_t *b);
static void cl_done(part_t *pt);
static int cl_after_assign(worker_t *w, part_t *pt);

/* ---- checkpoint ---- */

/* Waits until the broker acknowledged everything produced so far. 0, or -1 when
 * stopping and the grace period ran out. */
static int wait_acks(worker_t *w) {
    while (rd_kafka_outq_len(w->p) > 0) {
        rd_kafka_flush(w->p, 100);
        if (GET(w->k->stop)) {
            if (!w->stop_at) w->stop_at = mono_ms();
            if (mono_ms() - w->stop_at > STOP_GRACE_MS) return -1;
        }
    }
    return 0;
}

/* ---- asynchronous checkpoints ----
 *
 * In steady state a worker checkpoints one partition at a time, each about every
 * checkpoint interval, without stopping any partition:
 *   1. at the partition's next offset O, the cut is taken (vg_pipeline_checkpoint_cut:
 *      the accounts changed since the last checkpoint, to be encoded as they are at O,
 *      and the meta records with O) and its epoch flips: the messages produced from
 *      then on are counted apart from those produced before O;
 *   2. the changed accounts are encoded a slice at a time between batches (at most
 *      ENC_BUDGET_US per step, so that no partition waits for the whole encoding), and
 *      an account an event is about to change is encoded first; once complete, the
 *      batch's changelog records are produced (counted in the old epoch), a slice of
 *      at most ENC_BUDGET_US per step too (cl_emit_step);
 *   3. once the broker acknowledged every message of the old epoch (counted by the
 *      delivery reports), the batch is handed to the worker's helper thread, which
 *      writes it in one RocksDB write;
 *   4. when the write is done the worker commits O to the group and ends the
 *      checkpoint (vg_pipeline_checkpoint_end).
 * Meanwhile every partition goes on: what changes after O is written by the next
 * checkpoint. A partition is checkpointed only when its other epoch has nothing
 * outstanding, so that "the old epoch is acknowledged" means "everything before O". */

#define HELPER_NICE 19

static void *helper_main(void *arg) {
    worker_t *w = arg;
    helper_t *h = &w->h;
    char tname[16];
    snprintf(tname, sizeof(tname), "vigil-ckpt-%d", w->index);
    pthread_setname_np(pthread_self(), tname);
    /* the store writes are background work: below the processing threads and the
     * clients' (nice values are per thread on Linux), so that they take a core only when
     * those leave it; failing to lower it costs only latency */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), HELPER_NICE);
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->job && !h->quit) pthread_cond_wait(&h->cv, &h->mu);
        if (!h->job) break;
        part_t *pt = h->job;
        pthread_mutex_unlock(&h->mu);
        char err[512];
        err[0] = 0;
        int rc = vg_store_write(pt->store, w->ckb, w->k->o.sync, err, sizeof(err));
        pthread_mutex_lock(&h->mu);
        h->job = NULL;
        h->done = 1;
        h->rc = rc;
        memcpy(h->err, err, sizeof(err));
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static int handle(worker_t *w, rd_kafka_message_t *m);

static void commit_one(worker_t *w, int32_t id, int64_t off) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, w->k->topic_in, id)->offset = off;
    rd_kafka_commit(w->c, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Ends the pending checkpoint: waits for the helper when it is writing (wait=1) or
 * returns 0 at once when it is not done yet (wait=0). One still waiting for its
 * acknowledgements is given up (its changes stay to be written). Returns 1 when the
 * checkpoint ended. */
static int ckpt_finish(worker_t *w, int wait) {
    part_t *pt = w->pending;
    if (!pt) return 1;
    if (w->writing) {
        helper_t *h = &w->h;
        pthread_mutex_lock(&h->mu);
        if (!h->done && !wait) {
            pthread_mutex_unlock(&h->mu);
            return 0;
        }
        while (!h->done) pthread_cond_wait(&h->cv, &h->mu);
        h->done = 0;
        int rc = h->rc;
        pthread_mutex_unlock(&h->mu);
        vg_pipeline_checkpoint_end(pt->pl, rc == 0);
        if (rc) {
            set_fatal(w, "partition %d: checkpoint: %s", (int)pt->id, h->err);
        } else {
            pt->ckpt_off = pt->ck_off;
            pt->in_stale = -1;   /* the stale offset is no longer the checkpoint's */
            pt->ckpt_unlogged = pt->ck_unlogged;
            pt->lab_ckpt = pt->lab_ck;
            cl_done(pt);
            commit_one(w, pt->id, pt->ck_off);
            uint64_t us = (uint64_t)(real_us() - w->pending_t0);
            INC(w->ct.checkpoints, 1);
            INC(w->ct.ckpt_us_sum, us);
            if (us > GET(w->ct.ckpt_us_max)) SET(w->ct.ckpt_us_max, us);
        }
    }
    else {
        /* still encoding or waiting for acknowledgements: given up, the next
         * checkpoint covers it */
        vg_pipeline_checkpoint_end(pt->pl, 0);
        cl_abandon(w, pt, w->ckb);
    }
    pt->last_ckpt = mono_ms();
    w->pending = NULL;
    w->encoding = 0;
    w->emitting = 0;
    w->writing = 0;
    w->marked = 0;
    vg_batch_clear(w->ckb);
    return 1;
}

/* Encoding a checkpoint: slices of ENC_SLICE accounts, for at most ENC_BUDGET_US per
 * step (a step runs between two batches of at most BATCH messages). */
#define ENC_SLICE 32
#define ENC_BUDGET_US 500

/* One step of the asynchronous checkpoints, called between batches. */
static void ckpt_step(worker_t *w) {
    vg_kafka_t *k = w->k;
    if (w->fatal || w->need_rewind) return;
    if (w->pending) {
        part_t *pt = w->pending;
        if (w->encoding) {
            int64_t t0 = real_us(), t = t0;
            size_t left = 1;
            int rc = 0;
            while (!rc && left && t - t0 < ENC_BUDGET_US) {
                rc = vg_pipeline_checkpoint_step(pt->pl, ENC_SLICE, &left);
                t = real_us();
            }
            w->enc_us += t - t0;
            if (rc) {
                logf_(k, 1, "partition %d: checkpoint: out of memory; given up",
                      (int)pt->id);
                ckpt_finish(w, 1);
                return;
            }
            if (left) return;
            w->encoding = 0;
            INC(w->ct.enc_us_sum, (uint64_t)w->enc_us);
            if ((uint64_t)w->enc_us > GET(w->ct.enc_us_max))
                SET(w->ct.enc_us_max, (uint64_t)w->enc_us);
            w->emitting = k->topic_cl != NULL;
            w->cl_next = 0;
        }
        if (w->emitting) {
            /* the records of the state at ck_off, a slice per step: counted with the
             * outputs before it, so that the marker waits for them too */
            int done = 0;
            pt->ep ^= 1;
            int r = cl_emit_step(w, pt, w->ckb, &done);
            pt->ep ^= 1;
            if (r != 0 || !done) return;   /* fatal, or more next step */
            w->emitting = 0;
        }
        if (w->writing) {
            ckpt_finish(w, 0);
        } else if (pt->out_ep[pt->ep ^ 1] == 0) {
            if (pt->ck_cl && !w->marked) {
                /* the outputs before ck_off and the records are acknowledged: the
                 * marker, counted in the old epoch too */
                pt->ep ^= 1;
                int r = cl_mark(w, pt, pt->ck_off);
                pt->ep ^= 1;
                w->marked = 1;
                (void)r;   /* on failure: fatal */
                return;
            }
            if (pt->ck_cl) {   /* the changelog has it up to cl_last (the marker) */
                int64_t np = pt->cl_last + 1;
                vg_batch_put(w->ckb, VG_CL_POS_KEY, strlen(VG_CL_POS_KEY), &np, sizeof(np));
            }
            helper_t *h = &w->h;
            pthread_mutex_lock(&h->mu);
            h->job = pt;
            h->done = 0;
            pthread_cond_broadcast(&h->cv);
            pthread_mutex_unlock(&h->mu);
            w->writing = 1;
        }
        return;
    }
    /* the changed partition whose last checkpoint is oldest, once it is due */
    int64_t now = mono_ms();
    part_t *best = NULL;
    for (int32_t i = 0; i < w->cap; i++) {
        part_t *pt = w->parts[i];
        if (!pt || !part_changed(pt) || now - pt->last_ckpt < k->o.checkpoint_ms ||
            pt->out_ep[pt->ep ^ 1] != 0)
            continue;
        if (!best || pt->last_ckpt < best->last_ckpt) best = pt;
    }
    if (!best) return;
    w->pending_t0 = real_us();
    best->ck_off = best->next_off;
    best->ck_unlogged = best->unlogged;
    best->lab_ck = best->lab_next;
    vg_kv_t meta[2];
    int nm = ckpt_meta(k, meta, &best->ck_off, &best->lab_ck);
    vg_batch_clear(w->ckb);
    size_t left;
    if (vg_pipeline_checkpoint_cut(best->pl, meta, nm, w->ckb, &left) != 0) {
        set_fatal(w, "partition %d: checkpoint: out of memory", (int)best->id);
        return;
    }
    w->enc_us = real_us() - w->pending_t0;
    best->ep ^= 1;   /* what is produced from now on is after ck_off */
    w->pending = best;
    w->encoding = 1;
    w->emitting = 0;
    w->writing = 0;
    w->marked = 0;
    ckpt_step(w);   /* a first slice; with nothing outstanding, handed over at once */
}

/* Drops the in-memory state of every owned partition and resumes from the last
 * checkpoint (a produced message was lost). */
static int64_t resume_offset(worker_t *w, part_t *pt, int first, int *failed);

/* The failed deliveries since the last report, in one line (with the first one's
 * error), then `what` happened about them. */
static void dr_report(worker_t *w, const char *what) {
    if (w->dr_failed)
        logf_(w->k, 1, "worker %d: %" PRIu64 " deliver%s failed (the first %s); %s", w->index,
              w->dr_failed, w->dr_failed == 1 ? "y" : "ies", w->dr_first, what);
    else   /* a record refused as too large (logged by dr_cb) */
        logf_(w->k, 1, "worker %d: a delivery failed; %s", w->index, what);
    w->dr_failed = 0;
}

static void rewind_parts(worker_t *w) {
    vg_kafka_t *k = w->k;
    ckpt_finish(w, 1);
    int wm_failed = 0;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int32_t i = 0; i < w->cap; i++) {
        part_t *pt = w->parts[i];
        if (!pt) continue;
        vg_pipeline_free(pt->pl);
        pt->pl = NULL;
        char err[512];
        if (part_load(w, pt, err, sizeof(err)) != 0) {
            set_fatal(w, "partition %d: reloading after a failed delivery: %s", (int)i, err);
            break;
        }
        rd_kafka_topic_partition_list_add(l, k->topic_in, i)->offset =
            pt->next_off >= 0 ? resume_offset(w, pt, 0, &wm_failed) : RD_KAFKA_OFFSET_BEGINNING;
        if (k->topic_lab && i < k->nparts) {
            rd_kafka_topic_partition_list_add(l, k->topic_lab, i)->offset = lab_start(pt);
            atomic_store(&k->lab_applied[i], pt->lab_next);
        }
    }
    if (!w->fatal && l->cnt) {
        rd_kafka_error_t *e = rd_kafka_seek_partitions(w->c, l, 10000);
        if (e) {
            set_fatal(w, "seeking back after a failed delivery: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    w->need_rewind = 0;
    INC(w->ct.rewinds, 1);
    dr_report(w, "resumed from the last checkpoint (what was produced since is produced again)");
}

/* ---- rule changes ---- */

void vg_kafka_set_program(vg_kafka_t *k, vg_program_t *p, int64_t version) {
    vg_prog_ref(p);
    pthread_mutex_lock(&k->rmu);
    vg_prog_unref(k->o.prog);
    k->o.prog = p;
    k->o.pipeline.ruleset_version = version;
    atomic_fetch_add(&k->rules_gen, 1);
    pthread_mutex_unlock(&k->rmu);
}

void vg_kafka_set_lists(vg_kafka_t *k, vg_lists_t *lists) {
    if (lists) vg_lists_ref(lists);
    pthread_mutex_lock(&k->rmu);
    vg_lists_unref(k->o.pipeline.lists);
    k->o.pipeline.lists = lists;
    atomic_fetch_add(&k->rules_gen, 1);
    pthread_mutex_unlock(&k->rmu);
}

static int checkpoint(worker_t *w, int commit);

/* Applies the latest rules and lists to every owned partition (between batches), then
 * checkpoints the moved state. */
static void apply_rules(worker_t *w) {
    vg_kafka_t *k = w->k;
    if (atomic_load(&k->rules_gen) == w->rules_gen || w->fatal) return;
    pthread_mutex_lock(&k->rmu);
    uint64_t gen = atomic_load(&k->rules_gen);
    vg_program_t *p = vg_prog_ref(k->o.prog);
    vg_lists_t *l = k->o.pipeline.lists ? vg_lists_ref(k->o.pipeline.lists) : NULL;
    int64_t version = k->o.pipeline.ruleset_version;
    pthread_mutex_unlock(&k->rmu);
    ckpt_finish(w, 1);   /* no batch in flight across the swap */
    int moved = 0;
    for (int32_t i = 0; i < w->cap && !w->fatal; i++) {
        part_t *pt = w->parts[i];
        if (!pt || !pt->pl) continue;
        char err[512];
        if (vg_pipeline_program(pt->pl) != p) {
            if (vg_pipeline_set_program(pt->pl, p, err, sizeof(err)) != 0) {
                set_fatal(w, "partition %d: applying the new rules: %s", (int)i, err);
                break;
            }
            moved = 1;
        }
        vg_pipeline_set_lists(pt->pl, l);
        vg_pipeline_set_versions(pt->pl, version, -1);
    }
    w->rules_gen = gen;
    w->ruleset = version;
    vg_prog_unref(p);
    vg_lists_unref(l);
    if (moved && !w->fatal) {
        /* the moved state, with every partition's offset, written now: a restart finds
         * state made by the rules it runs */
        for (int32_t i = 0; i < w->cap; i++)
            if (w->parts[i]) w->parts[i]->unlogged++;
        checkpoint(w, 1);
    }
    logf_(k, 0, "worker %d: rules of ruleset %" PRId64 " applied", w->index, version);
}

/* Lag over the owned partitions from the watermarks of the last fetch responses;
 * -1 while a partition's watermarks are not known yet, and while no broker is reachable
 * (down_since: the cached watermarks are those from before, and the lag read 0 through
 * an outage). */
static void update_lag(worker_t *w) {
    int64_t lag = 0;
    uint32_t n = 0;
    int unknown = GET(w->down_since) != 0;
    for (int32_t i = 0; i < w->cap; i++) {
        part_t *pt = w->parts[i];
        if (!pt) continue;
        n++;
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(w->c, w->k->topic_in, i, &lo, &hi) == 0 && hi >= 0 &&
            lo >= 0) {
            int64_t at = pt->next_off >= 0 ? pt->next_off : lo;
            if (hi > at) lag += hi - at;
        } else {
            unknown = 1;
        }
    }
    SET(w->ct.lag, unknown ? -1 : lag);
    SET(w->ct.partitions, n);
}

/* The statistics of a processing thread's consumer (statistics.interval.ms, 1 s by
 * default), served by its queue in the thread itself: down_since is set when no broker
 * connection is up, cleared when one is. librdkafka's ALL_BROKERS_DOWN error does not
 * do: without an error_cb (2.0.2) it is only logged, never queued, and it needs every
 * known broker to have gone down, while with sparse connections those a consumer never
 * needed stay INIT. A consumer in a group keeps its coordinator's connection up
 * (heartbeats), so "none up" is an outage, not idleness. The internal broker (always
 * UP) and the group's own state ("up", lowercase) are not brokers. Parsed with jansson
 * once a second: nothing on the per-event path. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk;
    worker_t *w = opaque;
    json_t *j = json_loadb(json, len, 0, NULL);
    json_t *bs = j ? json_object_get(j, "brokers") : NULL;
    if (!json_is_object(bs)) {   /* not the statistics expected: change nothing */
        json_decref(j);
        return 0;
    }
    int up = 0;
    const char *name;
    json_t *b;
    json_object_foreach(bs, name, b) {
        const char *src = json_string_value(json_object_get(b, "source"));
        const char *st = json_string_value(json_object_get(b, "state"));
        if (st && strncmp(st, "UP", 2) == 0 && !(src && strcmp(src, "internal") == 0)) up = 1;
    }
    json_decref(j);
    int64_t since = GET(w->down_since), t = mono_ms();
    if (!up && !since) {
        SET(w->down_since, t);
        logf_(w->k, 0, "worker %d: no Kafka broker reachable (none connected)", w->index);
    } else if (up && since) {
        SET(w->down_since, 0);
        logf_(w->k, 0, "worker %d: Kafka brokers reachable again after %" PRId64 " s",
              w->index, (t - since + 500) / 1000);
    }
    return 0;
}

/* A synchronous checkpoint of pt with the changelog: its records produced and
 * acknowledged, then written to the store with the changelog position. 0; -1 when it
 * failed (fatal, or *rewind set: a delivery failed, or stopping without the broker). */
static int cl_checkpoint(worker_t *w, part_t *pt, const vg_kv_t *meta, int nm, int *rewind) {
    vg_batch_clear(w->ckb);
    if (vg_pipeline_checkpoint_begin(pt->pl, meta, nm, w->ckb) != 0) {
        set_fatal(w, "partition %d: checkpoint: out of memory", (int)pt->id);
        return -1;
    }
    int64_t off;
    memcpy(&off, meta->val, sizeof(off));
    int bad = cl_emit(w, pt, w->ckb, 1, off) != 0;   /* the outputs are acknowledged */
    if (!bad) {
        bad = wait_acks(w) < 0;
        rd_kafka_poll(w->p, 0);
        if (w->need_rewind) *rewind = bad = 1;
    }
    if (!bad) {
        int64_t np = pt->cl_last + 1;
        vg_batch_put(w->ckb, VG_CL_POS_KEY, strlen(VG_CL_POS_KEY), &np, sizeof(np));
        char err[512];
        if (vg_store_write(pt->store, w->ckb, w->k->o.sync, err, sizeof(err)) != 0) {
            set_fatal(w, "partition %d: checkpoint: %s", (int)pt->id, err);
            bad = 1;
        }
    }
    vg_pipeline_checkpoint_end(pt->pl, !bad);
    if (bad) cl_abandon(w, pt, w->ckb);
    else cl_done(pt);
    vg_batch_clear(w->ckb);
    return bad ? -1 : 0;
}

/* Checkpoints every changed partition after the broker acknowledged every message
 * produced before. 0, or -1 when it could not (the state stays at the previous
 * checkpoint, which is always safe). */
static int checkpoint(worker_t *w, int commit) {
    vg_kafka_t *k = w->k;
    ckpt_finish(w, 1);
    int any = 0;
    for (int32_t i = 0; i < w->cap; i++)
        if (w->parts[i] && part_changed(w->parts[i])) any = 1;
    if (!any || w->fatal) return 0;
    int64_t t0 = real_us();
    if (wait_acks(w) < 0) return -1;
    rd_kafka_poll(w->p, 0);
    if (w->need_rewind) {
        rewind_parts(w);
        return -1;
    }
    rd_kafka_topic_partition_list_t *l = commit ? rd_kafka_topic_partition_list_new(8) : NULL;
    int rewind = 0, failed = 0;
    for (int32_t i = 0; i < w->cap; i++) {
        part_t *pt = w->parts[i];
        if (!pt || !part_changed(pt)) continue;
        vg_kv_t meta[2];
        int nm = ckpt_meta(k, meta, &pt->next_off, &pt->lab_next);
        char err[512];
        if (k->topic_cl) {
            /* the changelog first (acknowledged), then the store with its position */
            if (cl_checkpoint(w, pt, meta, nm, &rewind) != 0) {
                failed = 1;
                break;
            }
        } else if (vg_pipeline_checkpoint(pt->pl, meta, nm, k->o.sync, err, sizeof(err)) != 0) {
            set_fatal(w, "partition %d: checkpoint: %s", (int)i, err);
            break;
        }
        pt->ckpt_off = pt->next_off;
        pt->in_stale = -1;
        pt->lab_ckpt = pt->lab_next;
        pt->ckpt_unlogged = pt->unlogged;
        pt->last_ckpt = mono_ms();
        if (l) rd_kafka_topic_partition_list_add(l, k->topic_in, i)->offset = pt->next_off;
    }
    if (l && l->cnt && !w->fatal) rd_kafka_commit(w->c, l, 1);
    if (l) rd_kafka_topic_partition_list_destroy(l);
    if (rewind) {
        rewind_parts(w);
        return -1;
    }
    uint64_t us = (uint64_t)(real_us() - t0);
    INC(w->ct.checkpoints, 1);
    INC(w->ct.ckpt_us_sum, us);
    if (us > GET(w->ct.ckpt_us_max)) SET(w->ct.ckpt_us_max, us);
    return w->fatal || failed ? -1 : 0;
}

/* ---- callbacks ---- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    worker_t *w = opaque;
    uintptr_t tag = (uintptr_t)m->_private;
    int kind = (int)(tag & 3), ep = (int)((tag >> 2) & 1);
    uint32_t pid = (uint32_t)((tag >> TAG_PART_SHIFT) & PART_NONE);
    part_t *pt = pid != PART_NONE && (int32_t)pid < w->cap ? w->parts[pid] : NULL;
    if (pt && pt->out_ep[ep] > 0) pt->out_ep[ep]--;
    if (kind == OUT_CL && pt && !m->err && m->offset > pt->cl_last) pt->cl_last = m->offset;
    if (m->err) {
        INC(w->ct.delivery_errors, 1);
        w->need_rewind = 1;
        if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
            m->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) {
            if (kind == OUT_CL) {
                /* state cannot be cut: producing it again would fail again, for ever */
                set_fatal(w, "the broker refused a %zu-byte changelog record for %s as too "
                             "large: raise the topic's max.message.bytes", m->len,
                          rd_kafka_topic_name(m->rkt));
                return;
            }
            /* the topic takes less than the producer: what the rewind produces again is
             * cut to fit below this size */
            size_t lim = m->len + m->key_len + REC_OVERHEAD;
            if (lim < w->out_max[kind]) w->out_max[kind] = lim > 1 ? lim - 1 : 0;
            logf_(w->k, 1, "worker %d: %s refused a %zu-byte record as too large; records "
                           "for it are cut to %zu bytes from now on (\"truncated\" names what "
                           "was left out)", w->index, rd_kafka_topic_name(m->rkt), m->len,
                  w->out_max[kind] > REC_OVERHEAD ? w->out_max[kind] - REC_OVERHEAD : 0);
            return;
        }
        /* one line per rewind (rewind_parts), not one per message: an outage of a few
         * seconds failed thousands of them (6,157 lines for one of 8 s) */
        if (w->dr_failed++ == 0)
            snprintf(w->dr_first, sizeof w->dr_first, "to %.200s: %.100s",
                     rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        return;
    }
    if (kind != OUT_ALERT) return;
    INC(w->ct.alerts_acked, 1);
    int64_t ts_ms = (int64_t)(tag >> (TAG_PART_SHIFT + PART_BITS));
    if (ts_ms <= 0) return;
    int64_t us = real_us() - ts_ms * 1000;
    if (us < 0) us = 0;
    double ms = (double)us / 1000.0;
    int b = 0;
    while (b < NB - 1 && ms > vg_kafka_latency_bounds_ms[b]) b++;
    INC(w->ct.lat[b], 1);
    INC(w->ct.lat_count, 1);
    INC(w->ct.lat_sum_us, (uint64_t)us);
}

/* Where a partition without a checkpoint starts: its low watermark, asked of the
 * leader here. Assigned as RD_KAFKA_OFFSET_BEGINNING instead, librdkafka (2.0.2) looks
 * the offset up itself and, when the partition's leader connection is not up yet,
 * retries only 500 ms later: on a fresh group some partitions then started half a
 * second after the others (bench_kafka's end-to-end rate came out 340k or 600k events/s
 * depending on it). Falls back to RD_KAFKA_OFFSET_BEGINNING when the query fails (2 s),
 * and for the rest of the assignment after a failure, so that a broker outage during a
 * rebalance costs the callback one timeout, not one per partition; messages deleted
 * in between are covered by auto.offset.reset=earliest. */
static int64_t start_offset(worker_t *w, int32_t partition, int *failed) {
    int64_t lo = -1, hi = -1;
    if (*failed) return RD_KAFKA_OFFSET_BEGINNING;   /* one timeout per assignment at most */
    if (rd_kafka_query_watermark_offsets(w->c, w->k->topic_in, partition, &lo, &hi, 2000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        lo < 0) {
        *failed = 1;
        return RD_KAFKA_OFFSET_BEGINNING;
    }
    return lo;
}

/* The input partition ends before pt's checkpoint (offsets are not the topic's
 * identity: a topic deleted and created again, or the embedded broker, empty at each
 * start, numbers its messages from 0 again): its messages are read from `from`, its
 * start, instead of being dropped as processed already. The state stays (it is the
 * accounts' state; an event sent again is a duplicate to it). */
static void in_restart(worker_t *w, part_t *pt, int64_t from, const char *why) {
    logf_(w->k, 1, "worker %d: %s [%d] %s, before the offset %" PRId64 " of the partition's "
          "checkpoint (recreated?): its messages are read from offset %" PRId64 " (the "
          "partition's state is kept; events sent again are duplicates to it)",
          w->index, w->k->topic_in, (int)pt->id, why, pt->next_off, from);
    pt->in_stale = pt->next_off;
    pt->in_from = from;
    pt->in_max = -1;   /* other messages now */
    pt->next_off = from;
    pt->resync = 1;
}

/* Where an assigned or rewound partition resumes: its checkpoint's offset, unless the
 * partition ends before it (in_restart; asked of the leader, one timeout per
 * assignment at most, as start_offset); without a checkpoint, start_offset. With the
 * embedded broker, a partition's first assignment in this process never resumes at a
 * checkpoint's offset: that broker starts empty, so the offset is a previous run's
 * (the check alone missed it when the new run's producers had already passed it). */
static int64_t resume_offset(worker_t *w, part_t *pt, int first, int *failed) {
    vg_kafka_t *k = w->k;
    if (pt->next_off < 0) return start_offset(w, pt->id, failed);
    if (pt->in_stale >= 0 && pt->next_off == pt->in_stale) {   /* a rewind to that checkpoint */
        pt->next_off = pt->in_from;
        return pt->next_off;
    }
    int64_t lo = -1, hi = -1;
    if (k->o.embedded && first) {
        if (rd_kafka_query_watermark_offsets(w->c, k->topic_in, pt->id, &lo, &hi, 2000) != 0 ||
            lo < 0)
            lo = 0;
        char why[160];
        snprintf(why, sizeof why, "is on the embedded broker, started empty with this process "
                 "(it ends at offset %" PRId64 ")", hi);
        in_restart(w, pt, lo, why);
        return lo;
    }
    if (*failed ||
        rd_kafka_query_watermark_offsets(w->c, k->topic_in, pt->id, &lo, &hi, 2000) != 0 ||
        lo < 0 || hi < 0) {
        *failed = 1;   /* not known: the check in handle_msg sees it */
        return pt->next_off;
    }
    if (hi >= pt->next_off) return pt->next_off;
    char why[80];
    snprintf(why, sizeof why, "ends at offset %" PRId64, hi);
    in_restart(w, pt, lo, why);
    return lo;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    worker_t *w = opaque;
    vg_kafka_t *k = w->k;
    /* NULL while the consumer is between groups (closing during a rebalance) */
    const char *proto = rd_kafka_rebalance_protocol(rk);
    int coop = proto && strcmp(proto, "COOPERATIVE") == 0;
    /* with a labels topic, the labels partition of each input partition goes with it
     * (assigned outside the group's assignment, at the offset in its checkpoint) */
    rd_kafka_topic_partition_list_t *all = NULL;
    if (k->topic_lab) {
        all = rd_kafka_topic_partition_list_new(parts->cnt * 2 + 1);
        for (int i = 0; i < parts->cnt; i++)
            if (strcmp(parts->elems[i].topic, k->topic_lab) != 0)
                rd_kafka_topic_partition_list_add(all, parts->elems[i].topic,
                                                  parts->elems[i].partition);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        ckpt_finish(w, 1);   /* no pipeline with the helper while partitions change hands */
        int wm_failed = 0;
        for (int i = 0; i < parts->cnt && !w->fatal; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            if (strcmp(tp->topic, k->topic_in) != 0) continue;
            char e[512];
            part_t *pt = part_open(w, tp->partition, e, sizeof(e));
            if (!pt && GET(k->stop)) {
                /* assigned while stopping (another member left at the same time): not
                 * taken, and not a failure; its store keeps whole checkpoints only, and
                 * the next owner restores it (its messages here are skipped as stale) */
                logf_(k, 0, "worker %d: %s [%d] assigned while stopping: not taken (%s)",
                      w->index, tp->topic, (int)tp->partition, e);
                continue;
            }
            if (!pt) {
                set_fatal(w, "partition %d: %s", (int)tp->partition, e);
                break;
            }
            if (part_put(w, pt) != 0) {
                part_free(pt);
                set_fatal(w, "out of memory");
                break;
            }
            if (cl_after_assign(w, pt) != 0) break;   /* fatal */
            if (k->owner && tp->partition < k->nparts)
                atomic_store(&k->owner[tp->partition], w->index);
            if (k->o.on_assign) k->o.on_assign(k->o.on_assign_ctx, tp->partition);
            int first = k->taken && tp->partition < k->nparts &&
                        !atomic_exchange(&k->taken[tp->partition], 1);
            if (k->in_max && tp->partition < k->nparts)
                pt->in_max = atomic_load(&k->in_max[tp->partition]);
            int had = pt->next_off >= 0;
            tp->offset = resume_offset(w, pt, first, &wm_failed);
            if (pt->in_stale >= 0 && all && tp->partition < k->nparts && k->o.embedded &&
                first) {
                pt->lab_next = 0;   /* the labels topic is new as well */
                pt->lab_resync = 1;
            }
            if (all && tp->partition < k->nparts) {
                rd_kafka_topic_partition_list_add(all, k->topic_lab, tp->partition)->offset =
                    lab_start(pt);
                atomic_store(&k->lab_applied[tp->partition], pt->lab_next);
                atomic_store(&k->lab_waiting[tp->partition], 0);
            }
            logf_(k, 0, "worker %d: assigned %s [%d] at offset %" PRId64 "%s", w->index,
                  tp->topic, (int)tp->partition, tp->offset,
                  pt->in_stale >= 0 ? " (its start; the checkpoint's offset is past its end)"
                  : had                                     ? " (its checkpoint)"
                  : tp->offset == RD_KAFKA_OFFSET_BEGINNING ? " (the beginning; no checkpoint)"
                                                          : " (its low watermark; no checkpoint)");
        }
        if (all) {   /* the input partitions with their offsets, then the labels' */
            for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *x = rd_kafka_topic_partition_list_find(
                    all, parts->elems[i].topic, parts->elems[i].partition);
                if (x) x->offset = parts->elems[i].offset;
            }
        }
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, all ? all : parts);
            if (e) {
                logf_(k, 1, "worker %d: assigning partitions: %s", w->index,
                      rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
            }
        } else {
            rd_kafka_assign(rk, all ? all : parts);
        }
        if (all) {   /* a labels partition paused before a revocation is not paused now */
            rd_kafka_topic_partition_list_t *lp = rd_kafka_topic_partition_list_new(all->cnt);
            for (int i = 0; i < all->cnt; i++)
                if (strcmp(all->elems[i].topic, k->topic_lab) == 0)
                    rd_kafka_topic_partition_list_add(lp, k->topic_lab, all->elems[i].partition);
            if (lp->cnt) rd_kafka_resume_partitions(rk, lp);
            rd_kafka_topic_partition_list_destroy(lp);
        }
        update_lag(w);
        SET(w->ready, 1);
        SET(w->unassigned_since, 0);
    } else {
        /* until the next assignment (an empty one too) this thread consumes nothing:
         * the whole group is rebalancing (eager protocol) or it lost its partitions */
        if ((!coop || rd_kafka_assignment_lost(rk)) && !GET(w->unassigned_since))
            SET(w->unassigned_since, mono_ms());
        /* revoked (or lost): checkpoint, then hand the stores over by closing them; a
         * partition that could not be checkpointed resumes at its last checkpoint */
        if (checkpoint(w, err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) != 0 && !w->fatal)
            logf_(k, 1, "worker %d: revoked partitions resume at their last checkpoint",
                  w->index);
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            if (strcmp(tp->topic, k->topic_in) != 0 || tp->partition >= w->cap) continue;
            if (k->owner && tp->partition < k->nparts)
                atomic_store(&k->owner[tp->partition], -1);
            if (k->in_max && tp->partition < k->nparts && w->parts[tp->partition])
                atomic_store(&k->in_max[tp->partition], w->parts[tp->partition]->in_max);
            if (all && tp->partition < k->nparts) {
                rd_kafka_topic_partition_list_add(all, k->topic_lab, tp->partition);
                atomic_store(&k->lab_applied[tp->partition], -1);
                atomic_store(&k->lab_waiting[tp->partition], 0);
            }
            part_free(w->parts[tp->partition]);
            w->parts[tp->partition] = NULL;
            logf_(k, 0, "worker %d: revoked %s [%d]", w->index, tp->topic, (int)tp->partition);
        }
        if (coop) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, all ? all : parts);
            if (e) rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
        update_lag(w);
    }
    if (all) rd_kafka_topic_partition_list_destroy(all);
}

/* ---- per message ---- */

/* Produces one record to partition `tp` of t (RD_KAFKA_PARTITION_UA: by key), waiting
 * while the producer's queue is full. 0 or -1. */
static int produce_to(worker_t *w, part_t *pt, rd_kafka_topic_t *t, int32_t tp,
                      const void *val, size_t len, const void *key, size_t klen, int kind,
                      int64_t ts_ms) {
    uint32_t pid = pt->id >= 0 && pt->id < (int32_t)PART_NONE ? (uint32_t)pt->id : PART_NONE;
    uint64_t ts = ts_ms > 0 && ts_ms < (INT64_C(1) << 42) ? (uint64_t)ts_ms : 0;
    uintptr_t tag = (uintptr_t)(ts << (TAG_PART_SHIFT + PART_BITS)) |
                    (uintptr_t)pid << TAG_PART_SHIFT | (uintptr_t)pt->ep << 2 | (uintptr_t)kind;
    for (;;) {
        if (rd_kafka_produce(t, tp, RD_KAFKA_MSG_F_COPY, (void *)val, len,
                             key, klen, (void *)tag) == 0) {
            pt->out_ep[pt->ep]++;
            return 0;
        }
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && kind != OUT_CL)
            return -2;   /* produce() cuts it to fit */
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {   /* cl_put's chunks did not fit */
            set_fatal(w, "a %zu-byte changelog record does not fit in message.max.bytes "
                         "(%zu): raise -X producer.message.max.bytes (docs/kafka.md, Limits)",
                      len + klen, w->out_max[OUT_CL]);
            return -1;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            set_fatal(w, "producing to %s: %s", rd_kafka_topic_name(t), rd_kafka_err2str(e));
            return -1;
        }
        INC(w->ct.backpressure, 1);
        rd_kafka_poll(w->p, 10);
        if (GET(w->k->stop)) {
            if (!w->stop_at) w->stop_at = mono_ms();
            if (mono_ms() - w->stop_at > STOP_GRACE_MS) {
                set_fatal(w, "the producer's queue stayed full while stopping");
                return -1;
            }
        }
    }
}

/* Produces an alert, decision or dead letter, keyed: one larger than its topic takes
 * (w->out_max) is cut to fit first (vg_kafka_fit_record: the explanation is left out
 * and the record says so), so that a single huge record can never stop the partition
 * (it was fatal at every restart: a poison pill). 0 or -1 (fatal). */
static int produce(worker_t *w, part_t *pt, rd_kafka_topic_t *t, const void *val, size_t len,
                   const void *key, size_t klen, int kind, int64_t ts_ms) {
    for (int attempt = 0; attempt < 4; attempt++) {
        const void *v = val;
        size_t vl = len, room = w->out_max[kind] > klen + REC_OVERHEAD
                                    ? w->out_max[kind] - klen - REC_OVERHEAD
                                    : 0;
        if (vl > room) {
            int rc = kind == OUT_DLQ ? -1 : vg_kafka_fit_record(val, len, room, &w->fit);
            if (rc) {
                set_fatal(w, "a %zu-byte record for %s does not fit in %zu bytes even cut "
                             "down%s", len, rd_kafka_topic_name(t), room,
                          rc == VG_ENOMEM ? " (out of memory)" : "");
                return -1;
            }
            v = w->fit.p;
            vl = w->fit.len;
            INC(w->ct.truncated, 1);
        }
        int rc = produce_to(w, pt, t, RD_KAFKA_PARTITION_UA, v, vl, key, klen, kind, ts_ms);
        if (rc != -2) return rc;
        /* librdkafka counts more than REC_OVERHEAD: aim lower */
        w->out_max[kind] = vl + klen + REC_OVERHEAD > 1024 ? vl + klen + REC_OVERHEAD - 1024 : 0;
    }
    set_fatal(w, "producing to %s: %s", rd_kafka_topic_name(t),
              rd_kafka_err2str(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
    return -1;
}

/* ---- changelog output (kafka_int.h) ---- */

static int cl_put(worker_t *w, part_t *pt, const void *k, size_t kl, const void *v, size_t vl) {
    size_t over = kl + 4 + 2 * (size_t)REC_OVERHEAD,
           room = w->out_max[OUT_CL] > over ? w->out_max[OUT_CL] - over : 0;
    if (v && vl > room && room >= 1024) {
        /* larger than a record may be: in chunks, then the header (kafka_int.h) */
        size_t n = (vl + room - 1) / room, pl = strlen(VG_CL_CHUNK_PREFIX);
        unsigned char *ck = malloc(pl + 4 + kl);
        if (!ck) {
            set_fatal(w, "out of memory");
            return -1;
        }
        memcpy(ck, VG_CL_CHUNK_PREFIX, pl);
        memcpy(ck + pl + 4, k, kl);
        for (size_t i = 0; i < n; i++) {
            vg_le_store32(ck + pl, (uint32_t)i);
            size_t off = i * room, len = vl - off < room ? vl - off : room;
            if (produce_to(w, pt, w->t_cl, pt->id, (const char *)v + off, len, ck, pl + 4 + kl,
                           OUT_CL, 0) < 0) {
                free(ck);
                return -1;
            }
        }
        free(ck);
        unsigned char hdr[VG_CL_CHUNK_HDR];
        memcpy(hdr, VG_CL_CHUNK_MAGIC, 8);
        vg_le_store32(hdr + 8, (uint32_t)n);
        vg_le_store64(hdr + 12, (uint64_t)vl);
        if (produce_to(w, pt, w->t_cl, pt->id, hdr, sizeof hdr, k, kl, OUT_CL, 0) < 0) return -1;
        INC(w->ct.cl_records, n + 1);
        INC(w->ct.cl_chunked, 1);
        return 0;
    }
    if (produce_to(w, pt, w->t_cl, pt->id, v, vl, k, kl, OUT_CL, 0) < 0) return -1;
    INC(w->ct.cl_records, 1);
    return 0;
}

typedef struct {
    worker_t *w;
    part_t *pt;
    vg_buf_t *keys;   /* collect the keys instead of producing (NULL: produce) */
    int err;
    /* a slice (cl_emit_step): the operations before `skip` were produced by earlier
     * slices; produced until budget_us after t0 (0: no limit), then `stopped` */
    size_t i, skip;
    int64_t t0, budget_us;
    int stopped;
} emit_t;

static void emit_op(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    emit_t *e = ctx;
    size_t i = e->i++;
    if (e->err || e->stopped || i < e->skip || vg_cl_is_key(k, kl, VG_CL_MARK_KEY) ||
        vg_cl_is_key(k, kl, VG_CL_POS_KEY))
        return;
    if (e->keys) {
        if (vg_le_put_key(e->keys, k, kl) != 0) e->err = VG_ENOMEM;
        return;
    }
    if (e->budget_us && (i - e->skip) % 16 == 15 && real_us() - e->t0 >= e->budget_us) {
        e->stopped = 1;
        e->skip = i;   /* the next slice starts here */
        return;
    }
    if (cl_put(e->w, e->pt, k, kl, v, vl) != 0) e->err = -1;
}

/* The checkpoint marker of pt at input offset `off`: produced only once every output
 * of the events before `off` is acknowledged (a restore elsewhere resumes at `off`).
 * 0 or -1 (fatal). */
static int cl_mark(worker_t *w, part_t *pt, int64_t off) {
    return cl_put(w, pt, VG_CL_MARK_KEY, strlen(VG_CL_MARK_KEY), &off, sizeof(off));
}

/* Produces a checkpoint's records to pt's changelog partition: wipe, redo records, the
 * batch's operations; then, when `mark`, the marker with `off`. 0 or -1 (fatal). */
/* The wipe and redo records that come before a checkpoint's own. 0 or -1 (fatal). */
static int cl_emit_head(worker_t *w, part_t *pt) {
    if (pt->cl_wipe && cl_put(w, pt, VG_CL_WIPE_KEY, strlen(VG_CL_WIPE_KEY), "1", 1) != 0)
        return -1;
    vg_buf_t v;
    vg_buf_init(&v);
    vg_le_rd_t rd = {(const unsigned char *)pt->cl_redo.p, pt->cl_redo.len, 0, 0};
    size_t n;
    for (const void *key; (key = vg_le_get_key(&rd, &n)) != NULL;) {
        int r = vg_store_get(pt->store, key, n, &v);
        if (r != 0 && r != VG_ENOTFOUND) {
            vg_buf_deinit(&v);
            set_fatal(w, "partition %d: reading the state: %s", (int)pt->id, vg_strerror(r));
            return -1;
        }
        if (cl_put(w, pt, key, n, r == 0 ? (v.p ? v.p : "") : NULL, r == 0 ? v.len : 0) != 0) {
            vg_buf_deinit(&v);
            return -1;
        }
    }
    vg_buf_deinit(&v);
    return 0;
}

static int cl_emit(worker_t *w, part_t *pt, vg_batch_t *b, int mark, int64_t off) {
    if (cl_emit_head(w, pt) != 0) return -1;
    emit_t e = {.w = w, .pt = pt};
    vg_batch_iterate(b, emit_op, &e);
    pt->ck_cl = 1;
    if (e.err) return -1;
    return mark ? cl_mark(w, pt, off) : 0;
}

/* One slice of an asynchronous checkpoint's changelog records (cl_emit without the
 * marker), at most ENC_BUDGET_US of producing, so that the thread answers its
 * requests and goes on with the stream in between (all at once, a checkpoint of
 * thousands of accounts held it for tens of ms). w->cl_next: the next operation of the
 * batch. 0 (*done when every record is produced) or -1 (fatal). */
static int cl_emit_step(worker_t *w, part_t *pt, vg_batch_t *b, int *done) {
    if (!pt->ck_cl) {
        /* records may reach the log from now on: given up, the keys are redone */
        pt->ck_cl = 1;
        if (cl_emit_head(w, pt) != 0) return -1;
    }
    emit_t e = {.w = w, .pt = pt, .skip = w->cl_next, .t0 = real_us(),
                .budget_us = ENC_BUDGET_US};
    vg_batch_iterate(b, emit_op, &e);
    if (e.err) return -1;
    w->cl_next = e.skip;
    *done = !e.stopped;
    return 0;
}

/* A checkpoint whose changelog records were produced was given up: its keys are
 * produced again with their stored values before the next checkpoint's records (they
 * may have reached the log, after the last marker). */
static void cl_abandon(worker_t *w, part_t *pt, vg_batch_t *b) {
    if (!pt->ck_cl) return;
    pt->ck_cl = 0;
    emit_t e = {.w = w, .pt = pt, .keys = &pt->cl_redo};
    vg_batch_iterate(b, emit_op, &e);
    if (e.err) set_fatal(w, "out of memory");
}

/* A checkpoint with its changelog records was written: nothing to redo. */
static void cl_done(part_t *pt) {
    if (!pt->ck_cl) return;
    pt->ck_cl = 0;
    pt->cl_wipe = 0;
    vg_buf_clear(&pt->cl_redo);
}

static int seed_op(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    emit_t *e = ctx;
    if (vg_cl_is_key(k, kl, VG_CL_MARK_KEY) || vg_cl_is_key(k, kl, VG_CL_POS_KEY)) return 0;
    return cl_put(e->w, e->pt, k, kl, v, vl) != 0 ? -1 : 0;
}

/* After an assignment: the redo records of an unfinished checkpoint found by the
 * restore, or (seed) the whole local state, which the changelog lacks, as one
 * checkpoint. */
static int cl_after_assign(worker_t *w, part_t *pt) {
    vg_kafka_t *k = w->k;
    if (!pt->cl_seed) return 0;
    pt->cl_seed = 0;
    int64_t off = -1;
    if (vg_cl_get_i64(pt->store, VG_CL_MARK_KEY, &off) != 0) return 0;
    emit_t e = {.w = w, .pt = pt};
    if (cl_put(w, pt, VG_CL_WIPE_KEY, strlen(VG_CL_WIPE_KEY), "1", 1) != 0) return -1;
    int r = vg_store_scan(pt->store, "", 0, seed_op, &e);
    if (r != 0) {
        if (!w->fatal) set_fatal(w, "partition %d: reading the state", (int)pt->id);
        return -1;
    }
    if (cl_put(w, pt, VG_CL_MARK_KEY, strlen(VG_CL_MARK_KEY), &off, sizeof(off)) != 0) return -1;
    if (wait_acks(w) < 0 || w->need_rewind) {
        /* the next assignment seeds again (no position written) */
        set_fatal(w, "partition %d: the changelog did not take the local state", (int)pt->id);
        return -1;
    }
    int64_t np = pt->cl_last + 1;
    vg_batch_clear(w->ckb);
    vg_batch_put(w->ckb, VG_CL_POS_KEY, strlen(VG_CL_POS_KEY), &np, sizeof(np));
    char err[512];
    if (vg_store_write(pt->store, w->ckb, k->o.sync, err, sizeof(err)) != 0) {
        vg_batch_clear(w->ckb);
        set_fatal(w, "partition %d: %s", (int)pt->id, err);
        return -1;
    }
    vg_batch_clear(w->ckb);
    vg_buf_clear(&pt->cl_redo);   /* the seed covers every key */
    pt->cl_wipe = 0;
    INC(w->ct.cl_seeds, 1);
    return 0;
}

/* The rejection line for an event ahead of the clock, into w->out. */
static void handle_msg(worker_t *w, part_t *pt, const rd_kafka_message_t *m);
static int handle_label(worker_t *w, part_t *pt, rd_kafka_message_t *m);
static void lab_release(worker_t *w, part_t *pt);

/* The output of a decided event (decision line d[0..dl), no newline): its alert when it
 * raised one, its decision when they are published. 0 or -1 (fatal). */
static int emit_decided(worker_t *w, part_t *pt, const char *d, size_t dl, int64_t ts_msg) {
    const char *id = NULL, *acc = NULL;
    size_t il = 0, al = 0;
    if (vg_kafka_dec_id_account(d, dl, &id, &il, &acc, &al) != 0) {
        set_fatal(w, "unexpected decision line");
        return -1;
    }
    /* keyed by the account (SPEC section 7), whatever the input message's key was */
    const char *key;
    size_t klen;
    vg_pipeline_last_account(pt->pl, &key, &klen);
    if (vg_pipeline_last_alert(pt->pl)) {
        int act, sev;
        vg_pipeline_last_decision(pt->pl, &act, &sev);
        char aid[33];
        vg_kafka_alert_id(acc, al, id, il, w->ruleset, aid);
        vg_buf_t *r = &w->rec;
        vg_buf_clear(r);
        int rc = vg_buf_append(r, d, dl - 1);   /* without the closing brace */
        if (!rc) rc = vg_buf_puts(r, ",\"alert_id\":\"");
        if (!rc) rc = vg_buf_append(r, aid, 32);
        if (!rc) rc = vg_buf_puts(r, "\",\"severity\":\"");
        if (!rc) rc = vg_buf_puts(r, sev < 0 ? "medium" : vg_severity_name(sev));
        if (!rc) rc = vg_buf_puts(r, "\"}");
        if (rc) {
            set_fatal(w, "out of memory");
            return -1;
        }
        if (produce(w, pt, w->t_alerts, r->p, r->len, key, klen, OUT_ALERT, ts_msg) < 0) return -1;
        INC(w->ct.alerts, 1);
    }
    if (w->t_dec) {
        if (produce(w, pt, w->t_dec, d, dl, key, klen, OUT_DECISION, ts_msg) < 0) return -1;
        INC(w->ct.decisions_out, 1);
    }
    return 0;
}

/* Processes one consumed message. Returns 0: the caller destroys it. */
#define PF_AHEAD 8

/* A message's prefetch hint (engine/state.h): the state of its partition's pipeline
 * and its account's hash, found once at stage 0 (NULL: not owned, or no account found
 * simply) and used by the later stages. */
typedef struct {
    vg_state_t *st;
    uint64_t h;
} pfh_t;

static void prefetch_msg(worker_t *w, const rd_kafka_message_t *m, pfh_t *p, int stage) {
    if (stage == 0) {
        p->st = NULL;
        if (m->err || !m->payload || m->partition < 0 || m->partition >= w->cap) return;
        part_t *pt = w->parts[m->partition];
        const char *a = NULL;
        uint32_t al;
        if (!pt || !pt->pl || !(al = vg_peek_account(m->payload, m->len, &a))) return;
        p->st = vg_pipeline_state(pt->pl);
        p->h = vg_state_hash(a, al);
    }
    if (p->st) vg_prefetch_event(p->st, p->h, m->payload, m->len, stage);
}

/* Requests for an account (scores, account views and operations) go to the partition
 * its events arrive on, which the producers' partitioner chose: Kafka's Java default
 * (murmur2) or librdkafka's (CRC32, as kcat and the librdkafka-based clients). One
 * message key in 64 is checked against both; once 16 discriminating keys say CRC32 four
 * times more often than murmur2, requests follow CRC32 (and back the same way). Keys
 * that match neither (a custom partitioner) are logged once: such accounts' requests
 * go to the wrong partition. */
static void route_sample(worker_t *w, const rd_kafka_message_t *m) {
    vg_kafka_t *k = w->k;
    if (k->nparts <= 1) return;
    int32_t a = vg_kafka_partition(m->key, m->key_len, k->nparts, 0);
    int32_t b = vg_kafka_partition(m->key, m->key_len, k->nparts, 1);
    if (a == b) return;
    uint32_t mm = a == m->partition ? atomic_fetch_add(&k->keys_mm, 1) + 1 : atomic_load(&k->keys_mm);
    uint32_t crc = b == m->partition ? atomic_fetch_add(&k->keys_crc, 1) + 1 : atomic_load(&k->keys_crc);
    uint32_t no = a != m->partition && b != m->partition ? atomic_fetch_add(&k->keys_neither, 1) + 1
                                                         : atomic_load(&k->keys_neither);
    int was = atomic_load(&k->route_crc);
    if (!was && crc >= 16 && crc > 4 * mm) {
        atomic_store(&k->route_crc, 1);
        logf_(k, 1, "the producers partition %s by CRC32 of the key (librdkafka's default "
                    "partitioner), not murmur2: requests for an account now go to its CRC32 "
                    "partition (`vigil replay --partitions` splits by murmur2)", k->topic_in);
    } else if (was && mm >= 16 && mm > 4 * crc) {
        atomic_store(&k->route_crc, 0);
        logf_(k, 1, "the producers partition %s by murmur2 of the key again: requests follow",
              k->topic_in);
    }
    if (no >= 16 && no > 4 * (mm + crc) && !atomic_exchange(&k->warned_neither, 1))
        logf_(k, 1, "the keys of %s are partitioned neither by murmur2 nor by CRC32: HTTP "
                    "requests for an account may go to a partition that does not hold it",
              k->topic_in);
}

static int handle(worker_t *w, rd_kafka_message_t *m) {
    vg_kafka_t *k = w->k;
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            logf_(k, 0, "worker %d: consumer: %s", w->index, rd_kafka_message_errstr(m));
        return 0;
    }
    part_t *pt = m->partition >= 0 && m->partition < w->cap ? w->parts[m->partition] : NULL;
    if (m->rkt != w->rkt_in && k->topic_lab) {
        const char *tn = rd_kafka_topic_name(m->rkt);
        if (strcmp(tn, k->topic_lab) == 0) return handle_label(w, pt, m);
        if (strcmp(tn, k->topic_in) == 0) w->rkt_in = m->rkt;
    }
    if (m->key && (w->keys_seen++ & 63) == 0) route_sample(w, m);
    handle_msg(w, pt, m);
    return 0;
}

/* 1 when pt has processed the input produced before a label produced at lts (Kafka
 * timestamp, ms): an input message at least as new was processed, or the input partition
 * is caught up (nothing left up to the high watermark last seen). */
static int lab_ready(worker_t *w, const part_t *pt, int64_t lts) {
    if (lts <= 0 || pt->in_ts >= lts) return 1;
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(w->c, w->k->topic_in, pt->id, &lo, &hi) != 0 || hi < 0)
        return 0;
    return (pt->next_off >= 0 ? pt->next_off : lo) >= hi;
}

/* Pauses (pause = 1) the labels partition of pt, sought to `off` (what it reads after
 * the resume), or resumes it (0). */
static void lab_pause(worker_t *w, part_t *pt, int64_t off, int pause) {
    vg_kafka_t *k = w->k;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, k->topic_lab, pt->id)->offset = off;
    if (pause) {
        rd_kafka_pause_partitions(w->c, l);
        rd_kafka_error_t *e = rd_kafka_seek_partitions(w->c, l, 0);   /* asynchronous */
        if (e) rd_kafka_error_destroy(e);
        pt->lab_resync = 1;   /* what was fetched after it before the seek is skipped */
    } else {
        rd_kafka_resume_partitions(w->c, l);
    }
    rd_kafka_topic_partition_list_destroy(l);
    pt->lab_paused = pause;
}
/* Applies one record of the labels topic to pt's pipeline (the account's later events
 * see it); lab_next moves past it. */
static void lab_apply(worker_t *w, part_t *pt, const rd_kafka_message_t *m) {
    vg_kafka_t *k = w->k;
    json_error_t je;
    json_t *j = m->payload ? json_loadb(m->payload, m->len, 0, &je) : NULL;
    json_t *id = json_object_get(j, "id"), *acct = json_object_get(j, "account"),
           *fraud = json_object_get(j, "fraud");
    if (!json_is_string(id) || !json_is_string(acct) || !json_is_boolean(fraud) ||
        json_string_length(id) == 0 || json_string_length(acct) == 0) {
        INC(w->ct.labels_invalid, 1);
        logf_(k, 1, "worker %d: %s [%d] offset %" PRId64 ": not a label (an object with "
              "\"id\", \"account\" and \"fraud\"): skipped", w->index, k->topic_lab,
              (int)m->partition, m->offset);
    } else {
        vg_label_t lb = {json_string_value(id), json_string_length(id),
                         json_string_value(acct), json_string_length(acct),
                         json_is_true(fraud), INT64_MIN};
        if (vg_pipeline_label(pt->pl, &lb) != 0) {
            json_decref(j);
            set_fatal(w, "%s [%d] offset %" PRId64 ": out of memory", k->topic_lab,
                      (int)m->partition, m->offset);
            return;
        }
        INC(w->ct.labels, 1);
        if (k->o.on_label) k->o.on_label(k->o.on_label_ctx, &lb, m->payload, m->len);
    }
    json_decref(j);
    pt->lab_next = m->offset + 1;
    if (m->partition < k->nparts) atomic_store(&k->lab_applied[m->partition], pt->lab_next);
}

/* Applies the first waiting label; when none waits any more, its partition reads on. */
static void lab_release(worker_t *w, part_t *pt) {
    vg_kafka_t *k = w->k;
    rd_kafka_message_t *m = pt->lab_held[0];
    memmove(pt->lab_held, pt->lab_held + 1, (size_t)(--pt->lab_nheld) * sizeof *pt->lab_held);
    lab_apply(w, pt, m);
    rd_kafka_message_destroy(m);
    if (pt->lab_nheld) {
        pt->lab_next = pt->lab_held[0]->offset;
        pt->lab_wait_ts = rd_kafka_message_timestamp(pt->lab_held[0], NULL);
        return;
    }
    if (pt->id < k->nparts) atomic_store(&k->lab_waiting[pt->id], 0);
    if (pt->lab_paused) lab_pause(w, pt, pt->lab_next, 0);
}

/* Releases the waiting labels whose input has caught up (every 100 ms). */
static void lab_resume_ready(worker_t *w) {
    for (int32_t i = 0; i < w->cap && !w->fatal; i++) {
        part_t *pt = w->parts[i];
        while (pt && pt->lab_nheld && !w->fatal && lab_ready(w, pt, pt->lab_wait_ts))
            lab_release(w, pt);
    }
}

/* A record of the labels topic: applied at once when pt has processed the input
 * produced before it and no label waits, else kept (lab_held); its offset is
 * checkpointed with the state. Returns 1 when it keeps m (not to be destroyed by the
 * caller). */
static int handle_label(worker_t *w, part_t *pt, rd_kafka_message_t *m) {
    vg_kafka_t *k = w->k;
    if (!pt) return 0;   /* not owned */
    if (pt->lab_nheld) {   /* labels wait: this one joins them, in order */
        int64_t want = pt->lab_held[pt->lab_nheld - 1]->offset + 1;
        if (m->offset < want || pt->lab_paused) return 0;   /* seen, or read again later */
        if (m->offset > want) {   /* fetched before a seek: wait for `want` */
            int64_t lo = -1, hi = -1;
            rd_kafka_get_watermark_offsets(w->c, k->topic_lab, m->partition, &lo, &hi);
            if (lo < 0 || lo <= want) return 0;
        }
        if (pt->lab_nheld >= LAB_HOLD_MAX) {
            INC(w->ct.labels_waits, 1);
            lab_pause(w, pt, m->offset, 1);   /* read again once some are applied */
            return 0;
        }
    } else {
        if (m->offset < pt->lab_next) {   /* applied already, unless the topic ends before */
            int64_t lo = -1, hi = -1;
            rd_kafka_get_watermark_offsets(w->c, k->topic_lab, m->partition, &lo, &hi);
            if (hi < 0 || hi >= pt->lab_next) return 0;
            /* the topic was recreated (or truncated) since the checkpoint: read from here */
            logf_(k, 1, "worker %d: %s [%d] ends at offset %" PRId64 ", before the position %"
                  PRId64 " of the partition's checkpoint (recreated?): its labels are read "
                  "from offset %" PRId64, w->index, k->topic_lab, (int)m->partition, hi,
                  pt->lab_next, m->offset);
            pt->lab_next = m->offset;
        }
        if (m->offset > pt->lab_next && pt->lab_resync) {
            /* fetched before a seek: wait for lab_next, unless the broker no longer has it */
            int64_t lo = -1, hi = -1;
            rd_kafka_get_watermark_offsets(w->c, k->topic_lab, m->partition, &lo, &hi);
            if (lo < 0 || lo <= pt->lab_next) return 0;
        }
        pt->lab_resync = 0;
        int64_t lts = rd_kafka_message_timestamp(m, NULL);
        if (lab_ready(w, pt, lts)) {
            lab_apply(w, pt, m);
            return 0;
        }
        /* its transaction may not be here yet (the input lags: a restart from an old
         * offset, a new instance reading the topic from its start): kept, and applied
         * before the first input message produced after it */
        INC(w->ct.labels_waits, 1);
        pt->lab_next = m->offset;
        pt->lab_wait_ts = lts;
        if (pt->id < k->nparts) atomic_store(&k->lab_waiting[pt->id], 1);
    }
    if (pt->lab_nheld == pt->lab_hcap) {
        int nc = pt->lab_hcap ? 2 * pt->lab_hcap : 16;
        rd_kafka_message_t **nh = realloc(pt->lab_held, (size_t)nc * sizeof *nh);
        if (!nh) {
            set_fatal(w, "out of memory");
            return 0;
        }
        pt->lab_held = nh;
        pt->lab_hcap = nc;
    }
    pt->lab_held[pt->lab_nheld++] = m;
    return 1;
}

/* A message below pt's next offset: processed already (fetched before a seek), unless
 * the partition now ends before that offset (recreated since the assignment's check,
 * or that check failed): the cached high watermark says so cheaply, the leader
 * confirms. 1: read the partition from m on (in_restart). */
static int in_recreated(worker_t *w, part_t *pt, const rd_kafka_message_t *m) {
    vg_kafka_t *k = w->k;
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(w->c, k->topic_in, m->partition, &lo, &hi) != 0 ||
        hi < 0 || hi >= pt->next_off)
        return 0;
    if (rd_kafka_query_watermark_offsets(w->c, k->topic_in, m->partition, &lo, &hi, 2000) != 0 ||
        hi < 0 || hi >= pt->next_off)
        return 0;
    char why[80];
    snprintf(why, sizeof why, "ends at offset %" PRId64, hi);
    in_restart(w, pt, m->offset, why);
    return 1;
}

/* The message key of a decided or duplicate event against its account (SPEC section 7:
 * the producers key events by account, so that an account's events are in one
 * partition, in order). A message without a key, or keyed otherwise (by card, by
 * session), is still decided, in the partition it came on: its account's state there
 * holds only the events that came there, and `vigil replay --partitions` (which routes
 * by account) decides differently. Counted (vigil_kafka_key_mismatch_total), the first
 * of each kind logged. One comparison per event. */
static void key_check(worker_t *w, part_t *pt, const rd_kafka_message_t *m) {
    vg_kafka_t *k = w->k;
    if (k->nparts == 1) return;   /* one partition: every account's events are together */
    const char *acc;
    size_t al;
    vg_pipeline_last_account(pt->pl, &acc, &al);
    if (!acc) return;
    if (!m->key) {
        atomic_fetch_add(&k->keys_none, 1);
        if (!atomic_exchange(&k->warned_none, 1))
            logf_(k, 1, "%s [%d] offset %" PRId64 ": a message without a key (account '%.*s'); "
                  "the producers must key each event by its account (SPEC section 7), else "
                  "an account's events spread over partitions whose states are separate "
                  "(counted in vigil_kafka_key_mismatch_total{kind=\"none\"}; logged once)",
                  k->topic_in, (int)m->partition, m->offset, (int)(al > 128 ? 128 : al), acc);
        return;
    }
    if (m->key_len == al && memcmp(m->key, acc, al) == 0) return;
    atomic_fetch_add(&k->keys_other, 1);
    if (!atomic_exchange(&k->warned_other, 1)) {
        char kp[129];   /* the key, at most 128 bytes, control bytes as '?' */
        size_t kl = m->key_len > 128 ? 128 : m->key_len;
        for (size_t i = 0; i < kl; i++) {
            unsigned char c = ((const unsigned char *)m->key)[i];
            kp[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
        }
        kp[kl] = 0;
        logf_(k, 1, "%s [%d] offset %" PRId64 ": the message key '%.*s' is not the event's "
              "account '%.*s'; the producers must key each event by its account (SPEC "
              "section 7), else an account's events spread over partitions whose states are "
              "separate (counted in vigil_kafka_key_mismatch_total{kind=\"other\"}; logged "
              "once)", k->topic_in, (int)m->partition, m->offset, (int)kl, kp,
              (int)(al > 128 ? 128 : al), acc);
    }
}

static void handle_msg(worker_t *w, part_t *pt, const rd_kafka_message_t *m) {
    vg_kafka_t *k = w->k;
    if (!pt || (pt->next_off >= 0 && m->offset < pt->next_off && !in_recreated(w, pt, m))) {
        INC(w->ct.stale, 1);
        return;
    }
    if (pt->next_off >= 0 && m->offset > pt->next_off) {
        if (pt->resync) {
            /* a message fetched before the seek: wait for next_off, unless the broker
             * no longer has it */
            int64_t lo = -1, hi = -1;
            rd_kafka_get_watermark_offsets(w->c, k->topic_in, m->partition, &lo, &hi);
            if (lo < 0 || lo <= pt->next_off) {
                INC(w->ct.stale, 1);
                return;
            }
        }
        INC(w->ct.gaps, (uint64_t)(m->offset - pt->next_off));
        logf_(k, 1, "worker %d: %s [%d]: offsets %" PRId64 "..%" PRId64
              " are gone from the broker (retention or truncation); they were never processed",
              w->index, k->topic_in, (int)m->partition, pt->next_off, m->offset - 1);
    }
    pt->resync = 0;
    INC(w->ct.messages, 1);
    if (m->offset < pt->in_max) INC(w->ct.reprocessed, 1);

    const char *s = m->payload ? (const char *)m->payload : "";
    size_t n = m->payload ? m->len : 0;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) n--;
    rd_kafka_timestamp_type_t tst;
    int64_t ts_msg = rd_kafka_message_timestamp(m, &tst);
    while (pt->lab_nheld && ts_msg >= pt->lab_wait_ts && !w->fatal)   /* produced after them */
        lab_release(w, pt);
    if (w->fatal) return;
    vg_buf_clear(&w->out);
    vg_outcome_t oc = VG_OUT_BLANK;
    vg_reject_t code = VG_REJECT_NONE;
    /* the pipeline rejects an event too far ahead of the clock (`future`, opts_now) */
    int rc = vg_pipeline_line(pt->pl, s, n, &w->out, &oc);
    if (oc == VG_OUT_REJECTED) code = vg_pipeline_last_reject(pt->pl);
    if (rc) {
        set_fatal(w, "%s [%d] offset %" PRId64 ": %s", k->topic_in, (int)m->partition,
                  m->offset, vg_strerror(rc));
        return;
    }
    const char *d = w->out.p;
    size_t dl = w->out.len ? w->out.len - 1 : 0;   /* without the newline */
    switch (oc) {
    case VG_OUT_DECIDED: {
        INC(w->ct.decided, 1);
        int act;
        vg_pipeline_last_decision(pt->pl, &act, NULL);
        INC(w->ct.by_decision[act >= 0 && act < 4 ? act : 0], 1);
        key_check(w, pt, m);
        if (emit_decided(w, pt, d, dl, ts_msg) != 0) return;
        break;
    }
    case VG_OUT_DUPLICATE:
        INC(w->ct.duplicates, 1);
        if (w->t_dec) {
            const char *acc;
            size_t al;
            vg_pipeline_last_account(pt->pl, &acc, &al);
            if (produce(w, pt, w->t_dec, d, dl, acc, al, OUT_DECISION, ts_msg) < 0) return;
            INC(w->ct.decisions_out, 1);
        }
        break;
    case VG_OUT_REJECTED: {
        INC(w->ct.rejected, 1);
        INC(w->ct.rejected_by[code], 1);
        vg_buf_t *r = &w->rec;
        vg_buf_clear(r);
        char num[128];
        /* the original bytes, base64; as many as the topic takes (a message larger than
         * that cannot be carried whole: it was fatal at every restart) */
        size_t olen = m->payload ? m->len : 0, klen = m->key ? m->key_len : 0;
        size_t fixed = klen + REC_OVERHEAD + strlen(k->topic_in) + dl + 256;
        size_t cap = w->out_max[OUT_DLQ] > fixed ? (w->out_max[OUT_DLQ] - fixed) / 4 * 3 : 0;
        int cut = olen > cap;
        rc = vg_buf_puts(r, "{\"original\":\"");
        if (!rc) rc = vg_kafka_put_b64(r, m->payload, cut ? cap : olen);
        if (!rc && cut) {
            INC(w->ct.truncated, 1);
            snprintf(num, sizeof(num), "\",\"original_bytes\":%zu,\"original_truncated\":true",
                     olen);
            rc = vg_buf_puts(r, num);
            if (!rc) rc = vg_buf_puts(r, ",\"topic\":");
        } else if (!rc) {
            rc = vg_buf_puts(r, "\",\"topic\":");
        }
        if (!rc) rc = vg_json_str(r, k->topic_in, strlen(k->topic_in));
        snprintf(num, sizeof(num), ",\"partition\":%d,\"offset\":%" PRId64 ",",
                 (int)m->partition, m->offset);
        if (!rc) rc = vg_buf_puts(r, num);
        if (!rc) rc = vg_buf_append(r, d + 1, dl - 1);   /* "id":..,"error":..,"code":..} */
        if (rc) {
            set_fatal(w, "out of memory");
            return;
        }
        if (produce(w, pt, w->t_dlq, r->p, r->len, m->key, m->key ? m->key_len : 0, OUT_DLQ,
                    ts_msg) < 0)
            return;
        INC(w->ct.dead_letters, 1);
        break;
    }
    case VG_OUT_BLANK:
        INC(w->ct.blank, 1);
        break;
    }
    pt->next_off = m->offset + 1;
    if (pt->next_off > pt->in_max) pt->in_max = pt->next_off;
    if (ts_msg > pt->in_ts) pt->in_ts = ts_msg;
}

/* ---- worker thread ---- */

/* ---- scoring requests (vg_kafka_score) ---- */

/* A dry run: the owning thread's partitions checkpointed, then a throw-away pipeline
 * over the partition's store with the partition's rules. */
static int dry_score(worker_t *w, part_t *pt, kreq_t *q) {
    vg_kafka_t *k = w->k;
    if (checkpoint(w, 1) != 0 || w->fatal) return VG_EIO;
    pt = q->part < w->cap ? w->parts[q->part] : NULL;   /* a rewind reloads partitions */
    if (!pt || !pt->pl) return VG_ENOTFOUND;
    vg_pipeline_opts_t po = opts_now(k, NULL);
    po.store = pt->store;
    po.ruleset_version = w->ruleset;
    char err[512];
    vg_pipeline_t *pl = vg_pipeline_new(vg_pipeline_program(pt->pl), &po, err, sizeof(err));
    vg_lists_unref(po.lists);
    if (!pl) return VG_EIO;
    vg_outcome_t oc = VG_OUT_BLANK;
    int rc = vg_pipeline_line(pl, q->body, q->len, q->out, &oc);
    q->res->outcome = oc;
    if (!rc && oc == VG_OUT_REJECTED) q->res->reject = vg_pipeline_last_reject(pl);
    if (!rc && oc == VG_OUT_DECIDED) q->res->alert = vg_pipeline_last_alert(pl);
    vg_pipeline_free(pl);
    return rc;
}

/* Erases an account from a partition: its state checkpointed, its records deleted
 * from the store (and, with the changelog, tombstoned there at once), the partition's
 * memory state reloaded without it. */
static int forget_one(worker_t *w, kreq_t *q) {
    vg_kafka_t *k = w->k;
    if (checkpoint(w, 1) != 0 || w->fatal) return VG_EIO;
    part_t *pt = q->part < w->cap ? w->parts[q->part] : NULL;
    if (!pt || !pt->pl) return VG_ENOTFOUND;
    char err[512];
    vg_acct_t *ac;   /* whether the partition held the account (the answer's "erased") */
    if (vg_state_find(vg_pipeline_state(pt->pl), q->acct, q->alen, &ac) == 0) q->res->found = 1;
    vg_buf_t *dk = k->topic_cl ? &pt->cl_redo : NULL;   /* tombstones: stored values gone */
    if (vg_state_delete_account(pt->store, q->acct, q->alen, dk, err, sizeof(err)) != 0) {
        logf_(k, 1, "partition %d: erasing an account: %s", (int)pt->id, err);
        return VG_ESTORE;
    }
    vg_pipeline_free(pt->pl);
    pt->pl = NULL;
    if (part_load(w, pt, err, sizeof(err)) != 0) {
        set_fatal(w, "partition %d: reloading after an erasure: %s", (int)pt->id, err);
        return VG_EIO;
    }
    /* the deleted records leave the partition store's files too (WAL, SST, MANIFEST):
     * this thread's partitions wait meanwhile (docs/architecture.md, Erasure). Before
     * the erasure is published: the HTTP thread that asked scans the alert list once
     * this answers, and every instance's alert feed drops the account's alerts as soon
     * as the erasure arrives (a purge after it left the asking thread nothing to count,
     * "alerts_erased":0) */
    if (vg_store_purge_account(pt->store, q->acct, q->alen, err, sizeof(err)) != 0) {
        logf_(k, 1, "partition %d: erasing an account: %s", (int)pt->id, err);
        return VG_ESTORE;
    }
    /* the erasure for every instance's alert list (GROUP.erasures, api/alert_feed.c),
     * acknowledged with the checkpoint below, so that the HTTP thread that asked does
     * not wait on the broker itself */
    if (!w->t_er && !(w->t_er = rd_kafka_topic_new(w->p, k->topic_er, NULL))) {
        logf_(k, 1, "partition %d: erasures topic %s: %s", (int)pt->id, k->topic_er,
              rd_kafka_err2str(rd_kafka_last_error()));
        return VG_EIO;
    }
    int64_t now = real_us() / 1000;
    char at[32], num[64];
    at[vg_time_format(now, at)] = 0;
    vg_buf_t *r = &w->rec;
    vg_buf_clear(r);
    snprintf(num, sizeof(num), ",\"erased_at_ms\":%" PRId64 "}", now);
    int rc = vg_buf_puts(r, "{\"account\":");
    if (!rc) rc = vg_json_str(r, q->acct, q->alen);
    if (!rc) rc = vg_buf_puts(r, ",\"erased_at\":\"");
    if (!rc) rc = vg_buf_puts(r, at);
    if (!rc) rc = vg_buf_puts(r, "\"");
    if (!rc) rc = vg_buf_puts(r, num);
    if (rc) return rc;
    if (produce(w, pt, w->t_er, r->p, r->len, q->acct, q->alen, OUT_DECISION, now) < 0)
        return VG_EIO;
    q->res->erased_at_ms = now;   /* the asking thread's own feed may take it first */
    pt->unlogged++;   /* the tombstones and the offset, in the changelog now */
    if (checkpoint(w, 1) != 0) return VG_EIO;
    return 0;
}

static int score_one(worker_t *w, kreq_t *q) {
    part_t *pt = q->part < w->cap ? w->parts[q->part] : NULL;
    if (!pt || !pt->pl) return VG_ENOTFOUND;   /* revoked since */
    if (q->kind == REQ_FORGET) return forget_one(w, q);
    if (q->kind == REQ_VIEW) {   /* no state here: 0 with nothing written */
        int rc = vg_pipeline_account_view(pt->pl, q->acct, q->alen, q->dry, q->out);
        return rc == VG_ENOTFOUND ? 0 : rc;
    }
    if (q->kind == REQ_LABEL) {   /* the account's later events see it */
        int rc = vg_pipeline_label(pt->pl, (const vg_label_t *)(const void *)q->body);
        if (!rc) pt->unlogged++;   /* the account's label memo: for the next checkpoint */
        return rc;
    }
    if (q->kind == REQ_RESET) {   /* an account the partition does not hold: not made */
        vg_acct_t *ac;
        int rc = vg_state_find(vg_pipeline_state(pt->pl), q->acct, q->alen, &ac);
        if (rc == VG_ENOTFOUND) return 0;
        if (rc) return rc;
        q->res->found = 1;
        rc = vg_pipeline_reset_baseline(pt->pl, q->acct, q->alen);
        if (rc) return rc;
        pt->unlogged++;   /* a state change, checkpointed at once: durable when answered,
                             as an erasure is (it waited for the next checkpoint) */
        return checkpoint(w, 1) != 0 || w->fatal ? VG_EIO : 0;
    }
    q->res->ruleset = w->ruleset;
    if (q->dry) return dry_score(w, pt, q);
    vg_outcome_t oc = VG_OUT_BLANK;
    int rc = vg_pipeline_line(pt->pl, q->body, q->len, q->out, &oc);
    if (rc) return rc;
    q->res->outcome = oc;
    if (oc == VG_OUT_REJECTED) {
        q->res->reject = vg_pipeline_last_reject(pt->pl);
        return 0;
    }
    if (oc != VG_OUT_DECIDED) return 0;
    pt->unlogged++;   /* a state change for the next checkpoint */
    q->res->alert = vg_pipeline_last_alert(pt->pl);
    const char *d = q->out->p;
    size_t dl = q->out->len ? q->out->len - 1 : 0;
    INC(w->ct.scored, 1);
    return emit_decided(w, pt, d, dl, real_us() / 1000) ? VG_EIO : 0;
}

/* A request answered: its waiter woken (synchronous) or its done callback called,
 * outside the queue's lock (the request may be gone once it runs). */
static void req_finish(worker_t *w, kreq_t *q, int rc) {
    pthread_mutex_lock(&w->qmu);
    void (*fn)(void *) = q->done_fn;
    void *arg = q->done_arg;
    q->rc = rc;
    q->done = 1;
    if (!fn) pthread_cond_broadcast(&w->qcv);
    pthread_mutex_unlock(&w->qmu);
    if (fn) fn(arg);
}

/* Answers the queued requests (between batches); one whose deadline passed while it
 * waited is not decided (VG_ELIMIT: its client is told to retry, the load shed). */
static void serve_reqs(worker_t *w) {
    pthread_mutex_lock(&w->qmu);
    kreq_t *x = w->qhead, *q = NULL;
    w->qhead = NULL;
    int n = 0;
    while (x) {   /* queued newest first: answered in the order they came */
        kreq_t *next = x->next;
        x->taken = 1;
        x->next = q;
        q = x;
        x = next;
        n++;
    }
    if (n) atomic_fetch_sub(&w->k->nqueued, n);
    pthread_mutex_unlock(&w->qmu);
    while (q) {
        kreq_t *next = q->next;
        int rc = w->fatal                        ? VG_EIO
                 : mono_us() > q->deadline_us    ? VG_ELIMIT
                                                 : score_one(w, q);
        req_finish(w, q, rc);
        q = next;
    }
}

/* The deadline thread (vg_kafka_t.reaper): every 2 ms while requests are queued (20 ms
 * otherwise), the requests still queued past their deadline are answered VG_ELIMIT. */
static void *reaper_main(void *arg) {
    vg_kafka_t *k = arg;
    pthread_setname_np(pthread_self(), "vigil-deadline");
    while (!atomic_load(&k->reaper_quit)) {
        int busy = atomic_load(&k->nqueued) > 0;
        struct timespec ts = {0, busy ? 2000000L : 20000000L};
        nanosleep(&ts, NULL);
        if (!busy) continue;
        int64_t now = mono_us();
        for (int i = 0; i < k->nw; i++) {
            worker_t *w = &k->w[i];
            if (!w->qinit) continue;
            kreq_t *expired = NULL;
            int sync = 0, n = 0;
            pthread_mutex_lock(&w->qmu);
            for (kreq_t **pp = &w->qhead; *pp;) {
                kreq_t *q = *pp;
                if (now <= q->deadline_us) {
                    pp = &q->next;
                    continue;
                }
                *pp = q->next;
                n++;
                q->rc = VG_ELIMIT;
                if (q->done_fn) {
                    q->next = expired;
                    expired = q;
                } else {
                    q->done = 1;
                    sync = 1;
                }
            }
            if (n) atomic_fetch_sub(&k->nqueued, n);
            if (sync) pthread_cond_broadcast(&w->qcv);
            pthread_mutex_unlock(&w->qmu);
            while (expired) {
                kreq_t *next = expired->next;
                void (*fn)(void *) = expired->done_fn;
                void *fa = expired->done_arg;
                expired->done = 1;
                fn(fa);
                expired = next;
            }
        }
    }
    return NULL;
}

/* Queues q for the worker owning the account's partition. 0, or the error at once. */
static int enqueue(vg_kafka_t *k, kreq_t *q, int kind, const char *acct, size_t alen,
                   const char *body, size_t len, int dry, int64_t deadline_us, vg_buf_t *out,
                   vg_kafka_score_res_t *res, void (*fn)(void *), void *arg) {
    memset(res, 0, sizeof(*res));
    res->partition = -1;
    if (k->nparts <= 0 || !k->owner) return VG_ENOTFOUND;
    int32_t p = vg_kafka_partition(acct, alen, k->nparts, atomic_load(&k->route_crc));
    res->partition = p;
    int wi = atomic_load(&k->owner[p]);
    if (wi < 0 || wi >= k->nw || GET(k->stop)) return wi < 0 ? VG_ENOTFOUND : VG_EIO;
    worker_t *w = &k->w[wi];
    *q = (kreq_t){.w = w, .kind = kind, .acct = acct, .alen = alen, .part = p, .body = body,
                  .len = len, .dry = dry, .out = out, .res = res, .deadline_us = deadline_us,
                  .done_fn = fn, .done_arg = arg};
    pthread_mutex_lock(&w->qmu);
    if (!w->cq) {   /* the thread is not (or no longer) consuming */
        pthread_mutex_unlock(&w->qmu);
        return VG_EIO;
    }
    q->next = w->qhead;
    w->qhead = q;
    atomic_fetch_add(&k->nqueued, 1);
    if (write(w->pfd[1], "r", 1) < 0 && errno != EAGAIN) {   /* out of its wait */
    }
    pthread_mutex_unlock(&w->qmu);
    return 0;
}

static int submit(vg_kafka_t *k, int kind, const char *acct, size_t alen, const char *body,
                  size_t len, int dry, int64_t timeout_ms, vg_buf_t *out,
                  vg_kafka_score_res_t *res) {
    kreq_t q;
    int rc = enqueue(k, &q, kind, acct, alen, body, len, dry, mono_us() + timeout_ms * 1000,
                     out, res, NULL, NULL);
    if (rc) return rc;
    worker_t *w = q.w;
    pthread_mutex_lock(&w->qmu);
    while (!q.done) pthread_cond_wait(&w->qcv, &w->qmu);   /* answered or expired */
    pthread_mutex_unlock(&w->qmu);
    return q.rc;
}

int vg_kafka_score_async(vg_kafka_t *k, vg_kafka_req_t *q, const char *acct, size_t alen,
                         const char *body, size_t len, int dry, int64_t deadline_us,
                         vg_buf_t *out, vg_kafka_score_res_t *res, void (*done)(void *arg),
                         void *arg) {
    if (!done) return VG_EINVAL;
    return enqueue(k, q, REQ_SCORE, acct, alen, body, len, dry, deadline_us, out, res, done,
                   arg);
}

int vg_kafka_score(vg_kafka_t *k, const char *acct, size_t alen, const char *body, size_t len,
                   int dry, int64_t timeout_ms, vg_buf_t *out, vg_kafka_score_res_t *res) {
    return submit(k, REQ_SCORE, acct, alen, body, len, dry, timeout_ms, out, res);
}

int vg_kafka_label(vg_kafka_t *k, const vg_label_t *lb, int64_t timeout_ms,
                   int32_t *partition) {
    vg_kafka_score_res_t res;
    int rc = submit(k, REQ_LABEL, lb->account, lb->alen, (const char *)(const void *)lb,
                    sizeof *lb, 0, timeout_ms, NULL, &res);
    *partition = res.partition;
    return rc;
}

int vg_kafka_account_op_async(vg_kafka_t *k, vg_kafka_req_t *q, int erase, const char *acct,
                              size_t alen, int64_t deadline_us, vg_kafka_score_res_t *res,
                              void (*done)(void *arg), void *arg) {
    if (!done) return VG_EINVAL;
    return enqueue(k, q, erase ? REQ_FORGET : REQ_RESET, acct, alen, NULL, 0, 0, deadline_us,
                   NULL, res, done, arg);
}

int vg_kafka_account_view_async(vg_kafka_t *k, vg_kafka_req_t *q, const char *acct,
                                size_t alen, int max, int64_t deadline_us, vg_buf_t *out,
                                vg_kafka_score_res_t *res, void (*done)(void *arg),
                                void *arg) {
    if (!done) return VG_EINVAL;
    return enqueue(k, q, REQ_VIEW, acct, alen, NULL, 0, max, deadline_us, out, res, done, arg);
}

static void *worker_main(void *arg) {
    worker_t *w = arg;
    vg_kafka_t *k = w->k;
    char tname[16];
    snprintf(tname, sizeof(tname), "vigil-kafka-%d", w->index);
    pthread_setname_np(pthread_self(), tname);   /* for top -H and perf */
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, k->topic_in, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(w->c, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) set_fatal(w, "subscribing to %s: %s", k->topic_in, rd_kafka_err2str(e));
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(w->c);
    if (!q) {   /* no group (librdkafka has no consumer queue then): nothing to read */
        if (!w->fatal) set_fatal(w, "the consumer has no group queue (group '%s')", k->group);
        return NULL;
    }
    rd_kafka_queue_io_event_enable(q, w->pfd[1], "k", 1);
    pthread_mutex_lock(&w->qmu);
    w->cq = q;
    pthread_mutex_unlock(&w->qmu);
    rd_kafka_message_t *msgs[BATCH];
    pfh_t pf[BATCH];   /* msgs' prefetch hints */
    int64_t last_lag = 0;
    while (!GET(k->stop) && !w->fatal) {
        /* whatever is there at once; else wait for one message (not for a full batch:
         * that would delay alerts at low rates) */
        ssize_t n = rd_kafka_consume_batch_queue(q, 0, msgs, BATCH);
        if (n == 0) {
            /* the queue is empty: its next message (librdkafka writes to the pipe
             * then) or a scoring request (vg_kafka_score writes to it) wakes us; with
             * a checkpoint pending, after 1 ms at most (acknowledgements, helper) */
            struct pollfd pf = {w->pfd[0], POLLIN, 0};
            if (poll(&pf, 1, w->pending ? 1 : 100) > 0) {
                char drain[64];
                while (read(w->pfd[0], drain, sizeof(drain)) > 0) {
                }
            }
            if (w->pending) rd_kafka_poll(w->p, 0);
            n = rd_kafka_consume_batch_queue(q, 0, msgs, BATCH);
        }
        /* the batch's events are known ahead: their state is prefetched in stages (as
         * `vigil replay` does), PF_AHEAD, 4 and 2 messages ahead of the one processed */
        for (ssize_t i = 0; i < n && i < PF_AHEAD; i++) prefetch_msg(w, msgs[i], &pf[i], 0);
        for (ssize_t i = 0; i < n && i < 4; i++) prefetch_msg(w, msgs[i], &pf[i], 1);
        for (ssize_t i = 0; i < n && i < 2; i++) prefetch_msg(w, msgs[i], &pf[i], 2);
        for (ssize_t i = 0; i < n; i++) {
            if (i + PF_AHEAD < n) prefetch_msg(w, msgs[i + PF_AHEAD], &pf[i + PF_AHEAD], 0);
            if (i + 4 < n) prefetch_msg(w, msgs[i + 4], &pf[i + 4], 1);
            if (i + 2 < n) prefetch_msg(w, msgs[i + 2], &pf[i + 2], 2);
            if (w->fatal || w->need_rewind || !handle(w, msgs[i]))
                rd_kafka_message_destroy(msgs[i]);
        }
        rd_kafka_poll(w->p, 0);
        int64_t t = mono_ms();
        if (t - last_lag >= 100) {
            update_lag(w);
            if (k->topic_lab) lab_resume_ready(w);
            last_lag = t;
        }
        if (w->need_rewind) {
            checkpoint(w, 1);
            update_lag(w);
        } else {
            apply_rules(w);
            serve_reqs(w);
            ckpt_step(w);
        }
    }
    /* graceful: checkpoint (after the broker acknowledged everything), leave the group
     * (the revocation checkpoints again and closes the stores) */
    if (!w->fatal && checkpoint(w, 1) != 0 && !w->fatal)
        logf_(k, 1, "worker %d: final checkpoint not written (broker unreachable); a restart "
              "resumes from the previous one", w->index);
    if (w->dr_failed) dr_report(w, "a restart produces them again (from the last checkpoint)");
    pthread_mutex_lock(&w->qmu);
    w->cq = NULL;   /* no new requests */
    pthread_mutex_unlock(&w->qmu);
    serve_reqs(w);   /* answered while the partitions are still here */
    rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(w->c);
    for (int32_t i = 0; i < w->cap; i++) {
        part_free(w->parts[i]);
        w->parts[i] = NULL;
    }
    SET(w->ct.partitions, 0);
    rd_kafka_flush(w->p, 5000);
    return NULL;
}

/* ---- lifecycle ---- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

vg_kafka_t *vg_kafka_new(const vg_kafka_opts_t *o, char *errbuf, size_t errlen) {
    if (!o->brokers || !*o->brokers || !o->state_dir || !o->prog || !o->group || !*o->group ||
        !o->topic_in || !o->topic_alerts || !o->topic_dlq) {
        snprintf(errbuf, errlen, "kafka: brokers, state directory, rules, group and topics "
                                 "are required");
        return NULL;
    }
    if (o->threads < 1 || o->threads > 256 || o->checkpoint_ms < 1) {
        snprintf(errbuf, errlen, "kafka: threads must be 1..256 and the checkpoint interval "
                                 "positive");
        return NULL;
    }
    vg_kafka_t *k = calloc(1, sizeof(*k));
    if (!k) goto oom;
    k->o = *o;
    pthread_mutex_init(&k->rmu, NULL);
    k->o.prog = vg_prog_ref(o->prog);   /* references first: vg_kafka_free drops them */
    k->o.pipeline.lists = o->pipeline.lists;
    if (o->pipeline.lists) vg_lists_ref(o->pipeline.lists);
    k->brokers = strdup(o->brokers);
    k->group = strdup(o->group);
    k->topic_in = strdup(o->topic_in);
    k->topic_alerts = strdup(o->topic_alerts);
    k->topic_dec = dup_or_null(o->topic_decisions);
    k->topic_dlq = strdup(o->topic_dlq);
    k->topic_cl = dup_or_null(o->topic_changelog);
    k->topic_lab = k->lab_name = dup_or_null(o->topic_labels);
    k->state_dir = strdup(o->state_dir);
    pthread_mutex_init(&k->pmu, NULL);
    if (k->group && (k->topic_er = malloc(strlen(k->group) + 10)))
        sprintf(k->topic_er, "%s.erasures", k->group);
    if (!k->brokers || !k->group || !k->topic_in || !k->topic_alerts || !k->topic_dlq ||
        !k->state_dir || !k->topic_er || (o->topic_decisions && !k->topic_dec) ||
        (o->topic_changelog && !k->topic_cl) || (o->topic_labels && !k->topic_lab))
        goto oom;
    if (k->topic_lab && (strcmp(k->topic_lab, k->topic_in) == 0 ||
                         (k->topic_cl && strcmp(k->topic_lab, k->topic_cl) == 0))) {
        snprintf(errbuf, errlen, "kafka: the labels topic must differ from the input and "
                 "changelog topics");
        goto fail;
    }
    for (int i = 0; o->conf && o->conf[i]; i++) k->nconf++;
    k->conf = calloc((size_t)k->nconf + 1, sizeof(char *));
    if (!k->conf) goto oom;
    for (int i = 0; i < k->nconf; i++)
        if (!(k->conf[i] = strdup(o->conf[i]))) goto oom;
    if (!(k->conf_scope = calloc((size_t)k->nconf + 1, 1))) goto oom;
    conf_scopes((const char *const *)k->conf, k->nconf, k->conf_scope);
    /* every setting is checked, whichever clients it applies to */
    for (int i = 0; i < k->nconf; i++)
        if (vg_kafka_conf_check(k->conf[i], errbuf, errlen) != 0) goto fail;
    /* check the settings once, so that a typo fails before anything starts */
    for (int c = 0; c < 2; c++) {
        rd_kafka_conf_t *cf = make_conf(k, c, NULL, errbuf, errlen);
        if (!cf) goto fail;
        rd_kafka_conf_destroy(cf);
    }
    k->nw = o->threads;
    k->w = calloc((size_t)k->nw, sizeof(worker_t));
    if (!k->w) goto oom;
    if (mkdir_p(k->state_dir) < 0) {
        snprintf(errbuf, errlen, "%.300s: %s", k->state_dir, strerror(errno));
        goto fail;
    }
    return k;
oom:
    snprintf(errbuf, errlen, "out of memory");
fail:
    vg_kafka_free(k);
    return NULL;
}

int vg_kafka_client_conf(vg_kafka_t *k, int consumer, const char *name, char *out,
                         size_t outlen) {
    char err[256];
    rd_kafka_conf_t *c = make_conf(k, consumer, NULL, err, sizeof(err));
    if (!c) return VG_ENOMEM;
    size_t n = outlen;
    rd_kafka_conf_res_t r = rd_kafka_conf_get(c, name, out, &n);
    rd_kafka_conf_destroy(c);
    return r == RD_KAFKA_CONF_OK ? 0 : VG_ENOTFOUND;
}

static void helper_stop(worker_t *w) {
    helper_t *h = &w->h;
    if (!h->started) return;
    pthread_mutex_lock(&h->mu);
    h->quit = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->tid, NULL);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    h->started = 0;
}

static void worker_deinit(worker_t *w) {
    helper_stop(w);
    if (w->qinit) {
        pthread_mutex_destroy(&w->qmu);
        pthread_cond_destroy(&w->qcv);
        w->qinit = 0;
        for (int i = 0; i < 2; i++)
            if (w->pfd[i] >= 0) close(w->pfd[i]);
        w->pfd[0] = w->pfd[1] = -1;
    }
    if (w->t_alerts) rd_kafka_topic_destroy(w->t_alerts);
    if (w->t_dec) rd_kafka_topic_destroy(w->t_dec);
    if (w->t_dlq) rd_kafka_topic_destroy(w->t_dlq);
    if (w->t_cl) rd_kafka_topic_destroy(w->t_cl);
    if (w->t_er) rd_kafka_topic_destroy(w->t_er);
    w->t_alerts = w->t_dec = w->t_dlq = w->t_cl = w->t_er = NULL;
    if (w->rc) {
        rd_kafka_consumer_close(w->rc);
        rd_kafka_destroy(w->rc);
    }
    w->rc = NULL;
    if (w->c) rd_kafka_destroy(w->c);
    if (w->p) rd_kafka_destroy(w->p);
    w->c = w->p = NULL;
    if (w->parts)
        for (int32_t i = 0; i < w->cap; i++) part_free(w->parts[i]);
    free(w->parts);
    w->parts = NULL;
    w->cap = 0;
    vg_buf_deinit(&w->out);
    vg_buf_deinit(&w->rec);
    vg_buf_deinit(&w->fit);
    vg_batch_free(w->ckb);
    w->ckb = NULL;
}

static int worker_init(vg_kafka_t *k, worker_t *w, int index, char *errbuf, size_t errlen) {
    char e[512];
    w->k = k;
    w->index = index;
    vg_buf_init(&w->out);
    vg_buf_init(&w->rec);
    vg_buf_init(&w->fit);
    w->ruleset = k->o.pipeline.ruleset_version;
    w->rules_gen = atomic_load(&k->rules_gen);
    pthread_mutex_init(&w->qmu, NULL);
    pthread_cond_init(&w->qcv, NULL);
    w->qinit = 1;
    if (pipe2(w->pfd, O_NONBLOCK | O_CLOEXEC) != 0) {
        w->pfd[0] = w->pfd[1] = -1;
        snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
        return VG_EIO;
    }
    w->ckb = vg_batch_new();
    if (!w->ckb) {
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    pthread_mutex_init(&w->h.mu, NULL);
    pthread_cond_init(&w->h.cv, NULL);
    if (pthread_create(&w->h.tid, NULL, helper_main, w) != 0) {
        pthread_mutex_destroy(&w->h.mu);
        pthread_cond_destroy(&w->h.cv);
        snprintf(errbuf, errlen, "cannot start a thread");
        return VG_EIO;
    }
    w->h.started = 1;
    rd_kafka_conf_t *cc = make_conf(k, 1, w, errbuf, errlen);
    if (!cc) return VG_EINVAL;
    w->c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof(e));   /* takes cc on success */
    if (!w->c) {
        rd_kafka_conf_destroy(cc);
        snprintf(errbuf, errlen, "kafka consumer: %s", e);
        return VG_EIO;
    }
    rd_kafka_poll_set_consumer(w->c);
    rd_kafka_conf_t *pc = make_conf(k, 0, w, errbuf, errlen);
    if (!pc) return VG_EINVAL;
    w->p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof(e));   /* takes pc on success */
    if (!w->p) {
        rd_kafka_conf_destroy(pc);
        snprintf(errbuf, errlen, "kafka producer: %s", e);
        return VG_EIO;
    }
    char mmb[32];
    size_t mmbl = sizeof(mmb);
    long long maxb = 1000000;   /* librdkafka's default */
    if (rd_kafka_conf_get(rd_kafka_conf(w->p), "message.max.bytes", mmb, &mmbl) == RD_KAFKA_CONF_OK)
        maxb = atoll(mmb);
    for (int i = 0; i < 4; i++) w->out_max[i] = maxb > 0 ? (size_t)maxb : 1000000;
    w->t_alerts = rd_kafka_topic_new(w->p, k->topic_alerts, NULL);
    w->t_dlq = rd_kafka_topic_new(w->p, k->topic_dlq, NULL);
    if (k->topic_dec) w->t_dec = rd_kafka_topic_new(w->p, k->topic_dec, NULL);
    if (k->topic_cl) w->t_cl = rd_kafka_topic_new(w->p, k->topic_cl, NULL);
    if (!w->t_alerts || !w->t_dlq || (k->topic_dec && !w->t_dec) || (k->topic_cl && !w->t_cl)) {
        snprintf(errbuf, errlen, "kafka topics: %s", rd_kafka_err2str(rd_kafka_last_error()));
        return VG_EIO;
    }
    return 0;
}

/* The brokers answer (tried for VG_CL_TIMEOUT_MS): unreachable ones made the checks
 * below say that the input topic does not exist, or fail with librdkafka's bare
 * "Broker transport failure". */
static int check_brokers(vg_kafka_t *k, rd_kafka_t *rk, char *errbuf, size_t errlen) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;
    int64_t t0 = mono_ms();
    do {
        e = rd_kafka_metadata(rk, 0, NULL, &md, 5000);
    } while (e && mono_ms() - t0 < VG_CL_TIMEOUT_MS && !GET(k->stop));
    if (e) {
        snprintf(errbuf, errlen, "cannot reach the Kafka brokers %.300s (tried for %d s: "
                 "%s): check the kafka setting, the network and the security settings",
                 k->brokers, (int)((mono_ms() - t0 + 500) / 1000), rd_kafka_err2str(e));
        return VG_EIO;
    }
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* With the input topic's partition count nin (> 0): the changelog topic checked
 * (created when missing) and the labels topic (created when missing, dropped when it
 * cannot be), by a client of its own (rk), before any producer names them: a
 * producer's metadata request may auto-create a topic, uncompacted and with the
 * broker's default partition count. Then the per-partition arrays, and nparts last
 * (other threads read it first). */
static int setup_topics(vg_kafka_t *k, rd_kafka_t *rk, int32_t nin, char *errbuf,
                        size_t errlen) {
    int rc = 0;
    if (k->topic_cl) {
        int32_t n = 0;
        rc = vg_cl_check_topic(rk, k->topic_cl, k->topic_in, &n, errbuf, errlen);
        if (rc == 0 && n > 0) nin = n;
    }
    if (rc == 0 && k->topic_lab) {
        /* one labels partition per input partition, created when missing */
        int32_t nl = vg_cl_topic_parts(rk, k->topic_lab, 5000);
        char why[512];
        if (nl > 0 && nl < nin) {
            snprintf(errbuf, errlen, "labels topic %s has %d partitions, fewer than the %d of "
                     "%s: give it at least as many (one per input partition), or run "
                     "without it (topic-labels = off)", k->topic_lab, (int)nl, (int)nin,
                     k->topic_in);
            rc = VG_EINVAL;
        } else if (nl <= 0 && vg_cl_create_topic(rk, k->topic_lab, nin, 0, why, sizeof why)) {
            /* not fatal: labels then apply in this instance's partitions only, as before
             * the topic existed (the answers of POST /v1/labels count the others) */
            logf_(k, 1, "the labels topic %s does not exist and cannot be created (%s): "
                  "labels apply only in this instance's partitions until it exists (create "
                  "it with %d partitions, as %s, and restart)", k->topic_lab, why, (int)nin,
                  k->topic_in);
            atomic_store(&k->lab_off, 1);
            k->topic_lab = NULL;   /* the string stays: lab_name */
        }
    }
    if (rc) return rc;
    if (!k->owner) {
        k->owner = malloc((size_t)nin * sizeof(*k->owner));
        k->taken = calloc((size_t)nin, sizeof(*k->taken));
        k->in_max = malloc((size_t)nin * sizeof(*k->in_max));
        if (!k->owner || !k->taken || !k->in_max) {
            snprintf(errbuf, errlen, "out of memory");
            return VG_ENOMEM;
        }
        for (int32_t i = 0; i < nin; i++) atomic_init(&k->owner[i], -1);
        for (int32_t i = 0; i < nin; i++) atomic_init(&k->in_max[i], -1);
        if (k->topic_lab) {
            k->lab_applied = malloc((size_t)nin * sizeof(*k->lab_applied));
            k->lab_waiting = calloc((size_t)nin, sizeof(*k->lab_waiting));
            if (!k->lab_applied || !k->lab_waiting) {
                snprintf(errbuf, errlen, "out of memory");
                return VG_ENOMEM;
            }
            for (int32_t i = 0; i < nin; i++) atomic_init(&k->lab_applied[i], -1);
        }
        atomic_store(&k->nparts, nin);
    }
    return 0;
}

static void reaper_stop(vg_kafka_t *k) {
    if (!k->reaper_started) return;
    atomic_store(&k->reaper_quit, 1);
    pthread_join(k->reaper, NULL);
    k->reaper_started = 0;
}

/* The processing threads (and the deadline thread) started. */
static int start_workers(vg_kafka_t *k, char *errbuf, size_t errlen) {
    for (int i = 0; i < k->nw; i++) {
        if (worker_init(k, &k->w[i], i, errbuf, errlen) != 0) goto fail;
    }
    atomic_store(&k->reaper_quit, 0);
    if (pthread_create(&k->reaper, NULL, reaper_main, k) != 0) {
        snprintf(errbuf, errlen, "cannot start a thread");
        goto fail;
    }
    k->reaper_started = 1;
    for (int i = 0; i < k->nw; i++) {
        if (pthread_create(&k->w[i].tid, NULL, worker_main, &k->w[i]) != 0) {
            snprintf(errbuf, errlen, "cannot start a thread");
            SET(k->stop, 1);
            goto fail;
        }
        k->w[i].started = 1;
    }
    logf_(k, 0, "consuming %s from %s in group %s with %d thread(s)", k->topic_in, k->brokers,
          k->group, k->nw);
    return 0;
fail:
    for (int i = 0; i < k->nw; i++) {
        if (k->w[i].started) pthread_join(k->w[i].tid, NULL);
        k->w[i].started = 0;
    }
    reaper_stop(k);
    for (int i = 0; i < k->nw; i++) worker_deinit(&k->w[i]);
    return VG_EIO;
}

/* The input topic did not exist at start: asked for every second until it does, then
 * the changelog and labels topics are sized by it and the workers start. A failure
 * there fails the service (vg_kafka_failed), with the reason in the log. */
static void *setup_main(void *arg) {
    vg_kafka_t *k = arg;
    pthread_setname_np(pthread_self(), "vigil-kafka-wait");
    int32_t nin = 0;
    while (!GET(k->stop)) {
        for (int i = 0; i < 10 && !GET(k->stop); i++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (GET(k->stop)) break;
        nin = vg_cl_topic_parts(k->setup_rk, k->topic_in, 5000);
        if (nin > 0) break;
    }
    char err[1024];
    int rc = 0;
    if (nin > 0 && !GET(k->stop)) {
        logf_(k, 1, "the input topic %s exists now (%d partitions): starting", k->topic_in,
              (int)nin);
        rc = setup_topics(k, k->setup_rk, nin, err, sizeof err);
    }
    rd_kafka_destroy(k->setup_rk);
    k->setup_rk = NULL;
    if (!rc && nin > 0 && !GET(k->stop)) rc = start_workers(k, err, sizeof err);
    if (rc) {
        logf_(k, 1, "%s", err);
        SET(k->failed, 1);
    }
    return NULL;
}

int vg_kafka_start(vg_kafka_t *k, char *errbuf, size_t errlen) {
    if (k->running) return 0;
    rd_kafka_t *rk = meta_client(k, errbuf, errlen);
    if (!rk) return VG_EIO;
    if (check_brokers(k, rk, errbuf, errlen) != 0) {
        rd_kafka_destroy(rk);
        return VG_EIO;
    }
    int32_t nin = vg_cl_topic_parts(rk, k->topic_in, VG_CL_TIMEOUT_MS);
    if (nin <= 0) {
        /* a typo, or not created yet: say so, and wait for it (the changelog and labels
         * topics take its partition count; it was fatal with a changelog) */
        logf_(k, 1, "the input topic %s does not exist (yet): nothing is consumed until it "
                    "does (it is looked for every second; the changelog and labels topics "
                    "are checked then)", k->topic_in);
        k->setup_rk = rk;
        if (pthread_create(&k->setup, NULL, setup_main, k) != 0) {
            k->setup_rk = NULL;
            rd_kafka_destroy(rk);
            snprintf(errbuf, errlen, "cannot start a thread");
            return VG_EIO;
        }
        k->setup_started = 1;
        k->running = 1;
        return 0;
    }
    int rc = setup_topics(k, rk, nin, errbuf, errlen);
    rd_kafka_destroy(rk);
    if (rc || start_workers(k, errbuf, errlen) != 0) return VG_EIO;
    k->running = 1;
    return 0;
}

void vg_kafka_stop(vg_kafka_t *k) { SET(k->stop, 1); }

int vg_kafka_wait(vg_kafka_t *k) {
    if (k->setup_started) {   /* first: it may start the workers */
        pthread_join(k->setup, NULL);
        k->setup_started = 0;
    }
    for (int i = 0; i < k->nw; i++) {
        if (k->w[i].started) pthread_join(k->w[i].tid, NULL);
        k->w[i].started = 0;
    }
    reaper_stop(k);   /* every queued request was answered by its worker on the way out */
    k->running = 0;
    return GET(k->failed) ? VG_EIO : 0;
}

int vg_kafka_failed(const vg_kafka_t *k) { return GET(((vg_kafka_t *)k)->failed); }

void vg_kafka_free(vg_kafka_t *k) {
    if (!k) return;
    if (k->w) {
        vg_kafka_stop(k);
        vg_kafka_wait(k);
        for (int i = 0; i < k->nw; i++) worker_deinit(&k->w[i]);
        free(k->w);
    }
    if (k->conf)
        for (int i = 0; i < k->nconf; i++) free(k->conf[i]);
    free(k->conf);
    free(k->conf_scope);
    vg_prog_unref(k->o.prog);
    vg_lists_unref(k->o.pipeline.lists);
    pthread_mutex_destroy(&k->rmu);
    free(k->brokers);
    free(k->group);
    free(k->topic_in);
    free(k->topic_alerts);
    free(k->topic_dec);
    free(k->topic_dlq);
    free(k->topic_cl);
    free(k->topic_lab);
    free((void *)k->lab_applied);
    free((void *)k->lab_waiting);
    if (k->pub) {
        rd_kafka_flush(k->pub, 5000);
        rd_kafka_destroy(k->pub);
    }
    pthread_mutex_destroy(&k->pmu);
    free(k->topic_er);
    free((void *)k->owner);
    free((void *)k->taken);
    free((void *)k->in_max);
    free(k->state_dir);
    free(k);
}

int vg_kafka_ready(const vg_kafka_t *k) {
    if (!k->running) return 0;
    for (int i = 0; i < k->nw; i++)
        if (!GET(((vg_kafka_t *)k)->w[i].ready)) return 0;
    return 1;
}

int64_t vg_kafka_rebalancing_ms(const vg_kafka_t *k) {
    int64_t first = 0;
    for (int i = 0; i < k->nw; i++) {
        int64_t d = GET(((vg_kafka_t *)k)->w[i].unassigned_since);
        if (d && (!first || d < first)) first = d;
    }
    if (!first || GET(((vg_kafka_t *)k)->stop)) return 0;
    int64_t t = mono_ms() - first;
    return t > 0 ? t : 1;
}

int64_t vg_kafka_down_ms(const vg_kafka_t *k) {
    int64_t first = 0;
    for (int i = 0; i < k->nw; i++) {
        int64_t d = GET(((vg_kafka_t *)k)->w[i].down_since);
        if (d && (!first || d < first)) first = d;
    }
    if (!first) return 0;
    int64_t t = mono_ms() - first;
    return t > 0 ? t : 1;
}

int vg_kafka_owned(const vg_kafka_t *k, int32_t *out, int max) {
    int n = 0;
    for (int32_t p = 0; k->owner && p < k->nparts && n < max; p++)
        if (atomic_load(&k->owner[p]) >= 0) out[n++] = p;
    return n;
}

void vg_kafka_get_stats(const vg_kafka_t *k, vg_kafka_stats_t *s) {
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < k->nw; i++) {
        counters_t *c = &((vg_kafka_t *)k)->w[i].ct;
        s->messages += GET(c->messages);
        s->decided += GET(c->decided);
        s->duplicates += GET(c->duplicates);
        s->rejected += GET(c->rejected);
        s->blank += GET(c->blank);
        s->truncated += GET(c->truncated);
        for (int j = 0; j < 4; j++) s->by_decision[j] += GET(c->by_decision[j]);
        for (int j = 0; j < VG_REJECT__COUNT; j++) s->rejected_by[j] += GET(c->rejected_by[j]);
        s->alerts += GET(c->alerts);
        s->alerts_acked += GET(c->alerts_acked);
        s->decisions_out += GET(c->decisions_out);
        s->dead_letters += GET(c->dead_letters);
        s->stale += GET(c->stale);
        s->delivery_errors += GET(c->delivery_errors);
        s->rewinds += GET(c->rewinds);
        s->reprocessed += GET(c->reprocessed);
        s->gaps += GET(c->gaps);
        s->backpressure += GET(c->backpressure);
        s->checkpoints += GET(c->checkpoints);
        s->checkpoint_us_sum += GET(c->ckpt_us_sum);
        s->checkpoint_encode_us_sum += GET(c->enc_us_sum);
        if (GET(c->enc_us_max) > s->checkpoint_encode_us_max)
            s->checkpoint_encode_us_max = GET(c->enc_us_max);
        s->changelog_records += GET(c->cl_records);
        s->changelog_chunked += GET(c->cl_chunked);
        s->changelog_restores += GET(c->cl_restores);
        s->changelog_restored += GET(c->cl_restored);
        s->changelog_seeds += GET(c->cl_seeds);
        s->changelog_head_lost += GET(c->cl_head_lost);
        s->scored += GET(c->scored);
        s->labels += GET(c->labels);
        s->labels_invalid += GET(c->labels_invalid);
        s->labels_waits += GET(c->labels_waits);
        s->changelog_restore_s += (double)GET(c->cl_restore_us) / 1e6;
        uint64_t mx = GET(c->ckpt_us_max);
        if (mx > s->checkpoint_us_max) s->checkpoint_us_max = mx;
        int64_t lag = GET(c->lag);
        uint32_t np = GET(c->partitions);
        if (np > 0 && (lag < 0 || s->lag < 0)) s->lag = -1;   /* a thread without partitions
                                                                 adds nothing */
        else if (np > 0) s->lag += lag;
        s->partitions += np;
        for (int j = 0; j < NB; j++) s->latency_buckets[j] += GET(c->lat[j]);
        s->latency_count += GET(c->lat_count);
        s->latency_sum_s += (double)GET(c->lat_sum_us) / 1e6;
    }
    if (s->partitions == 0) s->lag = -1;   /* nothing assigned (yet): unknown */
    s->input_partitions = k->nparts > 0 ? (uint32_t)k->nparts : 0;
    s->route_crc = atomic_load(&k->route_crc);
    s->labels_topic = k->lab_name && !atomic_load(&((vg_kafka_t *)k)->lab_off);
    s->keys_neither = atomic_load(&k->keys_neither);
    s->keys_other = atomic_load(&k->keys_other);
    s->keys_none = atomic_load(&k->keys_none);
}
