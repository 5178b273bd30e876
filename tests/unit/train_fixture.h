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
    f.d.n_users = n_users;
    f.d.start = f.start;
    f.d.ev = f.ev;
    return f;
}

static inline void fixture_events_free(fixture_data *f) {
    free(f->start);
    free(f->ev);
}

/* A fixture model with both heads. */
static inline model *fixture_trained_model(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items,
                                           int n_actions, uint64_t seed) {
    model *m = fixture_model(cell, E, A, H, K, D, W, n_items, n_actions, seed);
    char err[MODEL_ERR_LEN];
    REQUIRE(model_add_heads(m, MODEL_HEAD_SCORE | MODEL_HEAD_VALUE, seed, err, sizeof err) == 0, "%s", err);
    return m;
}

#endif
