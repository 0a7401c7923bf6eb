/* hash_ref.h - frozen references of the engine's stored hashes, for the unit tests.
 *
 * engine/state.c's hash_bytes (ids of remembered decisions, account and key tables) and
 * engine/window.c's vg_whash_bytes (distinct/seen values in window rows, layout
 * fingerprints) write their values into stored state, so they must never change: the
 * tests compare them with these copies of the functions as first written (byte loops,
 * little-endian reads). Header only.
 */
#ifndef VG_TEST_HASH_REF_H
#define VG_TEST_HASH_REF_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit finalizer of MurmurHash3 (both hashes end with it). */
static inline uint64_t ref_fmix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* n pseudo-random bytes (xorshift64 state *x; each byte the state's bits from `shift`):
 * the inputs both hash tests feed to a function and its reference. */
static inline void ref_random_bytes(uint64_t *x, unsigned char *b, size_t n, int shift) {
    for (size_t i = 0; i < n; i++) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        b[i] = (unsigned char)(*x >> shift);
    }
}

/* Little-endian value of the n <= 8 bytes at p. */
static inline uint64_t ref_le(const unsigned char *p, size_t n) {
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++) k |= (uint64_t)p[i] << (8 * i);
    return k;
}

/* engine/state.c hash_bytes */
static inline uint64_t ref_state_hash(const unsigned char *s, size_t n) {
    uint64_t h = 0x243f6a8885a308d3ULL ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
    for (; n >= 8; s += 8, n -= 8) h = (h ^ ref_fmix64(ref_le(s, 8))) * 0x9e3779b97f4a7c15ULL;
    h = (h ^ ref_fmix64(ref_le(s, n) ^ ((uint64_t)n << 59))) * 0x9e3779b97f4a7c15ULL;
    return ref_fmix64(h);
}

/* engine/window.c vg_whash_bytes */
static inline uint64_t ref_lane(uint64_t k) {
    k *= 0x87c37b91114253d5ULL;
    k = (k << 31) | (k >> 33);
    return k * 0x4cf5ad432745937fULL;
}
static inline uint64_t ref_window_hash(uint64_t seed, const unsigned char *p, size_t n) {
    uint64_t h = ref_fmix64(seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ULL));
    for (; n >= 8; p += 8, n -= 8) {
        h ^= ref_lane(ref_le(p, 8));
        h = ((h << 27) | (h >> 37)) * 5 + 0x52dce729;
    }
    if (n) h ^= ref_lane(ref_le(p, n));
    return ref_fmix64(h);
}

#endif
