/* heads: the optional output heads of a trained model (scoring every item, predicting a value),
 * top-K selection, and the items of a state's window. See model.h for the formulas; the heads'
 * tensors are laid out with the others in tensors.c.
 */
#include <math.h>
#include <stdlib.h>

#include "model_internal.h"
#include "nn_dnnl.h"

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

float model_predict_value_user(const model *m, const float *u, float user_bias, int item) {
    if (!(model_heads(m) & MODEL_HEAD_VALUE) || item < 0 || item >= m->cfg.n_items) return NAN;
    const int D = m->cfg.out_dim;
    const float *v = m->t[T_VALUE_EMB].data + (size_t)item * D, *w = m->t[T_VALUE_W].data;
    double y = (double)m->t[T_VALUE_BIAS].data[item] + (double)m->t[T_VALUE_B].data[0] + user_bias;
    for (int i = 0; i < D; i++) y += (double)u[i] * ((double)w[i] + v[i]);
    return (float)(y < 0 ? -expm1(-y) : expm1(y));
}

float model_predict_value(const model *m, const float *u, int item) { return model_predict_value_user(m, u, 0.0f, item); }

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
