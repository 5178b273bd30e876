/* use_ops: the float kernels of the USE-lite encoder's fast path that are not matmuls: layer norm,
 * multi-head self-attention over one text, mean pooling, tanh + l2-normalisation.
 *
 * Plain C with `#pragma omp simd` on the inner loops (model/ is built with -fopenmp for oneDNN's
 * runtime, and GCC's -O2 vectorises float reductions only when told it may reorder them). Why not
 * oneDNN here: measured on the 2-vCPU AVX-512 VM, oneDNN's layer norm is 1.6-2.5x faster than
 * this one but it and softmax together are under 2 % of an encode, and both need a fixed shape per
 * primitive, while the token count changes with every batch and the attention shape with every
 * text (docs/text-encoder.md has the figures). Each kernel is checked against use_ref.h by
 * tests/unit/test_use_kernels.c.
 */
#ifndef IEVO_USE_OPS_H
#define IEVO_USE_OPS_H

/* layernorm: out (T,C) = g * (x - mean) / sqrt(var + eps) + b per row, biased variance, float. */
void use_layernorm(float *out, const float *x, const float *g, const float *b, int T, int C, float eps);

/* softmax in place over x (n): x = exp(x - max) / sum. */
void use_softmax(float *x, int n);

/* mha: out (L, H*dh) = multi-head self-attention over one text; qkv (L, 3*H*dh) as in
 * use_mha_ref (q, k, v column blocks; head h = cols [h*dh, h*dh + dh) of each). Scores are
 * (q . k) * scale. probs (L) is scratch. */
void use_mha(float *out, const float *qkv, int L, int H, int dh, float scale, float *probs);

/* pool: u (N,C) = the mean of each text's rows of y (T,C); text i owns lens[i] consecutive rows
 * (sum of lens = T); a text with no rows gets 0. */
void use_mean_pool(float *u, const float *y, const int *lens, int N, int C);

/* tanh + l2: e (N,D) = tanh(e), then each row divided by sqrt(max(sum e^2, 1e-12)). */
void use_tanh_l2norm(float *e, int N, int D);

#endif
