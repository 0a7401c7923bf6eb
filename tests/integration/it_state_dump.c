/* it_state_dump.c - prints every key of vigil state stores with a hash of its value,
 * in key order, so that two state directories can be compared with diff(1).
 *
 *   it_state_dump DIR...
 *
 * One line per key: the store's directory name, the key in hex and a 64-bit FNV-1a of
 * the value. Exit 1 when a store cannot be opened or read. The key m/kafka/changelog
 * (how far this store read the changelog topic: local bookkeeping, different between
 * two stores of equal state) is left out.
 */
#include <stdio.h>
#include <string.h>

#include "engine/store.h"

typedef struct ctx {
    const char *name;
} ctx_t;

static int print_kv(void *c, const void *k, size_t kl, const void *v, size_t vl) {
    const ctx_t *cx = c;
    const unsigned char *kp = k, *vp = v;
    if (kl == 17 && memcmp(k, "m/kafka/changelog", 17) == 0) return 0;
    unsigned long long h = 14695981039346656037ULL;
    for (size_t i = 0; i < vl; i++) {
        h ^= vp[i];
        h *= 1099511628211ULL;
    }
    printf("%s ", cx->name);
    for (size_t i = 0; i < kl; i++) printf("%02x", kp[i]);
    printf(" %016llx %zu\n", h, vl);
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
        ctx_t cx = {name ? name + 1 : argv[i]};
        int rc = vg_store_scan(s, "", 0, print_kv, &cx);
        vg_store_close(s);
        if (rc) {
            fprintf(stderr, "it_state_dump: %s: scan failed\n", argv[i]);
            return 1;
        }
    }
    return 0;
}
