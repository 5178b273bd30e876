/* test_resolve: writer-schema resolution (worker/wire/resolve.c, codec_resolved.c).
 *
 * - Named evolutions of UserAction, each with a hand-encoded record: the same schema (the hand
 *   decoder), appended fields (the hand decoder, then a skip), an older writer without text (its
 *   default), int and long promoted to float and long, bytes read as string, fields reordered, a
 *   union read from a plain type and the reverse, branches reordered; and the incompatible
 *   writers, the reason naming the field (a union branch the reader cannot read among them).
 * - Enums and defaults on a reader that has them: symbols mapped by name, an unknown symbol
 *   taking the reader enum's default (without one, the writer is incompatible), defaults of every
 *   type, reader aliases.
 * - Hostile records: huge skipped arrays, recursion past the depth bound, every truncation.
 * - Random writer schemas derived from UserAction's (tests/fuzz/resolve_gen.h), records written
 *   by avro-c, read by the resolver and by avro-c's resolving reader: the same values.
 * - ievo consume's reader of other InterestVector writers (avro_tools): an older writer without
 *   top_items (its default, null) and with an extra field reads into ours; one without a field
 *   that has no default is refused, naming it.
 * - Decode cost per record for each kind of writer (printed; never fails the test).
 */
#include <avro.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "avro_tools.h"
#include "check.h"
#include "clock.h"
#include "codec.h"
#include "codec_read.h"
#include "resolve.h"
#include "resolve_gen.h"
#include "schemas.h"

/* ---- hand encoding ----------------------------------------------------------------------------- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} enc;

static void e_long(enc *e, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) e->b[e->n++] = (uint8_t)(z | 0x80), z >>= 7;
    e->b[e->n++] = (uint8_t)z;
}
static void e_str(enc *e, const char *s) {
    size_t n = strlen(s);
    e_long(e, (int64_t)n);
    memcpy(e->b + e->n, s, n);
    e->n += n;
}
static void e_float(enc *e, float f) {
    memcpy(e->b + e->n, &f, 4);
    e->n += 4;
}

/* {"type":"record","name":"UserAction","namespace":"ievo.v2","fields":[FIELDS]} */
static char *ua_writer(const char *fields) {
    static char buf[32768];
    snprintf(buf, sizeof buf, "{\"type\":\"record\",\"name\":\"UserAction\",\"namespace\":\"ievo.v2\",\"fields\":[%s]}",
             fields);
    return buf;
}

#define F_USER "{\"name\":\"user_id\",\"type\":\"string\"}"
#define F_ITEM "{\"name\":\"item_id\",\"type\":\"string\"}"
#define F_ACTION "{\"name\":\"action\",\"type\":\"string\"}"
#define F_TS "{\"name\":\"ts\",\"type\":\"long\"}"
#define F_VALUE "{\"name\":\"value\",\"type\":[\"null\",\"float\"],\"default\":null}"
#define F_TEXT "{\"name\":\"text\",\"type\":[\"null\",\"string\"],\"default\":null}"
#define F_SESSION "{\"name\":\"session\",\"type\":[\"null\",\"string\"],\"default\":null}"
#define F_DEVICE "{\"name\":\"device\",\"type\":{\"type\":\"enum\",\"name\":\"Device\",\"symbols\":[\"WEB\",\"IOS\",\"ANDROID\",\"TV\"]}}"

static resolve_plan *plan_ok(const char *writer, resolve_layout want, const char *what) {
    resolve_plan *p = NULL;
    char err[512];
    int rc = codec_user_action_plan_new(writer, strlen(writer), &p, err, sizeof err);
    CHECK(rc == 0, "%s: plan: %s", what, err);
    if (rc) return NULL;
    CHECK(resolve_plan_layout(p) == want, "%s: layout %d, expected %d", what, resolve_plan_layout(p), want);
    return p;
}

static void plan_bad(const char *writer, const char *needle, const char *what) {
    resolve_plan *p = NULL;
    char err[512] = "";
    int rc = codec_user_action_plan_new(writer, strlen(writer), &p, err, sizeof err);
    CHECK(rc == -1 && p == NULL, "%s: an incompatible writer was accepted", what);
    CHECK(strstr(err, needle) != NULL, "%s: reason '%s' lacks '%s'", what, err, needle);
    if (rc == 0) resolve_plan_free(p);
}

/* The record every case encodes: u1, i7, view, ts 1700000000000, value 4, text "hi". */
static void expect_ua(const resolve_plan *p, const enc *e, int has_value, int has_text, const char *what) {
    user_action ua;
    char reason[256];
    codec_status st = codec_decode_user_action_as(p, e->b, e->n, &ua, reason, sizeof reason);
    CHECK(st == CODEC_OK, "%s: %s", what, reason);
    if (st) return;
    CHECK(ua.user_id_len == 2 && !memcmp(ua.user_id, "u1", 2), "%s: user_id", what);
    CHECK(ua.item_id_len == 2 && !memcmp(ua.item_id, "i7", 2), "%s: item_id", what);
    CHECK(ua.action_len == 4 && !memcmp(ua.action, "view", 4), "%s: action", what);
    CHECK(ua.ts == 1700000000000LL, "%s: ts %lld", what, (long long)ua.ts);
    CHECK(ua.has_value == has_value && (!has_value || ua.value == 4.0f), "%s: value %d %g", what, ua.has_value, ua.value);
    CHECK(ua.has_text == has_text && (!has_text || (ua.text_len == 2 && !memcmp(ua.text, "hi", 2))), "%s: text", what);
    /* every truncation fails cleanly */
    for (size_t k = 0; k < e->n; k++) {
        codec_status t = codec_decode_user_action_as(p, e->b, k, &ua, reason, sizeof reason);
        CHECK(t == CODEC_E_AVRO || t == CODEC_E_INVALID, "%s: %zu of %zu bytes gave %s", what, k, e->n, codec_status_name(t));
    }
}

static void head(enc *e) { /* user_id, item_id, action, ts */
    e->n = 0;
    e_str(e, "u1"), e_str(e, "i7"), e_str(e, "view"), e_long(e, 1700000000000LL);
}

static void test_evolutions(void) {
    enc e;
    resolve_plan *p;

    p = plan_ok(ievo_schema_user_action_json, RESOLVE_SAME, "the reader's own schema");
    head(&e), e_long(&e, 1), e_float(&e, 4), e_long(&e, 1), e_str(&e, "hi");
    expect_ua(p, &e, 1, 1, "same");
    expect_ua(NULL, &e, 1, 1, "no plan");
    resolve_plan_free(p);

    p = plan_ok(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS "," F_VALUE "," F_TEXT "," F_SESSION "," F_DEVICE),
                RESOLVE_PREFIX, "appended session and device");
    head(&e), e_long(&e, 1), e_float(&e, 4), e_long(&e, 1), e_str(&e, "hi"), e_long(&e, 1), e_str(&e, "s-9"), e_long(&e, 3);
    expect_ua(p, &e, 1, 1, "appended");
    resolve_plan_free(p);

    p = plan_ok(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS "," F_VALUE), RESOLVE_GENERAL, "older: no text");
    head(&e), e_long(&e, 1), e_float(&e, 4);
    expect_ua(p, &e, 1, 0, "older");
    resolve_plan_free(p);

    p = plan_ok(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS ",{\"name\":\"value\",\"type\":[\"null\",\"int\"]}," F_TEXT),
                RESOLVE_GENERAL, "value as int");
    head(&e), e_long(&e, 1), e_long(&e, 4), e_long(&e, 1), e_str(&e, "hi");
    expect_ua(p, &e, 1, 1, "int to float");
    resolve_plan_free(p);

    p = plan_ok(ua_writer(F_USER "," F_ITEM "," F_ACTION ",{\"name\":\"ts\",\"type\":\"int\"},{\"name\":\"value\",\"type\":\"long\"}"),
                RESOLVE_GENERAL, "ts as int, value as plain long");
    e.n = 0, e_str(&e, "u1"), e_str(&e, "i7"), e_str(&e, "view"), e_long(&e, 1700000000), e_long(&e, 4);
    {
        user_action ua;
        char reason[256];
        CHECK(codec_decode_user_action_as(p, e.b, e.n, &ua, reason, sizeof reason) == CODEC_OK && ua.ts == 1700000000 &&
                  ua.has_value && ua.value == 4.0f && !ua.has_text,
              "int ts, long value: %s", reason);
    }
    resolve_plan_free(p);

    p = plan_ok(ua_writer("{\"name\":\"text\",\"type\":[\"string\",\"null\"]},{\"name\":\"user_id\",\"type\":\"bytes\"},"
                          "{\"name\":\"value\",\"type\":\"float\"}," F_TS "," F_ACTION "," F_ITEM),
                RESOLVE_GENERAL, "reordered, bytes, plain float, branches swapped");
    e.n = 0, e_long(&e, 0), e_str(&e, "hi"), e_str(&e, "u1"), e_float(&e, 4), e_long(&e, 1700000000000LL), e_str(&e, "view"),
    e_str(&e, "i7");
    expect_ua(p, &e, 1, 1, "reordered");
    resolve_plan_free(p);

    /* incompatible writers: the reason names the field */
    plan_bad(ua_writer(F_USER "," F_ITEM "," F_ACTION ",{\"name\":\"ts\",\"type\":\"string\"}"),
             "field ts: the writer's string cannot be read as long", "ts as string");
    plan_bad(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS ",{\"name\":\"value\",\"type\":[\"null\",\"double\"]}"),
             "field value: in the writer's union, the writer's double cannot be read as [null, float]", "value as double");
    plan_bad(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS ",{\"name\":\"value\",\"type\":[\"null\",\"float\",\"string\"]}"),
             "field value: in the writer's union, the writer's string cannot be read", "a branch the reader cannot read");
    plan_bad(ua_writer("{\"name\":\"user_id\",\"type\":[\"null\",\"string\"]}," F_ITEM "," F_ACTION "," F_TS),
             "field user_id: in the writer's union, the writer's null cannot be read as string", "user_id made optional");
    plan_bad(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS ",{\"name\":\"value\",\"type\":\"double\"}"),
             "field value: the writer's double cannot be read as [null, float]", "value as plain double");
    plan_bad(ua_writer(F_ITEM "," F_ACTION "," F_TS), "field user_id: not in the writer's schema", "no user_id");
    plan_bad(ua_writer(F_USER "," F_ITEM ",{\"name\":\"action\",\"type\":" "{\"type\":\"enum\",\"name\":\"A\",\"symbols\":[\"view\"]}}," F_TS),
             "field action: the writer's enum A cannot be read as string", "action as enum");
    plan_bad("{\"type\":\"record\",\"name\":\"Click\",\"fields\":[" F_USER "," F_ITEM "," F_ACTION "," F_TS "]}",
             "the writer's record Click is not the reader's UserAction", "another record");
    plan_bad("\"string\"", "not a record", "not a record");
    static char deep[16384];   /* an unknown field of arrays nested 300 deep */
    size_t n = (size_t)snprintf(deep, sizeof deep, "%s", F_USER "," F_ITEM "," F_ACTION "," F_TS ",{\"name\":\"deep\",\"type\":");
    for (int i = 0; i < 300; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "{\"type\":\"array\",\"items\":");
    n += (size_t)snprintf(deep + n, sizeof deep - n, "\"int\"");
    for (int i = 0; i < 300; i++) n += (size_t)snprintf(deep + n, sizeof deep - n, "}");
    snprintf(deep + n, sizeof deep - n, "}");
    plan_bad(ua_writer(deep), "field deep: the writer's type nests deeper than 256 levels", "300 nested arrays");
    plan_bad("{\"type\":", "writer schema does not parse", "bad JSON");
}

/* ---- a reader with enums, defaults and aliases -------------------------------------------------- */

static const char READER_R[] =
    "{\"type\":\"record\",\"name\":\"R\",\"aliases\":[\"old.Q\"],\"fields\":["
    "{\"name\":\"c\",\"type\":{\"type\":\"enum\",\"name\":\"Color\",\"symbols\":[\"RED\",\"GREEN\",\"BLUE\"],\"default\":\"RED\"}},"
    "{\"name\":\"k\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"A\",\"B\"]},\"default\":\"B\"},"
    "{\"name\":\"n\",\"type\":\"int\",\"default\":7},"
    "{\"name\":\"big\",\"type\":\"long\",\"aliases\":[\"size\"],\"default\":-5},"
    "{\"name\":\"d\",\"type\":\"double\",\"default\":2.5},"
    "{\"name\":\"flag\",\"type\":\"boolean\",\"default\":true},"
    "{\"name\":\"b\",\"type\":\"bytes\",\"default\":\"\\u00ff\\u0001\"},"
    "{\"name\":\"s\",\"type\":[\"string\",\"null\"],\"default\":\"dflt\"}]}";

static void test_enums_defaults(void) {
    const char *w = "{\"type\":\"record\",\"name\":\"Q\",\"namespace\":\"old\",\"fields\":["
                    "{\"name\":\"c\",\"type\":{\"type\":\"enum\",\"name\":\"x.Color\",\"symbols\":[\"BLUE\",\"PURPLE\",\"RED\"]}},"
                    "{\"name\":\"k\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"B\",\"A\"]}},"
                    "{\"name\":\"size\",\"type\":\"int\"}]}";
    resolve_plan *p = NULL;
    char err[512], reason[256];
    REQUIRE(resolve_plan_new(READER_R, w, strlen(w), &p, err, sizeof err) == 0, "enum reader: %s", err);
    CHECK(resolve_plan_layout(p) == RESOLVE_GENERAL, "layout");
    resolve_value v[8];
    enc e;
    for (int sym = 0; sym < 3; sym++) {
        e.n = 0, e_long(&e, sym), e_long(&e, 0), e_long(&e, 123);
        codec_status st = resolve_decode(p, e.b, e.n, v, reason, sizeof reason);
        static const int want[3] = {2, 0, 0};   /* BLUE -> 2, PURPLE -> the default RED, RED -> 0 */
        CHECK(st == CODEC_OK && v[0].type == RESOLVE_ENUM && v[0].v.e == want[sym], "symbol %d: %s -> %d", sym, reason, v[0].v.e);
        CHECK(v[1].v.e == 1 && v[2].type == RESOLVE_INT && v[2].v.i == 7 && v[3].type == RESOLVE_LONG && v[3].v.l == 123 &&
                  v[4].v.d == 2.5 && v[5].v.b == 1 && v[6].v.s.n == 2 && (uint8_t)v[6].v.s.p[0] == 0xff &&
                  v[6].v.s.p[1] == 1 && v[7].type == RESOLVE_STRING && v[7].v.s.n == 4 && !memcmp(v[7].v.s.p, "dflt", 4),
              "defaults and the alias 'size'");
    }
    codec_status st;
    e.n = 0, e_long(&e, 3), e_long(&e, 0), e_long(&e, 1);
    st = resolve_decode(p, e.b, e.n, v, reason, sizeof reason);
    CHECK(st == CODEC_E_AVRO && strstr(reason, "bad enum index 3 in field c"), "%s", reason);
    resolve_plan_free(p);

    const char *renamed = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                          "{\"name\":\"c\",\"type\":{\"type\":\"enum\",\"name\":\"Colour\",\"symbols\":[\"RED\"]}}]}";
    CHECK(resolve_plan_new(READER_R, renamed, strlen(renamed), &p, err, sizeof err) == -1 &&
              strstr(err, "field c: the writer's enum Colour cannot be read as enum Color"),
          "enum renamed: %s", err);
    const char *kind_c = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                         "{\"name\":\"k\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"A\",\"C\"]}}]}";
    CHECK(resolve_plan_new(READER_R, kind_c, strlen(kind_c), &p, err, sizeof err) == -1 &&
              strstr(err, "field k: the writer's symbol C is not in the reader's enum Kind, which has no default"),
          "a symbol the reader lacks: %s", err);
    const char *bad_default = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"x\",\"type\":\"int\",\"default\":\"no\"}]}";
    const char *empty = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}";
    CHECK(resolve_plan_new(bad_default, empty, strlen(empty), &p, err, sizeof err) == -1 &&
              strstr(err, "field x: the default does not match its type int"),
          "bad default: %s", err);
}

/* ---- hostile records ---------------------------------------------------------------------------- */

static void test_hostile(void) {
    const char *w = ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS "," F_VALUE "," F_TEXT
                              ",{\"name\":\"nulls\",\"type\":{\"type\":\"array\",\"items\":\"null\"}}"
                              ",{\"name\":\"strs\",\"type\":{\"type\":\"array\",\"items\":\"string\"}}"
                              ",{\"name\":\"list\",\"type\":{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
                              "{\"name\":\"next\",\"type\":[\"null\",\"Node\"]}]}}");
    resolve_plan *p = plan_ok(w, RESOLVE_PREFIX, "hostile writer");
    REQUIRE(p != NULL, "plan");
    enc e;
    user_action ua;
    char reason[256];
    head(&e), e_long(&e, 0), e_long(&e, 0);
    size_t base = e.n;
    /* 2^60 nulls take no bytes: skipped at once; then a short string array and a 3-long list */
    e_long(&e, 1LL << 60), e_long(&e, 0), e_long(&e, 2), e_str(&e, "a"), e_str(&e, "b"), e_long(&e, 0);
    e_long(&e, 1), e_long(&e, 1), e_long(&e, 1), e_long(&e, 0);
    double t0 = clock_mono_s();
    CHECK(codec_decode_user_action_as(p, e.b, e.n, &ua, reason, sizeof reason) == CODEC_OK, "2^60 nulls: %s", reason);
    CHECK(clock_mono_s() - t0 < 0.1, "2^60 nulls took %.3f s", clock_mono_s() - t0);
    /* 2^40 strings cannot fit in what is left */
    e.n = base, e_long(&e, 0), e_long(&e, 1LL << 40), e_str(&e, "a");
    CHECK(codec_decode_user_action_as(p, e.b, e.n, &ua, reason, sizeof reason) == CODEC_E_AVRO &&
              strstr(reason, "truncated in field strs"),
          "2^40 strings: %s", reason);
    /* a negative count carries the block's byte size */
    e.n = base, e_long(&e, 0), e_long(&e, -2), e_long(&e, 4), e_str(&e, "a"), e_str(&e, "b"), e_long(&e, 0), e_long(&e, 0);
    CHECK(codec_decode_user_action_as(p, e.b, e.n, &ua, reason, sizeof reason) == CODEC_OK, "sized block: %s", reason);
    e.n = base, e_long(&e, 0), e_long(&e, -2), e_long(&e, 400), e_str(&e, "a");
    CHECK(codec_decode_user_action_as(p, e.b, e.n, &ua, reason, sizeof reason) == CODEC_E_AVRO, "oversized block: %s", reason);
    /* a list nested past the bound */
    e.n = base, e_long(&e, 0), e_long(&e, 0);
    for (int i = 0; i < 200; i++) e_long(&e, 1);
    e_long(&e, 0);
    CHECK(codec_decode_user_action_as(p, e.b, e.n, &ua, reason, sizeof reason) == CODEC_E_AVRO &&
              strstr(reason, "field list nests deeper than 64 levels"),
          "deep list: %s", reason);
    resolve_plan_free(p);
}

/* ---- random writers against avro-c -------------------------------------------------------------- */

static void test_random_against_avro_c(void) {
    gen_src g = {NULL, 0, 0x9E3779B97F4A7C15ULL, 0};
    int schemas = 0, incompatible = 0, records = 0;
    for (int it = 0; it < 1500 && check_failures < 20; it++) {
        gen_writer gw;
        gen_writer_schema(&g, &gw);
        resolve_plan *p = NULL;
        char err[512];
        int rc = codec_user_action_plan_new(gw.json, strlen(gw.json), &p, err, sizeof err);
        schemas++;
        if (!gw.compatible) {
            incompatible++;
            int named = 0;
            for (int i = 0; i < 6; i++) {
                char want[32];
                snprintf(want, sizeof want, "field %s:", GEN_UA_FIELDS[i]);
                named |= gw.bad[i] && !strncmp(err, want, strlen(want));
            }
            CHECK(rc == -1 && named, "an incompatible writer: %s\n%s", rc ? err : "accepted", gw.json);
            if (!rc) resolve_plan_free(p);
            gen_writer_free(&gw);
            continue;
        }
        if (rc) {
            CHECK(0, "generated writer rejected: %s\n%s", err, gw.json);
            gen_writer_free(&gw);
            continue;
        }
        avro_schema_t ws, ref_ws;
        REQUIRE(avro_schema_from_json_length(gw.json, strlen(gw.json), &ws) == 0 &&
                    avro_schema_from_json_length(gw.ref_json, strlen(gw.ref_json), &ref_ws) == 0,
                "avro-c parse: %s", avro_strerror());
        for (int r = 0; r < 3; r++) {
            uint8_t *body;
            size_t len;
            if (gen_record(&g, ws, &body, &len)) {
                CHECK(0, "cannot write a record of %s: %s", gw.json, avro_strerror());
                break;
            }
            records++;
            resolve_value v[6];
            gen_ref_field ref[6];
            char reason[256], why[256];
            codec_status st = resolve_decode(p, body, len, v, reason, sizeof reason);
            int ref_rc = gen_reference(ref_ws, gw.kept, body, len, ref, err, sizeof err);
            CHECK(st == CODEC_OK, "resolver: %s on a record avro-c wrote\n%s", reason, gw.json);
            CHECK(ref_rc == 0, "avro-c: %s\n%s", err, gw.ref_json);
            if (st == CODEC_OK && ref_rc == 0) {
                gen_compare(v, ref, why, sizeof why);
                CHECK(!why[0], "%s\n%s", why, gw.json);
            }
            free(body);
        }
        avro_schema_decref(ws);
        avro_schema_decref(ref_ws);
        resolve_plan_free(p);
        gen_writer_free(&gw);
    }
    fprintf(stderr, "[resolve] %d random writer schemas (%d incompatible, rejected naming the field), %d records read "
            "as avro-c's resolving reader reads them\n", schemas, incompatible, records);
}

/* ---- ievo consume: other writers of InterestVector -------------------------------------------- */

static void test_consume_writers(void) {
    const char *older = "{\"type\":\"record\",\"name\":\"InterestVector\",\"namespace\":\"ievo.v0\",\"fields\":["
                        "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"long\"},"
                        "{\"name\":\"events\",\"type\":\"long\"},{\"name\":\"extra\",\"type\":\"int\"},"
                        "{\"name\":\"vector\",\"type\":{\"type\":\"array\",\"items\":\"float\"}},"
                        "{\"name\":\"drift\",\"type\":\"float\"},{\"name\":\"model\",\"type\":\"string\"},"
                        "{\"name\":\"source_partition\",\"type\":\"int\"},{\"name\":\"source_offset\",\"type\":\"long\"}]}";
    char err[512];
    avro_tools_iv_reader *r = avro_tools_iv_reader_new(WIRE_CONFLUENT, err, sizeof err);
    REQUIRE(r, "%s", err);
    CHECK(avro_tools_iv_reader_add_writer(r, 7, older, err, sizeof err) == 0 && avro_tools_iv_reader_has_writer(r, 7),
          "older writer: %s", err);
    enc e;
    uint8_t rec[256];
    e.n = 0, e_str(&e, "u1"), e_long(&e, 5), e_long(&e, 2), e_long(&e, -3), e_long(&e, 2), e_float(&e, 0.5f),
    e_float(&e, -1.0f), e_long(&e, 0), e_float(&e, 0.25f), e_str(&e, "m"), e_long(&e, 3), e_long(&e, 99);
    codec_put_confluent_header(rec, 7);
    memcpy(rec + 5, e.b, e.n);
    interest_vector iv;
    int32_t id;
    CHECK(avro_tools_iv_read(r, rec, e.n + 5, &iv, &id, err, sizeof err) == 0 && id == 7 && iv.user_id_len == 2 &&
              iv.ts == 5 && iv.events == 2 && iv.dim == 2 && iv.vector[1] == -1.0f && iv.drift == 0.25f &&
              iv.source_partition == 3 && iv.source_offset == 99 && iv.top_items == NULL,
          "older record: %s", err);
    const char *no_model = "{\"type\":\"record\",\"name\":\"InterestVector\",\"fields\":["
                           "{\"name\":\"user_id\",\"type\":\"string\"}]}";
    CHECK(avro_tools_iv_reader_add_writer(r, 8, no_model, err, sizeof err) == -1 && strstr(err, "field ts: not in the writer"),
          "a writer without ts: %s", err);
    avro_tools_iv_reader_free(r);
}

/* ---- cost ---------------------------------------------------------------------------------------- */

static double ns_per(const resolve_plan *p, const enc *e, int fixed) {
    const codec_in_opts in = {WIRE_AVRO, 0, 0};
    user_action ua;
    char reason[256];
    int n = 2000000;
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = clock_mono_s();
        for (int i = 0; i < n; i++) {
            codec_status st = fixed ? codec_decode_user_action(&in, e->b, e->n, &ua, reason, sizeof reason)
                                    : codec_decode_user_action_as(p, e->b, e->n, &ua, reason, sizeof reason);
            if (st) return -1;
            __asm__ volatile("" : : "r"(&ua) : "memory");
        }
        double ns = (clock_mono_s() - t0) * 1e9 / n;
        if (ns < best) best = ns;
    }
    return best;
}

static void bench(void) {
    struct utsname u;
    uname(&u);
    enc cur, newer, older, promoted;
    head(&cur), e_long(&cur, 1), e_float(&cur, 4), e_long(&cur, 1), e_str(&cur, "hi");
    newer = cur, e_long(&newer, 1), e_str(&newer, "s-9"), e_long(&newer, 3);
    head(&older), e_long(&older, 1), e_float(&older, 4);
    head(&promoted), e_long(&promoted, 1), e_long(&promoted, 4), e_long(&promoted, 1), e_str(&promoted, "hi"), e_long(&promoted, 0);
    resolve_plan *same = plan_ok(ievo_schema_user_action_json, RESOLVE_SAME, "bench same");
    resolve_plan *pn = plan_ok(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS "," F_VALUE "," F_TEXT "," F_SESSION "," F_DEVICE),
                               RESOLVE_PREFIX, "bench newer");
    resolve_plan *po = plan_ok(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS "," F_VALUE), RESOLVE_GENERAL, "bench older");
    resolve_plan *pp = plan_ok(ua_writer(F_USER "," F_ITEM "," F_ACTION "," F_TS ",{\"name\":\"value\",\"type\":[\"null\",\"int\"]},"
                                         F_TEXT "," F_SESSION),
                               RESOLVE_GENERAL, "bench promoted");
    if (!same || !pn || !po || !pp) return;
    fprintf(stderr,
            "[resolve] decode cost per UserAction (%s %s, one core, best of 3 x 2M, the record of 'same' %zu bytes):\n"
            "  current schema, fixed id (codec_decode_user_action)     %6.1f ns\n"
            "  current schema through a plan (the registry's path)     %6.1f ns\n"
            "  newer writer: + session, device appended (prefix)       %6.1f ns\n"
            "  older writer: no text field (general, default)          %6.1f ns\n"
            "  newer writer: value int->float, + session (general)     %6.1f ns\n",
            u.machine, u.release, cur.n, ns_per(NULL, &cur, 1), ns_per(same, &cur, 0), ns_per(pn, &newer, 0),
            ns_per(po, &older, 0), ns_per(pp, &promoted, 0));
    resolve_plan_free(same), resolve_plan_free(pn), resolve_plan_free(po), resolve_plan_free(pp);
}

int main(void) {
    test_evolutions();
    test_enums_defaults();
    test_hostile();
    test_random_against_avro_c();
    test_consume_writers();
    if (!getenv("IEVO_TEST_NO_BENCH")) bench();
    return check_exit("test_resolve");
}
