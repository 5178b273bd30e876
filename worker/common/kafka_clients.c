/* kafka_clients: role-aware pass-through of librdkafka properties. See kafka_clients.h. */
#include "kafka_clients.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"

/* Properties librdkafka only honours on one side (prefix match when ending in '.'). */
static const char *const CONSUMER_ONLY[] = {
    "group.id", "group.instance.id", "session.timeout.ms", "heartbeat.interval.ms",
    "partition.assignment.strategy", "group.protocol.type", "coordinator.query.interval.ms",
    "max.poll.interval.ms", "enable.auto.commit", "auto.commit.interval.ms",
    "enable.auto.offset.store", "queued.min.messages", "queued.max.messages.kbytes",
    "fetch.", "auto.offset.reset", "enable.partition.eof", "check.crcs", "isolation.level",
    "allow.auto.create.topics", "client.rack", "consume.callback.max.messages", NULL};
static const char *const PRODUCER_ONLY[] = {
    "transactional.id", "transaction.timeout.ms", "enable.idempotence",
    "enable.gapless.guarantee", "queue.buffering.", "linger.ms", "message.send.max.retries",
    "retries", "queuing.strategy", "compression.", "batch.num.messages", "batch.size",
    "delivery.report.only.error", "sticky.partitioning.linger.ms", "acks",
    "request.required.acks", "request.timeout.ms", "message.timeout.ms", "delivery.timeout.ms",
    "partitioner", "compression.level", NULL};

static int matches(const char *key, const char *const *list) {
    for (; *list; list++) {
        size_t n = strlen(*list);
        if ((*list)[n - 1] == '.' ? strncmp(key, *list, n) == 0 : strcmp(key, *list) == 0) return 1;
    }
    return 0;
}

const char *kafka_prop_for(const char *key, kafka_role role, const char *const *ours, int *scoped) {
    const char *mine = role == KAFKA_CONSUMER ? "consumer." : "producer.";
    const char *theirs = role == KAFKA_CONSUMER ? "producer." : "consumer.";
    *scoped = 0;
    if (config_key_in(key, ours) || strncmp(key, theirs, strlen(theirs)) == 0) return NULL;
    if (strncmp(key, mine, strlen(mine)) == 0) {
        *scoped = 1;
        return key + strlen(mine);
    }
    return matches(key, role == KAFKA_CONSUMER ? PRODUCER_ONLY : CONSUMER_ONLY) ? NULL : key;
}

rd_kafka_conf_t *kafka_conf_for(const config *c, kafka_role role, const char *const *defaults,
                                const char *const *ours, char *err, size_t errlen) {
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char kerr[512];
    if (config_kafka_defaults(kc, defaults, err, errlen)) goto bad;
    /* Two passes so that scoped keys win over unscoped ones. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->n; i++) {
            const char *k = c->e[i].key;
            int scoped;
            const char *prop = kafka_prop_for(k, role, ours, &scoped);
            if (!prop || scoped != pass) continue;
            if (rd_kafka_conf_set(kc, prop, c->e[i].value, kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
                /* librdkafka's message may quote the value, which a secret's must not show */
                int hide = settings_is_secret(k) && *c->e[i].value && strstr(kerr, c->e[i].value);
                snprintf(err, errlen, "property %s: %s", k,
                         hide ? "librdkafka rejects the value (its message, which quotes it, is not shown)" : kerr);
                goto bad;
            }
        }
    }
    return kc;
bad:
    rd_kafka_conf_destroy(kc);
    return NULL;
}

int kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count, char *err, size_t errlen) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (!t) {
        snprintf(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, timeout_ms);
    rd_kafka_topic_destroy(t);
    if (!e && md->topic_cnt != 1) e = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (!e) e = md->topics[0].err;
    if (e) {
        snprintf(err, errlen, "metadata of topic %s: %s", topic, rd_kafka_err2str(e));
        if (md) rd_kafka_metadata_destroy(md);
        return -1;
    }
    *count = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return 0;
}

int kafka_partition_count_wait(rd_kafka_t *rk, const char *topic, int timeout_ms, int attempts, int *count, char *err,
                               size_t errlen) {
    for (int i = 0; i < attempts; i++) {
        if (i) usleep(250000);
        *count = 0;
        if (kafka_partition_count(rk, topic, timeout_ms, count, err, errlen) == 0) {
            if (*count > 0) return 0;
            snprintf(err, errlen, "topic %s has no partitions", topic);
        }
    }
    return -1;
}

rd_kafka_t *kafka_consumer_new(const config *c, const char *const *defaults, const char *const *forced,
                               void (*log_cb)(const rd_kafka_t *, int, const char *, const char *), char *err,
                               size_t errlen) {
    char kerr[400];
    rd_kafka_conf_t *conf = kafka_conf_for(c, KAFKA_CONSUMER, defaults, settings_names(), err, errlen);
    if (!conf) return NULL;
    if (config_kafka_defaults(conf, forced, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (log_cb) rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create consumer: %.400s", kerr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}
