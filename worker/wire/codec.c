/* codec: the hand-written Avro codecs of the per-event path (see codec.h for the contract).
 *
 * Decoder: walks UserAction's Avro binary with a cursor bounded by the payload. Every varint is
 * at most 10 bytes and must fit 64 bits; every length is checked against the bytes that remain
 * before it is used, so a hostile length (negative, 2^62) is rejected without allocating or
 * reading past the end. Strings are returned as pointers into the payload (zero-copy).
 *
 * Encoder: writes InterestVector exactly as avro-c's generic writer does (value-write.c):
 * zig-zag varints, strings as length + bytes, floats as 4 little-endian IEEE bytes, arrays as
 * one block (count, items) followed by a 0 terminator, an empty array as a single 0, unions as
 * the branch index followed by the value. The size is computed first, so the write loop needs
 * no bounds checks.
 */
#include "codec.h"
#include "codec_read.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CODEC_DEFAULT_MAX_BYTES (1u << 20)

int wire_format_parse(const char *s) {
    if (!s) return -1;
    if (strcmp(s, "confluent") == 0) return WIRE_CONFLUENT;
    if (strcmp(s, "avro") == 0) return WIRE_AVRO;
    return -1;
}

const char *codec_status_name(codec_status s) {
    switch (s) {
    case CODEC_OK: return "ok";
    case CODEC_E_OVERSIZED: return "oversized";
    case CODEC_E_FRAMING: return "framing";
    case CODEC_E_SCHEMA_ID: return "schema_id";
    case CODEC_E_AVRO: return "avro";
    case CODEC_E_INVALID: return "invalid";
    case CODEC_E_SCHEMA: return "schema";
    case CODEC_E_REGISTRY: return "registry";
    }
    return "unknown";
}

void codec_put_confluent_header(uint8_t *buf5, int32_t schema_id) {
    uint32_t id = (uint32_t)schema_id;
    buf5[0] = 0;
    buf5[1] = (uint8_t)(id >> 24);
    buf5[2] = (uint8_t)(id >> 16);
    buf5[3] = (uint8_t)(id >> 8);
    buf5[4] = (uint8_t)id;
}

/* ---- decoder (the cursor and its checks: codec_read.h) ----------------------------------------- */

codec_status codec_read_header(const void *payload, size_t len, size_t max_bytes, int32_t *schema_id,
                               const uint8_t **body, size_t *body_len, char *reason, size_t reason_len) {
    const uint8_t *b = payload;
    size_t max = max_bytes ? max_bytes : CODEC_DEFAULT_MAX_BYTES;
    if (reason && reason_len) reason[0] = 0;
    if (len > max) return codec_fail(CODEC_E_OVERSIZED, reason, reason_len, "%zu bytes (limit %zu)", len, max);
    if (len < CODEC_HEADER_BYTES)
        return codec_fail(CODEC_E_FRAMING, reason, reason_len, "%zu bytes is shorter than the 5-byte Confluent header",
                          len);
    if (b[0] != 0) return codec_fail(CODEC_E_FRAMING, reason, reason_len, "magic byte is 0x%02x, expected 0x00", b[0]);
    *schema_id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
    *body = b + CODEC_HEADER_BYTES;
    *body_len = len - CODEC_HEADER_BYTES;
    return CODEC_OK;
}

codec_status codec_read_user_action_fields(codec_cursor *c, user_action *ua, char *reason, size_t reason_len) {
    codec_status st;
    memset(ua, 0, sizeof *ua);
    if ((st = codec_read_string(c, "user_id", &ua->user_id, &ua->user_id_len, reason, reason_len))) return st;
    if ((st = codec_read_string(c, "item_id", &ua->item_id, &ua->item_id_len, reason, reason_len))) return st;
    if ((st = codec_read_string(c, "action", &ua->action, &ua->action_len, reason, reason_len))) return st;
    if ((st = codec_read_long_field(c, "ts", &ua->ts, reason, reason_len))) return st;
    if ((st = codec_read_branch(c, "value", &ua->has_value, reason, reason_len))) return st;
    if (ua->has_value) {
        if (c->end - c->p < 4) return codec_fail(CODEC_E_AVRO, reason, reason_len, "truncated in field value");
        uint32_t bits = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 | (uint32_t)c->p[3] << 24;
        memcpy(&ua->value, &bits, 4);
        c->p += 4;
    }
    if ((st = codec_read_branch(c, "text", &ua->has_text, reason, reason_len))) return st;
    if (ua->has_text && (st = codec_read_string(c, "text", &ua->text, &ua->text_len, reason, reason_len))) return st;
    return CODEC_OK;
}

codec_status codec_validate_user_action(const user_action *ua, char *reason, size_t reason_len) {
    codec_status st;
    if ((st = codec_check_id("user_id", ua->user_id, ua->user_id_len, CODEC_MAX_ID_BYTES, reason, reason_len)))
        return st;
    if ((st = codec_check_id("item_id", ua->item_id, ua->item_id_len, CODEC_MAX_ID_BYTES, reason, reason_len)))
        return st;
    if ((st = codec_check_id("action", ua->action, ua->action_len, CODEC_MAX_ACTION_BYTES, reason, reason_len)))
        return st;
    if ((st = codec_check_ts(ua->ts, reason, reason_len))) return st;
    if (ua->has_value && !isfinite(ua->value))
        return codec_fail(CODEC_E_INVALID, reason, reason_len, "value is %s", isnan(ua->value) ? "NaN" : "Inf");
    if (ua->has_text && ua->text_len <= CODEC_MAX_TEXT_BYTES && !utf8_valid(ua->text, ua->text_len))
        return codec_fail(CODEC_E_INVALID, reason, reason_len, "text is not valid UTF-8");
    if (ua->has_text && ua->text_len > CODEC_MAX_TEXT_BYTES)
        return codec_fail(CODEC_E_INVALID, reason, reason_len, "text is %zu bytes (limit %d)", ua->text_len,
                          CODEC_MAX_TEXT_BYTES);
    return CODEC_OK;
}

static inline codec_status codec_decode_fields(codec_cursor *c, user_action *out, char *reason, size_t reason_len) {
    codec_status st;
    user_action ua;
    if ((st = codec_read_user_action_fields(c, &ua, reason, reason_len))) return st;
    if ((st = codec_check_end(c, reason, reason_len))) return st;
    if ((st = codec_validate_user_action(&ua, reason, reason_len))) return st;
    *out = ua;
    return CODEC_OK;
}

codec_status codec_decode_user_action(const codec_in_opts *o, const void *payload, size_t len,
                                      user_action *out, char *reason, size_t reason_len) {
    size_t max = o->max_bytes ? o->max_bytes : CODEC_DEFAULT_MAX_BYTES;
    codec_cursor c = {NULL, NULL};
    codec_status st;
    if (reason && reason_len) reason[0] = 0;
    if ((st = codec_open_payload(o, payload, len, max, &c, reason, reason_len))) return st;
    return codec_decode_fields(&c, out, reason, reason_len);
}

codec_status codec_decode_user_action_body(const uint8_t *body, size_t len, user_action *out, char *reason,
                                           size_t reason_len) {
    codec_cursor c = {body, body + len};
    if (reason && reason_len) reason[0] = 0;
    return codec_decode_fields(&c, out, reason, reason_len);
}

/* ---- encoder --------------------------------------------------------------------------------- */

static inline uint64_t codec_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static inline size_t codec_long_size(int64_t v) {
    uint64_t z = codec_zigzag(v);
    size_t n = 1;
    while (z >= 0x80) { z >>= 7; n++; }
    return n;
}

static inline uint8_t *codec_put_long(uint8_t *p, int64_t v) {
    uint64_t z = codec_zigzag(v);
    while (z >= 0x80) {
        *p++ = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    *p++ = (uint8_t)z;
    return p;
}

static inline uint8_t *codec_put_float(uint8_t *p, float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    p[0] = (uint8_t)bits;
    p[1] = (uint8_t)(bits >> 8);
    p[2] = (uint8_t)(bits >> 16);
    p[3] = (uint8_t)(bits >> 24);
    return p + 4;
}

static inline uint8_t *codec_put_string(uint8_t *p, const char *s, size_t n) {
    p = codec_put_long(p, (int64_t)n);
    if (n) memcpy(p, s, n);
    return p + n;
}

static inline size_t codec_string_size(size_t n) { return codec_long_size((int64_t)n) + n; }

/* Array block as avro-c writes it: count and items when non-empty, then the 0 terminator. */
static inline size_t codec_array_overhead(int n) { return n > 0 ? codec_long_size(n) + 1 : 1; }

size_t codec_encode_interest_vector(const codec_out_opts *o, const interest_vector *iv,
                                    uint8_t *buf, size_t cap) {
    int dim = iv->dim > 0 ? iv->dim : 0;
    int ntop = iv->top_items && iv->n_top_items > 0 ? iv->n_top_items : 0;
    size_t need = (o->format == WIRE_CONFLUENT ? CODEC_HEADER_BYTES : 0) + codec_string_size(iv->user_id_len) +
                  codec_long_size(iv->ts) + codec_long_size(iv->events) + codec_array_overhead(dim) +
                  4 * (size_t)dim + 4 + codec_string_size(iv->model_len) + codec_long_size(iv->source_partition) +
                  codec_long_size(iv->source_offset) + 1;
    if (iv->top_items) {
        need += codec_array_overhead(ntop);
        for (int i = 0; i < ntop; i++) need += codec_string_size(iv->top_items[i].item_id_len) + 4;
    }
    if (need > cap) return need;

    uint8_t *p = buf;
    if (o->format == WIRE_CONFLUENT) {
        codec_put_confluent_header(p, o->schema_id);
        p += CODEC_HEADER_BYTES;
    }
    p = codec_put_string(p, iv->user_id, iv->user_id_len);
    p = codec_put_long(p, iv->ts);
    p = codec_put_long(p, iv->events);
    if (dim > 0) {
        p = codec_put_long(p, dim);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(p, iv->vector, 4 * (size_t)dim);   /* already the wire's little-endian IEEE */
        p += 4 * (size_t)dim;
#else
        for (int i = 0; i < dim; i++) p = codec_put_float(p, iv->vector[i]);
#endif
    }
    *p++ = 0;
    p = codec_put_float(p, iv->drift);
    p = codec_put_string(p, iv->model, iv->model_len);
    p = codec_put_long(p, iv->source_partition);
    p = codec_put_long(p, iv->source_offset);
    if (!iv->top_items) {
        *p++ = 0;   /* branch 0: null */
    } else {
        *p++ = 2;   /* branch 1 (zig-zag 1 = 0x02): the array */
        if (ntop > 0) {
            p = codec_put_long(p, ntop);
            for (int i = 0; i < ntop; i++) {
                p = codec_put_string(p, iv->top_items[i].item_id, iv->top_items[i].item_id_len);
                p = codec_put_float(p, iv->top_items[i].score);
            }
        }
        *p++ = 0;
    }
    return (size_t)(p - buf);
}
