/* settings: the worker's settings read through the settings table (worker/common/settings.h:
 * defaults, ranges and enum values live there), into the struct worker.h describes. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "item_table.h" /* text_default_dirs */
#include "memory_limit.h"
#include "settings.h"
#include "worker.h"

/* Each reader stops at the first key that does not parse; err names it. */
static int read_topics(worker_settings *s, const config *c, char *err, size_t errlen) {
    return settings_string(c, "input.topic", &s->input_topic, err, errlen) ||
           settings_string(c, "output.topic", &s->output_topic, err, errlen) ||
           settings_string(c, "dlq.topic", &s->dlq_topic, err, errlen) ||
           settings_bool(c, "dlq.topic.create", &s->dlq_create, err, errlen) ||
           settings_string(c, "items.topic", &s->items_topic, err, errlen);
}

static int read_codec(const config *c, const char *format_key, const char *id_key, codec_in_opts *in,
                      codec_out_opts *out, char *err, size_t errlen) {
    int format;
    int64_t id;
    if (settings_enum(c, format_key, &format, err, errlen) || settings_int(c, id_key, &id, err, errlen)) return -1;
    if (in) in->format = (wire_format)format, in->schema_id = (int32_t)id;
    if (out) out->format = (wire_format)format, out->schema_id = (int32_t)id;
    return 0;
}

static int read_wire(worker_settings *s, const config *c, char *err, size_t errlen) {
    int64_t max_bytes;
    if (read_codec(c, "input.format", "input.schema.id", &s->in, NULL, err, errlen) ||
        read_codec(c, "output.format", "output.schema.id", NULL, &s->out, err, errlen) ||
        read_codec(c, "items.format", "items.schema.id", &s->items_in, NULL, err, errlen) ||
        settings_int(c, "input.max.record.bytes", &max_bytes, err, errlen))
        return -1;
    s->in.max_bytes = (size_t)max_bytes;
    return 0;
}

static int read_model(worker_settings *s, const config *c, char *err, size_t errlen) {
    int backend;
    if (settings_string(c, "model.path", &s->model_path, err, errlen) ||
        settings_enum(c, "model.backend", &backend, err, errlen))
        return -1;
    if (!s->model_path || !*s->model_path) {
        snprintf(err, errlen, "model.path is not set (create one with `ievo train` or `ievo model init`)");
        return -1;
    }
    s->backend = (model_backend)backend;   /* the table lists the values in model_backend's order */
    int64_t top_k;
    if (settings_int(c, "output.top.k", &top_k, err, errlen)) return -1;
    s->top_k = (int)top_k;
    if (settings_string(c, "text.encoder.dir", &s->text_encoder_dir, err, errlen)) return -1;
    if (!s->text_encoder_dir) {
        text_default_dirs(s->text_encoder_dir_buf, sizeof s->text_encoder_dir_buf, NULL, 0);
        s->text_encoder_dir = s->text_encoder_dir_buf;
    }
    return 0;
}

/* memory.limit.bytes (or the cgroup's): what the worker holds gets shares of it by default (the
 * table's memory.limit.bytes row says which); a key set explicitly wins, and without a limit the
 * fixed defaults apply. Read before the keys it derives. */
static int read_memory(worker_settings *s, const config *c, char *err, size_t errlen) {
    int64_t limit;
    if (settings_int(c, "memory.limit.bytes", &limit, err, errlen)) return -1;
    if (limit == 0) limit = memory_limit_cgroup();
    s->memory_limit = (size_t)limit;
    return 0;
}

/* A byte setting's value: set explicitly, else limit / share (at least 1 MiB), else fallback. */
static int read_share(const worker_settings *s, const config *c, const char *key, int64_t share, int64_t fallback,
                      size_t *out, char *err, size_t errlen) {
    int64_t derived = s->memory_limit ? (int64_t)s->memory_limit / share : fallback, v;
    if (derived < (1 << 20)) derived = 1 << 20;
    if (settings_int_or(c, key, derived, &v, err, errlen)) return -1;
    *out = (size_t)v;
    return 0;
}

static int read_batches(worker_settings *s, const config *c, char *err, size_t errlen) {
    int64_t events, timeout_ms, readahead;
    if (settings_int(c, "batch.max.events", &events, err, errlen) ||
        settings_int(c, "batch.timeout.ms", &timeout_ms, err, errlen) ||
        settings_int(c, "batch.readahead.records", &readahead, err, errlen) ||
        read_share(s, c, "batch.readahead.bytes", 8, 64 << 20, &s->readahead_bytes, err, errlen) ||
        read_share(s, c, "items.pending.bytes", 32, 64 << 20, &s->items_pending_bytes, err, errlen))
        return -1;
    s->batch_max_events = (int)events;
    s->batch_timeout_ms = (int)timeout_ms;
    s->readahead_records = (int)readahead;
    return 0;
}

static int read_store(worker_settings *s, const config *c, char *err, size_t errlen) {
    int64_t buffers, jobs, log_level, interval_ms, slice;
    int compaction;
    state_store_opts_default(&s->store);
    if (settings_string(c, "state.dir", &s->state_dir, err, errlen) ||
        read_share(s, c, "state.block.cache.bytes", 16, 64 << 20, &s->store.block_cache_bytes, err, errlen) ||
        read_share(s, c, "state.write.buffer.bytes", 48, 32 << 20, &s->store.write_buffer_bytes, err, errlen) ||
        read_share(s, c, "state.cache.bytes", 8, 256 << 20, &s->cache_bytes, err, errlen) ||
        settings_int(c, "state.max.write.buffers", &buffers, err, errlen) ||
        settings_int(c, "state.background.jobs", &jobs, err, errlen) ||
        settings_bool(c, "state.sync", &s->store.sync, err, errlen) ||
        settings_int(c, "state.log.level", &log_level, err, errlen) ||
        settings_enum(c, "state.compaction", &compaction, err, errlen) ||
        settings_int(c, "commit.interval.ms", &interval_ms, err, errlen) ||
        settings_int(c, "state.snapshot.slice.records", &slice, err, errlen))
        return -1;
    s->store.max_write_buffers = (int)buffers;
    s->store.background_jobs = (int)jobs;
    s->store.info_log_level = (int)log_level;
    s->store.universal = compaction == 1;   /* level|universal */
    s->commit_interval_s = (double)interval_ms / 1000.0;
    s->snapshot_slice = (size_t)slice;
    return 0;
}

/* state.wal: the changelog is the durable copy, as in Kafka Streams: RocksDB's WAL only costs
 * CPU then; without a changelog the WAL is all there is. Read after changelog.enable. */
static int read_wal(worker_settings *s, const config *c, char *err, size_t errlen) {
    int wal;
    if (settings_enum(c, "state.wal", &wal, err, errlen)) return -1;
    s->store.wal = wal == 0 ? !s->changelog : wal == 1;   /* auto|on|off */
    if (!s->store.wal && !s->changelog) {
        snprintf(err, errlen, "state.wal=off needs changelog.enable=true: without the WAL and the changelog a crash "
                 "would lose the state written since the last flush");
        return -1;
    }
    return 0;
}

static int read_changelog(worker_settings *s, const config *c, char *err, size_t errlen) {
    int64_t replication;
    if (settings_bool(c, "changelog.enable", &s->changelog, err, errlen) ||
        settings_string(c, "changelog.topic", &s->changelog_topic, err, errlen) ||
        settings_int(c, "changelog.replication.factor", &replication, err, errlen) || read_wal(s, c, err, errlen))
        return -1;
    if (replication == 0) {
        snprintf(err, errlen, "changelog.replication.factor: 0 is not a replication factor (-1: the cluster's default)");
        return -1;
    }
    s->changelog_replication = (int)replication;
    /* group.id is librdkafka's; "ievo" is the worker's default for its consumer */
    s->group_id = config_get(c, "group.id", "ievo");
    if (!s->changelog_topic) {   /* the table's documented default: <group.id>-state-changelog */
        snprintf(s->changelog_topic_buf, sizeof s->changelog_topic_buf, "%s-state-changelog", s->group_id);
        s->changelog_topic = s->changelog_topic_buf;
    }
    return 0;
}

static int read_observability(worker_settings *s, const config *c, char *err, size_t errlen) {
    int64_t slow_ms, series_ms;
    if (settings_string(c, "stats.file", &s->stats_file, err, errlen) ||
        settings_string(c, "stats.series.file", &s->series_file, err, errlen) ||
        settings_int(c, "stats.series.interval.ms", &series_ms, err, errlen) ||
        settings_int(c, "log.slow.batch.ms", &slow_ms, err, errlen) ||
        settings_string(c, "metrics.listen", &s->metrics_listen, err, errlen))
        return -1;
    s->series_interval_s = (double)series_ms / 1000.0;
    s->slow_batch_ms = (double)slow_ms;
    if (s->metrics_listen && !*s->metrics_listen) s->metrics_listen = NULL;
    return 0;
}

static int read_stop(worker_settings *s, const config *c, char *err, size_t errlen) {
    int64_t stop_ms;
    if (settings_int(c, "stop.timeout.ms", &stop_ms, err, errlen)) return -1;
    s->stop_timeout_s = (double)stop_ms / 1000.0;
    return 0;
}

/* The consumer's max.poll.interval.ms (librdkafka's, scoped or not; its default 300000). */
static int read_max_poll_interval(const config *c, const char **key, int64_t *ms, char *err, size_t errlen) {
    *key = config_get(c, "consumer.max.poll.interval.ms", NULL) ? "consumer.max.poll.interval.ms"
                                                              : "max.poll.interval.ms";
    const char *v = config_get(c, *key, "300000");
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < 1 || x > INT32_MAX)
        return snprintf(err, errlen, "%s: '%.100s' is not an integer in [1, %d]", *key, v, INT32_MAX), -1;
    *ms = x;
    return 0;
}

/* The schema registry (registry.h), when schema.registry.url is set: the ids travel in the
 * Confluent header, and a wait for the registry must end before the group would drop the
 * worker for not polling. Read after the formats. */
static int read_registry(worker_settings *s, const config *c, char *err, size_t errlen) {
    const char *poll_key;
    int64_t poll_ms;
    if (registry_opts_from_config(&s->registry, c, SETTINGS_CMD_WORKER, err, errlen)) return -1;
    if (!s->registry.n_urls) return 0;
    if (read_max_poll_interval(c, &poll_key, &poll_ms, err, errlen)) return -1;
    if (s->registry.wait_ms >= poll_ms) {
        snprintf(err, errlen, "schema.registry.wait.ms=%d must be below %s=%lld: the worker would leave its group "
                 "while it waits", s->registry.wait_ms, poll_key, (long long)poll_ms);
        return -1;
    }
    if (s->in.format != WIRE_CONFLUENT || s->out.format != WIRE_CONFLUENT || s->items_in.format != WIRE_CONFLUENT) {
        snprintf(err, errlen, "schema.registry.url needs input.format, output.format and items.format confluent (the "
                 "schema id travels in the Confluent header)");
        return -1;
    }
    return 0;
}

int worker_settings_from_config(worker_settings *s, const config *c, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    if (read_topics(s, c, err, errlen) || read_wire(s, c, err, errlen) || read_registry(s, c, err, errlen) ||
        read_model(s, c, err, errlen) ||
        read_memory(s, c, err, errlen) || read_batches(s, c, err, errlen) || read_store(s, c, err, errlen) ||
        read_changelog(s, c, err, errlen) ||
        read_observability(s, c, err, errlen) || read_stop(s, c, err, errlen))
        return -1;
    return 0;
}
