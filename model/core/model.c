/* model: the model object's life (free), its name, fingerprint and model_id, metadata and
 * vocabulary lookups. The parameter block and its tensor table are laid out in tensors.c;
 * random initialisation is the trainer's (model/train/model_init.c).
 */
#include <stdlib.h>

#include <jansson.h>

#include "json_text.h"
#include "model_internal.h"

void model_free(model *m) {
    if (!m) return;
    free(m->params);
    vocab_free(m->items);
    vocab_free(m->actions);
    free(m->meta_json);
    free(m);
}

int model_name_check(const char *name, char *err, size_t errlen) {
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > MODEL_NAME_MAX)
        return model_errf(err, errlen, "model name must be 1..%d characters, got %zu", MODEL_NAME_MAX, n);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return model_errf(err, errlen, "model name \"%s\": character %zu is not one of [A-Za-z0-9._-]", name, i);
    }
    return 0;
}

uint64_t model_compute_fingerprint(const model *m) {
    fp64_t s;
    fp64_init(&s, 0x6965766F2D667031ull); /* "ievo-fp1" */
    const model_config *c = &m->cfg;
    int32_t cfg[9] = {(int32_t)c->cell, c->item_dim, c->action_dim, c->hidden, c->attn_dim,
                      c->out_dim, c->window, c->n_items, c->n_actions};
    fp64_update(&s, cfg, sizeof cfg);
    if (c->text_dim > 0) { /* only then: a model without text keeps the identity it always had */
        int32_t td = c->text_dim;
        fp64_update(&s, &td, sizeof td);
    }
    if (c->cell == MODEL_CELL_LRU) { /* the LSTM/GRU family keeps the identity it always had */
        int32_t lru[3] = {c->layers, c->state_dim, c->ffn_dim};
        fp64_update(&s, lru, sizeof lru);
    }
    if (c->attn == MODEL_ATTN_TF) {
        int32_t tf[4] = {(int32_t)c->attn, c->blocks, c->heads, c->ffn_dim};
        fp64_update(&s, tf, sizeof tf);
    }
    fp64_update(&s, m->params, m->n_params * sizeof(float));
    const model_vocab *v[2] = {m->items, m->actions};
    for (int i = 0; i < 2; i++) {
        size_t len;
        const char *j = vocab_joined(v[i], &len);
        uint64_t len64 = len;
        fp64_update(&s, &len64, sizeof len64);
        fp64_update(&s, j, len);
    }
    return fp64_final(&s);
}

int model_finalize(model *m, const char *name, char *err, size_t errlen) {
    if (model_name_check(name, err, errlen)) return -1;
    if (vocab_size(m->items) != m->cfg.n_items || vocab_size(m->actions) != m->cfg.n_actions)
        return model_errf(err, errlen, "model: vocabulary sizes %d/%d do not match the config's %d/%d",
                          vocab_size(m->items), vocab_size(m->actions), m->cfg.n_items, m->cfg.n_actions);
    m->fingerprint = model_compute_fingerprint(m);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)m->fingerprint);
    snprintf(m->model_id, sizeof m->model_id, "%s-%.12s", name, hex);
    return 0;
}

void model_name_of(const model *m, char *out, size_t n) {
    size_t len = strlen(m->model_id);
    len = len > 13 ? len - 13 : 0;
    snprintf(out, n, "%.*s", (int)len, m->model_id);
}

int model_set_meta(model *m, const char *json_object, char *err, size_t errlen) {
    if (!json_object) {
        free(m->meta_json);
        m->meta_json = NULL;
        return 0;
    }
    /* Parsed only to check it (the text itself is what the file carries). */
    json_error_t jerr;
    size_t len = strlen(json_object);
    json_t *v = json_loadb(json_object, len, JSON_REJECT_DUPLICATES, &jerr);
    char jt[JSON_ERROR_TEXT_LENGTH];
    if (!v)
        return model_errf(err, errlen, "model metadata: json: %s at byte %d", json_error_text(&jerr, jt, sizeof jt),
                          jerr.position);
    int is_obj = json_is_object(v);
    json_decref(v);
    if (!is_obj) return model_errf(err, errlen, "model metadata must be a JSON object");
    char *copy = malloc(len + 1);
    if (!copy) return model_errf(err, errlen, "model metadata: out of memory");
    memcpy(copy, json_object, len + 1);
    free(m->meta_json);
    m->meta_json = copy;
    return 0;
}

int model_item_index(const model *m, const char *id, size_t len) {
    int r = vocab_find(m->items, id, len);
    return r < 0 ? 0 : r;
}

int model_action_index(const model *m, const char *id, size_t len) {
    int r = vocab_find(m->actions, id, len);
    return r < 0 ? 0 : r;
}

const char *model_item_id(const model *m, int index) { return vocab_id(m->items, index); }
const char *model_action_id(const model *m, int index) { return vocab_id(m->actions, index); }
