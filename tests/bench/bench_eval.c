/* bench_eval.c - detection quality of the anomaly models (models/anomaly.h).
 *
 * Mode 1, labelled transactions:
 *   bench_eval --events FILE.ndjson.gz --labels FILE.csv.gz [--from DATE --to DATE]
 * replays the events in file order through vg_anomaly_process (label-free, score first,
 * then learn) and prints AUC ROC, average precision and card precision@100 over the test
 * days (default 2018-04-15 .. 2018-04-28 inclusive) for anomaly.score and some of its
 * signals, next to baselines computed in the same run: a per-account running z-score of
 * the amount and the rule amount > 220. "without scenario 2": the scenario-2 frauds
 * (compromised terminals) are dropped from the evaluation (not relabelled); the models
 * still see them, as they see every event.
 *
 * Mode 2, synthetic metric streams:
 *   bench_eval --streams N [--points P] [--seed S]
 * generates N single-key streams (hourly points with trend, daily and weekly seasonality,
 * heavy-tailed noise, permanent level shifts and labelled anomaly windows) and reports
 * window recall, point precision, detection delay and false alarms per 1000 points for
 * the amount model (vg_amount_*) against a running z-score, both at |z| >= 4 equivalent.
 *
 * Input reading is a small dedicated NDJSON field scanner (the handbook files carry flat
 * objects); gzip'd inputs go through popen("gzip -dc").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/amount.h"
#include "models/anomaly.h"

/* ---- small hash map: string -> int ---- */

typedef struct map {
    char **keys;
    int *vals;
    size_t cap, n;
} map_t;

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static _Noreturn void die(const char *m) {
    fprintf(stderr, "bench_eval: %s\n", m);
    exit(1);
}

static int *map_slot(map_t *m, const char *k, size_t n, int create) {
    if (create && (m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        char **nk = calloc(nc, sizeof *nk);
        int *nv = calloc(nc, sizeof *nv);
        if (!nk || !nv) die("out of memory");
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = fnv(m->keys[i], strlen(m->keys[i])) & (nc - 1);
                while (nk[j]) j = (j + 1) & (nc - 1);
                nk[j] = m->keys[i];
                nv[j] = m->vals[i];
            }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = nc;
    }
    if (!m->cap) return NULL;
    size_t j = fnv(k, n) & (m->cap - 1);
    while (m->keys[j]) {
        if (strlen(m->keys[j]) == n && memcmp(m->keys[j], k, n) == 0) return &m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (!create) return NULL;
    m->keys[j] = malloc(n + 1);
    if (!m->keys[j]) die("out of memory");
    memcpy(m->keys[j], k, n);
    m->keys[j][n] = 0;
    m->vals[j] = -1;
    m->n++;
    return &m->vals[j];
}

/* ---- input ---- */

static FILE *open_in(const char *path, int *is_pipe) {
    size_t n = strlen(path);
    if (n > 3 && strcmp(path + n - 3, ".gz") == 0) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
        *is_pipe = 1;
        return popen(cmd, "r");
    }
    *is_pipe = 0;
    return fopen(path, "r");
}

/* Finds "key": in a flat JSON object line; returns a pointer to the value. */
static const char *jfield(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = line;
    while ((p = strstr(p, pat))) {
        const char *q = p + strlen(pat);
        while (*q == ' ') q++;
        if (*q == ':') {
            q++;
            while (*q == ' ') q++;
            return q;
        }
        p = q;
    }
    return NULL;
}

static int jstr(const char *line, const char *key, const char **s, uint32_t *len) {
    const char *v = jfield(line, key);
    if (!v || *v != '"') return 0;
    const char *e = strchr(v + 1, '"');
    if (!e) return 0;
    *s = v + 1;
    *len = (uint32_t)(e - v - 1);
    return 1;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* RFC 3339 with Z or an offset, or epoch ms. Returns 0 on success. */
static int parse_ts(const char *s, int64_t *ms) {
    if (*s != '"') {
        *ms = strtoll(s, NULL, 10);
        return 0;
    }
    int Y, M, D, h, mi, se;
    if (sscanf(s + 1, "%4d-%2d-%2d%*c%2d:%2d:%2d", &Y, &M, &D, &h, &mi, &se) != 6) return -1;
    const char *p = s + 20;
    int frac = 0, digits = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3) frac = frac * 10 + (*p - '0');
            digits++;
            p++;
        }
        while (digits < 3) frac *= 10, digits++;
    }
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int oh = 0, om = 0;
        sscanf(p + 1, "%2d:%2d", &oh, &om);
        off = (oh * 60 + om) * 60000LL * (*p == '-' ? -1 : 1);
    }
    *ms = (days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400LL + h * 3600 + mi * 60 + se) *
              1000LL + frac - off;
    return 0;
}

/* ---- metrics ---- */

typedef struct rec {
    double s;
    int y;
} rec_t;

static int cmp_desc(const void *a, const void *b) {
    double x = ((const rec_t *)a)->s, y = ((const rec_t *)b)->s;
    return x < y ? 1 : (x > y ? -1 : 0);
}

/* AUC ROC (ties count half) and average precision (ties as one threshold). */
static void auc_ap(rec_t *r, size_t n, double *auc, double *ap) {
    qsort(r, n, sizeof *r, cmp_desc);
    double P = 0, N = 0;
    for (size_t i = 0; i < n; i++) r[i].y ? P++ : N++;
    double tp = 0, fp = 0, area = 0, apsum = 0, prev_tp = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        double dtp = 0, dfp = 0;
        while (j < n && r[j].s == r[i].s) {
            r[j].y ? dtp++ : dfp++;
            j++;
        }
        area += dfp * (tp + dtp / 2.0);
        tp += dtp;
        fp += dfp;
        if (dtp > 0) apsum += (tp - prev_tp) * (tp / (tp + fp));
        prev_tp = tp;
        i = j;
    }
    *auc = (P > 0 && N > 0) ? area / (P * N) : NAN;
    *ap = P > 0 ? apsum / P : NAN;
}

typedef struct ev {
    int acct;
    int day;
    int fraud, scenario;
    int test;
} ev_t;

typedef struct cprec {
    int acct;
    double s;
    int y;
} cprec_t;

static int cmp_cp(const void *a, const void *b) {
    const cprec_t *x = a, *y = b;
    if (x->s != y->s) return x->s < y->s ? 1 : -1;
    return x->acct - y->acct;
}

/* Card precision@k averaged over the test days; per day each account's max score;
 * accounts found (fraudulent and in the top k) on earlier days are left out. */
static double cp_at_k(const ev_t *e, const double *score, size_t n, int nacct, int k,
                      int skip_s2) {
    int dmin = 1 << 30, dmax = -(1 << 30);
    for (size_t i = 0; i < n; i++)
        if (e[i].test) {
            if (e[i].day < dmin) dmin = e[i].day;
            if (e[i].day > dmax) dmax = e[i].day;
        }
    if (dmin > dmax) return NAN;
    double *mx = malloc(sizeof(double) * nacct);
    int *fr = malloc(sizeof(int) * nacct), *found = calloc(nacct, sizeof(int));
    cprec_t *c = malloc(sizeof(cprec_t) * nacct);
    double sum = 0;
    int days = 0;
    size_t i0 = 0;
    for (int d = dmin; d <= dmax; d++) {
        for (int a = 0; a < nacct; a++) mx[a] = -INFINITY, fr[a] = 0;
        while (i0 < n && (!e[i0].test || e[i0].day < d)) i0++;
        for (size_t i = i0; i < n && (!e[i].test || e[i].day == d); i++) {
            if (!e[i].test) continue;
            if (skip_s2 && e[i].scenario == 2) continue;
            int a = e[i].acct;
            if (found[a]) continue;
            if (score[i] > mx[a]) mx[a] = score[i];
            if (e[i].fraud) fr[a] = 1;
        }
        int m = 0;
        for (int a = 0; a < nacct; a++)
            if (mx[a] > -INFINITY) c[m++] = (cprec_t){a, mx[a], fr[a]};
        qsort(c, m, sizeof *c, cmp_cp);
        int hits = 0;
        for (int j = 0; j < m && j < k; j++)
            if (c[j].y) {
                hits++;
                found[c[j].acct] = 1;
            }
        sum += hits / (double)k;
        days++;
    }
    free(mx);
    free(fr);
    free(found);
    free(c);
    return sum / days;
}

/* ---- mode 1 ---- */

#define NSC 7
static const char *const sc_name[NSC] = {
    "anomaly.score", "anomaly.amount", "anomaly.compromise", "anomaly.score (no prior)",
    "zscore (running)", "amount > 220", "amount > 220, then score"};

static vg_anomaly_cfg_t g_cfg;
static FILE *g_dump; /* --dump FILE: one line per test event: score amount z fraud scenario */

/* --set name=value: overrides one configuration field (for experiments). */
static void set_cfg(vg_anomaly_cfg_t *c, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq) die("--set wants name=value");
    float v = strtof(eq + 1, NULL);
    size_t n = (size_t)(eq - kv);
#define SETF(name, field) if (n == strlen(name) && !strncmp(kv, name, n)) { c->field = v; return; }
    SETF("lambda", amount.lambda)
    SETF("prior_n", amount.prior_n)
    SETF("season_k", amount.season_k)
    SETF("base_rate", base_rate)
    SETF("hazard", compromise_hazard)
    SETF("days", compromise_days)
    SETF("frac", compromise_frac)
    SETF("pop_w", pop_amount_weight)
    SETF("up", amount_up)
    SETF("time_w", time_weight)
    SETF("vel_w", velocity_weight)
    SETF("nov_w", novelty_weight)
    SETF("multi_w", multi_weight)
#undef SETF
    die("unknown --set name");
}

static int run_labelled(const char *events, const char *labels, const char *from,
                        const char *to, int verbose) {
    map_t lab = {0}, acc = {0};
    int pipe_ = 0;
    FILE *f = open_in(labels, &pipe_);
    if (!f) die("cannot open labels");
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int *labv = NULL;
    size_t nl = 0, lc = 0;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (strncmp(line, "id,", 3) == 0) continue;
        char *c1 = strchr(line, ',');
        if (!c1) continue;
        char *c2 = strchr(c1 + 1, ',');
        int fr = atoi(c1 + 1), sc = c2 ? atoi(c2 + 1) : 0;
        if (nl == lc) {
            lc = lc ? lc * 2 : 1 << 16;
            labv = realloc(labv, lc * sizeof(int));
        }
        labv[nl] = fr * 16 + sc;
        *map_slot(&lab, line, (size_t)(c1 - line), 1) = (int)nl;
        nl++;
    }
    pipe_ ? pclose(f) : fclose(f);

    int64_t t0 = 0, t1 = 0;
    char b0[64], b1[64];
    snprintf(b0, sizeof b0, "\"%sT00:00:00Z\"", from);
    snprintf(b1, sizeof b1, "\"%sT00:00:00Z\"", to);
    if (parse_ts(b0, &t0) || parse_ts(b1, &t1)) die("bad --from/--to");
    t1 += 86400000LL;

    f = open_in(events, &pipe_);
    if (!f) die("cannot open events");
    size_t n = 0, cap = 0;
    ev_t *ev = NULL;
    double *sc[NSC] = {0};
    vg_anomaly_state_t *st = NULL;
    double *zm = NULL, *zs = NULL, *zn = NULL;
    size_t acap = 0;
    int nacct = 0;
    vg_anomaly_pop_t *pop = malloc(sizeof *pop), *pop2 = malloc(sizeof *pop2);
    vg_anomaly_state_t *st2 = NULL;
    vg_anomaly_cfg_t cfg2 = g_cfg;
    cfg2.compromise_hazard = 0; /* the same models without the compromise filter */
    vg_anomaly_pop_init(pop, &g_cfg, 1);
    vg_anomaly_pop_init(pop2, &cfg2, 1);
    static const char *const catkey[VG_ANOMALY_CAT__COUNT] = {"merchant", "country", "device",
                                                              "ip",       "mcc",     "channel"};
    vg_anomaly_result_t res;
    double model_ns = 0, z_ns = 0;
    while ((len = getline(&line, &lcap, f)) > 0) {
        const char *id, *ac;
        uint32_t idl, acl;
        if (!jstr(line, "id", &id, &idl) || !jstr(line, "account", &ac, &acl)) continue;
        const char *tsv = jfield(line, "ts"), *amv = jfield(line, "amount");
        int64_t ts;
        if (!tsv || !amv || parse_ts(tsv, &ts)) continue;
        int *ap = map_slot(&acc, ac, acl, 1);
        if (*ap < 0) {
            *ap = nacct++;
            if ((size_t)nacct > acap) {
                acap = acap ? acap * 2 : 8192;
                st = realloc(st, acap * sizeof *st);
                st2 = realloc(st2, acap * sizeof *st2);
                zm = realloc(zm, acap * sizeof *zm);
                zs = realloc(zs, acap * sizeof *zs);
                zn = realloc(zn, acap * sizeof *zn);
            }
            vg_anomaly_state_init(&st[*ap]);
            vg_anomaly_state_init(&st2[*ap]);
            zm[*ap] = zs[*ap] = zn[*ap] = 0;
        }
        int a = *ap;
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 18;
            ev = realloc(ev, cap * sizeof *ev);
            for (int k = 0; k < NSC; k++) sc[k] = realloc(sc[k], cap * sizeof(double));
        }
        int *lp = map_slot(&lab, id, idl, 0);
        int lv = lp ? labv[*lp] : 0;
        ev[n] = (ev_t){a, (int)(ts / 86400000LL), lv / 16, lv % 16, ts >= t0 && ts < t1};
        vg_anomaly_input_t in;
        memset(&in, 0, sizeof in);
        in.ts_ms = ts;
        in.amount = strtod(amv, NULL);
        for (int k = 0; k < VG_ANOMALY_CAT__COUNT; k++) {
            const char *s;
            uint32_t l;
            if (jstr(line, catkey[k], &s, &l)) in.cat[k] = (vg_str_t){s, l};
        }
        struct timespec c0, c1;
        clock_gettime(CLOCK_MONOTONIC, &c0);
        vg_anomaly_process(pop, &st[a], &in, &res);
        clock_gettime(CLOCK_MONOTONIC, &c1);
        model_ns += (c1.tv_sec - c0.tv_sec) * 1e9 + (c1.tv_nsec - c0.tv_nsec);
        sc[0][n] = res.score;
        sc[1][n] = res.signal[VG_ANOMALY_AMOUNT];
        sc[2][n] = res.signal[VG_ANOMALY_COMPROMISE];
        if (verbose && ev[n].test && (ev[n].fraud || res.score > 0.9) && res.nreasons) {
            printf("%.*s fraud=%d sc=%d score=%.3f comp=%.3f : %s | %s\n", (int)idl, id,
                   ev[n].fraud, ev[n].scenario, res.score, res.signal[VG_ANOMALY_COMPROMISE],
                   res.reason[0], res.nreasons > 1 ? res.reason[1] : "");
        }
        if (g_dump && ev[n].test)
            fprintf(g_dump, "%.*s %d %.6g %.6g %.6g %.6g %d %d %s\n", (int)idl, id, a, sc[0][n],
                    in.amount, res.signal[VG_ANOMALY_AMOUNT], res.signal[VG_ANOMALY_COMPROMISE],
                    ev[n].fraud, ev[n].scenario, res.nreasons ? res.reason[0] : "-");
        vg_anomaly_process(pop2, &st2[a], &in, &res);
        sc[3][n] = res.score;
        /* baseline: running z-score of the amount, score first then learn (Welford); timed
         * like the models */
        clock_gettime(CLOCK_MONOTONIC, &c0);
        double x = in.amount;
        sc[4][n] = zn[a] >= 2 ? (x - zm[a]) / (sqrt(zs[a] / zn[a]) + 1e-9) : 0;
        zn[a] += 1;
        double d = x - zm[a];
        zm[a] += d / zn[a];
        zs[a] += d * (x - zm[a]);
        clock_gettime(CLOCK_MONOTONIC, &c1);
        z_ns += (c1.tv_sec - c0.tv_sec) * 1e9 + (c1.tv_nsec - c0.tv_nsec);
        sc[5][n] = x > 220 ? 1 : 0;
        /* the rule first, the anomaly score within each side (as the oracle is combined) */
        sc[6][n] = sc[5][n] + sc[0][n];
        n++;
    }
    pipe_ ? pclose(f) : fclose(f);
    free(line);

    {
        int lamh[VG_AMOUNT_LAMBDAS] = {0};
        for (int a = 0; a < nacct; a++) lamh[st[a].amount.lam]++;
        printf("transforms chosen by the accounts:");
        for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++)
            printf(" lambda %.1f: %d", vg_amount_lambda(j), lamh[j]);
        printf("; population: p<1%% rates");
        for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) printf(" %.4f", pop->prior.exc[j]);
        printf(", choice lambda %.1f", vg_amount_lambda(pop->prior.lam));
        printf("\n");
    }
    size_t ntest = 0, nfr = 0, nfr2 = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].test) {
            ntest++;
            nfr += ev[i].fraud;
            nfr2 += ev[i].fraud && ev[i].scenario != 2;
        }
    printf("events %zu, accounts %d, test %s..%s: %zu events, %zu frauds (%zu without "
           "scenario 2)\n",
           n, nacct, from, to, ntest, nfr, nfr2);
    printf("state %zu bytes per account (encoded %zu); vg_anomaly_process %.0f ns per event, "
           "running z-score %.0f ns per event (same timing, clock overhead included; "
           "bench_models has the figures per signal)\n",
           sizeof(vg_anomaly_state_t), vg_anomaly_state_encoded_size(), model_ns / n, z_ns / n);
    printf("\n%-26s | %-21s | %-21s\n", "", "all frauds", "without scenario 2");
    printf("%-26s | %6s %6s %7s | %6s %6s %7s\n", "score", "AUC", "AP", "CP@100", "AUC", "AP",
           "CP@100");
    rec_t *r = malloc(sizeof *r * (ntest + 1));
    for (int k = 0; k < NSC; k++) {
        double out[6];
        for (int s2 = 0; s2 < 2; s2++) {
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (ev[i].test && !(s2 && ev[i].scenario == 2))
                    r[m++] = (rec_t){sc[k][i], ev[i].fraud};
            auc_ap(r, m, &out[s2 * 3], &out[s2 * 3 + 1]);
            out[s2 * 3 + 2] = cp_at_k(ev, sc[k], n, nacct, 100, s2);
        }
        printf("%-26s | %6.4f %6.4f %7.4f | %6.4f %6.4f %7.4f\n", sc_name[k], out[0], out[1],
               out[2], out[3], out[4], out[5]);
    }
    free(r);
    free(ev);
    for (int k = 0; k < NSC; k++) free(sc[k]);
    free(st);
    free(st2);
    free(zm);
    free(zs);
    free(zn);
    free(pop);
    free(pop2);
    for (size_t i = 0; i < lab.cap; i++) free(lab.keys[i]);
    for (size_t i = 0; i < acc.cap; i++) free(acc.keys[i]);
    free(lab.keys);
    free(lab.vals);
    free(acc.keys);
    free(acc.vals);
    free(labv);
    return 0;
}

/* ---- mode 2 ---- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double runif(uint64_t *s) { return (rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
static double rnorm(uint64_t *s) {
    double u = runif(s), v = runif(s);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

#define NDET 3
#define MAXW 16
typedef struct win {
    int start, end; /* [start, end) */
    int kind;       /* 0 spike, 1 burst, 2 dip, 3 variance, 4 level shift */
} win_t;

typedef struct det {
    long alarms, false_alarms, hit_windows, windows, delay_sum, points;
    long hit_kind[5], kind_n[5];
} det_t;

static const char *const kind_name[5] = {"spike", "burst", "dip", "variance", "level shift"};

static int run_streams(int nstreams, int points, unsigned long seed) {
    const int burn = 336, grace = 3;
    const double zthr = 4.0, pthr = 2 * 3.167e-5; /* two-sided |z| >= 4 */
    static const char *const dname[NDET] = {"amount model (vg_amount)", "z-score (running)",
                                            "z-score (EW, alpha 0.05)"};
    det_t d[NDET];
    memset(d, 0, sizeof d);
    vg_amount_cfg_t cfg = g_cfg.amount;
    double *x = malloc(sizeof(double) * points);
    int *inwin = malloc(sizeof(int) * points), *alarm = malloc(sizeof(int) * points);
    uint64_t rs = seed * 0x2545F4914F6CDD1Dull + 1;
    for (int k = 0; k < nstreams; k++) {
        double L0 = 50 + 450 * runif(&rs), sigma = (0.03 + 0.05 * runif(&rs)) * L0;
        double drift = (-0.3 + 0.8 * runif(&rs)) * L0, ad = (0.1 + 0.3 * runif(&rs)) * L0;
        double aw = 0.3 * runif(&rs) * L0, shift = 0;
        win_t w[MAXW];
        int nw = 0;
        /* two level shifts and six anomalies, apart from each other */
        int nslots = 8, span = (points - burn - 20) / nslots;
        for (int j = 0; j < nslots; j++) {
            int st = burn + j * span + 5 + (int)(runif(&rs) * (span - 20));
            int kind = j % 4 == 1 ? 4 : (int)(runif(&rs) * 4);
            int len = kind == 0 ? 1 : kind == 4 ? 6 : 3 + (int)(runif(&rs) * 6);
            w[nw++] = (win_t){st, st + len, kind};
        }
        for (int i = 0; i < points; i++) inwin[i] = -1;
        for (int j = 0; j < nw; j++)
            for (int i = w[j].start; i < w[j].end + grace && i < points; i++) inwin[i] = j;
        double amp[MAXW];
        for (int j = 0; j < nw; j++) {
            double sgn = runif(&rs) < 0.5 ? -1 : 1;
            amp[j] = w[j].kind == 0 ? sgn * (6 + 6 * runif(&rs)) * sigma
                     : w[j].kind == 1 ? (4 + 3 * runif(&rs)) * sigma
                     : w[j].kind == 2 ? -(4 + 3 * runif(&rs)) * sigma
                     : w[j].kind == 3 ? 6.0
                                      : sgn * (0.2 + 0.3 * runif(&rs)) * L0;
        }
        int64_t t0 = 1704067200000LL; /* 2024-01-01T00:00Z, a Monday */
        for (int i = 0; i < points; i++) {
            int64_t ts = t0 + (int64_t)i * 3600000;
            int h = i % 24, dow = (i / 24) % 7;
            double season = ad * sin(2 * M_PI * (h - 8) / 24.0) + (dow >= 5 ? -aw : 0);
            double noise = rnorm(&rs) * sigma;
            if (runif(&rs) < 0.02) noise *= 3; /* heavy tail */
            double v = L0 + drift * i / points + season + shift + noise;
            for (int j = 0; j < nw; j++) {
                if (i < w[j].start) continue;
                if (w[j].kind == 4) {
                    if (i == w[j].start) shift += amp[j];
                    if (i == w[j].start) v += amp[j];
                } else if (i < w[j].end) {
                    if (w[j].kind == 3) v += noise * (amp[j] - 1);
                    else v += amp[j];
                }
            }
            x[i] = v;
            (void)ts;
        }
        /* run the detectors */
        for (int m = 0; m < NDET; m++) {
            vg_amount_t am;
            vg_amount_init(&am);
            double mean = 0, m2 = 0, n = 0, em = x[0], ev = 0;
            for (int i = 0; i < points; i++) {
                int64_t ts = t0 + (int64_t)i * 3600000;
                int a = 0;
                if (m == 0) {
                    vg_amount_score_t sc;
                    vg_amount_score(&cfg, &am, NULL, ts, x[i], &sc);
                    double p = 2 * (sc.p_hi < sc.p_lo ? sc.p_hi : sc.p_lo);
                    a = am.n >= 8 && p < pthr;
                    vg_amount_learn(&cfg, &am, NULL, ts, x[i], NULL);
                } else if (m == 1) {
                    a = n >= 8 && fabs(x[i] - mean) >= zthr * sqrt(m2 / n);
                    n++;
                    double dd = x[i] - mean;
                    mean += dd / n;
                    m2 += dd * (x[i] - mean);
                } else {
                    a = i >= 8 && fabs(x[i] - em) >= zthr * sqrt(ev);
                    double dd = x[i] - em;
                    em += 0.05 * dd;
                    ev = 0.95 * (ev + 0.05 * dd * dd);
                }
                alarm[i] = a;
            }
            for (int j = 0; j < nw; j++) {
                d[m].windows++;
                d[m].kind_n[w[j].kind]++;
                for (int i = w[j].start; i < w[j].end + grace && i < points; i++)
                    if (alarm[i]) {
                        d[m].hit_windows++;
                        d[m].hit_kind[w[j].kind]++;
                        d[m].delay_sum += i - w[j].start;
                        break;
                    }
            }
            for (int i = burn; i < points; i++) {
                d[m].points++;
                if (alarm[i]) {
                    d[m].alarms++;
                    if (inwin[i] < 0) d[m].false_alarms++;
                }
            }
        }
    }
    printf("%d streams x %d hourly points (trend, daily and weekly seasonality, 2%% heavy-tail "
           "noise), 8 labelled windows each (2 level shifts); alarms at |z| >= 4 equivalent; "
           "first %d points not counted\n\n",
           nstreams, points, burn);
    printf("%-26s | %7s %9s %11s %13s |", "detector", "recall", "precision", "delay (pts)",
           "false/1000pts");
    for (int kk = 0; kk < 5; kk++) printf(" %s", kind_name[kk]);
    printf("\n");
    for (int m = 0; m < NDET; m++) {
        double rec = d[m].hit_windows / (double)d[m].windows;
        double prec = d[m].alarms ? (d[m].alarms - d[m].false_alarms) / (double)d[m].alarms : 0;
        printf("%-26s | %7.3f %9.3f %11.2f %13.2f |", dname[m], rec, prec,
               d[m].hit_windows ? d[m].delay_sum / (double)d[m].hit_windows : 0,
               1000.0 * d[m].false_alarms / d[m].points);
        for (int kk = 0; kk < 5; kk++)
            printf(" %.2f", d[m].kind_n[kk] ? d[m].hit_kind[kk] / (double)d[m].kind_n[kk] : 0);
        printf("\n");
    }
    free(x);
    free(inwin);
    free(alarm);
    return 0;
}

/* ---- mode 3: synthetic card accounts with every field ---- */

typedef struct cev {
    int64_t ts;
    int acct;
    double amount;
    int merchant, device, ip, country;
    int fraud; /* 0, or 1 + fraud kind */
} cev_t;

static int cmp_cev(const void *a, const void *b) {
    const cev_t *x = a, *y = b;
    return x->ts < y->ts ? -1 : (x->ts > y->ts ? 1 : x->acct - y->acct);
}

static const char *const cfraud_name[4] = {"takeover", "card testing", "big purchase",
                                           "subtle (x3, new merchant)"};

/* Accounts with lognormal amounts (sigma of log 0.3..1.0: heavy tails), loyal merchants,
 * one or two devices, a home country and a preferred hour; about 5% of them get one
 * fraud episode of one of four kinds. Scores are compared on the second half. */
static int run_cards(int naccts, int days, unsigned long seed) {
    uint64_t rs = seed * 0x9E3779B97F4A7C15ull + 7;
    size_t cap = (size_t)naccts * days * 3 + 1024, n = 0;
    cev_t *e = malloc(cap * sizeof *e);
    if (!e) die("out of memory");
    const int64_t t0 = 1704067200000LL, day = 86400000LL;
    for (int a = 0; a < naccts; a++) {
        double rate = 0.3 + 4.7 * runif(&rs), mu = 3.5 + 0.8 * rnorm(&rs);
        double sig = 0.3 + 0.7 * runif(&rs), h0 = 8 + 12 * runif(&rs);
        int home = runif(&rs) < 0.7 ? 0 : 1 + (int)(runif(&rs) * 19);
        int nfav = 3 + (int)(runif(&rs) * 12), fav0 = (int)(runif(&rs) * 4000);
        int dev0 = a * 4, ndev = runif(&rs) < 0.7 ? 1 : 2;
        for (int64_t t = 0;;) {
            t += (int64_t)(-log(1 - runif(&rs)) / rate * day);
            if (t >= days * day) break;
            if (n + 64 >= cap) break;
            int64_t dstart = t / day * day;
            double hr = h0 + 3 * rnorm(&rs);
            hr = fmod(fmod(hr, 24) + 24, 24);
            cev_t c;
            c.ts = t0 + dstart + (int64_t)(hr * 3600000);
            c.acct = a;
            c.amount = round(exp(mu + sig * rnorm(&rs)) * 100) / 100;
            c.merchant = runif(&rs) < 0.85 ? fav0 + (int)(runif(&rs) * nfav)
                                           : (int)(runif(&rs) * 5000);
            c.device = dev0 + (int)(runif(&rs) * ndev);
            c.ip = runif(&rs) < 0.9 ? c.device : 100000 + (int)(runif(&rs) * 100000);
            c.country = runif(&rs) < 0.97 ? home : (int)(runif(&rs) * 20);
            c.fraud = 0;
            e[n++] = c;
        }
        if (runif(&rs) < 0.05) {
            int kind = (int)(runif(&rs) * 4);
            int64_t ft = t0 + (int64_t)((days * (0.25 + 0.7 * runif(&rs))) * day);
            int nf = kind == 0 ? 3 + (int)(runif(&rs) * 6)
                   : kind == 1 ? 6 + (int)(runif(&rs) * 10)
                               : 1 + (kind == 3) * (int)(runif(&rs) * 3);
            int fdev = 900000 + a, fcountry = (home + 1 + (int)(runif(&rs) * 19)) % 20;
            for (int k = 0; k < nf && n + 1 < cap; k++) {
                cev_t c;
                c.acct = a;
                c.fraud = 1 + kind;
                c.ip = 300000 + (int)(runif(&rs) * 100000);
                c.device = dev0;
                c.country = home;
                c.merchant = fav0;
                if (kind == 0) {
                    c.ts = ft + (int64_t)(runif(&rs) * 2 * day);
                    c.amount = round(exp(mu + 1.5 + sig * rnorm(&rs)) * 100) / 100;
                    c.device = fdev;
                    if (runif(&rs) < 0.5) c.country = fcountry;
                    c.merchant = (int)(runif(&rs) * 5000);
                } else if (kind == 1) {
                    c.ts = ft + (int64_t)(runif(&rs) * 1800000);
                    c.amount = round((0.5 + 1.5 * runif(&rs)) * 100) / 100;
                    c.merchant = (int)(runif(&rs) * 5000);
                    c.device = fdev;
                } else if (kind == 2) {
                    c.ts = ft;
                    c.amount = round(8 * exp(mu) * 100) / 100;
                    c.ip = c.device;
                } else {
                    c.ts = ft + (int64_t)(runif(&rs) * 3 * day);
                    c.amount = round(3 * exp(mu + sig * rnorm(&rs)) * 100) / 100;
                    c.merchant = (int)(runif(&rs) * 5000);
                    c.ip = c.device;
                }
                e[n++] = c;
            }
        }
    }
    qsort(e, n, sizeof *e, cmp_cev);
    vg_anomaly_pop_t *pop = malloc(sizeof *pop), *pop2 = malloc(sizeof *pop2);
    vg_anomaly_cfg_t cfg2 = g_cfg;
    cfg2.compromise_hazard = 0;
    vg_anomaly_pop_init(pop, &g_cfg, 1);
    vg_anomaly_pop_init(pop2, &cfg2, 1);
    vg_anomaly_state_t *st = calloc(naccts, sizeof *st), *st2 = calloc(naccts, sizeof *st2);
    double *zm = calloc(naccts, sizeof(double)), *zs = calloc(naccts, sizeof(double));
    double *zn = calloc(naccts, sizeof(double));
    for (int a = 0; a < naccts; a++) {
        vg_anomaly_state_init(&st[a]);
        vg_anomaly_state_init(&st2[a]);
    }
    enum { NS = 4 };
    static const char *const nm[NS] = {"anomaly.score", "anomaly.amount",
                                       "anomaly.score (no prior)", "zscore (running)"};
    rec_t *r[NS];
    for (int k = 0; k < NS; k++) r[k] = malloc(n * sizeof(rec_t));
    int *kind = malloc(n * sizeof(int));
    size_t m = 0, nfr = 0;
    int64_t half = t0 + days / 2 * day;
    for (size_t i = 0; i < n; i++) {
        char mb[16], db[16], ib[16], cb[8];
        int lm = snprintf(mb, sizeof mb, "m%d", e[i].merchant);
        int ld = snprintf(db, sizeof db, "d%d", e[i].device);
        int li = snprintf(ib, sizeof ib, "i%d", e[i].ip);
        int lc = snprintf(cb, sizeof cb, "C%d", e[i].country);
        vg_anomaly_input_t in;
        memset(&in, 0, sizeof in);
        in.ts_ms = e[i].ts;
        in.amount = e[i].amount;
        in.cat[VG_ANOMALY_CAT_MERCHANT] = (vg_str_t){mb, (uint32_t)lm};
        in.cat[VG_ANOMALY_CAT_DEVICE] = (vg_str_t){db, (uint32_t)ld};
        in.cat[VG_ANOMALY_CAT_IP] = (vg_str_t){ib, (uint32_t)li};
        in.cat[VG_ANOMALY_CAT_COUNTRY] = (vg_str_t){cb, (uint32_t)lc};
        vg_anomaly_result_t res, res2;
        int a = e[i].acct;
        vg_anomaly_process(pop, &st[a], &in, &res);
        vg_anomaly_process(pop2, &st2[a], &in, &res2);
        double x = e[i].amount;
        double z = zn[a] >= 2 ? fabs(x - zm[a]) / (sqrt(zs[a] / zn[a]) + 1e-9) : 0;
        zn[a] += 1;
        double d = x - zm[a];
        zm[a] += d / zn[a];
        zs[a] += d * (x - zm[a]);
        if (e[i].ts < half) continue;
        int y = e[i].fraud != 0;
        r[0][m] = (rec_t){res.score, y};
        r[1][m] = (rec_t){res.signal[VG_ANOMALY_AMOUNT], y};
        r[2][m] = (rec_t){res2.score, y};
        r[3][m] = (rec_t){z, y};
        kind[m] = e[i].fraud;
        nfr += y;
        m++;
    }
    printf("%d synthetic card accounts x %d days (lognormal amounts, merchant, device, ip, "
           "country), %zu events; second half: %zu events, %zu frauds\n\n",
           naccts, days, n, m, nfr);
    printf("%-26s | %6s %6s |", "score", "AUC", "AP");
    for (int k = 0; k < 4; k++) printf(" AUC %s |", cfraud_name[k]);
    printf("\n");
    rec_t *tmp = malloc(m * sizeof(rec_t));
    for (int k = 0; k < NS; k++) {
        double auc, ap;
        memcpy(tmp, r[k], m * sizeof(rec_t));
        auc_ap(tmp, m, &auc, &ap);
        printf("%-26s | %6.4f %6.4f |", nm[k], auc, ap);
        for (int f = 1; f <= 4; f++) {
            size_t q = 0;
            for (size_t i = 0; i < m; i++)
                if (kind[i] == 0 || kind[i] == f) tmp[q++] = r[k][i];
            auc_ap(tmp, q, &auc, &ap);
            printf(" %*.4f |", (int)strlen(cfraud_name[f - 1]) + 4, auc);
        }
        printf("\n");
    }
    free(tmp);
    for (int k = 0; k < NS; k++) free(r[k]);
    free(kind);
    free(e);
    free(pop);
    free(pop2);
    free(st);
    free(st2);
    free(zm);
    free(zs);
    free(zn);
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_eval --events FILE --labels FILE [--from YYYY-MM-DD] [--to "
            "YYYY-MM-DD] [--verbose] [--dump FILE] [--set name=value]...\n"
            "       bench_eval --streams N [--points P] [--seed S]\n"
            "       bench_eval --cards N [--days D] [--seed S]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *events = NULL, *labels = NULL, *from = "2018-04-15", *to = "2018-04-28";
    int streams = 0, points = 2016, verbose = 0, cards = 0, days = 56;
    unsigned long seed = 42;
    g_cfg = vg_anomaly_cfg_default();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) events = argv[++i];
        else if (!strcmp(argv[i], "--labels") && i + 1 < argc) labels = argv[++i];
        else if (!strcmp(argv[i], "--from") && i + 1 < argc) from = argv[++i];
        else if (!strcmp(argv[i], "--to") && i + 1 < argc) to = argv[++i];
        else if (!strcmp(argv[i], "--streams") && i + 1 < argc) streams = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--points") && i + 1 < argc) points = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--cards") && i + 1 < argc) cards = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--days") && i + 1 < argc) days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) {
            g_dump = fopen(argv[++i], "w");
            if (!g_dump) die("cannot open --dump file");
        }
        else if (!strcmp(argv[i], "--set") && i + 1 < argc) set_cfg(&g_cfg, argv[++i]);
        else usage();
    }
    if (streams > 0) return run_streams(streams, points, seed);
    if (cards > 0) return run_cards(cards, days, seed);
    if (!events || !labels) usage();
    int rc = run_labelled(events, labels, from, to, verbose);
    if (g_dump) fclose(g_dump);
    return rc;
}
