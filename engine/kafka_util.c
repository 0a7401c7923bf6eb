/* kafka_util.c - pure helpers of the Kafka service (see kafka.h): Kafka's partitioners,
 * the alert id hash, a top-level "ts" peek for the `future` check, and the embedded
 * mock broker; and (kafka_int.h) the decision-line helpers and the metrics text.
 */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/event.h"
#include "engine/kafka.h"
#include "engine/kafka_int.h"
#include "rules/errors.h"
#include "rules/utf8.h"

/* ---- partitioners ---- */

/* murmur2 exactly as Kafka's Java client (Utils.murmur2) and librdkafka. */
static uint32_t murmur2(const unsigned char *d, size_t len) {
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    uint32_t h = 0x9747b28c ^ (uint32_t)len;
    size_t i = 0;
    for (; i + 4 <= len; i += 4) {
        uint32_t k = (uint32_t)d[i] | (uint32_t)d[i + 1] << 8 | (uint32_t)d[i + 2] << 16 |
                     (uint32_t)d[i + 3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len & 3) {
    case 3: h ^= (uint32_t)d[i + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)d[i + 1] << 8;  /* fall through */
    case 1:
        h ^= d[i];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static uint32_t crc32(const unsigned char *d, size_t len) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        c ^= d[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

int32_t vg_kafka_partition(const void *key, size_t len, int32_t n, int crc) {
    if (n <= 1) return 0;
    if (crc) return (int32_t)(crc32(key, len) % (uint32_t)n);
    return (int32_t)((murmur2(key, len) & 0x7fffffff) % (uint32_t)n);
}

/* ---- alert id: MurmurHash3 x64 128 ---- */

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static void murmur3_128(const unsigned char *d, size_t len, uint64_t seed, uint64_t out[2]) {
    uint64_t h1 = seed, h2 = seed;
    const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
    size_t nblocks = len / 16;
    for (size_t i = 0; i < nblocks; i++) {
        uint64_t k1, k2;
        memcpy(&k1, d + i * 16, 8);
        memcpy(&k2, d + i * 16 + 8, 8);
        k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
        h1 = rotl64(h1, 27); h1 += h2; h1 = h1 * 5 + 0x52dce729;
        k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;
        h2 = rotl64(h2, 31); h2 += h1; h2 = h2 * 5 + 0x38495ab5;
    }
    const unsigned char *t = d + nblocks * 16;
    uint64_t k1 = 0, k2 = 0;
    switch (len & 15) {
    case 15: k2 ^= (uint64_t)t[14] << 48; /* fall through */
    case 14: k2 ^= (uint64_t)t[13] << 40; /* fall through */
    case 13: k2 ^= (uint64_t)t[12] << 32; /* fall through */
    case 12: k2 ^= (uint64_t)t[11] << 24; /* fall through */
    case 11: k2 ^= (uint64_t)t[10] << 16; /* fall through */
    case 10: k2 ^= (uint64_t)t[9] << 8;   /* fall through */
    case 9:
        k2 ^= (uint64_t)t[8];
        k2 *= c2; k2 = rotl64(k2, 33); k2 *= c1; h2 ^= k2;
        /* fall through */
    case 8: k1 ^= (uint64_t)t[7] << 56; /* fall through */
    case 7: k1 ^= (uint64_t)t[6] << 48; /* fall through */
    case 6: k1 ^= (uint64_t)t[5] << 40; /* fall through */
    case 5: k1 ^= (uint64_t)t[4] << 32; /* fall through */
    case 4: k1 ^= (uint64_t)t[3] << 24; /* fall through */
    case 3: k1 ^= (uint64_t)t[2] << 16; /* fall through */
    case 2: k1 ^= (uint64_t)t[1] << 8;  /* fall through */
    case 1:
        k1 ^= (uint64_t)t[0];
        k1 *= c1; k1 = rotl64(k1, 31); k1 *= c2; h1 ^= k1;
    }
    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    h2 += h1;
    out[0] = h1;
    out[1] = h2;
}

void vg_kafka_alert_id(const char *account, size_t alen, const char *id, size_t idlen,
                       int64_t ruleset, char out[33]) {
    /* length-prefixed fields, so that ("ab","c") and ("a","bc") differ */
    unsigned char buf[2 * (VG_EVENT_MAX_ID * 6 + 8) + 16];
    unsigned char *heap = NULL, *p = buf;
    size_t need = alen + idlen + 8 + 8 + 8;
    if (need > sizeof(buf)) {
        heap = malloc(need);
        p = heap;
    }
    uint64_t h[2] = {0, 0};
    if (p) {
        uint64_t al = alen, il = idlen;
        size_t o = 0;
        memcpy(p + o, &al, 8); o += 8;
        memcpy(p + o, account, alen); o += alen;
        memcpy(p + o, &il, 8); o += 8;
        memcpy(p + o, id, idlen); o += idlen;
        memcpy(p + o, &ruleset, 8); o += 8;
        murmur3_128(p, o, 0x76696769 /* "vigi" */, h);
    }
    free(heap);
    static const char hex[] = "0123456789abcdef";
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < 16; i++) out[w * 16 + i] = hex[(h[w] >> (60 - 4 * i)) & 15];
    out[32] = 0;
}

/* ---- embedded mock broker ---- */

struct vg_kafka_mock {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    int brokers;
    char *bootstrap;
};

vg_kafka_mock_t *vg_kafka_mock_new(int brokers, const char *const *topics,
                                   int default_parts, char *errbuf, size_t errlen) {
    char errstr[512];
    vg_kafka_mock_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    m->brokers = brokers < 1 ? 1 : brokers;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!m->rk) {   /* rd_kafka_new() took ownership of conf only on success */
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errlen, "embedded broker: %s", errstr);
        goto err;
    }
    m->mc = rd_kafka_mock_cluster_new(m->rk, m->brokers);
    if (!m->mc) {
        snprintf(errbuf, errlen, "embedded broker: cannot create the mock cluster");
        goto err;
    }
    for (int i = 0; topics && topics[i]; i++) {
        char name[256];
        const char *colon = strrchr(topics[i], ':');
        int parts = colon ? atoi(colon + 1) : default_parts;
        size_t n = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);
        if (n == 0 || n >= sizeof(name) || parts < 1) {
            snprintf(errbuf, errlen, "embedded broker: bad topic '%s'", topics[i]);
            goto err;
        }
        memcpy(name, topics[i], n);
        name[n] = 0;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(m->mc, name, parts,
                                                           m->brokers < 3 ? m->brokers : 3);
        if (e) {
            snprintf(errbuf, errlen, "embedded broker: topic %s: %s", name, rd_kafka_err2str(e));
            goto err;
        }
    }
    m->bootstrap = strdup(rd_kafka_mock_cluster_bootstraps(m->mc));
    if (!m->bootstrap) {
        snprintf(errbuf, errlen, "out of memory");
        goto err;
    }
    return m;
err:
    vg_kafka_mock_free(m);
    return NULL;
}

const char *vg_kafka_mock_bootstrap(const vg_kafka_mock_t *m) { return m->bootstrap; }

void vg_kafka_mock_set_down(vg_kafka_mock_t *m, int down) {
    for (int b = 1; b <= m->brokers; b++) {
        if (down) rd_kafka_mock_broker_set_down(m->mc, b);
        else rd_kafka_mock_broker_set_up(m->mc, b);
    }
}

int vg_kafka_mock_set_leader(vg_kafka_mock_t *m, const char *topic, int32_t partition,
                             int32_t broker) {
    return rd_kafka_mock_partition_set_leader(m->mc, topic, partition, broker) ? VG_EINVAL : 0;
}

void vg_kafka_mock_produce_errors(vg_kafka_mock_t *m, int n, int err) {
    rd_kafka_resp_err_t e[16];
    if (n > 16) n = 16;
    for (int i = 0; i < n; i++) e[i] = (rd_kafka_resp_err_t)err;
    rd_kafka_mock_push_request_errors_array(m->mc, 0 /* ApiKey Produce */, (size_t)n, e);
}

void vg_kafka_mock_free(vg_kafka_mock_t *m) {
    if (!m) return;
    if (m->mc) rd_kafka_mock_cluster_destroy(m->mc);
    if (m->rk) rd_kafka_destroy(m->rk);
    free(m->bootstrap);
    free(m);
}

/* ---- decision lines (kafka_int.h) ---- */

/* i at an opening quote: the index past the closing one (or n). */
size_t vg_kafka_str_end(const char *s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return n;
}

/* Points at the escaped text of the decision's "id" and "account". 0 or -1. */
int vg_kafka_dec_id_account(const char *d, size_t n, const char **id, size_t *il,
                          const char **acc, size_t *al) {
    if (n < 8 || memcmp(d, "{\"id\":\"", 7) != 0) return -1;
    size_t e = vg_kafka_str_end(d, n, 6);
    *id = d + 7;
    *il = e - 1 - 7;
    if (e + 12 > n || memcmp(d + e, ",\"account\":\"", 12) != 0) return -1;
    size_t a0 = e + 11;
    size_t ae = vg_kafka_str_end(d, n, a0);
    *acc = d + a0 + 1;
    *al = ae - 1 - (a0 + 1);
    return 0;
}

int vg_kafka_put_b64(vg_buf_t *b, const unsigned char *s, size_t n) {
    static const char tb[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (vg_buf_reserve(b, (n + 2) / 3 * 4) < 0) return VG_ENOMEM;
    char *o = b->p + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = tb[v >> 18];
        *o++ = tb[(v >> 12) & 63];
        *o++ = tb[(v >> 6) & 63];
        *o++ = tb[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        *o++ = tb[v >> 18];
        *o++ = tb[(v >> 12) & 63];
        *o++ = i + 1 < n ? tb[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

/* ---- metrics ---- */

int vg_kafka_metrics(const vg_kafka_t *k, vg_buf_t *out) {
    vg_kafka_stats_t s;
    vg_kafka_get_stats(k, &s);
    char line[256];
    int rc = 0;
#define EMIT(...)                                          \
    do {                                                   \
        snprintf(line, sizeof(line), __VA_ARGS__);         \
        if (!rc) rc = vg_buf_puts(out, line);              \
    } while (0)
#define COUNTER(name, help, v)                                                   \
    EMIT("# HELP vigil_kafka_" name " " help "\n# TYPE vigil_kafka_" name " counter\n"); \
    EMIT("vigil_kafka_" name " %" PRIu64 "\n", (uint64_t)(v))
    COUNTER("messages_total", "Messages consumed and processed.", s.messages);
    EMIT("# HELP vigil_kafka_decisions_total Decided events by decision.\n"
         "# TYPE vigil_kafka_decisions_total counter\n");
    static const char *const dn[4] = {"allow", "review", "block", "alert"};
    for (int i = 0; i < 4; i++)
        EMIT("vigil_kafka_decisions_total{decision=\"%s\"} %" PRIu64 "\n", dn[i],
             s.by_decision[i]);
    COUNTER("duplicates_total", "Duplicate events answered with their original decision.",
            s.duplicates);
    COUNTER("blank_total", "Empty messages (null, empty or whitespace value): skipped.",
            s.blank);
    COUNTER("truncated_total", "Alerts, decisions and dead letters larger than their topic "
            "takes, cut to fit (the record's \"truncated\" or \"original_truncated\" says so).",
            s.truncated);
    EMIT("# HELP vigil_kafka_rejected_total Rejected events by code.\n"
         "# TYPE vigil_kafka_rejected_total counter\n");
    for (int i = 1; i < VG_REJECT__COUNT; i++)
        EMIT("vigil_kafka_rejected_total{code=\"%s\"} %" PRIu64 "\n",
             vg_reject_code((vg_reject_t)i), s.rejected_by[i]);
    COUNTER("alerts_total", "Alerts produced.", s.alerts);
    COUNTER("alerts_acked_total", "Alerts acknowledged by the broker.", s.alerts_acked);
    COUNTER("decisions_published_total", "Decisions produced to the decisions topic.",
            s.decisions_out);
    COUNTER("dead_letters_total", "Records produced to the dead-letter topic.", s.dead_letters);
    COUNTER("stale_total", "Messages dropped as already processed or not owned.", s.stale);
    COUNTER("offset_gaps_total", "Offsets the broker no longer had (never processed).", s.gaps);
    COUNTER("delivery_errors_total", "Produced records the broker did not take (each rewinds "
            "its thread).", s.delivery_errors);
    COUNTER("rewinds_total", "Threads resumed from their last checkpoint after failed "
            "deliveries.", s.rewinds);
    COUNTER("reprocessed_total", "Messages processed again after a rewind (counted in "
            "messages_total again).", s.reprocessed);
    COUNTER("backpressure_total", "Produce calls that waited on a full producer queue.",
            s.backpressure);
    COUNTER("checkpoints_total", "Checkpoints written.", s.checkpoints);
    COUNTER("changelog_records_total", "Records produced to the state changelog.",
            s.changelog_records);
    COUNTER("changelog_chunked_total", "Store records larger than a changelog record may be, "
            "produced in chunks.", s.changelog_chunked);
    COUNTER("changelog_restores_total", "Partitions brought up to date from the changelog.",
            s.changelog_restores);
    COUNTER("changelog_restored_records_total", "Changelog records read by restores.",
            s.changelog_restored);
    COUNTER("http_scored_total", "Events scored over HTTP in a partition's pipeline.",
            s.scored);
    COUNTER("labels_applied_total", "Labels read from the labels topic and applied in a "
            "partition.", s.labels);
    COUNTER("labels_invalid_total", "Records of the labels topic that are not labels (skipped).",
            s.labels_invalid);
    COUNTER("labels_waits_total", "Times a labels partition waited for its input partition to "
            "catch up with a label.", s.labels_waits);
    COUNTER("changelog_seeds_total", "Partitions whose whole state was written to the changelog.",
            s.changelog_seeds);
    COUNTER("changelog_head_lost_total", "Restores whose changelog had lost its start and "
            "held no whole state: the local state kept, or started empty.",
            s.changelog_head_lost);
    EMIT("# HELP vigil_kafka_changelog_restore_seconds_total Time spent restoring.\n"
         "# TYPE vigil_kafka_changelog_restore_seconds_total counter\n"
         "vigil_kafka_changelog_restore_seconds_total %.6f\n", s.changelog_restore_s);
    EMIT("# HELP vigil_kafka_checkpoint_seconds Time to acknowledge and write checkpoints.\n"
         "# TYPE vigil_kafka_checkpoint_seconds summary\n");
    EMIT("vigil_kafka_checkpoint_seconds_sum %.6f\n", (double)s.checkpoint_us_sum / 1e6);
    EMIT("vigil_kafka_checkpoint_seconds_count %" PRIu64 "\n", s.checkpoints);
    EMIT("# HELP vigil_kafka_checkpoint_seconds_max Longest checkpoint.\n"
         "# TYPE vigil_kafka_checkpoint_seconds_max gauge\n"
         "vigil_kafka_checkpoint_seconds_max %.6f\n", (double)s.checkpoint_us_max / 1e6);
    EMIT("# HELP vigil_kafka_checkpoint_encode_seconds Time the processing threads spent "
         "encoding checkpoints (in slices between batches).\n");
    EMIT("# TYPE vigil_kafka_checkpoint_encode_seconds summary\n");
    EMIT("vigil_kafka_checkpoint_encode_seconds_sum %.6f\n",
         (double)s.checkpoint_encode_us_sum / 1e6);
    EMIT("vigil_kafka_checkpoint_encode_seconds_count %" PRIu64 "\n", s.checkpoints);
    EMIT("# HELP vigil_kafka_checkpoint_encode_seconds_max Longest checkpoint encoding.\n"
         "# TYPE vigil_kafka_checkpoint_encode_seconds_max gauge\n");
    EMIT("vigil_kafka_checkpoint_encode_seconds_max %.6f\n",
         (double)s.checkpoint_encode_us_max / 1e6);
    EMIT("# HELP vigil_kafka_consumer_lag Messages behind the high watermark.\n"
         "# TYPE vigil_kafka_consumer_lag gauge\nvigil_kafka_consumer_lag %" PRId64 "\n", s.lag);
    EMIT("# HELP vigil_kafka_partitions Partitions owned.\n"
         "# TYPE vigil_kafka_partitions gauge\nvigil_kafka_partitions %u\n", s.partitions);
    EMIT("# HELP vigil_kafka_labels_topic 1 when labels go through the labels topic to the "
         "owner of their partition, 0 when they reach only this instance's partitions.\n"
         "# TYPE vigil_kafka_labels_topic gauge\nvigil_kafka_labels_topic %d\n",
         s.labels_topic);
    EMIT("# HELP vigil_kafka_routing_crc32 1 when HTTP requests for an account go to its "
         "CRC32 partition (the producers use librdkafka's default partitioner), 0 for "
         "murmur2.\n# TYPE vigil_kafka_routing_crc32 gauge\nvigil_kafka_routing_crc32 %d\n",
         s.route_crc);
    EMIT("# HELP vigil_kafka_keys_misrouted_total Sampled message keys (1 in 64) on neither "
         "their murmur2 nor their CRC32 partition.\n"
         "# TYPE vigil_kafka_keys_misrouted_total counter\nvigil_kafka_keys_misrouted_total "
         "%u\n", s.keys_neither);
    EMIT("# HELP vigil_kafka_key_mismatch_total Decided events keyed by other than their "
         "account, or without a key (more than one input partition).\n");
    EMIT("# TYPE vigil_kafka_key_mismatch_total counter\n"
         "vigil_kafka_key_mismatch_total{kind=\"other\"} %" PRIu64 "\n"
         "vigil_kafka_key_mismatch_total{kind=\"none\"} %" PRIu64 "\n",
         s.keys_other, s.keys_none);
    EMIT("# HELP vigil_kafka_alert_latency_seconds Event (Kafka timestamp) to alert "
         "acknowledged by the broker.\n# TYPE vigil_kafka_alert_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i < VG_KAFKA_NB; i++) {
        cum += s.latency_buckets[i];
        if (i == VG_KAFKA_NB - 1)
            EMIT("vigil_kafka_alert_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
        else
            EMIT("vigil_kafka_alert_latency_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                 vg_kafka_latency_bounds_ms[i] / 1000.0, cum);
    }
    EMIT("vigil_kafka_alert_latency_seconds_sum %.6f\n", s.latency_sum_s);
    EMIT("vigil_kafka_alert_latency_seconds_count %" PRIu64 "\n", s.latency_count);
#undef COUNTER
#undef EMIT
    return rc;
}

/* ---- records too large for their topic ---- */

/* A top-level member of a JSON object: its key (without quotes) and the text of
 * `"key":value` (from the key's opening quote to the end of the value). */
typedef struct {
    const char *key;
    size_t klen;
    size_t from, to;
} member_t;

/* Splits the top-level members of the object rec[0..n) (at most cap). Returns their
 * count, or -1 when rec is not an object. Strings are skipped by their quotes
 * (vg_kafka_str_end), so braces and commas inside them do not count. */
static int split_members(const char *rec, size_t n, member_t *m, int cap) {
    size_t i = 0;
    while (i < n && (rec[i] == ' ' || rec[i] == '\n')) i++;
    if (i >= n || rec[i] != '{') return -1;
    i++;
    int k = 0;
    while (i < n) {
        while (i < n && (rec[i] == ' ' || rec[i] == ',')) i++;
        if (i < n && rec[i] == '}') return k;
        if (i >= n || rec[i] != '"' || k == cap) return -1;
        size_t ks = i, ke = vg_kafka_str_end(rec, n, i);
        if (ke >= n || rec[ke] != ':') return -1;
        size_t j = ke + 1;
        int depth = 0;
        while (j < n) {
            char c = rec[j];
            if (c == '"') {
                j = vg_kafka_str_end(rec, n, j);
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (depth == 0) break;
                depth--;
            } else if (c == ',' && depth == 0) {
                break;
            }
            j++;
        }
        if (j >= n) return -1;
        m[k].key = rec + ks + 1;
        m[k].klen = ke - ks - 2;
        m[k].from = ks;
        m[k].to = j;
        k++;
        i = j;
    }
    return -1;
}

static int key_is(const member_t *m, const char *k) {
    return m->klen == strlen(k) && memcmp(m->key, k, m->klen) == 0;
}

/* "rules" with each entry reduced (see vg_kafka_fit_record), appended to b. */
static int put_reduced_rules(vg_buf_t *b, const char *txt, size_t n, int names_only) {
    json_error_t je;
    json_t *a = json_loadb(txt, n, 0, &je);
    if (!json_is_array(a)) {
        json_decref(a);
        return -1;
    }
    static const char *const keep[] = {"rule", "module", "version", "action", "severity", "score"};
    json_t *r = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        json_t *o = json_object();
        for (size_t k = 0; k < (names_only ? 1 : sizeof keep / sizeof keep[0]); k++) {
            json_t *v = json_object_get(e, keep[k]);
            if (v) json_object_set(o, keep[k], v);
        }
        const char *msg = names_only ? NULL : json_string_value(json_object_get(e, "message"));
        if (msg) {
            size_t ml = json_string_length(json_object_get(e, "message"));
            json_object_set_new(o, "message", json_stringn(msg, vg_utf8_cut(msg, ml, 256)));
        }
        json_array_append_new(r, o);
    }
    json_decref(a);
    char *t = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(r);
    if (!t) return VG_ENOMEM;
    int rc = vg_buf_puts(b, t);
    free(t);
    return rc;
}

int vg_kafka_fit_record(const char *rec, size_t len, size_t max, vg_buf_t *out) {
    member_t m[32];
    int nm = split_members(rec, len, m, 32);
    if (nm < 0) return -1;
    /* stage 1: no explanation; 2: rules reduced; 3: the identifying members only */
    for (int stage = 1; stage <= 3; stage++) {
        vg_buf_clear(out);
        int rc = vg_buf_putc(out, '{');
        const char *left[32];
        int nl = 0, first = 1;
        for (int i = 0; !rc && i < nm; i++) {
            const member_t *x = &m[i];
            int drop = key_is(x, "features") || key_is(x, "anomaly");
            if (stage == 3)
                drop = !(key_is(x, "id") || key_is(x, "account") || key_is(x, "ts") ||
                         key_is(x, "decision") || key_is(x, "score") || key_is(x, "ruleset") ||
                         key_is(x, "alert_id") || key_is(x, "severity"));
            if (drop) {
                if (nl < 32 && !key_is(x, "truncated")) left[nl++] = x->key;
                continue;
            }
            if (!first) rc = vg_buf_putc(out, ',');
            first = 0;
            if (!rc && stage == 2 && (key_is(x, "rules") || key_is(x, "shadow"))) {
                size_t vs = x->from + x->klen + 3;   /* "key": */
                rc = vg_buf_append(out, rec + x->from, x->klen + 3);
                if (!rc) rc = put_reduced_rules(out, rec + vs, x->to - vs, key_is(x, "shadow"));
                if (rc == -1) rc = vg_buf_puts(out, "[]");
            } else if (!rc) {
                rc = vg_buf_append(out, rec + x->from, x->to - x->from);
            }
        }
        char num[96];
        snprintf(num, sizeof num, "%s\"truncated\":{\"bytes\":%zu,\"limit\":%zu,\"left_out\":[",
                 first ? "" : ",", len, max);
        if (!rc) rc = vg_buf_puts(out, num);
        for (int i = 0; !rc && i < nl; i++) {
            const member_t *x = NULL;
            for (int j = 0; j < nm; j++)
                if (m[j].key == left[i]) x = &m[j];
            if (i) rc = vg_buf_putc(out, ',');
            if (!rc) rc = vg_buf_putc(out, '"');
            if (!rc) rc = vg_buf_append(out, x->key, x->klen);
            if (!rc) rc = vg_buf_putc(out, '"');
        }
        if (!rc && stage == 2) rc = vg_buf_puts(out, nl ? ",\"rules.values\"" : "\"rules.values\"");
        if (!rc) rc = vg_buf_puts(out, "]}}");
        if (rc) return rc == -1 ? -1 : VG_ENOMEM;
        if (out->len <= max) return 0;
    }
    return -1;
}
