/* program.h - a compiled ruleset: what the engine must keep per key, and how to evaluate.
 *
 * This is the whole interface between the rules language (rules/) and the engine
 * (engine/). The engine never sees the AST or the bytecode; it sees:
 *
 *   - a list of state specs (vg_spec_t): every aggregate, session, prev() and seen()
 *     used by any feature, deduplicated (two features writing count(10m) share one
 *     spec). Each spec says what the engine keeps and for which key;
 *   - phase 1, vg_prog_eval_inputs(): from the event alone (and its anomaly values,
 *     which the engine computes first), the inputs of each spec (the x value, whether
 *     `where` holds, the `by` key);
 *   - the engine then updates its state and computes each spec's value for this event;
 *   - phase 2, vg_prog_eval_features(): from the event and the spec values, every named
 *     feature's value;
 *   - phase 3, vg_prog_eval_rules(): which rules fired and their scores; then
 *     vg_prog_decide() applies SPEC section 2's precedence. Rule metadata (action,
 *     message template, the values a condition reads, suppression) is introspected with
 *     vg_prog_rule(); suppression state is the engine's (it is per account).
 *
 * Threading: a vg_program_t is immutable after compilation and may be shared by any
 * number of threads; it is reference counted (vg_prog_ref / vg_prog_unref). Evaluation
 * functions are reentrant: all mutable scratch lives in the caller's arena and output
 * arrays. Evaluation never calls malloc except through the arena (which, once warm,
 * does not allocate either).
 */
#ifndef VG_PROGRAM_H
#define VG_PROGRAM_H

#include <stdint.h>
#include <stdio.h>

#include "rules/arena.h"
#include "rules/lists.h"
#include "rules/value.h"

typedef struct vg_program vg_program_t;

typedef enum vg_spec_kind {
    VG_SPEC_COUNT = 0,   /* count(W [where P] [by K])          -> number (integer) */
    VG_SPEC_SUM,         /* sum(x, W [where P] [by K])         -> number, 0 when empty */
    VG_SPEC_AVG,         /* avg(x, ...)                        -> number or null when empty */
    VG_SPEC_MIN,         /* min(x, ...)                        -> number or null */
    VG_SPEC_MAX,         /* max(x, ...)                        -> number or null */
    VG_SPEC_STDDEV,      /* stddev(x, ...) population          -> number or null */
    VG_SPEC_DISTINCT,    /* distinct(x, ...)                   -> number (integer) */
    VG_SPEC_SESSION_COUNT,    /* session_count(gap)            -> number (integer) */
    VG_SPEC_SESSION_SUM,      /* session_sum(x, gap)           -> number */
    VG_SPEC_SESSION_DURATION, /* session_duration(gap)         -> number (seconds) */
    VG_SPEC_PREV,        /* prev(x)                            -> x's type or null */
    VG_SPEC_SEEN         /* seen(x, W)                         -> bool or null */
} vg_spec_kind_t;

typedef struct vg_spec {
    vg_spec_kind_t kind;
    int64_t window_ms;   /* aggregates and seen: the window W; sessions: the gap; prev: 0 */
    uint8_t has_x;       /* the spec has an x argument */
    uint8_t has_where;   /* count/aggregates only */
    uint8_t x_type;      /* vg_type_t the checker inferred for x (VG_T_NULL if unknown) */
    int by_group;        /* -1: keyed by the account; else index of the `by` key
                            expression (specs with the same K text share a group) */
    const char *text;    /* canonical source text, e.g. "count(1m where tx.amount < 5)" */
} vg_spec_t;

/* Phase-1 result for one spec. Value semantics (SPEC section 2, and these):
 *   - keep == 0 when the spec has `where P` and P is not true (false or null): the
 *     event is not added to this spec's window (it still reads the window's value);
 *   - key: the `by` key value (string or number or bool); null means the event has no
 *     key: it is not added and the spec's value is null;
 *   - x: the argument; for sum/avg/min/max/stddev/session_sum a number or null; an
 *     event whose x is null is not added to that aggregate (like SQL's aggregates),
 *     but it is still an event of the account for sessions and prev().
 *     For distinct and seen any type (hashed by type and bytes); for prev any type.
 */
typedef struct vg_spec_input {
    vg_value_t x;
    vg_value_t key;
    uint8_t keep;
} vg_spec_input_t;

/* One diagnostic of the compiler. */
typedef struct vg_diag {
    int is_error;        /* 1: error, 0: warning */
    const char *file;    /* borrowed from the source given to the compiler */
    int line, col;       /* 1-based */
    char msg[256];
} vg_diag_t;

typedef struct vg_diags {
    vg_diag_t *v;
    int n, cap;
    int n_errors;
} vg_diags_t;

/* Initialises an empty list (allocates nothing; can't fail). */
void vg_diags_init(vg_diags_t *d);
/* Frees the list's storage; the list is empty and usable afterwards. Accepts NULL. */
void vg_diags_deinit(vg_diags_t *d);
/* Appends a diagnostic (printf-style message, truncated to 255 bytes). `file` is
 * borrowed. Returns 0, or VG_ENOMEM (the diagnostic is lost but n_errors still counts
 * an error, so that a failed compile is never mistaken for a success). */
int vg_diags_add(vg_diags_t *d, int is_error, const char *file, int line, int col,
                 const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
/* Prints each diagnostic as `file:line:col: error: message`, then the source line and
 * a caret under the column. `srcs` are the sources the diagnostics refer to. At most
 * VG_DIAGS_PRINT_MAX errors and as many warnings are printed, in their order; when more
 * were found, a last line says how many were not shown ("too many diagnostics: N more
 * errors not shown", "... N more errors and M more warnings not shown"). Linear in the sources' size and the number of
 * diagnostics. Can't fail (without memory, the diagnostics go without their lines). */
#define VG_DIAGS_PRINT_MAX 100
typedef struct vg_source {
    const char *name;    /* file name used in diagnostics, e.g. "rules/cards.vrl" */
    const char *text;    /* the source text; need not be NUL-terminated */
    size_t len;
} vg_source_t;
void vg_diags_print(const vg_diags_t *d, const vg_source_t *srcs, int n_srcs, FILE *out);

/* Limits, enforced while compiling (each one is a compile error, never a run-time one). */
#define VG_RULES_MAX_SOURCE   (1 << 20)  /* bytes per module */
#define VG_RULES_MAX_DEPTH    64         /* expression nesting: (), calls, [], not, - */
#define VG_RULES_MAX_HEIGHT   512        /* expression tree height (long a + b + ... chains) */
#define VG_RULES_MAX_FEATURES 10000      /* per ruleset */
#define VG_RULES_MAX_RULES    10000      /* per ruleset */
#define VG_RULES_MAX_STRING   4096       /* bytes of one string literal, after escapes */
#define VG_RULES_MAX_NAME     128        /* bytes of a feature, rule, list or field name */
#define VG_RULES_MAX_ITEMS    1000       /* items of one [..] list literal */

/* Compiles `n` sources as one ruleset. Returns the program, or NULL when any error was
 * found (every error is appended to `diags`; warnings are appended in both cases). The
 * diagnostics it appends are in source order (sources in the order given, then line and
 * column); after a syntax error the declarations that parsed are still checked.
 * The program copies what it needs; the sources may be freed afterwards.
 * Free with vg_prog_unref(). */
vg_program_t *vg_prog_compile(const vg_source_t *srcs, int n, vg_diags_t *diags);

vg_program_t *vg_prog_ref(vg_program_t *p);
void vg_prog_unref(vg_program_t *p);   /* accepts NULL */

/* Introspection. Indexes are stable for the program's lifetime. Out-of-range indexes
 * give NULL. */
int vg_prog_nspecs(const vg_program_t *p);
const vg_spec_t *vg_prog_spec(const vg_program_t *p, int i);
int vg_prog_nbygroups(const vg_program_t *p);
const char *vg_prog_bygroup_text(const vg_program_t *p, int g);  /* e.g. "tx.card" */
int vg_prog_nfeatures(const vg_program_t *p);
const char *vg_prog_feature_name(const vg_program_t *p, int i);  /* declaration order */
/* The static type of feature i (vg_type_t; VG_T_NULL when it is only known at run
 * time, e.g. an extra field). */
int vg_prog_feature_type(const vg_program_t *p, int i);
/* Number of rule blocks, disabled ones included (they never fire). */
int vg_prog_nrules(const vg_program_t *p);
/* The longest aggregate or seen() window in ms, 0 if none. */
int64_t vg_prog_max_window(const vg_program_t *p);

/* ---- engine values: anomaly signals and label aggregates ------------------------------
 *
 * Besides the window specs, a program may read values the engine computes by other
 * means ("ext" values): anomaly.score / anomaly.<signal> (models/anomaly.h) and the label
 * aggregates fraud_count(W [by K]), labelled_count(W [by K]), fraud_sum(x, W) and
 * labelled_sum(x, W) (docs/rules.md). They live in the same index space as the specs,
 * after them: ext value j is spec_vals[nspecs + j]; for a `by K` label aggregate phase 1
 * writes its key into in[nspecs + j].key, and for a label sum the event's x (a number or
 * null) into in[nspecs + j].x, which the engine keeps in the account's label memo, in
 * memo slot vg_ext_t.memo_slot (keep is unused). So the arrays given to the evaluation
 * functions hold vg_prog_nspecs() + vg_prog_next() entries. The window layouts never see
 * ext values (vg_prog_spec() does not list them). A program without ext values behaves
 * exactly as before. */
typedef enum vg_ext_kind {
    VG_EXT_ANOMALY = 0,      /* anomaly.<signal>: a number in [0, 1] or null */
    VG_EXT_FRAUD_COUNT,      /* fraud_count(W [by K]): integer */
    VG_EXT_LABELLED_COUNT,   /* labelled_count(W [by K]): integer */
    VG_EXT_FRAUD_SUM,        /* fraud_sum(x, W): number (the account only) */
    VG_EXT_LABELLED_SUM      /* labelled_sum(x, W): number (the account only) */
} vg_ext_kind_t;

/* Anomaly signal names the language knows, in the order of models/anomaly.h's
 * VG_ANOMALY_SIGNAL_LIST; "score" (the combined score) is signal -1. */
#define VG_RULES_ANOMALY_SIGNALS                                                              "amount", "time", "merchant", "country", "device", "ip", "mcc", "channel", "velocity",         "multi", "compromise"
#define VG_RULES_NANOMALY 11

typedef struct vg_ext {
    vg_ext_kind_t kind;
    int signal;          /* VG_EXT_ANOMALY: -1 for anomaly.score, else the signal index */
    int64_t window_ms;   /* label aggregates: W */
    int by_group;        /* label aggregates: -1 (the account) or the `by` group */
    int memo_slot;       /* label sums: which of the memo's x values holds x, else -1 */
    const char *text;    /* canonical text: "anomaly.score", "fraud_count(28d by tx.merchant)" */
} vg_ext_t;

int vg_prog_next(const vg_program_t *p);
const vg_ext_t *vg_prog_ext(const vg_program_t *p, int j);   /* NULL when out of range */
/* 1 when the program reads any anomaly value; 1 when it reads any label aggregate. */
int vg_prog_uses_anomaly(const vg_program_t *p);
int vg_prog_uses_labels(const vg_program_t *p);
/* The longest label aggregate window in ms, 0 if none. */
int64_t vg_prog_max_label_window(const vg_program_t *p);
/* The number of x values a label memo entry keeps for the label sums (one per distinct
 * x expression; 0 without label sums), and the canonical text of slot k's x (NULL when
 * out of range). */
int vg_prog_memo_nx(const vg_program_t *p);
const char *vg_prog_memo_x_text(const vg_program_t *p, int k);

/* Phase 1: fills in[0 .. nspecs + next - 1]. Strings in the results borrow from the event or
 * from `arena`. An aggregate's x and `where`, and the argument of prev()/seen(), may read
 * the event's own anomaly values (vg_prog_inputs_read_ext): the engine computes them
 * first and passes spec_vals with its ext entries spec_vals[nspecs + j] of kind
 * VG_EXT_ANOMALY filled in (borrowed; the other entries are not read). spec_vals may be
 * NULL for a program that reads none. Returns 0, VG_EINVAL when spec_vals is NULL but
 * needed, or a negative VG_E* code when the arena is exhausted. */
int vg_prog_eval_inputs(const vg_program_t *p, const vg_tx_t *tx, const vg_value_t *spec_vals,
                        vg_arena_t *arena, vg_spec_input_t *in);
/* 1 when phase 1 reads anomaly values (so they must be computed before it). */
int vg_prog_inputs_read_ext(const vg_program_t *p);

/* Phase 2: given spec_vals[0 .. nspecs + next - 1] (each spec's and ext value for this
 * event, computed by the engine), fills features[0 .. nfeatures-1]. Returns 0 or a negative code. */
int vg_prog_eval_features(const vg_program_t *p, const vg_tx_t *tx,
                          const vg_value_t *spec_vals, vg_arena_t *arena,
                          vg_value_t *features);

/* ---- rules (phase 3) ------------------------------------------------------------- */

typedef enum vg_action {
    VG_ACTION_ALLOW = 0, VG_ACTION_REVIEW, VG_ACTION_BLOCK, VG_ACTION_ALERT
} vg_action_t;
typedef enum vg_severity {
    VG_SEV_LOW = 0, VG_SEV_MEDIUM, VG_SEV_HIGH, VG_SEV_CRITICAL
} vg_severity_t;
typedef enum vg_rule_mode {
    VG_MODE_ACTIVE = 0, VG_MODE_SHADOW, VG_MODE_DISABLED
} vg_rule_mode_t;

/* "allow", "review", ...; "low", ...; "active", ... Can't fail. */
const char *vg_action_name(int a);
const char *vg_severity_name(int s);
const char *vg_mode_name(int m);

/* A reference to something a rule reads or a message shows. */
typedef enum vg_ref_kind {
    VG_REF_TEXT = 0,   /* literal message text (text, len) */
    VG_REF_FEATURE,    /* features[index] */
    VG_REF_FIELD,      /* tx->f[index] (VG_FIELD_*) */
    VG_REF_EXTRA,      /* the extra field named by text */
    VG_REF_SPEC        /* spec_vals[index]: an aggregate written inline in a rule */
} vg_ref_kind_t;

typedef struct vg_ref {
    uint8_t kind;
    uint32_t index;
    const char *text;  /* TEXT: the bytes; EXTRA: the field name; FEATURE, FIELD, SPEC:
                          the name shown in `values` ("spend_1h", "tx.amount", "count(1h)");
                          NUL-terminated, owned by the program */
    uint32_t len;
} vg_ref_t;

typedef struct vg_rule_info {
    const char *name;
    const char *module;       /* the file name without directory and .vrl */
    int64_t version;          /* the module's version (1 unless vg_prog_set_module_version) */
    const char *file;
    int line;
    uint8_t action, severity, mode;
    int64_t suppress_ms;      /* 0: no suppress clause */
    uint64_t id;              /* 64-bit hash of the name: the key of its suppression state */
    int has_message;          /* without a message clause the message is null */
    const vg_ref_t *msg;      /* the message template: text and placeholders, in order */
    int nmsg;
    const vg_ref_t *values;   /* what the condition reads, first use first, no repeats */
    int nvalues;
    uint32_t cost;            /* estimated cost: weighted instructions of when + score */
    uint32_t ninstr;          /* instructions emitted for the rule */
    int nstate;               /* state specs the rule needs (through its features too) */
} vg_rule_info_t;

/* The sources the program was compiled from (names and texts, in order), encoded:
 * "vgsrc1", u32 n, then per source u32 name length, name, u32 text length, text (little
 * endian). A state records them so that a restart with other rules can rebuild the
 * program its state was made by and carry the state over (engine/pipeline.h,
 * vg_pipeline_open). NULL (*len 0) without memory. */
const char *vg_prog_sources(const vg_program_t *p, size_t *len);

/* Compiles encoded sources (vg_prog_sources) again. NULL when they are malformed or do
 * not compile (diagnostics dropped). */
vg_program_t *vg_prog_compile_sources(const char *enc, size_t len);

/* Sets the version that decisions print for the rules of `module` (SPEC section 3: the
 * module's version; 1 until set). Call before the program is shared with threads that
 * decide with it. */
void vg_prog_set_module_version(vg_program_t *p, const char *module, int64_t version);

/* Rule i in declaration order (modules in the order given), or NULL. Borrowed. */
const vg_rule_info_t *vg_prog_rule(const vg_program_t *p, int i);

/* The value of a reference for the current event (TEXT gives null). Can't fail. */
vg_value_t vg_prog_ref_value(const vg_program_t *p, const vg_ref_t *r, const vg_tx_t *tx,
                             const vg_value_t *spec_vals, const vg_value_t *features);

/* Per rule, phase 3's result. Disabled rules never fire. */
typedef struct vg_rule_result {
    uint8_t fired;
    double score;             /* clamped to [0, 100]; meaningful when fired */
} vg_rule_result_t;

/* Declared lists (`list NAME`), in declaration order. */
int vg_prog_nlists(const vg_program_t *p);
const char *vg_prog_list_name(const vg_program_t *p, int i);
/* Binds each declared list to its set in `l` (NULL or a missing name: empty), filling
 * out[0 .. nlists-1] with borrowed pointers (valid while `l` is). Can't fail. */
void vg_prog_bind_lists(const vg_program_t *p, const vg_lists_t *l, const vg_strset_t **out);

/* Phase 3: given the features of phase 2, fills res[0 .. nrules-1]. `lists` is the
 * array of vg_prog_bind_lists (NULL: every list empty). Returns 0 or VG_ENOMEM when the
 * arena is exhausted. Never calls malloc once the arena is warm. */
int vg_prog_eval_rules(const vg_program_t *p, const vg_tx_t *tx, const vg_value_t *spec_vals,
                       const vg_value_t *features, const vg_strset_t *const *lists,
                       vg_arena_t *arena, vg_rule_result_t *res);

/* The decision of SPEC section 2 from phase 3's results: `allow` if an active allow rule
 * fired, else block, else review, else alert, else allow; *score the maximum score of
 * the fired active rules (0 if none). Shadow and disabled rules count for nothing.
 * Can't fail. */
void vg_prog_decide(const vg_program_t *p, const vg_rule_result_t *res, int *action,
                    double *score);

/* Writes a readable disassembly of the program (specs, features, bytecode). */
void vg_prog_explain(const vg_program_t *p, FILE *out);

#endif
