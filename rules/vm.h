/* vm.h - the register machine that runs compiled rules bytecode (opcodes.h).
 *
 * A program is an array of instructions ending in Halt; jumps only go forward (the
 * short-circuit of `and`/`or` in rules, and skipping a rule's score when it does not
 * fire), so every program ends. Registers are vg_value_t slots the caller provides,
 * sized at compile time; the VM never calls malloc (string results and regex match
 * data come from the caller's arena), never fails and keeps no state, so any number of
 * threads may run the same code at once with their own registers and arenas.
 *
 * Regex budget: the matches() of one event, in all three phases, share a budget of
 * VG_VM_REGEX_EVENT_STEPS PCRE2 steps (match-limit units), kept in the arena
 * (rx_steps, zeroed by vg_arena_reset between events). A match runs first under a limit
 * of VG_VM_REGEX_FIRST_STEPS steps and, while it hits its limit, again under 4 times
 * that, up to the per-match limit (VG_RULES_REGEX_MATCH_LIMIT) or what is left of the
 * budget, whichever is smaller; every run is charged its limit plus 1 step per
 * VG_VM_REGEX_SCAN_BYTES bytes of the subject (the start positions it may scan), so the
 * steps charged are never more than the budget. A match that hits its last limit gives
 * null; once what is left is not more than the subject's charge, matches() gives null
 * without running (counted in the arena's rx_skipped). Subjects are valid UTF-8 (never
 * checked again: PCRE2_NO_UTF_CHECK).
 *
 * On a subject longer than VG_VM_REGEX_SHORT bytes PCRE2's own step count is not a
 * bound: it starts afresh at every start position and does not see a repeat that cannot
 * give characters back, so `[a-z]+[0-9]` on 65,000 letters did 2 billion character
 * steps (4 s) charged 4,078. Such a match runs once, with the pattern compiled with a
 * callout before every item and without automatic possessification (the same answers),
 * under what is left of the budget (at most the per-match limit): every
 * VG_VM_REGEX_CALLOUTS callouts are a step, counted across start positions, and the
 * match gives null when they reach the limit; it is charged those steps plus the
 * subject's scan charge. Up to VG_VM_REGEX_SHORT bytes the work a step count misses is
 * at most ~131,000 character steps (~0.25 ms) a match, and the callouts would cost more
 * than they save (an ordinary unanchored pattern on a 450-byte field became null).
 */
#ifndef VG_VM_H
#define VG_VM_H

#include <stdint.h>

#include "rules/arena.h"
#include "rules/lists.h"
#include "rules/opcodes.h"
#include "rules/program.h"
#include "rules/tz.h"
#include "rules/value.h"

#define VG_VM_REGEX_EVENT_STEPS 200000u
#define VG_VM_REGEX_FIRST_STEPS 16u
#define VG_VM_REGEX_SCAN_BYTES 16u   /* a run is also charged 1 step per 16 subject bytes */
#define VG_VM_REGEX_SHORT 512u       /* longer subjects: steps are PCRE2 callouts (vm.c) */
#define VG_VM_REGEX_CALLOUTS 4u      /* callouts per step (a callout costs ~30 ns) */

typedef struct vg_ins {
    uint32_t op;           /* vg_opcode_t */
    uint32_t p1, p2, p3;
} vg_ins_t;

/* A constant list for InList: items of one type. */
typedef struct vg_vm_list {
    const vg_value_t *items;
    uint32_t n;
} vg_vm_list_t;

/* What the instructions read and write besides registers (all borrowed). Pointers an
 * instruction of the program does not use may be NULL. */
typedef struct vg_vm_ctx {
    const vg_tx_t *tx;             /* Field, Extra */
    const vg_value_t *spec;        /* Spec: the engine's spec values */
    vg_spec_input_t *in;           /* InX, InKey, InKeep */
    vg_value_t *out;               /* Out: the features */
    const vg_str_t *names;         /* Extra: field names */
    const vg_vm_list_t *lists;     /* InList */
    const vg_value_t *feat;        /* Feat: the features (phase 3) */
    vg_rule_result_t *rules;       /* Rule, RuleScore */
    const vg_strset_t *const *named; /* InNamed: bound named lists (NULL: all empty) */
    void *const *regex;            /* Matches: pcre2_code * per pattern */
    const vg_tz_t *zones;          /* Hour, Dow */
    vg_arena_t *arena;             /* Lower, Upper, Matches scratch and the event's regex
                                      budget; NULL: they give null */
} vg_vm_ctx_t;

/* Runs code (ending in Halt) over registers r. Can't fail. */
void vg_vm_run(const vg_ins_t *code, vg_value_t *r, const vg_vm_ctx_t *ctx);

/* The haversine distance in km between two points in degrees (radius 6371.0 km).
 * Can't fail. */
double vg_vm_geo_km(double lat1, double lon1, double lat2, double lon2);

/* round(x, digits): x's shortest round-trip decimal (as vigil prints it) rounded to
 * `digits` decimals, half away from zero, read back as the nearest double: 2.675 -> 2.68,
 * 1.005 -> 1.01, -4.435 -> -4.44. Negative digits round to tens, hundreds...; a value
 * with no more decimals than `digits` (huge ones included) and a non-finite x or digits
 * come back unchanged. Allocates nothing; can't fail. */
double vg_vm_round(double x, double digits);

/* Opcode metadata for the compiler and the disassembler. Can't fail. */
const char *vg_vm_opname(int op);
const char *vg_vm_synopsis(int op);
int vg_vm_regmask(int op);

#endif
