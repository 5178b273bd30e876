/* model: the interest model, its parameters, its file format and its per-event step.
 *
 * Pure compute. This header and everything in model/ includes no Kafka, RocksDB or Avro header;
 * the worker hands in already-decoded events and opaque state blobs.
 *
 * The function (one event e_t for one user, state s_{t-1} -> interest vector u_t, state s_t):
 *
 *   gap_s  = events == 0 ? 0 : max(0, (ts - last_ts) / 1000)            seconds since previous event
 *   f      = [ log1p(gap_s) / 10,  has_value ? sign(v) * log1p(|v|) : 0,  has_value ]     (F = 3)
 *   x_t    = [ item_emb[item] (E) ; action_emb[action] (A) ; f (F) ]                     (I = E+A+F)
 *   LSTM:  (h_t, c_t) = LSTMCell(x_t, h_{t-1}, c_{t-1})     PyTorch semantics, gates i,f,g,o
 *   GRU:   h_t        = GRUCell(x_t, h_{t-1})               PyTorch semantics, gates r,z,n
 *          (n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): oneDNN's linear-before-reset GRU)
 *   LRU:   a stack of L layers of width H, each a linear recurrent unit with a complex diagonal
 *          state of N (Orvieto et al. 2023) in LRURec's post-LayerNorm block (Yue et al. 2024):
 *            z_0 = W_in x_t + b_in                                                     (H)
 *            per layer l (its state h^l, complex, N):
 *              lambda_k = exp(-exp(nu_k) + i exp(theta_k)),  gamma_k = exp(gamma_log_k)
 *              h^l_t    = lambda . h^l_{t-1} + gamma . (B z_{l-1} + b_B)   (B: H -> complex N)
 *              y        = Re(C h^l_t) + b_C    (one real (H, 2N) matrix on [Re h ; Im h])
 *              z'       = LN1(z_{l-1} + y)
 *              z_l      = LN2(z' + W2 gelu(W1 z' + b1) + b2)                (W1: H -> F, erf GELU)
 *            h_t = z_L: the stack's output, read by the attention below as the cells' h_t is.
 *          The state is O(1) in the history: every layer's h^l (2 N L floats) and h_t itself.
 *   window = the last min(events+1, W) event inputs x_j, the current one included
 *   q      = W_q h_t + b_q                      (K)
 *   k_j    = W_k x_j + b_k,  v_j = W_v x_j + b_v (K each)
 *   a      = softmax_j( q . k_j / sqrt(K) )
 *   ctx    = sum_j a_j v_j                      (K)
 *   u_t    = W_out [h_t ; ctx] + b_out          (D)    the interest vector
 *   drift  = events == 0 ? 0 : 1 - cos(u_t, fp16(u_{t-1})),  cos = u.v / max(|u||v|, 1e-12)
 *            (the state keeps u_{t-1} as IEEE fp16, used for nothing but the drift: both backends
 *            compute the drift against the fp16-rounded previous vector; u_t itself is exact)
 *
 * Item and action ids map to vocabulary indices; index 0 of each vocabulary is the shared
 * out-of-vocabulary row, so an unknown id still has an embedding.
 *
 * Text (config text_dim = T > 0; 0 = a model without text, exactly the function above). Text
 * vectors t (T floats: USE-lite's 512-d unit vectors, model/use_encoder.h) come from outside the
 * model: an item's catalogue text (title, description) looked up by its item key
 * (model_item_key(id): FNV-1a 64 of the id's bytes), and an event's own text (a query, a review).
 * A learned whitening-style adaptor maps them into the item part of the input:
 *
 *   a(t)   = text.w (t - text.b)                         text.w (E, T), text.b (T)
 *   c_j    = item_emb[item_j] + (item j has a text ? a(t_item_j) : 0)     the item content (E)
 *   x~_j   = [ c_j ; action_emb[action_j] ; f_j ]        what the attention window holds (I)
 *   x_t    = x~_t + [ event t has a text ? a(t_event_t) : 0 ; 0 ; 0 ]    the RNN's input (I)
 *
 * so an event's own text enters the recurrent cell at its step only, while the window (the
 * current event included) keys on item content: the state keeps item indices and item keys and
 * looks the item texts up again at every step, never event texts. An item outside the
 * vocabulary is item_emb[0] + a(t_item) (a text model keeps item_emb[0], the OOV row, at zero:
 * a new item is its text alone). The item text a step sees is the one the lookup returns at that
 * step: a changed catalogue text changes the content of every window entry of that item.
 *
 * Optional heads (tensors a trained model carries; a model without them serves u_t all the same):
 *   scoring:  s_i    = u_t . S_i + score.item_bias[i]  for every item i >= 1, where
 *             S_i    = score.item_emb[i] + (item i has a text ? a_out(t_i) : 0),
 *             a_out(t) = score.text_w (t - score.text_b)        (text models; D x T, T)
 *             (s_0 = -inf: the OOV row is never a recommendation). An item without a vocabulary
 *             row (a new item, ranked from its text: model_score_rows) has S = a_out(t) and the
 *             cold-item bias score.item_bias[0]. softmax_i(s_i) is the model's distribution of
 *             the user's next item; `ievo train` fits it by cross-entropy.
 *
 *   value:    vhat_i = ginv( u_t . (value.w + value.item_emb[i]) + value.item_bias[i] + value.bias + b_u )
 *             g(v) = sign(v) log1p(|v|) (the value feature's transform), ginv(y) = sign(y) expm1(|y|):
 *             the predicted value (e.g. rating) of the user's next event if it is item i (value.w
 *             is the part every item shares: how the user rates in general); trained
 *             by squared error in g-space, so a heavy-tailed value (dwell seconds, prices) cannot
 *             dominate the loss.
 *             b_u, the user bias, is 0 unless the head carries value.user = (rho, lambda)
 *             (MODEL_HEAD_VALUE_USER): then the state keeps, over the user's events with a value,
 *               r_j = g(v_j) - value.bias - value.item_bias[item_j]   (the event's residual)
 *               s  <- rho s + r_j,   c <- rho c + 1                     (s = c = 0 at first)
 *               b_u = c + lambda > 0 ? s / (c + lambda) : 0
 *             a recency-weighted mean residual shrunk towards 0: the user + item bias model, with
 *             a user bias the stream keeps up to date (there is no per-user table to look up).
 *   The scoring table is its own tensor, D wide in u's space, so E != D stays possible and the
 *   served function never depends on how it was trained. `ievo train` ties it to item_emb when
 *   E == D (one parameter during training, stored twice, equal): on ML-100K that measured
 *   +0.008 test NDCG@10 (docs/training.md). It ties score.text_* to text.* the same way.
 */
#ifndef IEVO_MODEL_H
#define IEVO_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define MODEL_FORMAT_VERSION 1
#define MODEL_FEATURES 3          /* F: gap, value, has_value */
#define MODEL_ERR_LEN 256

typedef enum { MODEL_CELL_LSTM = 0, MODEL_CELL_GRU = 1, MODEL_CELL_LRU = 2, MODEL_CELL_NONE = 3 } model_cell;
/* What reads h_t: today's window attention over the inputs, or transformer blocks over the
 * recurrent outputs of the window (model.h's top comment). */
typedef enum { MODEL_ATTN_WINDOW = 0, MODEL_ATTN_TF = 1 } model_attn;

typedef struct {
    model_cell cell;  /* the recurrent family: LSTM, GRU (one layer each), an LRU stack, or none (the
                         input projection alone: h_t = W_in x_t + b_in) */
    int item_dim;     /* E */
    int action_dim;   /* A */
    int hidden;       /* H: the recurrent part's output (LRU: the width of every layer) */
    int attn_dim;     /* K */
    int out_dim;      /* D */
    int window;       /* W */
    int n_items;      /* vocabulary size, OOV row 0 included */
    int n_actions;    /* vocabulary size, OOV row 0 included; at most 65,536 (u16 in the state) */
    int text_dim;     /* T: text vector size (512 for USE-lite), 0 = no text */
    int layers;       /* L: LRU layers (LSTM/GRU: 1); 0 = the cell's default (LRU: 2) */
    int state_dim;    /* N: LRU complex state size per layer; 0 = H. LSTM/GRU: 0 */
    int ffn_dim;      /* F: the LRU's and the transformer's feed-forward width; 0 = 2H. Else 0 */
    model_attn attn;  /* window (default) or tf */
    int blocks;       /* transformer blocks; 0 = 2 (tf only) */
    int heads;        /* attention heads per block, dividing H; 0 = 2 (tf only) */
} model_config;

/* Defaults: LSTM, E=64, A=8, H=64, K=64, D=64, W=16, no text (vocabulary sizes come from the data). */
void model_config_default(model_config *cfg);
/* Sets one key ("cell": lstm, gru, lru or none; "attention": window or tf; "item_dim", "action_dim",
 * "hidden", "attn_dim", "out_dim", "window", "text_dim", "layers", "state_dim", "ffn_dim", "blocks",
 * "heads") from text. Returns 0, or -1 with err filled. */
int model_config_set(model_config *cfg, const char *key, const char *value, char *err, size_t errlen);
/* Checks ranges (dims 1..4096, window 1..1024, text_dim 0..4096, n_actions 1..65536; LRU: layers
 * 1..16, state_dim 1..4096; LSTM/GRU/none: no layers or state_dim; ffn_dim 1..16384 with an LRU
 * or transformer blocks, else none; tf: blocks 1..16, heads dividing H). The zeros that stand for
 * a default are resolved first (model_config_resolve). */
int model_config_check(const model_config *cfg, char *err, size_t errlen);
/* The config with every "0 = default" field replaced by its value for the family (LRU: layers
 * 2, state_dim H; LSTM/GRU: layers 1; none: layers 0; ffn_dim 2H with an LRU or tf; tf: blocks 2,
 * heads 2). A model's own config is always resolved. */
model_config model_config_resolve(const model_config *cfg);
/* "lstm", "gru", "lru", "none". */
const char *model_cell_name(model_cell cell);
/* The architecture in a few characters, for logs and `ievo model info`: the recurrent part
 * ("gru", "lstm", "lru2": an LRU stack of 2 layers, "none"), then what reads it ("+window", or
 * "+tf2": 2 transformer blocks). Writes at most n bytes. */
void model_family_name(const model_config *cfg, char *out, size_t n);
static inline int model_input_dim(const model_config *c) { return c->item_dim + c->action_dim + MODEL_FEATURES; }
static inline int model_gates(const model_config *c) { return c->cell == MODEL_CELL_LSTM ? 4 : 3; }
/* Floats of recurrent state per user: LSTM h and c (2H), GRU h (H), LRU the output h and the
 * complex state of every layer (H + 2 N L). */
static inline int model_rec_floats(const model_config *c) {
    return c->cell == MODEL_CELL_LSTM ? 2 * c->hidden
           : c->cell == MODEL_CELL_LRU ? c->hidden + 2 * c->state_dim * c->layers
                                       : c->hidden;
}

/* A named tensor inside the model's single parameter allocation. */
typedef struct {
    const char *name;
    int ndim;
    int shape[2];
    float *data;      /* points into model->params */
    size_t numel;
} model_tensor;

/* Parameter tensors, PyTorch layouts (row-major, out x in), in the order of the parameter block
 * and the file; which of them a model has follows from its config and heads
 * (model_tensor_present), and a tensor it lacks has numel 0 and data NULL:
 *   item_emb    (n_items, E)         action_emb (n_actions, A)                       every model
 *   LSTM / GRU (G = 4 / 3 gates):
 *   rnn.w_ih    (G*H, I)             rnn.w_hh   (G*H, H)      rnn.b_ih (G*H)   rnn.b_hh (G*H)
 *   LRU stack (L layers of width H, complex state N, feed-forward F; layer l's rows are the l-th
 *   block of each stacked tensor):
 *   lru.in.w    (H, I)   lru.in.b (H)                  the input projection
 *   lru.log     (3L, N)                                per layer: nu, theta, gamma (logs, below)
 *   lru.b.w     (2L*N, H)  lru.b.b (L, 2N)             x -> the complex input [re ; im]
 *   lru.c.w     (L*H, 2N)  lru.c.b (L, H)              [h_re ; h_im] -> y (Re(C h) as one real matrix)
 *   lru.ln      (4L, H)                                per layer: ln1.w, ln1.b, ln2.w, ln2.b
 *   lru.ffn.w1  (L*F, H)  lru.ffn.b1 (L, F)  lru.ffn.w2 (L*H, F)  lru.ffn.b2 (L, H)
 *   (cell none: lru.in.w and lru.in.b alone)
 *   window attention (attention window):
 *   attn.w_q    (K, H)  attn.b_q (K)  attn.w_k (K, I)  attn.b_k (K)  attn.w_v (K, I)  attn.b_v (K)
 *   transformer blocks (attention tf; Lt blocks of width H, per block the l-th block of rows):
 *   tf.ln       (4Lt, H)                            per block: ln1.w, ln1.b, ln2.w, ln2.b
 *   tf.qkv.w    (Lt*3H, H)  tf.qkv.b (Lt, 3H)       rows q, then k, then v
 *   tf.o.w      (Lt*H, H)   tf.o.b (Lt, H)
 *   tf.ffn.w1   (Lt*F, H)  tf.ffn.b1 (Lt, F)  tf.ffn.w2 (Lt*H, F)  tf.ffn.b2 (Lt, H)
 *   tf.lnf      (2, H)                              the final LayerNorm's gain and shift
 *   the output, every model:
 *   out.w       (D, H+K) (window) or (D, H) (tf)     out.b (D)
 *   the text adaptor, exactly when text_dim > 0:
 *   text.b (T)  text.w (E, T)
 *   the heads:
 *   score.item_emb (n_items, D)  score.item_bias (n_items)  score.text_b (T)  score.text_w (D, T)
 *   (score.text_* only in text models)
 *   value.item_emb (n_items, D)  value.item_bias (n_items)  value.bias (1)  value.w (D)
 *   value.user (2): the user bias's decay and shrinkage (MODEL_HEAD_VALUE_USER)
 */
enum {
    T_ITEM_EMB, T_ACTION_EMB,
    T_W_IH, T_W_HH, T_B_IH, T_B_HH,
    T_LRU_IN_W, T_LRU_IN_B, T_LRU_LOG, T_LRU_BW, T_LRU_BB, T_LRU_CW, T_LRU_CB, T_LRU_LN,
    T_LRU_W1, T_LRU_B1, T_LRU_W2, T_LRU_B2,
    T_W_Q, T_B_Q, T_W_K, T_B_K, T_W_V, T_B_V,
    T_TF_LN, T_TF_QKV_W, T_TF_QKV_B, T_TF_O_W, T_TF_O_B, T_TF_W1, T_TF_B1, T_TF_W2, T_TF_B2, T_TF_LNF,
    T_OUT_W, T_OUT_B,
    T_TEXT_B, T_TEXT_W,
    T_SCORE_EMB, T_SCORE_BIAS, T_SCORE_TEXT_B, T_SCORE_TEXT_W,
    T_VALUE_EMB, T_VALUE_BIAS, T_VALUE_B, T_VALUE_W, T_VALUE_USER,
    MODEL_N_TENSORS
};
#define MODEL_HEAD_SCORE 1 /* score.item_emb + score.item_bias (+ score.text_b + score.text_w) */
#define MODEL_HEAD_VALUE 2 /* value.item_emb + value.item_bias + value.bias + value.w */
#define MODEL_HEAD_VALUE_USER 4 /* value.user: the value head's user bias from the state (needs MODEL_HEAD_VALUE) */

typedef struct model_vocab model_vocab; /* string id -> index, index -> string id */

typedef struct {
    model_config cfg;
    float *params;                 /* one allocation holding every tensor */
    size_t n_params;
    model_tensor t[MODEL_N_TENSORS];   /* every tensor a model may have; numel 0 where this one has none */
    model_vocab *items;            /* index 0 is "<oov>" */
    model_vocab *actions;          /* index 0 is "<oov>" */
    char model_id[96];             /* "<name>-<first 12 hex of the parameter checksum>" */
    uint64_t fingerprint;          /* checksum of config + parameters + vocabularies */
    char *meta_json;               /* free-form metadata object carried in the file (training config, metrics), or NULL */
} model;

void model_free(model *m);

/* Model file: the safetensors layout. 8-byte little-endian header length N, N bytes of JSON,
 * then raw little-endian tensor bytes. The JSON maps tensor names to {dtype, shape,
 * data_offsets} and carries "__metadata__" (string -> string): format "ievo-model", format
 * version, the config, name, model_id, a CRC-32C of the data section, and the vocabularies
 * live in U8 tensors "vocab.items" / "vocab.actions" (ids joined by '\n'). Loading checks
 * everything (sizes, offsets, shapes against the config, checksum) and reports what is wrong. */
int model_save(const model *m, const char *path, char *err, size_t errlen);
int model_load(model **out, const char *path, char *err, size_t errlen);
/* Replaces the free-form metadata JSON object (copied). */
int model_set_meta(model *m, const char *json_object, char *err, size_t errlen);

/* Vocabulary lookups. Unknown ids return 0 (the OOV row). */
int model_item_index(const model *m, const char *id, size_t len);
/* The item key of an id: FNV-1a 64 over its bytes (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3), the same in every process and on every machine. 0 is never returned (an id
 * hashing to 0 gets 1), so 0 can mean "no key". Text lookups and window slots use it. */
uint64_t model_item_key(const char *id, size_t len);
int model_action_index(const model *m, const char *id, size_t len);
const char *model_item_id(const model *m, int index);   /* NULL when out of range */
const char *model_action_id(const model *m, int index); /* NULL when out of range */

/* ---- per-user state ------------------------------------------------------------------------
 * A fixed-size little-endian blob, model_state_size(m) bytes, owned by the caller (the worker
 * stores it in RocksDB as is). Layout, version 2 (version 1 is not read: state dirs are bound
 * to a model fingerprint, so a new build starts them afresh or replays):
 *   0  u32 magic 0x53564549 ("IEVS")   4 u16 version (2)   6 u16 cell
 *   8  i64 events applied              16 i64 last event time (ms): the ts of the last event applied
 *                                         (an out-of-order event sets it back; its own gap is 0)
 *   24 u16 window length (<= W)        26 u16 next window slot (ring head)
 *   28 u64 model fingerprint
 *   36 f32 h[H], then c[H] (LSTM only) or the LRU layers' states (LRU only: layer by layer, N
 *      real parts then N imaginary parts each, 2 N L floats), then f16 u[D] (the previous
 *      interest vector, IEEE binary16, round to nearest even, saturating at +-65504: used only
 *      for the drift)
 *   then W slots of { i32 item; u16 action; u8 flags (bit 0: has_value); u8 0;
 *                     f32 f[0] (gap feature); f32 f[1] (value feature);
 *                     u64 item key (text models only) }     16 bytes, or 24 with text
 *   (f[2], has_value, is the flag). With H = D = 64, W = 16 that is 932 bytes for an LSTM
 *   (1,060 with text; version 1 took 1,128), 676 for a GRU (804 with text; version 1: 872).
 *   A model whose value head carries value.user keeps the user bias's f32 s, f32 c (8 bytes)
 *   between u and the window. A model with transformer blocks (attention tf) keeps, after the
 *   window, their key/value cache: per block, per window slot (the same ring), f32 k[H] then
 *   v[H] of that position (blocks * W * 2H floats: 16 KB at 2 blocks, W = 16, H = 64).
 * A zeroed blob is not valid; model_state_init makes the empty state (events = 0).
 * Unused window slots are zeros: a state with few events ends in zero bytes (the worker stores
 * it without them, worker_record.h). */
#define MODEL_STATE_HEADER 36   /* bytes 0..35: what model_state_check reads */
size_t model_state_size(const model *m);
void model_state_init(const model *m, void *state);
/* Returns 0 when the blob belongs to this model (magic, version, fingerprint), -1 otherwise. */
int model_state_check(const model *m, const void *state, char *err, size_t errlen);
/* model_state_check plus the counters in range (0 <= events < INT64_MAX, wlen <= min(events, W),
 * head < W; wlen and head are unsigned in the blob). model_step checks the window slots it
 * reads itself. */
int model_state_validate(const model *m, const void *state, char *err, size_t errlen);
/* model_state_validate plus everything a step or model_state_output reads from the blob: each
 * window slot in use a known item and action with finite features in the range a step writes, h
 * (and c) within what a step produces, the previous vector finite, at most MODEL_STATE_EVENTS_MAX
 * events. For a state read back from outside the process (a store, a changelog), so that one the
 * check accepts is one the step accepts, now and for as many events as a user can have. */
#define MODEL_STATE_EVENTS_MAX (INT64_C(1) << 53)   /* 285 years of a million events a second */
int model_state_validate_stored(const model *m, const void *state, char *err, size_t errlen);

int64_t model_state_events(const void *state);
int64_t model_state_last_ts(const void *state);
/* The stored previous interest vector, decoded from fp16 into out (D floats): the last u_t to
 * within fp16 rounding (relative 2^-11). model_state_output gives it exactly. */
void model_state_vector(const model *m, const void *state, float *out);

/* IEEE binary16 conversions as the state uses them (round to nearest even, saturating). */
uint16_t model_f16_from_f32(float x);
float model_f32_from_f16(uint16_t h);

/* One event, already mapped to vocabulary indices. */
typedef struct {
    int32_t item;
    int32_t action;
    int64_t ts;        /* event time, ms */
    float value;       /* meaningful only when has_value */
    int has_value;
    uint64_t item_key;        /* text models: model_item_key(item id), 0 = none (no item text lookup) */
    const float *event_text;  /* text models: the event's own text vector (text_dim floats), or NULL */
} model_event;

/* ---- the step -------------------------------------------------------------------------------
 * A runner owns scratch buffers and, for the oneDNN backend, primitives created once per
 * batch-size bucket and weights reordered once. One runner per compute thread. */
typedef enum { MODEL_BACKEND_SCALAR = 0, MODEL_BACKEND_DNNL = 1 } model_backend;
typedef struct model_runner model_runner;

int model_runner_new(model_runner **out, const model *m, model_backend backend, int max_batch,
                     char *err, size_t errlen);
void model_runner_free(model_runner *r);

/* Text models: where item text vectors come from at step time. fn(ctx, key) returns the
 * item's text vector (text_dim floats) or NULL (no text); it is called during model_step and
 * model_state_output only, for the current event's key and for the keys in the window. Set
 * once (fn NULL = no item text). The oneDNN runner caches a(t) per key and pointer: when the
 * vector behind a key changes in place, call model_runner_text_changed(r, key) before the next
 * step (a different pointer is noticed by itself). */
typedef const float *(*model_item_text_fn)(void *ctx, uint64_t item_key);
void model_runner_set_text(model_runner *r, model_item_text_fn fn, void *ctx);
void model_runner_text_changed(model_runner *r, uint64_t item_key);

/* Applies event ev[i] to states[i] for i in [0, n), n <= max_batch. The n states must belong to
 * n distinct users (the caller splits a batch into waves). Writes u_t to out_vec + i*D and the
 * drift to out_drift[i]; updates each state in place. Returns 0, or -1 with err filled. */
int model_step(model_runner *r, int n, void *const *states, const model_event *ev,
               float *out_vec, float *out_drift, char *err, size_t errlen);

/* The interest vector a state holds (D floats): u_t of its last event, recomputed from h_t and
 * the window with the scalar kernels (and the runner's item text lookup). Equals what model_step
 * returned for that event up to float rounding; zeros for the empty state. Returns 0, or -1. */
int model_state_output(model_runner *r, const void *state, float *out, char *err, size_t errlen);

/* ---- heads: scoring and value prediction (model/heads.c) -----------------------------------
 * What the worker calls to turn u_t into recommendations: model_score_items (or the batched
 * form) for every item, model_top_k to pick the best K unseen ones (model_state_items lists the
 * items in a user's state window, to exclude them), model_predict_value for a value. */

/* The MODEL_HEAD_* bits this model carries. */
int model_heads(const model *m);
/* scores (n_items) for one interest vector u (D): the scoring formula in the top comment,
 * scores[0] = -INFINITY. Returns 0, or -1 when the model has no scoring head. A text model's
 * item texts are not in the model: these two leave a_out out (use model_score_rows, then
 * model_score_with, to rank with the text part). */
int model_score_items(const model *m, const float *u, float *scores, char *err, size_t errlen);
/* The same for n vectors U (n, D) -> scores (n, n_items), as one oneDNN GEMM. */
int model_score_items_batch(const model *m, int n, const float *U, float *scores, char *err, size_t errlen);
/* Scoring rows for n candidates: idx[r] a vocabulary index (0: an item without a row, ranked by
 * its text alone) and text[r] its text vector or NULL (text may be NULL for all). Writes
 * S (n, D) = score.item_emb[idx] (zeros for idx 0) + a_out(text) and bias (n) =
 * score.item_bias[idx] (idx 0: the cold-item bias score.item_bias[0]). Returns 0, or -1. */
int model_score_rows(const model *m, int n, const int32_t *idx, const float *const *text, float *S, float *bias,
                     char *err, size_t errlen);
/* scores (n, n_rows) = U (n, D) @ S (n_rows, D)^T + bias, one oneDNN GEMM. */
int model_score_with(const model *m, int n, const float *U, int n_rows, const float *S, const float *bias,
                     float *scores, char *err, size_t errlen);
/* The predicted value of item `item` for interest vector u (D) and user bias b_u (the formula
 * in the top comment); NAN without a value head or for an index outside the vocabulary. */
float model_predict_value_user(const model *m, const float *u, float user_bias, int item);
/* The same with b_u = 0: a head without value.user, or a user without a state. */
float model_predict_value(const model *m, const float *u, int item);
/* The user bias b_u a state holds (0 when the model's value head has no value.user). The state
 * must pass model_state_check. */
float model_state_user_bias(const model *m, const void *state);
/* The k highest scores among scores[0..n) (ties: lower index first), skipping -inf/NaN entries
 * and the n_exclude indices in `exclude` (any order, may repeat). Writes indices to idx and,
 * if not NULL, scores to val, best first; returns how many (<= k). O(n log k). */
int model_top_k(const float *scores, int n, int k, const int32_t *exclude, int n_exclude, int32_t *idx, float *val);
/* The item indices in a state's attention window, oldest first (at most W); returns the count.
 * The state must pass model_state_check. */
int model_state_items(const model *m, const void *state, int32_t *items);

/* Pins the compute runtime (OpenMP under oneDNN) to `threads` threads; call once at start. */
void model_runtime_init(int threads);

#endif
