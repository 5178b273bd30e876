/* json_text: see json_text.h. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when it is not one (RFC 3629:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
    if (c == 0xED && s[1] > 0x9F) return 0; /* surrogates */
    if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
    if (c == 0xF4 && s[1] > 0x8F) return 0; /* above U+10FFFF */
    return len;
}

json_t *json_string_lossy(const char *s, size_t n) {
    if (n == 0) return json_string(""); /* s may be NULL then, which json_stringn refuses */
    const unsigned char *b = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_valid_len(b + i, n - i);
        if (l) i += l;
        else bad++, i++;
    }
    if (!bad) return json_stringn(s, n);
    char *fixed = malloc(n + 2 * bad); /* each bad byte (1) becomes U+FFFD (3) */
    if (!fixed) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_valid_len(b + i, n - i);
        if (l) {
            memcpy(fixed + o, s + i, l);
            o += l, i += l;
        } else {
            memcpy(fixed + o, "\xEF\xBF\xBD", 3);
            o += 3, i++;
        }
    }
    json_t *v = json_stringn(fixed, o);
    free(fixed);
    return v;
}

json_t *json_real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }
