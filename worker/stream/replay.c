/* replay: a bounded replay (`ievo replay`, backfill and model upgrades). The worker assigns
 * every partition itself instead of joining a group: from where its state stands (or a planned
 * start) up to the end offsets captured at the start, then stops. replay_plan.c decides the
 * ranges; this file asks the cluster and the store what the plan needs. */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "kafka_clients.h"
#include "log.h"
#include "worker_internal.h"

static int env_watermarks(void *ctx, int32_t p, int64_t *lo, int64_t *hi, char *err, size_t errlen) {
    worker *w = ctx;
    rd_kafka_resp_err_t e = kafka_watermarks(w->k.consumer, w->s->input_topic, p, lo, hi, 10000);
    if (e) {
        char what[320];
        snprintf(what, sizeof what, "%s [%d]: watermarks", w->s->input_topic, p);
        kafka_wait_error(w->k.consumer, e, what, 10000, err, errlen);
    }
    return e ? -1 : 0;
}

static int env_offsets_for_times(void *ctx, int n, const int32_t *parts, int64_t ts, int64_t *out, char *err,
                                 size_t errlen) {
    worker *w = ctx;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, w->s->input_topic, parts[i])->offset = ts;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(w->k.consumer, l, 10000);
    for (int i = 0; !e && i < n; i++) out[i] = l->elems[i].err ? -1 : l->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(l);
    if (e) snprintf(err, errlen, "offsets for time %lld: %s", (long long)ts, rd_kafka_err2str(e));
    return e ? -1 : 0;
}

/* Resume point of a partition: the state dir, brought up to the changelog when that is ahead
 * (a replay whose state dir was lost resumes from its changelog). */
static int env_stored_offset(void *ctx, int32_t p, int64_t *next, char *err, size_t errlen) {
    return restore_partition(ctx, p, next, err, errlen);
}

int replay_start(worker *w, char *err, size_t errlen) {
    int n = 0;
    if (kafka_partition_count(w->k.consumer, w->s->input_topic, 10000, &n, err, errlen)) return -1;
    replay_range *plan = calloc((size_t)n, sizeof *plan);
    if (!plan) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    replay_env env = {w, env_watermarks, env_offsets_for_times, env_stored_offset};
    int rc = replay_plan(&w->s->replay_spec, &env, n, plan, err, errlen);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    int64_t total = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        part_state *p = partitions_get(&w->parts, i);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
        partitions_own(&w->parts, i, plan[i].start);
        p->start = plan[i].start, p->end = plan[i].end;
        total += plan[i].end - plan[i].start;
        rd_kafka_topic_partition_list_add(l, w->s->input_topic, i)->offset = plan[i].start;
        LOG_IF("replay", LOG_AT(LF_TOPIC(w->s->input_topic), LF_PARTITION(i), LF_OFFSET(plan[i].start),
                                LF_COUNT(plan[i].end - plan[i].start)),
               "%s [%d]: %s %lld .. %lld (%lld events)", w->s->input_topic, i,
              plan[i].resumed ? "resuming" : "from", (long long)plan[i].start, (long long)plan[i].end,
              (long long)(plan[i].end - plan[i].start));
    }
    if (rc == 0) {
        rd_kafka_resp_err_t e = rd_kafka_assign(w->k.consumer, l);
        if (e) {
            snprintf(err, errlen, "assign: %s", rd_kafka_err2str(e));
            rc = -1;
        } else {
            w->ever_assigned = 1;
            w->replay_total = total;
            LOG_I("replay", "%lld events to replay over %d partitions, up to the end offsets as of now", (long long)total,
                  n);
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    free(plan);
    return rc;
}

int replay_done(worker *w) {
    int64_t done = 0;
    int finished = 1;
    for (int p = 0; p < w->parts.n; p++) {
        const part_state *ps = &w->parts.p[p];
        if (!ps->owned || ps->end < 0) continue;
        int64_t at = ps->next < 0 ? ps->start : ps->next;
        done += (at < ps->end ? at : ps->end) - ps->start;
        finished &= at >= ps->end;
    }
    double now = clock_mono_s();
    if (finished || now - w->replay_last_log_s >= 2.0) {
        double rate = w->stats->active_s > 0 ? (double)w->stats->applied / w->stats->active_s : 0;
        double left = (double)(w->replay_total - done);
        LOG_IF("replay", LOG_AT(LF_TOPIC(w->s->input_topic), LF_COUNT(done)),
               "%lld / %lld events (%.1f %%), %.0f events/s, %s%.0f s left", (long long)done,
              (long long)w->replay_total, w->replay_total ? 100.0 * (double)done / (double)w->replay_total : 100.0,
              rate, rate > 0 ? "" : "~", rate > 0 ? left / rate : 0.0);
        w->replay_last_log_s = now;
    }
    return finished;
}
