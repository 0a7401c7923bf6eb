/* jsonout.c - growable output buffers and exact JSON tokens (SPEC section 3).
 *
 * Numbers: integers that a double holds exactly (|d| < 2^53) print without a fraction
 * ("7", "-3"); other finite doubles print in the fewest significant digits that strtod()
 * reads back to the same double ("0.1", "1e300", "5e-324"); -0 prints "0"; NaN and
 * infinities print "null". Exponents are written without '+' and leading zeros.
 * Assumes the "C" LC_NUMERIC locale (vigil never calls setlocale()).
 * Strings: RFC 8259 escaping; valid UTF-8 passes through; each byte that does not begin
 * a valid UTF-8 sequence (overlong forms, surrogates, > U+10FFFF, truncated sequences)
 * is written as \ufffd.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/digits.h"
#include "rules/dtoa.h"
#include "engine/event.h"
#include "engine/jsonout.h"
#include "rules/errors.h"
#include "rules/utf8.h"

void vg_buf_init(vg_buf_t *b) {
    b->p = NULL;
    b->len = b->cap = 0;
}

void vg_buf_deinit(vg_buf_t *b) {
    free(b->p);
    vg_buf_init(b);
}

int vg_buf_grow(vg_buf_t *b, size_t extra) {
    if (extra <= b->cap - b->len) return 0;
    if (extra > SIZE_MAX / 2 - b->len) return VG_ENOMEM;
    size_t need = b->len + extra, cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return VG_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static size_t fmt_int(int64_t v, char *buf) {
    size_t k = vg_fmt_i64(v, buf);
    buf[k] = '\0';
    return k;
}

/* Writes m / 10^k in fixed notation (k >= 1 decimals, m not a multiple of 10). */
static size_t fmt_fixed(int64_t m, int k, char *buf) {
    size_t n = 0;
    uint64_t u = (uint64_t)m;
    if (m < 0) {
        buf[n++] = '-';
        u = (uint64_t)0 - u;
    }
    int nd = vg_ndigits(u);
    if (nd <= k) {   /* 0.00ddd */
        buf[n++] = '0';
        buf[n++] = '.';
        for (int i = 0; i < k - nd; i++) buf[n++] = '0';
        n += (size_t)nd;
        vg_put_digits(u, buf + n);
    } else {         /* the integer part, the point, k decimals */
        static const uint64_t p10[10] = {1, 10, 100, 1000, 10000, 100000, 1000000,
                                         10000000, 100000000, 1000000000};
        uint64_t p = p10[k];   /* k <= 9 */
        n += (size_t)(nd - k);
        vg_put_digits(u / p, buf + n);
        buf[n++] = '.';
        uint64_t f = u % p;
        char *e = buf + n + k;   /* k digits, leading zeros included, two at a time */
        int i = k;
        for (; i >= 2; i -= 2) {
            unsigned r = (unsigned)(f % 100);
            f /= 100;
            e -= 2;
            e[0] = VG_DIG2[2 * r];
            e[1] = VG_DIG2[2 * r + 1];
        }
        if (i) e[-1] = (char)('0' + f % 10);
        n += (size_t)k;
    }
    buf[n] = '\0';
    return n;
}

/* nearbyint(y) for 0 <= y < 2^52 in the default rounding mode, without a libm call
 * (this build targets x86-64 without SSE4.1's roundsd): adding 2^52 leaves no fraction
 * bits, so the addition rounds y to an integer, to even on ties, as nearbyint does. */
static inline double rnd52(double y) {
    const double k = 4503599627370496.0;   /* not folded: (y + k) - k is not y in IEEE */
    return (y + k) - k;
}

size_t vg_fmt_double_any(double d, char *buf) {
    if (!isfinite(d)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    if (d == 0) {   /* -0 keeps its sign: "-0" is the shortest form that reads back as it */
        size_t n = 0;
        if (signbit(d)) buf[n++] = '-';
        buf[n++] = '0';
        buf[n] = '\0';
        return n;
    }
    if (fabs(d) <= 9007199254740992.0 && d == (double)(int64_t)d) return fmt_int((int64_t)d, buf);
    /* Fast path for the common case of a few decimals (amounts, averages of them): the
     * smallest k <= 9 for which the integer m = round(d * 10^k) gives back d as m / 10^k
     * (a correctly rounded division, the same double strtod() gives for the decimal
     * string) is the shortest fixed-point form; with |m| < 10^15 it has at most 15
     * significant digits, which is exactly what "%.15g" below would print, and with
     * |d| >= 1e-4 "%g" would print it without an exponent too. */
    double ad = fabs(d);
    /* Amounts first: when RN(m / 100) gives back |d| for m = round(|d| * 100) (and d is
     * not an integer), the shortest fixed form has 2 decimals, or 1 when m ends in 0
     * (then RN((m / 10) / 10) is the same double): what the general search below finds,
     * in one try. */
    double c = ad * 100;
    if (c < 1125899906842624.0) {
        double m = rnd52(c);
        if (m / 100 == ad) {
            int64_t mi = (int64_t)m;
            int k = 2;
            if (mi % 10 == 0) {
                mi /= 10;
                k = 1;
            }
            return fmt_fixed(d < 0 ? -mi : mi, k, buf);
        }
    }
    /* When d = RN(m / 10^k) for some k <= 9, y = RN(d * 1e9) lies within |y| * 2^-52 of
     * the integer m * 10^(9-k); so a y far from every integer (most means and
     * deviations) cannot take the fast path and skips its nine tries. */
    double y = ad * 1e9;
    if (y < 4503599627370496.0 && fabs(y - rnd52(y)) > y * 4.5e-16 + 1e-300)
        ad = 0;   /* not a short decimal: straight to the shortest form below */
    if (ad >= 1e-4 && ad < 1e15) {
        static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
        /* Below 2^50, y is within 0.25 of m * 10^(9-k) for the smallest such k (and for
         * every other), so that k is 9 minus the trailing decimal zeros of round(y): one
         * try instead of up to nine, the same result (a failed check tries them all) */
        if (y < 1125899906842624.0) {
            uint64_t yi = (uint64_t)rnd52(y);
            int tz = 0;   /* min(9, trailing zeros of yi), yi > 0: by 8, 4, 2, 1 */
            if (yi % 100000000 == 0) {
                yi /= 100000000;
                tz = 8;
            }
            if (tz <= 5 && yi % 10000 == 0) {
                yi /= 10000;
                tz += 4;
            }
            if (tz <= 7 && yi % 100 == 0) {
                yi /= 100;
                tz += 2;
            }
            if (tz <= 8 && yi % 10 == 0) {
                yi /= 10;
                tz += 1;
            }
            if (tz < 9 && yi < 1000000000000000ULL) {
                double m = d < 0 ? -(double)yi : (double)yi;
                if (m / p10[9 - tz] == d) return fmt_fixed((int64_t)m, 9 - tz, buf);
            }
        }
        for (int k = 1; k <= 9; k++) {
            double m = nearbyint(d * p10[k]);
            if (fabs(m) >= 1e15) break;
            if (m / p10[k] == d) return fmt_fixed((int64_t)m, k, buf);
        }
    }
    /* everything else: the shortest decimal that round-trips (Dragonbox, dtoa.h) */
    return vg_dtoa_shortest(d, buf);
}

int vg_json_num(vg_buf_t *b, double d) {
    /* formatted in place: no copy (and no memcpy call) per number */
    if (vg_buf_reserve(b, 40) < 0) return VG_ENOMEM;
    b->len += vg_fmt_double(d, b->p + b->len);
    return 0;
}

int vg_json_str(vg_buf_t *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    /* worst case 6 output bytes per input byte, plus the quotes */
    if (len > (SIZE_MAX - 2) / 6 || vg_buf_reserve(b, len * 6 + 2) < 0) return VG_ENOMEM;
    char *o = b->p + b->len;
    *o++ = '"';
    size_t i = 0;
    while (i < len) {
        /* 8 bytes at a time while none needs a look (a control byte, '"', '\\' or
         * a byte >= 0x80): copied as they are */
        while (len - i >= 8) {
            uint64_t x;
            memcpy(&x, u + i, 8);
            const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
            uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
            /* a high bit set in t marks a byte below 0x20, equal to '"' or '\\', or
             * >= 0x80 (exact for each byte: the subtractions borrow only into bytes
             * already marked) */
            uint64_t t = ((x - ones * 0x20) | (q - ones) | (bs - ones) | x) & high;
            if (t) break;
            memcpy(o, u + i, 8);
            o += 8;
            i += 8;
        }
        if (i >= len) break;
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = vg_utf8_seq(u + i, len - i);
            if (k == 0) {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                i++;
            } else {
                memcpy(o, u + i, k);
                o += k;
                i += k;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        i++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    return 0;
}

int vg_json_value(vg_buf_t *b, const vg_value_t *v) {
    char tmp[40];
    switch (v->type) {
    case VG_T_BOOL: return vg_buf_puts(b, v->u.b ? "true" : "false");
    case VG_T_NUM: return vg_json_num(b, v->u.n);
    case VG_T_STR: return vg_json_str(b, v->u.s.p, v->u.s.len);
    case VG_T_TIME: {
        tmp[0] = '"';
        size_t n = vg_time_format(v->u.ms, tmp + 1);
        tmp[n + 1] = '"';
        return vg_buf_append(b, tmp, n + 2);
    }
    case VG_T_DUR: return vg_json_num(b, (double)v->u.ms / 1000.0);
    case VG_T_JSON: return vg_buf_append(b, v->u.s.p, v->u.s.len);
    case VG_T_NULL:
    default: return vg_buf_puts(b, "null");
    }
}
