/* worker_internal: the running worker's state, shared by worker.c (the loop, rebalances,
 * shutdown) and apply.c (one micro-batch, end to end). Not a public interface. */
#ifndef IEVO_WORKER_INTERNAL_H
#define IEVO_WORKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "metrics.h"
#include "model.h"
#include "readahead.h"
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
    rd_kafka_t *cl_producer;             /* the changelog's own producer: a checkpoint's burst of
                                            records never queues in front of the outputs */
    rd_kafka_topic_t *out_topic;
    rd_kafka_topic_t *changelog_topic;   /* (cl_producer) NULL when changelog.enable=false */
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
    readahead *ra;         /* fetched records per partition (readahead.h); NULL when off */
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
    /* a checkpoint's dirty records in RocksDB key order (apply.c: sorted inserts are cheaper) */
    struct ckpt_entry *ckpt;
    size_t ckpt_cap;
    size_t get_cap;

    /* delivery reports of the current batch */
    int64_t dr_failed;
    char dr_first_error[256];

    /* The checkpoint in the background (apply.c). Every produced record carries a tag in its
     * opaque (produce_tag): outputs and dead letters the parity of the epoch they belong to,
     * so the checkpoint of epoch E knows when all of its outputs are acknowledged. */
    unsigned ck_epoch;                 /* the epoch outputs are produced in now */
    atomic_long ck_pending[2];         /* outputs + dead letters not yet acknowledged, by epoch parity */
    atomic_long cl_failed;             /* changelog records the broker refused (cl_dr_cb) */
    char cl_first_error[256];
    atomic_int ck_done;                /* the writer thread finished (ck_rc, ck_err) */
    int ck_active, ck_writing;
    size_t ck_copied;                  /* records of the snapshot copied so far (< ck_n: a slice
                                          per loop turn still to come) */
    int ck_turns;                      /* loop turns it has taken */
    unsigned ck_flight_epoch;
    pthread_t ck_thread;
    uint8_t *ck_snap;                  /* (ck_n, record_size) the records as they were when copied */
    size_t ck_n, ck_snap_cap;
    int64_t *ck_offsets;               /* (n_parts) next offset to checkpoint, -1: not advanced */
    uint8_t (*ck_markers)[8];          /* (n_parts) changelog marker values */
    int ck_parts_cap, ck_nparts;       /* n_parts at the snapshot (the table may grow meanwhile) */
    struct state_batch *ck_wb;
    int ck_rc;
    char ck_err[512];
    double ck_t0;

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

/* What an output's or dead letter's opaque carries (dr_cb in worker.c): the input's timestamp for
 * the latency of outputs (ms, shifted left 2) and, in the low bit, the parity of the epoch it
 * belongs to. (Changelog records go through their own producer, cl_producer.) */
static inline void *produce_tag(int64_t in_ts, unsigned kind) {
    return (void *)(uintptr_t)(((uint64_t)(in_ts > 0 ? in_ts : 0) << 2) | kind);
}
/* The tag of the outputs and dead letters produced now. */
static inline void *produce_tag_output(worker *w, int64_t in_ts) {
    atomic_fetch_add_explicit(&w->ck_pending[w->ck_epoch & 1u], 1, memory_order_relaxed);
    return produce_tag(in_ts, w->ck_epoch & 1u);
}
/* Undoes produce_tag_output's count for a record that was not produced after all. */
static inline void produce_tag_cancel(worker *w, void *tag) {
    atomic_fetch_sub_explicit(&w->ck_pending[(uintptr_t)tag & 1u], 1, memory_order_relaxed);
}

/* Finishes the checkpoint in flight, if any (blocking; serves delivery reports meanwhile). */
int worker_checkpoint_finish(worker *w, char *err, size_t errlen);
/* On the way out after an error: lets the writer thread end and joins it, completing nothing. */
void worker_checkpoint_abandon(worker *w);

/* Makes everything applied so far durable (see apply.c). Returns 0, or -1 (err filled). */
int worker_checkpoint(worker *w, char *err, size_t errlen);
/* Checkpoints when commit.interval.ms has passed or the cache is filling with dirty records. */
int worker_maybe_checkpoint(worker *w, char *err, size_t errlen);

/* Dead-letter one record: the original key and payload, headers with the reason. */
int dlq_produce(worker *w, const rd_kafka_message_t *msg, codec_status st, const char *reason,
                char *err, size_t errlen);

#endif
