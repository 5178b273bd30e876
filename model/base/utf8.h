/* utf8: is a byte string valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF)? For what must be a string on the wire or in JSON: Avro strings are UTF-8. */
#ifndef IEVO_UTF8_H
#define IEVO_UTF8_H

#include <stddef.h>

/* The length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when it is not one. */
size_t utf8_sequence_len(const unsigned char *s, size_t n);
/* 1 when all of s[0..n) is valid UTF-8. */
int utf8_valid(const char *s, size_t n);

#endif
