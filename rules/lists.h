/* lists.h - named sets of strings for `x in list("name")`, and where they come from.
 *
 * A vg_lists_t is a set of named string sets, built once (vg_lists_add) and then
 * immutable and reference counted, so that a new version of the lists replaces the old
 * one whole (like a program) while evaluations still holding the old one finish with
 * it. Membership is one hash and, on a hash match, one memcmp: O(1), no allocation.
 *
 * Lists come from a source behind a small ops table (vg_list_source_t): today a JSON
 * file {"name": ["item", ...]} (replay --lists); the HTTP API and Redis can supply
 * their own source later without any change to the rules or the engine.
 *
 * Threading: building is single-threaded; a built vg_lists_t may be read by any number
 * of threads.
 */
#ifndef VG_LISTS_H
#define VG_LISTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct vg_lists vg_lists_t;
typedef struct vg_strset vg_strset_t;

/* A new empty collection (reference count 1), or NULL. Free with vg_lists_unref(). */
vg_lists_t *vg_lists_new(void);
vg_lists_t *vg_lists_ref(vg_lists_t *l);
void vg_lists_unref(vg_lists_t *l);   /* accepts NULL */

/* Adds `item` to list `name` (creating the list). Bytes are copied. Returns 0 or
 * VG_ENOMEM (VG_EINVAL: a list shared by vg_lists_clone_without). Not allowed once the
 * collection is shared with an evaluation. */
int vg_lists_add(vg_lists_t *l, const char *name, size_t nlen, const char *item, size_t ilen);
/* Creates list `name` empty when it does not exist. Returns 0 or VG_ENOMEM. */
int vg_lists_declare(vg_lists_t *l, const char *name, size_t nlen);
/* A new collection (reference count 1) with every list of `base` (NULL: none) but
 * `name`, shared with base rather than copied: O(number of lists), whatever their
 * sizes. Declare and add `name` back to change one list; the shared lists cannot be
 * added to (vg_lists_add: VG_EINVAL). NULL on out of memory. */
vg_lists_t *vg_lists_clone_without(const vg_lists_t *base, const char *name, size_t nlen);

/* The set named `name`, or NULL when the collection has none. Borrowed: valid while
 * the collection is. Can't fail. */
const vg_strset_t *vg_lists_get(const vg_lists_t *l, const char *name, size_t nlen);
/* Number of lists; the name and size of list i (0 <= i < count). */
int vg_lists_count(const vg_lists_t *l);
const char *vg_lists_name(const vg_lists_t *l, int i);
size_t vg_strset_size(const vg_strset_t *s);

/* 1 when s (NULL: an empty set) holds the string, else 0. Can't fail. */
int vg_strset_has(const vg_strset_t *s, const char *p, size_t n);

/* What a list name and a list item may be, wherever lists come from (PUT /v1/lists,
 * Redis, vigil serve's control store, a --lists file): a name is 1..128 bytes without
 * control characters (below 0x20) or '"'; an item is 1..1024 bytes of UTF-8 without
 * U+0000 (items are matched against an event's strings). */
#define VG_LISTS_NAME_MAX 128
#define VG_LISTS_ITEM_MAX 1024

/* Checks a list name (n bytes). Returns 0, or VG_EINVAL with the reason in errbuf as a
 * predicate to follow "list NAME" or "the name": `is empty`, `is 129 bytes, limit 128`,
 * `may not contain '"' or a control character (byte 0x0a at offset 3)`. Can't fail
 * otherwise. */
int vg_lists_check_name(const char *name, size_t n, char *errbuf, size_t errlen);

/* Checks a list item (n bytes). Returns 0, or VG_EINVAL with the reason in errbuf as a
 * predicate to follow "item K": `is empty`, `is 1025 bytes, limit 1024`, `may not
 * contain U+0000`, `is not valid UTF-8 (byte 0xff at offset 2)`. */
int vg_lists_check_item(const char *item, size_t n, char *errbuf, size_t errlen);

/* Parses a JSON object {"name": ["item", ...], ...} into l. Every name and item is
 * checked as vg_lists_check_name and vg_lists_check_item say. Returns 0, or VG_EINVAL
 * with a reason (and the position) in errbuf (`list "x", item 2 is empty`), or
 * VG_ENOMEM. */
int vg_lists_load_json(vg_lists_t *l, const char *text, size_t len, char *errbuf,
                       size_t errlen);

/* A source of lists. fetch() returns a new collection (the caller owns it) or NULL with
 * a reason in errbuf; close() frees the source's context. */
typedef struct vg_list_source_ops {
    const char *kind;   /* "file", "redis", ... */
    vg_lists_t *(*fetch)(void *ctx, char *errbuf, size_t errlen);
    void (*close)(void *ctx);
} vg_list_source_ops_t;

typedef struct vg_list_source {
    const vg_list_source_ops_t *ops;
    void *ctx;
} vg_list_source_t;

/* The JSON file source: each fetch reads the file again. Returns 0 or VG_ENOMEM; the
 * path is copied. Close with vg_list_source_close(). */
int vg_list_source_file(vg_list_source_t *src, const char *path);
static inline vg_lists_t *vg_list_source_fetch(vg_list_source_t *s, char *errbuf, size_t errlen) {
    return s->ops->fetch(s->ctx, errbuf, errlen);
}
static inline void vg_list_source_close(vg_list_source_t *s) {
    if (s && s->ops) s->ops->close(s->ctx);
    if (s) s->ops = NULL;
}

#endif
