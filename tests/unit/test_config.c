/* test_config: properties file, environment and -X precedence; librdkafka pass-through with
 * role routing; errors name the key. (Typed reads of ievo's keys: test_settings.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "kafka_clients.h"

int main(void) {
    char path[] = "/tmp/ievo-test-config-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\n\ninput.topic = events\nbootstrap.servers=file:9092\n! also a comment\n"
               "group.id=g1\nlinger.ms=7\nconsumer.fetch.wait.max.ms=11\n");
    fclose(f);
    config c = {0};
    char err[512];
    REQUIRE(config_load_file(&c, path, err, sizeof err) == 0, "%s", err);
    CHECK(!strcmp(config_get(&c, "input.topic", ""), "events"), "trimmed key/value");
    setenv("IEVO_CFG_BOOTSTRAP_SERVERS", "env:9092", 1);
    REQUIRE(config_load_env(&c, err, sizeof err) == 0, "%s", err);
    CHECK(!strcmp(config_get(&c, "bootstrap.servers", ""), "env:9092"), "env overrides file");
    REQUIRE(config_set_kv(&c, "bootstrap.servers=x:1", err, sizeof err) == 0, "%s", err);
    CHECK(!strcmp(config_get(&c, "bootstrap.servers", ""), "x:1"), "-X overrides env");
    CHECK(config_set_kv(&c, "novalue", err, sizeof err) != 0, "kv without '='");

    /* Typed reads (ranges, garbage, booleans, enums) are the settings table's: test_settings. */
    config_set(&c, "n", "12x");
    config_set(&c, "flag", "maybe");

    /* Pass-through: ours are skipped, group.id goes to the consumer only, linger.ms to the
     * producer only, consumer.<prop> to the consumer with the prefix stripped. */
    static const char *const ours[] = {"input.topic", "n", "flag", NULL};
    char val[128];
    size_t vn;
    rd_kafka_conf_t *cc = kafka_conf_for(&c, KAFKA_CONSUMER, NULL, ours, err, sizeof err);
    REQUIRE(cc, "%s", err);
    vn = sizeof val;
    CHECK(rd_kafka_conf_get(cc, "group.id", val, &vn) == RD_KAFKA_CONF_OK && !strcmp(val, "g1"), "consumer group.id");
    vn = sizeof val;
    CHECK(rd_kafka_conf_get(cc, "fetch.wait.max.ms", val, &vn) == RD_KAFKA_CONF_OK && !strcmp(val, "11"), "scoped: %s", val);
    rd_kafka_conf_destroy(cc);
    rd_kafka_conf_t *pc = kafka_conf_for(&c, KAFKA_PRODUCER, NULL, ours, err, sizeof err);
    REQUIRE(pc, "%s", err);
    vn = sizeof val;
    CHECK(rd_kafka_conf_get(pc, "linger.ms", val, &vn) == RD_KAFKA_CONF_OK && !strcmp(val, "7"), "producer linger.ms: %s", val);
    vn = sizeof val;
    CHECK(rd_kafka_conf_get(pc, "bootstrap.servers", val, &vn) == RD_KAFKA_CONF_OK && !strcmp(val, "x:1"), "both get bootstrap");
    rd_kafka_conf_destroy(pc);

    /* An unknown property is an error naming it. */
    config_set(&c, "no.such.property", "1");
    CHECK(kafka_conf_for(&c, KAFKA_CONSUMER, NULL, ours, err, sizeof err) == NULL && strstr(err, "no.such.property"),
          "unknown property: %s", err);
    config_free(&c);
    unlink(path);
    return check_exit("test_config");
}
