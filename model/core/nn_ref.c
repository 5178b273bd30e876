/* nn_ref: scalar reference kernels. See nn_ref.h for the shapes and the math. */
#include "nn_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int B, int C, int OC) {
    if (dinp)
        for (int b = 0; b < B; b++) {
            const float *g = dout + (long)b * OC;
            float *dx = dinp + (long)b * C;
            for (int i = 0; i < C; i++) {
                double s = 0;
                for (int o = 0; o < OC; o++) s += (double)g[o] * weight[(long)o * C + i];
                dx[i] += (float)s;
            }
        }
    for (int o = 0; o < OC; o++) {
        if (dweight) {
            float *dw = dweight + (long)o * C;
            for (int i = 0; i < C; i++) {
                double s = 0;
                for (int b = 0; b < B; b++) s += (double)dout[(long)b * OC + o] * inp[(long)b * C + i];
                dw[i] += (float)s;
            }
        }
        if (dbias) {
            double s = 0;
            for (int b = 0; b < B; b++) s += dout[(long)b * OC + o];
            dbias[o] += (float)s;
        }
    }
}

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

void lstm_cell_backward(float *dx, float *dh, float *dc, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                        const float *dh_out, const float *dc_out, const float *gates, const float *x,
                        const float *h, const float *c, const float *w_ih, const float *w_hh, int B, int I, int H) {
    float *da = malloc((size_t)4 * H * sizeof *da); /* pre-activation gradient of one row */
    if (!da) abort();                               /* reference code: no error path worth having */
    for (int b = 0; b < B; b++) {
        const float *g = gates + (long)b * 4 * H, *cb = c + (long)b * H;
        for (int j = 0; j < H; j++) {
            double ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
            double tc = tanh((float)(fg * cb[j] + ig * gg)); /* as the forward rounded c_out */
            double dho = dh_out[(long)b * H + j];
            double dct = (dc_out ? dc_out[(long)b * H + j] : 0.0) + dho * og * (1.0 - tc * tc);
            da[j] = (float)(dct * gg * ig * (1.0 - ig));
            da[H + j] = (float)(dct * cb[j] * fg * (1.0 - fg));
            da[2 * H + j] = (float)(dct * ig * (1.0 - gg * gg));
            da[3 * H + j] = (float)(dho * tc * og * (1.0 - og));
            if (dc) dc[(long)b * H + j] += (float)(dct * fg);
        }
        linear_backward(dx ? dx + (long)b * I : NULL, dw_ih, db_ih, da, x + (long)b * I, w_ih, 1, I, 4 * H);
        linear_backward(dh ? dh + (long)b * H : NULL, dw_hh, db_hh, da, h + (long)b * H, w_hh, 1, H, 4 * H);
    }
    free(da);
}

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

void gru_cell_backward(float *dx, float *dh, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                       const float *dh_out, const float *gh, const float *act, const float *x, const float *h,
                       const float *w_ih, const float *w_hh, int B, int I, int H) {
    int G = 3 * H;
    float *dgx = malloc((size_t)G * sizeof *dgx), *dgh = malloc((size_t)G * sizeof *dgh);
    if (!dgx || !dgh) abort();
    for (int b = 0; b < B; b++) {
        const float *a = act + (long)b * G, *ph = gh + (long)b * G, *hb = h + (long)b * H;
        for (int j = 0; j < H; j++) {
            double r = a[j], z = a[H + j], n = a[2 * H + j], dho = dh_out[(long)b * H + j];
            double dn = dho * (1.0 - z), dz = dho * (hb[j] - n);
            double dan = dn * (1.0 - n * n);
            double dr = dan * ph[2 * H + j];
            double dar = dr * r * (1.0 - r), daz = dz * z * (1.0 - z);
            dgx[j] = dgh[j] = (float)dar;
            dgx[H + j] = dgh[H + j] = (float)daz;
            dgx[2 * H + j] = (float)dan;
            dgh[2 * H + j] = (float)(dan * r);
            if (dh) dh[(long)b * H + j] += (float)(dho * z);
        }
        linear_backward(dx ? dx + (long)b * I : NULL, dw_ih, db_ih, dgx, x + (long)b * I, w_ih, 1, I, G);
        linear_backward(dh ? dh + (long)b * H : NULL, dw_hh, db_hh, dgh, hb, w_hh, 1, H, G);
    }
    free(dgx);
    free(dgh);
}

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

void window_attention_backward(float *dh, float *dxs, float *dw_q, float *db_q, float *dw_k, float *db_k, float *dw_v,
                               float *db_v, const float *dctx, const float *a, const float *q, const float *k,
                               const float *v, const float *h, const float *xs, int n, const float *w_q,
                               const float *w_k, const float *w_v, int H, int I, int K) {
    float *dq = malloc((size_t)K * sizeof *dq), *dk = malloc((size_t)n * K * sizeof *dk);
    float *dv = malloc((size_t)n * K * sizeof *dv), *ds = malloc((size_t)n * sizeof *ds);
    if (!dq || !dk || !dv || !ds) abort();
    double scale = 1.0 / sqrt((double)K), dot = 0;
    for (int j = 0; j < n; j++) {
        double da = 0;
        for (int i = 0; i < K; i++) {
            da += (double)dctx[i] * v[(long)j * K + i];
            dv[(long)j * K + i] = (float)((double)a[j] * dctx[i]);
        }
        ds[j] = (float)da;
        dot += (double)a[j] * da;
    }
    for (int j = 0; j < n; j++) ds[j] = (float)((double)a[j] * ((double)ds[j] - dot)); /* softmax backward */
    for (int i = 0; i < K; i++) {
        double s = 0;
        for (int j = 0; j < n; j++) s += (double)ds[j] * k[(long)j * K + i];
        dq[i] = (float)(s * scale);
    }
    for (int j = 0; j < n; j++)
        for (int i = 0; i < K; i++) dk[(long)j * K + i] = (float)((double)ds[j] * q[i] * scale);
    linear_backward(dh, dw_q, db_q, dq, h, w_q, 1, H, K);
    linear_backward(dxs, dw_k, db_k, dk, xs, w_k, n, I, K);
    linear_backward(dxs, dw_v, db_v, dv, xs, w_v, n, I, K);
    free(dq);
    free(dk);
    free(dv);
    free(ds);
}

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

/* ---- the LRU stack's pieces ------------------------------------------------------------------ */

void layernorm_forward(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int B, int C) {
    for (int r = 0; r < B; r++) {
        const float *xr = x + (long)r * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++) m += xr[i];
        m /= C;
        for (int i = 0; i < C; i++) v += ((double)xr[i] - m) * ((double)xr[i] - m);
        double rs = 1.0 / sqrt(v / C + NN_LN_EPS);
        float *o = out + (long)r * C;
        for (int i = 0; i < C; i++) o[i] = (float)(((double)xr[i] - m) * rs * w[i] + b[i]);
        if (mean) mean[r] = (float)m;
        if (rstd) rstd[r] = (float)rs;
    }
}

void layernorm_backward(float *dx, float *dw, float *db, const float *dout, const float *x, const float *mean,
                        const float *rstd, const float *w, int B, int C) {
    for (int r = 0; r < B; r++) {
        const float *xr = x + (long)r * C, *g = dout + (long)r * C;
        const double m = mean[r], rs = rstd[r];
        double sdn = 0, sdnn = 0;
        for (int i = 0; i < C; i++) {
            double n = ((double)xr[i] - m) * rs, dn = (double)g[i] * w[i];
            sdn += dn, sdnn += dn * n;
        }
        sdn /= C, sdnn /= C;
        for (int i = 0; i < C; i++) {
            double n = ((double)xr[i] - m) * rs, dn = (double)g[i] * w[i];
            dx[(long)r * C + i] += (float)(rs * (dn - sdn - n * sdnn));
            if (dw) dw[i] += (float)(g[i] * n);
            if (db) db[i] += g[i];
        }
    }
}

void gelu_forward(float *out, const float *x, long n) {
    for (long i = 0; i < n; i++) {
        double v = x[i];
        out[i] = (float)(0.5 * v * (1.0 + erf(v * 0.70710678118654752440)));
    }
}

void gelu_backward(float *dx, const float *x, const float *dout, long n) {
    for (long i = 0; i < n; i++) {
        double v = x[i];
        double d = 0.5 * (1.0 + erf(v * 0.70710678118654752440)) + v * exp(-0.5 * v * v) * 0.39894228040143267794;
        dx[i] += (float)(dout[i] * d);
    }
}

void lru_lambda_forward(float *lre, float *lim, float *gamma, const float *nu, const float *theta, const float *gamma_log,
                        int N) {
    for (int k = 0; k < N; k++) {
        double r = exp(-exp((double)nu[k])), phi = exp((double)theta[k]);
        lre[k] = (float)(r * cos(phi));
        lim[k] = (float)(r * sin(phi));
        gamma[k] = (float)exp((double)gamma_log[k]);
    }
}

void lru_lambda_backward(float *dnu, float *dtheta, float *dgamma_log, const float *dlre, const float *dlim,
                         const float *dgamma, const float *lre, const float *lim, const float *gamma, const float *theta,
                         const float *nu, int N) {
    for (int k = 0; k < N; k++) {
        dnu[k] += (float)(-exp((double)nu[k]) * ((double)dlre[k] * lre[k] + (double)dlim[k] * lim[k]));
        dtheta[k] += (float)(exp((double)theta[k]) * ((double)dlim[k] * lre[k] - (double)dlre[k] * lim[k]));
        dgamma_log[k] += (float)((double)dgamma[k] * gamma[k]);
    }
}

void lru_scan_forward(float *hs, const float *u, const float *h0, const float *lre, const float *lim, const float *gamma,
                      int T, int B, int N) {
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const float *hp = t ? hs + ((long)(t - 1) * B + b) * 2 * N : h0 + (long)b * 2 * N;
            const float *ut = u + ((long)t * B + b) * 2 * N;
            float *h = hs + ((long)t * B + b) * 2 * N;
            for (int k = 0; k < N; k++) {
                double re = (double)lre[k] * hp[k] - (double)lim[k] * hp[N + k] + (double)gamma[k] * ut[k];
                double im = (double)lim[k] * hp[k] + (double)lre[k] * hp[N + k] + (double)gamma[k] * ut[N + k];
                h[k] = (float)re;
                h[N + k] = (float)im;
            }
        }
}

void lru_scan_backward(float *du, float *dh0, float *dlre, float *dlim, float *dgamma, const float *dhs, const float *hs,
                       const float *u, const float *h0, const float *lre, const float *lim, const float *gamma, int T,
                       int B, int N) {
    double *G = calloc((size_t)2 * N, sizeof *G);
    if (!G) abort(); /* reference code: no error path worth having */
    for (int b = 0; b < B; b++) {
        memset(G, 0, (size_t)2 * N * sizeof *G);
        for (int t = T - 1; t >= 0; t--) {
            const long o = ((long)t * B + b) * 2 * N;
            const float *hp = t ? hs + ((long)(t - 1) * B + b) * 2 * N : h0 + (long)b * 2 * N;
            for (int k = 0; k < N; k++) {
                double gr = G[k] + dhs[o + k], gi = G[N + k] + dhs[o + N + k];
                du[o + k] += (float)(gamma[k] * gr);
                du[o + N + k] += (float)(gamma[k] * gi);
                dgamma[k] += (float)(gr * u[o + k] + gi * u[o + N + k]);
                dlre[k] += (float)(gr * hp[k] + gi * hp[N + k]);
                dlim[k] += (float)(-gr * hp[N + k] + gi * hp[k]);
                G[k] = lre[k] * gr + lim[k] * gi; /* conj(lambda) G_t: the part that reaches h_{t-1} */
                G[N + k] = -lim[k] * gr + lre[k] * gi;
            }
        }
        for (int k = 0; dh0 && k < 2 * N; k++) dh0[(long)b * 2 * N + k] += (float)G[k];
    }
    free(G);
}

void mha_window_forward(float *out, float *a, const float *q, const float *K, long ldk, const float *V, long ldv, int n,
                        int H, int nh) {
    const int dh = H / nh;
    const double scale = 1.0 / sqrt((double)dh);
    for (int h = 0; h < nh; h++) {
        float *ah = a + (long)h * n;
        const float *qh = q + (long)h * dh;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++) {
            const float *kj = K + j * ldk + (long)h * dh;
            double s = 0;
            for (int i = 0; i < dh; i++) s += (double)qh[i] * kj[i];
            ah[j] = (float)(s * scale);
            if (ah[j] > mx) mx = ah[j];
        }
        for (int j = 0; j < n; j++) sum += (ah[j] = (float)exp(ah[j] - mx));
        for (int j = 0; j < n; j++) ah[j] = (float)(ah[j] / sum);
        for (int i = 0; i < dh; i++) {
            double s = 0;
            for (int j = 0; j < n; j++) s += (double)ah[j] * V[j * ldv + (long)h * dh + i];
            out[(long)h * dh + i] = (float)s;
        }
    }
}

void mha_window_backward(float *dq, float *dK, float *dV, const float *dout, const float *a, const float *q,
                         const float *K, long ldk, const float *V, long ldv, int n, int H, int nh) {
    const int dh = H / nh;
    const double scale = 1.0 / sqrt((double)dh);
    double *ds = malloc((size_t)(n ? n : 1) * sizeof *ds);
    if (!ds) abort(); /* reference code: no error path worth having */
    for (int h = 0; h < nh; h++) {
        const float *ah = a + (long)h * n, *g = dout + (long)h * dh, *qh = q + (long)h * dh;
        double dot = 0;
        for (int j = 0; j < n; j++) {
            const float *vj = V + j * ldv + (long)h * dh;
            double da = 0;
            for (int i = 0; i < dh; i++) {
                da += (double)g[i] * vj[i];
                if (dV) dV[j * ldv + (long)h * dh + i] += (float)((double)ah[j] * g[i]);
            }
            ds[j] = da;
            dot += (double)ah[j] * da;
        }
        for (int j = 0; j < n; j++) ds[j] = ah[j] * (ds[j] - dot) * scale; /* softmax backward, with the scale */
        for (int i = 0; i < dh; i++) {
            double s = 0;
            for (int j = 0; j < n; j++) s += ds[j] * K[j * ldk + (long)h * dh + i];
            dq[(long)h * dh + i] += (float)s;
        }
        for (int j = 0; dK && j < n; j++)
            for (int i = 0; i < dh; i++) dK[j * ldk + (long)h * dh + i] += (float)(ds[j] * qh[i]);
    }
    free(ds);
}
