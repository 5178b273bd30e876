/* model_config: defaults, setting one key from text (CLI flags, file metadata), range checks.
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
        else return model_errf(err, errlen, "config: cell must be \"lstm\" or \"gru\", got \"%s\"", value);
        return 0;
    }
    static const struct { const char *key; size_t off; } ints[] = {
        {"item_dim", offsetof(model_config, item_dim)},   {"action_dim", offsetof(model_config, action_dim)},
        {"hidden", offsetof(model_config, hidden)},       {"attn_dim", offsetof(model_config, attn_dim)},
        {"out_dim", offsetof(model_config, out_dim)},     {"window", offsetof(model_config, window)},
        {"n_items", offsetof(model_config, n_items)},     {"n_actions", offsetof(model_config, n_actions)},
        {"text_dim", offsetof(model_config, text_dim)},
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
                      "config: unknown key \"%s\" (expected cell, item_dim, action_dim, hidden, attn_dim, out_dim, window, text_dim)",
                      key);
}

int model_config_check(const model_config *cfg, char *err, size_t errlen) {
    if (cfg->cell != MODEL_CELL_LSTM && cfg->cell != MODEL_CELL_GRU)
        return model_errf(err, errlen, "config: unknown cell %d", (int)cfg->cell);
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
