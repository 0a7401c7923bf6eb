/* check.c - `vigil check PATH...`: compiles all PATHs as one ruleset and prints
 * diagnostics on stderr (`file:line:col: error: ...`); `--explain` prints the compiled
 * program (specs, features, bytecode) on stdout. Exit 1 on any error, 0 otherwise
 * (warnings included), 2 on a usage error. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "api/cli.h"
#include "rules/errors.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: vigil check [--explain] PATH...\n"
            "\n"
            "Compiles the .vrl files and directories of .vrl files given as one ruleset\n"
            "and prints errors and warnings as file:line:col: error: message.\n"
            "  --explain  print the compiled program (state specs, features, bytecode)\n"
            "Exit status: 0 no errors (warnings allowed), 1 errors, 2 usage error.\n");
}

int vg_cmd_check(int argc, char **argv) {
    static const struct option opts[] = {
        {"explain", no_argument, 0, 'e'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    int explain = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'e': explain = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("vigil %s\n", VIGIL_VERSION); return 0;
        default:
            vg_cli_bad_option("check", c, argv, opts);
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "vigil check: no PATH given\n");
        usage(stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++)
        if (!*argv[i]) {   /* was `vigil check: : No such file or directory`, exit 1 */
            fprintf(stderr, "vigil check: an empty path\n");
            usage(stderr);
            return 2;
        }
    char err[512];
    vg_sources_t src;
    int lrc = vg_sources_load(&src, argv + optind, argc - optind, err, sizeof(err));
    if (lrc == VG_ECOMPILE) {   /* a module too large: err is its diagnostic */
        fprintf(stderr, "%s\nvigil check: 1 error, 0 warnings\n", err);
        return 1;
    }
    if (lrc != 0) {
        fprintf(stderr, "vigil check: %s\n", err);
        return 1;
    }
    int ne = 0, nw = 0;
    vg_program_t *p = vg_cli_compile(&src, &ne, &nw);
    if (p) {
        if (explain) vg_prog_explain(p, stdout);
        fprintf(stderr, "vigil check: %d module%s, %d feature%s, %d state spec%s, %d warning%s\n",
                src.n, src.n == 1 ? "" : "s", vg_prog_nfeatures(p),
                vg_prog_nfeatures(p) == 1 ? "" : "s", vg_prog_nspecs(p),
                vg_prog_nspecs(p) == 1 ? "" : "s", nw, nw == 1 ? "" : "s");
    } else {
        fprintf(stderr, "vigil check: %d error%s, %d warning%s\n", ne, ne == 1 ? "" : "s", nw,
                nw == 1 ? "" : "s");
    }
    int rc = p ? 0 : 1;
    vg_prog_unref(p);
    vg_sources_free(&src);
    return rc;
}
