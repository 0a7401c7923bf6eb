/* civil.h - proleptic Gregorian calendar arithmetic (H. Hinnant's days_from_civil and
 * civil_from_days), shared by the time parser (engine/time.c) and the time zones'
 * rules (rules/tz.c). Header only; pure functions, no state. */
#ifndef VG_CIVIL_H
#define VG_CIVIL_H

#include <stdint.h>

/* Days since 1970-01-01 of the date y-m-d (m 1..12, d 1..31). */
static inline int64_t vg_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The date of day z since 1970-01-01. */
static inline void vg_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

#endif
