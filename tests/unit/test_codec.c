/* test_codec: the hand codecs (worker/codec.c) against avro-c's generic API (worker/avro_tools.c).
 *
 * - UserAction: random records written by avro-c decode to the same fields with the hand decoder.
 * - InterestVector: random records (dims 0, 1, 64, 300; top_items absent, empty, present; unicode
 *   strings; extreme longs) hand-encoded are byte-for-byte avro-c's encoding and avro-c reads
 *   them back equal.
 * - `ievo consume`'s JSON line of an InterestVector: every field, in order, escaped, NaN as null.
 * - Every malformed class yields its status and a one-line reason naming the problem, and the
 *   decoder never allocates (checked with mallinfo2 outside ASan builds).
 * - A small benchmark (ns per record, hand vs avro-c) is printed; it never fails the test.
 */
#include <avro.h>
#include <float.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <jansson.h>

#include "avro_tools.h"
#include "check.h"
#include "clock.h"
#include "codec.h"
#include "schemas.h"

static uint64_t g_rng = 0x1234567887654321ULL;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static uint32_t rnd_below(uint32_t n) { return (uint32_t)(rnd() % n); }

/* Random UTF-8 text of up to max_bytes: ASCII mixed with 2-, 3- and 4-byte characters. */
static size_t rnd_text(char *buf, size_t max_bytes, size_t min_bytes) {
    static const char *const pieces[] = {"a", "Z", "7", "-", " ", "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
                                         "\xf0\x9f\x98\x80", "\"", "\\", "\x01"};
    size_t target = min_bytes + (max_bytes > min_bytes ? rnd_below((uint32_t)(max_bytes - min_bytes + 1)) : 0);
    size_t n = 0;
    while (n < target) {
        const char *p = pieces[rnd_below(sizeof pieces / sizeof pieces[0])];
        size_t k = strlen(p);
        if (n + k > max_bytes) break;
        memcpy(buf + n, p, k);
        n += k;
    }
    if (n < min_bytes) { memset(buf + n, 'x', min_bytes - n); n = min_bytes; }
    return n;
}

static int64_t rnd_long(void) {
    switch (rnd_below(6)) {
    case 0: return 0;
    case 1: return INT64_MAX;
    case 2: return INT64_MIN;
    case 3: return -1;
    case 4: return (int64_t)(rnd() >> rnd_below(64));
    default: return -(int64_t)(rnd() >> (1 + rnd_below(63)));
    }
}

static float rnd_float(void) {
    switch (rnd_below(8)) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return FLT_MAX;
    case 3: return -FLT_MIN / 4;   /* denormal */
    default: return (float)((double)(int64_t)rnd() / 9.2e18 * 1000.0);
    }
}

static const codec_in_opts g_in_confluent = {WIRE_CONFLUENT, 1, 0};
static const codec_in_opts g_in_avro = {WIRE_AVRO, 0, 0};

/* ---- UserAction: avro-c writes, the hand decoder reads ------------------------------------ */

static int same_str(const char *a, size_t an, const char *b, size_t bn) { return an == bn && (an == 0 || memcmp(a, b, an) == 0); }

static void test_user_action_roundtrip(void) {
    char err[256], reason[256];
    static const char *const actions[] = {"view", "click", "purchase", "rate", "search"};
    for (int fmt = 0; fmt < 2; fmt++) {
        avro_tools_ua_writer *w = avro_tools_ua_writer_new((wire_format)fmt, 1, err, sizeof err);
        REQUIRE(w, "%s", err);
        const codec_in_opts *in = fmt == WIRE_CONFLUENT ? &g_in_confluent : &g_in_avro;
        for (int iter = 0; iter < 3000; iter++) {
            char ub[CODEC_MAX_ID_BYTES], ib[CODEC_MAX_ID_BYTES], tb[400];
            user_action ua = {0};
            ua.user_id = ub;
            ua.user_id_len = rnd_text(ub, iter % 100 == 0 ? CODEC_MAX_ID_BYTES : 40, 1);
            ua.item_id = ib;
            ua.item_id_len = rnd_text(ib, iter % 101 == 0 ? CODEC_MAX_ID_BYTES : 20, 1);
            ua.action = actions[rnd_below(5)];
            ua.action_len = strlen(ua.action);
            ua.ts = iter == 0 ? CODEC_TS_MIN : iter == 1 ? CODEC_TS_MAX - 1 : (int64_t)(rnd() % (uint64_t)CODEC_TS_MAX);
            ua.has_value = rnd_below(2);
            if (ua.has_value) ua.value = rnd_float();
            ua.has_text = rnd_below(3) == 0;
            if (ua.has_text) {
                ua.text = tb;
                ua.text_len = rnd_text(tb, sizeof tb, 0);   /* 0..400: empty, 1-byte and 2-byte lengths */
            }
            const uint8_t *buf;
            size_t len;
            REQUIRE(avro_tools_ua_write(w, &ua, &buf, &len, err, sizeof err) == 0, "%s", err);
            user_action got;
            codec_status st = codec_decode_user_action(in, buf, len, &got, reason, sizeof reason);
            CHECK(st == CODEC_OK, "iter %d fmt %d: %s", iter, fmt, reason);
            if (st != CODEC_OK) continue;
            CHECK(same_str(got.user_id, got.user_id_len, ua.user_id, ua.user_id_len), "user_id differs (iter %d)", iter);
            CHECK(same_str(got.item_id, got.item_id_len, ua.item_id, ua.item_id_len), "item_id differs (iter %d)", iter);
            CHECK(same_str(got.action, got.action_len, ua.action, ua.action_len), "action differs (iter %d)", iter);
            CHECK(got.ts == ua.ts, "ts %lld != %lld", (long long)got.ts, (long long)ua.ts);
            CHECK(got.has_value == ua.has_value, "has_value differs (iter %d)", iter);
            if (ua.has_value) CHECK(memcmp(&got.value, &ua.value, 4) == 0, "value %g != %g", got.value, ua.value);
            CHECK(got.has_text == ua.has_text, "has_text differs (iter %d)", iter);
            if (ua.has_text) CHECK(same_str(got.text, got.text_len, ua.text, ua.text_len), "text differs (iter %d)", iter);
            /* Zero-copy: the strings point into the payload. */
            CHECK((const uint8_t *)got.user_id > buf && (const uint8_t *)got.user_id < buf + len, "user_id not in payload");
        }
        avro_tools_ua_writer_free(w);
    }
}

/* ---- InterestVector: hand encoder == avro-c, and avro-c reads it back ---------------------- */

static void check_iv_equal(const interest_vector *a, const interest_vector *b, const char *what) {
    CHECK(same_str(a->user_id, a->user_id_len, b->user_id, b->user_id_len), "%s: user_id", what);
    CHECK(a->ts == b->ts && a->events == b->events, "%s: ts/events", what);
    CHECK(a->dim == b->dim, "%s: dim %d != %d", what, a->dim, b->dim);
    if (a->dim == b->dim && a->dim > 0) CHECK(memcmp(a->vector, b->vector, 4 * (size_t)a->dim) == 0, "%s: vector", what);
    CHECK(memcmp(&a->drift, &b->drift, 4) == 0, "%s: drift", what);
    CHECK(same_str(a->model, a->model_len, b->model, b->model_len), "%s: model", what);
    CHECK(a->source_partition == b->source_partition && a->source_offset == b->source_offset, "%s: source", what);
    CHECK(!a->top_items == !b->top_items, "%s: top_items presence", what);
    if (a->top_items && b->top_items) {
        CHECK(a->n_top_items == b->n_top_items, "%s: n_top_items %d != %d", what, a->n_top_items, b->n_top_items);
        for (int i = 0; i < a->n_top_items && i < b->n_top_items; i++) {
            CHECK(same_str(a->top_items[i].item_id, a->top_items[i].item_id_len, b->top_items[i].item_id,
                           b->top_items[i].item_id_len), "%s: top item %d id", what, i);
            CHECK(memcmp(&a->top_items[i].score, &b->top_items[i].score, 4) == 0, "%s: top item %d score", what, i);
        }
    }
}

static void test_interest_vector_bytes(void) {
    char err[256];
    static const int dims[] = {0, 1, 64, 300};
    static uint8_t hand[1 << 16];
    for (int fmt = 0; fmt < 2; fmt++) {
        avro_tools_iv_writer *w = avro_tools_iv_writer_new((wire_format)fmt, 7, err, sizeof err);
        avro_tools_iv_reader *r = avro_tools_iv_reader_new((wire_format)fmt, err, sizeof err);
        REQUIRE(w && r, "%s", err);
        codec_out_opts oo = {(wire_format)fmt, 7};
        for (int iter = 0; iter < 800; iter++) {
            float vec[300];
            char ub[100], mb[60], tid[20][40];
            codec_top_item top[20];
            interest_vector iv = {0};
            iv.user_id = ub;
            iv.user_id_len = rnd_text(ub, sizeof ub, iter % 7 == 0 ? 0 : 1);
            iv.ts = rnd_long();
            iv.events = rnd_long();
            iv.dim = dims[iter % 4];
            for (int i = 0; i < iv.dim; i++) vec[i] = rnd_float();
            iv.vector = vec;
            iv.drift = rnd_float();
            iv.model = mb;
            iv.model_len = rnd_text(mb, sizeof mb, 0);
            iv.source_partition = (int32_t)rnd_long();
            iv.source_offset = rnd_long();
            int mode = (iter / 4) % 3;   /* 0: null, 1: present but empty, 2: 1..20 items */
            if (mode > 0) {
                iv.top_items = top;
                iv.n_top_items = mode == 1 ? 0 : 1 + (int)rnd_below(20);
                for (int i = 0; i < iv.n_top_items; i++) {
                    top[i].item_id = tid[i];
                    top[i].item_id_len = rnd_text(tid[i], sizeof tid[i], 0);
                    top[i].score = rnd_float();
                }
            }
            const uint8_t *ref;
            size_t ref_len;
            REQUIRE(avro_tools_iv_write(w, &iv, &ref, &ref_len, err, sizeof err) == 0, "%s", err);
            size_t n = codec_encode_interest_vector(&oo, &iv, hand, sizeof hand);
            CHECK(n == ref_len, "iter %d fmt %d dim %d: hand %zu bytes, avro-c %zu", iter, fmt, iv.dim, n, ref_len);
            if (n == ref_len) CHECK(memcmp(hand, ref, n) == 0, "iter %d fmt %d dim %d: bytes differ", iter, fmt, iv.dim);

            /* Too small a buffer: returns the size needed and writes nothing. */
            static uint8_t small[1 << 16];
            memset(small, 0xAB, n);
            size_t n2 = codec_encode_interest_vector(&oo, &iv, small, n - 1);
            CHECK(n2 == n, "short buffer: %zu != %zu", n2, n);
            int untouched = 1;
            for (size_t i = 0; i + 1 < n; i++) untouched &= small[i] == 0xAB;
            CHECK(untouched, "short buffer was written to");

            interest_vector back;
            int32_t sid = -1;
            CHECK(avro_tools_iv_read(r, hand, n, &back, &sid, err, sizeof err) == 0, "iter %d: avro-c read: %s", iter, err);
            check_iv_equal(&iv, &back, "avro-c read of hand encoding");
            if (fmt == WIRE_CONFLUENT) CHECK(sid == 7, "schema id %d", sid);
        }
        /* A trailing byte is noticed by the reader (the consume tool's check). */
        interest_vector iv = {.user_id = "u", .user_id_len = 1, .model = "m", .model_len = 1}, back;
        size_t n = codec_encode_interest_vector(&oo, &iv, hand, sizeof hand);
        hand[n] = 0;
        CHECK(avro_tools_iv_read(r, hand, n + 1, &back, NULL, err, sizeof err) != 0, "trailing byte accepted");
        CHECK(strstr(err, "trailing") != NULL, "reason: %s", err);
        avro_tools_iv_writer_free(w);
        avro_tools_iv_reader_free(r);
    }
    /* Known bytes: the empty vector and null top_items are single zeros. */
    interest_vector iv = {.user_id = "ab", .user_id_len = 2, .ts = 1, .events = -1, .model = "", .model_len = 0,
                          .source_partition = 3, .source_offset = 64};
    codec_out_opts oo = {WIRE_CONFLUENT, 258};
    static const uint8_t want[] = {0, 0, 0, 1, 2, 4, 'a', 'b', 2, 1, 0, 0, 0, 0, 0, 0, 6, 0x80, 1, 0};
    uint8_t out[64];
    size_t n = codec_encode_interest_vector(&oo, &iv, out, sizeof out);
    CHECK(n == sizeof want && memcmp(out, want, n) == 0, "known bytes differ (%zu bytes)", n);
}

/* ---- malformed input ----------------------------------------------------------------------- */

typedef struct {
    uint8_t b[1 << 18];
    size_t n;
} raw;
static void raw_byte(raw *r, uint8_t x) { r->b[r->n++] = x; }
static void raw_long(raw *r, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) { raw_byte(r, (uint8_t)(z | 0x80)); z >>= 7; }
    raw_byte(r, (uint8_t)z);
}
static void raw_str(raw *r, const char *s, size_t n) { raw_long(r, (int64_t)n); memcpy(r->b + r->n, s, n); r->n += n; }
static void raw_float(raw *r, float f) { memcpy(r->b + r->n, &f, 4); r->n += 4; }
static void raw_header(raw *r, int32_t id) { codec_put_confluent_header(r->b, id); r->n = 5; }

/* A valid Confluent UserAction with value and text; fields may be overridden by the caller. */
static void raw_ua(raw *r, const char *user, const char *item, const char *action, int64_t ts, int has_value,
                   float value, const char *text) {
    raw_header(r, 1);
    raw_str(r, user, strlen(user));
    raw_str(r, item, strlen(item));
    raw_str(r, action, strlen(action));
    raw_long(r, ts);
    if (has_value) { raw_long(r, 1); raw_float(r, value); } else raw_long(r, 0);
    if (text) { raw_long(r, 1); raw_str(r, text, strlen(text)); } else raw_long(r, 0);
}

static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void expect(const codec_in_opts *o, const raw *r, codec_status want, const char *needle, const char *what) {
    user_action ua;
    char reason[256];
    size_t before = heap_in_use();
    codec_status st = codec_decode_user_action(o, r->b, r->n, &ua, reason, sizeof reason);
    size_t after = heap_in_use();
    CHECK(st == want, "%s: got %s (%s), want %s", what, codec_status_name(st), reason, codec_status_name(want));
    CHECK(after == before, "%s: decoder allocated %zu bytes", what, after - before);
    if (want == CODEC_OK) return;
    CHECK(strncmp(reason, codec_status_name(want), strlen(codec_status_name(want))) == 0, "%s: reason '%s' lacks the class",
          what, reason);
    if (needle) CHECK(strstr(reason, needle) != NULL, "%s: reason '%s' lacks '%s'", what, reason, needle);
    CHECK(!strchr(reason, '\n'), "%s: reason is not one line", what);
}

static void test_malformed(void) {
    raw r, t;
    char reason[256];
    user_action ua;

    raw_ua(&r, "u1", "i1", "view", 1700000000000LL, 1, 2.5f, "hello");
    CHECK(codec_decode_user_action(&g_in_confluent, r.b, r.n, &ua, reason, sizeof reason) == CODEC_OK, "%s", reason);

    /* Truncated at every byte position. */
    for (size_t cut = 0; cut < r.n; cut++) {
        t = r;
        t.n = cut;
        char what[64];
        snprintf(what, sizeof what, "truncated at %zu", cut);
        if (cut < 5) expect(&g_in_confluent, &t, CODEC_E_FRAMING, "header", what);
        else expect(&g_in_confluent, &t, CODEC_E_AVRO, "truncated in field", what);
        /* The same body as plain Avro. */
        raw body = {{0}, 0};
        memcpy(body.b, r.b + 5, cut >= 5 ? cut - 5 : 0);
        body.n = cut >= 5 ? cut - 5 : 0;
        if (body.n < r.n - 5) expect(&g_in_avro, &body, CODEC_E_AVRO, "truncated in field", what);
    }
    t = r; t.b[0] = 1; expect(&g_in_confluent, &t, CODEC_E_FRAMING, "magic", "wrong magic");
    t = r; t.b[4] = 2; expect(&g_in_confluent, &t, CODEC_E_SCHEMA_ID, "schema id 2, expected 1", "unknown schema id");
    t = r; t.n = 3; expect(&g_in_confluent, &t, CODEC_E_FRAMING, "shorter", "too short for the header");

    /* Bad union index: value branch 2, then -1; text branch 5. */
    raw_header(&t, 1); raw_str(&t, "u", 1); raw_str(&t, "i", 1); raw_str(&t, "v", 1); raw_long(&t, 5); raw_long(&t, 2);
    raw_float(&t, 1); raw_long(&t, 0);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "bad union branch 2 in field value", "union index 2");
    raw_header(&t, 1); raw_str(&t, "u", 1); raw_str(&t, "i", 1); raw_str(&t, "v", 1); raw_long(&t, 5); raw_long(&t, -1);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "bad union branch -1", "union index -1");
    raw_header(&t, 1); raw_str(&t, "u", 1); raw_str(&t, "i", 1); raw_str(&t, "v", 1); raw_long(&t, 5); raw_long(&t, 0);
    raw_long(&t, 5);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "field text", "text union index 5");

    /* Negative and huge string lengths, in each string field. */
    raw_header(&t, 1); raw_long(&t, -1);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "negative length -1 in field user_id", "negative length");
    raw_header(&t, 1); raw_long(&t, (int64_t)1 << 62); raw_str(&t, "x", 1);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "4611686018427387904", "length 2^62");
    raw_header(&t, 1); raw_str(&t, "u", 1); raw_long(&t, INT64_MAX);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "field item_id", "length INT64_MAX");
    raw_header(&t, 1); raw_str(&t, "u", 1); raw_str(&t, "i", 1); raw_long(&t, INT64_MIN);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "negative length", "length INT64_MIN in action");
    raw_header(&t, 1); raw_str(&t, "u", 1); raw_str(&t, "i", 1); raw_str(&t, "v", 1); raw_long(&t, 5); raw_long(&t, 0);
    raw_long(&t, 1); raw_long(&t, (int64_t)1 << 62);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "field text", "huge text length");

    /* Varints: 11 continuation bytes, and a 10th byte wider than 64 bits. */
    raw_header(&t, 1);
    for (int i = 0; i < 11; i++) raw_byte(&t, 0xFF);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "bad varint in field user_id", "varint too long");
    raw_header(&t, 1); raw_str(&t, "u", 1); raw_str(&t, "i", 1); raw_str(&t, "v", 1);
    for (int i = 0; i < 9; i++) raw_byte(&t, 0x80);
    raw_byte(&t, 0x02);
    expect(&g_in_confluent, &t, CODEC_E_AVRO, "bad varint in field ts", "varint overflow");

    t = r; t.b[t.n++] = 0; expect(&g_in_confluent, &t, CODEC_E_AVRO, "1 trailing bytes", "trailing byte");

    /* Validation. */
    raw_ua(&t, "", "i", "view", 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "user_id is empty", "empty user_id");
    raw_ua(&t, "u", "", "view", 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "item_id is empty", "empty item_id");
    raw_ua(&t, "u", "i", "", 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "action is empty", "empty action");
    raw_ua(&t, "u\xff", "i", "view", 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "user_id is not valid UTF-8", "user_id not UTF-8");
    raw_ua(&t, "u", "i\xed\xa0\x80", "view", 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "item_id is not valid UTF-8", "item_id a surrogate");
    raw_ua(&t, "u", "i", "vi\xc0\xaf" "ew", 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "action is not valid UTF-8", "action overlong");
    raw_ua(&t, "u", "i", "view", 1, 0, 0, "ok \xf4\x90\x80\x80"); expect(&g_in_confluent, &t, CODEC_E_INVALID, "text is not valid UTF-8", "text above U+10FFFF");
    raw_ua(&t, "u\xc3\xa9", "i", "view", 1, 0, 0, "caf\xc3\xa9 \xe2\x82\xac"); expect(&g_in_confluent, &t, CODEC_OK, "", "valid UTF-8 kept");
    raw_ua(&t, "u", "i", "view", 1, 1, NAN, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "value is NaN", "NaN");
    raw_ua(&t, "u", "i", "view", 1, 1, INFINITY, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "value is Inf", "Inf");
    raw_ua(&t, "u", "i", "view", 1, 1, -INFINITY, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "value is Inf", "-Inf");
    raw_ua(&t, "u", "i", "view", -1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "ts -1 is outside", "ts -1");
    raw_ua(&t, "u", "i", "view", CODEC_TS_MAX, 0, 0, NULL);
    expect(&g_in_confluent, &t, CODEC_E_INVALID, "ts 4102444800000 is outside", "ts at TS_MAX");
    raw_ua(&t, "u", "i", "view", INT64_MIN, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "outside", "ts INT64_MIN");

    static char big[CODEC_MAX_TEXT_BYTES + 2];
    memset(big, 'x', sizeof big - 1);
    big[CODEC_MAX_ID_BYTES + 1] = 0;
    raw_ua(&t, big, "i", "view", 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "user_id is 513 bytes", "long user_id");
    raw_ua(&t, "u", big, "view", 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "item_id is 513 bytes", "long item_id");
    big[CODEC_MAX_ID_BYTES + 1] = 'x';
    big[CODEC_MAX_ID_BYTES] = 0;
    raw_ua(&t, big, "i", "view", 1, 0, 0, NULL);
    expect(&g_in_confluent, &t, CODEC_OK, NULL, "512-byte user_id is fine");
    big[CODEC_MAX_ID_BYTES] = 'x';
    big[CODEC_MAX_ACTION_BYTES + 1] = 0;
    raw_ua(&t, "u", "i", big, 1, 0, 0, NULL); expect(&g_in_confluent, &t, CODEC_E_INVALID, "action is 65 bytes", "long action");
    big[CODEC_MAX_ACTION_BYTES + 1] = 'x';
    big[CODEC_MAX_TEXT_BYTES + 1] = 0;
    raw_ua(&t, "u", "i", "view", 1, 0, 0, big); expect(&g_in_confluent, &t, CODEC_E_INVALID, "text is 65537 bytes", "long text");

    /* Oversized: checked before anything else. */
    codec_in_opts small = {WIRE_CONFLUENT, 1, 20};
    raw_ua(&t, "u", "i", "view", 1, 0, 0, "0123456789");
    expect(&small, &t, CODEC_E_OVERSIZED, "limit 20", "oversized");
    t.b[0] = 9;   /* even with a bad header */
    expect(&small, &t, CODEC_E_OVERSIZED, NULL, "oversized before framing");

    CHECK(strcmp(codec_status_name(CODEC_E_SCHEMA_ID), "schema_id") == 0, "status name");
    CHECK(wire_format_parse("confluent") == WIRE_CONFLUENT && wire_format_parse("avro") == WIRE_AVRO &&
          wire_format_parse("json") == -1, "wire_format_parse");
}

/* ---- `ievo consume`'s JSON lines ------------------------------------------------------------- */

/* What avro_tools_iv_write_json writes for iv, parsed back (one line, one object). */
static json_t *iv_json_line(const interest_vector *iv, int32_t partition, int64_t offset, char **text) {
    size_t n = 0;
    FILE *f = open_memstream(text, &n);
    char err[256];
    REQUIRE(f, "open_memstream");
    CHECK(avro_tools_iv_write_json(iv, partition, offset, f, err, sizeof err) == 0, "%s", err);
    fclose(f);
    CHECK(n > 0 && (*text)[n - 1] == '\n' && !memchr(*text, '\n', n - 1), "not one line: %s", *text);
    json_error_t jerr;
    json_t *o = json_loads(*text, JSON_REJECT_DUPLICATES, &jerr);
    REQUIRE(o, "not JSON (%s): %s", jerr.text, *text);
    return o;
}

static void test_interest_vector_json(void) {
    const float vec[3] = {0.1f, -2.0f, 16777217.0f};
    const codec_top_item top[2] = {{"i1", 2, 0.5f}, {"\xff", 1, NAN}};
    interest_vector iv = {"u\"\n", 3, 1704067200123LL, 17, vec, 3, NAN, "m\xc3\xa9", 3, 5, 123456, top, 2};
    char *text = NULL;
    json_t *o = iv_json_line(&iv, 7, 99, &text);
    /* every schema field in the schema's order, then the Kafka record's coordinates */
    static const char *const keys[] = {"user_id", "ts",     "events",      "vector",    "drift",     "model",
                                       "source_partition", "source_offset", "top_items", "partition", "offset"};
    const char *at = text;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char quoted[40];
        snprintf(quoted, sizeof quoted, "\"%s\":", keys[i]);
        const char *p = strstr(at, quoted);
        CHECK(p != NULL, "key %s missing or out of order: %s", keys[i], text);
        if (p) at = p;
    }
    CHECK(json_object_size(o) == 11, "%s", text);
    CHECK(!strcmp(json_string_value(json_object_get(o, "user_id")), "u\"\n"), "user_id");
    CHECK(!strcmp(json_string_value(json_object_get(o, "model")), "m\xc3\xa9"), "model");
    CHECK(json_integer_value(json_object_get(o, "ts")) == 1704067200123LL &&
              json_integer_value(json_object_get(o, "events")) == 17 &&
              json_integer_value(json_object_get(o, "source_partition")) == 5 &&
              json_integer_value(json_object_get(o, "source_offset")) == 123456 &&
              json_integer_value(json_object_get(o, "partition")) == 7 &&
              json_integer_value(json_object_get(o, "offset")) == 99,
          "integers: %s", text);
    json_t *v = json_object_get(o, "vector");
    CHECK(json_array_size(v) == 3, "vector: %s", text);
    for (size_t i = 0; i < 3 && i < json_array_size(v); i++)
        CHECK((float)json_number_value(json_array_get(v, i)) == vec[i], "vector[%zu] does not round-trip: %s", i, text);
    CHECK(json_is_null(json_object_get(o, "drift")), "NaN drift is null: %s", text);
    json_t *t = json_object_get(o, "top_items");
    CHECK(json_array_size(t) == 2 && !strcmp(json_string_value(json_object_get(json_array_get(t, 0), "item_id")), "i1") &&
              json_number_value(json_object_get(json_array_get(t, 0), "score")) == 0.5 &&
              !strcmp(json_string_value(json_object_get(json_array_get(t, 1), "item_id")), "\xef\xbf\xbd") &&
              json_is_null(json_object_get(json_array_get(t, 1), "score")),
          "top_items: %s", text);
    json_decref(o);
    free(text);
    /* no top items (null), no coordinates (partition < 0), an empty vector */
    interest_vector bare = {"u", 1, 0, 0, NULL, 0, 0.25f, "", 0, 0, 0, NULL, 0};
    o = iv_json_line(&bare, -1, 0, &text);
    CHECK(json_object_size(o) == 9 && json_is_null(json_object_get(o, "top_items")) &&
              json_array_size(json_object_get(o, "vector")) == 0 && json_number_value(json_object_get(o, "drift")) == 0.25,
          "bare: %s", text);
    json_decref(o);
    free(text);
}

/* ---- benchmark: figures only, never a failure ---------------------------------------------- */

static void bench(void) {
    char err[256], reason[256];
    int iters = getenv("IEVO_BENCH_ITERS") ? atoi(getenv("IEVO_BENCH_ITERS")) : 200000;
    if (iters <= 0) return;
    struct utsname un;
    uname(&un);
    char cpu[256] = "?";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                snprintf(cpu, sizeof cpu, "%s", c ? c + 2 : line);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(f);
    }
#if defined(__SANITIZE_ADDRESS__)
    const char *build = "ASan+UBSan";
#elif defined(__OPTIMIZE__)
    const char *build = "optimized";
#else
    const char *build = "unoptimized";
#endif
    fprintf(stderr, "bench: %s, %s %s, %s build, %d iterations\n", cpu, un.sysname, un.machine, build, iters);

    /* Decode: a typical UserAction (Confluent, value + 12-byte text). */
    avro_tools_ua_writer *w = avro_tools_ua_writer_new(WIRE_CONFLUENT, 1, err, sizeof err);
    user_action ua = {"u0012345", 8, "t07-i012", 8, "view", 4, 1704067200123LL, 1, 21.5f, 1, "t07-w3 t07-w8", 13};
    const uint8_t *buf;
    size_t len;
    avro_tools_ua_write(w, &ua, &buf, &len, err, sizeof err);
    uint8_t rec[256];
    memcpy(rec, buf, len);
    volatile size_t sink = 0;
    double t0 = clock_mono_s();
    for (int i = 0; i < iters; i++) {
        user_action got;
        codec_decode_user_action(&g_in_confluent, rec, len, &got, reason, sizeof reason);
        sink += got.user_id_len;
    }
    double hand_dec = (clock_mono_s() - t0) / iters * 1e9;
    avro_schema_t schema;
    avro_schema_from_json_length(ievo_schema_user_action_json, strlen(ievo_schema_user_action_json), &schema);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t v, fu, fi, fa, ft, fv, fx, br;
    avro_generic_value_new(iface, &v);
    avro_value_get_by_name(&v, "user_id", &fu, NULL);
    avro_value_get_by_name(&v, "item_id", &fi, NULL);
    avro_value_get_by_name(&v, "action", &fa, NULL);
    avro_value_get_by_name(&v, "ts", &ft, NULL);
    avro_value_get_by_name(&v, "value", &fv, NULL);
    avro_value_get_by_name(&v, "text", &fx, NULL);
    avro_reader_t rd = avro_reader_memory((const char *)rec + 5, (int64_t)len - 5);
    t0 = clock_mono_s();
    for (int i = 0; i < iters; i++) {
        const char *s = NULL;
        size_t n = 0;   /* avro-c's getters are macros that may return before writing them */
        int64_t ts = 0;
        float fl = 0;
        avro_reader_memory_set_source(rd, (const char *)rec + 5, (int64_t)len - 5);
        avro_value_read(rd, &v);
        avro_value_get_string(&fu, &s, &n); sink += n;
        avro_value_get_string(&fi, &s, &n); sink += n;
        avro_value_get_string(&fa, &s, &n); sink += n;
        avro_value_get_long(&ft, &ts); sink += (size_t)ts;
        avro_value_get_current_branch(&fv, &br); avro_value_get_float(&br, &fl); sink += (size_t)fl;
        avro_value_get_current_branch(&fx, &br); avro_value_get_string(&br, &s, &n); sink += n;
    }
    double avro_dec = (clock_mono_s() - t0) / iters * 1e9;
    avro_reader_free(rd);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    avro_tools_ua_writer_free(w);
    fprintf(stderr, "bench: UserAction decode (%zu B): hand %.0f ns/record, avro-c generic %.0f ns/record (%.1fx)\n", len,
            hand_dec, avro_dec, avro_dec / hand_dec);

    /* Encode: InterestVector, dim 64, 10 top items. */
    float vec[64];
    for (int i = 0; i < 64; i++) vec[i] = (float)i / 64.0f;
    codec_top_item top[10];
    for (int i = 0; i < 10; i++) top[i] = (codec_top_item){"t07-i012", 8, 0.5f};
    interest_vector iv = {"u0012345", 8, 1704067200123LL, 17, vec, 64, 0.01f, "lstm64-w16", 10, 3, 123456, NULL, 0};
    avro_tools_iv_writer *iw = avro_tools_iv_writer_new(WIRE_CONFLUENT, 2, err, sizeof err);
    codec_out_opts oo = {WIRE_CONFLUENT, 2};
    static uint8_t out[4096];
    for (int with_top = 0; with_top < 2; with_top++) {
        iv.top_items = with_top ? top : NULL;
        iv.n_top_items = with_top ? 10 : 0;
        size_t n = 0;
        t0 = clock_mono_s();
        for (int i = 0; i < iters; i++) {
            n = codec_encode_interest_vector(&oo, &iv, out, sizeof out);
            sink += out[n - 1];
        }
        double hand_enc = (clock_mono_s() - t0) / iters * 1e9;
        t0 = clock_mono_s();
        for (int i = 0; i < iters; i++) {
            avro_tools_iv_write(iw, &iv, &buf, &len, err, sizeof err);
            sink += buf[len - 1];
        }
        double avro_enc = (clock_mono_s() - t0) / iters * 1e9;
        fprintf(stderr, "bench: InterestVector encode dim 64%s (%zu B): hand %.0f ns/record, avro-c generic %.0f ns/record (%.1fx)\n",
                with_top ? " + 10 top items" : "", n, hand_enc, avro_enc, avro_enc / hand_enc);
    }
    avro_tools_iv_writer_free(iw);
    (void)sink;
}

int main(void) {
    test_user_action_roundtrip();
    test_interest_vector_bytes();
    test_malformed();
    test_interest_vector_json();
    bench();
    return check_exit("test_codec");
}
