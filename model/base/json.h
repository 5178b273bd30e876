/* json: a small DOM parser and an escaping writer, for the model file header and JSON lines.
 *
 * Why our own: the model file header, `--jsonl` events and `ievo consume` output are the only
 * JSON we touch, all small and trusted-but-checked. Parsing is bounded (depth <= 64, input
 * length given), every failure returns NULL with a message naming the byte offset.
 */
#ifndef IEVO_JSON_H
#define IEVO_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    int boolean;          /* JSON_BOOL */
    double number;        /* JSON_NUMBER */
    int64_t integer;      /* JSON_NUMBER: exact value when is_integer */
    int is_integer;       /* JSON_NUMBER written without fraction or exponent and fits int64 */
    char *str;            /* JSON_STRING: NUL-terminated, may contain NUL (use len) */
    size_t len;           /* JSON_STRING: bytes; JSON_ARRAY/JSON_OBJECT: element count */
    json_value **items;   /* JSON_ARRAY elements, JSON_OBJECT values */
    char **keys;          /* JSON_OBJECT keys (NUL-terminated) */
};

/* Parses exactly one JSON value from text[0..len) (surrounding whitespace allowed).
 * Returns NULL and fills err on failure. Free with json_free. */
json_value *json_parse(const char *text, size_t len, char *err, size_t errlen);
void json_free(json_value *v);

/* Object member by key, or NULL (also NULL when obj is not an object). */
const json_value *json_get(const json_value *obj, const char *key);
/* Typed getters: return 0 on success, -1 when missing or of another type. */
int json_get_string(const json_value *obj, const char *key, const char **out, size_t *len);
int json_get_int(const json_value *obj, const char *key, int64_t *out);
int json_get_number(const json_value *obj, const char *key, double *out);

/* A growable byte buffer used to build JSON text. All appends return 0, or -1 on ENOMEM
 * (after which the buffer is unusable until reset). */
typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} json_buf;
void json_buf_free(json_buf *b);
int json_buf_append(json_buf *b, const char *s, size_t n);
int json_buf_printf(json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s[0..n) as a quoted, escaped JSON string (invalid UTF-8 bytes become U+FFFD). */
int json_buf_string(json_buf *b, const char *s, size_t n);
/* Appends a float the way JSON readers round-trip it (%.9g; NaN/Inf become null). */
int json_buf_float(json_buf *b, float f);

#endif
