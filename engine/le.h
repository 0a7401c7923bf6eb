/* le.h - little-endian encoding helpers shared by the engine's record codecs.
 *
 * Writers append to a caller's vg_buf_t; a vg_le_rd_t reads a byte range and turns
 * every read past its end into a sticky `bad` flag (callers check it once at the end),
 * so that a corrupt record is refused and never read out of bounds. No state; inline.
 */
#ifndef VG_LE_H
#define VG_LE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/jsonout.h"

/* Stores v little-endian at o (room the caller reserved): one move on a little-endian
 * machine, as vg_le_get reads it back. */
static inline void vg_le_store32(unsigned char *o, uint32_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(o, &v, 4);
}
static inline void vg_le_store64(unsigned char *o, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(o, &v, 8);
}

/* Appends the low `bytes` (1..8) bytes of v, least significant first.
 * Returns 0 or VG_ENOMEM. */
static inline int vg_le_put(vg_buf_t *b, uint64_t v, int bytes) {
    unsigned char t[8];
    for (int i = 0; i < bytes; i++) t[i] = (unsigned char)(v >> (8 * i));
    return vg_buf_append(b, t, (size_t)bytes);
}

typedef struct vg_le_rd {
    const unsigned char *p;   /* borrowed */
    size_t n, i;              /* length, read position */
    int bad;                  /* set by any read past the end */
} vg_le_rd_t;

/* Reads `bytes` (1..8) bytes as an unsigned integer; 0 and r->bad set when short. */
static inline uint64_t vg_le_get(vg_le_rd_t *r, int bytes) {
    if (r->bad || r->n - r->i < (size_t)bytes) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++) v |= (uint64_t)r->p[r->i + k] << (8 * k);
    r->i += (size_t)bytes;
    return v;
}

/* Returns a pointer to the next n bytes and skips them; NULL and r->bad when short. */
static inline const void *vg_le_bytes(vg_le_rd_t *r, size_t n) {
    if (r->bad || r->n - r->i < n) {
        r->bad = 1;
        return NULL;
    }
    const void *p = r->p + r->i;
    r->i += n;
    return p;
}

/* Key lists (a buffer of keys, each a u32 length + its bytes): appends one key.
 * Returns 0 or VG_ENOMEM. */
static inline int vg_le_put_key(vg_buf_t *b, const void *k, size_t n) {
    int rc = vg_le_put(b, (uint64_t)n, 4);
    return rc ? rc : vg_buf_append(b, k, n);
}

/* The next key of a key list and its length; NULL at the end (or when corrupt). */
static inline const void *vg_le_get_key(vg_le_rd_t *r, size_t *n) {
    if (r->i >= r->n) return NULL;
    *n = (size_t)vg_le_get(r, 4);
    return vg_le_bytes(r, *n);
}

#endif
