/* test_lexer.c - unit tests of the rules tokenizer (rules/lexer.c): every token type,
 * lengths, keywords, durations, strings and escapes, and the error tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rules/lexer.h"

typedef struct { const char *src; int type; size_t len; } case_t;

static void check_cases(const case_t *cs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int type = -1;
        size_t len = vg_lex_token(cs[i].src, strlen(cs[i].src), &type);
        if (type != cs[i].type || len != cs[i].len)
            fail_msg("'%s': got %s/%zu, want %s/%zu", cs[i].src, vg_lex_name(type), len,
                     vg_lex_name(cs[i].type), cs[i].len);
    }
}

static void test_every_token(void **state) {
    (void)state;
    static const case_t cs[] = {
        {"", VG_TK_EOF, 0},
        {"  \t\r\n x", VG_TK_SPACE, 6},
        {"# comment\nx", VG_TK_COMMENT, 9},
        {"#", VG_TK_COMMENT, 1},
        {"abc_1 ", VG_TK_IDENT, 5},
        {"_x", VG_TK_IDENT, 2},
        {"tx", VG_TK_IDENT, 2},
        {"txn.amount", VG_TK_IDENT, 3},
        {"tx.amount>", VG_TK_FIELD, 9},
        {"tx.my_field2 ", VG_TK_FIELD, 12},
        {"tx.1", VG_TK_IDENT, 2},
        {"anomaly.score", VG_TK_ANOMALY, 13},
        {"anomaly", VG_TK_IDENT, 7},
        {"42", VG_TK_NUMBER, 2},
        {"3.25)", VG_TK_NUMBER, 4},
        {"1e3", VG_TK_NUMBER, 3},
        {"1.5E-2 ", VG_TK_NUMBER, 6},
        {"2e+10", VG_TK_NUMBER, 5},
        {"500ms", VG_TK_DURATION, 5},
        {"30s", VG_TK_DURATION, 3},
        {"10m,", VG_TK_DURATION, 3},
        {"1h", VG_TK_DURATION, 2},
        {"7d)", VG_TK_DURATION, 2},
        {"\"abc\"", VG_TK_STRING, 5},
        {"\"a\\\"b\\\\c\\n\\t\\u00e9\" x", VG_TK_STRING, 19},
        {"\"\"", VG_TK_STRING, 2},
        {"(", VG_TK_LP, 1}, {")", VG_TK_RP, 1}, {"[", VG_TK_LB, 1}, {"]", VG_TK_RB, 1},
        {",", VG_TK_COMMA, 1}, {"=", VG_TK_ASSIGN, 1}, {"=x", VG_TK_ASSIGN, 1},
        {"+", VG_TK_PLUS, 1}, {"-", VG_TK_MINUS, 1}, {"*", VG_TK_STAR, 1},
        {"/", VG_TK_SLASH, 1}, {"==", VG_TK_EQ, 2}, {"!=", VG_TK_NE, 2},
        {"<", VG_TK_LT, 1}, {"<=", VG_TK_LE, 2}, {">", VG_TK_GT, 1}, {">=", VG_TK_GE, 2},
        {"and", VG_TK_AND, 3}, {"or", VG_TK_OR, 2}, {"not", VG_TK_NOT, 3},
        {"in", VG_TK_IN, 2}, {"true", VG_TK_TRUE, 4}, {"false", VG_TK_FALSE, 5},
        {"null", VG_TK_NULL, 4}, {"feature", VG_TK_FEATURE, 7}, {"rule", VG_TK_RULE, 4},
        {"list", VG_TK_LIST, 4}, {"end", VG_TK_END, 3}, {"when", VG_TK_WHEN, 4},
        {"action", VG_TK_ACTION, 6}, {"severity", VG_TK_SEVERITY, 8},
        {"score", VG_TK_SCORE, 5}, {"mode", VG_TK_MODE, 4}, {"message", VG_TK_MESSAGE, 7},
        {"suppress", VG_TK_SUPPRESS, 8}, {"where", VG_TK_WHERE, 5}, {"by", VG_TK_BY, 2},
        {"andx", VG_TK_IDENT, 4}, {"And", VG_TK_IDENT, 3}, {"features", VG_TK_IDENT, 8},
    };
    check_cases(cs, sizeof cs / sizeof cs[0]);
}

static void test_error_tokens(void **state) {
    (void)state;
    static const case_t cs[] = {
        {"!x", VG_TK_ERR_CHAR, 1},
        {"@", VG_TK_ERR_CHAR, 1},
        {".5", VG_TK_ERR_CHAR, 1},
        {"\xc3\xa9x", VG_TK_ERR_CHAR, 2},         /* one whole UTF-8 character */
        {"\"abc", VG_TK_ERR_STRING, 4},
        {"\"ab\ncd\"", VG_TK_ERR_STRING, 3},
        {"\"a\\qb\"", VG_TK_ERR_ESCAPE, 6},
        {"\"\\u12g4\"", VG_TK_ERR_ESCAPE, 8},
        {"12abc", VG_TK_ERR_NUMBER, 5},
        {"1.5h", VG_TK_ERR_NUMBER, 4},            /* durations are whole numbers */
        {"1e3s", VG_TK_ERR_NUMBER, 4},
        {"5.", VG_TK_ERR_NUMBER, 2},
        {"10min", VG_TK_ERR_NUMBER, 5},
    };
    check_cases(cs, sizeof cs / sizeof cs[0]);
}

static void test_no_overread(void **state) {
    (void)state;
    /* the buffer is not NUL-terminated: tokens must stop at n */
    const char buf[] = {'t', 'x', '.', 'a', 'b'};
    int type;
    assert_int_equal(vg_lex_token(buf, 3, &type), 2);   /* "tx." -> ident "tx" */
    assert_int_equal(type, VG_TK_IDENT);
    assert_int_equal(vg_lex_token(buf, 5, &type), 5);
    assert_int_equal(type, VG_TK_FIELD);
    const char s[] = {'"', 'a', '\\'};
    assert_int_equal(vg_lex_token(s, 3, &type), 3);
    assert_int_equal(type, VG_TK_ERR_STRING);
    const char d[] = {'1', '0', 'm', 's'};
    assert_int_equal(vg_lex_token(d, 3, &type), 3);
    assert_int_equal(type, VG_TK_DURATION);
}

static void test_token_stream(void **state) {
    (void)state;
    const char *src = "feature f = count(10m where tx.amount >= 5) # c\n";
    int want[] = {VG_TK_FEATURE, VG_TK_IDENT, VG_TK_ASSIGN, VG_TK_IDENT, VG_TK_LP,
                  VG_TK_DURATION, VG_TK_WHERE, VG_TK_FIELD, VG_TK_GE, VG_TK_NUMBER, VG_TK_RP,
                  VG_TK_EOF};
    size_t pos = 0, n = strlen(src);
    int k = 0;
    for (;;) {
        int type;
        size_t len = vg_lex_token(src + pos, n - pos, &type);
        pos += len;
        if (type == VG_TK_SPACE || type == VG_TK_COMMENT) continue;
        assert_int_equal(type, want[k]);
        k++;
        if (type == VG_TK_EOF) break;
    }
    assert_int_equal(k, 12);
}

static void test_keyword_lookup(void **state) {
    (void)state;
    assert_int_equal(vg_lex_keyword("where", 5), VG_TK_WHERE);
    assert_int_equal(vg_lex_keyword("wher", 4), VG_TK_IDENT);
    assert_int_equal(vg_lex_keyword("x", 1), VG_TK_IDENT);
    assert_string_equal(vg_lex_name(VG_TK_EOF), "end of file");
    assert_string_equal(vg_lex_name(VG_TK_LP), "'('");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_token),
        cmocka_unit_test(test_error_tokens),
        cmocka_unit_test(test_no_overread),
        cmocka_unit_test(test_token_stream),
        cmocka_unit_test(test_keyword_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
