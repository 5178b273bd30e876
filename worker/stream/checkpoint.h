/* checkpoint: makes what the worker applied durable, in one order, through one implementation.
 *
 *   1. the cut: each partition's next offset, and the cache's dirty records become "flushing"
 *      (not evictable; a record changed afterwards is dirty again, for the next checkpoint);
 *   2. the snapshot: those records copied out, a slice per turn of the event loop (or none,
 *      when the caller waits: nothing changes the cache meanwhile);
 *   3. the outputs' epoch turns: every output and dead letter produced before it must be
 *      acknowledged by the broker (a refused one fails the checkpoint);
 *   4. the changelog: every snapshot record in RocksDB key order, then a marker per advanced
 *      partition; all acknowledged;
 *   5. one atomic store write: the records and the partitions' offsets, each with the changelog
 *      position after its marker (where a restore of this store would start reading);
 *   6. the consumer offsets stored (committed to Kafka in the background), the flushing
 *      records clean.
 * So nothing durable (store, changelog) ever holds the effect of an event whose output was not
 * acknowledged, and a crash at any point re-applies from the last checkpoint that reached 5.
 *
 * Steps 4-5 run on a writer thread at low priority, so the event loop goes on while a periodic
 * checkpoint works (checkpoint_begin, then checkpoint_progress each loop turn). Revocation, a
 * stop and a cache with no room run the same steps and wait for them (checkpoint_now).
 *
 * The I/O of each step goes through checkpoint_io: the worker's is Kafka and RocksDB
 * (worker_io.c); tests/unit/test_checkpoint.c puts a recorder there and checks the order. */
#ifndef IEVO_CHECKPOINT_H
#define IEVO_CHECKPOINT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "partitions.h"
#include "state_cache.h"
#include "state_store.h"
#include "worker.h"

typedef struct checkpoint_io {
    void *ctx;
    /* Serves the outputs' delivery reports, waiting up to timeout_ms for one. */
    void (*poll_outputs)(void *ctx, int timeout_ms);
    /* -1 with err when the broker refused an output or dead letter so far, else 0. */
    int (*outputs_failed)(void *ctx, char *err, size_t errlen);
    /* Produces one changelog record (an empty key: a marker); value stays valid until
     * changelog_flush returns. Called from the writer thread. */
    int (*changelog_put)(void *ctx, int32_t partition, const char *key, size_t key_len, const void *value,
                         size_t len, char *err, size_t errlen);
    /* Waits until every changelog record put so far is acknowledged; -1 with err when the
     * broker refused one, or when *cancel turns non-zero (then it gives up soon). Called from
     * the writer thread. */
    int (*changelog_flush)(void *ctx, const atomic_int *cancel, char *err, size_t errlen);
    /* After a flush: the changelog offset after partition p's last acknowledged marker (-1:
     * unknown). Written with the partition's offset, so a restore can start there. */
    int64_t (*changelog_position)(void *ctx, int32_t partition);
    /* One atomic write of the store. Called from the writer thread. */
    int (*store_write)(void *ctx, state_batch *b, char *err, size_t errlen);
    /* Stores the consumer offsets of the owned partitions in the checkpoint (best effort: the
     * store holds them too). */
    void (*offsets_store)(void *ctx, int n, const int32_t *partitions, const int64_t *offsets);
    /* When a wait for a checkpoint must give up (CLOCK_MONOTONIC seconds; 0: never): a stop
     * cannot wait for an unreachable broker for ever. */
    double (*deadline)(void *ctx);
} checkpoint_io;

typedef struct checkpoint checkpoint;

/* changelog: write step 4. slice: records the snapshot copies per loop turn. stats: where the
 * checkpoints are counted and timed (STAGE_PRODUCE, STAGE_CHANGELOG, STAGE_STATE). */
int checkpoint_new(checkpoint **out, const checkpoint_io *io, state_cache *cache, partitions *parts,
                   size_t record_size, int changelog, size_t slice, worker_stats *stats);
/* Lets a writer still running end (joins it), completing nothing. */
void checkpoint_free(checkpoint *ck);

/* ---- the outputs' epochs ----
 * Every output and dead letter is tagged (its producer's opaque) with the epoch it belongs to
 * and the input's timestamp (for the latency). The delivery report gives the tag back. */
void *checkpoint_tag_output(checkpoint *ck, int64_t in_ts);
/* The record was not produced after all. */
void checkpoint_untag_output(checkpoint *ck, void *tag);
/* Its delivery report arrived (any thread); returns the input's timestamp it carried (0: none). */
int64_t checkpoint_output_done(checkpoint *ck, void *tag);

/* ---- checkpoints ---- all return 0, or -1 with err (nothing after the failed step happened;
 * the worker must stop: what it applied since the last checkpoint is applied again on restart). */
/* Starts one in the background when there is anything to write (no-op while one is in flight). */
int checkpoint_begin(checkpoint *ck, char *err, size_t errlen);
/* Moves the one in flight on by what is ready, without waiting. */
int checkpoint_progress(checkpoint *ck, char *err, size_t errlen);
/* Lands the one in flight, waiting. */
int checkpoint_finish(checkpoint *ck, char *err, size_t errlen);
/* Makes everything applied so far durable, waiting: lands the one in flight, then writes the rest.
 * A wait past io->deadline gives up (the flight abandoned). */
int checkpoint_now(checkpoint *ck, char *err, size_t errlen);
/* Drops the flight, completing nothing: a running writer gives up and is joined, and the
 * flight's records are dirty again (for a later checkpoint, if the worker goes on). */
void checkpoint_abandon(checkpoint *ck);
/* A checkpoint is in flight (its records are not evictable). */
int checkpoint_in_flight(const checkpoint *ck);
/* Seconds (CLOCK_MONOTONIC) when the last checkpoint began, or was found to have nothing to do. */
double checkpoint_last_s(const checkpoint *ck);

#endif
