/* amount.c - robust online amount model: ring median/MAD, seasonal offsets, population
 * prior, Student-t tails. See amount.h. */
#include "models/amount.h"

#include <math.h>
#include <string.h>

#define HALF (VG_AMOUNT_RING / 2)

vg_amount_cfg_t vg_amount_cfg_default(void) {
    vg_amount_cfg_t c;
    c.lambda = 1.0f;
    c.prior_n = 4.0f;
    c.season_k = 8.0f;
    c.season_rate = 1.0f / 64.0f;
    c.rel_floor = 0.02f;
    c.abs_floor = 0.01f;
    return c;
}

void vg_amount_init(vg_amount_t *m) { memset(m, 0, sizeof *m); }

double vg_amount_transform(const vg_amount_cfg_t *cfg, double x) {
    double a = fabs(x), y;
    if (cfg->lambda < 1e-6f)
        y = log1p(a);
    else
        y = (pow(1.0 + a, cfg->lambda) - 1.0) / cfg->lambda;
    return x < 0 ? -y : y;
}

static double untransform(const vg_amount_cfg_t *cfg, double y) {
    double a = fabs(y), x;
    if (cfg->lambda < 1e-6f)
        x = expm1(a);
    else
        x = pow(1.0 + cfg->lambda * a, 1.0 / cfg->lambda) - 1.0;
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
static void ring_stats(const vg_amount_t *m, int *cnt, double *level, double *scale) {
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
        a[i] = m->ring[idx];
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

static double season(const vg_amount_cfg_t *cfg, const vg_amount_t *m, int h, int d,
                     double sigma, double *sh, double *sd) {
    if (cfg->season_k <= 0 || !(sigma > 0)) {
        *sh = *sd = 0;
        return 0;
    }
    double s2 = sigma * sigma;
    float ch[24], cd[7];
    double mh = centre(m->hod, m->hod_n, 24), md = centre(m->dow, m->dow_n, 7);
    for (int i = 0; i < 24; i++) ch[i] = (float)(m->hod[i] - mh);
    for (int i = 0; i < 7; i++) cd[i] = (float)(m->dow[i] - md);
    *sh = ch[h] * eb_weight(ch, m->hod_n, 24, h, s2, cfg->season_rate);
    *sd = cd[d] * eb_weight(cd, m->dow_n, 7, d, s2, cfg->season_rate);
    return *sh + *sd;
}

/* Effective level, scale and degrees of freedom after the prior. Returns 0 when there is
 * nothing to score against. */
static int effective(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                     const vg_amount_prior_t *prior, double *lvl, double *scl, double *nu,
                     double *neff, double *ring_scale) {
    int n;
    double level, scale;
    ring_stats(m, &n, &level, &scale);
    double fl0 = cfg->abs_floor + cfg->rel_floor * fabs(level);
    *ring_scale = scale > fl0 ? scale : fl0;
    double k = (prior && prior->scale > 0) ? cfg->prior_n : 0;
    if (n == 0 && k == 0) return 0;
    /* the prior's weight fades with the whole history (not only the ring); scales are
     * pooled geometrically so that a wide population spread does not swamp an account
     * that has a long history */
    double nh = m->n > 100000 ? 100000.0 : (double)m->n;
    double w = nh + k;
    double l = (nh * level + k * (prior ? prior->level : 0)) / w;
    double s;
    if (k > 0 && n > 0) {
        double fl = cfg->abs_floor + cfg->rel_floor * fabs(level);
        double sa = scale > fl ? scale : fl;
        s = exp((nh * log(sa) + k * log(prior->scale)) / w);
    } else {
        s = n > 0 ? scale : prior->scale;
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
    if (!isfinite(x)) return;
    double lvl, scl, nu, neff, rsc;
    if (!effective(cfg, m, prior, &lvl, &scl, &nu, &neff, &rsc)) return;
    int h, d;
    double sh, sd;
    season_index(ts_ms, &h, &d);
    /* the ring's own scale: the same seasonal weights as vg_amount_learn uses */
    double pred = lvl + season(cfg, m, h, d, rsc, &sh, &sd);
    double y = vg_amount_transform(cfg, x);
    double t = (y - pred) / scl;
    if (!isfinite(t)) t = t > 0 ? 1e300 : -1e300;
    out->z = t;
    out->p_hi = vg_amount_t_sf(t, nu);
    out->p_lo = vg_amount_t_sf(-t, nu);
    if (out->p_hi < 1e-300) out->p_hi = 1e-300;
    if (out->p_lo < 1e-300) out->p_lo = 1e-300;
    out->expected = untransform(cfg, pred);
    out->median = untransform(cfg, lvl);
    out->ratio = out->median > 0 ? x / out->median : 0;
    out->n_eff = neff;
}

void vg_amount_learn(const vg_amount_cfg_t *cfg, vg_amount_t *m, int64_t ts_ms, double x) {
    if (!isfinite(x)) return;
    int h, d, n;
    double sh, sd, level, scale;
    season_index(ts_ms, &h, &d);
    double y = vg_amount_transform(cfg, x);
    if (!isfinite(y)) return;
    if (y > 3e38) y = 3e38;
    if (y < -3e38) y = -3e38;
    ring_stats(m, &n, &level, &scale);
    double fl0 = cfg->abs_floor + cfg->rel_floor * fabs(level);
    double s = season(cfg, m, h, d, scale > fl0 ? scale : fl0, &sh, &sd);
    double floor_ = cfg->abs_floor + cfg->rel_floor * fabs(level);
    double c = 3.0 * (scale > floor_ ? scale : floor_);
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
    if (n == 0) {
        m->slow = (float)(y - s);
    } else {
        double a = 1.0 / (m->n + 1.0) > 1.0 / 168 ? 1.0 / (m->n + 1.0) : 1.0 / 168;
        double r = y - s - m->slow;
        if (n >= 8 && r > c) r = c;
        if (n >= 8 && r < -c) r = -c;
        m->slow += (float)(a * r);
    }
    m->ring[m->head] = (float)(y - s);
    m->head = (uint8_t)((m->head + 1) % VG_AMOUNT_RING);
    if (m->n < UINT32_MAX) m->n++;
}
