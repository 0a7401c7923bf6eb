/* fuzz_event.c - libFuzzer target for the per-event pipeline: each input is a stream of
 * NDJSON lines (split at '\n') fed to a fresh in-memory pipeline, as `vigil replay`
 * feeds them: parsing and validation (simdjson), the state (windows, sessions, keys,
 * dedupe, lateness), the anomaly models, features, rules and the decision line. Every
 * line must come out as a decision, a duplicate or a rejection; any engine error other
 * than running out of memory aborts (a finding), as do ASan and UBSan reports.
 *
 * Before the events, the input may hold sections ended by a line `---` (without such a
 * line the whole input is events): one starting
 * with `id,` is a label file (`vigil replay --labels`: read, and applied by event time
 * when it loads), one starting with `{` the lists' JSON (`--lists`). A section that does
 * not load is skipped, as replay would refuse it.
 *
 * A twin pipeline takes the same lines with a RocksDB store and a memory budget of one
 * byte, checkpointed after every line: each account and key is encoded, evicted and
 * decoded back before its next event. Its output must equal the in-memory pipeline's
 * byte for byte (the budget never changes a result), and a state it wrote must always
 * load (a state the decoder refuses is an engine error: a finding). The store is one
 * directory for the process ($TMPDIR), emptied after each input.
 *
 * The rules: the files listed (colon-separated) in $VIGIL_FUZZ_RULES, default
 * rules/packs/cards.vrl plus a few constructs of its own (relative to the directory the
 * fuzzer runs in: the repository root). See tests/fuzz/README.md. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/cli.h"
#include "engine/event.h"
#include "engine/jsonout.h"
#include "engine/labels.h"
#include "engine/pipeline.h"
#include "engine/store.h"
#include "rules/lists.h"
#include "rules/program.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* constructs the pack does not use: sessions, stddev, min/max, keys other than the
 * card, anomaly scores in features and in a window, label sums */
static const char EXTRA[] =
    "feature fz_sess_n = session_count(15m)\n"
    "feature fz_sess_sum = session_sum(tx.amount, 15m)\n"
    "feature fz_sd = stddev(tx.amount, 7d)\n"
    "feature fz_min = min(tx.amount, 1d)\n"
    "feature fz_max = max(tx.amount, 1d)\n"
    "feature fz_dev = count(2h by tx.device)\n"
    "feature fz_merch = distinct(tx.merchant, 1d where tx.channel == \"ecom\")\n"
    "feature fz_an = anomaly.score\n"
    "feature fz_odd = count(3d where anomaly.score >= 0.6)\n"
    "feature fz_fraud = fraud_count(28d by tx.merchant)\n"
    "feature fz_lab = labelled_count(28d by tx.merchant)\n"
    "feature fz_mine = fraud_count(7d)\n"
    "feature fz_gsum = labelled_sum(tx.amount * anomaly.score, 7d) - fraud_sum(tx.amount, 7d)\n"
    "rule fz_big\n  severity high\n  action review\n  score 50\n"
    "  message \"amount {tx.amount} at {tx.merchant}\"\n"
    "  when tx.amount > 5 * fz_max or fz_an > 0.9\nend\n";

static vg_program_t *prog;
static vg_sources_t srcs;   /* kept for the program's life (it may point into them) */
static vg_store_t *store;   /* the twin's */
static char store_dir[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void cleanup(void) {
    vg_store_close(store);
    store = NULL;
    if (store_dir[0]) nftw(store_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int collect(void *ctx, const void *k, size_t kl, const void *v, size_t vl) {
    (void)v, (void)vl;
    vg_batch_delete(ctx, k, kl);
    return 0;
}

static void open_store(void) {
    char err[256];
    const char *tmp = getenv("TMPDIR");
    snprintf(store_dir, sizeof store_dir, "%s/fuzz_event.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(store_dir)) abort();
    if (!(store = vg_store_open(store_dir, err, sizeof err))) {
        fprintf(stderr, "fuzz_event: %s\n", err);
        abort();
    }
}

/* Deletes every key the twin wrote: the next input starts from an empty store. The
 * deletions pile up as tombstones that every later scan walks, so the store is made
 * anew once they are many. */
static void empty_store(void) {
    static long deleted;
    vg_batch_t *b = vg_batch_new();
    if (!b) abort();
    char err[256];
    if (vg_store_scan(store, "", 0, collect, b) != 0 ||
        (vg_batch_count(b) && vg_store_write(store, b, 0, err, sizeof err) != 0))
        abort();
    deleted += vg_batch_count(b);
    vg_batch_free(b);
    if (deleted > 20000) {
        cleanup();
        open_store();
        deleted = 0;
    }
}

static void init(void) {
    const char *env = getenv("VIGIL_FUZZ_RULES");
    char *list = strdup(env && *env ? env : "rules/packs/cards.vrl");
    char *paths[16];
    int np = 0;
    for (char *save = NULL, *p = strtok_r(list, ":", &save); p && np < 16;
         p = strtok_r(NULL, ":", &save))
        paths[np++] = p;
    char err[512];
    if (vg_sources_load(&srcs, paths, np, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_event: %s (run from the repository root)\n", err);
        abort();
    }
    free(list);
    vg_source_t *v = realloc(srcs.v, ((size_t)srcs.n + 1) * sizeof *v);
    if (!v) abort();
    srcs.v = v;
    srcs.v[srcs.n++] = (vg_source_t){strdup("fuzz_extra.vrl"), strdup(EXTRA), sizeof EXTRA - 1};
    prog = vg_cli_compile(&srcs, NULL, NULL);
    if (!prog) abort();
    open_store();
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!prog) init();
    vg_pipeline_opts_t o;
    vg_pipeline_opts_default(&o);
    char err[256];
    vg_pipeline_t *pl = vg_pipeline_new(prog, &o, err, sizeof err);
    if (!pl) {
        fprintf(stderr, "fuzz_event: %s\n", err);
        abort();
    }
    o.store = store;
    o.mem_budget = 1;
    vg_pipeline_t *tw = vg_pipeline_new(prog, &o, err, sizeof err);
    if (!tw) {
        fprintf(stderr, "fuzz_event: twin: %s\n", err);
        abort();
    }
    const char *s = (const char *)data, *end = s + size;
    vg_labels_t *labels = NULL;
    for (int sec = 0; sec < 2 && s < end && (*s == '{' || (end - s >= 3 && !memcmp(s, "id,", 3)));
         sec++) {
        const char *sep = NULL;
        for (const char *q = s; q + 4 <= end; q++)
            if (!memcmp(q, "\n---", 4) && (q + 4 == end || q[4] == '\n')) {
                sep = q;
                break;
            }
        if (!sep) break;   /* no `---` line: no sections, the whole input is events (an
                            * NDJSON input starts with '{' too: it used to be read as a
                            * lists section, so no event of such an input ran) */
        const char *stop = sep;
        if (*s == '{') {
            vg_lists_t *l = vg_lists_new();
            if (l && vg_lists_load_json(l, s, (size_t)(stop - s), err, sizeof err) == 0) {
                vg_pipeline_set_lists(pl, l);   /* takes its own reference */
                vg_pipeline_set_lists(tw, l);
            }
            vg_lists_unref(l);
        } else if (!labels) {
            FILE *f = fmemopen((void *)s, (size_t)(stop - s), "r");
            if (f) {
                labels = vg_labels_read(f, "fuzz.csv", err, sizeof err);
                fclose(f);
            }
            if (labels) {
                vg_pipeline_set_labels(pl, labels);
                vg_pipeline_set_labels(tw, labels);
            }
        }
        s = sep + 4 < end ? sep + 5 : end;
    }
    vg_buf_t out, tout;
    vg_buf_init(&out);
    vg_buf_init(&tout);
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        vg_outcome_t oc = VG_OUT_BLANK, toc = VG_OUT_BLANK;
        /* the read-ahead hints of replay and the Kafka workers, on the raw line (they
         * read it and the state only; a wrong hint changes nothing) */
        for (int stage = 0; stage <= 2; stage++) vg_pipeline_prefetch(pl, s, len, stage);
        size_t at = out.len, tat = tout.len;
        int rc = len > VG_EVENT_MAX_BYTES ? vg_pipeline_oversize(pl, len, &out)
                                          : vg_pipeline_line(pl, s, len, &out, &oc);
        if (rc == VG_ENOMEM) break;
        if (rc != 0) abort();   /* bad input must be a rejection, never an engine error */
        /* the twin: the same line on state reloaded from the store, then a checkpoint
         * that evicts everything again */
        int trc = len > VG_EVENT_MAX_BYTES ? vg_pipeline_oversize(tw, len, &tout)
                                           : vg_pipeline_line(tw, s, len, &tout, &toc);
        if (trc == VG_ENOMEM) break;
        if (trc != 0) {
            fprintf(stderr, "fuzz_event: the twin (state reloaded from the store) failed: %d\n",
                    trc);
            abort();
        }
        if (toc != oc || tout.len - tat != out.len - at ||
            memcmp(tout.p + tat, out.p + at, out.len - at) != 0) {
            fprintf(stderr, "fuzz_event: the twin's output differs:\n  %.*s\n  %.*s\n",
                    (int)(out.len - at), out.p + at, (int)(tout.len - tat), tout.p + tat);
            abort();
        }
        if (vg_pipeline_checkpoint(tw, NULL, 0, 0, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz_event: twin checkpoint: %s\n", err);
            abort();
        }
        if (out.len > (1u << 20)) {
            vg_buf_clear(&out);
            vg_buf_clear(&tout);
        }
        s += len + (nl ? 1 : 0);
    }
    vg_buf_deinit(&out);
    vg_buf_deinit(&tout);
    vg_pipeline_free(pl);
    vg_pipeline_free(tw);
    empty_store();
    vg_labels_free(labels);
    return 0;
}
