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
