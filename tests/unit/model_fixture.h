/* model_fixture: small helpers shared by the model unit tests (test models, a seeded RNG). */
#ifndef IEVO_MODEL_FIXTURE_H
#define IEVO_MODEL_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "model.h"
#include "rng.h"

/* A model with ids "i1".."i<n_items>" and "a1".."a<n_actions>" (the OOV rows come on top). */
static inline model *fixture_model(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items,
                                   int n_actions, uint64_t seed) {
    model_config cfg;
    model_config_default(&cfg);
    cfg.cell = cell, cfg.item_dim = E, cfg.action_dim = A, cfg.hidden = H, cfg.attn_dim = K, cfg.out_dim = D;
    cfg.window = W;
    char **items = malloc((size_t)(n_items + 1) * sizeof *items), **actions = malloc((size_t)(n_actions + 1) * sizeof *actions);
    REQUIRE(items && actions, "oom");
    for (int i = 0; i < n_items; i++) {
        items[i] = malloc(16);
        snprintf(items[i], 16, "i%d", i + 1);
    }
    for (int i = 0; i < n_actions; i++) {
        actions[i] = malloc(16);
        snprintf(actions[i], 16, "a%d", i + 1);
    }
    model *m = NULL;
    char err[MODEL_ERR_LEN];
    int rc = model_init_random(&m, &cfg, "fixture", (const char *const *)items, n_items, (const char *const *)actions,
                               n_actions, seed, err, sizeof err);
    REQUIRE(rc == 0, "model_init_random: %s", err);
    for (int i = 0; i < n_items; i++) free(items[i]);
    for (int i = 0; i < n_actions; i++) free(actions[i]);
    free(items);
    free(actions);
    return m;
}

/* A temporary file path under $TMPDIR (or /tmp), unique per process and tag. */
static inline void fixture_tmp_path(char *out, size_t n, const char *tag) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, n, "%s/ievo-%s-%ld.safetensors", dir && *dir ? dir : "/tmp", tag, (long)getpid());
}

#endif
