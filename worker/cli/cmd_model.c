/* cmd_model: `ievo model init` (a seeded random model with its vocabularies, written as a
 * safetensors file) and `ievo model info` (a JSON summary of a model file).
 *
 * The vocabulary of items comes from exactly one source: a file with one id per line, the
 * MovieLens u.item ids, or the synthetic generator's item universe. Actions default to the
 * UserAction actions the producers emit. Exit codes: 0 done, 1 failed, 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "event_source.h"
#include "json.h"
#include "model.h"
#include "model_init.h"

#define DEFAULT_ACTIONS "rate,view,click,like,share,purchase,search,review"

static void usage_init(FILE *f) {
    fprintf(f,
            "usage: ievo model init --out PATH (--vocab-file PATH | --vocab-movielens DIR | --vocab-synthetic)\n"
            "                       [--cell lstm|gru|lru] [--item-dim N] [--action-dim N] [--hidden N]\n"
            "                       [--layers N] [--state-dim N] [--ffn-dim N]\n"
            "                       [--attention window|tf] [--blocks N] [--heads N]\n"
            "                       [--attn-dim N] [--out-dim N] [--window N] [--seed N] [--name NAME]\n"
            "                       [--actions a,b,c]\n"
            "\n"
            "Writes a model with seeded random parameters (PyTorch-style init) as a safetensors file.\n"
            "  --out PATH              the model file to write (replaced atomically)\n"
            "  --vocab-file PATH       item ids, one per line (empty lines skipped, no duplicates)\n"
            "  --vocab-movielens DIR   the item ids of DIR/u.item (MovieLens-100K)\n"
            "  --vocab-synthetic       the synthetic generator's items (default generator options)\n"
            "  --cell lstm|gru|lru|none recurrent family (default lstm; lru: a stack of linear recurrent\n"
            "                          units; none: the input projection alone)\n"
            "  --layers N              lru: layers (default 2)\n"
            "  --state-dim N           lru: complex state size per layer (default: --hidden)\n"
            "  --ffn-dim N             lru, tf: feed-forward width (default: 2 x --hidden)\n"
            "  --attention window|tf   what reads h_t: the window attention (default) or transformer blocks\n"
            "  --blocks N --heads N    tf: blocks (default 2) and heads per block (default 2)\n"
            "  --item-dim N            item embedding size E (default 64)\n"
            "  --action-dim N          action embedding size A (default 8)\n"
            "  --hidden N              hidden size H (default 64)\n"
            "  --attn-dim N            attention size K (default 64)\n"
            "  --out-dim N             interest vector size D (default 64)\n"
            "  --window N              attention window W, in events (default 16)\n"
            "  --seed N                initialisation seed (default 1)\n"
            "  --name NAME             model name, [A-Za-z0-9._-]{1,64} (default ievo)\n"
            "  --actions a,b,c         action ids (default " DEFAULT_ACTIONS ")\n"
            "Unknown item or action ids map to the shared out-of-vocabulary row 0.\n");
}

static void usage_info(FILE *f) {
    fprintf(f, "usage: ievo model info PATH\n\nLoads and checks a model file and prints a JSON summary: config,\n"
               "model_id, fingerprint, vocabulary sizes, parameter count, tensors, metadata.\n");
}

static int usage_error(void) {
    fprintf(stderr, "(ievo model init --help lists the options)\n");
    return 2;
}

static void usage(FILE *f) {
    fprintf(f, "usage: ievo model init [options]   create a seeded random model file\n"
               "       ievo model info PATH        print a JSON summary of a model file\n"
               "(ievo model init --help for the options)\n");
}

/* Splits a comma-separated list into newly allocated strings. */
static int split_csv(const char *s, char ***out, int *n, char *err, size_t errlen) {
    *out = NULL;
    *n = 0;
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    char **v = calloc((size_t)cap, sizeof *v);
    if (!v) return snprintf(err, errlen, "out of memory"), -1;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == ',' || *p == 0) {
            size_t len = (size_t)(p - start);
            if (len == 0) {
                snprintf(err, errlen, "--actions: empty id in \"%s\"", s);
                synth_item_ids_free(v, *n);
                return -1;
            }
            if (!(v[*n] = strndup(start, len))) {
                synth_item_ids_free(v, *n);
                return snprintf(err, errlen, "out of memory"), -1;
            }
            (*n)++;
            if (*p == 0) break;
            start = p + 1;
        }
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
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (memchr(line, 0, (size_t)len)) {
            snprintf(err, errlen, "%s: line %d contains a NUL byte", path, *n + 1);
            rc = -1;
            break;
        }
        if (*n == vcap) {
            int nc = vcap ? vcap * 2 : 1024;
            char **nv = realloc(v, (size_t)nc * sizeof *nv);
            if (!nv) { snprintf(err, errlen, "out of memory"); rc = -1; break; }
            v = nv;
            vcap = nc;
        }
        if (!(v[*n] = strdup(line))) { snprintf(err, errlen, "out of memory"); rc = -1; break; }
        (*n)++;
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        rc = -1;
    }
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

static int model_init_main(int argc, char **argv) {
    model_config cfg;
    model_config_default(&cfg);
    const char *out = NULL, *vocab_file = NULL, *movielens = NULL, *name = "ievo", *actions = DEFAULT_ACTIONS;
    int synthetic = 0;
    unsigned long long seed = 1;
    char err[512];
    static const struct { const char *flag, *key; } cfg_flags[] = {
        {"--cell", "cell"},       {"--item-dim", "item_dim"}, {"--action-dim", "action_dim"}, {"--hidden", "hidden"},
        {"--attn-dim", "attn_dim"}, {"--out-dim", "out_dim"},   {"--window", "window"},
        {"--layers", "layers"},   {"--state-dim", "state_dim"}, {"--ffn-dim", "ffn_dim"},
        {"--attention", "attention"}, {"--blocks", "blocks"}, {"--heads", "heads"},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage_init(stdout);
            return 0;
        }
        if (strcmp(a, "--vocab-synthetic") == 0) {
            synthetic = 1;
            continue;
        }
        /* Every other option takes a value: "--flag VALUE" or "--flag=VALUE". */
        char flag[64];
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) != 0 || (eq && (size_t)(eq - a) >= sizeof flag)) {
            fprintf(stderr, "ievo model init: unexpected argument '%s'\n", a);
            return usage_error();
        }
        if (eq) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
            if (i + 1 >= argc) {
                fprintf(stderr, "ievo model init: %s needs a value\n", flag);
                return 2;
            }
            val = argv[++i];
        }
        int known = 1;
        if (strcmp(flag, "--out") == 0) out = val;
        else if (strcmp(flag, "--vocab-file") == 0) vocab_file = val;
        else if (strcmp(flag, "--vocab-movielens") == 0) movielens = val;
        else if (strcmp(flag, "--name") == 0) name = val;
        else if (strcmp(flag, "--actions") == 0) actions = val;
        else if (strcmp(flag, "--seed") == 0) {
            char *end;
            errno = 0;
            seed = strtoull(val, &end, 0);
            if (errno || !*val || *end || *val == '-') {
                fprintf(stderr, "ievo model init: --seed must be a non-negative integer, got '%s'\n", val);
                return 2;
            }
        } else {
            known = 0;
            for (size_t k = 0; k < sizeof cfg_flags / sizeof cfg_flags[0]; k++)
                if (strcmp(flag, cfg_flags[k].flag) == 0) {
                    known = 1;
                    if (model_config_set(&cfg, cfg_flags[k].key, val, err, sizeof err)) {
                        fprintf(stderr, "ievo model init: %s: %s\n", flag, err);
                        return 2;
                    }
                }
        }
        if (!known) {
            fprintf(stderr, "ievo model init: unknown option '%s'\n", flag);
            return usage_error();
        }
    }
    if (!out) {
        fprintf(stderr, "ievo model init: --out PATH is required\n");
        return usage_error();
    }
    if (!!vocab_file + !!movielens + synthetic != 1) {
        fprintf(stderr, "ievo model init: give exactly one of --vocab-file, --vocab-movielens, --vocab-synthetic\n");
        return usage_error();
    }
    cfg.n_items = cfg.n_actions = 1; /* set from the vocabularies by model_init_random */
    if (model_config_check(&cfg, err, sizeof err)) {
        fprintf(stderr, "ievo model init: %s\n", err);
        return 2;
    }

    char **items = NULL, **acts = NULL;
    int n_items = 0, n_acts = 0, rc = 1;
    model *m = NULL;
    if (split_csv(actions, &acts, &n_acts, err, sizeof err)) {
        fprintf(stderr, "ievo model init: %s\n", err);
        return 2;
    }
    if (vocab_file) {
        if (read_vocab_file(vocab_file, &items, &n_items, err, sizeof err)) goto fail;
    } else if (movielens) {
        if (movielens_item_ids(movielens, &items, &n_items, err, sizeof err)) goto fail;
    } else {
        synth_opts so;
        synth_opts_default(&so);
        if (synth_item_ids(&so, &items, &n_items)) {
            snprintf(err, sizeof err, "the synthetic generator gave no item ids");
            goto fail;
        }
    }
    if (model_init_random(&m, &cfg, name, (const char *const *)items, n_items, (const char *const *)acts, n_acts, seed,
                          err, sizeof err))
        goto fail;
    char meta[256];
    snprintf(meta, sizeof meta, "{\"created_by\":\"ievo model init\",\"init\":\"random\",\"seed\":%llu}", seed);
    if (model_set_meta(m, meta, err, sizeof err) || model_save(m, out, err, sizeof err)) goto fail;
    printf("wrote %s: model_id %s, %s, %d items + <oov>, %d actions + <oov>, %zu parameters\n", out, m->model_id,
           model_cell_name(m->cfg.cell), n_items, n_acts, m->n_params);
    rc = 0;
fail:
    if (rc) fprintf(stderr, "ievo model init: %s\n", err);
    model_free(m);
    synth_item_ids_free(items, n_items);
    synth_item_ids_free(acts, n_acts);
    return rc;
}

static int model_info_main(int argc, char **argv) {
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage_info(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        usage_info(stderr);
        return 2;
    }
    char err[512];
    model *m = NULL;
    if (model_load(&m, argv[1], err, sizeof err)) {
        fprintf(stderr, "ievo model info: %s\n", err);
        return 1;
    }
    const model_config *c = &m->cfg;
    json_buf b = {0};
    size_t idlen = strlen(m->model_id), namelen = idlen > 13 ? idlen - 13 : 0;
    int bad = json_buf_append(&b, "{\"path\":", 8) || json_buf_string(&b, argv[1], strlen(argv[1]));
    bad = bad || json_buf_append(&b, ",\"model_id\":", 12) || json_buf_string(&b, m->model_id, idlen);
    bad = bad || json_buf_append(&b, ",\"name\":", 8) || json_buf_string(&b, m->model_id, namelen);
    bad = bad || json_buf_printf(&b, ",\"fingerprint\":\"%016llx\",\"format_version\":%d", (unsigned long long)m->fingerprint,
                                 MODEL_FORMAT_VERSION);
    char family[32];
    model_family_name(c, family, sizeof family);
    bad = bad || json_buf_printf(&b, ",\"family\":\"%s\",\"config\":{\"cell\":\"%s\",\"item_dim\":%d,\"action_dim\":%d,"
                                     "\"hidden\":%d,\"attn_dim\":%d,\"out_dim\":%d,\"window\":%d,\"input_dim\":%d",
                                 family, model_cell_name(c->cell), c->item_dim, c->action_dim, c->hidden, c->attn_dim,
                                 c->out_dim, c->window, model_input_dim(c));
    if (c->cell == MODEL_CELL_LRU)
        bad = bad || json_buf_printf(&b, ",\"layers\":%d,\"state_dim\":%d", c->layers, c->state_dim);
    if (c->cell == MODEL_CELL_LRU || c->attn == MODEL_ATTN_TF) bad = bad || json_buf_printf(&b, ",\"ffn_dim\":%d", c->ffn_dim);
    if (c->attn == MODEL_ATTN_TF)
        bad = bad || json_buf_printf(&b, ",\"attention\":\"tf\",\"blocks\":%d,\"heads\":%d", c->blocks, c->heads);
    bad = bad || json_buf_append(&b, "}", 1);
    bad = bad || json_buf_printf(&b, ",\"vocab\":{\"items\":%d,\"actions\":%d,\"action_ids\":[", c->n_items, c->n_actions);
    for (int i = 0; i < c->n_actions; i++) {
        const char *id = model_action_id(m, i);
        bad = bad || (i && json_buf_append(&b, ",", 1)) || json_buf_string(&b, id, strlen(id));
    }
    bad = bad || json_buf_printf(&b, "]},\"params\":%zu,\"param_bytes\":%zu,\"state_bytes\":%zu,\"tensors\":[", m->n_params,
                                 m->n_params * sizeof(float), model_state_size(m));
    for (int t = 0, shown = 0; t < MODEL_N_TENSORS; t++) {
        const model_tensor *x = &m->t[t];
        if (!x->numel) continue;   /* another family's tensor, or a head this model does not carry */
        bad = bad || json_buf_printf(&b, "%s{\"name\":\"%s\",\"shape\":[%d", shown++ ? "," : "", x->name, x->shape[0]);
        if (x->ndim == 2) bad = bad || json_buf_printf(&b, ",%d", x->shape[1]);
        bad = bad || json_buf_append(&b, "]}", 2);
    }
    bad = bad || json_buf_append(&b, "],\"meta\":", 9);
    bad = bad || (m->meta_json ? json_buf_append(&b, m->meta_json, strlen(m->meta_json)) : json_buf_append(&b, "null", 4));
    bad = bad || json_buf_append(&b, "}\n", 2);
    int rc = 0;
    if (bad) {
        fprintf(stderr, "ievo model info: out of memory\n");
        rc = 1;
    } else if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
        fprintf(stderr, "ievo model info: writing the summary failed: %s\n", strerror(errno));
        rc = 1;
    }
    json_buf_free(&b);
    model_free(m);
    return rc;
}

int cmd_model(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "init") == 0) return model_init_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "info") == 0) return model_info_main(argc - 1, argv + 1);
    fprintf(stderr, "ievo model: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
