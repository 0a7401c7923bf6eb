/* program.c - the public face of the rules compiler (program.h): diagnostics, compile,
 * reference counting, introspection, the two evaluation phases and the disassembler.
 */
#include "rules/program.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/checker.h"
#include "rules/compiler.h"
#include "rules/errors.h"
#include "rules/parser.h"
#include "rules/vm.h"

/* ---- diagnostics ------------------------------------------------------------------ */

void vg_diags_init(vg_diags_t *d) { memset(d, 0, sizeof *d); }

void vg_diags_deinit(vg_diags_t *d) {
    if (!d) return;
    free(d->v);
    memset(d, 0, sizeof *d);
}

int vg_diags_add(vg_diags_t *d, int is_error, const char *file, int line, int col,
                 const char *fmt, ...) {
    if (is_error) d->n_errors++;
    if (d->n == d->cap) {
        int ncap = d->cap ? d->cap * 2 : 16;
        vg_diag_t *nv = realloc(d->v, sizeof(vg_diag_t) * (size_t)ncap);
        if (!nv) return VG_ENOMEM;
        d->v = nv;
        d->cap = ncap;
    }
    vg_diag_t *g = &d->v[d->n++];
    g->is_error = is_error;
    g->file = file ? file : "";
    g->line = line;
    g->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->msg, sizeof g->msg, fmt, ap);
    va_end(ap);
    return 0;
}

/* Where the printed diagnostics' lines start: one entry per diagnostic to print, sorted
 * by (source, line) so that each source is scanned once, whatever the number of
 * diagnostics (it was rescanned from its first byte for each one: quadratic). */
typedef struct line_at {
    int diag;            /* index in d->v */
    int src;             /* index in srcs, -1: none */
    int line;
    size_t pos;          /* offset of the line's first byte; SIZE_MAX: past the end */
} line_at_t;

static int cmp_line_at(const void *a, const void *b) {
    const line_at_t *x = a, *y = b;
    if (x->src != y->src) return x->src < y->src ? -1 : 1;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    return x->diag < y->diag ? -1 : x->diag > y->diag;
}

static int cmp_line_diag(const void *a, const void *b) {
    const line_at_t *x = a, *y = b;
    return x->diag < y->diag ? -1 : x->diag > y->diag;
}

static int find_source(const vg_source_t *srcs, int n_srcs, const char *file) {
    for (int k = 0; k < n_srcs; k++)
        if (srcs[k].name == file || (srcs[k].name && strcmp(srcs[k].name, file) == 0))
            return k;
    return -1;
}

/* Fills v[i].pos for v[0..n), sorted by cmp_line_at: one pass over each source. */
static void locate_lines(line_at_t *v, int n, const vg_source_t *srcs) {
    int cur = -2, ln = 1;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        v[i].pos = SIZE_MAX;
        if (v[i].src < 0 || v[i].line < 1) continue;
        const vg_source_t *s = &srcs[v[i].src];
        if (v[i].src != cur) {
            cur = v[i].src;
            ln = 1;
            pos = 0;
        }
        while (ln < v[i].line && pos < s->len) {
            const char *nl = memchr(s->text + pos, '\n', s->len - pos);
            if (!nl) {
                pos = s->len;
                break;
            }
            pos = (size_t)(nl - s->text) + 1;
            ln++;
        }
        if (ln == v[i].line && (pos < s->len || v[i].line == 1)) v[i].pos = pos;
    }
}

/* Prints the source line of g (starting at s->text[pos]) and a caret under its column. */
static void print_excerpt(const vg_diag_t *g, const vg_source_t *s, size_t pos, FILE *out) {
    if (g->line == 1 && s->len >= 3 && memcmp(s->text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* columns count from after a byte-order mark */
    size_t end = pos;
    while (end < s->len && s->text[end] != '\n') end++;
    size_t len = end - pos;
    if (len && s->text[end - 1] == '\r') len--;
    /* a long line is shown as the 160 bytes around the column (whole UTF-8
     * characters), with "..." where it was cut */
    size_t col0 = g->col > 0 ? (size_t)g->col - 1 : 0, from = 0, to = len;
    if (len > 160) {
        from = col0 > 80 ? col0 - 80 : 0;
        to = from + 160 < len ? from + 160 : len;
        while (from > 0 && from < len && ((unsigned char)s->text[pos + from] & 0xC0) == 0x80)
            from--;
        while (to < len && to > from && ((unsigned char)s->text[pos + to] & 0xC0) == 0x80)
            to--;
    }
    const char *pre = from > 0 ? "..." : "";
    fprintf(out, "  %s%.*s%s\n  %s", pre, (int)(to - from), s->text + pos + from,
            to < len ? "..." : "", from > 0 ? "   " : "");
    /* the caret: keep tabs so that it lines up under the column */
    for (size_t k = from; k < col0 && k < to; k++)
        fputc(s->text[pos + k] == '\t' ? '\t' : ' ', out);
    fputs("^\n", out);
}

void vg_diags_print(const vg_diags_t *d, const vg_source_t *srcs, int n_srcs, FILE *out) {
    /* which diagnostics are printed: the first VG_DIAGS_PRINT_MAX errors and the first
     * VG_DIAGS_PRINT_MAX warnings, in their order */
    int ne = 0, nw = 0, np = 0, more_e = 0, more_w = 0;
    for (int i = 0; i < d->n; i++) {
        int *seen = d->v[i].is_error ? &ne : &nw;
        if (*seen < VG_DIAGS_PRINT_MAX) np++;
        else if (d->v[i].is_error) more_e++;
        else more_w++;
        (*seen)++;
    }
    line_at_t *at = np ? malloc(sizeof(*at) * (size_t)np) : NULL;
    int k = 0;
    ne = nw = 0;
    for (int i = 0; at && i < d->n; i++) {
        int *seen = d->v[i].is_error ? &ne : &nw;
        if ((*seen)++ >= VG_DIAGS_PRINT_MAX) continue;
        at[k].diag = i;
        at[k].src = find_source(srcs, n_srcs, d->v[i].file);
        at[k].line = d->v[i].line;
        k++;
    }
    if (at) {
        qsort(at, (size_t)np, sizeof(*at), cmp_line_at);
        locate_lines(at, np, srcs);
        qsort(at, (size_t)np, sizeof(*at), cmp_line_diag);
    }
    ne = nw = 0;
    k = 0;
    for (int i = 0; i < d->n; i++) {
        const vg_diag_t *g = &d->v[i];
        int *seen = g->is_error ? &ne : &nw;
        if ((*seen)++ >= VG_DIAGS_PRINT_MAX) continue;
        fprintf(out, "%s:%d:%d: %s: %s\n", g->file, g->line, g->col,
                g->is_error ? "error" : "warning", g->msg);
        /* without memory for the positions, the diagnostics go without their lines */
        if (at && at[k].pos != SIZE_MAX) print_excerpt(g, &srcs[at[k].src], at[k].pos, out);
        k++;
    }
    free(at);
    if (more_e && more_w)
        fprintf(out, "too many diagnostics: %d more error%s and %d more warning%s not shown\n",
                more_e, more_e == 1 ? "" : "s", more_w, more_w == 1 ? "" : "s");
    else if (more_e || more_w)
        fprintf(out, "too many diagnostics: %d more %s%s not shown\n", more_e + more_w,
                more_e ? "error" : "warning", more_e + more_w == 1 ? "" : "s");
}

/* ---- compile and lifetime ----------------------------------------------------------- */

typedef struct diag_at {
    int src, line, col, i;
} diag_at_t;

static int cmp_diag_at(const void *a, const void *b) {
    const diag_at_t *x = a, *y = b;
    if (x->src != y->src) return x->src < y->src ? -1 : 1;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sorts d->v[from..] in source order: by source (in the order given; diagnostics of no
 * source last), line and column, keeping the order of those at one place. Without
 * memory they stay in the order found. */
static void sort_diags(vg_diags_t *d, int from, const vg_source_t *srcs, int n_srcs) {
    int n = d->n - from;
    if (n < 2) return;
    diag_at_t *at = malloc(sizeof(*at) * (size_t)n);
    vg_diag_t *tmp = malloc(sizeof(*tmp) * (size_t)n);
    if (at && tmp) {
        for (int i = 0; i < n; i++) {
            const vg_diag_t *g = &d->v[from + i];
            int s = find_source(srcs, n_srcs, g->file);
            at[i] = (diag_at_t){s < 0 ? n_srcs : s, g->line, g->col, i};
        }
        qsort(at, (size_t)n, sizeof(*at), cmp_diag_at);
        for (int i = 0; i < n; i++) tmp[i] = d->v[from + at[i].i];
        memcpy(d->v + from, tmp, sizeof(*tmp) * (size_t)n);
    }
    free(at);
    free(tmp);
}

vg_program_t *vg_prog_compile(const vg_source_t *srcs, int n, vg_diags_t *diags) {
    vg_arena_t ar;
    vg_arena_init(&ar);
    vg_program_t *p = NULL;
    int nerr0 = diags->n_errors, n0 = diags->n;
    vg_ast_module_t *mods = calloc((size_t)(n > 0 ? n : 1), sizeof *mods);
    if (!mods) {
        vg_diags_add(diags, 1, n > 0 ? srcs[0].name : "", 1, 1, "out of memory");
        return NULL;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        int r = vg_parse(&srcs[i], &ar, diags, &mods[i]);
        if (r == VG_ENOMEM) { rc = r; break; }
        if (r < 0) rc = r;
    }
    if (rc != VG_ENOMEM) {
        /* after syntax errors the declarations that parsed are still checked, so that
         * one run reports every error it can (SPEC section 6); nothing is compiled */
        vg_checked_t ck;
        if (vg_check(mods, n, &ar, diags, &ck) == 0 && rc == 0 && diags->n_errors == nerr0)
            p = vg_compile(&ck, diags);
    }
    sort_diags(diags, n0, srcs, n);
    free(mods);
    vg_arena_deinit(&ar);
    if (p) {   /* the sources, encoded (vg_prog_sources) */
        size_t len = 10;
        for (int i = 0; i < n; i++) len += 8 + strlen(srcs[i].name) + srcs[i].len;
        p->src = malloc(len);
        if (p->src) {
            char *w = p->src;
            memcpy(w, "vgsrc1", 6);
            w += 6;
            uint32_t u = (uint32_t)n;
            memcpy(w, &u, 4);
            w += 4;
            for (int i = 0; i < n; i++) {
                u = (uint32_t)strlen(srcs[i].name);
                memcpy(w, &u, 4);
                memcpy(w + 4, srcs[i].name, u);
                w += 4 + u;
                u = (uint32_t)srcs[i].len;
                memcpy(w, &u, 4);
                memcpy(w + 4, srcs[i].text, u);
                w += 4 + u;
            }
            p->src_len = len;
        }
    }
    return p;
}

const char *vg_prog_sources(const vg_program_t *p, size_t *len) {
    *len = p->src ? p->src_len : 0;
    return p->src;
}

vg_program_t *vg_prog_compile_sources(const char *enc, size_t len) {
    if (len < 10 || memcmp(enc, "vgsrc1", 6) != 0) return NULL;
    uint32_t n;
    memcpy(&n, enc + 6, 4);
    if (n > 100000) return NULL;
    vg_source_t *s = calloc(n ? n : 1, sizeof *s);
    char **names = calloc(n ? n : 1, sizeof *names);
    vg_program_t *p = NULL;
    size_t at = 10;
    uint32_t i = 0;
    if (!s || !names) goto out;
    for (; i < n; i++) {
        uint32_t nl, tl;
        if (len - at < 4) goto out;
        memcpy(&nl, enc + at, 4);
        if (len - at - 4 < nl) goto out;
        if (!(names[i] = malloc((size_t)nl + 1))) goto out;
        memcpy(names[i], enc + at + 4, nl);
        names[i][nl] = 0;
        at += 4 + (size_t)nl;
        if (len - at < 4) goto out;
        memcpy(&tl, enc + at, 4);
        if (len - at - 4 < tl) goto out;
        s[i] = (vg_source_t){names[i], enc + at + 4, tl};
        at += 4 + (size_t)tl;
    }
    if (at == len) {
        vg_diags_t d;
        vg_diags_init(&d);
        p = vg_prog_compile(s, (int)n, &d);
        vg_diags_deinit(&d);
    }
out:
    for (uint32_t j = 0; names && j < i && j < n; j++) free(names[j]);
    if (names && i < n) free(names[i]);
    free(names);
    free(s);
    return p;
}

vg_program_t *vg_prog_ref(vg_program_t *p) {
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void vg_prog_unref(vg_program_t *p) {
    if (!p) return;
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) vg_compile_free(p);
}

int vg_prog_nspecs(const vg_program_t *p) { return p->nspecs; }
int vg_prog_next(const vg_program_t *p) { return p->next; }
const vg_ext_t *vg_prog_ext(const vg_program_t *p, int j) {
    return j >= 0 && j < p->next ? &p->ext[j] : NULL;
}
int vg_prog_uses_anomaly(const vg_program_t *p) { return p->uses_anomaly; }
int vg_prog_inputs_read_ext(const vg_program_t *p) { return p->inputs_read_ext; }
int vg_prog_uses_labels(const vg_program_t *p) { return p->uses_labels; }
int64_t vg_prog_max_label_window(const vg_program_t *p) { return p->max_label_window; }
int vg_prog_memo_nx(const vg_program_t *p) { return p->nmemo_x; }
const char *vg_prog_memo_x_text(const vg_program_t *p, int k) {
    return k >= 0 && k < p->nmemo_x ? p->memo_xtext[k] : NULL;
}
const vg_spec_t *vg_prog_spec(const vg_program_t *p, int i) {
    return i >= 0 && i < p->nspecs ? &p->specs[i] : NULL;
}
int vg_prog_nbygroups(const vg_program_t *p) { return p->nby; }
const char *vg_prog_bygroup_text(const vg_program_t *p, int g) {
    return g >= 0 && g < p->nby ? p->bytext[g] : NULL;
}
int vg_prog_nfeatures(const vg_program_t *p) { return p->nfeatures; }
const char *vg_prog_feature_name(const vg_program_t *p, int i) {
    return i >= 0 && i < p->nfeatures ? p->fnames[i] : NULL;
}
int vg_prog_feature_type(const vg_program_t *p, int i) {
    return i >= 0 && i < p->nfeatures && p->ftypes[i] <= VG_T_JSON ? p->ftypes[i] : VG_T_NULL;
}
int vg_prog_nrules(const vg_program_t *p) { return p->nrules; }
int64_t vg_prog_max_window(const vg_program_t *p) { return p->max_window; }

/* ---- evaluation --------------------------------------------------------------------- */

#define LOCAL_REGS 128

static int run(const vg_program_t *p, const vg_ins_t *code, vg_arena_t *arena,
               const vg_vm_ctx_t *ctx) {
    vg_value_t local[LOCAL_REGS];
    vg_value_t *r = local;
    if (p->nregs > LOCAL_REGS) {
        r = vg_arena_alloc(arena, sizeof(vg_value_t) * p->nregs);
        if (!r) return VG_ENOMEM;
    }
    for (uint32_t i = 0; i < p->nconst; i++) r[i] = p->consts[i];
    vg_vm_run(code, r, ctx);
    return 0;
}

static void ctx_init(const vg_program_t *p, vg_vm_ctx_t *ctx, const vg_tx_t *tx,
                     vg_arena_t *arena) {
    memset(ctx, 0, sizeof *ctx);
    ctx->tx = tx;
    ctx->names = p->names;
    ctx->lists = p->lists;
    ctx->regex = p->regex;
    ctx->zones = p->zones;
    ctx->arena = arena;
}

int vg_prog_eval_inputs(const vg_program_t *p, const vg_tx_t *tx, const vg_value_t *spec_vals,
                        vg_arena_t *arena, vg_spec_input_t *in) {
    if (p->inputs_read_ext && !spec_vals) return VG_EINVAL;
    if (p->nspecs + p->next)
        memcpy(in, p->in_init, sizeof(vg_spec_input_t) * (size_t)(p->nspecs + p->next));
    vg_vm_ctx_t ctx;
    ctx_init(p, &ctx, tx, arena);
    ctx.in = in;
    ctx.spec = spec_vals;
    return run(p, p->code1, arena, &ctx);
}

int vg_prog_eval_features(const vg_program_t *p, const vg_tx_t *tx,
                          const vg_value_t *spec_vals, vg_arena_t *arena,
                          vg_value_t *features) {
    vg_vm_ctx_t ctx;
    ctx_init(p, &ctx, tx, arena);
    ctx.spec = spec_vals;
    ctx.out = features;
    return run(p, p->code2, arena, &ctx);
}

int vg_prog_eval_rules(const vg_program_t *p, const vg_tx_t *tx, const vg_value_t *spec_vals,
                       const vg_value_t *features, const vg_strset_t *const *lists,
                       vg_arena_t *arena, vg_rule_result_t *res) {
    if (p->nrules) memcpy(res, p->rule_init, sizeof(vg_rule_result_t) * (size_t)p->nrules);
    if (p->n3 <= 1) return 0;
    vg_vm_ctx_t ctx;
    ctx_init(p, &ctx, tx, arena);
    ctx.spec = spec_vals;
    ctx.feat = features;
    ctx.rules = res;
    ctx.named = lists;
    return run(p, p->code3, arena, &ctx);
}

void vg_prog_decide(const vg_program_t *p, const vg_rule_result_t *res, int *action,
                    double *score) {
    int seen[4] = {0, 0, 0, 0};
    double best = 0;
    for (int i = 0; i < p->nrules; i++) {
        if (!res[i].fired || p->rules[i].mode != VG_MODE_ACTIVE) continue;
        seen[p->rules[i].action & 3] = 1;
        if (res[i].score > best) best = res[i].score;
    }
    *action = seen[VG_ACTION_ALLOW]    ? VG_ACTION_ALLOW
              : seen[VG_ACTION_BLOCK]  ? VG_ACTION_BLOCK
              : seen[VG_ACTION_REVIEW] ? VG_ACTION_REVIEW
              : seen[VG_ACTION_ALERT]  ? VG_ACTION_ALERT : VG_ACTION_ALLOW;
    *score = best;
}

const char *vg_action_name(int a) {
    static const char *n[] = {"allow", "review", "block", "alert"};
    return a >= 0 && a < 4 ? n[a] : "?";
}
const char *vg_severity_name(int s) {
    static const char *n[] = {"low", "medium", "high", "critical"};
    return s >= 0 && s < 4 ? n[s] : "?";
}
const char *vg_mode_name(int m) {
    static const char *n[] = {"active", "shadow", "disabled"};
    return m >= 0 && m < 3 ? n[m] : "?";
}

void vg_prog_set_module_version(vg_program_t *p, const char *module, int64_t version) {
    for (int i = 0; p && i < p->nrules; i++)
        if (strcmp(p->rules[i].module, module) == 0) p->rules[i].version = version;
}

const vg_rule_info_t *vg_prog_rule(const vg_program_t *p, int i) {
    return i >= 0 && i < p->nrules ? &p->rules[i] : NULL;
}

vg_value_t vg_prog_ref_value(const vg_program_t *p, const vg_ref_t *r, const vg_tx_t *tx,
                             const vg_value_t *spec_vals, const vg_value_t *features) {
    (void)p;
    switch (r->kind) {
    case VG_REF_FEATURE: return features[r->index];
    case VG_REF_FIELD: return tx->f[r->index];
    case VG_REF_EXTRA: {
        const char *nm = r->text;
        uint32_t len = r->len;
        if (len > 3 && memcmp(nm, "tx.", 3) == 0) { nm += 3; len -= 3; }
        return vg_tx_extra(tx, nm, len);
    }
    case VG_REF_SPEC: return spec_vals[r->index];
    default: return vg_null();
    }
}

int vg_prog_nlists(const vg_program_t *p) { return p->nnamed; }
const char *vg_prog_list_name(const vg_program_t *p, int i) {
    return i >= 0 && i < p->nnamed ? p->named[i] : NULL;
}

void vg_prog_bind_lists(const vg_program_t *p, const vg_lists_t *l, const vg_strset_t **out) {
    for (int i = 0; i < p->nnamed; i++)
        out[i] = l ? vg_lists_get(l, p->named[i], strlen(p->named[i])) : NULL;
}

/* ---- disassembler ----------------------------------------------------------------- */

static void print_value(FILE *out, vg_value_t v) {
    switch (v.type) {
    case VG_T_NULL: fputs("null", out); break;
    case VG_T_BOOL: fputs(v.u.b ? "true" : "false", out); break;
    case VG_T_NUM: {
        char t[40];
        if (v.u.n > -1e15 && v.u.n < 1e15 && v.u.n == (double)(int64_t)v.u.n) {
            fprintf(out, "%lld", (long long)v.u.n);
            break;
        }
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(t, sizeof t, "%.*g", prec, v.u.n);
            if (strtod(t, NULL) == v.u.n) break;
        }
        fputs(t, out);
        break;
    }
    case VG_T_STR:
        fputc('"', out);
        for (uint32_t i = 0; i < v.u.s.len; i++) {
            unsigned char c = (unsigned char)v.u.s.p[i];
            if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
            else if (c < 0x20) fprintf(out, "\\u%04x", c);
            else fputc(c, out);
        }
        fputc('"', out);
        break;
    case VG_T_TIME: fprintf(out, "time(%lld)", (long long)v.u.ms); break;
    case VG_T_DUR: fprintf(out, "%lldms", (long long)v.u.ms); break;
    default: fputs("json", out); break;
    }
}

static const char *field_name(uint32_t f) {
    static const char *names[] = {
#define VG_FN_STR(name, str, type) str,
        VG_FIELD_LIST(VG_FN_STR)
#undef VG_FN_STR
    };
    return f < VG_FIELD__COUNT ? names[f] : "?";
}

/* The text of spec i, or of ext value i - nspecs. */
static const char *spec_or_ext_text(const vg_program_t *p, uint32_t i) {
    if (i < (uint32_t)p->nspecs) return p->specs[i].text;
    if (i < (uint32_t)(p->nspecs + p->next)) return p->ext[i - (uint32_t)p->nspecs].text;
    return "?";
}

static void print_code(const vg_program_t *p, const vg_ins_t *code, uint32_t n, FILE *out) {
    fprintf(out, "  %4s  %-12s %5s %5s %5s  %s\n", "addr", "opcode", "p1", "p2", "p3", "synopsis");
    for (uint32_t i = 0; i < n; i++) {
        const vg_ins_t *c = &code[i];
        char syn[160];
        size_t k = 0;
        for (const char *s = vg_vm_synopsis((int)c->op); *s && k < sizeof syn - 12; s++) {
            if (s[0] == 'P' && s[1] >= '1' && s[1] <= '3') {
                uint32_t v = s[1] == '1' ? c->p1 : s[1] == '2' ? c->p2 : c->p3;
                k += (size_t)snprintf(syn + k, sizeof syn - k, "%u", v);
                s++;
            } else syn[k++] = *s;
        }
        syn[k] = 0;
        fprintf(out, "  %4u  %-12s %5u %5u %5u  %s", i, vg_vm_opname((int)c->op), c->p1, c->p2,
                c->p3, syn);
        switch (c->op) {
        case VG_OPC_Field: fprintf(out, "  ; tx.%s", field_name(c->p1)); break;
        case VG_OPC_Extra:
            fprintf(out, "  ; tx.%.*s", (int)p->names[c->p1].len, p->names[c->p1].p);
            break;
        case VG_OPC_Spec: fprintf(out, "  ; %s", spec_or_ext_text(p, c->p1)); break;
        case VG_OPC_OutSpec:
            fprintf(out, "  ; %s = %s", p->fnames[c->p2], spec_or_ext_text(p, c->p1));
            break;
        case VG_OPC_Out: fprintf(out, "  ; %s", p->fnames[c->p2]); break;
        case VG_OPC_Feat: fprintf(out, "  ; %s", p->fnames[c->p1]); break;
        case VG_OPC_Rule: case VG_OPC_RuleScore:
            fprintf(out, "  ; %s", p->rules[c->p2].name);
            break;
        case VG_OPC_InNamed: fprintf(out, "  ; list(\"%s\")", p->named[c->p2]); break;
        case VG_OPC_InX: case VG_OPC_InKey: case VG_OPC_InKeep:
            fprintf(out, "  ; %s", spec_or_ext_text(p, c->p2));
            break;
        case VG_OPC_InList: {
            const vg_vm_list_t *l = &p->lists[c->p2];
            fputs("  ; [", out);
            for (uint32_t j = 0; j < l->n; j++) {
                if (j) fputs(", ", out);
                print_value(out, l->items[j]);
            }
            fputs("]", out);
            break;
        }
        default: break;
        }
        fputc('\n', out);
    }
}

void vg_prog_explain(const vg_program_t *p, FILE *out) {
    static const char *kinds[] = {"count", "sum", "avg", "min", "max", "stddev", "distinct",
                                  "session_count", "session_sum", "session_duration", "prev",
                                  "seen"};
    fprintf(out, "ruleset: %d features, %d specs, %d by-groups, %d rules, %d lists\n",
            p->nfeatures, p->nspecs, p->nby, p->nrules, p->nnamed);
    fprintf(out, "specs (state the engine keeps):\n");
    for (int i = 0; i < p->nspecs; i++) {
        const vg_spec_t *s = &p->specs[i];
        fprintf(out, "  s%-3d %-40s %s", i, s->text, kinds[s->kind]);
        if (s->kind != VG_SPEC_PREV) fprintf(out, " %s=%lldms",
            s->kind >= VG_SPEC_SESSION_COUNT && s->kind <= VG_SPEC_SESSION_DURATION ? "gap" : "window",
            (long long)s->window_ms);
        if (s->has_x) fprintf(out, " x:%s", vg_check_type_name(s->x_type == VG_T_NULL ? VG_CT_ANY : s->x_type));
        if (s->has_where) fputs(" where", out);
        if (s->by_group >= 0) fprintf(out, " key=g%d", s->by_group);
        else fputs(" key=account", out);
        fputc('\n', out);
    }
    if (p->next) fprintf(out, "engine values (anomaly scores, label aggregates):\n");
    for (int j = 0; j < p->next; j++) {
        const vg_ext_t *x = &p->ext[j];
        fprintf(out, "  s%-3d %-40s %s", p->nspecs + j, x->text,
                x->kind == VG_EXT_ANOMALY ? "anomaly" : "label");
        if (x->kind != VG_EXT_ANOMALY)
            fprintf(out, " window=%lldms key=%s%d", (long long)x->window_ms,
                    x->by_group >= 0 ? "g" : "account", x->by_group >= 0 ? x->by_group : 0);
        if (x->memo_slot >= 0) fprintf(out, " x=memo%d", x->memo_slot);
        fputc('\n', out);
    }
    if (p->nby) fprintf(out, "by-groups:\n");
    for (int g = 0; g < p->nby; g++) fprintf(out, "  g%-3d %s\n", g, p->bytext[g]);
    fprintf(out, "features (output order):\n");
    for (int i = 0; i < p->nfeatures; i++)
        fprintf(out, "  f%-3d %-30s %s\n", i, p->fnames[i], vg_check_type_name(p->ftypes[i]));
    fprintf(out, "longest window: %lldms\n", (long long)p->max_window);
    fprintf(out, "registers: %u (%u constants)\n", p->nregs, p->nconst);
    for (uint32_t i = 0; i < p->nconst; i++) {
        fprintf(out, "  r[%u] = ", i);
        print_value(out, p->consts[i]);
        fputc('\n', out);
    }
    fprintf(out, "phase 1: spec inputs from the event (%u instructions)\n", p->n1);
    print_code(p, p->code1, p->n1, out);
    fprintf(out, "phase 2: features from the event and the spec values (%u instructions)\n", p->n2);
    print_code(p, p->code2, p->n2, out);
    if (p->nrules) {
        fprintf(out, "rules (cost: weighted instructions of when + score; state: specs needed):\n");
        for (int i = 0; i < p->nrules; i++) {
            const vg_rule_info_t *r = &p->rules[i];
            fprintf(out, "  rule%-3d %-28s %s/%s %s", i, r->name, r->module,
                    vg_mode_name(r->mode), vg_action_name(r->action));
            if (r->mode == VG_MODE_DISABLED) {
                fputs("  (disabled: not evaluated, no state kept for it)\n", out);
                continue;
            }
            fprintf(out, " severity=%s cost=%u instructions=%u state=%d", vg_severity_name(r->severity),
                    r->cost, r->ninstr, r->nstate);
            if (r->suppress_ms) fprintf(out, " suppress=%lldms", (long long)r->suppress_ms);
            if (r->nvalues) {
                fputs(" reads:", out);
                for (int k = 0; k < r->nvalues; k++) fprintf(out, " %s", r->values[k].text);
            }
            fputc('\n', out);
        }
        for (int i = 0; i < p->nnamed; i++) fprintf(out, "  list[%d] = %s\n", i, p->named[i]);
        for (uint32_t i = 0; i < p->nzones; i++)
            fprintf(out, "  zone[%u]: %u transitions\n", i, p->zones[i].n);
        fprintf(out, "phase 3: rules from the features (%u instructions)\n", p->n3);
        print_code(p, p->code3, p->n3, out);
    }
}
