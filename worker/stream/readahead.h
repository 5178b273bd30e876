/* readahead: records already fetched, held per partition, handed out in batches that take from
 * many partitions.
 *
 * librdkafka's consumer queue hands over a partition's fetched records as one run (a fetch
 * response's message set), so a micro-batch read straight from it holds one or two partitions,
 * and a heavy user's events in it form a long chain of one-row model steps (the worker steps a
 * user's n-th event of the batch in wave n; docs/performance.md). The worker instead reads ahead
 * up to `batch.readahead.records` records and `batch.readahead.bytes` bytes of what is already
 * fetched into one FIFO lane per partition
 * and builds each batch from the lanes in turn, an equal share from each.
 *
 * What it keeps: a partition's records leave in the order they came (its offset order), and a
 * message that carries an event (partition EOF, an error) leaves after that partition's records
 * before it. Messages with no partition (partition < 0) leave first. Nothing is reordered within
 * a partition, so the worker's offset checks (batch.c) see what they would have seen.
 *
 * The holder never talks to Kafka: messages arrive by readahead_push and are destroyed through
 * the callback given at creation (rd_kafka_message_destroy in the worker; a counter in tests).
 * On a rebalance the worker drops the lanes of the partitions it loses or gains, as librdkafka
 * drops a partition's queued records on unassign: what they held is fetched again by whoever
 * owns the partition next, from the offset its state stands at.
 */
#ifndef IEVO_READAHEAD_H
#define IEVO_READAHEAD_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

typedef struct readahead readahead;
typedef void (*readahead_destroy_fn)(rd_kafka_message_t *m);

/* destroy: called once for every message the holder drops (never for one it hands out). */
readahead *readahead_new(readahead_destroy_fn destroy);
/* Destroys every message still held. */
void readahead_free(readahead *r);

/* Takes ownership of m. Returns -1 (m not taken) when out of memory. */
int readahead_push(readahead *r, rd_kafka_message_t *m);
/* Messages held, and their keys' and payloads' bytes (what the read-ahead's byte budget counts). */
size_t readahead_count(const readahead *r);
size_t readahead_bytes(const readahead *r);

/* Moves up to max messages into out, the partitionless first, then from the partitions' lanes in
 * turn, each turn an equal share of what is left to fill (at least one record). The lane to start
 * from moves on by one every call, so no partition is always last. Returns how many. */
size_t readahead_take(readahead *r, rd_kafka_message_t **out, size_t max);

/* Destroys the messages held for partition p (a rebalance moved it). */
void readahead_drop_partition(readahead *r, int32_t p);
/* Destroys every message held. */
void readahead_clear(readahead *r);

#endif
