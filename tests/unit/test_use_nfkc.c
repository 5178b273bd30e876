/* test_use_nfkc: the tokenizer's step 1 by hand-picked cases: the UTF-8 decoder's replacement of
 * invalid sequences (use_utf8.h; WHATWG: one U+FFFD per maximal subpart, as Node decodes), and
 * the NFKC it runs with utf8proc (use_tokenizer_nfkc_utf8): compatibility mappings, canonical
 * reordering and composition, composition exclusions, Hangul, ASCII, U+0000. The exhaustive
 * check against Node's own normalize("NFKC") is tests/oracle/test_use_nfkc.py. */
#include <stdint.h>
#include <string.h>
#include <utf8proc.h>

#include "check.h"
#include "use_tokenizer.h"
#include "use_utf8.h"

/* decode s, compare with the code points want[0..nw) */
static void check_decode(const char *s, size_t n, const uint32_t *want, size_t nw) {
    uint32_t got[64];
    size_t k = use_utf8_decode(got, s, n);
    int same = k == nw && memcmp(got, want, nw * sizeof *want) == 0;
    CHECK(same, "decode of %zu bytes starting %02x: got %zu code points (first U+%04X), want %zu", n,
          n ? (unsigned char)s[0] : 0, k, k ? got[0] : 0, nw);
}

/* NFKC of the code points in[0..n), through the tokenizer's UTF-8 interface */
static void check_nfkc(const char *what, const uint32_t *in, size_t n, const uint32_t *want, size_t nw) {
    char text[256], err[256] = "", *nf = NULL;
    size_t tl = 0, nl = 0;
    REQUIRE(n * 4 <= sizeof text, "%s: test input too long", what);
    for (size_t i = 0; i < n; i++) tl += (size_t)utf8proc_encode_char((utf8proc_int32_t)in[i], (utf8proc_uint8_t *)text + tl);
    REQUIRE(use_tokenizer_nfkc_utf8(text, tl, &nf, &nl, err, sizeof err) == 0, "%s: %s", what, err);
    uint32_t out[256];
    size_t k = nl <= sizeof out / sizeof out[0] ? use_utf8_decode(out, nf, nl) : 0;
    free(nf);
    int same = k == nw && memcmp(out, want, nw * sizeof *want) == 0;
    CHECK(same, "%s: got %zu code points (first U+%04X), want %zu (first U+%04X)", what, k, k ? out[0] : 0, nw,
          nw ? want[0] : 0);
}

#define CP(...) ((const uint32_t[]){__VA_ARGS__}), (sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))
#define FFFD 0xFFFD

static void test_decode(void) {
    check_decode("a\xC3\xA9\xE2\x96\x81\xF0\x9F\x8E\xA7", 10, CP('a', 0xE9, 0x2581, 0x1F3A7));
    check_decode("\xFF", 1, CP(FFFD));
    check_decode("\xC0\xAF", 2, CP(FFFD, FFFD));                 /* overlong lead bytes are invalid alone */
    check_decode("\xE0\x80\x80", 3, CP(FFFD, FFFD, FFFD));       /* E0 needs A0..BF next */
    check_decode("\xED\xA0\x80x", 4, CP(FFFD, FFFD, FFFD, 'x')); /* no surrogates */
    check_decode("\xF0\x9F\x8E", 3, CP(FFFD));                   /* truncated: one U+FFFD */
    check_decode("\xF0\x9Fx", 3, CP(FFFD, 'x'));                 /* the bad byte starts again */
    check_decode("\xF4\x90\x80\x80", 4, CP(FFFD, FFFD, FFFD, FFFD)); /* above U+10FFFF */
    check_decode("\xC3", 1, CP(FFFD));
    check_decode("a\0b", 3, CP('a', 0, 'b'));
    char buf[4];
    const uint32_t cps[] = {0, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        uint32_t back[4];
        int n = (int)utf8proc_encode_char((utf8proc_int32_t)cps[i], (utf8proc_uint8_t *)buf);
        CHECK(use_utf8_decode(back, buf, (size_t)n) == 1 && back[0] == cps[i], "round trip U+%04X", cps[i]);
    }
}

static void test_nfkc(void) {
    check_nfkc("ASCII", CP('H', 'i', ' ', '!'), CP('H', 'i', ' ', '!'));
    check_nfkc("empty", CP(0), CP(0));
    check_nfkc("ligature fi", CP(0xFB01), CP('f', 'i'));
    check_nfkc("circled one", CP(0x2460), CP('1'));
    check_nfkc("fullwidth A", CP(0xFF21), CP('A'));
    check_nfkc("ellipsis", CP(0x2026), CP('.', '.', '.'));
    check_nfkc("no-break space", CP(0xA0), CP(' '));
    check_nfkc("ideographic space", CP(0x3000), CP(' '));
    check_nfkc("one half", CP(0xBD), CP('1', 0x2044, '2'));
    check_nfkc("Angstrom sign", CP(0x212B), CP(0xC5));
    check_nfkc("e + acute composes", CP('e', 0x301), CP(0xE9));
    check_nfkc("precomposed stays", CP(0xE9), CP(0xE9));
    check_nfkc("em dash stays", CP(0x2014), CP(0x2014));
    check_nfkc("CJK stays", CP(0x65E5, 0x672C), CP(0x65E5, 0x672C));
    /* UAX #15's example: long s with dot above + dot below */
    check_nfkc("U+1E9B U+0323", CP(0x1E9B, 0x323), CP(0x1E69));
    /* reordering: dot below (220) goes before acute (230); a + dot below composes, acute stays */
    check_nfkc("a acute dot-below", CP('a', 0x301, 0x323), CP(0x1EA1, 0x301));
    /* a grave(230) acute(230): a + grave composes, then a-grave + acute has no composite */
    check_nfkc("a grave acute", CP('a', 0x300, 0x301), CP(0xE0, 0x301));
    /* blocked: overline (230, composes with nothing) stands between a and acute (230) */
    check_nfkc("blocked by an equal class", CP('a', 0x305, 0x301), CP('a', 0x305, 0x301));
    /* not blocked: grave below (220) is of a lower class than acute (230) */
    check_nfkc("not blocked by a lower class", CP('a', 0x316, 0x301), CP(0xE1, 0x316));
    check_nfkc("leading mark", CP(0x301, 'a'), CP(0x301, 'a'));
    check_nfkc("Hangul LV", CP(0x1100, 0x1161), CP(0xAC00));
    check_nfkc("Hangul LVT", CP(0x1100, 0x1161, 0x11A8), CP(0xAC01));
    check_nfkc("Hangul LV + T", CP(0xAC00, 0x11A8), CP(0xAC01));
    check_nfkc("Hangul LVT + T stays", CP(0xAC01, 0x11A8), CP(0xAC01, 0x11A8));
    check_nfkc("Hangul syllable stays", CP(0xD7A3), CP(0xD7A3));
    check_nfkc("square apaato", CP(0x3300), CP(0x30A2, 0x30D1, 0x30FC, 0x30C8));
    check_nfkc("kana + voiced mark", CP(0x304B, 0x3099), CP(0x304C));
    check_nfkc("U+FDFA, 18 code points", CP(0xFDFA), CP(0x635, 0x644, 0x649, 0x20, 0x627, 0x644, 0x644, 0x647, 0x20,
                                                      0x639, 0x644, 0x64A, 0x647, 0x20, 0x648, 0x633, 0x644, 0x645));
    check_nfkc("excluded composite U+0958", CP(0x958), CP(0x915, 0x93C));
    /* a composition exclusion that a composer without the exclusion list (utf8proc without
     * UTF8PROC_STABLE) puts back together */
    check_nfkc("excluded composite U+1D1BC", CP(0x1D1BC), CP(0x1D1BA, 0x1D165));
    check_nfkc("U+FFFD stays", CP(0xFFFD), CP(0xFFFD));
    check_nfkc("unassigned stays", CP(0x10FFFF), CP(0x10FFFF));
#define CCC(c) utf8proc_get_property(c)->combining_class
    CHECK(CCC(0x301) == 230 && CCC(0x323) == 220 && CCC('a') == 0 && CCC(0x334) == 1 && CCC(0x3099) == 8,
          "combining classes");
#undef CCC
    CHECK(strlen(utf8proc_unicode_version()) >= 3, "unicode version");
    fprintf(stderr, "utf8proc %s, Unicode %s\n", utf8proc_version(), utf8proc_unicode_version());
}

int main(void) {
    test_decode();
    test_nfkc();
    return check_exit("test_use_nfkc");
}
