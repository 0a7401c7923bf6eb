/* jsonout.h - writing JSON output quickly and exactly.
 *
 * A vg_buf_t is a growable byte buffer the caller owns (vg_buf_init / vg_buf_deinit);
 * once grown it is reused without allocating. The append functions write JSON tokens:
 * numbers in the shortest form that round-trips (0.1, not 0.10000000000000001;
 * integers without a fraction), strings escaped per RFC 8259, and vg_value_t values as
 * SPEC section 3 says (booleans, numbers, times as RFC 3339 UTC with milliseconds,
 * durations in seconds, null).
 * All append functions return 0 or VG_ENOMEM (the buffer is then unchanged in length).
 */
#ifndef VG_JSONOUT_H
#define VG_JSONOUT_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "rules/digits.h"
#include "rules/errors.h"
#include "rules/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vg_buf {
    char *p;
    size_t len, cap;
} vg_buf_t;

/* An empty buffer; allocates nothing. Can't fail. */
void vg_buf_init(vg_buf_t *b);
/* Frees the bytes; the buffer is empty and reusable after. Accepts an empty buffer. */
void vg_buf_deinit(vg_buf_t *b);
/* Forgets the contents, keeps the memory. Can't fail. */
static inline void vg_buf_clear(vg_buf_t *b) { b->len = 0; }
/* Makes room for `extra` more bytes (capacity doubles). 0 or VG_ENOMEM. */
int vg_buf_grow(vg_buf_t *b, size_t extra);   /* the slow half of vg_buf_reserve */
static inline int vg_buf_reserve(vg_buf_t *b, size_t extra) {
    return extra <= b->cap - b->len ? 0 : vg_buf_grow(b, extra);
}
/* Appends n bytes copied from p (borrowed). 0 or VG_ENOMEM. */
static inline int vg_buf_append(vg_buf_t *b, const void *p, size_t n) {
    if (vg_buf_reserve(b, n) < 0) return VG_ENOMEM;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}
static inline int vg_buf_puts(vg_buf_t *b, const char *s) { return vg_buf_append(b, s, strlen(s)); }
static inline int vg_buf_putc(vg_buf_t *b, char c) {
    if (vg_buf_reserve(b, 1) < 0) return VG_ENOMEM;
    b->p[b->len++] = c;
    return 0;
}

/* Shortest round-trip decimal for a double: integers below 2^53 without a fraction
 * ("7"), else the fewest digits strtod() reads back exactly ("0.1", "1e300"); -0 is
 * "-0" (SPEC section 3: it reads back as -0); NaN and infinities write null. */
int vg_json_num(vg_buf_t *b, double d);
/* Formats a double the same way into buf (at least 32 bytes, NUL-terminated); returns
 * the length. Can't fail. Inline for the commonest values, counts below 100 (and 0);
 * everything else (-0 too) in vg_fmt_double_any. */
size_t vg_fmt_double_any(double d, char *buf);
static inline size_t vg_fmt_double(double d, char *buf) {
    if (d >= 0 && d < 100 && d == (double)(int)d) {
        int u = (int)d;
        if (u == 0 && signbit(d)) return vg_fmt_double_any(d, buf);   /* "-0" */
        if (u < 10) {
            buf[0] = (char)('0' + u);
            buf[1] = '\0';
            return 1;
        }
        memcpy(buf, VG_DIG2 + 2 * u, 2);
        buf[2] = '\0';
        return 2;
    }
    return vg_fmt_double_any(d, buf);
}
/* A JSON string with quotes; invalid UTF-8 bytes are written as \ufffd. */
int vg_json_str(vg_buf_t *b, const char *s, size_t len);
/* A value as SPEC section 3 prints it: true/false, numbers as vg_json_num, strings
 * escaped, times as "YYYY-MM-DDTHH:MM:SS.mmmZ", durations as seconds (ms / 1000.0),
 * null, VG_T_JSON raw text as it is. */
int vg_json_value(vg_buf_t *b, const vg_value_t *v);

#ifdef __cplusplus
}
#endif

#endif
