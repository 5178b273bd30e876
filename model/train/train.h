/* train: fitting the model of model.h to event histories (the trainer behind `ievo train`).
 *
 * What is trained is exactly the served function: the same inputs x_t (embeddings + the F
 * features computed as model_step computes them), the same RNN, the same window attention over
 * the last min(t+1, W) inputs including the current one, the same u_t. On top of u_t the
 * optional heads of model.h: the scoring head, trained by softmax cross-entropy over all items
 * (or a sampled softmax) at every position against the user's next item, and the value head,
 * trained by squared error in g-space against the next event's value when it has one.
 *
 * Protocol (leave-one-out): a user with n events keeps event n-1 for the test and event n-2 for
 * validation; training positions are t = 0..n-4 (inputs e_0..e_t, target e_{t+1}). Each epoch
 * visits the users in a seeded order, in batches of users of similar length (time-major,
 * padded at the end: the recurrence is causal, so padding never reaches a real position).
 * Sequences longer than the BPTT length L run in chunks of L steps, each an optimizer step; the
 * RNN state crosses chunks detached, the window crosses as the inputs it holds (their embeddings
 * still get gradients). AdamW with decoupled weight decay on the matrices (not the biases),
 * global-norm gradient clipping, inverted dropout on the input embeddings and on u_t before the
 * heads (training only). After every epoch the validation targets are ranked (rank_metrics.h); the
 * learning rate halves after `plateau` epochs without a better NDCG@10, training stops after
 * `patience`, and the best epoch is kept. The value head is then refit on the final u_t.
 *
 * Determinism: one seeded generator drives the order, the batches and the dropout masks;
 * every reduction runs in a fixed order (parallel loops own disjoint outputs), and oneDNN is
 * deterministic for a given thread count. Same seed + same thread count = same bits.
 *
 * Layers: forward and backward side by side in train_seq.c (the sequence model on one chunk),
 * with a scalar backend (nn_ref cells and linears, the reference) and a oneDNN backend (RNN
 * forward-training/backward primitives, sgemm for the linears and the logits), checked against
 * each other, finite differences and torch (tests/unit/test_model_train.c,
 * tests/oracle/test_train_oracle.py).
 */
#ifndef IEVO_TRAIN_H
#define IEVO_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "rank_metrics.h"
#include "model.h"

/* Events grouped by user, each user's in the order they are applied (event time, ties in input
 * order: what the worker does), already mapped to vocabulary indices. */
typedef struct {
    int n_users;
    const int64_t *start;  /* (n_users + 1): user u owns ev[start[u] .. start[u+1]) */
    const model_event *ev; /* a text model reads each event's own text from ev[i].event_text */
    /* Text models: the catalogue text of every vocabulary item, by index (n_items rows of
     * text_dim floats; row i is used when item_has_text[i]); NULL = no item texts. The trainer
     * looks item texts up by index, the step by item key: the caller fills both from one
     * catalogue. */
    const float *item_text;
    const uint8_t *item_has_text;
} train_data;

/* Groups n events by user, stably (each user's events keep their relative order): user[i] in
 * [0, n_users) is event i's user. d gets its own arrays (train_data_free); perm, if not NULL
 * (n entries), receives for each grouped position the index of its event in the input. */
int train_data_group(train_data *d, int n_users, size_t n, const int32_t *user, const model_event *ev, int64_t *perm,
                     char *err, size_t errlen);
void train_data_free(train_data *d);

typedef enum { TRAIN_LOSS_FULL = 0, TRAIN_LOSS_SAMPLED = 1 } train_loss;

typedef struct {
    int epochs;            /* at most this many (default 200) */
    int patience;          /* stop after this many epochs without a better validation NDCG@10 (default 20) */
    int batch_users;       /* users per batch (default 32) */
    int bptt;              /* L: steps per chunk, a multiple of 8 (default 200) */
    double lr;             /* AdamW learning rate (default 2e-3) */
    int plateau;           /* multiply lr by lr_decay after this many epochs without a better validation
                              NDCG@10 (and again after as many more); 0 = constant lr (default 4) */
    double lr_decay;       /* default 0.5 */
    double weight_decay;   /* decoupled, on matrices and embeddings (default 0.01) */
    double beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
    double clip;           /* global gradient-norm clip, 0 = off (default 5) */
    double dropout;        /* on input embeddings and on u_t before the heads (default 0.2) */
    double layer_dropout;  /* LRU stack: on the residual branches of every layer (default 0.2) */
    double value_weight;   /* weight of the value loss (default 1; 0 = no value head training) */
    double value_lr;       /* the value head's learning rate, as a multiple of lr (default 0.1: its
                              per-item gradients are sparse, and Adam makes each a full-size step) */
    double value_wd;       /* decoupled weight decay of value.item_emb, value.item_bias, value.w (default 0) */
    int value_refit;       /* after training, refit the value head on the final u_t (train_value.c:
                              value.item_emb = 0; value.user chosen on validation, value.item_bias,
                              value.bias, value.w fit by full-batch Adam, at most 50 x this many steps),
                              keeping the best validation RMSE (the joint head included); 50, 0 = off */
    int value_user;        /* 1 (default): the refit gives the value head the user bias of the state
                              (MODEL_HEAD_VALUE_USER, when it validates better); 0: item biases and u
                              only, as before it existed */
    train_loss loss;       /* full softmax (default) or sampled */
    int negatives;         /* sampled softmax: uniform negatives per chunk, shared (default 2048) */
    int mask_seen;         /* 1: the softmax at a position leaves out the items of the user's inputs so far
                              (the protocol filters the history; default 1; 0 for data where repeats count) */
    int tie;               /* 1: score.item_emb is item_emb (one parameter; needs E == D), default 0 */
    int untie_text;        /* text models with tie: 1 = score.text_* is its own adaptor, not text.* (default 0) */
    double ema;            /* > 0: validate and keep an exponential moving average of the weights with
                              this decay per step (warm-up min(ema, (1+t)/(10+t))); default 0 = off */
    int text_only;         /* text models: 1 = no id embeddings (item_emb and score.item_emb held at 0): every
                              item is its text alone (the ablation); default 0 */
    double cold_dropout;   /* text models: at every optimizer step a random fraction of the items (with a text)
                              is treated as new: no id rows (content a(t), scoring row a_out(t)) and the cold-item
                              bias score.item_bias[0], learned so (DropoutNet's item dropout); default 0 */
    int zero_oov;          /* text models: hold the OOV rows item_emb[0] and score.item_emb[0] at 0, so an item
                              outside the vocabulary is its text alone (default 1; 0 leaves them as initialised) */
    int init_bias;         /* 1 (default): before training, score.item_bias = log of each item's share
                              of the training targets (+1 smoothing), value.bias = their mean g(value),
                              value.item_bias = each item's mean deviation, shrunk by 5 pseudo-targets */
    uint64_t seed;         /* default 1 */
    model_backend backend; /* DNNL (default) or SCALAR (tests: the reference kernels) */
} train_config;
void train_config_default(train_config *c);
/* Sets one key from text (the names above). Returns 0, or -1 with err filled. */
int train_config_set(train_config *c, const char *key, const char *value, char *err, size_t errlen);
int train_config_check(const train_config *c, char *err, size_t errlen);
/* The config as compact JSON text, an object with one key per setting train_config_set takes
 * (for the model file's metadata); caller frees; NULL only when out of memory. */
char *train_config_json(const train_config *c);

typedef struct {
    int epoch, epochs;       /* this epoch (1-based), the maximum */
    double loss;             /* mean training loss of the epoch (cross-entropy + weighted value) */
    double value_mse;        /* mean squared value error in g-space on training positions */
    rank_metrics val;        /* validation metrics after this epoch */
    int best_epoch;          /* best so far (this one when improved) */
    int improved;
    double epoch_s, train_s; /* this epoch: wall time, of which training (not validation) */
    double elapsed_s;        /* since train_fit began */
    double events_per_s;     /* training positions per second of training time */
    double lr;               /* the learning rate this epoch ran with */
    double eta_s;            /* at most this long to go (patience or the epoch limit, whichever first) */
} train_progress;
typedef void (*train_progress_fn)(const train_progress *p, void *user);

typedef struct {
    int best_epoch, epochs_run;
    rank_metrics best_val;
    double time_to_best_s;   /* from the start of train_fit to the end of the best epoch */
    double total_s;
    double events_per_s;     /* training positions per second, over all epochs */
    long positions;          /* training positions per epoch */
    long val_users;
    int threads;             /* OpenMP threads the run used */
    int value_refit_epoch;   /* the value head kept: 0 no refit, 1 the jointly trained head, 2 the refit;
                                best_val.mae/rmse are its */
    float value_user[2];     /* value.user's decay and shrinkage the refit chose (0, 0 without) */
} train_result;

/* Trains m in place (it must carry the heads the config trains: the scoring head always, the
 * value head when value_weight > 0; model_add_heads). On return m holds the best epoch's
 * parameters, and its model_id and fingerprint are recomputed for them (same name). */
int train_fit(model *m, const train_data *d, const train_config *c, train_progress_fn cb, void *user,
              train_result *res, char *err, size_t errlen);

/* The trainer's batched sequence forward (no dropout) over the first len[u] events of every
 * user (len NULL = all of them). all = 1: u_t of every position, row start[u] + t of out (the
 * caller sizes out for every event); all = 0: the last position only, row u of out (a user with
 * len 0 gets zeros). */
int train_forward(const model *m, const train_data *d, const int *len, int all, float *out, model_backend backend,
                  int batch_users, int bptt, char *err, size_t errlen);

/* Validation/test ranking over the users with at least `holdout` + 1 events: the vectors after
 * n - holdout events rank event n - holdout (holdout 2: validation, 1: test) among all items
 * minus the input history; the value head (if any) predicts its value. */
int train_evaluate(const model *m, const train_data *d, int holdout, model_backend backend, rank_metrics *out,
                   char *err, size_t errlen);

/* Leave-one-out ranking of given vectors: U (n_users, D), row u = the user's vector after its
 * first n - holdout events; the target is event n - holdout (users with no input event or an
 * OOV target are skipped). model_m (NULL = skip) gets the model's metrics, and the value head's
 * MAE/RMSE on targets with a value; pop_m (NULL = skip) the popularity baseline: items ranked
 * by how often they occur among the split's input events (every user's events but the last
 * `holdout`), ties to the lower vocabulary index, the same input-history filter; its MAE/RMSE
 * are those of predicting the mean value of the input events. A text model scores with the
 * text part (model_score_rows, item texts from d->item_text). */
int train_rank_vectors(const model *m, const train_data *d, int holdout, const float *U, rank_metrics *model_m,
                       rank_metrics *pop_m, char *err, size_t errlen);

/* The same over an explicit candidate set (ievo eval: items outside the vocabulary, ranked by
 * their text; --cold): candidates are rows 1..n-1 of S (row 0 is never a candidate), cand gives
 * every event's candidate row (in d's order; 0 = not rankable: never a target, never in the
 * history filter), and only targets whose row has target_only set count (NULL: all). Popularity
 * counts the candidate rows of the split's input events. */
typedef struct {
    int n;                       /* rows, row 0 included */
    const float *S, *bias;       /* (n, D), (n): model_score_rows */
    const int32_t *cand;         /* (events) */
    const uint8_t *target_only;  /* (n) or NULL */
    const uint8_t *rank_only;    /* (n) or NULL: rank among these rows only (the others filtered like history) */
} train_rank_set;
int train_rank_vectors_set(const model *m, const train_data *d, int holdout, const float *U, const train_rank_set *rs,
                           rank_metrics *model_m, rank_metrics *pop_m, char *err, size_t errlen);

/* Interest evolution on data with a known interest per event (the synthetic generator's topic).
 * A switch is an event j whose topic differs from event j-1's; only switches followed by at
 * least K events of the new topic (before the next switch) count. After each of the events
 * j .. j+K-1 (k = 0 .. K-1: k+1 events of the new interest seen), the "top predicted topic" is
 * the topic most represented among the 10 best-scored items (ties: the one ranked first); the
 * model scores with model_score_items(U row), the static profile with the mean score.item_emb
 * row of every item seen so far (dot product, no bias). item_topic (n_items) maps items to
 * topics (-1: none); topic (events) is the ground truth per event, in d's order. */
#define TRAIN_EVOLUTION_MAX 64
typedef struct {
    int K;
    long switches;
    long model_hit[TRAIN_EVOLUTION_MAX], static_hit[TRAIN_EVOLUTION_MAX];   /* top topic == new topic at k */
    long model_lag_hist[TRAIN_EVOLUTION_MAX + 1], static_lag_hist[TRAIN_EVOLUTION_MAX + 1]; /* first k with a hit; K = none */
} train_evolution_result;
int train_evolution(const model *m, const train_data *d, const float *U, const int32_t *topic,
                    const int32_t *item_topic, int K, train_evolution_result *r, char *err, size_t errlen);

/* ---- pieces the tests check one by one ---------------------------------------------------- */

/* Loss and gradient of one batch of users (u[0..n), each over its first len[i] inputs with
 * targets at every position: input t predicts event t+1, so len[i] <= events - 1), chunked by
 * bptt as in training, dropout as given (0 = none; seeded by seed). grad (m->n_params, the
 * model's tensor layout) is added to; returns the sum over chunks of each chunk's mean loss in
 * *loss. The scalar and oneDNN backends compute the same thing. */
int train_batch_loss_grad(const model *m, const train_data *d, const train_config *c, const int *users,
                          const int *len, int n, float *grad, double *loss, char *err, size_t errlen);

/* AdamW step over the whole parameter block: madam, vadam (n_params each) are the moments, t
 * the 1-based step. Decay applies to the tensors model_tensor_decays names (and value_wd to the
 * value head's). */
void train_adamw(model *m, const float *grad, float *madam, float *vadam, long t, const train_config *c);
/* Scales grad so its global L2 norm is at most clip; returns the norm before clipping. */
double train_clip(float *grad, size_t n, double clip);

#endif
