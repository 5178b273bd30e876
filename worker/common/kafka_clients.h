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

rd_kafka_conf_t *kafka_conf_for(const config *c, kafka_role role, const char *const *defaults,
                                const char *const *ours, char *err, size_t errlen);

/* A consumer of the librdkafka properties of c (ievo's keys left out), on top of defaults (which
 * c overrides) and under forced (which override c: what defines the caller's reading, such as a
 * private group id); its messages come from rd_kafka_consumer_poll. log_cb may be NULL. */
rd_kafka_t *kafka_consumer_new(const config *c, const char *const *defaults, const char *const *forced,
                               void (*log_cb)(const rd_kafka_t *, int, const char *, const char *), char *err,
                               size_t errlen);

/* The partition count of topic, from the cluster's metadata (asking may auto-create the topic on
 * a broker that does that). Returns 0, or -1 with err naming the topic. */
int kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count, char *err, size_t errlen);

/* kafka_partition_count, asked again every 250 ms (attempts times at most) while it fails or
 * finds no partition: a topic just created may answer so for a moment. */
int kafka_partition_count_wait(rd_kafka_t *rk, const char *topic, int timeout_ms, int attempts, int *count, char *err,
                               size_t errlen);

#endif
