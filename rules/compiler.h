/* compiler.h - from a checked AST to a vg_program_t (state specs and bytecode).
 *
 * The compiler deduplicates state specs by their canonical text (two features that
 * use count(10m) share one spec), groups `by` keys with the same text, orders the
 * features dependencies-first and emits two straight-line register programs:
 *   phase 1 computes each spec's inputs (x, key, keep) from the event;
 *   phase 2 computes the features from the event and the engine's spec values.
 * Registers are numbered [constants][everything else]; the constants are copied into
 * the register file at the start of each run. Trivial constant expressions are folded.
 * This header also defines struct vg_program, shared by compiler.c and program.c only.
 */
#ifndef VG_COMPILER_H
#define VG_COMPILER_H

#include <stdatomic.h>

#include "rules/arena.h"
#include "rules/checker.h"
#include "rules/program.h"
#include "rules/vm.h"

struct vg_program {
    atomic_int refs;
    vg_arena_t mem;            /* owns every string of the program */
    vg_spec_t *specs;          /* malloc */
    int nspecs;
    const char **bytext;       /* malloc array of arena strings */
    int nby;
    const char **fnames;       /* malloc; declaration order */
    uint8_t *ftypes;           /* malloc; checker type of each feature */
    int nfeatures;
    int nrules;                /* rule blocks checked (not compiled yet) */
    int64_t max_window;
    vg_value_t *consts;        /* malloc; registers 0 .. nconst-1 */
    uint32_t nconst;
    vg_str_t *names;           /* malloc; extra field names (arena bytes) */
    uint32_t nnames;
    vg_vm_list_t *lists;       /* malloc; items malloc'd per list */
    uint32_t nlists;
    vg_ext_t *ext;             /* malloc; ext values (program.h), at nspecs + j */
    int next;
    int uses_anomaly, uses_labels;
    int inputs_read_ext;                  /* phase 1 reads anomaly values (where, x, prev, seen) */
    int64_t max_label_window;
    const char **memo_xtext;   /* malloc; nmemo_x arena strings: the label sums' x texts */
    int nmemo_x;
    vg_spec_input_t *in_init;  /* malloc; nspecs + next; phase 1 starts from a copy: x,
                                  key null; keep 1 unless the spec has `where` */
    vg_ins_t *code1, *code2;   /* malloc; phase 1 and phase 2, each ending in Halt */
    uint32_t n1, n2;
    vg_ins_t *code3;           /* malloc; phase 3: the rules, ending in Halt */
    uint32_t n3;
    uint32_t nregs;            /* register file size of any phase */
    vg_rule_info_t *rules;     /* malloc; nrules; strings and arrays in mem */
    vg_rule_result_t *rule_init; /* malloc; phase 3 starts from a copy (constant scores) */
    const char **named;        /* malloc; declared list names (in mem) */
    int nnamed;
    void **regex;              /* malloc; two pcre2_code * per matches() pattern (vm.c) */
    uint32_t nregex;
    vg_tz_t *zones;            /* malloc; time zones of hour_of_day/day_of_week */
    uint32_t nzones;
    char *src;                 /* malloc; the sources it was compiled from, encoded
                                  (vg_prog_sources) */
    size_t src_len;
};

/* Limits of one regular-expression match (PCRE2 match and depth limits). */
#define VG_RULES_REGEX_MATCH_LIMIT 100000
#define VG_RULES_REGEX_DEPTH_LIMIT 1000

/* Builds the program of a checked ruleset. Returns the program (reference count 1), or
 * NULL with an error appended to `diags` (limits: VG_ELIMIT-type errors such as too many
 * registers; out of memory). Free with vg_prog_unref(). */
vg_program_t *vg_compile(const vg_checked_t *ck, vg_diags_t *diags);

/* Frees a program's storage (used by vg_prog_unref). Accepts NULL. */
void vg_compile_free(vg_program_t *p);

#endif
