/* oracle_train: the C side of tests/oracle/test_train_oracle.py. It runs the trainer's loss and
 * gradients (and each backward kernel of nn_ref) on inputs the Python side also sees, and dumps
 * the results for torch autograd to recompute.
 *
 *   oracle_train kernels OUT SEED
 *       random inputs for linear, lstm_cell, gru_cell, window_attention; writes each kernel's
 *       inputs, a cotangent, its forward output and every backward gradient to OUT.
 *   oracle_train grad MODEL_OUT EVENTS CELL E A H K D W N_ITEMS N_ACTIONS SEED BPTT BACKEND MASK LOSS_OUT
 *       builds a model with both heads (CELL lstm, gru or lru:L:N:F; items "m1".., actions "act1..";
 *       LayerNorm gains and shifts off 1 and 0), saves it, reads EVENTS
 *       ("users U", then per user "user N" and N lines "ITEM ACTION TS HAS_VALUE VALUE"), runs
 *       train_batch_loss_grad over every user (each input predicts the next event; no dropout)
 *       with the given BPTT, backend (scalar|dnnl) and mask_seen (0|1), and writes the loss and
 *       the gradient.
 *   OUT format: records "name\n" u32 count, count float32 (loss: one float64 as two floats).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_init.h"
#include "nn_ref.h"
#include "rng.h"
#include "train.h"

static void put(FILE *f, const char *name, const float *x, unsigned n) {
    fprintf(f, "%s\n", name);
    fwrite(&n, 4, 1, f);
    fwrite(x, sizeof(float), n, f);
}

static float *rnd(rng_t *r, int n, double s) {
    float *p = malloc((size_t)n * sizeof *p);
    for (int i = 0; i < n; i++) p[i] = (float)(s * (2 * rng_uniform(r) - 1));
    return p;
}

static int cmd_kernels(const char *out, uint64_t seed) {
    FILE *f = fopen(out, "wb");
    if (!f) return 1;
    rng_t r;
    rng_seed(&r, seed);
    const int B = 3, I = 7, H = 5, K = 6, n = 4, OC = 4;
    /* linear */
    {
        float *x = rnd(&r, B * I, 1), *w = rnd(&r, OC * I, 0.5), *b = rnd(&r, OC, 0.5), *g = rnd(&r, B * OC, 1);
        float y[64], dx[64] = {0}, dw[64] = {0}, db[8] = {0};
        linear_forward(y, x, w, b, B, I, OC);
        linear_backward(dx, dw, db, g, x, w, B, I, OC);
        put(f, "linear.x", x, B * I), put(f, "linear.w", w, OC * I), put(f, "linear.b", b, OC), put(f, "linear.g", g, B * OC);
        put(f, "linear.y", y, B * OC), put(f, "linear.dx", dx, B * I), put(f, "linear.dw", dw, OC * I), put(f, "linear.db", db, OC);
        free(x), free(w), free(b), free(g);
    }
    /* lstm cell, with gradients arriving at both h_out and c_out */
    {
        float *x = rnd(&r, B * I, 1), *h = rnd(&r, B * H, 0.8), *c = rnd(&r, B * H, 0.8);
        float *wi = rnd(&r, 4 * H * I, 0.5), *wh = rnd(&r, 4 * H * H, 0.5), *bi = rnd(&r, 4 * H, 0.3), *bh = rnd(&r, 4 * H, 0.3);
        float *gh = rnd(&r, B * H, 1), *gc = rnd(&r, B * H, 1);
        float ho[64], co[64], gates[256], dx[64] = {0}, dh[64] = {0}, dc[64] = {0}, dwi[512] = {0}, dwh[512] = {0},
              dbi[64] = {0}, dbh[64] = {0};
        lstm_cell_forward(ho, co, gates, x, h, c, wi, wh, bi, bh, B, I, H);
        lstm_cell_backward(dx, dh, dc, dwi, dwh, dbi, dbh, gh, gc, gates, x, h, c, wi, wh, B, I, H);
        put(f, "lstm.x", x, B * I), put(f, "lstm.h", h, B * H), put(f, "lstm.c", c, B * H), put(f, "lstm.w_ih", wi, 4 * H * I);
        put(f, "lstm.w_hh", wh, 4 * H * H), put(f, "lstm.b_ih", bi, 4 * H), put(f, "lstm.b_hh", bh, 4 * H);
        put(f, "lstm.gh", gh, B * H), put(f, "lstm.gc", gc, B * H), put(f, "lstm.h_out", ho, B * H), put(f, "lstm.c_out", co, B * H);
        put(f, "lstm.dx", dx, B * I), put(f, "lstm.dh", dh, B * H), put(f, "lstm.dc", dc, B * H);
        put(f, "lstm.dw_ih", dwi, 4 * H * I), put(f, "lstm.dw_hh", dwh, 4 * H * H), put(f, "lstm.db_ih", dbi, 4 * H);
        put(f, "lstm.db_hh", dbh, 4 * H);
        free(x), free(h), free(c), free(wi), free(wh), free(bi), free(bh), free(gh), free(gc);
    }
    /* gru cell */
    {
        float *x = rnd(&r, B * I, 1), *h = rnd(&r, B * H, 0.8);
        float *wi = rnd(&r, 3 * H * I, 0.5), *wh = rnd(&r, 3 * H * H, 0.5), *bi = rnd(&r, 3 * H, 0.3), *bh = rnd(&r, 3 * H, 0.3);
        float *g = rnd(&r, B * H, 1);
        float ho[64], gx[256], ghh[256], act[256], dx[64] = {0}, dh[64] = {0}, dwi[512] = {0}, dwh[512] = {0},
              dbi[64] = {0}, dbh[64] = {0};
        gru_cell_forward(ho, gx, ghh, act, x, h, wi, wh, bi, bh, B, I, H);
        gru_cell_backward(dx, dh, dwi, dwh, dbi, dbh, g, ghh, act, x, h, wi, wh, B, I, H);
        put(f, "gru.x", x, B * I), put(f, "gru.h", h, B * H), put(f, "gru.w_ih", wi, 3 * H * I), put(f, "gru.w_hh", wh, 3 * H * H);
        put(f, "gru.b_ih", bi, 3 * H), put(f, "gru.b_hh", bh, 3 * H), put(f, "gru.g", g, B * H), put(f, "gru.h_out", ho, B * H);
        put(f, "gru.dx", dx, B * I), put(f, "gru.dh", dh, B * H), put(f, "gru.dw_ih", dwi, 3 * H * I);
        put(f, "gru.dw_hh", dwh, 3 * H * H), put(f, "gru.db_ih", dbi, 3 * H), put(f, "gru.db_hh", dbh, 3 * H);
        free(x), free(h), free(wi), free(wh), free(bi), free(bh), free(g);
    }
    /* window attention */
    {
        float *h = rnd(&r, H, 1), *xs = rnd(&r, n * I, 1), *wq = rnd(&r, K * H, 0.6), *bq = rnd(&r, K, 0.3);
        float *wk = rnd(&r, K * I, 0.6), *bk = rnd(&r, K, 0.3), *wv = rnd(&r, K * I, 0.6), *bv = rnd(&r, K, 0.3);
        float *g = rnd(&r, K, 1);
        float ctx[16], a[8], q[16], k[64], v[64], dh[16] = {0}, dxs[64] = {0}, dwq[64] = {0}, dbq[16] = {0}, dwk[64] = {0},
              dbk[16] = {0}, dwv[64] = {0}, dbv[16] = {0};
        window_attention_forward(ctx, a, q, k, v, h, xs, n, wq, bq, wk, bk, wv, bv, H, I, K);
        window_attention_backward(dh, dxs, dwq, dbq, dwk, dbk, dwv, dbv, g, a, q, k, v, h, xs, n, wq, wk, wv, H, I, K);
        put(f, "att.h", h, H), put(f, "att.xs", xs, n * I), put(f, "att.w_q", wq, K * H), put(f, "att.b_q", bq, K);
        put(f, "att.w_k", wk, K * I), put(f, "att.b_k", bk, K), put(f, "att.w_v", wv, K * I), put(f, "att.b_v", bv, K);
        put(f, "att.g", g, K), put(f, "att.ctx", ctx, K), put(f, "att.dh", dh, H), put(f, "att.dxs", dxs, n * I);
        put(f, "att.dw_q", dwq, K * H), put(f, "att.db_q", dbq, K), put(f, "att.dw_k", dwk, K * I), put(f, "att.db_k", dbk, K);
        put(f, "att.dw_v", dwv, K * I), put(f, "att.db_v", dbv, K);
        free(h), free(xs), free(wq), free(bq), free(wk), free(bk), free(wv), free(bv), free(g);
    }
    /* layernorm (with a second row shifted and scaled, so mean and variance matter) */
    {
        const int C = 6;
        float *x = rnd(&r, B * C, 2), *w = rnd(&r, C, 1), *b = rnd(&r, C, 0.5), *g = rnd(&r, B * C, 1);
        for (int i = 0; i < C; i++) x[C + i] = 3.0f + 0.1f * x[C + i];
        float y[64], mean[8], rstd[8], dx[64] = {0}, dw[16] = {0}, db[16] = {0};
        layernorm_forward(y, mean, rstd, x, w, b, B, C);
        layernorm_backward(dx, dw, db, g, x, mean, rstd, w, B, C);
        put(f, "ln.x", x, B * C), put(f, "ln.w", w, C), put(f, "ln.b", b, C), put(f, "ln.g", g, B * C);
        put(f, "ln.y", y, B * C), put(f, "ln.dx", dx, B * C), put(f, "ln.dw", dw, C), put(f, "ln.db", db, C);
        free(x), free(w), free(b), free(g);
    }
    /* gelu over a wide range */
    {
        const int n = 24;
        float *x = rnd(&r, n, 4), *g = rnd(&r, n, 1), y[32], dx[32] = {0};
        gelu_forward(y, x, n);
        gelu_backward(dx, x, g, n);
        put(f, "gelu.x", x, n), put(f, "gelu.g", g, n), put(f, "gelu.y", y, n), put(f, "gelu.dx", dx, n);
        free(x), free(g);
    }
    /* the LRU recurrence: eigenvalues from their logs, then T steps over B rows from h0 */
    {
        const int N = 4, T = 5;
        float nu[4], th[4], gl[4];
        for (int k = 0; k < N; k++) { /* |lambda| in 0.6..0.95, phases across the circle, as init draws them */
            double mod = 0.6 + 0.35 * rng_uniform(&r);
            nu[k] = (float)log(-log(mod));
            th[k] = (float)log(0.1 + 6.0 * rng_uniform(&r));
            gl[k] = (float)log(sqrt(1 - mod * mod));
        }
        float *u = rnd(&r, T * B * 2 * N, 1), *h0 = rnd(&r, B * 2 * N, 1), *g = rnd(&r, T * B * 2 * N, 1);
        float lre[4], lim[4], gam[4], hs[512], du[512] = {0}, dh0[64] = {0}, dlre[4] = {0}, dlim[4] = {0}, dgam[4] = {0};
        float dnu[4] = {0}, dth[4] = {0}, dgl[4] = {0};
        lru_lambda_forward(lre, lim, gam, nu, th, gl, N);
        lru_scan_forward(hs, u, h0, lre, lim, gam, T, B, N);
        lru_scan_backward(du, dh0, dlre, dlim, dgam, g, hs, u, h0, lre, lim, gam, T, B, N);
        lru_lambda_backward(dnu, dth, dgl, dlre, dlim, dgam, lre, lim, gam, th, nu, N);
        put(f, "lru.nu", nu, N), put(f, "lru.theta", th, N), put(f, "lru.gamma_log", gl, N);
        put(f, "lru.u", u, T * B * 2 * N), put(f, "lru.h0", h0, B * 2 * N), put(f, "lru.g", g, T * B * 2 * N);
        put(f, "lru.hs", hs, T * B * 2 * N), put(f, "lru.du", du, T * B * 2 * N), put(f, "lru.dh0", dh0, B * 2 * N);
        put(f, "lru.dnu", dnu, N), put(f, "lru.dtheta", dth, N), put(f, "lru.dgamma_log", dgl, N);
        free(u), free(h0), free(g);
    }
    /* the transformer's window attention: 3 heads of 2, 5 entries, K and V interleaved as the state
     * keeps them (row stride 2H) */
    {
        const int Hm = 6, nh = 3, nw = 5;
        float *q = rnd(&r, Hm, 1), *kv = rnd(&r, nw * 2 * Hm, 1), *g = rnd(&r, Hm, 1);
        float out[8], att[16], dq[8] = {0}, dkv[64] = {0};
        mha_window_forward(out, att, q, kv, 2 * Hm, kv + Hm, 2 * Hm, nw, Hm, nh);
        mha_window_backward(dq, dkv, dkv + Hm, g, att, q, kv, 2 * Hm, kv + Hm, 2 * Hm, nw, Hm, nh);
        put(f, "mha.q", q, Hm), put(f, "mha.kv", kv, nw * 2 * Hm), put(f, "mha.g", g, Hm), put(f, "mha.out", out, Hm);
        put(f, "mha.dq", dq, Hm), put(f, "mha.dkv", dkv, nw * 2 * Hm);
        free(q), free(kv), free(g);
    }
    return fclose(f) ? 1 : 0;
}

static int cmd_grad(char **a) {
    char err[MODEL_ERR_LEN];
    model_config cfg;
    model_config_default(&cfg);
    const char *keys[] = {"cell", "item_dim", "action_dim", "hidden", "attn_dim", "out_dim", "window"};
    /* CELL: lstm, gru, none or lru:L:N:F (an LRU stack of L layers, complex state N, feed-forward
     * F), optionally +tf:B:NH:F (B transformer blocks of NH heads, feed-forward F) */
    sscanf(a[2], "lru:%d:%d:%d", &cfg.layers, &cfg.state_dim, &cfg.ffn_dim);
    char cell[16];
    snprintf(cell, sizeof cell, "%.*s", (int)strcspn(a[2], ":+"), a[2]);
    const char *tf = strstr(a[2], "+tf:");
    if (tf && sscanf(tf, "+tf:%d:%d:%d", &cfg.blocks, &cfg.heads, &cfg.ffn_dim) == 3) cfg.attn = MODEL_ATTN_TF;
    for (int i = 0; i < 7; i++)
        if (model_config_set(&cfg, keys[i], i == 0 ? cell : a[2 + i], err, sizeof err))
            return fprintf(stderr, "%s\n", err), 2;
    int ni = atoi(a[9]), na = atoi(a[10]), bptt = atoi(a[12]);
    uint64_t seed = strtoull(a[11], NULL, 10);
    char **items = malloc((size_t)ni * sizeof *items), **acts = malloc((size_t)na * sizeof *acts);
    for (int i = 0; i < ni; i++) items[i] = malloc(24), snprintf(items[i], 24, "m%d", i + 1);
    for (int i = 0; i < na; i++) acts[i] = malloc(24), snprintf(acts[i], 24, "act%d", i + 1);
    model *m = NULL;
    int rc = 1;
    if (model_init_random(&m, &cfg, "oracle", (const char *const *)items, ni, (const char *const *)acts, na, seed, err,
                          sizeof err) ||
        model_add_heads(m, MODEL_HEAD_SCORE | MODEL_HEAD_VALUE, seed, err, sizeof err)) {
        fprintf(stderr, "oracle_train: %s\n", err);
        goto out;
    }
    m->t[T_VALUE_B].data[0] = 0.7f; /* non-zero value-head parameters: every gradient path starts somewhere generic */
    for (size_t i = 0; i < m->t[T_VALUE_W].numel; i++) m->t[T_VALUE_W].data[i] = 0.03f * (float)((int)(i % 5) - 2);
    for (size_t i = 0; i < m->t[T_VALUE_EMB].numel; i++) m->t[T_VALUE_EMB].data[i] = 0.02f * (float)((int)(i % 9) - 4);
    for (size_t i = 0; i < m->t[T_SCORE_BIAS].numel; i++) m->t[T_SCORE_BIAS].data[i] = 0.05f * (float)(i % 7);
    for (size_t i = 0; i < m->t[T_VALUE_BIAS].numel; i++) m->t[T_VALUE_BIAS].data[i] = 0.04f * (float)((int)(i % 5) - 2);
    const int lns[] = {T_LRU_LN, T_TF_LN, T_TF_LNF};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < m->t[lns[k]].numel; i++) m->t[lns[k]].data[i] += 0.1f * (float)((int)(i * 13 % 9) - 4);
    if (model_add_heads(m, 0, 0, err, sizeof err) || model_save(m, a[0], err, sizeof err)) {
        fprintf(stderr, "oracle_train: %s\n", err);
        goto out;
    }
    FILE *in = fopen(a[1], "r");
    int users = 0;
    if (!in || fscanf(in, " users %d", &users) != 1 || users < 1) {
        fprintf(stderr, "oracle_train: bad events file\n");
        goto out;
    }
    int64_t *start = calloc((size_t)users + 1, sizeof *start);
    model_event *ev = NULL;
    size_t nev = 0, cap = 0;
    int *us = malloc((size_t)users * sizeof *us), *len = malloc((size_t)users * sizeof *len);
    for (int u = 0; u < users; u++) {
        int n;
        if (fscanf(in, " user %d", &n) != 1) {
            fprintf(stderr, "oracle_train: bad user line\n");
            goto out;
        }
        for (int k = 0; k < n; k++) {
            char item[64], action[64];
            long long ts;
            int hv;
            float value;
            if (fscanf(in, " %63s %63s %lld %d %f", item, action, &ts, &hv, &value) != 5) {
                fprintf(stderr, "oracle_train: bad event line\n");
                goto out;
            }
            if (nev == cap) ev = realloc(ev, (cap = cap ? 2 * cap : 256) * sizeof *ev);
            ev[nev++] = (model_event){model_item_index(m, item, strlen(item)), model_action_index(m, action, strlen(action)),
                                      ts, value, hv};
        }
        start[u + 1] = (int64_t)nev;
        us[u] = u, len[u] = n - 1;
    }
    fclose(in);
    train_data d = {users, start, ev};
    train_config c;
    train_config_default(&c);
    c.dropout = 0, c.layer_dropout = 0, c.bptt = bptt, c.backend = strcmp(a[13], "dnnl") == 0 ? MODEL_BACKEND_DNNL : MODEL_BACKEND_SCALAR;
    c.mask_seen = atoi(a[14]);
    float *g = calloc(m->n_params, sizeof *g);
    double loss;
    model_runtime_init(1);
    if (train_batch_loss_grad(m, &d, &c, us, len, users, g, &loss, err, sizeof err)) {
        fprintf(stderr, "oracle_train: %s\n", err);
        goto out;
    }
    FILE *f = fopen(a[15], "wb");
    float l2[2];
    memcpy(l2, &loss, 8);
    put(f, "loss", l2, 2);
    for (int t = 0; t < MODEL_N_TENSORS; t++)
        if (m->t[t].numel) put(f, m->t[t].name, g + (m->t[t].data - m->params), (unsigned)m->t[t].numel);
    rc = fclose(f) ? 1 : 0;
    free(g), free(start), free(ev), free(us), free(len);
out:
    for (int i = 0; i < ni; i++) free(items[i]);
    for (int i = 0; i < na; i++) free(acts[i]);
    free(items), free(acts);
    model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "kernels")) return cmd_kernels(argv[2], strtoull(argv[3], NULL, 10));
    if (argc == 18 && !strcmp(argv[1], "grad")) return cmd_grad(argv + 2);
    fprintf(stderr, "usage: oracle_train kernels OUT SEED\n"
                    "       oracle_train grad MODEL_OUT EVENTS CELL E A H K D W N_ITEMS N_ACTIONS SEED BPTT BACKEND MASK "
                    "LOSS_OUT\n");
    return 2;
}
