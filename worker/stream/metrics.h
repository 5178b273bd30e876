/* metrics: the worker's /metrics (Prometheus text format), /healthz and /readyz over HTTP.
 *
 * The worker thread publishes a snapshot (metrics_publish) at most every few hundred
 * milliseconds; the server thread answers scrapes from the latest snapshot under a lock, so a
 * scrape never touches the worker's live state and never slows a batch down.
 *
 *   /healthz  200 while the process runs its loop (the worker publishes at least every 5 s)
 *   /readyz   200 once partitions are assigned and none is being restored, else 503
 *   /metrics  counters, gauges and histograms named ievo_* (see metrics.c for the list)
 */
#ifndef IEVO_METRICS_H
#define IEVO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "worker.h"

#define METRICS_MAX_PARTITIONS 1024

typedef struct {
    int32_t partition;
    int owned;
    int64_t next_offset;      /* next offset to apply (-1 unknown) */
    int64_t checkpointed_offset; /* next offset as of the last checkpoint (-1 none) */
    int64_t lag;              /* records not yet applied: end offset - next offset (-1 unknown) */
} metrics_partition;

typedef struct {
    worker_stats stats;       /* copy of the worker's counters and histograms */
    int ready;                /* assigned and not restoring */
    int restoring;            /* a partition restore is running */
    int64_t restore_records_done;
    uint64_t state_memory_bytes;   /* RocksDB memtables + block cache */
    uint64_t cache_entries, cache_capacity, cache_dirty;
    int n_partitions;
    metrics_partition partitions[METRICS_MAX_PARTITIONS];
    double published_at;      /* CLOCK_MONOTONIC seconds */
} metrics_snapshot;

typedef struct metrics_server metrics_server;

/* Listens on addr ("0.0.0.0:9400", "[::]:9400"; ":9400" or "9400" alone: 127.0.0.1, the
 * loopback interface) and serves from a background thread. */
int metrics_server_start(metrics_server **out, const char *addr, char *err, size_t errlen);
/* Copies snap (the caller keeps ownership). Thread-safe. */
void metrics_publish(metrics_server *m, const metrics_snapshot *snap);
/* The bound port (useful with port 0). */
int metrics_server_port(const metrics_server *m);
/* The address bound, numeric ("127.0.0.1:9400"). */
const char *metrics_server_address(const metrics_server *m);
void metrics_server_stop(metrics_server *m);

/* The Prometheus text exposition of a snapshot (for tests and `--once` dumps); caller frees. */
char *metrics_render(const metrics_snapshot *snap, size_t *len);

#endif
