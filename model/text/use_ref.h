/* use_ref: the plain scalar kernels of the USE-lite encoder, the reference its oneDNN path is
 * checked against (and, through tests/oracle/test_use_lite.py, checked against the TF.js graph's
 * own outputs themselves).
 *
 * llm.c style: flat row-major float buffers, a shape comment on each function, accumulation in
 * double so the reference is more accurate than what it checks. One text at a time, no padding.
 * Forward only: the encoder is frozen (a later trainer learns an adaptor on its outputs).
 */
#ifndef IEVO_USE_REF_H
#define IEVO_USE_REF_H

/* matmul: out (T,OC) = inp (T,C) @ w (C,OC) + bias (OC); with accumulate, out += that instead.
 * w is [in][out] (a TF 1x1 conv kernel [1,1,C,OC] is exactly this). bias may be NULL. */
void use_matmul_ref(float *out, const float *inp, const float *w, const float *bias, int T, int C, int OC,
                    int accumulate);

/* layernorm: out (T,C) = g * (x - mean) / sqrt(var + eps) + b per row, biased variance. */
void use_layernorm_ref(float *out, const float *x, const float *g, const float *b, int T, int C, float eps);

/* embed: x (L,256) = 2 * emb[ids[p]] (256) + [sin(p * inv[0..128)), cos(p * inv[0..128))].
 * p * inv[i] is rounded to float first, as the float32 graph does. */
void use_embed_ref(float *x, const int *ids, int L, const float *emb, const float *inv_timescales);

/* mha: out (L, H*dh) = multi-head self-attention over one text.
 * qkv (L, 3*H*dh): q = cols [0, H*dh), k = [H*dh, 2*H*dh), v = [2*H*dh, 3*H*dh); head h uses
 * cols [h*dh, h*dh + dh) of each. a_h = softmax_j((scale * q_i) . k_j) over all L positions,
 * out_i = sum_j a_ij v_j. scratch (L) doubles. */
void use_mha_ref(float *out, const float *qkv, int L, int H, int dh, float scale, double *scratch);

/* relu in place: x (n). */
void use_relu_ref(float *x, long n);

/* head: out (512) = l2normalise(tanh(mean_p y[p] @ w + b)), y (L,C), w (C,OC), b (OC);
 * the mean of zero rows is 0; e is divided by sqrt(max(sum e^2, 1e-12)). scratch (C) doubles. */
void use_head_ref(float *out, const float *y, int L, const float *w, const float *b, int C, int OC, double *scratch);

#endif
