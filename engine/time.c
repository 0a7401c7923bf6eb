/* time.c - RFC 3339 timestamps <-> epoch milliseconds (SPEC section 1 and 3).
 *
 * Pure functions with civil-calendar arithmetic (rules/civil.h: days_from_civil / civil_from_days,
 * proleptic Gregorian): no timegm(), no time zone database, no locale, no allocation.
 *
 * Accepted by vg_time_parse(): YYYY-MM-DD, then 'T', 't' or a space, then HH:MM:SS,
 * then optionally '.' and one or more fraction digits (any number; truncated to the
 * millisecond, never rounded), then 'Z', 'z' or an offset +hh:mm / -hh:mm.
 * Ranges: month 1-12, day within the month (leap years by the Gregorian rule), hour
 * 0-23, minute 0-59, second 0-60, offset hours 0-23 and minutes 0-59. Second 60 is
 * only a leap second (RFC 3339 section 5.7): 23:59:60 UTC, after the offset is applied,
 * on the last day of a month; any other :60 is refused. A leap second is kept inside its
 * minute as :59.999 (the fraction is ignored), so that times stay ordered and never
 * spill into the next minute or day.
 * The result, after applying the offset, must lie in years 0000-9999 UTC
 * [VG_TIME_MIN_MS, VG_TIME_MAX_MS].
 */
#include <stdio.h>
#include <string.h>

#include "engine/event.h"
#include "rules/civil.h"
#include "rules/errors.h"

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static unsigned days_in_month(int64_t y, unsigned m) {
    static const unsigned char dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at s[*i]; returns -1 when they are not all digits. */
static int digits(const char *s, size_t len, size_t *i, int n) {
    int v = 0;
    if (*i + (size_t)n > len) return -1;
    for (int k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[*i + (size_t)k];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    return v;
}

static int fail(char *errbuf, size_t errlen, const char *msg) {
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", msg);
    return VG_EINVAL;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* 1 when every byte of x that mask m selects (0xff bytes) is an ASCII digit: its high
 * nibble is 3 and its low nibble plus 6 does not carry into the high one. */
static inline int swar_digits(uint64_t x, uint64_t m) {
    const uint64_t hi = 0xF0F0F0F0F0F0F0F0ULL & m, three = 0x3030303030303030ULL & m;
    x &= m;
    return (x & hi) == three && ((x + (0x0606060606060606ULL & m)) & hi) == three;
}
#endif

int vg_time_parse_canonical(const char *s, size_t len, int64_t *ms) {
    if (len != 24) return 0;
    int year;
    unsigned mon, day, hh, mm, ss, msec;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* three 8-byte words, "YYYY-MM-", "DDTHH:MM", ":SS.mmmZ": the separators compared
     * and the 17 digits checked a word at a time, each digit its byte's low nibble */
    uint64_t w0, w1, w2;
    memcpy(&w0, s, 8);
    memcpy(&w1, s + 8, 8);
    memcpy(&w2, s + 16, 8);
    const uint64_t m0 = 0xFF0000FF00000000ULL,   /* the separators: bytes 4, 7 */
        m1 = 0x0000FF0000FF0000ULL,              /* bytes 2, 5 */
        m2 = 0xFF000000FF0000FFULL;              /* bytes 0, 3, 7 */
    if ((w0 & m0) != (((uint64_t)'-' << 32) | ((uint64_t)'-' << 56)) ||
        (w1 & m1) != (((uint64_t)'T' << 16) | ((uint64_t)':' << 40)) ||
        (w2 & m2) != ((uint64_t)':' | ((uint64_t)'.' << 24) | ((uint64_t)'Z' << 56)) ||
        !swar_digits(w0, ~m0) || !swar_digits(w1, ~m1) || !swar_digits(w2, ~m2))
        return 0;
#define DIG(w, i) ((unsigned)((w) >> (8 * (i))) & 0x0Fu)
    year = (int)(DIG(w0, 0) * 1000 + DIG(w0, 1) * 100 + DIG(w0, 2) * 10 + DIG(w0, 3));
    mon = DIG(w0, 5) * 10 + DIG(w0, 6);
    day = DIG(w1, 0) * 10 + DIG(w1, 1);
    hh = DIG(w1, 3) * 10 + DIG(w1, 4);
    mm = DIG(w1, 6) * 10 + DIG(w1, 7);
    ss = DIG(w2, 1) * 10 + DIG(w2, 2);
    msec = DIG(w2, 4) * 100 + DIG(w2, 5) * 10 + DIG(w2, 6);
#undef DIG
#else
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[23] != 'Z')
        return 0;
    static const unsigned char pos[17] = {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18,
                                          20, 21, 22};
    unsigned d[17];
    for (int k = 0; k < 17; k++) {
        unsigned c = (unsigned)(unsigned char)s[pos[k]] - '0';
        if (c > 9) return 0;
        d[k] = c;
    }
    year = (int)(d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3]);
    mon = d[4] * 10 + d[5];
    day = d[6] * 10 + d[7];
    hh = d[8] * 10 + d[9];
    mm = d[10] * 10 + d[11];
    ss = d[12] * 10 + d[13];
    msec = d[14] * 100 + d[15] * 10 + d[16];
#endif
    /* out of range, or a leap second: the general parser decides (and explains) */
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hh > 23 ||
        mm > 59 || ss > 59)
        return 0;
    int64_t days = vg_days_from_civil(year, mon, day);
    int64_t r = (days * 86400 + hh * 3600 + mm * 60 + ss) * 1000 + msec;
    if (r < VG_TIME_MIN_MS || r > VG_TIME_MAX_MS) return 0;
    *ms = r;
    return 1;
}

int vg_time_parse(const char *s, size_t len, int64_t *ms, char *errbuf, size_t errlen) {
    if (vg_time_parse_canonical(s, len, ms)) return 0;
    char tmp[96];
    size_t i = 0;
    int year, mon, day, hh, mm, ss, msec = 0;

    if ((year = digits(s, len, &i, 4)) < 0 || i >= len || s[i++] != '-' ||
        (mon = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != '-' ||
        (day = digits(s, len, &i, 2)) < 0)
        return fail(errbuf, errlen, "expected a date YYYY-MM-DD at the start");
    if (mon < 1 || mon > 12) {
        snprintf(tmp, sizeof tmp, "month %02d out of range 01-12", mon);
        return fail(errbuf, errlen, tmp);
    }
    if (day < 1 || (unsigned)day > days_in_month(year, (unsigned)mon)) {
        snprintf(tmp, sizeof tmp, "day %02d out of range for %04d-%02d (01-%02u)", day, year,
                 mon, days_in_month(year, (unsigned)mon));
        return fail(errbuf, errlen, tmp);
    }
    if (i == len) return fail(errbuf, errlen, "date without a time");
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
        return fail(errbuf, errlen, "expected 'T', 't' or a space between date and time");
    i++;
    if ((hh = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != ':' ||
        (mm = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != ':' ||
        (ss = digits(s, len, &i, 2)) < 0)
        return fail(errbuf, errlen, "expected a time HH:MM:SS after the date");
    if (hh > 23) {
        snprintf(tmp, sizeof tmp, "hour %02d out of range 00-23", hh);
        return fail(errbuf, errlen, tmp);
    }
    if (mm > 59) {
        snprintf(tmp, sizeof tmp, "minute %02d out of range 00-59", mm);
        return fail(errbuf, errlen, tmp);
    }
    if (ss > 60) {
        snprintf(tmp, sizeof tmp, "second %02d out of range 00-60", ss);
        return fail(errbuf, errlen, tmp);
    }
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start < 3) msec = msec * 10 + (s[i] - '0');
            i++;
        }
        if (i == start) return fail(errbuf, errlen, "expected digits after '.'");
        for (size_t k = i - start; k < 3; k++) msec *= 10;
    }
    int leap = ss == 60;
    if (leap) { /* leap second: the last millisecond of the minute (checked below) */
        ss = 59;
        msec = 999;
    }
    if (i == len) return fail(errbuf, errlen, "time zone missing (expected Z or an offset like +01:00)");
    int off_min = 0;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int sign = s[i++] == '-' ? -1 : 1;
        int oh, om;
        if ((oh = digits(s, len, &i, 2)) < 0 || i >= len || s[i++] != ':' ||
            (om = digits(s, len, &i, 2)) < 0)
            return fail(errbuf, errlen, "expected a time zone offset +hh:mm or -hh:mm");
        if (oh > 23) {
            snprintf(tmp, sizeof tmp, "offset hours %02d out of range 00-23", oh);
            return fail(errbuf, errlen, tmp);
        }
        if (om > 59) {
            snprintf(tmp, sizeof tmp, "offset minutes %02d out of range 00-59", om);
            return fail(errbuf, errlen, tmp);
        }
        off_min = sign * (oh * 60 + om);
    } else {
        return fail(errbuf, errlen, "expected 'Z', 'z' or an offset like +01:00 after the time");
    }
    if (i != len) return fail(errbuf, errlen, "unexpected text after the time zone");

    int64_t days = vg_days_from_civil(year, (unsigned)mon, (unsigned)day);
    int64_t secs = days * 86400 + hh * 3600 + mm * 60 + ss - (int64_t)off_min * 60;
    int64_t r = secs * 1000 + msec;
    if (leap) {
        /* RFC 3339 section 5.7: 60 only for a leap second, which is 23:59:60 UTC on the
         * last day of a month (after the offset is applied) */
        int64_t next = secs + 1, nd = next >= 0 ? next / 86400 : -((-next + 86399) / 86400);
        int64_t y;
        unsigned m, d;
        vg_civil_from_days(nd, &y, &m, &d);
        if (next - nd * 86400 != 0 || d != 1) {
            int64_t u = (secs % 86400 + 86400) % 86400;   /* into its UTC day */
            char lt[128];
            snprintf(lt, sizeof lt, "second 60 only for a leap second, 23:59:60 UTC at the "
                     "end of a month (this is %02d:%02d:60 UTC)", (int)(u / 3600 % 24),
                     (int)(u / 60 % 60));
            return fail(errbuf, errlen, lt);
        }
    }
    if (r < VG_TIME_MIN_MS || r > VG_TIME_MAX_MS)
        return fail(errbuf, errlen, "time out of range (years 0000-9999 UTC)");
    *ms = r;
    return 0;
}

static void put2(char *p, unsigned v) {
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

size_t vg_time_format(int64_t ms, char *buf) {
    if (ms < VG_TIME_MIN_MS) ms = VG_TIME_MIN_MS;
    if (ms > VG_TIME_MAX_MS) ms = VG_TIME_MAX_MS;
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rem = ms - days * 86400000; /* 0 .. 86399999 */
    int64_t y;
    unsigned m, d;
    vg_civil_from_days(days, &y, &m, &d);
    unsigned yy = (unsigned)y, msec = (unsigned)(rem % 1000), sec = (unsigned)(rem / 1000);
    put2(buf, yy / 100);
    put2(buf + 2, yy % 100);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '-';
    put2(buf + 8, d);
    buf[10] = 'T';
    put2(buf + 11, sec / 3600);
    buf[13] = ':';
    put2(buf + 14, sec / 60 % 60);
    buf[16] = ':';
    put2(buf + 17, sec % 60);
    buf[19] = '.';
    buf[20] = (char)('0' + msec / 100);
    put2(buf + 21, msec % 100);
    buf[23] = 'Z';
    buf[24] = '\0';
    return 24;
}
