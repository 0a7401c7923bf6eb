/* window.h - the exact event-time state of one key: sliding windows, sessions, history.
 *
 * A key is an account, or one value of a `by K` expression. Every spec (rules/program.h)
 * of one key group (the account group, by_group == -1, or one by-group) is kept in one
 * vg_wstate_t: a time-ordered log of the key's recent events (the events inside the
 * group's longest window plus the allowed lateness, plus the newest event before that
 * span, so that prev() and sessions always find their predecessor) and, per spec, the
 * running state that makes an in-order event cost O(1) amortized:
 *   count/sum/avg/stddev: running sums over the frontier window, compensated and
 *     recomputed when the window empties or drifts;
 *   min/max: a monotonic deque; distinct/seen: a value->count hash table;
 *   sessions: per event, the run (first time, count, sum) that ends at it;
 *   prev: the predecessor in the log.
 * An out-of-order event (older than the key's newest, within the lateness) is inserted
 * at its place by time (equal times: after the events already there) and its values
 * are computed over [t - w, t] among the events that have arrived so far.
 *
 * Costs (engine/window.c has the details): an in-order event is O(1) amortized per
 * spec; a late event costs O(log n + rows between it and the newest) per spec (rows
 * within the lateness span; min/max read the window's settled rows from a second deque,
 * kept up to date by the late events, O(1) amortized per row). Memory: the retained rows (8 bytes per
 * word: 1 + 1 flag word per 64 count specs + 1 per sum/avg/min/max/stddev/distinct/seen,
 * 2 per prev, 5 per session_sum, 2 per other session gap (session specs of one gap
 * share their run); the array grows from 4 rows,
 * doubling up to 16, then by half), plus prev() string bytes, plus one block per state of ~100 bytes,
 * 8 per distinct window width (the frontier's left end, shared by the specs of that
 * width) and 8 (count), 32 (min/max), 24 (distinct/seen), 48 (sum/avg) or 64 (stddev) bytes
 * per windowed spec, plus, once a window holds more than 8 rows, per min/max spec a deque (and after a late event a deque of its settled rows) and per
 * distinct/seen spec a hash table of the window (smaller windows are scanned).
 * Numbers returned are always finite (a non-finite sum reads null).
 * distinct/seen compare 64-bit hashes of the values (numbers exactly, by value).
 *
 * A vg_wlayout_t describes, for one key group of a program, which specs it holds and
 * how an event's inputs are stored; it is immutable and shared by every vg_wstate_t of
 * that group.
 *
 * Threading: a vg_wstate_t belongs to one thread. Ownership: the caller owns layouts
 * and states (free with vg_wlayout_free / vg_wstate_free, both accept NULL); a state
 * keeps a pointer to the layout it was made with, which must outlive it. Strings
 * returned in `vals` (prev() of a string) borrow from the state and stay valid until
 * the next vg_wstate_add() or vg_wstate_free() on that state.
 */
#ifndef VG_WINDOW_H
#define VG_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "engine/jsonout.h"
#include "rules/arena.h"
#include "rules/program.h"

typedef struct vg_wlayout vg_wlayout_t;
typedef struct vg_wstate vg_wstate_t;

/* Builds the layout of key group `by_group` (-1: the account) of program `p`, for the
 * allowed lateness `lateness_ms`: the program's specs whose by_group equals `by_group`
 * (prev, seen and the session specs always belong to the account group, -1). The log
 * keeps the group's longest aggregate/seen window plus the lateness. Returns NULL when
 * out of memory. The layout keeps a reference to `p` (vg_prog_ref) and releases it in
 * vg_wlayout_free(). */
vg_wlayout_t *vg_wlayout_new(vg_program_t *p, int by_group, int64_t lateness_ms);
/* Builds a layout directly from `n` specs (the caller has already selected one key
 * group's specs; `by_group` of each is ignored), for tests and tools that have no
 * compiled program. `spec_index[i]` is the program spec index of specs[i]: the index
 * into the `in` and `vals` arrays of vg_wstate_add(); NULL means 0 .. n-1. The specs
 * are copied (their `text` is only read, for the fingerprint), so the caller keeps
 * ownership of both arrays. A layout with n == 0 is valid (it holds no state).
 * Returns NULL when out of memory or n < 0. Free with vg_wlayout_free(). */
vg_wlayout_t *vg_wlayout_new_specs(const vg_spec_t *specs, const int *spec_index, int n,
                                   int64_t lateness_ms);
void vg_wlayout_free(vg_wlayout_t *l);
/* Number of specs in this group (0: the group needs no state). */
int vg_wlayout_nspecs(const vg_wlayout_t *l);
/* A 64-bit fingerprint of the layout (specs, their texts, lateness): an encoded state
 * is only decoded by a layout with the same fingerprint. */
uint64_t vg_wlayout_fingerprint(const vg_wlayout_t *l);

/* A new empty state. Returns NULL when out of memory. */
vg_wstate_t *vg_wstate_new(const vg_wlayout_t *l);
/* Frees the state and what it holds; a state made by vg_wstate_init_at() leaves the
 * caller's block alone. Accepts NULL. */
void vg_wstate_free(vg_wstate_t *w);
/* Bytes of the fixed part of a state of layout `l`, for embedding it in a caller's
 * allocation (one allocation per key instead of two). Can't fail. */
size_t vg_wstate_size(const vg_wlayout_t *l);
/* Makes a new empty state in `mem` (vg_wstate_size(l) bytes, 8-byte aligned, owned by
 * the caller, which must outlive the state; vg_wstate_free() then frees only what the
 * state allocated). Can't fail. */
vg_wstate_t *vg_wstate_init_at(void *mem, const vg_wlayout_t *l);
/* The rows (at most 4) that fit in 64 bytes for layout `l`, 0 when fewer than 2 do: a
 * state made by vg_wstate_init_rows_at() keeps its first rows in its own block. Can't
 * fail. */
size_t vg_wstate_inline_rows(const vg_wlayout_t *l);
/* Bytes of one row of layout `l`. Can't fail. */
size_t vg_wlayout_row_bytes(const vg_wlayout_t *l);
/* vg_wstate_init_at() in a block of vg_wstate_size(l) + nrows rows (nrows from
 * vg_wstate_inline_rows): the log lives in the block's last nrows rows until it needs
 * more (then it moves to an allocation of its own), so that a key with few events (a
 * `by K` key) costs one allocation and one cache miss fewer. Can't fail. */
vg_wstate_t *vg_wstate_init_rows_at(void *mem, const vg_wlayout_t *l, size_t nrows);

/* A hint that the state will be updated soon: prefetches its newest and oldest rows.
 * Changes nothing; can't fail. */
void vg_wstate_prefetch(const vg_wstate_t *w);

/* Time of the newest event added, or INT64_MIN when none. Can't fail. */
int64_t vg_wstate_newest(const vg_wstate_t *w);

/* Adds one event at time `ts` (the caller has already checked that ts is not older
 * than newest - lateness) and computes this group's specs for it.
 * `in` and `vals` are indexed by the program's spec index (only this group's entries
 * are read and written). A spec whose input says keep == 0, or whose x is null for an
 * aggregate that needs x, does not add the event to that spec but still gets its value.
 * `keep` is only read for specs with has_where (others always keep the event). An
 * event older than newest - lateness (a broken contract) is not rejected: it is placed
 * like a late one among the rows still retained, and may get approximate values.
 * `scratch` may be used for temporary memory (it is reset by the caller per event; NULL:
 * late distinct() uses malloc). An in-order event never allocates once the state's
 * arrays have grown.
 * Returns 0, or VG_ENOMEM (the state is then unchanged). */
int vg_wstate_add(vg_wstate_t *w, const vg_wlayout_t *l, int64_t ts,
                  const vg_spec_input_t *in, vg_value_t *vals, vg_arena_t *scratch);

/* One session of a key as of its newest event (an account view): the run of events
 * with gaps of at most `gap` that ends at the newest event. */
typedef struct vg_wsession {
    int64_t gap;           /* ms */
    int64_t start, last;   /* times of its first and last (the newest) event, ms */
    int64_t events;
} vg_wsession_t;

/* The sessions of the newest event, one per distinct session gap of the layout (in the
 * layout's order), at most max. Returns how many were written (0: no session spec, or
 * no event). A gap whose spec came with a ruleset swap after the newest event has no
 * run yet and is left out. Can't fail. */
int vg_wstate_sessions(const vg_wstate_t *w, const vg_wlayout_t *l, vg_wsession_t *out,
                       int max);

/* Bytes of memory held by the state (for the memory budget), without the caller's
 * block for an embedded state. Can't fail. */
size_t vg_wstate_mem(const vg_wstate_t *w);
/* The same counted afresh from every structure (tests: the two must agree). */
size_t vg_wstate_mem_recount(const vg_wstate_t *w);

/* Appends a self-contained encoding of the state to `out`. Returns 0 or VG_ENOMEM. */
int vg_wstate_encode(const vg_wstate_t *w, const vg_wlayout_t *l, vg_buf_t *out);
/* Decodes an encoding made by vg_wstate_encode() with a layout of the same
 * fingerprint. Returns the state, or NULL when the bytes are corrupt or memory runs
 * out (errbuf says which). A decoded state behaves exactly like the encoded one. */
vg_wstate_t *vg_wstate_decode(const vg_wlayout_t *l, const void *p, size_t n,
                              char *errbuf, size_t errlen);

/* ---- incremental encoding (the account records of engine/state.c) ----
 *
 * The rows of a state are addressed by absolute position, [first, end). A caller that
 * stores the rows apart from the rest writes the head (vg_wstate_encode_head: all but
 * the rows and their strings) and the rows in pieces (vg_wstate_encode_rows), and
 * rewrites only the pieces at or after the position that vg_wstate_dirty reports
 * (rows appended, or moved by a late event, since vg_wstate_set_clean). Rows before
 * `first` are gone: pieces entirely before it can be deleted, and a piece that starts
 * before it is read from `first` on. vg_wstate_decode_parts puts a state back together
 * from the head and its pieces (in position order, covering [first, end)); it is the
 * state vg_wstate_decode would give for the whole encoding. */
int64_t vg_wstate_first(const vg_wstate_t *w);
int64_t vg_wstate_end(const vg_wstate_t *w);
int vg_wstate_dirty(const vg_wstate_t *w, int64_t *from);
void vg_wstate_set_clean(vg_wstate_t *w);
void vg_wstate_set_dirty(vg_wstate_t *w, int64_t from);   /* from the lower of the two */
int vg_wstate_encode_head(const vg_wstate_t *w, const vg_wlayout_t *l, vg_buf_t *out);
/* The rows [from, to) (within [first, end)): i64 start, u32 count, the rows, their
 * prev() strings. */
int vg_wstate_encode_rows(const vg_wstate_t *w, const vg_wlayout_t *l, int64_t from,
                          int64_t to, vg_buf_t *out);
typedef struct vg_wpart {
    const void *p;
    size_t n;
} vg_wpart_t;
vg_wstate_t *vg_wstate_decode_parts(const vg_wlayout_t *l, const void *head, size_t hn,
                                    const vg_wpart_t *parts, size_t nparts, char *errbuf,
                                    size_t errlen);

/* ---- late-event counters ----
 *
 * Process-wide counters of the late (out-of-order) events added to any state since the
 * start, for monitoring: late_events, the rows moved to make room for them (the rows
 * after each one's place: its cost grows with them), and the rows read to compute their
 * values and keep min/max up to date (window.c "Late event"). A late event for a key
 * whose events mostly come late (sources with skewed clocks feeding one `by K` key)
 * shows as rows_moved / late_events in the thousands. Relaxed atomic counters, updated
 * only by late events. Can't fail. */
typedef struct vg_wstats {
    uint64_t late_events;
    uint64_t rows_moved;
    uint64_t rows_read;
} vg_wstats_t;
void vg_wstats_get(vg_wstats_t *out);

/* ---- ruleset swap ----
 *
 * A spec of a new layout continues a spec of an old layout when both have the same
 * kind, window (or gap), arguments and canonical text (vg_spec_t.text): its state is
 * carried over exactly. Another new spec starts cold (as if the key had no events
 * before the swap), except when its window W is at most the old layout's longest (same
 * lateness), so that the log holds every event W can reach, and its row words can be
 * rebuilt: count(W) without `where` (every row counts), or a spec of the same row family
 * (count; sum/avg/min/max/stddev; distinct/seen) with the same x and `where` text in
 * the old layout: it then starts warm, exactly. A new session spec whose gap equals a
 * kept session spec's shares its
 * run (so a new session_sum of that gap sums only the events after the swap over the
 * run in progress). */

/* 1 when spec j of `ln` starts with state from `lo` (kept or warm, see above); 0 when
 * it starts cold (or j is out of range). Can't fail. */
int vg_wlayout_warm(const vg_wlayout_t *lo, const vg_wlayout_t *ln, int j);

/* A new state of layout `ln` holding what state `w` (of layout `lo`) holds for the specs
 * `ln` keeps (see above); `w` is not changed (the caller frees it, and keeps `lo` alive
 * until then). Costs O(rows x specs). Returns NULL when out of memory. Free with
 * vg_wstate_free(). */
vg_wstate_t *vg_wstate_migrate(const vg_wlayout_t *lo, const vg_wlayout_t *ln,
                               const vg_wstate_t *w);

#endif
