/* log: timestamped lines on stderr, text or JSON. See log.h. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "json.h"

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

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

    pthread_mutex_lock(&g_lock);
    if (g_json) {
        json_buf b = {0};
        json_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":", when, g_names[lvl]);
        json_buf_string(&b, module, strlen(module));
        json_buf_append(&b, ",\"msg\":", 7);
        json_buf_string(&b, msg, strlen(msg));
        json_buf_append(&b, "}\n", 2);
        if (!b.failed) fwrite(b.data, 1, b.len, stderr);
        json_buf_free(&b);
    } else {
        fprintf(stderr, "%s %-5s %s: %s\n", when, g_names[lvl], module, msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&g_lock);
}
