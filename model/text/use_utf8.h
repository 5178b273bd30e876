/* use_utf8: UTF-8 bytes -> code points exactly as Node's Buffer.toString("utf8") decodes them,
 * which is what the USE tokenizer's JavaScript sees: every invalid or truncated sequence becomes
 * one U+FFFD per maximal subpart (the WHATWG decoder).
 *
 * Why our own: utf8proc, which normalises the text (use_tokenizer.c), reads valid UTF-8 only. Its
 * utf8proc_iterate rejects a bad sequence without telling how many bytes its maximal subpart
 * spans, and the number of U+FFFD changes the tokens. tests/unit/test_use_nfkc.c pins the rules.
 */
#ifndef IEVO_USE_UTF8_H
#define IEVO_USE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes s[0..len) into cps (room for len code points always suffices); returns the count.
 * The result never holds a surrogate or a value above U+10FFFF, so it re-encodes as valid UTF-8. */
size_t use_utf8_decode(uint32_t *cps, const char *s, size_t len);

#endif
