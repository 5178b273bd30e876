/* train_linear: the trainer's linear layer, y = x w^T + b over R rows, and its GELU, forward and
 * backward, on either backend (train_internal.h): nn_ref's double-accumulating reference
 * (scalar) or oneDNN's sgemm and a float GELU (dnnl); and the residual branches' dropout masks.
 * Every layer of train_seq.c, train_lru.c and train_tf.c goes through these.
 */
#include <math.h>

#include "nn_ref.h"
#include "train_internal.h"

int seq_lin_fwd(const seq_ctx *s, float *y, const float *x, const float *w, const float *b, long R, int C, int OC) {
    if (s->backend == MODEL_BACKEND_SCALAR) {
        linear_forward(y, x, w, b, (int)R, C, OC);
        return 0;
    }
    if (R == 0) return 0;
    for (long r = 0; r < R; r++)
        if (b) memcpy(y + r * OC, b, (size_t)OC * sizeof(float));
        else memset(y + r * OC, 0, (size_t)OC * sizeof(float));
    return nn_gemm('N', 'T', R, OC, C, 1.0f, x, C, w, C, 1.0f, y, OC);
}

int seq_lin_bwd(const seq_ctx *s, float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                long R, int C, int OC) {
    if (s->backend == MODEL_BACKEND_SCALAR) {
        linear_backward(dx, dw, db, dy, x, w, (int)R, C, OC);
        return 0;
    }
    if (dx && nn_gemm('N', 'N', R, C, OC, 1.0f, dy, OC, w, C, 1.0f, dx, C)) return -1;
    if (dw && nn_gemm('T', 'N', OC, C, R, 1.0f, dy, OC, x, C, 1.0f, dw, C)) return -1;
    if (db && nn_gemm('T', 'N', OC, 1, R, 1.0f, dy, OC, s->ones, 1, 1.0f, db, 1)) return -1;
    return 0;
}

/* GELU for the oneDNN backend: float and vectorizable, where nn_ref's calls libm's erf per
 * element in double (a fifth of an epoch went there). erf by Abramowitz & Stegun 7.1.26
 * (|error| <= 1.5e-7), the Gaussians by exp_poly. */
static inline float erf_fast(float x) {
    const float a = fabsf(x), t = 1.0f / (1.0f + 0.3275911f * a);
    const float p = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
    const float y = 1.0f - p * exp_poly(-a * a);
    return x < 0 ? -y : y;
}

void seq_gelu_fwd(const seq_ctx *s, float *restrict out, const float *restrict x, long n) {
    if (s->backend == MODEL_BACKEND_SCALAR) {
        gelu_forward(out, x, n);
        return;
    }
    for (long i = 0; i < n; i++) out[i] = 0.5f * x[i] * (1.0f + erf_fast(x[i] * 0.70710678f));
}

void seq_gelu_bwd(const seq_ctx *s, float *restrict dx, const float *restrict x, const float *restrict dout, long n) {
    if (s->backend == MODEL_BACKEND_SCALAR) {
        gelu_backward(dx, x, dout, n);
        return;
    }
    for (long i = 0; i < n; i++) {
        const float v = x[i];
        dx[i] += dout[i] * (0.5f * (1.0f + erf_fast(v * 0.70710678f)) + v * exp_poly(-0.5f * v * v) * 0.39894228f);
    }
}

void seq_dropout_mask(float *mk, size_t n, double p, rng_t *rng) {
    const float keep = p > 0 ? (float)(1.0 / (1.0 - p)) : 1.0f;
    for (size_t i = 0; i < n; i++) mk[i] = p > 0 && rng_uniform(rng) < p ? 0.0f : keep;
}
