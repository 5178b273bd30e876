/* bench_stages: each stage of the worker's pipeline timed in isolation, in CPU microseconds per
 * event on this machine, so bench/run.sh can print the pipeline's limit and the worker's ratio
 * to it. CPU time is this process's (all its threads, librdkafka's included; a broker running in
 * another process is not counted), best of three runs.
 *
 *   ievo_bench_stages -b BOOTSTRAP -m MODEL [--input-topic T] [--events N] [--users U] [--json FILE]
 *                     [--model-batch B] [--model-states S]
 *
 * Stages: consume (rd_kafka_consumer_poll over T from the beginning), decode (hand decoder),
 * state-cache (the hit path: find + pin + dirty), state-rocksdb (a multi-get and a write of 256
 * records per batch, every event a miss and a write: the upper bound), model (model_step, batch
 * 256 or --model-batch, dnnl; each step's users drawn from --model-states states, by default the
 * same 256, whose memory stays in the CPU's caches), encode (hand encoder), produce (outputs to
 * a topic, acknowledged), changelog (state records to a topic, acknowledged).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "avro_tools.h"
#include "codec.h"
#include "event_source.h"
#include "json_text.h"
#include "model.h"
#include "state_cache.h"
#include "state_store.h"
#include "worker_record.h"

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec + 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static void die(const char *what, const char *err) {
    fprintf(stderr, "bench_stages: %s: %s\n", what, err);
    exit(1);
}

typedef struct {
    const char *name;
    double us;       /* best CPU microseconds per event */
    long events;
} stage;

static stage g_stages[16];
static int g_n;

/* The figures for bench/bench.py: {"record_bytes", "output_bytes", "stages": {name: us}, "limit_us"}. */
static void write_json(const char *path, size_t record_bytes, size_t output_bytes, double limit_us) {
    json_t *stages = json_object();
    for (int i = 0; i < g_n && stages; i++)
        if (json_object_set_new(stages, g_stages[i].name, json_real_or_null(g_stages[i].us))) die("json", "out of memory");
    json_t *o = json_pack("{s:I, s:I, s:o, s:o}", "record_bytes", (json_int_t)record_bytes, "output_bytes",
                          (json_int_t)output_bytes, "stages", stages, "limit_us", json_real_or_null(limit_us));
    if (!o) die("json", "out of memory");
    FILE *f = fopen(path, "w");
    if (!f) die(path, strerror(errno));
    int bad = json_dumpf(o, f, IEVO_JSON_DUMP) || fputc('\n', f) == EOF;
    if (fclose(f) || bad) die(path, strerror(errno));
    json_decref(o);
}

static void record(const char *name, double cpu_s, long events) {
    double us = cpu_s * 1e6 / (double)events;
    for (int i = 0; i < g_n; i++)
        if (!strcmp(g_stages[i].name, name)) {
            if (us < g_stages[i].us) g_stages[i].us = us;
            return;
        }
    g_stages[g_n++] = (stage){name, us, events};
}

/* ---- Kafka stages ----------------------------------------------------------------------- */

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *bs, const char *group) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, err, sizeof err);
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof err);
        rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof err);
        rd_kafka_conf_set(c, "queue.buffering.max.messages", "1000000", err, sizeof err);
    } else {
        rd_kafka_conf_set(c, "group.id", group, err, sizeof err);
        rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err);
        rd_kafka_conf_set(c, "queued.min.messages", "100000", err, sizeof err);
        rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof err);
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (!rk) die("kafka client", err);
    return rk;
}

static void bench_produce(const char *bs, const char *topic, size_t size, long n, const char *name) {
    rd_kafka_t *p = new_client(RD_KAFKA_PRODUCER, bs, NULL);
    rd_kafka_topic_t *t = rd_kafka_topic_new(p, topic, NULL);
    char *payload = calloc(1, size);
    char key[32];
    rd_kafka_flush(p, 5000);   /* connect and fetch metadata before timing */
    double c0 = cpu_now();
    for (long i = 0; i < n; i++) {
        int kn = snprintf(key, sizeof key, "u%07ld", i % 100000);
        while (rd_kafka_produce(t, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload, size, key, (size_t)kn, NULL)) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL) die("produce", rd_kafka_err2str(rd_kafka_last_error()));
            rd_kafka_poll(p, 10);
        }
        rd_kafka_poll(p, 0);
    }
    while (rd_kafka_flush(p, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {}
    record(name, cpu_now() - c0, n);
    free(payload);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(p);
}

static void bench_consume(const char *bs, const char *topic, long n) {
    rd_kafka_t *c = new_client(RD_KAFKA_CONSUMER, bs, "ievo-bench-stages");
    rd_kafka_poll_set_consumer(c);
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t = rd_kafka_topic_new(c, topic, NULL);
    if (rd_kafka_metadata(c, 0, t, &md, 10000) || md->topic_cnt != 1) die("metadata", topic);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++) rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, l);
    rd_kafka_topic_partition_list_destroy(l);
    long got = 0;
    int eofs = 0, idle = 0;
    double c0 = cpu_now();
    while (got < n && eofs < parts && idle < 100) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) { idle++; continue; }
        idle = 0;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) eofs++;
        else if (!m->err) got++;
        rd_kafka_message_destroy(m);
    }
    if (got) record("consume", cpu_now() - c0, got);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

/* ---- in-process stages ------------------------------------------------------------------ */

/* The input of every stage: synthetic events, encoded as a producer would (avro-c) and decoded
 * by the worker's codec. */
typedef struct {
    model *m;
    size_t state_size, record_size;
    event_list ev;
    avro_tools_ua_writer *aw;
    uint8_t **enc;
    size_t *enc_len;
    user_action *decoded;
    long users;
} bench_input;

/* decode: the hand codec over records avro-c encoded. */
static void bench_decode(bench_input *b, long n, long users) {
    char err[512];
    /* Events as the worker sees them: encoded by avro-c, decoded by the hand codec. */
    synth_opts so;
    synth_opts_default(&so);
    so.users = (uint64_t)users;
    so.events = (uint64_t)n;
    if (events_generate_synthetic(&so, &b->ev, err, sizeof err)) die("synthetic", err);
    b->aw = avro_tools_ua_writer_new(WIRE_CONFLUENT, 1, err, sizeof err);
    if (!b->aw) die("avro writer", err);
    b->enc = malloc(b->ev.n * sizeof *b->enc);
    b->enc_len = malloc(b->ev.n * sizeof *b->enc_len);
    for (size_t i = 0; i < b->ev.n; i++) {
        const source_event *e = &b->ev.ev[i];
        user_action ua = {e->user_id, strlen(e->user_id), e->item_id, strlen(e->item_id), e->action, strlen(e->action),
                          e->ts, e->has_value, e->value, e->text != NULL, e->text, e->text ? strlen(e->text) : 0};
        const uint8_t *out;
        if (avro_tools_ua_write(b->aw, &ua, &out, &b->enc_len[i], err, sizeof err)) die("encode input", err);
        b->enc[i] = malloc(b->enc_len[i]);
        memcpy(b->enc[i], out, b->enc_len[i]);
    }
    codec_in_opts in = {WIRE_CONFLUENT, 1, 1 << 20};
    b->decoded = malloc(b->ev.n * sizeof *b->decoded);
    for (int rep = 0; rep < 3; rep++) {
        char reason[256];
        double c0 = cpu_now();
        for (size_t i = 0; i < b->ev.n; i++)
            if (codec_decode_user_action(&in, b->enc[i], b->enc_len[i], &b->decoded[i], reason, sizeof reason)) die("decode", reason);
        record("decode", cpu_now() - c0, (long)b->ev.n);
    }

}

/* state-cache: the hit path of a batch (find, pin, mark dirty, unpin). */
static void bench_state_cache(const bench_input *b) {
    state_cache *cache;
    if (state_cache_new(&cache, (size_t)b->users * 2, b->record_size)) die("cache", "out of memory");
    for (size_t i = 0; i < b->ev.n; i++) {
        const user_action *u = &b->decoded[i];
        if (state_cache_find(cache, 0, u->user_id, u->user_id_len) < 0)
            state_cache_insert(cache, 0, u->user_id, u->user_id_len);
    }
    for (int rep = 0; rep < 3; rep++) {
        double c0 = cpu_now();
        for (size_t i = 0; i < b->ev.n; i++) {
            long e = state_cache_find(cache, 0, b->decoded[i].user_id, b->decoded[i].user_id_len);
            state_cache_pin(cache, e);
            state_cache_mark_dirty(cache, e);
            if ((i & 255) == 255) {
                state_cache_unpin_all(cache);
                state_cache_mark_clean(cache);
            }
        }
        state_cache_unpin_all(cache);
        state_cache_mark_clean(cache);
        record("state-cache", cpu_now() - c0, (long)b->ev.n);
    }
    state_cache_free(cache);

}

/* state-rocksdb: every event a miss and a write, batches of 256. */
static void bench_state_rocksdb(const bench_input *b) {
    char err[512];
    char dir[] = "/tmp/ievo-bench-stages-XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp", dir);
    state_store_opts sopt;
    state_store_opts_default(&sopt);
    state_store *store;
    if (state_store_open(&store, dir, &sopt, err, sizeof err)) die("rocksdb", err);
    uint8_t *recs = calloc(256, b->record_size);
    void *bufs[256];
    int32_t parts[256];
    const char *keys[256];
    size_t lens[256];
    int found[256];
    size_t malformed[256];
    for (int k = 0; k < 256; k++) bufs[k] = recs + (size_t)k * b->record_size;
    state_batch *wb = state_batch_new();
    for (size_t i = 0; i < b->ev.n; i += 256) {   /* load the store */
        state_batch_clear(wb);
        for (size_t k = i; k < i + 256 && k < b->ev.n; k++)
            state_batch_put_state(wb, 0, b->decoded[k].user_id, b->decoded[k].user_id_len, recs, b->record_size);
        if (state_store_write(store, wb, err, sizeof err)) die("rocksdb write", err);
    }
    for (int rep = 0; rep < 3; rep++) {
        double c0 = cpu_now();
        long done = 0;
        for (size_t i = 0; i + 256 <= b->ev.n; i += 256) {
            for (int k = 0; k < 256; k++) {
                const user_action *u = &b->decoded[(i * 7919 + (size_t)k * 104729) % b->ev.n];
                parts[k] = 0;
                keys[k] = u->user_id;
                lens[k] = u->user_id_len;
            }
            if (state_store_multi_get(store, 256, parts, keys, lens, bufs, b->record_size, found, malformed, err, sizeof err))
                die("multi-get", err);
            state_batch_clear(wb);
            for (int k = 0; k < 256; k++) state_batch_put_state(wb, 0, keys[k], lens[k], bufs[k], b->record_size);
            if (state_store_write(store, wb, err, sizeof err)) die("rocksdb write", err);
            done += 256;
        }
        record("state-rocksdb", cpu_now() - c0, done);
    }
    state_batch_free(wb);
    state_store_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "bench_stages: could not remove %s\n", dir);

}

/* model: 256 distinct users per round, in steps of model_batch rows. With model_states S > 256
 * each round's users are the next 256 of a shuffled order of S states (S * state_size bytes), so
 * their memory is as cold as a worker's with S users. Returns the last step's vectors (256, D). */
static float *bench_model(const bench_input *b, int model_batch, long model_states) {
    char err[512];
    model *m = b->m;
    const int D = m->cfg.out_dim;
    size_t state_size = b->state_size;
    model_runner *r;
    if (model_runner_new(&r, m, MODEL_BACKEND_DNNL, 256, err, sizeof err)) die("runner", err);
    uint8_t *states = malloc((size_t)model_states * state_size);
    uint32_t *order = malloc((size_t)model_states * sizeof *order);
    if (!states || !order) die("model states", "out of memory");
    void *sp[256];
    model_event mev[256];
    float *vec = malloc(256 * (size_t)D * sizeof *vec), drift[256];
    uint64_t lcg = 88172645463325252ull;
    for (long k = 0; k < model_states; k++) {
        model_state_init(m, states + (size_t)k * state_size);
        order[k] = (uint32_t)k;
    }
    for (long k = model_states - 1; k > 0; k--) {   /* Fisher-Yates */
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        long j = (long)((lcg >> 33) % (uint64_t)(k + 1));
        uint32_t t = order[k];
        order[k] = order[j];
        order[j] = t;
    }
    size_t next_state = 0;
    for (int rep = 0; rep < 3; rep++) {
        double c0 = cpu_now();
        long done = 0;
        for (size_t i = 0; i + 256 <= b->ev.n; i += 256) {
            for (int k = 0; k < 256; k++) {
                sp[k] = states + (size_t)order[next_state] * state_size;
                next_state = (next_state + 1) % (size_t)model_states;
            }
            for (int k = 0; k < 256; k++) {
                const user_action *u = &b->decoded[i + (size_t)k];
                mev[k] = (model_event){model_item_index(m, u->item_id, u->item_id_len),
                                       model_action_index(m, u->action, u->action_len), u->ts, u->value, u->has_value};
            }
            for (int k = 0; k < 256; k += model_batch)   /* steps of model_batch rows */
                if (model_step(r, 256 - k < model_batch ? 256 - k : model_batch, sp + k, mev + k, vec, drift, err,
                               sizeof err))
                    die("model_step", err);
            done += 256;
        }
        record("model", cpu_now() - c0, done);
    }

    free(states);
    free(order);
    model_runner_free(r);
    return vec;
}

/* encode: one InterestVector per event. Returns an output's size. */
static size_t bench_encode(const bench_input *b, const float *vec) {
    const model *m = b->m;
    const int D = m->cfg.out_dim;
    uint8_t out[65536];
    size_t out_len = 0;
    codec_out_opts oo = {WIRE_CONFLUENT, 2};
    for (int rep = 0; rep < 3; rep++) {
        double c0 = cpu_now();
        for (size_t i = 0; i < b->ev.n; i++) {
            const user_action *u = &b->decoded[i];
            interest_vector iv = {u->user_id, u->user_id_len, u->ts, (int64_t)i, vec + (i & 255) * (size_t)D, D, 0.1f,
                                  m->model_id, strlen(m->model_id), 3, (int64_t)i, NULL, 0};
            out_len = codec_encode_interest_vector(&oo, &iv, out, sizeof out);
        }
        record("encode", cpu_now() - c0, (long)b->ev.n);
    }

    return out_len;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"input-topic", required_argument, 0, 't'}, {"events", required_argument, 0, 'n'},
                                         {"users", required_argument, 0, 'u'}, {"json", required_argument, 0, 'j'},
                                         {"model-batch", required_argument, 0, 'B'},
                                         {"model-states", required_argument, 0, 'S'},
                                         {0, 0, 0, 0}};
    const char *bs = NULL, *model_path = NULL, *in_topic = "user-actions", *json_path = NULL;
    long n = 200000, users = 100000;
    int model_batch = 256;   /* rows per model step: 256, or what a worker's waves hold */
    long model_states = 256; /* states the model stage's users are drawn from (>= 256) */
    int c;
    while ((c = getopt_long(argc, argv, "b:m:", opts, NULL)) != -1) {
        if (c == 'b') bs = optarg;
        else if (c == 'm') model_path = optarg;
        else if (c == 't') in_topic = optarg;
        else if (c == 'n') n = atol(optarg);
        else if (c == 'u') users = atol(optarg);
        else if (c == 'j') json_path = optarg;
        else if (c == 'B') model_batch = atoi(optarg);
        else if (c == 'S') model_states = atol(optarg);
        else return 2;
    }
    if (!bs || !model_path || model_batch < 1 || model_batch > 256 || model_states < 256) {
        fprintf(stderr, "usage: ievo_bench_stages -b BOOTSTRAP -m MODEL [--input-topic T] [--events N] [--users U] "
                        "[--model-batch 1..256] [--model-states 256..] [--json F]\n");
        return 2;
    }
    char err[512];
    model_runtime_init(1);
    bench_input b = {.users = users};
    if (model_load(&b.m, model_path, err, sizeof err)) die("model", err);
    b.state_size = model_state_size(b.m), b.record_size = RECORD_HEADER + b.state_size;
    bench_decode(&b, n, users);
    bench_state_cache(&b);
    bench_state_rocksdb(&b);
    float *vec = bench_model(&b, model_batch, model_states);
    size_t out_len = bench_encode(&b, vec);

    /* Kafka: consume the input topic, produce outputs and changelog records. */
    for (int rep = 0; rep < 3; rep++) bench_consume(bs, in_topic, n);
    for (int rep = 0; rep < 3; rep++) bench_produce(bs, "bench-out", out_len, n, "produce");
    for (int rep = 0; rep < 3; rep++) bench_produce(bs, "bench-changelog", b.record_size, n / 2, "changelog");

    double sum = 0;
    printf("%-14s %10s\n", "stage", "us/event");
    for (int i = 0; i < g_n; i++) {
        printf("%-14s %10.3f\n", g_stages[i].name, g_stages[i].us);
        if (strcmp(g_stages[i].name, "state-rocksdb") && strcmp(g_stages[i].name, "changelog")) sum += g_stages[i].us;
    }
    printf("limit (consume+decode+state-cache+model+encode+produce): %.3f us/event = %.0f events per CPU-second\n",
           sum, 1e6 / sum);
    if (json_path) write_json(json_path, b.record_size, out_len, sum);
    for (size_t i = 0; i < b.ev.n; i++) free(b.enc[i]);
    free(b.enc);
    free(b.enc_len);
    free(b.decoded);
    free(vec);
    model_free(b.m);
    avro_tools_ua_writer_free(b.aw);
    event_list_free(&b.ev);
    return 0;
}
