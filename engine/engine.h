/* engine.h - one scoring engine shared by many threads: N shards, each a pipeline
 * (engine/pipeline.h) behind its own mutex.
 *
 * An event goes to shard hash(account) % N, so that an account's events are always
 * processed by the same pipeline, in the order their requests took the shard's lock;
 * different accounts on different shards are scored in parallel. `by K` windows and
 * population statistics are per shard (like per partition with Kafka): with N = 1 (the
 * default) serve's decisions equal replay's for every rule.
 *
 * State: with a state directory, shard i keeps its state in a RocksDB store (N = 1:
 * the directory itself, so that a `replay --state DIR` directory is served warm; N > 1:
 * DIR/shard-<i>). vg_engine_checkpoint() writes every shard's changed state (without
 * stopping scoring for more than a slice of accounts, see engine.c).
 *
 * Ruleset and lists are swapped whole between two events of each shard
 * (vg_engine_set_program, vg_engine_set_lists): an event is scored entirely with the
 * old or entirely with the new ruleset, and its decision names the version it used.
 *
 * Dry runs (vg_engine_score with dry_run) change no state: the shard is checkpointed,
 * and the event is scored by a throw-away pipeline reading the same store, which is
 * then dropped (a dry run is therefore slower than a real one).
 *
 * Threading: every function may be called from any thread. Ownership: the caller owns
 * the engine (vg_engine_free accepts NULL); the engine keeps references to the program
 * and lists it is given.
 */
#ifndef VG_ENGINE_H
#define VG_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "engine/event.h"
#include "engine/jsonout.h"
#include "engine/pipeline.h"
#include "rules/lists.h"
#include "rules/program.h"

typedef struct vg_engine vg_engine_t;

typedef struct vg_engine_opts {
    int shards;                  /* >= 1 */
    const char *state_dir;       /* NULL: memory only (no dry runs, nothing durable) */
    int64_t lateness_ms, dedupe_horizon_ms;
    int64_t future_ms;           /* reject events further ahead of the clock; <= 0: off */
    size_t mem_budget;           /* per shard; 0 = unlimited */
    int anomaly;                 /* vg_pipeline_opts_t.anomaly */
    int reset_mismatch;          /* a store holding state of other rules is emptied (logged)
                                    instead of refused */
    int64_t checkpoint_spread_ms; /* a periodic checkpoint spreads its slices over up to
                                    this long (pauses of at most 1 ms between slices), so
                                    that its work never comes as a burst; 0: no pauses */
} vg_engine_opts_t;

/* Per-caller scratch (one per thread or connection): the routing parser and buffers.
 * vg_engine_ctx_init can't fail; vg_engine_ctx_deinit frees. */
typedef struct vg_engine_ctx {
    vg_event_t ev;
} vg_engine_ctx_t;
void vg_engine_ctx_init(vg_engine_ctx_t *x);
void vg_engine_ctx_deinit(vg_engine_ctx_t *x);

/* Creates the engine with program `p` (a reference is taken) as ruleset `version`, and
 * `lists` (a reference is taken; NULL: empty). NULL with a reason in errbuf (store
 * cannot be opened, state made by other rules). */
vg_engine_t *vg_engine_new(const vg_engine_opts_t *o, vg_program_t *p, int64_t version,
                           vg_lists_t *lists, char *errbuf, size_t errlen);
void vg_engine_free(vg_engine_t *e);

typedef struct vg_engine_result {
    vg_outcome_t outcome;
    vg_reject_t reject;          /* when REJECTED */
    int alert;                   /* the event raised an alert */
    int64_t ruleset;             /* the ruleset version used */
} vg_engine_result_t;

/* Scores one event (`len` bytes of JSON) and appends the decision or the rejection line
 * (with its newline) to out. `deadline` (CLOCK_REALTIME, NULL: none): when the shard
 * cannot be had before it, returns VG_ELIMIT without scoring (the caller answers 429).
 * Returns 0 (bad input is a REJECTED outcome), VG_ELIMIT, VG_EINVAL (dry run without a
 * state directory), VG_ENOMEM or VG_ESTORE. */
int vg_engine_score(vg_engine_t *e, vg_engine_ctx_t *x, const char *body, size_t len,
                    int dry_run, const struct timespec *deadline, vg_buf_t *out,
                    vg_engine_result_t *res);

/* Replaces the ruleset of every shard between two events (a reference to p is taken).
 * When the new ruleset keeps the state layout, every account keeps its state; when
 * the layout changed (new or changed aggregates) the state cannot be carried over and
 * the shard starts empty (logged on stderr). Returns 0, or VG_ESTORE / VG_ENOMEM with a
 * reason in errbuf (the shard then keeps its old ruleset). */
int vg_engine_set_program(vg_engine_t *e, vg_program_t *p, int64_t version, char *errbuf,
                          size_t errlen);

/* Replaces the lists of every shard between two events (a reference is taken). */
void vg_engine_set_lists(vg_engine_t *e, vg_lists_t *lists);

/* The current ruleset version. */
int64_t vg_engine_version(vg_engine_t *e);

/* Checkpoints every shard (`sync`: wait for the disk): everything changed before the
 * call is in the store when it returns. Without `sync` (periodic checkpoints) a shard
 * is written a slice of accounts at a time, scoring going on between slices and while
 * each is written; with `sync` each shard is written whole under its lock. 0,
 * VG_ENOMEM or VG_ESTORE with a reason in errbuf. */
int vg_engine_checkpoint(vg_engine_t *e, int sync, char *errbuf, size_t errlen);

/* Erases the account's state (its windows, history, remembered decisions) from memory
 * and the store. `by K` windows keep the aggregates its events contributed. Returns 0,
 * VG_EINVAL without a state directory, or VG_ESTORE. */
int vg_engine_forget(vg_engine_t *e, const char *account, size_t len, char *errbuf,
                     size_t errlen);

/* The shard an account maps to. Can't fail. */
int vg_engine_shard_of(const vg_engine_t *e, const char *account, size_t len);

/* Applies one confirmed label on the shard that owns its account (vg_pipeline_label:
 * later events of that shard see it; strings borrowed for the call). *matched (when not
 * NULL): 1 when the label matched an event of the shard, 0 when it was counted as
 * unmatched (an unknown or forgotten event or account). Returns 0, or VG_ENOMEM /
 * VG_ESTORE with a reason in errbuf. */
int vg_engine_label(vg_engine_t *e, const vg_label_t *lb, int *matched, char *errbuf,
                    size_t errlen);

/* The account's state on its shard (vg_pipeline_account_view: JSON members appended to
 * out). Returns 0, VG_ENOTFOUND (the shard has no state for it), VG_ENOMEM or
 * VG_ESTORE. */
int vg_engine_account_view(vg_engine_t *e, const char *account, size_t len, int max,
                           vg_buf_t *out);

/* Resets the account's anomaly baseline on its shard (vg_pipeline_reset_baseline): its
 * next events are scored as a new account's. Returns 0, or VG_ENOMEM / VG_ESTORE with a
 * reason in errbuf. */
int vg_engine_reset_baseline(vg_engine_t *e, const char *account, size_t len, char *errbuf,
                             size_t errlen);

typedef struct vg_engine_stats {
    uint64_t decided, duplicates, rejected;
    size_t accounts_in_memory, keys_in_memory, bytes;
    /* since start (--mem-budget): accounts and by-key states dropped from memory, and
     * read back from the store (an evicted one needed again; after a restart, every
     * one's first use) */
    uint64_t account_evictions, key_evictions, account_loads, key_loads;
} vg_engine_stats_t;
/* Sums the shards' statistics (takes each lock briefly). */
void vg_engine_get_stats(vg_engine_t *e, vg_engine_stats_t *out);
/* How many scores and account views failed because a record of the store could not be
 * read back (VG_ESTORE: a damaged state). Lock-free; 0 for NULL. */
uint64_t vg_engine_read_failures(vg_engine_t *e);

#endif
