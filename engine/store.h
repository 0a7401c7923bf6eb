/* store.h - the store of record: a RocksDB database of keys and values.
 *
 * A thin layer over RocksDB's C API: point reads, atomic write batches, prefix scans.
 * Everything vigil keeps durably goes through it (account state, by-key state, the
 * checkpoint's input position).
 *
 * Threading: a vg_store_t may be used from several threads (RocksDB is thread-safe); a
 * vg_batch_t belongs to one thread. Ownership: the caller owns stores and batches
 * (vg_store_close / vg_batch_free accept NULL). Values returned by vg_store_get are
 * copied into the caller's buffer.
 */
#ifndef VG_STORE_H
#define VG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/jsonout.h"

typedef struct vg_store vg_store_t;
typedef struct vg_batch vg_batch_t;

/* Clears a RocksDB handle's background error (DB::Resume) after a failed write, e.g.
 * once a full disk has room again: RocksDB refuses every write until then. 0, or
 * VG_ESTORE with the reason (still no room, ...). For engine/store.c and api/ctl.c. */
typedef struct rocksdb_t rocksdb_t;
int vg_rocksdb_resume(rocksdb_t *db, char *errbuf, size_t errlen);

/* A range of keys [from, to) (to NULL: up to the last key). */
typedef struct vg_key_range {
    const void *from;
    size_t flen;
    const void *to;
    size_t tlen;
} vg_key_range_t;

/* The range of the keys that start with p[0..n) in r, using out (n bytes) for its end.
 * Can't fail. */
void vg_key_range_prefix(vg_key_range_t *r, const void *p, size_t n, unsigned char *out);

/* Purges deleted records from a database's files (an erasure: they must leave the disk,
 * not only the reads): flushes the memtable, so that the write-ahead log files that hold
 * them are retired and deleted (no WAL archive is kept); compacts each range down to the
 * last level, so that no SST file keeps the values or their tombstones; then makes the
 * MANIFEST, which names the smallest and largest key of every file it ever listed, start
 * afresh without the compacted files (vg_store_open and vg_ctl_open set
 * max_manifest_file_size to 0 for this: each change of files writes a new MANIFEST, and
 * the purge makes one more change, a flush of a tombstone of VG_PURGE_MARKER, a key no
 * one writes); and deletes the obsolete files before returning. Blocks the caller while
 * RocksDB rewrites the files that hold the ranges (docs/architecture.md, Erasure, for
 * figures); other threads may read and write meanwhile. 0, or VG_ESTORE with the reason.
 * For engine/store.c and api/ctl.c (in engine/store_resume.cpp: the C API's compaction
 * reports no error). */
#define VG_PURGE_MARKER "~purge"
int vg_rocksdb_purge(rocksdb_t *db, const vg_key_range_t *r, int n, char *errbuf,
                     size_t errlen);

/* Opens (creating if needed) the database in directory `dir`. Returns NULL with a
 * reason in errbuf on failure (e.g. locked by another process). */
vg_store_t *vg_store_open(const char *dir, char *errbuf, size_t errlen);
/* Flushes nothing, closes the database and frees the handle. Accepts NULL. */
void vg_store_close(vg_store_t *s);
/* The directory the store was opened on (borrowed, valid until vg_store_close).
 * Can't fail. */
const char *vg_store_path(const vg_store_t *s);

/* Reads `key` into `out` (replacing its contents). Returns 0, VG_ENOTFOUND, or
 * VG_ESTORE / VG_ENOMEM. */
int vg_store_get(vg_store_t *s, const void *key, size_t klen, vg_buf_t *out);

/* A new empty batch, or NULL when out of memory. Free with vg_batch_free(). */
vg_batch_t *vg_batch_new(void);
void vg_batch_free(vg_batch_t *b);
/* Forgets every operation (the batch keeps its memory for reuse). Can't fail. */
void vg_batch_clear(vg_batch_t *b);
/* Number of operations in the batch. */
int vg_batch_count(const vg_batch_t *b);
/* Queue a put / a delete; the batch copies the bytes. Can't fail (RocksDB aborts on
 * out of memory). */
void vg_batch_put(vg_batch_t *b, const void *k, size_t kl, const void *v, size_t vl);
void vg_batch_delete(vg_batch_t *b, const void *k, size_t kl);
/* Calls put (v, vl) or del (v NULL) for every operation of the batch, in order.
 * Can't fail. */
typedef void (*vg_batch_op_cb)(void *ctx, const void *k, size_t kl, const void *v,
                               size_t vl);
void vg_batch_iterate(const vg_batch_t *b, vg_batch_op_cb cb, void *ctx);
/* Writes the batch atomically (all or nothing); `sync` waits for the WAL to reach the
 * disk. Returns 0 or VG_ESTORE with a reason in errbuf. */
int vg_store_write(vg_store_t *s, vg_batch_t *b, int sync, char *errbuf, size_t errlen);

/* The store's RocksDB handle (for tests: its live files' metadata). */
rocksdb_t *vg_store_rocksdb(vg_store_t *s);

/* vg_rocksdb_purge on the store: the records deleted in the ranges leave its files.
 * 0 or VG_ESTORE with a reason in errbuf. */
int vg_store_purge(vg_store_t *s, const vg_key_range_t *r, int n, char *errbuf,
                   size_t errlen);

/* vg_store_purge over the keys of one account's records in engine/state.c's layout: its
 * account record ("a/" + name), dedupe records and window rows ("d/" and "w/" + u32be
 * name length + name + ...), after vg_state_delete_account deleted them. Slow (an
 * erasure): see vg_rocksdb_purge. 0 or VG_ESTORE with a reason in errbuf. */
int vg_store_purge_account(vg_store_t *s, const char *account, size_t len, char *errbuf,
                           size_t errlen);

/* Calls cb for every key starting with `prefix`, in key order, until cb returns
 * non-zero (which is then returned). Returns 0 when all were visited, VG_ESTORE on
 * error. */
typedef int (*vg_store_scan_cb)(void *ctx, const void *k, size_t kl, const void *v,
                                size_t vl);
int vg_store_scan(vg_store_t *s, const void *prefix, size_t plen, vg_store_scan_cb cb,
                  void *ctx);

#endif
