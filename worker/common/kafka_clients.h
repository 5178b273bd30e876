/* kafka_clients: librdkafka configurations for the worker's consumer and producer, and the
 * metadata lookups every command shares.
 *
 * Pass-through rules (Kafka users tune the client without a code change):
 *  - a key that is not one of ievo's goes to librdkafka unchanged;
 *  - "consumer.<prop>" / "producer.<prop>" go to that client only, prefix stripped;
 *  - unscoped keys go to both clients, except the well-known ones that belong to one side
 *    (group.id, session.timeout.ms, ... to the consumer; acks, linger.ms, ... to the producer),
 *    so librdkafka does not warn about properties it would ignore.
 * Role defaults come first; anything the user sets wins. */
#ifndef IEVO_KAFKA_CLIENTS_H
#define IEVO_KAFKA_CLIENTS_H

#include <librdkafka/rdkafka.h>

#include "config.h"

typedef enum { KAFKA_CONSUMER = 0, KAFKA_PRODUCER = 1 } kafka_role;

/* The librdkafka property key sets for role (the prefix stripped), or NULL when key is not for
 * that client: one of ours, the other client's scope, or a property only the other side
 * honours. *scoped: the key carried this role's prefix (scoped keys win over unscoped ones). */
const char *kafka_prop_for(const char *key, kafka_role role, const char *const *ours, int *scoped);

/* A librdkafka configuration for role: defaults, then c's librdkafka properties. Its log lines
 * come into ours, module "kafka" (librdkafka's syslog levels: 0..3 ERROR, 4 WARN, 5..6 INFO,
 * 7 DEBUG), so every client of every command logs in one format, log.format honoured. */
rd_kafka_conf_t *kafka_conf_for(const config *c, kafka_role role, const char *const *defaults,
                                const char *const *ours, char *err, size_t errlen);

/* A consumer of the librdkafka properties of c (ievo's keys left out), on top of defaults (which
 * c overrides) and under forced (which override c: what defines the caller's reading, such as a
 * private group id); its messages come from rd_kafka_consumer_poll, its log lines go to
 * ours as kafka_conf_for's do. */
rd_kafka_t *kafka_consumer_new(const config *c, const char *const *defaults, const char *const *forced, char *err,
                               size_t errlen);

/* The cluster's metadata (of one topic; of the brokers when only is NULL) and a partition's
 * watermark offsets, like rd_kafka_metadata and rd_kafka_query_watermark_offsets, but a stop
 * asked for by a signal (stop_signal.h) ends the wait within seconds: RD_KAFKA_RESP_ERR__INTR. */
rd_kafka_resp_err_t kafka_metadata(rd_kafka_t *rk, rd_kafka_topic_t *only, const struct rd_kafka_metadata **md,
                                   int timeout_ms);
rd_kafka_resp_err_t kafka_watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo, int64_t *hi,
                                     int timeout_ms);
/* rk's bootstrap.servers, in buf ("?" when it cannot say), for messages. */
const char *kafka_bootstrap_servers(rd_kafka_t *rk, char *buf, size_t n);
/* What a failed wait of timeout_ms for `what` means, for a person: stopped by a signal; no
 * answer (naming the bootstrap servers to check); or the cluster's error. */
void kafka_wait_error(rd_kafka_t *rk, rd_kafka_resp_err_t e, const char *what, int timeout_ms, char *err,
                      size_t errlen);

/* The partition count of topic, from the cluster's metadata (asking may auto-create the topic on
 * a broker that does that). Returns 0, or -1 with err naming the topic. */
int kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count, char *err, size_t errlen);

/* kafka_partition_count, asked again every 250 ms (attempts times at most) while the cluster
 * answers with an error or no partition: a topic just created may answer so for a moment. No
 * answer at all within timeout_ms, or a stop, ends it at once. */
int kafka_partition_count_wait(rd_kafka_t *rk, const char *topic, int timeout_ms, int attempts, int *count, char *err,
                               size_t errlen);

#endif
