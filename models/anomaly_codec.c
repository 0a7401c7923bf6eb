/* anomaly_codec.c - persistence of anomaly states and populations: versioned,
 * little-endian, size-checked byte strings. One walker per struct serves both directions,
 * so the encoder and the decoder cannot disagree on the layout.
 *
 * Layout: "VA" (state) or "VP" (population), version byte, 0 byte, u32 payload length,
 * payload (every field in declaration order, integers and IEEE floats little endian). */
#include <math.h>
#include <string.h>

#include "models/anomaly.h"
#include "rules/errors.h"

typedef struct codec {
    uint8_t *w;        /* encoding: destination */
    const uint8_t *r;  /* decoding: source */
    size_t pos, cap;
    int err;
} codec_t;

static void raw(codec_t *c, void *v, size_t n) {
    if (c->pos + n > c->cap) {
        c->err = 1;
        c->pos += n;
        return;
    }
    if (c->w) {
        /* little endian on every host */
        const uint8_t *s = v;
        const uint16_t one = 1;
        if (*(const uint8_t *)&one)
            memcpy(c->w + c->pos, s, n);
        else
            for (size_t i = 0; i < n; i++) c->w[c->pos + i] = s[n - 1 - i];
    } else if (c->r) {
        uint8_t *d = v;
        const uint16_t one = 1;
        if (*(const uint8_t *)&one)
            memcpy(d, c->r + c->pos, n);
        else
            for (size_t i = 0; i < n; i++) d[i] = c->r[c->pos + n - 1 - i];
    }
    c->pos += n;
}

#define U8(x) raw(c, &(x), 1)
#define U16(x) raw(c, &(x), 2)
#define U32(x) raw(c, &(x), 4)
#define U64(x) raw(c, &(x), 8)
#define F32(x) raw(c, &(x), 4)
#define F64(x) raw(c, &(x), 8)

static void walk_amount_cfg(codec_t *c, vg_amount_cfg_t *a) {
    F32(a->lambda);
    F32(a->prior_n);
    F32(a->season_k);
    F32(a->season_rate);
    F32(a->rel_floor);
    F32(a->abs_floor);
}

static void walk_state(codec_t *c, vg_anomaly_state_t *s) {
    U32(s->n);
    U16(s->tick);
    U8(s->skip_run); /* (with recur: the u16 skip_run of format 2, little endian) */
    U8(s->recur);
    U64(s->first_ts);
    U64(s->last_ts);
    for (int i = 0; i < VG_AMOUNT_RING; i++) F32(s->amount.ring[i]);
    for (int i = 0; i < VG_AMOUNT_RING; i++) U8(s->amount.ring_how[i]);
    for (int i = 0; i < VG_AMOUNT_RING; i++) U8(s->amount.ord[i]);
    for (int i = 0; i < VG_AMOUNT_LAMBDAS; i++) F32(s->amount.exc[i]);
    for (int i = 0; i < 24; i++) F32(s->amount.hod[i]);
    for (int i = 0; i < 7; i++) F32(s->amount.dow[i]);
    for (int i = 0; i < 24; i++) U8(s->amount.hod_n[i]);
    for (int i = 0; i < 7; i++) U8(s->amount.dow_n[i]);
    U8(s->amount.head);
    U32(s->amount.n);
    F32(s->amount.slow);
    F32(s->amount.svar);
    U8(s->amount.lam);
    F32(s->amount.s_mh);
    F32(s->amount.s_md);
    F32(s->amount.s_tau_h);
    F32(s->amount.s_tau_d);
    for (int i = 0; i < 168; i++) U8(s->how[i]);
    U16(s->how_total);
    for (int i = 0; i < VG_ANOMALY_CAT__COUNT; i++) F32(s->nov_seen[i]);
    for (int i = 0; i < VG_ANOMALY_CAT__COUNT; i++) F32(s->nov_new[i]);
    for (int i = 0; i < VG_ANOMALY_NOV_SLOTS; i++) U32(s->nov_h[i]);
    for (int i = 0; i < VG_ANOMALY_NOV_SLOTS; i++) U16(s->nov_last[i]);
    F32(s->burst);
    F32(s->burst_spend);
    F32(s->p_comp);
    F32(s->run_y);
}

static void walk_pop(codec_t *c, vg_anomaly_pop_t *p) {
    vg_anomaly_cfg_t *g = &p->cfg;
    walk_amount_cfg(c, &g->amount);
    F32(g->base_rate);
    F32(g->compromise_hazard);
    F32(g->compromise_days);
    F32(g->compromise_frac);
    F32(g->pop_amount_weight);
    F32(g->amount_up);
    F32(g->time_weight);
    F32(g->velocity_weight);
    F32(g->novelty_weight);
    F32(g->multi_weight);
    F32(g->burst_tau_s);
    U32(g->signals);
    for (int i = 0; i < VG_ANOMALY_POP_BINS; i++) F64(p->amt_hist[i]);
    F64(p->amt_total);
    for (int i = 0; i < 168; i++) F64(p->hist_how[i]);
    F64(p->how_total);
    for (int i = 0; i < VG_ANOMALY_HOW_MODELS; i++) F64(p->how_ll[i]);
    for (int i = 0; i < VG_ANOMALY_HOW_MODELS; i++) F64(p->how_prod[i]);
    for (int i = 0; i < VG_AMOUNT_LAMBDAS; i++) {
        F32(p->prior.level[i]);
        F32(p->prior.scale[i]);
        F32(p->prior.exc[i]);
    }
    F32(p->prior.exc_n);
    U32(p->prior.lam);
    for (int i = 0; i < VG_AMOUNT_LAMBDAS; i++) F64(p->amt_exc[i]);
    F64(p->amt_exc_n);
    U64(p->n);
    vg_hstree_t *t = &p->trees;
    for (int k = 0; k < VG_HST_TREES; k++)
        for (int i = 0; i < VG_HST_NODES; i++) {
            U8(t->node[k][i].dim);
            F32(t->node[k][i].split);
            U16(t->node[k][i].ref);
            U16(t->node[k][i].cur);
        }
    U32(t->ndims);
    U32(t->count);
    U32(t->ready);
}

#define HDR 8

static size_t payload_size(void (*walk)(codec_t *, void *), void *obj) {
    codec_t c = {NULL, NULL, 0, (size_t)-1, 0};
    walk(&c, obj);
    return c.pos;
}

static void walk_state_v(codec_t *c, void *o) { walk_state(c, o); }
static void walk_pop_v(codec_t *c, void *o) { walk_pop(c, o); }

static int encode(char tag, void (*walk)(codec_t *, void *), void *obj, uint8_t *buf,
                  size_t cap) {
    size_t n = payload_size(walk, obj);
    if (cap < HDR + n || HDR + n > 0x7fffffff) return VG_ELIMIT;
    buf[0] = 'V';
    buf[1] = (uint8_t)tag;
    buf[2] = VG_ANOMALY_VERSION;
    buf[3] = 0;
    for (int i = 0; i < 4; i++) buf[4 + i] = (uint8_t)(n >> (8 * i));
    codec_t c = {buf + HDR, NULL, 0, n, 0};
    walk(&c, obj);
    return c.err ? VG_ELIMIT : (int)(HDR + n);
}

static int decode(char tag, void (*walk)(codec_t *, void *), void *obj, const uint8_t *buf,
                  size_t len) {
    size_t n = payload_size(walk, obj);
    if (!buf || len != HDR + n || buf[0] != 'V' || buf[1] != (uint8_t)tag ||
        buf[2] != VG_ANOMALY_VERSION || buf[3] != 0)
        return VG_EINVAL;
    size_t m = 0;
    for (int i = 0; i < 4; i++) m |= (size_t)buf[4 + i] << (8 * i);
    if (m != n) return VG_EINVAL;
    codec_t c = {NULL, buf + HDR, 0, n, 0};
    walk(&c, obj);
    return c.err ? VG_EINVAL : 0;
}

size_t vg_anomaly_state_encoded_size(void) {
    vg_anomaly_state_t s;
    memset(&s, 0, sizeof s);
    return HDR + payload_size(walk_state_v, &s);
}

int vg_anomaly_state_encode(const vg_anomaly_state_t *st, uint8_t *buf, size_t cap) {
    vg_anomaly_state_t copy = *st; /* the walker takes non-const pointers */
    return encode('A', walk_state_v, &copy, buf, cap);
}

static int state_valid(const vg_anomaly_state_t *s) {
    if (s->amount.head >= VG_AMOUNT_RING || s->amount.lam >= VG_AMOUNT_LAMBDAS ||
        !isfinite(s->amount.s_mh) || !isfinite(s->amount.s_md) ||
        !(s->amount.s_tau_h >= 0) || !(s->amount.s_tau_d >= 0) || !isfinite(s->amount.s_tau_h) ||
        !isfinite(s->amount.s_tau_d))
        return 0;
    /* ord: the held slots (all, or 0 .. n-1 before the ring is full), each once, in
     * ascending order of value */
    int held = s->amount.n < VG_AMOUNT_RING ? (int)s->amount.n : VG_AMOUNT_RING;
    if (held < VG_AMOUNT_RING && s->amount.head != held) return 0;
    uint32_t seen = 0;
    for (int i = 0; i < held; i++) {
        int o = s->amount.ord[i];
        if (o >= held || (seen >> o & 1u)) return 0;
        seen |= 1u << o;
        if (i > 0 && !(s->amount.ring[s->amount.ord[i - 1]] <= s->amount.ring[o])) return 0;
    }
    for (int i = 0; i < VG_AMOUNT_RING; i++)
        if (s->amount.ring_how[i] >= 168) return 0;
    for (int i = 0; i < VG_AMOUNT_RING; i++)
        if (!isfinite(s->amount.ring[i])) return 0;
    for (int i = 0; i < VG_AMOUNT_LAMBDAS; i++)
        if (!isfinite(s->amount.exc[i])) return 0;
    if (!isfinite(s->amount.slow) || !(s->amount.svar >= 0) || !isfinite(s->burst) ||
        !isfinite(s->burst_spend) || !(s->p_comp >= 0 && s->p_comp <= 1))
        return 0;
    return 1;
}

int vg_anomaly_state_decode(vg_anomaly_state_t *st, const uint8_t *buf, size_t len) {
    vg_anomaly_state_t s;
    memset(&s, 0, sizeof s);
    int rc = decode('A', walk_state_v, &s, buf, len);
    if (rc == 0 && !state_valid(&s)) rc = VG_EINVAL;
    if (rc) {
        vg_anomaly_state_init(st);
        return rc;
    }
    *st = s;
    return 0;
}

size_t vg_anomaly_pop_encoded_size(void) {
    /* field by field, as walk_pop() writes them (a test checks they agree) */
    return HDR + 6 * 4 + 12 * 4 + VG_ANOMALY_POP_BINS * 8 + 8 + 168 * 8 + 8 +
           2 * VG_ANOMALY_HOW_MODELS * 8 + VG_AMOUNT_LAMBDAS * 12 + 8 + VG_AMOUNT_LAMBDAS * 8 + 8 + 8 +
           (size_t)VG_HST_TREES * VG_HST_NODES * (1 + 4 + 2 + 2) + 12;
}

int vg_anomaly_pop_encode(const vg_anomaly_pop_t *pop, uint8_t *buf, size_t cap) {
    /* the walker only reads through the pointer when encoding */
    return encode('P', walk_pop_v, (void *)(uintptr_t)pop, buf, cap);
}

int vg_anomaly_pop_decode(vg_anomaly_pop_t *pop, const uint8_t *buf, size_t len) {
    int rc = decode('P', walk_pop_v, pop, buf, len);
    if (rc == 0 && (pop->trees.ndims < 1 || pop->trees.ndims > VG_HST_DIMS)) rc = VG_EINVAL;
    for (int k = 0; rc == 0 && k < VG_HST_TREES; k++)
        for (int i = 0; i < VG_HST_NODES; i++)
            if (pop->trees.node[k][i].dim >= pop->trees.ndims) rc = VG_EINVAL;
    if (rc == 0 && (pop->trees.count >= VG_HST_WINDOW || pop->prior.lam >= VG_AMOUNT_LAMBDAS))
        rc = VG_EINVAL;
    if (rc) vg_anomaly_pop_init(pop, NULL, 0);
    else vg_anomaly_pop_derive(pop);
    return rc;
}
