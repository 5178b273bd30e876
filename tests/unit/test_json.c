/* test_json: JSON as the code base reads and writes it: jansson under our flags
 * (JSON_REJECT_DUPLICATES everywhere, JSON_ALLOW_NUL where a NUL gets its own message) and
 * IEVO_JSON_DUMP with json_text's helpers. Values, escapes, limits and error positions, the
 * writer's output byte for byte, write -> parse round trips.
 *
 * Where jansson is stricter than a lenient reader could be, the case says why that is right for
 * what we parse: the model file header (written by us; read back trusting nothing), JSON-lines
 * events and item catalogues (hand-written test inputs and replays), the vocabulary of the text
 * encoder (a pinned file) and librdkafka's statistics (int64 counters, shallow objects).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json_text.h"

#define FLAGS JSON_REJECT_DUPLICATES

static json_t *parse_flags(const char *s, size_t flags) {
    json_error_t jerr;
    json_t *v = json_loadb(s, strlen(s), flags, &jerr);
    CHECK(v != NULL, "parse(%s): %s at byte %d", s, jerr.text, jerr.position);
    return v;
}

static json_t *parse(const char *s) { return parse_flags(s, FLAGS); }

/* s[0..len) must fail with a message containing want, at byte position pos (where jansson
 * stopped reading: just after the offending token). */
static void reject_flags(const char *s, size_t len, size_t flags, const char *want, int pos) {
    json_error_t jerr;
    json_t *v = json_loadb(s, len, flags, &jerr);
    CHECK(v == NULL, "accepted invalid JSON \"%.*s\"", (int)len, s);
    CHECK(strstr(jerr.text, want) != NULL, "\"%.*s\": message \"%s\" lacks \"%s\"", (int)len, s, jerr.text, want);
    CHECK(jerr.position == pos, "\"%.*s\": error at byte %d, expected %d (%s)", (int)len, s, jerr.position, pos, jerr.text);
    json_decref(v);
}

static void reject(const char *s, size_t len, const char *want, int pos) { reject_flags(s, len, FLAGS, want, pos); }

static void test_values(void) {
    json_t *v = parse(" {\"a\": [1, -2, 3.5, 1e3, -0, true, false, null, \"x\"], \"b\": {}, \"c\": [], \"d\": \"\"} ");
    REQUIRE(json_is_object(v) && json_object_size(v) == 4, "object");
    json_t *a = json_object_get(v, "a");
    REQUIRE(json_is_array(a) && json_array_size(a) == 9, "array");
    CHECK(json_is_integer(json_array_get(a, 0)) && json_integer_value(json_array_get(a, 0)) == 1, "1");
    CHECK(json_is_integer(json_array_get(a, 1)) && json_integer_value(json_array_get(a, 1)) == -2, "-2");
    CHECK(json_is_real(json_array_get(a, 2)) && json_real_value(json_array_get(a, 2)) == 3.5, "3.5");
    /* an exponent makes a real even when the value is whole: "ts": 1e3 is not an integer ts */
    CHECK(json_is_real(json_array_get(a, 3)) && json_real_value(json_array_get(a, 3)) == 1000, "1e3");
    CHECK(json_is_integer(json_array_get(a, 4)) && json_integer_value(json_array_get(a, 4)) == 0, "-0");
    CHECK(json_is_true(json_array_get(a, 5)) && json_is_false(json_array_get(a, 6)), "bools");
    CHECK(json_is_null(json_array_get(a, 7)), "null");
    CHECK(json_is_string(json_array_get(a, 8)) && !strcmp(json_string_value(json_array_get(a, 8)), "x"), "string");
    CHECK(json_is_object(json_object_get(v, "b")) && json_object_size(json_object_get(v, "b")) == 0, "empty object");
    CHECK(json_is_array(json_object_get(v, "c")) && json_array_size(json_object_get(v, "c")) == 0, "empty array");
    json_t *d = json_object_get(v, "d");
    CHECK(json_is_string(d) && json_string_length(d) == 0 && json_string_value(d)[0] == 0, "empty string");
    /* the getters as the code uses them: NULL for a missing key, a non-object, another type */
    CHECK(json_string_value(json_object_get(v, "a")) == NULL && json_object_get(v, "zz") == NULL &&
              json_object_get(a, "a") == NULL && json_array_get(a, 9) == NULL && json_array_size(v) == 0,
          "getters");
    json_decref(v);

    json_t *o = parse("{\"i\": 9007199254740993, \"f\": 2.5, \"neg\": -9223372036854775808, \"max\": 9223372036854775807}");
    CHECK(json_is_integer(json_object_get(o, "i")) && json_integer_value(json_object_get(o, "i")) == 9007199254740993LL,
          "int64 exact (beyond a double's 53 bits)");
    CHECK(!json_is_integer(json_object_get(o, "f")) && json_number_value(json_object_get(o, "f")) == 2.5,
          "fraction is not an int");
    CHECK(json_integer_value(json_object_get(o, "neg")) == INT64_MIN, "INT64_MIN");
    CHECK(json_integer_value(json_object_get(o, "max")) == INT64_MAX, "INT64_MAX");
    json_decref(o);
    /* An integer beyond int64 is a parse error, not a double. Right for us: header offsets and
     * sizes, event times in ms and librdkafka's counters are all int64; a value that does not fit
     * is corrupt input, and the line or file is refused naming where. */
    reject("{\"big\": 123456789012345678901234}", 33, "too big integer", 32);
    reject("[9223372036854775808]", 21, "too big integer", 20);
    /* A real of any length is fine (one that overflows a double is not). */
    o = parse("[1111111111111111111111111111111111.5e10, 1e-400]");
    CHECK(o && json_real_value(json_array_get(o, 0)) > 1.1e43 && json_real_value(json_array_get(o, 1)) == 0, "long reals");
    json_decref(o);
    reject("[1e400]", 7, "real number overflow", 6);
}

static void test_strings(void) {
    json_t *v = parse("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"]");
    const char *want = "a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    json_t *s = json_array_get(v, 0);
    CHECK(json_string_length(s) == strlen(want) && memcmp(json_string_value(s), want, strlen(want)) == 0,
          "escapes decode to \"%s\"", json_string_value(s) ? json_string_value(s) : "");
    json_decref(v);
    /* \u0000: an error by default; with JSON_ALLOW_NUL (JSON lines, vocabulary) the string keeps
     * its length, so the loaders can refuse it naming the field. */
    reject("[\"x\\u0000y\"]", 12, "JSON_ALLOW_NUL", 11);
    v = parse_flags("[\"x\\u0000y\"]", FLAGS | JSON_ALLOW_NUL);
    s = json_array_get(v, 0);
    CHECK(json_string_length(s) == 3 && json_string_value(s)[1] == 0 && json_string_value(s)[2] == 'y',
          "embedded NUL keeps its length");
    json_decref(v);
    /* ... never in a key, whatever the flags. */
    reject_flags("{\"a\\u0000b\":1}", 14, FLAGS | JSON_ALLOW_NUL, "NUL byte in object key", 11);
    /* Lone surrogates are refused (a lenient reader would make them U+FFFD). Right for us: each
     * is a broken string (a UTF-16 text cut in a pair), and an id or text silently changed would
     * key another user or item; the line is refused instead, naming where. */
    reject("[\"\\udc00z\"]", 11, "invalid Unicode '\\uDC00'", 10);
    reject("[\"\\ud800z\"]", 11, "invalid Unicode '\\uD800'", 10);
    reject("[\"\\ud800\\u0041\"]", 16, "invalid Unicode '\\uD800\\u0041'", 15);
    /* Raw UTF-8 is kept; invalid UTF-8 is refused (RFC 8259: JSON text is UTF-8), for the
     * same reason as lone surrogates. What we write is always valid (json_string_lossy). */
    v = parse("[\"h\xc3\xa9llo\"]");
    CHECK(json_string_length(json_array_get(v, 0)) == 6, "raw UTF-8 kept");
    json_decref(v);
    reject("[\"\xff\"]", 4, "unable to decode byte 0xff", 2);
    reject("[\"\xc0\xaf\"]", 5, "unable to decode byte 0xc0", 2);     /* overlong '/' */
    reject("[\"\xed\xa0\x80\"]", 6, "unable to decode byte 0xed", 2); /* an encoded surrogate */
}

static void test_errors(void) {
    reject("", 0, "'[' or '{' expected near end of file", 0);
    reject("   ", 3, "'[' or '{' expected near end of file", 3);
    /* Top-level scalars need JSON_DECODE_ANY, which nothing of ours passes: every document we
     * read is an object (header, events, items, statistics) or an array (vocabulary). */
    reject("5", 1, "'[' or '{' expected", 1);
    reject("\"s\"", 3, "'[' or '{' expected", 3);
    reject("{", 1, "string or '}' expected", 1);
    reject("{\"a\" 1}", 7, "':' expected", 6);
    reject("{\"a\":1,}", 8, "string or '}' expected", 8);
    reject("[1,]", 4, "unexpected token", 4);
    reject("[1 2]", 5, "']' expected", 4);
    reject("{\"a\":1} x", 9, "end of file expected", 9);
    reject("[01]", 4, "invalid token", 2);
    reject("[1.]", 4, "invalid token", 3);
    reject("[-]", 3, "invalid token", 2);
    reject("[1e]", 4, "invalid token", 3);
    reject("[tru]", 5, "invalid token", 4);
    reject("[nul]", 5, "invalid token", 4);
    reject("[\"abc", 5, "premature end of input", 5);
    reject("[\"ab\\", 5, "invalid escape", 5);
    reject("[\"a\nb\"]", 7, "unexpected newline", 3);
    reject("[\"a\x01\"]", 6, "control character 0x1", 3);
    reject("[\"\\x\"]", 6, "invalid escape", 4);
    reject("[\"\\u12G4\"]", 10, "invalid escape", 7);
    reject("\xef\xbb\xbf[1]", 6, "'[' or '{' expected", 3); /* a byte-order mark is not JSON */
    reject("[1] ", 2, "']' expected near end of file", 2); /* the length bounds the input: "[1" */
    /* A key twice is an error everywhere (JSON_REJECT_DUPLICATES): a lenient reader picks one
     * of the two silently, and which one differs between readers. */
    reject("{\"a\":1,\"a\":2}", 13, "duplicate object key", 10);
    json_t *v = parse("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"); /* the same key in different objects is fine */
    json_decref(v);
    /* Nesting: jansson stops at JSON_PARSER_MAX_DEPTH (2048), not the 64 a hand parser would
     * choose. Our documents are 1 to 3 deep; the limit only has to keep a hostile input from
     * exhausting the stack, and 2048 frames of jansson's parser are far below a thread's 8 MiB. */
    enum { D = JSON_PARSER_MAX_DEPTH };
    char *deep = malloc(2 * D + 4);
    REQUIRE(deep, "out of memory");
    memset(deep, '[', D + 1);
    memset(deep + D + 1, ']', D + 1);
    reject(deep, 2 * D + 2, "maximum parsing depth reached", D + 1);
    json_error_t jerr;
    v = json_loadb(deep + 1, 2 * D, FLAGS, &jerr); /* D [ then D ]: at the limit */
    CHECK(v != NULL, "depth %d rejected: %s", D, jerr.text);
    json_decref(v);
    free(deep);
    /* A NULL error pointer is allowed. */
    CHECK(json_loadb("{", 1, FLAGS, NULL) == NULL, "NULL error");
}

static void test_writer(void) {
    /* invalid UTF-8 is replaced byte by byte: \xff, then \xe2 and \x82 (a truncated sequence);
     * controls are escaped (\n short, others \u00XX), DEL and non-ASCII written as they are */
    const char raw[] = "q\"b\\s\x01\x1f\n\xc3\xa9\xff\xe2\x82z\x7f";
    json_t *o = json_pack("{s:o, s:i, s:o, s:o, s:o}", "k", json_string_lossy(raw, sizeof raw - 1), "n", 42, "f",
                          json_real_or_null(0.1f), "x", json_real_or_null(NAN), "e", json_string_lossy(NULL, 0));
    REQUIRE(o, "json_pack");
    char *text = json_dumps(o, IEVO_JSON_DUMP);
    const char *want = "{\"k\":\"q\\\"b\\\\s\\u0001\\u001F\\n\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\x7f\","
                       "\"n\":42,\"f\":0.100000001,\"x\":null,\"e\":\"\"}";
    CHECK(text && !strcmp(text, want), "writer output:\n%s\nwant:\n%s", text ? text : "(null)", want);
    json_decref(o);
    json_t *v = text ? parse(text) : NULL;
    json_t *k = json_object_get(v, "k");
    CHECK(json_string_length(k) == 21 && memcmp(json_string_value(k), "q\"b\\s\x01\x1f\n\xc3\xa9", 10) == 0,
          "write -> parse round trip");
    CHECK((float)json_number_value(json_object_get(v, "f")) == 0.1f, "float round trip");
    json_decref(v);
    free(text);

    /* Every float survives JSON_REAL_PRECISION(9) (a real always carries '.' or 'e', so it reads
     * back as a real: 1.0f is written "1.0", not "1"). */
    const float probes[] = {1.0f / 3, 1e-38f, 3.4028235e38f, -7.006492e-45f, 16777217.0f, 1.0f, 0.0f, -0.0f};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        json_t *a = json_pack("[o]", json_real_or_null(probes[i]));
        char *t = json_dumps(a, IEVO_JSON_DUMP);
        json_t *b = t ? parse(t) : NULL;
        json_t *x = json_array_get(b, 0);
        CHECK(json_is_real(x) && (float)json_real_value(x) == probes[i] && !signbit(json_real_value(x)) == !signbit(probes[i]),
              "float %g -> \"%s\"", (double)probes[i], t ? t : "(null)");
        json_decref(a);
        json_decref(b);
        free(t);
    }
    json_t *pair = json_pack("[o,o]", json_real_or_null(1.0f), json_real_or_null(-INFINITY));
    text = json_dumps(pair, IEVO_JSON_DUMP);
    CHECK(text && !strcmp(text, "[1.0,null]"), "1.0f and -inf: %s", text ? text : "(null)");
    free(text);
    json_decref(pair);

    /* Objects are written in insertion order: the model file header relies on it ("__metadata__"
     * first, tensors in file order), and replacing a key keeps its place. */
    o = json_object();
    json_object_set_new(o, "z", json_integer(1));
    json_object_set_new(o, "__metadata__", json_object());
    json_object_set_new(o, "a", json_integer(2));
    json_object_set_new(o, "z", json_integer(3));
    text = json_dumps(o, IEVO_JSON_DUMP);
    CHECK(text && !strcmp(text, "{\"z\":3,\"__metadata__\":{},\"a\":2}"), "order: %s", text ? text : "(null)");
    free(text);
    json_decref(o);
    /* ... and parsing keeps the document's order for json_object_foreach. */
    o = parse("{\"m\":1,\"b\":2,\"x\":3,\"a\":4}");
    char keys[16] = "";
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) strncat(keys, key, sizeof keys - strlen(keys) - 1);
    CHECK(!strcmp(keys, "mbxa"), "iteration order: %s", keys);
    json_decref(o);

    /* Output far beyond any first buffer. */
    json_t *big = json_array();
    for (int i = 0; i < 1000; i++) json_array_append_new(big, json_integer(i));
    text = json_dumps(big, IEVO_JSON_DUMP);
    CHECK(text && strlen(text) == 3891 && !strncmp(text, "[0,1,2,", 7) && !strcmp(text + 3886, ",999]"), "growth: %zu",
          text ? strlen(text) : 0);
    free(text);
    json_decref(big);
}

int main(void) {
    test_values();
    test_strings();
    test_errors();
    test_writer();
    return check_exit("test_json");
}
