/* restore: brings a partition's local states up to its changelog on assignment (or at a
 * replay's start), when the changelog holds a later checkpoint than the local store: the
 * partition moved here from another worker, or the state dir was lost.
 *
 * Dropping the local partition first means a crash mid-restore leaves it "unknown" (restored
 * again in full next time), never half-current. The marker is written last, in the same write
 * as the last records.
 */
#include <stdio.h>

#include "changelog.h"
#include "clock.h"
#include "log.h"
#include "worker_internal.h"
#include "worker_record.h"

typedef struct {
    worker *w;
    int32_t partition;
    int64_t rejected;
    char err[256];
} restore_ctx;

/* One changelog record into the restore's write batch (written every 4096 records). */
static int restore_record(void *vctx, const char *user, size_t user_len, const void *value, size_t len) {
    restore_ctx *x = vctx;
    worker *w = x->w;
    if (len < RECORD_MIN || len > w->record_size || user_len == 0 || user_len > CODEC_MAX_ID_BYTES ||
        model_state_check(w->m, record_blob_c(value), x->err, sizeof x->err)) {
        if (!x->rejected++)
            LOG_E("restore", "partition %d: changelog record of user '%.*s' does not fit this model (%zu bytes): %s",
                  x->partition, (int)(user_len > 64 ? 64 : user_len), user, len, x->err);
        return -1;
    }
    state_batch_put_state(w->wb, x->partition, user, user_len, value, len); /* stored form, as written */
    w->restore_records_done++;
    if (state_batch_count(w->wb) >= 4096) {
        observe_publish(w, 0);
        if (state_store_write(w->store, w->wb, x->err, sizeof x->err)) return -1;
        state_batch_clear(w->wb);
    }
    return 0;
}

/* Replaces partition p's local states with the changelog's, up to its last marker. */
static int restore_from_changelog(worker *w, int32_t p, int64_t *marker, char *err, size_t errlen) {
    double t0 = clock_mono_s();
    restore_ctx x = {.w = w, .partition = p};
    int64_t records = 0;
    char inner[512];
    state_batch_clear(w->wb);
    int rc = state_store_drop_partition(w->store, p, inner, sizeof inner) ||
             changelog_restore(w->k.changelog, p, restore_record, &x, marker, &records, inner, sizeof inner);
    if (!rc && *marker >= 0) state_batch_put_offset(w->wb, p, *marker);
    if (!rc) rc = state_store_write(w->store, w->wb, inner, sizeof inner);
    state_batch_clear(w->wb);
    if (rc) {
        snprintf(err, errlen, "partition %d: restore from %s: %s%s%s", p, changelog_topic(w->k.changelog), inner,
                 x.err[0] ? ": " : "", x.err);
        return -1;
    }
    double secs = clock_mono_s() - t0;
    w->stats->restored_partitions++;
    w->stats->restored_records += records;
    w->stats->restore_s += secs;
    LOG_I("restore", "partition %d: restored %lld records in %.3f s; resuming at offset %lld", p, (long long)records,
          secs, (long long)*marker);
    return 0;
}

int restore_partition(worker *w, int32_t p, int64_t *next, char *err, size_t errlen) {
    int64_t local = -1, marker = -1;
    *next = -1;
    if (state_store_get_offset(w->store, p, &local, err, errlen)) return -1;
    if (!w->k.changelog) {
        *next = local;
        return 0;
    }
    char inner[512];
    if (changelog_last_marker(w->k.changelog, p, &marker, inner, sizeof inner)) {
        snprintf(err, errlen, "partition %d: %s", p, inner);
        return -1;
    }
    if (marker <= local) {
        if (marker < local)
            LOG_W("restore", "partition %d: local state (offset %lld) is ahead of the changelog (%lld); using it", p,
                  (long long)local, (long long)marker);
        *next = local;
        return 0;
    }
    LOG_I("restore", "partition %d: local state at offset %lld, changelog at %lld: restoring from %s", p,
          (long long)local, (long long)marker, changelog_topic(w->k.changelog));
    w->restoring = 1;
    observe_publish(w, 1);
    int rc = restore_from_changelog(w, p, next, err, errlen);
    w->restoring = 0;
    return rc;
}
