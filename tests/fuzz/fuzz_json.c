/* fuzz_json: libFuzzer target over the JSON ievo reads from files, each parsed by our code through
 * jansson with our flags (duplicate keys refused, NUL in strings allowed where we allow it):
 *   byte 0 % 3 == 0: a vocabulary (vocab.json: [piece, score] pairs) -> use_tokenizer_new, then
 *                    the input's tail tokenized with it;
 *   byte 0 % 3 == 1: UserAction JSON lines (`--jsonl`) -> events_load_jsonl (through fmemopen);
 *   byte 0 % 3 == 2: item catalogue JSON lines (`--items`) -> item_catalog_jsonl (a file).
 * The model file's JSON header has its own target (fuzz_model_load). Checked:
 *   - refused: a one-line, NUL-terminated reason;
 *   - a tokenizer: every id of every text in [0, pieces), each with its piece, the count never
 *     above what the text's code points allow;
 *   - events: strings present and UTF-8, finite values, sorted by ts (the loader checks shape and
 *     types only: the codec's limits are the worker's to apply);
 *   - a catalogue: non-empty ids, UTF-8 ids and texts.
 * Build and run: scripts/fuzz.sh (tests/fuzz/fuzz.cmake).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "event_source.h"
#include "item_table.h"
#include "use_tokenizer.h"
#include "utf8.h"

#define FUZZ_NAME "fuzz_json"
#define FUZZ_OWN_INIT
#include "fuzz_common.h"

static const char *g_path;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_hooks_install();
    g_path = fuzz_tmp_open("json");
    return 0;
}

static void check_reason(const char *err, size_t cap) {
    size_t k = strnlen(err, cap);
    FUZZ_CHECK(k > 0 && k < cap && !memchr(err, '\n', k), "a refusal without a one-line reason");
}

static void vocab(const uint8_t *d, size_t n) {
    /* the vocabulary is the input up to its first NUL-free end; what follows a 0xFF byte, if
     * any, is the text tokenized with it */
    const uint8_t *cut = memchr(d, 0xFF, n);
    size_t vn = cut ? (size_t)(cut - d) : n;
    use_tokenizer *t = NULL;
    char err[256];
    memset(err, 'Z', sizeof err);
    if (use_tokenizer_new(&t, (const char *)d, vn, err, sizeof err)) {
        check_reason(err, sizeof err);
        return;
    }
    int pieces = use_tokenizer_n_pieces(t);
    const char *texts[3] = {"hello world", cut ? (const char *)cut + 1 : "", "\xe2\x96\x81 a\xcc\x81 \xef\xac\x81"};
    size_t lens[3] = {11, cut ? n - vn - 1 : 0, 9};
    int ids[64];
    for (int i = 0; i < 3; i++) {
        int c = use_tokenizer_encode(t, texts[i], lens[i], ids, 64, err, sizeof err);
        if (c < 0) {
            check_reason(err, sizeof err);
            continue;
        }
        for (int k = 0; k < c && k < 64; k++) {
            FUZZ_CHECK(ids[k] >= 0 && ids[k] < (pieces > 0 ? pieces : 1), "id %d of %d pieces", ids[k], pieces);
            FUZZ_CHECK(ids[k] == USE_UNK_ID || use_tokenizer_piece(t, ids[k]), "id %d has no piece", ids[k]);
        }
        size_t n_sym;
        use_tokenizer_last_symbols(t, &n_sym);
        FUZZ_CHECK((size_t)c <= n_sym, "%d ids from %zu symbols", c, n_sym);
    }
    use_tokenizer_free(t);
}

static void events(const uint8_t *d, size_t n) {
    FILE *f = fmemopen((void *)d, n ? n : 1, "r");
    FUZZ_CHECK(f, "fmemopen");
    if (!n) (void)fgetc(f);   /* an empty input: fmemopen wants a size of at least 1 */
    event_list l;
    char err[512];
    memset(err, 'Z', sizeof err);
    int rc = events_load_jsonl(f, "fuzz", &l, err, sizeof err);
    fclose(f);
    if (rc) {
        check_reason(err, sizeof err);
        return;
    }
    /* The loader checks shape and types only (jsonl_source.c: a test may write records the
     * worker must reject), so empty ids or an absurd ts pass here and are the codec's to refuse. */
    for (size_t i = 0; i < l.n; i++) {
        const source_event *e = &l.ev[i];
        FUZZ_CHECK(e->user_id && utf8_valid(e->user_id, strlen(e->user_id)), "user_id");
        FUZZ_CHECK(e->item_id && utf8_valid(e->item_id, strlen(e->item_id)), "item_id");
        FUZZ_CHECK(e->action && utf8_valid(e->action, strlen(e->action)), "action");
        FUZZ_CHECK(!e->text || utf8_valid(e->text, strlen(e->text)), "text");
        FUZZ_CHECK(!e->has_value || isfinite(e->value), "value %g", e->value);
        FUZZ_CHECK(i == 0 || l.ev[i - 1].ts <= e->ts, "not sorted by ts at %zu", i);
    }
    event_list_free(&l);
}

static void catalogue(const uint8_t *d, size_t n) {
    fuzz_tmp_write(d, n);
    item_catalog c;
    char err[512];
    memset(err, 'Z', sizeof err);
    if (item_catalog_jsonl(g_path, &c, err, sizeof err)) {
        check_reason(err, sizeof err);
        return;
    }
    for (size_t i = 0; i < c.n; i++) {
        size_t il = strlen(c.ids[i]), tl = strlen(c.texts[i]);
        FUZZ_CHECK(il > 0 && utf8_valid(c.ids[i], il), "catalogue id %zu", i);
        FUZZ_CHECK(utf8_valid(c.texts[i], tl), "catalogue text %zu", i);
    }
    item_catalog_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    switch (d[0] % 3) {
    case 0: vocab(d + 1, n - 1); break;
    case 1: events(d + 1, n - 1); break;
    default: catalogue(d + 1, n - 1); break;
    }
    return 0;
}
