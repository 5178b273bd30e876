/* test_state_cache: the write-behind cache's table — lookups after many inserts, evictions and
 * drops (backward-shift deletion under heavy collisions), LRU order, and that dirty and pinned
 * entries are never evicted. Checked against a plain array model of the same operations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "state_cache.h"

#define CAP 64
#define KEYS 400

typedef struct {
    int present;
    long entry;
    int dirty;
} model_t;

int main(void) {
    state_cache *c;
    REQUIRE(state_cache_new(&c, CAP, 24) == 0, "new");
    model_t m[KEYS] = {0};
    char key[KEYS][100];
    for (int k = 0; k < KEYS; k++) {
        /* some keys longer than the inline buffer */
        if (k % 17 == 0) snprintf(key[k], sizeof key[k], "long-user-%d-%070d", k, k);
        else snprintf(key[k], sizeof key[k], "u%d", k);
    }
    unsigned seed = 12345;
    int present = 0, dirty = 0;
    for (int step = 0; step < 200000; step++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % KEYS);
        int part = k % 5;
        int op = (int)((seed >> 20) % 100);
        long e = state_cache_find(c, part, key[k], strlen(key[k]));
        CHECK((e >= 0) == m[k].present, "step %d key %d: find %ld, model present %d", step, k, e, m[k].present);
        if (e >= 0) {
            CHECK(e == m[k].entry, "entry moved");
            CHECK(*(int *)state_cache_record(c, e) == k, "record content of key %d", k);
            size_t len;
            const char *u = state_cache_user(c, e, &len);
            CHECK(len == strlen(key[k]) && !memcmp(u, key[k], len) && state_cache_partition(c, e) == part, "key");
        }
        if (op < 60 && e < 0) {
            long n = state_cache_insert(c, part, key[k], strlen(key[k]));
            if (n == -1) {
                CHECK(present == CAP && dirty == CAP, "full only when every entry is dirty: %d %d", present, dirty);
                state_cache_mark_clean(c);
                for (int j = 0; j < KEYS; j++) m[j].dirty = 0;
                dirty = 0;
                n = state_cache_insert(c, part, key[k], strlen(key[k]));
            }
            REQUIRE(n >= 0, "insert %ld", n);
            if (present == CAP) {   /* something clean was evicted: find which */
                for (int j = 0; j < KEYS; j++) {
                    if (!m[j].present || j == k) continue;
                    long f = state_cache_find(c, j % 5, key[j], strlen(key[j]));
                    if (f < 0) {
                        CHECK(!m[j].dirty, "dirty key %d evicted", j);
                        m[j].present = 0;
                        present--;
                        break;
                    }
                }
            }
            *(int *)state_cache_record(c, n) = k;
            m[k] = (model_t){1, n, 0};
            present++;
        } else if (op < 85 && e >= 0 && !m[k].dirty) {
            state_cache_mark_dirty(c, e);
            m[k].dirty = 1;
            dirty++;
        } else if (op < 87) {
            state_cache_mark_clean(c);
            for (int j = 0; j < KEYS; j++) m[j].dirty = 0;
            dirty = 0;
        } else if (op == 87) {
            state_cache_mark_clean(c);
            for (int j = 0; j < KEYS; j++) m[j].dirty = 0;
            dirty = 0;
            state_cache_drop_partition(c, part);
            for (int j = 0; j < KEYS; j++)
                if (m[j].present && j % 5 == part) { m[j].present = 0; present--; }
        }
        CHECK(state_cache_size(c) == (size_t)present, "size %zu vs %d", state_cache_size(c), present);
        CHECK(state_cache_dirty_count(c) == (size_t)dirty, "dirty %zu vs %d", state_cache_dirty_count(c), dirty);
        if (check_failures > 5) break;
    }
    /* LRU: with a fresh cache, the least recently *used* clean entry goes first; pinned never. */
    state_cache_free(c);
    REQUIRE(state_cache_new(&c, 16, 8) == 0, "new");
    for (int k = 0; k < 16; k++) state_cache_insert(c, 0, key[k], strlen(key[k]));
    state_cache_find(c, 0, key[0], strlen(key[0]));              /* 0 is now most recent */
    state_cache_pin(c, state_cache_find(c, 0, key[1], strlen(key[1])));
    state_cache_insert(c, 0, key[20], strlen(key[20]));          /* evicts 2 (1 is pinned) */
    CHECK(state_cache_find(c, 0, key[2], strlen(key[2])) < 0, "LRU victim should be key 2");
    CHECK(state_cache_find(c, 0, key[1], strlen(key[1])) >= 0, "pinned entry evicted");
    CHECK(state_cache_find(c, 0, key[0], strlen(key[0])) >= 0, "recently used entry evicted");
    state_cache_unpin_all(c);
    CHECK(state_cache_evictions(c) == 1, "evictions %llu", (unsigned long long)state_cache_evictions(c));
    state_cache_free(c);

    /* A flush (the background checkpoint): its entries are not evictable until it ends; one
     * changed meanwhile is dirty for the next checkpoint and stays unevictable after the end. */
    REQUIRE(state_cache_new(&c, 16, 8) == 0, "new");   /* 16: the smallest capacity */
    long e16[16];
    for (int k = 0; k < 16; k++) {
        e16[k] = state_cache_insert(c, 0, key[k], strlen(key[k]));
        state_cache_mark_dirty(c, e16[k]);
    }
    CHECK(state_cache_begin_flush(c) == 16 && state_cache_flushing(c) == 16, "begin_flush takes the 16 dirty entries");
    CHECK(state_cache_dirty_count(c) == 0, "the dirty list is handed to the flush");
    CHECK(state_cache_flush_at(c, 0) == e16[0], "the flush list keeps the dirty order");
    CHECK(state_cache_find(c, 0, key[5], strlen(key[5])) == e16[5], "a flushing entry is found");
    state_cache_pin(c, e16[5]);   /* used by a batch during the flight, then released */
    state_cache_unpin_all(c);
    CHECK(state_cache_insert(c, 0, key[30], strlen(key[30])) == -1, "a flushing entry was evicted");
    state_cache_mark_dirty(c, e16[2]);   /* changed while its old copy is being written */
    CHECK(state_cache_dirty_count(c) == 1, "re-dirtied during the flush");
    state_cache_end_flush(c);
    CHECK(state_cache_flushing(c) == 0, "end_flush");
    for (int k = 0; k < 15; k++) {   /* each evicts one of the 15 unchanged entries; kept dirty */
        long n = state_cache_insert(c, 0, key[40 + k], strlen(key[40 + k]));
        CHECK(n >= 0, "clean entry %d not evicted", k);
        if (n >= 0) state_cache_mark_dirty(c, n);
    }
    CHECK(state_cache_find(c, 0, key[2], strlen(key[2])) == e16[2], "the re-dirtied entry was evicted");
    CHECK(state_cache_insert(c, 0, key[60], strlen(key[60])) == -1, "only the dirty entry is left, it is not evictable");
    state_cache_free(c);
    return check_exit("test_state_cache");
}
