/* TEMP STUB: replaced by the real command. */
#include <stdio.h>
#include "commands.h"
int cmd_broker(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ievo broker: not built yet\n");
    return 2;
}
