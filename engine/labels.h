/* labels.h - confirmed labels: the label list of `vigil replay --labels`, and the
 * per-key label windows behind `fraud_count(W by K)` / `labelled_count(W by K)`.
 *
 * A label says that the transaction (account, id) was fraud or genuine; `at` is when
 * that became known. The pipeline applies a label (vg_pipeline_label) by finding the
 * event in its account's label memo (engine/acctx.h), setting its status there (account
 * label aggregates read the memo), and recording (event time, status) in the label
 * window of each of the event's `by` key values used by label aggregates (this module).
 *
 * Label windows by key: for each (group, key value hash) the labelled events of that key
 * (id hash, event time, status), and the newest time of an event that read the key.
 * Like `by K` windows, an event more than the allowed lateness older than that newest
 * time reads null; entries older than newest - lateness - the longest label window are
 * dropped (no later event can count them). Keys are identified by a 64-bit hash of the
 * group and the key's type and bytes (collisions are negligible; documented).
 * The whole map is kept in memory (not evicted) and written at checkpoints as meta
 * records "lk/<16 hex digits>" (only the keys changed since the last one).
 *
 * Threading: none; one per pipeline. Ownership: the caller owns both structures.
 */
#ifndef VG_LABELS_H
#define VG_LABELS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/jsonout.h"

/* One label. Strings are borrowed (from the list that holds it, or the caller). */
typedef struct vg_label {
    const char *id;
    size_t idlen;
    const char *account;
    size_t alen;
    int fraud;            /* 1 fraud, 0 genuine */
    int64_t at_ms;        /* when it became known (INT64_MIN: now) */
} vg_label_t;

/* ---- label lists (CSV `id,account,fraud,at`) ---- */

typedef struct vg_labels vg_labels_t;

/* Reads a label file: a header line `id,account,fraud,at`, then one label a line
 * (fraud exactly 0 or 1; `at` an RFC 3339 time or epoch milliseconds; blank lines
 * skipped; a field holding a quote, or with spaces around it, is an error: fields are
 * not quoted and may not contain commas; an id or account is 1..128 bytes of valid
 * UTF-8 without U+0000, as POST /v1/labels and events require). The labels are sorted
 * by `at`, stably. Only a regular file is read (a FIFO or a device: "FILE: not a
 * regular file"). Returns the list, or NULL with "FILE:LINE: reason" in errbuf. Free
 * with vg_labels_free. */
vg_labels_t *vg_labels_load(const char *path, char *errbuf, size_t errlen);
/* Same from an open stream; `name` is used in messages. */
vg_labels_t *vg_labels_read(FILE *f, const char *name, char *errbuf, size_t errlen);
void vg_labels_free(vg_labels_t *l);   /* accepts NULL */
size_t vg_labels_count(const vg_labels_t *l);
/* Label i (0 .. count-1) in application order. Borrowed. */
const vg_label_t *vg_labels_get(const vg_labels_t *l, size_t i);

/* ---- label windows by key ---- */

typedef struct vg_lkeys vg_lkeys_t;

/* A new, empty map; `lateness_ms` and `max_window_ms` as described above. NULL on out
 * of memory. */
vg_lkeys_t *vg_lkeys_new(int64_t lateness_ms, int64_t max_window_ms);
void vg_lkeys_free(vg_lkeys_t *k);   /* accepts NULL */

/* The key's hash for group g and a key value's type and bytes. Never 0. */
uint64_t vg_lkeys_key(int g, int type, const void *bytes, size_t n);

/* An event at time t reads key `key`: returns 1 when it is late for the key (it must
 * read null), else 0 after recording t as the key's newest when newer. Returns
 * VG_ENOMEM when a new key cannot be added. */
int vg_lkeys_touch(vg_lkeys_t *k, uint64_t key, int64_t t);

/* Counts the key's labelled events with time in [lo, hi]: fraud, and all labelled. */
void vg_lkeys_count(const vg_lkeys_t *k, uint64_t key, int64_t lo, int64_t hi,
                    int64_t *fraud, int64_t *labelled);

/* Sets the status (VG_LABEL_* of acctx.h) of event idh (time ts) in key's window
 * (VG_LABEL_NONE removes it). Returns 0 or VG_ENOMEM. */
int vg_lkeys_set(vg_lkeys_t *k, uint64_t key, uint64_t idh, int64_t ts, int status);

/* Appends the records of the keys changed since the last call to `vals` (their names,
 * NUL-terminated, to `names`) and calls emit(ctx, name_offset, val_offset, val_len) for
 * each; marks them clean. Returns 0 or VG_ENOMEM. */
int vg_lkeys_dirty(vg_lkeys_t *k, vg_buf_t *names, vg_buf_t *vals,
                   int (*emit)(void *ctx, size_t noff, size_t voff, size_t vlen), void *ctx);
/* Loads one record written by vg_lkeys_dirty (name without "m/"). 0, VG_EINVAL (bad
 * record) or VG_ENOMEM. */
int vg_lkeys_load(vg_lkeys_t *k, const char *name, size_t nlen, const void *val, size_t vlen);
size_t vg_lkeys_size(const vg_lkeys_t *k);   /* keys held */

#endif
