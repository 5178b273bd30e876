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
 */
#include <math.h>
#include <stdlib.h>

#include "model_internal.h"
#include "nn_dnnl.h"
#include "nn_ref.h"

struct model_runner {
    const model *m;
    model_backend backend;
    int max_batch;
    int E, A, I, H, K, D, W, lstm;
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
    /* dnnl */
    nn_dnnl *dn;
    nn_dnnl_rnn *rnn;
    nn_dnnl_linear *lin_q, *lin_out;
    float *qx;       /* (B, I) folded queries q' */
    float *z;        /* (B, H+I) [h ; xbar] */
    float *sc;       /* (W) scores */
    float *uprev;    /* (D) previous u, copied out of a blob */
    /* per row, filled while validating: the state header and the window entries used */
    model_state_hdr *hdr;    /* (B) */
    int *used;               /* (B) previous window entries used at this step */
    model_state_slot *slots; /* (B, W) oldest first */
};

static float *falloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void model_runner_free(model_runner *r) {
    if (!r) return;
    nn_dnnl_free(r->dn);
    float *bufs[] = {r->x, r->h0, r->c0, r->h1, r->c1, r->u, r->gates, r->gx, r->gh, r->xs,
                     r->q, r->k, r->v, r->a, r->ctx, r->hc, r->qx, r->z, r->sc, r->uprev};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(r->slots);
    free(r->hdr);
    free(r->used);
    free(r);
}

/* Folded attention/output weights for the dnnl backend (see the top comment), in double. */
static int dnnl_setup(model_runner *r, char *err, size_t errlen) {
    const model *m = r->m;
    int I = r->I, H = r->H, K = r->K, D = r->D, rc = -1;
    const float *wq = m->t[T_W_Q].data, *bq = m->t[T_B_Q].data, *wk = m->t[T_W_K].data;
    const float *wv = m->t[T_W_V].data, *bv = m->t[T_B_V].data, *wo = m->t[T_OUT_W].data, *bo = m->t[T_OUT_B].data;
    float *wqk = falloc((size_t)I * H), *bqk = falloc((size_t)I);
    float *wf = falloc((size_t)D * (H + I)), *bf = falloc((size_t)D);
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
        nn_dnnl_rnn_new(&r->rnn, r->dn, r->lstm, I, H, m->t[T_W_IH].data, m->t[T_W_HH].data, m->t[T_B_IH].data,
                        m->t[T_B_HH].data, r->x, r->h0, r->c0, r->h1, r->c1, err, errlen) ||
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
    size_t B = (size_t)max_batch, I = r->I, H = r->H, K = r->K, D = r->D, W = r->W, G = (size_t)model_gates(c);
    r->x = falloc(B * I);
    r->h0 = falloc(B * H), r->c0 = falloc(B * H), r->h1 = falloc(B * H), r->c1 = falloc(B * H);
    r->u = falloc(B * D);
    r->sc = falloc(W), r->uprev = falloc(D);
    r->slots = malloc(B * W * sizeof *r->slots);
    r->hdr = malloc(B * sizeof *r->hdr);
    r->used = malloc(B * sizeof *r->used);
    int ok = r->x && r->h0 && r->c0 && r->h1 && r->c1 && r->u && r->sc && r->uprev && r->slots && r->hdr && r->used;
    if (backend == MODEL_BACKEND_SCALAR) {
        r->gates = falloc(B * G * H), r->gx = falloc(B * G * H), r->gh = falloc(B * G * H);
        r->xs = falloc(W * I), r->q = falloc(K), r->k = falloc(W * K), r->v = falloc(W * K);
        r->a = falloc(W), r->ctx = falloc(K), r->hc = falloc(B * (H + K));
        ok = ok && r->gates && r->gx && r->gh && r->xs && r->q && r->k && r->v && r->a && r->ctx && r->hc;
    } else {
        r->qx = falloc(B * I), r->z = falloc(B * (H + I));
        ok = ok && r->qx && r->z;
    }
    if (!ok) {
        model_runner_free(r);
        return model_errf(err, errlen, "runner: out of memory");
    }
    if (backend == MODEL_BACKEND_DNNL && dnnl_setup(r, err, errlen)) {
        model_runner_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

void model_event_features(const model_event *ev, int64_t events, int64_t last_ts, float f[MODEL_FEATURES]) {
    double gap = 0;
    if (events > 0 && ev->ts > last_ts) gap = (double)((uint64_t)ev->ts - (uint64_t)last_ts) / 1000.0;
    f[0] = (float)(log1p(gap) / 10.0);
    if (ev->has_value) {
        double v = ev->value;
        f[1] = (float)(v < 0 ? -log1p(-v) : log1p(v));
        f[2] = 1.0f;
    } else {
        f[1] = 0.0f;
        f[2] = 0.0f;
    }
}

/* Dot product with independent partial sums (vectorisable without -ffast-math). */
static inline float dotf(const float *restrict a, const float *restrict b, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    return s + ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* y += a*x in blocks of 8, so -O2's cheap vectoriser takes it. */
static inline void axpyf(float *restrict y, float a, const float *restrict x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) y[i + l] += a * x[i + l];
    for (; i < n; i++) y[i] += a * x[i];
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

/* x for a stored slot: [item_emb ; action_emb ; f] (I). */
static void slot_input(const model_runner *r, const model_state_slot *s, float *x) {
    memcpy(x, r->m->t[T_ITEM_EMB].data + (size_t)s->item * r->E, (size_t)r->E * sizeof(float));
    memcpy(x + r->E, r->m->t[T_ACTION_EMB].data + (size_t)s->action * r->A, (size_t)r->A * sizeof(float));
    memcpy(x + r->E + r->A, s->f, MODEL_FEATURES * sizeof(float));
}

static void compute_scalar(model_runner *r, int n) {
    const model *m = r->m;
    int I = r->I, H = r->H, K = r->K, D = r->D;
    if (r->lstm)
        lstm_cell_forward(r->h1, r->c1, r->gates, r->x, r->h0, r->c0, m->t[T_W_IH].data, m->t[T_W_HH].data,
                          m->t[T_B_IH].data, m->t[T_B_HH].data, n, I, H);
    else
        gru_cell_forward(r->h1, r->gx, r->gh, r->gates, r->x, r->h0, m->t[T_W_IH].data, m->t[T_W_HH].data,
                         m->t[T_B_IH].data, m->t[T_B_HH].data, n, I, H);
    for (int i = 0; i < n; i++) {
        int used = r->used[i];
        for (int j = 0; j < used; j++) slot_input(r, &r->slots[(size_t)i * r->W + j], r->xs + (size_t)j * I);
        memcpy(r->xs + (size_t)used * I, r->x + (size_t)i * I, (size_t)I * sizeof(float));
        window_attention_forward(r->ctx, r->a, r->q, r->k, r->v, r->h1 + (size_t)i * H, r->xs, used + 1,
                                 m->t[T_W_Q].data, m->t[T_B_Q].data, m->t[T_W_K].data, m->t[T_B_K].data,
                                 m->t[T_W_V].data, m->t[T_B_V].data, H, I, K);
        memcpy(r->hc + (size_t)i * (H + K), r->h1 + (size_t)i * H, (size_t)H * sizeof(float));
        memcpy(r->hc + (size_t)i * (H + K) + H, r->ctx, (size_t)K * sizeof(float));
    }
    linear_forward(r->u, r->hc, m->t[T_OUT_W].data, m->t[T_OUT_B].data, n, H + K, D);
}

static int compute_dnnl(model_runner *r, int n, char *err, size_t errlen) {
    const model *m = r->m;
    int E = r->E, A = r->A, I = r->I, H = r->H;
    const float *item_emb = m->t[T_ITEM_EMB].data, *action_emb = m->t[T_ACTION_EMB].data;
    int bucket = nn_dnnl_bucket_for(r->dn, n);
    if (nn_dnnl_rnn_forward(r->rnn, bucket, err, errlen) || nn_dnnl_linear_forward(r->lin_q, bucket, err, errlen))
        return -1;
    for (int i = 0; i < n; i++) {
        int used = r->used[i];
        const model_state_slot *slots = r->slots + (size_t)i * r->W;
        const float *q = r->qx + (size_t)i * I, *xi = r->x + (size_t)i * I;
        float *sc = r->sc, mx;
        for (int j = 0; j < used; j++) {
            const model_state_slot *s = &slots[j];
            sc[j] = dotf(item_emb + (size_t)s->item * E, q, E) + dotf(action_emb + (size_t)s->action * A, q + E, A) +
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
            axpyf(xb, aj, item_emb + (size_t)s->item * E, E);
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
    /* 1. Validate everything before changing anything (and cache headers and window slots). */
    for (int i = 0; i < n; i++) {
        char why[MODEL_ERR_LEN];
        if (load_row(r, i, states[i], &ev[i], why, sizeof why))
            return model_errf(err, errlen, "model_step: row %d: %s", i, why);
    }
    /* 2. Gather x_t and the previous h (c). */
    for (int i = 0; i < n; i++) {
        float *x = r->x + (size_t)i * I;
        memcpy(x, m->t[T_ITEM_EMB].data + (size_t)ev[i].item * E, (size_t)E * sizeof(float));
        memcpy(x + E, m->t[T_ACTION_EMB].data + (size_t)ev[i].action * A, (size_t)A * sizeof(float));
        model_event_features(&ev[i], r->hdr[i].events, r->hdr[i].last_ts, x + E + A);
        memcpy(r->h0 + (size_t)i * H, (const char *)states[i] + model_state_off_h(m), (size_t)H * sizeof(float));
        if (r->lstm)
            memcpy(r->c0 + (size_t)i * H, (const char *)states[i] + model_state_off_c(m), (size_t)H * sizeof(float));
    }
    /* 3. Compute h_t (c_t) and u_t. */
    if (r->backend == MODEL_BACKEND_SCALAR)
        compute_scalar(r, n);
    else if (compute_dnnl(r, n, err, errlen))
        return -1;
    /* 4. Drift, outputs, state update. */
    for (int i = 0; i < n; i++) {
        char *st = states[i];
        model_state_hdr hd = r->hdr[i];
        const float *u = r->u + (size_t)i * D;
        memcpy(r->uprev, st + model_state_off_u(m), (size_t)D * sizeof(float)); /* the blob may be unaligned */
        out_drift[i] = drift_forward(u, r->uprev, D, hd.events == 0);
        memcpy(out_vec + (size_t)i * D, u, (size_t)D * sizeof(float));
        memcpy(st + model_state_off_h(m), r->h1 + (size_t)i * H, (size_t)H * sizeof(float));
        if (r->lstm) memcpy(st + model_state_off_c(m), r->c1 + (size_t)i * H, (size_t)H * sizeof(float));
        memcpy(st + model_state_off_u(m), u, (size_t)D * sizeof(float));
        model_state_slot s = {ev[i].item, ev[i].action, {0}};
        memcpy(s.f, r->x + (size_t)i * I + E + A, sizeof s.f);
        model_state_write_slot(m, st, hd.head, &s);
        hd.head = (hd.head + 1) % W;
        hd.wlen = hd.wlen < W ? hd.wlen + 1 : W;
        hd.events++;
        hd.last_ts = ev[i].ts;
        model_state_write_hdr(st, &hd);
    }
    return 0;
}
