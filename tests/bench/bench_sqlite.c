/* bench_sqlite.c - the SQLite baseline of the replay benchmark, and its correctness check.
 *
 * Loads NDJSON events (account, ts, amount) into an in-memory SQLite table, indexes it
 * on (account, ts) and times one query that computes, with window functions over
 * RANGE BETWEEN w PRECEDING AND CURRENT ROW partitioned by account ordered by ts (ms),
 * the seven count/sum/avg/min/max features of tests/bench/bench.vrl. Every row of the
 * result is stepped through. SQLite gets every advantage: an in-memory database, an
 * integer account key, an index in the window's order, and its load and index time
 * are reported apart from the query time.
 *
 * It also computes the same seven features by brute force, with vigil's semantics
 * (an event reads the events of its account that arrived so far, itself included, with
 * time in [t - w, t]), and compares: SQLite against the reference (events with an equal
 * time in their account are skipped: SQL's frame takes in peers that arrive later), and,
 * given --decisions, vigil's decisions (line k answers event line k) against the
 * reference for all seven and against SQLite for count, sum and avg. The nine other
 * features of bench.vrl (stddev, distinct, where, by card, sessions, prev, seen) are
 * also recomputed by brute force and compared with vigil's. SQLite 3.40.1
 * returns wrong min and max over RANGE frames when partitions interleave, so its min and
 * max mismatches are reported but not held against anyone.
 *
 * Usage: bench_sqlite EVENTS.ndjson [--decisions FILE]
 * Prints `key value` lines on stdout (read by bench_replay.sh); exit 0 when vigil's
 * features (if given) match the reference, 1 on a mismatch or error, 2 on usage.
 * The input should be in time order without malformed lines (vigil-gen's output).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NFEAT 7
#define MAX_LINE (1 << 16)

typedef enum { F_COUNT, F_SUM, F_AVG, F_MIN, F_MAX } fkind_t;

typedef struct feat {
    const char *name;   /* as in bench.vrl */
    fkind_t kind;
    int64_t w_ms;
    const char *sql;    /* the SQLite expression */
} feat_t;

static const feat_t FEATS[NFEAT] = {
    {"n_10m", F_COUNT, 600000, "count(*) OVER w10m"},
    {"n_1h", F_COUNT, 3600000, "count(*) OVER w1h"},
    {"n_1d", F_COUNT, 86400000, "count(*) OVER w1d"},
    {"sum_1h", F_SUM, 3600000, "sum(amount) OVER w1h"},
    {"avg_7d", F_AVG, 604800000, "avg(amount) OVER w7d"},
    {"min_1d", F_MIN, 86400000, "min(amount) OVER w1d"},
    {"max_1d", F_MAX, 86400000, "max(amount) OVER w1d"},
};

static const char *QUERY =
    "SELECT seq, count(*) OVER w10m, count(*) OVER w1h, count(*) OVER w1d,"
    " sum(amount) OVER w1h, avg(amount) OVER w7d, min(amount) OVER w1d,"
    " max(amount) OVER w1d FROM ev WINDOW"
    " w10m AS (PARTITION BY account ORDER BY ts RANGE BETWEEN 600000 PRECEDING AND CURRENT ROW),"
    " w1h AS (PARTITION BY account ORDER BY ts RANGE BETWEEN 3600000 PRECEDING AND CURRENT ROW),"
    " w1d AS (PARTITION BY account ORDER BY ts RANGE BETWEEN 86400000 PRECEDING AND CURRENT ROW),"
    " w7d AS (PARTITION BY account ORDER BY ts RANGE BETWEEN 604800000 PRECEDING AND CURRENT ROW)";

typedef struct ev {
    int64_t ts;
    double amount;
    uint32_t acct;
    uint32_t line;      /* 0-based input line */
    int32_t prev;       /* previous event of the account in arrival order, or -1 */
    int32_t prev_card;  /* previous event of the card in arrival order, or -1 */
    uint32_t str[3];    /* merchant, card, device as numbers; NOSTR when missing */
    double lat, lon;    /* NAN when missing */
    uint8_t tied;       /* another event of the account has the same ts */
} ev_t;

#define NOSTR UINT32_MAX
enum { S_MERCHANT, S_CARD, S_DEVICE };
static const char *STR_KEYS[3] = {"merchant", "card", "device"};

/* The fields the checks read from one event line. */
typedef struct fields {
    const char *acct;
    size_t alen;
    int64_t ts;
    double amount;
    const char *str[3];
    size_t slen[3];
    double lat, lon;
} fields_t;

typedef struct res { double v[NFEAT]; uint8_t null[NFEAT]; } res_t;

typedef struct tally { long compared, mismatched; } tally_t;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) { fprintf(stderr, "bench_sqlite: out of memory\n"); exit(1); }
    return p;
}

/* ---------------------------------------------------------------- time */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* RFC 3339 with a zone, fraction kept to the ms. Returns 0 or -1. */
static int parse_ts(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6
        || n == 0)
        return -1;
    const char *p = s + n;
    int64_t frac = 0, scale = 1000;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (scale > 1) { scale /= 10; frac += (*p - '0') * scale; }
            p++;
        }
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) return -1;
        off = (int64_t)(oh * 60 + om) * 60000 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000LL + h * 3600000LL
           + mi * 60000LL + sec * 1000LL + frac - off;
    return 0;
}

/* A string field `"key":"..."` of a flat line, or NULL. */
static const char *flat_str(const char *line, const char *key, size_t *len)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e) return NULL;
    *len = (size_t)(e - p);
    return p;
}

/* A number field `"key":n` of a flat line: 1 found, 0 missing, -1 not a number. */
static int flat_num(const char *line, const char *key, double *v)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return 0;
    p += strlen(pat);
    char *end;
    *v = strtod(p, &end);
    if (end == p || (*end != ',' && *end != '}') || !isfinite(*v)) return -1;
    return 1;
}

/* The fields of a flat line without escapes (vigil-gen's), without a JSON library:
 * with no backslash a string cannot hold a quote, and with no nested object every
 * `"key":` is a top-level key. Returns 0, or -1 to let jansson read the line. */
static int fast_fields(const char *line, fields_t *fl)
{
    if (line[0] != '{' || strchr(line, '\\') || strchr(line + 1, '{')) return -1;
    size_t tlen;
    const char *t = flat_str(line, "ts", &tlen);
    fl->acct = flat_str(line, "account", &fl->alen);
    if (!fl->acct || !t || tlen > 63 || flat_num(line, "amount", &fl->amount) != 1) return -1;
    char tbuf[64];
    memcpy(tbuf, t, tlen);
    tbuf[tlen] = 0;
    if (parse_ts(tbuf, &fl->ts)) return -1;
    for (int k = 0; k < 3; k++) fl->str[k] = flat_str(line, STR_KEYS[k], &fl->slen[k]);
    if (flat_num(line, "lat", &fl->lat) != 1) fl->lat = NAN;
    if (flat_num(line, "lon", &fl->lon) != 1) fl->lon = NAN;
    return 0;
}

/* The same with jansson; the strings live in *o (json_decref it after use). */
static int json_fields(const char *line, json_t **o, fields_t *fl)
{
    json_error_t jerr;
    *o = json_loads(line, JSON_DECODE_ANY, &jerr);
    json_t *ja = json_object_get(*o, "account");
    json_t *jt = json_object_get(*o, "ts");
    json_t *jm = json_object_get(*o, "amount");
    if (!json_is_string(ja) || !json_is_number(jm)) return -1;
    if (json_is_string(jt)) {
        if (parse_ts(json_string_value(jt), &fl->ts)) return -1;
    } else if (json_is_integer(jt)) {
        fl->ts = json_integer_value(jt);
    } else {
        return -1;
    }
    fl->acct = json_string_value(ja);
    fl->alen = json_string_length(ja);
    fl->amount = json_number_value(jm);
    for (int k = 0; k < 3; k++) {
        json_t *v = json_object_get(*o, STR_KEYS[k]);
        fl->str[k] = json_is_string(v) ? json_string_value(v) : NULL;
        fl->slen[k] = json_is_string(v) ? json_string_length(v) : 0;
    }
    json_t *la = json_object_get(*o, "lat"), *lo = json_object_get(*o, "lon");
    fl->lat = json_is_number(la) ? json_number_value(la) : NAN;
    fl->lon = json_is_number(lo) ? json_number_value(lo) : NAN;
    return 0;
}

/* ---------------------------------------------------------------- accounts */

typedef struct amap { char **key; uint32_t *val; size_t cap, n; } amap_t;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)s[i]; h *= 1099511628211ULL; }
    return h;
}

static uint32_t amap_get(amap_t *m, const char *s, size_t n)
{
    if (m->n * 2 >= m->cap) {
        amap_t g = {xmalloc(sizeof(char *) * (m->cap ? m->cap * 2 : 1024)),
                    xmalloc(sizeof(uint32_t) * (m->cap ? m->cap * 2 : 1024)),
                    m->cap ? m->cap * 2 : 1024, m->n};
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->key[i]) continue;
            size_t j = fnv(m->key[i], strlen(m->key[i])) & (g.cap - 1);
            while (g.key[j]) j = (j + 1) & (g.cap - 1);
            g.key[j] = m->key[i];
            g.val[j] = m->val[i];
        }
        free(m->key);
        free(m->val);
        *m = g;
    }
    size_t j = fnv(s, n) & (m->cap - 1);
    while (m->key[j]) {
        if (strlen(m->key[j]) == n && memcmp(m->key[j], s, n) == 0) return m->val[j];
        j = (j + 1) & (m->cap - 1);
    }
    m->key[j] = xmalloc(n + 1);
    memcpy(m->key[j], s, n);
    m->val[j] = (uint32_t)m->n++;
    return m->val[j];
}

static void amap_free(amap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) free(m->key[i]);
    free(m->key);
    free(m->val);
}

/* ---------------------------------------------------------------- checks */

static int same(fkind_t k, double a, double b, double mag)
{
    if (k == F_COUNT || k == F_MIN || k == F_MAX) return a == b;
    return fabs(a - b) <= 1e-9 * (mag > 1 ? mag : 1);
}

static void reference(const ev_t *ev, size_t i, res_t *r, double *mag)
{
    const ev_t *e = &ev[i];
    for (int f = 0; f < NFEAT; f++) {
        int64_t lo = e->ts - FEATS[f].w_ms;
        double cnt = 0, sum = 0, mn = INFINITY, mx = -INFINITY, abs = 0;
        for (int32_t j = (int32_t)i; j >= 0; j = ev[j].prev) {
            if (ev[j].ts < lo - 3600000) break;  /* older ones would have made j late */
            if (ev[j].ts < lo || ev[j].ts > e->ts) continue;
            cnt++;
            sum += ev[j].amount;
            abs += fabs(ev[j].amount);
            if (ev[j].amount < mn) mn = ev[j].amount;
            if (ev[j].amount > mx) mx = ev[j].amount;
        }
        r->null[f] = 0;
        mag[f] = abs;
        switch (FEATS[f].kind) {
        case F_COUNT: r->v[f] = cnt; break;
        case F_SUM: r->v[f] = sum; break;
        case F_AVG: r->v[f] = sum / cnt; mag[f] = abs / cnt; break;
        case F_MIN: r->v[f] = mn; break;
        case F_MAX: r->v[f] = mx; break;
        }
    }
}

/* The other nine features of bench.vrl, which SQLite cannot compute, by brute force.
 * Each gives a value or null (*isnull), and the magnitude its tolerance is relative to. */
#define NEXTRA 9
static const char *EXTRA[NEXTRA] = {"sd_7d", "merch_1d", "small_10m", "card_1h", "sess_n",
                                    "sess_sum", "km_prev", "secs_prev", "new_device"};

static double haversine(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = 3.14159265358979323846 / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2)
               + cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * 6371.0 * asin(sqrt(a < 1 ? a : 1));
}

static void reference_extra(const ev_t *ev, size_t i, double *v, uint8_t *isnull, double *mag)
{
    const ev_t *e = &ev[i];
    memset(isnull, 0, NEXTRA);
    for (int k = 0; k < NEXTRA; k++) mag[k] = 0;
    /* stddev(tx.amount, 7d), population */
    double cnt = 0, sum = 0, abs = 0;
    for (int32_t j = (int32_t)i; j >= 0 && ev[j].ts >= e->ts - 604800000; j = ev[j].prev) {
        cnt++;
        sum += ev[j].amount;
        abs += fabs(ev[j].amount);
    }
    double mean = sum / cnt, ss = 0;
    for (int32_t j = (int32_t)i; j >= 0 && ev[j].ts >= e->ts - 604800000; j = ev[j].prev)
        ss += (ev[j].amount - mean) * (ev[j].amount - mean);
    v[0] = sqrt(ss / cnt);
    mag[0] = abs;
    /* distinct(tx.merchant, 1d) */
    v[1] = 0;
    for (int32_t j = (int32_t)i; j >= 0 && ev[j].ts >= e->ts - 86400000; j = ev[j].prev) {
        if (ev[j].str[S_MERCHANT] == NOSTR) continue;
        int dup = 0;
        for (int32_t k = (int32_t)i; k != j; k = ev[k].prev)
            if (ev[k].ts >= e->ts - 86400000 && ev[k].str[S_MERCHANT] == ev[j].str[S_MERCHANT]) dup = 1;
        v[1] += !dup;
    }
    /* count(10m where tx.amount < 5) */
    v[2] = 0;
    for (int32_t j = (int32_t)i; j >= 0 && ev[j].ts >= e->ts - 600000; j = ev[j].prev)
        v[2] += ev[j].amount < 5;
    /* count(1h by tx.card) */
    if (e->str[S_CARD] == NOSTR) {
        isnull[3] = 1;
    } else {
        v[3] = 0;
        for (int32_t j = (int32_t)i; j >= 0 && ev[j].ts >= e->ts - 3600000; j = ev[j].prev_card)
            v[3]++;
    }
    /* session_count(30m), session_sum(tx.amount, 30m) */
    v[4] = 1;
    v[5] = e->amount;
    mag[5] = fabs(e->amount);
    for (int32_t c = (int32_t)i, j = e->prev; j >= 0 && ev[c].ts - ev[j].ts <= 1800000;
         c = j, j = ev[j].prev) {
        v[4]++;
        v[5] += ev[j].amount;
        mag[5] += fabs(ev[j].amount);
    }
    /* km and seconds from the previous event */
    int32_t p = e->prev;
    if (p < 0 || isnan(e->lat) || isnan(e->lon) || isnan(ev[p].lat) || isnan(ev[p].lon)) {
        isnull[6] = 1;
    } else {
        v[6] = haversine(e->lat, e->lon, ev[p].lat, ev[p].lon);
        mag[6] = v[6];
    }
    if (p < 0) isnull[7] = 1;
    else { v[7] = (double)(e->ts - ev[p].ts) / 1000.0; mag[7] = v[7]; }
    /* not seen(tx.device, 7d): 1 for true, 0 for false */
    if (e->str[S_DEVICE] == NOSTR) {
        isnull[8] = 1;
    } else {
        v[8] = 1;
        for (int32_t j = p; j >= 0 && ev[j].ts >= e->ts - 604800000; j = ev[j].prev)
            if (ev[j].str[S_DEVICE] == e->str[S_DEVICE]) v[8] = 0;
    }
}

static int sqlfail(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bench_sqlite: %s: %s\n", what, sqlite3_errmsg(db));
    return 1;
}

int main(int argc, char **argv)
{
    const char *input = NULL, *decisions = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--decisions") && i + 1 < argc) decisions = argv[++i];
        else if (argv[i][0] != '-' && !input) input = argv[i];
        else {
            fprintf(stderr, "usage: bench_sqlite EVENTS.ndjson [--decisions FILE]\n");
            return 2;
        }
    }
    if (!input) { fprintf(stderr, "usage: bench_sqlite EVENTS.ndjson [--decisions FILE]\n"); return 2; }

    /* 1. read the events */
    FILE *f = fopen(input, "rb");
    if (!f) { fprintf(stderr, "bench_sqlite: %s: %s\n", input, strerror(errno)); return 1; }
    size_t cap = 1 << 20, n = 0;
    ev_t *ev = xmalloc(cap * sizeof *ev);
    amap_t accts = {0}, strs[3] = {{0}, {0}, {0}};
    int32_t *last = NULL, *lastc = NULL;
    size_t lastc_cap = 0;
    size_t last_cap = 0;
    char *line = xmalloc(MAX_LINE + 2);
    uint32_t lineno = 0;
    long skipped = 0;
    double t0 = now_s();
    for (; fgets(line, MAX_LINE + 2, f); lineno++) {
        fields_t fl;
        json_t *o = NULL;
        if (fast_fields(line, &fl) && json_fields(line, &o, &fl)) {
            skipped++;
            json_decref(o);
            continue;
        }
        if (n == cap) {
            cap *= 2;
            ev = realloc(ev, cap * sizeof *ev);
            if (!ev) { fprintf(stderr, "bench_sqlite: out of memory\n"); return 1; }
        }
        ev_t *e = &ev[n];
        e->ts = fl.ts;
        e->amount = fl.amount;
        e->acct = amap_get(&accts, fl.acct, fl.alen);
        for (int k = 0; k < 3; k++)
            e->str[k] = fl.str[k] ? amap_get(&strs[k], fl.str[k], fl.slen[k]) : NOSTR;
        e->lat = fl.lat;
        e->lon = fl.lon;
        e->prev_card = -1;
        if (e->str[S_CARD] != NOSTR) {
            uint32_t c = e->str[S_CARD];
            if (c >= lastc_cap) {
                size_t nc = lastc_cap ? lastc_cap * 2 : 1 << 16;
                while (nc <= c) nc *= 2;
                lastc = realloc(lastc, nc * sizeof *lastc);
                if (!lastc) { fprintf(stderr, "bench_sqlite: out of memory\n"); return 1; }
                for (size_t k = lastc_cap; k < nc; k++) lastc[k] = -1;
                lastc_cap = nc;
            }
            e->prev_card = lastc[c];
            lastc[c] = (int32_t)n;
        }
        e->line = lineno;
        e->tied = 0;
        if (e->acct >= last_cap) {
            size_t nc = last_cap ? last_cap * 2 : 1 << 16;
            last = realloc(last, nc * sizeof *last);
            if (!last) { fprintf(stderr, "bench_sqlite: out of memory\n"); return 1; }
            for (size_t k = last_cap; k < nc; k++) last[k] = -1;
            last_cap = nc;
        }
        e->prev = last[e->acct];
        for (int32_t j = e->prev; j >= 0 && ev[j].ts >= e->ts - 3600000; j = ev[j].prev)
            if (ev[j].ts == e->ts) { ev[j].tied = 1; e->tied = 1; }
        last[e->acct] = (int32_t)n++;
        json_decref(o);
    }
    fclose(f);
    double t_read = now_s() - t0;
    printf("events %zu\naccounts %zu\nskipped_lines %ld\nread_s %.3f\n", n, accts.n, skipped, t_read);

    /* 2. load into SQLite */
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return sqlfail(db, "open");
    const char *setup =
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY;"
        "PRAGMA cache_size=-1048576;"
        "CREATE TABLE ev(seq INTEGER PRIMARY KEY, account INTEGER NOT NULL,"
        " ts INTEGER NOT NULL, amount REAL NOT NULL);";
    if (sqlite3_exec(db, setup, NULL, NULL, NULL) != SQLITE_OK) return sqlfail(db, "setup");
    t0 = now_s();
    sqlite3_stmt *ins;
    if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return sqlfail(db, "begin");
    if (sqlite3_prepare_v2(db, "INSERT INTO ev VALUES(?,?,?,?)", -1, &ins, NULL) != SQLITE_OK)
        return sqlfail(db, "prepare insert");
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(ins, 1, (sqlite3_int64)i);
        sqlite3_bind_int64(ins, 2, ev[i].acct);
        sqlite3_bind_int64(ins, 3, ev[i].ts);
        sqlite3_bind_double(ins, 4, ev[i].amount);
        if (sqlite3_step(ins) != SQLITE_DONE) return sqlfail(db, "insert");
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    if (sqlite3_exec(db, "COMMIT; CREATE INDEX ev_acct_ts ON ev(account, ts);", NULL, NULL, NULL)
        != SQLITE_OK)
        return sqlfail(db, "commit, index");
    double t_load = now_s() - t0;

    /* 3. the window query */
    res_t *sq = xmalloc(n * sizeof *sq);
    sqlite3_stmt *q;
    t0 = now_s();
    if (sqlite3_prepare_v2(db, QUERY, -1, &q, NULL) != SQLITE_OK) return sqlfail(db, "prepare query");
    size_t rows = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        sqlite3_int64 seq = sqlite3_column_int64(q, 0);
        if (seq < 0 || (size_t)seq >= n) { fprintf(stderr, "bench_sqlite: bad seq\n"); return 1; }
        for (int k = 0; k < NFEAT; k++) {
            sq[seq].null[k] = sqlite3_column_type(q, k + 1) == SQLITE_NULL;
            sq[seq].v[k] = sqlite3_column_double(q, k + 1);
        }
        rows++;
    }
    if (rc != SQLITE_DONE) return sqlfail(db, "query");
    sqlite3_finalize(q);
    double t_query = now_s() - t0;
    printf("sqlite_version %s\nsqlite_load_s %.3f\nsqlite_query_s %.3f\nsqlite_rows %zu\n",
           sqlite3_libversion(), t_load, t_query, rows);
    printf("sqlite_query_events_per_s %.0f\n", (double)n / t_query);
    sqlite3_close(db);

    /* 4. SQLite against the brute-force reference */
    tally_t sq_ref[NFEAT] = {{0, 0}};
    long ties = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].tied) { ties++; continue; }
        res_t r;
        double mag[NFEAT];
        reference(ev, i, &r, mag);
        for (int k = 0; k < NFEAT; k++) {
            sq_ref[k].compared++;
            if (sq[i].null[k] || !same(FEATS[k].kind, sq[i].v[k], r.v[k], mag[k])) {
                if (sq_ref[k].mismatched++ < 3)
                    fprintf(stderr, "sqlite %s line %u: %.17g, reference %.17g\n", FEATS[k].name,
                            ev[i].line + 1, sq[i].v[k], r.v[k]);
            }
        }
    }
    printf("tied_events_skipped %ld\n", ties);
    for (int k = 0; k < NFEAT; k++)
        printf("check_sqlite_vs_reference %s %ld %ld\n", FEATS[k].name, sq_ref[k].compared,
               sq_ref[k].mismatched);

    /* 5. vigil's decisions against the reference and SQLite */
    int status = 0;
    if (decisions) {
        FILE *d = fopen(decisions, "rb");
        if (!d) { fprintf(stderr, "bench_sqlite: %s: %s\n", decisions, strerror(errno)); return 1; }
        tally_t vg_ref[NFEAT] = {{0, 0}}, vg_sq[NFEAT] = {{0, 0}}, vg_ex[NEXTRA] = {{0, 0}};
        size_t i = 0;
        long decided = 0;
        for (uint32_t dl = 0; fgets(line, MAX_LINE + 2, d); dl++) {
            while (i < n && ev[i].line < dl) i++;
            if (i >= n || ev[i].line != dl) continue;     /* a line we skipped */
            json_t *o = json_loads(line, 0, NULL);
            json_t *fs = o ? json_object_get(o, "features") : NULL;
            if (!json_is_object(fs)) { json_decref(o); continue; }
            decided++;
            res_t r;
            double mag[NFEAT];
            reference(ev, i, &r, mag);
            for (int k = 0; k < NFEAT; k++) {
                json_t *v = json_object_get(fs, FEATS[k].name);
                int isnum = json_is_number(v);
                double x = isnum ? json_number_value(v) : NAN;
                vg_ref[k].compared++;
                if (!isnum || !same(FEATS[k].kind, x, r.v[k], mag[k])) {
                    if (vg_ref[k].mismatched++ < 3)
                        fprintf(stderr, "vigil %s line %u: %.17g, reference %.17g\n",
                                FEATS[k].name, dl + 1, x, r.v[k]);
                }
                if (FEATS[k].kind <= F_AVG && !ev[i].tied) {
                    vg_sq[k].compared++;
                    if (!isnum || sq[i].null[k] || !same(FEATS[k].kind, x, sq[i].v[k], mag[k]))
                        vg_sq[k].mismatched++;
                }
            }
            double xv[NEXTRA], xmag[NEXTRA];
            uint8_t xnull[NEXTRA];
            reference_extra(ev, i, xv, xnull, xmag);
            for (int k = 0; k < NEXTRA; k++) {
                json_t *v = json_object_get(fs, EXTRA[k]);
                int ok;
                double x = NAN;
                if (xnull[k]) ok = json_is_null(v);
                else if (k == NEXTRA - 1) ok = json_is_boolean(v) && json_is_true(v) == (xv[k] == 1);
                else ok = json_is_number(v) && (x = json_number_value(v),
                          fabs(x - xv[k]) <= 1e-9 * (xmag[k] > 1 ? xmag[k] : 1));
                vg_ex[k].compared++;
                if (!ok && vg_ex[k].mismatched++ < 3) {
                    char *txt = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
                    char want[32];
                    if (xnull[k]) snprintf(want, sizeof want, "null");
                    else if (k == NEXTRA - 1) snprintf(want, sizeof want, xv[k] == 1 ? "true" : "false");
                    else snprintf(want, sizeof want, "%.17g", xv[k]);
                    fprintf(stderr, "vigil %s line %u: %s, reference %s\n", EXTRA[k], dl + 1,
                            txt ? txt : "(missing)", want);
                    free(txt);
                }
            }
            json_decref(o);
        }
        fclose(d);
        printf("vigil_decisions_checked %ld\n", decided);
        for (int k = 0; k < NFEAT; k++) {
            printf("check_vigil_vs_reference %s %ld %ld\n", FEATS[k].name, vg_ref[k].compared,
                   vg_ref[k].mismatched);
            if (vg_ref[k].mismatched || !vg_ref[k].compared) status = 1;
        }
        for (int k = 0; k < NEXTRA; k++) {
            printf("check_vigil_vs_reference %s %ld %ld\n", EXTRA[k], vg_ex[k].compared,
                   vg_ex[k].mismatched);
            if (vg_ex[k].mismatched || !vg_ex[k].compared) status = 1;
        }
        for (int k = 0; k < NFEAT; k++) {
            if (FEATS[k].kind > F_AVG) continue;
            printf("check_vigil_vs_sqlite %s %ld %ld\n", FEATS[k].name, vg_sq[k].compared,
                   vg_sq[k].mismatched);
            if (vg_sq[k].mismatched) status = 1;
        }
    }
    free(sq);
    free(line);
    free(last);
    free(ev);
    amap_free(&accts);
    for (int k = 0; k < 3; k++) amap_free(&strs[k]);
    free(lastc);
    return status;
}
