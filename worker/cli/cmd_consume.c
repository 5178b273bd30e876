/* cmd_consume: `ievo consume`, prints a topic's InterestVectors (or with --input its
 * UserActions) as JSON lines.
 *
 * An InterestVector is decoded with avro-c's generic reader (avro_tools), not the worker's hand
 * codec, so what this prints is an independent check of the worker's output; without a schema
 * registry a Confluent schema id other than output.schema.id is said (once per id). A UserAction (--input) is decoded
 * and validated the way the worker does it (serde.h, with input.format, input.schema.id,
 * input.max.record.bytes and the registry), so a record it reports undecodable is one the worker
 * dead-letters, for the same reason. One JSON object per line: every schema field, then "partition" and
 * "offset" of the Kafka record.
 *
 * Without -G every partition is assigned directly (the partition count comes from a metadata
 * request) and nothing is committed; with -G GROUP the consumer subscribes and commits as a
 * normal group member (a group.id in the settings alone never makes it join one: a properties
 * file shared with the worker names the worker's group). Stops after -c N printed records, or
 * with -e once every assigned partition has reached its end, or on SIGINT/SIGTERM (a second
 * signal ends it at once). A record that does not decode
 * is logged, each on its own line with its partition, offset and reason, is not printed nor
 * counted by -c, and makes the exit status 1.
 * With schema.registry.url set, each record's writer schema is fetched by its id (once) and
 * resolved into our schema, so any registered writer reads (the worker's serde for --input).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "avro_tools.h"
#include "cli.h"
#include "codec.h"
#include "commands.h"
#include "json_text.h"
#include "kafka_clients.h"
#include "log.h"
#include "registry.h"
#include "serde.h"
#include "settings.h"
#include "stop_signal.h"

enum { OPT_FROM_BEGINNING = CLI_OPT_ID_FIRST_FREE, OPT_FORMAT, OPT_INPUT };

static const cli_option OPTS[] = {
    CLI_OPT_BOOTSTRAP,
    CLI_OPT_TOPIC("the topic to read (with --input: default input.topic)", "output.topic"),
    {"input", OPT_INPUT, NULL, "read UserAction records (the worker's input) instead, checked as the worker checks them", NULL},
    {"from-beginning", OPT_FROM_BEGINNING, NULL, "start at the earliest offset (default: the end)", NULL},
    CLI_OPT_COUNT("exit after N records printed (undecodable ones do not count)"),
    CLI_OPT_UNTIL_EOF("exit when every assigned partition is at its end"),
    {"group", 'G', "GROUP", "join consumer group GROUP and commit (default: assign every partition, no commits)", NULL},
    {"format", OPT_FORMAT, "confluent|avro", "the records' wire format (default: output.format; with --input, input.format)", NULL},
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "consume",
    .synopsis = "[-b BROKERS] [-t TOPIC] [--input] [--from-beginning] [-c N] [-e] [-G GROUP] [--format F]\n"
                " [-F FILE] [-X KEY=VALUE]...",
    .about = "Prints each InterestVector of the topic as one JSON line (every schema field, then the\n"
             "record's partition and offset), decoded with avro-c independently of the worker's codec.\n"
             "With --input, each UserAction of the input topic, decoded and checked by the worker's codec:\n"
             "what it reports undecodable, the worker dead-letters.\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_CONSUME,
    .kafka = 1,
    .notes = "With schema.registry.url set, each record is read with its writer schema from the registry\n"
             "(fetched once per schema id) into interest_vector.avsc, or user_action.avsc with --input\n"
             "(docs/schemas.md).\n",
};

typedef struct {
    const char *topic, *topic_opt, *format_opt, *group;
    int from_beginning, until_eof, input;
    int64_t count;   /* -1: no limit */
    wire_format format;
    int32_t schema_id;       /* InterestVectors: output.schema.id (Confluent framing) */
    codec_in_opts in;        /* --input: the worker's input.* settings */
} consume_opts;

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    consume_opts *o = ctx;
    if (key == 't') o->topic_opt = value;
    else if (key == OPT_FORMAT) o->format_opt = value;
    else if (key == OPT_INPUT) o->input = 1;
    else if (key == OPT_FROM_BEGINNING) o->from_beginning = 1;
    else if (key == 'e') o->until_eof = 1;
    else if (key == 'G') o->group = value;
    else if (key == 'c') return cli_int(value, 0, INT64_MAX, &o->count, err, errlen);
    return 0;
}

/* The consumer: the settings' librdkafka properties, then what defines this command's reading
 * (its own group or none, commits only in a group, where to start, end-of-partition events). */
static rd_kafka_t *consume_client(const config *cfg, const consume_opts *o, char *err, size_t errlen) {
    char gid[64];
    /* rd_kafka_assign needs a group handle even when no group is joined: a private id, no commits. */
    snprintf(gid, sizeof gid, "ievo-consume-%ld-%ld", (long)getpid(), (long)time(NULL));
    static const char *const defaults[] = {
        "client.id", "ievo-consume",
        "session.timeout.ms", "6000",       /* the mock waits session.timeout - 1 s at every join */
        "heartbeat.interval.ms", "500",
        NULL, NULL};
    const char *const ours[] = {
        "group.id", o->group ? o->group : gid,
        "enable.auto.commit", o->group ? "true" : "false",
        "auto.offset.reset", o->from_beginning ? "earliest" : "latest",
        "enable.partition.eof", o->until_eof ? "true" : "false",
        NULL, NULL};
    return kafka_consumer_new(cfg, defaults, ours, err, errlen);
}

/* Subscribes in the group, or assigns every partition at the start offset. */
static int consume_start(rd_kafka_t *rk, const consume_opts *o, char *err, size_t errlen) {
    rd_kafka_resp_err_t e;
    if (o->group) {
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, o->topic, RD_KAFKA_PARTITION_UA);
        e = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (e) return snprintf(err, errlen, "cannot subscribe to %s: %s", o->topic, rd_kafka_err2str(e)), -1;
        LOG_I("consume", "subscribed to %s in group %s", o->topic, o->group);
        return 0;
    }
    int nparts;
    if (kafka_partition_count_wait(rk, o->topic, 10000, 20, &nparts, err, errlen)) return -1;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset =
            o->from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    e = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) return snprintf(err, errlen, "cannot assign %d partitions of %s: %s", nparts, o->topic, rd_kafka_err2str(e)), -1;
    LOG_I("consume", "assigned %d partitions of %s from the %s", nparts, o->topic, o->from_beginning ? "beginning" : "end");
    return 0;
}

/* -e: end-of-partition flags, cleared by a record; done when every assigned partition of the
 * topic is flagged. */
typedef struct {
    unsigned char *eof;
    int n;
} consume_eof;

static int consume_eof_mark(consume_eof *e, int32_t p, int at_eof) {
    if (p < 0) return 0;
    if (p >= e->n) {
        int nn = p + 64;
        unsigned char *ne = realloc(e->eof, (size_t)nn);
        if (!ne) return -1;
        memset(ne + e->n, 0, (size_t)(nn - e->n));
        e->eof = ne;
        e->n = nn;
    }
    e->eof[p] = (unsigned char)at_eof;
    return 0;
}

static int consume_eof_all(rd_kafka_t *rk, const consume_eof *e, const char *topic) {
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(rk, &a)) return 0;
    int mine = 0, done = 1;
    for (int i = 0; i < a->cnt; i++) {
        if (strcmp(a->elems[i].topic, topic) != 0) continue;
        mine++;
        int32_t p = a->elems[i].partition;
        if (p >= e->n || !e->eof[p]) done = 0;
    }
    rd_kafka_topic_partition_list_destroy(a);
    return mine > 0 && done;
}

/* With a registry: the writer schema of m's id added to r (fetched once per id; the registry
 * caches it). Returns 0, or -1 with err. */
static int consume_writer(registry *reg, avro_tools_iv_reader *r, const rd_kafka_message_t *m, char *err,
                          size_t errlen) {
    const uint8_t *b = m->payload;
    if (m->len < 5 || b[0] != 0) return 0;   /* avro_tools_iv_read reports the framing */
    int32_t id = (int32_t)((uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4]);
    if (avro_tools_iv_reader_has_writer(r, id)) return 0;
    const char *schema;
    if (registry_schema_by_id(reg, id, &schema, err, errlen)) return -1;
    return avro_tools_iv_reader_add_writer(r, id, schema, err, errlen);
}

/* ---- the loop ------------------------------------------------------------------------------- */

typedef struct {
    rd_kafka_t *rk;
    avro_tools_iv_reader *r;   /* InterestVectors */
    serde_in *in;              /* --input: UserActions, as the worker reads them */
    registry *reg;             /* NULL: no schema registry, every record in our schema */
    int32_t other_ids[16];     /* without a registry: the other schema ids met (note_other_id) */
    int n_other_ids;
} consume_io;

typedef struct {
    int64_t printed, bad;
    int fatal;
} consume_counts;

/* A UserAction as one JSON line: every schema field, then the record's partition and offset. */
static int user_action_write_json(const user_action *ua, int32_t partition, int64_t offset, FILE *f, char *err,
                                  size_t errlen) {
    json_t *o = json_pack("{s:o,s:o,s:o,s:I,s:o,s:o,s:i,s:I}", "user_id", json_string_lossy(ua->user_id, ua->user_id_len),
                          "item_id", json_string_lossy(ua->item_id, ua->item_id_len), "action",
                          json_string_lossy(ua->action, ua->action_len), "ts", (json_int_t)ua->ts, "value",
                          ua->has_value ? json_real_or_null(ua->value) : json_null(), "text",
                          ua->has_text ? json_string_lossy(ua->text, ua->text_len) : json_null(), "partition", partition,
                          "offset", (json_int_t)offset);
    int bad = !o || json_dumpf(o, f, IEVO_JSON_DUMP) || fputc('\n', f) == EOF;
    if (bad) snprintf(err, errlen, "cannot write stdout: %s", o ? strerror(errno) : "out of memory");
    json_decref(o);
    return bad ? -1 : 0;
}

/* Without a registry, a record of another schema id than output.schema.id was read as ours: right
 * for a worker's output whose id a registry gave (a worker writes nothing but our schema), wrong
 * for any other writer. Said once per id, with where the record is. */
static void note_other_id(consume_io *io, const consume_opts *o, const rd_kafka_message_t *m, int32_t id) {
    for (int i = 0; i < io->n_other_ids; i++)
        if (io->other_ids[i] == id) return;
    if (io->n_other_ids < (int)(sizeof io->other_ids / sizeof io->other_ids[0])) io->other_ids[io->n_other_ids++] = id;
    LOG_WF("consume", LOG_AT(LF_TOPIC(o->topic), LF_PARTITION(m->partition), LF_OFFSET(m->offset),
                             LF_ERROR(codec_status_name(CODEC_E_SCHEMA_ID))),
           "%s [%d] offset %" PRId64 ": schema id %d, not output.schema.id %d: read as interest_vector.avsc, which "
           "is what a worker writes under any id; another writer's records need schema.registry.url (said once per "
           "id)", o->topic, (int)m->partition, m->offset, (int)id, (int)o->schema_id);
}

/* Decodes and prints one record. Returns 0; or 1 when it does not decode (why: the reason, cls:
 * its class); or -1 when stdout fails (err). */
static int consume_record(consume_io *io, const consume_opts *o, const rd_kafka_message_t *m, char *why,
                          size_t whylen, const char **cls, char *err, size_t errlen) {
    if (o->input) {
        user_action ua;
        codec_status st = serde_decode_user_action(io->in, m->payload, m->len, &ua, why, whylen);
        if (st != CODEC_OK) return *cls = codec_status_name(st), 1;
        return user_action_write_json(&ua, m->partition, m->offset, stdout, err, errlen);
    }
    interest_vector iv;
    int32_t id = -1;
    if (io->reg && consume_writer(io->reg, io->r, m, why, whylen)) return *cls = codec_status_name(CODEC_E_REGISTRY), 1;
    if (avro_tools_iv_read(io->r, m->payload, m->len, &iv, &id, why, whylen)) return *cls = "avro", 1;
    if (!io->reg && o->format == WIRE_CONFLUENT && id != o->schema_id) note_other_id(io, o, m, id);
    return avro_tools_iv_write_json(&iv, m->partition, m->offset, stdout, err, errlen);
}

/* One message from the poll: a record to print, an end of partition, or an error. Returns 1
 * when -e is satisfied. */
static int consume_message(consume_io *io, const consume_opts *o, consume_eof *eof, rd_kafka_message_t *m,
                           consume_counts *n) {
    char err[512], why[512];
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : o->topic, *cls = NULL;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (!o->until_eof) return 0;
        if (consume_eof_mark(eof, m->partition, 1)) return n->fatal = 1, 0;
        return consume_eof_all(io->rk, eof, o->topic);
    }
    if (m->err) {
        LOG_EF("consume", LOG_AT(LF_TOPIC(topic), LF_PARTITION(m->partition), LF_ERROR(rd_kafka_err2name(m->err))),
               "%s [%d]: %s", topic, (int)m->partition, rd_kafka_message_errstr(m));
        n->fatal |= m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                    m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || m->err == RD_KAFKA_RESP_ERR__FATAL;
        return 0;
    }
    if (o->until_eof && consume_eof_mark(eof, m->partition, 0)) return n->fatal = 1, 0;
    int rc = consume_record(io, o, m, why, sizeof why, &cls, err, sizeof err);
    if (rc > 0) {
        LOG_EF("consume", LOG_AT(LF_TOPIC(topic), LF_PARTITION(m->partition), LF_OFFSET(m->offset), LF_ERROR(cls)),
               "%s [%d] offset %" PRId64 ": %s", topic, (int)m->partition, m->offset, why);
        n->bad++;
    } else if (rc < 0) {
        LOG_E("consume", "%s", err);
        n->fatal = 1;
    } else {
        n->printed++;
    }
    return 0;
}

static void consume_loop(consume_io *io, const consume_opts *o, consume_counts *n) {
    consume_eof eof = {NULL, 0};
    int done = 0;
    while (!stop_signal_received() && !n->fatal && !done && (o->count < 0 || n->printed < o->count)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(io->rk, 200);
        if (!m) {
            fflush(stdout);
            continue;
        }
        done = consume_message(io, o, &eof, m, n);
        rd_kafka_message_destroy(m);
    }
    free(eof.eof);
    fflush(stdout);
}

/* The readers: the registry when schema.registry.url is set, then the InterestVector reader or,
 * with --input, the worker's. Returns CLI_OK, or the exit status of what failed. */
static int consume_readers(const consume_opts *o, const config *cfg, registry_opts *ro, consume_io *io) {
    char err[1024];
    if (registry_opts_from_config(ro, cfg, SETTINGS_CMD_CONSUME, err, sizeof err)) {
        fprintf(stderr, "ievo consume: %s\n", err);
        return CLI_USAGE;
    }
    if (ro->n_urls && o->format != WIRE_CONFLUENT) {
        fprintf(stderr, "ievo consume: schema.registry.url needs the confluent format (the schema id travels in the "
                        "Confluent header)\n");
        return CLI_USAGE;
    }
    if ((ro->n_urls && registry_new(ro, &io->reg, err, sizeof err)) ||
        (o->input ? serde_in_new(&(serde_in_opts){io->reg, ro, o->in, SERDE_USER_ACTION, stop_signal_received}, &io->in,
                                 err, sizeof err)
                  : !(io->r = avro_tools_iv_reader_new(o->format, err, sizeof err)))) {
        LOG_E("consume", "%s", err);
        return CLI_FAILED;
    }
    return CLI_OK;
}

static int consume_run(const consume_opts *o, const config *cfg) {
    char err[1024];
    registry_opts ro;   /* outlives the registry and the readers that point into it */
    consume_io io = {0};
    int rc = consume_readers(o, cfg, &ro, &io);
    if (rc == CLI_OK && !(io.rk = consume_client(cfg, o, err, sizeof err))) {
        LOG_E("consume", "%s", err);
        rc = CLI_FAILED;
    } else if (rc == CLI_OK && consume_start(io.rk, o, err, sizeof err) == 0) {
        consume_counts n = {0, 0, 0};
        consume_loop(&io, o, &n);
        if (stop_signal_received()) LOG_I("consume", "stopped by %s", stop_signal_name(stop_signal_received()));
        LOG_IF("consume", LOG_AT(LF_TOPIC(o->topic), LF_COUNT(n.printed)),
               "%" PRId64 " records printed, %" PRId64 " undecodable%s", n.printed, n.bad,
               n.bad ? " (each logged above; exit status 1)" : "");
        rc = n.fatal || n.bad ? CLI_FAILED : CLI_OK;
    } else if (rc == CLI_OK && stop_signal_received()) {
        LOG_I("consume", "%s", err); /* stopped while starting: nothing was read, nothing failed */
    } else if (rc == CLI_OK) {
        LOG_E("consume", "%s", err);
        rc = CLI_FAILED;
    }
    if (io.rk) {
        rd_kafka_consumer_close(io.rk);
        rd_kafka_destroy(io.rk);
    }
    avro_tools_iv_reader_free(io.r);
    serde_in_free(io.in);
    registry_free(io.reg);
    return rc;
}

/* The topic, its format and what a record must carry: the output's settings, or with --input
 * the worker's input settings. */
static int consume_resolve(consume_opts *o, const config *cfg, char *err, size_t errlen) {
    int format;
    int64_t id, max_bytes = 0;
    const char *topic;
    if (settings_string(cfg, o->input ? "input.topic" : "output.topic", &topic, err, errlen) ||
        settings_enum(cfg, o->input ? "input.format" : "output.format", &format, err, errlen) ||
        settings_int(cfg, o->input ? "input.schema.id" : "output.schema.id", &id, err, errlen) ||
        (o->input && settings_int(cfg, "input.max.record.bytes", &max_bytes, err, errlen)))
        return -1;
    o->topic = o->topic_opt ? o->topic_opt : topic;
    if (o->format_opt) format = settings_enum_index("output.format", o->format_opt); /* one spelling for both */
    o->format = (wire_format)format;
    o->schema_id = (int32_t)id;
    o->in = (codec_in_opts){(wire_format)format, (int32_t)id, (size_t)max_bytes};
    return 0;
}

int cmd_consume(int argc, char **argv) {
    consume_opts o = {.count = -1};
    cli_args a;
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a);
    char err[512];
    if (rc == CLI_OK && o.format_opt && settings_enum_index("output.format", o.format_opt) < 0)
        rc = cli_usage_error(&CMD, "--format: '%s' is not confluent or avro", o.format_opt);
    if (rc == CLI_OK && consume_resolve(&o, &a.cfg, err, sizeof err)) {
        fprintf(stderr, "ievo consume: %s\n", err);
        rc = CLI_USAGE;
    }
    if (rc == CLI_OK && !config_get(&a.cfg, "bootstrap.servers", NULL))
        rc = cli_usage_error(&CMD, "no bootstrap servers: give -b BROKERS (or bootstrap.servers in -F FILE or "
                                   "IEVO_CFG_BOOTSTRAP_SERVERS)");
    if (rc == CLI_OK) {
        stop_signal_catch();
        rc = consume_run(&o, &a.cfg);
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}
