/* registry: a client of the Confluent Schema Registry REST API (which Karapace, Apicurio's ccompat
 * API and Redpanda's registry also serve), over libcurl.
 *
 * What it asks:
 *   GET  /schemas/ids/{id}                 a writer's schema by the id in a record's header
 *   POST /subjects/{subject}/versions      register a schema (or get the id it already has)
 *   POST /subjects/{subject}               look a schema up without registering it
 *   GET  /subjects/{subject}/versions/latest
 * Settings in the registry's own vocabulary, rows of the settings table (settings.h) read by
 * registry_config.c: schema.registry.url (several, comma-separated, tried in turn),
 * basic.auth.user.info (user:password; a secret, never logged), schema.registry.ssl.* (PEM
 * files), timeouts and retries.
 *
 * A request that fails for the transport (no connection, a timeout, TLS) or with a 5xx goes to
 * the next URL; after every URL failed it is retried after a backoff (doubling, capped) up to
 * schema.registry.retries times, then reported as REGISTRY_UNAVAILABLE. A 4xx is the registry's
 * answer and is not retried: 404 is REGISTRY_NOT_FOUND, 401/403 (credentials), 409
 * (incompatible) and 422 (invalid schema) are REGISTRY_REFUSED, the registry's error_code and
 * message quoted.
 *
 * Caches: schemas by id (an id's schema never changes), ids by (subject, schema), and schemas by
 * (subject, version); a cached answer costs no request. One client is used by one thread.
 */
#ifndef IEVO_REGISTRY_H
#define IEVO_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef enum {
    SUBJECT_TOPIC_NAME,         /* <topic>-value (TopicNameStrategy, the default) */
    SUBJECT_RECORD_NAME,        /* <namespace>.<name> of the record (RecordNameStrategy) */
    SUBJECT_TOPIC_RECORD_NAME,  /* <topic>-<namespace>.<name> (TopicRecordNameStrategy) */
} registry_subject_strategy;

/* Filled in place by registry_opts_from_config and not copied: urls point into url_buf, the
 * strings into the config. */
typedef struct {
    char *urls[8];               /* schema.registry.url, comma-separated; n_urls 0: no registry */
    int n_urls;
    const char *user_info;       /* basic.auth.user.info ("user:password"), or NULL */
    const char *ca_location, *cert_location, *key_location, *key_password;   /* schema.registry.ssl.* */
    int verify_host;             /* schema.registry.ssl.endpoint.identification.algorithm: https (1) or none */
    int timeout_ms;              /* schema.registry.request.timeout.ms, one request */
    int retries;                 /* schema.registry.retries: rounds over every URL after the first */
    int backoff_ms, backoff_max_ms;   /* schema.registry.retry.backoff.ms, .max.ms */
    int auto_register;           /* auto.register.schemas: register the output schemas (else look them up) */
    int use_latest;              /* use.latest.version: write with the subject's latest version (must be ours) */
    registry_subject_strategy strategy;  /* value.subject.name.strategy */
    int wait_dead_letter;        /* schema.registry.unavailable: wait (0) or dead-letter (1) */
    int wait_ms;                 /* schema.registry.wait.ms: how long a start or a new id waits */
    char url_buf[2048];
} registry_opts;

/* Reads the registry settings from c through the settings table, where they are declared (so
 * that none goes to librdkafka), as the command `commands` (a SETTINGS_CMD_* bit) reads them: a
 * key the table does not list for it keeps its default. No schema.registry.url: n_urls is 0 and
 * the rest is defaults. Returns 0, or -1 with err naming the key (never a secret's value). */
int registry_opts_from_config(registry_opts *o, const config *c, unsigned commands, char *err, size_t errlen);

typedef enum {
    REGISTRY_OK = 0,
    REGISTRY_NOT_FOUND,     /* 404: no such id, subject, version or schema under the subject */
    REGISTRY_UNAVAILABLE,   /* no URL answered (transport errors, 5xx) after the retries */
    REGISTRY_REFUSED,       /* 4xx: credentials refused, schema invalid or incompatible */
} registry_status;

typedef struct registry registry;

/* A client for o's URLs (o must outlive it). Returns 0, or -1 with err. */
int registry_new(const registry_opts *o, registry **out, char *err, size_t errlen);
void registry_free(registry *r);

/* The schema (its JSON text, valid while r lives) registered under id; REGISTRY_NOT_FOUND too
 * when the id holds a schema of another type (Protobuf, JSON Schema). */
registry_status registry_schema_by_id(registry *r, int32_t id, const char **schema, char *err, size_t errlen);
/* Registers schema under subject (the registry returns the existing id when it is already
 * there) and gives its id. */
registry_status registry_register(registry *r, const char *subject, const char *schema, int32_t *id, char *err,
                                  size_t errlen);
/* The id and version schema has under subject, without registering it. */
registry_status registry_lookup(registry *r, const char *subject, const char *schema, int32_t *id, int *version,
                                char *err, size_t errlen);
/* The subject's latest version: its id, version and schema text (valid while r lives). Asked
 * every time (the latest moves); the answer is cached by (subject, version) and by id. */
registry_status registry_latest(registry *r, const char *subject, int32_t *id, int *version, const char **schema,
                                char *err, size_t errlen);

/* Requests sent (HTTP exchanges, retries included) and answered from the cache: for tests and
 * the worker's summary. */
void registry_counts(const registry *r, int64_t *requests, int64_t *cache_hits);

/* The subject a topic's value schema goes under with strategy s. schema: its JSON (for the record
 * name). Returns 0, or -1 with err. */
int registry_subject(registry_subject_strategy s, const char *topic, const char *schema, char *out, size_t outlen,
                     char *err, size_t errlen);

#endif
