/* json_text: see json_text.h. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_text.h"
#include "utf8.h"

json_t *json_string_lossy(const char *s, size_t n) {
    if (n == 0) return json_string(""); /* s may be NULL then, which json_stringn refuses */
    const unsigned char *b = (const unsigned char *)s;
    size_t bad = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_sequence_len(b + i, n - i);
        if (l) i += l;
        else bad++, i++;
    }
    if (!bad) return json_stringn(s, n);
    char *fixed = malloc(n + 2 * bad); /* each bad byte (1) becomes U+FFFD (3) */
    if (!fixed) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_sequence_len(b + i, n - i);
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

const char *json_error_text(const json_error_t *e, char *out, size_t n) {
    size_t i = 0;
    for (; i + 1 < n && e->text[i]; i++) {
        unsigned char c = (unsigned char)e->text[i];
        out[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    out[i] = 0;
    return out;
}
