/* http_state.c - the service state behind the HTTP API (see http.h): start-up (control
 * store, rule modules, lists, engine, Redis), the audit trail, recorded decisions and
 * alerts, and the periodic work (checkpoints, alert retention).
 */
#define _GNU_SOURCE 1   /* memmem */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "api/cli.h"
#include "api/http.h"
#include "api/redis.h"
#include "engine/kafka.h"
#include "engine/store.h"
#include "rules/errors.h"

uint64_t vg_api_next_id(vg_api_t *a) {
    uint64_t want = (uint64_t)vg_now_ms() << 16;
    uint64_t cur = atomic_load(&a->idgen);
    for (;;) {
        uint64_t nx = cur + 1 > want ? cur + 1 : want;
        if (atomic_compare_exchange_weak(&a->idgen, &cur, nx)) return nx;
    }
}

void vg_api_audit(vg_api_t *a, const vg_req_t *q, const char *action, const char *target,
                  int64_t old_version, int64_t new_version) {
    vg_api_audit_more(a, q, action, target, old_version, new_version, NULL);
}

void vg_api_audit_more(vg_api_t *a, const vg_req_t *q, const char *action, const char *target,
                       int64_t old_version, int64_t new_version, json_t *more) {
    pthread_mutex_lock(&a->mu);
    uint64_t seq = ++a->audit_seq;
    pthread_mutex_unlock(&a->mu);
    char at[40];
    vg_iso_time(vg_now_ms(), at);
    json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "seq", (json_int_t)seq, "at", at, "who",
                          q ? q->who : "system", "role", q ? vg_role_name(q->role) : "system",
                          "action", action, "target", target);
    json_object_set_new(j, "old_version", old_version > 0 ? json_integer(old_version) : json_null());
    json_object_set_new(j, "new_version", new_version > 0 ? json_integer(new_version) : json_null());
    if (more) json_object_update(j, more);
    json_decref(more);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    unsigned char key[10] = {'A', '/'};
    vg_be64(key + 2, ~seq);
    if (s && vg_ctl_put(a->ctl, key, sizeof(key), s, strlen(s)) != 0)
        fprintf(stderr, "vigil serve: cannot write the audit trail\n");
    free(s);
}

/* The newest audit record (the first "A/" key: its sequence number is stored inverted);
 * a key of another shape under "A/" is passed over, not taken for the end. */
static int seq_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    (void)v;
    (void)vl;
    if (kl != 10) return 0;
    *(uint64_t *)ctx = ~vg_rd_be64((const unsigned char *)k + 2);
    return 1;
}

const vg_diag_t *vg_api_first_error(const vg_diags_t *d) {
    for (int i = 0; i < d->n; i++)
        if (d->v[i].is_error) return &d->v[i];
    return NULL;
}

void vg_api_log_diags(const vg_diags_t *d) {
    for (int errors = 1; errors >= 0; errors--)
        for (int i = 0; i < d->n; i++)
            if (d->v[i].is_error == errors)
                fprintf(stderr, "  %s:%d:%d: %s: %s\n", d->v[i].file ? d->v[i].file : "?",
                        d->v[i].line, d->v[i].col, errors ? "error" : "warning", d->v[i].msg);
}

#define RECENT_DECISIONS 10   /* kept per account (GET /v1/accounts shows them) */
#define TRIM_EVERY 8          /* trimmed after one request in 8: an account keeps at most
                                 about RECENT_DECISIONS + TRIM_EVERY of them */

static int sev_rank(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "low") == 0) return 0;
    if (strcmp(s, "medium") == 0) return 1;
    if (strcmp(s, "high") == 0) return 2;
    if (strcmp(s, "critical") == 0) return 3;
    return -1;
}

static void count_hit(vg_api_t *a, const char *name) {
    pthread_mutex_lock(&a->hits_mu);
    int i = 0;
    for (; i < a->nhits; i++)
        if (strcmp(a->hit_names[i], name) == 0) break;
    if (i == a->nhits && a->nhits < 4096) {
        char **nn = realloc(a->hit_names, (size_t)(a->nhits + 1) * sizeof(*nn));
        if (nn) a->hit_names = nn;
        uint64_t *nc = realloc(a->hit_counts, (size_t)(a->nhits + 1) * sizeof(*nc));
        if (nc) a->hit_counts = nc;
        char *d = strdup(name);
        if (nn && nc && d) {
            a->hit_names[i] = d;
            a->hit_counts[i] = 0;
            a->nhits++;
        } else {
            free(d);
        }
    }
    if (i < a->nhits) a->hit_counts[i]++;
    pthread_mutex_unlock(&a->hits_mu);
}

void vg_api_record_decision(vg_api_t *a, const char *account, size_t alen, const char *line,
                            size_t len, int alert) {
    static const char *dn[4] = {"allow", "review", "block", "alert"};
    const char *d = memmem(line, len, "\"decision\":\"", 12);
    if (d)
        for (int i = 0; i < 4; i++)
            if (strncmp(d + 12, dn[i], strlen(dn[i])) == 0 && d[12 + strlen(dn[i])] == '"')
                atomic_fetch_add(&a->decisions[i], 1);
    /* recent decisions of the account */
    uint64_t id = vg_api_next_id(a);
    size_t kl = 2 + alen + 1 + 8;
    unsigned char kb[2 + VG_EVENT_MAX_ID + 1 + 8];
    if (alen <= VG_EVENT_MAX_ID) {
        kb[0] = 'D';
        kb[1] = '/';
        memcpy(kb + 2, account, alen);
        kb[2 + alen] = 0;
        vg_be64(kb + 3 + alen, ~id);
        /* one write per request, written behind; the records past the newest 10
         * (which GET /v1/accounts never shows) deleted by the store's writer thread
         * after it wrote this one (for one request in TRIM_EVERY), off the request's
         * path */
        vg_ctl_op_t op = {kb, kl, line, len};
        vg_ctl_write_later(a->ctl, &op, 1);
        if (id % TRIM_EVERY == 0) vg_ctl_trim_later(a->ctl, kb, 3 + alen, RECENT_DECISIONS);
    }
    int fired = !memmem(line, len, "\"rules\":[],\"shadow\":[]", 22);
    if (!fired && !alert) return;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
    if (!j) return;
    int best = -1;
    const char *sev = NULL;
    const char *lists[2] = {"rules", "shadow"};
    for (int l = 0; l < 2; l++) {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(j, lists[l]), i, r) {
            const char *name = json_string_value(json_object_get(r, "rule"));
            if (name) count_hit(a, name);
            const char *s = json_string_value(json_object_get(r, "severity"));
            if (l == 0 && sev_rank(s) > best) best = sev_rank(s), sev = s;
        }
    }
    if (alert) {
        atomic_fetch_add(&a->alerts, 1);
        if (a->feed) {   /* with Kafka the alert list is the alerts topic's (alert_feed.c) */
            json_decref(j);
            return;
        }
        const char *eid = json_string_value(json_object_get(j, "id"));
        json_int_t rs = json_integer_value(json_object_get(j, "ruleset"));
        /* the function the Kafka pipeline uses (SPEC 7: deterministic for the account,
         * the event id and the ruleset version; before 2026-12-08 a SHA-256 here, so the
         * same alert had two ids with and without Kafka) */
        char hex[33];
        vg_kafka_alert_id(account, alen, eid ? eid : "", eid ? strlen(eid) : 0, (int64_t)rs, hex);
        json_object_set_new(j, "alert_id", json_string(hex));
        json_object_set_new(j, "severity", json_string(sev ? sev : "medium"));
        char at[40];
        vg_iso_time(vg_now_ms(), at);
        json_object_set_new(j, "alerted_at", json_string(at));
        uint64_t aid = vg_api_next_id(a);
        char cur[24];
        snprintf(cur, sizeof(cur), "%llu", (unsigned long long)aid);
        json_object_set_new(j, "cursor", json_string(cur));
        char *s = json_dumps(j, JSON_COMPACT);
        unsigned char key[10] = {'N', '/'};
        vg_be64(key + 2, ~aid);
        if (s) {
            /* with its entry in the account's alert index, in the same write */
            const char *ac = json_string_value(json_object_get(j, "account"));
            size_t acl = ac ? strlen(ac) : 0;
            unsigned char ik[VG_CTL_AIDX_LEN(VG_EVENT_MAX_ID)];
            vg_ctl_op_t ops[2] = {{key, sizeof(key), s, strlen(s)}, {0}};
            int nops = 1;
            if (acl > 0 && acl <= VG_EVENT_MAX_ID)   /* an event's account: always */
                ops[nops++] = (vg_ctl_op_t){ik, vg_ctl_alert_ikey(ik, ac, acl, key), "", 0};
            vg_ctl_write_later(a->ctl, ops, nops);
        }
        free(s);
    }
    json_decref(j);
}

typedef struct prune {
    vg_ctl_t *ctl;
    uint64_t below;   /* ids under this are past the retention */
} prune_t;

static int prune_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    prune_t *p = ctx;
    if (vl == 8 && vg_rd_be64((const unsigned char *)v) < p->below) vg_ctl_del(p->ctl, k, kl);
    return 0;
}

/* ---- the alert index of a state made before it ("M/", api/ctl.h) ------------------- */

static int aidx_build_cb(void *ctx, const char *k, size_t kl, const char *v, size_t vl) {
    vg_ctl_keys_t *b = ctx;
    if (kl != 10) return 0;
    json_t *j = json_loadb(v, vl, JSON_ALLOW_NUL, NULL);
    const char *ac = json_string_value(json_object_get(j, "account"));
    size_t al = ac ? strlen(ac) : 0;
    int rc = 0;
    if (al > 0) {
        unsigned char *ik = malloc(VG_CTL_AIDX_LEN(al));
        rc = ik ? vg_ctl_keys_add(b, ik, vg_ctl_alert_ikey(ik, ac, al, (const unsigned char *)k))
                : VG_ENOMEM;
        free(ik);
    }
    json_decref(j);
    return rc;
}

/* Once per state: when the marker is missing, an index entry for every listed alert (one
 * scan of the list, each record's account read), then the marker. Interrupted, it runs
 * again at the next start (the entries are the same). 0, or an error in errbuf. */
static int alert_index_build(vg_api_t *a, char *errbuf, size_t errlen) {
    vg_buf_t b;
    vg_buf_init(&b);
    int rc = vg_ctl_get(a->ctl, VG_CTL_AIDX_MARK, strlen(VG_CTL_AIDX_MARK), &b);
    vg_buf_deinit(&b);
    if (rc == 0) return 0;
    if (rc != VG_ENOTFOUND) {
        snprintf(errbuf, errlen, "control store: reading %s: %s", VG_CTL_AIDX_MARK,
                 vg_strerror(rc));
        return rc;
    }
    int64_t t0 = vg_now_ms();
    vg_ctl_keys_t kb;
    vg_ctl_keys_init(&kb, a->ctl, 0);
    rc = vg_ctl_scan(a->ctl, "N/", 2, NULL, 0, aidx_build_cb, &kb);
    int erc = vg_ctl_keys_end(&kb);
    if (!rc) rc = erc;
    if (!rc) rc = vg_ctl_put(a->ctl, VG_CTL_AIDX_MARK, strlen(VG_CTL_AIDX_MARK), "1", 1);
    if (rc) {
        snprintf(errbuf, errlen, "control store: building the alert index by account: %s",
                 vg_strerror(rc));
        return rc;
    }
    if (kb.n > 0)
        fprintf(stderr, "vigil serve: indexed %lld alerts of the list by account in %lld ms "
                        "(once: a state made before the index)\n",
                (long long)kb.n, (long long)(vg_now_ms() - t0));
    return 0;
}


void vg_api_tick(vg_api_t *a, int64_t now_ms) {
    char err[512];
    /* timed for /metrics: under load a checkpoint can take seconds, and the memory budget
     * evicts only what one wrote (an on-call engineer saw the state grow 27x past it and
     * no figure saying why) */
    int64_t t0 = vg_api_mono_us();
    int crc = vg_engine_checkpoint(a->eng, 0, err, sizeof(err));
    int64_t took = vg_api_mono_us() - t0;
    atomic_fetch_add(&a->ckpt_count, 1);
    atomic_fetch_add(&a->ckpt_us_sum, (uint64_t)took);
    atomic_store(&a->ckpt_last_us, took);
    if (!crc) atomic_store(&a->ckpt_ok_ms, vg_now_ms());
    if (crc != 0) {
        atomic_fetch_add(&a->ckpt_failures, 1);
        /* the first failure, then one line a minute (every tick tries again; what changed
         * stays in memory and is written by the first checkpoint that succeeds) */
        if (a->ckpt_failing++ % 60 == 0)
            fprintf(stderr, "vigil serve: checkpoint failed (%llu in a row; scoring goes on, "
                            "state since the last checkpoint is only in memory): %s\n",
                    (unsigned long long)a->ckpt_failing, err);
    } else if (a->ckpt_failing) {
        fprintf(stderr, "vigil serve: checkpoint written again after %llu failed\n",
                (unsigned long long)a->ckpt_failing);
        a->ckpt_failing = 0;
    }
    /* a damaged state: the first failed read, then one line a minute while they go on */
    uint64_t rf = vg_engine_read_failures(a->eng);
    if (rf > a->read_fail_seen) {
        if (!a->read_fail_logged_ms || now_ms - a->read_fail_logged_ms >= 60000) {
            fprintf(stderr, "vigil serve: the state in %s is damaged: %llu read(s) of an "
                    "account's records (its state, window rows or dedupe records) failed so "
                    "far, and its requests answer 500 \"engine failure: state store error\"; "
                    "the other accounts are served. Restore a copy of %s, or start again "
                    "with a new --state directory\n", a->cfg->state, (unsigned long long)rf,
                    a->cfg->state);
            a->read_fail_logged_ms = now_ms;
        }
        a->read_fail_seen = rf;
    }
    if (a->cfg->alert_retention_ms > 0) {
        int64_t cutoff = now_ms - a->cfg->alert_retention_ms;
        if (cutoff > 0) {
            unsigned char from[10] = {'N', '/'};
            vg_be64(from + 2, ~((uint64_t)cutoff << 16) + 1);
            vg_ctl_delete_range(a->ctl, from, sizeof(from), "N0", 2);
            /* the alert index's entries of those alerts (read past meanwhile: their
             * record is gone), once an hour: a scan of the index's keys */
            if (now_ms - a->aidx_pruned_ms >= 3600 * 1000) {
                a->aidx_pruned_ms = now_ms;
                int64_t n = vg_ctl_alert_index_prune(a->ctl, (uint64_t)cutoff << 16);
                if (n < 0)
                    fprintf(stderr, "vigil serve: pruning the alert index failed (the next "
                                    "hour tries again): %s\n", vg_strerror((int)n));
            }
            /* the alert list's ids of the alerts topic (alert_feed.c), once an hour */
            if (a->feed && now_ms - a->feed_pruned_ms >= 3600 * 1000) {
                a->feed_pruned_ms = now_ms;
                prune_t p = {a->ctl, (uint64_t)cutoff << 16};
                vg_ctl_scan(a->ctl, "I/", 2, NULL, 0, prune_cb, &p);
            }
        }
    }
}

/* ---- --rules: what this state last loaded from each module's file ------------------
 * "G/rulesfile/" module -> {"sha256": of the file's text, "version": the module version
 * it was loaded as (or found equal to)}. */

static void file_hash(const char *text, size_t len, char hex[65]) {
    unsigned char h[32];
    vg_sha256(text, len, h);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

/* "by" and "updated_at" of a module record (empty when absent). */
static void record_by(const char *rec, char *by, size_t bylen, char at[40]) {
    json_t *j = rec ? json_loads(rec, 0, NULL) : NULL;
    const char *b = json_string_value(json_object_get(j, "by"));
    const char *u = json_string_value(json_object_get(j, "updated_at"));
    snprintf(by, bylen, "%s", b ? b : "?");
    snprintf(at, 40, "%s", u ? u : "");
    json_decref(j);
}

static void record_file(vg_api_t *a, const char *name, const char *hex, int64_t version) {
    char key[80], val[160];
    int kl = snprintf(key, sizeof(key), "G/rulesfile/%s", name);
    int vl = snprintf(val, sizeof(val), "{\"sha256\":\"%s\",\"version\":%lld}", hex,
                      (long long)version);
    if (vg_ctl_put(a->ctl, key, (size_t)kl, val, (size_t)vl) != 0)
        fprintf(stderr, "vigil serve: cannot record that module %s was loaded from its "
                        "--rules file; the next start compares the file again\n", name);
}

/* The newest version of module `name` made from a --rules file (by "--rules"), newer than
 * `floor` (at most 10,000 back from `cur`), or 0; *same: its source is the file's (hash
 * `hex`). */
static int64_t newest_file_version(vg_api_t *a, const char *name, int64_t cur, int64_t floor,
                                   const char *hex, int *same) {
    int64_t found = 0;
    *same = 0;
    vg_buf_t b;
    vg_buf_init(&b);
    for (int64_t v = cur; v > floor && v > cur - 10000; v--) {
        unsigned char vkey[VG_CTL_VKEY_MAX];
        size_t vkl = vg_ctl_version_key(vkey, name, v);
        if (!vkl || vg_ctl_get(a->ctl, vkey, vkl, &b) != 0) continue;
        json_t *j = json_loadb(b.p, b.len, 0, NULL);
        const char *by = json_string_value(json_object_get(j, "by"));
        if (by && strcmp(by, "--rules") == 0) {
            const char *src = json_string_value(json_object_get(j, "source"));
            char h[65];
            if (src) file_hash(src, strlen(src), h);
            *same = src && strcmp(h, hex) == 0;
            found = v;
            json_decref(j);
            break;
        }
        json_decref(j);
    }
    vg_buf_deinit(&b);
    return found;
}

/* Whether the file (hash `hex`) is what this state last loaded for module `name`: 1
 * (yes), 0 (it changed, or none was loaded), with the version that load made in
 * *loaded (0: none known). A state written before the hash was recorded: the newest
 * version made from a --rules file (by "--rules") stands for the last load (its source
 * compared with the file's). */
static int loaded_from_file(vg_api_t *a, const char *name, int64_t cur, int64_t *loaded,
                            const char *hex) {
    char key[80];
    int kl = snprintf(key, sizeof(key), "G/rulesfile/%s", name);
    vg_buf_t b;
    vg_buf_init(&b);
    int rc = vg_ctl_get(a->ctl, key, (size_t)kl, &b), same = 0;
    if (rc == 0) {
        json_t *j = json_loadb(b.p, b.len, 0, NULL);
        const char *h = json_string_value(json_object_get(j, "sha256"));
        *loaded = json_integer_value(json_object_get(j, "version"));
        same = h && strcmp(h, hex) == 0;
        json_decref(j);
        vg_buf_deinit(&b);
        return same;
    }
    vg_buf_deinit(&b);
    int64_t v = newest_file_version(a, name, cur, 0, hex, &same);
    if (v) *loaded = v;
    if (same) record_file(a, name, hex, v);
    return same;
}

/* Whether the file (hash `hex`) was deployed already, from another instance's --rules
 * (with Redis the module's versions are every instance's): the newest version made from
 * a file, if it is newer than this state's last load (`loaded`) and has the file's text.
 * That version, or 0. A rolling restart onto a new file made a version from it at each
 * instance whose state had not loaded it yet, replacing, fleet-wide, what the API had
 * changed since the first instance deployed it (found by a tester). */
static int64_t deployed_version(vg_api_t *a, const char *name, int64_t cur, int64_t loaded,
                                const char *hex) {
    int same;
    int64_t v = newest_file_version(a, name, cur, loaded, hex, &same);
    return same ? v : 0;
}

/* ---- --rules at start: the changed files as one ruleset change --------------------- */

typedef struct file_change {
    const char *path;   /* the file, as --rules named it (diagnostics, messages) */
    char name[72];      /* its module */
    char fname[80];     /* "<module>.vrl": diagnostics name it so */
    char *text;         /* its text, NUL-terminated */
    size_t len;
    int64_t cur;        /* the module's version before this start (0: none) */
    char hash[65];
} file_change_t;

typedef struct named_source {
    const char *module;
    vg_source_t s;
} named_source_t;

static int cmp_named(const void *x, const void *y) {
    return strcmp(((const named_source_t *)x)->module, ((const named_source_t *)y)->module);
}

static int cmp_mod(const void *x, const void *y) {   /* vg_module_t * by name */
    return strcmp((*(vg_module_t *const *)x)->name, (*(vg_module_t *const *)y)->name);
}

static int cmp_change(const void *x, const void *y) {
    return strcmp(((const file_change_t *)x)->name, ((const file_change_t *)y)->name);
}

/* Compiles the stored modules with the changed files in place of theirs, in module name
 * order as the engine compiles them (mu held): once for all the files of a start (one
 * compile per file over the ones before it was quadratic: 5,000 modules took 5 minutes).
 * 0: it compiles, or only other stored modules have errors (one from Redis that does
 * not compile here: the ruleset in force stays, docs/api.md); else the first changed
 * module with errors of its own, its errors printed (and the others'). */
static int check_changes(vg_api_t *a, file_change_t *ch, int nch, char *errbuf,
                         size_t errlen) {
    named_source_t *ns = calloc((size_t)a->nmods + (size_t)nch + 1, sizeof(*ns));
    char **names = calloc((size_t)a->nmods + 1, sizeof(*names));
    vg_source_t *srcs = calloc((size_t)a->nmods + (size_t)nch + 1, sizeof(*srcs));
    int n = 0, nn = 0, rc = 0;
    if (!ns || !names || !srcs) {
        snprintf(errbuf, errlen, "--rules: out of memory");
        rc = VG_ENOMEM;
        goto out;
    }
    for (int i = 0; i < nch; i++)   /* ch is sorted by module name */
        ns[n++] = (named_source_t){ch[i].name, {ch[i].fname, ch[i].text, ch[i].len}};
    for (int i = 0; i < a->nmods; i++) {
        vg_module_t *m = &a->mods[i];
        if (m->deleted || !m->source) continue;
        file_change_t key;
        snprintf(key.name, sizeof(key.name), "%s", m->name);
        if (bsearch(&key, ch, (size_t)nch, sizeof(*ch), cmp_change)) continue;
        size_t l = strlen(m->name) + 5;
        if (!(names[nn] = malloc(l))) {
            snprintf(errbuf, errlen, "--rules: out of memory");
            rc = VG_ENOMEM;
            goto out;
        }
        snprintf(names[nn], l, "%s.vrl", m->name);
        ns[n++] = (named_source_t){m->name, {names[nn++], m->source, strlen(m->source)}};
    }
    qsort(ns, (size_t)n, sizeof(*ns), cmp_named);
    for (int i = 0; i < n; i++) srcs[i] = ns[i].s;
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(srcs, n, &d);
    const file_change_t *own = NULL;   /* the first by module name */
    for (int e = 0; !p && e < d.n; e++) {
        if (!d.v[e].is_error || !d.v[e].file) continue;
        for (int i = 0; i < nch; i++)
            if (strcmp(d.v[e].file, ch[i].fname) == 0 && (!own || own > &ch[i])) own = &ch[i];
    }
    if (own) {
        vg_diags_print(&d, srcs, n, stderr);
        snprintf(errbuf, errlen, "--rules %s: module %s does not compile (see above)", own->path,
                 own->name);
        rc = VG_ECOMPILE;
    }
    vg_prog_unref(p);
    vg_diags_deinit(&d);
out:
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    free(ns);
    free(srcs);
    return rc;
}

/* --rules: modules from files, a new version of each whose file changed since this state
 * last loaded it, all of them one ruleset change (compiled once, one ruleset version).
 * Nothing is installed when one of them does not compile. 0 or an error in errbuf. */
static int load_rules_files(vg_api_t *a, char *errbuf, size_t errlen) {
    vg_sources_t src;
    char *paths[1] = {a->cfg->rules};
    if (vg_sources_load(&src, paths, 1, errbuf, errlen) != 0) return VG_EINVAL;
    file_change_t *ch = calloc((size_t)src.n + 1, sizeof(*ch));
    /* the stored modules by name, for one look-up per file (a scan per file was
     * quadratic too) */
    pthread_mutex_lock(&a->mu);
    int nch = 0, rc = 0, nmods = a->nmods;
    vg_module_t **byname = malloc(sizeof(*byname) * (size_t)(nmods + 1));
    for (int m = 0; byname && m < nmods; m++) byname[m] = &a->mods[m];
    pthread_mutex_unlock(&a->mu);
    if (byname) qsort(byname, (size_t)nmods, sizeof(*byname), cmp_mod);
    if (!ch || !byname) {
        snprintf(errbuf, errlen, "--rules: out of memory");
        rc = VG_ENOMEM;
        goto out;
    }
    for (int i = 0; i < src.n; i++) {
        const char *base = strrchr(src.v[i].name, '/');
        base = base ? base + 1 : src.v[i].name;
        size_t bl = strlen(base);
        if (bl > 4 && strcmp(base + bl - 4, ".vrl") == 0) bl -= 4;
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)bl, base);
        if (!vg_api_valid_module_name(name)) {
            snprintf(errbuf, errlen, "--rules %s: the file name must give a module name "
                     "(1..64 letters, digits, _ or - before .vrl)", src.v[i].name);
            rc = VG_EINVAL;
            goto out;
        }
        int64_t cur = 0;
        int same = 0;
        char by[128] = "", at_was[40] = "";
        vg_module_t km = {.name = name}, *kp = &km;
        vg_module_t **found = bsearch(&kp, byname, (size_t)nmods, sizeof(*byname), cmp_mod);
        if (found) {   /* nothing else changes a->mods before the engine opens */
            const vg_module_t *m = *found;
            cur = m->version;
            same = m->source && strlen(m->source) == src.v[i].len &&
                   memcmp(m->source, src.v[i].text, src.v[i].len) == 0;
            record_by(m->record, by, sizeof(by), at_was);
            if (m->deleted) snprintf(by + strlen(by), sizeof(by) - strlen(by), ", a deletion");
        }
        /* only a file that changed since this state last loaded it makes a version: a
         * restart with the same files keeps what was changed over the API since (it
         * made a version from the file and reverted it, fleet-wide with Redis) */
        char fhash[65];
        file_hash(src.v[i].text, src.v[i].len, fhash);
        int64_t loaded = 0;
        int known = loaded_from_file(a, name, cur, &loaded, fhash);
        if (same) {
            if (known != 1) record_file(a, name, fhash, cur);
            continue;
        }
        if (known == 1) {
            fprintf(stderr, "vigil serve: --rules %s: module %s: the file is as loaded "
                    "(version %lld); version %lld (by %s), made since, stays in force\n",
                    src.v[i].name, name, (long long)loaded, (long long)cur, by);
            continue;
        }
        int64_t dv = deployed_version(a, name, cur, loaded, fhash);
        if (dv > 0) {
            record_file(a, name, fhash, dv);
            fprintf(stderr, "vigil serve: --rules %s: module %s: the file was deployed "
                    "already, as version %lld (by --rules, on another instance); version "
                    "%lld (by %s), made since, stays in force\n", src.v[i].name, name,
                    (long long)dv, (long long)cur, by);
            continue;
        }
        if (cur > 0 && strcmp(by, "--rules") != 0 && cur > loaded)
            fprintf(stderr, "vigil serve: --rules %s: module %s: the file changed since "
                    "it was last loaded%s; version %lld from it replaces version %lld "
                    "(by %s, %s)\n", src.v[i].name, name,
                    loaded ? "" : " (or never was)", (long long)(cur + 1), (long long)cur,
                    by, at_was[0] ? at_was : "?");
        if (memchr(src.v[i].text, 0, src.v[i].len)) {
            snprintf(errbuf, errlen, "--rules %s: a NUL byte in the file (a module is "
                     "UTF-8 text)", src.v[i].name);
            rc = VG_EINVAL;
            goto out;
        }
        file_change_t *c = &ch[nch];
        c->path = src.v[i].name;
        snprintf(c->name, sizeof(c->name), "%.64s", name);   /* a valid name: 1..64 */
        snprintf(c->fname, sizeof(c->fname), "%.64s.vrl", name);   /* as diagnostics name it */
        c->text = strndup(src.v[i].text, src.v[i].len);
        c->len = src.v[i].len;
        c->cur = cur;
        memcpy(c->hash, fhash, sizeof(fhash));
        nch++;
        if (!c->text) {
            snprintf(errbuf, errlen, "--rules %s: out of memory", src.v[i].name);
            rc = VG_ENOMEM;
            goto out;
        }
    }
    if (nch == 0) goto out;
    /* a module with errors of its own stops serve here, as it stops replay (before:
     * stored but not in force, and serve ran on the ruleset it had, even none). Errors
     * only in other stored modules (one from Redis that does not compile here,
     * docs/api.md) do not: the ruleset in force stays, as for Redis. */
    qsort(ch, (size_t)nch, sizeof(*ch), cmp_change);
    pthread_mutex_lock(&a->mu);
    rc = check_changes(a, ch, nch, errbuf, errlen);
    int64_t ruleset = a->ruleset + 1;   /* one ruleset version for them all */
    pthread_mutex_unlock(&a->mu);
    if (rc) goto out;
    for (int i = 0; i < nch; i++) {
        file_change_t *c = &ch[i];
        char at[40];
        vg_iso_time(vg_now_ms(), at);
        json_t *j = json_pack("{s:s,s:I,s:I,s:s%,s:b,s:s,s:s}", "module", c->name, "version",
                              (json_int_t)(c->cur + 1), "ruleset", (json_int_t)ruleset,
                              "source", c->text, c->len, "deleted", 0, "updated_at", at,
                              "by", "--rules");
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        /* before the engine opens: stored, compiled with the rest when it opens */
        if (!s || vg_api_apply_module(a, s, strlen(s), NULL) != 0) {
            snprintf(errbuf, errlen, "--rules %s: module %s cannot be stored in %s/control",
                     c->path, c->name, a->cfg->state);
            free(s);
            rc = VG_ESTORE;
            goto out;
        }
        free(s);
        record_file(a, c->name, c->hash, c->cur + 1);
        vg_api_audit(a, NULL, "rules.load", c->name, c->cur, c->cur + 1);
    }
out:
    for (int i = 0; ch && i < nch; i++) free(ch[i].text);
    free(ch);
    free(byname);
    vg_sources_free(&src);
    return rc;
}

/* Whether STATE holds an engine store written by `vigil serve` (which keeps its control
 * store beside it): one of its shard directories, or a store at STATE without the
 * checkpoint records of `vigil replay --state` (a replayed directory has no control
 * store, and is served warm without one). */
static int served_before(const char *state) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof(p), "%s/shard-0/CURRENT", state);
    if (stat(p, &st) == 0) return 1;
    snprintf(p, sizeof(p), "%s/CURRENT", state);
    if (stat(p, &st) != 0) return 0;   /* a new state */
    char err[512];
    vg_store_t *s = vg_store_open(state, err, sizeof(err));
    if (!s) return 0;   /* the engine says why, next */
    vg_buf_t b;
    vg_buf_init(&b);
    int rc = vg_store_get(s, "m/replay/input_pos", 18, &b);
    vg_buf_deinit(&b);
    vg_store_close(s);
    return rc == VG_ENOTFOUND;
}

vg_api_t *vg_api_new(vg_config_t *cfg, char *errbuf, size_t errlen) {
    vg_api_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    a->cfg = cfg;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->hits_mu, NULL);
    pthread_mutex_init(&a->erase_mu, NULL);
    pthread_mutex_init(&a->write_mu, NULL);
    atomic_store(&a->idgen, (uint64_t)vg_now_ms() << 16);
    atomic_store(&a->ckpt_since_ms, vg_now_ms());
    if (mkdir(cfg->state, 0755) < 0 && errno != EEXIST) {
        snprintf(errbuf, errlen, "%s: %s", cfg->state, strerror(errno));
        goto err;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/control", cfg->state);
    struct stat cst;
    int ctl_missing = stat(dir, &cst) != 0 && errno == ENOENT;
    char e2[512];
    a->ctl = vg_ctl_open(dir, e2, sizeof(e2));
    if (!a->ctl) {
        if (strstr(e2, "LOCK") || strstr(e2, "lock"))   /* as engine/store.c says it */
            snprintf(errbuf, errlen, "state directory %s is in use by another process (its "
                                     "control store's LOCK file is held): %s", cfg->state, e2);
        else
            snprintf(errbuf, errlen, "control store %s: %s", dir, e2);
        goto err;
    }
    if (ctl_missing && served_before(cfg->state))
        fprintf(stderr, "vigil serve: %s/control is missing, but %s holds scoring state "
                        "written by vigil serve: lists, rule versions, the audit trail, alerts, "
                        "labels and recent decisions start empty (restore %s/control from the "
                        "copy %s came from, if there is one)\n",
                cfg->state, cfg->state, cfg->state, cfg->state);
    /* the shard count is fixed for a state directory */
    vg_buf_t b;
    vg_buf_init(&b);
    char sh[16];
    snprintf(sh, sizeof(sh), "%d", cfg->shards);
    int rc = vg_ctl_get(a->ctl, "G/shards", 8, &b);
    if (rc == 0 && (b.len != strlen(sh) || memcmp(b.p, sh, b.len) != 0)) {
        snprintf(errbuf, errlen, "%s was made with shards = %.*s; use the same or a new state",
                 cfg->state, (int)b.len, b.p);
        vg_buf_deinit(&b);
        goto err;
    }
    vg_buf_deinit(&b);
    if (rc == VG_ENOTFOUND) vg_ctl_put(a->ctl, "G/shards", 8, sh, strlen(sh));
    vg_ctl_scan(a->ctl, "A/", 2, NULL, 0, seq_cb, &a->audit_seq);
    if (alert_index_build(a, errbuf, errlen) != 0) goto err;

    pthread_mutex_lock(&a->mu);
    rc = vg_api_load_state(a, errbuf, errlen);
    pthread_mutex_unlock(&a->mu);
    if (rc) goto err;

    if (cfg->rules && load_rules_files(a, errbuf, errlen) != 0) goto err;
    /* the engine opens the state with the rules of --rules already in: opened with the
     * stored ones first, a directory made by `vigil replay --state` (no modules stored
     * yet) did not match their layout and was wiped */
    pthread_mutex_lock(&a->mu);
    rc = vg_api_start_engine(a, errbuf, errlen);
    pthread_mutex_unlock(&a->mu);
    if (rc) goto err;
    vg_api_labels_restore(a);   /* labels a kill -9 took from the state (http_data.c) */
    if (cfg->redis) {
        atomic_store(&a->redis_ok_ms, vg_now_ms());   /* "since the start" until a sync */
        a->redis = vg_redis_new(a, cfg->redis, errbuf, errlen);
        if (!a->redis) goto err;
    }
    return a;
err:
    vg_api_free(a);
    return NULL;
}

void vg_api_free(vg_api_t *a) {
    if (!a) return;
    vg_api_stop(a);
    vg_redis_free(a->redis);
    if (a->eng) {
        char err[512];
        if (vg_engine_checkpoint(a->eng, 1, err, sizeof(err)) != 0)
            fprintf(stderr, "vigil serve: final checkpoint failed: %s\n", err);
    }
    vg_engine_free(a->eng);
    vg_prog_unref(a->active);
    vg_ctl_close(a->ctl);
    for (int i = 0; i < a->nmods; i++) {
        free(a->mods[i].name);
        free(a->mods[i].record);
        free(a->mods[i].source);
    }
    free(a->mods);
    for (int i = 0; i < a->nlists; i++) {
        free(a->lists[i].name);
        for (size_t k = 0; k < a->lists[i].n; k++) free(a->lists[i].items[k]);
        free(a->lists[i].items);
    }
    free(a->lists);
    vg_lists_unref(a->cur_lists);
    for (int i = 0; i < a->nfnames; i++) free(a->fnames[i]);
    free(a->fnames);
    for (int i = 0; i < a->nhits; i++) free(a->hit_names[i]);
    free(a->hit_names);
    free(a->hit_counts);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->hits_mu);
    pthread_mutex_destroy(&a->erase_mu);
    pthread_mutex_destroy(&a->write_mu);
    free(a);
}
