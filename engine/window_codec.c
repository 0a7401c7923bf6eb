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

/* The prev() strings of the rows [from, to), in row order, at p; returns the end. */
static unsigned char *put_strings(unsigned char *p, const vg_wstate_t *w,
                                  const vg_wlayout_t *l, int64_t from, int64_t to) {
    for (int64_t pos = from; pos < to; pos++) {
        const word_t *r = wrow(w, l, pos);
        for (int i = 0; i < l->n; i++) {
            const word_t *q = r + l->s[i].off;
            if (l->s[i].kind != VG_SPEC_PREV || !type_is_str(prev_type(q))) continue;
            memcpy(p, w->sb + q[0].u, prev_len(q));
            p += prev_len(q);
        }
    }
    return p;
}

/* The header (HDR_BYTES) at p. */
static void put_header(unsigned char *p, const vg_wstate_t *w, const vg_wlayout_t *l) {
    put32(p, WIN_MAGIC);
    put32(p + 4, WIN_VERSION);
    put64(p + 8, l->fp);
    put64(p + 16, (uint64_t)w->newest);
    put32(p + 24, (uint32_t)l->n);
    put32(p + 28, (uint32_t)l->rw);
    put64(p + 32, (uint64_t)w->n);
}

/* The running sums of the sum-like specs (56 bytes each) at p; returns the end. */
static unsigned char *put_sums(unsigned char *p, const vg_wstate_t *w, const vg_wlayout_t *l) {
    for (int i = 0; i < l->n; i++) {
        if (!kind_sumlike(l->s[i].kind)) continue;
        const sstate_t *ss = wss(w, &l->s[i]);
        const int sd = l->s[i].kind == VG_SPEC_STDDEV;   /* only it keeps s2 (0 else) */
        word_t v[7];
        v[0].d = ss->a.s1.s;
        v[1].d = ss->a.s1.c;
        v[2].d = sd ? ss->a.s2.s : 0.0;
        v[3].d = sd ? ss->a.s2.c : 0.0;
        v[4].d = ss->a.sabs;
        v[5].d = ss->a.hw;
        v[6].i = ss->a.ops;
        for (int j = 0; j < 7; j++, p += 8) put64(p, v[j].u);
    }
    return p;
}

int vg_wstate_encode(const vg_wstate_t *w, const vg_wlayout_t *l, vg_buf_t *out) {
    size_t rw = (size_t)l->rw, nsum = 0;
    for (int i = 0; i < l->n; i++) nsum += kind_sumlike(l->s[i].kind);
    size_t sbytes = live_string_bytes(w, l);
    size_t total = HDR_BYTES + w->n * rw * 8 + 8 + sbytes + nsum * 56 + 8;
    if (vg_buf_reserve(out, total)) return VG_ENOMEM;
    unsigned char *p0 = (unsigned char *)out->p + out->len, *p = p0;
    put_header(p, w, l);
    p += HDR_BYTES;
    for (int64_t pos = w->first; pos < w->first + (int64_t)w->n; pos++) {
        const word_t *r = wrow(w, l, pos);
        for (size_t j = 0; j < rw; j++, p += 8) put64(p, r[j].u);
    }
    put64(p, (uint64_t)sbytes);
    p += 8;
    if (sbytes) p = put_strings(p, w, l, w->first, w->first + (int64_t)w->n);
    p = put_sums(p, w, l);
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
            /* the run's sum (q[3], q[4]) is infinite or NaN once it overflowed (values
             * near 1e308): a null session_sum until the run ends, not a bad state */
            for (int j = 2; j <= 4; j++)
                if (q[j].d != q[j].d) q[j].d = NAN;
            if (isinf(q[2].d)) return "bad session";
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
        /* (the same L for every spec of a width) */
        const int64_t L = w->n ? vg_wlower_bound(w, l, sat_sub(w->newest, s->w)) : w->first;
        *wlp(w, s) = L;
        if (kind_minmax(s->kind) || kind_hashed(s->kind)) {
            /* small frontiers are scanned (window.c) */
            if (end - L > SMALL_ROWS && vg_wss_build(w, l, s, ss)) {
                w->dsmem = vg_wds_mem(w, l);
                return VG_ENOMEM;
            }
            continue;
        }
        for (int64_t p = L; p < end; p++) {
            const word_t *r = wrow(w, l, p);
            if (s->kind == VG_SPEC_COUNT) {
                if (r[1 + s->off / 64].u >> (s->off % 64) & 1) ss->a.cnt++;
            } else if (r[s->off].d == r[s->off].d) {
                ss->a.cnt++;
            }
        }
    }
    w->dsmem = vg_wds_mem(w, l);
    return 0;
}

static vg_wstate_t *decode_at(const vg_wlayout_t *l, const void *data, size_t n, int64_t first,
                              char *errbuf, size_t errlen);

vg_wstate_t *vg_wstate_decode(const vg_wlayout_t *l, const void *data, size_t n, char *errbuf,
                              size_t errlen) {
    return decode_at(l, data, n, 0, errbuf, errlen);
}

/* Decodes the whole encoding, the rows placed from position `first` on. */
static vg_wstate_t *decode_at(const vg_wlayout_t *l, const void *data, size_t n, int64_t first,
                              char *errbuf, size_t errlen) {
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
    w->first = first;
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
        /* the sums may be infinite or NaN only while hw says a huge value makes them
         * unused (window.c, "Huge values"; recomputed at the next event) */
        int huge = isfinite(v[5].d) && v[5].d >= HUGE_X;
        for (int j = 0; j < 6; j++)
            if (!isfinite(v[j].d) && !(huge && j < 5)) return fail(w, errbuf, errlen, "bad sums");
        if (v[6].i < 0) return fail(w, errbuf, errlen, "bad sums");
        ss->a.s1.s = v[0].d;
        ss->a.s1.c = v[1].d;
        if (l->s[i].kind == VG_SPEC_STDDEV) {   /* (always 0 for sum and avg) */
            ss->a.s2.s = v[2].d;
            ss->a.s2.c = v[3].d;
        }
        ss->a.sabs = v[4].d;
        ss->a.hw = v[5].d;
        ss->a.ops = v[6].i;
    }
    if ((size_t)(q - p) != n - 8) return fail(w, errbuf, errlen, "trailing bytes");
    if (rebuild(w, l)) return fail(w, errbuf, errlen, "out of memory");
    return w;
}

/* ---- incremental encoding ---- */

static size_t nsums(const vg_wlayout_t *l) {
    size_t k = 0;
    for (int i = 0; i < l->n; i++) k += kind_sumlike(l->s[i].kind);
    return k;
}

/* Bytes of prev() strings of one row. */
static size_t row_sbytes(const vg_wlayout_t *l, const word_t *r) {
    size_t b = 0;
    for (int i = 0; i < l->n; i++)
        if (l->s[i].kind == VG_SPEC_PREV && type_is_str(prev_type(r + l->s[i].off)))
            b += prev_len(r + l->s[i].off);
    return b;
}

#define HEAD_EXTRA 8u   /* i64 first after the header */

int vg_wstate_encode_head(const vg_wstate_t *w, const vg_wlayout_t *l, vg_buf_t *out) {
    size_t ns = nsums(l);
    if (vg_buf_reserve(out, HDR_BYTES + HEAD_EXTRA + ns * 56)) return VG_ENOMEM;
    unsigned char *p0 = (unsigned char *)out->p + out->len, *p = p0;
    put_header(p, w, l);
    put64(p + HDR_BYTES, (uint64_t)w->first);
    p = put_sums(p + HDR_BYTES + HEAD_EXTRA, w, l);
    out->len += (size_t)(p - p0);
    return 0;
}

int vg_wstate_encode_rows(const vg_wstate_t *w, const vg_wlayout_t *l, int64_t from,
                          int64_t to, vg_buf_t *out) {
    int64_t end = w->first + (int64_t)w->n;
    if (from < w->first) from = w->first;
    if (to > end) to = end;
    if (to < from) to = from;
    size_t rw = (size_t)l->rw, nr = (size_t)(to - from), sb = 0;
    for (int64_t pos = from; pos < to; pos++) sb += row_sbytes(l, wrow(w, l, pos));
    if (vg_buf_reserve(out, 12 + nr * rw * 8 + sb)) return VG_ENOMEM;
    unsigned char *p0 = (unsigned char *)out->p + out->len, *p = p0;
    put64(p, (uint64_t)from);
    put32(p + 8, (uint32_t)nr);
    p += 12;
    for (int64_t pos = from; pos < to; pos++) {
        const word_t *r = wrow(w, l, pos);
        for (size_t j = 0; j < rw; j++, p += 8) put64(p, r[j].u);
    }
    p = put_strings(p, w, l, from, to);
    out->len += (size_t)(p - p0);
    return 0;
}

vg_wstate_t *vg_wstate_decode_parts(const vg_wlayout_t *l, const void *head, size_t hn,
                                    const vg_wpart_t *parts, size_t nparts, char *errbuf,
                                    size_t errlen) {
    const unsigned char *h = head;
    size_t ns = nsums(l), rw = (size_t)l->rw;
    if (!h || hn != HDR_BYTES + HEAD_EXTRA + ns * 56)
        return fail(NULL, errbuf, errlen, "bad head");
    uint64_t nrows = get64(h + 32);
    int64_t first = (int64_t)get64(h + 40), end;
    if (first < 0 || nrows > (uint64_t)INT64_MAX - (uint64_t)first)
        return fail(NULL, errbuf, errlen, "bad head");
    end = first + (int64_t)nrows;
    /* the whole encoding: header, the rows [first, end) and their strings from the
     * pieces, the sums, the checksum */
    vg_buf_t rows, strs, all;
    vg_buf_init(&rows);
    vg_buf_init(&strs);
    vg_buf_init(&all);
    const char *why = NULL;
    int64_t next = first;
    for (size_t k = 0; k < nparts && !why && next < end; k++) {
        const unsigned char *p = parts[k].p;
        size_t n = parts[k].n;
        if (n < 12) {
            why = "bad rows";
            break;
        }
        int64_t start = (int64_t)get64(p);
        uint64_t cnt = get32(p + 8);
        if (cnt > (n - 12) / (rw * 8) || start > next) {
            why = "rows missing";
            break;
        }
        const unsigned char *r = p + 12, *sp = r + cnt * rw * 8, *se = p + n;
        for (uint64_t i = 0; i < cnt && !why; i++) {
            int64_t pos = start + (int64_t)i;
            word_t row[rw > 0 ? rw : 1];
            for (size_t j = 0; j < rw; j++) row[j].u = get64(r + (i * rw + j) * 8);
            /* string bytes of this row, validated by the decoder again below */
            size_t sb = row_sbytes(l, row);
            if (sb > (size_t)(se - sp)) {
                why = "bad strings";
                break;
            }
            if (pos == next && pos < end) {
                if (vg_buf_append(&rows, r + i * rw * 8, rw * 8) || vg_buf_append(&strs, sp, sb))
                    why = "out of memory";
                next++;
            }
            sp += sb;
        }
        if (!why && sp != se) why = "bad strings";
    }
    if (!why && next != end) why = "rows missing";
    if (!why) {
        int rc = vg_buf_append(&all, h, HDR_BYTES);
        if (!rc) rc = vg_buf_append(&all, rows.p ? rows.p : "", rows.len);
        unsigned char sl[8];
        put64(sl, (uint64_t)strs.len);
        if (!rc) rc = vg_buf_append(&all, sl, 8);
        if (!rc) rc = vg_buf_append(&all, strs.p ? strs.p : "", strs.len);
        if (!rc) rc = vg_buf_append(&all, h + HDR_BYTES + HEAD_EXTRA, ns * 56);
        if (!rc) {
            put64(sl, vg_whash_bytes(WIN_MAGIC, all.p, all.len));
            rc = vg_buf_append(&all, sl, 8);
        }
        if (rc) why = "out of memory";
    }
    vg_wstate_t *w = NULL;
    if (!why) w = decode_at(l, all.p, all.len, first, errbuf, errlen);
    else fail(NULL, errbuf, errlen, why);
    vg_buf_deinit(&rows);
    vg_buf_deinit(&strs);
    vg_buf_deinit(&all);
    return w;
}
