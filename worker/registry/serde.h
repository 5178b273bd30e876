/* serde: Confluent-framed records (magic 0, 4-byte schema id, Avro body) through a schema registry,
 * as Kafka's serializers and deserializers do it.
 *
 * Input (serde_in): a record's schema id is looked up once, its writer schema fetched from the
 * registry and compiled against ours (resolve.h); the plan is cached by id, so a record costs an
 * id compare and its decode, never a request. An id the registry does not know dead-letters its
 * records (schema_id), an incompatible writer its records (schema, the field named). When the
 * registry cannot be reached for a new id: schema.registry.unavailable=wait retries up to
 * schema.registry.wait.ms and then reports CODEC_E_REGISTRY for the caller to stop on (nothing
 * past the record is committed); dead-letter reports it at once (the record dead-lettered with
 * class registry), asking the registry again only after a backoff. Ids already cached keep
 * flowing while the registry is down.
 *
 * Output (serde_out_id): the id to write our schema with on a topic: registered under the
 * topic's subject (auto.register.schemas=true), looked up (false), or the subject's latest
 * version when use.latest.version=true (which must be our schema: the encoder writes only ours).
 *
 * Without a registry (schema.registry.url unset) both are today's fixed ids: the input accepts
 * its one configured id (or plain Avro), the output writes its configured id.
 */
#ifndef IEVO_SERDE_H
#define IEVO_SERDE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "item_codec.h"
#include "registry.h"

typedef enum { SERDE_USER_ACTION, SERDE_ITEM } serde_record;

typedef struct {
    registry *reg;                /* NULL: the fixed id in fixed.schema_id (or fixed.format avro) */
    const registry_opts *ro;      /* with reg: the unavailable policy and wait */
    codec_in_opts fixed;          /* format and id without a registry; max_bytes in both cases */
    serde_record record;
    int (*should_stop)(void);     /* polled while waiting for the registry; NULL: never */
} serde_in_opts;

typedef struct serde_in serde_in;

/* Returns 0, or -1 with err (a registry with input.format=avro: the registry needs the header). */
int serde_in_new(const serde_in_opts *o, serde_in **out, char *err, size_t errlen);
void serde_in_free(serde_in *in);

/* Decode and validate one framed record (codec_decode_user_action's contract, plus
 * CODEC_E_SCHEMA for an incompatible writer and CODEC_E_REGISTRY for a registry that could not
 * be reached). */
codec_status serde_decode_user_action(serde_in *in, const void *payload, size_t len, user_action *out, char *reason,
                                      size_t reason_len);
codec_status serde_decode_item(serde_in *in, const void *payload, size_t len, item_record *out, char *reason,
                               size_t reason_len);

/* CODEC_E_REGISTRY means stop (schema.registry.unavailable=wait) rather than dead-letter. */
int serde_in_waits(const serde_in *in);

typedef struct {
    int64_t ids;            /* writer schema ids met */
    int64_t same;           /* ... whose layout is ours (the hand decoder) */
    int64_t resolved;       /* ... read through a plan */
    int64_t incompatible;   /* ... that cannot be read as ours */
    int64_t unknown;        /* ... the registry does not know */
    int64_t unavailable;    /* lookups that found the registry unreachable */
} serde_in_stats;
void serde_in_stats_get(const serde_in *in, serde_in_stats *out);

/* For the tools: opens the registry c's settings name, as the command `commands` reads them
 * (registry_opts_from_config), into *reg (NULL when schema.registry.url is unset), its settings
 * in *ro (which must outlive it). Returns 0, or -1 with err. */
int serde_registry_open(const config *c, unsigned commands, registry_opts *ro, registry **reg, char *err,
                        size_t errlen);

/* The id to write schema (our JSON text, as registered) with on topic; see the header comment.
 * An unreachable registry is retried for ro->wait_ms (should_stop ends it early). Returns 0, or
 * -1 with err. */
int serde_out_id(registry *reg, const registry_opts *ro, const char *topic, const char *schema,
                 int (*should_stop)(void), int32_t *id, char *err, size_t errlen);

#endif
