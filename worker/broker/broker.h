/* broker: the development broker, librdkafka's mock cluster served on TCP (`ievo broker`), and
 * its fault-injection client (`ievo broker-ctl`). Development and tests only: see
 * docs/local-broker.md for what it cannot show. Each returns the process exit code. */
#ifndef IEVO_BROKER_H
#define IEVO_BROKER_H

int cmd_broker(int argc, char **argv);     /* broker.c: local Kafka-protocol broker (mock cluster) */
int cmd_broker_ctl(int argc, char **argv); /* broker_ctl.c: fault injection through `broker --control` */

#endif
