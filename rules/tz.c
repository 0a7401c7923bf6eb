/* tz.c - TZif reader and offset lookup (see tz.h).
 *
 * TZif (RFC 8536): a v1 block with 32-bit times, then for v2+ a second header and
 * block with 64-bit times, which is the one read here. Only the transition times, the
 * type index of each transition and the types' UT offsets are used.
 */
#include "rules/tz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    uint32_t timecnt = be32(h + 32), typecnt = be32(h + 36);
    if (typecnt == 0 || typecnt > 256 || timecnt > 100000) goto bad;
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
    if (!tz || tz->n == 0 || t < tz->at[0]) return tz ? tz->off0 : 0;
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
