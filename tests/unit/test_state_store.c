/* test_state_store: RocksDB state store — states and offsets land together, survive a reopen,
 * and the store refuses another topic or model; records are stored without their trailing zeros
 * and read back bit for bit; the dir is created 0700; a read-only open creates nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "state_store.h"
#include "worker_record.h"

#define SZ 48

static int count_visit(void *ctx, int32_t p, const char *u, size_t n, const void *st, size_t sz) {
    (void)p; (void)u; (void)n; (void)st;
    int *c = ctx;
    if (sz == SZ) (*c)++;
    return 0;
}

/* The stored form: trailing zeros cut down to RECORD_MIN, padded back on load. */
static void test_stored_form(void) {
    enum { N = 200 };
    unsigned char rec[N], back[N];
    for (size_t last = 0; last < N; last++) {   /* the last non-zero byte at every position */
        memset(rec, 0, N);
        for (size_t i = 0; i <= last; i++) rec[i] = (unsigned char)(1 + i % 251);
        size_t len = record_stored_len(rec, N);
        size_t want = last + 1 < RECORD_MIN ? RECORD_MIN : last + 1;
        CHECK(len == want, "last non-zero byte %zu: stored %zu bytes, want %zu", last, len, want);
        memset(back, 0xAB, N);
        CHECK(record_load(back, N, rec, len) == 0 && memcmp(back, rec, N) == 0, "round trip at %zu", last);
    }
    memset(rec, 0, N);
    rec[N - 1] = 7;   /* nothing to cut */
    CHECK(record_stored_len(rec, N) == N, "full record stored at %zu", record_stored_len(rec, N));
    memset(back, 0xAB, N);
    CHECK(record_load(back, N, rec, RECORD_MIN - 1) == -1 && back[0] == 0xAB, "shorter than RECORD_MIN accepted");
    CHECK(record_load(back, N - 1, rec, N) == -1, "longer than the record accepted");
}

int main(void) {
    test_stored_form();
    char dir[] = "/tmp/ievo-test-state-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/db", dir);
    char err[512];
    state_store_opts o;
    state_store_opts_default(&o);
    state_store *s;
    REQUIRE(state_store_open(&s, path, &o, err, sizeof err) == 0, "%s", err);
    CHECK(state_store_bind(s, "events", 0x1234, "m-1", err, sizeof err) == 0, "%s", err);

    int64_t off, pos;
    CHECK(state_store_get_offset(s, 3, &off, &pos, err, sizeof err) == 0 && off == -1 && pos == -1, "empty offset %lld",
          (long long)off);

    /* Two users in partition 3, one in partition 5 with the same id: separate states. */
    unsigned char a[SZ], b[SZ], c[SZ];
    memset(a, 1, SZ); memset(b, 2, SZ); memset(c, 3, SZ);
    state_batch *wb = state_batch_new();
    state_batch_put_state(wb, 3, "alice", 5, a, SZ);
    state_batch_put_state(wb, 3, "bob", 3, b, SZ);
    state_batch_put_state(wb, 5, "alice", 5, c, SZ);
    state_batch_put_offset(wb, 3, 42, -1);   /* no changelog position */
    state_batch_put_offset(wb, 5, 7, 1234);
    CHECK(state_batch_count(wb) == 5, "count %zu", state_batch_count(wb));
    REQUIRE(state_store_write(s, wb, err, sizeof err) == 0, "%s", err);

    int32_t parts[4] = {3, 3, 5, 4};
    const char *users[4] = {"alice", "bob", "alice", "alice"};
    size_t lens[4] = {5, 3, 5, 5};
    unsigned char out[4][SZ];
    void *bufs[4] = {out[0], out[1], out[2], out[3]};
    int found[4];
    size_t malformed[4];
    REQUIRE(state_store_multi_get(s, 4, parts, users, lens, bufs, SZ, found, malformed, err, sizeof err) == 0, "%s", err);
    CHECK(found[0] && found[1] && found[2] && !found[3], "found %d %d %d %d", found[0], found[1], found[2], found[3]);
    CHECK(memcmp(out[0], a, SZ) == 0 && memcmp(out[1], b, SZ) == 0 && memcmp(out[2], c, SZ) == 0, "values");

    /* A stored value longer than the record is reported with its length, not silently truncated. */
    CHECK(state_store_multi_get(s, 1, parts, users, lens, bufs, SZ - 1, found, malformed, err, sizeof err) == 0 &&
              found[0] == STATE_STORE_MALFORMED && malformed[0] == SZ,
          "size mismatch accepted (found %d)", found[0]);

    /* A value stored without its trailing zeros reads back padded: the record as it was. */
    unsigned char d[SZ];
    memset(d, 4, SZ);
    memset(d + SZ - 3, 0, 3);
    size_t dn = record_stored_len(d, SZ);
    CHECK(dn == SZ - 3, "stored length %zu", dn);
    state_batch_clear(wb);
    state_batch_put_state(wb, 6, "carol", 5, d, dn);
    REQUIRE(state_store_write(s, wb, err, sizeof err) == 0, "%s", err);
    int32_t p6 = 6;
    const char *carol = "carol";
    size_t l5 = 5;
    memset(out[0], 0xAB, SZ);
    void *b0 = out[0];
    REQUIRE(state_store_multi_get(s, 1, &p6, &carol, &l5, &b0, SZ, found, malformed, err, sizeof err) == 0, "%s", err);
    CHECK(found[0] == 1 && memcmp(out[0], d, SZ) == 0, "trimmed value read back");
    state_batch_put_state(wb, 6, "carol", 5, d, RECORD_MIN - 1);   /* shorter than any record */
    REQUIRE(state_store_write(s, wb, err, sizeof err) == 0, "%s", err);
    CHECK(state_store_multi_get(s, 1, &p6, &carol, &l5, &b0, SZ, found, malformed, err, sizeof err) == 0 &&
              found[0] == STATE_STORE_MALFORMED && malformed[0] == RECORD_MIN - 1,
          "short value accepted (found %d)", found[0]);
    state_batch_clear(wb);
    state_batch_put_state(wb, 6, "carol", 5, d, SZ);
    REQUIRE(state_store_write(s, wb, err, sizeof err) == 0, "%s", err);

    state_store_close(s);
    REQUIRE(state_store_open(&s, path, &o, err, sizeof err) == 0, "%s", err);
    CHECK(state_store_get_offset(s, 3, &off, &pos, err, sizeof err) == 0 && off == 42 && pos == -1,
          "offset after reopen %lld, position %lld", (long long)off, (long long)pos);
    CHECK(state_store_get_offset(s, 5, &off, &pos, err, sizeof err) == 0 && off == 7 && pos == 1234,
          "offset p5 %lld, position %lld", (long long)off, (long long)pos);
    /* a user deleted (a changelog tombstone) */
    state_batch_clear(wb);
    state_batch_delete_state(wb, 3, "bob", 3);
    REQUIRE(state_store_write(s, wb, err, sizeof err) == 0, "%s", err);
    REQUIRE(state_store_multi_get(s, 2, parts, users, lens, bufs, SZ, found, malformed, err, sizeof err) == 0, "%s", err);
    CHECK(found[0] == 1 && found[1] == 0, "bob deleted, alice kept (%d %d)", found[0], found[1]);
    state_batch_clear(wb);
    state_batch_put_state(wb, 3, "bob", 3, b, SZ);
    REQUIRE(state_store_write(s, wb, err, sizeof err) == 0, "%s", err);
    CHECK(state_store_bind(s, "other-topic", 0x1234, "m-1", err, sizeof err) != 0, "other topic accepted");
    CHECK(strstr(err, "other-topic") != NULL, "message names the topic: %s", err);
    CHECK(state_store_bind(s, "events", 0x9999, "m-2", err, sizeof err) != 0, "other model accepted");
    CHECK(state_store_bind(s, "events", 0x1234, "m-1", err, sizeof err) == 0, "%s", err);

    int n = 0;
    CHECK(state_store_foreach(s, count_visit, &n, err, sizeof err) == 0 && n == 4, "foreach saw %d", n);
    int32_t lp[8];
    int64_t lo[8];
    int k = state_store_list_offsets(s, lp, lo, 8, err, sizeof err);
    CHECK(k == 2 && lp[0] == 3 && lo[0] == 42 && lp[1] == 5 && lo[1] == 7, "list offsets %d", k);

    state_batch_free(wb);
    state_store_close(s);

    /* The dir holds users' data: created 0700 whatever the umask lets through. */
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700, "state dir mode %o", (unsigned)(st.st_mode & 0777));
    /* Read-only: the store reads back; a missing dir is an error and is not created. */
    o.read_only = 1;
    REQUIRE(state_store_open(&s, path, &o, err, sizeof err) == 0, "read-only open: %s", err);
    k = state_store_list_offsets(s, lp, lo, 8, err, sizeof err);
    CHECK(k == 2 && lo[0] == 42, "read-only list offsets %d", k);
    state_store_close(s);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    CHECK(state_store_open(&s, missing, &o, err, sizeof err) != 0 && strstr(err, "No such file"), "missing dir: %s", err);
    CHECK(access(missing, F_OK) != 0, "a read-only open created %s", missing);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return check_exit("test_state_store");
}
