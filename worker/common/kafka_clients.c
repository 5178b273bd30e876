/* kafka_clients: role-aware pass-through of librdkafka properties. See kafka_clients.h. */
#include "kafka_clients.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "settings.h"
#include "stop_signal.h"

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

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    log_msg(level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG, "kafka", "%s: %s", fac,
            buf);
}

rd_kafka_conf_t *kafka_conf_for(const config *c, kafka_role role, const char *const *defaults,
                                const char *const *ours, char *err, size_t errlen) {
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(kc, kafka_log_cb);
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

/* ---- waits on the cluster ------------------------------------------------------------------ */

/* librdkafka's synchronous calls cannot be interrupted, so a wait is cut into slices, 0.5 s
 * doubling to 4 s: a stop asked for by a signal ends it within seconds, and a broker that
 * answers slower than a slice is asked again in a longer one. */
typedef struct {
    double deadline;
    int slice_ms;
} kafka_wait;

static kafka_wait wait_begin(int timeout_ms) { return (kafka_wait){clock_mono_s() + timeout_ms / 1e3, 500}; }

/* The next slice in ms; 0 once the wait is over or a stop was asked for. */
static int wait_next(kafka_wait *w) {
    double left_ms = (w->deadline - clock_mono_s()) * 1e3;
    if (stop_signal_received() || left_ms < 1) return 0;
    int ms = left_ms < w->slice_ms ? (int)left_ms : w->slice_ms;
    if (w->slice_ms < 4000) w->slice_ms *= 2;
    return ms;
}

/* Errors that mean no broker answered (yet); anything else is the cluster's answer. */
static int no_answer(rd_kafka_resp_err_t e) {
    return e == RD_KAFKA_RESP_ERR__TIMED_OUT || e == RD_KAFKA_RESP_ERR__TRANSPORT ||
           e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN;
}

/* An answer that came at once (a refused connection) is not asked again at once. */
static void wait_pause(double t0) {
    if (clock_mono_s() - t0 < 0.1) usleep(100000); /* a signal cuts it short */
}

rd_kafka_resp_err_t kafka_metadata(rd_kafka_t *rk, rd_kafka_topic_t *only, const struct rd_kafka_metadata **md,
                                   int timeout_ms) {
    kafka_wait w = wait_begin(timeout_ms);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (int ms; (ms = wait_next(&w)) > 0;) {
        double t0 = clock_mono_s();
        *md = NULL;
        if (!no_answer(e = rd_kafka_metadata(rk, 0, only, md, ms))) return e;
        wait_pause(t0);
    }
    return stop_signal_received() ? RD_KAFKA_RESP_ERR__INTR : e;
}

rd_kafka_resp_err_t kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo, int64_t *hi,
                                     int timeout_ms) {
    kafka_wait w = wait_begin(timeout_ms);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (int ms; (ms = wait_next(&w)) > 0;) {
        double t0 = clock_mono_s();
        if (!no_answer(e = rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi, ms))) return e;
        wait_pause(t0);
    }
    return stop_signal_received() ? RD_KAFKA_RESP_ERR__INTR : e;
}

const char *kafka_bootstrap_servers(rd_kafka_t *rk, char *buf, size_t n) {
    size_t len = n;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "bootstrap.servers", buf, &len) != RD_KAFKA_CONF_OK) snprintf(buf, n, "?");
    return buf;
}

void kafka_wait_error(rd_kafka_t *rk, rd_kafka_resp_err_t e, const char *what, int timeout_ms, char *err,
                      size_t errlen) {
    char servers[512];
    kafka_bootstrap_servers(rk, servers, sizeof servers);
    if (e == RD_KAFKA_RESP_ERR__INTR)
        snprintf(err, errlen, "%s: stopped by %s before the cluster answered", what,
                 stop_signal_name(stop_signal_received()));
    else if (no_answer(e))
        snprintf(err, errlen, "%s: no answer from the cluster at %s within %d s (%s): are the brokers up, and "
                 "bootstrap.servers right?", what, servers, (timeout_ms + 999) / 1000, rd_kafka_err2str(e));
    else
        snprintf(err, errlen, "%s: %s", what, rd_kafka_err2str(e));
}

int kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count, char *err, size_t errlen) {
    char what[320];
    snprintf(what, sizeof what, "metadata of topic %s", topic);
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (!t) {
        snprintf(err, errlen, "topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = kafka_metadata(rk, t, &md, timeout_ms);
    rd_kafka_topic_destroy(t);
    if (!e && md->topic_cnt != 1) e = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (!e) e = md->topics[0].err;
    if (e) {
        kafka_wait_error(rk, e, what, timeout_ms, err, errlen);
        if (md) rd_kafka_metadata_destroy(md);
        return -1;
    }
    *count = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return 0;
}

int kafka_partition_count_wait(rd_kafka_t *rk, const char *topic, int timeout_ms, int attempts, int *count, char *err,
                               size_t errlen) {
    for (int i = 0; i < attempts && !stop_signal_received(); i++) {
        if (i) usleep(250000);
        *count = 0;
        double t0 = clock_mono_s();
        if (kafka_partition_count(rk, topic, timeout_ms, count, err, errlen) == 0) {
            if (*count > 0) return 0;
            snprintf(err, errlen, "topic %s has no partitions", topic);
        } else if (clock_mono_s() - t0 >= timeout_ms / 1e3) {
            return -1; /* no answer in all that time: asking again would not help */
        }
    }
    return -1;
}

rd_kafka_t *kafka_consumer_new(const config *c, const char *const *defaults, const char *const *forced, char *err,
                               size_t errlen) {
    char kerr[400];
    rd_kafka_conf_t *conf = kafka_conf_for(c, KAFKA_CONSUMER, defaults, settings_names(), err, errlen);
    if (!conf) return NULL;
    if (config_kafka_defaults(conf, forced, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create consumer: %.400s", kerr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}
