/* it_diff.c - differential test of the engine against a brute-force reference.
 *
 *   it_diff gen   --seed S --events N --out FILE [--lateness DUR]
 *   it_diff check --input FILE --output FILE [--lateness DUR] [--horizon DUR]
 *   it_diff expect --input FILE --output FILE [...]   (writes the reference's own lines)
 *
 * `gen` writes a randomized NDJSON stream (few accounts, cards and merchants so that
 * windows are dense; jittered, out-of-order, late, equal and mixed-format timestamps;
 * duplicates; malformed, blank and oversized lines; optional fields often missing; an
 * extra field `risk`). `check` reads that stream and the lines `vigil replay --rules
 * tests/integration/diff.vrl` wrote for it, and recomputes every decision from SPEC
 * sections 1-3 and the team's common brief, by brute force over the list of all
 * accepted events: validation and reject codes, duplicates (byte-identical original
 * line), lateness, every feature of diff.vrl, and the shortest printing of numbers.
 *
 * The reference is written independently of engine/ and rules/: it only links jansson
 * (to parse JSON) and libm. The features of diff.vrl are hand-coded in compute();
 * keep FEATURES and diff.vrl in step.
 *
 * Exit status: 0 when everything agrees, 1 on any mismatch, 2 on a usage or I/O error.
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define MAX_LINE 65536           /* SPEC section 1: bytes, newline excluded */
#define MS_S 1000LL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)

/* ------------------------------------------------------------------ utilities */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "it_diff: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die("out of memory");
    return q;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xrealloc(NULL, n);
    memcpy(p, s, n);
    return p;
}

/* A formatted string of at most 1 KiB (all the generator needs), to free(). */
static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        die("xprintf: too long");
    return xstrdup(buf);
}

/* splitmix64: deterministic for a seed on every platform. */
typedef struct { uint64_t s; } rng_t;

static uint64_t rnext(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double runi(rng_t *r) { return (double)(rnext(r) >> 11) / 9007199254740992.0; }
static int64_t rint64(rng_t *r, int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)(rnext(r) % (uint64_t)(hi - lo + 1));
}

/* Durations: 500ms, 30s, 10m, 1h, 1d. Returns -1 when malformed. */
static int64_t parse_dur(const char *s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return -1;
    if (!strcmp(end, "ms")) return v;
    if (!strcmp(end, "s")) return v * MS_S;
    if (!strcmp(end, "m")) return v * MS_M;
    if (!strcmp(end, "h")) return v * MS_H;
    if (!strcmp(end, "d")) return v * MS_D;
    return -1;
}

/* ------------------------------------------------------------------ time */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* Splits epoch ms (local time already shifted) into civil fields. */
static void split_ms(int64_t ms, int *y, int *mo, int *d, int *h, int *mi, int *s, int *frac)
{
    int64_t days = ms >= 0 ? ms / MS_D : -((-ms + MS_D - 1) / MS_D);
    int64_t rem = ms - days * MS_D;
    civil_from_days(days, y, mo, d);
    *h = (int)(rem / MS_H);
    *mi = (int)(rem / MS_M % 60);
    *s = (int)(rem / MS_S % 60);
    *frac = (int)(rem % MS_S);
}

/* The output form: RFC 3339 UTC with milliseconds. */
static void fmt_utc(int64_t ms, char out[32])
{
    int y, mo, d, h, mi, s, f;
    split_ms(ms, &y, &mo, &d, &h, &mi, &s, &f);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s, f);
}

static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        *v = *v * 10 + (s[i] - '0');
    }
    return 0;
}

/* RFC 3339 as SPEC section 1 allows it: T, t or space; Z, z or +-hh:mm; any number of
 * fraction digits, kept (truncated) to the millisecond. Returns 0 or -1. */
static int parse_rfc3339(const char *s, size_t n, int64_t *out)
{
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0, ms = 0;
    if (n < 20)
        return -1;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se))
        return -1;
    size_t i = 19;
    if (i < n && s[i] == '.') {
        size_t k = ++i;
        while (i < n && isdigit((unsigned char)s[i])) {
            if (i - k < 3)
                ms = ms * 10 + (s[i] - '0');
            i++;
        }
        if (i == k)
            return -1;
        for (size_t j = i - k; j < 3; j++)
            ms *= 10;
    }
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        sign = s[i] == '+' ? 1 : -1;
        if (n - i < 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || digits(s + i + 4, 2, &om))
            return -1;
        i += 6;
    } else {
        return -1;
    }
    if (i != n)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        se > 59 || oh > 23 || om > 59)
        return -1;
    int64_t t = days_from_civil(y, mo, d) * MS_D + h * MS_H + mi * MS_M + se * MS_S + ms;
    t -= sign * (oh * MS_H + om * MS_M);
    *out = t;
    return 0;
}

/* ================================================================== generator */

#define G_ACCTS 100   /* at most; --accounts, default 30 */
#define G_CARDS 36
#define G_MERCH 12
static const char *COUNTRIES[] = {"US", "CA", "GB", "FR", "DE", "BR", "IN", "JP"};
static const char *CHANNELS[] = {"ecom", "pos", "atm"};

typedef struct { char key[16]; char *val; } kv_t;
typedef struct { kv_t kv[32]; int n; } obj_t;

static void obj_set(obj_t *o, const char *key, char *val /* takes ownership */)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->kv[i].key, key)) {
            free(o->kv[i].val);
            o->kv[i].val = val;
            return;
        }
    snprintf(o->kv[o->n].key, sizeof o->kv[0].key, "%s", key);
    o->kv[o->n++].val = val;
}

static void obj_del(obj_t *o, const char *key)
{
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->kv[i].key, key)) {
            free(o->kv[i].val);
            o->kv[i] = o->kv[--o->n];
            return;
        }
}

static void obj_free(obj_t *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->kv[i].val);
    o->n = 0;
}

/* Serializes in the keys' order, compact or with spaces. */
static char *obj_plain(const obj_t *o, int spaced)
{
    size_t len = 3;
    for (int i = 0; i < o->n; i++)
        len += strlen(o->kv[i].key) + strlen(o->kv[i].val) + 8;
    char *p = xrealloc(NULL, len), *w = p;
    *w++ = '{';
    for (int i = 0; i < o->n; i++)
        w += sprintf(w, "%s\"%s\":%s%s", i ? (spaced ? ", " : ",") : "", o->kv[i].key,
                     spaced ? " " : "", o->kv[i].val);
    *w++ = '}';
    *w = 0;
    return p;
}

/* Serializes with the keys in their order or shuffled, with or without spaces. */
static char *obj_text(obj_t *o, rng_t *r)
{
    if (runi(r) < 0.2)
        for (int i = o->n - 1; i > 0; i--) {
            int j = (int)rint64(r, 0, i);
            kv_t t = o->kv[i];
            o->kv[i] = o->kv[j];
            o->kv[j] = t;
        }
    return obj_plain(o, runi(r) < 0.1);
}

typedef struct {
    int cards[2];
    int64_t newest;       /* the generator's own idea of the account's newest time */
    double lat, lon;
    char last_amount[40]; /* repeated amounts: a stddev of exactly 0 */
    int64_t *times;       /* every time emitted for the account (window boundaries) */
    size_t ntimes, captimes;
} gacct_t;

typedef struct {
    char *id_lit, *alt_lit; /* two spellings of the same id (alt may equal id_lit) */
    int acct;
    int64_t ts;
} ghist_t;

typedef struct {
    rng_t r;
    uint64_t seed;
    int64_t T, lateness;
    gacct_t a[G_ACCTS];
    int naccts;
    int last_acct;
    long next_id;
    ghist_t *hist;
    size_t nhist, caphist;
    ghist_t pending[8];     /* rejected ids to re-send corrected */
    int npending;
    FILE *out;
} gen_t;

/* A timestamp literal for ms in one of the accepted forms; *ms may be moved down to
 * the precision the form keeps. */
static char *ts_literal(gen_t *g, int64_t *ms)
{
    rng_t *r = &g->r;
    double u = runi(r);
    if (u < 0.15)
        return xprintf("%" PRId64, *ms);
    static const int offs[] = {120, -330, 0, 840, -720, 345, -60};
    int off = 0, y, mo, d, h, mi, s, f;
    char sep = 'T', z = 'Z';
    if (u < 0.27)
        off = offs[rint64(r, 0, 6)];
    else if (u < 0.32)
        sep = 't', z = 'z';
    else if (u < 0.37)
        sep = ' ';
    double v = runi(r);
    char frac[16];
    if (v < 0.55) {
        split_ms(*ms + off * MS_M, &y, &mo, &d, &h, &mi, &s, &f);
        snprintf(frac, sizeof frac, ".%03d", f);
    } else if (v < 0.65) {
        *ms -= *ms % 1000;
        split_ms(*ms + off * MS_M, &y, &mo, &d, &h, &mi, &s, &f);
        frac[0] = 0;
    } else if (v < 0.75) {
        *ms -= *ms % 100;
        split_ms(*ms + off * MS_M, &y, &mo, &d, &h, &mi, &s, &f);
        snprintf(frac, sizeof frac, ".%d", f / 100);
    } else {   /* more digits than kept: truncated to the millisecond */
        split_ms(*ms + off * MS_M, &y, &mo, &d, &h, &mi, &s, &f);
        snprintf(frac, sizeof frac, ".%03d%0*d", f, v < 0.9 ? 3 : 6,
                 (int)rint64(r, 0, v < 0.9 ? 999 : 999999));
    }
    char zone[16];
    if (off == 0 && runi(r) < 0.8)
        snprintf(zone, sizeof zone, "%c", z);
    else
        snprintf(zone, sizeof zone, "%c%02d:%02d", off < 0 ? '-' : '+', abs(off) / 60, abs(off) % 60);
    return xprintf("\"%04d-%02d-%02d%c%02d:%02d:%02d%s%s\"", y, mo, d, sep, h, mi, s, frac, zone);
}

static char *amount_literal(rng_t *r, const char *last)
{
    double u = runi(r);
    if (u < 0.08 && last[0])
        return xstrdup(last);
    if (u < 0.085)      /* huge: sums must not keep its rounding once it left the window */
        return xprintf("%.2f", 1e8 + runi(r) * 1e10);
    if (u < 0.11) {      /* the same values in several spellings: distinct by value */
        static const char *forms[] = {"20", "20.0", "2e1", "100", "100.00", "1e2", "12", "12.0",
                                      "0.1", "0", "0.30000000000000004", "1.2e1"};
        return xstrdup(forms[rint64(r, 0, 11)]);
    }
    if (u < 0.43)
        return xprintf("%.2f", 0.5 + runi(r) * 24.5);
    if (u < 0.83)
        return xprintf("%.2f", 20 + runi(r) * 280);
    if (u < 0.91)
        return xprintf("%.2f", 300 + runi(r) * 2700);
    if (u < 0.96)
        return xprintf("%.2f", -(1 + runi(r) * 200));
    if (u < 0.98)
        return xprintf("%d", (int)rint64(r, 1, 400));
    return xprintf("%.17g", runi(r) * 1000);
}

/* A valid event of account a at time *ts (adjusted to the form's precision). */
static void build_event(gen_t *g, obj_t *o, int a, const char *id_lit, int64_t *ts)
{
    rng_t *r = &g->r;
    gacct_t *A = &g->a[a];
    o->n = 0;
    obj_set(o, "id", xstrdup(id_lit));
    obj_set(o, "account", xprintf("\"acct-%02d\"", a));
    obj_set(o, "ts", ts_literal(g, ts));
    obj_set(o, "amount", amount_literal(r, A->last_amount));
    snprintf(A->last_amount, sizeof A->last_amount, "%s", o->kv[o->n - 1].val);
    if (runi(r) < 0.9)
        obj_set(o, "merchant", xprintf("\"m-%02d\"", (int)rint64(r, 0, G_MERCH - 1)));
    if (runi(r) < 0.8)
        obj_set(o, "card", xprintf("\"card-%02d\"", A->cards[runi(r) < 0.7 ? 0 : 1]));
    if (runi(r) < 0.75) {
        if (runi(r) < 0.9)
            obj_set(o, "device", xprintf("\"dev-%02d-%d\"", a, (int)rint64(r, 0, 1)));
        else
            obj_set(o, "device", xprintf("\"dev-x%d\"", (int)rint64(r, 0, 999)));
    }
    if (runi(r) < 0.7)
        obj_set(o, "country", xprintf("\"%s\"", runi(r) < 0.85 ? COUNTRIES[a % 8] : COUNTRIES[rint64(r, 0, 7)]));
    if (runi(r) < 0.8)
        obj_set(o, "channel", xprintf("\"%s\"", CHANNELS[rint64(r, 0, 2)]));
    double u = runi(r);
    if (u < 0.6) {
        double lat = A->lat, lon = A->lon;
        if (runi(r) < 0.1)
            lat = runi(r) * 140 - 70, lon = runi(r) * 360 - 180;
        lat = fmin(90, fmax(-90, lat + (runi(r) - 0.5) * 0.1));
        lon = fmin(180, fmax(-180, lon + (runi(r) - 0.5) * 0.1));
        obj_set(o, "lat", xprintf("%.4f", lat));
        obj_set(o, "lon", xprintf("%.4f", lon));
    } else if (u < 0.65) {
        obj_set(o, "lat", xprintf("%.4f", A->lat));
    }
    u = runi(r);
    if (u < 0.45)
        obj_set(o, "risk", xprintf("%.3f", runi(r)));
    else if (u < 0.55)
        obj_set(o, "risk", xprintf("%d", (int)rint64(r, 0, 1)));
    else if (u < 0.6)
        obj_set(o, "risk", xstrdup("null"));
    if (runi(r) < 0.3)
        obj_set(o, "currency", xstrdup("\"USD\""));
    if (runi(r) < 0.1)
        obj_set(o, "attrs", xstrdup("{\"k\":[1,2,{\"x\":null}],\"s\":\"v\"}"));
    if (runi(r) < 0.1)
        obj_set(o, "type", xstrdup("\"authorization\""));
}

static void emit(gen_t *g, const char *line) { fputs(line, g->out); fputc('\n', g->out); }

static void remember(gen_t *g, const char *id_lit, const char *alt_lit, int a, int64_t ts)
{
    if (g->nhist == g->caphist) {
        g->caphist = g->caphist ? 2 * g->caphist : 1024;
        g->hist = xrealloc(g->hist, g->caphist * sizeof *g->hist);
    }
    g->hist[g->nhist++] = (ghist_t){xstrdup(id_lit), xstrdup(alt_lit), a, ts};
}

/* Emits one valid event of account a at time ts (tracks the account's newest). */
static void emit_event(gen_t *g, int a, const char *id_lit, const char *alt_lit, int64_t ts, int pad)
{
    obj_t o;
    build_event(g, &o, a, id_lit, &ts);
    if (pad > 0) {      /* filler so that the compact line is exactly `pad` bytes */
        obj_set(&o, "pad", xstrdup("\"\""));
        size_t len = 2 + (size_t)(o.n - 1);
        for (int i = 0; i < o.n; i++)
            len += strlen(o.kv[i].key) + 3 + strlen(o.kv[i].val);
        size_t fill = (size_t)pad - len;
        char *nv = xrealloc(NULL, fill + 3);
        nv[0] = '"';
        memset(nv + 1, 'p', fill);
        nv[fill + 1] = '"';
        nv[fill + 2] = 0;
        obj_set(&o, "pad", nv);
        char *line = obj_plain(&o, 0);
        if (strlen(line) != (size_t)pad)
            die("generator: padded line has %zu bytes, wanted %d", strlen(line), pad);
        emit(g, line);
        free(line);
    } else {
        char *line = obj_text(&o, &g->r);
        emit(g, line);
        free(line);
    }
    obj_free(&o);
    gacct_t *A = &g->a[a];
    if (ts > A->newest)
        A->newest = ts;
    if (A->ntimes == A->captimes) {
        A->captimes = A->captimes ? 2 * A->captimes : 256;
        A->times = xrealloc(A->times, A->captimes * sizeof *A->times);
    }
    A->times[A->ntimes++] = ts;
    remember(g, id_lit, alt_lit, a, ts);
}

static void new_id(gen_t *g, char **lit, char **alt)
{
    long n = g->next_id++;
    if (runi(&g->r) < 0.01) {   /* escapes: the same id spelled two ways */
        *lit = xprintf("\"t%" PRIu64 "-%ld-\\u00e9\\\"q\"", g->seed, n);
        *alt = xprintf("\"t%" PRIu64 "-%ld-\xc3\xa9\\\"q\"", g->seed, n);
    } else {
        *lit = xprintf("\"t%" PRIu64 "-%ld\"", g->seed, n);
        *alt = xstrdup(*lit);
    }
}

/* One malformed line (or a blank one). */
static void emit_malformed(gen_t *g, int a)
{
    rng_t *r = &g->r;
    obj_t o;
    char *lit, *alt;
    new_id(g, &lit, &alt);
    int64_t ts = g->T;
    build_event(g, &o, a, lit, &ts);
    int kind = (int)rint64(r, 0, 15), keep_id = 0;
    char *line = NULL;
    static const char *badts[] = {
        "\"2026-03-01T10:00:00\"", "\"2026-13-01T00:00:00Z\"", "\"2026-02-30T00:00:00Z\"",
        "\"2026-03-01T25:00:00Z\"", "\"2026-03-01\"", "\"2026-03-01T10:00Z\"",
        "\"2026-03-01T10:00:00.Z\"", "\"2026-03-01T10:00:00+2:00\"", "\"2026-03-01T10:00:00+02:60\"",
        "\"yesterday\"", "\"\"", "\"1772323200000\"", "\"2026-3-1T10:00:00Z\"",
        "\"2026-03-01T10:00:00ZZ\"", "\"2026-03-01T10:00:00+0200\"", "\"2027-02-29T00:00:00Z\"",
        "\"2026-03-01T10:60:00Z\"", "\"2026-03-01X10:00:00Z\""};
    switch (kind) {
    case 0: {            /* truncated JSON */
        char *t = obj_text(&o, r);
        t[rint64(r, 1, (int64_t)strlen(t) - 2)] = 0;
        line = t;
        break;
    }
    case 1: {            /* trailing garbage */
        char *t = obj_text(&o, r);
        line = xprintf("%s x", t);
        free(t);
        break;
    }
    case 2: {
        static const char *junk[] = {"not json", "nul", "{\"id\":}", "[1,2,3]", "\"just a string\"",
                                     "42", "{\"id\":\"x\",}", "{'id':'x'}", "{\"id\":NaN}",
                                     "{\"amount\":Infinity}"};
        line = xstrdup(junk[rint64(r, 0, 9)]);
        break;
    }
    case 3: {            /* a missing required field */
        static const char *req[] = {"id", "account", "ts", "amount"};
        int k = (int)rint64(r, 0, 3);
        obj_del(&o, req[k]);
        keep_id = k != 0;
        break;
    }
    case 4: {            /* mistyped fields */
        static const char *f[] = {"amount", "account", "id", "device", "lat", "merchant", "card",
                                  "amount", "country", "lon", "lat", "lon"};
        static const char *v[] = {"\"12.5\"", "5", "123", "7", "\"40.1\"", "true", "[]",
                                  "false", "{}", "\"x\"", "90.5", "-180.25"};
        int k = (int)rint64(r, 0, 11);
        obj_set(&o, f[k], xstrdup(v[k]));
        keep_id = k != 2;
        break;
    }
    case 5: case 6:      /* bad timestamps */
        obj_set(&o, "ts", xstrdup(badts[rint64(r, 0, 17)]));
        keep_id = 1;
        break;
    case 7: {            /* ts neither string nor integer */
        static const char *v[] = {"true", "1.7723232e12", "{}", "null", "[1]"};
        obj_set(&o, "ts", xstrdup(v[rint64(r, 0, 4)]));
        keep_id = 1;
        break;
    }
    case 8:              /* non-finite amount */
        obj_set(&o, "amount", xstrdup(runi(r) < 0.5 ? "1e400" : "-1.5e999"));
        keep_id = 1;
        break;
    case 9:              /* null required field */
        obj_set(&o, "amount", xstrdup("null"));
        keep_id = 1;
        break;
    case 10:             /* id or account out of range */
        if (runi(r) < 0.5) {
            char big[140];
            memset(big, 'i', 129);
            big[129] = 0;
            obj_set(&o, "id", xprintf("\"%s\"", big));
        } else if (runi(r) < 0.5) {
            obj_set(&o, "id", xstrdup("\"\""));
        } else {
            obj_set(&o, "account", xstrdup("\"\""));
            keep_id = 1;
        }
        break;
    case 11:             /* invalid UTF-8 */
        obj_set(&o, "merchant", xstrdup("\"m-\xff\xfe\""));
        break;
    case 12: case 13:    /* blank lines */
        line = xstrdup(runi(r) < 0.6 ? "" : "   \t ");
        break;
    default: {           /* a valid id at the maximum length, bad amount type */
        char big[140];
        memset(big, 'k', 128);
        big[128] = 0;
        obj_set(&o, "id", xprintf("\"%s\"", big));
        obj_set(&o, "amount", xstrdup("\"ten\""));
        break;
    }
    }
    if (!line)
        line = obj_text(&o, r);
    emit(g, line);
    free(line);
    obj_free(&o);
    if (keep_id && g->npending < 8)
        g->pending[g->npending++] = (ghist_t){lit, alt, a, g->T};
    else
        free(lit), free(alt);
}

static int cmd_gen(uint64_t seed, long n, const char *path, int64_t lateness, int naccts)
{
    gen_t g;
    memset(&g, 0, sizeof g);
    g.naccts = naccts;
    g.r.s = seed * 0x2545F4914F6CDD1DULL + 1;
    g.seed = seed;
    g.lateness = lateness;
    g.T = days_from_civil(2026, 3, 1) * MS_D + (int64_t)rint64(&g.r, 0, 999);
    g.out = fopen(path, "w");
    if (!g.out)
        die("cannot write %s", path);
    for (int a = 0; a < g.naccts; a++) {
        g.a[a].cards[0] = (int)rint64(&g.r, 0, G_CARDS - 1);
        g.a[a].cards[1] = (int)rint64(&g.r, 0, G_CARDS - 1);
        g.a[a].lat = runi(&g.r) * 120 - 60;
        g.a[a].lon = runi(&g.r) * 340 - 170;
        g.a[a].newest = INT64_MIN / 2;
    }
    long exact_at = n / 3, big_every = 7919;
    for (long i = 0; i < n; i++) {
        rng_t *r = &g.r;
        double u = runi(r);
        /* advance the clock */
        if (u < 0.08)
            ;
        else if (u < 0.45)
            g.T += rint64(r, 1, 1500);
        else if (u < 0.85)
            g.T += rint64(r, 1, 30000);
        else if (u < 0.98)
            g.T += rint64(r, 1, 180000);
        else
            g.T += rint64(r, 1, 1800000);
        int a = runi(r) < 0.35 ? g.last_acct : (int)(g.naccts * runi(r) * runi(r));
        g.last_acct = a;
        gacct_t *A = &g.a[a];
        u = runi(r);
        if (i == exact_at || (i > 0 && i % big_every == 0)) {
            char *lit, *alt;
            new_id(&g, &lit, &alt);
            /* exactly the limit (accepted) or one byte over it (too_large) */
            emit_event(&g, a, lit, alt, g.T, i == exact_at ? MAX_LINE : MAX_LINE + 1 + (int)rint64(r, 0, 5000));
            if (i != exact_at) {   /* rejected: not a candidate for duplicates */
                g.nhist--;
                free(g.hist[g.nhist].id_lit), free(g.hist[g.nhist].alt_lit);
            }
            free(lit), free(alt);
        } else if (u < 0.02 && g.nhist > 0) {   /* duplicates */
            double v = runi(r);
            size_t k;
            if (v < 0.15) {   /* far back: often beyond the dedupe horizon */
                k = (size_t)rint64(r, 0, (int64_t)(g.nhist - 1) / 2);
            } else {
                size_t lo = g.nhist > 300 ? g.nhist - 300 : 0;
                k = (size_t)rint64(r, (int64_t)lo, (int64_t)g.nhist - 1);
            }
            ghist_t h = g.hist[k];
            char *id = xstrdup(runi(r) < 0.5 ? h.id_lit : h.alt_lit), *alt = xstrdup(h.alt_lit);
            int64_t ts = runi(r) < 0.5 ? h.ts : g.T;   /* same time, or a new time */
            emit_event(&g, h.acct, id, alt, ts, 0);
            free(id), free(alt);
        } else if (u < 0.025 && g.nhist > 0) {   /* same id, another account */
            ghist_t h = g.hist[rint64(r, (int64_t)(g.nhist > 50 ? g.nhist - 50 : 0), (int64_t)g.nhist - 1)];
            int b = (h.acct + 1 + (int)rint64(r, 0, g.naccts > 1 ? g.naccts - 2 : 0)) % g.naccts;
            char *id = xstrdup(h.id_lit), *alt = xstrdup(h.alt_lit);
            emit_event(&g, b, id, alt, g.T, 0);
            free(id), free(alt);
        } else if (u < 0.045) {
            emit_malformed(&g, a);
        } else if (u < 0.05 && g.npending > 0) {  /* corrected re-send of a rejected line */
            ghist_t h = g.pending[--g.npending];
            emit_event(&g, h.acct, h.id_lit, h.alt_lit, g.T, 0);
            free(h.id_lit), free(h.alt_lit);
        } else {
            int64_t ts = g.T;
            double v = runi(r);
            int64_t L = g.lateness, newest = A->newest > INT64_MIN / 4 ? A->newest : g.T;
            if (v < 0.10)
                ts = newest - rint64(r, 0, L);               /* out of order, in time */
            else if (v < 0.11)
                ts = newest - L - rint64(r, 1, 3 * MS_H);     /* late */
            else if (v < 0.113)
                ts = newest - L;                             /* exactly the lateness */
            else if (v < 0.115)
                ts = newest - L - 1;                         /* just beyond it */
            else if (v < 0.16)
                ts = newest;                                 /* equal times */
            else if (v < 0.20 && A->ntimes) {                /* exactly on a window edge */
                static const int64_t widths[] = {30 * MS_S, MS_M, 10 * MS_M, 30 * MS_M, MS_H,
                                                 MS_D, 7 * MS_D};
                int64_t w = widths[rint64(r, 0, 6)], d = rint64(r, -1, 1);
                for (size_t k = A->ntimes; k-- > 0 && A->ntimes - k < 4000;) {
                    int64_t c = A->times[k] + w + d;
                    if (c <= g.T && c >= newest - L / 2) {
                        ts = c;
                        break;
                    }
                }
            }
            char *lit, *alt;
            new_id(&g, &lit, &alt);
            emit_event(&g, a, lit, alt, ts, 0);
            free(lit), free(alt);
        }
    }
    for (size_t k = 0; k < g.nhist; k++)
        free(g.hist[k].id_lit), free(g.hist[k].alt_lit);
    for (int a = 0; a < G_ACCTS; a++)
        free(g.a[a].times);
    for (int k = 0; k < g.npending; k++)
        free(g.pending[k].id_lit), free(g.pending[k].alt_lit);
    free(g.hist);
    if (fclose(g.out))
        die("cannot write %s", path);
    return 0;
}

/* ================================================================== reference */

/* A string -> int map (open addressing); keys are copied. */
typedef struct { char **k; int *v; size_t cap, n; } smap_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static int smap_get(const smap_t *m, const char *key)
{
    if (!m->cap)
        return -1;
    for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->k[i])
            return -1;
        if (!strcmp(m->k[i], key))
            return m->v[i];
    }
}

static void smap_put(smap_t *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        smap_t nm = {NULL, NULL, m->cap ? 2 * m->cap : 64, 0};
        nm.k = xrealloc(NULL, nm.cap * sizeof *nm.k);
        nm.v = xrealloc(NULL, nm.cap * sizeof *nm.v);
        memset(nm.k, 0, nm.cap * sizeof *nm.k);
        for (size_t i = 0; i < m->cap; i++)
            if (m->k[i]) {
                size_t j = hash_str(m->k[i]) & (nm.cap - 1);
                while (nm.k[j])
                    j = (j + 1) & (nm.cap - 1);
                nm.k[j] = m->k[i];
                nm.v[j] = m->v[i];
                nm.n++;
            }
        free(m->k), free(m->v);
        *m = nm;
    }
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->k[i] && strcmp(m->k[i], key))
        i = (i + 1) & (m->cap - 1);
    if (!m->k[i]) {
        m->k[i] = xstrdup(key);
        m->n++;
    }
    m->v[i] = val;
}

typedef struct { int *v; size_t n, cap; } ivec_t;
static void ivec_push(ivec_t *a, int x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = x;
}

/* An accepted event: what the features read. Strings are NULL when missing. */
typedef struct {
    int64_t t;
    double amount;
    char *merchant, *device, *card, *country, *channel;
    int has_lat, has_lon, has_risk;
    double lat, lon, risk;
    int merchant_id, device_id, country_id;   /* interned strings, -1 when missing */
} ev_t;

typedef struct { ivec_t evs; int64_t newest; } group_t;   /* an account or a by-key */
typedef struct { smap_t idx; group_t *g; size_t n, cap; } groups_t;

static group_t *group_of(groups_t *gs, const char *key, int create)
{
    int i = smap_get(&gs->idx, key);
    if (i >= 0)
        return &gs->g[i];
    if (!create)
        return NULL;
    if (gs->n == gs->cap) {
        gs->cap = gs->cap ? 2 * gs->cap : 64;
        gs->g = xrealloc(gs->g, gs->cap * sizeof *gs->g);
    }
    memset(&gs->g[gs->n], 0, sizeof gs->g[0]);
    gs->g[gs->n].newest = INT64_MIN;
    smap_put(&gs->idx, key, (int)gs->n);
    return &gs->g[gs->n++];
}

/* ----- expected values, with an error bound for computed numbers */

enum { V_NULL, V_NUM, V_INT, V_BOOL, V_STR, V_TIME, V_AMB };
typedef struct { int k; double n; double err; int b; const char *s; int64_t t; } val_t;

static val_t vnull(void) { val_t v = {V_NULL, 0, 0, 0, NULL, 0}; return v; }
static val_t vamb(void) { val_t v = {V_AMB, 0, 0, 0, NULL, 0}; return v; }
static val_t vnum(double n, double err) { val_t v = {V_NUM, n, err, 0, NULL, 0}; return v; }
static val_t vint(long n) { val_t v = {V_INT, (double)n, 0, 0, NULL, 0}; return v; }
static val_t vbool(int b) { val_t v = {V_BOOL, 0, 0, b, NULL, 0}; return v; }
static val_t vstr(const char *s) { if (!s) return vnull(); val_t v = {V_STR, 0, 0, 0, s, 0}; return v; }
static val_t vtime(int64_t t) { val_t v = {V_TIME, 0, 0, 0, NULL, t}; return v; }
static int isnum(val_t a) { return a.k == V_NUM || a.k == V_INT; }

#define ULP 4e-16
static val_t finite_or_null(double r, double err)
{
    if (!isfinite(r))
        return vnull();
    return vnum(r, err + ULP * fabs(r));
}

static val_t v_mul(val_t a, val_t b)
{
    if (a.k == V_AMB || b.k == V_AMB) return vamb();
    if (!isnum(a) || !isnum(b)) return vnull();
    double r = a.n * b.n;
    return finite_or_null(r, fabs(a.n) * b.err + fabs(b.n) * a.err + a.err * b.err);
}

static val_t v_div(val_t a, val_t b)
{
    if (a.k == V_AMB || b.k == V_AMB) return vamb();
    if (!isnum(a) || !isnum(b)) return vnull();
    if (b.err == 0 && b.n == 0) return vnull();
    if (fabs(b.n) <= b.err) return vamb();     /* could be 0 in the engine: no verdict */
    double r = a.n / b.n;
    return finite_or_null(r, (a.err + fabs(r) * b.err) / (fabs(b.n) - b.err));
}

static val_t v_sub(val_t a, val_t b)
{
    if (a.k == V_AMB || b.k == V_AMB) return vamb();
    if (!isnum(a) || !isnum(b)) return vnull();
    val_t r = finite_or_null(a.n - b.n, a.err + b.err);
    if (a.k == V_INT && b.k == V_INT) r.k = V_INT, r.err = 0;
    return r;
}

/* op: '<' 'l'(<=) '>' 'g'(>=) '=' '!' */
static val_t v_cmp(val_t a, val_t b, int op)
{
    if (a.k == V_AMB || b.k == V_AMB) return vamb();
    if (a.k == V_NULL || b.k == V_NULL) return vnull();
    int c;
    if (isnum(a) && isnum(b)) {
        double e = a.err + b.err;
        if (e > 0 && fabs(a.n - b.n) <= e) return vamb();
        c = a.n < b.n ? -1 : a.n > b.n;
    } else if (a.k == V_STR && b.k == V_STR) {
        c = strcmp(a.s, b.s);
        c = c < 0 ? -1 : c > 0;
    } else {
        die("reference: comparing unlike types");
        return vnull();
    }
    switch (op) {
    case '<': return vbool(c < 0);
    case 'l': return vbool(c <= 0);
    case '>': return vbool(c > 0);
    case 'g': return vbool(c >= 0);
    case '=': return vbool(c == 0);
    default: return vbool(c != 0);
    }
}

static val_t v_not(val_t a)
{
    if (a.k == V_BOOL) return vbool(!a.b);
    return a.k == V_NULL ? vnull() : vamb();
}

static val_t v_and(val_t a, val_t b)
{
    if ((a.k == V_BOOL && !a.b) || (b.k == V_BOOL && !b.b)) return vbool(0);
    if (a.k == V_AMB || b.k == V_AMB) return vamb();
    if (a.k == V_NULL || b.k == V_NULL) return vnull();
    return vbool(1);
}

static val_t v_or(val_t a, val_t b)
{
    if ((a.k == V_BOOL && a.b) || (b.k == V_BOOL && b.b)) return vbool(1);
    if (a.k == V_AMB || b.k == V_AMB) return vamb();
    if (a.k == V_NULL || b.k == V_NULL) return vnull();
    return vbool(0);
}

/* ----- the features of diff.vrl */

#define FEATURES(X) \
    X(n_30s) X(n_10m) X(spend_1h) X(avg_1h) X(min_1d) X(max_1d) X(sd_1d) X(merch_1d) \
    X(dev_7d) X(amt_kinds_1h) X(risk_max_1h) X(small_1m) X(ecom_sum_1h) X(card_n_1h) \
    X(card_small_10m) X(merch_avg_1d) X(merch_dev_1h) X(sess_n) X(sess_sum) X(sess_secs) \
    X(prev_amt) X(prev_dev) X(prev_ts) X(seen_dev) X(seen_cty) X(km) X(secs) X(speed) \
    X(ratio) X(per_small) X(flag) X(same_dev) X(risk_amt) X(big_or_risky) X(not_risky) \
    X(home) X(busy)
enum {
#define FENUM(n) F_##n,
    FEATURES(FENUM)
#undef FENUM
    NFEAT
};
static const char *FNAMES[] = {
#define FNAME(n) #n,
    FEATURES(FNAME)
#undef FNAME
};

typedef struct {
    ev_t *ev;
    size_t nev, capev;
    groups_t accts, cards, merchs;
    int64_t lateness, horizon;
    long key_late, prev_ties, out_of_order, forgotten, edges;   /* coverage of the stream */
    smap_t strings;      /* interned field values -> id */
    int nstrings;
    unsigned *mark;      /* per string id: the stamp that last counted it (distinct) */
    size_t capmark;
    unsigned stamp;
} ref_t;

static int intern(ref_t *R, const char *s)
{
    if (!s) return -1;
    int id = smap_get(&R->strings, s);
    if (id >= 0) return id;
    smap_put(&R->strings, s, R->nstrings);
    if ((size_t)R->nstrings >= R->capmark) {
        size_t old = R->capmark;
        R->capmark = old ? 2 * old : 1024;
        R->mark = xrealloc(R->mark, R->capmark * sizeof *R->mark);
        memset(R->mark + old, 0, (R->capmark - old) * sizeof *R->mark);
    }
    return R->nstrings++;
}

/* Distinct count of ids in the window: each id counted the first time it is met. */
static int distinct_new(ref_t *R, int id)
{
    if (id < 0 || R->mark[id] == R->stamp) return 0;
    R->mark[id] = R->stamp;
    return 1;
}

static double mag_tol(double mag) { return 1e-9 * (mag > 1 ? mag : 1); }

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static int cmp_pair(const void *a, const void *b)   /* (time, amount) by time */
{
    const double *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}


static long count_distinct_dbl(double *v, size_t n)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_dbl);
    long d = 1;
    for (size_t i = 1; i < n; i++)
        d += v[i] != v[i - 1];
    return d;
}

static int in_win(int64_t t, int64_t u, int64_t w) { return u <= t && u >= t - w; }

/* Scratch buffers reused across events (the reference is not on any hot path). */
typedef struct { double *d; size_t cap; } scratch_t;
static void scratch_need(scratch_t *sc, size_t n)
{
    if (n > sc->cap) {
        sc->cap = 2 * n;
        sc->d = xrealloc(sc->d, sc->cap * 2 * sizeof *sc->d);
    }
}

static double haversine(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1) a = 1;
    return 2 * 6371.0 * asin(sqrt(a));
}

/* A by-key window read: NULL group when the key is null or the event is late for
 * the key; otherwise the event is added to the key's list first. */
static group_t *by_key(ref_t *R, groups_t *gs, const char *key, int64_t t, int idx)
{
    if (!key)
        return NULL;
    group_t *g = group_of(gs, key, 1);
    if (g->newest != INT64_MIN && t < g->newest - R->lateness) {
        R->key_late++;
        return NULL;
    }
    ivec_push(&g->evs, idx);
    if (t > g->newest)
        g->newest = t;
    return g;
}

/* Computes every feature of event idx (already appended to its account's list). */
static void compute(ref_t *R, group_t *acct, int idx, val_t *f, scratch_t *sc)
{
    const ev_t *e = &R->ev[idx];
    const int64_t t = e->t;
    size_t n = acct->evs.n;
    scratch_need(sc, n + 1);

    long n30s = 0, n10m = 0, small1m = 0, n1h = 0;
    long double s1h = 0, m1h = 0, ecom = 0, ecomm = 0, s1d = 0, m1d = 0;
    double mn = INFINITY, mx = -INFINITY, rmax = -INFINITY;
    long n1d = 0, nrisk = 0;
    const ev_t *prev = NULL;
    int prev_i = -1, seen_dev = 0, seen_cty = 0;
    for (size_t j = 0; j < n; j++) {
        int i = acct->evs.v[j];
        const ev_t *x = &R->ev[i];
        int64_t u = x->t;
        int64_t dt = t - u;
        R->edges += dt == 30 * MS_S || dt == MS_M || dt == 10 * MS_M || dt == 30 * MS_M ||
                    dt == MS_H || dt == MS_D || dt == 7 * MS_D;
        if (in_win(t, u, 30 * MS_S)) n30s++;
        if (in_win(t, u, 10 * MS_M)) n10m++;
        if (in_win(t, u, MS_M) && x->amount < 20) small1m++;
        if (in_win(t, u, MS_H)) {
            n1h++;
            s1h += x->amount, m1h += fabs(x->amount);
            if (x->channel && !strcmp(x->channel, "ecom"))
                ecom += x->amount, ecomm += fabs(x->amount);
            if (x->has_risk) {
                nrisk++;
                if (x->risk > rmax) rmax = x->risk;
            }
        }
        if (in_win(t, u, MS_D)) {
            n1d++;
            s1d += x->amount, m1d += fabs(x->amount);
            if (x->amount < mn) mn = x->amount;
            if (x->amount > mx) mx = x->amount;
        }
        if (i != idx && u <= t && (!prev || u > prev->t || (u == prev->t && i > prev_i)))
            prev = x, prev_i = i;
        if (i != idx && in_win(t, u, MS_D) && e->device_id >= 0 && x->device_id == e->device_id)
            seen_dev = 1;
        if (i != idx && in_win(t, u, 7 * MS_D) && e->country_id >= 0 && x->country_id == e->country_id)
            seen_cty = 1;
    }
    f[F_n_30s] = vint(n30s);
    f[F_n_10m] = vint(n10m);
    f[F_small_1m] = vint(small1m);
    f[F_spend_1h] = vnum((double)s1h, mag_tol((double)m1h));
    f[F_avg_1h] = n1h ? vnum((double)(s1h / n1h), mag_tol((double)m1h)) : vnull();
    f[F_ecom_sum_1h] = vnum((double)ecom, mag_tol((double)ecomm));
    f[F_min_1d] = n1d ? vnum(mn, 0) : vnull();
    f[F_max_1d] = n1d ? vnum(mx, 0) : vnull();
    f[F_risk_max_1h] = nrisk ? vnum(rmax, 0) : vnull();
    /* stddev, two passes */
    if (n1d) {
        long double mean = s1d / n1d, var = 0;
        for (size_t j = 0; j < n; j++) {
            const ev_t *x = &R->ev[acct->evs.v[j]];
            if (in_win(t, x->t, MS_D))
                var += ((long double)x->amount - mean) * ((long double)x->amount - mean);
        }
        f[F_sd_1d] = vnum((double)sqrtl(var / n1d), mag_tol((double)m1d));
    } else {
        f[F_sd_1d] = vnull();
    }
    /* distinct */
    long d = 0;
    R->stamp++;
    for (size_t j = 0; j < n; j++) {
        const ev_t *x = &R->ev[acct->evs.v[j]];
        if (in_win(t, x->t, MS_D)) d += distinct_new(R, x->merchant_id);
    }
    f[F_merch_1d] = vint(d);
    d = 0;
    R->stamp++;
    for (size_t j = 0; j < n; j++) {
        const ev_t *x = &R->ev[acct->evs.v[j]];
        if (in_win(t, x->t, 7 * MS_D)) d += distinct_new(R, x->device_id);
    }
    f[F_dev_7d] = vint(d);
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        const ev_t *x = &R->ev[acct->evs.v[j]];
        if (in_win(t, x->t, MS_H)) sc->d[k++] = x->amount;
    }
    f[F_amt_kinds_1h] = vint(count_distinct_dbl(sc->d, k));
    /* sessions: the account's events with time <= t, by time; the run ending at t */
    k = 0;
    for (size_t j = 0; j < n; j++) {
        const ev_t *x = &R->ev[acct->evs.v[j]];
        if (x->t <= t) {
            sc->d[2 * k] = (double)x->t;   /* exact: |t| < 2^53 */
            sc->d[2 * k + 1] = x->amount;
            k++;
        }
    }
    qsort(sc->d, k, 2 * sizeof(double), cmp_pair);
    size_t first = k - 1;
    while (first > 0 && sc->d[2 * first] - sc->d[2 * (first - 1)] <= (double)(30 * MS_M))
        first--;
    long double ss = 0, sm = 0;
    for (size_t j = first; j < k; j++)
        ss += sc->d[2 * j + 1], sm += fabs(sc->d[2 * j + 1]);
    f[F_sess_n] = vint((long)(k - first));
    f[F_sess_sum] = vnum((double)ss, mag_tol((double)sm));
    double dur = (double)(t - (int64_t)sc->d[2 * first]) / 1000.0;
    f[F_sess_secs] = vnum(dur, 1e-12 * dur);
    /* history */
    R->prev_ties += prev && prev->t == t;
    f[F_prev_amt] = prev ? vnum(prev->amount, 0) : vnull();
    f[F_prev_dev] = prev ? vstr(prev->device) : vnull();
    f[F_prev_ts] = prev ? vtime(prev->t) : vnull();
    f[F_seen_dev] = e->device ? vbool(seen_dev) : vnull();
    f[F_seen_cty] = e->country ? vbool(seen_cty) : vnull();
    if (prev && e->has_lat && e->has_lon && prev->has_lat && prev->has_lon) {
        double km = haversine(e->lat, e->lon, prev->lat, prev->lon);
        f[F_km] = vnum(km, 1e-9 * (km > 1 ? km : 1));
    } else {
        f[F_km] = vnull();
    }
    if (prev) {
        double s = (double)(t - prev->t) / 1000.0;
        f[F_secs] = vnum(s, 1e-12 * s);
    } else {
        f[F_secs] = vnull();
    }
    /* by-key windows */
    group_t *cg = by_key(R, &R->cards, e->card, t, idx);
    group_t *mg = by_key(R, &R->merchs, e->merchant, t, idx);
    if (cg) {
        long c = 0;
        long double s = 0, m = 0;
        for (size_t j = 0; j < cg->evs.n; j++) {
            const ev_t *x = &R->ev[cg->evs.v[j]];
            if (in_win(t, x->t, MS_H)) c++;
            if (in_win(t, x->t, 10 * MS_M) && x->amount < 20) s += x->amount, m += fabs(x->amount);
        }
        f[F_card_n_1h] = vint(c);
        f[F_card_small_10m] = vnum((double)s, mag_tol((double)m));
    } else {
        f[F_card_n_1h] = f[F_card_small_10m] = vnull();
    }
    if (mg) {
        long c = 0;
        long double s = 0, m = 0;
        d = 0;
        R->stamp++;
        for (size_t j = 0; j < mg->evs.n; j++) {
            const ev_t *x = &R->ev[mg->evs.v[j]];
            if (in_win(t, x->t, MS_D)) c++, s += x->amount, m += fabs(x->amount);
            if (in_win(t, x->t, MS_H)) d += distinct_new(R, x->device_id);
        }
        f[F_merch_avg_1d] = c ? vnum((double)(s / c), mag_tol((double)m)) : vnull();
        f[F_merch_dev_1h] = vint(d);
    } else {
        f[F_merch_avg_1d] = f[F_merch_dev_1h] = vnull();
    }
    /* expressions */
    val_t amount = vnum(e->amount, 0);
    val_t risk = e->has_risk ? vnum(e->risk, 0) : vnull();
    f[F_speed] = v_mul(v_div(f[F_km], f[F_secs]), vint(3600));
    f[F_ratio] = v_div(amount, f[F_avg_1h]);
    f[F_per_small] = v_div(f[F_spend_1h], f[F_small_1m]);
    f[F_flag] = v_or(v_and(v_not(f[F_seen_dev]), v_cmp(amount, vint(100), '>')),
                     v_cmp(f[F_small_1m], vint(3), 'g'));
    f[F_same_dev] = v_cmp(f[F_prev_dev], vstr(e->device), '=');
    f[F_risk_amt] = v_mul(risk, amount);
    f[F_big_or_risky] = v_or(v_cmp(amount, vint(500), '>'), v_cmp(risk, vnum(0.8, 0), '>'));
    f[F_not_risky] = v_not(v_cmp(risk, vnum(0.5, 0), '>'));
    f[F_home] = e->country ? vbool(!strcmp(e->country, "US") || !strcmp(e->country, "CA")) : vnull();
    f[F_busy] = v_and(v_cmp(v_sub(f[F_n_10m], f[F_small_1m]), vint(2), 'g'),
                      v_cmp(vstr(e->channel), vstr("atm"), '!'));
}

/* ----- validation (SPEC section 1) */

enum { C_INVALID_JSON = 1, C_TOO_LARGE = 2, C_MISSING = 4, C_BAD_TYPE = 8, C_BAD_TS = 16,
       C_NON_FINITE = 32, C_LATE = 64, C_ANY = 1 << 30 };
static const char *CODE_NAMES[] = {"invalid_json", "too_large", "missing_field", "bad_type",
                                   "bad_timestamp", "non_finite", "late"};

static int code_bit(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, CODE_NAMES[i]))
            return 1 << i;
    return 0;
}

static void codes_str(int mask, char *buf, size_t n)
{
    buf[0] = 0;
    if (mask & C_ANY) {
        snprintf(buf, n, "any code");
        return;
    }
    for (int i = 0; i < 7; i++)
        if (mask & (1 << i))
            snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? "|" : "", CODE_NAMES[i]);
}

typedef struct {
    int reject;          /* 0 accepted by validation, else a mask of acceptable codes */
    int id_either;       /* too_large: id may be null or the id */
    char *id;            /* the valid string id, or NULL */
    char *account;
    ev_t ev;
} verdict_t;

/* Replaces the text of every overflowing number outside strings by 0 (same length),
 * so that jansson (which refuses them) can read the rest. Returns 1 when it did. */
static int patch_overflow(char *s, size_t n)
{
    int in = 0, did = 0;
    for (size_t i = 0; i < n; i++) {
        if (in) {
            if (s[i] == '\\') i++;
            else if (s[i] == '"') in = 0;
            continue;
        }
        if (s[i] == '"') { in = 1; continue; }
        if (s[i] == '-' || isdigit((unsigned char)s[i])) {
            size_t j = i;
            while (j < n && strchr("+-.eE0123456789", s[j])) j++;
            char tmp[64];
            size_t l = j - i < 63 ? j - i : 63;
            memcpy(tmp, s + i, l);
            tmp[l] = 0;
            if (isinf(strtod(tmp, NULL))) {
                memset(s + i, ' ', j - i);
                s[i] = '0';
                did = 1;
            }
            i = j - 1;
        }
    }
    return did;
}

static char *opt_str(json_t *o, const char *key, int *mask)
{
    json_t *v = json_object_get(o, key);
    if (!v) return NULL;
    if (!json_is_string(v)) { *mask |= C_BAD_TYPE; return NULL; }
    return xstrdup(json_string_value(v));
}

static void validate(const char *line, size_t len, verdict_t *vd)
{
    memset(vd, 0, sizeof *vd);
    json_error_t err;
    int nonfinite = 0;
    char *copy = xrealloc(NULL, len + 1);
    memcpy(copy, line, len);
    copy[len] = 0;
    json_t *root = json_loadb(copy, len, JSON_DECODE_ANY, &err);
    if (!root && strstr(err.text, "overflow") && patch_overflow(copy, len)) {
        root = json_loadb(copy, len, JSON_DECODE_ANY, &err);
        nonfinite = root != NULL;
    }
    free(copy);
    if (len > MAX_LINE) {
        vd->reject = C_TOO_LARGE;
        vd->id_either = 1;
    }
    if (!root) {
        vd->reject |= vd->reject ? 0 : C_INVALID_JSON;
        return;
    }
    if (!json_is_object(root)) {
        vd->reject |= vd->reject ? 0 : C_INVALID_JSON | C_BAD_TYPE;
        json_decref(root);
        return;
    }
    int m = nonfinite ? C_NON_FINITE : 0;
    json_t *v;
    /* id, account: strings of 1..128 bytes */
    const char *req[2] = {"id", "account"};
    char *vals[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(root, req[i]);
        if (!v) m |= C_MISSING;
        else if (json_is_null(v)) m |= C_MISSING | C_BAD_TYPE;
        else if (!json_is_string(v)) m |= C_BAD_TYPE;
        else if (json_string_length(v) < 1 || json_string_length(v) > 128) m |= C_ANY;
        else if (strlen(json_string_value(v)) != json_string_length(v)) m |= C_ANY;  /* NUL */
        else vals[i] = xstrdup(json_string_value(v));
    }
    vd->id = vals[0];
    vd->account = vals[1];
    v = json_object_get(root, "ts");
    if (!v) m |= C_MISSING;
    else if (json_is_null(v)) m |= C_MISSING | C_BAD_TYPE | C_BAD_TS;
    else if (json_is_string(v)) {
        if (parse_rfc3339(json_string_value(v), json_string_length(v), &vd->ev.t)) m |= C_BAD_TS;
    } else if (json_is_integer(v)) vd->ev.t = json_integer_value(v);
    else m |= C_BAD_TYPE | C_BAD_TS;
    v = json_object_get(root, "amount");
    if (!v) m |= C_MISSING;
    else if (json_is_null(v)) m |= C_MISSING | C_BAD_TYPE;
    else if (!json_is_number(v)) m |= C_BAD_TYPE;
    else vd->ev.amount = json_number_value(v);
    vd->ev.merchant = opt_str(root, "merchant", &m);
    vd->ev.device = opt_str(root, "device", &m);
    vd->ev.card = opt_str(root, "card", &m);
    vd->ev.country = opt_str(root, "country", &m);
    vd->ev.channel = opt_str(root, "channel", &m);
    free(opt_str(root, "currency", &m));
    free(opt_str(root, "mcc", &m));
    free(opt_str(root, "ip", &m));
    free(opt_str(root, "type", &m));
    /* lat and lon: numbers; out of [-90, 90] / [-180, 180] they are rejected too (the
     * spec is silent; vigil says bad_value) */
    if ((v = json_object_get(root, "lat"))) {
        if (json_is_number(v)) vd->ev.has_lat = 1, vd->ev.lat = json_number_value(v);
        else m |= C_BAD_TYPE;
        if (vd->ev.has_lat && fabs(vd->ev.lat) > 90) m |= C_ANY;
    }
    if ((v = json_object_get(root, "lon"))) {
        if (json_is_number(v)) vd->ev.has_lon = 1, vd->ev.lon = json_number_value(v);
        else m |= C_BAD_TYPE;
        if (vd->ev.has_lon && fabs(vd->ev.lon) > 180) m |= C_ANY;
    }
    if ((v = json_object_get(root, "risk")) && json_is_number(v))
        vd->ev.has_risk = 1, vd->ev.risk = json_number_value(v);
    json_decref(root);
    if (!vd->reject)
        vd->reject = m;
}

static void verdict_free(verdict_t *vd)
{
    free(vd->id), free(vd->account);
    free(vd->ev.merchant), free(vd->ev.device), free(vd->ev.card), free(vd->ev.country),
    free(vd->ev.channel);
}

/* ----- comparing with vigil's output */

typedef struct {
    long mismatches, shown, events, features, rejected, duplicates, skipped;
    long lineno;
    const char *id;
} report_t;

static void mismatch(report_t *rp, const char *fmt, ...)
{
    rp->mismatches++;
    if (rp->shown >= 30)
        return;
    rp->shown++;
    va_list ap;
    va_start(ap, fmt);
    printf("MISMATCH input line %ld (id %s): ", rp->lineno, rp->id ? rp->id : "null");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void val_text(val_t v, char *buf, size_t n)
{
    char ts[32];
    switch (v.k) {
    case V_NULL: snprintf(buf, n, "null"); break;
    case V_AMB: snprintf(buf, n, "(ambiguous)"); break;
    case V_INT: snprintf(buf, n, "%.0f", v.n); break;
    case V_NUM: snprintf(buf, n, "%.17g (+-%.3g)", v.n, v.err); break;
    case V_BOOL: snprintf(buf, n, "%s", v.b ? "true" : "false"); break;
    case V_STR: snprintf(buf, n, "\"%s\"", v.s); break;
    case V_TIME: fmt_utc(v.t, ts); snprintf(buf, n, "\"%s\"", ts); break;
    }
}

static void json_text(json_t *j, char *buf, size_t n)
{
    if (!j) { snprintf(buf, n, "(absent)"); return; }
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    snprintf(buf, n, "%s", s ? s : "?");
    free(s);
}

static int val_matches(val_t v, json_t *j)
{
    char ts[32];
    if (!j) return 0;
    switch (v.k) {
    case V_NULL: return json_is_null(j);
    case V_INT: return json_is_integer(j) && (double)json_integer_value(j) == v.n;
    case V_NUM: return json_is_number(j) && fabs(json_number_value(j) - v.n) <= v.err;
    case V_BOOL: return json_is_boolean(j) && json_is_true(j) == v.b;
    case V_STR: return json_is_string(j) && !strcmp(json_string_value(j), v.s);
    case V_TIME: fmt_utc(v.t, ts); return json_is_string(j) && !strcmp(json_string_value(j), ts);
    default: return 1;
    }
}

/* Every number outside strings must be printed in its shortest round-trip form. */
static void check_numbers(report_t *rp, const char *s, size_t n)
{
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        if (in) {
            if (s[i] == '\\') i++;
            else if (s[i] == '"') in = 0;
            continue;
        }
        if (s[i] == '"') { in = 1; continue; }
        if (s[i] != '-' && !isdigit((unsigned char)s[i]))
            continue;
        size_t j = i;
        while (j < n && strchr("+-.eE0123456789", s[j])) j++;
        char tok[64];
        size_t l = j - i < 63 ? j - i : 63;
        memcpy(tok, s + i, l);
        tok[l] = 0;
        i = j - 1;
        double v = strtod(tok, NULL);
        int sig = 0, nz = 0, started = 0;
        for (const char *p = tok; *p && *p != 'e' && *p != 'E'; p++) {
            if (!isdigit((unsigned char)*p)) continue;
            if (*p != '0') started = 1;
            if (!started) continue;
            sig++;
            nz = *p != '0' ? sig : nz;
        }
        const char *dot = strchr(tok, '.'), *ex = strpbrk(tok, "eE");
        size_t mant = ex ? (size_t)(ex - tok) : strlen(tok);
        if (dot && mant && tok[mant - 1] == '0') {
            mismatch(rp, "number %s is not printed in its shortest form (trailing zero)", tok);
            continue;
        }
        if (v == 0)
            continue;
        int lo = 1, best = 17;   /* round-tripping is monotonic in the digits */
        while (lo < best) {
            int p = (lo + best) / 2;
            char b[40];
            snprintf(b, sizeof b, "%.*e", p - 1, v);
            if (strtod(b, NULL) == v) best = p;
            else lo = p + 1;
        }
        if (nz != best)
            mismatch(rp, "number %s is not printed in its shortest form (%d significant digits, %d needed)",
                     tok, nz, best);
    }
}

static void check_accepted(report_t *rp, const verdict_t *vd, val_t *f, json_t *o)
{
    char ts[32], a[256], b[256];
    json_t *j = json_object_get(o, "id");
    if (!json_is_string(j) || strcmp(json_string_value(j), vd->id))
        json_text(j, b, sizeof b), mismatch(rp, "id: expected \"%s\", got %s", vd->id, b);
    j = json_object_get(o, "account");
    if (!json_is_string(j) || strcmp(json_string_value(j), vd->account))
        json_text(j, b, sizeof b), mismatch(rp, "account: expected \"%s\", got %s", vd->account, b);
    fmt_utc(vd->ev.t, ts);
    j = json_object_get(o, "ts");
    if (!json_is_string(j) || strcmp(json_string_value(j), ts))
        json_text(j, b, sizeof b), mismatch(rp, "ts: expected \"%s\", got %s", ts, b);
    j = json_object_get(o, "decision");
    if (!json_is_string(j) || strcmp(json_string_value(j), "allow"))
        json_text(j, b, sizeof b), mismatch(rp, "decision: expected \"allow\", got %s", b);
    j = json_object_get(o, "score");
    if (!json_is_number(j) || json_number_value(j) != 0)
        json_text(j, b, sizeof b), mismatch(rp, "score: expected 0, got %s", b);
    const char *arrs[] = {"rules", "shadow"};
    for (int i = 0; i < 2; i++) {
        j = json_object_get(o, arrs[i]);
        if (!json_is_array(j) || json_array_size(j))
            json_text(j, b, sizeof b), mismatch(rp, "%s: expected [], got %s", arrs[i], b);
    }
    json_t *fs = json_object_get(o, "features");
    if (!json_is_object(fs)) {
        mismatch(rp, "no features object");
        return;
    }
    if (json_object_size(fs) != NFEAT) {
        const char *key;
        json_t *val;
        json_object_foreach(fs, key, val) {
            int known = 0;
            for (int i = 0; i < NFEAT; i++) known |= !strcmp(key, FNAMES[i]);
            if (!known) mismatch(rp, "unexpected feature %s", key);
        }
    }
    for (int i = 0; i < NFEAT; i++) {
        if (f[i].k == V_AMB) { rp->skipped++; continue; }
        rp->features++;
        j = json_object_get(fs, FNAMES[i]);
        if (!val_matches(f[i], j)) {
            val_text(f[i], a, sizeof a);
            json_text(j, b, sizeof b);
            mismatch(rp, "feature %s: expected %s, got %s (account %s, ts %s)", FNAMES[i], a, b,
                     vd->account, ts);
        }
    }
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t') return 0;
    return 1;
}

typedef struct { char **l; size_t *len; size_t n, cap; int final_newline; } lines_t;

static void read_lines(const char *path, lines_t *ls)
{
    FILE *fp = fopen(path, "r");
    if (!fp) die("cannot read %s", path);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t r;
    memset(ls, 0, sizeof *ls);
    ls->final_newline = 1;
    while ((r = getline(&buf, &cap, fp)) >= 0) {
        size_t n = (size_t)r;
        if (n && buf[n - 1] == '\n') n--;
        else ls->final_newline = 0;
        if (ls->n == ls->cap) {
            ls->cap = ls->cap ? 2 * ls->cap : 1024;
            ls->l = xrealloc(ls->l, ls->cap * sizeof *ls->l);
            ls->len = xrealloc(ls->len, ls->cap * sizeof *ls->len);
        }
        ls->l[ls->n] = xrealloc(NULL, n + 1);
        memcpy(ls->l[ls->n], buf, n);
        ls->l[ls->n][n] = 0;
        ls->len[ls->n++] = n;
    }
    free(buf);
    fclose(fp);
}

/* Shortest round-trip text of a finite double (what vigil must print). */
static void fmt_num(double v, char *buf, size_t n)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* A JSON string literal (or null), to free(). */
static char *json_quote(const char *s)
{
    if (!s) return xstrdup("null");
    json_t *j = json_string(s);
    char *q = json_dumps(j, JSON_ENCODE_ANY);
    json_decref(j);
    return q;
}

/* The reference's own decision line for an event (`it_diff expect`), so that the
 * checker can be tested on its own output and on mutations of it. */
static char *expected_line(const verdict_t *vd, const val_t *f)
{
    char *idj = json_quote(vd->id), *acj = json_quote(vd->account), ts[32], num[40];
    fmt_utc(vd->ev.t, ts);
    size_t cap = 8192, len = 0;
    char *b = xrealloc(NULL, cap);
    len += (size_t)snprintf(b, cap, "{\"id\":%s,\"account\":%s,\"ts\":\"%s\",\"decision\":\"allow\","
                            "\"score\":0,\"rules\":[],\"shadow\":[],\"features\":{", idj, acj, ts);
    for (int i = 0; i < NFEAT; i++) {
        char v[300];
        switch (f[i].k) {
        case V_NUM: fmt_num(f[i].n, num, sizeof num); snprintf(v, sizeof v, "%s", num); break;
        case V_INT: snprintf(v, sizeof v, "%.0f", f[i].n); break;
        case V_BOOL: snprintf(v, sizeof v, "%s", f[i].b ? "true" : "false"); break;
        case V_STR: { char *q = json_quote(f[i].s);
                      snprintf(v, sizeof v, "%s", q); free(q); break; }
        case V_TIME: fmt_utc(f[i].t, num); snprintf(v, sizeof v, "\"%s\"", num); break;
        default: snprintf(v, sizeof v, "null"); break;
        }
        len += (size_t)snprintf(b + len, cap - len, "%s\"%s\":%s", i ? "," : "", FNAMES[i], v);
    }
    snprintf(b + len, cap - len, "}}");
    free(idj), free(acj);
    return xrealloc(b, strlen(b) + 1);
}

static char *reject_line(const verdict_t *vd)
{
    int code = 3;   /* bad_type when any code will do */
    for (int i = 0; i < 7; i++)
        if (vd->reject & (1 << i)) { code = i; break; }
    char *idj = json_quote(vd->id);
    char *r = xprintf("{\"id\":%.200s,\"error\":\"rejected\",\"code\":\"%s\"}", idj, CODE_NAMES[code]);
    free(idj);
    return r;
}

static void lines_push(lines_t *ls, char *line)
{
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? 2 * ls->cap : 1024;
        ls->l = xrealloc(ls->l, ls->cap * sizeof *ls->l);
        ls->len = xrealloc(ls->len, ls->cap * sizeof *ls->len);
    }
    ls->l[ls->n] = line;
    ls->len[ls->n++] = strlen(line);
}

static void lines_free(lines_t *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        free(ls->l[i]);
    free(ls->l), free(ls->len);
}

static void smap_free(smap_t *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->k[i]);
    free(m->k), free(m->v);
}

static void groups_free(groups_t *gs)
{
    for (size_t i = 0; i < gs->n; i++)
        free(gs->g[i].evs.v);
    free(gs->g);
    smap_free(&gs->idx);
}

static void ref_free(ref_t *R)
{
    for (size_t i = 0; i < R->nev; i++)
        free(R->ev[i].merchant), free(R->ev[i].device), free(R->ev[i].card),
        free(R->ev[i].country), free(R->ev[i].channel);
    free(R->ev);
    groups_free(&R->accts), groups_free(&R->cards), groups_free(&R->merchs);
    smap_free(&R->strings);
    free(R->mark);
}

/* check (emit_path NULL): compare out_path with the reference. expect: write the
 * reference's lines to emit_path, and check them too. */
static int cmd_check(const char *in_path, const char *out_path, const char *emit_path,
                     int64_t lateness, int64_t horizon)
{
    lines_t in, out;
    read_lines(in_path, &in);
    if (emit_path)
        memset(&out, 0, sizeof out), out.final_newline = 1;
    else
        read_lines(out_path, &out);
    ref_t R;
    memset(&R, 0, sizeof R);
    R.lateness = lateness, R.horizon = horizon;
    smap_t seen_ids = {0};       /* account \x1f id -> the accepted event's output line */
    ivec_t line_ev = {0};        /* output line -> its accepted event (for the horizon) */
    report_t rp = {0};
    scratch_t sc = {0};
    val_t f[NFEAT];
    size_t oi = 0;
    if (out.n && !out.final_newline)
        printf("MISMATCH output does not end with a newline\n"), rp.mismatches++;
    for (size_t li = 0; li < in.n; li++) {
        rp.lineno = (long)li + 1;
        rp.id = NULL;
        if (is_blank(in.l[li], in.len[li]))
            continue;
        size_t this_out = oi++;
        while (line_ev.n <= this_out) ivec_push(&line_ev, -1);
        verdict_t vd;
        validate(in.l[li], in.len[li], &vd);
        rp.id = vd.id;
        /* 1. what the reference decides */
        int dup_of = -1, idx = -1;
        group_t *acct = NULL;
        char *key = NULL;
        if (!vd.reject) {
            key = xprintf("%.200s\x1f%.200s", vd.account, vd.id);
            acct = group_of(&R.accts, vd.account, 1);
            int orig = smap_get(&seen_ids, key);
            R.forgotten += orig >= 0 && R.ev[line_ev.v[orig]].t < acct->newest - horizon;
            if (orig >= 0 && R.ev[line_ev.v[orig]].t >= acct->newest - horizon)
                dup_of = orig;
            else if (acct->newest != INT64_MIN && vd.ev.t < acct->newest - lateness)
                vd.reject = C_LATE;
        }
        if (!vd.reject && dup_of < 0) {
            if (R.nev == R.capev) {
                R.capev = R.capev ? 2 * R.capev : 1024;
                R.ev = xrealloc(R.ev, R.capev * sizeof *R.ev);
            }
            R.ev[R.nev] = vd.ev;             /* its strings now belong to R.ev */
            vd.ev.merchant = vd.ev.device = vd.ev.card = vd.ev.country = vd.ev.channel = NULL;
            idx = (int)R.nev++;
            R.ev[idx].merchant_id = intern(&R, R.ev[idx].merchant);
            R.ev[idx].device_id = intern(&R, R.ev[idx].device);
            R.ev[idx].country_id = intern(&R, R.ev[idx].country);
            R.out_of_order += vd.ev.t < acct->newest;
            ivec_push(&acct->evs, idx);
            if (R.ev[idx].t > acct->newest) acct->newest = R.ev[idx].t;
            smap_put(&seen_ids, key, (int)this_out);
            line_ev.v[this_out] = idx;
            compute(&R, acct, idx, f, &sc);
        }
        /* 2. what vigil wrote (or the reference's own line) */
        if (emit_path) {
            lines_push(&out, dup_of >= 0 ? xstrdup(out.l[dup_of]) : vd.reject ? reject_line(&vd)
                                                                             : expected_line(&vd, f));
        } else if (this_out >= out.n) {
            mismatch(&rp, "no output line left (%zu output lines for more input lines)", out.n);
            free(key);
            verdict_free(&vd);
            break;
        }
        const char *oline = out.l[this_out];
        size_t olen = out.len[this_out];
        check_numbers(&rp, oline, olen);
        json_error_t jerr;
        json_t *o = json_loadb(oline, olen, 0, &jerr);
        /* 3. compare */
        if (!o) {
            mismatch(&rp, "output line %zu is not a JSON object: %s", this_out + 1, jerr.text);
        } else if (dup_of >= 0) {
            rp.duplicates++;
            if (olen != out.len[dup_of] || memcmp(oline, out.l[dup_of], olen))
                mismatch(&rp, "duplicate of output line %d: expected %s, got %s", dup_of + 1,
                         out.l[dup_of], oline);
        } else if (vd.reject) {
            rp.rejected++;
            char want[128], got[256];
            codes_str(vd.reject, want, sizeof want);
            json_t *c = json_object_get(o, "code"), *e = json_object_get(o, "error"),
                   *id = json_object_get(o, "id");
            int bit = json_is_string(c) ? code_bit(json_string_value(c)) : -1;
            if (bit < 0 || (vd.reject & C_ANY ? bit == C_LATE : !(bit & vd.reject))) {
                json_text(c, got, sizeof got);
                mismatch(&rp, "expected a rejection with code %s, got code %s: %s", want, got, oline);
            }
            if (!json_is_string(e) || !json_string_length(e))
                mismatch(&rp, "rejection without an error text: %s", oline);
            int id_ok = vd.id ? (json_is_string(id) && !strcmp(json_string_value(id), vd.id))
                              : json_is_null(id);
            if (vd.id_either && json_is_null(id)) id_ok = 1;
            if (!id_ok) {
                json_text(id, got, sizeof got);
                mismatch(&rp, "rejection id: expected %s%s%s, got %s", vd.id ? "\"" : "",
                         vd.id ? vd.id : "null", vd.id ? "\"" : "", got);
            }
        } else {
            rp.events++;
            check_accepted(&rp, &vd, f, o);
        }
        json_decref(o);
        free(key);
        verdict_free(&vd);
    }
    if (!emit_path && oi < out.n) {
        rp.lineno = (long)in.n;
        mismatch(&rp, "%zu extra output lines", out.n - oi);
    }
    if (emit_path) {
        FILE *fp = fopen(emit_path, "w");
        if (!fp) die("cannot write %s", emit_path);
        for (size_t i = 0; i < out.n; i++)
            fprintf(fp, "%s\n", out.l[i]);
        if (fclose(fp)) die("cannot write %s", emit_path);
    }
    printf("%ld events, %ld features checked, %ld rejected, %ld duplicates: %s"
           " (%ld values with no verdict: within rounding of a division by zero or a comparison)\n",
           rp.events, rp.features, rp.rejected, rp.duplicates, rp.mismatches ? "FAILED" : "OK",
           rp.skipped);
    printf("coverage: %ld out-of-order events accepted, %ld reads late for a by-key, %ld prev() "
           "ties at equal times, %ld ids re-sent after the dedupe horizon, %ld events exactly "
           "on a window's edge\n", R.out_of_order, R.key_late, R.prev_ties, R.forgotten, R.edges);
    if (rp.mismatches)
        printf("%ld mismatches\n", rp.mismatches);
    lines_free(&in), lines_free(&out);
    ref_free(&R);
    smap_free(&seen_ids);
    free(line_ev.v), free(sc.d);
    return rp.mismatches ? 1 : 0;
}

/* ================================================================== main */

static void usage(void)
{
    fprintf(stderr, "usage: it_diff gen --seed S --events N --out FILE [--lateness DUR] [--accounts N]\n"
                    "       it_diff check --input FILE --output FILE [--lateness DUR] [--horizon DUR]\n"
                    "       it_diff expect --input FILE --output FILE [--lateness DUR] [--horizon DUR]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *in = NULL, *out = NULL;
    uint64_t seed = 1;
    long events = 1000;
    int accounts = 30;
    int64_t lateness = MS_H, horizon = 24 * MS_H;
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) usage();
        const char *k = argv[i], *v = argv[++i];
        if (!strcmp(k, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--events")) events = strtol(v, NULL, 10);
        else if (!strcmp(k, "--accounts")) accounts = atoi(v);
        else if (!strcmp(k, "--out") || !strcmp(k, "--output")) out = v;
        else if (!strcmp(k, "--input")) in = v;
        else if (!strcmp(k, "--lateness")) { if ((lateness = parse_dur(v)) < 0) usage(); }
        else if (!strcmp(k, "--horizon")) { if ((horizon = parse_dur(v)) < 0) usage(); }
        else usage();
    }
    if (!strcmp(argv[1], "gen")) {
        if (!out || events < 1) usage();
        if (accounts < 1 || accounts > G_ACCTS) usage();
        return cmd_gen(seed, events, out, lateness, accounts);
    }
    if (!strcmp(argv[1], "check")) {
        if (!in || !out) usage();
        return cmd_check(in, out, NULL, lateness, horizon);
    }
    if (!strcmp(argv[1], "expect")) {   /* the reference's own output, for self-tests */
        if (!in || !out) usage();
        return cmd_check(in, NULL, out, lateness, horizon);
    }
    usage();
    return 2;
}
