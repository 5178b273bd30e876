/* broker: the development broker, librdkafka's mock cluster served on TCP (`ievo broker`), and
 * the client of its fault-injection control channel (`ievo broker-ctl`). Development and tests
 * only: see docs/local-broker.md for what it cannot show. The commands' parsing is in
 * worker/cli/cmd_broker.c. */
#ifndef IEVO_BROKER_H
#define IEVO_BROKER_H

#include <stddef.h>

#include "config.h"

#define BROKER_MAX_TOPICS 64
#define BROKER_MAX_BROKERS 64
#define BROKER_CTL_CMD_MAX 4096   /* longest command line the control channel takes */

typedef struct {
    const char *name;
    int partitions;   /* 0: the options' partitions */
} broker_topic;

typedef struct {
    int brokers, partitions;
    broker_topic topics[BROKER_MAX_TOPICS];   /* created at start */
    int ntopics;
    const char *bootstrap_file;   /* also publish the bootstrap servers here (atomically); NULL: no */
    const char *control_path;     /* serve the control channel on this Unix socket; NULL: no */
} broker_opts;

/* broker.c: starts the cluster and its topics, prints the bootstrap servers as one line on
 * stdout, serves until SIGTERM/SIGINT, tears down. cfg: librdkafka properties of the mock's own
 * handle. Returns 0, or -1 with err when it could not start. */
int broker_run(const broker_opts *o, const config *cfg, char *err, size_t errlen);

/* broker_ctl.c: the control channel's client. Joins words into one command line (cap >=
 * BROKER_CTL_CMD_MAX + 1); -1 with err when a word is empty or holds whitespace, which the line
 * protocol cannot carry, or the line is too long. */
int broker_ctl_join(char *const *words, int n, char *line, size_t cap, char *err, size_t errlen);
/* Sends the command line (NULL: every line of stdin, blank ones and '#' comments skipped) over
 * one connection to the broker at path and prints each reply line on stdout. Returns 0 when
 * every reply was "ok ...", 1 when one was "error ...", -1 with err when the broker could not be
 * reached or did not answer within timeout_s, or stdin held a line too long. */
int broker_ctl_call(const char *path, const char *line, double timeout_s, char *err, size_t errlen);

#endif
