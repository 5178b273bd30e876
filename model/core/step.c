/* step: the runner and model_step, the per-event function of model.h for a batch of users.
 *
 * Both backends share the bookkeeping: validate every row before touching any state, gather
 * x_t = [item_emb ; action_emb ; f] and the previous h (c) into row-major batch buffers, compute,
 * then compute the drift and write each state back. A failure therefore leaves every state as
 * it was.
 *
 * scalar: nn_ref kernels as written in model.h (k_j, v_j computed for every window entry).
 * dnnl:   oneDNN RNN + two matmuls, with the attention folded algebraically so that nothing per
 *         window entry is bigger than a dot product:
 *           q.k_j / sqrt(K) = x_j . q' + const,  q' = (W_k^T (W_q h + b_q)) / sqrt(K)   (const
 *           in j drops out of the softmax), so q' = h @ Wqk^T + bqk with Wqk (I,H) precomputed;
 *           ctx = W_v xbar + b_v with xbar = sum_j a_j x_j (the a_j sum to 1), so
 *           u = W_out [h ; ctx] + b_out = Wf [h ; xbar] + bf with Wf (D, H+I) precomputed.
 *         x_j . q' and xbar are assembled from the embedding rows named by the window slots, so the
 *         window is never materialised. Attention and output then cost H*I + 2*W*I + D*(H+I)
 *         multiply-adds per event instead of K*H + 2*W*K*I + 2*W*K + D*(H+K) (E=64 A=8 H=K=D=64
 *         W=16: 16 k instead of 168 k). The folded weights are rounded once to float; the
 *         tests hold the two backends to 1e-5 of each other and of torch.
 *
 * The LRU stack (model.h) replaces the RNN by the same structure for both backends: per layer
 * the input projection to the complex state, the diagonal recurrence (a few multiply-adds per
 * state element, plain C), the output projection onto the residual, LayerNorm, the feed-forward
 * block onto the residual, LayerNorm. scalar: nn_ref's kernels as written. dnnl: matmul
 * primitives with the GELU and the residual sums fused as post-ops, oneDNN's layer
 * normalisation, and the recurrence in float. Its output h_t feeds the same attention.
 *
 * Text (model.h): an item's content is item_emb[item] + a(t_item), with t_item from the runner's
 * lookup (by item key) for the current event and for every window entry; the event's own text
 * adds a(t_event) to the RNN input only. scalar: a(t) with the double reference every time.
 * dnnl: a(t) = W t - W b (text_adapt_fast), cached per item key and text pointer in a
 * direct-mapped table (a window mostly holds items seen at earlier steps, so a step costs about
 * one E x T matvec per event instead of W+1); the contents of the window entries are copied
 * into per-row scratch, so a later cache eviction in the same step cannot change them.
 */
#include <math.h>
#include <stdlib.h>

#include "model_internal.h"
#include "nn_dnnl.h"
#include "nn_ref.h"
#include "step_tf.h"
#include "vec.h"

#define TEXT_CACHE_MIN 1024
#define TEXT_CACHE_MAX 16384

struct model_runner {
    const model *m;
    model_backend backend;
    int max_batch;
    int E, A, I, H, K, D, W, lstm;
    int T;                    /* text_dim (0: no text) */
    model_item_text_fn text_fn;
    void *text_ctx;
    float *xw;                /* text models: (B, I) the current event's window entry x~ (x without event text) */
    float *ta;                /* (E) scratch: one a(t) */
    /* dnnl text: a(t) cache (direct-mapped, key + pointer checked) and per-row window contents */
    float *wb;                /* (E) text.w text.b */
    uint64_t *ckey;           /* (ncache), 0 = empty */
    const float **cptr;       /* (ncache) the text vector a(t) was computed from */
    float *cval;              /* (ncache, E) */
    size_t ncache;
    float *ctn;               /* (B, W, E) contents of the used window entries */
    /* shared, (max_batch, .) row-major */
    float *x;        /* (B, I) inputs */
    float *h0, *c0;  /* (B, H) previous h, c */
    float *h1, *c1;  /* (B, H) new h, c */
    float *u;        /* (B, D) interest vectors */
    /* scalar */
    float *gates, *gx, *gh; /* (B, 4H) or (B, 3H) */
    float *xs;              /* (W, I) one user's window */
    float *q, *k, *v, *a, *ctx; /* (K), (W,K), (W,K), (W), (K) */
    float *hc;              /* (B, H+K) */
    /* LRU stack: the layers' eigenvalues and one step's buffers */
    int lru, L, N, F;
    float *lre, *lim, *gam;  /* (L, N) */
    float *hl0, *hl1;        /* (L, B, 2N) every layer's complex state, before and after */
    float *zb, *ub, *yb, *z1, *a1, *y2; /* (B,H), (B,2N), (B,H), (B,H), (B,F), (B,H) */
    /* dnnl */
    nn_dnnl *dn;
    nn_dnnl_rnn *rnn;
    nn_dnnl_linear *lin_q, *lin_out;
    nn_dnnl_linear *lin_in, *lin_b[16], *lin_c[16], *lin_w1[16], *lin_w2[16]; /* LRU: per layer */
    nn_dnnl_layernorm *ln1[16], *ln2[16];
    step_tf *tf;             /* transformer blocks (attention tf), instead of the window attention */
    float *qx;       /* (B, I) folded queries q' */
    float *z;        /* (B, H+I) [h ; xbar] */
    float *sc;       /* (W) scores */
    float *uprev;    /* (D) previous u, copied out of a blob */
    /* per row, filled while validating: the state header and the window entries used */
    model_state_hdr *hdr;    /* (B) */
    int *used;               /* (B) previous window entries used at this step */
    model_state_slot *slots; /* (B, W) oldest first */
};

void model_runner_free(model_runner *r) {
    if (!r) return;
    nn_dnnl_free(r->dn);
    step_tf_free(r->tf);
    float *bufs[] = {r->x, r->h0, r->c0, r->h1, r->c1, r->u, r->gates, r->gx, r->gh, r->xs,
                     r->q, r->k, r->v, r->a, r->ctx, r->hc, r->qx, r->z, r->sc, r->uprev,
                     r->xw, r->ta, r->wb, r->cval, r->ctn, r->lre, r->lim, r->gam, r->hl0, r->hl1,
                     r->zb, r->ub, r->yb, r->z1, r->a1, r->y2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(r->ckey);
    free((void *)r->cptr);
    free(r->slots);
    free(r->hdr);
    free(r->used);
    free(r);
}

/* The LRU stack's oneDNN primitives, layer by layer (buffers in the runner, weights copied). */
static int lru_setup_dnnl(model_runner *r, char *err, size_t errlen) {
    const model *m = r->m;
    const int I = r->I, H = r->H, N = r->N, F = r->F, B = r->max_batch;
    if (nn_dnnl_linear_new(&r->lin_in, r->dn, I, H, m->t[T_LRU_IN_W].data, m->t[T_LRU_IN_B].data, r->x,
                           r->L ? r->zb : r->h1, err, errlen))
        return -1;
    for (int l = 0; l < r->L; l++) {
        const float *ln = m->t[T_LRU_LN].data + (size_t)4 * l * H;
        float *h1 = r->hl1 + (size_t)l * B * 2 * N;
        if (nn_dnnl_linear_new(&r->lin_b[l], r->dn, H, 2 * N, m->t[T_LRU_BW].data + (size_t)l * 2 * N * H,
                               m->t[T_LRU_BB].data + (size_t)l * 2 * N, r->zb, r->ub, err, errlen) ||
            nn_dnnl_linear_new_post(&r->lin_c[l], r->dn, 2 * N, H, m->t[T_LRU_CW].data + (size_t)l * H * 2 * N,
                                    m->t[T_LRU_CB].data + (size_t)l * H, h1, r->yb, NN_POST_SUM, err, errlen) ||
            nn_dnnl_layernorm_new(&r->ln1[l], r->dn, H, ln, ln + H, r->yb, r->z1, err, errlen) ||
            nn_dnnl_linear_new_post(&r->lin_w1[l], r->dn, H, F, m->t[T_LRU_W1].data + (size_t)l * F * H,
                                    m->t[T_LRU_B1].data + (size_t)l * F, r->z1, r->a1, NN_POST_GELU, err, errlen) ||
            nn_dnnl_linear_new_post(&r->lin_w2[l], r->dn, F, H, m->t[T_LRU_W2].data + (size_t)l * H * F,
                                    m->t[T_LRU_B2].data + (size_t)l * H, r->a1, r->y2, NN_POST_SUM, err, errlen) ||
            nn_dnnl_layernorm_new(&r->ln2[l], r->dn, H, ln + 2 * H, ln + 3 * H, r->y2, l == r->L - 1 ? r->h1 : r->zb,
                                  err, errlen))
            return -1;
    }
    return 0;
}

/* h = lambda h_prev + gamma u over n rows of N complex elements (the recurrence of one step, in
 * float: the dnnl backend's; nn_ref's lru_scan_forward is the reference). */
static void lru_step_fast(float *restrict h, const float *restrict hp, const float *restrict u, const float *lre,
                          const float *lim, const float *gam, int n, int N) {
    for (int i = 0; i < n; i++) {
        const float *pr = hp + (size_t)i * 2 * N, *ur = u + (size_t)i * 2 * N;
        float *hr = h + (size_t)i * 2 * N;
        for (int k = 0; k < N; k++) {
            hr[k] = lre[k] * pr[k] - lim[k] * pr[N + k] + gam[k] * ur[k];
            hr[N + k] = lim[k] * pr[k] + lre[k] * pr[N + k] + gam[k] * ur[N + k];
        }
    }
}

/* The LRU stack over n rows, x -> h1 (and hl0 -> hl1), with nn_ref's kernels. */
static void lru_stack_scalar(model_runner *r, int n) {
    const model *m = r->m;
    const int I = r->I, H = r->H, N = r->N, F = r->F, B = r->max_batch;
    linear_forward(r->L ? r->zb : r->h1, r->x, m->t[T_LRU_IN_W].data, m->t[T_LRU_IN_B].data, n, I, H);
    for (int l = 0; l < r->L; l++) {
        const float *ln = m->t[T_LRU_LN].data + (size_t)4 * l * H;
        float *h0 = r->hl0 + (size_t)l * B * 2 * N, *h1 = r->hl1 + (size_t)l * B * 2 * N;
        linear_forward(r->ub, r->zb, m->t[T_LRU_BW].data + (size_t)l * 2 * N * H, m->t[T_LRU_BB].data + (size_t)l * 2 * N,
                       n, H, 2 * N);
        lru_scan_forward(h1, r->ub, h0, r->lre + (size_t)l * N, r->lim + (size_t)l * N, r->gam + (size_t)l * N, 1, n, N);
        linear_forward(r->yb, h1, m->t[T_LRU_CW].data + (size_t)l * H * 2 * N, m->t[T_LRU_CB].data + (size_t)l * H, n,
                       2 * N, H);
        for (size_t i = 0; i < (size_t)n * H; i++) r->yb[i] += r->zb[i];
        layernorm_forward(r->z1, NULL, NULL, r->yb, ln, ln + H, n, H);
        linear_forward(r->a1, r->z1, m->t[T_LRU_W1].data + (size_t)l * F * H, m->t[T_LRU_B1].data + (size_t)l * F, n, H, F);
        gelu_forward(r->a1, r->a1, (long)n * F);
        linear_forward(r->y2, r->a1, m->t[T_LRU_W2].data + (size_t)l * H * F, m->t[T_LRU_B2].data + (size_t)l * H, n, F, H);
        for (size_t i = 0; i < (size_t)n * H; i++) r->y2[i] += r->z1[i];
        layernorm_forward(l == r->L - 1 ? r->h1 : r->zb, NULL, NULL, r->y2, ln + 2 * H, ln + 3 * H, n, H);
    }
}

/* The same with the oneDNN primitives (bucket: the primitives' row count for n rows). */
static int lru_stack_dnnl(model_runner *r, int n, int bucket, char *err, size_t errlen) {
    const int H = r->H, N = r->N, B = r->max_batch;
    if (nn_dnnl_linear_forward(r->lin_in, bucket, err, errlen)) return -1;
    for (int l = 0; l < r->L; l++) {
        if (nn_dnnl_linear_forward(r->lin_b[l], bucket, err, errlen)) return -1;
        lru_step_fast(r->hl1 + (size_t)l * B * 2 * N, r->hl0 + (size_t)l * B * 2 * N, r->ub, r->lre + (size_t)l * N,
                      r->lim + (size_t)l * N, r->gam + (size_t)l * N, n, N);
        memcpy(r->yb, r->zb, (size_t)n * H * sizeof(float)); /* the residual: lin_c adds C h + b_C onto it */
        if (nn_dnnl_linear_forward(r->lin_c[l], bucket, err, errlen) || nn_dnnl_layernorm_forward(r->ln1[l], bucket, err, errlen))
            return -1;
        memcpy(r->y2, r->z1, (size_t)n * H * sizeof(float));
        if (nn_dnnl_linear_forward(r->lin_w1[l], bucket, err, errlen) ||
            nn_dnnl_linear_forward(r->lin_w2[l], bucket, err, errlen) ||
            nn_dnnl_layernorm_forward(r->ln2[l], bucket, err, errlen))
            return -1;
    }
    return 0;
}

/* Folded attention/output weights for the dnnl backend (see the top comment), in double. */
static int dnnl_setup_window(model_runner *r, char *err, size_t errlen);

/* The recurrent part's primitives, then the window attention's (folded) or the transformer's. */
static int dnnl_setup(model_runner *r, char *err, size_t errlen) {
    const model *m = r->m;
    if (r->m->cfg.attn != MODEL_ATTN_TF) return dnnl_setup_window(r, err, errlen);
    return nn_dnnl_new(&r->dn, r->max_batch, err, errlen) ||
                   (r->lru ? lru_setup_dnnl(r, err, errlen)
                           : nn_dnnl_rnn_new(&r->rnn, r->dn, r->lstm, r->I, r->H, m->t[T_W_IH].data, m->t[T_W_HH].data,
                                             m->t[T_B_IH].data, m->t[T_B_HH].data, r->x, r->h0, r->c0, r->h1, r->c1, err,
                                             errlen)) ||
                   step_tf_new(&r->tf, m, r->max_batch, r->dn, r->h1, r->u, err, errlen) || nn_dnnl_finalize(r->dn, err, errlen)
               ? -1
               : 0;
}

static int dnnl_setup_window(model_runner *r, char *err, size_t errlen) {
    const model *m = r->m;
    int I = r->I, H = r->H, K = r->K, D = r->D, rc = -1;
    const float *wq = m->t[T_W_Q].data, *bq = m->t[T_B_Q].data, *wk = m->t[T_W_K].data;
    const float *wv = m->t[T_W_V].data, *bv = m->t[T_B_V].data, *wo = m->t[T_OUT_W].data, *bo = m->t[T_OUT_B].data;
    float *wqk = model_falloc((size_t)I * H), *bqk = model_falloc((size_t)I);
    float *wf = model_falloc((size_t)D * (H + I)), *bf = model_falloc((size_t)D);
    double *acc = malloc((size_t)(H > I ? H : I) * sizeof *acc);
    if (!wqk || !bqk || !wf || !bf || !acc) {
        model_errf(err, errlen, "runner: out of memory");
        goto done;
    }
    double s = 1.0 / sqrt((double)K);
    for (int i = 0; i < I; i++) { /* Wqk[i][h] = s * sum_k W_k[k][i] W_q[k][h] */
        double b = 0;
        for (int h = 0; h < H; h++) acc[h] = 0;
        for (int k = 0; k < K; k++) {
            double w = wk[(size_t)k * I + i];
            for (int h = 0; h < H; h++) acc[h] += w * wq[(size_t)k * H + h];
            b += w * bq[k];
        }
        for (int h = 0; h < H; h++) wqk[(size_t)i * H + h] = (float)(s * acc[h]);
        bqk[i] = (float)(s * b);
    }
    for (int d = 0; d < D; d++) { /* Wf[d] = [W_out_h[d] ; sum_k W_out_c[d][k] W_v[k]] */
        const float *wod = wo + (size_t)d * (H + K);
        double b = bo[d];
        for (int i = 0; i < I; i++) acc[i] = 0;
        for (int k = 0; k < K; k++) {
            double w = wod[H + k];
            for (int i = 0; i < I; i++) acc[i] += w * wv[(size_t)k * I + i];
            b += w * bv[k];
        }
        for (int h = 0; h < H; h++) wf[(size_t)d * (H + I) + h] = wod[h];
        for (int i = 0; i < I; i++) wf[(size_t)d * (H + I) + H + i] = (float)acc[i];
        bf[d] = (float)b;
    }
    if (nn_dnnl_new(&r->dn, r->max_batch, err, errlen) ||
        (r->lru ? lru_setup_dnnl(r, err, errlen)
                : nn_dnnl_rnn_new(&r->rnn, r->dn, r->lstm, I, H, m->t[T_W_IH].data, m->t[T_W_HH].data,
                                  m->t[T_B_IH].data, m->t[T_B_HH].data, r->x, r->h0, r->c0, r->h1, r->c1, err, errlen)) ||
        nn_dnnl_linear_new(&r->lin_q, r->dn, H, I, wqk, bqk, r->h1, r->qx, err, errlen) ||
        nn_dnnl_linear_new(&r->lin_out, r->dn, H + I, D, wf, bf, r->z, r->u, err, errlen) ||
        nn_dnnl_finalize(r->dn, err, errlen))
        goto done;
    rc = 0;
done:
    free(wqk);
    free(bqk);
    free(wf);
    free(bf);
    free(acc);
    return rc;
}

int model_runner_new(model_runner **out, const model *m, model_backend backend, int max_batch, char *err,
                     size_t errlen) {
    *out = NULL;
    if (!m) return model_errf(err, errlen, "runner: NULL model");
    if (backend != MODEL_BACKEND_SCALAR && backend != MODEL_BACKEND_DNNL)
        return model_errf(err, errlen, "runner: unknown backend %d", (int)backend);
    if (max_batch < 1 || max_batch > 65536)
        return model_errf(err, errlen, "runner: max_batch %d out of range 1..65536", max_batch);
    model_runner *r = calloc(1, sizeof *r);
    if (!r) return model_errf(err, errlen, "runner: out of memory");
    const model_config *c = &m->cfg;
    r->m = m;
    r->backend = backend;
    r->max_batch = max_batch;
    r->E = c->item_dim, r->A = c->action_dim, r->I = model_input_dim(c), r->H = c->hidden;
    r->K = c->attn_dim, r->D = c->out_dim, r->W = c->window, r->lstm = c->cell == MODEL_CELL_LSTM;
    r->T = c->text_dim;
    /* cell none is an LRU stack without layers: the input projection alone */
    r->lru = c->cell == MODEL_CELL_LRU || c->cell == MODEL_CELL_NONE, r->L = c->layers, r->N = c->state_dim;
    r->F = c->ffn_dim;
    if (r->lru && r->L > (int)(sizeof r->lin_b / sizeof r->lin_b[0])) {
        free(r);
        return model_errf(err, errlen, "runner: %d LRU layers, at most 16", c->layers);
    }
    size_t B = (size_t)max_batch, I = r->I, H = r->H, K = r->K, D = r->D, W = r->W, G = (size_t)model_gates(c);
    size_t E = (size_t)r->E;
    r->x = model_falloc(B * I);
    r->h0 = model_falloc(B * H), r->c0 = model_falloc(B * H), r->h1 = model_falloc(B * H), r->c1 = model_falloc(B * H);
    r->u = model_falloc(B * D);
    r->sc = model_falloc(W), r->uprev = model_falloc(D);
    r->slots = malloc(B * W * sizeof *r->slots);
    r->hdr = malloc(B * sizeof *r->hdr);
    r->used = malloc(B * sizeof *r->used);
    /* one user's window attention with the scalar kernels: the scalar step, model_state_output */
    r->xs = model_falloc(W * I), r->q = model_falloc(K), r->k = model_falloc(W * K), r->v = model_falloc(W * K);
    r->a = model_falloc(W), r->ctx = model_falloc(K), r->hc = model_falloc(B * (H + K));
    int ok = r->x && r->h0 && r->c0 && r->h1 && r->c1 && r->u && r->sc && r->uprev && r->slots && r->hdr && r->used &&
             r->xs && r->q && r->k && r->v && r->a && r->ctx && r->hc;
    if (r->lru) {
        const size_t L = (size_t)r->L, N = (size_t)r->N, F = (size_t)r->F;
        r->lre = model_falloc(L * N), r->lim = model_falloc(L * N), r->gam = model_falloc(L * N);
        r->hl0 = model_falloc(L * B * 2 * N), r->hl1 = model_falloc(L * B * 2 * N);
        r->zb = model_falloc(B * H), r->ub = model_falloc(B * 2 * N), r->yb = model_falloc(B * H), r->z1 = model_falloc(B * H);
        r->a1 = model_falloc(B * F), r->y2 = model_falloc(B * H);
        ok = ok && r->lre && r->lim && r->gam && r->hl0 && r->hl1 && r->zb && r->ub && r->yb && r->z1 && r->a1 && r->y2;
        for (size_t l = 0; ok && l < L; l++) {
            const float *lg = m->t[T_LRU_LOG].data + 3 * l * N;
            lru_lambda_forward(r->lre + l * N, r->lim + l * N, r->gam + l * N, lg, lg + N, lg + 2 * N, (int)N);
        }
    } else if (backend == MODEL_BACKEND_SCALAR) {
        r->gates = model_falloc(B * G * H), r->gx = model_falloc(B * G * H), r->gh = model_falloc(B * G * H);
        ok = ok && r->gates && r->gx && r->gh;
    }
    if (backend == MODEL_BACKEND_DNNL) {
        r->qx = model_falloc(B * I), r->z = model_falloc(B * (H + I));
        ok = ok && r->qx && r->z;
    }
    if (r->T > 0) {
        r->xw = model_falloc(B * I), r->ta = model_falloc(E);
        ok = ok && r->xw && r->ta;
        if (backend == MODEL_BACKEND_DNNL) {
            size_t nc = TEXT_CACHE_MIN;
            while (nc < TEXT_CACHE_MAX && nc < 4 * B * W) nc *= 2;
            r->ncache = nc;
            r->wb = model_falloc(E), r->cval = model_falloc(nc * E), r->ctn = model_falloc(B * W * E);
            r->ckey = calloc(nc, sizeof *r->ckey);
            r->cptr = calloc(nc, sizeof *r->cptr);
            ok = ok && r->wb && r->cval && r->ctn && r->ckey && r->cptr;
            if (ok) text_wb(m->t[T_TEXT_W].data, m->t[T_TEXT_B].data, r->E, r->T, r->wb);
        }
    }
    if (!ok) {
        model_runner_free(r);
        return model_errf(err, errlen, "runner: out of memory");
    }
    if ((backend == MODEL_BACKEND_DNNL && dnnl_setup(r, err, errlen)) ||
        (backend == MODEL_BACKEND_SCALAR && c->attn == MODEL_ATTN_TF &&
         step_tf_new(&r->tf, m, max_batch, NULL, r->h1, r->u, err, errlen))) {
        model_runner_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

float model_value_g(float value) {
    double v = value;
    return (float)(v < 0 ? -log1p(-v) : log1p(v));
}

void model_event_features(const model_event *ev, int64_t events, int64_t last_ts, float f[MODEL_FEATURES]) {
    double gap = 0;
    if (events > 0 && ev->ts > last_ts) gap = (double)((uint64_t)ev->ts - (uint64_t)last_ts) / 1000.0;
    f[0] = (float)(log1p(gap) / 10.0);
    if (ev->has_value) {
        f[1] = model_value_g(ev->value);
        f[2] = 1.0f;
    } else {
        f[1] = 0.0f;
        f[2] = 0.0f;
    }
}

void model_runner_set_text(model_runner *r, model_item_text_fn fn, void *ctx) {
    r->text_fn = fn;
    r->text_ctx = ctx;
    if (r->ckey) memset(r->ckey, 0, r->ncache * sizeof *r->ckey);
}

static inline size_t cache_slot(const model_runner *r, uint64_t key) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (r->ncache - 1);
}

void model_runner_text_changed(model_runner *r, uint64_t key) {
    if (!r || !r->ckey || !key) return;
    size_t h = cache_slot(r, key);
    if (r->ckey[h] == key) r->ckey[h] = 0;
}

/* The item text of a key through the runner's lookup (NULL: none). */
static inline const float *item_text(const model_runner *r, uint64_t key) {
    return r->T > 0 && r->text_fn && key ? r->text_fn(r->text_ctx, key) : NULL;
}

/* a(t) (E) for an item's text: the double reference (scalar runner), or the cached fast form. */
static const float *adapt_item(model_runner *r, uint64_t key, const float *t) {
    const model *m = r->m;
    if (r->backend == MODEL_BACKEND_SCALAR) {
        text_adapt_ref(m->t[T_TEXT_W].data, m->t[T_TEXT_B].data, r->E, r->T, t, r->ta);
        return r->ta;
    }
    size_t h = cache_slot(r, key);
    float *v = r->cval + h * (size_t)r->E;
    if (r->ckey[h] != key || r->cptr[h] != t) {
        text_adapt_fast(m->t[T_TEXT_W].data, r->wb, r->E, r->T, t, v);
        r->ckey[h] = key;
        r->cptr[h] = t;
    }
    return v;
}

/* c = item_emb[item] + a(t_item) (E): the item's content (model.h). */
static void item_content(model_runner *r, int32_t item, uint64_t key, float *c) {
    const float *e = r->m->t[T_ITEM_EMB].data + (size_t)item * r->E, *t = item_text(r, key);
    if (!t) {
        memcpy(c, e, (size_t)r->E * sizeof(float));
        return;
    }
    const float *a = adapt_item(r, key, t);
    for (int k = 0; k < r->E; k++) c[k] = e[k] + a[k];
}

/* x += [a(t_event) ; 0 ; 0]: the event's own text, RNN input only. */
static void add_event_text(model_runner *r, const float *t, float *x) {
    const model *m = r->m;
    if (r->backend == MODEL_BACKEND_SCALAR)
        text_adapt_ref(m->t[T_TEXT_W].data, m->t[T_TEXT_B].data, r->E, r->T, t, r->ta);
    else
        text_adapt_fast(m->t[T_TEXT_W].data, r->wb, r->E, r->T, t, r->ta);
    for (int k = 0; k < r->E; k++) x[k] += r->ta[k];
}

/* Checks row i's state and event and caches its header and the window entries this step uses
 * (the newest min(wlen, W-1), oldest first: with the current event that makes min(events+1, W)).
 * Slots the step does not read are not checked: the push overwrites the oldest one. */
static int load_row(model_runner *r, int i, const void *state, const model_event *ev, char *err, size_t errlen) {
    const model *m = r->m;
    int W = r->W;
    if (model_state_validate(m, state, err, errlen)) return -1;
    if (ev->item < 0 || ev->item >= m->cfg.n_items || ev->action < 0 || ev->action >= m->cfg.n_actions)
        return model_errf(err, errlen, "item %d / action %d outside the vocabularies (%d / %d)", ev->item, ev->action,
                          m->cfg.n_items, m->cfg.n_actions);
    if (ev->has_value && !isfinite(ev->value)) return model_errf(err, errlen, "value is not finite");
    model_state_hdr *h = &r->hdr[i];
    model_state_read_hdr(state, h);
    int used = h->wlen < W - 1 ? h->wlen : W - 1;
    model_state_slot *sl = r->slots + (size_t)i * W;
    for (int j = 0; j < used; j++) {
        int slot = ((h->head - used + j) % W + W) % W;
        model_state_read_slot(m, state, slot, &sl[j]);
        if (sl[j].item < 0 || sl[j].item >= m->cfg.n_items || sl[j].action < 0 || sl[j].action >= m->cfg.n_actions ||
            !isfinite(sl[j].f[0]) || !isfinite(sl[j].f[1]) || !isfinite(sl[j].f[2]))
            return model_errf(err, errlen, "state: window slot %d holds item %d / action %d or a non-finite feature",
                              slot, sl[j].item, sl[j].action);
    }
    r->used[i] = used;
    return 0;
}

/* x~ for a stored slot: [item content ; action_emb ; f] (I). */
static void slot_input(model_runner *r, const model_state_slot *s, float *x) {
    item_content(r, s->item, s->key, x);
    memcpy(x + r->E, r->m->t[T_ACTION_EMB].data + (size_t)s->action * r->A, (size_t)r->A * sizeof(float));
    memcpy(x + r->E + r->A, s->f, MODEL_FEATURES * sizeof(float));
}

static int compute_scalar(model_runner *r, int n, void *const *states, char *err, size_t errlen) {
    const model *m = r->m;
    int I = r->I, H = r->H, K = r->K, D = r->D;
    if (r->lru)
        lru_stack_scalar(r, n);
    else if (r->lstm)
        lstm_cell_forward(r->h1, r->c1, r->gates, r->x, r->h0, r->c0, m->t[T_W_IH].data, m->t[T_W_HH].data,
                          m->t[T_B_IH].data, m->t[T_B_HH].data, n, I, H);
    else
        gru_cell_forward(r->h1, r->gx, r->gh, r->gates, r->x, r->h0, m->t[T_W_IH].data, m->t[T_W_HH].data,
                         m->t[T_B_IH].data, m->t[T_B_HH].data, n, I, H);
    if (r->tf) return step_tf_forward(r->tf, n, 0, states, r->used, r->hdr, err, errlen);
    for (int i = 0; i < n; i++) {
        int used = r->used[i];
        for (int j = 0; j < used; j++) slot_input(r, &r->slots[(size_t)i * r->W + j], r->xs + (size_t)j * I);
        memcpy(r->xs + (size_t)used * I, (r->xw ? r->xw : r->x) + (size_t)i * I, (size_t)I * sizeof(float));
        window_attention_forward(r->ctx, r->a, r->q, r->k, r->v, r->h1 + (size_t)i * H, r->xs, used + 1,
                                 m->t[T_W_Q].data, m->t[T_B_Q].data, m->t[T_W_K].data, m->t[T_B_K].data,
                                 m->t[T_W_V].data, m->t[T_B_V].data, H, I, K);
        memcpy(r->hc + (size_t)i * (H + K), r->h1 + (size_t)i * H, (size_t)H * sizeof(float));
        memcpy(r->hc + (size_t)i * (H + K) + H, r->ctx, (size_t)K * sizeof(float));
    }
    linear_forward(r->u, r->hc, m->t[T_OUT_W].data, m->t[T_OUT_B].data, n, H + K, D);
    return 0;
}

static int compute_dnnl(model_runner *r, int n, void *const *states, char *err, size_t errlen) {
    const model *m = r->m;
    int E = r->E, A = r->A, I = r->I, H = r->H;
    const float *item_emb = m->t[T_ITEM_EMB].data, *action_emb = m->t[T_ACTION_EMB].data;
    int bucket = nn_dnnl_bucket_for(r->dn, n);
    if (r->lru ? lru_stack_dnnl(r, n, bucket, err, errlen) : nn_dnnl_rnn_forward(r->rnn, bucket, err, errlen)) return -1;
    if (r->tf) return step_tf_forward(r->tf, n, bucket, states, r->used, r->hdr, err, errlen);
    if (nn_dnnl_linear_forward(r->lin_q, bucket, err, errlen)) return -1;
    for (int i = 0; i < n; i++) {
        int used = r->used[i];
        const model_state_slot *slots = r->slots + (size_t)i * r->W;
        const float *q = r->qx + (size_t)i * I, *xi = (r->xw ? r->xw : r->x) + (size_t)i * I;
        const float *ctn = r->ctn ? r->ctn + (size_t)i * r->W * E : NULL; /* text: the entries' contents */
        float *sc = r->sc, mx;
        for (int j = 0; j < used; j++) {
            const model_state_slot *s = &slots[j];
            const float *c = ctn ? ctn + (size_t)j * E : item_emb + (size_t)s->item * E;
            sc[j] = dotf(c, q, E) + dotf(action_emb + (size_t)s->action * A, q + E, A) +
                    dotf(s->f, q + E + A, MODEL_FEATURES);
        }
        sc[used] = dotf(xi, q, I);
        mx = sc[0];
        for (int j = 1; j <= used; j++) mx = sc[j] > mx ? sc[j] : mx;
        float sum = 0;
        for (int j = 0; j <= used; j++) sum += (sc[j] = expf(sc[j] - mx));
        float inv = 1.0f / sum;
        float *zi = r->z + (size_t)i * (H + I), *xb = zi + H;
        memcpy(zi, r->h1 + (size_t)i * H, (size_t)H * sizeof(float));
        for (int k = 0; k < I; k++) xb[k] = sc[used] * inv * xi[k];
        for (int j = 0; j < used; j++) {
            const model_state_slot *s = &slots[j];
            float aj = sc[j] * inv;
            axpyf(xb, aj, ctn ? ctn + (size_t)j * E : item_emb + (size_t)s->item * E, E);
            axpyf(xb + E, aj, action_emb + (size_t)s->action * A, A);
            axpyf(xb + E + A, aj, s->f, MODEL_FEATURES);
        }
    }
    return nn_dnnl_linear_forward(r->lin_out, bucket, err, errlen);
}

int model_step(model_runner *r, int n, void *const *states, const model_event *ev, float *out_vec, float *out_drift,
               char *err, size_t errlen) {
    if (n == 0) return 0;
    if (!r || n < 0 || n > r->max_batch)
        return model_errf(err, errlen, "model_step: batch of %d rows, runner takes 1..%d", n, r ? r->max_batch : 0);
    if (!states || !ev || !out_vec || !out_drift) return model_errf(err, errlen, "model_step: NULL argument");
    const model *m = r->m;
    int E = r->E, A = r->A, I = r->I, H = r->H, D = r->D, W = r->W;
    /* 0. The rows' states lie scattered over the caller's memory (a million users' states are
     * not in any CPU cache): ask for every line of every row, and for the events' item
     * embeddings, before the first is read, so the misses overlap instead of coming one row at
     * a time. */
    size_t state_bytes = model_state_size(m);
    for (int i = 0; i < n; i++) {
        for (size_t o = 0; o < state_bytes; o += 64) __builtin_prefetch((const char *)states[i] + o, 1, 3);
        if (ev[i].item >= 0 && ev[i].item < m->cfg.n_items)
            __builtin_prefetch(m->t[T_ITEM_EMB].data + (size_t)ev[i].item * E, 0, 3);
    }
    /* 1. Validate everything before changing anything (and cache headers and window slots). */
    for (int i = 0; i < n; i++) {
        char why[MODEL_ERR_LEN];
        if (load_row(r, i, states[i], &ev[i], why, sizeof why))
            return model_errf(err, errlen, "model_step: row %d: %s", i, why);
    }
    /* 2. Gather x_t (text: x~_t, then x_t = x~_t + the event's text), the window contents (dnnl
     * with text) and the previous h (c). */
    for (int i = 0; i < n; i++) {
        float *x = r->x + (size_t)i * I;
        if (r->T > 0) {
            float *xw = r->xw + (size_t)i * I;
            item_content(r, ev[i].item, ev[i].item_key, xw);
            memcpy(xw + E, m->t[T_ACTION_EMB].data + (size_t)ev[i].action * A, (size_t)A * sizeof(float));
            model_event_features(&ev[i], r->hdr[i].events, r->hdr[i].last_ts, xw + E + A);
            memcpy(x, xw, (size_t)I * sizeof(float));
            if (ev[i].event_text) add_event_text(r, ev[i].event_text, x);
            for (int j = 0; r->ctn && j < r->used[i]; j++) {
                const model_state_slot *sl = &r->slots[(size_t)i * W + j];
                item_content(r, sl->item, sl->key, r->ctn + ((size_t)i * W + j) * E);
            }
        } else {
            memcpy(x, m->t[T_ITEM_EMB].data + (size_t)ev[i].item * E, (size_t)E * sizeof(float));
            memcpy(x + E, m->t[T_ACTION_EMB].data + (size_t)ev[i].action * A, (size_t)A * sizeof(float));
            model_event_features(&ev[i], r->hdr[i].events, r->hdr[i].last_ts, x + E + A);
        }
        memcpy(r->h0 + (size_t)i * H, (const char *)states[i] + model_state_off_h(m), (size_t)H * sizeof(float));
        if (r->lstm)
            memcpy(r->c0 + (size_t)i * H, (const char *)states[i] + model_state_off_c(m), (size_t)H * sizeof(float));
        for (int l = 0; r->lru && l < r->L; l++) /* the layers' states follow h in the blob */
            memcpy(r->hl0 + ((size_t)l * r->max_batch + i) * 2 * r->N,
                   (const char *)states[i] + model_state_off_c(m) + (size_t)l * 2 * r->N * sizeof(float),
                   (size_t)2 * r->N * sizeof(float));
    }
    /* 3. Compute h_t (c_t) and u_t. */
    if (r->backend == MODEL_BACKEND_SCALAR ? compute_scalar(r, n, states, err, errlen)
                                           : compute_dnnl(r, n, states, err, errlen))
        return -1;
    /* 4. Drift, outputs, state update. */
    for (int i = 0; i < n; i++) {
        char *st = states[i];
        model_state_hdr hd = r->hdr[i];
        const float *u = r->u + (size_t)i * D;
        model_state_read_u(m, st, r->uprev); /* fp16: the drift is against the rounded previous vector */
        out_drift[i] = drift_forward(u, r->uprev, D, hd.events == 0);
        memcpy(out_vec + (size_t)i * D, u, (size_t)D * sizeof(float));
        memcpy(st + model_state_off_h(m), r->h1 + (size_t)i * H, (size_t)H * sizeof(float));
        if (r->lstm) memcpy(st + model_state_off_c(m), r->c1 + (size_t)i * H, (size_t)H * sizeof(float));
        for (int l = 0; r->lru && l < r->L; l++)
            memcpy(st + model_state_off_c(m) + (size_t)l * 2 * r->N * sizeof(float),
                   r->hl1 + ((size_t)l * r->max_batch + i) * 2 * r->N, (size_t)2 * r->N * sizeof(float));
        model_state_write_u(m, st, u);
        if (m->t[T_VALUE_USER].numel && ev[i].has_value) { /* the value head's user bias */
            float vs, vc;
            model_state_read_vu(m, st, &vs, &vc);
            model_value_user_push(m, &vs, &vc, ev[i].item, r->x[(size_t)i * I + E + A + 1]);
            model_state_write_vu(m, st, vs, vc);
        }
        model_state_slot s = {ev[i].item, ev[i].action, {0}, r->T > 0 ? ev[i].item_key : 0};
        memcpy(s.f, r->x + (size_t)i * I + E + A, sizeof s.f);
        model_state_write_slot(m, st, hd.head, &s);
        if (r->tf) step_tf_commit(r->tf, i, st, hd.head);
        hd.head = (hd.head + 1) % W;
        hd.wlen = hd.wlen < W ? hd.wlen + 1 : W;
        hd.events++;
        hd.last_ts = ev[i].ts;
        model_state_write_hdr(st, &hd);
    }
    return 0;
}

int model_state_output(model_runner *r, const void *state, float *out, char *err, size_t errlen) {
    const model *m = r->m;
    const int I = r->I, H = r->H, K = r->K, D = r->D, W = r->W;
    if (model_state_validate(m, state, err, errlen)) return -1;
    model_state_hdr h;
    model_state_read_hdr(state, &h);
    if (h.events == 0 || h.wlen == 0) {
        memset(out, 0, (size_t)D * sizeof(float));
        return 0;
    }
    float hc[8192];
    if (H + K > 8192) return model_errf(err, errlen, "model_state_output: H + K = %d too large", H + K);
    memcpy(hc, (const char *)state + model_state_off_h(m), (size_t)H * sizeof(float));
    if (r->tf) return step_tf_output(r->tf, state, hc, h.wlen, h.head, out, err, errlen);
    for (int j = 0; j < h.wlen; j++) { /* oldest first; the newest is the last event's x~ */
        model_state_slot s;
        model_state_read_slot(m, state, ((h.head - h.wlen + j) % W + W) % W, &s);
        if (s.item < 0 || s.item >= m->cfg.n_items || s.action < 0 || s.action >= m->cfg.n_actions ||
            !isfinite(s.f[0]) || !isfinite(s.f[1]))
            return model_errf(err, errlen, "state: window entry %d holds item %d / action %d or a non-finite feature", j,
                              s.item, s.action);
        slot_input(r, &s, r->xs + (size_t)j * I);
    }
    window_attention_forward(hc + H, r->a, r->q, r->k, r->v, hc, r->xs, h.wlen, m->t[T_W_Q].data, m->t[T_B_Q].data,
                             m->t[T_W_K].data, m->t[T_B_K].data, m->t[T_W_V].data, m->t[T_B_V].data, H, I, K);
    linear_forward(out, hc, m->t[T_OUT_W].data, m->t[T_OUT_B].data, 1, H + K, D);
    return 0;
}
