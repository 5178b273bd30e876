/* fuzz_model_load: libFuzzer target over model_load (model/core/model_file.c), the reader of the
 * model file the worker serves: an 8-byte header length, the JSON header (parsed with jansson
 * under our flags), the parameters and the vocabularies, all as untrusted as a topic record.
 *
 * Each input is written to one temporary file (model_load reads a path) and loaded. Checked:
 *   - refused: a one-line, NUL-terminated reason;
 *   - loaded: the config passes model_config_check, every core tensor lies inside the parameter
 *     block, the vocabularies answer for every index, and the model runs: a fresh state takes
 *     one step of a valid event with the scalar runner and then validates;
 *   - no allocation of 64 MB or more (-malloc_limit_mb): a header's claimed sizes are checked
 *     against the file before anything is sized by them.
 * Seeds: the small model of fuzz_model.h as saved, and variants (fuzz_seeds_state --model).
 * Build and run: scripts/fuzz.sh (tests/fuzz/fuzz.cmake).
 */
#include <stdint.h>
#include <string.h>

#include "model.h"

#define FUZZ_NAME "fuzz_model_load"
#define FUZZ_OWN_INIT
#include "fuzz_common.h"

static const char *g_path;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_hooks_install();
    g_path = fuzz_tmp_open("model");
    return 0;
}

static void check_model(const model *m) {
    char err[256];
    FUZZ_CHECK(model_config_check(&m->cfg, err, sizeof err) == 0, "a loaded config is out of range: %s", err);
    for (int i = 0; i < MODEL_N_TENSORS; i++) {
        const model_tensor *t = &m->t[i];
        if (!t->numel) { /* a tensor of another family, or of a head this model lacks */
            FUZZ_CHECK(!t->data, "tensor %d has no elements but a data pointer", i);
            continue;
        }
        FUZZ_CHECK(t->data && t->data >= m->params && t->numel <= m->n_params &&
                       (size_t)(t->data - m->params) <= m->n_params - t->numel,
                   "tensor %d outside the parameter block", i);
    }
    for (int i = 0; i < m->cfg.n_items; i++) FUZZ_CHECK(model_item_id(m, i), "item %d has no id", i);
    for (int i = 0; i < m->cfg.n_actions; i++) FUZZ_CHECK(model_action_id(m, i), "action %d has no id", i);
    FUZZ_CHECK(!model_item_id(m, m->cfg.n_items), "an item past the vocabulary");

    model_runner *r = NULL;
    size_t size = model_state_size(m);
    void *state = malloc(size);
    float *u = malloc((size_t)m->cfg.out_dim * sizeof *u), drift;
    FUZZ_CHECK(state && u, "out of memory");
    model_state_init(m, state);
    FUZZ_CHECK(model_state_validate(m, state, err, sizeof err) == 0, "a fresh state: %s", err);
    FUZZ_CHECK(model_runner_new(&r, m, MODEL_BACKEND_SCALAR, 1, err, sizeof err) == 0, "runner: %s", err);
    model_event ev = {.item = m->cfg.n_items > 1 ? 1 : 0, .action = 0, .ts = 1700000000000LL};
    void *states[1] = {state};
    FUZZ_CHECK(model_step(r, 1, states, &ev, u, &drift, err, sizeof err) == 0, "a step: %s", err);
    FUZZ_CHECK(model_state_validate(m, state, err, sizeof err) == 0, "the stepped state: %s", err);
    model_runner_free(r);
    free(state);
    free(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    fuzz_tmp_write(d, n);
    model *m = NULL;
    char err[512];
    memset(err, 'Z', sizeof err);
    if (model_load(&m, g_path, err, sizeof err)) {
        size_t k = strnlen(err, sizeof err);
        FUZZ_CHECK(k > 0 && k < sizeof err && !memchr(err, '\n', k), "a refusal without a one-line reason");
        return 0;
    }
    check_model(m);
    model_free(m);
    return 0;
}
