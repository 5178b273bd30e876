/* codec: the hot-path wire codecs. UserAction in (decode + validate), InterestVector out (encode).
 *
 * Hand-written for the two records on the per-event path: the decoder is zero-copy and bounded
 * by the payload (a hostile length can never make it allocate), the encoder writes the exact
 * bytes avro-c's generic writer would (tests compare them byte for byte, and decode both ways
 * with avro-c). Schemas: schemas/user_action.avsc, schemas/interest_vector.avsc.
 *
 * Wire formats: Confluent framing (magic byte 0, 4-byte big-endian schema id, Avro binary) by
 * default; plain Avro binary as an option.
 */
#ifndef IEVO_CODEC_H
#define IEVO_CODEC_H

#include <stddef.h>
#include <stdint.h>

typedef enum { WIRE_CONFLUENT = 0, WIRE_AVRO = 1 } wire_format;
/* "confluent" or "avro"; -1 when unknown. */
int wire_format_parse(const char *s);

/* Why a record was rejected; the DLQ header carries both the class name and the message. */
typedef enum {
    CODEC_OK = 0,
    CODEC_E_OVERSIZED,   /* payload longer than max_bytes */
    CODEC_E_FRAMING,     /* shorter than 5 bytes, or magic byte != 0 */
    CODEC_E_SCHEMA_ID,   /* schema id not the configured one (with a registry: not registered) */
    CODEC_E_AVRO,        /* truncated, bad varint, negative length, bad union branch, trailing bytes */
    CODEC_E_INVALID,     /* decodes, but fails validation */
    CODEC_E_SCHEMA,      /* the writer's schema cannot be read as the reader's (incompatible) */
    CODEC_E_REGISTRY,    /* the writer's schema could not be fetched from the schema registry */
} codec_status;
#define CODEC_STATUS_LAST CODEC_E_REGISTRY
/* "oversized", "framing", "schema_id", "avro", "invalid", "schema", "registry" */
const char *codec_status_name(codec_status s);

/* Validation limits (bytes unless noted). */
#define CODEC_MAX_ID_BYTES 512          /* user_id, item_id */
#define CODEC_MAX_ACTION_BYTES 64
#define CODEC_MAX_TEXT_BYTES 65536
#define CODEC_TS_MIN 0LL                /* event time, ms since epoch: [1970, 2100) */
#define CODEC_TS_MAX 4102444800000LL

typedef struct {
    wire_format format;
    int32_t schema_id;      /* expected id when format is WIRE_CONFLUENT */
    size_t max_bytes;       /* larger payloads are CODEC_E_OVERSIZED (default 1 MiB) */
} codec_in_opts;

/* A decoded UserAction. Strings point into the payload (not NUL-terminated). */
typedef struct {
    const char *user_id; size_t user_id_len;
    const char *item_id; size_t item_id_len;
    const char *action;  size_t action_len;
    int64_t ts;
    int has_value; float value;
    int has_text; const char *text; size_t text_len;
} user_action;

/* Decodes and validates one record. On failure returns the class and writes a one-line reason
 * ("avro: truncated in field item_id", "invalid: value is NaN", ...) into reason. Validation:
 * user_id, item_id, action non-empty and within the limits above; ts within [TS_MIN, TS_MAX);
 * value finite; text within limits. */
codec_status codec_decode_user_action(const codec_in_opts *o, const void *payload, size_t len,
                                      user_action *out, char *reason, size_t reason_len);

typedef struct {
    const char *item_id; size_t item_id_len;
    float score;
} codec_top_item;

/* One InterestVector; strings are not NUL-terminated. top_items may be NULL (encoded as null). */
typedef struct {
    const char *user_id; size_t user_id_len;
    int64_t ts;
    int64_t events;
    const float *vector; int dim;
    float drift;
    const char *model; size_t model_len;
    int32_t source_partition;
    int64_t source_offset;
    const codec_top_item *top_items; int n_top_items;
} interest_vector;

typedef struct {
    wire_format format;
    int32_t schema_id;
} codec_out_opts;

/* The decoding of a writer schema other than the reader's (resolve.h), NULL: the reader's own. */
struct resolve_plan;

/* Checks the size limit and the 5-byte Confluent header (magic 0): the schema id in *schema_id and
 * the Avro body in *body, *body_len. Returns CODEC_OK, CODEC_E_OVERSIZED or CODEC_E_FRAMING. */
codec_status codec_read_header(const void *payload, size_t len, size_t max_bytes, int32_t *schema_id,
                               const uint8_t **body, size_t *body_len, char *reason, size_t reason_len);

/* Decodes and validates one UserAction body (no header) written with the writer schema plan was
 * made for (codec_user_action_plan_new; NULL: schemas/user_action.avsc itself): the same fields,
 * limits and reasons as codec_decode_user_action. A writer with the reader's layout
 * takes the hand decoder; one that only appends fields takes it too and skips the rest. */
codec_status codec_decode_user_action_as(const struct resolve_plan *plan, const uint8_t *body, size_t len,
                                         user_action *out, char *reason, size_t reason_len);

/* A plan that reads UserAction bodies written with writer_json into schemas/user_action.avsc.
 * Returns 0, or -1 with err naming the field that makes the writer incompatible. */
int codec_user_action_plan_new(const char *writer_json, size_t writer_len, struct resolve_plan **out, char *err,
                               size_t errlen);

/* Encodes into buf (capacity cap). Returns the encoded size; when that is larger than cap,
 * nothing useful was written and the caller retries with a buffer of that size. */
size_t codec_encode_interest_vector(const codec_out_opts *o, const interest_vector *iv,
                                    uint8_t *buf, size_t cap);

/* Writes / strips the 5-byte Confluent header. */
void codec_put_confluent_header(uint8_t *buf5, int32_t schema_id);

#endif
