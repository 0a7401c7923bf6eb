/* dtoa.h - shortest round-trip decimal of a double, via Dragonbox.
 *
 * C++ behind a C header, for a measured reason: printing the shortest decimal that
 * reads back as the same double with snprintf("%.17g") and strtod() costs about 1 µs
 * per value on this machine; Dragonbox (libdragonbox-dev, header only) about 56 ns,
 * double-conversion's Grisu3, used before, 121 ns. Stateless and thread-safe.
 */
#ifndef VG_DTOA_H
#define VG_DTOA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the shortest decimal of finite `d` that round-trips, NUL-terminated, into
 * buf (at least 32 bytes): fixed notation for 1e-4 <= |d| < 1e15 (like "%g"), else an
 * exponent without '+' or leading zeros ("1e300", "1.5e-7"); returns its length, or 0
 * when d is not finite (nothing written). Can't fail otherwise. */
size_t vg_dtoa_shortest(double d, char *buf);

#ifdef __cplusplus
}
#endif

#endif
