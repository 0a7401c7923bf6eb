/* hstree.c - streaming half-space trees. See hstree.h. */
#include "models/hstree.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) { return (splitmix(s) >> 11) * (1.0 / 9007199254740992.0); }

static void build(vg_hstree_t *t, int tree, int node, double *lo, double *hi, uint64_t *rng) {
    if (node >= VG_HST_NODES) return;
    int d = (int)(splitmix(rng) % t->ndims);
    double mid = 0.5 * (lo[d] + hi[d]);
    t->node[tree][node].dim = (uint8_t)d;
    t->node[tree][node].split = (float)mid;
    double save = hi[d];
    hi[d] = mid;
    build(t, tree, 2 * node + 1, lo, hi, rng);
    hi[d] = save;
    save = lo[d];
    lo[d] = mid;
    build(t, tree, 2 * node + 2, lo, hi, rng);
    lo[d] = save;
}

void vg_hstree_init(vg_hstree_t *t, int ndims, uint64_t seed) {
    memset(t, 0, sizeof *t);
    if (ndims < 1) ndims = 1;
    if (ndims > VG_HST_DIMS) ndims = VG_HST_DIMS;
    t->ndims = (uint32_t)ndims;
    uint64_t rng = seed ^ 0x5EEDull;
    for (int k = 0; k < VG_HST_TREES; k++) {
        double lo[VG_HST_DIMS], hi[VG_HST_DIMS];
        for (int d = 0; d < ndims; d++) {
            double s = unif(&rng), r = 2.0 * (s > 1 - s ? s : 1 - s);
            lo[d] = s - r;
            hi[d] = s + r;
        }
        build(t, k, 0, lo, hi, &rng);
    }
}

/* Node of the path to leaf at depth d. */
#define PATH(leaf, d) ((((leaf) + (1 << VG_HST_DEPTH)) >> (VG_HST_DEPTH - (d))) - 1)

void vg_hstree_derive(vg_hstree_t *t) {
    for (int k = 0; k < VG_HST_TREES; k++) {
        vg_hst_node_t *nd = t->node[k];
        for (int node = 0, depth = 0; node < VG_HST_NODES; node++) {
            if (node + 1 == 2 << depth) depth++;
            double mass = (nd[node].ref + 0.5) / (VG_HST_WINDOW + 1.0);
            /* the work space is 2x wider than [0,1] per dimension on average; a node at
             * depth d covers 2^-d of it */
            nd[node].lbf = (float)-(log(mass) + depth * log(2.0));
        }
        /* a point descends while the child has VG_HST_MIN_MASS reference points */
        for (int leaf = 0; leaf < VG_HST_LEAVES; leaf++) {
            int node = 0;
            for (int d = 1; d <= VG_HST_DEPTH; d++) {
                int child = PATH(leaf, d);
                if (nd[child].ref < VG_HST_MIN_MASS) break;
                node = child;
            }
            t->leaf_lbf[k][leaf] = nd[node].lbf;
        }
    }
}

static void clampv(const double *x, int nd, float *c) {
    for (int d = 0; d < nd; d++) c[d] = x[d] > 0 ? (x[d] < 1 ? (float)x[d] : 1.0f) : 0.0f;
}

void vg_hstree_leaves(const vg_hstree_t *t, const double *x, uint8_t *leaf) {
    float c[VG_HST_DIMS];
    clampv(x, (int)t->ndims, c);
    int node[VG_HST_TREES] = {0};
    for (int depth = 0; depth < VG_HST_DEPTH; depth++)
        for (int k = 0; k < VG_HST_TREES; k++) {
            const vg_hst_node_t *nd = &t->node[k][node[k]];
            node[k] = 2 * node[k] + 1 + (c[nd->dim] >= nd->split);
        }
    for (int k = 0; k < VG_HST_TREES; k++)
        leaf[k] = (uint8_t)(node[k] - ((1 << VG_HST_DEPTH) - 1));
}

double vg_hstree_log_score_leaves(const vg_hstree_t *t, const uint8_t *leaf) {
    if (!t->ready) return 0.0;
    float s0 = 0, s1 = 0;
    for (int k = 0; k < VG_HST_TREES; k += 2) {
        s0 += t->leaf_lbf[k][leaf[k] & (VG_HST_LEAVES - 1)];
        s1 += t->leaf_lbf[k + 1][leaf[k + 1] & (VG_HST_LEAVES - 1)];
    }
    return ((double)s0 + s1) / VG_HST_TREES;
}

double vg_hstree_log_score(const vg_hstree_t *t, const double *x) {
    uint8_t leaf[VG_HST_TREES];
    if (!t->ready) return 0.0;
    vg_hstree_leaves(t, x, leaf);
    return vg_hstree_log_score_leaves(t, leaf);
}

double vg_hstree_score(const vg_hstree_t *t, const double *x) {
    return exp(vg_hstree_log_score(t, x));
}

void vg_hstree_learn_leaves(vg_hstree_t *t, const uint8_t *leaf) {
    const int first = VG_HST_LEAVES - 1; /* node index of leaf 0 */
    for (int k = 0; k < VG_HST_TREES; k++)
        t->node[k][first + (leaf[k] & (VG_HST_LEAVES - 1))].cur++;
    if (++t->count >= VG_HST_WINDOW) {
        for (int k = 0; k < VG_HST_TREES; k++) {
            vg_hst_node_t *nd = t->node[k];
            for (int i = first; i < VG_HST_NODES; i++) {
                nd[i].ref = nd[i].cur;
                nd[i].cur = 0;
            }
            for (int i = first - 1; i >= 0; i--) /* internal: the sum of the children */
                nd[i].ref = (uint16_t)(nd[2 * i + 1].ref + nd[2 * i + 2].ref);
        }
        t->count = 0;
        t->ready = 1;
        vg_hstree_derive(t);
    }
}

void vg_hstree_learn(vg_hstree_t *t, const double *x) {
    uint8_t leaf[VG_HST_TREES];
    vg_hstree_leaves(t, x, leaf);
    vg_hstree_learn_leaves(t, leaf);
}
