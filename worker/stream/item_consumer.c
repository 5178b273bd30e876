/* item_consumer: the items topic as a global table of text vectors, and the events' own texts.
 * See item_consumer.h; docs/text.md has the design and the costs.
 *
 * One poll: decode every record (a bad one is logged and skipped: the catalogue is not the event
 * stream, there is no dead-letter topic for it), keep the last record of each item, drop those
 * whose text hash the table already has, encode the rest in one encoder call, then one atomic
 * RocksDB write of their vectors and the partitions' next offsets, then the in-memory table and
 * the runner's cache. A crash between the write and the table only loses what the next start
 * loads from RocksDB anyway.
 */
#include "item_consumer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "clock.h"
#include "item_codec.h"
#include "kafka_clients.h"
#include "log.h"
#include "stop_signal.h"
#include "use_encoder.h"

#define POLL_MAX 1024          /* records per poll between batches */
#define CATCH_UP_IDLE_MS 30000 /* no progress for this long while catching up: give up */

typedef struct {
    uint64_t key, hash;
    char *id, *text;
    size_t id_len, text_len;
} pending;

struct item_consumer {
    use_encoder *enc;
    item_table *table;
    state_store *store;
    state_batch *wb;
    model_runner *runner;
    rd_kafka_t *rk;
    char *topic;
    serde_in *in;          /* not owned */
    int n_parts;
    int64_t *next;         /* per partition: next offset to read (-1: none read) */
    int64_t *stored;       /* per partition: next offset as last written to RocksDB */
    pending *pend;
    size_t n_pend, cap_pend;
    size_t pend_bytes, pend_max_bytes; /* the pending texts' and ids' bytes, and their budget */
    float *vec;            /* (cap_vec, USE_DIM) encoder output */
    size_t cap_vec;
    float *ev_vec;         /* (max_rows, USE_DIM) events' texts of one step */
    const char **ev_text;
    size_t *ev_len;
    int *ev_row;
    int max_rows;
    const model *m;
    float *S, *bias;       /* (n_items, D), (n_items): scoring rows with the text part (scoring head only) */
    item_consumer_stats st;
};

static void clear_pending(item_consumer *ic) {
    for (size_t i = 0; i < ic->n_pend; i++) free(ic->pend[i].id), free(ic->pend[i].text);
    ic->n_pend = 0;
    ic->pend_bytes = 0;
}

void item_consumer_close(item_consumer *ic) {
    if (!ic) return;
    if (ic->st.records || ic->st.event_texts)
        LOG_I("items", "text: %lld catalogue records (%lld encoded in %.2f s, %lld unchanged, %lld bad), %lld event texts "
              "encoded in %.2f s", (long long)ic->st.records, (long long)ic->st.encoded, ic->st.encode_s,
              (long long)ic->st.unchanged, (long long)ic->st.bad, (long long)ic->st.event_texts, ic->st.event_encode_s);
    if (ic->rk) {
        rd_kafka_consumer_close(ic->rk);
        rd_kafka_destroy(ic->rk);
    }
    clear_pending(ic);
    free(ic->pend);
    use_encoder_free(ic->enc);
    item_table_free(ic->table);
    state_batch_free(ic->wb);
    free(ic->topic), free(ic->next), free(ic->stored), free(ic->vec);
    free(ic->ev_vec), free(ic->ev_text), free(ic->ev_len), free(ic->ev_row);
    free(ic->S), free(ic->bias);
    free(ic);
}

/* The scoring row of vocabulary item i with its current text. */
static int score_row(item_consumer *ic, int32_t i, char *err, size_t errlen) {
    const char *id = model_item_id(ic->m, i);
    const float *t = item_table_get(ic->table, model_item_key(id, strlen(id)));
    return model_score_rows(ic->m, 1, &i, &t, ic->S + (size_t)i * ic->m->cfg.out_dim, ic->bias + i, err, errlen);
}

int item_consumer_score(item_consumer *ic, int n, const float *U, float *scores, char *err, size_t errlen) {
    const int N = ic->m->cfg.n_items;
    if (!ic->S) return snprintf(err, errlen, "model %s has no scoring head", ic->m->model_id), -1;
    if (model_score_with(ic->m, n, U, N, ic->S, ic->bias, scores, err, errlen)) return -1;
    for (int i = 0; i < n; i++) scores[(size_t)i * N] = -INFINITY;
    return 0;
}


static int open_consumer(item_consumer *ic, const item_consumer_opts *o, const config *c, char *err, size_t errlen) {
    const char *defaults[] = {"group.id", "ievo-items-reader", "enable.auto.commit", "false",
                              "enable.partition.eof", "true", "auto.offset.reset", "earliest",
                              "fetch.wait.max.ms", "50", NULL};
    char kerr[512];
    rd_kafka_conf_t *conf = kafka_conf_for(c, KAFKA_CONSUMER, defaults, o->our_keys, err, errlen);
    if (!conf) return -1;
    /* never a group member: a private group id whatever the worker's is, offsets never committed */
    if (rd_kafka_conf_set(conf, "group.id", "ievo-items-reader", kerr, sizeof kerr) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", kerr, sizeof kerr) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", kerr, sizeof kerr) ||
        rd_kafka_conf_set(conf, "partition.assignment.strategy", "range,roundrobin", kerr, sizeof kerr)) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "items reader: %s", kerr);
        return -1;
    }
    if (!(ic->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr))) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "items reader: %s", kerr);
        return -1;
    }
    rd_kafka_poll_set_consumer(ic->rk);
    rd_kafka_topic_t *t = rd_kafka_topic_new(ic->rk, ic->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = kafka_metadata(ic->rk, t, &md, 10000);
    rd_kafka_topic_destroy(t);
    if (!e) e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    if (e || md->topics[0].partition_cnt < 1) {
        snprintf(err, errlen, "items topic %s: %s (create it, or set items.topic= to run without a catalogue)", ic->topic,
                 e ? rd_kafka_err2str(e) : "no partitions");
        if (md) rd_kafka_metadata_destroy(md);
        return -1;
    }
    ic->n_parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    ic->next = malloc((size_t)ic->n_parts * sizeof *ic->next);
    ic->stored = malloc((size_t)ic->n_parts * sizeof *ic->stored);
    if (!ic->next || !ic->stored) return snprintf(err, errlen, "out of memory"), -1;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(ic->n_parts);
    for (int p = 0; p < ic->n_parts; p++) {
        int64_t off;
        if (state_store_get_item_offset(ic->store, p, &off, err, errlen)) {
            rd_kafka_topic_partition_list_destroy(l);
            return -1;
        }
        ic->next[p] = ic->stored[p] = off;
        rd_kafka_topic_partition_list_add(l, ic->topic, p)->offset = off >= 0 ? off : RD_KAFKA_OFFSET_BEGINNING;
    }
    e = rd_kafka_assign(ic->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) return snprintf(err, errlen, "items topic %s: assign: %s", ic->topic, rd_kafka_err2str(e)), -1;
    return 0;
}

int item_consumer_open(item_consumer **out, const item_consumer_opts *o, const config *c, state_store *store,
                       model_runner *runner, int max_rows, char *err, size_t errlen) {
    *out = NULL;
    item_consumer *ic = calloc(1, sizeof *ic);
    if (!ic) return snprintf(err, errlen, "out of memory"), -1;
    ic->store = store, ic->runner = runner, ic->in = o->in, ic->max_rows = max_rows, ic->m = o->m;
    ic->pend_max_bytes = o->pending_bytes ? o->pending_bytes : (size_t)64 << 20;
    double t0 = clock_mono_s();
    ic->ev_vec = malloc((size_t)max_rows * USE_DIM * sizeof *ic->ev_vec);
    ic->ev_text = malloc((size_t)max_rows * sizeof *ic->ev_text);
    ic->ev_len = malloc((size_t)max_rows * sizeof *ic->ev_len);
    ic->ev_row = malloc((size_t)max_rows * sizeof *ic->ev_row);
    if (!ic->ev_vec || !ic->ev_text || !ic->ev_len || !ic->ev_row || !(ic->wb = state_batch_new()) ||
        item_table_new(&ic->table, USE_DIM)) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (use_encoder_open(&ic->enc, o->encoder_dir, USE_BACKEND_ONEDNN, err, errlen)) goto fail;
    if (item_table_load_store(ic->table, store, err, errlen)) goto fail;
    ic->st.loaded = (int64_t)item_table_size(ic->table);
    ic->st.load_s = clock_mono_s() - t0;
    model_runner_set_text(runner, item_table_lookup, ic->table);
    if (model_heads(ic->m) & MODEL_HEAD_SCORE) { /* the scoring rows, text part included (output.top.k) */
        const int N = ic->m->cfg.n_items;
        if (!(ic->S = malloc((size_t)N * ic->m->cfg.out_dim * sizeof *ic->S)) || !(ic->bias = malloc((size_t)N * sizeof *ic->bias))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        for (int32_t i = 0; i < N; i++)
            if (score_row(ic, i, err, errlen)) goto fail;
    }
    if (o->topic && *o->topic) {
        if (!(ic->topic = strdup(o->topic))) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (open_consumer(ic, o, c, err, errlen)) goto fail;
    }
    LOG_I("items", "text encoder USE-lite from %s; %lld item vectors loaded from the state store in %.2f s; catalogue: %s",
          o->encoder_dir, (long long)ic->st.loaded, ic->st.load_s, ic->topic ? ic->topic : "off (items.topic is empty)");
    *out = ic;
    return 0;
fail:
    item_consumer_close(ic);
    return -1;
}

/* One record into the pending list (the last record of an item wins), unless unchanged. A record
 * whose writer schema the registry could not give is not skipped: the catalogue has no
 * dead-letter topic, and a skipped item would keep a stale text until rewritten; the worker
 * stops instead (the item is read again after a restart). */
static int take(item_consumer *ic, const rd_kafka_message_t *m, char *err, size_t errlen) {
    item_record r;
    char why[1024];
    ic->st.records++;
    codec_status st = serde_decode_item(ic->in, m->payload, m->len, &r, why, sizeof why);
    if (st == CODEC_E_REGISTRY)
        return snprintf(err, errlen, "items topic %s [%d] offset %lld: %s; stopping rather than skipping the item",
                        ic->topic, m->partition, (long long)m->offset, why), -1;
    if (st != CODEC_OK) {
        if (ic->st.bad++ < 10)
            LOG_WF("items", LOG_AT(LF_TOPIC(ic->topic), LF_PARTITION(m->partition), LF_OFFSET(m->offset)),
                   "%s [%d] offset %lld: %s; skipped", ic->topic, m->partition, (long long)m->offset, why);
        return 0;
    }
    uint64_t key = model_item_key(r.item_id, r.item_id_len), hash = model_item_key(r.text, r.text_len), have;
    for (size_t i = ic->n_pend; i-- > 0;)
        if (ic->pend[i].key == key) { /* a later record of the same item in this poll */
            ic->pend_bytes -= ic->pend[i].id_len + ic->pend[i].text_len;
            free(ic->pend[i].id), free(ic->pend[i].text);
            ic->pend[i] = ic->pend[--ic->n_pend];
            break;
        }
    if (item_table_text_hash(ic->table, key, &have) && have == hash) {
        ic->st.unchanged++;
        return 0;
    }
    if (ic->n_pend == ic->cap_pend) {
        size_t nc = ic->cap_pend ? 2 * ic->cap_pend : 64;
        pending *np = realloc(ic->pend, nc * sizeof *np);
        if (!np) return snprintf(err, errlen, "out of memory"), -1;
        ic->pend = np, ic->cap_pend = nc;
    }
    pending *p = &ic->pend[ic->n_pend];
    p->id = malloc(r.item_id_len + 1), p->text = malloc(r.text_len + 1);
    if (!p->id || !p->text) return free(p->id), free(p->text), snprintf(err, errlen, "out of memory"), -1;
    memcpy(p->id, r.item_id, r.item_id_len), p->id[r.item_id_len] = 0;
    memcpy(p->text, r.text, r.text_len), p->text[r.text_len] = 0;
    p->id_len = r.item_id_len, p->text_len = r.text_len, p->key = key, p->hash = hash;
    ic->n_pend++;
    ic->pend_bytes += r.item_id_len + r.text_len;
    return 0;
}

/* Encodes the pending texts, writes them with the offsets, updates the table and the runner. */
static int apply_pending(item_consumer *ic, char *err, size_t errlen) {
    int advanced = 0;
    for (int p = 0; p < ic->n_parts; p++) advanced |= ic->next[p] != ic->stored[p];
    if (!ic->n_pend && !advanced) return 0;
    if (ic->n_pend > ic->cap_vec) {
        float *v = realloc(ic->vec, ic->n_pend * USE_DIM * sizeof *v);
        if (!v) return snprintf(err, errlen, "out of memory"), -1;
        ic->vec = v, ic->cap_vec = ic->n_pend;
    }
    const char **texts = malloc((ic->n_pend ? ic->n_pend : 1) * sizeof *texts);
    size_t *lens = malloc((ic->n_pend ? ic->n_pend : 1) * sizeof *lens);
    if (!texts || !lens) {
        free(texts), free(lens);
        return snprintf(err, errlen, "out of memory"), -1;
    }
    for (size_t i = 0; i < ic->n_pend; i++) texts[i] = ic->pend[i].text, lens[i] = ic->pend[i].text_len;
    double t0 = clock_mono_s();
    int rc = ic->n_pend ? use_encoder_encode(ic->enc, texts, lens, (int)ic->n_pend, ic->vec, NULL, err, errlen) : 0;
    ic->st.encode_s += clock_mono_s() - t0;
    free(texts), free(lens);
    if (rc) return -1;
    state_batch_clear(ic->wb);
    for (size_t i = 0; i < ic->n_pend; i++)
        state_batch_put_item(ic->wb, ic->pend[i].key, ic->pend[i].hash, ic->pend[i].id, ic->pend[i].id_len,
                             ic->vec + i * USE_DIM, USE_DIM);
    for (int p = 0; p < ic->n_parts; p++)
        if (ic->next[p] != ic->stored[p]) state_batch_put_item_offset(ic->wb, p, ic->next[p]);
    if (state_store_write(ic->store, ic->wb, err, errlen)) return -1;
    for (int p = 0; p < ic->n_parts; p++) ic->stored[p] = ic->next[p];
    for (size_t i = 0; i < ic->n_pend; i++) {
        if (item_table_put(ic->table, ic->pend[i].id, ic->pend[i].id_len, ic->pend[i].hash, ic->vec + i * USE_DIM) < 0)
            return snprintf(err, errlen, "out of memory"), -1;
        model_runner_text_changed(ic->runner, ic->pend[i].key);
        int32_t idx = ic->S ? model_item_index(ic->m, ic->pend[i].id, ic->pend[i].id_len) : 0;
        if (idx > 0 && score_row(ic, idx, err, errlen)) return -1;
    }
    if (ic->n_pend)
        LOG_I("items", "encoded %zu item texts (%lld records so far: %lld encoded, %lld unchanged, %lld bad; %zu items)",
              ic->n_pend, (long long)ic->st.records, (long long)(ic->st.encoded + (int64_t)ic->n_pend),
              (long long)ic->st.unchanged, (long long)ic->st.bad, item_table_size(ic->table));
    ic->st.encoded += (int64_t)ic->n_pend;
    clear_pending(ic);
    return 0;
}

/* Reads up to max records (waiting at most wait_ms for the first); returns how many, -1 on error. */
/* Reads up to max records, or until the pending texts reach their byte budget. */
static int read_some(item_consumer *ic, int max, int wait_ms, int *eof_parts, char *err, size_t errlen) {
    int got = 0;
    while (got < max && ic->pend_bytes < ic->pend_max_bytes) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ic->rk, got == 0 ? wait_ms : 0);
        if (!m) break;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (eof_parts && m->partition >= 0 && m->partition < ic->n_parts) eof_parts[m->partition] = 1;
        } else if (m->err) {
            LOG_W("items", "%s [%d]: %s", ic->topic, m->partition, rd_kafka_message_errstr(m));
        } else if (m->partition >= 0 && m->partition < ic->n_parts) {
            if (take(ic, m, err, errlen)) {
                rd_kafka_message_destroy(m);
                return -1;
            }
            ic->next[m->partition] = m->offset + 1;
            if (eof_parts) eof_parts[m->partition] = 0;
        }
        rd_kafka_message_destroy(m);
        got++;
    }
    return got;
}

int item_consumer_catch_up(item_consumer *ic, char *err, size_t errlen) {
    if (!ic->rk) return 0;
    double t0 = clock_mono_s();
    int64_t *hi = malloc((size_t)ic->n_parts * sizeof *hi);
    int *eof = calloc((size_t)ic->n_parts, sizeof *eof), rc = -1;
    if (!hi || !eof) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (int p = 0; p < ic->n_parts; p++) {
        int64_t lo;
        rd_kafka_resp_err_t e = kafka_watermarks(ic->rk, ic->topic, p, &lo, &hi[p], 10000);
        if (e) {
            char what[320];
            snprintf(what, sizeof what, "items topic %s [%d]: watermarks", ic->topic, p);
            kafka_wait_error(ic->rk, e, what, 10000, err, errlen);
            goto done;
        }
    }
    int64_t before = ic->st.records;
    for (int idle_ms = 0;;) {
        int behind = 0;
        for (int p = 0; p < ic->n_parts; p++) behind |= (ic->next[p] < 0 ? 0 : ic->next[p]) < hi[p] && !eof[p];
        if (!behind) break;
        if (stop_signal_received()) { /* a catalogue can take long: a stop ends the start-up here */
            snprintf(err, errlen, "items topic %s: stopped by %s while catching up", ic->topic,
                     stop_signal_name(stop_signal_received()));
            goto done;
        }
        int got = read_some(ic, 4096, 100, eof, err, errlen);
        if (got < 0) goto done;
        if ((ic->n_pend >= 4096 || ic->pend_bytes >= ic->pend_max_bytes) && apply_pending(ic, err, errlen)) goto done;
        idle_ms = got ? 0 : idle_ms + 100;
        if (idle_ms >= CATCH_UP_IDLE_MS) {
            snprintf(err, errlen, "items topic %s: no progress for %d s while catching up", ic->topic, CATCH_UP_IDLE_MS / 1000);
            goto done;
        }
    }
    if (apply_pending(ic, err, errlen)) goto done;
    LOG_I("items", "caught up with %s in %.2f s: %lld records, %zu items, %lld encoded (%.2f s in the encoder)", ic->topic,
          clock_mono_s() - t0, (long long)(ic->st.records - before), item_table_size(ic->table), (long long)ic->st.encoded,
          ic->st.encode_s);
    rc = 0;
done:
    free(hi), free(eof);
    return rc;
}

int item_consumer_poll(item_consumer *ic, char *err, size_t errlen) {
    if (!ic->rk) return 0;
    if (read_some(ic, POLL_MAX, 0, NULL, err, errlen) < 0) return -1;
    return apply_pending(ic, err, errlen);
}

int item_consumer_step_events(item_consumer *ic, int n, const user_action *const *ua, model_event *ev, char *err,
                              size_t errlen) {
    int k = 0;
    for (int j = 0; j < n; j++) {
        ev[j].item_key = model_item_key(ua[j]->item_id, ua[j]->item_id_len);
        ev[j].event_text = NULL;
        if (ua[j]->has_text && k < ic->max_rows) {
            ic->ev_text[k] = ua[j]->text, ic->ev_len[k] = ua[j]->text_len, ic->ev_row[k] = j;
            k++;
        }
    }
    if (!k) return 0;
    double t0 = clock_mono_s();
    if (use_encoder_encode(ic->enc, ic->ev_text, ic->ev_len, k, ic->ev_vec, NULL, err, errlen)) return -1;
    ic->st.event_encode_s += clock_mono_s() - t0;
    ic->st.event_texts += k;
    for (int i = 0; i < k; i++) ev[ic->ev_row[i]].event_text = ic->ev_vec + (size_t)i * USE_DIM;
    return 0;
}
