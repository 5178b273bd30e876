/* train: the training loop (epochs, batches, chunks, AdamW, early stopping). The
 * protocol and the guarantees are in train.h; one batch and the batched forward are in
 * train_batch.c, the layers in train_seq.c.
 *
 * Batches: each epoch shuffles the users with the seeded generator, cuts the order into pools
 * of 8 batches, sorts each pool by training length (longest first, stable) and cuts it into
 * batches, then shuffles the batch order. Users of similar length share a batch (little
 * padding) while batches still differ from epoch to epoch. Within a batch the longest user is
 * row 0, so the users still active in a later chunk are always a prefix of the rows: their
 * carried state stays in place. Row counts are padded to a multiple of 8 and the last chunk's
 * step count too, so only a few primitive shapes ever exist.
 */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "clock.h"
#include "json_text.h"
#include "model_init.h"
#include "train_internal.h"

void train_config_default(train_config *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 200;
    c->patience = 20;
    c->batch_users = 32;
    c->bptt = 200;
    c->lr = 2e-3;
    c->plateau = 4;
    c->lr_decay = 0.5;
    c->weight_decay = 0.01;
    c->beta1 = 0.9, c->beta2 = 0.999, c->eps = 1e-8;
    c->clip = 5.0;
    c->dropout = 0.2;
    c->layer_dropout = 0.2;
    c->value_weight = 1.0;
    c->value_lr = 0.1;
    c->value_refit = 50;
    c->value_user = 1;
    c->loss = TRAIN_LOSS_FULL;
    c->negatives = 2048;
    c->init_bias = 1;
    c->zero_oov = 1;
    c->mask_seen = 1;
    c->seed = 1;
    c->backend = MODEL_BACKEND_DNNL;
}

/* The numeric settings, by name: what train_config_set parses and train_config_json writes. */
typedef struct {
    const char *k;
    size_t off;
} train_key;
static const train_key train_ints[] = {
    {"epochs", offsetof(train_config, epochs)}, {"patience", offsetof(train_config, patience)},
    {"batch_users", offsetof(train_config, batch_users)}, {"bptt", offsetof(train_config, bptt)},
    {"negatives", offsetof(train_config, negatives)}, {"tie", offsetof(train_config, tie)},
    {"init_bias", offsetof(train_config, init_bias)},
    {"plateau", offsetof(train_config, plateau)}, {"value_refit", offsetof(train_config, value_refit)}, {"mask_seen", offsetof(train_config, mask_seen)},
    {"text_only", offsetof(train_config, text_only)}, {"zero_oov", offsetof(train_config, zero_oov)},
    {"untie_text", offsetof(train_config, untie_text)}, {"value_user", offsetof(train_config, value_user)},
};
static const train_key train_dbls[] = {
    {"lr", offsetof(train_config, lr)}, {"weight_decay", offsetof(train_config, weight_decay)},
    {"beta1", offsetof(train_config, beta1)}, {"beta2", offsetof(train_config, beta2)},
    {"eps", offsetof(train_config, eps)}, {"clip", offsetof(train_config, clip)},
    {"dropout", offsetof(train_config, dropout)}, {"value_weight", offsetof(train_config, value_weight)},
    {"layer_dropout", offsetof(train_config, layer_dropout)},
    {"ema", offsetof(train_config, ema)}, {"lr_decay", offsetof(train_config, lr_decay)},
    {"cold_dropout", offsetof(train_config, cold_dropout)},
    {"value_lr", offsetof(train_config, value_lr)}, {"value_wd", offsetof(train_config, value_wd)},
};
#define TRAIN_N_INTS (sizeof train_ints / sizeof train_ints[0])
#define TRAIN_N_DBLS (sizeof train_dbls / sizeof train_dbls[0])

int train_config_set(train_config *c, const char *key, const char *value, char *err, size_t errlen) {
    char *end;
    if (!strcmp(key, "loss")) {
        if (!strcmp(value, "full")) c->loss = TRAIN_LOSS_FULL;
        else if (!strcmp(value, "sampled")) c->loss = TRAIN_LOSS_SAMPLED;
        else return model_errf(err, errlen, "train: loss must be full or sampled, got \"%s\"", value);
        return 0;
    }
    if (!strcmp(key, "backend")) {
        if (!strcmp(value, "dnnl")) c->backend = MODEL_BACKEND_DNNL;
        else if (!strcmp(value, "scalar")) c->backend = MODEL_BACKEND_SCALAR;
        else return model_errf(err, errlen, "train: backend must be dnnl or scalar, got \"%s\"", value);
        return 0;
    }
    for (size_t i = 0; i < TRAIN_N_INTS; i++)
        if (!strcmp(key, train_ints[i].k)) {
            long v = strtol(value, &end, 10);
            if (!*value || *end || v < INT32_MIN || v > INT32_MAX)
                return model_errf(err, errlen, "train: %s must be an integer, got \"%s\"", key, value);
            *(int *)((char *)c + train_ints[i].off) = (int)v;
            return 0;
        }
    for (size_t i = 0; i < TRAIN_N_DBLS; i++)
        if (!strcmp(key, train_dbls[i].k)) {
            double v = strtod(value, &end);
            if (!*value || *end || !isfinite(v))
                return model_errf(err, errlen, "train: %s must be a number, got \"%s\"", key, value);
            *(double *)((char *)c + train_dbls[i].off) = v;
            return 0;
        }
    if (!strcmp(key, "seed")) {
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (!*value || *end || *value == '-' || errno)
            return model_errf(err, errlen, "train: seed must be a non-negative integer, got \"%s\"", value);
        c->seed = v;
        return 0;
    }
    return model_errf(err, errlen, "train: unknown setting \"%s\"", key);
}

int train_config_check(const train_config *c, char *err, size_t errlen) {
    if (c->epochs < 1 || c->epochs > 100000) return model_errf(err, errlen, "train: epochs %d out of 1..100000", c->epochs);
    if (c->patience < 1) return model_errf(err, errlen, "train: patience must be >= 1");
    if (c->batch_users < 1 || c->batch_users > 4096)
        return model_errf(err, errlen, "train: batch_users %d out of 1..4096", c->batch_users);
    if (c->bptt < 8 || c->bptt > 4096 || c->bptt % 8)
        return model_errf(err, errlen, "train: bptt %d must be a multiple of 8 in 8..4096", c->bptt);
    if (!(c->lr > 0) || c->weight_decay < 0 || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
        !(c->eps > 0))
        return model_errf(err, errlen, "train: lr > 0, weight_decay >= 0, 0 <= beta1, beta2 < 1, eps > 0");
    if (c->clip < 0 || !(c->dropout >= 0 && c->dropout < 1) || !(c->layer_dropout >= 0 && c->layer_dropout < 1) ||
        c->value_weight < 0)
        return model_errf(err, errlen, "train: clip >= 0, 0 <= dropout, layer_dropout < 1, value_weight >= 0");
    if (c->loss == TRAIN_LOSS_SAMPLED && c->negatives < 1)
        return model_errf(err, errlen, "train: sampled softmax needs negatives >= 1");
    if ((c->tie != 0 && c->tie != 1) || (c->init_bias != 0 && c->init_bias != 1) || (c->mask_seen != 0 && c->mask_seen != 1) ||
        (c->text_only != 0 && c->text_only != 1) || (c->zero_oov != 0 && c->zero_oov != 1) ||
        (c->untie_text != 0 && c->untie_text != 1) || (c->value_user != 0 && c->value_user != 1))
        return model_errf(err, errlen, "train: tie, init_bias, mask_seen, text_only, zero_oov, untie_text and value_user "
                          "are 0 or 1");
    if (!(c->ema >= 0 && c->ema < 1)) return model_errf(err, errlen, "train: 0 <= ema < 1");
    if (!(c->cold_dropout >= 0 && c->cold_dropout < 1)) return model_errf(err, errlen, "train: 0 <= cold_dropout < 1");
    if (c->plateau < 0 || !(c->lr_decay > 0 && c->lr_decay <= 1) || !(c->value_lr > 0) || c->value_wd < 0 || c->value_refit < 0)
        return model_errf(err, errlen, "train: plateau >= 0, 0 < lr_decay <= 1");
    /* The model's metadata carries the seed as a JSON integer, which jansson holds signed. */
    if (c->seed > INT64_MAX)
        return model_errf(err, errlen, "train: seed %llu is above %lld", (unsigned long long)c->seed, (long long)INT64_MAX);
    return 0;
}

char *train_config_json(const train_config *c) {
    json_t *o = json_object();
    int bad = !o;
    for (size_t i = 0; i < TRAIN_N_INTS && !bad; i++)
        bad = json_object_set_new(o, train_ints[i].k, json_integer(*(const int *)((const char *)c + train_ints[i].off)));
    for (size_t i = 0; i < TRAIN_N_DBLS && !bad; i++)
        bad = json_object_set_new(o, train_dbls[i].k, json_real_or_null(*(const double *)((const char *)c + train_dbls[i].off)));
    bad = bad || json_object_set_new(o, "loss", json_string(c->loss == TRAIN_LOSS_FULL ? "full" : "sampled")) ||
          json_object_set_new(o, "seed", json_integer((json_int_t)c->seed)) ||
          json_object_set_new(o, "backend", json_string(c->backend == MODEL_BACKEND_DNNL ? "dnnl" : "scalar"));
    char *text = bad ? NULL : json_dumps(o, IEVO_JSON_DUMP);
    json_decref(o);
    return text;
}

int train_data_group(train_data *d, int n_users, size_t n, const int32_t *user, const model_event *ev, int64_t *perm,
                     char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    int64_t *start = calloc((size_t)n_users + 2, sizeof *start);
    model_event *out = malloc((n ? n : 1) * sizeof *out);
    if (!start || !out) {
        free(start), free(out);
        return model_errf(err, errlen, "train: out of memory grouping %zu events", n);
    }
    for (size_t i = 0; i < n; i++) {
        if (user[i] < 0 || user[i] >= n_users) {
            free(start), free(out);
            return model_errf(err, errlen, "train: event %zu has user index %d of %d", i, user[i], n_users);
        }
        start[user[i] + 2]++;
    }
    for (int u = 0; u < n_users; u++) start[u + 2] += start[u + 1];
    /* start[u+1] is now where user u begins; filling advances it to where u ends = start of u+1 */
    for (size_t i = 0; i < n; i++) {
        int64_t at = start[user[i] + 1]++;
        out[at] = ev[i];
        if (perm) perm[at] = (int64_t)i;
    }
    d->n_users = n_users;
    d->start = start;
    d->ev = out;
    return 0;
}

void train_data_free(train_data *d) {
    free((void *)d->start);
    free((void *)d->ev);
    memset(d, 0, sizeof *d);
}

/* ---- the loop ----------------------------------------------------------------------------- */

typedef struct {
    model *m;
    const train_config *c;
    float *grad, *madam, *vadam, *ema;
    long t;
} optim_ctx;

/* Tied embeddings: score.item_emb is item_emb (and in a text model score.text_* is text.*), so
 * its gradient joins item_emb's and the copy is refreshed after the step (the file still stores
 * both tensors, equal). */
static void tie_sync(model *m, const train_config *c) {
    memcpy(m->t[T_SCORE_EMB].data, m->t[T_ITEM_EMB].data, m->t[T_ITEM_EMB].numel * sizeof(float));
    if (m->cfg.text_dim > 0 && !c->untie_text) {
        memcpy(m->t[T_SCORE_TEXT_W].data, m->t[T_TEXT_W].data, m->t[T_TEXT_W].numel * sizeof(float));
        memcpy(m->t[T_SCORE_TEXT_B].data, m->t[T_TEXT_B].data, m->t[T_TEXT_B].numel * sizeof(float));
    }
}

/* Text models: rows held at zero (text_only: every id row; zero_oov: the OOV rows), as values
 * and as gradients, so Adam never moves them. */
static void hold_zero(model *m, const train_config *c, float *grad) {
    if (m->cfg.text_dim <= 0 || (!c->text_only && !c->zero_oov)) return;
    const int T_[2] = {T_ITEM_EMB, T_SCORE_EMB};
    for (int k = 0; k < 2; k++) {
        model_tensor *x = &m->t[T_[k]];
        if (!x->numel) continue;
        size_t n = c->text_only ? x->numel : (size_t)x->shape[1];
        memset(x->data, 0, n * sizeof(float));
        if (grad) memset(grad + (x->data - m->params), 0, n * sizeof(float));
    }
}

/* Text models start the adaptors' centre at the mean text vector (the whitening-style
 * (t - b) W of UniSRec): the mean of the vocabulary's item texts, else of the events' texts. */
static void init_text_centre(model *m, const train_data *d) {
    const int T = m->cfg.text_dim;
    double *acc = calloc((size_t)T, sizeof *acc);
    long n = 0;
    if (!acc) return;
    for (int i = 0; d->item_text && i < m->cfg.n_items; i++)
        if (d->item_has_text[i]) {
            for (int k = 0; k < T; k++) acc[k] += d->item_text[(size_t)i * T + k];
            n++;
        }
    if (n == 0)
        for (int64_t i = 0; i < d->start[d->n_users]; i++)
            if (d->ev[i].event_text) {
                for (int k = 0; k < T; k++) acc[k] += d->ev[i].event_text[k];
                n++;
            }
    for (int k = 0; n && k < T; k++) {
        m->t[T_TEXT_B].data[k] = (float)(acc[k] / (double)n);
        if (m->t[T_SCORE_TEXT_B].numel) m->t[T_SCORE_TEXT_B].data[k] = m->t[T_TEXT_B].data[k];
    }
    free(acc);
}

/* The bias of an item without a vocabulary row (ranked from its text: model_score_rows):
 * score.item_bias[0], which training never touches (OOV is never a candidate). Set to the mean
 * bias of the vocabulary's items: a new item is taken for a typical one, not a rare one (the
 * held-out items of `--holdout-items` are a random sample of the catalogue). */
static void set_cold_bias(model *m) {
    const int NI = m->cfg.n_items;
    if (!(model_heads(m) & MODEL_HEAD_SCORE) || NI < 2) return;
    double sum = 0;
    for (int i = 1; i < NI; i++) sum += m->t[T_SCORE_BIAS].data[i];
    m->t[T_SCORE_BIAS].data[0] = (float)(sum / (NI - 1));
}

static int optim_step(void *p, char *err, size_t errlen) {
    (void)err, (void)errlen;
    optim_ctx *o = p;
    model *m = o->m;
    if (o->c->tie) {
        const int pairs[3][2] = {{T_ITEM_EMB, T_SCORE_EMB}, {T_TEXT_W, T_SCORE_TEXT_W}, {T_TEXT_B, T_SCORE_TEXT_B}};
        for (int k = 0; k < (o->c->untie_text ? 1 : 3); k++) {
            if (!m->t[pairs[k][0]].numel || !m->t[pairs[k][1]].numel) continue;
            float *gi = o->grad + (m->t[pairs[k][0]].data - m->params), *gs = o->grad + (m->t[pairs[k][1]].data - m->params);
            for (size_t i = 0; i < m->t[pairs[k][0]].numel; i++) gi[i] += gs[i], gs[i] = 0;
        }
    }
    hold_zero(m, o->c, o->grad);
    train_clip(o->grad, m->n_params, o->c->clip);
    train_adamw(m, o->grad, o->madam, o->vadam, ++o->t, o->c);
    if (o->c->tie) tie_sync(m, o->c);
    hold_zero(m, o->c, NULL);
    if (o->ema) {
        const float d = (float)fmin(o->c->ema, (1.0 + (double)o->t) / (10.0 + (double)o->t));
        for (size_t i = 0; i < m->n_params; i++) o->ema[i] = d * o->ema[i] + (1.0f - d) * m->params[i];
    }
    memset(o->grad, 0, m->n_params * sizeof(float));
    return 0;
}

static void shuffle(int *a, int n, rng_t *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_uniform(r) * (i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

int train_fit(model *m, const train_data *d, const train_config *c, train_progress_fn cb, void *user,
              train_result *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    if (train_config_check(c, err, errlen)) return -1;
    if (!(model_heads(m) & MODEL_HEAD_SCORE)) return model_errf(err, errlen, "train: the model needs a scoring head");
    if (c->tie && m->cfg.item_dim != m->cfg.out_dim)
        return model_errf(err, errlen, "train: tied embeddings need item_dim == out_dim (%d vs %d)", m->cfg.item_dim,
                          m->cfg.out_dim);
    if (c->text_only && m->cfg.text_dim <= 0) return model_errf(err, errlen, "train: text_only needs a text model");
    const double t_start = clock_mono_s();
    const int nu = d->n_users, B = c->batch_users;
    int rc = -1, ntrain = 0;
    float *feat = train_features(d), *grad = calloc(m->n_params, sizeof *grad);
    float *madam = calloc(m->n_params, sizeof *madam), *vadam = calloc(m->n_params, sizeof *vadam);
    float *best = malloc(m->n_params * sizeof *best), *ema = NULL, *live = NULL;
    int *tlen = malloc((size_t)(nu ? nu : 1) * sizeof *tlen), *order = malloc((size_t)(nu ? nu : 1) * sizeof *order);
    int *blen = malloc((size_t)B * sizeof *blen);
    int *bstart = malloc((size_t)(nu + 1) * sizeof *bstart), *border = malloc((size_t)(nu + 1) * sizeof *border);
    seq_ctx *s = NULL;
    if (!feat || !grad || !madam || !vadam || !best || !tlen || !order || !blen || !bstart || !border) {
        model_errf(err, errlen, "train: out of memory");
        goto done;
    }
    long positions = 0;
    for (int u = 0; u < nu; u++) {
        int64_t n = d->start[u + 1] - d->start[u];
        tlen[u] = n >= 4 ? (int)(n - 3) : 0; /* inputs e_0..e_{n-4}, targets e_1..e_{n-3} */
        if (tlen[u] > 0) order[ntrain++] = u, positions += tlen[u];
    }
    if (ntrain == 0) {
        model_errf(err, errlen, "train: no user has the 4 events training needs (train, validation, test targets)");
        goto done;
    }
    res->positions = positions;
    if (seq_ctx_new(&s, m, d, feat, c->backend, B, c->bptt, c->loss == TRAIN_LOSS_SAMPLED ? c->negatives : 0, err,
                    errlen))
        goto done;
    if (m->cfg.text_dim > 0) init_text_centre(m, d);
    if (c->tie) tie_sync(m, c);
    hold_zero(m, c, NULL);
    if (c->init_bias) train_init_biases(m, d, tlen, MODEL_HEAD_SCORE | MODEL_HEAD_VALUE);
    if (m->cfg.text_dim > 0 && c->cold_dropout > 0) set_cold_bias(m); /* where the learned cold bias starts */
    if (c->ema > 0) {
        ema = malloc(m->n_params * sizeof *ema);
        live = malloc(m->n_params * sizeof *live);
        if (!ema || !live) {
            model_errf(err, errlen, "train: out of memory");
            goto done;
        }
        memcpy(ema, m->params, m->n_params * sizeof(float));
    }
    memcpy(best, m->params, m->n_params * sizeof(float));
    rng_t rng;
    rng_seed(&rng, c->seed);
    train_config live_c = *c; /* the learning rate moves on plateaus */
    optim_ctx oc = {m, &live_c, grad, madam, vadam, ema, 0};
    int since_decay = 0;
    double best_ndcg = -1, train_time = 0;
    int since_best = 0;
    for (int epoch = 1; epoch <= c->epochs; epoch++) {
        const double t0 = clock_mono_s();
        /* the epoch's batches: shuffle, pools of 8 batches sorted by length, batch order shuffled */
        shuffle(order, ntrain, &rng);
        int nb = 0;
        for (int p0 = 0; p0 < ntrain; p0 += 8 * B) {
            int pn = ntrain - p0 < 8 * B ? ntrain - p0 : 8 * B;
            if (sort_by_len(order + p0, pn, tlen)) {
                model_errf(err, errlen, "train: out of memory");
                goto done;
            }
            for (int b0 = 0; b0 < pn; b0 += B) bstart[nb++] = p0 + b0;
        }
        bstart[nb] = ntrain;
        for (int i = 0; i < nb; i++) border[i] = i;
        shuffle(border, nb, &rng);
        batch_run br = {.c = c, .rng = &rng, .grad = grad, .step = optim_step, .step_ctx = &oc};
        for (int i = 0; i < nb; i++) {
            int b0 = bstart[border[i]], bn = bstart[border[i] + 1] - b0;
            if (bn > B) bn = B;
            for (int k = 0; k < bn; k++) blen[k] = tlen[order[b0 + k]];
            if (run_batch(s, order + b0, blen, bn, c->bptt, 1, c->dropout, &br, err, errlen)) goto done;
        }
        const double t1 = clock_mono_s();
        train_time += t1 - t0;
        rank_metrics val;
        if (ema) { /* validate (and keep) the averaged weights */
            memcpy(live, m->params, m->n_params * sizeof(float));
            memcpy(m->params, ema, m->n_params * sizeof(float));
        }
        int erc = train_evaluate(m, d, 2, c->backend, &val, err, errlen);
        if (ema) memcpy(m->params, live, m->n_params * sizeof(float));
        if (erc) goto done;
        const double t2 = clock_mono_s();
        int improved = val.ndcg10 > best_ndcg;
        if (improved) {
            best_ndcg = val.ndcg10;
            memcpy(best, ema ? ema : m->params, m->n_params * sizeof(float));
            res->best_epoch = epoch;
            res->best_val = val;
            res->time_to_best_s = t2 - t_start;
            since_best = 0;
            since_decay = 0;
        } else {
            since_best++;
            since_decay++;
        }
        const double epoch_lr = live_c.lr;
        if (c->plateau > 0 && since_decay >= c->plateau) {
            live_c.lr *= c->lr_decay;
            since_decay = 0;
        }
        res->epochs_run = epoch;
        res->val_users = val.n;
        if (cb) {
            train_progress p = {
                .epoch = epoch, .epochs = c->epochs,
                .loss = br.n_targets ? br.loss / (double)br.n_targets : 0,
                .value_mse = br.n_value ? br.value_se / (double)br.n_value : 0,
                .val = val, .best_epoch = res->best_epoch, .improved = improved,
                .epoch_s = t2 - t0, .train_s = t1 - t0, .elapsed_s = t2 - t_start,
                .events_per_s = (t1 - t0) > 0 ? (double)positions / (t1 - t0) : 0,
                .lr = epoch_lr,
            };
            int left = c->epochs - epoch, pat = c->patience - since_best;
            p.eta_s = (left < pat ? left : pat) * (t2 - t0);
            cb(&p, user);
        }
        if (!isfinite(br.loss)) {
            model_errf(err, errlen, "train: the loss diverged (epoch %d); lower lr", epoch);
            goto done;
        }
        if (since_best >= c->patience) break;
    }
    memcpy(m->params, best, m->n_params * sizeof(float));
    if (!(m->cfg.text_dim > 0 && c->cold_dropout > 0)) set_cold_bias(m); /* else learned with the new items */
    if (c->value_refit > 0 && (model_heads(m) & MODEL_HEAD_VALUE) && c->value_weight > 0 &&
        train_value_refit(m, d, c, tlen, res, err, errlen))
        goto done;
    {
        char name[MODEL_NAME_MAX + 1];
        model_name_of(m, name, sizeof name);
        if (model_finalize(m, name, err, errlen)) goto done; /* new parameters, new identity */
    }
    res->total_s = clock_mono_s() - t_start;
    res->threads = omp_get_max_threads();
    res->events_per_s = train_time > 0 ? (double)positions * res->epochs_run / train_time : 0;
    rc = 0;
done:
    seq_ctx_free(s);
    free(feat);
    free(grad);
    free(madam);
    free(vadam);
    free(best);
    free(ema);
    free(live);
    free(tlen);
    free(order);
    free(blen);
    free(bstart);
    free(border);
    return rc;
}
