/* cmd_worker: `ievo worker` and `ievo replay`, the consumer-group worker's command line (the
 * worker itself: worker.h). Both read the settings table's worker keys; --print-config shows
 * them as the worker would apply them. */
#include <stdio.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "commands.h"
#include "json_text.h"
#include "kafka_clients.h"
#include "log.h"
#include "worker.h"

enum { OPT_PRINT_CONFIG = CLI_OPT_ID_FIRST_FREE, OPT_FROM };

#define WORKER_COMMON_OPTS                                                                                   \
    CLI_OPT_BOOTSTRAP, CLI_OPT_TOPIC("the input topic", "input.topic"),                                      \
        CLI_OPT_GROUP("the consumer group"), CLI_OPT_MODEL("model.path"),                        \
        {"print-config", OPT_PRINT_CONFIG, NULL, "print the settings as they would apply (secrets masked), then exit", NULL}

static const cli_option WORKER_OPTS[] = {
    WORKER_COMMON_OPTS,
    CLI_OPT_UNTIL_EOF("stop cleanly once every assigned partition is drained"),
    CLI_OPT_END,
};

static const cli_option REPLAY_OPTS[] = {
    WORKER_COMMON_OPTS,
    {"from", OPT_FROM, "SPEC", "where to start: beginning (default), offsets:P=O,P=O,... or timestamp:MS", NULL},
    CLI_OPT_END,
};

static const cli_command WORKER_CMD = {
    .name = "worker",
    .synopsis = "[-F FILE] [-b BROKERS] [-X KEY=VALUE]... [-m MODEL] [--until-eof] [--print-config]",
    .about = "Consumes UserAction events, keeps per-user state in RocksDB (replicated to a changelog topic),\n"
             "produces one InterestVector per applied event. Runs until SIGTERM/SIGINT.\n",
    .opts = WORKER_OPTS,
    .settings = SETTINGS_CMD_WORKER,
    .kafka = 1,
};

static const cli_command REPLAY_CMD = {
    .name = "replay",
    .synopsis = "[-F FILE] [-b BROKERS] [-X KEY=VALUE]... [--from SPEC] [--print-config]",
    .about = "A bounded backfill: re-applies the input topic into a state dir (a fresh one for a model\n"
             "upgrade) up to the end offsets captured at start, then stops. The settings are the worker's\n"
             "(give it its own group.id, state.dir, changelog.topic, and output.topic or the live one).\n"
             "Resumable: run it again with the same state.dir (or changelog) and it continues. Progress,\n"
             "throughput and time left are logged every 2 s; docs/operations.md has the model-upgrade\n"
             "procedure.\n",
    .opts = REPLAY_OPTS,
    .settings = SETTINGS_CMD_WORKER,
    .kafka = 1,
    .notes = "--from timestamp:MS takes the first offsets at or after MS (ms since the epoch): a real\n"
             "cluster answers it, the local broker cannot.\n",
};

typedef struct {
    int until_eof, print_config;
    const char *from;
} worker_cli;

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    (void)err, (void)errlen;
    worker_cli *o = ctx;
    if (key == 'e') o->until_eof = 1;
    else if (key == OPT_PRINT_CONFIG) o->print_config = 1;
    else if (key == OPT_FROM) o->from = value;
    return 0;
}

/* ---- the run summary (stats.file) ------------------------------------------------------------- */

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

static void put_int(json_t *o, const char *k, json_int_t v) { json_object_set_new(o, k, json_integer(v)); }
static void put_real(json_t *o, const char *k, double v) { json_object_set_new(o, k, json_real_or_null(v)); }

/* The summary (readers index it by name; the order is for people). */
static json_t *stats_json(const worker_stats *st, int ok) {
    double cpu = st->cpu_user_s + st->cpu_sys_s;
    json_t *o = json_object(), *dlq = json_object(), *lat = json_object(), *stages = json_object();
    if (!o || !dlq || !lat || !stages) {
        json_decref(o), json_decref(dlq), json_decref(lat), json_decref(stages);
        return NULL;
    }
    json_object_set_new(o, "ok", json_boolean(ok));
    put_int(o, "consumed", st->consumed);
    put_int(o, "applied", st->applied);
    put_int(o, "dead_lettered", st->dead_lettered);
    put_int(o, "skipped_duplicate", st->skipped_duplicate);
    put_int(o, "skipped_unowned", st->skipped_unowned);
    put_int(o, "skipped_beyond_end", st->skipped_beyond_end);
    put_int(o, "batches", st->batches);
    put_int(o, "waves", st->waves);
    put_int(o, "rebalances", st->rebalances);
    put_int(o, "max_rss_kb", st->max_rss_kb);
    put_real(o, "wall_s", st->wall_s);
    put_real(o, "active_s", st->active_s);
    put_real(o, "cpu_user_s", st->cpu_user_s);
    put_real(o, "cpu_sys_s", st->cpu_sys_s);
    put_real(o, "events_per_s", st->active_s > 0 ? (double)st->applied / st->active_s : 0.0);
    put_real(o, "cpu_us_per_event", st->applied > 0 ? cpu * 1e6 / (double)st->applied : 0.0);
    put_int(o, "changelog_records", st->changelog_records);
    put_int(o, "restored_partitions", st->restored_partitions);
    put_int(o, "restored_records", st->restored_records);
    put_int(o, "restored_incremental", st->restored_incremental);
    put_real(o, "restore_s", st->restore_s);
    put_int(o, "quarantined", st->quarantined);
    put_int(o, "io_read_bytes", st->io_read_bytes);
    put_int(o, "io_write_bytes", st->io_write_bytes);
    for (int k = CODEC_E_OVERSIZED; k <= CODEC_STATUS_LAST; k++)
        put_int(dlq, codec_status_name((codec_status)k), st->dlq_by_class[k]);
    json_object_set_new(o, "dead_letters_by_class", dlq);
    put_int(o, "offset_gaps", st->offset_gaps);
    put_int(o, "checkpoints", st->checkpoints);
    put_int(o, "cache_hits", (json_int_t)st->cache_hits);
    put_int(o, "cache_misses", (json_int_t)st->cache_misses);
    put_int(o, "cache_evictions", (json_int_t)st->cache_evictions);
    put_int(lat, "count", st->latency_count);
    put_int(lat, "p50", latency_quantile(st, 0.50));
    put_int(lat, "p99", latency_quantile(st, 0.99));
    put_int(lat, "max", latency_quantile(st, 1.0));
    json_object_set_new(o, "latency_ms", lat);
    for (int k = 0; k < STAGE_N; k++) put_real(stages, WORKER_STAGE_NAMES[k], st->stage_s[k]);
    json_object_set_new(o, "stage_s", stages);
    return o;
}

/* Written whole or not at all (atomic_file.h): a reader polling the file never sees half. */
static int write_stats(const char *path, const worker_stats *st, int ok, char *err, size_t errlen) {
    json_t *o = stats_json(st, ok);
    atomic_file af;
    if (!o) return snprintf(err, errlen, "out of memory"), -1;
    int rc = atomic_file_open(&af, path, 0666, err, errlen);
    if (!rc) {
        if (json_dumpf(o, af.f, IEVO_JSON_DUMP) || fputc('\n', af.f) == EOF) {
            snprintf(err, errlen, "cannot write %s", path);
            atomic_file_abort(&af);
            rc = -1;
        } else {
            rc = atomic_file_commit(&af, err, errlen);
        }
    }
    json_decref(o);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------------ */

/* --print-config: the worker's keys (computed defaults resolved as worker_settings did), then
 * what each client gets of the librdkafka properties. */
static int print_config(const cli_command *cmd, config *cfg, const worker_settings *s) {
    char err[1024];
    if ((!config_get(cfg, "changelog.topic", NULL) && config_set(cfg, "changelog.topic", s->changelog_topic)) ||
        (!config_get(cfg, "text.encoder.dir", NULL) && config_set(cfg, "text.encoder.dir", s->text_encoder_dir))) {
        LOG_E(cmd->name, "out of memory");
        return CLI_FAILED;
    }
    if (cli_print_config(stdout, cmd, cfg, 1u << KAFKA_CONSUMER | 1u << KAFKA_PRODUCER, err, sizeof err)) {
        fprintf(stderr, "ievo %s: %s\n", cmd->name, err);
        return CLI_USAGE;
    }
    return fflush(stdout) ? CLI_FAILED : CLI_OK;
}

/* worker_run logs the error that stops it as it happens: the summary comes after the cause. */
static int run(const char *name, const worker_settings *s, const config *cfg) {
    static worker_stats st;   /* the latency histogram is large */
    char err[1024] = "";
    int rc = worker_run(s, cfg, &st, err, sizeof err) ? CLI_FAILED : CLI_OK;
    double cpu = st.cpu_user_s + st.cpu_sys_s;
    LOG_IF(name, LOG_AT(LF_COUNT(st.applied), LF_DURATION_MS(st.wall_s * 1e3)),
           "%s: %lld events applied, %lld dead-lettered, %lld duplicates skipped in %.2f s "
           "(%.0f events/s while active, %.2f µs CPU/event, %lld batches, %lld rebalances)",
           rc ? "failed (the error above)" : "stopped", (long long)st.applied, (long long)st.dead_lettered,
           (long long)st.skipped_duplicate, st.wall_s, st.active_s > 0 ? (double)st.applied / st.active_s : 0.0,
           st.applied ? cpu * 1e6 / (double)st.applied : 0.0, (long long)st.batches, (long long)st.rebalances);
    char serr[512];
    if (s->stats_file && write_stats(s->stats_file, &st, rc == CLI_OK, serr, sizeof serr))
        LOG_W(name, "stats file: %s", serr);
    return rc;
}

static int worker_main(const cli_command *cmd, int argc, char **argv, int replay) {
    worker_cli o = {.from = "beginning"};
    cli_args a;
    int rc = cli_parse(cmd, argc, argv, on_option, &o, &a);
    worker_settings s;
    char err[1024];
    if (rc == CLI_OK && (worker_settings_from_config(&s, &a.cfg, err, sizeof err) ||
                         (replay && replay_spec_parse(&s.replay_spec, o.from, err, sizeof err)))) {
        fprintf(stderr, "ievo %s: %s\n", cmd->name, err);
        rc = CLI_USAGE;
    }
    if (rc == CLI_OK) {
        s.until_eof = o.until_eof;
        s.replay = replay;
        rc = o.print_config ? print_config(cmd, &a.cfg, &s) : run(cmd->name, &s, &a.cfg);
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}

int cmd_worker(int argc, char **argv) { return worker_main(&WORKER_CMD, argc, argv, 0); }
int cmd_replay(int argc, char **argv) { return worker_main(&REPLAY_CMD, argc, argv, 1); }
