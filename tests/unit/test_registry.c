/* test_registry: the schema registry client and the framed records through it (worker/registry),
 * against the tests' registry (tests/integration/schema_registry.py, a child process here).
 *
 * - Settings: defaults, several URLs, the refusals (a URL that is not http, Java keystores, a
 *   user info without ':' whose value is never echoed), the subject strategies; every key the
 *   client reads is a row of the settings table, read by the right commands, its credentials
 *   secret, none handed to librdkafka, a command reading only its own; the worker's wait bound
 *   against max.poll.interval.ms.
 * - Client: failover past a dead URL (then straight to the live one), register / lookup / latest
 *   / by id, the caches (no request for a cached answer), 404 with the registry's error code,
 *   wrong credentials (a clear error without the password), the registry down (unavailable
 *   after the retries; cached ids still answered), TLS with the CA given and without it.
 * - serde: a same-layout writer, an appended-fields writer, an incompatible writer (the field
 *   named, cached), an unknown id; the registry down for a new id: wait (bounded) and
 *   dead-letter (at once, no request per record); the output's id registered, looked up
 *   (auto.register.schemas=false), use.latest.version; the catalogue's Item from a newer writer,
 *   and one without ts refused.
 * - The decode cost per event on the worker's path (framing, the id's cached plan, the decode):
 *   today's fixed id against the registry's ids for the current, a newer and an older writer
 *   (printed; never fails the test).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "codec.h"
#include "config.h"
#include "kafka_clients.h"
#include "registry.h"
#include "schemas.h"
#include "serde.h"
#include "settings.h"
#include "worker.h"

/* ---- the test registry as a child ----------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int port;
    char dir[256];
    int tls;
} test_sr;

static int sr_start(test_sr *s, const char *user, const char *password) {
    char port_file[300], state[300], port[16], script[1024];
    const char *src = getenv("IEVO_SOURCE_DIR");
    snprintf(script, sizeof script, "%s/tests/integration/schema_registry.py", src ? src : ".");
    snprintf(port_file, sizeof port_file, "%s/port", s->dir);
    snprintf(state, sizeof state, "%s/state.json", s->dir);
    snprintf(port, sizeof port, "%d", s->port);
    unlink(port_file);
    char cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/cert.pem", s->dir);
    snprintf(key, sizeof key, "%s/key.pem", s->dir);
    const char *argv[20] = {"/usr/bin/python3", script, "--port", port, "--port-file", port_file, "--state", state};
    int n = 8;
    if (user) argv[n++] = "--user", argv[n++] = user, argv[n++] = "--password", argv[n++] = password;
    if (s->tls) argv[n++] = "--cert", argv[n++] = cert, argv[n++] = "--key", argv[n++] = key;
    argv[n] = NULL;
    if ((s->pid = fork()) == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);   /* the test dying (an abort) takes the registry with it */
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok) return 0;
        }
        usleep(25000);
    }
    return -1;
}

static void sr_stop(test_sr *s) {
    if (s->pid <= 0) return;
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
}

static void set(config *c, const char *k, const char *v) { REQUIRE(config_set(c, k, v) == 0, "config_set"); }

static void opts(registry_opts *o, config *c) {
    char err[512];
    REQUIRE(registry_opts_from_config(o, c, SETTINGS_CMD_WORKER, err, sizeof err) == 0, "registry_opts_from_config: %s", err);
}

/* ---- settings ------------------------------------------------------------------------------- */

/* The keys registry_opts_from_config reads, the commands beside the worker that read each (R:
 * consume, produce and train, which all open the registry), and whether it is a secret. */
#define R (SETTINGS_CMD_CONSUME | SETTINGS_CMD_PRODUCE | SETTINGS_CMD_TRAIN)
static const struct {
    const char *key;
    unsigned commands;
    int secret;
} REGISTRY_SETTINGS[] = {
    {"schema.registry.url", R, 0},
    {"basic.auth.user.info", R, 1},
    {"schema.registry.basic.auth.user.info", R, 1},
    {"basic.auth.credentials.source", R, 0},
    {"schema.registry.ssl.ca.location", R, 0},
    {"schema.registry.ssl.certificate.location", R, 0},
    {"schema.registry.ssl.key.location", R, 0},
    {"schema.registry.ssl.key.password", R, 1},
    {"schema.registry.ssl.endpoint.identification.algorithm", R, 0},
    {"schema.registry.ssl.truststore.location", R, 0},
    {"schema.registry.ssl.keystore.location", R, 0},
    {"schema.registry.request.timeout.ms", R, 0},
    {"schema.registry.retries", R, 0},
    {"schema.registry.retry.backoff.ms", R, 0},
    {"schema.registry.retry.backoff.max.ms", R, 0},
    {"auto.register.schemas", SETTINGS_CMD_PRODUCE, 0},
    {"use.latest.version", SETTINGS_CMD_PRODUCE, 0},
    {"value.subject.name.strategy", SETTINGS_CMD_PRODUCE, 0},
    {"schema.registry.unavailable", SETTINGS_CMD_TRAIN, 0},
    {"schema.registry.wait.ms", SETTINGS_CMD_PRODUCE | SETTINGS_CMD_TRAIN, 0},
};
#undef R

static void test_settings_table(void) {
    for (size_t i = 0; i < sizeof REGISTRY_SETTINGS / sizeof REGISTRY_SETTINGS[0]; i++) {
        const char *key = REGISTRY_SETTINGS[i].key;
        const setting *s = settings_find(key);
        REQUIRE(s, "%s is read by the registry client but is not in the settings table: it would go to librdkafka",
                key);
        unsigned want = SETTINGS_CMD_WORKER | REGISTRY_SETTINGS[i].commands;
        CHECK(s->commands == want, "%s: read by commands 0x%x in the table, 0x%x by the code", key, s->commands, want);
        CHECK(s->secret == REGISTRY_SETTINGS[i].secret && settings_is_secret(key) == REGISTRY_SETTINGS[i].secret,
              "%s: secret %d in the table, want %d", key, s->secret, REGISTRY_SETTINGS[i].secret);
        int scoped;
        CHECK(!kafka_prop_for(key, KAFKA_CONSUMER, settings_names(), &scoped) &&
                  !kafka_prop_for(key, KAFKA_PRODUCER, settings_names(), &scoped),
              "%s goes to librdkafka", key);
    }
    /* every registry row of the table is one the client reads */
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const char *key = SETTINGS[i].name;
        int registry = !strncmp(key, "schema.registry.", 16) || !strncmp(key, "basic.auth.", 11), known = 0;
        for (size_t k = 0; k < sizeof REGISTRY_SETTINGS / sizeof REGISTRY_SETTINGS[0]; k++)
            known |= !strcmp(key, REGISTRY_SETTINGS[k].key);
        CHECK(!registry || known, "%s is in the table but the registry client does not read it", key);
    }
    /* credentials in a URL (basic.auth.credentials.source=URL) are never printed */
    CHECK(!strcmp(settings_shown_value("schema.registry.url", "http://a:8081"), "http://a:8081"), "a plain URL shown");
    CHECK(!strstr(settings_shown_value("schema.registry.url", "http://a:8081,https://u:s3cr3t@b/"), "s3cr3t"),
          "a URL's password printed");
}

/* The worker refuses a wait for the registry that outlasts its poll interval, scoped or not. */
static void test_settings_worker(void) {
    config c = {0};
    worker_settings ws;
    char err[512];
    set(&c, "model.path", "/m.safetensors");
    set(&c, "schema.registry.url", "http://a:8081");
    REQUIRE(worker_settings_from_config(&ws, &c, err, sizeof err) == 0, "%s", err);
    CHECK(ws.registry.n_urls == 1 && ws.registry.wait_ms == 60000, "the worker's registry settings");
    set(&c, "max.poll.interval.ms", "60000");
    CHECK(worker_settings_from_config(&ws, &c, err, sizeof err) == -1 && strstr(err, "schema.registry.wait.ms") &&
              strstr(err, "max.poll.interval.ms=60000"), "%s", err);
    set(&c, "consumer.max.poll.interval.ms", "120000");
    REQUIRE(worker_settings_from_config(&ws, &c, err, sizeof err) == 0, "the scoped key wins: %s", err);
    set(&c, "schema.registry.wait.ms", "120000");
    CHECK(worker_settings_from_config(&ws, &c, err, sizeof err) == -1 && strstr(err, "consumer.max.poll.interval.ms"),
          "%s", err);
    set(&c, "schema.registry.wait.ms", "1000");
    set(&c, "output.format", "avro");
    CHECK(worker_settings_from_config(&ws, &c, err, sizeof err) == -1 && strstr(err, "confluent"), "%s", err);
    config_free(&c);
}

static void test_settings(void) {
    test_settings_table();
    test_settings_worker();
    config c = {0};
    registry_opts o;
    char err[512];
    opts(&o, &c);
    CHECK(o.n_urls == 0 && o.auto_register && !o.use_latest && o.strategy == SUBJECT_TOPIC_NAME && o.retries == 3 &&
              o.timeout_ms == 10000 && !o.wait_dead_letter && o.wait_ms == 60000 && o.verify_host,
          "defaults");
    set(&c, "schema.registry.url", "http://a:8081,https://b:8081/ http://c");
    set(&c, "value.subject.name.strategy", "io.confluent.kafka.serializers.subject.RecordNameStrategy");
    set(&c, "schema.registry.unavailable", "dead-letter");
    opts(&o, &c);
    CHECK(o.n_urls == 3 && !strcmp(o.urls[1], "https://b:8081/") && o.strategy == SUBJECT_RECORD_NAME &&
              o.wait_dead_letter,
          "three URLs, record names, dead-letter");
    set(&c, "schema.registry.url", "ftp://a");
    CHECK(registry_opts_from_config(&o, &c, SETTINGS_CMD_WORKER, err, sizeof err) == -1 && strstr(err, "not an http:// or https:// URL"), "%s", err);
    set(&c, "schema.registry.url", "http://a");
    set(&c, "basic.auth.user.info", "s3cr3t-no-colon");
    CHECK(registry_opts_from_config(&o, &c, SETTINGS_CMD_WORKER, err, sizeof err) == -1 && strstr(err, "user:password") &&
              !strstr(err, "s3cr3t"),
          "user info without ':': %s", err);
    set(&c, "basic.auth.user.info", "u:p");
    /* a command reads its own keys only: one it ignores keeps its default */
    set(&c, "auto.register.schemas", "maybe");
    CHECK(registry_opts_from_config(&o, &c, SETTINGS_CMD_CONSUME, err, sizeof err) == 0 && o.auto_register &&
              o.n_urls == 1, "consume: %s", err);
    CHECK(registry_opts_from_config(&o, &c, SETTINGS_CMD_PRODUCE, err, sizeof err) == -1 &&
              strstr(err, "auto.register.schemas"), "produce: %s", err);
    set(&c, "auto.register.schemas", "true");
    set(&c, "schema.registry.unavailable", "maybe");
    CHECK(registry_opts_from_config(&o, &c, SETTINGS_CMD_WORKER, err, sizeof err) == -1 && strstr(err, "schema.registry.unavailable") &&
              strstr(err, "'maybe'"), "%s", err);
    set(&c, "schema.registry.unavailable", "wait");
    set(&c, "schema.registry.ssl.truststore.location", "/x.jks");
    CHECK(registry_opts_from_config(&o, &c, SETTINGS_CMD_WORKER, err, sizeof err) == -1 && strstr(err, "schema.registry.ssl.ca.location"), "%s", err);
    config_free(&c);

    char subject[256];
    const char *iv = ievo_schema_interest_vector_json;
    CHECK(!registry_subject(SUBJECT_TOPIC_NAME, "out", iv, subject, sizeof subject, err, sizeof err) &&
              !strcmp(subject, "out-value"), "%s", subject);
    CHECK(!registry_subject(SUBJECT_RECORD_NAME, "out", iv, subject, sizeof subject, err, sizeof err) &&
              !strcmp(subject, "ievo.v1.InterestVector"), "%s", subject);
    CHECK(!registry_subject(SUBJECT_TOPIC_RECORD_NAME, "out", iv, subject, sizeof subject, err, sizeof err) &&
              !strcmp(subject, "out-ievo.v1.InterestVector"), "%s", subject);
}

/* ---- the client ------------------------------------------------------------------------------ */

static void client_opts(registry_opts *o, config *c, const char *urls) {
    config_free(c);
    set(c, "schema.registry.url", urls);
    set(c, "schema.registry.retries", "1");
    set(c, "schema.registry.retry.backoff.ms", "10");
    set(c, "schema.registry.request.timeout.ms", "2000");
    opts(o, c);
}

static void test_client(test_sr *sr) {
    config c = {0};
    registry_opts o;
    char urls[256], err[1024];
    snprintf(urls, sizeof urls, "http://127.0.0.1:1,http://user:pw@127.0.0.1:%d", sr->port);
    client_opts(&o, &c, urls);
    registry *r;
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);
    int32_t id, id2;
    int version;
    int64_t req, hits;
    const char *schema;
    CHECK(registry_register(r, "ua-value", ievo_schema_user_action_json, &id, err, sizeof err) == REGISTRY_OK, "%s", err);
    registry_counts(r, &req, &hits);
    CHECK(req == 2, "register past a dead URL: %lld requests", (long long)req);
    CHECK(registry_register(r, "ua-value", ievo_schema_user_action_json, &id2, err, sizeof err) == REGISTRY_OK &&
              id2 == id, "registered again");
    CHECK(registry_schema_by_id(r, id, &schema, err, sizeof err) == REGISTRY_OK && !strcmp(schema, ievo_schema_user_action_json),
          "by id: %s", err);
    registry_counts(r, &req, &hits);
    CHECK(req == 2 && hits == 2, "cached answers: %lld requests, %lld hits", (long long)req, (long long)hits);
    CHECK(registry_lookup(r, "ua-value", ievo_schema_user_action_json, &id2, &version, err, sizeof err) == REGISTRY_OK &&
              id2 == id && version == 1, "lookup: %s", err);
    CHECK(registry_latest(r, "ua-value", &id2, &version, &schema, err, sizeof err) == REGISTRY_OK && id2 == id && version == 1,
          "latest: %s", err);
    registry_counts(r, &req, &hits);
    CHECK(req == 4, "the live URL first now: %lld requests", (long long)req);
    CHECK(registry_schema_by_id(r, 999, &schema, err, sizeof err) == REGISTRY_NOT_FOUND && strstr(err, "40403") &&
              strstr(err, "schema id 999"), "unknown id: %s", err);
    CHECK(registry_lookup(r, "nope-value", ievo_schema_user_action_json, &id2, &version, err, sizeof err) ==
              REGISTRY_NOT_FOUND && strstr(err, "40401"), "unknown subject: %s", err);
    CHECK(!strstr(err, "user:pw") && !strstr(err, ":pw@"), "a URL's credentials shown: %s", err);

    /* the registry down: a new id is unavailable, a cached one is still answered */
    sr_stop(sr);
    double t0 = clock_mono_s();
    CHECK(registry_schema_by_id(r, 2, &schema, err, sizeof err) == REGISTRY_UNAVAILABLE &&
              strstr(err, "failed at every URL (2 attempts)"), "down: %s", err);
    CHECK(clock_mono_s() - t0 < 2.0, "down took %.2f s", clock_mono_s() - t0);
    CHECK(!strstr(err, ":pw@"), "a URL's credentials shown: %s", err);
    CHECK(registry_schema_by_id(r, id, &schema, err, sizeof err) == REGISTRY_OK, "cached while down: %s", err);
    registry_free(r);
    REQUIRE(sr_start(sr, NULL, NULL) == 0, "registry restart");
    config_free(&c);
}

static void test_auth(test_sr *sr) {
    sr_stop(sr);
    REQUIRE(sr_start(sr, "alice", "right-password") == 0, "registry with auth");
    config c = {0};
    registry_opts o;
    char urls[128], err[1024];
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d", sr->port);
    client_opts(&o, &c, urls);
    set(&c, "basic.auth.user.info", "alice:wrong-password");
    opts(&o, &c);
    registry *r;
    const char *schema;
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);
    CHECK(registry_schema_by_id(r, 1, &schema, err, sizeof err) == REGISTRY_REFUSED &&
              strstr(err, "refused the credentials (HTTP 401") && strstr(err, "basic.auth.user.info"),
          "wrong credentials: %s", err);
    CHECK(!strstr(err, "wrong-password") && !strstr(err, "alice"), "the credentials shown: %s", err);
    registry_free(r);
    set(&c, "basic.auth.user.info", "alice:right-password");
    opts(&o, &c);
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);
    CHECK(registry_schema_by_id(r, 1, &schema, err, sizeof err) == REGISTRY_OK, "right credentials: %s", err);
    registry_free(r);
    config_free(&c);
    sr_stop(sr);
    REQUIRE(sr_start(sr, NULL, NULL) == 0, "registry restart");
}

static void test_tls(test_sr *sr) {
    char cmd[1024], urls[128], err[1024], ca[300];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1", sr->dir, sr->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "[registry] openssl cannot make a certificate: TLS not tested\n");
        return;
    }
    test_sr tls = *sr;
    tls.port = 0, tls.tls = 1;
    REQUIRE(sr_start(&tls, NULL, NULL) == 0, "TLS registry");
    config c = {0};
    registry_opts o;
    registry *r;
    const char *schema;
    snprintf(urls, sizeof urls, "https://127.0.0.1:%d", tls.port);
    client_opts(&o, &c, urls);
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);
    CHECK(registry_schema_by_id(r, 1, &schema, err, sizeof err) == REGISTRY_UNAVAILABLE && strstr(err, "certificate"),
          "TLS without the CA: %s", err);
    registry_free(r);
    snprintf(ca, sizeof ca, "%s/cert.pem", sr->dir);
    set(&c, "schema.registry.ssl.ca.location", ca);
    opts(&o, &c);
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);
    CHECK(registry_schema_by_id(r, 1, &schema, err, sizeof err) == REGISTRY_OK, "TLS with the CA: %s", err);
    registry_free(r);
    config_free(&c);
    sr_stop(&tls);
}

/* ---- serde ---------------------------------------------------------------------------------- */

/* A framed UserAction (u1, i7, view, ts, value 4, text "hi") with tail bytes after it. */
static size_t framed(uint8_t *b, int32_t id, const uint8_t *tail, size_t tail_len) {
    static const uint8_t body[] = {4, 'u', '1', 4, 'i', '7', 8, 'v', 'i', 'e', 'w', 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62,
                                   2, 0, 0, 0x80, 0x40, 2, 4, 'h', 'i'};
    codec_put_confluent_header(b, id);
    memcpy(b + 5, body, sizeof body);
    if (tail_len) memcpy(b + 5 + sizeof body, tail, tail_len);
    return 5 + sizeof body + tail_len;
}

static const char V2[] = "{\"type\":\"record\",\"name\":\"UserAction\",\"namespace\":\"ievo.v1\",\"fields\":["
                         "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"item_id\",\"type\":\"string\"},"
                         "{\"name\":\"action\",\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"long\"},"
                         "{\"name\":\"value\",\"type\":[\"null\",\"float\"],\"default\":null},"
                         "{\"name\":\"text\",\"type\":[\"null\",\"string\"],\"default\":null},"
                         "{\"name\":\"session\",\"type\":[\"null\",\"string\"],\"default\":null}]}";
static const char BAD[] = "{\"type\":\"record\",\"name\":\"UserAction\",\"fields\":["
                          "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"item_id\",\"type\":\"string\"},"
                          "{\"name\":\"action\",\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"string\"}]}";

static void test_serde(test_sr *sr) {
    config c = {0};
    registry_opts o;
    char urls[128], err[1024], reason[1024];
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d", sr->port);
    client_opts(&o, &c, urls);
    set(&c, "schema.registry.wait.ms", "300");
    opts(&o, &c);
    registry *r;
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);
    int32_t v1, v2, bad;
    REQUIRE(registry_register(r, "ua-value", ievo_schema_user_action_json, &v1, err, sizeof err) == REGISTRY_OK &&
                registry_register(r, "ua-value", V2, &v2, err, sizeof err) == REGISTRY_OK &&
                registry_register(r, "ua-value", BAD, &bad, err, sizeof err) == REGISTRY_OK,
            "register the writers: %s", err);
    registry_free(r);
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);   /* a fresh client: nothing cached */

    serde_in_opts so = {r, &o, {WIRE_CONFLUENT, 0, 0}, SERDE_USER_ACTION, NULL};
    serde_in *in;
    REQUIRE(serde_in_new(&so, &in, err, sizeof err) == 0, "%s", err);
    uint8_t buf[128];
    user_action ua;
    static const uint8_t session[] = {2, 6, 's', '-', '9'};
    size_t n = framed(buf, v1, NULL, 0);
    CHECK(serde_decode_user_action(in, buf, n, &ua, reason, sizeof reason) == CODEC_OK && ua.ts == 1700000000000LL &&
              ua.value == 4.0f && ua.text_len == 2, "v1: %s", reason);
    n = framed(buf, v2, session, sizeof session);
    for (int i = 0; i < 3; i++)
        CHECK(serde_decode_user_action(in, buf, n, &ua, reason, sizeof reason) == CODEC_OK && ua.text_len == 2, "v2: %s", reason);
    n = framed(buf, bad, NULL, 0);
    for (int i = 0; i < 2; i++) {
        codec_status st = serde_decode_user_action(in, buf, n, &ua, reason, sizeof reason);
        CHECK(st == CODEC_E_SCHEMA && strstr(reason, "cannot be read as ievo.v1.UserAction: field ts"), "incompatible: %s", reason);
    }
    n = framed(buf, 4242, NULL, 0);
    CHECK(serde_decode_user_action(in, buf, n, &ua, reason, sizeof reason) == CODEC_E_SCHEMA_ID && strstr(reason, "40403"),
          "unknown id: %s", reason);
    int64_t req, hits;
    registry_counts(r, &req, &hits);
    CHECK(req == 4, "one request per id, none per record: %lld", (long long)req);
    serde_in_stats st;
    serde_in_stats_get(in, &st);
    CHECK(st.ids == 4 && st.same == 1 && st.resolved == 1 && st.incompatible == 1 && st.unknown == 1, "stats");

    /* the registry down: cached ids flow; a new id waits (bounded) or is dead-lettered at once */
    sr_stop(sr);
    n = framed(buf, v2, session, sizeof session);
    CHECK(serde_decode_user_action(in, buf, n, &ua, reason, sizeof reason) == CODEC_OK, "cached while down: %s", reason);
    n = framed(buf, v2 + 100, NULL, 0);
    double t0 = clock_mono_s();
    codec_status s1 = serde_decode_user_action(in, buf, n, &ua, reason, sizeof reason);
    double waited = clock_mono_s() - t0;
    CHECK(s1 == CODEC_E_REGISTRY && serde_in_waits(in) && strstr(reason, "registry: schema id"), "wait: %s", reason);
    CHECK(waited >= 0.29 && waited < 3.0, "waited %.2f s for schema.registry.wait.ms=300", waited);
    serde_in_free(in);

    set(&c, "schema.registry.unavailable", "dead-letter");
    opts(&o, &c);
    REQUIRE(serde_in_new(&so, &in, err, sizeof err) == 0, "%s", err);
    registry_counts(r, &req, &hits);
    CHECK(serde_decode_user_action(in, buf, n, &ua, reason, sizeof reason) == CODEC_E_REGISTRY && !serde_in_waits(in),
          "dead-letter: %s", reason);
    int64_t req2;
    registry_counts(r, &req2, &hits);
    for (int i = 0; i < 50; i++) serde_decode_user_action(in, buf, n, &ua, reason, sizeof reason);
    int64_t req3;
    registry_counts(r, &req3, &hits);
    CHECK(req3 == req2, "dead-lettering while down asked the registry %lld more times", (long long)(req3 - req2));
    serde_in_free(in);
    REQUIRE(sr_start(sr, NULL, NULL) == 0, "registry restart");

    /* the output's id */
    int32_t out;
    set(&c, "schema.registry.unavailable", "wait");
    opts(&o, &c);
    CHECK(serde_out_id(r, &o, "iv", ievo_schema_interest_vector_json, NULL, &out, err, sizeof err) == 0, "register: %s", err);
    set(&c, "auto.register.schemas", "false");
    opts(&o, &c);
    int32_t out2;
    CHECK(serde_out_id(r, &o, "iv", ievo_schema_interest_vector_json, NULL, &out2, err, sizeof err) == 0 && out2 == out,
          "lookup: %s", err);
    CHECK(serde_out_id(r, &o, "other", ievo_schema_interest_vector_json, NULL, &out2, err, sizeof err) == -1 &&
              strstr(err, "auto.register.schemas=false") && strstr(err, "other-value"),
          "lookup of an unregistered subject: %s", err);
    set(&c, "use.latest.version", "true");
    opts(&o, &c);
    CHECK(serde_out_id(r, &o, "iv", ievo_schema_interest_vector_json, NULL, &out2, err, sizeof err) == 0 && out2 == out,
          "latest: %s", err);
    CHECK(serde_out_id(r, &o, "ua", ievo_schema_interest_vector_json, NULL, &out2, err, sizeof err) == -1 &&
              strstr(err, "use.latest.version"), "latest is another schema: %s", err);
    registry_free(r);
    config_free(&c);
}

/* The catalogue's Item through the registry: a newer writer (a language appended) reads, one
 * without ts does not. */
static void test_serde_items(test_sr *sr) {
    static const char NEWER[] = "{\"type\":\"record\",\"name\":\"Item\",\"namespace\":\"ievo.v1\",\"fields\":["
                                "{\"name\":\"item_id\",\"type\":\"string\"},{\"name\":\"text\",\"type\":\"string\"},"
                                "{\"name\":\"ts\",\"type\":\"long\"},"
                                "{\"name\":\"lang\",\"type\":[\"null\",\"string\"],\"default\":null}]}";
    static const char NO_TS[] = "{\"type\":\"record\",\"name\":\"Item\",\"fields\":["
                                "{\"name\":\"item_id\",\"type\":\"string\"},{\"name\":\"text\",\"type\":\"string\"}]}";
    config c = {0};
    registry_opts o;
    registry *r;
    char urls[128], err[1024], reason[1024];
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d", sr->port);
    client_opts(&o, &c, urls);
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);
    int32_t newer, no_ts;
    REQUIRE(registry_register(r, "items-value", NEWER, &newer, err, sizeof err) == REGISTRY_OK &&
                registry_register(r, "items-value", NO_TS, &no_ts, err, sizeof err) == REGISTRY_OK,
            "%s", err);
    serde_in_opts so = {r, &o, {WIRE_CONFLUENT, 0, 0}, SERDE_ITEM, NULL};
    serde_in *in;
    REQUIRE(serde_in_new(&so, &in, err, sizeof err) == 0, "%s", err);
    /* i7, "red shoes", ts 1700000000000, lang "en" */
    static const uint8_t body[] = {4, 'i', '7', 18, 'r', 'e', 'd', ' ', 's', 'h', 'o', 'e', 's', 0x80, 0xa0, 0xab, 0xfe,
                                   0xf9, 0x62, 2, 4, 'e', 'n'};
    uint8_t rec[64];
    codec_put_confluent_header(rec, newer);
    memcpy(rec + 5, body, sizeof body);
    item_record it;
    CHECK(serde_decode_item(in, rec, 5 + sizeof body, &it, reason, sizeof reason) == CODEC_OK && it.item_id_len == 2 &&
              it.text_len == 9 && !memcmp(it.text, "red shoes", 9) && it.ts == 1700000000000LL,
          "newer Item: %s", reason);
    codec_put_confluent_header(rec, no_ts);
    CHECK(serde_decode_item(in, rec, 5 + 13, &it, reason, sizeof reason) == CODEC_E_SCHEMA &&
              strstr(reason, "cannot be read as ievo.v1.Item: field ts"), "Item without ts: %s", reason);
    serde_in_free(in);
    registry_free(r);
    config_free(&c);
}

/* ---- cost ------------------------------------------------------------------------------------- */

static double bench_ns(serde_in *in, const uint8_t *rec, size_t len) {
    user_action ua;
    char reason[256];
    double best = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        const int n = 2000000;
        double t0 = clock_mono_s();
        for (int i = 0; i < n; i++) {
            if (serde_decode_user_action(in, rec, len, &ua, reason, sizeof reason)) return -1;
            __asm__ volatile("" : : "r"(&ua) : "memory");
        }
        double ns = (clock_mono_s() - t0) * 1e9 / n;
        if (ns < best) best = ns;
    }
    return best;
}

static void bench(test_sr *sr) {
    static const char OLDER[] = "{\"type\":\"record\",\"name\":\"UserAction\",\"fields\":["
                                "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"item_id\",\"type\":\"string\"},"
                                "{\"name\":\"action\",\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"long\"},"
                                "{\"name\":\"value\",\"type\":[\"null\",\"float\"],\"default\":null}]}";
    static const char PROMOTED[] = "{\"type\":\"record\",\"name\":\"UserAction\",\"fields\":["
                                   "{\"name\":\"user_id\",\"type\":\"string\"},{\"name\":\"item_id\",\"type\":\"string\"},"
                                   "{\"name\":\"action\",\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"long\"},"
                                   "{\"name\":\"value\",\"type\":[\"null\",\"int\"],\"default\":null},"
                                   "{\"name\":\"text\",\"type\":[\"null\",\"string\"],\"default\":null},"
                                   "{\"name\":\"session\",\"type\":[\"null\",\"string\"],\"default\":null}]}";
    config c = {0};
    registry_opts o;
    registry *r;
    char urls[128], err[1024];
    snprintf(urls, sizeof urls, "http://127.0.0.1:%d", sr->port);
    client_opts(&o, &c, urls);
    REQUIRE(registry_new(&o, &r, err, sizeof err) == 0, "%s", err);
    int32_t v1, v2, older, promoted;
    REQUIRE(registry_register(r, "bench-value", ievo_schema_user_action_json, &v1, err, sizeof err) == REGISTRY_OK &&
                registry_register(r, "bench-value", V2, &v2, err, sizeof err) == REGISTRY_OK &&
                registry_register(r, "bench-value", OLDER, &older, err, sizeof err) == REGISTRY_OK &&
                registry_register(r, "bench-value", PROMOTED, &promoted, err, sizeof err) == REGISTRY_OK,
            "%s", err);
    uint8_t cur[64], newer[64], old[64], prom[64];
    static const uint8_t session[] = {2, 6, 's', '-', '9'};
    size_t n_cur = framed(cur, v1, NULL, 0), n_new = framed(newer, v2, session, sizeof session);
    size_t n_old = framed(old, older, NULL, 0) - 4;   /* the same record less its text (branch, length, "hi") */
    /* value as the int 4 (zig-zag 8) instead of the float, then the session */
    static const uint8_t pbody[] = {4, 'u', '1', 4, 'i', '7', 8, 'v', 'i', 'e', 'w', 0x80, 0xa0, 0xab, 0xfe, 0xf9, 0x62,
                                    2, 8, 2, 4, 'h', 'i', 2, 6, 's', '-', '9'};
    codec_put_confluent_header(prom, promoted);
    memcpy(prom + 5, pbody, sizeof pbody);
    size_t n_prom = 5 + sizeof pbody;

    serde_in_opts fixed_o = {NULL, &o, {WIRE_CONFLUENT, v1, 0}, SERDE_USER_ACTION, NULL};
    serde_in_opts reg_o = {r, &o, {WIRE_CONFLUENT, 0, 0}, SERDE_USER_ACTION, NULL};
    serde_in *fixed, *viareg;
    REQUIRE(!serde_in_new(&fixed_o, &fixed, err, sizeof err) && !serde_in_new(&reg_o, &viareg, err, sizeof err), "%s", err);
    user_action ua;
    char reason[256];
    REQUIRE(serde_decode_user_action(viareg, old, n_old, &ua, reason, sizeof reason) == CODEC_OK && !ua.has_text &&
                serde_decode_user_action(viareg, prom, n_prom, &ua, reason, sizeof reason) == CODEC_OK && ua.value == 4.0f,
            "bench records: %s", reason);
    struct utsname u;
    uname(&u);
    fprintf(stderr,
            "[registry] decode cost per event on the worker's path (header, schema id, decode, validation; %s, one "
            "core, best of 3 x 2M):\n"
            "  fixed id, no registry (today)                          %6.1f ns  (%zu bytes)\n"
            "  registry id, the current schema (hand decoder)         %6.1f ns\n"
            "  registry id, newer writer: + session (hand + skip)     %6.1f ns  (%zu bytes)\n"
            "  registry id, older writer: no text (resolved)          %6.1f ns  (%zu bytes)\n"
            "  registry id, newer writer: int value, + session (resolved) %6.1f ns  (%zu bytes)\n",
            u.machine, bench_ns(fixed, cur, n_cur), n_cur, bench_ns(viareg, cur, n_cur), bench_ns(viareg, newer, n_new),
            n_new, bench_ns(viareg, old, n_old), n_old, bench_ns(viareg, prom, n_prom), n_prom);
    serde_in_free(fixed);
    serde_in_free(viareg);
    registry_free(r);
    config_free(&c);
}

int main(void) {
    test_settings();
    test_sr sr = {0};
    snprintf(sr.dir, sizeof sr.dir, "/tmp/ievo-test-registry-%d", (int)getpid());
    if (access("/usr/bin/python3", X_OK) != 0 || mkdir(sr.dir, 0700) != 0) {
        fprintf(stderr, "[registry] no python3 or no scratch dir: client tests skipped\n");
        return check_exit("test_registry");
    }
    REQUIRE(sr_start(&sr, NULL, NULL) == 0, "the test registry did not start (tests/integration/schema_registry.py)");
    test_client(&sr);
    test_auth(&sr);
    test_serde(&sr);
    test_serde_items(&sr);
    test_tls(&sr);
    if (!getenv("IEVO_TEST_NO_BENCH")) bench(&sr);
    sr_stop(&sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", sr.dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", sr.dir);
    return check_exit("test_registry");
}
