/* log: timestamped lines on stderr, text or JSON, with optional fields. See log.h. */
#include "log.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "json_text.h"
#include "utf8.h"

static log_level g_min = LOG_INFO;
static int g_json = 0;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const g_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(log_level min) { g_min = min; }
void log_set_json(int on) { g_json = on; }

size_t log_escape(const char *s, size_t n, char *out, size_t outlen) {
    const unsigned char *b = (const unsigned char *)s;
    size_t o = 0;
    if (!outlen) return 0;
    for (size_t i = 0; i < n;) {
        char esc[5] = "";
        size_t take = 1;
        if (b[i] >= 0x80) {
            size_t l = utf8_sequence_len(b + i, n - i);
            /* C1 controls (U+0080..U+009F: CSI among them) act on terminals like ESC does */
            if (l && !(l == 2 && b[i] == 0xC2 && b[i + 1] < 0xA0)) take = l;
            else snprintf(esc, sizeof esc, "\\x%02x", b[i]);
        } else if (b[i] == '\\') {
            memcpy(esc, "\\\\", 3);
        } else if (b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
            esc[0] = '\\', esc[1] = b[i] == '\n' ? 'n' : b[i] == '\r' ? 'r' : 't', esc[2] = 0;
        } else if (b[i] < 0x20 || b[i] == 0x7F) {
            snprintf(esc, sizeof esc, "\\x%02x", b[i]);
        }
        const char *piece = esc[0] ? esc : (const char *)b + i;
        size_t len = esc[0] ? strlen(esc) : take;
        if (o + len >= outlen) break;
        memcpy(out + o, piece, len);
        o += len;
        i += esc[0] ? 1 : take;
    }
    out[o] = 0;
    return o;
}

/* ts, level, module, msg, then the fields present, in a fixed order. NULL: out of memory. */
static char *json_line(const char *when, log_level lvl, const char *module, const char *msg, const log_fields *f) {
    /* the message and ids may quote outside bytes: lossy, never refused */
    json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "ts", when, "level", g_names[lvl], "module",
                          json_string_lossy(module, strlen(module)), "msg", json_string_lossy(msg, strlen(msg)));
    if (o && f) {
        if (f->topic) json_object_set_new(o, "topic", json_string_lossy(f->topic, strlen(f->topic)));
        if (f->has_partition) json_object_set_new(o, "partition", json_integer(f->partition));
        if (f->has_offset) json_object_set_new(o, "offset", json_integer(f->offset));
        if (f->user_id) json_object_set_new(o, "user_id", json_string_lossy(f->user_id, f->user_id_len));
        if (f->error) json_object_set_new(o, "error", json_string_lossy(f->error, strlen(f->error)));
        if (f->has_count) json_object_set_new(o, "count", json_integer(f->count));
        if (f->has_duration_ms)
            json_object_set_new(o, "duration_ms", json_real_or_null(round(f->duration_ms * 1000.0) / 1000.0));
    }
    /* ASCII only, DEL escaped too: a line shown on a terminal holds no byte it would act on */
    char *line = o ? json_dumps(o, IEVO_JSON_DUMP | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    size_t dels = 0;
    for (const char *p = line; p && *p; p++) dels += *p == 0x7F;
    if (!dels) return line;
    char *out = malloc(strlen(line) + 5 * dels + 1), *q = out; /* DEL is only ever inside a string */
    for (const char *p = line; out && *p; p++) {
        if (*p == 0x7F) memcpy(q, "\\u007f", 6), q += 6;
        else *q++ = *p;
    }
    if (out) *q = 0;
    free(line);
    return out;
}

static void log_line(log_level lvl, const char *module, const log_fields *f, const char *fmt, va_list ap) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);

    int64_t now_ms = clock_wall_ms();
    time_t sec = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03dZ", (int)(now_ms % 1000));

    char *line = g_json ? json_line(when, lvl, module, msg, f) : NULL; /* NULL: out of memory, text below */
    char mod_text[128], msg_text[4 * sizeof msg];
    if (!line) {
        log_escape(module, strlen(module), mod_text, sizeof mod_text);
        log_escape(msg, strlen(msg), msg_text, sizeof msg_text);
    }
    pthread_mutex_lock(&g_lock);
    if (line) fprintf(stderr, "%s\n", line);
    else fprintf(stderr, "%s %-5s %s: %s\n", when, g_names[lvl], mod_text, msg_text);
    fflush(stderr);
    pthread_mutex_unlock(&g_lock);
    free(line);
}

void log_msg(log_level lvl, const char *module, const char *fmt, ...) {
    if (lvl < g_min) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(lvl, module, NULL, fmt, ap);
    va_end(ap);
}

void log_msgf(log_level lvl, const char *module, const log_fields *f, const char *fmt, ...) {
    if (lvl < g_min) return;
    va_list ap;
    va_start(ap, fmt);
    log_line(lvl, module, f, fmt, ap);
    va_end(ap);
}
