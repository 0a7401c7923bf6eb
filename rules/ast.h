/* ast.h - the syntax tree of a rules module, with a source position on every node.
 *
 * Built by the parser (parser.h), annotated by the checker (types, resolved names) and
 * read by the compiler. Every node, string and array lives in the vg_arena_t given to
 * the parser: the tree is freed whole with that arena, never node by node (so a failed
 * parse leaks nothing: its partial nodes go with the arena). Not thread-safe.
 */
#ifndef VG_AST_H
#define VG_AST_H

#include <stdint.h>

#include "rules/value.h"

/* Static types of the checker: the vg_type_t values plus these two. */
#define VG_CT_ANY  16   /* an extra event field: its JSON type is known only at run time */
#define VG_CT_LIST 17   /* the right side of `in`: a [..] literal or list("name") */

typedef enum vg_ast_kind {
    VG_AST_NUM,      /* v.n */
    VG_AST_STR,      /* str (escapes decoded) */
    VG_AST_BOOL,     /* v.b */
    VG_AST_NULL,
    VG_AST_DUR,      /* v.ms */
    VG_AST_FIELD,    /* tx.<str>; ref = VG_FIELD_* index, or -1 for an extra field */
    VG_AST_ANOMALY,  /* anomaly.<str>; ref = signal index, -1 for anomaly.score */
    VG_AST_NAME,     /* a feature; ref = the feature's index once resolved */
    VG_AST_UNARY,    /* op (VG_OP_NEG, VG_OP_NOT) a */
    VG_AST_BINARY,   /* a op b */
    VG_AST_CALL,     /* str(args[0..nargs-1] [where where] [by by]); ref = VG_FN_* */
    VG_AST_ARRAY,    /* [args...] */
    VG_AST_LISTREF   /* list("str") */
} vg_ast_kind_t;

typedef enum vg_ast_op {
    VG_OP_OR, VG_OP_AND, VG_OP_NOT,
    VG_OP_EQ, VG_OP_NE, VG_OP_LT, VG_OP_LE, VG_OP_GT, VG_OP_GE, VG_OP_IN,
    VG_OP_ADD, VG_OP_SUB, VG_OP_MUL, VG_OP_DIV, VG_OP_NEG
} vg_ast_op_t;

/* The functions of the language (VG_AST_CALL ref). */
#define VG_FN_LIST(X)                                  \
    X(COUNT, "count")                                  \
    X(SUM, "sum")                                      \
    X(AVG, "avg")                                      \
    X(MIN, "min")                                      \
    X(MAX, "max")                                      \
    X(STDDEV, "stddev")                                \
    X(DISTINCT, "distinct")                            \
    X(SESSION_COUNT, "session_count")                  \
    X(SESSION_SUM, "session_sum")                      \
    X(SESSION_DURATION, "session_duration")            \
    X(PREV, "prev")                                    \
    X(SEEN, "seen")                                    \
    X(GEO_KM, "geo_km")                                \
    X(SECONDS_BETWEEN, "seconds_between")              \
    X(LOWER, "lower")                                  \
    X(UPPER, "upper")                                  \
    X(STARTS_WITH, "starts_with")                      \
    X(ENDS_WITH, "ends_with")                          \
    X(CONTAINS, "contains")                            \
    X(MATCHES, "matches")                              \
    X(ABS, "abs")                                      \
    X(ROUND, "round")                                  \
    X(LOG, "log")                                      \
    X(NMIN, "min")       /* min(a, b, ...) of numbers */ \
    X(NMAX, "max")       /* max(a, b, ...) of numbers */ \
    X(HOUR_OF_DAY, "hour_of_day")                      \
    X(DAY_OF_WEEK, "day_of_week")                      \
    X(IS_NULL, "is_null")                              \
    X(COALESCE, "coalesce")                            \
    X(FRAUD_COUNT, "fraud_count")      /* label aggregates (engine values) */ \
    X(LABELLED_COUNT, "labelled_count")                \
    X(FRAUD_SUM, "fraud_sum")                          \
    X(LABELLED_SUM, "labelled_sum")

typedef enum vg_fn {
#define VG_FN_ENUM(name, text) VG_FN_##name,
    VG_FN_LIST(VG_FN_ENUM)
#undef VG_FN_ENUM
    VG_FN__COUNT
} vg_fn_t;

typedef struct vg_ast vg_ast_t;
struct vg_ast {
    uint8_t kind;        /* vg_ast_kind_t */
    uint8_t op;          /* vg_ast_op_t */
    uint8_t type;        /* checker: vg_type_t or VG_CT_* (VG_T_NULL before checking) */
    uint8_t is_spec;     /* checker: this call is a state spec (aggregate, session, prev, seen)
                            or a label aggregate (an engine value, ref FRAUD_COUNT..LABELLED_SUM) */
    int line, col;       /* 1-based position of the node's first token (operators: the operator) */
    int ref;             /* see vg_ast_kind_t */
    int height;          /* 1 for a leaf; 1 + the tallest operand otherwise */
    vg_str_t str;        /* names and string literals (arena bytes, not NUL-terminated) */
    union { double n; int64_t ms; int b; } v;
    vg_ast_t *a, *b;     /* operands */
    vg_ast_t **args;     /* CALL arguments, ARRAY items */
    int nargs;
    vg_ast_t *where, *by;
    int where_line, where_col;   /* CALL: the keywords `where` and `by`, when present */
    int by_line, by_col;
};

typedef enum vg_clause_kind {
    VG_CL_SEVERITY, VG_CL_ACTION, VG_CL_SCORE, VG_CL_MODE, VG_CL_WHEN, VG_CL_MESSAGE,
    VG_CL_SUPPRESS, VG_CL__COUNT
} vg_clause_kind_t;

/* One clause of a rule block. severity/action/mode: word; score/when: expr;
 * message: word holds the decoded text and word_cols the source column of each of its
 * bytes (on word_line); suppress: ms. */
typedef struct vg_ast_clause {
    int kind;
    int line, col;
    vg_str_t word;
    int word_line, word_col;
    const int *word_cols;
    vg_ast_t *expr;
    int64_t ms;
} vg_ast_clause_t;

typedef enum vg_decl_kind { VG_DECL_FEATURE, VG_DECL_LIST, VG_DECL_RULE } vg_decl_kind_t;

typedef struct vg_ast_decl vg_ast_decl_t;
struct vg_ast_decl {
    int kind;                 /* vg_decl_kind_t */
    const char *file;         /* borrowed: the source's name */
    int line, col;            /* of the keyword */
    int name_line, name_col;
    vg_str_t name;
    vg_ast_t *expr;           /* feature: its expression */
    vg_ast_clause_t *clauses; /* rule: its clauses, in source order */
    int nclauses;
    vg_ast_decl_t *next;      /* declaration order within the module */
};

typedef struct vg_ast_module {
    const char *file;
    vg_ast_decl_t *first, *last;
    int ndecls;
    vg_ast_decl_t *broken;    /* declarations left out for a syntax error after their name
                                 (kind and name only; linked by next): the checker then
                                 reports no unknown name for a reference to them */
} vg_ast_module_t;

#endif
