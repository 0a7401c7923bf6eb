/* window.c - the exact event-time state of one key: windows, sessions, history.
 *
 * Design (see window.h for the contract).
 *
 * The log. A state keeps one time-ordered log of rows, the key's retained events. A
 * row is a fixed array of 64-bit words whose layout the vg_wlayout_t computes:
 *   word 0            event time (ms);
 *   flag words        one bit per count spec: the event is kept (`where` holds);
 *   per spec slots    sum/avg/min/max/stddev: x, or NaN when not added (null x, where);
 *                     distinct/seen: the 64-bit hash of x's type and bytes (numbers by
 *                       value, -0 == 0), 0 when not added;
 *                     session_count/duration: first time and event count of the run that
 *                       ends at this row (one copy per gap, shared by the session specs
 *                       of that gap); session_sum also x and the run's compensated sum;
 *                     prev: x's payload and type (strings: offset and length into the
 *                       state's byte store `sb`, compacted when half of it is dead).
 * The log is one array with a moving head (rows[head .. head+n)); rows are addressed
 * by absolute position (first + i), so that positions kept in deques survive dropping
 * old rows. Retention: every row with ts >= newest - maxW - lateness, plus the newest
 * row before that span (the predecessor of any allowed late event, for prev/sessions).
 * Memory per row: 8 bytes per word (typically 8 + 8 + 8-16 per spec), the array grows
 * from 4 rows, doubling up to 16, then by half, and shrinks when 8x too large.
 *
 * The frontier. For each windowed spec of width w the state keeps the window
 * [newest - w, newest] as a left position L into the log (one L per distinct width,
 * shared by the specs of that width, whose frontiers are the same rows) and:
 *   count/sum/avg/stddev: the count and Neumaier-compensated sums of x and of x^2 (each
 *     square added exactly as fma hi + lo); reset to exact zero when the window empties,
 *     recomputed from the log when more than 2*(rows in window) + 64 rows have moved
 *     in or out since the last recompute (O(1) amortized); stddev is evaluated in
 *     double-double arithmetic (S2 - S1^2/n)/n, so that it stays exact to ~1e-16 of
 *     the values even for a tiny variance;
 *   min/max: a monotonic deque of positions (strictly increasing values for min);
 *   distinct/seen: a hash table value-hash -> count of the rows in the window;
 *   but a frontier of at most SMALL_ROWS rows (most keys: a few events per window)
 *   has no deque or table: its value is computed by scanning its rows, and the
 *   structure is built from the rows when the frontier grows past that and freed
 *   when it falls to SMALL_DROP rows. Both ways give the same values.
 * The frontier states of a key's specs share one allocation with the key's state
 * (each kind takes only the bytes it uses: a count no sums, a sum or avg no sum of
 * squares), so a new key costs two allocations
 * (state, rows) plus the prev() string store when there are strings.
 * Hash collisions of distinct/seen values (64-bit) are ignored: about 1 in 1e10 for
 * 1e5 distinct values in one window. Numbers hash by a bijection of their bits, so two
 * distinct numbers never collide.
 *
 * In-order event (ts >= newest): append the row; per spec move L past rows older than
 * ts - w (removing them), add the row, read the value. O(1) amortized per spec.
 *
 * Late event (ts < newest, within the lateness): its row goes after the rows with time
 * <= ts (position k). Its own values are computed first, from the state before the
 * insertion: its window [ts - w, ts] holds the rows [a, k) plus itself. For
 * count/sum/avg/stddev/distinct/seen this is the frontier minus the rows [k, end)
 * (times in (ts, newest]) plus the rows [a, L) (times in [ts - w, newest - w)), or the
 * rows [a, k) directly, whichever is shorter: both are bounded by the rows within the
 * lateness span. min/max use the frontier's extreme when it lies before k, plus a scan
 * of [a, L); otherwise the extreme of the settled rows [L, b) (late_settled: a second
 * deque, of rows older than newest - lateness, which no allowed late event moves) plus
 * scans of [a, L) and [b, k), within the lateness span.
 * Then the row is inserted (memmove of the rows after it), the frontiers that contain
 * ts take it in (deque fix-up: O(rows after k) amortized), and the session runs of the
 * rows after it are recomputed. All of that is bounded by the rows in the lateness span.
 *
 * Failure: every allocation of an add (log, byte store, deques, tables, scratch) is
 * made before the state changes, so VG_ENOMEM leaves the state unchanged.
 */
#include "engine/window.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/window_int.h"
#include "rules/errors.h"

/* ---- late-event counters (vg_wstats_get), process-wide ---- */

static _Atomic uint64_t st_late, st_moved, st_read;

void vg_wstats_get(vg_wstats_t *out) {
    out->late_events = atomic_load_explicit(&st_late, memory_order_relaxed);
    out->rows_moved = atomic_load_explicit(&st_moved, memory_order_relaxed);
    out->rows_read = atomic_load_explicit(&st_read, memory_order_relaxed);
}

/* ---- hashing ---- */

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static inline uint64_t lane(uint64_t k) {
    k *= 0x87c37b91114253d5ULL;
    k = rotl64(k, 31);
    k *= 0x4cf5ad432745937fULL;
    return k;
}

uint64_t vg_whash_bytes(uint64_t seed, const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = fmix64(seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ULL));
    while (n >= 8) {
        uint64_t k = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
                     (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
                     (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
        h ^= lane(k);
        h = rotl64(h, 27) * 5 + 0x52dce729;
        p += 8;
        n -= 8;
    }
    if (n) {   /* the same little-endian word of the tail's bytes */
        uint64_t k = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if (n >= 4) {   /* two overlapping 4-byte loads (a 7-byte value: 2, not 7) */
            uint32_t lo, hi;
            memcpy(&lo, p, 4);
            memcpy(&hi, p + n - 4, 4);
            k = (uint64_t)lo | (uint64_t)hi << (8 * (n - 4));
        } else {
            k = (uint64_t)p[0] | (uint64_t)p[n / 2] << (8 * (n / 2)) |
                (uint64_t)p[n - 1] << (8 * (n - 1));
        }
#else
        for (size_t i = 0; i < n; i++) k |= (uint64_t)p[i] << (8 * i);
#endif
        h ^= lane(k);
    }
    return fmix64(h);
}

/* Hash of a value by type and bytes; 0 for null (and never 0 otherwise). */
static uint64_t vhash(const vg_value_t *v) {
    uint64_t bits;
    switch (v->type) {
    case VG_T_BOOL: bits = v->u.b ? 1 : 0; break;
    case VG_T_NUM: {
        double d = v->u.n;
        if (d != d) return 0;
        if (d == 0) d = 0.0;   /* -0 == 0 */
        memcpy(&bits, &d, 8);
        break;
    }
    case VG_T_TIME:
    case VG_T_DUR: bits = (uint64_t)v->u.ms; break;
    case VG_T_STR:
    case VG_T_JSON: {
        uint64_t h = vg_whash_bytes(0x5bd1e9955bd1e995ULL + v->type, v->u.s.p, v->u.s.len);
        return h ? h : 1;
    }
    default: return 0;
    }
    /* a bijection of the bits per type: distinct numbers never collide */
    uint64_t h = fmix64(bits ^ (0x9E3779B97F4A7C15ULL * (uint64_t)(v->type + 1)));
    return h ? h : 1;
}

/* ---- compensated and double-double arithmetic ---- */

static inline void ks_add(ksum_t *k, double v) {
    double t = k->s + v;
    if (fabs(k->s) >= fabs(v))
        k->c += (k->s - t) + v;
    else
        k->c += (v - t) + k->s;
    k->s = t;
}

static inline double ks_val(ksum_t k) { return k.s + k.c; }

typedef struct dd {
    double hi, lo;
} dd_t;

static inline dd_t two_sum(double a, double b) {
    double s = a + b, bb = s - a;
    dd_t r = {s, (a - (s - bb)) + (b - bb)};
    return r;
}
static inline dd_t dd_add(dd_t a, dd_t b) {
    dd_t s = two_sum(a.hi, b.hi);
    return two_sum(s.hi, s.lo + a.lo + b.lo);
}
static inline dd_t dd_mul(dd_t a, dd_t b) {
    double p = a.hi * b.hi;
    double e = fma(a.hi, b.hi, -p) + (a.hi * b.lo + a.lo * b.hi);
    return two_sum(p, e);
}
static inline dd_t dd_div_d(dd_t a, double b) {
    double q1 = a.hi / b, p = q1 * b, pe = fma(q1, b, -p);
    double r = ((a.hi - p) - pe) + a.lo;
    return two_sum(q1, r / b);
}

/* Population variance from count and sums, in double-double; >= 0. */
static double variance(const acc_t *a) {
    double n = (double)a->cnt;
    /* fast path: when the variance is not small against the mean square, plain double
     * arithmetic is exact to ~1e-12 relative */
    double m1 = ks_val(a->s1) / n, m2 = ks_val(a->s2) / n, v0 = m2 - m1 * m1;
    if (v0 > 1e-4 * m2) return v0;
    dd_t s1 = two_sum(a->s1.s, a->s1.c), s2 = two_sum(a->s2.s, a->s2.c);
    dd_t m = dd_div_d(dd_mul(s1, s1), n);
    m.hi = -m.hi;
    m.lo = -m.lo;
    dd_t v = dd_div_d(dd_add(s2, m), n);
    double r = v.hi + v.lo;
    return r < 0 ? 0 : r;   /* NaN stays NaN (a null stddev), never a silent 0 */
}

static inline vg_value_t finite_num(double d) { return isfinite(d) ? vg_num(d) : vg_null(); }

VG_INLINE vg_value_t agg_value(int kind, const acc_t *a) {
    switch (kind) {
    case VG_SPEC_COUNT: return vg_num((double)a->cnt);
    case VG_SPEC_SUM: return a->cnt ? finite_num(ks_val(a->s1)) : vg_num(0);
    case VG_SPEC_AVG: return a->cnt ? finite_num(ks_val(a->s1) / (double)a->cnt) : vg_null();
    case VG_SPEC_STDDEV: return a->cnt ? finite_num(sqrt(variance(a))) : vg_null();
    default: return vg_null();
    }
}

/* Adds (sign +1) or removes (-1) x's contribution to the sums (x not NaN). */
VG_INLINE void acc_x(int kind, double x, int sign, acc_t *a) {
    a->cnt += sign;
    if (kind == VG_SPEC_MIN || kind == VG_SPEC_MAX) return;
    double ax = fabs(x);
    a->sabs += sign > 0 ? ax : -ax;
    if (ax > a->hw) a->hw = ax;
    ks_add(&a->s1, sign > 0 ? x : -x);
    if (kind == VG_SPEC_STDDEV) {
        double hi = x * x, lo = fma(x, x, -hi);
        ks_add(&a->s2, sign > 0 ? hi : -hi);
        ks_add(&a->s2, sign > 0 ? lo : -lo);
    }
}

/* Adds (sign +1) or removes (-1) a row's contribution to count/sums. */
VG_INLINE void row_acc(const lspec_t *s, const word_t *r, int sign, acc_t *a) {
    if (s->kind == VG_SPEC_COUNT) {
        if (r[1 + s->off / 64].u >> (s->off % 64) & 1) a->cnt += sign;
        return;
    }
    double x = r[s->off].d;
    if (x != x) return;
    acc_x(s->kind, x, sign, a);
}

/* Huge values. The running sums hold any window whose values are below 2^480 in
 * magnitude: neither a sum of x (2^1024 needs values near it) nor a sum of squares
 * (values near 2^512) can overflow, and the compensated error stays relative to the
 * window's magnitude. A value of 2^480 or more (3.1e144) can make them infinite, and
 * infinity minus infinity is NaN: the sums would stay unusable after it left the
 * window. So while hw (the largest |x| since the last recompute) is that large, the
 * spec's value is summed from its rows scaled by 2^-600 (exact for |x| >= 2^-422; the
 * smaller ones are far below the result's rounding then) and scaled back (null only
 * when the result itself is beyond a double); once the scan finds no such value left,
 * the sums are recomputed (inorder_update). O(window) per event while a huge value is
 * inside the window, O(1) otherwise. */
static vg_value_t huge_value(int kind, const acc_t *scaled) {
    if (!scaled->cnt) return kind == VG_SPEC_SUM ? vg_num(0) : vg_null();
    double v;
    switch (kind) {
    case VG_SPEC_SUM: v = ks_val(scaled->s1); break;
    case VG_SPEC_AVG: v = ks_val(scaled->s1) / (double)scaled->cnt; break;
    default: v = sqrt(variance(scaled)); break;
    }
    return finite_num(v * 0x1p600);
}

/* sum/avg/stddev over the rows [from, to) and the row `extra` (NULL: none), scaled;
 * *maxabs: the largest |x| among them. */
static vg_value_t scan_huge(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                            int64_t from, int64_t to, const word_t *extra, double *maxabs);

/* ---- deque (min/max) ---- */

int vg_wdq_reserve(dq_t *d) {
    uint32_t cap = d->cap;
    if (d->n + 1 <= cap) {
        if (cap <= 64 || (uint64_t)d->n * 8 >= cap) return 0;
        cap /= 2;   /* much too large: shrink (failure is harmless) */
    } else {
        if (cap >= (1u << 30)) return VG_ENOMEM;
        cap = cap ? cap * 2 : 4;
    }
    int64_t *v = malloc((size_t)cap * sizeof *v);
    if (!v) return d->n + 1 <= d->cap ? 0 : VG_ENOMEM;
    for (uint32_t i = 0; i < d->n; i++) v[i] = DQ_AT(d, i);
    free(d->v);
    d->v = v;
    d->cap = cap;
    d->head = 0;
    return 0;
}

/* x is "better" than y: min keeps strictly smaller, max strictly larger. */
static inline int better(int kind, double x, double y) {
    return kind == VG_SPEC_MIN ? x < y : x > y;
}

/* Pushes the row at pos (the newest of the frontier) if it has an x. */
void vg_wdq_push(dq_t *d, const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                 int64_t pos) {
    double x = wrow(w, l, pos)[s->off].d;
    if (x != x) return;
    while (d->n && !better(s->kind, wrow(w, l, DQ_AT(d, d->n - 1))[s->off].d, x)) d->n--;
    DQ_AT(d, d->n) = pos;
    d->n++;
}

/* After a late row was inserted at k (positions >= k of the old log shifted by one),
 * puts it into the deque of a frontier that contains it. */
static void dq_insert_mid(dq_t *d, const vg_wstate_t *w, const vg_wlayout_t *l,
                          const lspec_t *s, int64_t k) {
    double x = wrow(w, l, k)[s->off].d;
    if (x != x) return;
    uint32_t j = d->n;
    while (j > 0 && DQ_AT(d, j - 1) > k) j--;
    /* the first entry after k is the extreme of the rows after k */
    if (j < d->n && !better(s->kind, x, wrow(w, l, DQ_AT(d, j))[s->off].d)) return;
    uint32_t r = j;
    while (r > 0 && !better(s->kind, wrow(w, l, DQ_AT(d, r - 1))[s->off].d, x)) r--;
    if (r == j) {   /* insert one entry before j */
        for (uint32_t i = d->n; i > j; i--) DQ_AT(d, i) = DQ_AT(d, i - 1);
        DQ_AT(d, j) = k;
        d->n++;
    } else {        /* replace [r, j) by k */
        DQ_AT(d, r) = k;
        uint32_t o = r + 1;
        for (uint32_t i = j; i < d->n; i++) DQ_AT(d, o++) = DQ_AT(d, i);
        d->n = o;
    }
}

/* ---- hash table (distinct/seen) ---- */

int vg_wht_resize(htab_t *h, uint32_t cap) {
    void *blk = calloc(cap, sizeof(uint64_t) + sizeof(uint32_t));
    if (!blk) return VG_ENOMEM;
    htab_t nh = {blk, (uint32_t *)((uint64_t *)blk + cap), cap, 0};
    for (uint32_t i = 0; i < h->cap; i++) {
        if (!h->k[i]) continue;
        uint32_t m = cap - 1, j = (uint32_t)h->k[i] & m;
        while (nh.k[j]) j = (j + 1) & m;
        nh.k[j] = h->k[i];
        nh.c[j] = h->c[i];
        nh.n++;
    }
    free(h->k);
    *h = nh;
    return 0;
}

/* Room for one more key; shrinks a table 8x too large. */
static int ht_reserve(htab_t *h) {
    if ((uint64_t)(h->n + 1) * 2 > h->cap) {
        if (h->cap >= (1u << 30)) return VG_ENOMEM;
        return vg_wht_resize(h, h->cap ? h->cap * 2 : 8);
    }
    if (h->cap > 64 && (uint64_t)h->n * 8 < h->cap) (void)vg_wht_resize(h, h->cap / 2);
    return 0;
}

static uint32_t ht_get(const htab_t *h, uint64_t key) {
    if (!h->cap) return 0;
    uint32_t m = h->cap - 1, i = (uint32_t)key & m;
    while (h->k[i]) {
        if (h->k[i] == key) return h->c[i];
        i = (i + 1) & m;
    }
    return 0;
}

void vg_wht_inc(htab_t *h, uint64_t key) {
    uint32_t m = h->cap - 1, i = (uint32_t)key & m;
    while (h->k[i]) {
        if (h->k[i] == key) {
            h->c[i]++;
            return;
        }
        i = (i + 1) & m;
    }
    h->k[i] = key;
    h->c[i] = 1;
    h->n++;
}

static void ht_dec(htab_t *h, uint64_t key) {
    if (!h->cap) return;
    uint32_t m = h->cap - 1, i = (uint32_t)key & m;
    while (h->k[i] != key) {
        if (!h->k[i]) return;   /* not there: cannot happen */
        i = (i + 1) & m;
    }
    if (--h->c[i]) return;
    /* backward-shift deletion: no tombstones */
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m;
        if (!h->k[j]) break;
        uint32_t ideal = (uint32_t)h->k[j] & m;
        if (((j - ideal) & m) >= ((j - i) & m)) {
            h->k[i] = h->k[j];
            h->c[i] = h->c[j];
            i = j;
        }
    }
    h->k[i] = 0;
    h->c[i] = 0;
    h->n--;
}

/* Temporary value -> delta map for a late distinct, in scratch memory. */
typedef struct tmap {
    uint64_t *k;
    int32_t *d;
    uint32_t cap;
} tmap_t;

static int tmap_init(tmap_t *t, vg_arena_t *scratch, int64_t m) {
    uint64_t cap = 16;
    while (cap < (uint64_t)m * 2) cap <<= 1;
    if (cap > (1u << 30)) return VG_ENOMEM;
    size_t bytes = (size_t)cap * (sizeof(uint64_t) + sizeof(int32_t));
    void *p = scratch ? vg_arena_alloc(scratch, bytes) : malloc(bytes);
    if (!p) return VG_ENOMEM;
    memset(p, 0, bytes);
    t->k = p;
    t->d = (int32_t *)(t->k + cap);
    t->cap = (uint32_t)cap;
    return 0;
}

static void tmap_add(tmap_t *t, uint64_t key, int32_t d) {
    uint32_t m = t->cap - 1, i = (uint32_t)key & m;
    while (t->k[i] && t->k[i] != key) i = (i + 1) & m;
    t->k[i] = key;
    t->d[i] += d;
}

/* ---- layout ---- */

/* A hash of the inputs of an aggregate from its canonical text
 * `name(` [x `, `] window [` where ` P] [` by ` K] `)`: x and P (0 when the text does
 * not parse so). Two specs of one row family (input_family) with the same hash store
 * the same row words, whatever their windows. */
static uint64_t input_sig(const char *t, int has_x) {
    const char *p = t ? strchr(t, '(') : NULL;
    if (!p) return 0;
    p++;
    const char *xs = p, *xe = p;
    int depth = 0, inq = 0;
    if (has_x) {
        for (; *p; p++) {
            if (inq) {
                if (*p == '\\' && p[1]) p++;
                else if (*p == '"') inq = 0;
            } else if (*p == '"') {
                inq = 1;
            } else if (*p == '(' || *p == '[' || *p == '{') {
                depth++;
            } else if (*p == ')' || *p == ']' || *p == '}') {
                if (--depth < 0) return 0;
            } else if (*p == ',' && depth == 0) {
                break;
            }
        }
        if (*p != ',') return 0;
        xe = p++;
        while (*p == ' ') p++;
    }
    while (*p && *p != ' ' && *p != ')') p++;   /* the window */
    const char *ws = p, *we = p;
    if (strncmp(p, " where ", 7) == 0) {
        ws = p += 7;
        depth = inq = 0;
        for (; *p; p++) {
            if (inq) {
                if (*p == '\\' && p[1]) p++;
                else if (*p == '"') inq = 0;
            } else if (*p == '"') {
                inq = 1;
            } else if (*p == '(' || *p == '[' || *p == '{') {
                depth++;
            } else if (*p == ')' || *p == ']' || *p == '}') {
                if (depth == 0) break;
                depth--;
            } else if (depth == 0 && strncmp(p, " by ", 4) == 0) {
                break;
            }
        }
        if (!*p) return 0;
        we = p;
    }
    uint64_t h = vg_whash_bytes(0x696e707574736967ULL, xs, (size_t)(xe - xs));
    h = vg_whash_bytes(h, ws, (size_t)(we - ws));
    return h ? h : 1;
}

static int spec_words(int kind) {
    switch (kind) {
    case VG_SPEC_COUNT: return 0;
    case VG_SPEC_SESSION_COUNT:
    case VG_SPEC_SESSION_DURATION: return 2;
    case VG_SPEC_SESSION_SUM: return 5;
    case VG_SPEC_PREV: return 2;
    default: return 1;
    }
}

vg_wlayout_t *vg_wlayout_new_specs(const vg_spec_t *specs, const int *spec_index, int n,
                                   int64_t lateness_ms) {
    if (n < 0 || (n > 0 && !specs)) return NULL;
    vg_wlayout_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->s = calloc(n ? (size_t)n : 1, sizeof *l->s);
    if (!l->s) goto err;
    l->n = n;
    l->lateness = lateness_ms > 0 ? lateness_ms : 0;
    int ncount = 0;
    for (int i = 0; i < n; i++)
        if (specs[i].kind == VG_SPEC_COUNT) ncount++;
    int off = 1 + (ncount + 63) / 64, bit = 0;
    /* "vgwin2": session runs shared by the session specs of one gap */
    uint64_t fp = vg_whash_bytes(0x766777696e646f77ULL, "vgwin2", 6);
    fp = vg_whash_bytes(fp, &l->lateness, sizeof l->lateness);
    for (int i = 0; i < n; i++) {
        const vg_spec_t *sp = &specs[i];
        lspec_t *s = &l->s[i];
        s->kind = (int)sp->kind;
        if (s->kind < VG_SPEC_COUNT || s->kind > VG_SPEC_SEEN) goto err;
        s->has_x = sp->has_x;
        s->has_where = sp->has_where;
        s->w = sp->window_ms > 0 ? sp->window_ms : 0;
        s->pidx = spec_index ? spec_index[i] : i;
        if (s->pidx < 0) goto err;
        if (s->kind == VG_SPEC_COUNT) {
            s->off = bit++;
        } else if (s->kind == VG_SPEC_SESSION_COUNT || s->kind == VG_SPEC_SESSION_DURATION) {
            s->off = -1;   /* below: the run words of its gap */
        } else {
            s->off = off;
            off += spec_words(s->kind);
        }
        s->soff = -1;
        if (kind_windowed(s->kind) && s->w > l->maxw) l->maxw = s->w;
        if (s->kind == VG_SPEC_PREV) l->nprev++;
        if (kind_session(s->kind)) l->nsess++;
        int64_t d[6] = {s->kind, s->w, s->has_x, s->has_where, sp->x_type, s->pidx};
        unsigned char b[48];
        for (int j = 0; j < 6; j++)
            for (int q = 0; q < 8; q++) b[j * 8 + q] = (unsigned char)((uint64_t)d[j] >> (8 * q));
        fp = vg_whash_bytes(fp, b, sizeof b);
        if (sp->text) {
            fp = vg_whash_bytes(fp, sp->text, strlen(sp->text));
            s->th = vg_whash_bytes(0x7370656374657874ULL, sp->text, strlen(sp->text));
            if (!s->th) s->th = 1;
            s->sig = input_sig(sp->text, s->has_x);
        }
    }
    /* session_count/duration of one gap read the same run (first time, count) as each
     * other and as a session_sum of that gap (its first two words): one copy per gap */
    for (int i = 0; i < n; i++) {
        lspec_t *s = &l->s[i];
        if (s->off >= 0 || !kind_session(s->kind)) continue;
        for (int j = 0; j < n && s->off < 0; j++)
            if (j != i && kind_session(l->s[j].kind) && l->s[j].off >= 0 && l->s[j].w == s->w)
                s->off = l->s[j].off;
        if (s->off < 0) {
            s->off = off;
            off += spec_words(s->kind);
        }
    }
    l->rw = off;
    l->fp = fp;
    l->ix = malloc(((size_t)n * 7 + 1) * sizeof *l->ix);
    l->nflag = (ncount + 63) / 64;
    l->cmask = calloc((size_t)l->nflag + 1, sizeof *l->cmask);
    if (!l->ix || !l->cmask) goto err;
    l->ix_win = l->ix;
    l->ix_ds = l->ix_win + n;
    l->ix_prev = l->ix_ds + n;
    l->ix_sess = l->ix_prev + n;
    l->ix_cw = l->ix_sess + n;
    l->ix_x = l->ix_cw + n;
    l->ix_h = l->ix_x + n;
    int np = 0, ns = 0;
    for (int i = 0; i < n; i++) {
        const lspec_t *s = &l->s[i];
        int k = s->kind;
        if (kind_windowed(k)) l->ix_win[l->nwin++] = i;
        if (kind_minmax(k) || kind_hashed(k)) l->ix_ds[l->nds++] = i;
        if (k == VG_SPEC_PREV) l->ix_prev[np++] = i;
        if (kind_session(k)) l->ix_sess[ns++] = i;
        if (k == VG_SPEC_COUNT && s->has_where) l->ix_cw[l->ncw++] = i;
        else if (k == VG_SPEC_COUNT) l->cmask[s->off / 64] |= 1ULL << (s->off % 64);
        if (kind_xagg(k)) l->ix_x[l->nx++] = i;
        if (kind_hashed(k)) l->ix_h[l->nh++] = i;
    }
    /* the windowed specs by width (stable), so that inorder_update walks each width's
     * frontier once */
    for (int a = 1; a < l->nwin; a++) {
        int x = l->ix_win[a], b = a;
        for (; b > 0 && l->s[l->ix_win[b - 1]].w > l->s[x].w; b--) l->ix_win[b] = l->ix_win[b - 1];
        l->ix_win[b] = x;
    }
    for (int j = 0; j < l->nwin; j++) {
        if (j == 0 || l->s[l->ix_win[j]].w != l->s[l->ix_win[j - 1]].w) l->nwg++;
        l->s[l->ix_win[j]].wg = l->nwg - 1;
    }
    for (int i = 0; i < n; i++)
        if (!kind_windowed(l->s[i].kind)) l->s[i].wg = -1;
    /* the frontier block: one L per width, then the specs' states in the order of
     * ix_win, the small kinds first, then sum/avg/stddev, and room for a whole
     * sstate_t after the last one, so that no access through an sstate_t pointer can
     * leave the block */
    size_t so = (size_t)l->nwg * sizeof(int64_t), last = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int j = 0; j < l->nwin; j++) {
            lspec_t *s = &l->s[l->ix_win[j]];
            size_t b = ss_bytes(s->kind);
            if (!b || kind_sumlike(s->kind) != pass) continue;
            s->soff = (int)so;
            last = so;
            so += b;
        }
    if (l->nwin && so < last + sizeof(sstate_t)) so = last + sizeof(sstate_t);
    l->ssbytes = so;
    /* inorder_update reads the windowed specs in this order: copies, one load fewer each */
    l->win = malloc((size_t)(l->nwin ? l->nwin : 1) * sizeof *l->win);
    if (!l->win) goto err;
    for (int j = 0; j < l->nwin; j++) l->win[j] = l->s[l->ix_win[j]];
    return l;
err:
    vg_wlayout_free(l);
    return NULL;
}

vg_wlayout_t *vg_wlayout_new(vg_program_t *p, int by_group, int64_t lateness_ms) {
    int np = vg_prog_nspecs(p), m = 0;
    vg_spec_t *sp = malloc((size_t)(np > 0 ? np : 1) * sizeof *sp);
    int *idx = malloc((size_t)(np > 0 ? np : 1) * sizeof *idx);
    vg_wlayout_t *l = NULL;
    if (!sp || !idx) goto out;
    for (int i = 0; i < np; i++) {
        const vg_spec_t *s = vg_prog_spec(p, i);
        int acct_only = s->kind == VG_SPEC_PREV || s->kind == VG_SPEC_SEEN ||
                        kind_session((int)s->kind);
        if ((acct_only ? -1 : s->by_group) != by_group) continue;
        sp[m] = *s;
        idx[m++] = i;
    }
    l = vg_wlayout_new_specs(sp, idx, m, lateness_ms);
    if (l) l->prog = vg_prog_ref(p);
out:
    free(sp);
    free(idx);
    return l;
}

void vg_wlayout_free(vg_wlayout_t *l) {
    if (!l) return;
    if (l->prog) vg_prog_unref(l->prog);
    free(l->ix);
    free(l->win);
    free(l->cmask);
    free(l->s);
    free(l);
}

int vg_wlayout_nspecs(const vg_wlayout_t *l) { return l ? l->n : 0; }

uint64_t vg_wlayout_fingerprint(const vg_wlayout_t *l) { return l ? l->fp : 0; }

/* ---- state ---- */

/* Rows of a layout too wide for add()'s stack buffer get a per-state one. */
#define STACK_ROW_WORDS 64

size_t vg_wstate_size(const vg_wlayout_t *l) { return sizeof(vg_wstate_t) + l->ssbytes; }

static vg_wstate_t *init(vg_wstate_t *w, const vg_wlayout_t *l) {
    w->lay = l;
    w->newest = INT64_MIN;
    w->rw = l->rw;
    return w;
}

vg_wstate_t *vg_wstate_init_at(void *mem, const vg_wlayout_t *l) {
    memset(mem, 0, vg_wstate_size(l));
    vg_wstate_t *w = init(mem, l);
    w->embedded = 1;
    return w;
}

size_t vg_wlayout_row_bytes(const vg_wlayout_t *l) { return (size_t)l->rw * sizeof(word_t); }

size_t vg_wstate_inline_rows(const vg_wlayout_t *l) {
    size_t n = 64 / ((size_t)l->rw * sizeof(word_t));
    return n < 2 ? 0 : n > 4 ? 4 : n;
}

vg_wstate_t *vg_wstate_init_rows_at(void *mem, const vg_wlayout_t *l, size_t nrows) {
    vg_wstate_t *w = vg_wstate_init_at(mem, l);
    if (nrows) {
        w->rows = (word_t *)(void *)((char *)mem + vg_wstate_size(l));
        w->cap = nrows;
        w->rows_inline = 1;
    }
    return w;
}

vg_wstate_t *vg_wstate_new(const vg_wlayout_t *l) {
    vg_wstate_t *w = calloc(1, vg_wstate_size(l));
    return w ? init(w, l) : NULL;
}

/* Frees the deque or table of spec s (back to scanning). Can't fail. */
static void ss_drop(sstate_t *ss, int kind) {
    if (kind_minmax(kind)) {
        if (ss->dq.fz) free(ss->dq.fz->d.v);
        free(ss->dq.fz);
        free(ss->dq.v);
        memset(&ss->dq, 0, sizeof ss->dq);
    } else if (kind_hashed(kind)) {
        free(ss->ht.k);
        memset(&ss->ht, 0, sizeof ss->ht);
    }
}

void vg_wstate_free(vg_wstate_t *w) {
    if (!w) return;
    const vg_wlayout_t *l = w->lay;
    for (int i = 0; i < l->n; i++)
        if (l->s[i].soff >= 0) ss_drop(wss(w, &l->s[i]), l->s[i].kind);
    free(w->tmp);
    if (!w->rows_inline) free(w->rows);
    free(w->sb);
    if (!w->embedded) free(w);
}

int64_t vg_wstate_newest(const vg_wstate_t *w) { return w->newest; }
int64_t vg_wstate_first(const vg_wstate_t *w) { return w->first; }
int64_t vg_wstate_end(const vg_wstate_t *w) { return w->first + (int64_t)w->n; }

int vg_wstate_dirty(const vg_wstate_t *w, int64_t *from) {
    if (w->dirty) *from = w->dfrom;
    return w->dirty;
}

void vg_wstate_set_clean(vg_wstate_t *w) { w->dirty = 0; }

void vg_wstate_set_dirty(vg_wstate_t *w, int64_t from) {
    if (!w->dirty || from < w->dfrom) {
        w->dirty = 1;
        w->dfrom = from;
    }
}

void vg_wstate_prefetch(const vg_wstate_t *w) {
#if defined(__GNUC__)
    if (!w->n) return;
    const vg_wlayout_t *l = w->lay;
    const char *r = (const char *)(w->rows + (w->head + w->n - 1) * (size_t)w->rw);
    __builtin_prefetch(r);
    __builtin_prefetch(r + 64);
    __builtin_prefetch(r + 128);
    if (w->head + w->n < w->cap) {   /* the next row, written (and read) by an add */
        const char *nr = r + sizeof(word_t) * (size_t)w->rw;
        for (size_t o = 0; o < sizeof(word_t) * (size_t)w->rw; o += 64) __builtin_prefetch(nr + o);
        __builtin_prefetch(nr + sizeof(word_t) * (size_t)w->rw - 1);
    }
    if (w->n > 1) __builtin_prefetch(w->rows + w->head * (size_t)w->rw);
    /* the first row of each window width (an add reads it to move the window on) */
    int64_t last = -1;
    for (int g = 0; g < l->nwg; g++) {
        int64_t L = ((const int64_t *)w->ssb)[g];
        if (L == last || L < w->first || L >= w->first + (int64_t)w->n) continue;
        __builtin_prefetch(wrow(w, l, L));
        last = L;
    }
    /* small deques and tables whole (an add reads their ends, or probes them); dsmem 0:
     * none built (every frontier is scanned) */
    for (int j = 0; w->dsmem && j < l->nds; j++) {
        const lspec_t *s = &l->s[l->ix_ds[j]];
        const sstate_t *ss = wss(w, s);
        if (kind_minmax(s->kind)) {
            if (ss->dq.cap && ss->dq.cap <= 32)
                for (uint32_t o = 0; o < ss->dq.cap * 8; o += 64)
                    __builtin_prefetch((const char *)ss->dq.v + o);
        } else if (ss->ht.cap && ss->ht.cap <= 32) {
            for (uint32_t o = 0; o < ss->ht.cap * 8; o += 64)
                __builtin_prefetch((const char *)ss->ht.k + o);
            for (uint32_t o = 0; o < ss->ht.cap * 4; o += 64)
                __builtin_prefetch((const char *)ss->ht.c + o);
        }
    }
#else
    (void)w;
#endif
}

/* Bytes of one spec's deque or table. */
static inline size_t ds_bytes(const sstate_t *ss, int kind) {
    if (kind_minmax(kind))
        return (size_t)ss->dq.cap * sizeof(int64_t) +
               (ss->dq.fz ? sizeof(dqf_t) + (size_t)ss->dq.fz->d.cap * sizeof(int64_t) : 0);
    return (size_t)ss->ht.cap * (sizeof(uint64_t) + sizeof(uint32_t));
}

size_t vg_wds_mem(const vg_wstate_t *w, const vg_wlayout_t *l) {
    size_t m = 0;
    for (int j = 0; j < l->nds; j++) {
        const lspec_t *s = &l->s[l->ix_ds[j]];
        m += ds_bytes(wss(w, s), s->kind);
    }
    return m;
}

static size_t mem_of(const vg_wstate_t *w, size_t dsmem) {
    const vg_wlayout_t *l = w->lay;
    size_t m = (w->embedded ? 0 : vg_wstate_size(l)) + w->sb_cap + dsmem;
    if (w->tmp) m += (size_t)w->rw * sizeof(word_t);
    return m + (w->rows_inline ? 0 : w->cap * (size_t)w->rw * sizeof(word_t));
}

/* The deques' and tables' bytes are kept in dsmem (per event, counting them cost ~90
 * instructions per state: callgrind, bench.vrl) */
size_t vg_wstate_mem(const vg_wstate_t *w) { return mem_of(w, w->dsmem); }

size_t vg_wstate_mem_recount(const vg_wstate_t *w) { return mem_of(w, vg_wds_mem(w, w->lay)); }

/* ---- the log ---- */

int vg_wstate_reserve_rows(vg_wstate_t *w, const vg_wlayout_t *l, size_t extra) {
    size_t rw = (size_t)l->rw, need = w->n + extra;
    if (w->cap > 64 && need * 8 <= w->cap && !w->rows_inline) {   /* much too large: halve (may fail) */
        memmove(w->rows, w->rows + w->head * rw, w->n * rw * sizeof(word_t));
        w->head = 0;
        word_t *r = realloc(w->rows, w->cap / 2 * rw * sizeof(word_t));
        if (r) {
            w->rows = r;
            w->cap /= 2;
        }
    }
    if (w->head + need <= w->cap) return 0;
    if (need <= w->cap && w->head >= w->n) {   /* the dead front is the larger: slide */
        memmove(w->rows, w->rows + w->head * rw, w->n * rw * sizeof(word_t));
        w->head = 0;
        return 0;
    }
    /* from 4 rows, doubling up to 16, then by half: a key's rows are reallocated (a
     * malloc, a copy and a free in cold memory, ~1 us each) about half as often as
     * growing by half from 2, for ~10% more row memory (tests/bench: 1M events,
     * 96k accounts, 445k -> 230k reallocations) */
    size_t nc = w->cap < 4 ? 4 : w->cap < 16 ? 2 * w->cap : w->cap + w->cap / 2;
    if (nc < need) nc = need;
    if (nc > SIZE_MAX / (rw * sizeof(word_t))) return VG_ENOMEM;
    if (w->rows_inline) {   /* out of the caller's block */
        word_t *r = malloc(nc * rw * sizeof(word_t));
        if (!r) return VG_ENOMEM;
        memcpy(r, w->rows + w->head * rw, w->n * rw * sizeof(word_t));
        w->rows = r;
        w->cap = nc;
        w->head = 0;
        w->rows_inline = 0;
        return 0;
    }
    if (w->head) {   /* the live rows to the front first, so that realloc copies them */
        memmove(w->rows, w->rows + w->head * rw, w->n * rw * sizeof(word_t));
        w->head = 0;
    }
    word_t *r = realloc(w->rows, nc * rw * sizeof(word_t));
    if (!r) return VG_ENOMEM;
    w->rows = r;
    w->cap = nc;
    return 0;
}

/* First position with time >= t (end when none). */
int64_t vg_wlower_bound(const vg_wstate_t *w, const vg_wlayout_t *l, int64_t t) {
    int64_t lo = w->first, hi = w->first + (int64_t)w->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (wrow(w, l, mid)[0].i < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* First position with time > t (end when none). */
static int64_t upper_bound(const vg_wstate_t *w, const vg_wlayout_t *l, int64_t t) {
    int64_t lo = w->first, hi = w->first + (int64_t)w->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (wrow(w, l, mid)[0].i <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Moves every live prev() string of the log to dst, in row order, and rewrites the
 * offsets. dst may be sb itself when the offsets increase in row order (then every
 * string moves down or stays). Returns the live length. */
static size_t sb_pack(vg_wstate_t *w, const vg_wlayout_t *l, char *dst) {
    size_t pos = 0;
    for (int64_t p = w->first; p < w->first + (int64_t)w->n; p++) {
        word_t *r = wrow(w, l, p);
        for (int i = 0; i < l->n; i++) {
            if (l->s[i].kind != VG_SPEC_PREV) continue;
            word_t *q = r + l->s[i].off;
            if (!type_is_str(prev_type(q))) continue;
            uint32_t len = prev_len(q);
            if (len) memmove(dst + pos, w->sb + q[0].u, len);
            q[0].u = pos;
            pos += len;
        }
    }
    return pos;
}

/* The offsets of the log's strings increase in row order (no late row among them). */
static int sb_monotonic(const vg_wstate_t *w, const vg_wlayout_t *l) {
    uint64_t last = 0;
    for (int64_t p = w->first; p < w->first + (int64_t)w->n; p++) {
        const word_t *r = wrow(w, l, p);
        for (int i = 0; i < l->n; i++) {
            const word_t *q = r + l->s[i].off;
            if (l->s[i].kind != VG_SPEC_PREV || !type_is_str(prev_type(q))) continue;
            if (q[0].u < last) return 0;
            last = q[0].u + prev_len(q);
        }
    }
    return 1;
}

/* Room for b more string bytes. When the store is full it is packed (dead bytes of
 * dropped rows removed): in place when at most half of it stays live and the strings
 * are in row order, else into a new buffer twice the live size (also when the store is
 * 8x too large). Amortized O(1) per byte; allocates only when the live size grows
 * or shrinks a lot (or after late rows). */
static int reserve_sb(vg_wstate_t *w, const vg_wlayout_t *l, size_t b) {
    if (!l->nprev) return 0;
    size_t live = w->sb_len - w->sb_dead;
    int shrink = w->sb_cap > 1024 && live * 8 < w->sb_cap;
    if (w->sb_len + b <= w->sb_cap && !shrink) return 0;
    size_t nc = 2 * (live + b);
    if (nc < 64) nc = 64;
    if (!shrink && nc <= w->sb_cap && sb_monotonic(w, l)) {
        w->sb_len = sb_pack(w, l, w->sb);
        w->sb_dead = 0;
        return 0;
    }
    char *nb = malloc(nc);
    if (!nb) return w->sb_len + b <= w->sb_cap ? 0 : VG_ENOMEM;
    w->sb_len = sb_pack(w, l, nb);
    free(w->sb);
    w->sb = nb;
    w->sb_cap = nc;
    w->sb_dead = 0;
    return 0;
}

static void drop_front(vg_wstate_t *w, const vg_wlayout_t *l) {
    if (l->nprev) {
        const word_t *r = wrow(w, l, w->first);
        for (int i = 0; i < l->n; i++)
            if (l->s[i].kind == VG_SPEC_PREV && type_is_str(prev_type(r + l->s[i].off)))
                w->sb_dead += prev_len(r + l->s[i].off);
    }
    w->head++;
    w->first++;
    w->n--;
}

/* Drops rows older than the retention span, keeping the newest row before it. */
static void retain(vg_wstate_t *w, const vg_wlayout_t *l) {
    int64_t cut = sat_sub(sat_sub(w->newest, l->maxw), l->lateness);
    while (w->n >= 2 && wrow(w, l, w->first + 1)[0].i < cut) drop_front(w, l);
}

/* ---- rows ---- */

/* The run of a session spec that ends at row r, given its predecessor row. */
static void sess_run(const lspec_t *s, const word_t *pred, word_t *r) {
    word_t *q = r + s->off;
    ksum_t sum = {0, 0};
    /* a cold row (count 0: made before the spec existed, vg_wstate_migrate) ends no run */
    if (pred && pred[s->off + 1].i > 0 && pred[0].i >= sat_sub(r[0].i, s->w)) {
        const word_t *pq = pred + s->off;
        q[0] = pq[0];
        q[1].i = pq[1].i + 1;
        if (s->kind == VG_SPEC_SESSION_SUM) {
            sum.s = pq[3].d;
            sum.c = pq[4].d;
        }
    } else {
        q[0].i = r[0].i;
        q[1].i = 1;
    }
    if (s->kind == VG_SPEC_SESSION_SUM) {
        if (q[2].d == q[2].d) ks_add(&sum, q[2].d);
        q[3].d = sum.s;
        q[4].d = sum.c;
    }
}

static vg_value_t sess_value(const lspec_t *s, const word_t *r) {
    const word_t *q = r + s->off;
    switch (s->kind) {
    case VG_SPEC_SESSION_COUNT: return vg_num((double)q[1].i);
    case VG_SPEC_SESSION_SUM: return finite_num(q[3].d + q[4].d);
    default: return vg_num((double)(r[0].i - q[0].i) / 1000.0);
    }
}

int vg_wstate_sessions(const vg_wstate_t *w, const vg_wlayout_t *l, vg_wsession_t *out,
                       int max) {
    if (w->n == 0) return 0;
    const word_t *r = wrow(w, l, w->first + (int64_t)w->n - 1);
    int k = 0;
    for (int j = 0; j < l->nsess && k < max; j++) {
        const lspec_t *s = &l->s[l->ix_sess[j]];
        int dup = 0;
        for (int i = 0; i < k; i++) dup |= out[i].gap == s->w;
        const word_t *q = r + s->off;
        if (dup || q[1].i <= 0) continue;   /* shared run, or a cold row */
        out[k++] = (vg_wsession_t){s->w, q[0].i, r[0].i, q[1].i};
    }
    return k;
}

static vg_value_t prev_value(const vg_wstate_t *w, const lspec_t *s, const word_t *pred) {
    if (!pred) return vg_null();
    const word_t *q = pred + s->off;
    int t = prev_type(q);
    switch (t) {
    case VG_T_BOOL: return vg_bool((int)q[0].u);
    case VG_T_NUM: return vg_num(q[0].d);
    case VG_T_TIME: return vg_time(q[0].i);
    case VG_T_DUR: return vg_dur(q[0].i);
    case VG_T_STR:
    case VG_T_JSON: {
        vg_value_t v = vg_strv(w->sb ? w->sb + q[0].u : "", prev_len(q));
        v.type = (uint8_t)t;
        return v;
    }
    default: return vg_null();
    }
}

static inline int num_ok(const vg_value_t *v) { return v->type == VG_T_NUM && isfinite(v->u.n); }

/* Fills row r for an event (prev strings get their offsets in store_strings()). Every
 * word of a row belongs to a spec (or to the session specs of one gap) and is written
 * here, so the row is not cleared first. Returns the bytes of the event's prev()
 * strings (the byte store must take them), *nstr how many strings. */
static size_t build_row(const vg_wlayout_t *l, int64_t ts, const vg_spec_input_t *in,
                        const word_t *pred, word_t *r, int *nstr) {
    r[0].i = ts;
    /* the kinds one at a time (each writes only its own words or bits) */
    for (int j = 0; j < l->nflag; j++) r[1 + j].u = l->cmask[j];
    for (int j = 0; j < l->ncw; j++) {
        const lspec_t *s = &l->s[l->ix_cw[j]];
        if (in[s->pidx].keep) r[1 + s->off / 64].u |= 1ULL << (s->off % 64);
    }
    for (int j = 0; j < l->nx; j++) {
        const lspec_t *s = &l->s[l->ix_x[j]];
        const vg_spec_input_t *x = &in[s->pidx];
        int keep = s->has_where ? x->keep != 0 : 1;
        r[s->off].d = keep && num_ok(&x->x) ? x->x.u.n : NAN;
    }
    for (int j = 0; j < l->nh; j++) {
        const lspec_t *s = &l->s[l->ix_h[j]];
        const vg_spec_input_t *x = &in[s->pidx];
        int keep = s->has_where ? x->keep != 0 : 1;
        r[s->off].u = keep ? vhash(&x->x) : 0;
    }
    for (int j = 0; j < l->nsess; j++) {
        const lspec_t *s = &l->s[l->ix_sess[j]];
        if (s->kind == VG_SPEC_SESSION_SUM) {
            const vg_spec_input_t *x = &in[s->pidx];
            r[s->off + 2].d = num_ok(&x->x) ? x->x.u.n : NAN;
        }
        sess_run(s, pred, r);
    }
    size_t sbytes = 0;
    int ns = 0;
    for (int j = 0; j < l->nprev; j++) {
        const lspec_t *s = &l->s[l->ix_prev[j]];
        const vg_value_t *v = &in[s->pidx].x;
        word_t *q = r + s->off;
        uint32_t len = 0;
        switch (v->type) {
        case VG_T_BOOL: q[0].u = v->u.b ? 1 : 0; break;
        case VG_T_NUM: q[0].d = v->u.n; break;
        case VG_T_TIME:
        case VG_T_DUR: q[0].i = v->u.ms; break;
        case VG_T_STR:
        case VG_T_JSON:   /* q[0]: store_strings() */
            len = v->u.s.len;
            sbytes += len;
            ns++;
            break;
        default: q[0].u = 0; break;
        }
        int t = v->type <= VG_T_JSON ? v->type : VG_T_NULL;
        if (t == VG_T_NUM && !isfinite(v->u.n)) t = VG_T_NULL;
        q[1].u = (uint64_t)t | (uint64_t)len << 32;
    }
    *nstr = ns;
    return sbytes;
}

/* Copies the event's prev strings into the (reserved) byte store. */
static void store_strings(vg_wstate_t *w, const vg_wlayout_t *l, const vg_spec_input_t *in,
                          word_t *r) {
    for (int j = 0; j < l->nprev; j++) {
        const lspec_t *s = &l->s[l->ix_prev[j]];
        word_t *q = r + s->off;
        if (!type_is_str(prev_type(q))) continue;
        uint32_t len = prev_len(q);
        if (len) memcpy(w->sb + w->sb_len, in[s->pidx].x.u.s.p, len);
        q[0].u = w->sb_len;
        w->sb_len += len;
    }
}

/* ---- frontier ---- */

static void recompute(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                      sstate_t *ss) {
    acc_t a;
    memset(&a, 0, sizeof a);
    for (int64_t p = *wlp(w, s); p < w->first + (int64_t)w->n; p++)
        row_acc(s, wrow(w, l, p), 1, &a);
    acc_copy(&ss->a, &a, s->kind);   /* ops 0 */
}

static vg_value_t scan_huge(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                            int64_t from, int64_t to, const word_t *extra, double *maxabs) {
    acc_t a;
    memset(&a, 0, sizeof a);
    for (int64_t p = from; p <= to; p++) {
        const word_t *r = p < to ? wrow(w, l, p) : extra;
        if (!r) break;
        double x = r[s->off].d;
        if (x == x) acc_x(s->kind, x * 0x1p-600, 1, &a);
    }
    *maxabs = a.hw * 0x1p600;   /* acc_x kept the largest scaled |x| */
    return huge_value(s->kind, &a);
}

/* The compensated sums carry an error of about ops * eps^2 * hw (hw: the largest |x|
 * seen since the last recompute). When the window's magnitude falls far below hw (a
 * large value left), the sums are recomputed: each recompute is charged to the rows
 * that entered since the previous one, so this stays O(1) amortized. */
#define MAG_DROP 1e-3

/* Keeps the sums exact: zero when the window is empty, recomputed when drifting. */
VG_INLINE void settle(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                      sstate_t *ss) {
    if (!kind_sumlike(s->kind)) return;
    if (ss->a.cnt == 0) {
        ss->a.s1.s = ss->a.s1.c = ss->a.sabs = ss->a.hw = 0;
        ss->a.ops = 0;
        if (s->kind == VG_SPEC_STDDEV) ss->a.s2.s = ss->a.s2.c = 0;
    } else if (ss->a.ops > 2 * (w->first + (int64_t)w->n - *wlp(w, s)) + 64 ||
               ss->a.sabs < MAG_DROP * ss->a.hw) {
        recompute(w, l, s, ss);
    }
}

/* A row enters (+1) or leaves (-1) the frontier of a spec (not the min/max deque; not
 * a distinct/seen frontier that is scanned). */
VG_INLINE void fr_move(const lspec_t *s, sstate_t *ss, const word_t *r, int sign) {
    if (kind_hashed(s->kind)) {
        uint64_t h = r[s->off].u;
        if (h && ss->ht.cap) {
            if (sign > 0)
                vg_wht_inc(&ss->ht, h);
            else
                ht_dec(&ss->ht, h);
        }
    } else if (kind_sumlike(s->kind)) {
        row_acc(s, r, sign, &ss->a);
        ss->a.ops++;
    } else if (s->kind == VG_SPEC_COUNT) {
        row_acc(s, r, sign, &ss->a);   /* a.cnt only */
    }
}

/* Builds the deque or table of a min/max/distinct/seen spec from its frontier rows
 * [L, end) (it had none: the frontier was scanned). Returns 0 or VG_ENOMEM (still
 * none). */
int vg_wss_build(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s, sstate_t *ss) {
    int64_t end = w->first + (int64_t)w->n, L = *wlp(w, s);
    if (kind_minmax(s->kind)) {
        uint64_t cap = 8;
        while (cap < (uint64_t)(end - L) + 1) cap <<= 1;
        if (cap > (1u << 30) || !(ss->dq.v = malloc((size_t)cap * sizeof *ss->dq.v)))
            return VG_ENOMEM;
        ss->dq.cap = (uint32_t)cap;
        ss->dq.head = ss->dq.n = 0;
        for (int64_t p = L; p < end; p++) vg_wdq_push(&ss->dq, w, l, s, p);
    } else if (kind_hashed(s->kind)) {
        uint64_t cap = 16;
        while (cap < (uint64_t)(end - L) * 2 + 2) cap <<= 1;
        if (cap > (1u << 30) || vg_wht_resize(&ss->ht, (uint32_t)cap)) return VG_ENOMEM;
        for (int64_t p = L; p < end; p++)
            if (wrow(w, l, p)[s->off].u) vg_wht_inc(&ss->ht, wrow(w, l, p)[s->off].u);
    }
    return 0;
}

/* min/max of a scanned frontier [L, end): the extreme, among equal values the newest
 * row's (as the deque would give). */
static vg_value_t scan_extreme(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                               int64_t from, int64_t end) {
    double best = NAN;
    for (int64_t p = from; p < end; p++) {
        double x = wrow(w, l, p)[s->off].d;
        if (x == x && (best != best || !better(s->kind, best, x))) best = x;
    }
    return best == best ? vg_num(best) : vg_null();
}

/* Distinct non-zero hashes among the rows [from, end) (few: quadratic). */
static int64_t scan_distinct(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                             int64_t from, int64_t end) {
    int64_t c = 0;
    for (int64_t p = from; p < end; p++) {
        uint64_t h = wrow(w, l, p)[s->off].u;
        if (!h) continue;
        int64_t q = from;
        while (q < p && wrow(w, l, q)[s->off].u != h) q++;
        c += q == p;
    }
    return c;
}

static int64_t count_hash(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                          int64_t from, int64_t to, uint64_t h) {
    int64_t c = 0;
    for (int64_t p = from; p < to; p++) c += wrow(w, l, p)[s->off].u == h;
    return c;
}

/* inorder_update of a sum/avg (ak VG_SPEC_SUM) or stddev (ak VG_SPEC_STDDEV) spec:
 * the rows [L0, L1) leave its frontier, the newest row enters; what fr_move and settle
 * do, with the kind's accumulation known at compile time (ak: which sums acc_x keeps;
 * s->kind still says sum or avg for the value). */
VG_INLINE void sum_update(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                          sstate_t *ss, const int ak, const word_t *base, int64_t L0,
                          int64_t L1, vg_value_t *v) {
    const size_t rw = (size_t)l->rw;
    const int64_t first = w->first, end = first + (int64_t)w->n;
    const size_t off = (size_t)s->off;
    acc_t *a = &ss->a;
    for (int64_t p = L0; p < L1; p++) {
        double x = base[(size_t)(p - first) * rw + off].d;
        if (x == x) acc_x(ak, x, -1, a);
        a->ops++;
    }
    double x = base[(size_t)(end - 1 - first) * rw + off].d;
    if (x == x) acc_x(ak, x, 1, a);
    a->ops++;
    /* settle */
    if (a->cnt == 0) {
        a->s1.s = a->s1.c = a->sabs = a->hw = 0;
        a->ops = 0;
        if (ak == VG_SPEC_STDDEV) a->s2.s = a->s2.c = 0;
    } else if (a->ops > 2 * (end - L1) + 64 || a->sabs < MAG_DROP * a->hw) {
        recompute(w, l, s, ss);
    }
    if (a->hw >= HUGE_X) {   /* the sums may be unusable ("Huge values") */
        double mx;
        *v = scan_huge(w, l, s, L1, end, NULL, &mx);
        if (mx >= HUGE_X) return;
        recompute(w, l, s, ss);   /* it has left: exact sums again */
    }
    *v = agg_value(s->kind, a);
}

/* The newest row (at end - 1) has just been appended with a time >= every other.
 * The windowed specs are visited by width (ix_win is sorted by it): at the first spec
 * of a width the rows leaving its frontier are found ([L0, L1)), then each spec of that
 * width drops them and takes the new row. (A flat loop: the same with a loop per width
 * inside a loop over widths cost ~90 instructions per event more, callgrind.) */
static void inorder_update(vg_wstate_t *w, const vg_wlayout_t *l, vg_value_t *vals) {
    const size_t rw = (size_t)l->rw;
    const int64_t first = w->first, end = first + (int64_t)w->n, pos = end - 1, ts = w->newest;
    const word_t *base = w->rows + w->head * rw;
#define ROW(p) (base + (size_t)((p) - first) * rw)
    const word_t *r = ROW(pos);
    int64_t *Ls = (int64_t *)(void *)w->ssb;
    unsigned char *ssb = (unsigned char *)(void *)w->ssb;
    int g = -1;
    int64_t L0 = 0, L1 = 0;
    const lspec_t *const win = l->win;
    const int nwin = l->nwin;
    for (int j = 0; j < nwin; j++) {
        const lspec_t *s = &win[j];
        if (s->wg != g) {   /* the first spec of a width: its frontier moves on */
            g = s->wg;
            const int64_t cut = sat_sub(ts, s->w);
            L0 = L1 = Ls[g];
            for (const word_t *q = ROW(L0); q[0].i < cut; q += rw) L1++;   /* stops at pos */
            Ls[g] = L1;
        }
        sstate_t *ss = (sstate_t *)(void *)(ssb + s->soff);
        vg_value_t *v = &vals[s->pidx];
        switch (s->kind) {
        case VG_SPEC_COUNT: {
            const size_t fw = 1 + (unsigned)s->off / 64;
            const unsigned sh = (unsigned)s->off % 64;
            int64_t c = ss->a.cnt;
            for (int64_t p = L0; p < L1; p++) c -= (int64_t)(ROW(p)[fw].u >> sh & 1);
            c += (int64_t)(r[fw].u >> sh & 1);
            ss->a.cnt = c;
            *v = vg_num((double)c);
            break;
        }
        case VG_SPEC_SUM:
        case VG_SPEC_AVG:
            sum_update(w, l, s, ss, VG_SPEC_SUM, base, L0, L1, v);
            break;
        case VG_SPEC_STDDEV:
            sum_update(w, l, s, ss, VG_SPEC_STDDEV, base, L0, L1, v);
            break;
        case VG_SPEC_MIN:
        case VG_SPEC_MAX: {
            dq_t *d = &ss->dq;
            if (!d->cap) {
                *v = scan_extreme(w, l, s, L1, end);
                break;
            }
            while (d->n && DQ_AT(d, 0) < L1) {
                d->head = (d->head + 1) & (d->cap - 1);
                d->n--;
            }
            vg_wdq_push(d, w, l, s, pos);
            *v = d->n ? vg_num(ROW(DQ_AT(d, 0))[s->off].d) : vg_null();
            break;
        }
        default: {   /* distinct, seen */
            const uint64_t h = r[s->off].u;
            if (!ss->ht.cap) {
                if (s->kind == VG_SPEC_SEEN)
                    *v = h ? vg_bool(count_hash(w, l, s, L1, pos, h) > 0) : vg_null();
                else
                    *v = vg_num((double)scan_distinct(w, l, s, L1, end));
                break;
            }
            for (int64_t p = L0; p < L1; p++) {
                const uint64_t o = ROW(p)[s->off].u;
                if (o) ht_dec(&ss->ht, o);
            }
            if (s->kind == VG_SPEC_SEEN) *v = h ? vg_bool(ht_get(&ss->ht, h) > 0) : vg_null();
            if (h) vg_wht_inc(&ss->ht, h);
            if (s->kind == VG_SPEC_DISTINCT) *v = vg_num((double)ss->ht.n);
            break;
        }
        }
    }
#undef ROW
}

/* The settled part of min/max spec s's frontier for a late row going to k: returns b
 * (L <= b <= k) such that the extreme of the rows [L, b) is *fx (NaN: none), from the
 * deque of the settled rows (dqf_t), brought up to date first (each row is pushed into
 * it once: O(1) amortized per row; built from [L, b) at the first use). The rows [b, k)
 * lie within the lateness span. Returns -1 when it can't be used (an event later than
 * the lateness: k before the settled rows; out of memory): then [L, k) is scanned. */
static int64_t late_settled(const vg_wstate_t *w, const vg_wlayout_t *l, const lspec_t *s,
                            dq_t *dq, int64_t L, int64_t k, double *fx) {
    *fx = NAN;
    int64_t B = vg_wlower_bound(w, l, sat_sub(w->newest, l->lateness));
    if (B > k) return -1;
    if (B <= L) return L;   /* a window within the lateness: nothing settled */
    dqf_t *f = dq->fz;
    if (!f) {
        if (!(f = calloc(1, sizeof *f))) return -1;
        f->b = -1;
        dq->fz = f;
    }
    dq_t *d = &f->d;
    if (f->b < L) {   /* not valid, or every entry before L */
        d->n = d->head = 0;
        f->b = L;
    }
    while (d->n && DQ_AT(d, 0) < L) {
        d->head = (d->head + 1) & (d->cap - 1);
        d->n--;
    }
    for (int64_t p = f->b; p < B; p++) {
        if (vg_wdq_reserve(d)) {
            f->b = -1;
            return -1;
        }
        vg_wdq_push(d, w, l, s, p);
    }
    atomic_fetch_add_explicit(&st_read, (uint64_t)(B > f->b ? B - f->b : 0), memory_order_relaxed);
    if (B > f->b) f->b = B;
    if (d->n) *fx = wrow(w, l, DQ_AT(d, 0))[s->off].d;
    return f->b;
}

/* The values of a late event (row nr, to be inserted at k) over [ts - w, ts], from the
 * state before its insertion. Returns 0 or VG_ENOMEM (scratch exhausted). */
static int late_values(const vg_wstate_t *w, const vg_wlayout_t *l, int64_t k,
                       const word_t *nr, vg_value_t *vals, vg_arena_t *scratch) {
    int64_t end = w->first + (int64_t)w->n, ts = nr[0].i;
    uint64_t nread = 0;
    for (int i = 0; i < l->n; i++) {
        const lspec_t *s = &l->s[i];
        if (s->soff < 0) continue;
        const sstate_t *ss = wss(w, s);
        int64_t a = vg_wlower_bound(w, l, sat_sub(ts, s->w)), L = *wlp(w, s);
        /* [a, k) directly, or the frontier - [k, end) + [a, L): the shorter (a scanned
         * frontier is small: directly) */
        int adjust = k >= L && (L - a) + (end - k) < (k - a);
        if (kind_hashed(s->kind) && !ss->ht.cap) adjust = 0;
        vg_value_t *v = &vals[s->pidx];
        if (!kind_minmax(s->kind)) nread += (uint64_t)(adjust ? (L - a) + (end - k) : k - a);
        if (kind_minmax(s->kind)) {
            double best = nr[s->off].d;
            int64_t to = k;
            if (k > L && ss->dq.cap && ss->dq.n && DQ_AT(&ss->dq, 0) < k) {
                double x = wrow(w, l, DQ_AT(&ss->dq, 0))[s->off].d;
                if (best != best || better(s->kind, x, best)) best = x;
                to = L;
            } else if (k > L && ss->dq.cap) {
                /* the frontier's extreme is at or after k: [L, k) is the settled rows
                 * [L, b) (their deque) and [b, k), within the lateness span */
                double fx;
                int64_t b = late_settled(w, l, s, &wss(w, s)->dq, L, k, &fx);
                if (b >= 0) {
                    double bs = best;
                    for (int64_t p = a; p < L; p++) {
                        double x = wrow(w, l, p)[s->off].d;
                        if (x == x && (bs != bs || better(s->kind, x, bs))) bs = x;
                    }
                    if (fx == fx && (bs != bs || better(s->kind, fx, bs))) bs = fx;
                    for (int64_t p = b; p < k; p++) {
                        double x = wrow(w, l, p)[s->off].d;
                        if (x == x && (bs != bs || better(s->kind, x, bs))) bs = x;
                    }
                    nread += (uint64_t)((L - a) + (k - b));
                    /* a zero may be -0 or 0, which the scan below tells apart (the
                     * oldest of equal values; the deque keeps the newest) */
                    if (bs != 0) {
                        *v = bs == bs ? vg_num(bs) : vg_null();
                        continue;
                    }
                }
            }
            for (int64_t p = a; p < to; p++) {
                double x = wrow(w, l, p)[s->off].d;
                if (x == x && (best != best || better(s->kind, x, best))) best = x;
            }
            nread += (uint64_t)(to - a);
            *v = best == best ? vg_num(best) : vg_null();
        } else if (s->kind == VG_SPEC_SEEN) {
            uint64_t h = nr[s->off].u;
            if (!h) {
                *v = vg_null();
                continue;
            }
            int64_t c = adjust ? (int64_t)ht_get(&ss->ht, h) - count_hash(w, l, s, k, end, h) +
                                     count_hash(w, l, s, a, L, h)
                               : count_hash(w, l, s, a, k, h);
            *v = vg_bool(c > 0);
        } else if (s->kind == VG_SPEC_DISTINCT) {
            tmap_t t;
            if (tmap_init(&t, scratch, adjust ? (L - a) + (end - k) + 1 : (k - a) + 1))
                return VG_ENOMEM;
            int64_t res = 0;
            if (nr[s->off].u) tmap_add(&t, nr[s->off].u, 1);
            if (adjust) {
                for (int64_t p = k; p < end; p++)
                    if (wrow(w, l, p)[s->off].u) tmap_add(&t, wrow(w, l, p)[s->off].u, -1);
                for (int64_t p = a; p < L; p++)
                    if (wrow(w, l, p)[s->off].u) tmap_add(&t, wrow(w, l, p)[s->off].u, 1);
                res = ss->ht.n;
                for (uint32_t j = 0; j < t.cap; j++) {
                    if (!t.k[j]) continue;
                    int64_t c = ht_get(&ss->ht, t.k[j]);
                    res += (c + t.d[j] > 0) - (c > 0);
                }
            } else {
                for (int64_t p = a; p < k; p++)
                    if (wrow(w, l, p)[s->off].u) tmap_add(&t, wrow(w, l, p)[s->off].u, 1);
                for (uint32_t j = 0; j < t.cap; j++) res += t.k[j] && t.d[j] > 0;
            }
            if (!scratch) free(t.k);
            *v = vg_num((double)res);
        } else {
            acc_t acc;
            memset(&acc, 0, sizeof acc);
            if (adjust) {
                acc_copy(&acc, &ss->a, s->kind);   /* what the spec keeps; the rest 0 */
                for (int64_t p = k; p < end; p++) row_acc(s, wrow(w, l, p), -1, &acc);
                for (int64_t p = a; p < L; p++) row_acc(s, wrow(w, l, p), 1, &acc);
                if (acc.sabs < MAG_DROP * acc.hw) {   /* cancellation: sum directly */
                    memset(&acc, 0, sizeof acc);
                    adjust = 0;
                }
            }
            if (!adjust) {
                for (int64_t p = a; p < k; p++) row_acc(s, wrow(w, l, p), 1, &acc);
            }
            row_acc(s, nr, 1, &acc);
            double mx;
            *v = acc.hw < HUGE_X ? agg_value(s->kind, &acc) : scan_huge(w, l, s, a, k, nr, &mx);
        }
    }
    atomic_fetch_add_explicit(&st_read, nread, memory_order_relaxed);
    return 0;
}

/* Inserts the late row nr at k and fixes the frontiers and the later session runs. */
static void late_insert(vg_wstate_t *w, const vg_wlayout_t *l, int64_t k, const word_t *nr) {
    size_t rw = (size_t)l->rw;
    int64_t end = w->first + (int64_t)w->n;
    word_t *base = wrow(w, l, k);
    memmove(base + rw, base, (size_t)(end - k) * rw * sizeof(word_t));
    atomic_fetch_add_explicit(&st_late, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st_moved, (uint64_t)(end - k), memory_order_relaxed);
    memcpy(base, nr, rw * sizeof(word_t));
    w->n++;
    /* a width whose frontier does not take the row: it went in at k <= L */
    for (int j = 0, g = -1; j < l->nwin; j++) {
        const lspec_t *s = &l->s[l->ix_win[j]];
        if (s->wg == g) continue;   /* (the specs of one width are adjacent in ix_win) */
        g = s->wg;
        if (nr[0].i < sat_sub(w->newest, s->w)) (*wlp(w, s))++;
    }
    for (int i = 0; i < l->n; i++) {
        const lspec_t *s = &l->s[i];
        if (s->soff < 0) continue;
        sstate_t *ss = wss(w, s);
        int dq = kind_minmax(s->kind) && ss->dq.cap;
        if (dq && ss->dq.fz && k < ss->dq.fz->b) ss->dq.fz->b = -1;   /* rows it holds moved */
        if (dq)
            for (uint32_t j = ss->dq.n; j > 0 && DQ_AT(&ss->dq, j - 1) >= k; j--)
                DQ_AT(&ss->dq, j - 1)++;
        if (nr[0].i < sat_sub(w->newest, s->w)) continue;   /* not in the frontier */
        if (dq) {
            dq_insert_mid(&ss->dq, w, l, s, k);
        } else {
            fr_move(s, ss, nr, 1);
            settle(w, l, s, ss);
        }
    }
    for (int64_t p = k + 1; l->nsess && p <= end; p++) {
        word_t *r = wrow(w, l, p), *pr = r - rw;
        for (int j = 0; j < l->nsess; j++) {   /* the session specs, in spec order */
            const lspec_t *s = &l->s[l->ix_sess[j]];
            if (r[s->off + 1].i > 0) sess_run(s, pr, r);
        }
    }
}

/* Makes room for one more entry in each deque and table, building them for frontiers
 * that may outgrow SMALL_ROWS with this event. Returns 0 or VG_ENOMEM (the frontiers
 * still give the same values: a structure built is a function of the rows). */
static int reserve_frontiers(vg_wstate_t *w, const vg_wlayout_t *l) {
    int64_t end = w->first + (int64_t)w->n;
    for (int j = 0; j < l->nds; j++) {
        const lspec_t *s = &l->s[l->ix_ds[j]];
        sstate_t *ss = wss(w, s);
        int built = kind_minmax(s->kind) ? ss->dq.cap != 0 : ss->ht.cap != 0;
        if (!built) {
            if (end - *wlp(w, s) + 1 <= SMALL_ROWS) continue;
            if (vg_wss_build(w, l, s, ss)) return VG_ENOMEM;
        }
        if (kind_minmax(s->kind) ? vg_wdq_reserve(&ss->dq) : ht_reserve(&ss->ht))
            return VG_ENOMEM;
    }
    return 0;
}

/* Drops the deques and tables of frontiers that became small, and counts the bytes of
 * those that stay (dsmem). Can't fail. */
static void drop_small(vg_wstate_t *w, const vg_wlayout_t *l) {
    int64_t end = w->first + (int64_t)w->n;
    size_t m = 0;
    for (int j = 0; j < l->nds; j++) {
        const lspec_t *s = &l->s[l->ix_ds[j]];
        sstate_t *ss = wss(w, s);
        /* (a count spec's state has no deque or table member: never read here) */
        if (end - *wlp(w, s) <= SMALL_DROP && (kind_minmax(s->kind) ? ss->dq.cap : ss->ht.cap))
            ss_drop(ss, s->kind);
        m += ds_bytes(ss, s->kind);
    }
    w->dsmem = m;
}

int vg_wstate_add(vg_wstate_t *w, const vg_wlayout_t *l, int64_t ts,
                  const vg_spec_input_t *in, vg_value_t *vals, vg_arena_t *scratch) {
    if (l->n == 0) {
        if (ts > w->newest) w->newest = ts;
        return 0;
    }
    int late = w->n > 0 && ts < w->newest;
    /* no deque or table exists (dsmem 0) and no frontier can outgrow SMALL_ROWS with this
     * row (each frontier is at most the log, L >= first): reserve_frontiers would build
     * none and drop_small find none, so neither runs (dsmem stays 0) */
    const int ds = l->nds && (w->dsmem || w->n + 1 > SMALL_ROWS);
    /* every allocation first: an error leaves the state unchanged */
    word_t stackrow[STACK_ROW_WORDS];
    word_t *nr = stackrow;
    if (l->rw > STACK_ROW_WORDS) {
        if (!w->tmp && !(w->tmp = malloc((size_t)l->rw * sizeof *w->tmp))) return VG_ENOMEM;
        nr = w->tmp;
    }
    if (vg_wstate_reserve_rows(w, l, 1)) return VG_ENOMEM;
    int64_t end = w->first + (int64_t)w->n;
    int64_t k = late ? upper_bound(w, l, ts) : end;
    if (!late) nr = wrow(w, l, end);   /* in order: built in place (past the log's end) */
    /* the row first: it tells the string bytes; building it changes no state (the byte
     * store's packing and the frontiers' structures read only the rows before end) */
    int nstr;   /* prev() strings (none: store_strings has nothing to do) */
    size_t sbytes = build_row(l, ts, in, k > w->first ? wrow(w, l, k - 1) : NULL, nr, &nstr);
    /* (an empty byte store with no string to take: reserve_sb would do nothing) */
    if (((nstr || w->sb_cap) && reserve_sb(w, l, sbytes)) || (ds && reserve_frontiers(w, l))) {
        w->dsmem = vg_wds_mem(w, l);   /* some structures may have been built */
        return VG_ENOMEM;
    }
    if (late) {
        int rc = late_values(w, l, k, nr, vals, scratch);
        if (rc) {
            w->dsmem = vg_wds_mem(w, l);
            return rc;
        }
    }
    if (nstr) store_strings(w, l, in, nr);
    if (!w->dirty || k < w->dfrom) {   /* rows from k on are new or moved */
        w->dirty = 1;
        w->dfrom = k;
    }
    if (late) {
        late_insert(w, l, k, nr);
    } else {
        w->n++;
        w->newest = ts;
        inorder_update(w, l, vals);
    }
    const word_t *r = wrow(w, l, k), *pred = k > w->first ? wrow(w, l, k - 1) : NULL;
    for (int j = 0; j < l->nsess; j++) {
        const lspec_t *s = &l->s[l->ix_sess[j]];
        vals[s->pidx] = sess_value(s, r);
    }
    for (int j = 0; j < l->nprev; j++) {
        const lspec_t *s = &l->s[l->ix_prev[j]];
        vals[s->pidx] = prev_value(w, s, pred);
    }
    if (!late) retain(w, l);
    if (ds) drop_small(w, l);
    return 0;
}

/* ---- ruleset swap ---- */

/* The spec of `lo` that new spec `s` continues: same kind, window, arguments and
 * canonical text, not taken by an earlier new spec; -1 when none. */
static int old_spec(const vg_wlayout_t *lo, const lspec_t *s, const uint8_t *taken) {
    if (!s->th) return -1;
    for (int i = 0; i < lo->n; i++) {
        const lspec_t *o = &lo->s[i];
        if (!taken[i] && o->th == s->th && o->kind == s->kind && o->w == s->w &&
            o->has_x == s->has_x && o->has_where == s->has_where)
            return i;
    }
    return -1;
}

/* The family of a kind's row words: count bits (1); x or NaN (2); hash or 0 (3); none. */
static int input_family(int kind) {
    if (kind == VG_SPEC_COUNT) return 1;
    if (kind_xagg(kind)) return 2;
    if (kind_hashed(kind)) return 3;
    return 0;
}

#define WARM_ALL (-2)   /* warm_source(): every row counts */

/* Where new spec s (not kept) takes its row words from in `lo`: the index of an old spec
 * of its family with the same inputs, WARM_ALL for a count without `where`, or -1 (cold).
 * Only when the old log covers s's window: W at most lo's longest, same lateness. */
static int warm_source(const vg_wlayout_t *lo, const vg_wlayout_t *ln, const lspec_t *s) {
    int fam = input_family(s->kind);
    if (!fam || lo->n == 0 || s->w > lo->maxw || ln->lateness != lo->lateness) return -1;
    if (s->sig)
        for (int i = 0; i < lo->n; i++)
            if (input_family(lo->s[i].kind) == fam && lo->s[i].sig == s->sig &&
                lo->s[i].has_where == s->has_where)
                return i;
    if (s->kind == VG_SPEC_COUNT && !s->has_where) return WARM_ALL;
    return -1;
}

int vg_wlayout_warm(const vg_wlayout_t *lo, const vg_wlayout_t *ln, int j) {
    if (!lo || !ln || j < 0 || j >= ln->n) return 0;
    const lspec_t *s = &ln->s[j];
    for (int i = 0; i < lo->n; i++) {
        const lspec_t *o = &lo->s[i];
        if (s->th && o->th == s->th && o->kind == s->kind && o->w == s->w &&
            o->has_x == s->has_x && o->has_where == s->has_where)
            return 1;
    }
    return warm_source(lo, ln, s) != -1;
}

vg_wstate_t *vg_wstate_migrate(const vg_wlayout_t *lo, const vg_wlayout_t *ln,
                               const vg_wstate_t *w) {
    int nn = ln->n;
    int *src = malloc(((size_t)nn + 1) * sizeof *src);
    uint8_t *taken = calloc((size_t)lo->n + 1, 1);
    int *warm = malloc(((size_t)nn + 1) * sizeof *warm);
    vg_wstate_t *ns = vg_wstate_new(ln);
    if (!src || !taken || !warm || !ns) goto err;
    for (int j = 0; j < nn; j++) {
        src[j] = old_spec(lo, &ln->s[j], taken);
        if (src[j] >= 0) taken[src[j]] = 1;
        warm[j] = -1;
    }
    for (int j = 0; j < nn; j++) {
        if (src[j] < 0) warm[j] = warm_source(lo, ln, &ln->s[j]);
    }
    if (w->n && vg_wstate_reserve_rows(ns, ln, w->n + 1)) goto err;
    /* string bytes of the prev() specs kept */
    size_t sbytes = 0;
    for (int j = 0; j < nn; j++) {
        if (ln->s[j].kind != VG_SPEC_PREV || src[j] < 0) continue;
        const lspec_t *o = &lo->s[src[j]];
        for (int64_t p = w->first; p < w->first + (int64_t)w->n; p++) {
            const word_t *q = wrow(w, lo, p) + o->off;
            if (type_is_str(prev_type(q))) sbytes += prev_len(q);
        }
    }
    if (sbytes && !(ns->sb = malloc(sbytes))) goto err;
    ns->sb_cap = sbytes;
    ns->first = w->first;   /* the same positions: every row is rewritten (dirty) */
    ns->head = 0;
    ns->n = w->n;
    ns->dirty = w->n > 0;
    ns->dfrom = w->first;
    ns->newest = w->newest;
    for (size_t i = 0; i < w->n; i++) {
        const word_t *r = wrow(w, lo, w->first + (int64_t)i);
        word_t *nr = ns->rows + i * (size_t)ln->rw;
        memset(nr, 0, (size_t)ln->rw * sizeof *nr);
        nr[0] = r[0];
        /* everything but the sessions first, then the kept sessions, then the new ones
         * (session specs of one gap share their run words) */
        for (int pass = 0; pass < 3; pass++)
            for (int j = 0; j < nn; j++) {
                const lspec_t *s = &ln->s[j];
                const lspec_t *o = src[j] >= 0 ? &lo->s[src[j]] : NULL;
                /* a warm spec reads the rows of the old spec with the same inputs */
                if (!o && warm[j] >= 0) o = &lo->s[warm[j]];
                word_t *q = nr + s->off;
                if (pass != (kind_session(s->kind) ? (o ? 1 : 2) : 0)) continue;
                switch (s->kind) {
                case VG_SPEC_COUNT: {
                    int bit = o ? (int)(r[1 + o->off / 64].u >> (o->off % 64) & 1)
                                : warm[j] == WARM_ALL;
                    if (bit) nr[1 + s->off / 64].u |= 1ULL << (s->off % 64);
                    break;
                }
                case VG_SPEC_SUM:
                case VG_SPEC_AVG:
                case VG_SPEC_MIN:
                case VG_SPEC_MAX:
                case VG_SPEC_STDDEV: q->d = o ? r[o->off].d : NAN; break;
                case VG_SPEC_DISTINCT:
                case VG_SPEC_SEEN: q->u = o ? r[o->off].u : 0; break;
                case VG_SPEC_PREV:
                    if (!o) break;   /* null: no predecessor */
                    q[0] = r[o->off];
                    q[1] = r[o->off + 1];
                    if (type_is_str(prev_type(q))) {
                        uint32_t len = prev_len(q);
                        if (len) memcpy(ns->sb + ns->sb_len, w->sb + r[o->off].u, len);
                        q[0].u = ns->sb_len;
                        ns->sb_len += len;
                    }
                    break;
                default: {   /* sessions */
                    if (o) {
                        memcpy(q, r + o->off, (size_t)spec_words(s->kind) * sizeof *q);
                        break;
                    }
                    int shared = 0;   /* a kept session spec of the same gap */
                    for (int k = 0; k < nn; k++)
                        if (src[k] >= 0 && kind_session(ln->s[k].kind) && ln->s[k].off == s->off)
                            shared = 1;
                    if (!shared) {
                        q[0].i = INT64_MIN;   /* cold: this row ends no run */
                        q[1].i = 0;
                    }
                    int kept_sum = 0;   /* a kept session_sum of that gap: x and sum */
                    for (int k = 0; k < nn; k++)
                        if (src[k] >= 0 && ln->s[k].kind == VG_SPEC_SESSION_SUM &&
                            ln->s[k].off == s->off)
                            kept_sum = 1;
                    if (s->kind == VG_SPEC_SESSION_SUM && !kept_sum) {
                        q[2].d = NAN;
                        q[3].d = q[4].d = 0;
                    }
                    break;
                }
                }
            }
    }
    /* the frontiers: positions and counts from the rows; the running sums of kept
     * specs carried over (bit-identical values), new ones recomputed */
    int64_t end = ns->first + (int64_t)ns->n;
    for (int j = 0; j < nn; j++) {
        const lspec_t *s = &ln->s[j];
        if (s->soff < 0) continue;
        sstate_t *ss = wss(ns, s);
        /* (the same L for every spec of a width) */
        const int64_t L = ns->n ? vg_wlower_bound(ns, ln, sat_sub(ns->newest, s->w)) : ns->first;
        *wlp(ns, s) = L;
        if (kind_minmax(s->kind) || kind_hashed(s->kind)) {
            if (end - L > SMALL_ROWS && vg_wss_build(ns, ln, s, ss)) goto err;
        } else if (s->kind == VG_SPEC_COUNT) {
            /* a count's frontier state ends after a.cnt (ss_bytes): never write more */
            int64_t c = 0;
            for (int64_t p = L; p < end; p++)
                if (wrow(ns, ln, p)[1 + s->off / 64].u >> (s->off % 64) & 1) c++;
            ss->a.cnt = c;
        } else if (src[j] >= 0) {
            acc_copy(&ss->a, &wss(w, &lo->s[src[j]])->a, s->kind);   /* sums and ops */
        } else {
            recompute(ns, ln, s, ss);
        }
    }
    ns->dsmem = vg_wds_mem(ns, ln);
    free(src);
    free(taken);
    free(warm);
    return ns;
err:
    free(src);
    free(taken);
    free(warm);
    vg_wstate_free(ns);
    return NULL;
}
