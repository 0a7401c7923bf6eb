/* alert_feed.c - with Kafka, the alert list of the HTTP API (GET /v1/alerts) is the
 * alerts topic: every instance reads every partition of it (engine/kafka.h,
 * vg_kafka_tail), whichever instance decided the event, the stream or a POST /v1/score.
 *
 * Each alert becomes the record the API keeps without Kafka ("N/" + BE64(~id): the
 * alert, plus `alerted_at`, the time it was produced to the topic, and `cursor`; id is
 * alerted_at's milliseconds << 16 plus a sequence number, so that the list is newest
 * first by alerted_at), with its account's alert index entry ("M/", api/ctl.h) in the
 * same write, once:
 * "I/" + alert_id -> BE64(id) says it is listed, so that an alert produced again after a
 * crash (at least once, same alert_id) is not listed twice. The next offset of each
 * partition ("G/alertoff/" + BE32(partition) -> BE64) is written in the same atomic
 * write as the alerts before it, so a restart goes on from there. Alerts older than
 * `alert-retention` (by their timestamp) are skipped; records that are not an alert
 * object with a 32-character alert_id are counted and skipped. The "I/" entries of
 * alerts past the retention are pruned once an hour (vg_api_tick).
 *
 * Erasures (DELETE /v1/accounts/{a}) reach every instance's list through the erasures
 * topic (GROUP.erasures): the instance that erased the account publishes
 * {"account":..,"erased_at":..,"erased_at_ms":..} (vg_api_publish_erasure), and each
 * instance's feed, reading that topic whole too ("G/eraseoff/" offsets), deletes the
 * account's listed alerts produced up to that time and remembers the erasure ("E/" +
 * account -> BE64(ms)) so that such alerts read later from the alerts topic are not
 * listed.
 */
#define _GNU_SOURCE   /* memmem, strndup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "engine/event.h"
#include "engine/kafka_int.h"
#include "rules/errors.h"

#define ALERT_ID_LEN 32

/* "G/alertoff/" or "G/eraseoff/" + BE32(p): 15 bytes */
static void off_key(unsigned char k[16], const char *name, int32_t p) {
    memcpy(k, name, 11);
    uint32_t u = (uint32_t)p;
    for (int i = 0; i < 4; i++) k[11 + i] = (unsigned char)(u >> (24 - 8 * i));
}

static int64_t stored_offset(vg_api_t *a, const char *name, int32_t p) {
    unsigned char k[16];
    off_key(k, name, p);
    vg_buf_t v;
    vg_buf_init(&v);
    int64_t off = -1;
    if (vg_ctl_get(a->ctl, k, 15, &v) == 0 && v.len == 8)
        off = (int64_t)vg_rd_be64((const unsigned char *)v.p);
    vg_buf_deinit(&v);
    return off;
}

static int64_t feed_start(void *ctx, int32_t p) { return stored_offset(ctx, "G/alertoff/", p); }
static int64_t erase_start(void *ctx, int32_t p) { return stored_offset(ctx, "G/eraseoff/", p); }

/* The time up to which the account's alerts are erased, or -1. */
static int64_t erased_until(vg_api_t *a, const char *acct, vg_buf_t *v) {
    size_t al = strlen(acct);
    if (al > 512) return -1;
    unsigned char k[2 + 512];
    memcpy(k, "E/", 2);
    memcpy(k + 2, acct, al);
    if (vg_ctl_get(a->ctl, k, 2 + al, v) != 0 || v->len != 8) return -1;
    return (int64_t)vg_rd_be64((const unsigned char *)v->p);
}

/* What the list needs of an alert record: its alert_id, its account (decoded), and the
 * record's JSON text without its closing brace (`body`), to which alerted_at and cursor
 * are appended. vigil's own alerts ({"id":..,"account":.., ...,"alert_id":"<32 hex>",
 * "severity":".."}) are read without a JSON parser (a parse cost ~30 us per alert, more
 * than deciding its event); anything else is parsed with jansson. */
typedef struct alert {
    char id[ALERT_ID_LEN + 1];
    char *acct;          /* owned */
    const char *body;    /* borrowed from the record, or owned in `own` */
    size_t blen;
    int empty;           /* the object has no member (body is "{") */
    char *own;
} alert_t;

static void alert_free(alert_t *al) {
    free(al->acct);
    free(al->own);
}

static int is_hex32(const char *p) {
    for (int i = 0; i < ALERT_ID_LEN; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    return 1;
}

/* 0, or -1 when the record is not an alert object with a 32-character alert_id. */
static int parse_alert(const char *p, size_t n, alert_t *al) {
    memset(al, 0, sizeof *al);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == '\t'))
        n--;
    /* the fast path: vigil's shape, the alert_id as the last member but one */
    static const char key[] = ",\"alert_id\":\"";
    const size_t kl = sizeof key - 1;
    const char *id = NULL, *acc = NULL;
    size_t il = 0, acl = 0;
    if (n > 64 && p[0] == '{' && p[n - 1] == '}' && !memchr(p, 0, n) &&
        vg_kafka_dec_id_account(p, n, &id, &il, &acc, &acl) == 0 && acl > 0 &&
        !memchr(acc, '\\', acl)) {
        size_t from = n > 200 ? n - 200 : 0;
        const char *k = NULL;
        for (const char *q = p + from; (q = memmem(q, (size_t)(p + n - q), key, kl)); q++) k = q;
        if (k && (size_t)(p + n - (k + kl)) > ALERT_ID_LEN && k[kl + ALERT_ID_LEN] == '"' &&
            is_hex32(k + kl) && (al->acct = strndup(acc, acl))) {
            memcpy(al->id, k + kl, ALERT_ID_LEN);
            al->body = p;
            al->blen = n - 1;
            return 0;
        }
    }
    json_t *x = n ? json_loadb(p, n, JSON_ALLOW_NUL, NULL) : NULL;
    const char *xid = json_string_value(json_object_get(x, "alert_id"));
    const char *xac = json_string_value(json_object_get(x, "account"));
    int rc = -1;
    if (json_is_object(x) && xid && strlen(xid) == ALERT_ID_LEN) {
        memcpy(al->id, xid, ALERT_ID_LEN);
        al->acct = strdup(xac ? xac : "");
        al->own = json_dumps(x, JSON_COMPACT);
        if (al->acct && al->own) {
            al->body = al->own;
            al->blen = strlen(al->own) - 1;   /* without the closing brace */
            al->empty = al->blen == 1;
            rc = 0;
        } else {
            alert_free(al);
        }
    }
    json_decref(x);
    return rc;
}

typedef struct rec {
    unsigned char nkey[10];
    unsigned char ikey[2 + ALERT_ID_LEN];
    unsigned char aid[8];
    char *text;
    unsigned char *mkey;   /* its alert index entry ("M/", api/ctl.h), or NULL */
    size_t mkl;
} rec_t;

static void feed_batch_locked(vg_api_t *a, const vg_kafka_tail_msg_t *m, int n);

/* The two topics' batches one at a time: an alert is either listed before an erasure of
 * its account is applied (whose scan then deletes it: a scan waits for the writes
 * enqueued before it) or checked after the erasure's "E/" record is written. */
static void feed_batch(void *ctx, const vg_kafka_tail_msg_t *m, int n) {
    vg_api_t *a = ctx;
    pthread_mutex_lock(&a->feed_mu);
    feed_batch_locked(a, m, n);
    pthread_mutex_unlock(&a->feed_mu);
}

static void feed_batch_locked(vg_api_t *a, const vg_kafka_tail_msg_t *m, int n) {
    int64_t now = vg_now_ms();
    int64_t cutoff = a->cfg->alert_retention_ms > 0 ? now - a->cfg->alert_retention_ms : -1;
    rec_t *r = calloc((size_t)n, sizeof *r);
    /* the next offset per partition of this batch, at most n */
    struct {
        int32_t p;
        int64_t next;
        unsigned char key[16], val[8];
    } *po = calloc((size_t)n, sizeof *po);
    vg_ctl_op_t *ops = calloc((size_t)(3 * n + n), sizeof *ops);
    if (!r || !po || !ops) {   /* nothing written: the batch is read again after a restart */
        fprintf(stderr, "vigil serve: alert list: out of memory (%d alerts not listed)\n", n);
        free(r);
        free(po);
        free(ops);
        return;
    }
    int nr = 0, np = 0, no = 0;
    vg_buf_t v;
    vg_buf_init(&v);
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < np && po[j].p != m[i].partition) j++;
        if (j == np) po[np++].p = m[i].partition;
        po[j].next = m[i].offset + 1;
        alert_t al;
        if (parse_alert(m[i].p, m[i].len, &al) != 0) {
            atomic_fetch_add(&a->feed_bad, 1);
            continue;
        }
        int64_t er = a->feed_erasures ? erased_until(a, al.acct, &v) : -1;
        if ((m[i].ts_ms >= 0 && m[i].ts_ms < cutoff) ||   /* past the retention */
            (er >= 0 && m[i].ts_ms <= er)) {              /* its account was erased since */
            alert_free(&al);
            continue;
        }
        rec_t *c = &r[nr];
        memcpy(c->ikey, "I/", 2);
        memcpy(c->ikey + 2, al.id, ALERT_ID_LEN);
        int dup = vg_ctl_get(a->ctl, c->ikey, sizeof c->ikey, &v) == 0;
        for (int k = 0; !dup && k < nr; k++)
            dup = memcmp(r[k].ikey, c->ikey, sizeof c->ikey) == 0;
        if (dup) {
            atomic_fetch_add(&a->feed_dups, 1);
            alert_free(&al);
            continue;
        }
        /* the list is in key order, newest first: the id is the time it was produced
         * (alerted_at) << 16 plus a sequence number, so that the list is newest first by
         * alerted_at and `since` filters on it (an id from the clock of indexing listed
         * 8 partitions read in turn out of alerted_at's order); a free id of that
         * millisecond (the store and this batch), the next one when it is taken */
        uint64_t aid = ((uint64_t)(m[i].ts_ms >= 0 ? m[i].ts_ms : now) << 16) |
                       (a->feed_seq++ & 0xffffu);
        for (int tries = 0; tries < 65536; tries++, aid++) {
            c->nkey[0] = 'N';
            c->nkey[1] = '/';
            vg_be64(c->nkey + 2, ~aid);
            int taken = vg_ctl_get(a->ctl, c->nkey, sizeof c->nkey, &v) == 0;
            for (int k = 0; !taken && k < nr; k++)
                taken = memcmp(r[k].nkey, c->nkey, sizeof c->nkey) == 0;
            if (!taken) break;
        }
        /* the account's index entry, written with the record (an alert without an
         * account is listed by no account query: none) */
        size_t acl = strlen(al.acct);
        if (acl > 0 && (c->mkey = malloc(VG_CTL_AIDX_LEN(acl))))
            c->mkl = vg_ctl_alert_ikey(c->mkey, al.acct, acl, c->nkey);
        char tail[128];
        char at[40];
        vg_iso_time(m[i].ts_ms >= 0 ? m[i].ts_ms : now, at);
        int tl = snprintf(tail, sizeof tail, "%s\"alerted_at\":\"%s\",\"cursor\":\"%llu\"}",
                          al.empty ? "" : ",", at, (unsigned long long)aid);
        c->text = malloc(al.blen + (size_t)tl + 1);
        if (c->text) {
            memcpy(c->text, al.body, al.blen);
            memcpy(c->text + al.blen, tail, (size_t)tl + 1);
        }
        alert_free(&al);
        if (!c->text || (acl > 0 && !c->mkey)) {   /* out of memory: not listed */
            free(c->text);
            free(c->mkey);
            c->text = NULL;
            c->mkey = NULL;
            continue;
        }
        vg_be64(c->aid, aid);
        ops[no++] = (vg_ctl_op_t){c->nkey, sizeof c->nkey, c->text, strlen(c->text)};
        ops[no++] = (vg_ctl_op_t){c->ikey, sizeof c->ikey, c->aid, 8};
        if (c->mkey) ops[no++] = (vg_ctl_op_t){c->mkey, c->mkl, "", 0};
        nr++;
        atomic_fetch_add(&a->feed_indexed, 1);
    }
    vg_buf_deinit(&v);
    for (int j = 0; j < np; j++) {
        off_key(po[j].key, "G/alertoff/", po[j].p);
        vg_be64(po[j].val, (uint64_t)po[j].next);
        ops[no++] = (vg_ctl_op_t){po[j].key, 15, po[j].val, 8};
    }
    vg_ctl_write_later(a->ctl, ops, no);   /* copied; one atomic write */
    for (int i = 0; i < nr; i++) {
        free(r[i].text);
        free(r[i].mkey);
    }
    free(r);
    free(po);
    free(ops);
}

typedef struct edel {
    vg_ctl_t *ctl;
    const char *acct;
    int64_t until;
    vg_ctl_span_t span;     /* the alerts deleted */
    int other;              /* labels and decisions deleted */
} edel_t;

/* An alert record of the account produced up to the erasure: deleted. */
static int edel_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    edel_t *d = ctx;
    json_t *j = json_loadb(v, vl, JSON_ALLOW_NUL, NULL);
    const char *ac = json_string_value(json_object_get(j, "account"));
    const char *at = json_string_value(json_object_get(j, "alerted_at"));
    int64_t ms;
    char err[64];
    if (ac && strcmp(ac, d->acct) == 0 && at &&
        vg_time_parse(at, strlen(at), &ms, err, sizeof err) == 0 && ms <= d->until) {
        /* with its alert index entry (without memory, vg_ctl_alert_index_drop_gone after
         * the scan deletes it) */
        if (kl != 10 || vg_ctl_alert_del(d->ctl, (const unsigned char *)k, ac, strlen(ac)) ==
                            VG_ENOMEM)
            vg_ctl_del(d->ctl, k, kl);
        vg_ctl_span_add(&d->span, k, kl);
    }
    json_decref(j);
    return 0;
}

/* A label this instance stored for the account ("B/" + account + NUL + id, posted here)
 * up to the erasure: deleted; a decision it recorded for the account ("D/"): deleted.
 * (The instance that erased the account deleted its own; the others listed the labels
 * posted to them again, e.g. after a handover.) */
static int ldel_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    edel_t *d = ctx;
    if (kl && k[0] == 'D') {
        vg_ctl_del(d->ctl, k, kl);
        d->other++;
        return 0;
    }
    json_t *j = json_loadb(v, vl, JSON_ALLOW_NUL, NULL);
    const char *at = json_string_value(json_object_get(j, "at"));
    int64_t ms;
    char err[64];
    if (!at || (vg_time_parse(at, strlen(at), &ms, err, sizeof err) == 0 && ms <= d->until)) {
        vg_ctl_del(d->ctl, k, kl);
        d->other++;
    }
    json_decref(j);
    return 0;
}

static void erase_batch(void *ctx, const vg_kafka_tail_msg_t *m, int n) {
    vg_api_t *a = ctx;
    pthread_mutex_lock(&a->feed_mu);
    vg_buf_t v;
    vg_buf_init(&v);
    for (int i = 0; i < n; i++) {
        json_t *x = m[i].len ? json_loadb(m[i].p, m[i].len, 0, NULL) : NULL;
        const char *acct = json_string_value(json_object_get(x, "account"));
        json_t *ms = json_object_get(x, "erased_at_ms");
        size_t al = acct ? strlen(acct) : 0;
        if (acct && al >= 1 && al <= 512 && json_is_integer(ms)) {
            int64_t until = json_integer_value(ms);
            int64_t had = erased_until(a, acct, &v);
            a->feed_erasures = 1;
            if (until > had) {
                unsigned char k[2 + 512], val[8];
                memcpy(k, "E/", 2);
                memcpy(k + 2, acct, al);
                vg_be64(val, (uint64_t)until);
                vg_ctl_put(a->ctl, k, 2 + al, val, 8);
            }
            edel_t d = {a->ctl, acct, until > had ? until : had, {{0}, {0}, 0, 0}, 0};
            vg_ctl_span_init(&d.span);
            vg_ctl_scan(a->ctl, "N/", 2, NULL, 0, edel_cb, &d);
            /* the account's index entries whose alert is gone (the retention's too) */
            d.other += vg_ctl_alert_index_drop_gone(a->ctl, acct, al) > 0;
            atomic_fetch_add(&a->feed_erased, (uint64_t)d.span.n);
            if (al <= VG_EVENT_MAX_ID) {   /* for the DELETE that published it, if here */
                unsigned slot = a->feed_recent_i++ % 32;
                memcpy(a->feed_recent[slot].acct, acct, al + 1);
                a->feed_recent[slot].at_ms = until;
                a->feed_recent[slot].n = (int)d.span.n;
            }
            unsigned char pre[3 + 512];
            for (int kind = 0; kind < 2; kind++) {   /* its labels and decisions stored here */
                pre[0] = kind ? 'D' : 'B';
                pre[1] = '/';
                memcpy(pre + 2, acct, al);
                pre[2 + al] = 0;
                vg_ctl_scan(a->ctl, pre, 3 + al, NULL, 0, ldel_cb, &d);
            }
            /* what was deleted leaves the files too (WAL, SST, MANIFEST), as at the
             * instance that took the DELETE (docs/architecture.md, Erasure); the "E/"
             * marker, which keeps later copies of its alerts out, stays */
            char why[512];
            if ((d.span.n || d.other) &&
                vg_ctl_purge_account(a->ctl, acct, al, &d.span, why, sizeof why) != 0)
                fprintf(stderr, "vigil serve: erasure of an account from the erasures "
                                "topic: its records were deleted, but not purged from "
                                "the control store's files: %s\n", why);
            vg_ctl_span_deinit(&d.span);
        }
        json_decref(x);
        unsigned char ok[16], ov[8];
        off_key(ok, "G/eraseoff/", m[i].partition);
        vg_be64(ov, (uint64_t)(m[i].offset + 1));
        vg_ctl_put(a->ctl, ok, 15, ov, 8);
    }
    vg_buf_deinit(&v);
    pthread_mutex_unlock(&a->feed_mu);
}

static int any_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)ctx, (void)k, (void)kl, (void)v, (void)vl;
    return 1;   /* one is enough */
}

int vg_api_alert_feed_start(vg_api_t *a, char *errbuf, size_t errlen) {
    if (!a->kafka) return 0;
    pthread_mutex_init(&a->feed_mu, NULL);
    /* any erasure known yet: only then is each alert's account checked ("E/") */
    a->feed_erasures = vg_ctl_scan(a->ctl, "E/", 2, NULL, 0, any_cb, NULL) > 0;
    const char *et = vg_kafka_topic_erasures(a->kafka);
    char why[512];
    if (vg_kafka_ensure_topic(a->kafka, et, 1, 1, why, sizeof why) != 0)
        fprintf(stderr, "vigil serve: the erasures topic: %s (the first erasure creates it "
                        "where the cluster creates topics on first use)\n", why);
    a->feed = vg_kafka_tail_start(a->kafka, vg_kafka_topic_alerts(a->kafka), feed_start,
                                  feed_batch, a, errbuf, errlen);
    if (a->feed)
        a->efeed = vg_kafka_tail_start(a->kafka, et, erase_start, erase_batch, a, errbuf,
                                       errlen);
    if (!a->feed || !a->efeed) {
        vg_api_alert_feed_stop(a);
        return VG_EIO;
    }
    return 0;
}

void vg_api_alert_feed_stop(vg_api_t *a) {
    if (!a->feed && !a->efeed) return;
    vg_kafka_tail_stop(a->efeed);
    vg_kafka_tail_stop(a->feed);
    a->feed = a->efeed = NULL;
    pthread_mutex_destroy(&a->feed_mu);
}

int vg_api_feed_erased(vg_api_t *a, const char *acct, int64_t at_ms) {
    int n = 0;
    for (unsigned i = 0; at_ms > 0 && i < 32; i++)
        if (a->feed_recent[i].at_ms == at_ms && strcmp(a->feed_recent[i].acct, acct) == 0) {
            n += a->feed_recent[i].n;
            a->feed_recent[i].at_ms = 0;
        }
    return n;
}

int vg_api_publish_erasure(vg_api_t *a, const char *acct, char *errbuf, size_t errlen) {
    if (!a->feed) return 0;
    int64_t now = vg_now_ms();
    char at[40];
    vg_iso_time(now, at);
    json_t *j = json_pack("{s:s,s:s,s:I}", "account", acct, "erased_at", at, "erased_at_ms",
                          (json_int_t)now);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        snprintf(errbuf, errlen, "out of memory");
        return VG_ENOMEM;
    }
    int rc = vg_kafka_publish(a->kafka, vg_kafka_topic_erasures(a->kafka), acct, strlen(acct),
                              s, strlen(s), 10000, errbuf, errlen);
    free(s);
    return rc;
}
