/* settings: the worker's settings read from a config (defaults applied, ranges checked). See
 * worker.h for what each one means. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "item_table.h" /* text_default_dirs */
#include "worker.h"

const char *const WORKER_KEYS[] = {
    "input.topic", "output.topic", "dlq.topic", "state.dir", "model.path", "model.backend",
    "input.format", "input.schema.id", "input.max.record.bytes", "output.format", "output.schema.id",
    "batch.max.events", "batch.timeout.ms", "batch.readahead.records", "state.block.cache.bytes", "state.write.buffer.bytes",
    "state.max.write.buffers", "state.sync", "state.background.jobs", "log.level", "log.format",
    "stats.file", "changelog.enable", "changelog.topic", "state.log.level", "commit.interval.ms",
    "state.cache.bytes", "metrics.listen", "state.compaction", "state.snapshot.slice.records",
    "log.slow.batch.ms", "stats.series.file", "stats.series.interval.ms", "output.top.k", "items.topic",
    "items.format", "items.schema.id", "text.encoder.dir", "state.wal", "changelog.replication.factor", "dlq.topic.create",
    /* the schema registry's (REGISTRY_KEYS; tests/unit/test_registry.c checks they are all here) */
    "schema.registry.url", "basic.auth.user.info", "schema.registry.basic.auth.user.info", "basic.auth.credentials.source",
    "schema.registry.ssl.ca.location", "schema.registry.ssl.certificate.location", "schema.registry.ssl.key.location",
    "schema.registry.ssl.key.password", "schema.registry.ssl.endpoint.identification.algorithm",
    "schema.registry.request.timeout.ms", "schema.registry.retries", "schema.registry.retry.backoff.ms",
    "schema.registry.retry.backoff.max.ms", "auto.register.schemas", "use.latest.version", "value.subject.name.strategy",
    "schema.registry.unavailable", "schema.registry.wait.ms", "schema.registry.ssl.truststore.location",
    "schema.registry.ssl.keystore.location", NULL};

int worker_settings_from_config(worker_settings *s, const config *c, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    int64_t v;
    s->input_topic = config_get(c, "input.topic", "user-actions");
    s->output_topic = config_get(c, "output.topic", "interest-vectors");
    s->dlq_topic = config_get(c, "dlq.topic", "user-actions.dlq");
    s->state_dir = config_get(c, "state.dir", "./ievo-state");
    s->model_path = config_get(c, "model.path", NULL);
    if (!s->model_path) {
        snprintf(err, errlen, "model.path is not set (create one with `ievo model init`)");
        return -1;
    }
    const char *backend = config_get(c, "model.backend", "dnnl");
    if (!strcmp(backend, "dnnl")) s->backend = MODEL_BACKEND_DNNL;
    else if (!strcmp(backend, "scalar")) s->backend = MODEL_BACKEND_SCALAR;
    else {
        snprintf(err, errlen, "model.backend: '%s' is not dnnl or scalar", backend);
        return -1;
    }
    int f = wire_format_parse(config_get(c, "input.format", "confluent"));
    if (f < 0) { snprintf(err, errlen, "input.format: expected confluent or avro"); return -1; }
    s->in.format = (wire_format)f;
    if (config_get_int(c, "input.schema.id", 1, 0, INT32_MAX, &v, err, errlen)) return -1;
    s->in.schema_id = (int32_t)v;
    if (config_get_int(c, "input.max.record.bytes", 1 << 20, 64, 1 << 30, &v, err, errlen)) return -1;
    s->in.max_bytes = (size_t)v;
    f = wire_format_parse(config_get(c, "output.format", "confluent"));
    if (f < 0) { snprintf(err, errlen, "output.format: expected confluent or avro"); return -1; }
    s->out.format = (wire_format)f;
    if (config_get_int(c, "output.schema.id", 2, 0, INT32_MAX, &v, err, errlen)) return -1;
    s->out.schema_id = (int32_t)v;
    if (config_get_int(c, "batch.max.events", 2048, 1, 1 << 20, &v, err, errlen)) return -1;
    s->batch_max_events = (int)v;
    if (config_get_int(c, "batch.timeout.ms", 20, 0, 60000, &v, err, errlen)) return -1;
    s->batch_timeout_ms = (int)v;
    if (config_get_int(c, "batch.readahead.records", 65536, 0, 1 << 24, &v, err, errlen)) return -1;
    s->readahead_records = (int)v;
    state_store_opts_default(&s->store);
    if (config_get_int(c, "state.block.cache.bytes", (int64_t)s->store.block_cache_bytes, 1 << 20, INT64_MAX, &v, err, errlen)) return -1;
    s->store.block_cache_bytes = (size_t)v;
    if (config_get_int(c, "state.write.buffer.bytes", (int64_t)s->store.write_buffer_bytes, 1 << 20, INT64_MAX, &v, err, errlen)) return -1;
    s->store.write_buffer_bytes = (size_t)v;
    if (config_get_int(c, "state.max.write.buffers", s->store.max_write_buffers, 2, 64, &v, err, errlen)) return -1;
    s->store.max_write_buffers = (int)v;
    if (config_get_int(c, "state.background.jobs", s->store.background_jobs, 1, 64, &v, err, errlen)) return -1;
    s->store.background_jobs = (int)v;
    if (config_get_bool(c, "state.sync", 0, &s->store.sync, err, errlen)) return -1;
    if (config_get_int(c, "state.log.level", s->store.info_log_level, 0, 4, &v, err, errlen)) return -1;
    const char *compaction = config_get(c, "state.compaction", "level");
    if (strcmp(compaction, "level") && strcmp(compaction, "universal")) {
        snprintf(err, errlen, "state.compaction: '%s' is not level or universal", compaction);
        return -1;
    }
    s->store.universal = !strcmp(compaction, "universal");
    s->store.info_log_level = (int)v;
    s->stats_file = config_get(c, "stats.file", NULL);
    if (config_get_int(c, "commit.interval.ms", 5000, 0, 3600000, &v, err, errlen)) return -1;
    s->commit_interval_s = (double)v / 1000.0;
    if (config_get_int(c, "state.snapshot.slice.records", 8192, 1, INT32_MAX, &v, err, errlen)) return -1;
    s->snapshot_slice = (size_t)v;
    if (config_get_int(c, "state.cache.bytes", 256 << 20, 1 << 20, INT64_MAX, &v, err, errlen)) return -1;
    s->cache_bytes = (size_t)v;
    if (config_get_bool(c, "changelog.enable", 1, &s->changelog, err, errlen)) return -1;
    if (config_get_int(c, "changelog.replication.factor", -1, -1, 32767, &v, err, errlen)) return -1;
    if (v == 0) {
        snprintf(err, errlen, "changelog.replication.factor: 0 is not a replication factor (-1: the cluster's default)");
        return -1;
    }
    s->changelog_replication = (int)v;
    if (config_get_bool(c, "dlq.topic.create", 0, &s->dlq_create, err, errlen)) return -1;
    /* state.wal: the changelog is the durable copy, as in Kafka Streams: RocksDB's WAL only
     * costs CPU then; without a changelog the WAL is all there is. */
    const char *wal = config_get(c, "state.wal", "auto");
    if (!strcmp(wal, "auto")) s->store.wal = !s->changelog;
    else if (!strcmp(wal, "on")) s->store.wal = 1;
    else if (!strcmp(wal, "off")) s->store.wal = 0;
    else {
        snprintf(err, errlen, "state.wal: '%s' is not auto, on or off", wal);
        return -1;
    }
    if (!s->store.wal && !s->changelog) {
        snprintf(err, errlen, "state.wal=off needs changelog.enable=true: without the WAL and the changelog a crash "
                 "would lose the state written since the last flush");
        return -1;
    }
    if (config_get_int(c, "log.slow.batch.ms", 1000, 1, 3600000, &v, err, errlen)) return -1;
    s->slow_batch_ms = (double)v;
    if (config_get_int(c, "output.top.k", 0, 0, 256, &v, err, errlen)) return -1;
    s->top_k = (int)v;
    s->series_file = config_get(c, "stats.series.file", NULL);
    if (config_get_int(c, "stats.series.interval.ms", 1000, 10, 3600000, &v, err, errlen)) return -1;
    s->series_interval_s = (double)v / 1000.0;
    s->metrics_listen = config_get(c, "metrics.listen", NULL);
    if (s->metrics_listen && !*s->metrics_listen) s->metrics_listen = NULL;
    s->items_topic = config_get(c, "items.topic", "items");
    f = wire_format_parse(config_get(c, "items.format", "confluent"));
    if (f < 0) { snprintf(err, errlen, "items.format: expected confluent or avro"); return -1; }
    s->items_in.format = (wire_format)f;
    if (config_get_int(c, "items.schema.id", 3, 0, INT32_MAX, &v, err, errlen)) return -1;
    s->items_in.schema_id = (int32_t)v;
    if (registry_opts_from_config(&s->registry, c, err, errlen)) return -1;
    if (s->registry.n_urls) {
        /* waiting longer than the consumer may go without polling would cost the group membership */
        const char *poll_key = config_get(c, "consumer.max.poll.interval.ms", NULL) ? "consumer.max.poll.interval.ms"
                                                                                  : "max.poll.interval.ms";
        if (config_get_int(c, poll_key, 300000, 1, INT32_MAX, &v, err, errlen)) return -1;
        if (s->registry.wait_ms >= v) {
            snprintf(err, errlen, "schema.registry.wait.ms=%d must be below %s=%lld: the worker would leave its group "
                     "while it waits", s->registry.wait_ms, poll_key, (long long)v);
            return -1;
        }
        if (s->in.format != WIRE_CONFLUENT || s->out.format != WIRE_CONFLUENT) {
            snprintf(err, errlen, "schema.registry.url needs input.format and output.format confluent (the schema id "
                     "travels in the Confluent header)");
            return -1;
        }
    }
    text_default_dirs(s->text_encoder_dir_buf, sizeof s->text_encoder_dir_buf, NULL, 0);
    s->text_encoder_dir = config_get(c, "text.encoder.dir", s->text_encoder_dir_buf);
    snprintf(s->changelog_topic_buf, sizeof s->changelog_topic_buf, "%s-state-changelog",
             config_get(c, "group.id", "ievo"));
    s->changelog_topic = config_get(c, "changelog.topic", s->changelog_topic_buf);
    return 0;
}
