/* use_utf8: the WHATWG UTF-8 decoder (see use_utf8.h).
 *
 * A lead byte sets how many continuation bytes follow and the range the first of them may take
 * (E0: A0..BF, no overlongs; ED: 80..9F, no surrogates; F0: 90..BF; F4: 80..8F, nothing above
 * U+10FFFF). A byte outside that range ends the maximal subpart, which becomes one U+FFFD, and is
 * read again as the start of the next sequence.
 */
#include "use_utf8.h"

size_t use_utf8_decode(uint32_t *cps, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, n = 0;
    while (i < len) {
        unsigned b = p[i];
        if (b < 0x80) {
            cps[n++] = b;
            i++;
            continue;
        }
        int need;
        uint32_t cp;
        unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the next byte */
        if (b >= 0xC2 && b <= 0xDF) need = 1, cp = b & 0x1F;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2, cp = b & 0x0F;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F; /* no surrogates */
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3, cp = b & 0x07;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else {
            cps[n++] = 0xFFFD;
            i++;
            continue;
        }
        i++;
        int ok = 1;
        for (int k = 0; k < need; k++) {
            if (i >= len || p[i] < lo || p[i] > hi) {
                ok = 0; /* the bad byte is not consumed: it starts the next sequence */
                break;
            }
            cp = cp << 6 | (p[i] & 0x3F);
            i++;
            lo = 0x80, hi = 0xBF;
        }
        cps[n++] = ok ? cp : 0xFFFD;
    }
    return n;
}
