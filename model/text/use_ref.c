/* use_ref: scalar reference kernels of the USE-lite encoder. See use_ref.h for shapes and math. */
#include "use_ref.h"

#include <math.h>

void use_matmul_ref(float *out, const float *inp, const float *w, const float *bias, int T, int C, int OC,
                    int accumulate) {
    for (int t = 0; t < T; t++) {
        const float *x = inp + (long)t * C;
        float *y = out + (long)t * OC;
        for (int o = 0; o < OC; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int i = 0; i < C; i++) s += (double)x[i] * w[(long)i * OC + o];
            y[o] = accumulate ? (float)((double)y[o] + s) : (float)s;
        }
    }
}

void use_layernorm_ref(float *out, const float *x, const float *g, const float *b, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *r = x + (long)t * C;
        float *o = out + (long)t * C;
        double mean = 0, var = 0;
        for (int i = 0; i < C; i++) mean += r[i];
        mean /= C;
        for (int i = 0; i < C; i++) var += (r[i] - mean) * (r[i] - mean);
        var /= C;
        double rs = 1.0 / sqrt(var + eps);
        for (int i = 0; i < C; i++) o[i] = (float)(g[i] * (r[i] - mean) * rs + b[i]);
    }
}

void use_embed_ref(float *x, const int *ids, int L, const float *emb, const float *inv_timescales) {
    for (int p = 0; p < L; p++) {
        const float *e = emb + (long)ids[p] * 256;
        float *r = x + (long)p * 256;
        for (int i = 0; i < 128; i++) {
            float a = (float)p * inv_timescales[i];
            r[i] = (float)(2.0 * e[i] + sin((double)a));
            r[128 + i] = (float)(2.0 * e[128 + i] + cos((double)a));
        }
    }
}

void use_mha_ref(float *out, const float *qkv, int L, int H, int dh, float scale, double *scratch) {
    const int C = H * dh;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < L; i++) {
            const float *q = qkv + (long)i * 3 * C + h * dh;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < L; j++) {
                const float *k = qkv + (long)j * 3 * C + C + h * dh;
                double s = 0;
                for (int d = 0; d < dh; d++) s += (double)(scale * q[d]) * k[d];
                scratch[j] = s;
                if (s > mx) mx = s;
            }
            for (int j = 0; j < L; j++) sum += scratch[j] = exp(scratch[j] - mx);
            float *o = out + (long)i * C + h * dh;
            for (int d = 0; d < dh; d++) {
                double s = 0;
                for (int j = 0; j < L; j++) s += scratch[j] * qkv[(long)j * 3 * C + 2 * C + h * dh + d];
                o[d] = (float)(s / sum);
            }
        }
}

void use_relu_ref(float *x, long n) {
    for (long i = 0; i < n; i++)
        if (!(x[i] > 0)) x[i] = 0;
}

void use_head_ref(float *out, const float *y, int L, const float *w, const float *b, int C, int OC, double *scratch) {
    double *u = scratch;
    for (int i = 0; i < C; i++) u[i] = 0;
    for (int p = 0; p < L; p++)
        for (int i = 0; i < C; i++) u[i] += y[(long)p * C + i];
    for (int i = 0; i < C; i++) u[i] = (float)(L > 0 ? u[i] / L : 0.0); /* the pooled vector is float32 */
    double ss = 0;
    for (int o = 0; o < OC; o++) {
        double s = b[o];
        for (int i = 0; i < C; i++) s += u[i] * w[(long)i * OC + o];
        out[o] = (float)tanh(s);
        ss += (double)out[o] * out[o];
    }
    double inv = 1.0 / sqrt(ss > 1e-12 ? ss : 1e-12);
    for (int o = 0; o < OC; o++) out[o] = (float)(out[o] * inv);
}
