/* test_parser.c - unit tests of the rules parser (rules/parser.c): precedence and
 * associativity, positions, every construct of the module syntax, every syntax error
 * message, recovery to the next declaration, and the parse-time limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/errors.h"
#include "rules/parser.h"

/* Prints an expression as an s-expression: (op a b). */
static void sx(const vg_ast_t *e, char *b, size_t cap) {
    static const char *ops[] = {"or", "and", "not", "==", "!=", "<", "<=", ">", ">=", "in",
                                "+", "-", "*", "/", "neg"};
    size_t n = strlen(b);
    switch (e->kind) {
    case VG_AST_NUM: snprintf(b + n, cap - n, "%g", e->v.n); break;
    case VG_AST_DUR: snprintf(b + n, cap - n, "%lldms", (long long)e->v.ms); break;
    case VG_AST_STR: snprintf(b + n, cap - n, "\"%.*s\"", (int)e->str.len, e->str.p); break;
    case VG_AST_BOOL: snprintf(b + n, cap - n, "%s", e->v.b ? "true" : "false"); break;
    case VG_AST_NULL: snprintf(b + n, cap - n, "null"); break;
    case VG_AST_FIELD: snprintf(b + n, cap - n, "tx.%.*s", (int)e->str.len, e->str.p); break;
    case VG_AST_ANOMALY: snprintf(b + n, cap - n, "anomaly.%.*s", (int)e->str.len, e->str.p); break;
    case VG_AST_NAME: snprintf(b + n, cap - n, "%.*s", (int)e->str.len, e->str.p); break;
    case VG_AST_LISTREF: snprintf(b + n, cap - n, "list:%.*s", (int)e->str.len, e->str.p); break;
    case VG_AST_UNARY:
        snprintf(b + n, cap - n, "(%s ", ops[e->op]);
        sx(e->a, b, cap);
        strncat(b, ")", cap - strlen(b) - 1);
        break;
    case VG_AST_BINARY:
        snprintf(b + n, cap - n, "(%s ", ops[e->op]);
        sx(e->a, b, cap);
        strncat(b, " ", cap - strlen(b) - 1);
        sx(e->b, b, cap);
        strncat(b, ")", cap - strlen(b) - 1);
        break;
    case VG_AST_CALL:
    case VG_AST_ARRAY:
        if (e->kind == VG_AST_CALL) snprintf(b + n, cap - n, "(%.*s", (int)e->str.len, e->str.p);
        else snprintf(b + n, cap - n, "([]");
        for (int i = 0; i < e->nargs; i++) {
            strncat(b, " ", cap - strlen(b) - 1);
            sx(e->args[i], b, cap);
        }
        if (e->where) { strncat(b, " where ", cap - strlen(b) - 1); sx(e->where, b, cap); }
        if (e->by) { strncat(b, " by ", cap - strlen(b) - 1); sx(e->by, b, cap); }
        strncat(b, ")", cap - strlen(b) - 1);
        break;
    }
}

typedef struct {
    vg_arena_t ar;
    vg_diags_t d;
    vg_ast_module_t m;
    int rc;
} parsed_t;

static void parse(parsed_t *p, const char *src) {
    vg_arena_init(&p->ar);
    vg_diags_init(&p->d);
    vg_source_t s = {"t.vrl", src, strlen(src)};
    p->rc = vg_parse(&s, &p->ar, &p->d, &p->m);
}

static void done(parsed_t *p) {
    vg_arena_deinit(&p->ar);
    vg_diags_deinit(&p->d);
}

/* Parses `feature f = <expr>` and compares its s-expression. */
static void expect_sx(const char *expr, const char *want) {
    char src[512], got[1024] = "";
    snprintf(src, sizeof src, "feature f = %s", expr);
    parsed_t p;
    parse(&p, src);
    if (p.rc != 0) fail_msg("'%s' failed: %s", expr, p.d.n ? p.d.v[0].msg : "?");
    assert_int_equal(p.m.ndecls, 1);
    sx(p.m.first->expr, got, sizeof got);
    if (strcmp(got, want) != 0) fail_msg("'%s': got %s, want %s", expr, got, want);
    done(&p);
}

static void test_precedence(void **state) {
    (void)state;
    expect_sx("a or b and c", "(or a (and b c))");
    expect_sx("a and b or c", "(or (and a b) c)");
    expect_sx("not a and b", "(and (not a) b)");
    expect_sx("not a == b", "(not (== a b))");
    expect_sx("not not a", "(not (not a))");
    expect_sx("a == b + c", "(== a (+ b c))");
    expect_sx("a < b", "(< a b)");
    expect_sx("a <= b", "(<= a b)");
    expect_sx("a > b", "(> a b)");
    expect_sx("a >= b", "(>= a b)");
    expect_sx("a != b", "(!= a b)");
    expect_sx("a + b * c", "(+ a (* b c))");
    expect_sx("a - b - c", "(- (- a b) c)");
    expect_sx("a / b / c", "(/ (/ a b) c)");
    expect_sx("a * b + c / d", "(+ (* a b) (/ c d))");
    expect_sx("-a * b", "(* (neg a) b)");
    expect_sx("- -a", "(neg (neg a))");
    expect_sx("(a + b) * c", "(* (+ a b) c)");
    expect_sx("a or b or c", "(or (or a b) c)");
    expect_sx("x in [\"a\", \"b\"] and y", "(and (in x ([] \"a\" \"b\")) y)");
    expect_sx("tx.card in list(\"blocked\")", "(in tx.card list:blocked)");
    expect_sx("x + 1 in [2]", "(in (+ x 1) ([] 2))");
}

static void test_primaries(void **state) {
    (void)state;
    expect_sx("1.5e3", "1500");
    expect_sx("500ms + 30s + 10m + 1h + 7d",
              "(+ (+ (+ (+ 500ms 30000ms) 600000ms) 3600000ms) 604800000ms)");
    expect_sx("\"a\\\"b\\\\c\\n\\u00e9\"", "\"a\"b\\c\n\xc3\xa9\"");
    expect_sx("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");
    expect_sx("true and false or null", "(or (and true false) null)");
    expect_sx("tx.amount", "tx.amount");
    expect_sx("anomaly.score", "anomaly.score");
    expect_sx("count(10m)", "(count 600000ms)");
    expect_sx("count(1m where tx.amount < 5)", "(count 60000ms where (< tx.amount 5))");
    expect_sx("sum(tx.amount, 1h where tx.x by tx.card)",
              "(sum tx.amount 3600000ms where tx.x by tx.card)");
    expect_sx("count(1h by tx.card)", "(count 3600000ms by tx.card)");
    expect_sx("geo_km(tx.lat, tx.lon, prev(tx.lat), prev(tx.lon))",
              "(geo_km tx.lat tx.lon (prev tx.lat) (prev tx.lon))");
    expect_sx("f()", "(f)");
    expect_sx("x in []", "(in x ([]))");
}

static void test_positions(void **state) {
    (void)state;
    parsed_t p;
    parse(&p, "# c\nfeature f =\n  a +\n\tb * 2\n");
    assert_int_equal(p.rc, 0);
    const vg_ast_decl_t *d = p.m.first;
    assert_int_equal(d->line, 2);
    assert_int_equal(d->col, 1);
    assert_int_equal(d->name_line, 2);
    assert_int_equal(d->name_col, 9);
    const vg_ast_t *e = d->expr;   /* + */
    assert_int_equal(e->line, 3);
    assert_int_equal(e->col, 5);
    assert_int_equal(e->a->line, 3);
    assert_int_equal(e->a->col, 3);
    assert_int_equal(e->b->line, 4);   /* * */
    assert_int_equal(e->b->col, 4);
    assert_int_equal(e->b->a->col, 2);
    done(&p);
}

static void test_module(void **state) {
    (void)state;
    parsed_t p;
    parse(&p, "list blocked\n"
              "feature a = 1\n"
              "rule r\n severity high action block score 40 + 2 * a mode shadow\n"
              " when a > 0 message \"hi {a}\" suppress 10m\nend\n"
              "rule empty end\n");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.m.ndecls, 4);
    const vg_ast_decl_t *d = p.m.first;
    assert_int_equal(d->kind, VG_DECL_LIST);
    assert_int_equal(d->next->kind, VG_DECL_FEATURE);
    const vg_ast_decl_t *r = d->next->next;
    assert_int_equal(r->kind, VG_DECL_RULE);
    assert_int_equal(r->nclauses, 7);
    assert_int_equal(r->clauses[0].kind, VG_CL_SEVERITY);
    assert_memory_equal(r->clauses[0].word.p, "high", 4);
    assert_int_equal(r->clauses[2].kind, VG_CL_SCORE);
    assert_int_equal(r->clauses[2].expr->kind, VG_AST_BINARY);
    assert_int_equal(r->clauses[3].kind, VG_CL_MODE);
    assert_int_equal(r->clauses[4].kind, VG_CL_WHEN);
    assert_int_equal(r->clauses[5].kind, VG_CL_MESSAGE);
    assert_int_equal(r->clauses[5].word.len, 6);
    assert_int_equal(r->clauses[6].kind, VG_CL_SUPPRESS);
    assert_int_equal(r->clauses[6].ms, 600000);
    assert_int_equal(r->next->nclauses, 0);
    done(&p);
}

typedef struct { const char *src; const char *want; } err_t;

static void test_syntax_errors(void **state) {
    (void)state;
    static const err_t cs[] = {
        {"feature = 1", "t.vrl:1:9: expected a feature name, found '='"},
        {"feature f 1", "t.vrl:1:11: expected '=', found number 1"},
        {"feature f =", "t.vrl:1:12: expected an expression, found end of file"},
        {"feature f = (1", "t.vrl:1:15: expected ')', found end of file"},
        {"feature f = 1 +", "t.vrl:1:16: expected an expression, found end of file"},
        {"feature f = 1 2", "t.vrl:1:15: expected an operator or a new declaration, found number 2"},
        {"feature f = a < b < c",
         "t.vrl:1:19: expected 'and', 'or' or the end of the expression (comparisons do not chain), found '<'"},
        {"feature f = count(1m b)",
         "t.vrl:1:22: expected ',', 'where', 'by' or ')', found identifier 'b'"},
        {"feature f = count(1m where a b)",
         "t.vrl:1:30: expected 'by' or ')' after the 'where' condition, found identifier 'b'"},
        {"feature f = count(10m by tx.card, tx.device)",
         "t.vrl:1:33: expected ')' after the 'by' key, found ',' (a second key is not supported: W [where P] [by K])"},
        {"feature f = count(10m by tx.card tx.device)",
         "t.vrl:1:34: expected ')' after the 'by' key, found field 'tx.device'"},
        {"feature f = tx.amount = 5", "t.vrl:1:23: '=' is not a comparison: did you mean '=='?"},
        {"rule r\n  action review\n  score 50\n  when tx.amount = 5\nend",
         "t.vrl:4:18: '=' is not a comparison: did you mean '=='?"},
        {"rule r action review score 50 when (tx.amount = 5) end",
         "t.vrl:1:47: '=' is not a comparison: did you mean '=='?"},
        {"feature f = count(1m by a where b)",
         "t.vrl:1:27: 'where' comes before 'by' (W [where P] [by K])"},
        {"feature f = x in y", "t.vrl:1:18: expected '[' or 'list' after 'in', found identifier 'y'"},
        {"feature f = x in [1, 2", "t.vrl:1:23: expected ',' or ']', found end of file"},
        {"feature f = x in list(y)", "t.vrl:1:23: expected a list name string, found identifier 'y'"},
        {"feature f = x in list", "t.vrl:1:22: expected '(', found end of file"},
        {"feature f = x in list(\"a\"", "t.vrl:1:26: expected ')', found end of file"},
        {"list 1", "t.vrl:1:6: expected a list name, found number 1"},
        {"rule", "t.vrl:1:5: expected a rule name, found end of file"},
        {"rule r when true", "t.vrl:1:17: expected a rule clause (severity, action, score, mode, when, message, suppress) or 'end', found end of file"},
        {"rule r severity 1 end", "t.vrl:1:17: expected a severity (low, medium, high, critical), found number 1"},
        {"rule r action \"x\" end", "t.vrl:1:15: expected an action (allow, review, block, alert), found string \"x\""},
        {"rule r mode end", "t.vrl:1:13: expected a mode (active, shadow, disabled), found 'end'"},
        {"rule r message x end", "t.vrl:1:16: expected a message string, found identifier 'x'"},
        {"rule r suppress 5 end", "t.vrl:1:17: expected a duration (e.g. 10m), found number 5"},
        {"when", "t.vrl:1:1: expected 'feature', 'list' or 'rule', found 'when'"},
        {"feature f = a ! b", "t.vrl:1:15: unexpected character '!'"},
        {"feature f = \"abc", "t.vrl:1:13: unterminated string (strings end on the same line)"},
        {"feature f = \"a\\qc\"", "t.vrl:1:15: invalid escape '\\q' in string (use \\\" \\\\ \\n \\t or \\uXXXX)"},
        {"feature f = 12x", "t.vrl:1:13: malformed number '12x' (durations are whole numbers with a unit ms, s, m, h or d)"},
        {"feature f = \"\\ud800\"", "t.vrl:1:14: invalid \\u escape '\\ud800' in string (lone surrogate)"},
        /* at the bad escape, not the quote of its string (the second of a list) */
        {"feature f = tx.merchant in [\"a\", \"bcd\\x\"]", "t.vrl:1:38: invalid escape '\\x' in string (use \\\" \\\\ \\n \\t or \\uXXXX)"},
        {"feature f = 1e999", "t.vrl:1:13: number 1e999 out of range"},
        {"feature f = 99999999999999999999d", "t.vrl:1:13: duration 99999999999999999999d out of range"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        parsed_t p;
        parse(&p, cs[i].src);
        char got[400] = "(none)";
        if (p.d.n)
            snprintf(got, sizeof got, "%s:%d:%d: %s", p.d.v[0].file, p.d.v[0].line,
                     p.d.v[0].col, p.d.v[0].msg);
        if (p.rc == 0 || strcmp(got, cs[i].want) != 0)
            fail_msg("'%s':\n got  %s\n want %s", cs[i].src, got, cs[i].want);
        assert_int_equal(p.d.n_errors, 1);
        done(&p);
    }
}

/* A module is UTF-8 text without NUL bytes; a byte-order mark at the start is skipped. */
static void test_text(void **state) {
    (void)state;
    static const struct { const char *src; size_t len; const char *want; } cs[] = {
        {"feature f = \"\xff\"", 17, "t.vrl:1:14: invalid UTF-8 in the source (byte 0xff; a module is UTF-8 text)"},
        {"feature f = 1\n# caf\xc3\n", 22, "t.vrl:2:6: invalid UTF-8 in the source (byte 0xc3; a module is UTF-8 text)"},
        {"feature f = \"\xed\xa0\x80\"", 19, "t.vrl:1:14: invalid UTF-8 in the source (byte 0xed; a module is UTF-8 text)"},
        {"feature f = \"\xc0\xaf\"", 18, "t.vrl:1:14: invalid UTF-8 in the source (byte 0xc0; a module is UTF-8 text)"},
        {"feature f = \"\xf4\x90\x80\x80\"", 20, "t.vrl:1:14: invalid UTF-8 in the source (byte 0xf4; a module is UTF-8 text)"},
        {"feature f = 1\0feature g = nosuch(1)", 36, "t.vrl:1:14: a NUL byte in the source (a module is UTF-8 text)"},
        {"\xef\xbb\xbf" "feature f = 1 + )", 20, "t.vrl:1:17: expected an expression, found ')'"},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        parsed_t p;
        vg_arena_init(&p.ar);
        vg_diags_init(&p.d);
        vg_source_t s = {"t.vrl", cs[i].src, cs[i].len};
        p.rc = vg_parse(&s, &p.ar, &p.d, &p.m);
        char got[400] = "(none)";
        if (p.d.n)
            snprintf(got, sizeof got, "%s:%d:%d: %s", p.d.v[0].file, p.d.v[0].line,
                     p.d.v[0].col, p.d.v[0].msg);
        if (p.rc == 0 || strcmp(got, cs[i].want) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, got, cs[i].want);
        assert_int_equal(p.d.n_errors, 1);
        done(&p);
    }
    /* valid multi-byte text and a byte-order mark compile */
    parsed_t p;
    parse(&p, "\xef\xbb\xbf# caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xb3\nfeature f = \"\xc3\xa9\"\n");
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.m.ndecls, 1);
    done(&p);
}

/* A diagnostic shows the source line; a long one only around the column, and the caret
 * stays under the offending byte. */
static void test_print_long_line(void **state) {
    (void)state;
    char src[1100] = "feature f = 1";
    for (int i = 0; i < 250; i++) strcat(src, " + 1");
    strcat(src, " + )");
    for (int i = 0; i < 20; i++) strcat(src, " + 1");
    parsed_t p;
    parse(&p, src);
    assert_int_equal(p.rc, VG_ECOMPILE);
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    assert_non_null(f);
    vg_source_t s = {"t.vrl", src, strlen(src)};
    vg_diags_print(&p.d, &s, 1, f);
    fclose(f);
    char *l1 = strchr(out, '\n') + 1, *l2 = strchr(l1, '\n') + 1, *end = strchr(l2, '\n');
    assert_true(l2 - l1 - 1 <= 2 + 3 + 160 + 3);
    assert_memory_equal(l1, "  ...", 5);
    assert_memory_equal(l2 - 4, "...", 3);
    size_t caret = (size_t)(end - l2) - 1;
    assert_int_equal(l2[caret], '^');
    assert_int_equal(l1[caret], ')');
    free(out);
    done(&p);
}

static void test_recovery(void **state) {
    (void)state;
    parsed_t p;
    parse(&p, "feature a = 1 +\n"
              "feature b = 2\n"
              "rule r\n  when x in list(\"l\") and\nend\n"
              "list good\n"
              "feature c = (\n"
              "feature d = 3\n");
    assert_int_equal(p.rc, VG_ECOMPILE);
    assert_int_equal(p.d.n_errors, 3);
    assert_int_equal(p.d.v[0].line, 2);   /* 'feature' where an expression was expected */
    assert_int_equal(p.d.v[1].line, 5);   /* 'end' */
    assert_int_equal(p.d.v[2].line, 8);
    /* b, good and d survive */
    assert_int_equal(p.m.ndecls, 3);
    assert_memory_equal(p.m.first->name.p, "b", 1);
    assert_memory_equal(p.m.first->next->name.p, "good", 4);
    assert_memory_equal(p.m.last->name.p, "d", 1);
    done(&p);
}

static void test_limits(void **state) {
    (void)state;
    /* nesting */
    char src[600] = "feature f = ";
    for (int i = 0; i < 65; i++) strcat(src, "(");
    strcat(src, "1");
    for (int i = 0; i < 65; i++) strcat(src, ")");
    parsed_t p;
    parse(&p, src);
    assert_int_equal(p.rc, VG_ECOMPILE);
    assert_non_null(strstr(p.d.v[0].msg, "nested too deeply (limit 64"));
    done(&p);
    strcpy(src, "feature f = ");
    for (int i = 0; i < 63; i++) strcat(src, "(");
    strcat(src, "1");
    for (int i = 0; i < 63; i++) strcat(src, ")");
    parse(&p, src);
    assert_int_equal(p.rc, 0);
    done(&p);
    /* long chains: tree height */
    size_t n = 12 + 4 * 600 + 8;
    char *big = malloc(n);
    strcpy(big, "feature f = 1");
    for (int i = 0; i < 600; i++) strcat(big, " + 1");
    parse(&p, big);
    assert_int_equal(p.rc, VG_ECOMPILE);
    assert_non_null(strstr(p.d.v[0].msg, "expression too long"));
    done(&p);
    free(big);
    /* string length */
    big = malloc(VG_RULES_MAX_STRING + 40);
    strcpy(big, "feature f = \"");
    memset(big + 13, 'a', VG_RULES_MAX_STRING + 1);
    strcpy(big + 13 + VG_RULES_MAX_STRING + 1, "\"");
    parse(&p, big);
    assert_int_equal(p.rc, VG_ECOMPILE);
    assert_non_null(strstr(p.d.v[0].msg, "string too long"));
    done(&p);
    free(big);
    /* name length */
    big = malloc(VG_RULES_MAX_NAME + 40);
    strcpy(big, "feature ");
    memset(big + 8, 'n', VG_RULES_MAX_NAME + 1);
    strcpy(big + 8 + VG_RULES_MAX_NAME + 1, " = 1");
    parse(&p, big);
    assert_int_equal(p.rc, VG_ECOMPILE);
    assert_non_null(strstr(p.d.v[0].msg, "name too long"));
    done(&p);
    free(big);
    /* module size: checked before reading */
    vg_arena_init(&p.ar);
    vg_diags_init(&p.d);
    vg_source_t s = {"big.vrl", "", (size_t)VG_RULES_MAX_SOURCE + 1};
    assert_int_equal(vg_parse(&s, &p.ar, &p.d, &p.m), VG_ECOMPILE);
    assert_non_null(strstr(p.d.v[0].msg, "module too large"));
    done(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_primaries),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_module),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_print_long_line),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
