/* test_use_tokenizer: the USE tokenizer's rules on a small hand-made vocabulary, where the right
 * answer can be worked out by hand (use_tokenizer.h lists the rules): normalisation and "▁",
 * reserved ids, the Viterbi choice and its tie rule, a best of exactly 0 always overwritten, null
 * scores, repeated pieces, unknowns and their collapsing, the UTF-16 backtracking step, the cap,
 * and vocabulary errors. Every expected list was worked out by hand and then confirmed by running
 * the JavaScript tokenizer of @energetic-ai/embeddings@0.2.0 on this same vocabulary. The real vocabulary is checked against the JavaScript tokenizer itself
 * by tests/oracle/test_use_tokenizer.py. */
#include <string.h>

#include "check.h"
#include "use_tokenizer.h"

/* Ids: 0 U+FFFD, 1 <s>, 2 </s>, 3..5 extra, then: */
static const char *VOCAB =
    "[[\"\xEF\xBF\xBD\",0],[\"<s>\",0],[\"</s>\",0],[\"extra_token_id_1\",0],[\"extra_token_id_2\",0],"
    "[\"extra_token_id_3\",0],"
    "[\"\xE2\x96\x81\",-5],"             /* 6  ▁ */
    "[\"\xE2\x96\x81" "ab\",-2],"        /* 7  ▁ab */
    "[\"a\",-3],"                        /* 8  a */
    "[\"b\",-3],"                        /* 9  b */
    "[\"c\",-1],"                        /* 10 c */
    "[\"\xE2\x96\x81" "a\",-1.5],"       /* 11 ▁a */
    "[\"bc\",-1],"                       /* 12 bc */
    "[\"fi\",-1],"                       /* 13 fi (what the ligature normalises to) */
    "[\"x\",null],"                      /* 14 x, null score = 0 */
    "[\"xy\",-0.5],"                     /* 15 xy */
    "[\"y\",-0.5],"                      /* 16 y */
    "[\"\\\"q\",-1],"                    /* 17 "q (escaped quote) */
    "[\"\\\\\",-1],"                     /* 18 \ */
    "[\"dd\",-9],"                       /* 19 dd, repeated below: the last one wins */
    "[\"d\",-1],"                        /* 20 d */
    "[\"dd\",-1],"                       /* 21 dd */
    "[\"<s>\",-1],"                      /* 22 <s> again, now matchable */
    "[\"\xF0\x9F\x98\x80\",-1],"         /* 23 😀 (UTF-16 length 2) */
    "[\"A\",-1],"                        /* 24 A (cased) */
    "[\"f\",-4],[\"i\",-4],"              /* 25 f, 26 i */
    "[\"gh\",-1],"                       /* 27 gh, with neither g nor h */
    "[\"<\",-8],[\"s\",-8],[\">\",-8],[\"q\",-8]," /* 28..31 */
    "[\"\xE2\x96\x81k\",null],[\"k\",-1]]";  /* 32 ▁k (score 0), 33 k */

static use_tokenizer *g_tok;

static void check_ids(const char *text, const int *want, int nw) {
    int got[64];
    char err[128] = "";
    int n = use_tokenizer_encode(g_tok, text, strlen(text), got, 64, err, sizeof err);
    int same = n == nw && memcmp(got, want, (size_t)nw * sizeof *want) == 0;
    char gs[256] = "", *p = gs;
    for (int i = 0; i < n && i < 16; i++) p += snprintf(p, (size_t)(gs + sizeof gs - p), "%d ", got[i]);
    CHECK(same, "\"%s\": got %d ids [%s], want %d %s", text, n, gs, nw, err);
}
#define IDS(text, ...) check_ids(text, (const int[]){__VA_ARGS__}, (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))

static void test_rules(void) {
    /* ▁ab (-2) beats ▁a + b (-1.5 - 3) and ▁ + a + b */
    IDS("ab", 7);
    /* "abc": ▁ab + c = -3 against ▁a + bc = -2.5: the second wins */
    IDS("abc", 11, 12);
    /* a space becomes ▁: "ab ab" = ▁ab ▁ab */
    IDS("ab ab", 7, 7);
    /* NFKC first: the ligature U+FB01 is "fi" (-1 beats f + i = -8) */
    IDS("\xEF\xAC\x81", 6, 13);
    /* cased: "A" matches only A; "a" is ▁a */
    IDS("A", 6, 24);
    IDS("a", 11);
    /* reserved pieces never match: "<s>" is piece 22 (reserved id 1, score 0, would score higher),
     * and U+FFFD in the text is unknown (0), not reserved piece 0 */
    IDS("<s>", 6, 22);
    IDS("\xEF\xBF\xBD", 6, 0);
    /* unknown characters: no piece starts at 'z' -> id 0; consecutive unknowns collapse into one */
    IDS("z", 6, 0);
    IDS("zzz", 6, 0);
    IDS("zzcz", 6, 0, 10, 0);
    /* invalid UTF-8 is U+FFFD, which is unknown */
    IDS("\xFF" "c", 6, 0, 10);
    /* a null score counts as 0: "x" = ▁ (-5) + x (0) */
    IDS("x", 6, 14);
    /* ties go to the later start: x + y = -0.5 ties xy = -0.5 at the end, y (start 2) wins */
    IDS("xy", 6, 14, 16);
    /* a best of exactly 0 is always overwritten: ▁k scores 0, then ▁ + k (-6) replaces it */
    IDS("k", 6, 33);
    /* a position no candidate ends at keeps best 0, which beats every real score: "gh" is a piece,
     * but the unknown h (0 + best[2] = 0) wins the end, and backtracking walks through position 2 */
    IDS("gh", 6, 0);
    /* escaped quote and backslash in the vocabulary */
    IDS("\"q", 6, 17);
    IDS("\\", 6, 18);
    /* a repeated piece: the last id and score (21, -1); the first (-9) would lose to d + d */
    IDS("dd", 6, 21);
    /* the backtrack steps by the piece's UTF-16 length: "a😀" = ▁ a 😀; best[3] ends with 😀
     * (id 23, 2 UTF-16 units), so it lands on position 1 (▁, id 6) and not on 2 (▁a, id 11). */
    IDS("a\xF0\x9F\x98\x80", 6, 23);
}

static void test_edges(void) {
    int ids[4] = {-7, -7, -7, -7};
    char err[128];
    CHECK(use_tokenizer_encode(g_tok, "", 0, ids, 4, err, sizeof err) == 0, "empty text has no ids");
    CHECK(ids[0] == -7, "empty text wrote an id");
    /* the cap: all ids are counted, only cap are written */
    int n = use_tokenizer_encode(g_tok, "zcczcc", 6, ids, 2, err, sizeof err);
    CHECK(n == 7 && ids[0] == 6 && ids[1] == 0 && ids[2] == -7, "cap: n %d ids %d %d %d", n, ids[0], ids[1], ids[2]);
    size_t ns;
    const uint32_t *sym = use_tokenizer_last_symbols(g_tok, &ns);
    CHECK(ns == 7 && sym[0] == 0x2581 && sym[1] == 'z', "symbols of the last call");
    /* too long */
    static char big[USE_TEXT_MAX_BYTES + 1];
    memset(big, 'c', sizeof big);
    CHECK(use_tokenizer_encode(g_tok, big, sizeof big, ids, 4, err, sizeof err) < 0 && strstr(err, "longer"),
          "over-long text accepted");
    n = use_tokenizer_encode(g_tok, big, USE_TEXT_MAX_BYTES, ids, 4, err, sizeof err);
    CHECK(n == 1 + USE_TEXT_MAX_BYTES, "1 MiB of c: %d ids", n);
    CHECK(use_tokenizer_n_pieces(g_tok) == 34 && strcmp(use_tokenizer_piece(g_tok, 17), "\"q") == 0 &&
              use_tokenizer_piece(g_tok, 34) == NULL,
          "pieces");
    char *nf;
    size_t nl;
    CHECK(use_tokenizer_nfkc_utf8("\xEF\xAC\x81!", 4, &nf, &nl, err, sizeof err) == 0 && nl == 3 &&
              memcmp(nf, "fi!", 3) == 0,
          "nfkc utf8");
    free(nf);
}

static void reject(const char *json, const char *want) {
    use_tokenizer *t = NULL;
    char err[160] = "";
    CHECK(use_tokenizer_new(&t, json, strlen(json), err, sizeof err) != 0 && t == NULL, "accepted %s", json);
    CHECK(strstr(err, want) != NULL, "%s: message \"%s\" lacks \"%s\"", json, err, want);
}

static void test_errors(void) {
    reject("{}", "JSON array");
    reject("[[\"a\",1]]", "JSON array");
    reject("[[\"a\",1],[\"b\",1],[\"c\",1],[\"d\",1],[\"e\",1],[\"f\",1],[\"g\"]]", "entry 6");
    reject("[[\"a\",1],[\"b\",1],[\"c\",1],[\"d\",1],[\"e\",1],[\"f\",1],[\"g\",\"1\"]]", "entry 6");
    reject("[[\"a\",1],[\"b\",1],[\"c\",1],[\"d\",1],[\"e\",1],[\"f\",1],[\"g\\u0000\",1]]", "NUL");
    reject("[[\"a\",1", "vocabulary: json");
    use_tokenizer *t = NULL;
    char err[200];
    CHECK(use_tokenizer_load(&t, "/nonexistent/vocab.json", err, sizeof err) != 0 && strstr(err, "/nonexistent"),
          "missing file: %s", err);
}

int main(void) {
    char err[200];
    REQUIRE(use_tokenizer_new(&g_tok, VOCAB, strlen(VOCAB), err, sizeof err) == 0, "vocab: %s", err);
    test_rules();
    test_edges();
    test_errors();
    use_tokenizer_free(g_tok);
    return check_exit("test_use_tokenizer");
}
