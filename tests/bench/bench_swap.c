/* bench_swap.c - the cost of a ruleset swap (vg_pipeline_set_program) with N accounts:
 * memory only, and with a store whose state is mostly evicted (the swap loads it all and
 * the next checkpoint rewrites it). Prints the time of the swap and of that checkpoint,
 * beside the time the same pipeline took to score the events (the baseline, measured in
 * the same run).
 * Usage: bench_swap [ACCOUNTS (default 100000)] [EVENTS PER ACCOUNT (default 3)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/pipeline.h"
#include "engine/store.h"

static const char *OLD_SRC =
    "feature c1 = count(1h)\n"
    "feature s1 = sum(tx.amount, 2h)\n"
    "feature mx = max(tx.amount, 30m)\n"
    "feature mc = distinct(tx.merchant, 1h by tx.card)\n"
    "feature pv = prev(tx.amount)\n"
    "feature sc = session_count(10m)\n";
static const char *NEW_SRC =
    "feature s1 = sum(tx.amount, 2h)\n"
    "feature mx = max(tx.amount, 30m)\n"
    "feature mc = distinct(tx.merchant, 1h by tx.card)\n"
    "feature pv = prev(tx.amount)\n"
    "feature c2 = count(30m)\n"
    "feature ns = min(tx.amount, 1h)\n"
    "feature nd = seen(tx.merchant, 1h)\n";

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static vg_program_t *compile(const char *src) {
    vg_source_t s = {"b.vrl", src, strlen(src)};
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(&s, 1, &d);
    if (!p) vg_diags_print(&d, &s, 1, stderr);
    vg_diags_deinit(&d);
    return p;
}

static int run(int naccts, int per, const char *dir, vg_program_t *po, vg_program_t *pn) {
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_store_t *store = NULL;
    if (dir) {
        store = vg_store_open(dir, err, sizeof err);
        if (!store) {
            fprintf(stderr, "store: %s\n", err);
            return 1;
        }
        o.store = store;
        o.mem_budget = 16u << 20;   /* most accounts evicted */
    }
    vg_pipeline_t *pl = vg_pipeline_new(po, &o, err, sizeof err);
    if (!pl) {
        fprintf(stderr, "pipeline: %s\n", err);
        return 1;
    }
    vg_buf_t out;
    vg_buf_init(&out);
    char line[512];
    double t0 = now_s();
    long n = 0;
    for (int k = 0; k < per; k++)
        for (int a = 0; a < naccts; a++) {
            snprintf(line, sizeof line,
                     "{\"id\":\"e%d-%d\",\"account\":\"acct%d\",\"ts\":%lld,\"amount\":%d.5,"
                     "\"merchant\":\"m%d\",\"card\":\"c%d\"}",
                     a, k, a, 1767225600000LL + (long long)k * 60000 + a % 1000,
                     (a * 7 + k) % 500, (a + k) % 50, a % 5000);
            vg_outcome_t oc;
            vg_buf_clear(&out);
            if (vg_pipeline_line(pl, line, strlen(line), &out, &oc) != 0) return 1;
            n++;
            if (store && n % 50000 == 0 && vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err))
                return 1;
        }
    double t1 = now_s();
    if (store && vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err)) return 1;
    vg_state_stats_t ss;
    vg_state_get_stats(vg_pipeline_state(pl), &ss);
    size_t before = ss.accounts_in_memory;
    double t2 = now_s();
    if (vg_pipeline_set_program(pl, pn, err, sizeof err)) {
        fprintf(stderr, "swap: %s\n", err);
        return 1;
    }
    double t3 = now_s();
    if (store && vg_pipeline_checkpoint(pl, NULL, 0, 0, err, sizeof err)) {
        fprintf(stderr, "checkpoint: %s\n", err);
        return 1;
    }
    double t4 = now_s();
    vg_state_get_stats(vg_pipeline_state(pl), &ss);
    printf("%-8s %d accounts x %d events: scoring %.2f s (%.0f ns/event, baseline); "
           "accounts in memory before the swap %zu; swap %.3f s; checkpoint after it %.3f s; "
           "in memory after %zu\n",
           store ? "store" : "memory", naccts, per, t1 - t0, (t1 - t0) * 1e9 / (double)n, before,
           t3 - t2, t4 - t3, ss.accounts_in_memory);
    vg_buf_deinit(&out);
    vg_pipeline_free(pl);
    vg_store_close(store);
    return 0;
}

int main(int argc, char **argv) {
    int naccts = argc > 1 ? atoi(argv[1]) : 100000;
    int per = argc > 2 ? atoi(argv[2]) : 3;
    vg_program_t *po = compile(OLD_SRC), *pn = compile(NEW_SRC);
    if (!po || !pn) return 1;
    int rc = run(naccts, per, NULL, po, pn);
    char dir[] = "/tmp/vigil-bench-swap-XXXXXX";
    if (!rc && mkdtemp(dir)) {
        rc = run(naccts, per, dir, po, pn);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) rc = 1;
    }
    vg_prog_unref(po);
    vg_prog_unref(pn);
    return rc;
}
