/* apply: one micro-batch, and the checkpoint that makes batches durable.
 *
 * A batch: classify + decode (bad records to the dead-letter topic) -> find the users' records
 * (the state cache, then one RocksDB multi-get for the misses) -> plan waves (skipping events a
 * user's state already holds) -> model steps -> produce the outputs. Nothing is waited for: the
 * records change in the cache only, and the partitions' applied offsets move in memory.
 *
 * A checkpoint (every commit.interval.ms, when the cache needs room, on revocation and on stop):
 *   wait until every output and dead letter so far is acknowledged
 *   -> changelog: every dirty record, then each advanced partition's marker -> acknowledged
 *   -> one atomic RocksDB write: the dirty records + the applied offsets
 *   -> store the consumer offsets.
 * So what is durable (RocksDB, changelog) never holds the effect of an event whose output was
 * not acknowledged; a crash between checkpoints re-applies from the last one (outputs repeat,
 * states do not).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Produces one record; waits out a full local queue. */
static int produce(worker *w, rd_kafka_topic_t *topic, int32_t partition, const void *val, size_t len,
                   const void *key, size_t key_len, void *opaque, char *err, size_t errlen) {
    for (;;) {
        if (rd_kafka_produce(topic, partition, RD_KAFKA_MSG_F_COPY, (void *)val, len, key, key_len, opaque) == 0)
            return 0;
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(err, errlen, "produce to %s: %s", rd_kafka_topic_name(topic), rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(w->producer, 10);
    }
}

/* Waits until the broker acknowledged every record produced so far. */
static int await_acks(worker *w, const char *what, char *err, size_t errlen) {
    int waited_s = 0;
    while (rd_kafka_flush(w->producer, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        if (++waited_s % 10 == 0)
            LOG_W("worker", "still waiting for the broker to acknowledge %d %s records (%d s)",
                  rd_kafka_outq_len(w->producer), what, waited_s);
    }
    if (w->dr_failed) {
        snprintf(err, errlen, "%lld %s records were not acknowledged (first: %s); nothing since the last "
                 "checkpoint is written, it will be applied again on restart",
                 (long long)w->dr_failed, what, w->dr_first_error);
        return -1;
    }
    return 0;
}

/* ---- the checkpoint --------------------------------------------------------------------- */

int worker_checkpoint(worker *w, char *err, size_t errlen) {
    double t0 = mono_s();
    state_cache *c = w->cache;
    size_t n_dirty = state_cache_dirty_count(c);
    int advanced = 0;
    for (int p = 0; p < w->n_parts; p++) advanced |= w->parts[p].next > w->parts[p].checkpointed;
    if (!n_dirty && !advanced) return 0;

    if (await_acks(w, "output/dead-letter", err, errlen)) return -1;
    double t1 = mono_s();
    w->stats->stage_s[STAGE_PRODUCE] += t1 - t0;

    if (w->changelog_topic) {
        for (size_t i = 0; i < n_dirty; i++) {
            long e = state_cache_dirty_at(c, i);
            size_t ulen;
            const char *user = state_cache_user(c, e, &ulen);
            if (produce(w, w->changelog_topic, state_cache_partition(c, e), state_cache_record(c, e), w->record_size,
                        user, ulen, NULL, err, errlen))
                return -1;
        }
        for (int p = 0; p < w->n_parts; p++) {
            if (w->parts[p].next <= w->parts[p].checkpointed) continue;
            uint8_t marker[8];
            changelog_marker_value(marker, w->parts[p].next);
            if (produce(w, w->changelog_topic, p, marker, sizeof marker, "", 0, NULL, err, errlen)) return -1;
        }
        if (await_acks(w, "changelog", err, errlen)) return -1;
        w->stats->changelog_records += (int64_t)n_dirty;
    }
    double t2 = mono_s();
    w->stats->stage_s[STAGE_CHANGELOG] += t2 - t1;

    state_batch_clear(w->wb);
    for (size_t i = 0; i < n_dirty; i++) {
        long e = state_cache_dirty_at(c, i);
        size_t ulen;
        const char *user = state_cache_user(c, e, &ulen);
        state_batch_put_state(w->wb, state_cache_partition(c, e), user, ulen, state_cache_record(c, e), w->record_size);
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
    w->stats->stage_s[STAGE_STATE] += mono_s() - t2;
    w->last_checkpoint_s = mono_s();
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
    for (size_t i = 0; i < t->n; i++) {
        user_slot *u = &t->slots[i];
        u->entry = state_cache_find(w->cache, u->partition, u->user, u->user_len);
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
        if (produce(w, w->out_topic, RD_KAFKA_PARTITION_UA, w->enc_buf + off, w->enc_len[j], r->ev.user_id,
                    r->ev.user_id_len, (void *)(intptr_t)(in_ts > 0 ? in_ts : 0), err, errlen))
            return -1;
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

int worker_maybe_checkpoint(worker *w, char *err, size_t errlen) {
    if (mono_s() - w->last_checkpoint_s < w->s->commit_interval_s &&
        state_cache_dirty_count(w->cache) < w->max_dirty)
        return 0;
    return worker_checkpoint(w, err, errlen);
}
