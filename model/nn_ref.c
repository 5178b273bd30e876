/* nn_ref: scalar reference kernels. See nn_ref.h for the shapes and the math. */
#include "nn_ref.h"

#include <math.h>

static inline float sigmoidf_(double x) { return (float)(1.0 / (1.0 + exp(-x))); }

void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int C, int OC) {
    for (int b = 0; b < B; b++) {
        const float *x = inp + (long)b * C;
        float *y = out + (long)b * OC;
        for (int o = 0; o < OC; o++) {
            const float *w = weight + (long)o * C;
            double s = bias ? bias[o] : 0.0;
            for (int i = 0; i < C; i++) s += (double)w[i] * x[i];
            y[o] = (float)s;
        }
    }
}
/* linear_backward: next task (trainer). */

void lstm_cell_forward(float *h_out, float *c_out, float *gates, const float *x, const float *h, const float *c,
                       const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                       int B, int I, int H) {
    for (int b = 0; b < B; b++) {
        const float *xb = x + (long)b * I, *hb = h + (long)b * H, *cb = c + (long)b * H;
        float *g = gates + (long)b * 4 * H;
        for (int r = 0; r < 4 * H; r++) {
            const float *wi = w_ih + (long)r * I, *wh = w_hh + (long)r * H;
            double s = (double)b_ih[r] + (double)b_hh[r];
            for (int i = 0; i < I; i++) s += (double)wi[i] * xb[i];
            for (int i = 0; i < H; i++) s += (double)wh[i] * hb[i];
            int gate = r / H; /* 0 i, 1 f, 2 g, 3 o */
            g[r] = gate == 2 ? (float)tanh(s) : sigmoidf_(s);
        }
        for (int j = 0; j < H; j++) {
            double ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
            double cn = fg * cb[j] + ig * gg;
            c_out[(long)b * H + j] = (float)cn;
            h_out[(long)b * H + j] = (float)(og * tanh((float)cn));
        }
    }
}
/* lstm_cell_backward: next task (trainer). */

void gru_cell_forward(float *h_out, float *gx, float *gh, float *act, const float *x, const float *h,
                      const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                      int B, int I, int H) {
    int G = 3 * H;
    linear_forward(gx, x, w_ih, b_ih, B, I, G);
    linear_forward(gh, h, w_hh, b_hh, B, H, G);
    for (int b = 0; b < B; b++) {
        const float *px = gx + (long)b * G, *ph = gh + (long)b * G, *hb = h + (long)b * H;
        float *a = act + (long)b * G;
        for (int j = 0; j < H; j++) {
            double r = sigmoidf_((double)px[j] + ph[j]);
            double z = sigmoidf_((double)px[H + j] + ph[H + j]);
            double n = tanh((double)px[2 * H + j] + r * ph[2 * H + j]);
            a[j] = (float)r;
            a[H + j] = (float)z;
            a[2 * H + j] = (float)n;
            h_out[(long)b * H + j] = (float)((1.0 - z) * n + z * hb[j]);
        }
    }
}
/* gru_cell_backward: next task (trainer). */

void window_attention_forward(float *ctx, float *a, float *q, float *k, float *v, const float *h, const float *xs,
                              int n, const float *w_q, const float *b_q, const float *w_k, const float *b_k,
                              const float *w_v, const float *b_v, int H, int I, int K) {
    linear_forward(q, h, w_q, b_q, 1, H, K);
    linear_forward(k, xs, w_k, b_k, n, I, K);
    linear_forward(v, xs, w_v, b_v, n, I, K);
    double scale = 1.0 / sqrt((double)K), mx = -INFINITY, sum = 0;
    for (int j = 0; j < n; j++) {
        double s = 0;
        for (int i = 0; i < K; i++) s += (double)q[i] * k[(long)j * K + i];
        a[j] = (float)(s * scale);
        if (a[j] > mx) mx = a[j];
    }
    for (int j = 0; j < n; j++) {
        double e = exp(a[j] - mx);
        a[j] = (float)e;
        sum += e;
    }
    for (int j = 0; j < n; j++) a[j] = (float)(a[j] / sum);
    for (int i = 0; i < K; i++) {
        double s = 0;
        for (int j = 0; j < n; j++) s += (double)a[j] * v[(long)j * K + i];
        ctx[i] = (float)s;
    }
}
/* window_attention_backward: next task (trainer). */

float drift_forward(const float *u, const float *u_prev, int D, int first) {
    if (first) return 0.0f;
    double uv = 0, uu = 0, vv = 0;
    for (int i = 0; i < D; i++) {
        uv += (double)u[i] * u_prev[i];
        uu += (double)u[i] * u[i];
        vv += (double)u_prev[i] * u_prev[i];
    }
    double den = sqrt(uu) * sqrt(vv);
    if (den < 1e-12) den = 1e-12;
    return (float)(1.0 - uv / den);
}
/* drift has no backward: it is a monitoring output, not trained through. */
