/* apply: one micro-batch, end to end.
 *
 *   classify + decode (bad records to the dead-letter topic) -> load the users' records
 *   -> plan waves (skipping events a user's state already holds) -> model steps -> outputs
 *   -> wait for acknowledgements -> changelog records + markers -> wait for acknowledgements
 *   -> one atomic RocksDB write (records + next offsets) -> store consumer offsets.
 *
 * Nothing reaches the changelog before every output and dead letter of the batch is
 * acknowledged, and nothing reaches RocksDB before the changelog is; if anything fails on the
 * way, the batch is applied again after a restart (outputs repeat, states do not).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "changelog.h"
#include "log.h"
#include "worker_internal.h"
#include "worker_record.h"

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
    if (!a || !b || !d || !e || !f) return -1;
    w->get_cap = c;
    return 0;
}

/* Loads (or initialises) the record of every user of the batch. */
static int load_records(worker *w, char *err, size_t errlen) {
    user_table *t = &w->users;
    if (grow_get_scratch(w, t->n)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < t->n; i++) {
        w->get_parts[i] = t->slots[i].partition;
        w->get_users[i] = t->slots[i].user;
        w->get_lens[i] = t->slots[i].user_len;
        w->get_bufs[i] = user_table_state(t, i);
    }
    if (state_store_multi_get(w->store, t->n, w->get_parts, w->get_users, w->get_lens, w->get_bufs,
                              w->record_size, w->get_found, err, errlen))
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        void *rec = user_table_state(t, i);
        t->slots[i].found = w->get_found[i];
        if (!w->get_found[i]) {
            record_set_last_offset(rec, -1);
            model_state_init(w->m, record_blob(rec));
        } else if (model_state_check(w->m, record_blob(rec), err, errlen)) {
            char inner[200];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, errlen, "stored state of user '%.*s' (partition %d): %s",
                     (int)t->slots[i].user_len, t->slots[i].user, t->slots[i].partition, inner);
            return -1;
        }
        t->slots[i].last_offset = record_last_offset(rec);
    }
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

/* Produces one record; waits out a full local queue. */
static int produce(worker *w, rd_kafka_topic_t *topic, int32_t partition, const void *val, size_t len,
                   const void *key, size_t key_len, char *err, size_t errlen) {
    for (;;) {
        if (rd_kafka_produce(topic, partition, RD_KAFKA_MSG_F_COPY, (void *)val, len, key, key_len, NULL) == 0)
            return 0;
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(err, errlen, "produce to %s: %s", rd_kafka_topic_name(topic), rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(w->producer, 10);
    }
}

static int produce_output(worker *w, const batch_row *row, const float *vec, float drift, char *err,
                          size_t errlen) {
    const void *rec = user_table_state(&w->users, (size_t)row->slot);
    interest_vector iv = {
        .user_id = row->ev.user_id, .user_id_len = row->ev.user_id_len,
        .ts = row->ev.ts,
        .events = model_state_events(record_blob_c(rec)),
        .vector = vec, .dim = w->m->cfg.out_dim,
        .drift = drift,
        .model = w->m->model_id, .model_len = strlen(w->m->model_id),
        .source_partition = row->msg->partition,
        .source_offset = row->msg->offset,
    };
    size_t len = codec_encode_interest_vector(&w->s->out, &iv, w->enc_buf, w->enc_cap);
    if (len > w->enc_cap) {
        uint8_t *nb = realloc(w->enc_buf, len * 2);
        if (!nb) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        w->enc_buf = nb;
        w->enc_cap = len * 2;
        len = codec_encode_interest_vector(&w->s->out, &iv, w->enc_buf, w->enc_cap);
    }
    return produce(w, w->out_topic, RD_KAFKA_PARTITION_UA, w->enc_buf, len, row->ev.user_id, row->ev.user_id_len,
                   err, errlen);
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
    const int D = w->m->cfg.out_dim;
    size_t begin = 0;
    for (int k = 0; k < n_waves; k++) {
        size_t end = (size_t)w->wave_start[k];
        for (size_t c = begin; c < end; c += (size_t)w->runner_batch) {
            int n = (int)((end - c) < (size_t)w->runner_batch ? (end - c) : (size_t)w->runner_batch);
            for (int j = 0; j < n; j++) {
                const batch_row *r = &w->rows[w->wave_order[c + (size_t)j]];
                w->step_states[j] = record_blob(user_table_state(&w->users, (size_t)r->slot));
                w->step_events[j] = (model_event){
                    .item = model_item_index(w->m, r->ev.item_id, r->ev.item_id_len),
                    .action = model_action_index(w->m, r->ev.action, r->ev.action_len),
                    .ts = r->ev.ts,
                    .value = r->ev.value,
                    .has_value = r->ev.has_value,
                };
            }
            if (model_step(w->runner, n, w->step_states, w->step_events, w->step_vec, w->step_drift, err, errlen))
                return -1;
            for (int j = 0; j < n; j++) {
                const batch_row *r = &w->rows[w->wave_order[c + (size_t)j]];
                if (produce_output(w, r, w->step_vec + (size_t)j * (size_t)D, w->step_drift[j], err, errlen))
                    return -1;
            }
        }
        begin = end;
        w->stats->waves++;
    }
    return 0;
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
        snprintf(err, errlen, "%lld %s records were not acknowledged (first: %s); the batch's state is "
                 "not written and will be applied again on restart", (long long)w->dr_failed, what, w->dr_first_error);
        return -1;
    }
    return 0;
}

/* Every changed user's record, then each touched partition's marker, to the changelog. */
static int write_changelog(worker *w, char *err, size_t errlen) {
    for (size_t i = 0; i < w->users.n; i++) {
        const user_slot *u = &w->users.slots[i];
        if (!u->waves) continue;
        if (produce(w, w->changelog_topic, u->partition, user_table_state(&w->users, i), w->record_size, u->user,
                    u->user_len, err, errlen))
            return -1;
        w->stats->changelog_records++;
    }
    for (int p = 0; p < w->n_parts; p++) {
        if (!w->parts[p].touched) continue;
        uint8_t marker[8];
        changelog_marker_value(marker, w->parts[p].batch_next);
        if (produce(w, w->changelog_topic, p, marker, sizeof marker, "", 0, err, errlen)) return -1;
    }
    return await_acks(w, "changelog", err, errlen);
}

/* Writes the batch's changed records and next offsets in one atomic write, then stores the
 * offsets for the background commit to Kafka. */
static int commit_batch(worker *w, char *err, size_t errlen) {
    state_batch_clear(w->wb);
    for (size_t i = 0; i < w->users.n; i++) {
        const user_slot *u = &w->users.slots[i];
        if (!u->waves) continue;
        state_batch_put_state(w->wb, u->partition, u->user, u->user_len, user_table_state(&w->users, i),
                              w->record_size);
    }
    rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < w->n_parts; p++) {
        if (!w->parts[p].touched) continue;
        state_batch_put_offset(w->wb, p, w->parts[p].batch_next);
        rd_kafka_topic_partition_list_add(offs, w->s->input_topic, p)->offset = w->parts[p].batch_next;
    }
    int rc = state_store_write(w->store, w->wb, err, errlen);
    if (rc == 0) {
        for (int p = 0; p < w->n_parts; p++) {
            if (!w->parts[p].touched) continue;
            w->parts[p].next = w->parts[p].batch_next;
            w->parts[p].touched = 0;
        }
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(w->consumer, offs);
        if (e) LOG_W("worker", "storing consumer offsets: %s (state store has them)", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(offs);
    return rc;
}

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

int apply_batch(worker *w, rd_kafka_message_t **msgs, size_t n, char *err, size_t errlen) {
    user_table_clear(&w->users);
    w->dr_failed = 0;
    w->dr_first_error[0] = 0;
    size_t nrows;
    if (classify(w, msgs, n, &nrows, err, errlen)) return -1;
    int touched = 0;
    for (int p = 0; p < w->n_parts; p++) touched |= w->parts[p].touched;
    if (!touched) return 0;   /* only events and skipped records: nothing to write */

    if (load_records(w, err, errlen)) return -1;
    int n_waves = plan_waves(w, nrows);
    if (n_waves && run_waves(w, nrows, n_waves, err, errlen)) return -1;
    for (size_t i = 0; i < w->users.n; i++)
        if (w->users.slots[i].waves) record_set_last_offset(user_table_state(&w->users, i), w->users.slots[i].last_offset);
    if (await_acks(w, "output/dead-letter", err, errlen)) return -1;
    if (w->changelog_topic && write_changelog(w, err, errlen)) return -1;
    if (commit_batch(w, err, errlen)) return -1;
    for (size_t i = 0; i < nrows; i++) w->stats->applied += w->rows[i].wave >= 0;
    w->stats->batches++;
    return 0;
}
