/* cmd_broker: `ievo broker`, librdkafka's mock cluster as a process on TCP.
 *
 * Why: tests, the demo and local runs need a Kafka-protocol broker without a JVM. The mock
 * cluster (librdkafka 2.0.2) serves other processes over TCP, but only the process that owns it
 * can create topics or inject faults, and it auto-creates unknown topics with 4 partitions, so
 * the topics are created here at start (platform notes section 2).
 *
 * Lifecycle: start (handle + cluster + topics), publish the bootstrap servers (stdout, one
 * flushed line; optionally a file written atomically, removed again at clean shutdown), serve
 * until SIGTERM/SIGINT, tear down. The running state lives in one struct and the serve loop
 * has a single wait point, so a fault-injection control channel (broker down/up, request
 * errors, RTT, coordinator moves through rd_kafka_mock_*) can later be added as one more thing
 * the loop waits on.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>   /* must follow rdkafka.h */

#include "commands.h"
#include "config.h"
#include "log.h"

#define BROKER_MAX_TOPICS 64

typedef struct {
    const char *name;
    int partitions;   /* 0: the --partitions default */
} broker_topic;

typedef struct {
    int brokers, partitions;
    broker_topic topics[BROKER_MAX_TOPICS];
    int ntopics;
    const char *bootstrap_file;
    config cfg;       /* -F / IEVO_CFG_* / -X: properties of the mock's own handle */
} broker_opts;

/* The running broker: everything a control channel would need. */
typedef struct {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps;   /* owned by mc */
    const char *bootstrap_file;
} broker;

static volatile sig_atomic_t g_broker_stop = 0;
static void broker_on_signal(int sig) { g_broker_stop = sig; }

static void broker_usage(FILE *f) {
    fprintf(f,
            "usage: ievo broker [--brokers N] [--partitions N] [--topic NAME[:PARTITIONS]]...\n"
            "                   [--bootstrap-file PATH] [-X prop=val]... [-F config]\n"
            "  Runs librdkafka's mock cluster on random local ports until SIGTERM/SIGINT.\n"
            "  --brokers N          brokers in the cluster (default 3)\n"
            "  --partitions N       partitions of each --topic without its own count (default 4)\n"
            "  --topic NAME[:P]     create a topic at start (repeatable); unknown topics are\n"
            "                       auto-created by the mock with 4 partitions\n"
            "  --bootstrap-file P   also write the bootstrap servers to P (atomically)\n"
            "  -X prop=val, -F file librdkafka properties of the mock's handle\n"
            "  Prints the bootstrap servers as one line on stdout; logs go to stderr.\n");
}

/* Routes librdkafka's log lines to ours (syslog levels). */
static void broker_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
    log_msg(l, "broker", "rdkafka %s: %s", fac, buf);
}

static int broker_parse_int(const char *flag, const char *v, int min, int max, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        LOG_E("broker", "%s: '%s' is not an integer in [%d, %d]", flag, v, min, max);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* Returns 0, 1 for --help, -1 on a usage error (logged). */
static int broker_parse_args(int argc, char **argv, broker_opts *o) {
    char err[512];
    o->brokers = 3;
    o->partitions = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (i + 1 >= argc) {
            LOG_E("broker", "unknown option or missing value: %s", a);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--brokers")) {
            if (broker_parse_int(a, v, 1, 64, &o->brokers)) return -1;
        } else if (!strcmp(a, "--partitions")) {
            if (broker_parse_int(a, v, 1, 100000, &o->partitions)) return -1;
        } else if (!strcmp(a, "--topic")) {
            if (o->ntopics == BROKER_MAX_TOPICS) {
                LOG_E("broker", "at most %d --topic flags", BROKER_MAX_TOPICS);
                return -1;
            }
            broker_topic *t = &o->topics[o->ntopics++];
            char *colon = strrchr(v, ':');
            t->name = v;
            t->partitions = 0;
            if (colon) {
                *colon = 0;   /* argv is ours to edit */
                if (broker_parse_int("--topic partitions", colon + 1, 1, 100000, &t->partitions)) return -1;
            }
            if (!*t->name) {
                LOG_E("broker", "--topic: empty topic name");
                return -1;
            }
        } else if (!strcmp(a, "--bootstrap-file")) {
            o->bootstrap_file = v;
        } else if (!strcmp(a, "-X")) {
            if (config_set_kv(&o->cfg, v, err, sizeof err)) {
                LOG_E("broker", "-X %s: %s", v, err);
                return -1;
            }
        } else if (!strcmp(a, "-F")) {
            if (config_load_file(&o->cfg, v, err, sizeof err)) {
                LOG_E("broker", "%s", err);
                return -1;
            }
        } else {
            LOG_E("broker", "unknown option: %s", a);
            return -1;
        }
    }
    return 0;
}

/* Writes the bootstrap string to path via a temporary file and rename, so a reader never sees
 * a partial line. */
static int broker_write_bootstrap_file(const char *path, const char *bs, char *err, size_t errlen) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "cannot create %.300s: %s", tmp, strerror(errno));
        return -1;
    }
    int bad = fprintf(f, "%s\n", bs) < 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %.300s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void broker_stop(broker *b) {
    if (b->rk) rd_kafka_destroy(b->rk);   /* also destroys the mock cluster it owns */
    b->mc = NULL;
    b->rk = NULL;
}

/* The cluster is created by the handle itself (test.mock.num.brokers), which also points the
 * handle's bootstrap.servers at it; rd_kafka_mock_cluster_new on a bare handle works the same
 * but makes librdkafka warn that the handle has no bootstrap servers. */
static int broker_start(broker *b, const broker_opts *o, char *err, size_t errlen) {
    char nbrokers[16];
    snprintf(nbrokers, sizeof nbrokers, "%d", o->brokers);
    const char *const defaults[] = {
        "socket.nagle.disable", "true",   /* the mock's sockets inherit it: platform notes section 6 */
        "client.id", "ievo-broker",
        "test.mock.num.brokers", nbrokers,
        NULL, NULL};
    memset(b, 0, sizeof *b);
    rd_kafka_conf_t *conf = config_kafka_conf(&o->cfg, defaults, NULL, NULL, err, errlen);
    if (!conf) return -1;
    rd_kafka_conf_set_log_cb(conf, broker_kafka_log);
    char kerr[512];
    if (!(b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr))) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "cannot create the mock's handle: %.400s", kerr);
        return -1;
    }
    if (!(b->mc = rd_kafka_handle_mock_cluster(b->rk))) {
        snprintf(err, errlen, "librdkafka did not create a mock cluster of %d brokers", o->brokers);
        broker_stop(b);
        return -1;
    }
    int rf = o->brokers < 3 ? o->brokers : 3;
    for (int i = 0; i < o->ntopics; i++) {
        const broker_topic *t = &o->topics[i];
        int parts = t->partitions ? t->partitions : o->partitions;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(b->mc, t->name, parts, rf);
        if (e) {
            snprintf(err, errlen, "cannot create topic %s (%d partitions): %s", t->name, parts, rd_kafka_err2str(e));
            broker_stop(b);
            return -1;
        }
        LOG_I("broker", "topic %s: %d partitions, replication factor %d", t->name, parts, rf);
    }
    b->bootstraps = rd_kafka_mock_cluster_bootstraps(b->mc);
    if (o->bootstrap_file && broker_write_bootstrap_file(o->bootstrap_file, b->bootstraps, err, errlen)) {
        broker_stop(b);
        return -1;
    }
    b->bootstrap_file = o->bootstrap_file;
    return 0;
}

/* Serves until a signal. The one wait point: a control channel would be polled here. */
static void broker_serve(broker *b) {
    while (!g_broker_stop) rd_kafka_poll(b->rk, 200);
}

int cmd_broker(int argc, char **argv) {
    broker_opts o;
    memset(&o, 0, sizeof o);
    char err[512];
    int rc = broker_parse_args(argc, argv, &o);
    if (rc) {
        broker_usage(rc > 0 ? stdout : stderr);
        config_free(&o.cfg);
        return rc > 0 ? 0 : 2;
    }
    if (config_load_env(&o.cfg, err, sizeof err)) {
        LOG_E("broker", "%s", err);
        config_free(&o.cfg);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = broker_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    broker b;
    if (broker_start(&b, &o, err, sizeof err)) {
        LOG_E("broker", "%s", err);
        config_free(&o.cfg);
        return 1;
    }
    LOG_I("broker", "%d brokers at %s%s%s", o.brokers, b.bootstraps, o.bootstrap_file ? ", written to " : "",
          o.bootstrap_file ? o.bootstrap_file : "");
    printf("%s\n", b.bootstraps);
    fflush(stdout);

    broker_serve(&b);

    LOG_I("broker", "signal %d: shutting down", (int)g_broker_stop);
    if (b.bootstrap_file) unlink(b.bootstrap_file);
    broker_stop(&b);
    config_free(&o.cfg);
    LOG_I("broker", "stopped");
    return 0;
}
