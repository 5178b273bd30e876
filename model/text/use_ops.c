/* use_ops: float kernels of the fast path. See use_ops.h. */
#include "use_ops.h"

#include <math.h>

void use_layernorm(float *out, const float *x, const float *g, const float *b, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *r = x + (long)t * C;
        float *o = out + (long)t * C;
        float mean = 0, var = 0;
#pragma omp simd reduction(+ : mean)
        for (int i = 0; i < C; i++) mean += r[i];
        mean /= (float)C;
#pragma omp simd reduction(+ : var)
        for (int i = 0; i < C; i++) var += (r[i] - mean) * (r[i] - mean);
        var /= (float)C;
        const float rs = 1.0f / sqrtf(var + eps);
#pragma omp simd
        for (int i = 0; i < C; i++) o[i] = g[i] * ((r[i] - mean) * rs) + b[i];
    }
}

void use_softmax(float *x, int n) {
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
    for (int j = 0; j < n; j++) sum += x[j] = expf(x[j] - mx);
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j < n; j++) x[j] *= inv;
}

void use_mha(float *out, const float *qkv, int L, int H, int dh, float scale, float *probs) {
    const int C = H * dh;
    const long ld = 3L * C;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < L; i++) {
            const float *q = qkv + i * ld + h * dh;
            for (int j = 0; j < L; j++) {
                const float *k = qkv + j * ld + C + h * dh;
                float s = 0;
#pragma omp simd reduction(+ : s)
                for (int d = 0; d < dh; d++) s += q[d] * k[d];
                probs[j] = s * scale;
            }
            use_softmax(probs, L);
            float *o = out + i * (long)C + h * dh;
            for (int d = 0; d < dh; d++) o[d] = 0;
            for (int j = 0; j < L; j++) {
                const float *v = qkv + j * ld + 2 * C + h * dh;
                const float a = probs[j];
#pragma omp simd
                for (int d = 0; d < dh; d++) o[d] += a * v[d];
            }
        }
}

void use_mean_pool(float *u, const float *y, const int *lens, int N, int C) {
    long row = 0;
    for (int n = 0; n < N; n++) {
        float *o = u + (long)n * C;
        for (int i = 0; i < C; i++) o[i] = 0;
        for (int p = 0; p < lens[n]; p++, row++) {
            const float *r = y + row * C;
#pragma omp simd
            for (int i = 0; i < C; i++) o[i] += r[i];
        }
        if (lens[n] > 0) {
            const float inv = 1.0f / (float)lens[n];
#pragma omp simd
            for (int i = 0; i < C; i++) o[i] *= inv;
        }
    }
}

void use_tanh_l2norm(float *e, int N, int D) {
    for (int n = 0; n < N; n++) {
        float *r = e + (long)n * D;
        double ss = 0;
        for (int i = 0; i < D; i++) {
            r[i] = tanhf(r[i]);
            ss += (double)r[i] * r[i];
        }
        const float inv = (float)(1.0 / sqrt(ss > 1e-12 ? ss : 1e-12));
        for (int i = 0; i < D; i++) r[i] *= inv;
    }
}
