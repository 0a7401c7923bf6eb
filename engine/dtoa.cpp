/* dtoa.cpp - shortest round-trip decimal via double-conversion (see dtoa.h). */
#include "engine/dtoa.h"

#include <double-conversion/double-to-string.h>
#include <double-conversion/utils.h>

using double_conversion::DoubleToStringConverter;
using double_conversion::StringBuilder;

extern "C" size_t vg_dtoa_shortest(double d, char *buf) {
    /* exponent form below 1e-4 and from 1e15 on, as "%g" does; no '+' in exponents */
    static const DoubleToStringConverter conv(DoubleToStringConverter::UNIQUE_ZERO, nullptr,
                                              nullptr, 'e', -4, 15, 0, 0);
    StringBuilder sb(buf, 32);
    if (!conv.ToShortest(d, &sb)) return 0;
    int n = sb.position();
    sb.Finalize();
    return (size_t)n;
}
