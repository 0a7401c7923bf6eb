/* dtoa.cpp - shortest round-trip decimal via double-conversion (see dtoa.h).
 *
 * The digits come from FastDtoa (Grisu3) directly, and are laid out here exactly as
 * DoubleToStringConverter::ToShortest would with the flags below (fixed notation for
 * decimal exponents -4 .. 14, else d[.ddd]e[-]x); the converter, which also covers
 * the values Grisu3 gives up on (about 0.5%, bignum fallback), is only called then.
 * Calling the converter for every value cost ~40% more (its layers and copies).
 */
#include "engine/dtoa.h"

#include <double-conversion/double-to-string.h>
#include <double-conversion/fast-dtoa.h>
#include <double-conversion/utils.h>

using double_conversion::DoubleToStringConverter;
using double_conversion::StringBuilder;

/* exponent form below 1e-4 and from 1e15 on, as "%g" does; no '+' in exponents */
static const int LOW = -4, HIGH = 15;

static size_t slow(double d, char *buf) {
    static const DoubleToStringConverter conv(DoubleToStringConverter::UNIQUE_ZERO, nullptr,
                                              nullptr, 'e', LOW, HIGH, 0, 0);
    StringBuilder sb(buf, 32);
    if (!conv.ToShortest(d, &sb)) return 0;
    int n = sb.position();
    sb.Finalize();
    return (size_t)n;
}

extern "C" size_t vg_dtoa_shortest(double d, char *buf) {
    double v = d < 0 ? -d : d;
    char dig[double_conversion::kFastDtoaMaximalLength + 1];
    int len = 0, point = 0;
    if (!(v > 0 && v <= 1.7976931348623157e308) ||
        !double_conversion::FastDtoa(v, double_conversion::FAST_DTOA_SHORTEST, 0,
                                     double_conversion::Vector<char>(dig, (int)sizeof dig),
                                     &len, &point))
        return slow(d, buf);
    size_t n = 0;
    if (d < 0) buf[n++] = '-';
    int exponent = point - 1;
    if (exponent >= LOW && exponent < HIGH) {
        if (point <= 0) {            /* 0.000ddd */
            buf[n++] = '0';
            buf[n++] = '.';
            for (int i = 0; i < -point; i++) buf[n++] = '0';
            for (int i = 0; i < len; i++) buf[n++] = dig[i];
        } else if (point >= len) {   /* ddd000 */
            for (int i = 0; i < len; i++) buf[n++] = dig[i];
            for (int i = len; i < point; i++) buf[n++] = '0';
        } else {                     /* dd.ddd */
            for (int i = 0; i < point; i++) buf[n++] = dig[i];
            buf[n++] = '.';
            for (int i = point; i < len; i++) buf[n++] = dig[i];
        }
    } else {                         /* d[.ddd]e[-]x */
        buf[n++] = dig[0];
        if (len > 1) {
            buf[n++] = '.';
            for (int i = 1; i < len; i++) buf[n++] = dig[i];
        }
        buf[n++] = 'e';
        if (exponent < 0) {
            buf[n++] = '-';
            exponent = -exponent;
        }
        char e[8];
        int k = 0;
        do {
            e[k++] = (char)('0' + exponent % 10);
            exponent /= 10;
        } while (exponent > 0);
        while (k) buf[n++] = e[--k];
    }
    buf[n] = '\0';
    return n;
}
