/* arena.h - a bump allocator for per-event scratch memory.
 *
 * The caller owns the arena (embed a vg_arena_t and vg_arena_init() it). Allocations
 * live until vg_arena_reset(); reset keeps the largest block so that, once warm, the
 * hot path never calls malloc. Not thread-safe: one arena per thread.
 */
#ifndef VG_ARENA_H
#define VG_ARENA_H

#include <stddef.h>

typedef struct vg_arena_block vg_arena_block_t;

typedef struct vg_arena {
    vg_arena_block_t *head;   /* current block, newest first */
    size_t used;              /* bytes used in head */
    /* per-event counters of the rules VM (rules/vm.c), zeroed by init and reset */
    unsigned rx_steps;        /* regex steps charged to this event (budget: vm.h) */
    unsigned rx_skipped;      /* matches() that gave null, not run: budget used up */
    unsigned rx_callouts, rx_callout_cap;   /* the match running on a long subject */
} vg_arena_t;

/* Initialises an empty arena. Can't fail (allocates nothing). */
void vg_arena_init(vg_arena_t *a);
/* Frees every block. Accepts an arena that was only initialised. */
void vg_arena_deinit(vg_arena_t *a);
/* Returns `n` bytes aligned to 16, or NULL when memory is exhausted. */
void *vg_arena_alloc(vg_arena_t *a, size_t n);
/* Forgets every allocation and zeroes the counters; keeps one block (the largest) for
 * reuse. Can't fail. */
void vg_arena_reset(vg_arena_t *a);

#endif
