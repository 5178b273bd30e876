/* fuzz_model: the small model the state and model-file targets (and their seed generator) share:
 * every tensor and a state of a few hundred bytes, so that an input mutates structure rather
 * than bulk floats. GRU, E = A = H = K = D = 4, W = 3, 5 items, 2 actions, both heads. */
#ifndef IEVO_FUZZ_MODEL_H
#define IEVO_FUZZ_MODEL_H

#include <stdio.h>
#include <stdlib.h>

#include "model.h"
#include "model_init.h"

static model *fuzz_model_new(void) {
    static const char *const items[] = {"i1", "i2", "i3", "i4"};
    static const char *const actions[] = {"view"};
    model_config cfg;
    model_config_default(&cfg);
    cfg.cell = MODEL_CELL_GRU;
    cfg.item_dim = cfg.action_dim = cfg.hidden = cfg.attn_dim = cfg.out_dim = 4;
    cfg.window = 3;
    model *m = NULL;
    char err[256];
    if (model_init_random(&m, &cfg, "fuzz", items, 4, actions, 1, 7, err, sizeof err) ||
        model_add_heads(m, MODEL_HEAD_SCORE | MODEL_HEAD_VALUE, 7, err, sizeof err)) {
        fprintf(stderr, "fuzz_model: %s\n", err);
        abort();
    }
    return m;
}

#endif
