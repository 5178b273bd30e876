/* changelog: per-user state replicated to a Kafka topic co-partitioned with the input, so a
 * partition can move to any worker and take its users' states with it (the Kafka Streams
 * pattern; the topic is compacted on a real cluster).
 *
 * Records in changelog partition p (= input partition p):
 *   key user_id, value = the user's state record (worker_record.h: last applied input offset +
 *                        the model's state blob)          written for every user a batch touched
 *   key "" (empty), value = le64 next input offset        the batch's marker, written after them
 * Both are produced only after every output of the batch was acknowledged, and the RocksDB write
 * comes after both are acknowledged. Hence, in any changelog:
 *   - every state record reflects exactly the user's events up to its last applied offset, and
 *     all their outputs were acknowledged;
 *   - every input record below the last marker's offset is reflected in its user's state.
 * Restoring = the latest record per user (compaction keeps exactly that) + resuming at the last
 * marker; events a restored user already holds are skipped by the per-user offset check.
 */
#ifndef IEVO_CHANGELOG_H
#define IEVO_CHANGELOG_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

typedef struct changelog changelog;

/* Opens a reader for `topic` (its own consumer, no group membership, no commits) configured
 * from conf (taken over: destroyed on failure too). */
int changelog_open(changelog **out, rd_kafka_conf_t *conf, const char *topic, char *err, size_t errlen);
void changelog_close(changelog *cl);
const char *changelog_topic(const changelog *cl);

/* The partition's log start and end offsets. */
int changelog_bounds(changelog *cl, int32_t partition, int64_t *lo, int64_t *hi, char *err, size_t errlen);

/* The next input offset of the last marker in partition p, or -1 when it holds none. Markers
 * that are malformed or above marker_max (the input partition's end: a marker past it would
 * make every later event count as already applied) are logged and skipped. Reads only the tail
 * of the partition unless the tail has no marker. */
int changelog_last_marker(changelog *cl, int32_t partition, int64_t marker_max, int64_t *next_offset, char *err,
                          size_t errlen);

/* Reads partition p from offset `from` (the log start when below it) to its end at the time of
 * the call, calling fn for every state record in log order (later records of a user supersede
 * earlier ones; value NULL and len 0: a tombstone, the user deleted). A non-zero return from fn
 * stops the read with an error. Markers are taken as changelog_last_marker takes them. */
typedef int (*changelog_record_fn)(void *ctx, int64_t offset, const char *user, size_t user_len, const void *value,
                                   size_t len);
typedef struct {
    int64_t next_offset;   /* the last marker's value: the input's next offset (-1: none read) */
    int64_t position;      /* the changelog offset after that marker (-1: none read) */
    int64_t records;       /* state records and tombstones read */
    int64_t ignored;       /* markers skipped (malformed or out of range) */
} changelog_restored;
int changelog_restore(changelog *cl, int32_t partition, int64_t from, int64_t marker_max, changelog_record_fn fn,
                      void *ctx, changelog_restored *out, char *err, size_t errlen);

/* Encodes a marker value (8 bytes). */
void changelog_marker_value(uint8_t out[8], int64_t next_offset);
/* Decodes one as read back: the next input offset, or -1 when value is not 8 bytes or holds a
 * negative offset (the caller also refuses one past the input's end). */
int64_t changelog_marker_parse(const void *value, size_t len);

#endif
