/* test_json_text: json_string_lossy and json_real_or_null, written out by jansson; jansson's
 * parse errors, which quote the input, made one printable line by json_error_text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json_text.h"

/* s[0..n) as a JSON string, compact, as IEVO_JSON_DUMP writes it. */
static void expect_string(const char *s, size_t n, const char *want) {
    json_t *v = json_string_lossy(s, n);
    REQUIRE(v, "json_string_lossy returned NULL");
    char *text = json_dumps(v, IEVO_JSON_DUMP | JSON_ENCODE_ANY);
    CHECK(text && !strcmp(text, want), "got %s, want %s", text ? text : "(null)", want);
    free(text);
    json_decref(v);
}

int main(void) {
    expect_string("abc", 3, "\"abc\"");
    expect_string(NULL, 0, "\"\"");                                         /* an empty field may have no pointer */
    expect_string("caf\xC3\xA9", 5, "\"caf\xC3\xA9\"");                       /* valid 2-byte sequence kept */
    expect_string("a\xFF" "b", 3, "\"a\xEF\xBF\xBD" "b\"");                   /* a stray byte */
    expect_string("\xC3", 1, "\"\xEF\xBF\xBD\"");                             /* truncated sequence */
    expect_string("\xC0\xAF", 2, "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");             /* overlong '/' */
    expect_string("\xED\xA0\x80", 3, "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""); /* a surrogate */
    expect_string("\xF4\x90\x80\x80", 4,
                  "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");   /* above U+10FFFF */
    expect_string("a\0b", 3, "\"a\\u0000b\"");                               /* NUL kept, escaped */
    expect_string("q\"\\\n", 4, "\"q\\\"\\\\\\n\"");

    json_t *o = json_object();
    json_object_set_new(o, "f", json_real_or_null(0.1f));
    json_object_set_new(o, "nan", json_real_or_null(NAN));
    json_object_set_new(o, "inf", json_real_or_null(-INFINITY));
    char *text = json_dumps(o, IEVO_JSON_DUMP | JSON_PRESERVE_ORDER);
    CHECK(text && !strcmp(text, "{\"f\":0.100000001,\"nan\":null,\"inf\":null}"), "got %s", text ? text : "(null)");
    free(text);
    json_decref(o);

    /* A string cut by a line break: jansson quotes the input around it, break included. */
    static const char bad[] = "{\"text\":\"caf\xc3\xa9 \\u00\n\nforged log line\"}";
    json_error_t jerr;
    char jt[JSON_ERROR_TEXT_LENGTH];
    CHECK(!json_loadb(bad, sizeof bad - 1, JSON_REJECT_DUPLICATES, &jerr), "parsed");
    CHECK(strchr(jerr.text, '\n'), "jansson no longer quotes the line break (%s): the test needs another input", jerr.text);
    json_error_text(&jerr, jt, sizeof jt);
    for (const char *p = jt; *p; p++) CHECK(*p >= 0x20 && *p < 0x7f, "byte 0x%02x in '%s'", (unsigned char)*p, jt);
    CHECK(strstr(jt, "invalid escape"), "the message is lost: %s", jt);
    char small[8];
    CHECK(strlen(json_error_text(&jerr, small, sizeof small)) == 7, "not cut to the buffer");
    return check_exit("test_json_text");
}
