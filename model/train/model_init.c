/* model_init: a new model with seeded random parameters, and new heads on a trained model.
 *
 * Initialisation follows PyTorch's defaults so a model trained later starts from the familiar
 * place: RNN cell weights and biases U(-1/sqrt(H), 1/sqrt(H)) (nn.LSTMCell/GRUCell), linear
 * layers U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias (nn.Linear), embeddings normal
 * with standard deviation 0.1. Draws come from one xoshiro256** stream in tensor order
 * (model.h's enum), row-major, so a seed fully determines the parameters.
 */
#include <math.h>

#include "model_init.h"
#include "model_internal.h"
#include "rng.h"

/* The LRU's eigenvalues lambda = exp(-exp(nu) + i exp(theta)) drawn as in LRURec (Yue et al.
 * 2024, after Orvieto et al. 2023): |lambda| uniform on the ring r_min = 0.8 .. r_max = 0.99,
 * the phase uniform in [0, 2 pi); gamma = sqrt(1 - |lambda|^2) normalises the input so the state
 * keeps unit scale. Rows per layer: nu, theta, gamma, each N logs. */
static void lru_init_eigenvalues(float *p, int L, int N, rng_t *r) {
    const double rmin = 0.8, rmax = 0.99;
    for (int l = 0; l < L; l++) {
        float *nu = p + (size_t)3 * l * N, *theta = nu + N, *gamma = theta + N;
        for (int k = 0; k < N; k++) {
            double u1 = rng_uniform(r), u2 = 1.0 - rng_uniform(r); /* u2 in (0, 1]: theta's log is finite */
            double nu_ = -0.5 * log(u1 * (rmax * rmax - rmin * rmin) + rmin * rmin); /* -log |lambda| */
            nu[k] = (float)log(nu_);
            theta[k] = (float)log(u2 * 6.283185307179586);
            gamma[k] = (float)log(sqrt(1.0 - exp(-2.0 * nu_)));
        }
    }
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
    const model_config *c = &m->cfg; /* resolved */
    const int H = c->hidden, I = model_input_dim(c), K = c->attn_dim, N = c->state_dim, F = c->ffn_dim;
    double bound[MODEL_N_TENSORS] = {
        [T_W_IH] = 1 / sqrt(H), [T_W_HH] = 1 / sqrt(H), [T_B_IH] = 1 / sqrt(H), [T_B_HH] = 1 / sqrt(H),
        [T_LRU_IN_W] = 1 / sqrt(I), [T_LRU_IN_B] = 1 / sqrt(I), [T_LRU_BW] = 1 / sqrt(H), [T_LRU_BB] = 1 / sqrt(H),
        [T_LRU_CW] = 1 / sqrt(N), [T_LRU_CB] = 1 / sqrt(N), [T_LRU_W1] = 1 / sqrt(H), [T_LRU_B1] = 1 / sqrt(H),
        [T_LRU_W2] = 1 / sqrt(F), [T_LRU_B2] = 1 / sqrt(F),
        [T_W_Q] = 1 / sqrt(H),  [T_B_Q] = 1 / sqrt(H),  [T_W_K] = 1 / sqrt(I),  [T_B_K] = 1 / sqrt(I),
        [T_W_V] = 1 / sqrt(I),  [T_B_V] = 1 / sqrt(I),  [T_OUT_W] = 1 / sqrt(H + K), [T_OUT_B] = 1 / sqrt(H + K),
        [T_TF_QKV_W] = 1 / sqrt(H), [T_TF_QKV_B] = 1 / sqrt(H), [T_TF_O_W] = 1 / sqrt(H), [T_TF_O_B] = 1 / sqrt(H),
        [T_TF_W1] = 1 / sqrt(H), [T_TF_B1] = 1 / sqrt(H), [T_TF_W2] = 1 / sqrt(F), [T_TF_B2] = 1 / sqrt(F),
    };
    if (c->attn == MODEL_ATTN_TF) bound[T_OUT_W] = bound[T_OUT_B] = 1 / sqrt(H); /* out.w reads h alone */
    rng_t r;
    rng_seed(&r, seed);
    /* the model's body in tensor order (the text adaptor and the heads come after, below) */
    for (int t = 0; t < T_TEXT_B; t++) {
        float *p = m->t[t].data;
        size_t n = m->t[t].numel;
        if (!n) continue; /* another family's tensor */
        if (t == T_ITEM_EMB || t == T_ACTION_EMB)
            for (size_t i = 0; i < n; i++) p[i] = (float)(0.1 * rng_normal(&r));
        else if (t == T_LRU_LOG)
            lru_init_eigenvalues(p, c->layers, N, &r);
        else if (t == T_LRU_LN || t == T_TF_LN || t == T_TF_LNF) /* LayerNorm: gains 1, shifts 0 (gain rows even) */
            for (size_t row = 0; row < n / (size_t)H; row++)
                for (int k = 0; k < H; k++) p[row * H + k] = row % 2 == 0 ? 1.0f : 0.0f;
        else
            for (size_t i = 0; i < n; i++) p[i] = rng_symmetric(&r, bound[t]);
    }
    /* The text adaptor continues the same stream (so the body's draws do not depend on text_dim):
     * text.w like nn.Linear(T, E), text.b = 0 (the trainer starts it at the mean text vector). */
    for (size_t i = 0; c->text_dim > 0 && i < m->t[T_TEXT_W].numel; i++)
        m->t[T_TEXT_W].data[i] = rng_symmetric(&r, 1 / sqrt(c->text_dim));
    if (model_finalize(m, name, err, errlen)) {
        model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int model_add_heads(model *m, int heads, uint64_t seed, char *err, size_t errlen) {
    int had = model_heads(m), add = heads & ~had;
    if (model_alloc_heads(m, heads, err, errlen)) return -1;
    rng_t r;
    rng_seed(&r, seed ^ 0x68656164733a3a31ull); /* "heads::1": a stream apart from the core init */
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        /* value.item_emb starts at zero: the value head begins as biases only, and u (whose norm
         * the ranking objective grows) cannot turn random rows into wild predictions */
        if (!(add & model_head_of_tensor(t)) || (t != T_SCORE_EMB && t != T_SCORE_TEXT_W)) continue;
        if (t == T_SCORE_EMB)
            for (size_t i = 0; i < m->t[t].numel; i++) m->t[t].data[i] = (float)(0.1 * rng_normal(&r));
        else /* score.text_w like nn.Linear(T, D); score.text_b = 0 */
            for (size_t i = 0; i < m->t[t].numel; i++) m->t[t].data[i] = rng_symmetric(&r, 1 / sqrt(m->cfg.text_dim));
    }
    if (add & MODEL_HEAD_VALUE_USER) { /* the user bias's decay and shrinkage until the trainer picks them */
        m->t[T_VALUE_USER].data[0] = 0.8f;
        m->t[T_VALUE_USER].data[1] = 1.0f;
    }
    char name[MODEL_NAME_MAX + 1];
    model_name_of(m, name, sizeof name);
    return model_finalize(m, name, err, errlen);
}
