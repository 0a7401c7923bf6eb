/* bench_rules.c - rule evaluation cost per event for 10, 100 and 1,000 rules, next to
 * the cost of the features alone, measured in the same run.
 *
 * The ruleset: 20 features over 12 state specs (counts, sums, averages, distinct,
 * seen, prev, geo) and N rules, each a condition of 2-3 comparisons over features and
 * event fields (a quarter with a list literal, every tenth a regex, every fifth a named
 * list), a score expression for half of them. Spec values are fixed (the engine's
 * windows are measured by bench_replay); the event varies. Prints ns per event for
 * phases 1+2 (features) and phase 3 (rules), and the per-rule cost.
 * Usage: bench_rules [events per measurement, default 200000] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rules/lists.h"
#include "rules/program.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *features =
    "list blocked\n"
    "feature tx_10m = count(10m)\nfeature tx_1h = count(1h)\nfeature spend_1h = sum(tx.amount, 1h)\n"
    "feature avg_7d = avg(tx.amount, 7d)\nfeature max_1d = max(tx.amount, 1d)\n"
    "feature small_5m = count(5m where tx.amount < 5)\nfeature merch_1d = distinct(tx.merchant, 1d)\n"
    "feature card_1h = count(1h by tx.card)\nfeature new_dev = not seen(tx.device, 7d)\n"
    "feature km = geo_km(tx.lat, tx.lon, prev(tx.lat), prev(tx.lon))\n"
    "feature secs = seconds_between(prev(tx.ts), tx.ts)\nfeature kmh = km / (max(secs, 60) / 3600)\n"
    "feature ratio = tx.amount / avg_7d\nfeature sd = stddev(tx.amount, 7d)\n"
    "feature z = (tx.amount - avg_7d) / sd\nfeature big = tx.amount > 3 * avg_7d\n"
    "feature sess = session_count(30m)\nfeature home = tx.country in [\"US\", \"CA\"]\n"
    "feature night = hour_of_day(tx.ts, \"America/New_York\") < 6\nfeature spend_ratio = spend_1h / (avg_7d * 10)\n";

static char *ruleset(int n) {
    size_t cap = strlen(features) + (size_t)n * 300 + 64;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "%s", features);
    static const char *fs[] = {"tx_10m", "tx_1h", "spend_1h", "small_5m", "merch_1d", "card_1h",
                               "kmh", "ratio", "z", "sess", "spend_ratio"};
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "rule r%d\n  action %s\n  score %s\n  when %s > %d and tx.amount > %d",
                     i, i % 3 == 0 ? "review" : i % 3 == 1 ? "alert" : "block",
                     i % 2 ? "50 + ratio" : "40", fs[i % 11], i % 7 + 2, i % 50);
        if (i % 4 == 0) p += sprintf(p, " and tx.mcc in [\"5411\", \"5812\", \"6011\"]");
        if (i % 10 == 1) p += sprintf(p, " and matches(tx.merchant, \"^m-0*%d\")", i % 9);
        if (i % 5 == 2) p += sprintf(p, " or tx.card in list(\"blocked\")");
        p += sprintf(p, "\nend\n");
    }
    if (n == 0) p += sprintf(p, "# features only\n");
    return s;
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 200000;
    int sizes[] = {0, 10, 100, 1000};
    vg_lists_t *lists = vg_lists_new();
    vg_lists_add(lists, "blocked", 7, "card-7", 6);
    printf("bench_rules: %d events per measurement; features alone = phases 1+2, rules = phase 3\n",
           iters);
    printf("%6s %14s %14s %16s %10s\n", "rules", "features ns/ev", "rules ns/ev", "ns/rule/event",
           "fired/ev");
    for (int k = 0; k < 4; k++) {
        char *src = ruleset(sizes[k]);
        vg_source_t s = {"bench.vrl", src, strlen(src)};
        vg_diags_t d;
        vg_diags_init(&d);
        vg_program_t *p = vg_prog_compile(&s, 1, &d);
        if (!p) {
            fprintf(stderr, "does not compile: %s\n", d.n ? d.v[0].msg : "?");
            return 1;
        }
        int ns = vg_prog_nspecs(p), nf = vg_prog_nfeatures(p), nr = vg_prog_nrules(p);
        vg_spec_input_t *in = calloc((size_t)ns + 1, sizeof *in);
        vg_value_t *sv = calloc((size_t)ns + 1, sizeof *sv);
        vg_value_t *fv = calloc((size_t)nf + 1, sizeof *fv);
        vg_rule_result_t *res = calloc((size_t)nr + 1, sizeof *res);
        const vg_strset_t **bound = calloc((size_t)vg_prog_nlists(p) + 1, sizeof *bound);
        vg_prog_bind_lists(p, lists, bound);
        for (int i = 0; i < ns; i++) sv[i] = vg_num(3 + i);
        vg_arena_t ar;
        vg_arena_init(&ar);
        vg_tx_t tx;
        memset(&tx, 0, sizeof tx);
        char merch[32];
        static const char *mccs[] = {"5411", "5999", "6011", "4829"};
        double tf = 0, tr = 0;
        long fired = 0;
        for (int pass = 0; pass < 2; pass++) {   /* pass 0 warms up */
            tf = tr = 0;
            fired = 0;
            for (int e = 0; e < iters; e++) {
                int ml = snprintf(merch, sizeof merch, "m-%05d", e % 300);
                tx.f[VG_FIELD_ID] = vg_strv("tx-1", 4);
                tx.f[VG_FIELD_ACCOUNT] = vg_strv("acct-1", 6);
                tx.f[VG_FIELD_TS] = vg_time(1767225600000LL + (int64_t)e * 60000);
                tx.f[VG_FIELD_AMOUNT] = vg_num((double)(e % 97) * 1.5);
                tx.f[VG_FIELD_MERCHANT] = vg_strv(merch, (uint32_t)ml);
                tx.f[VG_FIELD_MCC] = vg_strv(mccs[e & 3], 4);
                tx.f[VG_FIELD_CARD] = vg_strv(e % 13 ? "card-1" : "card-7", 6);
                tx.f[VG_FIELD_COUNTRY] = vg_strv("US", 2);
                tx.f[VG_FIELD_LAT] = vg_num(40.7);
                tx.f[VG_FIELD_LON] = vg_num(-74.0);
                vg_arena_reset(&ar);
                double t0 = now();
                vg_prog_eval_inputs(p, &tx, NULL, &ar, in);
                vg_prog_eval_features(p, &tx, sv, &ar, fv);
                double t1 = now();
                vg_prog_eval_rules(p, &tx, sv, fv, bound, &ar, res);
                double t2 = now();
                tf += t1 - t0;
                tr += t2 - t1;
                for (int i = 0; i < nr; i++) fired += res[i].fired;
            }
        }
        printf("%6d %14.0f %14.0f %16.1f %10.1f\n", nr, tf / iters * 1e9, tr / iters * 1e9,
               nr ? tr / iters * 1e9 / nr : 0.0, (double)fired / iters);
        vg_arena_deinit(&ar);
        free(in); free(sv); free(fv); free(res); free(bound);
        vg_prog_unref(p);
        vg_diags_deinit(&d);
        free(src);
    }
    vg_lists_unref(lists);
    return 0;
}
