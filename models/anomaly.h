/* anomaly.h - online per-account anomaly scores: amount, time, novelty, velocity,
 * multivariate, and account compromise, with explanations.
 *
 * Each signal turns "how unusual is this event for this account" into a tail
 * probability p under the account's own model (shrunk to the population when the
 * account has little history). p is turned into a Bayes factor with the parameter-free
 * mixture calibrator BF(p) = (1 - p + p ln p) / (p ln^2 p), which has expectation 1
 * under the account's model. The event's posterior probability of "anomalous" combines
 * all factors (missing fields contribute nothing) with a prior raised by the account's
 * compromise state: a two-state filter (normal / compromised, with a hazard of becoming
 * compromised and a mean duration) whose compromised state makes a fraction of the
 * events anomalous. So an account that has just shown anomalies scores its next unusual
 * events higher.
 *
 * Scales: with x the evidence in nats above the base rate, a score is
 * softplus(x) / (softplus(x) + c), monotone, below 1 for any finite evidence (so the
 * order of overwhelming cases is kept). For anomaly.score, c = -logit(base_rate): 0.5
 * is posterior odds even. For a signal's own score, x is that signal's log factor and
 * c = ln 20: 0.5 is a Bayes factor of 20 ("strong evidence") from that signal alone.
 *
 * Score first, then learn: vg_anomaly_score() reads the state and the population only;
 * vg_anomaly_learn() then adds the event; vg_anomaly_process() does both in that order.
 * No function allocates; the per-account state is a fixed-size POD struct without
 * pointers (sizeof(vg_anomaly_state_t) bytes, see docs/anomaly.md) that the engine
 * embeds in its account record and stores with vg_anomaly_state_encode().
 *
 * Threading: none inside. One vg_anomaly_pop_t per engine thread (population prior and
 * multivariate trees, shared by the accounts that thread processes); states are per
 * account. The caller owns every struct; strings in inputs are borrowed for the call.
 */
#ifndef VG_ANOMALY_H
#define VG_ANOMALY_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "models/amount.h"
#include "models/hstree.h"
#include "rules/value.h"

#define VG_ANOMALY_VERSION 2

/* Signals, in the order of vg_anomaly_result_t.signal[]. X(NAME, "name"). */
#define VG_ANOMALY_SIGNAL_LIST(X) \
    X(AMOUNT, "amount")           \
    X(TIME, "time")               \
    X(MERCHANT, "merchant")       \
    X(COUNTRY, "country")         \
    X(DEVICE, "device")           \
    X(IP, "ip")                   \
    X(MCC, "mcc")                 \
    X(CHANNEL, "channel")         \
    X(VELOCITY, "velocity")       \
    X(MULTI, "multi")             \
    X(COMPROMISE, "compromise")

typedef enum vg_anomaly_signal {
#define VG_ANOMALY_SIG_ENUM(name, str) VG_ANOMALY_##name,
    VG_ANOMALY_SIGNAL_LIST(VG_ANOMALY_SIG_ENUM)
#undef VG_ANOMALY_SIG_ENUM
    VG_ANOMALY__COUNT
} vg_anomaly_signal_t;

/* Categorical fields with a novelty model, in the order of vg_anomaly_input_t.cat[];
 * the same order as their signals VG_ANOMALY_MERCHANT .. VG_ANOMALY_CHANNEL. */
enum {
    VG_ANOMALY_CAT_MERCHANT,
    VG_ANOMALY_CAT_COUNTRY,
    VG_ANOMALY_CAT_DEVICE,
    VG_ANOMALY_CAT_IP,
    VG_ANOMALY_CAT_MCC,
    VG_ANOMALY_CAT_CHANNEL,
    VG_ANOMALY_CAT__COUNT
};

/* Name of a signal ("amount", ...); NULL when out of range. Can't fail. */
const char *vg_anomaly_signal_name(int sig);

/* ---- configuration and population (one per engine thread) ---- */

typedef struct vg_anomaly_cfg {
    vg_amount_cfg_t amount;
    float base_rate;          /* prior probability that an event is anomalous */
    float compromise_hazard;  /* per day, probability that a normal account turns */
    float compromise_days;    /* mean duration of a compromise, days */
    float compromise_frac;    /* share of a compromised account's events that are anomalous */
    float pop_amount_weight;  /* exponent of the population amount factor (0: off) */
    float amount_up;          /* prior share of amount anomalies that are increases, (0,1) */
    float time_weight;        /* exponent of the time factor */
    float velocity_weight;    /* exponent of the velocity factor */
    float novelty_weight;     /* exponent of each novelty factor */
    float multi_weight;       /* exponent of the multivariate factor */
    float burst_tau_s;        /* velocity burst window (decay constant), seconds */
    uint32_t signals;         /* bit (1u << VG_ANOMALY_<NAME>): compute that signal (default
                                 all). A signal off is absent, learns nothing, costs nothing;
                                 COMPROMISE and the combination always run */
} vg_anomaly_cfg_t;

#define VG_ANOMALY_SIGNALS_ALL ((1u << VG_ANOMALY__COUNT) - 1)

#define VG_ANOMALY_HOW_MODELS 8 /* candidate time models, chosen by prequential fit */
#define VG_ANOMALY_POP_BINS 96 /* log-spaced bins of |amount|, 10^-2 .. 10^10 */

typedef struct vg_anomaly_pop {
    vg_anomaly_cfg_t cfg;
    double amt_hist[VG_ANOMALY_POP_BINS]; /* decayed counts of |amount| */
    double amt_total;
    double hist_how[168];                 /* decayed counts of hour of week */
    double how_total;
    double how_ll[VG_ANOMALY_HOW_MODELS]; /* decayed log-likelihood of each time model */
    double how_prod[VG_ANOMALY_HOW_MODELS]; /* likelihood not yet folded into how_ll */
    vg_amount_prior_t prior;              /* cached from amt_hist and amt_exc */
    double amt_exc[VG_AMOUNT_LAMBDAS];     /* decayed tail exceedances per transform */
    double amt_exc_n;                      /* and their count */
    uint64_t n;                           /* events learned */
    vg_hstree_t trees;                    /* multivariate model (models/hstree.h) */
    double k_base_c;                      /* derived from cfg: ln((1 - base_rate) / base_rate) */
    double k_base_odds;                   /* (1 - base_rate) / base_rate */
    double k_log_up, k_log_down;          /* ln amount_up, ln (1 - amount_up) */
} vg_anomaly_pop_t;

/* Defaults (documented in docs/anomaly.md). Can't fail. */
vg_anomaly_cfg_t vg_anomaly_cfg_default(void);

/* Initialises a population with cfg (NULL: defaults); `seed` fixes the random trees.
 * Can't fail. */
void vg_anomaly_pop_init(vg_anomaly_pop_t *pop, const vg_anomaly_cfg_t *cfg, uint64_t seed);

/* Recomputes the population's derived fields (k_*, the trees' log masses) after its cfg
 * was changed in place; pop_init and pop_decode call it. Can't fail. */
void vg_anomaly_pop_derive(vg_anomaly_pop_t *pop);

/* ---- per-account state ---- */

#define VG_ANOMALY_NOV_SLOTS 40 /* merchant 12, country 6, device 6, ip 6, mcc 6, channel 4 */

typedef struct vg_anomaly_state {
    uint32_t n;                      /* events learned, saturating */
    uint16_t tick;                   /* event counter for LRU, wrapping */
    uint8_t skip_run;                /* consecutive anomalous events kept out of the baseline */
    uint8_t recur;                   /* bit d (0 = Monday): the last day that was weekday d
                                        had an amount kept out of the baseline; bit 7: so
                                        had the previous one of today's weekday (recurrence:
                                        today's kept-out amounts teach the weekday's and
                                        hour's seasonal offsets). With skip_run, the two
                                        bytes of the u16 skip_run of the format (<= 8) */
    int64_t first_ts, last_ts;       /* ms; valid when n > 0 */
    vg_amount_t amount;
    uint8_t how[168];                /* hour-of-week counts, halved on overflow */
    uint16_t how_total;
    uint16_t pad;
    float nov_seen[VG_ANOMALY_CAT__COUNT]; /* decayed events carrying the field */
    float nov_new[VG_ANOMALY_CAT__COUNT];  /* decayed events whose value was new */
    uint32_t nov_h[VG_ANOMALY_NOV_SLOTS];    /* hashes of the known values (0: empty) */
    uint16_t nov_last[VG_ANOMALY_NOV_SLOTS]; /* event tick of their last use (LRU) */
    float burst;                     /* decayed event count, burst_tau_s */
    float burst_spend;               /* decayed |amount| sum, burst_tau_s */
    float p_comp;                    /* P(compromised) after the last event */
    float run_y;                     /* mean of the kept-out run's amounts in the amount
                                        ring's space (vg_amount_resid), NaN: none; the
                                        bytes of `evidence` (information only) before
                                        2026-12-07 */
} vg_anomaly_state_t;

/* Empties a state (a new account). Can't fail. */
void vg_anomaly_state_init(vg_anomaly_state_t *st);

/* A hint that st will be scored soon (e.g. a few events ahead in a batch): prefetches its
 * cache lines. vg_anomaly_score also does it for its own state. Can't fail. */
void vg_anomaly_state_prefetch(const vg_anomaly_state_t *st);

/* Resets an account's baseline: forgets everything learned (amounts, times, novelty,
 * velocity, compromise), as vg_anomaly_state_init. Can't fail. */
void vg_anomaly_state_reset(vg_anomaly_state_t *st);

/* ---- events and results ---- */

typedef struct vg_anomaly_input {
    int64_t ts_ms;
    double amount;                 /* NaN: no amount; 0: no amount signal; < 0: a refund,
                                      scored by its size against the payments (SPEC 1);
                                      only payments (> 0) are learned as amounts */
    vg_str_t cat[VG_ANOMALY_CAT__COUNT]; /* borrowed; p == NULL: absent */
} vg_anomaly_input_t;

/* Fills *in from an event's view (rules/value.h): time, amount (NaN when not a number),
 * and the categorical fields that are strings (absent otherwise). The strings stay
 * borrowed from the event. Can't fail. */
static inline void vg_anomaly_input_from_tx(const vg_tx_t *tx, vg_anomaly_input_t *in) {
    static const int map[VG_ANOMALY_CAT__COUNT] = {VG_FIELD_MERCHANT, VG_FIELD_COUNTRY,
                                                   VG_FIELD_DEVICE,   VG_FIELD_IP,
                                                   VG_FIELD_MCC,      VG_FIELD_CHANNEL};
    const vg_value_t *ts = &tx->f[VG_FIELD_TS], *am = &tx->f[VG_FIELD_AMOUNT];
    in->ts_ms = ts->type == VG_T_TIME ? ts->u.ms : 0;
    in->amount = am->type == VG_T_NUM ? am->u.n : (double)NAN;
    for (int i = 0; i < VG_ANOMALY_CAT__COUNT; i++) {
        const vg_value_t *v = &tx->f[map[i]];
        if (v->type == VG_T_STR) {
            in->cat[i] = v->u.s;
        } else {
            in->cat[i].p = NULL;
            in->cat[i].len = 0;
        }
    }
}

#define VG_ANOMALY_SKIP_MAX 8
#define VG_ANOMALY_REASONS 3
#define VG_ANOMALY_REASON_LEN 128

typedef struct vg_anomaly_result {
    double score;                        /* overall, in [0, 1]; 0.5 = posterior odds even */
    double lbf;                          /* the event's total log Bayes factor (nats) */
    double posterior;                    /* P(event anomalous | account, event) */
    double amount_z;                     /* robust z of the amount (0 without one) */
    double signal[VG_ANOMALY__COUNT];    /* in [0, 1]; 0 where not present */
    double p[VG_ANOMALY__COUNT];         /* tail probabilities behind them (1: none) */
    uint32_t present;                    /* bit s set: signal s was computed */
    int nreasons;                        /* explanations in reason[], strongest first */
    int reason_signal[VG_ANOMALY_REASONS];
    char reason[VG_ANOMALY_REASONS][VG_ANOMALY_REASON_LEN]; /* NUL-terminated */
    /* What vg_anomaly_score found that vg_anomaly_learn of the same event and state
     * reuses instead of recomputing (not for callers; learn checks that it matches) */
    struct vg_anomaly_memo {
        int64_t ts_ms;
        double amount;
        uint32_t n;                      /* the state's n and tick when scored */
        uint16_t tick;
        uint8_t ok, has_leaf;
        uint32_t signals;
        uint32_t hash[VG_ANOMALY_CAT__COUNT];
        int32_t amt_bin;                 /* population bin of |amount| (-1: none) */
        double burst_decay, stay;        /* decays since the last event (-1: none) */
        uint8_t leaf[VG_HST_TREES];      /* the multivariate trees' leaves */
    } memo;
} vg_anomaly_result_t;

/* Scores the event against the state and population (neither is changed) and fills
 * *res. Missing fields give absent signals. Can't fail. */
void vg_anomaly_score(const vg_anomaly_pop_t *pop, const vg_anomaly_state_t *st,
                      const vg_anomaly_input_t *in, vg_anomaly_result_t *res);

/* Learns the event into the state and the population, after it was scored. `res` is the
 * event's result from vg_anomaly_score (for the compromise filter); NULL makes it score
 * internally. An event whose posterior is above 0.5 is kept out of the account's amount
 * baseline and known values (so that a fraudster's amounts and devices do not become
 * normal), unless it is the VG_ANOMALY_SKIP_MAX-th such event in a row: a lasting change
 * of regime is then learned with it (its values become known; the amount ring restarts
 * at the run's mean when that moved, unless the run came in a burst), and the run's later
 * events as they come. A kept-out amount still teaches its hour's and weekday's seasonal
 * offsets when the previous day of that weekday had one too (a weekly payment).
 * Can't fail. */
void vg_anomaly_learn(vg_anomaly_pop_t *pop, vg_anomaly_state_t *st,
                      const vg_anomaly_input_t *in, const vg_anomaly_result_t *res);

/* vg_anomaly_score then vg_anomaly_learn. Can't fail. */
void vg_anomaly_process(vg_anomaly_pop_t *pop, vg_anomaly_state_t *st,
                        const vg_anomaly_input_t *in, vg_anomaly_result_t *res);

/* ---- an account's baseline, for people (GET /v1/accounts/{account}) ---- */

typedef struct vg_anomaly_baseline {
    uint32_t events;                 /* events learned (saturating); 0: nothing below */
    int64_t first_ts, last_ts;       /* ms */
    int has_amount;                  /* amount_* below are set */
    double amount_typical;           /* the amount model's level, original units */
    double amount_lo, amount_hi;     /* its usual range: level -+ 2 scales (the low end
                                        not below 0 when the level is positive) */
    int known[VG_ANOMALY_CAT__COUNT]; /* distinct values remembered per field (at most
                                        the field's slots: merchant 12, the others 6 or 4) */
    uint32_t hours_utc[24];          /* events per hour of day (UTC), relative (the
                                        counts are halved when one overflows) */
    double burst;                    /* events with a decay of burst_tau_s (1 h), as of
                                        last_ts */
    double p_compromised;            /* P(the account is compromised) after last_ts */
} vg_anomaly_baseline_t;

/* Describes what the state has learned (read only; the population gives the amount
 * prior). Can't fail. */
void vg_anomaly_describe(const vg_anomaly_pop_t *pop, const vg_anomaly_state_t *st,
                         vg_anomaly_baseline_t *out);

/* ---- persistence (versioned, little endian, size checked) ---- */

/* Bytes needed by vg_anomaly_state_encode. Can't fail. */
size_t vg_anomaly_state_encoded_size(void);

/* Writes the state into buf[0..cap). Returns the length written, or VG_ELIMIT when cap
 * is too small (nothing meaningful written). */
int vg_anomaly_state_encode(const vg_anomaly_state_t *st, uint8_t *buf, size_t cap);

/* Reads a state written by vg_anomaly_state_encode. Returns 0, or VG_EINVAL when the
 * bytes are not a state of this version or size (*st is then initialised empty). */
int vg_anomaly_state_decode(vg_anomaly_state_t *st, const uint8_t *buf, size_t len);

/* Same for a population (its configuration included). On a decode error the population
 * is reinitialised with the defaults and seed 0. */
size_t vg_anomaly_pop_encoded_size(void);
int vg_anomaly_pop_encode(const vg_anomaly_pop_t *pop, uint8_t *buf, size_t cap);
int vg_anomaly_pop_decode(vg_anomaly_pop_t *pop, const uint8_t *buf, size_t len);

#endif
