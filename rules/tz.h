/* tz.h - named time zones for hour_of_day() and day_of_week(), read once at compile time.
 *
 * A zone is loaded from the system's tz database (TZif files under /usr/share/zoneinfo,
 * or $TZDIR) when a ruleset is compiled; evaluation then only searches its transition
 * table, so it never calls localtime(), setenv() or the C library's global zone state.
 * Times after the file's last transition use the last offset (Debian ships "fat" TZif
 * files whose transitions run to 2037). "UTC" and fixed offsets "+hh:mm"/"-hh:mm" need
 * no file.
 *
 * Ownership: vg_tz_load() returns a zone the caller frees with vg_tz_free(); a loaded
 * zone is immutable and may be read by any number of threads.
 */
#ifndef VG_TZ_H
#define VG_TZ_H

#include <stddef.h>
#include <stdint.h>

/* A date of a TZ string rule (POSIX): Jn (1..365, Feb 29 never counted), n (0..365,
 * Feb 29 counted) or Mm.w.d (day d, 0 = Sunday, of week w, 5 = last, of month m), at
 * `secs` local time (-167h .. 167h, default 2:00). */
typedef struct vg_tz_date {
    uint8_t kind;       /* 'J', 'n' or 'M' */
    uint8_t m, w, d;
    int16_t n;
    int32_t secs;
} vg_tz_date_t;

typedef struct vg_tz {
    int64_t *at;        /* transition times, epoch ms, ascending (malloc) */
    int32_t *off;       /* UTC offset in seconds from at[i] on (malloc) */
    uint32_t n;
    int32_t off0;       /* offset before the first transition (or the fixed offset) */
    uint8_t rule;       /* footer: 0 none (last offset), 1 std only, 2 std and dst */
    int32_t std_off, dst_off;          /* footer UTC offsets, seconds east */
    vg_tz_date_t start, end;           /* footer: dst from start to end, local times */
} vg_tz_t;

/* Loads zone `name` (len bytes, e.g. "Europe/Paris", "UTC", "+05:30") into *tz.
 * Returns 0, or VG_ENOTFOUND / VG_EINVAL (a name with "..", a bad file) with a reason in
 * errbuf, or VG_ENOMEM. */
int vg_tz_load(vg_tz_t *tz, const char *name, size_t len, char *errbuf, size_t errlen);
void vg_tz_free(vg_tz_t *tz);   /* accepts NULL and a zeroed zone */

/* The UTC offset in seconds at epoch ms t. Can't fail. */
int32_t vg_tz_offset(const vg_tz_t *tz, int64_t t);

/* Hour of day 0..23 and ISO day of week 1 (Monday) .. 7 (Sunday) of epoch ms t in tz
 * (NULL: UTC). Can't fail. */
int vg_tz_hour(const vg_tz_t *tz, int64_t t);
int vg_tz_dow(const vg_tz_t *tz, int64_t t);

#endif
