/* model_fixture: small helpers shared by the model unit tests (test models, a seeded RNG). */
#ifndef IEVO_MODEL_FIXTURE_H
#define IEVO_MODEL_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <math.h>

#include "check.h"
#include "model.h"
#include "model_init.h"
#include "rng.h"

/* A model of config cfg with ids "i1".."i<n_items>" and "a1".."a<n_actions>" (the OOV rows come
 * on top); a text model (cfg->text_dim > 0) gets a random text.b too. */
static inline model *fixture_model_cfg(const model_config *cfg, int n_items, int n_actions, uint64_t seed) {
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
    int rc = model_init_random(&m, cfg, "fixture", (const char *const *)items, n_items, (const char *const *)actions,
                               n_actions, seed, err, sizeof err);
    REQUIRE(rc == 0, "model_init_random: %s", err);
    for (int i = 0; i < n_items; i++) free(items[i]);
    for (int i = 0; i < n_actions; i++) free(actions[i]);
    free(items);
    free(actions);
    if (cfg->text_dim > 0) { /* a random text.b, so that the bias of the adaptor is exercised too */
        rng_t r;
        rng_seed(&r, seed ^ 0x7465787462ull);
        for (size_t i = 0; i < m->t[T_TEXT_B].numel; i++) m->t[T_TEXT_B].data[i] = (float)(0.05 * rng_normal(&r));
        REQUIRE(model_add_heads(m, 0, 0, err, sizeof err) == 0, "refresh the identity: %s", err); /* heads 0: identity only */
    }
    return m;
}

/* An LSTM/GRU model; text_dim T > 0 makes a text model. */
static inline model *fixture_model_t(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items,
                                     int n_actions, int T, uint64_t seed) {
    model_config cfg;
    model_config_default(&cfg);
    cfg.cell = cell, cfg.item_dim = E, cfg.action_dim = A, cfg.hidden = H, cfg.attn_dim = K, cfg.out_dim = D;
    cfg.window = W, cfg.text_dim = T;
    return fixture_model_cfg(&cfg, n_items, n_actions, seed);
}

/* An LRU-stack model: L layers of width H, complex state N, feed-forward F. */
/* A model of any family: cell (an LRU: 2 layers, complex state H/2 + 1, feed-forward 2H + 1) and
 * what reads it (tf: 2 blocks, 2 heads, or 1 for an odd H). */
static inline model *fixture_family(model_cell cell, model_attn attn, int E, int A, int H, int K, int D, int W, int n_items,
                                    int n_actions, int T, uint64_t seed) {
    model_config cfg;
    model_config_default(&cfg);
    cfg.cell = cell, cfg.attn = attn, cfg.item_dim = E, cfg.action_dim = A, cfg.hidden = H, cfg.attn_dim = K;
    cfg.out_dim = D, cfg.window = W, cfg.text_dim = T;
    if (cell == MODEL_CELL_LRU) cfg.layers = 2, cfg.state_dim = H / 2 + 1;
    if (cell == MODEL_CELL_LRU || attn == MODEL_ATTN_TF) cfg.ffn_dim = 2 * H + 1;
    if (attn == MODEL_ATTN_TF) cfg.blocks = 2, cfg.heads = H % 2 ? 1 : 2;
    return fixture_model_cfg(&cfg, n_items, n_actions, seed);
}

static inline model *fixture_lru_model(int E, int A, int H, int N, int F, int L, int K, int D, int W, int n_items,
                                       int n_actions, int T, uint64_t seed) {
    model_config cfg;
    model_config_default(&cfg);
    cfg.cell = MODEL_CELL_LRU, cfg.item_dim = E, cfg.action_dim = A, cfg.hidden = H, cfg.attn_dim = K, cfg.out_dim = D;
    cfg.window = W, cfg.text_dim = T, cfg.layers = L, cfg.state_dim = N, cfg.ffn_dim = F;
    return fixture_model_cfg(&cfg, n_items, n_actions, seed);
}

static inline model *fixture_model(model_cell cell, int E, int A, int H, int K, int D, int W, int n_items,
                                   int n_actions, uint64_t seed) {
    return fixture_model_t(cell, E, A, H, K, D, W, n_items, n_actions, 0, seed);
}

/* n random unit vectors of T floats (the shape of USE-lite's output), caller frees. */
static inline float *fixture_unit_vectors(int n, int T, uint64_t seed) {
    float *v = malloc((size_t)n * T * sizeof *v);
    REQUIRE(v, "oom");
    rng_t r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < T; k++) {
            float x = (float)(rng_normal(&r) + 0.5);
            v[(size_t)i * T + k] = x;
            s += (double)x * x;
        }
        for (int k = 0; k < T; k++) v[(size_t)i * T + k] = (float)(v[(size_t)i * T + k] / sqrt(s));
    }
    return v;
}

/* A temporary file path under $TMPDIR (or /tmp), unique per process and tag. */
static inline void fixture_tmp_path(char *out, size_t n, const char *tag) {
    const char *dir = getenv("TMPDIR");
    snprintf(out, n, "%s/ievo-%s-%ld.safetensors", dir && *dir ? dir : "/tmp", tag, (long)getpid());
}

#endif
