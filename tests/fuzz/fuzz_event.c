/* fuzz_event.c - libFuzzer target for the per-event pipeline: each input is a stream of
 * NDJSON lines (split at '\n') fed to a fresh in-memory pipeline, as `vigil replay`
 * feeds them: parsing and validation (simdjson), the state (windows, sessions, keys,
 * dedupe, lateness), the anomaly models, features, rules and the decision line. Every
 * line must come out as a decision, a duplicate or a rejection; any engine error other
 * than running out of memory aborts (a finding), as do ASan and UBSan reports.
 *
 * Before the events, the input may hold sections ended by a line `---`: one starting
 * with `id,` is a label file (`vigil replay --labels`: read, and applied by event time
 * when it loads), one starting with `{` the lists' JSON (`--lists`). A section that does
 * not load is skipped, as replay would refuse it.
 *
 * The rules: the files listed (colon-separated) in $VIGIL_FUZZ_RULES, default
 * rules/packs/cards.vrl plus a few constructs of its own (relative to the directory the
 * fuzzer runs in: the repository root). See tests/fuzz/README.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/cli.h"
#include "engine/event.h"
#include "engine/jsonout.h"
#include "engine/labels.h"
#include "engine/pipeline.h"
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
        const char *stop = sep ? sep : end;
        if (*s == '{') {
            vg_lists_t *l = vg_lists_new();
            if (l && vg_lists_load_json(l, s, (size_t)(stop - s), err, sizeof err) == 0)
                vg_pipeline_set_lists(pl, l);   /* takes its own reference */
            vg_lists_unref(l);
        } else if (!labels) {
            FILE *f = fmemopen((void *)s, (size_t)(stop - s), "r");
            if (f) {
                labels = vg_labels_read(f, "fuzz.csv", err, sizeof err);
                fclose(f);
            }
            if (labels) vg_pipeline_set_labels(pl, labels);
        }
        s = sep ? (sep + 4 < end ? sep + 5 : end) : end;
    }
    vg_buf_t out;
    vg_buf_init(&out);
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        vg_outcome_t oc = VG_OUT_BLANK;
        /* the read-ahead hints of replay and the Kafka workers, on the raw line (they
         * read it and the state only; a wrong hint changes nothing) */
        for (int stage = 0; stage <= 2; stage++) vg_pipeline_prefetch(pl, s, len, stage);
        int rc = len > VG_EVENT_MAX_BYTES ? vg_pipeline_oversize(pl, len, &out)
                                          : vg_pipeline_line(pl, s, len, &out, &oc);
        if (rc == VG_ENOMEM) break;
        if (rc != 0) abort();   /* bad input must be a rejection, never an engine error */
        if (out.len > (1u << 20)) vg_buf_clear(&out);
        s += len + (nl ? 1 : 0);
    }
    vg_buf_deinit(&out);
    vg_pipeline_free(pl);
    vg_labels_free(labels);
    return 0;
}
