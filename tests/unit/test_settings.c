/* test_settings: the settings table is well formed (unique names, defaults that parse within
 * their own range or values), the typed getters apply defaults and reject what does not parse
 * with the key named (enums included: log.format=xml like a bad log.level), secrets are
 * recognised and never echoed, and the worker's settings come out of the table (its defaults
 * agree with the state store's own). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "settings.h"
#include "state_store.h"
#include "worker.h"

static void check_table(void) {
    char err[512];
    config empty = {0};
    CHECK(SETTINGS_COUNT > 30, "only %zu settings", SETTINGS_COUNT);
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const setting *s = &SETTINGS[i];
        for (size_t j = 0; j < i; j++) CHECK(strcmp(s->name, SETTINGS[j].name), "%s declared twice", s->name);
        CHECK(settings_find(s->name) == s, "%s not found", s->name);
        CHECK(s->doc && s->doc[0] && !strchr(s->doc, '\n'), "%s: one paragraph of meaning", s->name);
        CHECK(s->commands != 0, "%s is read by no command", s->name);
        CHECK(s->def || s->def_doc, "%s: no default and no word on it", s->name);
        CHECK(!s->values == (s->type != SETTING_ENUM), "%s: values only for enums", s->name);
        int ok = 0, b;
        int64_t x;
        const char *str;
        switch (s->type) {
        case SETTING_STRING: ok = settings_string(&empty, s->name, &str, err, sizeof err) == 0; break;
        case SETTING_BOOL: ok = settings_bool(&empty, s->name, &b, err, sizeof err) == 0; break;
        case SETTING_ENUM: ok = settings_enum(&empty, s->name, &b, err, sizeof err) == 0; break;
        default: /* a default computed at run time (def NULL) is the caller's, e.g. a share of a memory limit */
            ok = s->min <= s->max && (s->def ? settings_int(&empty, s->name, &x, err, sizeof err)
                                             : settings_int_or(&empty, s->name, s->min, &x, err, sizeof err)) == 0;
            break;
        }
        CHECK(ok, "%s: its default does not pass its own checks: %s", s->name, err);
    }
    const char *const *names = settings_names();
    size_t n = 0;
    while (names[n]) n++;
    CHECK(n == SETTINGS_COUNT && !strcmp(names[0], SETTINGS[0].name), "settings_names lists %zu keys", n);
    CHECK(settings_find("bootstrap.servers") == NULL, "a librdkafka property in the table");
}

/* A computed default: the caller's value when unset; a value set is parsed and range-checked. */
static void check_computed_default(void) {
    config c = {0};
    char err[256];
    int64_t x;
    CHECK(settings_int_or(&c, "state.cache.bytes", 12345678, &x, err, sizeof err) == 0 && x == 12345678,
          "unset: the computed default (%lld)", (long long)x);
    CHECK(settings_int(&c, "state.cache.bytes", &x, err, sizeof err) == -1 && strstr(err, "computed"),
          "settings_int on a computed default: %s", err);
    REQUIRE(config_set(&c, "state.cache.bytes", "33554432") == 0, "config_set");
    CHECK(settings_int_or(&c, "state.cache.bytes", 12345678, &x, err, sizeof err) == 0 && x == 33554432,
          "set: the value (%lld)", (long long)x);
    REQUIRE(config_set(&c, "state.cache.bytes", "1") == 0, "config_set");
    CHECK(settings_int_or(&c, "state.cache.bytes", 12345678, &x, err, sizeof err) == -1 && strstr(err, "outside"),
          "below its minimum: %s", err);
    config_free(&c);
}

static void check_getters(void) {
    config c = {0};
    char err[512];
    int v;
    int64_t x;
    const char *s;
    CHECK(settings_enum(&c, "log.format", &v, err, sizeof err) == 0 && v == 0, "log.format default text");
    config_set(&c, "log.format", "json");
    CHECK(settings_enum(&c, "log.format", &v, err, sizeof err) == 0 && v == 1, "log.format json");
    config_set(&c, "log.format", "xml");
    CHECK(settings_enum(&c, "log.format", &v, err, sizeof err) != 0 && strstr(err, "log.format") &&
              strstr(err, "'xml'") && strstr(err, "text or json"),
          "log.format=xml: %s", err);
    config_set(&c, "log.level", "loud");
    CHECK(settings_enum(&c, "log.level", &v, err, sizeof err) != 0 && strstr(err, "log.level"), "log.level: %s", err);
    config_set(&c, "model.backend", "scalar");
    CHECK(settings_enum(&c, "model.backend", &v, err, sizeof err) == 0 && v == MODEL_BACKEND_SCALAR, "backend order");
    config_set(&c, "model.backend", "onednn");
    CHECK(settings_enum(&c, "model.backend", &v, err, sizeof err) != 0, "one name per backend: onednn accepted");

    CHECK(settings_int(&c, "batch.timeout.ms", &x, err, sizeof err) == 0 && x == 20, "default 20");
    config_set(&c, "batch.timeout.ms", "70000");
    CHECK(settings_int(&c, "batch.timeout.ms", &x, err, sizeof err) != 0 && strstr(err, "batch.timeout.ms") &&
              strstr(err, "60000"),
          "range: %s", err);
    config_set(&c, "batch.timeout.ms", "5ms");
    CHECK(settings_int(&c, "batch.timeout.ms", &x, err, sizeof err) != 0 && strstr(err, "milliseconds"), "%s", err);
    config_set(&c, "state.sync", "maybe");
    CHECK(settings_bool(&c, "state.sync", &v, err, sizeof err) != 0 && strstr(err, "state.sync"), "bool: %s", err);
    CHECK(settings_string(&c, "stats.file", &s, err, sizeof err) == 0 && s == NULL, "unset without default");
    CHECK(settings_int(&c, "log.format", &x, err, sizeof err) != 0, "an enum read as an integer");
    CHECK(settings_int(&c, "no.such.key", &x, err, sizeof err) != 0 && strstr(err, "no.such.key"), "%s", err);

    /* settings_check: keys of the commands asked for only */
    config d = {0};
    config_set(&d, "output.top.k", "many");
    CHECK(settings_check(&d, SETTINGS_CMD_CONSUME, err, sizeof err) == 0, "consume does not read output.top.k");
    CHECK(settings_check(&d, SETTINGS_CMD_WORKER, err, sizeof err) != 0 && strstr(err, "output.top.k"), "%s", err);
    config_set(&d, "output.top.k", "3");
    config_set(&d, "log.format", "xml");
    CHECK(settings_check(&d, SETTINGS_CMD_STATE, err, sizeof err) != 0 && strstr(err, "log.format"),
          "every command reads log.format: %s", err);
    config_free(&d);
    config_free(&c);
}

static void check_secrets(void) {
    static const char *const secret[] = {"sasl.password", "consumer.sasl.password", "producer.sasl.username",
                                         "ssl.key.pem", "ssl.key.password", "ssl.keystore.password",
                                         "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config", "foo.secret",
                                         "my.password"};
    static const char *const plain[] = {"bootstrap.servers", "input.topic", "sasl.mechanisms", "ssl.ca.location",
                                        "security.protocol", "group.id"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        CHECK(settings_is_secret(secret[i]), "%s is a secret", secret[i]);
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        CHECK(!settings_is_secret(plain[i]), "%s is not a secret", plain[i]);
    CHECK(strcmp(settings_shown_value("sasl.password", "hunter2"), "hunter2") != 0, "masked");
    CHECK(strcmp(settings_shown_value("group.id", "g"), "g") == 0, "shown");
}

static void check_worker(void) {
    config c = {0};
    char err[512];
    worker_settings s;
    CHECK(worker_settings_from_config(&s, &c, err, sizeof err) != 0 && strstr(err, "model.path"),
          "model.path is required: %s", err);
    config_set(&c, "model.path", "m.safetensors");
    config_set(&c, "group.id", "g7");
    REQUIRE(worker_settings_from_config(&s, &c, err, sizeof err) == 0, "%s", err);
    state_store_opts d;
    state_store_opts_default(&d);
    CHECK(s.store.block_cache_bytes == d.block_cache_bytes && s.store.write_buffer_bytes == d.write_buffer_bytes &&
              s.store.max_write_buffers == d.max_write_buffers && s.store.background_jobs == d.background_jobs &&
              s.store.info_log_level == d.info_log_level && s.store.sync == d.sync && !s.store.universal,
          "the table's state defaults are the store's");
    CHECK(!strcmp(s.input_topic, "user-actions") && !strcmp(s.output_topic, "interest-vectors") &&
              !strcmp(s.dlq_topic, "user-actions.dlq") && !strcmp(s.items_topic, "items"),
          "topics");
    CHECK(!strcmp(s.changelog_topic, "g7-state-changelog") && !strcmp(s.group_id, "g7"), "changelog topic %s",
          s.changelog_topic);
    CHECK(s.in.format == WIRE_CONFLUENT && s.in.schema_id == 1 && s.out.schema_id == 2 && s.items_in.schema_id == 3 &&
              s.in.max_bytes == 1048576,
          "codecs");
    CHECK(s.backend == MODEL_BACKEND_DNNL && s.batch_max_events == 2048 && s.batch_timeout_ms == 20 &&
              s.commit_interval_s == 5.0 && s.stop_timeout_s == 10.0 && s.cache_bytes == 256u << 20 && s.changelog && !s.metrics_listen &&
              !s.stats_file && s.text_encoder_dir && s.text_encoder_dir[0],
          "defaults");
    config_set(&c, "state.compaction", "universal");
    config_set(&c, "output.format", "avro");
    config_set(&c, "metrics.listen", "");
    REQUIRE(worker_settings_from_config(&s, &c, err, sizeof err) == 0, "%s", err);
    CHECK(s.store.universal && s.out.format == WIRE_AVRO && !s.metrics_listen, "set values");
    CHECK(!s.store.wal && s.changelog_replication == -1 && !s.dlq_create, "the WAL off with the changelog (auto)");
    config_set(&c, "changelog.enable", "false");
    REQUIRE(worker_settings_from_config(&s, &c, err, sizeof err) == 0, "%s", err);
    CHECK(s.store.wal, "auto: the WAL on without a changelog");
    config_set(&c, "state.wal", "off");
    CHECK(worker_settings_from_config(&s, &c, err, sizeof err) != 0 && strstr(err, "state.wal"), "%s", err);
    config_set(&c, "changelog.enable", "true");
    config_set(&c, "changelog.replication.factor", "0");
    CHECK(worker_settings_from_config(&s, &c, err, sizeof err) != 0 && strstr(err, "changelog.replication.factor"), "%s", err);
    config_set(&c, "changelog.replication.factor", "3");
    config_set(&c, "state.compaction", "tiered");
    CHECK(worker_settings_from_config(&s, &c, err, sizeof err) != 0 && strstr(err, "state.compaction"), "%s", err);
    config_free(&c);
}

int main(void) {
    check_computed_default();
    check_table();
    check_getters();
    check_secrets();
    check_worker();
    return check_exit("test_settings");
}
