/* anomaly.c - per-account anomaly signals, their combination into one posterior score,
 * the account compromise filter, and explanations. See anomaly.h; persistence is in
 * anomaly_codec.c.
 *
 * Cost (see docs/anomaly.md, "Memory and cost"): every per-event loop is over a fixed
 * small array (the 168 hours of the week, in float so that it vectorises; a field's
 * 4..12 known values); each categorical value is hashed once per call; the population's
 * tables that would need a logarithm per event are derived when they change (the
 * trees' log masses once per window); signals whose field is absent, or which the
 * configuration switches off (cfg.signals), cost nothing. */
#include "models/anomaly.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define DAY_MS 86400000.0
#define LBF_MAX 700.0
#define VEL_DISCOUNT 3.0 /* ln 20 */
#define LN20 2.995732273553991

static const int nov_off[VG_ANOMALY_CAT__COUNT] = {0, 12, 18, 24, 30, 36};
static const int nov_len[VG_ANOMALY_CAT__COUNT] = {12, 6, 6, 6, 6, 4};
static const char *const cat_name[VG_ANOMALY_CAT__COUNT] = {"merchant", "country", "device",
                                                            "ip",       "mcc",     "channel"};

const char *vg_anomaly_signal_name(int sig) {
    static const char *const names[] = {
#define VG_ANOMALY_SIG_NAME(name, str) str,
        VG_ANOMALY_SIGNAL_LIST(VG_ANOMALY_SIG_NAME)
#undef VG_ANOMALY_SIG_NAME
    };
    return sig >= 0 && sig < VG_ANOMALY__COUNT ? names[sig] : NULL;
}

vg_anomaly_cfg_t vg_anomaly_cfg_default(void) {
    vg_anomaly_cfg_t c;
    memset(&c, 0, sizeof c);
    c.amount = vg_amount_cfg_default();
    c.base_rate = 1e-3f;
    c.compromise_hazard = 1e-3f;
    c.compromise_days = 7.0f;
    c.compromise_frac = 0.3f;
    c.pop_amount_weight = 1.0f;
    c.amount_up = 0.8f;
    c.time_weight = 1.0f;
    c.velocity_weight = 0.3f;
    c.novelty_weight = 1.0f;
    c.multi_weight = 0.5f;
    c.burst_tau_s = 3600.0f;
    c.signals = VG_ANOMALY_SIGNALS_ALL;
    return c;
}

void vg_anomaly_pop_init(vg_anomaly_pop_t *pop, const vg_anomaly_cfg_t *cfg, uint64_t seed) {
    memset(pop, 0, sizeof *pop);
    pop->cfg = cfg ? *cfg : vg_anomaly_cfg_default();
    vg_hstree_init(&pop->trees, VG_HST_DIMS, seed);
    pop->prior.lam = -1;
    for (int j = 0; j < VG_ANOMALY_HOW_MODELS; j++) pop->how_prod[j] = 1;
    vg_anomaly_pop_derive(pop);
}

void vg_anomaly_pop_derive(vg_anomaly_pop_t *pop) {
    const vg_anomaly_cfg_t *cfg = &pop->cfg;
    double b = cfg->base_rate;
    pop->k_base_c = log((1.0 - b) / b);
    pop->k_base_odds = (1.0 - b) / b;
    pop->k_log_up = log(cfg->amount_up);
    pop->k_log_down = log(1.0 - cfg->amount_up);
    for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++)
        pop->prior.lscale[j] = pop->prior.scale[j] > 0 ? (float)log(pop->prior.scale[j]) : 0;
    vg_hstree_derive(&pop->trees);
}

void vg_anomaly_state_init(vg_anomaly_state_t *st) { memset(st, 0, sizeof *st); }

void vg_anomaly_state_reset(vg_anomaly_state_t *st) { vg_anomaly_state_init(st); }

void vg_anomaly_state_prefetch(const vg_anomaly_state_t *st) {
#if defined(__GNUC__) || defined(__clang__)
    /* all lines at once: their misses overlap instead of following each other */
    const char *p = (const char *)st;
    for (size_t off = 0; off < sizeof *st; off += 64) __builtin_prefetch(p + off);
#else
    (void)st;
#endif
}

/* ---- helpers ---- */

/* Mixture p-to-Bayes-factor calibrator, in log: ln((1 - p + p ln p) / (p ln^2 p)). */
static double calib_lbf(double p, double *bf) {
    if (!(p < 0.999)) {
        *bf = 0.5;
        return -M_LN2;
    }
    if (p < 1e-300) p = 1e-300;
    double lp = log(p);
    double r = (1.0 - p + p * lp) / (lp * lp);
    double lbf = log(r) - lp;
    *bf = r / p; /* at most about 1e296 */
    return lbf > LBF_MAX ? LBF_MAX : lbf;
}


/* Score of total evidence x (log-odds above the base rate): softplus(x)/(softplus(x)+c)
 * with c = -logit(base_rate), so 0.5 is posterior odds even; monotone and below 1 for
 * every finite x, so scores keep their order even for overwhelming evidence. */
static double squash(double c, double x, double ex) {
    double sp = x > 30 ? x : (x < -30 ? ex : log1p(ex)); /* ex = e^x, known to the caller */
    if (c < 1e-3) c = 1e-3;
    double s = sp / (sp + c);
    return s > 0 ? (s < 1 ? s : nextafter(1.0, 0.0)) : 0;
}

static uint32_t hash32(const char *p, uint32_t len, int field) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(field + 1) * 0x9E3779B97F4A7C15ull;
    for (uint32_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    h ^= h >> 32;
    uint32_t r = (uint32_t)h;
    return r ? r : 1;
}

static int amt_bin(double a) {
    double l = log10(fabs(a) + 1e-12);
    int b = (int)floor((l + 2.0) * (VG_ANOMALY_POP_BINS / 12.0));
    return b < 0 ? 0 : (b >= VG_ANOMALY_POP_BINS ? VG_ANOMALY_POP_BINS - 1 : b);
}

static double bin_value(int b) { return pow(10.0, (b + 0.5) * (12.0 / VG_ANOMALY_POP_BINS) - 2.0); }

/* P(|amount| >= |x|) in the population (mid-p within x's bin); 1 with little data. */
static double pop_amount_p(const vg_anomaly_pop_t *pop, int b) {
    if (pop->amt_total < 100) return 1.0;
    double s0 = 0.5 * pop->amt_hist[b], s1 = 0, s2 = 0, s3 = 0;
    int i = b + 1;
    for (; i + 3 < VG_ANOMALY_POP_BINS; i += 4) { /* four chains of additions, not one */
        s0 += pop->amt_hist[i];
        s1 += pop->amt_hist[i + 1];
        s2 += pop->amt_hist[i + 2];
        s3 += pop->amt_hist[i + 3];
    }
    for (; i < VG_ANOMALY_POP_BINS; i++) s0 += pop->amt_hist[i];
    double s = (s0 + s1) + (s2 + s3);
    double p = (s + 0.5) / (pop->amt_total + 1.0);
    return p > 1 ? 1 : p;
}

static int64_t utc_day(int64_t ts) {
    return ts >= 0 ? ts / 86400000 : -((-ts + 86399999) / 86400000);
}

static void how_index(int64_t ts, int *how, int *hod, int *dow) {
    int64_t hour = ts >= 0 ? ts / 3600000 : -((-ts + 3599999) / 3600000);
    int64_t day = hour >= 0 ? hour / 24 : -((-hour + 23) / 24);
    int h = (int)(hour - day * 24);
    int64_t w = (day + 3) % 7;
    if (w < 0) w += 7;
    *hod = h;
    *dow = (int)w;
    *how = (int)w * 24 + h;
}

/* Hour-of-week predictive models: q(b) = (w c_b + (1 - w) d_h + K pop_b) / (n + K), with
 * c the account's counts smoothed over +-1 h, d its daily profile (same hour of every
 * day, smoothed, / 7), pop the population's profile. The strength K of the population
 * prior and the weekly share w are chosen per population by prequential likelihood
 * (the candidate that best predicted the hours of the events learned so far): an
 * empirical-Bayes choice of how much an account's own hours can be trusted. */
static const double how_K[VG_ANOMALY_HOW_MODELS] = {2, 8, 32, 128, 2, 8, 32, 128};
static const double how_w[VG_ANOMALY_HOW_MODELS] = {0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0};

static int how_best(const vg_anomaly_pop_t *pop) {
    int best = 1;
    for (int j = 0; j < VG_ANOMALY_HOW_MODELS; j++)
        if (pop->how_ll[j] > pop->how_ll[best]) best = j;
    return best;
}

static double pop_how(const vg_anomaly_pop_t *pop, int b) {
    return pop->how_total > 0 ? (pop->hist_how[b] + 1e-3) / (pop->how_total + 0.168)
                              : 1.0 / 168;
}

/* Tail probability of the event's hour of week: the predictive mass of the hours at most
 * as likely as this one (a discrete p-value). q(b) = A c_b + B d_(b mod 24) + C pop_b + D
 * is computed for the whole week in float (168 = 42 x 4 lanes, no modulo, no division
 * in the loops). */
static double time_p(const vg_anomaly_pop_t *pop, const vg_anomaly_state_t *st, int how,
                     double *intensity) {
    int j = how_best(pop);
    double K = how_K[j], w = how_w[j], n = st->how_total, inv = 1.0 / (n + K);
    /* the counts with one hour of wrap-around on each side (float: the loops vectorise) */
    float hp[168 + 2], daily[24 + 2], bd[24], q[168];
    for (int b = 0; b < 168; b++) hp[b + 1] = st->how[b];
    hp[0] = hp[168];
    hp[169] = hp[1];
    for (int h = 0; h < 24; h++) daily[h + 1] = 0;
    for (int d = 0; d < 7; d++)
        for (int h = 0; h < 24; h++) daily[h + 1] += hp[1 + d * 24 + h];
    daily[0] = daily[24];
    daily[25] = daily[1];
    float B = (float)((1 - w) * inv / 7.0), A = (float)(w * inv);
    for (int h = 0; h < 24; h++)
        bd[h] = B * (0.5f * daily[h + 1] + 0.25f * (daily[h] + daily[h + 2]));
    double C = 0, D = K * inv / 168;
    if (pop->how_total > 0) {
        C = K * inv / (pop->how_total + 0.168);
        D = C * 1e-3;
    }
    float Cf = (float)C, Df = (float)D;
#define Q(b, h)                                                                            \
    (A * (0.5f * hp[(b) + 1] + 0.25f * (hp[b] + hp[(b) + 2])) + bd[h] + \
     (Cf * (float)pop->hist_how[b] + Df))
    for (int d = 0; d < 7; d++)
        for (int h = 0; h < 24; h++) q[d * 24 + h] = Q(d * 24 + h, h);
    /* (the same expression again, not a load of what the vector loop just stored) */
    int hm = (how + 167) % 168, hq = (how + 1) % 168;
    float qh = Q(how, how % 24), qm = Q(hm, hm % 24), qp = Q(hq, hq % 24);
#undef Q
    /* this hour's share of the week relative to a flat week, smoothed over +-1 h */
    *intensity = 168.0 * (0.5 * qh + 0.25 * ((double)qm + qp));
    float qx = qh * (1 + 1e-6f), p0 = 0, p1 = 0, p2 = 0, p3 = 0;
    for (int b = 0; b < 168; b += 4) {
        p0 += q[b] <= qx ? q[b] : 0;
        p1 += q[b + 1] <= qx ? q[b + 1] : 0;
        p2 += q[b + 2] <= qx ? q[b + 2] : 0;
        p3 += q[b + 3] <= qx ? q[b + 3] : 0;
    }
    double p = (double)p0 + p1 + p2 + p3;
    return p > 1 ? 1 : (p < 1e-12 ? 1e-12 : p);
}

static void how_fold(vg_anomaly_pop_t *pop) {
    for (int j = 0; j < VG_ANOMALY_HOW_MODELS; j++) {
        if (pop->how_prod[j] > 0) pop->how_ll[j] += log(pop->how_prod[j]);
        pop->how_prod[j] = 1;
    }
}

/* Adds each candidate's log predictive probability of this event's hour. */
static void how_score_models(vg_anomaly_pop_t *pop, const vg_anomaly_state_t *st, int how) {
    double n = st->how_total, daily[3] = {0};
    int h = how % 24;
    for (int k = 0; k < 3; k++)
        for (int dd = 0; dd < 7; dd++) daily[k] += st->how[dd * 24 + (h + 23 + k) % 24];
    double c = 0.5 * st->how[how] + 0.25 * (st->how[(how + 167) % 168] + st->how[(how + 1) % 168]);
    double d = (0.5 * daily[1] + 0.25 * (daily[0] + daily[2])) / 7.0;
    double pp = pop_how(pop, how), low = 1;
    /* products of the predictive probabilities, folded into the log-likelihoods when one
     * gets small (and before each decay): eight multiplications an event instead of
     * eight logarithms; the choice lags by at most some hundred events */
    for (int j = 0; j < VG_ANOMALY_HOW_MODELS; j++) {
        double q = (how_w[j] * c + (1 - how_w[j]) * d + how_K[j] * pp) / (n + how_K[j]);
        pop->how_prod[j] *= q;
        if (pop->how_prod[j] < low) low = pop->how_prod[j];
    }
    if (low < 1e-200) how_fold(pop);
}

static int nov_find(const vg_anomaly_state_t *st, int f, uint32_t h) {
    const uint32_t *hs = st->nov_h + nov_off[f];
    for (int i = 0; i < nov_len[f]; i++)
        if (hs[i] == h) return nov_off[f] + i;
    return -1;
}

static int nov_distinct(const vg_anomaly_state_t *st, int f) {
    int k = 0;
    for (int i = 0; i < nov_len[f]; i++) k += st->nov_h[nov_off[f] + i] != 0;
    return k;
}

void vg_anomaly_describe(const vg_anomaly_pop_t *pop, const vg_anomaly_state_t *st,
                         vg_anomaly_baseline_t *out) {
    memset(out, 0, sizeof *out);
    out->events = st->n;
    if (st->n == 0) return;
    out->first_ts = st->first_ts;
    out->last_ts = st->last_ts;
    out->has_amount = vg_amount_describe(&pop->cfg.amount, &st->amount, &pop->prior,
                                         &out->amount_typical, &out->amount_lo,
                                         &out->amount_hi);
    /* an account that pays (a positive level) has no usual amount below zero */
    if (out->has_amount && out->amount_typical > 0 && out->amount_lo < 0) out->amount_lo = 0;
    for (int f = 0; f < VG_ANOMALY_CAT__COUNT; f++) out->known[f] = nov_distinct(st, f);
    for (int b = 0; b < 168; b++) out->hours_utc[b % 24] += st->how[b];
    out->burst = st->burst;
    out->p_compromised = st->p_comp;
}

/* Upper tail of a Poisson(mu) at k: P(N >= k). k may be infinite (a burst's spend
 * over the median after sums overflowed) or NaN (no evidence: 1). */
static double poisson_sf(double k, double mu) {
    if (!(k > mu) || k <= 0) return 1.0;
    if (k > 9e15) k = 9e15;   /* beyond exact integers (and long): the tail is ~0 anyway */
    long kk = (long)ceil(k - 1e-9);
    /* the first term, then the ratio of consecutive terms mu / (i + 1) */
    double t = exp(-mu + kk * log(mu) - lgamma(kk + 1.0)), s = 0;
    for (int i = 0; i < 400 && t > 0; i++) {
        s += t;
        if (t < s * 1e-12) break;
        t *= mu / (double)(kk + i + 1);
    }
    return s > 1 ? 1 : (s < 1e-300 ? 1e-300 : s);
}

static double rate_per_s(const vg_anomaly_state_t *st, int64_t ts) {
    /* events per second, prior one event a day with the weight of one day */
    double span = st->n ? (double)(ts - st->first_ts) / 1000.0 : 0;
    if (span < 0) span = 0;
    return (st->n + 1.0) / (span + 86400.0);
}

/* A spend (>= 0) as the float the state keeps: at most FLT_MAX, since an amount beyond
 * a float's range (valid: any finite double) would make it infinite, which the state's
 * decoder rightly refuses (the velocity tail is ~0 either way, poisson_sf). */
static float spend_f(double x) { return x < (double)FLT_MAX ? (float)x : FLT_MAX; }

static double clamp01(double v) { return v > 0 ? (v < 1 ? v : 1) : 0; }

/* The compromise chain's stationary P(compromised): hazard / (hazard + 1 / days). */
static double comp_stationary(const vg_anomaly_cfg_t *cfg) {
    double a = cfg->compromise_hazard > 0 ? cfg->compromise_hazard : 0.0;
    double b = cfg->compromise_days > 0 ? 1.0 / cfg->compromise_days : 0.0;
    return a + b > 0 ? a / (a + b) : 0.0;
}

/* Features of the multivariate trees; mnew: the merchant is new (1), known (0), absent
 * (-1). Float logarithms: the trees only compare them with their splits. */
static void multi_features(const vg_anomaly_state_t *st, const vg_anomaly_input_t *in,
                           double amount_z, int mnew, double *f) {
    f[0] = clamp01(0.5 + amount_z / 16.0);
    int64_t tod = in->ts_ms % 86400000;
    if (tod < 0) tod += 86400000;
    f[1] = tod / DAY_MS;
    f[2] = isfinite(in->amount)
               ? clamp01((log10f((float)(fabs(in->amount) + 0.01)) + 2.0) / 12.0)
               : 0;
    double gap = st->n ? (in->ts_ms - st->last_ts) / 1000.0 : 1e7;
    f[3] = clamp01(log10f((float)(1.0 + (gap > 0 ? gap : 0))) / 7.0);
    f[4] = mnew < 0 ? 0.5 : mnew;
    f[5] = clamp01(log10f((float)(1.0 + st->n)) / 4.0);
}

/* Hashes of the event's categorical fields (0: absent). */
static void hash_fields(const vg_anomaly_input_t *in, uint32_t on, uint32_t *h) {
    for (int f = 0; f < VG_ANOMALY_CAT__COUNT; f++) {
        const vg_str_t *v = &in->cat[f];
        int want = (on >> (VG_ANOMALY_MERCHANT + f)) & 1;
        if (f == VG_ANOMALY_CAT_MERCHANT) want |= (on >> VG_ANOMALY_MULTI) & 1;
        h[f] = v->p && want ? hash32(v->p, v->len, f) : 0;
    }
}

static int merchant_new(const vg_anomaly_state_t *st, const uint32_t *h) {
    return h[VG_ANOMALY_CAT_MERCHANT] ? nov_find(st, 0, h[VG_ANOMALY_CAT_MERCHANT]) < 0 : -1;
}

/* ---- scoring ---- */

typedef struct cand {
    int sig;
    double lbf;
} cand_t;

/* an amount in a reason: two decimals, or 6 significant digits when that would be
 * longer than a reason can hold (amounts are any finite number) */
static void reason_amount(char *b, size_t n, double x) {
    if (fabs(x) < 1e15) snprintf(b, n, "%.2f", x);
    else snprintf(b, n, "%.6g", x);
}

/* a percentage in a reason, two significant digits without an exponent */
static const char *reason_pct(char *b, size_t n, double pct) {
    if (pct < 0.0001) snprintf(b, n, "<0.0001");
    else if (pct < 10) snprintf(b, n, "%.2g", pct);
    else snprintf(b, n, "%.0f", pct);
    return b;
}

static const char *dow_name(int d) {
    static const char *const n[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    return n[d];
}

void vg_anomaly_score(const vg_anomaly_pop_t *pop, const vg_anomaly_state_t *st,
                      const vg_anomaly_input_t *in, vg_anomaly_result_t *res) {
    const vg_anomaly_cfg_t *cfg = &pop->cfg;
    const uint32_t on = cfg->signals;
    vg_anomaly_state_prefetch(st);
    double lbf[VG_ANOMALY__COUNT] = {0}; /* weighted, for the combination */
    double raw[VG_ANOMALY__COUNT] = {0}; /* unweighted, for the signal's own score */
    double eraw[VG_ANOMALY__COUNT] = {0}; /* e^raw where raw <= 30 (no exp to undo a log) */
    uint32_t hf[VG_ANOMALY_CAT__COUNT];
    memset(res, 0, offsetof(vg_anomaly_result_t, reason));
    for (int i = 0; i < VG_ANOMALY_REASONS; i++) res->reason[i][0] = 0;
    for (int i = 0; i < VG_ANOMALY__COUNT; i++) res->p[i] = 1.0;
    hash_fields(in, on, hf);
    struct vg_anomaly_memo *mo = &res->memo;
    mo->ts_ms = in->ts_ms;
    mo->amount = in->amount;
    mo->n = st->n;
    mo->tick = st->tick;
    mo->signals = on;
    mo->has_leaf = 0;
    mo->burst_decay = mo->stay = -1;
    mo->amt_bin = isfinite(in->amount) ? amt_bin(in->amount) : -1;
    memcpy(mo->hash, hf, sizeof hf);
    mo->ok = 1;

    /* amount: the account's robust model (shrunk to the population) and the population
     * tail. A payment (amount > 0) is scored as it is; a refund (< 0, SPEC 1) by its size
     * against the account's payments, upper tail only (a partial refund is ordinary, one
     * larger than the account pays is not); an amount of 0 (a card check, an
     * authorization without an amount) has no amount signal */
    vg_amount_score_t as;
    memset(&as, 0, sizeof as);
    const int refund = in->amount < 0;
    double p_pop = 1.0, l_acc = 0, l_pop = 0; /* the account's and the population's parts */
    if ((on & (1u << VG_ANOMALY_AMOUNT)) && isfinite(in->amount) && in->amount != 0) {
        vg_amount_score(&cfg->amount, &st->amount, &pop->prior, in->ts_ms, fabs(in->amount),
                        &as);
        if (refund) as.p_lo = 1.0;
        double p = 2.0 * (as.p_hi < as.p_lo ? as.p_hi : as.p_lo);
        if (p > 1) p = 1;
        p_pop = pop_amount_p(pop, mo->amt_bin);
        res->amount_z = as.z;
        /* a mixture over the direction of the anomaly: up with prior amount_up, down with
         * 1 - amount_up; each one-sided p calibrated on its own */
        double bh, bl, bp = 1;
        double l1 = pop->k_log_up + calib_lbf(as.p_hi, &bh);
        double l2 = pop->k_log_down + calib_lbf(as.p_lo, &bl);
        double mix = cfg->amount_up * bh + (1.0 - cfg->amount_up) * bl; /* < 1e297 */
        double l = log(mix);
        if (!(l > -745)) /* (mix underflowed: both factors tiny) */
            l = l1 > l2 ? l1 + log1p(exp(l2 - l1)) : l2 + log1p(exp(l1 - l2));
        l_acc = l;
        if (p_pop < 1.0) {
            /* the population's tail counts where the account has little amount history
             * (SPEC 4): its weight fades as the prior's does, prior_n / (prior_n + n),
             * n the amounts the account's model learned (1 for a new account, 0.11 after
             * 32); an established account is judged against its own amounts */
            double k = cfg->amount.prior_n > 0 ? cfg->amount.prior_n : 0.0;
            double nh = (double)st->amount.n;
            double wp = cfg->pop_amount_weight * (k > 0 ? k / (k + nh) : (nh > 0 ? 0.0 : 1.0));
            double lp = calib_lbf(p_pop, &bp);
            l_pop = wp * lp;
            l += l_pop;
            if (wp != 1.0) bp = l_pop < 30 ? exp(l_pop) : 0;
        }
        eraw[VG_ANOMALY_AMOUNT] = mix * bp;
        if (as.n_eff > 0 || pop->prior.scale[0] > 0 || p_pop < 1.0) {
            res->present |= 1u << VG_ANOMALY_AMOUNT;
            res->p[VG_ANOMALY_AMOUNT] = p;
            lbf[VG_ANOMALY_AMOUNT] = raw[VG_ANOMALY_AMOUNT] = l;
        }
    }

    /* time of week */
    int how, hod, dow;
    how_index(in->ts_ms, &how, &hod, &dow);
    double intensity = 1.0;
    if ((on & (1u << VG_ANOMALY_TIME)) && (st->n > 0 || pop->how_total > 0)) {
        double p = time_p(pop, st, how, &intensity);
        res->present |= 1u << VG_ANOMALY_TIME;
        res->p[VG_ANOMALY_TIME] = p;
        raw[VG_ANOMALY_TIME] = calib_lbf(p, &eraw[VG_ANOMALY_TIME]);
        lbf[VG_ANOMALY_TIME] = cfg->time_weight * raw[VG_ANOMALY_TIME];
    }

    /* novelty: likelihood ratio of new / seen with P(new | anomalous) = 0.8 against the
     * account's own rate of new values */
    int is_new[VG_ANOMALY_CAT__COUNT] = {0};
    double rnew[VG_ANOMALY_CAT__COUNT] = {0};
    for (int f = 0; f < VG_ANOMALY_CAT__COUNT; f++) {
        int sig = VG_ANOMALY_MERCHANT + f;
        if (!in->cat[f].p || !(on & (1u << sig))) continue;
        double r = (st->nov_new[f] + 0.5) / (st->nov_seen[f] + 1.0);
        const double phi = 0.8;
        is_new[f] = nov_find(st, f, hf[f]) < 0;
        rnew[f] = r;
        double l = 0, e = 1;
        if (r < phi) {
            e = is_new[f] ? phi / r : (1 - phi) / (1 - r);
            l = log(e);
        }
        eraw[sig] = e;
        res->present |= 1u << sig;
        res->p[sig] = is_new[f] ? r : 1.0;
        raw[sig] = l;
        lbf[sig] = cfg->novelty_weight * l;
    }

    /* velocity: short gap against the account's gaps, event count and spend in the burst
     * window against the account's rate */
    double gap_s = 0, burst_c = 0, mu = 0, spend = 0, spend_k = 0;
    if ((on & (1u << VG_ANOMALY_VELOCITY)) && st->n > 0) {
        gap_s = (in->ts_ms - st->last_ts) / 1000.0;
        if (gap_s < 0) gap_s = 0;
        double decay = exp(-gap_s / cfg->burst_tau_s);
        mo->burst_decay = decay;
        burst_c = st->burst * decay + 1.0;
        /* the account's rate, modulated by its activity at this hour of the week */
        double rate = rate_per_s(st, in->ts_ms) * intensity;
        mu = rate * cfg->burst_tau_s;
        /* (no separate "gap this short" test: under the account's hourly profile it
         * would mostly repeat the time signal; the count and the spend in the window
         * carry the rhythm) */
        /* given this event (whose hour is the time signal's business and whose amount the
         * amount signal's), are the *other* events of the window too many, or their spend
         * too high, for the account's rate at this hour? */
        double p_cnt = burst_c >= 2.0 ? poisson_sf(burst_c - 1.0, mu) : 1.0;
        double p_sp = 1.0;
        if (as.median > 0 && burst_c >= 2.0) {
            spend = st->burst_spend * decay;
            spend_k = spend / as.median;
            p_sp = poisson_sf(spend_k, mu);
        }
        double p = p_cnt < p_sp ? p_cnt : p_sp;
        p *= 2.0;
        if (p > 1) p = 1;
        res->present |= 1u << VG_ANOMALY_VELOCITY;
        res->p[VG_ANOMALY_VELOCITY] = p;
        raw[VG_ANOMALY_VELOCITY] = calib_lbf(p, &eraw[VG_ANOMALY_VELOCITY]);
        /* arrival processes are far from Poisson: only evidence beyond strong (BF 20)
         * counts in full, weaker evidence is discounted */
        double rv = raw[VG_ANOMALY_VELOCITY];
        lbf[VG_ANOMALY_VELOCITY] = rv > VEL_DISCOUNT ? rv - VEL_DISCOUNT
                                   : rv > 0          ? 0
                                                     : cfg->velocity_weight * rv;
    }

    /* multivariate */
    if (on & (1u << VG_ANOMALY_MULTI)) {
        /* the leaves serve the learn too, so they are found even before the trees have
         * a reference window */
        double f[VG_HST_DIMS];
        multi_features(st, in, as.z, merchant_new(st, hf), f);
        vg_hstree_leaves(&pop->trees, f, mo->leaf);
        mo->has_leaf = 1;
    }
    if ((on & (1u << VG_ANOMALY_MULTI)) && pop->trees.ready) {
        double l = vg_hstree_log_score_leaves(&pop->trees, mo->leaf);
        if (l > LBF_MAX) l = LBF_MAX;
        if (l < -LBF_MAX) l = -LBF_MAX;
        double e = exp(l);
        res->present |= 1u << VG_ANOMALY_MULTI;
        res->p[VG_ANOMALY_MULTI] = l > 0 ? 1.0 / e : 1.0;
        eraw[VG_ANOMALY_MULTI] = e;
        raw[VG_ANOMALY_MULTI] = l;
        lbf[VG_ANOMALY_MULTI] = cfg->multi_weight * l;
    }

    /* combine, with the prior raised by the compromise filter */
    double total = 0;
    for (int s = 0; s < VG_ANOMALY__COUNT; s++) {
        if (!(res->present & (1u << s))) continue;
        total += lbf[s];
        res->signal[s] = squash(LN20, raw[s], eraw[s]);
    }
    if (total > 700) total = 700;
    if (total < -700) total = -700;
    /* the two-state chain's time update: normal -> compromised at rate a = hazard a day,
     * compromised -> normal at rate b = 1 / mean duration; over dt days P(compromised)
     * relaxes towards the stationary pi = a / (a + b) (about 0.007 with the defaults):
     * pc = pi + (p - pi) e^-(a+b) dt, whatever it was after the last event */
    double pc = 0, pi_c = comp_stationary(cfg);
    if (st->n > 0) {
        double dt_days = (in->ts_ms - st->last_ts) / DAY_MS;
        if (dt_days < 0) dt_days = 0;
        double rate = cfg->compromise_hazard +
                      (cfg->compromise_days > 0 ? 1.0 / cfg->compromise_days : 0.0);
        double stay = exp(-rate * dt_days);
        mo->stay = stay;
        pc = pi_c + (st->p_comp - pi_c) * stay;
        if (!(pc >= 0)) pc = 0;
        if (pc > 1) pc = 1;
    }
    double prior = cfg->base_rate + pc * cfg->compromise_frac;
    if (prior > 0.999) prior = 0.999;
    res->lbf = total;
    double prior_lo = pc > 0 ? log(prior / (1 - prior)) : -pop->k_base_c;
    /* one exponential serves the posterior, the score and the Bayes factor:
     * e^lo = BF x prior odds, and the score's x = lo + c has e^x = e^lo (1 - b) / b */
    double lo = total + prior_lo, bf, e_lo = 0;
    if (lo > 700 || lo < -700) {
        res->posterior = lo > 700 ? 1.0 : 0.0;
        bf = exp(total);
    } else {
        e_lo = exp(lo);
        res->posterior = e_lo / (1.0 + e_lo);
        bf = e_lo * ((1 - prior) / prior);
    }
    double lift = prior_lo + pop->k_base_c;
    res->score = squash(pop->k_base_c, total + lift, e_lo * pop->k_base_odds);
    double lc = cfg->compromise_frac * bf + (1.0 - cfg->compromise_frac);
    double ln = cfg->base_rate * bf + (1.0 - cfg->base_rate);
    double pc_post = pc * lc / (pc * lc + (1.0 - pc) * ln);
    if (!(pc_post >= 0)) pc_post = 0;
    if (pc_post > 1) pc_post = 1;
    res->present |= 1u << VG_ANOMALY_COMPROMISE;
    res->signal[VG_ANOMALY_COMPROMISE] = pc_post;
    res->p[VG_ANOMALY_COMPROMISE] = 1.0 - pc;
    /* as an explanation, the compromise factor is the prior against that of an account
     * about which time alone is known (the chain's stationary P(compromised)): "recent
     * anomalies" only when the account's own events raised it */
    {
        double prior_st = cfg->base_rate + pi_c * cfg->compromise_frac;
        lbf[VG_ANOMALY_COMPROMISE] = prior > prior_st ? log(prior / prior_st) : 0;
    }

    /* explanations: the strongest factors for "anomalous", strongest first */
    cand_t c[VG_ANOMALY__COUNT];
    int nc = 0;
    for (int s = 0; s < VG_ANOMALY__COUNT; s++)
        if ((res->present & (1u << s)) && lbf[s] > log(3.0)) c[nc++] = (cand_t){s, lbf[s]};
    for (int i = 1; i < nc; i++)
        for (int j = i; j > 0 && c[j].lbf > c[j - 1].lbf; j--) {
            cand_t t = c[j];
            c[j] = c[j - 1];
            c[j - 1] = t;
        }
    for (int i = 0; i < nc && res->nreasons < VG_ANOMALY_REASONS; i++) {
        char *r = res->reason[res->nreasons];
        const size_t L = VG_ANOMALY_REASON_LEN;
        int s = c[i].sig;
        switch (s) {
        case VG_ANOMALY_AMOUNT: {
            char amt[24], med[24], pct[12]; /* (reason_pct: at most 7 characters) */
            /* a refund is named as one, by its size */
            const char *noun = refund ? "refund" : "amount";
            reason_amount(amt, sizeof amt, fabs(in->amount));
            reason_amount(med, sizeof med, as.median);
            /* the population's tail makes the factor when it outweighs the account's
             * part, or when that part alone would give no reason */
            int pop_drives = l_pop > 0 && p_pop < 0.5 && (l_pop > l_acc || l_acc <= log(3.0));
            if (pop_drives && as.n_eff < 3)
                snprintf(r, L, "%s %s is large for an account with little amount history "
                               "(about top %s%% of all amounts)",
                         noun, amt, reason_pct(pct, sizeof pct, 100.0 * p_pop));
            else if (pop_drives)
                /* the population's tail is what makes the factor: say so, with what the
                 * account's own amounts say */
                snprintf(r, L, "%s %s is large (about top %s%% of all amounts; usual "
                               "%s, p=%.2g)",
                         noun, amt, reason_pct(pct, sizeof pct, 100.0 * p_pop), med, res->p[s]);
            else if (as.n_eff >= 3 && as.median > 0 && as.ratio >= 1.5)
                snprintf(r, L, as.ratio < 1e6 ? "%s %s is %.1fx this account's usual amount %s"
                                              : "%s %s is %.3gx this account's usual amount %s",
                         noun, amt, as.ratio, med);
            else if (as.n_eff >= 3 && as.median > 0)
                snprintf(r, L, "%s %s is unusual for this account (usual amount %s, p=%.2g)",
                         noun, amt, med, res->p[s]);
            else if (p_pop < 0.5 && as.p_hi <= as.p_lo)
                /* little history (the model's weight of kept amounts, not a count of
                 * payments: it printed "an account with 1 payments" for one with 3) */
                snprintf(r, L, "%s %s is large for an account with little amount history "
                               "(about top %s%% of all amounts)",
                         noun, amt, reason_pct(pct, sizeof pct, 100.0 * p_pop));
            else
                snprintf(r, L, "%s %s is unusually %s for an account with little amount "
                               "history (p=%.2g)",
                         noun, amt, as.p_hi <= as.p_lo ? "large" : "small", res->p[s]);
            break;
        }
        case VG_ANOMALY_TIME:
            snprintf(r, L, "payment on %s at %02d:00 UTC, rare for this account (p=%.2g)",
                     dow_name(dow), hod, res->p[s]);
            break;
        case VG_ANOMALY_VELOCITY:
            if (spend_k > 0 && poisson_sf(spend_k, mu) < poisson_sf(burst_c - 1.0, mu)) {
                char sp[24];
                reason_amount(sp, sizeof sp, spend);
                double pace = mu > 0 ? spend_k / mu : 0.0;
                /* the window is a decayed sum, not a count of the last 60 min: the
                 * reason says what was measured (each earlier payment weighs
                 * e^(-age / burst_tau), and the spend leaves out the amounts kept out of
                 * the baseline); both forms leave this payment out */
                snprintf(r, L, pace < 1e6 ? "%s spent by other recent payments (recency-weighted, "
                                            "decay %.0f min; anomalous amounts left out), "
                                            "%.1fx the usual pace"
                                          : "%s spent by other recent payments (recency-weighted, "
                                            "decay %.0f min; anomalous amounts left out), "
                                            "%.3gx the usual pace",
                         sp, cfg->burst_tau_s / 60.0, pace);
            } else
                snprintf(r, L, "%.1f other recent payments, recency-weighted (decay %.0f min); "
                               "this account averages %.2f a day",
                         burst_c - 1.0, cfg->burst_tau_s / 60.0,
                         rate_per_s(st, in->ts_ms) * 86400.0);
            break;
        case VG_ANOMALY_MULTI:
            snprintf(r, L, "rare combination of amount, hour, gap and merchant (%.0fx rarer "
                           "than uniform)",
                     exp(lbf[s] / (cfg->multi_weight > 0 ? cfg->multi_weight : 1)));
            break;
        case VG_ANOMALY_COMPROMISE:
            snprintf(r, L, "account shows recent anomalies: P(compromised) %.2f", pc);
            break;
        default: {
            int f = s - VG_ANOMALY_MERCHANT;
            const vg_str_t *v = &in->cat[f];
            int len = v->len > 40 ? 40 : (int)v->len;
            if (f == VG_ANOMALY_CAT_COUNTRY || st->nov_seen[f] < 0.5)
                snprintf(r, L, "first payment from %s %.*s", cat_name[f], len, v->p);
            else
                snprintf(r, L, "new %s %.*s; %.0f%% of this account's payments use a new "
                               "one, %d known",
                         cat_name[f], len, v->p, 100.0 * rnew[f], nov_distinct(st, f));
            break;
        }
        }
        res->reason_signal[res->nreasons++] = s;
    }
}

/* ---- learning ---- */

static void pop_refresh_prior(vg_anomaly_pop_t *pop) {
    if (pop->amt_total < 100) return;
    double q[3] = {0.25, 0.5, 0.75}, v[3] = {0};
    int k = 0;
    double s = 0;
    for (int b = 0; b < VG_ANOMALY_POP_BINS && k < 3; b++) {
        s += pop->amt_hist[b];
        while (k < 3 && s >= q[k] * pop->amt_total) v[k++] = bin_value(b);
    }
    const vg_amount_cfg_t *ac = &pop->cfg.amount;
    for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) {
        double lam = vg_amount_lambda(j);
        double t25 = vg_amount_transform(lam, v[0]), t50 = vg_amount_transform(lam, v[1]);
        double t75 = vg_amount_transform(lam, v[2]);
        double sc = (t75 - t25) / 1.349;
        if (!(sc > 0)) sc = ac->abs_floor + ac->rel_floor * fabs(t50);
        pop->prior.level[j] = (float)t50;
        pop->prior.scale[j] = (float)sc;
        pop->prior.lscale[j] = (float)log(pop->prior.scale[j]);
        pop->prior.exc[j] =
            pop->amt_exc_n > 0 ? (float)(pop->amt_exc[j] / pop->amt_exc_n) : 0.0f;
    }
    pop->prior.exc_n = (float)pop->amt_exc_n;
    if (pop->amt_exc_n >= 1000) pop->prior.lam = vg_amount_pick(pop->prior.exc, pop->prior.lam);
}

static void pop_learn(vg_anomaly_pop_t *pop, const vg_anomaly_input_t *in, int how, int bin) {
    const uint32_t on = pop->cfg.signals;
    if ((on & (1u << VG_ANOMALY_AMOUNT)) && isfinite(in->amount) && in->amount > 0) {
        /* the population's amounts are payments (refunds and zeros are scored against
         * them, not learned) */
        pop->amt_hist[bin] += 1.0;
        pop->amt_total += 1.0;
    }
    if (on & (1u << VG_ANOMALY_TIME)) {
        pop->hist_how[how] += 1.0;
        pop->how_total += 1.0;
    }
    pop->n++;
    if ((pop->n & 1023) == 0) {
        /* forget with a half-life of about 35,000 events */
        const double f = 0.98;
        how_fold(pop);
        for (int b = 0; b < VG_ANOMALY_POP_BINS; b++) pop->amt_hist[b] *= f;
        for (int b = 0; b < 168; b++) pop->hist_how[b] *= f;
        for (int j = 0; j < VG_ANOMALY_HOW_MODELS; j++) pop->how_ll[j] *= f;
        pop->amt_total *= f;
        for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) pop->amt_exc[j] *= f;
        pop->amt_exc_n *= f;
        pop->how_total *= f;
    }
    if ((pop->n & 255) == 0 || pop->n == 100) pop_refresh_prior(pop);
}

static void nov_learn(vg_anomaly_state_t *st, int f, uint32_t h, int keep_out) {
    int i = nov_find(st, f, h);
    const float decay = 0.97f; /* about the last 33 events carrying the field */
    if (keep_out) return;
    st->nov_seen[f] = st->nov_seen[f] * decay + 1.0f;
    st->nov_new[f] = st->nov_new[f] * decay + (i < 0 ? 1.0f : 0.0f);
    if (i < 0) {
        /* take an empty slot, else the least recently used one */
        int best = nov_off[f];
        uint16_t best_age = 0;
        for (int k = 0; k < nov_len[f]; k++) {
            int sl = nov_off[f] + k;
            if (st->nov_h[sl] == 0) {
                best = sl;
                break;
            }
            uint16_t age = (uint16_t)(st->tick - st->nov_last[sl]);
            if (age >= best_age) {
                best_age = age;
                best = sl;
            }
        }
        i = best;
        st->nov_h[i] = h;
    }
    st->nov_last[i] = st->tick;
}

void vg_anomaly_learn(vg_anomaly_pop_t *pop, vg_anomaly_state_t *st,
                      const vg_anomaly_input_t *in, const vg_anomaly_result_t *res) {
    vg_anomaly_result_t tmp;
    if (!res) {
        vg_anomaly_score(pop, st, in, &tmp);
        res = &tmp;
    }
    const vg_anomaly_cfg_t *cfg = &pop->cfg;
    const uint32_t on = cfg->signals;
    const struct vg_anomaly_memo *mo = &res->memo;
    int same = mo->ok && mo->ts_ms == in->ts_ms && mo->n == st->n && mo->tick == st->tick &&
               mo->signals == on &&
               (mo->amount == in->amount || (isnan(mo->amount) && isnan(in->amount)));
    uint32_t hf[VG_ANOMALY_CAT__COUNT];
    if (same) memcpy(hf, mo->hash, sizeof hf);
    else hash_fields(in, on, hf);
    if (on & (1u << VG_ANOMALY_MULTI)) {
        if (same && mo->has_leaf) {
            vg_hstree_learn_leaves(&pop->trees, mo->leaf);
        } else {
            double f[VG_HST_DIMS];
            multi_features(st, in, res->amount_z, merchant_new(st, hf), f);
            vg_hstree_learn(&pop->trees, f);
        }
    }
    int how, hod, dow;
    how_index(in->ts_ms, &how, &hod, &dow);
    pop_learn(pop, in, how,
              same ? mo->amt_bin : (isfinite(in->amount) ? amt_bin(in->amount) : -1));
    if ((on & (1u << VG_ANOMALY_TIME)) && st->n > 0) how_score_models(pop, st, how);
    st->tick++;
    int anomalous = res->posterior > 0.5;
    int keep_out = anomalous && st->skip_run < VG_ANOMALY_SKIP_MAX;
    /* only payments teach the amount model: a refund (amount < 0) or an amount of 0 is
     * scored against it and learned nowhere else than in the other signals */
    int has_amt = (on & (1u << VG_ANOMALY_AMOUNT)) && isfinite(in->amount) && in->amount > 0;
    {
        /* the first event of a day arms the recurrence of its weekday when the previous
         * such day had an amount kept out (a payment that comes back a week later), and
         * starts that weekday's record afresh */
        if (st->n == 0 || utc_day(in->ts_ms) != utc_day(st->last_ts)) {
            unsigned bit = 1u << dow, armed = (st->recur & bit) ? 0x80u : 0u;
            st->recur = (uint8_t)(((st->recur & 0x7fu) & ~bit) | armed);
        }
    }
    if (keep_out) {
        /* the run's amounts, as the ring would hold them: their mean is the new level
         * when the run lasts */
        double y = has_amt ? vg_amount_resid(&cfg->amount, &st->amount, &pop->prior,
                                             in->ts_ms, in->amount)
                           : (double)NAN;
        int k = st->skip_run + 1;
        if (k == 1 || !isfinite(st->run_y)) st->run_y = (float)y;
        else if (isfinite(y)) st->run_y += (float)((y - st->run_y) / k);
    }
    /* the run saturates: once a change has lasted, it is learned until it ends */
    st->skip_run = anomalous ? (uint8_t)(keep_out ? st->skip_run + 1 : st->skip_run) : 0;
    int rebased = 0;
    if (keep_out && st->skip_run == VG_ANOMALY_SKIP_MAX &&
        st->burst * (st->n > 0 ? exp(-(in->ts_ms - st->last_ts) / 1000.0 / cfg->burst_tau_s)
                               : 0.0) < 3.0) {
        /* the VG_ANOMALY_SKIP_MAX-th anomalous event in a row: the change is learned now
         * (this event's values become known; the amount ring restarts at the run's level
         * when the run's amounts moved, else this amount is learned as usual), so that
         * the next event is scored against it. A run that comes in a burst (3 or more
         * recency-weighted payments within the velocity window before this one) is the
         * velocity signal's business and no new level: it is learned from its next
         * event on, as it comes. */
        keep_out = 0;
        if (has_amt)
            rebased = vg_amount_rebase(&cfg->amount, &st->amount, &pop->prior, in->ts_ms,
                                       st->run_y);
    }
    if (has_amt) {
        /* every event, kept out or not, tells whether each transform alarms too often */
        double ll[VG_AMOUNT_LAMBDAS];
        int had = st->amount.n >= 16; /* calibration in the steady state */
        /* a quarter of each account's events (deterministic) until the population has
         * 2,000 of them, then a sixteenth (about 3,000 within the rates' memory of 50,000
         * events): plenty for the choice, and three candidates' statistics cost more than
         * the rest of the amount model */
        int sample = had && (st->tick & (pop->amt_exc_n < 2000 ? 3 : 15)) == 0;
        if ((keep_out || rebased) && sample)
            vg_amount_exceed(&cfg->amount, &st->amount, &pop->prior, in->ts_ms, in->amount, ll);
        if (keep_out) {
            /* kept out of the ring and the level; but when the same weekday had an
             * amount kept out a week before, its hour's and weekday's offsets learn it
             * (clipped): a payment that recurs every week becomes expected */
            if (st->recur & 0x80u)
                vg_amount_learn_season(&cfg->amount, &st->amount, &pop->prior, in->ts_ms,
                                       in->amount);
            st->recur |= (uint8_t)(1u << dow);
        } else if (!rebased)
            vg_amount_learn(&cfg->amount, &st->amount, &pop->prior, in->ts_ms, in->amount,
                            sample ? ll : NULL);
        if (sample) {
            /* accounts with some history tell the population which transform fits */
            for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) pop->amt_exc[j] += ll[j];
            pop->amt_exc_n += 1.0;
        }
    }
    if (on & (1u << VG_ANOMALY_TIME)) {
        if (st->how[how] == 255) {
            uint32_t tot = 0;
            for (int b = 0; b < 168; b++) tot += st->how[b] /= 2;
            st->how_total = (uint16_t)tot; /* at most 168 x 255 */
        }
        st->how[how]++;
        st->how_total++;
    }
    for (int f = 0; f < VG_ANOMALY_CAT__COUNT; f++)
        if (in->cat[f].p && (on & (1u << (VG_ANOMALY_MERCHANT + f))))
            nov_learn(st, f, hf[f], keep_out);

    if (st->n > 0) {
        /* the decays the score computed, when it did */
        double gap_s = (in->ts_ms - st->last_ts) / 1000.0;
        if (on & (1u << VG_ANOMALY_VELOCITY)) {
            /* an amount kept out of the baseline is the amount signal's business, not the
             * spend rate's */
            double add = isfinite(in->amount) && in->amount > 0 && !keep_out ? in->amount : 0.0;
            if (gap_s >= 0) {
                double decay = same && mo->burst_decay >= 0 ? mo->burst_decay
                                                            : exp(-gap_s / cfg->burst_tau_s);
                st->burst = (float)(st->burst * decay + 1.0);
                st->burst_spend = spend_f(st->burst_spend * decay + add);
            } else {
                /* an accepted late event: the sums are as of last_ts, where it is already
                 * -gap_s old, so it weighs e^(gap / tau) as the others do (it counted as a
                 * fresh event) */
                double w = exp(gap_s / cfg->burst_tau_s);
                st->burst = (float)(st->burst + w);
                st->burst_spend = spend_f(st->burst_spend + add * w);
            }
        }
    } else {
        st->first_ts = in->ts_ms;
        st->burst = 1.0f;
        st->burst_spend =
            isfinite(in->amount) && in->amount > 0 ? spend_f(in->amount) : 0.0f;
    }
    st->p_comp = (float)res->signal[VG_ANOMALY_COMPROMISE];
    if (st->n == 0 || in->ts_ms > st->last_ts) st->last_ts = in->ts_ms;
    if (st->n < UINT32_MAX) st->n++;
}

void vg_anomaly_process(vg_anomaly_pop_t *pop, vg_anomaly_state_t *st,
                        const vg_anomaly_input_t *in, vg_anomaly_result_t *res) {
    vg_anomaly_score(pop, st, in, res);
    vg_anomaly_learn(pop, st, in, res);
}
