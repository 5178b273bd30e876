/* cmd_consume: `ievo consume`, prints a topic's InterestVectors as JSON lines.
 *
 * Each record is decoded with avro-c's generic reader (avro_tools), not the worker's hand
 * codec, so what this prints is an independent check of the worker's output. One JSON object
 * per line: every schema field, then "partition" and "offset" of the Kafka record.
 *
 * Without --group every partition is assigned directly (the partition count comes from a
 * metadata request) and nothing is committed; with --group the consumer subscribes and
 * commits as a normal group member. Stops after --count records, or with --until-eof once
 * every assigned partition has reached its end, or on SIGINT/SIGTERM. A record that does not
 * decode is logged with its partition and offset and makes the exit status non-zero.
 * With schema.registry.url set, each record's writer schema is fetched by its id (once) and
 * resolved into interest_vector.avsc, so any registered writer of InterestVector reads.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "avro_tools.h"
#include "codec.h"
#include "commands.h"
#include "config.h"
#include "log.h"
#include "serde.h"

typedef struct {
    const char *topic, *group;
    int from_beginning, until_eof;
    int64_t count;
    wire_format format;
    config cfg;
} consume_opts;

static volatile sig_atomic_t g_consume_stop = 0;
static void consume_on_signal(int sig) { g_consume_stop = sig; }

static void consume_usage(FILE *f) {
    fprintf(f,
            "usage: ievo consume -b BOOTSTRAP -t TOPIC [--from-beginning] [--count N] [--until-eof]\n"
            "                    [--group G] [--format confluent|avro] [-X prop=val]... [-F config]\n"
            "  Prints each InterestVector as one JSON line (schema fields + partition, offset),\n"
            "  decoded with avro-c.\n"
            "  --from-beginning  start at the earliest offset (default: the end)\n"
            "  --count N         exit after N records\n"
            "  --until-eof       exit when every assigned partition is at its end\n"
            "  --group G         join consumer group G (default: assign all partitions, no commits)\n"
            "  -X schema.registry.url=URL  read each record with its writer schema from the registry\n");
}

static void consume_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
    log_msg(l, "consume", "rdkafka %s: %s", fac, buf);
}

/* Returns 0, 1 for --help, -1 on a usage error (logged). */
static int consume_parse_args(int argc, char **argv, consume_opts *o) {
    char err[512];
    o->format = WIRE_CONFLUENT;
    o->count = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (!strcmp(a, "--from-beginning")) { o->from_beginning = 1; continue; }
        if (!strcmp(a, "--until-eof") || !strcmp(a, "-e")) { o->until_eof = 1; continue; }
        if (i + 1 >= argc) {
            LOG_E("consume", "unknown option or missing value: %s", a);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-b")) {
            if (config_set(&o->cfg, "bootstrap.servers", v)) return -1;
        } else if (!strcmp(a, "-t")) {
            o->topic = v;
        } else if (!strcmp(a, "--group") || !strcmp(a, "-G")) {
            o->group = v;
        } else if (!strcmp(a, "--count") || !strcmp(a, "-c")) {
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || end == v || *end || n < 0) {
                LOG_E("consume", "--count: '%s' is not a non-negative integer", v);
                return -1;
            }
            o->count = n;
        } else if (!strcmp(a, "--format")) {
            int f = wire_format_parse(v);
            if (f < 0) {
                LOG_E("consume", "--format: '%s' is neither confluent nor avro", v);
                return -1;
            }
            o->format = (wire_format)f;
        } else if (!strcmp(a, "-X")) {
            if (config_set_kv(&o->cfg, v, err, sizeof err)) {
                LOG_E("consume", "-X %s: %s", v, err);
                return -1;
            }
        } else if (!strcmp(a, "-F")) {
            if (config_load_file(&o->cfg, v, err, sizeof err)) {
                LOG_E("consume", "%s", err);
                return -1;
            }
        } else {
            LOG_E("consume", "unknown option: %s", a);
            return -1;
        }
    }
    if (!o->topic) {
        LOG_E("consume", "-t TOPIC is required");
        return -1;
    }
    return 0;
}

/* Assigns every partition of the topic at the start offset. Returns the partition count, or -1. */
static int consume_assign_all(rd_kafka_t *rk, const consume_opts *o) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    if (!rkt) {
        LOG_E("consume", "topic %s: %s", o->topic, rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    int nparts = -1;
    /* A fresh topic may report no leaders for a moment: retry briefly. */
    for (int attempt = 0; attempt < 20 && !g_consume_stop; attempt++) {
        err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        if (!err && md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0) {
            nparts = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
            break;
        }
        if (!err) {
            err = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
            rd_kafka_metadata_destroy(md);
        }
        usleep(250000);
    }
    rd_kafka_topic_destroy(rkt);
    if (nparts < 0) {
        LOG_E("consume", "no metadata for topic %s: %s", o->topic, rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++)
        rd_kafka_topic_partition_list_add(parts, o->topic, p)->offset =
            o->from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    err = rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        LOG_E("consume", "cannot assign %d partitions of %s: %s", nparts, o->topic, rd_kafka_err2str(err));
        return -1;
    }
    LOG_I("consume", "assigned %d partitions of %s from the %s", nparts, o->topic, o->from_beginning ? "beginning" : "end");
    return nparts;
}

/* --until-eof: EOF flags per partition, cleared by a record; done when every assigned partition
 * of the topic is flagged. */
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

int cmd_consume(int argc, char **argv) {
    consume_opts o;
    memset(&o, 0, sizeof o);
    char err[512], gid[64];
    int exit_code = 1;
    rd_kafka_t *rk = NULL;
    avro_tools_iv_reader *r = NULL;
    consume_eof eof = {NULL, 0};
    int64_t printed = 0, bad = 0;
    registry_opts ro;
    registry *reg = NULL;

    int prc = consume_parse_args(argc, argv, &o);
    if (prc) {
        consume_usage(prc > 0 ? stdout : stderr);
        config_free(&o.cfg);
        return prc > 0 ? 0 : 2;
    }
    if (config_load_env(&o.cfg, err, sizeof err)) {
        LOG_E("consume", "%s", err);
        goto done;
    }
    if (!config_get(&o.cfg, "bootstrap.servers", NULL)) {
        LOG_E("consume", "no bootstrap servers: give -b BOOTSTRAP (or bootstrap.servers in -F / IEVO_CFG_BOOTSTRAP_SERVERS)");
        goto done;
    }
    if (!(r = avro_tools_iv_reader_new(o.format, err, sizeof err))) {
        LOG_E("consume", "%s", err);
        goto done;
    }
    if (serde_registry_open(&o.cfg, &ro, &reg, err, sizeof err)) {
        LOG_E("consume", "%s", err);
        goto done;
    }
    /* rd_kafka_assign needs a group handle even when no group is joined: a private id, no commits. */
    snprintf(gid, sizeof gid, "ievo-consume-%ld-%ld", (long)getpid(), (long)time(NULL));
    const char *defaults[] = {
        "client.id", "ievo-consume",
        "group.id", o.group ? o.group : gid,
        "enable.auto.commit", o.group ? "true" : "false",
        "auto.offset.reset", o.from_beginning ? "earliest" : "latest",
        "enable.partition.eof", o.until_eof ? "true" : "false",
        "session.timeout.ms", "6000",       /* the mock waits session.timeout - 1 s at every join */
        "heartbeat.interval.ms", "500",
        NULL, NULL};
    rd_kafka_conf_t *conf = config_kafka_conf(&o.cfg, defaults, NULL, REGISTRY_KEY_PREFIXES, err, sizeof err);
    if (!conf) {
        LOG_E("consume", "%s", err);
        goto done;
    }
    rd_kafka_conf_set_log_cb(conf, consume_kafka_log);
    char kerr[512];
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr))) {
        rd_kafka_conf_destroy(conf);
        LOG_E("consume", "cannot create consumer: %s", kerr);
        goto done;
    }
    rd_kafka_poll_set_consumer(rk);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = consume_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (o.group) {
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, o.topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (e) {
            LOG_E("consume", "cannot subscribe to %s: %s", o.topic, rd_kafka_err2str(e));
            goto done;
        }
        LOG_I("consume", "subscribed to %s in group %s", o.topic, o.group);
    } else if (consume_assign_all(rk, &o) < 0) {
        goto done;
    }

    int fatal = 0;
    while (!g_consume_stop && !fatal && (o.count < 0 || printed + bad < o.count)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            fflush(stdout);
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (o.until_eof) {
                if (consume_eof_mark(&eof, m->partition, 1)) fatal = 1;
                else if (consume_eof_all(rk, &eof, o.topic)) {
                    rd_kafka_message_destroy(m);
                    break;
                }
            }
        } else if (m->err) {
            LOG_E("consume", "%s [%d]: %s", m->rkt ? rd_kafka_topic_name(m->rkt) : o.topic, (int)m->partition,
                  rd_kafka_message_errstr(m));
            if (m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC || m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || m->err == RD_KAFKA_RESP_ERR__FATAL)
                fatal = 1;
        } else {
            if (o.until_eof && consume_eof_mark(&eof, m->partition, 0)) fatal = 1;
            interest_vector iv;
            if (reg && consume_writer(reg, r, m, err, sizeof err)) {
                LOG_E("consume", "%s [%d] offset %" PRId64 ": %s", o.topic, (int)m->partition, m->offset, err);
                bad++;
            } else if (avro_tools_iv_read(r, m->payload, m->len, &iv, NULL, err, sizeof err)) {
                LOG_E("consume", "%s [%d] offset %" PRId64 ": %s", o.topic, (int)m->partition, m->offset, err);
                bad++;
            } else {
                if (avro_tools_iv_write_json(&iv, m->partition, m->offset, stdout, err, sizeof err)) {
                    LOG_E("consume", "cannot write output: %s", err);
                    fatal = 1;
                }
                printed++;
            }
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    LOG_I("consume", "%" PRId64 " records printed, %" PRId64 " undecodable%s", printed, bad,
          g_consume_stop ? " (interrupted)" : "");
    exit_code = (fatal || bad) ? 1 : 0;
done:
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    avro_tools_iv_reader_free(r);
    registry_free(reg);
    free(eof.eof);
    config_free(&o.cfg);
    return exit_code;
}
