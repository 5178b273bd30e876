/* train_fixture: small event histories for the trainer's unit tests. */
#ifndef IEVO_TRAIN_FIXTURE_H
#define IEVO_TRAIN_FIXTURE_H

#include "model_fixture.h"
#include "train.h"

typedef struct {
    train_data d;
    int64_t *start;
    model_event *ev;
} fixture_data;

/* n_users users with lens[u] events each: random items (about 5 % the OOV row 0), actions,
 * non-decreasing times with some equal and some large gaps, values on about 60 % of events. */
static inline fixture_data fixture_events(int n_users, const int *lens, int n_items, int n_actions, uint64_t seed) {
    fixture_data f;
    rng_t r;
    rng_seed(&r, seed);
    f.start = malloc((size_t)(n_users + 1) * sizeof *f.start);
    f.start[0] = 0;
    for (int u = 0; u < n_users; u++) f.start[u + 1] = f.start[u] + lens[u];
    f.ev = calloc((size_t)(f.start[n_users] ? f.start[n_users] : 1), sizeof *f.ev);
    for (int u = 0; u < n_users; u++) {
        int64_t ts = 1700000000000LL + 1000 * u;
        for (int64_t i = f.start[u]; i < f.start[u + 1]; i++) {
            model_event *e = &f.ev[i];
            double p = rng_uniform(&r);
            ts += p < 0.15 ? 0 : p < 0.8 ? (int64_t)(rng_uniform(&r) * 600000) : (int64_t)(rng_uniform(&r) * 9e8);
            e->ts = ts;
            e->item = rng_uniform(&r) < 0.05 ? 0 : 1 + (int)(rng_uniform(&r) * (n_items - 1));
            e->action = (int)(rng_uniform(&r) * n_actions);
            e->has_value = rng_uniform(&r) < 0.6;
            e->value = e->has_value ? (float)(1 + (int)(rng_uniform(&r) * 5)) : 0.0f;
        }
    }
    memset(&f.d, 0, sizeof f.d);
    f.d.n_users = n_users;
    f.d.start = f.start;
    f.d.ev = f.ev;
    return f;
}

static inline void fixture_events_free(fixture_data *f) {
    free(f->start);
    free(f->ev);
}

/* What reads h_t in the fixture models: the window attention, or transformer blocks. */
static model_attn fixture_attn = MODEL_ATTN_WINDOW;

/* A fixture model with both heads (text_dim T > 0: a text model), of fixture_family's shapes. */
static inline model *fixture_trained_model_t(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items,
                                             int n_actions, int T, uint64_t seed) {
    model *m = fixture_family(cell, fixture_attn, E, A, H, K, D, W, n_items, n_actions, T, seed);
    char err[MODEL_ERR_LEN];
    REQUIRE(model_add_heads(m, MODEL_HEAD_SCORE | MODEL_HEAD_VALUE, seed, err, sizeof err) == 0, "%s", err);
    return m;
}

static inline model *fixture_trained_model(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items,
                                           int n_actions, uint64_t seed) {
    return fixture_trained_model_t(cell, E, A, H, K, D, W, n_items, n_actions, 0, seed);
}

/* Texts for a fixture whose model has ids i1..i<n_ids>: about 70 % of them get a catalogue text (item_text by
 * index, and the same vectors for the step's lookup by the key of "i<k>"), about 30 % of the
 * events a text of their own; OOV events keep key 0 (no text: the trainer reads item texts by
 * index, so the step must not see one either). */
typedef struct {
    float *item_text, *event_text;
    uint8_t *has;
    uint64_t *keys;
    int n_items, T;
} fixture_texts;

static inline const float *fixture_text_lookup(void *ctx, uint64_t key) {
    const fixture_texts *x = ctx;
    for (int i = 1; i < x->n_items; i++)
        if (x->has[i] && x->keys[i] == key) return x->item_text + (size_t)i * x->T;
    return NULL;
}

static inline fixture_texts fixture_add_texts(fixture_data *f, int n_ids, int T, uint64_t seed) {
    const int n_items = n_ids + 1; /* the model's rows: the OOV row and ids i1..i<n_ids> */
    fixture_texts x = {fixture_unit_vectors(n_items, T, seed), fixture_unit_vectors(64, T, seed + 1),
                       calloc((size_t)n_items, 1), calloc((size_t)n_items, sizeof(uint64_t)), n_items, T};
    rng_t r;
    rng_seed(&r, seed ^ 0x99);
    char id[32];
    for (int i = 1; i < n_items; i++) {
        x.has[i] = rng_uniform(&r) < 0.7;
        x.keys[i] = model_item_key(id, (size_t)snprintf(id, sizeof id, "i%d", i));
    }
    for (int64_t i = 0; i < f->start[f->d.n_users]; i++) {
        model_event *e = &f->ev[i];
        e->item_key = e->item > 0 ? x.keys[e->item] : 0;
        e->event_text = rng_uniform(&r) < 0.3 ? x.event_text + (size_t)(rng_uniform(&r) * 64) * T : NULL;
    }
    f->d.item_text = x.item_text;
    f->d.item_has_text = x.has;
    return x;
}

static inline void fixture_texts_free(fixture_texts *x) {
    free(x->item_text), free(x->event_text), free(x->has), free(x->keys);
}

#endif
