/* hstree.h - streaming half-space trees (Tan, Ting & Liu 2011) over a few features in
 * [0, 1], for the multivariate anomaly signal: combinations of values that are rare
 * together although each is common alone.
 *
 * Fixed-size POD (no pointers, about 72 KiB): VG_HST_TREES random trees of depth
 * VG_HST_DEPTH built from a seed over a randomly perturbed work space; each node counts
 * the points of the reference window (the previous VG_HST_WINDOW points) and of the
 * current one; when the current window is full it becomes the reference.
 * vg_hstree_score() returns the Bayes factor of "uniform over the work space" against
 * the learned density (geometric mean over trees of 1 / (mass * 2^depth)), so dense
 * regions give factors below 1 and empty ones large factors.
 *
 * Cost: counts are 16-bit; when a window becomes the reference (every VG_HST_WINDOW
 * points) the internal counts are summed from the leaves and the log factor each leaf
 * scores is tabulated, so a score is one descent per tree (the trees side by side,
 * level by level, so that their loads overlap) and VG_HST_TREES table loads, without a
 * logarithm; the leaves found serve the learn of the same point, which increments one
 * leaf counter per tree.
 *
 * Threading: none; the caller owns the struct. Nothing allocates.
 */
#ifndef VG_HSTREE_H
#define VG_HSTREE_H

#include <stdint.h>

#define VG_HST_TREES 8
#define VG_HST_DEPTH 7
#define VG_HST_DIMS 6
#define VG_HST_NODES ((1 << (VG_HST_DEPTH + 1)) - 1)
#define VG_HST_WINDOW 4096
#define VG_HST_MIN_MASS 4.0f /* stop descending where the reference has fewer points */

/* One node, 16 bytes: everything a descent, a score and a learn read at a node is in
 * one cache line. */
typedef struct vg_hst_node {
    float split;      /* the split value of dimension dim */
    float lbf;        /* derived from ref: -(ln mass + depth ln 2) */
    uint16_t ref;     /* count of the reference window */
    uint16_t cur;     /* count of the current window (leaves only; internal nodes' counts
                         are summed from their leaves when the window becomes the
                         reference) */
    uint8_t dim;
    uint8_t pad[3];
} vg_hst_node_t;

#define VG_HST_LEAVES (1 << VG_HST_DEPTH)

typedef struct vg_hstree {
    vg_hst_node_t node[VG_HST_TREES][VG_HST_NODES];
    float leaf_lbf[VG_HST_TREES][VG_HST_LEAVES]; /* derived: the log factor a point in
                                                    each leaf scores (its deepest node
                                                    with enough reference mass) */
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

/* Its natural logarithm (0 when no reference window exists yet). Can't fail. */
double vg_hstree_log_score(const vg_hstree_t *t, const double *x);

/* The leaf (0 .. 2^VG_HST_DEPTH - 1) x falls in, per tree: one descent serves a score
 * and a learn of the same point (vg_hstree_log_score_leaves, vg_hstree_learn_leaves).
 * Can't fail. */
void vg_hstree_leaves(const vg_hstree_t *t, const double *x, uint8_t *leaf);
double vg_hstree_log_score_leaves(const vg_hstree_t *t, const uint8_t *leaf);
void vg_hstree_learn_leaves(vg_hstree_t *t, const uint8_t *leaf);

/* Recomputes the derived node lbf from the ref counts (after loading the counts from
 * bytes). Can't fail. */
void vg_hstree_derive(vg_hstree_t *t);

/* Adds x to the current window. Can't fail. */
void vg_hstree_learn(vg_hstree_t *t, const double *x);

#endif
