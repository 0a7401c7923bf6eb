/* window_codec.c - encoding and decoding of a window state (vg_wstate_encode/decode).
 *
 * Format (all integers little endian, doubles as their IEEE-754 bits):
 *   u32 magic "VGW1", u32 version (1), u64 layout fingerprint, i64 newest,
 *   u32 number of specs, u32 words per row, u64 number of rows n,
 *   n rows of `words per row` u64 (prev() strings: the offset word is rewritten),
 *   u64 string bytes, the prev() strings of every row in row order,
 *   per sum/avg/stddev spec: f64 s1.s, s1.c, s2.s, s2.c, sabs, hw (the running
 *     sums, so that a decoded state computes bit-identical values), i64 ops,
 *   u64 checksum (vg_whash_bytes of everything before it).
 * Everything else (frontier positions, counts, min/max deques, distinct/seen tables)
 * is a function of the rows and is rebuilt on decode, in O(rows).
 * The decoder checks the checksum, every length, the fingerprint, and the content of
 * every row (times in order, x finite or absent, valid prev types and string lengths),
 * so that corrupt input is rejected and never read out of bounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/window.h"
#include "engine/window_int.h"
#include "rules/errors.h"

#define WIN_MAGIC 0x31574756u   /* "VGW1" */
#define WIN_VERSION 1u
#define HDR_BYTES 40u

static inline void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint64_t get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static inline uint32_t get32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static size_t live_string_bytes(const vg_wstate_t *w, const vg_wlayout_t *l) {
    size_t b = 0;
    if (!l->nprev) return 0;
    for (int64_t p = w->first; p < w->first + (int64_t)w->n; p++) {
        const word_t *r = wrow(w, l, p);
        for (int i = 0; i < l->n; i++)
            if (l->s[i].kind == VG_SPEC_PREV && type_is_str(prev_type(r + l->s[i].off)))
                b += prev_len(r + l->s[i].off);
    }
    return b;
}

int vg_wstate_encode(const vg_wstate_t *w, const vg_wlayout_t *l, vg_buf_t *out) {
    size_t rw = (size_t)l->rw, nsum = 0;
    for (int i = 0; i < l->n; i++) nsum += kind_sumlike(l->s[i].kind);
    size_t sbytes = live_string_bytes(w, l);
    size_t total = HDR_BYTES + w->n * rw * 8 + 8 + sbytes + nsum * 56 + 8;
    if (vg_buf_reserve(out, total)) return VG_ENOMEM;
    unsigned char *p0 = (unsigned char *)out->p + out->len, *p = p0;
    put32(p, WIN_MAGIC);
    put32(p + 4, WIN_VERSION);
    put64(p + 8, l->fp);
    put64(p + 16, (uint64_t)w->newest);
    put32(p + 24, (uint32_t)l->n);
    put32(p + 28, (uint32_t)rw);
    put64(p + 32, (uint64_t)w->n);
    p += HDR_BYTES;
    for (int64_t pos = w->first; pos < w->first + (int64_t)w->n; pos++) {
        const word_t *r = wrow(w, l, pos);
        for (size_t j = 0; j < rw; j++, p += 8) put64(p, r[j].u);
    }
    put64(p, (uint64_t)sbytes);
    p += 8;
    if (sbytes) {
        for (int64_t pos = w->first; pos < w->first + (int64_t)w->n; pos++) {
            const word_t *r = wrow(w, l, pos);
            for (int i = 0; i < l->n; i++) {
                const word_t *q = r + l->s[i].off;
                if (l->s[i].kind != VG_SPEC_PREV || !type_is_str(prev_type(q))) continue;
                memcpy(p, w->sb + q[0].u, prev_len(q));
                p += prev_len(q);
            }
        }
    }
    for (int i = 0; i < l->n; i++) {
        if (!kind_sumlike(l->s[i].kind)) continue;
        const sstate_t *ss = wss(w, &l->s[i]);
        word_t v[7];
        v[0].d = ss->a.s1.s;
        v[1].d = ss->a.s1.c;
        v[2].d = ss->a.s2.s;
        v[3].d = ss->a.s2.c;
        v[4].d = ss->a.sabs;
        v[5].d = ss->a.hw;
        v[6].i = ss->ops;
        for (int j = 0; j < 7; j++, p += 8) put64(p, v[j].u);
    }
    put64(p, vg_whash_bytes(WIN_MAGIC, p0, (size_t)(p - p0)));
    p += 8;
    out->len += (size_t)(p - p0);
    return 0;
}

static vg_wstate_t *fail(vg_wstate_t *w, char *errbuf, size_t errlen, const char *msg) {
    if (errbuf && errlen) snprintf(errbuf, errlen, "window state: %s", msg);
    vg_wstate_free(w);
    return NULL;
}

/* Checks one decoded row against the layout; adds its string bytes to *sbytes. */
static const char *check_row(const vg_wlayout_t *l, word_t *r, uint64_t *sbytes) {
    for (int i = 0; i < l->n; i++) {
        const lspec_t *s = &l->s[i];
        word_t *q = r + s->off;
        switch (s->kind) {
        case VG_SPEC_COUNT: break;
        case VG_SPEC_SUM:
        case VG_SPEC_AVG:
        case VG_SPEC_MIN:
        case VG_SPEC_MAX:
        case VG_SPEC_STDDEV:
            if (q->d != q->d)
                q->d = NAN;
            else if (!isfinite(q->d))
                return "bad x";
            break;
        case VG_SPEC_DISTINCT:
        case VG_SPEC_SEEN: break;
        case VG_SPEC_SESSION_SUM:
            if (q[2].d != q[2].d) q[2].d = NAN;
            if (!isfinite(q[3].d) || !isfinite(q[4].d) || isinf(q[2].d)) return "bad session";
            /* fall through */
        case VG_SPEC_SESSION_COUNT:
        case VG_SPEC_SESSION_DURATION:
            /* count 0: a cold row (vg_wstate_migrate), first time INT64_MIN */
            if (q[1].i < 0 || (q[1].i == 0 && q[0].i != INT64_MIN) || q[0].i > r[0].i)
                return "bad session";
            break;
        case VG_SPEC_PREV: {
            int t = prev_type(q);
            if ((q[1].u & 0xffffff00u) || t > VG_T_JSON) return "bad prev type";
            if (type_is_str(t)) {
                q[0].u = *sbytes;
                *sbytes += prev_len(q);
            } else if (prev_len(q)) {
                return "bad prev length";
            } else if (t == VG_T_NUM && !isfinite(q[0].d)) {
                return "bad prev number";
            }
            break;
        }
        }
    }
    return NULL;
}

/* Rebuilds the frontier of every windowed spec from the rows. */
static int rebuild(vg_wstate_t *w, const vg_wlayout_t *l) {
    int64_t end = w->first + (int64_t)w->n;
    for (int i = 0; i < l->n; i++) {
        const lspec_t *s = &l->s[i];
        if (s->soff < 0) continue;
        sstate_t *ss = wss(w, s);
        ss->L = w->n ? vg_wlower_bound(w, l, sat_sub(w->newest, s->w)) : w->first;
        if (kind_minmax(s->kind) || kind_hashed(s->kind)) {
            /* small frontiers are scanned (window.c) */
            if (end - ss->L > SMALL_ROWS && vg_wss_build(w, l, s, ss)) return VG_ENOMEM;
            continue;
        }
        for (int64_t p = ss->L; p < end; p++) {
            const word_t *r = wrow(w, l, p);
            if (s->kind == VG_SPEC_COUNT) {
                if (r[1 + s->off / 64].u >> (s->off % 64) & 1) ss->a.cnt++;
            } else if (r[s->off].d == r[s->off].d) {
                ss->a.cnt++;
            }
        }
    }
    return 0;
}

vg_wstate_t *vg_wstate_decode(const vg_wlayout_t *l, const void *data, size_t n, char *errbuf,
                              size_t errlen) {
    const unsigned char *p = data;
    vg_wstate_t *w = NULL;
    if (!p || n < HDR_BYTES + 16) return fail(w, errbuf, errlen, "truncated");
    if (get64(p + n - 8) != vg_whash_bytes(WIN_MAGIC, p, n - 8))
        return fail(w, errbuf, errlen, "checksum mismatch");
    if (get32(p) != WIN_MAGIC) return fail(w, errbuf, errlen, "bad magic");
    if (get32(p + 4) != WIN_VERSION) return fail(w, errbuf, errlen, "unknown version");
    if (get64(p + 8) != l->fp || get32(p + 24) != (uint32_t)l->n ||
        get32(p + 28) != (uint32_t)l->rw)
        return fail(w, errbuf, errlen, "made by another layout (rules or lateness changed)");
    int64_t newest = (int64_t)get64(p + 16);
    uint64_t nrows = get64(p + 32), rw = (uint64_t)l->rw;
    size_t nsum = 0;
    for (int i = 0; i < l->n; i++) nsum += kind_sumlike(l->s[i].kind);
    size_t fixed = HDR_BYTES + 8 + nsum * 56 + 8;
    if (n < fixed || nrows > (n - fixed) / (rw * 8)) return fail(w, errbuf, errlen, "bad row count");
    if (!(w = vg_wstate_new(l))) return fail(w, errbuf, errlen, "out of memory");
    if (nrows && vg_wstate_reserve_rows(w, l, (size_t)nrows + 1))
        return fail(w, errbuf, errlen, "out of memory");
    const unsigned char *q = p + HDR_BYTES;
    uint64_t sbytes = 0;
    for (uint64_t i = 0; i < nrows; i++) {
        word_t *r = w->rows + i * rw;
        for (uint64_t j = 0; j < rw; j++, q += 8) r[j].u = get64(q);
        if (i && r[0].i < r[-(ptrdiff_t)rw].i) return fail(w, errbuf, errlen, "rows out of order");
        const char *why = check_row(l, r, &sbytes);
        if (why) return fail(w, errbuf, errlen, why);
    }
    w->n = (size_t)nrows;
    if (nrows && newest != w->rows[(nrows - 1) * rw].i)
        return fail(w, errbuf, errlen, "bad newest time");
    w->newest = newest;
    if (get64(q) != sbytes || sbytes > n - fixed - nrows * rw * 8)
        return fail(w, errbuf, errlen, "bad string bytes");
    q += 8;
    if (sbytes) {
        if (!(w->sb = malloc((size_t)sbytes))) return fail(w, errbuf, errlen, "out of memory");
        memcpy(w->sb, q, (size_t)sbytes);
        w->sb_cap = w->sb_len = (size_t)sbytes;
        q += sbytes;
    }
    for (int i = 0; i < l->n; i++) {
        if (!kind_sumlike(l->s[i].kind)) continue;
        sstate_t *ss = wss(w, &l->s[i]);
        word_t v[7];
        for (int j = 0; j < 7; j++, q += 8) v[j].u = get64(q);
        for (int j = 0; j < 6; j++)
            if (!isfinite(v[j].d)) return fail(w, errbuf, errlen, "bad sums");
        if (v[6].i < 0) return fail(w, errbuf, errlen, "bad sums");
        ss->a.s1.s = v[0].d;
        ss->a.s1.c = v[1].d;
        ss->a.s2.s = v[2].d;
        ss->a.s2.c = v[3].d;
        ss->a.sabs = v[4].d;
        ss->a.hw = v[5].d;
        ss->ops = v[6].i;
    }
    if ((size_t)(q - p) != n - 8) return fail(w, errbuf, errlen, "trailing bytes");
    if (rebuild(w, l)) return fail(w, errbuf, errlen, "out of memory");
    return w;
}
