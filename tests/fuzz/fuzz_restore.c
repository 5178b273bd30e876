/* fuzz_restore: libFuzzer target over what a restore reads back from the changelog and RocksDB,
 * checked as restore.c and batch.c check it, then used as the worker uses it.
 *
 * Input: byte 0 = flags, then
 *   flags bit 0 set: a changelog marker value (the rest): changelog_marker_parse. Checked: -1, or
 *     an offset >= 0 from exactly 8 bytes that changelog_marker_value encodes back to them.
 *   else: le64 input end (flags bit 1: unknown, -1), le64 event time, then a stored record (the
 *     rest): record_check_stored against a small model (fuzz_model.h). Checked:
 *     - refused: a one-line, NUL-terminated reason;
 *     - accepted: the applied offset is -1 or below the input end; the state then takes one step
 *       of a valid event (an event time in the codec's range) with the scalar runner, as the
 *       worker applies the next event of a restored user; the step succeeds, its output vector
 *       and drift are finite, and the stepped record passes the same check again (unless the
 *       step took it past MODEL_STATE_EVENTS_MAX); the state's
 *       output (model_state_output) and window items (model_state_items) are read as `ievo state
 *       dump` and the top-k exclusion read them.
 * Build and run: scripts/fuzz.sh (tests/fuzz/fuzz.cmake).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "changelog.h"
#include "codec.h"
#include "worker_record.h"

#define FUZZ_NAME "fuzz_restore"
#define FUZZ_OWN_INIT
#include "fuzz_common.h"
#include "fuzz_model.h"

static model *g_m;
static model_runner *g_r;
static size_t g_size;
static uint8_t *g_rec;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_hooks_install();
    char err[256];
    g_m = fuzz_model_new();
    if (model_runner_new(&g_r, g_m, MODEL_BACKEND_SCALAR, 1, err, sizeof err)) {
        fprintf(stderr, "fuzz_restore: %s\n", err);
        abort();
    }
    g_size = RECORD_HEADER + model_state_size(g_m);
    g_rec = malloc(g_size);
    return 0;
}

static int64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return (int64_t)v;
}

static void check_reason(const char *why, size_t cap) {
    size_t n = strnlen(why, cap);
    FUZZ_CHECK(n > 0 && n < cap && !memchr(why, '\n', n), "a refusal without a one-line reason");
}

static void marker(const uint8_t *d, size_t n) {
    int64_t v = changelog_marker_parse(d, n);
    FUZZ_CHECK(v >= -1, "marker value %lld", (long long)v);
    if (v < 0) {
        FUZZ_CHECK(n != 8 || (d[7] & 0x80), "an 8-byte marker of a non-negative offset refused");
        return;
    }
    FUZZ_CHECK(n == 8, "a marker of %zu bytes accepted", n);
    uint8_t back[8];
    changelog_marker_value(back, v);
    FUZZ_CHECK(!memcmp(back, d, 8), "marker %lld does not encode back to its bytes", (long long)v);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    if (d[0] & 1) {
        marker(d + 1, n - 1);
        return 0;
    }
    if (n < 17) return 0;
    int64_t input_end = (d[0] & 2) ? -1 : le64(d + 1);
    int64_t ts = CODEC_TS_MIN + (int64_t)((uint64_t)le64(d + 9) % (uint64_t)(CODEC_TS_MAX - CODEC_TS_MIN));
    const uint8_t *v = d + 17;
    size_t len = n - 17;
    char why[256], err[256];
    memset(g_rec, 0xA5, g_size);
    memset(why, 'Z', sizeof why);
    if (record_check_stored(g_m, g_size, v, len, input_end, g_rec, why, sizeof why)) {
        check_reason(why, sizeof why);
        return 0;
    }
    int64_t last = record_last_offset(g_rec);
    FUZZ_CHECK(last >= -1 && (input_end < 0 || last < input_end), "offset %lld accepted for an input ending at %lld",
               (long long)last, (long long)input_end);

    void *state = record_blob(g_rec);
    float u[4], drift = 0;
    int32_t items[8];
    FUZZ_CHECK(model_state_output(g_r, state, u, err, sizeof err) == 0, "state output: %s", err);
    int k = model_state_items(g_m, state, items);
    FUZZ_CHECK(k >= 0 && k <= g_m->cfg.window, "%d window items", k);
    for (int i = 0; i < k; i++) FUZZ_CHECK(items[i] >= 0 && items[i] < g_m->cfg.n_items, "window item %d", items[i]);

    model_event ev = {.item = 1 + d[0] % 4, .action = 1, .ts = ts, .value = 3.5f, .has_value = (d[0] & 4) != 0};
    void *states[1] = {state};
    FUZZ_CHECK(model_step(g_r, 1, states, &ev, u, &drift, err, sizeof err) == 0, "a valid event on an accepted state: %s",
               err);
    for (int i = 0; i < 4; i++) FUZZ_CHECK(isfinite(u[i]), "u[%d] = %g after a step of an accepted state", i, u[i]);
    FUZZ_CHECK(isfinite(drift), "drift %g after a step of an accepted state", drift);
    if (model_state_events(state) <= MODEL_STATE_EVENTS_MAX)   /* one past the limit: refused, as it should */
        FUZZ_CHECK(record_check_loaded(g_m, g_rec, input_end, why, sizeof why) == 0, "the stepped record is refused: %s",
                   why);
    return 0;
}
