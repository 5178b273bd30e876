/* item_codec: the Item record of the items topic (schemas/item.avsc, ievo.v1.Item: item_id, text,
 * ts), Confluent-framed like the other topics.
 *
 * The worker decodes with a hand decoder in codec.c's discipline (zero-copy, bounded by the
 * payload, every length checked before use; off the per-event path, but a catalogue topic is as
 * untrusted as any input). `ievo produce --items` and the tests encode with avro-c's generic
 * writer, so the two sides check each other.
 */
#ifndef IEVO_ITEM_CODEC_H
#define IEVO_ITEM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

extern const char *const ievo_schema_item_json; /* schemas/item.avsc, embedded at build time */

#define ITEM_MAX_TEXT_BYTES (1 << 20) /* the text encoder refuses longer texts */

typedef struct {
    const char *item_id; size_t item_id_len;
    const char *text; size_t text_len;
    int64_t ts;
} item_record;

/* Decodes and validates one Item (item_id non-empty, <= CODEC_MAX_ID_BYTES; text <=
 * ITEM_MAX_TEXT_BYTES; ts in the codec's range). Returns CODEC_OK or the class, with a reason. */
codec_status item_decode(const codec_in_opts *o, const void *payload, size_t len, item_record *out, char *reason,
                         size_t reason_len);

/* The validation item_decode applies (for a record read another way). */
codec_status item_validate(const item_record *r, char *reason, size_t reason_len);

/* A body (no header) written with the writer schema plan was made for (item_plan_new; NULL:
 * schemas/item.avsc itself), decoded and validated as item_decode does (codec_resolved.c). */
struct resolve_plan;
codec_status item_decode_as(const struct resolve_plan *plan, const uint8_t *body, size_t len, item_record *out,
                            char *reason, size_t reason_len);
/* A plan reading Item bodies written with writer_json. Returns 0, or -1 with err naming the field. */
int item_plan_new(const char *writer_json, size_t writer_len, struct resolve_plan **out, char *err, size_t errlen);

/* avro-c writer (produce, tests). *out stays valid until the next call. */
typedef struct item_writer item_writer;
item_writer *item_writer_new(wire_format fmt, int32_t schema_id, char *err, size_t errlen);
void item_writer_free(item_writer *w);
int item_write(item_writer *w, const item_record *r, const uint8_t **out, size_t *len, char *err, size_t errlen);

#endif
