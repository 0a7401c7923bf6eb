/* test_arena.c - unit tests for rules/arena.c (per-event scratch) and rules/errors.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "rules/arena.h"
#include "rules/errors.h"

static void test_alloc_aligned_and_distinct(void **st) {
    (void)st;
    vg_arena_t a;
    vg_arena_init(&a);
    char *prev = NULL;
    for (int i = 1; i < 200; i++) {
        char *p = vg_arena_alloc(&a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, i & 0xff, (size_t)i);   /* ASan catches overlap or overflow */
        if (prev) assert_true(p != prev);
        prev = p;
    }
    vg_arena_deinit(&a);
}

static void test_reset_reuses_memory(void **st) {
    (void)st;
    vg_arena_t a;
    vg_arena_init(&a);
    /* grow over several blocks, then reset: the largest block is kept */
    for (int i = 0; i < 100; i++) assert_non_null(vg_arena_alloc(&a, 1000));
    vg_arena_reset(&a);
    char *p1 = vg_arena_alloc(&a, 64);
    vg_arena_reset(&a);
    char *p2 = vg_arena_alloc(&a, 64);
    assert_ptr_equal(p1, p2);   /* same block, same place: no allocation after warm-up */
    /* an allocation larger than any block gets its own block */
    char *big = vg_arena_alloc(&a, 1 << 20);
    assert_non_null(big);
    memset(big, 1, 1 << 20);
    vg_arena_deinit(&a);
    /* deinit of an only-initialised arena and reset of an empty one are fine */
    vg_arena_init(&a);
    vg_arena_reset(&a);
    vg_arena_deinit(&a);
}

static void test_zero_size(void **st) {
    (void)st;
    vg_arena_t a;
    vg_arena_init(&a);
    char *p = vg_arena_alloc(&a, 0);
    char *q = vg_arena_alloc(&a, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_true(p != q);
    vg_arena_deinit(&a);
}

static void test_strerror(void **st) {
    (void)st;
    assert_string_equal(vg_strerror(0), "success");
    assert_string_equal(vg_strerror(VG_ENOMEM), "out of memory");
    assert_string_equal(vg_strerror(VG_EMISMATCH), "state does not match this input");
    assert_string_equal(vg_strerror(-9999), "unknown error");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_and_distinct),
        cmocka_unit_test(test_reset_reuses_memory),
        cmocka_unit_test(test_zero_size),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
