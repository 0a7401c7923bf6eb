/* vm.c - the rules bytecode interpreter (see vm.h and opcodes.h).
 *
 * Dispatch is threaded (computed goto) with GCC and Clang, a switch elsewhere. Each
 * handler is short and branch-light: type checks become flags that select between the
 * result and null, so that the common all-numbers path has no unpredictable branch.
 */
#include "rules/vm.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/compiler.h"   /* the per-match regex limits */
#include "rules/dtoa.h"   /* shortest round-trip decimal (also the JSON output's) */
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

double vg_vm_round(double x, double digits) {
    char buf[40];
    if (!(digits - digits == 0) || vg_dtoa_shortest(x, buf) == 0) return x;  /* not finite */
    if (digits > 400) return x;
    if (digits < -400) return x * 0.0;
    int d = (int)digits;
    /* the decimal as printed: its significant digits dig[0..k) and `point`, the value
     * being 0.dig x 10^point */
    char dig[24];
    int k = 0, point = 0, after = 0;
    const char *c = buf + (buf[0] == '-');
    for (; *c && *c != 'e'; c++) {
        if (*c == '.') { after = 1; continue; }
        if (k == 0 && *c == '0') { point -= after; continue; }
        if (k < (int)sizeof dig) dig[k++] = *c;
        point += !after;
    }
    if (*c == 'e') point += atoi(c + 1);
    int keep = point + d;            /* the digits left of the rounding position */
    if (keep >= k) return x;         /* no more than `digits` decimals: as it is */
    if (keep < 0) return x * 0.0;    /* below half a unit of the last kept place */
    uint64_t q = 0;
    for (int i = 0; i < keep; i++) q = q * 10 + (uint64_t)(dig[i] - '0');
    if (dig[keep] >= '5') q++;       /* half away from zero (on the magnitude) */
    double r;
    static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                 1e20, 1e21, 1e22};
    if (q < ((uint64_t)1 << 53) && d >= -22 && d <= 22) {
        /* one correctly rounded operation on exact operands: the nearest double */
        r = d >= 0 ? (double)q / p10[d] : (double)q * p10[-d];
    } else {
        char t[48];
        snprintf(t, sizeof t, "%llue%d", (unsigned long long)q, -d);
        r = strtod(t, NULL);
    }
    return x < 0 ? -r : r;
}

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

/* 1 when needle (n > 0 bytes) occurs in hay. */
static int contains(const char *hay, uint32_t hn, const char *needle, uint32_t n) {
    if (n > hn) return 0;
    for (uint32_t i = 0; i + n <= hn; i++) {
        const char *q = memchr(hay + i, needle[0], hn - n + 1 - i);
        if (!q) return 0;
        i = (uint32_t)(q - hay);
        if (memcmp(q, needle, n) == 0) return 1;
    }
    return 0;
}

/* pcre2 memory from the per-event arena: nothing is freed until the arena is reset. */
static void *arena_malloc(PCRE2_SIZE n, void *arena) { return vg_arena_alloc(arena, n); }
static void arena_free(void *p, void *arena) { (void)p; (void)arena; }

/* One matches() under the event's budget (see vm.h): 1 match, 0 no match, -1 null.
 * Every string that reaches a match is valid UTF-8 (the event parser rejects anything
 * else, string literals are checked by the rules parser, lower/upper change ASCII bytes
 * only, and kept values were written from those), so PCRE2 does not check it again: that
 * check read the whole subject on every call, uncounted. Each run is charged its limit
 * plus the subject's length / VG_VM_REGEX_SCAN_BYTES, for the start positions it may scan. */
static int rx_callout(pcre2_callout_block *b, void *arg) {
    (void)b;
    vg_arena_t *ar = arg;
    return ++ar->rx_callouts > ar->rx_callout_cap ? PCRE2_ERROR_CALLOUT : 0;
}

static int rx_match(const pcre2_code *re, const pcre2_code *re_co, const vg_value_t *s,
                    pcre2_match_data *md, pcre2_match_context *mc, vg_arena_t *ar) {
    const uint32_t scan = s->u.s.len / VG_VM_REGEX_SCAN_BYTES;
    if (s->u.s.len > VG_VM_REGEX_SHORT && re_co) {   /* steps are callouts (vm.h) */
        uint32_t left = ar->rx_steps < VG_VM_REGEX_EVENT_STEPS
                            ? VG_VM_REGEX_EVENT_STEPS - ar->rx_steps : 0;
        left = left > scan ? left - scan : 0;
        uint32_t cap = left < VG_RULES_REGEX_MATCH_LIMIT ? left : VG_RULES_REGEX_MATCH_LIMIT;
        if (cap == 0) {
            ar->rx_skipped++;
            return -1;
        }
        ar->rx_callouts = 0;
        ar->rx_callout_cap = cap * VG_VM_REGEX_CALLOUTS;
        pcre2_set_match_limit(mc, cap);
        pcre2_set_callout(mc, rx_callout, ar);
        int rc = pcre2_match(re_co, (PCRE2_SPTR)s->u.s.p, s->u.s.len, 0, PCRE2_NO_UTF_CHECK,
                             md, mc);
        pcre2_set_callout(mc, NULL, NULL);
        uint32_t used = rc == PCRE2_ERROR_MATCHLIMIT || ar->rx_callouts > ar->rx_callout_cap
                            ? cap
                            : (ar->rx_callouts + VG_VM_REGEX_CALLOUTS - 1) / VG_VM_REGEX_CALLOUTS;
        ar->rx_steps += used + scan;
        return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
    }
    for (uint32_t lim = VG_VM_REGEX_FIRST_STEPS;; lim *= 4) {
        uint32_t left = ar->rx_steps < VG_VM_REGEX_EVENT_STEPS
                            ? VG_VM_REGEX_EVENT_STEPS - ar->rx_steps : 0;
        left = left > scan ? left - scan : 0;
        uint32_t cap = left < VG_RULES_REGEX_MATCH_LIMIT ? left : VG_RULES_REGEX_MATCH_LIMIT;
        if (cap == 0) {
            if (lim == VG_VM_REGEX_FIRST_STEPS) ar->rx_skipped++;
            return -1;
        }
        if (lim > cap) lim = cap;
        pcre2_set_match_limit(mc, lim);
        int rc = pcre2_match(re, (PCRE2_SPTR)(s->u.s.p ? s->u.s.p : ""), s->u.s.len, 0,
                             PCRE2_NO_UTF_CHECK, md, mc);
        ar->rx_steps += lim + scan;
        if (rc != PCRE2_ERROR_MATCHLIMIT || lim == cap)
            return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
    }
}

void vg_vm_run(const vg_ins_t *pc, vg_value_t *r, const vg_vm_ctx_t *ctx) {
    const vg_ins_t *const base = pc;
    pcre2_match_data *md = NULL;   /* created on the first Matches of this run */
    pcre2_match_context *mc = NULL;  /* its limits, set per match (rx_match) */
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
#define JUMP(t) do { pc = base + (t); goto *jt[pc->op]; } while (0)
    goto *jt[pc->op];
#else
#define OP(name) case VG_OPC_##name:
#define NEXT() do { pc++; goto dispatch; } while (0)
#define JUMP(t) do { pc = base + (t); goto dispatch; } while (0)
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
    OP(CastTo) a = &r[pc->p1];
        r[pc->p2] = a->type == pc->p3 ? *a : vg_null();
        NEXT();
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
        ok &= (t >= VG_TIME_MIN_MS) & (t <= VG_TIME_MAX_MS);
        ms_to(&r[pc->p3], t, VG_T_TIME, ok);
        NEXT();
    OP(SubTD) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_TIME) & (b->type == VG_T_DUR);
        ok &= !__builtin_sub_overflow(a->u.ms, b->u.ms, &t);
        ok &= (t >= VG_TIME_MIN_MS) & (t <= VG_TIME_MAX_MS);
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
    OP(Feat) r[pc->p2] = ctx->feat[pc->p1]; NEXT();
    OP(JumpIfFalse)
        if (is_false(&r[pc->p1])) JUMP(pc->p2);
        NEXT();
    OP(JumpIfTrue)
        if (is_true(&r[pc->p1])) JUMP(pc->p2);
        NEXT();
    OP(Rule)
        c = is_true(&r[pc->p1]);
        ctx->rules[pc->p2].fired = (uint8_t)c;
        if (!c) JUMP(pc->p3);
        NEXT();
    OP(RuleScore) {
        a = &r[pc->p1];
        double x = a->type == VG_T_NUM ? a->u.n : 0;
        ctx->rules[pc->p2].score = x < 0 ? 0 : x > 100 ? 100 : x;
        NEXT();
    }
    OP(InNamed) a = &r[pc->p1];
        ok = a->type == VG_T_STR;
        bool_to(&r[pc->p3],
                ok && ctx->named && vg_strset_has(ctx->named[pc->p2], a->u.s.p, a->u.s.len), ok);
        NEXT();
    OP(Lower) OP(Upper) {
        a = &r[pc->p1];
        char *m = a->type == VG_T_STR && ctx->arena ? vg_arena_alloc(ctx->arena, a->u.s.len + 1) : NULL;
        if (!m) { put(&r[pc->p2], VG_T_NULL, 0); NEXT(); }
        int up = pc->op == VG_OPC_Upper;
        for (uint32_t i = 0; i < a->u.s.len; i++) {
            char ch = a->u.s.p[i];
            if (up && ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
            else if (!up && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
            m[i] = ch;
        }
        r[pc->p2] = vg_strv(m, a->u.s.len);
        NEXT();
    }
    OP(StartsWith) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_STR) & (b->type == VG_T_STR);
        bool_to(&r[pc->p3], ok && b->u.s.len <= a->u.s.len &&
                (b->u.s.len == 0 || memcmp(a->u.s.p, b->u.s.p, b->u.s.len) == 0), ok);
        NEXT();
    OP(EndsWith) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_STR) & (b->type == VG_T_STR);
        bool_to(&r[pc->p3], ok && b->u.s.len <= a->u.s.len &&
                (b->u.s.len == 0 || memcmp(a->u.s.p + a->u.s.len - b->u.s.len, b->u.s.p,
                                           b->u.s.len) == 0), ok);
        NEXT();
    OP(Contains) a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_STR) & (b->type == VG_T_STR);
        bool_to(&r[pc->p3], ok && (b->u.s.len == 0 ||
                contains(a->u.s.p, a->u.s.len, b->u.s.p, b->u.s.len)), ok);
        NEXT();
    OP(Matches) {
        a = &r[pc->p1];
        int res = -1;
        if (a->type == VG_T_STR && ctx->arena) {
            if (!md) {
                pcre2_general_context *g =
                    pcre2_general_context_create(arena_malloc, arena_free, ctx->arena);
                mc = g ? pcre2_match_context_create(g) : NULL;
                md = mc ? pcre2_match_data_create(1, g) : NULL;
                if (mc) pcre2_set_depth_limit(mc, VG_RULES_REGEX_DEPTH_LIMIT);
            }
            if (md)
                res = rx_match((const pcre2_code *)ctx->regex[pc->p2],
                               (const pcre2_code *)ctx->regex[pc->p2 + 1], a, md, mc,
                               ctx->arena);
        }
        bool_to(&r[pc->p3], res == 1, res >= 0);
        NEXT();
    }
    OP(Abs) a = &r[pc->p1]; num_to(&r[pc->p2], fabs(a->u.n), a->type == VG_T_NUM); NEXT();
    OP(Round) {
        a = &r[pc->p1]; b = &r[pc->p2];
        ok = (a->type == VG_T_NUM) & (b->type == VG_T_NUM);
        num_to(&r[pc->p3], ok ? vg_vm_round(a->u.n, b->u.n) : 0, ok);
        NEXT();
    }
    OP(Log) a = &r[pc->p1];
        ok = a->type == VG_T_NUM && a->u.n > 0;
        num_to(&r[pc->p2], ok ? log(a->u.n) : 0, ok);
        NEXT();
    OP(Min2) a = &r[pc->p1]; b = &r[pc->p2];
        num_to(&r[pc->p3], a->u.n < b->u.n ? a->u.n : b->u.n,
               (a->type == VG_T_NUM) & (b->type == VG_T_NUM));
        NEXT();
    OP(Max2) a = &r[pc->p1]; b = &r[pc->p2];
        num_to(&r[pc->p3], a->u.n > b->u.n ? a->u.n : b->u.n,
               (a->type == VG_T_NUM) & (b->type == VG_T_NUM));
        NEXT();
    OP(Hour) a = &r[pc->p1];
        ok = a->type == VG_T_TIME;
        num_to(&r[pc->p3], ok ? vg_tz_hour(&ctx->zones[pc->p2], a->u.ms) : 0, ok);
        NEXT();
    OP(Dow) a = &r[pc->p1];
        ok = a->type == VG_T_TIME;
        num_to(&r[pc->p3], ok ? vg_tz_dow(&ctx->zones[pc->p2], a->u.ms) : 0, ok);
        NEXT();
    OP(IsNull) bool_to(&r[pc->p2], r[pc->p1].type == VG_T_NULL, 1); NEXT();
    OP(Coalesce) r[pc->p3] = r[pc->p1].type != VG_T_NULL ? r[pc->p1] : r[pc->p2]; NEXT();
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
#undef JUMP
}
