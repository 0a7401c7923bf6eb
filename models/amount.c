/* amount.c - robust online amount model: clipped ring statistics under a transform chosen
 * by tail calibration, seasonal offsets, population prior, Student-t tails. See
 * amount.h.
 *
 * Cost: the ring is stored in the transformed space of the current candidate, without
 * the seasonal offsets of the value's hour (those at the time it was learned), and in
 * sorted order (m->ord, kept by an O(ring) insertion on learn), so that a score takes
 * its medians, deviations and clipped moments in O(ring) without a transform, a sort
 * or a seasonal table; the shrinkage of the offsets (centres and tau2 of both profiles)
 * is computed once per learn and kept, so one offset costs O(1); one incomplete beta
 * gives both tails. */
#include "models/amount.h"

#include <math.h>
#include <string.h>

#define HALF (VG_AMOUNT_RING / 2)

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
    else if (lambda == 0.5)
        y = 2.0 * (sqrt(1.0 + a) - 1.0);
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
    else if (lambda == 0.5) {
        double u = 1.0 + 0.5 * a;
        x = u * u - 1.0;
    } else
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

/* ln Gamma((nu + 1) / 2) - ln Gamma(nu / 2) - ln Gamma(1 / 2) for nu = 1 .. 80: the
 * Student-t normaliser for the degrees of freedom an account has (ring + prior). */
static const double t_lbeta[80] = {
    -1.1447298858494008, -0.69314718055994584, -0.45158270528945499, -0.28768207245178079,
    -0.16390063283767509, -0.064538521137571525, 0.018420923956281143, 0.089612158689686972,
    0.15195231658080166, 0.20739519434607123, 0.25731283223862977, 0.302705374150392,
    0.34432420922826257, 0.38274808182393105, 0.41843218138198068, 0.4517409533108836,
    0.48297070251954999, 0.51236557512731906, 0.54012911635949834, 0.56643279639759569,
    0.59142241074705026, 0.61522296056702785, 0.63794242638194376, 0.65967472313786146,
    0.68050204080073584, 0.70049671765811539, 0.71972275395402008, 0.73823704564096815,
    0.75609039812489343, 0.77332836545222605, 0.78999194980058007, 0.80611818827522796,
    0.82174064811515279, 0.83688984694197188, 0.85159361126484612, 0.86587738381522428,
    0.87976448823153675, 0.89327635800334804, 0.90643273531369317, 0.91925184440660246,
    0.93175054329798712, 0.94394445699697371, 0.95584809487704803, 0.96747495440716591,
    0.97883761310174577, 0.98994781025923118, 1.0008165198205248, 1.0114540154801901,
    1.0218699290183508, 1.0320733026829245, 1.0420726363358739, 1.0518759299791185,
    1.0614907221929712, 1.0709241249497978, 1.0801828552051305, 1.08927326361799,
    1.0982013607077974, 1.1069728407173969, 1.1155931034196769, 1.124067274076701,
    1.13240022173607, 1.1405965760279102, 1.1486607426078237, 1.1565969173743511,
    1.1644090995759697, 1.1721011039103146, 1.1796765717067714, 1.1871389812748632,
    1.194491657491902, 1.2017377806959999, 1.2088803949440106, 1.2159224156879631,
    1.2228666369187451, 1.2297157378202925, 1.2364722889745323, 1.2431387581524334,
    1.2497175157245479, 1.2562108397197917, 1.2626209205604582, 1.2689498654972269,
};

/* Regularised incomplete beta I_x(a, b), lab = ln Gamma(a + b) - ln Gamma(a) - ln Gamma(b). */
static double ibeta_l(double a, double b, double x, double lab) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double lbt = lab + a * log(x) + b * log1p(-x);
    double bt = exp(lbt);
    if (x < (a + 1.0) / (a + b + 2.0)) return bt * betacf(a, b, x) / a;
    return 1.0 - bt * betacf(b, a, 1.0 - x) / b;
}

/* I_x(nu / 2, 1 / 2), the Student-t tail's incomplete beta. */
static double ibeta_t(double nu, double x) {
    int k = (int)nu;
    double lab = k == nu && k >= 1 && k <= 80
                     ? t_lbeta[k - 1]
                     : lgamma(nu / 2.0 + 0.5) - lgamma(nu / 2.0) - lgamma(0.5);
    return ibeta_l(nu / 2.0, 0.5, x, lab);
}

double vg_amount_t_sf(double t, double nu) {
    if (!(nu > 0)) return 0.5;
    if (nu > 200) return vg_amount_norm_sf(t);
    if (isnan(t)) return 1.0;
    double x = nu / (nu + t * t);
    double tail = 0.5 * ibeta_t(nu, x);
    return t > 0 ? tail : 1.0 - tail;
}

/* Both tails at once: *hi = t_sf(t), *lo = t_sf(-t), with one incomplete beta. */
static void t_tails(double t, double nu, double *hi, double *lo) {
    if (!(nu > 0) || nu > 200 || isnan(t)) {
        *hi = vg_amount_t_sf(t, nu);
        *lo = vg_amount_t_sf(-t, nu);
        return;
    }
    double x = nu / (nu + t * t);
    double tail = 0.5 * ibeta_t(nu, x);
    *hi = t > 0 ? tail : 1.0 - tail;
    *lo = -t > 0 ? tail : 1.0 - tail;
}

/* ---- robust statistics of the ring ---- */

static double median_sorted(const float *a, int n) {
    return (n & 1) ? a[n / 2] : 0.5 * ((double)a[n / 2 - 1] + a[n / 2]);
}

/* The k-th smallest (0-based) of the deviations |a[i] - med| of a sorted a[0..n), lo the
 * first index with a[lo] >= med: the deviations are two ascending runs (below the
 * median, read downwards: L; from it, read upwards: R), and the k-th of their union is
 * found by bisection on how many come from L. Equal to sorting the deviations. */
static float dev_kth(const float *a, int n, int lo, double med, int k) {
    int nl = lo, nr = n - lo;
#define DL(i) ((float)(med - a[lo - 1 - (i)]))
#define DR(j) ((float)(a[lo + (j)] - med))
    int i0 = k + 1 - nr > 0 ? k + 1 - nr : 0, i1 = k + 1 < nl ? k + 1 : nl;
    while (i0 < i1) { /* smallest i (taken from L) with R[k - i] <= L[i] */
        int i = (i0 + i1) / 2, j = k + 1 - i;
        if (j > 0 && DR(j - 1) > DL(i)) i0 = i + 1;
        else i1 = i;
    }
    int j = k + 1 - i0;
    float vl = i0 > 0 ? DL(i0 - 1) : -INFINITY, vr = j > 0 ? DR(j - 1) : -INFINITY;
#undef DL
#undef DR
    return vl > vr ? vl : vr;
}

/* Median of the deviations |a[i] - med| of a sorted a[0..n). */
static double dev_median(const float *a, int n, double med) {
    int l0 = 0, l1 = n;
    while (l0 < l1) { /* first index with a >= med */
        int mid = (l0 + l1) / 2;
        if (a[mid] < med) l0 = mid + 1;
        else l1 = mid;
    }
    float cur = dev_kth(a, n, l0, med, n / 2);
    if (n & 1) return cur;
    return 0.5 * ((double)dev_kth(a, n, l0, med, n / 2 - 1) + cur);
}

/* The values of a sorted a[0..n) within lim of c (|a - c| <= lim: a contiguous range,
 * since a - c is monotone in a): a[*i0 .. *i1). */
static void clip_range(const float *a, int n, double c, double lim, int *i0, int *i1) {
    int lo = 0, hi = n;
    while (lo < n && !(fabs(a[lo] - c) <= lim)) lo++;
    while (hi > lo && !(fabs(a[hi - 1] - c) <= lim)) hi--;
    *i0 = lo;
    *i1 = hi;
}

/* Sum of a[i0..i1), and of (a - mean)^2, in four independent chains. */
static double sum_range(const float *a, int i0, int i1) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = i0;
    for (; i + 3 < i1; i += 4) {
        s0 += a[i];
        s1 += a[i + 1];
        s2 += a[i + 2];
        s3 += a[i + 3];
    }
    for (; i < i1; i++) s0 += a[i];
    return (s0 + s1) + (s2 + s3);
}

static double ss_range(const float *a, int i0, int i1, double mean) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = i0;
    for (; i + 3 < i1; i += 4) {
        double d0 = a[i] - mean, d1 = a[i + 1] - mean, d2 = a[i + 2] - mean,
               d3 = a[i + 3] - mean;
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < i1; i++) s0 += (a[i] - mean) * (a[i] - mean);
    return (s0 + s1) + (s2 + s3);
}

/* Statistics of the held values (their seasonal offsets removed) under candidate j:
 * one-step 3-sigma rejection around the median (scale 1.4826 MAD), then the mean and
 * standard deviation of the rest; the level is the clipped mean of the newest HALF once
 * the ring holds HALF + HALF/2 values. The ring is kept sorted and every transform is
 * monotone, so nothing is sorted here. */
static void ring_stats(const vg_amount_t *m, int j, int *cnt, double *level, double *scale) {
    int n = m->n < VG_AMOUNT_RING ? (int)m->n : VG_AMOUNT_RING;
    *cnt = n;
    if (n == 0) {
        *level = 0;
        *scale = 0;
        return;
    }
    float a[VG_AMOUNT_RING] = {0}, newest[HALF + 1] = {0}; /* (init: for -O1 warnings) */
    int nn = n < HALF ? n : HALF, k = 0;
    for (int i = 0; i < n; i++) {
        int idx = m->ord[i];
        float y = m->ring[idx];
        if (j != m->lam)
            y = (float)vg_amount_transform(lambdas[j], untransform(lambdas[m->lam], y));
        a[i] = y;
        newest[k] = y; /* kept when among the newest nn (branch-free; k <= nn <= HALF) */
        k += (((int)m->head - 1 - idx) & (VG_AMOUNT_RING - 1)) < nn;
    }
    double med = median_sorted(a, n);
    int use_new = n >= HALF + HALF / 2;
    double lmed = use_new ? median_sorted(newest, nn) : med;
    double smad = 1.4826 * dev_median(a, n, med);
    /* one-step 3-sigma rejection around the medians, then the mean and the standard
     * deviation of what is left: as robust as the median and MAD to a few outliers, and
     * much more efficient on the small samples an account has (the deviation is divided
     * by 0.9866, the factor a +-3 sigma truncation of a normal takes off) */
    double lim = 3.0 * smad;
    int i0, i1;
    clip_range(a, n, med, lim, &i0, &i1);
    k = i1 - i0;
    double mean = k ? sum_range(a, i0, i1) / k : med;
    *scale = k >= 4 ? sqrt(ss_range(a, i0, i1, mean) / (k - 1)) / 0.9866 : smad;
    if (use_new) {
        clip_range(newest, nn, lmed, lim, &i0, &i1);
        int kl = i1 - i0;
        *level = kl ? sum_range(newest, i0, i1) / kl : lmed;
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

/* Empirical-Bayes shrinkage of a seasonal profile: offsets are noisy means (variance
 * sigma2 / effective count); their spread beyond that noise is the real seasonal
 * variance tau2, and bucket b is weighted tau2 / (tau2 + its noise). With no real
 * seasonality (a card account) tau2 is 0 and so is every weight. recip[c] = 1 / c. */
static const double recip[256] = {
    0.0, 1.0 / 1, 1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5, 1.0 / 6, 1.0 / 7, 1.0 / 8, 1.0 / 9,
    1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13, 1.0 / 14, 1.0 / 15, 1.0 / 16, 1.0 / 17,
    1.0 / 18, 1.0 / 19, 1.0 / 20, 1.0 / 21, 1.0 / 22, 1.0 / 23, 1.0 / 24, 1.0 / 25,
    1.0 / 26, 1.0 / 27, 1.0 / 28, 1.0 / 29, 1.0 / 30, 1.0 / 31, 1.0 / 32, 1.0 / 33,
    1.0 / 34, 1.0 / 35, 1.0 / 36, 1.0 / 37, 1.0 / 38, 1.0 / 39, 1.0 / 40, 1.0 / 41,
    1.0 / 42, 1.0 / 43, 1.0 / 44, 1.0 / 45, 1.0 / 46, 1.0 / 47, 1.0 / 48, 1.0 / 49,
    1.0 / 50, 1.0 / 51, 1.0 / 52, 1.0 / 53, 1.0 / 54, 1.0 / 55, 1.0 / 56, 1.0 / 57,
    1.0 / 58, 1.0 / 59, 1.0 / 60, 1.0 / 61, 1.0 / 62, 1.0 / 63, 1.0 / 64, 1.0 / 65,
    1.0 / 66, 1.0 / 67, 1.0 / 68, 1.0 / 69, 1.0 / 70, 1.0 / 71, 1.0 / 72, 1.0 / 73,
    1.0 / 74, 1.0 / 75, 1.0 / 76, 1.0 / 77, 1.0 / 78, 1.0 / 79, 1.0 / 80, 1.0 / 81,
    1.0 / 82, 1.0 / 83, 1.0 / 84, 1.0 / 85, 1.0 / 86, 1.0 / 87, 1.0 / 88, 1.0 / 89,
    1.0 / 90, 1.0 / 91, 1.0 / 92, 1.0 / 93, 1.0 / 94, 1.0 / 95, 1.0 / 96, 1.0 / 97,
    1.0 / 98, 1.0 / 99, 1.0 / 100, 1.0 / 101, 1.0 / 102, 1.0 / 103, 1.0 / 104, 1.0 / 105,
    1.0 / 106, 1.0 / 107, 1.0 / 108, 1.0 / 109, 1.0 / 110, 1.0 / 111, 1.0 / 112, 1.0 / 113,
    1.0 / 114, 1.0 / 115, 1.0 / 116, 1.0 / 117, 1.0 / 118, 1.0 / 119, 1.0 / 120, 1.0 / 121,
    1.0 / 122, 1.0 / 123, 1.0 / 124, 1.0 / 125, 1.0 / 126, 1.0 / 127, 1.0 / 128, 1.0 / 129,
    1.0 / 130, 1.0 / 131, 1.0 / 132, 1.0 / 133, 1.0 / 134, 1.0 / 135, 1.0 / 136, 1.0 / 137,
    1.0 / 138, 1.0 / 139, 1.0 / 140, 1.0 / 141, 1.0 / 142, 1.0 / 143, 1.0 / 144, 1.0 / 145,
    1.0 / 146, 1.0 / 147, 1.0 / 148, 1.0 / 149, 1.0 / 150, 1.0 / 151, 1.0 / 152, 1.0 / 153,
    1.0 / 154, 1.0 / 155, 1.0 / 156, 1.0 / 157, 1.0 / 158, 1.0 / 159, 1.0 / 160, 1.0 / 161,
    1.0 / 162, 1.0 / 163, 1.0 / 164, 1.0 / 165, 1.0 / 166, 1.0 / 167, 1.0 / 168, 1.0 / 169,
    1.0 / 170, 1.0 / 171, 1.0 / 172, 1.0 / 173, 1.0 / 174, 1.0 / 175, 1.0 / 176, 1.0 / 177,
    1.0 / 178, 1.0 / 179, 1.0 / 180, 1.0 / 181, 1.0 / 182, 1.0 / 183, 1.0 / 184, 1.0 / 185,
    1.0 / 186, 1.0 / 187, 1.0 / 188, 1.0 / 189, 1.0 / 190, 1.0 / 191, 1.0 / 192, 1.0 / 193,
    1.0 / 194, 1.0 / 195, 1.0 / 196, 1.0 / 197, 1.0 / 198, 1.0 / 199, 1.0 / 200, 1.0 / 201,
    1.0 / 202, 1.0 / 203, 1.0 / 204, 1.0 / 205, 1.0 / 206, 1.0 / 207, 1.0 / 208, 1.0 / 209,
    1.0 / 210, 1.0 / 211, 1.0 / 212, 1.0 / 213, 1.0 / 214, 1.0 / 215, 1.0 / 216, 1.0 / 217,
    1.0 / 218, 1.0 / 219, 1.0 / 220, 1.0 / 221, 1.0 / 222, 1.0 / 223, 1.0 / 224, 1.0 / 225,
    1.0 / 226, 1.0 / 227, 1.0 / 228, 1.0 / 229, 1.0 / 230, 1.0 / 231, 1.0 / 232, 1.0 / 233,
    1.0 / 234, 1.0 / 235, 1.0 / 236, 1.0 / 237, 1.0 / 238, 1.0 / 239, 1.0 / 240, 1.0 / 241,
    1.0 / 242, 1.0 / 243, 1.0 / 244, 1.0 / 245, 1.0 / 246, 1.0 / 247, 1.0 / 248, 1.0 / 249,
    1.0 / 250, 1.0 / 251, 1.0 / 252, 1.0 / 253, 1.0 / 254, 1.0 / 255,
};

static int season_cap(const vg_amount_cfg_t *cfg) {
    double cap = 2.0 / cfg->season_rate - 1.0;
    return cap < 1 ? 1 : (cap > 255 ? 255 : (int)cap);
}

/* Centre (mean of the offsets of the buckets seen: the profile is identified up to a
 * constant, which belongs to the level) and tau2 (0: no seasonality) of a profile, in
 * one branch-free pass with independent sums. */
static void profile_stats(const float *off, const uint8_t *cnt, int nb, double sigma2, int icap,
                          float *centre, float *tau2) {
    double a1 = 0, b1 = 0, a2 = 0, b2 = 0, ai = 0, bi = 0; /* two chains of each sum */
    int k = 0, i = 0;
#define ACC(i, s1, s2, ic)                                  \
    do {                                                    \
        double o = (double)off[i] * (cnt[i] != 0);          \
        s1 += o;                                            \
        s2 += o * o;                                        \
        ic += recip[cnt[i] < icap ? cnt[i] : icap];         \
        k += cnt[i] != 0;                                   \
    } while (0)
    for (; i + 1 < nb; i += 2) {
        ACC(i, a1, a2, ai);
        ACC(i + 1, b1, b2, bi);
    }
    if (i < nb) ACC(i, a1, a2, ai);
#undef ACC
    double s1 = a1 + b1, s2 = a2 + b2, inv_ce = ai + bi;
    double c = k ? s1 / k : 0, t = 0;
    if (k >= 2) {
        /* sum of squared centred offsets, minus their expected noise; the noise is
         * counted 1 + 2 sqrt(2 / k) times (its mean plus about two standard deviations
         * of a chi-square with k degrees of freedom), so that offsets are used only when
         * the profile is significantly seasonal: a few points in each bucket otherwise
         * give a positive tau2 by chance, the offsets then absorb noise and the account's
         * deseasonalised amounts look tighter than they are (over-alarming). Two buckets
         * are enough (3 times the noise, as likely by chance as with three): an account
         * paying at two hours of the day, a weekly payment at one and its daily payments
         * at the other, has only its hour of day to tell them apart */
        double ss = s2 - k * c * c;
        t = ((ss > 0 ? ss : 0) - sigma2 * inv_ce * (1.0 + 2.0 * sqrt(2.0 / k))) / k;
    }
    *centre = (float)c;
    *tau2 = t > 0 ? (float)t : 0.0f;
}

/* Recomputes the kept shrinkage constants (after a learn). */
static void season_refresh(const vg_amount_cfg_t *cfg, vg_amount_t *m) {
    m->s_mh = m->s_md = m->s_tau_h = m->s_tau_d = 0;
    double s2 = m->svar;
    if (cfg->season_k <= 0 || !(s2 > 0)) return;
    int icap = season_cap(cfg);
    profile_stats(m->hod, m->hod_n, 24, s2, icap, &m->s_mh, &m->s_tau_h);
    profile_stats(m->dow, m->dow_n, 7, s2, icap, &m->s_md, &m->s_tau_d);
}

/* Shrunk offset of one bucket, in float: weight tau2 / (tau2 + s2 / ce) written as
 * tau2 ce / (tau2 ce + s2), one division that vectorises over a profile. */
static inline float shrunk(float off, float centre, uint8_t cnt, float tau2, float s2,
                           float fcap) {
    float ce = (float)cnt < fcap ? (float)cnt : fcap, tc = tau2 * ce;
    return (off - centre) * (tc / (tc + s2)); /* (0 for an empty bucket: tc = 0 < s2) */
}

/* The whole table of effective offsets (as season_at); returns 0 when all are 0. */
static int season_all(const vg_amount_cfg_t *cfg, const vg_amount_t *m, float *th, float *td) {
    float s2 = m->svar, fcap = (float)season_cap(cfg);
    /* (tau2 > 0 implies svar > 0: no 0 / 0) */
    if (m->s_tau_h > 0)
        for (int i = 0; i < 24; i++)
            th[i] = shrunk(m->hod[i], m->s_mh, m->hod_n[i], m->s_tau_h, s2, fcap);
    else
        for (int i = 0; i < 24; i++) th[i] = 0;
    if (m->s_tau_d > 0)
        for (int i = 0; i < 7; i++)
            td[i] = shrunk(m->dow[i], m->s_md, m->dow_n[i], m->s_tau_d, s2, fcap);
    else
        for (int i = 0; i < 7; i++) td[i] = 0;
    return m->s_tau_h > 0 || m->s_tau_d > 0;
}

/* Effective (centred, shrunk) offsets of hour of day h and day of week d, in the space of
 * m->lam; 0 when seasonality is off or unknown. */
static void season_at(const vg_amount_cfg_t *cfg, const vg_amount_t *m, int h, int d,
                      double *sh, double *sd) {
    *sh = *sd = 0;
    if (!(m->s_tau_h > 0) && !(m->s_tau_d > 0)) return;
    float s2 = m->svar, fcap = (float)season_cap(cfg);
    if (m->s_tau_h > 0) *sh = shrunk(m->hod[h], m->s_mh, m->hod_n[h], m->s_tau_h, s2, fcap);
    if (m->s_tau_d > 0) *sd = shrunk(m->dow[d], m->s_md, m->dow_n[d], m->s_tau_d, s2, fcap);
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
                     const vg_amount_prior_t *prior, int j, double *lvl, double *scl,
                     double *nu, double *neff) {
    int n;
    double level, scale;
    ring_stats(m, j, &n, &level, &scale);
    double k = (prior && prior->scale[j] > 0) ? cfg->prior_n : 0;
    if (n == 0 && k == 0) return 0;
    /* the prior's weight fades with the whole history (not only the ring); scales are
     * pooled geometrically so that a wide population spread does not swamp an account
     * that has a long history */
    double nh = m->n > 100000 ? 100000.0 : (double)m->n;
    double w = nh + k;
    double s;
    if (k > 0 && n > 0) {
        double fl = cfg->abs_floor + cfg->rel_floor * fabs(level);
        double sa = scale > fl ? scale : fl;
        s = exp((nh * log(sa) + k * prior->lscale[j]) / w);
    } else {
        s = n > 0 ? scale : prior->scale[j];
    }
    /* the level is shrunk as an empirical-Bayes mean: the prior is worth k points of the
     * population's spread S, that is k (s / S)^2 points of the account's own spread s, so
     * an account much narrower than the population keeps its own level (a small spender
     * is not pulled up to the population's median, which would hide 5x its amounts) */
    double kl = k;
    if (k > 0 && n > 0 && s < prior->scale[j]) {
        double r = s / prior->scale[j];
        kl = k * r * r;
    }
    if (k > 0 && n > 0) {
        /* and the prior is robust (Cauchy-like): an account whose own level lies d of the
         * population's scales from the population's is pulled by 9 / (9 + d^2) of it, so
         * that an account paying 500 among accounts paying 50 is judged by its own amounts
         * (4 points of 50 pulled its level 10 % down after 34 payments: its ordinary
         * amounts read as unusual) */
        double d = (level - prior->level[j]) / prior->scale[j];
        kl *= 9.0 / (9.0 + d * d);
    }
    double l = (nh * level + kl * (k > 0 ? prior->level[j] : 0)) / (nh + kl);
    double floor_ = cfg->abs_floor + cfg->rel_floor * fabs(l);
    if (s < floor_) s = floor_;
    *lvl = l;
    *scl = s;
    *nu = n + k - 1 < 1 ? 1 : n + k - 1;
    *neff = n;
    return 1;
}


int vg_amount_describe(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                       const vg_amount_prior_t *prior, double *typical, double *lo,
                       double *hi) {
    if (prior && !(prior->scale[0] > 0)) prior = NULL;
    int j = choose(cfg, m, prior);
    double lvl, scl, nu, neff;
    if (!effective(cfg, m, prior, j, &lvl, &scl, &nu, &neff)) return 0;
    *typical = untransform(lambdas[j], lvl);
    *lo = untransform(lambdas[j], lvl - 2 * scl);
    *hi = untransform(lambdas[j], lvl + 2 * scl);
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
    double lvl, scl, nu, neff;
    if (!effective(cfg, m, prior, j, &lvl, &scl, &nu, &neff)) return;
    /* the seasonal offsets belong to the transform learned with; after a change of
     * choice they are relearned (vg_amount_learn) and not used meanwhile */
    int h, d;
    double sh = 0, sd = 0;
    season_index(ts_ms, &h, &d);
    if (j == m->lam) season_at(cfg, m, h, d, &sh, &sd);
    double s = sh + sd;
    double y = vg_amount_transform(lambdas[j], x);
    double t = (y - lvl - s) / scl;
    if (!isfinite(t)) t = t > 0 ? 1e300 : -1e300;
    out->z = t;
    t_tails(t, nu, &out->p_hi, &out->p_lo);
    if (out->p_hi < 1e-300) out->p_hi = 1e-300;
    if (out->p_lo < 1e-300) out->p_lo = 1e-300;
    out->median = untransform(lambdas[j], lvl);
    out->expected = untransform(lambdas[j], lvl + s);
    out->ratio = out->median > 0 ? x / out->median : 0;
    out->n_eff = neff;
}

/* The two-sided 1% critical values of Student's t for nu = 1 .. 80 (the smallest |t| with
 * 2 t_sf(|t|, nu) < SEL_ALPHA, by bisection on vg_amount_t_sf): an exceedance test
 * without an incomplete beta. */
static const double t_crit[80] = {
    63.656741162871583, 9.9248432009182093, 5.8409093097333011, 4.6040948713499805,
    4.0321429835546763, 3.7074280213247297, 3.4994832973500332, 3.3553873313309772,
    3.2498355415919344, 3.1692726726162803, 3.10580651553739, 3.0545395893883862,
    3.0122758387161723, 2.976842734369967, 2.9467128834735625, 2.9207816224221039,
    2.8982305196724005, 2.8784404727306474, 2.8609346064640859, 2.8453397097847288,
    2.831359558020996, 2.8187560605971926, 2.8073356837658801, 2.7969395047688592,
    2.7874358136695334, 2.7787145333200085, 2.7706829571208593, 2.7632624554596914,
    2.7563859036683631, 2.749995653564405, 2.7440419192907766, 2.7384814820079111,
    2.7332766423456558, 2.7283943670645177, 2.7238055892007398, 2.7194846304413622,
    2.7154087215399128, 2.7115576019014274, 2.7079131835156427, 2.7044592674308192,
    2.7011813035758192, 2.6980661862168858, 2.6951020791541449, 2.6922782656890205,
    2.6895850193701376, 2.6870134922371629, 2.6845556178608851, 2.6822040269439462,
    2.6799519736246102, 2.6777932709331917, 2.6757222341022397, 2.6737336306380186,
    2.6718226362309587, 2.6699847957239622, 2.6682159884743406, 2.6665123975432361,
    2.6648704822281317, 2.6632869535347314, 2.6617587521597978, 2.6602830288516133,
    2.6588571266502403, 2.657478564947187, 2.656145025095598, 2.6548543374065239,
    2.6536044693780481, 2.6523935150231175, 2.6512196851781233, 2.6500812986888498,
    2.6489767743823807, 2.6479046237445365, 2.6468634442314003, 2.645851913151938,
    2.6448687820655938, 2.643912871644881, 2.6429830669587657, 2.642078313136925,
    2.6411976113797646, 2.6403400152821641, 2.6395046274427929, 2.6386905963332787
};

/* e[j] for each candidate; s_lam: the event's seasonal offset in the space of m->lam. */
static void exceed(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                   const vg_amount_prior_t *prior, double s_lam, double x, double *e) {
    for (int j = 0; j < VG_AMOUNT_LAMBDAS; j++) {
        double lvl, scl, nu, neff;
        e[j] = 0;
        if (!isfinite(x) || !effective(cfg, m, prior, j, &lvl, &scl, &nu, &neff)) continue;
        double sv = j == m->lam ? s_lam : 0;
        double t = (vg_amount_transform(lambdas[j], x) - lvl - sv) / scl;
        int k = (int)nu;
        if (k == nu && k >= 1 && k <= 80)
            e[j] = fabs(t) >= t_crit[k - 1] ? 1.0 : 0.0;
        else
            e[j] = 2 * vg_amount_t_sf(fabs(t), nu) < SEL_ALPHA ? 1.0 : 0.0;
    }
}

void vg_amount_exceed(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                      const vg_amount_prior_t *prior, int64_t ts_ms, double x, double *e) {
    /* seasonality only for the candidate it was learned in */
    int h, d;
    double sh, sd;
    season_index(ts_ms, &h, &d);
    if (prior && !(prior->scale[0] > 0)) prior = NULL;
    season_at(cfg, m, h, d, &sh, &sd);
    exceed(cfg, m, prior, sh + sd, x, e);
}

/* The held values follow a change of the offsets from oh/od (old_on: those were not all
 * zero) to the current ones: each value stays T(x) minus the current offsets of its
 * hour, as if they were removed at scoring time; then their order is restored. */
static void ring_follow(const vg_amount_cfg_t *cfg, vg_amount_t *m, const float *oh,
                        const float *od, int old_on) {
    float nh[24], nd[7];
    if (old_on | season_all(cfg, m, nh, nd)) {
        int cnt = m->n < VG_AMOUNT_RING ? (int)m->n : VG_AMOUNT_RING, sorted = 1;
        for (int i = 0; i < cnt; i++) {
            int hh = m->ring_how[i] % 24, dd = m->ring_how[i] / 24;
            m->ring[i] -= (nh[hh] - oh[hh]) + (nd[dd] - od[dd]);
        }
        float v[VG_AMOUNT_RING];
        uint8_t o[VG_AMOUNT_RING];
        for (int i = 0; i < cnt; i++) {
            o[i] = m->ord[i];
            v[i] = m->ring[o[i]];
            sorted &= i == 0 || v[i - 1] <= v[i];
        }
        if (!sorted) { /* small moves: insertion on local copies */
            for (int i = 1; i < cnt; i++) {
                float x = v[i];
                uint8_t ox = o[i];
                int k = i - 1;
                while (k >= 0 && v[k] > x) {
                    v[k + 1] = v[k];
                    o[k + 1] = o[k];
                    k--;
                }
                v[k + 1] = x;
                o[k + 1] = ox;
            }
            memcpy(m->ord, o, (size_t)cnt);
        }
    }
}

/* Puts y into the ring slot m->head and keeps m->ord sorted (before m->n counts it). */
static void ring_put(vg_amount_t *m, float y) {
    int cnt = m->n < VG_AMOUNT_RING ? (int)m->n : VG_AMOUNT_RING, slot = m->head;
    if (cnt == VG_AMOUNT_RING) {
        int p = 0;
        while (p < cnt - 1 && m->ord[p] != slot) p++;
        memmove(&m->ord[p], &m->ord[p + 1], (size_t)(cnt - 1 - p));
        cnt--;
    }
    int lo = 0, hi = cnt;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (m->ring[m->ord[mid]] <= y) lo = mid + 1;
        else hi = mid;
    }
    memmove(&m->ord[lo + 1], &m->ord[lo], (size_t)(cnt - lo));
    m->ord[lo] = (uint8_t)slot;
    m->ring[slot] = y;
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
    double sh, sd;
    season_index(ts_ms, &h, &d);
    season_at(cfg, m, h, d, &sh, &sd);
    if (exc_out) {
        /* only on request: three candidates' statistics cost more than the rest */
        exceed(cfg, m, prior, sh + sd, x, exc_out);
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
        /* the ring back to original units (its offsets put back), into the new space */
        int cnt = m->n < VG_AMOUNT_RING ? (int)m->n : VG_AMOUNT_RING;
        for (int i = 0; i < cnt; i++) {
            double oh, od;
            season_at(cfg, m, m->ring_how[i] % 24, m->ring_how[i] / 24, &oh, &od);
            m->ring[i] = (float)vg_amount_transform(
                lambdas[j], untransform(lambdas[m->lam], m->ring[i] + oh + od));
        }
        for (int i = 1; i < cnt; i++) { /* the offsets may have changed the order */
            uint8_t v = m->ord[i];
            int k = i - 1;
            while (k >= 0 && m->ring[m->ord[k]] > m->ring[v]) {
                m->ord[k + 1] = m->ord[k];
                k--;
            }
            m->ord[k + 1] = v;
        }
        memset(m->hod, 0, sizeof m->hod);
        memset(m->dow, 0, sizeof m->dow);
        memset(m->hod_n, 0, sizeof m->hod_n);
        memset(m->dow_n, 0, sizeof m->dow_n);
        m->svar = 0;
        m->lam = (uint8_t)j;
        season_refresh(cfg, m); /* (zero: nothing learned in the new space yet) */
        sh = sd = 0;
    }
    float oh[24], od[7];
    int old_on = season_all(cfg, m, oh, od);
    double y = vg_amount_transform(lambdas[j], x);
    if (y > 3e38) y = 3e38;
    if (y < -3e38) y = -3e38;
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
    ring_put(m, (float)(y - sh - sd));
    m->ring_how[m->head] = (uint8_t)(d * 24 + h);
    m->head = (uint8_t)((m->head + 1) % VG_AMOUNT_RING);
    if (m->n < UINT32_MAX) m->n++;
    season_refresh(cfg, m);
    ring_follow(cfg, m, oh, od, old_on);
}

/* One offset bucket learns residual r of a value that was kept out of the baseline,
 * clipped to c around the offset. A clipped residual halves the bucket's count first
 * (at least 1) and the step is 1 / count: one outlier moves an established bucket by
 * c / count and lowers its empirical-Bayes weight a little, while a payment that recurs
 * in the bucket (each time clipped in the same direction) is caught up with by about c
 * an occurrence. (The normal learn's 1 / (count + 1) with the clip would follow a
 * recurring value only by a harmonic sum of steps: never, in practice.) */
static void bucket_out(float *off, uint8_t *cnt, double r, double c, double rate) {
    double e = r - *off, a;
    if (e > c || e < -c) {
        int k = *cnt / 2;
        if (k < 1) k = 1;
        *cnt = (uint8_t)k;
        a = 1.0 / k;
        e = e > 0 ? c : -c;
    } else {
        a = 1.0 / (*cnt + 1.0);
    }
    if (a < rate) a = rate;
    *off += (float)(a * e);
    if (*cnt < 255) (*cnt)++;
}

void vg_amount_learn_season(const vg_amount_cfg_t *cfg, vg_amount_t *m,
                            const vg_amount_prior_t *prior, int64_t ts_ms, double x) {
    if (!isfinite(x) || cfg->season_k <= 0 || !(m->svar > 0)) return;
    if (x > 3e38) x = 3e38;
    if (x < -3e38) x = -3e38;
    if (prior && !(prior->scale[0] > 0)) prior = NULL;
    int n = m->n < VG_AMOUNT_RING ? (int)m->n : VG_AMOUNT_RING;
    /* (after a change of transform the offsets wait for the next learn to restart) */
    if (n < 8 || choose(cfg, m, prior) != m->lam) return;
    int h, d;
    double sh, sd;
    season_index(ts_ms, &h, &d);
    season_at(cfg, m, h, d, &sh, &sd);
    float oh[24], od[7];
    int old_on = season_all(cfg, m, oh, od);
    double y = vg_amount_transform(lambdas[m->lam], x);
    if (y > 3e38) y = 3e38;
    if (y < -3e38) y = -3e38;
    double c = 3.0 * sqrt(m->svar);
    bucket_out(&m->hod[h], &m->hod_n[h], y - m->slow - sd, c, cfg->season_rate);
    bucket_out(&m->dow[d], &m->dow_n[d], y - m->slow - sh, c, cfg->season_rate);
    season_refresh(cfg, m);
    ring_follow(cfg, m, oh, od, old_on);
}

double vg_amount_resid(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                       const vg_amount_prior_t *prior, int64_t ts_ms, double x) {
    if (prior && !(prior->scale[0] > 0)) prior = NULL;
    if (!isfinite(x) || m->n == 0 || choose(cfg, m, prior) != m->lam) return NAN;
    int h, d;
    double sh, sd;
    season_index(ts_ms, &h, &d);
    season_at(cfg, m, h, d, &sh, &sd);
    double y = vg_amount_transform(lambdas[m->lam], x) - sh - sd;
    return isfinite(y) && fabs(y) < 3e38 ? y : NAN;
}

int vg_amount_rebase(const vg_amount_cfg_t *cfg, vg_amount_t *m,
                     const vg_amount_prior_t *prior, int64_t ts_ms, double y_run) {
    if (prior && !(prior->scale[0] > 0)) prior = NULL;
    if (!isfinite(y_run) || m->n == 0 || choose(cfg, m, prior) != m->lam) return 0;
    int n;
    double level, scale;
    ring_stats(m, m->lam, &n, &level, &scale);
    double lam = lambdas[m->lam];
    double fl = cfg->abs_floor + cfg->rel_floor * fabs(level);
    if (scale < fl) scale = fl;
    if (fabs(y_run - level) <= 3.0 * scale) return 0; /* the run's amounts did not move */
    /* the account's relative spread carried to the new level: the same spread in log
     * space, proportionally wider (narrower) in the linear one */
    double x_old = untransform(lam, level), x_new = untransform(lam, y_run);
    double ratio = pow((1.0 + fabs(x_new)) / (1.0 + fabs(x_old)), lam);
    if (!(ratio > 0) || !isfinite(ratio)) ratio = 1.0;
    double s = scale * ratio;
    int cnt = n < 8 ? 8 : n;
    int h, d;
    season_index(ts_ms, &h, &d);
    /* cnt values evenly spread over +-sqrt(3) s (a standard deviation of s) around the
     * run's level, in ascending order */
    for (int i = 0; i < cnt; i++) {
        double v = y_run + s * 1.7320508075688772 * (2.0 * (i + 0.5) / cnt - 1.0);
        m->ring[i] = (float)v;
        m->ring_how[i] = (uint8_t)(d * 24 + h);
        m->ord[i] = (uint8_t)i;
    }
    for (int i = cnt; i < VG_AMOUNT_RING; i++) {
        m->ring[i] = 0;
        m->ring_how[i] = 0;
        m->ord[i] = 0;
    }
    m->head = (uint8_t)(cnt % VG_AMOUNT_RING);
    if (m->n < (uint32_t)cnt) m->n = (uint32_t)cnt;
    m->slow = (float)y_run;
    if (ratio != 1.0) { /* offsets and noise in units of the old level */
        for (int i = 0; i < 24; i++) m->hod[i] = (float)(m->hod[i] * ratio);
        for (int i = 0; i < 7; i++) m->dow[i] = (float)(m->dow[i] * ratio);
        m->svar = (float)(m->svar * ratio * ratio);
        season_refresh(cfg, m);
    }
    return 1;
}
