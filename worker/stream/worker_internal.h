/* worker_internal: the running worker, shared by the stream core's files. Not a public interface.
 *
 * Who owns what (each file works on its own part and calls only downward):
 *   worker.c      start-up, the loop, a clean stop              (everything below)
 *   stop.c        the stop flag, signals, fatal errors
 *   rebalance.c   assignments and revocations                    restore, checkpoint
 *   replay.c      a bounded replay's plan and progress           restore
 *   restore.c     a partition brought up to its changelog        observe
 *   batch.c       one micro-batch: decode, states, model, outputs  checkpoint, dlq, worker_io
 *   dlq.c         the dead-letter path                           worker_io
 *   observe.c     metrics snapshots and the stats series
 *   worker_io.c   the Kafka clients, delivery reports, the checkpoint's I/O
 *   checkpoint.c  the one checkpoint (checkpoint.h)              partitions, state_cache, its I/O
 *   partitions.c  what is known of each input partition
 */
#ifndef IEVO_WORKER_INTERNAL_H
#define IEVO_WORKER_INTERNAL_H

#include <stdatomic.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "checkpoint.h"
#include "metrics.h"
#include "model.h"
#include "partitions.h"
#include "readahead.h"
#include "registry.h"
#include "serde.h"
#include "state_cache.h"
#include "state_store.h"
#include "topics.h"
#include "user_table.h"
#include "worker.h"

/* One decoded event of the current batch. */
typedef struct {
    const rd_kafka_message_t *msg;
    user_action ev;
    int32_t slot;         /* user_table slot */
    int32_t wave;         /* the user's n-th event applied in this batch; -1: already in its state */
} batch_row;

/* batch.c's scratch, sized at start-up and reused batch after batch. */
typedef struct {
    rd_kafka_message_t **msgs;
    batch_row *rows;
    int32_t *wave_order;   /* rows sorted by wave (counting sort) */
    int32_t *wave_start;
    user_table users;
    void **step_states;
    model_event *step_events;
    float *step_vec, *step_drift;
    uint8_t *enc_buf;      /* one model step's encoded outputs, back to back */
    size_t enc_cap;
    size_t *enc_len;       /* (runner_batch) their lengths */
    float *scores;         /* output.top.k: (TOPK_ROWS, n_items) item scores */
    codec_top_item *top;   /* (runner_batch, K) the best items per output */
    int *n_top;            /* (runner_batch) how many of them */
    /* the misses of the state cache, looked up in the store at once */
    int32_t *get_parts;
    const char **get_users;
    size_t *get_lens;
    void **get_bufs;
    int *get_found;
    size_t *get_malformed;     /* the stored length of a malformed value */
    int32_t *get_slots;
    size_t get_cap;
} batch_scratch;

/* worker_io.c's clients. */
typedef struct {
    rd_kafka_t *consumer, *producer;
    rd_kafka_t *cl_producer;           /* the changelog's own producer: a checkpoint's burst of
                                          records never queues in front of the outputs */
    rd_kafka_topic_t *out_topic;
    rd_kafka_topic_t *changelog_topic; /* (cl_producer) NULL when changelog.enable=false */
    struct changelog *changelog;       /* reader for restores */
    char assignment_strategy[128];
    int64_t dr_failed;                 /* outputs and dead letters the broker refused */
    char dr_first_error[256];
    atomic_long cl_failed;             /* changelog records the broker refused */
    char cl_first_error[256];
    int session_timeout_ms;            /* the consumer's, for the waiting messages */
    int consumer_closed;               /* it left the group (else destroyed without a close) */
    int64_t *cl_position;              /* (cl_partitions) the offset after each partition's last
                                          acknowledged marker, -1: none yet */
    int cl_partitions;
} worker_clients;

typedef struct worker {
    const worker_settings *s;
    worker_stats *stats;
    worker_clients k;
    model *m;
    model_runner *runner;
    int runner_batch;
    state_store *store;
    state_batch *wb;           /* restores' writes */
    state_cache *cache;
    size_t max_dirty;          /* checkpoint when this many records are dirty */
    size_t state_size;         /* the model's state blob */
    size_t record_size;        /* what is stored per user: RECORD_HEADER + state_size */
    partitions parts;
    checkpoint *ck;
    readahead *ra;             /* fetched records per partition (readahead.h); NULL when off */
    batch_scratch b;

    /* schemas (docs/schemas.md): the registry when schema.registry.url is set, the readers of the
     * input and the catalogue, and the output's framing with the id the registry gave */
    registry *reg;
    serde_in *in, *items_in;
    codec_out_opts out;

    int ever_assigned;         /* an assignment (even an empty one) has been received */
    int failed;                /* a fatal error: nothing more may be made durable */
    double stop_deadline;      /* once a stop is asked for: when waits give up (stop.timeout.ms) */
    char fatal[512];           /* what it was (the first one) */

    /* observability (observe.c) */
    metrics_server *metrics;   /* NULL when metrics.listen is not set */
    metrics_snapshot *snap;
    double last_publish_s;
    int restoring;
    int64_t restore_records_done;
    FILE *series;              /* stats.series.file, or NULL */
    double last_series_s, started_s;

    /* dead letters' log lines (dlq.c) */
    double dlq_log_since;
    int dlq_log_lines;
    int64_t dlq_log_quiet;

    /* replay (replay.c) */
    int64_t replay_total;
    double replay_last_log_s;

    struct item_consumer *items; /* text models: the catalogue and the events' texts (item_consumer.h) */
} worker;

/* ---- stop.c ---- */
/* A fatal error: logged, kept (the first) as the reason the worker stops with a non-zero exit,
 * and nothing after it is made durable. */
void worker_fail(worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A stop was asked for (a signal, worker_request_stop, worker_fail). */
int worker_stop_requested(void);
/* By a signal (a second one ends the process). */
int worker_stop_signalled(void);
/* SIGTERM and SIGINT ask for a stop. */
void worker_catch_signals(void);

/* ---- worker_io.c ---- */
/* Creates the producers, the changelog reader and the consumer (subscribed, unless a replay).
 * rebalance: the consumer's rebalance callback (its opaque is w). */
int worker_io_open(worker *w, const config *c,
                   void (*rebalance)(rd_kafka_t *, rd_kafka_resp_err_t, rd_kafka_topic_partition_list_t *, void *),
                   char *err, size_t errlen);
void worker_io_close(worker *w);
/* Whether the consumer runs the cooperative-sticky assignor and has never had an assignment.
 * librdkafka 2.0.2 fails an assertion (rd_kafka_sticky_assignor_state_destroy, "assignor_state";
 * upstream #4308/#4312, fixed in 2.3.0) when such a consumer is closed, or destroyed once the
 * group has chosen the assignor, before its first assignment: it holds nothing to commit, so it
 * is neither closed nor destroyed, and the group drops it after session.timeout.ms. */
int worker_io_consumer_unassigned_cooperative(const worker *w);
/* Sizes the changelog positions kept from the markers' delivery reports (the changelog's
 * partition count). */
int worker_io_track_changelog(worker *w, int partitions, char *err, size_t errlen);
/* The cluster calls of the internal topics' checks (topics.h). */
topics_ops worker_io_topics(worker *w);
/* Once a stop is asked for, when the waits of a stop give up (stop.timeout.ms after the first
 * call that saw it); 0 before. */
double worker_stop_deadline(worker *w);
/* The checkpoint's I/O over the worker's clients and store. */
checkpoint_io worker_io_checkpoint(worker *w);
/* Produces one record through the main producer, waiting out a full local queue. */
int worker_io_produce(worker *w, rd_kafka_topic_t *topic, const void *val, size_t len, const void *key,
                      size_t key_len, void *opaque, char *err, size_t errlen);

/* ---- restore.c ---- */
/* Brings partition p's local states up to its changelog when they are behind it, and gives the
 * next offset to apply (-1: none known). Returns 0, or -1 with err. */
int restore_partition(worker *w, int32_t p, int64_t *next, char *err, size_t errlen);

/* ---- rebalance.c ---- */
void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *list, void *opaque);

/* ---- replay.c ---- */
/* Plans the replay, assigns every partition at its start, records each end. */
int replay_start(worker *w, char *err, size_t errlen);
/* Every partition reached its captured end. Logs progress every few seconds. */
int replay_done(worker *w);

/* ---- batch.c ---- */
int batch_alloc(worker *w);
void batch_free(worker *w);
/* Applies n consumed messages. Returns 0, or -1 on a fatal error (err filled; nothing since
 * the last checkpoint is durable). */
int batch_apply(worker *w, rd_kafka_message_t **msgs, size_t n, char *err, size_t errlen);

/* ---- dlq.c ---- */
/* Dead-letters one input record: the original key and payload, headers with the reason. */
int dlq_produce(worker *w, const rd_kafka_message_t *msg, codec_status st, const char *reason,
                char *err, size_t errlen);
/* The count of dead letters logged without a line of their own since the last summary (at a stop). */
void dlq_log_summary(worker *w);
/* Dead-letters any record (a quarantined state: cls "state"), naming where it was read. */
int dlq_produce_record(worker *w, const char *topic, int32_t partition, int64_t offset, const void *key,
                       size_t key_len, const void *value, size_t len, const char *cls, const char *reason,
                       char *err, size_t errlen);

/* ---- restore.c: records that come back ---- */
/* A user's record that failed record_check_loaded / record_check_stored (worker_record.h):
 * dead-lettered with the reason and counted; the caller resets the user's state. */
int restore_quarantine(worker *w, const char *topic, int32_t partition, int64_t offset, const char *user,
                       size_t user_len, const void *value, size_t len, const char *why, char *err, size_t errlen);

/* ---- observe.c ---- */
/* Publishes a metrics snapshot when due (force: now). Cheap when metrics are off. */
void observe_publish(worker *w, int force);
/* Appends a line of counters to stats.series.file when due (force: now). */
void observe_series(worker *w, int force);

#endif
