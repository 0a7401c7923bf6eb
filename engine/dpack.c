/* dpack.c - template-based compression of decision lines (see dpack.h).
 *
 * The compressor hashes every 4-byte window of the template once (the last offset of
 * each hash wins); for each position of the line it looks the next 4 bytes up, checks
 * them, extends the match forward and emits pending literals plus the match. Greedy,
 * one pass, O(line length).
 */
#include "engine/dpack.h"

#include <stdlib.h>
#include <string.h>

#include "rules/errors.h"

static inline uint32_t h4(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return (v * 2654435761u) >> (32 - VG_DPACK_HASH_BITS);
}

void vg_dpack_init(vg_dpack_t *d) {
    d->tpl = NULL;
    d->tlen = 0;
    memset(d->tbl, 0, sizeof d->tbl);
}

void vg_dpack_deinit(vg_dpack_t *d) {
    free(d->tpl);
    vg_dpack_init(d);
}

int vg_dpack_set_template(vg_dpack_t *d, const char *p, size_t n) {
    if (d->tpl) return 0;
    if (n > VG_DPACK_TPL_MAX) n = VG_DPACK_TPL_MAX;
    d->tpl = malloc(n ? n : 1);
    if (!d->tpl) return VG_ENOMEM;
    memcpy(d->tpl, p, n);
    d->tlen = (uint32_t)n;
    const unsigned char *t = (const unsigned char *)d->tpl;
    for (uint32_t i = 0; i + 4 <= d->tlen; i++) d->tbl[h4(t + i)] = (uint16_t)(i + 1);
    return 0;
}

/* Writes a length continuation (value v >= 15 already signalled by a nibble 15). */
static unsigned char *put_ext(unsigned char *o, size_t v) {
    v -= 15;
    while (v >= 255) {
        *o++ = 255;
        v -= 255;
    }
    *o++ = (unsigned char)v;
    return o;
}

static unsigned char *emit(unsigned char *o, const unsigned char *lit, size_t nlit,
                           uint32_t off, size_t mlen) {
    size_t mcode = mlen ? mlen - 3 : 0;
    *o++ = (unsigned char)((nlit < 15 ? nlit : 15) << 4 | (mcode < 15 ? mcode : 15));
    if (nlit >= 15) o = put_ext(o, nlit);
    memcpy(o, lit, nlit);
    o += nlit;
    if (mlen) {
        if (mcode >= 15) o = put_ext(o, mcode);
        o[0] = (unsigned char)off;
        o[1] = (unsigned char)(off >> 8);
        o += 2;
    }
    return o;
}

/* Length of the common prefix of a and b, at most n bytes. */
static inline size_t common(const unsigned char *a, const unsigned char *b, size_t n) {
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return i + (size_t)(__builtin_ctzll(x ^ y) >> 3);
#else
            break;
#endif
        }
        i += 8;
    }
    while (i < n && a[i] == b[i]) i++;
    return i;
}

int vg_dpack_pack(const vg_dpack_t *d, const char *p, size_t n, vg_buf_t *out) {
    /* worst case: every token costs at most 5 bytes more than the 4+ bytes it covers,
     * plus one byte per 255 of a length: within 2n + 16 */
    if (n > (SIZE_MAX - 16) / 2 || vg_buf_reserve(out, 2 * n + 16)) return VG_ENOMEM;
    const unsigned char *s = (const unsigned char *)p;
    const unsigned char *t = (const unsigned char *)d->tpl;
    unsigned char *o0 = (unsigned char *)out->p + out->len, *o = o0;
    size_t i = 0, lit = 0;
    if (d->tpl && d->tlen >= 4) {
        while (i + 4 <= n) {
            uint16_t e = d->tbl[h4(s + i)];
            if (e && memcmp(t + e - 1, s + i, 4) == 0) {
                uint32_t off = (uint32_t)e - 1;
                size_t room = d->tlen - off < n - i ? d->tlen - off : n - i;
                size_t len = 4 + common(t + off + 4, s + i + 4, room - 4);
                o = emit(o, s + lit, i - lit, off, len);
                i += len;
                lit = i;
            } else {
                i++;
            }
        }
    }
    if (lit < n || n == 0) o = emit(o, s + lit, n - lit, 0, 0);
    out->len += (size_t)(o - o0);
    return 0;
}

/* Reads a length that continues past a nibble 15. */
static int get_ext(const unsigned char **q, const unsigned char *end, size_t *v) {
    for (;;) {
        if (*q >= end) return VG_EINVAL;
        unsigned char b = *(*q)++;
        *v += b;
        if (b < 255) return 0;
    }
}

int vg_dpack_unpack(const vg_dpack_t *d, const char *p, size_t n, vg_buf_t *out) {
    size_t mark = out->len;
    const unsigned char *q = (const unsigned char *)p, *end = q + n;
    while (q < end) {
        unsigned char tok = *q++;
        size_t nlit = tok >> 4, mcode = tok & 15;
        if (nlit == 15 && get_ext(&q, end, &nlit)) goto bad;
        if ((size_t)(end - q) < nlit) goto bad;
        if (nlit && vg_buf_append(out, q, nlit)) goto nomem;
        q += nlit;
        if (mcode) {
            if (mcode == 15 && get_ext(&q, end, &mcode)) goto bad;
            if (end - q < 2) goto bad;
            size_t off = (size_t)q[0] | (size_t)q[1] << 8, len = mcode + 3;
            q += 2;
            if (!d->tpl || off + len > d->tlen) goto bad;
            if (vg_buf_append(out, d->tpl + off, len)) goto nomem;
        }
    }
    return 0;
bad:
    out->len = mark;
    return VG_EINVAL;
nomem:
    out->len = mark;
    return VG_ENOMEM;
}
