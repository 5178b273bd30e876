/* step_tf: the transformer blocks of one step (model.h, attention tf), for n rows. See step_tf.h.
 *
 * Per block l, from x (the block's input; h_t for the first):
 *   n1 = LN1(x);  [q ; k ; v] = W_qkv n1 + b_qkv                        (3H)
 *   ctx = mha_window(q, the window's cached k, v and this position's)   (H, nh heads)
 *   a = x + W_o ctx + b_o;  y = a + W2 gelu(W1 LN2(a) + b1) + b2;  x <- y
 * then u = W_out LNf(x) + b_out. The earlier positions' k and v come from the state's cache; this
 * position's are kept per block (kvcur) for step_tf_commit, so a failed step changes no state.
 *
 * scalar (dn NULL): nn_ref's kernels, in double, as written. dnnl: matmuls with the GELU and the
 * residual sums fused as post-ops, oneDNN's layer normalisation, and the attention in float
 * (dotf/axpyf) over the row's window.
 */
#include <math.h>
#include <stdlib.h>

#include "nn_ref.h"
#include "step_tf.h"
#include "vec.h"

#define TF_MAX_BLOCKS 16

struct step_tf {
    const model *m;
    int B, H, D, F, W, Lt, nh;
    float *h, *u;                        /* the runner's (B,H) input and (B,D) output */
    float *x, *n1, *qkv, *ctx, *a, *n2, *f1, *y, *hn; /* (B,H) (B,H) (B,3H) (B,H) (B,H) (B,H) (B,F) (B,H) (B,H) */
    float *kvcur;                        /* (Lt, B, 2H) every block's k, v of the current position */
    float *kvw;                          /* (W, 2H) one row's window of keys and values */
    float *att;                          /* (nh, W) */
    nn_dnnl *dn;
    nn_dnnl_layernorm *ln1[TF_MAX_BLOCKS], *ln2[TF_MAX_BLOCKS], *lnf;
    nn_dnnl_linear *qkvl[TF_MAX_BLOCKS], *ol[TF_MAX_BLOCKS], *w1[TF_MAX_BLOCKS], *w2[TF_MAX_BLOCKS], *out;
};

void step_tf_free(step_tf *t) {
    if (!t) return;
    float *f[] = {t->x, t->n1, t->qkv, t->ctx, t->a, t->n2, t->f1, t->y, t->hn, t->kvcur, t->kvw, t->att};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
    free(t); /* the primitives belong to the runner's oneDNN context */
}

#define TP(k) (t->m->t[k].data)

int step_tf_new(step_tf **out, const model *m, int max_batch, nn_dnnl *dn, float *h, float *u, char *err, size_t errlen) {
    *out = NULL;
    const model_config *c = &m->cfg;
    if (c->blocks > TF_MAX_BLOCKS) return model_errf(err, errlen, "runner: %d transformer blocks, at most %d", c->blocks, TF_MAX_BLOCKS);
    step_tf *t = calloc(1, sizeof *t);
    if (!t) return model_errf(err, errlen, "runner: out of memory");
    t->m = m, t->B = max_batch, t->H = c->hidden, t->D = c->out_dim, t->F = c->ffn_dim, t->W = c->window;
    t->Lt = c->blocks, t->nh = c->heads, t->h = h, t->u = u, t->dn = dn;
    const size_t B = (size_t)max_batch, H = (size_t)t->H, F = (size_t)t->F;
    t->x = model_falloc(B * H), t->n1 = model_falloc(B * H), t->qkv = model_falloc(B * 3 * H), t->ctx = model_falloc(B * H);
    t->a = model_falloc(B * H), t->n2 = model_falloc(B * H), t->f1 = model_falloc(B * F), t->y = model_falloc(B * H);
    t->hn = model_falloc(B * H), t->kvcur = model_falloc((size_t)t->Lt * B * 2 * H), t->kvw = model_falloc((size_t)t->W * 2 * H);
    t->att = model_falloc((size_t)t->nh * t->W);
    if (!t->x || !t->n1 || !t->qkv || !t->ctx || !t->a || !t->n2 || !t->f1 || !t->y || !t->hn || !t->kvcur || !t->kvw ||
        !t->att) {
        step_tf_free(t);
        return model_errf(err, errlen, "runner: out of memory");
    }
    for (int l = 0; dn && l < t->Lt; l++) {
        const float *ln = TP(T_TF_LN) + (size_t)4 * l * H;
        if (nn_dnnl_layernorm_new(&t->ln1[l], dn, t->H, ln, ln + H, t->x, t->n1, err, errlen) ||
            nn_dnnl_linear_new(&t->qkvl[l], dn, t->H, 3 * t->H, TP(T_TF_QKV_W) + (size_t)l * 3 * H * H,
                               TP(T_TF_QKV_B) + (size_t)l * 3 * H, t->n1, t->qkv, err, errlen) ||
            nn_dnnl_linear_new_post(&t->ol[l], dn, t->H, t->H, TP(T_TF_O_W) + (size_t)l * H * H, TP(T_TF_O_B) + (size_t)l * H,
                                    t->ctx, t->a, NN_POST_SUM, err, errlen) ||
            nn_dnnl_layernorm_new(&t->ln2[l], dn, t->H, ln + 2 * H, ln + 3 * H, t->a, t->n2, err, errlen) ||
            nn_dnnl_linear_new_post(&t->w1[l], dn, t->H, t->F, TP(T_TF_W1) + (size_t)l * F * H, TP(T_TF_B1) + (size_t)l * F,
                                    t->n2, t->f1, NN_POST_GELU, err, errlen) ||
            nn_dnnl_linear_new_post(&t->w2[l], dn, t->F, t->H, TP(T_TF_W2) + (size_t)l * H * F, TP(T_TF_B2) + (size_t)l * H,
                                    t->f1, t->y, NN_POST_SUM, err, errlen)) {
            step_tf_free(t);
            return -1;
        }
    }
    if (dn && (nn_dnnl_layernorm_new(&t->lnf, dn, t->H, TP(T_TF_LNF), TP(T_TF_LNF) + H, t->x, t->hn, err, errlen) ||
               nn_dnnl_linear_new(&t->out, dn, t->H, t->D, TP(T_OUT_W), TP(T_OUT_B), t->hn, u, err, errlen))) {
        step_tf_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

/* The cached k, v of block l at window slot `slot` of a state (2H floats). */
static const char *kv_at(const step_tf *t, const void *state, int l, int slot) {
    return (const char *)state + model_state_off_kv(t->m) + ((size_t)l * t->W + (size_t)slot) * 2 * t->H * sizeof(float);
}

/* Row i's window for block l into t->kvw: the `used` cached entries before ring slot `head`,
 * oldest first, then the current position's k, v (qkv row + H). Returns the entry count. */
static int gather_window(step_tf *t, int l, const void *state, int used, int head, const float *kv_now) {
    const size_t row = 2 * (size_t)t->H;
    for (int j = 0; j < used; j++)
        memcpy(t->kvw + (size_t)j * row, kv_at(t, state, l, ((head - used + j) % t->W + t->W) % t->W), row * sizeof(float));
    if (kv_now) memcpy(t->kvw + (size_t)used * row, kv_now, row * sizeof(float));
    return used + (kv_now != NULL);
}

/* The attention in float for the dnnl backend (mha_window_forward's function), reading each
 * entry's k, v (kv[j]: 2H floats) where it lies, in the state's cache or kvcur, uncopied and at
 * whatever alignment the state blob has. */
static void mha_fast(float *out, float *att, const float *q, const char *const *kv, int n, int H, int nh) {
    const int dh = H / nh;
    const float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < nh; h++) {
        float *a = att + (size_t)h * n, mx = -INFINITY, sum = 0;
        for (int j = 0; j < n; j++) {
            a[j] = dotf_unaligned(q + (size_t)h * dh, kv[j] + (size_t)h * dh * sizeof(float), dh) * scale;
            mx = a[j] > mx ? a[j] : mx;
        }
        for (int j = 0; j < n; j++) sum += (a[j] = expf(a[j] - mx));
        float *o = out + (size_t)h * dh;
        memset(o, 0, (size_t)dh * sizeof(float));
        for (int j = 0; j < n; j++) axpyf_unaligned(o, a[j] / sum, kv[j] + ((size_t)H + (size_t)h * dh) * sizeof(float), dh);
    }
}

int step_tf_forward(step_tf *t, int n, int bucket, void *const *states, const int *used, const model_state_hdr *hdr,
                    char *err, size_t errlen) {
    const int H = t->H, F = t->F;
    const size_t nH = (size_t)n * H;
    memcpy(t->x, t->h, nH * sizeof(float));
    for (int l = 0; l < t->Lt; l++) {
        const float *ln = TP(T_TF_LN) + (size_t)4 * l * H;
        if (t->dn) {
            if (nn_dnnl_layernorm_forward(t->ln1[l], bucket, err, errlen) || nn_dnnl_linear_forward(t->qkvl[l], bucket, err, errlen))
                return -1;
        } else {
            layernorm_forward(t->n1, NULL, NULL, t->x, ln, ln + H, n, H);
            linear_forward(t->qkv, t->n1, TP(T_TF_QKV_W) + (size_t)l * 3 * H * H, TP(T_TF_QKV_B) + (size_t)l * 3 * H, n, H,
                           3 * H);
        }
        for (int i = 0; i < n; i++) {
            const float *qkv = t->qkv + (size_t)i * 3 * H;
            float *cur = t->kvcur + ((size_t)l * t->B + i) * 2 * H;
            memcpy(cur, qkv + H, 2 * (size_t)H * sizeof(float));
            if (t->dn) {
                const char *rows[1024]; /* window <= 1024 (model_config_check) */
                const int u = used[i], head = hdr[i].head;
                for (int j = 0; j < u; j++) rows[j] = kv_at(t, states[i], l, ((head - u + j) % t->W + t->W) % t->W);
                rows[u] = (const char *)cur;
                mha_fast(t->ctx + (size_t)i * H, t->att, qkv, rows, u + 1, H, t->nh);
            } else {
                int nw = gather_window(t, l, states[i], used[i], hdr[i].head, cur);
                mha_window_forward(t->ctx + (size_t)i * H, t->att, qkv, t->kvw, 2 * H, t->kvw + H, 2 * H, nw, H, t->nh);
            }
        }
        if (t->dn) {
            memcpy(t->a, t->x, nH * sizeof(float)); /* the residual: W_o ctx + b_o is added onto it */
            if (nn_dnnl_linear_forward(t->ol[l], bucket, err, errlen) || nn_dnnl_layernorm_forward(t->ln2[l], bucket, err, errlen) ||
                nn_dnnl_linear_forward(t->w1[l], bucket, err, errlen))
                return -1;
            memcpy(t->y, t->a, nH * sizeof(float));
            if (nn_dnnl_linear_forward(t->w2[l], bucket, err, errlen)) return -1;
        } else {
            linear_forward(t->a, t->ctx, TP(T_TF_O_W) + (size_t)l * H * H, TP(T_TF_O_B) + (size_t)l * H, n, H, H);
            for (size_t k = 0; k < nH; k++) t->a[k] += t->x[k];
            layernorm_forward(t->n2, NULL, NULL, t->a, ln + 2 * H, ln + 3 * H, n, H);
            linear_forward(t->f1, t->n2, TP(T_TF_W1) + (size_t)l * F * H, TP(T_TF_B1) + (size_t)l * F, n, H, F);
            gelu_forward(t->f1, t->f1, (long)n * F);
            linear_forward(t->y, t->f1, TP(T_TF_W2) + (size_t)l * H * F, TP(T_TF_B2) + (size_t)l * H, n, F, H);
            for (size_t k = 0; k < nH; k++) t->y[k] += t->a[k];
        }
        memcpy(t->x, t->y, nH * sizeof(float));
    }
    if (t->dn) return nn_dnnl_layernorm_forward(t->lnf, bucket, err, errlen) || nn_dnnl_linear_forward(t->out, bucket, err, errlen)
                          ? -1 : 0;
    layernorm_forward(t->hn, NULL, NULL, t->x, TP(T_TF_LNF), TP(T_TF_LNF) + H, n, H);
    linear_forward(t->u, t->hn, TP(T_OUT_W), TP(T_OUT_B), n, H, t->D);
    return 0;
}

void step_tf_commit(const step_tf *t, int i, void *state, int slot) {
    const size_t row = 2 * (size_t)t->H;
    for (int l = 0; l < t->Lt; l++)
        memcpy((char *)kv_at(t, state, l, slot), t->kvcur + ((size_t)l * t->B + i) * row, row * sizeof(float));
}

int step_tf_output(step_tf *t, const void *state, const float *h, int wlen, int head, float *u, char *err, size_t errlen) {
    const int H = t->H, F = t->F;
    (void)err, (void)errlen;
    memcpy(t->x, h, (size_t)H * sizeof(float));
    for (int l = 0; l < t->Lt; l++) { /* the last event's own k, v are the newest cache entry */
        const float *ln = TP(T_TF_LN) + (size_t)4 * l * H;
        layernorm_forward(t->n1, NULL, NULL, t->x, ln, ln + H, 1, H);
        linear_forward(t->qkv, t->n1, TP(T_TF_QKV_W) + (size_t)l * 3 * H * H, TP(T_TF_QKV_B) + (size_t)l * 3 * H, 1, H, H);
        int nw = gather_window(t, l, state, wlen, head, NULL);
        mha_window_forward(t->ctx, t->att, t->qkv, t->kvw, 2 * H, t->kvw + H, 2 * H, nw, H, t->nh);
        linear_forward(t->a, t->ctx, TP(T_TF_O_W) + (size_t)l * H * H, TP(T_TF_O_B) + (size_t)l * H, 1, H, H);
        for (int k = 0; k < H; k++) t->a[k] += t->x[k];
        layernorm_forward(t->n2, NULL, NULL, t->a, ln + 2 * H, ln + 3 * H, 1, H);
        linear_forward(t->f1, t->n2, TP(T_TF_W1) + (size_t)l * F * H, TP(T_TF_B1) + (size_t)l * F, 1, H, F);
        gelu_forward(t->f1, t->f1, F);
        linear_forward(t->y, t->f1, TP(T_TF_W2) + (size_t)l * H * F, TP(T_TF_B2) + (size_t)l * H, 1, F, H);
        for (int k = 0; k < H; k++) t->x[k] = t->y[k] + t->a[k];
    }
    layernorm_forward(t->hn, NULL, NULL, t->x, TP(T_TF_LNF), TP(T_TF_LNF) + H, 1, H);
    linear_forward(u, t->hn, TP(T_OUT_W), TP(T_OUT_B), 1, H, t->D);
    return 0;
}
