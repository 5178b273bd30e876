/* use_encoder: weights, batching and the forward pass of USE lite. See use_encoder.h.
 *
 * The forward pass, per text of L = min(#ids, 128) tokens (README section 4):
 *
 *   x (L,256)  = 2 * EMB[id_p] + [sin(p * INV), cos(p * INV)]          (p * INV rounded to float)
 *   -- layer 0, pre-LN, 4 heads of 64, q scale 0.125 --
 *   qkv (L,768) = LN(x; L0_LNA) @ L0_QKV_W + L0_QKV_B
 *   y (L,512)   = MHA(qkv) @ L0_O_W + L0_O_B  +  x @ L0_RES_W + L0_RES_B   (residual projected 256 -> 512)
 *   y          += relu(LN(y; L0_LNF) @ L0_F1_W + L0_F1_B) @ L0_F2_W + L0_F2_B
 *   -- layer 1, pre-LN, 4 heads of 128, q scale 0.0883883461 --
 *   y          += MHA(LN(y; L1_LNA) @ L1_QKV_W + L1_QKV_B) @ L1_O_W + L1_O_B
 *   y          += relu(LN(y; L1_LNF) @ L1_F1_W + L1_F1_B) @ L1_F2_W + L1_F2_B
 *   -- head, no final LN --
 *   out (512)   = l2normalise(tanh(mean_p y[p] @ TANH_W + TANH_B))
 *
 * LN: biased variance, eps 1e-6. MHA: softmax over all L positions of the text.
 *
 * Batching (oneDNN path): the texts of a slice are packed, text after text, into one (T, .)
 * matrix, T = sum of their L, so a GEMM computes no padding per text (only up to 5 rows a slice,
 * to finish a group of 6: use_dnnl.h); attention and pooling walk the texts' row ranges. This is
 * exactly what padding every text to the longest with a -1e9 key bias computes (exp(-1e9 - max)
 * is 0 in float), without the padded rows: on ML-100K titles padding would cost 1.6x the GEMM
 * rows at batch 8 and 2.9x at batch 128.
 */
#include "use_encoder.h"
#include "model_errf.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "use_dnnl.h"
#include "use_ops.h"
#include "use_ref.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "use_lite.f32 is little-endian float32, read in place: port the byte order first"
#endif

#define VOCAB_ROWS 8002      /* EMB rows (only ids < 8000 are produced) */
#define SLICE_ROWS 1024      /* tokens per slice of a call (the GEMMs' M) */
#define SLICE_TEXTS 256      /* texts per slice */
#define ROWS_CAP (SLICE_ROWS + USE_MAX_TOKENS)
/* A matmul of M rows reads and writes USE_DNNL_ROWS_ROOM(M) rows (use_dnnl.h): the buffers' rows */
#define ROWS_ROOM USE_DNNL_ROWS_ROOM(ROWS_CAP)
#define TEXTS_ROOM USE_DNNL_ROWS_ROOM(SLICE_TEXTS)
#define LN_EPS 1e-6f
#define HEADS 4
#define Q_SCALE0 0.125f
#define Q_SCALE1 0.0883883461f

/* The 30 tensors read, at their pinned byte offsets into the 7 concatenated shards. */
enum {
    EMB, INV, L0_LNA_G, L0_LNA_B, L0_QKV_W, L0_QKV_B, L0_O_W, L0_O_B, L0_RES_W, L0_RES_B, L0_LNF_G, L0_LNF_B,
    L0_F1_W, L0_F1_B, L0_F2_W, L0_F2_B, L1_LNA_G, L1_LNA_B, L1_QKV_W, L1_QKV_B, L1_O_W, L1_O_B, L1_LNF_G,
    L1_LNF_B, L1_F1_W, L1_F1_B, L1_F2_W, L1_F2_B, TANH_W, TANH_B, N_TENSORS
};

static const struct {
    const char *name;
    long offset, numel;
} g_tensors[N_TENSORS] = {
    [EMB] = {"EMB", 18132056, 8002L * 256},     [INV] = {"INV_TIMESCALES", 26326104, 128},
    [L0_LNA_G] = {"L0_LNA_G", 16814124, 256},   [L0_LNA_B] = {"L0_LNA_B", 16815152, 256},
    [L0_QKV_W] = {"L0_QKV_W", 16816176, 256L * 768}, [L0_QKV_B] = {"L0_QKV_B", 17602608, 768},
    [L0_O_W] = {"L0_O_W", 17605720, 256L * 512}, [L0_O_B] = {"L0_O_B", 18130008, 512},
    [L0_RES_W] = {"L0_RES_W", 26326616, 256L * 512}, [L0_RES_B] = {"L0_RES_B", 26850904, 512},
    [L0_LNF_G] = {"L0_LNF_G", 16801816, 512},   [L0_LNF_B] = {"L0_LNF_B", 16803864, 512},
    [L0_F1_W] = {"L0_F1_W", 13656088, 512L * 1536}, [L0_F1_B] = {"L0_F1_B", 16805916, 1536},
    [L0_F2_W] = {"L0_F2_W", 10510360, 1536L * 512}, [L0_F2_B] = {"L0_F2_B", 16812064, 512},
    [L1_LNA_G] = {"L1_LNA_G", 6303748, 512},    [L1_LNA_B] = {"L1_LNA_B", 6305796, 512},
    [L1_QKV_W] = {"L1_QKV_W", 6307844, 512L * 1536}, [L1_QKV_B] = {"L1_QKV_B", 9453572, 1536},
    [L1_O_W] = {"L1_O_W", 9459736, 512L * 512}, [L1_O_B] = {"L1_O_B", 10508312, 512},
    [L1_LNF_G] = {"L1_LNF_G", 6291456, 512},    [L1_LNF_B] = {"L1_LNF_B", 6293504, 512},
    [L1_F1_W] = {"L1_F1_W", 3145728, 512L * 1536}, [L1_F1_B] = {"L1_F1_B", 6295552, 1536},
    [L1_F2_W] = {"L1_F2_W", 0, 1536L * 512},    [L1_F2_B] = {"L1_F2_B", 6301696, 512},
    [TANH_W] = {"TANH_W", 26853024, 512L * 512}, [TANH_B] = {"TANH_B", 27901600, 512},
};

/* The matmuls: input width, output width, weights, bias, post-ops. */
enum { MM_QKV0, MM_O0, MM_RES0, MM_F1_0, MM_F2_0, MM_QKV1, MM_O1, MM_F1_1, MM_F2_1, MM_TANH, N_MM };
static const struct {
    int C, OC, w, b, flags;
} g_mm[N_MM] = {
    [MM_QKV0] = {256, 768, L0_QKV_W, L0_QKV_B, 0},
    [MM_O0] = {256, 512, L0_O_W, L0_O_B, 0},
    [MM_RES0] = {256, 512, L0_RES_W, L0_RES_B, USE_DNNL_ACCUMULATE},
    [MM_F1_0] = {512, 1536, L0_F1_W, L0_F1_B, USE_DNNL_RELU},
    [MM_F2_0] = {1536, 512, L0_F2_W, L0_F2_B, USE_DNNL_ACCUMULATE},
    [MM_QKV1] = {512, 1536, L1_QKV_W, L1_QKV_B, 0},
    [MM_O1] = {512, 512, L1_O_W, L1_O_B, USE_DNNL_ACCUMULATE},
    [MM_F1_1] = {512, 1536, L1_F1_W, L1_F1_B, USE_DNNL_RELU},
    [MM_F2_1] = {1536, 512, L1_F2_W, L1_F2_B, USE_DNNL_ACCUMULATE},
    [MM_TANH] = {512, 512, TANH_W, TANH_B, 0},
};

struct use_encoder {
    use_backend backend;
    float *blob;
    const float *t[N_TENSORS];
    use_tokenizer *tok;
    /* a slice: ids, per-text lengths, activations (ROWS_ROOM rows) */
    int *ids, lens[SLICE_TEXTS];
    float *x, *h, *big, *att, *y; /* (rows, 256 / 512 / 1536 / 512 / 512) */
    float *u, *v;                 /* (TEXTS_ROOM, 512): pooled; the head's output */
    float probs[USE_MAX_TOKENS];
    double dscratch[1536];
    use_dnnl *dnnl;
    use_dnnl_matmul *mm[N_MM];
};

/* Encodes texts given as token ids: ids[i] (lens[i] ids, each in [0, 8000)); only the first
 * USE_MAX_TOKENS of each are read. */
static int encode_ids(use_encoder *e, const int *const *ids, const int *lens, int n, float *out, char *err,
                      size_t errlen);

void use_encoder_free(use_encoder *e) {
    if (!e) return;
    use_dnnl_free(e->dnnl);
    use_tokenizer_free(e->tok);
    free(e->blob);
    free(e->ids);
    free(e->x);
    free(e->h);
    free(e->big);
    free(e->att);
    free(e->y);
    free(e->u);
    free(e->v);
    free(e);
}

static const char *fetch_hint(void) {
    return "run scripts/fetch-use-lite.sh to download and check the weights (or pass the directory it wrote)";
}

int use_encoder_sha256_hex(const void *data, size_t n, char hex[65], char *err, size_t errlen) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        char why[256];
        ERR_error_string_n(ERR_get_error(), why, sizeof why);
        return model_errf(err, errlen, "sha256 of %zu bytes (OpenSSL EVP_Digest): %s", n, why);
    }
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Reads dir/use_lite.f32 into a 64-byte aligned buffer and checks its size and sha256. */
static int load_blob(use_encoder *e, const char *dir, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, USE_BLOB_FILE);
    FILE *f = fopen(path, "rb");
    if (!f) return model_errf(err, errlen, "cannot open %s: %s; %s", path, strerror(errno), fetch_hint());
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
    if (sz != USE_BLOB_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return model_errf(err, errlen, "%s has %ld bytes, expected %ld; %s", path, sz, USE_BLOB_BYTES, fetch_hint());
    }
    e->blob = aligned_alloc(64, (USE_BLOB_BYTES + 63) & ~63L);
    if (!e->blob) {
        fclose(f);
        return model_errf(err, errlen, "out of memory for the %ld-byte weights", USE_BLOB_BYTES);
    }
    size_t got = fread(e->blob, 1, USE_BLOB_BYTES, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != USE_BLOB_BYTES || rerr) return model_errf(err, errlen, "short read from %s", path);
    char hex[65];
    if (use_encoder_sha256_hex(e->blob, USE_BLOB_BYTES, hex, err, errlen)) return -1;
    if (strcmp(hex, USE_BLOB_SHA256) != 0)
        return model_errf(err, errlen, "%s has sha256 %s, expected %s: a damaged or different file; %s", path, hex,
                    USE_BLOB_SHA256, fetch_hint());
    for (int i = 0; i < N_TENSORS; i++) {
        long end = g_tensors[i].offset + 4 * g_tensors[i].numel;
        if (g_tensors[i].offset % 4 || end > USE_BLOB_BYTES) /* a table error, caught on first load */
            return model_errf(err, errlen, "tensor %s [%ld, %ld) lies outside the blob", g_tensors[i].name,
                        g_tensors[i].offset, end);
        e->t[i] = e->blob + g_tensors[i].offset / 4;
    }
    return 0;
}

/* Reads dir/vocab.json, checks its sha256 against vocab_sha256 and builds the tokenizer. The
 * weights' embedding table has a row for each id of this one vocabulary: another file (a newer
 * vocabulary, a damaged or edited one) would map texts to ids of other rows, or of none. */
static int load_vocab(use_encoder *e, const char *dir, const char *vocab_sha256, char *err, size_t errlen) {
    char path[4096], hex[65], e2[512];
    snprintf(path, sizeof path, "%s/%s", dir, USE_VOCAB_FILE);
    FILE *f = fopen(path, "rb");
    if (!f) return model_errf(err, errlen, "cannot open %s: %s; %s", path, strerror(errno), fetch_hint());
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
    if (sz < 0 || sz > USE_VOCAB_MAX_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return model_errf(err, errlen, "%s: %ld bytes (at most %ld); %s", path, sz, (long)USE_VOCAB_MAX_BYTES, fetch_hint());
    }
    char *buf = malloc((size_t)sz + 1);
    size_t got = buf ? fread(buf, 1, (size_t)sz, f) : 0;
    fclose(f);
    int rc = -1;
    if (!buf) model_errf(err, errlen, "%s: out of memory", path);
    else if (got != (size_t)sz) model_errf(err, errlen, "short read from %s", path);
    else if (use_encoder_sha256_hex(buf, got, hex, err, errlen) == 0) {
        if (strcmp(hex, vocab_sha256) != 0)
            model_errf(err, errlen, "%s has sha256 %s, expected %s: a damaged or different vocabulary; %s", path, hex,
                       vocab_sha256, fetch_hint());
        else if (use_tokenizer_new(&e->tok, buf, got, e2, sizeof e2))
            model_errf(err, errlen, "%s: %s", path, e2);
        else
            rc = 0;
    }
    free(buf);
    return rc;
}

int use_encoder_open(use_encoder **out, const char *dir, use_backend backend, char *err, size_t errlen) {
    return use_encoder_open_vocab(out, dir, USE_VOCAB_SHA256, backend, err, errlen);
}

int use_encoder_open_vocab(use_encoder **out, const char *dir, const char *vocab_sha256, use_backend backend, char *err,
                           size_t errlen) {
    *out = NULL;
    if (backend != USE_BACKEND_ONEDNN && backend != USE_BACKEND_SCALAR) return model_errf(err, errlen, "unknown backend %d", backend);
    use_encoder *e = calloc(1, sizeof *e);
    if (!e) return model_errf(err, errlen, "out of memory");
    e->backend = backend;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, USE_VOCAB_FILE);
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        model_errf(err, errlen, "cannot open %s: %s; %s", path, strerror(errno), fetch_hint());
        goto fail;
    }
    fclose(probe);
    if (load_blob(e, dir, err, errlen) || load_vocab(e, dir, vocab_sha256, err, errlen)) goto fail;
    /* zeroed: a matmul also reads the padding rows past a slice's last one (use_dnnl.h), which
     * then hold zeros or an earlier slice's finite values */
    e->ids = calloc((size_t)ROWS_CAP, sizeof *e->ids);
    e->x = calloc((size_t)ROWS_ROOM * 256, sizeof(float));
    e->h = calloc((size_t)ROWS_ROOM * 512, sizeof(float));
    e->big = calloc((size_t)ROWS_ROOM * 1536, sizeof(float));
    e->att = calloc((size_t)ROWS_ROOM * 512, sizeof(float));
    e->y = calloc((size_t)ROWS_ROOM * 512, sizeof(float));
    e->u = calloc((size_t)TEXTS_ROOM * 512, sizeof(float));
    e->v = calloc((size_t)TEXTS_ROOM * USE_DIM, sizeof(float));
    if (!e->ids || !e->x || !e->h || !e->big || !e->att || !e->y || !e->u || !e->v) {
        model_errf(err, errlen, "out of memory for the activations");
        goto fail;
    }
    if (backend == USE_BACKEND_ONEDNN) {
        if (use_dnnl_new(&e->dnnl, ROWS_CAP, err, errlen)) goto fail;
        for (int i = 0; i < N_MM; i++)
            if (use_dnnl_matmul_new(&e->mm[i], e->dnnl, g_mm[i].C, g_mm[i].OC, e->t[g_mm[i].w], e->t[g_mm[i].b],
                                    g_mm[i].flags, err, errlen))
                goto fail;
        /* warm-up: oneDNN generates its kernels on the first run (about 35 ms), not in a caller's call */
        static const int warm_ids[3] = {2002, 102, 311}; /* "hello world" */
        const int *warm[1] = {warm_ids};
        const int warm_len[1] = {3};
        float warm_out[USE_DIM];
        if (encode_ids(e, warm, warm_len, 1, warm_out, err, errlen)) goto fail;
    }
    *out = e;
    return 0;
fail:
    use_encoder_free(e);
    return -1;
}

use_tokenizer *use_encoder_tokenizer(use_encoder *e) { return e->tok; }
const char *use_encoder_impl(const use_encoder *e) {
    return e->backend == USE_BACKEND_SCALAR ? "scalar" : use_dnnl_matmul_impl(e->mm[MM_F1_0]);
}

/* ---- the slice forward passes: e->ids holds the slice's T ids, e->lens its n texts' lengths ---- */

/* Scalar reference, text by text; out (n, 512). */
static void forward_scalar(use_encoder *e, int n, float *out) {
    const float *const *t = e->t;
    const int *ids = e->ids;
    for (int i = 0; i < n; ids += e->lens[i], i++) {
        const int L = e->lens[i];
        use_embed_ref(e->x, ids, L, t[EMB], t[INV]);
        use_layernorm_ref(e->h, e->x, t[L0_LNA_G], t[L0_LNA_B], L, 256, LN_EPS);
        use_matmul_ref(e->big, e->h, t[L0_QKV_W], t[L0_QKV_B], L, 256, 768, 0);
        use_mha_ref(e->att, e->big, L, HEADS, 64, Q_SCALE0, e->dscratch);
        use_matmul_ref(e->y, e->att, t[L0_O_W], t[L0_O_B], L, 256, 512, 0);
        use_matmul_ref(e->y, e->x, t[L0_RES_W], t[L0_RES_B], L, 256, 512, 1);
        use_layernorm_ref(e->h, e->y, t[L0_LNF_G], t[L0_LNF_B], L, 512, LN_EPS);
        use_matmul_ref(e->big, e->h, t[L0_F1_W], t[L0_F1_B], L, 512, 1536, 0);
        use_relu_ref(e->big, (long)L * 1536);
        use_matmul_ref(e->y, e->big, t[L0_F2_W], t[L0_F2_B], L, 1536, 512, 1);
        use_layernorm_ref(e->h, e->y, t[L1_LNA_G], t[L1_LNA_B], L, 512, LN_EPS);
        use_matmul_ref(e->big, e->h, t[L1_QKV_W], t[L1_QKV_B], L, 512, 1536, 0);
        use_mha_ref(e->att, e->big, L, HEADS, 128, Q_SCALE1, e->dscratch);
        use_matmul_ref(e->y, e->att, t[L1_O_W], t[L1_O_B], L, 512, 512, 1);
        use_layernorm_ref(e->h, e->y, t[L1_LNF_G], t[L1_LNF_B], L, 512, LN_EPS);
        use_matmul_ref(e->big, e->h, t[L1_F1_W], t[L1_F1_B], L, 512, 1536, 0);
        use_relu_ref(e->big, (long)L * 1536);
        use_matmul_ref(e->y, e->big, t[L1_F2_W], t[L1_F2_B], L, 1536, 512, 1);
        use_head_ref(out + (long)i * USE_DIM, e->y, L, t[TANH_W], t[TANH_B], 512, USE_DIM, e->dscratch);
    }
}

/* oneDNN: all T rows of the slice at once; out (n, 512). */
static int forward_dnnl(use_encoder *e, int n, int T, float *out, char *err, size_t errlen) {
    const float *const *t = e->t;
    use_dnnl_matmul *const *mm = e->mm;
    long row = 0;
    for (int i = 0; i < n; row += e->lens[i], i++)
        use_embed_ref(e->x + row * 256, e->ids + row, e->lens[i], t[EMB], t[INV]);
    /* layer 0 */
    use_layernorm(e->h, e->x, t[L0_LNA_G], t[L0_LNA_B], T, 256, LN_EPS);
    if (use_dnnl_matmul_run(mm[MM_QKV0], e->h, e->big, T, err, errlen)) return -1;
    row = 0;
    for (int i = 0; i < n; row += e->lens[i], i++)
        use_mha(e->att + row * 256, e->big + row * 768, e->lens[i], HEADS, 64, Q_SCALE0, e->probs);
    if (use_dnnl_matmul_run(mm[MM_O0], e->att, e->y, T, err, errlen) ||
        use_dnnl_matmul_run(mm[MM_RES0], e->x, e->y, T, err, errlen))
        return -1;
    use_layernorm(e->h, e->y, t[L0_LNF_G], t[L0_LNF_B], T, 512, LN_EPS);
    if (use_dnnl_matmul_run(mm[MM_F1_0], e->h, e->big, T, err, errlen) ||
        use_dnnl_matmul_run(mm[MM_F2_0], e->big, e->y, T, err, errlen))
        return -1;
    /* layer 1 */
    use_layernorm(e->h, e->y, t[L1_LNA_G], t[L1_LNA_B], T, 512, LN_EPS);
    if (use_dnnl_matmul_run(mm[MM_QKV1], e->h, e->big, T, err, errlen)) return -1;
    row = 0;
    for (int i = 0; i < n; row += e->lens[i], i++)
        use_mha(e->att + row * 512, e->big + row * 1536, e->lens[i], HEADS, 128, Q_SCALE1, e->probs);
    if (use_dnnl_matmul_run(mm[MM_O1], e->att, e->y, T, err, errlen)) return -1;
    use_layernorm(e->h, e->y, t[L1_LNF_G], t[L1_LNF_B], T, 512, LN_EPS);
    if (use_dnnl_matmul_run(mm[MM_F1_1], e->h, e->big, T, err, errlen) ||
        use_dnnl_matmul_run(mm[MM_F2_1], e->big, e->y, T, err, errlen))
        return -1;
    /* head */
    use_mean_pool(e->u, e->y, e->lens, n, 512);
    if (use_dnnl_matmul_run(mm[MM_TANH], e->u, e->v, n, err, errlen)) return -1;
    use_tanh_l2norm(e->v, n, USE_DIM);
    memcpy(out, e->v, (size_t)n * USE_DIM * sizeof *out);
    return 0;
}

static int forward(use_encoder *e, int n, int T, float *out, char *err, size_t errlen) {
    if (e->backend == USE_BACKEND_SCALAR) {
        forward_scalar(e, n, out);
        return 0;
    }
    return forward_dnnl(e, n, T, out, err, errlen);
}

int use_encoder_encode(use_encoder *e, const char *const *texts, const size_t *lens, int n, float *out,
                       int *n_tokens, char *err, size_t errlen) {
    char e2[256];
    if (n < 0) return model_errf(err, errlen, "negative text count %d", n);
    for (int i = 0; i < n;) {
        int k = 0, T = 0, start = i;
        while (i < n && k < SLICE_TEXTS && T < SLICE_ROWS) {
            int c = use_tokenizer_encode(e->tok, texts[i], lens[i], e->ids + T, USE_MAX_TOKENS, e2, sizeof e2);
            if (c < 0) return model_errf(err, errlen, "text %d: %s", i, e2);
            if (n_tokens) n_tokens[i] = c;
            int L = c < USE_MAX_TOKENS ? c : USE_MAX_TOKENS;
            /* each id is a row of the embedding table: the vocabulary decides them, not these weights */
            for (int p = 0; p < L; p++)
                if (e->ids[T + p] < 0 || e->ids[T + p] >= VOCAB_ROWS)
                    return model_errf(err, errlen, "text %d: token id %d at %d is outside the embedding table [0, %d)",
                                      i, e->ids[T + p], p, VOCAB_ROWS);
            e->lens[k++] = L;
            T += e->lens[k - 1];
            i++;
        }
        if (forward(e, k, T, out + (long)start * USE_DIM, err, errlen)) return -1;
    }
    return 0;
}

static int encode_ids(use_encoder *e, const int *const *ids, const int *lens, int n, float *out, char *err,
                      size_t errlen) {
    if (n < 0) return model_errf(err, errlen, "negative text count %d", n);
    for (int i = 0; i < n;) {
        int k = 0, T = 0, start = i;
        while (i < n && k < SLICE_TEXTS && T < SLICE_ROWS) {
            int L = lens[i] < USE_MAX_TOKENS ? lens[i] : USE_MAX_TOKENS;
            if (L < 0) return model_errf(err, errlen, "text %d: negative length %d", i, lens[i]);
            for (int p = 0; p < L; p++) {
                if (ids[i][p] < 0 || ids[i][p] >= VOCAB_ROWS)
                    return model_errf(err, errlen, "text %d: token id %d at %d is outside [0, %d)", i, ids[i][p], p, VOCAB_ROWS);
                e->ids[T + p] = ids[i][p];
            }
            e->lens[k++] = L;
            T += L;
            i++;
        }
        if (forward(e, k, T, out + (long)start * USE_DIM, err, errlen)) return -1;
    }
    return 0;
}
