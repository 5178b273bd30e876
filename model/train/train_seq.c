/* train_seq: the sequence model on one chunk (N users x T steps), forward and backward side by
 * side, and the heads' loss. The math is model.h's; the shapes are in train_internal.h.
 *
 *   inputs     xe (Te,N,I) = [item_emb ; action_emb] * dropout mask ; f        (f: model_step's)
 *   rnn        hs (T,N,H) from (h0, c0) over xe[W-1 ..]       backward: dhs -> dxe, dW_ih, dW_hh, db
 *   attention  q = hs Wq^T + bq (T,N,K); kx, vx = xe Wk^T + bk, xe Wv^T + bv (Te,N,K)
 *              position (t,b) attends over ext steps te-wl+1 .. te (te = t+W-1, wl = min(g+1, W))
 *              a = softmax(q.k / sqrt(K)), ctx = sum a v                     backward per position
 *   output     z = [hs ; ctx] (T,N,H+K), u = z Wout^T + bout (T,N,D), ud = u * dropout mask
 *   heads      logits = ud Sc^T + bc over the candidates (all items but OOV, or a sample), CE
 *              against the next item; value: (ud . (w + V[i]) + vb[i] + v0 - g(value))^2 * value_weight
 *
 * Backends. SCALAR: nn_ref's cells step by step, nn_ref's window attention per position (it
 * computes its own k and v for the window, exactly as model_step's scalar path does) and
 * nn_ref's linears in double: the reference. DNNL: oneDNN's RNN training primitives over all T
 * steps, sgemm for every linear and for the logits, and the attention over the batched k and v.
 * Both share the gathers, dropout, softmax/CE and embedding scatters, which are plain loops.
 *
 * Text (model.h): the chunk's item texts (the distinct items of its positions that have one)
 * go through the adaptor as one linear, A = (t - text.b) text.w^T, and are added to the items'
 * embedding rows before dropout (the mask covers the whole content); the events' own texts the
 * same way, added to the RNN's input only (xr: the RNN reads it, the attention reads xe). The
 * scoring rows of the candidates are score.item_emb + a_out(t) for the items with a text. The
 * adaptors' gradients: dW += dA^T (t - b), db -= W^T sum(dA).
 *
 * Parallel loops (OpenMP) only ever give each thread its own rows: the attention runs per user
 * row, whose window entries belong to that row alone; the softmax per position. Every sum that
 * crosses rows (bias and embedding gradients) is a GEMM or a sequential loop, so the result
 * does not depend on the thread count beyond what oneDNN's GEMM does for a fixed count.
 */
#include <math.h>
#include <stdlib.h>

#include "nn_ref.h"
#include "train_internal.h"
#include "vec.h"

static int32_t *ialloc(size_t n) { return calloc(n ? n : 1, sizeof(int32_t)); }

#define P(s, k) ((s)->m->t[k].data)

void seq_ctx_free(seq_ctx *s) {
    if (!s) return;
    nn_rnn_train_free(s->rnn);
    seq_lru_free(s->lru);
    seq_tf_free(s->tf);
    float *f[] = {s->xe, s->mask_e, s->h0, s->c0, s->hT, s->cT, s->hs, s->cs, s->gates, s->ghs, s->gx, s->q,
                  s->kx, s->vx, s->att, s->z, s->u, s->mask_u, s->ud, s->dxe, s->dx_rnn, s->dhs, s->dq, s->dkx,
                  s->dvx, s->dz, s->du, s->ones, s->ub, s->dub, s->logits, s->rowloss, s->sc_w, s->sc_b,
                  s->dsc_w, s->dsc_b, s->scratch};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
    int32_t *ip[] = {s->item_e, s->act_e, s->wl, s->pos, s->tgt, s->cand, s->cmap};
    for (size_t i = 0; i < sizeof ip / sizeof ip[0]; i++) free(ip[i]);
    float *tf[] = {s->txb, s->ain, s->dain, s->etb, s->aev, s->daev, s->xr, s->sc_eff, s->dsc_eff, s->txo, s->aout, s->tsum};
    for (size_t i = 0; i < sizeof tf / sizeof tf[0]; i++) free(tf[i]);
    free(s->tmap), free(s->titem), free(s->epos), free(s->ocol), free(s->cold), free(s->bc_eff), free(s->dbc_eff);
    free(s);
}

int seq_ctx_new(seq_ctx **out, const model *m, const train_data *d, const float *feat, model_backend backend,
                int max_rows, int max_steps, int negatives, char *err, size_t errlen) {
    *out = NULL;
    seq_ctx *s = calloc(1, sizeof *s);
    if (!s) return model_errf(err, errlen, "trainer: out of memory");
    const model_config *c = &m->cfg;
    s->m = m, s->d = d, s->feat = feat, s->backend = backend;
    s->E = c->item_dim, s->A = c->action_dim, s->I = model_input_dim(c), s->H = c->hidden, s->K = c->attn_dim;
    s->D = c->out_dim, s->W = c->window, s->G = model_gates(c), s->lstm = c->cell == MODEL_CELL_LSTM;
    s->n_items = c->n_items;
    s->maxN = pad8(max_rows), s->maxT = pad8(max_steps);
    const size_t N = (size_t)s->maxN, T = (size_t)s->maxT, Te = T + (size_t)s->W - 1, I = (size_t)s->I;
    const size_t H = (size_t)s->H, K = (size_t)s->K, D = (size_t)s->D, W = (size_t)s->W, G = (size_t)s->G;
    size_t C = (size_t)(s->n_items > 1 ? s->n_items - 1 : 1);
    if (negatives > 0 && (size_t)negatives + T * N < C) C = (size_t)negatives + T * N;
    s->xe = model_falloc(Te * N * I), s->mask_e = model_falloc(Te * N * (size_t)(s->E + s->A));
    s->item_e = ialloc(Te * N), s->act_e = ialloc(Te * N);
    s->h0 = model_falloc(N * H), s->c0 = model_falloc(N * H), s->hT = model_falloc(N * H), s->cT = model_falloc(N * H);
    s->hs = model_falloc(T * N * H);
    s->q = model_falloc(T * N * K), s->kx = model_falloc(Te * N * K), s->vx = model_falloc(Te * N * K);
    s->att = model_falloc(T * N * W), s->wl = ialloc(T * N), s->z = model_falloc(T * N * (H + K));
    s->u = model_falloc(T * N * D), s->mask_u = model_falloc(T * N * D), s->ud = model_falloc(T * N * D);
    s->dxe = model_falloc(Te * N * I), s->dx_rnn = model_falloc(T * N * I), s->dhs = model_falloc(T * N * H);
    s->dq = model_falloc(T * N * K), s->dkx = model_falloc(Te * N * K), s->dvx = model_falloc(Te * N * K);
    s->dz = model_falloc(T * N * (H + K)), s->du = model_falloc(T * N * D);
    s->ones = model_falloc(Te * N > SEQ_BLK ? Te * N : SEQ_BLK);
    s->pos = ialloc(T * N), s->tgt = ialloc(T * N);
    s->blk = (int)(SEQ_LOGITS_MAX / C < SEQ_BLK ? SEQ_LOGITS_MAX / C : SEQ_BLK);
    if (s->blk < 1) s->blk = 1;
    const size_t BLK = (size_t)s->blk;
    s->ub = model_falloc(BLK * D), s->dub = model_falloc(BLK * D), s->logits = model_falloc(BLK * C);
    s->rowloss = model_falloc(BLK);
    int ok = s->xe && s->mask_e && s->item_e && s->act_e && s->h0 && s->c0 && s->hT && s->cT && s->hs && s->q &&
             s->kx && s->vx && s->att && s->wl && s->z && s->u && s->mask_u && s->ud && s->dxe && s->dx_rnn &&
             s->dhs && s->dq && s->dkx && s->dvx && s->dz && s->du && s->ones && s->pos && s->tgt && s->ub &&
             s->dub && s->logits && s->rowloss;
    if (negatives > 0) {
        s->cand = ialloc(C), s->cmap = ialloc((size_t)s->n_items);
        s->sc_w = model_falloc(C * D), s->sc_b = model_falloc(C), s->dsc_w = model_falloc(C * D), s->dsc_b = model_falloc(C);
        ok = ok && s->cand && s->cmap && s->sc_w && s->sc_b && s->dsc_w && s->dsc_b;
    }
    s->T = c->text_dim;
    if (s->T > 0) {
        const size_t TT = (size_t)s->T, NI = (size_t)s->n_items, E = (size_t)s->E;
        int event_texts = 0;
        for (int64_t i = 0; i < d->start[d->n_users] && !event_texts; i++) event_texts = d->ev[i].event_text != NULL;
        s->text_cap = (int)(NI < Te * N ? NI : Te * N);
        s->tmap = ialloc(NI), s->titem = ialloc((size_t)s->text_cap);
        s->txb = model_falloc((size_t)s->text_cap * TT), s->ain = model_falloc((size_t)s->text_cap * E);
        s->dain = model_falloc((size_t)s->text_cap * E), s->tsum = model_falloc(E > D ? E : D);
        ok = ok && s->tmap && s->titem && s->txb && s->ain && s->dain && s->tsum;
        if (ok) for (size_t i = 0; i < NI; i++) s->tmap[i] = -1;
        if (event_texts) {
            s->ev_cap = (int)(T * N);
            s->epos = ialloc(T * N), s->etb = model_falloc(T * N * TT), s->aev = model_falloc(T * N * E), s->daev = model_falloc(T * N * E);
            s->xr = model_falloc(T * N * I);
            ok = ok && s->epos && s->etb && s->aev && s->daev && s->xr;
        }
        /* the output adaptor: every candidate's row (full softmax: all items; sampled: C) */
        size_t rows = C < NI ? C : NI;
        s->sc_eff = model_falloc(C * D), s->dsc_eff = model_falloc(C * D), s->ocol = ialloc(rows);
        s->txo = model_falloc(rows * TT), s->aout = model_falloc(rows * D);
        s->cold = calloc(NI, 1), s->bc_eff = model_falloc(C), s->dbc_eff = model_falloc(C);
        ok = ok && s->sc_eff && s->dsc_eff && s->ocol && s->txo && s->aout && s->cold && s->bc_eff && s->dbc_eff;
    }
    if (c->attn == MODEL_ATTN_TF) ok = ok && seq_tf_new(&s->tf, m, s->maxN, s->maxT) == 0;
    if (c->cell == MODEL_CELL_LRU || c->cell == MODEL_CELL_NONE) {
        ok = ok && seq_lru_new(&s->lru, m, s->maxN, s->maxT) == 0;
        if (backend == MODEL_BACKEND_SCALAR) { /* the scalar attention's scratch only */
            s->scratch = model_falloc(2 * W * I + 2 * W * K + W + K);
            ok = ok && s->scratch;
        }
    } else if (backend == MODEL_BACKEND_SCALAR) {
        s->cs = model_falloc(T * N * H), s->gates = model_falloc(T * N * G * H), s->ghs = model_falloc(T * N * 3 * H);
        s->gx = model_falloc(N * 3 * H);
        /* per position: xs, dxs (W,I); k, v (W,K); a (W); q (K); rnn: 4 (N,H) carries */
        s->scratch = model_falloc(2 * W * I + 2 * W * K + W + K + 4 * N * H);
        ok = ok && s->cs && s->gates && s->ghs && s->gx && s->scratch;
    }
    if (!ok) {
        seq_ctx_free(s);
        return model_errf(err, errlen, "trainer: out of memory for a %zu x %zu chunk", N, T);
    }
    for (size_t i = 0; i < (Te * N > SEQ_BLK ? Te * N : SEQ_BLK); i++) s->ones[i] = 1.0f;
    if (backend == MODEL_BACKEND_DNNL && !s->lru && nn_rnn_train_new(&s->rnn, s->lstm, s->I, s->H, err, errlen)) {
        seq_ctx_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

float *train_features(const train_data *d) {
    int64_t n = d->start[d->n_users];
    float *f = malloc((size_t)(n > 0 ? n : 1) * MODEL_FEATURES * sizeof *f);
    if (!f) return NULL;
    for (int u = 0; u < d->n_users; u++) {
        int64_t events = 0, last_ts = 0;
        for (int64_t i = d->start[u]; i < d->start[u + 1]; i++) {
            model_event_features(&d->ev[i], events, last_ts, f + i * MODEL_FEATURES);
            events++;
            last_ts = d->ev[i].ts; /* the state keeps the ts of the last event applied */
        }
    }
    return f;
}

void seq_reset_state(seq_ctx *s) {
    if (s->lru) seq_lru_reset(s->lru);
    memset(s->h0, 0, (size_t)s->maxN * s->H * sizeof(float));
    memset(s->c0, 0, (size_t)s->maxN * s->H * sizeof(float));
}

void seq_carry(seq_ctx *s, int N_next) {
    if (s->lru) seq_lru_carry(s->lru, N_next);
    if (s->tf) seq_tf_carry(s->tf, N_next);
    memcpy(s->h0, s->hT, (size_t)N_next * s->H * sizeof(float));
    if (s->lstm) memcpy(s->c0, s->cT, (size_t)N_next * s->H * sizeof(float));
}

/* ---- the text adaptors ----------------------------------------------------------------------- */

static inline int64_t ev_index(const seq_ctx *s, const seq_chunk *ch, int b, long g);

/* The adaptor's backward: dW (OUT,T) += dA^T X, db (T) -= W^T sum_rows(dA), dA (n, OUT), X = t - b (n, T). */
static int adapt_bwd(seq_ctx *s, float *dW, float *db, const float *dA, const float *X, const float *W, int n, int T,
                     int OUT) {
    if (n == 0) return 0;
    if (seq_lin_bwd(s, NULL, dW, NULL, dA, X, W, n, T, OUT)) return -1;
    for (int o = 0; o < OUT; o++) {
        double acc = 0;
        for (int r = 0; r < n; r++) acc += dA[(size_t)r * OUT + o];
        s->tsum[o] = (float)acc;
    }
    for (int k = 0; k < T; k++) {
        double acc = 0;
        for (int o = 0; o < OUT; o++) acc += (double)W[(size_t)o * T + k] * s->tsum[o];
        db[k] -= (float)acc;
    }
    return 0;
}

/* The chunk's item texts: rows for the distinct items of its positions that have a text, and
 * a(t) of each (s->ain). Resets the previous chunk's map first. */
static int chunk_item_texts(seq_ctx *s, const seq_chunk *ch) {
    const int N = ch->N, W = s->W, Te = ch->T + W - 1, TT = s->T;
    for (int r = 0; r < s->ntext; r++) s->tmap[s->titem[r]] = -1;
    s->ntext = 0;
    if (!s->d->item_text) return 0;
    for (int te = 0; te < Te; te++)
        for (int b = 0; b < ch->n; b++) {
            long g = ch->c0 - (W - 1) + te;
            if (g < 0 || g >= ch->len[b]) continue;
            int it = s->d->ev[ev_index(s, ch, b, g)].item;
            if (it < 0 || it >= s->n_items || !s->d->item_has_text[it] || s->tmap[it] >= 0) continue;
            if (s->ntext == s->text_cap) return -1;
            const float *t = s->d->item_text + (size_t)it * TT, *bb = P(s, T_TEXT_B);
            float *x = s->txb + (size_t)s->ntext * TT;
            for (int k = 0; k < TT; k++) x[k] = t[k] - bb[k];
            s->tmap[it] = s->ntext;
            s->titem[s->ntext++] = it;
        }
    (void)N;
    return seq_lin_fwd(s, s->ain, s->txb, P(s, T_TEXT_W), NULL, s->ntext, TT, s->E);
}

/* ---- forward ----------------------------------------------------------------------------- */

/* The event of row b at global position g (g >= 0 and < len). */
static inline int64_t ev_index(const seq_ctx *s, const seq_chunk *ch, int b, long g) {
    return s->d->start[ch->users[b]] + g;
}

static int rnn_forward(seq_ctx *s, const seq_chunk *ch, rng_t *rng, char *err, size_t errlen) {
    const model *m = s->m;
    const int N = ch->N, T = ch->T, I = s->I, H = s->H, W = s->W;
    const float *x0 = s->xrnn;
    (void)W;
    if (s->lru) return seq_lru_forward(s, ch, rng, err, errlen);
    if (s->backend == MODEL_BACKEND_DNNL) {
        if (nn_rnn_train_set_weights(s->rnn, P(s, T_W_IH), P(s, T_W_HH), P(s, T_B_IH), P(s, T_B_HH), err, errlen))
            return -1;
        return nn_rnn_train_forward(s->rnn, T, N, x0, s->h0, s->lstm ? s->c0 : NULL, s->hs, s->hT,
                                    s->lstm ? s->cT : NULL, err, errlen);
    }
    for (int t = 0; t < T; t++) {
        const float *x = x0 + (size_t)t * N * I;
        const float *hp = t ? s->hs + (size_t)(t - 1) * N * H : s->h0;
        float *ho = s->hs + (size_t)t * N * H;
        if (s->lstm) {
            const float *cp = t ? s->cs + (size_t)(t - 1) * N * H : s->c0;
            lstm_cell_forward(ho, s->cs + (size_t)t * N * H, s->gates + (size_t)t * N * 4 * H, x, hp, cp, P(s, T_W_IH),
                              P(s, T_W_HH), P(s, T_B_IH), P(s, T_B_HH), N, I, H);
        } else {
            gru_cell_forward(ho, s->gx, s->ghs + (size_t)t * N * 3 * H, s->gates + (size_t)t * N * 3 * H, x, hp,
                             P(s, T_W_IH), P(s, T_W_HH), P(s, T_B_IH), P(s, T_B_HH), N, I, H);
        }
    }
    memcpy(s->hT, s->hs + (size_t)(T - 1) * N * H, (size_t)N * H * sizeof(float));
    if (s->lstm) memcpy(s->cT, s->cs + (size_t)(T - 1) * N * H, (size_t)N * H * sizeof(float));
    (void)m;
    return 0;
}

/* Scalar attention of one position: the window's inputs gathered oldest first into xs. */
static void gather_window(const seq_ctx *s, const seq_chunk *ch, int t, int b, int wl, float *xs) {
    const int N = ch->N, I = s->I, te = t + s->W - 1;
    for (int j = 0; j < wl; j++) memcpy(xs + (size_t)j * I, s->xe + ((size_t)(te - wl + 1 + j) * N + b) * I, (size_t)I * sizeof(float));
}

static void attention_forward(seq_ctx *s, const seq_chunk *ch) {
    const int N = ch->N, T = ch->T, H = s->H, K = s->K, W = s->W, I = s->I;
    const float scale = (float)(1.0 / sqrt((double)K));
    if (s->backend == MODEL_BACKEND_SCALAR) {
        float *xs = s->scratch, *k = xs + 2 * (size_t)W * I, *v = k + (size_t)W * K, *a = v + (size_t)W * K, *q = a + W;
        for (int t = 0; t < T; t++)
            for (int b = 0; b < N; b++) {
                size_t p = (size_t)t * N + b;
                int wl = s->wl[p];
                float *zp = s->z + p * (H + K);
                memcpy(zp, s->hs + p * H, (size_t)H * sizeof(float));
                if (!wl) {
                    memset(zp + H, 0, (size_t)K * sizeof(float));
                    continue;
                }
                gather_window(s, ch, t, b, wl, xs);
                window_attention_forward(zp + H, a, q, k, v, s->hs + p * H, xs, wl, P(s, T_W_Q), P(s, T_B_Q),
                                         P(s, T_W_K), P(s, T_B_K), P(s, T_W_V), P(s, T_B_V), H, I, K);
                memcpy(s->att + p * W, a, (size_t)wl * sizeof(float));
            }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < N; b++) {
        for (int t = 0; t < T; t++) {
            size_t p = (size_t)t * N + b;
            int wl = s->wl[p], te = t + W - 1;
            float *zp = s->z + p * (H + K), *ctx = zp + H, *a = s->att + p * W;
            memcpy(zp, s->hs + p * H, (size_t)H * sizeof(float));
            memset(ctx, 0, (size_t)K * sizeof(float));
            if (!wl) continue;
            const float *q = s->q + p * K;
            float mx = -INFINITY, sum = 0;
            for (int j = 0; j < wl; j++) {
                size_t pe = (size_t)(te - wl + 1 + j) * N + b;
                a[j] = dotf(q, s->kx + pe * K, K) * scale;
                mx = a[j] > mx ? a[j] : mx;
            }
            for (int j = 0; j < wl; j++) sum += (a[j] = expf(a[j] - mx));
            float inv = 1.0f / sum;
            for (int j = 0; j < wl; j++) {
                a[j] *= inv;
                axpyf(ctx, a[j], s->vx + ((size_t)(te - wl + 1 + j) * N + b) * K, K);
            }
        }
    }
}

int seq_forward(seq_ctx *s, const seq_chunk *ch, double dropout, rng_t *rng, char *err, size_t errlen) {
    const model *m = s->m;
    const int N = ch->N, T = ch->T, W = s->W, Te = T + W - 1, E = s->E, A = s->A, I = s->I, EA = E + A;
    const int H = s->H, K = s->K, D = s->D;
    if (N > s->maxN || T > s->maxT || ch->n > N) return model_errf(err, errlen, "trainer: chunk %dx%d too big", N, T);
    const float keep = dropout > 0 ? (float)(1.0 / (1.0 - dropout)) : 1.0f;
    s->mask_valid = dropout > 0;
    if (s->T > 0 && chunk_item_texts(s, ch)) return model_errf(err, errlen, "trainer: item texts of a chunk");
    /* item dropout (cold_dropout): this step's "new" items, among those with a text */
    s->cold_on = s->T > 0 && s->cold_p > 0 && s->d->item_has_text && rng;
    for (int i = 1; s->cold_on && i < s->n_items; i++)
        s->cold[i] = s->d->item_has_text[i] && rng_uniform(rng) < s->cold_p;
    /* 1. inputs */
    for (int te = 0; te < Te; te++)
        for (int b = 0; b < N; b++) {
            size_t pe = (size_t)te * N + b;
            long g = ch->c0 - (W - 1) + te;
            float *x = s->xe + pe * I;
            if (b >= ch->n || g < 0 || g >= ch->len[b]) {
                memset(x, 0, (size_t)I * sizeof(float));
                s->item_e[pe] = s->act_e[pe] = -1;
                continue;
            }
            int64_t ei = ev_index(s, ch, b, g);
            const model_event *ev = &s->d->ev[ei];
            s->item_e[pe] = ev->item, s->act_e[pe] = ev->action;
            if (s->cold_on && s->cold[ev->item]) memset(x, 0, (size_t)E * sizeof(float)); /* a "new" item: no id row */
            else memcpy(x, P(s, T_ITEM_EMB) + (size_t)ev->item * E, (size_t)E * sizeof(float));
            if (s->T > 0 && s->tmap[ev->item] >= 0) axpyf(x, 1.0f, s->ain + (size_t)s->tmap[ev->item] * E, E);
            memcpy(x + E, P(s, T_ACTION_EMB) + (size_t)ev->action * A, (size_t)A * sizeof(float));
            memcpy(x + EA, s->feat + ei * MODEL_FEATURES, MODEL_FEATURES * sizeof(float));
            if (dropout > 0) {
                float *mk = s->mask_e + pe * EA;
                for (int k = 0; k < EA; k++) {
                    mk[k] = rng_uniform(rng) < dropout ? 0.0f : keep;
                    x[k] *= mk[k];
                }
            }
        }
    for (int t = 0; t < T; t++)
        for (int b = 0; b < N; b++) {
            long g = ch->c0 + t;
            s->wl[(size_t)t * N + b] = b < ch->n && g < ch->len[b] ? (int)(g + 1 < W ? g + 1 : W) : 0;
        }
    /* 1b. the events' own texts: x_t = x~_t + [mask * a(t_event) ; 0 ; 0] for the RNN only */
    s->xrnn = s->xe + (size_t)(W - 1) * N * I;
    s->nev = 0;
    if (s->xr) {
        const int TT = s->T;
        const float *bb = P(s, T_TEXT_B);
        for (int t = 0; t < T; t++)
            for (int b = 0; b < ch->n; b++) {
                long g = ch->c0 + t;
                if (g >= ch->len[b]) continue;
                const float *et = s->d->ev[ev_index(s, ch, b, g)].event_text;
                if (!et) continue;
                float *x = s->etb + (size_t)s->nev * TT;
                for (int k = 0; k < TT; k++) x[k] = et[k] - bb[k];
                s->epos[s->nev++] = t * N + b;
            }
        if (s->nev) {
            if (seq_lin_fwd(s, s->aev, s->etb, P(s, T_TEXT_W), NULL, s->nev, TT, E))
                return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
            memcpy(s->xr, s->xrnn, (size_t)T * N * I * sizeof(float));
            for (int k = 0; k < s->nev; k++) {
                size_t p = (size_t)s->epos[k], pe = p + (size_t)(W - 1) * N;
                float *x = s->xr + p * I;
                const float *a = s->aev + (size_t)k * E, *mk = s->mask_e + pe * EA;
                for (int j = 0; j < E; j++) x[j] += dropout > 0 ? a[j] * mk[j] : a[j];
            }
            s->xrnn = s->xr;
        }
    }
    /* 2. rnn */
    if (rnn_forward(s, ch, rng, err, errlen)) return -1;
    /* 3. attention and 4. output: the transformer blocks, or the window attention */
    if (s->tf) {
        if (seq_tf_forward(s, ch, rng, err, errlen)) return -1;
    } else if (s->backend == MODEL_BACKEND_DNNL &&
        (seq_lin_fwd(s, s->q, s->hs, P(s, T_W_Q), P(s, T_B_Q), (long)T * N, H, K) ||
         seq_lin_fwd(s, s->kx, s->xe, P(s, T_W_K), P(s, T_B_K), (long)Te * N, I, K) ||
         seq_lin_fwd(s, s->vx, s->xe, P(s, T_W_V), P(s, T_B_V), (long)Te * N, I, K)))
        return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
    if (!s->tf) {
        attention_forward(s, ch);
        if (seq_lin_fwd(s, s->u, s->z, P(s, T_OUT_W), P(s, T_OUT_B), (long)T * N, H + K, D))
            return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
    }
    size_t TN = (size_t)T * N;
    if (dropout > 0) {
        for (size_t p = 0; p < TN; p++) {
            float *mk = s->mask_u + p * D, *ud = s->ud + p * D;
            const float *u = s->u + p * D;
            if (!s->wl[p]) {
                memset(ud, 0, (size_t)D * sizeof(float));
                continue;
            }
            for (int k = 0; k < D; k++) {
                mk[k] = rng_uniform(rng) < dropout ? 0.0f : keep;
                ud[k] = u[k] * mk[k];
            }
        }
    } else {
        memcpy(s->ud, s->u, TN * D * sizeof(float));
    }
    (void)m;
    return 0;
}

/* ---- heads ------------------------------------------------------------------------------- */

/* One row of logits l (C) -> l = (softmax(l) - onehot(col)) * inv; returns -log softmax(l)[col].
 * Cloned for AVX-512 / AVX2 / baseline and picked at load time (the build targets plain x86-64). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static float softmax_xent_row(float *restrict l, int C, int col, float inv) {
    float mx = l[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < C; j++) mx = l[j] > mx ? l[j] : mx;
    const float lt = l[col] - mx;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < C; j++) {
        l[j] = exp_poly(l[j] - mx);
        sum += l[j];
    }
    const float sc = inv / sum;
#pragma omp simd
    for (int j = 0; j < C; j++) l[j] *= sc;
    l[col] -= inv;
    return logf(sum) - lt;
}

int seq_heads(seq_ctx *s, const seq_chunk *ch, const train_config *c, rng_t *rng, float *grad, double *loss,
              double *value_se, long *n_value, long *n_targets, char *err, size_t errlen) {
    const model *m = s->m;
    const int N = ch->N, T = ch->T, D = s->D, n_items = s->n_items;
    const int value_head = c->value_weight > 0 && (model_heads(m) & MODEL_HEAD_VALUE);
    *loss = 0, *value_se = 0, *n_value = 0, *n_targets = 0;
    memset(s->du, 0, (size_t)T * N * D * sizeof(float));
    if (!(model_heads(m) & MODEL_HEAD_SCORE)) return model_errf(err, errlen, "trainer: the model has no scoring head");
    /* target positions, row-major within steps */
    long np = 0;
    for (int t = 0; t < T && ch->targets; t++)
        for (int b = 0; b < ch->n; b++) {
            size_t p = (size_t)t * N + b;
            if (!s->wl[p]) continue;
            int item = s->d->ev[ev_index(s, ch, b, ch->c0 + t) + 1].item;
            if (item <= 0 || item >= n_items) continue; /* an OOV next item is no target */
            s->pos[np] = (int32_t)p;
            s->tgt[np] = item;
            np++;
        }
    *n_targets = np;
    if (np == 0) return 0;
    const float inv = (float)(1.0 / (double)np);
    /* candidates: every item but OOV, or the chunk's targets plus uniform negatives */
    int C;
    const float *Wc, *bc;
    float *dWc, *dbc;
    const int sampled = c->loss == TRAIN_LOSS_SAMPLED && c->negatives > 0 && c->negatives + np < n_items - 1;
    if (!sampled) {
        C = n_items - 1;
        Wc = P(s, T_SCORE_EMB) + D, bc = P(s, T_SCORE_BIAS) + 1;
        dWc = GRAD(s, grad, T_SCORE_EMB) + D, dbc = GRAD(s, grad, T_SCORE_BIAS) + 1;
        if (s->T > 0) { /* the rows get a_out(t) (below): a copy, and the gradient apart */
            memcpy(s->sc_eff, Wc, (size_t)C * D * sizeof(float));
            memset(s->dsc_eff, 0, (size_t)C * D * sizeof(float));
            Wc = s->sc_eff, dWc = s->dsc_eff;
        }
    } else {
        if (!s->cand) return model_errf(err, errlen, "trainer: sampled softmax without its buffers");
        for (int i = 0; i < n_items; i++) s->cmap[i] = -1;
        C = 0;
        for (long r = 0; r < np; r++)
            if (s->cmap[s->tgt[r]] < 0) s->cmap[s->tgt[r]] = C, s->cand[C++] = s->tgt[r];
        for (int k = 0; k < c->negatives; k++) { /* with replacement; duplicates and hits fold in */
            int it = 1 + (int)(rng_uniform(rng) * (n_items - 1));
            if (s->cmap[it] < 0) s->cmap[it] = C, s->cand[C++] = it;
        }
        for (int j = 0; j < C; j++) {
            int cold = s->cold_on && s->cold[s->cand[j]];
            if (cold) memset(s->sc_w + (size_t)j * D, 0, (size_t)D * sizeof(float));
            else memcpy(s->sc_w + (size_t)j * D, P(s, T_SCORE_EMB) + (size_t)s->cand[j] * D, (size_t)D * sizeof(float));
            s->sc_b[j] = P(s, T_SCORE_BIAS)[cold ? 0 : s->cand[j]];
        }
        memset(s->dsc_w, 0, (size_t)C * D * sizeof(float));
        memset(s->dsc_b, 0, (size_t)C * sizeof(float));
        Wc = s->sc_w, bc = s->sc_b, dWc = s->dsc_w, dbc = s->dsc_b;
    }
    if (!sampled && s->cold_on) { /* "new" items: no id row, the cold-item bias */
        memcpy(s->bc_eff, bc, (size_t)C * sizeof(float));
        memset(s->dbc_eff, 0, (size_t)C * sizeof(float));
        for (int j = 0; j < C; j++)
            if (s->cold[j + 1]) {
                memset(s->sc_eff + (size_t)j * D, 0, (size_t)D * sizeof(float));
                s->bc_eff[j] = P(s, T_SCORE_BIAS)[0];
            }
        bc = s->bc_eff, dbc = s->dbc_eff;
    }
    /* text: S_i = score.item_emb[i] + a_out(t_i) for the candidates with a text */
    s->nout = 0;
    if (s->T > 0 && s->d->item_text) {
        const int TT = s->T;
        const float *bo = P(s, T_SCORE_TEXT_B);
        for (int j = 0; j < C; j++) {
            int it = sampled ? s->cand[j] : j + 1;
            if (!s->d->item_has_text[it]) continue;
            const float *t = s->d->item_text + (size_t)it * TT;
            float *x = s->txo + (size_t)s->nout * TT;
            for (int k = 0; k < TT; k++) x[k] = t[k] - bo[k];
            s->ocol[s->nout++] = j;
        }
        if (seq_lin_fwd(s, s->aout, s->txo, P(s, T_SCORE_TEXT_W), NULL, s->nout, TT, D))
            return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
        for (int r = 0; r < s->nout; r++) axpyf((float *)Wc + (size_t)s->ocol[r] * D, 1.0f, s->aout + (size_t)r * D, D);
    }
    const float *V = value_head ? P(s, T_VALUE_EMB) : NULL, *vb = value_head ? P(s, T_VALUE_BIAS) : NULL;
    const float v0 = value_head ? P(s, T_VALUE_B)[0] : 0.0f, lambda = (float)c->value_weight;
    float *dV = value_head ? GRAD(s, grad, T_VALUE_EMB) : NULL, *dvb = value_head ? GRAD(s, grad, T_VALUE_BIAS) : NULL;
    float *dv0 = value_head ? GRAD(s, grad, T_VALUE_B) : NULL;
    const float *vw = value_head ? P(s, T_VALUE_W) : NULL;
    float *dvw = value_head ? GRAD(s, grad, T_VALUE_W) : NULL;

    double total = 0;
    for (long r0 = 0; r0 < np; r0 += s->blk) {
        const int nb = (int)(np - r0 < s->blk ? np - r0 : s->blk);
        for (int r = 0; r < nb; r++) memcpy(s->ub + (size_t)r * D, s->ud + (size_t)s->pos[r0 + r] * D, (size_t)D * sizeof(float));
        if (seq_lin_fwd(s, s->logits, s->ub, Wc, bc, nb, D, C)) return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
        /* softmax cross-entropy, row by row; logits become dloss/dlogits. mask_seen: the items of
         * the user's inputs so far (but the target) leave the softmax: -inf in, zero gradient out. */
#pragma omp parallel for schedule(static)
        for (int r = 0; r < nb; r++) {
            int col = sampled ? s->cmap[s->tgt[r0 + r]] : s->tgt[r0 + r] - 1;
            float *l = s->logits + (size_t)r * C;
            const model_event *hist = NULL;
            long nh = 0;
            if (c->mask_seen) {
                size_t p = (size_t)s->pos[r0 + r];
                int b = (int)(p % (size_t)N);
                hist = s->d->ev + s->d->start[ch->users[b]];
                nh = ch->c0 + (long)(p / (size_t)N) + 1;
                for (long i = 0; i < nh; i++) {
                    int it = hist[i].item, hc = it <= 0 || it >= n_items ? -1 : sampled ? s->cmap[it] : it - 1;
                    if (hc >= 0 && hc != col) l[hc] = -INFINITY;
                }
            }
            s->rowloss[r] = softmax_xent_row(l, C, col, inv);
            for (long i = 0; i < nh; i++) {
                int it = hist[i].item, hc = it <= 0 || it >= n_items ? -1 : sampled ? s->cmap[it] : it - 1;
                if (hc >= 0 && hc != col) l[hc] = 0.0f;
            }
        }
        for (int r = 0; r < nb; r++) total += s->rowloss[r];
        memset(s->dub, 0, (size_t)nb * D * sizeof(float));
        if (value_head)
            for (int r = 0; r < nb; r++) {
                size_t p = (size_t)s->pos[r0 + r];
                int t = (int)(p / (size_t)N), b = (int)(p % (size_t)N);
                const float *ft = s->feat + (ev_index(s, ch, b, ch->c0 + t) + 1) * MODEL_FEATURES;
                if (ft[2] == 0.0f) continue; /* the next event has no value */
                int it = s->tgt[r0 + r];
                const float *ub = s->ub + (size_t)r * D, *vi = V + (size_t)it * D;
                float e = dotf(ub, vi, D) + dotf(ub, vw, D) + vb[it] + v0 - ft[1];
                total += (double)lambda * e * e;
                *value_se += (double)e * e;
                (*n_value)++;
                float dp = 2.0f * lambda * e * inv;
                axpyf(s->dub + (size_t)r * D, dp, vi, D);
                axpyf(s->dub + (size_t)r * D, dp, vw, D);
                axpyf(dV + (size_t)it * D, dp, ub, D);
                axpyf(dvw, dp, ub, D);
                dvb[it] += dp;
                *dv0 += dp;
            }
        if (seq_lin_bwd(s, s->dub, dWc, dbc, s->logits, s->ub, Wc, nb, D, C))
            return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
        for (int r = 0; r < nb; r++) {
            size_t p = (size_t)s->pos[r0 + r];
            float *du = s->du + p * D;
            const float *g = s->dub + (size_t)r * D, *mk = s->mask_u + p * D;
            if (!s->mask_valid) memcpy(du, g, (size_t)D * sizeof(float));
            else
                for (int k = 0; k < D; k++) du[k] = g[k] * mk[k];
        }
    }
    if (s->nout) { /* dA_out = dS at the text rows */
        for (int r = 0; r < s->nout; r++)
            memcpy(s->aout + (size_t)r * D, dWc + (size_t)s->ocol[r] * D, (size_t)D * sizeof(float));
        if (adapt_bwd(s, GRAD(s, grad, T_SCORE_TEXT_W), GRAD(s, grad, T_SCORE_TEXT_B), s->aout, s->txo,
                      P(s, T_SCORE_TEXT_W), s->nout, s->T, D))
            return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
    }
    float *dsb = GRAD(s, grad, T_SCORE_BIAS);
    if (sampled)
        for (int j = 0; j < C; j++) {
            int cold = s->cold_on && s->cold[s->cand[j]];
            if (!cold) axpyf(GRAD(s, grad, T_SCORE_EMB) + (size_t)s->cand[j] * D, 1.0f, s->dsc_w + (size_t)j * D, D);
            dsb[cold ? 0 : s->cand[j]] += s->dsc_b[j];
        }
    else if (s->T > 0) {
        if (s->cold_on)
            for (int j = 0; j < C; j++) {
                if (s->cold[j + 1]) memset(s->dsc_eff + (size_t)j * D, 0, (size_t)D * sizeof(float));
                dsb[s->cold[j + 1] ? 0 : j + 1] += s->dbc_eff[j];
            }
        axpyf(GRAD(s, grad, T_SCORE_EMB) + D, 1.0f, s->dsc_eff, C * D);
    }
    *loss = total * inv;
    return 0;
}

/* ---- backward ---------------------------------------------------------------------------- */

static void attention_backward(seq_ctx *s, const seq_chunk *ch, float *grad) {
    const int N = ch->N, T = ch->T, H = s->H, K = s->K, W = s->W, I = s->I;
    const float scale = (float)(1.0 / sqrt((double)K));
    if (s->backend == MODEL_BACKEND_SCALAR) {
        float *xs = s->scratch, *dxs = xs + (size_t)W * I, *k = dxs + (size_t)W * I, *v = k + (size_t)W * K;
        float *a = v + (size_t)W * K, *q = a + W;
        float ctx[4096];
        for (int t = 0; t < T; t++)
            for (int b = 0; b < N; b++) {
                size_t p = (size_t)t * N + b;
                int wl = s->wl[p], te = t + W - 1;
                if (!wl) continue;
                gather_window(s, ch, t, b, wl, xs);
                window_attention_forward(ctx, a, q, k, v, s->hs + p * H, xs, wl, P(s, T_W_Q), P(s, T_B_Q), P(s, T_W_K),
                                         P(s, T_B_K), P(s, T_W_V), P(s, T_B_V), H, I, K);
                memset(dxs, 0, (size_t)wl * I * sizeof(float));
                window_attention_backward(s->dhs + p * H, dxs, GRAD(s, grad, T_W_Q), GRAD(s, grad, T_B_Q),
                                          GRAD(s, grad, T_W_K), GRAD(s, grad, T_B_K), GRAD(s, grad, T_W_V),
                                          GRAD(s, grad, T_B_V), s->dz + p * (H + K) + H, a, q, k, v, s->hs + p * H, xs,
                                          wl, P(s, T_W_Q), P(s, T_W_K), P(s, T_W_V), H, I, K);
                for (int j = 0; j < wl; j++)
                    axpyf(s->dxe + ((size_t)(te - wl + 1 + j) * N + b) * I, 1.0f, dxs + (size_t)j * I, I);
            }
        return;
    }
    memset(s->dq, 0, (size_t)T * N * K * sizeof(float));
    memset(s->dkx, 0, (size_t)(T + W - 1) * N * K * sizeof(float));
    memset(s->dvx, 0, (size_t)(T + W - 1) * N * K * sizeof(float));
#pragma omp parallel for schedule(static)
    for (int b = 0; b < N; b++) {
        float da[1024];
        for (int t = 0; t < T; t++) {
            size_t p = (size_t)t * N + b;
            int wl = s->wl[p], te = t + W - 1;
            if (!wl) continue;
            const float *dctx = s->dz + p * (H + K) + H, *a = s->att + p * W, *q = s->q + p * K;
            float dot = 0;
            for (int j = 0; j < wl; j++) {
                size_t pe = (size_t)(te - wl + 1 + j) * N + b;
                da[j] = dotf(dctx, s->vx + pe * K, K);
                dot += a[j] * da[j];
                axpyf(s->dvx + pe * K, a[j], dctx, K);
            }
            float *dq = s->dq + p * K;
            for (int j = 0; j < wl; j++) {
                size_t pe = (size_t)(te - wl + 1 + j) * N + b;
                float ds = a[j] * (da[j] - dot) * scale;
                axpyf(dq, ds, s->kx + pe * K, K);
                axpyf(s->dkx + pe * K, ds, q, K);
            }
        }
    }
}

static int rnn_backward(seq_ctx *s, const seq_chunk *ch, float *grad, char *err, size_t errlen) {
    const int N = ch->N, T = ch->T, I = s->I, H = s->H, W = s->W;
    float *dWih = GRAD(s, grad, T_W_IH), *dWhh = GRAD(s, grad, T_W_HH), *dbih = GRAD(s, grad, T_B_IH),
          *dbhh = GRAD(s, grad, T_B_HH);
    float *dxe0 = s->dxe + (size_t)(W - 1) * N * I;
    if (s->lru || s->backend == MODEL_BACKEND_DNNL) {
        if (s->lru && seq_lru_backward(s, ch, grad, err, errlen)) return -1;
        if (!s->lru && nn_rnn_train_backward(s->rnn, s->dhs, s->dx_rnn, dWih, dWhh, dbih, dbhh, err, errlen)) return -1;
        size_t n = (size_t)T * N * I;
        for (size_t i = 0; i < n; i++) dxe0[i] += s->dx_rnn[i];
        return 0;
    }
    const float *x0 = s->xrnn;
    float *dx_rnn = s->dx_rnn; /* the RNN input's gradient apart: the events' texts need it */
    memset(dx_rnn, 0, (size_t)T * N * I * sizeof(float));
    float *dh_next = s->scratch + 2 * (size_t)W * I + 2 * (size_t)W * s->K + W + s->K;
    float *dc_next = dh_next + (size_t)N * H, *dh_out = dc_next + (size_t)N * H, *dc_prev = dh_out + (size_t)N * H;
    memset(dh_next, 0, (size_t)N * H * sizeof(float));
    memset(dc_next, 0, (size_t)N * H * sizeof(float));
    for (int t = T - 1; t >= 0; t--) {
        const float *x = x0 + (size_t)t * N * I, *hp = t ? s->hs + (size_t)(t - 1) * N * H : s->h0;
        for (size_t i = 0; i < (size_t)N * H; i++) dh_out[i] = s->dhs[(size_t)t * N * H + i] + dh_next[i];
        memset(dh_next, 0, (size_t)N * H * sizeof(float));
        if (s->lstm) {
            const float *cp = t ? s->cs + (size_t)(t - 1) * N * H : s->c0;
            memset(dc_prev, 0, (size_t)N * H * sizeof(float));
            lstm_cell_backward(dx_rnn + (size_t)t * N * I, dh_next, dc_prev, dWih, dWhh, dbih, dbhh, dh_out, dc_next,
                               s->gates + (size_t)t * N * 4 * H, x, hp, cp, P(s, T_W_IH), P(s, T_W_HH), N, I, H);
            memcpy(dc_next, dc_prev, (size_t)N * H * sizeof(float));
        } else {
            gru_cell_backward(dx_rnn + (size_t)t * N * I, dh_next, dWih, dWhh, dbih, dbhh, dh_out,
                              s->ghs + (size_t)t * N * 3 * H, s->gates + (size_t)t * N * 3 * H, x, hp, P(s, T_W_IH),
                              P(s, T_W_HH), N, I, H);
        }
    }
    for (size_t i = 0; i < (size_t)T * N * I; i++) dxe0[i] += dx_rnn[i];
    return 0;
}

int seq_backward(seq_ctx *s, const seq_chunk *ch, float *grad, char *err, size_t errlen) {
    const int N = ch->N, T = ch->T, W = s->W, Te = T + W - 1, E = s->E, A = s->A, EA = E + A, I = s->I;
    const int H = s->H, K = s->K, D = s->D;
    const size_t TN = (size_t)T * N;
    memset(s->dxe, 0, (size_t)Te * N * I * sizeof(float));
    if (s->tf) { /* the transformer blocks and the output: s->du -> s->dhs */
        if (seq_tf_backward(s, ch, grad, err, errlen)) return -1;
    } else { /* output: u = z Wout^T + bout, then the window attention */
        memset(s->dz, 0, TN * (H + K) * sizeof(float));
        if (seq_lin_bwd(s, s->dz, GRAD(s, grad, T_OUT_W), GRAD(s, grad, T_OUT_B), s->du, s->z, P(s, T_OUT_W), (long)TN,
                        H + K, D))
            return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
        for (size_t p = 0; p < TN; p++) memcpy(s->dhs + p * H, s->dz + p * (H + K), (size_t)H * sizeof(float));
        attention_backward(s, ch, grad);
    }
    if (!s->tf && s->backend == MODEL_BACKEND_DNNL &&
        (seq_lin_bwd(s, s->dhs, GRAD(s, grad, T_W_Q), GRAD(s, grad, T_B_Q), s->dq, s->hs, P(s, T_W_Q), (long)TN, H, K) ||
         seq_lin_bwd(s, s->dxe, GRAD(s, grad, T_W_K), GRAD(s, grad, T_B_K), s->dkx, s->xe, P(s, T_W_K), (long)Te * N, I, K) ||
         seq_lin_bwd(s, s->dxe, GRAD(s, grad, T_W_V), GRAD(s, grad, T_B_V), s->dvx, s->xe, P(s, T_W_V), (long)Te * N, I, K)))
        return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
    /* rnn */
    if (rnn_backward(s, ch, grad, err, errlen)) return -1;
    /* the events' own texts: a(t_event) entered the RNN's input (through the mask) */
    if (s->nev) {
        for (int k = 0; k < s->nev; k++) {
            size_t p = (size_t)s->epos[k], pe = p + (size_t)(W - 1) * N;
            const float *dx = s->dx_rnn + p * I, *mk = s->mask_e + pe * EA;
            float *da = s->daev + (size_t)k * E;
            for (int j = 0; j < E; j++) da[j] = s->mask_valid ? dx[j] * mk[j] : dx[j];
        }
        if (adapt_bwd(s, GRAD(s, grad, T_TEXT_W), GRAD(s, grad, T_TEXT_B), s->daev, s->etb, P(s, T_TEXT_W), s->nev,
                      s->T, E))
            return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
    }
    /* embeddings (and the item texts' a(t)), through the dropout masks */
    float *dI = GRAD(s, grad, T_ITEM_EMB), *dA = GRAD(s, grad, T_ACTION_EMB);
    if (s->ntext) memset(s->dain, 0, (size_t)s->ntext * E * sizeof(float));
    for (size_t pe = 0; pe < (size_t)Te * N; pe++) {
        if (s->item_e[pe] < 0) continue;
        const float *dx = s->dxe + pe * I, *mk = s->mask_e + pe * EA;
        float *di = dI + (size_t)s->item_e[pe] * E, *da = dA + (size_t)s->act_e[pe] * A;
        if (s->T > 0 && s->tmap[s->item_e[pe]] >= 0) {
            float *dt = s->dain + (size_t)s->tmap[s->item_e[pe]] * E;
            if (s->mask_valid)
                for (int k = 0; k < E; k++) dt[k] += dx[k] * mk[k];
            else
                for (int k = 0; k < E; k++) dt[k] += dx[k];
        }
        if (s->cold_on && s->cold[s->item_e[pe]]) { /* a "new" item this step: its id row took no part */
        } else if (s->mask_valid)
            for (int k = 0; k < E; k++) di[k] += dx[k] * mk[k];
        else
            for (int k = 0; k < E; k++) di[k] += dx[k];
        if (s->mask_valid)
            for (int k = 0; k < A; k++) da[k] += dx[E + k] * mk[E + k];
        else
            for (int k = 0; k < A; k++) da[k] += dx[E + k];
    }
    if (s->ntext && adapt_bwd(s, GRAD(s, grad, T_TEXT_W), GRAD(s, grad, T_TEXT_B), s->dain, s->txb, P(s, T_TEXT_W),
                              s->ntext, s->T, E))
        return model_errf(err, errlen, "trainer: oneDNN sgemm failed");
    return 0;
}
