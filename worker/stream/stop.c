/* stop: why and when the worker stops. One flag, set by a signal, a fatal client error or a
 * fatal error of the worker's own (worker_fail), read by the loop between batches; a clean stop
 * then makes what was applied durable, within stop.timeout.ms. A second SIGINT or SIGTERM ends
 * the process at once (exit 128 + the signal), like a crash: nothing since the last checkpoint
 * is lost, it is applied again at the next start. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "worker_internal.h"

static volatile sig_atomic_t g_stop = 0;

void worker_request_stop(void) {
    if (!g_stop) g_stop = 1;
}

int worker_stop_requested(void) { return g_stop != 0; }

int worker_stop_signalled(void) { return g_stop == 2; }

static void on_signal(int sig) {
    if (g_stop == 2) _exit(128 + sig); /* asked twice: now */
    g_stop = 2;
}

void worker_catch_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

void worker_fail(worker *w, const char *fmt, ...) {
    char msg[sizeof w->fatal];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    LOG_E("worker", "%s", msg);
    if (!w->failed) snprintf(w->fatal, sizeof w->fatal, "%s", msg);
    w->failed = 1;
    worker_request_stop();
}
