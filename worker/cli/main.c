/* ievo: one binary, subcommands. `ievo help COMMAND` (or `ievo COMMAND --help`) for each; the
 * vocabulary they share is in cli.h. */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "cli.h"
#include "commands.h"
#include "model.h"

#ifndef IEVO_VERSION
#error "IEVO_VERSION comes from the project version in CMakeLists.txt"
#endif

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} g_cmds[] = {
    {"broker", cmd_broker, "run a local Kafka-protocol broker (librdkafka mock cluster) on TCP"},
    {"broker-ctl", cmd_broker_ctl, "inject faults into a running `ievo broker --control PATH`"},
    {"produce", cmd_produce, "write UserAction events (MovieLens, synthetic, JSON lines) or the item catalogue to a topic"},
    {"worker", cmd_worker, "run the consumer-group worker: events in, interest vectors out"},
    {"replay", cmd_replay, "bounded backfill: re-apply a topic up to its current end into a state dir"},
    {"consume", cmd_consume, "print a topic's InterestVectors as JSON lines"},
    {"model", cmd_model, "model init | model info"},
    {"state", cmd_state, "state dump | state offsets: what a stopped worker's state dir holds"},
    {"reference", cmd_reference, "replay events through the scalar reference model (offline)"},
    {"train", cmd_train, "learn the interest model from history (MovieLens, JSON lines, synthetic, a topic)"},
    {"eval", cmd_eval, "leave-one-out HR/NDCG@10/20 of a model vs popularity, through the streaming path"},
    {"demo", cmd_demo, "broker + events + worker, then a summary of what happened"},
    {"embed", cmd_embed, "text lines on stdin -> sentence vectors (USE lite) as JSON lines"},
    {"report", cmd_report, "one self-contained HTML page about a run: throughput, lag, interest drift"},
    {"config", cmd_config, "the settings: what each key means, its type, default and range"},
};
#define N_CMDS (sizeof g_cmds / sizeof g_cmds[0])

static void usage(FILE *f) {
    fprintf(f, "usage: ievo <command> [options]   (ievo help <command> for its options)\n"
               "       ievo --version\n\ncommands:\n");
    for (size_t i = 0; i < N_CMDS; i++) fprintf(f, "  %-10s %s\n", g_cmds[i].name, g_cmds[i].help);
    fprintf(f, "\nEvery command reads settings from -F FILE, IEVO_CFG_* variables and -X KEY=VALUE\n"
               "(docs/configuration.md).\n"
               "exit status: 0 done, 1 runtime failure, 2 usage or configuration error\n");
}

static int run(int argc, char **argv) {
    for (size_t i = 0; i < N_CMDS; i++)
        if (strcmp(argv[0], g_cmds[i].name) == 0) return g_cmds[i].fn(argc, argv);
    fprintf(stderr, "ievo: unknown command '%s'\n", argv[0]);
    usage(stderr);
    return CLI_USAGE;
}

/* `ievo help COMMAND [SUBCOMMAND]` is `ievo COMMAND [SUBCOMMAND] --help`. */
static int help(int argc, char **argv) {
    if (argc < 2) {
        usage(stdout);
        return CLI_OK;
    }
    char *args[4] = {argv[1], argc > 2 ? argv[2] : "--help", "--help", NULL};
    if (argc > 3) {
        fprintf(stderr, "ievo help: unexpected argument '%s'\n", argv[3]);
        return CLI_USAGE;
    }
    return run(argc > 2 ? 3 : 2, args);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("ievo %s (librdkafka %s, model format %d)\n", IEVO_VERSION, rd_kafka_version_str(), MODEL_FORMAT_VERSION);
        return CLI_OK;
    }
    if (!strcmp(argv[1], "help")) return help(argc - 1, argv + 1);
    return run(argc - 1, argv + 1);
}
