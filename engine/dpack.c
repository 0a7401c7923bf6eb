/* dpack.c - template-based compression of decision lines (see dpack.h).
 *
 * The compressor hashes every 4-byte window of the template once (the last offset of
 * each hash wins) and notes, for each template offset, its next structural byte.
 * Where a match ends on a difference (a value of the line that is not the
 * template's), it first looks for the template's next structural byte in the next
 * 64 bytes of the line and continues the match there when 4 bytes agree: a
 * differing value costs no work per byte. Otherwise it tries a match only at a
 * structural byte (" , : { } [ ]) or right after the previous match; there it checks,
 * in order, the template's continuation (the template position after the previous
 * match, moved on by the literals since: a value of the same length that differed),
 * that position itself (the line inserted bytes), and the template offset of the next
 * 4 bytes' hash; it extends the match forward and emits pending literals plus the
 * match. Greedy, one pass, O(line length); the other bytes of a literal cost one table
 * test each. Any line round-trips; lines unlike JSON just pack less.
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

/* Bytes where a match may start: JSON's structural characters. A value differing
 * from the template's ends at one of them, and the template continues there. */
static const unsigned char SYNC[256] = {
    ['"'] = 1, [','] = 1, [':'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1,
};

void vg_dpack_init(vg_dpack_t *d) {
    d->tpl = NULL;
    d->tlen = 0;
    d->sync = NULL;
    memset(d->tbl, 0, sizeof d->tbl);
}

void vg_dpack_deinit(vg_dpack_t *d) {
    free(d->tpl);
    free(d->sync);
    vg_dpack_init(d);
}

int vg_dpack_set_template(vg_dpack_t *d, const char *p, size_t n) {
    if (d->tpl) return 0;
    if (n > VG_DPACK_TPL_MAX) n = VG_DPACK_TPL_MAX;
    d->tpl = malloc(n ? n : 1);
    d->sync = malloc((n + 1) * sizeof *d->sync);
    if (!d->tpl || !d->sync) {
        vg_dpack_deinit(d);
        return VG_ENOMEM;
    }
    memcpy(d->tpl, p, n);
    d->tlen = (uint32_t)n;
    const unsigned char *t = (const unsigned char *)d->tpl;
    for (uint32_t i = 0; i + 4 <= d->tlen; i++) d->tbl[h4(t + i)] = (uint16_t)(i + 1);
    d->sync[n] = (uint16_t)n;
    for (size_t i = n; i-- > 0;) d->sync[i] = SYNC[t[i]] ? (uint16_t)i : d->sync[i + 1];
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

static inline uint32_t load4(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
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
        size_t tl = d->tlen;
        size_t mend = 0, e = 0;   /* where the last match ended: in the line, in the template */
        while (i + 4 <= n) {
            if (i == mend && i > 0 && e < tl) {
                /* a mismatch right after a match: the line's value differs from the
                 * template's; both most likely go on at the template's next structural
                 * byte: find that byte in the line (near), check 4 bytes */
                size_t te = d->sync[e];
                if (te + 4 <= tl) {
                    size_t qi = i, lim = n - i < 64 ? n : i + 64;
                    unsigned char c = t[te];
                    while (qi < lim && s[qi] != c) qi++;   /* values are short */
                    if (qi + 4 <= n && load4(s + qi) == load4(t + te)) {
                        size_t room = tl - te < n - qi ? tl - te : n - qi;
                        size_t len = 4 + common(t + te + 4, s + qi + 4, room - 4);
                        o = emit(o, s + lit, qi - lit, (uint32_t)te, len);
                        i = qi + len;
                        lit = mend = i;
                        e = te + len;
                        continue;
                    }
                }
            }
            /* a match starts only at a structural byte (or where the last one ended):
             * the bytes of a value that differs are skipped at one test each */
            if (!SYNC[s[i]] && i != mend) {
                i++;
                continue;
            }
            uint32_t w = load4(s + i);
            size_t off = SIZE_MAX;
            /* the template's continuation first: the value differed but had the same
             * length (e + the literals since), or the line inserted bytes (e) */
            size_t c1 = e + (i - mend);
            if (c1 + 4 <= tl && load4(t + c1) == w) off = c1;
            else if (e + 4 <= tl && load4(t + e) == w) off = e;
            else {
                uint16_t h = d->tbl[h4(s + i)];
                if (h && load4(t + h - 1) == w) off = (size_t)h - 1;
            }
            if (off == SIZE_MAX) {
                i++;
                continue;
            }
            size_t room = tl - off < n - i ? tl - off : n - i;
            size_t len = 4 + common(t + off + 4, s + i + 4, room - 4);
            o = emit(o, s + lit, i - lit, (uint32_t)off, len);
            i += len;
            lit = mend = i;
            e = off + len;
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
