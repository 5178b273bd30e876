/* registry_config: the schema registry's settings, named as Confluent's serializers and
 * librdkafka-based clients name them, read through the settings table (worker/common/settings.c
 * declares them; see registry.h for their meaning). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"
#include "settings.h"

/* A command's view of the settings: the keys the table lists for it come from c; the others
 * keep their defaults, as the command has noted them ignored. */
typedef struct {
    const config *c;
    unsigned commands;
} registry_settings;

static const config *source(const registry_settings *r, const char *key) {
    static const config none = {NULL, 0, 0};
    const setting *s = settings_find(key);
    return s && (s->commands & r->commands) ? r->c : &none;
}
static int get_string(const registry_settings *r, const char *key, const char **out, char *err, size_t errlen) {
    return settings_string(source(r, key), key, out, err, errlen);
}
static int get_int(const registry_settings *r, const char *key, int64_t *out, char *err, size_t errlen) {
    return settings_int(source(r, key), key, out, err, errlen);
}
static int get_bool(const registry_settings *r, const char *key, int *out, char *err, size_t errlen) {
    return settings_bool(source(r, key), key, out, err, errlen);
}
static int get_enum(const registry_settings *r, const char *key, int *out, char *err, size_t errlen) {
    return settings_enum(source(r, key), key, out, err, errlen);
}

static int registry_strategy(const char *v, registry_subject_strategy *out) {
    static const char pkg[] = "io.confluent.kafka.serializers.subject.";
    if (!strncmp(v, pkg, sizeof pkg - 1)) v += sizeof pkg - 1;
    if (!strcmp(v, "TopicNameStrategy")) *out = SUBJECT_TOPIC_NAME;
    else if (!strcmp(v, "RecordNameStrategy")) *out = SUBJECT_RECORD_NAME;
    else if (!strcmp(v, "TopicRecordNameStrategy")) *out = SUBJECT_TOPIC_RECORD_NAME;
    else return -1;
    return 0;
}

/* schema.registry.url into o->urls (pointing into o->url_buf). */
static int registry_urls(registry_opts *o, const registry_settings *r, char *err, size_t errlen) {
    const char *urls;
    if (get_string(r, "schema.registry.url", &urls, err, errlen)) return -1;
    if (!urls || !*urls) return 0;
    if (strlen(urls) >= sizeof o->url_buf) return snprintf(err, errlen, "schema.registry.url: too long"), -1;
    strcpy(o->url_buf, urls);
    for (char *save = NULL, *u = strtok_r(o->url_buf, ", ", &save); u; u = strtok_r(NULL, ", ", &save)) {
        if (o->n_urls == (int)(sizeof o->urls / sizeof o->urls[0]))
            return snprintf(err, errlen, "schema.registry.url: more than 8 URLs"), -1;
        if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))
            return snprintf(err, errlen, "schema.registry.url: '%.200s' is not an http:// or https:// URL",
                            settings_shown_value("schema.registry.url", u)), -1;
        o->urls[o->n_urls++] = u;
    }
    return 0;
}

/* basic.auth.user.info (or its longer name) and where the credentials come from. */
static int registry_credentials(registry_opts *o, const registry_settings *r, char *err, size_t errlen) {
    const char *info, *alias;
    int source;   /* USER_INFO|URL */
    if (get_string(r, "basic.auth.user.info", &info, err, errlen) ||
        get_string(r, "schema.registry.basic.auth.user.info", &alias, err, errlen) ||
        get_enum(r, "basic.auth.credentials.source", &source, err, errlen))
        return -1;
    o->user_info = info ? info : alias;
    if (source == 1 && o->user_info)
        return snprintf(err, errlen, "basic.auth.credentials.source=URL takes the credentials from "
                        "schema.registry.url; basic.auth.user.info is set too"), -1;
    if (o->user_info && !strchr(o->user_info, ':'))
        return snprintf(err, errlen, "%s: expected user:password (value not shown)",
                        info ? "basic.auth.user.info" : "schema.registry.basic.auth.user.info"), -1;
    return 0;
}

static int registry_tls(registry_opts *o, const registry_settings *r, char *err, size_t errlen) {
    const char *truststore, *keystore;
    int verify;   /* https|none */
    if (get_string(r, "schema.registry.ssl.truststore.location", &truststore, err, errlen) ||
        get_string(r, "schema.registry.ssl.keystore.location", &keystore, err, errlen))
        return -1;
    if (truststore || keystore)
        return snprintf(err, errlen, "schema.registry.ssl.truststore.location / keystore.location: Java keystores "
                        "are not read here; give PEM files in schema.registry.ssl.ca.location, "
                        ".certificate.location, .key.location"), -1;
    if (get_string(r, "schema.registry.ssl.ca.location", &o->ca_location, err, errlen) ||
        get_string(r, "schema.registry.ssl.certificate.location", &o->cert_location, err, errlen) ||
        get_string(r, "schema.registry.ssl.key.location", &o->key_location, err, errlen) ||
        get_string(r, "schema.registry.ssl.key.password", &o->key_password, err, errlen) ||
        get_enum(r, "schema.registry.ssl.endpoint.identification.algorithm", &verify, err, errlen))
        return -1;
    o->verify_host = verify == 0;
    return 0;
}

/* Timeouts, retries and what a client does while the registry cannot be reached. */
static int registry_timing(registry_opts *o, const registry_settings *r, char *err, size_t errlen) {
    int64_t timeout, retries, backoff, backoff_max, wait;
    int unavailable;   /* wait|dead-letter */
    if (get_int(r, "schema.registry.request.timeout.ms", &timeout, err, errlen) ||
        get_int(r, "schema.registry.retries", &retries, err, errlen) ||
        get_int(r, "schema.registry.retry.backoff.ms", &backoff, err, errlen) ||
        get_int(r, "schema.registry.retry.backoff.max.ms", &backoff_max, err, errlen) ||
        get_enum(r, "schema.registry.unavailable", &unavailable, err, errlen) ||
        get_int(r, "schema.registry.wait.ms", &wait, err, errlen))
        return -1;
    o->timeout_ms = (int)timeout;
    o->retries = (int)retries;
    o->backoff_ms = (int)backoff;
    o->backoff_max_ms = backoff_max < backoff ? (int)backoff : (int)backoff_max;
    o->wait_dead_letter = unavailable == 1;
    o->wait_ms = (int)wait;
    return 0;
}

/* What the written schemas are registered under, and how. */
static int registry_output(registry_opts *o, const registry_settings *r, char *err, size_t errlen) {
    const char *strategy;
    if (get_bool(r, "auto.register.schemas", &o->auto_register, err, errlen) ||
        get_bool(r, "use.latest.version", &o->use_latest, err, errlen) ||
        get_string(r, "value.subject.name.strategy", &strategy, err, errlen))
        return -1;
    if (registry_strategy(strategy, &o->strategy))
        return snprintf(err, errlen, "value.subject.name.strategy: '%.200s' is not TopicNameStrategy, "
                        "RecordNameStrategy or TopicRecordNameStrategy", strategy), -1;
    return 0;
}

int registry_opts_from_config(registry_opts *o, const config *c, unsigned commands, char *err, size_t errlen) {
    registry_settings r = {c, commands};
    memset(o, 0, sizeof *o);
    if (registry_tls(o, &r, err, errlen) || registry_urls(o, &r, err, errlen) ||
        registry_credentials(o, &r, err, errlen) || registry_timing(o, &r, err, errlen) ||
        registry_output(o, &r, err, errlen))
        return -1;
    return 0;
}
