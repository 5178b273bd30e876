/* model_init: new models and new heads, seeded (model_init.c). The learning side's: the worker
 * serves a model it loads from a file (model.h: model_load). */
#ifndef IEVO_MODEL_INIT_H
#define IEVO_MODEL_INIT_H

#include <stdint.h>

#include "model.h"

/* Builds a model with the given config and vocabularies (item_ids/action_ids exclude the OOV
 * row, which is added as index 0), parameters drawn from a seeded uniform(-1/sqrt(fan_in), ..)
 * like PyTorch's defaults; embeddings N(0, 0.1) drawn from the same seeded generator. */
int model_init_random(model **out, const model_config *cfg, const char *name,
                      const char *const *item_ids, int n_item_ids,
                      const char *const *action_ids, int n_action_ids,
                      uint64_t seed, char *err, size_t errlen);
/* Adds the heads in `heads` that the model lacks (seeded init: score.item_emb N(0, 0.1^2), the
 * rest 0), re-laying the parameter block, then recomputes model_id and fingerprint under the
 * same name (heads = 0 only recomputes them). Existing parameters are kept. Returns 0, or -1. */
int model_add_heads(model *m, int heads, uint64_t seed, char *err, size_t errlen);

#endif
