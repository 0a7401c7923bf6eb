/* parser.h - recursive-descent parser of a rules module into an AST (ast.h).
 *
 * Syntax errors are reported as `expected X, found Y` diagnostics with the file, line
 * and column; the parser then skips to the next top-level keyword (feature, list, rule)
 * and goes on, so that one run reports several errors. A declaration with an error is
 * left out of the module (and listed in its `broken` when its name had parsed, so that
 * the checker can still check the rest without calling it unknown). All memory comes from the caller's arena. Not thread-safe per
 * arena; no global state.
 */
#ifndef VG_PARSER_H
#define VG_PARSER_H

#include "rules/arena.h"
#include "rules/ast.h"
#include "rules/program.h"

/* Parses src (src->len bytes, need not be NUL-terminated) into *out. Nodes borrow
 * nothing from src (strings are copied into `arena`); positions refer to src, and
 * out->file / decl->file borrow src->name. Returns 0 when the module parsed without
 * error, VG_ECOMPILE when errors were appended to `diags` (*out then holds the
 * declarations that did parse), VG_ENOMEM when the arena is exhausted. Enforces
 * VG_RULES_MAX_SOURCE, VG_RULES_MAX_DEPTH, VG_RULES_MAX_HEIGHT, VG_RULES_MAX_STRING,
 * VG_RULES_MAX_NAME and VG_RULES_MAX_ITEMS. */
int vg_parse(const vg_source_t *src, vg_arena_t *arena, vg_diags_t *diags,
             vg_ast_module_t *out);

#endif
