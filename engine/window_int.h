/* window_int.h - internals shared by window.c (updates) and window_codec.c (encoding).
 *
 * Not an interface: only the engine/window_*.c files include it. See window.c for the
 * design (row layout, frontier state, costs).
 */
#ifndef VG_WINDOW_INT_H
#define VG_WINDOW_INT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/window.h"

/* One 64-bit word of a row: an event time, an x, a hash, a count, ... */
typedef union word {
    uint64_t u;
    int64_t i;
    double d;
} word_t;

/* One spec of a layout. */
typedef struct lspec {
    int kind;          /* vg_spec_kind_t */
    int has_x, has_where;
    int64_t w;         /* window (aggregates, seen) or gap (sessions), >= 0 */
    int pidx;          /* program spec index: index into `in` and `vals` */
    int off;           /* COUNT: bit index in the flag words; else word offset in a row */
    int soff;          /* windowed kinds: byte offset of its sstate_t in the state's
                          frontier block (see ss_bytes); others -1 */
    int wg;            /* windowed kinds: its width's index among the layout's widths
                          (the frontier block starts with their L, wlp); others -1 */
    uint64_t th;       /* hash of the spec's canonical text (0: none): the identity of a
                          spec across programs (vg_wstate_migrate) */
    uint64_t sig;      /* hash of its inputs' text (x and `where`; 0: unknown): specs of
                          one family with the same sig store the same row words */
} lspec_t;

struct vg_wlayout {
    vg_program_t *prog;    /* referenced, or NULL (vg_wlayout_new_specs) */
    lspec_t *s;
    int n;
    int rw;                /* words per row: ts, flag words, slots */
    int nprev;             /* number of prev specs */
    int nsess;             /* number of session specs */
    /* the specs of each kind of per-event work, so that an add visits only those
     * (indexes into s, in order; one allocation, `ix`): windowed (frontier state),
     * min/max/distinct/seen (a deque or table), prev, session */
    int *ix;
    int *ix_win, *ix_ds, *ix_prev, *ix_sess;
    lspec_t *win;          /* copies of the windowed specs in the order of ix_win */
    int nwin, nds;
    /* ix_win is sorted by window width; the nwg distinct widths are numbered in that
     * order (lspec_t.wg), and the specs of one width share their left end L */
    int nwg;
    /* for building a row (build_row): counts with `where`, the kinds that store x or
     * NaN (sum, avg, min, max, stddev), the hashed kinds (distinct, seen), also in `ix`;
     * and the flag words with the bits of the counts without `where` set (every row
     * counts for them), nflag words */
    int *ix_cw, *ix_x, *ix_h;
    int ncw, nx, nh, nflag;
    uint64_t *cmask;
    int64_t maxw;          /* longest aggregate/seen window */
    int64_t lateness;
    uint64_t fp;
    size_t ssbytes;        /* bytes of the frontier block of a state: nwg L's, then the
                              specs' states */
};

/* For the small functions of the per-event path (row_acc, fr_move, settle, agg_value):
 * called per row and spec with constant arguments, inlined they cost a fraction of a
 * call (callgrind, bench.vrl: -440 instructions per event for the four). */
#define VG_INLINE static inline __attribute__((always_inline))

/* Compensated (Neumaier) sum: the value is s + c. */
typedef struct ksum {
    double s, c;
} ksum_t;

/* Count and sums of one window (or of a range of rows). A frontier state keeps only a
 * prefix (ss_bytes): a count spec's stops after cnt, a sum's or avg's before s2. */
typedef struct acc {
    int64_t cnt;
    double sabs;   /* sum of |x| (plain: only a trigger for recomputing) */
    double hw;     /* largest |x| added or removed since the sums were recomputed */
    ksum_t s1;     /* sum of x */
    int64_t ops;   /* rows moved in or out since the sums were last recomputed */
    ksum_t s2;     /* sum of x*x (stddev only), each square added exactly as hi + lo */
} acc_t;

/* Monotonic deque of absolute row positions (min/max), a ring of power-of-2 capacity. */
typedef struct dq {
    int64_t *v;
    uint32_t cap, head, n;
    struct dqf *fz;   /* the settled part's deque (window.c, late_extreme), or NULL */
} dq_t;

/* The monotonic deque of the frontier's settled rows [L, b): rows older than the
 * newest - lateness, which no allowed late event can move (a late row goes after them).
 * Built at the first late event that needs it and brought up to date by each such
 * event; b < 0: not valid (a row was inserted before b). A cache: a function of the
 * rows, never encoded. */
typedef struct dqf {
    int64_t b;
    dq_t d;
} dqf_t;

/* Open-addressing (linear probing) table: value hash -> count. Key 0 means empty. */
typedef struct htab {
    uint64_t *k;
    uint32_t *c;
    uint32_t cap, n;
} htab_t;

/* The frontier state of one windowed spec, over the rows [L, end) with ts >= newest -
 * w, where L (the absolute position of the frontier's first row) is kept once per
 * window width (wlp): specs of one width share it. Only the member of the union that
 * the spec's kind uses exists, and of acc_t only a prefix: a state's specs are packed
 * in one block, each taking ss_bytes(kind) bytes, so code must never touch another
 * kind's member, nor a count's sums, nor a sum's or avg's s2. */
typedef union sstate {
    acc_t a;       /* count: a.cnt only; sum/avg: up to ops; stddev: all */
    dq_t dq;       /* min, max; cap 0: no deque, the frontier is scanned (small) */
    htab_t ht;     /* distinct, seen; cap 0: no table, the frontier is scanned */
} sstate_t;

/* |x| from which a value may overflow the running sums (window.c, "Huge values"):
 * while the largest |x| since the last recompute (acc.hw) is this large, the sums may
 * be infinite or NaN and are not used. */
#define HUGE_X 0x1p480

/* A frontier of at most this many rows is scanned instead of keeping a min/max deque
 * or a distinct/seen table; the structure is built when the frontier grows past it
 * and dropped when it shrinks to SMALL_DROP rows or fewer. */
#define SMALL_ROWS 8
#define SMALL_DROP 2

struct vg_wstate {
    const vg_wlayout_t *lay;   /* the layout it was made with (outlives the state) */
    int64_t newest;        /* INT64_MIN when empty; else the last row's time */
    int64_t first;         /* absolute position of the oldest row */
    word_t *rows;          /* rows[head .. head + n) (times rw words) is the log */
    size_t cap, head, n;   /* in rows */
    word_t *tmp;           /* one row for layouts too wide for the stack, else NULL */
    char *sb;              /* prev() string bytes; rows hold offsets */
    size_t sb_len, sb_cap, sb_dead;
    int embedded;          /* in a caller's block (vg_wstate_init_at): not freed */
    int rows_inline;       /* rows in the caller's block (vg_wstate_init_rows_at): not
                              freed, not reallocated, not counted by vg_wstate_mem */
    int rw;                /* words per row (of the layout) */
    int dirty;             /* rows from position dfrom on changed since vg_wstate_clean */
    int64_t dfrom;
    size_t dsmem;          /* bytes of the min/max deques and distinct/seen tables, kept
                              by every change of them (vg_wds_mem) for vg_wstate_mem */
    uint64_t ssb[];        /* the specs' frontier states (lspec_t.soff), ssbytes */
};

/* The frontier state of windowed spec s. */
static inline sstate_t *wss(const vg_wstate_t *w, const lspec_t *s) {
    return (sstate_t *)(void *)((unsigned char *)w->ssb + s->soff);
}

/* The left end L of windowed spec s's frontier (shared by the specs of its width). */
static inline int64_t *wlp(const vg_wstate_t *w, const lspec_t *s) {
    return (int64_t *)(void *)w->ssb + s->wg;
}

/* Row at absolute position pos. */
static inline word_t *wrow(const vg_wstate_t *w, const vg_wlayout_t *l, int64_t pos) {
    return w->rows + (w->head + (size_t)(pos - w->first)) * (size_t)l->rw;
}

#define DQ_AT(d, i) ((d)->v[((d)->head + (uint32_t)(i)) & ((d)->cap - 1)])

static inline int kind_windowed(int k) {
    return k <= VG_SPEC_DISTINCT || k == VG_SPEC_SEEN;
}
static inline int kind_sumlike(int k) {
    return k == VG_SPEC_SUM || k == VG_SPEC_AVG || k == VG_SPEC_STDDEV;
}
static inline int kind_minmax(int k) { return k == VG_SPEC_MIN || k == VG_SPEC_MAX; }
static inline int kind_hashed(int k) { return k == VG_SPEC_DISTINCT || k == VG_SPEC_SEEN; }
static inline int kind_xagg(int k) { return k >= VG_SPEC_SUM && k <= VG_SPEC_STDDEV; }
static inline int kind_session(int k) {
    return k >= VG_SPEC_SESSION_COUNT && k <= VG_SPEC_SESSION_DURATION;
}

/* Bytes of a spec's frontier state in the block (0: not windowed). */
static inline size_t ss_bytes(int kind) {
    if (kind == VG_SPEC_COUNT) return sizeof(int64_t);
    if (kind == VG_SPEC_STDDEV) return sizeof(acc_t);
    if (kind_sumlike(kind)) return offsetof(acc_t, s2);
    if (kind_minmax(kind)) return sizeof(dq_t);
    if (kind_hashed(kind)) return sizeof(htab_t);
    return 0;
}

/* Copies the part of a frontier's count and sums that spec kind `kind` keeps. */
static inline void acc_copy(acc_t *dst, const acc_t *src, int kind) {
    memcpy(dst, src, ss_bytes(kind));
}

/* a - b, clamped to the int64 range (an overflow goes past the end b's sign points
 * away from) */
static inline int64_t sat_sub(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) return b > 0 ? INT64_MIN : INT64_MAX;
    return r;
}

/* Prev slot: word 0 the payload (string: offset into sb), word 1 type | len << 32. */
static inline int prev_type(const word_t *q) { return (int)(q[1].u & 0xff); }
static inline uint32_t prev_len(const word_t *q) { return (uint32_t)(q[1].u >> 32); }
static inline int type_is_str(int t) { return t == VG_T_STR || t == VG_T_JSON; }

/* A 64-bit hash of bytes (murmur3-like lane, then the 64-bit finalizer). Stable across
 * machines (reads little-endian). Can't fail. */
uint64_t vg_whash_bytes(uint64_t seed, const void *data, size_t n);

/* Frontier maintenance shared with the decoder. */
int vg_wdq_reserve(dq_t *d);
void vg_wdq_push(dq_t *d, const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                 int64_t pos);
int vg_wht_resize(htab_t *h, uint32_t cap);
void vg_wht_inc(htab_t *h, uint64_t key);
/* Builds the deque (min/max) or table (distinct/seen) of a scanned frontier [L, end).
 * Returns 0 or VG_ENOMEM. */
int vg_wss_build(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s, sstate_t *ss);
int vg_wstate_reserve_rows(vg_wstate_t *w, const vg_wlayout_t *l, size_t extra);
/* Bytes of the deques and tables of state w, counted (the value of w->dsmem). */
size_t vg_wds_mem(const vg_wstate_t *w, const vg_wlayout_t *l);
int64_t vg_wlower_bound(const vg_wstate_t *w, const vg_wlayout_t *l, int64_t t);

#endif
