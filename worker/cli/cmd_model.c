/* cmd_model: `ievo model init` (a seeded random model with its vocabularies, written as a
 * safetensors file) and `ievo model info` (a JSON summary of a model file).
 *
 * The vocabulary of items comes from exactly one source: a file with one id per line, the
 * MovieLens u.item ids, or the synthetic generator's item universe. Actions default to the
 * UserAction actions the producers emit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "event_source.h"
#include "json_text.h"
#include "log.h"
#include "model.h"
#include "model_init.h"
#include "settings.h"

#define DEFAULT_ACTIONS "rate,view,click,like,share,purchase,search,review"

enum { OPT_VOCAB_FILE = CLI_OPT_ID_FIRST_FREE, OPT_VOCAB_MOVIELENS, OPT_VOCAB_SYNTHETIC, OPT_ACTIONS };

static const cli_option INIT_OPTS[] = {
    CLI_OPT_OUT("the model file to write (replaced atomically)"),
    {"vocab-file", OPT_VOCAB_FILE, "PATH", "item ids, one per line (empty lines skipped, no duplicates)", NULL},
    {"vocab-movielens", OPT_VOCAB_MOVIELENS, "DIR", "the item ids of DIR/u.item (MovieLens-100K)", NULL},
    {"vocab-synthetic", OPT_VOCAB_SYNTHETIC, NULL, "the synthetic generator's items (default generator options)", NULL},
    CLI_OPTS_MODEL("lstm"),
    {"actions", OPT_ACTIONS, "a,b,c", "action ids (default " DEFAULT_ACTIONS ")", NULL},
    CLI_OPT_END,
};

static const cli_command INIT_CMD = {
    .name = "model init",
    .synopsis = "-o PATH (--vocab-file PATH | --vocab-movielens DIR | --vocab-synthetic) [--cell lstm|gru|lru|none]\n"
                " [--layers N] [--state-dim N] [--ffn-dim N] [--attention window|tf] [--blocks N] [--heads N]\n"
                " [--item-dim N] [--action-dim N] [--hidden N] [--attn-dim N] [--out-dim N] [--window N]\n"
                " [--init-seed N] [--name NAME] [--actions a,b,c]",
    .about = "Writes a model with seeded random parameters (PyTorch-style init) as a safetensors file.\n"
             "Unknown item or action ids map to the shared out-of-vocabulary row 0.\n",
    .opts = INIT_OPTS,
    .settings = SETTINGS_CMD_OTHER,
};

static const cli_command INFO_CMD = {
    .name = "model info",
    .synopsis = "PATH",
    .about = "Loads and checks a model file and prints a JSON summary: config, model_id, fingerprint,\n"
             "vocabulary sizes, parameter count, tensors, metadata.\n",
    .opts = NULL,
    .settings = SETTINGS_CMD_OTHER,
    .operands = "PATH",
};

/* ---- model init ----------------------------------------------------------------------------- */

typedef struct {
    cli_model model;
    const char *out, *vocab_file, *movielens, *actions;
    int synthetic;
} init_opts;

static int init_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    init_opts *o = ctx;
    int rc = cli_model_option(&o->model, key, value, err, errlen);
    if (rc) return rc < 0 ? -1 : 0;
    if (key == 'o') o->out = value;
    else if (key == OPT_VOCAB_FILE) o->vocab_file = value;
    else if (key == OPT_VOCAB_MOVIELENS) o->movielens = value;
    else if (key == OPT_VOCAB_SYNTHETIC) o->synthetic = 1;
    else if (key == OPT_ACTIONS) o->actions = value;
    return 0;
}

/* Splits a comma-separated list into newly allocated strings. */
static int split_csv(const char *s, char ***out, int *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    char **v = calloc((size_t)cap, sizeof *v);
    if (!v) return snprintf(err, errlen, "out of memory"), -1;
    for (const char *p = s;; p += strcspn(p, ",") + 1) {
        size_t len = strcspn(p, ",");
        if (len == 0) {
            synth_item_ids_free(v, *n);
            return snprintf(err, errlen, "--actions: empty id in \"%s\"", s), -1;
        }
        if (!(v[(*n)++] = strndup(p, len))) {
            synth_item_ids_free(v, *n);
            return snprintf(err, errlen, "out of memory"), -1;
        }
        if (!p[len]) break;
    }
    *out = v;
    return 0;
}

/* One id per line; '\r' before '\n' dropped; empty lines skipped. */
static int read_vocab_file(const char *path, char ***out, int *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
    char **v = NULL, *line = NULL;
    size_t cap = 0;
    int vcap = 0, rc = 0;
    ssize_t len;
    while (!rc && (len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (memchr(line, 0, (size_t)len)) {
            snprintf(err, errlen, "%s: line %d contains a NUL byte", path, *n + 1);
            rc = -1;
        } else if (*n == vcap) {
            int nc = vcap ? vcap * 2 : 1024;
            char **nv = realloc(v, (size_t)nc * sizeof *nv);
            if (!nv) rc = -1, snprintf(err, errlen, "out of memory");
            else v = nv, vcap = nc;
        }
        if (!rc && !(v[*n] = strdup(line))) rc = -1, snprintf(err, errlen, "out of memory");
        if (!rc) (*n)++;
    }
    if (rc == 0 && ferror(f)) rc = -1, snprintf(err, errlen, "%s: read error", path);
    free(line);
    fclose(f);
    if (rc) {
        synth_item_ids_free(v, *n);
        *n = 0;
        return -1;
    }
    *out = v;
    return 0;
}

/* The item vocabulary of the one source given. */
static int init_vocabulary(const init_opts *o, char ***items, int *n, char *err, size_t errlen) {
    if (o->vocab_file) return read_vocab_file(o->vocab_file, items, n, err, errlen);
    if (o->movielens) return movielens_item_ids(o->movielens, items, n, err, errlen);
    synth_opts so;
    synth_opts_default(&so);
    if (synth_item_ids(&so, items, n)) return snprintf(err, errlen, "the synthetic generator gave no item ids"), -1;
    return 0;
}

/* The model, written; acts: the action ids (freed here). */
static int init_write(const init_opts *o, char **acts, int n_acts, char *err, size_t errlen) {
    char **items = NULL;
    int n_items = 0, rc = -1;
    model *m = NULL;
    char meta[256];
    snprintf(meta, sizeof meta, "{\"created_by\":\"ievo model init\",\"init\":\"random\",\"seed\":%llu}",
             (unsigned long long)o->model.init_seed);
    if (init_vocabulary(o, &items, &n_items, err, errlen) ||
        model_init_random(&m, &o->model.cfg, o->model.name, (const char *const *)items, n_items,
                          (const char *const *)acts, n_acts, o->model.init_seed, err, errlen) ||
        model_set_meta(m, meta, err, errlen) || model_save(m, o->out, err, errlen))
        goto done;
    printf("wrote %s: model_id %s, %s, %d items + <oov>, %d actions + <oov>, %zu parameters\n", o->out, m->model_id,
           model_cell_name(m->cfg.cell), n_items, n_acts, m->n_params);
    rc = 0;
done:
    model_free(m);
    synth_item_ids_free(items, n_items);
    synth_item_ids_free(acts, n_acts);
    return rc;
}

static int model_init_main(int argc, char **argv) {
    init_opts o = {.actions = DEFAULT_ACTIONS};
    cli_model_init(&o.model, MODEL_CELL_LSTM);
    cli_args a;
    char err[512];
    int rc = cli_parse(&INIT_CMD, argc, argv, init_option, &o, &a);
    cli_args_free(&a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    if (!o.out) return cli_usage_error(&INIT_CMD, "-o/--out PATH is required");
    if (!!o.vocab_file + !!o.movielens + o.synthetic != 1)
        return cli_usage_error(&INIT_CMD, "give exactly one of --vocab-file, --vocab-movielens, --vocab-synthetic");
    o.model.cfg.n_items = o.model.cfg.n_actions = 1; /* set from the vocabularies by model_init_random */
    char **acts;
    int n_acts;
    if (model_config_check(&o.model.cfg, err, sizeof err) || split_csv(o.actions, &acts, &n_acts, err, sizeof err))
        return cli_usage_error(&INIT_CMD, "%s", err);
    if (init_write(&o, acts, n_acts, err, sizeof err)) {
        LOG_E("model init", "%s", err);
        return CLI_FAILED;
    }
    return CLI_OK;
}

/* ---- model info ----------------------------------------------------------------------------- */

/* The shape; a family's own sizes only where it has them (layers and state_dim: lru; ffn_dim: lru
 * or tf; attention, blocks, heads: tf). */
static json_t *info_config(const model_config *c) {
    json_t *o = json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "cell", model_cell_name(c->cell), "item_dim", c->item_dim,
                          "action_dim", c->action_dim, "hidden", c->hidden, "attn_dim", c->attn_dim, "out_dim",
                          c->out_dim, "window", c->window, "input_dim", model_input_dim(c));
    if (o && c->cell == MODEL_CELL_LRU) {
        json_object_set_new(o, "layers", json_integer(c->layers));
        json_object_set_new(o, "state_dim", json_integer(c->state_dim));
    }
    if (o && (c->cell == MODEL_CELL_LRU || c->attn == MODEL_ATTN_TF)) json_object_set_new(o, "ffn_dim", json_integer(c->ffn_dim));
    if (o && c->attn == MODEL_ATTN_TF) {
        json_object_set_new(o, "attention", json_string("tf"));
        json_object_set_new(o, "blocks", json_integer(c->blocks));
        json_object_set_new(o, "heads", json_integer(c->heads));
    }
    return o;
}

static json_t *info_vocab(const model *m) {
    json_t *ids = json_array();
    for (int i = 0; ids && i < m->cfg.n_actions; i++) {
        const char *id = model_action_id(m, i);
        json_array_append_new(ids, json_string_lossy(id, strlen(id)));
    }
    return json_pack("{s:i,s:i,s:o}", "items", m->cfg.n_items, "actions", m->cfg.n_actions, "action_ids", ids);
}

static json_t *info_tensors(const model *m) {
    json_t *a = json_array();
    for (int t = 0; a && t < MODEL_N_TENSORS; t++) {
        const model_tensor *x = &m->t[t];
        if (!x->numel) continue;   /* another family's tensor, or a head this model does not carry */
        json_t *shape = x->ndim == 2 ? json_pack("[i,i]", x->shape[0], x->shape[1]) : json_pack("[i]", x->shape[0]);
        json_array_append_new(a, json_pack("{s:s,s:o}", "name", x->name, "shape", shape));
    }
    return a;
}

/* The summary; NULL with err when out of memory or the metadata is not JSON. */
static json_t *info_json(const model *m, const char *path, char *err, size_t errlen) {
    size_t idlen = strlen(m->model_id), namelen = idlen > 13 ? idlen - 13 : 0;   /* "<name>-<12 hex>" */
    char fingerprint[17];
    snprintf(fingerprint, sizeof fingerprint, "%016llx", (unsigned long long)m->fingerprint);
    json_t *meta = json_null();
    if (m->meta_json) {
        json_error_t jerr;
        if (!(meta = json_loads(m->meta_json, JSON_REJECT_DUPLICATES, &jerr)))
            return snprintf(err, errlen, "%s: metadata at %d: %s", path, jerr.position, jerr.text), NULL;
    }
    char family[32];
    model_family_name(&m->cfg, family, sizeof family);
    json_t *o = json_pack("{s:o,s:s,s:o,s:s,s:i,s:s,s:o,s:o,s:I,s:I,s:I,s:o,s:o}", "path", json_string_lossy(path, strlen(path)),
                          "model_id", m->model_id, "name", json_string_lossy(m->model_id, namelen), "fingerprint",
                          fingerprint, "format_version", MODEL_FORMAT_VERSION, "family", family, "config", info_config(&m->cfg), "vocab",
                          info_vocab(m), "params", (json_int_t)m->n_params, "param_bytes",
                          (json_int_t)(m->n_params * sizeof(float)), "state_bytes", (json_int_t)model_state_size(m),
                          "tensors", info_tensors(m), "meta", meta);
    if (!o) snprintf(err, errlen, "out of memory");
    return o;
}

static int model_info_main(int argc, char **argv) {
    cli_args a;
    int rc = cli_parse(&INFO_CMD, argc, argv, NULL, NULL, &a);
    const char *path = rc == CLI_OK && a.n_operands == 1 ? a.operands[0] : NULL;
    if (rc == CLI_OK && !path) rc = cli_usage_error(&INFO_CMD, "give exactly one model file");
    cli_args_free(&a);
    if (rc) return rc < 0 ? CLI_OK : rc;
    char err[512];
    model *m = NULL;
    json_t *o = NULL;
    if (model_load(&m, path, err, sizeof err) || !(o = info_json(m, path, err, sizeof err))) rc = CLI_FAILED;
    else if (json_dumpf(o, stdout, IEVO_JSON_DUMP) || putchar('\n') == EOF || fflush(stdout))
        rc = CLI_FAILED, snprintf(err, sizeof err, "writing the summary failed: %s", strerror(errno));
    if (rc) LOG_E("model info", "%s", err);
    json_decref(o);
    model_free(m);
    return rc;
}

int cmd_model(int argc, char **argv) {
    static const cli_subcommand subs[] = {
        {"init", model_init_main, "create a seeded random model file"},
        {"info", model_info_main, "print a JSON summary of a model file"},
    };
    return cli_dispatch("model", subs, sizeof subs / sizeof subs[0], argc, argv);
}
