/* heads: the optional output heads of a trained model (scoring every item, predicting a value),
 * top-K selection, and the items of a state's window. See model.h for the formulas.
 *
 * The heads live in the model's single parameter block after the 14 core tensors, so saving,
 * fingerprinting and the trainer's gradient/optimizer blocks treat them like any other tensor.
 * A model without heads has the same block, file and fingerprint as before heads existed.
 */
#include <math.h>
#include <stdlib.h>

#include "model_internal.h"
#include "nn_dnnl_train.h"
#include "rng.h"

const char *const model_head_tensor_names[MODEL_N_ALL_TENSORS - MODEL_N_TENSORS] = {
    "text.b",       "text.w",         "score.item_emb", "score.item_bias", "score.text_b",
    "score.text_w", "value.item_emb", "value.item_bias", "value.bias",     "value.w",
};

int model_head_of_tensor(int t) {
    if (t == T_TEXT_B || t == T_TEXT_W) return 0;
    return t >= T_SCORE_EMB && t <= T_SCORE_TEXT_W ? MODEL_HEAD_SCORE : MODEL_HEAD_VALUE;
}

int model_heads(const model *m) {
    int h = 0;
    if (m->t[T_SCORE_EMB].numel) h |= MODEL_HEAD_SCORE;
    if (m->t[T_VALUE_EMB].numel) h |= MODEL_HEAD_VALUE;
    return h;
}

int model_tensor_present(const model_config *c, int heads, int t) {
    if (t < MODEL_N_TENSORS) return 1;
    int text = t == T_TEXT_B || t == T_TEXT_W || t == T_SCORE_TEXT_B || t == T_SCORE_TEXT_W;
    int head = model_head_of_tensor(t);
    return (!text || c->text_dim > 0) && (!head || (heads & head));
}

void model_optional_shape(const model_config *c, int t, int *ndim, int shape[2]) {
    shape[1] = 0;
    switch (t) {
    case T_TEXT_B:
    case T_SCORE_TEXT_B: *ndim = 1, shape[0] = c->text_dim; break;
    case T_TEXT_W: *ndim = 2, shape[0] = c->item_dim, shape[1] = c->text_dim; break;
    case T_SCORE_TEXT_W: *ndim = 2, shape[0] = c->out_dim, shape[1] = c->text_dim; break;
    case T_SCORE_EMB:
    case T_VALUE_EMB: *ndim = 2, shape[0] = c->n_items, shape[1] = c->out_dim; break;
    case T_SCORE_BIAS:
    case T_VALUE_BIAS: *ndim = 1, shape[0] = c->n_items; break;
    case T_VALUE_W: *ndim = 1, shape[0] = c->out_dim; break;
    default: *ndim = 1, shape[0] = 1; break; /* value.bias */
    }
}

int model_alloc_heads(model *m, int heads, char *err, size_t errlen) {
    if (heads & ~(MODEL_HEAD_SCORE | MODEL_HEAD_VALUE)) return model_errf(err, errlen, "model: unknown heads 0x%x", heads);
    int want = model_heads(m) | heads;
    size_t n = 0;
    for (int t = 0; t < MODEL_N_ALL_TENSORS; t++) {
        if (t < MODEL_N_TENSORS) {
            n += m->t[t].numel;
        } else if (model_tensor_present(&m->cfg, want, t)) {
            int nd, sh[2];
            model_optional_shape(&m->cfg, t, &nd, sh);
            n += (size_t)sh[0] * (nd == 2 ? (size_t)sh[1] : 1);
        }
    }
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) return model_errf(err, errlen, "model: out of memory for %zu parameters", n);
    memset(p, 0, bytes ? bytes : 64);
    size_t off = 0;
    for (int t = 0; t < MODEL_N_ALL_TENSORS; t++) {
        model_tensor *x = &m->t[t];
        if (t >= MODEL_N_TENSORS) {
            if (!model_tensor_present(&m->cfg, want, t)) continue;
            x->name = model_head_tensor_names[t - MODEL_N_TENSORS];
            model_optional_shape(&m->cfg, t, &x->ndim, x->shape);
            size_t numel = (size_t)x->shape[0] * (x->ndim == 2 ? (size_t)x->shape[1] : 1);
            if (x->numel) memcpy(p + off, x->data, numel * sizeof(float)); /* the tensor was already there */
            x->numel = numel;
        } else {
            memcpy(p + off, x->data, x->numel * sizeof(float));
        }
        x->data = p + off;
        off += x->numel;
    }
    free(m->params);
    m->params = p;
    m->n_params = n;
    return 0;
}

int model_add_heads(model *m, int heads, uint64_t seed, char *err, size_t errlen) {
    int had = model_heads(m), add = heads & ~had;
    if (model_alloc_heads(m, heads, err, errlen)) return -1;
    rng_t r;
    rng_seed(&r, seed ^ 0x68656164733a3a31ull); /* "heads::1": a stream apart from the core init */
    for (int t = MODEL_N_TENSORS; t < MODEL_N_ALL_TENSORS; t++) {
        /* value.item_emb starts at zero: the value head begins as biases only, and u (whose norm
         * the ranking objective grows) cannot turn random rows into wild predictions */
        if (!(add & model_head_of_tensor(t)) || (t != T_SCORE_EMB && t != T_SCORE_TEXT_W)) continue;
        if (t == T_SCORE_EMB)
            for (size_t i = 0; i < m->t[t].numel; i++) m->t[t].data[i] = (float)(0.1 * rng_normal(&r));
        else /* score.text_w like nn.Linear(T, D); score.text_b = 0 */
            for (size_t i = 0; i < m->t[t].numel; i++) m->t[t].data[i] = rng_symmetric(&r, 1 / sqrt(m->cfg.text_dim));
    }
    char name[MODEL_NAME_MAX + 1];
    model_name_of(m, name, sizeof name);
    return model_finalize(m, name, err, errlen);
}

int model_score_items(const model *m, const float *u, float *scores, char *err, size_t errlen) {
    return model_score_items_batch(m, 1, u, scores, err, errlen);
}

int model_score_items_batch(const model *m, int n, const float *U, float *scores, char *err, size_t errlen) {
    if (!(model_heads(m) & MODEL_HEAD_SCORE)) return model_errf(err, errlen, "model %s has no scoring head", m->model_id);
    if (n <= 0) return n == 0 ? 0 : model_errf(err, errlen, "model_score_items_batch: n = %d", n);
    const int N = m->cfg.n_items, D = m->cfg.out_dim;
    const float *S = m->t[T_SCORE_EMB].data, *b = m->t[T_SCORE_BIAS].data;
    /* scores (n, N) = U (n, D) @ S (N, D)^T, then + bias per column */
    for (int i = 0; i < n; i++) memcpy(scores + (size_t)i * N, b, (size_t)N * sizeof(float));
    if (nn_gemm('N', 'T', n, N, D, 1.0f, U, D, S, D, 1.0f, scores, N))
        return model_errf(err, errlen, "model_score_items_batch: oneDNN sgemm failed");
    for (int i = 0; i < n; i++) scores[(size_t)i * N] = -INFINITY;
    return 0;
}

int model_score_rows(const model *m, int n, const int32_t *idx, const float *const *text, float *S, float *bias,
                     char *err, size_t errlen) {
    if (!(model_heads(m) & MODEL_HEAD_SCORE)) return model_errf(err, errlen, "model %s has no scoring head", m->model_id);
    const int D = m->cfg.out_dim, T = m->cfg.text_dim;
    for (int r = 0; r < n; r++) {
        int i = idx[r];
        if (i < 0 || i >= m->cfg.n_items)
            return model_errf(err, errlen, "model_score_rows: item index %d outside the vocabulary (%d)", i, m->cfg.n_items);
        float *row = S + (size_t)r * D;
        if (i > 0) memcpy(row, m->t[T_SCORE_EMB].data + (size_t)i * D, (size_t)D * sizeof(float));
        else memset(row, 0, (size_t)D * sizeof(float));
        bias[r] = m->t[T_SCORE_BIAS].data[i];
        if (T > 0 && text && text[r]) {
            float a[4096];
            text_adapt_ref(m->t[T_SCORE_TEXT_W].data, m->t[T_SCORE_TEXT_B].data, D, T, text[r], a);
            for (int k = 0; k < D; k++) row[k] += a[k];
        }
    }
    return 0;
}

int model_score_with(const model *m, int n, const float *U, int n_rows, const float *S, const float *bias,
                     float *scores, char *err, size_t errlen) {
    if (n <= 0 || n_rows <= 0) return n < 0 || n_rows < 0 ? model_errf(err, errlen, "model_score_with: n = %d, rows = %d", n, n_rows) : 0;
    const int D = m->cfg.out_dim;
    for (int i = 0; i < n; i++) memcpy(scores + (size_t)i * n_rows, bias, (size_t)n_rows * sizeof(float));
    if (nn_gemm('N', 'T', n, n_rows, D, 1.0f, U, D, S, D, 1.0f, scores, n_rows))
        return model_errf(err, errlen, "model_score_with: oneDNN sgemm failed");
    return 0;
}

float model_predict_value(const model *m, const float *u, int item) {
    if (!(model_heads(m) & MODEL_HEAD_VALUE) || item < 0 || item >= m->cfg.n_items) return NAN;
    const int D = m->cfg.out_dim;
    const float *v = m->t[T_VALUE_EMB].data + (size_t)item * D, *w = m->t[T_VALUE_W].data;
    double y = (double)m->t[T_VALUE_BIAS].data[item] + (double)m->t[T_VALUE_B].data[0];
    for (int i = 0; i < D; i++) y += (double)u[i] * ((double)w[i] + v[i]);
    return (float)(y < 0 ? -expm1(-y) : expm1(y));
}

/* ---- top-K ------------------------------------------------------------------------------ */

typedef struct {
    float s;
    int32_t i;
} scored;

/* a ranks before b: higher score, then lower index */
static inline int before(scored a, scored b) { return a.s > b.s || (a.s == b.s && a.i < b.i); }

/* min-heap on "before": the root is the worst kept entry */
static void sift_down(scored *h, int n, int i) {
    scored x = h[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(h[c], h[c + 1])) c++;
        if (!before(x, h[c])) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static int cmp_before(const void *pa, const void *pb) {
    scored a = *(const scored *)pa, b = *(const scored *)pb;
    return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

int model_top_k(const float *scores, int n, int k, const int32_t *exclude, int n_exclude, int32_t *idx, float *val) {
    if (k <= 0 || n <= 0) return 0;
    if (n_exclude < 0) n_exclude = 0;
    /* Keep the best k + n_exclude, then drop the excluded: no per-call bitmap of n entries. */
    long cap = (long)k + n_exclude;
    if (cap > n) cap = n;
    scored *h = malloc((size_t)cap * sizeof *h);
    if (!h) return -1;
    int hn = 0;
    for (int i = 0; i < n; i++) {
        float s = scores[i];
        if (!(s > -INFINITY)) continue; /* -inf and NaN are never recommended */
        scored e = {s, i};
        if (hn < cap) {
            h[hn++] = e;
            if (hn == cap)
                for (int j = hn / 2 - 1; j >= 0; j--) sift_down(h, hn, j);
        } else if (before(e, h[0])) {
            h[0] = e;
            sift_down(h, hn, 0);
        }
    }
    qsort(h, (size_t)hn, sizeof *h, cmp_before);
    int out = 0;
    for (int j = 0; j < hn && out < k; j++) {
        int skip = 0;
        for (int x = 0; x < n_exclude && !skip; x++) skip = exclude[x] == h[j].i;
        if (skip) continue;
        idx[out] = h[j].i;
        if (val) val[out] = h[j].s;
        out++;
    }
    free(h);
    return out;
}

int model_state_items(const model *m, const void *state, int32_t *items) {
    model_state_hdr h;
    model_state_read_hdr(state, &h);
    int W = m->cfg.window, n = h.wlen < 0 ? 0 : h.wlen > W ? W : h.wlen;
    for (int j = 0; j < n; j++) {
        model_state_slot s;
        model_state_read_slot(m, state, ((h.head - n + j) % W + W) % W, &s);
        items[j] = s.item;
    }
    return n;
}
