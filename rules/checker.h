/* checker.h - name resolution, dependency order and types of a parsed ruleset.
 *
 * vg_check() takes the modules of one ruleset, resolves feature references (unique
 * names across modules, no cycles), orders the features so that each comes after the
 * features it uses, infers and checks every expression's type (ast->type), marks the
 * state specs (aggregates, sessions, prev, seen) and checks rule blocks. Errors and
 * warnings go to `diags` with their positions. Not thread-safe per input; no globals.
 */
#ifndef VG_CHECKER_H
#define VG_CHECKER_H

#include <stddef.h>

#include "rules/arena.h"
#include "rules/ast.h"
#include "rules/program.h"

typedef struct vg_checked {
    vg_ast_decl_t **features;  /* declaration order, modules in the order given */
    int nfeatures;
    int *order;                /* features[order[0]], features[order[1]], ...: dependencies first */
    vg_ast_decl_t **rules;
    int nrules;
    vg_ast_decl_t **lists;
    int nlists;
} vg_checked_t;

/* Checks modules[0 .. n-1]. On return *out's arrays live in `arena`, and every checked
 * node's `type` (and NAME/FIELD/CALL `ref`) is set. Returns 0 when there is no error,
 * VG_ECOMPILE when errors were appended to `diags`, VG_ENOMEM when memory ran out. */
int vg_check(vg_ast_module_t *modules, int n, vg_arena_t *arena, vg_diags_t *diags,
             vg_checked_t *out);

/* Compiles regular expression re (PCRE2, UTF-8) to validate it. Returns -1 when it is
 * valid, else the offset of the error with the reason in `why`. */
int vg_check_regex(const char *re, size_t len, char *why, size_t whylen);

/* The name of a checker type ("number", "string", ..., "any", "list"). Can't fail. */
const char *vg_check_type_name(int type);

#endif
