/* log: timestamped lines on stderr, text or JSON. See log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "json_text.h"

static log_level g_min = LOG_INFO;
static int g_json = 0;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const g_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(log_level min) { g_min = min; }
void log_set_json(int on) { g_json = on; }

void log_msg(log_level lvl, const char *module, const char *fmt, ...) {
    if (lvl < g_min) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    int64_t now_ms = clock_wall_ms();
    time_t sec = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03dZ", (int)(now_ms % 1000));

    char *line = NULL;
    if (g_json) {
        /* the message may quote outside bytes (ids, broker errors): lossy, never refused */
        json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "ts", when, "level", g_names[lvl], "module",
                              json_string_lossy(module, strlen(module)), "msg", json_string_lossy(msg, strlen(msg)));
        line = o ? json_dumps(o, IEVO_JSON_DUMP) : NULL; /* NULL: out of memory, the plain line below */
        json_decref(o);
    }
    pthread_mutex_lock(&g_lock);
    if (line) fprintf(stderr, "%s\n", line);
    else fprintf(stderr, "%s %-5s %s: %s\n", when, g_names[lvl], module, msg);
    fflush(stderr);
    pthread_mutex_unlock(&g_lock);
    free(line);
}
