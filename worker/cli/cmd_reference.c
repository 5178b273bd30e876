/* cmd_reference: `ievo reference`, the offline replay of events through the model, one event at
 * a time per user, in the same per-user order the worker applies them (event time, ties in
 * input order). Tests compare the worker's published vectors with this; people can use it to
 * see what a model makes of a history without a broker. Default backend: the scalar one, the
 * reference the oneDNN path is checked against.
 * A text model reads item texts from a catalogue (--items FILE of {"item_id","text"} lines; with
 * --movielens, u.item by default) and the events' own text fields, encodes both with USE-lite
 * (cached, see item_table.h) and looks item texts up by item key, as the worker does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "event_source.h"
#include "item_table.h"
#include "json_text.h"
#include "model.h"
#include "settings.h"
#include "use_encoder.h"
#include "user_table.h"

enum { OPT_FINAL_ONLY = CLI_OPT_ID_FIRST_FREE };

static const cli_option OPTS[] = {
    CLI_OPT_MODEL("model.path"),
    CLI_OPTS_DATA,
    CLI_OPT_BACKEND(NULL),
    {"final-only", OPT_FINAL_ONLY, NULL, "one line per user (first-seen order): the final vector, drift -1", NULL},
    CLI_OPTS_TEXT,
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "reference",
    .synopsis = "-m MODEL (--movielens DIR | --synthetic USERS:EVENTS | --jsonl FILE|-) [--backend scalar|dnnl]\n"
                " [--final-only] [--items FILE] [--text-encoder DIR] [--text-cache DIR|none]",
    .about = "Replays the events through the model one at a time per user, in the worker's order, and prints\n"
             "one JSON line per event: user_id, events, ts, drift, vector. The backend defaults to scalar\n"
             "(the reference), whatever model.backend says.\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_REFERENCE,
};

typedef struct {
    cli_data data;
    cli_text text;
    model_backend backend;
    int final_only;
} reference_opts;

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    reference_opts *o = ctx;
    int rc = cli_data_option(&o->data, key, value, err, errlen);
    if (rc) return rc < 0 ? -1 : 0;
    if (cli_text_option(&o->text, key, value)) return 0;
    if (key == CLI_OPT_ID_BACKEND) return cli_backend_parse(value, &o->backend, err, errlen);
    if (key == OPT_FINAL_ONLY) o->final_only = 1;
    return 0;
}

static int print_line(const char *user, size_t user_len, int64_t events, int64_t ts, float drift, const float *v, int D) {
    json_t *vec = json_array();
    for (int i = 0; vec && i < D; i++) json_array_append_new(vec, json_real_or_null(v[i]));
    json_t *line = json_pack("{s:o,s:I,s:I,s:o,s:o}", "user_id", json_string_lossy(user, user_len), "events",
                             (json_int_t)events, "ts", (json_int_t)ts, "drift", json_real_or_null(drift), "vector", vec);
    int bad = !line || json_dumpf(line, stdout, IEVO_JSON_DUMP) || putchar('\n') == EOF;
    json_decref(line);
    return bad ? -1 : 0;
}

typedef struct {
    model *m;
    model_runner *r;
    event_list ev;
    item_table *items;
    item_catalog cat;
    float *etext;        /* (events with text, USE_DIM) */
    int64_t *etext_row;  /* per event: its row in etext, or -1 */
} reference_run;

/* Text models: the catalogue by item key, the events' own texts encoded. */
static int reference_texts(reference_run *x, const cli_text *t, const char *movielens, char *err, size_t errlen) {
    if (item_table_for_model(x->m->cfg.text_dim, t->items, movielens, t->encoder_dir, t->cache_dir, &x->cat, &x->items,
                             NULL, err, errlen))
        return -1;
    if (!x->items) return 0;
    model_runner_set_text(x->r, item_table_lookup, x->items);
    size_t nt = 0, n = x->ev.n ? x->ev.n : 1;
    const char **texts = malloc(n * sizeof *texts);
    x->etext_row = malloc(n * sizeof *x->etext_row);
    if (!texts || !x->etext_row) return free(texts), snprintf(err, errlen, "out of memory"), -1;
    for (size_t i = 0; i < x->ev.n; i++) {
        x->etext_row[i] = x->ev.ev[i].text ? (int64_t)nt : -1;
        if (x->ev.ev[i].text) texts[nt++] = x->ev.ev[i].text;
    }
    int rc = !(x->etext = malloc((nt ? nt : 1) * USE_DIM * sizeof *x->etext))
                 ? (snprintf(err, errlen, "out of memory"), -1)
                 : text_encode_all(t->encoder_dir, t->cache_dir, texts, nt, x->etext, NULL, err, errlen);
    free(texts);
    return rc;
}

/* Every event through model_step, users' states in a table; the lines (all, or the finals). */
static int reference_replay(reference_run *x, int final_only, char *err, size_t errlen) {
    const int D = x->m->cfg.out_dim;
    user_table users = {0};
    float *vec = malloc((size_t)D * sizeof *vec);
    int rc = -1;
    if (!vec || user_table_init(&users, model_state_size(x->m), 1024)) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < x->ev.n; i++) {
        const source_event *e = &x->ev.ev[i];
        size_t before = users.n;
        long slot = user_table_upsert(&users, 0, e->user_id, strlen(e->user_id));
        if (slot < 0) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        void *state = user_table_state(&users, (size_t)slot);
        if (users.n > before) model_state_init(x->m, state);
        model_event me = {.item = model_item_index(x->m, e->item_id, strlen(e->item_id)),
                          .action = model_action_index(x->m, e->action, strlen(e->action)),
                          .ts = e->ts, .value = e->value, .has_value = e->has_value};
        if (x->items) {
            me.item_key = model_item_key(e->item_id, strlen(e->item_id));
            me.event_text = x->etext_row[i] >= 0 ? x->etext + (size_t)x->etext_row[i] * USE_DIM : NULL;
        }
        float drift;
        if (model_step(x->r, 1, &state, &me, vec, &drift, err, errlen)) goto done;
        if (!final_only && print_line(e->user_id, strlen(e->user_id), model_state_events(state), e->ts, drift, vec, D))
            goto write_failed;
    }
    /* The state keeps the last interest vector and event time: the final line of each user. */
    for (size_t u = 0; final_only && u < users.n; u++) {
        const void *state = user_table_state(&users, u);
        if (model_state_output(x->r, state, vec, err, errlen)) goto done;
        if (print_line(users.slots[u].user, users.slots[u].user_len, model_state_events(state), model_state_last_ts(state),
                       -1.0f, vec, D))
            goto write_failed;
    }
    rc = 0;
    goto done;
write_failed:
    snprintf(err, errlen, "cannot write stdout");
done:
    user_table_free(&users);
    free(vec);
    return rc;
}

int cmd_reference(int argc, char **argv) {
    reference_opts o = {.backend = MODEL_BACKEND_SCALAR};
    cli_data_init(&o.data);
    cli_args a;
    char err[512] = "";
    const char *model_path = NULL;
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a);
    if (rc == CLI_OK && settings_string(&a.cfg, "model.path", &model_path, err, sizeof err)) rc = cli_usage_error(&CMD, "%s", err);
    if (rc == CLI_OK && (!model_path || cli_data_sources(&o.data) != 1))
        rc = cli_usage_error(&CMD, "give -m MODEL and exactly one of --movielens, --synthetic, --jsonl");
    if (rc == CLI_OK) {
        cli_text_resolve(&o.text, &a.cfg);
        model_runtime_init(1);
        reference_run x = {0};
        rc = model_load(&x.m, model_path, err, sizeof err) || cli_data_load(&o.data, &x.ev, err, sizeof err) ||
                     model_runner_new(&x.r, x.m, o.backend, 1, err, sizeof err) ||
                     reference_texts(&x, &o.text, o.data.movielens, err, sizeof err) ||
                     reference_replay(&x, o.final_only, err, sizeof err)
                 ? CLI_FAILED
                 : CLI_OK;
        if (rc) fprintf(stderr, "ievo reference: %s\n", err);
        fflush(stdout);
        item_table_free(x.items);
        item_catalog_free(&x.cat);
        free(x.etext), free(x.etext_row);
        event_list_free(&x.ev);
        model_runner_free(x.r);
        model_free(x.m);
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}
