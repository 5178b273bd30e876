/* use_tokenizer: the SentencePiece-unigram tokenizer of the Universal Sentence Encoder lite,
 * reproducing the tfjs-models USE tokenizer (`@energetic-ai/embeddings@0.2.0`, dist/index.js)
 * to the id, quirks included:
 *
 *   1. text -> code points (invalid UTF-8 -> U+FFFD, use_utf8.h) -> NFKC (utf8proc, see
 *      use_tokenizer.c for its Unicode version against Node's); if non-empty, prepend
 *      U+2581 "▁" and replace every U+0020 with it. No lower-casing: the vocabulary is cased.
 *   2. pieces: vocab.json, [piece, score] pairs; ids 0..5 are reserved and never matched; a null
 *      score counts as 0 (JavaScript's null + x == x); a piece listed twice keeps its last id and
 *      score (the trie insert overwrites).
 *   3. Viterbi over code points, best[0..n] = 0, word[0..n] = 0, in double precision. Every
 *      piece equal to cp[s..e) is a candidate with score piece_score + best[s]; a start where no
 *      piece begins gets one unknown candidate (id 0, length 1, score 0). Candidates are applied
 *      by ascending end, then ascending start:  if (best[e] == 0 || score >= best[e]) take it.
 *      (Ties go to the later start; a best of exactly 0 is always overwritten.)
 *   4. Backtrack from n, stepping back by the piece's length in UTF-16 code units (JavaScript's
 *      String.length: the code-point count for this vocabulary, which has no astral pieces);
 *      collapse runs of unknown ids into one; reverse.
 *
 * The tokenizer returns every id; the encoder reads at most the first USE_MAX_TOKENS of them.
 * An empty text (or one that normalises to nothing) has no ids.
 *
 * A tokenizer is read-only after loading except for its work buffers, which grow to the longest
 * text seen and are then reused: use one tokenizer per thread.
 */
#ifndef IEVO_USE_TOKENIZER_H
#define IEVO_USE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define USE_RESERVED_IDS 6
#define USE_UNK_ID 0
#define USE_TEXT_MAX_BYTES (1 << 20) /* longer texts are refused (the work is linear in length) */

typedef struct use_tokenizer use_tokenizer;

/* Builds a tokenizer from vocab.json text (a JSON array of [string, number|null] pairs; the first
 * USE_RESERVED_IDS are kept for their ids but never matched). Returns 0, or -1 with err filled. */
int use_tokenizer_new(use_tokenizer **out, const char *json, size_t len, char *err, size_t errlen);
/* Reads and parses a vocab.json file. */
int use_tokenizer_load(use_tokenizer **out, const char *path, char *err, size_t errlen);
void use_tokenizer_free(use_tokenizer *t);

int use_tokenizer_n_pieces(const use_tokenizer *t);
/* Piece `id` as UTF-8 (NUL-terminated), or NULL when out of range. */
const char *use_tokenizer_piece(const use_tokenizer *t, int id);

/* Tokenizes UTF-8 text[0..len): writes the first min(n, cap) ids to ids and returns n, the
 * number of ids the whole text has; -1 with err filled when len > USE_TEXT_MAX_BYTES or memory
 * runs out. */
int use_tokenizer_encode(use_tokenizer *t, const char *text, size_t len, int *ids, int cap, char *err,
                         size_t errlen);

/* The normalised code points the Viterbi pass runs over (step 1) for the last encode call, for
 * debugging and the tests: *n receives their count; valid until the next call. */
const uint32_t *use_tokenizer_last_symbols(const use_tokenizer *t, size_t *n);

/* UTF-8 of NFKC(text) (step 1 without the "▁" handling) into a malloc'd NUL-terminated string;
 * *out_len receives its length. For `ievo embed --normalize` and the NFKC tests. */
int use_tokenizer_nfkc_utf8(const char *text, size_t len, char **out, size_t *out_len, char *err, size_t errlen);

#endif
