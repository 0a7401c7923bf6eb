/* compiler.c - checked AST -> state specs and register bytecode (see compiler.h).
 *
 * Registers are numbered virtually while emitting: constants get CONST_TAG | index,
 * every other value a fresh register (no reuse: code is straight-line and small, and a
 * fresh register per value lets any later feature read any earlier result). Event field
 * loads and spec loads are emitted once per phase, where first needed; since there are
 * no jumps that first load precedes every use. At the end every register operand is
 * relocated to [constants][registers].
 */
#include "rules/compiler.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "rules/errors.h"
#include "rules/strmap.h"

#define CONST_TAG 0x80000000u
#define MAX_REGS (1u << 22)
#define NONE 0xFFFFFFFFu
#define EXT_TAG 0x40000000u   /* spec index of ext value j while compiling: EXT_TAG | j;
                                 relocated to nspecs + j at the end */

typedef struct cbuf { char *p; size_t n, cap; } cbuf_t;

typedef struct comp {
    vg_program_t *p;
    vg_diags_t *d;
    int nomem, toobig;
    /* code being emitted */
    vg_ins_t *code;
    uint32_t n, cap;
    uint32_t nreg;                        /* virtual registers of this phase */
    uint32_t field_reg[VG_FIELD__COUNT];  /* per phase: register of a loaded field */
    vg_strmap_t extra_reg;                /* per phase: name -> register */
    vg_strmap_t name_idx;                 /* extra field name -> p->names index */
    vg_strmap_t consts;                   /* constant key -> index */
    vg_strmap_t specs;                    /* canonical text -> spec index */
    vg_strmap_t bys;                      /* by text -> group */
    vg_ast_t **spec_call;                 /* per spec: its call node */
    uint32_t *spec_reg;                   /* phase 2: register of a loaded spec */
    vg_strmap_t exts;                     /* canonical text -> ext index */
    vg_ast_t **ext_call;                  /* per ext value: its node */
    uint32_t *ext_reg;                    /* register of a loaded ext value */
    int ext_cap, ecall_cap, ereg_cap;
    vg_strmap_t mxs;                      /* label sums: x text -> memo slot */
    int mx_cap;
    int spec_cap, call_cap, reg_cap, by_cap, byx_cap, const_cap, name_cap, list_cap;
    vg_ast_t **by_expr;                   /* per group: the key expression */
    uint32_t *freg;                       /* per feature: its register, NONE until needed */
    vg_ast_decl_t *const *features;
    /* phase 3 (rules) */
    int phase;                            /* 1, 2 or 3 */
    int depth;                            /* > 0: inside code a jump may skip */
    uint32_t *featreg;                    /* phase 3: register of a loaded feature */
    vg_strmap_t named_map;                /* declared list name -> index */
    vg_strmap_t zone_map;                 /* zone name -> index */
    int regex_cap, zone_cap;
} comp_t;

/* ---- canonical text ------------------------------------------------------------------- */

static void put(comp_t *c, cbuf_t *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 128;
        while (ncap < b->n + n + 1) ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) { c->nomem = 1; return; }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void puts_(comp_t *c, cbuf_t *b, const char *s) { put(c, b, s, strlen(s)); }

/* Shortest %g form that reads back as the same double. */
static void put_num(comp_t *c, cbuf_t *b, double v) {
    char t[40];
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(t, sizeof t, "%.0f", v);
        puts_(c, b, strcmp(t, "-0") == 0 ? "0" : t);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*g", prec, v);
        if (strtod(t, NULL) == v) break;
    }
    puts_(c, b, t);
}

static void put_dur(comp_t *c, cbuf_t *b, int64_t ms) {
    static const struct { int64_t ms; const char *u; } units[] = {
        {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    char t[40];
    for (int i = 0; i < 5; i++)
        if (ms % units[i].ms == 0 || i == 4) {
            snprintf(t, sizeof t, "%lld%s", (long long)(ms / units[i].ms), units[i].u);
            break;
        }
    puts_(c, b, t);
}

static void put_str(comp_t *c, cbuf_t *b, vg_str_t s) {
    put(c, b, "\"", 1);
    for (uint32_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        char t[8];
        if (ch == '"' || ch == '\\') { t[0] = '\\'; t[1] = (char)ch; put(c, b, t, 2); }
        else if (ch == '\n') put(c, b, "\\n", 2);
        else if (ch == '\t') put(c, b, "\\t", 2);
        else if (ch < 0x20) { snprintf(t, sizeof t, "\\u%04x", ch); put(c, b, t, 6); }
        else put(c, b, (const char *)&s.p[i], 1);
    }
    put(c, b, "\"", 1);
}

static int prec_of(const vg_ast_t *e) {
    if (e->kind == VG_AST_UNARY) return e->op == VG_OP_NOT ? 3 : 7;
    if (e->kind != VG_AST_BINARY) return 8;
    switch (e->op) {
    case VG_OP_OR: return 1;
    case VG_OP_AND: return 2;
    case VG_OP_ADD: case VG_OP_SUB: return 5;
    case VG_OP_MUL: case VG_OP_DIV: return 6;
    default: return 4;
    }
}

static void print_expr(comp_t *c, cbuf_t *b, const vg_ast_t *e, int min_prec) {
    static const char *ops[] = {" or ", " and ", "not ", " == ", " != ", " < ", " <= ", " > ",
                                " >= ", " in ", " + ", " - ", " * ", " / ", "-"};
    int p = prec_of(e);
    if (p < min_prec) put(c, b, "(", 1);
    switch (e->kind) {
    case VG_AST_NUM: put_num(c, b, e->v.n); break;
    case VG_AST_STR: put_str(c, b, e->str); break;
    case VG_AST_BOOL: puts_(c, b, e->v.b ? "true" : "false"); break;
    case VG_AST_NULL: puts_(c, b, "null"); break;
    case VG_AST_DUR: put_dur(c, b, e->v.ms); break;
    case VG_AST_FIELD: puts_(c, b, "tx."); put(c, b, e->str.p, e->str.len); break;
    case VG_AST_ANOMALY: puts_(c, b, "anomaly."); put(c, b, e->str.p, e->str.len); break;
    case VG_AST_NAME: put(c, b, e->str.p, e->str.len); break;
    case VG_AST_UNARY:
        puts_(c, b, ops[e->op]);
        print_expr(c, b, e->a, p);
        break;
    case VG_AST_BINARY:
        print_expr(c, b, e->a, p == 4 ? 5 : p);
        puts_(c, b, ops[e->op]);
        print_expr(c, b, e->b, p + 1);
        break;
    case VG_AST_CALL:
    case VG_AST_ARRAY:
        if (e->kind == VG_AST_CALL) { put(c, b, e->str.p, e->str.len); put(c, b, "(", 1); }
        else put(c, b, "[", 1);
        for (int i = 0; i < e->nargs; i++) {
            if (i) put(c, b, ", ", 2);
            print_expr(c, b, e->args[i], 0);
        }
        if (e->where) { puts_(c, b, " where "); print_expr(c, b, e->where, 0); }
        if (e->by) { puts_(c, b, " by "); print_expr(c, b, e->by, 0); }
        put(c, b, e->kind == VG_AST_CALL ? ")" : "]", 1);
        break;
    case VG_AST_LISTREF:
        puts_(c, b, "list(");
        put_str(c, b, e->str);
        put(c, b, ")", 1);
        break;
    }
    if (p < min_prec) put(c, b, ")", 1);
}

/* Copies s (n bytes) into the program's arena, NUL-terminated. */
static char *keep(comp_t *c, const char *s, size_t n) {
    char *m = vg_arena_alloc(&c->p->mem, n + 1);
    if (!m) { c->nomem = 1; return NULL; }
    if (n) memcpy(m, s, n);
    m[n] = 0;
    return m;
}

static int grow(comp_t *c, void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need) ncap *= 2;
    void *np = realloc(*arr, elem * (size_t)ncap);
    if (!np) { c->nomem = 1; return -1; }
    *arr = np;
    *cap = ncap;
    return 0;
}

/* ---- emission --------------------------------------------------------------------- */

static uint32_t newreg(comp_t *c) {
    if (c->nreg >= MAX_REGS) { c->toobig = 1; return 0; }
    return c->nreg++;
}

static void emit(comp_t *c, int op, uint32_t p1, uint32_t p2, uint32_t p3) {
    if (c->n == c->cap) {
        uint32_t ncap = c->cap ? c->cap * 2 : 64;
        vg_ins_t *nc = realloc(c->code, sizeof(vg_ins_t) * ncap);
        if (!nc) { c->nomem = 1; return; }
        c->code = nc;
        c->cap = ncap;
    }
    c->code[c->n++] = (vg_ins_t){(uint32_t)op, p1, p2, p3};
}

/* Returns the tagged register of constant v (interned). */
static uint32_t konst(comp_t *c, vg_value_t v) {
    char key[1 + 8];
    char *k;
    size_t kn;
    if (v.type == VG_T_STR) {
        kn = 1 + v.u.s.len;
        if (!(k = vg_arena_alloc(&c->p->mem, kn))) { c->nomem = 1; return CONST_TAG; }
        k[0] = (char)v.type;
        if (v.u.s.len) memcpy(k + 1, v.u.s.p, v.u.s.len);
        v.u.s.p = k + 1;  /* the constant's bytes live in the program */
    } else {
        vg_value_t z;
        memset(&z, 0, sizeof z);
        z.type = v.type;
        if (v.type == VG_T_NUM) z.u.n = v.u.n;
        else if (v.type == VG_T_BOOL) z.u.b = v.u.b;
        else if (v.type != VG_T_NULL) z.u.ms = v.u.ms;
        v = z;
        key[0] = (char)v.type;
        memcpy(key + 1, &v.u.ms, 8);
        kn = 9;
        k = key;
    }
    int idx = vg_strmap_get(&c->consts, k, (uint32_t)kn);
    if (idx >= 0) return CONST_TAG | (uint32_t)idx;
    if (k == key && !(k = keep(c, key, kn))) return CONST_TAG;
    idx = (int)c->p->nconst;
    if (grow(c, (void **)&c->p->consts, &c->const_cap, idx + 1, sizeof(vg_value_t)) < 0)
        return CONST_TAG;
    if (vg_strmap_put(&c->consts, k, (uint32_t)kn, idx) == -2) { c->nomem = 1; return CONST_TAG; }
    c->p->consts[idx] = v;
    c->p->nconst++;
    return CONST_TAG | (uint32_t)idx;
}

static int is_const(uint32_t r) { return (r & CONST_TAG) != 0; }
static vg_value_t const_val(comp_t *c, uint32_t r) { return c->p->consts[r & ~CONST_TAG]; }

/* Emits op over a (and b, when binary) into a new register, or folds constants. */
static uint32_t op1(comp_t *c, int op, uint32_t a) {
    if (is_const(a) && !c->nomem && op != VG_OPC_Lower && op != VG_OPC_Upper) {
        vg_value_t r[3] = {const_val(c, a), vg_null(), vg_null()};
        vg_ins_t code[2] = {{(uint32_t)op, 0, 2, 0}, {VG_OPC_Halt, 0, 0, 0}};
        vg_vm_ctx_t ctx;
        memset(&ctx, 0, sizeof ctx);
        vg_vm_run(code, r, &ctx);
        return konst(c, r[2]);
    }
    uint32_t out = newreg(c);
    emit(c, op, a, out, 0);
    return out;
}

static uint32_t op2(comp_t *c, int op, uint32_t a, uint32_t b) {
    if (is_const(a) && is_const(b) && !c->nomem) {
        vg_value_t r[3] = {const_val(c, a), const_val(c, b), vg_null()};
        vg_ins_t code[2] = {{(uint32_t)op, 0, 1, 2}, {VG_OPC_Halt, 0, 0, 0}};
        vg_vm_ctx_t ctx;
        memset(&ctx, 0, sizeof ctx);
        vg_vm_run(code, r, &ctx);
        return konst(c, r[2]);
    }
    uint32_t out = newreg(c);
    emit(c, op, a, b, out);
    return out;
}

/* Argument i (in register r) of coalesce() e: an extra field (of any JSON type at run
 * time) read as the one type the checker settled for the call, a value of another type
 * being null (docs/rules.md, Types), so that `coalesce(tx.risk, 0)` gives 0 for
 * "risk":"75" and `coalesce(tx.x, "d")` is always a string. min() and max() of numbers
 * are null on another type already. */
static uint32_t coalesce_arg(comp_t *c, const vg_ast_t *e, int i, uint32_t r) {
    if (e->ref != VG_FN_COALESCE || e->args[i]->type != VG_CT_ANY) return r;
    if (e->type == VG_T_NULL || e->type >= VG_CT_ANY) return r;   /* any, or an error */
    uint32_t out = newreg(c);
    emit(c, VG_OPC_CastTo, r, out, e->type);
    return out;
}

static vg_value_t literal(const vg_ast_t *e) {
    switch (e->kind) {
    case VG_AST_NUM: return vg_num(e->v.n);
    case VG_AST_STR: return vg_strv(e->str.p, e->str.len);
    case VG_AST_BOOL: return vg_bool(e->v.b);
    case VG_AST_DUR: return vg_dur(e->v.ms);
    case VG_AST_UNARY: return vg_num(-e->a->v.n);   /* -NUM in [..] */
    default: return vg_null();
    }
}

static int spec_for(comp_t *c, vg_ast_t *call);
static uint32_t expr(comp_t *c, vg_ast_t *e);

/* The register slot of spec si (or of ext value EXT_TAG | j). */
static uint32_t *spec_slot(comp_t *c, int si) {
    return ((uint32_t)si & EXT_TAG) ? &c->ext_reg[(uint32_t)si & ~EXT_TAG] : &c->spec_reg[si];
}
static const char *spec_text(comp_t *c, int si) {
    return ((uint32_t)si & EXT_TAG) ? c->p->ext[(uint32_t)si & ~EXT_TAG].text : c->p->specs[si].text;
}
static int is_ext_node(const vg_ast_t *e) {
    return e->kind == VG_AST_ANOMALY ||
           (e->kind == VG_AST_CALL && e->ref >= VG_FN_FRAUD_COUNT && e->ref <= VG_FN_LABELLED_SUM);
}

/* Estimated evaluation cost of e (phase 3), in rough instruction units. Features and
 * inline aggregates cost one load: their values are computed before the rules. */
static uint32_t cost(const vg_ast_t *e) {
    if (!e) return 0;
    switch (e->kind) {
    case VG_AST_NUM: case VG_AST_STR: case VG_AST_BOOL: case VG_AST_NULL: case VG_AST_DUR:
        return 0;
    case VG_AST_FIELD: return e->ref >= 0 ? 1 : 4;
    case VG_AST_NAME: return 1;
    case VG_AST_UNARY: return 1 + cost(e->a);
    case VG_AST_BINARY:
        if (e->op == VG_OP_IN)
            return cost(e->a) + (e->b->kind == VG_AST_LISTREF ? 4 : 1 + (uint32_t)e->b->nargs / 2);
        return 1 + cost(e->a) + cost(e->b);
    case VG_AST_CALL: {
        if (e->is_spec) return 1;
        uint32_t k = e->ref == VG_FN_MATCHES ? 50 : e->ref == VG_FN_GEO_KM ? 12
                   : e->ref == VG_FN_LOWER || e->ref == VG_FN_UPPER ? 6
                   : e->ref == VG_FN_HOUR_OF_DAY || e->ref == VG_FN_DAY_OF_WEEK ? 4 : 2;
        for (int i = 0; i < e->nargs; i++) k += cost(e->args[i]);
        return k;
    }
    default: return 1;
    }
}

static void collect(vg_ast_t *e, int op, vg_ast_t ***v, int *n, int *cap, int *nomem) {
    if (e->kind == VG_AST_BINARY && e->op == op) {
        collect(e->a, op, v, n, cap, nomem);
        collect(e->b, op, v, n, cap, nomem);
        return;
    }
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        vg_ast_t **nv = realloc(*v, sizeof(vg_ast_t *) * (size_t)ncap);
        if (!nv) { *nomem = 1; return; }
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = e;
}

/* A chain of `and` (or `or`) in a rule: its operands cheapest first (three-valued
 * `and`/`or` are commutative and nothing has side effects, so the order cannot change
 * the result), and a jump out as soon as the result is decided (false for `and`, true
 * for `or`). */
static uint32_t logic(comp_t *c, vg_ast_t *e) {
    int is_and = e->op == VG_OP_AND;
    vg_ast_t **v = NULL;
    int n = 0, cap = 0;
    collect(e, e->op, &v, &n, &cap, &c->nomem);
    if (c->nomem) { free(v); return CONST_TAG; }
    uint32_t *k = malloc(sizeof(uint32_t) * (size_t)n);
    uint32_t *fix = malloc(sizeof(uint32_t) * (size_t)n);
    if (!k || !fix) { c->nomem = 1; free(v); free(k); free(fix); return CONST_TAG; }
    for (int i = 0; i < n; i++) k[i] = cost(v[i]);
    for (int i = 1; i < n; i++)   /* stable insertion sort by cost */
        for (int j = i; j > 0 && k[j - 1] > k[j]; j--) {
            uint32_t t = k[j]; k[j] = k[j - 1]; k[j - 1] = t;
            vg_ast_t *x = v[j]; v[j] = v[j - 1]; v[j - 1] = x;
        }
    uint32_t acc = newreg(c);
    emit(c, VG_OPC_Copy, konst(c, vg_bool(is_and)), acc, 0);
    int nfix = 0;
    for (int i = 0; i < n; i++) {
        if (i) c->depth++;
        uint32_t x = expr(c, v[i]);
        emit(c, is_and ? VG_OPC_And : VG_OPC_Or, acc, x, acc);
        if (i + 1 < n) {
            fix[nfix++] = c->n;
            emit(c, is_and ? VG_OPC_JumpIfFalse : VG_OPC_JumpIfTrue, acc, 0, 0);
        }
    }
    c->depth -= n - 1;
    for (int i = 0; i < nfix && !c->nomem; i++) c->code[fix[i]].p2 = c->n;
    free(v);
    free(k);
    free(fix);
    return acc;
}

/* Index of the zone named by literal z (loaded once per program). */
static uint32_t zone_for(comp_t *c, const vg_ast_t *z) {
    const char *nm = z ? z->str.p : "UTC";
    uint32_t len = z ? z->str.len : 3;
    int zi = vg_strmap_get(&c->zone_map, nm, len);
    if (zi >= 0) return (uint32_t)zi;
    vg_program_t *p = c->p;
    zi = (int)p->nzones;
    if (grow(c, (void **)&p->zones, &c->zone_cap, zi + 1, sizeof(vg_tz_t)) < 0) return 0;
    char why[300];
    if (vg_tz_load(&p->zones[zi], nm, len, why, sizeof why) != 0) {
        memset(&p->zones[zi], 0, sizeof(vg_tz_t));   /* the checker loaded it a moment ago */
    }
    p->nzones++;
    char *k = keep(c, nm, len);
    if (k && vg_strmap_put(&c->zone_map, k, len, zi) == -2) c->nomem = 1;
    return (uint32_t)zi;
}

static uint32_t regex_for(comp_t *c, const vg_ast_t *re) {
    vg_program_t *p = c->p;
    /* two codes per pattern (rules/vm.c rx_match): as written, for short subjects, and
     * with a callout before every item and no automatic possessification, whose
     * callouts count the work of a match on a long subject, all start positions
     * included (NULL when it cannot be compiled: the first then serves for both) */
    uint32_t ri = p->nregex;
    if (grow(c, (void **)&p->regex, &c->regex_cap, (int)ri + 2, sizeof(void *)) < 0) return 0;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re->str.p, re->str.len, PCRE2_UTF, &ec, &off, NULL);
    if (!code) { c->nomem = 1; return 0; }   /* the checker compiled it: only memory fails */
    p->regex[ri] = code;
    p->regex[ri + 1] = pcre2_compile((PCRE2_SPTR)re->str.p, re->str.len,
                                     PCRE2_UTF | PCRE2_AUTO_CALLOUT | PCRE2_NO_AUTO_POSSESS,
                                     &ec, &off, NULL);
    p->nregex += 2;
    return ri;
}

/* The pure functions: strings, math, time, null. */
static uint32_t pure(comp_t *c, vg_ast_t *e) {
    uint32_t a = expr(c, e->args[0]), out, acc;
    switch (e->ref) {
    case VG_FN_LOWER: return op1(c, VG_OPC_Lower, a);
    case VG_FN_UPPER: return op1(c, VG_OPC_Upper, a);
    case VG_FN_STARTS_WITH: return op2(c, VG_OPC_StartsWith, a, expr(c, e->args[1]));
    case VG_FN_ENDS_WITH: return op2(c, VG_OPC_EndsWith, a, expr(c, e->args[1]));
    case VG_FN_CONTAINS: return op2(c, VG_OPC_Contains, a, expr(c, e->args[1]));
    case VG_FN_MATCHES: {
        uint32_t ri = regex_for(c, e->args[1]);
        out = newreg(c);
        emit(c, VG_OPC_Matches, a, ri, out);
        return out;
    }
    case VG_FN_ABS: return op1(c, VG_OPC_Abs, a);
    case VG_FN_LOG: return op1(c, VG_OPC_Log, a);
    case VG_FN_ROUND:
        return op2(c, VG_OPC_Round, a, e->nargs > 1 ? expr(c, e->args[1]) : konst(c, vg_num(0)));
    case VG_FN_NMIN: case VG_FN_NMAX: case VG_FN_COALESCE:
        acc = coalesce_arg(c, e, 0, a);
        for (int i = 1; i < e->nargs; i++)
            acc = op2(c, e->ref == VG_FN_NMIN ? VG_OPC_Min2 : e->ref == VG_FN_NMAX ? VG_OPC_Max2
                                                                          : VG_OPC_Coalesce,
                      acc, coalesce_arg(c, e, i, expr(c, e->args[i])));
        return acc;
    case VG_FN_HOUR_OF_DAY: case VG_FN_DAY_OF_WEEK: {
        uint32_t zi = zone_for(c, e->nargs > 1 ? e->args[1] : NULL);
        out = newreg(c);
        emit(c, e->ref == VG_FN_HOUR_OF_DAY ? VG_OPC_Hour : VG_OPC_Dow, a, zi, out);
        return out;
    }
    case VG_FN_IS_NULL: return op1(c, VG_OPC_IsNull, a);
    default: return konst(c, vg_null());
    }
}

static uint32_t arith(comp_t *c, vg_ast_t *e) {
    uint32_t a = expr(c, e->a), b = expr(c, e->b);
    int ta = e->a->type, tb = e->b->type;
    if (ta == VG_CT_ANY) ta = VG_T_NUM;
    if (tb == VG_CT_ANY) tb = VG_T_NUM;
    if (ta == VG_T_NULL) ta = tb == VG_T_NULL ? VG_T_NUM : tb;
    if (tb == VG_T_NULL) tb = ta;
    int op = VG_OPC_Add;
    switch (e->op) {
    case VG_OP_ADD:
        if (ta == VG_T_TIME) op = VG_OPC_AddTD;
        else if (tb == VG_T_TIME) { op = VG_OPC_AddTD; uint32_t t = a; a = b; b = t; }
        else if (ta == VG_T_DUR) op = VG_OPC_AddDD;
        else op = VG_OPC_Add;
        break;
    case VG_OP_SUB:
        if (ta == VG_T_TIME) op = tb == VG_T_TIME ? VG_OPC_SubTT : VG_OPC_SubTD;
        else op = ta == VG_T_DUR ? VG_OPC_SubDD : VG_OPC_Sub;
        break;
    case VG_OP_MUL:
        if (ta == VG_T_DUR) op = VG_OPC_MulDN;
        else if (tb == VG_T_DUR) { op = VG_OPC_MulDN; uint32_t t = a; a = b; b = t; }
        else op = VG_OPC_Mul;
        break;
    case VG_OP_DIV:
        if (ta == VG_T_DUR) op = tb == VG_T_DUR ? VG_OPC_DivDD : VG_OPC_DivDN;
        else op = VG_OPC_Div;
        break;
    }
    return op2(c, op, a, b);
}

static uint32_t expr(comp_t *c, vg_ast_t *e) {
    if (c->nomem || c->toobig) return CONST_TAG;
    switch (e->kind) {
    case VG_AST_NUM: case VG_AST_STR: case VG_AST_BOOL: case VG_AST_NULL: case VG_AST_DUR:
        return konst(c, literal(e));
    case VG_AST_FIELD:
        if (e->ref >= 0) {
            if (c->field_reg[e->ref] == NONE) {
                uint32_t reg = newreg(c);
                emit(c, VG_OPC_Field, (uint32_t)e->ref, reg, 0);
                if (c->depth) return reg;   /* a jump may skip this load: not reusable */
                c->field_reg[e->ref] = reg;
            }
            return c->field_reg[e->ref];
        } else {
            int r = vg_strmap_get(&c->extra_reg, e->str.p, e->str.len);
            if (r >= 0) return (uint32_t)r;
            int ni = vg_strmap_get(&c->name_idx, e->str.p, e->str.len);
            if (ni < 0) {
                ni = (int)c->p->nnames;
                if (grow(c, (void **)&c->p->names, &c->name_cap, ni + 1, sizeof(vg_str_t)) < 0)
                    return CONST_TAG;
                char *s = keep(c, e->str.p, e->str.len);
                if (!s) return CONST_TAG;
                c->p->names[ni] = (vg_str_t){s, e->str.len};
                c->p->nnames++;
                if (vg_strmap_put(&c->name_idx, s, e->str.len, ni) == -2) c->nomem = 1;
            }
            uint32_t reg = newreg(c);
            const vg_str_t *nm = &c->p->names[ni];
            if (!c->depth && vg_strmap_put(&c->extra_reg, nm->p, nm->len, (int)reg) == -2)
                c->nomem = 1;
            emit(c, VG_OPC_Extra, (uint32_t)ni, reg, 0);
            return reg;
        }
    case VG_AST_NAME:
        if (c->phase == 3) {   /* rules read the features phase 2 computed */
            if (c->featreg[e->ref] != NONE) return c->featreg[e->ref];
            uint32_t reg = newreg(c);
            emit(c, VG_OPC_Feat, (uint32_t)e->ref, reg, 0);
            if (!c->depth) c->featreg[e->ref] = reg;
            return reg;
        }
        /* a feature written with OutSpec has no register until a later feature reads it;
         * its expression is then one spec call, whose load is emitted here once */
        if (c->freg[e->ref] == NONE) c->freg[e->ref] = expr(c, c->features[e->ref]->expr);
        return c->freg[e->ref];
    case VG_AST_UNARY: {
        uint32_t a = expr(c, e->a);
        int op = e->op == VG_OP_NOT ? VG_OPC_Not : e->type == VG_T_DUR ? VG_OPC_NegD : VG_OPC_Neg;
        return op1(c, op, a);
    }
    case VG_AST_BINARY:
        switch (e->op) {
        case VG_OP_OR:
            if (c->phase == 3) return logic(c, e);
            return op2(c, VG_OPC_Or, expr(c, e->a), expr(c, e->b));
        case VG_OP_AND:
            if (c->phase == 3) return logic(c, e);
            return op2(c, VG_OPC_And, expr(c, e->a), expr(c, e->b));
        case VG_OP_EQ: return op2(c, VG_OPC_Eq, expr(c, e->a), expr(c, e->b));
        case VG_OP_NE: return op2(c, VG_OPC_Ne, expr(c, e->a), expr(c, e->b));
        case VG_OP_LT: return op2(c, VG_OPC_Lt, expr(c, e->a), expr(c, e->b));
        case VG_OP_LE: return op2(c, VG_OPC_Le, expr(c, e->a), expr(c, e->b));
        case VG_OP_GT: return op2(c, VG_OPC_Gt, expr(c, e->a), expr(c, e->b));
        case VG_OP_GE: return op2(c, VG_OPC_Ge, expr(c, e->a), expr(c, e->b));
        case VG_OP_IN: {
            uint32_t a = expr(c, e->a);
            vg_ast_t *s = e->b;
            if (s->kind == VG_AST_LISTREF) {   /* rules only (the checker says so) */
                int li = vg_strmap_get(&c->named_map, s->str.p, s->str.len);
                uint32_t out = newreg(c);
                emit(c, VG_OPC_InNamed, a, (uint32_t)(li < 0 ? 0 : li), out);
                return out;
            }
            uint32_t li = c->p->nlists;
            if (grow(c, (void **)&c->p->lists, &c->list_cap, (int)li + 1, sizeof(vg_vm_list_t)) < 0)
                return CONST_TAG;
            vg_value_t *items = vg_arena_alloc(&c->p->mem, sizeof(vg_value_t) * (size_t)(s->nargs + 1));
            if (!items) { c->nomem = 1; return CONST_TAG; }
            for (int i = 0; i < s->nargs; i++) {
                items[i] = literal(s->args[i]);
                if (items[i].type == VG_T_STR) {
                    char *k = keep(c, items[i].u.s.p, items[i].u.s.len);
                    if (!k) return CONST_TAG;
                    items[i].u.s.p = k;
                }
            }
            c->p->lists[li] = (vg_vm_list_t){items, (uint32_t)s->nargs};
            c->p->nlists++;
            uint32_t out = newreg(c);
            emit(c, VG_OPC_InList, a, li, out);
            return out;
        }
        default:
            return arith(c, e);
        }
    case VG_AST_ANOMALY:
    case VG_AST_CALL:
        if (e->kind == VG_AST_ANOMALY || e->is_spec) {
            int si = spec_for(c, e);
            if (si < 0) return CONST_TAG;
            if (c->phase == 1) c->p->inputs_read_ext = 1;
            if (*spec_slot(c, si) == NONE) {
                uint32_t reg = newreg(c);
                emit(c, VG_OPC_Spec, (uint32_t)si, reg, 0);
                if (c->depth) return reg;
                *spec_slot(c, si) = reg;
            }
            return *spec_slot(c, si);
        }
        if (e->ref > VG_FN_SECONDS_BETWEEN) return pure(c, e);
        if (e->ref == VG_FN_GEO_KM) {
            uint32_t base = newreg(c);
            for (int i = 1; i < 4; i++) newreg(c);
            for (int i = 0; i < 4; i++) emit(c, VG_OPC_Copy, expr(c, e->args[i]), base + (uint32_t)i, 0);
            uint32_t out = newreg(c);
            emit(c, VG_OPC_GeoKm, base, 0, out);
            return out;
        }
        /* seconds_between */
        return op2(c, VG_OPC_SecsBetween, expr(c, e->args[0]), expr(c, e->args[1]));
    default:
        return konst(c, vg_null());
    }
}

static int by_group_of(comp_t *c, vg_ast_t *by);

/* The index of expression e's canonical text in `map`, whose texts are texts[0 .. *n)
 * (grown with *cap); registered on first use, with *added set to 1. -1 on out of
 * memory. */
static int intern_expr(comp_t *c, vg_ast_t *e, vg_strmap_t *map, const char ***texts,
                       int *cap, int *n, int *added) {
    cbuf_t kb = {0};
    *added = 0;
    print_expr(c, &kb, e, 0);
    if (c->nomem) { free(kb.p); return -1; }
    int k = vg_strmap_get(map, kb.p, (uint32_t)kb.n);
    if (k < 0) {
        k = *n;
        char *kt = grow(c, (void **)texts, cap, k + 1, sizeof(char *)) < 0
                       ? NULL : keep(c, kb.p, kb.n);
        if (!kt) { free(kb.p); return -1; }
        (*texts)[k] = kt;
        (*n)++;
        *added = 1;
        if (vg_strmap_put(map, kt, (uint32_t)kb.n, k) == -2) c->nomem = 1;
    }
    free(kb.p);
    return k;
}

/* The label memo slot of a label sum's x expression (registered on first use: sums of
 * the same x share it), or -1. */
static int memo_slot_of(comp_t *c, vg_ast_t *xe) {
    int added;
    return intern_expr(c, xe, &c->mxs, &c->p->memo_xtext, &c->mx_cap, &c->p->nmemo_x, &added);
}

/* Finds or registers the ext value of an anomaly.<signal> or label aggregate node;
 * returns EXT_TAG | j, or -1. */
static int ext_for(comp_t *c, vg_ast_t *e, const char *text, size_t n) {
    vg_program_t *p = c->p;
    int j = p->next;
    if (grow(c, (void **)&p->ext, &c->ext_cap, j + 1, sizeof(vg_ext_t)) < 0 ||
        grow(c, (void **)&c->ext_call, &c->ecall_cap, j + 1, sizeof(vg_ast_t *)) < 0 ||
        grow(c, (void **)&c->ext_reg, &c->ereg_cap, j + 1, sizeof(uint32_t)) < 0)
        return -1;
    char *t = keep(c, text, n);
    if (!t) return -1;
    vg_ext_t *x = &p->ext[j];
    memset(x, 0, sizeof *x);
    x->text = t;
    x->by_group = -1;
    x->memo_slot = -1;
    if (e->kind == VG_AST_ANOMALY) {
        x->kind = VG_EXT_ANOMALY;
        x->signal = e->ref;
        p->uses_anomaly = 1;
    } else {
        static const vg_ext_kind_t kinds[] = {VG_EXT_FRAUD_COUNT, VG_EXT_LABELLED_COUNT,
                                              VG_EXT_FRAUD_SUM, VG_EXT_LABELLED_SUM};
        x->kind = kinds[e->ref - VG_FN_FRAUD_COUNT];
        int is_sum = x->kind == VG_EXT_FRAUD_SUM || x->kind == VG_EXT_LABELLED_SUM;
        x->window_ms = e->args[is_sum]->v.ms;
        if (is_sum && (x->memo_slot = memo_slot_of(c, e->args[0])) < 0) return -1;
        if (x->window_ms > p->max_label_window) p->max_label_window = x->window_ms;
        if (e->by && (x->by_group = by_group_of(c, e->by)) < 0) return -1;
        p->uses_labels = 1;
    }
    c->ext_call[j] = e;
    c->ext_reg[j] = NONE;
    p->next++;
    if (vg_strmap_put(&c->exts, t, (uint32_t)n, j) == -2) c->nomem = 1;
    return (int)(EXT_TAG | (uint32_t)j);
}

/* The group of a `by` key expression (registered on first use), or -1. */
static int by_group_of(comp_t *c, vg_ast_t *by) {
    int added;
    int g = intern_expr(c, by, &c->bys, &c->p->bytext, &c->by_cap, &c->p->nby, &added);
    if (g >= 0 && added) {
        if (grow(c, (void **)&c->by_expr, &c->byx_cap, g + 1, sizeof(vg_ast_t *)) < 0)
            return -1;
        c->by_expr[g] = by;
    }
    return g;
}

/* Finds or registers the spec of an aggregate/session/prev/seen call (or the ext value
 * of an anomaly.<signal> or label aggregate: EXT_TAG | j). */
static int spec_for(comp_t *c, vg_ast_t *call) {
    cbuf_t b = {0};
    print_expr(c, &b, call, 0);
    if (c->nomem) { free(b.p); return -1; }
    if (is_ext_node(call)) {
        int j = vg_strmap_get(&c->exts, b.p, (uint32_t)b.n);
        if (j < 0) j = ext_for(c, call, b.p, b.n);
        else j = (int)(EXT_TAG | (uint32_t)j);
        free(b.p);
        return j;
    }
    int si = vg_strmap_get(&c->specs, b.p, (uint32_t)b.n);
    if (si >= 0) { free(b.p); return si; }
    vg_program_t *p = c->p;
    si = p->nspecs;
    if (grow(c, (void **)&p->specs, &c->spec_cap, si + 1, sizeof(vg_spec_t)) < 0 ||
        grow(c, (void **)&c->spec_call, &c->call_cap, si + 1, sizeof(vg_ast_t *)) < 0 ||
        grow(c, (void **)&c->spec_reg, &c->reg_cap, si + 1, sizeof(uint32_t)) < 0) {
        free(b.p);
        return -1;
    }
    char *text = keep(c, b.p, b.n);
    free(b.p);
    if (!text) return -1;
    vg_spec_t *s = &p->specs[si];
    memset(s, 0, sizeof *s);
    s->kind = (vg_spec_kind_t)call->ref;
    s->text = text;
    s->by_group = -1;
    int fn = call->ref;
    int has_x = !(fn == VG_FN_COUNT || fn == VG_FN_SESSION_COUNT || fn == VG_FN_SESSION_DURATION);
    s->has_x = (uint8_t)has_x;
    s->has_where = call->where != NULL;
    if (has_x) {
        int t = call->args[0]->type;
        int numeric = fn != VG_FN_DISTINCT && fn != VG_FN_SEEN && fn != VG_FN_PREV;
        s->x_type = (uint8_t)(numeric ? VG_T_NUM : t == VG_CT_ANY ? VG_T_NULL : t);
    }
    if (fn != VG_FN_PREV) s->window_ms = call->args[call->nargs - 1]->v.ms;
    if ((fn <= VG_FN_DISTINCT || fn == VG_FN_SEEN) && s->window_ms > p->max_window)
        p->max_window = s->window_ms;
    if (call->by) {
        int g = by_group_of(c, call->by);
        if (g < 0) return -1;
        s->by_group = g;
    }
    c->spec_call[si] = call;
    c->spec_reg[si] = NONE;
    p->nspecs++;
    if (vg_strmap_put(&c->specs, text, (uint32_t)strlen(text), si) == -2) c->nomem = 1;
    return si;
}

/* ---- rules ------------------------------------------------------------------------ */

static int has_runtime_input(const vg_ast_t *e) {
    if (!e) return 0;
    switch (e->kind) {
    case VG_AST_FIELD: case VG_AST_NAME: case VG_AST_ANOMALY: case VG_AST_LISTREF: return 1;
    case VG_AST_CALL:
        if (e->is_spec) return 1;
        for (int i = 0; i < e->nargs; i++) if (has_runtime_input(e->args[i])) return 1;
        return 0;
    default:
        return has_runtime_input(e->a) || has_runtime_input(e->b);
    }
}

static uint64_t hash64(const char *p, size_t n) {
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

typedef struct refs { vg_ref_t *v; int n, cap; } refs_t;

/* Appends a reference; a condition's `values` list each reference once (unique), while
 * a message template keeps every placeholder in order (each occurrence renders). */
static void add_ref_u(comp_t *c, refs_t *r, int kind, uint32_t index, const char *text,
                      size_t len, int unique) {
    if (unique && kind != VG_REF_TEXT)
        for (int i = 0; i < r->n; i++)
            if (r->v[i].kind == kind && r->v[i].len == len && memcmp(r->v[i].text, text, len) == 0)
                return;
    if (grow(c, (void **)&r->v, &r->cap, r->n + 1, sizeof(vg_ref_t)) < 0) return;
    char *t = keep(c, text, len);
    if (!t) return;
    r->v[r->n++] = (vg_ref_t){(uint8_t)kind, index, t, (uint32_t)len};
}

static void add_ref(comp_t *c, refs_t *r, int kind, uint32_t index, const char *text,
                    size_t len) {
    add_ref_u(c, r, kind, index, text, len, 1);
}

/* The features, fields and inline aggregates a condition reads, first use first. */
static void value_refs(comp_t *c, refs_t *r, vg_ast_t *e) {
    if (!e || c->nomem) return;
    switch (e->kind) {
    case VG_AST_NAME:
        add_ref(c, r, VG_REF_FEATURE, (uint32_t)e->ref, e->str.p, e->str.len);
        return;
    case VG_AST_FIELD: {
        char t[VG_RULES_MAX_NAME + 8];
        int n = snprintf(t, sizeof t, "tx.%.*s", (int)e->str.len, e->str.p);
        add_ref(c, r, e->ref >= 0 ? VG_REF_FIELD : VG_REF_EXTRA,
                (uint32_t)(e->ref >= 0 ? e->ref : 0), t, (size_t)n);
        return;
    }
    case VG_AST_ANOMALY:
    case VG_AST_CALL:
        if (e->kind == VG_AST_ANOMALY || e->is_spec) {
            int si = spec_for(c, e);
            if (si >= 0) add_ref(c, r, VG_REF_SPEC, (uint32_t)si, spec_text(c, si),
                                 strlen(spec_text(c, si)));
            return;
        }
        for (int i = 0; i < e->nargs; i++) value_refs(c, r, e->args[i]);
        return;
    default:
        value_refs(c, r, e->a);
        if (!(e->kind == VG_AST_BINARY && e->op == VG_OP_IN)) value_refs(c, r, e->b);
        return;
    }
}

/* The message template: text runs and {placeholders}. */
static void message_refs(comp_t *c, refs_t *r, vg_str_t m, const vg_strmap_t *fmap) {
    uint32_t i = 0, lit = 0;
    while (i < m.len) {
        if (m.p[i] != '{') { i++; continue; }
        uint32_t j = i + 1;
        while (j < m.len && m.p[j] != '}' && m.p[j] != '{') j++;
        if (j >= m.len || m.p[j] != '}') { i = j; continue; }
        const char *name = m.p + i + 1;
        uint32_t len = j - i - 1;
        int kind = -1;
        uint32_t idx = 0;
        int fi = vg_strmap_get(fmap, name, len);
        if (fi >= 0) { kind = VG_REF_FEATURE; idx = (uint32_t)fi; }
        else if (len > 3 && memcmp(name, "tx.", 3) == 0) {
            kind = VG_REF_EXTRA;
#define VG_FIELD_IDX(nm, text, type)                                                     \
            if (len - 3 == sizeof(text) - 1 && memcmp(name + 3, text, len - 3) == 0) {    \
                kind = VG_REF_FIELD;                                                       \
                idx = VG_FIELD_##nm;                                                       \
            }
            VG_FIELD_LIST(VG_FIELD_IDX)
#undef VG_FIELD_IDX
        }
        if (kind < 0) { i = j; continue; }
        if (i > lit) add_ref_u(c, r, VG_REF_TEXT, 0, m.p + lit, i - lit, 0);
        if (kind == VG_REF_EXTRA) add_ref_u(c, r, kind, 0, name + 3, len - 3, 0);
        else add_ref_u(c, r, kind, idx, name, len, 0);
        i = lit = j + 1;
    }
    if (m.len > lit) add_ref_u(c, r, VG_REF_TEXT, 0, m.p + lit, m.len - lit, 0);
}

static int word_index(vg_str_t w, const char *const *words, int dflt) {
    for (int i = 0; words[i]; i++)
        if (strlen(words[i]) == w.len && memcmp(words[i], w.p, w.len) == 0) return i;
    return dflt;
}

/* Counts the distinct specs an expression needs, through features. */
static void count_state(const vg_checked_t *ck, const vg_ast_t *e, uint8_t *fseen,
                        comp_t *c, uint8_t *sseen, int sscap, int *n) {
    if (!e || c->nomem) return;
    if (e->kind == VG_AST_NAME) {
        if (e->ref < 0 || fseen[e->ref]) return;
        fseen[e->ref] = 1;
        count_state(ck, ck->features[e->ref]->expr, fseen, c, sseen, sscap, n);
        return;
    }
    if (e->kind == VG_AST_CALL && e->is_spec) {
        int si = spec_for(c, (vg_ast_t *)e);
        if (si >= 0 && si < sscap && !sseen[si]) { sseen[si] = 1; (*n)++; }
        return;
    }
    count_state(ck, e->a, fseen, c, sseen, sscap, n);
    count_state(ck, e->b, fseen, c, sseen, sscap, n);
    for (int i = 0; i < e->nargs; i++) count_state(ck, e->args[i], fseen, c, sseen, sscap, n);
}

/* Phase 3: every rule that is not disabled, in declaration order. */
static void compile_rules(comp_t *c, const vg_checked_t *ck) {
    static const char *const sev[] = {"low", "medium", "high", "critical", NULL};
    static const char *const act[] = {"allow", "review", "block", "alert", NULL};
    static const char *const mode[] = {"active", "shadow", "disabled", NULL};
    vg_program_t *p = c->p;
    vg_strmap_t fmap;
    vg_strmap_init(&fmap);
    for (int i = 0; i < ck->nfeatures; i++)
        if (vg_strmap_put(&fmap, ck->features[i]->name.p, ck->features[i]->name.len, i) == -2)
            c->nomem = 1;
    p->rules = calloc((size_t)ck->nrules + 1, sizeof(vg_rule_info_t));
    p->rule_init = calloc((size_t)ck->nrules + 1, sizeof(vg_rule_result_t));
    if (!p->rules || !p->rule_init) { c->nomem = 1; goto out; }
    for (int ri = 0; ri < ck->nrules && !c->nomem && !c->toobig; ri++) {
        vg_ast_decl_t *d = ck->rules[ri];
        vg_rule_info_t *info = &p->rules[ri];
        info->name = keep(c, d->name.p, d->name.len);
        info->file = keep(c, d->file, strlen(d->file));
        const char *base = strrchr(d->file, '/');
        base = base ? base + 1 : d->file;
        size_t bl = strlen(base);
        if (bl > 4 && strcmp(base + bl - 4, ".vrl") == 0) bl -= 4;
        info->module = keep(c, base, bl);
        info->version = 1;
        info->line = d->line;
        info->severity = VG_SEV_MEDIUM;
        info->id = hash64(d->name.p, d->name.len);
        vg_ast_t *when = NULL, *score = NULL;
        for (int k = 0; k < d->nclauses; k++) {
            const vg_ast_clause_t *cl = &d->clauses[k];
            switch (cl->kind) {
            case VG_CL_SEVERITY: info->severity = (uint8_t)word_index(cl->word, sev, 1); break;
            case VG_CL_ACTION: info->action = (uint8_t)word_index(cl->word, act, 0); break;
            case VG_CL_MODE: info->mode = (uint8_t)word_index(cl->word, mode, 0); break;
            case VG_CL_WHEN: when = cl->expr; break;
            case VG_CL_SCORE: score = cl->expr; break;
            case VG_CL_SUPPRESS: info->suppress_ms = cl->ms; break;
            case VG_CL_MESSAGE: {
                refs_t m = {0};
                info->has_message = 1;
                message_refs(c, &m, cl->word, &fmap);
                vg_ref_t *mv = vg_arena_alloc(&p->mem, sizeof(vg_ref_t) * (size_t)(m.n + 1));
                if (!mv) c->nomem = 1;
                else if (m.n) memcpy(mv, m.v, sizeof(vg_ref_t) * (size_t)m.n);
                info->msg = mv;
                info->nmsg = m.n;
                free(m.v);
                break;
            }
            }
        }
        if (!when || !score) continue;   /* the checker reported it */
        if (info->mode == VG_MODE_DISABLED) continue;   /* not evaluated, its state not kept */
        refs_t vr = {0};
        value_refs(c, &vr, when);
        vg_ref_t *vv = vg_arena_alloc(&p->mem, sizeof(vg_ref_t) * (size_t)(vr.n + 1));
        if (!vv) c->nomem = 1;
        else if (vr.n) memcpy(vv, vr.v, sizeof(vg_ref_t) * (size_t)vr.n);
        info->values = vv;
        info->nvalues = vr.n;
        free(vr.v);
        /* state it needs */
        uint8_t *fseen = calloc((size_t)ck->nfeatures + 1, 1);
        int sscap = p->nspecs + 64;   /* room for aggregates written inline in score */
        uint8_t *sseen = calloc((size_t)sscap + 1, 1);
        if (fseen && sseen) {
            int n = 0;
            count_state(ck, when, fseen, c, sseen, sscap, &n);
            count_state(ck, score, fseen, c, sseen, sscap, &n);
            info->nstate = n;
        }
        free(fseen);
        free(sseen);
        /* code: when, Rule (skip the score when not fired), score */
        uint32_t start = c->n;
        uint32_t cond;
        if (!has_runtime_input(when)) {
            c->phase = 2;   /* fold it whole */
            cond = expr(c, when);
            c->phase = 3;
            if (is_const(cond) && !(const_val(c, cond).type == VG_T_BOOL && const_val(c, cond).u.b))
                vg_diags_add(c->d, 0, d->file, d->name_line, d->name_col,
                             "rule '%.*s' can never fire: its condition is always %s",
                             (int)d->name.len, d->name.p,
                             const_val(c, cond).type == VG_T_NULL ? "null" : "false");
        } else {
            cond = expr(c, when);
        }
        uint32_t at = c->n;
        emit(c, VG_OPC_Rule, cond, (uint32_t)ri, 0);
        c->depth++;
        uint32_t sc = expr(c, score);
        if (is_const(sc)) {
            vg_value_t v = const_val(c, sc);
            double x = v.type == VG_T_NUM ? v.u.n : 0;
            p->rule_init[ri].score = x < 0 ? 0 : x > 100 ? 100 : x;
        } else {
            emit(c, VG_OPC_RuleScore, sc, (uint32_t)ri, 0);
        }
        c->depth--;
        if (!c->nomem) c->code[at].p3 = c->n;
        info->ninstr = c->n - start;
        info->cost = cost(when) + cost(score) + 2;
    }
out:
    vg_strmap_deinit(&fmap);
}

static void start_phase(comp_t *c) {
    c->code = NULL;
    c->n = c->cap = 0;
    c->nreg = 0;
    for (int i = 0; i < VG_FIELD__COUNT; i++) c->field_reg[i] = NONE;
    vg_strmap_deinit(&c->extra_reg);
}

/* Relocates the phase's registers and stores its code. */
static void end_phase(comp_t *c, vg_ins_t **code, uint32_t *n) {
    emit(c, VG_OPC_Halt, 0, 0, 0);
    *code = c->code;
    *n = c->n;
    if (c->nreg > c->p->nregs) c->p->nregs = c->nreg;
    c->code = NULL;
}

/* Marks the constants the code reads (folding leaves intermediate ones unused). */
static void mark_consts(const vg_ins_t *code, uint32_t n, uint32_t *remap) {
    for (uint32_t i = 0; i < n; i++) {
        int m = vg_vm_regmask((int)code[i].op);
        const uint32_t ps[3] = {code[i].p1, code[i].p2, code[i].p3};
        for (int k = 0; k < 3; k++)
            if ((m & (1 << k)) && (ps[k] & CONST_TAG)) remap[ps[k] & ~CONST_TAG] = 1;
    }
}

/* Keeps only the used constants; remap[old] becomes the new index. */
static void compact_consts(vg_program_t *p, uint32_t *remap) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->nconst; i++) {
        if (!remap[i]) continue;
        p->consts[k] = p->consts[i];
        remap[i] = k++;
    }
    p->nconst = k;
}

/* Ext value operands (EXT_TAG | j) -> nspecs + j: Spec and OutSpec P1, InKey and InX P2. */
static void relocate_ext(const vg_program_t *p, vg_ins_t *code, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        vg_ins_t *x = &code[i];
        if ((x->op == VG_OPC_Spec || x->op == VG_OPC_OutSpec) && (x->p1 & EXT_TAG))
            x->p1 = (uint32_t)p->nspecs + (x->p1 & ~EXT_TAG);
        if ((x->op == VG_OPC_InKey || x->op == VG_OPC_InX) && (x->p2 & EXT_TAG))
            x->p2 = (uint32_t)p->nspecs + (x->p2 & ~EXT_TAG);
    }
}

static void relocate(vg_program_t *p, vg_ins_t *code, uint32_t n, const uint32_t *remap) {
    for (uint32_t i = 0; i < n; i++) {
        int m = vg_vm_regmask((int)code[i].op);
        uint32_t *ps[3] = {&code[i].p1, &code[i].p2, &code[i].p3};
        for (int k = 0; k < 3; k++)
            if (m & (1 << k))
                *ps[k] = (*ps[k] & CONST_TAG) ? remap[*ps[k] & ~CONST_TAG] : *ps[k] + p->nconst;
    }
}

vg_program_t *vg_compile(const vg_checked_t *ck, vg_diags_t *diags) {
    comp_t c;
    memset(&c, 0, sizeof c);
    c.d = diags;
    vg_program_t *p = calloc(1, sizeof *p);
    if (!p) goto nomem;
    atomic_init(&p->refs, 1);
    vg_arena_init(&p->mem);
    c.p = p;
    int nf = ck->nfeatures;
    p->nfeatures = nf;
    p->nrules = ck->nrules;
    p->fnames = calloc((size_t)nf + 1, sizeof(char *));
    p->ftypes = calloc((size_t)nf + 1, 1);
    c.freg = calloc((size_t)nf + 1, sizeof(uint32_t));
    if (!p->fnames || !p->ftypes || !c.freg) goto nomem;
    for (int i = 0; i < nf; i++) {
        const vg_ast_decl_t *d = ck->features[i];
        if (!(p->fnames[i] = keep(&c, d->name.p, d->name.len))) goto nomem;
        p->ftypes[i] = d->expr->type;
    }
    /* phase 2: the features, dependencies first (this also registers the specs) */
    start_phase(&c);
    c.phase = 2;
    c.features = ck->features;
    for (int k = 0; k < nf; k++) {
        int i = ck->order[k];
        vg_ast_t *fe = ck->features[i]->expr;
        c.freg[i] = NONE;
        if ((fe->kind == VG_AST_CALL && fe->is_spec) || fe->kind == VG_AST_ANOMALY) {
            int si = spec_for(&c, fe);
            if (si >= 0 && *spec_slot(&c, si) == NONE) {
                emit(&c, VG_OPC_OutSpec, (uint32_t)si, (uint32_t)i, 0);
                continue;
            }
        }
        c.freg[i] = expr(&c, fe);
        emit(&c, VG_OPC_Out, c.freg[i], (uint32_t)i, 0);
    }
    end_phase(&c, &p->code2, &p->n2);
    /* phase 3: the rules (may register more specs: aggregates written inline) */
    start_phase(&c);
    c.phase = 3;
    c.featreg = malloc(sizeof(uint32_t) * ((size_t)nf + 1));
    if (!c.featreg) goto nomem;
    for (int i = 0; i < nf; i++) c.featreg[i] = NONE;
    for (int i = 0; i < p->nspecs; i++) c.spec_reg[i] = NONE;
    for (int j = 0; j < p->next; j++) c.ext_reg[j] = NONE;
    p->named = calloc((size_t)ck->nlists + 1, sizeof(char *));
    if (!p->named) goto nomem;
    for (int i = 0; i < ck->nlists; i++) {
        vg_ast_decl_t *d = ck->lists[i];
        if (!(p->named[i] = keep(&c, d->name.p, d->name.len))) goto nomem;
        if (vg_strmap_put(&c.named_map, p->named[i], d->name.len, i) == -2) goto nomem;
        p->nnamed++;
    }
    compile_rules(&c, ck);
    end_phase(&c, &p->code3, &p->n3);
    c.phase = 1;
    /* phase 1: the inputs of each spec; they may read the event's anomaly values (ext),
     * loaded again in this phase's own registers */
    start_phase(&c);
    for (int i = 0; i < p->nspecs; i++) c.spec_reg[i] = NONE;
    for (int j = 0; j < p->next; j++) c.ext_reg[j] = NONE;
    uint32_t *greg = calloc((size_t)p->nby + 1, sizeof(uint32_t));
    if (!greg) goto nomem;
    for (int g = 0; g < p->nby; g++) greg[g] = expr(&c, c.by_expr[g]);
    for (int s = 0; s < p->nspecs; s++) {
        vg_ast_t *call = c.spec_call[s];
        if (p->specs[s].has_x) {
            uint32_t x = expr(&c, call->args[0]);
            if (p->specs[s].x_type == VG_T_NUM && call->args[0]->type != VG_T_NUM)
                x = op1(&c, VG_OPC_CastNum, x);
            emit(&c, VG_OPC_InX, x, (uint32_t)s, 0);
        }
        if (call->where) emit(&c, VG_OPC_InKeep, expr(&c, call->where), (uint32_t)s, 0);
        if (call->by) emit(&c, VG_OPC_InKey, greg[p->specs[s].by_group], (uint32_t)s, 0);
    }
    for (int j = 0; j < p->next; j++) {
        if (p->ext[j].by_group >= 0)
            emit(&c, VG_OPC_InKey, greg[p->ext[j].by_group], EXT_TAG | (uint32_t)j, 0);
        if (p->ext[j].memo_slot >= 0) {   /* a label sum's x, kept in the memo */
            vg_ast_t *xe = c.ext_call[j]->args[0];
            uint32_t x = expr(&c, xe);
            if (xe->type != VG_T_NUM) x = op1(&c, VG_OPC_CastNum, x);
            emit(&c, VG_OPC_InX, x, EXT_TAG | (uint32_t)j, 0);
        }
    }
    free(greg);
    end_phase(&c, &p->code1, &p->n1);
    p->in_init = calloc((size_t)p->nspecs + (size_t)p->next + 1, sizeof(vg_spec_input_t));
    if (!p->in_init) goto nomem;
    for (int s = 0; s < p->nspecs + p->next; s++) {
        p->in_init[s].x = vg_null();
        p->in_init[s].key = vg_null();
        p->in_init[s].keep = s >= p->nspecs || !p->specs[s].has_where;
    }
    relocate_ext(p, p->code1, p->n1);
    relocate_ext(p, p->code2, p->n2);
    relocate_ext(p, p->code3, p->n3);
    for (int i = 0; i < p->nrules && p->rules; i++) {
        vg_ref_t *v = (vg_ref_t *)p->rules[i].values;
        for (int k = 0; k < p->rules[i].nvalues; k++)
            if (v[k].kind == VG_REF_SPEC && (v[k].index & EXT_TAG))
                v[k].index = (uint32_t)p->nspecs + (v[k].index & ~EXT_TAG);
    }
    if (c.nomem) goto nomem;
    if (c.toobig) {
        vg_diags_add(diags, 1, ck->nfeatures ? ck->features[0]->file : "", 1, 1,
                     "ruleset too large (more than %u registers)", MAX_REGS);
        goto fail;
    }
    uint32_t *remap = calloc((size_t)p->nconst + 1, sizeof(uint32_t));
    if (!remap) goto nomem;
    mark_consts(p->code1, p->n1, remap);
    mark_consts(p->code2, p->n2, remap);
    mark_consts(p->code3, p->n3, remap);
    compact_consts(p, remap);
    p->nregs += p->nconst;
    relocate(p, p->code1, p->n1, remap);
    relocate(p, p->code2, p->n2, remap);
    relocate(p, p->code3, p->n3, remap);
    free(remap);
    goto done;
nomem:
    vg_diags_add(diags, 1, "", 1, 1, "out of memory while compiling");
fail:
    free(c.code);
    vg_compile_free(p);
    p = NULL;
done:
    free(c.freg);
    free(c.featreg);
    vg_strmap_deinit(&c.named_map);
    vg_strmap_deinit(&c.zone_map);
    free(c.spec_call);
    free(c.spec_reg);
    free(c.ext_call);
    free(c.ext_reg);
    vg_strmap_deinit(&c.exts);
    vg_strmap_deinit(&c.mxs);
    free(c.by_expr);
    vg_strmap_deinit(&c.extra_reg);
    vg_strmap_deinit(&c.name_idx);
    vg_strmap_deinit(&c.consts);
    vg_strmap_deinit(&c.specs);
    vg_strmap_deinit(&c.bys);
    return p;
}

void vg_compile_free(vg_program_t *p) {
    if (!p) return;
    free(p->src);
    free(p->specs);
    free(p->ext);
    free(p->memo_xtext);
    free(p->bytext);
    free(p->fnames);
    free(p->ftypes);
    free(p->consts);
    free(p->names);
    free(p->lists);
    free(p->in_init);
    free(p->code1);
    free(p->code2);
    free(p->code3);
    free(p->rules);
    free(p->rule_init);
    free(p->named);
    for (uint32_t i = 0; i < p->nregex; i++) pcre2_code_free(p->regex[i]);   /* NULL: none */
    free(p->regex);
    for (uint32_t i = 0; i < p->nzones; i++) vg_tz_free(&p->zones[i]);
    free(p->zones);
    vg_arena_deinit(&p->mem);
    free(p);
}
