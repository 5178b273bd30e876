/* avro_tools: avro-c generic-API codecs for the tools and tests, off the per-event path.
 *
 * `ievo produce` writes UserActions with avro-c, `ievo consume` reads InterestVectors with
 * avro-c and prints them as JSON lines, and the codec tests compare the hand codecs (codec.c)
 * against these. Keeping this side on the library's generic API makes it an independent check:
 * a bug in the hand codec cannot hide behind the same bug here.
 *
 * avro-c traps handled here (platform notes 4.10): string lengths passed to avro-c include the
 * NUL, arrays are reset before refilling, field handles are looked up once per reused record,
 * and the Confluent 5-byte header is added and stripped by hand.
 */
#ifndef IEVO_AVRO_TOOLS_H
#define IEVO_AVRO_TOOLS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "codec.h"

/* ---- UserAction writer (avro-c generic) ---- */
typedef struct avro_tools_ua_writer avro_tools_ua_writer;
avro_tools_ua_writer *avro_tools_ua_writer_new(wire_format fmt, int32_t schema_id, char *err, size_t errlen);
void avro_tools_ua_writer_free(avro_tools_ua_writer *w);
/* Encodes one record (header included for WIRE_CONFLUENT). *out stays valid until the next call.
 * Strings need not be NUL-terminated. Returns 0, or -1 with err filled. */
int avro_tools_ua_write(avro_tools_ua_writer *w, const user_action *ua, const uint8_t **out, size_t *len,
                        char *err, size_t errlen);

/* ---- InterestVector writer (avro-c generic; the tests' reference encoding) ---- */
typedef struct avro_tools_iv_writer avro_tools_iv_writer;
avro_tools_iv_writer *avro_tools_iv_writer_new(wire_format fmt, int32_t schema_id, char *err, size_t errlen);
void avro_tools_iv_writer_free(avro_tools_iv_writer *w);
int avro_tools_iv_write(avro_tools_iv_writer *w, const interest_vector *iv, const uint8_t **out, size_t *len,
                        char *err, size_t errlen);

/* ---- InterestVector reader (avro-c generic) ---- */
typedef struct avro_tools_iv_reader avro_tools_iv_reader;
avro_tools_iv_reader *avro_tools_iv_reader_new(wire_format fmt, char *err, size_t errlen);
void avro_tools_iv_reader_free(avro_tools_iv_reader *r);
/* Decodes one payload into *out, whose pointers stay valid until the next call on r. For
 * WIRE_CONFLUENT the magic byte is checked and the schema id returned in *schema_id (may be NULL);
 * a record whose id has a writer schema added (below) is read with it. Trailing bytes after the
 * record are an error (not checked for an added writer: avro-c's resolver does not tell how many
 * bytes it read). Returns 0, or -1 with err filled. */
int avro_tools_iv_read(avro_tools_iv_reader *r, const void *payload, size_t len, interest_vector *out,
                       int32_t *schema_id, char *err, size_t errlen);

/* From now on records framed with schema id id are read as written with writer_json (a schema
 * registry's schema for that id), resolved into interest_vector.avsc by avro-c's resolving
 * reader; a field the writer lacks takes the reader's default (avro-c has no defaults: it is
 * left out of the resolution and filled here). Returns 0, or -1 with err when the writer cannot
 * be read as ours. */
int avro_tools_iv_reader_add_writer(avro_tools_iv_reader *r, int32_t id, const char *writer_json, char *err,
                                    size_t errlen);
int avro_tools_iv_reader_has_writer(const avro_tools_iv_reader *r, int32_t id);

/* Writes iv to f as one JSON line: every schema field, then "partition" and "offset" of the
 * Kafka record when partition >= 0. Returns 0, or -1 with err filled (out of memory, or f
 * failed). */
int avro_tools_iv_write_json(const interest_vector *iv, int32_t partition, int64_t offset, FILE *f, char *err,
                             size_t errlen);

#endif
