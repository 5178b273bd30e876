/* state_store: per-user model state in RocksDB, sharded by input partition, with each
 * partition's next offset to apply written in the same atomic write as the states it covers.
 *
 * That last property is the exactly-once guarantee for state: after any crash the store holds
 * the states as of some checkpoint together with the offsets of exactly that checkpoint, so a
 * restart resumes from those offsets and neither skips nor re-applies an event.
 *
 * Which checkpoint survives depends on the write-ahead log (state_store_opts.wal):
 *  - WAL off (the worker's default with a changelog, as Kafka Streams runs RocksDB): a crash
 *    loses the writes since the last memtable flush, and the store recovers to the checkpoint
 *    flushed last. Its offsets carry the changelog position of that checkpoint, from which the
 *    worker restores only the changelog's tail (worker/stream/restore.c).
 *  - WAL on: every write survives a process crash; a machine crash may lose a suffix of
 *    checkpoints (state.sync=true makes every write durable at a cost).
 * With one column family, a flush holds whole write batches: any recovered state is a
 * checkpoint's, never half of one.
 *
 * Keys (one RocksDB per worker, one key space sharded by partition):
 *   0x00 "meta:" name              store metadata (input topic, model fingerprint)
 *   0x01 be32(partition)           -> be64 next offset to apply [+ be64 changelog position]
 *   0x02 be32(partition) user_id   -> the user's record (worker_record.h; opaque here)
 *   0x03 be64(item key)            -> a text model's item text vector: le64 text hash, le32 id
 *                                     length, the id, then the vector (f32 little-endian)
 *   0x04 be32(items partition)     -> be64 next offset of the items topic to read
 * The item key spaces are written in their own atomic writes (item_consumer.c), not with states:
 * an item vector is a function of its text alone.
 */
#ifndef IEVO_STATE_STORE_H
#define IEVO_STATE_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct state_store state_store;

typedef struct {
    size_t block_cache_bytes;    /* LRU block cache (default 64 MiB) */
    size_t write_buffer_bytes;   /* per memtable (default 32 MiB) */
    int max_write_buffers;       /* memtables kept (default 3) */
    int wal;                     /* write-ahead log (default 1) */
    int sync;                    /* fsync every write's WAL (default 0); needs wal */
    int background_jobs;         /* flush + compaction threads (default 2) */
    int info_log_level;          /* RocksDB's LOG file: 0 debug .. 4 fatal (default 4, see state_store.c) */
    int universal;               /* universal compaction (lower write amplification) instead of levels */
    int read_only;               /* open an existing store to read it (ievo state): nothing is created,
                                    nothing written, and a missing dir is an error */
} state_store_opts;

void state_store_opts_default(state_store_opts *o);

/* Opens dir, creating it (mode 0700: the states are the users' data) and the store when missing,
 * unless o->read_only. */
int state_store_open(state_store **out, const char *dir, const state_store_opts *o,
                     char *err, size_t errlen);
void state_store_close(state_store *s);

/* Binds the store to one input topic and one model: records them on first use, and refuses
 * (returns -1 with a message) when the store was written for another topic or model. */
int state_store_bind(state_store *s, const char *input_topic, uint64_t model_fingerprint,
                     const char *model_id, char *err, size_t errlen);

/* Next offset to apply for a partition (-1 when the store holds nothing for it) and, when
 * changelog_next is not NULL, the changelog position written with it: the offset after the
 * changelog marker of the same checkpoint (-1: none recorded). */
int state_store_get_offset(state_store *s, int32_t partition, int64_t *next_offset, int64_t *changelog_next,
                           char *err, size_t errlen);

/* Looks up n records. For each i: when found, loads it into bufs[i] (state_size bytes: the
 * stored form padded with zeros, worker_record.h) and sets found[i] = 1; when absent, 0; when the
 * stored value is no record's length (longer than state_size or shorter than RECORD_MIN),
 * STATE_STORE_MALFORMED, with its first state_size bytes in bufs[i] and its length in
 * malformed_len[i] (the caller quarantines it). */
#define STATE_STORE_MALFORMED (-1)
int state_store_multi_get(state_store *s, size_t n, const int32_t *partitions,
                          const char *const *users, const size_t *user_lens, void *const *bufs,
                          size_t state_size, int *found, size_t *malformed_len, char *err, size_t errlen);

/* An atomic write: states and offsets together. */
typedef struct state_batch state_batch;
state_batch *state_batch_new(void);
void state_batch_free(state_batch *b);
void state_batch_clear(state_batch *b);
size_t state_batch_count(const state_batch *b);
void state_batch_put_state(state_batch *b, int32_t partition, const char *user, size_t user_len,
                           const void *state, size_t state_size);
/* A partition's next offset to apply and the changelog position that matches it (-1: none). */
void state_batch_put_offset(state_batch *b, int32_t partition, int64_t next_offset, int64_t changelog_next);
/* Removes a user's record (a changelog tombstone, a quarantined record). */
void state_batch_delete_state(state_batch *b, int32_t partition, const char *user, size_t user_len);
int state_store_write(state_store *s, state_batch *b, char *err, size_t errlen);

/* Writes the memtables to disk and waits: with the WAL off, what a clean stop does so that the
 * next start finds everything (RocksDB would flush at close too, but could not report a failure). */
int state_store_flush(state_store *s, char *err, size_t errlen);

/* Removes every state and the offset of one partition, atomically (before restoring it). */
int state_store_drop_partition(state_store *s, int32_t partition, char *err, size_t errlen);

/* Calls fn for every stored state (in key order: by partition, then user id). fn returns
 * non-zero to stop. */
typedef int (*state_store_visit_fn)(void *ctx, int32_t partition, const char *user,
                                    size_t user_len, const void *state, size_t state_size);
int state_store_foreach(state_store *s, state_store_visit_fn fn, void *ctx, char *err, size_t errlen);

/* Every partition that has an offset: fills up to cap entries, returns the count (or -1). */
int state_store_list_offsets(state_store *s, int32_t *partitions, int64_t *offsets, int cap,
                             char *err, size_t errlen);

/* Item text vectors and the items topic's offsets (text models; see the key spaces above). */
void state_batch_put_item(state_batch *b, uint64_t key, uint64_t text_hash, const char *id, size_t id_len,
                          const float *vec, int dim);
void state_batch_put_item_offset(state_batch *b, int32_t partition, int64_t next_offset);
/* Calls fn for every stored item (in key order); vec points at dim little-endian floats at any
 * alignment (copy before use). fn returns non-zero to stop. A malformed value is an error. */
typedef int (*state_store_item_fn)(void *ctx, uint64_t key, uint64_t text_hash, const char *id, size_t id_len,
                                   const void *vec, int dim);
int state_store_foreach_item(state_store *s, state_store_item_fn fn, void *ctx, char *err, size_t errlen);
/* Splits a stored item value into its fields (the layout above): 0, or -1 when its lengths do
 * not add up. The pointers point into value. */
int state_store_item_decode(const void *value, size_t len, uint64_t *text_hash, const char **id, size_t *id_len,
                            const void **vec, int *dim);
/* The items topic's next offset for a partition, or -1 when none is stored. */
int state_store_get_item_offset(state_store *s, int32_t partition, int64_t *next_offset, char *err, size_t errlen);

/* Approximate memory held by memtables and the block cache, in bytes (for metrics). */
uint64_t state_store_memory_bytes(state_store *s);

#endif
