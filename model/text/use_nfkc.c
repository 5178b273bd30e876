/* use_nfkc: UTF-8 decoding and NFKC. See use_nfkc.h.
 *
 * NFKC = full compatibility decomposition, canonical ordering of each run of non-starters (a
 * stable sort by combining class), then canonical composition: each character composes with the
 * last starter unless a character between them blocks it (class 0, or a class >= its own). This is
 * the algorithm of UAX #15 and of the Unicode Consortium's sample normaliser. ASCII and C1 text
 * (everything below U+00A0) is already NFKC and is copied through.
 */
#include "use_nfkc.h"

#include <string.h>

#include "use_nfkc_data.h"

/* Hangul syllables: S = SBase + (L - LBase) * NCount + (V - VBase) * TCount + (T - TBase). */
enum { SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7,
       LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount };

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

int use_utf8_encode(char *out, uint32_t cp) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int use_nfkc_ccc(uint32_t cp) {
    if (cp < 0x300) return 0;
    size_t lo = 0, hi = sizeof use_nfkc_ccc_ranges / sizeof use_nfkc_ccc_ranges[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < use_nfkc_ccc_ranges[mid].lo) hi = mid;
        else if (cp > use_nfkc_ccc_ranges[mid].hi) lo = mid + 1;
        else return use_nfkc_ccc_ranges[mid].ccc;
    }
    return 0;
}

static const use_nfkc_kd *kd_find(uint32_t cp) {
    if (cp < 0xA0) return NULL;
    size_t lo = 0, hi = sizeof use_nfkc_kd_index / sizeof use_nfkc_kd_index[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < use_nfkc_kd_index[mid].cp) hi = mid;
        else if (cp > use_nfkc_kd_index[mid].cp) lo = mid + 1;
        else return &use_nfkc_kd_index[mid];
    }
    return NULL;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
        return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
    if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
        return a + (b - TBase);
    size_t lo = 0, hi = sizeof use_nfkc_pairs / sizeof use_nfkc_pairs[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const use_nfkc_pair *p = &use_nfkc_pairs[mid];
        if (a < p->first || (a == p->first && b < p->second)) hi = mid;
        else if (a > p->first || b > p->second) lo = mid + 1;
        else return p->composite;
    }
    return 0;
}

size_t use_nfkc_room(const uint32_t *in, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c >= SBase && c < SBase + SCount) m += (c - SBase) % TCount ? 3 : 2;
        else {
            const use_nfkc_kd *d = kd_find(c);
            m += d ? d->len : 1;
        }
    }
    return m;
}

size_t use_nfkc(uint32_t *out, const uint32_t *in, size_t n) {
    size_t i, m = 0;
    for (i = 0; i < n && in[i] < 0xA0; i++) {}
    if (i == n) {
        memcpy(out, in, n * sizeof *in);
        return n;
    }
    /* 1. full compatibility decomposition */
    for (i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c >= SBase && c < SBase + SCount) {
            uint32_t s = c - SBase;
            out[m++] = LBase + s / NCount;
            out[m++] = VBase + (s % NCount) / TCount;
            if (s % TCount) out[m++] = TBase + s % TCount;
            continue;
        }
        const use_nfkc_kd *d = kd_find(c);
        if (!d) {
            out[m++] = c;
            continue;
        }
        memcpy(out + m, use_nfkc_kd_data + d->off, d->len * sizeof *out);
        m += d->len;
    }
    /* 2. canonical ordering: insertion sort of each run of non-starters by class (stable) */
    for (i = 1; i < m; i++) {
        int cc = use_nfkc_ccc(out[i]);
        if (cc == 0) continue;
        uint32_t c = out[i];
        size_t j = i;
        while (j > 0 && use_nfkc_ccc(out[j - 1]) > cc) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = c;
    }
    /* 3. canonical composition, in place */
    if (m == 0) return 0;
    size_t starter = 0, k = 1;
    int last_cc = use_nfkc_ccc(out[0]) ? 256 : 0; /* a leading non-starter composes with nothing */
    for (i = 1; i < m; i++) {
        uint32_t c = out[i];
        int cc = use_nfkc_ccc(c);
        uint32_t comp = compose(out[starter], c);
        if (comp && (last_cc < cc || last_cc == 0)) {
            out[starter] = comp;
            continue;
        }
        if (cc == 0) starter = k;
        last_cc = cc;
        out[k++] = c;
    }
    return k;
}

const char *use_nfkc_unicode_version(void) { return USE_NFKC_UNICODE_VERSION; }
