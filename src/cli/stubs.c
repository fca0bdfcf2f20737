/* Commands not built yet. */
#include <stdio.h>

#include "cli/cli.h"

int lp_cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "leadpulse bench: use bench/run\n");
    return 2;
}
