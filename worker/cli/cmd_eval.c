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
 * Output: a table on stdout, --json FILE for machines. Exit codes: 0, 1 failed, 2 usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "event_source.h"
#include "item_table.h"
#include "json.h"
#include "ptr_index.h"
#include "model.h"
#include "train.h"
#include "use_encoder.h"

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: ievo eval --model MODEL (--movielens DIR | --synthetic USERS:EVENTS | --jsonl FILE)\n"
            "                 [--json FILE] [--evolution [--follow K]] [--synth-seed N] [--batch N]\n"
            "                 [--backend dnnl|scalar] [--threads N] [--cold]\n"
            "                 [--items FILE] [--text-encoder DIR] [--text-cache DIR|none]   (text models)\n"
            "Leave-one-out through the streaming path (model_step in waves, like the worker): per user the\n"
            "last event is the test target, the second-last the validation target; all items ranked, the\n"
            "input history filtered; HR@10, NDCG@10, HR@20, NDCG@20 for the model and for popularity.\n"
            "  --evolution   (synthetic) after an interest switch, how many events until the model's top\n"
            "                predicted topic is the new one, vs a static profile; --follow K (default 10)\n"
            "  --cold        only the test events whose target is an item the model held out in training\n"
            "                (ievo train --holdout-items): model and popularity on those events\n");
}

static void metrics_json(json_buf *b, const char *name, const rank_metrics *r) {
    json_buf_printf(b, "\"%s\":{\"users\":%ld,\"hr10\":%.6f,\"ndcg10\":%.6f,\"hr20\":%.6f,\"ndcg20\":%.6f", name, r->n,
                    r->hr10, r->ndcg10, r->hr20, r->ndcg20);
    if (r->n_value) json_buf_printf(b, ",\"value_events\":%ld,\"mae\":%.6f,\"rmse\":%.6f", r->n_value, r->mae, r->rmse);
    json_buf_append(b, "}", 1);
}

static void row(const char *split, const rank_metrics *mm, const rank_metrics *pp, int have_model) {
    if (have_model)
        printf("%-10s %5ld | %.4f  %.4f  %.4f  %.4f | %.4f  %.4f  %.4f  %.4f\n", split, pp->n, mm->hr10, mm->ndcg10,
               mm->hr20, mm->ndcg20, pp->hr10, pp->ndcg10, pp->hr20, pp->ndcg20);
    else
        printf("%-10s %5ld |      (no scoring head)         | %.4f  %.4f  %.4f  %.4f\n", split, pp->n, pp->hr10,
               pp->ndcg10, pp->hr20, pp->ndcg20);
}

/* median of a histogram over 0..K (K = not within K) */
static int hist_median(const long *h, int K) {
    long total = 0, acc = 0;
    for (int k = 0; k <= K; k++) total += h[k];
    for (int k = 0; k <= K; k++)
        if ((acc += h[k]) * 2 >= total) return k;
    return K;
}

/* The model's held-out item ids (metadata "holdout": {"items": [...]}), NULL-terminated; NULL
 * when none. */
static char **held_out_items(const model *m, int *n) {
    *n = 0;
    if (!m->meta_json) return NULL;
    char jerr[128];
    json_value *meta = json_parse(m->meta_json, strlen(m->meta_json), jerr, sizeof jerr);
    const json_value *arr = json_get(json_get(meta, "holdout"), "items");
    char **out = NULL;
    if (arr && arr->type == JSON_ARRAY && (out = calloc(arr->len + 1, sizeof *out)))
        for (size_t i = 0; i < arr->len; i++)
            if (arr->items[i]->type == JSON_STRING && (out[*n] = strdup(arr->items[i]->str))) (*n)++;
    json_free(meta);
    return out;
}

/* item key -> candidate row, open addressing */
typedef struct {
    uint64_t *key;
    int32_t *row;
    size_t cap;
} key_map;

static int key_map_put(key_map *k, uint64_t key, int32_t row) {
    size_t mask = k->cap - 1, h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & mask;
    while (k->key[h] && k->key[h] != key) h = (h + 1) & mask;
    if (k->key[h]) return 0;
    k->key[h] = key, k->row[h] = row;
    return 1;
}

static int32_t key_map_get(const key_map *k, uint64_t key) {
    size_t mask = k->cap - 1, h = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & mask;
    while (k->key[h] && k->key[h] != key) h = (h + 1) & mask;
    return k->key[h] ? k->row[h] : 0;
}

int cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *ml = NULL, *syn = NULL, *jl = NULL, *json_path = NULL, *items_path = NULL;
    int evolution = 0, follow = 10, batch = 256, threads = 1, cold = 0;
    char enc_dir[4096], cache_dir[4096];
    text_default_dirs(enc_dir, sizeof enc_dir, cache_dir, sizeof cache_dir);
    model_backend backend = MODEL_BACKEND_DNNL;
    synth_opts so;
    synth_opts_default(&so);
    char err[1024] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return eval_usage(stdout), 0;
        if (!strcmp(a, "--evolution")) {
            evolution = 1;
            continue;
        }
        if (!strcmp(a, "--cold")) {
            cold = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ievo eval: unknown option or missing value: %s\n", a);
            return eval_usage(stderr), 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model") || !strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "--movielens")) ml = v;
        else if (!strcmp(a, "--synthetic")) syn = v;
        else if (!strcmp(a, "--jsonl")) jl = v;
        else if (!strcmp(a, "--json")) json_path = v;
        else if (!strcmp(a, "--synth-seed")) so.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--follow")) follow = atoi(v);
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--items")) items_path = v;
        else if (!strcmp(a, "--text-encoder")) snprintf(enc_dir, sizeof enc_dir, "%s", v);
        else if (!strcmp(a, "--text-cache")) snprintf(cache_dir, sizeof cache_dir, "%s", v);
        else if (!strcmp(a, "--backend")) {
            if (!strcmp(v, "dnnl")) backend = MODEL_BACKEND_DNNL;
            else if (!strcmp(v, "scalar")) backend = MODEL_BACKEND_SCALAR;
            else return fprintf(stderr, "ievo eval: --backend dnnl|scalar\n"), 2;
        } else {
            fprintf(stderr, "ievo eval: unknown option %s\n", a);
            return eval_usage(stderr), 2;
        }
    }
    if (!model_path || (!!ml + !!syn + !!jl) != 1) {
        fprintf(stderr, "ievo eval: give --model and exactly one of --movielens, --synthetic, --jsonl\n");
        return eval_usage(stderr), 2;
    }
    if (evolution && !syn) return fprintf(stderr, "ievo eval: --evolution needs --synthetic (the known topics)\n"), 2;
    if (follow < 1 || follow > TRAIN_EVOLUTION_MAX || batch < 1 || batch > 65536)
        return fprintf(stderr, "ievo eval: --follow 1..%d, --batch 1..65536\n", TRAIN_EVOLUTION_MAX), 2;
    if (syn && synth_opts_parse(&so, syn, err, sizeof err)) return fprintf(stderr, "ievo eval: %s\n", err), 2;
    model_runtime_init(threads);

    int rc = 1, nu = 0;
    model *m = NULL;
    model_runner *r = NULL;
    event_list ev = {0};
    ptr_index users = {0};
    int32_t *uid = NULL, *topic = NULL, *item_topic = NULL;
    int64_t *perm = NULL;
    model_event *mev = NULL;
    train_data data = {0};
    unsigned char *states = NULL;
    float *U = NULL, *Ut = NULL, *Uv = NULL;
    void **sp = NULL;
    model_event *sev = NULL;
    int64_t *srow = NULL;
    float *svec = NULL, *sdrift = NULL;
    json_buf jb = {0};
    item_catalog cat = {0};
    item_table *items = NULL;
    text_encode_stats tstats = {0};
    float *etext = NULL, *S = NULL, *bias = NULL;
    const char **texts = NULL;
    char **held = NULL;
    int n_held = 0, n_extra = 0, n_rows = 0;
    int32_t *cand = NULL, *ridx = NULL;
    const float **rtext = NULL;
    uint8_t *cold_row = NULL;
    key_map km = {0};
    if (model_load(&m, model_path, err, sizeof err)) goto done;
    if (ml && events_load_movielens(ml, &ev, err, sizeof err)) goto done;
    if (syn && events_generate_synthetic(&so, &ev, err, sizeof err)) goto done;
    if (jl && events_load_jsonl_path(jl, &ev, err, sizeof err)) goto done;
    const int text = m->cfg.text_dim > 0;
    /* text models: the worker's lookups (the catalogue by item key, the events' own texts) */
    if (item_table_for_model(m->cfg.text_dim, items_path, ml, enc_dir, cache_dir, &cat, &items, &tstats, err, sizeof err))
        goto done;
    if (text) {
        size_t nt = 0;
        if (!(texts = malloc((ev.n ? ev.n : 1) * sizeof *texts))) goto oom;
        for (size_t i = 0; i < ev.n; i++)
            if (ev.ev[i].text) texts[nt++] = ev.ev[i].text;
        if (!(etext = malloc((nt ? nt : 1) * USE_DIM * sizeof *etext))) goto oom;
        if (text_encode_all(enc_dir, cache_dir, texts, nt, etext, &tstats, err, sizeof err)) goto done;
    }
    held = held_out_items(m, &n_held);
    if (cold && !n_held) {
        snprintf(err, sizeof err, "--cold: model %s held no items out (train it with --holdout-items)", m->model_id);
        goto done;
    }
    /* users in first-seen order; events grouped per user in the worker's order */
    uid = malloc((ev.n ? ev.n : 1) * sizeof *uid);
    mev = malloc((ev.n ? ev.n : 1) * sizeof *mev);
    perm = malloc((ev.n ? ev.n : 1) * sizeof *perm);
    if (!uid || !mev || !perm) goto oom;
    long oov = 0;
    for (size_t i = 0, et = 0; i < ev.n; i++) {
        const source_event *e = &ev.ev[i];
        if ((uid[i] = ptr_index_get(&users, e->user_id, NULL)) < 0) goto oom;
        mev[i] = (model_event){model_item_index(m, e->item_id, strlen(e->item_id)),
                               model_action_index(m, e->action, strlen(e->action)), e->ts, e->value, e->has_value};
        if (text) {
            mev[i].item_key = model_item_key(e->item_id, strlen(e->item_id));
            mev[i].event_text = e->text ? etext + (et++) * USE_DIM : NULL;
        }
        oov += mev[i].item == 0;
    }
    nu = (int)users.n;
    if (train_data_group(&data, nu, ev.n, uid, mev, perm, err, sizeof err)) goto done;
    /* Candidates: rows 1..NI-1 the vocabulary, then the items without a row: the held-out ones,
     * then (text models) the catalogue's others. Row 0 is never a candidate. */
    {
        const int NI = m->cfg.n_items;
        size_t cap = 1024;
        while (cap < 2 * ((size_t)NI + (size_t)n_held + cat.n)) cap *= 2;
        km.cap = cap;
        km.key = calloc(cap, sizeof *km.key), km.row = calloc(cap, sizeof *km.row);
        ridx = malloc(((size_t)NI + (size_t)n_held + cat.n) * sizeof *ridx);
        rtext = calloc((size_t)NI + (size_t)n_held + cat.n, sizeof *rtext);
        if (!km.key || !km.row || !ridx || !rtext) goto oom;
        for (int i = 0; i < NI; i++) {
            const char *id = model_item_id(m, i);
            uint64_t k = model_item_key(id, strlen(id));
            ridx[i] = i;
            if (i > 0) key_map_put(&km, k, i);
            if (text && i > 0) rtext[i] = item_table_get(items, k);
        }
        n_rows = NI;
        for (int h = 0; h < n_held; h++) {
            uint64_t k = model_item_key(held[h], strlen(held[h]));
            if (key_map_put(&km, k, n_rows)) ridx[n_rows] = 0, rtext[n_rows] = text ? item_table_get(items, k) : NULL, n_rows++;
        }
        for (size_t c = 0; text && c < cat.n; c++) {
            uint64_t k = model_item_key(cat.ids[c], strlen(cat.ids[c]));
            if (key_map_put(&km, k, n_rows)) ridx[n_rows] = 0, rtext[n_rows] = item_table_get(items, k), n_rows++;
        }
        n_extra = n_rows - NI;
        cand = malloc((ev.n ? ev.n : 1) * sizeof *cand);
        cold_row = calloc((size_t)n_rows, 1);
        bias = malloc((size_t)n_rows * sizeof *bias);
        if (!cand || !cold_row || !bias) goto oom;
        for (size_t i = 0; i < ev.n; i++) {
            const char *id = ev.ev[perm[i]].item_id;
            cand[i] = key_map_get(&km, model_item_key(id, strlen(id)));
        }
        for (int h = 0; h < n_held; h++) cold_row[key_map_get(&km, model_item_key(held[h], strlen(held[h])))] = 1;
        cold_row[0] = 0;
        if (model_heads(m) & MODEL_HEAD_SCORE) {
            if (!(S = malloc((size_t)n_rows * m->cfg.out_dim * sizeof *S))) goto oom;
            if (model_score_rows(m, n_rows, ridx, rtext, S, bias, err, sizeof err)) goto done;
        } else {
            memset(bias, 0, (size_t)n_rows * sizeof *bias);
        }
    }
    /* the streaming pass: every event up to each user's second-last (all of them with --evolution) */
    const int D = m->cfg.out_dim;
    const size_t ss = (model_state_size(m) + 7) & ~(size_t)7;
    states = malloc(ss * (size_t)(nu ? nu : 1));
    U = malloc((ev.n ? ev.n : 1) * (size_t)D * sizeof *U);
    sp = malloc((size_t)batch * sizeof *sp);
    sev = malloc((size_t)batch * sizeof *sev);
    srow = malloc((size_t)batch * sizeof *srow);
    svec = malloc((size_t)batch * D * sizeof *svec);
    sdrift = malloc((size_t)batch * sizeof *sdrift);
    if (!states || !U || !sp || !sev || !srow || !svec || !sdrift) goto oom;
    for (int u = 0; u < nu; u++) model_state_init(m, states + ss * (size_t)u);
    if (model_runner_new(&r, m, backend, batch, err, sizeof err)) goto done;
    if (text) model_runner_set_text(r, item_table_lookup, items);
    int64_t maxlen = 0;
    for (int u = 0; u < nu; u++)
        if (data.start[u + 1] - data.start[u] > maxlen) maxlen = data.start[u + 1] - data.start[u];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long applied = 0;
    for (int64_t k = 0; k < maxlen; k++) {
        int n = 0;
        for (int u = 0; u <= nu; u++) {
            if (u < nu) {
                int64_t len = data.start[u + 1] - data.start[u], limit = evolution ? len : len - 1;
                if (k < limit) {
                    sp[n] = states + ss * (size_t)u;
                    sev[n] = data.ev[data.start[u] + k];
                    srow[n++] = data.start[u] + k;
                }
            }
            if (n == batch || (u == nu && n > 0)) {
                if (model_step(r, n, sp, sev, svec, sdrift, err, sizeof err)) goto done;
                for (int j = 0; j < n; j++) memcpy(U + (size_t)srow[j] * D, svec + (size_t)j * D, (size_t)D * sizeof(float));
                applied += n;
                n = 0;
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    /* the vectors before each split's target */
    Ut = calloc((size_t)(nu ? nu : 1) * D, sizeof *Ut);
    Uv = calloc((size_t)(nu ? nu : 1) * D, sizeof *Uv);
    if (!Ut || !Uv) goto oom;
    for (int u = 0; u < nu; u++) {
        int64_t b = data.start[u], n = data.start[u + 1] - b;
        if (n >= 2) memcpy(Ut + (size_t)u * D, U + (size_t)(b + n - 2) * D, (size_t)D * sizeof(float));
        if (n >= 3) memcpy(Uv + (size_t)u * D, U + (size_t)(b + n - 3) * D, (size_t)D * sizeof(float));
    }
    const int have = (model_heads(m) & MODEL_HEAD_SCORE) != 0;
    rank_metrics tm, tp, vm, vp, cm, cp, nm, np_;
    train_rank_set rs = {n_rows, S, bias, cand, NULL, NULL}, rc_set = {n_rows, S, bias, cand, cold_row, NULL},
                   rn_set = {n_rows, S, bias, cand, cold_row, cold_row};
    if (train_rank_vectors_set(m, &data, 1, Ut, &rs, have ? &tm : NULL, &tp, err, sizeof err) ||
        train_rank_vectors_set(m, &data, 2, Uv, &rs, have ? &vm : NULL, &vp, err, sizeof err) ||
        (cold && train_rank_vectors_set(m, &data, 1, Ut, &rc_set, have ? &cm : NULL, &cp, err, sizeof err)) ||
        (cold && train_rank_vectors_set(m, &data, 1, Ut, &rn_set, have ? &nm : NULL, &np_, err, sizeof err)))
        goto done;
    const char *src = ml ? "movielens" : syn ? "synthetic" : "jsonl", *src_arg = ml ? ml : syn ? syn : jl;
    printf("ievo eval: model %s on %s %s: %zu events, %d users, %d items + <oov> (%ld events with an unknown item)\n",
           m->model_id, src, src_arg, ev.n, nu, m->cfg.n_items - 1, oov);
    printf("streaming path: model_step (%s), waves of <= %d users, %ld events applied in %.1f s\n",
           backend == MODEL_BACKEND_DNNL ? "dnnl" : "scalar", batch, applied, secs);
    if (text)
        printf("text: %zu catalogue items (%d candidates without a vocabulary row, ranked by their text), %ld event "
               "texts; USE-lite encoded %ld texts in %.2f s, %ld from the cache\n",
               cat.n, n_extra, tstats.texts - (long)cat.n, tstats.encoded, tstats.encode_s, tstats.from_cache);
    else if (n_extra)
        printf("%d held-out items are candidates without a vocabulary row (the model cannot tell them apart)\n", n_extra);
    printf("leave-one-out, all items ranked, input history filtered\n");
    printf("split      users |  model: HR@10  NDCG@10 HR@20   NDCG@20 | popularity: HR@10 NDCG@10 HR@20 NDCG@20\n");
    row("test", &tm, &tp, have);
    row("validation", &vm, &vp, have);
    if (cold) {
        row("test cold", &cm, &cp, have);
        printf("(test cold: the test events whose target is a held-out item, ranked among all %d candidates)\n", n_rows - 1);
        row("cold/new", &nm, &np_, have);
        printf("(cold/new: the same events, ranked among the %d held-out items only: which new item)\n", n_held);
    }
    if (have && tm.n_value)
        printf("value (test, %ld events with a value): model MAE %.4f RMSE %.4f | mean value: MAE %.4f RMSE %.4f\n",
               tm.n_value, tm.mae, tm.rmse, tp.mae, tp.rmse);
    json_buf_printf(&jb, "{\"model\":");
    json_buf_string(&jb, m->model_id, strlen(m->model_id));
    json_buf_printf(&jb, ",\"data\":{\"source\":\"%s\",\"path\":", src);
    json_buf_string(&jb, src_arg, strlen(src_arg));
    json_buf_printf(&jb, ",\"events\":%zu,\"users\":%d,\"items\":%d,\"oov_events\":%ld}", ev.n, nu, m->cfg.n_items - 1, oov);
    json_buf_printf(&jb, ",\"path\":\"model_step (%s), waves of <= %d users\",\"protocol\":\"leave-one-out; all items; "
                         "input history filtered; popularity = occurrences among the split's input events, ties to "
                         "the lower vocabulary index\"",
                    backend == MODEL_BACKEND_DNNL ? "dnnl" : "scalar", batch);
    json_buf_printf(&jb, ",\"test\":{");
    if (have) metrics_json(&jb, "model", &tm), json_buf_append(&jb, ",", 1);
    metrics_json(&jb, "popularity", &tp);
    json_buf_printf(&jb, "},\"validation\":{");
    if (have) metrics_json(&jb, "model", &vm), json_buf_append(&jb, ",", 1);
    metrics_json(&jb, "popularity", &vp);
    json_buf_append(&jb, "}", 1);
    json_buf_printf(&jb, ",\"candidates\":%d,\"candidates_without_row\":%d,\"held_out_items\":%d", n_rows - 1, n_extra, n_held);
    if (text)
        json_buf_printf(&jb, ",\"text\":{\"catalogue_items\":%zu,\"encoded\":%ld,\"from_cache\":%ld,\"encode_s\":%.3f}", cat.n,
                        tstats.encoded, tstats.from_cache, tstats.encode_s);
    if (cold) {
        json_buf_printf(&jb, ",\"cold\":{");
        if (have) metrics_json(&jb, "model", &cm), json_buf_append(&jb, ",", 1);
        metrics_json(&jb, "popularity", &cp);
        json_buf_printf(&jb, "},\"cold_among_new\":{");
        if (have) metrics_json(&jb, "model", &nm), json_buf_append(&jb, ",", 1);
        metrics_json(&jb, "popularity", &np_);
        json_buf_append(&jb, "}", 1);
    }
    if (evolution) {
        if (!have) {
            snprintf(err, sizeof err, "--evolution needs a model with a scoring head");
            goto done;
        }
        topic = malloc((ev.n ? ev.n : 1) * sizeof *topic);
        item_topic = malloc((size_t)m->cfg.n_items * sizeof *item_topic);
        if (!topic || !item_topic) goto oom;
        for (size_t i = 0; i < ev.n; i++) topic[i] = (int32_t)ev.ev[perm[i]].topic;
        for (int i = 0; i < m->cfg.n_items; i++) {
            const char *id = model_item_id(m, i);
            int t, k;
            item_topic[i] = id && sscanf(id, "t%d-i%d", &t, &k) == 2 ? t : -1;
        }
        train_evolution_result er;
        if (train_evolution(m, &data, U, topic, item_topic, follow, &er, err, sizeof err)) goto done;
        printf("\ninterest evolution: %ld switches followed by >= %d events of the new topic (synthetic ground truth)\n",
               er.switches, follow);
        printf("events of the new interest seen      ");
        for (int k = 0; k < follow; k++) printf(" %5d", k + 1);
        printf("\nmodel: top topic = the new one       ");
        for (int k = 0; k < follow; k++) printf(" %5.3f", er.switches ? (double)er.model_hit[k] / er.switches : 0.0);
        printf("\nstatic profile (mean past embedding) ");
        for (int k = 0; k < follow; k++) printf(" %5.3f", er.switches ? (double)er.static_hit[k] / er.switches : 0.0);
        int mmed = hist_median(er.model_lag_hist, follow), smed = hist_median(er.static_lag_hist, follow);
        char mt[16], st[16]; /* the median event count, or ">K" when most switches are not followed within K */
        snprintf(mt, sizeof mt, mmed == follow ? ">%d" : "%d", mmed == follow ? follow : mmed + 1);
        snprintf(st, sizeof st, smed == follow ? ">%d" : "%d", smed == follow ? follow : smed + 1);
        printf("\nevents until the top topic first follows the switch (median): model %s, static profile %s\n", mt, st);
        printf("followed within %d events: model %.3f, static profile %.3f\n", follow,
               er.switches ? 1.0 - (double)er.model_lag_hist[follow] / er.switches : 0.0,
               er.switches ? 1.0 - (double)er.static_lag_hist[follow] / er.switches : 0.0);
        json_buf_printf(&jb, ",\"evolution\":{\"follow\":%d,\"switches\":%ld,\"model_hit\":[", follow, er.switches);
        for (int k = 0; k < follow; k++)
            json_buf_printf(&jb, "%s%.6f", k ? "," : "", er.switches ? (double)er.model_hit[k] / er.switches : 0.0);
        json_buf_printf(&jb, "],\"static_hit\":[");
        for (int k = 0; k < follow; k++)
            json_buf_printf(&jb, "%s%.6f", k ? "," : "", er.switches ? (double)er.static_hit[k] / er.switches : 0.0);
        json_buf_printf(&jb, "],\"model_first_hit_hist\":[");
        for (int k = 0; k <= follow; k++) json_buf_printf(&jb, "%s%ld", k ? "," : "", er.model_lag_hist[k]);
        json_buf_printf(&jb, "],\"static_first_hit_hist\":[");
        for (int k = 0; k <= follow; k++) json_buf_printf(&jb, "%s%ld", k ? "," : "", er.static_lag_hist[k]);
        /* medians: events of the new interest seen; follow + 1 means "not within follow" */
        json_buf_printf(&jb, "],\"model_median_events\":%d,\"static_median_events\":%d}", mmed + 1, smed + 1);
    }
    json_buf_append(&jb, "}\n", 2);
    if (jb.failed) goto oom;
    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f || fwrite(jb.data, 1, jb.len, f) != jb.len || fclose(f) != 0) {
            snprintf(err, sizeof err, "cannot write %s: %s", json_path, strerror(errno));
            goto done;
        }
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, sizeof err, "out of memory");
done:
    if (rc) fprintf(stderr, "ievo eval: %s\n", err);
    fflush(stdout);
    json_buf_free(&jb);
    ptr_index_free(&users);
    free(uid), free(topic), free(item_topic), free(perm), free(mev), free(states), free(U), free(Ut), free(Uv);
    free(sp), free(sev), free(srow), free(svec), free(sdrift);
    train_data_free(&data);
    model_runner_free(r);
    item_table_free(items);
    item_catalog_free(&cat);
    free(etext), free(texts), free(S), free(bias), free(cand), free(ridx), free((void *)rtext), free(cold_row);
    free(km.key), free(km.row);
    for (int h = 0; h < n_held; h++) free(held[h]);
    free(held);
    model_free(m);
    event_list_free(&ev);
    return rc;
}
