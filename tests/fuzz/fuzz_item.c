/* fuzz_item: libFuzzer target over item_decode (worker/item_codec.c), the decoder of the item
 * catalogue topic, which is as untrusted as the event stream.
 *
 * Each input is decoded as a Confluent-framed record (schema id 3) and as plain Avro, with the
 * default limit and with a limit of len or len - 1. Checked:
 *   - OK: item_id and text lie inside the input, in field order, without overlap; item_id
 *     non-empty and within CODEC_MAX_ID_BYTES; text within ITEM_MAX_TEXT_BYTES; ts in range; the
 *     record re-encoded canonically (an exact-size heap copy) decodes to the same fields.
 *   - error: a known class, a one-line NUL-terminated reason starting with "<class>: ".
 *   - the limit only gates the size; the decoder never allocates.
 * Build and run: scripts/fuzz.sh (tests/fuzz/fuzz.cmake).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item_codec.h"

#define FUZZ_NAME "fuzz_item"
#include "fuzz_common.h"

#define FUZZ_SCHEMA_ID 3

typedef struct {
    codec_status st;
    item_record r;
    char reason[256];
} result;

static int inside(const char *s, size_t n, const uint8_t *lo, const uint8_t *hi) {
    const uint8_t *p = (const uint8_t *)s;
    return p && p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static void decode(const codec_in_opts *o, const uint8_t *d, size_t len, result *x, const char *what) {
    memset(x->reason, 'Z', sizeof x->reason);
    fuzz_count_begin();
    x->st = item_decode(o, d, len, &x->r, x->reason, sizeof x->reason);
    long allocs = fuzz_count_end();
    FUZZ_CHECK(allocs == 0, "%s: the decoder allocated %ld time(s)", what, allocs);
    if (x->st == CODEC_OK) {
        const item_record *r = &x->r;
        FUZZ_CHECK(inside(r->item_id, r->item_id_len, d, d + len) && inside(r->text, r->text_len, d, d + len),
                   "%s: a string outside the input", what);
        FUZZ_CHECK(r->item_id_len >= 1 && r->item_id_len <= CODEC_MAX_ID_BYTES, "%s: item_id_len %zu", what,
                   r->item_id_len);
        FUZZ_CHECK(r->text_len <= ITEM_MAX_TEXT_BYTES, "%s: text_len %zu", what, r->text_len);
        FUZZ_CHECK(r->text >= r->item_id + r->item_id_len, "%s: text overlaps item_id", what);
        FUZZ_CHECK(r->ts >= CODEC_TS_MIN && r->ts < CODEC_TS_MAX, "%s: ts %lld", what, (long long)r->ts);
        return;
    }
    FUZZ_CHECK(x->st == CODEC_E_OVERSIZED || x->st == CODEC_E_FRAMING || x->st == CODEC_E_SCHEMA_ID ||
                   x->st == CODEC_E_AVRO || x->st == CODEC_E_INVALID,
               "%s: unknown status %d", what, (int)x->st);
    size_t n = strnlen(x->reason, sizeof x->reason);
    const char *cls = codec_status_name(x->st);
    size_t cl = strlen(cls);
    FUZZ_CHECK(n < sizeof x->reason && n >= cl + 2 && !memcmp(x->reason, cls, cl) && x->reason[cl] == ':' &&
                   !memchr(x->reason, '\n', n),
               "%s: bad reason '%.*s'", what, (int)(n < 200 ? n : 200), x->reason);
}

static uint8_t *put_long(uint8_t *p, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) *p++ = (uint8_t)(z | 0x80), z >>= 7;
    *p++ = (uint8_t)z;
    return p;
}

/* The canonical encoding decodes to the same fields. */
static void roundtrip(const result *x, size_t body_len) {
    uint8_t *buf = malloc(body_len + 1), *p = buf;
    FUZZ_CHECK(buf != NULL, "out of memory");
    p = put_long(p, (int64_t)x->r.item_id_len);
    memcpy(p, x->r.item_id, x->r.item_id_len), p += x->r.item_id_len;
    p = put_long(p, (int64_t)x->r.text_len);
    if (x->r.text_len) memcpy(p, x->r.text, x->r.text_len), p += x->r.text_len;
    p = put_long(p, x->r.ts);
    size_t n = (size_t)(p - buf);
    FUZZ_CHECK(n <= body_len, "canonical encoding longer than the input (%zu > %zu)", n, body_len);
    uint8_t *exact = malloc(n ? n : 1);
    FUZZ_CHECK(exact != NULL, "out of memory");
    memcpy(exact, buf, n);
    free(buf);
    codec_in_opts avro = {WIRE_AVRO, 0, 0};
    result y;
    decode(&avro, exact, n, &y, "re-encoded");
    FUZZ_CHECK(y.st == CODEC_OK && y.r.item_id_len == x->r.item_id_len && y.r.text_len == x->r.text_len &&
                   y.r.ts == x->r.ts && !memcmp(y.r.item_id, x->r.item_id, x->r.item_id_len) &&
                   (!x->r.text_len || !memcmp(y.r.text, x->r.text, x->r.text_len)),
               "the re-encoded record decodes differently (%s)", codec_status_name(y.st));
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const codec_in_opts forms[2] = {{WIRE_CONFLUENT, FUZZ_SCHEMA_ID, 0}, {WIRE_AVRO, 0, 0}};
    size_t edge = size > 1 ? size - (size_t)(data[size / 2] & 1) : 1;
    for (int k = 0; k < 2; k++) {
        result x, lim;
        decode(&forms[k], data, size, &x, k ? "avro" : "confluent");
        if (x.st == CODEC_OK) roundtrip(&x, k ? size : size - 5);
        codec_in_opts o = forms[k];
        o.max_bytes = edge;
        decode(&o, data, size, &lim, "limit");
        if (size > edge) FUZZ_CHECK(lim.st == CODEC_E_OVERSIZED, "over the limit gave %s", codec_status_name(lim.st));
        else FUZZ_CHECK(lim.st == x.st, "within the limit: %s vs %s", codec_status_name(lim.st), codec_status_name(x.st));
    }
    return 0;
}
