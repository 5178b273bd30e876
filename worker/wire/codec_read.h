/* codec_read: the bounded Avro-binary reading both hand decoders share (codec.c: UserAction,
 * item_codec.c: Item). Header-only and static inline: the per-event decoder keeps its inlining.
 *
 * A cursor is bounded by the payload. Every varint is at most 10 bytes and must fit 64 bits;
 * every length is checked against the bytes that remain before it is used, so a hostile length
 * (negative, 2^62) is rejected without allocating or reading past the end. Strings come back as
 * pointers into the payload (zero-copy). Failures fill reason with "<class>: <message>".
 */
#ifndef IEVO_CODEC_READ_H
#define IEVO_CODEC_READ_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "codec.h"
#include "utf8.h"

#define CODEC_HEADER_BYTES 5

typedef struct {
    const uint8_t *p, *end;
} codec_cursor;

/* Fills reason with "<class>: <message>" and returns st. */
static inline codec_status codec_fail(codec_status st, char *reason, size_t reason_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline codec_status codec_fail(codec_status st, char *reason, size_t reason_len, const char *fmt, ...) {
    if (reason && reason_len) {
        int n = snprintf(reason, reason_len, "%s: ", codec_status_name(st));
        if (n >= 0 && (size_t)n < reason_len) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(reason + n, reason_len - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return st;
}

/* Checks the size limit and, for WIRE_CONFLUENT, the 5-byte header (magic 0, big-endian schema
 * id); on success *c covers the Avro body. */
static inline codec_status codec_open_payload(const codec_in_opts *o, const void *payload, size_t len, size_t max,
                                              codec_cursor *c, char *reason, size_t reason_len) {
    const uint8_t *b = payload;
    if (len > max) return codec_fail(CODEC_E_OVERSIZED, reason, reason_len, "%zu bytes (limit %zu)", len, max);
    if (o->format == WIRE_CONFLUENT) {
        if (len < CODEC_HEADER_BYTES)
            return codec_fail(CODEC_E_FRAMING, reason, reason_len,
                              "%zu bytes is shorter than the 5-byte Confluent header", len);
        if (b[0] != 0)
            return codec_fail(CODEC_E_FRAMING, reason, reason_len, "magic byte is 0x%02x, expected 0x00", b[0]);
        int32_t id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
        if (id != o->schema_id)
            return codec_fail(CODEC_E_SCHEMA_ID, reason, reason_len, "schema id %d, expected %d", (int)id,
                              (int)o->schema_id);
        b += CODEC_HEADER_BYTES;
        len -= CODEC_HEADER_BYTES;
    }
    c->p = b;
    c->end = b + len;
    return CODEC_OK;
}

/* Reads one zig-zag varint long. Returns 0, or -1 when truncated, -2 when longer than 10 bytes
 * or wider than 64 bits. */
static inline int codec_read_long(codec_cursor *c, int64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (c->p >= c->end) return -1;
        uint8_t b = *c->p++;
        if (i == 9 && b > 1) return -2;   /* the 10th byte carries only bit 63 */
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return 0;
        }
    }
    return -2;
}

static inline codec_status codec_long_error(int rc, const char *field, char *reason, size_t reason_len) {
    if (rc == -1) return codec_fail(CODEC_E_AVRO, reason, reason_len, "truncated in field %s", field);
    return codec_fail(CODEC_E_AVRO, reason, reason_len, "bad varint in field %s", field);
}

/* A long field, with the field named in the error. */
static inline codec_status codec_read_long_field(codec_cursor *c, const char *field, int64_t *out, char *reason,
                                                 size_t reason_len) {
    int rc = codec_read_long(c, out);
    return rc ? codec_long_error(rc, field, reason, reason_len) : CODEC_OK;
}

static inline codec_status codec_read_string(codec_cursor *c, const char *field, const char **s, size_t *n,
                                             char *reason, size_t reason_len) {
    int64_t len;
    int rc = codec_read_long(c, &len);
    if (rc) return codec_long_error(rc, field, reason, reason_len);
    if (len < 0)
        return codec_fail(CODEC_E_AVRO, reason, reason_len, "negative length %lld in field %s",
                          (long long)len, field);
    size_t left = (size_t)(c->end - c->p);
    if ((uint64_t)len > left)
        return codec_fail(CODEC_E_AVRO, reason, reason_len,
                          "truncated in field %s (length %lld, %zu bytes left)", field, (long long)len, left);
    *s = (const char *)c->p;
    *n = (size_t)len;
    c->p += len;
    return CODEC_OK;
}

/* Union ["null", X]: 0 -> absent, 1 -> present. */
static inline codec_status codec_read_branch(codec_cursor *c, const char *field, int *present, char *reason,
                                             size_t reason_len) {
    int64_t b;
    int rc = codec_read_long(c, &b);
    if (rc) return codec_long_error(rc, field, reason, reason_len);
    if (b != 0 && b != 1)
        return codec_fail(CODEC_E_AVRO, reason, reason_len, "bad union branch %lld in field %s",
                          (long long)b, field);
    *present = (int)b;
    return CODEC_OK;
}

/* The cursor consumed the whole body. */
static inline codec_status codec_check_end(const codec_cursor *c, char *reason, size_t reason_len) {
    if (c->p != c->end)
        return codec_fail(CODEC_E_AVRO, reason, reason_len, "%zu trailing bytes after the record",
                          (size_t)(c->end - c->p));
    return CODEC_OK;
}

/* An id: non-empty, at most max bytes, valid UTF-8 (an Avro string is UTF-8; ids reach logs,
 * JSON and other systems' string types). */
static inline codec_status codec_check_id(const char *field, const char *s, size_t n, size_t max, char *reason,
                                          size_t reason_len) {
    if (n == 0) return codec_fail(CODEC_E_INVALID, reason, reason_len, "%s is empty", field);
    if (n > max)
        return codec_fail(CODEC_E_INVALID, reason, reason_len, "%s is %zu bytes (limit %zu)", field, n, max);
    if (!utf8_valid(s, n)) return codec_fail(CODEC_E_INVALID, reason, reason_len, "%s is not valid UTF-8", field);
    return CODEC_OK;
}

/* An event time in the codec's range [CODEC_TS_MIN, CODEC_TS_MAX). */
static inline codec_status codec_check_ts(int64_t ts, char *reason, size_t reason_len) {
    if (ts < CODEC_TS_MIN || ts >= CODEC_TS_MAX)
        return codec_fail(CODEC_E_INVALID, reason, reason_len, "ts %lld is outside [%lld, %lld)", (long long)ts,
                          CODEC_TS_MIN, CODEC_TS_MAX);
    return CODEC_OK;
}

/* codec.c's UserAction pieces, shared with the resolved decoding (codec_resolved.c): the six
 * fields in the reader's layout (no end check, no validation), and the validation. */
codec_status codec_read_user_action_fields(codec_cursor *c, user_action *ua, char *reason, size_t reason_len);
codec_status codec_validate_user_action(const user_action *ua, char *reason, size_t reason_len);
/* A body in the reader's own layout: fields, end, validation (codec_decode_user_action less the
 * header). */
codec_status codec_decode_user_action_body(const uint8_t *body, size_t len, user_action *out, char *reason,
                                           size_t reason_len);

#endif
