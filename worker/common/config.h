/* config: key=value settings in Kafka's own vocabulary, from a properties file, environment
 * variables and `-X key=value` flags (later sources win: file < environment < -X).
 *
 * ievo's keys (input.topic, state.dir, ...) are declared in the settings table (settings.h),
 * which reads them with types, defaults and checks; every other key is a librdkafka property
 * and passes straight through to the clients (kafka_clients.h), as in kcat and Fluent Bit.
 * Environment: IEVO_CFG_<KEY> with the key upper-cased and '.' written as '_'
 * (IEVO_CFG_BOOTSTRAP_SERVERS=... sets bootstrap.servers), for containers.
 */
#ifndef IEVO_CONFIG_H
#define IEVO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

typedef struct {
    char *key, *value;
} config_entry;

typedef struct {
    config_entry *e;
    size_t n, cap;
} config;

void config_free(config *c);
/* Sets (or replaces) key. Returns 0, or -1 on ENOMEM. */
int config_set(config *c, const char *key, const char *value);
/* Parses "key=value" (as from -X). An error never quotes kv. */
int config_set_kv(config *c, const char *kv, char *err, size_t errlen);
/* Reads a properties file: "key=value" lines, '#' and '!' comments, blank lines. Errors name
 * the file and line, never the line's text (it may hold a secret). */
int config_load_file(config *c, const char *path, char *err, size_t errlen);
/* Applies IEVO_CFG_* environment variables. */
int config_load_env(config *c, char *err, size_t errlen);

const char *config_get(const config *c, const char *key, const char *def);
/* Applies NULL-terminated key, value pairs to kc. Returns 0, or -1 naming the pair. */
int config_kafka_defaults(rd_kafka_conf_t *kc, const char *const *defaults, char *err, size_t errlen);
/* Whether key is in the NULL-terminated list (NULL: no). */
int config_key_in(const char *key, const char *const *list);

#endif
