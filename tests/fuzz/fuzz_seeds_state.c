/* fuzz_seeds_state: writes the seed corpora of the targets over what ievo reads back from its own
 * stores and files (so no binary corpus is committed):
 *   fuzz_seeds_state --restore DIR     fuzz_restore: stored records of the small model (fresh, after
 *                                      events, with a full window), with input ends around their
 *                                      offsets, and marker values
 *   fuzz_seeds_state --model DIR       fuzz_model_load: the small model as saved, with and without
 *                                      heads, and with metadata
 *   fuzz_seeds_state --json DIR        fuzz_json: vocabularies, UserAction JSON lines, catalogues
 *   fuzz_seeds_state --item-store DIR  fuzz_item_store: stored item vectors
 * DIR must exist; files are named seed-NNN-<what>.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "changelog.h"
#include "fuzz_model.h"
#include "worker_record.h"

static const char *g_dir;
static int g_count, g_failed;

static void put(const char *what, const void *data, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%03d-%s", g_dir, g_count++, what);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
        fprintf(stderr, "fuzz_seeds_state: cannot write %s\n", path);
        g_failed = 1;
    }
}

static void le64(uint8_t *p, int64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

/* fuzz_restore's record input: flags, input end, event time, the stored record. */
static void restore_record(const char *what, uint8_t flags, int64_t input_end, const uint8_t *rec, size_t size) {
    size_t len = record_stored_len(rec, size);
    uint8_t *b = malloc(17 + len);
    b[0] = flags;
    le64(b + 1, input_end);
    le64(b + 9, 1700000000000LL);
    memcpy(b + 17, rec, len);
    put(what, b, 17 + len);
    free(b);
}

static void seeds_restore(void) {
    model *m = fuzz_model_new();
    model_runner *r = NULL;
    char err[256];
    if (model_runner_new(&r, m, MODEL_BACKEND_SCALAR, 1, err, sizeof err)) {
        fprintf(stderr, "fuzz_seeds_state: %s\n", err);
        exit(1);
    }
    size_t size = RECORD_HEADER + model_state_size(m);
    uint8_t *rec = calloc(1, size);
    model_state_init(m, record_blob(rec));
    record_set_last_offset(rec, -1);
    restore_record("fresh", 0, 10, rec, size);
    restore_record("fresh-end-unknown", 2, 0, rec, size);
    float u[4], drift;
    for (int k = 0; k < 5; k++) {   /* past the window of 3: the ring wraps */
        model_event ev = {.item = 1 + k % 4, .action = 1, .ts = 1700000000000LL + 60000 * k, .value = (float)k,
                          .has_value = k & 1};
        void *states[1] = {record_blob(rec)};
        if (model_step(r, 1, states, &ev, u, &drift, err, sizeof err)) {
            fprintf(stderr, "fuzz_seeds_state: %s\n", err);
            exit(1);
        }
        record_set_last_offset(rec, 100 + k);
        char what[32];
        snprintf(what, sizeof what, "after-%d-events", k + 1);
        restore_record(what, k & 4, 1000, rec, size);
    }
    restore_record("offset-at-the-end", 0, 104, rec, size);
    uint8_t full[17 + 4096];
    memset(full, 0, sizeof full);
    memcpy(full + 17, rec, size);   /* untrimmed */
    le64(full + 1, 1000);
    put("untrimmed", full, 17 + size);
    uint8_t mk[9] = {1};
    le64(mk + 1, 42);
    put("marker-42", mk, 9);
    le64(mk + 1, 0);
    put("marker-0", mk, 9);
    le64(mk + 1, INT64_MAX);
    put("marker-max", mk, 9);
    put("marker-short", mk, 8);
    free(rec);
    model_runner_free(r);
    model_free(m);
}

static void save_model(const char *what, model *m) {
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/seed-%03d-%s", g_dir, g_count++, what);
    if (model_save(m, path, err, sizeof err)) {
        fprintf(stderr, "fuzz_seeds_state: %s\n", err);
        g_failed = 1;
    }
}

static void seeds_model(void) {
    model *m = fuzz_model_new();
    save_model("model-heads", m);
    char err[256];
    if (model_set_meta(m, "{\"trained\":{\"epochs\":1},\"note\":\"seed\"}", err, sizeof err) == 0)
        save_model("model-meta", m);
    model_free(m);
    static const char *const items[] = {"a"};
    static const char *const actions[] = {"view", "buy"};
    model_config cfg;
    model_config_default(&cfg);
    cfg.item_dim = cfg.action_dim = cfg.hidden = cfg.attn_dim = cfg.out_dim = 2;
    cfg.window = 2;
    if (model_init_random(&m, &cfg, "tiny", items, 1, actions, 2, 1, err, sizeof err) == 0) {
        save_model("model-lstm-tiny", m);
        model_free(m);
    }
}

static void seeds_json(void) {
    static const char vocab[] =
        "\x00[[\"<unk>\",0],[\"<s>\",0],[\"</s>\",0],[\"x1\",0],[\"x2\",0],[\"x3\",0],"
        "[\"\xe2\x96\x81hello\",-2.5],[\"\xe2\x96\x81world\",-3],[\"o\",-5],[\"l\",null],[\"\xe2\x96\x81\",-1],[\"h\",-6]]"
        "\xff" "hello world, hello";
    put("vocab", vocab, sizeof vocab - 1);
    static const char events[] =
        "\x01{\"user_id\":\"u1\",\"item_id\":\"i1\",\"action\":\"view\",\"ts\":1700000000000}\n"
        "{\"user_id\":\"u2\",\"item_id\":\"i2\",\"action\":\"rate\",\"ts\":1700000000500,\"value\":4.5,\"text\":null}\n"
        "{\"user_id\":\"u1\",\"item_id\":\"i3\",\"action\":\"view\",\"ts\":1699999999000,\"value\":null,"
        "\"text\":\"caf\xc3\xa9 \\u00e9\"}\n";
    put("events", events, sizeof events - 1);
    static const char catalogue[] =
        "\x02{\"item_id\":\"i1\",\"text\":\"A film. Drama\"}\n{\"item_id\":\"\xe6\x97\xa5\",\"text\":\"\"}\n";
    put("catalogue", catalogue, sizeof catalogue - 1);
}

static void seeds_item_store(void) {
    static const char *const ids[] = {"i1", "movie 42", "\xe6\x97\xa5\xe6\x9c\xac"};
    for (int k = 0; k < 3; k++) {
        uint8_t b[8 + 12 + 64 + 16];
        size_t il = strlen(ids[k]);
        le64(b, (int64_t)model_item_key(ids[k], il));
        le64(b + 8, 0x1234567890abcdefLL + k);
        b[16] = (uint8_t)il, b[17] = b[18] = b[19] = 0;
        memcpy(b + 20, ids[k], il);
        float v[4] = {0.5f, -1.0f, 0.25f * (float)k, 3.0f};
        memcpy(b + 20 + il, v, sizeof v);
        char what[16];
        snprintf(what, sizeof what, "item-%d", k);
        put(what, b, 20 + il + sizeof v);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: fuzz_seeds_state --restore|--model|--json|--item-store DIR\n");
        return 2;
    }
    g_dir = argv[2];
    if (!strcmp(argv[1], "--restore")) seeds_restore();
    else if (!strcmp(argv[1], "--model")) seeds_model();
    else if (!strcmp(argv[1], "--json")) seeds_json();
    else if (!strcmp(argv[1], "--item-store")) seeds_item_store();
    else return fprintf(stderr, "fuzz_seeds_state: unknown corpus %s\n", argv[1]), 2;
    return g_failed;
}
