/* stop_signal: the first SIGTERM/SIGINT asks for a stop, the second ends the process. See
 * stop_signal.h. */
#include "stop_signal.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) {
    if (g_signal) _exit(128 + sig); /* asked twice: now */
    g_signal = sig;
}

void stop_signal_catch(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* no SA_RESTART: a blocking read (embed's stdin) returns EINTR and the loop sees the stop */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int stop_signal_received(void) { return g_signal; }

const char *stop_signal_name(int sig) {
    static char other[24];
    if (sig == SIGTERM) return "SIGTERM";
    if (sig == SIGINT) return "SIGINT";
    snprintf(other, sizeof other, "signal %d", sig);
    return other;
}
