/* strmap.h - a small open-addressing map from byte strings to ints, for the compiler.
 *
 * Used at compile time only (feature names, spec texts, by-group texts); never on the
 * hot path. Keys are borrowed: they must outlive the map. The caller embeds the map
 * (vg_strmap_init / vg_strmap_deinit). Not thread-safe.
 */
#ifndef VG_STRMAP_H
#define VG_STRMAP_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct vg_strmap_slot {
    const char *k;
    uint32_t len;
    int v;
} vg_strmap_slot_t;

typedef struct vg_strmap {
    vg_strmap_slot_t *slots;
    uint32_t cap, n;   /* cap: a power of two, or 0 */
} vg_strmap_t;

static inline void vg_strmap_init(vg_strmap_t *m) { m->slots = NULL; m->cap = m->n = 0; }
static inline void vg_strmap_deinit(vg_strmap_t *m) { free(m->slots); vg_strmap_init(m); }

static inline uint32_t vg_strmap_hash(const char *k, uint32_t len) {
    uint32_t h = 2166136261u;  /* FNV-1a */
    for (uint32_t i = 0; i < len; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

/* Returns the value of key k, or -1 when absent. Can't fail. */
static inline int vg_strmap_get(const vg_strmap_t *m, const char *k, uint32_t len) {
    if (!m->cap) return -1;
    for (uint32_t i = vg_strmap_hash(k, len) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const vg_strmap_slot_t *s = &m->slots[i];
        if (!s->k) return -1;
        if (s->len == len && memcmp(s->k, k, len) == 0) return s->v;
    }
}

/* Inserts k -> v when k is absent. Returns the existing value when present, -1 when
 * inserted, -2 when out of memory (nothing inserted). */
static inline int vg_strmap_put(vg_strmap_t *m, const char *k, uint32_t len, int v) {
    if ((m->n + 1) * 2 > m->cap) {
        uint32_t ncap = m->cap ? m->cap * 2 : 64;
        vg_strmap_slot_t *ns = calloc(ncap, sizeof *ns);
        if (!ns) return -2;
        for (uint32_t j = 0; j < m->cap; j++) {
            vg_strmap_slot_t *s = &m->slots[j];
            if (!s->k) continue;
            uint32_t i = vg_strmap_hash(s->k, s->len) & (ncap - 1);
            while (ns[i].k) i = (i + 1) & (ncap - 1);
            ns[i] = *s;
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    uint32_t i = vg_strmap_hash(k, len) & (m->cap - 1);
    for (; m->slots[i].k; i = (i + 1) & (m->cap - 1))
        if (m->slots[i].len == len && memcmp(m->slots[i].k, k, len) == 0)
            return m->slots[i].v;
    m->slots[i].k = k ? k : "";
    m->slots[i].len = len;
    m->slots[i].v = v;
    m->n++;
    return -1;
}

#endif
