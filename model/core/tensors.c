/* tensors: the model's parameter block and its table of named tensors (model.h's enum, in that
 * order). Which tensors a model has follows from its config (the recurrent family, text) and
 * its heads; the present ones follow each other in enum order with no gaps, in memory and in
 * the file.
 *
 * Every family's tensors have their place in the one enum, so a model of today's LSTM/GRU
 * family has the block, file and fingerprint it had before the other families existed, and the
 * heads live in the same block after the rest: saving, fingerprinting and the trainer's
 * gradient/optimizer blocks treat every tensor alike.
 */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

const char *const model_tensor_names[MODEL_N_TENSORS] = {
    [T_ITEM_EMB] = "item_emb",         [T_ACTION_EMB] = "action_emb",
    [T_W_IH] = "rnn.w_ih",             [T_W_HH] = "rnn.w_hh",
    [T_B_IH] = "rnn.b_ih",             [T_B_HH] = "rnn.b_hh",
    [T_LRU_IN_W] = "lru.in.w",         [T_LRU_IN_B] = "lru.in.b",
    [T_LRU_LOG] = "lru.log",           [T_LRU_BW] = "lru.b.w",
    [T_LRU_BB] = "lru.b.b",            [T_LRU_CW] = "lru.c.w",
    [T_LRU_CB] = "lru.c.b",            [T_LRU_LN] = "lru.ln",
    [T_LRU_W1] = "lru.ffn.w1",         [T_LRU_B1] = "lru.ffn.b1",
    [T_LRU_W2] = "lru.ffn.w2",         [T_LRU_B2] = "lru.ffn.b2",
    [T_W_Q] = "attn.w_q",              [T_B_Q] = "attn.b_q",
    [T_W_K] = "attn.w_k",              [T_B_K] = "attn.b_k",
    [T_W_V] = "attn.w_v",              [T_B_V] = "attn.b_v",
    [T_TF_LN] = "tf.ln",               [T_TF_QKV_W] = "tf.qkv.w",
    [T_TF_QKV_B] = "tf.qkv.b",         [T_TF_O_W] = "tf.o.w",
    [T_TF_O_B] = "tf.o.b",             [T_TF_W1] = "tf.ffn.w1",
    [T_TF_B1] = "tf.ffn.b1",           [T_TF_W2] = "tf.ffn.w2",
    [T_TF_B2] = "tf.ffn.b2",           [T_TF_LNF] = "tf.lnf",
    [T_OUT_W] = "out.w",               [T_OUT_B] = "out.b",
    [T_TEXT_B] = "text.b",             [T_TEXT_W] = "text.w",
    [T_SCORE_EMB] = "score.item_emb",  [T_SCORE_BIAS] = "score.item_bias",
    [T_SCORE_TEXT_B] = "score.text_b", [T_SCORE_TEXT_W] = "score.text_w",
    [T_VALUE_EMB] = "value.item_emb",  [T_VALUE_BIAS] = "value.item_bias",
    [T_VALUE_B] = "value.bias",        [T_VALUE_W] = "value.w",
    [T_VALUE_USER] = "value.user",
};

void model_tensor_shape(const model_config *c, int t, int *ndim, int shape[2]) {
    const int G = model_gates(c), H = c->hidden, I = model_input_dim(c), K = c->attn_dim, D = c->out_dim;
    const int L = c->layers, N = c->state_dim, F = c->ffn_dim, T = c->text_dim, NI = c->n_items, Lt = c->blocks;
    const int tf = c->attn == MODEL_ATTN_TF;
    int s[MODEL_N_TENSORS][3] = {
        [T_ITEM_EMB] = {2, NI, c->item_dim}, [T_ACTION_EMB] = {2, c->n_actions, c->action_dim},
        [T_W_IH] = {2, G * H, I}, [T_W_HH] = {2, G * H, H}, [T_B_IH] = {1, G * H, 0}, [T_B_HH] = {1, G * H, 0},
        [T_LRU_IN_W] = {2, H, I}, [T_LRU_IN_B] = {1, H, 0}, [T_LRU_LOG] = {2, 3 * L, N},
        [T_LRU_BW] = {2, 2 * L * N, H}, [T_LRU_BB] = {2, L, 2 * N}, [T_LRU_CW] = {2, L * H, 2 * N},
        [T_LRU_CB] = {2, L, H}, [T_LRU_LN] = {2, 4 * L, H}, [T_LRU_W1] = {2, L * F, H}, [T_LRU_B1] = {2, L, F},
        [T_LRU_W2] = {2, L * H, F}, [T_LRU_B2] = {2, L, H},
        [T_W_Q] = {2, K, H}, [T_B_Q] = {1, K, 0}, [T_W_K] = {2, K, I}, [T_B_K] = {1, K, 0},
        [T_W_V] = {2, K, I}, [T_B_V] = {1, K, 0},
        [T_TF_LN] = {2, 4 * Lt, H}, [T_TF_QKV_W] = {2, Lt * 3 * H, H}, [T_TF_QKV_B] = {2, Lt, 3 * H},
        [T_TF_O_W] = {2, Lt * H, H}, [T_TF_O_B] = {2, Lt, H}, [T_TF_W1] = {2, Lt * F, H}, [T_TF_B1] = {2, Lt, F},
        [T_TF_W2] = {2, Lt * H, F}, [T_TF_B2] = {2, Lt, H}, [T_TF_LNF] = {2, 2, H},
        [T_OUT_W] = {2, D, tf ? H : H + K}, [T_OUT_B] = {1, D, 0},
        [T_TEXT_B] = {1, T, 0}, [T_TEXT_W] = {2, c->item_dim, T},
        [T_SCORE_EMB] = {2, NI, D}, [T_SCORE_BIAS] = {1, NI, 0}, [T_SCORE_TEXT_B] = {1, T, 0}, [T_SCORE_TEXT_W] = {2, D, T},
        [T_VALUE_EMB] = {2, NI, D}, [T_VALUE_BIAS] = {1, NI, 0}, [T_VALUE_B] = {1, 1, 0}, [T_VALUE_W] = {1, D, 0},
        [T_VALUE_USER] = {1, 2, 0},
    };
    *ndim = s[t][0];
    shape[0] = s[t][1];
    shape[1] = s[t][0] == 2 ? s[t][2] : 0;
}

int model_head_of_tensor(int t) {
    if (t >= T_SCORE_EMB && t <= T_SCORE_TEXT_W) return MODEL_HEAD_SCORE;
    if (t >= T_VALUE_EMB && t <= T_VALUE_W) return MODEL_HEAD_VALUE;
    if (t == T_VALUE_USER) return MODEL_HEAD_VALUE_USER;
    return 0;
}

int model_tensor_present(const model_config *c, int heads, int t) {
    const int text = t == T_TEXT_B || t == T_TEXT_W || t == T_SCORE_TEXT_B || t == T_SCORE_TEXT_W;
    const int head = model_head_of_tensor(t);
    if (text && c->text_dim <= 0) return 0;
    if (head) return (heads & head) != 0;
    if (t >= T_W_IH && t <= T_B_HH) return c->cell == MODEL_CELL_LSTM || c->cell == MODEL_CELL_GRU;
    if (t == T_LRU_IN_W || t == T_LRU_IN_B) return c->cell == MODEL_CELL_LRU || c->cell == MODEL_CELL_NONE;
    if (t >= T_LRU_LOG && t <= T_LRU_B2) return c->cell == MODEL_CELL_LRU;
    if (t >= T_W_Q && t <= T_B_V) return c->attn == MODEL_ATTN_WINDOW;
    if (t >= T_TF_LN && t <= T_TF_LNF) return c->attn == MODEL_ATTN_TF;
    return 1;
}

int model_tensor_decays(int t) {
    switch (t) {
    case T_ITEM_EMB: case T_ACTION_EMB: case T_W_IH: case T_W_HH: case T_LRU_IN_W: case T_LRU_BW: case T_LRU_CW:
    case T_LRU_W1: case T_LRU_W2: case T_W_Q: case T_W_K: case T_W_V: case T_TF_QKV_W: case T_TF_O_W: case T_TF_W1:
    case T_TF_W2: case T_OUT_W: case T_TEXT_W:
    case T_SCORE_EMB: case T_SCORE_TEXT_W: case T_VALUE_EMB:
        return 1;
    default: /* biases, LayerNorm gains, the LRU's eigenvalue logs, the value head's small parts */
        return 0;
    }
}

/* Floats of the tensors of cfg with `heads`. */
static size_t count_params(const model_config *c, int heads) {
    size_t total = 0;
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        if (!model_tensor_present(c, heads, t)) continue;
        int nd, sh[2];
        model_tensor_shape(c, t, &nd, sh);
        total += (size_t)sh[0] * (nd == 2 ? (size_t)sh[1] : 1);
    }
    return total;
}

/* Lays out the tensor table of m->cfg with `heads` over p (zeroed, count_params floats), copying
 * every tensor m already has from its old place. */
static void lay_out(model *m, int heads, float *p) {
    size_t off = 0;
    for (int t = 0; t < MODEL_N_TENSORS; t++) {
        model_tensor *x = &m->t[t];
        x->name = model_tensor_names[t];
        if (!model_tensor_present(&m->cfg, heads, t)) {
            x->ndim = 0, x->shape[0] = x->shape[1] = 0, x->numel = 0, x->data = NULL;
            continue;
        }
        model_tensor_shape(&m->cfg, t, &x->ndim, x->shape);
        size_t numel = (size_t)x->shape[0] * (x->ndim == 2 ? (size_t)x->shape[1] : 1);
        if (x->numel) memcpy(p + off, x->data, numel * sizeof(float)); /* the tensor was already there */
        x->numel = numel;
        x->data = p + off;
        off += numel;
    }
}

static float *alloc_block(size_t n) {
    /* 64-byte aligned base; tensors follow each other with no padding (the file has no holes). */
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes ? bytes : 64);
    return p;
}

int model_alloc(model **out, const model_config *cfg, char *err, size_t errlen) {
    *out = NULL;
    if (model_config_check(cfg, err, errlen)) return -1;
    model *m = calloc(1, sizeof *m);
    if (!m) return model_errf(err, errlen, "model: out of memory");
    m->cfg = model_config_resolve(cfg);
    m->n_params = count_params(&m->cfg, 0);
    if (!(m->params = alloc_block(m->n_params))) {
        size_t n = m->n_params;
        free(m);
        return model_errf(err, errlen, "model: out of memory for %zu parameters", n);
    }
    lay_out(m, 0, m->params);
    *out = m;
    return 0;
}

int model_heads(const model *m) {
    int h = 0;
    if (m->t[T_SCORE_EMB].numel) h |= MODEL_HEAD_SCORE;
    if (m->t[T_VALUE_EMB].numel) h |= MODEL_HEAD_VALUE;
    if (m->t[T_VALUE_USER].numel) h |= MODEL_HEAD_VALUE_USER;
    return h;
}

int model_alloc_heads(model *m, int heads, char *err, size_t errlen) {
    return model_set_heads(m, model_heads(m) | heads, err, errlen);
}

int model_set_heads(model *m, int want, char *err, size_t errlen) {
    if (want & ~(MODEL_HEAD_SCORE | MODEL_HEAD_VALUE | MODEL_HEAD_VALUE_USER))
        return model_errf(err, errlen, "model: unknown heads 0x%x", want);
    if ((want & MODEL_HEAD_VALUE_USER) && !(want & MODEL_HEAD_VALUE))
        return model_errf(err, errlen, "model: the value head's user bias needs the value head");
    size_t n = count_params(&m->cfg, want);
    float *p = alloc_block(n);
    if (!p) return model_errf(err, errlen, "model: out of memory for %zu parameters", n);
    lay_out(m, want, p);
    free(m->params);
    m->params = p;
    m->n_params = n;
    return 0;
}
