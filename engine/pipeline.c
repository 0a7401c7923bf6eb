/* pipeline.c - the per-event path (see pipeline.h).
 *
 * Parse -> duplicate check -> lateness -> anomaly scores (models, when the rules read
 * them) -> phase-1 inputs (rules VM) -> state update (windows, sessions, history) ->
 * label aggregates -> phase-2 features (rules VM) -> decision line.
 * Everything per event lives in reused buffers and the scratch arena, so a warm
 * pipeline does not allocate.
 */
#define _GNU_SOURCE   /* memmem */
#include "engine/pipeline.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "engine/acctx.h"
#include "engine/labels.h"
#include "models/anomaly.h"
#include "rules/errors.h"
#include "rules/utf8.h"

struct vg_pipeline {
    vg_pipeline_opts_t opts;    /* as created (lists: see `lists`) */
    vg_program_t *prog;
    vg_state_t *state;
    vg_event_t ev;
    vg_arena_t scratch;
    vg_spec_input_t *inputs;
    vg_value_t *spec_vals;
    vg_value_t *features;
    int nspecs, nfeatures;
    char **feature_keys;        /* pre-escaped `"name":` for each feature (zero-padded to
                                   a multiple of 16 bytes) */
    size_t *feature_key_len;
    size_t features_room;       /* what write_features reserves: padded keys + 40 each */
    char ruleset_tail[64];      /* `},"anomaly":{},"ruleset":N}` */
    int shape;                  /* the decision lines' shape in the state
                                   (vg_state_shape), -1 until registered, -2 when
                                   the state holds too many: remembered as text */
    size_t ruleset_tail_len;
    int64_t lateness_ms;
    vg_reject_t last_reject;
    vg_pipeline_stats_t stats;
    vg_buf_t tmp;
    /* rules */
    int nrules;
    vg_rule_result_t *res;
    uint8_t *suppressed;        /* per rule, this event */
    const vg_strset_t **bound;  /* per declared list: its set in `lists` */
    vg_lists_t *lists;          /* reference, or NULL */
    int64_t version;            /* printed as each rule's "version" */
    int last_alert;
    int last_action;            /* of the last decided event */
    vg_buf_t msg;
    /* engine values (anomaly scores, label aggregates): ext j is spec_vals[nspecs + j] */
    int next;
    int use_an, use_lab;          /* compute anomaly scores / keep label state */
    vg_anomaly_pop_t *pop;        /* this pipeline's population (checkpointed as a meta record) */
    vg_anomaly_input_t ain;
    vg_anomaly_result_t ares;
    int ares_valid;               /* the last decided event has an anomaly result */
    double last_score;            /* the last decided event's decision score */
    vg_lkeys_t *lk;               /* label windows by key */
    int ngroups;
    int *lgext;                   /* per by-group: an ext index reading it for labels, or -1 */
    uint64_t *keyh;               /* per by-group: this event's key hash (0: none) */
    uint8_t *klate;               /* per by-group: the event is late for its key */
    int nmx;                      /* label memo x slots (label sums) */
    double *memo_x;               /* per slot: this event's x (NaN: null) */
    int64_t memo_horizon;         /* longest label window + lateness */
    const vg_labels_t *labels;    /* borrowed: applied before the events they precede */
    size_t lnext;                 /* next label of `labels` to apply */
    uint64_t labels_applied, labels_unmatched;
    vg_buf_t mnames, mvals;       /* checkpoint meta records */
    vg_kv_t *mkv;
    size_t mkv_cap, mkv_n;
    uint8_t *popbuf;
    size_t popcap;
    unsigned char lnext_buf[8];   /* "labels/next" of the last gather_meta */
};

/* The text of a decision line (SPEC section 3) after its head when no rule fired, up to
 * the first feature key; and the start of its tail without anomaly scores, before the
 * ruleset version. Shared by the line writer and the decision shape (register_shape). */
static const char MID_ALLOW[] = "\",\"decision\":\"allow\",\"score\":0,\"rules\":[],"
                                "\"shadow\":[],\"features\":{";
#define TAIL_PLAIN "},\"anomaly\":{},\"ruleset\":"

/* The tail after the features: `,"ruleset":N}` after the anomaly object, or with an
 * empty one without anomaly scores (TAIL_PLAIN), and the newline. */
static void set_tail(vg_pipeline_t *pl, int64_t ruleset_version) {
    int n = snprintf(pl->ruleset_tail, sizeof(pl->ruleset_tail),
                     pl->use_an ? ",\"ruleset\":%lld}\n" : TAIL_PLAIN "%lld}\n",
                     (long long)ruleset_version);
    pl->ruleset_tail_len = (size_t)n;
}

void vg_pipeline_opts_default(vg_pipeline_opts_t *o) {
    memset(o, 0, sizeof(*o));
    o->lateness_ms = 3600 * 1000LL;
    o->dedupe_horizon_ms = 24 * 3600 * 1000LL;
    o->ruleset_version = 1;
    o->module_version = 1;
}

static int lk_scan_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    vg_pipeline_t *pl = ctx;
    if (kl < 2) return -1;
    int rc = vg_lkeys_load(pl->lk, (const char *)k + 2, kl - 2, v, vl);
    return rc ? -1 : 0;
}

/* With a store: the population, the label windows by key and the label cursor of the
 * last checkpoint. */
static int load_engine_meta(vg_pipeline_t *pl, vg_store_t *store, char *errbuf,
                            size_t errlen) {
    vg_buf_t b;
    vg_buf_init(&b);
    int rc = 0;
    errbuf[0] = 0;
    if (pl->pop) {
        rc = vg_state_meta(pl->state, "anomaly/pop", &b);
        if (rc == 0 && vg_anomaly_pop_decode(pl->pop, (const uint8_t *)b.p, b.len) != 0) {
            snprintf(errbuf, errlen, "the anomaly population in the state is unreadable");
            rc = VG_ESTORE;
        } else if (rc == VG_ENOTFOUND) {
            rc = 0;
        }
    }
    if (!rc) {
        rc = vg_state_meta(pl->state, "labels/next", &b);
        if (rc == 0 && b.len == 8) {
            uint64_t v = 0;
            for (int i = 0; i < 8; i++) v |= (uint64_t)(unsigned char)b.p[i] << (8 * i);
            pl->lnext = (size_t)v;
        } else if (rc == VG_ENOTFOUND) {
            rc = 0;
        }
    }
    if (!rc && pl->lk && vg_store_scan(store, "m/lk/", 5, lk_scan_cb, pl) < 0) {
        snprintf(errbuf, errlen, "the label windows in the state are unreadable");
        rc = VG_ESTORE;
    }
    if (rc && !errbuf[0]) snprintf(errbuf, errlen, "cannot read the state");
    vg_buf_deinit(&b);
    return rc;
}

vg_pipeline_t *vg_pipeline_new(vg_program_t *p, const vg_pipeline_opts_t *o,
                               char *errbuf, size_t errlen) {
    vg_pipeline_t *pl = calloc(1, sizeof(*pl));
    if (!pl) goto oom;
    pl->opts = *o;
    pl->prog = vg_prog_ref(p);
    vg_event_init(&pl->ev);
    vg_arena_init(&pl->scratch);
    vg_buf_init(&pl->tmp);
    pl->lateness_ms = o->lateness_ms;
    pl->nspecs = vg_prog_nspecs(p);
    pl->nfeatures = vg_prog_nfeatures(p);
    pl->inputs = calloc((size_t)pl->nspecs + 1, sizeof(*pl->inputs));
    pl->spec_vals = calloc((size_t)pl->nspecs + 1, sizeof(*pl->spec_vals));
    pl->features = calloc((size_t)pl->nfeatures + 1, sizeof(*pl->features));
    pl->feature_keys = calloc((size_t)pl->nfeatures + 1, sizeof(*pl->feature_keys));
    pl->feature_key_len = calloc((size_t)pl->nfeatures + 1, sizeof(*pl->feature_key_len));
    pl->nrules = vg_prog_nrules(p);
    pl->res = calloc((size_t)pl->nrules + 1, sizeof(*pl->res));
    pl->suppressed = calloc((size_t)pl->nrules + 1, 1);
    pl->bound = calloc((size_t)vg_prog_nlists(p) + 1, sizeof(*pl->bound));
    vg_buf_init(&pl->msg);
    pl->version = o->module_version;
    if (!pl->inputs || !pl->spec_vals || !pl->features || !pl->feature_keys ||
        !pl->feature_key_len || !pl->res || !pl->suppressed || !pl->bound)
        goto oom;
    vg_pipeline_set_lists(pl, o->lists);
    for (int i = 0; i < pl->nfeatures; i++) {
        const char *name = vg_prog_feature_name(p, i);
        vg_buf_clear(&pl->tmp);
        if (i > 0 && vg_buf_putc(&pl->tmp, ',') < 0) goto oom;
        if (vg_json_str(&pl->tmp, name, strlen(name)) < 0 || vg_buf_putc(&pl->tmp, ':') < 0)
            goto oom;
        /* padded with zeros to a multiple of 16 bytes: write_features copies 16 at a time */
        size_t padded = (pl->tmp.len + 15) & ~(size_t)15;
        pl->feature_keys[i] = calloc(1, padded);
        if (!pl->feature_keys[i]) goto oom;
        memcpy(pl->feature_keys[i], pl->tmp.p, pl->tmp.len);
        pl->feature_key_len[i] = pl->tmp.len;
        pl->features_room += padded + 40;
    }
    pl->next = vg_prog_next(p);
    pl->use_an = vg_prog_uses_anomaly(p) || o->anomaly;
    pl->use_lab = vg_prog_uses_labels(p);
    vg_buf_init(&pl->mnames);
    vg_buf_init(&pl->mvals);
    set_tail(pl, o->ruleset_version);
    pl->shape = -1;
    if (pl->next) {   /* the arrays hold the ext values after the specs */
        vg_spec_input_t *ni = calloc((size_t)(pl->nspecs + pl->next) + 1, sizeof(*ni));
        vg_value_t *nv = calloc((size_t)(pl->nspecs + pl->next) + 1, sizeof(*nv));
        if (!ni || !nv) {
            free(ni);
            free(nv);
            goto oom;
        }
        free(pl->inputs);
        free(pl->spec_vals);
        pl->inputs = ni;
        pl->spec_vals = nv;
    }
    pl->ngroups = vg_prog_nbygroups(p);
    pl->lgext = calloc((size_t)pl->ngroups + 1, sizeof(*pl->lgext));
    pl->keyh = calloc((size_t)pl->ngroups + 1, sizeof(*pl->keyh));
    pl->klate = calloc((size_t)pl->ngroups + 1, 1);
    pl->nmx = vg_prog_memo_nx(p);
    pl->memo_x = calloc((size_t)pl->nmx + 1, sizeof(*pl->memo_x));
    if (!pl->lgext || !pl->keyh || !pl->klate || !pl->memo_x) goto oom;
    for (int g = 0; g < pl->ngroups; g++) pl->lgext[g] = -1;
    for (int j = 0; j < pl->next; j++) {
        const vg_ext_t *x = vg_prog_ext(p, j);
        if (x->kind != VG_EXT_ANOMALY && x->by_group >= 0 && pl->lgext[x->by_group] < 0)
            pl->lgext[x->by_group] = j;
    }
    pl->memo_horizon = vg_prog_max_label_window(p) + o->lateness_ms;
    if (pl->use_an) {
        if (!(pl->pop = malloc(sizeof(*pl->pop)))) goto oom;
        vg_anomaly_pop_init(pl->pop, NULL, 1);
    }
    if (pl->use_lab && !(pl->lk = vg_lkeys_new(o->lateness_ms, vg_prog_max_label_window(p))))
        goto oom;

    vg_acctx_layout_t xl = {pl->use_an, pl->use_lab, pl->use_lab ? pl->ngroups : 0,
                            pl->use_lab ? pl->nmx : 0, pl->use_lab ? vg_acctx_xsig(p) : 0};
    vg_state_opts_t so = {
        .lateness_ms = o->lateness_ms,
        .dedupe_horizon_ms = o->dedupe_horizon_ms,
        .mem_budget = o->mem_budget,
        .store = o->store,
        .acctx = &xl,   /* even without label aggregates: labels posted meanwhile (acctx.h) */
        .reset_mismatch = o->reset_mismatch,
        .was_reset = o->was_reset,
    };
    pl->state = vg_state_new(p, &so, errbuf, errlen);
    if (!pl->state) {
        vg_pipeline_free(pl);
        return NULL;
    }
    if (o->store && load_engine_meta(pl, o->store, errbuf, errlen) != 0) {
        vg_pipeline_free(pl);
        return NULL;
    }
    return pl;
oom:
    snprintf(errbuf, errlen, "out of memory");
    vg_pipeline_free(pl);
    return NULL;
}

void vg_pipeline_free(vg_pipeline_t *pl) {
    if (!pl) return;
    free(pl->pop);
    vg_lkeys_free(pl->lk);
    free(pl->lgext);
    free(pl->keyh);
    free(pl->klate);
    free(pl->memo_x);
    vg_buf_deinit(&pl->mnames);
    vg_buf_deinit(&pl->mvals);
    free(pl->mkv);
    free(pl->popbuf);
    vg_state_free(pl->state);
    vg_event_deinit(&pl->ev);
    vg_arena_deinit(&pl->scratch);
    vg_buf_deinit(&pl->tmp);
    if (pl->feature_keys)
        for (int i = 0; i < pl->nfeatures; i++) free(pl->feature_keys[i]);
    free(pl->feature_keys);
    free(pl->feature_key_len);
    free(pl->inputs);
    free(pl->spec_vals);
    free(pl->features);
    free(pl->res);
    free(pl->suppressed);
    free(pl->bound);
    vg_lists_unref(pl->lists);
    vg_buf_deinit(&pl->msg);
    vg_prog_unref(pl->prog);
    free(pl);
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* {"id":...,"error":"...","code":"..."} */
static int write_reject(vg_pipeline_t *pl, vg_buf_t *out, vg_reject_t code,
                        const char *reason) {
    size_t mark = out->len;
    int rc = vg_buf_puts(out, "{\"id\":");
    if (!rc) {
        if (pl->ev.has_id) rc = vg_json_str(out, pl->ev.id.p, pl->ev.id.len);
        else rc = vg_buf_puts(out, "null");
    }
    if (!rc) rc = vg_buf_puts(out, ",\"error\":");
    if (!rc) rc = vg_json_str(out, reason, strlen(reason));
    if (!rc) rc = vg_buf_puts(out, ",\"code\":\"");
    if (!rc) rc = vg_buf_puts(out, vg_reject_code(code));
    if (!rc) rc = vg_buf_puts(out, "\"}\n");
    if (rc) out->len = mark;
    pl->last_reject = code;
    pl->stats.rejected++;
    pl->stats.rejected_by[code]++;
    return rc;
}

void vg_pipeline_set_lists(vg_pipeline_t *pl, vg_lists_t *lists) {
    if (lists) vg_lists_ref(lists);
    vg_lists_unref(pl->lists);
    pl->lists = lists;
    vg_prog_bind_lists(pl->prog, lists, pl->bound);
}

int vg_pipeline_last_alert(const vg_pipeline_t *pl) { return pl->last_alert; }

void vg_pipeline_last_account(const vg_pipeline_t *pl, const char **account, size_t *len) {
    *account = pl->ev.account.p;
    *len = pl->ev.account.len;
}

void vg_pipeline_last_decision(const vg_pipeline_t *pl, int *action, int *severity) {
    *action = pl->last_action;
    if (!severity) return;
    /* read off the rule results only when asked (for an alert): not per event */
    *severity = -1;
    for (int i = 0; i < pl->nrules; i++) {
        if (!pl->res[i].fired) continue;
        const vg_rule_info_t *r = vg_prog_rule(pl->prog, i);
        if (r->mode == VG_MODE_ACTIVE && (int)r->severity > *severity) *severity = r->severity;
    }
}

/* SPEC section 2, Alerts: marks the fired rules whose alert is suppressed (the same
 * rule alerted for this account less than D before), decides whether the event raises
 * an alert, and records the alert time of each rule that alerted. A shadow rule keeps
 * its own would-be alert times, so that its report shows what it would do; it never
 * changes the decision or the alert. */
static int suppress(vg_pipeline_t *pl, vg_acct_t *a, int64_t ts, int action) {
    int alerting = action != VG_ACTION_ALLOW;
    int alert = 0;
    for (int i = 0; i < pl->nrules; i++) {
        pl->suppressed[i] = 0;
        if (!pl->res[i].fired) continue;
        const vg_rule_info_t *r = vg_prog_rule(pl->prog, i);
        if (r->suppress_ms > 0) {
            int64_t last = vg_state_last_alert(a, r->id);
            pl->suppressed[i] = last != INT64_MIN && ts - last < r->suppress_ms;
        }
        if (r->mode == VG_MODE_ACTIVE && alerting && !pl->suppressed[i] &&
            (int)r->action == action)
            alert = 1;
    }
    pl->last_alert = alert;
    for (int i = 0; i < pl->nrules; i++) {
        if (!pl->res[i].fired || pl->suppressed[i]) continue;
        const vg_rule_info_t *r = vg_prog_rule(pl->prog, i);
        if (r->suppress_ms <= 0 || r->action == VG_ACTION_ALLOW) continue;
        /* an active rule alerted when the event raised an alert with the rule's own
         * action (a review rule under a block decision did not alert); a shadow rule
         * would have alerted on its own */
        if (r->mode == VG_MODE_ACTIVE && (!alert || (int)r->action != action)) continue;
        int rc = vg_state_set_alert(pl->state, a, r->id, ts);
        if (rc) return rc;
    }
    return 0;
}

/* v as a decision writes it (features, rules' values, message placeholders): a string
 * longer than VG_PIPELINE_OUT_STR bytes cut there (back to a character's start) and
 * followed by U+2026 "...", in the event's arena; the rules saw the whole value. Bounds a
 * decision, the copy the state keeps for duplicates and an alert, whatever the event. */
static vg_value_t out_value(vg_pipeline_t *pl, vg_value_t v) {
    if (v.type != VG_T_STR || v.u.s.len <= VG_PIPELINE_OUT_STR) return v;
    uint32_t n = (uint32_t)vg_utf8_cut(v.u.s.p, v.u.s.len, VG_PIPELINE_OUT_STR);
    char *m = vg_arena_alloc(&pl->scratch, (size_t)n + 3);
    if (!m) return vg_strv(v.u.s.p, n);   /* still cut, without the mark */
    memcpy(m, v.u.s.p, n);
    memcpy(m + n, "\xe2\x80\xa6", 3);
    return vg_strv(m, n + 3);
}

/* Appends v as message text: strings as they are, times as RFC 3339, numbers, bools,
 * durations and null as in JSON. */
static int msg_value(vg_buf_t *b, const vg_value_t *v) {
    if (v->type == VG_T_STR) return vg_buf_append(b, v->u.s.p, v->u.s.len);
    if (v->type == VG_T_TIME) {
        char t[40];
        size_t n = vg_time_format(v->u.ms, t);
        return vg_buf_append(b, t, n);
    }
    return vg_json_value(b, v);
}

/* The entries of the fired rules of one mode. */
static int write_rules(vg_pipeline_t *pl, vg_buf_t *out, int mode) {
    int rc = 0, first = 1;
    const vg_tx_t *tx = &pl->ev.tx;
    for (int i = 0; !rc && i < pl->nrules; i++) {
        if (!pl->res[i].fired) continue;
        const vg_rule_info_t *r = vg_prog_rule(pl->prog, i);
        if (r->mode != mode) continue;
        if (!first) rc = vg_buf_putc(out, ',');
        first = 0;
        if (!rc) rc = vg_buf_puts(out, "{\"rule\":");
        if (!rc) rc = vg_json_str(out, r->name, strlen(r->name));
        if (!rc) rc = vg_buf_puts(out, ",\"module\":");
        if (!rc) rc = vg_json_str(out, r->module, strlen(r->module));
        if (!rc) rc = vg_buf_puts(out, ",\"version\":");
        if (!rc) rc = vg_json_num(out, (double)(r->version > 1 ? r->version : pl->version));
        if (!rc) rc = vg_buf_puts(out, ",\"action\":\"");
        if (!rc) rc = vg_buf_puts(out, vg_action_name(r->action));
        if (!rc) rc = vg_buf_puts(out, "\",\"severity\":\"");
        if (!rc) rc = vg_buf_puts(out, vg_severity_name(r->severity));
        if (!rc) rc = vg_buf_puts(out, "\",\"score\":");
        if (!rc) rc = vg_json_num(out, pl->res[i].score);
        if (!rc) rc = vg_buf_puts(out, ",\"message\":");
        if (!rc && !r->has_message) rc = vg_buf_puts(out, "null");
        else if (!rc) {
            vg_buf_clear(&pl->msg);
            for (int k = 0; !rc && k < r->nmsg; k++) {
                const vg_ref_t *m = &r->msg[k];
                if (m->kind == VG_REF_TEXT) rc = vg_buf_append(&pl->msg, m->text, m->len);
                else {
                    vg_value_t v = out_value(pl, vg_prog_ref_value(pl->prog, m, tx,
                                                                   pl->spec_vals, pl->features));
                    rc = msg_value(&pl->msg, &v);
                }
            }
            if (!rc) rc = vg_json_str(out, pl->msg.p ? pl->msg.p : "", pl->msg.len);
        }
        if (!rc) rc = vg_buf_puts(out, ",\"values\":{");
        for (int k = 0; !rc && k < r->nvalues; k++) {
            const vg_ref_t *m = &r->values[k];
            vg_value_t v = out_value(pl, vg_prog_ref_value(pl->prog, m, tx, pl->spec_vals,
                                                           pl->features));
            if (k) rc = vg_buf_putc(out, ',');
            if (!rc) rc = vg_json_str(out, m->text, m->len);
            if (!rc) rc = vg_buf_putc(out, ':');
            if (!rc) rc = vg_json_value(out, &v);
        }
        if (!rc) rc = vg_buf_putc(out, '}');
        if (!rc && pl->suppressed[i]) rc = vg_buf_puts(out, ",\"suppressed\":true");
        if (!rc) rc = vg_buf_putc(out, '}');
    }
    return rc;
}

/* The label-window key of a `by` value (0: none). */
static uint64_t key_hash(int g, const vg_value_t *v) {
    unsigned char b[8];
    switch (v->type) {
    case VG_T_NULL: return 0;
    case VG_T_BOOL: b[0] = v->u.b ? 1 : 0; return vg_lkeys_key(g, v->type, b, 1);
    case VG_T_NUM: {
        double d = v->u.n == 0 ? 0.0 : v->u.n;
        memcpy(b, &d, 8);
        return vg_lkeys_key(g, v->type, b, 8);
    }
    case VG_T_TIME: case VG_T_DUR: memcpy(b, &v->u.ms, 8); return vg_lkeys_key(g, v->type, b, 8);
    default: return vg_lkeys_key(g, v->type, v->u.s.p, v->u.s.len);
    }
}

static uint64_t id_hash(const char *id, size_t n) { return vg_acctx_hash(id, n, 0x1d); }

/* The anomaly values of an accepted event, before its windows take it (an aggregate's
 * `where` and x may read them): score, then learn, then the ext values anomaly.*. */
static int anomaly_values(vg_pipeline_t *pl, vg_acct_t *a) {
    vg_acctx_t *x = vg_state_acctx(pl->state, a);
    if (!x) return VG_ENOMEM;
    vg_anomaly_input_from_tx(&pl->ev.tx, &pl->ain);
    vg_anomaly_score(pl->pop, &x->an, &pl->ain, &pl->ares);
    vg_anomaly_learn(pl->pop, &x->an, &pl->ain, &pl->ares);
    pl->ares_valid = 1;
    vg_value_t *ext = pl->spec_vals + pl->nspecs;
    const vg_anomaly_result_t *r = &pl->ares;
    for (int j = 0; j < pl->next; j++) {
        const vg_ext_t *e = vg_prog_ext(pl->prog, j);
        if (e->kind != VG_EXT_ANOMALY) continue;
        if (e->signal < 0) ext[j] = vg_num(r->score);
        else if (e->signal < VG_ANOMALY__COUNT && (r->present & (1u << e->signal)))
            ext[j] = vg_num(r->signal[e->signal]);
        else ext[j] = vg_null();
    }
    return 0;
}

/* The label values of an accepted event (after its windows were updated): label
 * aggregates, and the event's label memo entry. */
static int engine_values(vg_pipeline_t *pl, vg_acct_t *a) {
    vg_event_t *ev = &pl->ev;
    vg_acctx_t *x = vg_state_acctx(pl->state, a);
    if (!x) return VG_ENOMEM;
    int64_t t = ev->ts_ms;
    vg_value_t *ext = pl->spec_vals + pl->nspecs;
    if (pl->use_lab) {
        for (int g = 0; g < pl->ngroups; g++) {
            pl->keyh[g] = 0;
            pl->klate[g] = 0;
            if (pl->lgext[g] < 0) continue;
            pl->keyh[g] = key_hash(g, &pl->inputs[pl->nspecs + pl->lgext[g]].key);
            if (!pl->keyh[g]) continue;
            int rc = vg_lkeys_touch(pl->lk, pl->keyh[g], t);
            if (rc < 0) return rc;
            pl->klate[g] = (uint8_t)rc;
        }
    }
    for (int j = 0; j < pl->next; j++) {
        const vg_ext_t *e = vg_prog_ext(pl->prog, j);
        if (e->kind == VG_EXT_ANOMALY) continue;   /* anomaly_values() */
        int64_t f = 0, l = 0, lo = t - e->window_ms;
        if (e->memo_slot >= 0) {   /* label sums: the account's memo; keep this event's x */
            const vg_value_t *xv = &pl->inputs[pl->nspecs + j].x;
            pl->memo_x[e->memo_slot] = xv->type == VG_T_NUM ? xv->u.n : (double)NAN;
            double fs, ls;
            vg_acctx_memo_sum(x, e->memo_slot, lo, t, &fs, &ls);
            double sv = e->kind == VG_EXT_FRAUD_SUM ? fs : ls;
            ext[j] = isfinite(sv) ? vg_num(sv) : vg_null();   /* beyond a double: null */
            continue;
        }
        if (e->by_group < 0) {
            vg_acctx_memo_count(x, lo, t, &f, &l);
        } else {
            uint64_t kh = pl->keyh[e->by_group];
            if (!kh || pl->klate[e->by_group]) {
                ext[j] = vg_null();
                continue;
            }
            vg_lkeys_count(pl->lk, kh, lo, t, &f, &l);
        }
        ext[j] = vg_num((double)(e->kind == VG_EXT_FRAUD_COUNT ? f : l));
    }
    if (pl->use_lab) {
        int64_t newest = vg_state_newest(a);
        vg_acctx_memo_expire(x, newest - pl->memo_horizon);
        int rc = vg_acctx_memo_add(x, id_hash(ev->id.p, ev->id.len), t, pl->keyh, pl->memo_x);
        if (rc) return rc;
        vg_state_acctx_remem(pl->state, a);
    }
    return 0;
}

int vg_pipeline_label(vg_pipeline_t *pl, const vg_label_t *lb) {
    vg_acct_t *a;
    int rc = vg_state_find(pl->state, lb->account, lb->alen, &a);   /* an unknown account is
                                                                        not made (memory) */
    if (rc == VG_ENOTFOUND) {
        pl->labels_unmatched++;
        return 0;
    }
    if (rc) return rc;
    vg_acctx_t *x = vg_state_acctx_peek(a);
    uint64_t idh = id_hash(lb->id, lb->idlen);
    long i = x ? vg_acctx_memo_find(x, idh) : -1;
    uint64_t status = lb->fraud ? VG_LABEL_FRAUD : VG_LABEL_GENUINE;
    if (i < 0) {
        /* an event not in the memo: processed by rules that read no label aggregate
         * (they keep no memo of events, acctx.h). The dedupe log still has its time:
         * the label is kept in the memo (its key values and x values are not known),
         * when a label aggregate could count it. */
        int64_t ts;
        if (!vg_state_event_time(pl->state, a, lb->id, lb->idlen, &ts) ||
            (pl->use_lab && ts < vg_state_newest(a) - pl->memo_horizon)) {
            pl->labels_unmatched++;
            return 0;
        }
        if (!(x = vg_state_acctx(pl->state, a))) return VG_ENOMEM;   /* marks it changed */
        if ((rc = vg_acctx_memo_add(x, idh, ts, NULL, NULL)) != 0) return rc;
        VG_ACCTX_STATUS(x, x->n - 1) = status;
        vg_state_acctx_remem(pl->state, a);
        pl->labels_applied++;
        return 0;
    }
    pl->labels_applied++;
    if (VG_ACCTX_STATUS(x, i) == status) return 0;
    if (!vg_state_acctx(pl->state, a)) return VG_ENOMEM;   /* marks the account changed */
    VG_ACCTX_STATUS(x, i) = status;
    for (uint32_t g = 0; pl->lk && g < x->ngroups; g++) {
        uint64_t kh = VG_ACCTX_KEYH(x, i, g);
        if (!kh) continue;
        rc = vg_lkeys_set(pl->lk, kh, idh, VG_ACCTX_TS(x, i), (int)status);
        if (rc) return rc;
    }
    return 0;
}

void vg_pipeline_set_labels(vg_pipeline_t *pl, const vg_labels_t *labels) {
    pl->labels = labels;
}

int vg_pipeline_labels_until(vg_pipeline_t *pl, int64_t t) {
    while (pl->labels && pl->lnext < vg_labels_count(pl->labels)) {
        const vg_label_t *lb = vg_labels_get(pl->labels, pl->lnext);
        if (lb->at_ms > t) break;
        int rc = vg_pipeline_label(pl, lb);
        if (rc) return rc;
        pl->lnext++;
    }
    return 0;
}

int vg_pipeline_reset_baseline(vg_pipeline_t *pl, const char *account, size_t len) {
    return vg_state_reset_baseline(pl->state, account, len);
}

/* ---- the account view (GET /v1/accounts/{account}) ---- */

typedef struct view_cb {
    vg_buf_t *out;
    int n;
} view_cb_t;

static int view_line(void *ctx, const char *line, size_t len) {
    view_cb_t *c = ctx;
    if ((c->n++ && vg_buf_putc(c->out, ',')) || vg_buf_append(c->out, line, len)) return -1;
    return 0;
}

static int put_time(vg_buf_t *b, int64_t ms) {
    vg_value_t v = vg_time(ms);
    return vg_json_value(b, &v);
}

static int put_kv_num(vg_buf_t *b, const char *key, double d) {
    return vg_buf_puts(b, key) || vg_json_num(b, d);
}

/* A value kept as a float, printed with a float's digits (7), not the double's noise. */
static int put_kv_float(vg_buf_t *b, const char *key, double d) {
    char t[32];
    snprintf(t, sizeof t, "%.7g", d);
    return put_kv_num(b, key, strtod(t, NULL));
}

int vg_pipeline_account_view(vg_pipeline_t *pl, const char *account, size_t len, int max,
                             vg_buf_t *out) {
    vg_acct_t *a;
    int rc = vg_state_find(pl->state, account, len, &a);
    if (rc) return rc;
    int64_t newest = vg_state_newest(a);
    if (newest == INT64_MIN) return VG_ENOTFOUND;   /* no event (an erased account) */
    size_t at = out->len;
    view_cb_t c = {out, 0};
    rc = vg_buf_puts(out, "\"newest\":");
    if (!rc) rc = put_time(out, newest);
    if (!rc) rc = vg_buf_puts(out, ",\"recent_decisions\":[");
    if (!rc) {
        int got = vg_state_recent(pl->state, a, max, view_line, &c);
        if (got < 0) rc = got;
        else if (c.n != got) rc = VG_ENOMEM;   /* view_line stopped: out of memory */
    }
    vg_wsession_t ss[16];
    int ns = rc ? 0 : vg_state_sessions(pl->state, a, ss, 16);
    if (!rc) rc = vg_buf_puts(out, "],\"sessions\":[");
    for (int i = 0; !rc && i < ns; i++) {
        rc = vg_buf_puts(out, i ? ",{\"gap_seconds\":" : "{\"gap_seconds\":");
        if (!rc) rc = vg_json_num(out, (double)ss[i].gap / 1000.0);
        if (!rc) rc = vg_buf_puts(out, ",\"start\":");
        if (!rc) rc = put_time(out, ss[i].start);
        if (!rc) rc = vg_buf_puts(out, ",\"last\":");
        if (!rc) rc = put_time(out, ss[i].last);
        if (!rc) rc = vg_buf_puts(out, ",\"open_until\":");
        if (!rc) rc = put_time(out, ss[i].last + ss[i].gap);
        if (!rc) rc = put_kv_num(out, ",\"events\":", (double)ss[i].events);
        if (!rc) rc = vg_buf_putc(out, '}');
    }
    if (!rc) rc = vg_buf_puts(out, "],\"baseline\":");
    const vg_anomaly_state_t *an = rc ? NULL : vg_state_anomaly(a);
    vg_anomaly_baseline_t bl;
    if (an && pl->pop) vg_anomaly_describe(pl->pop, an, &bl);
    if (!rc && (!an || !pl->pop || bl.events == 0)) {
        rc = vg_buf_puts(out, "null");
    } else if (!rc) {
        rc = put_kv_num(out, "{\"events\":", (double)bl.events);
        if (!rc) rc = vg_buf_puts(out, ",\"since\":");
        if (!rc) rc = put_time(out, bl.first_ts);
        if (!rc) rc = vg_buf_puts(out, ",\"last\":");
        if (!rc) rc = put_time(out, bl.last_ts);
        if (!rc && bl.has_amount) {
            rc = put_kv_float(out, ",\"amount\":{\"typical\":", bl.amount_typical);
            if (!rc) rc = put_kv_float(out, ",\"usual_low\":", bl.amount_lo);
            if (!rc) rc = put_kv_float(out, ",\"usual_high\":", bl.amount_hi);
            if (!rc) rc = vg_buf_putc(out, '}');
        }
        if (!rc) rc = vg_buf_puts(out, ",\"known_values\":{");
        for (int f = 0; !rc && f < VG_ANOMALY_CAT__COUNT; f++) {
            rc = f ? vg_buf_putc(out, ',') : 0;
            if (!rc) rc = vg_json_str(out, vg_anomaly_signal_name(VG_ANOMALY_MERCHANT + f),
                                      strlen(vg_anomaly_signal_name(VG_ANOMALY_MERCHANT + f)));
            if (!rc) rc = put_kv_num(out, ":", (double)bl.known[f]);
        }
        if (!rc) rc = vg_buf_puts(out, "},\"hours_utc\":[");
        for (int h = 0; !rc && h < 24; h++) {
            rc = h ? vg_buf_putc(out, ',') : 0;
            if (!rc) rc = vg_json_num(out, (double)bl.hours_utc[h]);
        }
        if (!rc) rc = put_kv_float(out, "],\"burst_1h\":", bl.burst);
        if (!rc) rc = put_kv_float(out, ",\"p_compromised\":", bl.p_compromised);
        if (!rc) rc = vg_buf_putc(out, '}');
    }
    if (rc) out->len = at;
    return rc;
}

void vg_pipeline_last_scores(const vg_pipeline_t *pl, double *score, double *anomaly) {
    *score = pl->last_score;
    *anomaly = pl->ares_valid ? pl->ares.score : (double)NAN;
}

void vg_pipeline_label_stats(const vg_pipeline_t *pl, uint64_t *applied, uint64_t *unmatched) {
    *applied = pl->labels_applied;
    *unmatched = pl->labels_unmatched;
}

/* `"anomaly":{"score":..,"<signal>":..,"reasons":[{"signal":..,"text":..}]}` */
static int write_anomaly(vg_pipeline_t *pl, vg_buf_t *out) {
    const vg_anomaly_result_t *r = &pl->ares;
    int rc = vg_buf_puts(out, "},\"anomaly\":{\"score\":");
    if (!rc) rc = vg_json_num(out, r->score);
    for (int s = 0; !rc && s < VG_ANOMALY__COUNT; s++) {
        if (!(r->present & (1u << s))) continue;
        const char *nm = vg_anomaly_signal_name(s);
        rc = vg_buf_puts(out, ",\"");
        if (!rc) rc = vg_buf_puts(out, nm);
        if (!rc) rc = vg_buf_puts(out, "\":");
        if (!rc) rc = vg_json_num(out, r->signal[s]);
    }
    if (!rc) rc = vg_buf_puts(out, ",\"reasons\":[");
    for (int k = 0; !rc && k < r->nreasons && k < VG_ANOMALY_REASONS; k++) {
        if (k) rc = vg_buf_putc(out, ',');
        if (!rc) rc = vg_buf_puts(out, "{\"signal\":\"");
        const char *nm = vg_anomaly_signal_name(r->reason_signal[k]);
        if (!rc) rc = vg_buf_puts(out, nm ? nm : "");
        if (!rc) rc = vg_buf_puts(out, "\",\"text\":");
        if (!rc) rc = vg_json_str(out, r->reason[k], strnlen(r->reason[k], VG_ANOMALY_REASON_LEN));
        if (!rc) rc = vg_buf_putc(out, '}');
    }
    if (!rc) rc = vg_buf_puts(out, "]}");
    return rc;
}

/* The features' keys and values (`"n":3,"s":12.5`), written in place into room reserved
 * once: keys 16 bytes at a time, numbers, booleans and null directly; other values
 * through vg_json_value. The same bytes as vg_buf_append + vg_json_value per feature.
 * 0 or VG_ENOMEM. */
static int write_features(vg_pipeline_t *pl, vg_buf_t *out) {
    size_t room = pl->features_room;
    if (vg_buf_reserve(out, room) < 0) return VG_ENOMEM;
    char *o = out->p + out->len;
    for (int i = 0; i < pl->nfeatures; i++) {
        const char *k = pl->feature_keys[i];
        size_t kl = pl->feature_key_len[i];
        for (size_t c = 0; c < kl; c += 16) memcpy(o + c, k + c, 16);
        o += kl;
        vg_value_t *v = &pl->features[i];
        switch (v->type) {
        case VG_T_NUM: o += vg_fmt_double(v->u.n, o); break;
        case VG_T_BOOL:
            if (v->u.b) {
                memcpy(o, "true", 4);
                o += 4;
            } else {
                memcpy(o, "false", 5);
                o += 5;
            }
            break;
        case VG_T_NULL: memcpy(o, "null", 4); o += 4; break;
        default:   /* strings (cut: out_value, and kept so), times, durations, JSON: then
                    * the room again */
            *v = out_value(pl, *v);
            out->len = (size_t)(o - out->p);
            if (vg_json_value(out, v) < 0 || vg_buf_reserve(out, room) < 0) return VG_ENOMEM;
            o = out->p + out->len;
        }
    }
    out->len = (size_t)(o - out->p);
    return 0;
}

/* Registers the shape of this pipeline's decision lines with its state: the keys, and
 * the text around them when no rule fired and anomaly scores are off, the ruleset
 * version being the tail's number (so that one shape serves every version). 0 or
 * VG_ENOMEM; when the state holds too many shapes, pl->shape is -2. */
static int register_shape(vg_pipeline_t *pl) {
    int s = vg_state_shape(pl->state, pl->nfeatures, pl->feature_keys, pl->feature_key_len,
                           MID_ALLOW, sizeof MID_ALLOW - 1, TAIL_PLAIN,
                           sizeof TAIL_PLAIN - 1, "}", 1);
    if (s == VG_ELIMIT) {
        pl->shape = -2;
        return 0;
    }
    if (s < 0) return s;
    pl->shape = s;
    return 0;
}

int vg_pipeline_line(vg_pipeline_t *pl, const char *line, size_t len, vg_buf_t *out,
                     vg_outcome_t *outcome) {
    *outcome = VG_OUT_BLANK;
    if (is_blank(line, len)) return 0;
    pl->stats.lines++;
    vg_event_t *ev = &pl->ev;
    int rc = vg_event_parse(ev, line, len);
    if (rc == VG_ENOMEM) return rc;
    if (rc != 0) {
        *outcome = VG_OUT_REJECTED;
        return write_reject(pl, out, ev->reject, ev->reason);
    }
    /* too far ahead of the clock (SPEC section 1): judged on the parsed time, before the
     * account is looked up, so that it leaves no trace */
    if (pl->opts.future_ms > 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME_COARSE, &now);
        int64_t nms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        if (ev->ts_ms > nms + pl->opts.future_ms) {
            char reason[200], t1[40], t2[40];
            vg_time_format(ev->ts_ms, t1);
            vg_time_format(nms, t2);
            snprintf(reason, sizeof(reason),
                     "event time %s is %lld ms ahead of the service clock (%s); at most %lld "
                     "ms allowed", t1, (long long)(ev->ts_ms - nms), t2,
                     (long long)pl->opts.future_ms);
            *outcome = VG_OUT_REJECTED;
            return write_reject(pl, out, VG_REJECT_FUTURE, reason);
        }
    }
    /* labels known by this event's time come first (SPEC section 5, --labels) */
    if (pl->labels && (rc = vg_pipeline_labels_until(pl, ev->ts_ms)) != 0) return rc;

    vg_acct_t *a;
    rc = vg_state_account(pl->state, ev->account.p, ev->account.len, &a);
    if (rc) return rc;

    const char *dec;
    size_t dlen;
    if (vg_state_find_dup(pl->state, a, ev->id.p, ev->id.len, &dec, &dlen)) {
        *outcome = VG_OUT_DUPLICATE;
        pl->stats.duplicates++;
        if (vg_buf_append(out, dec, dlen) < 0 || vg_buf_putc(out, '\n') < 0)
            return VG_ENOMEM;
        return 0;
    }

    int64_t newest = vg_state_newest(a);
    if (newest != INT64_MIN && ev->ts_ms < newest - pl->lateness_ms) {
        char reason[160];
        char tbuf[40];
        vg_time_format(newest, tbuf);
        snprintf(reason, sizeof(reason),
                 "event is %lld ms older than the account's newest event (%s); "
                 "allowed lateness is %lld ms",
                 (long long)(newest - ev->ts_ms), tbuf, (long long)pl->lateness_ms);
        *outcome = VG_OUT_REJECTED;
        return write_reject(pl, out, VG_REJECT_LATE, reason);
    }

    vg_arena_reset(&pl->scratch);
    if (pl->use_an) {
        rc = anomaly_values(pl, a);
        if (rc) return rc;
    }
    rc = vg_prog_eval_inputs(pl->prog, &ev->tx, pl->spec_vals, &pl->scratch, pl->inputs);
    if (rc) return rc;
    rc = vg_state_apply(pl->state, a, ev->ts_ms, pl->inputs, pl->spec_vals, &pl->scratch);
    if (rc) return rc;
    if (pl->use_lab) {
        rc = engine_values(pl, a);
        if (rc) return rc;
    }
    rc = vg_prog_eval_features(pl->prog, &ev->tx, pl->spec_vals, &pl->scratch,
                               pl->features);
    if (rc) return rc;
    int action = VG_ACTION_ALLOW;
    double score = 0;
    pl->last_score = 0;
    if (pl->nrules) {
        rc = vg_prog_eval_rules(pl->prog, &ev->tx, pl->spec_vals, pl->features, pl->bound,
                                &pl->scratch, pl->res);
        if (rc) return rc;
        vg_prog_decide(pl->prog, pl->res, &action, &score);
        pl->last_score = score;
        rc = suppress(pl, a, ev->ts_ms, action);
        if (rc) return rc;
    }

    /* the decision line (SPEC section 3) */
    size_t mark = out->len;
    /* the head (id, account, time) is rebuilt from the dedupe record rather than stored
     * with the decision (vg_state_remember) */
    rc = vg_state_decision_head_text(out, ev->id.p, ev->id.len, ev->account.p,
                                     ev->account.len, ev->ts_ms, ev->ts_text);
    size_t head = out->len - mark;
    if (!pl->nrules) {
        if (!rc) rc = vg_buf_append(out, MID_ALLOW, sizeof MID_ALLOW - 1);
    } else {
        if (!rc) rc = vg_buf_puts(out, "\",\"decision\":\"");
        if (!rc) rc = vg_buf_puts(out, vg_action_name(action));
        if (!rc) rc = vg_buf_puts(out, "\",\"score\":");
        if (!rc) rc = vg_json_num(out, score);
        if (!rc) rc = vg_buf_puts(out, ",\"rules\":[");
        if (!rc) rc = write_rules(pl, out, VG_MODE_ACTIVE);
        if (!rc) rc = vg_buf_puts(out, "],\"shadow\":[");
        if (!rc) rc = write_rules(pl, out, VG_MODE_SHADOW);
        if (!rc) rc = vg_buf_puts(out, "],\"features\":{");
    }
    size_t fstart = out->len;
    if (!rc) rc = write_features(pl, out);
    size_t fend = out->len;
    if (!rc && pl->use_an) rc = write_anomaly(pl, out);
    if (!rc) rc = vg_buf_append(out, pl->ruleset_tail, pl->ruleset_tail_len);
    if (!rc && pl->shape == -1) rc = register_shape(pl);
    if (rc) {
        out->len = mark;
        return rc;
    }
    /* remember the decision without its newline: as the features' values when the
     * state knows the shape (no text to pack), else as text */
    if (pl->shape >= 0)
        rc = vg_state_remember_values(pl->state, a, ev->id.p, ev->id.len, ev->ts_ms,
                                      pl->shape, out->p + mark + head, fstart - mark - head,
                                      pl->features, out->p + fend, out->len - fend - 1,
                                      pl->opts.ruleset_version);
    else
        rc = vg_state_remember(pl->state, a, ev->id.p, ev->id.len, ev->ts_ms, out->p + mark,
                               out->len - mark - 1, head);
    if (rc) return rc;
    *outcome = VG_OUT_DECIDED;
    pl->last_action = action;
    pl->stats.decided++;
    return 0;
}

int vg_pipeline_oversize(vg_pipeline_t *pl, size_t len, vg_buf_t *out) {
    return vg_pipeline_oversize_head(pl, len, NULL, 0, out);
}

int vg_pipeline_oversize_head(vg_pipeline_t *pl, size_t len, const char *head, size_t hlen,
                              vg_buf_t *out) {
    char reason[128], id[VG_EVENT_MAX_ID];
    snprintf(reason, sizeof(reason), "line is %zu bytes, limit %d", len, VG_EVENT_MAX_BYTES);
    pl->stats.lines++;
    size_t n = head ? vg_event_peek_id(head, hlen, id) : 0;
    pl->ev.has_id = n > 0;
    pl->ev.id.p = id;
    pl->ev.id.len = (uint32_t)n;
    int rc = write_reject(pl, out, VG_REJECT_TOO_LARGE, reason);
    pl->ev.has_id = 0;   /* id is on this stack */
    pl->ev.id.len = 0;
    return rc;
}

vg_reject_t vg_pipeline_last_reject(const vg_pipeline_t *pl) { return pl->last_reject; }

static int add_kv(vg_pipeline_t *pl, const char *key, const void *val, size_t len) {
    if (pl->mkv_n == pl->mkv_cap) {
        size_t nc = pl->mkv_cap ? pl->mkv_cap * 2 : 64;
        vg_kv_t *nk = realloc(pl->mkv, nc * sizeof(*nk));
        if (!nk) return VG_ENOMEM;
        pl->mkv = nk;
        pl->mkv_cap = nc;
    }
    pl->mkv[pl->mkv_n++] = (vg_kv_t){key, val, len};
    return 0;
}

/* label-window records: offsets now, pointers once the buffers stop moving */
static int lk_emit(void *ctx, size_t noff, size_t voff, size_t vlen) {
    return add_kv(ctx, (const char *)(uintptr_t)(noff + 1), (const void *)(uintptr_t)voff, vlen);
}

/* Gathers the pipeline's own meta records (label windows changed since the last call,
 * the anomaly population, the label cursor) and the caller's into pl->mkv. Returns 0 or
 * VG_ENOMEM (errbuf says so). */
static int gather_meta(vg_pipeline_t *pl, const vg_kv_t *meta, int n_meta, char *errbuf,
                       size_t errlen) {
    pl->mkv_n = 0;
    vg_buf_clear(&pl->mnames);
    vg_buf_clear(&pl->mvals);
    int rc = 0;
    size_t nlk = 0;
    if (pl->lk) {
        rc = vg_lkeys_dirty(pl->lk, &pl->mnames, &pl->mvals, lk_emit, pl);
        nlk = pl->mkv_n;
        for (size_t i = 0; !rc && i < nlk; i++) {
            pl->mkv[i].key = pl->mnames.p + ((uintptr_t)pl->mkv[i].key - 1);
            pl->mkv[i].val = pl->mvals.p + (uintptr_t)pl->mkv[i].val;
        }
    }
    for (int i = 0; !rc && i < n_meta; i++) rc = add_kv(pl, meta[i].key, meta[i].val, meta[i].len);
    if (!rc && pl->pop) {
        size_t need = vg_anomaly_pop_encoded_size();
        if (pl->popcap < need) {
            uint8_t *nb = realloc(pl->popbuf, need);
            if (!nb) rc = VG_ENOMEM;
            else {
                pl->popbuf = nb;
                pl->popcap = need;
            }
        }
        int n = rc ? -1 : vg_anomaly_pop_encode(pl->pop, pl->popbuf, pl->popcap);
        if (n < 0) rc = VG_ENOMEM;
        else rc = add_kv(pl, "anomaly/pop", pl->popbuf, (size_t)n);
    }
    for (int i = 0; i < 8; i++) pl->lnext_buf[i] = (unsigned char)((uint64_t)pl->lnext >> (8 * i));
    if (!rc && pl->labels) rc = add_kv(pl, "labels/next", pl->lnext_buf, 8);
    if (rc) snprintf(errbuf, errlen, "out of memory while writing a checkpoint");
    return rc;
}

int vg_pipeline_checkpoint(vg_pipeline_t *pl, const vg_kv_t *meta, int n_meta, int sync,
                           char *errbuf, size_t errlen) {
    if (pl->use_an || pl->use_lab || pl->labels) {
        if (!vg_pipeline_state(pl) || !errbuf) return VG_EINVAL;
        int rc = gather_meta(pl, meta, n_meta, errbuf, errlen);
        if (rc) return rc;
        rc = vg_state_checkpoint(pl->state, pl->mkv, (int)pl->mkv_n, sync, errbuf, errlen);
        if (rc) return rc;
        vg_state_evict(pl->state);
        return 0;
    }
    int rc = vg_state_checkpoint(pl->state, meta, n_meta, sync, errbuf, errlen);
    if (rc) return rc;
    vg_state_evict(pl->state);
    return 0;
}

int vg_pipeline_checkpoint_meta(vg_pipeline_t *pl, vg_batch_t *b) {
    if (!pl->opts.store || !(pl->use_an || pl->use_lab || pl->labels)) return 0;
    char err[64];
    int rc = gather_meta(pl, NULL, 0, err, sizeof err);
    for (size_t i = 0; !rc && i < pl->mkv_n; i++) {
        vg_buf_clear(&pl->tmp);
        rc = vg_buf_append(&pl->tmp, "m/", 2);
        if (!rc) rc = vg_buf_puts(&pl->tmp, pl->mkv[i].key);
        if (!rc) vg_batch_put(b, pl->tmp.p, pl->tmp.len, pl->mkv[i].val, pl->mkv[i].len);
    }
    return rc;
}

int vg_pipeline_checkpoint_cut(vg_pipeline_t *pl, const vg_kv_t *meta, int n_meta,
                               vg_batch_t *b, size_t *left) {
    int rc = vg_state_snapshot_begin(pl->state, b, left);
    if (rc) return rc;
    rc = vg_pipeline_checkpoint_meta(pl, b);
    for (int i = 0; !rc && i < n_meta; i++) {
        vg_buf_clear(&pl->tmp);
        rc = vg_buf_append(&pl->tmp, "m/", 2);
        if (!rc) rc = vg_buf_puts(&pl->tmp, meta[i].key);
        if (!rc) vg_batch_put(b, pl->tmp.p, pl->tmp.len, meta[i].val, meta[i].len);
    }
    if (rc) vg_state_checkpoint_done(pl->state, 0);
    return rc;
}

int vg_pipeline_checkpoint_step(vg_pipeline_t *pl, size_t max_records, size_t *left) {
    return vg_state_snapshot_step(pl->state, max_records, left);
}

int vg_pipeline_checkpoint_begin(vg_pipeline_t *pl, const vg_kv_t *meta, int n_meta,
                                 vg_batch_t *b) {
    size_t left;
    int rc = vg_pipeline_checkpoint_cut(pl, meta, n_meta, b, &left);
    if (rc) return rc;
    rc = vg_state_snapshot_step(pl->state, SIZE_MAX, &left);
    if (rc) vg_state_checkpoint_done(pl->state, 0);
    return rc;
}

void vg_pipeline_checkpoint_end(vg_pipeline_t *pl, int written) {
    vg_state_checkpoint_done(pl->state, written);
    if (written) vg_state_evict(pl->state);
}

int vg_pipeline_meta(vg_pipeline_t *pl, const char *key, vg_buf_t *out) {
    return vg_state_meta(pl->state, key, out);
}

void vg_pipeline_get_stats(const vg_pipeline_t *pl, vg_pipeline_stats_t *out) {
    *out = pl->stats;
}

vg_state_t *vg_pipeline_state(vg_pipeline_t *pl) { return pl->state; }

/* The first occurrence of key (kl bytes) in s (n bytes), or NULL. With SSE2, 16
 * candidate positions at a time: those where two of the key's bytes (its second and
 * its fourth from last, which for a member `"name":"` are the name's first and last
 * letters) both match are compared whole (callgrind, bench.vrl: the account's peek
 * 330 -> 170 instructions per event against glibc's memmem). */
static const char *find_key(const char *s, size_t n, const char *key, size_t kl) {
#if defined(__SSE2__)
    if (kl >= 5 && n >= kl) {
        const size_t i1 = 1, i2 = kl - 4, last = n - kl;   /* last possible start */
        const __m128i c1 = _mm_set1_epi8(key[i1]), c2 = _mm_set1_epi8(key[i2]);
        size_t p = 0;
        for (; p + i2 + 16 <= n; p += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + p + i1));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + p + i2));
            unsigned m = (unsigned)_mm_movemask_epi8(
                _mm_and_si128(_mm_cmpeq_epi8(a, c1), _mm_cmpeq_epi8(b, c2)));
            while (m) {
                size_t j = p + (size_t)__builtin_ctz(m);
                if (j <= last && memcmp(s + j, key, kl) == 0) return s + j;
                m &= m - 1;
            }
        }
        for (; p <= last; p++)
            if (s[p] == key[0] && memcmp(s + p, key, kl) == 0) return s + p;
        return NULL;
    }
#endif
    return memmem(s, n, key, kl);
}

uint32_t vg_peek_string(const char *line, size_t len, const char *key, size_t kl,
                        const char **val) {
    const char *end = line + len;
    const char *k = find_key(line, len, key, kl);
    if (!k) return 0;
    const char *a = k + kl;
    const char *q = memchr(a, '"', (size_t)(end - a));
    if (!q || q == a || memchr(a, '\\', (size_t)(q - a)) || q - a > UINT32_MAX) return 0;
    *val = a;
    return (uint32_t)(q - a);
}

uint32_t vg_peek_account(const char *line, size_t len, const char **acct) {
    static const char key[] = "\"account\":\"";
    return vg_peek_string(line, len, key, sizeof key - 1, acct);
}

void vg_prefetch_event(const vg_state_t *st, uint64_t h, const char *line, size_t len,
                       int stage) {
    const vg_acct_t *a = vg_state_prefetch_hashed(st, h, stage);
    if (!a) return;   /* (only stage 2 returns an account, one with an id index) */
    static const char key[] = "\"id\":\"";
    const char *id = NULL;
    uint32_t il = vg_peek_string(line, len, key, sizeof key - 1, &id);
    if (il) vg_state_prefetch_id(a, id, il);
}

void vg_pipeline_prefetch(vg_pipeline_t *pl, const char *line, size_t len, int stage) {
    const char *a = NULL;
    uint32_t al = vg_peek_account(line, len, &a);
    if (al && pl->state) vg_prefetch_event(pl->state, vg_state_hash(a, al), line, len, stage);
}

vg_program_t *vg_pipeline_program(const vg_pipeline_t *pl) { return pl->prog; }

/* ---- ruleset swap ---- */

/* 1 when the label windows by key of `old` can serve `nw`: the same longest label
 * window and lateness, and every `by` group a label aggregate of `nw` reads has the
 * number and key text it had in `old` (the windows are keyed by group number). */
static int lk_compatible(const vg_pipeline_t *old, const vg_pipeline_t *nw) {
    if (vg_prog_max_label_window(old->prog) != vg_prog_max_label_window(nw->prog))
        return 0;
    for (int h = 0; h < nw->ngroups; h++) {
        if (nw->lgext[h] < 0) continue;
        if (h >= old->ngroups) continue;
        const char *a = vg_prog_bygroup_text(old->prog, h), *b = vg_prog_bygroup_text(nw->prog, h);
        if (!a || !b || strcmp(a, b) != 0) return 0;
    }
    return 1;
}

/* A pipeline of program p on o's store exactly as the store was made: with o's anomaly
 * setting or the other one (a state made with `anomaly = auto` by rules that read no
 * anomaly.*, opened with `on`: until 2026-12-08 the setting did not exist and such a
 * state, every state of an upgraded service, would have been emptied). NULL when
 * neither layout is the store's. */
static vg_pipeline_t *open_as_made(vg_program_t *p, const vg_pipeline_opts_t *o) {
    for (int k = 0; k < 2; k++) {
        vg_pipeline_opts_t o1 = *o;
        o1.reset_mismatch = 0;   /* its own layout, or not at all */
        o1.was_reset = NULL;
        if (k) o1.anomaly = !o->anomaly;
        char e1[256];
        vg_pipeline_t *pl = vg_pipeline_new(p, &o1, e1, sizeof e1);
        if (pl) {
            pl->opts.reset_mismatch = o->reset_mismatch;
            pl->opts.was_reset = o->was_reset;
            return pl;
        }
    }
    return NULL;
}

vg_pipeline_t *vg_pipeline_open(vg_program_t *p, const vg_pipeline_opts_t *o, int *carried,
                                char *errbuf, size_t errlen) {
    *carried = 0;
    if (o->store && o->reset_mismatch) {
        /* made by these rules, or by others of the same layout: opened as it is (with
         * the other anomaly setting: carried over to this one below) */
        vg_pipeline_t *same = open_as_made(p, o);
        if (same && same->opts.anomaly == o->anomaly) return same;
        if (same) {
            char e2[256];
            same->opts.anomaly = o->anomaly;
            if (vg_pipeline_set_program(same, p, e2, sizeof e2) == 0) {
                *carried = 1;
                return same;
            }
            vg_pipeline_free(same);
        }
        vg_buf_t b;
        vg_buf_init(&b);
        size_t mine;
        const char *src = vg_prog_sources(p, &mine);
        vg_program_t *old = NULL;
        if (vg_store_get(o->store, "m/src", 5, &b) == 0 &&
            !(src && b.len == mine && memcmp(b.p, src, mine) == 0))
            old = vg_prog_compile_sources(b.p, b.len);
        vg_buf_deinit(&b);
        if (old) {
            char e2[256];
            vg_pipeline_t *pl = open_as_made(old, o);
            vg_prog_unref(old);
            if (pl) pl->opts.anomaly = o->anomaly;   /* the new pipeline's setting */
            if (pl && vg_pipeline_set_program(pl, p, e2, sizeof e2) == 0) {
                *carried = 1;
                return pl;
            }
            vg_pipeline_free(pl);   /* (the old program's pipeline, unchanged) */
        }
    }
    return vg_pipeline_new(p, o, errbuf, errlen);
}

int vg_pipeline_set_program(vg_pipeline_t *pl, vg_program_t *p, char *errbuf, size_t errlen) {
    if (!pl || !p) return VG_EINVAL;
    vg_pipeline_opts_t o = pl->opts;
    o.store = NULL;   /* npl is built memory-only; its empty state is swapped out below for the migrated one */
    o.lists = pl->lists;
    vg_pipeline_t *npl = vg_pipeline_new(p, &o, errbuf, errlen);
    if (!npl) return VG_ENOMEM;
    vg_acctx_layout_t xl = {npl->use_an, npl->use_lab, npl->use_lab ? npl->ngroups : 0,
                            npl->use_lab ? npl->nmx : 0, npl->use_lab ? vg_acctx_xsig(p) : 0};
    int keep_lk = pl->lk && npl->lk && lk_compatible(pl, npl);
    int rc = vg_state_set_program(pl->state, p, &xl, errbuf, errlen);
    if (rc) {
        vg_pipeline_free(npl);
        return rc;
    }
    /* stale meta records (a failure only leaves them in the store: they are read
     * again only by a ruleset that uses them, and then age out) */
    if (pl->lk && !keep_lk) (void)vg_state_delete_meta(pl->state, "lk/");
    if (pl->pop && !npl->pop) (void)vg_state_delete_meta(pl->state, "anomaly/pop");
    /* the new pipeline takes the migrated state and what carries over */
    vg_state_t *t = npl->state;
    npl->state = pl->state;
    pl->state = t;
    if (npl->pop && pl->pop) {
        vg_anomaly_pop_t *x = npl->pop;
        npl->pop = pl->pop;
        pl->pop = x;
    }
    if (keep_lk) {
        vg_lkeys_t *x = npl->lk;
        npl->lk = pl->lk;
        pl->lk = x;
    }
    npl->opts.store = pl->opts.store;
    npl->labels = pl->labels;
    npl->lnext = pl->lnext;
    npl->labels_applied = pl->labels_applied;
    npl->labels_unmatched = pl->labels_unmatched;
    npl->stats = pl->stats;
    vg_pipeline_t tmp = *pl;
    *pl = *npl;
    *npl = tmp;
    vg_pipeline_free(npl);
    return 0;
}

void vg_pipeline_set_versions(vg_pipeline_t *pl, int64_t ruleset_version,
                              int64_t module_version) {
    pl->opts.ruleset_version = ruleset_version;
    if (module_version >= 0) {
        pl->opts.module_version = module_version;
        pl->version = module_version;
    }
    set_tail(pl, ruleset_version);
}
