/* dpack.h - compact storage of decision lines kept for duplicate detection.
 *
 * Decision lines of one ruleset look alike: the same keys, feature names, rule lists,
 * mostly the same values. vg_dpack_t compresses a line against a template (one earlier
 * decision line) with a small LZ77 code whose matches point into the template only,
 * so that every packed line decodes on its own, in one pass, without allocation once
 * the output buffer is warm. A typical 400-byte line packs to a quarter to a third
 * (bench.vrl's lines: 129 to 161 bytes of 400 to 420).
 *
 * Format: a sequence of tokens. A token byte holds the literal count in its high
 * nibble and the match code in its low nibble (15 in either: the count goes on in the
 * following bytes, each adding 0..255, a byte below 255 ending it); then the literal
 * bytes; then, when the match code m > 0, the 2-byte little-endian template offset of
 * a match of m + 3 bytes.
 *
 * Threading: a vg_dpack_t is read-only once its template is set. Ownership: the caller
 * embeds it (vg_dpack_init / vg_dpack_deinit); the template is copied.
 */
#ifndef VG_DPACK_H
#define VG_DPACK_H

#include <stddef.h>
#include <stdint.h>

#include "engine/jsonout.h"

#define VG_DPACK_TPL_MAX 4096
#define VG_DPACK_HASH_BITS 12

typedef struct vg_dpack {
    char *tpl;                               /* NULL until a template is set */
    uint32_t tlen;
    uint16_t tbl[1u << VG_DPACK_HASH_BITS];  /* 4-byte hash -> template offset + 1 */
    uint16_t *sync;                          /* tlen + 1 entries: the first offset >= i
                                                of a JSON structural byte, or tlen */
} vg_dpack_t;

/* Initialises without a template (packing then copies). Can't fail. */
void vg_dpack_init(vg_dpack_t *d);
void vg_dpack_deinit(vg_dpack_t *d);
/* Sets the template (its first VG_DPACK_TPL_MAX bytes) when none is set. Lines packed
 * before stay valid only with the same template: set it once. Returns 0 or VG_ENOMEM. */
int vg_dpack_set_template(vg_dpack_t *d, const char *p, size_t n);
/* Appends the packed form of p[0 .. n) to out. Returns 0 or VG_ENOMEM. */
int vg_dpack_pack(const vg_dpack_t *d, const char *p, size_t n, vg_buf_t *out);
/* Appends the line packed in p[0 .. n) to out. Returns 0, VG_EINVAL when the bytes are
 * not a packed line of this template, or VG_ENOMEM. */
int vg_dpack_unpack(const vg_dpack_t *d, const char *p, size_t n, vg_buf_t *out);

#endif
