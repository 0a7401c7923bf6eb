/* pipeline.h - the per-event path: bytes in, decision out.
 *
 * vg_pipeline_line() takes one input line (NDJSON, no newline) and appends exactly one
 * output line (with its newline) to the caller's buffer: the decision of SPEC section 3
 * for an accepted event, the original decision again for a duplicate, or the rejection
 * object {"id":..,"error":..,"code":..}. Blank lines produce nothing.
 *
 * Order of checks for an event: parse and validate (section 1), duplicate (the same
 * (account, id) accepted within the dedupe horizon), lateness (older than the account's
 * newest by more than the allowed lateness), then state update, features, rules,
 * decision (SPEC section 2: precedence, score, shadow rules, suppression).
 * A rejected event leaves no trace in the state.
 *
 * Threading: a pipeline belongs to one thread (it owns its state and scratch).
 * Ownership: the pipeline keeps a reference to the program and borrows the store.
 */
#ifndef VG_PIPELINE_H
#define VG_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/event.h"
#include "engine/jsonout.h"
#include "engine/labels.h"
#include "engine/state.h"
#include "rules/program.h"

typedef struct vg_pipeline vg_pipeline_t;

/* A string written into a decision (a feature, a rule's values, a message placeholder) is
 * cut to this many bytes, on a character boundary, and marked with a trailing U+2026; the
 * rules evaluate the whole value. */
#define VG_PIPELINE_OUT_STR 1024

typedef struct vg_pipeline_opts {
    int64_t lateness_ms;         /* default 1 h */
    int64_t dedupe_horizon_ms;   /* default 24 h */
    size_t mem_budget;           /* bytes; 0 = unlimited (only with a store) */
    vg_store_t *store;           /* borrowed; NULL = memory only */
    int64_t ruleset_version;     /* printed as "ruleset" */
    int64_t module_version;      /* printed as each fired rule's "version" (default 1) */
    vg_lists_t *lists;           /* named lists for `in list("..")`; the pipeline takes a
                                    reference; NULL: every list is empty */
    int anomaly;                 /* 0: anomaly scores only when the ruleset reads anomaly.*
                                    (else decisions carry "anomaly":{}); 1: always */
    int reset_mismatch;          /* a store holding state of other rules or options starts
                                    empty instead of being refused (vg_state_opts_t) */
    int *was_reset;              /* set to 1 when that happened; may be NULL */
    int64_t future_ms;           /* > 0: an event more than this ahead of the real-time
                                    clock is rejected with the code `future` and changes
                                    no state (the services); 0: no check (replay) */
} vg_pipeline_opts_t;

typedef enum vg_outcome {
    VG_OUT_BLANK = 0,     /* blank line: no output */
    VG_OUT_DECIDED,       /* accepted and decided */
    VG_OUT_DUPLICATE,     /* duplicate: the original decision was repeated */
    VG_OUT_REJECTED       /* rejected: see vg_pipeline_last_reject() */
} vg_outcome_t;

typedef struct vg_pipeline_stats {
    uint64_t lines, decided, duplicates, rejected;
    uint64_t rejected_by[VG_REJECT__COUNT];
} vg_pipeline_stats_t;

/* Sets the defaults: lateness 1 h, horizon 24 h, no budget, no store, version 1. */
void vg_pipeline_opts_default(vg_pipeline_opts_t *o);

/* Creates a pipeline for program `p`. Returns NULL with a reason in errbuf (e.g. the
 * store holds state made by other rules). */
vg_pipeline_t *vg_pipeline_new(vg_program_t *p, const vg_pipeline_opts_t *o,
                               char *errbuf, size_t errlen);
void vg_pipeline_free(vg_pipeline_t *pl);   /* accepts NULL */

/* vg_pipeline_new for a service restarting over its store (o->store and
 * o->reset_mismatch set): when the store holds state made by other rules, the program
 * that made it is compiled again from its recorded sources ("m/src", engine/state.c),
 * the state is opened with it and carried over to `p` as a live swap would
 * (vg_pipeline_set_program: kept, warm or cold per spec; dedupe history, suppression,
 * baselines and labels kept), and *carried is set; the moved state is written by the
 * next checkpoint. Without such a record (a state of an older vigil, sources over
 * 1 MiB) or when they no longer compile, the state starts empty as vg_pipeline_new
 * says (*o->was_reset). */
vg_pipeline_t *vg_pipeline_open(vg_program_t *p, const vg_pipeline_opts_t *o, int *carried,
                                char *errbuf, size_t errlen);

/* Processes one line (without its newline) and appends its output line to `out`.
 * Sets *outcome. Returns 0; VG_ENOMEM or VG_ESTORE when the engine itself fails (the
 * event is then not processed and the caller should stop). Bad input is never an
 * error of this function: it is a VG_OUT_REJECTED outcome. */
int vg_pipeline_line(vg_pipeline_t *pl, const char *line, size_t len, vg_buf_t *out,
                     vg_outcome_t *outcome);

/* Rejects a line of `len` bytes that the caller could not hold (over the 64 KiB limit)
 * with code too_large, appending the rejection line. Returns 0 or VG_ENOMEM. */
int vg_pipeline_oversize(vg_pipeline_t *pl, size_t len, vg_buf_t *out);
/* The same, given the line's first hlen bytes (head, borrowed; the whole line or a
 * prefix): the rejection names the event's id when they show it (vg_event_peek_id). */
int vg_pipeline_oversize_head(vg_pipeline_t *pl, size_t len, const char *head, size_t hlen,
                              vg_buf_t *out);

/* Replaces the named lists used from the next event on (the pipeline takes a
 * reference to `lists` and drops the old one; NULL: every list empty). Can't fail. */
void vg_pipeline_set_lists(vg_pipeline_t *pl, vg_lists_t *lists);

/* 1 when the last decided event raised an alert (SPEC section 2, Alerts): its decision
 * is block, review or alert and a fired active rule with that action was not
 * suppressed. Can't fail. */
int vg_pipeline_last_alert(const vg_pipeline_t *pl);

/* The last decided event's decision (VG_ACTION_*) and the highest severity among its
 * fired active rules (VG_SEV_*, -1 when none fired; not computed when `severity` is
 * NULL), as its decision line says them;
 * call it right after vg_pipeline_line decided (the severity is read off that event's
 * rule results, which the next line replaces). Can't fail. */
void vg_pipeline_last_decision(const vg_pipeline_t *pl, int *action, int *severity);

/* The code of the last rejection. */
vg_reject_t vg_pipeline_last_reject(const vg_pipeline_t *pl);

/* The account of the last line decided or answered as a duplicate (its bytes, JSON
 * escapes resolved; borrowed until the next line). Can't fail. */
void vg_pipeline_last_account(const vg_pipeline_t *pl, const char **account, size_t *len);

/* Checkpoints the state with the caller's meta records (see vg_state_checkpoint), then
 * evicts cold accounts when over the memory budget. */
int vg_pipeline_checkpoint(vg_pipeline_t *pl, const vg_kv_t *meta, int n_meta, int sync,
                           char *errbuf, size_t errlen);

/* For a caller that writes checkpoints itself (vg_state_checkpoint_some slices, as
 * `vigil serve` does): appends to `b` the pipeline's own meta records, as the full
 * vg_pipeline_checkpoint writes them (the anomaly population, the label windows by key
 * changed since the last call, the label cursor), as "m/" + name puts (copied). The label
 * windows count as written from then on (a failed write loses them until they change
 * again). Without a store, or when the ruleset keeps no such records: appends nothing.
 * Returns 0 or VG_ENOMEM. */
int vg_pipeline_checkpoint_meta(vg_pipeline_t *pl, vg_batch_t *b);

/* A checkpoint written later, by another thread, while events go on: appends to `b`
 * every change since the last checkpoint (vg_state_checkpoint_some, all of them), the
 * pipeline's meta records and the caller's (as "m/" + key). The pipeline goes on taking
 * events; what they change is written by the next checkpoint. Call
 * vg_pipeline_checkpoint_end once `b` was written (written = 1) or will not be
 * (written = 0: the changes stay to be written). Returns 0 or VG_ENOMEM (nothing to end
 * then). */
int vg_pipeline_checkpoint_begin(vg_pipeline_t *pl, const vg_kv_t *meta, int n_meta,
                                 vg_batch_t *b);
/* The same checkpoint with its encoding spread out (engine/state.h, snapshots): the
 * cut is taken now (the pipeline's and the caller's meta records appended to `b` at
 * once), the changed accounts and keys are encoded by vg_pipeline_checkpoint_step, up
 * to max_records per call, or just before an event changes them. *left: the entries not
 * encoded yet; write `b` only once it is 0. End with vg_pipeline_checkpoint_end, like
 * vg_pipeline_checkpoint_begin (an incomplete one counts as not written). Return 0 or
 * VG_ENOMEM (cut: nothing to end; step: end it with written = 0). */
int vg_pipeline_checkpoint_cut(vg_pipeline_t *pl, const vg_kv_t *meta, int n_meta,
                               vg_batch_t *b, size_t *left);
int vg_pipeline_checkpoint_step(vg_pipeline_t *pl, size_t max_records, size_t *left);
void vg_pipeline_checkpoint_end(vg_pipeline_t *pl, int written);

/* Reads a meta record of the last checkpoint. 0, VG_ENOTFOUND or an error. */
int vg_pipeline_meta(vg_pipeline_t *pl, const char *key, vg_buf_t *out);

void vg_pipeline_get_stats(const vg_pipeline_t *pl, vg_pipeline_stats_t *out);

/* ---- labels and anomaly baselines (docs/anomaly.md, docs/rules.md Labels) ---- */

/* Applies one confirmed label now: the event (account, id) is found in the account's
 * label memo (events of the last longest-label-window + lateness); its status is set
 * there (fraud_count/labelled_count of the account) and in the label window of each of
 * its `by` keys used by label aggregates. Later events see it; earlier decisions are not
 * changed. An event not in the memo (processed by rules without label aggregates) is
 * found in the account's dedupe log instead: the label is kept in the memo with the
 * event's time, without key or x values, so that account label aggregates (of these or
 * later rules) count it; with label aggregates, only when the event is within the
 * memo's horizon. A label for an unknown or forgotten event is counted as unmatched and
 * changes nothing. Relabelling (fraud -> genuine) replaces the status. Strings are
 * borrowed for the call. The change is kept with the account and checkpointed like any
 * other. This is the entry point for
 * `POST /v1/labels`. Returns 0, VG_ENOMEM or VG_ESTORE (fatal, like vg_pipeline_line). */
int vg_pipeline_label(vg_pipeline_t *pl, const vg_label_t *lb);

/* Gives the pipeline a label list (borrowed; must outlive the pipeline or the next
 * call): before each event whose time is t, the labels not applied yet with at <= t are
 * applied, in list order. The position in the list is checkpointed ("labels/next") and
 * restored when the pipeline is created on a stored state, so a resumed replay goes on
 * with the same list. Can't fail. */
void vg_pipeline_set_labels(vg_pipeline_t *pl, const vg_labels_t *labels);

/* Applies the labels of the list not applied yet with at <= t (what the next event of
 * time t does first). `vigil replay --partitions N` calls it on every partition before
 * each event, so that a label is applied in its account's partition before the first
 * event of the whole stream at or after its time, as in one pipeline. Returns 0,
 * VG_ENOMEM or VG_ESTORE. */
int vg_pipeline_labels_until(vg_pipeline_t *pl, int64_t t);

/* The account's state for GET /v1/accounts/{account} (SPEC section 6), appended to out
 * as JSON object members without the braces: "newest" (its newest event's time),
 * "recent_decisions" (its remembered decisions, the latest arrival first, at most max:
 * vg_state_recent), "sessions" (one per session gap of the rules, as of the newest
 * event: gap_seconds, start, last, open_until, events) and "baseline" (its anomaly
 * baseline: vg_anomaly_describe; null without anomaly models or before its first
 * event). The account is not created. Returns 0, VG_ENOTFOUND (no state here),
 * VG_ENOMEM or VG_ESTORE (out is then as it was). */
int vg_pipeline_account_view(vg_pipeline_t *pl, const char *account, size_t len, int max,
                             vg_buf_t *out);

/* Resets an account's anomaly baseline (vg_state_reset_baseline). For the HTTP API. */
int vg_pipeline_reset_baseline(vg_pipeline_t *pl, const char *account, size_t len);

/* The last decided event's decision score and anomaly.score (NaN when anomaly scores are
 * not computed). Can't fail. */
void vg_pipeline_last_scores(const vg_pipeline_t *pl, double *score, double *anomaly);

/* Labels applied (matched an event) and unmatched so far. Can't fail. */
void vg_pipeline_label_stats(const vg_pipeline_t *pl, uint64_t *applied, uint64_t *unmatched);
vg_state_t *vg_pipeline_state(vg_pipeline_t *pl);

/* A hint that the event `line` (len bytes, raw JSON) comes soon, for callers that hold
 * events ahead (a replay's read-ahead, a consumed batch): finds its account's raw bytes
 * (vg_peek_account; none found: nothing) and prefetches its state in stages
 * (vg_prefetch_event). Changes nothing, allocates nothing; can't fail. */
void vg_pipeline_prefetch(vg_pipeline_t *pl, const char *line, size_t len, int stage);

/* The prefetch of one stage (vg_state_prefetch_hashed: 0, then 1, then 2, some events
 * apart) for the event `line` whose account has hash h in st; at stage 2 also the slot
 * of the account's id index that the duplicate check reads, when it keeps one. For
 * callers that keep each event's hash between the stages. Can't fail. */
void vg_prefetch_event(const vg_state_t *st, uint64_t h, const char *line, size_t len,
                       int stage);

/* The raw bytes of the event line's account (the first "account":"..." string, without
 * escapes): their length, or 0 when not found simply (vg_peek_string). */
uint32_t vg_peek_account(const char *line, size_t len, const char **acct);

/* The raw bytes of the first string value of `key` (given with its quotes, colon and
 * opening quote: "\"account\":\"", kl bytes) in a JSON line, when it has no escape;
 * returns its length, or 0 (not found simply). Reads only the line. */
uint32_t vg_peek_string(const char *line, size_t len, const char *key, size_t kl,
                        const char **val);

/* ---- ruleset swap ---- */

/* Swaps the ruleset between two events: the next line is processed with `p` (the
 * pipeline takes a reference and drops the old program). State carries over
 * (vg_state_set_program): window specs with the same canonical text (and `by` key
 * text) keep their state exactly, new ones start cold or warm (docs/rules.md, Modules
 * and versions), removed ones are freed; dedupe logs, suppression times, anomaly
 * baselines and population, label memos are kept; label windows by key are kept when
 * the longest label window and the label `by` groups are unchanged, else they start
 * empty. Versions printed stay as they were (vg_pipeline_set_versions). With a store,
 * the next vg_pipeline_checkpoint writes the whole moved state atomically. Returns 0,
 * or VG_ENOMEM / VG_ESTORE / VG_EINVAL with a reason in errbuf: the pipeline then goes
 * on with the old program, unchanged. */
int vg_pipeline_set_program(vg_pipeline_t *pl, vg_program_t *p, char *errbuf, size_t errlen);

/* The program the pipeline runs (borrowed). Can't fail. */
vg_program_t *vg_pipeline_program(const vg_pipeline_t *pl);

/* Sets the "ruleset" and per-rule "version" printed in decisions from the next event
 * (module_version < 0: unchanged). Can't fail. */
void vg_pipeline_set_versions(vg_pipeline_t *pl, int64_t ruleset_version,
                              int64_t module_version);

#endif
