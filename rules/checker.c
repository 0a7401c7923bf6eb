/* checker.c - names, feature order and types of a ruleset (see checker.h).
 *
 * Steps: collect declarations (duplicates, limits); resolve every name a feature uses
 * and record its dependencies; order the features by an iterative depth-first search
 * that reports each cycle with its path; then infer types feature by feature in that
 * order, so that a feature reference has the type of the feature's expression; last,
 * check rule blocks. A node whose type cannot be known gets TY_ERR, which silences
 * follow-on errors about the same mistake.
 */
#include "rules/checker.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/dtoa.h"
#include "rules/errors.h"
#include "rules/strmap.h"
#include "rules/tz.h"

#define TY_ERR 18

typedef struct checker {
    vg_diags_t *d;
    vg_arena_t *ar;
    vg_checked_t *out;
    vg_strmap_t fmap, lmap;
    vg_strmap_t bmap;      /* features left out for a syntax error: not "unknown" */
    int *ftype;            /* per feature: its type once checked, or TY_ERR */
    int nomem;
    const char *file;      /* of the declaration being checked */
    uint8_t *used;         /* per feature: read by a rule, a message or another feature */
} checker_t;

/* flags of the expression context */
enum { IN_SPEC = 1, IN_RULE = 2, IN_BY = 4 };

static const char *fn_names[] = {
#define VG_FN_NAME(name, text) text,
    VG_FN_LIST(VG_FN_NAME)
#undef VG_FN_NAME
};

int vg_check_regex(const char *re, size_t len, char *why, size_t whylen) {
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, len, PCRE2_UTF, &ec,
                                     &off, NULL);
    if (code) {
        pcre2_code_free(code);
        return -1;
    }
    PCRE2_UCHAR buf[160];
    pcre2_get_error_message(ec, buf, sizeof buf);
    snprintf(why, whylen, "%s", (const char *)buf);
    return (int)off;
}

const char *vg_check_type_name(int t) {
    switch (t) {
    case VG_T_NULL: return "null";
    case VG_T_BOOL: return "bool";
    case VG_T_NUM: return "number";
    case VG_T_STR: return "string";
    case VG_T_TIME: return "time";
    case VG_T_DUR: return "duration";
    case VG_T_JSON: return "json";
    case VG_CT_ANY: return "any";
    case VG_CT_LIST: return "list";
    default: return "error";
    }
}

static void err(checker_t *c, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void err(checker_t *c, int line, int col, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vg_diags_add(c->d, 1, c->file, line, col, "%s", msg);
}

static void warn(checker_t *c, int line, int col, const char *msg) {
    vg_diags_add(c->d, 0, c->file, line, col, "%s", msg);
}

static int is_agg(int fn) { return fn <= VG_FN_DISTINCT; }

/* ---- likely misspelt event fields -------------------------------------------------- */

static const char *const field_names[] = {
#define VG_FIELD_NAME(name, text, type) text,
    VG_FIELD_LIST(VG_FIELD_NAME)
#undef VG_FIELD_NAME
};

/* The optimal string alignment distance between a[0..n) and b[0..m) ignoring ASCII case
 * (insertions, deletions, substitutions and swaps of adjacent letters each count 1), or
 * a number above `max` once it is known to be above. Needs m <= 15. */
static int edit_distance(const char *a, size_t n, const char *b, size_t m, int max) {
    if (n > m + (size_t)max || m > n + (size_t)max) return max + 1;
    int d[3][16];   /* rows i-2, i-1, i of the table, by i % 3 */
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int *r = d[i % 3], *r1 = d[(i - 1) % 3], *r2 = d[(i + 1) % 3];
        int ca = tolower((unsigned char)a[i - 1]), low = max + 1;
        r[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int cb = tolower((unsigned char)b[j - 1]);
            int v = r1[j - 1] + (ca != cb);
            if (r1[j] + 1 < v) v = r1[j] + 1;
            if (r[j - 1] + 1 < v) v = r[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && r2[j - 2] + 1 < v)
                v = r2[j - 2] + 1;
            r[j] = v;
            if (v < low) low = v;
        }
        if (low > max) return max + 1;
    }
    return d[n % 3][m];
}

/* Whether a[0..n) is b[0..m) (lower case) with two adjacent letters swapped, ignoring
 * case. */
static int is_swap(const char *a, size_t n, const char *b, size_t m) {
    if (n != m) return 0;
    size_t i = 0;
    while (i < n && tolower((unsigned char)a[i]) == b[i]) i++;
    if (i + 1 >= n || tolower((unsigned char)a[i]) != b[i + 1] ||
        tolower((unsigned char)a[i + 1]) != b[i])
        return 0;
    for (i += 2; i < n; i++)
        if (tolower((unsigned char)a[i]) != b[i]) return 0;
    return 1;
}

/* The known event field that the extra field name s[0..n) most likely misspells, or
 * NULL: a known name in another case (tx.Amount), or for the names of 3 and 4 letters
 * (mcc lat lon card type) two adjacent letters swapped (tx.crad), for those of 6 and 7
 * letters one letter added, removed, changed or swapped with the next (tx.amuont), for
 * those of 8 (currency, merchant) two such slips. Shorter and farther names (tx.tz,
 * tx.cart, tx.bin, tx.user_agent) and a known name with more after it (tx.amount2,
 * tx.devices) are taken as the extra fields they are. Can't fail. */
static const char *likely_field(const char *s, size_t n) {
    const char *best = NULL;
    int bestd = 3;
    for (size_t f = 0; f < sizeof field_names / sizeof field_names[0]; f++) {
        size_t m = strlen(field_names[f]);
        int max = m <= 2 ? 0 : m <= 7 ? 1 : 2;
        int d = edit_distance(s, n, field_names[f], m, max);
        if (d > max || d >= bestd) continue;
        if (d == 1 && m <= 4 && !is_swap(s, n, field_names[f], m)) continue;
        if (n > m && memcmp(s, field_names[f], m) == 0) continue;   /* amount2, devices */
        best = field_names[f];
        bestd = d;
    }
    return best;
}

/* Warns at (line, col) when tx.<s[0..n)>, an extra field, looks like a misspelt known
 * field. */
static void warn_field(checker_t *c, int line, int col, const char *s, size_t n) {
    const char *f = likely_field(s, n);
    if (f)
        vg_diags_add(c->d, 0, c->file, line, col,
                     "tx.%.*s is read as an extra field; did you mean tx.%s?", (int)n, s, f);
}

/* ---- dependencies ------------------------------------------------------------------ */

typedef struct ivec { int *v; int n, cap; } ivec_t;

static int ivec_push(ivec_t *a, int x) {
    if (a->n == a->cap) {
        int ncap = a->cap ? a->cap * 2 : 16;
        int *nv = realloc(a->v, sizeof(int) * (size_t)ncap);
        if (!nv) return -1;
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Resolves feature names under e; appends the features used to deps. */
static void resolve(checker_t *c, vg_ast_t *e, ivec_t *deps) {
    if (!e) return;
    if (e->kind == VG_AST_NAME) {
        e->ref = vg_strmap_get(&c->fmap, e->str.p, e->str.len);
        if (e->ref >= 0 && c->used) c->used[e->ref] = 1;
        if (e->ref < 0) {
            if (vg_strmap_get(&c->bmap, e->str.p, e->str.len) < 0)
                err(c, e->line, e->col, "unknown feature '%.*s'", (int)e->str.len, e->str.p);
        } else if (deps && ivec_push(deps, e->ref) < 0)
            c->nomem = 1;
        return;
    }
    resolve(c, e->a, deps);
    resolve(c, e->b, deps);
    for (int i = 0; i < e->nargs; i++) resolve(c, e->args[i], deps);
    resolve(c, e->where, deps);
    resolve(c, e->by, deps);
}

/* ---- types ------------------------------------------------------------------------ */

static int check(checker_t *c, vg_ast_t *e, int flags);

static int is_numlike(int t) { return t == VG_T_NUM || t == VG_CT_ANY || t == VG_T_NULL; }
static int is_boollike(int t) { return t == VG_T_BOOL || t == VG_CT_ANY || t == VG_T_NULL; }

static const char *op_text(int op) {
    static const char *t[] = {"or", "and", "not", "==", "!=", "<", "<=", ">", ">=", "in",
                              "+", "-", "*", "/", "-"};
    return t[op];
}

static int arith(checker_t *c, vg_ast_t *e, int ta, int tb) {
    if (ta == TY_ERR || tb == TY_ERR) return TY_ERR;
    /* an `any` operand (extra field) is read as a number; a null literal takes the
     * other side's type */
    if (ta == VG_CT_ANY) ta = VG_T_NUM;
    if (tb == VG_CT_ANY) tb = VG_T_NUM;
    if (ta == VG_T_NULL) ta = tb == VG_T_NULL ? VG_T_NUM : tb;
    if (tb == VG_T_NULL) tb = ta;
    int r = -1;
    switch (e->op) {
    case VG_OP_ADD:
        if (ta == VG_T_NUM && tb == VG_T_NUM) r = VG_T_NUM;
        else if (ta == VG_T_TIME && tb == VG_T_DUR) r = VG_T_TIME;
        else if (ta == VG_T_DUR && tb == VG_T_TIME) r = VG_T_TIME;
        else if (ta == VG_T_DUR && tb == VG_T_DUR) r = VG_T_DUR;
        break;
    case VG_OP_SUB:
        if (ta == VG_T_NUM && tb == VG_T_NUM) r = VG_T_NUM;
        else if (ta == VG_T_TIME && tb == VG_T_TIME) r = VG_T_DUR;
        else if (ta == VG_T_TIME && tb == VG_T_DUR) r = VG_T_TIME;
        else if (ta == VG_T_DUR && tb == VG_T_DUR) r = VG_T_DUR;
        break;
    case VG_OP_MUL:
        if (ta == VG_T_NUM && tb == VG_T_NUM) r = VG_T_NUM;
        else if (ta == VG_T_DUR && tb == VG_T_NUM) r = VG_T_DUR;
        else if (ta == VG_T_NUM && tb == VG_T_DUR) r = VG_T_DUR;
        break;
    case VG_OP_DIV:
        if (ta == VG_T_NUM && tb == VG_T_NUM) r = VG_T_NUM;
        else if (ta == VG_T_DUR && tb == VG_T_NUM) r = VG_T_DUR;
        else if (ta == VG_T_DUR && tb == VG_T_DUR) r = VG_T_NUM;
        break;
    }
    if (r < 0) {
        err(c, e->line, e->col, "cannot apply '%s' to %s and %s", op_text(e->op),
            vg_check_type_name(ta), vg_check_type_name(tb));
        return TY_ERR;
    }
    return r;
}

static int compare(checker_t *c, vg_ast_t *e, int ta, int tb) {
    if (ta == TY_ERR || tb == TY_ERR) return TY_ERR;
    if (ta == VG_T_NULL || tb == VG_T_NULL) {
        warn(c, e->line, e->col, "comparison with null is always null (never true)");
        return VG_T_BOOL;
    }
    if (ta == VG_CT_ANY || tb == VG_CT_ANY || ta == tb) return VG_T_BOOL;
    if ((ta == VG_T_DUR && tb == VG_T_NUM) || (ta == VG_T_NUM && tb == VG_T_DUR)) {
        err(c, e->line, e->col,
            "cannot compare %s with %s (seconds_between() and session_duration() give "
            "seconds as numbers: compare with 3600, not 1h)",
            vg_check_type_name(ta), vg_check_type_name(tb));
        return TY_ERR;
    }
    err(c, e->line, e->col, "cannot compare %s with %s", vg_check_type_name(ta),
        vg_check_type_name(tb));
    return TY_ERR;
}

/* The literal type of a [..] item (numbers may be negated), or -1. */
static int literal_type(const vg_ast_t *e) {
    switch (e->kind) {
    case VG_AST_NUM: return VG_T_NUM;
    case VG_AST_STR: return VG_T_STR;
    case VG_AST_BOOL: return VG_T_BOOL;
    case VG_AST_UNARY:
        return e->op == VG_OP_NEG && e->a->kind == VG_AST_NUM ? VG_T_NUM : -1;
    default: return -1;
    }
}

/* Whether s[0..n) is a name a declaration can have ([A-Za-z_][A-Za-z0-9_]*). */
static int ident_ok(const char *s, size_t n) {
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_')) return 0;
    return 1;
}

static int check_in(checker_t *c, vg_ast_t *e, int ta, int flags) {
    vg_ast_t *s = e->b;
    s->type = VG_CT_LIST;
    if (s->kind == VG_AST_LISTREF) {
        if (vg_strmap_get(&c->lmap, s->str.p, s->str.len) < 0 && ident_ok(s->str.p, s->str.len))
            err(c, s->line, s->col, "unknown list \"%.*s\" (declare it with `list %.*s`)",
                (int)s->str.len, s->str.p, (int)s->str.len, s->str.p);
        else if (vg_strmap_get(&c->lmap, s->str.p, s->str.len) < 0)   /* no declaration can
                                                                         name it */
            err(c, s->line, s->col, "unknown list \"%.*s\" (a list's name is a letter or _ "
                "then letters, digits or _)", (int)s->str.len, s->str.p);
        else if (!(flags & IN_RULE))
            err(c, s->line, s->col,
                "list(\"%.*s\") can only be used in rules for now, not in features",
                (int)s->str.len, s->str.p);
        if (ta != TY_ERR && ta != VG_T_STR && ta != VG_CT_ANY && ta != VG_T_NULL) {
            err(c, e->line, e->col, "named lists hold strings, not %s", vg_check_type_name(ta));
            return TY_ERR;
        }
        return VG_T_BOOL;
    }
    int bad = 0;
    int lt = -1;
    for (int i = 0; i < s->nargs; i++) {
        vg_ast_t *it = s->args[i];
        int t = literal_type(it);
        if (t < 0) {
            err(c, it->line, it->col, "the items of [..] must be string, number or bool literals");
            bad = 1;
            continue;
        }
        it->type = (uint8_t)t;
        if (lt < 0) lt = t;
        else if (t != lt) {
            err(c, it->line, it->col, "mixed types in [..]: %s and %s", vg_check_type_name(lt),
                vg_check_type_name(t));
            bad = 1;
        }
    }
    if (bad || ta == TY_ERR) return TY_ERR;
    if (lt >= 0 && ta != lt && ta != VG_CT_ANY && ta != VG_T_NULL) {
        err(c, e->line, e->col, "cannot test a %s for membership in a list of %s",
            vg_check_type_name(ta), vg_check_type_name(lt));
        return TY_ERR;
    }
    if (ta == VG_T_NULL) warn(c, e->line, e->col, "'null in [..]' is always null (never true)");
    return VG_T_BOOL;
}

/* The window argument `w` of fn: a positive duration literal. */
static int check_window(checker_t *c, const vg_ast_t *call, vg_ast_t *w, const char *what) {
    if (w->kind != VG_AST_DUR) {
        err(c, w->line, w->col, "the %s of %.*s() must be a duration literal such as 10m",
            what, (int)call->str.len, call->str.p);
        return -1;
    }
    if (w->v.ms <= 0) {
        err(c, w->line, w->col, "the %s of %.*s() must be positive", what, (int)call->str.len,
            call->str.p);
        return -1;
    }
    w->type = VG_T_DUR;
    return 0;
}

/* A string literal argument (regex, zone); NULL with an error otherwise. */
static const vg_ast_t *lit_str(checker_t *c, const vg_ast_t *call, int i, const char *what) {
    const vg_ast_t *a = call->args[i];
    if (a->kind != VG_AST_STR) {
        err(c, a->line, a->col, "the %s of %.*s() must be a string literal", what,
            (int)call->str.len, call->str.p);
        return NULL;
    }
    return a;
}

/* The pure functions added with rules: strings, math, time, null. */
static int check_pure(checker_t *c, vg_ast_t *e, int fn, int flags) {
    const char *name = fn_names[fn];
    static const struct { signed char lo, hi; const char *sig; } ar[] = {
        [VG_FN_LOWER] = {1, 1, "lower(s)"},
        [VG_FN_UPPER] = {1, 1, "upper(s)"},
        [VG_FN_STARTS_WITH] = {2, 2, "starts_with(s, prefix)"},
        [VG_FN_ENDS_WITH] = {2, 2, "ends_with(s, suffix)"},
        [VG_FN_CONTAINS] = {2, 2, "contains(s, part)"},
        [VG_FN_MATCHES] = {2, 2, "matches(s, \"regex\")"},
        [VG_FN_ABS] = {1, 1, "abs(x)"},
        [VG_FN_ROUND] = {1, 2, "round(x [, digits])"},
        [VG_FN_LOG] = {1, 1, "log(x)"},
        [VG_FN_NMIN] = {2, 16, "min(a, b, ...) or min(x, W [where P] [by K])"},
        [VG_FN_NMAX] = {2, 16, "max(a, b, ...) or max(x, W [where P] [by K])"},
        [VG_FN_HOUR_OF_DAY] = {1, 2, "hour_of_day(t [, \"Zone/Name\"])"},
        [VG_FN_DAY_OF_WEEK] = {1, 2, "day_of_week(t [, \"Zone/Name\"])"},
        [VG_FN_IS_NULL] = {1, 1, "is_null(x)"},
        [VG_FN_COALESCE] = {2, 16, "coalesce(a, b, ...)"},
    };
    if (e->where || e->by) {
        err(c, e->where ? e->where_line : e->by_line, e->where ? e->where_col : e->by_col,
            "'%s' is only allowed in count, sum, avg, min, max, stddev and distinct",
            e->where ? "where" : "by");
        return TY_ERR;
    }
    if (e->nargs < ar[fn].lo || e->nargs > ar[fn].hi) {
        if (ar[fn].lo == ar[fn].hi)
            err(c, e->line, e->col, "%s() takes %d argument%s, %d given: %s", name, ar[fn].lo,
                ar[fn].lo == 1 ? "" : "s", e->nargs, ar[fn].sig);
        else
            err(c, e->line, e->col, "%s() takes %d to %d arguments, %d given: %s", name,
                ar[fn].lo, ar[fn].hi, e->nargs, ar[fn].sig);
        return TY_ERR;
    }
    int t[16], bad = 0;
    for (int i = 0; i < e->nargs; i++) {
        t[i] = check(c, e->args[i], flags);
        if (t[i] == TY_ERR) bad = 1;
    }
    if (bad) return TY_ERR;
    for (int i = 0; i < e->nargs; i++) {
        int want = -1;
        switch (fn) {
        case VG_FN_LOWER: case VG_FN_UPPER: case VG_FN_STARTS_WITH: case VG_FN_ENDS_WITH:
        case VG_FN_CONTAINS: case VG_FN_MATCHES:
            want = VG_T_STR; break;
        case VG_FN_ABS: case VG_FN_ROUND: case VG_FN_LOG: case VG_FN_NMIN: case VG_FN_NMAX:
            want = VG_T_NUM; break;
        case VG_FN_HOUR_OF_DAY: case VG_FN_DAY_OF_WEEK:
            want = i == 0 ? VG_T_TIME : VG_T_STR; break;
        default: break;
        }
        if (want >= 0 && t[i] != want && t[i] != VG_CT_ANY && t[i] != VG_T_NULL) {
            err(c, e->args[i]->line, e->args[i]->col, "%s() needs %s, found %s", name,
                want == VG_T_STR ? "a string" : want == VG_T_NUM ? "a number" : "a time (such as tx.ts)",
                vg_check_type_name(t[i]));
            return TY_ERR;
        }
    }
    switch (fn) {
    case VG_FN_LOWER: case VG_FN_UPPER: return VG_T_STR;
    case VG_FN_STARTS_WITH: case VG_FN_ENDS_WITH: case VG_FN_CONTAINS: return VG_T_BOOL;
    case VG_FN_MATCHES: {
        const vg_ast_t *re = lit_str(c, e, 1, "pattern");
        if (!re) return TY_ERR;
        char why[160];
        int off = vg_check_regex(re->str.p, re->str.len, why, sizeof why);
        if (off >= 0) {
            err(c, re->line, re->col, "bad regular expression at offset %d: %s", off, why);
            return TY_ERR;
        }
        return VG_T_BOOL;
    }
    case VG_FN_ROUND:
        if (e->nargs == 2) {
            const vg_ast_t *d = e->args[1];
            if (d->kind != VG_AST_NUM || d->v.n != (double)(int)d->v.n || d->v.n < 0 || d->v.n > 15) {
                err(c, d->line, d->col, "the digits of round() must be a whole number 0..15");
                return TY_ERR;
            }
        }
        return VG_T_NUM;
    case VG_FN_ABS: case VG_FN_LOG: case VG_FN_NMIN: case VG_FN_NMAX: return VG_T_NUM;
    case VG_FN_HOUR_OF_DAY: case VG_FN_DAY_OF_WEEK:
        if (e->nargs == 2) {
            const vg_ast_t *z = lit_str(c, e, 1, "time zone");
            if (!z) return TY_ERR;
            vg_tz_t tz;
            char why[300];
            if (vg_tz_load(&tz, z->str.p, z->str.len, why, sizeof why) != 0) {
                err(c, z->line, z->col, "%s", why);
                return TY_ERR;
            }
            vg_tz_free(&tz);
        }
        return VG_T_NUM;
    case VG_FN_IS_NULL: return VG_T_BOOL;
    case VG_FN_COALESCE: {
        int r = VG_T_NULL;
        for (int i = 0; i < e->nargs; i++) {
            if (t[i] == VG_T_NULL) continue;
            if (r == VG_T_NULL || r == VG_CT_ANY) { if (r == VG_T_NULL || t[i] != VG_CT_ANY) r = t[i]; continue; }
            if (t[i] != r && t[i] != VG_CT_ANY) {
                err(c, e->args[i]->line, e->args[i]->col,
                    "coalesce() needs arguments of one type: %s and %s",
                    vg_check_type_name(r), vg_check_type_name(t[i]));
                return TY_ERR;
            }
        }
        return r;
    }
    default: return TY_ERR;
    }
}

/* fraud_count(W [by K]) / labelled_count(W [by K]), fraud_sum(x, W) / labelled_sum(x, W):
 * engine values over the labels applied so far (docs/rules.md, Labels). A label sum's x
 * is computed from the event alone, like an aggregate's x (it may read the event's own
 * anomaly values), and kept in the account's label memo until a label arrives. */
static int check_label(checker_t *c, vg_ast_t *e, int fn, int flags) {
    const char *name = fn_names[fn];
    int is_sum = fn == VG_FN_FRAUD_SUM || fn == VG_FN_LABELLED_SUM;
    if (flags & IN_SPEC) {
        err(c, e->line, e->col,
            "%s() cannot be used inside an aggregate, prev() or seen() argument (only event "
            "fields, literals and pure functions can)", name);
        return TY_ERR;
    }
    if (e->nargs != 1 + is_sum) {
        err(c, e->line, e->col, "%s() takes %d argument%s, %d given: %s(%sW%s)", name,
            1 + is_sum, is_sum ? "s" : "", e->nargs, name, is_sum ? "x, " : "",
            is_sum ? "" : " [by K]");
        return TY_ERR;
    }
    if (e->where) {
        err(c, e->where_line, e->where_col, "'where' is not allowed in %s()", name);
        return TY_ERR;
    }
    if (is_sum && e->by) {
        err(c, e->by_line, e->by_col,
            "'by' is not supported in %s() yet (label sums are kept per account)", name);
        return TY_ERR;
    }
    if (is_sum) {
        int t = check(c, e->args[0], flags | IN_SPEC);
        if (t == TY_ERR) return TY_ERR;
        if (t != VG_T_NUM && t != VG_CT_ANY) {
            err(c, e->args[0]->line, e->args[0]->col, "%s() needs a number, found %s", name,
                vg_check_type_name(t));
            return TY_ERR;
        }
    }
    if (check_window(c, e, e->args[is_sum], "window") < 0) return TY_ERR;
    if (e->by) {
        int t = check(c, e->by, flags | IN_SPEC | IN_BY);
        if (t == TY_ERR) return TY_ERR;
        if (t != VG_T_STR && t != VG_T_NUM && t != VG_T_BOOL && t != VG_CT_ANY) {
            err(c, e->by->line, e->by->col, "'by' needs a string, number or bool key, found %s",
                vg_check_type_name(t));
            return TY_ERR;
        }
    }
    e->is_spec = 1;
    return VG_T_NUM;
}

static int check_call(checker_t *c, vg_ast_t *e, int flags) {
    int fn = -1;
    for (int i = 0; i < VG_FN__COUNT && fn < 0; i++)
        if (strlen(fn_names[i]) == e->str.len && memcmp(fn_names[i], e->str.p, e->str.len) == 0)
            fn = i;
    if (fn < 0) {
        err(c, e->line, e->col, "unknown function '%.*s'", (int)e->str.len, e->str.p);
        return TY_ERR;
    }
    /* min/max: an aggregate when the second argument is a duration literal (then more
     * arguments are an arity error of the aggregate), else the smaller/larger of numbers */
    if ((fn == VG_FN_MIN || fn == VG_FN_MAX) &&
        !(e->nargs >= 2 && e->args[1]->kind == VG_AST_DUR) && !e->where && !e->by)
        fn = fn == VG_FN_MIN ? VG_FN_NMIN : VG_FN_NMAX;
    e->ref = fn;
    if (fn >= VG_FN_FRAUD_COUNT && fn <= VG_FN_LABELLED_SUM) return check_label(c, e, fn, flags);
    if (fn > VG_FN_SECONDS_BETWEEN) return check_pure(c, e, fn, flags);
    const char *name = fn_names[fn];
    /* arity: x args then window */
    static const signed char nx[VG_FN__COUNT] = {0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 4, 2};
    static const signed char nw[VG_FN__COUNT] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0};
    int want = nx[fn] + nw[fn];
    if (e->nargs != want) {
        static const char *sig[VG_FN__COUNT] = {
            "count(W [where P] [by K])", "sum(x, W [where P] [by K])",
            "avg(x, W [where P] [by K])", "min(x, W [where P] [by K])",
            "max(x, W [where P] [by K])", "stddev(x, W [where P] [by K])",
            "distinct(x, W [where P] [by K])", "session_count(gap)", "session_sum(x, gap)",
            "session_duration(gap)", "prev(x)", "seen(x, W)", "geo_km(lat1, lon1, lat2, lon2)",
            "seconds_between(a, b)"};
        err(c, e->line, e->col, "%s() takes %d argument%s, %d given: %s", name, want,
            want == 1 ? "" : "s", e->nargs, sig[fn]);
        return TY_ERR;
    }
    if ((e->where || e->by) && !is_agg(fn)) {
        err(c, e->where ? e->where_line : e->by_line, e->where ? e->where_col : e->by_col,
            "'%s' is only allowed in count, sum, avg, min, max, stddev and distinct",
            e->where ? "where" : "by");
        return TY_ERR;
    }
    int is_spec = fn <= VG_FN_SEEN;
    if (is_spec && (flags & IN_SPEC)) {
        err(c, e->line, e->col,
            "%s() cannot be used inside an aggregate, prev() or seen() argument (only event "
            "fields, literals and pure functions can)", name);
        return TY_ERR;
    }
    int aflags = flags | (is_spec ? IN_SPEC : 0);
    int bad = 0;
    int tx[4] = {0, 0, 0, 0};
    for (int i = 0; i < nx[fn]; i++) {
        tx[i] = check(c, e->args[i], aflags);
        if (tx[i] == TY_ERR) bad = 1;
    }
    if (nw[fn] && check_window(c, e, e->args[nx[fn]],
                               fn >= VG_FN_SESSION_COUNT && fn <= VG_FN_SESSION_DURATION
                                   ? "gap" : "window") < 0)
        bad = 1;
    if (e->where) {
        int t = check(c, e->where, aflags);
        if (t != TY_ERR && !is_boollike(t)) {
            err(c, e->where->line, e->where->col, "'where' needs a boolean condition, found %s",
                vg_check_type_name(t));
            bad = 1;
        } else if (t == TY_ERR) bad = 1;
    }
    if (e->by) {
        int t = check(c, e->by, aflags | IN_BY);
        if (t != TY_ERR && t != VG_T_STR && t != VG_T_NUM && t != VG_T_BOOL && t != VG_CT_ANY) {
            err(c, e->by->line, e->by->col, "'by' needs a string, number or bool key, found %s",
                vg_check_type_name(t));
            bad = 1;
        } else if (t == TY_ERR) bad = 1;
    }
    if (bad) return TY_ERR;
    e->is_spec = (uint8_t)is_spec;
    switch (fn) {
    case VG_FN_SUM: case VG_FN_AVG: case VG_FN_MIN: case VG_FN_MAX: case VG_FN_STDDEV:
    case VG_FN_SESSION_SUM:
        if (tx[0] != VG_T_NUM && tx[0] != VG_CT_ANY) {
            err(c, e->args[0]->line, e->args[0]->col, "%s() needs a number, found %s", name,
                vg_check_type_name(tx[0]));
            return TY_ERR;
        }
        return VG_T_NUM;
    case VG_FN_DISTINCT: case VG_FN_SEEN: case VG_FN_PREV:
        if (tx[0] == VG_T_NULL) {
            err(c, e->args[0]->line, e->args[0]->col, "%s() of null is always null", name);
            return TY_ERR;
        }
        return fn == VG_FN_DISTINCT ? VG_T_NUM : fn == VG_FN_SEEN ? VG_T_BOOL : tx[0];
    case VG_FN_GEO_KM:
        for (int i = 0; i < 4; i++)
            if (!is_numlike(tx[i])) {
                err(c, e->args[i]->line, e->args[i]->col,
                    "geo_km() needs numbers (degrees), found %s", vg_check_type_name(tx[i]));
                return TY_ERR;
            }
        return VG_T_NUM;
    case VG_FN_SECONDS_BETWEEN:
        for (int i = 0; i < 2; i++)
            if (tx[i] != VG_T_TIME && tx[i] != VG_T_NULL) {
                err(c, e->args[i]->line, e->args[i]->col,
                    "seconds_between() needs times (such as tx.ts), found %s",
                    vg_check_type_name(tx[i]));
                return TY_ERR;
            }
        return VG_T_NUM;
    default:
        return VG_T_NUM;  /* count, sessions */
    }
}

static int check(checker_t *c, vg_ast_t *e, int flags) {
    int t = TY_ERR, ta, tb;
    switch (e->kind) {
    case VG_AST_NUM: t = VG_T_NUM; break;
    case VG_AST_STR: t = VG_T_STR; break;
    case VG_AST_BOOL: t = VG_T_BOOL; break;
    case VG_AST_NULL: t = VG_T_NULL; break;
    case VG_AST_DUR: t = VG_T_DUR; break;
    case VG_AST_FIELD:
        t = VG_CT_ANY;
        e->ref = -1;
#define VG_FIELD_MATCH(name, text, type)                                                  \
        if (e->str.len == sizeof(text) - 1 && memcmp(e->str.p, text, e->str.len) == 0) { \
            e->ref = VG_FIELD_##name;                                                      \
            t = type;                                                                      \
        }
        VG_FIELD_LIST(VG_FIELD_MATCH)
#undef VG_FIELD_MATCH
        if (e->ref < 0) warn_field(c, e->line, e->col, e->str.p, e->str.len);
        break;
    case VG_AST_ANOMALY: {
        static const char *const sig[] = {VG_RULES_ANOMALY_SIGNALS};
        e->ref = -2;
        if (e->str.len == 5 && memcmp(e->str.p, "score", 5) == 0) e->ref = -1;
        for (int i = 0; i < VG_RULES_NANOMALY && e->ref == -2; i++)
            if (strlen(sig[i]) == e->str.len && memcmp(sig[i], e->str.p, e->str.len) == 0)
                e->ref = i;
        if (e->ref == -2) {
            err(c, e->line, e->col,
                "unknown anomaly signal 'anomaly.%.*s' (known: score, amount, time, merchant, "
                "country, device, ip, mcc, channel, velocity, multi, compromise)",
                (int)e->str.len, e->str.p);
        } else if (flags & IN_BY) {
            /* in x, where and the arguments of prev()/seen() it is the event's own score,
             * computed before the windows take the event; a key must not depend on it */
            err(c, e->line, e->col,
                "anomaly.%.*s cannot be used in a 'by' key (only event fields, literals and "
                "pure functions can)",
                (int)e->str.len, e->str.p);
        } else {
            t = VG_T_NUM;
        }
        break;
    }
    case VG_AST_NAME:
        if (e->ref < 0) break;   /* unknown: resolve() said so, once */
        if (flags & IN_SPEC) {
            err(c, e->line, e->col,
                "feature '%.*s' cannot be used inside an aggregate, prev() or seen() argument "
                "(only event fields, literals and pure functions can)",
                (int)e->str.len, e->str.p);
            break;
        }
        if (e->ref >= 0) t = c->ftype[e->ref];
        break;
    case VG_AST_UNARY:
        ta = check(c, e->a, flags);
        if (ta == TY_ERR) break;
        if (e->op == VG_OP_NOT) {
            if (is_boollike(ta)) t = VG_T_BOOL;
            else err(c, e->line, e->col, "'not' needs a bool, found %s", vg_check_type_name(ta));
        } else {
            if (ta == VG_T_DUR) t = VG_T_DUR;
            else if (is_numlike(ta)) t = VG_T_NUM;
            else err(c, e->line, e->col, "cannot negate a %s", vg_check_type_name(ta));
        }
        break;
    case VG_AST_BINARY:
        ta = check(c, e->a, flags);
        if (e->op == VG_OP_IN) {
            t = check_in(c, e, ta, flags);
            break;
        }
        tb = check(c, e->b, flags);
        if (ta == TY_ERR || tb == TY_ERR) break;
        if (e->op == VG_OP_AND || e->op == VG_OP_OR) {
            if (!is_boollike(ta) || !is_boollike(tb))
                err(c, e->line, e->col, "'%s' needs bools, found %s and %s", op_text(e->op),
                    vg_check_type_name(ta), vg_check_type_name(tb));
            else t = VG_T_BOOL;
        } else if (e->op >= VG_OP_EQ && e->op <= VG_OP_GE) {
            t = compare(c, e, ta, tb);
        } else {
            t = arith(c, e, ta, tb);
        }
        break;
    case VG_AST_CALL:
        t = check_call(c, e, flags);
        break;
    case VG_AST_ARRAY:
    case VG_AST_LISTREF:
        err(c, e->line, e->col, "a list can only be used after 'in'");
        break;
    }
    e->type = (uint8_t)t;
    return t;
}

/* ---- rules ------------------------------------------------------------------------ */

static int word_is(vg_str_t w, const char *const *words) {
    for (int i = 0; words[i]; i++)
        if (strlen(words[i]) == w.len && memcmp(words[i], w.p, w.len) == 0) return 1;
    return 0;
}

static void check_message(checker_t *c, const vg_ast_clause_t *cl) {
    const char *s = cl->word.p;
    uint32_t n = cl->word.len;
    for (uint32_t i = 0; i < n; i++) {
        if (s[i] != '{') continue;
        uint32_t j = i + 1;
        while (j < n && s[j] != '}' && s[j] != '{') j++;
        if (j >= n || s[j] != '}') {
            /* printed as it is: most likely a placeholder whose '}' was forgotten */
            warn(c, cl->word_line, cl->word_cols ? cl->word_cols[i] : cl->word_col,
                 "'{' in message is not closed before the next '{' or the end: it is printed "
                 "as it is (a placeholder is {name})");
            continue;
        }
        const char *name = s + i + 1;
        uint32_t len = j - i - 1;
        int fi = vg_strmap_get(&c->fmap, name, len);
        if (fi >= 0 && c->used) c->used[fi] = 1;
        int is_field = len > 3 && memcmp(name, "tx.", 3) == 0;
        int ok = fi >= 0 || is_field || vg_strmap_get(&c->bmap, name, len) >= 0;
        int col = cl->word_cols ? cl->word_cols[i] : cl->word_col;   /* of its '{' */
        if (!ok)
            err(c, cl->word_line, col,
                "message placeholder {%.*s} names no feature (use a feature name or tx.<field>)",
                (int)len, name);
        else if (is_field && fi < 0) {
            int known = 0;
#define VG_FIELD_IS(fname, text, type)                                                  \
            if (len - 3 == sizeof(text) - 1 && memcmp(name + 3, text, len - 3) == 0) known = 1;
            VG_FIELD_LIST(VG_FIELD_IS)
#undef VG_FIELD_IS
            if (!known) warn_field(c, cl->word_line, col, name + 3, len - 3);
        }
        i = j;
    }
}

static void check_rule(checker_t *c, vg_ast_decl_t *r) {
    static const char *const sev[] = {"low", "medium", "high", "critical", NULL};
    static const char *const act[] = {"allow", "review", "block", "alert", NULL};
    static const char *const mode[] = {"active", "shadow", "disabled", NULL};
    static const char *const clname[] = {"severity", "action", "score", "mode", "when",
                                         "message", "suppress"};
    const vg_ast_clause_t *seen[VG_CL__COUNT] = {0};
    for (int i = 0; i < r->nclauses; i++) {
        vg_ast_clause_t *cl = &r->clauses[i];
        if (seen[cl->kind]) {
            err(c, cl->line, cl->col, "duplicate '%s' clause in rule '%.*s' (first at line %d)",
                clname[cl->kind], (int)r->name.len, r->name.p, seen[cl->kind]->line);
            continue;
        }
        seen[cl->kind] = cl;
        int t;
        switch (cl->kind) {
        case VG_CL_SEVERITY:
            if (!word_is(cl->word, sev))
                err(c, cl->word_line, cl->word_col,
                    "unknown severity '%.*s' (expected low, medium, high or critical)",
                    (int)cl->word.len, cl->word.p);
            break;
        case VG_CL_ACTION:
            if (!word_is(cl->word, act))
                err(c, cl->word_line, cl->word_col,
                    "unknown action '%.*s' (expected allow, review, block or alert)",
                    (int)cl->word.len, cl->word.p);
            break;
        case VG_CL_MODE:
            if (!word_is(cl->word, mode))
                err(c, cl->word_line, cl->word_col,
                    "unknown mode '%.*s' (expected active, shadow or disabled)",
                    (int)cl->word.len, cl->word.p);
            break;
        case VG_CL_SCORE:
            resolve(c, cl->expr, NULL);
            t = check(c, cl->expr, IN_RULE);
            if (t != TY_ERR && !is_numlike(t))
                err(c, cl->expr->line, cl->expr->col, "a score must be a number, found %s",
                    vg_check_type_name(t));
            else if (t != TY_ERR && literal_type(cl->expr) == VG_T_NUM) {
                /* a literal, negated or not */
                double v = cl->expr->kind == VG_AST_NUM ? cl->expr->v.n : -cl->expr->a->v.n;
                if (v < 0 || v > 100) {
                    char num[40];   /* as written, to its last digit: 100.0000000001 */
                    vg_dtoa_shortest(v, num);
                    err(c, cl->expr->line, cl->expr->col, "score %s is out of range 0..100", num);
                }
            }
            break;
        case VG_CL_WHEN:
            resolve(c, cl->expr, NULL);
            t = check(c, cl->expr, IN_RULE);
            if (t != TY_ERR && !is_boollike(t))
                err(c, cl->expr->line, cl->expr->col,
                    "the condition of rule '%.*s' must be a bool, found %s", (int)r->name.len,
                    r->name.p, vg_check_type_name(t));
            break;
        case VG_CL_MESSAGE:
            check_message(c, cl);
            break;
        case VG_CL_SUPPRESS:
            if (cl->ms <= 0)
                err(c, cl->word_line, cl->word_col, "suppress needs a positive duration");
            break;
        }
    }
    static const int required[] = {VG_CL_ACTION, VG_CL_SCORE, VG_CL_WHEN};
    for (int i = 0; i < 3; i++)
        if (!seen[required[i]])
            err(c, r->line, r->col, "rule '%.*s' has no '%s' clause (action, score and when "
                "are required)", (int)r->name.len, r->name.p, clname[required[i]]);
}

/* ---- driver ----------------------------------------------------------------------- */

static void *aalloc(checker_t *c, size_t n) {
    void *p = vg_arena_alloc(c->ar, n ? n : 1);
    if (!p) c->nomem = 1;
    else memset(p, 0, n ? n : 1);
    return p;
}

/* Appends feature f's name to path[*pl..cap) with " -> " after it unless last (a name
 * longer than 30 bytes is cut, with "..."). */
static void path_name(checker_t *c, int f, int last, char *path, size_t cap, size_t *pl) {
    const vg_ast_decl_t *d = c->out->features[f];
    int n = d->name.len > 30 ? 27 : (int)d->name.len;
    int w = snprintf(path + *pl, cap - *pl, "%.*s%s%s", n, d->name.p,
                     d->name.len > 30 ? "..." : "", last ? "" : " -> ");
    if (w > 0) *pl += (size_t)w < cap - *pl ? (size_t)w : cap - *pl - 1;
}

/* The path of the cycle cyc[0] -> ... -> cyc[n-1] -> cyc[0] into path (cap >= 200): in
 * full when it fits, else its head, "... (N more)" and its last feature. */
static void cycle_path(checker_t *c, const int *cyc, int n, char *path, size_t cap) {
    size_t pl = 0, full = 0;
    for (int i = 0; i < n; i++) {
        size_t len = c->out->features[cyc[i]]->name.len;
        full += (len > 30 ? 30 : len) + 4;
    }
    full += c->out->features[cyc[0]]->name.len > 30 ? 30 : c->out->features[cyc[0]]->name.len;
    if (full < cap) {
        for (int i = 0; i < n; i++) path_name(c, cyc[i], 0, path, cap, &pl);
        path_name(c, cyc[0], 1, path, cap, &pl);
        return;
    }
    /* the tail " -> ... (N more) -> last -> first" takes at most 4 + 19 + 4 + 2 * 34 */
    int head = 0;
    while (head < n - 2 && pl + 34 + 100 < cap) path_name(c, cyc[head++], 0, path, cap, &pl);
    int w = snprintf(path + pl, cap - pl, "... (%d more) -> ", n - 1 - head);
    if (w > 0) pl += (size_t)w;
    path_name(c, cyc[n - 1], 0, path, cap, &pl);
    path_name(c, cyc[0], 1, path, cap, &pl);
}

/* Orders features dependencies-first; reports each cycle once with its path. */
static int order_features(checker_t *c, int **deps, int *ndeps) {
    int n = c->out->nfeatures;
    int *color = calloc((size_t)n + 1, sizeof(int));     /* 0 new, 1 on stack, 2 done */
    int *stk = malloc(sizeof(int) * ((size_t)n + 1));
    int *pos = malloc(sizeof(int) * ((size_t)n + 1));
    int k = 0, rc = 0;
    if (!color || !stk || !pos) { rc = -1; goto out; }
    for (int s = 0; s < n; s++) {
        if (color[s]) continue;
        int sp = 0;
        stk[sp] = s; pos[sp] = 0; sp++;
        color[s] = 1;
        while (sp) {
            int f = stk[sp - 1];
            if (pos[sp - 1] < ndeps[f]) {
                int g = deps[f][pos[sp - 1]++];
                if (color[g] == 0) {
                    color[g] = 1;
                    stk[sp] = g; pos[sp] = 0; sp++;
                } else if (color[g] == 1) {
                    /* cycle: g ... f on the stack */
                    int from = sp - 1;
                    while (stk[from] != g) from--;
                    char path[200];
                    cycle_path(c, stk + from, sp - from, path, sizeof path);
                    vg_ast_decl_t *dg = c->out->features[g];
                    c->file = dg->file;
                    err(c, dg->name_line, dg->name_col, "feature '%.*s%s' depends on itself: %s",
                        dg->name.len > 30 ? 27 : (int)dg->name.len, dg->name.p,
                        dg->name.len > 30 ? "..." : "", path);
                    for (int i = from; i < sp; i++) c->ftype[stk[i]] = TY_ERR;
                }
            } else {
                color[f] = 2;
                c->out->order[k++] = f;
                sp--;
            }
        }
    }
out:
    free(color);
    free(stk);
    free(pos);
    return rc;
}

int vg_check(vg_ast_module_t *mods, int nmods, vg_arena_t *arena, vg_diags_t *diags,
             vg_checked_t *out) {
    checker_t c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    c.d = diags;
    c.ar = arena;
    c.out = out;
    vg_strmap_init(&c.fmap);
    vg_strmap_init(&c.lmap);
    vg_strmap_init(&c.bmap);
    vg_strmap_t rmap;
    vg_strmap_init(&rmap);
    int nerr0 = diags->n_errors;
    int **deps = NULL, *ndeps = NULL;
    ivec_t dv = {0};

    int nf = 0, nr = 0, nl = 0;
    for (int m = 0; m < nmods; m++)
        for (vg_ast_decl_t *d = mods[m].first; d; d = d->next)
            if (d->kind == VG_DECL_FEATURE) nf++;
            else if (d->kind == VG_DECL_RULE) nr++;
            else nl++;
    out->features = aalloc(&c, sizeof(void *) * (size_t)nf);
    out->order = aalloc(&c, sizeof(int) * (size_t)nf);
    out->rules = aalloc(&c, sizeof(void *) * (size_t)nr);
    out->lists = aalloc(&c, sizeof(void *) * (size_t)nl);
    c.ftype = aalloc(&c, sizeof(int) * (size_t)nf);
    c.used = aalloc(&c, (size_t)nf);
    deps = calloc((size_t)nf + 1, sizeof(int *));
    ndeps = calloc((size_t)nf + 1, sizeof(int));
    if (c.nomem || !deps || !ndeps) goto nomem;

    for (int m = 0; m < nmods; m++)
        for (vg_ast_decl_t *d = mods[m].broken; d; d = d->next)
            if (d->kind == VG_DECL_FEATURE &&
                vg_strmap_put(&c.bmap, d->name.p, d->name.len, 0) == -2)
                goto nomem;
    for (int m = 0; m < nmods; m++) {
        for (vg_ast_decl_t *d = mods[m].first; d; d = d->next) {
            c.file = d->file;
            vg_strmap_t *map = d->kind == VG_DECL_FEATURE ? &c.fmap
                               : d->kind == VG_DECL_RULE  ? &rmap : &c.lmap;
            const char *what = d->kind == VG_DECL_FEATURE ? "feature"
                               : d->kind == VG_DECL_RULE  ? "rule" : "list";
            int idx = d->kind == VG_DECL_FEATURE ? out->nfeatures
                      : d->kind == VG_DECL_RULE  ? out->nrules : out->nlists;
            if (d->kind == VG_DECL_FEATURE && idx == VG_RULES_MAX_FEATURES) {
                err(&c, d->line, d->col, "too many features (limit %d)", VG_RULES_MAX_FEATURES);
                continue;
            }
            if (d->kind == VG_DECL_RULE && idx == VG_RULES_MAX_RULES) {
                err(&c, d->line, d->col, "too many rules (limit %d)", VG_RULES_MAX_RULES);
                continue;
            }
            int prev = vg_strmap_put(map, d->name.p, d->name.len, idx);
            if (prev == -2) goto nomem;
            if (prev >= 0) {
                vg_ast_decl_t *first = d->kind == VG_DECL_FEATURE ? out->features[prev]
                                       : d->kind == VG_DECL_RULE  ? out->rules[prev]
                                                                  : out->lists[prev];
                err(&c, d->name_line, d->name_col, "duplicate %s '%.*s' (first declared at %s:%d:%d)",
                    what, (int)d->name.len, d->name.p, first->file, first->name_line,
                    first->name_col);
                continue;
            }
            if (d->kind == VG_DECL_FEATURE) out->features[out->nfeatures++] = d;
            else if (d->kind == VG_DECL_RULE) out->rules[out->nrules++] = d;
            else out->lists[out->nlists++] = d;
        }
    }
    /* dependencies */
    for (int i = 0; i < out->nfeatures; i++) {
        vg_ast_decl_t *d = out->features[i];
        c.file = d->file;
        dv.n = 0;
        resolve(&c, d->expr, &dv);
        if (c.nomem) goto nomem;
        if (dv.n) {
            if (!(deps[i] = aalloc(&c, sizeof(int) * (size_t)dv.n))) goto nomem;
            memcpy(deps[i], dv.v, sizeof(int) * (size_t)dv.n);
        }
        ndeps[i] = dv.n;
    }
    if (order_features(&c, deps, ndeps) < 0) goto nomem;
    /* types, dependencies first */
    for (int k = 0; k < out->nfeatures; k++) {
        int i = out->order[k];
        if (c.ftype[i] == TY_ERR) continue;  /* on a cycle */
        vg_ast_decl_t *d = out->features[i];
        c.file = d->file;
        int bad_dep = 0;
        for (int j = 0; j < ndeps[i]; j++) if (c.ftype[deps[i][j]] == TY_ERR) bad_dep = 1;
        c.ftype[i] = bad_dep ? TY_ERR : check(&c, d->expr, 0);
    }
    for (int i = 0; i < out->nrules; i++) {
        c.file = out->rules[i]->file;
        check_rule(&c, out->rules[i]);
    }
    /* a declaration whose name was taken is checked too, so that one run reports its
     * other mistakes as well (its names resolve to the first declarations) */
    for (int m = 0; m < nmods; m++)
        for (vg_ast_decl_t *d = mods[m].first; d; d = d->next) {
            if (d->kind == VG_DECL_LIST) continue;
            int fe = d->kind == VG_DECL_FEATURE;
            int k = vg_strmap_get(fe ? &c.fmap : &rmap, d->name.p, d->name.len);
            if (k < 0 || (fe ? out->features[k] : out->rules[k]) == d) continue;
            c.file = d->file;
            if (fe) {
                resolve(&c, d->expr, NULL);
                check(&c, d->expr, 0);
            } else check_rule(&c, d);
            if (c.nomem) goto nomem;
        }
    /* with rules, a feature nothing reads is likely a mistake (it is still output) */
    if (out->nrules > 0 && diags->n_errors == nerr0)
        for (int i = 0; i < out->nfeatures; i++) {
            vg_ast_decl_t *d = out->features[i];
            if (c.used[i]) continue;
            c.file = d->file;
            vg_diags_add(diags, 0, d->file, d->name_line, d->name_col,
                         "feature '%.*s' is not used by any rule or feature (it is still "
                         "computed and output)", (int)d->name.len, d->name.p);
        }
    if (c.nomem) goto nomem;
    free(dv.v);
    free(deps);
    free(ndeps);
    vg_strmap_deinit(&c.fmap);
    vg_strmap_deinit(&c.lmap);
    vg_strmap_deinit(&c.bmap);
    vg_strmap_deinit(&rmap);
    return diags->n_errors > nerr0 ? VG_ECOMPILE : 0;
nomem:
    free(dv.v);
    free(deps);
    free(ndeps);
    vg_strmap_deinit(&c.fmap);
    vg_strmap_deinit(&c.lmap);
    vg_strmap_deinit(&c.bmap);
    vg_strmap_deinit(&rmap);
    vg_diags_add(diags, 1, c.file, 1, 1, "out of memory while checking");
    return VG_ENOMEM;
}
