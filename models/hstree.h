/* hstree.h - streaming half-space trees (Tan, Ting & Liu 2011) over a few features in
 * [0, 1], for the multivariate anomaly signal: combinations of values that are rare
 * together although each is common alone.
 *
 * Fixed-size POD (no pointers, about 26 KiB): VG_HST_TREES random trees of depth
 * VG_HST_DEPTH built from a seed over a randomly perturbed work space; each node counts
 * the points of the reference window (the previous VG_HST_WINDOW points) and of the
 * current one; when the current window is full it becomes the reference.
 * vg_hstree_score() returns the Bayes factor of "uniform over the work space" against
 * the learned density (geometric mean over trees of 1 / (mass * 2^depth)), so dense
 * regions give factors below 1 and empty ones large factors.
 *
 * Threading: none; the caller owns the struct. Nothing allocates.
 */
#ifndef VG_HSTREE_H
#define VG_HSTREE_H

#include <stdint.h>

#define VG_HST_TREES 16
#define VG_HST_DEPTH 7
#define VG_HST_DIMS 6
#define VG_HST_NODES ((1 << (VG_HST_DEPTH + 1)) - 1)
#define VG_HST_WINDOW 4096
#define VG_HST_MIN_MASS 4.0f /* stop descending where the reference has fewer points */

typedef struct vg_hstree {
    uint8_t dim[VG_HST_TREES][VG_HST_NODES];
    float split[VG_HST_TREES][VG_HST_NODES];
    float ref[VG_HST_TREES][VG_HST_NODES];
    float cur[VG_HST_TREES][VG_HST_NODES];
    uint32_t ndims;   /* features used, <= VG_HST_DIMS */
    uint32_t count;   /* points in the current window */
    uint32_t ready;   /* 1 once a reference window exists */
    uint32_t pad;
} vg_hstree_t;

/* Builds the trees for ndims (1..VG_HST_DIMS) features from seed. Can't fail
 * (ndims is clamped). */
void vg_hstree_init(vg_hstree_t *t, int ndims, uint64_t seed);

/* Bayes factor of x (ndims values, clamped to [0, 1]) being anomalous; 1 when no
 * reference window exists yet. Can't fail. */
double vg_hstree_score(const vg_hstree_t *t, const double *x);

/* Adds x to the current window. Can't fail. */
void vg_hstree_learn(vg_hstree_t *t, const double *x);

#endif
