/* settings: the table of ievo's configuration keys and everything read from it (the typed
 * getters, the secret rules, `ievo config` and docs/configuration.md). See settings.h. */
#include "settings.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define W SETTINGS_CMD_WORKER
#define ALL SETTINGS_CMD_ALL
#define MIB (INT64_C(1) << 20)
/* The schema registry's readers: the worker, and the tools that read or write the topics. */
#define SR (W | SETTINGS_CMD_CONSUME | SETTINGS_CMD_PRODUCE | SETTINGS_CMD_TRAIN)

/* Keep the documentation order: Kafka topics, the schema registry, the model, batches, state,
 * the changelog, outputs, observability, text models, logging. */
const setting SETTINGS[] = {
    {"input.topic", SETTING_STRING, "user-actions", NULL, 0, 0, NULL,
     W | SETTINGS_CMD_PRODUCE | SETTINGS_CMD_TRAIN | SETTINGS_CMD_CONSUME, 0,
     "The topic of UserAction events: what the worker consumes, `ievo produce` writes by default, "
     "`ievo train -t` and `ievo consume --input` read. Records are keyed by user_id."},
    {"output.topic", SETTING_STRING, "interest-vectors", NULL, 0, 0, NULL, W | SETTINGS_CMD_CONSUME, 0,
     "The topic the worker writes one InterestVector to per applied event, keyed by user_id; what "
     "`ievo consume` reads by default."},
    {"dlq.topic", SETTING_STRING, "user-actions.dlq", NULL, 0, 0, NULL, W, 0,
     "The dead-letter topic: every input record that does not decode or validate is copied here, with "
     "the reason in its headers (ievo.error.class, ievo.error, ievo.source.topic, .partition, .offset)."},
    {"dlq.topic.create", SETTING_BOOL, "false", NULL, 0, 0, NULL, W, 0,
     "Create the dead-letter topic when it is missing (otherwise it must exist, or the cluster create it "
     "on first use)."},
    {"input.format", SETTING_ENUM, "confluent", NULL, 0, 0, "confluent|avro",
     W | SETTINGS_CMD_PRODUCE | SETTINGS_CMD_TRAIN | SETTINGS_CMD_CONSUME, 0,
     "Wire format of the input records: `confluent` (magic byte 0, a 4-byte big-endian schema id, Avro "
     "binary) or `avro` (Avro binary alone)."},
    {"input.schema.id", SETTING_INT, "1", NULL, 0, INT32_MAX, NULL,
     W | SETTINGS_CMD_PRODUCE | SETTINGS_CMD_TRAIN | SETTINGS_CMD_CONSUME, 0,
     "The schema id of UserAction records in the Confluent header; a record with another id is "
     "dead-lettered (class `schema_id`)."},
    {"input.max.record.bytes", SETTING_BYTES, "1048576", NULL, 64, 1 << 30, NULL, W | SETTINGS_CMD_CONSUME, 0,
     "Largest input record the worker decodes; a larger one is dead-lettered as `oversized`."},
    {"output.format", SETTING_ENUM, "confluent", NULL, 0, 0, "confluent|avro", W | SETTINGS_CMD_CONSUME, 0,
     "Wire format of the output records, as input.format."},
    {"output.schema.id", SETTING_INT, "2", NULL, 0, INT32_MAX, NULL, W | SETTINGS_CMD_CONSUME, 0,
     "The schema id written in the Confluent header of InterestVector records; `ievo consume` without a "
     "registry says when it meets another id."},

    {"schema.registry.url", SETTING_STRING, NULL, "(none: the fixed schema ids)", 0, 0, NULL, SR, 0,
     "The schema registry (Confluent's REST API: Confluent Schema Registry, Karapace, Apicurio's ccompat, "
     "Redpanda): one `http://` or `https://` URL or several, comma-separated, tried in turn. Set, input "
     "records are read with their writers' schemas by id, the output schema is registered under the "
     "output topic's subject and written with its id, and input.format, output.format and items.format "
     "must be `confluent` (docs/schemas.md). Unset: the fixed ids (input.schema.id, ...)."},
    {"basic.auth.user.info", SETTING_STRING, NULL, "(none)", 0, 0, NULL, SR, 1,
     "`user:password` for the registry's HTTP basic auth."},
    {"schema.registry.basic.auth.user.info", SETTING_STRING, NULL, "(none)", 0, 0, NULL, SR, 1,
     "The same as basic.auth.user.info, under the name some clients use; basic.auth.user.info wins."},
    {"basic.auth.credentials.source", SETTING_ENUM, "USER_INFO", NULL, 0, 0, "USER_INFO|URL", SR, 0,
     "Where the registry's credentials come from: basic.auth.user.info, or `URL` (`https://user:pass@host` "
     "in schema.registry.url; messages show the URLs without them)."},
    {"schema.registry.ssl.ca.location", SETTING_STRING, NULL, "(the system's CAs)", 0, 0, NULL, SR, 0,
     "PEM file of the CA(s) the registry's certificate is checked against."},
    {"schema.registry.ssl.certificate.location", SETTING_STRING, NULL, "(none)", 0, 0, NULL, SR, 0,
     "PEM file of the client certificate, for mutual TLS with the registry."},
    {"schema.registry.ssl.key.location", SETTING_STRING, NULL, "(none)", 0, 0, NULL, SR, 0,
     "PEM file of the client certificate's key."},
    {"schema.registry.ssl.key.password", SETTING_STRING, NULL, "(none)", 0, 0, NULL, SR, 1,
     "The password of schema.registry.ssl.key.location's key, when it is encrypted."},
    {"schema.registry.ssl.endpoint.identification.algorithm", SETTING_ENUM, "https", NULL, 0, 0, "https|none", SR, 0,
     "`none` skips the check of the registry's host name against its certificate (the certificate is "
     "still verified)."},
    {"schema.registry.ssl.truststore.location", SETTING_STRING, NULL, "(refused)", 0, 0, NULL, SR, 0,
     "Not read: Java keystores are refused with an error; give PEM files in "
     "schema.registry.ssl.ca.location."},
    {"schema.registry.ssl.keystore.location", SETTING_STRING, NULL, "(refused)", 0, 0, NULL, SR, 0,
     "Not read: Java keystores are refused with an error; give PEM files in "
     "schema.registry.ssl.certificate.location and .key.location."},
    {"schema.registry.request.timeout.ms", SETTING_MS, "10000", NULL, 1, 600000, NULL, SR, 0,
     "One HTTP exchange with the registry, connection included."},
    {"schema.registry.retries", SETTING_INT, "3", NULL, 0, 100, NULL, SR, 0,
     "Rounds over every registry URL after the first, each after a backoff, before a request counts as "
     "failed (the registry unavailable). A 4xx answer is not retried."},
    {"schema.registry.retry.backoff.ms", SETTING_MS, "100", NULL, 1, 600000, NULL, SR, 0,
     "The first backoff between rounds; it doubles up to schema.registry.retry.backoff.max.ms."},
    {"schema.registry.retry.backoff.max.ms", SETTING_MS, "5000", NULL, 1, 600000, NULL, SR, 0,
     "The longest backoff between rounds; with schema.registry.unavailable=dead-letter, also how long "
     "the registry is not asked again after it could not be reached."},
    {"auto.register.schemas", SETTING_BOOL, "true", NULL, 0, 0, NULL, W | SETTINGS_CMD_PRODUCE, 0,
     "Register the schema written (the worker's InterestVector, `ievo produce`'s UserAction or Item) "
     "under the topic's subject; `false` only looks it up and fails when it is not there."},
    {"use.latest.version", SETTING_BOOL, "false", NULL, 0, 0, NULL, W | SETTINGS_CMD_PRODUCE, 0,
     "Write with the subject's latest version instead, which must be ievo's own schema (the encoder "
     "writes only that)."},
    {"value.subject.name.strategy", SETTING_STRING, "TopicNameStrategy", NULL, 0, 0, NULL,
     W | SETTINGS_CMD_PRODUCE, 0,
     "The subject a written schema goes under: `TopicNameStrategy` (`<topic>-value`), "
     "`RecordNameStrategy` (the record's full name) or `TopicRecordNameStrategy` "
     "(`<topic>-<full name>`); the Java class names (io.confluent.kafka.serializers.subject.*) are "
     "accepted."},
    {"schema.registry.unavailable", SETTING_ENUM, "wait", NULL, 0, 0, "wait|dead-letter",
     W | SETTINGS_CMD_TRAIN, 0,
     "A record with a new schema id while the registry cannot be reached: `wait` retries for "
     "schema.registry.wait.ms, then stops the worker without committing past the record; "
     "`dead-letter` dead-letters it at once (class `registry`). Ids already met keep flowing either way. "
     "`ievo train -t` fails rather than train without the record."},
    {"schema.registry.wait.ms", SETTING_MS, "60000", NULL, 0, INT32_MAX, NULL,
     W | SETTINGS_CMD_PRODUCE | SETTINGS_CMD_TRAIN, 0,
     "How long a start (the output schema's id) and a new input id wait for an unreachable registry. The "
     "worker refuses a value not below the consumer's max.poll.interval.ms: waiting longer would cost "
     "its group membership."},

    {"model.path", SETTING_STRING, NULL, "(required by the worker)", 0, 0, NULL,
     W | SETTINGS_CMD_STATE | SETTINGS_CMD_EVAL | SETTINGS_CMD_REFERENCE, 0,
     "The model file (safetensors layout) the worker serves, written by `ievo train` or "
     "`ievo model init`. The worker refuses to start without one."},
    {"model.backend", SETTING_ENUM, "dnnl", NULL, 0, 0, "scalar|dnnl",
     W | SETTINGS_CMD_TRAIN | SETTINGS_CMD_EVAL | SETTINGS_CMD_EMBED, 0,
     "Compute backend: `dnnl` (oneDNN) or `scalar` (the plain C reference the oneDNN path is tested "
     "against, much slower)."},

    {"batch.max.events", SETTING_INT, "2048", NULL, 1, 1 << 20, NULL, W, 0,
     "Most records in one micro-batch."},
    {"batch.timeout.ms", SETTING_MS, "20", NULL, 0, 60000, NULL, W, 0,
     "Longest wait for the first record of a micro-batch."},
    {"batch.readahead.records", SETTING_INT, "65536", NULL, 0, 1 << 24, NULL, W, 0,
     "Records already fetched that the worker holds, one queue per partition, to build each batch from "
     "many partitions in turn; 0 takes records in librdkafka's order."},
    {"batch.readahead.bytes", SETTING_BYTES, NULL, "64 MiB; with a memory limit, 1/8 of it", MIB, INT64_MAX, NULL,
     W, 0, "The most bytes of records the read-ahead holds, whatever batch.readahead.records allows."},
    {"memory.limit.bytes", SETTING_BYTES, "0", NULL, 0, INT64_MAX, NULL, W, 0,
     "The memory the worker may use. 0: the limit of the cgroup it runs in (a container's), when there "
     "is one, else none. With a limit, what the worker holds is given shares of it by default, together "
     "about 5/8: state.cache.bytes 1/8 (and up to half of that again while a checkpoint copies it), "
     "state.block.cache.bytes 1/16, state.write.buffer.bytes 1/48 (3 memtables), batch.readahead.bytes "
     "1/8, items.pending.bytes 1/32, and librdkafka's consumer prefetch (queued.max.messages.kbytes 1/16, "
     "fetch.max.bytes 1/32) and producer queue (queue.buffering.max.kbytes 1/16, at least twice "
     "message.max.bytes). A value set explicitly wins."},

    {"state.dir", SETTING_STRING, "./ievo-state", NULL, 0, 0, NULL, W | SETTINGS_CMD_STATE, 0,
     "The RocksDB directory of per-user states and per-partition offsets; one per worker, and only one "
     "process may open it at a time."},
    {"state.cache.bytes", SETTING_BYTES, NULL, "256 MiB; with a memory limit, 1/8 of it", MIB, INT64_MAX, NULL, W, 0,
     "Memory for user records between checkpoints (a write-behind cache in front of RocksDB); a "
     "checkpoint also starts when half of it is dirty."},
    {"commit.interval.ms", SETTING_MS, "5000", NULL, 0, 3600000, NULL, W, 0,
     "Checkpoint period: how much is re-applied after a crash. Outputs are never delayed by it; they "
     "are produced at once and acknowledged before the checkpoint that covers them."},
    {"state.snapshot.slice.records", SETTING_INT, "8192", NULL, 1, INT32_MAX, NULL, W, 0,
     "Records a checkpoint's snapshot copies per turn of the event loop, so that no turn stalls for the "
     "whole copy."},
    {"state.block.cache.bytes", SETTING_BYTES, NULL, "64 MiB; with a memory limit, 1/16 of it", MIB, INT64_MAX, NULL,
     W, 0, "RocksDB's block cache."},
    {"state.write.buffer.bytes", SETTING_BYTES, NULL, "32 MiB; with a memory limit, 1/48 of it", MIB, INT64_MAX,
     NULL, W, 0, "RocksDB's memtable size."},
    {"state.max.write.buffers", SETTING_INT, "3", NULL, 2, 64, NULL, W, 0,
     "Memtables RocksDB keeps before it stalls writes."},
    {"state.background.jobs", SETTING_INT, "2", NULL, 1, 64, NULL, W, 0,
     "RocksDB's flush and compaction threads."},
    {"state.wal", SETTING_ENUM, "auto", NULL, 0, 0, "auto|on|off", W, 0,
     "RocksDB's write-ahead log. `auto`: off while the changelog is enabled (the changelog is then the "
     "durable copy, as in Kafka Streams, and a store that was not closed cleanly is restored from it), on "
     "without one. `off` needs changelog.enable=true."},
    {"state.sync", SETTING_BOOL, "false", NULL, 0, 0, NULL, W, 0,
     "fsync every state write's log (needs the write-ahead log). Off by default: the changelog topic, not "
     "the disk, is what a lost machine's states are restored from."},
    {"state.compaction", SETTING_ENUM, "level", NULL, 0, 0, "level|universal", W, 0,
     "RocksDB's compaction style: `level`, or `universal` for lower write amplification."},
    {"state.log.level", SETTING_INT, "4", NULL, 0, 4, NULL, W, 0,
     "RocksDB's own LOG file: 0 (debug) to 4 (fatal only)."},

    {"changelog.enable", SETTING_BOOL, "true", NULL, 0, 0, NULL, W, 0,
     "Replicate every checkpointed state to the changelog topic, so that partitions can move between "
     "workers with their users and a lost state dir is restored."},
    {"changelog.topic", SETTING_STRING, NULL, "<group.id>-state-changelog", 0, 0, NULL, W, 0,
     "The changelog topic: as many partitions as the input topic, compacted (cleanup.policy=compact). "
     "The worker creates it so when it is missing, and refuses one with another partition count."},
    {"changelog.replication.factor", SETTING_INT, "-1", NULL, -1, 32767, NULL, W, 0,
     "The replication factor of the changelog topic when the worker creates it; -1: the cluster's "
     "default (0 is refused)."},

    {"output.top.k", SETTING_INT, "0", NULL, 0, 256, NULL, W, 0,
     "Attach the K best-scoring items outside the user's window to each interest vector (models with "
     "a scoring head); 0: none."},
    {"metrics.listen", SETTING_STRING, NULL, "(off)", 0, 0, NULL, W, 0,
     "`host:port` for /metrics (Prometheus), /healthz and /readyz; `:port` or a port alone binds "
     "127.0.0.1 only, so serving other machines (Prometheus, the kubelet's probes) takes an explicit "
     "`0.0.0.0:port` (or `[::]:port`). Port 0 picks a free port and logs it. Unset or empty: no server."},
    {"stats.file", SETTING_STRING, NULL, "(none)", 0, 0, NULL, W, 0,
     "Write the run summary here as JSON when the worker stops."},
    {"stats.series.file", SETTING_STRING, NULL, "(none)", 0, 0, NULL, W, 0,
     "Append the counters here as JSON lines, every stats.series.interval.ms (`ievo report --series`)."},
    {"stats.series.interval.ms", SETTING_MS, "1000", NULL, 10, 3600000, NULL, W, 0,
     "Period of stats.series.file."},
    {"log.slow.batch.ms", SETTING_MS, "1000", NULL, 1, 3600000, NULL, W, 0,
     "Log every batch (with its checkpoint) that takes longer than this."},
    {"stop.timeout.ms", SETTING_MS, "10000", NULL, 0, 3600000, NULL, W | SETTINGS_CMD_PRODUCE, 0,
     "How long a clean stop (SIGTERM, SIGINT) waits for the broker: the worker to make what was applied "
     "durable, produce to deliver the records it has queued. A second signal ends the process at once "
     "(exit 128 + the signal), like a crash: what the worker loses is applied again at the next start."},

    {"items.topic", SETTING_STRING, "items", NULL, 0, 0, NULL, W | SETTINGS_CMD_PRODUCE, 0,
     "Text models: the item catalogue topic (Item records keyed by item_id), read like a global table "
     "before any event is applied; what `ievo produce --catalogue` writes by default."},
    {"items.format", SETTING_ENUM, "confluent", NULL, 0, 0, "confluent|avro", W | SETTINGS_CMD_PRODUCE, 0,
     "Wire format of the catalogue records, as input.format."},
    {"items.schema.id", SETTING_INT, "3", NULL, 0, INT32_MAX, NULL, W | SETTINGS_CMD_PRODUCE, 0,
     "The schema id of Item records in the Confluent header."},
    {"items.pending.bytes", SETTING_BYTES, NULL, "64 MiB; with a memory limit, 1/32 of it", MIB, INT64_MAX, NULL, W,
     0, "Text models: the most bytes of catalogue texts read and not yet encoded; more waits until they are."},
    {"text.encoder.dir", SETTING_STRING, NULL, "${IEVO_CACHE:-~/.cache/ievo}/use-lite", 0, 0, NULL,
     W | SETTINGS_CMD_TRAIN | SETTINGS_CMD_EVAL | SETTINGS_CMD_REFERENCE | SETTINGS_CMD_EMBED, 0,
     "Text models: the directory of USE-lite's weights and vocabulary (scripts/fetch-use-lite.sh "
     "writes them)."},

    {"log.level", SETTING_ENUM, "info", NULL, 0, 0, "debug|info|warn|error", ALL, 0,
     "Least severe log line written to stderr."},
    {"log.format", SETTING_ENUM, "text", NULL, 0, 0, "text|json", ALL, 0,
     "`text` (one line: time, level, module, message) or `json` (one object per line, for log "
     "shippers)."},
};
const size_t SETTINGS_COUNT = sizeof SETTINGS / sizeof SETTINGS[0];

#undef W
#undef ALL
#undef MIB
#undef SR

static const char *const COMMAND_NAMES[] = {"worker", "consume", "produce", "train", "eval", "reference",
                                            "state", "embed", "broker", "other"};

const setting *settings_find(const char *key) {
    for (size_t i = 0; i < SETTINGS_COUNT; i++)
        if (!strcmp(SETTINGS[i].name, key)) return &SETTINGS[i];
    return NULL;
}

static const char *g_names[sizeof SETTINGS / sizeof SETTINGS[0] + 1];
static pthread_once_t g_names_once = PTHREAD_ONCE_INIT;
static void names_fill(void) {
    for (size_t i = 0; i < SETTINGS_COUNT; i++) g_names[i] = SETTINGS[i].name;
}

const char *const *settings_names(void) {
    pthread_once(&g_names_once, names_fill);
    return g_names;
}

/* The commands' names for a bit set, as the docs print them ("worker, replay, consume"). */
static void settings_commands_text(unsigned commands, char *out, size_t n) {
    if ((commands & SETTINGS_CMD_ALL) == SETTINGS_CMD_ALL) {
        snprintf(out, n, "every command");
        return;
    }
    size_t len = 0;
    out[0] = 0;
    for (size_t b = 0; b < sizeof COMMAND_NAMES / sizeof COMMAND_NAMES[0]; b++) {
        if (!(commands & (1u << b))) continue;
        const char *name = (1u << b) == SETTINGS_CMD_WORKER ? "worker, replay" : COMMAND_NAMES[b];
        int k = snprintf(out + len, n - len, "%s%s", len ? ", " : "", name);
        if (k < 0 || (size_t)k >= n - len) break;
        len += (size_t)k;
    }
}

/* ---- typed reads ------------------------------------------------------------------------- */

static const char *SECRET_MASK = "********";

/* Whether v holds a URL with credentials in it (scheme://user:password@host), as
 * schema.registry.url does with basic.auth.credentials.source=URL. */
static int has_url_credentials(const char *v) {
    for (const char *p = strstr(v, "://"); p; p = strstr(p + 3, "://")) {
        size_t authority = strcspn(p + 3, "/?#, ");
        if (memchr(p + 3, '@', authority)) return 1;
    }
    return 0;
}

const char *settings_shown_value(const char *key, const char *value) {
    return settings_is_secret(key) || (value && has_url_credentials(value)) ? SECRET_MASK : value;
}

static const setting *row_of(const char *key, setting_type want, char *err, size_t errlen) {
    const setting *s = settings_find(key);
    if (!s) {
        snprintf(err, errlen, "%s: not one of ievo's settings", key);
        return NULL;
    }
    int is_int = s->type == SETTING_INT || s->type == SETTING_MS || s->type == SETTING_BYTES;
    if (want == SETTING_INT ? !is_int : s->type != want) {
        snprintf(err, errlen, "%s: read as the wrong type (a bug)", key);
        return NULL;
    }
    return s;
}

/* The index of v among s->values, or -1. */
static int enum_index(const setting *s, const char *v) {
    int i = 0;
    for (const char *p = s->values;; i++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (strlen(v) == n && !strncmp(p, v, n)) return i;
        if (!bar) return -1;
        p = bar + 1;
    }
}

int settings_enum_index(const char *key, const char *value) {
    const setting *s = settings_find(key);
    return s && s->type == SETTING_ENUM ? enum_index(s, value) : -1;
}

const char *settings_enum_value(const char *key, int index, char *buf, size_t n) {
    const setting *s = settings_find(key);
    buf[0] = 0;
    if (!s || s->type != SETTING_ENUM || index < 0) return buf;
    const char *p = s->values;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    if (p) snprintf(buf, n, "%.*s", (int)strcspn(p, "|"), p);
    return buf;
}

/* An enum's values as text: "a, b or c" (last = " or ") or "a, b, c" (last = ", "). */
static void enum_text(const setting *s, const char *last, char *out, size_t n) {
    size_t len = 0;
    out[0] = 0;
    for (const char *p = s->values; *p;) {
        const char *bar = strchr(p, '|');
        size_t k = bar ? (size_t)(bar - p) : strlen(p);
        int w = snprintf(out + len, n - len, "%s%.*s", len == 0 ? "" : bar ? ", " : last, (int)k, p);
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
        if (!bar) break;
        p = bar + 1;
    }
}

static const char *value_or_default(const config *c, const setting *s) {
    return config_get(c, s->name, s->def);
}

/* The value as written, for an error message: quoted, or "the value" for a secret. */
static void quoted(const setting *s, const char *v, char *out, size_t n) {
    if (s->secret) snprintf(out, n, "the value");
    else snprintf(out, n, "'%.200s'", v);
}

int settings_string(const config *c, const char *key, const char **out, char *err, size_t errlen) {
    const setting *s = row_of(key, SETTING_STRING, err, errlen);
    if (!s) return -1;
    *out = value_or_default(c, s);
    return 0;
}

int settings_int(const config *c, const char *key, int64_t *out, char *err, size_t errlen) {
    const setting *s = row_of(key, SETTING_INT, err, errlen);
    if (!s) return -1;
    if (!config_get(c, key, s->def)) {
        snprintf(err, errlen, "%s is not set, and its default is computed (settings_int_or)", key);
        return -1;
    }
    return settings_int_or(c, key, 0, out, err, errlen);
}

int settings_int_or(const config *c, const char *key, int64_t computed, int64_t *out, char *err, size_t errlen) {
    const setting *s = row_of(key, SETTING_INT, err, errlen);
    if (!s) return -1;
    const char *v = value_or_default(c, s);
    if (!v) {
        *out = computed;
        return 0;
    }
    char q[220];
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    if (errno || end == v || *end) {
        quoted(s, v, q, sizeof q);
        snprintf(err, errlen, "%s: %s is not an integer%s", key, q,
                 s->type == SETTING_MS ? " (milliseconds)" : s->type == SETTING_BYTES ? " (bytes)" : "");
        return -1;
    }
    if (x < s->min || x > s->max) {
        snprintf(err, errlen, "%s: %s is outside [%" PRId64 ", %" PRId64 "]", key, s->secret ? "the value" : v,
                 s->min, s->max);
        return -1;
    }
    *out = x;
    return 0;
}

int settings_bool(const config *c, const char *key, int *out, char *err, size_t errlen) {
    const setting *s = row_of(key, SETTING_BOOL, err, errlen);
    if (!s) return -1;
    const char *v = value_or_default(c, s);
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) *out = 0;
    else {
        char q[220];
        quoted(s, v, q, sizeof q);
        snprintf(err, errlen, "%s: %s is not a boolean (true or false)", key, q);
        return -1;
    }
    return 0;
}

int settings_enum(const config *c, const char *key, int *out, char *err, size_t errlen) {
    const setting *s = row_of(key, SETTING_ENUM, err, errlen);
    if (!s) return -1;
    const char *v = value_or_default(c, s);
    int i = enum_index(s, v);
    if (i < 0) {
        char q[220], list[256];
        quoted(s, v, q, sizeof q);
        enum_text(s, " or ", list, sizeof list);
        snprintf(err, errlen, "%s: %s is not %s", key, q, list);
        return -1;
    }
    *out = i;
    return 0;
}

int settings_check(const config *c, unsigned commands, char *err, size_t errlen) {
    for (size_t i = 0; i < c->n; i++) {
        const setting *s = settings_find(c->e[i].key);
        if (!s || !(s->commands & commands)) continue;
        int64_t x;
        int b;
        const char *str;
        int rc = s->type == SETTING_STRING ? settings_string(c, s->name, &str, err, errlen)
                 : s->type == SETTING_BOOL ? settings_bool(c, s->name, &b, err, errlen)
                 : s->type == SETTING_ENUM ? settings_enum(c, s->name, &b, err, errlen)
                                           : settings_int(c, s->name, &x, err, errlen);
        if (rc) return -1;
    }
    return 0;
}

/* ---- secrets ----------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int settings_is_secret(const char *key) {
    const setting *s = settings_find(key);
    if (s) return s->secret;
    /* librdkafka's own sensitive properties (the ones rdkafka_conf.c marks _RK_SENSITIVE), and
     * anything named like a credential, for either client. */
    if (!strncmp(key, "consumer.", 9)) key += 9;
    else if (!strncmp(key, "producer.", 9)) key += 9;
    static const char *const exact[] = {"sasl.username", "sasl.password", "sasl.oauthbearer.config",
                                        "sasl.oauthbearer.client.secret", "sasl.oauthbearer.extensions",
                                        "ssl.key.pem", "ssl_key", "ssl.keystore.password", "ssl.key.password",
                                        NULL};
    if (config_key_in(key, exact)) return 1;
    return ends_with(key, ".password") || ends_with(key, ".secret") || ends_with(key, "_password") ||
           ends_with(key, "_secret");
}

/* ---- printing ---------------------------------------------------------------------------- */

static const char *type_name(setting_type t) {
    switch (t) {
    case SETTING_STRING: return "string";
    case SETTING_INT: return "integer";
    case SETTING_BOOL: return "boolean";
    case SETTING_ENUM: return "enum";
    case SETTING_MS: return "milliseconds";
    case SETTING_BYTES: return "bytes";
    }
    return "?";
}

/* "0 .. 60000", "confluent, avro", or "" for strings and booleans. */
static void range_text(const setting *s, char *out, size_t n) {
    out[0] = 0;
    if (s->type == SETTING_ENUM) {
        enum_text(s, ", ", out, n);
    } else if (s->type == SETTING_INT || s->type == SETTING_MS || s->type == SETTING_BYTES) {
        snprintf(out, n, "%" PRId64 " .. %" PRId64, s->min, s->max);
    } else if (s->type == SETTING_BOOL) {
        snprintf(out, n, "true, false");
    }
}

static const char *default_text(const setting *s) {
    return s->def ? s->def : s->def_doc ? s->def_doc : "";
}

/* Writes text wrapped at width columns, each line indented. */
static void wrapped(FILE *f, const char *text, int indent, int width) {
    const char *p = text;
    while (*p) {
        int room = width - indent, take = 0, last_space = -1;
        while (p[take] && take < room) {
            if (p[take] == ' ') last_space = take;
            take++;
        }
        if (p[take] && last_space > 0) take = last_space;
        fprintf(f, "%*s%.*s\n", indent, "", take, p);
        p += take;
        while (*p == ' ') p++;
    }
}

int settings_print_text(FILE *f, unsigned commands, const char *const *keys, int nkeys, char *err, size_t errlen) {
    for (int k = 0; k < nkeys; k++)
        if (!settings_find(keys[k])) {
            snprintf(err, errlen, "%s is not one of ievo's settings (every other key is a librdkafka property: "
                                  "see librdkafka's CONFIGURATION.md)", keys[k]);
            return -1;
        }
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const setting *s = &SETTINGS[i];
        int wanted = nkeys ? 0 : (s->commands & commands) != 0;
        for (int k = 0; k < nkeys; k++) wanted |= !strcmp(keys[k], s->name);
        if (!wanted) continue;
        char range[160], cmds[160];
        range_text(s, range, sizeof range);
        settings_commands_text(s->commands, cmds, sizeof cmds);
        fprintf(f, "%s  (%s%s%s; default %s)\n", s->name, type_name(s->type), range[0] ? ": " : "", range,
                default_text(s)[0] ? default_text(s) : "none");
        wrapped(f, s->doc, 4, 96);
        fprintf(f, "    read by: %s%s\n", cmds, s->secret ? "; a secret (masked)" : "");
    }
    return 0;
}

static const char MARKDOWN_HEAD[] =
    "# Configuration\n"
    "\n"
    "<!-- Generated by `ievo config --markdown` from the table in worker/common/settings.c; the test\n"
    "     cli_configuration_md fails when this file differs from it. Edit the table, not this file. -->\n"
    "\n"
    "Settings are `key=value` pairs in Kafka's own vocabulary. Every command reads them from the same\n"
    "sources, later ones winning:\n"
    "\n"
    "1. properties files given with `-F FILE` / `--config FILE` (`key=value` lines; `#` and `!` start\n"
    "   comments), in the order given;\n"
    "2. environment variables `IEVO_CFG_<KEY>`: the key upper-cased with `.` written as `_`\n"
    "   (`IEVO_CFG_BOOTSTRAP_SERVERS=...` sets `bootstrap.servers`), for containers;\n"
    "3. `-X key=value` and the flags that stand for a key (`-b` for `bootstrap.servers`, `-G` for\n"
    "   `group.id`, ...), in command-line order.\n"
    "\n"
    "One properties file serves every command: a key a command does not read is ignored with a note\n"
    "on stderr. A value that does not parse, is out of range or is not one of an enum's values stops\n"
    "the command with exit status 2 and a message naming the key. `ievo worker --print-config` shows\n"
    "the settings as the worker would apply them, secrets masked; `ievo config [KEY...]` explains\n"
    "keys.\n"
    "\n"
    "## librdkafka properties\n"
    "\n"
    "Every key that is not in the table below is a librdkafka property and goes to the Kafka clients\n"
    "unchanged, as in kcat and Fluent Bit (see librdkafka's CONFIGURATION.md). `consumer.<prop>` and\n"
    "`producer.<prop>` set a property for one client only; unscoped properties go to both, except\n"
    "those librdkafka honours on one side only (`group.id`, `session.timeout.ms`, `fetch.*`, ... to\n"
    "the consumer; `acks`, `linger.ms`, `compression.*`, ... to the producer). A property librdkafka\n"
    "rejects is an error naming it.\n"
    "\n"
    "The worker's own defaults for its clients, all overridable: consumer `group.id=ievo`,\n"
    "`enable.auto.offset.store=false` (offsets are stored at checkpoints), `auto.offset.reset=earliest`,\n"
    "`partition.assignment.strategy=cooperative-sticky`; producer `enable.idempotence=true`,\n"
    "`acks=all`, `linger.ms=5`, `message.max.bytes=33554432` (so that a dead-letter copy of an\n"
    "oversized record fits: give the dead-letter topic a matching `max.message.bytes` on a real\n"
    "cluster); the changelog's producer `queue.buffering.max.kbytes=4096`.\n"
    "\n"
    "Secrets are never printed and never echoed in an error: keys ending in `.password` or `.secret`,\n"
    "`sasl.username`, `sasl.password`, `sasl.oauthbearer.config`, `sasl.oauthbearer.client.secret`,\n"
    "`sasl.oauthbearer.extensions`, `ssl.key.pem`, `ssl.key.password`, `ssl.keystore.password`, with or\n"
    "without a `consumer.` / `producer.` prefix; the keys the table below marks as secrets; and any\n"
    "value with credentials in a URL (`https://user:password@host`). Give them in a properties file\n"
    "or an `IEVO_CFG_*` variable, not with `-X`: a command line is readable by every local user, and\n"
    "the commands warn about a secret given there ([security.md](security.md)).\n"
    "\n"
    "## ievo's settings\n"
    "\n"
    "| key | type | range or values | default | read by | meaning |\n"
    "|---|---|---|---|---|---|\n";

/* A table cell: '|' escaped. */
static void md_cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else fputc(*s, f);
    }
}

void settings_print_markdown(FILE *f) {
    fputs(MARKDOWN_HEAD, f);
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const setting *s = &SETTINGS[i];
        char range[160], cmds[160];
        range_text(s, range, sizeof range);
        settings_commands_text(s->commands, cmds, sizeof cmds);
        fprintf(f, "| `%s` | %s | ", s->name, type_name(s->type));
        md_cell(f, range);
        fputs(" | ", f);
        if (s->def) fprintf(f, "`%s`", s->def);
        else md_cell(f, default_text(s));
        fputs(" | ", f);
        md_cell(f, cmds);
        fputs(" | ", f);
        md_cell(f, s->doc);
        if (s->secret) fputs(" A secret: masked when printed.", f);
        fputs(" |\n", f);
    }
}

void settings_print_keys(FILE *f) {
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const setting *s = &SETTINGS[i];
        char range[160], cmds[160];
        range_text(s, range, sizeof range);
        settings_commands_text(s->commands, cmds, sizeof cmds);
        fprintf(f, "%s\t%s\t%s\t%s\t%s\t%s\n", s->name, type_name(s->type), s->def ? s->def : "", range, cmds,
                s->secret ? "secret" : "");
    }
}
