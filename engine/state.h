/* state.h - all per-key state of one engine: accounts, `by K` keys, duplicates, memory.
 *
 * vg_state_t holds, in memory, every account's window state (engine/window.h), its
 * dedupe ring (the ids of its accepted events within the dedupe horizon, with the
 * decision each one got), and the window state of every `by K` key. With a store it
 * is also durable: vg_state_checkpoint() writes every account and key changed since the
 * last checkpoint, plus the caller's meta records (the input position), in one atomic
 * RocksDB write; accounts not in memory are loaded from the store on demand; and when
 * memory exceeds the budget, the least recently used accounts that are clean (written
 * by a checkpoint) are dropped from memory, to be reloaded unchanged when next needed.
 *
 * Store keys: "a/" + account -> account record; "k/" + group index (2 bytes, big endian)
 * + key type byte (vg_type_t) + key bytes (strings as is, numbers as the 8 bytes of the
 * double with -0 as 0, booleans 1 byte) -> by-key record; "m/" + name -> meta records
 * of the caller; "m/layout" the fingerprint of the program's layouts, lateness and
 * horizon (a state made with other rules or options is refused).
 *
 * Eviction: `by K` key states are kept and dropped exactly like accounts (clean ones,
 * least recently used first, reloaded unchanged from the store), so eviction never
 * changes a result. Without a store nothing is ever dropped: memory grows with the
 * number of distinct accounts and keys.
 * Memory per account: about 180 bytes (the hashes of the last 16 ids included) + the
 * name + its window state + per remembered event (within the horizon) 24 bytes + id +
 * the decision packed against a template (engine/dpack.h; typically a third of the
 * line) (+ 8 bytes of index once an account has more than 16).
 *
 * Threading: one vg_state_t per processing thread, no locks. Ownership: the caller owns
 * the state (vg_state_free accepts NULL); the state keeps a reference to the program
 * and borrows the store, which must outlive it.
 */
#ifndef VG_STATE_H
#define VG_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/store.h"
#include "engine/window.h"
#include "rules/arena.h"
#include "rules/program.h"

typedef struct vg_state vg_state_t;
typedef struct vg_acct vg_acct_t;

typedef struct vg_state_opts {
    int64_t lateness_ms;        /* default 1 h */
    int64_t dedupe_horizon_ms;  /* default 24 h */
    size_t mem_budget;          /* bytes of account state kept in memory; 0 = unlimited.
                                   Only enforced with a store. */
    vg_store_t *store;          /* borrowed; NULL: memory only */
    const struct vg_acctx_layout *acctx;  /* copied; non-NULL: accounts may carry an
                                   extension (engine/acctx.h: anomaly baseline, label
                                   memo), kept, checkpointed, evicted and reloaded with
                                   them; part of the layout fingerprint */
    int reset_mismatch;         /* a store holding state of other rules or options is
                                   emptied (vg_state_wipe) instead of refused, and
                                   *was_reset (when non-NULL) set to 1 */
    int *was_reset;
} vg_state_opts_t;

typedef struct vg_kv {
    const char *key;            /* meta name, stored under "m/" + key */
    const void *val;
    size_t len;
} vg_kv_t;

/* Creates the state for program `p`. With a store that already holds state, checks the
 * layout fingerprint: returns NULL with a reason in errbuf when the state was made by
 * other rules or options (lateness). Returns NULL on out of memory too. */
vg_state_t *vg_state_new(vg_program_t *p, const vg_state_opts_t *o, char *errbuf,
                         size_t errlen);
void vg_state_free(vg_state_t *st);

/* Finds the account (memory, else the store), creating an empty one when it has none.
 * The pointer stays valid until the next call of vg_state_account,
 * vg_state_checkpoint or vg_state_evict. Returns 0, VG_ENOMEM, or VG_ESTORE. */
int vg_state_account(vg_state_t *st, const char *account, size_t len, vg_acct_t **out);

/* A hint that `account` will be looked up soon, to hide memory latency when events
 * are known ahead (a batch): stage 0 prefetches its slot of the account table; stage 1
 * (the slot being in cache by then) the account; stage 2 (the account being in cache)
 * its dedupe log and window rows. Call the stages some events apart, in order. Changes
 * nothing, allocates nothing; can't fail. */
void vg_state_prefetch(const vg_state_t *st, const char *account, size_t len, int stage);
/* The same with the account's hash given (vg_state_hash), so that the stages of one
 * account hash it once. Stage 2 returns the account when it keeps an index of its
 * remembered ids (more than 16 within the dedupe horizon), so that the caller may
 * prefetch the event id's slot with vg_state_prefetch_id; else NULL. Can't fail. */
const vg_acct_t *vg_state_prefetch_hashed(const vg_state_t *st, uint64_t hash, int stage);
/* Prefetches the slot of account a's id index (a from stage 2 above) that the duplicate
 * check of event `id` reads first. Changes nothing; can't fail. */
void vg_state_prefetch_id(const vg_acct_t *a, const char *id, size_t idlen);
/* The hash of an account name in the state's tables. Can't fail. */
uint64_t vg_state_hash(const char *account, size_t len);

/* vg_state_account without creating it: VG_ENOTFOUND when the account is neither in
 * memory nor in the store (never seen, or erased). Otherwise the same. */
int vg_state_find(vg_state_t *st, const char *account, size_t len, vg_acct_t **out);

/* The account's remembered decisions (its accepted events within the dedupe horizon of
 * its newest), the latest arrival first, at most max (<= 1024), each handed to cb with
 * the decision line (no newline; borrowed for the call); cb returns non-zero to stop.
 * Returns the number handed, or VG_ENOMEM. Changes nothing. */
int vg_state_recent(vg_state_t *st, vg_acct_t *a, int max,
                    int (*cb)(void *ctx, const char *line, size_t len), void *ctx);

/* The account's sessions as of its newest event (window.h, vg_wstate_sessions): at most
 * max, one per session gap of the rules; 0 when the rules have no session feature or
 * the account no event. Can't fail. */
int vg_state_sessions(const vg_state_t *st, const vg_acct_t *a, vg_wsession_t *out,
                      int max);

/* The account's anomaly baseline, NULL when it has none (no anomaly models, or no
 * event learned yet). Valid like the account pointer; the caller only reads it. */
struct vg_anomaly_state *vg_state_anomaly(vg_acct_t *a);

/* Time of the account's newest accepted event, INT64_MIN when none. */
int64_t vg_state_newest(const vg_acct_t *a);

/* When (account, id) was accepted within the dedupe horizon, returns 1 and points
 * `decision` at the decision it got (borrowed, valid like the account pointer and
 * until the next vg_state_find_dup); else returns 0. Can't fail (decisions are kept
 * packed; should unpacking run out of memory, it answers 0). */
int vg_state_find_dup(vg_state_t *st, vg_acct_t *a, const char *id, size_t idlen,
                      const char **decision, size_t *dlen);
/* When (account, id) was accepted within the dedupe horizon, returns 1 and sets *ts to
 * the event's time; else returns 0. Changes nothing; can't fail. */
int vg_state_event_time(const vg_state_t *st, const vg_acct_t *a, const char *id,
                        size_t idlen, int64_t *ts);

/* Applies an accepted event at time ts to the account and to every by-key group
 * (by-key windows skip the event when its key is null or late for that key, and then
 * read null); fills spec_vals[0 .. nspecs-1]. Returns 0, VG_ENOMEM or VG_ESTORE; after
 * an error the account may hold the event while some by-key state does not (the
 * caller treats it as fatal). String values borrow from the state until its next
 * change. */
int vg_state_apply(vg_state_t *st, vg_acct_t *a, int64_t ts, const vg_spec_input_t *in,
                   vg_value_t *spec_vals, vg_arena_t *scratch);

/* Records the decision of the accepted event (account, id) at time ts for duplicate
 * detection; forgets ids older than the account's newest time minus the horizon. When
 * `head` > 0, the decision's first `head` bytes are exactly what vg_state_decision_head
 * writes for (id, the account, ts): they are not stored, and vg_state_find_dup writes
 * them again in front of the rest. Returns 0 or VG_ENOMEM. */
int vg_state_remember(vg_state_t *st, vg_acct_t *a, const char *id, size_t idlen,
                      int64_t ts, const char *decision, size_t dlen, size_t head);

/* Registers the shape of a ruleset's decision lines (SPEC section 3) so that they can
 * be remembered as binary values (vg_state_remember_values): n features, keys[i] the
 * klen[i] bytes written before feature i's value (`"name":`, with a leading comma from
 * the second on), and the standard text around them: `mid` from the end of the head to
 * the first key, and the tail from the last value to the end of the line (no newline),
 * which holds one integer (the ruleset version): `ta` before it, `tb` after it. The
 * shape is copied and kept in the store with the next checkpoint. Returns the shape's
 * number (the same one for the same shape), VG_ENOMEM, or VG_ELIMIT when the state
 * holds too many shapes (4,096; the caller then uses vg_state_remember). */
int vg_state_shape(vg_state_t *st, int n, char *const *keys, const size_t *klen,
                   const char *mid, size_t midlen, const char *ta, size_t talen,
                   const char *tb, size_t tblen);

/* vg_state_remember for a decision line of shape `shape` given in parts: its head is
 * what vg_state_decision_head writes for (id, the account, ts), then mid, then the
 * shape's keys with the values vals[0 .. n-1] (as vg_json_value writes them), then
 * tail. Kept as binary values (and `num`) when mid is the shape's and tail is its ta,
 * num in decimal, tb; else mid and tail are kept as text beside the values.
 * vg_state_find_dup writes the same line again. Returns 0, VG_EINVAL (no such shape) or
 * VG_ENOMEM. */
int vg_state_remember_values(vg_state_t *st, vg_acct_t *a, const char *id, size_t idlen,
                             int64_t ts, int shape, const char *mid, size_t midlen,
                             const vg_value_t *vals, const char *tail, size_t taillen,
                             int64_t num);

/* Appends the head of a decision line (SPEC section 3): {"id":ID,"account":ACCOUNT,
 * "ts":"TIME (the JSON strings of the id and the account, the time as vg_time_format
 * writes it, without the closing quote). Returns 0 or VG_ENOMEM. */
int vg_state_decision_head(vg_buf_t *out, const char *id, size_t idlen, const char *account,
                           size_t alen, int64_t ts);
/* The same with the time's text given when the caller has it: ts_text, when not NULL,
 * is the 24 bytes vg_time_format writes for ts (vg_event_t.ts_text). */
int vg_state_decision_head_text(vg_buf_t *out, const char *id, size_t idlen,
                                const char *account, size_t alen, int64_t ts,
                                const char *ts_text);

/* The account's extension (engine/acctx.h), created empty on first use, and the account
 * marked changed (the caller is about to change it). NULL when the state has no
 * extensions (opts.acctx NULL) or on out of memory. Valid like the account pointer. */
struct vg_acctx *vg_state_acctx(vg_state_t *st, vg_acct_t *a);
/* The extension if the account has one (nothing marked), else NULL. Can't fail. */
struct vg_acctx *vg_state_acctx_peek(vg_acct_t *a);
/* Recounts the account's memory after its extension grew. Can't fail. */
void vg_state_acctx_remem(vg_state_t *st, vg_acct_t *a);

/* Resets the account's anomaly baseline (models/anomaly.h vg_anomaly_state_reset): its
 * next events are scored as a new account's. Loads the account when it is stored; an
 * account without a baseline is left as it is. The change is checkpointed like any
 * other. Returns 0, VG_ENOMEM or VG_ESTORE. */
int vg_state_reset_baseline(vg_state_t *st, const char *account, size_t len);

/* Suppression state (rules with `suppress D`): the time of the last alert of rule
 * `rule_id` (vg_rule_info_t.id) for the account, INT64_MIN when none. Can't fail. */
int64_t vg_state_last_alert(const vg_acct_t *a, uint64_t rule_id);
/* Records an alert of rule `rule_id` for the account at time ts (kept with the account:
 * checkpointed, evicted and reloaded with it). Returns 0 or VG_ENOMEM. */
int vg_state_set_alert(vg_state_t *st, vg_acct_t *a, uint64_t rule_id, int64_t ts);

/* Writes every changed account and key and the meta records in one atomic write
 * (`sync`: wait for the disk). Without a store, returns 0 and does nothing.
 * Returns 0 or VG_ESTORE with a reason in errbuf. */
int vg_state_checkpoint(vg_state_t *st, const vg_kv_t *meta, int n_meta, int sync,
                        char *errbuf, size_t errlen);

/* Incremental checkpoint, in two steps so that the caller can write without holding
 * the lock that guards the state (a slice at a time, scoring in between):
 *
 * vg_state_checkpoint_some() appends to `b` (the caller's batch; it holds copies, never
 * references to the state) the records of at most max_records changed accounts and
 * keys, those changed longest ago first, plus "m/layout" and the decision template
 * when it is not stored yet; no caller meta records (each record is self-consistent,
 * but a slice is not a consistent cut of the input: use vg_state_checkpoint() when an
 * input position must match the state). The encoded entries count as clean from then
 * on (a change makes them dirty again, for a later checkpoint) but are never evicted
 * until vg_state_checkpoint_done(). *left is set to the number of changed entries not
 * encoded. Returns 0, or VG_ENOMEM (nothing is marked clean; clear the batch).
 * Without a store: 0, nothing appended, *left = 0.
 *
 * vg_state_checkpoint_done(): call after writing the batch, `written` 1 when the write
 * succeeded (the entries may be evicted again), 0 when it failed (they are dirty
 * again). A vg_state_checkpoint_some() whose done was never called is treated as
 * failed. Can't fail. */
int vg_state_checkpoint_some(vg_state_t *st, size_t max_records, vg_batch_t *b,
                             size_t *left);
void vg_state_checkpoint_done(vg_state_t *st, int written);

/* A consistent cut encoded in steps, for a caller that goes on changing the state while
 * its checkpoint is encoded (the Kafka processing threads): the state at the time of
 * vg_state_snapshot_begin(), without pausing for the encoding of every change at once.
 *
 * vg_state_snapshot_begin() takes the cut: every entry changed since the last
 * checkpoint, to be encoded into `b` (which must stay alive until the snapshot is done;
 * "m/layout" and, when not stored yet, the decision template are appended now). It
 * encodes no entry: vg_state_snapshot_step() encodes up to max_records of them per call,
 * and an entry of the cut that is about to change is encoded first, as it was at the
 * cut. *left is the number of entries of the cut not encoded yet; the batch is complete
 * when it is 0, and only then may it be written. End with vg_state_checkpoint_done()
 * (written = 1 after writing the complete batch; 0 gives the snapshot up: its entries
 * are dirty again, and an incomplete snapshot is always given up). Entries of the cut
 * are never evicted until then. Returns 0 or VG_ENOMEM (begin: nothing taken; step: the
 * snapshot can't complete, give it up). Without a store: 0, *left = 0. */
int vg_state_snapshot_begin(vg_state_t *st, vg_batch_t *b, size_t *left);
int vg_state_snapshot_step(vg_state_t *st, size_t max_records, size_t *left);

/* Swaps the program (between two events): the window state of every account and key
 * is moved to the new program's layouts (engine/window.h vg_wstate_migrate: specs with
 * the same canonical text, in a `by` group of the same key text, keep their state
 * exactly; new ones start cold or, where the log covers them, warm; removed ones are
 * freed, `by` groups no longer used with all their keys). Dedupe logs and suppression
 * times are kept; the extensions are moved to layout `acctx` (NULL: none; the anomaly
 * baseline kept when both have one, the label memo's entries kept, their key hashes
 * moved to the new group numbers and the x values of unchanged x texts to their new
 * slots). When the new program has the same layouts (same specs in the same order,
 * e.g. only rules or thresholds changed), nothing moves and the swap costs O(specs).
 * Otherwise, with a store, every stored account and key is first loaded (the swap costs
 * O(state) time and, until the next checkpoint, memory beyond the budget), and the next
 * checkpoint (vg_state_checkpoint, or vg_state_checkpoint_some, which then takes every
 * change in one slice) rewrites the whole state with the new "m/layout" in one atomic
 * write; a crash before it leaves the old state and layout in the store. Returns 0, or
 * VG_ENOMEM / VG_ESTORE with a reason in errbuf (the state is then unchanged, though
 * stored entries may have been loaded). Takes a reference to `p`. */
int vg_state_set_program(vg_state_t *st, vg_program_t *p, const struct vg_acctx_layout *acctx,
                         char *errbuf, size_t errlen);

/* Deletes, with the next checkpoint, every meta record whose name starts with
 * `prefix` (a ruleset swap dropping state kept as meta records). Without a store does
 * nothing. Returns 0, VG_ENOMEM or VG_ESTORE. */
int vg_state_delete_meta(vg_state_t *st, const char *prefix);

/* Reads meta record `key` written by a checkpoint into out. 0, VG_ENOTFOUND, or error. */
int vg_state_meta(vg_state_t *st, const char *key, vg_buf_t *out);

/* Drops clean least-recently-used accounts until memory is within the budget. Only
 * with a store and a budget; never drops an account changed since the last
 * checkpoint. Returns the number dropped. */
int vg_state_evict(vg_state_t *st);

typedef struct vg_state_stats {
    size_t accounts_in_memory;
    size_t keys_in_memory;      /* by-key states */
    size_t bytes;               /* memory held by account and key state */
    uint64_t loads;             /* accounts reloaded from the store */
    uint64_t evictions;         /* accounts and keys dropped from memory */
    uint64_t key_loads;         /* by-key states reloaded from the store */
    uint64_t key_evictions;     /* of `evictions`, the by-key states */
} vg_state_stats_t;
void vg_state_get_stats(const vg_state_t *st, vg_state_stats_t *out);

/* A duration as the options take it, in its largest exact unit ("90m", "500ms", "49d";
 * days from 2d on, "24h" below), in buf: for messages about --lateness, --dedupe-horizon
 * and the options' limits (api/cli.c). Can't fail. */
void vg_fmt_duration(int64_t ms, char *buf, size_t n);

/* Deletes every record of an engine state from `store` ("a/", "d/", "k/", "m/layout",
 * "m/dtpl"; the caller's other "m/" records stay), in one write, so that a state made
 * by other rules starts empty. 0, or VG_ESTORE / VG_ENOMEM with a reason in errbuf. */
int vg_state_wipe(vg_store_t *store, char *errbuf, size_t errlen);

/* Deletes every record of one account from `store` (its account record, dedupe and
 * window row records), in one synced write; the state in memory is the caller's to
 * drop. With `deleted`, the keys are appended to it (a key list, engine/le.h;
 * the Kafka changelog produces their tombstones). 0, or VG_ESTORE / VG_ENOMEM
 * with a reason in errbuf. */
int vg_state_delete_account(vg_store_t *store, const char *account, size_t len,
                            vg_buf_t *deleted, char *errbuf,
                            size_t errlen);

#endif
