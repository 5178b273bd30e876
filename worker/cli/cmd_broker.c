/* cmd_broker: `ievo broker` (the development broker: librdkafka's mock cluster on TCP) and
 * `ievo broker-ctl` (its fault-injection client), the command lines of worker/broker/broker.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cli.h"
#include "commands.h"
#include "log.h"
#include "settings.h"

enum { OPT_BROKERS = CLI_OPT_ID_FIRST_FREE, OPT_PARTITIONS, OPT_BOOTSTRAP_FILE, OPT_CONTROL, OPT_TIMEOUT };

static const cli_option BROKER_OPTS[] = {
    {"brokers", OPT_BROKERS, "N", "brokers in the cluster (default 3)", NULL},
    {"partitions", OPT_PARTITIONS, "N", "partitions of each -t topic without its own count (default 4)", NULL},
    {"topic", 't', "TOPIC[:PARTITIONS]", "create a topic at start (repeatable); unknown topics are auto-created with 4 partitions", NULL},
    {"bootstrap-file", OPT_BOOTSTRAP_FILE, "PATH", "also write the bootstrap servers to PATH (atomically)", NULL},
    {"control", OPT_CONTROL, "PATH", "serve the fault-injection control channel on a Unix socket at PATH", NULL},
    CLI_OPT_END,
};

static const cli_command BROKER_CMD = {
    .name = "broker",
    .synopsis = "[--brokers N] [--partitions N] [-t TOPIC[:PARTITIONS]]... [--bootstrap-file PATH]\n"
                " [--control PATH] [-F FILE] [-X KEY=VALUE]...",
    .about = "Runs librdkafka's mock cluster on random local ports until SIGTERM/SIGINT and prints the\n"
             "bootstrap servers as one line on stdout (logs go to stderr). -X and -F set librdkafka\n"
             "properties of the mock's own handle. docs/local-broker.md says what it cannot show;\n"
             "docs/faults.md how to inject faults (ievo broker-ctl --control PATH help).\n",
    .opts = BROKER_OPTS,
    .settings = SETTINGS_CMD_BROKER,
    .kafka = 1,
};

static const cli_option CTL_OPTS[] = {
    {"control", OPT_CONTROL, "PATH", "the broker's control socket (default: $IEVO_BROKER_CONTROL)", NULL},
    {"timeout", OPT_TIMEOUT, "SECONDS", "wait this long for each reply (default 30)", NULL},
    CLI_OPT_END,
};

static const cli_command CTL_CMD = {
    .name = "broker-ctl",
    .synopsis = "[--control PATH] [--timeout SECONDS] COMMAND [ARG...]\n"
                "[--control PATH] [--timeout SECONDS] -      (commands on stdin, one a line)",
    .about = "Sends a fault-injection command to `ievo broker --control PATH` and prints its reply line\n"
             "(\"ok ...\" or \"error ...\"). The exit status is 1 when the broker answered an error or could\n"
             "not be reached.\n",
    .opts = CTL_OPTS,
    .settings = SETTINGS_CMD_OTHER,
    .operands = "COMMAND [ARG...]",
    .operands_first = 1,
    .notes = "commands (`help` asks the broker for its list):\n"
             "  status                                   brokers, topics, leaders, end offsets\n"
             "  broker-down ID|all, broker-up ID|all     close a broker's connections and refuse new ones\n"
             "  rtt ID|all MS                            delay every response of a broker by MS\n"
             "  request-errors API ERR [ERR...]          fail the next requests of API (Produce, Fetch,\n"
             "                                           OffsetCommit, JoinGroup, Heartbeat, ... or a number)\n"
             "  broker-request-errors ID API ERR[@MS]... the same on one broker, each answered after MS\n"
             "  clear-errors [API]                       drop queued cluster-wide request errors\n"
             "  coordinator group|transaction KEY ID     move a group's / transactional id's coordinator\n"
             "  partition-leader TOPIC PARTITION ID|-1   move a partition's leader (-1: no leader)\n"
             "  topic-error TOPIC ERR                    Metadata for TOPIC returns ERR (NO_ERROR clears)\n"
             "Errors by librdkafka name (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, NOT_COORDINATOR,\n"
             "COORDINATOR_NOT_AVAILABLE, _TRANSPORT to drop the connection, ...) or number.\n",
};

/* ---- ievo broker ---------------------------------------------------------------------------- */

/* TOPIC or TOPIC:PARTITIONS (value is argv's, ours to cut at the colon). */
static int broker_topic_option(broker_opts *o, char *value, char *err, size_t errlen) {
    if (o->ntopics == BROKER_MAX_TOPICS) return snprintf(err, errlen, "at most %d topics", BROKER_MAX_TOPICS), -1;
    broker_topic *t = &o->topics[o->ntopics++];
    char *colon = strrchr(value, ':');
    int64_t parts = 0;
    if (colon) {
        *colon = 0;
        if (cli_int(colon + 1, 1, 100000, &parts, err, errlen)) return -1;
    }
    if (!*value) return snprintf(err, errlen, "empty topic name"), -1;
    t->name = value;
    t->partitions = (int)parts;
    return 0;
}

static int broker_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    broker_opts *o = ctx;
    int64_t x = 0;
    switch (key) {
    case OPT_BROKERS:
        if (cli_int(value, 1, BROKER_MAX_BROKERS, &x, err, errlen)) return -1;
        o->brokers = (int)x;
        return 0;
    case OPT_PARTITIONS:
        if (cli_int(value, 1, 100000, &x, err, errlen)) return -1;
        o->partitions = (int)x;
        return 0;
    case 't': return broker_topic_option(o, (char *)value, err, errlen);
    case OPT_BOOTSTRAP_FILE: o->bootstrap_file = value; return 0;
    case OPT_CONTROL: o->control_path = value; return 0;
    }
    return 0;
}

int cmd_broker(int argc, char **argv) {
    broker_opts o = {.brokers = 3, .partitions = 4};
    cli_args a;
    char err[512];
    int rc = cli_parse(&BROKER_CMD, argc, argv, broker_option, &o, &a);
    if (rc == CLI_OK && broker_run(&o, &a.cfg, err, sizeof err)) {
        LOG_E("broker", "%s", err);
        rc = CLI_FAILED;
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}

/* ---- ievo broker-ctl ------------------------------------------------------------------------ */

typedef struct {
    const char *path;
    double timeout_s;
} ctl_opts;

static int ctl_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    ctl_opts *o = ctx;
    if (key == OPT_CONTROL) o->path = value;
    else if (key == OPT_TIMEOUT && (cli_double(value, 0, 3600, &o->timeout_s, err, errlen) || o->timeout_s <= 0))
        return snprintf(err, errlen, "'%s' is not a number of seconds in (0, 3600]", value), -1;
    return 0;
}

int cmd_broker_ctl(int argc, char **argv) {
    ctl_opts o = {getenv("IEVO_BROKER_CONTROL"), 30};
    cli_args a;
    char err[768], line[BROKER_CTL_CMD_MAX + 1];
    int rc = cli_parse(&CTL_CMD, argc, argv, ctl_option, &o, &a);
    int from_stdin = a.n_operands == 0 || (a.n_operands == 1 && !strcmp(a.operands[0], "-"));
    if (rc == CLI_OK && (!o.path || !*o.path))
        rc = cli_usage_error(&CTL_CMD, "no control socket: give --control PATH or set IEVO_BROKER_CONTROL");
    if (rc == CLI_OK && !from_stdin && broker_ctl_join(a.operands, a.n_operands, line, sizeof line, err, sizeof err))
        rc = cli_usage_error(&CTL_CMD, "%s", err);
    if (rc == CLI_OK) {
        int sent = broker_ctl_call(o.path, from_stdin ? NULL : line, o.timeout_s, err, sizeof err);
        if (sent < 0) LOG_E("broker-ctl", "%s", err);
        rc = sent ? CLI_FAILED : CLI_OK;
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}
