/* rebalance: the consumer group moving partitions to and from this worker. Rebalance callbacks
 * run inside the consume call, so they always see a batch boundary: every batch before them is
 * fully applied.
 *
 *   assigned: land a checkpoint still in flight (a restore must not run beside it), bring each
 *             partition up to its changelog, resume exactly where its state stands;
 *   revoked:  make everything applied so far durable (the next owner starts from the
 *             changelog), then forget what was held of those partitions;
 *   lost:     forget them without writing anything of them (on_lost).
 * A partition that cannot be brought up to date is fatal: the worker stops with a non-zero exit
 * and checkpoints nothing more, so no offset moves past events whose states it could not load.
 */
#include <string.h>

#include "log.h"
#include "worker_internal.h"

static void on_assign(worker *w, rd_kafka_topic_partition_list_t *list) {
    char err[512];
    if (!w->failed && checkpoint_finish(w->ck, err, sizeof err))
        worker_fail(w, "checkpoint before assignment: %s", err);
    if (w->failed) checkpoint_abandon(w->ck); /* its writer reads the cache's keys: let it end first */
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (strcmp(tp->topic, w->s->input_topic) != 0) continue;
        if (!partitions_get(&w->parts, tp->partition)) {
            worker_fail(w, "out of memory");
            break;
        }
        int64_t next = -1;
        if (!w->failed && restore_partition(w, tp->partition, &next, err, sizeof err)) {
            if (!worker_stop_signalled()) {
                worker_fail(w, "partition %d cannot be brought up to date: %s", tp->partition, err);
            } else { /* a stop cut the restore short: the partition is not taken, the next start restores it */
                LOG_I("worker", "partition %d: restore stopped (%s)", tp->partition, err);
                continue;
            }
        }
        state_cache_drop_partition(w->cache, tp->partition); /* whatever it held is not current */
        if (w->ra) readahead_drop_partition(w->ra, tp->partition); /* fetched for a former owner */
        if (w->failed) {
            /* Owned but never resumed: its records are skipped as unowned, nothing of it is written. */
            tp->offset = RD_KAFKA_OFFSET_INVALID;
            continue;
        }
        partitions_own(&w->parts, tp->partition, next);
        if (next >= 0) {
            tp->offset = next; /* resume exactly where the state stands, whatever Kafka committed */
            LOG_I("worker", "assigned %s [%d]: resuming at offset %lld", tp->topic, tp->partition, (long long)next);
        } else {
            tp->offset = RD_KAFKA_OFFSET_INVALID; /* committed offset, else auto.offset.reset */
            LOG_I("worker", "assigned %s [%d]: no state yet; starting from the committed offset "
                  "(or auto.offset.reset)", tp->topic, tp->partition);
        }
    }
}

static void on_revoke(worker *w, rd_kafka_topic_partition_list_t *list) {
    char err[512];
    if (w->failed) checkpoint_abandon(w->ck); /* its writer reads the cache's keys: let it end first */
    else if (checkpoint_now(w->ck, err, sizeof err)) worker_fail(w, "checkpoint on revocation: %s", err);
    for (int i = 0; i < list->cnt; i++) {
        int32_t p = list->elems[i].partition;
        /* Not ours any more: forget what we held, so a later assignment starts clean. */
        partitions_release(&w->parts, p);
        state_cache_drop_partition(w->cache, p);
        if (w->ra) readahead_drop_partition(w->ra, p);
    }
    LOG_I("worker", "revoked %d partition(s); %d remain", list->cnt, w->parts.owned);
}

/* Partitions taken away without a revocation (a session timeout, a fenced member): another
 * member may already apply them, so nothing of them is made durable here; what this worker
 * applied of them since its last checkpoint is dropped, and their next owner applies it again
 * from the changelog's checkpoint. A flight in progress is abandoned (its records of the other
 * partitions are dirty again, for the next checkpoint). */
static void on_lost(worker *w, rd_kafka_topic_partition_list_t *list) {
    LOG_W("worker", "%d partition(s) lost: the group gave them to another member; what was applied of them since the "
          "last checkpoint is dropped (their next owner applies it again)", list->cnt);
    checkpoint_abandon(w->ck);
    for (int i = 0; i < list->cnt; i++) {
        int32_t p = list->elems[i].partition;
        partitions_release(&w->parts, p);
        state_cache_drop_partition(w->cache, p);
        if (w->ra) readahead_drop_partition(w->ra, p);
    }
}

void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *list, void *opaque) {
    worker *w = opaque;
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    w->stats->rebalances++;
    LOG_I("worker", "rebalance (%s protocol): %s %d partition(s), %d owned before", rd_kafka_rebalance_protocol(rk),
          err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned" : "revoking", list->cnt, w->parts.owned);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        w->ever_assigned = 1;
        on_assign(w, list);
        if (cooperative) e = rd_kafka_incremental_assign(rk, list);
        else re = rd_kafka_assign(rk, list);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) LOG_W("worker", "rebalance error: %s", rd_kafka_err2str(err));
        if (rd_kafka_assignment_lost(rk)) {
            on_lost(w, list);
        } else {
            on_revoke(w, list);
            rd_kafka_commit(rk, NULL, 1); /* what the checkpoint stored; the state store has it anyway */
        }
        if (cooperative) e = rd_kafka_incremental_unassign(rk, list);
        else re = rd_kafka_assign(rk, NULL);
    }
    if (e) {
        LOG_E("worker", "applying rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    if (re) LOG_E("worker", "applying rebalance: %s", rd_kafka_err2str(re));
}
