/* log: one line per significant happening, to stderr, with time, level, module and context.
 *
 * Plain text by default ("2026-11-28T04:32:00.123Z INFO  worker: assigned 4 partitions");
 * log_set_json(1) switches to one JSON object per line for log shippers. */
#ifndef IEVO_LOG_H
#define IEVO_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

void log_set_level(log_level min);
void log_set_json(int on);
void log_msg(log_level lvl, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define LOG_D(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)
#define LOG_I(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define LOG_W(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define LOG_E(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif
