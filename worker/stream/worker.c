/* worker: start-up, the consume loop, rebalances and a clean stop. The per-batch work is in
 * apply.c; see worker.h for the guarantees.
 *
 * One thread runs everything the worker does (librdkafka and RocksDB keep their own background
 * threads). Rebalance callbacks run inside the consume call, so they always see a batch
 * boundary: every batch before them is fully applied and written.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "changelog.h"
#include "item_consumer.h"
#include "json.h"
#include "kafka_clients.h"
#include "replay_plan.h"
#include "log.h"
#include "worker_internal.h"
#include "worker_record.h"


const double WORKER_STEP_US_BOUNDS[STEP_US_BUCKETS - 1] = {10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000};

const char *const WORKER_STAGE_NAMES[STAGE_N] = {"consume", "decode", "state", "model", "encode", "produce",
                                                  "changelog"};

static volatile sig_atomic_t g_stop = 0;
void worker_request_stop(void) { g_stop = 1; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

part_state *worker_part(worker *w, int32_t partition) {
    if (partition < 0) return NULL;
    if (partition >= w->n_parts) {
        int n = w->n_parts ? w->n_parts : 16;
        while (n <= partition) n *= 2;
        part_state *np = realloc(w->parts, (size_t)n * sizeof *np);
        if (!np) return NULL;
        for (int i = w->n_parts; i < n; i++)
            np[i] = (part_state){.next = -1, .checkpointed = -1, .lag = -1, .end = -1, .start = -1};
        w->parts = np;
        w->n_parts = n;
    }
    return &w->parts[partition];
}

/* ---- rebalances ------------------------------------------------------------------------- */

typedef struct {
    worker *w;
    int32_t partition;
    int64_t rejected;
    char err[256];
} restore_ctx;

/* One changelog record into the restore's write batch (flushed every 4096 records). */
static int restore_record(void *vctx, const char *user, size_t user_len, const void *value, size_t len) {
    restore_ctx *x = vctx;
    worker *w = x->w;
    if (len < RECORD_MIN || len > w->record_size || user_len == 0 || user_len > CODEC_MAX_ID_BYTES ||
        model_state_check(w->m, record_blob_c(value), x->err, sizeof x->err)) {
        if (!x->rejected++)
            LOG_E("restore", "partition %d: changelog record of user '%.*s' does not fit this model (%zu bytes): %s",
                  x->partition, (int)(user_len > 64 ? 64 : user_len), user, len, x->err);
        return -1;
    }
    state_batch_put_state(w->wb, x->partition, user, user_len, value, len);   /* stored form, as written */
    w->restore_records_done++;
    if (state_batch_count(w->wb) >= 4096) {
        worker_publish_metrics(w, 0);
        if (state_store_write(w->store, w->wb, x->err, sizeof x->err)) return -1;
        state_batch_clear(w->wb);
    }
    return 0;
}

/* Brings partition p's local states up to the changelog when they are behind it. Returns the
 * next offset to apply (-1: unknown), or -2 on failure (logged). */
static int64_t sync_partition(worker *w, int32_t p) {
    char err[512];
    int64_t local = -1, marker = -1;
    if (state_store_get_offset(w->store, p, &local, err, sizeof err)) {
        LOG_E("worker", "partition %d: %s", p, err);
        return -2;
    }
    if (!w->changelog) return local;
    if (changelog_last_marker(w->changelog, p, &marker, err, sizeof err)) {
        LOG_E("restore", "partition %d: %s", p, err);
        return -2;
    }
    if (marker <= local) {
        if (marker < local)
            LOG_W("restore", "partition %d: local state (offset %lld) is ahead of the changelog (%lld); using it",
                  p, (long long)local, (long long)marker);
        return local;
    }
    /* Local is stale or absent: replace it with the changelog's view. Dropping the offset
     * first means a crash mid-restore leaves the partition "unknown", never half-current. */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    LOG_I("restore", "partition %d: local state at offset %lld, changelog at %lld: restoring from %s", p,
          (long long)local, (long long)marker, changelog_topic(w->changelog));
    restore_ctx x = {.w = w, .partition = p};
    w->restoring = 1;
    worker_publish_metrics(w, 1);
    int64_t records = 0, restored_marker = -1;
    state_batch_clear(w->wb);
    if (state_store_drop_partition(w->store, p, err, sizeof err) ||
        changelog_restore(w->changelog, p, restore_record, &x, &restored_marker, &records, err, sizeof err)) {
        LOG_E("restore", "partition %d: %s%s%s", p, err, x.err[0] ? ": " : "", x.err);
        state_batch_clear(w->wb);
        w->restoring = 0;
        return -2;
    }
    if (restored_marker >= 0) state_batch_put_offset(w->wb, p, restored_marker);
    if (state_store_write(w->store, w->wb, err, sizeof err)) {
        LOG_E("restore", "partition %d: %s", p, err);
        state_batch_clear(w->wb);
        w->restoring = 0;
        return -2;
    }
    state_batch_clear(w->wb);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    w->stats->restored_partitions++;
    w->stats->restored_records += records;
    w->stats->restore_s += secs;
    LOG_I("restore", "partition %d: restored %lld records in %.3f s; resuming at offset %lld", p, (long long)records,
          secs, (long long)restored_marker);
    w->restoring = 0;
    return restored_marker;
}

static void on_assign(worker *w, rd_kafka_topic_partition_list_t *list) {
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        part_state *p = worker_part(w, tp->partition);
        if (strcmp(tp->topic, w->s->input_topic) != 0 || !p) continue;
        int64_t next = sync_partition(w, tp->partition);
        if (next == -2) {
            /* Without a consistent starting point we must not process the partition. */
            LOG_E("worker", "partition %d cannot be brought up to date; stopping", tp->partition);
            worker_request_stop();
            next = -1;
        }
        state_cache_drop_partition(w->cache, tp->partition);   /* whatever it held is not current */
        if (w->ra) readahead_drop_partition(w->ra, tp->partition);   /* fetched for a former owner */
        p->owned = 1;
        p->eof = 0;
        p->touched = 0;
        p->next = next;
        p->checkpointed = next;
        if (next >= 0) {
            tp->offset = next;   /* resume exactly where the state stands, whatever Kafka committed */
            LOG_I("worker", "assigned %s [%d]: resuming at offset %lld", tp->topic, tp->partition, (long long)next);
        } else {
            tp->offset = RD_KAFKA_OFFSET_INVALID;   /* committed offset, else auto.offset.reset */
            LOG_I("worker", "assigned %s [%d]: no state yet; starting from the committed offset "
                  "(or auto.offset.reset)", tp->topic, tp->partition);
        }
        w->assigned++;
    }
}

static void on_revoke(worker *w, rd_kafka_topic_partition_list_t *list) {
    /* The next owner starts from the changelog: make everything applied so far durable first. */
    char err[512];
    if (w->failed) worker_checkpoint_abandon(w);   /* its writer reads the cache's keys: let it end first */
    if (!w->failed && worker_checkpoint(w, err, sizeof err)) {
        LOG_E("worker", "checkpoint on revocation: %s; stopping", err);
        w->failed = 1;
        worker_request_stop();
    }
    for (int i = 0; i < list->cnt; i++) {
        part_state *p = worker_part(w, list->elems[i].partition);
        if (p && p->owned) {
            p->owned = 0;
            p->eof = 0;
            w->assigned--;
        }
        if (p) {
            /* Not ours any more: forget what we held, so a later assignment starts clean. */
            state_cache_drop_partition(w->cache, list->elems[i].partition);
            if (w->ra) readahead_drop_partition(w->ra, list->elems[i].partition);
            p->next = p->checkpointed = -1;
        }
    }
    LOG_I("worker", "revoked %d partition(s); %d remain", list->cnt, w->assigned);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *list,
                         void *opaque) {
    worker *w = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    w->stats->rebalances++;
    LOG_I("worker", "rebalance (%s protocol): %s %d partition(s), %d owned before", rd_kafka_rebalance_protocol(rk),
          err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned" : "revoking", list->cnt, w->assigned);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        w->ever_assigned = 1;
        char cerr[512];   /* a restore below must not run beside a checkpoint still landing */
        if (!w->failed && worker_checkpoint_finish(w, cerr, sizeof cerr)) {
            LOG_E("worker", "checkpoint before assignment: %s; stopping", cerr);
            w->failed = 1;
            worker_request_stop();
        }
        if (w->failed) worker_checkpoint_abandon(w);
        on_assign(w, list);
        if (cooperative) e = rd_kafka_incremental_assign(rk, list);
        else re = rd_kafka_assign(rk, list);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            LOG_W("worker", "rebalance error: %s", rd_kafka_err2str(err));
        on_revoke(w, list);
        rd_kafka_commit(rk, NULL, 0);   /* what the checkpoint stored; the state store has it anyway */
        if (cooperative) e = rd_kafka_incremental_unassign(rk, list);
        else re = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        LOG_E("worker", "applying rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    if (re) LOG_E("worker", "applying rebalance: %s", rd_kafka_err2str(re));
}

/* ---- clients ---------------------------------------------------------------------------- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    worker *w = opaque;
    uintptr_t tag = (uintptr_t)m->_private;   /* produce_tag (worker_internal.h) */
    atomic_fetch_sub_explicit(&w->ck_pending[tag & 1u], 1, memory_order_relaxed);
    if (!m->err) {
        int64_t in_ts = (int64_t)(tag >> 2);   /* outputs carry their input's timestamp */
        if (in_ts > 0) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            int64_t ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - in_ts;
            w->stats->latency_ms[ms < 0 ? 0 : ms >= LATENCY_BUCKETS ? LATENCY_BUCKETS - 1 : ms]++;
            w->stats->latency_count++;
        }
        return;
    }
    if (!w->dr_failed++)
        snprintf(w->dr_first_error, sizeof w->dr_first_error, "%s [%d]: %s", rd_kafka_topic_name(m->rkt),
                 m->partition, rd_kafka_err2str(m->err));
}

/* The changelog producer's delivery reports: served by whichever thread flushes it (the
 * checkpoint writer, or the main thread in a foreground checkpoint), never two at once. */
static void cl_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    worker *w = opaque;
    if (m->err && atomic_fetch_add(&w->cl_failed, 1) == 0)
        snprintf(w->cl_first_error, sizeof w->cl_first_error, "%s [%d]: %s", rd_kafka_topic_name(m->rkt),
                 m->partition, rd_kafka_err2str(m->err));
}

/* librdkafka statistics (statistics.interval.ms): the consumer lag of each input partition. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk;
    worker *w = opaque;
    char err[128];
    json_value *root = json_parse(json, len, err, sizeof err);
    const json_value *topics = json_get(root, "topics");
    const json_value *parts = json_get(json_get(topics, w->s->input_topic), "partitions");
    for (size_t i = 0; parts && parts->type == JSON_OBJECT && i < parts->len; i++) {
        int64_t lag;
        int p = atoi(parts->keys[i]);
        part_state *ps = p >= 0 ? worker_part(w, p) : NULL;
        int64_t hi;
        if (!ps || json_get_int(parts->items[i], "consumer_lag", &lag)) continue;
        /* librdkafka knows no position for a partition the worker seeked itself and that has
         * received nothing since: the lag is then the high watermark minus the next offset. */
        if (lag < 0 && ps->owned && ps->next >= 0 && !json_get_int(parts->items[i], "hi_offset", &hi) && hi >= 0)
            lag = hi > ps->next ? hi - ps->next : 0;
        ps->lag = lag;
    }
    json_free(root);
    return 0;   /* librdkafka frees json */
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;
    LOG_W("kafka", "%s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err), reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof buf);
        LOG_E("kafka", "fatal client error: %s; stopping", buf);
        worker_request_stop();
    }
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    log_msg(level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG, "kafka",
            "%s: %s", fac, buf);
}

/* A producer with the worker's callbacks (what: names it in errors). NULL with err on failure. */
static rd_kafka_t *new_producer(worker *w, const config *c, const char *const *defaults,
                                void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *), const char *what,
                                char *err, size_t errlen) {
    char kerr[512];
    rd_kafka_conf_t *pc = kafka_conf_for(c, KAFKA_PRODUCER, defaults, WORKER_KEYS, err, errlen);
    if (!pc) return NULL;
    rd_kafka_conf_set_opaque(pc, w);
    rd_kafka_conf_set_dr_msg_cb(pc, dr);
    rd_kafka_conf_set_error_cb(pc, error_cb);
    rd_kafka_conf_set_log_cb(pc, log_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, kerr, sizeof kerr);
    if (!rk) {
        rd_kafka_conf_destroy(pc);
        snprintf(err, errlen, "%s: %s", what, kerr);
    }
    return rk;
}

/* The changelog producer is created on a thread at nice 10, so that librdkafka's threads for it
 * (which inherit it) serialize a checkpoint's records below the event loop's priority, like the
 * checkpoint writer (apply.c). Raising one's niceness needs no privilege. A small effect on the
 * local broker (1 M users, 55 k events/s, 16 partitions; three A/B pairs): p99 32-33 ms against
 * 33-36 ms. */
typedef struct {
    worker *w;
    const config *c;
    const char *const *defaults;
    rd_kafka_t *rk;
    char err[512];
} low_producer_args;

static void *low_producer_thread(void *arg) {
    low_producer_args *a = arg;
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10))
        LOG_D("worker", "changelog producer: setpriority: %s", strerror(errno));
    a->rk = new_producer(a->w, a->c, a->defaults, cl_dr_cb, "changelog producer", a->err, sizeof a->err);
    return NULL;
}

static rd_kafka_t *new_low_producer(worker *w, const config *c, const char *const *defaults, char *err, size_t errlen) {
    low_producer_args a = {w, c, defaults, NULL, {0}};
    pthread_t t;
    if (pthread_create(&t, NULL, low_producer_thread, &a)) {
        snprintf(err, errlen, "changelog producer: cannot start a thread");
        return NULL;
    }
    pthread_join(t, NULL);
    if (!a.rk) snprintf(err, errlen, "%s", a.err);
    return a.rk;
}

static int make_clients(worker *w, const config *c, char *err, size_t errlen) {
    const worker_settings *s = w->s;
    const char *consumer_defaults[] = {
        "group.id", "ievo",
        "enable.auto.commit", "true",
        "enable.auto.offset.store", "false",   /* offsets are stored after the state write */
        "auto.offset.reset", "earliest",
        "enable.partition.eof", s->until_eof ? "true" : "false",
        "queued.min.messages", "100000",
        "partition.assignment.strategy", "cooperative-sticky",   /* partitions that stay keep flowing */
        "statistics.interval.ms", s->metrics_listen ? "5000" : "0",   /* consumer lag for /metrics */
        NULL};
    const char *producer_defaults[] = {
        "enable.idempotence", "true",
        "acks", "all",
        "linger.ms", "5",
        "message.max.bytes", "33554432",       /* dead-letter copies of oversized records */
        "queue.buffering.max.messages", "1000000",
        NULL};
    /* The changelog's producer holds at most 4 MiB: a checkpoint's records (~100 MB at 1 M users)
     * then reach the broker at the pace it acknowledges them, not as one burst queued in front
     * of the outputs' produce requests and the input's fetches. On the local broker, 1 M users at
     * 55 k events/s, 16 partitions: p99 40-55 ms in four runs with librdkafka's default (1 GiB),
     * 40-44 ms in three with 4 MiB: a small effect, within this VM's noise. */
    const char *changelog_producer_defaults[] = {
        "enable.idempotence", "true",
        "acks", "all",
        "linger.ms", "5",
        "queue.buffering.max.kbytes", "4096",
        NULL};
    char kerr[512];
    if (!(w->producer = new_producer(w, c, producer_defaults, dr_cb, "producer", err, errlen))) return -1;
    w->out_topic = rd_kafka_topic_new(w->producer, s->output_topic, NULL);
    if (s->changelog) {
        if (!(w->cl_producer = new_low_producer(w, c, changelog_producer_defaults, err, errlen)))
            return -1;
        w->changelog_topic = rd_kafka_topic_new(w->cl_producer, s->changelog_topic, NULL);
        const char *reader_defaults[] = {"group.id", "ievo-changelog-reader", NULL};
        rd_kafka_conf_t *rc = kafka_conf_for(c, KAFKA_CONSUMER, reader_defaults, WORKER_KEYS, err, errlen);
        if (!rc) return -1;
        /* The reader never joins the group: a private group id, whatever the worker's is. */
        rd_kafka_conf_set(rc, "group.id", "ievo-changelog-reader", kerr, sizeof kerr);
        rd_kafka_conf_set(rc, "partition.assignment.strategy", "range,roundrobin", kerr, sizeof kerr);
        rd_kafka_conf_set_log_cb(rc, log_cb);
        if (changelog_open(&w->changelog, rc, s->changelog_topic, err, errlen)) return -1;
    }

    rd_kafka_conf_t *cc = kafka_conf_for(c, KAFKA_CONSUMER, consumer_defaults, WORKER_KEYS, err, errlen);
    if (!cc) return -1;
    size_t sn = sizeof w->assignment_strategy;
    if (rd_kafka_conf_get(cc, "partition.assignment.strategy", w->assignment_strategy, &sn) != RD_KAFKA_CONF_OK)
        w->assignment_strategy[0] = 0;
    rd_kafka_conf_set_opaque(cc, w);
    rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
    if (s->metrics_listen) rd_kafka_conf_set_stats_cb(cc, stats_cb);
    rd_kafka_conf_set_error_cb(cc, error_cb);
    rd_kafka_conf_set_log_cb(cc, log_cb);
    w->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, kerr, sizeof kerr);
    if (!w->consumer) {
        rd_kafka_conf_destroy(cc);
        snprintf(err, errlen, "consumer: %s", kerr);
        return -1;
    }
    rd_kafka_poll_set_consumer(w->consumer);
    if (s->replay) return 0;   /* a replay assigns its partitions itself (replay_start) */
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, s->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(w->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        snprintf(err, errlen, "subscribe to %s: %s", s->input_topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* ---- bounded replay --------------------------------------------------------------------- */

static int partition_count(rd_kafka_t *rk, const char *topic, int *count, char *err, size_t errlen);

static int env_watermarks(void *ctx, int32_t p, int64_t *lo, int64_t *hi, char *err, size_t errlen) {
    worker *w = ctx;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(w->consumer, w->s->input_topic, p, lo, hi, 10000);
    if (e) snprintf(err, errlen, "%s [%d]: watermarks: %s", w->s->input_topic, p, rd_kafka_err2str(e));
    return e ? -1 : 0;
}

static int env_offsets_for_times(void *ctx, int n, const int32_t *parts, int64_t ts, int64_t *out, char *err,
                                 size_t errlen) {
    worker *w = ctx;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, w->s->input_topic, parts[i])->offset = ts;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(w->consumer, l, 10000);
    for (int i = 0; !e && i < n; i++) out[i] = l->elems[i].err ? -1 : l->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(l);
    if (e) snprintf(err, errlen, "offsets for time %lld: %s", (long long)ts, rd_kafka_err2str(e));
    return e ? -1 : 0;
}

/* Resume point of a partition: the state dir, brought up to the changelog when that is ahead
 * (a replay whose state dir was lost resumes from its changelog). */
static int env_stored_offset(void *ctx, int32_t p, int64_t *next, char *err, size_t errlen) {
    worker *w = ctx;
    *next = sync_partition(w, p);
    if (*next == -2) {
        snprintf(err, errlen, "partition %d: cannot read its state (see above)", p);
        return -1;
    }
    return 0;
}

/* Plans the replay, assigns every partition at its start, records each end. */
static int replay_start(worker *w, char *err, size_t errlen) {
    int n = 0;
    if (partition_count(w->consumer, w->s->input_topic, &n, err, errlen)) return -1;
    replay_range *plan = calloc((size_t)n, sizeof *plan);
    if (!plan) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    replay_env env = {w, env_watermarks, env_offsets_for_times, env_stored_offset};
    int rc = replay_plan(&w->s->replay_spec, &env, n, plan, err, errlen);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    int64_t total = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        part_state *p = worker_part(w, i);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        *p = (part_state){.owned = 1, .next = plan[i].start, .checkpointed = plan[i].start, .lag = -1,
                          .end = plan[i].end, .start = plan[i].start};
        total += plan[i].end - plan[i].start;
        rd_kafka_topic_partition_list_add(l, w->s->input_topic, i)->offset = plan[i].start;
        LOG_I("replay", "%s [%d]: %s %lld .. %lld (%lld events)", w->s->input_topic, i,
              plan[i].resumed ? "resuming" : "from", (long long)plan[i].start, (long long)plan[i].end,
              (long long)(plan[i].end - plan[i].start));
    }
    if (rc == 0) {
        rd_kafka_resp_err_t e = rd_kafka_assign(w->consumer, l);
        if (e) {
            snprintf(err, errlen, "assign: %s", rd_kafka_err2str(e));
            rc = -1;
        } else {
            w->assigned = n;
            w->ever_assigned = 1;
            w->replay_total = total;
            LOG_I("replay", "%lld events to replay over %d partitions, up to the end offsets as of now", (long long)total, n);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    free(plan);
    return rc;
}

/* Every partition reached its captured end. Logs progress every few seconds. */
static int replay_done(worker *w) {
    int64_t done = 0;
    int finished = 1;
    for (int p = 0; p < w->n_parts; p++) {
        const part_state *ps = &w->parts[p];
        if (!ps->owned || ps->end < 0) continue;
        int64_t at = ps->next < 0 ? ps->start : ps->next;
        done += (at < ps->end ? at : ps->end) - ps->start;
        finished &= at >= ps->end;
    }
    double now = now_s();
    if (finished || now - w->replay_last_log_s >= 2.0) {
        double rate = w->stats->active_s > 0 ? (double)w->stats->applied / w->stats->active_s : 0;
        double left = w->replay_total - done;
        LOG_I("replay", "%lld / %lld events (%.1f %%), %.0f events/s, %s%.0f s left", (long long)done,
              (long long)w->replay_total, w->replay_total ? 100.0 * (double)done / (double)w->replay_total : 100.0,
              rate, rate > 0 ? "" : "~", rate > 0 ? left / rate : 0.0);
        w->replay_last_log_s = now;
    }
    return finished;
}

/* ---- observability ---------------------------------------------------------------------- */

void worker_publish_metrics(worker *w, int force) {
    if (!w->metrics) return;
    double now = now_s();
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
    for (int p = 0; p < w->n_parts && m->n_partitions < METRICS_MAX_PARTITIONS; p++) {
        const part_state *ps = &w->parts[p];
        if (!ps->owned && ps->next < 0) continue;
        m->partitions[m->n_partitions++] =
            (metrics_partition){.partition = p, .owned = ps->owned, .next_offset = ps->next, .lag = ps->lag};
    }
    m->published_at = now;
    metrics_publish(w->metrics, m);
    w->last_publish_s = now;
}

/* One JSON line of counters per stats.series.interval.ms (for `ievo report` and plots). */
static void write_series(worker *w, int force) {
    if (!w->series) return;
    double now = now_s();
    if (!force && now - w->last_series_s < w->s->series_interval_s) return;
    w->last_series_s = now;
    int64_t lag = 0;
    int known = 0, owned = 0;
    for (int p = 0; p < w->n_parts; p++) {
        if (!w->parts[p].owned) continue;
        owned++;
        if (w->parts[p].lag >= 0) {
            lag += w->parts[p].lag;
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

/* ---- start-up and shutdown ------------------------------------------------------------- */

static int partition_count(rd_kafka_t *rk, const char *topic, int *count, char *err, size_t errlen) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
    rd_kafka_topic_destroy(t);
    if (!e && md->topic_cnt == 1) e = md->topics[0].err;
    if (e) {
        snprintf(err, errlen, "metadata of topic %s: %s", topic, rd_kafka_err2str(e));
        if (md) rd_kafka_metadata_destroy(md);
        return -1;
    }
    *count = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return 0;
}

/* The changelog must have the input's partitions: partition p's states go to partition p. */
static int check_copartitioned(worker *w, char *err, size_t errlen) {
    int in = 0, cl = 0;
    if (partition_count(w->producer, w->s->input_topic, &in, err, errlen) ||
        partition_count(w->producer, w->s->changelog_topic, &cl, err, errlen))
        return -1;
    if (in != cl) {
        snprintf(err, errlen, "changelog topic %s has %d partitions, input topic %s has %d: they must match "
                 "(create the changelog with %d partitions, cleanup.policy=compact)", w->s->changelog_topic, cl,
                 w->s->input_topic, in, in);
        return -1;
    }
    return 0;
}

static int alloc_scratch(worker *w) {
    size_t B = (size_t)w->s->batch_max_events;
    int R = w->runner_batch;
    size_t D = (size_t)w->m->cfg.out_dim;
    if (w->s->readahead_records > 0 && !(w->ra = readahead_new(rd_kafka_message_destroy))) return -1;
    w->msgs = calloc(B, sizeof *w->msgs);
    w->rows = calloc(B, sizeof *w->rows);
    w->wave_order = calloc(B, sizeof *w->wave_order);
    w->wave_start = calloc(B + 1, sizeof *w->wave_start);
    w->step_states = calloc((size_t)R, sizeof *w->step_states);
    w->step_events = calloc((size_t)R, sizeof *w->step_events);
    w->step_vec = calloc((size_t)R * D, sizeof *w->step_vec);
    w->step_drift = calloc((size_t)R, sizeof *w->step_drift);
    w->enc_cap = (size_t)R * (1024 + D * 4);
    w->enc_buf = malloc(w->enc_cap);
    w->enc_len = calloc((size_t)R, sizeof *w->enc_len);
    if (w->s->top_k) {
        w->scores = malloc((size_t)32 * (size_t)w->m->cfg.n_items * sizeof *w->scores);
        w->top = calloc((size_t)R * (size_t)w->s->top_k, sizeof *w->top);
        w->n_top = calloc((size_t)R, sizeof *w->n_top);
        if (!w->scores || !w->top || !w->n_top) return -1;
    }
    w->wb = state_batch_new();
    size_t entries = w->s->cache_bytes / (w->record_size + 128);
    if (entries < 2 * B) entries = 2 * B;
    if (state_cache_new(&w->cache, entries, w->record_size)) return -1;
    w->max_dirty = entries / 2;
    if (!w->msgs || !w->rows || !w->wave_order || !w->wave_start || !w->step_states || !w->step_events ||
        !w->step_vec || !w->step_drift || !w->enc_buf || !w->enc_len || !w->wb)
        return -1;
    return user_table_init(&w->users, w->record_size, B);
}

static void free_worker(worker *w) {
    if (w->producer) worker_checkpoint_abandon(w);   /* before the producer and the store go */
    readahead_free(w->ra);   /* its messages before their consumer */
    if (w->consumer) rd_kafka_destroy(w->consumer);
    changelog_close(w->changelog);
    if (w->out_topic) rd_kafka_topic_destroy(w->out_topic);
    if (w->changelog_topic) rd_kafka_topic_destroy(w->changelog_topic);
    if (w->cl_producer) rd_kafka_destroy(w->cl_producer);
    if (w->producer) rd_kafka_destroy(w->producer);
    state_batch_free(w->wb);
    state_cache_free(w->cache);
    metrics_server_stop(w->metrics);
    free(w->snap);
    if (w->series) fclose(w->series);
    item_consumer_close(w->items);
    state_store_close(w->store);
    model_runner_free(w->runner);
    model_free(w->m);
    user_table_free(&w->users);
    free(w->parts);
    free(w->msgs);
    free(w->rows);
    free(w->wave_order);
    free(w->wave_start);
    free(w->step_states);
    free(w->step_events);
    free(w->step_vec);
    free(w->step_drift);
    free(w->enc_buf);
    free(w->enc_len);
    free(w->scores);
    free(w->top);
    free(w->n_top);
    free(w->get_parts);
    free(w->get_users);
    free(w->get_lens);
    free(w->get_bufs);
    free(w->get_found);
    free(w->get_slots);
    free(w->ckpt);
    free(w->ck_snap);
    free(w->ck_offsets);
    free(w->ck_markers);
    state_batch_free(w->ck_wb);
}

static int drained(const worker *w) {
    if (w->assigned == 0) return 0;
    for (int p = 0; p < w->n_parts; p++)
        if (w->parts[p].owned && !w->parts[p].eof) return 0;
    return 1;
}

/* librdkafka 2.0.2 aborts (rdkafka_sticky_assignor.c, "assignor_state" assertion; upstream
 * issues #4308/#4312, fixed in later releases) when a cooperative-sticky consumer is closed
 * before its first assignment. So a worker stopped that early first waits, bounded, for that
 * assignment (records it receives meanwhile are not applied: their offsets are not stored, the
 * next owner gets them); if none comes, it leaves the consumer to the session timeout instead of
 * closing it. Returns 1 when the consumer was closed. */
static int close_consumer_safely(worker *w) {
    int cooperative = strcmp(rd_kafka_rebalance_protocol(w->consumer), "COOPERATIVE") == 0 ||
                      strstr(w->assignment_strategy, "cooperative") != NULL;
    for (int waited_ms = 0; cooperative && !w->ever_assigned && waited_ms < 30000; waited_ms += 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, 100);
        if (m) rd_kafka_message_destroy(m);
    }
    if (cooperative && !w->ever_assigned) {
        LOG_W("worker", "no partition assignment yet: not closing the consumer (librdkafka 2.0.2 would abort); "
              "the group drops this member after session.timeout.ms");
        return 0;
    }
    rd_kafka_consumer_close(w->consumer);
    return 1;
}

/* Fills msgs with up to max records: waits at most timeout_ms for the first, then takes what is
 * already fetched. rd_kafka_consumer_poll, not rd_kafka_consume_batch_queue: the batch API of
 * librdkafka 2.0.2 intermittently skips offsets of a partition that is paused and resumed, which
 * every rebalance does (fixed upstream in 2.1.0; seen here as events lost in the elastic test). */
static ssize_t consume_batch(worker *w, rd_kafka_message_t **msgs, size_t max, int timeout_ms) {
    if (w->ra) {   /* read ahead what is fetched, then a batch across the partitions (readahead.h) */
        size_t limit = (size_t)w->s->readahead_records;
        if (limit < max) limit = max;
        while (readahead_count(w->ra) < limit) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, readahead_count(w->ra) == 0 ? timeout_ms : 0);
            if (!m) break;
            if (readahead_push(w->ra, m)) {   /* fatal, as any allocation failure in a batch */
                rd_kafka_message_destroy(m);
                return -2;
            }
        }
        return (ssize_t)readahead_take(w->ra, msgs, max);
    }
    size_t n = 0;
    while (n < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, n == 0 ? timeout_ms : 0);
        if (!m) break;
        msgs[n++] = m;
    }
    return (ssize_t)n;
}

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

int worker_run(const worker_settings *s, const config *c, worker_stats *stats, char *err, size_t errlen) {
    worker w = {0};
    w.s = s;
    w.stats = stats;
    memset(stats, 0, sizeof *stats);
    int rc = -1;
    double t0 = now_s(), t_first = -1;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    model_runtime_init(1);
    if (model_load(&w.m, s->model_path, err, errlen)) goto out;
    w.runner_batch = s->batch_max_events < 256 ? s->batch_max_events : 256;
    if (model_runner_new(&w.runner, w.m, s->backend, w.runner_batch, err, errlen)) goto out;
    if (s->top_k && !(model_heads(w.m) & MODEL_HEAD_SCORE)) {
        snprintf(err, errlen, "output.top.k=%d needs a model with a scoring head (train one with `ievo train`)",
                 s->top_k);
        goto out;
    }
    w.state_size = model_state_size(w.m);
    w.record_size = RECORD_HEADER + w.state_size;
    w.last_checkpoint_s = now_s();
    if (state_store_open(&w.store, s->state_dir, &s->store, err, errlen)) goto out;
    if (state_store_bind(w.store, s->input_topic, w.m->fingerprint, w.m->model_id, err, errlen)) goto out;
    if (alloc_scratch(&w)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (w.m->cfg.text_dim > 0) { /* text model: the catalogue and the events' texts (item_consumer.h) */
        item_consumer_opts io = {s->items_topic, s->text_encoder_dir, s->items_in, WORKER_KEYS, w.m};
        if (item_consumer_open(&w.items, &io, c, w.store, w.runner, w.runner_batch, err, errlen)) goto out;
    }
    w.started_s = now_s();
    if (s->series_file && !(w.series = fopen(s->series_file, "a"))) {
        snprintf(err, errlen, "stats.series.file %s: %s", s->series_file, strerror(errno));
        goto out;
    }
    if (s->metrics_listen) {
        if (!(w.snap = calloc(1, sizeof *w.snap))) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        if (metrics_server_start(&w.metrics, s->metrics_listen, err, errlen)) goto out;
        LOG_I("worker", "metrics on %s (port %d): /metrics /healthz /readyz", s->metrics_listen,
              metrics_server_port(w.metrics));
        worker_publish_metrics(&w, 1);
    }
    if (make_clients(&w, c, err, errlen)) goto out;
    if (s->changelog && check_copartitioned(&w, err, errlen)) goto out;
    if (s->replay && replay_start(&w, err, errlen)) goto out;
    if (w.items && item_consumer_catch_up(w.items, err, errlen)) goto out; /* the catalogue before any event */
    LOG_I("worker", "model %s (%s, D=%d, W=%d), state %s, %s -> %s (dead letters: %s, changelog: %s)%s",
          w.m->model_id, w.m->cfg.cell == MODEL_CELL_LSTM ? "lstm" : "gru", w.m->cfg.out_dim, w.m->cfg.window,
          s->state_dir, s->input_topic, s->output_topic, s->dlq_topic, s->changelog ? s->changelog_topic : "off",
          s->until_eof ? ", until EOF" : "");

    rc = 0;
    double t_poll = now_s();
    while (!g_stop) {
        ssize_t n = consume_batch(&w, w.msgs, (size_t)s->batch_max_events, s->batch_timeout_ms);
        if (n == -2) {
            LOG_E("worker", "read-ahead: out of memory");
            snprintf(err, errlen, "read-ahead: out of memory");
            w.failed = 1;
            rc = -1;
            break;
        }
        if (n < 0) {
            LOG_W("worker", "consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
            t_poll = now_s();
            continue;
        }
        double t_got = now_s();
        if (t_first >= 0) stats->stage_s[STAGE_CONSUME] += t_got - t_poll;   /* not the wait for the first record */
        if (n > 0 && t_first < 0) t_first = t_got;
        int brc = 0;
        if (n > 0) brc = apply_batch(&w, w.msgs, (size_t)n, err, errlen);
        else rd_kafka_poll(w.producer, 0);   /* idle: the last outputs' delivery reports all the same */
        for (ssize_t i = 0; i < n; i++) rd_kafka_message_destroy(w.msgs[i]);
        int64_t ckpt_before = stats->checkpoints;
        if (!brc && w.items) brc = item_consumer_poll(w.items, err, errlen); /* catalogue changes, between batches */
        if (!brc) brc = worker_maybe_checkpoint(&w, err, errlen);
        double took_ms = (now_s() - t_got) * 1e3;
        if (!brc && took_ms > s->slow_batch_ms)
            LOG_W("worker", "slow batch: %zd records in %.0f ms%s (applied %lld so far, cache %zu/%zu entries)", n,
                  took_ms, stats->checkpoints > ckpt_before ? " including a checkpoint" : "",
                  (long long)stats->applied, state_cache_size(w.cache), state_cache_capacity(w.cache));
        if (n > 0) stats->active_s = now_s() - t_first;
        if (brc) {
            LOG_E("worker", "%s", err);
            w.failed = 1;
            rc = -1;
            break;
        }
        worker_publish_metrics(&w, 0);
        write_series(&w, 0);
        if (s->until_eof && drained(&w)) {
            LOG_I("worker", "every assigned partition is drained; stopping");
            break;
        }
        if (s->replay && replay_done(&w)) {
            LOG_I("replay", "every partition reached its end offset; stopping");
            break;
        }
        t_poll = now_s();
    }

    /* Clean stop: make everything applied durable, commit, leave the group, close. */
    if (rc == 0 && !w.failed && worker_checkpoint(&w, err, errlen)) {
        LOG_E("worker", "final checkpoint: %s", err);
        w.failed = 1;
        rc = -1;
    }
    stats->active_s = t_first < 0 ? 0 : now_s() - t_first;
    write_series(&w, 1);
    if (w.ra) readahead_clear(w.ra);   /* read ahead, not applied: the next owner fetches them */
    LOG_I("worker", "stopping: committing offsets and leaving the group");
    if (rc == 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(w.consumer, NULL, 0);
        if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
            LOG_W("worker", "final offset commit: %s (the state store holds the offsets)", rd_kafka_err2str(e));
    }
    if (!close_consumer_safely(&w)) {
        /* See close_consumer_safely: the consumer is left to the session timeout. */
        w.consumer = NULL;
    }
    rd_kafka_flush(w.producer, 10000);
    if (w.cl_producer) rd_kafka_flush(w.cl_producer, 10000);

out:
    if (rc && !err[0]) snprintf(err, errlen, "worker failed");
    if (w.cache) {
        stats->cache_hits = state_cache_hits(w.cache);
        stats->cache_misses = state_cache_misses(w.cache);
        stats->cache_evictions = state_cache_evictions(w.cache);
    }
    {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        stats->wall_s = now_s() - t0;
        stats->cpu_user_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6;
        stats->cpu_sys_s = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
        stats->max_rss_kb = ru.ru_maxrss;
    }
    free_worker(&w);
    return rc;
}
