/* kafka.h - the streaming service core: transactions from Kafka in, decisions, alerts
 * and dead letters out, with state and consumed offsets committed together.
 *
 * Design (docs/kafka.md has the long form):
 * - T processing threads; each is one member of the consumer group (its own
 *   KafkaConsumer) and owns the partitions the group assigns to it, and its own
 *   idempotent producer (acks=all, lz4). Nothing on the hot path takes a lock.
 * - Every assigned partition has its own state: a RocksDB store under
 *   STATE/kafka/<topic>-<partition> and a vg_pipeline_t over it. Per-account state is
 *   then exactly replay's (an account's events stay in one partition, in order), and
 *   state keyed otherwise (`by K` windows) is per partition, as SPEC section 5 says.
 * - Offsets are vigil's own: a checkpoint writes a partition's changed state and the
 *   next offset to consume (meta record "kafka/offset") in one atomic RocksDB write,
 *   and only after the broker acknowledged every message produced for the events
 *   before that offset. In steady state each thread checkpoints one partition at a
 *   time, about every checkpoint interval: its changes are encoded at the offset and
 *   written by a helper thread once the messages produced before are acknowledged,
 *   while every partition goes on (nothing is held); at a revocation, a rewind and at shutdown
 *   every changed partition is checkpointed synchronously after a full flush. On
 *   assignment a partition resumes at its stored offset (from its low watermark, asked
 *   of the leader, when it has none; from its start, loudly, when it ends before that
 *   offset: a recreated topic, or the embedded broker, empty at each start). Offsets
 *   are also committed to the group
 *   afterwards, for lag monitoring only.
 * - After a crash the events after the last checkpoint are processed again from the
 *   same state, so the same decisions and alerts (same alert_id) are produced again:
 *   at least once, never fewer, state never counts an event twice.
 * - Rebalance: a revoked partition is checkpointed and its store closed before the
 *   revocation returns. With a changelog topic (topic_changelog) every checkpoint is
 *   first produced to the partition's changelog partition and acknowledged, and a new
 *   owner brings its store up to date from it before resuming, so state moves between
 *   instances with separate disks (format: kafka_int.h; docs/kafka.md "State
 *   handover"); without one, only between instances sharing STATE.
 *
 * Output records:
 *   alert     (topic_alerts, key = input key, else the account): the decision line of
 *             SPEC section 3 plus "alert_id" (32 hex digits, a 128-bit hash of account,
 *             event id and ruleset version) and "severity" (highest of the fired active
 *             rules). Only when vg_pipeline_last_alert() says so; duplicates raise none.
 *   decision  (topic_decisions, when set): every decision line, duplicates included.
 *   dead letter (topic_dlq): {"original":base64,"topic":..,"partition":..,"offset":..,
 *             "id":..,"error":..,"code":..} for every rejected message.
 *
 * Threading: vg_kafka_new/start/stop/wait/free from one controlling thread;
 * vg_kafka_get_stats, vg_kafka_metrics and vg_kafka_ready from any thread.
 * Ownership: the service keeps a reference to the program and the lists; it copies
 * every string of the options.
 */
#ifndef VG_KAFKA_H
#define VG_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "engine/jsonout.h"
#include "engine/pipeline.h"
#include "rules/program.h"

typedef struct vg_kafka vg_kafka_t;

typedef struct vg_kafka_opts {
    const char *brokers;          /* bootstrap servers; required */
    const char *group;            /* consumer group, default "vigil" */
    const char *topic_in;         /* default "transactions" */
    const char *topic_alerts;     /* default "alerts" */
    const char *topic_decisions;  /* NULL: decisions are not published */
    const char *topic_dlq;        /* default "transactions.dlq" */
    const char *topic_changelog;  /* the state changelog (one partition per input
                                     partition, compacted; created when missing); NULL:
                                     none (state moves only through a shared STATE) */
    const char *topic_labels;     /* labels (POST /v1/labels) for every instance: one
                                     partition per input partition, created when missing;
                                     each processing thread reads the labels partitions of
                                     the input partitions it owns, with the offset in the
                                     partition's checkpoint; NULL: none (labels reach only
                                     the partitions this instance owns: vg_kafka_label) */
    const char *state_dir;        /* required: partitions' stores live under it */
    vg_program_t *prog;           /* borrowed; each partition's pipeline takes a ref */
    vg_pipeline_opts_t pipeline;  /* lateness, horizon, lists, versions, mem_budget (per
                                     partition); its `store` is ignored */
    int threads;                  /* processing threads, default 2 */
    int64_t future_ms;            /* reject events more than this ahead of the clock
                                     (code `future`); default 5 min; < 0: never */
    int64_t checkpoint_ms;        /* each partition is checkpointed about this often,
                                     default 5000 (see kafka.c: asynchronous) */
    int sync;                     /* fsync the state at checkpoints (default 1) */
    const char *const *conf;      /* librdkafka settings "name=value" for every client
                                     ("consumer.name=v" / "producer.name=v" for one
                                     kind), NULL-terminated; may be NULL */
    int quiet;                    /* 1: no informational log lines on stderr */
    int embedded;                 /* 1: the broker is librdkafka's mock cluster in this
                                     process (`--kafka embedded`): the consumers' group
                                     session timeout defaults to 6 s instead of 45 s (the
                                     mock delays a rebalance by the session timeout less
                                     1 s; a processing thread that joined the group late
                                     waited ~44 s for its partitions) */
    /* called from a processing thread when this instance is assigned a partition
     * (`vigil serve` advertises itself as its owner); may be NULL */
    void (*on_assign)(void *ctx, int32_t partition);
    void *on_assign_ctx;
    /* called from a processing thread after it applied a label read from the labels
     * topic, with the record's bytes (`vigil serve` keeps it with the account's labels,
     * so that the owner's account view shows labels posted to other instances); may be
     * NULL */
    void (*on_label)(void *ctx, const vg_label_t *lb, const char *rec, size_t len);
    void *on_label_ctx;
} vg_kafka_opts_t;

/* Checks one librdkafka setting "name=value" (optionally "consumer."/"producer."
 * prefixed) as vg_kafka_new() will apply it, without a client: librdkafka must know
 * the name and accept the value (its own error text, naming the property, goes in
 * errbuf), and it must not change a setting vigil's guarantees depend on
 * (enable.auto.commit=false, enable.auto.offset.store=false, enable.idempotence=true,
 * acks=all, isolation.level=read_committed; transactional.id, bootstrap.servers and
 * group.id are refused outright). User settings are applied after vigil's defaults,
 * so they win over every other default (compression.codec, linger.ms, ...). A
 * "consumer." prefix on a producer property (or the reverse) is refused: that client
 * kind would ignore it. Returns 0 or VG_EINVAL with the reason in errbuf. */
int vg_kafka_conf_check(const char *kv, char *errbuf, size_t errlen);

/* Makes (and at once destroys) a producer and a consumer with the settings, no broker
 * named, so that what librdkafka checks only when it makes a client (a CA file that
 * cannot be read, an unusable SASL mechanism) is found before anything starts.
 * Returns 0 or VG_EINVAL with librdkafka's reason in errbuf. */
int vg_kafka_conf_try(const char *const *conf, char *errbuf, size_t errlen);

/* The value librdkafka's configuration of this service's consumers (consumer = 1) or
 * producers (0) holds for `name`, as vg_kafka_start() would make it (vigil's defaults,
 * then the user's settings), into out. Returns 0, or VG_ENOTFOUND / VG_ENOMEM. */
int vg_kafka_client_conf(vg_kafka_t *k, int consumer, const char *name, char *out,
                         size_t outlen);

/* Fills the defaults above (brokers, state_dir and prog stay NULL). Can't fail. */
void vg_kafka_opts_default(vg_kafka_opts_t *o);

/* Checks the options and the librdkafka settings and creates the service without
 * starting it. Returns NULL with a reason in errbuf. Free with vg_kafka_free(). */
vg_kafka_t *vg_kafka_new(const vg_kafka_opts_t *o, char *errbuf, size_t errlen);

/* Checks that the brokers answer (for 30 s), sizes the changelog and labels topics by
 * the input topic (created when missing) and starts the processing threads (each joins
 * the group). An input topic that does not exist yet is logged and waited for by a
 * thread of its own, which does the rest once it exists (a failure then: the reason
 * in the log, vg_kafka_failed() 1). Returns 0, or VG_EIO with a reason in errbuf (no
 * brokers, a changelog or labels topic with too few partitions, clients that could
 * not be created; nothing is left running). */
int vg_kafka_start(vg_kafka_t *k, char *errbuf, size_t errlen);

/* Rule and list changes while running (`vigil serve`: PUT /v1/rules, lists, Redis):
 * each thread applies them between two batches to every partition it owns
 * (vg_pipeline_set_program: the state carries over as in a ruleset swap) and to the
 * partitions it is assigned later, then checkpoints the moved state at once. Alert ids
 * and decisions carry `version` from then on. The service takes references (lists
 * NULL: every list empty). Any thread; can't fail. */
void vg_kafka_set_program(vg_kafka_t *k, vg_program_t *p, int64_t version);
void vg_kafka_set_lists(vg_kafka_t *k, vg_lists_t *lists);

/* Scoring outside the log (`vigil serve`'s POST /v1/score): the event of account
 * `acct` is decided by the pipeline of the partition that holds the account's state
 * (Kafka's default partitioner, murmur2 of the account, over the input topic's
 * partitions), on the thread that owns it, between two batches; its alert (and
 * decision, when published) is produced as for a consumed event. The event is not in
 * the log: its effect on the state is written by the partition's next checkpoint
 * (lost if the process dies before it) and it is not replayed after a crash. A dry run
 * checkpoints the owning thread's partitions, then decides on a throw-away pipeline
 * over the partition's store (no state changes). A request that its thread has not
 * taken within timeout_ms is not decided (VG_ELIMIT, answered by the deadline thread
 * within ~2 ms of it); one taken in time is answered however long deciding takes.
 * Returns 0 with the decision or rejection line in out (with its newline) and *res;
 * VG_ENOTFOUND when this instance does not own the account's partition (res->partition
 * set; -1 while the partition count is unknown); VG_ELIMIT when it was not taken in time; VG_EIO
 * when the service is stopping or the dry run's checkpoint failed. Any thread. */
typedef struct vg_kafka_score_res {
    vg_outcome_t outcome;
    vg_reject_t reject;           /* when REJECTED */
    int alert;                    /* an alert was raised */
    int64_t ruleset;
    int32_t partition;
    int found;                    /* a baseline reset or an erasure: the partition held the
                                     account */
    int64_t erased_at_ms;         /* an erasure: the published record's erased_at_ms */
} vg_kafka_score_res_t;
int vg_kafka_score(vg_kafka_t *k, const char *acct, size_t alen, const char *body, size_t len,
                   int dry, int64_t timeout_ms, vg_buf_t *out, vg_kafka_score_res_t *res);

/* vg_kafka_score without blocking the caller's thread (the HTTP API suspends the
 * connection instead, so that one thread has many requests in flight and the owning
 * thread answers them in a batch). The caller provides *q (its members are the
 * service's) and keeps q, body, out and res valid until done(arg) is called: exactly
 * once, on one of the service's threads, when the request was answered or when
 * deadline_us (CLOCK_MONOTONIC, microseconds) passed before the owning thread took it
 * (VG_ELIMIT); then q->rc holds what vg_kafka_score would return. done must not block;
 * q may be reused or freed from the moment done is entered. Returns 0 when queued;
 * otherwise vg_kafka_score's error at once (res->partition set; done is not called). */
typedef struct vg_kafka_req {
    struct vg_kafka_req *next;
    void *w;                      /* the worker whose queue holds it */
    int kind;
    const char *acct;
    size_t alen;
    int32_t part;
    const char *body;
    size_t len;
    int dry;
    vg_buf_t *out;
    vg_kafka_score_res_t *res;
    int64_t deadline_us;
    void (*done_fn)(void *arg);
    void *done_arg;
    int rc, taken, done;
} vg_kafka_req_t;
int vg_kafka_score_async(vg_kafka_t *k, vg_kafka_req_t *q, const char *acct, size_t alen,
                         const char *body, size_t len, int dry, int64_t deadline_us,
                         vg_buf_t *out, vg_kafka_score_res_t *res, void (*done)(void *arg),
                         void *arg);

/* A label (POST /v1/labels) applied in the partition that holds its account, whose
 * later events there see it in the label aggregates (docs/rules.md, Labels); like an
 * HTTP score it is not in the input topic, so a crash before the partition's next
 * checkpoint forgets it. Same returns as vg_kafka_score (*partition set). Any thread. */
int vg_kafka_label(vg_kafka_t *k, const vg_label_t *lb, int64_t timeout_ms,
                   int32_t *partition);

/* Labels through the labels topic (opts.topic_labels): each produced (its value `vals[i]`,
 * JSON {"id","account","fraud"[,...]}, keyed by its account) to the labels partition of
 * its account's input partition (routed as vg_kafka_score), all acknowledged by the
 * broker within timeout_ms: then every instance's thread that owns the partition applies
 * it (durably: its offset is checkpointed with the state). Then waits, within the same
 * timeout, until this instance's threads have applied those whose partitions they own.
 * *applied: labels applied here by then; *elsewhere: labels whose partitions this
 * instance does not own (applied by their owner as it reads them). 0; VG_EINVAL when
 * there is no labels topic or the input topic's partitions are unknown; VG_EIO with
 * errbuf when the broker did not acknowledge every label (post them again: applying a
 * label twice changes nothing). Any thread. */
int vg_kafka_post_labels(vg_kafka_t *k, const vg_label_t *lbs, const char *const *vals,
                         int n, int64_t timeout_ms, int *applied, int *elsewhere,
                         char *errbuf, size_t errlen);
/* The labels topic, NULL when there is none. */
const char *vg_kafka_topic_labels(const vg_kafka_t *k);

/* An account operation of the HTTP API in the partition that holds the account, queued
 * like vg_kafka_score_async (the caller's thread does not wait): erase = 1 erases it
 * (DELETE /v1/accounts/{a}: the partition is checkpointed, the account's records deleted
 * from its store, tombstoned in the changelog and acknowledged, and the memory state
 * reloaded without it); erase = 0 resets its anomaly baseline. q and res stay valid
 * until done(arg) is called (exactly once, on one of the service's threads; then q->rc
 * holds vg_kafka_score's returns and res->partition the partition); 0 when queued, else
 * the error at once (res->partition set; done not called). */
int vg_kafka_account_op_async(vg_kafka_t *k, vg_kafka_req_t *q, int erase, const char *acct,
                              size_t alen, int64_t deadline_us, vg_kafka_score_res_t *res,
                              void (*done)(void *arg), void *arg);

/* The account's state in the partition that holds it (GET /v1/accounts/{a}), queued the
 * same way: vg_pipeline_account_view's members appended to out (valid until done is
 * called, too), with at most max decisions; nothing appended when the partition holds no
 * state for the account. vg_kafka_account_op_async's contract otherwise. */
int vg_kafka_account_view_async(vg_kafka_t *k, vg_kafka_req_t *q, const char *acct,
                                size_t alen, int max, int64_t deadline_us, vg_buf_t *out,
                                vg_kafka_score_res_t *res, void (*done)(void *arg),
                                void *arg);

/* ---- a whole topic, outside the group (engine/kafka_tail.c) ----
 *
 * A reader of every partition of `topic` with the service's client settings, not in the
 * consumer group (nothing committed: the caller keeps its positions). On a thread of its
 * own it waits for the topic to exist, reads its partition count once, starts each
 * partition p at start(ctx, p) (< 0: its first offset) and hands the messages to fn in
 * batches (in order per partition; the message bytes are valid during the call). For the
 * HTTP API's alert list (every instance reads the whole alerts topic). */
typedef struct vg_kafka_tail vg_kafka_tail_t;
typedef struct vg_kafka_tail_msg {
    int32_t partition;
    int64_t offset;
    int64_t ts_ms;                /* the message's timestamp, -1 when it has none */
    const char *p;
    size_t len;
} vg_kafka_tail_msg_t;
vg_kafka_tail_t *vg_kafka_tail_start(vg_kafka_t *k, const char *topic,
                                     int64_t (*start)(void *ctx, int32_t partition),
                                     void (*fn)(void *ctx, const vg_kafka_tail_msg_t *m, int n),
                                     void *ctx, char *errbuf, size_t errlen);
/* Partitions being read (0 while the topic does not exist yet). Any thread. */
int vg_kafka_tail_partitions(const vg_kafka_tail_t *t);
/* Stops the thread (after the batch in hand) and frees. Accepts NULL. */
void vg_kafka_tail_stop(vg_kafka_tail_t *t);
/* The alerts topic of the service; the erasures topic (GROUP.erasures: one record per
 * DELETE /v1/accounts, which every instance's alert list applies). */
const char *vg_kafka_topic_alerts(const vg_kafka_t *k);
const char *vg_kafka_topic_erasures(const vg_kafka_t *k);
/* Produces one message (copied) with the service's producer settings (idempotent, acks
 * all) and waits up to timeout_ms for the broker's acknowledgement. 0, or VG_EIO with
 * errbuf (not acknowledged: it may or may not have been written). A producer of its
 * own, made on first use; calls are serialized. Any thread. */
int vg_kafka_publish(vg_kafka_t *k, const char *topic, const void *key, size_t kl,
                     const void *val, size_t vl, int64_t timeout_ms, char *errbuf,
                     size_t errlen);
/* Creates `topic` (parts partitions; compacted when `compact`) through the admin API
 * when the cluster does not have it. 0, or VG_EIO / VG_EINVAL with errbuf (librdkafka's
 * mock cluster has no CreateTopics). */
int vg_kafka_ensure_topic(vg_kafka_t *k, const char *topic, int32_t parts, int compact,
                          char *errbuf, size_t errlen);

/* Asks every thread to stop: each finishes its current batch, waits for its produced
 * messages to be acknowledged, checkpoints, commits and leaves the group. Returns at
 * once; async-signal-safe (it only sets a flag). Can't fail. */
void vg_kafka_stop(vg_kafka_t *k);

/* Waits for every thread to end. Returns 0 when all stopped cleanly (final checkpoint
 * written), VG_EIO when a thread failed (store error, a message the broker refused, a
 * checkpoint that could not complete); the state is then at its last checkpoint and a
 * restart resumes from there. Can't fail otherwise. */
int vg_kafka_wait(vg_kafka_t *k);

/* 1 when a thread ended on a fatal error (the service should stop and be restarted);
 * 0 otherwise. Can't fail. */
int vg_kafka_failed(const vg_kafka_t *k);

/* Stops (if running), waits and frees. Accepts NULL. */
void vg_kafka_free(vg_kafka_t *k);

/* 1 once every thread has received its first assignment from the group. */
int vg_kafka_ready(const vg_kafka_t *k);

/* How long (ms) the brokers have been unreachable: since a processing thread's consumer
 * had no broker connection up in its statistics (once a second; the earliest of the
 * threads still without one); 0 while every thread has one. Any thread. */
int64_t vg_kafka_down_ms(const vg_kafka_t *k);
/* How long (ms) some processing thread has been without its assignment since the group
 * took its partitions (a rebalance of the eager protocol, or partitions lost) and before
 * it gave it an assignment again (an empty one counts); 0 while every thread has one.
 * Any thread. */
int64_t vg_kafka_rebalancing_ms(const vg_kafka_t *k);
/* The input partitions this instance's workers own now, at most max of them, in out;
 * returns how many. */
int vg_kafka_owned(const vg_kafka_t *k, int32_t *out, int max);

typedef struct vg_kafka_stats {
    uint64_t messages;            /* consumed messages processed */
    uint64_t decided, duplicates, rejected, blank;
    uint64_t truncated;   /* alerts, decisions, dead letters cut to fit their topic */
    uint64_t by_decision[4];      /* allow, review, block, alert */
    uint64_t rejected_by[VG_REJECT__COUNT];
    uint64_t alerts, alerts_acked, decisions_out, dead_letters;
    uint64_t stale;               /* dropped: partition not owned or offset already done */
    uint64_t delivery_errors;     /* produced records the broker did not take */
    uint64_t rewinds;             /* threads resumed from their last checkpoint after them */
    uint64_t reprocessed;         /* messages processed again after a rewind (counted in
                                     messages, and their outputs in alerts etc., again) */
    uint64_t gaps;                /* offsets skipped by the broker (truncation) */
    uint64_t backpressure;        /* produce calls that waited on a full queue */
    uint64_t checkpoints;
    uint64_t checkpoint_us_sum, checkpoint_us_max;
    uint64_t checkpoint_encode_us_sum,  /* encoding the changes on the processing */
        checkpoint_encode_us_max;       /* thread, in slices (the write is the helper's) */
    uint64_t changelog_records;   /* produced to the state changelog */
    uint64_t changelog_chunked;   /* store records produced in chunks (kafka_int.h) */
    uint64_t changelog_restores, changelog_restored, changelog_seeds;
    uint64_t changelog_head_lost; /* restores that found the changelog's start deleted and
                                     no whole state in it (docs/kafka.md, State handover) */
    double changelog_restore_s;
    uint64_t scored;              /* events decided by vg_kafka_score (not dry runs) */
    uint64_t labels;              /* labels applied from the labels topic */
    uint64_t labels_invalid;      /* records of the labels topic that are not labels */
    uint64_t labels_waits;        /* times a labels partition waited for its input to
                                     catch up (a label newer than the input processed) */
    int64_t lag;                  /* sum over owned partitions (refreshed every 100 ms);
                                     -1 while unknown: none owned, some partition's
                                     watermarks unknown, or the brokers down */
    uint32_t partitions;          /* owned now */
    uint32_t input_partitions;    /* the input topic's partitions (0: unknown) */
    int route_crc;                /* requests routed by CRC32, not murmur2 (route_sample) */
    int labels_topic;             /* 1: labels go through the labels topic (0: none, or it
                                     could not be created) */
    uint32_t keys_neither;        /* sampled keys on neither partitioner's partition */
    uint64_t keys_other, keys_none; /* decided events keyed by other than their account,
                                       and without a key (input of more than one
                                       partition) */
    uint64_t latency_buckets[16]; /* event (Kafka timestamp) to alert acknowledged */
    uint64_t latency_count;
    double latency_sum_s;
} vg_kafka_stats_t;

/* Upper bounds of latency_buckets in milliseconds; the last is +Inf. */
extern const double vg_kafka_latency_bounds_ms[16];

/* Sums the threads' counters (a consistent-enough snapshot). Can't fail. */
void vg_kafka_get_stats(const vg_kafka_t *k, vg_kafka_stats_t *out);

/* Appends the metrics in Prometheus text format (vigil_kafka_*). 0 or VG_ENOMEM. */
int vg_kafka_metrics(const vg_kafka_t *k, vg_buf_t *out);

/* --- helpers, exported for tests and for `replay --partitions` --- */

/* Kafka's partitioner for a key over n partitions: murmur2 as Java's default
 * partitioner (and librdkafka's "murmur2"/"murmur2_random"), or CRC32 as
 * librdkafka's default "consistent_random" when crc is 1. Can't fail (n >= 1). */
int32_t vg_kafka_partition(const void *key, size_t len, int32_t n, int crc);

/* The alert id: 32 lowercase hex digits + NUL into out (33 bytes) for (account, event
 * id, ruleset version) (the strings as they appear in the decision, escaped). Can't
 * fail. */
void vg_kafka_alert_id(const char *account, size_t alen, const char *id, size_t idlen,
                       int64_t ruleset, char out[33]);


/* Embedded broker: librdkafka's mock cluster in this process, on loopback. */
typedef struct vg_kafka_mock vg_kafka_mock_t;
/* Starts `brokers` mock brokers and creates each topic of `topics` (NULL-terminated
 * "name" or "name:partitions"; default_parts when no count). NULL with errbuf on
 * failure. Free with vg_kafka_mock_free(). */
vg_kafka_mock_t *vg_kafka_mock_new(int brokers, const char *const *topics,
                                   int default_parts, char *errbuf, size_t errlen);
/* The bootstrap servers (borrowed, valid until vg_kafka_mock_free). */
const char *vg_kafka_mock_bootstrap(const vg_kafka_mock_t *m);
/* Sets every broker down (down=1) or up (0). Can't fail. */
void vg_kafka_mock_set_down(vg_kafka_mock_t *m, int down);
/* Makes `broker` (1..brokers; -1: none, the partition has no leader) the leader of
 * partition `partition` of `topic`, for tests. 0, or VG_EINVAL when the mock refused. */
int vg_kafka_mock_set_leader(vg_kafka_mock_t *m, const char *topic, int32_t partition,
                             int32_t broker);
/* Tests: the next n Produce requests (from any client) fail with broker error `err`
 * (an rd_kafka_resp_err_t; at most 16). */
void vg_kafka_mock_produce_errors(vg_kafka_mock_t *m, int n, int err);
void vg_kafka_mock_free(vg_kafka_mock_t *m);

#endif
