/* cmd_worker: `ievo worker`, the consumer-group worker's command line. See worker.h. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "json.h"
#include "log.h"
#include "worker.h"

static void usage_replay(FILE *f) {
    fprintf(f,
            "usage: ievo replay [-c FILE] [-b BOOTSTRAP] [-X key=value ...] [--from SPEC]\n"
            "\n"
            "A bounded backfill: re-applies the input topic into a state dir (a fresh one for a model\n"
            "upgrade) up to the end offsets captured at start, then stops. Same settings as `ievo worker`\n"
            "(use its own group.id, state.dir, changelog.topic, and output.topic or the live one).\n"
            "  --from beginning              (default) every partition from its log start\n"
            "  --from offsets:P=O,P=O,...    the named partitions from those offsets (others: nothing)\n"
            "  --from timestamp:MS           the first offsets at or after MS (ms since the epoch; the local\n"
            "                                broker cannot answer this, a real cluster can)\n"
            "Resumable: run it again with the same state.dir (or changelog) and it continues.\n"
            "Progress, throughput and time left are logged every 2 s. See docs/operations.md for the\n"
            "model-upgrade procedure.\n");
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ievo worker [-c FILE] [-b BOOTSTRAP] [-X key=value ...] [--until-eof]\n"
            "\n"
            "Consumes UserAction events, keeps per-user state in RocksDB, produces one InterestVector\n"
            "per applied event. Settings come from FILE (key=value lines), IEVO_CFG_* environment\n"
            "variables and -X (later wins). ievo's keys:\n"
            "  bootstrap.servers, group.id       Kafka (passed to librdkafka, like every unknown key)\n"
            "  input.topic      (user-actions)   output.topic (interest-vectors)  dlq.topic (user-actions.dlq)\n"
            "  state.dir        (./ievo-state)   model.path   (required)          model.backend (dnnl|scalar)\n"
            "  input.format / output.format      confluent (default) | avro\n"
            "  input.schema.id (1)  output.schema.id (2)  input.max.record.bytes (1048576)\n"
            "  batch.max.events (2048)  batch.timeout.ms (20)\n"
            "  batch.readahead.records (65536)  fetched records held to build batches across partitions (0: off)\n"
            "  commit.interval.ms (5000)  how often applied state is made durable (checkpoint)\n"
            "  state.snapshot.slice.records (8192)  records a checkpoint's snapshot copies per loop turn\n"
            "  state.cache.bytes (268435456)  in-memory user records (write-behind cache)\n"
            "  state.block.cache.bytes  state.write.buffer.bytes  state.max.write.buffers  state.sync\n"
            "  changelog.enable (true)  changelog.topic (<group.id>-state-changelog, as many partitions as\n"
            "                   the input, compacted): states replicated so partitions can move between workers\n"
            "  log.level (info)  log.format (text|json)  log.slow.batch.ms (1000)  stats.file (run summary, JSON)\n"
            "  metrics.listen    host:port for /metrics, /healthz, /readyz (off by default)\n"
            "  output.top.k (0)  attach the K best-scoring items not in the user's window (trained models)\n"
            "  stats.series.file / stats.series.interval.ms (1000)  counters over time as JSON lines\n"
            "  state.compaction  level (default) | universal\n"
            "  consumer.<prop> / producer.<prop>   a librdkafka property for one client only\n"
            "  --until-eof   stop cleanly once every assigned partition is drained\n");
}

/* The q-quantile of the event-to-output latency histogram, in ms (-1 when empty; the last
 * bucket means >= 10 s). */
static int latency_quantile(const worker_stats *st, double q) {
    if (st->latency_count == 0) return -1;
    int64_t want = (int64_t)(q * (double)st->latency_count + 0.5), seen = 0;
    if (want < 1) want = 1;
    for (int i = 0; i < LATENCY_BUCKETS; i++)
        if ((seen += st->latency_ms[i]) >= want) return i;
    return LATENCY_BUCKETS - 1;
}

static int write_stats(const char *path, const worker_stats *st, int rc) {
    json_buf b = {0};
    double cpu = st->cpu_user_s + st->cpu_sys_s;
    json_buf_printf(&b,
                    "{\"ok\":%s,\"consumed\":%lld,\"applied\":%lld,\"dead_lettered\":%lld,"
                    "\"skipped_duplicate\":%lld,\"skipped_unowned\":%lld,\"skipped_beyond_end\":%lld,\"batches\":%lld,\"waves\":%lld,"
                    "\"rebalances\":%lld,\"max_rss_kb\":%ld,\"wall_s\":%.3f,\"active_s\":%.3f,\"cpu_user_s\":%.3f,\"cpu_sys_s\":%.3f,"
                    "\"events_per_s\":%.1f,\"cpu_us_per_event\":%.3f,\"changelog_records\":%lld,"
                    "\"restored_partitions\":%lld,\"restored_records\":%lld,\"restore_s\":%.3f,"
                    "\"dead_letters_by_class\":{",
                    rc == 0 ? "true" : "false", (long long)st->consumed, (long long)st->applied,
                    (long long)st->dead_lettered, (long long)st->skipped_duplicate, (long long)st->skipped_unowned, (long long)st->skipped_beyond_end,
                    (long long)st->batches, (long long)st->waves, (long long)st->rebalances, st->max_rss_kb, st->wall_s, st->active_s,
                    st->cpu_user_s, st->cpu_sys_s, st->active_s > 0 ? (double)st->applied / st->active_s : 0.0,
                    st->applied > 0 ? cpu * 1e6 / (double)st->applied : 0.0, (long long)st->changelog_records,
                    (long long)st->restored_partitions, (long long)st->restored_records, st->restore_s);
    int first = 1;
    for (int k = CODEC_E_OVERSIZED; k <= CODEC_STATUS_LAST; k++) {
        json_buf_printf(&b, "%s\"%s\":%lld", first ? "" : ",", codec_status_name((codec_status)k),
                        (long long)st->dlq_by_class[k]);
        first = 0;
    }
    json_buf_printf(&b, "},\"offset_gaps\":%lld,\"checkpoints\":%lld,\"cache_hits\":%llu,\"cache_misses\":%llu,\"cache_evictions\":%llu,"
                    "\"latency_ms\":{\"count\":%lld,\"p50\":%d,\"p99\":%d,\"max\":%d},\"stage_s\":{",
                    (long long)st->offset_gaps, (long long)st->checkpoints, (unsigned long long)st->cache_hits,
                    (unsigned long long)st->cache_misses, (unsigned long long)st->cache_evictions,
                    (long long)st->latency_count, latency_quantile(st, 0.50), latency_quantile(st, 0.99),
                    latency_quantile(st, 1.0));
    for (int k = 0; k < STAGE_N; k++)
        json_buf_printf(&b, "%s\"%s\":%.4f", k ? "," : "", WORKER_STAGE_NAMES[k], st->stage_s[k]);
    json_buf_append(&b, "}}\n", 3);
    int ok = !b.failed;
    if (ok) {
        FILE *f = fopen(path, "w");
        ok = f && fwrite(b.data, 1, b.len, f) == b.len;
        if (f && fclose(f)) ok = 0;
    }
    json_buf_free(&b);
    return ok ? 0 : -1;
}

/* `ievo worker` and `ievo replay` share everything but the stop condition. */
static int worker_cli(int argc, char **argv, int replay) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"until-eof", no_argument, 0, 'e'},
        {"from", required_argument, 0, 'f'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    void (*print_usage)(FILE *) = replay ? usage_replay : usage;
    const char *from = "beginning";
    config cfg = {0};
    char err[1024] = "";
    const char *file = NULL;
    int until_eof = 0, c, rc = 2;
    /* First pass: the file, so that -X given anywhere on the line overrides it. */
    while ((c = getopt_long(argc, argv, "c:b:X:h", opts, NULL)) != -1) {
        if (c == 'c') file = optarg;
        else if (c == 'h') { print_usage(stdout); return 0; }
        else if (c == '?') { print_usage(stderr); return 2; }
        else if ((c == 'f' && !replay) || (c == 'e' && replay)) {
            fprintf(stderr, "ievo %s: --%s is not an option of this command\n", replay ? "replay" : "worker",
                    c == 'f' ? "from" : "until-eof");
            return 2;
        } else if (c == 'f') from = optarg;
    }
    if (optind < argc) {
        fprintf(stderr, "ievo %s: unexpected argument '%s'\n", replay ? "replay" : "worker", argv[optind]);
        return 2;
    }
    if (file && config_load_file(&cfg, file, err, sizeof err)) goto fail;
    if (config_load_env(&cfg, err, sizeof err)) goto fail;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:b:X:h", opts, NULL)) != -1) {
        if (c == 'b' && config_set(&cfg, "bootstrap.servers", optarg)) goto oom;
        if (c == 'X' && config_set_kv(&cfg, optarg, err, sizeof err)) goto fail;
        if (c == 'e') until_eof = 1;
    }
    const char *lvl = config_get(&cfg, "log.level", "info");
    if (log_level_parse(lvl) < 0) {
        snprintf(err, sizeof err, "log.level: '%s' is not debug, info, warn or error", lvl);
        goto fail;
    }
    log_set_level((log_level)log_level_parse(lvl));
    log_set_json(strcmp(config_get(&cfg, "log.format", "text"), "json") == 0);

    worker_settings s;
    if (worker_settings_from_config(&s, &cfg, err, sizeof err)) goto fail;
    s.until_eof = until_eof;
    s.replay = replay;
    if (replay && replay_spec_parse(&s.replay_spec, from, err, sizeof err)) goto fail;
    static worker_stats st;   /* the latency histogram is large */
    rc = worker_run(&s, &cfg, &st, err, sizeof err) ? 1 : 0;
    double cpu = st.cpu_user_s + st.cpu_sys_s;
    LOG_I(replay ? "replay" : "worker", "%s: %lld events applied, %lld dead-lettered, %lld duplicates skipped in %.2f s "
          "(%.0f events/s while active, %.2f µs CPU/event, %lld batches, %lld rebalances)",
          rc ? "failed" : "stopped", (long long)st.applied, (long long)st.dead_lettered,
          (long long)st.skipped_duplicate, st.wall_s, st.active_s > 0 ? (double)st.applied / st.active_s : 0.0,
          st.applied ? cpu * 1e6 / (double)st.applied : 0.0, (long long)st.batches, (long long)st.rebalances);
    if (rc) LOG_E("worker", "%s", err);
    if (s.stats_file && write_stats(s.stats_file, &st, rc))
        LOG_W("worker", "could not write stats file %s", s.stats_file);
    config_free(&cfg);
    return rc;
oom:
    snprintf(err, sizeof err, "out of memory");
fail:
    fprintf(stderr, "ievo %s: %s\n", replay ? "replay" : "worker", err);
    config_free(&cfg);
    return 2;
}

int cmd_worker(int argc, char **argv) { return worker_cli(argc, argv, 0); }
int cmd_replay(int argc, char **argv) { return worker_cli(argc, argv, 1); }
