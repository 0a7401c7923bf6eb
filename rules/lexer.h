/* lexer.h - the tokenizer of the rules language (.vrl).
 *
 * vg_lex_token() is a pure function in the style of SQLite's sqlite3GetToken(): given
 * the bytes at the current position it returns the length of the next token and its
 * type. It allocates nothing, keeps no state and never reads past `n` bytes, so the
 * sources need not be NUL-terminated. Whitespace and comments are tokens too (the
 * caller skips them); malformed input gives one of the VG_TK_ERR_* types, never a
 * failure. Thread-safe.
 */
#ifndef VG_LEXER_H
#define VG_LEXER_H

#include <stddef.h>

/* X(name, text used in diagnostics) */
#define VG_TOKEN_LIST(X)                       \
    X(EOF, "end of file")                      \
    X(SPACE, "whitespace")                     \
    X(COMMENT, "comment")                      \
    X(IDENT, "identifier")                     \
    X(FIELD, "event field")                    \
    X(ANOMALY, "anomaly signal")               \
    X(NUMBER, "number")                        \
    X(DURATION, "duration")                    \
    X(STRING, "string")                        \
    X(LP, "'('")                               \
    X(RP, "')'")                               \
    X(LB, "'['")                               \
    X(RB, "']'")                               \
    X(COMMA, "','")                            \
    X(ASSIGN, "'='")                           \
    X(PLUS, "'+'")                             \
    X(MINUS, "'-'")                            \
    X(STAR, "'*'")                             \
    X(SLASH, "'/'")                            \
    X(EQ, "'=='")                              \
    X(NE, "'!='")                              \
    X(LT, "'<'")                               \
    X(LE, "'<='")                              \
    X(GT, "'>'")                               \
    X(GE, "'>='")                              \
    X(AND, "'and'")                            \
    X(OR, "'or'")                              \
    X(NOT, "'not'")                            \
    X(IN, "'in'")                              \
    X(TRUE, "'true'")                          \
    X(FALSE, "'false'")                        \
    X(NULL, "'null'")                          \
    X(FEATURE, "'feature'")                    \
    X(RULE, "'rule'")                          \
    X(LIST, "'list'")                          \
    X(END, "'end'")                            \
    X(WHEN, "'when'")                          \
    X(ACTION, "'action'")                      \
    X(SEVERITY, "'severity'")                  \
    X(SCORE, "'score'")                        \
    X(MODE, "'mode'")                          \
    X(MESSAGE, "'message'")                    \
    X(SUPPRESS, "'suppress'")                  \
    X(WHERE, "'where'")                        \
    X(BY, "'by'")                              \
    X(ERR_CHAR, "unexpected character")        \
    X(ERR_STRING, "unterminated string")       \
    X(ERR_ESCAPE, "invalid escape in string")  \
    X(ERR_NUMBER, "malformed number")

typedef enum vg_token_type {
#define VG_TK_ENUM(name, text) VG_TK_##name,
    VG_TOKEN_LIST(VG_TK_ENUM)
#undef VG_TK_ENUM
    VG_TK__COUNT
} vg_token_type_t;

/* Scans one token from z[0 .. n-1] and stores its type in *type. Returns the token's
 * length in bytes: at least 1 when n > 0; 0 (with VG_TK_EOF) when n == 0. Keywords are
 * case-sensitive. Durations are an integer immediately followed by a unit (ms s m h d).
 * Can't fail: bad input yields a VG_TK_ERR_* token covering the bad bytes. */
size_t vg_lex_token(const char *z, size_t n, int *type);

/* Returns the keyword token type of z[0 .. n-1], or VG_TK_IDENT. Can't fail. */
int vg_lex_keyword(const char *z, size_t n);

/* Returns the diagnostic text of a token type ("end of file", "'('", ...). Can't fail. */
const char *vg_lex_name(int type);

#endif
