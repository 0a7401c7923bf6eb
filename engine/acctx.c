/* acctx.c - an account's anomaly baseline and label memo (see acctx.h).
 *
 * Record (little endian): "X1", u8 has_anomaly, [u32 len, vg_anomaly_state_encode bytes],
 * u32 stride, u32 n, n x stride u64 words (an x value is the u64 of its double's bits).
 */
#include "engine/acctx.h"
#include "engine/le.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rules/errors.h"
#include "rules/program.h"

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

uint64_t vg_acctx_hash(const void *p, size_t n, uint64_t seed) {
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ seed ^ ((uint64_t)n << 32);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, s, 8);
        h = mix(h ^ k) * 0x9e3779b97f4a7c15ULL;
        s += 8;
        n -= 8;
    }
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) k |= (uint64_t)s[i] << (8 * i);
    h = mix(h ^ k ^ 0x5bd1e995);
    return h ? h : 1;
}

uint64_t vg_acctx_fingerprint(const vg_acctx_layout_t *l) {
    uint64_t d[6] = {0x6163637478310000ULL, (uint64_t)l->anomaly, (uint64_t)l->memo,
                     (uint64_t)l->ngroups, 0, 0};
    if (l->nx > 0) {   /* layouts without label sums keep their fingerprint */
        d[0] = 0x6163637478320000ULL;
        d[4] = (uint64_t)l->nx;
        d[5] = l->xsig;
        return vg_acctx_hash(d, sizeof d, VG_ANOMALY_VERSION);
    }
    return vg_acctx_hash(d, 4 * sizeof d[0], VG_ANOMALY_VERSION);
}

uint64_t vg_acctx_xsig(const struct vg_program *p) {
    int n = vg_prog_memo_nx(p);
    uint64_t h = 0;
    for (int k = 0; k < n; k++) {
        const char *t = vg_prog_memo_x_text(p, k);
        h = vg_acctx_hash(t, strlen(t), h ^ (uint64_t)k);
    }
    return n ? h : 0;
}

vg_acctx_t *vg_acctx_new(const vg_acctx_layout_t *l) {
    vg_acctx_t *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    x->has_anomaly = l->anomaly ? 1 : 0;
    if (x->has_anomaly) vg_anomaly_state_init(&x->an);
    x->ngroups = (uint32_t)(l->ngroups > 0 ? l->ngroups : 0);
    x->stride = 3 + x->ngroups + (uint32_t)(l->nx > 0 ? l->nx : 0);
    return x;
}

void vg_acctx_free(vg_acctx_t *x) {
    if (!x) return;
    free(x->m);
    free(x);
}

size_t vg_acctx_mem(const vg_acctx_t *x) {
    return sizeof *x + (size_t)x->cap * x->stride * 8;
}

int vg_acctx_encode(const vg_acctx_t *x, vg_buf_t *out) {
    int rc = vg_buf_append(out, "X1", 2);
    if (!rc) rc = vg_le_put(out, x->has_anomaly, 1);
    if (!rc && x->has_anomaly) {
        uint8_t tmp[2048];
        int n = vg_anomaly_state_encode(&x->an, tmp, sizeof tmp);
        if (n < 0) return VG_ENOMEM;
        rc = vg_le_put(out, (uint64_t)n, 4);
        if (!rc) rc = vg_buf_append(out, tmp, (size_t)n);
    }
    if (!rc) rc = vg_le_put(out, x->stride, 4);
    if (!rc) rc = vg_le_put(out, x->n - x->head, 4);
    for (uint32_t i = x->head; !rc && i < x->n; i++)
        for (uint32_t k = 0; !rc && k < x->stride; k++) rc = vg_le_put(out, x->m[(size_t)i * x->stride + k], 8);
    return rc;
}


vg_acctx_t *vg_acctx_decode(const vg_acctx_layout_t *l, const void *p, size_t n, int *corrupt) {
    vg_le_rd_t r = {p, n, 0, 0};
    *corrupt = 1;
    if (n < 2 || memcmp(p, "X1", 2) != 0) return NULL;
    r.i = 2;
    vg_acctx_t *x = vg_acctx_new(l);
    if (!x) {
        *corrupt = 0;
        return NULL;
    }
    uint64_t has_an = vg_le_get(&r, 1);
    if (has_an != (uint64_t)x->has_anomaly) goto bad;
    if (has_an) {
        uint64_t len = vg_le_get(&r, 4);
        if (r.bad || len > r.n - r.i) goto bad;
        if (vg_anomaly_state_decode(&x->an, r.p + r.i, (size_t)len) != 0) goto bad;
        r.i += (size_t)len;
    }
    uint64_t stride = vg_le_get(&r, 4), cnt = vg_le_get(&r, 4);
    if (r.bad || stride != x->stride || cnt > (r.n - r.i) / 8 / stride) goto bad;
    if (cnt) {
        x->m = malloc((size_t)cnt * stride * 8);
        if (!x->m) {
            *corrupt = 0;
            goto bad;
        }
        x->cap = x->n = (uint32_t)cnt;
        for (size_t i = 0; i < cnt * stride; i++) x->m[i] = vg_le_get(&r, 8);
    }
    if (r.bad || r.i != r.n) goto bad;
    *corrupt = 0;
    return x;
bad:
    vg_acctx_free(x);
    return NULL;
}

void vg_acctx_memo_expire(vg_acctx_t *x, int64_t oldest) {
    while (x->head < x->n && VG_ACCTX_TS(x, x->head) < oldest) x->head++;
    if (x->head == x->n) x->head = x->n = 0;
}

int vg_acctx_memo_add(vg_acctx_t *x, uint64_t idh, int64_t ts, const uint64_t *keyh,
                      const double *xv) {
    if (x->n == x->cap) {
        if (x->head > 0 && x->head * 2 >= x->n) {   /* reuse the dead front */
            memmove(x->m, x->m + (size_t)x->head * x->stride,
                    (size_t)(x->n - x->head) * x->stride * 8);
            x->n -= x->head;
            x->head = 0;
        } else {
            uint32_t nc = x->cap ? x->cap * 2 : 8;
            uint64_t *nm = realloc(x->m, (size_t)nc * x->stride * 8);
            if (!nm) return VG_ENOMEM;
            x->m = nm;
            x->cap = nc;
        }
    }
    uint64_t *e = x->m + (size_t)x->n * x->stride;
    e[0] = idh;
    e[1] = (uint64_t)ts;
    e[2] = VG_LABEL_NONE;
    for (uint32_t g = 0; g < x->ngroups; g++) e[3 + g] = keyh ? keyh[g] : 0;
    for (uint32_t k = 0; k + 3 + x->ngroups < x->stride; k++) {
        double d = xv ? xv[k] : NAN;
        memcpy(&e[3 + x->ngroups + k], &d, 8);
    }
    x->n++;
    return 0;
}

double vg_acctx_memo_x(const vg_acctx_t *x, uint32_t i, int k) {
    double d;
    uint64_t w = VG_ACCTX_XW(x, i, k);
    memcpy(&d, &w, 8);
    return d;
}

long vg_acctx_memo_find(const vg_acctx_t *x, uint64_t idh) {
    for (uint32_t i = x->n; i > x->head; i--)
        if (VG_ACCTX_IDH(x, i - 1) == idh) return (long)(i - 1);
    return -1;
}

/* Over the memo's labelled events with time in [lo, hi]: the sum of their x number k
 * (NaN ones skipped), or with k < 0 their count; in all and over the frauds. */
static void memo_fold(const vg_acctx_t *x, int k, int64_t lo, int64_t hi, double *fraud,
                      double *labelled) {
    double f = 0, l = 0;
    for (uint32_t i = x->head; i < x->n; i++) {
        uint64_t s = VG_ACCTX_STATUS(x, i);
        if (s == VG_LABEL_NONE) continue;
        int64_t t = VG_ACCTX_TS(x, i);
        if (t < lo || t > hi) continue;
        double v = k < 0 ? 1 : vg_acctx_memo_x(x, i, k);
        if (isnan(v)) continue;
        l += v;
        if (s == VG_LABEL_FRAUD) f += v;
    }
    *fraud = f;
    *labelled = l;
}

void vg_acctx_memo_count(const vg_acctx_t *x, int64_t lo, int64_t hi, int64_t *fraud,
                         int64_t *labelled) {
    double f, l;
    memo_fold(x, -1, lo, hi, &f, &l);   /* counts below 2^53: exact in a double */
    *fraud = (int64_t)f;
    *labelled = (int64_t)l;
}

void vg_acctx_memo_sum(const vg_acctx_t *x, int k, int64_t lo, int64_t hi, double *fraud,
                       double *labelled) {
    memo_fold(x, k, lo, hi, fraud, labelled);
}
