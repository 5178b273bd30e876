/* fuzz_seeds: writes the seed corpus of fuzz_user_action into a directory, so no binary corpus
 * is committed: valid UserAction records of each shape (value and text present or absent, the
 * longest strings allowed, multi-byte UTF-8, ts at both ends of its range, padded varints) and
 * one record of each malformed class tests/unit/test_codec.c checks (truncated, framing, schema
 * id, bad union branches, negative and huge lengths, over-long varints, trailing bytes, empty
 * or too-long fields, NaN / Inf, ts out of range). All are Confluent-framed with schema id 1;
 * the target also decodes each as plain Avro and the body after the header as plain Avro.
 *
 * --item: the Item target's seeds. --resolve: fuzz_resolve's, byte strings of a few lengths (its
 * generator reads any bytes as choices; the lengths decide how far the bytes carry it).
 *
 * usage: fuzz_seeds [--item | --resolve] DIR   (DIR must exist; files are named seed-NNN-<what>)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

typedef struct {
    uint8_t b[CODEC_MAX_TEXT_BYTES + 4096];
    size_t n;
} seed;

static const char *g_dir;
static int g_count, g_failed;

static void s_byte(seed *s, uint8_t x) { s->b[s->n++] = x; }
static void s_long(seed *s, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        s_byte(s, (uint8_t)(z | 0x80));
        z >>= 7;
    }
    s_byte(s, (uint8_t)z);
}
static void s_bytes(seed *s, const void *p, size_t n) {
    memcpy(s->b + s->n, p, n);
    s->n += n;
}
static void s_str(seed *s, const char *p, size_t n) {
    s_long(s, (int64_t)n);
    s_bytes(s, p, n);
}
static void s_cstr(seed *s, const char *p) { s_str(s, p, strlen(p)); }
static void s_float(seed *s, float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    for (int i = 0; i < 4; i++) s_byte(s, (uint8_t)(bits >> (8 * i)));
}
static void s_header(seed *s, int32_t id) {
    s->n = 0;
    codec_put_confluent_header(s->b, id);
    s->n = 5;
}

/* A Confluent record; value_kind 0: absent, 1: the value; text NULL: absent. */
static void s_record(seed *s, const char *user, size_t ul, const char *item, size_t il, const char *action, size_t al,
                     int64_t ts, int has_value, float value, const char *text, size_t tl) {
    s_header(s, 1);
    s_str(s, user, ul);
    s_str(s, item, il);
    s_str(s, action, al);
    s_long(s, ts);
    s_long(s, has_value);
    if (has_value) s_float(s, value);
    s_long(s, text != NULL);
    if (text) s_str(s, text, tl);
}
static void s_rec(seed *s, const char *u, const char *i, const char *a, int64_t ts, int has_value, float value,
                  const char *text) {
    s_record(s, u, strlen(u), i, strlen(i), a, strlen(a), ts, has_value, value, text, text ? strlen(text) : 0);
}
#define REC s_rec

static void emit(const seed *s, const char *what) {
    char path[4096];
    snprintf(path, sizeof path, "%s/seed-%03d-%s", g_dir, g_count++, what);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
        fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
        g_failed = 1;
    }
}

/* The Item seeds (fuzz_item, schema id 3): valid shapes and one of each malformed class. */
static int item_seeds(void) {
    static seed s;
    const int64_t ts = 1700000000000LL;
    s_header(&s, 3); s_cstr(&s, "1"); s_cstr(&s, "Toy Story (1995). Animation, Children's, Comedy"); s_long(&s, ts);
    emit(&s, "item-valid");
    s_header(&s, 3); s_cstr(&s, "i"); s_cstr(&s, ""); s_long(&s, 0); emit(&s, "item-valid-empty-text");
    s_header(&s, 3); s_cstr(&s, "\xe6\x97\xa5"); s_cstr(&s, "\xc3\xa9t\xc3\xa9"); s_long(&s, CODEC_TS_MAX - 1);
    emit(&s, "item-valid-utf8-ts-max");
    s_header(&s, 3); s_cstr(&s, ""); s_cstr(&s, "x"); s_long(&s, ts); emit(&s, "item-empty-id");
    s_header(&s, 3); s_cstr(&s, "1"); s_long(&s, -3); emit(&s, "item-negative-length");
    s_header(&s, 3); s_cstr(&s, "1"); s_cstr(&s, "x"); s_long(&s, -1); emit(&s, "item-ts-negative");
    s_header(&s, 3); s_cstr(&s, "1"); s_cstr(&s, "x"); s_long(&s, ts); s_byte(&s, 0); emit(&s, "item-trailing");
    s_header(&s, 1); s_cstr(&s, "1"); s_cstr(&s, "x"); s_long(&s, ts); emit(&s, "item-schema-id-1");
    s_header(&s, 3); s_cstr(&s, "1"); for (int i = 0; i < 11; i++) s_byte(&s, 0xff); emit(&s, "item-long-varint");
    return g_failed ? 1 : 0;
}

/* fuzz_resolve: xorshift bytes of lengths 16 to 2048. */
static int resolve_seeds(void) {
    static seed s;
    uint64_t x = 0x2545F4914F6CDD1DULL;
    for (size_t n = 16; n <= 2048; n *= 2)
        for (int k = 0; k < 4; k++) {
            s.n = 0;
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                s_byte(&s, (uint8_t)(x >> 24));
            }
            char what[32];
            snprintf(what, sizeof what, "random-%zu-%d", n, k);
            emit(&s, what);
        }
    return g_failed ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--item")) {
        g_dir = argv[2];
        return item_seeds();
    }
    if (argc == 3 && !strcmp(argv[1], "--resolve")) {
        g_dir = argv[2];
        return resolve_seeds();
    }
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds [--item | --resolve] DIR\n");
        return 2;
    }
    g_dir = argv[1];
    static seed s, t;
    static char big[CODEC_MAX_TEXT_BYTES + 2];
    memset(big, 'x', sizeof big);
    const int64_t ts = 1700000000000LL;

    /* Valid shapes. */
    REC(&s, "u", "i", "v", 0, 0, 0, NULL); emit(&s, "valid-minimal");
    REC(&s, "u0012345", "t07-i012", "view", 1704067200123LL, 1, 21.5f, "t07-w3 t07-w8"); emit(&s, "valid-full");
    REC(&s, "u1", "i1", "click", ts, 1, -0.0f, NULL); emit(&s, "valid-value");
    REC(&s, "u1", "i1", "search", ts, 0, 0, "hello world"); emit(&s, "valid-text");
    REC(&s, "u1", "i1", "rate", ts, 0, 0, ""); emit(&s, "valid-empty-text");
    REC(&s, "\xc3\xa9t\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80", CODEC_TS_MAX - 1, 1, 3.4e38f,
        "\"\\\x01"); emit(&s, "valid-utf8-ts-max");
    s_record(&s, big, CODEC_MAX_ID_BYTES, big, CODEC_MAX_ID_BYTES, big, CODEC_MAX_ACTION_BYTES, ts, 1, 1e-45f, big, 300);
    emit(&s, "valid-longest-ids");
    /* Padded (non-canonical) varints are valid Avro: ts 5 written in three bytes. */
    s_header(&s, 1); s_cstr(&s, "u"); s_cstr(&s, "i"); s_cstr(&s, "v");
    s_byte(&s, 0x8a); s_byte(&s, 0x80); s_byte(&s, 0x00); s_long(&s, 0); s_long(&s, 0);
    emit(&s, "valid-padded-varint");

    /* Malformed: the classes of tests/unit/test_codec.c. */
    REC(&t, "u1", "i1", "view", ts, 1, 2.5f, "hello");
    for (size_t cut = 3; cut < t.n; cut += 4) {
        s = t;
        s.n = cut;
        char what[64];
        snprintf(what, sizeof what, "truncated-%zu", cut);
        emit(&s, what);
    }
    s = t; s.b[0] = 1; emit(&s, "wrong-magic");
    s = t; s.b[4] = 2; emit(&s, "unknown-schema-id");
    s = t; s.n = 3; emit(&s, "too-short");
    s_header(&s, 1); s_cstr(&s, "u"); s_cstr(&s, "i"); s_cstr(&s, "v"); s_long(&s, 5); s_long(&s, 2);
    s_float(&s, 1); s_long(&s, 0); emit(&s, "value-branch-2");
    s_header(&s, 1); s_cstr(&s, "u"); s_cstr(&s, "i"); s_cstr(&s, "v"); s_long(&s, 5); s_long(&s, -1);
    emit(&s, "value-branch-minus-1");
    s_header(&s, 1); s_cstr(&s, "u"); s_cstr(&s, "i"); s_cstr(&s, "v"); s_long(&s, 5); s_long(&s, 0); s_long(&s, 5);
    emit(&s, "text-branch-5");
    s_header(&s, 1); s_long(&s, -1); emit(&s, "negative-length");
    s_header(&s, 1); s_long(&s, (int64_t)1 << 62); s_cstr(&s, "x"); emit(&s, "length-2-62");
    s_header(&s, 1); s_cstr(&s, "u"); s_long(&s, INT64_MAX); emit(&s, "length-int64-max");
    s_header(&s, 1); s_cstr(&s, "u"); s_cstr(&s, "i"); s_long(&s, INT64_MIN); emit(&s, "length-int64-min");
    s_header(&s, 1); s_cstr(&s, "u"); s_cstr(&s, "i"); s_cstr(&s, "v"); s_long(&s, 5); s_long(&s, 0);
    s_long(&s, 1); s_long(&s, (int64_t)1 << 62); emit(&s, "huge-text-length");
    s_header(&s, 1); for (int i = 0; i < 11; i++) s_byte(&s, 0xFF); emit(&s, "varint-11-bytes");
    s_header(&s, 1); s_cstr(&s, "u"); s_cstr(&s, "i"); s_cstr(&s, "v");
    for (int i = 0; i < 9; i++) s_byte(&s, 0x80);
    s_byte(&s, 0x02); emit(&s, "varint-overflow");
    s = t; s.b[s.n++] = 0; emit(&s, "trailing-byte");
    REC(&s, "", "i", "view", 1, 0, 0, NULL); emit(&s, "empty-user-id");
    REC(&s, "u", "", "view", 1, 0, 0, NULL); emit(&s, "empty-item-id");
    REC(&s, "u", "i", "", 1, 0, 0, NULL); emit(&s, "empty-action");
    REC(&s, "u", "i", "view", 1, 1, NAN, NULL); emit(&s, "value-nan");
    REC(&s, "u", "i", "view", 1, 1, INFINITY, NULL); emit(&s, "value-inf");
    REC(&s, "u", "i", "view", 1, 1, -INFINITY, NULL); emit(&s, "value-minus-inf");
    REC(&s, "u", "i", "view", -1, 0, 0, NULL); emit(&s, "ts-minus-1");
    REC(&s, "u", "i", "view", CODEC_TS_MAX, 0, 0, NULL); emit(&s, "ts-max");
    REC(&s, "u", "i", "view", INT64_MIN, 0, 0, NULL); emit(&s, "ts-int64-min");
    s_record(&s, big, CODEC_MAX_ID_BYTES + 1, "i", 1, "view", 4, 1, 0, 0, NULL, 0); emit(&s, "user-id-513");
    s_record(&s, "u", 1, big, CODEC_MAX_ID_BYTES + 1, "view", 4, 1, 0, 0, NULL, 0); emit(&s, "item-id-513");
    s_record(&s, "u", 1, "i", 1, big, CODEC_MAX_ACTION_BYTES + 1, 1, 0, 0, NULL, 0); emit(&s, "action-65");
    s_record(&s, "u", 1, "i", 1, "view", 4, 1, 0, 0, big, CODEC_MAX_TEXT_BYTES + 1); emit(&s, "text-65537");
    REC(&s, "u", "i", "view", 1, 0, 0, "0123456789012345678901234567890123456789012345678901234567890123456789");
    emit(&s, "over-64-bytes");

    if (!g_failed) fprintf(stderr, "fuzz_seeds: %d seeds in %s\n", g_count, g_dir);
    return g_failed;
}
