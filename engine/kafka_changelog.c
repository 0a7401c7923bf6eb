/* kafka_changelog.c - the state changelog of the Kafka pipeline: restoring a
 * partition's store from its changelog partition, and checking (or creating) the
 * changelog topic. Producing to it is engine/kafka.c's (it counts the messages with
 * the partition's other output). Format and reasoning: kafka_int.h and docs/kafka.md
 * ("State handover").
 */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/kafka_int.h"
#include "engine/le.h"
#include "rules/errors.h"

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vg_cl_is_key(const void *k, size_t kl, const char *name) {
    size_t n = strlen(name);
    return kl == n && memcmp(k, name, n) == 0;
}

int vg_cl_get_i64(vg_store_t *s, const char *key, int64_t *out) {
    vg_buf_t b;
    vg_buf_init(&b);
    int rc = vg_store_get(s, key, strlen(key), &b);
    if (rc == 0 && b.len == sizeof(*out)) memcpy(out, b.p, sizeof(*out));
    else if (rc == 0) rc = VG_ESTORE;
    vg_buf_deinit(&b);
    return rc;
}

/* ---- restore ---- */

/* A chunk of a large record (kafka_int.h), kept until its header comes. */
/* Erased accounts purged one by one after a restore; more: the account ranges whole. */
#define PURGE_MAX 8

typedef struct {
    void *key;           /* the record's key */
    size_t kl;
    uint32_t index;
    void *val;
    size_t vl;
} chunk_t;

typedef struct {
    vg_batch_t *b;       /* what came since the last marker */
    vg_buf_t keys;       /* its keys (u32 length + bytes each): the tail when no marker follows */
    int tail_wipe;       /* a wipe since the last marker */
    chunk_t *ch;         /* chunks read and not used yet */
    size_t nch, chcap;
} pend_t;

static void chunks_free(pend_t *p) {
    for (size_t i = 0; i < p->nch; i++) {
        free(p->ch[i].key);
        free(p->ch[i].val);
    }
    free(p->ch);
    p->ch = NULL;
    p->nch = p->chcap = 0;
}

/* Keeps a chunk (the newest of each key and number). 0 or VG_ENOMEM. */
static int chunk_keep(pend_t *p, const void *key, size_t kl, uint32_t index, const void *v,
                      size_t vl) {
    void *nv = malloc(vl ? vl : 1);
    if (!nv) return VG_ENOMEM;
    memcpy(nv, v, vl);
    for (size_t i = 0; i < p->nch; i++)
        if (p->ch[i].index == index && p->ch[i].kl == kl && memcmp(p->ch[i].key, key, kl) == 0) {
            free(p->ch[i].val);
            p->ch[i].val = nv;
            p->ch[i].vl = vl;
            return 0;
        }
    if (p->nch == p->chcap) {
        size_t cap = p->chcap ? 2 * p->chcap : 8;
        chunk_t *n = realloc(p->ch, cap * sizeof(*n));
        if (!n) {
            free(nv);
            return VG_ENOMEM;
        }
        p->ch = n;
        p->chcap = cap;
    }
    void *nk = malloc(kl ? kl : 1);
    if (!nk) {
        free(nv);
        return VG_ENOMEM;
    }
    memcpy(nk, key, kl);
    p->ch[p->nch++] = (chunk_t){nk, kl, index, nv, vl};
    return 0;
}

/* Assembles the value of key from its n chunks (total bytes) into out. 0, VG_EINVAL
 * (a chunk is missing or the lengths disagree) or VG_ENOMEM. */
static int chunk_assemble(pend_t *p, const void *key, size_t kl, uint32_t n, uint64_t total,
                          vg_buf_t *out) {
    vg_buf_clear(out);
    for (uint32_t i = 0; i < n; i++) {
        const chunk_t *c = NULL;
        for (size_t j = 0; j < p->nch && !c; j++)
            if (p->ch[j].index == i && p->ch[j].kl == kl && memcmp(p->ch[j].key, key, kl) == 0)
                c = &p->ch[j];
        if (!c) return VG_EINVAL;
        if (vg_buf_append(out, c->val, c->vl) != 0) return VG_ENOMEM;
    }
    return out->len == total ? 0 : VG_EINVAL;
}

static int del_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v;
    (void)vl;
    vg_batch_delete(ctx, k, kl);
    return 0;
}

/* Every local key deleted first (the changelog's state replaces the local one). */
static int pend_wipe(pend_t *p, vg_store_t *s) {
    vg_batch_clear(p->b);
    vg_buf_clear(&p->keys);
    p->tail_wipe = 1;
    return vg_store_scan(s, "", 0, del_cb, p->b) ? VG_ESTORE : 0;
}

/* The checkpoint's meta records ("m/kafka/..": the input offset, the labels offset) of a
 * read whose start is gone (head_lost below): the newest value of each, pending (since
 * the last marker) and committed (by a marker), for a partition started empty at the
 * last marker. Anything else such a read holds is left out. */
#define META_PREFIX "m/kafka/"
#define META_MAX 8
typedef struct {
    char k[64];
    size_t kl;
    unsigned char v[64];
    size_t vl;
} meta_t;
typedef struct {
    meta_t pend[META_MAX], done[META_MAX];
    int npend, ndone;
} metas_t;

static void meta_set(meta_t *set, int *n, const void *k, size_t kl, const void *v, size_t vl) {
    int i = 0;
    while (i < *n && !(set[i].kl == kl && memcmp(set[i].k, k, kl) == 0)) i++;
    if (i == *n) {
        if (*n == META_MAX) return;
        (*n)++;
    }
    memcpy(set[i].k, k, kl);
    set[i].kl = kl;
    memcpy(set[i].v, v, vl);
    set[i].vl = vl;
}

static void meta_keep(metas_t *m, const void *k, size_t kl, const void *v, size_t vl) {
    size_t pl = strlen(META_PREFIX);
    if (!v || kl <= pl || kl > sizeof(m->pend[0].k) || vl > sizeof(m->pend[0].v) ||
        memcmp(k, META_PREFIX, pl) != 0 || vg_cl_is_key(k, kl, VG_CL_POS_KEY))
        return;
    meta_set(m->pend, &m->npend, k, kl, v, vl);
}

static void meta_commit(metas_t *m) {
    for (int i = 0; i < m->npend; i++)
        meta_set(m->done, &m->ndone, m->pend[i].k, m->pend[i].kl, m->pend[i].v, m->pend[i].vl);
    m->npend = 0;
}

int vg_cl_restore(rd_kafka_t *rc, const char *topic, int32_t part, vg_store_t *s,
                  const atomic_int *stop, vg_buf_t *redo, vg_cl_restore_t *out, char *errbuf,
                  size_t errlen) {
    memset(out, 0, sizeof(*out));
    int64_t pos = -1, off = -1;
    int r = vg_cl_get_i64(s, VG_CL_POS_KEY, &pos);
    if (r && r != VG_ENOTFOUND) goto unreadable;
    r = vg_cl_get_i64(s, VG_CL_MARK_KEY, &off);
    if (r && r != VG_ENOTFOUND) goto unreadable;
    int has_state = off >= 0;
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    int64_t t0 = mono_ms();
    do {   /* the partition's leader may be moving: retry for a while */
        e = rd_kafka_query_watermark_offsets(rc, topic, part, &lo, &hi, 5000);
    } while (e && mono_ms() - t0 < VG_CL_TIMEOUT_MS && !atomic_load(stop));
    if (e) {
        snprintf(errbuf, errlen, "changelog %s [%d]: cannot read its offsets: %s", topic,
                 (int)part, rd_kafka_err2str(e));
        return VG_EIO;
    }
    out->lo = lo;
    out->hi = hi;
    out->pos = pos;
    int64_t from;
    int wipe_first = 0;
    /* the records before the changelog's low watermark were deleted (retention,
     * DeleteRecords, the test broker's cap) and this store never read them: what is
     * left holds the keys changed since, not those written once (the decision template
     * and shapes, the layout) or not changed since (most accounts). Applied without
     * them, accounts cannot be decoded: only a wipe read (a seed: the whole state
     * follows it) makes the read whole again. */
    int head_lost = 0;
    if (pos < 0) {
        if (hi <= lo) {   /* nothing in the changelog */
            out->seed = has_state;
            out->pos = hi;
            return 0;
        }
        from = lo;
        wipe_first = 1;
        head_lost = lo > 0;
    } else if (hi < pos) {   /* the topic was recreated: the local state is the newest */
        out->seed = has_state;
        out->recreated = 1;
        out->pos = hi;
        return 0;
    } else if (hi == pos) {
        return 0;   /* up to date */
    } else if (lo > pos) {   /* what the local store lacks is gone: all from the start */
        from = lo;
        wipe_first = 1;
        out->truncated = 1;
        head_lost = 1;
    } else {
        from = pos;
    }
    out->from = from;

    pend_t p = {vg_batch_new(), {0}, 0, NULL, 0, 0};
    vg_buf_init(&p.keys);
    vg_buf_t big;   /* an assembled large record */
    vg_buf_init(&big);
    /* accounts whose record ("a/" + name) a tombstone deleted: erasures (DELETE
     * /v1/accounts at the owner). This store may hold their records from before (a
     * copy from when this instance owned the partition), and the read wrote them again
     * before their tombstones: they are purged from the files once the read is done
     * (docs/architecture.md, Erasure). u32 length + name each; at most PURGE_MAX, past
     * that the whole account ranges are compacted */
    vg_buf_t erased;
    vg_buf_init(&erased);
    size_t nerased = 0;
    size_t cpl = strlen(VG_CL_CHUNK_PREFIX);
    int rcode = 0;
    if (!p.b) {
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    /* with its head lost, nothing is applied before a wipe is read (partial) */
    int partial = head_lost;
    metas_t meta = {.npend = 0, .ndone = 0};
    int64_t lost_mark = -1;   /* partial: the last marker's input offset */
    if (wipe_first && !partial && pend_wipe(&p, s) != 0) goto store_err;
    p.tail_wipe = 0;   /* the local state is not in the changelog's log: a seed covers it */
    int wiped_pending = wipe_first;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, part)->offset = from;
    e = rd_kafka_assign(rc, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        snprintf(errbuf, errlen, "changelog %s [%d]: %s", topic, (int)part, rd_kafka_err2str(e));
        rcode = VG_EIO;
        goto done;
    }
    int64_t last_msg = mono_ms(), next = from;
    while (next < hi) {
        if (atomic_load(stop)) {
            snprintf(errbuf, errlen, "changelog %s [%d]: stopped while restoring", topic,
                     (int)part);
            rcode = VG_EIO;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rc, 200);
        if (!m) {
            if (mono_ms() - last_msg > VG_CL_TIMEOUT_MS) {
                snprintf(errbuf, errlen, "changelog %s [%d]: no progress for %d s at offset %"
                         PRId64 " of %" PRId64, topic, (int)part, VG_CL_TIMEOUT_MS / 1000,
                         next, hi);
                rcode = VG_EIO;
                break;
            }
            continue;
        }
        last_msg = mono_ms();
        if (m->partition != part || !m->rkt || strcmp(rd_kafka_topic_name(m->rkt), topic) != 0) {
            rd_kafka_message_destroy(m);   /* left over from an earlier restore */
            continue;
        }
        if (m->err) {
            rd_kafka_resp_err_t me = m->err;
            int eof = me == RD_KAFKA_RESP_ERR__PARTITION_EOF;
            if (eof && m->offset > next) next = m->offset;
            if (me == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
                me == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                me == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                snprintf(errbuf, errlen, "changelog %s [%d]: %s", topic, (int)part,
                         rd_kafka_message_errstr(m));
                rcode = VG_EIO;
            }
            rd_kafka_message_destroy(m);
            if (eof || rcode) break;
            continue;   /* transient (the broker moving, ...): retried by librdkafka */
        }
        if (m->offset < next || m->offset >= hi) {   /* fetched before the assign / after */
            rd_kafka_message_destroy(m);
            if (m->offset >= hi) break;
            continue;
        }
        next = m->offset + 1;
        out->records++;
        const void *k = m->key;
        size_t kl = m->key ? m->key_len : 0;
        if (!k || kl == 0 || vg_cl_is_key(k, kl, VG_CL_POS_KEY)) {
            /* not vigil's (no key) or a position (never produced): ignored */
        } else if (vg_cl_is_key(k, kl, VG_CL_WIPE_KEY)) {
            if (pend_wipe(&p, s) != 0) rcode = VG_ESTORE;
            wiped_pending = 1;
            partial = 0;   /* the whole state follows */
        } else if (partial) {
            /* not applied: only the meta records and the markers are followed */
            if (vg_cl_is_key(k, kl, VG_CL_MARK_KEY)) {
                if (m->payload && m->len == sizeof(int64_t)) {
                    memcpy(&lost_mark, m->payload, sizeof(lost_mark));
                    meta_commit(&meta);
                }
            } else {
                meta_keep(&meta, k, kl, m->payload, m->payload ? m->len : 0);
            }
        } else if (vg_cl_is_key(k, kl, VG_CL_MARK_KEY)) {
            if (!m->payload || m->len != sizeof(int64_t)) {
                snprintf(errbuf, errlen, "changelog %s [%d] offset %" PRId64
                         ": a checkpoint marker of %zu bytes (8 expected)", topic, (int)part,
                         m->offset, m->payload ? m->len : 0);
                rcode = VG_EINVAL;
            } else {
                int64_t np = m->offset + 1;
                vg_batch_put(p.b, k, kl, m->payload, m->len);
                vg_batch_put(p.b, VG_CL_POS_KEY, strlen(VG_CL_POS_KEY), &np, sizeof(np));
                if (vg_store_write(s, p.b, 1, errbuf, errlen) != 0) rcode = VG_ESTORE;
                vg_batch_clear(p.b);
                vg_buf_clear(&p.keys);
                p.tail_wipe = 0;
                if (wiped_pending && has_state) out->wiped = 1;   /* an empty store: nothing replaced */
                wiped_pending = 0;
                out->markers++;
                out->pos = np;
            }
        } else if (kl > cpl + 4 && memcmp(k, VG_CL_CHUNK_PREFIX, cpl) == 0) {
            /* a chunk of a large record: kept for its header; in a tail, its record's
             * key is redone like any other */
            const unsigned char *ck = (const unsigned char *)k + cpl;
            uint32_t idx = (uint32_t)ck[0] | (uint32_t)ck[1] << 8 | (uint32_t)ck[2] << 16 |
                           (uint32_t)ck[3] << 24;
            if (m->payload) rcode = chunk_keep(&p, ck + 4, kl - cpl - 4, idx, m->payload, m->len);
            if (!rcode && vg_le_put_key(&p.keys, ck + 4, kl - cpl - 4) != 0) rcode = VG_ENOMEM;
        } else if (m->payload && m->len == VG_CL_CHUNK_HDR &&
                   memcmp(m->payload, VG_CL_CHUNK_MAGIC, 8) == 0) {
            vg_le_rd_t rd = {(const unsigned char *)m->payload + 8, 12, 0, 0};
            uint32_t n = (uint32_t)vg_le_get(&rd, 4);
            uint64_t total = vg_le_get(&rd, 8);
            rcode = chunk_assemble(&p, k, kl, n, total, &big);
            if (rcode == VG_EINVAL)
                snprintf(errbuf, errlen, "changelog %s [%d] offset %" PRId64 ": a record in %u "
                         "chunks (%" PRIu64 " bytes) whose chunks are not all there", topic,
                         (int)part, m->offset, n, total);
            if (!rcode) vg_batch_put(p.b, k, kl, big.p, big.len);
            if (!rcode && vg_le_put_key(&p.keys, k, kl) != 0) rcode = VG_ENOMEM;
        } else {
            if (m->payload) vg_batch_put(p.b, k, kl, m->payload, m->len);
            else vg_batch_delete(p.b, k, kl);
            if (vg_le_put_key(&p.keys, k, kl) != 0) rcode = VG_ENOMEM;
            if (!m->payload && kl > 2 && memcmp(k, "a/", 2) == 0 && nerased <= PURGE_MAX) {
                if (nerased < PURGE_MAX && vg_le_put_key(&erased, (const char *)k + 2, kl - 2))
                    rcode = VG_ENOMEM;
                nerased++;
            }
        }
        rd_kafka_message_destroy(m);
        if (rcode) {
            if (rcode == VG_ENOMEM) snprintf(errbuf, errlen, "out of memory");
            break;
        }
    }
    rd_kafka_assign(rc, NULL);
    if (rcode) goto done;
    if (partial) {
        /* no wipe read: the changelog does not hold a whole state. A store with a
         * checkpoint keeps it (an older but whole state: the input is read again from
         * its offset); else the partition starts empty at the last marker's input
         * offset (its accounts' history is gone). Either is then written to the
         * changelog whole (seed), so that later readers find a wipe. */
        out->head_lost = 1;
        if (has_state) {
            out->seed = 1;
            out->kept = 1;
            out->pos = pos;
            goto done;
        }
        vg_batch_clear(p.b);
        if (vg_store_scan(s, "", 0, del_cb, p.b) != 0) goto store_err;
        for (int i = 0; lost_mark >= 0 && i < meta.ndone; i++)
            if (!vg_cl_is_key(meta.done[i].k, meta.done[i].kl, VG_CL_MARK_KEY))
                vg_batch_put(p.b, meta.done[i].k, meta.done[i].kl, meta.done[i].v,
                             meta.done[i].vl);
        if (lost_mark >= 0)
            vg_batch_put(p.b, VG_CL_MARK_KEY, strlen(VG_CL_MARK_KEY), &lost_mark,
                         sizeof(lost_mark));
        /* no position: until the seed is written, a restore comes here again */
        if (vg_store_write(s, p.b, 1, errbuf, errlen) != 0) {
            rcode = VG_ESTORE;
            goto done;
        }
        out->emptied = 1;
        out->lost_mark = lost_mark;
        out->seed = lost_mark >= 0;
        out->pos = -1;
        goto done;
    }
    /* what follows the last marker was never committed: an owner stopped while writing
     * a checkpoint. Its keys are written again with their committed values (redo); a
     * wipe among them, or a changelog without any checkpoint of the local state, needs
     * all of it (seed). */
    if (p.tail_wipe || (wipe_first && out->markers == 0 && has_state)) out->seed = 1;
    else if (p.keys.len && vg_buf_append(redo, p.keys.p, p.keys.len) != 0) {
        snprintf(errbuf, errlen, "out of memory");
        rcode = VG_ENOMEM;
    }
    out->tail = p.keys.len > 0 || p.tail_wipe;
    goto done;
store_err:
    snprintf(errbuf, errlen, "cannot read the state in %s", vg_store_path(s));
    rcode = VG_ESTORE;
done:
    if (!rcode && nerased && !out->head_lost) {
        if (nerased > PURGE_MAX) {   /* many: the whole account ranges, one compaction */
            unsigned char e[3][2];
            vg_key_range_t r[3];
            static const char *const pre[3] = {"a/", "d/", "w/"};
            for (int i = 0; i < 3; i++) vg_key_range_prefix(&r[i], pre[i], 2, e[i]);
            rcode = vg_store_purge(s, r, 3, errbuf, errlen);
        } else {
            vg_le_rd_t rd = {(const unsigned char *)erased.p, erased.len, 0, 0};
            size_t n;
            for (const void *a; !rcode && (a = vg_le_get_key(&rd, &n)) != NULL;)
                rcode = vg_store_purge_account(s, a, n, errbuf, errlen);
        }
        if (!rcode) out->purged = nerased;
    }
    vg_buf_deinit(&erased);
    vg_batch_free(p.b);
    vg_buf_deinit(&p.keys);
    vg_buf_deinit(&big);
    chunks_free(&p);
    return rcode;
unreadable:
    snprintf(errbuf, errlen, "%s: unreadable checkpoint position", vg_store_path(s));
    return VG_ESTORE;
}

/* ---- the topic ---- */

static int topic_parts(const struct rd_kafka_metadata *md, const char *name) {
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0)
            return md->topics[i].err ? -1 : md->topics[i].partition_cnt;
    return -1;
}

/* The metadata of every topic (asking for one would let the broker auto-create it),
 * retried for up to timeout_ms. */
static rd_kafka_resp_err_t all_topics(rd_kafka_t *rk, int64_t timeout_ms,
                                      const struct rd_kafka_metadata **md) {
    rd_kafka_resp_err_t e;
    int64_t t0 = mono_ms();
    do {
        e = rd_kafka_metadata(rk, 1, NULL, md, 5000);
    } while (e && mono_ms() - t0 < timeout_ms);
    return e;
}

int32_t vg_cl_topic_parts(rd_kafka_t *rk, const char *topic, int64_t timeout_ms) {
    const struct rd_kafka_metadata *md = NULL;
    if (all_topics(rk, timeout_ms, &md)) return -1;
    int n = topic_parts(md, topic);
    rd_kafka_metadata_destroy(md);
    return n;
}

int vg_cl_check_topic(rd_kafka_t *rk, const char *changelog, const char *input,
                      int32_t *input_parts, char *errbuf, size_t errlen) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = all_topics(rk, VG_CL_TIMEOUT_MS, &md);
    if (e) {
        snprintf(errbuf, errlen, "changelog: cannot read the cluster's topics: %s",
                 rd_kafka_err2str(e));
        return VG_EIO;
    }
    int n_in = topic_parts(md, input), n_cl = topic_parts(md, changelog);
    rd_kafka_metadata_destroy(md);
    *input_parts = n_in;
    if (n_in <= 0) {
        snprintf(errbuf, errlen, "changelog: the input topic %s does not exist (its partition "
                 "count sizes the changelog topic %s)", input, changelog);
        return VG_EINVAL;
    }
    if (n_cl > 0) {
        if (n_cl < n_in) {
            snprintf(errbuf, errlen, "changelog topic %s has %d partitions, fewer than the %d "
                     "of %s: give it at least as many (one per input partition)", changelog,
                     n_cl, n_in, input);
            return VG_EINVAL;
        }
        return 0;
    }
    /* create it: compacted, one partition per input partition */
    char why[512];
    if (vg_cl_create_topic(rk, changelog, n_in, 1, why, sizeof why) != 0) {
        snprintf(errbuf, errlen, "changelog: %s; create it so, or run without a changelog "
                 "(changelog = off)", why);
        return VG_EIO;
    }
    return 0;
}

int vg_cl_create_topic(rd_kafka_t *rk, const char *topic, int32_t parts, int compact,
                       char *errbuf, size_t errlen) {
    char es[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, parts, -1, es, sizeof(es));
    if (!nt) {
        snprintf(errbuf, errlen, "topic %s: %s", topic, es);
        return VG_EINVAL;
    }
    if (compact) rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, 15000, es, sizeof(es));
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
    int rc = 0;
    const char *why = NULL;
    if (!ev) {
        why = "no answer from the cluster";
    } else if (rd_kafka_event_error(ev)) {
        why = rd_kafka_event_error_string(ev);
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &cnt) : NULL;
        if (!tr || cnt != 1) why = "no result";
        else if (rd_kafka_topic_result_error(tr[0]) &&
                 rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            why = rd_kafka_topic_result_error_string(tr[0]);
    }
    if (why) {
        snprintf(errbuf, errlen, "cannot create the topic %s (%d partitions%s): %s", topic,
                 (int)parts, compact ? ", cleanup.policy=compact" : "", why);
        rc = VG_EIO;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}
