/* amount.c - robust online amount model: clipped ring statistics under a transform chosen
 * by prequential likelihood, seasonal offsets, population prior, Student-t tails. See
 * amount.h. */
#include "models/amount.h"

#include <math.h>
#include <string.h>

#define HALF (VG_AMOUNT_RING / 2)

/* Effective seasonal offsets by hour of day and day of week. */
typedef struct seas {
    float h[24], d[7];
} seas_t;

vg_amount_cfg_t vg_amount_cfg_default(void) {
    vg_amount_cfg_t c;
    c.lambda = -1.0f;
    c.prior_n = 4.0f;
    c.season_k = 8.0f;
    c.season_rate = 1.0f / 64.0f;
    c.rel_floor = 0.02f;
    c.abs_floor = 0.01f;
    return c;
}

void vg_amount_init(vg_amount_t *m) { memset(m, 0, sizeof *m); }

static const double lambdas[VG_AMOUNT_LAMBDAS] = {0.0, 0.5, 1.0};

double vg_amount_lambda(int j) {
    return j >= 0 && j < VG_AMOUNT_LAMBDAS ? lambdas[j] : 1.0;
}

double vg_amount_transform(double lambda, double x) {
    double a = fabs(x), y;
    if (lambda < 1e-6)
        y = log1p(a);
    else if (lambda == 1.0)
        y = a;
    else
        y = (pow(1.0 + a, lambda) - 1.0) / lambda;
    return x < 0 ? -y : y;
}

static double untransform(double lambda, double y) {
    double a = fabs(y), x;
    if (lambda < 1e-6)
        x = expm1(a > 700 ? 700 : a);
    else if (lambda == 1.0)
        x = a;
    else
        x = pow(1.0 + lambda * a, 1.0 / lambda) - 1.0;
    return y < 0 ? -x : x;
}

/* ---- tails ---- */

double vg_amount_norm_sf(double z) { return 0.5 * erfc(z / sqrt(2.0)); }

/* Continued fraction of the incomplete beta (Lentz), as in Numerical Recipes. */
static double betacf(double a, double b, double x) {
    const double tiny = 1e-300;
    double qab = a + b, qap = a + 1.0, qam = a - 1.0, c = 1.0, d = 1.0 - qab * x / qap;
    if (fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 200; m++) {
        int m2 = 2 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < tiny) d = tiny;
        c = 1.0 + aa / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-10) break;
    }
    return h;
}

/* Regularised incomplete beta I_x(a, b). */
static double ibeta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    double bt = exp(lbt);
    if (x < (a + 1.0) / (a + b + 2.0)) return bt * betacf(a, b, x) / a;
    return 1.0 - bt * betacf(b, a, 1.0 - x) / b;
}

double vg_amount_t_sf(double t, double nu) {
    if (!(nu > 0)) return 0.5;
    if (nu > 200) return vg_amount_norm_sf(t);
    if (isnan(t)) return 1.0;
    double x = nu / (nu + t * t);
    double tail = 0.5 * ibeta(nu / 2.0, 0.5, x);
    return t > 0 ? tail : 1.0 - tail;
}

/* ---- robust statistics of the ring ---- */

static void sortf(float *a, int n) {
    for (int i = 1; i < n; i++) {
        float v = a[i];
        int j = i - 1;
        while (j >= 0 && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static double median_sorted(const float *a, int n) {
    return (n & 1) ? a[n / 2] : 0.5 * ((double)a[n / 2 - 1] + a[n / 2]);
}

/* Level (median of the newest HALF values, or of all when fewer), and scale
 * (1.4826 * MAD of all held values about their median). */
static void ring_stats(const vg_amount_t *m, double lambda, const seas_t *se, int *cnt,
                       double *level, double *scale) {
    int n = m->n < VG_AMOUNT_RING ? (int)m->n : VG_AMOUNT_RING;
    *cnt = n;
    if (n == 0) {
        *level = 0;
        *scale = 0;
        return;
    }
    float a[VG_AMOUNT_RING], newest[HALF];
    int nn = n < HALF ? n : HALF;
    for (int i = 0; i < n; i++) {
        int idx = ((int)m->head - 1 - i + 2 * VG_AMOUNT_RING) % VG_AMOUNT_RING;
        double y = vg_amount_transform(lambda, m->ring[idx]);
        if (se) y -= se->h[m->ring_how[idx] % 24] + se->d[m->ring_how[idx] / 24];
        a[i] = (float)y;
        if (i < nn) newest[i] = a[i];
    }
    sortf(a, n);
    sortf(newest, nn);
    double med = median_sorted(a, n);
    int use_new = n >= HALF + HALF / 2;
    double lmed = use_new ? median_sorted(newest, nn) : med;
    float dev[VG_AMOUNT_RING];
    for (int i = 0; i < n; i++) dev[i] = (float)fabs(a[i] - med);
    sortf(dev, n);
    double smad = 1.4826 * median_sorted(dev, n);
    /* one-step 3-sigma rejection around the medians, then the mean and the standard
     * deviation of what is left: as robust as the median and MAD to a few outliers, and
     * much more efficient on the small samples an account has (the deviation is divided
     * by 0.9866, the factor a +-3 sigma truncation of a normal takes off) */
    double lim = 3.0 * smad, sum = 0, sum2 = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (fabs(a[i] - med) <= lim) {
            sum += a[i];
            k++;
        }
    double mean = k ? sum / k : med;
    for (int i = 0; i < n; i++)
        if (fabs(a[i] - med) <= lim) sum2 += (a[i] - mean) * (a[i] - mean);
    *scale = k >= 4 ? sqrt(sum2 / (k - 1)) / 0.9866 : smad;
    if (use_new) {
        double sl = 0;
        int kl = 0;
        for (int i = 0; i < nn; i++)
            if (fabs(newest[i] - lmed) <= lim) {
                sl += newest[i];
                kl++;
            }
        *level = kl ? sl / kl : lmed;
    } else {
        *level = mean;
    }
}

static void season_index(int64_t ts_ms, int *h, int *d) {
    int64_t hour = ts_ms >= 0 ? ts_ms / 3600000 : -((-ts_ms + 3599999) / 3600000);
    int64_t day = hour >= 0 ? hour / 24 : -((-hour + 23) / 24);
    *h = (int)(hour - day * 24);
    int64_t w = (day + 3) % 7; /* 1970-01-01 was a Thursday; 0 = Monday */
    if (w < 0) w += 7;
    *d = (int)w;
}

/* Empirical-Bayes shrinkage of bucket b of a seasonal profile: offsets are noisy means
 * (variance sigma2 / effective count); their spread beyond that noise is the real
 * seasonal variance tau2, and the offset is weighted tau2 / (tau2 + its noise). With no
 * real seasonality (a card account) the weight is 0. */
static double eb_weight(const float *off, const uint8_t *cnt, int nb, int b, double sigma2,
                        double rate) {
    double cap = 2.0 / rate - 1.0, sum = 0, noise = 0;
    int k = 0;
    if (cnt[b] == 0) return 0;
    for (int i = 0; i < nb; i++) {
        if (!cnt[i]) continue;
        double ce = cnt[i] < cap ? cnt[i] : cap;
        sum += (double)off[i] * off[i];
        noise += sigma2 / ce;
        k++;
    }
    if (k < 3) return 0;
    double tau2 = (sum - noise) / k;
    if (tau2 <= 0) return 0;
    double ce = cnt[b] < cap ? cnt[b] : cap;
    return tau2 / (tau2 + sigma2 / ce);
}

/* Mean of the offsets of the buckets seen: the profile is identified up to a constant,
 * which belongs to the level. */
static double centre(const float *off, const uint8_t *cnt, int nb) {
    double s = 0;
    int k = 0;
    for (int i = 0; i < nb; i++)
        if (cnt[i]) {
            s += off[i];
            k++;
        }
    return k ? s / k : 0;
}

/* Effective (centred, shrunk) seasonal offsets in the space of m->lam, for residual
 * variance sigma2. All zero when seasonality is off or unknown. */
static void season_table(const vg_amount_cfg_t *cfg, const vg_amount_t *m, seas_t *t) {
    memset(t, 0, sizeof *t);
    double s2 = m->svar;
    if (cfg->season_k <= 0 || !(s2 > 0)) return;
    float ch[24], cd[7];
    double mh = centre(m->hod, m->hod_n, 24), md = centre(m->dow, m->dow_n, 7);
    for (int i = 0; i < 24; i++) ch[i] = (float)(m->hod[i] - mh);
    for (int i = 0; i < 7; i++) cd[i] = (float)(m->dow[i] - md);
    for (int i = 0; i < 24; i++)
        t->h[i] = (float)(ch[i] * eb_weight(ch, m->hod_n, 24, i, s2, cfg->season_rate));
    for (int i = 0; i < 7; i++)
        t->d[i] = (float)(cd[i] * eb_weight(cd, m->dow_n, 7, i, s2, cfg->season_rate));
}

/* Largest exponent whose two-sided tail exceedance rate (p < SEL_ALPHA) is calibrated:
 * the least compressive transform, so the most sensitive to multiplicative changes, that
 * does not alarm more often than its nominal rate. Hysteresis around the current one
 * (cur) keeps it from flapping. */
#define SEL_ALPHA 0.01
static int pick(const double *rate, int cur) {
    int best = -1;
    for (int j = VG_AMOUNT_LAMBDAS - 1; j >= 0 && best < 0; j--)
        if (rate[j] <= 2 * SEL_ALPHA) best = j;
    if (best < 0) {
        best = 0;
        for (int j = 1; j < VG_AMOUNT_LAMBDAS; j++)
            if (rate[j] < rate[best]) best = j;
    }
    /* up to a less compressive candidate as soon as it is calibrated; down only when the
     * current one clearly over-alarms */
    if (cur >= 0 && best < cur && rate[cur] <= 3 * SEL_ALPHA) best = cur;
    return best;
}

int vg_amount_pick(const float *exc, int cur) {
    double r[VG_AMOUNT_LAMBDAS];
    for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) r[j] = exc[j];
    return pick(r, cur);
}

/* The candidate used: the fixed one; else the population's choice when it has one; else
 * linear. */
static int choose(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                  const vg_amount_prior_t *prior) {
    if (cfg->lambda >= 0) {
        int best = 0;
        for (int j = 1; j < VG_AMOUNT_LAMBDAS; j++)
            if (fabs(lambdas[j] - cfg->lambda) < fabs(lambdas[best] - cfg->lambda)) best = j;
        return best;
    }
    double r[VG_AMOUNT_LAMBDAS];
    if (prior && prior->exc_n >= 1000) {
        for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) r[j] = prior->exc[j];
        return pick(r, prior->lam);
    }
    (void)m; /* a stream without a population stays linear (its own rates are kept for
              * inspection: m->exc) */
    return VG_AMOUNT_LAMBDAS - 1;
}

/* Effective level, scale and degrees of freedom under candidate j after the prior.
 * Returns 0 when there is nothing to score against. */
static int effective(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                     const vg_amount_prior_t *prior, int j, const seas_t *se, double *lvl,
                     double *scl, double *nu, double *neff) {
    int n;
    double level, scale;
    ring_stats(m, lambdas[j], se, &n, &level, &scale);
    double k = (prior && prior->scale[j] > 0) ? cfg->prior_n : 0;
    if (n == 0 && k == 0) return 0;
    /* the prior's weight fades with the whole history (not only the ring); scales are
     * pooled geometrically so that a wide population spread does not swamp an account
     * that has a long history */
    double nh = m->n > 100000 ? 100000.0 : (double)m->n;
    double w = nh + k;
    double l = (nh * level + k * (k > 0 ? prior->level[j] : 0)) / w;
    double s;
    if (k > 0 && n > 0) {
        double fl = cfg->abs_floor + cfg->rel_floor * fabs(level);
        double sa = scale > fl ? scale : fl;
        s = exp((nh * log(sa) + k * log(prior->scale[j])) / w);
    } else {
        s = n > 0 ? scale : prior->scale[j];
    }
    double floor_ = cfg->abs_floor + cfg->rel_floor * fabs(l);
    if (s < floor_) s = floor_;
    *lvl = l;
    *scl = s;
    *nu = n + k - 1 < 1 ? 1 : n + k - 1;
    *neff = n;
    return 1;
}


void vg_amount_score(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                     const vg_amount_prior_t *prior, int64_t ts_ms, double x,
                     vg_amount_score_t *out) {
    memset(out, 0, sizeof *out);
    out->p_hi = out->p_lo = 1.0;
    if (prior && !(prior->scale[0] > 0)) prior = NULL;
    if (!isfinite(x)) return;
    int j = choose(cfg, m, prior);
    out->lambda = lambdas[j];
    /* the seasonal offsets belong to the transform learned with; after a change of
     * choice they are relearned (vg_amount_learn) and not used meanwhile */
    seas_t se;
    season_table(cfg, m, &se);
    const seas_t *sp = j == m->lam ? &se : NULL;
    double lvl, scl, nu, neff;
    if (!effective(cfg, m, prior, j, sp, &lvl, &scl, &nu, &neff)) return;
    int h, d;
    season_index(ts_ms, &h, &d);
    double s = sp ? sp->h[h] + sp->d[d] : 0;
    double y = vg_amount_transform(lambdas[j], x);
    double t = (y - lvl - s) / scl;
    if (!isfinite(t)) t = t > 0 ? 1e300 : -1e300;
    out->z = t;
    out->p_hi = vg_amount_t_sf(t, nu);
    out->p_lo = vg_amount_t_sf(-t, nu);
    if (out->p_hi < 1e-300) out->p_hi = 1e-300;
    if (out->p_lo < 1e-300) out->p_lo = 1e-300;
    out->median = untransform(lambdas[j], lvl);
    out->expected = untransform(lambdas[j], lvl + s);
    out->ratio = out->median > 0 ? x / out->median : 0;
    out->n_eff = neff;
}

void vg_amount_exceed(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                      const vg_amount_prior_t *prior, int64_t ts_ms, double x, double *e) {
    /* seasonality only for the candidate it was learned in */
    int h, d;
    season_index(ts_ms, &h, &d);
    if (prior && !(prior->scale[0] > 0)) prior = NULL;
    seas_t se;
    season_table(cfg, m, &se);
    for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) {
        double lvl, scl, nu, neff;
        const seas_t *sp = j == m->lam ? &se : NULL;
        e[j] = 0;
        if (!isfinite(x) || !effective(cfg, m, prior, j, sp, &lvl, &scl, &nu, &neff)) continue;
        double sv = sp ? sp->h[h] + sp->d[d] : 0;
        double t = (vg_amount_transform(lambdas[j], x) - lvl - sv) / scl;
        e[j] = 2 * vg_amount_t_sf(fabs(t), nu) < SEL_ALPHA ? 1.0 : 0.0;
    }
}

void vg_amount_learn(const vg_amount_cfg_t *cfg, vg_amount_t *m,
                     const vg_amount_prior_t *prior, int64_t ts_ms, double x,
                     double *exc_out) {
    if (exc_out)
        for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) exc_out[j] = 0;
    if (!isfinite(x)) return;
    if (x > 3e38) x = 3e38;
    if (x < -3e38) x = -3e38;
    if (prior && !(prior->scale[0] > 0)) prior = NULL;
    int h, d;
    season_index(ts_ms, &h, &d);
    if (exc_out) {
        /* only on request: three candidates' statistics cost more than the rest */
        vg_amount_exceed(cfg, m, prior, ts_ms, x, exc_out);
        for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++)
            if (m->n > 0) {
                double a = 1.0 / m->n > 1.0 / 256 ? 1.0 / m->n : 1.0 / 256;
                m->exc[j] = (float)((1 - a) * m->exc[j] + a * exc_out[j]);
            }
    }
    int j = choose(cfg, m, prior);
    if (j != m->lam) {
        /* the seasonal part is relearned in the new space; the slow level carried over */
        double raw = untransform(lambdas[m->lam], m->slow);
        m->slow = (float)vg_amount_transform(lambdas[j], raw);
        memset(m->hod, 0, sizeof m->hod);
        memset(m->dow, 0, sizeof m->dow);
        memset(m->hod_n, 0, sizeof m->hod_n);
        memset(m->dow_n, 0, sizeof m->dow_n);
        m->svar = 0;
        m->lam = (uint8_t)j;
    }
    double y = vg_amount_transform(lambdas[j], x);
    if (y > 3e38) y = 3e38;
    if (y < -3e38) y = -3e38;
    seas_t se;
    season_table(cfg, m, &se);
    double sh = se.h[h], sd = se.d[d];
    int n = m->n < VG_AMOUNT_RING ? (int)m->n : VG_AMOUNT_RING;
    double c = m->svar > 0 ? 3.0 * sqrt(m->svar) : INFINITY;
    double r = y - m->slow - sh - sd;
    if (m->n >= 2) {
        /* residual variance against slow level and season: the seasonal weights' noise
         * and the clipping scale */
        double r2 = r * r, cap = m->svar > 0 ? 9.0 * m->svar : r2;
        double a = 1.0 / m->n > 1.0 / 64 ? 1.0 / m->n : 1.0 / 64;
        m->svar = (float)((1 - a) * m->svar + a * (r2 < cap ? r2 : cap));
    }
    if (cfg->season_k > 0 && n >= 8) {
        /* offsets are residuals from the slow level, so that the fast ring level does not
         * absorb them (a level that follows the data within hours would hide a weekday
         * effect from the day-of-week offsets) */
        double rh = y - m->slow - sd, rd = y - m->slow - sh;
        double eh = m->hod[h] + c, ehl = m->hod[h] - c;
        double ed = m->dow[d] + c, edl = m->dow[d] - c;
        if (rh > eh) rh = eh;
        if (rh < ehl) rh = ehl;
        if (rd > ed) rd = ed;
        if (rd < edl) rd = edl;
        double ah = 1.0 / (m->hod_n[h] + 1.0), ad = 1.0 / (m->dow_n[d] + 1.0);
        if (ah < cfg->season_rate) ah = cfg->season_rate;
        if (ad < cfg->season_rate) ad = cfg->season_rate;
        m->hod[h] += (float)(ah * (rh - m->hod[h]));
        m->dow[d] += (float)(ad * (rd - m->dow[d]));
        if (m->hod_n[h] < 255) m->hod_n[h]++;
        if (m->dow_n[d] < 255) m->dow_n[d]++;
    }
    /* slow level: Huber-clipped EW mean of the deseasonalised values, about a week */
    if (m->n == 0) {
        m->slow = (float)y;
    } else {
        double a = 1.0 / (m->n + 1.0) > 1.0 / 168 ? 1.0 / (m->n + 1.0) : 1.0 / 168;
        double rr = y - sh - sd - m->slow;
        if (n >= 8 && rr > c) rr = c;
        if (n >= 8 && rr < -c) rr = -c;
        m->slow += (float)(a * rr);
    }
    m->ring[m->head] = (float)x;
    m->ring_how[m->head] = (uint8_t)(d * 24 + h);
    m->head = (uint8_t)((m->head + 1) % VG_AMOUNT_RING);
    if (m->n < UINT32_MAX) m->n++;
}
