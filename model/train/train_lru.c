/* train_lru: the LRU stack (model.h) over one chunk, forward and backward side by side: what
 * train_seq.c runs in place of the LSTM/GRU when the model's cell is lru. Shapes: P = T*N
 * positions, time-major (p = t*N + b, train_internal.h), H the width, N2 = 2*Ns the complex state
 * as [re ; im], F the feed-forward width, L layers; every per-layer buffer is (L, P, .).
 *
 *   z_0 = x W_in^T + b_in                                  x (P,I) the chunk's inputs
 *   per layer l, from z_l (P,H):
 *     ub  = z_l B_l^T + b_B                 (P,N2)
 *     hs  = scan(ub) from the carried state (P,N2)     h_t = lambda h_{t-1} + gamma ub_t
 *     y   = hs C_l^T + b_C                  (P,H)
 *     pre1 = z_l + y * mask_y,  z1 = LN1(pre1)
 *     a1  = z1 W1^T + b1 (P,F),  g1 = gelu(a1),  f2 = g1 W2^T + b2 (P,H)
 *     pre2 = z1 + f2 * mask_f,  z_{l+1} = LN2(pre2)
 *   the last layer's z is the stack's output hs (T,N,H) of train_seq.c
 *
 * Dropout (the trainer's layer_dropout, s->layer_p) sits on the two residual branches, as in
 * LRURec. The
 * linear layers run on the chunk's backend (train_linear.c); LayerNorm and the scan are nn_ref's
 * kernels on both (checked against torch by test_train_oracle), the GELU nn_ref's (scalar) or a
 * float one within 2e-7 of it (dnnl).
 * The recurrent state crosses chunks detached, as the RNN's does: h0 in, hT out.
 */
#include <stdlib.h>

#include "nn_ref.h"
#include "train_internal.h"

#define P_(s, k) ((s)->m->t[k].data)

void seq_lru_free(seq_lru *q) {
    if (!q) return;
    float *f[] = {q->lre, q->lim, q->gam, q->dlre, q->dlim, q->dgam, q->h0, q->hT, q->zin, q->ub, q->hs, q->y,
                  q->mask_y, q->pre1, q->z1, q->f2, q->mask_f, q->pre2, q->a1, q->g1, q->st, q->dz, q->dz1, q->dp,
                  q->dg, q->da, q->dh, q->du};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
    free(q);
}

int seq_lru_new(seq_lru **out, const model *m, int max_rows, int max_steps) {
    const model_config *c = &m->cfg;
    seq_lru *q = calloc(1, sizeof *q);
    *out = NULL;
    if (!q) return -1;
    q->L = c->cell == MODEL_CELL_LRU ? c->layers : 0; /* cell none: the input projection alone */
    q->Ns = c->state_dim, q->F = c->ffn_dim, q->H = c->hidden, q->I = model_input_dim(c);
    q->maxN = max_rows;
    const size_t L = (size_t)q->L, N2 = 2 * (size_t)q->Ns, H = (size_t)q->H, F = (size_t)q->F;
    const size_t P = (size_t)max_rows * max_steps, Ns = (size_t)q->Ns;
    q->lre = model_falloc(L * Ns), q->lim = model_falloc(L * Ns), q->gam = model_falloc(L * Ns);
    q->dlre = model_falloc(L * Ns), q->dlim = model_falloc(L * Ns), q->dgam = model_falloc(L * Ns);
    q->h0 = model_falloc(L * max_rows * N2), q->hT = model_falloc(L * max_rows * N2);
    q->zin = model_falloc(L * P * H), q->ub = model_falloc(L * P * N2), q->hs = model_falloc(L * P * N2);
    q->y = model_falloc(L * P * H), q->mask_y = model_falloc(L * P * H), q->pre1 = model_falloc(L * P * H);
    q->z1 = model_falloc(L * P * H), q->f2 = model_falloc(L * P * H), q->mask_f = model_falloc(L * P * H);
    q->pre2 = model_falloc(L * P * H), q->a1 = model_falloc(L * P * F), q->g1 = model_falloc(L * P * F);
    q->st = model_falloc(L * 4 * P);
    q->dz = model_falloc(P * H), q->dz1 = model_falloc(P * H), q->dp = model_falloc(P * H), q->dg = model_falloc(P * F);
    q->da = model_falloc(P * F);
    q->dh = model_falloc(P * N2), q->du = model_falloc(P * N2);
    int ok = q->lre && q->lim && q->gam && q->dlre && q->dlim && q->dgam && q->h0 && q->hT && q->zin && q->ub && q->hs &&
             q->y && q->mask_y && q->pre1 && q->z1 && q->f2 && q->mask_f && q->pre2 && q->a1 && q->g1 && q->st &&
             q->dz && q->dz1 && q->dp && q->dg && q->da && q->dh && q->du;
    if (!ok) {
        seq_lru_free(q);
        return -1;
    }
    *out = q;
    return 0;
}

void seq_lru_reset(seq_lru *q) { memset(q->h0, 0, (size_t)q->L * q->maxN * 2 * q->Ns * sizeof(float)); }

void seq_lru_carry(seq_lru *q, int N_next) {
    const size_t row = 2 * (size_t)q->Ns;
    for (int l = 0; l < q->L; l++)
        memcpy(q->h0 + (size_t)l * q->maxN * row, q->hT + (size_t)l * q->maxN * row, (size_t)N_next * row * sizeof(float));
}

int seq_lru_forward(seq_ctx *s, const seq_chunk *ch, rng_t *rng, char *err, size_t errlen) {
    const double dropout = s->layer_p;
    seq_lru *q = s->lru;
    const int N = ch->N, T = ch->T, H = q->H, Ns = q->Ns, N2 = 2 * Ns, F = q->F, I = q->I;
    const size_t P = (size_t)T * N, LP = (size_t)q->maxN * (s->maxT), row = (size_t)N2;
    q->mask_valid = dropout > 0;
    for (int l = 0; l < q->L; l++) {
        const float *lg = P_(s, T_LRU_LOG) + (size_t)3 * l * Ns;
        lru_lambda_forward(q->lre + (size_t)l * Ns, q->lim + (size_t)l * Ns, q->gam + (size_t)l * Ns, lg, lg + Ns,
                           lg + 2 * Ns, Ns);
    }
    /* cell none: no layers, the input projection is the output */
    if (seq_lin_fwd(s, q->L ? q->zin : s->hs, s->xrnn, P_(s, T_LRU_IN_W), P_(s, T_LRU_IN_B), (long)P, I, H)) goto gemm;
    for (int l = 0; l < q->L; l++) {
        const size_t o = (size_t)l * LP;
        float *z = q->zin + o * H, *ub = q->ub + o * row, *hs = q->hs + o * row, *y = q->y + o * H;
        float *pre1 = q->pre1 + o * H, *z1 = q->z1 + o * H, *a1 = q->a1 + o * F, *g1 = q->g1 + o * F;
        float *f2 = q->f2 + o * H, *pre2 = q->pre2 + o * H, *st = q->st + (size_t)l * 4 * LP;
        float *my = q->mask_y + o * H, *mf = q->mask_f + o * H;
        const float *ln = P_(s, T_LRU_LN) + (size_t)4 * l * H;
        float *out = l == q->L - 1 ? s->hs : q->zin + (o + LP) * H;
        if (seq_lin_fwd(s, ub, z, P_(s, T_LRU_BW) + (size_t)l * N2 * H, P_(s, T_LRU_BB) + (size_t)l * N2, (long)P, H, N2))
            goto gemm;
        lru_scan_forward(hs, ub, q->h0 + (size_t)l * q->maxN * row, q->lre + (size_t)l * Ns, q->lim + (size_t)l * Ns,
                         q->gam + (size_t)l * Ns, T, N, Ns);
        memcpy(q->hT + (size_t)l * q->maxN * row, hs + (size_t)(T - 1) * N * row, (size_t)N * row * sizeof(float));
        if (seq_lin_fwd(s, y, hs, P_(s, T_LRU_CW) + (size_t)l * H * N2, P_(s, T_LRU_CB) + (size_t)l * H, (long)P, N2, H))
            goto gemm;
        seq_dropout_mask(my, P * H, dropout, rng);
        for (size_t i = 0; i < P * H; i++) pre1[i] = z[i] + y[i] * my[i];
        layernorm_forward(z1, st, st + LP, pre1, ln, ln + H, (int)P, H);
        if (seq_lin_fwd(s, a1, z1, P_(s, T_LRU_W1) + (size_t)l * F * H, P_(s, T_LRU_B1) + (size_t)l * F, (long)P, H, F))
            goto gemm;
        seq_gelu_fwd(s, g1, a1, (long)(P * F));
        if (seq_lin_fwd(s, f2, g1, P_(s, T_LRU_W2) + (size_t)l * H * F, P_(s, T_LRU_B2) + (size_t)l * H, (long)P, F, H))
            goto gemm;
        seq_dropout_mask(mf, P * H, dropout, rng);
        for (size_t i = 0; i < P * H; i++) pre2[i] = z1[i] + f2[i] * mf[i];
        layernorm_forward(out, st + 2 * LP, st + 3 * LP, pre2, ln + 2 * H, ln + 3 * H, (int)P, H);
    }
    return 0;
gemm:
    return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
}

int seq_lru_backward(seq_ctx *s, const seq_chunk *ch, float *grad, char *err, size_t errlen) {
    seq_lru *q = s->lru;
    const int N = ch->N, T = ch->T, H = q->H, Ns = q->Ns, N2 = 2 * Ns, F = q->F, I = q->I;
    const size_t P = (size_t)T * N, LP = (size_t)q->maxN * (s->maxT), row = (size_t)N2;
    memcpy(q->dz, s->dhs, P * H * sizeof(float)); /* dL/d(the stack's output) */
    memset(q->dlre, 0, (size_t)q->L * Ns * sizeof(float));
    memset(q->dlim, 0, (size_t)q->L * Ns * sizeof(float));
    memset(q->dgam, 0, (size_t)q->L * Ns * sizeof(float));
    for (int l = q->L - 1; l >= 0; l--) {
        const size_t o = (size_t)l * LP;
        const float *z = q->zin + o * H, *ub = q->ub + o * row, *hs = q->hs + o * row;
        const float *pre1 = q->pre1 + o * H, *z1 = q->z1 + o * H, *a1 = q->a1 + o * F, *g1 = q->g1 + o * F;
        const float *pre2 = q->pre2 + o * H, *st = q->st + (size_t)l * 4 * LP;
        const float *my = q->mask_y + o * H, *mf = q->mask_f + o * H;
        const float *ln = P_(s, T_LRU_LN) + (size_t)4 * l * H;
        float *dln = GRAD(s, grad, T_LRU_LN) + (size_t)4 * l * H;
        /* z_{l+1} = LN2(pre2), pre2 = z1 + f2 * mask_f */
        memset(q->dp, 0, P * H * sizeof(float));
        layernorm_backward(q->dp, dln + 2 * H, dln + 3 * H, q->dz, pre2, st + 2 * LP, st + 3 * LP, ln + 2 * H, (int)P, H);
        memcpy(q->dz1, q->dp, P * H * sizeof(float));
        for (size_t i = 0; i < P * H; i++) q->dp[i] *= mf[i]; /* df2 */
        /* f2 = g1 W2^T + b2, g1 = gelu(a1), a1 = z1 W1^T + b1 */
        memset(q->dg, 0, P * F * sizeof(float));
        if (seq_lin_bwd(s, q->dg, GRAD(s, grad, T_LRU_W2) + (size_t)l * H * F, GRAD(s, grad, T_LRU_B2) + (size_t)l * H,
                        q->dp, g1, P_(s, T_LRU_W2) + (size_t)l * H * F, (long)P, F, H))
            goto gemm;
        memset(q->da, 0, P * F * sizeof(float));
        seq_gelu_bwd(s, q->da, a1, q->dg, (long)(P * F));
        if (seq_lin_bwd(s, q->dz1, GRAD(s, grad, T_LRU_W1) + (size_t)l * F * H, GRAD(s, grad, T_LRU_B1) + (size_t)l * F,
                        q->da, z1, P_(s, T_LRU_W1) + (size_t)l * F * H, (long)P, H, F))
            goto gemm;
        /* z1 = LN1(pre1), pre1 = z_l + y * mask_y */
        memset(q->dz, 0, P * H * sizeof(float));
        layernorm_backward(q->dz, dln, dln + H, q->dz1, pre1, st, st + LP, ln, (int)P, H); /* dz = d pre1 (the residual) */
        for (size_t i = 0; i < P * H; i++) q->dp[i] = q->dz[i] * my[i]; /* dy */
        /* y = hs C^T + b_C */
        memset(q->dh, 0, P * row * sizeof(float));
        if (seq_lin_bwd(s, q->dh, GRAD(s, grad, T_LRU_CW) + (size_t)l * H * N2, GRAD(s, grad, T_LRU_CB) + (size_t)l * H,
                        q->dp, hs, P_(s, T_LRU_CW) + (size_t)l * H * N2, (long)P, N2, H))
            goto gemm;
        /* the scan (the carried state is detached: no dh0) */
        memset(q->du, 0, P * row * sizeof(float));
        lru_scan_backward(q->du, NULL, q->dlre + (size_t)l * Ns, q->dlim + (size_t)l * Ns, q->dgam + (size_t)l * Ns, q->dh,
                          hs, ub, q->h0 + (size_t)l * q->maxN * row, q->lre + (size_t)l * Ns, q->lim + (size_t)l * Ns,
                          q->gam + (size_t)l * Ns, T, N, Ns);
        const float *lg = P_(s, T_LRU_LOG) + (size_t)3 * l * Ns;
        float *dlg = GRAD(s, grad, T_LRU_LOG) + (size_t)3 * l * Ns;
        lru_lambda_backward(dlg, dlg + Ns, dlg + 2 * Ns, q->dlre + (size_t)l * Ns, q->dlim + (size_t)l * Ns,
                            q->dgam + (size_t)l * Ns, q->lre + (size_t)l * Ns, q->lim + (size_t)l * Ns,
                            q->gam + (size_t)l * Ns, lg + Ns, lg, Ns);
        /* ub = z_l B^T + b_B: dz (already d pre1) += du B */
        if (seq_lin_bwd(s, q->dz, GRAD(s, grad, T_LRU_BW) + (size_t)l * N2 * H, GRAD(s, grad, T_LRU_BB) + (size_t)l * N2,
                        q->du, z, P_(s, T_LRU_BW) + (size_t)l * N2 * H, (long)P, H, N2))
            goto gemm;
    }
    /* z_0 = x W_in^T + b_in */
    memset(s->dx_rnn, 0, P * I * sizeof(float));
    if (seq_lin_bwd(s, s->dx_rnn, GRAD(s, grad, T_LRU_IN_W), GRAD(s, grad, T_LRU_IN_B), q->dz, s->xrnn, P_(s, T_LRU_IN_W),
                    (long)P, I, H)) /* (with no layers q->dz is still dL/d(the output)) */
        goto gemm;
    return 0;
gemm:
    return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
}
