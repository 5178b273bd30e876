/* use_nfkc: UTF-8 decoding and Unicode NFKC normalisation, as the USE tokenizer's JavaScript does
 * them (`Buffer.toString("utf8")`, then `String.prototype.normalize("NFKC")` in Node's ICU).
 *
 * Why our own: model/ links oneDNN and libm only, and the tokenizer must agree with Node to the
 * code point. The tables (use_nfkc_data.h) are generated from Node itself by use_nfkc_gen.py, and
 * tests/oracle/test_use_nfkc.py compares this code with Node on every code point and on random
 * mark sequences. Code points unassigned in that Unicode version pass through unchanged.
 */
#ifndef IEVO_USE_NFKC_H
#define IEVO_USE_NFKC_H

#include <stddef.h>
#include <stdint.h>

/* The longest NFKD of one code point (U+FDFA: 18 code points): NFKC of n code points never
 * needs more than n * USE_NFKC_MAX_EXPANSION of output room. */
#define USE_NFKC_MAX_EXPANSION 18

/* Decodes UTF-8 s[0..len) into cps (room for len code points always suffices); returns the count.
 * Invalid or truncated sequences become U+FFFD, one per maximal subpart (the WHATWG decoder,
 * which is also Node's). */
size_t use_utf8_decode(uint32_t *cps, const char *s, size_t len);
/* Appends cp as UTF-8 to out (room for 4 bytes); returns the bytes written. */
int use_utf8_encode(char *out, uint32_t cp);

/* out (use_nfkc_room(in, n)) = NFKC(in (n)); returns the output length. in and out must not
 * overlap. Canonical decomposition + compatibility mappings, canonical ordering, canonical
 * composition (Hangul algorithmically). */
size_t use_nfkc(uint32_t *out, const uint32_t *in, size_t n);

/* The exact room use_nfkc needs for in (n): the length of the full decomposition (<= n *
 * USE_NFKC_MAX_EXPANSION). */
size_t use_nfkc_room(const uint32_t *in, size_t n);

/* The canonical combining class of cp (0 for starters); exposed for the tests. */
int use_nfkc_ccc(uint32_t cp);

/* The Unicode version of the tables ("17.0"). */
const char *use_nfkc_unicode_version(void);

#endif
