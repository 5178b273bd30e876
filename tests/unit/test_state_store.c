/* test_state_store: RocksDB state store — states and offsets land together, survive a reopen,
 * and the store refuses another topic or model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "state_store.h"

#define SZ 48

static int count_visit(void *ctx, int32_t p, const char *u, size_t n, const void *st, size_t sz) {
    (void)p; (void)u; (void)n; (void)st;
    int *c = ctx;
    if (sz == SZ) (*c)++;
    return 0;
}

int main(void) {
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

    int64_t off;
    CHECK(state_store_get_offset(s, 3, &off, err, sizeof err) == 0 && off == -1, "empty offset %lld", (long long)off);

    /* Two users in partition 3, one in partition 5 with the same id: separate states. */
    unsigned char a[SZ], b[SZ], c[SZ];
    memset(a, 1, SZ); memset(b, 2, SZ); memset(c, 3, SZ);
    state_batch *wb = state_batch_new();
    state_batch_put_state(wb, 3, "alice", 5, a, SZ);
    state_batch_put_state(wb, 3, "bob", 3, b, SZ);
    state_batch_put_state(wb, 5, "alice", 5, c, SZ);
    state_batch_put_offset(wb, 3, 42);
    state_batch_put_offset(wb, 5, 7);
    CHECK(state_batch_count(wb) == 5, "count %zu", state_batch_count(wb));
    REQUIRE(state_store_write(s, wb, err, sizeof err) == 0, "%s", err);

    int32_t parts[4] = {3, 3, 5, 4};
    const char *users[4] = {"alice", "bob", "alice", "alice"};
    size_t lens[4] = {5, 3, 5, 5};
    unsigned char out[4][SZ];
    void *bufs[4] = {out[0], out[1], out[2], out[3]};
    int found[4];
    REQUIRE(state_store_multi_get(s, 4, parts, users, lens, bufs, SZ, found, err, sizeof err) == 0, "%s", err);
    CHECK(found[0] && found[1] && found[2] && !found[3], "found %d %d %d %d", found[0], found[1], found[2], found[3]);
    CHECK(memcmp(out[0], a, SZ) == 0 && memcmp(out[1], b, SZ) == 0 && memcmp(out[2], c, SZ) == 0, "values");

    /* A different expected size is an error, not a silent truncation. */
    CHECK(state_store_multi_get(s, 1, parts, users, lens, bufs, SZ - 1, found, err, sizeof err) != 0, "size mismatch accepted");

    state_store_close(s);
    REQUIRE(state_store_open(&s, path, &o, err, sizeof err) == 0, "%s", err);
    CHECK(state_store_get_offset(s, 3, &off, err, sizeof err) == 0 && off == 42, "offset after reopen %lld", (long long)off);
    CHECK(state_store_get_offset(s, 5, &off, err, sizeof err) == 0 && off == 7, "offset p5 %lld", (long long)off);
    CHECK(state_store_bind(s, "other-topic", 0x1234, "m-1", err, sizeof err) != 0, "other topic accepted");
    CHECK(strstr(err, "other-topic") != NULL, "message names the topic: %s", err);
    CHECK(state_store_bind(s, "events", 0x9999, "m-2", err, sizeof err) != 0, "other model accepted");
    CHECK(state_store_bind(s, "events", 0x1234, "m-1", err, sizeof err) == 0, "%s", err);

    int n = 0;
    CHECK(state_store_foreach(s, count_visit, &n, err, sizeof err) == 0 && n == 3, "foreach saw %d", n);
    int32_t lp[8];
    int64_t lo[8];
    int k = state_store_list_offsets(s, lp, lo, 8, err, sizeof err);
    CHECK(k == 2 && lp[0] == 3 && lo[0] == 42 && lp[1] == 5 && lo[1] == 7, "list offsets %d", k);

    state_batch_free(wb);
    state_store_close(s);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cleanup failed\n");
    return check_exit("test_state_store");
}
