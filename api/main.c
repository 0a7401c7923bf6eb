/* main.c - the `vigil` command line: dispatches to replay, check and serve. */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("vigil %s\n", VIGIL_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: vigil replay|check|serve ...\n");
    return 2;
}
