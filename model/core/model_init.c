/* model_init: the model object (one parameter allocation + tensor table), seeded random
 * initialisation, the fingerprint and model_id, metadata and vocabulary lookups.
 *
 * Initialisation follows PyTorch's defaults so a model trained later starts from the familiar
 * place: RNN cell weights and biases U(-1/sqrt(H), 1/sqrt(H)) (nn.LSTMCell/GRUCell), linear
 * layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias (nn.Linear), embeddings normal
 * with standard deviation 0.1. Draws come from one xoshiro256** stream in tensor order
 * (model.h's enum), row-major, so a seed fully determines the parameters.
 */
#include <math.h>
#include <stdlib.h>

#include "json.h"
#include "model_internal.h"
#include "rng.h"

const char *const model_tensor_names[MODEL_N_TENSORS] = {
    "item_emb", "action_emb", "rnn.w_ih", "rnn.w_hh", "rnn.b_ih", "rnn.b_hh", "attn.w_q",
    "attn.b_q", "attn.w_k",   "attn.b_k", "attn.w_v", "attn.b_v", "out.w",    "out.b",
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

void model_free(model *m) {
    if (!m) return;
    free(m->params);
    vocab_free(m->items);
    vocab_free(m->actions);
    free(m->meta_json);
    free(m);
}

int model_name_check(const char *name, char *err, size_t errlen) {
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > MODEL_NAME_MAX)
        return model_errf(err, errlen, "model name must be 1..%d characters, got %zu", MODEL_NAME_MAX, n);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return model_errf(err, errlen, "model name \"%s\": character %zu is not one of [A-Za-z0-9._-]", name, i);
    }
    return 0;
}

uint64_t model_compute_fingerprint(const model *m) {
    fp64_t s;
    fp64_init(&s, 0x6965766F2D667031ull); /* "ievo-fp1" */
    const model_config *c = &m->cfg;
    int32_t cfg[9] = {(int32_t)c->cell, c->item_dim, c->action_dim, c->hidden, c->attn_dim,
                      c->out_dim, c->window, c->n_items, c->n_actions};
    fp64_update(&s, cfg, sizeof cfg);
    if (c->text_dim > 0) { /* only then: a model without text keeps the identity it always had */
        int32_t td = c->text_dim;
        fp64_update(&s, &td, sizeof td);
    }
    fp64_update(&s, m->params, m->n_params * sizeof(float));
    const model_vocab *v[2] = {m->items, m->actions};
    for (int i = 0; i < 2; i++) {
        size_t len;
        const char *j = vocab_joined(v[i], &len);
        uint64_t len64 = len;
        fp64_update(&s, &len64, sizeof len64);
        fp64_update(&s, j, len);
    }
    return fp64_final(&s);
}

int model_finalize(model *m, const char *name, char *err, size_t errlen) {
    if (model_name_check(name, err, errlen)) return -1;
    if (vocab_size(m->items) != m->cfg.n_items || vocab_size(m->actions) != m->cfg.n_actions)
        return model_errf(err, errlen, "model: vocabulary sizes %d/%d do not match the config's %d/%d",
                          vocab_size(m->items), vocab_size(m->actions), m->cfg.n_items, m->cfg.n_actions);
    m->fingerprint = model_compute_fingerprint(m);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)m->fingerprint);
    snprintf(m->model_id, sizeof m->model_id, "%s-%.12s", name, hex);
    return 0;
}

void model_name_of(const model *m, char *out, size_t n) {
    size_t len = strlen(m->model_id);
    len = len > 13 ? len - 13 : 0;
    snprintf(out, n, "%.*s", (int)len, m->model_id);
}

int model_init_random(model **out, const model_config *cfg_in, const char *name,
                      const char *const *item_ids, int n_item_ids,
                      const char *const *action_ids, int n_action_ids,
                      uint64_t seed, char *err, size_t errlen) {
    *out = NULL;
    if (model_name_check(name, err, errlen)) return -1;
    if (n_item_ids < 0 || n_item_ids >= MODEL_VOCAB_MAX || n_action_ids < 0 || n_action_ids >= MODEL_VOCAB_MAX)
        return model_errf(err, errlen, "model: %d item ids / %d action ids, expected 0..%d each", n_item_ids,
                          n_action_ids, MODEL_VOCAB_MAX - 1);
    model_config cfg = *cfg_in;
    cfg.n_items = n_item_ids + 1;
    cfg.n_actions = n_action_ids + 1;
    model *m;
    if (model_alloc(&m, &cfg, err, errlen)) return -1;
    if (vocab_new(&m->items, item_ids, n_item_ids, "item", err, errlen) ||
        vocab_new(&m->actions, action_ids, n_action_ids, "action", err, errlen)) {
        model_free(m);
        return -1;
    }
    int H = cfg.hidden, I = model_input_dim(&cfg), K = cfg.attn_dim;
    double bound[MODEL_N_TENSORS] = {
        [T_W_IH] = 1 / sqrt(H), [T_W_HH] = 1 / sqrt(H), [T_B_IH] = 1 / sqrt(H), [T_B_HH] = 1 / sqrt(H),
        [T_W_Q] = 1 / sqrt(H),  [T_B_Q] = 1 / sqrt(H),  [T_W_K] = 1 / sqrt(I),  [T_B_K] = 1 / sqrt(I),
        [T_W_V] = 1 / sqrt(I),  [T_B_V] = 1 / sqrt(I),  [T_OUT_W] = 1 / sqrt(H + K), [T_OUT_B] = 1 / sqrt(H + K),
    };
    rng_t r;
    rng_seed(&r, seed);
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        float *p = m->t[t].data;
        size_t n = m->t[t].numel;
        if (t == T_ITEM_EMB || t == T_ACTION_EMB)
            for (size_t i = 0; i < n; i++) p[i] = (float)(0.1 * rng_normal(&r));
        else
            for (size_t i = 0; i < n; i++) p[i] = rng_symmetric(&r, bound[t]);
    }
    /* The text adaptor continues the same stream (so the core draws do not depend on text_dim):
     * text.w like nn.Linear(T, E), text.b = 0 (the trainer starts it at the mean text vector). */
    for (size_t i = 0; cfg.text_dim > 0 && i < m->t[T_TEXT_W].numel; i++)
        m->t[T_TEXT_W].data[i] = rng_symmetric(&r, 1 / sqrt(cfg.text_dim));
    if (model_finalize(m, name, err, errlen)) {
        model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int model_set_meta(model *m, const char *json_object, char *err, size_t errlen) {
    if (!json_object) {
        free(m->meta_json);
        m->meta_json = NULL;
        return 0;
    }
    char jerr[160];
    size_t len = strlen(json_object);
    json_value *v = json_parse(json_object, len, jerr, sizeof jerr);
    if (!v) return model_errf(err, errlen, "model metadata: %s", jerr);
    int is_obj = v->type == JSON_OBJECT;
    json_free(v);
    if (!is_obj) return model_errf(err, errlen, "model metadata must be a JSON object");
    char *copy = malloc(len + 1);
    if (!copy) return model_errf(err, errlen, "model metadata: out of memory");
    memcpy(copy, json_object, len + 1);
    free(m->meta_json);
    m->meta_json = copy;
    return 0;
}

int model_item_index(const model *m, const char *id, size_t len) {
    int r = vocab_find(m->items, id, len);
    return r < 0 ? 0 : r;
}

int model_action_index(const model *m, const char *id, size_t len) {
    int r = vocab_find(m->actions, id, len);
    return r < 0 ? 0 : r;
}

const char *model_item_id(const model *m, int index) { return vocab_id(m->items, index); }
const char *model_action_id(const model *m, int index) { return vocab_id(m->actions, index); }
