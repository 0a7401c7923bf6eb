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

#include <stddef.h>

#include "rules/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vg_buf {
    char *p;
    size_t len, cap;
} vg_buf_t;

void vg_buf_init(vg_buf_t *b);
void vg_buf_deinit(vg_buf_t *b);
static inline void vg_buf_clear(vg_buf_t *b) { b->len = 0; }
int vg_buf_reserve(vg_buf_t *b, size_t extra);
int vg_buf_append(vg_buf_t *b, const void *p, size_t n);
int vg_buf_puts(vg_buf_t *b, const char *s);
int vg_buf_putc(vg_buf_t *b, char c);

/* Shortest round-trip decimal for a finite double (non-finite writes null). */
int vg_json_num(vg_buf_t *b, double d);
/* Formats a finite double the same way into buf (at least 32 bytes); returns length. */
size_t vg_fmt_double(double d, char *buf);
/* A JSON string with quotes; invalid UTF-8 bytes are written as \ufffd. */
int vg_json_str(vg_buf_t *b, const char *s, size_t len);
/* A value as SPEC section 3 prints it. */
int vg_json_value(vg_buf_t *b, const vg_value_t *v);

#ifdef __cplusplus
}
#endif

#endif
