/* cmd_config: `ievo config`, the settings table for people (what a key means, its type, default
 * and range), for scripts (--keys) and as docs/configuration.md (--markdown, which the tests
 * compare with the committed file). */
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "settings.h"

enum { OPT_MARKDOWN = CLI_OPT_ID_FIRST_FREE, OPT_KEYS };

static const cli_option OPTS[] = {
    {"markdown", OPT_MARKDOWN, NULL, "print docs/configuration.md (generated from the table)", NULL},
    {"keys", OPT_KEYS, NULL, "one tab-separated line per key: name, type, default, range, commands, secret", NULL},
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "config",
    .synopsis = "[KEY...] [--markdown | --keys]",
    .about = "Explains ievo's settings: each KEY given (all of them without one), with its type, range or\n"
             "values, default, the commands that read it and what it means. Every other key is a\n"
             "librdkafka property (librdkafka's CONFIGURATION.md).\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_OTHER,
    .operands = "KEY...",
};

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    (void)value, (void)err, (void)errlen;
    *(int *)ctx = key;
    return 0;
}

int cmd_config(int argc, char **argv) {
    int mode = 0;
    cli_args a;
    int rc = cli_parse(&CMD, argc, argv, on_option, &mode, &a);
    if (rc) {
        cli_args_free(&a);
        return rc < 0 ? CLI_OK : rc;
    }
    char err[512];
    if (mode && a.n_operands) rc = cli_usage_error(&CMD, "--markdown and --keys print every key: no KEY with them");
    else if (mode == OPT_MARKDOWN) settings_print_markdown(stdout);
    else if (mode == OPT_KEYS) settings_print_keys(stdout);
    else if (settings_print_text(stdout, SETTINGS_CMD_ALL, (const char *const *)a.operands, a.n_operands, err,
                                 sizeof err)) {
        fprintf(stderr, "ievo config: %s\n", err);
        rc = CLI_USAGE;
    }
    if (!rc && (fflush(stdout) || ferror(stdout))) {
        fprintf(stderr, "ievo config: cannot write stdout\n");
        rc = CLI_FAILED;
    }
    cli_args_free(&a);
    return rc;
}
