/* test_state.c - per-key state (engine/state.c): duplicates, the account map, by-key
 * windows (null and late keys), checkpoints and reopening, eviction under a memory
 * budget, and refusal of a state made by other rules. Uses a real RocksDB store in a
 * temporary directory and a program compiled from a small .vrl source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/state.h"
#include "engine/store.h"
#include "rules/errors.h"
#include "tests/unit/hash_ref.h"

#define H (3600LL * 1000)
#define T0 (1700000000000LL)

static const char *SRC =
    "feature n = count(1h)\n"
    "feature s = sum(tx.amount, 1h)\n"
    "feature c = count(1h by tx.card)\n"
    "feature cs = sum(tx.amount, 1h by tx.card)\n";

/* The program, its spec indexes, and per-event buffers. */
typedef struct fx {
    vg_program_t *p;
    int nspecs;
    int i_n, i_s, i_c, i_cs;
    vg_spec_input_t *in;
    vg_value_t *vals;
    vg_arena_t arena;
    vg_buf_t dec;
    char dir[64];
} fx_t;

static vg_program_t *compile(const char *src) {
    vg_source_t s = {"test.vrl", src, strlen(src)};
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(&s, 1, &d);
    if (!p) vg_diags_print(&d, &s, 1, stderr);
    vg_diags_deinit(&d);
    return p;
}

static void rm_rf(const char *dir) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
}

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    f->p = compile(SRC);
    if (!f->p) return -1;
    f->nspecs = vg_prog_nspecs(f->p);
    f->i_n = f->i_s = f->i_c = f->i_cs = -1;
    for (int i = 0; i < f->nspecs; i++) {
        const vg_spec_t *s = vg_prog_spec(f->p, i);
        if (s->kind == VG_SPEC_COUNT && s->by_group < 0) f->i_n = i;
        if (s->kind == VG_SPEC_SUM && s->by_group < 0) f->i_s = i;
        if (s->kind == VG_SPEC_COUNT && s->by_group == 0) f->i_c = i;
        if (s->kind == VG_SPEC_SUM && s->by_group == 0) f->i_cs = i;
    }
    if (f->i_n < 0 || f->i_s < 0 || f->i_c < 0 || f->i_cs < 0) return -1;
    f->in = calloc((size_t)f->nspecs, sizeof *f->in);
    f->vals = calloc((size_t)f->nspecs, sizeof *f->vals);
    vg_arena_init(&f->arena);
    vg_buf_init(&f->dec);
    strcpy(f->dir, "/tmp/vg_state_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    vg_prog_unref(f->p);
    free(f->in);
    free(f->vals);
    vg_arena_deinit(&f->arena);
    vg_buf_deinit(&f->dec);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static vg_store_t *open_store(fx_t *f) {
    char err[512];
    vg_store_t *s = vg_store_open(f->dir, err, sizeof err);
    if (!s) fprintf(stderr, "%s\n", err);
    assert_non_null(s);
    return s;
}

static vg_state_t *new_state(fx_t *f, vg_store_t *store, size_t budget) {
    vg_state_opts_t o = {.lateness_ms = H, .dedupe_horizon_ms = 24 * H,
                         .mem_budget = budget, .store = store};
    char err[256] = "";
    vg_state_t *st = vg_state_new(f->p, &o, err, sizeof err);
    if (!st) fprintf(stderr, "%s\n", err);
    assert_non_null(st);
    return st;
}

enum { R_DECIDED, R_DUP, R_LATE };

/* One event through the state as the pipeline does it: account, duplicate check,
 * lateness, apply, remember a decision made of the spec values (into f->dec). */
static int event(fx_t *f, vg_state_t *st, const char *acct, const char *id, int64_t ts,
                 double amount, const char *card) {
    vg_acct_t *a;
    assert_int_equal(vg_state_account(st, acct, strlen(acct), &a), 0);
    const char *d;
    size_t dl;
    vg_buf_clear(&f->dec);
    if (vg_state_find_dup(st, a, id, strlen(id), &d, &dl)) {
        assert_int_equal(vg_buf_append(&f->dec, d, dl), 0);
        return R_DUP;
    }
    int64_t newest = vg_state_newest(a);
    if (newest != INT64_MIN && ts < newest - H) return R_LATE;
    vg_tx_t tx;
    for (int i = 0; i < VG_FIELD__COUNT; i++) tx.f[i] = vg_null();
    tx.extra = NULL;
    tx.n_extra = 0;
    tx.f[VG_FIELD_ID] = vg_strv(id, (uint32_t)strlen(id));
    tx.f[VG_FIELD_ACCOUNT] = vg_strv(acct, (uint32_t)strlen(acct));
    tx.f[VG_FIELD_TS] = vg_time(ts);
    tx.f[VG_FIELD_AMOUNT] = vg_num(amount);
    if (card) tx.f[VG_FIELD_CARD] = vg_strv(card, (uint32_t)strlen(card));
    vg_arena_reset(&f->arena);
    assert_int_equal(vg_prog_eval_inputs(f->p, &tx, NULL, &f->arena, f->in), 0);
    assert_int_equal(vg_state_apply(st, a, ts, f->in, f->vals, &f->arena), 0);
    /* a line like the pipeline's, so that decisions are packed (engine/dpack.h); its
     * head (id, account, time) left to the state to rebuild for ids ending in an odd
     * byte, stored whole for the others, so that both kinds of record are exercised */
    char line[512];
    vg_buf_t hb;
    vg_buf_init(&hb);
    assert_int_equal(vg_state_decision_head(&hb, id, strlen(id), acct, strlen(acct), ts), 0);
    assert_true(hb.len < 256);
    memcpy(line, hb.p, hb.len);
    size_t head = (id[0] && (id[strlen(id) - 1] & 1)) ? hb.len : 0;
    int n = (int)hb.len;
    vg_buf_deinit(&hb);
    n += snprintf(line + n, sizeof line - (size_t)n,
                  "\",\"decision\":\"allow\",\"score\":0,\"rules\":[],\"shadow\":[],"
                  "\"features\":{");
    for (int i = 0; i < f->nspecs; i++) {
        n += snprintf(line + n, sizeof line - (size_t)n, "%s\"spec_%d\":", i ? "," : "", i);
        if (f->vals[i].type == VG_T_NUM)
            n += snprintf(line + n, sizeof line - (size_t)n, "%.17g", f->vals[i].u.n);
        else if (f->vals[i].type == VG_T_NULL)
            n += snprintf(line + n, sizeof line - (size_t)n, "null");
        else
            n += snprintf(line + n, sizeof line - (size_t)n, "t%d", f->vals[i].type);
    }
    n += snprintf(line + n, sizeof line - (size_t)n, "},\"anomaly\":{},\"ruleset\":1}");
    assert_int_equal(vg_buf_append(&f->dec, line, (size_t)n), 0);
    assert_int_equal(vg_state_remember(st, a, id, strlen(id), ts, line, (size_t)n, head), 0);
    return R_DECIDED;
}

static double num(const vg_value_t *v) {
    assert_int_equal(v->type, VG_T_NUM);
    return v->u.n;
}

/* ---- duplicates ------------------------------------------------------------------ */

/* vg_state_hash gives the reference's values (tests/unit/hash_ref.h: the ids' hashes are
 * stored with the remembered decisions) for every length 0..64 (each tail length with
 * and without whole words before it), on buffers of exactly that length. */
static void test_hash_values(void **state) {
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int it = 0; it < 20000; it++) {
        size_t n = (size_t)(it % 65);
        unsigned char *b = malloc(n ? n : 1);
        assert_non_null(b);
        ref_random_bytes(&x, b, n, 24);
        assert_true(vg_state_hash((const char *)b, n) == ref_state_hash(b, n));
        free(b);
    }
    assert_true(vg_state_hash("acct-0001", 9) ==
                ref_state_hash((const unsigned char *)"acct-0001", 9));
}

static void test_dedupe_exact_within_horizon(void **state) {
    fx_t *f = *state;
    vg_state_t *st = new_state(f, NULL, 0);
    assert_int_equal(event(f, st, "acc", "e1", T0, 10, "c1"), R_DECIDED);
    char first[512];
    snprintf(first, sizeof first, "%.*s", (int)f->dec.len, f->dec.p);
    assert_int_equal(event(f, st, "acc", "e2", T0 + 1000, 5, "c1"), R_DECIDED);
    /* exact id: the original decision bytes */
    assert_int_equal(event(f, st, "acc", "e1", T0 + 2000, 99, "c1"), R_DUP);
    assert_int_equal(f->dec.len, strlen(first));
    assert_memory_equal(f->dec.p, first, f->dec.len);
    /* prefixes, extensions and other accounts are not duplicates */
    assert_int_equal(event(f, st, "acc", "e", T0 + 3000, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "acc", "e1x", T0 + 4000, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "acc2", "e1", T0 + 5000, 1, NULL), R_DECIDED);
    /* the duplicate did not change state: count(1h) of acc is 5 with the next event */
    assert_int_equal(event(f, st, "acc", "e5", T0 + 6000, 1, NULL), R_DECIDED);
    assert_int_equal(num(&f->vals[f->i_n]), 5);

    /* exactly at the horizon it is still a duplicate; 1 ms past it is forgotten */
    assert_int_equal(event(f, st, "acc", "n1", T0 + 24 * H, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "acc", "e1", T0 + 24 * H, 1, NULL), R_DUP);
    assert_int_equal(event(f, st, "acc", "n2", T0 + 24 * H + 1, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "acc", "e1", T0 + 24 * H + 2, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "acc", "e2", T0 + 24 * H + 3, 1, NULL), R_DUP);

    /* an out-of-order event expires by its own time, even behind a newer one */
    assert_int_equal(event(f, st, "b", "new", T0 + H / 2, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "b", "old", T0, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "b", "x", T0 + 24 * H + H / 4, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "b", "new", T0 + 24 * H + H / 4, 1, NULL), R_DUP);
    assert_int_equal(event(f, st, "b", "old", T0 + 24 * H + H / 4, 1, NULL), R_DECIDED);

    /* every record past the horizon, the latest not the last to arrive: all forgotten */
    assert_int_equal(event(f, st, "c", "c1", T0 + H, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "c", "c2", T0, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "c", "c3", T0 + 25 * H + 1, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "c", "c1", T0 + 25 * H + 2, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "c", "c2", T0 + 25 * H + 3, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "c", "c3", T0 + 25 * H + 4, 1, NULL), R_DUP);
    /* the latest record exactly at the horizon is kept, the one before it is not */
    assert_int_equal(event(f, st, "d", "d0", T0 - 1, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "d", "d1", T0, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "d", "d2", T0 + 24 * H, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "d", "d1", T0 + 24 * H, 1, NULL), R_DUP);
    assert_int_equal(event(f, st, "d", "d0", T0 + 24 * H, 1, NULL), R_DECIDED);
    vg_state_free(st);
}

static void test_dedupe_memory_bounded(void **state) {
    fx_t *f = *state;
    vg_state_opts_t o = {.lateness_ms = 10 * 1000, .dedupe_horizon_ms = 10 * 1000};
    vg_state_t *st = vg_state_new(f->p, &o, NULL, 0);
    assert_non_null(st);
    vg_acct_t *a;
    assert_int_equal(vg_state_account(st, "x", 1, &a), 0);
    char id[32], dec[400];
    memset(dec, 'd', sizeof dec);
    vg_state_stats_t s1, s2;
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "id-%d", i);
        dec[0] = (char)('a' + i % 26);
        assert_int_equal(vg_state_remember(st, a, id, strlen(id), T0 + i * 1000LL, dec,
                                           sizeof dec, 0), 0);
        if (i == 1000) vg_state_get_stats(st, &s1);
        /* ids in the last 10 s are found with their own decision; older ones are not */
        if (i % 997 == 0 && i >= 20) {
            const char *d;
            size_t dl;
            snprintf(id, sizeof id, "id-%d", i - 10);
            assert_int_equal(vg_state_find_dup(st, a, id, strlen(id), &d, &dl), 1);
            assert_int_equal(dl, sizeof dec);
            assert_int_equal(d[0], 'a' + (i - 10) % 26);
            snprintf(id, sizeof id, "id-%d", i - 11);
            assert_int_equal(vg_state_find_dup(st, a, id, strlen(id), &d, &dl), 0);
        }
    }
    vg_state_get_stats(st, &s2);
    /* 11 live entries of ~400 bytes: the memory does not grow with the stream */
    assert_true(s2.bytes <= s1.bytes + 4096);
    vg_state_free(st);
}

/* A dedupe horizon shorter than the lateness: an id is kept as long as its event may
 * come late, so a resend within the lateness is a duplicate (it was forgotten at the
 * next event and counted again at each resend). */
static void test_dedupe_horizon_covers_lateness(void **state) {
    fx_t *f = *state;
    vg_state_opts_t o = {.lateness_ms = H, .dedupe_horizon_ms = 30 * 60 * 1000LL};
    vg_state_t *st = vg_state_new(f->p, &o, NULL, 0);
    assert_non_null(st);
    assert_int_equal(event(f, st, "a", "x", T0, 100, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "a", "y", T0 + 45 * 60 * 1000LL, 1, NULL), R_DECIDED);
    assert_int_equal(event(f, st, "a", "x", T0, 100, NULL), R_DUP);
    assert_int_equal(event(f, st, "a", "x", T0, 100, NULL), R_DUP);
    assert_int_equal(event(f, st, "a", "z", T0 + 50 * 60 * 1000LL, 1, NULL), R_DECIDED);
    assert_int_equal(num(&f->vals[f->i_n]), 3);   /* x, y, z: x once */
    vg_state_free(st);
}

/* A heavy account: thousands of live ids (the indexed lookup), across compactions. */
static void test_dedupe_many_live(void **state) {
    fx_t *f = *state;
    vg_state_t *st = new_state(f, NULL, 0);   /* horizon 24 h */
    vg_acct_t *a;
    assert_int_equal(vg_state_account(st, "heavy", 5, &a), 0);
    char id[32], dec[32];
    const int64_t step = 10000;               /* 8640 ids per horizon */
    for (int i = 0; i < 30000; i++) {
        snprintf(id, sizeof id, "tx-%d", i);
        snprintf(dec, sizeof dec, "d%d", i);
        assert_int_equal(vg_state_remember(st, a, id, strlen(id), T0 + i * step, dec,
                                           strlen(dec), 0), 0);
        if (i % 1001 == 0 || i == 29999) {
            for (int k = 0; k <= 8641 && k <= i; k += (k < 8630 ? 97 : 1)) {
                const char *d;
                size_t dl;
                snprintf(id, sizeof id, "tx-%d", i - k);
                int want = k <= 8640;
                assert_int_equal(vg_state_find_dup(st, a, id, strlen(id), &d, &dl), want);
                if (want) {
                    snprintf(dec, sizeof dec, "d%d", i - k);
                    assert_int_equal(dl, strlen(dec));
                    assert_memory_equal(d, dec, dl);
                }
            }
            assert_int_equal(vg_state_find_dup(st, a, "tx-", 3, &(const char *){0},
                                               &(size_t){0}), 0);
        }
    }
    vg_state_free(st);
}

/* ---- the account map --------------------------------------------------------------- */

static void test_many_accounts(void **state) {
    fx_t *f = *state;
    vg_state_t *st = new_state(f, NULL, 0);
    char name[32];
    enum { N = 100000 };
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "acct-%d", i);
        vg_acct_t *a;
        assert_int_equal(vg_state_account(st, name, strlen(name), &a), 0);
        assert_int_equal(vg_state_newest(a), INT64_MIN);
        assert_int_equal(vg_state_remember(st, a, "i", 1, T0 + i, name, strlen(name), 0), 0);
    }
    vg_state_stats_t s;
    vg_state_get_stats(st, &s);
    assert_int_equal(s.accounts_in_memory, N);
    for (int i = 0; i < N; i += 7) {
        snprintf(name, sizeof name, "acct-%d", i);
        /* prefetch hints (present and absent accounts) change nothing */
        for (int stage = 0; stage < 3; stage++) {
            vg_state_prefetch(st, name, strlen(name), stage);
            vg_state_prefetch(st, "nobody", 6, stage);
        }
        vg_acct_t *a;
        assert_int_equal(vg_state_account(st, name, strlen(name), &a), 0);
        assert_int_equal(vg_state_newest(a), T0 + i);
        const char *d;
        size_t dl;
        assert_int_equal(vg_state_find_dup(st, a, "i", 1, &d, &dl), 1);
        assert_int_equal(dl, strlen(name));
        assert_memory_equal(d, name, dl);
    }
    vg_state_get_stats(st, &s);
    assert_int_equal(s.accounts_in_memory, N);
    /* an evict without a store does nothing */
    assert_int_equal(vg_state_evict(st), 0);
    vg_state_free(st);
}

/* ---- by-key windows ---------------------------------------------------------------- */

static void test_bykey_null_and_late(void **state) {
    fx_t *f = *state;
    vg_state_t *st = new_state(f, NULL, 0);
    vg_acct_t *a;
    /* card K at 10h */
    assert_int_equal(event(f, st, "a1", "1", T0 + 10 * H, 7, "K"), R_DECIDED);
    assert_int_equal(num(&f->vals[f->i_c]), 1);
    assert_int_equal(num(&f->vals[f->i_cs]), 7);
    /* no card: the by-card specs read null, the account's are computed */
    assert_int_equal(event(f, st, "a1", "2", T0 + 10 * H + 1, 3, NULL), R_DECIDED);
    assert_int_equal(f->vals[f->i_c].type, VG_T_NULL);
    assert_int_equal(f->vals[f->i_cs].type, VG_T_NULL);
    assert_int_equal(num(&f->vals[f->i_n]), 2);
    assert_int_equal(num(&f->vals[f->i_s]), 10);
    /* another account, card K two hours back: late for the key, not for the account */
    assert_int_equal(event(f, st, "a2", "3", T0 + 8 * H, 100, "K"), R_DECIDED);
    assert_int_equal(f->vals[f->i_c].type, VG_T_NULL);
    assert_int_equal(f->vals[f->i_cs].type, VG_T_NULL);
    assert_int_equal(num(&f->vals[f->i_n]), 1);
    assert_int_equal(num(&f->vals[f->i_s]), 100);
    /* exactly the lateness back is accepted; the late event was not added */
    assert_int_equal(event(f, st, "a3", "4", T0 + 9 * H, 1, "K"), R_DECIDED);
    assert_int_equal(num(&f->vals[f->i_c]), 1);
    assert_int_equal(num(&f->vals[f->i_cs]), 1);
    assert_int_equal(event(f, st, "a3", "5", T0 + 10 * H, 1, "K"), R_DECIDED);
    assert_int_equal(num(&f->vals[f->i_c]), 3);
    assert_int_equal(num(&f->vals[f->i_cs]), 9);
    /* numbers and strings are different keys: "1" vs 1 cannot collide (type byte);
     * a null-card event made no key */
    vg_state_stats_t s;
    vg_state_get_stats(st, &s);
    assert_int_equal(s.keys_in_memory, 1);
    assert_int_equal(vg_state_account(st, "a2", 2, &a), 0);
    assert_int_equal(vg_state_newest(a), T0 + 8 * H);
    vg_state_free(st);
}

/* ---- checkpoint, reopen, eviction ------------------------------------------------- */

typedef struct ev {
    char acct[16], id[16], card[16];
    int64_t ts;
    double amount;
    int has_card;
} ev_t;

/* A random stream: nacct accounts, ncards cards, mostly in order with some late,
 * duplicate and too-late events. Deterministic. */
static ev_t *make_stream(int n, int nacct, int ncards, unsigned seed) {
    ev_t *v = calloc((size_t)n, sizeof *v);
    uint64_t x = seed * 2654435761u + 1;
#define RND() (x = x * 6364136223846793005ULL + 1442695040888963407ULL, (uint32_t)(x >> 33))
    int64_t t = T0;
    for (int i = 0; i < n; i++) {
        t += RND() % 60000;
        ev_t *e = &v[i];
        snprintf(e->acct, sizeof e->acct, "u%u", RND() % (uint32_t)nacct);
        uint32_t r = RND() % 100;
        snprintf(e->id, sizeof e->id, "e%d", i);
        if (r < 5 && i > 10) {   /* a re-sent earlier event, sometimes after a long time */
            const ev_t *o = &v[i - 1 - RND() % (r < 2 ? 10 : (uint32_t)i - 1)];
            memcpy(e->acct, o->acct, sizeof e->acct);
            memcpy(e->id, o->id, sizeof e->id);
        }
        e->ts = t;
        if (r >= 5 && r < 15) e->ts = t - (int64_t)(RND() % (uint32_t)(2 * H));
        e->amount = (double)(RND() % 10000) / 100.0;
        e->has_card = RND() % 10 != 0;
        snprintf(e->card, sizeof e->card, "c%u", RND() % (uint32_t)ncards);
    }
#undef RND
    return v;
}

/* The output of one event: result kind and decision bytes. */
typedef struct out {
    int r;
    char dec[512];
} out_t;

static void run(fx_t *f, vg_state_t *st, const ev_t *v, int from, int to, out_t *out) {
    for (int i = from; i < to; i++) {
        out[i].r = event(f, st, v[i].acct, v[i].id, v[i].ts, v[i].amount,
                         v[i].has_card ? v[i].card : NULL);
        snprintf(out[i].dec, sizeof out[i].dec, "%.*s", (int)f->dec.len, f->dec.p);
    }
}

static void assert_same(const out_t *a, const out_t *b, int n) {
    for (int i = 0; i < n; i++) {
        if (a[i].r != b[i].r || strcmp(a[i].dec, b[i].dec) != 0)
            fail_msg("event %d differs: %d %s / %d %s", i, a[i].r, a[i].dec, b[i].r,
                     b[i].dec);
    }
}

/* ---- decisions remembered as values of a shape -------------------------------------- */

/* Every kind of value through vg_state_remember_values and back as text, with the
 * standard text around the features (the tail's number in one byte, several, or ten
 * when negative) and with other text (short: stored; long: packed; a tail whose number
 * is not the one given), after a checkpoint and a reopen too (the shapes come back from
 * the store), and a slice checkpoint (vg_state_checkpoint_some) carrying a shape
 * registered later. The expected lines are written out by hand. */
static void test_dedupe_values_shapes(void **state) {
    fx_t *f = *state;
    char *const keys[3] = {"\"a\":", ",\"b\":", ",\"c\":"};
    const size_t klen[3] = {4, 5, 5};
    static const char mid[] = "\",\"decision\":\"allow\",\"features\":{";
    static const char ta[] = "},\"ruleset\":", tb[] = "}";
    static const char mid2[] = "\",\"decision\":\"block\",\"rules\":[{\"rule\":\"r1\",\"module\":"
                               "\"m\",\"message\":\"a long message, long enough to pack\"}],"
                               "\"features\":{";
    struct {
        vg_value_t v[3];
        const char *text;   /* the features' text */
        const char *m;      /* mid (NULL: the standard one) */
        int64_t num;        /* the tail's number */
        const char *t;      /* the tail (NULL: the standard one with num) */
    } cases[] = {
        {{vg_null(), vg_bool(1), vg_bool(0)}, "\"a\":null,\"b\":true,\"c\":false", NULL, 3, NULL},
        {{vg_num(7), vg_num(-3), vg_num(300)}, "\"a\":7,\"b\":-3,\"c\":300", NULL, 1234567, NULL},
        {{vg_num(4294967296.0), vg_num(0.1), vg_num(-0.0)},
         "\"a\":4294967296,\"b\":0.1,\"c\":-0", "\",\"decision\":\"review\",\"features\":{", 3,
         NULL},
        {{vg_num(1e300), vg_num(-2147483648.0), vg_num(255.5)},
         "\"a\":1e300,\"b\":-2147483648,\"c\":255.5", mid2, 3, NULL},
        {{vg_time(T0), vg_dur(1500), vg_strv("x\"y", 3)},
         "\"a\":\"2023-11-14T22:13:20.000Z\",\"b\":1.5,\"c\":\"x\\\"y\"", NULL, -5, NULL},
        {{vg_strv("", 0), vg_num(2147483648.0), vg_num(-1e-7)},
         "\"a\":\"\",\"b\":2147483648,\"c\":-1e-7", NULL, 4, "},\"ruleset\":3}"},
        {{vg_num(0), vg_num(1), vg_num(99.5)}, "\"a\":0,\"b\":1,\"c\":99.5", NULL, 0, NULL},
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    vg_value_t js = {.type = VG_T_JSON, .u.s = {"[1,{\"k\":2}]", 11}};
    static const char tail3[] = "},\"ruleset\":3}";

    vg_store_t *s = open_store(f);
    vg_state_t *st = new_state(f, s, 0);
    int sh = vg_state_shape(st, 3, keys, klen, mid, strlen(mid), ta, strlen(ta), tb, 1);
    assert_true(sh >= 0);
    assert_int_equal(vg_state_shape(st, 3, keys, klen, mid, strlen(mid), ta, strlen(ta), tb, 1),
                     sh);
    int sh2 = vg_state_shape(st, 1, keys, klen, mid, strlen(mid), ta, strlen(ta), tb, 1);
    assert_true(sh2 >= 0 && sh2 != sh);

    char want[NC + 1][512];
    char id[16];
    vg_acct_t *a;
    assert_int_equal(vg_state_account(st, "acct", 4, &a), 0);
    for (int i = 0; i < NC; i++) {
        snprintf(id, sizeof id, "v%d", i);
        const char *m = cases[i].m ? cases[i].m : mid;
        char t[64];
        if (cases[i].t) snprintf(t, sizeof t, "%s", cases[i].t);
        else snprintf(t, sizeof t, "%s%lld%s", ta, (long long)cases[i].num, tb);
        assert_int_equal(vg_state_remember_values(st, a, id, strlen(id), T0 + i, sh, m,
                                                  strlen(m), cases[i].v, t, strlen(t),
                                                  cases[i].num),
                         0);
        vg_buf_t hb;
        vg_buf_init(&hb);
        assert_int_equal(vg_state_decision_head(&hb, id, strlen(id), "acct", 4, T0 + i), 0);
        snprintf(want[i], sizeof want[i], "%.*s%s%s%s", (int)hb.len, hb.p, m, cases[i].text,
                 t);
        vg_buf_deinit(&hb);
    }
    /* a shape of one feature: the JSON value */
    assert_int_equal(vg_state_remember_values(st, a, "j", 1, T0 + NC, sh2, mid, strlen(mid),
                                              &js, tail3, strlen(tail3), 3),
                     0);
    snprintf(want[NC], sizeof want[NC],
             "{\"id\":\"j\",\"account\":\"acct\",\"ts\":\"2023-11-14T22:13:20.%03dZ%s\"a\":"
             "[1,{\"k\":2}]%s", NC, mid, tail3);
    assert_int_equal(vg_state_remember_values(st, a, "z", 1, T0, 99, mid, strlen(mid), &js,
                                              tail3, strlen(tail3), 3),
                     VG_EINVAL);

    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i <= NC; i++) {
            const char *d;
            size_t dl;
            if (i < NC) snprintf(id, sizeof id, "v%d", i);
            else snprintf(id, sizeof id, "j");
            assert_int_equal(vg_state_find_dup(st, a, id, strlen(id), &d, &dl), 1);
            assert_int_equal(dl, strlen(want[i]));
            assert_memory_equal(d, want[i], dl);
        }
        char err[256];
        if (pass == 0) {   /* a full checkpoint, then a fresh state over the reopened store */
            assert_int_equal(vg_state_checkpoint(st, NULL, 0, 1, err, sizeof err), 0);
            vg_state_free(st);
            vg_store_close(s);
            s = open_store(f);
            st = new_state(f, s, 0);
            assert_int_equal(vg_state_shape(st, 3, keys, klen, mid, strlen(mid), ta,
                                            strlen(ta), tb, 1),
                             sh);
        } else if (pass == 1) {
            /* a new shape, an event of it, written by a slice only */
            int sh3 = vg_state_shape(st, 1, keys, klen, mid2, strlen(mid2), ta, strlen(ta),
                                     tb, 1);
            assert_true(sh3 > sh2);
            assert_int_equal(vg_state_account(st, "acct", 4, &a), 0);
            assert_int_equal(vg_state_remember_values(st, a, "w", 1, T0 + 50, sh3, mid2,
                                                      strlen(mid2), &js, tail3, strlen(tail3),
                                                      3),
                             0);
            vg_batch_t *b = vg_batch_new();
            size_t left;
            assert_int_equal(vg_state_checkpoint_some(st, 100, b, &left), 0);
            assert_int_equal(vg_store_write(s, b, 1, err, sizeof err), 0);
            vg_state_checkpoint_done(st, 1);
            vg_batch_free(b);
            vg_state_free(st);
            vg_store_close(s);
            s = open_store(f);
            st = new_state(f, s, 0);
            const char *d;
            size_t dl;
            assert_int_equal(vg_state_account(st, "acct", 4, &a), 0);
            assert_int_equal(vg_state_find_dup(st, a, "w", 1, &d, &dl), 1);
            char w[512];
            snprintf(w, sizeof w,
                     "{\"id\":\"w\",\"account\":\"acct\",\"ts\":\"2023-11-14T22:13:20.050Z%s"
                     "\"a\":[1,{\"k\":2}]%s", mid2, tail3);
            assert_int_equal(dl, strlen(w));
            assert_memory_equal(d, w, dl);
        }
        if (pass < 2) assert_int_equal(vg_state_account(st, "acct", 4, &a), 0);
    }
    vg_state_free(st);
    vg_store_close(s);
}

static void test_checkpoint_reopen_identical(void **state) {
    fx_t *f = *state;
    enum { N = 3000 };
    ev_t *v = make_stream(N, 50, 20, 1);
    out_t *ref = calloc(N, sizeof *ref), *got = calloc(N, sizeof *got);

    vg_state_t *st = new_state(f, NULL, 0);
    run(f, st, v, 0, N, ref);
    vg_state_free(st);
    int kinds[3] = {0, 0, 0};
    for (int i = 0; i < N; i++) kinds[ref[i].r]++;
    print_message("decided %d, duplicates %d, late %d\n", kinds[0], kinds[1], kinds[2]);
    assert_true(kinds[R_DUP] > 10 && kinds[R_LATE] > 10 && kinds[R_DECIDED] > N / 2);

    /* three segments, each in a fresh state over a reopened store */
    int cut[4] = {0, 1000, 2200, N};
    char err[256];
    for (int seg = 0; seg < 3; seg++) {
        vg_store_t *s = open_store(f);
        st = new_state(f, s, 0);
        if (seg > 0) {
            vg_buf_t pos;
            vg_buf_init(&pos);
            assert_int_equal(vg_state_meta(st, "pos", &pos), 0);
            char want[16];
            snprintf(want, sizeof want, "%d", cut[seg]);
            assert_int_equal(pos.len, strlen(want));
            assert_memory_equal(pos.p, want, pos.len);
            vg_buf_deinit(&pos);
        }
        run(f, st, v, cut[seg], cut[seg + 1], got);
        char pos[16];
        snprintf(pos, sizeof pos, "%d", cut[seg + 1]);
        vg_kv_t meta = {"pos", pos, strlen(pos)};
        assert_int_equal(vg_state_checkpoint(st, &meta, 1, seg == 2, err, sizeof err), 0);
        vg_state_stats_t stats;
        vg_state_get_stats(st, &stats);
        if (seg > 0) assert_true(stats.loads > 0);
        vg_state_free(st);
        vg_store_close(s);
    }
    assert_same(ref, got, N);
    free(v);
    free(ref);
    free(got);
}

static void test_evict_identical(void **state) {
    fx_t *f = *state;
    enum { N = 6000 };
    ev_t *v = make_stream(N, 300, 60, 2);
    out_t *ref = calloc(N, sizeof *ref), *got = calloc(N, sizeof *got);

    vg_state_t *st = new_state(f, NULL, 0);
    run(f, st, v, 0, N, ref);
    vg_state_free(st);

    vg_store_t *s = open_store(f);
    st = new_state(f, s, 20000);   /* far less than 300 accounts need */
    char err[256];
    uint64_t evicted = 0;
    for (int i = 0; i < N; i += 37) {
        int to = i + 37 < N ? i + 37 : N;
        run(f, st, v, i, to, got);
        assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
        evicted += (uint64_t)vg_state_evict(st);
        vg_state_stats_t stats;
        vg_state_get_stats(st, &stats);
        /* within budget, or only the most recent entry left */
        assert_true(stats.bytes <= 20000 || stats.accounts_in_memory + stats.keys_in_memory <= 1);
    }
    vg_state_stats_t stats;
    vg_state_get_stats(st, &stats);
    assert_true(evicted > 1000);
    assert_int_equal(stats.evictions, evicted);
    assert_true(stats.loads > 1000);
    assert_true(stats.key_loads > 100);
    assert_true(stats.accounts_in_memory < 100);
    vg_state_free(st);
    vg_store_close(s);
    assert_same(ref, got, N);
    free(v);
    free(ref);
    free(got);
}

/* Drains every change with vg_state_checkpoint_some slices of `slice` records. */
static void drain_some(vg_state_t *st, vg_store_t *s, vg_batch_t *b, size_t slice) {
    char err[256];
    size_t left = 1;
    for (int guard = 0; left > 0; guard++) {
        assert_true(guard < 100000);
        vg_batch_clear(b);
        assert_int_equal(vg_state_checkpoint_some(st, slice, b, &left), 0);
        assert_int_equal(vg_store_write(s, b, 0, err, sizeof err), 0);
        vg_state_checkpoint_done(st, 1);
    }
}

/* Partial checkpoints interleaved with events (events scored between a slice's encoding
 * and its write, evictions meanwhile, some writes failing), then reopened twice: the
 * same results as one uninterrupted run in memory. */
static void test_checkpoint_some_identical(void **state) {
    fx_t *f = *state;
    enum { N = 6000 };
    ev_t *v = make_stream(N, 300, 60, 3);
    out_t *ref = calloc(N, sizeof *ref), *got = calloc(N, sizeof *got);

    vg_state_t *st = new_state(f, NULL, 0);
    run(f, st, v, 0, N, ref);
    vg_state_free(st);

    vg_batch_t *b = vg_batch_new();
    assert_non_null(b);
    int cut[4] = {0, 2000, 4100, N};
    char err[256];
    uint64_t evicted = 0, loads = 0;
    size_t partial = 0;
    for (int seg = 0; seg < 3; seg++) {
        vg_store_t *s = open_store(f);
        st = new_state(f, s, 20000);   /* far less than 300 accounts need */
        int slices = 0;
        for (int i = cut[seg]; i < cut[seg + 1];) {
            int to = i + 23 < cut[seg + 1] ? i + 23 : cut[seg + 1];
            run(f, st, v, i, to, got);
            i = to;
            size_t left;
            vg_batch_clear(b);
            assert_int_equal(vg_state_checkpoint_some(st, 7, b, &left), 0);
            if (left > 0) partial++;
            /* events between encoding and writing: some encoded accounts change again */
            to = i + 5 < cut[seg + 1] ? i + 5 : cut[seg + 1];
            run(f, st, v, i, to, got);
            i = to;
            evicted += (uint64_t)vg_state_evict(st);
            if (++slices % 5 == 0) {
                vg_state_checkpoint_done(st, 0);   /* as if the write failed */
            } else {
                assert_int_equal(vg_store_write(s, b, 0, err, sizeof err), 0);
                vg_state_checkpoint_done(st, 1);
            }
            evicted += (uint64_t)vg_state_evict(st);
        }
        drain_some(st, s, b, 50);
        vg_state_stats_t stats;
        vg_state_get_stats(st, &stats);
        loads += stats.loads;
        vg_state_free(st);
        vg_store_close(s);
    }
    print_message("evicted %llu, loads %llu, partial slices %zu\n", (unsigned long long)evicted,
                  (unsigned long long)loads, partial);
    assert_true(evicted > 500);
    assert_true(loads > 500);
    assert_true(partial > 100);
    assert_same(ref, got, N);
    vg_batch_free(b);
    free(v);
    free(ref);
    free(got);
}

/* Snapshots (vg_state_snapshot_begin/_step) taken while events go on: the store they
 * write holds the state at the cut. At each cut C the snapshot is encoded in small steps
 * with events after C in between (so that accounts of the cut change before they are
 * encoded), evictions meanwhile, every fourth given up; after each written one a second
 * state opened on that store and fed the events from C on answers exactly as the
 * uninterrupted run. */
static void test_snapshot_consistent_cut(void **state) {
    fx_t *f = *state;
    enum { N = 6000, STEP = 400 };
    ev_t *v = make_stream(N, 300, 60, 4);
    out_t *ref = calloc(N, sizeof *ref), *got = calloc(N, sizeof *got),
          *chk = calloc(N, sizeof *chk);

    vg_state_t *st = new_state(f, NULL, 0);
    run(f, st, v, 0, N, ref);
    vg_state_free(st);

    vg_store_t *s = open_store(f);
    st = new_state(f, s, 20000);
    vg_batch_t *b = vg_batch_new();
    assert_non_null(b);
    char err[256];
    size_t encoded_early = 0, written = 0;
    int i = 0;
    for (int cut = STEP, n = 0; cut < N; cut += STEP, n++) {
        run(f, st, v, i, cut, got);
        i = cut;
        size_t left, cut_size;
        vg_batch_clear(b);
        assert_int_equal(vg_state_snapshot_begin(st, b, &cut_size), 0);
        assert_true(cut_size > 0);
        left = cut_size;
        size_t stepped = 0;
        while (left > 0) {
            int to = i + 3 < N ? i + 3 : N;
            run(f, st, v, i, to, got);   /* may encode accounts of the cut first */
            i = to;
            size_t before;
            assert_int_equal(vg_state_snapshot_step(st, 0, &before), 0);   /* reads it */
            assert_true(before <= left);
            assert_int_equal(vg_state_snapshot_step(st, 2, &left), 0);
            stepped += before - left;
            assert_true(before - left <= 2);
            vg_state_evict(st);
        }
        encoded_early += cut_size - stepped;
        if (n % 4 == 3) {
            vg_state_checkpoint_done(st, 0);   /* given up: its entries are dirty again */
            continue;
        }
        assert_int_equal(vg_store_write(s, b, 0, err, sizeof err), 0);
        vg_state_checkpoint_done(st, 1);
        written++;
        /* the store now holds the state at the cut: a fresh state over it, fed from the
         * cut on, answers like the uninterrupted run */
        vg_state_t *st2 = new_state(f, s, 0);
        int to = cut + 500 < N ? cut + 500 : N;
        run(f, st2, v, cut, to, chk);
        vg_state_free(st2);
        assert_same(ref + cut, chk + cut, to - cut);
        /* (st2 wrote nothing: the store still holds the cut) */
    }
    run(f, st, v, i, N, got);
    print_message("snapshots written %zu, accounts encoded before they changed %zu\n",
                  written, encoded_early);
    assert_true(written >= 8);
    assert_true(encoded_early > 50);
    assert_same(ref, got, N);
    vg_batch_free(b);
    vg_state_free(st);
    vg_store_close(s);
    free(v);
    free(ref);
    free(got);
    free(chk);
}

static void test_dirty_never_evicted(void **state) {
    fx_t *f = *state;
    vg_store_t *s = open_store(f);
    vg_state_t *st = new_state(f, s, 1);
    char name[16], err[256];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "d%d", i);
        assert_int_equal(event(f, st, name, "x", T0 + i, 1, "k"), R_DECIDED);
    }
    assert_int_equal(vg_state_evict(st), 0);
    vg_state_stats_t stats;
    vg_state_get_stats(st, &stats);
    assert_int_equal(stats.accounts_in_memory, 50);
    assert_int_equal(stats.keys_in_memory, 1);
    assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
    /* one account changed again after the checkpoint stays */
    assert_int_equal(event(f, st, "d7", "y", T0 + 100, 1, NULL), R_DECIDED);
    assert_int_equal(vg_state_evict(st), 50);
    vg_state_get_stats(st, &stats);
    assert_int_equal(stats.accounts_in_memory, 1);
    assert_int_equal(stats.keys_in_memory, 0);
    vg_acct_t *a;
    assert_int_equal(vg_state_account(st, "d7", 2, &a), 0);
    assert_int_equal(vg_state_newest(a), T0 + 100);
    vg_state_get_stats(st, &stats);
    assert_int_equal(stats.loads, 0);
    /* an evicted one comes back from the store with its dedupe log */
    assert_int_equal(event(f, st, "d3", "x", T0 + 200, 1, NULL), R_DUP);
    vg_state_get_stats(st, &stats);
    assert_int_equal(stats.loads, 1);
    vg_state_free(st);
    vg_store_close(s);
}

static void test_layout_mismatch_refused(void **state) {
    fx_t *f = *state;
    char err[256];
    vg_store_t *s = open_store(f);
    vg_state_t *st = new_state(f, s, 0);
    assert_int_equal(event(f, st, "a", "1", T0, 1, "k"), R_DECIDED);
    assert_int_equal(vg_state_checkpoint(st, NULL, 0, 1, err, sizeof err), 0);
    vg_state_free(st);

    /* other rules */
    vg_program_t *p2 = compile("feature n = count(2h)\nfeature s = sum(tx.amount, 1h)\n"
                               "feature c = count(1h by tx.card)\n"
                               "feature cs = sum(tx.amount, 1h by tx.card)\n");
    assert_non_null(p2);
    vg_state_opts_t o = {.lateness_ms = H, .dedupe_horizon_ms = 24 * H, .store = s};
    err[0] = 0;
    assert_null(vg_state_new(p2, &o, err, sizeof err));
    assert_non_null(strstr(err, "made by other rules or options"));
    assert_non_null(strstr(err, f->dir));
    vg_prog_unref(p2);
    /* other lateness, other horizon */
    o.lateness_ms = 2 * H;
    assert_null(vg_state_new(f->p, &o, err, sizeof err));
    o.lateness_ms = H;
    o.dedupe_horizon_ms = 12 * H;
    assert_null(vg_state_new(f->p, &o, err, sizeof err));
    /* the same: accepted, and the state is there */
    o.dedupe_horizon_ms = 24 * H;
    st = vg_state_new(f->p, &o, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(event(f, st, "a", "1", T0 + 5, 1, "k"), R_DUP);
    assert_int_equal(event(f, st, "a", "2", T0 + 5, 1, "k"), R_DECIDED);
    assert_int_equal(num(&f->vals[f->i_c]), 2);
    vg_buf_t b;
    vg_buf_init(&b);
    assert_int_equal(vg_state_meta(st, "nothing", &b), VG_ENOTFOUND);
    vg_buf_deinit(&b);
    vg_state_free(st);
    vg_store_close(s);
}

static int count_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    (*(int *)ctx)++;
    return 0;
}

static int store_count(vg_store_t *s, const char *prefix) {
    int n = 0;
    assert_int_equal(vg_store_scan(s, prefix, strlen(prefix), count_cb, &n), 0);
    return n;
}

/* A checkpoint writes what changed in an account's dedupe log (one record for the
 * events new since the last checkpoint, one delete per record all of whose events left
 * the horizon), not the whole log; a reloaded account finds its duplicates. */
static void test_dedupe_log_delta(void **state) {
    fx_t *f = *state;
    char err[256];
    vg_store_t *s = open_store(f);
    vg_state_t *st = new_state(f, s, 1);
    vg_batch_t *b = vg_batch_new();
    assert_non_null(b);
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "e%d", i);
        assert_int_equal(event(f, st, "acc", id, T0 + i * 60000LL, 1, NULL), R_DECIDED);
    }
    assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
    /* the 100 events of one checkpoint: one dedupe record (d/0, events 0..99) */
    assert_int_equal(store_count(s, "d/"), 1);
    /* one more event: the account record, one dedupe record, one record of window rows
     * (engine/state.c: WCHUNK rows each) and the layout */
    assert_int_equal(event(f, st, "acc", "e100", T0 + 100 * 60000LL, 1, NULL), R_DECIDED);
    size_t left;
    assert_int_equal(vg_state_checkpoint_some(st, 100, b, &left), 0);
    assert_int_equal(vg_batch_count(b), 4);
    assert_int_equal(vg_store_write(s, b, 0, err, sizeof err), 0);
    vg_state_checkpoint_done(st, 1);
    /* 25 h later: e0..e59 left the horizon (older than newest - 24 h), but d/0 still
     * holds e60..e99 and stays; the windows (1 h, lateness 1 h) keep only e100 (the
     * predecessor) and the new row: the 25 records of rows 0..99 go, the one of rows
     * 100..103 is written */
    assert_int_equal(event(f, st, "acc", "late1", T0 + 25 * H, 1, NULL), R_DECIDED);
    vg_batch_clear(b);
    assert_int_equal(vg_state_checkpoint_some(st, 100, b, &left), 0);
    assert_int_equal(vg_batch_count(b), 1 + 25 + 1 + 2);
    /* the write fails: nothing of it is lost, the next slice writes it again (its
     * dedupe record d/101 now with late1 and late2) */
    vg_state_checkpoint_done(st, 0);
    assert_int_equal(event(f, st, "acc", "late2", T0 + 25 * H, 1, NULL), R_DECIDED);
    vg_batch_clear(b);
    assert_int_equal(vg_state_checkpoint_some(st, 100, b, &left), 0);
    assert_int_equal(vg_batch_count(b), 1 + 25 + 1 + 2);
    assert_int_equal(vg_store_write(s, b, 0, err, sizeof err), 0);
    vg_state_checkpoint_done(st, 1);
    assert_int_equal(store_count(s, "d/"), 3);
    assert_int_equal(store_count(s, "w/"), 1);
    /* nothing changed: only the layout record */
    vg_batch_clear(b);
    assert_int_equal(vg_state_checkpoint_some(st, 100, b, &left), 0);
    assert_int_equal(vg_batch_count(b), 1);
    assert_int_equal(vg_store_write(s, b, 0, err, sizeof err), 0);
    vg_state_checkpoint_done(st, 1);
    /* evicted, reloaded: e60 is a duplicate with its decision, e59 is not remembered */
    snprintf(id, sizeof id, "e60");
    vg_buf_t want;
    vg_buf_init(&want);
    assert_int_equal(vg_state_evict(st), 1);
    vg_acct_t *a;
    assert_int_equal(vg_state_account(st, "acc", 3, &a), 0);
    const char *d;
    size_t dl;
    assert_int_equal(vg_state_find_dup(st, a, "e59", 3, &d, &dl), 0);
    assert_int_equal(vg_state_find_dup(st, a, "e60", 3, &d, &dl), 1);
    assert_non_null(strstr(d, "\"id\":\"e60\""));
    assert_int_equal(vg_state_find_dup(st, a, "late2", 5, &d, &dl), 1);
    assert_non_null(strstr(d, "\"id\":\"late2\""));
    vg_state_stats_t stats;
    vg_state_get_stats(st, &stats);
    assert_int_equal(stats.loads, 1);
    /* e100 leaves the horizon too: d/0 (e0..e99) and d/100 (e100) go with the next
     * checkpoint, d/101 (late1, late2) stays, d/103 (x) is added */
    assert_int_equal(event(f, st, "acc", "x", T0 + 24 * H + 102 * 60000LL, 1, NULL), R_DECIDED);
    assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
    assert_int_equal(store_count(s, "d/"), 2);
    assert_int_equal(vg_state_evict(st), 1);
    assert_int_equal(vg_state_account(st, "acc", 3, &a), 0);
    assert_int_equal(vg_state_find_dup(st, a, "e100", 4, &d, &dl), 0);
    assert_int_equal(vg_state_find_dup(st, a, "late1", 5, &d, &dl), 1);
    assert_int_equal(vg_state_find_dup(st, a, "x", 1, &d, &dl), 1);
    /* a record that only old events left is deleted even when nothing new comes */
    assert_int_equal(event(f, st, "acc", "y", T0 + 50 * H, 1, NULL), R_DECIDED);
    assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
    assert_int_equal(store_count(s, "d/"), 1);
    vg_buf_deinit(&want);
    vg_batch_free(b);
    vg_state_free(st);
    vg_store_close(s);
}

/* Splits every grouped dedupe record of the store into records of one event each, as
 * stores written before 2026-12-06 hold them (i64 ts, u32 idlen, u32 dlen, bytes). */
typedef struct split {
    vg_batch_t *b;
} split_t;

static int split_cb(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    split_t *x = ctx;
    const unsigned char *kp = k, *vp = v;
    int64_t mark;
    memcpy(&mark, vp, 8);   /* little endian on the machines this runs on */
    assert_true(vl >= 12 && mark == INT64_MIN);
    uint32_t cnt;
    memcpy(&cnt, vp + 8, 4);
    uint64_t q = 0;
    for (int i = 0; i < 8; i++) q = q << 8 | kp[kl - 8 + (size_t)i];
    vg_batch_delete(x->b, k, kl);
    unsigned char key[256];
    memcpy(key, k, kl);
    size_t off = 12;
    for (uint32_t i = 0; i < cnt; i++, q++) {
        uint32_t il, dl;
        memcpy(&il, vp + off + 8, 4);
        memcpy(&dl, vp + off + 12, 4);
        size_t n = 16 + il + (dl & 0x3fffffffu);   /* without the packed and headless bits */
        for (int j = 0; j < 8; j++) key[kl - 8 + (size_t)j] = (unsigned char)(q >> (56 - 8 * j));
        vg_batch_put(x->b, key, kl, vp + off, n);
        off += n;
    }
    assert_int_equal(off, vl);
    return 0;
}

/* A store written before the dedupe records were grouped (one record per event) is
 * read, and its records are deleted one by one as their events leave the horizon. */
static void test_dedupe_old_records(void **state) {
    fx_t *f = *state;
    char err[256], id[16];
    vg_store_t *s = open_store(f);
    vg_state_t *st = new_state(f, s, 0);
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "e%d", i);
        assert_int_equal(event(f, st, "old", id, T0 + i * 60000LL, 1, NULL), R_DECIDED);
    }
    assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
    vg_state_free(st);
    assert_int_equal(store_count(s, "d/"), 1);
    split_t x = {vg_batch_new()};
    assert_non_null(x.b);
    assert_int_equal(vg_store_scan(s, "d/", 2, split_cb, &x), 0);
    assert_int_equal(vg_store_write(s, x.b, 0, err, sizeof err), 0);
    vg_batch_free(x.b);
    assert_int_equal(store_count(s, "d/"), 10);

    st = new_state(f, s, 0);
    vg_acct_t *a;
    const char *d;
    size_t dl;
    assert_int_equal(vg_state_account(st, "old", 3, &a), 0);
    assert_int_equal(vg_state_find_dup(st, a, "e3", 2, &d, &dl), 1);
    assert_non_null(strstr(d, "\"id\":\"e3\""));
    /* e0..e5 leave the horizon: their six records go, one record for the new event */
    assert_int_equal(event(f, st, "old", "n", T0 + 24 * H + 5 * 60000LL + 30000, 1, NULL),
                     R_DECIDED);
    assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
    assert_int_equal(store_count(s, "d/"), 4 + 1);
    vg_state_free(st);
    st = new_state(f, s, 0);
    assert_int_equal(vg_state_account(st, "old", 3, &a), 0);
    assert_int_equal(vg_state_find_dup(st, a, "e5", 2, &d, &dl), 0);
    assert_int_equal(vg_state_find_dup(st, a, "e6", 2, &d, &dl), 1);
    assert_int_equal(vg_state_find_dup(st, a, "n", 1, &d, &dl), 1);
    vg_state_free(st);
    vg_store_close(s);
}

/* An account keeping many remembered events (1440 in the 24 h horizon), checkpointed
 * every few events by full checkpoints, slices and slices given up, while old events
 * expire and the log is compacted: reloaded from the store after each round, every
 * event inside the horizon is a duplicate with its own decision and none before it is
 * (log_put starts at the cached offset of the first unwritten event: a wrong offset
 * writes the wrong events or fails the reload). */
static void test_dedupe_log_long(void **state) {
    fx_t *f = *state;
    char err[256], id[16];
    vg_store_t *s = open_store(f);
    vg_state_t *st = new_state(f, s, 1);
    vg_batch_t *b = vg_batch_new();
    assert_non_null(b);
    const int N = 4000;
    int step = 1;
    for (int i = 0; i < N;) {
        for (int j = 0; j < step && i < N; j++, i++) {
            snprintf(id, sizeof id, "e%d", i);
            assert_int_equal(event(f, st, "long", id, T0 + i * 60000LL, 1, NULL), R_DECIDED);
        }
        size_t left;
        switch (i % 3) {
        case 0:
            assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
            break;
        case 1:
            vg_batch_clear(b);
            assert_int_equal(vg_state_checkpoint_some(st, 100, b, &left), 0);
            assert_int_equal(vg_store_write(s, b, 0, err, sizeof err), 0);
            vg_state_checkpoint_done(st, 1);
            break;
        default:   /* given up: written again by the next one */
            vg_batch_clear(b);
            assert_int_equal(vg_state_checkpoint_some(st, 100, b, &left), 0);
            vg_state_checkpoint_done(st, 0);
        }
        step = step % 13 + 1;
        if (i % 500 < step || i == N) {
            assert_int_equal(vg_state_checkpoint(st, NULL, 0, 0, err, sizeof err), 0);
            assert_int_equal(vg_state_evict(st), 1);
            vg_acct_t *a;
            assert_int_equal(vg_state_account(st, "long", 4, &a), 0);
            int64_t newest = T0 + (i - 1) * 60000LL;
            for (int k = i - 1; k >= 0 && k >= i - 1500; k--) {
                const char *d;
                size_t dl;
                snprintf(id, sizeof id, "e%d", k);
                int live = T0 + k * 60000LL >= newest - 24 * H;
                assert_int_equal(vg_state_find_dup(st, a, id, strlen(id), &d, &dl), live);
                if (live) {
                    char want[32];
                    snprintf(want, sizeof want, "\"id\":\"%s\"", id);
                    assert_non_null(strstr(d, want));
                }
            }
        }
    }
    vg_batch_free(b);
    vg_state_free(st);
    vg_store_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_values),
        cmocka_unit_test_setup_teardown(test_dedupe_exact_within_horizon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_memory_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_horizon_covers_lateness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_many_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bykey_null_and_late, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_values_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_reopen_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evict_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_some_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_consistent_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_never_evicted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_old_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout_mismatch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_log_delta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedupe_log_long, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
