/* tz.c - TZif reader and offset lookup (see tz.h).
 *
 * TZif (RFC 8536): a v1 block with 32-bit times, then for v2+ a second header and
 * block with 64-bit times, which is the one read here, and a footer: a POSIX TZ string
 * between newlines (RFC 8536 section 3.3) for the times after the last transition.
 * Only the transition times, the type index of each transition, the types' UT offsets
 * and DST flags, and the footer are used.
 */
#include "rules/tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/civil.h"
#include "rules/errors.h"

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p) {
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static int fixed(vg_tz_t *tz, const char *s, size_t n) {
    if (n == 3 && memcmp(s, "UTC", 3) == 0) return 0;
    if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return -1;
    for (int i = 1; i < 6; i++)
        if (i != 3 && (s[i] < '0' || s[i] > '9')) return -1;
    int h = (s[1] - '0') * 10 + (s[2] - '0'), m = (s[4] - '0') * 10 + (s[5] - '0');
    if (h > 18 || m > 59) return -1;
    tz->off0 = (h * 3600 + m * 60) * (s[0] == '-' ? -1 : 1);
    return 0;
}

/* ---- the footer: a POSIX TZ string ---------------------------------------------- */

/* A zone abbreviation: <...> or 1+ letters. */
static const char *tzs_name(const char *s) {
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e && e > s + 1 ? e + 1 : NULL;
    }
    const char *b = s;
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) s++;
    return s > b ? s : NULL;
}

/* [+-]h[h[h]][:mm[:ss]] with hours 0..maxh, into *secs. */
static const char *tzs_secs(const char *s, int maxh, int32_t *secs) {
    int sign = 1;
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    int v[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        if (k && *s != ':') break;
        if (k) s++;
        int nd = 0;
        while (*s >= '0' && *s <= '9' && nd < 3) v[k] = v[k] * 10 + (*s++ - '0'), nd++;
        if (nd == 0 || (k && (nd != 2 || v[k] > 59))) return NULL;
    }
    if (v[0] > maxh) return NULL;
    *secs = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    return s;
}

static const char *tzs_num(const char *s, int lo, int hi, int *v) {
    int nd = 0;
    *v = 0;
    while (*s >= '0' && *s <= '9' && nd < 4) *v = *v * 10 + (*s++ - '0'), nd++;
    return nd && *v >= lo && *v <= hi ? s : NULL;
}

/* A rule date with its optional /time. */
static const char *tzs_date(const char *s, vg_tz_date_t *d) {
    int a, b, c;
    memset(d, 0, sizeof *d);
    if (*s == 'J') {
        if (!(s = tzs_num(s + 1, 1, 365, &a))) return NULL;
        d->kind = 'J';
        d->n = (int16_t)a;
    } else if (*s == 'M') {
        if (!(s = tzs_num(s + 1, 1, 12, &a)) || *s++ != '.' || !(s = tzs_num(s, 1, 5, &b)) ||
            *s++ != '.' || !(s = tzs_num(s, 0, 6, &c)))
            return NULL;
        d->kind = 'M';
        d->m = (uint8_t)a;
        d->w = (uint8_t)b;
        d->d = (uint8_t)c;
    } else {
        if (!(s = tzs_num(s, 0, 365, &a))) return NULL;
        d->kind = 'n';
        d->n = (int16_t)a;
    }
    d->secs = 7200;
    if (*s == '/') s = tzs_secs(s + 1, 167, &d->secs);
    return s;
}

/* Parses TZ string s (NUL-terminated) into tz's footer. Returns 0, or -1 when malformed. */
static int tzs_parse(vg_tz_t *tz, const char *s) {
    int32_t o;
    if (!*s) return 0;   /* an empty footer: no rule */
    if (!(s = tzs_name(s)) || !(s = tzs_secs(s, 24, &o))) return -1;
    tz->std_off = -o;
    if (!*s) {
        tz->rule = 1;
        return 0;
    }
    if (!(s = tzs_name(s))) return -1;
    tz->dst_off = tz->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = tzs_secs(s, 24, &o))) return -1;
        tz->dst_off = -o;
    }
    if (!*s) {   /* no rule: POSIX leaves it to the implementation; glibc's US rule */
        tz->start = (vg_tz_date_t){'M', 3, 2, 0, 0, 7200};
        tz->end = (vg_tz_date_t){'M', 11, 1, 0, 0, 7200};
    } else if (*s++ != ',' || !(s = tzs_date(s, &tz->start)) || *s++ != ',' ||
               !(s = tzs_date(s, &tz->end)) || *s) {
        return -1;
    }
    tz->rule = 2;
    return 0;
}

static int64_t year_of_days(int64_t z) {
    int64_t y;
    unsigned m, d;
    vg_civil_from_days(z, &y, &m, &d);
    return y;
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Local seconds from the epoch (as if UTC) of rule date d in year y. */
static int64_t rule_local(const vg_tz_date_t *d, int64_t y) {
    int64_t day;
    if (d->kind == 'J') {
        day = vg_days_from_civil(y, 1, 1) + d->n - 1 + (is_leap(y) && d->n >= 60);
    } else if (d->kind == 'n') {
        day = vg_days_from_civil(y, 1, 1) + d->n;
    } else {
        int64_t first = vg_days_from_civil(y, d->m, 1);
        int64_t next = d->m == 12 ? vg_days_from_civil(y + 1, 1, 1) : vg_days_from_civil(y, d->m + 1, 1);
        int64_t wd = ((first + 4) % 7 + 7) % 7;    /* 1970-01-01 was a Thursday; 0 Sunday */
        day = first + ((d->d - wd) % 7 + 7) % 7 + 7 * (d->w - 1);
        while (day >= next) day -= 7;
    }
    return day * 86400 + d->secs;
}

/* The footer's offset at epoch second s: the state after the latest transition at or
 * before s among those of the year of s and the years around it (a start and an end at
 * the same instant: dst goes on). */
static int32_t footer_offset(const vg_tz_t *tz, int64_t s) {
    if (tz->rule == 1) return tz->std_off;
    int64_t l = s + tz->std_off;
    int64_t y = year_of_days(l / 86400 - (l % 86400 < 0));
    int64_t best = INT64_MIN;
    int dst = 0;
    for (int64_t yy = y - 1; yy <= y + 1; yy++) {
        int64_t a = rule_local(&tz->start, yy) - tz->std_off;
        int64_t b = rule_local(&tz->end, yy) - tz->dst_off;
        if (b <= s && b > best) best = b, dst = 0;
        if (a <= s && a >= best) best = a, dst = 1;
    }
    return dst ? tz->dst_off : tz->std_off;
}

int vg_tz_load(vg_tz_t *tz, const char *name, size_t len, char *errbuf, size_t errlen) {
    memset(tz, 0, sizeof *tz);
    if (fixed(tz, name, len) == 0) return 0;
    if (len == 0 || len > 200 || name[0] == '/' || memchr(name, 0, len)) {
        snprintf(errbuf, errlen, "bad time zone name");
        return VG_EINVAL;
    }
    for (size_t i = 0; i + 1 < len; i++)
        if (name[i] == '.' && name[i + 1] == '.') {
            snprintf(errbuf, errlen, "bad time zone name");
            return VG_EINVAL;
        }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%.*s", dir && *dir ? dir : "/usr/share/zoneinfo", (int)len,
             name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errbuf, errlen, "unknown time zone \"%.*s\" (no %s)", (int)len, name, path);
        return VG_ENOTFOUND;
    }
    unsigned char *b = malloc(1 << 20);
    size_t n = b ? fread(b, 1, 1 << 20, f) : 0;
    fclose(f);
    if (!b) return VG_ENOMEM;
    int rc = VG_EINVAL;
    /* header: "TZif" ver(1) 15 reserved, six counts */
    if (n < 44 || memcmp(b, "TZif", 4) != 0) goto bad;
    size_t pos = 0;
    int tsize = 4;
    if (b[4] >= '2') {   /* skip the v1 block */
        uint32_t isut = be32(b + 20), isstd = be32(b + 24), leap = be32(b + 28),
                 timecnt = be32(b + 32), typecnt = be32(b + 36), charcnt = be32(b + 40);
        size_t v1 = (size_t)timecnt * 5 + (size_t)typecnt * 6 + charcnt + (size_t)leap * 8 +
                    isstd + isut;
        pos = 44 + v1;
        tsize = 8;
        if (pos + 44 > n || memcmp(b + pos, "TZif", 4) != 0) goto bad;
    }
    const unsigned char *h = b + pos;
    uint32_t isutcnt = be32(h + 20), isstdcnt = be32(h + 24), leapcnt = be32(h + 28),
             timecnt = be32(h + 32), typecnt = be32(h + 36), charcnt = be32(h + 40);
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000 || charcnt > 65536 ||
        leapcnt > 100000 || isutcnt > typecnt || isstdcnt > typecnt)
        goto bad;
    const unsigned char *times = h + 44;
    const unsigned char *idx = times + (size_t)timecnt * tsize;
    const unsigned char *types = idx + timecnt;
    if ((size_t)(types + (size_t)typecnt * 6 - b) > n) goto bad;
    tz->at = malloc(sizeof(int64_t) * (timecnt + 1));
    tz->off = malloc(sizeof(int32_t) * (timecnt + 1));
    if (!tz->at || !tz->off) { rc = VG_ENOMEM; goto fail; }
    for (uint32_t i = 0; i < timecnt; i++) {
        int64_t t = tsize == 8 ? be64(times + (size_t)i * 8) : (int32_t)be32(times + (size_t)i * 4);
        if (idx[i] >= typecnt) goto bad;
        if (t > INT64_MAX / 1000 || t < INT64_MIN / 1000) continue;
        tz->at[tz->n] = t * 1000;
        tz->off[tz->n] = (int32_t)be32(types + (size_t)idx[i] * 6);
        tz->n++;
    }
    if (tsize == 8) {   /* the footer: "\n" TZ string "\n" after the v2+ data block */
        size_t f0 = (size_t)(types - b) + (size_t)typecnt * 6 + charcnt + (size_t)leapcnt * 12 +
                    isstdcnt + isutcnt;
        const unsigned char *nl = f0 < n ? memchr(b + f0 + 1, '\n', n - f0 - 1) : NULL;
        char tzs[128];
        size_t fl = nl ? (size_t)(nl - b) - f0 - 1 : 0;
        if (!nl || b[f0] != '\n' || fl >= sizeof tzs) goto bad;
        memcpy(tzs, b + f0 + 1, fl);
        tzs[fl] = 0;
        if (memchr(tzs, 0, fl) || tzs_parse(tz, tzs) != 0) {
            snprintf(errbuf, errlen, "%s is not a valid TZif file (bad TZ string \"%.60s\")",
                     path, tzs);
            rc = VG_EINVAL;
            goto fail;
        }
    }
    /* before the first transition: the first non-DST type (RFC 8536 3.2), else type 0 */
    tz->off0 = (int32_t)be32(types);
    for (uint32_t i = 0; i < typecnt; i++)
        if (!types[i * 6 + 4]) { tz->off0 = (int32_t)be32(types + (size_t)i * 6); break; }
    free(b);
    return 0;
bad:
    snprintf(errbuf, errlen, "%s is not a valid TZif file", path);
fail:
    free(b);
    vg_tz_free(tz);
    return rc;
}

void vg_tz_free(vg_tz_t *tz) {
    if (!tz) return;
    free(tz->at);
    free(tz->off);
    memset(tz, 0, sizeof *tz);
}

int32_t vg_tz_offset(const vg_tz_t *tz, int64_t t) {
    if (!tz) return 0;
    if (tz->rule && (tz->n == 0 || t > tz->at[tz->n - 1]))
        return footer_offset(tz, t / 1000 - (t % 1000 < 0));
    if (tz->n == 0 || t < tz->at[0]) return tz->off0;
    uint32_t lo = 0, hi = tz->n;   /* the last transition at or before t */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t) lo = mid;
        else hi = mid;
    }
    return tz->off[lo];
}

/* Floor division of local epoch ms. */
static int64_t local_secs(const vg_tz_t *tz, int64_t t) {
    int64_t s = t / 1000 - (t % 1000 < 0);
    return s + vg_tz_offset(tz, t);
}

int vg_tz_hour(const vg_tz_t *tz, int64_t t) {
    int64_t s = local_secs(tz, t) % 86400;
    if (s < 0) s += 86400;
    return (int)(s / 3600);
}

int vg_tz_dow(const vg_tz_t *tz, int64_t t) {
    int64_t s = local_secs(tz, t);
    int64_t d = s / 86400 - (s % 86400 < 0);
    /* 1970-01-01 was a Thursday (4) */
    int64_t w = (d + 3) % 7;
    if (w < 0) w += 7;
    return (int)w + 1;
}
