/* TEMP STUB: replaced by the real command. */
#include <stdio.h>
#include "commands.h"
int cmd_model(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ievo model: not built yet\n");
    return 2;
}
