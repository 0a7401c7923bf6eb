/* ctl.h - the control store of `vigil serve`: rule modules and their versions, lists,
 * the audit trail, alerts, labels and recent decisions, in a RocksDB database of its own
 * (STATE/control), beside the engine's state store.
 *
 * A thin key-value layer with what the HTTP API needs and engine/store.h does not
 * offer: seeking scans (cursor pagination of alerts and audit, newest first) and range
 * deletion (alert retention). The record formats are the API's (JSON), see api/http.c.
 *
 * Keys: "R/" module -> current module record; "V/" module 0x00 BE64(version) -> every
 * version of the module, the current one included (vg_ctl_version_key); "L/" name ->
 * list record; "A/" BE64(~seq) -> audit entry; "N/" BE64(~id) -> alert (id = created
 * ms << 16 | counter, so that a forward scan is newest first); "B/" account 0x00 id ->
 * label; "D/" account 0x00 BE64(~id) -> a recent decision; "G/" name -> counters;
 * "M/" account 0x00 BE64(~id) -> "" (the alert index: the account's alerts, newest
 * first, written in the same write as their "N/" record; see vg_ctl_alerts_of).
 *
 * Threading: every function may be called from any thread (RocksDB is thread-safe).
 * Writes made with vg_ctl_write_later are written by a thread of the store's, soon and
 * in order; every other call (reads included) first waits for those made before it.
 * Ownership: the caller owns the handle (vg_ctl_close accepts NULL); values are copied
 * into the caller's buffers.
 */
#ifndef VG_CTL_H
#define VG_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/jsonout.h"
#include "engine/store.h"

typedef struct vg_ctl vg_ctl_t;

/* Opens (creating) the database in `dir`. NULL with a reason in errbuf. */
vg_ctl_t *vg_ctl_open(const char *dir, char *errbuf, size_t errlen);
void vg_ctl_close(vg_ctl_t *c);

/* Reads `key` into out. 0, VG_ENOTFOUND or VG_ESTORE. */
int vg_ctl_get(vg_ctl_t *c, const void *key, size_t klen, vg_buf_t *out);

/* One operation of an atomic write: a put, or a delete when val is NULL. */
typedef struct vg_ctl_op {
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
} vg_ctl_op_t;

/* Writes all ops atomically. 0 or VG_ESTORE. */
int vg_ctl_write(vg_ctl_t *c, const vg_ctl_op_t *ops, int n);
/* Enqueues ops to be written atomically by the store's writer thread, without waiting
 * for the disk (for records written on a request's path: recent decisions, alerts).
 * Waits only when 16 MiB are pending. A failed write is reported on stderr and counted
 * (vg_ctl_failed_writes). Records enqueued but not yet written are lost if the process
 * is killed. */
void vg_ctl_write_later(vg_ctl_t *c, const vg_ctl_op_t *ops, int n);
uint64_t vg_ctl_failed_writes(vg_ctl_t *c);
/* Asks the writer thread to delete, once the records enqueued before are written, the
 * keys with `prefix` past the first `keep` in key order (at most 64 per request; the
 * rest go with a later one), off the caller's path: for records that only the newest
 * few of are read (recent decisions). Best effort: a trim that can't be queued (out of
 * memory, 16 MiB of trims pending) is skipped. Can't fail. */
void vg_ctl_trim_later(vg_ctl_t *c, const void *prefix, size_t plen, uint32_t keep);

static inline int vg_ctl_put(vg_ctl_t *c, const void *k, size_t kl, const void *v, size_t vl) {
    vg_ctl_op_t op = {k, kl, v, vl};
    return vg_ctl_write(c, &op, 1);
}
static inline int vg_ctl_del(vg_ctl_t *c, const void *k, size_t kl) {
    vg_ctl_op_t op = {k, kl, NULL, 0};
    return vg_ctl_write(c, &op, 1);
}

/* Calls cb for each key with `prefix`, in key order, starting at the first key >=
 * `from` (NULL: the prefix's first key), until cb returns non-zero (returned). 0 when
 * all were visited, VG_ESTORE on error. */
typedef int (*vg_ctl_scan_cb)(void *ctx, const char *k, size_t kl, const char *v, size_t vl);
int vg_ctl_scan(vg_ctl_t *c, const void *prefix, size_t plen, const void *from, size_t flen,
                vg_ctl_scan_cb cb, void *ctx);

/* vg_ctl_scan without waiting for the pending vg_ctl_write_later records (it may miss
 * them). */
int vg_ctl_scan_written(vg_ctl_t *c, const void *prefix, size_t plen, const void *from,
                        size_t flen, vg_ctl_scan_cb cb, void *ctx);

/* Purges records deleted in the ranges from the store's files, once the writes enqueued
 * before are written (an erasure: vg_rocksdb_purge, engine/store.h). 0, or VG_ESTORE
 * with the reason in errbuf. */
int vg_ctl_purge(vg_ctl_t *c, const vg_key_range_t *r, int n, char *errbuf, size_t errlen);

/* The alert keys ("N/...") an erasure deleted, seen in key order by one scan: the span
 * from the first to the last, for its purge (n: how many; oom: the span could not be
 * kept, the purge takes every alert). */
typedef struct vg_ctl_span {
    vg_buf_t first, last;   /* the smallest key; the largest + NUL (the range's end) */
    int n, oom;
} vg_ctl_span_t;
void vg_ctl_span_init(vg_ctl_span_t *s);
void vg_ctl_span_add(vg_ctl_span_t *s, const void *k, size_t kl);
void vg_ctl_span_deinit(vg_ctl_span_t *s);

/* An erasure's purge of the control store (vg_ctl_purge): the account's decisions
 * ("D/" + account + NUL ...), labels ("B/" + account + NUL ...), alert index entries
 * ("M/" + account + NUL ...) and the alerts of span
 * (none when it is empty). 0, or VG_ESTORE with the reason in errbuf. */
int vg_ctl_purge_account(vg_ctl_t *c, const char *acct, size_t al, const vg_ctl_span_t *alerts,
                         char *errbuf, size_t errlen);

/* ---- the alert index: "M/" account 0x00 BE64(~id) for each alert "N/" BE64(~id) of
 * the account (docs/architecture.md). Written with the alert, in the same write
 * (vg_ctl_alert_ikey); deleted with it where it is erased; entries whose alert the
 * retention took (a delete_range of "N/") are skipped by reads and deleted by
 * vg_ctl_alert_index_prune. A state made before the index gets it once at the start
 * (the caller's scan of "N/", then VG_CTL_AIDX_MARK). */

#define VG_CTL_AIDX_MARK "G/alertidx"
/* The index key of the alert whose key is nkey ("N/" BE64(~id)) of account acct (al
 * bytes, no NUL) in out, which holds VG_CTL_AIDX_LEN(al) bytes; returns its length.
 * Can't fail. */
#define VG_CTL_AIDX_LEN(al) (2 + (al) + 1 + 8)
size_t vg_ctl_alert_ikey(unsigned char *out, const char *acct, size_t al,
                         const unsigned char nkey[10]);
/* Deletes the alert record nkey ("N/" + BE64(~id)) of account `acct` with its index
 * entry, in one write. 0 or an error. */
int vg_ctl_alert_del(vg_ctl_t *c, const unsigned char nkey[10], const char *acct, size_t al);

/* Calls cb(ctx, "N/" key, 10, alert record, its length) for each alert of the account
 * listed in its index, newest first, starting at the first whose "N/" key is >= from
 * (10 bytes; NULL: the newest), until cb returns non-zero (returned): the "N/" scan
 * restricted to the account's alerts, at the cost of their number. Entries whose
 * record is gone are skipped. 0 when all were visited, VG_ESTORE on error, VG_ENOMEM. */
int vg_ctl_alerts_of(vg_ctl_t *c, const char *acct, size_t al, const unsigned char *from,
                     vg_ctl_scan_cb cb, void *ctx);

/* Deletes the index entries of alerts with an id below `below` (past the retention),
 * and, when acct is not NULL, only the account's, those whose record is gone (an
 * erasure's leftovers). The number deleted, VG_ESTORE or VG_ENOMEM. */
int64_t vg_ctl_alert_index_prune(vg_ctl_t *c, uint64_t below);
int64_t vg_ctl_alert_index_drop_gone(vg_ctl_t *c, const char *acct, size_t al);

/* Many puts of empty values (del 0) or deletes (del 1), written 1,024 at a time: for
 * scans that change many keys (the index's build and pruning). The caller embeds the
 * struct: vg_ctl_keys_init, vg_ctl_keys_add for each key (copied), vg_ctl_keys_end,
 * which writes the rest. add and end return 0, or VG_ESTORE / VG_ENOMEM (the first
 * error is kept; later adds do nothing). */
typedef struct vg_ctl_keys {
    vg_ctl_t *c;
    void *wb;          /* the pending batch (rocksdb_writebatch_t) */
    int del, rc;
    int64_t n;         /* keys written so far */
} vg_ctl_keys_t;
void vg_ctl_keys_init(vg_ctl_keys_t *b, vg_ctl_t *c, int del);
int vg_ctl_keys_add(vg_ctl_keys_t *b, const void *k, size_t kl);
int vg_ctl_keys_end(vg_ctl_keys_t *b);

/* Deletes every key in [from, to). 0 or VG_ESTORE. */
int vg_ctl_delete_range(vg_ctl_t *c, const void *from, size_t flen, const void *to,
                        size_t tlen);

/* The key of version `version` of module `name` ("V/" name 0x00 BE64(version)) in
 * `out`, which holds VG_CTL_VKEY_MAX bytes; returns its length, 0 when the name is
 * empty or longer than 64 bytes. Its first (length - 8) bytes are the prefix of every
 * version of the module, in version order. Can't fail otherwise. */
#define VG_CTL_VKEY_MAX (2 + 64 + 1 + 8)
size_t vg_ctl_version_key(unsigned char *out, const char *name, int64_t version);

/* Big-endian helpers for keys. Can't fail. */
void vg_be64(unsigned char out[8], uint64_t v);
uint64_t vg_rd_be64(const unsigned char in[8]);

#endif
