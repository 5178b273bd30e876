/* cmd_consume: `ievo consume`, prints a topic's InterestVectors as JSON lines.
 *
 * Each record is decoded with avro-c's generic reader (avro_tools), not the worker's hand
 * codec, so what this prints is an independent check of the worker's output. One JSON object
 * per line: every schema field, then "partition" and "offset" of the Kafka record.
 *
 * Without -G every partition is assigned directly (the partition count comes from a metadata
 * request) and nothing is committed; with -G GROUP the consumer subscribes and commits as a
 * normal group member (a group.id in the settings alone never makes it join one: a properties
 * file shared with the worker names the worker's group). Stops after -c N records, or with -e
 * once every assigned partition has reached its end, or on SIGINT/SIGTERM. A record that does
 * not decode is logged with its partition and offset and makes the exit status 1.
 * With schema.registry.url set, each record's writer schema is fetched by its id (once) and
 * resolved into interest_vector.avsc, so any registered writer of InterestVector reads.
 */
#include <inttypes.h>
#include <signal.h>
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
#include "kafka_clients.h"
#include "log.h"
#include "registry.h"
#include "settings.h"

enum { OPT_FROM_BEGINNING = CLI_OPT_ID_FIRST_FREE, OPT_FORMAT };

static const cli_option OPTS[] = {
    CLI_OPT_BOOTSTRAP,
    CLI_OPT_TOPIC("the topic to read", "output.topic"),
    {"from-beginning", OPT_FROM_BEGINNING, NULL, "start at the earliest offset (default: the end)", NULL},
    CLI_OPT_COUNT("exit after N records"),
    CLI_OPT_UNTIL_EOF("exit when every assigned partition is at its end"),
    {"group", 'G', "GROUP", "join consumer group GROUP and commit (default: assign every partition, no commits)", NULL},
    {"format", OPT_FORMAT, "confluent|avro", "the records' wire format", "output.format"},
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "consume",
    .synopsis = "[-b BROKERS] [-t TOPIC] [--from-beginning] [-c N] [-e] [-G GROUP] [--format F]\n"
                " [-F FILE] [-X KEY=VALUE]...",
    .about = "Prints each InterestVector of the topic as one JSON line (every schema field, then the\n"
             "record's partition and offset), decoded with avro-c independently of the worker's codec.\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_CONSUME,
    .kafka = 1,
    .notes = "With schema.registry.url set, each record is read with its writer schema from the registry\n"
             "(fetched once per schema id) into interest_vector.avsc (docs/schemas.md).\n",
};

typedef struct {
    const char *topic, *group;
    int from_beginning, until_eof;
    int64_t count;   /* -1: no limit */
    wire_format format;
} consume_opts;

static volatile sig_atomic_t g_consume_stop = 0;
static void consume_on_signal(int sig) { g_consume_stop = sig; }

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    consume_opts *o = ctx;
    if (key == OPT_FROM_BEGINNING) o->from_beginning = 1;
    else if (key == 'e') o->until_eof = 1;
    else if (key == 'G') o->group = value;
    else if (key == 'c') return cli_int(value, 0, INT64_MAX, &o->count, err, errlen);
    return 0;
}

static void consume_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
    log_msg(l, "consume", "rdkafka %s: %s", fac, buf);
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
    return kafka_consumer_new(cfg, defaults, ours, consume_kafka_log, err, errlen);
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
    avro_tools_iv_reader *r;
    registry *reg;   /* NULL: no schema registry, every record in the reader's schema */
} consume_io;

typedef struct {
    int64_t printed, bad;
    int fatal;
} consume_counts;

/* One message from the poll: a record to print, an end of partition, or an error. Returns 1
 * when -e is satisfied. */
static int consume_message(const consume_io *io, const consume_opts *o, consume_eof *eof, rd_kafka_message_t *m,
                           consume_counts *n) {
    char err[1024];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (!o->until_eof) return 0;
        if (consume_eof_mark(eof, m->partition, 1)) return n->fatal = 1, 0;
        return consume_eof_all(io->rk, eof, o->topic);
    }
    if (m->err) {
        LOG_E("consume", "%s [%d]: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : o->topic, (int)m->partition,
              rd_kafka_message_errstr(m));
        n->fatal |= m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                    m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || m->err == RD_KAFKA_RESP_ERR__FATAL;
        return 0;
    }
    if (o->until_eof && consume_eof_mark(eof, m->partition, 0)) return n->fatal = 1, 0;
    interest_vector iv;
    if ((io->reg && consume_writer(io->reg, io->r, m, err, sizeof err)) ||
        avro_tools_iv_read(io->r, m->payload, m->len, &iv, NULL, err, sizeof err)) {
        LOG_E("consume", "%s [%d] offset %" PRId64 ": %s", o->topic, (int)m->partition, m->offset, err);
        n->bad++;
    } else if (avro_tools_iv_write_json(&iv, m->partition, m->offset, stdout, err, sizeof err)) {
        LOG_E("consume", "%s", err);
        n->fatal = 1;
    } else {
        n->printed++;
    }
    return 0;
}

static void consume_loop(const consume_io *io, const consume_opts *o, consume_counts *n) {
    consume_eof eof = {NULL, 0};
    int done = 0;
    while (!g_consume_stop && !n->fatal && !done && (o->count < 0 || n->printed + n->bad < o->count)) {
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

static int consume_run(const consume_opts *o, const config *cfg) {
    char err[1024];
    registry_opts ro;
    consume_io io = {NULL, NULL, NULL};
    int rc = CLI_FAILED;
    if (registry_opts_from_config(&ro, cfg, SETTINGS_CMD_CONSUME, err, sizeof err)) {
        fprintf(stderr, "ievo consume: %s\n", err);
        return CLI_USAGE;
    }
    if (ro.n_urls && o->format != WIRE_CONFLUENT) {
        fprintf(stderr, "ievo consume: schema.registry.url needs output.format=confluent (the schema id travels in "
                        "the Confluent header)\n");
        return CLI_USAGE;
    }
    if (ro.n_urls && registry_new(&ro, &io.reg, err, sizeof err)) {
        LOG_E("consume", "%s", err);
        return CLI_FAILED;
    }
    io.r = avro_tools_iv_reader_new(o->format, err, sizeof err);
    io.rk = io.r ? consume_client(cfg, o, err, sizeof err) : NULL;
    if (io.rk && consume_start(io.rk, o, err, sizeof err) == 0) {
        cli_on_stop_signals(consume_on_signal);
        consume_counts n = {0, 0, 0};
        consume_loop(&io, o, &n);
        LOG_I("consume", "%" PRId64 " records printed, %" PRId64 " undecodable%s", n.printed, n.bad,
              g_consume_stop ? " (interrupted)" : "");
        rc = n.fatal || n.bad ? CLI_FAILED : CLI_OK;
    } else {
        LOG_E("consume", "%s", err);
    }
    if (io.rk) {
        rd_kafka_consumer_close(io.rk);
        rd_kafka_destroy(io.rk);
    }
    avro_tools_iv_reader_free(io.r);
    registry_free(io.reg);
    return rc;
}

int cmd_consume(int argc, char **argv) {
    consume_opts o = {.count = -1};
    cli_args a;
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a), format;
    char err[512];
    if (rc == CLI_OK && (settings_string(&a.cfg, "output.topic", &o.topic, err, sizeof err) ||
                         settings_enum(&a.cfg, "output.format", &format, err, sizeof err))) {
        fprintf(stderr, "ievo consume: %s\n", err);
        rc = CLI_USAGE;
    }
    if (rc == CLI_OK && !config_get(&a.cfg, "bootstrap.servers", NULL))
        rc = cli_usage_error(&CMD, "no bootstrap servers: give -b BROKERS (or bootstrap.servers in -F FILE or "
                                   "IEVO_CFG_BOOTSTRAP_SERVERS)");
    if (rc == CLI_OK) {
        o.format = (wire_format)format;
        rc = consume_run(&o, &a.cfg);
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}
