/* commands: the `ievo` subcommands. Each parses its command line with cli.h's parser and returns
 * the process exit status (0 done, 1 runtime failure, 2 usage or configuration error). */
#ifndef IEVO_COMMANDS_H
#define IEVO_COMMANDS_H

int cmd_broker(int argc, char **argv);    /* cmd_broker.c: the local Kafka-protocol broker (mock cluster) */
int cmd_broker_ctl(int argc, char **argv); /* cmd_broker.c: fault injection through `broker --control` */
int cmd_produce(int argc, char **argv);   /* cmd_produce.c: load UserAction events into a topic */
int cmd_consume(int argc, char **argv);   /* cmd_consume.c: print InterestVectors as JSON lines */
int cmd_worker(int argc, char **argv);    /* cmd_worker.c: the consumer-group worker */
int cmd_replay(int argc, char **argv);    /* cmd_worker.c: a bounded replay into a state dir (backfill) */
int cmd_model(int argc, char **argv);     /* cmd_model.c: `model init`, `model info` */
int cmd_state(int argc, char **argv);     /* cmd_state.c: `state dump` of a state dir */
int cmd_demo(int argc, char **argv);      /* cmd_demo.c: broker + produce + worker + summary */
int cmd_reference(int argc, char **argv); /* cmd_reference.c: offline scalar-model replay (tests) */
int cmd_train(int argc, char **argv);     /* cmd_train.c: learn the model from history (writes a model file) */
int cmd_eval(int argc, char **argv);      /* cmd_eval.c: leave-one-out HR/NDCG through the streaming path */
int cmd_embed(int argc, char **argv);     /* cmd_embed.c: text lines -> USE-lite vectors as JSON lines */
int cmd_report(int argc, char **argv);    /* cmd_report.c: a self-contained HTML page about a run (charts) */
int cmd_config(int argc, char **argv);    /* cmd_config.c: the settings table, as text or docs/configuration.md */

#endif
