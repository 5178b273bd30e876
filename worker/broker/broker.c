/* broker: the development broker (`ievo broker`), librdkafka's mock cluster served on TCP,
 * with an optional fault-injection control channel.
 *
 * Why: tests, the demo and local runs need a Kafka-protocol broker without a JVM. The mock
 * cluster (librdkafka 2.0.2) serves other processes over TCP, but only the process that owns it
 * can create topics or inject faults, and it auto-creates unknown topics with 4 partitions, so
 * the topics are created here at start (platform notes section 2), and faults are injected
 * through a Unix-domain socket this process serves (`--control PATH`, client: `ievo broker-ctl`,
 * docs/faults.md).
 *
 * Lifecycle: start (handle + cluster + topics + control socket), publish the bootstrap servers
 * (stdout, one flushed line; optionally a file written atomically, removed again at clean
 * shutdown; the control socket exists before either is published), serve until SIGTERM/SIGINT,
 * tear down (the socket file is removed). The serve loop has a single wait point: poll() on the
 * control socket and its clients, 200 ms at most, then rd_kafka_poll().
 *
 * Control protocol: one command per line, one reply line per command, "ok ..." or "error ...".
 * Commands map onto rd_kafka_mock_* calls (see broker_ctl_cmds below and `help`).
 *
 * Threading: the mock cluster runs in its own thread (rd_kafka_mock_cluster_new starts it); the
 * commands are called from this process's main thread, the serve loop. That is safe by the
 * library's design (src/rdkafka_mock.c, read in a version before 2.0.2 and one after; the same
 * in both): set_down/set_up, set_rtt, coordinator_set, partition_set_leader, topic_set_error
 * and topic_create build an RD_KAFKA_OP_MOCK op, post it to the cluster's op queue
 * (mcluster->ops, "for controlling the cluster in a thread-safe manner without locking") and
 * wait for the mock thread's reply (rd_kafka_op_req, RD_POLL_INFINITE);
 * push_request_errors(_array), clear_request_errors and broker_push_request_error_rtts take
 * mcluster->lock, the mutex the mock thread holds when it pops the error for a request
 * (rd_kafka_mock_next_request_error).
 * Because the op calls wait forever for the mock thread, the control socket is closed before the
 * handle (and with it the cluster) is destroyed. The mock has no getters for its topics or
 * offsets, so `status` asks it over the wire from the broker's own client handle (Metadata,
 * ListOffsets), and reports brokers down, RTTs and coordinator overrides from what this process
 * has set.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>   /* must follow rdkafka.h */

#include "atomic_file.h"
#include "broker.h"
#include "kafka_clients.h"
#include "log.h"
#include "settings.h"
#include "stop_signal.h"

#define BROKER_CTL_MAX_CLIENTS 8
#define BROKER_CTL_LINE_MAX 4096        /* a longer command line closes the connection */
#define BROKER_CTL_REPLY_MAX (1 << 17)  /* `status` of many partitions is long; cut with "..." */
#define BROKER_CTL_MAX_ARGS 64
#define BROKER_CTL_MAX_COORDS 64
#define BROKER_CTL_QUERY_MS 3000        /* `status` metadata / offsets requests */

/* One connection on the control socket: the bytes of its current, unfinished line. */
typedef struct {
    int fd;           /* -1: free slot */
    size_t n;
    char line[BROKER_CTL_LINE_MAX];
} broker_ctl_client;

/* A coordinator set through the control channel, remembered for `status`. */
typedef struct {
    char type[16];
    char key[256];
    int32_t broker_id;
} broker_ctl_coord;

/* The running broker: the mock, and the control channel with what it has injected. */
typedef struct {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstraps;   /* owned by mc */
    const char *bootstrap_file;
    int nbrokers;             /* ids 1..nbrokers */
    const char *control_path; /* NULL: no control channel */
    int control_fd;           /* listening socket, -1 when none */
    broker_ctl_client clients[BROKER_CTL_MAX_CLIENTS];
    /* The mock has no getters: what `status` reports of brokers is what we set. */
    unsigned char down[BROKER_MAX_BROKERS + 1];
    int rtt_ms[BROKER_MAX_BROKERS + 1];
    broker_ctl_coord coords[BROKER_CTL_MAX_COORDS];
    int ncoords;
} broker;

/* Writes the bootstrap string to path atomically (atomic_file.h), so a reader never sees a
 * partial line. */
static int broker_write_bootstrap_file(const char *path, const char *bs, char *err, size_t errlen) {
    atomic_file af;
    if (atomic_file_open(&af, path, 0644, err, errlen)) return -1;
    fprintf(af.f, "%s\n", bs);
    return atomic_file_commit(&af, err, errlen);
}

/* ---- control channel: the commands ---------------------------------------------------------- */

/* A reply under construction: text after "ok " / "error ", cut with "..." when too long. */
typedef struct {
    char *buf;
    size_t cap, len;
} broker_reply;

static void broker_reply_add(broker_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void broker_reply_add(broker_reply *r, const char *fmt, ...) {
    if (r->len + 4 >= r->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->buf + r->len, r->cap - 4 - r->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= r->cap - 4 - r->len) {
        r->len = r->cap - 4;
        memcpy(r->buf + r->len, "...", 4);
        r->len += 3;
        return;
    }
    r->len += (size_t)n;
}

/* Fills the reply with an error message and returns -1 (every command's error path). */
static int broker_ctl_fail(broker_reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int broker_ctl_fail(broker_reply *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->buf, r->cap, fmt, ap);
    va_end(ap);
    r->len = n < 0 ? 0 : (size_t)n < r->cap ? (size_t)n : r->cap - 1;
    return -1;
}

static int broker_ctl_long(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < min || x > max) return -1;
    *out = x;
    return 0;
}

/* A broker id of the cluster (1..N), or "all" / -1 for every broker (*id = -1). */
static int broker_ctl_broker_id(const broker *b, const char *s, int allow_all, int32_t *id, broker_reply *r) {
    long x;
    if (allow_all && (!strcasecmp(s, "all") || !strcmp(s, "-1"))) {
        *id = -1;
        return 0;
    }
    if (broker_ctl_long(s, 1, b->nbrokers, &x))
        return broker_ctl_fail(r, "broker id '%s' is not in 1..%d%s", s, b->nbrokers, allow_all ? " or all" : "");
    *id = (int32_t)x;
    return 0;
}

/* Kafka protocol request types, by the names the protocol guide uses. */
static const struct {
    const char *name;
    int16_t key;
} broker_api_names[] = {
    {"Produce", 0},        {"Fetch", 1},           {"ListOffsets", 2},
    {"Metadata", 3},       {"OffsetCommit", 8},    {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},    {"Heartbeat", 12},
    {"LeaveGroup", 13},    {"SyncGroup", 14},      {"DescribeGroups", 15},
    {"ListGroups", 16},    {"SaslHandshake", 17},  {"ApiVersions", 18},
    {"CreateTopics", 19},  {"InitProducerId", 22}, {"OffsetForLeaderEpoch", 23},
    {"AddPartitionsToTxn", 24}, {"AddOffsetsToTxn", 25}, {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};

static const char *broker_api_name(int16_t key) {
    for (size_t i = 0; i < sizeof broker_api_names / sizeof broker_api_names[0]; i++)
        if (broker_api_names[i].key == key) return broker_api_names[i].name;
    return "?";
}

static int broker_ctl_api_key(const char *s, int16_t *key, broker_reply *r) {
    long x;
    for (size_t i = 0; i < sizeof broker_api_names / sizeof broker_api_names[0]; i++)
        if (!strcasecmp(s, broker_api_names[i].name)) {
            *key = broker_api_names[i].key;
            return 0;
        }
    if (broker_ctl_long(s, 0, 999, &x))
        return broker_ctl_fail(r, "unknown API '%s' (a name such as Produce, Fetch, OffsetCommit, JoinGroup, "
                                  "Heartbeat, SyncGroup, or an ApiKey number)", s);
    *key = (int16_t)x;
    return 0;
}

/* An error by librdkafka's name (NOT_LEADER_FOR_PARTITION, _TRANSPORT; case-insensitive, with
 * or without the RD_KAFKA_RESP_ERR_ prefix) or by number. */
static int broker_ctl_error_code(const char *s, rd_kafka_resp_err_t *err, broker_reply *r) {
    const char *name = !strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) ? s + 18 : s;
    const struct rd_kafka_err_desc *d;
    size_t n;
    long x;
    rd_kafka_get_err_descs(&d, &n);
    for (size_t i = 0; i < n; i++)
        if (d[i].name && !strcasecmp(name, d[i].name)) {
            *err = d[i].code;
            return 0;
        }
    if (!strcasecmp(name, "NOT_LEADER_OR_FOLLOWER")) {   /* the name Kafka uses since 2.7 */
        *err = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
        return 0;
    }
    if (broker_ctl_long(name, -199, 32767, &x))
        return broker_ctl_fail(r, "unknown error '%s' (a librdkafka error name such as NOT_LEADER_FOR_PARTITION, "
                                  "REQUEST_TIMED_OUT, NOT_COORDINATOR, _TRANSPORT, or a number)", s);
    *err = (rd_kafka_resp_err_t)x;
    return 0;
}

/* Partition count of an existing topic, by a Metadata request from the broker's own handle
 * (the mock has no getter, and its set_leader / set_error would create a missing topic). A topic
 * listed with an error (topic-error) is found when allow_err is set; its count may then be 0. */
static int broker_ctl_topic_partitions(broker *b, const char *topic, int allow_err, int *count, broker_reply *r) {
    const rd_kafka_metadata_t *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(b->rk, 1, NULL, &md, BROKER_CTL_QUERY_MS);
    if (e) return broker_ctl_fail(r, "cannot read the cluster's metadata: %s", rd_kafka_err2str(e));
    int found = -1;
    rd_kafka_resp_err_t terr = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, topic)) {
            found = md->topics[i].partition_cnt;
            terr = md->topics[i].err;
        }
    rd_kafka_metadata_destroy(md);
    if (found < 0) return broker_ctl_fail(r, "unknown topic %s", topic);
    if (terr && !allow_err)
        return broker_ctl_fail(r, "topic %s answers Metadata with %s (topic-error %s NO_ERROR clears it)", topic,
                               rd_kafka_err2name(terr), topic);
    *count = found;
    return 0;
}

static int broker_ctl_set_updown(broker *b, int argc, char **argv, broker_reply *r, int up) {
    int32_t id = 0;
    if (argc != 2) return broker_ctl_fail(r, "usage: %s ID|all", argv[0]);
    if (broker_ctl_broker_id(b, argv[1], 1, &id, r)) return -1;
    for (int32_t i = id < 0 ? 1 : id; i <= (id < 0 ? b->nbrokers : id); i++) {
        rd_kafka_resp_err_t e = up ? rd_kafka_mock_broker_set_up(b->mc, i) : rd_kafka_mock_broker_set_down(b->mc, i);
        if (e) return broker_ctl_fail(r, "broker %d: %s", (int)i, rd_kafka_err2str(e));
        b->down[i] = !up;
    }
    if (id < 0) broker_reply_add(r, "all %d brokers %s", b->nbrokers, up ? "up" : "down");
    else broker_reply_add(r, "broker %d %s", (int)id, up ? "up" : "down");
    return 0;
}

static int broker_ctl_broker_down(broker *b, int argc, char **argv, broker_reply *r) {
    return broker_ctl_set_updown(b, argc, argv, r, 0);
}

static int broker_ctl_broker_up(broker *b, int argc, char **argv, broker_reply *r) {
    return broker_ctl_set_updown(b, argc, argv, r, 1);
}

static int broker_ctl_rtt(broker *b, int argc, char **argv, broker_reply *r) {
    int32_t id = 0;
    long ms;
    if (argc != 3) return broker_ctl_fail(r, "usage: rtt ID|all MS");
    if (broker_ctl_broker_id(b, argv[1], 1, &id, r)) return -1;
    if (broker_ctl_long(argv[2], 0, 600000, &ms)) return broker_ctl_fail(r, "rtt '%s' is not in 0..600000 ms", argv[2]);
    for (int32_t i = id < 0 ? 1 : id; i <= (id < 0 ? b->nbrokers : id); i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_rtt(b->mc, i, (int)ms);
        if (e) return broker_ctl_fail(r, "broker %d: %s", (int)i, rd_kafka_err2str(e));
        b->rtt_ms[i] = (int)ms;
    }
    broker_reply_add(r, "rtt %ld ms on %s%s", ms, id < 0 ? "all brokers" : "broker ", id < 0 ? "" : argv[1]);
    return 0;
}

static int broker_ctl_request_errors(broker *b, int argc, char **argv, broker_reply *r) {
    int16_t key = 0;
    rd_kafka_resp_err_t errs[BROKER_CTL_MAX_ARGS];
    if (argc < 3) return broker_ctl_fail(r, "usage: request-errors API ERR [ERR...]");
    if (broker_ctl_api_key(argv[1], &key, r)) return -1;
    size_t n = 0;
    for (int i = 2; i < argc; i++)
        if (broker_ctl_error_code(argv[i], &errs[n++], r)) return -1;
    /* 2.0.2 pops them in the order given (checked: NOT_LEADER_FOR_PARTITION then
     * MSG_SIZE_TOO_LARGE made kcat retry once, then fail with "Message size too large"). */
    rd_kafka_mock_push_request_errors_array(b->mc, key, n, errs);
    broker_reply_add(r, "%zu error(s) queued for the next %s (%d) requests on any broker", n, broker_api_name(key),
                     (int)key);
    return 0;
}

/* ERR or ERR@MS per entry: each is pushed on one broker's stack, answered after MS. */
static int broker_ctl_broker_request_errors(broker *b, int argc, char **argv, broker_reply *r) {
    int32_t id = 0;
    int16_t key = 0;
    if (argc < 4) return broker_ctl_fail(r, "usage: broker-request-errors ID API ERR[@MS] [ERR[@MS]...]");
    if (broker_ctl_broker_id(b, argv[1], 0, &id, r)) return -1;
    if (broker_ctl_api_key(argv[2], &key, r)) return -1;
    rd_kafka_resp_err_t errs[BROKER_CTL_MAX_ARGS];
    long rtts[BROKER_CTL_MAX_ARGS];
    int n = 0;
    for (int i = 3; i < argc; i++, n++) {
        char *at = strchr(argv[i], '@');
        rtts[n] = 0;
        if (at) {
            *at = 0;
            if (broker_ctl_long(at + 1, 0, 600000, &rtts[n]))
                return broker_ctl_fail(r, "delay '%s' is not in 0..600000 ms", at + 1);
        }
        if (broker_ctl_error_code(argv[i], &errs[n], r)) return -1;
    }
    for (int i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_push_request_error_rtts(b->mc, id, key, 1, errs[i], (int)rtts[i]);
        if (e) return broker_ctl_fail(r, "broker %d: %s", (int)id, rd_kafka_err2str(e));
    }
    broker_reply_add(r, "%d error(s) queued for the next %s (%d) requests on broker %d", n, broker_api_name(key),
                     (int)key, (int)id);
    return 0;
}

static int broker_ctl_clear_errors(broker *b, int argc, char **argv, broker_reply *r) {
    int16_t key = 0;
    if (argc > 2) return broker_ctl_fail(r, "usage: clear-errors [API]");
    if (argc == 2) {
        if (broker_ctl_api_key(argv[1], &key, r)) return -1;
        rd_kafka_mock_clear_request_errors(b->mc, key);
        broker_reply_add(r, "cluster-wide %s (%d) errors cleared", broker_api_name(key), (int)key);
        return 0;
    }
    /* ApiKeys the mock knows are below 70 in 2.0.2; clearing an unknown one is a no-op. */
    for (int16_t k = 0; k < 128; k++) rd_kafka_mock_clear_request_errors(b->mc, k);
    broker_reply_add(r, "cluster-wide request errors cleared (per-broker errors cannot be cleared)");
    return 0;
}

/* The new coordinator must be one of the brokers: with any other id, 2.0.2's FindCoordinator
 * handler fails an assertion and aborts the whole process (rdkafka_mock_handlers.c:1039,
 * `mrkb'; seen with a consumer of the group), although the header says it need not be valid. */
static int broker_ctl_coordinator(broker *b, int argc, char **argv, broker_reply *r) {
    long id;
    if (argc != 4 || (strcmp(argv[1], "group") && strcmp(argv[1], "transaction")))
        return broker_ctl_fail(r, "usage: coordinator group|transaction KEY BROKERID");
    if (broker_ctl_long(argv[3], 1, b->nbrokers, &id))
        return broker_ctl_fail(r, "broker id '%s' is not in 1..%d (the mock aborts on a coordinator that is not "
                                  "one of its brokers)", argv[3], b->nbrokers);
    if (strlen(argv[2]) >= sizeof b->coords[0].key) return broker_ctl_fail(r, "key longer than 255 bytes");
    rd_kafka_resp_err_t e = rd_kafka_mock_coordinator_set(b->mc, argv[1], argv[2], (int32_t)id);
    if (e) return broker_ctl_fail(r, "%s", rd_kafka_err2str(e));
    int slot = -1;
    for (int i = 0; i < b->ncoords; i++)
        if (!strcmp(b->coords[i].type, argv[1]) && !strcmp(b->coords[i].key, argv[2])) slot = i;
    if (slot < 0 && b->ncoords < BROKER_CTL_MAX_COORDS) slot = b->ncoords++;
    if (slot >= 0) {
        snprintf(b->coords[slot].type, sizeof b->coords[slot].type, "%s", argv[1]);
        snprintf(b->coords[slot].key, sizeof b->coords[slot].key, "%s", argv[2]);
        b->coords[slot].broker_id = (int32_t)id;
    }
    broker_reply_add(r, "%s %s coordinator is broker %ld", argv[1], argv[2], id);
    return 0;
}

static int broker_ctl_partition_leader(broker *b, int argc, char **argv, broker_reply *r) {
    long part, id;
    int cnt;
    if (argc != 4) return broker_ctl_fail(r, "usage: partition-leader TOPIC PARTITION BROKERID|-1");
    if (broker_ctl_topic_partitions(b, argv[1], 0, &cnt, r)) return -1;
    if (broker_ctl_long(argv[2], 0, cnt - 1, &part))
        return broker_ctl_fail(r, "partition '%s' is not in 0..%d of %s", argv[2], cnt - 1, argv[1]);
    if (broker_ctl_long(argv[3], -1, b->nbrokers, &id) || id == 0)
        return broker_ctl_fail(r, "broker id '%s' is not in 1..%d or -1 (no leader)", argv[3], b->nbrokers);
    rd_kafka_resp_err_t e = rd_kafka_mock_partition_set_leader(b->mc, argv[1], (int32_t)part, (int32_t)id);
    if (e) return broker_ctl_fail(r, "%s", rd_kafka_err2str(e));
    if (id < 0) broker_reply_add(r, "%s [%ld] has no leader", argv[1], part);
    else broker_reply_add(r, "%s [%ld] leader is broker %ld", argv[1], part, id);
    return 0;
}

static int broker_ctl_topic_error(broker *b, int argc, char **argv, broker_reply *r) {
    rd_kafka_resp_err_t err;
    int cnt;
    if (argc != 3) return broker_ctl_fail(r, "usage: topic-error TOPIC ERR   (NO_ERROR clears it)");
    if (broker_ctl_topic_partitions(b, argv[1], 1, &cnt, r)) return -1;
    if (broker_ctl_error_code(argv[2], &err, r)) return -1;
    rd_kafka_mock_topic_set_error(b->mc, argv[1], err);
    broker_reply_add(r, "topic %s: Metadata responses now carry %s", argv[1], rd_kafka_err2name(err));
    return 0;
}

/* brokers, then every topic: partitions, leaders and end offsets (ListOffsets on each leader
 * that is up; "?" where the leader is down or did not answer). One line of name=value tokens. */
static int broker_ctl_status(broker *b, int argc, char **argv, broker_reply *r) {
    (void)argv;
    if (argc != 1) return broker_ctl_fail(r, "usage: status");
    broker_reply_add(r, "brokers=%d", b->nbrokers);
    for (int i = 1; i <= b->nbrokers; i++)
        broker_reply_add(r, " broker=%d:%s:rtt=%d", i, b->down[i] ? "down" : "up", b->rtt_ms[i]);
    for (int i = 0; i < b->ncoords; i++)
        broker_reply_add(r, " coordinator=%s:%s:%d", b->coords[i].type, b->coords[i].key, (int)b->coords[i].broker_id);

    const rd_kafka_metadata_t *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(b->rk, 1, NULL, &md, BROKER_CTL_QUERY_MS);
    if (e) {
        broker_reply_add(r, " topics=? metadata_error=%s", rd_kafka_err2name(e));
        return 0;
    }
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(64);
    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *mt = &md->topics[t];
        for (int p = 0; p < mt->partition_cnt; p++) {
            int32_t leader = mt->partitions[p].leader;
            if (leader >= 1 && leader <= b->nbrokers && !b->down[leader])
                rd_kafka_topic_partition_list_add(tp, mt->topic, mt->partitions[p].id)->offset = RD_KAFKA_OFFSET_END;
        }
    }
    /* offsets_for_times with OFFSET_END asks each leader for its end offset (platform notes §2). */
    rd_kafka_resp_err_t oe = tp->cnt ? rd_kafka_offsets_for_times(b->rk, tp, BROKER_CTL_QUERY_MS) : 0;
    broker_reply_add(r, " topics=%d", md->topic_cnt);
    if (oe) broker_reply_add(r, " offsets_error=%s", rd_kafka_err2name(oe));
    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *mt = &md->topics[t];
        broker_reply_add(r, " topic=%s:partitions=%d", mt->topic, mt->partition_cnt);
        if (mt->err) broker_reply_add(r, ":error=%s", rd_kafka_err2name(mt->err));
        broker_reply_add(r, ":leaders=");
        for (int p = 0; p < mt->partition_cnt; p++)
            broker_reply_add(r, "%s%d", p ? "," : "", (int)mt->partitions[p].leader);
        broker_reply_add(r, ":end=");
        for (int p = 0; p < mt->partition_cnt; p++) {
            const rd_kafka_topic_partition_t *x = oe ? NULL : rd_kafka_topic_partition_list_find(tp, mt->topic, mt->partitions[p].id);
            if (x && !x->err && x->offset >= 0) broker_reply_add(r, "%s%lld", p ? "," : "", (long long)x->offset);
            else broker_reply_add(r, "%s?", p ? "," : "");
        }
    }
    rd_kafka_topic_partition_list_destroy(tp);
    rd_kafka_metadata_destroy(md);
    return 0;
}

static int broker_ctl_help(broker *b, int argc, char **argv, broker_reply *r);

typedef int (*broker_ctl_fn)(broker *b, int argc, char **argv, broker_reply *r);
static const struct {
    const char *name;
    broker_ctl_fn fn;
    const char *usage;
} broker_ctl_cmds[] = {
    {"status", broker_ctl_status, "status"},
    {"broker-down", broker_ctl_broker_down, "broker-down ID|all"},
    {"broker-up", broker_ctl_broker_up, "broker-up ID|all"},
    {"rtt", broker_ctl_rtt, "rtt ID|all MS"},
    {"request-errors", broker_ctl_request_errors, "request-errors API ERR [ERR...]"},
    {"broker-request-errors", broker_ctl_broker_request_errors, "broker-request-errors ID API ERR[@MS] [ERR[@MS]...]"},
    {"clear-errors", broker_ctl_clear_errors, "clear-errors [API]"},
    {"coordinator", broker_ctl_coordinator, "coordinator group|transaction KEY BROKERID"},
    {"partition-leader", broker_ctl_partition_leader, "partition-leader TOPIC PARTITION BROKERID|-1"},
    {"topic-error", broker_ctl_topic_error, "topic-error TOPIC ERR"},
    {"help", broker_ctl_help, "help"},
};

static int broker_ctl_help(broker *b, int argc, char **argv, broker_reply *r) {
    (void)b, (void)argc, (void)argv;
    broker_reply_add(r, "commands:");
    for (size_t i = 0; i < sizeof broker_ctl_cmds / sizeof broker_ctl_cmds[0]; i++)
        broker_reply_add(r, "%s %s", i ? ";" : "", broker_ctl_cmds[i].usage);
    return 0;
}

/* Runs one command line; the reply (without "ok "/"error ") goes to r. Returns 0 or -1. */
static int broker_ctl_exec(broker *b, char *line, broker_reply *r) {
    char *argv[BROKER_CTL_MAX_ARGS + 1];
    int argc = 0;
    for (char *tok = strtok(line, " \t"); tok; tok = strtok(NULL, " \t")) {
        if (argc == BROKER_CTL_MAX_ARGS) return broker_ctl_fail(r, "more than %d words", BROKER_CTL_MAX_ARGS);
        argv[argc++] = tok;
    }
    argv[argc] = NULL;
    if (argc == 0) return broker_ctl_fail(r, "empty command (try help)");
    for (size_t i = 0; i < sizeof broker_ctl_cmds / sizeof broker_ctl_cmds[0]; i++)
        if (!strcmp(argv[0], broker_ctl_cmds[i].name)) return broker_ctl_cmds[i].fn(b, argc, argv, r);
    return broker_ctl_fail(r, "unknown command '%s' (try help)", argv[0]);
}

/* ---- control channel: the socket ------------------------------------------------------------ */

static void broker_ctl_drop(broker_ctl_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->n = 0;
}

/* Writes all of buf, waiting at most a second for a slow reader; -1 if it could not. */
static int broker_ctl_send(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL);
        if (w > 0) {
            buf += w;
            len -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {fd, POLLOUT, 0};
            if (poll(&p, 1, 1000) <= 0) return -1;
        } else {
            return -1;
        }
    }
    return 0;
}

static void broker_ctl_reply(broker_ctl_client *c, int ok, broker_reply *r) {
    static char out[BROKER_CTL_REPLY_MAX + 16];
    for (size_t i = 0; i < r->len; i++)
        if (r->buf[i] == '\n' || r->buf[i] == '\r') r->buf[i] = ' ';
    int n = snprintf(out, sizeof out, "%s%s%.*s\n", ok ? "ok" : "error", r->len ? " " : "", (int)r->len, r->buf);
    if (broker_ctl_send(c->fd, out, (size_t)n)) {
        LOG_W("broker", "control: dropping a client that does not read its replies");
        broker_ctl_drop(c);
    }
}

/* Reads what a client sent and answers every complete line. */
static void broker_ctl_client_io(broker *b, broker_ctl_client *c) {
    static char reply_buf[BROKER_CTL_REPLY_MAX];
    ssize_t got = read(c->fd, c->line + c->n, sizeof c->line - c->n);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (got <= 0) {
        broker_ctl_drop(c);
        return;
    }
    c->n += (size_t)got;
    char *start = c->line, *nl;
    while (c->fd >= 0 && (nl = memchr(start, '\n', c->n - (size_t)(start - c->line)))) {
        *nl = 0;
        if (nl > start && nl[-1] == '\r') nl[-1] = 0;
        char logged[256];
        snprintf(logged, sizeof logged, "%.200s", start);
        broker_reply r = {reply_buf, sizeof reply_buf, 0};
        int rc = broker_ctl_exec(b, start, &r);
        if (strncmp(logged, "status", 6) && strncmp(logged, "help", 4)) {
            if (rc) LOG_W("broker", "control: %s: %.*s", logged, (int)r.len, r.buf);
            else LOG_I("broker", "control: %s: %.*s", logged, (int)r.len, r.buf);
        }
        broker_ctl_reply(c, rc == 0, &r);
        start = nl + 1;
    }
    if (c->fd < 0) return;
    size_t rest = c->n - (size_t)(start - c->line);
    memmove(c->line, start, rest);
    c->n = rest;
    if (c->n == sizeof c->line) {
        broker_reply r = {reply_buf, sizeof reply_buf, 0};
        broker_ctl_fail(&r, "command line longer than %d bytes", BROKER_CTL_LINE_MAX - 1);
        broker_ctl_reply(c, 0, &r);
        broker_ctl_drop(c);
    }
}

static void broker_ctl_accept(broker *b) {
    for (;;) {
        int fd = accept4(b->control_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                LOG_W("broker", "control: accept on %s: %s", b->control_path, strerror(errno));
            return;
        }
        broker_ctl_client *slot = NULL;
        for (int i = 0; i < BROKER_CTL_MAX_CLIENTS && !slot; i++)
            if (b->clients[i].fd < 0) slot = &b->clients[i];
        if (!slot) {
            static const char busy[] = "error too many control connections\n";
            if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL) < 0) { /* the client is gone: nothing to tell */ }
            close(fd);
            continue;
        }
        slot->fd = fd;
        slot->n = 0;
    }
}

/* Binds the control socket. A stale socket file (nobody listening) is replaced; a live one, or
 * any other file at path, is an error. */
static int broker_ctl_open(broker *b, const char *path, char *err, size_t errlen) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "--control %.300s: longer than %zu bytes, the limit of a Unix socket path", path,
                 sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "--control %.300s: exists and is not a socket", path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0) close(probe);
        if (live) {
            snprintf(err, errlen, "--control %.300s: another process is serving this socket", path);
            return -1;
        }
        LOG_W("broker", "control: replacing the stale socket %s", path);
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "control socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(path, 0600) != 0 || listen(fd, 16) != 0) {
        snprintf(err, errlen, "--control %.300s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    b->control_fd = fd;
    b->control_path = path;
    return 0;
}

static void broker_ctl_close(broker *b) {
    for (int i = 0; i < BROKER_CTL_MAX_CLIENTS; i++) broker_ctl_drop(&b->clients[i]);
    if (b->control_fd >= 0) {
        close(b->control_fd);
        unlink(b->control_path);
    }
    b->control_fd = -1;
}

static void broker_stop(broker *b) {
    broker_ctl_close(b);   /* first: the mock calls wait for the cluster's thread */
    if (b->rk) rd_kafka_destroy(b->rk);   /* also destroys the mock cluster it owns */
    b->mc = NULL;
    b->rk = NULL;
}

/* The cluster is created by the handle itself (test.mock.num.brokers), which also points the
 * handle's bootstrap.servers at it; rd_kafka_mock_cluster_new on a bare handle works the same
 * but makes librdkafka warn that the handle has no bootstrap servers. */
static int broker_start(broker *b, const broker_opts *o, const config *cfg, char *err, size_t errlen) {
    char nbrokers[16];
    snprintf(nbrokers, sizeof nbrokers, "%d", o->brokers);
    const char *const defaults[] = {
        "socket.nagle.disable", "true",   /* the mock's sockets inherit it: platform notes section 6 */
        "client.id", "ievo-broker",
        "test.mock.num.brokers", nbrokers,
        NULL, NULL};
    memset(b, 0, sizeof *b);
    b->control_fd = -1;
    for (int i = 0; i < BROKER_CTL_MAX_CLIENTS; i++) b->clients[i].fd = -1;
    b->nbrokers = o->brokers;
    rd_kafka_conf_t *conf = kafka_conf_for(cfg, KAFKA_PRODUCER, defaults, settings_names(), err, errlen);
    if (!conf) return -1;
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
    /* The control socket is up before the bootstrap servers are published, so whoever waits
     * for those can use it at once. */
    if (o->control_path && broker_ctl_open(b, o->control_path, err, errlen)) {
        broker_stop(b);
        return -1;
    }
    if (o->bootstrap_file && broker_write_bootstrap_file(o->bootstrap_file, b->bootstraps, err, errlen)) {
        broker_stop(b);
        return -1;
    }
    b->bootstrap_file = o->bootstrap_file;
    return 0;
}

/* Serves until a signal. The one wait point: poll() on the control socket and its clients (a
 * signal interrupts it), then the handle's own callbacks. */
static void broker_serve(broker *b) {
    struct pollfd pfd[1 + BROKER_CTL_MAX_CLIENTS];
    broker_ctl_client *who[1 + BROKER_CTL_MAX_CLIENTS];
    while (!stop_signal_received()) {
        nfds_t n = 0;
        if (b->control_fd >= 0) {
            pfd[n] = (struct pollfd){b->control_fd, POLLIN, 0};
            who[n++] = NULL;
            for (int i = 0; i < BROKER_CTL_MAX_CLIENTS; i++)
                if (b->clients[i].fd >= 0) {
                    pfd[n] = (struct pollfd){b->clients[i].fd, POLLIN, 0};
                    who[n++] = &b->clients[i];
                }
        }
        int ready = poll(n ? pfd : NULL, n, 200);
        rd_kafka_poll(b->rk, 0);
        if (ready <= 0 || stop_signal_received()) continue;   /* timeout, or EINTR from a signal */
        for (nfds_t i = 0; i < n; i++) {
            if (!pfd[i].revents) continue;
            if (!who[i]) broker_ctl_accept(b);
            else if (who[i]->fd == pfd[i].fd) broker_ctl_client_io(b, who[i]);
        }
    }
}

int broker_run(const broker_opts *o, const config *cfg, char *err, size_t errlen) {
    stop_signal_catch();
    broker b;
    if (broker_start(&b, o, cfg, err, errlen)) return -1;
    LOG_I("broker", "%d brokers at %s%s%s", o->brokers, b.bootstraps, o->bootstrap_file ? ", written to " : "",
          o->bootstrap_file ? o->bootstrap_file : "");
    if (b.control_path) LOG_I("broker", "control channel on %s", b.control_path);
    printf("%s\n", b.bootstraps);
    fflush(stdout);

    broker_serve(&b);

    LOG_I("broker", "%s: shutting down", stop_signal_name(stop_signal_received()));
    if (b.bootstrap_file) unlink(b.bootstrap_file);
    broker_stop(&b);
    LOG_I("broker", "stopped");
    return 0;
}
