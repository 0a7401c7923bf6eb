/* bench_models.c - cost of the anomaly models (models/anomaly.h): ns per event of
 * vg_anomaly_process with all signals, with none (the core: compromise filter,
 * combination, population counts), and with each signal alone (its cost is the
 * difference to the core), next to a baseline measured in the same run: a per-account
 * running z-score of the amount (Welford), the cheapest per-account model there is.
 *
 *   bench_models [--events FILE.ndjson[.gz]] [--cards N] [--days D] [--reps R] [--mask M]
 *
 * --events: flat NDJSON events (account, ts, amount, merchant, country, device, ip, mcc,
 * channel), e.g. the handbook file; otherwise (or also, with --cards) N synthetic card
 * accounts with every field. Inputs are parsed into memory first; each measurement
 * replays all of them in order through a fresh population and fresh states, R times
 * (default 3), and keeps the fastest (CPU time of this thread; the machine is shared).
 * --mask M: only vg_anomaly_process with cfg.signals = M (e.g. 0x401: amount alone), for
 * a profiler.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/anomaly.h"

static _Noreturn void die(const char *m) {
    fprintf(stderr, "bench_models: %s\n", m);
    exit(1);
}

/* ---- events in memory ---- */

typedef struct evs {
    vg_anomaly_input_t *in;
    int *acct;
    size_t n, cap;
    int nacct;
    char *buf; /* strings, NUL-separated; inputs point into it after load */
    size_t blen, bcap;
} evs_t;

static size_t put_str(evs_t *e, const char *s, size_t n) {
    if (e->blen + n + 1 > e->bcap) {
        e->bcap = e->bcap ? e->bcap * 2 : 1 << 20;
        while (e->blen + n + 1 > e->bcap) e->bcap *= 2;
        e->buf = realloc(e->buf, e->bcap);
        if (!e->buf) die("out of memory");
    }
    memcpy(e->buf + e->blen, s, n);
    e->buf[e->blen + n] = 0;
    size_t off = e->blen;
    e->blen += n + 1;
    return off;
}

static vg_anomaly_input_t *add_ev(evs_t *e, int acct) {
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 1 << 16;
        e->in = realloc(e->in, e->cap * sizeof *e->in);
        e->acct = realloc(e->acct, e->cap * sizeof *e->acct);
        if (!e->in || !e->acct) die("out of memory");
    }
    vg_anomaly_input_t *in = &e->in[e->n];
    memset(in, 0, sizeof *in);
    e->acct[e->n++] = acct;
    if (acct >= e->nacct) e->nacct = acct + 1;
    return in;
}

/* While loading, cat[k].p holds the string's offset + 1 in buf (0: absent). */
static void set_cat(evs_t *e, vg_anomaly_input_t *in, int k, const char *s, size_t n) {
    in->cat[k].p = (const char *)(uintptr_t)(put_str(e, s, n) + 1);
    in->cat[k].len = (uint32_t)n;
}

static void fix_ptrs(evs_t *e) {
    for (size_t i = 0; i < e->n; i++)
        for (int k = 0; k < VG_ANOMALY_CAT__COUNT; k++)
            if (e->in[i].cat[k].p)
                e->in[i].cat[k].p = e->buf + ((uintptr_t)e->in[i].cat[k].p - 1);
}

/* ---- NDJSON (flat objects) ---- */

static const char *jfield(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static int jstr(const char *line, const char *key, const char **s, size_t *len) {
    const char *v = jfield(line, key);
    if (!v || *v != '"') return 0;
    const char *q = strchr(v + 1, '"');
    if (!q) return 0;
    *s = v + 1;
    *len = (size_t)(q - v - 1);
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

static int parse_ts(const char *s, int64_t *ms) {
    if (*s != '"') {
        *ms = strtoll(s, NULL, 10);
        return 0;
    }
    int Y, M, D, h, mi, se;
    if (sscanf(s + 1, "%4d-%2d-%2d%*c%2d:%2d:%2d", &Y, &M, &D, &h, &mi, &se) != 6) return -1;
    *ms = (days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400LL + h * 3600 + mi * 60 + se) *
          1000LL;
    return 0;
}

/* account names -> dense indices: open addressing over FNV-1a */
typedef struct names {
    size_t *off; /* offset + 1 into evs buf; 0 empty */
    int *idx;
    size_t cap, n;
} names_t;

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int name_idx(names_t *t, evs_t *e, const char *s, size_t n) {
    if ((t->n + 1) * 2 > t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 4096;
        size_t *no = calloc(nc, sizeof *no);
        int *ni = calloc(nc, sizeof *ni);
        if (!no || !ni) die("out of memory");
        for (size_t i = 0; i < t->cap; i++)
            if (t->off[i]) {
                const char *k = e->buf + t->off[i] - 1;
                size_t j = fnv(k, strlen(k)) & (nc - 1);
                while (no[j]) j = (j + 1) & (nc - 1);
                no[j] = t->off[i];
                ni[j] = t->idx[i];
            }
        free(t->off);
        free(t->idx);
        t->off = no;
        t->idx = ni;
        t->cap = nc;
    }
    size_t j = fnv(s, n) & (t->cap - 1);
    while (t->off[j]) {
        const char *k = e->buf + t->off[j] - 1;
        if (strlen(k) == n && memcmp(k, s, n) == 0) return t->idx[j];
        j = (j + 1) & (t->cap - 1);
    }
    t->off[j] = put_str(e, s, n) + 1;
    t->idx[j] = (int)t->n++;
    return t->idx[j];
}

static void load_events(evs_t *e, const char *path) {
    size_t pl = strlen(path);
    int gz = pl > 3 && strcmp(path + pl - 3, ".gz") == 0;
    FILE *f;
    if (gz) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
        f = popen(cmd, "r");
    } else {
        f = fopen(path, "r");
    }
    if (!f) die("cannot open events");
    static const char *const key[VG_ANOMALY_CAT__COUNT] = {"merchant", "country", "device",
                                                           "ip",       "mcc",     "channel"};
    names_t names = {0};
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        const char *ac, *s;
        size_t al, l;
        const char *tsv = jfield(line, "ts"), *amv = jfield(line, "amount");
        int64_t ts;
        if (!jstr(line, "account", &ac, &al) || !tsv || parse_ts(tsv, &ts)) continue;
        int a = name_idx(&names, e, ac, al);
        vg_anomaly_input_t *in = add_ev(e, a);
        in->ts_ms = ts;
        in->amount = amv ? strtod(amv, NULL) : NAN;
        for (int k = 0; k < VG_ANOMALY_CAT__COUNT; k++)
            if (jstr(line, key[k], &s, &l)) set_cat(e, in, k, s, l);
    }
    free(line);
    free(names.off);
    free(names.idx);
    gz ? pclose(f) : fclose(f);
}

/* ---- synthetic card accounts (as bench_eval --cards, without fraud episodes) ---- */

static uint64_t rng(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double runif(uint64_t *s) { return (rng(s) >> 11) * (1.0 / 9007199254740992.0); }
static double rnorm(uint64_t *s) {
    double u = runif(s), v = runif(s);
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

typedef struct cev {
    int64_t ts;
    int acct, merchant, device, ip, country;
    double amount;
} cev_t;

static int cmp_cev(const void *a, const void *b) {
    const cev_t *x = a, *y = b;
    return x->ts < y->ts ? -1 : (x->ts > y->ts ? 1 : x->acct - y->acct);
}

static void gen_cards(evs_t *e, int naccts, int days, int base) {
    uint64_t rs = 42;
    size_t cap = (size_t)naccts * days * 6 + 16, n = 0;
    cev_t *c = malloc(cap * sizeof *c);
    if (!c) die("out of memory");
    const int64_t t0 = 1704067200000LL, day = 86400000LL;
    for (int a = 0; a < naccts; a++) {
        double rate = 0.3 + 4.7 * runif(&rs), mu = 3.5 + 0.8 * rnorm(&rs);
        double sig = 0.3 + 0.7 * runif(&rs), h0 = 8 + 12 * runif(&rs);
        int home = runif(&rs) < 0.7 ? 0 : 1 + (int)(runif(&rs) * 19);
        int nfav = 3 + (int)(runif(&rs) * 12), fav0 = (int)(runif(&rs) * 4000);
        int ndev = runif(&rs) < 0.7 ? 1 : 2;
        for (int64_t t = 0; n < cap;) {
            t += (int64_t)(-log(1 - runif(&rs)) / rate * day);
            if (t >= days * day) break;
            double hr = fmod(fmod(h0 + 3 * rnorm(&rs), 24) + 24, 24);
            cev_t v;
            v.ts = t0 + t / day * day + (int64_t)(hr * 3600000);
            v.acct = a;
            v.amount = round(exp(mu + sig * rnorm(&rs)) * 100) / 100;
            v.merchant = runif(&rs) < 0.85 ? fav0 + (int)(runif(&rs) * nfav)
                                           : (int)(runif(&rs) * 5000);
            v.device = a * 4 + (int)(runif(&rs) * ndev);
            v.ip = runif(&rs) < 0.9 ? v.device : 100000 + (int)(runif(&rs) * 100000);
            v.country = runif(&rs) < 0.97 ? home : (int)(runif(&rs) * 20);
            c[n++] = v;
        }
    }
    qsort(c, n, sizeof *c, cmp_cev);
    for (size_t i = 0; i < n; i++) {
        char b[32];
        vg_anomaly_input_t *in = add_ev(e, base + c[i].acct);
        in->ts_ms = c[i].ts;
        in->amount = c[i].amount;
        set_cat(e, in, VG_ANOMALY_CAT_MERCHANT, b, (size_t)snprintf(b, sizeof b, "m%d", c[i].merchant));
        set_cat(e, in, VG_ANOMALY_CAT_DEVICE, b, (size_t)snprintf(b, sizeof b, "d%d", c[i].device));
        set_cat(e, in, VG_ANOMALY_CAT_IP, b, (size_t)snprintf(b, sizeof b, "i%d", c[i].ip));
        set_cat(e, in, VG_ANOMALY_CAT_COUNTRY, b, (size_t)snprintf(b, sizeof b, "C%d", c[i].country));
    }
    free(c);
}

/* ---- measurements ---- */

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* ns per event of vg_anomaly_process with cfg.signals = mask; the fastest of reps runs.
 * *sink collects a checksum of the scores (so that nothing is optimised away). */
static double run_models(const evs_t *e, uint32_t mask, int reps, double *sink) {
    vg_anomaly_cfg_t cfg = vg_anomaly_cfg_default();
#ifdef VG_ANOMALY_SIGNALS_ALL
    cfg.signals = mask;
#else
    (void)mask; /* built against models without cfg.signals: all signals */
#endif
    vg_anomaly_pop_t *pop = malloc(sizeof *pop);
    vg_anomaly_state_t *st = malloc((size_t)e->nacct * sizeof *st);
    if (!pop || !st) die("out of memory");
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        vg_anomaly_pop_init(pop, &cfg, 1);
        for (int a = 0; a < e->nacct; a++) vg_anomaly_state_init(&st[a]);
        vg_anomaly_result_t res;
        double sum = 0, t0 = now_ns();
        for (size_t i = 0; i < e->n; i++) {
            vg_anomaly_process(pop, &st[e->acct[i]], &e->in[i], &res);
            sum += res.score;
        }
        double dt = (now_ns() - t0) / (double)e->n;
        if (dt < best) best = dt;
        *sink += sum;
    }
    free(pop);
    free(st);
    return best;
}

static double run_zscore(const evs_t *e, int reps, double *sink) {
    double *m = malloc((size_t)e->nacct * 3 * sizeof *m), best = INFINITY;
    if (!m) die("out of memory");
    for (int r = 0; r < reps; r++) {
        memset(m, 0, (size_t)e->nacct * 3 * sizeof *m);
        double sum = 0, t0 = now_ns();
        for (size_t i = 0; i < e->n; i++) {
            double *z = &m[3 * e->acct[i]], x = e->in[i].amount;
            if (!isfinite(x)) continue;
            sum += z[0] >= 2 ? fabs(x - z[1]) / (sqrt(z[2] / z[0]) + 1e-9) : 0;
            z[0] += 1;
            double d = x - z[1];
            z[1] += d / z[0];
            z[2] += d * (x - z[1]);
        }
        double dt = (now_ns() - t0) / (double)e->n;
        if (dt < best) best = dt;
        *sink += sum;
    }
    free(m);
    return best;
}

static void report(const char *what, const evs_t *e, int reps, long mask) {
    double sink = 0;
    if (mask >= 0) { /* one configuration only (for perf) */
        printf("%s: mask 0x%lx: %.1f ns/event\n", what, mask,
               run_models(e, (uint32_t)mask, reps, &sink));
        return;
    }
    size_t fields[VG_ANOMALY_CAT__COUNT] = {0};
    for (size_t i = 0; i < e->n; i++)
        for (int k = 0; k < VG_ANOMALY_CAT__COUNT; k++) fields[k] += e->in[i].cat[k].p != NULL;
    printf("%s: %zu events, %d accounts; fields present:", what, e->n, e->nacct);
    for (int k = 0; k < VG_ANOMALY_CAT__COUNT; k++)
        if (fields[k]) printf(" %s", vg_anomaly_signal_name(VG_ANOMALY_MERCHANT + k));
    printf("\n");
    double z = run_zscore(e, reps, &sink);
    uint32_t core = 1u << VG_ANOMALY_COMPROMISE;
    double all = run_models(e, (1u << VG_ANOMALY__COUNT) - 1, reps, &sink);
    printf("  %-44s %8.1f ns/event\n", "baseline: running z-score of the amount", z);
    printf("  %-44s %8.1f ns/event  (%.1fx the baseline)\n", "vg_anomaly_process, all signals", all,
           all / z);
#ifndef VG_ANOMALY_SIGNALS_ALL
    (void)core;
    printf("  (checksum %.6g)\n", sink);
    return;
#endif
    double c = run_models(e, core, reps, &sink);
    printf("  %-44s %8.1f ns/event\n", "  core (compromise, combination, population)", c);
    for (int s = 0; s < VG_ANOMALY__COUNT; s++) {
        if (s == VG_ANOMALY_COMPROMISE) continue;
        if (s >= VG_ANOMALY_MERCHANT && s <= VG_ANOMALY_CHANNEL &&
            !fields[s - VG_ANOMALY_MERCHANT]) {
            printf("  %-44s %8s\n", vg_anomaly_signal_name(s), "(field absent)");
            continue;
        }
        double t = run_models(e, core | 1u << s, reps, &sink);
        char name[64];
        snprintf(name, sizeof name, "  + %s", vg_anomaly_signal_name(s));
        printf("  %-44s %8.1f ns/event\n", name, t - c);
    }
    printf("  (checksum %.6g)\n", sink);
}

int main(int argc, char **argv) {
    const char *events = NULL;
    int cards = 0, days = 28, reps = 3;
    long mask = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) events = argv[++i];
        else if (!strcmp(argv[i], "--cards") && i + 1 < argc) cards = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--days") && i + 1 < argc) days = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mask") && i + 1 < argc) mask = strtol(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: bench_models [--events FILE] [--cards N] [--days D] "
                            "[--reps R] [--mask BITS]\n");
            return 2;
        }
    }
    if (!events && !cards) cards = 3000;
    if (reps < 1) reps = 1;
    printf("state %zu bytes per account (encoded %zu), population %zu bytes\n",
           sizeof(vg_anomaly_state_t), vg_anomaly_state_encoded_size(), sizeof(vg_anomaly_pop_t));
    if (events) {
        evs_t e = {0};
        load_events(&e, events);
        fix_ptrs(&e);
        report(events, &e, reps, mask);
        free(e.in);
        free(e.acct);
        free(e.buf);
    }
    if (cards) {
        evs_t e = {0};
        gen_cards(&e, cards, days, 0);
        fix_ptrs(&e);
        char what[64];
        snprintf(what, sizeof what, "%d synthetic card accounts x %d days", cards, days);
        report(what, &e, reps, mask);
        free(e.in);
        free(e.acct);
        free(e.buf);
    }
    return 0;
}
