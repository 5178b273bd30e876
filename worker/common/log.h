/* log: one line per significant happening, to stderr, with time, level, module and context.
 *
 * Plain text by default ("2026-11-28T04:32:00.123Z INFO  worker: assigned 4 partitions");
 * log_set_json(1) switches to one JSON object per line for log shippers.
 *
 * A line about one thing that a log pipeline should be able to index (a partition, an offset, a
 * dead letter's class) names it in a field list beside the prose, through the *F variants:
 *
 *     LOG_WF("dlq", LOG_AT(LF_TOPIC(t), LF_PARTITION(p), LF_OFFSET(o), LF_ERROR(cls)),
 *            "%s [%d] offset %lld -> %s: %s", ...);
 *
 * JSON lines carry the fields as keys after msg (docs/operations.md lists them: topic,
 * partition, offset, user_id, error, count, duration_ms); text lines are the prose alone.
 * Text lines escape what is not printable text (control characters, terminal escapes, invalid
 * UTF-8, the backslash): ids from outside can neither split a line nor drive a terminal. */
#ifndef IEVO_LOG_H
#define IEVO_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

/* What a line is about, for machines. A string field is absent when NULL, a number when its
 * has_ flag is 0: set them through the LF_ macros, which set both. */
typedef struct {
    const char *topic;
    const char *user_id;       /* outside bytes, user_id_len of them (invalid UTF-8 replaced) */
    size_t user_id_len;
    const char *error;         /* a stable code: a dead letter's class, librdkafka's error name */
    int32_t partition;
    int64_t offset, count;
    double duration_ms;
    unsigned char has_partition, has_offset, has_count, has_duration_ms;
} log_fields;

#define LOG_AT(...) (&(const log_fields){__VA_ARGS__})
#define LF_TOPIC(t) .topic = (t)
#define LF_PARTITION(p) .partition = (int32_t)(p), .has_partition = 1
#define LF_OFFSET(o) .offset = (int64_t)(o), .has_offset = 1
#define LF_USER(id, len) .user_id = (id), .user_id_len = (len)
#define LF_ERROR(code) .error = (code)
#define LF_COUNT(n) .count = (int64_t)(n), .has_count = 1
#define LF_DURATION_MS(ms) .duration_ms = (double)(ms), .has_duration_ms = 1

void log_set_level(log_level min);
void log_set_json(int on);
void log_msg(log_level lvl, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* log_msg with fields (f may be NULL). */
void log_msgf(log_level lvl, const char *module, const log_fields *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The text form of s[0..n) into out (always NUL-terminated, cut short when it does not fit):
 * printable UTF-8 kept, "\\" for a backslash, \n \r \t, and \xNN for every other control
 * byte (C0, DEL), every byte of a C1 control (U+0080..U+009F) and of invalid UTF-8. Returns
 * the length written. */
size_t log_escape(const char *s, size_t n, char *out, size_t outlen);

#define LOG_D(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)
#define LOG_I(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define LOG_W(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define LOG_E(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)
#define LOG_DF(mod, f, ...) log_msgf(LOG_DEBUG, mod, f, __VA_ARGS__)
#define LOG_IF(mod, f, ...) log_msgf(LOG_INFO, mod, f, __VA_ARGS__)
#define LOG_WF(mod, f, ...) log_msgf(LOG_WARN, mod, f, __VA_ARGS__)
#define LOG_EF(mod, f, ...) log_msgf(LOG_ERROR, mod, f, __VA_ARGS__)

#endif
