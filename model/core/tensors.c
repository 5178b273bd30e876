/* tensors: the model's parameter block and its table of named tensors (model.h's enum, in that
 * order): the 14 core tensors, the text adaptor when text_dim > 0, then the optional heads.
 *
 * The heads live in the same single block after the core, so saving, fingerprinting and the
 * trainer's gradient/optimizer blocks treat them like any other tensor. A model without heads
 * has the same block, file and fingerprint as before heads existed.
 */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

const char *const model_tensor_names[MODEL_N_TENSORS] = {
    "item_emb", "action_emb", "rnn.w_ih", "rnn.w_hh", "rnn.b_ih", "rnn.b_hh", "attn.w_q",
    "attn.b_q", "attn.w_k",   "attn.b_k", "attn.w_v", "attn.b_v", "out.w",    "out.b",
};

const char *const model_head_tensor_names[MODEL_N_ALL_TENSORS - MODEL_N_TENSORS] = {
    "text.b",       "text.w",         "score.item_emb", "score.item_bias", "score.text_b",
    "score.text_w", "value.item_emb", "value.item_bias", "value.bias",     "value.w",
};

/* Shapes of every tensor for cfg (ndim 1 or 2). */
static void tensor_shapes(const model_config *c, int ndim[MODEL_N_TENSORS], int shape[MODEL_N_TENSORS][2]) {
    int G = model_gates(c), H = c->hidden, I = model_input_dim(c), K = c->attn_dim, D = c->out_dim;
    const int s[MODEL_N_TENSORS][3] = {
        [T_ITEM_EMB] = {2, c->n_items, c->item_dim}, [T_ACTION_EMB] = {2, c->n_actions, c->action_dim},
        [T_W_IH] = {2, G * H, I}, [T_W_HH] = {2, G * H, H}, [T_B_IH] = {1, G * H, 0}, [T_B_HH] = {1, G * H, 0},
        [T_W_Q] = {2, K, H},      [T_B_Q] = {1, K, 0},      [T_W_K] = {2, K, I},       [T_B_K] = {1, K, 0},
        [T_W_V] = {2, K, I},      [T_B_V] = {1, K, 0},      [T_OUT_W] = {2, D, H + K}, [T_OUT_B] = {1, D, 0},
    };
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        ndim[t] = s[t][0];
        shape[t][0] = s[t][1];
        shape[t][1] = s[t][2];
    }
}

size_t model_param_count(const model_config *cfg) {
    if (model_config_check(cfg, NULL, 0)) return 0;
    int ndim[MODEL_N_TENSORS], shape[MODEL_N_TENSORS][2];
    tensor_shapes(cfg, ndim, shape);
    size_t total = 0;
    for (int t = 0; t < MODEL_N_TENSORS; t++)
        total += (size_t)shape[t][0] * (ndim[t] == 2 ? (size_t)shape[t][1] : 1);
    for (int t = T_TEXT_B; t <= T_TEXT_W && cfg->text_dim > 0; t++) { /* the text adaptor */
        int nd, sh[2];
        model_optional_shape(cfg, t, &nd, sh);
        total += (size_t)sh[0] * (nd == 2 ? (size_t)sh[1] : 1);
    }
    return total;
}

int model_alloc(model **out, const model_config *cfg, char *err, size_t errlen) {
    *out = NULL;
    if (model_config_check(cfg, err, errlen)) return -1;
    model *m = calloc(1, sizeof *m);
    if (!m) return model_errf(err, errlen, "model: out of memory");
    m->cfg = *cfg;
    m->n_params = model_param_count(cfg);
    /* 64-byte aligned base; tensors follow each other with no padding (the file has no holes). */
    size_t bytes = (m->n_params * sizeof(float) + 63) & ~(size_t)63;
    m->params = aligned_alloc(64, bytes);
    if (!m->params) {
        size_t n = m->n_params;
        free(m);
        return model_errf(err, errlen, "model: out of memory for %zu parameters", n);
    }
    memset(m->params, 0, bytes);
    int ndim[MODEL_N_TENSORS], shape[MODEL_N_TENSORS][2];
    tensor_shapes(cfg, ndim, shape);
    size_t off = 0;
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        model_tensor *x = &m->t[t];
        x->name = model_tensor_names[t];
        x->ndim = ndim[t];
        x->shape[0] = shape[t][0];
        x->shape[1] = ndim[t] == 2 ? shape[t][1] : 0;
        x->numel = (size_t)shape[t][0] * (ndim[t] == 2 ? (size_t)shape[t][1] : 1);
        x->data = m->params + off;
        off += x->numel;
    }
    for (int t = T_TEXT_B; t <= T_TEXT_W && cfg->text_dim > 0; t++) {
        model_tensor *x = &m->t[t];
        x->name = model_head_tensor_names[t - MODEL_N_TENSORS];
        model_optional_shape(cfg, t, &x->ndim, x->shape);
        x->numel = (size_t)x->shape[0] * (x->ndim == 2 ? (size_t)x->shape[1] : 1);
        x->data = m->params + off;
        off += x->numel;
    }
    *out = m;
    return 0;
}

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
