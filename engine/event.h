/* event.h - parsing and validating one transaction event (SPEC section 1).
 *
 * vg_event_parse() turns the bytes of one NDJSON line (without its newline) into a
 * vg_event_t, or rejects it with a machine code and a precise reason for a person.
 *
 * Ownership: the caller owns the vg_event_t (vg_event_init / vg_event_deinit). The
 * parsed strings (id, account, field values, extras) live in buffers inside the event
 * and stay valid until the next vg_event_parse() into the same event. Once the buffers
 * have grown to the largest event seen, parsing allocates nothing.
 * Threading: one vg_event_t per thread; the parser itself has no shared state.
 * The decisions beyond SPEC section 1 (reason order, null, duplicate keys, leap seconds,
 * epoch-ms range, ...) are listed at the top of engine/event.c.
 */
#ifndef VG_EVENT_H
#define VG_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "rules/value.h"

#define VG_EVENT_MAX_BYTES 65536   /* the line without its newline */
#define VG_EVENT_MAX_ID 128        /* id and account: 1..128 bytes, no U+0000 */

/* Accepted times: VG_TIME_MIN_MS .. VG_TIME_MAX_MS (rules/value.h), years 0000-9999. */

#ifdef __cplusplus
extern "C" {
#endif

/* Rejection codes (SPEC section 3). */
#define VG_REJECT_LIST(X)            \
    X(NONE, "")                      \
    X(INVALID_JSON, "invalid_json")  \
    X(TOO_LARGE, "too_large")        \
    X(MISSING_FIELD, "missing_field") \
    X(BAD_TYPE, "bad_type")          \
    X(BAD_TIMESTAMP, "bad_timestamp") \
    X(NON_FINITE, "non_finite")      \
    X(BAD_VALUE, "bad_value")        \
    X(LATE, "late")                  \
    X(FUTURE, "future")              \
    X(DUPLICATE_FIELD, "duplicate_field")

typedef enum vg_reject {
#define VG_REJECT_ENUM(name, code) VG_REJECT_##name,
    VG_REJECT_LIST(VG_REJECT_ENUM)
#undef VG_REJECT_ENUM
    VG_REJECT__COUNT
} vg_reject_t;

/* The machine code of a rejection, e.g. "bad_timestamp". Can't fail. */
const char *vg_reject_code(vg_reject_t r);

typedef struct vg_event_bufs vg_event_bufs_t;  /* private growable buffers */

typedef struct vg_event {
    vg_tx_t tx;              /* the fields as the rules VM reads them */
    /* convenience copies of the required fields */
    vg_str_t id;
    vg_str_t account;
    int64_t ts_ms;
    const char *ts_text;     /* the "ts" string when it is exactly what vg_time_format
                                writes for ts_ms (24 bytes, borrowed like the fields),
                                else NULL */
    double amount;
    /* 1 when the line was a JSON object whose "id" appeared once as a valid id (a string
     * of 1..128 bytes without U+0000), also after a rejection; then `id` holds it. Else 0. */
    int has_id;
    vg_reject_t reject;      /* VG_REJECT_NONE after a successful parse */
    char reason[256];        /* for a person, e.g. "field 'ts': time zone missing (...)" */
    vg_event_bufs_t *bufs;
} vg_event_t;

/* Initialises an event. Can't fail (allocates lazily). */
void vg_event_init(vg_event_t *ev);
/* Frees the event's buffers. Accepts an initialised, never-used event. */
void vg_event_deinit(vg_event_t *ev);

/* Parses `len` bytes at `line` (no trailing newline; borrowed, not kept). Returns 0 and
 * fills `ev` on success; on rejection returns VG_EINVAL with ev->reject, ev->reason, and
 * ev->has_id / ev->id set (the other fields of ev are then unspecified). Returns
 * VG_ENOMEM when a buffer cannot grow (ev->reason says so, ev->reject is NONE). A last
 * byte \r (of a CRLF newline) is not part of the line. A line over VG_EVENT_MAX_BYTES is
 * rejected as too_large without being parsed (its id is peeked: vg_event_peek_id). */
int vg_event_parse(vg_event_t *ev, const char *line, size_t len);

/* The id of a line too large to parse: when s[0..n) (the whole line or its first bytes)
 * is a JSON object, as far as it goes, whose top-level "id" appears once as a valid id
 * (a string of 1..VG_EVENT_MAX_ID bytes after unescaping, without U+0000), copies the id
 * into out (VG_EVENT_MAX_ID bytes) and returns its length; else 0. Values are skipped, not
 * validated. Reads only s[0..n); can't fail. */
size_t vg_event_peek_id(const char *s, size_t n, char *out);

/* Parses an RFC 3339 timestamp (SPEC section 1) into epoch milliseconds (fraction
 * truncated to the millisecond). Returns 0, or VG_EINVAL with a reason in errbuf. */
int vg_time_parse(const char *s, size_t len, int64_t *ms, char *errbuf, size_t errlen);
/* The fast path of vg_time_parse: returns 1 and sets *ms when s is exactly the form
 * vg_time_format writes (YYYY-MM-DDTHH:MM:SS.mmmZ, 24 bytes) with every field in range
 * and no leap second, so that vg_time_format(*ms) gives back the same 24 bytes; else 0
 * (vg_time_parse then decides). Can't fail. */
int vg_time_parse_canonical(const char *s, size_t len, int64_t *ms);

/* Formats epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (at least 32
 * bytes, NUL-terminated). Returns the length written (24). Can't fail; times outside
 * [VG_TIME_MIN_MS, VG_TIME_MAX_MS] are clamped to that range. */
size_t vg_time_format(int64_t ms, char *buf);

#ifdef __cplusplus
}
#endif

#endif
