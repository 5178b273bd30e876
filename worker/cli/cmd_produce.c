/* cmd_produce: `ievo produce`, loads UserAction events into a topic.
 *
 * Events come from an event source (MovieLens, synthetic, JSON lines), already sorted by event
 * time, and are written in that order keyed by user_id, so each user's events land in one
 * partition in event-time order. Records are encoded with avro-c's generic writer (avro_tools),
 * independently of the worker's hand decoder. The producer is idempotent (no duplicates or
 * reordering on retries), copies payloads (RD_KAFKA_MSG_F_COPY), waits on QUEUE_FULL by
 * polling, and counts delivery failures: any failure makes the exit status non-zero.
 *
 * --repeat K --user-prefix P replays the data set K times as disjoint users "P<k>-<user>",
 * repeat k shifted by k * (span + 1 ms) so the whole stream stays in event-time order.
 * The Kafka timestamp is left to the producer (CreateTime now): event times of 1997 or 2024
 * would make a real broker's time-based retention delete the data at once.
 * --truth FILE (synthetic only) writes one JSON line per produced event: user_id, events (the
 * event's index 1..n for its user), topic, switched (the topic differs from the user's
 * previous event), ts.
 * --items writes the item catalogue instead: Item records (schemas/item.avsc) keyed by item_id,
 * from --movielens DIR (u.item: title and genres, as the trainer reads them) or --items-jsonl
 * FILE ({"item_id","text"} lines), ts = now; the default schema id is then 3 (items.schema.id).
 * With schema.registry.url set (-X, -F, IEVO_CFG_*), the schema (user_action.avsc or item.avsc) is
 * registered under the topic's subject (or looked up: auto.register.schemas=false) and the records
 * carry the id the registry gives (docs/schemas.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "avro_tools.h"
#include "codec.h"
#include "commands.h"
#include "config.h"
#include "event_source.h"
#include "item_codec.h"
#include "item_table.h"
#include "json.h"
#include "log.h"
#include "schemas.h"
#include "serde.h"

typedef struct {
    const char *topic, *movielens, *synthetic, *jsonl, *truth, *user_prefix, *items_jsonl;
    int items, schema_id_set;
    wire_format format;
    int32_t schema_id;
    int64_t limit, repeat;
    double rate;
    synth_opts synth;
    config cfg;
} produce_opts;

typedef struct {
    int64_t delivered, failed;
} produce_counts;

static volatile sig_atomic_t g_produce_stop = 0;
static void produce_on_signal(int sig) { g_produce_stop = sig; }

static void produce_usage(FILE *f) {
    fprintf(f,
            "usage: ievo produce -b BOOTSTRAP -t TOPIC (--movielens DIR | --synthetic USERS:EVENTS | --jsonl FILE|-)\n"
            "                    [--format confluent|avro] [--schema-id N] [--limit N] [--rate EVENTS_PER_S]\n"
            "                    [--repeat K [--user-prefix P]] [--truth FILE] [-X prop=val]... [-F config]\n"
            "  synthetic: [--seed N] [--topics N] [--items-per-topic N] [--switch-prob P] [--on-topic P]\n"
            "             [--zipf-users S] [--start-ts MS]\n"
            "  Writes UserAction records keyed by user_id in event-time order (idempotent producer).\n"
            "  --format      wire format (default confluent: magic 0 + 4-byte schema id + Avro)\n"
            "  --schema-id   id in the Confluent header (default 1); with -X schema.registry.url=URL the\n"
            "                registry's id for the schema under the topic's subject instead\n"
            "  --limit N     produce at most N events\n"
            "  --repeat K    produce the data set K times, users renamed P<k>-<user> (prefix default 'r'),\n"
            "                each repeat shifted in time after the previous one\n"
            "  --user-prefix P  rename users P<k>-<user> (also without --repeat: P0-<user>)\n"
            "  --rate R      at most R events per second\n"
            "  --truth FILE  synthetic ground truth per event as JSON lines\n"
            "usage: ievo produce -b BOOTSTRAP -t TOPIC --items (--movielens DIR | --items-jsonl FILE|-) [--schema-id N]\n"
            "  Writes the item catalogue: Item records (item_id, text, ts) keyed by item_id; from MovieLens the\n"
            "  text is u.item's title and genres. Default schema id 3.\n");
}

static void produce_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
    log_msg(l, "produce", "rdkafka %s: %s", fac, buf);
}

static void produce_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    produce_counts *c = opaque;
    if (!m->err) {
        c->delivered++;
        return;
    }
    if (c->failed++ < 10)
        LOG_E("produce", "delivery failed (key %.*s): %s%s", (int)(m->key_len > 64 ? 64 : m->key_len),
              m->key ? (const char *)m->key : "", rd_kafka_err2str(m->err), c->failed == 10 ? " (further failures not logged)" : "");
}

static int produce_int(const char *flag, const char *v, int64_t min, int64_t max, int64_t *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        LOG_E("produce", "%s: '%s' is not an integer in [%lld, %lld]", flag, v, (long long)min, (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

static int produce_double(const char *flag, const char *v, double min, double max, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= min && x <= max)) {
        LOG_E("produce", "%s: '%s' is not a number in [%g, %g]", flag, v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

/* Returns 0, 1 for --help, -1 on a usage error (logged). */
static int produce_parse_args(int argc, char **argv, produce_opts *o) {
    char err[512];
    int64_t x;
    o->format = WIRE_CONFLUENT;
    o->schema_id = 1;
    o->repeat = 1;
    synth_opts_default(&o->synth);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (!strcmp(a, "--items")) {
            o->items = 1;
            continue;
        }
        if (i + 1 >= argc) {
            LOG_E("produce", "unknown option or missing value: %s", a);
            return -1;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "-b")) rc = config_set(&o->cfg, "bootstrap.servers", v);
        else if (!strcmp(a, "-t")) o->topic = v;
        else if (!strcmp(a, "--movielens")) o->movielens = v;
        else if (!strcmp(a, "--synthetic")) {
            if (synth_opts_parse(&o->synth, v, err, sizeof err)) {
                LOG_E("produce", "%s", err);
                return -1;
            }
            o->synthetic = v;
        } else if (!strcmp(a, "--jsonl")) o->jsonl = v;
        else if (!strcmp(a, "--format")) {
            int f = wire_format_parse(v);
            if (f < 0) {
                LOG_E("produce", "--format: '%s' is neither confluent nor avro", v);
                return -1;
            }
            o->format = (wire_format)f;
        } else if (!strcmp(a, "--schema-id")) {
            rc = produce_int(a, v, 0, INT32_MAX, &x);
            o->schema_id = (int32_t)x;
            o->schema_id_set = 1;
        } else if (!strcmp(a, "--items-jsonl")) {
            o->items_jsonl = v;
            o->items = 1;
        } else if (!strcmp(a, "--seed")) {
            rc = produce_int(a, v, 0, INT64_MAX, &x);
            o->synth.seed = (uint64_t)x;
        } else if (!strcmp(a, "--topics")) {
            rc = produce_int(a, v, 1, 100, &x);
            o->synth.topics = (int)x;
        } else if (!strcmp(a, "--items-per-topic")) {
            rc = produce_int(a, v, 1, 1000, &x);
            o->synth.items_per_topic = (int)x;
        } else if (!strcmp(a, "--switch-prob")) rc = produce_double(a, v, 0, 1, &o->synth.switch_prob);
        else if (!strcmp(a, "--on-topic")) rc = produce_double(a, v, 0, 1, &o->synth.on_topic);
        else if (!strcmp(a, "--zipf-users")) rc = produce_double(a, v, 0, 10, &o->synth.zipf_users);
        else if (!strcmp(a, "--start-ts")) rc = produce_int(a, v, 0, CODEC_TS_MAX - 1, &o->synth.start_ts);
        else if (!strcmp(a, "--limit")) rc = produce_int(a, v, 0, INT64_MAX, &o->limit);
        else if (!strcmp(a, "--repeat")) rc = produce_int(a, v, 1, 1000000, &o->repeat);
        else if (!strcmp(a, "--user-prefix")) o->user_prefix = v;
        else if (!strcmp(a, "--rate")) rc = produce_double(a, v, 0, 1e9, &o->rate);
        else if (!strcmp(a, "--truth")) o->truth = v;
        else if (!strcmp(a, "-X")) {
            if (config_set_kv(&o->cfg, v, err, sizeof err)) {
                LOG_E("produce", "-X %s: %s", v, err);
                return -1;
            }
        } else if (!strcmp(a, "-F")) {
            if (config_load_file(&o->cfg, v, err, sizeof err)) {
                LOG_E("produce", "%s", err);
                return -1;
            }
        } else {
            LOG_E("produce", "unknown option: %s", a);
            return -1;
        }
        if (rc) return -1;
    }
    if (o->items) {
        if (!!o->movielens + !!o->items_jsonl != 1 || o->synthetic || o->jsonl || o->truth || o->repeat > 1) {
            LOG_E("produce", "--items takes exactly one of --movielens, --items-jsonl (and no event options)");
            return -1;
        }
        if (!o->topic) {
            LOG_E("produce", "-t TOPIC is required");
            return -1;
        }
        if (!o->schema_id_set) o->schema_id = 3;
        return 0;
    }
    int sources = !!o->movielens + !!o->synthetic + !!o->jsonl;
    if (sources != 1) {
        LOG_E("produce", "give exactly one of --movielens, --synthetic, --jsonl");
        return -1;
    }
    if (!o->topic) {
        LOG_E("produce", "-t TOPIC is required");
        return -1;
    }
    if (o->truth && !o->synthetic) {
        LOG_E("produce", "--truth needs --synthetic (only the generator knows the topics)");
        return -1;
    }
    return 0;
}

static int produce_load(const produce_opts *o, event_list *l) {
    char err[512];
    int rc;
    if (o->movielens) {
        rc = events_load_movielens(o->movielens, l, err, sizeof err);
    } else if (o->synthetic) {
        rc = events_generate_synthetic(&o->synth, l, err, sizeof err);
    } else {
        rc = events_load_jsonl_path(o->jsonl, l, err, sizeof err);
    }
    if (rc) LOG_E("produce", "%s", err);
    return rc;
}

/* ---- ground truth: per-user event count and last topic, keyed by the interned user pointer -- */

typedef struct {
    const char **key;
    uint32_t *count, *topic;
    size_t cap;
} produce_truth_map;

static int produce_truth_map_init(produce_truth_map *m, size_t users) {
    m->cap = 1024;
    while (m->cap < 2 * users) m->cap *= 2;
    m->key = calloc(m->cap, sizeof *m->key);
    m->count = calloc(m->cap, sizeof *m->count);
    m->topic = calloc(m->cap, sizeof *m->topic);
    return m->key && m->count && m->topic ? 0 : -1;
}

static void produce_truth_map_free(produce_truth_map *m) {
    free(m->key);
    free(m->count);
    free(m->topic);
}

static void produce_truth_map_clear(produce_truth_map *m) {
    memset(m->key, 0, m->cap * sizeof *m->key);
}

/* Records one event of user u with topic t; returns the user's event index and whether the
 * topic switched. */
static uint32_t produce_truth_step(produce_truth_map *m, const char *u, uint32_t t, int *switched) {
    size_t h = (size_t)(((uintptr_t)u >> 3) * 0x9E3779B97F4A7C15ULL) & (m->cap - 1);
    while (m->key[h] && m->key[h] != u) h = (h + 1) & (m->cap - 1);
    if (!m->key[h]) {
        m->key[h] = u;
        m->count[h] = 0;
        m->topic[h] = t;
    }
    *switched = m->count[h] > 0 && m->topic[h] != t;
    m->topic[h] = t;
    return ++m->count[h];
}

static double produce_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* --items: the catalogue as Item records keyed by item_id. Returns the exit code. */
/* The producer both modes use (idempotent, the Java client's key hashing); errors are logged. */
static rd_kafka_t *new_producer(const config *cfg, produce_counts *counts) {
    static const char *const defaults[] = {
        "client.id", "ievo-produce",
        "enable.idempotence", "true",
        "queue.buffering.max.messages", "1000000",
        "queue.buffering.max.kbytes", "1048576",
        "linger.ms", "5",
        "partitioner", "murmur2_random",   /* the Java client's key hashing */
        NULL, NULL};
    char err[512], kerr[512];
    rd_kafka_conf_t *conf = config_kafka_conf(cfg, defaults, NULL, REGISTRY_KEY_PREFIXES, err, sizeof err);
    if (!conf) {
        LOG_E("produce", "%s", err);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, produce_kafka_log);
    rd_kafka_conf_set_dr_msg_cb(conf, produce_dr);
    rd_kafka_conf_set_opaque(conf, counts);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        LOG_E("produce", "cannot create producer: %s", kerr);
    }
    return rk;
}

static int produce_items(produce_opts *o) {
    char err[512];
    item_catalog cat = {0};
    item_writer *iw = NULL;
    rd_kafka_t *rk = NULL;
    produce_counts counts = {0, 0};
    int rc = 1;
    if (o->movielens ? item_catalog_movielens(o->movielens, &cat, err, sizeof err)
                     : item_catalog_jsonl(o->items_jsonl, &cat, err, sizeof err)) {
        LOG_E("produce", "%s", err);
        goto done;
    }
    if (!(iw = item_writer_new(o->format, o->schema_id, err, sizeof err))) {
        LOG_E("produce", "%s", err);
        goto done;
    }
    if (!(rk = new_producer(&o->cfg, &counts))) goto done;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t ts = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    int failed = 0;
    for (size_t i = 0; i < cat.n && !failed; i++) {
        item_record r = {cat.ids[i], strlen(cat.ids[i]), cat.texts[i], strlen(cat.texts[i]), ts};
        const uint8_t *payload;
        size_t len;
        if (item_write(iw, &r, &payload, &len, err, sizeof err)) {
            LOG_E("produce", "%s", err);
            failed = 1;
            break;
        }
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_KEY(r.item_id, r.item_id_len),
                                                      RD_KAFKA_V_VALUE((void *)payload, len),
                                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 10);
                continue;
            }
            if (e) LOG_E("produce", "cannot produce to %s: %s", o->topic, rd_kafka_err2str(e)), failed = 1;
            break;
        }
    }
    while (rd_kafka_outq_len(rk) > 0 && rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR__TIMED_OUT) {}
    counts.failed += rd_kafka_outq_len(rk);
    LOG_I("produce", "%zu items to %s: %lld delivered, %lld failed", cat.n, o->topic, (long long)counts.delivered,
          (long long)counts.failed);
    rc = failed || counts.failed ? 1 : 0;
done:
    if (rk) rd_kafka_destroy(rk);
    item_writer_free(iw);
    item_catalog_free(&cat);
    return rc;
}

int cmd_produce(int argc, char **argv) {
    produce_opts o;
    memset(&o, 0, sizeof o);
    char err[512];
    int exit_code = 1;
    event_list l = {0};
    rd_kafka_t *rk = NULL;
    avro_tools_ua_writer *w = NULL;
    FILE *truth = NULL;
    produce_truth_map tmap = {0};
    json_buf line = {0};
    char *uid = NULL;
    produce_counts counts = {0, 0};
    registry_opts ro;
    registry *reg = NULL;

    int prc = produce_parse_args(argc, argv, &o);
    if (prc) {
        produce_usage(prc > 0 ? stdout : stderr);
        config_free(&o.cfg);
        return prc > 0 ? 0 : 2;
    }
    if (config_load_env(&o.cfg, err, sizeof err)) {
        LOG_E("produce", "%s", err);
        goto done;
    }
    if (!config_get(&o.cfg, "bootstrap.servers", NULL)) {
        LOG_E("produce", "no bootstrap servers: give -b BOOTSTRAP (or bootstrap.servers in -F / IEVO_CFG_BOOTSTRAP_SERVERS)");
        goto done;
    }
    if (serde_registry_open(&o.cfg, &ro, &reg, err, sizeof err)) {
        LOG_E("produce", "%s", err);
        goto done;
    }
    if (reg) { /* the registry's id for our schema under the topic's subject */
        if (o.schema_id_set || o.format != WIRE_CONFLUENT) {
            LOG_E("produce", "schema.registry.url gives the schema id: drop --schema-id and --format avro");
            goto done;
        }
        if (serde_out_id(reg, &ro, o.topic, o.items ? ievo_schema_item_json : ievo_schema_user_action_json, NULL,
                         &o.schema_id, err, sizeof err)) {
            LOG_E("produce", "%s", err);
            goto done;
        }
    }
    if (o.items) {
        exit_code = produce_items(&o);
        goto done;
    }
    if (!(w = avro_tools_ua_writer_new(o.format, o.schema_id, err, sizeof err))) {
        LOG_E("produce", "%s", err);
        goto done;
    }
    double t_load = produce_now();
    if (produce_load(&o, &l)) goto done;
    LOG_I("produce", "loaded %zu events in %.2f s", l.n, produce_now() - t_load);
    if (o.truth) {
        if (!(truth = fopen(o.truth, "w"))) {
            LOG_E("produce", "cannot create %s: %s", o.truth, strerror(errno));
            goto done;
        }
        if (produce_truth_map_init(&tmap, (size_t)o.synth.users)) {
            LOG_E("produce", "out of memory for the truth map");
            goto done;
        }
    }

    if (!(rk = new_producer(&o.cfg, &counts))) goto done;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = produce_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    const char *prefix = o.user_prefix ? o.user_prefix : (o.repeat > 1 ? "r" : NULL);
    int64_t span = l.n ? l.ev[l.n - 1].ts - l.ev[0].ts + 1 : 0;
    size_t uid_cap = 0;
    int64_t produced = 0, max_total = o.limit > 0 ? o.limit : INT64_MAX;
    int failed_local = 0;
    double t0 = produce_now();
    for (int64_t k = 0; k < o.repeat && produced < max_total && !g_produce_stop && !failed_local; k++) {
        if (truth) produce_truth_map_clear(&tmap);
        for (size_t i = 0; i < l.n && produced < max_total && !g_produce_stop; i++) {
            const source_event *e = &l.ev[i];
            user_action ua = {0};
            ua.user_id = e->user_id;
            ua.user_id_len = strlen(e->user_id);
            if (prefix) {
                size_t need = strlen(prefix) + 24 + ua.user_id_len;
                if (need > uid_cap) {
                    char *nu = realloc(uid, need);
                    if (!nu) {
                        LOG_E("produce", "out of memory");
                        failed_local = 1;
                        break;
                    }
                    uid = nu;
                    uid_cap = need;
                }
                ua.user_id_len = (size_t)snprintf(uid, uid_cap, "%s%" PRId64 "-%s", prefix, k, e->user_id);
                ua.user_id = uid;
            }
            ua.item_id = e->item_id;
            ua.item_id_len = strlen(e->item_id);
            ua.action = e->action;
            ua.action_len = strlen(e->action);
            ua.ts = e->ts + k * span;
            ua.has_value = e->has_value;
            ua.value = e->value;
            if (e->text) {
                ua.has_text = 1;
                ua.text = e->text;
                ua.text_len = strlen(e->text);
            }
            const uint8_t *payload;
            size_t len;
            if (avro_tools_ua_write(w, &ua, &payload, &len, err, sizeof err)) {
                LOG_E("produce", "event %zu (user %s): %s", i, e->user_id, err);
                failed_local = 1;
                break;
            }
            if (o.rate > 0) {   /* pace: event n is due at t0 + n / rate; serve callbacks while waiting */
                double due = t0 + (double)produced / o.rate, now;
                while ((now = produce_now()) < due && !g_produce_stop) rd_kafka_poll(rk, (int)((due - now) * 1000) + 1);
            }
            for (;;) {
                rd_kafka_resp_err_t perr = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(o.topic), RD_KAFKA_V_KEY(ua.user_id, ua.user_id_len),
                    RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_END);
                if (perr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    rd_kafka_poll(rk, 10);
                    continue;
                }
                if (perr) {
                    LOG_E("produce", "cannot produce to %s: %s", o.topic, rd_kafka_err2str(perr));
                    failed_local = 1;
                }
                break;
            }
            if (failed_local) break;
            produced++;
            if ((produced & 1023) == 0) rd_kafka_poll(rk, 0);
            if (truth) {
                int switched;
                uint32_t nth = produce_truth_step(&tmap, e->user_id, e->topic, &switched);
                line.len = 0;
                json_buf_append(&line, "{\"user_id\":", 11);
                json_buf_string(&line, ua.user_id, ua.user_id_len);
                json_buf_printf(&line, ",\"events\":%u,\"topic\":%u,\"switched\":%s,\"ts\":%" PRId64 "}\n", nth, e->topic,
                                switched ? "true" : "false", ua.ts);
                if (line.failed || fwrite(line.data, 1, line.len, truth) != line.len) {
                    LOG_E("produce", "cannot write %s", o.truth);
                    failed_local = 1;
                    break;
                }
            }
        }
    }
    if (g_produce_stop) LOG_W("produce", "signal %d: stopping after %" PRId64 " events", (int)g_produce_stop, produced);
    /* Wait for every delivery report. */
    while (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, 60000);
        if (ferr == RD_KAFKA_RESP_ERR__TIMED_OUT) {
            LOG_E("produce", "%d messages still undelivered after 60 s; giving up", rd_kafka_outq_len(rk));
            counts.failed += rd_kafka_outq_len(rk);
            break;
        }
    }
    double secs = produce_now() - t0;
    if (truth && fclose(truth) != 0) {
        LOG_E("produce", "cannot write %s: %s", o.truth, strerror(errno));
        failed_local = 1;
    }
    truth = NULL;
    LOG_I("produce", "%" PRId64 " events to %s in %.3f s (%.0f events/s), %" PRId64 " delivered, %" PRId64 " failed",
          produced, o.topic, secs, secs > 0 ? (double)produced / secs : 0.0, counts.delivered, counts.failed);
    exit_code = (counts.failed || failed_local || g_produce_stop) ? 1 : 0;
done:
    if (truth) fclose(truth);
    if (rk) rd_kafka_destroy(rk);
    avro_tools_ua_writer_free(w);
    event_list_free(&l);
    produce_truth_map_free(&tmap);
    json_buf_free(&line);
    free(uid);
    registry_free(reg);
    config_free(&o.cfg);
    return exit_code;
}
