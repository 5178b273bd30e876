/* test_log: the log line formats. With log_set_json(1) each line is one JSON object with ts,
 * level, module and msg, whatever bytes the message quotes (log shippers parse every line), and
 * the fields a call names after them; a text line is one line whatever it quotes, with no byte
 * a terminal would act on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "log.h"

/* Runs the logging calls of `what` with stderr sent to a file and returns what was written. */
static char *captured(void (*what)(void)) {
    char path[] = "/tmp/ievo-test-log-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    REQUIRE(saved >= 0 && dup2(fd, STDERR_FILENO) >= 0, "dup2");
    what();
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    FILE *f = fdopen(fd, "r");
    REQUIRE(f && fseek(f, 0, SEEK_SET) == 0, "reopen");
    char *text = calloc(1, 8192);
    size_t n = fread(text, 1, 8191, f);
    text[n] = 0;
    fclose(f);
    unlink(path);
    return text;
}

static void log_json_lines(void) {
    log_set_json(1);
    LOG_W("wire", "bad id \"%s\"\n\ttab %s", "q\\", "\xff\xc3"); /* a quote, controls, invalid UTF-8 */
    LOG_D("wire", "below the level: not written");
    LOG_I("m\xc3\xa9t", "%s", "");
    log_set_json(0);
}

static void log_text_line(void) { LOG_E("worker", "plain %d", 7); }

static const char HOSTILE[] = "u\n\x1b[31mred\r\t\\ \xc2\x9b" "2J \xff caf\xc3\xa9 \x7f";

static void log_fields_lines(void) {
    log_set_json(1);
    LOG_WF("dlq", LOG_AT(LF_TOPIC("in"), LF_PARTITION(0), LF_OFFSET(0), LF_USER(HOSTILE, sizeof HOSTILE - 1),
                         LF_ERROR("framing"), LF_COUNT(0), LF_DURATION_MS(1.23456)),
           "dead letter of %s", HOSTILE);
    LOG_IF("worker", LOG_AT(LF_COUNT(12)), "only a count");
    LOG_IF("worker", NULL, "no fields");
    log_set_json(0);
    LOG_WF("dlq", LOG_AT(LF_TOPIC("in"), LF_PARTITION(3)), "dead letter of %s", HOSTILE);
}

/* The fields of a JSON line, and that it has no others. */
static void check_fields(const char *line) {
    json_error_t jerr;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
    REQUIRE(o, "not JSON (%s): %s", jerr.text, line);
    CHECK(json_object_size(o) == 11, "11 keys expected: %s", line);
    CHECK(!strcmp(json_string_value(json_object_get(o, "topic")), "in") &&
              json_integer_value(json_object_get(o, "partition")) == 0 && json_is_integer(json_object_get(o, "partition")) &&
              json_is_integer(json_object_get(o, "offset")) && json_integer_value(json_object_get(o, "offset")) == 0 &&
              !strcmp(json_string_value(json_object_get(o, "error")), "framing") &&
              json_is_integer(json_object_get(o, "count")) &&
              fabs(json_real_value(json_object_get(o, "duration_ms")) - 1.235) < 1e-9,
          "fields: %s", line);
    const char *uid = json_string_value(json_object_get(o, "user_id"));
    CHECK(uid && !strncmp(uid, "u\n\x1b[31mred", 10) && strstr(uid, "\xc2\x9b") && strstr(uid, "caf\xc3\xa9") &&
              strstr(uid, "\xef\xbf\xbd") && strstr(uid, "\x7f"),
          "user_id: %s", line);
    CHECK(strstr(line, "\",\"msg\":\"dead letter of ") &&
              strstr(line, "\",\"topic\":\"in\",\"partition\":0,\"offset\":0,\"user_id\":\""),
          "order: %s", line);
    json_decref(o);
}

/* No byte below 0x20 but the newline that ends each line, no DEL, no C1 control. */
static int terminal_safe(const char *text) {
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if ((*p < 0x20 && *p != '\n') || *p == 0x7F || (p[0] == 0xC2 && p[1] >= 0x80 && p[1] < 0xA0)) return 0;
    return 1;
}

int main(void) {
    log_set_level(LOG_INFO);
    char *text = captured(log_json_lines);
    char *second = strchr(text, '\n');
    REQUIRE(second && second[1] && strchr(second + 1, '\n'), "two lines expected, got: %s", text);
    *second++ = 0;
    *strchr(second, '\n') = 0;
    json_error_t jerr;
    json_t *a = json_loads(text, JSON_REJECT_DUPLICATES, &jerr), *b = json_loads(second, JSON_REJECT_DUPLICATES, &jerr);
    REQUIRE(a && b, "a log line is not JSON (%s): %s", jerr.text, a ? second : text);
    CHECK(json_object_size(a) == 4 && !strcmp(json_string_value(json_object_get(a, "level")), "WARN") &&
              !strcmp(json_string_value(json_object_get(a, "module")), "wire"),
          "fields: %s", text);
    CHECK(!strcmp(json_string_value(json_object_get(a, "msg")), "bad id \"q\\\"\n\ttab \xef\xbf\xbd\xef\xbf\xbd"),
          "msg: %s", text);
    const char *ts = json_string_value(json_object_get(a, "ts"));
    CHECK(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z', "ts: %s", ts ? ts : "(none)");
    CHECK(!strcmp(json_string_value(json_object_get(b, "module")), "m\xc3\xa9t") &&
              !strcmp(json_string_value(json_object_get(b, "msg")), "") &&
              !strcmp(json_string_value(json_object_get(b, "level")), "INFO"),
          "second line: %s", second);
    /* the keys in the order shippers have always seen them */
    CHECK(!strncmp(text, "{\"ts\":\"", 7) && strstr(text, "\",\"level\":\"WARN\",\"module\":\"wire\",\"msg\":\""), "order: %s",
          text);
    json_decref(a);
    json_decref(b);
    free(text);

    text = captured(log_fields_lines);
    CHECK(terminal_safe(text), "a raw control byte: %s", text);
    char *lines[5] = {0};
    int n = 0;
    for (char *p = text; *p && n < 5; n++) {
        lines[n] = p;
        char *nl = strchr(p, '\n');
        REQUIRE(nl, "an unterminated line: %s", p);
        *nl = 0;
        p = nl + 1;
    }
    REQUIRE(n == 4, "4 lines expected, got %d", n);
    check_fields(lines[0]);
    CHECK(strstr(lines[1], "\"msg\":\"only a count\",\"count\":12}") != NULL, "count: %s", lines[1]);
    CHECK(strstr(lines[2], "\"msg\":\"no fields\"}") != NULL, "no fields: %s", lines[2]);
    CHECK(strstr(lines[3], " WARN  dlq: dead letter of u\\n\\x1b[31mred\\r\\t\\\\ \\xc2\\x9b2J \\xff caf\xc3\xa9 \\x7f") != NULL,
          "text escapes: %s", lines[3]);
    free(text);

    char small[8];
    CHECK(log_escape("ab\ncd", 5, small, sizeof small) == 6 && !strcmp(small, "ab\\ncd"), "escape: %s", small);
    CHECK(log_escape("abc\x1b", 4, small, 7) == 3 && !strcmp(small, "abc"), "cut before a split escape: %s", small);

    text = captured(log_text_line);
    CHECK(strlen(text) > 25 && text[24] == ' ' && !strcmp(text + 25, "ERROR worker: plain 7\n"), "text line: %s", text);
    free(text);
    return check_exit("test_log");
}
