/* ievo: one binary, subcommands. See README.md for the CLI. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} g_cmds[] = {
    {"broker", cmd_broker, "run a local Kafka-protocol broker (librdkafka mock cluster) on TCP"},
    {"broker-ctl", cmd_broker_ctl, "inject faults into a running `ievo broker --control PATH`"},
    {"produce", cmd_produce, "write UserAction events (MovieLens, synthetic, JSON lines) to a topic"},
    {"worker", cmd_worker, "run the consumer-group worker: events in, interest vectors out"},
    {"replay", cmd_replay, "bounded backfill: re-apply a topic up to its current end into a state dir"},
    {"consume", cmd_consume, "print a topic's InterestVectors as JSON lines"},
    {"model", cmd_model, "model init | model info"},
    {"state", cmd_state, "state dump: print the per-user states of a state dir"},
    {"reference", cmd_reference, "replay events through the scalar reference model (offline)"},
    {"train", cmd_train, "learn the interest model from history (MovieLens, JSON lines, synthetic, a topic)"},
    {"eval", cmd_eval, "leave-one-out HR/NDCG@10/20 of a model vs popularity, through the streaming path"},
    {"demo", cmd_demo, "broker + events + worker, then a summary of what happened"},
    {"embed", cmd_embed, "text lines on stdin -> sentence vectors (USE lite) as JSON lines"},
    {"report", cmd_report, "one self-contained HTML page about a run: throughput, lag, interest drift"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ievo <command> [options]   (ievo <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++)
        fprintf(f, "  %-10s %s\n", g_cmds[i].name, g_cmds[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof g_cmds / sizeof g_cmds[0]; i++)
        if (strcmp(argv[1], g_cmds[i].name) == 0) return g_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "ievo: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
