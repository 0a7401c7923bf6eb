/* event_json.h - simdjson (C++) behind a C interface, for the event parser.
 *
 * A vg_jdoc_t holds a simdjson DOM parser and the buffers it needs (a padded copy of
 * the line, the flattened top-level fields, the minified text of nested values). It
 * validates one JSON document completely (syntax, UTF-8) and flattens the top-level
 * object into an array of vg_jfield_t. No exception leaves this interface.
 *
 * Numbers simdjson cannot hold are handled here: an integer beyond 64 bits is read as a
 * double; a number that overflows a double (1e999) makes the document rejected with
 * kind VG_JDOC_NON_FINITE (the fields are still available, with 0 in its place, so that
 * the caller can learn the event's id).
 *
 * Ownership: the caller owns the vg_jdoc_t (vg_jdoc_new / vg_jdoc_free). Every pointer
 * in the fields (keys, strings, raw text) points into the vg_jdoc_t and stays valid
 * until the next vg_jdoc_parse() on it. Once warm, parsing allocates nothing.
 * Threading: one vg_jdoc_t per thread.
 */
#ifndef VG_EVENT_JSON_H
#define VG_EVENT_JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vg_jdoc vg_jdoc_t;

typedef enum vg_jtype {
    VG_J_NULL = 0,
    VG_J_BOOL,
    VG_J_INT,    /* i: a JSON integer that fits int64 */
    VG_J_UINT,   /* u: a JSON integer in (INT64_MAX, UINT64_MAX] */
    VG_J_DOUBLE, /* d: any other number (fraction, exponent, or a big integer) */
    VG_J_STR,    /* s, s_len: the unescaped bytes (valid UTF-8, may contain NUL) */
    VG_J_OBJECT, /* s, s_len: the value as minified JSON text */
    VG_J_ARRAY   /* s, s_len: the value as minified JSON text */
} vg_jtype_t;

typedef struct vg_jfield {
    const char *key;   /* unescaped key bytes */
    uint32_t key_len;
    uint8_t type;      /* vg_jtype_t */
    int b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    uint32_t s_len;
    uint8_t dup;       /* an object inside the value has a key twice (vg_jdoc_dup_path) */
} vg_jfield_t;

/* What made vg_jdoc_parse() reject a line. */
typedef enum vg_jdoc_kind {
    VG_JDOC_OK = 0,
    VG_JDOC_INVALID,    /* not JSON, not an object, bad UTF-8, trailing content, ... */
    VG_JDOC_NON_FINITE  /* a number overflows a double; fields are still available */
} vg_jdoc_kind_t;

/* Returns a new parser with capacity for `capacity` bytes, or NULL when out of memory.
 * Free with vg_jdoc_free(). */
vg_jdoc_t *vg_jdoc_new(size_t capacity);
/* Frees the parser. Accepts NULL. */
void vg_jdoc_free(vg_jdoc_t *d);

/* Parses `len` bytes at `line` (borrowed, not kept; need not be padded or
 * NUL-terminated). Returns 0 when the line is a valid JSON object (*kind = VG_JDOC_OK);
 * VG_EINVAL when rejected, with *kind and a reason for a person in errbuf; VG_ENOMEM when
 * a buffer cannot grow. The fields are available after 0, and after VG_EINVAL with
 * kind VG_JDOC_NON_FINITE. */
int vg_jdoc_parse(vg_jdoc_t *d, const char *line, size_t len, vg_jdoc_kind_t *kind,
                  char *errbuf, size_t errlen);

/* The top-level fields of the last parse, in document order (duplicates included).
 * Borrowed from d. Can't fail. */
const vg_jfield_t *vg_jdoc_fields(const vg_jdoc_t *d, uint32_t *n);

/* The path of the first key given twice inside a top-level field's value (the first
 * field with `dup`), e.g. "attrs.3ds" or "items[2].k", keys unescaped; *len its length
 * (0 and "" when none). Borrowed from d. Can't fail. */
const char *vg_jdoc_dup_path(const vg_jdoc_t *d, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
