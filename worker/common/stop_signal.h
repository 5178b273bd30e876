/* stop_signal: how every long-running command hears SIGTERM and SIGINT.
 *
 * The first signal asks for a stop: stop_signal_received() turns non-zero, and the command's
 * loops and its waits on the cluster (kafka_clients.h) wind down within seconds, finishing what
 * makes its work whole (the worker's final checkpoint, the records produce has queued, the lines
 * embed has read). A second signal ends the process at once with 128 + the signal, as a shell
 * reports a process killed by it: what was not made durable is lost, as in a crash. */
#ifndef IEVO_STOP_SIGNAL_H
#define IEVO_STOP_SIGNAL_H

/* SIGTERM and SIGINT from now on: the first asks for a stop, the second ends the process. */
void stop_signal_catch(void);
/* The first signal's number; 0 while none came. Async-signal-safe. */
int stop_signal_received(void);
/* "SIGTERM", "SIGINT" (or "signal N") for messages. */
const char *stop_signal_name(int sig);

#endif
