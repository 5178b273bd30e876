/* registry_config: the schema registry's settings, named as Confluent's serializers and
 * librdkafka-based clients name them, read from a config (see registry.h for their meaning). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"

const char *const REGISTRY_KEYS[] = {
    "schema.registry.url", "basic.auth.user.info", "schema.registry.basic.auth.user.info",
    "basic.auth.credentials.source", "schema.registry.ssl.ca.location", "schema.registry.ssl.certificate.location",
    "schema.registry.ssl.key.location", "schema.registry.ssl.key.password",
    "schema.registry.ssl.endpoint.identification.algorithm", "schema.registry.request.timeout.ms",
    "schema.registry.retries", "schema.registry.retry.backoff.ms", "schema.registry.retry.backoff.max.ms",
    "auto.register.schemas", "use.latest.version", "value.subject.name.strategy", "schema.registry.unavailable",
    "schema.registry.wait.ms",
    /* Java's keystore settings: read only to refuse them with a pointer to the PEM ones */
    "schema.registry.ssl.truststore.location", "schema.registry.ssl.keystore.location", NULL};

const char *const REGISTRY_KEY_PREFIXES[] = {"schema.registry.", "basic.auth.", "auto.register.schemas",
                                             "use.latest.version", "value.subject.name.strategy", NULL};

static int registry_strategy(const char *v, registry_subject_strategy *out) {
    static const char pkg[] = "io.confluent.kafka.serializers.subject.";
    if (!strncmp(v, pkg, sizeof pkg - 1)) v += sizeof pkg - 1;
    if (!strcmp(v, "TopicNameStrategy")) *out = SUBJECT_TOPIC_NAME;
    else if (!strcmp(v, "RecordNameStrategy")) *out = SUBJECT_RECORD_NAME;
    else if (!strcmp(v, "TopicRecordNameStrategy")) *out = SUBJECT_TOPIC_RECORD_NAME;
    else return -1;
    return 0;
}

int registry_opts_from_config(registry_opts *o, const config *c, char *err, size_t errlen) {
    memset(o, 0, sizeof *o);
    int64_t v;
    if (config_get(c, "schema.registry.ssl.truststore.location", NULL) ||
        config_get(c, "schema.registry.ssl.keystore.location", NULL)) {
        snprintf(err, errlen, "schema.registry.ssl.truststore.location / keystore.location: Java keystores are not "
                 "read here; give PEM files in schema.registry.ssl.ca.location, .certificate.location, .key.location");
        return -1;
    }
    const char *urls = config_get(c, "schema.registry.url", NULL);
    if (urls && *urls) {
        if (strlen(urls) >= sizeof o->url_buf) return snprintf(err, errlen, "schema.registry.url: too long"), -1;
        strcpy(o->url_buf, urls);
        for (char *save = NULL, *u = strtok_r(o->url_buf, ", ", &save); u; u = strtok_r(NULL, ", ", &save)) {
            if (o->n_urls == (int)(sizeof o->urls / sizeof o->urls[0]))
                return snprintf(err, errlen, "schema.registry.url: more than 8 URLs"), -1;
            if (strncmp(u, "http://", 7) && strncmp(u, "https://", 8))
                return snprintf(err, errlen, "schema.registry.url: '%.200s' is not an http:// or https:// URL", u), -1;
            o->urls[o->n_urls++] = u;
        }
    }
    o->user_info = config_get(c, "basic.auth.user.info", config_get(c, "schema.registry.basic.auth.user.info", NULL));
    const char *source = config_get(c, "basic.auth.credentials.source", "USER_INFO");
    if (!strcmp(source, "URL")) {
        if (o->user_info)
            return snprintf(err, errlen, "basic.auth.credentials.source=URL takes the credentials from "
                            "schema.registry.url; basic.auth.user.info is set too"), -1;
    } else if (strcmp(source, "USER_INFO")) {
        return snprintf(err, errlen, "basic.auth.credentials.source: '%.100s' is not USER_INFO or URL", source), -1;
    }
    if (o->user_info && !strchr(o->user_info, ':'))
        return snprintf(err, errlen, "basic.auth.user.info: expected user:password (value not shown)"), -1;
    o->ca_location = config_get(c, "schema.registry.ssl.ca.location", NULL);
    o->cert_location = config_get(c, "schema.registry.ssl.certificate.location", NULL);
    o->key_location = config_get(c, "schema.registry.ssl.key.location", NULL);
    o->key_password = config_get(c, "schema.registry.ssl.key.password", NULL);
    const char *verify = config_get(c, "schema.registry.ssl.endpoint.identification.algorithm", "https");
    if (strcmp(verify, "https") && strcmp(verify, "none"))
        return snprintf(err, errlen, "schema.registry.ssl.endpoint.identification.algorithm: '%.100s' is not https "
                        "or none", verify), -1;
    o->verify_host = !strcmp(verify, "https");
    if (config_get_int(c, "schema.registry.request.timeout.ms", 10000, 1, 600000, &v, err, errlen)) return -1;
    o->timeout_ms = (int)v;
    if (config_get_int(c, "schema.registry.retries", 3, 0, 100, &v, err, errlen)) return -1;
    o->retries = (int)v;
    if (config_get_int(c, "schema.registry.retry.backoff.ms", 100, 1, 600000, &v, err, errlen)) return -1;
    o->backoff_ms = (int)v;
    if (config_get_int(c, "schema.registry.retry.backoff.max.ms", 5000, 1, 600000, &v, err, errlen)) return -1;
    o->backoff_max_ms = (int)v < o->backoff_ms ? o->backoff_ms : (int)v;
    if (config_get_bool(c, "auto.register.schemas", 1, &o->auto_register, err, errlen)) return -1;
    if (config_get_bool(c, "use.latest.version", 0, &o->use_latest, err, errlen)) return -1;
    const char *strategy = config_get(c, "value.subject.name.strategy", "TopicNameStrategy");
    if (registry_strategy(strategy, &o->strategy))
        return snprintf(err, errlen, "value.subject.name.strategy: '%.200s' is not TopicNameStrategy, "
                        "RecordNameStrategy or TopicRecordNameStrategy", strategy), -1;
    const char *unavailable = config_get(c, "schema.registry.unavailable", "wait");
    if (!strcmp(unavailable, "wait")) o->wait_dead_letter = 0;
    else if (!strcmp(unavailable, "dead-letter")) o->wait_dead_letter = 1;
    else return snprintf(err, errlen, "schema.registry.unavailable: '%.100s' is not wait or dead-letter", unavailable), -1;
    if (config_get_int(c, "schema.registry.wait.ms", 60000, 0, INT32_MAX, &v, err, errlen)) return -1;
    o->wait_ms = (int)v;
    return 0;
}
