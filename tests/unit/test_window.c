/* test_window.c - unit tests of engine/window.c: exact windows, sessions, history.
 *
 * Randomized streams (in order and late within the lateness, equal times, where, null
 * x, mixed value types) are checked event by event against a brute-force recomputation
 * over every event arrived so far; a twin state is encoded and decoded mid-stream and
 * must give bit-identical values. Hand-written cases pin the boundaries (exactly w,
 * exactly gap, equal times for prev, empty windows), corrupt encodings are rejected,
 * memory stays bounded. A micro-benchmark prints ns per in-order event (no assertion).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/jsonout.h"
#include "engine/window.h"
#include "rules/arena.h"
#include "rules/errors.h"
#include "tests/unit/hash_ref.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) / 9007199254740992.0; }
static int64_t rng_range(uint64_t *s, int64_t n) { return n > 0 ? (int64_t)(rng_next(s) % (uint64_t)n) : 0; }

static const char *POOL[] = {"a", "b", "c", "merchant-0001", "merchant-0002", "",
                             "a long device identifier 0123456789", "d\0e", "US", "FR"};
#define NPOOL ((int)(sizeof POOL / sizeof POOL[0]))

static vg_value_t gen_str(uint64_t *s) {
    int i = (int)rng_range(s, NPOOL);
    return vg_strv(POOL[i], i == 7 ? 3 : (uint32_t)strlen(POOL[i]));
}

static vg_value_t gen_num(uint64_t *s) {
    double u = rng_unit(s);
    if (u < 0.10) return vg_null();
    if (u < 0.60) return vg_num((double)rng_range(s, 100000) / 100.0);
    if (u < 0.70) return vg_num(-(double)rng_range(s, 100000) / 100.0);
    if (u < 0.78) return vg_num(1e6 + rng_unit(s) * 1e9);
    if (u < 0.84) return vg_num(rng_unit(s) * 1e-3);
    if (u < 0.92) return vg_num(42.5);
    return vg_num(0.1);
}

/* Numbers with huge magnitudes now and then (window.c's HUGE_X is 2^480, 3.1e144):
 * sums of squares beyond a double, and sums that cancel, but never a window sum beyond
 * one (|x| <= 1e300), so the brute force's long double stays comparable. */
static vg_value_t gen_huge(uint64_t *s) {
    double u = rng_unit(s);
    if (u < 0.04) return vg_num(rng_range(s, 2) ? 1e300 : -1e300);
    if (u < 0.06) return vg_num(0x1p480 * (1 + rng_unit(s)));
    if (u < 0.08) return vg_num(-0x1p480);
    if (u < 0.10) return vg_num(0x1p479 * 1.999);   /* just below */
    if (u < 0.12) return vg_num(1e155 * (1 + rng_unit(s)));
    return gen_num(s);
}

static vg_value_t gen_any(uint64_t *s) {
    switch (rng_range(s, 8)) {
    case 0: return vg_null();
    case 1: return vg_bool((int)rng_range(s, 2));
    case 2: return vg_num((double)rng_range(s, 4));
    case 3: return vg_num(rng_range(s, 2) ? 0.0 : -0.0);
    case 4: return vg_time(rng_range(s, 3));
    case 5: return vg_dur(rng_range(s, 3));
    default: return gen_str(s);
    }
}

static int val_same(const vg_value_t *a, const vg_value_t *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case VG_T_NULL: return 1;
    case VG_T_BOOL: return a->u.b == b->u.b;
    case VG_T_NUM: return a->u.n == b->u.n;
    case VG_T_TIME:
    case VG_T_DUR: return a->u.ms == b->u.ms;
    default: return a->u.s.len == b->u.s.len && !memcmp(a->u.s.p, b->u.s.p, a->u.s.len);
    }
}

/* Bitwise identical (the codec twin). */
static int val_identical(const vg_value_t *a, const vg_value_t *b) {
    if (a->type == VG_T_NUM && b->type == VG_T_NUM) return !memcmp(&a->u.n, &b->u.n, 8);
    return val_same(a, b);
}

/* ---- a test layout ---- */

enum { XG_NONE, XG_NUM, XG_ANY, XG_STR, XG_HUGE };

typedef struct tspec {
    vg_spec_kind_t kind;
    int64_t w;
    int has_where;
    int xgen;
} tspec_t;

#define MAXS 24
#define PIDX(i) (2 * (i) + 1)   /* program indexes are not 0..n-1 */
#define NSLOT (2 * MAXS + 2)

static vg_wlayout_t *make_layout(const tspec_t *ts, int n, int64_t lateness) {
    vg_spec_t sp[MAXS];
    int idx[MAXS];
    char text[MAXS][32];
    for (int i = 0; i < n; i++) {
        memset(&sp[i], 0, sizeof sp[i]);
        sp[i].kind = ts[i].kind;
        sp[i].window_ms = ts[i].w;
        sp[i].has_x = ts[i].xgen != XG_NONE;
        sp[i].has_where = (uint8_t)ts[i].has_where;
        sp[i].by_group = -1;
        snprintf(text[i], sizeof text[i], "spec%d", i);
        sp[i].text = text[i];
        idx[i] = PIDX(i);
    }
    vg_wlayout_t *l = vg_wlayout_new_specs(sp, idx, n, lateness);
    assert_non_null(l);
    assert_int_equal(vg_wlayout_nspecs(l), n);
    return l;
}

typedef struct tev {
    int64_t ts;
    vg_spec_input_t in[NSLOT];
} tev_t;

static void gen_inputs(uint64_t *s, const tspec_t *sp, int n, tev_t *e) {
    for (int k = 0; k < NSLOT; k++) {
        e->in[k].x = vg_null();
        e->in[k].key = vg_null();
        e->in[k].keep = 0;
    }
    for (int i = 0; i < n; i++) {
        vg_spec_input_t *in = &e->in[PIDX(i)];
        in->keep = sp[i].has_where ? rng_unit(s) < 0.7 : 1;
        switch (sp[i].xgen) {
        case XG_NUM: in->x = gen_num(s); break;
        case XG_ANY: in->x = gen_any(s); break;
        case XG_STR: in->x = rng_unit(s) < 0.1 ? vg_null() : gen_str(s); break;
        case XG_HUGE: in->x = gen_huge(s); break;
        default: break;
        }
    }
}

/* ---- brute force ---- */

typedef struct expect {
    vg_value_t v;
    double mag;    /* tolerance for numbers (0: exact) */
} expect_t;

static int in_spec(const tspec_t *sp, const vg_spec_input_t *in) {
    if (sp->has_where && !in->keep) return 0;
    if (sp->kind == VG_SPEC_COUNT) return 1;
    if (sp->kind == VG_SPEC_DISTINCT) return in->x.type != VG_T_NULL;
    return in->x.type == VG_T_NUM;
}

/* ord[0..pos] are the arrived events sorted by (time, arrival); ord[pos] is the new one. */
static expect_t brute(const tspec_t *sp, int i, const tev_t *ev, const int *ord, int pos) {
    expect_t r = {vg_null(), 0};
    const tev_t *e = &ev[ord[pos]];
    const vg_spec_input_t *me = &e->in[PIDX(i)];
    int64_t t = e->ts;
    switch (sp->kind) {
    case VG_SPEC_PREV:
        if (pos > 0) r.v = ev[ord[pos - 1]].in[PIDX(i)].x;
        if (r.v.type == VG_T_NUM && r.v.u.n != r.v.u.n) r.v = vg_null();
        return r;
    case VG_SPEC_SESSION_COUNT:
    case VG_SPEC_SESSION_SUM:
    case VG_SPEC_SESSION_DURATION: {
        int p = pos;
        long double sum = 0, mag = 0;
        for (;;) {
            const vg_value_t *x = &ev[ord[p]].in[PIDX(i)].x;
            if (x->type == VG_T_NUM) {
                sum += x->u.n;
                mag += fabs(x->u.n);
            }
            if (p == 0 || ev[ord[p]].ts - ev[ord[p - 1]].ts > sp->w) break;
            p--;
        }
        if (sp->kind == VG_SPEC_SESSION_COUNT) r.v = vg_num(pos - p + 1);
        if (sp->kind == VG_SPEC_SESSION_DURATION)
            r.v = vg_num((double)(t - ev[ord[p]].ts) / 1000.0);
        if (sp->kind == VG_SPEC_SESSION_SUM) {
            r.v = vg_num((double)sum);
            r.mag = (double)mag * 1e-9 + 1e-300;
        }
        return r;
    }
    case VG_SPEC_SEEN: {
        if (me->x.type == VG_T_NULL) return r;
        int seen = 0;
        for (int p = pos - 1; p >= 0 && ev[ord[p]].ts >= t - sp->w; p--)
            if (val_same(&ev[ord[p]].in[PIDX(i)].x, &me->x) ||
                (me->x.type == VG_T_NUM && ev[ord[p]].in[PIDX(i)].x.type == VG_T_NUM &&
                 ev[ord[p]].in[PIDX(i)].x.u.n == me->x.u.n))
                seen = 1;
        r.v = vg_bool(seen);
        return r;
    }
    default: break;
    }
    /* windowed aggregates over [t - w, t] */
    int64_t cnt = 0;
    long double sum = 0, mag = 0;
    double mn = INFINITY, mx = -INFINITY;
    vg_value_t dv[64];
    int nd = 0;
    int lo = pos;
    while (lo > 0 && ev[ord[lo - 1]].ts >= t - sp->w) lo--;
    for (int p = lo; p <= pos; p++) {
        const vg_spec_input_t *in = &ev[ord[p]].in[PIDX(i)];
        if (!in_spec(sp, in)) continue;
        cnt++;
        if (sp->kind == VG_SPEC_DISTINCT) {
            int found = 0;
            for (int q = 0; q < nd && !found; q++) found = val_same(&dv[q], &in->x);
            if (!found && nd < 64) dv[nd++] = in->x;
            continue;
        }
        if (sp->kind == VG_SPEC_COUNT) continue;
        double x = in->x.u.n;
        sum += x;
        mag += fabs(x);
        if (x < mn) mn = x;
        if (x > mx) mx = x;
    }
    switch (sp->kind) {
    case VG_SPEC_COUNT: r.v = vg_num((double)cnt); break;
    case VG_SPEC_DISTINCT: r.v = vg_num(nd); break;
    case VG_SPEC_SUM:
        r.v = vg_num((double)sum);
        r.mag = (double)mag * 1e-9 + 1e-300;
        break;
    case VG_SPEC_AVG:
        if (cnt) {
            r.v = vg_num((double)(sum / cnt));
            r.mag = (double)(mag / cnt) * 1e-9 + 1e-300;
        }
        break;
    case VG_SPEC_MIN:
        if (cnt) r.v = vg_num(mn);
        break;
    case VG_SPEC_MAX:
        if (cnt) r.v = vg_num(mx);
        break;
    case VG_SPEC_STDDEV:
        if (cnt) {
            long double mean = sum / cnt, ss = 0;
            for (int p = lo; p <= pos; p++) {
                const vg_spec_input_t *in = &ev[ord[p]].in[PIDX(i)];
                if (!in_spec(sp, in)) continue;
                long double d = in->x.u.n - mean;
                ss += d * d;
            }
            r.v = vg_num((double)sqrtl(ss / cnt));
            r.mag = (double)(mag / cnt) * 1e-9 + 1e-300;
        }
        break;
    default: break;
    }
    return r;
}

static void check(const tspec_t *sp, int i, const expect_t *x, const vg_value_t *got, int ev) {
    int ok;
    if (x->mag > 0 && x->v.type == VG_T_NUM && got->type == VG_T_NUM)
        ok = fabs(x->v.u.n - got->u.n) <= x->mag;
    else if (x->v.type == VG_T_NUM && got->type == VG_T_NUM)
        ok = x->v.u.n == got->u.n;
    else
        ok = val_same(&x->v, got);
    if (got->type == VG_T_NUM && !isfinite(got->u.n)) ok = 0;
    if (!ok) {
        fprintf(stderr, "event %d spec %d (kind %d, w %lld): expected type %d %.17g, got type %d %.17g\n",
                ev, i, sp->kind, (long long)sp->w, x->v.type, x->v.type == VG_T_NUM ? x->v.u.n : 0.0,
                got->type, got->type == VG_T_NUM ? got->u.n : 0.0);
        fail();
    }
}

/* ---- the randomized stream ---- */

static const tspec_t MIXED[] = {
    {VG_SPEC_COUNT, 1 * SEC, 0, XG_NONE},
    {VG_SPEC_COUNT, 1 * HOUR, 1, XG_NONE},
    {VG_SPEC_COUNT, 0, 0, XG_NONE},
    {VG_SPEC_SUM, 10 * MIN, 1, XG_NUM},
    {VG_SPEC_SUM, 1 * SEC, 0, XG_NUM},
    {VG_SPEC_AVG, 1 * DAY, 0, XG_NUM},
    {VG_SPEC_MIN, 1 * MIN, 1, XG_NUM},
    {VG_SPEC_MIN, 1 * DAY, 0, XG_NUM},
    {VG_SPEC_MAX, 1 * HOUR, 1, XG_NUM},
    {VG_SPEC_STDDEV, 30 * MIN, 1, XG_NUM},
    {VG_SPEC_STDDEV, 1 * DAY, 0, XG_NUM},
    {VG_SPEC_DISTINCT, 1 * HOUR, 1, XG_STR},
    {VG_SPEC_DISTINCT, 10 * MIN, 0, XG_ANY},
    {VG_SPEC_SESSION_COUNT, 5 * MIN, 0, XG_NONE},
    {VG_SPEC_SESSION_SUM, 5 * MIN, 0, XG_NUM},
    {VG_SPEC_SESSION_DURATION, 30 * SEC, 0, XG_NONE},
    {VG_SPEC_PREV, 0, 0, XG_ANY},
    {VG_SPEC_PREV, 0, 0, XG_NUM},
    {VG_SPEC_SEEN, 1 * HOUR, 0, XG_STR},
    {VG_SPEC_SEEN, 1 * SEC, 0, XG_ANY},
};
#define NMIXED ((int)(sizeof MIXED / sizeof MIXED[0]))

static vg_wstate_t *roundtrip(vg_wstate_t *w, const vg_wlayout_t *l) {
    vg_buf_t b;
    vg_buf_init(&b);
    assert_int_equal(vg_buf_append(&b, "xy", 2), 0);   /* encode appends */
    assert_int_equal(vg_wstate_encode(w, l, &b), 0);
    vg_wstate_free(w);
    char err[128] = "";
    vg_wstate_t *d = vg_wstate_decode(l, b.p + 2, b.len - 2, err, sizeof err);
    if (!d) fprintf(stderr, "decode: %s\n", err);
    assert_non_null(d);
    vg_buf_deinit(&b);
    return d;
}

/* Runs one stream: step_ms the mean gap between in-order events, p_late the share of
 * late events. */
static void run_stream(uint64_t seed, int nev, int64_t lateness, int64_t step_ms, double p_late,
                       const tspec_t *sp, int ns) {
    uint64_t s = seed;
    vg_wlayout_t *l = make_layout(sp, ns, lateness);
    vg_wstate_t *a = vg_wstate_new(l), *b = vg_wstate_new(l);
    assert_non_null(a);
    assert_non_null(b);
    tev_t *ev = calloc((size_t)nev, sizeof *ev);
    int *ord = calloc((size_t)nev, sizeof *ord);
    assert_non_null(ev);
    assert_non_null(ord);
    vg_arena_t ar;
    vg_arena_init(&ar);
    int64_t newest = 0;
    int next_codec = (int)rng_range(&s, 300);
    for (int j = 0; j < nev; j++) {
        tev_t *e = &ev[j];
        double u = rng_unit(&s);
        if (j == 0) {
            e->ts = 1700000000000LL;
        } else if (u < p_late && lateness > 0) {
            double v = rng_unit(&s);
            if (v < 0.1)
                e->ts = newest - lateness;
            else if (v < 0.3)
                e->ts = ev[rng_range(&s, j)].ts;   /* an existing time (maybe too old) */
            else
                e->ts = newest - rng_range(&s, lateness + 1);
            if (e->ts < newest - lateness) e->ts = newest - lateness;
        } else {
            double v = rng_unit(&s);
            int64_t step = v < 0.25 ? 0
                         : v < 0.97 ? rng_range(&s, 2 * step_ms + 1)
                         : rng_range(&s, 3 * DAY);   /* empty the windows now and then */
            e->ts = newest + step;
        }
        if (e->ts > newest || j == 0) newest = e->ts;
        gen_inputs(&s, sp, ns, e);
        /* place j into ord after every arrived event with time <= ts */
        int pos = j;
        while (pos > 0 && ev[ord[pos - 1]].ts > e->ts) {
            ord[pos] = ord[pos - 1];
            pos--;
        }
        ord[pos] = j;
        vg_value_t va[NSLOT], vb[NSLOT];
        for (int k = 0; k < NSLOT; k++) va[k] = vb[k] = vg_dur(-777);
        assert_int_equal(vg_wstate_add(a, l, e->ts, e->in, va, &ar), 0);
        vg_arena_reset(&ar);
        assert_int_equal(vg_wstate_add(b, l, e->ts, e->in, vb, &ar), 0);
        vg_arena_reset(&ar);
        /* the memory kept up to date agrees with a fresh count */
        assert_int_equal(vg_wstate_mem(a), vg_wstate_mem_recount(a));
        assert_int_equal(vg_wstate_mem(b), vg_wstate_mem_recount(b));
        assert_true(vg_wstate_newest(a) == newest);
        for (int k = 0; k < NSLOT; k++)
            if (k % 2 == 0 || k > PIDX(ns - 1)) assert_true(va[k].type == VG_T_DUR && va[k].u.ms == -777);
        for (int i = 0; i < ns; i++) {
            expect_t x = brute(&sp[i], i, ev, ord, pos);
            check(&sp[i], i, &x, &va[PIDX(i)], j);
            if (!val_identical(&va[PIDX(i)], &vb[PIDX(i)])) {
                fprintf(stderr, "codec twin differs: event %d spec %d\n", j, i);
                fail();
            }
        }
        if (j == next_codec) {
            b = roundtrip(b, l);
            next_codec = j + 1 + (int)rng_range(&s, 400);
        }
    }
    vg_arena_deinit(&ar);
    vg_wstate_free(a);
    vg_wstate_free(b);
    vg_wlayout_free(l);
    free(ev);
    free(ord);
}

/* engine/window_int.h: the hash of distinct/seen values and layout fingerprints. Its
 * values are stored (rows, fingerprints of stored states), so they must never change:
 * compared with the function as first written (tests/unit/hash_ref.h). */
uint64_t vg_whash_bytes(uint64_t seed, const void *data, size_t n);

static void test_hash_values(void **st) {
    (void)st;
    uint64_t x = 0x2545F4914F6CDD1DULL;
    for (int it = 0; it < 20000; it++) {
        size_t n = (size_t)(it % 70);
        unsigned char *b = malloc(n ? n : 1);
        assert_non_null(b);
        ref_random_bytes(&x, b, n, 32);
        uint64_t seed = x * 0x9E3779B97F4A7C15ULL;
        assert_true(vg_whash_bytes(seed, b, n) == ref_window_hash(seed, b, n));
        free(b);
    }
}

static void test_random_in_order(void **st) {
    (void)st;
    for (uint64_t seed = 1; seed <= 3; seed++)
        run_stream(seed, 2500, 0, 20 * SEC, 0, MIXED, NMIXED);
}

static void test_random_late(void **st) {
    (void)st;
    run_stream(11, 2500, 10 * MIN, 20 * SEC, 0.25, MIXED, NMIXED);
    run_stream(12, 2500, 2 * HOUR, 30 * SEC, 0.3, MIXED, NMIXED);
    run_stream(13, 2000, 1 * DAY, 2 * MIN, 0.2, MIXED, NMIXED);
    run_stream(14, 3000, 5 * SEC, 1 * SEC, 0.4, MIXED, NMIXED);   /* dense: 1-5 keys' worth */
}

/* Frontiers that hover around the size where min/max deques and distinct/seen tables
 * are built or dropped (window.c scans small frontiers): about 8 rows in the 1-minute
 * windows (10 s steps) and in the 10-minute ones (75 s steps), in order and late. */
static void test_random_small_frontiers(void **st) {
    (void)st;
    run_stream(21, 3000, 0, 10 * SEC, 0, MIXED, NMIXED);
    run_stream(22, 3000, 1 * MIN, 10 * SEC, 0.3, MIXED, NMIXED);
    run_stream(23, 3000, 10 * MIN, 75 * SEC, 0.3, MIXED, NMIXED);
}

/* One kind at a time, so that layouts with a single spec (no flag words, no prev) work. */
static void test_random_single_kinds(void **st) {
    (void)st;
    for (int i = 0; i < NMIXED; i++) run_stream(100 + (uint64_t)i, 600, 30 * MIN, 30 * SEC, 0.3, &MIXED[i], 1);
}

/* Huge values (|x| >= 2^480) inside windows, in order and late, against the brute
 * force: the running sums would overflow (or turn NaN once such a value leaves); the
 * values must still be exact and the sums usable again once it has left. */
static const tspec_t HUGE_SPECS[] = {
    {VG_SPEC_SUM, 1 * MIN, 0, XG_HUGE},     {VG_SPEC_SUM, 1 * HOUR, 1, XG_HUGE},
    {VG_SPEC_AVG, 10 * MIN, 0, XG_HUGE},    {VG_SPEC_AVG, 1 * DAY, 1, XG_HUGE},
    {VG_SPEC_STDDEV, 1 * MIN, 0, XG_HUGE},  {VG_SPEC_STDDEV, 1 * HOUR, 0, XG_HUGE},
    {VG_SPEC_STDDEV, 1 * DAY, 1, XG_HUGE},  {VG_SPEC_MIN, 1 * HOUR, 0, XG_HUGE},
    {VG_SPEC_MAX, 10 * MIN, 1, XG_HUGE},    {VG_SPEC_COUNT, 1 * HOUR, 1, XG_NONE},
};
#define NHUGE ((int)(sizeof HUGE_SPECS / sizeof HUGE_SPECS[0]))

static void test_random_huge_values(void **st) {
    (void)st;
    run_stream(31, 3000, 0, 20 * SEC, 0, HUGE_SPECS, NHUGE);
    run_stream(32, 3000, 30 * MIN, 30 * SEC, 0.3, HUGE_SPECS, NHUGE);
    run_stream(33, 2000, 1 * DAY, 2 * MIN, 0.2, HUGE_SPECS, NHUGE);
}

/* ---- hand-written cases ---- */

typedef struct one {
    vg_wlayout_t *l;
    vg_wstate_t *w;
    vg_value_t v[NSLOT];
    vg_spec_input_t in[NSLOT];
} one_t;

static void one_init(one_t *o, const tspec_t *sp, int n, int64_t lateness) {
    o->l = make_layout(sp, n, lateness);
    o->w = vg_wstate_new(o->l);
    assert_non_null(o->w);
    for (int k = 0; k < NSLOT; k++) {
        o->in[k].x = vg_null();
        o->in[k].key = vg_null();
        o->in[k].keep = 1;
    }
}
static void one_free(one_t *o) {
    vg_wstate_free(o->w);
    vg_wlayout_free(o->l);
}
static void one_add(one_t *o, int64_t ts) {
    assert_int_equal(vg_wstate_add(o->w, o->l, ts, o->in, o->v, NULL), 0);
}
static double num(const one_t *o, int i) {
    assert_int_equal(o->v[PIDX(i)].type, VG_T_NUM);
    return o->v[PIDX(i)].u.n;
}

static void test_boundary_inclusive(void **st) {
    (void)st;
    tspec_t sp[] = {{VG_SPEC_COUNT, 1000, 0, XG_NONE}, {VG_SPEC_SUM, 1000, 0, XG_NUM}};
    one_t o;
    one_init(&o, sp, 2, 5000);
    o.in[PIDX(1)].x = vg_num(1);
    one_add(&o, 0);
    assert_true(num(&o, 0) == 1 && num(&o, 1) == 1);
    one_add(&o, 1000);   /* 0 is exactly w before: still in */
    assert_true(num(&o, 0) == 2 && num(&o, 1) == 2);
    one_add(&o, 2000);
    assert_true(num(&o, 0) == 2);
    one_add(&o, 3001);
    assert_true(num(&o, 0) == 1);
    one_add(&o, 1000);   /* late: [0, 1000] holds 0, 1000 and itself */
    assert_true(num(&o, 0) == 3 && num(&o, 1) == 3);
    one_add(&o, 3001);   /* [2001, 3001]: 3001 and itself */
    assert_true(num(&o, 0) == 2);
    one_add(&o, 4000);   /* [3000, 4000]: 3001, 3001, itself */
    assert_true(num(&o, 0) == 3);
    one_free(&o);
}

static void test_session_gap(void **st) {
    (void)st;
    tspec_t sp[] = {{VG_SPEC_SESSION_COUNT, 1000, 0, XG_NONE},
                    {VG_SPEC_SESSION_DURATION, 1000, 0, XG_NONE},
                    {VG_SPEC_SESSION_SUM, 1000, 0, XG_NUM}};
    one_t o;
    one_init(&o, sp, 3, 10000);
    o.in[PIDX(2)].x = vg_num(2);
    one_add(&o, 0);
    assert_true(num(&o, 0) == 1 && num(&o, 1) == 0 && num(&o, 2) == 2);
    one_add(&o, 1000);   /* exactly the gap continues */
    assert_true(num(&o, 0) == 2 && num(&o, 1) == 1.0 && num(&o, 2) == 4);
    o.in[PIDX(2)].x = vg_null();
    one_add(&o, 2000);
    assert_true(num(&o, 0) == 3 && num(&o, 1) == 2.0 && num(&o, 2) == 4);
    one_add(&o, 3001);   /* gap + 1 breaks it */
    assert_true(num(&o, 0) == 1 && num(&o, 1) == 0 && num(&o, 2) == 0);
    o.in[PIDX(2)].x = vg_num(1);
    one_add(&o, 2500);   /* late: joins 0..2000 */
    assert_true(num(&o, 0) == 4 && num(&o, 1) == 2.5 && num(&o, 2) == 5);
    one_add(&o, 3500);   /* 2500 now bridges to 3001: one run from 0 */
    assert_true(num(&o, 0) == 6 && num(&o, 1) == 3.5 && num(&o, 2) == 6);
    one_free(&o);
}

static void expect_str(const one_t *o, int i, const char *s) {
    const vg_value_t *v = &o->v[PIDX(i)];
    if (!s) {
        assert_int_equal(v->type, VG_T_NULL);
        return;
    }
    assert_int_equal(v->type, VG_T_STR);
    assert_int_equal(v->u.s.len, strlen(s));
    assert_memory_equal(v->u.s.p, s, strlen(s));
}

static void test_prev_equal_times(void **st) {
    (void)st;
    tspec_t sp[] = {{VG_SPEC_PREV, 0, 0, XG_STR}};
    one_t o;
    one_init(&o, sp, 1, 1000);
    const char *xs[] = {"a", "b", "c", "d", "e", "f", "g"};
    int64_t ts[] = {5, 5, 5, 10, 5, 10, 7};
    const char *want[] = {NULL, "a", "b", "c", "c", "d", "e"};
    for (int i = 0; i < 7; i++) {
        char buf[8];   /* the input's bytes die after the call: prev must copy */
        strcpy(buf, xs[i]);
        o.in[PIDX(0)].x = vg_strv(buf, 1);
        one_add(&o, ts[i]);
        memset(buf, '?', sizeof buf);
        expect_str(&o, 0, want[i]);
    }
    one_free(&o);
}

static void test_empty_windows(void **st) {
    (void)st;
    tspec_t sp[] = {{VG_SPEC_COUNT, 1000, 1, XG_NONE},  {VG_SPEC_SUM, 1000, 0, XG_NUM},
                    {VG_SPEC_AVG, 1000, 0, XG_NUM},     {VG_SPEC_MIN, 1000, 0, XG_NUM},
                    {VG_SPEC_MAX, 1000, 0, XG_NUM},     {VG_SPEC_STDDEV, 1000, 0, XG_NUM},
                    {VG_SPEC_DISTINCT, 1000, 0, XG_ANY}, {VG_SPEC_SEEN, 1000, 0, XG_ANY},
                    {VG_SPEC_PREV, 0, 0, XG_ANY},       {VG_SPEC_SESSION_SUM, 1000, 0, XG_NUM},
                    {VG_SPEC_SUM, 1000, 1, XG_NUM}};
    one_t o;
    one_init(&o, sp, 11, 0);
    o.in[PIDX(0)].keep = 0;
    o.in[PIDX(10)].keep = 0;
    o.in[PIDX(10)].x = vg_num(5);   /* where false: not added */
    for (int r = 0; r < 2; r++) {
        one_add(&o, 100 + r);
        assert_true(num(&o, 0) == 0);
        assert_true(num(&o, 1) == 0 && !signbit(num(&o, 1)));
        for (int i = 2; i <= 5; i++) assert_int_equal(o.v[PIDX(i)].type, VG_T_NULL);
        assert_true(num(&o, 6) == 0);
        assert_int_equal(o.v[PIDX(7)].type, VG_T_NULL);
        assert_int_equal(o.v[PIDX(8)].type, VG_T_NULL);
        assert_true(num(&o, 9) == 0);
        assert_true(num(&o, 10) == 0);
    }
    /* values that leave the window give an exact zero again */
    o.in[PIDX(1)].x = vg_num(0.1);
    o.in[PIDX(5)].x = vg_num(1e15);
    one_add(&o, 200);
    o.in[PIDX(1)].x = vg_num(0.2);
    o.in[PIDX(5)].x = vg_num(3);
    one_add(&o, 300);
    assert_true(fabs(num(&o, 1) - 0.3) < 1e-15);
    o.in[PIDX(1)].x = vg_null();
    o.in[PIDX(5)].x = vg_null();
    one_add(&o, 5000);
    assert_true(num(&o, 1) == 0);
    assert_int_equal(o.v[PIDX(5)].type, VG_T_NULL);
    assert_int_equal(o.v[PIDX(2)].type, VG_T_NULL);
    one_free(&o);
}

/* The cases that went wrong before huge values were summed scaled: a sum that stayed
 * null after two 1e308 had left its window, a stddev of 0 for {1e200, -1e200}. */
static void test_huge_values(void **st) {
    (void)st;
    tspec_t sp[] = {{VG_SPEC_SUM, 1000, 0, XG_NUM}, {VG_SPEC_AVG, 10000, 0, XG_NUM},
                    {VG_SPEC_STDDEV, 10000, 0, XG_NUM}};
    one_t o;
    one_init(&o, sp, 3, 5000);
    double xs[] = {1e308, 1e308, 3};
    int64_t ts[] = {0, 1, 2000};
    for (int i = 0; i < 3; i++) {
        o.in[PIDX(0)].x = o.in[PIDX(1)].x = o.in[PIDX(2)].x = vg_num(xs[i]);
        one_add(&o, ts[i]);
    }
    assert_true(num(&o, 0) == 3);                      /* both 1e308 left the 1 s window */
    assert_true(fabs(num(&o, 1) - (1e308 / 3) * 2) <= 1e-12 * 1e308);   /* (2e308 + 3) / 3 */
    assert_true(fabs(num(&o, 2) - 4.714045207910317e307) <= 1e-12 * 4.7e307);
    o.in[PIDX(0)].x = o.in[PIDX(1)].x = o.in[PIDX(2)].x = vg_num(5);
    one_add(&o, 20000);                                /* every window holds 5 alone */
    assert_true(num(&o, 0) == 5 && num(&o, 1) == 5 && num(&o, 2) == 0);
    o.in[PIDX(0)].x = o.in[PIDX(1)].x = o.in[PIDX(2)].x = vg_num(7);
    one_add(&o, 20001);                                /* and the sums are O(1) again: exact */
    assert_true(num(&o, 0) == 12 && num(&o, 1) == 6 && num(&o, 2) == 1);
    /* a sum of squares beyond a double: {1e200, -1e200} */
    o.in[PIDX(2)].x = vg_num(1e200);
    one_add(&o, 40000);
    o.in[PIDX(2)].x = vg_num(-1e200);
    one_add(&o, 40001);
    assert_true(fabs(num(&o, 2) - 1e200) <= 1e-12 * 1e200);
    /* late, at the first one's time: its window [30000, 40000] holds {1e200, 0} */
    o.in[PIDX(2)].x = vg_num(0);
    one_add(&o, 40000);
    assert_true(fabs(num(&o, 2) - 5e199) <= 1e-12 * 1e200);
    one_add(&o, 40002);   /* {1e200, 0, -1e200, 0} */
    assert_true(fabs(num(&o, 2) - 7.0710678118654757e199) <= 1e-12 * 1e200);
    o.in[PIDX(2)].x = vg_null();
    /* a sum that is beyond a double is null, an average of the same values is not */
    o.in[PIDX(0)].x = o.in[PIDX(1)].x = vg_num(1.5e308);
    one_add(&o, 60000);
    one_add(&o, 60001);
    assert_int_equal(o.v[PIDX(0)].type, VG_T_NULL);
    assert_true(num(&o, 1) == 1.5e308);
    /* the state survives its encoding with infinite sums inside (a state store error
     * on resuming before) */
    o.w = roundtrip(o.w, o.l);
    o.in[PIDX(0)].x = o.in[PIDX(1)].x = vg_num(-1.5e308);
    one_add(&o, 60002);
    assert_true(num(&o, 0) == 1.5e308);   /* 1.5e308 + 1.5e308 - 1.5e308, exactly */
    assert_true(fabs(num(&o, 1) - 0.5e308) <= 1e-12 * 1e308);
    one_free(&o);
}

static void test_values_and_types(void **st) {
    (void)st;
    tspec_t sp[] = {{VG_SPEC_DISTINCT, 1000, 0, XG_ANY}, {VG_SPEC_SEEN, 1000, 0, XG_ANY},
                    {VG_SPEC_PREV, 0, 0, XG_ANY}, {VG_SPEC_STDDEV, 1 * DAY, 0, XG_NUM}};
    one_t o;
    one_init(&o, sp, 4, 0);
    vg_value_t xs[] = {vg_num(0.0), vg_num(-0.0), vg_time(0), vg_dur(0), vg_bool(0),
                       vg_strv("0", 1), vg_num(1), vg_strv("", 0)};
    double want_d[] = {1, 1, 2, 3, 4, 5, 6, 7};
    int want_seen[] = {0, 1, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 8; i++) {
        o.in[PIDX(0)].x = o.in[PIDX(1)].x = o.in[PIDX(2)].x = xs[i];
        o.in[PIDX(3)].x = vg_num(0.1);
        one_add(&o, 10);
        assert_true(num(&o, 0) == want_d[i]);
        assert_int_equal(o.v[PIDX(1)].type, VG_T_BOOL);
        assert_int_equal(o.v[PIDX(1)].u.b, want_seen[i]);
        if (i) assert_true(val_same(&o.v[PIDX(2)], &xs[i - 1]));
        assert_true(num(&o, 3) < 1e-15);   /* equal values: no rounding noise */
    }
    one_free(&o);
}

static void test_codec_rejects_corrupt(void **st) {
    (void)st;
    tspec_t sp[] = {{VG_SPEC_SUM, 1000, 0, XG_NUM}, {VG_SPEC_PREV, 0, 0, XG_STR},
                    {VG_SPEC_DISTINCT, 1000, 0, XG_STR}, {VG_SPEC_MAX, 1000, 0, XG_NUM}};
    one_t o;
    one_init(&o, sp, 4, 100);
    for (int i = 0; i < 6; i++) {
        o.in[PIDX(0)].x = o.in[PIDX(3)].x = vg_num(i * 1.5);
        o.in[PIDX(1)].x = o.in[PIDX(2)].x = vg_strv(POOL[i], (uint32_t)strlen(POOL[i]));
        one_add(&o, 100 * i);
    }
    vg_buf_t b;
    vg_buf_init(&b);
    assert_int_equal(vg_wstate_encode(o.w, o.l, &b), 0);
    char err[128];
    vg_wstate_t *d = vg_wstate_decode(o.l, b.p, b.len, err, sizeof err);
    assert_non_null(d);
    vg_wstate_free(d);
    for (size_t n = 0; n < b.len; n++) {
        err[0] = 0;
        assert_null(vg_wstate_decode(o.l, b.p, n, err, sizeof err));
        assert_true(err[0] != 0);
    }
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            b.p[i] ^= (char)(1 << bit);
            assert_null(vg_wstate_decode(o.l, b.p, b.len, err, sizeof err));
            b.p[i] ^= (char)(1 << bit);
        }
    }
    /* another layout (other lateness) refuses it */
    vg_wlayout_t *l2 = make_layout(sp, 4, 101);
    assert_true(vg_wlayout_fingerprint(l2) != vg_wlayout_fingerprint(o.l));
    err[0] = 0;
    assert_null(vg_wstate_decode(l2, b.p, b.len, err, sizeof err));
    assert_true(strstr(err, "layout") != NULL);
    vg_wlayout_free(l2);
    vg_buf_deinit(&b);
    one_free(&o);
}

static void test_memory_bounded(void **st) {
    (void)st;
    one_t o;
    one_init(&o, MIXED, NMIXED, 1 * MIN);
    for (int i = 0; i < NMIXED; i++) {
        o.in[PIDX(i)].x = MIXED[i].xgen == XG_NUM ? vg_num(i) : vg_strv("abcdefghij", 10);
    }
    /* one event per minute for 20 days: the 1-day windows hold 1440 events */
    size_t m10 = 0;
    for (int64_t j = 0; j < 20 * 1440; j++) {
        one_add(&o, j * MIN);
        if (j == 10 * 1440) m10 = vg_wstate_mem(o.w);
    }
    size_t m20 = vg_wstate_mem(o.w);
    assert_true(m10 > 0 && m20 <= 2 * m10);
    /* then a sparse period: memory shrinks back */
    for (int64_t j = 0; j < 100; j++) one_add(&o, 30 * DAY + j * DAY);
    assert_true(vg_wstate_mem(o.w) < m20 / 4);
    one_free(&o);
}

static void test_empty_layout(void **st) {
    (void)st;
    vg_wlayout_t *l = vg_wlayout_new_specs(NULL, NULL, 0, 0);
    assert_non_null(l);
    vg_wstate_t *w = vg_wstate_new(l);
    assert_non_null(w);
    assert_true(vg_wstate_newest(w) == INT64_MIN);
    assert_int_equal(vg_wstate_add(w, l, 5, NULL, NULL, NULL), 0);
    assert_true(vg_wstate_newest(w) == 5);
    w = roundtrip(w, l);
    vg_wstate_free(w);
    vg_wlayout_free(l);
}

/* A caller that breaks the lateness contract gets approximate values, never a crash,
 * NaN or infinity; and the state keeps working for later in-order events. */
static void test_too_late_is_safe(void **st) {
    (void)st;
    uint64_t s = 99;
    vg_wlayout_t *l = make_layout(MIXED, NMIXED, 1 * MIN);
    vg_wstate_t *w = vg_wstate_new(l);
    assert_non_null(w);
    tev_t e;
    int64_t newest = 0;
    vg_value_t v[NSLOT];
    for (int j = 0; j < 3000; j++) {
        e.ts = rng_unit(&s) < 0.3 ? newest - rng_range(&s, 3 * DAY) : newest + rng_range(&s, 5 * MIN);
        if (e.ts > newest) newest = e.ts;
        gen_inputs(&s, MIXED, NMIXED, &e);
        assert_int_equal(vg_wstate_add(w, l, e.ts, e.in, v, NULL), 0);
        for (int i = 0; i < NMIXED; i++)
            if (v[PIDX(i)].type == VG_T_NUM) assert_true(isfinite(v[PIDX(i)].u.n));
        if (j % 500 == 0) w = roundtrip(w, l);
        assert_int_equal(vg_wstate_mem(w), vg_wstate_mem_recount(w));
    }
    vg_wstate_free(w);
    vg_wlayout_free(l);
}

/* min/max of a late event when the frontier's extreme is newer than it (rising values):
 * the value of [ts - w, ts] comes from the deque of the settled rows (older than the
 * newest - lateness) plus the rows within the lateness span, not from a scan of the
 * whole window. Checked against a scan of the arrived events (oldest first, as the
 * late path orders equal values: -0 and 0), and the rows read per late event stay
 * within the lateness span (they were the whole window: ~3,000 rows per late event). */
static void test_late_minmax_bounded(void **st) {
    (void)st;
    static const tspec_t SP[] = {{VG_SPEC_MAX, 30 * DAY, 0, XG_NUM},
                                 {VG_SPEC_MIN, 30 * DAY, 0, XG_NUM},
                                 {VG_SPEC_MAX, 1 * HOUR, 0, XG_NUM}};
    const int ns = 3, n = 6000;
    for (int mode = 0; mode < 2; mode++) {   /* rising values; zeros of both signs */
        vg_wlayout_t *l = make_layout(SP, ns, 1 * MIN);
        vg_wstate_t *w = vg_wstate_new(l);
        assert_non_null(w);
        int64_t *ts = malloc((size_t)n * sizeof *ts);
        double *xs = malloc((size_t)n * sizeof *xs);
        int *ord = malloc((size_t)n * sizeof *ord);
        assert_true(ts && xs && ord);
        uint64_t s = 77 + (uint64_t)mode;
        int64_t newest = 0;
        int nlate = 0;
        vg_wstats_t st0, st1;
        vg_wstats_get(&st0);
        for (int j = 0; j < n; j++) {
            int64_t t = (int64_t)j * SEC;
            if (rng_unit(&s) < 0.1 && t - 60 * SEC >= newest - 1 * MIN && t > 60 * SEC)
                t -= 60 * SEC;
            if (t < newest - 1 * MIN) t = newest - 1 * MIN;
            ts[j] = t;
            double x = mode == 0 ? (double)j
                                 : (double[]){0.0, -0.0, -1.0, 0.0, -0.0}[rng_range(&s, 5)];
            if (mode == 1 && j % 7 == 0) x = 1.0 * (double)(j % 3) - 2.0;
            xs[j] = x;
            int late = j > 0 && t < newest;
            nlate += late;
            if (t > newest) newest = t;
            int pos = j;   /* arrival order, sorted by time (equal times: after) */
            while (pos > 0 && ts[ord[pos - 1]] > t) {
                ord[pos] = ord[pos - 1];
                pos--;
            }
            ord[pos] = j;
            vg_spec_input_t in[NSLOT];
            memset(in, 0, sizeof in);
            for (int i = 0; i < ns; i++) {
                in[PIDX(i)].x = vg_num(x);
                in[PIDX(i)].keep = 1;
            }
            vg_value_t v[NSLOT];
            assert_int_equal(vg_wstate_add(w, l, t, in, v, NULL), 0);
            assert_int_equal(vg_wstate_mem(w), vg_wstate_mem_recount(w));
            if (!late && j % 97) continue;
            for (int i = 0; i < ns; i++) {
                /* the event itself first, then its window oldest first (strictly better) */
                double best = x;
                for (int q = 0; q < pos; q++) {
                    double y = xs[ord[q]];
                    if (ts[ord[q]] < t - SP[i].w) continue;
                    if (SP[i].kind == VG_SPEC_MAX ? y > best : y < best) best = y;
                }
                assert_int_equal(v[PIDX(i)].type, VG_T_NUM);
                if (late) {
                    if (memcmp(&best, &v[PIDX(i)].u.n, 8)) {
                        fprintf(stderr, "mode %d event %d spec %d: %g, expected %g\n", mode, j,
                                i, v[PIDX(i)].u.n, best);
                        fail();
                    }
                } else {
                    assert_true(best == v[PIDX(i)].u.n);
                }
            }
        }
        vg_wstats_get(&st1);
        assert_true(st1.late_events - st0.late_events >= (uint64_t)nlate);
        if (mode == 0) {
            /* each row is pushed into a settled deque once per spec, and a late event
             * reads the rows of the lateness span (~60 at each end of its window) */
            uint64_t per = (st1.rows_read - st0.rows_read) / (uint64_t)nlate;
            fprintf(stderr, "late min/max: %d late events, %.1f rows read each\n", nlate,
                    (double)(st1.rows_read - st0.rows_read) / nlate);
            assert_true(nlate > 300);
            assert_true(per < 1000);
        }
        free(ts);
        free(xs);
        free(ord);
        vg_wstate_free(w);
        vg_wlayout_free(l);
    }
}

/* Not an assertion: prints ns per in-order event for 12 specs. */
static void test_bench_print(void **st) {
    (void)st;
    static const tspec_t sp[] = {
        {VG_SPEC_COUNT, 10 * MIN, 0, XG_NONE},   {VG_SPEC_SUM, 1 * HOUR, 0, XG_NUM},
        {VG_SPEC_AVG, 30 * DAY, 0, XG_NUM},      {VG_SPEC_DISTINCT, 1 * DAY, 0, XG_STR},
        {VG_SPEC_COUNT, 1 * MIN, 1, XG_NONE},    {VG_SPEC_MAX, 1 * DAY, 0, XG_NUM},
        {VG_SPEC_STDDEV, 7 * DAY, 0, XG_NUM},    {VG_SPEC_SESSION_COUNT, 30 * MIN, 0, XG_NONE},
        {VG_SPEC_SESSION_SUM, 30 * MIN, 0, XG_NUM}, {VG_SPEC_SESSION_DURATION, 30 * MIN, 0, XG_NONE},
        {VG_SPEC_PREV, 0, 0, XG_NUM},            {VG_SPEC_SEEN, 90 * DAY, 0, XG_STR}};
    int n = 12, nev = 200000;
    uint64_t s = 7;
    one_t o;
    one_init(&o, sp, n, 1 * HOUR);
    vg_arena_t ar;
    vg_arena_init(&ar);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t ts = 0;
    for (int j = 0; j < nev; j++) {
        ts += rng_range(&s, 20 * MIN);   /* ~2 events per 20 min: ~2200 in 30 days */
        for (int i = 0; i < n; i++) {
            o.in[PIDX(i)].keep = (int)(j & 1);
            o.in[PIDX(i)].x = sp[i].xgen == XG_STR ? vg_strv(&"aabbccddeeffgghh"[2 * (j % 8)], 2) : vg_num((double)(j % 997));
        }
        assert_int_equal(vg_wstate_add(o.w, o.l, ts, o.in, o.v, &ar), 0);
        vg_arena_reset(&ar);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / nev;
    fprintf(stderr, "bench: %.0f ns per in-order event, 12 specs, %zu bytes of state\n", ns,
            vg_wstate_mem(o.w));
    vg_arena_deinit(&ar);
    one_free(&o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boundary_inclusive),
        cmocka_unit_test(test_session_gap),
        cmocka_unit_test(test_prev_equal_times),
        cmocka_unit_test(test_empty_windows),
        cmocka_unit_test(test_values_and_types),
        cmocka_unit_test(test_huge_values),
        cmocka_unit_test(test_random_huge_values),
        cmocka_unit_test(test_codec_rejects_corrupt),
        cmocka_unit_test(test_empty_layout),
        cmocka_unit_test(test_too_late_is_safe),
        cmocka_unit_test(test_late_minmax_bounded),
        cmocka_unit_test(test_memory_bounded),
        cmocka_unit_test(test_hash_values),
        cmocka_unit_test(test_random_in_order),
        cmocka_unit_test(test_random_late),
        cmocka_unit_test(test_random_small_frontiers),
        cmocka_unit_test(test_random_single_kinds),
        cmocka_unit_test(test_bench_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
