/* fuzz_user_action: libFuzzer target over codec_decode_user_action (worker/codec.c), the
 * decoder every consumed record goes through.
 *
 * Each input is decoded several ways: as a Confluent-framed record (schema id 1) and as plain
 * Avro (the whole input, and the bytes after a 5-byte header), with the default max_bytes and
 * with small ones (64 bytes, and len or len - 1 so both sides of the limit are hit). Checked:
 *   - OK: every string lies inside the input, in field order, without overlap; lengths within
 *     the codec's limits; ids and text UTF-8; ts in [TS_MIN, TS_MAX); value finite; the union
 *     flags 0 or 1; the record re-encoded canonically decodes to the same fields (Avro and
 *     Confluent).
 *   - error: a known class; the reason is non-empty, one line, NUL-terminated inside its buffer,
 *     starts with "<class>: "; a short reason buffer gets a prefix of the same text and nothing
 *     past its end; a NULL or zero-length reason buffer is left alone.
 *   - max_bytes only gates the size: over it, "oversized"; within it, the same result as the
 *     default limit.
 *   - the decoder never allocates (malloc hooks count allocations during a decode).
 *   - it agrees with a second, independently written decoder below (fuzz_ref_decode, written
 *     from the schema and codec.h's rules, byte index instead of pointers): the same status, the
 *     same field named in the reason, and on OK the same fields at the same offsets. Without
 *     it, a decoder that misjudges a length but reads no string bytes (it is zero-copy) would
 *     only ever produce a wrong error message, which no sanitizer sees.
 * Out-of-bounds reads and undefined behaviour are the sanitizers' to catch: the input is
 * libFuzzer's exact-size heap copy, and the short reason buffers are globals with redzones.
 * Build: cmake -DIEVO_FUZZ=ON -DCMAKE_C_COMPILER=clang (tests/fuzz/fuzz.cmake); run:
 * scripts/fuzz.sh.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define FUZZ_NAME "fuzz_user_action"
#include "fuzz_common.h"

#define FUZZ_SCHEMA_ID 1
#define FUZZ_REASON_MAX 256

/* ---- one decode and its invariants ---------------------------------------------------------- */

typedef struct {
    codec_status st;
    user_action ua;
    char reason[FUZZ_REASON_MAX];
} fuzz_result;

static int fuzz_known_status(codec_status st) {
    return st == CODEC_OK || st == CODEC_E_OVERSIZED || st == CODEC_E_FRAMING || st == CODEC_E_SCHEMA_ID ||
           st == CODEC_E_AVRO || st == CODEC_E_INVALID;
}

/* [s, s + n) inside [lo, hi]. */
static int fuzz_inside(const char *s, size_t n, const uint8_t *lo, const uint8_t *hi) {
    const uint8_t *p = (const uint8_t *)s;
    return p && p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static void fuzz_check_ok(const user_action *ua, const uint8_t *data, size_t len, const char *what) {
    const uint8_t *end = data + len;
    FUZZ_CHECK(fuzz_inside(ua->user_id, ua->user_id_len, data, end), "%s: user_id outside the input", what);
    FUZZ_CHECK(fuzz_inside(ua->item_id, ua->item_id_len, data, end), "%s: item_id outside the input", what);
    FUZZ_CHECK(fuzz_inside(ua->action, ua->action_len, data, end), "%s: action outside the input", what);
    FUZZ_CHECK(ua->user_id_len >= 1 && ua->user_id_len <= CODEC_MAX_ID_BYTES, "%s: user_id_len %zu", what,
               ua->user_id_len);
    FUZZ_CHECK(ua->item_id_len >= 1 && ua->item_id_len <= CODEC_MAX_ID_BYTES, "%s: item_id_len %zu", what,
               ua->item_id_len);
    FUZZ_CHECK(ua->action_len >= 1 && ua->action_len <= CODEC_MAX_ACTION_BYTES, "%s: action_len %zu", what,
               ua->action_len);
    /* Field order, no overlap: each string starts after the previous one ends. */
    FUZZ_CHECK(ua->item_id >= ua->user_id + ua->user_id_len, "%s: item_id overlaps user_id", what);
    FUZZ_CHECK(ua->action >= ua->item_id + ua->item_id_len, "%s: action overlaps item_id", what);
    FUZZ_CHECK(ua->ts >= CODEC_TS_MIN && ua->ts < CODEC_TS_MAX, "%s: ts %lld out of range", what, (long long)ua->ts);
    FUZZ_CHECK(ua->has_value == 0 || ua->has_value == 1, "%s: has_value %d", what, ua->has_value);
    FUZZ_CHECK(ua->has_text == 0 || ua->has_text == 1, "%s: has_text %d", what, ua->has_text);
    if (ua->has_value) FUZZ_CHECK(isfinite(ua->value), "%s: value %g is not finite", what, (double)ua->value);
    if (ua->has_text) {
        FUZZ_CHECK(fuzz_inside(ua->text, ua->text_len, data, end), "%s: text outside the input", what);
        FUZZ_CHECK(ua->text_len <= CODEC_MAX_TEXT_BYTES, "%s: text_len %zu", what, ua->text_len);
        FUZZ_CHECK(ua->text >= ua->action + ua->action_len, "%s: text overlaps action", what);
        FUZZ_CHECK((const uint8_t *)ua->text + ua->text_len == end, "%s: text does not end the record", what);
    }
}

static void fuzz_check_reason(codec_status st, const char *reason, size_t cap, const char *what) {
    size_t n = strnlen(reason, cap);
    FUZZ_CHECK(n < cap, "%s: reason not NUL-terminated inside its %zu bytes", what, cap);
    FUZZ_CHECK(n > 0, "%s: empty reason for %s", what, codec_status_name(st));
    FUZZ_CHECK(!memchr(reason, '\n', n) && !memchr(reason, '\r', n), "%s: reason is not one line: %s", what, reason);
    const char *cls = codec_status_name(st);
    size_t cl = strlen(cls);
    FUZZ_CHECK(n >= cl + 2 && !memcmp(reason, cls, cl) && reason[cl] == ':' && reason[cl + 1] == ' ',
               "%s: reason '%s' does not start with '%s: '", what, reason, cls);
}

static void fuzz_decode(const codec_in_opts *o, const uint8_t *data, size_t len, fuzz_result *r, const char *what) {
    memset(r->reason, 'Z', sizeof r->reason);
    fuzz_count_begin();
    r->st = codec_decode_user_action(o, data, len, &r->ua, r->reason, sizeof r->reason);
    long allocs = fuzz_count_end();
    FUZZ_CHECK(allocs == 0, "%s: the decoder allocated %ld time(s)", what, allocs);
    FUZZ_CHECK(fuzz_known_status(r->st), "%s: unknown status %d", what, (int)r->st);
    if (r->st == CODEC_OK) fuzz_check_ok(&r->ua, data, len, what);
    else fuzz_check_reason(r->st, r->reason, sizeof r->reason, what);
}

static int fuzz_same_str(const char *a, size_t an, const char *b, size_t bn) {
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Same status; when OK, the same fields (string bytes compared, not pointers unless same_ptrs). */
static void fuzz_check_same(const fuzz_result *a, const fuzz_result *b, int same_ptrs, const char *what) {
    FUZZ_CHECK(a->st == b->st, "%s: %s vs %s (%s | %s)", what, codec_status_name(a->st), codec_status_name(b->st),
               a->st ? a->reason : "", b->st ? b->reason : "");
    if (a->st != CODEC_OK) {
        FUZZ_CHECK(!strcmp(a->reason, b->reason), "%s: reasons differ: '%s' vs '%s'", what, a->reason, b->reason);
        return;
    }
    const user_action *x = &a->ua, *y = &b->ua;
    FUZZ_CHECK(fuzz_same_str(x->user_id, x->user_id_len, y->user_id, y->user_id_len), "%s: user_id differs", what);
    FUZZ_CHECK(fuzz_same_str(x->item_id, x->item_id_len, y->item_id, y->item_id_len), "%s: item_id differs", what);
    FUZZ_CHECK(fuzz_same_str(x->action, x->action_len, y->action, y->action_len), "%s: action differs", what);
    FUZZ_CHECK(x->ts == y->ts, "%s: ts differs", what);
    FUZZ_CHECK(x->has_value == y->has_value && (!x->has_value || !memcmp(&x->value, &y->value, 4)),
               "%s: value differs", what);
    FUZZ_CHECK(x->has_text == y->has_text && (!x->has_text || fuzz_same_str(x->text, x->text_len, y->text, y->text_len)),
               "%s: text differs", what);
    if (same_ptrs)
        FUZZ_CHECK(x->user_id == y->user_id && x->item_id == y->item_id && x->action == y->action &&
                   (!x->has_text || x->text == y->text), "%s: string pointers differ", what);
}

/* max_bytes only gates the size: over it "oversized", within it the same as the default. */
static void fuzz_check_limit(const codec_in_opts *base, size_t max, const uint8_t *data, size_t len,
                             const fuzz_result *def, const char *what) {
    codec_in_opts o = *base;
    o.max_bytes = max;
    fuzz_result r;
    fuzz_decode(&o, data, len, &r, what);
    if (len > max) FUZZ_CHECK(r.st == CODEC_E_OVERSIZED, "%s: %zu bytes over max %zu gave %s", what, len, max,
                              codec_status_name(r.st));
    else fuzz_check_same(def, &r, 1, what);
}

/* ---- canonical re-encoding ------------------------------------------------------------------ */

static uint8_t *fuzz_put_long(uint8_t *p, int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        *p++ = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    *p++ = (uint8_t)z;
    return p;
}

static uint8_t *fuzz_put_str(uint8_t *p, const char *s, size_t n) {
    p = fuzz_put_long(p, (int64_t)n);
    if (n) memcpy(p, s, n);
    return p + n;
}

/* The record as avro-c would write it; never longer than the decoded body, whose varints may
 * be padded but never shorter than canonical. Returns the size. */
static size_t fuzz_encode(const user_action *ua, int confluent, uint8_t *buf) {
    uint8_t *p = buf;
    if (confluent) {
        codec_put_confluent_header(p, FUZZ_SCHEMA_ID);
        p += 5;
    }
    p = fuzz_put_str(p, ua->user_id, ua->user_id_len);
    p = fuzz_put_str(p, ua->item_id, ua->item_id_len);
    p = fuzz_put_str(p, ua->action, ua->action_len);
    p = fuzz_put_long(p, ua->ts);
    p = fuzz_put_long(p, ua->has_value);
    if (ua->has_value) {
        uint32_t bits;
        memcpy(&bits, &ua->value, 4);
        for (int i = 0; i < 4; i++) *p++ = (uint8_t)(bits >> (8 * i));
    }
    p = fuzz_put_long(p, ua->has_text);
    if (ua->has_text) p = fuzz_put_str(p, ua->text, ua->text_len);
    return (size_t)(p - buf);
}

static void fuzz_check_roundtrip(const fuzz_result *r, size_t body_len, const char *what) {
    for (int confluent = 0; confluent < 2; confluent++) {
        /* Exact-size heap copy, so a read past the end is ASan's to see. */
        uint8_t *enc = malloc(body_len + 5 + 1);
        FUZZ_CHECK(enc != NULL, "out of memory");
        size_t n = fuzz_encode(&r->ua, confluent, enc);
        FUZZ_CHECK(n <= body_len + (confluent ? 5u : 0u), "%s: canonical encoding (%zu bytes) longer than the input (%zu)",
                   what, n, body_len);
        uint8_t *exact = malloc(n ? n : 1);
        FUZZ_CHECK(exact != NULL, "out of memory");
        memcpy(exact, enc, n);
        free(enc);
        codec_in_opts o = {confluent ? WIRE_CONFLUENT : WIRE_AVRO, FUZZ_SCHEMA_ID, 0};
        fuzz_result back;
        fuzz_decode(&o, exact, n, &back, confluent ? "re-encoded confluent" : "re-encoded avro");
        fuzz_check_same(r, &back, 0, what);
        free(exact);
    }
}

/* ---- short and missing reason buffers -------------------------------------------------------- */

static char g_reason1[1], g_reason9[9];   /* globals: ASan puts redzones right after them */

static void fuzz_check_short_reasons(const codec_in_opts *o, const uint8_t *data, size_t len, const fuzz_result *full) {
    user_action ua;
    codec_status st = codec_decode_user_action(o, data, len, &ua, NULL, 0);
    FUZZ_CHECK(st == full->st, "NULL reason: status %s vs %s", codec_status_name(st), codec_status_name(full->st));
    memset(g_reason1, 'Z', sizeof g_reason1);
    st = codec_decode_user_action(o, data, len, &ua, g_reason1, 0);
    FUZZ_CHECK(st == full->st && g_reason1[0] == 'Z', "0-byte reason: status differs or the buffer was written");
    st = codec_decode_user_action(o, data, len, &ua, g_reason1, sizeof g_reason1);
    FUZZ_CHECK(st == full->st, "1-byte reason: status differs");
    if (st != CODEC_OK) FUZZ_CHECK(g_reason1[0] == 0, "1-byte reason: not empty");
    memset(g_reason9, 'Z', sizeof g_reason9);
    st = codec_decode_user_action(o, data, len, &ua, g_reason9, sizeof g_reason9);
    FUZZ_CHECK(st == full->st, "9-byte reason: status differs");
    if (st != CODEC_OK) {
        size_t n = strnlen(g_reason9, sizeof g_reason9);
        FUZZ_CHECK(n < sizeof g_reason9, "9-byte reason: not NUL-terminated");
        FUZZ_CHECK(!strncmp(g_reason9, full->reason, n) && (n == sizeof g_reason9 - 1 || full->reason[n] == 0),
                   "9-byte reason '%s' is not a prefix of '%s'", g_reason9, full->reason);
    }
}

/* ---- the reference decoder ------------------------------------------------------------------- */

/* What the reference expects: a status, the field its reason must name ("" for none), and on
 * OK the decoded record. The order of checks is codec.h's contract: size, framing, schema id,
 * then the Avro structure in field order (the first problem wins), then validation in field
 * order. */
typedef struct {
    codec_status st;
    const char *field;
    user_action ua;
} fuzz_ref;

/* Avro long at *pos: 0 ok, 1 truncated, 2 bad (more than 10 bytes, or wider than 64 bits). */
static int fuzz_ref_long(const uint8_t *d, size_t len, size_t *pos, int64_t *out) {
    uint64_t acc = 0;
    for (unsigned k = 0;; k++) {
        if (*pos >= len) return 1;
        uint8_t byte = d[(*pos)++];
        if (k == 9 && byte > 1) return 2;   /* 9 * 7 = 63: one bit left, and no continuation */
        acc |= (uint64_t)(byte & 0x7F) << (7 * k);
        if (byte < 0x80) break;
    }
    *out = (int64_t)(acc >> 1) ^ -(int64_t)(acc & 1);
    return 0;
}

static int fuzz_ref_fail(fuzz_ref *r, codec_status st, const char *field) {
    r->st = st;
    r->field = field;
    return -1;
}

static int fuzz_ref_string(const uint8_t *d, size_t len, size_t *pos, const char *field, const char **s, size_t *n,
                           fuzz_ref *r) {
    int64_t l;
    if (fuzz_ref_long(d, len, pos, &l) || l < 0 || (uint64_t)l > len - *pos) return fuzz_ref_fail(r, CODEC_E_AVRO, field);
    *s = (const char *)d + *pos;
    *n = (size_t)l;
    *pos += (size_t)l;
    return 0;
}

static int fuzz_ref_branch(const uint8_t *d, size_t len, size_t *pos, const char *field, int *present, fuzz_ref *r) {
    int64_t b;
    if (fuzz_ref_long(d, len, pos, &b) || (b != 0 && b != 1)) return fuzz_ref_fail(r, CODEC_E_AVRO, field);
    *present = (int)b;
    return 0;
}

/* UTF-8 as RFC 3629 defines it, decoded code point by code point: no overlong form, no
 * surrogate, nothing above U+10FFFF. */
static int fuzz_ref_utf8(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        uint32_t c = p[i];
        size_t k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 4;
        if (k == 4 || n - i <= k) return 0;
        if (k) c &= 0x3F >> k;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return 0;
            c = c << 6 | (p[i + j] & 0x3F);
        }
        static const uint32_t least[] = {0, 0x80, 0x800, 0x10000};
        if (c < least[k] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

/* An id as codec.h's rules have it: non-empty, at most max bytes, UTF-8. */
static int fuzz_ref_id_ok(const char *s, size_t n, size_t max) { return n > 0 && n <= max && fuzz_ref_utf8(s, n); }

static void fuzz_ref_decode(const codec_in_opts *o, const uint8_t *d, size_t len, fuzz_ref *r) {
    memset(r, 0, sizeof *r);
    r->field = "";
    size_t max = o->max_bytes ? o->max_bytes : (size_t)1 << 20, pos = 0;
    user_action *u = &r->ua;
    if (len > max) {
        r->st = CODEC_E_OVERSIZED;
        return;
    }
    if (o->format == WIRE_CONFLUENT) {
        if (len < 5 || d[0] != 0) {
            r->st = CODEC_E_FRAMING;
            return;
        }
        if ((int32_t)(((uint32_t)d[1] << 24) | ((uint32_t)d[2] << 16) | ((uint32_t)d[3] << 8) | d[4]) != o->schema_id) {
            r->st = CODEC_E_SCHEMA_ID;
            return;
        }
        pos = 5;
    }
    if (fuzz_ref_string(d, len, &pos, "user_id", &u->user_id, &u->user_id_len, r) ||
        fuzz_ref_string(d, len, &pos, "item_id", &u->item_id, &u->item_id_len, r) ||
        fuzz_ref_string(d, len, &pos, "action", &u->action, &u->action_len, r))
        return;
    if (fuzz_ref_long(d, len, &pos, &u->ts)) {
        fuzz_ref_fail(r, CODEC_E_AVRO, "ts");
        return;
    }
    if (fuzz_ref_branch(d, len, &pos, "value", &u->has_value, r)) return;
    if (u->has_value) {
        if (len - pos < 4) {
            fuzz_ref_fail(r, CODEC_E_AVRO, "value");
            return;
        }
        uint32_t bits = 0;
        for (int i = 3; i >= 0; i--) bits = bits << 8 | d[pos + (size_t)i];
        memcpy(&u->value, &bits, 4);
        pos += 4;
    }
    if (fuzz_ref_branch(d, len, &pos, "text", &u->has_text, r)) return;
    if (u->has_text && fuzz_ref_string(d, len, &pos, "text", &u->text, &u->text_len, r)) return;
    if (pos != len) {
        fuzz_ref_fail(r, CODEC_E_AVRO, "trailing");
        return;
    }
    if (!fuzz_ref_id_ok(u->user_id, u->user_id_len, CODEC_MAX_ID_BYTES)) fuzz_ref_fail(r, CODEC_E_INVALID, "user_id");
    else if (!fuzz_ref_id_ok(u->item_id, u->item_id_len, CODEC_MAX_ID_BYTES)) fuzz_ref_fail(r, CODEC_E_INVALID, "item_id");
    else if (!fuzz_ref_id_ok(u->action, u->action_len, CODEC_MAX_ACTION_BYTES)) fuzz_ref_fail(r, CODEC_E_INVALID, "action");
    else if (u->ts < CODEC_TS_MIN || u->ts >= CODEC_TS_MAX) fuzz_ref_fail(r, CODEC_E_INVALID, "ts");
    else if (u->has_value && (isnan(u->value) || isinf(u->value))) fuzz_ref_fail(r, CODEC_E_INVALID, "value");
    else if (u->has_text && (u->text_len > CODEC_MAX_TEXT_BYTES || !fuzz_ref_utf8(u->text, u->text_len)))
        fuzz_ref_fail(r, CODEC_E_INVALID, "text");
    else r->st = CODEC_OK;
}

/* The decoder and the reference agree: status, the field named, and on OK every field at the
 * same place in the input. */
static void fuzz_check_ref(const codec_in_opts *o, const uint8_t *data, size_t len, const fuzz_result *got,
                           const char *what) {
    fuzz_ref want;
    fuzz_ref_decode(o, data, len, &want);
    FUZZ_CHECK(got->st == want.st, "%s: decoder says %s ('%s'), the reference %s (%s)", what,
               codec_status_name(got->st), got->st ? got->reason : "", codec_status_name(want.st), want.field);
    if (got->st != CODEC_OK) {
        if (*want.field) {
            char needle[32];
            if (!strcmp(want.field, "trailing")) snprintf(needle, sizeof needle, "trailing bytes");
            else if (want.st == CODEC_E_AVRO) snprintf(needle, sizeof needle, "field %s", want.field);
            else snprintf(needle, sizeof needle, "invalid: %s ", want.field);
            FUZZ_CHECK(strstr(got->reason, needle) != NULL, "%s: reason '%s' does not name '%s'", what, got->reason,
                       needle);
        }
        return;
    }
    fuzz_result r;
    r.st = CODEC_OK;
    r.ua = want.ua;
    fuzz_check_same(got, &r, 1, what);
}

/* ---- the target ------------------------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const codec_in_opts confluent = {WIRE_CONFLUENT, FUZZ_SCHEMA_ID, 0};
    static const codec_in_opts avro = {WIRE_AVRO, 0, 0};
    fuzz_result c, a, ab;
    /* A boundary limit from the input itself: len or len - 1 (never 0, which means default). */
    size_t edge = size > 1 ? size - (size_t)(data[size / 2] & 1) : 1;

    fuzz_decode(&confluent, data, size, &c, "confluent");
    fuzz_check_ref(&confluent, data, size, &c, "confluent vs reference");
    fuzz_check_limit(&confluent, 64, data, size, &c, "confluent, max 64");
    fuzz_check_limit(&confluent, edge, data, size, &c, "confluent, max len or len-1");
    fuzz_check_short_reasons(&confluent, data, size, &c);
    if (c.st == CODEC_OK) {
        FUZZ_CHECK(size >= 5 && data[0] == 0, "confluent OK without a header");
        FUZZ_CHECK((const uint8_t *)c.ua.user_id > data + 5, "confluent: user_id inside the header");
        fuzz_check_roundtrip(&c, size - 5, "confluent round trip");
    }

    fuzz_decode(&avro, data, size, &a, "avro");
    fuzz_check_ref(&avro, data, size, &a, "avro vs reference");
    fuzz_check_limit(&avro, 64, data, size, &a, "avro, max 64");
    fuzz_check_limit(&avro, edge, data, size, &a, "avro, max len or len-1");
    fuzz_check_short_reasons(&avro, data, size, &a);
    if (a.st == CODEC_OK) fuzz_check_roundtrip(&a, size, "avro round trip");

    /* The body after a Confluent header, as plain Avro: decodes exactly as the framed record
     * whenever the header was the expected one. */
    if (size >= 5 && size <= (1u << 20)) {   /* under the default limit either way */
        fuzz_decode(&avro, data + 5, size - 5, &ab, "avro body");
        if (data[0] == 0 && data[1] == 0 && data[2] == 0 && data[3] == 0 && data[4] == FUZZ_SCHEMA_ID)
            fuzz_check_same(&c, &ab, 1, "framed vs body");
    }
    return 0;
}
