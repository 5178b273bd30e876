/* metrics: the worker's /metrics, /healthz and /readyz (see metrics.h for the contract).
 *
 * HTTP is libmicrohttpd's: one daemon with one internal polling thread (epoll or poll, never
 * select, whose FD_SETSIZE a worker with many RocksDB files can exceed), which accepts, parses and
 * answers every connection. Each request gets one response with `Connection: close`. What a
 * misbehaving client may cost is bounded by the daemon's options:
 *   MHD_OPTION_CONNECTION_LIMIT          METRICS_MAX_CONNS sockets in all;
 *   MHD_OPTION_PER_IP_CONNECTION_LIMIT   METRICS_MAX_CONNS_PER_IP of them from one address, so
 *                                        idle or stuck connections of one client (a hung scraper)
 *                                        cannot refuse another's probe (the kubelet's);
 *   MHD_OPTION_CONNECTION_TIMEOUT        a connection idle for METRICS_CONN_TIMEOUT_S is closed;
 *   MHD_OPTION_CONNECTION_MEMORY_LIMIT   METRICS_CONN_MEMORY bytes of buffers a connection, which
 *                                        bounds the request line and headers to about 8 KiB (a
 *                                        scraper sends ~300 bytes); a longer request is refused
 *                                        (431, or closed when not even that answer fits). The
 *                                        rendered page is not in that memory: the daemon sends it
 *                                        from our buffer and frees it.
 * The listening socket is bound here and handed over (MHD_OPTION_LISTEN_SOCKET), so that
 * metrics.listen keeps its forms ("host:port", ":port", "port", "[v6]:port"; port 0 = any) and a
 * failed bind says why ("Address already in use").
 *
 * The worker thread publishes a snapshot (metrics_publish copies it under the mutex); a request
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
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
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

#include "clock.h"
#include "codec.h"
#include "log.h"
#include "metrics.h"

#define METRICS_MAX_CONNS 32           /* sockets in all */
#define METRICS_MAX_CONNS_PER_IP 8     /* sockets from one client address */
#define METRICS_CONN_TIMEOUT_S 5       /* a connection idle this long is closed */
#define METRICS_CONN_MEMORY (8 * 1024) /* a connection's buffers: request line + headers up to ~8 KiB */
#define METRICS_HEALTHY_AGE_S 10.0     /* /healthz: the worker published within this */

struct metrics_server {
    struct MHD_Daemon *daemon;
    int listen_fd;         /* ours until MHD_start_daemon takes it */
    int port;
    char bound[80];        /* the address bound, numeric: "127.0.0.1:9400", "[::]:9400" */
    pthread_mutex_t mu;
    metrics_snapshot *latest;   /* guarded by mu */
    int have_latest;            /* guarded by mu */
    metrics_snapshot *scratch;  /* the daemon thread's own copy, rendered outside the lock (one
                                   thread answers every request, so one copy suffices) */
};

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

/* One gauge per assigned partition with a known value (>= 0): the int64 at field of each. */
static void partition_gauge(mbuf *b, const metrics_snapshot *snap, const char *name, const char *help, size_t field) {
    head(b, name, "gauge", help);
    for (int i = 0; i < snap->n_partitions; i++) {
        const metrics_partition *p = &snap->partitions[i];
        int64_t v;
        memcpy(&v, (const char *)p + field, sizeof v);
        if (p->owned && v >= 0) mb_printf(b, "%s{partition=\"%d\"} %lld\n", name, (int)p->partition, (long long)v);
    }
}

static void render_counters(mbuf *b, const metrics_snapshot *snap) {
    const worker_stats *st = &snap->stats;
    counter_i(b, "ievo_events_consumed_total", "Records received from the input topic.", (long long)st->consumed);
    counter_i(b, "ievo_events_applied_total", "Events applied to a user state (one output each).",
              (long long)st->applied);
    head(b, "ievo_events_dead_lettered_total", "counter", "Records sent to the dead-letter topic, by error class.");
    for (int k = CODEC_E_OVERSIZED; k <= CODEC_STATUS_LAST; k++)
        mb_printf(b, "ievo_events_dead_lettered_total{class=\"%s\"} %lld\n", codec_status_name((codec_status)k),
                  (long long)st->dlq_by_class[k]);
    counter_i(b, "ievo_duplicates_skipped_total", "Redelivered records skipped (already applied).",
              (long long)st->skipped_duplicate);
    counter_i(b, "ievo_unowned_skipped_total", "Records of partitions no longer assigned, skipped.",
              (long long)st->skipped_unowned);
    counter_i(b, "ievo_batches_total", "Micro-batches processed.", (long long)st->batches);
    counter_i(b, "ievo_waves_total", "Model-step waves run.", (long long)st->waves);
    counter_i(b, "ievo_rebalances_total", "Consumer-group rebalances (assign or revoke) seen.",
              (long long)st->rebalances);
    counter_i(b, "ievo_checkpoints_total", "Checkpoints written (states and offsets made durable).",
              (long long)st->checkpoints);
    counter_i(b, "ievo_changelog_records_total", "State records written to the changelog topic.",
              (long long)st->changelog_records);
    counter_i(b, "ievo_offset_gaps_total", "Records that arrived past the next expected offset.",
              (long long)st->offset_gaps);
    counter_i(b, "ievo_restored_partitions_total", "Partitions restored from the changelog.",
              (long long)st->restored_partitions);
    counter_i(b, "ievo_restored_incremental_total",
              "Partition restores that read only the changelog's tail after the local checkpoint.",
              (long long)st->restored_incremental);
    counter_i(b, "ievo_quarantined_records_total",
              "Users' records read back (changelog or store) that failed validation: dead-lettered, state reset.",
              (long long)st->quarantined);
    counter_i(b, "ievo_restore_records_total", "Changelog records restored into the local state.",
              (long long)(snap->restore_records_done > st->restored_records ? snap->restore_records_done
                                                                            : st->restored_records));
    head(b, "ievo_restore_seconds_total", "counter", "Time spent restoring partitions from the changelog.");
    sample_f(b, "ievo_restore_seconds_total", "", st->restore_s);
    counter_i(b, "ievo_cache_hits_total", "User records found in the in-memory cache.", (long long)st->cache_hits);
    counter_i(b, "ievo_cache_misses_total", "User records read from RocksDB.", (long long)st->cache_misses);
    counter_i(b, "ievo_cache_evictions_total", "Clean user records evicted from the cache.",
              (long long)st->cache_evictions);
    head(b, "ievo_stage_seconds_total", "counter", "Wall time of the worker loop, by stage.");
    for (int k = 0; k < STAGE_N; k++) {
        char lab[64];
        snprintf(lab, sizeof lab, "{stage=\"%s\"}", WORKER_STAGE_NAMES[k]);
        sample_f(b, "ievo_stage_seconds_total", lab, st->stage_s[k]);
    }
}

static void render_gauges(mbuf *b, const metrics_snapshot *snap) {
    int assigned = 0;
    for (int i = 0; i < snap->n_partitions; i++) assigned += snap->partitions[i].owned != 0;
    partition_gauge(b, snap, "ievo_consumer_lag",
                    "Records of the partition not yet applied: its end offset (from the last fetch) minus the next "
                    "offset to apply; 0 when caught up.",
                    offsetof(metrics_partition, lag));
    partition_gauge(b, snap, "ievo_partition_next_offset", "Next input offset to apply, per assigned partition.",
                    offsetof(metrics_partition, next_offset));
    partition_gauge(b, snap, "ievo_partition_checkpointed_offset",
                    "Next input offset as of the last checkpoint; next_offset minus it is what a crash now would "
                    "apply again.",
                    offsetof(metrics_partition, checkpointed_offset));
    gauge_i(b, "ievo_partitions_assigned", "Input partitions assigned to this worker.", assigned);
    gauge_i(b, "ievo_ready", "1 once partitions are assigned and none is being restored.", snap->ready ? 1 : 0);
    gauge_i(b, "ievo_restoring", "1 while a partition is being restored from the changelog.",
            snap->restoring ? 1 : 0);
    gauge_i(b, "ievo_state_memory_bytes", "RocksDB memtables and block cache.", (long long)snap->state_memory_bytes);
    gauge_i(b, "ievo_cache_entries", "User records in the in-memory cache.", (long long)snap->cache_entries);
    gauge_i(b, "ievo_cache_capacity_entries", "Capacity of the in-memory cache in records.",
            (long long)snap->cache_capacity);
    gauge_i(b, "ievo_cache_dirty_entries", "Cached records not yet checkpointed.", (long long)snap->cache_dirty);
    head(b, "ievo_last_publish_age_seconds", "gauge", "Seconds since the worker loop last published these metrics.");
    sample_f(b, "ievo_last_publish_age_seconds", "", snap->published_at > 0 ? clock_mono_s() - snap->published_at : -1);

}

static void render_histograms(mbuf *b, const worker_stats *st) {
    /* Batch sizes: bucket k <= 2^k records (k < BATCH_SIZE_BUCKETS - 1); every consumed record is
     * in exactly one batch, so the sum is the records consumed in non-empty batches. */
    {
        double bounds[BATCH_SIZE_BUCKETS - 1];
        for (int k = 0; k < BATCH_SIZE_BUCKETS - 1; k++) bounds[k] = (double)(1u << k);
        histogram(b, "ievo_batch_size_records", "Records per consumed micro-batch.", bounds, st->batch_size_hist,
                  BATCH_SIZE_BUCKETS - 1, (double)st->consumed);
    }
    {
        double bounds[STEP_US_BUCKETS - 1];
        for (int k = 0; k < STEP_US_BUCKETS - 1; k++) bounds[k] = WORKER_STEP_US_BOUNDS[k] / 1e6;
        histogram(b, "ievo_model_step_seconds", "Wall time of one batched model step (<= 256 rows).", bounds,
                  st->step_us_hist, STEP_US_BUCKETS - 1, st->step_us_sum * 1e-6);
    }
}

/* 1 ms buckets: bucket k holds latencies in [k, k+1) ms, the last one >= 10 s. "le = B ms" counts
 * buckets k < B (values of exactly B ms fall one bucket later: a conservative reading). The sum is
 * not kept by the worker; it is estimated from bucket midpoints. */
static void render_latency(mbuf *b, const worker_stats *st) {
    {
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
        histogram(b, "ievo_event_to_output_latency_seconds",
                  "Input record timestamp to output acknowledged (sum estimated from 1 ms buckets).", bounds, counts,
                  NL, sum_ms * 1e-3);
    }

}

static void render_process(mbuf *b) {
    head(b, "process_resident_memory_bytes", "gauge", "Resident set size (VmRSS).");
    mb_printf(b, "process_resident_memory_bytes %llu\n", process_rss_bytes());
    {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        head(b, "process_cpu_seconds_total", "counter", "User and system CPU time of the process.");
        sample_f(b, "process_cpu_seconds_total", "",
                 (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                     ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6);
    }

}

char *metrics_render(const metrics_snapshot *snap, size_t *len) {
    mbuf b = {0};
    render_counters(&b, snap);
    render_gauges(&b, snap);
    render_histograms(&b, &snap->stats);
    render_latency(&b, &snap->stats);
    render_process(&b);
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

/* Queues one response; body is copied (must_free 0) or handed over and freed by the daemon. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *ctype, char *body,
                               size_t len, int must_free) {
    struct MHD_Response *r = must_free ? MHD_create_response_from_buffer_with_free_callback(len, body, free)
                                       : MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (must_free) free(body);
        LOG_W("metrics", "cannot create a %u response (out of memory?); the connection is closed", status);
        return MHD_NO;
    }
    enum MHD_Result rc = MHD_YES;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES ||
        (status == MHD_HTTP_METHOD_NOT_ALLOWED && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES))
        rc = MHD_NO;
    if (rc == MHD_YES) rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    if (rc != MHD_YES) LOG_W("metrics", "cannot queue a %u response; the connection is closed", status);
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned status, const char *text) {
    return respond(conn, status, "text/plain; charset=utf-8", (char *)text, strlen(text), 0);
}

/* The access handler: called once per request with the headers parsed (url without the query
 * string). Every answer is known then, so it is queued at once, body or not; HEAD gets the same
 * headers and the daemon leaves the body out. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
    (void)version, (void)upload_data, (void)upload_data_size, (void)req_cls;
    metrics_server *m = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");

    int have;
    pthread_mutex_lock(&m->mu);
    have = m->have_latest;
    if (have) snap_copy(m->scratch, m->latest);
    pthread_mutex_unlock(&m->mu);
    const metrics_snapshot *s = m->scratch;

    if (strcmp(url, "/metrics") == 0) {
        if (!have) return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "no metrics published yet\n");
        size_t len;
        char *body = metrics_render(s, &len);
        if (!body) return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return respond(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len, 1);
    }
    if (strcmp(url, "/healthz") == 0) {
        char msg[128];
        if (!have) return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "starting: nothing published yet\n");
        double age = clock_mono_s() - s->published_at;
        if (age < METRICS_HEALTHY_AGE_S) {
            snprintf(msg, sizeof msg, "ok: published %.1f s ago\n", age);
            return respond_text(conn, MHD_HTTP_OK, msg);
        }
        snprintf(msg, sizeof msg, "stale: the worker loop last published %.1f s ago\n", age);
        return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
    }
    if (strcmp(url, "/readyz") == 0) {
        if (!have) return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: starting\n");
        if (s->ready) return respond_text(conn, MHD_HTTP_OK, "ready\n");
        return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                            s->restoring ? "not ready: restoring from the changelog\n"
                                         : "not ready: no partitions assigned yet\n");
    }
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found: /metrics /healthz /readyz\n");
}

/* libmicrohttpd's own messages (a refused connection, a failed send, a request over the limits). */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    LOG_W("metrics", "libmicrohttpd: %s", msg);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* "host:port", ":port", "port" or "[v6]:port" -> host ("" when none is given) and port strings. */
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
    m->listen_fd = -1;
    pthread_mutex_init(&m->mu, NULL);
    if (!(m->latest = calloc(1, sizeof *m->latest)) || !(m->scratch = calloc(1, sizeof *m->scratch))) goto oom;

    /* No host: the loopback interface only. /metrics tells anyone who can reach it about the
     * worker's traffic; serving other machines (a Prometheus in the cluster, the kubelet's probes
     * through the pod IP) is asked for by naming the host: 0.0.0.0:PORT or [::]:PORT. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &ai);
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
    if (getsockname(m->listen_fd, (struct sockaddr *)&ss, &sl) == 0) {
        char h[64], p[16];
        m->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (getnameinfo((struct sockaddr *)&ss, sl, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV) == 0)
            snprintf(m->bound, sizeof m->bound, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", h, p);
    }
    /* One internal thread; MHD_USE_AUTO picks epoll (or poll) over select. */
    m->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, m,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)m->listen_fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)METRICS_MAX_CONNS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)METRICS_MAX_CONNS_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)METRICS_CONN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_CONN_MEMORY,
        MHD_OPTION_END);
    /* The socket is the daemon's now: MHD_stop_daemon closes it. When the start fails, 0.9.75
     * has closed it on some paths and not on others; leaving it open leaks one descriptor of a
     * worker that is about to exit with this error, while closing it twice could close a
     * descriptor another thread (librdkafka's) has opened since. */
    m->listen_fd = -1;
    if (!m->daemon) {
        snprintf(err, errlen, "metrics server on '%s': libmicrohttpd did not start (its reason is logged above)", addr);
        goto fail;
    }
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

const char *metrics_server_address(const metrics_server *m) { return m && m->bound[0] ? m->bound : "?"; }

void metrics_server_stop(metrics_server *m) {
    if (!m) return;
    if (m->daemon) MHD_stop_daemon(m->daemon); /* joins its thread, closes every socket */
    if (m->listen_fd >= 0) close(m->listen_fd);
    pthread_mutex_destroy(&m->mu);
    free(m->latest);
    free(m->scratch);
    free(m);
}
