/* test_checkpoint: the checkpoint's steps and their order (worker/stream/checkpoint.h), with a
 * recorder in place of Kafka and RocksDB.
 *
 * What must hold whatever the timing: no changelog record before every output of the cut's
 * epoch is acknowledged; the markers after the records; the store write after the changelog is
 * acknowledged; the consumer offsets after the store write; nothing after a failed step; the
 * records and offsets written are the cut's; a record changed after its copy goes into the next
 * checkpoint. The background path (begin/progress) and the waiting one (now) are both run.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "checkpoint.h"
#include "clock.h"
#include "worker_record.h"

#define RS (RECORD_MIN + 24) /* record size: the header, then 24 bytes of "state" */

typedef enum { EV_PUT, EV_FLUSH, EV_STORE, EV_OFFSETS } ev_kind;

typedef struct {
    ev_kind kind;
    int32_t partition; /* EV_PUT */
    char key[16];
    uint8_t value[RS];
    size_t len;
    size_t count;      /* EV_STORE: the batch's entries; EV_OFFSETS: partitions */
    int32_t parts[8];
    int64_t offs[8];
} ev;

typedef struct {
    pthread_mutex_t mu;
    ev log[256];
    int n;
    int fail_outputs, fail_put, fail_flush, fail_store;
    int hang_flush;      /* the flush waits for acknowledgements that never come, until cancelled */
    double deadline;     /* what io_deadline answers */
    /* outputs the "broker" has not acknowledged yet; poll delivers them when deliver_on_poll */
    void *tags[64];
    int n_tags, deliver_on_poll;
    checkpoint *ck;
} recorder;

static ev *record(recorder *r, ev_kind k) {
    pthread_mutex_lock(&r->mu);
    ev *e = r->n < 256 ? &r->log[r->n++] : &r->log[255];
    memset(e, 0, sizeof *e);
    e->kind = k;
    pthread_mutex_unlock(&r->mu);
    return e;
}

static void deliver_all(recorder *r) {
    for (int i = 0; i < r->n_tags; i++) checkpoint_output_done(r->ck, r->tags[i]);
    r->n_tags = 0;
}

static void io_poll(void *ctx, int timeout_ms) {
    recorder *r = ctx;
    (void)timeout_ms;
    if (r->deliver_on_poll) deliver_all(r);
}

static int io_outputs_failed(void *ctx, char *err, size_t errlen) {
    recorder *r = ctx;
    if (r->fail_outputs) snprintf(err, errlen, "an output was refused");
    return r->fail_outputs ? -1 : 0;
}

static int io_put(void *ctx, int32_t p, const char *key, size_t key_len, const void *value, size_t len, char *err,
                  size_t errlen) {
    recorder *r = ctx;
    if (r->fail_put) {
        snprintf(err, errlen, "put refused");
        return -1;
    }
    ev *e = record(r, EV_PUT);
    e->partition = p;
    memcpy(e->key, key, key_len < 15 ? key_len : 15);
    memcpy(e->value, value, len <= RS ? len : RS);
    e->len = len;
    return 0;
}

static int io_flush(void *ctx, const atomic_int *cancel, char *err, size_t errlen) {
    recorder *r = ctx;
    while (r->hang_flush && !atomic_load(cancel)) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (r->hang_flush) {
        if (err) snprintf(err, errlen, "gave up");
        return -1;
    }
    record(r, EV_FLUSH);
    if (r->fail_flush && err) snprintf(err, errlen, "changelog refused");
    return r->fail_flush ? -1 : 0;
}

static int64_t io_position(void *ctx, int32_t p) {
    (void)ctx;
    return 1000 + p; /* what the markers' delivery reports would say */
}

static int io_store(void *ctx, state_batch *b, char *err, size_t errlen) {
    recorder *r = ctx;
    record(r, EV_STORE)->count = state_batch_count(b);
    if (r->fail_store) snprintf(err, errlen, "store refused");
    return r->fail_store ? -1 : 0;
}

static double io_deadline(void *ctx) { return ((recorder *)ctx)->deadline; }

static void io_offsets(void *ctx, int n, const int32_t *parts, const int64_t *offs) {
    recorder *r = ctx;
    ev *e = record(r, EV_OFFSETS);
    e->count = (size_t)n;
    for (int i = 0; i < n && i < 8; i++) e->parts[i] = parts[i], e->offs[i] = offs[i];
}

typedef struct {
    recorder r;
    state_cache *cache;
    partitions parts;
    checkpoint *ck;
    worker_stats stats;
} fixture;

static void setup(fixture *f, int changelog, size_t slice) {
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->r.mu, NULL);
    REQUIRE(state_cache_new(&f->cache, 64, RS) == 0, "state_cache_new");
    checkpoint_io io = {&f->r, io_poll, io_outputs_failed, io_put, io_flush, io_position, io_store, io_offsets,
                        io_deadline};
    REQUIRE(checkpoint_new(&f->ck, &io, f->cache, &f->parts, RS, changelog, slice, &f->stats) == 0,
            "checkpoint_new");
    f->r.ck = f->ck;
}

static void teardown(fixture *f) {
    checkpoint_free(f->ck);
    state_cache_free(f->cache);
    partitions_free(&f->parts);
    pthread_mutex_destroy(&f->r.mu);
}

/* Applies an "event" to user (partition p): the record's last offset and a fill byte, dirty. */
static void apply(fixture *f, int32_t p, const char *user, int64_t offset, uint8_t fill) {
    long e = state_cache_find(f->cache, p, user, strlen(user));
    if (e < 0) e = state_cache_insert(f->cache, p, user, strlen(user));
    REQUIRE(e >= 0, "insert %s", user);
    uint8_t *rec = state_cache_record(f->cache, e);
    memset(rec, 0, RS);
    record_set_last_offset(rec, offset);
    memset(rec + RECORD_MIN, fill, RS - RECORD_MIN);
    state_cache_mark_dirty(f->cache, e);
    part_state *ps = partitions_get(&f->parts, p);
    if (ps->next <= offset) ps->next = offset + 1;
}

static void *output(fixture *f) {
    void *t = checkpoint_tag_output(f->ck, 1000);
    f->r.tags[f->r.n_tags++] = t;
    return t;
}

/* Runs checkpoint_progress until the flight lands or fails. */
static int progress_until_landed(fixture *f) {
    char err[256];
    for (int i = 0; i < 100000 && checkpoint_in_flight(f->ck); i++) {
        if (checkpoint_progress(f->ck, err, sizeof err)) return -1;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return checkpoint_in_flight(f->ck) ? -2 : 0;
}

static int count(const recorder *r, ev_kind k) {
    int n = 0;
    for (int i = 0; i < r->n; i++) n += r->log[i].kind == k;
    return n;
}

/* The log holds exactly: puts of the records (in key order), a marker per advanced partition,
 * a flush, a store write, the offsets. want_users: "p:user" in key order. */
static void check_sequence(const recorder *r, int from, const char *const *want_users, int n_users,
                           const int32_t *mark_parts, const int64_t *mark_offs, int n_marks, const char *what) {
    int i = from;
    for (int k = 0; k < n_users; k++, i++) {
        char got[40];
        snprintf(got, sizeof got, "%d:%s", r->log[i].partition, r->log[i].key);
        CHECK(i < r->n && r->log[i].kind == EV_PUT && !strcmp(got, want_users[k]), "%s: step %d: want put %s, got %s",
              what, i, want_users[k], got);
    }
    for (int k = 0; k < n_marks; k++, i++) {
        int64_t off = (int64_t)record_last_offset(r->log[i].value); /* a marker: le64, the same layout */
        CHECK(i < r->n && r->log[i].kind == EV_PUT && r->log[i].key[0] == 0 && r->log[i].partition == mark_parts[k] &&
                  r->log[i].len == 8 && off == mark_offs[k],
              "%s: step %d: want the marker of partition %d at %lld", what, i, mark_parts[k], (long long)mark_offs[k]);
    }
    CHECK(i < r->n && r->log[i].kind == EV_FLUSH, "%s: step %d: want the changelog flushed", what, i);
    i++;
    CHECK(i < r->n && r->log[i].kind == EV_STORE && r->log[i].count == (size_t)(n_users + n_marks),
          "%s: step %d: want one store write of %d entries, got %zu", what, i, n_users + n_marks,
          i < r->n ? r->log[i].count : 0);
    i++;
    CHECK(i < r->n && r->log[i].kind == EV_OFFSETS && r->log[i].count == (size_t)n_marks,
          "%s: step %d: want the offsets of %d partitions stored", what, i, n_marks);
    for (int k = 0; i < r->n && k < n_marks; k++)
        CHECK(r->log[i].parts[k] == mark_parts[k] && r->log[i].offs[k] == mark_offs[k],
              "%s: offsets stored: partition %d at %lld", what, r->log[i].parts[k], (long long)r->log[i].offs[k]);
}

static void test_background_order(void) {
    fixture f;
    setup(&f, 1, 8192);
    partitions_own(&f.parts, 0, 5);
    partitions_own(&f.parts, 1, 0);
    apply(&f, 1, "x", 0, 0x11);
    apply(&f, 0, "c", 5, 0x22);
    apply(&f, 0, "a", 6, 0x33);
    apply(&f, 0, "b", 7, 0x44);
    for (int i = 0; i < 3; i++) output(&f);
    char err[256];
    REQUIRE(checkpoint_begin(f.ck, err, sizeof err) == 0, "%s", err);
    CHECK(checkpoint_in_flight(f.ck), "a checkpoint began");
    for (int i = 0; i < 20; i++) { /* 200 ms of loop turns: a writer started wrongly would have run */
        REQUIRE(checkpoint_progress(f.ck, err, sizeof err) == 0, "%s", err);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(f.r.n == 0, "%d steps ran while the epoch's outputs were unacknowledged", f.r.n);
    /* the loop goes on meanwhile: a partition moves on, a new output in the next epoch */
    partitions_get(&f.parts, 0)->next = 20;
    void *later = checkpoint_tag_output(f.ck, 0);
    deliver_all(&f.r); /* only the cut's outputs */
    REQUIRE(progress_until_landed(&f) == 0, "the checkpoint did not land");
    const char *users[] = {"0:a", "0:b", "0:c", "1:x"};
    const int32_t mp[] = {0, 1};
    const int64_t mo[] = {8, 1};
    check_sequence(&f.r, 0, users, 4, mp, mo, 2, "background");
    CHECK(f.r.log[0].value[RECORD_MIN] == 0x33 && record_last_offset(f.r.log[0].value) == 6, "a's record as applied");
    CHECK(f.parts.p[0].checkpointed == 8 && f.parts.p[1].checkpointed == 1, "checkpointed offsets are the cut's");
    CHECK(partitions_advanced(&f.parts), "partition 0 moved on after the cut: still to checkpoint");
    CHECK(state_cache_dirty_count(f.cache) == 0 && state_cache_flushing(f.cache) == 0, "records clean after landing");
    CHECK(f.stats.checkpoints == 1 && f.stats.changelog_records == 4, "counted: %lld checkpoints, %lld records",
          (long long)f.stats.checkpoints, (long long)f.stats.changelog_records);
    checkpoint_untag_output(f.ck, later);
    teardown(&f);
}

static void test_snapshot_slices(void) {
    fixture f;
    setup(&f, 1, 1); /* one record copied per loop turn */
    partitions_own(&f.parts, 0, 0);
    apply(&f, 0, "a", 0, 0x01);
    apply(&f, 0, "b", 1, 0x02);
    apply(&f, 0, "c", 2, 0x03);
    char err[256];
    REQUIRE(checkpoint_begin(f.ck, err, sizeof err) == 0, "%s", err); /* copies a */
    apply(&f, 0, "a", 3, 0x0A);     /* changed after its copy: the next checkpoint's */
    apply(&f, 0, "c", 4, 0x0C);     /* changed before its copy: this one writes it as it is then */
    REQUIRE(progress_until_landed(&f) == 0, "did not land");
    const char *users[] = {"0:a", "0:b", "0:c"};
    const int32_t mp[] = {0};
    const int64_t mo[] = {3}; /* the cut: offsets 0..2 applied */
    check_sequence(&f.r, 0, users, 3, mp, mo, 1, "slices");
    CHECK(f.r.log[0].value[RECORD_MIN] == 0x01, "a as copied at the cut, not as changed later");
    CHECK(f.r.log[2].value[RECORD_MIN] == 0x0C && record_last_offset(f.r.log[2].value) == 4,
          "c as it stood when copied, with its own last offset");
    CHECK(state_cache_dirty_count(f.cache) == 2, "a and c dirty again after landing (%zu)",
          state_cache_dirty_count(f.cache));
    int before = f.r.n;
    REQUIRE(checkpoint_now(f.ck, err, sizeof err) == 0, "%s", err);
    const char *users2[] = {"0:a", "0:c"};
    const int64_t mo2[] = {5};
    check_sequence(&f.r, before, users2, 2, mp, mo2, 1, "the next checkpoint");
    CHECK(f.r.log[before].value[RECORD_MIN] == 0x0A, "a's change in the next checkpoint");
    teardown(&f);
}

static void test_now_lands_the_flight_first(void) {
    fixture f;
    setup(&f, 1, 8192);
    partitions_own(&f.parts, 0, 0);
    apply(&f, 0, "a", 0, 0x01);
    output(&f);
    char err[256];
    REQUIRE(checkpoint_begin(f.ck, err, sizeof err) == 0, "%s", err);
    apply(&f, 0, "b", 1, 0x02);
    output(&f);
    f.r.deliver_on_poll = 1; /* the broker acknowledges while the caller waits */
    REQUIRE(checkpoint_now(f.ck, err, sizeof err) == 0, "%s", err);
    const char *first[] = {"0:a"}, *second[] = {"0:b"};
    const int32_t mp[] = {0};
    const int64_t mo1[] = {1}, mo2[] = {2};
    check_sequence(&f.r, 0, first, 1, mp, mo1, 1, "the flight");
    check_sequence(&f.r, 5, second, 1, mp, mo2, 1, "then the rest");
    CHECK(f.r.n == 10, "two checkpoints of 5 steps, got %d steps", f.r.n);
    CHECK(!checkpoint_in_flight(f.ck) && f.parts.p[0].checkpointed == 2, "everything durable");
    teardown(&f);
}

static void test_nothing_and_offsets_only(void) {
    fixture f;
    setup(&f, 1, 8192);
    partitions_own(&f.parts, 0, 7);
    char err[256];
    REQUIRE(checkpoint_now(f.ck, err, sizeof err) == 0, "%s", err);
    CHECK(f.r.n == 0, "nothing to write, yet %d steps ran", f.r.n);
    partitions_get(&f.parts, 0)->next = 9; /* records skipped as already applied: only the offset moves */
    REQUIRE(checkpoint_now(f.ck, err, sizeof err) == 0, "%s", err);
    const int32_t mp[] = {0};
    const int64_t mo[] = {9};
    check_sequence(&f.r, 0, NULL, 0, mp, mo, 1, "offsets only");
    teardown(&f);
}

static void test_without_changelog(void) {
    fixture f;
    setup(&f, 0, 8192);
    partitions_own(&f.parts, 3, 0);
    apply(&f, 3, "u", 0, 0x01);
    char err[256];
    REQUIRE(checkpoint_now(f.ck, err, sizeof err) == 0, "%s", err);
    CHECK(f.r.n == 2 && f.r.log[0].kind == EV_STORE && f.r.log[0].count == 2 && f.r.log[1].kind == EV_OFFSETS &&
              f.r.log[1].parts[0] == 3 && f.r.log[1].offs[0] == 1,
          "changelog.enable=false: the store write, then the offsets (%d steps)", f.r.n);
    teardown(&f);
}

/* A failure at each step: the checkpoint fails and nothing after the step happens. */
static void test_failures(void) {
    const char *names[] = {"an output refused", "a changelog record refused", "the changelog's acks refused",
                           "the store write refused"};
    for (int step = 0; step < 4; step++) {
        fixture f;
        setup(&f, 1, 8192);
        partitions_own(&f.parts, 0, 0);
        apply(&f, 0, "a", 0, 0x01);
        f.r.fail_outputs = step == 0, f.r.fail_put = step == 1, f.r.fail_flush = step == 2, f.r.fail_store = step == 3;
        char err[256] = "";
        CHECK(checkpoint_now(f.ck, err, sizeof err) == -1 && err[0], "%s: the checkpoint succeeded", names[step]);
        CHECK(count(&f.r, EV_OFFSETS) == 0, "%s: offsets stored", names[step]);
        CHECK(f.parts.p[0].checkpointed == 0, "%s: the partition counts as checkpointed", names[step]);
        CHECK(f.stats.checkpoints == 0, "%s: counted as a checkpoint", names[step]);
        if (step <= 2) CHECK(count(&f.r, EV_STORE) == 0, "%s: the store was written", names[step]);
        if (step == 0) CHECK(count(&f.r, EV_PUT) == 0, "%s: the changelog was written", names[step]);
        if (step >= 1) CHECK(count(&f.r, EV_FLUSH) == 1, "%s: records put must still be waited for", names[step]);
        CHECK(!checkpoint_in_flight(f.ck), "%s: still in flight", names[step]);
        CHECK(state_cache_dirty_count(f.cache) == 1 && state_cache_flushing(f.cache) == 0,
              "%s: the record is not dirty again, for a later checkpoint", names[step]);
        teardown(&f);
    }
}

/* An unreachable broker: the changelog's acknowledgements never come. A stop's deadline ends
 * the wait (the writer gives up, nothing is written after it); without a deadline it waits. */
static void test_deadline(void) {
    fixture f;
    setup(&f, 1, 8192);
    partitions_own(&f.parts, 0, 0);
    apply(&f, 0, "a", 0, 0x01);
    f.r.hang_flush = 1;
    f.r.deadline = clock_mono_s() + 0.2;
    char err[256] = "";
    double t0 = clock_mono_s();
    CHECK(checkpoint_now(f.ck, err, sizeof err) == -1 && strstr(err, "did not land in time"),
          "past the deadline: %s", err);
    double took = clock_mono_s() - t0;
    CHECK(took < 2.0, "the wait lasted %.2f s past a 0.2 s deadline", took);
    CHECK(count(&f.r, EV_STORE) == 0 && count(&f.r, EV_OFFSETS) == 0, "written after giving up");
    CHECK(state_cache_dirty_count(f.cache) == 1 && !checkpoint_in_flight(f.ck), "the record is not dirty again");
    f.r.hang_flush = 0, f.r.deadline = 0;
    REQUIRE(checkpoint_now(f.ck, err, sizeof err) == 0, "once the broker is back: %s", err);
    CHECK(count(&f.r, EV_STORE) == 1 && f.parts.p[0].checkpointed == 1, "the next checkpoint writes it");
    teardown(&f);
}

int main(void) {
    test_background_order();
    test_snapshot_slices();
    test_now_lands_the_flight_first();
    test_nothing_and_offsets_only();
    test_without_changelog();
    test_failures();
    test_deadline();
    return check_exit("test_checkpoint");
}
