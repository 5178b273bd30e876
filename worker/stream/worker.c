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
#include "schemas.h"
#include "stop_signal.h"
#include "worker_internal.h"
#include "worker_record.h"

/* ---- start-up and shutdown ------------------------------------------------------------- */

/* A worker on an empty input topic applies nothing and, with --until-eof, stops at once: say so,
 * since a misspelled topic name looks the same (brokers that auto-create topics create it). */
static void warn_if_input_empty(worker *w, int partitions) {
    for (int p = 0; p < partitions; p++) {
        int64_t lo, hi;
        if (kafka_watermarks(w->k.consumer, w->s->input_topic, p, &lo, &hi, 10000) || hi > 0) return;
    }
    LOG_WF("worker", LOG_AT(LF_TOPIC(w->s->input_topic), LF_COUNT(0)),
           "input topic %s holds no records in any of its %d partitions: nothing to apply yet (if the name is "
           "misspelled, a broker that auto-creates topics has just created it)", w->s->input_topic, partitions);
}

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
    warn_if_input_empty(w, in);
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

/* The readers of the input and the catalogue, and the output's schema id: with a schema registry,
 * interest_vector.avsc registered (or looked up) under the output topic's subject before anything
 * is consumed; without one, the fixed ids. The dead-letter topic needs no schema of its own: its
 * records are the input's, byte for byte, still framed with their writers' ids. */
static int open_schemas(worker *w, char *err, size_t errlen) {
    const worker_settings *s = w->s;
    w->out = s->out;
    if (s->registry.n_urls &&
        (registry_new(&s->registry, &w->reg, err, errlen) ||
         serde_out_id(w->reg, &s->registry, s->output_topic, ievo_schema_interest_vector_json, worker_stop_requested,
                      &w->out.schema_id, err, errlen)))
        return -1;
    serde_in_opts in = {w->reg, &s->registry, s->in, SERDE_USER_ACTION, worker_stop_requested};
    serde_in_opts items = {w->reg, &s->registry, s->items_in, SERDE_ITEM, worker_stop_requested};
    return serde_in_new(&in, &w->in, err, errlen) || serde_in_new(&items, &w->items_in, err, errlen) ? -1 : 0;
}

/* Between the steps of start-up that wait on the cluster: a signal ends start-up there. */
static int stopped_starting(char *err, size_t errlen) {
    if (!worker_stop_signalled()) return 0;
    snprintf(err, errlen, "stopped by %s during start-up", stop_signal_name(stop_signal_received()));
    return 1;
}

/* Schemas, model, store, scratch, text catalogue, metrics and series, then the Kafka clients. */
static int start(worker *w, const config *c, char *err, size_t errlen) {
    const worker_settings *s = w->s;
    if (open_schemas(w, err, errlen)) return -1;
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
        item_consumer_opts io = {s->items_topic, s->text_encoder_dir, w->items_in, WORKER_KEYS, w->m,
                                 s->items_pending_bytes};
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
        LOG_I("worker", "metrics on %s (port %d): /metrics /healthz /readyz", metrics_server_address(w->metrics),
              metrics_server_port(w->metrics));
        observe_publish(w, 1);
    }
    if (stopped_starting(err, errlen) || worker_io_open(w, c, rebalance_cb, err, errlen) ||
        stopped_starting(err, errlen) || ensure_topics(w, err, errlen) || stopped_starting(err, errlen) ||
        (s->replay && replay_start(w, err, errlen)) || stopped_starting(err, errlen))
        return -1;
    if (w->items && item_consumer_catch_up(w->items, err, errlen)) return -1; /* the catalogue before any event */
    if (stopped_starting(err, errlen)) return -1;
    char family[32];
    model_family_name(&w->m->cfg, family, sizeof family);
    LOG_I("worker", "model %s (%s, D=%d, W=%d), state %s, %s -> %s (dead letters: %s, changelog: %s)%s",
          w->m->model_id, family, w->m->cfg.out_dim, w->m->cfg.window,
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
    if (w->reg && w->in) {
        serde_in_stats st;
        int64_t requests, hits;
        serde_in_stats_get(w->in, &st);
        registry_counts(w->reg, &requests, &hits);
        LOG_I("worker", "schema registry: %lld requests; input writer schema ids met: %lld (%lld our layout, %lld "
              "resolved, %lld incompatible, %lld unknown)", (long long)requests, (long long)st.ids, (long long)st.same,
              (long long)st.resolved, (long long)st.incompatible, (long long)st.unknown);
    }
    serde_in_free(w->in);
    serde_in_free(w->items_in);
    registry_free(w->reg);
}

/* Leaves the group, waiting at most until deadline; not a consumer that librdkafka 2.0.2 cannot
 * close yet (worker_io_consumer_unassigned_cooperative). Returns 1 when the consumer was closed. */
static int leave_group(worker *w, double deadline) {
    if (worker_io_consumer_unassigned_cooperative(w)) {
        LOG_I("worker", "no partition assignment yet: leaving the group to its session timeout");
        return 0;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->k.consumer);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(w->k.consumer, q);
    if (e) {
        LOG_W("worker", "leaving the group: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else {
        while (!rd_kafka_consumer_closed(w->k.consumer) && clock_mono_s() < deadline)
            rd_kafka_queue_poll_callback(q, 100); /* the revocation's callback runs here */
    }
    int closed = !e && rd_kafka_consumer_closed(w->k.consumer);
    if (!e && !closed)
        LOG_W("worker", "leaving the group did not finish within stop.timeout.ms; the group drops this member after "
              "session.timeout.ms");
    rd_kafka_queue_destroy(q);
    return closed;
}

/* A clean stop, within stop.timeout.ms: make everything applied durable, commit, leave the
 * group. Past the deadline it gives up (exit 1): what was applied since the last checkpoint is
 * applied again at the next start. */
static void stop(worker *w, char *err, size_t errlen) {
    worker_request_stop(); /* a stop the loop decided on (drained, replay done) counts too */
    double deadline = worker_stop_deadline(w);
    if (!w->failed && checkpoint_now(w->ck, err, errlen)) worker_fail(w, "final checkpoint: %s", err);
    if (!w->failed && !w->s->store.wal && state_store_flush(w->store, err, errlen))
        worker_fail(w, "%s (the changelog holds what the store lost: the next start restores it)", err);
    if (w->ra) readahead_clear(w->ra); /* read ahead, not applied: the next owner fetches them */
    dlq_log_summary(w);
    LOG_I("worker", "stopping: committing offsets and leaving the group");
    if (!w->failed) rd_kafka_commit(w->k.consumer, NULL, 1); /* the state store holds the offsets anyway */
    w->k.consumer_closed = leave_group(w, deadline);
    int left_ms = (int)((deadline - clock_mono_s()) * 1e3);
    rd_kafka_flush(w->k.producer, left_ms > 0 ? left_ms : 0);
    if (w->k.cl_producer) rd_kafka_flush(w->k.cl_producer, left_ms > 0 ? left_ms : 0);
}

/* The bytes the process made the storage layer read and write (/proc/self/io: RocksDB's files
 * and logs; not the network). -1 when the kernel does not say. */
static void read_io_counters(worker_stats *st) {
    st->io_read_bytes = st->io_write_bytes = -1;
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return;
    char line[128];
    long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "read_bytes: %lld", &v) == 1) st->io_read_bytes = v;
        if (sscanf(line, "write_bytes: %lld", &v) == 1) st->io_write_bytes = v;
    }
    fclose(f);
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
        while (readahead_count(w->ra) < limit && readahead_bytes(w->ra) < w->s->readahead_bytes) {
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
        LOG_WF("worker", LOG_AT(LF_COUNT(n), LF_DURATION_MS(took_ms)),
               "slow batch: %zu records in %.0f ms%s (applied %lld so far, cache %zu/%zu entries)", n,
              took_ms, w->stats->checkpoints > ckpt_before ? " including a checkpoint" : "",
              (long long)w->stats->applied, state_cache_size(w->cache), state_cache_capacity(w->cache));
    if (n > 0) w->stats->active_s = clock_mono_s() - *t_first;
    return rc;
}

/* Every 5 s until the first assignment: what the worker waits for, and why it may take long. */
static void say_waiting(worker *w, double t0, double *last) {
    double now = clock_mono_s();
    if (w->ever_assigned || now - *last < 5.0) return;
    *last = now;
    LOG_IF("worker", LOG_AT(LF_TOPIC(w->s->input_topic), LF_DURATION_MS((now - t0) * 1e3)),
           "waiting for group %s to assign partitions of %s (%.0f s so far)%s", w->s->group_id,
          w->s->input_topic, now - t0,
          w->k.session_timeout_ms > 10000 ? "; the local development broker holds each join for session.timeout.ms "
                                             "minus 1 s: with it, set session.timeout.ms=6000"
                                           : "");
}

int worker_run(const worker_settings *s, const config *c, worker_stats *stats, char *err, size_t errlen) {
    worker w = {.s = s, .stats = stats};
    memset(stats, 0, sizeof *stats);
    double t0 = clock_mono_s(), t_first = -1, waiting_said = t0;
    worker_catch_signals();
    int started = start(&w, c, err, errlen) == 0, replay_finished = 0;
    if (!started && worker_stop_signalled()) LOG_I(s->replay ? "replay" : "worker", "%s: nothing was applied", err);
    else if (!started) worker_fail(&w, "%s", err); /* the cause, logged before any summary */
    while (started && !worker_stop_requested()) {
        if (turn(&w, &t_first, err, errlen)) {
            worker_fail(&w, "%s", err);
            break;
        }
        say_waiting(&w, t0, &waiting_said);
        observe_publish(&w, 0);
        observe_series(&w, 0);
        if (s->until_eof && partitions_drained(&w.parts)) {
            LOG_I("worker", "every assigned partition is drained; stopping");
            break;
        }
        if (s->replay && (replay_finished = replay_done(&w))) {
            LOG_I("replay", "every partition reached its end offset; stopping");
            break;
        }
    }
    if (started) {
        if (w.failed) checkpoint_abandon(w.ck);
        stop(&w, err, errlen);
        stats->active_s = t_first < 0 ? 0 : clock_mono_s() - t_first;
        observe_series(&w, 1);
    }
    /* A replay that did not reach its ends is not done, however cleanly it stopped: a script
     * that switches over after it must not read its exit as success. */
    if (s->replay && !w.failed && !replay_finished)
        worker_fail(&w, "the replay stopped (%s) before reaching the end offsets it captured; run it again with the "
                    "same state.dir to continue", stop_signal_name(stop_signal_received()));
    int rc = 0;
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
    free_worker(&w); /* closing the store writes what it still holds */
    read_io_counters(stats);
    return rc;
}
