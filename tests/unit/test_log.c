/* test_log: the log line formats. With log_set_json(1) each line is one JSON object with ts,
 * level, module and msg, whatever bytes the message quotes (log shippers parse every line). */
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

    text = captured(log_text_line);
    CHECK(strlen(text) > 25 && text[24] == ' ' && !strcmp(text + 25, "ERROR worker: plain 7\n"), "text line: %s", text);
    free(text);
    return check_exit("test_log");
}
