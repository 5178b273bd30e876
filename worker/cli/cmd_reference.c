/* cmd_reference: `ievo reference`, the offline replay of events through the model, one event at
 * a time per user, in the same per-user order the worker applies them (event time, ties in
 * input order). Tests compare the worker's published vectors with this; people can use it to
 * see what a model makes of a history without a broker. Default backend: the scalar one, the
 * reference the oneDNN path is checked against.
 * A text model reads item texts from a catalogue (--items FILE of {"item_id","text"} lines; with
 * --movielens, u.item by default) and the events' own text fields, encodes both with USE-lite
 * (cached, see item_table.h) and looks item texts up by item key, as the worker does. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "event_source.h"
#include "item_table.h"
#include "json.h"
#include "model.h"
#include "use_encoder.h"
#include "user_table.h"

static void usage(FILE *f) {
    fprintf(f, "usage: ievo reference -m MODEL (--movielens DIR | --synthetic USERS:EVENTS | --jsonl FILE|-)\n"
               "                      [--backend scalar|dnnl] [--final-only] [--seed N]\n"
               "                      [--items FILE] [--text-encoder DIR] [--text-cache DIR|none]   (text models)\n"
               "Prints one JSON line per event: user_id, events, ts, drift, vector (--final-only: one line\n"
               "per user, in first-seen order, with the final state's vector and drift -1).\n");
}

static void print_line(json_buf *b, const char *user, int64_t events, int64_t ts, float drift, const float *v, int D) {
    b->len = 0;
    json_buf_append(b, "{\"user_id\":", 11);
    json_buf_string(b, user, strlen(user));
    json_buf_printf(b, ",\"events\":%lld,\"ts\":%lld,\"drift\":", (long long)events, (long long)ts);
    json_buf_float(b, drift);
    json_buf_append(b, ",\"vector\":[", 11);
    for (int i = 0; i < D; i++) {
        if (i) json_buf_append(b, ",", 1);
        json_buf_float(b, v[i]);
    }
    json_buf_append(b, "]}\n", 3);
    fwrite(b->data, 1, b->len, stdout);
}

int cmd_reference(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"movielens", required_argument, 0, 'L'},
        {"synthetic", required_argument, 0, 'S'}, {"jsonl", required_argument, 0, 'J'},
        {"backend", required_argument, 0, 'B'}, {"final-only", no_argument, 0, 'F'},
        {"seed", required_argument, 0, 's'}, {"items", required_argument, 0, 'I'},
        {"text-encoder", required_argument, 0, 'E'}, {"text-cache", required_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model_path = NULL, *ml = NULL, *syn = NULL, *jl = NULL, *items_path = NULL;
    char enc_dir[4096], cache_dir[4096];
    text_default_dirs(enc_dir, sizeof enc_dir, cache_dir, sizeof cache_dir);
    model_backend backend = MODEL_BACKEND_SCALAR;
    int final_only = 0, c;
    synth_opts so;
    synth_opts_default(&so);
    char err[512] = "";
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'L': ml = optarg; break;
        case 'S': syn = optarg; break;
        case 'J': jl = optarg; break;
        case 'F': final_only = 1; break;
        case 's': so.seed = strtoull(optarg, NULL, 10); break;
        case 'I': items_path = optarg; break;
        case 'E': snprintf(enc_dir, sizeof enc_dir, "%s", optarg); break;
        case 'C': snprintf(cache_dir, sizeof cache_dir, "%s", optarg); break;
        case 'B':
            if (!strcmp(optarg, "dnnl")) backend = MODEL_BACKEND_DNNL;
            else if (strcmp(optarg, "scalar")) { fprintf(stderr, "ievo reference: --backend scalar|dnnl\n"); return 2; }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_path || (!!ml + !!syn + !!jl) != 1) {
        usage(stderr);
        return 2;
    }
    model_runtime_init(1);
    model *m = NULL;
    model_runner *r = NULL;
    event_list ev = {0};
    user_table users = {0};
    json_buf out = {0};
    item_table *items = NULL;
    item_catalog cat = {0};
    float *etext = NULL;      /* (events with text, USE_DIM) */
    int64_t *etext_row = NULL; /* per event: its row in etext, or -1 */
    const char **texts = NULL;
    int rc = 1;
    if (model_load(&m, model_path, err, sizeof err)) goto done;
    if (ml && events_load_movielens(ml, &ev, err, sizeof err)) goto done;
    if (syn && (synth_opts_parse(&so, syn, err, sizeof err) || events_generate_synthetic(&so, &ev, err, sizeof err)))
        goto done;
    if (jl && events_load_jsonl_path(jl, &ev, err, sizeof err)) goto done;
    if (model_runner_new(&r, m, backend, 1, err, sizeof err)) goto done;
    if (item_table_for_model(m->cfg.text_dim, items_path, ml, enc_dir, cache_dir, &cat, &items, NULL, err, sizeof err))
        goto done;
    if (items) { /* a text model: the catalogue by item key, the events' own texts */
        model_runner_set_text(r, item_table_lookup, items);
        size_t nt = 0;
        etext_row = malloc((ev.n ? ev.n : 1) * sizeof *etext_row);
        texts = malloc((ev.n ? ev.n : 1) * sizeof *texts);
        if (!etext_row || !texts) { snprintf(err, sizeof err, "out of memory"); goto done; }
        for (size_t i = 0; i < ev.n; i++) {
            etext_row[i] = ev.ev[i].text ? (int64_t)nt : -1;
            if (ev.ev[i].text) texts[nt++] = ev.ev[i].text;
        }
        if (!(etext = malloc((nt ? nt : 1) * USE_DIM * sizeof *etext))) { snprintf(err, sizeof err, "out of memory"); goto done; }
        if (text_encode_all(enc_dir, cache_dir, texts, nt, etext, NULL, err, sizeof err)) goto done;
    }
    if (user_table_init(&users, model_state_size(m), 1024)) { snprintf(err, sizeof err, "out of memory"); goto done; }
    const int D = m->cfg.out_dim;
    float vec[4096];
    if (D > 4096) { snprintf(err, sizeof err, "out_dim %d too large", D); goto done; }
    for (size_t i = 0; i < ev.n; i++) {
        const source_event *e = &ev.ev[i];
        size_t before = users.n;
        long slot = user_table_upsert(&users, 0, e->user_id, strlen(e->user_id));
        if (slot < 0) { snprintf(err, sizeof err, "out of memory"); goto done; }
        void *state = user_table_state(&users, (size_t)slot);
        if (users.n > before) model_state_init(m, state);
        model_event me = {
            .item = model_item_index(m, e->item_id, strlen(e->item_id)),
            .action = model_action_index(m, e->action, strlen(e->action)),
            .ts = e->ts, .value = e->value, .has_value = e->has_value};
        if (items) {
            me.item_key = model_item_key(e->item_id, strlen(e->item_id));
            me.event_text = etext_row[i] >= 0 ? etext + (size_t)etext_row[i] * USE_DIM : NULL;
        }
        float drift;
        if (model_step(r, 1, &state, &me, vec, &drift, err, sizeof err)) goto done;
        if (!final_only) print_line(&out, e->user_id, model_state_events(state), e->ts, drift, vec, D);
    }
    /* The state keeps the last interest vector and event time: the final line of each user. */
    for (size_t u = 0; final_only && u < users.n; u++) {
        const void *state = user_table_state(&users, u);
        char id[1024];
        snprintf(id, sizeof id, "%.*s", (int)users.slots[u].user_len, users.slots[u].user);
        if (model_state_output(r, state, vec, err, sizeof err)) goto done;
        print_line(&out, id, model_state_events(state), model_state_last_ts(state), -1.0f, vec, D);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "ievo reference: %s\n", err);
    fflush(stdout);
    json_buf_free(&out);
    item_table_free(items);
    item_catalog_free(&cat);
    free(etext), free(etext_row), free(texts);
    user_table_free(&users);
    event_list_free(&ev);
    model_runner_free(r);
    model_free(m);
    return rc;
}
