/* dlq: the dead-letter path. A record that cannot be decoded or validated is copied, key and
 * payload unchanged, to the dead-letter topic with headers saying why and where it came from:
 *
 *   ievo.error.class      oversized | framing | schema_id | avro | invalid   (an input record)
 *                         schema (its writer's schema is incompatible), registry (the registry
 *                         could not be reached, with schema.registry.unavailable=dead-letter)
 *                         state                  (a user's stored record, quarantined: see restore.c)
 *   ievo.error            the one-line reason
 *   ievo.source.topic / ievo.source.partition / ievo.source.offset   (offset -1: read from the store)
 *
 * It is acknowledged before the batch's offsets are written, like every output, so a record is
 * never dropped: if the dead-letter topic cannot be written the batch fails and the worker
 * stops rather than move past the record.
 *
 * The log says each dead letter, up to DLQ_LOG_BURST a minute; beyond that one summary line a
 * minute counts the rest (a stream of bad records must not flood the log, nor hide that it
 * happens). The counters and the topic have every one. */
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "worker_internal.h"

#define DLQ_LOG_BURST 20
#define DLQ_LOG_PERIOD_S 60.0

/* Whether this dead letter gets its own log line; says how many did not, once a period. */
static int dlq_log_this(worker *w) {
    if (clock_mono_s() - w->dlq_log_since >= DLQ_LOG_PERIOD_S) dlq_log_summary(w);
    if (w->dlq_log_lines < DLQ_LOG_BURST) {
        w->dlq_log_lines++;
        return 1;
    }
    w->dlq_log_quiet++;
    return 0;
}

void dlq_log_summary(worker *w) {
    if (w->dlq_log_quiet)
        LOG_W("dlq", "%lld more records dead-lettered in the last %.0f s without a line each (see "
              "ievo_events_dead_lettered_total and the topic %s)", (long long)w->dlq_log_quiet,
              clock_mono_s() - w->dlq_log_since, w->s->dlq_topic);
    w->dlq_log_since = clock_mono_s(), w->dlq_log_lines = 0, w->dlq_log_quiet = 0;
}

int dlq_produce_record(worker *w, const char *topic, int32_t partition, int64_t offset, const void *key,
                       size_t key_len, const void *value, size_t len, const char *cls, const char *reason,
                       char *err, size_t errlen) {
    char part[16], off[24];
    snprintf(part, sizeof part, "%d", partition);
    snprintf(off, sizeof off, "%lld", (long long)offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(5);
    rd_kafka_header_add(h, "ievo.error.class", -1, cls, -1);
    rd_kafka_header_add(h, "ievo.error", -1, reason, -1);
    rd_kafka_header_add(h, "ievo.source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "ievo.source.partition", -1, part, -1);
    rd_kafka_header_add(h, "ievo.source.offset", -1, off, -1);
    if (dlq_log_this(w))
        LOG_W("dlq", "%s [%d] offset %lld -> %s: %s%s", topic, partition, (long long)offset, w->s->dlq_topic, reason,
              w->dlq_log_lines == DLQ_LOG_BURST ? " (further dead letters this minute: counted, one line)" : "");
    void *tag = checkpoint_tag_output(w->ck, 0); /* a checkpoint waits for it like for the outputs */
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            w->k.producer, RD_KAFKA_V_TOPIC(w->s->dlq_topic), RD_KAFKA_V_KEY(key, key_len),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
            RD_KAFKA_V_OPAQUE(tag), RD_KAFKA_V_END);
        if (!e) return 0; /* the headers now belong to the message */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            checkpoint_untag_output(w->ck, tag);
            rd_kafka_headers_destroy(h);
            snprintf(err, errlen, "cannot dead-letter %s [%d] offset %lld to %s: %s; stopping rather than "
                     "dropping the record", topic, partition, (long long)offset, w->s->dlq_topic, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(w->k.producer, 10);
    }
}

int dlq_produce(worker *w, const rd_kafka_message_t *msg, codec_status st, const char *reason, char *err,
                size_t errlen) {
    return dlq_produce_record(w, w->s->input_topic, msg->partition, msg->offset, msg->key, msg->key_len,
                              msg->payload, msg->len, codec_status_name(st), reason, err, errlen);
}
