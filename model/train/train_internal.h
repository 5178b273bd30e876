/* train_internal: what train.c and train_seq.c share: the sequence context (buffers for one chunk
 * of a batch of users), the chunk description, and the chunk-level forward/backward.
 *
 * Layout: time-major, as oneDNN's RNN wants it. A chunk has N rows (users, padded to a multiple
 * of 8) and T steps; position (t, b) is row p = t*N + b of every (T*N, .) buffer. The attention
 * window of step t reaches W-1 inputs back, possibly into the previous chunk, so the inputs are
 * kept "extended": Te = T + W - 1 steps, ext step te = t + W - 1 holding step t, ext steps
 * 0..W-2 the W-1 inputs before the chunk.
 */
#ifndef IEVO_TRAIN_INTERNAL_H
#define IEVO_TRAIN_INTERNAL_H

#include <stdint.h>

#include "model_internal.h"
#include "nn_dnnl_train.h"
#include "rng.h"
#include "train.h"

typedef struct {
    int N;            /* padded rows (the primitives' batch) */
    int n;            /* real rows: users[0..n), sorted by len, longest first */
    int T;            /* steps (padded to a multiple of 8 when the chunk is the last) */
    long c0;          /* global position of step 0 within each user's sequence */
    const int *users; /* n user indices into train_data */
    const int *len;   /* n: inputs of this pass; positions >= len are padding */
    int targets;      /* 1: position g has the target event g+1 (training) */
} seq_chunk;

/* The LRU stack's buffers for one chunk (train_lru.c): every layer's activations, kept for
 * backward, and the carried complex states. */
typedef struct {
    int L, Ns, F, H, I, maxN;
    float *lre, *lim, *gam;      /* (L, Ns) the eigenvalues of the current parameters */
    float *dlre, *dlim, *dgam;   /* (L, Ns) */
    float *h0, *hT;              /* (L, maxN, 2Ns) the carried states: in, out */
    float *zin;                  /* (L, P, H) each layer's input (z_0 = the input projection) */
    float *ub, *hs;              /* (L, P, 2Ns) the recurrence's input and states */
    float *y, *mask_y, *pre1, *z1, *f2, *mask_f, *pre2; /* (L, P, H) */
    float *a1, *g1;              /* (L, P, F) the feed-forward's pre- and post-GELU */
    float *st;                   /* (L, 4, P) LN1 mean, rstd, LN2 mean, rstd */
    float *dz, *dz1, *dp, *dg, *da, *dh, *du; /* backward scratch: (P,H) x3, (P,F) x2, (P,2Ns) x2 */
    int mask_valid;
} seq_lru;

/* The transformer blocks' buffers for one chunk (train_tf.c); keys and values on the extended
 * steps, the last W-1 carried to the next chunk. */
typedef struct {
    int Lt, nh, H, F, W, maxN, maxT;
    int lastN, lastT;            /* the chunk the keys and values were last computed for */
    float *x, *n1, *st;          /* (Lt, P, H) block inputs and LN1 outputs; (Lt, 4, P) LN1, LN2 mean, rstd */
    float *qkv;                  /* (Lt, Pe, 3H): q, k, v per extended position */
    float *att;                  /* (Lt, P, nh, W) attention weights */
    float *ctx, *a, *mask_o, *n2; /* (Lt, P, H) */
    float *f1, *g1;              /* (Lt, P, F) */
    float *f2, *mask_f;          /* (Lt, P, H) */
    float *y, *hn, *stf;         /* (P, H) the last block's output, LNf of it; (2, P) its stats */
    float *dx, *dy, *dn, *dqkv, *dctx, *dg; /* backward scratch */
} seq_tf;

typedef struct {
    const model *m;
    const train_data *d;
    const float *feat;        /* (events, F): the features of every event, as model_step computes them */
    model_backend backend;
    int E, A, I, H, K, D, W, G, lstm, n_items;
    int maxN, maxT;
    nn_rnn_train *rnn;        /* oneDNN backend (LSTM/GRU) */
    seq_lru *lru;             /* the LRU stack, instead of the RNN (both backends) */
    seq_tf *tf;               /* transformer blocks, instead of the window attention (attention tf) */
    double layer_p;           /* the LRU stack's residual dropout this pass (set by run_batch; 0 = none) */
    /* forward */
    float *xe;                /* (Te, N, I) inputs, after dropout */
    float *mask_e;            /* (Te, N, E+A) dropout scale of the embedding part */
    int32_t *item_e, *act_e;  /* (Te, N) embedding rows, -1 where no event */
    float *h0, *c0, *hT, *cT; /* (N, H) */
    float *hs;                /* (T, N, H) RNN outputs h_t */
    float *cs;                /* scalar LSTM: (T, N, H) c_t */
    float *gates;             /* scalar: (T, N, G*H) LSTM gates / GRU activations */
    float *ghs;               /* scalar GRU: (T, N, 3H) W_hh h + b_hh */
    float *gx;                /* scalar GRU: (N, 3H) scratch */
    float *q, *kx, *vx;       /* (T, N, K), (Te, N, K), (Te, N, K) */
    float *att;               /* (T, N, W) attention weights */
    int32_t *wl;              /* (T, N) window length at the position, 0 = padding */
    float *z;                 /* (T, N, H+K) [h ; ctx] */
    float *u;                 /* (T, N, D) interest vectors */
    float *mask_u;            /* (T, N, D) dropout scale on u */
    int mask_valid;           /* the last forward dropped out (mask_e, mask_u hold its masks) */
    float *ud;                /* (T, N, D) u after dropout (what the heads see) */
    /* backward */
    float *dxe, *dx_rnn, *dhs, *dq, *dkx, *dvx, *dz, *du;
    float *ones;              /* (Te*N) ones, for bias gradients as a GEMM */
    /* heads */
    int32_t *pos, *tgt;       /* (T*N) target positions and items */
    float *ub, *dub, *logits; /* (BLK, D), (BLK, D), (BLK, C) */
    float *rowloss;           /* (BLK) */
    int blk;                  /* positions per logits block: min(SEQ_BLK, SEQ_LOGITS_MAX / C) */
    int32_t *cand, *cmap;     /* sampled softmax: candidates (C), item -> column or -1 (n_items) */
    float *sc_w, *sc_b, *dsc_w, *dsc_b; /* sampled: gathered candidate rows and their gradients */
    float *scratch;           /* scalar attention: per-position window, k, v, a, q, dxs */
    /* text (model.h): item contents c = item_emb + a(t_item), the event's own text at the RNN's
     * input, a(t) = text.w (t - text.b); the scoring rows S = score.item_emb + a_out(t) */
    int T;                    /* text_dim, 0 = none */
    int32_t *tmap;            /* (n_items) item -> its row among the chunk's item texts, -1 */
    int32_t *titem;           /* (rows) the item of each row */
    int ntext, text_cap;      /* rows this chunk, capacity */
    float *txb, *ain, *dain;  /* (rows, T) t - text.b; (rows, E) a(t) and its gradient */
    int32_t *epos;            /* (T*N) positions p = t*N + b whose event has a text */
    int nev, ev_cap;
    float *etb, *aev, *daev;  /* (ev_cap, T), (ev_cap, E), (ev_cap, E) */
    float *xr;                /* (T, N, I) the RNN's input when an event of the chunk has a text */
    const float *xrnn;        /* the RNN's input of this chunk: xr, or xe from ext step W-1 */
    float *sc_eff, *dsc_eff;  /* (C, D) the candidates' scoring rows and their gradient */
    int32_t *ocol;            /* (text rows) the candidate column of each output text row */
    int nout;
    float *txo, *aout;        /* (rows, T) t - score.text_b, (rows, D) a_out(t) */
    float *tsum;              /* (max(E, D)) scratch for the adaptors' bias gradients */
    double cold_p;            /* training with cold_dropout: set by the caller per batch (0 = off) */
    int cold_on;              /* this chunk's items marked in cold[] are new: no id rows */
    uint8_t *cold;            /* (n_items) */
    float *bc_eff, *dbc_eff;  /* (C) the candidates' biases (cold ones: score.item_bias[0]) and gradient */
} seq_ctx;

#define SEQ_BLK 2048            /* positions per block of logits, at most... */
#define SEQ_LOGITS_MAX (1 << 25) /* ...and at most 32 M logits (128 MB) per block, for large catalogues */

int seq_ctx_new(seq_ctx **out, const model *m, const train_data *d, const float *feat, model_backend backend,
                int max_rows, int max_steps, int negatives, char *err, size_t errlen);
void seq_ctx_free(seq_ctx *s);

/* Forward of one chunk: inputs (gathered, dropout p with masks from rng), RNN from (h0, c0),
 * attention, u. Leaves hT/cT for the next chunk. */
int seq_forward(seq_ctx *s, const seq_chunk *ch, double dropout, rng_t *rng, char *err, size_t errlen);
/* Heads on the chunk's target positions: mean loss over them into *loss (and the summed squared
 * value error and its count), gradients into grad for the head tensors and into s->du. */
int seq_heads(seq_ctx *s, const seq_chunk *ch, const train_config *c, rng_t *rng, float *grad, double *loss,
              double *value_se, long *n_value, long *n_targets, char *err, size_t errlen);
/* Backward from s->du to every core tensor's gradient. */
int seq_backward(seq_ctx *s, const seq_chunk *ch, float *grad, char *err, size_t errlen);
/* Moves hT/cT into h0/c0 for the next chunk (rows keep their index). */
void seq_carry(seq_ctx *s, int N_next);
void seq_reset_state(seq_ctx *s);

/* The value head (train_value.c, train.c): the user bias b_u after events ev[0..n) (0 for a
 * head without value.user), the data-dependent start of the heads' biases, and the head's refit
 * on the final u_t (value.user chosen on validation). */
float train_user_bias(const model *m, const model_event *ev, long n);
void train_init_biases(model *m, const train_data *d, const int *tlen, int heads);
int train_value_refit(model *m, const train_data *d, const train_config *c, const int *tlen, train_result *res,
                      char *err, size_t errlen);
/* The refit's objective, for the tests: the mean squared g-space error over the training targets
 * (user u's positions 0..tlen[u]-1, u from U (events, D)) and, if grad is not NULL, its gradient
 * over value.item_bias (n_items), value.bias (1) and value.w (D; 0 unless fit_w). NAN: no memory. */
double train_value_loss(model *m, const train_data *d, const int *tlen, const float *U, int fit_w, double *grad);

/* Features of every event of d, as model_step computes them per user ((events, F), caller frees). */
float *train_features(const train_data *d);

static inline int pad8(int n) { return (n + 7) & ~7; }

/* Tensor k's gradient in the gradient block g, which has the parameter block's layout (NULL for
 * a tensor this model does not have: another family's). */
#define GRAD(s, g, k) ((s)->m->t[k].data ? (g) + ((s)->m->t[k].data - (s)->m->params) : NULL)

/* expf for the softmax, in a form the compiler vectorizes (glibc's expf is a scalar call per
 * element: a third of a training epoch went there). Cephes' expf: x = n ln2 + r, |r| <= ln2/2,
 * e^r by a polynomial, 2^n through the exponent bits; about 1 ulp over the range the softmax
 * uses (x <= 0; x below -87 is taken as -87, e^-87 = 1.6e-38, where expf gives denormals). */
static inline float exp_poly(float x) {
    x = x > -87.0f ? x : -87.0f; /* the softmax only asks for x <= 0 */
    /* n = round(x / ln2) by the 1.5 * 2^23 trick (no floorf: plain SSE2 has no vector floor) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale;
    scale.i = ((int32_t)n + 127) << 23;
    return p * scale.f;
}


/* ---- the LRU stack (train_lru.c) ---- */
int seq_lru_new(seq_lru **out, const model *m, int max_rows, int max_steps);
void seq_lru_free(seq_lru *q);
void seq_lru_reset(seq_lru *q);
void seq_lru_carry(seq_lru *q, int N_next);
/* The stack over the chunk: s->xrnn -> s->hs, from the carried states; dropout s->layer_p. */
int seq_lru_forward(seq_ctx *s, const seq_chunk *ch, rng_t *rng, char *err, size_t errlen);
/* From s->dhs to the stack's gradients and s->dx_rnn (set, not added). */
int seq_lru_backward(seq_ctx *s, const seq_chunk *ch, float *grad, char *err, size_t errlen);

/* ---- linear layers (train_linear.c) ---- */
/* y (R,OC) = x (R,C) @ w (OC,C)^T + b (b may be NULL), on s's backend. -1: oneDNN failed. */
int seq_lin_fwd(const seq_ctx *s, float *y, const float *x, const float *w, const float *b, long R, int C, int OC);
/* dx (R,C) += dy @ w; dw (OC,C) += dy^T @ x; db (OC) += sum_r dy. Each of dx, dw, db may be NULL;
 * R is at most the rows of s->ones. */
int seq_lin_bwd(const seq_ctx *s, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                long R, int C, int OC);
/* GELU over n values: out = gelu(x); dx += dout gelu'(x). nn_ref's (scalar) or a float one
 * within 2e-7 of it (dnnl). */
void seq_gelu_fwd(const seq_ctx *s, float *out, const float *x, long n);
void seq_gelu_bwd(const seq_ctx *s, float *dx, const float *x, const float *dout, long n);
/* A dropout mask of n entries, 0 with probability p else 1/(1-p), from rng (p = 0: all ones,
 * rng unused). */
void seq_dropout_mask(float *mk, size_t n, double p, rng_t *rng);

/* ---- the transformer blocks (train_tf.c) ---- */
int seq_tf_new(seq_tf **out, const model *m, int max_rows, int max_steps);
void seq_tf_free(seq_tf *f);
/* Moves the keys and values of the last chunk's last W-1 steps before the next chunk's N_next rows. */
void seq_tf_carry(seq_tf *f, int N_next);
/* The blocks over the chunk: s->hs -> s->u (before u's dropout); dropout s->layer_p. */
int seq_tf_forward(seq_ctx *s, const seq_chunk *ch, rng_t *rng, char *err, size_t errlen);
/* From s->du to the blocks' and the output's gradients and s->dhs (set). */
int seq_tf_backward(seq_ctx *s, const seq_chunk *ch, float *grad, char *err, size_t errlen);

/* ---- one batch (train_batch.c) ---- */
/* Runs a batch (users sorted by len, longest first) chunk by chunk. Training (grad != NULL):
 * heads + backward per chunk, then `step` (optimizer) per chunk when given, else gradients add
 * up over the chunks. Inference (grad == NULL): calls `emit` with every chunk's u. */
typedef struct {
    const train_config *c;
    rng_t *rng;
    float *grad;
    int (*step)(void *ctx, char *err, size_t errlen);
    void *step_ctx;
    void (*emit)(void *ctx, const seq_ctx *s, const seq_chunk *ch);
    void *emit_ctx;
    double loss;       /* sum over positions */
    double loss_means; /* sum over chunks of the chunk's mean loss (what the gradient is of) */
    double value_se;
    long n_targets, n_value, chunks;
} batch_run;

int run_batch(seq_ctx *s, const int *users, const int *len, int n, int bptt, int targets, double dropout,
              batch_run *br, char *err, size_t errlen);
/* Sorts idx[0..n) by len[idx] descending, ties by index ascending (a total order). -1: ENOMEM. */
int sort_by_len(int *idx, int n, const int *len);

#endif
