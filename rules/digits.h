/* digits.h - decimal digits of unsigned integers, shared by the number writers
 * (engine/jsonout.c, rules/dtoa.cpp). Header only, C and C++; no state.
 */
#ifndef VG_DIGITS_H
#define VG_DIGITS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* "00" .. "99": two digits per division */
static const char VG_DIG2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Number of decimal digits of u (1 for 0). */
static inline int vg_ndigits(uint64_t u) {
    static const uint64_t P10[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL,
                                     1000000ULL, 10000000ULL, 100000000ULL, 1000000000ULL,
                                     10000000000ULL, 100000000000ULL, 1000000000000ULL,
                                     10000000000000ULL, 100000000000000ULL,
                                     1000000000000000ULL, 10000000000000000ULL,
                                     100000000000000000ULL, 1000000000000000000ULL,
                                     10000000000000000000ULL};
    u |= 1;   /* 0 has one digit; for other u the same count (no power of ten is odd but 1) */
    int t = ((64 - __builtin_clzll(u)) * 1233) >> 12;   /* floor(log10(2^bits)) */
    return t + (u >= P10[t]);
}

/* Writes the 8 decimal digits of v < 10^8 (leading zeros included) ending just before
 * `end`, in 32-bit arithmetic. */
static inline void vg_put_8digits(uint32_t v, char *end) {
    uint32_t hi = v / 10000, lo = v % 10000;
    memcpy(end - 8, VG_DIG2 + 2 * (hi / 100), 2);
    memcpy(end - 6, VG_DIG2 + 2 * (hi % 100), 2);
    memcpy(end - 4, VG_DIG2 + 2 * (lo / 100), 2);
    memcpy(end - 2, VG_DIG2 + 2 * (lo % 100), 2);
}

/* Writes the decimal digits of u ending just before `end`: 8 at a time while u needs
 * 64 bits' division, then two per 32-bit division (a 17-digit significand: ~60
 * instructions instead of ~100 with 64-bit divisions throughout). */
static inline void vg_put_digits(uint64_t u, char *end) {
    while (u >= 100000000) {
        vg_put_8digits((uint32_t)(u % 100000000), end);
        u /= 100000000;
        end -= 8;
    }
    uint32_t v = (uint32_t)u;
    while (v >= 100) {
        uint32_t r = v % 100;
        v /= 100;
        end -= 2;
        memcpy(end, VG_DIG2 + 2 * r, 2);
    }
    if (v >= 10) memcpy(end - 2, VG_DIG2 + 2 * v, 2);
    else end[-1] = (char)('0' + v);
}

/* The decimal digits of v, with a '-' when negative, into buf (at least 20 bytes; no
 * NUL); their count. */
static inline size_t vg_fmt_i64(int64_t v, char *buf) {
    size_t k = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        buf[k++] = '-';
        u = (uint64_t)0 - u;
    }
    k += (size_t)vg_ndigits(u);
    vg_put_digits(u, buf + k);
    return k;
}

#endif
