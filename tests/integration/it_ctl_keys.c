/* it_ctl_keys.c - counts or deletes the keys of a prefix in a control store (api/ctl.h),
 * for the integration tests that look into one or damage it by hand (the server
 * stopped).
 *
 *   it_ctl_keys DIR count PREFIX     prints how many keys start with PREFIX
 *   it_ctl_keys DIR delete PREFIX    deletes them, prints how many
 *
 * PREFIX is percent-decoded ("M/acct%00": the alert index entries of acct). Exit 1 when
 * the store cannot be opened, read or written, 2 on bad arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/ctl.h"
#include "rules/errors.h"

typedef struct ctx {
    vg_ctl_keys_t del;
    int do_del;
    long n;
} ctx_t;

static int key_cb(void *arg, const char *k, size_t kl, const char *v, size_t vl) {
    (void)v, (void)vl;
    ctx_t *c = arg;
    c->n++;
    return c->do_del ? vg_ctl_keys_add(&c->del, k, kl) : 0;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[2], "count") != 0 && strcmp(argv[2], "delete") != 0)) {
        fprintf(stderr, "usage: it_ctl_keys DIR count|delete PREFIX\n");
        return 2;
    }
    size_t n = strlen(argv[3]), pl = 0;
    char *pre = malloc(n + 1);
    if (!pre) return 1;
    for (size_t i = 0; i < n; i++) {
        if (argv[3][i] == '%' && i + 2 < n + 1 && hexval(argv[3][i + 1]) >= 0 &&
            hexval(argv[3][i + 2]) >= 0) {
            pre[pl++] = (char)(hexval(argv[3][i + 1]) * 16 + hexval(argv[3][i + 2]));
            i += 2;
        } else {
            pre[pl++] = argv[3][i];
        }
    }
    char err[512] = "";
    vg_ctl_t *db = vg_ctl_open(argv[1], err, sizeof err);
    if (!db) {
        fprintf(stderr, "it_ctl_keys: %s: %s\n", argv[1], err);
        free(pre);
        return 1;
    }
    ctx_t c = {{0}, strcmp(argv[2], "delete") == 0, 0};
    vg_ctl_keys_init(&c.del, db, 1);
    int rc = vg_ctl_scan(db, pre, pl, NULL, 0, key_cb, &c);
    int erc = vg_ctl_keys_end(&c.del);
    vg_ctl_close(db);
    free(pre);
    if (rc || erc) {
        fprintf(stderr, "it_ctl_keys: %s\n", vg_strerror(rc ? rc : erc));
        return 1;
    }
    printf("%ld\n", c.n);
    return 0;
}
