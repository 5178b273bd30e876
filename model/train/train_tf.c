/* train_tf: the transformer blocks (model.h, attention tf) over one chunk, forward and backward
 * side by side: what train_seq.c runs after the recurrent part instead of the window attention
 * and the output. Shapes: P = T*N positions, time-major (train_internal.h); the keys and values
 * live on the extended steps Te = T + W - 1 (ext step te = t + W - 1 holds step t, ext steps
 * 0 .. W-2 the W-1 positions before the chunk, carried over from the previous chunk, detached:
 * like the RNN's state, they take no gradient). Every per-block buffer is (Lt, P or Pe, .).
 *
 *   x_0 = hs (the recurrent output, P x H)
 *   per block l:  n1 = LN1(x_l);  [q ; k ; v] = n1 W_qkv^T + b_qkv     (P, 3H; k and v at ext rows)
 *                 ctx_p = mha_window(q_p, the k, v of p's window)       (P, H)
 *                 a = x_l + (ctx W_o^T + b_o) * mask_o
 *                 x_{l+1} = a + (gelu(LN2(a) W1^T + b1) W2^T + b2) * mask_f
 *   u = LNf(x_Lt) W_out^T + b_out                                       (P, D)
 *
 * The window of position (t, b) is the existing one (train_internal.h: wl = min(g+1, W) entries
 * ending at ext step t + W - 1). Dropout (layer_dropout) on both residual branches. Linears on the
 * chunk's backend (train_linear.c), LayerNorm and the attention nn_ref's on both, the GELU
 * nn_ref's (scalar) or its float twin (dnnl).
 */
#include <stdlib.h>

#include "nn_ref.h"
#include "train_internal.h"

#define P_(s, k) ((s)->m->t[k].data)

void seq_tf_free(seq_tf *f) {
    if (!f) return;
    float *b[] = {f->x, f->n1, f->st, f->qkv, f->att, f->ctx, f->a, f->mask_o, f->n2, f->f1, f->g1, f->f2, f->mask_f,
                  f->y, f->hn, f->stf, f->dx, f->dy, f->dn, f->dqkv, f->dctx, f->dg};
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) free(b[i]);
    free(f);
}

int seq_tf_new(seq_tf **out, const model *m, int max_rows, int max_steps) {
    const model_config *c = &m->cfg;
    seq_tf *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f) return -1;
    f->Lt = c->blocks, f->nh = c->heads, f->H = c->hidden, f->F = c->ffn_dim, f->W = c->window;
    f->maxN = max_rows, f->maxT = max_steps;
    const size_t Lt = (size_t)f->Lt, H = (size_t)f->H, F = (size_t)f->F, W = (size_t)f->W;
    const size_t P = (size_t)max_rows * max_steps, Pe = (size_t)max_rows * (max_steps + W - 1);
    f->x = model_falloc(Lt * P * H), f->n1 = model_falloc(Lt * P * H), f->st = model_falloc(Lt * 4 * P);
    f->qkv = model_falloc(Lt * Pe * 3 * H), f->att = model_falloc(Lt * P * f->nh * W), f->ctx = model_falloc(Lt * P * H);
    f->a = model_falloc(Lt * P * H), f->mask_o = model_falloc(Lt * P * H), f->n2 = model_falloc(Lt * P * H);
    f->f1 = model_falloc(Lt * P * F), f->g1 = model_falloc(Lt * P * F), f->f2 = model_falloc(Lt * P * H);
    f->mask_f = model_falloc(Lt * P * H), f->y = model_falloc(P * H), f->hn = model_falloc(P * H), f->stf = model_falloc(2 * P);
    f->dx = model_falloc(P * H), f->dy = model_falloc(P * H), f->dn = model_falloc(P * H), f->dqkv = model_falloc(Pe * 3 * H);
    f->dctx = model_falloc(P * H), f->dg = model_falloc(2 * P * F);
    if (!f->x || !f->n1 || !f->st || !f->qkv || !f->att || !f->ctx || !f->a || !f->mask_o || !f->n2 || !f->f1 || !f->g1 ||
        !f->f2 || !f->mask_f || !f->y || !f->hn || !f->stf || !f->dx || !f->dy || !f->dn || !f->dqkv || !f->dctx || !f->dg) {
        seq_tf_free(f);
        return -1;
    }
    *out = f;
    return 0;
}

void seq_tf_carry(seq_tf *f, int N_next) {
    const int N = f->lastN, T = f->lastT;
    /* the keys and values of the chunk's last W-1 steps become the next chunk's ext steps
     * 0 .. W-2 (for its first N_next rows; forward order: the source is never behind) */
    const size_t row = 3 * (size_t)f->H, Pe = (size_t)f->maxN * (f->maxT + f->W - 1);
    for (int l = 0; l < f->Lt; l++)
        for (int te = 0; te < f->W - 1; te++) {
            const float *src = f->qkv + l * Pe * row + ((size_t)(T + te) * N) * row;
            float *dst = f->qkv + l * Pe * row + ((size_t)te * N_next) * row;
            memmove(dst, src, (size_t)N_next * row * sizeof(float));
        }
}

int seq_tf_forward(seq_ctx *s, const seq_chunk *ch, rng_t *rng, char *err, size_t errlen) {
    seq_tf *f = s->tf;
    const int N = ch->N, T = ch->T, H = f->H, F = f->F, W = f->W, nh = f->nh, D = s->D;
    const size_t P = (size_t)T * N, LP = (size_t)f->maxN * f->maxT, Pe = (size_t)f->maxN * (f->maxT + W - 1);
    const size_t row = 3 * (size_t)H, ld = (size_t)N * row; /* one user's consecutive steps in qkv */
    const double p = s->layer_p;
    f->lastN = N, f->lastT = T;
    memcpy(f->x, s->hs, P * H * sizeof(float));
    for (int l = 0; l < f->Lt; l++) {
        const size_t o = (size_t)l * LP;
        float *x = f->x + o * H, *n1 = f->n1 + o * H, *st = f->st + (size_t)l * 4 * LP, *qkv = f->qkv + l * Pe * row;
        float *att = f->att + o * nh * W, *ctx = f->ctx + o * H, *a = f->a + o * H, *mo = f->mask_o + o * H;
        float *n2 = f->n2 + o * H, *f1 = f->f1 + o * F, *g1 = f->g1 + o * F, *f2 = f->f2 + o * H, *mf = f->mask_f + o * H;
        float *next = l + 1 < f->Lt ? f->x + (o + LP) * H : f->y;
        const float *ln = P_(s, T_TF_LN) + (size_t)4 * l * H;
        layernorm_forward(n1, st, st + LP, x, ln, ln + H, (int)P, H);
        if (seq_lin_fwd(s, qkv + (size_t)(W - 1) * N * row, n1, P_(s, T_TF_QKV_W) + (size_t)l * row * H,
                        P_(s, T_TF_QKV_B) + (size_t)l * row, (long)P, H, 3 * H))
            goto gemm;
        for (size_t q = 0; q < P; q++) {
            const int wl = s->wl[q], t = (int)(q / (size_t)N), b = (int)(q % (size_t)N), te = t + W - 1;
            if (!wl) {
                memset(ctx + q * H, 0, (size_t)H * sizeof(float));
                continue;
            }
            const float *k0 = qkv + ((size_t)(te - wl + 1) * N + b) * row;
            mha_window_forward(ctx + q * H, att + q * nh * W, qkv + ((size_t)te * N + b) * row, k0 + H, (long)ld, k0 + 2 * H,
                               (long)ld, wl, H, nh);
        }
        if (seq_lin_fwd(s, a, ctx, P_(s, T_TF_O_W) + (size_t)l * H * H, P_(s, T_TF_O_B) + (size_t)l * H, (long)P, H, H))
            goto gemm;
        seq_dropout_mask(mo, P * H, p, rng);
        for (size_t i = 0; i < P * H; i++) a[i] = x[i] + a[i] * mo[i];
        layernorm_forward(n2, st + 2 * LP, st + 3 * LP, a, ln + 2 * H, ln + 3 * H, (int)P, H);
        if (seq_lin_fwd(s, f1, n2, P_(s, T_TF_W1) + (size_t)l * F * H, P_(s, T_TF_B1) + (size_t)l * F, (long)P, H, F))
            goto gemm;
        seq_gelu_fwd(s, g1, f1, (long)(P * F));
        if (seq_lin_fwd(s, f2, g1, P_(s, T_TF_W2) + (size_t)l * H * F, P_(s, T_TF_B2) + (size_t)l * H, (long)P, F, H))
            goto gemm;
        seq_dropout_mask(mf, P * H, p, rng);
        for (size_t i = 0; i < P * H; i++) next[i] = a[i] + f2[i] * mf[i];
    }
    layernorm_forward(f->hn, f->stf, f->stf + LP, f->y, P_(s, T_TF_LNF), P_(s, T_TF_LNF) + H, (int)P, H);
    if (seq_lin_fwd(s, s->u, f->hn, P_(s, T_OUT_W), P_(s, T_OUT_B), (long)P, H, D)) goto gemm;
    return 0;
gemm:
    return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
}

int seq_tf_backward(seq_ctx *s, const seq_chunk *ch, float *grad, char *err, size_t errlen) {
    seq_tf *f = s->tf;
    const int N = ch->N, T = ch->T, H = f->H, F = f->F, W = f->W, nh = f->nh, D = s->D;
    const size_t P = (size_t)T * N, LP = (size_t)f->maxN * f->maxT, Pe = (size_t)f->maxN * (f->maxT + W - 1);
    const size_t row = 3 * (size_t)H, ld = (size_t)N * row;
    float *df1 = f->dg, *dg1 = f->dg + P * F;
    /* u = LNf(y) W_out^T + b_out */
    memset(f->dn, 0, P * H * sizeof(float));
    if (seq_lin_bwd(s, f->dn, GRAD(s, grad, T_OUT_W), GRAD(s, grad, T_OUT_B), s->du, f->hn, P_(s, T_OUT_W), (long)P, H, D))
        goto gemm;
    float *dlnf = GRAD(s, grad, T_TF_LNF);
    memset(f->dy, 0, P * H * sizeof(float));
    layernorm_backward(f->dy, dlnf, dlnf + H, f->dn, f->y, f->stf, f->stf + LP, P_(s, T_TF_LNF), (int)P, H);
    for (int l = f->Lt - 1; l >= 0; l--) {
        const size_t o = (size_t)l * LP;
        const float *x = f->x + o * H, *n1 = f->n1 + o * H, *st = f->st + (size_t)l * 4 * LP, *qkv = f->qkv + l * Pe * row;
        const float *att = f->att + o * nh * W, *ctx = f->ctx + o * H, *a = f->a + o * H, *mo = f->mask_o + o * H;
        const float *n2 = f->n2 + o * H, *f1 = f->f1 + o * F, *g1 = f->g1 + o * F, *mf = f->mask_f + o * H;
        const float *ln = P_(s, T_TF_LN) + (size_t)4 * l * H;
        float *dln = GRAD(s, grad, T_TF_LN) + (size_t)4 * l * H;
        /* x_{l+1} = a + f2 * mask_f: dy -> da (the residual) and df2 */
        memcpy(f->dx, f->dy, P * H * sizeof(float)); /* dx accumulates da */
        for (size_t i = 0; i < P * H; i++) f->dn[i] = f->dy[i] * mf[i];
        memset(dg1, 0, P * F * sizeof(float));
        if (seq_lin_bwd(s, dg1, GRAD(s, grad, T_TF_W2) + (size_t)l * H * F, GRAD(s, grad, T_TF_B2) + (size_t)l * H, f->dn,
                        g1, P_(s, T_TF_W2) + (size_t)l * H * F, (long)P, F, H))
            goto gemm;
        memset(df1, 0, P * F * sizeof(float));
        seq_gelu_bwd(s, df1, f1, dg1, (long)(P * F));
        memset(f->dn, 0, P * H * sizeof(float));
        if (seq_lin_bwd(s, f->dn, GRAD(s, grad, T_TF_W1) + (size_t)l * F * H, GRAD(s, grad, T_TF_B1) + (size_t)l * F, df1,
                        n2, P_(s, T_TF_W1) + (size_t)l * F * H, (long)P, H, F))
            goto gemm;
        layernorm_backward(f->dx, dln + 2 * H, dln + 3 * H, f->dn, a, st + 2 * LP, st + 3 * LP, ln + 2 * H, (int)P, H);
        /* a = x + (ctx W_o^T + b_o) * mask_o: dx (now da) -> dx_l (the residual) and do */
        for (size_t i = 0; i < P * H; i++) f->dn[i] = f->dx[i] * mo[i];
        memset(f->dctx, 0, P * H * sizeof(float));
        if (seq_lin_bwd(s, f->dctx, GRAD(s, grad, T_TF_O_W) + (size_t)l * H * H, GRAD(s, grad, T_TF_O_B) + (size_t)l * H,
                        f->dn, ctx, P_(s, T_TF_O_W) + (size_t)l * H * H, (long)P, H, H))
            goto gemm;
        /* the attention: into dqkv over the ext rows (the carried ones' gradients are dropped) */
        memset(f->dqkv, 0, (size_t)(T + W - 1) * N * row * sizeof(float));
        for (size_t q = 0; q < P; q++) {
            const int wl = s->wl[q], t = (int)(q / (size_t)N), b = (int)(q % (size_t)N), te = t + W - 1;
            if (!wl) continue;
            const size_t r0 = ((size_t)(te - wl + 1) * N + b) * row, rq = ((size_t)te * N + b) * row;
            mha_window_backward(f->dqkv + rq, f->dqkv + r0 + H, f->dqkv + r0 + 2 * H, f->dctx + q * H, att + q * nh * W,
                                qkv + rq, qkv + r0 + H, (long)ld, qkv + r0 + 2 * H, (long)ld, wl, H, nh);
        }
        memset(f->dn, 0, P * H * sizeof(float));
        if (seq_lin_bwd(s, f->dn, GRAD(s, grad, T_TF_QKV_W) + (size_t)l * row * H, GRAD(s, grad, T_TF_QKV_B) + (size_t)l * row,
                        f->dqkv + (size_t)(W - 1) * N * row, n1, P_(s, T_TF_QKV_W) + (size_t)l * row * H, (long)P, H, 3 * H))
            goto gemm;
        layernorm_backward(f->dx, dln, dln + H, f->dn, x, st, st + LP, ln, (int)P, H);
        memcpy(f->dy, f->dx, P * H * sizeof(float)); /* dL/dx_l: the previous block's output */
    }
    memcpy(s->dhs, f->dy, P * H * sizeof(float)); /* dL/d(the recurrent output) */
    return 0;
gemm:
    return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
}
