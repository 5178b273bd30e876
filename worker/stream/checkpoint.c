/* checkpoint: see checkpoint.h for the steps and why their order makes what is durable exact.
 *
 * Why a record copied a few loop turns after the cut is still right:
 *  - the offsets written with the checkpoint are the cut's (each partition's next offset when
 *    it began);
 *  - each record carries the offset of its user's last applied event, and a replay skips
 *    events at or below it, so a record newer than the cut is never applied twice;
 *  - a record changed after its copy is dirty again (state_cache: flushing + dirty) and goes
 *    into the next checkpoint; a user first dirtied after the cut is not in this one at all;
 *  - the outputs' epoch turns only when the last slice is copied, so the writer waits for the
 *    acknowledgement of every output whose event any copied record includes.
 * A caller that waits (checkpoint_now, checkpoint_finish) applies no event until the flight has
 * landed, so the records still to copy are written from the cache as they stand, not copied.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "changelog.h"
#include "checkpoint.h"
#include "clock.h"
#include "log.h"
#include "worker_record.h"

/* A record of the flight, keyed as RocksDB orders it (state_store.h: be32 partition, then the
 * user's bytes): a memtable takes a batch's keys in order with far fewer comparisons than in
 * hash order. */
typedef struct {
    int32_t partition;
    const char *user;   /* the cache entry's key: flushing entries are neither evicted nor dropped */
    size_t user_len;
    long entry;
    const uint8_t *rec; /* the record to write: in the snapshot, or the cache entry itself */
    size_t len;         /* its stored length (worker_record.h) */
} ckpt_entry;

struct checkpoint {
    checkpoint_io io;
    state_cache *cache;
    partitions *parts;
    size_t rs;          /* record size */
    int changelog;
    size_t slice;
    worker_stats *stats;

    unsigned epoch;             /* the epoch outputs are produced in now */
    atomic_long pending[2];     /* outputs + dead letters not yet acknowledged, by epoch parity */

    /* the flight */
    int active, writing;
    atomic_int done;            /* the writer finished (rc, err) */
    pthread_t thread;
    unsigned flight_epoch;
    size_t n, copied;           /* records in the flight; how many have their rec set */
    int turns;
    ckpt_entry *e;              /* (n) */
    size_t e_cap;
    uint8_t *snap;              /* (n, rs) copied records */
    size_t snap_cap;
    int nparts, parts_cap;      /* partitions at the cut (the table may grow meanwhile) */
    int64_t *offsets;           /* (nparts) next offset to write, -1: not advanced */
    uint8_t (*markers)[8];      /* (nparts) their changelog marker values */
    int32_t *commit_parts;      /* (nparts) scratch for offsets_store */
    int64_t *commit_offs;
    state_batch *wb;
    int rc;
    char err[512];
    double t0, last_s;
    double writer_changelog_s, writer_store_s;
    atomic_int cancel;          /* the writer's changelog flush gives up (checkpoint_abandon) */
};

int checkpoint_new(checkpoint **out, const checkpoint_io *io, state_cache *cache, partitions *parts,
                   size_t record_size, int changelog, size_t slice, worker_stats *stats) {
    checkpoint *ck = calloc(1, sizeof *ck);
    if (!ck || !(ck->wb = state_batch_new())) {
        free(ck);
        return -1;
    }
    ck->io = *io;
    ck->cache = cache, ck->parts = parts, ck->rs = record_size;
    ck->changelog = changelog, ck->slice = slice ? slice : 1, ck->stats = stats;
    ck->last_s = clock_mono_s();
    *out = ck;
    return 0;
}

void checkpoint_free(checkpoint *ck) {
    if (!ck) return;
    checkpoint_abandon(ck);
    state_batch_free(ck->wb);
    free(ck->e);
    free(ck->snap);
    free(ck->offsets);
    free(ck->markers);
    free(ck->commit_parts);
    free(ck->commit_offs);
    free(ck);
}

/* ---- epochs ---------------------------------------------------------------------------- */

void *checkpoint_tag_output(checkpoint *ck, int64_t in_ts) {
    unsigned parity = ck->epoch & 1u;
    atomic_fetch_add_explicit(&ck->pending[parity], 1, memory_order_relaxed);
    return (void *)(uintptr_t)(((uint64_t)(in_ts > 0 ? in_ts : 0) << 1) | parity);
}

void checkpoint_untag_output(checkpoint *ck, void *tag) {
    atomic_fetch_sub_explicit(&ck->pending[(uintptr_t)tag & 1u], 1, memory_order_relaxed);
}

int64_t checkpoint_output_done(checkpoint *ck, void *tag) {
    checkpoint_untag_output(ck, tag);
    return (int64_t)((uintptr_t)tag >> 1);
}

/* ---- the flight ------------------------------------------------------------------------ */

static int entry_cmp(const void *a, const void *b) {
    const ckpt_entry *x = a, *y = b;
    if (x->partition != y->partition) return (uint32_t)x->partition < (uint32_t)y->partition ? -1 : 1;
    size_t n = x->user_len < y->user_len ? x->user_len : y->user_len;
    int c = memcmp(x->user, y->user, n);
    if (c) return c;
    return x->user_len < y->user_len ? -1 : x->user_len > y->user_len;
}

/* The writer thread: changelog (records, then markers) -> acknowledged -> one atomic store
 * write. It touches the flight (entries, snapshot, offsets), the flushing entries' keys and
 * records, and the I/O's changelog and store, which the main thread does not use meanwhile. */
static void *writer(void *arg) {
    checkpoint *ck = arg;
    int rc = 0;
    /* Below the event loop: on a busy machine a checkpoint lands later, events are not delayed. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10))
        LOG_D("checkpoint", "writer: setpriority: %s", strerror(errno));
    double t0 = clock_mono_s();
    if (ck->n > 1) qsort(ck->e, ck->n, sizeof *ck->e, entry_cmp); /* (e is NULL until a checkpoint has records) */
    if (ck->changelog) {
        for (size_t i = 0; i < ck->n && !rc; i++) {
            const ckpt_entry *k = &ck->e[i];
            rc = ck->io.changelog_put(ck->io.ctx, k->partition, k->user, k->user_len, k->rec, k->len, ck->err,
                                      sizeof ck->err);
        }
        for (int p = 0; p < ck->nparts && !rc; p++)
            if (ck->offsets[p] >= 0)
                rc = ck->io.changelog_put(ck->io.ctx, p, "", 0, ck->markers[p], 8, ck->err, sizeof ck->err);
        /* always: every record put must be acknowledged before the snapshot may go */
        int frc = ck->io.changelog_flush(ck->io.ctx, &ck->cancel, rc ? NULL : ck->err, rc ? 0 : sizeof ck->err);
        if (!rc) rc = frc;
    }
    double t1 = clock_mono_s();
    if (!rc) {
        state_batch_clear(ck->wb);
        for (size_t i = 0; i < ck->n; i++) {
            const ckpt_entry *k = &ck->e[i];
            state_batch_put_state(ck->wb, k->partition, k->user, k->user_len, k->rec, k->len);
        }
        for (int p = 0; p < ck->nparts; p++)
            if (ck->offsets[p] >= 0)
                state_batch_put_offset(ck->wb, p, ck->offsets[p],
                                       ck->changelog ? ck->io.changelog_position(ck->io.ctx, p) : -1);
        rc = ck->io.store_write(ck->io.ctx, ck->wb, ck->err, sizeof ck->err);
    }
    ck->writer_changelog_s = t1 - t0;
    ck->writer_store_s = clock_mono_s() - t1;
    ck->rc = rc;
    atomic_store(&ck->done, 1);
    return NULL;
}

/* Sets the records of the next max entries of the flight: copies them into the snapshot (copy),
 * or points at the cache entries themselves (the caller applies nothing until the flight has
 * landed). The last one turns the outputs' epoch. */
static void take_slice(checkpoint *ck, size_t max, int copy) {
    double t0 = clock_mono_s();
    size_t end = ck->n - ck->copied > max ? ck->copied + max : ck->n;
    for (size_t i = ck->copied; i < end; i++) {
        ckpt_entry *k = &ck->e[i];
        k->entry = state_cache_flush_at(ck->cache, i);
        k->partition = state_cache_partition(ck->cache, k->entry);
        k->user = state_cache_user(ck->cache, k->entry, &k->user_len);
        const uint8_t *rec = state_cache_record(ck->cache, k->entry);
        k->len = record_stored_len(rec, ck->rs);
        if (copy) {
            memcpy(ck->snap + i * ck->rs, rec, k->len);
            rec = ck->snap + i * ck->rs;
        }
        k->rec = rec;
    }
    ck->copied = end;
    ck->turns++;
    double t1 = clock_mono_s();
    ck->stats->stage_s[STAGE_STATE] += t1 - t0;
    if (end < ck->n) return;
    ck->flight_epoch = ck->epoch++; /* outputs from here on belong to the next checkpoint */
    LOG_D("checkpoint", "snapshot of %zu records in %d loop turns, %.1f ms", ck->n, ck->turns, (t1 - ck->t0) * 1e3);
}

static int reserve(checkpoint *ck, size_t n, char *err, size_t errlen) {
    int np = ck->parts->n;
    if (n > ck->e_cap) {
        size_t cap = ck->e_cap ? ck->e_cap : 1024;
        while (cap < n) cap *= 2;
        ckpt_entry *e = realloc(ck->e, cap * sizeof *e);
        if (!e) goto oom;
        ck->e = e, ck->e_cap = cap;
    }
    if (n * ck->rs > ck->snap_cap) {
        size_t cap = ck->snap_cap ? ck->snap_cap : 1 << 20;
        while (cap < n * ck->rs) cap *= 2;
        uint8_t *s = realloc(ck->snap, cap);
        if (!s) goto oom;
        ck->snap = s, ck->snap_cap = cap;
    }
    if (np > ck->parts_cap) {
        int64_t *o = realloc(ck->offsets, (size_t)np * sizeof *o);
        if (o) ck->offsets = o;
        uint8_t(*m)[8] = realloc(ck->markers, (size_t)np * sizeof *m);
        if (m) ck->markers = m;
        int32_t *cp = realloc(ck->commit_parts, (size_t)np * sizeof *cp);
        if (cp) ck->commit_parts = cp;
        int64_t *co = realloc(ck->commit_offs, (size_t)np * sizeof *co);
        if (co) ck->commit_offs = co;
        if (!o || !m || !cp || !co) goto oom;
        ck->parts_cap = np;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory for a checkpoint of %zu records", n);
    return -1;
}

/* The cut: the partitions' offsets, the dirty records become the flight. copy: take the first
 * slice now (a checkpoint in the background). */
static int begin_flight(checkpoint *ck, int copy, char *err, size_t errlen) {
    size_t n = state_cache_dirty_count(ck->cache);
    if (!n && !partitions_advanced(ck->parts)) {
        ck->last_s = clock_mono_s();
        return 0;
    }
    double t0 = clock_mono_s();
    if (reserve(ck, n, err, errlen)) return -1;
    ck->nparts = ck->parts->n;
    for (int p = 0; p < ck->nparts; p++) {
        const part_state *ps = &ck->parts->p[p];
        ck->offsets[p] = ps->next > ps->checkpointed ? ps->next : -1;
        if (ck->offsets[p] >= 0) changelog_marker_value(ck->markers[p], ps->next);
    }
    ck->n = state_cache_begin_flush(ck->cache); /* the dirty list becomes the flush list, in order */
    ck->copied = 0, ck->turns = 0;
    ck->active = 1, ck->writing = 0, ck->rc = 0, ck->err[0] = 0;
    atomic_store(&ck->done, 0);
    ck->t0 = t0;
    ck->stats->stage_s[STAGE_STATE] += clock_mono_s() - t0;
    if (copy) take_slice(ck, ck->slice, 1);
    ck->last_s = clock_mono_s();
    return 0;
}

/* Lands a flight the writer completed: the records become evictable, the offsets stored. */
static void land(checkpoint *ck) {
    state_cache_end_flush(ck->cache);
    int n = 0;
    for (int p = 0; p < ck->nparts; p++) {
        if (ck->offsets[p] < 0) continue;
        part_state *ps = &ck->parts->p[p];
        if (ck->offsets[p] > ps->checkpointed) ps->checkpointed = ck->offsets[p];
        if (ps->owned) ck->commit_parts[n] = p, ck->commit_offs[n++] = ck->offsets[p];
    }
    if (n) ck->io.offsets_store(ck->io.ctx, n, ck->commit_parts, ck->commit_offs);
    if (ck->changelog) ck->stats->changelog_records += (int64_t)ck->n;
    ck->stats->checkpoints++;
    ck->active = 0;
    LOG_D("checkpoint", "%zu records durable %.1f ms after the cut (changelog %.1f ms, store %.1f ms)", ck->n,
          (clock_mono_s() - ck->t0) * 1e3, ck->writer_changelog_s * 1e3, ck->writer_store_s * 1e3);
}

/* Moves the flight on: the snapshot's next slice, the writer once the epoch's outputs are
 * acknowledged, the landing once the writer is done. wait: until it has landed. */
static int progress(checkpoint *ck, int wait, char *err, size_t errlen) {
    double started = clock_mono_s(), warned = started;
    while (ck->active) {
        double deadline = wait ? ck->io.deadline(ck->io.ctx) : 0;
        if (deadline > 0 && clock_mono_s() > deadline) {
            checkpoint_abandon(ck);
            snprintf(err, errlen, "the checkpoint did not land in time (%.0f s waited for the broker); what was "
                     "applied since the last checkpoint will be applied again at the next start",
                     clock_mono_s() - started);
            return -1;
        }
        if (ck->copied < ck->n) {
            take_slice(ck, wait ? SIZE_MAX : ck->slice, !wait);
            if (ck->copied < ck->n) return 0;
        }
        ck->io.poll_outputs(ck->io.ctx, wait && !ck->writing ? 5 : 0);
        if (!ck->writing) {
            if (ck->io.outputs_failed(ck->io.ctx, err, errlen)) {
                checkpoint_abandon(ck);
                return -1;
            }
            if (atomic_load(&ck->pending[ck->flight_epoch & 1u]) == 0) {
                if (pthread_create(&ck->thread, NULL, writer, ck)) {
                    snprintf(err, errlen, "cannot start the checkpoint writer thread");
                    checkpoint_abandon(ck);
                    return -1;
                }
                ck->writing = 1;
                if (wait) ck->stats->stage_s[STAGE_PRODUCE] += clock_mono_s() - started;
            }
        }
        if (ck->writing && atomic_load(&ck->done)) {
            pthread_join(ck->thread, NULL);
            ck->writing = 0;
            if (wait) {
                ck->stats->stage_s[STAGE_CHANGELOG] += ck->writer_changelog_s;
                ck->stats->stage_s[STAGE_STATE] += ck->writer_store_s;
            }
        }
        if (!ck->writing && atomic_load(&ck->done)) {
            if (ck->rc) {
                snprintf(err, errlen, "%s", ck->err);
                checkpoint_abandon(ck);
                return -1;
            }
            land(ck);
            return 0;
        }
        if (!wait) return 0;
        if (ck->writing) { /* wait for the writer in steps: a deadline may come meanwhile */
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (clock_mono_s() - warned >= 10) {
            warned = clock_mono_s();
            LOG_W("checkpoint", "still waiting for the broker to acknowledge the outputs of a checkpoint (%.0f s)",
                  warned - started);
        }
    }
    return 0;
}

int checkpoint_begin(checkpoint *ck, char *err, size_t errlen) {
    if (ck->active) return 0;
    return begin_flight(ck, 1, err, errlen);
}

int checkpoint_progress(checkpoint *ck, char *err, size_t errlen) { return progress(ck, 0, err, errlen); }

int checkpoint_finish(checkpoint *ck, char *err, size_t errlen) { return progress(ck, 1, err, errlen); }

int checkpoint_now(checkpoint *ck, char *err, size_t errlen) {
    if (progress(ck, 1, err, errlen) || begin_flight(ck, 0, err, errlen)) return -1;
    return progress(ck, 1, err, errlen);
}

void checkpoint_abandon(checkpoint *ck) {
    if (ck->writing) { /* it only waits on its own I/O, which gives up: joining it needs nothing from us */
        atomic_store(&ck->cancel, 1);
        pthread_join(ck->thread, NULL);
        atomic_store(&ck->cancel, 0);
        ck->writing = 0;
    }
    if (ck->active) state_cache_abort_flush(ck->cache);
    ck->active = 0;
}

int checkpoint_in_flight(const checkpoint *ck) { return ck->active; }

double checkpoint_last_s(const checkpoint *ck) { return ck->last_s; }
