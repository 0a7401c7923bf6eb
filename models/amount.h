/* amount.h - robust online model of one numeric stream (an account's amounts, a metric).
 *
 * The model keeps, in a fixed-size POD struct (no pointers, about 420 bytes):
 *   - a ring of the last VG_AMOUNT_RING values with their hour of week, stored in the
 *     current transformed space without their seasonal offsets (those known when each
 *     was learned) and kept in sorted order (an index array updated in O(ring) per
 *     learn, so that a score sorts nothing); statistics are taken in a transformed
 *     space y = T(x)
 *     (Box-Cox on |x| with the sign kept: lambda 1 linear, 0.5 square root, 0 log1p):
 *     one-step 3-sigma rejection around the median, then mean (of the newest half,
 *     once the ring is full, to follow level shifts) and
 *     standard deviation of the rest: a few outliers, or a third of contaminated points,
 *     do not move them;
 *   - the transform is chosen by tail calibration: each learned value records, for
 *     each candidate, whether its two-sided p was below 1%; the largest exponent whose
 *     rate stays within 2% (with hysteresis) is used: the least compressive transform
 *     that does not over-alarm (normal-like amounts stay linear, lognormal ones go to
 *     log). The population's rates decide for accounts (too few points each); a stream
 *     without a population stays linear (or cfg.lambda);
 *   - hour-of-day and day-of-week offsets (Huber-clipped EW means of the residuals
 *     against a slow level, centred, shrunk by empirical Bayes: weight tau2 / (tau2 +
 *     noise of the bucket's mean), tau2 the spread of the offsets beyond their noise),
 *     so that daily and weekly seasonality are expected rather than scored, and an
 *     account without seasonality gets none;
 *   - with little history the level and scale are shrunk towards a population prior
 *     (vg_amount_prior_t) and the tail is a Student-t with n + prior_n - 1 degrees of
 *     freedom.
 * A level shift is absorbed after about VG_AMOUNT_RING/4 points.
 *
 * Score first, then learn: vg_amount_score() reads the model only; vg_amount_learn()
 * adds the value. Neither allocates. Threading: none; the caller owns the struct.
 */
#ifndef VG_AMOUNT_H
#define VG_AMOUNT_H

#include <stdint.h>

#define VG_AMOUNT_RING 32
#define VG_AMOUNT_LAMBDAS 3      /* candidate transforms: lambda 0, 0.5, 1 */

/* Tunables shared by every model of one population (see vg_amount_cfg_default()). */
typedef struct vg_amount_cfg {
    float lambda;       /* < 0: transform chosen per stream (default); else fixed exponent */
    float prior_n;      /* weight of the population prior, in points */
    float season_k;     /* > 0: seasonal offsets on (empirical-Bayes shrunk); 0: off */
    float season_rate;  /* slowest EW rate of the seasonal offsets */
    float rel_floor;    /* scale floor relative to |level| (constant streams) */
    float abs_floor;    /* absolute scale floor, in transformed units */
} vg_amount_cfg_t;

/* Population prior: location and scale of the values under each candidate transform,
 * and the population's tail exceedance rate under each (exc_n points behind it; the
 * population's choice `lam` is used once exc_n >= 1000). scale[0] <= 0: no prior. */
typedef struct vg_amount_prior {
    float level[VG_AMOUNT_LAMBDAS];
    float scale[VG_AMOUNT_LAMBDAS];
    float lscale[VG_AMOUNT_LAMBDAS]; /* ln scale (derived, for the pooling of scales) */
    float exc[VG_AMOUNT_LAMBDAS];
    float exc_n;
    int32_t lam;      /* the population's current choice, -1 none */
} vg_amount_prior_t;

typedef struct vg_amount {
    float ring[VG_AMOUNT_RING]; /* recent values, transformed with candidate `lam`, minus
                                   the seasonal offsets of their hour when learned */
    uint8_t ring_how[VG_AMOUNT_RING]; /* their hour of week (day * 24 + hour) */
    uint8_t ord[VG_AMOUNT_RING]; /* the min(n, RING) slots held, in ascending order of value
                                    (kept on learn, so that scoring never sorts) */
    float exc[VG_AMOUNT_LAMBDAS]; /* EW rate of two-sided p < 0.01 per candidate, over
                                     the learns that asked for it */
    float hod[24];              /* hour-of-day offsets (UTC), in the space of `lam` */
    float dow[7];               /* day-of-week offsets (0 = Monday) */
    uint8_t hod_n[24];          /* saturating counts per bucket */
    uint8_t dow_n[7];
    uint8_t head;               /* next ring slot */
    uint32_t n;                 /* values learned, saturating */
    float slow;                 /* slow robust level (about a week), the seasonal base */
    float svar;                 /* EW variance of the residuals against slow + season */
    uint8_t lam;                /* candidate the ring and the seasonal part are in */
    float s_mh, s_md;           /* kept by learn: centres of the hod and dow offsets */
    float s_tau_h, s_tau_d;     /* and their real seasonal variance (0: no seasonality) */
} vg_amount_t;

/* What a score found; every field is filled by vg_amount_score(). */
typedef struct vg_amount_score {
    double p_hi;       /* P(a value at least this high) under the model, in (0, 1] */
    double p_lo;       /* P(a value at least this low) */
    double z;          /* robust t statistic in transformed units (signed) */
    double expected;   /* the expected value in original units (level + season) */
    double median;     /* median of the recent raw values, original units */
    double ratio;      /* x / median when median > 0, else 0 */
    double n_eff;      /* history weight used (points) */
    double lambda;     /* the transform used */
} vg_amount_score_t;

/* Default configuration. Can't fail. */
vg_amount_cfg_t vg_amount_cfg_default(void);

/* Empties a model. Can't fail. */
void vg_amount_init(vg_amount_t *m);

/* Box-Cox transform with the sign kept: T(x) for exponent lambda. Can't fail. */
double vg_amount_transform(double lambda, double x);

/* The candidate exponent number j (0 .. VG_AMOUNT_LAMBDAS-1). Can't fail. */
double vg_amount_lambda(int j);

/* Scores x at time ts_ms against the model (read only) and the prior (NULL: none).
 * Non-finite x gives p_hi = p_lo = 1. Can't fail. */
void vg_amount_score(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                     const vg_amount_prior_t *prior, int64_t ts_ms, double x,
                     vg_amount_score_t *out);

/* What the model expects now, for an account view (GET /v1/accounts): the typical
 * value (its level, as vg_amount_score's `expected` without the season) and the usual
 * range (level -+ 2 scales), all in original units, after the prior. Returns 0 when
 * there is nothing to describe (no value learned and no prior), else 1. Can't fail. */
int vg_amount_describe(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                       const vg_amount_prior_t *prior, double *typical, double *lo,
                       double *hi);

/* Adds x at time ts_ms. When exc_out is not NULL, it receives, per candidate transform,
 * 1 when x's two-sided p (before adding) was below 1%, else 0 (as vg_amount_exceed, and
 * m->exc is updated with it): the population's choice is made from these; a sample of
 * the events is enough. Non-finite x is ignored (exc_out zeroed). Can't fail. */
void vg_amount_learn(const vg_amount_cfg_t *cfg, vg_amount_t *m,
                     const vg_amount_prior_t *prior, int64_t ts_ms, double x,
                     double *exc_out);

/* For a value kept out of the baseline (an anomalous event): only the seasonal offsets
 * of its hour of day and day of week learn it, each clipped to 3 residual standard
 * deviations, a clipped residual halving the bucket's count first (so a payment that
 * recurs at the same hour or weekday is learned in a few occurrences, one outlier moves
 * an established bucket by 3 deviations / count). The ring, the level and the noise do
 * not see it. Non-finite x, no seasonality configured or fewer than 8 values learned:
 * nothing. Can't fail. */
void vg_amount_learn_season(const vg_amount_cfg_t *cfg, vg_amount_t *m,
                            const vg_amount_prior_t *prior, int64_t ts_ms, double x);

/* x transformed into the ring's space with its hour's offsets removed (what the ring
 * would hold for it), or NaN (non-finite x, nothing learned, or the transform is about
 * to change). Read only. Can't fail. */
double vg_amount_resid(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                       const vg_amount_prior_t *prior, int64_t ts_ms, double x);

/* A lasting change of level: y_run is the mean of vg_amount_resid() over a run of values
 * kept out of the baseline. When it lies beyond 3 scales of the ring's level, the ring
 * restarts at it (as many values as it held, at least 8, spread evenly with the
 * account's relative spread carried to the new level), with the slow level, and returns
 * 1; otherwise (or y_run NaN) nothing changes and it returns 0. Can't fail. */
int vg_amount_rebase(const vg_amount_cfg_t *cfg, vg_amount_t *m,
                     const vg_amount_prior_t *prior, int64_t ts_ms, double y_run);

/* e[j] = 1 when x's two-sided p under candidate j is below 1%, else 0 (read only).
 * Can't fail. */
void vg_amount_exceed(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                      const vg_amount_prior_t *prior, int64_t ts_ms, double x, double *e);

/* The transform the population's rates choose (for vg_amount_prior_t.lam), given the
 * current choice cur (-1 none). Can't fail. */
int vg_amount_pick(const float *exc, int cur);

/* Two-sided helpers shared with the other models. Standard normal upper tail; Student-t
 * upper tail (approximation, relative error under a few percent). Can't fail. */
double vg_amount_norm_sf(double z);
double vg_amount_t_sf(double t, double nu);

#endif
