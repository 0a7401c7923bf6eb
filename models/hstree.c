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
    t->dim[tree][node] = (uint8_t)d;
    t->split[tree][node] = (float)mid;
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

static double clamp01(double v) { return v > 0 ? (v < 1 ? v : 1) : 0; }

double vg_hstree_score(const vg_hstree_t *t, const double *x) {
    if (!t->ready) return 1.0;
    double logsum = 0;
    for (int k = 0; k < VG_HST_TREES; k++) {
        int node = 0, depth = 0;
        for (;;) {
            int d = t->dim[k][node];
            int child = clamp01(x[d]) < t->split[k][node] ? 2 * node + 1 : 2 * node + 2;
            if (child >= VG_HST_NODES || t->ref[k][child] < VG_HST_MIN_MASS) break;
            node = child;
            depth++;
        }
        double mass = (t->ref[k][node] + 0.5) / (VG_HST_WINDOW + 1.0);
        /* the work space is 2x wider than [0,1] per dimension on average; a node at
         * depth d covers 2^-d of it */
        logsum += log(mass) + depth * log(2.0);
    }
    double lbf = -logsum / VG_HST_TREES;
    return exp(lbf);
}

void vg_hstree_learn(vg_hstree_t *t, const double *x) {
    for (int k = 0; k < VG_HST_TREES; k++) {
        int node = 0;
        for (;;) {
            t->cur[k][node] += 1.0f;
            int d = t->dim[k][node];
            int child = clamp01(x[d]) < t->split[k][node] ? 2 * node + 1 : 2 * node + 2;
            if (child >= VG_HST_NODES) break;
            node = child;
        }
    }
    if (++t->count >= VG_HST_WINDOW) {
        memcpy(t->ref, t->cur, sizeof t->ref);
        memset(t->cur, 0, sizeof t->cur);
        t->count = 0;
        t->ready = 1;
    }
}
