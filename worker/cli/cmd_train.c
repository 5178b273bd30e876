/* cmd_train: `ievo train`, learning the interest model from history and writing the model file
 * the worker loads.
 *
 * The shell around model/train.c: it reads the events (MovieLens, JSON lines, the synthetic
 * generator, or a Kafka topic from its beginning up to the end offsets seen at start, through the
 * schema registry when schema.registry.url is set), builds each user's sequence in the order the
 * worker applies events (event time, ties in input order), maps ids to a vocabulary (MovieLens:
 * u.item; synthetic: the generator's universe; otherwise the items and actions of the data, in
 * order of first appearance), initialises a model with a
 * scoring head (and a value head when events carry values), trains it, and saves it with the
 * training config and the best validation metrics in the header's metadata. Progress goes to
 * stderr, one line per epoch. --dump-forward writes the trainer's own batched forward at every
 * position as JSON lines, for the train/serve parity test.
 * --text makes a text model (docs/text.md): item texts from a catalogue (--movielens: u.item's
 * title and genres; otherwise --items FILE of {"item_id","text"} lines) and the events' own text
 * fields, encoded once with USE-lite (frozen; cached in the text cache dir), feed the adaptor the
 * trainer learns. --text-only drops the id embeddings (the ablation). --holdout-items F removes a
 * seeded fraction F of the items from the vocabulary and every one of their events from training,
 * and lists them in the metadata (`ievo eval --cold` ranks them).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "event_source.h"
#include "item_table.h"
#include "json_text.h"
#include "log.h"
#include "model.h"
#include "model_init.h"
#include "ptr_index.h"
#include "rng.h"
#include "settings.h"
#include "train.h"
#include "use_encoder.h"

/* The trainer's settings (train_config_set's keys), each an option. */
static const char *const TRAIN_KEYS[] = {
    "epochs", "patience", "batch_users", "bptt", "lr", "weight_decay", "dropout", "clip", "value_weight", "loss",
    "negatives", "seed", "beta1", "beta2", "tie", "ema", "init_bias", "plateau", "lr_decay", "mask_seen", "value_lr",
    "value_wd", "value_refit", "zero_oov", "cold_dropout", "untie_text", "value_user", "layer_dropout"};
enum {
    OPT_TRAIN = CLI_OPT_ID_FIRST_FREE,   /* OPT_TRAIN + i: TRAIN_KEYS[i] */
    OPT_THREADS = OPT_TRAIN + sizeof TRAIN_KEYS / sizeof TRAIN_KEYS[0],
    OPT_TEXT,
    OPT_TEXT_ONLY,
    OPT_HOLDOUT,
    OPT_HOLDOUT_SEED,
    OPT_DUMP,
};

static const cli_option OPTS[] = {
    CLI_OPT_OUT("the model file to write"),
    CLI_OPTS_DATA,
    CLI_OPT_TOPIC("read the events from this topic (with -b; their format: input.format, input.schema.id, or "
                  "schema.registry.url)", "input.topic"),
    CLI_OPT_BOOTSTRAP,
    CLI_OPTS_MODEL("gru"),
    {"epochs", OPT_TRAIN + 0, "N", "at most N epochs (default 200)", NULL},
    {"patience", OPT_TRAIN + 1, "N", "stop after N epochs without a better validation NDCG@10 (default 20)", NULL},
    {"batch", OPT_TRAIN + 2, "N", "users per batch (default 32)", NULL},
    {"bptt", OPT_TRAIN + 3, "L", "steps per chunk, a multiple of 8 (default 200)", NULL},
    {"lr", OPT_TRAIN + 4, "X", "AdamW learning rate (default 2e-3)", NULL},
    {"weight-decay", OPT_TRAIN + 5, "X", "decoupled weight decay (default 0.01)", NULL},
    {"dropout", OPT_TRAIN + 6, "X", "dropout (default 0.2)", NULL},
    {"clip", OPT_TRAIN + 7, "X", "global gradient-norm clip, 0 = off (default 5)", NULL},
    {"value-weight", OPT_TRAIN + 8, "X", "the value head's loss weight, 0 = no value head (default 1)", NULL},
    {"loss", OPT_TRAIN + 9, "full|sampled", "softmax over every item or sampled negatives (default full)", NULL},
    {"negatives", OPT_TRAIN + 10, "N", "with --loss sampled (default 2048)", NULL},
    {"seed", OPT_TRAIN + 11, "N", "the training seed: order, batches, dropout (default 1)", NULL},
    {"beta1", OPT_TRAIN + 12, "X", "AdamW beta1 (default 0.9)", NULL},
    {"beta2", OPT_TRAIN + 13, "X", "AdamW beta2 (default 0.999)", NULL},
    {"tie", OPT_TRAIN + 14, "0|1", "score.item_emb = item_emb (default 1 when --item-dim == --out-dim)", NULL},
    {"ema", OPT_TRAIN + 15, "DECAY", "validate and keep a moving average of the weights, 0 = off (default)", NULL},
    {"init-bias", OPT_TRAIN + 16, "0|1", "start the score bias at log popularity, the value biases at item means (1)", NULL},
    {"plateau", OPT_TRAIN + 17, "N", "lr *= --lr-decay after N epochs without a better validation, 0 = off (4)", NULL},
    {"lr-decay", OPT_TRAIN + 18, "X", "see --plateau (default 0.5)", NULL},
    {"mask-seen", OPT_TRAIN + 19, "0|1", "the training softmax leaves out items already in the user's inputs (1)", NULL},
    {"value-lr", OPT_TRAIN + 20, "X", "the value head's lr as a multiple of --lr (default 0.1)", NULL},
    {"value-wd", OPT_TRAIN + 21, "X", "the value head's weight decay (default 0)", NULL},
    {"value-refit", OPT_TRAIN + 22, "N", "refit the value head alone on the final u, <= 50 N steps, 0 = off (50)", NULL},
    {"zero-oov", OPT_TRAIN + 23, "0|1", "text: the OOV rows stay zero, a new item is its text alone (1)", NULL},
    {"cold-dropout", OPT_TRAIN + 24, "P", "text: each step treats a fraction P of the items as new (0)", NULL},
    {"untie-text", OPT_TRAIN + 25, "0|1", "with --tie: the scoring head's text adaptor is its own (0)", NULL},
    {"value-user", OPT_TRAIN + 26, "0|1", "the value head adds the user's recency-weighted bias, kept in the state (1)", NULL},
    {"layer-dropout", OPT_TRAIN + 27, "X", "dropout on the LRU's and the blocks' residual branches (default 0.2)", NULL},
    CLI_OPT_BACKEND("model.backend"),
    {"threads", OPT_THREADS, "N", "compute threads (default: OMP_NUM_THREADS, else every core)", NULL},
    {"text", OPT_TEXT, NULL, "a text model: item and event texts through USE-lite and a learned adaptor", NULL},
    {"text-only", OPT_TEXT_ONLY, NULL, "a text model without id embeddings: every item is its text", NULL},
    CLI_OPTS_TEXT,
    {"holdout-items", OPT_HOLDOUT, "FRACTION", "remove this fraction of the items and their events (eval --cold)", NULL},
    {"holdout-seed", OPT_HOLDOUT_SEED, "N", "which items --holdout-items removes (default 1)", NULL},
    {"dump-forward", OPT_DUMP, "FILE", "u_t at every position as JSON lines (user_id, events, vector)", NULL},
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "train",
    .synopsis = "-o MODEL (--movielens DIR | --jsonl FILE | --synthetic USERS:EVENTS | -t TOPIC -b BROKERS)\n"
                " [model options] [training options] [--text [--items FILE]] [--holdout-items F]",
    .about = "Trains the model the worker runs (embeddings -> LSTM/GRU -> window attention -> u_t) with a\n"
             "scoring head over all items (and a value head when events carry values), leave-one-out:\n"
             "each user's last event is the test target, the second-last the validation target.\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_TRAIN,
    .kafka = 1,
};

typedef struct {
    cli_data data;
    cli_text text;
    cli_model model;
    train_config tc;
    const char *out, *topic, *dump;
    int threads, tie_set, text_on;
    double holdout;
    uint64_t holdout_seed;
} train_opts;

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    train_opts *o = ctx;
    int64_t x = 0;
    int rc = cli_data_option(&o->data, key, value, err, errlen);
    if (!rc) rc = cli_model_option(&o->model, key, value, err, errlen);
    if (rc) return rc < 0 ? -1 : 0;
    if (cli_text_option(&o->text, key, value)) return 0;
    if (key >= OPT_TRAIN && key < OPT_THREADS) {
        o->tie_set |= !strcmp(TRAIN_KEYS[key - OPT_TRAIN], "tie");
        return train_config_set(&o->tc, TRAIN_KEYS[key - OPT_TRAIN], value, err, errlen);
    }
    switch (key) {
    case 'o': o->out = value; break;
    case 't': o->topic = value; break;
    case OPT_DUMP: o->dump = value; break;
    case OPT_TEXT: o->text_on = 1; break;
    case OPT_TEXT_ONLY: o->text_on = o->tc.text_only = 1; break;
    case OPT_THREADS:
        if (cli_int(value, 1, 4096, &x, err, errlen)) return -1;
        o->threads = (int)x;
        break;
    case OPT_HOLDOUT:
        if (cli_double(value, 0, 1, &o->holdout, err, errlen) || o->holdout >= 1)
            return snprintf(err, errlen, "takes a fraction in [0, 1), got %s", value), -1;
        break;
    case OPT_HOLDOUT_SEED:
        if (cli_int(value, 0, INT64_MAX, &x, err, errlen)) return -1;
        o->holdout_seed = (uint64_t)x;
        break;
    }
    return 0;
}

/* Everything one training run holds. */
typedef struct {
    const train_opts *o;
    event_list ev;
    const char **item_ids, **act_ids;   /* the vocabulary's candidates, the actions */
    char **own_items;                   /* item_ids when they came from u.item or the generator */
    int n_item_ids, n_act_ids;
    const char **vocab_ids, **held_ids; /* the items kept, the items held out */
    uint64_t *held_keys;                /* sorted */
    int n_vocab, n_held;
    model *m;
    item_catalog cat;
    item_table *items;
    text_encode_stats tstats;
    float *item_text, *event_text;
    uint8_t *item_has_text;
    long n_item_text, n_event_text;
    const char **user_names;
    int n_users;
    long oov, dropped;
    size_t n_train;                     /* events left after the holdout */
    train_data data;
    train_result res;
} train_run;

static void train_free(train_run *x) {
    if (x->own_items) synth_item_ids_free(x->own_items, x->n_item_ids);
    else free(x->item_ids);
    free(x->act_ids), free(x->vocab_ids), free(x->held_ids), free(x->held_keys), free(x->user_names);
    free(x->item_text), free(x->item_has_text), free(x->event_text);
    train_data_free(&x->data);
    item_table_free(x->items);
    item_catalog_free(&x->cat);
    model_free(x->m);
    event_list_free(&x->ev);
}

/* ---- events and vocabularies ---------------------------------------------------------------- */

static int train_load(train_run *x, const config *cfg, char *err, size_t errlen) {
    const train_opts *o = x->o;
    int rc;
    if (o->topic) {
        int format;
        int64_t id;
        if (settings_enum(cfg, "input.format", &format, err, errlen) || settings_int(cfg, "input.schema.id", &id, err, errlen))
            return -1;
        codec_in_opts in = {(wire_format)format, (int32_t)id, 1 << 20};
        rc = events_load_topic(cfg, o->topic, &in, &x->ev, err, errlen);
    } else {
        rc = cli_data_load(&o->data, &x->ev, err, errlen);
    }
    if (!rc && x->ev.n == 0) rc = -1, snprintf(err, errlen, "no events");
    return rc;
}

/* Distinct strings of one field, first seen first (pointers into the list's arena). */
static int distinct_ids(const event_list *l, int item, const char ***out, int *n) {
    ptr_index m = {0};
    const char **v = malloc((l->n ? l->n : 1) * sizeof *v);
    if (!v) return -1;
    *n = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *s = item ? l->ev[i].item_id : l->ev[i].action;
        int is_new = 0;
        if (ptr_index_get(&m, s, &is_new) < 0) return ptr_index_free(&m), free(v), -1;
        if (is_new) v[(*n)++] = s;
    }
    ptr_index_free(&m);
    *out = v;
    return 0;
}

/* Items: u.item's, the generator's, or the data's; actions: the data's. */
static int train_vocabulary(train_run *x, char *err, size_t errlen) {
    const cli_data *d = &x->o->data;
    if (d->movielens) {
        if (movielens_item_ids(d->movielens, &x->own_items, &x->n_item_ids, err, errlen)) return -1;
    } else if (d->synthetic) {
        if (synth_item_ids(&d->synth, &x->own_items, &x->n_item_ids))
            return snprintf(err, errlen, "the synthetic generator gave no item ids"), -1;
    } else if (distinct_ids(&x->ev, 1, &x->item_ids, &x->n_item_ids)) {
        return snprintf(err, errlen, "out of memory"), -1;
    }
    if (x->own_items) x->item_ids = (const char **)x->own_items;
    if (distinct_ids(&x->ev, 0, &x->act_ids, &x->n_act_ids)) return snprintf(err, errlen, "out of memory"), -1;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Cold start: a seeded fraction of the items leaves the vocabulary (and, later, all their events
 * the data). */
static int train_holdout(train_run *x, char *err, size_t errlen) {
    const int n = x->n_item_ids;
    const size_t cap = (size_t)(n ? n : 1);
    int n_hold = (int)(x->o->holdout * n + 0.5), *perm = malloc(cap * sizeof *perm);
    unsigned char *is_held = calloc(cap, 1);
    x->vocab_ids = malloc(cap * sizeof *x->vocab_ids);
    x->held_ids = malloc(cap * sizeof *x->held_ids);
    x->held_keys = malloc(cap * sizeof *x->held_keys);
    if (!perm || !is_held || !x->vocab_ids || !x->held_ids || !x->held_keys) {
        free(perm), free(is_held);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    rng_t hr;
    rng_seed(&hr, x->o->holdout_seed ^ 0x686f6c646f7574ull); /* "holdout" */
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(rng_uniform(&hr) * (i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (int k = 0; k < n_hold; k++) is_held[perm[k]] = 1;
    for (int i = 0; i < n; i++) {
        const char *id = x->item_ids[i];
        if (is_held[i]) x->held_ids[x->n_held] = id, x->held_keys[x->n_held++] = model_item_key(id, strlen(id));
        else x->vocab_ids[x->n_vocab++] = id;
    }
    free(perm), free(is_held);
    qsort(x->held_keys, (size_t)x->n_held, sizeof *x->held_keys, cmp_u64);
    return 0;
}

/* A random model of the vocabulary, with the value head when events carry values. */
static int train_model(train_run *x, char *err, size_t errlen) {
    const train_opts *o = x->o;
    int heads = MODEL_HEAD_SCORE;
    for (size_t i = 0; i < x->ev.n; i++) heads |= x->ev.ev[i].has_value && o->tc.value_weight > 0 ? MODEL_HEAD_VALUE : 0;
    return model_init_random(&x->m, &o->model.cfg, o->model.name, x->vocab_ids, x->n_vocab, x->act_ids, x->n_act_ids,
                             o->model.init_seed, err, errlen) ||
           model_add_heads(x->m, heads, o->model.init_seed, err, errlen);
}

/* Text models: the catalogue's vectors by vocabulary index, the events' own texts encoded. */
static int train_texts(train_run *x, char *err, size_t errlen) {
    const train_opts *o = x->o;
    const char *ml = o->data.movielens;
    if ((o->text.items ? item_catalog_jsonl(o->text.items, &x->cat, err, errlen)
                       : ml ? item_catalog_movielens(ml, &x->cat, err, errlen) : 0) ||
        item_table_from_catalog(&x->items, &x->cat, o->text.encoder_dir, o->text.cache_dir, &x->tstats, err, errlen))
        return -1;
    const int NI = x->m->cfg.n_items;
    x->item_text = calloc((size_t)NI * USE_DIM, sizeof *x->item_text);
    x->item_has_text = calloc((size_t)NI, 1);
    const char **texts = malloc((x->ev.n ? x->ev.n : 1) * sizeof *texts);
    if (!x->item_text || !x->item_has_text || !texts) return free(texts), snprintf(err, errlen, "out of memory"), -1;
    for (int i = 1; i < NI; i++) {
        const char *id = model_item_id(x->m, i);
        const float *v = item_table_get(x->items, model_item_key(id, strlen(id)));
        if (v) memcpy(x->item_text + (size_t)i * USE_DIM, v, USE_DIM * sizeof(float)), x->item_has_text[i] = 1, x->n_item_text++;
    }
    for (size_t i = 0; i < x->ev.n; i++)
        if (x->ev.ev[i].text) texts[x->n_event_text++] = x->ev.ev[i].text;
    x->event_text = malloc((size_t)(x->n_event_text ? x->n_event_text : 1) * USE_DIM * sizeof *x->event_text);
    int rc = !x->event_text ? (snprintf(err, errlen, "out of memory"), -1)
                            : text_encode_all(o->text.encoder_dir, o->text.cache_dir, texts, (size_t)x->n_event_text,
                                              x->event_text, &x->tstats, err, errlen);
    free(texts);
    if (!rc)
        fprintf(stderr, "ievo train: text: %ld of %d vocabulary items have a catalogue text (%zu in the catalogue), %ld events "
                "their own; USE-lite: %ld texts encoded in %.2f s (+%.2f s loading), %ld from the cache\n",
                x->n_item_text, NI - 1, x->cat.n, x->n_event_text, x->tstats.encoded, x->tstats.encode_s,
                x->tstats.load_s, x->tstats.from_cache);
    return rc;
}

/* Users in first-seen order; the sequences without the held-out items' events. */
static int train_sequences(train_run *x, char *err, size_t errlen) {
    const train_opts *o = x->o;
    const size_t n = x->ev.n;
    ptr_index users = {0};
    int32_t *uid = malloc(n * sizeof *uid);
    model_event *mev = malloc(n * sizeof *mev);
    x->user_names = malloc(n * sizeof *x->user_names);
    int rc = -1;
    if (!uid || !mev || !x->user_names) goto oom;
    for (size_t i = 0, et = 0; i < n; i++) {
        const source_event *e = &x->ev.ev[i];
        int is_new = 0;
        int32_t u = ptr_index_get(&users, e->user_id, &is_new);
        if (u < 0) goto oom;
        if (is_new) x->user_names[u] = e->user_id;
        const float *etext = e->text && x->event_text ? x->event_text + (et++) * USE_DIM : NULL;
        uint64_t key = model_item_key(e->item_id, strlen(e->item_id));
        if (x->n_held && bsearch(&key, x->held_keys, (size_t)x->n_held, sizeof *x->held_keys, cmp_u64)) {
            x->dropped++;
            continue;
        }
        size_t k = x->n_train++;
        uid[k] = u;
        mev[k] = (model_event){model_item_index(x->m, e->item_id, strlen(e->item_id)),
                               model_action_index(x->m, e->action, strlen(e->action)), e->ts, e->value, e->has_value,
                               o->text_on ? key : 0, o->text_on ? etext : NULL};
        x->oov += mev[k].item == 0;
    }
    x->n_users = (int)users.n;
    if (train_data_group(&x->data, x->n_users, x->n_train, uid, mev, NULL, err, errlen)) goto done;
    x->data.item_text = x->item_text;
    x->data.item_has_text = x->item_has_text;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
done:
    ptr_index_free(&users);
    free(uid), free(mev);
    return rc;
}

/* ---- training ------------------------------------------------------------------------------- */

static void fmt_dur(char *b, size_t n, double s) {
    if (s < 90) snprintf(b, n, "%.0fs", s);
    else if (s < 5400) snprintf(b, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(b, n, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

static void on_progress(const train_progress *p, void *user) {
    (void)user;
    char el[32], eta[32];
    fmt_dur(el, sizeof el, p->elapsed_s);
    fmt_dur(eta, sizeof eta, p->eta_s);
    fprintf(stderr,
            "epoch %3d/%d  loss %.4f  val HR@10 %.4f NDCG@10 %.4f HR@20 %.4f NDCG@20 %.4f", p->epoch, p->epochs, p->loss,
            p->val.hr10, p->val.ndcg10, p->val.hr20, p->val.ndcg20);
    if (p->val.n_value) fprintf(stderr, "  MAE %.4f RMSE %.4f (train g-MSE %.4f)", p->val.mae, p->val.rmse, p->value_mse);
    fprintf(stderr, "  | lr %.2g  %.0f ev/s  %.1fs/epoch  elapsed %s  left <= %s%s\n", p->lr, p->events_per_s, p->epoch_s, el, eta,
            p->improved ? "  *best" : "");
}

static int train_run_fit(train_run *x, char *err, size_t errlen) {
    const train_opts *o = x->o;
    const model_config *mc = &x->m->cfg;
    char family[32];
    model_family_name(mc, family, sizeof family);
    fprintf(stderr,
            "ievo train: %zu events, %d users, %d items + <oov> (%ld events with an unknown item), %d actions; "
            "%s H=%d E=%d D=%d W=%d%s, %zu parameters\n",
            x->n_train, x->n_users, x->n_vocab, x->oov, x->n_act_ids, family, mc->hidden, mc->item_dim, mc->out_dim, mc->window,
            o->text_on ? (o->tc.text_only ? ", text only" : ", text") : "", x->m->n_params);
    if (x->n_held)
        fprintf(stderr, "ievo train: held out %d items (fraction %g, seed %llu) and their %ld events\n", x->n_held,
                o->holdout, (unsigned long long)o->holdout_seed, x->dropped);
    train_result *res = &x->res;
    if (train_fit(x->m, &x->data, &o->tc, on_progress, NULL, res, err, errlen)) return -1;
    fprintf(stderr,
            "ievo train: best epoch %d of %d: val HR@10 %.4f NDCG@10 %.4f HR@20 %.4f NDCG@20 %.4f (%ld users); "
            "%.1f s to the best epoch, %.1f s in all, %.0f training events/s, %d threads\n",
            res->best_epoch, res->epochs_run, res->best_val.hr10, res->best_val.ndcg10, res->best_val.hr20,
            res->best_val.ndcg20, res->best_val.n, res->time_to_best_s, res->total_s, res->events_per_s, res->threads);
    const char *kept = res->value_refit_epoch == 2 ? "the refit on the final u_t" : "the joint one";
    if (res->value_refit_epoch && model_heads(x->m) & MODEL_HEAD_VALUE_USER)
        fprintf(stderr, "ievo train: value head: %s kept, with the user bias (decay %g, shrinkage %g): validation MAE "
                "%.4f RMSE %.4f (%ld events)\n", kept, res->value_user[0], res->value_user[1], res->best_val.mae,
                res->best_val.rmse, res->best_val.n_value);
    else if (res->value_refit_epoch)
        fprintf(stderr, "ievo train: value head: %s kept, no user bias: validation MAE %.4f RMSE %.4f (%ld events)\n",
                kept, res->best_val.mae, res->best_val.rmse, res->best_val.n_value);
    return 0;
}

/* ---- the model file's metadata -------------------------------------------------------------- */

/* A metric in the metadata: 6 decimals, as eval reports it. */
static json_t *real6(double v) { return json_real_or_null(isfinite(v) ? round(v * 1e6) / 1e6 : v); }

static json_t *meta_text(const train_run *x) {
    const train_opts *o = x->o;
    const char *csrc = o->text.items ? o->text.items : o->data.movielens;
    return json_pack("{s:s,s:i,s:o,s:s,s:I,s:I,s:I,s:i,s:i,s:I,s:I,s:f,s:f,s:I}", "encoder", "use-lite", "dim", USE_DIM,
                     "catalogue", csrc ? json_string_lossy(csrc, strlen(csrc)) : json_null(), "catalogue_format",
                     o->text.items ? "jsonl" : o->data.movielens ? "movielens" : "none", "catalogue_items",
                     (json_int_t)x->cat.n, "vocab_items_with_text", (json_int_t)x->n_item_text, "event_texts",
                     (json_int_t)x->n_event_text, "text_only", o->tc.text_only, "zero_oov", o->tc.zero_oov, "encoded",
                     (json_int_t)x->tstats.encoded, "from_cache", (json_int_t)x->tstats.from_cache, "encode_s",
                     x->tstats.encode_s, "encoder_load_s", x->tstats.load_s, "tokens", (json_int_t)x->tstats.tokens);
}

static json_t *meta_holdout(const train_run *x) {
    json_t *items = json_array();
    for (int i = 0; items && i < x->n_held; i++) json_array_append_new(items, json_string_lossy(x->held_ids[i], strlen(x->held_ids[i])));
    return json_pack("{s:f,s:I,s:I,s:o}", "fraction", x->o->holdout, "seed", (json_int_t)x->o->holdout_seed,
                     "events_dropped", (json_int_t)x->dropped, "items", items);
}

static json_t *meta_validation(const train_result *res, const model *m) {
    const rank_metrics *v = &res->best_val;
    json_t *o = json_pack("{s:i,s:I,s:o,s:o,s:o,s:o}", "epoch", res->best_epoch, "users", (json_int_t)v->n, "hr10",
                          real6(v->hr10), "ndcg10", real6(v->ndcg10), "hr20", real6(v->hr20), "ndcg20", real6(v->ndcg20));
    if (o && v->n_value) {
        json_object_set_new(o, "value_events", json_integer(v->n_value));
        json_object_set_new(o, "mae", real6(v->mae));
        json_object_set_new(o, "rmse", real6(v->rmse));
    }
    if (o && res->value_refit_epoch) json_object_set_new(o, "value_refit", json_boolean(res->value_refit_epoch == 2));
    if (o && model_heads(m) & MODEL_HEAD_VALUE_USER)
        json_object_set_new(o, "value_user", json_pack("[f,f]", res->value_user[0], res->value_user[1]));
    return o;
}

/* What produced the model: the data, text, holdout, the training config, the best validation. */
static json_t *train_meta(const train_run *x) {
    const train_opts *o = x->o;
    const char *src = o->topic ? "topic" : cli_data_kind(&o->data), *src_arg = o->topic ? o->topic : cli_data_arg(&o->data);
    char *cfg_text = train_config_json(&o->tc);
    json_t *cfg = cfg_text ? json_loads(cfg_text, 0, NULL) : NULL;
    free(cfg_text);
    json_t *meta = json_pack("{s:s,s:{s:s,s:o,s:I,s:i,s:i,s:i}}", "created_by", "ievo train", "data", "source", src, "path",
                             json_string_lossy(src_arg, strlen(src_arg)), "events", (json_int_t)x->ev.n, "users",
                             x->n_users, "items", x->n_vocab, "actions", x->n_act_ids);
    if (!meta) return json_decref(cfg), NULL;
    if (o->text_on) json_object_set_new(meta, "text", meta_text(x));
    if (x->n_held) json_object_set_new(meta, "holdout", meta_holdout(x));
    json_object_set_new(meta, "train", cfg ? cfg : json_null());
    json_object_set_new(meta, "init_seed", json_integer((json_int_t)o->model.init_seed));
    json_object_set_new(meta, "threads", json_integer(x->res.threads));
    json_object_set_new(meta, "protocol", json_string("leave-one-out: last event test, second-last validation; all "
                                                      "items ranked, input history filtered"));
    json_object_set_new(meta, "validation", meta_validation(&x->res, x->m));
    json_object_set_new(meta, "epochs_run", json_integer(x->res.epochs_run));
    json_object_set_new(meta, "time_to_best_s", json_real_or_null(x->res.time_to_best_s));
    json_object_set_new(meta, "total_s", json_real_or_null(x->res.total_s));
    json_object_set_new(meta, "events_per_s", json_real_or_null(x->res.events_per_s));
    return meta;
}

static int train_save(const train_run *x, char *err, size_t errlen) {
    json_t *meta = train_meta(x);
    char *text = meta ? json_dumps(meta, IEVO_JSON_DUMP) : NULL;
    json_decref(meta);
    int rc = !text ? (snprintf(err, errlen, "out of memory"), -1)
                   : model_set_meta(x->m, text, err, errlen) || model_save(x->m, x->o->out, err, errlen) ? -1 : 0;
    free(text);
    if (!rc) fprintf(stderr, "ievo train: wrote %s (model_id %s)\n", x->o->out, x->m->model_id);
    return rc;
}

/* --dump-forward: the trainer's own forward at every position, one JSON line each. */
static int write_dump(const char *path, const model *m, const train_data *d, const char *const *names, char *err,
                      size_t errlen) {
    const int D = m->cfg.out_dim;
    int64_t total = d->start[d->n_users];
    float *U = malloc((size_t)(total ? total : 1) * D * sizeof *U);
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    int rc = -1;
    if (!U || !f) {
        snprintf(err, errlen, "%s: %s", path, !U ? "out of memory" : strerror(errno));
        goto done;
    }
    if (train_forward(m, d, NULL, 1, U, MODEL_BACKEND_DNNL, 64, 200, err, errlen)) goto done;
    for (int u = 0; u < d->n_users; u++)
        for (int64_t i = d->start[u]; i < d->start[u + 1]; i++) {
            json_t *vec = json_array();
            for (int k = 0; vec && k < D; k++) json_array_append_new(vec, json_real_or_null(U[(size_t)i * D + k]));
            json_t *line = json_pack("{s:o,s:I,s:o}", "user_id", json_string_lossy(names[u], strlen(names[u])), "events",
                                     (json_int_t)(i - d->start[u] + 1), "vector", vec);
            int bad = !line || json_dumpf(line, f, IEVO_JSON_DUMP) || fputc('\n', f) == EOF;
            json_decref(line);
            if (bad) {
                snprintf(err, errlen, "%s: write failed", path);
                goto done;
            }
        }
    rc = 0;
done:
    if (f && f != stdout && fclose(f) != 0 && rc == 0) rc = -1, snprintf(err, errlen, "%s: %s", path, strerror(errno));
    free(U);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------------ */

/* The options that depend on each other; a usage error names the conflict. */
static int train_check(train_opts *o, const config *cfg) {
    char err[512];
    if (!o->out || cli_data_sources(&o->data) + !!o->topic != 1)
        return cli_usage_error(&CMD, "give -o MODEL and exactly one of --movielens, --jsonl, --synthetic, -t TOPIC");
    if (o->topic && !config_get(cfg, "bootstrap.servers", NULL)) return cli_usage_error(&CMD, "-t TOPIC needs -b BROKERS");
    if (o->text.items && !o->text_on) return cli_usage_error(&CMD, "--items needs --text");
    int backend;
    char name[16];
    if (settings_enum(cfg, "model.backend", &backend, err, sizeof err) ||
        train_config_set(&o->tc, "backend", settings_enum_value("model.backend", backend, name, sizeof name), err, sizeof err))
        return cli_usage_error(&CMD, "%s", err);
    o->model.cfg.n_items = o->model.cfg.n_actions = 1;
    if (o->text_on) o->model.cfg.text_dim = USE_DIM;
    if (!o->tie_set) o->tc.tie = o->model.cfg.item_dim == o->model.cfg.out_dim; /* tied by default: measured better on ML-100K */
    if (model_config_check(&o->model.cfg, err, sizeof err) || train_config_check(&o->tc, err, sizeof err))
        return cli_usage_error(&CMD, "%s", err);
    return CLI_OK;
}

static int train_main(const train_opts *o, const config *cfg) {
    char err[1024] = "";
    train_run x = {.o = o};
    if (o->threads > 0) model_runtime_init(o->threads);
    int rc = train_load(&x, cfg, err, sizeof err) || train_vocabulary(&x, err, sizeof err) ||
             train_holdout(&x, err, sizeof err) || train_model(&x, err, sizeof err) ||
             (o->text_on && train_texts(&x, err, sizeof err)) || train_sequences(&x, err, sizeof err) ||
             train_run_fit(&x, err, sizeof err) || train_save(&x, err, sizeof err) ||
             (o->dump && write_dump(o->dump, x.m, &x.data, x.user_names, err, sizeof err));
    if (!rc && o->dump) fprintf(stderr, "ievo train: wrote the trainer's forward at every position to %s\n", o->dump);
    if (rc) LOG_E("train", "%s", err);
    train_free(&x);
    return rc ? CLI_FAILED : CLI_OK;
}

int cmd_train(int argc, char **argv) {
    train_opts o = {.holdout_seed = 1};
    cli_data_init(&o.data);
    cli_model_init(&o.model, MODEL_CELL_GRU);
    train_config_default(&o.tc);
    cli_args a;
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a);
    if (rc == CLI_OK) rc = train_check(&o, &a.cfg);
    if (rc == CLI_OK) {
        cli_text_resolve(&o.text, &a.cfg);
        rc = train_main(&o, &a.cfg);
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}
