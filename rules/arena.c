/* arena.c - bump allocator for per-event scratch (see arena.h). */
#include "rules/arena.h"

#include <stdlib.h>

struct vg_arena_block {
    vg_arena_block_t *next;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

void vg_arena_init(vg_arena_t *a) {
    a->head = NULL;
    a->used = 0;
    a->rx_steps = 0;
    a->rx_skipped = 0;
    a->rx_callouts = a->rx_callout_cap = 0;
}

void vg_arena_deinit(vg_arena_t *a) {
    vg_arena_block_t *b = a->head;
    while (b) {
        vg_arena_block_t *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->used = 0;
}

void *vg_arena_alloc(vg_arena_t *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (!a->head || a->used + n > a->head->cap) {
        size_t cap = a->head ? a->head->cap * 2 : 4096;
        while (cap < n) cap *= 2;
        vg_arena_block_t *b = malloc(sizeof(*b) + cap);
        if (!b) return NULL;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
        a->used = 0;
    }
    void *p = a->head->data + a->used;
    a->used += n;
    return p;
}

void vg_arena_reset(vg_arena_t *a) {
    vg_arena_block_t *b = a->head;
    a->rx_steps = 0;
    a->rx_skipped = 0;
    if (!b) return;
    /* the newest block is the largest; free the rest */
    vg_arena_block_t *rest = b->next;
    while (rest) {
        vg_arena_block_t *n = rest->next;
        free(rest);
        rest = n;
    }
    b->next = NULL;
    a->used = 0;
}
