/* worker: the consumer-group worker. Events in, one InterestVector per applied event out.
 *
 *   consume micro-batch -> decode + validate (bad records to the dead-letter topic)
 *     -> find the batch's users' records (in-memory cache, else one RocksDB multi-get)
 *     -> split into waves (each user at most once per wave, its events in offset order)
 *     -> one batched model step per wave -> encode + produce the outputs
 *   and every commit.interval.ms, on revocation and on stop, a checkpoint:
 *     wait for the broker's acknowledgements -> changelog records + markers -> acknowledged
 *     -> one atomic RocksDB write (dirty records + per-partition next offsets)
 *     -> store consumer offsets (committed to Kafka in the background)
 *
 * Order matters: nothing durable ever holds the effect of an event whose output was not
 * acknowledged, so a crash re-applies from the last checkpoint (state exactly once, outputs at
 * least once, deduplicable on (source_partition, source_offset)). See docs/concepts.md.
 */
#ifndef IEVO_WORKER_H
#define IEVO_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"
#include "model.h"
#include "registry.h"
#include "replay_plan.h"
#include "settings.h"
#include "state_store.h"

/* ievo's own configuration keys (the settings table's); every other key is a librdkafka property. */
#define WORKER_KEYS (settings_names())

typedef struct {
    const char *input_topic, *output_topic, *dlq_topic;
    const char *state_dir, *model_path;
    model_backend backend;
    codec_in_opts in;
    codec_out_opts out;
    int batch_max_events;      /* messages per micro-batch */
    int batch_timeout_ms;      /* longest wait to fill a batch */
    int readahead_records;     /* fetched records held to build batches across partitions; 0: off */
    size_t readahead_bytes;    /* ... and at most this many of their bytes */
    size_t memory_limit;       /* memory.limit.bytes, or the cgroup's (0: none): the budget the defaults share */
    size_t items_pending_bytes; /* items.pending.bytes */
    state_store_opts store;
    int until_eof;             /* stop once every assigned partition is drained */
    const char *stats_file;    /* write the run summary here as JSON at exit */
    double commit_interval_s;  /* checkpoint period (commit.interval.ms) */
    double stop_timeout_s;     /* stop.timeout.ms: how long a stop waits for the broker */
    const char *group_id;      /* group.id (for messages) */
    size_t snapshot_slice;     /* records a checkpoint's snapshot copies per loop turn */
    size_t cache_bytes;        /* in-memory user records (state.cache.bytes) */
    int changelog;             /* replicate states to the changelog topic (default on) */
    int changelog_replication; /* changelog.replication.factor when the worker creates it (-1: the cluster's) */
    int dlq_create;            /* dlq.topic.create: create the dead-letter topic when missing */
    const char *changelog_topic;
    char changelog_topic_buf[256];
    const char *metrics_listen;  /* "host:port" for /metrics, /healthz, /readyz; NULL: off */
    double slow_batch_ms;      /* log a batch (with its checkpoint) slower than this */
    int top_k;                 /* output.top.k: best unseen items attached to each vector (0: off) */
    const char *series_file;   /* stats.series.file: counters as JSON lines over time, or NULL */
    double series_interval_s;
    int replay;                /* a bounded replay (ievo replay): assign, not subscribe; stop at the ends */
    replay_spec replay_spec;
    /* text models (docs/text.md): the item catalogue topic ("" = none) and the text encoder */
    const char *items_topic;   /* items.topic (items) */
    codec_in_opts items_in;    /* items.format (confluent), items.schema.id (3) */
    /* the schema registry (docs/schemas.md): with schema.registry.url set, input ids are looked
     * up there and the output's id is registered; unset, the fixed ids above */
    registry_opts registry;
    const char *text_encoder_dir;  /* text.encoder.dir (${IEVO_CACHE:-~/.cache/ievo}/use-lite) */
    char text_encoder_dir_buf[4096];
} worker_settings;

/* Reads the settings from c through the settings table (its defaults, ranges and enum values).
 * Returns 0, or -1 with err naming the key. */
int worker_settings_from_config(worker_settings *s, const config *c, char *err, size_t errlen);

/* Where a batch's wall time goes. */
enum { STAGE_CONSUME, STAGE_DECODE, STAGE_STATE, STAGE_MODEL, STAGE_ENCODE, STAGE_PRODUCE, STAGE_CHANGELOG, STAGE_N };
extern const char *const WORKER_STAGE_NAMES[STAGE_N];

#define LATENCY_BUCKETS 10001      /* event-to-output latency, 1 ms buckets; the last is >= 10 s */
/* Batch sizes (records per consume): bucket k counts batches of <= 2^k records (k = 0..11),
 * the last bucket larger ones. Model step time per chunk: bucket k counts steps of <= the k-th
 * bound in microseconds, the last bucket longer ones. */
#define BATCH_SIZE_BUCKETS 13
#define STEP_US_BUCKETS 12
extern const double WORKER_STEP_US_BOUNDS[STEP_US_BUCKETS - 1];

typedef struct {
    int64_t consumed;          /* messages received */
    int64_t applied;           /* events applied to a user state (= outputs produced) */
    int64_t dead_lettered;     /* records sent to the dead-letter topic */
    int64_t skipped_duplicate; /* redelivered records already applied (offset below the stored one) */
    int64_t skipped_unowned;   /* records of partitions no longer assigned */
    int64_t skipped_beyond_end; /* replay: records past the captured end offsets */
    int64_t batches, waves;
    int64_t rebalances;
    double wall_s, cpu_user_s, cpu_sys_s;
    double active_s;           /* from the first record received to the last batch written */
    long max_rss_kb;           /* peak resident set size of the process */
    int64_t io_read_bytes, io_write_bytes; /* storage the process read and wrote (/proc/self/io; -1: unknown) */
    int64_t dlq_by_class[8];   /* indexed by codec_status */
    int64_t changelog_records; /* state records written to the changelog */
    int64_t restored_partitions, restored_records;
    int64_t restored_incremental;  /* restores that read only the changelog's tail */
    int64_t quarantined;       /* users' records that failed validation (dead-lettered, state reset) */
    double restore_s;          /* time spent restoring partitions from the changelog */
    int64_t checkpoints;
    int64_t offset_gaps;       /* records arrived past the next expected offset */
    uint64_t cache_hits, cache_misses, cache_evictions;
    double stage_s[STAGE_N];   /* wall seconds per stage */
    int64_t latency_ms[LATENCY_BUCKETS];   /* input timestamp -> output acknowledged */
    int64_t latency_count;
    int64_t batch_size_hist[BATCH_SIZE_BUCKETS];
    int64_t step_us_hist[STEP_US_BUCKETS];
    double step_us_sum;
} worker_stats;

/* Runs until SIGTERM/SIGINT (or, with until_eof, until drained). Returns 0 on a clean stop, -1
 * on a fatal error (logged; err filled). */
int worker_run(const worker_settings *s, const config *c, worker_stats *stats, char *err, size_t errlen);

/* Asks a running worker to stop after its current batch (async-signal-safe). */
void worker_request_stop(void);

#endif
