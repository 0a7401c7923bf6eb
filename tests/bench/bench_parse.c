/* bench_parse.c - event parsing speed: vg_event_parse (simdjson DOM) against the
 * baseline of jansson (json_loadb and extracting the same fields), same run, same input.
 *
 * Generates 200k realistic events of about 260 bytes in memory with a fixed PRNG, then
 * times each parser over all of them (best of 3 rounds) and prints ns/event, events/s
 * and the ratio. Run it in a Release build:
 *   cmake -S . -B build/rel -DCMAKE_BUILD_TYPE=Release && cmake --build build/rel --target bench_parse
 *   build/rel/bench_parse [events]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "engine/event.h"
#include "rules/errors.h"

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

typedef struct {
    char *text;
    size_t *off, *len;
    size_t n;
} corpus_t;

static int make_corpus(corpus_t *c, size_t n) {
    static const char *cur[] = {"USD", "EUR", "GBP", "JPY"};
    static const char *chan[] = {"ecom", "pos", "atm", "moto"};
    static const char *type[] = {"authorization", "capture", "refund"};
    static const char *cc[] = {"US", "DE", "FR", "GB", "JP", "BR"};
    c->text = malloc(n * 320);
    c->off = malloc(n * sizeof *c->off);
    c->len = malloc(n * sizeof *c->len);
    if (!c->text || !c->off || !c->len) return -1;
    uint64_t s = 0x2545F4914F6CDD1DULL;
    size_t pos = 0;
    int64_t ts = 1795468423123LL;
    char tbuf[32];
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s);
        ts += (int64_t)(r % 5000);
        vg_time_format(ts, tbuf);
        int k = snprintf(c->text + pos, 320,
            "{\"id\":\"tx-%08zu\",\"account\":\"acct-%05u\",\"ts\":\"%s\",\"amount\":%u.%02u,"
            "\"currency\":\"%s\",\"merchant\":\"m-%04u\",\"mcc\":\"%04u\",\"country\":\"%s\","
            "\"ip\":\"203.0.%u.%u\",\"device\":\"d-%05x\",\"card\":\"card-%04u\",\"channel\":\"%s\","
            "\"type\":\"%s\",\"lat\":%d.%04u,\"lon\":%d.%04u}",
            i, (unsigned)(r % 50000), tbuf, (unsigned)(r >> 20) % 2000, (unsigned)(r >> 32) % 100,
            cur[(r >> 8) % 4], (unsigned)(r >> 12) % 10000, 5000 + (unsigned)(r >> 16) % 999,
            cc[(r >> 24) % 6], (unsigned)(r >> 28) % 256, (unsigned)(r >> 36) % 256,
            (unsigned)(r >> 40) % 0xfffff, (unsigned)(r >> 44) % 10000, chan[(r >> 50) % 4],
            type[(r >> 54) % 3], (int)((r >> 2) % 170) - 85, (unsigned)(r >> 6) % 10000,
            (int)((r >> 10) % 350) - 175, (unsigned)(r >> 14) % 10000);
        c->off[i] = pos;
        c->len[i] = (size_t)k;
        pos += (size_t)k;
    }
    c->n = n;
    return 0;
}

/* The baseline: jansson, extracting and checking the same fields. */
static int jansson_parse(const char *line, size_t len, double *acc) {
    json_error_t err;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    if (!o) return -1;
    int rc = -1;
    json_t *id = json_object_get(o, "id"), *acct = json_object_get(o, "account");
    json_t *ts = json_object_get(o, "ts"), *amt = json_object_get(o, "amount");
    if (!json_is_object(o) || !json_is_string(id) || !json_is_string(acct) || !json_is_number(amt))
        goto out;
    size_t il = json_string_length(id), al = json_string_length(acct);
    if (il == 0 || il > 128 || al == 0 || al > 128) goto out;
    int64_t ms;
    char e[128];
    if (json_is_string(ts)) {
        if (vg_time_parse(json_string_value(ts), json_string_length(ts), &ms, e, sizeof e) < 0) goto out;
    } else if (json_is_integer(ts)) {
        ms = json_integer_value(ts);
    } else {
        goto out;
    }
    static const char *opt[] = {"currency", "merchant", "mcc", "country", "ip", "device", "card",
                                "channel", "type"};
    size_t sl = 0;
    for (int i = 0; i < 9; i++) {
        json_t *v = json_object_get(o, opt[i]);
        if (v && !json_is_null(v)) {
            if (!json_is_string(v)) goto out;
            sl += json_string_length(v);
        }
    }
    double lat = json_number_value(json_object_get(o, "lat"));
    double lon = json_number_value(json_object_get(o, "lon"));
    if (lat < -90 || lat > 90 || lon < -180 || lon > 180) goto out;
    *acc += json_number_value(amt) + (double)ms * 1e-12 + (double)(sl + il + al) + lat + lon;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 200000;
    corpus_t c;
    if (make_corpus(&c, n) < 0) {
        fprintf(stderr, "bench_parse: out of memory\n");
        return 1;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += c.len[i];
    printf("corpus: %zu events, %.0f bytes/event on average\n", n, (double)total / (double)n);

    vg_event_t ev;
    vg_event_init(&ev);
    double best_s = 1e30, best_j = 1e30, acc = 0;
    for (int round = 0; round < 3; round++) {
        double t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            if (vg_event_parse(&ev, c.text + c.off[i], c.len[i]) != 0) {
                fprintf(stderr, "bench_parse: event %zu rejected: %s\n", i, ev.reason);
                return 1;
            }
            acc += ev.amount + (double)ev.ts_ms * 1e-12 + ev.tx.f[VG_FIELD_LAT].u.n +
                   ev.tx.f[VG_FIELD_LON].u.n;
        }
        double t1 = now_ns();
        for (size_t i = 0; i < n; i++) {
            if (jansson_parse(c.text + c.off[i], c.len[i], &acc) != 0) {
                fprintf(stderr, "bench_parse: jansson rejected event %zu\n", i);
                return 1;
            }
        }
        double t2 = now_ns();
        if (t1 - t0 < best_s) best_s = t1 - t0;
        if (t2 - t1 < best_j) best_j = t2 - t1;
    }
    vg_event_deinit(&ev);
    double ns_s = best_s / (double)n, ns_j = best_j / (double)n;
    printf("parse simdjson: %.0f ns/event (%.2fM events/s); jansson: %.0f ns/event (%.0fk events/s); "
           "baseline ratio %.1fx\n",
           ns_s, 1e3 / ns_s, ns_j, 1e6 / ns_j, ns_j / ns_s);
    printf("(checksum %.3f)\n", acc);
    free(c.text);
    free(c.off);
    free(c.len);
    return 0;
}
