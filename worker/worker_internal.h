/* worker_internal: the running worker's state, shared by worker.c (the loop, rebalances,
 * shutdown) and apply.c (one micro-batch, end to end). Not a public interface. */
#ifndef IEVO_WORKER_INTERNAL_H
#define IEVO_WORKER_INTERNAL_H

#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "metrics.h"
#include "model.h"
#include "state_cache.h"
#include "state_store.h"
#include "user_table.h"
#include "worker.h"

/* What the worker knows about one input partition. */
typedef struct {
    int owned;            /* currently assigned to us */
    int64_t next;         /* next offset to apply (-1: unknown until the first record) */
    int64_t checkpointed; /* next offset as of the last checkpoint (durable) */
    int64_t batch_next;   /* next offset after the records of the batch being applied */
    int touched;          /* the current batch holds records of this partition */
    int eof;              /* drained: the last fetch reached the end of the log */
    int64_t lag;          /* consumer lag from librdkafka statistics (-1 unknown) */
    int64_t start, end;   /* replay: first offset and the captured end (-1: not a replay) */
} part_state;

/* One decoded event of the current batch. */
typedef struct {
    const rd_kafka_message_t *msg;
    user_action ev;
    int32_t slot;         /* user_table slot */
    int32_t wave;         /* the user's n-th event applied in this batch; -1: already in its state */
} batch_row;

typedef struct worker {
    const worker_settings *s;
    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_t *out_topic;
    rd_kafka_topic_t *changelog_topic;   /* NULL when changelog.enable=false */
    struct changelog *changelog;         /* reader for restores */
    model *m;
    model_runner *runner;
    int runner_batch;
    state_store *store;
    state_batch *wb;
    state_cache *cache;
    size_t max_dirty;          /* checkpoint when this many records are dirty */
    double last_checkpoint_s;  /* CLOCK_MONOTONIC */
    size_t state_size;     /* the model's state blob */
    size_t record_size;    /* what is stored per user: RECORD_HEADER + state_size */

    part_state *parts;
    int n_parts;
    int assigned;          /* partitions currently owned */
    int ever_assigned;     /* an assignment (even an empty one) has been received */
    int failed;            /* a fatal error: nothing more may be made durable */
    char assignment_strategy[128];

    /* batch scratch, sized at start-up and reused */
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
    int32_t *get_parts;
    const char **get_users;
    size_t *get_lens;
    void **get_bufs;
    int *get_found;
    int32_t *get_slots;
    size_t get_cap;

    /* delivery reports of the current batch */
    int64_t dr_failed;
    char dr_first_error[256];

    worker_stats *stats;

    /* observability */
    metrics_server *metrics;       /* NULL when metrics.listen is not set */
    metrics_snapshot *snap;
    double last_publish_s;
    int restoring;
    int64_t restore_records_done;

    FILE *series;                  /* stats.series.file, or NULL */
    double last_series_s, started_s;

    /* replay */
    int64_t replay_total;
    double replay_last_log_s;

    struct item_consumer *items;   /* text models: the catalogue and the events' texts (item_consumer.h) */
} worker;

/* Publishes a metrics snapshot when due (force: now). Cheap when metrics are off. */
void worker_publish_metrics(worker *w, int force);

/* Returns the partition's record, growing the table as needed (NULL on ENOMEM). */
part_state *worker_part(worker *w, int32_t partition);

/* Applies n consumed messages (see apply.c). Returns 0, or -1 on a fatal error (err filled;
 * nothing since the last checkpoint is durable). */
int apply_batch(worker *w, rd_kafka_message_t **msgs, size_t n, char *err, size_t errlen);

/* Makes everything applied so far durable (see apply.c). Returns 0, or -1 (err filled). */
int worker_checkpoint(worker *w, char *err, size_t errlen);
/* Checkpoints when commit.interval.ms has passed or the cache is filling with dirty records. */
int worker_maybe_checkpoint(worker *w, char *err, size_t errlen);

/* Dead-letter one record: the original key and payload, headers with the reason. */
int dlq_produce(worker *w, const rd_kafka_message_t *msg, codec_status st, const char *reason,
                char *err, size_t errlen);

#endif
