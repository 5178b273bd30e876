/* worker_io: the worker's Kafka clients (consumer, output producer, changelog producer and
 * reader), their callbacks, and the checkpoint's I/O over them and the state store.
 *
 * Delivery reports of outputs and dead letters are served by the main thread (rd_kafka_poll);
 * those of the changelog by whichever thread flushes its producer (the checkpoint's writer),
 * never two at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "changelog.h"
#include "clock.h"
#include "kafka_clients.h"
#include "log.h"
#include "worker_internal.h"

/* ---- callbacks ------------------------------------------------------------------------- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    worker *w = opaque;
    int64_t in_ts = checkpoint_output_done(w->ck, m->_private); /* outputs carry their input's timestamp */
    if (!m->err) {
        if (in_ts > 0) {
            int64_t ms = clock_wall_ms() - in_ts;
            w->stats->latency_ms[ms < 0 ? 0 : ms >= LATENCY_BUCKETS ? LATENCY_BUCKETS - 1 : ms]++;
            w->stats->latency_count++;
        }
        return;
    }
    if (!w->k.dr_failed++)
        snprintf(w->k.dr_first_error, sizeof w->k.dr_first_error, "%s [%d]: %s", rd_kafka_topic_name(m->rkt),
                 m->partition, rd_kafka_err2str(m->err));
}

static void cl_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    worker *w = opaque;
    /* a marker's position; per partition the reports come in produce order */
    if (!m->err && m->key_len == 0 && m->partition >= 0 && m->partition < w->k.cl_partitions && m->offset >= 0)
        w->k.cl_position[m->partition] = m->offset + 1;
    if (m->err && atomic_fetch_add(&w->k.cl_failed, 1) == 0)
        snprintf(w->k.cl_first_error, sizeof w->k.cl_first_error, "%s [%d]: %s", rd_kafka_topic_name(m->rkt),
                 m->partition, rd_kafka_err2str(m->err));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    worker *w = opaque;
    LOG_WF("kafka", LOG_AT(LF_ERROR(rd_kafka_err2name(err))), "%s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name(err),
           reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof buf);
        worker_fail(w, "fatal client error: %s", buf);
    }
}

/* ---- clients ---------------------------------------------------------------------------- */

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
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, pc, kerr, sizeof kerr);
    if (!rk) {
        rd_kafka_conf_destroy(pc);
        snprintf(err, errlen, "%s: %s", what, kerr);
    }
    return rk;
}

/* The changelog producer is created on a thread at nice 10, so that librdkafka's threads for it
 * (which inherit it) serialize a checkpoint's records below the event loop's priority, like the
 * checkpoint's writer. Raising one's niceness needs no privilege. */
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

static int open_changelog(worker *w, const config *c, char *err, size_t errlen) {
    /* The changelog's producer holds at most 4 MiB: a checkpoint's records (~100 MB at 1 M
     * users) then reach the broker at the pace it acknowledges them, not as one burst queued in
     * front of the outputs' produce requests and the input's fetches. */
    const char *producer_defaults[] = {
        "enable.idempotence", "true",
        "acks", "all",
        "linger.ms", "5",
        "queue.buffering.max.kbytes", "4096",
        NULL};
    if (!(w->k.cl_producer = new_low_producer(w, c, producer_defaults, err, errlen))) return -1;
    w->k.changelog_topic = rd_kafka_topic_new(w->k.cl_producer, w->s->changelog_topic, NULL);
    char kerr[512];
    const char *reader_defaults[] = {"group.id", "ievo-changelog-reader", NULL};
    rd_kafka_conf_t *rc = kafka_conf_for(c, KAFKA_CONSUMER, reader_defaults, WORKER_KEYS, err, errlen);
    if (!rc) return -1;
    /* The reader never joins the group: a private group id, whatever the worker's is. */
    rd_kafka_conf_set(rc, "group.id", "ievo-changelog-reader", kerr, sizeof kerr);
    rd_kafka_conf_set(rc, "partition.assignment.strategy", "range,roundrobin", kerr, sizeof kerr);
    return changelog_open(&w->k.changelog, rc, w->s->changelog_topic, err, errlen);
}

static int open_consumer(worker *w, const config *c,
                         void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t *, void *),
                         char *err, size_t errlen) {
    const worker_settings *s = w->s;
    /* With a memory budget, what librdkafka prefetches gets its share (settings: memory.limit.bytes). */
    char prefetch_kb[24], fetch_bytes[24];
    snprintf(prefetch_kb, sizeof prefetch_kb, "%zu", s->memory_limit / 16 / 1024 > 1024 ? s->memory_limit / 16 / 1024 : 1024);
    snprintf(fetch_bytes, sizeof fetch_bytes, "%zu", s->memory_limit / 32 > (2u << 20) ? s->memory_limit / 32 : (2u << 20));
    const char *defaults[] = {
        "group.id", "ievo",
        "enable.auto.commit", "true",
        "enable.auto.offset.store", "false",   /* offsets are stored after the state write */
        "auto.offset.reset", "earliest",
        "enable.partition.eof", s->until_eof ? "true" : "false",
        "queued.min.messages", "100000",
        "partition.assignment.strategy", "cooperative-sticky",   /* partitions that stay keep flowing */
        s->memory_limit ? "queued.max.messages.kbytes" : NULL, prefetch_kb, /* no budget: the list ends here */
        "fetch.max.bytes", fetch_bytes,
        NULL};
    char kerr[512];
    rd_kafka_conf_t *cc = kafka_conf_for(c, KAFKA_CONSUMER, defaults, WORKER_KEYS, err, errlen);
    if (!cc) return -1;
    size_t sn = sizeof w->k.assignment_strategy;
    if (rd_kafka_conf_get(cc, "partition.assignment.strategy", w->k.assignment_strategy, &sn) != RD_KAFKA_CONF_OK)
        w->k.assignment_strategy[0] = 0;
    char sto[32];
    sn = sizeof sto;
    w->k.session_timeout_ms = rd_kafka_conf_get(cc, "session.timeout.ms", sto, &sn) == RD_KAFKA_CONF_OK ? atoi(sto) : 0;
    rd_kafka_conf_set_opaque(cc, w);
    rd_kafka_conf_set_rebalance_cb(cc, rebalance);
    rd_kafka_conf_set_error_cb(cc, error_cb);
    w->k.consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, kerr, sizeof kerr);
    if (!w->k.consumer) {
        rd_kafka_conf_destroy(cc);
        snprintf(err, errlen, "consumer: %s", kerr);
        return -1;
    }
    rd_kafka_poll_set_consumer(w->k.consumer);
    if (s->replay) return 0; /* a replay assigns its partitions itself (replay_start) */
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, s->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(w->k.consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) {
        snprintf(err, errlen, "subscribe to %s: %s", s->input_topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int worker_io_open(worker *w, const config *c,
                   void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t *, void *),
                   char *err, size_t errlen) {
    /* With a memory budget, the queue of outputs and dead letters gets its share, but always room
     * for two of the largest dead letters (settings: memory.limit.bytes). */
    const size_t max_message = 33554432;
    size_t queue = w->s->memory_limit / 16 > 2 * max_message ? w->s->memory_limit / 16 : 2 * max_message;
    char queue_kb[24];
    snprintf(queue_kb, sizeof queue_kb, "%zu", queue / 1024);
    const char *producer_defaults[] = {
        "enable.idempotence", "true",
        "acks", "all",
        "linger.ms", "5",
        "message.max.bytes", "33554432",       /* dead-letter copies of oversized records */
        "queue.buffering.max.messages", "1000000",
        w->s->memory_limit ? "queue.buffering.max.kbytes" : NULL, queue_kb,
        NULL};
    if (!(w->k.producer = new_producer(w, c, producer_defaults, dr_cb, "producer", err, errlen))) return -1;
    w->k.out_topic = rd_kafka_topic_new(w->k.producer, w->s->output_topic, NULL);
    if (w->s->changelog && open_changelog(w, c, err, errlen)) return -1;
    return open_consumer(w, c, rebalance, err, errlen);
}

int worker_io_track_changelog(worker *w, int partitions, char *err, size_t errlen) {
    int64_t *p = malloc((size_t)(partitions > 0 ? partitions : 1) * sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < partitions; i++) p[i] = -1;
    free(w->k.cl_position);
    w->k.cl_position = p;
    w->k.cl_partitions = partitions;
    return 0;
}

int worker_io_consumer_unassigned_cooperative(const worker *w) {
    return w->k.consumer && !w->ever_assigned &&
           (strcmp(rd_kafka_rebalance_protocol(w->k.consumer), "COOPERATIVE") == 0 ||
            strstr(w->k.assignment_strategy, "cooperative") != NULL);
}

void worker_io_close(worker *w) {
    free(w->k.cl_position);
    if (w->stop_deadline > 0 && clock_mono_s() > w->stop_deadline) {
        /* A stop that gave up on the broker: librdkafka's destroys can wait for it too (threads
         * joined, requests in flight), and the process is about to exit: its end closes them. */
        LOG_I("worker", "stop.timeout.ms passed: the Kafka clients are left to the process's exit");
        return;
    }
    if (worker_io_consumer_unassigned_cooperative(w)) {
        LOG_I("worker", "the consumer never had an assignment: left to the process's exit (librdkafka 2.0.2 cannot "
              "destroy it yet)");
        w->k.consumer = NULL;
    }
    /* not closed (out of time): no close in destroy either */
    if (w->k.consumer) rd_kafka_destroy_flags(w->k.consumer, w->k.consumer_closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    changelog_close(w->k.changelog);
    if (w->k.out_topic) rd_kafka_topic_destroy(w->k.out_topic);
    if (w->k.changelog_topic) rd_kafka_topic_destroy(w->k.changelog_topic);
    if (w->k.cl_producer) rd_kafka_destroy(w->k.cl_producer);
    if (w->k.producer) rd_kafka_destroy(w->k.producer);
}

/* Produces through rk (flags: RD_KAFKA_MSG_F_COPY or 0), waiting out a full local queue. */
static int produce(rd_kafka_t *rk, rd_kafka_topic_t *topic, int32_t partition, int flags, const void *val, size_t len,
                   const void *key, size_t key_len, void *opaque, char *err, size_t errlen) {
    for (;;) {
        if (rd_kafka_produce(topic, partition, flags, (void *)val, len, key, key_len, opaque) == 0) return 0;
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(err, errlen, "produce to %s: %s", rd_kafka_topic_name(topic), rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(rk, 10);
    }
}

int worker_io_produce(worker *w, rd_kafka_topic_t *topic, const void *val, size_t len, const void *key,
                      size_t key_len, void *opaque, char *err, size_t errlen) {
    return produce(w->k.producer, topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, val, len, key, key_len, opaque,
                   err, errlen);
}

/* ---- internal topics (topics.h) ---------------------------------------------------------- */

#define ADMIN_TIMEOUT_MS 10000

/* Waits for an Admin API result on q; NULL (err filled) on a timeout or a stop by a signal. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, const char *what, char *err, size_t errlen) {
    rd_kafka_event_t *ev = NULL;
    double deadline = clock_mono_s() + ADMIN_TIMEOUT_MS / 1e3 + 2;
    while (!ev && !worker_stop_signalled() && clock_mono_s() < deadline) ev = rd_kafka_queue_poll(q, 200);
    if (!ev && worker_stop_signalled()) snprintf(err, errlen, "%s: stopped by a signal before the cluster answered", what);
    else if (!ev) snprintf(err, errlen, "%s: no answer in %d s", what, ADMIN_TIMEOUT_MS / 1000 + 2);
    return ev;
}

/* cleanup.policy of topic through DescribeConfigs; "" when the broker cannot say. md: the
 * cluster's metadata. The request goes to the controller: when the metadata names none of its
 * brokers as the controller (librdkafka's local broker names broker 0 of brokers 1..n), it
 * could only time out. */
static void describe_policy(worker *w, const struct rd_kafka_metadata *md, const char *topic, char *out, size_t n) {
    out[0] = 0;
    int controller = rd_kafka_controllerid(w->k.consumer, ADMIN_TIMEOUT_MS), known = 0;
    for (int i = 0; i < md->broker_cnt; i++) known |= md->brokers[i].id == controller;
    if (!known) {
        LOG_D("topics", "%s: the cluster names no controller among its brokers (id %d): no DescribeConfigs", topic,
              controller);
        return;
    }
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->k.consumer);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(w->k.consumer, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    char e[256];
    rd_kafka_AdminOptions_set_request_timeout(o, ADMIN_TIMEOUT_MS, e, sizeof e);
    rd_kafka_DescribeConfigs(w->k.consumer, &res, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(q, "DescribeConfigs", e, sizeof e);
    const rd_kafka_DescribeConfigs_result_t *r = ev ? rd_kafka_event_DescribeConfigs_result(ev) : NULL;
    size_t nres = 0, nent = 0;
    const rd_kafka_ConfigResource_t **rs = r && !rd_kafka_event_error(ev) ? rd_kafka_DescribeConfigs_result_resources(r, &nres) : NULL;
    if (rs && nres == 1 && !rd_kafka_ConfigResource_error(rs[0])) {
        const rd_kafka_ConfigEntry_t **ents = rd_kafka_ConfigResource_configs(rs[0], &nent);
        for (size_t i = 0; i < nent; i++)
            if (!strcmp(rd_kafka_ConfigEntry_name(ents[i]), "cleanup.policy") && rd_kafka_ConfigEntry_value(ents[i]))
                snprintf(out, n, "%s", rd_kafka_ConfigEntry_value(ents[i]));
    } else {
        LOG_D("topics", "%s: DescribeConfigs: %s", topic,
              !ev ? e : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev) : "no result");
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
}

/* Asks through the consumer, which never asks the broker to auto-create a topic. */
static int topics_describe(void *ctx, const char *topic, topic_facts *out, char *err, size_t errlen) {
    worker *w = ctx;
    memset(out, 0, sizeof *out);
    rd_kafka_topic_t *t = rd_kafka_topic_new(w->k.consumer, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = t ? kafka_metadata(w->k.consumer, t, &md, ADMIN_TIMEOUT_MS) : rd_kafka_last_error();
    if (t) rd_kafka_topic_destroy(t);
    if (!e && md->topic_cnt == 1) e = md->topics[0].err;
    if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        if (md) rd_kafka_metadata_destroy(md);
        return 0;
    }
    if (e || md->topic_cnt != 1) {
        snprintf(err, errlen, "metadata of topic %s: %s", topic, rd_kafka_err2str(e ? e : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        if (md) rd_kafka_metadata_destroy(md);
        return -1;
    }
    out->exists = 1;
    out->partitions = md->topics[0].partition_cnt;
    describe_policy(w, md, topic, out->cleanup_policy, sizeof out->cleanup_policy);
    rd_kafka_metadata_destroy(md);
    return 0;
}

static int topics_create(void *ctx, const char *topic, int partitions, int replication_factor, const char *policy,
                         char *err, size_t errlen) {
    worker *w = ctx;
    char e[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, replication_factor > 0 ? replication_factor : -1,
                                                    e, sizeof e);
    if (!nt) {
        snprintf(err, errlen, "create topic %s: %s", topic, e);
        return -1;
    }
    if (policy) rd_kafka_NewTopic_set_config(nt, "cleanup.policy", policy);
    rd_kafka_queue_t *q = rd_kafka_queue_new(w->k.producer);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(w->k.producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(o, ADMIN_TIMEOUT_MS, e, sizeof e);
    rd_kafka_AdminOptions_set_operation_timeout(o, ADMIN_TIMEOUT_MS, e, sizeof e);
    rd_kafka_CreateTopics(w->k.producer, &nt, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(q, "CreateTopics", e, sizeof e);
    int rc = -1;
    if (!ev) {
        snprintf(err, errlen, "create topic %s: %s", topic, e);
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "create topic %s: %s", topic, rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t te = n == 1 ? rd_kafka_topic_result_error(tr[0]) : RD_KAFKA_RESP_ERR__FAIL;
        if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            snprintf(err, errlen, "create topic %s: %s", topic,
                     n == 1 && rd_kafka_topic_result_error_string(tr[0]) ? rd_kafka_topic_result_error_string(tr[0])
                                                                         : rd_kafka_err2str(te));
        else
            rc = 0;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

topics_ops worker_io_topics(worker *w) { return (topics_ops){w, topics_describe, topics_create}; }

/* ---- the checkpoint's I/O ------------------------------------------------------------------ */

static void io_poll_outputs(void *ctx, int timeout_ms) {
    worker *w = ctx;
    rd_kafka_poll(w->k.producer, timeout_ms);
}

static int io_outputs_failed(void *ctx, char *err, size_t errlen) {
    worker *w = ctx;
    if (!w->k.dr_failed) return 0;
    snprintf(err, errlen, "%lld output/dead-letter records were not acknowledged (first: %s); nothing since the "
             "last checkpoint is written, it will be applied again on restart", (long long)w->k.dr_failed,
             w->k.dr_first_error);
    return -1;
}

static int io_changelog_put(void *ctx, int32_t partition, const char *key, size_t key_len, const void *value,
                            size_t len, char *err, size_t errlen) {
    worker *w = ctx; /* no copy: the checkpoint keeps the value until changelog_flush returns */
    return produce(w->k.cl_producer, w->k.changelog_topic, partition, 0, value, len, key, key_len, NULL, err, errlen);
}

static int io_changelog_flush(void *ctx, const atomic_int *cancel, char *err, size_t errlen) {
    worker *w = ctx;
    int waited_ms = 0;
    while (rd_kafka_flush(w->k.cl_producer, 100) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        if (atomic_load(cancel)) { /* a stop that cannot wait: the records' reports come back purged */
            rd_kafka_purge(w->k.cl_producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_flush(w->k.cl_producer, 1000);
            if (err) snprintf(err, errlen, "changelog: gave up waiting for the broker");
            return -1;
        }
        if ((waited_ms += 100) % 10000 == 0)
            LOG_WF("checkpoint", LOG_AT(LF_COUNT(rd_kafka_outq_len(w->k.cl_producer)), LF_DURATION_MS(waited_ms)),
                   "still waiting for the broker to acknowledge %d changelog records (%d s)",
                   rd_kafka_outq_len(w->k.cl_producer), waited_ms / 1000);
    }
    long failed = atomic_load(&w->k.cl_failed);
    if (!failed) return 0;
    if (err)
        snprintf(err, errlen, "%ld changelog records were not acknowledged (first: %s); nothing since the last "
                 "checkpoint is written, it will be applied again on restart", failed, w->k.cl_first_error);
    return -1;
}

static int64_t io_changelog_position(void *ctx, int32_t partition) {
    worker *w = ctx;
    return partition >= 0 && partition < w->k.cl_partitions ? w->k.cl_position[partition] : -1;
}

static int io_store_write(void *ctx, state_batch *b, char *err, size_t errlen) {
    worker *w = ctx;
    return state_store_write(w->store, b, err, errlen);
}

static void io_offsets_store(void *ctx, int n, const int32_t *partitions, const int64_t *offsets) {
    worker *w = ctx;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, w->s->input_topic, partitions[i])->offset = offsets[i];
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(w->k.consumer, l);
    if (e) LOG_D("worker", "storing consumer offsets: %s (the state store has them)", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

double worker_stop_deadline(worker *w) {
    if (!w->stop_deadline && worker_stop_requested()) w->stop_deadline = clock_mono_s() + w->s->stop_timeout_s;
    return w->stop_deadline;
}

static double io_deadline(void *ctx) { return worker_stop_deadline(ctx); }

checkpoint_io worker_io_checkpoint(worker *w) {
    return (checkpoint_io){w,
                           io_poll_outputs,
                           io_outputs_failed,
                           io_changelog_put,
                           io_changelog_flush,
                           io_changelog_position,
                           io_store_write,
                           io_offsets_store,
                           io_deadline};
}
