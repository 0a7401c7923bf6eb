/* lexer.c - table-driven tokenizer of the rules language (see lexer.h).
 *
 * Every byte belongs to one character class (the table cc[]); the first byte's class
 * picks the scanning branch, as in SQLite's tokenize.c. Keywords are recognised after
 * an identifier has been scanned, by a lookup in a small table grouped by length.
 */
#include "rules/lexer.h"

#include <string.h>

enum {
    CC_ILLEGAL = 0, CC_SPACE, CC_NL, CC_DIGIT, CC_ALPHA, CC_QUOTE, CC_HASH, CC_LP, CC_RP,
    CC_LB, CC_RB, CC_COMMA, CC_EQ, CC_PLUS, CC_MINUS, CC_STAR, CC_SLASH, CC_BANG, CC_LT,
    CC_GT
};

static const unsigned char cc[256] = {
    ['\t'] = CC_SPACE, ['\r'] = CC_SPACE, [' '] = CC_SPACE, ['\f'] = CC_SPACE,
    ['\v'] = CC_SPACE, ['\n'] = CC_NL,
    ['0'] = CC_DIGIT, ['1'] = CC_DIGIT, ['2'] = CC_DIGIT, ['3'] = CC_DIGIT,
    ['4'] = CC_DIGIT, ['5'] = CC_DIGIT, ['6'] = CC_DIGIT, ['7'] = CC_DIGIT,
    ['8'] = CC_DIGIT, ['9'] = CC_DIGIT,
    ['a'] = CC_ALPHA, ['b'] = CC_ALPHA, ['c'] = CC_ALPHA, ['d'] = CC_ALPHA,
    ['e'] = CC_ALPHA, ['f'] = CC_ALPHA, ['g'] = CC_ALPHA, ['h'] = CC_ALPHA,
    ['i'] = CC_ALPHA, ['j'] = CC_ALPHA, ['k'] = CC_ALPHA, ['l'] = CC_ALPHA,
    ['m'] = CC_ALPHA, ['n'] = CC_ALPHA, ['o'] = CC_ALPHA, ['p'] = CC_ALPHA,
    ['q'] = CC_ALPHA, ['r'] = CC_ALPHA, ['s'] = CC_ALPHA, ['t'] = CC_ALPHA,
    ['u'] = CC_ALPHA, ['v'] = CC_ALPHA, ['w'] = CC_ALPHA, ['x'] = CC_ALPHA,
    ['y'] = CC_ALPHA, ['z'] = CC_ALPHA,
    ['A'] = CC_ALPHA, ['B'] = CC_ALPHA, ['C'] = CC_ALPHA, ['D'] = CC_ALPHA,
    ['E'] = CC_ALPHA, ['F'] = CC_ALPHA, ['G'] = CC_ALPHA, ['H'] = CC_ALPHA,
    ['I'] = CC_ALPHA, ['J'] = CC_ALPHA, ['K'] = CC_ALPHA, ['L'] = CC_ALPHA,
    ['M'] = CC_ALPHA, ['N'] = CC_ALPHA, ['O'] = CC_ALPHA, ['P'] = CC_ALPHA,
    ['Q'] = CC_ALPHA, ['R'] = CC_ALPHA, ['S'] = CC_ALPHA, ['T'] = CC_ALPHA,
    ['U'] = CC_ALPHA, ['V'] = CC_ALPHA, ['W'] = CC_ALPHA, ['X'] = CC_ALPHA,
    ['Y'] = CC_ALPHA, ['Z'] = CC_ALPHA, ['_'] = CC_ALPHA,
    ['"'] = CC_QUOTE, ['#'] = CC_HASH, ['('] = CC_LP, [')'] = CC_RP, ['['] = CC_LB,
    [']'] = CC_RB, [','] = CC_COMMA, ['='] = CC_EQ, ['+'] = CC_PLUS, ['-'] = CC_MINUS,
    ['*'] = CC_STAR, ['/'] = CC_SLASH, ['!'] = CC_BANG, ['<'] = CC_LT, ['>'] = CC_GT,
};

#define IS_IDCHAR(c) (cc[(unsigned char)(c)] == CC_ALPHA || cc[(unsigned char)(c)] == CC_DIGIT)
#define IS_HEX(c) (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'f') || \
                   ((c) >= 'A' && (c) <= 'F'))

static const char *const tk_names[] = {
#define VG_TK_NAME(name, text) text,
    VG_TOKEN_LIST(VG_TK_NAME)
#undef VG_TK_NAME
};

const char *vg_lex_name(int type) {
    if (type < 0 || type >= VG_TK__COUNT) return "token";
    return tk_names[type];
}

static const struct { const char *w; unsigned char len; unsigned char tk; } keywords[] = {
    {"by", 2, VG_TK_BY}, {"in", 2, VG_TK_IN}, {"or", 2, VG_TK_OR},
    {"and", 3, VG_TK_AND}, {"not", 3, VG_TK_NOT}, {"end", 3, VG_TK_END},
    {"true", 4, VG_TK_TRUE}, {"null", 4, VG_TK_NULL}, {"rule", 4, VG_TK_RULE},
    {"list", 4, VG_TK_LIST}, {"when", 4, VG_TK_WHEN}, {"mode", 4, VG_TK_MODE},
    {"false", 5, VG_TK_FALSE}, {"score", 5, VG_TK_SCORE}, {"where", 5, VG_TK_WHERE},
    {"action", 6, VG_TK_ACTION}, {"feature", 7, VG_TK_FEATURE},
    {"message", 7, VG_TK_MESSAGE}, {"severity", 8, VG_TK_SEVERITY},
    {"suppress", 8, VG_TK_SUPPRESS},
};

int vg_lex_keyword(const char *z, size_t n) {
    if (n < 2 || n > 8) return VG_TK_IDENT;
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
        if (keywords[i].len == n && memcmp(keywords[i].w, z, n) == 0) return keywords[i].tk;
    return VG_TK_IDENT;
}

/* Length of the identifier starting at z[0] (an alpha byte). */
static size_t ident_len(const char *z, size_t n) {
    size_t i = 1;
    while (i < n && IS_IDCHAR(z[i])) i++;
    return i;
}

static size_t scan_number(const char *z, size_t n, int *type) {
    size_t i = 0;
    int is_int = 1;
    while (i < n && cc[(unsigned char)z[i]] == CC_DIGIT) i++;
    if (i < n && z[i] == '.') {
        is_int = 0;
        i++;
        if (i >= n || cc[(unsigned char)z[i]] != CC_DIGIT) goto bad;
        while (i < n && cc[(unsigned char)z[i]] == CC_DIGIT) i++;
    }
    if (i < n && (z[i] == 'e' || z[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (z[j] == '+' || z[j] == '-')) j++;
        if (j < n && cc[(unsigned char)z[j]] == CC_DIGIT) {
            is_int = 0;
            i = j;
            while (i < n && cc[(unsigned char)z[i]] == CC_DIGIT) i++;
        }
    }
    if (i < n && IS_IDCHAR(z[i])) {
        size_t j = i;
        while (j < n && IS_IDCHAR(z[j])) j++;
        size_t u = j - i;
        const char *s = z + i;
        int unit = (u == 2 && s[0] == 'm' && s[1] == 's') ||
                   (u == 1 && (s[0] == 's' || s[0] == 'm' || s[0] == 'h' || s[0] == 'd'));
        *type = (unit && is_int) ? VG_TK_DURATION : VG_TK_ERR_NUMBER;
        return j;
    }
    *type = VG_TK_NUMBER;
    return i;
bad:
    while (i < n && IS_IDCHAR(z[i])) i++;
    *type = VG_TK_ERR_NUMBER;
    return i;
}

static size_t scan_string(const char *z, size_t n, int *type) {
    size_t i = 1;
    int bad = 0;
    while (i < n) {
        char c = z[i];
        if (c == '"') {
            *type = bad ? VG_TK_ERR_ESCAPE : VG_TK_STRING;
            return i + 1;
        }
        if (c == '\n') break;
        if (c == '\\') {
            if (i + 1 >= n) { i = n; break; }
            char e = z[i + 1];
            if (e == '"' || e == '\\' || e == 'n' || e == 't') {
                i += 2;
            } else if (e == 'u') {
                if (i + 5 < n && IS_HEX(z[i + 2]) && IS_HEX(z[i + 3]) && IS_HEX(z[i + 4]) &&
                    IS_HEX(z[i + 5]))
                    i += 6;
                else {
                    bad = 1;
                    i += 2;
                }
            } else {
                if (e == '\n') break;
                bad = 1;
                i += 2;
            }
            continue;
        }
        i++;
    }
    *type = VG_TK_ERR_STRING;
    return i;
}

size_t vg_lex_token(const char *z, size_t n, int *type) {
    if (n == 0) {
        *type = VG_TK_EOF;
        return 0;
    }
    size_t i;
    switch (cc[(unsigned char)z[0]]) {
    case CC_SPACE:
    case CC_NL:
        for (i = 1; i < n && (cc[(unsigned char)z[i]] == CC_SPACE || z[i] == '\n'); i++) {}
        *type = VG_TK_SPACE;
        return i;
    case CC_HASH:
        for (i = 1; i < n && z[i] != '\n'; i++) {}
        *type = VG_TK_COMMENT;
        return i;
    case CC_DIGIT:
        return scan_number(z, n, type);
    case CC_ALPHA:
        i = ident_len(z, n);
        if (i + 1 < n && z[i] == '.' && cc[(unsigned char)z[i + 1]] == CC_ALPHA &&
            ((i == 2 && z[0] == 't' && z[1] == 'x') ||
             (i == 7 && memcmp(z, "anomaly", 7) == 0))) {
            *type = i == 2 ? VG_TK_FIELD : VG_TK_ANOMALY;
            return i + 1 + ident_len(z + i + 1, n - i - 1);
        }
        *type = vg_lex_keyword(z, i);
        return i;
    case CC_QUOTE:
        return scan_string(z, n, type);
    case CC_LP: *type = VG_TK_LP; return 1;
    case CC_RP: *type = VG_TK_RP; return 1;
    case CC_LB: *type = VG_TK_LB; return 1;
    case CC_RB: *type = VG_TK_RB; return 1;
    case CC_COMMA: *type = VG_TK_COMMA; return 1;
    case CC_PLUS: *type = VG_TK_PLUS; return 1;
    case CC_MINUS: *type = VG_TK_MINUS; return 1;
    case CC_STAR: *type = VG_TK_STAR; return 1;
    case CC_SLASH: *type = VG_TK_SLASH; return 1;
    case CC_EQ:
        if (n > 1 && z[1] == '=') { *type = VG_TK_EQ; return 2; }
        *type = VG_TK_ASSIGN;
        return 1;
    case CC_BANG:
        if (n > 1 && z[1] == '=') { *type = VG_TK_NE; return 2; }
        *type = VG_TK_ERR_CHAR;
        return 1;
    case CC_LT:
        if (n > 1 && z[1] == '=') { *type = VG_TK_LE; return 2; }
        *type = VG_TK_LT;
        return 1;
    case CC_GT:
        if (n > 1 && z[1] == '=') { *type = VG_TK_GE; return 2; }
        *type = VG_TK_GT;
        return 1;
    default:
        /* one whole UTF-8 sequence, so that a diagnostic never splits a character */
        i = 1;
        if ((unsigned char)z[0] >= 0xC0)
            while (i < n && i < 4 && ((unsigned char)z[i] & 0xC0) == 0x80) i++;
        *type = VG_TK_ERR_CHAR;
        return i;
    }
}
