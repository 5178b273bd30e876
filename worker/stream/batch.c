/* batch: one micro-batch, end to end.
 *
 *   classify + decode (bad records to the dead-letter topic, redeliveries and records of
 *   partitions no longer ours skipped) -> find the users' records (the state cache, then one
 *   store multi-get for the misses, else a fresh state) -> plan waves (each user at most once
 *   per wave, its events in offset order; events a user's state already holds get none) ->
 *   one batched model step per wave -> encode + produce the outputs.
 * Nothing is waited for: the records change in the cache only, and the partitions' applied
 * offsets move in memory. The checkpoint (checkpoint.h) makes them durable later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "item_consumer.h"
#include "log.h"
#include "worker_internal.h"
#include "worker_record.h"

static int grow_get_scratch(worker *w, size_t n) {
    if (n <= w->b.get_cap) return 0;
    size_t c = w->b.get_cap ? w->b.get_cap : 256;
    while (c < n) c *= 2;
    void *a = realloc(w->b.get_parts, c * sizeof *w->b.get_parts);
    if (a) w->b.get_parts = a;
    void *b = realloc(w->b.get_users, c * sizeof *w->b.get_users);
    if (b) w->b.get_users = b;
    void *d = realloc(w->b.get_lens, c * sizeof *w->b.get_lens);
    if (d) w->b.get_lens = d;
    void *e = realloc(w->b.get_bufs, c * sizeof *w->b.get_bufs);
    if (e) w->b.get_bufs = e;
    void *f = realloc(w->b.get_found, c * sizeof *w->b.get_found);
    if (f) w->b.get_found = f;
    void *g = realloc(w->b.get_slots, c * sizeof *w->b.get_slots);
    if (g) w->b.get_slots = g;
    void *h = realloc(w->b.get_malformed, c * sizeof *w->b.get_malformed);
    if (h) w->b.get_malformed = h;
    if (!a || !b || !d || !e || !f || !g || !h) return -1;
    w->b.get_cap = c;
    return 0;
}

static void handle_event(worker *w, const rd_kafka_message_t *m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        part_state *p = partitions_get(&w->parts, m->partition);
        if (p && p->owned) p->eof = 1;
        return;
    }
    LOG_WF("worker", LOG_AT(LF_TOPIC(m->rkt ? rd_kafka_topic_name(m->rkt) : NULL), LF_PARTITION(m->partition),
                            LF_ERROR(rd_kafka_err2name(m->err))),
           "consumer: %s [%d]: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : "-", m->partition,
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
        part_state *p = partitions_get(&w->parts, m->partition);
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
            LOG_WF("worker", LOG_AT(LF_TOPIC(w->s->input_topic), LF_PARTITION(m->partition), LF_OFFSET(m->offset)),
                   "%s [%d]: offset gap: expected %lld, got %lld", w->s->input_topic, m->partition,
                  (long long)expected, (long long)m->offset);
        }
        p->touched = 1;
        p->batch_next = m->offset + 1;
        p->eof = 0;

        batch_row *row = &w->b.rows[*nrows];
        char reason[1024];
        codec_status st = serde_decode_user_action(w->in, m->payload, m->len, &row->ev, reason, sizeof reason);
        if (st == CODEC_E_REGISTRY && serde_in_waits(w->in)) {
            snprintf(err, errlen, "%s [%d] offset %lld: %s; stopping (schema.registry.unavailable=wait): nothing from "
                     "this record on is committed, a restart reads it again", w->s->input_topic, m->partition,
                     (long long)m->offset, reason);
            return -1;
        }
        if (st != CODEC_OK) {
            if (dlq_produce(w, m, st, reason, err, errlen)) return -1;
            w->stats->dead_lettered++;
            w->stats->dlq_by_class[st]++;
            continue;
        }
        long slot = user_table_upsert(&w->b.users, m->partition, row->ev.user_id, row->ev.user_id_len);
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
static int cache_insert(worker *w, int32_t partition, const char *user, size_t len, long *entry, char *err,
                        size_t errlen) {
    long e = state_cache_insert(w->cache, partition, user, len);
    if (e == STATE_CACHE_FULL) { /* dirty or in flight: evictable once checkpointed */
        if (checkpoint_now(w->ck, err, errlen)) return -1;
        e = state_cache_insert(w->cache, partition, user, len);
        if (e == STATE_CACHE_FULL) {
            snprintf(err, errlen, "state cache of %zu entries cannot hold one batch's users; raise state.cache.bytes",
                     state_cache_capacity(w->cache));
            return -1;
        }
    }
    if (e == STATE_CACHE_NOMEM) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *entry = e;
    return 0;
}

/* A record read back from the store is checked like one from the changelog (restore.c): one
 * that is not a state of this model, or claims an offset the input has not reached, is
 * quarantined and the user starts again (*found becomes 0). */
static int check_stored_record(worker *w, const user_slot *u, void *rec, int *found, size_t malformed_len, char *err,
                               size_t errlen) {
    char why[256];
    if (*found == STATE_STORE_MALFORMED) {
        snprintf(why, sizeof why, "a stored value of %zu bytes, where this model's records are %d to %zu",
                 malformed_len, RECORD_MIN, w->record_size);
    } else if (*found == 1) {
        const part_state *ps = &w->parts.p[u->partition];
        int64_t end = ps->input_end < 0 ? -1 : ps->input_end > ps->next ? ps->input_end : ps->next;
        if (!record_check_loaded(w->m, rec, end, why, sizeof why)) return 0;
    } else {
        return 0;
    }
    *found = 0;
    return restore_quarantine(w, "(state store)", u->partition, -1, u->user, u->user_len, rec,
                              record_stored_len(rec, w->record_size), why, err, errlen);
}

/* Finds every user's record: in the cache, else in RocksDB, else a fresh state. */
static int resolve_users(worker *w, char *err, size_t errlen) {
    user_table *t = &w->b.users;
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
        w->b.get_parts[n_miss] = u->partition;
        w->b.get_users[n_miss] = u->user;
        w->b.get_lens[n_miss] = u->user_len;
        w->b.get_bufs[n_miss] = user_table_state(t, i);   /* scratch for the read */
        w->b.get_slots[n_miss] = (int32_t)i;
        n_miss++;
    }
    if (n_miss && state_store_multi_get(w->store, n_miss, w->b.get_parts, w->b.get_users, w->b.get_lens, w->b.get_bufs,
                                        w->record_size, w->b.get_found, w->b.get_malformed, err, errlen))
        return -1;
    for (size_t k = 0; k < n_miss; k++) {
        user_slot *u = &t->slots[w->b.get_slots[k]];
        void *rec = w->b.get_bufs[k];
        if (check_stored_record(w, u, rec, &w->b.get_found[k], w->b.get_malformed[k], err, errlen)) return -1;
        u->found = w->b.get_found[k] == 1;
        if (!u->found) {
            record_set_last_offset(rec, -1);
            model_state_init(w->m, record_blob(rec));
        }
        if (cache_insert(w, u->partition, u->user, u->user_len, &u->entry, err, errlen)) return -1;
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
        batch_row *r = &w->b.rows[i];
        user_slot *u = &w->b.users.slots[r->slot];
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
    return state_cache_record(w->cache, w->b.users.slots[r->slot].entry);
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
        .top_items = w->s->top_k ? w->b.top + (size_t)j * (size_t)w->s->top_k : NULL,
        .n_top_items = w->s->top_k ? w->b.n_top[j] : 0,
    };
    for (;;) {
        *len = codec_encode_interest_vector(&w->out, &iv, w->b.enc_buf + *used, w->b.enc_cap - *used);
        if (*used + *len <= w->b.enc_cap) break;
        size_t cap = (w->b.enc_cap + *len) * 2;
        uint8_t *nb = realloc(w->b.enc_buf, cap);
        if (!nb) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        w->b.enc_buf = nb;
        w->b.enc_cap = cap;
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
    if (w->items ? item_consumer_score(w->items, n, w->b.step_vec + (size_t)j0 * (size_t)D, w->b.scores, err, errlen)
                 : model_score_items_batch(w->m, n, w->b.step_vec + (size_t)j0 * (size_t)D, w->b.scores, err, errlen))
        return -1; /* a text model ranks with the text part of the scoring rows */
    for (int j = 0; j < n; j++) {
        const batch_row *r = &w->b.rows[w->b.wave_order[first + (size_t)(j0 + j)]];
        int32_t seen[1024], idx[256];
        float val[256];
        int n_seen = model_state_items(w->m, record_blob(row_record(w, r)), seen);
        int got = model_top_k(w->b.scores + (size_t)j * (size_t)N, N, K, seen, n_seen, idx, val);
        codec_top_item *t = w->b.top + (size_t)(j0 + j) * (size_t)K;
        for (int k = 0; k < got; k++) {
            const char *id = model_item_id(w->m, idx[k]);
            t[k] = (codec_top_item){id, strlen(id), val[k]};
        }
        w->b.n_top[j0 + j] = got;
    }
    return 0;
}

/* Encodes, then produces, the outputs of one model step (two timers per chunk, not per event). */
static int produce_outputs(worker *w, size_t first, int n, char *err, size_t errlen) {
    const int D = w->m->cfg.out_dim;
    double t0 = clock_mono_s();
    for (int j0 = 0; w->s->top_k && j0 < n; j0 += TOPK_ROWS)
        if (top_items(w, first, j0, n - j0 < TOPK_ROWS ? n - j0 : TOPK_ROWS, err, errlen)) return -1;
    size_t used = 0;
    for (int j = 0; j < n; j++) {
        const batch_row *r = &w->b.rows[w->b.wave_order[first + (size_t)j]];
        if (encode_output(w, r, j, w->b.step_vec + (size_t)j * (size_t)D, w->b.step_drift[j], &used, &w->b.enc_len[j],
                          err, errlen))
            return -1;
    }
    double t1 = clock_mono_s();
    w->stats->stage_s[STAGE_ENCODE] += t1 - t0;
    size_t off = 0;
    for (int j = 0; j < n; j++) {
        const batch_row *r = &w->b.rows[w->b.wave_order[first + (size_t)j]];
        /* The input's timestamp rides along to the delivery report: event-to-output latency. */
        rd_kafka_timestamp_type_t tt;
        int64_t in_ts = rd_kafka_message_timestamp(r->msg, &tt);
        void *tag = checkpoint_tag_output(w->ck, in_ts);
        if (worker_io_produce(w, w->k.out_topic, w->b.enc_buf + off, w->b.enc_len[j], r->ev.user_id,
                              r->ev.user_id_len, tag, err, errlen)) {
            checkpoint_untag_output(w->ck, tag);
            return -1;
        }
        off += w->b.enc_len[j];
    }
    w->stats->stage_s[STAGE_PRODUCE] += clock_mono_s() - t1;
    return 0;
}

/* Runs every wave through the model, producing one output per applied event. */
static int run_waves(worker *w, size_t nrows, int n_waves, char *err, size_t errlen) {
    /* Counting sort of rows by wave; within a wave, batch order is kept. */
    memset(w->b.wave_start, 0, (size_t)(n_waves + 1) * sizeof *w->b.wave_start);
    for (size_t i = 0; i < nrows; i++)
        if (w->b.rows[i].wave >= 0) w->b.wave_start[w->b.rows[i].wave + 1]++;
    for (int k = 0; k < n_waves; k++) w->b.wave_start[k + 1] += w->b.wave_start[k];
    for (size_t i = 0; i < nrows; i++)
        if (w->b.rows[i].wave >= 0) w->b.wave_order[w->b.wave_start[w->b.rows[i].wave]++] = (int32_t)i;
    /* wave_start[k] now holds the end of wave k. */
    size_t begin = 0;
    for (int k = 0; k < n_waves; k++) {
        size_t end = (size_t)w->b.wave_start[k];
        for (size_t c = begin; c < end; c += (size_t)w->runner_batch) {
            int n = (int)((end - c) < (size_t)w->runner_batch ? (end - c) : (size_t)w->runner_batch);
            double t0 = clock_mono_s();
            for (int j = 0; j < n; j++) {
                const batch_row *r = &w->b.rows[w->b.wave_order[c + (size_t)j]];
                w->b.step_states[j] = record_blob(row_record(w, r));
                w->b.step_events[j] = (model_event){
                    .item = model_item_index(w->m, r->ev.item_id, r->ev.item_id_len),
                    .action = model_action_index(w->m, r->ev.action, r->ev.action_len),
                    .ts = r->ev.ts,
                    .value = r->ev.value,
                    .has_value = r->ev.has_value,
                };
            }
            if (w->items) { /* text model: item keys, the events' own texts encoded (item_consumer.h) */
                const user_action *ua[256]; /* runner_batch <= 256 */
                for (int j = 0; j < n; j++) ua[j] = &w->b.rows[w->b.wave_order[c + (size_t)j]].ev;
                if (item_consumer_step_events(w->items, n, ua, w->b.step_events, err, errlen)) return -1;
            }
            if (model_step(w->runner, n, w->b.step_states, w->b.step_events, w->b.step_vec, w->b.step_drift, err, errlen))
                return -1;
            double us = (clock_mono_s() - t0) * 1e6;
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

int batch_apply(worker *w, rd_kafka_message_t **msgs, size_t n, char *err, size_t errlen) {
    user_table_clear(&w->b.users);
    int b = 0;
    while (b < BATCH_SIZE_BUCKETS - 1 && n > ((size_t)1 << b)) b++;
    w->stats->batch_size_hist[b]++;
    double t0 = clock_mono_s();
    size_t nrows;
    if (classify(w, msgs, n, &nrows, err, errlen)) return -1;
    double t1 = clock_mono_s();
    w->stats->stage_s[STAGE_DECODE] += t1 - t0;
    int touched = 0;
    for (int p = 0; p < w->parts.n; p++) touched |= w->parts.p[p].touched;
    if (!touched) return 0;   /* only events and skipped records */

    int rc = resolve_users(w, err, errlen);
    w->stats->stage_s[STAGE_STATE] += clock_mono_s() - t1;
    int n_waves = rc ? 0 : plan_waves(w, nrows);
    if (!rc && n_waves) rc = run_waves(w, nrows, n_waves, err, errlen);
    if (rc) {
        state_cache_unpin_all(w->cache);
        return -1;
    }
    for (size_t i = 0; i < w->b.users.n; i++) {
        user_slot *u = &w->b.users.slots[i];
        if (!u->waves) continue;
        record_set_last_offset(state_cache_record(w->cache, u->entry), u->last_offset);
        state_cache_mark_dirty(w->cache, u->entry);
    }
    state_cache_unpin_all(w->cache);
    for (int p = 0; p < w->parts.n; p++) {
        part_state *ps = &w->parts.p[p];
        if (!ps->touched) continue;
        ps->next = ps->batch_next;
        ps->touched = 0;
    }
    for (size_t i = 0; i < nrows; i++) w->stats->applied += w->b.rows[i].wave >= 0;
    w->stats->batches++;
    rd_kafka_poll(w->k.producer, 0); /* serve delivery reports */
    return 0;
}

int batch_alloc(worker *w) {
    batch_scratch *b = &w->b;
    size_t B = (size_t)w->s->batch_max_events;
    int R = w->runner_batch;
    size_t D = (size_t)w->m->cfg.out_dim;
    b->msgs = calloc(B, sizeof *b->msgs);
    b->rows = calloc(B, sizeof *b->rows);
    b->wave_order = calloc(B, sizeof *b->wave_order);
    b->wave_start = calloc(B + 1, sizeof *b->wave_start);
    b->step_states = calloc((size_t)R, sizeof *b->step_states);
    b->step_events = calloc((size_t)R, sizeof *b->step_events);
    b->step_vec = calloc((size_t)R * D, sizeof *b->step_vec);
    b->step_drift = calloc((size_t)R, sizeof *b->step_drift);
    b->enc_cap = (size_t)R * (1024 + D * 4);
    b->enc_buf = malloc(b->enc_cap);
    b->enc_len = calloc((size_t)R, sizeof *b->enc_len);
    if (w->s->top_k) {
        b->scores = malloc((size_t)TOPK_ROWS * (size_t)w->m->cfg.n_items * sizeof *b->scores);
        b->top = calloc((size_t)R * (size_t)w->s->top_k, sizeof *b->top);
        b->n_top = calloc((size_t)R, sizeof *b->n_top);
        if (!b->scores || !b->top || !b->n_top) return -1;
    }
    if (!b->msgs || !b->rows || !b->wave_order || !b->wave_start || !b->step_states || !b->step_events ||
        !b->step_vec || !b->step_drift || !b->enc_buf || !b->enc_len)
        return -1;
    return user_table_init(&b->users, w->record_size, B);
}

void batch_free(worker *w) {
    batch_scratch *b = &w->b;
    user_table_free(&b->users);
    free(b->msgs);
    free(b->rows);
    free(b->wave_order);
    free(b->wave_start);
    free(b->step_states);
    free(b->step_events);
    free(b->step_vec);
    free(b->step_drift);
    free(b->enc_buf);
    free(b->enc_len);
    free(b->scores);
    free(b->top);
    free(b->n_top);
    free(b->get_parts);
    free(b->get_users);
    free(b->get_lens);
    free(b->get_bufs);
    free(b->get_found);
    free(b->get_slots);
    free(b->get_malformed);
    *b = (batch_scratch){0};
}
