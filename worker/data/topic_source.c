/* topic_source: a Kafka topic of UserAction records as an event list (`ievo train -t TOPIC`).
 *
 * Reads every partition from its log start up to the end offset it had when reading began, so
 * the history is a fixed snapshot however fast the topic grows, with a private consumer group
 * that commits nothing. A record that does not decode is skipped and counted (the worker would
 * have dead-lettered it: it is no part of any history). The result is in partition order, then
 * offsets, then stably sorted by event time: per user (one partition) the worker's order
 * whenever the topic is in time order per user.
 *
 * With schema.registry.url set, every registered writer of UserAction is read (serde.h). A record
 * whose writer the registry could not give fails the load instead of being skipped: it is not the
 * record's fault, and a history without it would be wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "event_source_internal.h"
#include "kafka_clients.h"
#include "log.h"
#include "serde.h"
#include "settings.h"

typedef struct {
    rd_kafka_t *rk;
    const char *topic;
    int nparts, open;      /* partitions, and those with records still to read */
    int64_t *end;          /* per partition: the end offset when reading began */
    unsigned char *done;   /* per partition: read up to its end */
} topic_reader;

/* A consumer that assigns instead of joining: a private group id, no commits, from the start. */
static rd_kafka_t *topic_consumer(const config *cfg, char *err, size_t errlen) {
    char gid[64];
    snprintf(gid, sizeof gid, "ievo-train-%ld-%ld", (long)getpid(), (long)time(NULL));
    static const char *const defaults[] = {"client.id", "ievo-train", NULL, NULL};
    const char *const forced[] = {"group.id", gid, "enable.auto.commit", "false", "enable.partition.eof", "false",
                                  "auto.offset.reset", "earliest", NULL, NULL};
    return kafka_consumer_new(cfg, defaults, forced, NULL, err, errlen);
}

/* The end offsets now, and an assignment of the partitions that hold records below them. */
static int topic_assign(topic_reader *t, char *err, size_t errlen) {
    if (kafka_partition_count_wait(t->rk, t->topic, 10000, 20, &t->nparts, err, errlen)) return -1;
    t->end = calloc((size_t)t->nparts, sizeof *t->end);
    t->done = calloc((size_t)t->nparts, 1);
    if (!t->end || !t->done) return snprintf(err, errlen, "out of memory"), -1;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(t->nparts);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int p = 0; p < t->nparts && !e; p++) {
        int64_t lo = 0, hi = 0;
        if ((e = rd_kafka_query_watermark_offsets(t->rk, t->topic, p, &lo, &hi, 10000))) {
            snprintf(err, errlen, "%s [%d]: cannot read the end offset: %s", t->topic, p, rd_kafka_err2str(e));
            break;
        }
        t->end[p] = hi;
        if (hi > lo) rd_kafka_topic_partition_list_add(parts, t->topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING, t->open++;
        else t->done[p] = 1;
    }
    if (!e) {
        LOG_I("train", "reading %s: %d partitions, %d with data, up to the end offsets now", t->topic, t->nparts, t->open);
        if ((e = rd_kafka_assign(t->rk, parts)))
            snprintf(err, errlen, "cannot assign %s: %s", t->topic, rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return e ? -1 : 0;
}

/* Appends a decoded record's event (its strings interned). */
static int topic_push(event_list *out, const user_action *ua) {
    source_event *ev = event_list_push(out);
    if (!ev || !(ev->user_id = event_list_intern(out, ua->user_id, ua->user_id_len)) ||
        !(ev->item_id = event_list_intern(out, ua->item_id, ua->item_id_len)) ||
        !(ev->action = event_list_intern(out, ua->action, ua->action_len)))
        return -1;
    ev->ts = ua->ts, ev->value = ua->value, ev->has_value = ua->has_value;
    /* a text with a NUL byte cannot be interned: the event keeps its id alone */
    if (ua->has_text && !memchr(ua->text, 0, ua->text_len) && !(ev->text = event_list_intern(out, ua->text, ua->text_len)))
        return -1;
    return 0;
}

/* Polls until every partition is read to its end. *bad counts the records that did not decode. */
static int topic_read(topic_reader *t, serde_in *in, event_list *out, long *bad, char *err, size_t errlen) {
    while (t->open > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(t->rk, 1000);
        if (!m) continue;
        int p = (int)m->partition, rc = 0;
        if (m->err) {
            snprintf(err, errlen, "%s [%d]: %s", t->topic, p, rd_kafka_message_errstr(m));
            rc = -1;
        } else if (p >= 0 && p < t->nparts && !t->done[p] && m->offset < t->end[p]) {
            user_action ua;
            char why[1024];
            codec_status st = serde_decode_user_action(in, m->payload, m->len, &ua, why, sizeof why);
            if (st == CODEC_E_REGISTRY)
                rc = -1, snprintf(err, errlen, "%s [%d] offset %lld: %.900s", t->topic, p, (long long)m->offset, why);
            else if (st != CODEC_OK) (*bad)++;
            else if (topic_push(out, &ua)) rc = -1, snprintf(err, errlen, "out of memory");
            if (m->offset + 1 >= t->end[p]) t->done[p] = 1, t->open--;
        }
        rd_kafka_message_destroy(m);
        if (rc) return -1;
    }
    return 0;
}

int events_load_topic(const config *cfg, const char *topic, const codec_in_opts *in, event_list *out, char *err,
                      size_t errlen) {
    topic_reader t = {.topic = topic};
    registry_opts ro;   /* outlives the registry and the reader that point into it */
    registry *reg = NULL;
    serde_in *sin = NULL;
    long bad = 0;
    int rc = -1;
    if (event_list_init(out)) return snprintf(err, errlen, "out of memory"), -1;
    if (serde_registry_open(cfg, SETTINGS_CMD_TRAIN, &ro, &reg, err, errlen) == 0 &&
        serde_in_new(&(serde_in_opts){reg, &ro, *in, SERDE_USER_ACTION, NULL}, &sin, err, errlen) == 0 &&
        (t.rk = topic_consumer(cfg, err, errlen)) && topic_assign(&t, err, errlen) == 0 &&
        topic_read(&t, sin, out, &bad, err, errlen) == 0) {
        if (bad) LOG_W("train", "%ld records of %s did not decode and were skipped", bad, topic);
        rc = event_list_sort_stable(out) ? (snprintf(err, errlen, "out of memory"), -1) : 0;
    }
    if (t.rk) {
        rd_kafka_consumer_close(t.rk);
        rd_kafka_destroy(t.rk);
    }
    free(t.end);
    free(t.done);
    serde_in_free(sin);
    registry_free(reg);
    if (rc) event_list_free(out);
    return rc;
}
