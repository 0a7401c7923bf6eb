/* amount.h - robust online model of one numeric stream (an account's amounts, a metric).
 *
 * The model keeps, in a fixed-size POD struct (no pointers, ~300 bytes):
 *   - a ring of the last VG_AMOUNT_RING deseasonalised values, in a transformed space
 *     y = T(x) (Box-Cox on |x| with the sign kept; lambda 1 is linear, 0 is log1p);
 *     its median (newest half when full) is the level, its MAD the scale: a few outliers
 *     or a third of contaminated points do not move them;
 *   - hour-of-day and day-of-week offsets (EW means of the residuals, Huber-clipped,
 *     shrunk by empirical Bayes: weight tau2 / (tau2 + noise of the bucket's mean), tau2
 *     the spread of the offsets beyond their noise), so that daily and weekly
 *     seasonality are expected rather than scored, and an account without seasonality
 *     gets none;
 *   - with little history the level and scale are shrunk towards a population prior
 *     (vg_amount_prior_t) and the tail uses a Student-t with few degrees of freedom.
 * A level shift is absorbed after about VG_AMOUNT_RING/4 points; a slow trend is
 * followed with a lag of about VG_AMOUNT_RING/4 points.
 *
 * Score first, then learn: vg_amount_score() reads the model only; vg_amount_learn()
 * adds the value. Neither allocates. Threading: none; the caller owns the struct.
 */
#ifndef VG_AMOUNT_H
#define VG_AMOUNT_H

#include <stdint.h>

#define VG_AMOUNT_RING 32

/* Tunables shared by every model of one population (see vg_amount_cfg_default()). */
typedef struct vg_amount_cfg {
    float lambda;       /* Box-Cox exponent of the transform: 1 linear, 0 log1p */
    float prior_n;      /* weight of the population prior, in points */
    float season_k;     /* > 0: seasonal offsets on (empirical-Bayes shrunk); 0: off */
    float season_rate;  /* slowest EW rate of the seasonal offsets */
    float rel_floor;    /* scale floor relative to |level| (constant streams) */
    float abs_floor;    /* absolute scale floor, in transformed units */
} vg_amount_cfg_t;

/* Population prior: location and scale of the transformed values. */
typedef struct vg_amount_prior {
    float level;
    float scale;
} vg_amount_prior_t;

typedef struct vg_amount {
    float ring[VG_AMOUNT_RING]; /* deseasonalised transformed values */
    float hod[24];              /* hour-of-day offsets (UTC) */
    float dow[7];               /* day-of-week offsets (0 = Monday) */
    uint8_t hod_n[24];          /* saturating counts per bucket */
    uint8_t dow_n[7];
    uint8_t head;               /* next ring slot */
    uint32_t n;                 /* values learned, saturating */
    float slow;                 /* slow robust level (about a week), the seasonal base */
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
} vg_amount_score_t;

/* Default configuration. Can't fail. */
vg_amount_cfg_t vg_amount_cfg_default(void);

/* Empties a model. Can't fail. */
void vg_amount_init(vg_amount_t *m);

/* Transform of the model space; T(x) for this configuration. Can't fail. */
double vg_amount_transform(const vg_amount_cfg_t *cfg, double x);

/* Scores x at time ts_ms against the model (read only) and the prior (NULL: none).
 * Non-finite x gives p_hi = p_lo = 1. Can't fail. */
void vg_amount_score(const vg_amount_cfg_t *cfg, const vg_amount_t *m,
                     const vg_amount_prior_t *prior, int64_t ts_ms, double x,
                     vg_amount_score_t *out);

/* Adds x at time ts_ms. Non-finite x is ignored. Can't fail. */
void vg_amount_learn(const vg_amount_cfg_t *cfg, vg_amount_t *m, int64_t ts_ms, double x);

/* Two-sided helpers shared with the other models. Standard normal upper tail; Student-t
 * upper tail (approximation, relative error under a few percent). Can't fail. */
double vg_amount_norm_sf(double z);
double vg_amount_t_sf(double t, double nu);

#endif
