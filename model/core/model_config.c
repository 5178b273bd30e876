/* model_config: defaults, setting one key from text (CLI flags, file metadata), the family's
 * defaults, range checks, names.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "model_internal.h"


void model_config_default(model_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->cell = MODEL_CELL_LSTM;
    cfg->item_dim = 64;
    cfg->action_dim = 8;
    cfg->hidden = 64;
    cfg->attn_dim = 64;
    cfg->out_dim = 64;
    cfg->window = 16;
    cfg->n_items = 1;
    cfg->n_actions = 1;
}

static int parse_int(const char *s, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s) return -1;
    *out = v;
    return 0;
}

int model_config_set(model_config *cfg, const char *key, const char *value, char *err, size_t errlen) {
    if (!key || !value) return model_errf(err, errlen, "config: missing key or value");
    if (strcmp(key, "cell") == 0) {
        if (strcmp(value, "lstm") == 0) cfg->cell = MODEL_CELL_LSTM;
        else if (strcmp(value, "gru") == 0) cfg->cell = MODEL_CELL_GRU;
        else if (strcmp(value, "lru") == 0) cfg->cell = MODEL_CELL_LRU;
        else if (strcmp(value, "none") == 0) cfg->cell = MODEL_CELL_NONE;
        else return model_errf(err, errlen, "config: cell must be \"lstm\", \"gru\", \"lru\" or \"none\", got \"%s\"", value);
        return 0;
    }
    if (strcmp(key, "attention") == 0) {
        if (strcmp(value, "window") == 0) cfg->attn = MODEL_ATTN_WINDOW;
        else if (strcmp(value, "tf") == 0) cfg->attn = MODEL_ATTN_TF;
        else return model_errf(err, errlen, "config: attention must be \"window\" or \"tf\", got \"%s\"", value);
        return 0;
    }
    static const struct { const char *key; size_t off; } ints[] = {
        {"item_dim", offsetof(model_config, item_dim)},   {"action_dim", offsetof(model_config, action_dim)},
        {"hidden", offsetof(model_config, hidden)},       {"attn_dim", offsetof(model_config, attn_dim)},
        {"out_dim", offsetof(model_config, out_dim)},     {"window", offsetof(model_config, window)},
        {"n_items", offsetof(model_config, n_items)},     {"n_actions", offsetof(model_config, n_actions)},
        {"text_dim", offsetof(model_config, text_dim)},   {"layers", offsetof(model_config, layers)},
        {"state_dim", offsetof(model_config, state_dim)}, {"ffn_dim", offsetof(model_config, ffn_dim)},
        {"blocks", offsetof(model_config, blocks)},       {"heads", offsetof(model_config, heads)},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (strcmp(key, ints[i].key) != 0) continue;
        long v;
        if (parse_int(value, &v) || v < INT_MIN || v > INT_MAX)
            return model_errf(err, errlen, "config: %s must be an integer, got \"%s\"", key, value);
        *(int *)((char *)cfg + ints[i].off) = (int)v;
        return 0;
    }
    return model_errf(err, errlen,
                      "config: unknown key \"%s\" (expected cell, attention, item_dim, action_dim, hidden, attn_dim, out_dim, "
                      "window, text_dim, layers, state_dim, ffn_dim, blocks, heads)",
                      key);
}

model_config model_config_resolve(const model_config *cfg) {
    model_config c = *cfg;
    if (c.cell == MODEL_CELL_LRU) {
        if (c.layers == 0) c.layers = 2;
        if (c.state_dim == 0) c.state_dim = c.hidden;
    } else if (c.layers == 0 && c.cell != MODEL_CELL_NONE) {
        c.layers = 1;
    }
    if ((c.cell == MODEL_CELL_LRU || c.attn == MODEL_ATTN_TF) && c.ffn_dim == 0) c.ffn_dim = 2 * c.hidden;
    if (c.attn == MODEL_ATTN_TF) {
        if (c.blocks == 0) c.blocks = 2;
        if (c.heads == 0) c.heads = 2;
    }
    return c;
}

const char *model_cell_name(model_cell cell) {
    switch (cell) {
    case MODEL_CELL_LSTM: return "lstm";
    case MODEL_CELL_GRU: return "gru";
    case MODEL_CELL_LRU: return "lru";
    case MODEL_CELL_NONE: return "none";
    }
    return "?";
}

void model_family_name(const model_config *cfg, char *out, size_t n) {
    model_config c = model_config_resolve(cfg);
    char top[16];
    if (c.attn == MODEL_ATTN_TF) snprintf(top, sizeof top, "tf%d", c.blocks);
    else snprintf(top, sizeof top, "window");
    if (c.cell == MODEL_CELL_LRU) snprintf(out, n, "lru%d+%s", c.layers, top);
    else snprintf(out, n, "%s+%s", model_cell_name(c.cell), top);
}

int model_config_check(const model_config *cfg_in, char *err, size_t errlen) {
    const model_config c = model_config_resolve(cfg_in), *cfg = &c;
    if (cfg->cell != MODEL_CELL_LSTM && cfg->cell != MODEL_CELL_GRU && cfg->cell != MODEL_CELL_LRU &&
        cfg->cell != MODEL_CELL_NONE)
        return model_errf(err, errlen, "config: unknown cell %d", (int)cfg->cell);
    if (cfg->attn != MODEL_ATTN_WINDOW && cfg->attn != MODEL_ATTN_TF)
        return model_errf(err, errlen, "config: unknown attention %d", (int)cfg->attn);
    const int ffn = cfg->cell == MODEL_CELL_LRU || cfg->attn == MODEL_ATTN_TF;
    if ((cfg->cell == MODEL_CELL_LSTM || cfg->cell == MODEL_CELL_GRU) && (cfg->layers != 1 || cfg->state_dim != 0))
        return model_errf(err, errlen, "config: the %s cell has one layer and no state_dim (layers %d, state_dim %d)",
                          model_cell_name(cfg->cell), cfg->layers, cfg->state_dim);
    if (cfg->cell == MODEL_CELL_NONE && (cfg->layers != 0 || cfg->state_dim != 0))
        return model_errf(err, errlen, "config: cell none has no layers or state_dim");
    if (cfg->cell == MODEL_CELL_LRU && (cfg->layers < 1 || cfg->layers > 16 || cfg->state_dim < 1 || cfg->state_dim > 4096))
        return model_errf(err, errlen, "config: an lru needs layers 1..16, state_dim 1..4096 (got %d, %d)", cfg->layers,
                          cfg->state_dim);
    if (ffn ? cfg->ffn_dim < 1 || cfg->ffn_dim > 16384 : cfg->ffn_dim != 0)
        return model_errf(err, errlen, ffn ? "config: ffn_dim %d is out of range 1..16384"
                                           : "config: ffn_dim %d without an lru or transformer blocks", cfg->ffn_dim);
    if (cfg->attn == MODEL_ATTN_TF &&
        (cfg->blocks < 1 || cfg->blocks > 16 || cfg->heads < 1 || cfg->hidden % cfg->heads != 0))
        return model_errf(err, errlen, "config: transformer blocks need blocks 1..16 and heads dividing hidden (got %d "
                          "blocks, %d heads, hidden %d)", cfg->blocks, cfg->heads, cfg->hidden);
    if (cfg->attn != MODEL_ATTN_TF && (cfg->blocks != 0 || cfg->heads != 0))
        return model_errf(err, errlen, "config: blocks and heads are the transformer's (attention tf)");
    const struct { const char *name; int v, lo, hi; } r[] = {
        {"item_dim", cfg->item_dim, 1, 4096}, {"action_dim", cfg->action_dim, 1, 4096},
        {"hidden", cfg->hidden, 1, 4096},     {"attn_dim", cfg->attn_dim, 1, 4096},
        {"out_dim", cfg->out_dim, 1, 4096},   {"window", cfg->window, 1, 1024},
        {"n_items", cfg->n_items, 1, MODEL_VOCAB_MAX}, {"n_actions", cfg->n_actions, 1, MODEL_ACTIONS_MAX},
        {"text_dim", cfg->text_dim, 0, 4096},
    };
    for (size_t i = 0; i < sizeof r / sizeof r[0]; i++)
        if (r[i].v < r[i].lo || r[i].v > r[i].hi)
            return model_errf(err, errlen, "config: %s = %d is out of range %d..%d", r[i].name, r[i].v, r[i].lo, r[i].hi);
    /* Embedding tables bound the size: 2^27 rows x 4096 floats would not fit in memory anyway. */
    double floats = (double)cfg->n_items * cfg->item_dim + (double)cfg->n_actions * cfg->action_dim;
    if (floats > (double)(1ull << 32))
        return model_errf(err, errlen, "config: embedding tables of %.0f floats exceed the 2^32 limit", floats);
    return 0;
}
