/* restore: brings a partition's local states up to its changelog on assignment (or at a
 * replay's start), and checks every record that comes back from outside the process.
 *
 * When the changelog holds a later checkpoint (its last marker) than the local store:
 *  - incremental: the store's offsets carry the changelog position of the checkpoint they
 *    belong to; when that position is still in the log, only the records after it are read and
 *    written over the local states. This is what brings a store forward after a crash with the
 *    write-ahead log off, which recovers RocksDB to its last flush;
 *  - full: otherwise (no position, or the log no longer holds it) the partition's local states
 *    are dropped first, so a crash mid-restore leaves it "unknown" (restored again), never
 *    half-current, and the whole partition is read.
 * The marker and its position are written last, in the same write as the last records.
 *
 * Restore as a validator: nothing read back is trusted. A tombstone (a compacted topic's
 * delete) deletes the user's state. A record that is not a state of this model (length,
 * header, counters) or claims an applied offset at or past the input's end is quarantined: the
 * record and the reason go to the dead-letter topic, the user's state starts again, a counter
 * and a log line say so, and the worker carries on. A marker past the input's end is reported
 * and not obeyed (it would make every later event count as already applied).
 */
#include <stdio.h>
#include <stdlib.h>

#include "changelog.h"
#include "clock.h"
#include "kafka_clients.h"
#include "log.h"
#include "worker_internal.h"
#include "worker_record.h"

int restore_quarantine(worker *w, const char *topic, int32_t partition, int64_t offset, const char *user,
                       size_t user_len, const void *value, size_t len, const char *why, char *err, size_t errlen) {
    w->stats->quarantined++;
    LOG_WF("restore", LOG_AT(LF_TOPIC(topic), LF_PARTITION(partition), LF_OFFSET(offset), LF_ERROR("state")),
           "%s [%d] offset %lld: the record of a user (id of %zu bytes) is quarantined, its state starts again: %s",
           topic, partition, (long long)offset, user_len, why);
    return dlq_produce_record(w, topic, partition, offset, user, user_len, value, len, "state", why, err, errlen);
}

typedef struct {
    worker *w;
    int32_t partition;
    int64_t input_end;
    int64_t done, total;   /* records read, and about how many the range holds */
    double t0, last_log;
    uint8_t *scratch;      /* (record_size) */
    char err[512];
} restore_ctx;

/* Every 5 s: how far the restore is, its rate and the time left. */
static void log_progress(restore_ctx *x) {
    double now = clock_mono_s();
    if (now - x->last_log < 5.0) return;
    x->last_log = now;
    double rate = (double)x->done / (now - x->t0);
    LOG_IF("restore", LOG_AT(LF_TOPIC(x->w->s->changelog_topic), LF_PARTITION(x->partition), LF_COUNT(x->done)),
           "partition %d: %lld of about %lld changelog records (%.0f/s, about %.0f s left)", x->partition,
           (long long)x->done, (long long)x->total, rate,
           rate > 0 && x->total > x->done ? (double)(x->total - x->done) / rate : 0.0);
}

/* One changelog record into the restore's write batch (written every 4096 records). */
static int restore_record(void *vctx, int64_t offset, const char *user, size_t user_len, const void *value,
                          size_t len) {
    restore_ctx *x = vctx;
    worker *w = x->w;
    char why[256];
    x->done++;
    if (!value) {
        state_batch_delete_state(w->wb, x->partition, user, user_len); /* a tombstone: the user deleted */
    } else if (user_len > CODEC_MAX_ID_BYTES) {
        snprintf(why, sizeof why, "a user id of %zu bytes (at most %d)", user_len, CODEC_MAX_ID_BYTES);
        if (restore_quarantine(w, w->s->changelog_topic, x->partition, offset, user, user_len, value, len, why, x->err,
                               sizeof x->err))
            return -1;
    } else if (record_check_stored(w->m, w->record_size, value, len, x->input_end, x->scratch, why, sizeof why)) {
        if (restore_quarantine(w, w->s->changelog_topic, x->partition, offset, user, user_len, value, len, why, x->err,
                               sizeof x->err))
            return -1;
        state_batch_delete_state(w->wb, x->partition, user, user_len);
    } else {
        state_batch_put_state(w->wb, x->partition, user, user_len, value, len); /* stored form, as written */
    }
    w->restore_records_done++;
    if (state_batch_count(w->wb) >= 4096) {
        if (worker_stop_signalled()) {
            snprintf(x->err, sizeof x->err, "stopped by a signal");
            return -1;
        }
        observe_publish(w, 0);
        log_progress(x);
        if (state_store_write(w->store, w->wb, x->err, sizeof x->err)) return -1;
        state_batch_clear(w->wb);
    }
    return 0;
}

/* Brings partition p's local states up to the changelog, from position (-1: a full restore). */
static int restore_from_changelog(worker *w, int32_t p, int64_t position, int64_t input_end, int64_t *next,
                                  char *err, size_t errlen) {
    char inner[512];
    int64_t lo, hi;
    if (changelog_bounds(w->k.changelog, p, &lo, &hi, inner, sizeof inner)) goto fail;
    int incremental = position >= 0 && position >= lo && position <= hi;
    int64_t from = incremental ? position : lo;
    LOG_IF("restore", LOG_AT(LF_TOPIC(changelog_topic(w->k.changelog)), LF_PARTITION(p), LF_OFFSET(from)),
           "partition %d: restoring from %s, %s (offsets %lld to %lld)", p, changelog_topic(w->k.changelog),
           incremental ? "its tail after the local checkpoint" : "all of it", (long long)from, (long long)hi);
    restore_ctx x = {.w = w, .partition = p, .input_end = input_end, .total = hi - from, .t0 = clock_mono_s()};
    x.last_log = x.t0;
    if (!(x.scratch = malloc(w->record_size))) {
        snprintf(inner, sizeof inner, "out of memory");
        goto fail;
    }
    changelog_restored r;
    state_batch_clear(w->wb);
    int rc = (!incremental && state_store_drop_partition(w->store, p, inner, sizeof inner)) ||
             changelog_restore(w->k.changelog, p, from, input_end, restore_record, &x, &r, inner, sizeof inner);
    if (!rc && r.next_offset >= 0) state_batch_put_offset(w->wb, p, r.next_offset, r.position);
    if (!rc) rc = state_store_write(w->store, w->wb, inner, sizeof inner);
    state_batch_clear(w->wb);
    free(x.scratch);
    if (rc) {
        snprintf(err, errlen, "partition %d: restore from %s: %s%s%s", p, changelog_topic(w->k.changelog), inner,
                 x.err[0] ? ": " : "", x.err);
        return -1;
    }
    double secs = clock_mono_s() - x.t0;
    w->stats->restored_partitions++;
    w->stats->restored_incremental += incremental;
    w->stats->restored_records += r.records;
    w->stats->restore_s += secs;
    *next = r.next_offset;
    LOG_IF("restore", LOG_AT(LF_TOPIC(w->s->input_topic), LF_PARTITION(p), LF_OFFSET(*next), LF_COUNT(r.records),
                             LF_DURATION_MS(secs * 1e3)),
           "partition %d: restored %lld records (%s) in %.3f s; resuming at offset %lld", p, (long long)r.records,
           incremental ? "the tail" : "all", secs, (long long)*next);
    return 0;
fail:
    snprintf(err, errlen, "partition %d: %s", p, inner);
    return -1;
}

int restore_partition(worker *w, int32_t p, int64_t *next, char *err, size_t errlen) {
    int64_t local = -1, position = -1, lo_in, hi_in, marker = -1;
    char inner[512];
    *next = -1;
    part_state *ps = partitions_get(&w->parts, p);
    if (!ps) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (state_store_get_offset(w->store, p, &local, &position, err, errlen)) return -1;
    rd_kafka_resp_err_t e = kafka_watermarks(w->k.consumer, w->s->input_topic, p, &lo_in, &hi_in, 10000);
    if (e) {
        char what[320];
        snprintf(what, sizeof what, "%s [%d]: watermarks", w->s->input_topic, p);
        kafka_wait_error(w->k.consumer, e, what, 10000, err, errlen);
        return -1;
    }
    ps->input_end = hi_in;
    if (local > hi_in) { /* the store is of another incarnation of the topic: its users' offsets would skip events */
        LOG_WF("restore", LOG_AT(LF_TOPIC(w->s->input_topic), LF_PARTITION(p), LF_OFFSET(local)),
               "partition %d: the local state is at offset %lld, past the input's end %lld: not used", p,
               (long long)local, (long long)hi_in);
        if (state_store_drop_partition(w->store, p, err, errlen)) return -1;
        local = position = -1;
    }
    if (!w->k.changelog) {
        *next = local;
        return 0;
    }
    if (changelog_last_marker(w->k.changelog, p, hi_in, &marker, inner, sizeof inner)) {
        snprintf(err, errlen, "partition %d: %s", p, inner);
        return -1;
    }
    if (marker <= local) {
        if (marker < local)
            LOG_WF("restore", LOG_AT(LF_TOPIC(w->s->input_topic), LF_PARTITION(p), LF_OFFSET(local)),
                   "partition %d: local state (offset %lld) is ahead of the changelog (%lld); using it", p,
                   (long long)local, (long long)marker);
        *next = local;
        return 0;
    }
    LOG_IF("restore", LOG_AT(LF_TOPIC(w->s->input_topic), LF_PARTITION(p), LF_OFFSET(local)),
           "partition %d: local state at offset %lld, changelog at %lld", p, (long long)local, (long long)marker);
    w->restoring = 1;
    observe_publish(w, 1);
    int rc = restore_from_changelog(w, p, local >= 0 ? position : -1, hi_in, next, err, errlen);
    w->restoring = 0;
    return rc;
}
