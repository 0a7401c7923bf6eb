/* parser.c - recursive-descent parser of the rules language (see parser.h).
 *
 * Grammar (precedence from low to high):
 *
 *   module  := decl*
 *   decl    := 'feature' NAME '=' expr
 *            | 'list' NAME
 *            | 'rule' NAME clause* 'end'
 *   clause  := ('severity' | 'action' | 'mode') NAME | ('score' | 'when') expr
 *            | 'message' STRING | 'suppress' DURATION
 *   expr    := and ('or' and)*
 *   and     := not ('and' not)*
 *   not     := 'not' not | cmp
 *   cmp     := sum [('==' | '!=' | '<' | '<=' | '>' | '>=') sum | 'in' set]   (no chains)
 *   set     := '[' [expr (',' expr)*] ']' | 'list' '(' STRING ')'
 *   sum     := term (('+' | '-') term)*
 *   term    := unary (('*' | '/') unary)*
 *   unary   := '-' unary | primary
 *   primary := NUMBER | DURATION | STRING | 'true' | 'false' | 'null' | tx.NAME
 *            | anomaly.NAME | NAME | NAME '(' [expr (',' expr)*] ['where' expr]
 *              ['by' expr] ')' | '(' expr ')'
 *
 * Every parse function returns NULL after reporting an error; the declaration loop then
 * skips to the next top-level keyword. Nodes come from the caller's arena.
 */
#include "rules/parser.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rules/errors.h"
#include "rules/lexer.h"
#include "rules/utf8.h"

typedef struct parser {
    const char *src;
    size_t len, pos;          /* pos: just after the current token */
    const char *file;
    int line;                 /* line of src[pos] */
    size_t line_start;        /* offset of the first byte of that line */
    int tk;                   /* current token */
    size_t tpos, tlen;
    int tline, tcol;
    int depth;
    int nomem;
    vg_arena_t *ar;
    vg_diags_t *d;
} parser_t;

/* ---- tokens ----------------------------------------------------------------------- */

static void next(parser_t *p) {
    for (;;) {
        int type;
        size_t n = vg_lex_token(p->src + p->pos, p->len - p->pos, &type);
        if (type == VG_TK_SPACE) {
            for (size_t i = p->pos; i < p->pos + n; i++)
                if (p->src[i] == '\n') {
                    p->line++;
                    p->line_start = i + 1;
                }
        }
        if (type == VG_TK_SPACE || type == VG_TK_COMMENT) {
            p->pos += n;
            continue;
        }
        p->tk = type;
        p->tpos = p->pos;
        p->tlen = n;
        p->tline = p->line;
        p->tcol = (int)(p->pos - p->line_start) + 1;
        p->pos += n;
        return;
    }
}

/* The type of the token after the current one (for recovery decisions). */
static int peek(const parser_t *p) {
    size_t pos = p->pos;
    for (;;) {
        int type;
        size_t n = vg_lex_token(p->src + pos, p->len - pos, &type);
        if (type != VG_TK_SPACE && type != VG_TK_COMMENT) return type;
        pos += n;
    }
}

static void error_at(parser_t *p, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#include <stdarg.h>
static void error_at(parser_t *p, int line, int col, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vg_diags_add(p->d, 1, p->file, line, col, "%s", msg);
}

/* Describes the current token for "found ..." (at most ~40 bytes of it). */
static void describe(const parser_t *p, char *buf, size_t cap) {
    int n = p->tlen > 32 ? 32 : (int)p->tlen;
    const char *t = p->src + p->tpos;
    const char *more = p->tlen > 32 ? "..." : "";
    switch (p->tk) {
    case VG_TK_EOF: snprintf(buf, cap, "end of file"); break;
    case VG_TK_IDENT: snprintf(buf, cap, "identifier '%.*s%s'", n, t, more); break;
    case VG_TK_FIELD: snprintf(buf, cap, "field '%.*s%s'", n, t, more); break;
    case VG_TK_ANOMALY: snprintf(buf, cap, "'%.*s%s'", n, t, more); break;
    case VG_TK_NUMBER: snprintf(buf, cap, "number %.*s%s", n, t, more); break;
    case VG_TK_DURATION: snprintf(buf, cap, "duration %.*s%s", n, t, more); break;
    case VG_TK_STRING: snprintf(buf, cap, "string %.*s%s", n, t, more); break;
    default: snprintf(buf, cap, "%s", vg_lex_name(p->tk)); break;
    }
}

/* Reports a lexical error for an error token, else "expected X, found Y". */
static void expected(parser_t *p, const char *what) {
    int n = p->tlen > 32 ? 32 : (int)p->tlen;
    const char *t = p->src + p->tpos;
    switch (p->tk) {
    case VG_TK_ERR_CHAR:
        error_at(p, p->tline, p->tcol, "unexpected character '%.*s'", n, t);
        return;
    case VG_TK_ERR_STRING:
        error_at(p, p->tline, p->tcol, "unterminated string (strings end on the same line)");
        return;
    case VG_TK_ERR_ESCAPE: {
        /* at the first bad escape of the string, quoted (the lexer took it whole) */
        size_t i = 1, n2 = 2;
        for (; i + 1 < p->tlen; i++) {
            if (t[i] != '\\') continue;
            char e = t[i + 1];
            int hex = 0;
            while (e == 'u' && hex < 4 && i + 2 + (size_t)hex < p->tlen &&
                   isxdigit((unsigned char)t[i + 2 + hex]))
                hex++;
            if (e == '"' || e == '\\' || e == 'n' || e == 't' || (e == 'u' && hex == 4)) {
                i++;
                continue;
            }
            n2 = 2 + (size_t)hex;
            break;
        }
        if (i + 1 >= p->tlen) i = 0, n2 = 0;   /* not found: cannot happen */
        error_at(p, p->tline, p->tcol + (int)i,
                 "invalid escape '%.*s' in string (use \\\" \\\\ \\n \\t or \\uXXXX)", (int)n2,
                 t + i);
        return;
    }
    case VG_TK_ERR_NUMBER:
        error_at(p, p->tline, p->tcol,
                 "malformed number '%.*s' (durations are whole numbers with a unit ms, s, m, h or d)",
                 n, t);
        return;
    default: {
        char found[64];
        describe(p, found, sizeof found);
        error_at(p, p->tline, p->tcol, "expected %s, found %s", what, found);
    }
    }
}

static void *alloc(parser_t *p, size_t n) {
    void *m = vg_arena_alloc(p->ar, n);
    if (!m) {
        if (!p->nomem) error_at(p, p->tline, p->tcol, "out of memory");
        p->nomem = 1;
        return NULL;
    }
    memset(m, 0, n);
    return m;
}

static vg_ast_t *node(parser_t *p, int kind, int line, int col) {
    vg_ast_t *e = alloc(p, sizeof *e);
    if (!e) return NULL;
    e->kind = (uint8_t)kind;
    e->line = line;
    e->col = col;
    e->height = 1;
    e->ref = -1;
    return e;
}

static int copy_name(parser_t *p, const char *s, size_t n, vg_str_t *out) {
    if (n > VG_RULES_MAX_NAME) {
        error_at(p, p->tline, p->tcol, "name too long (%zu bytes, limit %d)", n,
                 VG_RULES_MAX_NAME);
        return -1;
    }
    char *m = alloc(p, n + 1);
    if (!m) return -1;
    memcpy(m, s, n);
    out->p = m;
    out->len = (uint32_t)n;
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c - 'A' + 10;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the current STRING token (already validated by the lexer). With `cols`, also
 * sets *cols to the source column of each decoded byte (the bytes an escape gives all
 * have the column of its backslash; a string ends on its line). */
static int decode_string(parser_t *p, vg_str_t *out, const int **cols) {
    const char *s = p->src + p->tpos + 1;
    size_t n = p->tlen - 2;
    char *o = alloc(p, n + 1);
    if (!o) return -1;
    int *col = NULL;
    if (cols && !(col = alloc(p, sizeof(int) * (n + 1)))) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k0 = k;
        int c0 = p->tcol + 1 + (int)i;
        if (s[i] != '\\') {
            o[k++] = s[i];
            if (col) col[k0] = c0;
            continue;
        }
        char e = s[++i];
        if (e == 'n') o[k++] = '\n';
        else if (e == 't') o[k++] = '\t';
        else if (e == 'u') {
            unsigned cp = (unsigned)(hexval(s[i + 1]) << 12 | hexval(s[i + 2]) << 8 |
                                     hexval(s[i + 3]) << 4 | hexval(s[i + 4]));
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < n &&
                s[i + 1] == '\\' && s[i + 2] == 'u') {
                unsigned lo = (unsigned)(hexval(s[i + 3]) << 12 | hexval(s[i + 4]) << 8 |
                                         hexval(s[i + 5]) << 4 | hexval(s[i + 6]));
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) {
                error_at(p, p->tline, c0, "invalid \\u escape '%.6s' in string (lone surrogate)",
                         s + i - 5);
                return -1;
            }
            k += put_utf8(o + k, cp);  /* never longer than the 6-byte escape */
        } else o[k++] = e;
        if (col)
            while (k0 < k) col[k0++] = c0;
    }
    if (k > VG_RULES_MAX_STRING) {
        error_at(p, p->tline, p->tcol, "string too long (%zu bytes, limit %d)", k,
                 VG_RULES_MAX_STRING);
        return -1;
    }
    out->p = o;
    out->len = (uint32_t)k;
    if (cols) *cols = col;
    return 0;
}

/* Parses the current DURATION token into milliseconds. */
static int parse_duration(parser_t *p, int64_t *ms) {
    const char *s = p->src + p->tpos;
    size_t i = 0;
    int64_t v = 0;
    while (i < p->tlen && s[i] >= '0' && s[i] <= '9') {
        if (v > (INT64_MAX - 9) / 10) goto range;
        v = v * 10 + (s[i++] - '0');
    }
    int64_t mul = 1;
    if (p->tlen - i == 2) mul = 1;                          /* ms */
    else if (s[i] == 's') mul = 1000;
    else if (s[i] == 'm') mul = 60000;
    else if (s[i] == 'h') mul = 3600000;
    else mul = 86400000;                                    /* d */
    if (v > (int64_t)1e15 / mul) goto range;                /* about 31,000 years */
    *ms = v * mul;
    return 0;
range:
    error_at(p, p->tline, p->tcol, "duration %.*s out of range", (int)p->tlen, s);
    return -1;
}

/* ---- expressions ------------------------------------------------------------------ */

static vg_ast_t *parse_expr(parser_t *p);

static int enter(parser_t *p) {
    if (++p->depth > VG_RULES_MAX_DEPTH) {
        error_at(p, p->tline, p->tcol, "expression nested too deeply (limit %d levels)",
                 VG_RULES_MAX_DEPTH);
        return -1;
    }
    return 0;
}

static vg_ast_t *binary(parser_t *p, int op, int line, int col, vg_ast_t *a, vg_ast_t *b) {
    vg_ast_t *e = node(p, VG_AST_BINARY, line, col);
    if (!e) return NULL;
    e->op = (uint8_t)op;
    e->a = a;
    e->b = b;
    e->height = 1 + (a->height > b->height ? a->height : b->height);
    if (e->height > VG_RULES_MAX_HEIGHT) {
        error_at(p, line, col, "expression too long (more than %d operators deep)",
                 VG_RULES_MAX_HEIGHT);
        return NULL;
    }
    return e;
}

/* Collects comma-separated expressions until `close`; returns the count or -1. */
static int parse_items(parser_t *p, int close, int allow_where_by, vg_ast_t *call) {
    vg_ast_t **tmp = NULL;
    int n = 0, cap = 0;
    if (p->tk != close && p->tk != VG_TK_WHERE && p->tk != VG_TK_BY) {
        for (;;) {
            if (n == VG_RULES_MAX_ITEMS) {
                error_at(p, p->tline, p->tcol, "too many items (limit %d)", VG_RULES_MAX_ITEMS);
                return -1;
            }
            vg_ast_t *e = parse_expr(p);
            if (!e) return -1;
            if (n == cap) {  /* grow in the arena; the old array is simply abandoned */
                int ncap = cap ? cap * 2 : 4;
                vg_ast_t **t = alloc(p, sizeof(vg_ast_t *) * (size_t)ncap);
                if (!t) return -1;
                if (n) memcpy(t, tmp, sizeof(vg_ast_t *) * (size_t)n);
                tmp = t;
                cap = ncap;
            }
            tmp[n++] = e;
            if (p->tk != VG_TK_COMMA) break;
            next(p);
        }
    }
    if (allow_where_by && p->tk == VG_TK_WHERE) {
        call->where_line = p->tline;
        call->where_col = p->tcol;
        next(p);
        if (!(call->where = parse_expr(p))) return -1;
    }
    if (allow_where_by && p->tk == VG_TK_BY) {
        call->by_line = p->tline;
        call->by_col = p->tcol;
        next(p);
        if (!(call->by = parse_expr(p))) return -1;
    }
    if (p->tk != close) {
        /* a where or by out of place: say the order (count(W [where P] [by K])), not
         * that the keyword found was expected */
        if (allow_where_by && call->by && (p->tk == VG_TK_WHERE || p->tk == VG_TK_BY)) {
            error_at(p, p->tline, p->tcol, p->tk == VG_TK_WHERE
                         ? "'where' comes before 'by' (W [where P] [by K])"
                         : "'by' is given twice (one key: W [where P] [by K])");
            return -1;
        }
        if (allow_where_by && call->where && p->tk == VG_TK_WHERE) {
            error_at(p, p->tline, p->tcol,
                     "'where' is given twice (one condition: combine them with and)");
            return -1;
        }
        /* after a by key only ')' can come: say that one key is all there is */
        if (allow_where_by && call->by && p->tk == VG_TK_COMMA) {
            error_at(p, p->tline, p->tcol,
                     "expected ')' after the 'by' key, found ',' (a second key is not "
                     "supported: W [where P] [by K])");
            return -1;
        }
        expected(p, close == VG_TK_RB ? "',' or ']'"
                    : !allow_where_by ? "')'"
                    : call->by        ? "')' after the 'by' key"
                    : call->where     ? "'by' or ')' after the 'where' condition"
                                      : "',', 'where', 'by' or ')'");
        return -1;
    }
    next(p);
    call->args = tmp;
    call->nargs = n;
    int h = 0;
    for (int i = 0; i < n; i++) if (tmp[i]->height > h) h = tmp[i]->height;
    if (call->where && call->where->height > h) h = call->where->height;
    if (call->by && call->by->height > h) h = call->by->height;
    call->height = h + 1;
    return n;
}

/* list("name"), the current token being 'list'. */
static vg_ast_t *parse_listref(parser_t *p) {
    vg_ast_t *e = node(p, VG_AST_LISTREF, p->tline, p->tcol);
    if (!e) return NULL;
    next(p);
    if (p->tk != VG_TK_LP) { expected(p, "'('"); return NULL; }
    next(p);
    if (p->tk != VG_TK_STRING) { expected(p, "a list name string"); return NULL; }
    if (decode_string(p, &e->str, NULL) < 0) return NULL;
    next(p);
    if (p->tk != VG_TK_RP) { expected(p, "')'"); return NULL; }
    next(p);
    return e;
}

static vg_ast_t *parse_primary(parser_t *p) {
    int line = p->tline, col = p->tcol;
    vg_ast_t *e = NULL;
    switch (p->tk) {
    case VG_TK_NUMBER: {
        char buf[400];
        size_t n = p->tlen < sizeof buf - 1 ? p->tlen : sizeof buf - 1;
        memcpy(buf, p->src + p->tpos, n);
        buf[n] = 0;
        double v = strtod(buf, NULL);
        if (!isfinite(v) || p->tlen >= sizeof buf - 1) {
            error_at(p, line, col, "number %.*s out of range", (int)n, buf);
            return NULL;
        }
        if (!(e = node(p, VG_AST_NUM, line, col))) return NULL;
        e->v.n = v;
        next(p);
        return e;
    }
    case VG_TK_DURATION:
        if (!(e = node(p, VG_AST_DUR, line, col))) return NULL;
        if (parse_duration(p, &e->v.ms) < 0) return NULL;
        next(p);
        return e;
    case VG_TK_STRING:
        if (!(e = node(p, VG_AST_STR, line, col))) return NULL;
        if (decode_string(p, &e->str, NULL) < 0) return NULL;
        next(p);
        return e;
    case VG_TK_TRUE:
    case VG_TK_FALSE:
        if (!(e = node(p, VG_AST_BOOL, line, col))) return NULL;
        e->v.b = p->tk == VG_TK_TRUE;
        next(p);
        return e;
    case VG_TK_NULL:
        if (!(e = node(p, VG_AST_NULL, line, col))) return NULL;
        next(p);
        return e;
    case VG_TK_FIELD:
    case VG_TK_ANOMALY: {
        size_t skip = p->tk == VG_TK_FIELD ? 3 : 8;
        if (!(e = node(p, p->tk == VG_TK_FIELD ? VG_AST_FIELD : VG_AST_ANOMALY, line, col)))
            return NULL;
        if (copy_name(p, p->src + p->tpos + skip, p->tlen - skip, &e->str) < 0) return NULL;
        next(p);
        return e;
    }
    case VG_TK_LIST:
        return parse_listref(p);
    case VG_TK_IDENT:
        if (!(e = node(p, VG_AST_NAME, line, col))) return NULL;
        if (copy_name(p, p->src + p->tpos, p->tlen, &e->str) < 0) return NULL;
        next(p);
        if (p->tk == VG_TK_LP) {
            e->kind = VG_AST_CALL;
            if (enter(p) < 0) return NULL;
            next(p);
            if (parse_items(p, VG_TK_RP, 1, e) < 0) return NULL;
            p->depth--;
        }
        return e;
    case VG_TK_LP:
        if (enter(p) < 0) return NULL;
        next(p);
        if (!(e = parse_expr(p))) return NULL;
        if (p->tk != VG_TK_RP) { expected(p, "')'"); return NULL; }
        next(p);
        p->depth--;
        return e;
    default:
        expected(p, "an expression");
        return NULL;
    }
}

static vg_ast_t *parse_unary(parser_t *p) {
    if (p->tk != VG_TK_MINUS) return parse_primary(p);
    int line = p->tline, col = p->tcol;
    if (enter(p) < 0) return NULL;
    next(p);
    vg_ast_t *a = parse_unary(p);
    if (!a) return NULL;
    p->depth--;
    vg_ast_t *e = node(p, VG_AST_UNARY, line, col);
    if (!e) return NULL;
    e->op = VG_OP_NEG;
    e->a = a;
    e->height = a->height + 1;
    return e;
}

static vg_ast_t *parse_term(parser_t *p) {
    vg_ast_t *e = parse_unary(p);
    while (e && (p->tk == VG_TK_STAR || p->tk == VG_TK_SLASH)) {
        int op = p->tk == VG_TK_STAR ? VG_OP_MUL : VG_OP_DIV, line = p->tline, col = p->tcol;
        next(p);
        vg_ast_t *b = parse_unary(p);
        e = b ? binary(p, op, line, col, e, b) : NULL;
    }
    return e;
}

static vg_ast_t *parse_sum(parser_t *p) {
    vg_ast_t *e = parse_term(p);
    while (e && (p->tk == VG_TK_PLUS || p->tk == VG_TK_MINUS)) {
        int op = p->tk == VG_TK_PLUS ? VG_OP_ADD : VG_OP_SUB, line = p->tline, col = p->tcol;
        next(p);
        vg_ast_t *b = parse_term(p);
        e = b ? binary(p, op, line, col, e, b) : NULL;
    }
    return e;
}

static int cmp_op(int tk) {
    switch (tk) {
    case VG_TK_EQ: return VG_OP_EQ;
    case VG_TK_NE: return VG_OP_NE;
    case VG_TK_LT: return VG_OP_LT;
    case VG_TK_LE: return VG_OP_LE;
    case VG_TK_GT: return VG_OP_GT;
    case VG_TK_GE: return VG_OP_GE;
    case VG_TK_IN: return VG_OP_IN;
    default: return -1;
    }
}

static vg_ast_t *parse_cmp(parser_t *p) {
    vg_ast_t *e = parse_sum(p);
    if (!e) return NULL;
    if (p->tk == VG_TK_ASSIGN) {   /* '=' only follows a feature's name */
        error_at(p, p->tline, p->tcol, "'=' is not a comparison: did you mean '=='?");
        return NULL;
    }
    int op = cmp_op(p->tk);
    if (op < 0) return e;
    int line = p->tline, col = p->tcol;
    next(p);
    vg_ast_t *b;
    if (op == VG_OP_IN) {
        if (p->tk == VG_TK_LIST) {
            b = parse_listref(p);
        } else if (p->tk == VG_TK_LB) {
            if (!(b = node(p, VG_AST_ARRAY, p->tline, p->tcol))) return NULL;
            if (enter(p) < 0) return NULL;
            next(p);
            if (parse_items(p, VG_TK_RB, 0, b) < 0) return NULL;
            p->depth--;
        } else {
            expected(p, "'[' or 'list' after 'in'");
            return NULL;
        }
    } else {
        b = parse_sum(p);
    }
    if (!b || !(e = binary(p, op, line, col, e, b))) return NULL;
    if (cmp_op(p->tk) >= 0) {
        expected(p, "'and', 'or' or the end of the expression (comparisons do not chain)");
        return NULL;
    }
    return e;
}

static vg_ast_t *parse_not(parser_t *p) {
    if (p->tk != VG_TK_NOT) return parse_cmp(p);
    int line = p->tline, col = p->tcol;
    if (enter(p) < 0) return NULL;
    next(p);
    vg_ast_t *a = parse_not(p);
    if (!a) return NULL;
    p->depth--;
    vg_ast_t *e = node(p, VG_AST_UNARY, line, col);
    if (!e) return NULL;
    e->op = VG_OP_NOT;
    e->a = a;
    e->height = a->height + 1;
    return e;
}

static vg_ast_t *parse_and(parser_t *p) {
    vg_ast_t *e = parse_not(p);
    while (e && p->tk == VG_TK_AND) {
        int line = p->tline, col = p->tcol;
        next(p);
        vg_ast_t *b = parse_not(p);
        e = b ? binary(p, VG_OP_AND, line, col, e, b) : NULL;
    }
    return e;
}

static vg_ast_t *parse_expr(parser_t *p) {
    vg_ast_t *e = parse_and(p);
    while (e && p->tk == VG_TK_OR) {
        int line = p->tline, col = p->tcol;
        next(p);
        vg_ast_t *b = parse_and(p);
        e = b ? binary(p, VG_OP_OR, line, col, e, b) : NULL;
    }
    return e;
}

/* ---- declarations ----------------------------------------------------------------- */

static int clause_kind(int tk) {
    switch (tk) {
    case VG_TK_SEVERITY: return VG_CL_SEVERITY;
    case VG_TK_ACTION: return VG_CL_ACTION;
    case VG_TK_SCORE: return VG_CL_SCORE;
    case VG_TK_MODE: return VG_CL_MODE;
    case VG_TK_WHEN: return VG_CL_WHEN;
    case VG_TK_MESSAGE: return VG_CL_MESSAGE;
    case VG_TK_SUPPRESS: return VG_CL_SUPPRESS;
    default: return -1;
    }
}

static int parse_rule_body(parser_t *p, vg_ast_decl_t *d) {
    vg_ast_clause_t tmp[64];
    int n = 0;
    while (p->tk != VG_TK_END) {
        int k = clause_kind(p->tk);
        if (k < 0) {
            expected(p, "a rule clause (severity, action, score, mode, when, message, "
                        "suppress) or 'end'");
            return -1;
        }
        if (n == (int)(sizeof tmp / sizeof tmp[0])) {
            error_at(p, p->tline, p->tcol, "too many clauses in rule");
            return -1;
        }
        vg_ast_clause_t *c = &tmp[n++];
        memset(c, 0, sizeof *c);
        c->kind = k;
        c->line = p->tline;
        c->col = p->tcol;
        next(p);
        c->word_line = p->tline;
        c->word_col = p->tcol;
        switch (k) {
        case VG_CL_SEVERITY:
        case VG_CL_ACTION:
        case VG_CL_MODE:
            if (p->tk != VG_TK_IDENT) {
                expected(p, k == VG_CL_SEVERITY ? "a severity (low, medium, high, critical)"
                            : k == VG_CL_ACTION ? "an action (allow, review, block, alert)"
                                                : "a mode (active, shadow, disabled)");
                return -1;
            }
            if (copy_name(p, p->src + p->tpos, p->tlen, &c->word) < 0) return -1;
            next(p);
            break;
        case VG_CL_SCORE:
        case VG_CL_WHEN:
            if (!(c->expr = parse_expr(p))) return -1;
            break;
        case VG_CL_MESSAGE:
            if (p->tk != VG_TK_STRING) { expected(p, "a message string"); return -1; }
            if (decode_string(p, &c->word, &c->word_cols) < 0) return -1;
            next(p);
            break;
        case VG_CL_SUPPRESS:
            if (p->tk != VG_TK_DURATION) { expected(p, "a duration (e.g. 10m)"); return -1; }
            if (parse_duration(p, &c->ms) < 0) return -1;
            next(p);
            break;
        }
    }
    next(p);  /* 'end' */
    d->clauses = alloc(p, sizeof(vg_ast_clause_t) * (size_t)(n ? n : 1));
    if (!d->clauses) return -1;
    memcpy(d->clauses, tmp, sizeof(vg_ast_clause_t) * (size_t)n);
    d->nclauses = n;
    return 0;
}

/* Parses one declaration at the current token; NULL after an error, with *broken set to
 * the declaration when its name had parsed. */
static vg_ast_decl_t *parse_decl(parser_t *p, vg_ast_decl_t **broken) {
    int kind;
    switch (p->tk) {
    case VG_TK_FEATURE: kind = VG_DECL_FEATURE; break;
    case VG_TK_LIST: kind = VG_DECL_LIST; break;
    case VG_TK_RULE: kind = VG_DECL_RULE; break;
    default: expected(p, "'feature', 'list' or 'rule'"); return NULL;
    }
    vg_ast_decl_t *d = alloc(p, sizeof *d);
    if (!d) return NULL;
    d->kind = kind;
    d->file = p->file;
    d->line = p->tline;
    d->col = p->tcol;
    next(p);
    if (p->tk != VG_TK_IDENT) {
        expected(p, kind == VG_DECL_FEATURE ? "a feature name"
                    : kind == VG_DECL_LIST  ? "a list name" : "a rule name");
        return NULL;
    }
    d->name_line = p->tline;
    d->name_col = p->tcol;
    if (copy_name(p, p->src + p->tpos, p->tlen, &d->name) < 0) return NULL;
    next(p);
    p->depth = 0;
    *broken = d;
    if (kind == VG_DECL_FEATURE) {
        if (p->tk != VG_TK_ASSIGN) { expected(p, "'='"); return NULL; }
        next(p);
        if (!(d->expr = parse_expr(p))) return NULL;
        if (p->tk != VG_TK_FEATURE && p->tk != VG_TK_RULE && p->tk != VG_TK_LIST &&
            p->tk != VG_TK_EOF) {
            expected(p, "an operator or a new declaration");
            return NULL;
        }
    } else if (kind == VG_DECL_RULE) {
        if (parse_rule_body(p, d) < 0) return NULL;
    }
    *broken = NULL;
    return d;
}

/* A module is UTF-8 text without NUL bytes: its source is stored and served as a JSON
 * string, and its string literals are compared with event strings, which are UTF-8.
 * Reports the first offending byte at its line and column; returns 0 when clean. */
static int check_text(const vg_source_t *src, vg_diags_t *diags) {
    const unsigned char *z = (const unsigned char *)src->text;
    int line = 1;
    size_t bol = 0;
    for (size_t i = 0; i < src->len;) {
        size_t k = z[i] ? vg_utf8_seq(z + i, src->len - i) : 0;
        if (k == 0) {
            int col = (int)(i - bol) + 1;
            if (z[i] == 0)
                vg_diags_add(diags, 1, src->name, line, col,
                             "a NUL byte in the source (a module is UTF-8 text)");
            else
                vg_diags_add(diags, 1, src->name, line, col,
                             "invalid UTF-8 in the source (byte 0x%02x; a module is UTF-8 text)",
                             z[i]);
            return -1;
        }
        if (z[i] == '\n') {
            line++;
            bol = i + 1;
        }
        i += k;
    }
    return 0;
}

int vg_parse(const vg_source_t *src, vg_arena_t *arena, vg_diags_t *diags,
             vg_ast_module_t *out) {
    parser_t p;
    memset(&p, 0, sizeof p);
    memset(out, 0, sizeof *out);
    p.src = src->text;
    p.len = src->len;
    p.file = src->name;
    p.line = 1;
    p.ar = arena;
    p.d = diags;
    out->file = src->name;
    if (src->len > VG_RULES_MAX_SOURCE) {
        vg_diags_add(diags, 1, src->name, 1, 1, "module too large (%zu bytes, limit %d)",
                     src->len, VG_RULES_MAX_SOURCE);
        return VG_ECOMPILE;
    }
    if (check_text(src, diags) != 0) return VG_ECOMPILE;
    if (p.len >= 3 && memcmp(p.src, "\xEF\xBB\xBF", 3) == 0) /* a byte-order mark: skipped */
        p.pos = p.line_start = 3;
    int errors = 0;
    next(&p);
    while (p.tk != VG_TK_EOF) {
        size_t start = p.tpos;
        vg_ast_decl_t *broken = NULL;
        vg_ast_decl_t *d = parse_decl(&p, &broken);
        if (p.nomem) return VG_ENOMEM;
        if (broken) {
            broken->expr = NULL;
            broken->clauses = NULL;
            broken->nclauses = 0;
            broken->next = out->broken;
            out->broken = broken;
        }
        if (d) {
            if (out->last) out->last->next = d;
            else out->first = d;
            out->last = d;
            out->ndecls++;
            continue;
        }
        errors++;
        /* recover: skip to the next top-level keyword ('list' only when a name follows) */
        if (p.tpos == start) next(&p);
        while (p.tk != VG_TK_EOF && p.tk != VG_TK_FEATURE && p.tk != VG_TK_RULE &&
               !(p.tk == VG_TK_LIST && peek(&p) == VG_TK_IDENT))
            next(&p);
    }
    return errors ? VG_ECOMPILE : 0;
}
