/* observe: what the worker shows of itself while it runs: snapshots for the metrics server
 * (metrics.h: /metrics, /healthz, /readyz) and the stats series (stats.series.file, one JSON
 * line of counters per interval, for `ievo report` and plots). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "worker_internal.h"

/* Records of partition p not yet applied: its end offset (the high watermark of the last fetch
 * response, kept by librdkafka: no request) minus the next offset to apply; before anything is
 * applied, minus the log start. 0 when caught up; -1 when the end is not known yet. Not the
 * committed offset, which moves only at checkpoints and commits: a caught-up worker shows 0. */
static int64_t partition_lag(worker *w, int32_t p, const part_state *ps) {
    int64_t lo = -1, hi = -1;
    if (!w->k.consumer || rd_kafka_get_watermark_offsets(w->k.consumer, w->s->input_topic, p, &lo, &hi) || hi < 0)
        return -1;
    int64_t at = ps->next >= 0 ? ps->next : lo >= 0 ? lo : 0;
    return hi > at ? hi - at : 0;
}

void observe_publish(worker *w, int force) {
    if (!w->metrics) return;
    double now = clock_mono_s();
    if (!force && now - w->last_publish_s < 0.25) return;
    metrics_snapshot *m = w->snap;
    m->stats = *w->stats;
    if (w->cache) {
        m->stats.cache_hits = state_cache_hits(w->cache);
        m->stats.cache_misses = state_cache_misses(w->cache);
        m->stats.cache_evictions = state_cache_evictions(w->cache);
        m->cache_entries = state_cache_size(w->cache);
        m->cache_capacity = state_cache_capacity(w->cache);
        m->cache_dirty = state_cache_dirty_count(w->cache);
    }
    m->restoring = w->restoring;
    m->restore_records_done = w->restore_records_done;
    m->ready = w->ever_assigned && !w->restoring && !w->failed;
    m->state_memory_bytes = w->store ? state_store_memory_bytes(w->store) : 0;
    m->n_partitions = 0;
    for (int p = 0; p < w->parts.n && m->n_partitions < METRICS_MAX_PARTITIONS; p++) {
        const part_state *ps = &w->parts.p[p];
        if (!ps->owned && ps->next < 0) continue;
        m->partitions[m->n_partitions++] = (metrics_partition){
            .partition = p, .owned = ps->owned, .next_offset = ps->next,
            .checkpointed_offset = ps->checkpointed, .lag = ps->owned ? partition_lag(w, p, ps) : -1};
    }
    m->published_at = now;
    metrics_publish(w->metrics, m);
    w->last_publish_s = now;
}

/* One JSON line of counters per stats.series.interval.ms (for `ievo report` and plots). */
void observe_series(worker *w, int force) {
    if (!w->series) return;
    double now = clock_mono_s();
    if (!force && now - w->last_series_s < w->s->series_interval_s) return;
    w->last_series_s = now;
    int64_t lag = 0;
    int known = 0, owned = 0;
    for (int p = 0; p < w->parts.n; p++) {
        if (!w->parts.p[p].owned) continue;
        owned++;
        int64_t l = partition_lag(w, p, &w->parts.p[p]);
        if (l >= 0) {
            lag += l;
            known++;
        }
    }
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    char lag_text[32] = "null";
    if (known) snprintf(lag_text, sizeof lag_text, "%lld", (long long)lag);
    long rss_pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm) {
        if (fscanf(statm, "%*s %ld", &rss_pages) != 1) rss_pages = 0;
        fclose(statm);
    }
    const worker_stats *st = w->stats;
    fprintf(w->series,
            "{\"t\":%.3f,\"ts\":%lld,\"consumed\":%lld,\"applied\":%lld,\"dead_lettered\":%lld,"
            "\"duplicates_skipped\":%lld,\"lag\":%s,\"partitions\":%d,\"rebalances\":%lld,\"restoring\":%d,"
            "\"ready\":%d,\"checkpoints\":%lld,\"rss_bytes\":%lld}\n",
            now - w->started_s, (long long)rt.tv_sec * 1000 + rt.tv_nsec / 1000000, (long long)st->consumed,
            (long long)st->applied, (long long)st->dead_lettered, (long long)st->skipped_duplicate, lag_text, owned,
            (long long)st->rebalances, w->restoring, w->ever_assigned && !w->restoring && !w->failed,
            (long long)st->checkpoints, (long long)rss_pages * sysconf(_SC_PAGESIZE));
    fflush(w->series);
}
