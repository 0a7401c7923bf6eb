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

#include "rules/errors.h"
#include "rules/strmap.h"

#define CONST_TAG 0x80000000u
#define MAX_REGS (1u << 22)
#define NONE 0xFFFFFFFFu

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
    int spec_cap, call_cap, reg_cap, by_cap, byx_cap, const_cap, name_cap, list_cap;
    vg_ast_t **by_expr;                   /* per group: the key expression */
    uint32_t *freg;                       /* per feature: its register, NONE until needed */
    vg_ast_decl_t *const *features;
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
    if (is_const(a) && !c->nomem) {
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
                c->field_reg[e->ref] = newreg(c);
                emit(c, VG_OPC_Field, (uint32_t)e->ref, c->field_reg[e->ref], 0);
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
            if (vg_strmap_put(&c->extra_reg, nm->p, nm->len, (int)reg) == -2) c->nomem = 1;
            emit(c, VG_OPC_Extra, (uint32_t)ni, reg, 0);
            return reg;
        }
    case VG_AST_NAME:
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
        case VG_OP_OR: return op2(c, VG_OPC_Or, expr(c, e->a), expr(c, e->b));
        case VG_OP_AND: return op2(c, VG_OPC_And, expr(c, e->a), expr(c, e->b));
        case VG_OP_EQ: return op2(c, VG_OPC_Eq, expr(c, e->a), expr(c, e->b));
        case VG_OP_NE: return op2(c, VG_OPC_Ne, expr(c, e->a), expr(c, e->b));
        case VG_OP_LT: return op2(c, VG_OPC_Lt, expr(c, e->a), expr(c, e->b));
        case VG_OP_LE: return op2(c, VG_OPC_Le, expr(c, e->a), expr(c, e->b));
        case VG_OP_GT: return op2(c, VG_OPC_Gt, expr(c, e->a), expr(c, e->b));
        case VG_OP_GE: return op2(c, VG_OPC_Ge, expr(c, e->a), expr(c, e->b));
        case VG_OP_IN: {
            uint32_t a = expr(c, e->a);
            vg_ast_t *s = e->b;   /* an ARRAY: the checker keeps list() out of features */
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
    case VG_AST_CALL:
        if (e->is_spec) {
            int si = spec_for(c, e);
            if (si < 0) return CONST_TAG;
            if (c->spec_reg[si] == NONE) {
                c->spec_reg[si] = newreg(c);
                emit(c, VG_OPC_Spec, (uint32_t)si, c->spec_reg[si], 0);
            }
            return c->spec_reg[si];
        }
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

/* Finds or registers the spec of an aggregate/session/prev/seen call. */
static int spec_for(comp_t *c, vg_ast_t *call) {
    cbuf_t b = {0};
    print_expr(c, &b, call, 0);
    if (c->nomem) { free(b.p); return -1; }
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
        cbuf_t kb = {0};
        print_expr(c, &kb, call->by, 0);
        if (c->nomem) { free(kb.p); return -1; }
        int g = vg_strmap_get(&c->bys, kb.p, (uint32_t)kb.n);
        if (g < 0) {
            g = p->nby;
            if (grow(c, (void **)&p->bytext, &c->by_cap, g + 1, sizeof(char *)) < 0 ||
                grow(c, (void **)&c->by_expr, &c->byx_cap, g + 1, sizeof(vg_ast_t *)) < 0) {
                free(kb.p);
                return -1;
            }
            char *kt = keep(c, kb.p, kb.n);
            if (!kt) { free(kb.p); return -1; }
            p->bytext[g] = kt;
            c->by_expr[g] = call->by;
            p->nby++;
            if (vg_strmap_put(&c->bys, kt, (uint32_t)kb.n, g) == -2) c->nomem = 1;
        }
        free(kb.p);
        s->by_group = g;
    }
    c->spec_call[si] = call;
    c->spec_reg[si] = NONE;
    p->nspecs++;
    if (vg_strmap_put(&c->specs, text, (uint32_t)strlen(text), si) == -2) c->nomem = 1;
    return si;
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
    c.features = ck->features;
    for (int k = 0; k < nf; k++) {
        int i = ck->order[k];
        vg_ast_t *fe = ck->features[i]->expr;
        c.freg[i] = NONE;
        if (fe->kind == VG_AST_CALL && fe->is_spec) {
            int si = spec_for(&c, fe);
            if (si >= 0 && c.spec_reg[si] == NONE) {
                emit(&c, VG_OPC_OutSpec, (uint32_t)si, (uint32_t)i, 0);
                continue;
            }
        }
        c.freg[i] = expr(&c, fe);
        emit(&c, VG_OPC_Out, c.freg[i], (uint32_t)i, 0);
    }
    end_phase(&c, &p->code2, &p->n2);
    /* phase 1: the inputs of each spec */
    start_phase(&c);
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
    free(greg);
    end_phase(&c, &p->code1, &p->n1);
    p->in_init = calloc((size_t)p->nspecs + 1, sizeof(vg_spec_input_t));
    if (!p->in_init) goto nomem;
    for (int s = 0; s < p->nspecs; s++) {
        p->in_init[s].x = vg_null();
        p->in_init[s].key = vg_null();
        p->in_init[s].keep = !p->specs[s].has_where;
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
    compact_consts(p, remap);
    p->nregs += p->nconst;
    relocate(p, p->code1, p->n1, remap);
    relocate(p, p->code2, p->n2, remap);
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
    free(c.spec_call);
    free(c.spec_reg);
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
    free(p->specs);
    free(p->bytext);
    free(p->fnames);
    free(p->ftypes);
    free(p->consts);
    free(p->names);
    free(p->lists);
    free(p->in_init);
    free(p->code1);
    free(p->code2);
    vg_arena_deinit(&p->mem);
    free(p);
}
