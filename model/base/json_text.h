/* json_text: what ievo adds to jansson (the JSON library every file uses for parsing and
 * writing JSON), in the few places where our data does not fit its API as it is.
 *
 * Conventions for JSON anywhere in the code base:
 *   - parse with json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr) and report
 *     json_error_text(&jerr, ...) with jerr.position; read fields with json_object_get /
 *     json_unpack_ex;
 *   - build json_t values and write them with json_dumpb / json_dumpf / json_dumps and
 *     IEVO_JSON_DUMP (compact; reals to 9 significant digits, which round-trips a float32);
 *   - strings that come from outside (ids, texts: any bytes) through json_string_lossy, never
 *     json_stringn (which returns NULL on invalid UTF-8) or json_stringn_nocheck (which would
 *     write it);
 *   - floating values through json_real_or_null (jansson refuses NaN and infinities).
 */
#ifndef IEVO_JSON_TEXT_H
#define IEVO_JSON_TEXT_H

#include <stddef.h>

#include <jansson.h>

#define IEVO_JSON_DUMP (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* A JSON string of s[0..n): valid UTF-8 is kept as it is (NUL bytes included), each byte of an
 * invalid sequence becomes U+FFFD. NULL only when out of memory. */
json_t *json_string_lossy(const char *s, size_t n);

/* A JSON real, or null for NaN and infinities. NULL only when out of memory. */
json_t *json_real_or_null(double v);

/* jansson's message for a parse error, fit for one line of a log: it quotes the input near the
 * error ("near '...'"), and input bytes that are control characters (a line break ends a log
 * line and forges the next), DEL or not ASCII become '?'. Returns out (n >= 1). */
const char *json_error_text(const json_error_t *e, char *out, size_t n);

#endif
