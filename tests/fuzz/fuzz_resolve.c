/* fuzz_resolve: libFuzzer target over writer-schema resolution (worker/wire/resolve.c and
 * codec_resolved.c) with avro-c's own resolving reader as the reference.
 *
 * The input's bytes choose a writer schema derived from UserAction's (tests/fuzz/resolve_gen.h:
 * reader fields kept, promoted, made bytes, wrapped in unions, reordered or dropped; unknown
 * fields of any type anywhere, recursive ones included), then a record of it that avro-c writes.
 * Checked:
 *   - the plan's verdict: an incompatible writer is refused with its first bad field named, a
 *     compatible one accepted;
 *   - the record: resolve_decode reads what avro-c's resolving reader reads (on the reader less
 *     the fields the writer lacks, which must come out as the reader's defaults), and
 *     codec_decode_user_action_as gives the same fields, whichever path the layout takes;
 *   - every truncation of the record fails as avro (no read past the end: ASan);
 *   - the bytes left over, decoded as a body of the same writer: a known status, strings
 *     inside the buffer, no allocation while decoding.
 * Build: cmake -DIEVO_FUZZ=ON -DCMAKE_C_COMPILER=clang (tests/fuzz/fuzz.cmake); run:
 * scripts/fuzz.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "resolve.h"
#include "resolve_gen.h"

#define FUZZ_NAME "fuzz_resolve"
#include "fuzz_common.h"

static void fuzz_strings_inside(const resolve_value *v, int n, const uint8_t *lo, size_t len) {
    for (int i = 0; i < n; i++) {
        if (v[i].type != RESOLVE_STRING && v[i].type != RESOLVE_BYTES) continue;
        const uint8_t *p = (const uint8_t *)v[i].v.s.p;
        /* a default's string lives in the plan; a read one inside the body */
        if (p >= lo && p <= lo + len) FUZZ_CHECK(v[i].v.s.n <= (size_t)(lo + len - p), "field %d runs past the body", i);
    }
}

static void fuzz_same_ua(const resolve_value *v, const user_action *ua) {
    FUZZ_CHECK(ua->user_id_len == v[0].v.s.n && !memcmp(ua->user_id, v[0].v.s.p, ua->user_id_len), "user_id");
    FUZZ_CHECK(ua->item_id_len == v[1].v.s.n && !memcmp(ua->item_id, v[1].v.s.p, ua->item_id_len), "item_id");
    FUZZ_CHECK(ua->action_len == v[2].v.s.n && !memcmp(ua->action, v[2].v.s.p, ua->action_len), "action");
    FUZZ_CHECK(ua->ts == v[3].v.l, "ts");
    FUZZ_CHECK(ua->has_value == (v[4].type != RESOLVE_NULL) && (!ua->has_value || !memcmp(&ua->value, &v[4].v.f, 4)),
               "value");
    FUZZ_CHECK(ua->has_text == (v[5].type != RESOLVE_NULL) &&
                   (!ua->has_text || (ua->text_len == v[5].v.s.n && !memcmp(ua->text, v[5].v.s.p, ua->text_len))),
               "text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gen_src g = {data, size, 0x9E3779B97F4A7C15ULL ^ size, 0};
    gen_writer gw;
    gen_writer_schema(&g, &gw);
    resolve_plan *p = NULL;
    char err[512], reason[256], why[256];
    int rc = codec_user_action_plan_new(gw.json, strlen(gw.json), &p, err, sizeof err);
    if (!gw.compatible) {
        int named = 0;
        for (int i = 0; i < 6; i++) {
            char want[32];
            snprintf(want, sizeof want, "field %s:", GEN_UA_FIELDS[i]);
            named |= gw.bad[i] && !strncmp(err, want, strlen(want));
        }
        FUZZ_CHECK(rc == -1 && named, "incompatible writer %s: %s", gw.json, rc ? err : "accepted");
        gen_writer_free(&gw);
        return 0;
    }
    FUZZ_CHECK(rc == 0, "compatible writer refused: %s\n%s", err, gw.json);
    avro_schema_t ws = NULL, ref_ws = NULL;
    FUZZ_CHECK(!avro_schema_from_json_length(gw.json, strlen(gw.json), &ws) &&
                   !avro_schema_from_json_length(gw.ref_json, strlen(gw.ref_json), &ref_ws),
               "avro-c cannot parse %s: %s", gw.json, avro_strerror());
    uint8_t *body;
    size_t len;
    FUZZ_CHECK(gen_record(&g, ws, &body, &len) == 0, "avro-c cannot write a record of %s: %s", gw.json, avro_strerror());

    resolve_value v[6];
    fuzz_count_begin();
    codec_status st = resolve_decode(p, body, len, v, reason, sizeof reason);
    long allocs = fuzz_count_end();
    FUZZ_CHECK(allocs == 0, "resolve_decode allocated %ld times", allocs);
    FUZZ_CHECK(st == CODEC_OK, "resolver: %s on a record avro-c wrote\n%s", reason, gw.json);
    fuzz_strings_inside(v, 6, body, len);
    gen_ref_field ref[6];
    FUZZ_CHECK(gen_reference(ref_ws, gw.kept, body, len, ref, err, sizeof err) == 0, "avro-c: %s\n%s", err, gw.ref_json);
    gen_compare(v, ref, why, sizeof why);
    FUZZ_CHECK(!why[0], "%s\n%s", why, gw.json);
    user_action ua;
    st = codec_decode_user_action_as(p, body, len, &ua, reason, sizeof reason);
    FUZZ_CHECK(st == CODEC_OK, "codec_decode_user_action_as: %s\n%s", reason, gw.json);
    fuzz_same_ua(v, &ua);
    for (size_t k = 0; k < len; k += 1 + len / 16) {
        st = resolve_decode(p, body, k, v, reason, sizeof reason);
        FUZZ_CHECK(st == CODEC_E_AVRO, "%zu of %zu bytes gave %s", k, len, codec_status_name(st));
    }
    /* the bytes left over as a body of the same writer */
    uint8_t *rest = malloc(g.n ? g.n : 1);
    FUZZ_CHECK(rest != NULL, "out of memory");
    memcpy(rest, g.p, g.n);
    fuzz_count_begin();
    st = resolve_decode(p, rest, g.n, v, reason, sizeof reason);
    allocs = fuzz_count_end();
    FUZZ_CHECK(allocs == 0, "resolve_decode allocated %ld times", allocs);
    FUZZ_CHECK(st == CODEC_OK || st == CODEC_E_AVRO, "raw bytes gave %s", codec_status_name(st));
    if (st == CODEC_OK) fuzz_strings_inside(v, 6, rest, g.n);
    st = codec_decode_user_action_as(p, rest, g.n, &ua, reason, sizeof reason);
    FUZZ_CHECK(st == CODEC_OK || st == CODEC_E_AVRO || st == CODEC_E_INVALID, "raw bytes gave %s", codec_status_name(st));
    free(rest);
    free(body);
    avro_schema_decref(ws);
    avro_schema_decref(ref_ws);
    resolve_plan_free(p);
    gen_writer_free(&gw);
    return 0;
}
