/* nn_dnnl: the oneDNN 2.6 (C API) kernels of the step: a one-step LSTM / linear-before-reset
 * GRU over a batch, and matmul-based linear layers. The only file of the step that includes
 * oneDNN (whose 2.x op-descriptor API is gone in 3.x, so it stays behind this small interface);
 * the trainer's oneDNN kernels sit behind nn_dnnl_train.h the same way.
 *
 * Rows are padded to batch-size buckets (1, 2, 4, ..., 256, then 1024, 4096, ... up to
 * max_batch): one primitive per bucket, all created up front; weights are reordered once per distinct layout the
 * primitives ask for (for the RNN that is one layout for every bucket). Primitives read and write
 * caller-owned buffers sized for the largest bucket; a step allocates nothing. The scratchpad is
 * user-managed: one buffer shared by every primitive, allocated by nn_dnnl_finalize.
 */
#ifndef IEVO_NN_DNNL_H
#define IEVO_NN_DNNL_H

#include <stddef.h>

typedef struct nn_dnnl nn_dnnl;
typedef struct nn_dnnl_rnn nn_dnnl_rnn;
typedef struct nn_dnnl_linear nn_dnnl_linear;
typedef struct nn_dnnl_layernorm nn_dnnl_layernorm;

int nn_dnnl_new(nn_dnnl **out, int max_batch, char *err, size_t errlen);
/* Frees the context and every rnn/linear created on it. */
void nn_dnnl_free(nn_dnnl *d);
int nn_dnnl_n_buckets(const nn_dnnl *d);
int nn_dnnl_bucket_rows(const nn_dnnl *d, int bucket);
/* The smallest bucket holding n rows (1 <= n <= max_batch). */
int nn_dnnl_bucket_for(const nn_dnnl *d, int n);
/* Allocates the shared scratchpad; call once after the last *_new, before any *_forward. */
int nn_dnnl_finalize(nn_dnnl *d, char *err, size_t errlen);

/* rnn, one step over R = max_batch rows, PyTorch weights and gate order:
 *   LSTM: x (R,I), h (R,H), c (R,H) -> h_out (R,H), c_out (R,H); w_ih (4H,I), w_hh (4H,H),
 *         b_ih, b_hh (4H), gates i,f,g,o
 *   GRU:  x (R,I), h (R,H) -> h_out (R,H) (c, c_out unused, may be NULL); w_ih (3H,I),
 *         w_hh (3H,H), b_ih, b_hh (3H), gates r,z,n (mapped to oneDNN's u,r,o + 4-gate bias)
 * The weights are copied; the buffers are used in place for the object's life. */
int nn_dnnl_rnn_new(nn_dnnl_rnn **out, nn_dnnl *d, int lstm, int I, int H, const float *w_ih, const float *w_hh,
                    const float *b_ih, const float *b_hh, float *x, float *h, float *c, float *h_out,
                    float *c_out, char *err, size_t errlen);
/* Runs the bucket's primitive over its rows (rows past the caller's n are padding). */
int nn_dnnl_rnn_forward(nn_dnnl_rnn *r, int bucket, char *err, size_t errlen);

/* linear: y (R,OC) = x (R,C) @ w (OC,C)^T + b (OC). Weights copied, buffers used in place. */
int nn_dnnl_linear_new(nn_dnnl_linear **out, nn_dnnl *d, int C, int OC, const float *w, const float *b, float *x,
                       float *y, char *err, size_t errlen);
/* The same with a fused post-op on the result: NN_POST_GELU y = gelu_erf(x w^T + b), NN_POST_SUM
 * y += x w^T + b (the residual: y holds the other branch when the primitive runs). */
enum { NN_POST_NONE = 0, NN_POST_GELU = 1, NN_POST_SUM = 2 };
int nn_dnnl_linear_new_post(nn_dnnl_linear **out, nn_dnnl *d, int C, int OC, const float *w, const float *b, float *x,
                            float *y, int post, char *err, size_t errlen);
int nn_dnnl_linear_forward(nn_dnnl_linear *l, int bucket, char *err, size_t errlen);

/* layernorm over the last dimension: y (R,C) = (x - mean) / sqrt(var + eps) * w + b, the
 * population variance and eps as nn_ref's. w, b copied; y may be x. */
int nn_dnnl_layernorm_new(nn_dnnl_layernorm **out, nn_dnnl *d, int C, const float *w, const float *b, float *x, float *y,
                          char *err, size_t errlen);
int nn_dnnl_layernorm_forward(nn_dnnl_layernorm *l, int bucket, char *err, size_t errlen);

/* How many reordered weight copies the object holds (1 = one layout served every bucket). */
int nn_dnnl_rnn_weight_layouts(const nn_dnnl_rnn *r);
int nn_dnnl_linear_weight_layouts(const nn_dnnl_linear *l);

/* Row-major C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C; ta/tb 'N' or 'T'.
 * oneDNN's sgemm: deterministic for a given thread count. Returns 0, or -1. */
int nn_gemm(char ta, char tb, long M, long N, long K, float alpha, const float *A, long lda, const float *B, long ldb,
            float beta, float *C, long ldc);


#endif
