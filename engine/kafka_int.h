/* kafka_int.h - private to engine/kafka.c and engine/kafka_util.c: helpers that read a
 * decision line (SPEC section 3, as the pipeline writes it) and build output records.
 * All are pure functions of their arguments; none can fail unless said.
 */
#ifndef VG_KAFKA_INT_H
#define VG_KAFKA_INT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "engine/kafka.h"
#include <stdatomic.h>
#include <stdint.h>

#include "engine/jsonout.h"
#include "engine/store.h"

#define VG_KAFKA_NB 16   /* buckets of the latency histogram (vg_kafka_latency_bounds_ms) */

/* With i at an opening quote of s[0..n): the index past the closing quote (or n). */
size_t vg_kafka_str_end(const char *s, size_t n, size_t i);

/* Points *id and *acc (borrowed from d) at the escaped text of the decision's "id" and
 * "account" (the line starts {"id":"..","account":".."). 0, or -1 when it does not. */
int vg_kafka_dec_id_account(const char *d, size_t n, const char **id, size_t *il,
                            const char **acc, size_t *al);

/* Appends the standard base64 of s[0..n) to b. 0 or VG_ENOMEM. */
int vg_kafka_put_b64(vg_buf_t *b, const unsigned char *s, size_t n);

/* Fits an alert or decision record (a JSON object as vigil writes them) in at most `max`
 * bytes, for a topic whose records may not be larger (the producer's message.max.bytes,
 * or less once the broker refused one as too large): the top-level members are left out
 * in this order until it fits: "features" and "anomaly" (the explanation); then each
 * fired rule keeps only rule, module, version, action, severity, score and its message
 * cut to 256 bytes, and "shadow" only the names; last only id, account, ts, decision,
 * score, ruleset, alert_id and severity are kept. The record says what was left out:
 * "truncated":{"bytes":<original length>,"limit":<max>,"left_out":[...]}. Writes the
 * result to out (cleared first). 0; -1 when even the smallest form does not fit or the
 * record is not such an object; VG_ENOMEM. Kept members keep their exact text. */
int vg_kafka_fit_record(const char *rec, size_t len, size_t max, vg_buf_t *out);

/* ---- the state changelog (engine/kafka_changelog.c; docs/kafka.md "State handover") ----
 *
 * Changelog partition p mirrors the store of input partition p: every checkpoint
 * produces, in order, a wipe record when the state was reset since the last
 * checkpoint, the redo records (below), each put (key, value) and delete (key,
 * tombstone) of its RocksDB batch, and last the checkpoint marker: the key
 * VG_CL_MARK_KEY with the next input offset (8 bytes, as in the store). The records
 * before a marker are committed by it; what follows the last marker (an owner
 * stopped while producing a checkpoint) is not. A restore applies the records
 * marker by marker, each group in one RocksDB write with the position after its
 * marker (VG_CL_POS_KEY, local only), and returns the keys of the uncommitted tail:
 * their committed values are produced again (redo records) before the next
 * checkpoint's, so that a later marker commits correct values for them. With log
 * compaction (the latest record of each key kept) a read from the start still gives
 * the state at the last marker, provided a tail's keys are not compacted before the
 * next owner repairs them (min.compaction.lag.ms above the handover time). */
#define VG_CL_POS_KEY "m/kafka/changelog"   /* local: next changelog offset to read */
#define VG_CL_MARK_KEY "m/kafka/offset"     /* the checkpoint's input offset */
#define VG_CL_WIPE_KEY "x/wipe"             /* everything before is void */
#define VG_CL_TIMEOUT_MS 30000
/* A store record larger than one changelog record may be (message.max.bytes: a `by K`
 * window over a very busy key) is produced in chunks: records with the key
 * VG_CL_CHUNK_PREFIX + chunk number (4 bytes, little-endian) + the record's key, holding
 * consecutive pieces of the value, then the record's own key with a header as value:
 * VG_CL_CHUNK_MAGIC (8 bytes), the chunk count (4 bytes) and the value's length
 * (8 bytes), little-endian. A restore keeps the chunks it reads and puts the assembled
 * value when the header comes; chunks never reach the store. Chunks left from an older,
 * larger value of the key are not used (the header says how many). */
#define VG_CL_CHUNK_PREFIX "c/"
#define VG_CL_CHUNK_MAGIC "\0VGCHNK1"
#define VG_CL_CHUNK_HDR (8 + 4 + 8)

typedef struct vg_cl_restore {
    int64_t lo, hi;          /* the changelog partition's watermarks */
    int64_t from;            /* where the read started (when it read) */
    int64_t pos;             /* the local store's position after the restore (-1: none) */
    uint64_t records, markers;
    int seed;                /* 1: the changelog lacks the local state: produce all of it
                                (a wipe, every record, a marker) */
    int wiped;               /* the local state was replaced by the changelog's */
    int tail;                /* an uncommitted tail was found */
    int recreated;           /* the changelog ends before the local position */
    int truncated;           /* the changelog starts after the local position */
    int head_lost;           /* the changelog's first records were deleted before this
                                store read them, and no wipe (seed) came after: what it
                                holds is not a whole state and was not applied */
    int kept;                /* head_lost: the local checkpoint was kept (seed set) */
    int emptied;             /* head_lost, no local checkpoint: the store now holds an
                                empty state at lost_mark (seed set when lost_mark >= 0) */
    int64_t lost_mark;       /* emptied: the last marker's input offset (-1: none read) */
    size_t purged;           /* accounts whose records the read deleted (erasures),
                                purged from the store's files after it */
} vg_cl_restore_t;

/* 1 when key k[0..kl) is `name`. */
int vg_cl_is_key(const void *k, size_t kl, const char *name);

/* An int64 value of the store (8 bytes). 0, VG_ENOTFOUND or VG_ESTORE. */
int vg_cl_get_i64(vg_store_t *s, const char *key, int64_t *out);

/* Brings store `s` up to date with changelog partition `part` of `topic`, reading with
 * consumer `rc` (not in a group; assigned here, unassigned after; enable.partition.eof
 * set). Appends the keys of an uncommitted tail to `redo` (a key list,
 * engine/le.h). Returns 0, or VG_EIO / VG_ESTORE / VG_ENOMEM / VG_EINVAL with errbuf
 * (the store then holds a consistent earlier state: only whole checkpoints are
 * applied). */
int vg_cl_restore(rd_kafka_t *rc, const char *topic, int32_t part, vg_store_t *s,
                  const atomic_int *stop, vg_buf_t *redo, vg_cl_restore_t *out, char *errbuf,
                  size_t errlen);

/* The partition count of `topic` from the cluster's metadata (all topics: no
 * auto-creation), retried for up to timeout_ms; -1 when it does not exist or cannot be read. */
int32_t vg_cl_topic_parts(rd_kafka_t *rk, const char *topic, int64_t timeout_ms);

/* Checks that `changelog` has at least as many partitions as `input` (*input_parts),
 * creating it (compacted) through the admin API when it does not exist. 0, or
 * VG_EIO / VG_EINVAL with errbuf. */
int vg_cl_check_topic(rd_kafka_t *rk, const char *changelog, const char *input,
                      int32_t *input_parts, char *errbuf, size_t errlen);

/* Creates `topic` through the admin API (parts partitions, compacted when `compact`); an
 * existing one is fine. 0, or VG_EIO / VG_EINVAL with errbuf. */
int vg_cl_create_topic(rd_kafka_t *rk, const char *topic, int32_t parts, int compact,
                       char *errbuf, size_t errlen);

/* A consumer configuration with the service's settings (engine/kafka.c, make_conf:
 * brokers, the passed-through librdkafka settings, the group), for a reader outside the
 * workers (engine/kafka_tail.c). NULL with errbuf. */
rd_kafka_conf_t *vg_kafka_consumer_conf(vg_kafka_t *k, char *errbuf, size_t errlen);
const char *vg_kafka_group(const vg_kafka_t *k);

#endif
