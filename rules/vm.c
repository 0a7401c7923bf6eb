/* vm.c - the rules bytecode interpreter (see vm.h and opcodes.h).
 *
 * Dispatch is threaded (computed goto) with GCC and Clang, a switch elsewhere. Each
 * handler is short and branch-light: type checks become flags that select between the
 * result and null, so that the common all-numbers path has no unpredictable branch.
 */
#include "rules/vm.h"

#include <math.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const char *const op_names[] = {
#define VG_OPN(name, regs, syn) #name,
    VG_OPCODE_LIST(VG_OPN)
#undef VG_OPN
};
static const char *const op_syn[] = {
#define VG_OPS(name, regs, syn) syn,
    VG_OPCODE_LIST(VG_OPS)
#undef VG_OPS
};
static const unsigned char op_regs[] = {
#define VG_OPR(name, regs, syn) regs,
    VG_OPCODE_LIST(VG_OPR)
#undef VG_OPR
};

const char *vg_vm_opname(int op) { return op >= 0 && op < VG_OPC__COUNT ? op_names[op] : "?"; }
const char *vg_vm_synopsis(int op) { return op >= 0 && op < VG_OPC__COUNT ? op_syn[op] : ""; }
int vg_vm_regmask(int op) { return op >= 0 && op < VG_OPC__COUNT ? op_regs[op] : 0; }

double vg_vm_geo_km(double lat1, double lon1, double lat2, double lon2) {
    const double rad = 3.14159265358979323846 / 180.0;
    double p1 = lat1 * rad, p2 = lat2 * rad;
    double dp = p2 - p1, dl = (lon2 - lon1) * rad;
    double s1 = sin(dp * 0.5), s2 = sin(dl * 0.5);
    double h = s1 * s1 + cos(p1) * cos(p2) * s2 * s2;
    if (h > 1.0) h = 1.0;
    return 2.0 * 6371.0 * asin(sqrt(h));
}

/* Results are written with one 16-byte store (type word, payload), so that the next
 * instruction's 16-byte load of the value is forwarded from that store instead of
 * stalling on two partial ones. */
static inline void put(vg_value_t *d, uint64_t type, uint64_t bits) {
#if defined(__SSE2__)
    _mm_storeu_si128((__m128i *)(void *)d, _mm_set_epi64x((long long)bits, (long long)type));
#else
    uint64_t w[2] = {type, bits};
    memcpy(d, w, sizeof w);
#endif
}

/* d = x when ok (and x finite), else null */
static inline void num_to(vg_value_t *d, double x, int ok) {
    uint64_t bits;
    ok &= isfinite(x) != 0;
    memcpy(&bits, &x, 8);
    put(d, ok ? VG_T_NUM : VG_T_NULL, ok ? bits : 0);
}

static inline void ms_to(vg_value_t *d, int64_t ms, int type, int ok) {
    put(d, (uint64_t)(ok ? type : VG_T_NULL), ok ? (uint64_t)ms : 0);
}

static inline void bool_to(vg_value_t *d, int b, int ok) {
    put(d, ok ? VG_T_BOOL : VG_T_NULL, (uint64_t)(unsigned)b);  /* u.b is the low word */
}

/* Three-way comparison of a and b; *ok = 0 when either is null, their types differ or
 * the type has no order (JSON). */
static inline int cmpv(const vg_value_t *a, const vg_value_t *b, int *ok) {
    if (a->type == VG_T_NUM && b->type == VG_T_NUM) {
        *ok = 1;
        return (a->u.n > b->u.n) - (a->u.n < b->u.n);
    }
    *ok = a->type == b->type && a->type != VG_T_NULL && a->type != VG_T_JSON;
    if (!*ok) return 0;
    switch (a->type) {
    case VG_T_BOOL: return a->u.b - b->u.b;
    case VG_T_STR: {
        uint32_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return (a->u.s.len > b->u.s.len) - (a->u.s.len < b->u.s.len);
    }
    default: /* time, duration */
        return (a->u.ms > b->u.ms) - (a->u.ms < b->u.ms);
    }
}

static inline int is_true(const vg_value_t *v) { return v->type == VG_T_BOOL && v->u.b; }
static inline int is_false(const vg_value_t *v) { return v->type == VG_T_BOOL && !v->u.b; }

void vg_vm_run(const vg_ins_t *pc, vg_value_t *r, const vg_vm_ctx_t *ctx) {
    const vg_value_t *a, *b;
    int ok, c;
    int64_t t;
    /* the context's pointers in locals: stores through r[] cannot reload them */
    const vg_tx_t *const tx = ctx->tx;
    const vg_value_t *const spec = ctx->spec;
    vg_value_t *const out = ctx->out;
    vg_spec_input_t *const in = ctx->in;
#if defined(__GNUC__)
    static const void *const jt[] = {
#define VG_OPJ(name, regs, syn) &&L_##name,
        VG_OPCODE_LIST(VG_OPJ)
#undef VG_OPJ
    };
#define OP(name) L_##name:
#define NEXT() do { pc++; goto *jt[pc->op]; } while (0)
    goto *jt[pc->op];
#else
#define OP(name) case VG_OPC_##name:
#define NEXT() do { pc++; goto dispatch; } while (0)
dispatch:
    switch (pc->op) {
#endif
    OP(Halt) return;
    OP(Field) r[pc->p2] = tx->f[pc->p1]; NEXT();
    OP(Extra) {
        const vg_str_t *nm = &ctx->names[pc->p1];
        r[pc->p2] = vg_tx_extra(tx, nm->p, nm->len);
        NEXT();
    }
    OP(Spec) r[pc->p2] = spec[pc->p1]; NEXT();
    OP(OutSpec) out[pc->p2] = spec[pc->p1]; NEXT();
    OP(Copy) r[pc->p2] = r[pc->p1]; NEXT();
    OP(CastNum) a = &r[pc->p1]; num_to(&r[pc->p2], a->u.n, a->type == VG_T_NUM); NEXT();
    OP(Add) a = &r[pc->p1]; b = &r[pc->p2];
        num_to(&r[pc->p3], a->u.n + b->u.n, (a->type == VG_T_NUM) & (b->type == VG_T_NUM));
        NEXT();
    OP(Sub) a = &r[pc->p1]; b = &r[pc->p2];
        num_to(&r[pc->p3], a->u.n - b->u.n, (a->type == VG_T_NUM) & (b->type == VG_T_NUM));
        NEXT();
    OP(Mul) a = &r[pc->p1]; b = &r[pc->p2];
        num_to(&r[pc->p3], a->u.n * b->u.n, (a->type == VG_T_NUM) & (b->type == VG_T_NUM));
        NEXT();
    OP(Div) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_NUM) & (b->type == VG_T_NUM) & (b->u.n != 0);
        num_to(&r[pc->p3], ok ? a->u.n / b->u.n : 0, ok);
        NEXT();
    OP(Neg) a = &r[pc->p1]; num_to(&r[pc->p2], -a->u.n, a->type == VG_T_NUM); NEXT();
    OP(NegD) a = &r[pc->p1];
        ok = a->type == VG_T_DUR && a->u.ms != INT64_MIN;
        ms_to(&r[pc->p2], ok ? -a->u.ms : 0, VG_T_DUR, ok);
        NEXT();
    OP(SubTT) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_TIME) & (b->type == VG_T_TIME);
        ok &= !__builtin_sub_overflow(a->u.ms, b->u.ms, &t);
        ms_to(&r[pc->p3], t, VG_T_DUR, ok);
        NEXT();
    OP(AddTD) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_TIME) & (b->type == VG_T_DUR);
        ok &= !__builtin_add_overflow(a->u.ms, b->u.ms, &t);
        ms_to(&r[pc->p3], t, VG_T_TIME, ok);
        NEXT();
    OP(SubTD) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_TIME) & (b->type == VG_T_DUR);
        ok &= !__builtin_sub_overflow(a->u.ms, b->u.ms, &t);
        ms_to(&r[pc->p3], t, VG_T_TIME, ok);
        NEXT();
    OP(AddDD) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_DUR) & (b->type == VG_T_DUR);
        ok &= !__builtin_add_overflow(a->u.ms, b->u.ms, &t);
        ms_to(&r[pc->p3], t, VG_T_DUR, ok);
        NEXT();
    OP(SubDD) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_DUR) & (b->type == VG_T_DUR);
        ok &= !__builtin_sub_overflow(a->u.ms, b->u.ms, &t);
        ms_to(&r[pc->p3], t, VG_T_DUR, ok);
        NEXT();
    OP(MulDN) {
        a = &r[pc->p1]; b = &r[pc->p2];
        double x = (double)a->u.ms * b->u.n;
        ok = (a->type == VG_T_DUR) & (b->type == VG_T_NUM) & (fabs(x) < 9.2e18);
        ms_to(&r[pc->p3], ok ? (int64_t)llround(x) : 0, VG_T_DUR, ok);
        NEXT();
    }
    OP(DivDN) {
        a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_DUR) & (b->type == VG_T_NUM) & (b->u.n != 0);
        double x = ok ? (double)a->u.ms / b->u.n : 0;
        ok &= fabs(x) < 9.2e18;
        ms_to(&r[pc->p3], ok ? (int64_t)llround(x) : 0, VG_T_DUR, ok);
        NEXT();
    }
    OP(DivDD) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_DUR) & (b->type == VG_T_DUR) & (b->u.ms != 0);
        num_to(&r[pc->p3], ok ? (double)a->u.ms / (double)b->u.ms : 0, ok);
        NEXT();
    OP(Eq) c = cmpv(&r[pc->p1], &r[pc->p2], &ok); bool_to(&r[pc->p3], c == 0, ok); NEXT();
    OP(Ne) c = cmpv(&r[pc->p1], &r[pc->p2], &ok); bool_to(&r[pc->p3], c != 0, ok); NEXT();
    OP(Lt) c = cmpv(&r[pc->p1], &r[pc->p2], &ok); bool_to(&r[pc->p3], c < 0, ok); NEXT();
    OP(Le) c = cmpv(&r[pc->p1], &r[pc->p2], &ok); bool_to(&r[pc->p3], c <= 0, ok); NEXT();
    OP(Gt) c = cmpv(&r[pc->p1], &r[pc->p2], &ok); bool_to(&r[pc->p3], c > 0, ok); NEXT();
    OP(Ge) c = cmpv(&r[pc->p1], &r[pc->p2], &ok); bool_to(&r[pc->p3], c >= 0, ok); NEXT();
    OP(And) a = &r[pc->p1]; b = &r[pc->p2];
        c = is_false(a) | is_false(b);
        bool_to(&r[pc->p3], !c, c | (is_true(a) & is_true(b)));
        NEXT();
    OP(Or) a = &r[pc->p1]; b = &r[pc->p2];
        c = is_true(a) | is_true(b);
        bool_to(&r[pc->p3], c, c | (is_false(a) & is_false(b)));
        NEXT();
    OP(Not) a = &r[pc->p1]; bool_to(&r[pc->p2], !a->u.b, a->type == VG_T_BOOL); NEXT();
    OP(InList) {
        const vg_vm_list_t *l = &ctx->lists[pc->p2];
        a = &r[pc->p1];
        int found = 0;
        ok = l->n == 0 ? a->type != VG_T_NULL : a->type == l->items[0].type;
        for (uint32_t i = 0; ok && i < l->n && !found; i++) {
            int k;
            found = cmpv(a, &l->items[i], &k) == 0 && k;
        }
        bool_to(&r[pc->p3], found, ok);
        NEXT();
    }
    OP(GeoKm) a = &r[pc->p1];
        ok = (a[0].type == VG_T_NUM) & (a[1].type == VG_T_NUM) & (a[2].type == VG_T_NUM) &
             (a[3].type == VG_T_NUM);
        num_to(&r[pc->p3], ok ? vg_vm_geo_km(a[0].u.n, a[1].u.n, a[2].u.n, a[3].u.n) : 0, ok);
        NEXT();
    OP(SecsBetween) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_TIME) & (b->type == VG_T_TIME);
        num_to(&r[pc->p3], ok ? ((double)b->u.ms - (double)a->u.ms) / 1000.0 : 0, ok);
        NEXT();
    OP(Out) out[pc->p2] = r[pc->p1]; NEXT();
    OP(InX) in[pc->p2].x = r[pc->p1]; NEXT();
    OP(InKey) in[pc->p2].key = r[pc->p1]; NEXT();
    OP(InKeep) in[pc->p2].keep = (uint8_t)is_true(&r[pc->p1]); NEXT();
#if !defined(__GNUC__)
    default: return;
    }
#endif
#undef OP
#undef NEXT
}
