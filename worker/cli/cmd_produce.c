/* cmd_produce: `ievo produce`, loads UserAction events (or the item catalogue) into a topic.
 *
 * Events come from an event source (MovieLens, synthetic, JSON lines), already sorted by event
 * time, and are written in that order keyed by user_id, so each user's events land in one
 * partition in event-time order. Records are encoded with avro-c's generic writer (avro_tools),
 * independently of the worker's hand decoder. The producer is idempotent (no duplicates or
 * reordering on retries), copies payloads (RD_KAFKA_MSG_F_COPY), waits on QUEUE_FULL by
 * polling, and counts delivery failures: any failure makes the exit status 1.
 *
 * --repeat K --user-prefix P replays the data set K times as disjoint users "P<k>-<user>",
 * repeat k shifted by k * (span + 1 ms) so the whole stream stays in event-time order.
 * The Kafka timestamp is left to the producer (CreateTime now): event times of 1997 or 2024
 * would make a real broker's time-based retention delete the data at once.
 * --truth FILE (synthetic only) writes the generator's ground truth per produced event
 * (synth_truth in event_source.h).
 * --catalogue writes the item catalogue instead: Item records (schemas/item.avsc) keyed by
 * item_id, from --movielens DIR (u.item: title and genres, as the trainer reads them) or --items
 * FILE ({"item_id","text"} lines), ts = now, to items.topic with items.format / items.schema.id.
 * With schema.registry.url set, the schema (user_action.avsc, or item.avsc with --catalogue) is
 * registered under the topic's subject (or looked up: auto.register.schemas=false) and the records
 * carry the id the registry gives (docs/schemas.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "avro_tools.h"
#include "cli.h"
#include "clock.h"
#include "codec.h"
#include "commands.h"
#include "event_source.h"
#include "item_codec.h"
#include "item_table.h"
#include "kafka_clients.h"
#include "log.h"
#include "schemas.h"
#include "serde.h"
#include "settings.h"

enum {
    OPT_CATALOGUE = CLI_OPT_ID_FIRST_FREE,
    OPT_FORMAT,
    OPT_SCHEMA_ID,
    OPT_RATE,
    OPT_REPEAT,
    OPT_USER_PREFIX,
    OPT_TRUTH,
};

static const cli_option OPTS[] = {
    CLI_OPT_BOOTSTRAP,
    CLI_OPT_TOPIC("the topic to write (default: input.topic; with --catalogue, items.topic)", NULL),
    CLI_OPTS_DATA,
    {"catalogue", OPT_CATALOGUE, NULL, "write the item catalogue (from --movielens or --items) instead of events", NULL},
    {"items", CLI_OPT_ID_ITEMS, "FILE", "with --catalogue: {\"item_id\",\"text\"} lines (- for stdin)", NULL},
    {"format", OPT_FORMAT, "confluent|avro", "wire format (default: input.format; with --catalogue, items.format)", NULL},
    {"schema-id", OPT_SCHEMA_ID, "N", "Confluent schema id (default: input.schema.id; items.schema.id)", NULL},
    CLI_OPT_COUNT("produce at most N events"),
    {"rate", OPT_RATE, "EVENTS_PER_S", "at most this many events per second", NULL},
    {"repeat", OPT_REPEAT, "K", "produce the data set K times, as users P<k>-<user>, each repeat after the last", NULL},
    {"user-prefix", OPT_USER_PREFIX, "P", "rename users P<k>-<user> (default 'r' with --repeat)", NULL},
    {"truth", OPT_TRUTH, "FILE", "with --synthetic: the ground truth per event as JSON lines", NULL},
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "produce",
    .synopsis = "[-b BROKERS] [-t TOPIC] (--movielens DIR | --synthetic USERS:EVENTS | --jsonl FILE|-)\n"
                " [--format F] [--schema-id N] [-c N] [--rate R] [--repeat K [--user-prefix P]] [--truth FILE]\n"
                "[-b BROKERS] [-t TOPIC] --catalogue (--movielens DIR | --items FILE|-) [--format F] [--schema-id N]",
    .about = "Writes UserAction records keyed by user_id in event-time order (idempotent producer), or with\n"
             "--catalogue the item catalogue: Item records (item_id, text, ts) keyed by item_id; from\n"
             "MovieLens the text is u.item's title and genres.\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_PRODUCE,
    .kafka = 1,
    .notes = "With schema.registry.url set, the schema is registered under the topic's subject (or looked up:\n"
             "auto.register.schemas=false) and the records carry the registry's id: no --schema-id then, and\n"
             "the format is confluent (docs/schemas.md).\n",
};

typedef struct {
    cli_data data;
    const char *topic, *items, *truth, *user_prefix, *format_opt;
    int catalogue, schema_id_set;
    wire_format format;
    int32_t schema_id;
    int64_t limit, repeat;   /* limit -1: all */
    double rate;
} produce_opts;

typedef struct {
    int64_t delivered, failed;
} produce_counts;

static volatile sig_atomic_t g_produce_stop = 0;
static void produce_on_signal(int sig) { g_produce_stop = sig; }

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    produce_opts *o = ctx;
    int64_t x = 0;
    int rc = cli_data_option(&o->data, key, value, err, errlen);
    if (rc) return rc < 0 ? -1 : 0;
    switch (key) {
    case 't': o->topic = value; break;
    case OPT_CATALOGUE: o->catalogue = 1; break;
    case CLI_OPT_ID_ITEMS: o->items = value; break;
    case OPT_FORMAT: o->format_opt = value; break;
    case OPT_SCHEMA_ID:
        if (cli_int(value, 0, INT32_MAX, &x, err, errlen)) return -1;
        o->schema_id = (int32_t)x;
        o->schema_id_set = 1;
        break;
    case 'c': return cli_int(value, 0, INT64_MAX, &o->limit, err, errlen);
    case OPT_RATE: return cli_double(value, 0, 1e9, &o->rate, err, errlen);
    case OPT_REPEAT: return cli_int(value, 1, 1000000, &o->repeat, err, errlen);
    case OPT_USER_PREFIX: o->user_prefix = value; break;
    case OPT_TRUTH: o->truth = value; break;
    }
    return 0;
}

/* The combinations that make sense; a usage error names what is wrong. */
static int produce_check(const produce_opts *o) {
    int sources = cli_data_sources(&o->data);
    if (o->catalogue) {
        if (!!o->data.movielens + !!o->items != 1 || o->data.synthetic || o->data.jsonl)
            return cli_usage_error(&CMD, "--catalogue takes exactly one of --movielens, --items");
        if (o->truth || o->repeat > 1 || o->limit >= 0 || o->rate > 0 || o->user_prefix)
            return cli_usage_error(&CMD, "--catalogue takes no event options (--truth, --repeat, -c, --rate, --user-prefix)");
        return CLI_OK;
    }
    if (o->items) return cli_usage_error(&CMD, "--items FILE goes with --catalogue");
    if (sources != 1) return cli_usage_error(&CMD, "give exactly one of --movielens, --synthetic, --jsonl");
    if (o->truth && !o->data.synthetic)
        return cli_usage_error(&CMD, "--truth needs --synthetic (only the generator knows the topics)");
    return CLI_OK;
}

/* Topic, format and schema id: the options, else the mode's settings. */
static int produce_resolve(produce_opts *o, const config *cfg, char *err, size_t errlen) {
    const char *topic_key = o->catalogue ? "items.topic" : "input.topic";
    const char *format_key = o->catalogue ? "items.format" : "input.format";
    int format = o->format_opt ? settings_enum_index(format_key, o->format_opt) : 0;
    int64_t id;
    if (o->format_opt && format < 0) return snprintf(err, errlen, "--format: '%s' is not confluent or avro", o->format_opt), -1;
    if ((!o->topic && settings_string(cfg, topic_key, &o->topic, err, errlen)) ||
        (!o->format_opt && settings_enum(cfg, format_key, &format, err, errlen)) ||
        settings_int(cfg, o->catalogue ? "items.schema.id" : "input.schema.id", &id, err, errlen))
        return -1;
    o->format = (wire_format)format;
    if (!o->schema_id_set) o->schema_id = (int32_t)id;
    return 0;
}

/* With schema.registry.url set: the registry's id for our schema under the topic's subject, in
 * o->schema_id. Returns CLI_OK (also without a registry), or the exit status of what failed. */
static int produce_registry_id(produce_opts *o, const config *cfg) {
    char err[1024];
    registry_opts ro;
    registry *reg = NULL;
    if (registry_opts_from_config(&ro, cfg, SETTINGS_CMD_PRODUCE, err, sizeof err)) {
        fprintf(stderr, "ievo produce: %s\n", err);
        return CLI_USAGE;
    }
    if (!ro.n_urls) return CLI_OK;
    if (o->schema_id_set || o->format != WIRE_CONFLUENT)
        return cli_usage_error(&CMD, "schema.registry.url gives the schema id: drop --schema-id, and write the "
                                     "confluent format");
    int rc = CLI_OK;
    if (registry_new(&ro, &reg, err, sizeof err) ||
        serde_out_id(reg, &ro, o->topic, o->catalogue ? ievo_schema_item_json : ievo_schema_user_action_json, NULL,
                     &o->schema_id, err, sizeof err)) {
        LOG_E("produce", "%s", err);
        rc = CLI_FAILED;
    }
    registry_free(reg);
    return rc;
}

/* ---- the producer --------------------------------------------------------------------------- */

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
    char err[512], kerr[400];
    rd_kafka_conf_t *conf = kafka_conf_for(cfg, KAFKA_PRODUCER, defaults, settings_names(), err, sizeof err);
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

/* One record (payload copied), waiting while the queue is full. Returns 0, or -1 (logged). */
static int produce_send(rd_kafka_t *rk, const char *topic, const char *key, size_t key_len, const void *payload,
                        size_t len) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
                                                  RD_KAFKA_V_VALUE((void *)payload, len),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (e) LOG_E("produce", "cannot produce to %s: %s", topic, rd_kafka_err2str(e));
            return e ? -1 : 0;
        }
        rd_kafka_poll(rk, 10);
    }
}

/* Waits for every delivery report (a minute at most between reports); what is left counts as failed. */
static void produce_flush(rd_kafka_t *rk, produce_counts *counts) {
    while (rd_kafka_outq_len(rk) > 0) {
        if (rd_kafka_flush(rk, 60000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
            LOG_E("produce", "%d messages still undelivered after 60 s; giving up", rd_kafka_outq_len(rk));
            counts->failed += rd_kafka_outq_len(rk);
            break;
        }
    }
}

/* ---- --catalogue ------------------------------------------------------------------------------ */

static int produce_catalogue(const produce_opts *o, const config *cfg) {
    char err[512];
    item_catalog cat = {0};
    item_writer *iw = NULL;
    rd_kafka_t *rk = NULL;
    produce_counts counts = {0, 0};
    int failed = 1;
    if (o->data.movielens ? item_catalog_movielens(o->data.movielens, &cat, err, sizeof err)
                          : item_catalog_jsonl(o->items, &cat, err, sizeof err))
        LOG_E("produce", "%s", err);
    else if (!(iw = item_writer_new(o->format, o->schema_id, err, sizeof err)))
        LOG_E("produce", "%s", err);
    else if ((rk = new_producer(cfg, &counts)))
        failed = 0;
    int64_t ts = clock_wall_ms();
    for (size_t i = 0; i < cat.n && !failed; i++) {
        item_record r = {cat.ids[i], strlen(cat.ids[i]), cat.texts[i], strlen(cat.texts[i]), ts};
        const uint8_t *payload;
        size_t len;
        if (item_write(iw, &r, &payload, &len, err, sizeof err)) LOG_E("produce", "%s", err), failed = 1;
        else failed = produce_send(rk, o->topic, r.item_id, r.item_id_len, payload, len) != 0;
    }
    if (rk) {
        produce_flush(rk, &counts);
        LOG_I("produce", "%zu items to %s: %lld delivered, %lld failed", cat.n, o->topic, (long long)counts.delivered,
              (long long)counts.failed);
        rd_kafka_destroy(rk);
    }
    item_writer_free(iw);
    item_catalog_free(&cat);
    return failed || counts.failed ? CLI_FAILED : CLI_OK;
}

/* ---- events ------------------------------------------------------------------------------------- */

typedef struct {
    const produce_opts *o;
    rd_kafka_t *rk;
    avro_tools_ua_writer *w;
    synth_truth *truth;
    const char *prefix;      /* users renamed <prefix><k>-<user>, or NULL */
    char *uid;               /* the renamed id */
    size_t uid_cap;
    int64_t produced, max_total;
    double t0;
} produce_run;

/* The user id as sent: the event's, or <prefix><k>-<user>. NULL when out of memory. */
static const char *produce_user_id(produce_run *r, const source_event *e, int64_t k, size_t *len) {
    *len = strlen(e->user_id);
    if (!r->prefix) return e->user_id;
    size_t need = strlen(r->prefix) + 24 + *len;
    if (need > r->uid_cap) {
        char *nu = realloc(r->uid, need);
        if (!nu) return NULL;
        r->uid = nu;
        r->uid_cap = need;
    }
    *len = (size_t)snprintf(r->uid, r->uid_cap, "%s%" PRId64 "-%s", r->prefix, k, e->user_id);
    return r->uid;
}

/* --rate: event n is due at t0 + n / rate; delivery callbacks are served while waiting. */
static void produce_pace(produce_run *r) {
    if (r->o->rate <= 0) return;
    double due = r->t0 + (double)r->produced / r->o->rate, now;
    while ((now = clock_mono_s()) < due && !g_produce_stop) rd_kafka_poll(r->rk, (int)((due - now) * 1000) + 1);
}

/* One event of repeat k, shifted by shift ms. Returns 0, or -1 (logged). */
static int produce_event(produce_run *r, const source_event *e, size_t i, int64_t k, int64_t shift) {
    char err[512];
    user_action ua = {0};
    if (!(ua.user_id = produce_user_id(r, e, k, &ua.user_id_len))) return LOG_E("produce", "out of memory"), -1;
    ua.item_id = e->item_id, ua.item_id_len = strlen(e->item_id);
    ua.action = e->action, ua.action_len = strlen(e->action);
    ua.ts = e->ts + shift;
    ua.has_value = e->has_value, ua.value = e->value;
    if (e->text) ua.has_text = 1, ua.text = e->text, ua.text_len = strlen(e->text);
    const uint8_t *payload;
    size_t len;
    if (avro_tools_ua_write(r->w, &ua, &payload, &len, err, sizeof err))
        return LOG_E("produce", "event %zu (user %s): %s", i, e->user_id, err), -1;
    produce_pace(r);
    if (produce_send(r->rk, r->o->topic, ua.user_id, ua.user_id_len, payload, len)) return -1;
    if (++r->produced % 1024 == 0) rd_kafka_poll(r->rk, 0);
    if (r->truth && synth_truth_write(r->truth, e, ua.user_id, ua.user_id_len, ua.ts, err, sizeof err))
        return LOG_E("produce", "%s", err), -1;
    return 0;
}

/* Every repeat of the list, until the count, a signal or a failure. Returns 0, or -1. */
static int produce_all(produce_run *r, const event_list *l) {
    int64_t span = l->n ? l->ev[l->n - 1].ts - l->ev[0].ts + 1 : 0;
    for (int64_t k = 0; k < r->o->repeat && r->produced < r->max_total && !g_produce_stop; k++) {
        if (r->truth) synth_truth_restart(r->truth);
        for (size_t i = 0; i < l->n && r->produced < r->max_total && !g_produce_stop; i++)
            if (produce_event(r, &l->ev[i], i, k, k * span)) return -1;
    }
    return 0;
}

static int produce_events(const produce_opts *o, const config *cfg) {
    char err[512];
    event_list l = {0};
    produce_counts counts = {0, 0};
    produce_run r = {.o = o, .max_total = o->limit >= 0 ? o->limit : INT64_MAX};
    r.prefix = o->user_prefix ? o->user_prefix : o->repeat > 1 ? "r" : NULL;
    int failed = 1;
    double t_load = clock_mono_s();
    if (!(r.w = avro_tools_ua_writer_new(o->format, o->schema_id, err, sizeof err)) || cli_data_load(&o->data, &l, err, sizeof err) ||
        (o->truth && synth_truth_open(&r.truth, o->truth, err, sizeof err)))
        LOG_E("produce", "%s", err);
    else if ((r.rk = new_producer(cfg, &counts)))
        failed = 0;
    if (!failed) {
        LOG_I("produce", "loaded %zu events in %.2f s", l.n, clock_mono_s() - t_load);
        cli_on_stop_signals(produce_on_signal);
        r.t0 = clock_mono_s();
        failed = produce_all(&r, &l) != 0;
        if (g_produce_stop) LOG_W("produce", "signal %d: stopping after %" PRId64 " events", (int)g_produce_stop, r.produced);
        produce_flush(r.rk, &counts);
        double secs = clock_mono_s() - r.t0;
        LOG_I("produce", "%" PRId64 " events to %s in %.3f s (%.0f events/s), %" PRId64 " delivered, %" PRId64 " failed",
              r.produced, o->topic, secs, secs > 0 ? (double)r.produced / secs : 0.0, counts.delivered, counts.failed);
    }
    if (synth_truth_close(r.truth, err, sizeof err)) LOG_E("produce", "%s", err), failed = 1;
    if (r.rk) rd_kafka_destroy(r.rk);
    avro_tools_ua_writer_free(r.w);
    event_list_free(&l);
    free(r.uid);
    return failed || counts.failed || g_produce_stop ? CLI_FAILED : CLI_OK;
}

int cmd_produce(int argc, char **argv) {
    produce_opts o = {.limit = -1, .repeat = 1};
    cli_data_init(&o.data);
    cli_args a;
    char err[512];
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a);
    if (rc == CLI_OK) rc = produce_check(&o);
    if (rc == CLI_OK && produce_resolve(&o, &a.cfg, err, sizeof err)) {
        fprintf(stderr, "ievo produce: %s\n", err);
        rc = CLI_USAGE;
    }
    if (rc == CLI_OK && !config_get(&a.cfg, "bootstrap.servers", NULL))
        rc = cli_usage_error(&CMD, "no bootstrap servers: give -b BROKERS (or bootstrap.servers in -F FILE or "
                                   "IEVO_CFG_BOOTSTRAP_SERVERS)");
    if (rc == CLI_OK) rc = produce_registry_id(&o, &a.cfg);
    if (rc == CLI_OK) rc = o.catalogue ? produce_catalogue(&o, &a.cfg) : produce_events(&o, &a.cfg);
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}
