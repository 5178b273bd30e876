/* changelog: reading a state changelog partition back (the worker produces to it with its own
 * producer, see worker/stream/checkpoint.c). See changelog.h for the record format and why restoring is exact. */
#include "changelog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_clients.h"
#include "log.h"

#define READ_TIMEOUT_MS 30000   /* no progress for this long while reading a range: give up */

struct changelog {
    rd_kafka_t *rk;
    char *topic;
};

void changelog_marker_value(uint8_t out[8], int64_t next_offset) {
    uint64_t v = (uint64_t)next_offset;
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (8 * i));
}

int64_t changelog_marker_parse(const void *value, size_t len) {
    if (len != 8) return -1;
    const uint8_t *p = value;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
}

int changelog_open(changelog **out, rd_kafka_conf_t *conf, const char *topic, char *err, size_t errlen) {
    *out = NULL;
    char kerr[512];
    /* Short broker long-polls: a restore reads to a known end, and waits only add latency. */
    const char *props[] = {"enable.auto.commit", "false", "enable.partition.eof", "true",
                           "auto.offset.reset", "error", "fetch.wait.max.ms", "10",
                           "fetch.error.backoff.ms", "10", NULL};
    for (const char **p = props; *p; p += 2) {
        if (rd_kafka_conf_set(conf, p[0], p[1], kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "changelog reader %s: %s", p[0], kerr);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    }
    changelog *cl = calloc(1, sizeof *cl);
    if (!cl || !(cl->topic = strdup(topic))) {
        free(cl);
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    cl->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr);
    if (!cl->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "changelog reader: %s", kerr);
        changelog_close(cl);
        return -1;
    }
    rd_kafka_poll_set_consumer(cl->rk);
    *out = cl;
    return 0;
}

void changelog_close(changelog *cl) {
    if (!cl) return;
    if (cl->rk) {
        rd_kafka_consumer_close(cl->rk);
        rd_kafka_destroy(cl->rk);
    }
    free(cl->topic);
    free(cl);
}

const char *changelog_topic(const changelog *cl) { return cl->topic; }

static int watermarks(changelog *cl, int32_t p, int64_t *lo, int64_t *hi, char *err, size_t errlen) {
    rd_kafka_resp_err_t e = kafka_watermarks(cl->rk, cl->topic, p, lo, hi, 10000);
    if (e) {
        char what[320];
        snprintf(what, sizeof what, "changelog %s [%d]: watermarks", cl->topic, p);
        kafka_wait_error(cl->rk, e, what, 10000, err, errlen);
        return -1;
    }
    return 0;
}

typedef struct {
    changelog_record_fn fn;   /* NULL: markers only */
    void *ctx;
    int64_t marker_max;       /* markers above it are reported and skipped */
    int64_t marker, marker_pos;   /* the last marker's value and the offset after it */
    int64_t records, ignored;
} range_ctx;

/* Reads [from, to) of partition p. */
static int read_range(changelog *cl, int32_t p, int64_t from, int64_t to, range_ctx *rc, char *err, size_t errlen) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, cl->topic, p)->offset = from;
    rd_kafka_resp_err_t e = rd_kafka_assign(cl->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        snprintf(err, errlen, "changelog %s [%d]: assign: %s", cl->topic, p, rd_kafka_err2str(e));
        return -1;
    }
    int64_t next = from;
    int idle_ms = 0, rc_val = 0, done = from >= to;
    /* rd_kafka_consumer_poll, not the batch API: see consume_batch in worker.c. */
    while (!done && !rc_val) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cl->rk, 20);
        if (!m) {
            if ((idle_ms += 20) >= READ_TIMEOUT_MS) {
                snprintf(err, errlen, "changelog %s [%d]: no progress at offset %lld of %lld for %d s", cl->topic, p,
                         (long long)next, (long long)to, READ_TIMEOUT_MS / 1000);
                rc_val = -1;
            }
            continue;
        }
        idle_ms = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = 1;   /* the end as of now: with compaction offsets have gaps */
        } else if (m->err) {
            snprintf(err, errlen, "changelog %s [%d]: %s", cl->topic, p, rd_kafka_message_errstr(m));
            rc_val = -1;
        } else if (m->offset >= to) {
            done = 1;
        } else {
            next = m->offset + 1;
            if (m->key_len == 0) {
                int64_t r = changelog_marker_parse(m->payload, m->len);
                if (r < 0 || r > rc->marker_max) {
                    /* not obeyed: a marker past the input's end would skip every later event */
                    if (!rc->ignored++)
                        LOG_WF("restore", LOG_AT(LF_TOPIC(cl->topic), LF_PARTITION(p), LF_OFFSET(m->offset)),
                               "changelog %s [%d] offset %lld: %s marker (%zu bytes, value %lld, the input "
                              "ends at %lld): ignored", cl->topic, p, (long long)m->offset,
                              r < 0 ? "malformed" : "out-of-range", m->len, (long long)r, (long long)rc->marker_max);
                } else {
                    rc->marker = r;
                    rc->marker_pos = m->offset + 1;
                }
            } else if (rc->fn) {
                rc->records++;
                if (rc->fn(rc->ctx, m->offset, m->key, m->key_len, m->payload, m->payload ? m->len : 0)) {
                    snprintf(err, errlen, "changelog %s [%d] offset %lld: record rejected", cl->topic, p,
                             (long long)m->offset);
                    rc_val = -1;
                }
            }
            if (next >= to) done = 1;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(cl->rk, NULL);
    return rc_val;
}

int changelog_bounds(changelog *cl, int32_t partition, int64_t *lo, int64_t *hi, char *err, size_t errlen) {
    return watermarks(cl, partition, lo, hi, err, errlen);
}

int changelog_last_marker(changelog *cl, int32_t partition, int64_t marker_max, int64_t *next_offset, char *err,
                          size_t errlen) {
    int64_t lo, hi;
    *next_offset = -1;
    if (watermarks(cl, partition, &lo, &hi, err, errlen)) return -1;
    /* The last record is normally the last batch's marker: look at a small tail first. */
    for (int64_t window = 64;; window *= 16) {
        int64_t from = hi - window > lo ? hi - window : lo;
        range_ctx rc = {.marker = -1, .marker_pos = -1, .marker_max = marker_max};
        if (read_range(cl, partition, from, hi, &rc, err, errlen)) return -1;
        if (rc.marker >= 0 || from == lo) {
            *next_offset = rc.marker;
            return 0;
        }
    }
}

int changelog_restore(changelog *cl, int32_t partition, int64_t from, int64_t marker_max, changelog_record_fn fn,
                      void *ctx, changelog_restored *out, char *err, size_t errlen) {
    int64_t lo, hi;
    *out = (changelog_restored){.next_offset = -1, .position = -1};
    if (watermarks(cl, partition, &lo, &hi, err, errlen)) return -1;
    if (from < lo) from = lo;
    range_ctx rc = {.fn = fn, .ctx = ctx, .marker = -1, .marker_pos = -1, .marker_max = marker_max};
    if (read_range(cl, partition, from, hi, &rc, err, errlen)) return -1;
    *out = (changelog_restored){rc.marker, rc.marker_pos, rc.records, rc.ignored};
    return 0;
}
