/* model_internal: what the files of model/ share with each other (and with the unit tests),
 * but not with the worker: the vocabulary map, checksums, the tensor table and the state-blob
 * offsets. Everything the worker needs is in model.h.
 */
#ifndef IEVO_MODEL_INTERNAL_H
#define IEVO_MODEL_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "checksum.h"
#include "model_errf.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "model/ reads and writes little-endian files and state blobs by memcpy: port the byte order first"
#endif

#define MODEL_OOV_ID "<oov>"
#define MODEL_NAME_MAX 64            /* model_id = name + "-" + 12 hex fits in 96 */
#define MODEL_VOCAB_MAX (1 << 27)    /* rows per vocabulary, OOV included */


/* ---- vocabulary (vocab.c) ---- */
/* Builds a vocabulary: "<oov>" at index 0, then ids[0..n) in order. Ids must be non-empty,
 * unique, distinct from "<oov>" and free of '\n' and NUL. `what` names it in messages. */
int vocab_new(model_vocab **out, const char *const *ids, int n, const char *what, char *err, size_t errlen);
/* Parses the file form: ids joined by '\n', "<oov>" first. */
int vocab_from_joined(model_vocab **out, const char *text, size_t len, const char *what, char *err,
                      size_t errlen);
void vocab_free(model_vocab *v);
int vocab_size(const model_vocab *v);
const char *vocab_id(const model_vocab *v, int index); /* NULL when out of range */
int vocab_find(const model_vocab *v, const char *id, size_t len); /* -1 when absent */
/* The file form (ids joined by '\n', "<oov>" first), owned by v. */
const char *vocab_joined(const model_vocab *v, size_t *len);

/* ---- checksums (checksum.c) ---- */

/* n floats, zeroed, 64-byte aligned (the oneDNN and vectorised loops' buffers); free() them.
 * NULL when out of memory. */
static inline float *model_falloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes ? bytes : 64);
    return p;
}

/* ---- model object (tensors.c, model.c) ---- */
extern const char *const model_tensor_names[MODEL_N_TENSORS];
/* Allocates a model with zeroed parameters, its config resolved and its tensor table set; no
 * vocabularies, no heads. */
int model_alloc(model **out, const model_config *cfg, char *err, size_t errlen);
/* Names: 1..64 characters of [A-Za-z0-9._-]. */
int model_name_check(const char *name, char *err, size_t errlen);
/* Fingerprint of config + parameters + vocabularies (the vocabularies must be set). */
uint64_t model_compute_fingerprint(const model *m);
/* Sets m->fingerprint and m->model_id = "<name>-<first 12 hex of the fingerprint>". */
int model_finalize(model *m, const char *name, char *err, size_t errlen);
/* The name part of m->model_id (writes at most n bytes, NUL included). */
void model_name_of(const model *m, char *out, size_t n);

/* ---- the tensor table (tensors.c) ---- */
/* The MODEL_HEAD_* bit tensor t belongs to, or 0 (the model's body: every tensor that is no head's). */
int model_head_of_tensor(int t);
/* Whether tensor t exists in a model of (resolved) config c carrying heads `heads`. */
int model_tensor_present(const model_config *c, int heads, int t);
/* The shape of tensor t for (resolved) config c, present or not. */
void model_tensor_shape(const model_config *c, int t, int *ndim, int shape[2]);
/* Whether AdamW's decoupled weight decay applies to tensor t: weight matrices and embeddings,
 * not biases, LayerNorm parameters, the LRU's eigenvalue logs or the value head's biases. */
int model_tensor_decays(int t);
/* Re-lays the parameter block so that it also holds the heads in `heads` (zeroed), in tensor
 * order; keeps every existing value and updates n_params and the tensor table. Does not touch
 * the fingerprint (call model_finalize). */
int model_alloc_heads(model *m, int heads, char *err, size_t errlen);
/* The same with exactly the heads in `heads`: the others' tensors leave the block. */
int model_set_heads(model *m, int heads, char *err, size_t errlen);

/* ---- state blob (state.c) ---- */
#define MODEL_STATE_MAGIC 0x53564549u /* "IEVS" little-endian */
#define MODEL_STATE_VERSION 2
#define MODEL_STATE_SLOT 16      /* i32 item, u16 action, u8 flags, u8 0, f32 f[0], f32 f[1] */
#define MODEL_STATE_SLOT_TEXT 24 /* + u64 item key */
#define MODEL_ACTIONS_MAX 65536  /* action indices are u16 in the state */

typedef struct {
    int64_t events, last_ts;
    int32_t wlen, head;
} model_state_hdr;

typedef struct {
    int32_t item, action;
    float f[MODEL_FEATURES];   /* f[2] is has_value (0 or 1), stored as a flag bit */
    uint64_t key;              /* text models: the item key; 0 otherwise */
} model_state_slot;

/* Byte offsets inside a blob. */
static inline size_t model_state_off_h(const model *m) { (void)m; return MODEL_STATE_HEADER; }
static inline size_t model_state_off_c(const model *m) { return MODEL_STATE_HEADER + 4u * (size_t)m->cfg.hidden; }
static inline size_t model_state_off_u(const model *m) {
    return MODEL_STATE_HEADER + 4u * (size_t)model_rec_floats(&m->cfg);
}
/* the value head's user bias (s, c), when the head carries value.user */
static inline size_t model_state_off_vu(const model *m) { return model_state_off_u(m) + 2u * (size_t)m->cfg.out_dim; }
static inline size_t model_state_off_win(const model *m) {
    return model_state_off_vu(m) + (m->t[T_VALUE_USER].numel ? 8u : 0u);
}
static inline size_t model_state_slot_size(const model *m) {
    return m->cfg.text_dim > 0 ? MODEL_STATE_SLOT_TEXT : MODEL_STATE_SLOT;
}
/* The transformer blocks' cache (attention tf), after the window slots: per block, per window
 * slot, that position's key then value (2H floats), in the slots' ring order. */
static inline size_t model_state_off_kv(const model *m) {
    return model_state_off_win(m) + model_state_slot_size(m) * (size_t)m->cfg.window;
}
static inline size_t model_state_kv_floats(const model *m) {
    return m->cfg.attn == MODEL_ATTN_TF ? (size_t)m->cfg.blocks * m->cfg.window * 2 * m->cfg.hidden : 0;
}

void model_state_read_hdr(const void *state, model_state_hdr *h);
void model_state_write_hdr(void *state, const model_state_hdr *h);
void model_state_read_slot(const model *m, const void *state, int slot, model_state_slot *s);
void model_state_write_slot(const model *m, void *state, int slot, const model_state_slot *s);
/* The stored previous u as fp16 <-> floats (D). */
void model_state_read_u(const model *m, const void *state, float *u);
void model_state_write_u(const model *m, void *state, const float *u);
/* The value head's user bias sums (s, c); only for a model whose value head carries value.user. */
void model_state_read_vu(const model *m, const void *state, float *s, float *c);
void model_state_write_vu(const model *m, void *state, float s, float c);

/* The value head's user bias (model.h): one event with a value, g its value feature f[1],
 * pushed into (s, c); and b_u from them. The step and the trainer both go through these, so the
 * state and the trainer's scan agree to the bit. */
static inline void model_value_user_push(const model *m, float *s, float *c, int item, float g) {
    const float rho = m->t[T_VALUE_USER].data[0];
    *s = rho * *s + (g - m->t[T_VALUE_B].data[0] - m->t[T_VALUE_BIAS].data[item]);
    *c = rho * *c + 1.0f;
}
static inline float model_value_user_bias(const model *m, float s, float c) {
    const float d = c + m->t[T_VALUE_USER].data[1];
    return d > 0 ? s / d : 0.0f;
}

/* g(v) = sign(v) log1p(|v|) as a float: the value feature f[1] and the value head's target. */
float model_value_g(float value);
/* The event features f (F = 3), from the event and the state's counters (see model.h). */
void model_event_features(const model_event *ev, int64_t events, int64_t last_ts, float f[MODEL_FEATURES]);

/* ---- text adaptor (text.c) ---- */
/* a(t) = w (t - b), in double, as written: w (OUT, T), b (T), t (T) -> out (OUT). The reference. */
void text_adapt_ref(const float *w, const float *b, int OUT, int T, const float *t, float *out);
/* The same as w t - wb with wb = w b precomputed (text_wb): float dot products of 8 partial
 * sums, the same bits for a row whatever else is computed (the fast paths). */
void text_adapt_fast(const float *w, const float *wb, int OUT, int T, const float *t, float *out);
void text_wb(const float *w, const float *b, int OUT, int T, float *wb);

#endif
