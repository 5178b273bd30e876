/* test_readahead: the worker's read-ahead lanes (worker/readahead.h) with stand-in messages.
 * A worked example checked record by record; then a randomized run against the rules it must
 * keep: a partition's records leave in the order they came, an event message (EOF) leaves after
 * its partition's records before it, partitionless messages leave first, every message leaves
 * exactly once (taken or destroyed), a batch from k full lanes takes from all k, and the first
 * lane rotates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "readahead.h"

#define N_MSG 20000

static rd_kafka_message_t msg[N_MSG];
static int destroyed[N_MSG];

static void fake_destroy(rd_kafka_message_t *m) { destroyed[m - msg]++; }

static rd_kafka_message_t *mk(int i, int32_t partition, int64_t offset, rd_kafka_resp_err_t err) {
    memset(&msg[i], 0, sizeof msg[i]);
    msg[i].partition = partition;
    msg[i].offset = offset;
    msg[i].err = err;
    msg[i].len = (size_t)(i % 13) * 100; /* sizes for the byte count */
    msg[i].key_len = (size_t)(i % 5);
    return &msg[i];
}

/* The bytes of the messages neither taken nor destroyed among the first n. */
static size_t held_bytes(const int *taken, int n) {
    size_t b = 0;
    for (int i = 0; i < n; i++)
        if (!taken[i] && !destroyed[i]) b += msg[i].len + msg[i].key_len;
    return b;
}

static void worked_example(void) {
    readahead *r = readahead_new(fake_destroy);
    REQUIRE(r, "new");
    int i = 0;
    for (int o = 0; o < 10; o++) REQUIRE(!readahead_push(r, mk(i++, 0, o, 0)), "push");   /* msg 0..9: p0 */
    for (int o = 0; o < 3; o++) REQUIRE(!readahead_push(r, mk(i++, 1, o, 0)), "push");    /* 10..12: p1 */
    REQUIRE(!readahead_push(r, mk(i++, -1, -1, RD_KAFKA_RESP_ERR__TRANSPORT)), "push");   /* 13: no partition */
    for (int o = 0; o < 5; o++) REQUIRE(!readahead_push(r, mk(i++, 2, o, 0)), "push");    /* 14..18: p2 */
    REQUIRE(!readahead_push(r, mk(i++, 2, 5, RD_KAFKA_RESP_ERR__PARTITION_EOF)), "push"); /* 19: p2's EOF */
    CHECK(readahead_count(r) == 20, "count %zu", readahead_count(r));

    rd_kafka_message_t *out[32];
    /* 12: the partitionless one, then 11 / 3 lanes = 3 each (p1 runs dry), then 2 / 2 = 1 each. */
    size_t n = readahead_take(r, out, 12);
    int want1[] = {13, 0, 1, 2, 10, 11, 12, 14, 15, 16, 3, 17};
    CHECK(n == 12, "took %zu", n);
    for (size_t k = 0; k < n && k < 12; k++)
        CHECK(out[k] == &msg[want1[k]], "first take, position %zu: msg %d, want %d", k, (int)(out[k] - msg), want1[k]);
    /* Second take starts one lane on: p2 before p0; p2's EOF after its last record. */
    n = readahead_take(r, out, 32);
    int want2[] = {18, 19, 4, 5, 6, 7, 8, 9};
    CHECK(n == 8, "took %zu", n);
    for (size_t k = 0; k < n && k < 8; k++)
        CHECK(out[k] == &msg[want2[k]], "second take, position %zu: msg %d, want %d", k, (int)(out[k] - msg), want2[k]);
    CHECK(readahead_count(r) == 0, "count %zu", readahead_count(r));
    CHECK(readahead_take(r, out, 32) == 0, "empty take");

    /* drop_partition destroys that lane only; free destroys what is left. */
    for (int o = 0; o < 4; o++) REQUIRE(!readahead_push(r, mk(i++, 3, o, 0)), "push");    /* 20..23 */
    for (int o = 0; o < 4; o++) REQUIRE(!readahead_push(r, mk(i++, 1000, o, 0)), "push"); /* 24..27: lanes grow */
    readahead_drop_partition(r, 3);
    readahead_drop_partition(r, 77);   /* never seen: nothing */
    CHECK(readahead_count(r) == 4, "count after drop %zu", readahead_count(r));
    for (int k = 20; k < 24; k++) CHECK(destroyed[k] == 1, "msg %d destroyed %d times", k, destroyed[k]);
    n = readahead_take(r, out, 1);
    CHECK(n == 1 && out[0] == &msg[24], "after a drop the other lane goes on");
    readahead_free(r);
    for (int k = 25; k < 28; k++) CHECK(destroyed[k] == 1, "msg %d destroyed by free %d times", k, destroyed[k]);
    for (int k = 0; k < 20; k++) CHECK(destroyed[k] == 0, "taken msg %d destroyed", k);
    CHECK(destroyed[24] == 0, "taken msg 24 destroyed");
}

#define PARTS 7

static void randomized(void) {
    memset(destroyed, 0, sizeof destroyed);
    readahead *r = readahead_new(fake_destroy);
    REQUIRE(r, "new");
    int taken[N_MSG] = {0};
    int64_t next_push[PARTS] = {0}, last_out[PARTS];
    for (int p = 0; p < PARTS; p++) last_out[p] = -1;
    unsigned seed = 777;
    int used = 0;
    rd_kafka_message_t *out[512];
    while (used < N_MSG - 500) {   /* room for the fairness part */
        seed = seed * 1103515245u + 12345u;
        int op = (int)((seed >> 16) % 100);
        if (op < 60) {   /* a run of one partition, as librdkafka hands them over */
            int p = (int)((seed >> 8) % PARTS), run = 1 + (int)((seed >> 4) % 40);
            for (int k = 0; k < run; k++) {
                REQUIRE(!readahead_push(r, mk(used++, p, next_push[p]++, 0)), "push");
            }
            if ((seed >> 24) % 5 == 0) {   /* its EOF, offset = the next record's */
                REQUIRE(!readahead_push(r, mk(used++, p, next_push[p], RD_KAFKA_RESP_ERR__PARTITION_EOF)), "push");
            }
        } else if (op < 63) {
            REQUIRE(!readahead_push(r, mk(used++, -1, -1, RD_KAFKA_RESP_ERR__TRANSPORT)), "push");
        } else if (op < 65) {   /* a rebalance: the partition's held records go; it resumes from there */
            int p = (int)((seed >> 8) % PARTS);
            readahead_drop_partition(r, p);
            /* The next owner refetches from the first dropped offset; the model only needs the
             * order of what is pushed from now on. */
            last_out[p] = -1;
            next_push[p] = 0;
        } else {
            size_t before = readahead_count(r);
            size_t max = 1 + (seed >> 8) % 300;
            size_t n = readahead_take(r, out, max);
            CHECK(n == (before < max ? before : max), "took %zu of %zu held, max %zu", n, before, max);
            CHECK(readahead_count(r) == before - n, "count");
            int seen_part = 0;
            for (size_t k = 0; k < n; k++) {
                rd_kafka_message_t *m = out[k];
                int id = (int)(m - msg);
                CHECK(!taken[id] && !destroyed[id], "msg %d left twice", id);
                taken[id] = 1;
                if (m->partition < 0) {
                    CHECK(!seen_part, "a partitionless message after a partition's record");
                    continue;
                }
                seen_part = 1;
                int p = m->partition;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    CHECK(m->offset == last_out[p] + 1, "p%d EOF at %lld after record %lld", p, (long long)m->offset,
                          (long long)last_out[p]);
                else {
                    CHECK(m->offset == last_out[p] + 1, "p%d: offset %lld after %lld", p, (long long)m->offset,
                          (long long)last_out[p]);
                    last_out[p] = m->offset;
                }
            }
        }
        CHECK(readahead_bytes(r) == held_bytes(taken, used), "bytes held %zu, the messages held have %zu",
              readahead_bytes(r), held_bytes(taken, used));
    }
    /* Fairness and rotation: four lanes of 100, batches of 40 take 10 from each; batches of 2
     * start one lane on each time, so four batches cover all four lanes. */
    readahead_clear(r);
    int base = used;
    for (int p = 0; p < 4; p++)
        for (int o = 0; o < 100; o++) REQUIRE(!readahead_push(r, mk(used++, 10 + p, o, 0)), "push");
    size_t n = readahead_take(r, out, 40);
    int per[4] = {0};
    for (size_t k = 0; k < n; k++) per[out[k]->partition - 10]++;
    for (int p = 0; p < 4; p++) CHECK(per[p] == 10, "lane %d gave %d of 40", p, per[p]);
    int first_seen[4] = {0};
    for (int t = 0; t < 4; t++) {
        n = readahead_take(r, out, 2);
        CHECK(n == 2, "took %zu", n);
        for (size_t k = 0; k < n; k++) first_seen[out[k]->partition - 10] = 1;
    }
    for (int p = 0; p < 4; p++) CHECK(first_seen[p], "lane %d never served by batches of 2", p);
    readahead_free(r);
    for (int id = 0; id < used; id++)
        CHECK(taken[id] + destroyed[id] == 1 || id >= base, "msg %d: taken %d, destroyed %d", id, taken[id],
              destroyed[id]);
    int left = 0;
    for (int id = base; id < used; id++) left += destroyed[id];
    CHECK(left == 400 - 40 - 8, "free destroyed %d of the last lanes' records", left);
}

int main(void) {
    worked_example();
    randomized();
    if (check_failures) fprintf(stderr, "test_readahead: %d failure(s)\n", check_failures);
    else printf("test_readahead: ok\n");
    return check_failures ? 1 : 0;
}
