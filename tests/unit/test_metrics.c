/* test_metrics: the metrics server's exposition and endpoints.
 *
 *   1. metrics_render of a known snapshot is valid Prometheus text format 0.0.4 by a strict
 *      line parser (HELP/TYPE before samples, one TYPE per family, metric and label names,
 *      values that parse, no duplicate series, histograms cumulative with increasing le ending
 *      at +Inf and _count equal to it, _sum present), and carries the snapshot's values.
 *   2. The HTTP server (libmicrohttpd) on 127.0.0.1:0: /metrics, /healthz (fresh vs stale
 *      publish), /readyz (ready, restoring, unassigned), 404, 405, HEAD, garbage, and no descriptor
 *      leaked over many requests; and each limit metrics.c sets, through the daemon option that
 *      enforces it: a request over the memory limit (9 KiB) is refused and one of 6 KiB is not, one
 *      address's idle connections beyond the per-address limit are refused while another
 *      address's probe gets through at once, at the connection limit a new address's request
 *      waits until connections close, and an idle connection is closed after the timeout. (Loopback: a client
 *      binds 127.0.0.N to be another address.)
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "codec.h"
#include "metrics.h"

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- a strict exposition-format checker --------------------------------------------------- */

#define MAX_SERIES 4096
#define MAX_FAMILIES 256

typedef struct {
    char series[MAX_SERIES][400];
    double values[MAX_SERIES];
    int n_series;
    char fam[MAX_FAMILIES][128];
    char fam_type[MAX_FAMILIES][16];
    int n_fam;
} expo;

static int is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
static int is_name_char(char c) {
    return is_name_start(c) || (c >= '0' && c <= '9');
}

static int parse_value(const char *s, double *v) {
    if (!strcmp(s, "+Inf")) return *v = 1e308 * 10, 0;
    if (!strcmp(s, "-Inf")) return *v = -1e308 * 10, 0;
    if (!strcmp(s, "NaN")) return *v = 0, 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return (end == s || *end || errno) ? -1 : 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Parses the whole text; every violation is a failed CHECK. Histograms are checked per family. */
static void expo_parse(expo *e, const char *text, size_t len) {
    memset(e, 0, sizeof *e);
    CHECK(len > 0 && text[len - 1] == '\n', "the exposition ends with a newline");
    CHECK(strlen(text) == len, "no NUL inside the exposition");
    const char *cur_fam = NULL, *cur_type = NULL;
    /* Histogram state of the current family. */
    double last_le = -1e308, last_bucket = -1, inf_bucket = -1;
    int saw_sum = 0, saw_count = 0, saw_inf = 0;
    double count_v = -1;
#define END_HIST()                                                                                          \
    do {                                                                                                    \
        if (cur_type && !strcmp(cur_type, "histogram")) {                                                   \
            CHECK(saw_inf, "%s: histogram without an le=\"+Inf\" bucket", cur_fam);                          \
            CHECK(saw_sum && saw_count, "%s: histogram without _sum/_count", cur_fam);                        \
            CHECK(count_v == inf_bucket, "%s: _count %g != +Inf bucket %g", cur_fam, count_v, inf_bucket);  \
        }                                                                                                   \
    } while (0)

    const char *p = text, *end = text + len;
    int lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        char line[512];
        size_t ll = (size_t)(nl - p);
        lineno++;
        CHECK(ll < sizeof line, "line %d too long", lineno);
        if (ll >= sizeof line) ll = sizeof line - 1;
        memcpy(line, p, ll);
        line[ll] = 0;
        p = nl + 1;
        CHECK(ll > 0, "line %d is empty", lineno);
        if (!ll) continue;
        if (line[0] == '#') {
            char kw[16], name[128], rest[256];
            int k = sscanf(line, "# %15s %127s %255[^\n]", kw, name, rest);
            CHECK(k == 3, "line %d: a comment that is neither HELP nor TYPE: %s", lineno, line);
            if (!strcmp(kw, "TYPE")) {
                CHECK(!strcmp(rest, "counter") || !strcmp(rest, "gauge") || !strcmp(rest, "histogram") ||
                          !strcmp(rest, "summary") || !strcmp(rest, "untyped"),
                      "line %d: type %s", lineno, rest);
                for (int i = 0; i < e->n_fam; i++) CHECK(strcmp(e->fam[i], name), "family %s TYPE'd twice", name);
                END_HIST();
                REQUIRE(e->n_fam < MAX_FAMILIES, "too many families");
                snprintf(e->fam[e->n_fam], sizeof e->fam[0], "%s", name);
                snprintf(e->fam_type[e->n_fam], sizeof e->fam_type[0], "%.15s", rest);
                cur_fam = e->fam[e->n_fam];
                cur_type = e->fam_type[e->n_fam];
                e->n_fam++;
                last_le = -1e308;
                last_bucket = -1;
                inf_bucket = -1;
                saw_sum = saw_count = saw_inf = 0;
                count_v = -1;
                if (!strcmp(rest, "counter")) CHECK(ends_with(name, "_total"), "counter %s does not end in _total", name);
            } else {
                CHECK(!strcmp(kw, "HELP"), "line %d: unknown comment keyword %s", lineno, kw);
            }
            continue;
        }
        /* A sample: name[{labels}] value */
        char name[128];
        size_t i = 0;
        CHECK(is_name_start(line[0]), "line %d: bad metric name start: %s", lineno, line);
        while (i < ll && is_name_char(line[i]) && i < sizeof name - 1) name[i] = line[i], i++;
        name[i] = 0;
        char labels[256] = "";
        double le = 0;
        int has_le = 0;
        if (line[i] == '{') {
            size_t j = i + 1;
            size_t close = j;
            while (close < ll && line[close] != '}') close++;
            CHECK(close < ll, "line %d: unterminated labels", lineno);
            snprintf(labels, sizeof labels, "%.*s", (int)(close - i + 1), line + i);
            /* label pairs: name="value"[,...] */
            while (j < close) {
                size_t ns = j;
                CHECK(is_name_start(line[j]), "line %d: bad label name", lineno);
                while (j < close && is_name_char(line[j])) j++;
                char lname[64];
                snprintf(lname, sizeof lname, "%.*s", (int)(j - ns), line + ns);
                CHECK(j + 1 < close && line[j] == '=' && line[j + 1] == '"', "line %d: label %s without =\"", lineno,
                      lname);
                j += 2;
                size_t vs = j;
                while (j < close && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
                CHECK(j < close, "line %d: unterminated label value", lineno);
                char lval[64];
                snprintf(lval, sizeof lval, "%.*s", (int)(j - vs), line + vs);
                if (!strcmp(lname, "le")) {
                    has_le = 1;
                    CHECK(parse_value(lval, &le) == 0, "line %d: le=%s", lineno, lval);
                }
                j++;
                if (j < close) {
                    CHECK(line[j] == ',', "line %d: labels not comma-separated", lineno);
                    j++;
                }
            }
            i = close + 1;
        }
        CHECK(line[i] == ' ', "line %d: no space before the value: %s", lineno, line);
        double v;
        CHECK(parse_value(line + i + 1, &v) == 0, "line %d: value '%s'", lineno, line + i + 1);
        CHECK(!strchr(line + i + 1, ' '), "line %d: timestamps are not expected", lineno);
        if (!cur_fam) {
            CHECK(0, "line %d: a sample before any TYPE", lineno);
            continue;
        }
        /* The sample belongs to the current family. */
        if (!strcmp(cur_type, "histogram")) {
            char b[140];
            if (snprintf(b, sizeof b, "%s_bucket", cur_fam) > 0 && !strcmp(name, b)) {
                CHECK(has_le, "line %d: bucket without le", lineno);
                CHECK(le > last_le, "line %d: le not increasing", lineno);
                CHECK(v >= last_bucket, "line %d: %s buckets not cumulative (%g after %g)", lineno, cur_fam, v,
                      last_bucket);
                last_le = le;
                last_bucket = v;
                if (!strcmp(strstr(labels, "le=\"") + 4, "+Inf\"}")) saw_inf = 1, inf_bucket = v;
            } else if (snprintf(b, sizeof b, "%s_sum", cur_fam) > 0 && !strcmp(name, b)) {
                CHECK(saw_inf, "line %d: _sum before the +Inf bucket", lineno);
                saw_sum = 1;
            } else if (snprintf(b, sizeof b, "%s_count", cur_fam) > 0 && !strcmp(name, b)) {
                saw_count = 1;
                count_v = v;
            } else {
                CHECK(0, "line %d: %s in histogram family %s", lineno, name, cur_fam);
            }
        } else {
            CHECK(!strcmp(name, cur_fam), "line %d: sample %s under TYPE %s", lineno, name, cur_fam);
            CHECK(!has_le, "line %d: le outside a histogram", lineno);
        }
        char key[400];
        snprintf(key, sizeof key, "%s%s", name, labels);
        for (int s = 0; s < e->n_series; s++) CHECK(strcmp(e->series[s], key), "duplicate series %s", key);
        REQUIRE(e->n_series < MAX_SERIES, "too many series");
        snprintf(e->series[e->n_series], sizeof e->series[0], "%s", key);
        e->values[e->n_series++] = v;
    }
    END_HIST();
#undef END_HIST
}

/* The value of one series ("name{labels}" exactly as rendered); -12345 when absent. */
static double expo_get(const expo *e, const char *key) {
    for (int i = 0; i < e->n_series; i++)
        if (!strcmp(e->series[i], key)) return e->values[i];
    return -12345;
}

static int expo_has_family(const expo *e, const char *name, const char *type) {
    for (int i = 0; i < e->n_fam; i++)
        if (!strcmp(e->fam[i], name)) return !strcmp(e->fam_type[i], type);
    return 0;
}

/* ---- a known snapshot --------------------------------------------------------------------- */

static metrics_snapshot *make_snapshot(void) {
    metrics_snapshot *s = calloc(1, sizeof *s);
    REQUIRE(s, "oom");
    worker_stats *st = &s->stats;
    st->consumed = 1000;
    st->applied = 990;
    st->dead_lettered = 7;
    st->dlq_by_class[CODEC_E_AVRO] = 3;
    st->dlq_by_class[CODEC_E_INVALID] = 4;
    st->skipped_duplicate = 11;
    st->rebalances = 2;
    st->checkpoints = 5;
    st->changelog_records = 321;
    st->offset_gaps = 1;
    st->cache_hits = 40, st->cache_misses = 60, st->cache_evictions = 2;
    st->restored_partitions = 1, st->restored_records = 77, st->restore_s = 0.5;
    for (int k = 0; k < STAGE_N; k++) st->stage_s[k] = 0.25 * (k + 1);
    /* latencies: 100 at 0 ms, 50 at 3 ms, 20 at 40 ms, 5 at 1500 ms, 2 at >= 10 s */
    st->latency_ms[0] = 100, st->latency_ms[3] = 50, st->latency_ms[40] = 20, st->latency_ms[1500] = 5;
    st->latency_ms[LATENCY_BUCKETS - 1] = 2;
    st->latency_count = 177;
    st->batch_size_hist[0] = 3, st->batch_size_hist[5] = 10, st->batch_size_hist[BATCH_SIZE_BUCKETS - 1] = 1;
    st->step_us_hist[2] = 8, st->step_us_hist[STEP_US_BUCKETS - 1] = 1;
    st->step_us_sum = 8 * 40.0 + 90000.0;
    s->ready = 1;
    s->restore_records_done = 77;
    s->state_memory_bytes = 123456789;
    s->cache_entries = 500, s->cache_capacity = 1000, s->cache_dirty = 12;
    s->n_partitions = 3;
    s->partitions[0] = (metrics_partition){.partition = 0, .owned = 1, .next_offset = 10, .lag = 5};
    s->partitions[1] = (metrics_partition){.partition = 3, .owned = 1, .next_offset = 20, .lag = -1};
    s->partitions[2] = (metrics_partition){.partition = 7, .owned = 0, .next_offset = 30, .lag = 9};
    s->published_at = mono();
    return s;
}

static void test_render(void) {
    metrics_snapshot *s = make_snapshot();
    size_t len = 0;
    char *text = metrics_render(s, &len);
    REQUIRE(text && len > 0, "metrics_render returned nothing");
    static expo e;
    expo_parse(&e, text, len);

    CHECK(expo_get(&e, "ievo_events_consumed_total") == 1000, "consumed");
    CHECK(expo_get(&e, "ievo_events_applied_total") == 990, "applied");
    CHECK(expo_get(&e, "ievo_events_dead_lettered_total{class=\"avro\"}") == 3, "dlq avro");
    CHECK(expo_get(&e, "ievo_events_dead_lettered_total{class=\"invalid\"}") == 4, "dlq invalid");
    CHECK(expo_get(&e, "ievo_events_dead_lettered_total{class=\"framing\"}") == 0, "dlq classes present at 0");
    CHECK(expo_get(&e, "ievo_duplicates_skipped_total") == 11, "dups");
    CHECK(expo_get(&e, "ievo_rebalances_total") == 2, "rebalances");
    CHECK(expo_get(&e, "ievo_checkpoints_total") == 5, "checkpoints");
    CHECK(expo_get(&e, "ievo_changelog_records_total") == 321, "changelog");
    CHECK(expo_get(&e, "ievo_offset_gaps_total") == 1, "gaps");
    CHECK(expo_get(&e, "ievo_cache_hits_total") == 40 && expo_get(&e, "ievo_cache_misses_total") == 60 &&
              expo_get(&e, "ievo_cache_evictions_total") == 2,
          "cache counters");
    CHECK(expo_get(&e, "ievo_restore_records_total") == 77, "restore records");
    CHECK(expo_get(&e, "ievo_stage_seconds_total{stage=\"model\"}") == 0.25 * (STAGE_MODEL + 1), "stage model");
    CHECK(expo_get(&e, "ievo_consumer_lag{partition=\"0\"}") == 5, "lag p0");
    CHECK(expo_get(&e, "ievo_consumer_lag{partition=\"3\"}") == -12345, "unknown lag is not exported");
    CHECK(expo_get(&e, "ievo_consumer_lag{partition=\"7\"}") == -12345, "lag of an unowned partition is not exported");
    CHECK(expo_get(&e, "ievo_partition_next_offset{partition=\"3\"}") == 20, "next offset p3");
    CHECK(expo_get(&e, "ievo_partitions_assigned") == 2, "assigned");
    CHECK(expo_get(&e, "ievo_ready") == 1 && expo_get(&e, "ievo_restoring") == 0, "ready/restoring");
    CHECK(expo_get(&e, "ievo_state_memory_bytes") == 123456789, "state memory");
    CHECK(expo_get(&e, "ievo_cache_entries") == 500, "cache entries");
    CHECK(expo_get(&e, "process_resident_memory_bytes") > 1e5, "RSS from /proc/self/status");
    CHECK(expo_has_family(&e, "ievo_consumer_lag", "gauge"), "lag is a gauge");
    CHECK(expo_has_family(&e, "ievo_batch_size_records", "histogram") &&
              expo_has_family(&e, "ievo_model_step_seconds", "histogram") &&
              expo_has_family(&e, "ievo_event_to_output_latency_seconds", "histogram"),
          "the three histograms");
    /* Latency: le=0.001 holds the 0 ms bucket; le=0.005 adds 3 ms; 0.05 adds 40 ms; 2.5 adds 1.5 s;
     * the >= 10 s bucket only in +Inf. */
    CHECK(expo_get(&e, "ievo_event_to_output_latency_seconds_bucket{le=\"0.001\"}") == 100, "lat le 1ms");
    CHECK(expo_get(&e, "ievo_event_to_output_latency_seconds_bucket{le=\"0.002\"}") == 100, "lat le 2ms");
    CHECK(expo_get(&e, "ievo_event_to_output_latency_seconds_bucket{le=\"0.005\"}") == 150, "lat le 5ms");
    CHECK(expo_get(&e, "ievo_model_step_seconds_bucket{le=\"1e-05\"}") == 0, "step bounds printed short");
    CHECK(expo_get(&e, "ievo_event_to_output_latency_seconds_bucket{le=\"10\"}") == 175, "lat le 10s");
    CHECK(expo_get(&e, "ievo_event_to_output_latency_seconds_bucket{le=\"+Inf\"}") == 177, "lat +Inf");
    CHECK(expo_get(&e, "ievo_event_to_output_latency_seconds_count") == 177, "lat count");
    double lsum = expo_get(&e, "ievo_event_to_output_latency_seconds_sum");
    double want = (100 * 0.5 + 50 * 3.5 + 20 * 40.5 + 5 * 1500.5 + 2 * 10000.0) * 1e-3;
    CHECK(fabs(lsum - want) < 1e-9, "latency sum %g, want %g", lsum, want);
    CHECK(expo_get(&e, "ievo_batch_size_records_bucket{le=\"1\"}") == 3, "batch le 1");
    CHECK(expo_get(&e, "ievo_batch_size_records_bucket{le=\"32\"}") == 13, "batch le 32");
    CHECK(expo_get(&e, "ievo_batch_size_records_bucket{le=\"2048\"}") == 13, "batch le 2048");
    CHECK(expo_get(&e, "ievo_batch_size_records_count") == 14, "batch count");
    CHECK(expo_get(&e, "ievo_batch_size_records_sum") == 1000, "batch sum = consumed");
    CHECK(expo_get(&e, "ievo_model_step_seconds_count") == 9, "step count");
    CHECK(fabs(expo_get(&e, "ievo_model_step_seconds_sum") - 0.09032) < 1e-12, "step sum");
    CHECK(e.n_fam >= 30, "%d families", e.n_fam);
    free(text);

    /* An empty snapshot renders valid text too (every histogram with zero counts). */
    memset(s, 0, sizeof *s);
    text = metrics_render(s, &len);
    REQUIRE(text, "empty render");
    expo_parse(&e, text, len);
    CHECK(expo_get(&e, "ievo_events_applied_total") == 0, "empty applied");
    CHECK(expo_get(&e, "ievo_model_step_seconds_count") == 0, "empty step count");
    free(text);
    free(s);
}

/* ---- HTTP --------------------------------------------------------------------------------- */

/* A connection to 127.0.0.1:port from 127.0.0.<from> (the server sees another client for each). */
static int connect_from(int port, int from) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0, "socket");
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + (uint32_t)from);
    REQUIRE(bind(fd, (struct sockaddr *)&src, sizeof src) == 0, "bind 127.0.0.%d: %s", from, strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    return fd;
}

static int connect_local(int port) { return connect_from(port, 1); }

/* Sends raw bytes from 127.0.0.<from>, reads until the server closes. Returns the status code
 * (-1: none) and the whole response in *resp (caller frees). */
static int http_raw_from(int port, int from, const char *req, size_t req_len, char **resp) {
    int fd = connect_from(port, from);
    size_t off = 0;
    while (off < req_len) {
        ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += (size_t)n;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    REQUIRE(buf, "oom");
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        REQUIRE(buf, "oom");
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0) break;
        len += (size_t)n;
    }
    buf[len] = 0;
    close(fd);
    int status = -1;
    sscanf(buf, "HTTP/1.1 %d", &status);
    if (resp) *resp = buf;
    else free(buf);
    return status;
}

static int http_raw(int port, const char *req, size_t req_len, char **resp) {
    return http_raw_from(port, 1, req, req_len, resp);
}

static int http_get_from(int port, int from, const char *path, char **resp) {
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n", path);
    return http_raw_from(port, from, req, (size_t)n, resp);
}

static int http_get(int port, const char *path, char **resp) { return http_get_from(port, 1, path, resp); }

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static void test_http(void) {
    char err[256];
    metrics_server *m = NULL;
    CHECK(metrics_server_start(&m, "no-port-here", err, sizeof err) != 0 && strstr(err, "metrics.listen"),
          "a bad address is refused with a message: %s", err);
    CHECK(metrics_server_start(&m, "127.0.0.1:99999", err, sizeof err) != 0, "port out of range refused");
    /* A port without a host binds the loopback interface only; other machines are asked for. */
    REQUIRE(metrics_server_start(&m, ":0", err, sizeof err) == 0, "start: %s", err);
    CHECK(!strncmp(metrics_server_address(m), "127.0.0.1:", 10), "':0' bound %s", metrics_server_address(m));
    metrics_server_stop(m);
    REQUIRE(metrics_server_start(&m, "0", err, sizeof err) == 0, "start: %s", err);
    CHECK(!strncmp(metrics_server_address(m), "127.0.0.1:", 10), "'0' bound %s", metrics_server_address(m));
    metrics_server_stop(m);
    REQUIRE(metrics_server_start(&m, "0.0.0.0:0", err, sizeof err) == 0, "start: %s", err);
    CHECK(!strncmp(metrics_server_address(m), "0.0.0.0:", 8), "'0.0.0.0:0' bound %s", metrics_server_address(m));
    metrics_server_stop(m);
    REQUIRE(metrics_server_start(&m, "127.0.0.1:0", err, sizeof err) == 0, "start: %s", err);
    int port = metrics_server_port(m);
    REQUIRE(port > 0, "bound port %d", port);
    /* The same port twice: the second bind fails with a message. */
    {
        metrics_server *m2 = NULL;
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        CHECK(metrics_server_start(&m2, addr, err, sizeof err) != 0 && strstr(err, "in use"), "port in use: %s", err);
    }

    char *r = NULL;
    /* Nothing published yet: not healthy, not ready, no metrics. */
    CHECK(http_get(port, "/healthz", NULL) == 503, "healthz before the first publish");
    CHECK(http_get(port, "/readyz", NULL) == 503, "readyz before the first publish");
    CHECK(http_get(port, "/metrics", NULL) == 503, "metrics before the first publish");

    metrics_snapshot *s = make_snapshot();
    s->ready = 0;
    metrics_publish(m, s);
    CHECK(http_get(port, "/healthz", &r) == 200, "healthz after a fresh publish: %s", r);
    free(r);
    CHECK(http_get(port, "/readyz", &r) == 503 && strstr(r, "no partitions assigned"), "readyz unassigned: %s", r);
    free(r);
    s->restoring = 1;
    metrics_publish(m, s);
    CHECK(http_get(port, "/readyz", &r) == 503 && strstr(r, "restoring"), "readyz restoring: %s", r);
    free(r);
    s->restoring = 0;
    s->ready = 1;
    metrics_publish(m, s);
    CHECK(http_get(port, "/readyz", NULL) == 200, "readyz ready");
    CHECK(http_get(port, "/readyz?verbose=1", NULL) == 200, "query string ignored");

    int st = http_get(port, "/metrics", &r);
    CHECK(st == 200, "metrics status %d", st);
    CHECK(strstr(r, "Content-Type: text/plain; version=0.0.4") != NULL, "exposition content type");
    CHECK(strstr(r, "Connection: close") != NULL, "Connection: close");
    char *body = strstr(r, "\r\n\r\n");
    REQUIRE(body, "no header end");
    body += 4;
    size_t clen = 0;
    const char *cl = strstr(r, "Content-Length: ");
    CHECK(cl && sscanf(cl, "Content-Length: %zu", &clen) == 1 && clen == strlen(body), "Content-Length matches");
    static expo e;
    expo_parse(&e, body, strlen(body));
    CHECK(expo_get(&e, "ievo_events_applied_total") == 990, "served values are the published ones");
    free(r);

    /* HEAD: headers only. */
    const char head_req[] = "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(http_raw(port, head_req, sizeof head_req - 1, &r) == 200 && strstr(r, "\r\n\r\n")[4] == 0, "HEAD: %s", r);
    free(r);
    CHECK(http_get(port, "/nope", NULL) == 404, "404");
    const char post[] = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    CHECK(http_raw(port, post, sizeof post - 1, NULL) == 405, "405");
    /* Garbage: refused with 400, or (libmicrohttpd's way with a request line it cannot split)
     * closed without an answer; never served, and the server answers the next request. */
    const char junk[] = "\x01\x02garbage\r\n\r\n";
    int js = http_raw(port, junk, sizeof junk - 1, NULL);
    CHECK(js == 400 || js == -1, "garbage: status %d", js);
    CHECK(http_get(port, "/healthz", NULL) == 200, "healthz after garbage");
    /* A request larger than the bound: refused (431) or dropped, never buffered without limit;
     * one with 6 KiB of headers (more than any scraper sends) is served. */
    {
        char req[6300];
        int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; i < 6; i++) {
            n += snprintf(req + n, sizeof req - (size_t)n, "X-Pad-%d: ", i);
            memset(req + n, 'a' + i, 1000);
            n += 1000;
            n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
        }
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
        REQUIRE((size_t)n < sizeof req, "request buffer");
        CHECK(http_raw(port, req, (size_t)n, NULL) == 200, "a request with 6 KiB of headers is refused");
        /* 9 KiB: over the 8 KiB per-connection memory (libmicrohttpd's default, 32 KiB, would serve it) */
        char big[9300];
        n = snprintf(big, sizeof big, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ");
        memset(big + n, 'a', 9216);
        n += 9216;
        n += snprintf(big + n, sizeof big - (size_t)n, "\r\n\r\n");
        int bs = http_raw(port, big, (size_t)n, NULL);
        CHECK(bs == 431 || bs == -1, "a request with 9 KiB of headers: status %d", bs);
    }
    {
        size_t big = 64 * 1024;
        char *req = malloc(big);
        REQUIRE(req, "oom");
        memcpy(req, "GET /metrics HTTP/1.1\r\nX-Pad: ", 30);
        memset(req + 30, 'a', big - 30);
        int bs = http_raw(port, req, big, NULL);
        CHECK(bs == 431 || bs == -1, "oversized request: status %d", bs);
        free(req);
    }

    /* A stale publish: the worker loop is stuck -> /healthz 503, /readyz still answers. */
    s->published_at = mono() - 11;
    metrics_publish(m, s);
    CHECK(http_get(port, "/healthz", &r) == 503 && strstr(r, "stale"), "stale healthz: %s", r);
    free(r);
    s->published_at = mono();
    metrics_publish(m, s);

    /* Idle connections that never send a request: one address holds at most 8 (the per-address
     * limit) and its further connections are refused, while another address's probe gets through
     * at once, so a hung scraper cannot lock the kubelet out. (libmicrohttpd cannot give an idle
     * connection's place to a new one, so a probe from the same address would be refused too.) */
    {
        int idle[12];
        for (int i = 0; i < 12; i++) idle[i] = connect_local(port);
        usleep(100 * 1000);
        double t0 = mono();
        CHECK(http_get_from(port, 2, "/healthz", NULL) == 200, "probe from another address with idle connections open");
        CHECK(mono() - t0 < 1.0, "probe took %.2f s behind idle connections", mono() - t0);
        CHECK(http_get(port, "/healthz", NULL) == -1, "a 13th connection from one address was served");
        for (int i = 0; i < 12; i++) close(idle[i]);
        usleep(200 * 1000); /* the daemon sees them closed */
    }
    /* The connection limit (32): with 8 idle connections from each of 4 addresses, a fifth
     * address's request is not answered (at the limit libmicrohttpd stops accepting, and the
     * connection waits in the listen backlog); once the idle ones close, it is. */
    {
        int idle[32];
        for (int i = 0; i < 32; i++) idle[i] = connect_from(port, 1 + i / 8);
        usleep(100 * 1000);
        int fd = connect_from(port, 5);
        const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK(send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1), "send: %s", strerror(errno));
        struct timeval tv = {.tv_usec = 500 * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[1024];
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "a 33rd connection was answered (recv %zd)", n);
        for (int i = 0; i < 32; i++) close(idle[i]);
        tv = (struct timeval){.tv_sec = 3};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        n = recv(fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        int st = -1;
        sscanf(buf, "HTTP/1.1 %d", &st);
        CHECK(st == 200, "the waiting connection, once the idle ones closed: %zd bytes, status %d", n, st);
        close(fd);
    }
    /* The idle timeout (5 s): the server closes a connection that sends nothing. */
    {
        int fd = connect_local(port);
        struct timeval tv = {.tv_sec = 10};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        double t0 = mono();
        char b;
        ssize_t n = recv(fd, &b, 1, 0);
        double t = mono() - t0;
        CHECK(n == 0 && t > 4.0 && t < 7.5, "idle connection: recv %zd after %.2f s (want closed after ~5 s)", n, t);
        fprintf(stderr, "idle connection closed by the server after %.2f s\n", t);
        close(fd);
    }

    /* Many requests with publishes in between: no descriptor leak, every answer complete. */
    usleep(200 * 1000);
    int fds0 = count_fds();
    for (int i = 0; i < 200; i++) {
        s->stats.applied = 1000 + i;
        metrics_publish(m, s);
        if (http_get(port, i % 2 ? "/metrics" : "/healthz", NULL) != 200) {
            CHECK(0, "request %d failed", i);
            break;
        }
    }
    usleep(200 * 1000);
    CHECK(count_fds() == fds0, "descriptors %d -> %d after 200 requests", fds0, count_fds());

    metrics_server_stop(m);
    /* Stopped: the port no longer answers. */
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) != 0, "still listening after stop");
        close(fd);
    }
    metrics_server_stop(NULL);
    free(s);
}

/* The checker itself must catch what it is for: each bad exposition fails at least one check. */
static void test_checker_catches(void) {
    static const char *bad[] = {
        "ievo_x_total 1\n",                                                         /* no TYPE */
        "# TYPE a_total counter\na_total 1\n# TYPE a_total counter\na_total 2\n",  /* TYPE twice */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 3\nh_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 5\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_sum 1\nh_count 5\n",          /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 5\nh_sum 1\nh_count 4\n",      /* count != +Inf */
        "# TYPE g gauge\ng 1 2 3\n",                                                /* junk after value */
        "# TYPE g gauge\ng{p=\"1\"} 1\ng{p=\"1\"} 2\n",                            /* duplicate series */
        "# TYPE g gauge\ng abc\n",                                                  /* value */
        "# TYPE c counter\nc 1\n",                                                  /* counter without _total */
        "# TYPE g gauge\ng 1",                                                       /* no final newline */
    };
    static expo e;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int before = check_failures;
        fprintf(stderr, "(expected failures of the checker on bad input %zu follow)\n", i);
        expo_parse(&e, bad[i], strlen(bad[i]));
        int caught = check_failures > before;
        check_failures = before;
        CHECK(caught, "the exposition checker accepted bad input %zu", i);
    }
}

int main(void) {
    test_checker_catches();
    test_render();
    test_http();
    return check_exit("test_metrics");
}
