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

#include "engine/event.h"
#include "engine/jsonout.h"
#include "engine/labels.h"
#include "engine/pipeline.h"
#include "rules/lists.h"
#include "rules/program.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* constructs the pack does not use: sessions, stddev, min/max, keys other than the
 * card, anomaly scores in features and in a window */
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
    "rule fz_big\n  severity high\n  action review\n  score 50\n"
    "  message \"amount {tx.amount} at {tx.merchant}\"\n"
    "  when tx.amount > 5 * fz_max or fz_an > 0.9\nend\n";

static vg_program_t *prog;
static vg_source_t src[16];   /* kept for the program's life (it may point into them) */

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) abort();
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    *n = len;
    return buf;
}

static void init(void) {
    const char *env = getenv("VIGIL_FUZZ_RULES");
    char *list = strdup(env && *env ? env : "rules/packs/cards.vrl");
    int n = 0;
    for (char *save = NULL, *p = strtok_r(list, ":", &save); p && n < 15;
         p = strtok_r(NULL, ":", &save)) {
        size_t len;
        char *text = slurp(p, &len);
        if (!text) {
            fprintf(stderr, "fuzz_event: cannot read %s (run from the repository root)\n", p);
            abort();
        }
        src[n++] = (vg_source_t){strdup(p), text, len};
    }
    src[n++] = (vg_source_t){"fuzz_extra.vrl", EXTRA, sizeof EXTRA - 1};
    vg_diags_t d;
    vg_diags_init(&d);
    prog = vg_prog_compile(src, n, &d);
    if (!prog) {
        vg_diags_print(&d, src, n, stderr);
        abort();
    }
    vg_diags_deinit(&d);
    free(list);
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
