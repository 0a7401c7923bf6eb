/* bench_rules_vm.c - cost of evaluating the SPEC section-2 features with the rules VM.
 *
 * Compiles the 14 features of the SPEC example (plus one arithmetic feature), then
 * times phase 1 (spec inputs) and phase 2 (features from hand-made spec values) over
 * many iterations, and compares with the same 15 features written directly in C,
 * measured in the same run. Prints ns per event for each; asserts nothing on time.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rules/program.h"
#include "rules/vm.h"

static const char *SRC =
    "feature tx_10m        = count(10m)\n"
    "feature spend_1h      = sum(tx.amount, 1h)\n"
    "feature avg_30d       = avg(tx.amount, 30d)\n"
    "feature merchants_1d  = distinct(tx.merchant, 1d)\n"
    "feature small_1m      = count(1m where tx.amount < 5)\n"
    "feature card_tx_1h    = count(1h by tx.card)\n"
    "feature max_1d        = max(tx.amount, 1d)\n"
    "feature sd_7d         = stddev(tx.amount, 7d)\n"
    "feature sess_n        = session_count(30m)\n"
    "feature sess_spend    = session_sum(tx.amount, 30m)\n"
    "feature sess_secs     = session_duration(30m)\n"
    "feature km_prev       = geo_km(tx.lat, tx.lon, prev(tx.lat), prev(tx.lon))\n"
    "feature secs_prev     = seconds_between(prev(tx.ts), tx.ts)\n"
    "feature new_device    = not seen(tx.device, 90d)\n"
    "feature big           = tx.amount > 3 * avg_30d and spend_1h > 100\n";

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static inline vg_value_t nn(double x, int ok) { return ok && isfinite(x) ? vg_num(x) : vg_null(); }

/* The same features in plain C (the baseline). */
static __attribute__((noinline)) void direct(const vg_tx_t *tx, const vg_value_t *s, vg_value_t *f) {
    for (int i = 0; i < 11; i++) f[i] = s[i];
    const vg_value_t *la = &tx->f[VG_FIELD_LAT], *lo = &tx->f[VG_FIELD_LON];
    int ok = la->type == VG_T_NUM && lo->type == VG_T_NUM && s[11].type == VG_T_NUM &&
             s[12].type == VG_T_NUM;
    f[11] = nn(ok ? vg_vm_geo_km(la->u.n, lo->u.n, s[11].u.n, s[12].u.n) : 0, ok);
    ok = s[13].type == VG_T_TIME;
    f[12] = nn(ok ? (tx->f[VG_FIELD_TS].u.ms - s[13].u.ms) / 1000.0 : 0, ok);
    f[13] = s[14].type == VG_T_BOOL ? vg_bool(!s[14].u.b) : vg_null();
    int a = s[2].type == VG_T_NUM, b = s[1].type == VG_T_NUM;
    vg_value_t c1 = a ? vg_bool(tx->f[VG_FIELD_AMOUNT].u.n > 3 * s[2].u.n) : vg_null();
    vg_value_t c2 = b ? vg_bool(s[1].u.n > 100) : vg_null();
    int fa = (c1.type == VG_T_BOOL && !c1.u.b) || (c2.type == VG_T_BOOL && !c2.u.b);
    f[14] = fa ? vg_bool(0) : (c1.type == VG_T_BOOL && c2.type == VG_T_BOOL) ? vg_bool(1) : vg_null();
}

int main(void) {
    vg_diags_t d;
    vg_diags_init(&d);
    vg_source_t s = {"bench.vrl", SRC, strlen(SRC)};
    vg_program_t *p = vg_prog_compile(&s, 1, &d);
    if (!p) {
        vg_diags_print(&d, &s, 1, stderr);
        return 1;
    }
    vg_tx_t tx;
    memset(&tx, 0, sizeof tx);
    tx.f[VG_FIELD_TS] = vg_time(1700000000000);
    tx.f[VG_FIELD_AMOUNT] = vg_num(42.5);
    tx.f[VG_FIELD_MERCHANT] = vg_strv("m-1", 3);
    tx.f[VG_FIELD_CARD] = vg_strv("c-1", 3);
    tx.f[VG_FIELD_DEVICE] = vg_strv("d-1", 3);
    tx.f[VG_FIELD_LAT] = vg_num(40.7);
    tx.f[VG_FIELD_LON] = vg_num(-74.0);
    vg_value_t sv[15] = {vg_num(3), vg_num(150), vg_num(12), vg_num(2), vg_num(1), vg_num(4),
                         vg_num(99), vg_num(5.5), vg_num(3), vg_num(120), vg_num(600),
                         vg_num(51.5), vg_num(-0.12), vg_time(1700000000000 - 5000), vg_bool(1)};
    int ns = vg_prog_nspecs(p), nf = vg_prog_nfeatures(p);
    if (ns != 15 || nf != 15) { fprintf(stderr, "unexpected layout %d %d\n", ns, nf); return 1; }
    vg_value_t out[15], ref[15];
    vg_spec_input_t in[15];
    vg_arena_t ar;
    vg_arena_init(&ar);
    /* the best of many short batches: the machine may be shared */
    const int N = 20000;
    double sink = 0, best[3] = {1e18, 1e18, 1e18};
    for (int rep = 0; rep < 100; rep++) {
        double t0 = now_ns();
        for (int i = 0; i < N; i++) {
            tx.f[VG_FIELD_AMOUNT].u.n = 40 + (i & 7);
            vg_prog_eval_features(p, &tx, sv, &ar, out);
            sink += out[14].u.b;
        }
        double t1 = now_ns();
        for (int i = 0; i < N; i++) {
            tx.f[VG_FIELD_AMOUNT].u.n = 40 + (i & 7);
            direct(&tx, sv, ref);
            sink += ref[14].u.b;
        }
        double t2 = now_ns();
        for (int i = 0; i < N; i++) {
            tx.f[VG_FIELD_AMOUNT].u.n = 40 + (i & 7);
            vg_prog_eval_inputs(p, &tx, NULL, &ar, in);
            sink += in[4].keep;
        }
        double t3 = now_ns();
        if (t1 - t0 < best[0]) best[0] = t1 - t0;
        if (t2 - t1 < best[1]) best[1] = t2 - t1;
        if (t3 - t2 < best[2]) best[2] = t3 - t2;
    }
    printf("rules VM phase 2 (15 features): %.1f ns/event\n", best[0] / N);
    printf("baseline, same features in C:   %.1f ns/event\n", best[1] / N);
    printf("rules VM phase 1 (15 specs):    %.1f ns/event\n", best[2] / N);
    for (int i = 0; i < 15; i++) {
        int same = out[i].type == ref[i].type &&
                   (out[i].type == VG_T_BOOL ? out[i].u.b == ref[i].u.b
                    : out[i].type == VG_T_NUM ? fabs(out[i].u.n - ref[i].u.n) < 1e-9 : 1);
        if (!same) fprintf(stderr, "feature %d differs from the baseline\n", i);
    }
    if (sink < 0) puts("");
    vg_arena_deinit(&ar);
    vg_prog_unref(p);
    vg_diags_deinit(&d);
    return 0;
}
