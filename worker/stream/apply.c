/* apply: one micro-batch, and the checkpoint that makes batches durable.
 *
 * A batch: classify + decode (bad records to the dead-letter topic) -> find the users' records
 * (the state cache, then one RocksDB multi-get for the misses) -> plan waves (skipping events a
 * user's state already holds) -> model steps -> produce the outputs. Nothing is waited for: the
 * records change in the cache only, and the partitions' applied offsets move in memory.
 *
 * A checkpoint:
 *   wait until every output and dead letter so far is acknowledged
 *   -> changelog: every dirty record, then each advanced partition's marker -> acknowledged
 *   -> one atomic RocksDB write: the dirty records + the applied offsets
 *   -> store the consumer offsets.
 * So what is durable (RocksDB, changelog) never holds the effect of an event whose output was
 * not acknowledged; a crash between checkpoints re-applies from the last one (outputs repeat,
 * states do not).
 *
 * The periodic checkpoint (commit.interval.ms, or half the cache dirty) runs in the background,
 * in the same order, so that events keep flowing while it works: the main thread takes the
 * partitions' offsets at a cut, copies the records dirty at the cut a slice per loop turn (the
 * snapshot), then hands the outputs' epoch over and goes on; once the outputs of that epoch are
 * acknowledged, a writer thread produces the snapshot (each record in its stored form,
 * worker_record.h) to the changelog, waits for its acknowledgements and writes RocksDB; the main
 * thread then stores the consumer offsets. The snapshot's cache entries cannot be evicted until then.
 * Revocation, stop, and a cache with no room left finish the flight and checkpoint in the
 * foreground (worker_checkpoint).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "changelog.h"
#include "item_consumer.h"
#include "log.h"
#include "worker_internal.h"
#include "worker_record.h"

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int grow_get_scratch(worker *w, size_t n) {
    if (n <= w->get_cap) return 0;
    size_t c = w->get_cap ? w->get_cap : 256;
    while (c < n) c *= 2;
    void *a = realloc(w->get_parts, c * sizeof *w->get_parts);
    if (a) w->get_parts = a;
    void *b = realloc(w->get_users, c * sizeof *w->get_users);
    if (b) w->get_users = b;
    void *d = realloc(w->get_lens, c * sizeof *w->get_lens);
    if (d) w->get_lens = d;
    void *e = realloc(w->get_bufs, c * sizeof *w->get_bufs);
    if (e) w->get_bufs = e;
    void *f = realloc(w->get_found, c * sizeof *w->get_found);
    if (f) w->get_found = f;
    void *g = realloc(w->get_slots, c * sizeof *w->get_slots);
    if (g) w->get_slots = g;
    if (!a || !b || !d || !e || !f || !g) return -1;
    w->get_cap = c;
    return 0;
}

/* ---- producing -------------------------------------------------------------------------- */

/* Produces one record through rk (flags: RD_KAFKA_MSG_F_COPY or 0); waits out a full local queue. */
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

/* Waits until the broker acknowledged (or refused) every record produced through rk so far;
 * the delivery reports count the refused ones (acks_failed). */
static void await_acks(rd_kafka_t *rk, const char *what) {
    int waited_s = 0;
    while (rd_kafka_flush(rk, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        if (++waited_s % 10 == 0)
            LOG_W("worker", "still waiting for the broker to acknowledge %d %s records (%d s)", rd_kafka_outq_len(rk),
                  what, waited_s);
    }
}

/* After await_acks: an error when records were refused. */
static int acks_failed(int64_t failed, const char *what, const char *first, char *err, size_t errlen) {
    if (!failed) return 0;
    snprintf(err, errlen, "%lld %s records were not acknowledged (first: %s); nothing since the last "
             "checkpoint is written, it will be applied again on restart", (long long)failed, what, first);
    return -1;
}

/* ---- the checkpoint --------------------------------------------------------------------- */

/* A dirty record, keyed as RocksDB orders it (state_store.h: be32 partition, then the user's
 * bytes). RocksDB's memtable inserts a batch in the order given, and a skip list takes keys in
 * order with far fewer comparisons than keys in hash order. */
typedef struct ckpt_entry {
    int32_t partition;
    const char *user;
    size_t user_len;
    long entry;
    size_t snap;   /* background checkpoint: the record's index in the snapshot */
    size_t len;    /* the record's stored length (worker_record.h) */
} ckpt_entry;

static int ckpt_cmp(const void *a, const void *b) {
    const ckpt_entry *x = a, *y = b;
    if (x->partition != y->partition) return (uint32_t)x->partition < (uint32_t)y->partition ? -1 : 1;
    size_t n = x->user_len < y->user_len ? x->user_len : y->user_len;
    int c = memcmp(x->user, y->user, n);
    if (c) return c;
    return x->user_len < y->user_len ? -1 : x->user_len > y->user_len;
}

static int reserve_ckpt(worker *w, size_t n) {
    if (n <= w->ckpt_cap) return 0;
    size_t cap = w->ckpt_cap ? w->ckpt_cap : 1024;
    while (cap < n) cap *= 2;
    ckpt_entry *p = realloc(w->ckpt, cap * sizeof *p);
    if (!p) return -1;
    w->ckpt = p, w->ckpt_cap = cap;
    return 0;
}

static void fill_ckpt(worker *w, size_t i, long entry) {
    ckpt_entry *k = &w->ckpt[i];
    k->entry = entry;
    k->partition = state_cache_partition(w->cache, entry);
    k->user = state_cache_user(w->cache, entry, &k->user_len);
    k->snap = i;
    k->len = record_stored_len(state_cache_record(w->cache, entry), w->record_size);
}

/* Fills w->ckpt with the cache's dirty records, in key order. */
static int sort_dirty(worker *w, size_t n_dirty) {
    if (reserve_ckpt(w, n_dirty)) return -1;
    for (size_t i = 0; i < n_dirty; i++) fill_ckpt(w, i, state_cache_dirty_at(w->cache, i));
    qsort(w->ckpt, n_dirty, sizeof *w->ckpt, ckpt_cmp);
    return 0;
}

int worker_checkpoint(worker *w, char *err, size_t errlen) {
    if (worker_checkpoint_finish(w, err, errlen)) return -1;
    double t0 = mono_s();
    state_cache *c = w->cache;
    size_t n_dirty = state_cache_dirty_count(c);
    int advanced = 0;
    for (int p = 0; p < w->n_parts; p++) advanced |= w->parts[p].next > w->parts[p].checkpointed;
    if (!n_dirty && !advanced) return 0;
    if (sort_dirty(w, n_dirty)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    await_acks(w->producer, "output/dead-letter");
    if (acks_failed(w->dr_failed, "output/dead-letter", w->dr_first_error, err, errlen)) return -1;
    double t1 = mono_s();
    w->stats->stage_s[STAGE_PRODUCE] += t1 - t0;

    if (w->changelog_topic) {
        for (size_t i = 0; i < n_dirty; i++) {
            const ckpt_entry *k = &w->ckpt[i];
            if (produce(w->cl_producer, w->changelog_topic, k->partition, RD_KAFKA_MSG_F_COPY,
                        state_cache_record(c, k->entry), k->len, k->user, k->user_len, NULL, err, errlen))
                return -1;
        }
        for (int p = 0; p < w->n_parts; p++) {
            if (w->parts[p].next <= w->parts[p].checkpointed) continue;
            uint8_t marker[8];
            changelog_marker_value(marker, w->parts[p].next);
            if (produce(w->cl_producer, w->changelog_topic, p, RD_KAFKA_MSG_F_COPY, marker, sizeof marker, "", 0, NULL,
                        err, errlen))
                return -1;
        }
        await_acks(w->cl_producer, "changelog");
        if (acks_failed(atomic_load(&w->cl_failed), "changelog", w->cl_first_error, err, errlen)) return -1;
        w->stats->changelog_records += (int64_t)n_dirty;
    }
    double t2 = mono_s();
    w->stats->stage_s[STAGE_CHANGELOG] += t2 - t1;

    state_batch_clear(w->wb);
    for (size_t i = 0; i < n_dirty; i++) {
        const ckpt_entry *k = &w->ckpt[i];
        state_batch_put_state(w->wb, k->partition, k->user, k->user_len, state_cache_record(c, k->entry), k->len);
    }
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < w->n_parts; p++) {
        if (w->parts[p].next <= w->parts[p].checkpointed) continue;
        state_batch_put_offset(w->wb, p, w->parts[p].next);
        if (w->parts[p].owned)
            rd_kafka_topic_partition_list_add(offs, w->s->input_topic, p)->offset = w->parts[p].next;
    }
    int rc = state_store_write(w->store, w->wb, err, errlen);
    if (rc == 0) {
        state_cache_mark_clean(c);
        for (int p = 0; p < w->n_parts; p++) w->parts[p].checkpointed = w->parts[p].next;
        if (offs->cnt) {
            rd_kafka_resp_err_t e = rd_kafka_offsets_store(w->consumer, offs);
            if (e) LOG_D("worker", "storing consumer offsets: %s (the state store has them)", rd_kafka_err2str(e));
        }
        w->stats->checkpoints++;
    }
    rd_kafka_topic_partition_list_destroy(offs);
    double t3 = mono_s();
    w->stats->stage_s[STAGE_STATE] += t3 - t2;
    w->last_checkpoint_s = t3;
    LOG_D("worker", "checkpoint: %zu records; outputs acknowledged in %.1f ms, changelog %.1f ms, state write %.1f ms",
          n_dirty, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3);
    return rc;
}

/* ---- a batch ---------------------------------------------------------------------------- */

static void handle_event(worker *w, const rd_kafka_message_t *m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        part_state *p = worker_part(w, m->partition);
        if (p && p->owned) p->eof = 1;
        return;
    }
    LOG_W("worker", "consumer: %s [%d]: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : "-", m->partition,
          rd_kafka_message_errstr(m));
}

/* Sorts each record into skipped, dead-lettered or a row of the batch. */
static int classify(worker *w, rd_kafka_message_t **msgs, size_t n, size_t *nrows, char *err, size_t errlen) {
    *nrows = 0;
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = msgs[i];
        if (m->err) {
            handle_event(w, m);
            continue;
        }
        w->stats->consumed++;
        part_state *p = worker_part(w, m->partition);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (!p->owned) {
            w->stats->skipped_unowned++;
            continue;
        }
        if (p->next >= 0 && m->offset < p->next) {
            w->stats->skipped_duplicate++;
            continue;
        }
        if (p->end >= 0 && m->offset >= p->end) {   /* a replay stops at the end it captured */
            w->stats->skipped_beyond_end++;
            continue;
        }
        int64_t expected = p->touched ? p->batch_next : p->next;
        if (expected >= 0 && m->offset > expected) {
            /* Normal on a real cluster around transaction markers and compacted records; on a
             * plain topic it means records were skipped (retention, an offset reset). */
            w->stats->offset_gaps++;
            LOG_W("worker", "%s [%d]: offset gap: expected %lld, got %lld", w->s->input_topic, m->partition,
                  (long long)expected, (long long)m->offset);
        }
        p->touched = 1;
        p->batch_next = m->offset + 1;
        p->eof = 0;

        batch_row *row = &w->rows[*nrows];
        char reason[256];
        codec_status st = codec_decode_user_action(&w->s->in, m->payload, m->len, &row->ev, reason, sizeof reason);
        if (st != CODEC_OK) {
            if (dlq_produce(w, m, st, reason, err, errlen)) return -1;
            w->stats->dead_lettered++;
            w->stats->dlq_by_class[st]++;
            continue;
        }
        long slot = user_table_upsert(&w->users, m->partition, row->ev.user_id, row->ev.user_id_len);
        if (slot < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        row->msg = m;
        row->slot = (int32_t)slot;
        (*nrows)++;
    }
    return 0;
}

/* Puts a record into the cache, making room with a checkpoint when everything is dirty. */
static long cache_insert(worker *w, int32_t partition, const char *user, size_t len, char *err, size_t errlen) {
    long e = state_cache_insert(w->cache, partition, user, len);
    if (e == -1 && w->ck_active) {   /* the flight's entries become evictable when it lands */
        if (worker_checkpoint_finish(w, err, errlen)) return -2;
        e = state_cache_insert(w->cache, partition, user, len);
    }
    if (e == -1) {
        if (worker_checkpoint(w, err, errlen)) return -2;
        e = state_cache_insert(w->cache, partition, user, len);
        if (e == -1)
            snprintf(err, errlen, "state cache of %zu entries cannot hold one batch's users; raise state.cache.bytes",
                     state_cache_capacity(w->cache));
    }
    if (e == -2) snprintf(err, errlen, "out of memory");
    return e;
}

/* Finds every user's record: in the cache, else in RocksDB, else a fresh state. */
static int resolve_users(worker *w, char *err, size_t errlen) {
    user_table *t = &w->users;
    if (grow_get_scratch(w, t->n)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n_miss = 0;
    for (int stage = 0; stage < 3; stage++)   /* see state_cache_prefetch */
        for (size_t i = 0; i < t->n; i++) state_cache_prefetch(w->cache, t->slots[i].hash, stage);
    for (size_t i = 0; i < t->n; i++) {
        user_slot *u = &t->slots[i];
        u->entry = state_cache_find_hashed(w->cache, u->partition, u->user, u->user_len, u->hash);
        if (u->entry >= 0) {
            state_cache_pin(w->cache, u->entry);
            u->found = 1;
            continue;
        }
        w->get_parts[n_miss] = u->partition;
        w->get_users[n_miss] = u->user;
        w->get_lens[n_miss] = u->user_len;
        w->get_bufs[n_miss] = user_table_state(t, i);   /* scratch for the read */
        w->get_slots[n_miss] = (int32_t)i;
        n_miss++;
    }
    if (n_miss && state_store_multi_get(w->store, n_miss, w->get_parts, w->get_users, w->get_lens, w->get_bufs,
                                        w->record_size, w->get_found, err, errlen))
        return -1;
    for (size_t k = 0; k < n_miss; k++) {
        user_slot *u = &t->slots[w->get_slots[k]];
        void *rec = w->get_bufs[k];
        u->found = w->get_found[k];
        if (!u->found) {
            record_set_last_offset(rec, -1);
            model_state_init(w->m, record_blob(rec));
        } else if (model_state_check(w->m, record_blob(rec), err, errlen)) {
            char inner[200];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, errlen, "stored state of user '%.*s' (partition %d): %s", (int)u->user_len, u->user,
                     u->partition, inner);
            return -1;
        }
        u->entry = cache_insert(w, u->partition, u->user, u->user_len, err, errlen);
        if (u->entry < 0) return -1;
        memcpy(state_cache_record(w->cache, u->entry), rec, w->record_size);
        state_cache_pin(w->cache, u->entry);
    }
    for (size_t i = 0; i < t->n; i++)
        t->slots[i].last_offset = record_last_offset(state_cache_record(w->cache, t->slots[i].entry));
    return 0;
}

/* Gives each row its wave: the user's n-th event still to apply in this batch. An event at or
 * below the user's last applied offset is already in its state (a redelivery, or a resume from
 * a changelog marker that lags this user) and gets no wave. Returns the number of waves. */
static int plan_waves(worker *w, size_t nrows) {
    int n_waves = 0;
    for (size_t i = 0; i < nrows; i++) {
        batch_row *r = &w->rows[i];
        user_slot *u = &w->users.slots[r->slot];
        if (r->msg->offset <= u->last_offset) {
            r->wave = -1;
            w->stats->skipped_duplicate++;
            continue;
        }
        r->wave = u->waves++;
        u->last_offset = r->msg->offset;
        if (r->wave + 1 > n_waves) n_waves = r->wave + 1;
    }
    return n_waves;
}

static void *row_record(worker *w, const batch_row *r) {
    return state_cache_record(w->cache, w->users.slots[r->slot].entry);
}

/* Encodes the output of row into the chunk's arena at *used. */
static int encode_output(worker *w, const batch_row *row, int j, const float *vec, float drift, size_t *used,
                         size_t *len, char *err, size_t errlen) {
    interest_vector iv = {
        .user_id = row->ev.user_id, .user_id_len = row->ev.user_id_len,
        .ts = row->ev.ts,
        .events = model_state_events(record_blob(row_record(w, row))),
        .vector = vec, .dim = w->m->cfg.out_dim,
        .drift = drift,
        .model = w->m->model_id, .model_len = strlen(w->m->model_id),
        .source_partition = row->msg->partition,
        .source_offset = row->msg->offset,
        .top_items = w->s->top_k ? w->top + (size_t)j * (size_t)w->s->top_k : NULL,
        .n_top_items = w->s->top_k ? w->n_top[j] : 0,
    };
    for (;;) {
        *len = codec_encode_interest_vector(&w->s->out, &iv, w->enc_buf + *used, w->enc_cap - *used);
        if (*used + *len <= w->enc_cap) break;
        size_t cap = (w->enc_cap + *len) * 2;
        uint8_t *nb = realloc(w->enc_buf, cap);
        if (!nb) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        w->enc_buf = nb;
        w->enc_cap = cap;
    }
    *used += *len;
    return 0;
}

/* output.top.k: the K best-scoring items for each vector of a step, excluding the items in the
 * user's window (the state keeps no longer history). Scores are computed TOPK_ROWS vectors at a
 * time, one GEMM each, so the scratch stays small for large catalogues. */
#define TOPK_ROWS 32
static int top_items(worker *w, size_t first, int j0, int n, char *err, size_t errlen) {
    const int D = w->m->cfg.out_dim, N = w->m->cfg.n_items, K = w->s->top_k;
    if (w->items ? item_consumer_score(w->items, n, w->step_vec + (size_t)j0 * (size_t)D, w->scores, err, errlen)
                 : model_score_items_batch(w->m, n, w->step_vec + (size_t)j0 * (size_t)D, w->scores, err, errlen))
        return -1; /* a text model ranks with the text part of the scoring rows */
    for (int j = 0; j < n; j++) {
        const batch_row *r = &w->rows[w->wave_order[first + (size_t)(j0 + j)]];
        int32_t seen[1024], idx[256];
        float val[256];
        int n_seen = model_state_items(w->m, record_blob(row_record(w, r)), seen);
        int got = model_top_k(w->scores + (size_t)j * (size_t)N, N, K, seen, n_seen, idx, val);
        codec_top_item *t = w->top + (size_t)(j0 + j) * (size_t)K;
        for (int k = 0; k < got; k++) {
            const char *id = model_item_id(w->m, idx[k]);
            t[k] = (codec_top_item){id, strlen(id), val[k]};
        }
        w->n_top[j0 + j] = got;
    }
    return 0;
}

/* Encodes, then produces, the outputs of one model step (two timers per chunk, not per event). */
static int produce_outputs(worker *w, size_t first, int n, char *err, size_t errlen) {
    const int D = w->m->cfg.out_dim;
    double t0 = mono_s();
    for (int j0 = 0; w->s->top_k && j0 < n; j0 += TOPK_ROWS)
        if (top_items(w, first, j0, n - j0 < TOPK_ROWS ? n - j0 : TOPK_ROWS, err, errlen)) return -1;
    size_t used = 0;
    for (int j = 0; j < n; j++) {
        const batch_row *r = &w->rows[w->wave_order[first + (size_t)j]];
        if (encode_output(w, r, j, w->step_vec + (size_t)j * (size_t)D, w->step_drift[j], &used, &w->enc_len[j],
                          err, errlen))
            return -1;
    }
    double t1 = mono_s();
    w->stats->stage_s[STAGE_ENCODE] += t1 - t0;
    size_t off = 0;
    for (int j = 0; j < n; j++) {
        const batch_row *r = &w->rows[w->wave_order[first + (size_t)j]];
        /* The input's timestamp rides along to the delivery report: event-to-output latency. */
        rd_kafka_timestamp_type_t tt;
        int64_t in_ts = rd_kafka_message_timestamp(r->msg, &tt);
        void *tag = produce_tag_output(w, in_ts);
        if (produce(w->producer, w->out_topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, w->enc_buf + off,
                    w->enc_len[j], r->ev.user_id, r->ev.user_id_len, tag, err, errlen)) {
            produce_tag_cancel(w, tag);
            return -1;
        }
        off += w->enc_len[j];
    }
    w->stats->stage_s[STAGE_PRODUCE] += mono_s() - t1;
    return 0;
}

/* Runs every wave through the model, producing one output per applied event. */
static int run_waves(worker *w, size_t nrows, int n_waves, char *err, size_t errlen) {
    /* Counting sort of rows by wave; within a wave, batch order is kept. */
    memset(w->wave_start, 0, (size_t)(n_waves + 1) * sizeof *w->wave_start);
    for (size_t i = 0; i < nrows; i++)
        if (w->rows[i].wave >= 0) w->wave_start[w->rows[i].wave + 1]++;
    for (int k = 0; k < n_waves; k++) w->wave_start[k + 1] += w->wave_start[k];
    for (size_t i = 0; i < nrows; i++)
        if (w->rows[i].wave >= 0) w->wave_order[w->wave_start[w->rows[i].wave]++] = (int32_t)i;
    /* wave_start[k] now holds the end of wave k. */
    size_t begin = 0;
    for (int k = 0; k < n_waves; k++) {
        size_t end = (size_t)w->wave_start[k];
        for (size_t c = begin; c < end; c += (size_t)w->runner_batch) {
            int n = (int)((end - c) < (size_t)w->runner_batch ? (end - c) : (size_t)w->runner_batch);
            double t0 = mono_s();
            for (int j = 0; j < n; j++) {
                const batch_row *r = &w->rows[w->wave_order[c + (size_t)j]];
                w->step_states[j] = record_blob(row_record(w, r));
                w->step_events[j] = (model_event){
                    .item = model_item_index(w->m, r->ev.item_id, r->ev.item_id_len),
                    .action = model_action_index(w->m, r->ev.action, r->ev.action_len),
                    .ts = r->ev.ts,
                    .value = r->ev.value,
                    .has_value = r->ev.has_value,
                };
            }
            if (w->items) { /* text model: item keys, the events' own texts encoded (item_consumer.h) */
                const user_action *ua[256]; /* runner_batch <= 256 */
                for (int j = 0; j < n; j++) ua[j] = &w->rows[w->wave_order[c + (size_t)j]].ev;
                if (item_consumer_step_events(w->items, n, ua, w->step_events, err, errlen)) return -1;
            }
            if (model_step(w->runner, n, w->step_states, w->step_events, w->step_vec, w->step_drift, err, errlen))
                return -1;
            double us = (mono_s() - t0) * 1e6;
            int k = 0;
            while (k < STEP_US_BUCKETS - 1 && us > WORKER_STEP_US_BOUNDS[k]) k++;
            w->stats->step_us_hist[k]++;
            w->stats->step_us_sum += us;
            w->stats->stage_s[STAGE_MODEL] += us * 1e-6;
            if (produce_outputs(w, c, n, err, errlen)) return -1;
        }
        begin = end;
        w->stats->waves++;
    }
    return 0;
}

int apply_batch(worker *w, rd_kafka_message_t **msgs, size_t n, char *err, size_t errlen) {
    user_table_clear(&w->users);
    int b = 0;
    while (b < BATCH_SIZE_BUCKETS - 1 && n > ((size_t)1 << b)) b++;
    w->stats->batch_size_hist[b]++;
    double t0 = mono_s();
    size_t nrows;
    if (classify(w, msgs, n, &nrows, err, errlen)) return -1;
    double t1 = mono_s();
    w->stats->stage_s[STAGE_DECODE] += t1 - t0;
    int touched = 0;
    for (int p = 0; p < w->n_parts; p++) touched |= w->parts[p].touched;
    if (!touched) return 0;   /* only events and skipped records */

    int rc = resolve_users(w, err, errlen);
    w->stats->stage_s[STAGE_STATE] += mono_s() - t1;
    int n_waves = rc ? 0 : plan_waves(w, nrows);
    if (!rc && n_waves) rc = run_waves(w, nrows, n_waves, err, errlen);
    if (rc) {
        state_cache_unpin_all(w->cache);
        return -1;
    }
    for (size_t i = 0; i < w->users.n; i++) {
        user_slot *u = &w->users.slots[i];
        if (!u->waves) continue;
        record_set_last_offset(state_cache_record(w->cache, u->entry), u->last_offset);
        state_cache_mark_dirty(w->cache, u->entry);
    }
    state_cache_unpin_all(w->cache);
    for (int p = 0; p < w->n_parts; p++) {
        if (!w->parts[p].touched) continue;
        w->parts[p].next = w->parts[p].batch_next;
        w->parts[p].touched = 0;
    }
    for (size_t i = 0; i < nrows; i++) w->stats->applied += w->rows[i].wave >= 0;
    w->stats->batches++;
    rd_kafka_poll(w->producer, 0);   /* serve delivery reports */
    return 0;
}

/* ---- the checkpoint in the background ---------------------------------------------------- */

/* The writer thread: changelog (records from the snapshot, then markers) -> acknowledged ->
 * one atomic RocksDB write. Touches the snapshot, the flushing cache entries' keys (neither
 * evicted nor dropped while it runs), the changelog producer (whose delivery reports it serves
 * itself, flushing it) and the store (thread-safe). */
static void *ckpt_writer(void *arg) {
    worker *w = arg;
    const size_t rs = w->record_size;
    int rc = 0;
    /* Below the event loop: on a busy machine a checkpoint lands later, events are not delayed. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10))
        LOG_D("worker", "checkpoint writer: setpriority: %s", strerror(errno));
    double t0 = mono_s();
    qsort(w->ckpt, w->ck_n, sizeof *w->ckpt, ckpt_cmp);   /* off the main thread */
    if (w->changelog_topic) {
        for (size_t i = 0; i < w->ck_n + (size_t)w->ck_nparts && !rc; i++) {
            if (i < w->ck_n) {
                const ckpt_entry *k = &w->ckpt[i];
                /* no copy: the snapshot lives until every record of it is acknowledged */
                rc = produce(w->cl_producer, w->changelog_topic, k->partition, 0, w->ck_snap + k->snap * rs, k->len,
                             k->user, k->user_len, NULL, w->ck_err, sizeof w->ck_err);
            } else {
                int32_t part = (int32_t)(i - w->ck_n);
                if (w->ck_offsets[part] < 0) continue;
                rc = produce(w->cl_producer, w->changelog_topic, part, 0, w->ck_markers[part], 8, "", 0, NULL, w->ck_err,
                             sizeof w->ck_err);
            }
        }
        await_acks(w->cl_producer, "changelog");   /* always: the snapshot must outlive its records */
        if (!rc) rc = acks_failed(atomic_load(&w->cl_failed), "changelog", w->cl_first_error, w->ck_err, sizeof w->ck_err);
    }
    double t1 = mono_s();
    if (!rc) {
        state_batch_clear(w->ck_wb);
        for (size_t i = 0; i < w->ck_n; i++) {
            const ckpt_entry *k = &w->ckpt[i];
            state_batch_put_state(w->ck_wb, k->partition, k->user, k->user_len, w->ck_snap + k->snap * rs, k->len);
        }
        for (int p = 0; p < w->ck_nparts; p++)
            if (w->ck_offsets[p] >= 0) state_batch_put_offset(w->ck_wb, p, w->ck_offsets[p]);
        rc = state_store_write(w->store, w->ck_wb, w->ck_err, sizeof w->ck_err);
    }
    w->ck_rc = rc;
    LOG_D("worker", "checkpoint (background): %zu records; changelog %.1f ms, state write %.1f ms", w->ck_n,
          (t1 - t0) * 1e3, (mono_s() - t1) * 1e3);
    atomic_store(&w->ck_done, 1);
    return NULL;
}

/* The snapshot is taken in slices, one per turn of the event loop, so that no turn stalls for
 * the whole copy (120 k records of 940 bytes took 35-50 ms in one piece). Why a record copied a
 * few batches after the cut is still right:
 *  - the offsets stored with the checkpoint are the cut's (ps->next when it began);
 *  - each record carries the offset of its user's last applied event, and replay skips events
 *    at or below it, so a record newer than the cut is never applied twice;
 *  - a record changed after its copy is dirty again (state_cache: flushing + dirty) and goes
 *    into the next checkpoint; a user first dirtied after the cut is not in this one at all;
 *  - the outputs' epoch turns only when the last slice is copied, so the writer waits for the
 *    acknowledgement of every output whose event any copied record includes.
 * ckpt_copy_slice copies up to max more records of the snapshot; the last slice turns the
 * outputs' epoch. */
static void ckpt_copy_slice(worker *w, size_t max) {
    double t0 = mono_s();
    size_t end = w->ck_n - w->ck_copied > max ? w->ck_copied + max : w->ck_n;   /* ck_n may be 0 */
    for (size_t i = w->ck_copied; i < end; i++) {
        fill_ckpt(w, i, state_cache_flush_at(w->cache, i));
        memcpy(w->ck_snap + i * w->record_size, state_cache_record(w->cache, w->ckpt[i].entry), w->ckpt[i].len);
    }
    w->ck_copied = end;
    w->ck_turns++;
    double t1 = mono_s();
    w->stats->stage_s[STAGE_STATE] += t1 - t0;
    if (end < w->ck_n) return;
    w->ck_flight_epoch = w->ck_epoch++;   /* outputs from here on belong to the next checkpoint */
    LOG_D("worker", "checkpoint: snapshot of %zu records in %d loop turns, %.1f ms", w->ck_n, w->ck_turns,
          (t1 - w->ck_t0) * 1e3);
}

/* Starts a checkpoint in the background: the cut (offsets, the dirty entries become flushing)
 * and the first slice of the snapshot. */
static int ckpt_begin(worker *w, char *err, size_t errlen) {
    state_cache *c = w->cache;
    size_t n = state_cache_dirty_count(c);
    int advanced = 0;
    for (int p = 0; p < w->n_parts; p++) advanced |= w->parts[p].next > w->parts[p].checkpointed;
    if (!n && !advanced) {
        w->last_checkpoint_s = mono_s();
        return 0;
    }
    double t0 = mono_s();
    if (reserve_ckpt(w, n)) goto oom;   /* the writer thread sorts them */
    if (n * w->record_size > w->ck_snap_cap) {
        size_t cap = w->ck_snap_cap ? w->ck_snap_cap : 1 << 20;
        while (cap < n * w->record_size) cap *= 2;
        uint8_t *p = realloc(w->ck_snap, cap);
        if (!p) goto oom;
        w->ck_snap = p, w->ck_snap_cap = cap;
    }
    if (w->n_parts > w->ck_parts_cap) {
        int64_t *o = realloc(w->ck_offsets, (size_t)w->n_parts * sizeof *o);
        if (o) w->ck_offsets = o;
        uint8_t(*m)[8] = realloc(w->ck_markers, (size_t)w->n_parts * sizeof *m);
        if (m) w->ck_markers = m;
        if (!o || !m) goto oom;
        w->ck_parts_cap = w->n_parts;
    }
    if (!w->ck_wb && !(w->ck_wb = state_batch_new())) goto oom;
    for (int p = 0; p < w->n_parts; p++) {
        part_state *ps = &w->parts[p];
        w->ck_offsets[p] = ps->next > ps->checkpointed ? ps->next : -1;
        if (w->ck_offsets[p] >= 0) changelog_marker_value(w->ck_markers[p], ps->next);
    }
    state_cache_begin_flush(c);   /* the dirty list becomes the flush list, in the same order */
    w->ck_n = n;
    w->ck_nparts = w->n_parts;
    w->ck_copied = 0, w->ck_turns = 0;
    w->ck_active = 1, w->ck_writing = 0, w->ck_rc = 0, w->ck_err[0] = 0;
    atomic_store(&w->ck_done, 0);
    w->ck_t0 = t0;
    w->stats->stage_s[STAGE_STATE] += mono_s() - t0;
    ckpt_copy_slice(w, w->s->snapshot_slice);   /* state.snapshot.slice.records */
    w->last_checkpoint_s = mono_s();
    return 0;
oom:
    snprintf(err, errlen, "out of memory for a checkpoint of %zu records", n);
    return -1;
}

/* Lands a finished flight: the entries become evictable, the offsets are stored. */
static void ckpt_complete(worker *w) {
    state_cache_end_flush(w->cache);
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < w->ck_nparts; p++) {
        if (w->ck_offsets[p] < 0) continue;
        if (w->ck_offsets[p] > w->parts[p].checkpointed) w->parts[p].checkpointed = w->ck_offsets[p];
        if (w->parts[p].owned)
            rd_kafka_topic_partition_list_add(offs, w->s->input_topic, p)->offset = w->ck_offsets[p];
    }
    if (offs->cnt) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(w->consumer, offs);
        if (e) LOG_D("worker", "storing consumer offsets: %s (the state store has them)", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(offs);
    if (w->changelog_topic) w->stats->changelog_records += (int64_t)w->ck_n;
    w->stats->checkpoints++;
    w->ck_active = 0;
    LOG_D("worker", "checkpoint: %zu records durable %.1f ms after the snapshot", w->ck_n, (mono_s() - w->ck_t0) * 1e3);
}

/* Moves the flight on: starts the writer once the epoch's outputs are acknowledged, lands it
 * when the writer is done. block: until it has landed. */
static int ckpt_progress(worker *w, int block, char *err, size_t errlen) {
    double started = mono_s(), warned = started;
    while (w->ck_active) {
        if (w->ck_copied < w->ck_n) {   /* the snapshot is still being copied */
            ckpt_copy_slice(w, block ? SIZE_MAX : w->s->snapshot_slice);
            if (w->ck_copied < w->ck_n) return 0;
        }
        rd_kafka_poll(w->producer, block ? 5 : 0);   /* delivery reports */
        if (!w->ck_writing) {
            if (acks_failed(w->dr_failed, "output/dead-letter", w->dr_first_error, err, errlen)) return -1;
            if (atomic_load(&w->ck_pending[w->ck_flight_epoch & 1u]) == 0) {
                if (pthread_create(&w->ck_thread, NULL, ckpt_writer, w)) {
                    snprintf(err, errlen, "cannot start the checkpoint writer thread");
                    return -1;
                }
                w->ck_writing = 1;
            }
        }
        if (w->ck_writing && atomic_load(&w->ck_done)) {
            pthread_join(w->ck_thread, NULL);
            w->ck_writing = 0;
            if (w->ck_rc) {
                w->ck_active = 0;
                snprintf(err, errlen, "%s", w->ck_err);
                return -1;
            }
            ckpt_complete(w);
            return 0;
        }
        if (!block) return 0;
        if (mono_s() - warned >= 10) {
            warned = mono_s();
            LOG_W("worker", "still waiting for a checkpoint to land (%.0f s; %d records not yet acknowledged)",
                  warned - started, rd_kafka_outq_len(w->producer));
        }
    }
    return 0;
}

int worker_checkpoint_finish(worker *w, char *err, size_t errlen) {
    if (!w->ck_active) return 0;
    double t0 = mono_s();
    int rc = ckpt_progress(w, 1, err, errlen);
    w->stats->stage_s[STAGE_STATE] += mono_s() - t0;
    return rc;
}

void worker_checkpoint_abandon(worker *w) {
    if (w->ck_writing) {   /* it flushes its own producer: waiting for it needs nothing from us */
        pthread_join(w->ck_thread, NULL);
        w->ck_writing = 0;
    }
    w->ck_active = 0;
}

int worker_maybe_checkpoint(worker *w, char *err, size_t errlen) {
    if (w->ck_active) return ckpt_progress(w, 0, err, errlen);
    if (mono_s() - w->last_checkpoint_s < w->s->commit_interval_s &&
        state_cache_dirty_count(w->cache) < w->max_dirty)
        return 0;
    return ckpt_begin(w, err, errlen);
}
