/* main.c - the `vigil` command line: dispatches to the subcommands (SPEC section 5). */
#include <stdio.h>
#include <string.h>

#include "api/cli.h"
#include "api/serve.h"
#include "api/serve_kafka.h"

int vg_cmd_eval(int argc, char **argv);   /* api/eval.c */

static void usage(FILE *f) {
    fprintf(f,
            "usage: vigil <command> [options]\n"
            "\n"
            "commands:\n"
            "  replay   read NDJSON events, write decisions (vigil replay --help)\n"
            "  check    compile rule modules and print diagnostics (vigil check --help)\n"
            "  serve    the service: HTTP API, Redis control plane (vigil serve --help)\n"
            "  stream   the Kafka pipeline without the HTTP API (vigil stream --help)\n"
            "  eval     detection quality of rules on labelled events (vigil eval --help)\n"
            "\n"
            "  --help     this text\n"
            "  --version  print the version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("vigil %s\n", VIGIL_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "replay") == 0) return vg_cmd_replay(argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0) return vg_cmd_check(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") == 0) return vg_cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "stream") == 0) return vg_cmd_stream(argc - 1, argv + 1);
    if (strcmp(argv[1], "eval") == 0) return vg_cmd_eval(argc - 1, argv + 1);
    fprintf(stderr, "vigil: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
