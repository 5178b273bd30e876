/* metrics: the worker's /metrics, /healthz and /readyz (see metrics.h for the contract).
 *
 * A deliberately small HTTP/1.1 server: one background thread, poll() over the listening
 * socket, a wake-up pipe and at most METRICS_MAX_CONNS connections. Each connection sends one
 * GET (or HEAD) of at most METRICS_MAX_REQUEST bytes within METRICS_CONN_TIMEOUT_S, gets one
 * response with `Connection: close`, and is closed; when every slot is busy a new connection
 * takes the oldest one's. That is all a Prometheus scraper and a
 * kubelet probe need, and it bounds what a misbehaving client can cost: a fixed number of
 * sockets, a few KiB each, no allocation per request but the rendered page.
 *
 * The worker thread publishes a snapshot (metrics_publish copies it under the mutex); a scrape
 * copies the latest one out under the same mutex and renders it outside the lock, so a slow
 * scraper never holds the worker up for longer than a memcpy of ~100 KiB.
 *
 * Exposition: Prometheus text format 0.0.4. Counters end in _total; histograms are rebuilt from
 * the worker's bucket arrays (worker.h): batch sizes with le = 1, 2, 4 .. 2048 records; model
 * step time with le = WORKER_STEP_US_BOUNDS; event-to-output latency, kept in 1 ms buckets, with
 * le = 1 ms .. 10 s. Metrics (all prefixed ievo_ unless noted):
 *   events_consumed_total, events_applied_total, events_dead_lettered_total{class},
 *   duplicates_skipped_total, unowned_skipped_total, batches_total, waves_total, rebalances_total,
 *   checkpoints_total, changelog_records_total, offset_gaps_total, restored_partitions_total,
 *   restore_records_total, restore_seconds_total, cache_{hits,misses,evictions}_total,
 *   stage_seconds_total{stage}; gauges consumer_lag{partition}, partition_next_offset{partition},
 *   partitions_assigned, ready, restoring, state_memory_bytes, cache_entries, cache_capacity_entries,
 *   cache_dirty_entries, last_publish_age_seconds; histograms batch_size_records,
 *   model_step_seconds, event_to_output_latency_seconds; and the process's own
 *   process_resident_memory_bytes (VmRSS of /proc/self/status) and process_cpu_seconds_total.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "log.h"
#include "metrics.h"

#define METRICS_MAX_CONNS 8
#define METRICS_MAX_REQUEST 8192       /* request line + headers; a scraper sends ~300 bytes */
#define METRICS_CONN_TIMEOUT_S 5.0     /* a connection that has not sent its request by then is dropped */
#define METRICS_HEALTHY_AGE_S 10.0     /* /healthz: the worker published within this */

typedef struct {
    int fd;                /* -1: free slot */
    double opened;         /* CLOCK_MONOTONIC */
    char req[METRICS_MAX_REQUEST + 1];
    size_t req_len;
    char *resp;            /* the whole response (headers + body) once the request is in */
    size_t resp_len, resp_sent;
} metrics_conn;

struct metrics_server {
    int listen_fd;
    int wake[2];           /* the stop request: a byte written to wake[1] */
    int port;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t mu;
    metrics_snapshot *latest;   /* guarded by mu */
    int have_latest;            /* guarded by mu */
    metrics_snapshot *scratch;  /* the server thread's own copy, rendered outside the lock */
    metrics_conn conns[METRICS_MAX_CONNS];
};

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- rendering ---------------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    int failed;
} mbuf;

static void mb_printf(mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mb_printf(mbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->data && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 16384;
        while (cap <= b->len + (size_t)n) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

static void head(mbuf *b, const char *name, const char *type, const char *help) {
    mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter_i(mbuf *b, const char *name, const char *help, long long v) {
    head(b, name, "counter", help);
    mb_printf(b, "%s %lld\n", name, v);
}

static void gauge_i(mbuf *b, const char *name, const char *help, long long v) {
    head(b, name, "gauge", help);
    mb_printf(b, "%s %lld\n", name, v);
}

/* The shortest %g form, from 6 digits up, that reads back as the same double (Prometheus parses
 * with Go's ParseFloat): bounds print as 0.005 and 10, not 0.0050000000000000001 or 1e+01. */
static void fmt_double(char *out, size_t n, double v) {
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

static void sample_f(mbuf *b, const char *name, const char *labels, double v) {
    char num[32];
    fmt_double(num, sizeof num, v);
    mb_printf(b, "%s%s %s\n", name, labels, num);
}

/* One histogram from per-bucket (not cumulative) counts: counts[k] belongs to le = bounds[k]
 * for k < nb, counts[nb] to +Inf only. */
static void histogram(mbuf *b, const char *name, const char *help, const double *bounds, const int64_t *counts,
                      int nb, double sum) {
    head(b, name, "histogram", help);
    long long cum = 0;
    for (int k = 0; k < nb; k++) {
        cum += counts[k];
        char le[32];
        fmt_double(le, sizeof le, bounds[k]);
        mb_printf(b, "%s_bucket{le=\"%s\"} %lld\n", name, le, cum);
    }
    cum += counts[nb];
    mb_printf(b, "%s_bucket{le=\"+Inf\"} %lld\n", name, cum);
    char s[32];
    fmt_double(s, sizeof s, sum);
    mb_printf(b, "%s_sum %s\n", name, s);
    mb_printf(b, "%s_count %lld\n", name, cum);
}

/* VmRSS of this process in bytes (0 when /proc is not there). */
static unsigned long long process_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024ULL;
}

char *metrics_render(const metrics_snapshot *snap, size_t *len) {
    mbuf b = {0};
    const worker_stats *st = &snap->stats;

    counter_i(&b, "ievo_events_consumed_total", "Records received from the input topic.", (long long)st->consumed);
    counter_i(&b, "ievo_events_applied_total", "Events applied to a user state (one output each).",
              (long long)st->applied);
    head(&b, "ievo_events_dead_lettered_total", "counter", "Records sent to the dead-letter topic, by error class.");
    for (int k = CODEC_E_OVERSIZED; k <= CODEC_STATUS_LAST; k++)
        mb_printf(&b, "ievo_events_dead_lettered_total{class=\"%s\"} %lld\n", codec_status_name((codec_status)k),
                  (long long)st->dlq_by_class[k]);
    counter_i(&b, "ievo_duplicates_skipped_total", "Redelivered records skipped (already applied).",
              (long long)st->skipped_duplicate);
    counter_i(&b, "ievo_unowned_skipped_total", "Records of partitions no longer assigned, skipped.",
              (long long)st->skipped_unowned);
    counter_i(&b, "ievo_batches_total", "Micro-batches processed.", (long long)st->batches);
    counter_i(&b, "ievo_waves_total", "Model-step waves run.", (long long)st->waves);
    counter_i(&b, "ievo_rebalances_total", "Consumer-group rebalances (assign or revoke) seen.",
              (long long)st->rebalances);
    counter_i(&b, "ievo_checkpoints_total", "Checkpoints written (states and offsets made durable).",
              (long long)st->checkpoints);
    counter_i(&b, "ievo_changelog_records_total", "State records written to the changelog topic.",
              (long long)st->changelog_records);
    counter_i(&b, "ievo_offset_gaps_total", "Records that arrived past the next expected offset.",
              (long long)st->offset_gaps);
    counter_i(&b, "ievo_restored_partitions_total", "Partitions restored from the changelog.",
              (long long)st->restored_partitions);
    counter_i(&b, "ievo_restore_records_total", "Changelog records restored into the local state.",
              (long long)(snap->restore_records_done > st->restored_records ? snap->restore_records_done
                                                                            : st->restored_records));
    head(&b, "ievo_restore_seconds_total", "counter", "Time spent restoring partitions from the changelog.");
    sample_f(&b, "ievo_restore_seconds_total", "", st->restore_s);
    counter_i(&b, "ievo_cache_hits_total", "User records found in the in-memory cache.", (long long)st->cache_hits);
    counter_i(&b, "ievo_cache_misses_total", "User records read from RocksDB.", (long long)st->cache_misses);
    counter_i(&b, "ievo_cache_evictions_total", "Clean user records evicted from the cache.",
              (long long)st->cache_evictions);
    head(&b, "ievo_stage_seconds_total", "counter", "Wall time of the worker loop, by stage.");
    for (int k = 0; k < STAGE_N; k++) {
        char lab[64];
        snprintf(lab, sizeof lab, "{stage=\"%s\"}", WORKER_STAGE_NAMES[k]);
        sample_f(&b, "ievo_stage_seconds_total", lab, st->stage_s[k]);
    }

    int assigned = 0;
    for (int i = 0; i < snap->n_partitions; i++) assigned += snap->partitions[i].owned != 0;
    head(&b, "ievo_consumer_lag", "gauge",
         "Records between the partition's high watermark and the consumer position (librdkafka statistics).");
    for (int i = 0; i < snap->n_partitions; i++) {
        const metrics_partition *p = &snap->partitions[i];
        if (p->owned && p->lag >= 0)
            mb_printf(&b, "ievo_consumer_lag{partition=\"%d\"} %lld\n", (int)p->partition, (long long)p->lag);
    }
    head(&b, "ievo_partition_next_offset", "gauge", "Next input offset to apply, per assigned partition.");
    for (int i = 0; i < snap->n_partitions; i++) {
        const metrics_partition *p = &snap->partitions[i];
        if (p->owned && p->next_offset >= 0)
            mb_printf(&b, "ievo_partition_next_offset{partition=\"%d\"} %lld\n", (int)p->partition,
                      (long long)p->next_offset);
    }
    gauge_i(&b, "ievo_partitions_assigned", "Input partitions assigned to this worker.", assigned);
    gauge_i(&b, "ievo_ready", "1 once partitions are assigned and none is being restored.", snap->ready ? 1 : 0);
    gauge_i(&b, "ievo_restoring", "1 while a partition is being restored from the changelog.",
            snap->restoring ? 1 : 0);
    gauge_i(&b, "ievo_state_memory_bytes", "RocksDB memtables and block cache.", (long long)snap->state_memory_bytes);
    gauge_i(&b, "ievo_cache_entries", "User records in the in-memory cache.", (long long)snap->cache_entries);
    gauge_i(&b, "ievo_cache_capacity_entries", "Capacity of the in-memory cache in records.",
            (long long)snap->cache_capacity);
    gauge_i(&b, "ievo_cache_dirty_entries", "Cached records not yet checkpointed.", (long long)snap->cache_dirty);
    head(&b, "ievo_last_publish_age_seconds", "gauge", "Seconds since the worker loop last published these metrics.");
    sample_f(&b, "ievo_last_publish_age_seconds", "", snap->published_at > 0 ? mono_now() - snap->published_at : -1);

    /* Batch sizes: bucket k <= 2^k records (k < BATCH_SIZE_BUCKETS - 1); every consumed record is
     * in exactly one batch, so the sum is the records consumed in non-empty batches. */
    {
        double bounds[BATCH_SIZE_BUCKETS - 1];
        for (int k = 0; k < BATCH_SIZE_BUCKETS - 1; k++) bounds[k] = (double)(1u << k);
        histogram(&b, "ievo_batch_size_records", "Records per consumed micro-batch.", bounds, st->batch_size_hist,
                  BATCH_SIZE_BUCKETS - 1, (double)st->consumed);
    }
    {
        double bounds[STEP_US_BUCKETS - 1];
        for (int k = 0; k < STEP_US_BUCKETS - 1; k++) bounds[k] = WORKER_STEP_US_BOUNDS[k] / 1e6;
        histogram(&b, "ievo_model_step_seconds", "Wall time of one batched model step (<= 256 rows).", bounds,
                  st->step_us_hist, STEP_US_BUCKETS - 1, st->step_us_sum * 1e-6);
    }
    {
        /* 1 ms buckets: bucket k holds latencies in [k, k+1) ms, the last one >= 10 s. "le = B ms"
         * counts buckets k < B (values of exactly B ms fall one bucket later: a conservative
         * reading). The sum is not kept by the worker; it is estimated from bucket midpoints. */
        static const int le_ms[] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
        enum { NL = sizeof le_ms / sizeof le_ms[0] };
        double bounds[NL];
        int64_t counts[NL + 1];
        double sum_ms = 0;
        int k = 0;
        for (int j = 0; j < NL; j++) {
            bounds[j] = le_ms[j] / 1e3;
            counts[j] = 0;
            for (; k < le_ms[j] && k < LATENCY_BUCKETS; k++) {
                counts[j] += st->latency_ms[k];
                sum_ms += (double)st->latency_ms[k] * ((double)k + 0.5);
            }
        }
        counts[NL] = 0;
        for (; k < LATENCY_BUCKETS; k++) {
            counts[NL] += st->latency_ms[k];
            sum_ms += (double)st->latency_ms[k] * (k == LATENCY_BUCKETS - 1 ? (double)k : (double)k + 0.5);
        }
        histogram(&b, "ievo_event_to_output_latency_seconds",
                  "Input record timestamp to output acknowledged (sum estimated from 1 ms buckets).", bounds, counts,
                  NL, sum_ms * 1e-3);
    }

    head(&b, "process_resident_memory_bytes", "gauge", "Resident set size (VmRSS).");
    mb_printf(&b, "process_resident_memory_bytes %llu\n", process_rss_bytes());
    {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        head(&b, "process_cpu_seconds_total", "counter", "User and system CPU time of the process.");
        sample_f(&b, "process_cpu_seconds_total", "",
                 (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6);
    }

    if (b.failed) {
        free(b.data);
        *len = 0;
        return NULL;
    }
    *len = b.len;
    return b.data;
}

static void snap_copy(metrics_snapshot *dst, const metrics_snapshot *src);

/* ---- HTTP --------------------------------------------------------------------------------- */

static void conn_close(metrics_conn *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->resp);
    c->fd = -1;
    c->resp = NULL;
    c->req_len = c->resp_len = c->resp_sent = 0;
}

/* Builds c->resp. Returns -1 when out of memory (the connection is then dropped). */
static int respond(metrics_conn *c, int status, const char *ctype, const char *body, size_t body_len, int head_only) {
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 500 ? "Internal Server Error"
                                         : "Service Unavailable";
    char hdr[256];
    int hn = snprintf(hdr, sizeof hdr,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
                      "Connection: close\r\n\r\n",
                      status, reason, ctype, body_len);
    if (hn < 0 || (size_t)hn >= sizeof hdr) return -1;
    size_t n = (size_t)hn + (head_only ? 0 : body_len);
    c->resp = malloc(n ? n : 1);
    if (!c->resp) return -1;
    memcpy(c->resp, hdr, (size_t)hn);
    if (!head_only && body_len) memcpy(c->resp + hn, body, body_len);
    c->resp_len = n;
    c->resp_sent = 0;
    return 0;
}

static int respond_text(metrics_conn *c, int status, const char *text, int head_only) {
    return respond(c, status, "text/plain; charset=utf-8", text, strlen(text), head_only);
}

/* The request in c->req is complete (ends its headers): answers it. */
static int handle_request(metrics_server *m, metrics_conn *c) {
    char method[16], target[1024];
    /* "GET /metrics HTTP/1.1": anything that does not parse is a 400. */
    if (sscanf(c->req, "%15s %1023s HTTP/1.%*c", method, target) != 2) return respond_text(c, 400, "bad request\n", 0);
    int head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) return respond_text(c, 405, "only GET and HEAD\n", 0);
    char *q = strchr(target, '?');
    if (q) *q = 0;

    int have;
    pthread_mutex_lock(&m->mu);
    have = m->have_latest;
    if (have) snap_copy(m->scratch, m->latest);
    pthread_mutex_unlock(&m->mu);
    const metrics_snapshot *s = m->scratch;

    if (strcmp(target, "/metrics") == 0) {
        if (!have) return respond_text(c, 503, "no metrics published yet\n", head_only);
        size_t len;
        char *body = metrics_render(s, &len);
        if (!body) return respond_text(c, 500, "out of memory\n", head_only);
        int rc = respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body, len, head_only);
        free(body);
        return rc;
    }
    if (strcmp(target, "/healthz") == 0) {
        char msg[128];
        if (!have) return respond_text(c, 503, "starting: nothing published yet\n", head_only);
        double age = mono_now() - s->published_at;
        if (age < METRICS_HEALTHY_AGE_S) {
            snprintf(msg, sizeof msg, "ok: published %.1f s ago\n", age);
            return respond_text(c, 200, msg, head_only);
        }
        snprintf(msg, sizeof msg, "stale: the worker loop last published %.1f s ago\n", age);
        return respond_text(c, 503, msg, head_only);
    }
    if (strcmp(target, "/readyz") == 0) {
        if (!have) return respond_text(c, 503, "not ready: starting\n", head_only);
        if (s->ready) return respond_text(c, 200, "ready\n", head_only);
        return respond_text(c, 503, s->restoring ? "not ready: restoring from the changelog\n"
                                                 : "not ready: no partitions assigned yet\n",
                            head_only);
    }
    return respond_text(c, 404, "not found: /metrics /healthz /readyz\n", head_only);
}

/* Reads what the client sent; answers once the headers are complete. Returns -1 to close. */
static int conn_read(metrics_server *m, metrics_conn *c) {
    if (c->req_len >= METRICS_MAX_REQUEST) return -1;
    ssize_t n = recv(c->fd, c->req + c->req_len, METRICS_MAX_REQUEST - c->req_len, 0);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (n == 0) return -1;   /* closed before a full request */
    c->req_len += (size_t)n;
    c->req[c->req_len] = 0;
    if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) return handle_request(m, c);
    if (c->req_len >= METRICS_MAX_REQUEST) return respond_text(c, 431, "request too large\n", 0);
    return 0;
}

/* Sends what is left of the response. Returns 1 when done, 0 to wait, -1 on error. */
static int conn_write(metrics_conn *c) {
    while (c->resp_sent < c->resp_len) {
        ssize_t n = send(c->fd, c->resp + c->resp_sent, c->resp_len - c->resp_sent, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        c->resp_sent += (size_t)n;
    }
    return 1;
}

/* Takes one pending connection. When every slot is busy the oldest connection is dropped for
 * it, so idle or slow clients can delay a probe by at most one connection's turn, never block it. */
static void accept_one(metrics_server *m) {
    int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;   /* EAGAIN, or the client went away: nothing to do */
    metrics_conn *slot = NULL;
    for (int i = 0; i < METRICS_MAX_CONNS && !slot; i++)
        if (m->conns[i].fd < 0) slot = &m->conns[i];
    if (!slot) {
        slot = &m->conns[0];
        for (int i = 1; i < METRICS_MAX_CONNS; i++)
            if (m->conns[i].opened < slot->opened) slot = &m->conns[i];
        conn_close(slot);
    }
    slot->fd = fd;
    slot->opened = mono_now();
    slot->req_len = 0;
}

static void *server_main(void *arg) {
    metrics_server *m = arg;
    struct pollfd pf[2 + METRICS_MAX_CONNS];
    int slot[2 + METRICS_MAX_CONNS];
    for (;;) {
        int n = 0;
        pf[n++] = (struct pollfd){.fd = m->wake[0], .events = POLLIN};
        int listen_at = n;
        pf[n++] = (struct pollfd){.fd = m->listen_fd, .events = POLLIN};
        for (int i = 0; i < METRICS_MAX_CONNS; i++) {
            metrics_conn *c = &m->conns[i];
            if (c->fd < 0) continue;
            slot[n] = i;
            pf[n++] = (struct pollfd){.fd = c->fd, .events = c->resp ? POLLOUT : POLLIN};
        }
        int r = poll(pf, (nfds_t)n, 1000);
        if (r < 0 && errno != EINTR) {
            LOG_E("metrics", "poll: %s; the metrics server stops", strerror(errno));
            break;
        }
        if (r > 0 && pf[0].revents) break;   /* metrics_server_stop */
        double now = mono_now();
        for (int j = 0; j < n; j++) {
            if (j == 0 || j == listen_at) continue;
            metrics_conn *c = &m->conns[slot[j]];
            int rc = 0;
            if (pf[j].revents & (POLLERR | POLLNVAL)) rc = -1;
            else if (!c->resp && (pf[j].revents & (POLLIN | POLLHUP))) rc = conn_read(m, c);
            if (rc == 0 && c->resp && (pf[j].revents & POLLOUT || c->resp_sent == 0)) rc = conn_write(c);
            if (rc != 0 || now - c->opened > METRICS_CONN_TIMEOUT_S) conn_close(c);
        }
        if (pf[listen_at].revents & POLLIN) accept_one(m);
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* "host:port", ":port", "port" or "[v6]:port" -> host (NULL: any) and port strings. */
static int split_addr(const char *addr, char *host, size_t hostlen, char *port, size_t portlen) {
    const char *colon = strrchr(addr, ':');
    const char *h = addr, *p = addr;
    size_t hl = 0;
    if (colon) {
        p = colon + 1;
        hl = (size_t)(colon - addr);
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
    }
    if (!*p || strlen(p) >= portlen || hl >= hostlen) return -1;
    for (const char *s = p; *s; s++)
        if (*s < '0' || *s > '9') return -1;
    if (atoi(p) > 65535) return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    strcpy(port, p);
    return 0;
}

int metrics_server_start(metrics_server **out, const char *addr, char *err, size_t errlen) {
    *out = NULL;
    char host[256], port[16];
    if (!addr || split_addr(addr, host, sizeof host, port, sizeof port)) {
        snprintf(err, errlen, "metrics.listen '%s': expected host:port, :port or port", addr ? addr : "");
        return -1;
    }
    metrics_server *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->listen_fd = m->wake[0] = m->wake[1] = -1;
    for (int i = 0; i < METRICS_MAX_CONNS; i++) m->conns[i].fd = -1;
    pthread_mutex_init(&m->mu, NULL);
    if (!(m->latest = calloc(1, sizeof *m->latest)) || !(m->scratch = calloc(1, sizeof *m->scratch))) goto oom;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "metrics.listen '%s': %s", addr, gai_strerror(gai));
        goto fail;
    }
    int last_errno = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 16) == 0) {
            m->listen_fd = fd;
            break;
        }
        last_errno = errno;
        close(fd);
    }
    freeaddrinfo(ai);
    if (m->listen_fd < 0) {
        snprintf(err, errlen, "metrics.listen '%s': %s", addr, strerror(last_errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(m->listen_fd, (struct sockaddr *)&ss, &sl) == 0)
        m->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK)) {
        snprintf(err, errlen, "metrics server: pipe: %s", strerror(errno));
        goto fail;
    }
    int e = pthread_create(&m->thread, NULL, server_main, m);
    if (e) {
        snprintf(err, errlen, "metrics server: thread: %s", strerror(e));
        goto fail;
    }
    m->thread_started = 1;
    *out = m;
    return 0;
oom:
    snprintf(err, errlen, "metrics server: out of memory");
fail:
    metrics_server_stop(m);
    return -1;
}

/* Copies a snapshot without the unused tail of its partition table (1024 entries; most runs use a
 * few). */
static void snap_copy(metrics_snapshot *dst, const metrics_snapshot *src) {
    int np = src->n_partitions < 0 ? 0 : src->n_partitions > METRICS_MAX_PARTITIONS ? METRICS_MAX_PARTITIONS
                                                                                    : src->n_partitions;
    memcpy(dst, src, offsetof(metrics_snapshot, partitions));
    dst->n_partitions = np;
    memcpy(dst->partitions, src->partitions, (size_t)np * sizeof src->partitions[0]);
    dst->published_at = src->published_at;
}

void metrics_publish(metrics_server *m, const metrics_snapshot *snap) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    snap_copy(m->latest, snap);
    m->have_latest = 1;
    pthread_mutex_unlock(&m->mu);
}

int metrics_server_port(const metrics_server *m) {
    return m ? m->port : 0;
}

void metrics_server_stop(metrics_server *m) {
    if (!m) return;
    if (m->thread_started) {
        ssize_t w;
        do w = write(m->wake[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(m->thread, NULL);
    }
    for (int i = 0; i < METRICS_MAX_CONNS; i++) conn_close(&m->conns[i]);
    if (m->listen_fd >= 0) close(m->listen_fd);
    if (m->wake[0] >= 0) close(m->wake[0]);
    if (m->wake[1] >= 0) close(m->wake[1]);
    pthread_mutex_destroy(&m->mu);
    free(m->latest);
    free(m->scratch);
    free(m);
}
