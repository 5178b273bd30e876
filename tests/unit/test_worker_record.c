/* test_worker_record: what the restore's check (record_check_stored / record_check_loaded) lets
 * through is what the model's step accepts. Each damage below passes model_state_validate (the
 * header and counters) and must be refused by the check, so that a damaged changelog or store
 * record is quarantined at restore instead of stopping the worker at the user's next event
 * (every restart, since the record is restored again): the step refuses a bad window slot or a
 * NaN outright, and a finite value no step produces (h far outside [-1, 1], a feature past its
 * transform's range) can overflow the attention into NaN (fuzz_restore found one). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model_fixture.h"
#include "worker_record.h"

/* A record after n events at offsets 10.. */
static void fill(model *m, model_runner *r, uint8_t *rec, int n) {
    char err[256];
    float u[4], drift;
    model_state_init(m, record_blob(rec));
    for (int k = 0; k < n; k++) {
        model_event ev = {.item = 1 + k % 3, .action = 1, .ts = 1700000000000LL + 1000 * k, .value = 2, .has_value = 1};
        void *st[1] = {record_blob(rec)};
        REQUIRE(model_step(r, 1, st, &ev, u, &drift, err, sizeof err) == 0, "%s", err);
    }
    record_set_last_offset(rec, 10 + n - 1);
}

static void put_f32(uint8_t *rec, size_t off, float x) { memcpy(rec + RECORD_HEADER + off, &x, 4); }

int main(void) {
    for (int cell = 0; cell < 2; cell++) {
        /* E = A = H = K = D = 4, W = 3, 3 items, 1 action */
        model *m = fixture_model(cell ? MODEL_CELL_GRU : MODEL_CELL_LSTM, 4, 4, 4, 4, 4, 3, 3, 1, 5);
        model_runner *r = NULL;
        char err[256], why[256];
        REQUIRE(model_runner_new(&r, m, MODEL_BACKEND_SCALAR, 1, err, sizeof err) == 0, "%s", err);
        size_t size = RECORD_HEADER + model_state_size(m);
        uint8_t *rec = malloc(size), *scratch = malloc(size);
        size_t off_win = model_state_size(m) - 3 * 16;   /* W = 3 slots of 16 bytes at the end */
        fill(m, r, rec, 5);
        CHECK(record_check_stored(m, size, rec, record_stored_len(rec, size), 100, scratch, why, sizeof why) == 0,
              "a healthy record refused: %s", why);

        struct {
            const char *what;
            size_t off;
            float f;
            int32_t item;
            int step_refuses;
        } damage[] = {
            {"a window item past the vocabulary", off_win, 0, 77, 1},
            {"a NaN gap feature", off_win + 8, NAN, -1, 1},
            {"a huge value feature", off_win + 12, 1e30f, -1, 0},
            {"h[0] = 1e30", 36, 1e30f, -1, 0},
            {"h[1] = NaN", 40, NAN, -1, 1},
        };
        for (size_t d = 0; d < sizeof damage / sizeof damage[0]; d++) {
            uint8_t *bad = malloc(size);
            memcpy(bad, rec, size);
            if (damage[d].item >= 0) memcpy(bad + RECORD_HEADER + damage[d].off, &damage[d].item, 4);
            else put_f32(bad, damage[d].off, damage[d].f);
            CHECK(model_state_validate(m, record_blob(bad), err, sizeof err) == 0, "%s: the counters check refuses it",
                  damage[d].what);
            why[0] = 0;
            CHECK(record_check_stored(m, size, bad, size, 100, scratch, why, sizeof why) != 0 && why[0],
                  "%s (%s cell): accepted by the restore's check", damage[d].what, cell ? "gru" : "lstm");
            if (!damage[d].step_refuses) {
                free(bad);
                continue;
            }
            /* ... which matters: the step refuses it or answers NaN */
            float u[4], drift = 0;
            model_event ev = {.item = 1, .action = 1, .ts = 1700000001000000LL};
            void *st[1] = {record_blob(bad)};
            int rc = model_step(r, 1, st, &ev, u, &drift, err, sizeof err);
            CHECK(rc != 0 || !isfinite(u[0] + u[1] + u[2] + u[3]) || !isfinite(drift),
                  "%s: the step takes it in stride, so the check need not refuse it", damage[d].what);
            free(bad);
        }
        /* Event counts: one a step cannot add to (it would overflow), and one no user reaches. */
        int64_t counts[] = {INT64_MAX, MODEL_STATE_EVENTS_MAX + 1};
        for (int k = 0; k < 2; k++) {
            uint8_t *bad = malloc(size);
            memcpy(bad, rec, size);
            memcpy(bad + RECORD_HEADER + 8, &counts[k], 8);
            why[0] = 0;
            CHECK(record_check_stored(m, size, bad, size, 100, scratch, why, sizeof why) != 0 && why[0],
                  "%lld events accepted", (long long)counts[k]);
            free(bad);
        }
        free(rec);
        free(scratch);
        model_runner_free(r);
        model_free(m);
    }
    return check_exit("test_worker_record");
}
