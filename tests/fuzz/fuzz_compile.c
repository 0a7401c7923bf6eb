/* fuzz_compile.c - libFuzzer target for the rules compiler: lexer, parser, checker,
 * compiler and, when the input compiles, one evaluation of all three phases over a
 * fixed event (so that emitted bytecode, jumps and registers are exercised too).
 *
 * Build: cmake -DVIGIL_FUZZ=ON -DCMAKE_C_COMPILER=clang ... --target fuzz_compile, or
 * see tests/fuzz/README.md for the one-line clang command. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/program.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vg_source_t src = {"fuzz.vrl", (const char *)data, size};
    vg_diags_t d;
    vg_diags_init(&d);
    vg_program_t *p = vg_prog_compile(&src, 1, &d);
    if (p) {
        FILE *null = fopen("/dev/null", "w");
        if (null) {
            vg_prog_explain(p, null);
            vg_diags_print(&d, &src, 1, null);
            fclose(null);
        }
        vg_tx_t tx;
        memset(&tx, 0, sizeof tx);
        tx.f[VG_FIELD_ID] = vg_strv("tx-1", 4);
        tx.f[VG_FIELD_ACCOUNT] = vg_strv("acct-1", 6);
        tx.f[VG_FIELD_TS] = vg_time(1767225600000LL);
        tx.f[VG_FIELD_AMOUNT] = vg_num(12.5);
        tx.f[VG_FIELD_MERCHANT] = vg_strv("Shop-1", 6);
        /* phase 1 and 2 arrays hold the specs and then the engine values (ext) */
        int ns = vg_prog_nspecs(p) + vg_prog_next(p), nf = vg_prog_nfeatures(p),
            nr = vg_prog_nrules(p);
        vg_spec_input_t *in = calloc((size_t)ns + 1, sizeof *in);
        vg_value_t *sv = calloc((size_t)ns + 1, sizeof *sv);
        vg_value_t *fv = calloc((size_t)nf + 1, sizeof *fv);
        vg_rule_result_t *res = calloc((size_t)nr + 1, sizeof *res);
        vg_arena_t ar;
        vg_arena_init(&ar);
        if (in && sv && fv && res && vg_prog_eval_inputs(p, &tx, sv, &ar, in) == 0) {
            for (int i = 0; i < ns; i++) sv[i] = in[i].x;   /* any value of any type */
            if (vg_prog_eval_features(p, &tx, sv, &ar, fv) == 0)
                vg_prog_eval_rules(p, &tx, sv, fv, NULL, &ar, res);
            int action;
            double score;
            vg_prog_decide(p, res, &action, &score);
        }
        vg_arena_deinit(&ar);
        free(in);
        free(sv);
        free(fv);
        free(res);
    }
    vg_prog_unref(p);
    vg_diags_deinit(&d);
    return 0;
}
