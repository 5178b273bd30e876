/* fuzz_item_store: libFuzzer target over the item vectors a text model's worker keeps in RocksDB
 * and reads back at start (the catalogue's restore path): state_store_item_decode splits a
 * stored value, item_table_load_record checks it and puts it in the item table.
 *
 * Input: le64 item key, then the stored value (le64 text hash, le32 id length, the id, the
 * vector's floats). The table is 4 wide. Checked:
 *   - the decoded fields lie inside the value, in order, their lengths adding up to it;
 *   - refused: a one-line, NUL-terminated reason;
 *   - accepted: the id is UTF-8 of 1..CODEC_MAX_ID_BYTES bytes and keys to the key, and the table
 *     then gives back exactly those finite floats, that id and that text hash for the key.
 * Build and run: scripts/fuzz.sh (tests/fuzz/fuzz.cmake).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "codec.h"
#include "item_table.h"
#include "model.h"
#include "state_store.h"
#include "utf8.h"

#define FUZZ_NAME "fuzz_item_store"
#include "fuzz_common.h"

#define DIM 4

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 8) return 0;
    uint64_t key = 0;
    for (int i = 7; i >= 0; i--) key = (key << 8) | d[i];
    const uint8_t *v = d + 8;
    size_t len = n - 8, id_len;
    uint64_t th;
    const char *id;
    const void *vec;
    int dim;
    if (state_store_item_decode(v, len, &th, &id, &id_len, &vec, &dim)) return 0;
    FUZZ_CHECK((const uint8_t *)id == v + 12 && id_len <= len - 12 && (const uint8_t *)vec == v + 12 + id_len &&
                   dim >= 0 && 12 + id_len + (size_t)dim * 4 == len,
               "decoded fields do not add up to the value (%zu bytes: id %zu, dim %d)", len, id_len, dim);
    item_table *t = NULL;
    FUZZ_CHECK(item_table_new(&t, DIM) == 0, "out of memory");
    float scratch[DIM + 1];
    char why[160];
    memset(why, 'Z', sizeof why);
    if (dim > DIM) dim = DIM + 1;   /* never read: the dim check refuses it first */
    if (item_table_load_record(t, key, th, id, id_len, vec, dim, scratch, why, sizeof why)) {
        size_t k = strnlen(why, sizeof why);
        FUZZ_CHECK(k > 0 && k < sizeof why && !memchr(why, '\n', k), "a refusal without a one-line reason");
    } else {
        FUZZ_CHECK(dim == DIM && id_len >= 1 && id_len <= CODEC_MAX_ID_BYTES && utf8_valid(id, id_len),
                   "accepted: dim %d, id of %zu bytes", dim, id_len);
        FUZZ_CHECK(model_item_key(id, id_len) == key, "accepted under another key");
        const float *got = item_table_get(t, key);
        uint64_t h = 0;
        FUZZ_CHECK(got && !memcmp(got, vec, DIM * sizeof(float)), "the table gives other floats");
        for (int i = 0; i < DIM; i++) FUZZ_CHECK(isfinite(got[i]), "a non-finite float accepted");
        FUZZ_CHECK(item_table_text_hash(t, key, &h) == 1 && h == th, "text hash");
        const char *back = item_table_id(t, key);
        /* every byte kept (an id may hold U+0000: valid UTF-8, which the codec accepts too) */
        FUZZ_CHECK(back && !memcmp(back, id, id_len) && back[id_len] == 0, "the table gives another id");
    }
    item_table_free(t);
    return 0;
}
