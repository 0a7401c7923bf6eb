/* it_state_dump.c - prints every key of vigil state stores with a hash of its value,
 * in key order, so that two state directories can be compared with diff(1).
 *
 *   it_state_dump DIR...
 *
 * One line per key: the store's directory name, the key in hex and a 64-bit FNV-1a of
 * the value. Exit 1 when a store cannot be opened or read. The key m/kafka/changelog
 * (how far this store read the changelog topic: local bookkeeping, different between
 * two stores of equal state) is left out. Dedupe records ("d/", engine/state.c) are
 * printed one line per remembered event that is still in its account's log (number
 * seq0 or later, from the account record), as a record of that one event: how the
 * events were grouped into records depends on when checkpoints ran, the state does not.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/store.h"

typedef struct acct {
    char *name;
    size_t len;
    uint64_t seq0;
} acct_t;

typedef struct ctx {
    const char *name;
    acct_t *a;
    size_t n, cap;
} ctx_t;

static uint64_t rd_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* "a/" records: the account's first live dedupe number (versions 4 and later). */
static int note_acct(void *c, const void *k, size_t kl, const void *v, size_t vl) {
    ctx_t *cx = c;
    const unsigned char *vp = v;
    if (vl < 17 || vp[0] < 4) return 0;
    if (cx->n == cx->cap) {
        cx->cap = cx->cap ? 2 * cx->cap : 1024;
        cx->a = realloc(cx->a, cx->cap * sizeof *cx->a);
        if (!cx->a) return -1;
    }
    acct_t *a = &cx->a[cx->n++];
    a->len = kl - 2;
    a->name = malloc(a->len + 1);
    if (!a->name) return -1;
    memcpy(a->name, (const char *)k + 2, a->len);
    a->seq0 = rd_le(vp + 9, 8);
    return 0;
}

static const acct_t *find_acct(const ctx_t *cx, const void *name, size_t len) {
    size_t lo = 0, hi = cx->n;   /* in key order: sorted by name bytes */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const acct_t *a = &cx->a[mid];
        size_t m = a->len < len ? a->len : len;
        int c = memcmp(a->name, name, m);
        if (c == 0) c = a->len < len ? -1 : a->len > len;
        if (c == 0) return a;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static void print_line(const ctx_t *cx, const unsigned char *kp, size_t kl,
                       const unsigned char *vp, size_t vl) {
    unsigned long long h = 14695981039346656037ULL;
    for (size_t i = 0; i < vl; i++) {
        h ^= vp[i];
        h *= 1099511628211ULL;
    }
    printf("%s ", cx->name);
    for (size_t i = 0; i < kl; i++) printf("%02x", kp[i]);
    printf(" %016llx %zu\n", h, vl);
}

/* A "d/" record: each live event as a record of its own. 0, or 1 when malformed. */
static int print_dedupe(const ctx_t *cx, const unsigned char *kp, size_t kl,
                        const unsigned char *vp, size_t vl) {
    if (kl < 14) return 1;
    size_t nl = (size_t)kp[2] << 24 | (size_t)kp[3] << 16 | (size_t)kp[4] << 8 | kp[5];
    if (kl != 6 + nl + 8) return 1;
    uint64_t q = 0;
    for (int i = 0; i < 8; i++) q = q << 8 | kp[kl - 8 + (size_t)i];
    const acct_t *a = find_acct(cx, kp + 6, nl);
    uint64_t seq0 = a ? a->seq0 : 0;
    uint64_t cnt = 1;
    size_t off = 0;
    if (vl >= 12 && rd_le(vp, 8) == (uint64_t)INT64_MIN) {
        cnt = rd_le(vp + 8, 4);
        off = 12;
    }
    unsigned char key[512];
    if (kl > sizeof key) return 1;
    memcpy(key, kp, kl);
    for (uint64_t i = 0; i < cnt; i++, q++) {
        if (off + 16 > vl) return 1;
        size_t il = rd_le(vp + off + 8, 4), dl = rd_le(vp + off + 12, 4) & 0x1fffffffu;   /* without the packed, headless and values bits (engine/state.c) */
        size_t n = 16 + il + dl;
        if (off + n > vl) return 1;
        for (int j = 0; j < 8; j++) key[kl - 8 + (size_t)j] = (unsigned char)(q >> (56 - 8 * j));
        if (q >= seq0) print_line(cx, key, kl, vp + off, n);
        off += n;
    }
    return off == vl ? 0 : 1;
}

static int print_kv(void *c, const void *k, size_t kl, const void *v, size_t vl) {
    const ctx_t *cx = c;
    if (kl == 17 && memcmp(k, "m/kafka/changelog", 17) == 0) return 0;
    if (kl > 2 && memcmp(k, "d/", 2) == 0) {
        if (print_dedupe(cx, k, kl, v, vl) == 0) return 0;
        fprintf(stderr, "it_state_dump: %s: a malformed dedupe record\n", cx->name);
        return 1;
    }
    print_line(cx, k, kl, v, vl);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: it_state_dump DIR...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        char err[512];
        vg_store_t *s = vg_store_open(argv[i], err, sizeof(err));
        if (!s) {
            fprintf(stderr, "it_state_dump: %s\n", err);
            return 1;
        }
        const char *name = strrchr(argv[i], '/');
        ctx_t cx = {name ? name + 1 : argv[i], NULL, 0, 0};
        int rc = vg_store_scan(s, "a/", 2, note_acct, &cx);
        if (!rc) rc = vg_store_scan(s, "", 0, print_kv, &cx);
        vg_store_close(s);
        for (size_t j = 0; j < cx.n; j++) free(cx.a[j].name);
        free(cx.a);
        if (rc) {
            fprintf(stderr, "it_state_dump: %s: scan failed\n", argv[i]);
            return 1;
        }
    }
    return 0;
}
