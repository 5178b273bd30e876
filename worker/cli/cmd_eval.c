/* cmd_eval: `ievo eval`, the leave-one-out evaluation of a model file, through the streaming path.
 *
 * Each user's events are applied one by one with model_step, batched across users in waves
 * (event k of every user in wave k, at most --batch rows a step) exactly as the worker applies
 * them; the vector after n-1 events ranks the user's last event (test), the vector after n-2
 * events the second-last (validation). All items are scored, the user's input history is
 * filtered out, and HR@10, NDCG@10, HR@20, NDCG@20 are reported for the model and, in the same
 * run with the same candidates and filter, for the popularity baseline (model/train.h:
 * train_rank_vectors has the exact definitions). A value head is scored by MAE/RMSE on the
 * test events that carry a value, against predicting the mean value.
 * --evolution (synthetic data: item ids "tNN-iNNN" name their topic, and the generator knows
 * each event's true topic) measures how soon after an interest switch the model's top
 * predicted topic follows the new interest, against a static profile (train_evolution).
 * A text model (docs/text.md) steps with the same item-text lookups the worker uses (the
 * catalogue: --items FILE, or u.item with --movielens; the events' own texts), and ranks with
 * the text part of the scoring rows. The candidates are the vocabulary's items plus the items
 * the model has no row for: those it held out in training (its metadata) and, for a text model,
 * the catalogue's other items, each ranked by its text (model_score_rows, index 0). --cold
 * reports on the test events whose target is a held-out item only (model and popularity).
 * Events whose item the model cannot rank (no vocabulary row, no held-out or catalogue row) score
 * zero whatever the model learned: beyond --max-unknown of them (default 10 %) the data is not
 * the model's (another vocabulary, another data set) and eval refuses (exit 1) rather than print
 * numbers that look like a result; below it they are counted in a warning and in the report.
 * Output: a table on stdout, --json FILE for machines (metrics to 6 decimals).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "clock.h"
#include "commands.h"
#include "event_source.h"
#include "item_table.h"
#include "json_text.h"
#include "log.h"
#include "model.h"
#include "ptr_index.h"
#include "settings.h"
#include "train.h"
#include "use_encoder.h"

enum { OPT_JSON = CLI_OPT_ID_FIRST_FREE, OPT_EVOLUTION, OPT_FOLLOW, OPT_BATCH, OPT_THREADS, OPT_COLD, OPT_MAX_UNKNOWN };

static const cli_option OPTS[] = {
    CLI_OPT_MODEL("model.path"),
    CLI_OPTS_DATA,
    {"json", OPT_JSON, "FILE", "also write the report as JSON", NULL},
    {"evolution", OPT_EVOLUTION, NULL, "(synthetic) events until the top predicted topic follows a switch, vs a static profile", NULL},
    {"follow", OPT_FOLLOW, "K", "with --evolution: events after a switch that count (default 10)", NULL},
    {"batch", OPT_BATCH, "N", "rows of one model step, 1..65536 (default 256)", NULL},
    CLI_OPT_BACKEND("model.backend"),
    {"threads", OPT_THREADS, "N", "compute threads (default 1)", NULL},
    {"cold", OPT_COLD, NULL, "only the test events whose target the model held out in training (train --holdout-items)", NULL},
    {"max-unknown", OPT_MAX_UNKNOWN, "FRACTION", "refuse data with more events of items the model cannot rank (default 0.1)", NULL},
    CLI_OPTS_TEXT,
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "eval",
    .synopsis = "-m MODEL (--movielens DIR | --synthetic USERS:EVENTS | --jsonl FILE) [--json FILE]\n"
                " [--evolution [--follow K]] [--synth-seed N] [--batch N] [--backend dnnl|scalar] [--threads N]\n"
                " [--cold] [--items FILE] [--text-encoder DIR] [--text-cache DIR|none]",
    .about = "Leave-one-out through the streaming path (model_step in waves, like the worker): per user the\n"
             "last event is the test target, the second-last the validation target; all items ranked, the\n"
             "input history filtered; HR@10, NDCG@10, HR@20, NDCG@20 for the model and for popularity.\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_EVAL,
};

typedef struct {
    cli_data data;
    cli_text text;
    const char *json_path;
    int evolution, follow, batch, threads, cold;
    double max_unknown;
    model_backend backend;
} eval_opts;

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    eval_opts *o = ctx;
    int64_t x = 0;
    int rc = cli_data_option(&o->data, key, value, err, errlen);
    if (rc) return rc < 0 ? -1 : 0;
    if (cli_text_option(&o->text, key, value)) return 0;
    switch (key) {
    case OPT_JSON: o->json_path = value; break;
    case OPT_EVOLUTION: o->evolution = 1; break;
    case OPT_COLD: o->cold = 1; break;
    case OPT_MAX_UNKNOWN: return cli_double(value, 0, 1, &o->max_unknown, err, errlen);
    case OPT_FOLLOW:
        if (cli_int(value, 1, TRAIN_EVOLUTION_MAX, &x, err, errlen)) return -1;
        o->follow = (int)x;
        break;
    case OPT_BATCH:
        if (cli_int(value, 1, 65536, &x, err, errlen)) return -1;
        o->batch = (int)x;
        break;
    case OPT_THREADS:
        if (cli_int(value, 1, 4096, &x, err, errlen)) return -1;
        o->threads = (int)x;
        break;
    }
    return 0;
}

/* Everything one evaluation holds. */
typedef struct {
    const eval_opts *o;
    model *m;
    model_runner *r;
    event_list ev;
    item_catalog cat;
    item_table *items;           /* text models: the catalogue by item key */
    text_encode_stats tstats;
    float *etext;                /* text models: the events' own texts, in event order */
    char **held;                 /* the items the model held out in training */
    int n_held, nu, text;
    long oov;
    int64_t *perm;               /* grouped position -> event index */
    train_data data;
    /* candidates: rows 1..NI-1 the vocabulary, then the items without a row */
    int n_rows, n_extra;
    long unknown;                /* events whose item has no candidate row */
    int32_t *ridx, *cand;
    const float **rtext;
    uint8_t *cold_row;
    float *S, *bias;
    /* the streaming pass */
    float *U;                    /* the vector after every event (grouped order) */
    long applied;
    double secs;
    rank_metrics tm, tp, vm, vp, cm, cp, nm, np;
} eval_run;

static void eval_free(eval_run *x) {
    for (int h = 0; h < x->n_held; h++) free(x->held[h]);
    free(x->held);
    free(x->etext), free(x->perm), free(x->ridx), free(x->cand), free((void *)x->rtext), free(x->cold_row);
    free(x->S), free(x->bias), free(x->U);
    train_data_free(&x->data);
    model_runner_free(x->r);
    item_table_free(x->items);
    item_catalog_free(&x->cat);
    event_list_free(&x->ev);
    model_free(x->m);
}

/* ---- loading -------------------------------------------------------------------------------- */

/* The model's held-out item ids (metadata "holdout": {"items": [...]}); none when absent. */
static int held_out_items(eval_run *x, char *err, size_t errlen) {
    if (!x->m->meta_json) return 0;
    json_error_t jerr;
    json_t *meta = json_loads(x->m->meta_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!meta) return snprintf(err, errlen, "the model's metadata at %d: %s", jerr.position, jerr.text), -1;
    json_t *arr = json_object_get(json_object_get(meta, "holdout"), "items");
    size_t i, n = json_array_size(arr);
    json_t *v;
    if (n && !(x->held = calloc(n, sizeof *x->held))) return json_decref(meta), snprintf(err, errlen, "out of memory"), -1;
    json_array_foreach(arr, i, v) if (json_is_string(v) && (x->held[x->n_held] = strdup(json_string_value(v)))) x->n_held++;
    json_decref(meta);
    return 0;
}

/* The model, the events, and for a text model the catalogue and the events' own texts. */
static int eval_load(eval_run *x, const char *model_path, char *err, size_t errlen) {
    const eval_opts *o = x->o;
    if (model_load(&x->m, model_path, err, errlen) || cli_data_load(&o->data, &x->ev, err, errlen) ||
        item_table_for_model(x->m->cfg.text_dim, o->text.items, o->data.movielens, o->text.encoder_dir, o->text.cache_dir,
                             &x->cat, &x->items, &x->tstats, err, errlen) ||
        held_out_items(x, err, errlen))
        return -1;
    x->text = x->m->cfg.text_dim > 0;
    if (o->cold && !x->n_held)
        return snprintf(err, errlen, "--cold: model %s held no items out (train it with --holdout-items)", x->m->model_id), -1;
    if (!x->text) return 0;
    size_t nt = 0;
    const char **texts = malloc((x->ev.n ? x->ev.n : 1) * sizeof *texts);
    if (!texts) return snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < x->ev.n; i++)
        if (x->ev.ev[i].text) texts[nt++] = x->ev.ev[i].text;
    int rc = !(x->etext = malloc((nt ? nt : 1) * USE_DIM * sizeof *x->etext))
                 ? (snprintf(err, errlen, "out of memory"), -1)
                 : text_encode_all(o->text.encoder_dir, o->text.cache_dir, texts, nt, x->etext, &x->tstats, err, errlen);
    free(texts);
    return rc;
}

/* Users in first-seen order; events grouped per user in the worker's order. */
static int eval_group(eval_run *x, char *err, size_t errlen) {
    const size_t n = x->ev.n ? x->ev.n : 1;
    ptr_index users = {0};
    int32_t *uid = malloc(n * sizeof *uid);
    model_event *mev = malloc(n * sizeof *mev);
    int rc = -1;
    if (!uid || !mev || !(x->perm = malloc(n * sizeof *x->perm))) goto oom;
    for (size_t i = 0, et = 0; i < x->ev.n; i++) {
        const source_event *e = &x->ev.ev[i];
        if ((uid[i] = ptr_index_get(&users, e->user_id, NULL)) < 0) goto oom;
        mev[i] = (model_event){model_item_index(x->m, e->item_id, strlen(e->item_id)),
                               model_action_index(x->m, e->action, strlen(e->action)), e->ts, e->value, e->has_value};
        if (x->text) {
            mev[i].item_key = model_item_key(e->item_id, strlen(e->item_id));
            mev[i].event_text = e->text ? x->etext + (et++) * USE_DIM : NULL;
        }
        x->oov += mev[i].item == 0;
    }
    x->nu = (int)users.n;
    rc = train_data_group(&x->data, x->nu, x->ev.n, uid, mev, x->perm, err, errlen);
    goto done;
oom:
    snprintf(err, errlen, "out of memory");
done:
    ptr_index_free(&users);
    free(uid), free(mev);
    return rc;
}

/* ---- the candidates ----------------------------------------------------------------------------- */

/* Item keys and their rows, sorted by key. */
typedef struct {
    uint64_t key;
    int32_t row;
} key_row;

static int key_row_cmp(const void *a, const void *b) {
    uint64_t x = ((const key_row *)a)->key, y = ((const key_row *)b)->key;
    return (x > y) - (x < y);
}

/* The row of key among a[0..n) (sorted), or 0 (no row: not rankable). */
static int32_t key_row_find(const key_row *a, size_t n, uint64_t key) {
    key_row k = {key, 0};
    const key_row *f = bsearch(&k, a, n, sizeof *a, key_row_cmp);
    return f ? f->row : 0;
}

/* Adds a row for each of ids[0..n) that has none yet (rows from x->n_rows on). */
static void add_rows(eval_run *x, key_row *keys, size_t *nkeys, const char *const *ids, size_t n) {
    size_t before = *nkeys;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = model_item_key(ids[i], strlen(ids[i]));
        if (key_row_find(keys, before, k)) continue;
        keys[(*nkeys)++] = (key_row){k, x->n_rows};
        x->ridx[x->n_rows] = 0;
        x->rtext[x->n_rows++] = x->text ? item_table_get(x->items, k) : NULL;
    }
    qsort(keys, *nkeys, sizeof *keys, key_row_cmp);
}

/* Rows 1..NI-1 the vocabulary, then the items without a row: the held-out ones, then (text
 * models) the catalogue's others. Row 0 is never a candidate. */
static int eval_candidates(eval_run *x, char *err, size_t errlen) {
    const int NI = x->m->cfg.n_items;
    const size_t cap = (size_t)NI + (size_t)x->n_held + x->cat.n;
    size_t nkeys = 0;
    key_row *keys = malloc(cap * sizeof *keys);
    x->ridx = malloc(cap * sizeof *x->ridx);
    x->rtext = calloc(cap, sizeof *x->rtext);
    if (!keys || !x->ridx || !x->rtext) return free(keys), snprintf(err, errlen, "out of memory"), -1;
    for (int i = 0; i < NI; i++) {
        const char *id = model_item_id(x->m, i);
        uint64_t k = model_item_key(id, strlen(id));
        x->ridx[i] = i;
        if (i > 0) keys[nkeys++] = (key_row){k, i};
        if (x->text && i > 0) x->rtext[i] = item_table_get(x->items, k);
    }
    x->n_rows = NI;
    qsort(keys, nkeys, sizeof *keys, key_row_cmp);
    add_rows(x, keys, &nkeys, (const char *const *)x->held, (size_t)x->n_held);
    if (x->text) add_rows(x, keys, &nkeys, (const char *const *)x->cat.ids, x->cat.n);
    x->n_extra = x->n_rows - NI;
    x->cand = malloc((x->ev.n ? x->ev.n : 1) * sizeof *x->cand);
    x->cold_row = calloc((size_t)x->n_rows, 1);
    x->bias = malloc((size_t)x->n_rows * sizeof *x->bias);
    int rc = -1;
    if (!x->cand || !x->cold_row || !x->bias) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < x->ev.n; i++) {
        const char *id = x->ev.ev[x->perm[i]].item_id;
        x->unknown += (x->cand[i] = key_row_find(keys, nkeys, model_item_key(id, strlen(id)))) == 0;
    }
    for (int h = 0; h < x->n_held; h++) x->cold_row[key_row_find(keys, nkeys, model_item_key(x->held[h], strlen(x->held[h])))] = 1;
    x->cold_row[0] = 0;
    if (!(model_heads(x->m) & MODEL_HEAD_SCORE)) {
        memset(x->bias, 0, (size_t)x->n_rows * sizeof *x->bias);
        rc = 0;
    } else if (!(x->S = malloc((size_t)x->n_rows * x->m->cfg.out_dim * sizeof *x->S))) {
        snprintf(err, errlen, "out of memory");
    } else {
        rc = model_score_rows(x->m, x->n_rows, x->ridx, x->rtext, x->S, x->bias, err, errlen);
    }
done:
    free(keys);
    return rc;
}

/* Refuses data the model does not know beyond --max-unknown; warns about what it does not know
 * below that. */
static int eval_check_unknown(const eval_run *x, char *err, size_t errlen) {
    if (!x->unknown) return 0;
    double share = x->ev.n ? (double)x->unknown / (double)x->ev.n : 0;
    const char *arg = cli_data_arg(&x->o->data);
    if (share > x->o->max_unknown)
        return snprintf(err, errlen, "%ld of %zu events (%.1f %%) of %s name items model %s cannot rank (not in its "
                        "vocabulary%s): it was trained on other data, or this is not its data set; refusing to report "
                        "scores they would make zero (--max-unknown %.2f; raise it to evaluate anyway)",
                        x->unknown, x->ev.n, 100 * share, arg, x->m->model_id,
                        x->text ? ", its held-out items or the catalogue" : " or its held-out items", x->o->max_unknown),
               -1;
    LOG_WF("eval", LOG_AT(LF_COUNT(x->unknown)),
           "%ld of %zu events (%.1f %%) name items model %s cannot rank: they score zero (--max-unknown %.2f)",
           x->unknown, x->ev.n, 100 * share, x->m->model_id, x->o->max_unknown);
    return 0;
}

/* ---- the streaming pass and the splits ------------------------------------------------------ */

/* Every event up to each user's second-last (all of them with --evolution) through model_step
 * in waves: x->U gets the vector after each. */
static int eval_stream(eval_run *x, char *err, size_t errlen) {
    const int D = x->m->cfg.out_dim, batch = x->o->batch, nu = x->nu;
    const size_t ss = (model_state_size(x->m) + 7) & ~(size_t)7;
    const train_data *d = &x->data;
    unsigned char *states = malloc(ss * (size_t)(nu ? nu : 1));
    void **sp = malloc((size_t)batch * sizeof *sp);
    model_event *sev = malloc((size_t)batch * sizeof *sev);
    int64_t *srow = malloc((size_t)batch * sizeof *srow), maxlen = 0;
    float *svec = malloc((size_t)batch * D * sizeof *svec), *sdrift = malloc((size_t)batch * sizeof *sdrift);
    int rc = -1;
    x->U = malloc((x->ev.n ? x->ev.n : 1) * (size_t)D * sizeof *x->U);
    if (!states || !sp || !sev || !srow || !svec || !sdrift || !x->U) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int u = 0; u < nu; u++) model_state_init(x->m, states + ss * (size_t)u);
    for (int u = 0; u < nu; u++) maxlen = d->start[u + 1] - d->start[u] > maxlen ? d->start[u + 1] - d->start[u] : maxlen;
    double t0 = clock_mono_s();
    for (int64_t k = 0; k < maxlen; k++) {
        int n = 0;
        for (int u = 0; u <= nu; u++) {
            int64_t len = u < nu ? d->start[u + 1] - d->start[u] : 0, limit = x->o->evolution ? len : len - 1;
            if (u < nu && k < limit) {
                sp[n] = states + ss * (size_t)u;
                sev[n] = d->ev[d->start[u] + k];
                srow[n++] = d->start[u] + k;
            }
            if (n == batch || (u == nu && n > 0)) {
                if (model_step(x->r, n, sp, sev, svec, sdrift, err, errlen)) goto done;
                for (int j = 0; j < n; j++) memcpy(x->U + (size_t)srow[j] * D, svec + (size_t)j * D, (size_t)D * sizeof(float));
                x->applied += n;
                n = 0;
            }
        }
    }
    x->secs = clock_mono_s() - t0;
    rc = 0;
done:
    free(states), free(sp), free(sev), free(srow), free(svec), free(sdrift);
    return rc;
}

/* The vectors before each split's target, ranked: test, validation, and with --cold the test
 * events of held-out targets (among all candidates, and among the held-out ones). */
static int eval_rank(eval_run *x, char *err, size_t errlen) {
    const int D = x->m->cfg.out_dim, nu = x->nu, have = (model_heads(x->m) & MODEL_HEAD_SCORE) != 0;
    float *Ut = calloc((size_t)(nu ? nu : 1) * D, sizeof *Ut), *Uv = calloc((size_t)(nu ? nu : 1) * D, sizeof *Uv);
    int rc = -1;
    if (!Ut || !Uv) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int u = 0; u < nu; u++) {
        int64_t b = x->data.start[u], n = x->data.start[u + 1] - b;
        if (n >= 2) memcpy(Ut + (size_t)u * D, x->U + (size_t)(b + n - 2) * D, (size_t)D * sizeof(float));
        if (n >= 3) memcpy(Uv + (size_t)u * D, x->U + (size_t)(b + n - 3) * D, (size_t)D * sizeof(float));
    }
    train_rank_set all = {x->n_rows, x->S, x->bias, x->cand, NULL, NULL},
                   cold = {x->n_rows, x->S, x->bias, x->cand, x->cold_row, NULL},
                   among_new = {x->n_rows, x->S, x->bias, x->cand, x->cold_row, x->cold_row};
    const model *m = x->m;
    if (train_rank_vectors_set(m, &x->data, 1, Ut, &all, have ? &x->tm : NULL, &x->tp, err, errlen) ||
        train_rank_vectors_set(m, &x->data, 2, Uv, &all, have ? &x->vm : NULL, &x->vp, err, errlen) ||
        (x->o->cold && train_rank_vectors_set(m, &x->data, 1, Ut, &cold, have ? &x->cm : NULL, &x->cp, err, errlen)) ||
        (x->o->cold && train_rank_vectors_set(m, &x->data, 1, Ut, &among_new, have ? &x->nm : NULL, &x->np, err, errlen)))
        goto done;
    rc = 0;
done:
    free(Ut), free(Uv);
    return rc;
}

/* ---- the table -------------------------------------------------------------------------------- */

static void row(const char *split, const rank_metrics *mm, const rank_metrics *pp, int have_model) {
    if (have_model)
        printf("%-10s %5ld | %.4f  %.4f  %.4f  %.4f | %.4f  %.4f  %.4f  %.4f\n", split, pp->n, mm->hr10, mm->ndcg10,
               mm->hr20, mm->ndcg20, pp->hr10, pp->ndcg10, pp->hr20, pp->ndcg20);
    else
        printf("%-10s %5ld |      (no scoring head)         | %.4f  %.4f  %.4f  %.4f\n", split, pp->n, pp->hr10,
               pp->ndcg10, pp->hr20, pp->ndcg20);
}

static void eval_print(const eval_run *x) {
    const eval_opts *o = x->o;
    const int have = (model_heads(x->m) & MODEL_HEAD_SCORE) != 0;
    printf("ievo eval: model %s on %s %s: %zu events, %d users, %d items + <oov> (%ld events with an unknown item)\n",
           x->m->model_id, cli_data_kind(&o->data), cli_data_arg(&o->data), x->ev.n, x->nu, x->m->cfg.n_items - 1, x->oov);
    printf("streaming path: model_step (%s), waves of <= %d users, %ld events applied in %.1f s\n",
           cli_backend_name(o->backend), o->batch, x->applied, x->secs);
    if (x->text)
        printf("text: %zu catalogue items (%d candidates without a vocabulary row, ranked by their text), %ld event "
               "texts; USE-lite encoded %ld texts in %.2f s, %ld from the cache\n",
               x->cat.n, x->n_extra, x->tstats.texts - (long)x->cat.n, x->tstats.encoded, x->tstats.encode_s,
               x->tstats.from_cache);
    else if (x->n_extra)
        printf("%d held-out items are candidates without a vocabulary row (the model cannot tell them apart)\n", x->n_extra);
    printf("leave-one-out, all items ranked, input history filtered\n");
    printf("split      users |  model: HR@10  NDCG@10 HR@20   NDCG@20 | popularity: HR@10 NDCG@10 HR@20 NDCG@20\n");
    row("test", &x->tm, &x->tp, have);
    row("validation", &x->vm, &x->vp, have);
    if (o->cold) {
        row("test cold", &x->cm, &x->cp, have);
        printf("(test cold: the test events whose target is a held-out item, ranked among all %d candidates)\n",
               x->n_rows - 1);
        row("cold/new", &x->nm, &x->np, have);
        printf("(cold/new: the same events, ranked among the %d held-out items only: which new item)\n", x->n_held);
    }
    if (have && x->tm.n_value)
        printf("value (test, %ld events with a value): model MAE %.4f RMSE %.4f | mean value: MAE %.4f RMSE %.4f\n",
               x->tm.n_value, x->tm.mae, x->tm.rmse, x->tp.mae, x->tp.rmse);
}

/* ---- the JSON report ----------------------------------------------------------------------------- */

/* A metric in the report: 6 decimals, more than the protocol can tell apart. */
static json_t *real6(double v) { return json_real_or_null(isfinite(v) ? round(v * 1e6) / 1e6 : v); }

static json_t *metrics_json(const rank_metrics *r) {
    json_t *o = json_pack("{s:I,s:o,s:o,s:o,s:o}", "users", (json_int_t)r->n, "hr10", real6(r->hr10), "ndcg10",
                          real6(r->ndcg10), "hr20", real6(r->hr20), "ndcg20", real6(r->ndcg20));
    if (o && r->n_value) {
        json_object_set_new(o, "value_events", json_integer(r->n_value));
        json_object_set_new(o, "mae", real6(r->mae));
        json_object_set_new(o, "rmse", real6(r->rmse));
    }
    return o;
}

/* {"model": ..., "popularity": ...}, without the model when it has no scoring head. */
static json_t *split_json(const rank_metrics *mm, const rank_metrics *pp, int have) {
    json_t *o = json_object();
    if (o && have) json_object_set_new(o, "model", metrics_json(mm));
    if (o) json_object_set_new(o, "popularity", metrics_json(pp));
    return o;
}

static json_t *eval_json(const eval_run *x) {
    const eval_opts *o = x->o;
    const int have = (model_heads(x->m) & MODEL_HEAD_SCORE) != 0;
    char path[96];
    snprintf(path, sizeof path, "model_step (%s), waves of <= %d users", cli_backend_name(o->backend), o->batch);
    const char *arg = cli_data_arg(&o->data);
    json_t *j = json_pack(
        "{s:s,s:{s:s,s:o,s:I,s:i,s:i,s:I,s:I},s:s,s:s,s:o,s:o,s:i,s:i,s:i}", "model", x->m->model_id, "data", "source",
        cli_data_kind(&o->data), "path", json_string_lossy(arg, strlen(arg)), "events", (json_int_t)x->ev.n, "users", x->nu,
        "items", x->m->cfg.n_items - 1, "oov_events", (json_int_t)x->oov, "unknown_events", (json_int_t)x->unknown,
        "path", path, "protocol",
        "leave-one-out; all items; input history filtered; popularity = occurrences among the split's input events, "
        "ties to the lower vocabulary index",
        "test", split_json(&x->tm, &x->tp, have), "validation", split_json(&x->vm, &x->vp, have), "candidates",
        x->n_rows - 1, "candidates_without_row", x->n_extra, "held_out_items", x->n_held);
    if (j && x->text)
        json_object_set_new(j, "text", json_pack("{s:I,s:I,s:I,s:f}", "catalogue_items", (json_int_t)x->cat.n, "encoded",
                                                 (json_int_t)x->tstats.encoded, "from_cache",
                                                 (json_int_t)x->tstats.from_cache, "encode_s", x->tstats.encode_s));
    if (j && o->cold) {
        json_object_set_new(j, "cold", split_json(&x->cm, &x->cp, have));
        json_object_set_new(j, "cold_among_new", split_json(&x->nm, &x->np, have));
    }
    return j;
}

/* ---- --evolution ------------------------------------------------------------------------------ */

/* median of a histogram over 0..K (K = not within K) */
static int hist_median(const long *h, int K) {
    long total = 0, acc = 0;
    for (int k = 0; k <= K; k++) total += h[k];
    for (int k = 0; k <= K; k++)
        if ((acc += h[k]) * 2 >= total) return k;
    return K;
}

static json_t *shares_json(const long *hits, long of, int K) {
    json_t *a = json_array();
    for (int k = 0; a && k < K; k++) json_array_append_new(a, real6(of ? (double)hits[k] / (double)of : 0.0));
    return a;
}

static json_t *counts_json(const long *h, int n) {
    json_t *a = json_array();
    for (int k = 0; a && k < n; k++) json_array_append_new(a, json_integer(h[k]));
    return a;
}

static void evolution_print(const train_evolution_result *er, int K, int mmed, int smed) {
    double sw = er->switches ? (double)er->switches : 1.0;
    printf("\ninterest evolution: %ld switches followed by >= %d events of the new topic (synthetic ground truth)\n",
           er->switches, K);
    printf("events of the new interest seen      ");
    for (int k = 0; k < K; k++) printf(" %5d", k + 1);
    printf("\nmodel: top topic = the new one       ");
    for (int k = 0; k < K; k++) printf(" %5.3f", er->switches ? (double)er->model_hit[k] / sw : 0.0);
    printf("\nstatic profile (mean past embedding) ");
    for (int k = 0; k < K; k++) printf(" %5.3f", er->switches ? (double)er->static_hit[k] / sw : 0.0);
    char mt[16], st[16]; /* the median event count, or ">K" when most switches are not followed within K */
    snprintf(mt, sizeof mt, mmed == K ? ">%d" : "%d", mmed == K ? K : mmed + 1);
    snprintf(st, sizeof st, smed == K ? ">%d" : "%d", smed == K ? K : smed + 1);
    printf("\nevents until the top topic first follows the switch (median): model %s, static profile %s\n", mt, st);
    printf("followed within %d events: model %.3f, static profile %.3f\n", K,
           er->switches ? 1.0 - (double)er->model_lag_hist[K] / sw : 0.0,
           er->switches ? 1.0 - (double)er->static_lag_hist[K] / sw : 0.0);
}

/* Item ids "tNN-iNNN" name their topic; the generator's topic per event is the truth. */
static int eval_evolution(const eval_run *x, json_t *report, char *err, size_t errlen) {
    if (!(model_heads(x->m) & MODEL_HEAD_SCORE)) return snprintf(err, errlen, "--evolution needs a model with a scoring head"), -1;
    const int K = x->o->follow;
    int32_t *topic = malloc((x->ev.n ? x->ev.n : 1) * sizeof *topic);
    int32_t *item_topic = malloc((size_t)x->m->cfg.n_items * sizeof *item_topic);
    train_evolution_result er;
    int rc = -1;
    if (!topic || !item_topic) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < x->ev.n; i++) topic[i] = (int32_t)x->ev.ev[x->perm[i]].topic;
    for (int i = 0; i < x->m->cfg.n_items; i++) {
        const char *id = model_item_id(x->m, i);
        int t, k;
        item_topic[i] = id && sscanf(id, "t%d-i%d", &t, &k) == 2 ? t : -1;
    }
    if (train_evolution(x->m, &x->data, x->U, topic, item_topic, K, &er, err, errlen)) goto done;
    int mmed = hist_median(er.model_lag_hist, K), smed = hist_median(er.static_lag_hist, K);
    evolution_print(&er, K, mmed, smed);
    /* medians: events of the new interest seen; K + 1 means "not within K" */
    json_object_set_new(report, "evolution",
                        json_pack("{s:i,s:I,s:o,s:o,s:o,s:o,s:i,s:i}", "follow", K, "switches", (json_int_t)er.switches,
                                  "model_hit", shares_json(er.model_hit, er.switches, K), "static_hit",
                                  shares_json(er.static_hit, er.switches, K), "model_first_hit_hist",
                                  counts_json(er.model_lag_hist, K + 1), "static_first_hit_hist",
                                  counts_json(er.static_lag_hist, K + 1), "model_median_events", mmed + 1,
                                  "static_median_events", smed + 1));
    rc = 0;
done:
    free(topic), free(item_topic);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------------ */

static int eval_write_json(json_t *report, const char *path, char *err, size_t errlen) {
    atomic_file af;
    if (atomic_file_open(&af, path, 0666, err, errlen)) return -1;
    if (json_dumpf(report, af.f, IEVO_JSON_DUMP) || fputc('\n', af.f) == EOF) {
        snprintf(err, errlen, "cannot write %s", path);
        atomic_file_abort(&af);
        return -1;
    }
    return atomic_file_commit(&af, err, errlen);
}

static int eval_main(const eval_opts *o, const char *model_path) {
    char err[1024] = "";
    eval_run x = {.o = o};
    json_t *report = NULL;
    model_runtime_init(o->threads);
    int rc = eval_load(&x, model_path, err, sizeof err) || eval_group(&x, err, sizeof err) ||
             eval_candidates(&x, err, sizeof err) || eval_check_unknown(&x, err, sizeof err) ||
             model_runner_new(&x.r, x.m, o->backend, o->batch, err, sizeof err);
    if (!rc && x.text) model_runner_set_text(x.r, item_table_lookup, x.items);
    rc = rc || eval_stream(&x, err, sizeof err) || eval_rank(&x, err, sizeof err);
    if (!rc) {
        eval_print(&x);
        if (!(report = eval_json(&x))) rc = 1, snprintf(err, sizeof err, "out of memory");
    }
    rc = rc || (o->evolution && eval_evolution(&x, report, err, sizeof err)) ||
         (o->json_path && eval_write_json(report, o->json_path, err, sizeof err));
    if (rc) LOG_E("eval", "%s", err);
    fflush(stdout);
    json_decref(report);
    eval_free(&x);
    return rc ? CLI_FAILED : CLI_OK;
}

int cmd_eval(int argc, char **argv) {
    eval_opts o = {.follow = 10, .batch = 256, .threads = 1, .max_unknown = 0.1};
    cli_data_init(&o.data);
    cli_args a;
    char err[512];
    const char *model_path = NULL;
    int backend = 0;
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a);
    if (rc == CLI_OK && (settings_string(&a.cfg, "model.path", &model_path, err, sizeof err) ||
                         settings_enum(&a.cfg, "model.backend", &backend, err, sizeof err)))
        rc = cli_usage_error(&CMD, "%s", err);
    if (rc == CLI_OK && (!model_path || cli_data_sources(&o.data) != 1))
        rc = cli_usage_error(&CMD, "give -m MODEL and exactly one of --movielens, --synthetic, --jsonl");
    if (rc == CLI_OK && o.evolution && !o.data.synthetic)
        rc = cli_usage_error(&CMD, "--evolution needs --synthetic (the known topics)");
    if (rc == CLI_OK) {
        o.backend = (model_backend)backend;
        cli_text_resolve(&o.text, &a.cfg);
        rc = eval_main(&o, model_path);
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}
