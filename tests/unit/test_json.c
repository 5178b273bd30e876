/* test_json: the DOM parser (values, escapes, limits, error offsets) and the escaping writer,
 * including write -> parse round trips. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "json.h"

static json_value *parse(const char *s) {
    char err[128];
    json_value *v = json_parse(s, strlen(s), err, sizeof err);
    CHECK(v != NULL, "parse(%s): %s", s, err);
    return v;
}

static void reject(const char *s, size_t len, const char *want) {
    char err[128] = "";
    json_value *v = json_parse(s, len, err, sizeof err);
    CHECK(v == NULL, "accepted invalid JSON \"%.*s\"", (int)len, s);
    CHECK(strstr(err, want) != NULL, "\"%.*s\": message \"%s\" lacks \"%s\"", (int)len, s, err, want);
    json_free(v);
}

static void test_values(void) {
    json_value *v = parse(" {\"a\": [1, -2, 3.5, 1e3, -0, true, false, null, \"x\"], \"b\": {}, \"c\": [], \"d\": \"\"} ");
    REQUIRE(v && v->type == JSON_OBJECT && v->len == 4, "object");
    const json_value *a = json_get(v, "a");
    REQUIRE(a && a->type == JSON_ARRAY && a->len == 9, "array");
    CHECK(a->items[0]->is_integer && a->items[0]->integer == 1, "1");
    CHECK(a->items[1]->is_integer && a->items[1]->integer == -2, "-2");
    CHECK(!a->items[2]->is_integer && a->items[2]->number == 3.5, "3.5");
    CHECK(!a->items[3]->is_integer && a->items[3]->number == 1000, "1e3");
    CHECK(a->items[4]->is_integer && a->items[4]->integer == 0, "-0");
    CHECK(a->items[5]->type == JSON_BOOL && a->items[5]->boolean == 1 && a->items[6]->boolean == 0, "bools");
    CHECK(a->items[7]->type == JSON_NULL, "null");
    CHECK(a->items[8]->type == JSON_STRING && strcmp(a->items[8]->str, "x") == 0, "string");
    CHECK(json_get(v, "b")->type == JSON_OBJECT && json_get(v, "b")->len == 0, "empty object");
    CHECK(json_get(v, "c")->type == JSON_ARRAY && json_get(v, "c")->len == 0, "empty array");
    const char *s;
    size_t n;
    CHECK(json_get_string(v, "d", &s, &n) == 0 && n == 0 && s[0] == 0, "empty string");
    CHECK(json_get_string(v, "a", &s, &n) == -1 && json_get(v, "zz") == NULL && json_get(a, "a") == NULL, "getters");
    int64_t i;
    double d;
    json_value *o = parse("{\"i\": 9007199254740993, \"f\": 2.5, \"big\": 123456789012345678901234, \"neg\": -9223372036854775808}");
    CHECK(json_get_int(o, "i", &i) == 0 && i == 9007199254740993LL, "int64 exact");
    CHECK(json_get_int(o, "f", &i) == -1 && json_get_number(o, "f", &d) == 0 && d == 2.5, "fraction is not an int");
    CHECK(json_get_int(o, "big", &i) == -1 && json_get_number(o, "big", &d) == 0 && d > 1.2e23, "beyond int64");
    CHECK(json_get_int(o, "neg", &i) == 0 && i == INT64_MIN, "INT64_MIN");
    json_free(o);
    json_free(v);
}

static void test_strings(void) {
    json_value *v = parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"");
    const char *want = "a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    CHECK(v && v->len == strlen(want) && memcmp(v->str, want, v->len) == 0, "escapes decode to \"%s\"", v ? v->str : "");
    json_free(v);
    v = parse("\"x\\u0000y\"");
    CHECK(v && v->len == 3 && v->str[1] == 0 && v->str[2] == 'y', "embedded NUL keeps its length");
    json_free(v);
    v = parse("\"\\udc00z\"");
    CHECK(v && v->len == 4 && memcmp(v->str, "\xef\xbf\xbdz", 4) == 0, "lone low surrogate -> U+FFFD");
    json_free(v);
    v = parse("\"\\ud800z\"");
    CHECK(v && v->len == 4 && memcmp(v->str, "\xef\xbf\xbdz", 4) == 0, "lone high surrogate -> U+FFFD");
    json_free(v);
    v = parse("\"h\xc3\xa9llo\"");
    CHECK(v && v->len == 6, "raw UTF-8 kept");
    json_free(v);
}

static void test_errors(void) {
    reject("", 0, "unexpected end");
    reject("   ", 3, "unexpected end");
    reject("{", 1, "expected object key");
    reject("{\"a\" 1}", 7, "expected ':'");
    reject("{\"a\":1,}", 8, "expected object key");
    reject("[1,]", 4, "bad number");
    reject("[1 2]", 5, "expected ','");
    reject("{\"a\":1} x", 9, "trailing characters at byte 8");
    reject("01", 2, "trailing");
    reject("1.", 2, "bad number");
    reject("-", 1, "bad number");
    reject("1e", 2, "bad number");
    reject("tru", 3, "unexpected word");
    reject("nul", 3, "unexpected word");
    reject("\"abc", 4, "unterminated string");
    reject("\"ab\\", 4, "unterminated string");
    reject("\"a\nb\"", 5, "control character");
    reject("\"\\x\"", 4, "bad escape");
    reject("\"\\u12G4\"", 8, "bad \\u escape");
    reject("\"\\ud800\\u0041\"", 14, "bad surrogate pair");
    reject("[1] ", 2, "expected ','"); /* the length bounds the input: "[1" */
    char deep[300];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    reject(deep, 200, "nesting too deep");
    json_value *v = json_parse(deep + 36, 128, NULL, 0); /* 64 [ then 64 ]: at the limit */
    CHECK(v != NULL, "depth 64 rejected");
    json_free(v);
    char num[80];
    memset(num, '1', 70);
    reject(num, 70, "number too long");
    /* NULL err is allowed. */
    CHECK(json_parse("{", 1, NULL, 0) == NULL, "NULL err");
}

static void test_writer(void) {
    json_buf b = {0};
    /* invalid UTF-8 is replaced byte by byte: \xff, then \xe2 and \x82 (a truncated sequence) */
    const char raw[] = "q\"b\\s\x01\x1f\n\xc3\xa9\xff\xe2\x82z\x7f";
    CHECK(json_buf_append(&b, "{\"k\":", 5) == 0, "append");
    CHECK(json_buf_string(&b, raw, sizeof raw - 1) == 0, "string");
    CHECK(json_buf_printf(&b, ",\"n\":%d,\"f\":", 42) == 0, "printf");
    CHECK(json_buf_float(&b, 0.1f) == 0 && json_buf_append(&b, ",\"x\":", 5) == 0 && json_buf_float(&b, NAN) == 0, "float");
    CHECK(json_buf_append(&b, ",\"e\":", 5) == 0 && json_buf_append(&b, NULL, 0) == 0 && json_buf_string(&b, "", 0) == 0, "empty");
    CHECK(json_buf_append(&b, "}", 1) == 0, "close");
    const char *want = "{\"k\":\"q\\\"b\\\\s\\u0001\\u001f\\u000a\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\x7f\",\"n\":42,\"f\":0.100000001,\"x\":null,\"e\":\"\"}";
    CHECK(b.len == strlen(want) && strcmp(b.data, want) == 0, "writer output:\n%s\nwant:\n%s", b.data, want);
    json_value *v = parse(b.data);
    const char *s;
    size_t n;
    CHECK(v && json_get_string(v, "k", &s, &n) == 0 && n == 21 && memcmp(s, "q\"b\\s\x01\x1f\n\xc3\xa9", 10) == 0,
          "write -> parse round trip");
    double d;
    CHECK(json_get_number(v, "f", &d) == 0 && (float)d == 0.1f, "float round trip");
    json_free(v);
    json_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0, "free resets");
    /* Every float survives %.9g. */
    float probes[] = {1.0f / 3, 1e-38f, 3.4028235e38f, -7.006492e-45f, 16777217.0f, 0.0f, -0.0f};
    for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++) {
        json_buf fb = {0};
        json_buf_float(&fb, probes[k]);
        json_value *fv = parse(fb.data);
        CHECK(fv && (float)fv->number == probes[k], "float %g -> \"%s\"", (double)probes[k], fb.data);
        json_free(fv);
        json_buf_free(&fb);
    }
    /* Growth beyond the first allocation. */
    json_buf big = {0};
    for (int k = 0; k < 1000; k++) json_buf_printf(&big, "%d,", k);
    CHECK(big.len == 3890 && !big.failed && big.data[big.len] == 0, "growth: %zu", big.len);
    json_buf_free(&big);
}

int main(void) {
    test_values();
    test_strings();
    test_errors();
    test_writer();
    return check_exit("test_json");
}
