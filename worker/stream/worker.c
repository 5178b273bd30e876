/* worker: start-up, the consume loop and a clean stop. The parts it calls are listed in
 * worker_internal.h; see worker.h for the guarantees.
 *
 * One thread runs the loop (librdkafka, RocksDB and the checkpoint's writer keep their own
 * threads). Rebalance callbacks run inside the consume call, between batches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "clock.h"
#include "item_consumer.h"
#include "kafka_clients.h"
#include "log.h"
#include "worker_internal.h"
#include "worker_record.h"

/* ---- start-up and shutdown ------------------------------------------------------------- */

/* The internal topics (topics.h): the changelog with the input's partitions and compaction, and
 * with dlq.topic.create the dead-letter topic; each created when missing. */
static int ensure_topics(worker *w, char *err, size_t errlen) {
    const worker_settings *s = w->s;
    topics_ops ops = worker_io_topics(w);
    int in = 0;
    if (kafka_partition_count(w->k.consumer, s->input_topic, 10000, &in, err, errlen)) return -1;
    if (s->changelog && (topics_ensure(&ops, s->changelog_topic, in, "compact", 1, in, s->changelog_replication, err,
                                       errlen) ||
                         worker_io_track_changelog(w, in, err, errlen)))
        return -1;
    if (s->dlq_create && topics_ensure(&ops, s->dlq_topic, 0, NULL, 1, in, s->changelog_replication, err, errlen))
        return -1;
    return 0;
}

/* The state cache, the restores' write batch, the read-ahead and the batch's scratch. */
static int alloc_state(worker *w, char *err, size_t errlen) {
    size_t B = (size_t)w->s->batch_max_events;
    size_t entries = w->s->cache_bytes / (w->record_size + 128);
    if (entries < 2 * B) entries = 2 * B;
    w->max_dirty = entries / 2;
    checkpoint_io io = worker_io_checkpoint(w);
    if ((w->s->readahead_records > 0 && !(w->ra = readahead_new(rd_kafka_message_destroy))) ||
        !(w->wb = state_batch_new()) || state_cache_new(&w->cache, entries, w->record_size) || batch_alloc(w) ||
        checkpoint_new(&w->ck, &io, w->cache, &w->parts, w->record_size, w->s->changelog, w->s->snapshot_slice,
                       w->stats)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Model, store, scratch, text catalogue, metrics and series, then the Kafka clients. */
static int start(worker *w, const config *c, char *err, size_t errlen) {
    const worker_settings *s = w->s;
    model_runtime_init(1);
    if (model_load(&w->m, s->model_path, err, errlen)) return -1;
    w->runner_batch = s->batch_max_events < 256 ? s->batch_max_events : 256;
    if (model_runner_new(&w->runner, w->m, s->backend, w->runner_batch, err, errlen)) return -1;
    if (s->top_k && !(model_heads(w->m) & MODEL_HEAD_SCORE)) {
        snprintf(err, errlen, "output.top.k=%d needs a model with a scoring head (train one with `ievo train`)",
                 s->top_k);
        return -1;
    }
    w->state_size = model_state_size(w->m);
    w->record_size = RECORD_HEADER + w->state_size;
    if (state_store_open(&w->store, s->state_dir, &s->store, err, errlen) ||
        state_store_bind(w->store, s->input_topic, w->m->fingerprint, w->m->model_id, err, errlen) ||
        alloc_state(w, err, errlen))
        return -1;
    if (w->m->cfg.text_dim > 0) { /* text model: the catalogue and the events' texts (item_consumer.h) */
        item_consumer_opts io = {s->items_topic, s->text_encoder_dir, s->items_in, WORKER_KEYS, w->m};
        if (item_consumer_open(&w->items, &io, c, w->store, w->runner, w->runner_batch, err, errlen)) return -1;
    }
    w->started_s = clock_mono_s();
    if (s->series_file && !(w->series = fopen(s->series_file, "a"))) {
        snprintf(err, errlen, "stats.series.file %s: %s", s->series_file, strerror(errno));
        return -1;
    }
    if (s->metrics_listen) {
        if (!(w->snap = calloc(1, sizeof *w->snap))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (metrics_server_start(&w->metrics, s->metrics_listen, err, errlen)) return -1;
        LOG_I("worker", "metrics on %s (port %d): /metrics /healthz /readyz", s->metrics_listen,
              metrics_server_port(w->metrics));
        observe_publish(w, 1);
    }
    if (worker_io_open(w, c, rebalance_cb, err, errlen)) return -1;
    if (ensure_topics(w, err, errlen)) return -1;
    if (s->replay && replay_start(w, err, errlen)) return -1;
    if (w->items && item_consumer_catch_up(w->items, err, errlen)) return -1; /* the catalogue before any event */
    LOG_I("worker", "model %s (%s, D=%d, W=%d), state %s, %s -> %s (dead letters: %s, changelog: %s)%s",
          w->m->model_id, model_cell_name(w->m->cfg.cell), w->m->cfg.out_dim, w->m->cfg.window,
          s->state_dir, s->input_topic, s->output_topic, s->dlq_topic, s->changelog ? s->changelog_topic : "off",
          s->until_eof ? ", until EOF" : "");
    return 0;
}

static void free_worker(worker *w) {
    checkpoint_free(w->ck); /* its writer ends before the producer and the store go */
    readahead_free(w->ra);  /* its messages before their consumer */
    worker_io_close(w);
    state_batch_free(w->wb);
    state_cache_free(w->cache);
    metrics_server_stop(w->metrics);
    free(w->snap);
    if (w->series) fclose(w->series);
    item_consumer_close(w->items);
    state_store_close(w->store);
    model_runner_free(w->runner);
    model_free(w->m);
    partitions_free(&w->parts);
    batch_free(w);
}

/* librdkafka 2.0.2 aborts (rdkafka_sticky_assignor.c, "assignor_state" assertion; upstream
 * issues #4308/#4312, fixed in later releases) when a cooperative-sticky consumer is closed
 * before its first assignment. So a worker stopped that early first waits, bounded, for that
 * assignment (records it receives meanwhile are not applied: their offsets are not stored, the
 * next owner gets them); if none comes, it leaves the consumer to the session timeout instead of
 * closing it. Returns 1 when the consumer was closed. */
static int close_consumer_safely(worker *w) {
    int cooperative = strcmp(rd_kafka_rebalance_protocol(w->k.consumer), "COOPERATIVE") == 0 ||
                      strstr(w->k.assignment_strategy, "cooperative") != NULL;
    for (int waited_ms = 0; cooperative && !w->ever_assigned && waited_ms < 30000; waited_ms += 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->k.consumer, 100);
        if (m) rd_kafka_message_destroy(m);
    }
    if (cooperative && !w->ever_assigned) {
        LOG_W("worker", "no partition assignment yet: not closing the consumer (librdkafka 2.0.2 would abort); "
              "the group drops this member after session.timeout.ms");
        return 0;
    }
    rd_kafka_consumer_close(w->k.consumer);
    return 1;
}

/* A clean stop: make everything applied durable, commit, leave the group. */
static void stop(worker *w, char *err, size_t errlen) {
    if (!w->failed && checkpoint_now(w->ck, err, errlen)) worker_fail(w, "final checkpoint: %s", err);
    if (!w->failed && !w->s->store.wal && state_store_flush(w->store, err, errlen))
        worker_fail(w, "%s (the changelog holds what the store lost: the next start restores it)", err);
    if (w->ra) readahead_clear(w->ra); /* read ahead, not applied: the next owner fetches them */
    LOG_I("worker", "stopping: committing offsets and leaving the group");
    if (!w->failed) {
        rd_kafka_resp_err_t e = rd_kafka_commit(w->k.consumer, NULL, 0);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            LOG_W("worker", "final offset commit: %s (the state store holds the offsets)", rd_kafka_err2str(e));
    }
    if (!close_consumer_safely(w)) w->k.consumer = NULL; /* left to the session timeout */
    rd_kafka_flush(w->k.producer, 10000);
    if (w->k.cl_producer) rd_kafka_flush(w->k.cl_producer, 10000);
}

/* ---- the loop -------------------------------------------------------------------------- */

/* Fills msgs with up to max records (*n): waits at most timeout_ms for the first, then takes
 * what is already fetched. rd_kafka_consumer_poll, not rd_kafka_consume_batch_queue: the batch
 * API of librdkafka 2.0.2 intermittently skips offsets of a partition that is paused and
 * resumed, which every rebalance does (fixed upstream in 2.1.0; seen here as events lost in the
 * elastic test). Returns 0, or -1 with err. */
static int consume_batch(worker *w, rd_kafka_message_t **msgs, size_t max, int timeout_ms, size_t *n, char *err,
                         size_t errlen) {
    *n = 0;
    if (w->ra) { /* read ahead what is fetched, then a batch across the partitions (readahead.h) */
        size_t limit = (size_t)w->s->readahead_records;
        if (limit < max) limit = max;
        while (readahead_count(w->ra) < limit) {
            rd_kafka_message_t *m =
                rd_kafka_consumer_poll(w->k.consumer, readahead_count(w->ra) == 0 ? timeout_ms : 0);
            if (!m) break;
            if (readahead_push(w->ra, m)) {
                rd_kafka_message_destroy(m);
                snprintf(err, errlen, "read-ahead: out of memory");
                return -1;
            }
        }
        *n = readahead_take(w->ra, msgs, max);
        return 0;
    }
    while (*n < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->k.consumer, *n == 0 ? timeout_ms : 0);
        if (!m) break;
        msgs[(*n)++] = m;
    }
    return 0;
}

/* Moves a checkpoint in flight on, or starts one when commit.interval.ms has passed or the
 * cache is filling with dirty records. */
static int maybe_checkpoint(worker *w, char *err, size_t errlen) {
    if (checkpoint_in_flight(w->ck)) return checkpoint_progress(w->ck, err, errlen);
    if (clock_mono_s() - checkpoint_last_s(w->ck) < w->s->commit_interval_s &&
        state_cache_dirty_count(w->cache) < w->max_dirty)
        return 0;
    return checkpoint_begin(w->ck, err, errlen);
}

/* One turn: a batch applied, the catalogue's changes, a checkpoint's progress. */
static int turn(worker *w, double *t_first, char *err, size_t errlen) {
    const worker_settings *s = w->s;
    double t_poll = clock_mono_s();
    size_t n;
    if (consume_batch(w, w->b.msgs, (size_t)s->batch_max_events, s->batch_timeout_ms, &n, err, errlen)) return -1;
    double t_got = clock_mono_s();
    if (*t_first >= 0) w->stats->stage_s[STAGE_CONSUME] += t_got - t_poll; /* not the wait for the first record */
    if (n > 0 && *t_first < 0) *t_first = t_got;
    int rc = 0;
    if (n > 0) rc = batch_apply(w, w->b.msgs, n, err, errlen);
    else rd_kafka_poll(w->k.producer, 0); /* idle: the last outputs' delivery reports all the same */
    for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(w->b.msgs[i]);
    int64_t ckpt_before = w->stats->checkpoints;
    if (!rc && w->items) rc = item_consumer_poll(w->items, err, errlen); /* catalogue changes, between batches */
    if (!rc) rc = maybe_checkpoint(w, err, errlen);
    double took_ms = (clock_mono_s() - t_got) * 1e3;
    if (!rc && took_ms > s->slow_batch_ms)
        LOG_W("worker", "slow batch: %zu records in %.0f ms%s (applied %lld so far, cache %zu/%zu entries)", n,
              took_ms, w->stats->checkpoints > ckpt_before ? " including a checkpoint" : "",
              (long long)w->stats->applied, state_cache_size(w->cache), state_cache_capacity(w->cache));
    if (n > 0) w->stats->active_s = clock_mono_s() - *t_first;
    return rc;
}

int worker_run(const worker_settings *s, const config *c, worker_stats *stats, char *err, size_t errlen) {
    worker w = {.s = s, .stats = stats};
    memset(stats, 0, sizeof *stats);
    double t0 = clock_mono_s(), t_first = -1;
    worker_catch_signals();
    int rc = start(&w, c, err, errlen);
    while (!rc && !worker_stop_requested()) {
        if (turn(&w, &t_first, err, errlen)) {
            worker_fail(&w, "%s", err);
            break;
        }
        observe_publish(&w, 0);
        observe_series(&w, 0);
        if (s->until_eof && partitions_drained(&w.parts)) {
            LOG_I("worker", "every assigned partition is drained; stopping");
            break;
        }
        if (s->replay && replay_done(&w)) {
            LOG_I("replay", "every partition reached its end offset; stopping");
            break;
        }
    }
    if (!rc) {
        if (w.failed) checkpoint_abandon(w.ck);
        stop(&w, err, errlen);
        stats->active_s = t_first < 0 ? 0 : clock_mono_s() - t_first;
        observe_series(&w, 1);
    }
    if (w.failed) { /* the first fatal error is the reason, whatever failed after it */
        snprintf(err, errlen, "%s", w.fatal);
        rc = -1;
    }
    if (w.cache) {
        stats->cache_hits = state_cache_hits(w.cache);
        stats->cache_misses = state_cache_misses(w.cache);
        stats->cache_evictions = state_cache_evictions(w.cache);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    stats->wall_s = clock_mono_s() - t0;
    stats->cpu_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
    stats->cpu_sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    stats->max_rss_kb = ru.ru_maxrss;
    free_worker(&w);
    return rc;
}
