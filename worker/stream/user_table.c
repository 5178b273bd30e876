/* user_table: per-batch (partition, user) -> slot map. See user_table.h. */
#include "user_table.h"

#include <stdlib.h>
#include <string.h>

#include "key_hash.h"

static int grow_index(user_table *t, size_t want) {
    size_t cap = 16;
    while (cap < want) cap *= 2;
    int32_t *idx = malloc(cap * sizeof *idx);
    if (!idx) return -1;
    memset(idx, 0xff, cap * sizeof *idx);
    for (size_t i = 0; i < t->n; i++) {
        size_t j = t->slots[i].hash & (cap - 1);
        while (idx[j] >= 0) j = (j + 1) & (cap - 1);
        idx[j] = (int32_t)i;
    }
    free(t->index);
    t->index = idx;
    t->index_cap = cap;
    return 0;
}

static int grow_slots(user_table *t, size_t cap) {
    user_slot *s = realloc(t->slots, cap * sizeof *s);
    if (!s) return -1;
    t->slots = s;
    if (t->state_size) {
        uint8_t *st = realloc(t->states, cap * t->state_size);
        if (!st) return -1;
        t->states = st;
    }
    t->cap = cap;
    return grow_index(t, 2 * cap);
}

int user_table_init(user_table *t, size_t state_size, size_t initial_cap) {
    memset(t, 0, sizeof *t);
    t->state_size = state_size;
    return grow_slots(t, initial_cap ? initial_cap : 64);
}

void user_table_free(user_table *t) {
    free(t->slots);
    free(t->states);
    free(t->index);
    memset(t, 0, sizeof *t);
}

void user_table_clear(user_table *t) {
    if (t->n) memset(t->index, 0xff, t->index_cap * sizeof *t->index);
    t->n = 0;
}

long user_table_upsert(user_table *t, int32_t partition, const char *user, size_t user_len) {
    uint32_t h = key_hash(partition, user, user_len);
    size_t mask = t->index_cap - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        int32_t i = t->index[j];
        if (i < 0) break;
        user_slot *s = &t->slots[i];
        if (s->hash == h && s->partition == partition && s->user_len == user_len &&
            memcmp(s->user, user, user_len) == 0)
            return i;
    }
    if (t->n == t->cap && grow_slots(t, t->cap * 2)) return -1;
    size_t i = t->n++;
    t->slots[i] = (user_slot){.user = user, .user_len = user_len, .partition = partition, .hash = h};
    mask = t->index_cap - 1;
    size_t j = h & mask;
    while (t->index[j] >= 0) j = (j + 1) & mask;
    t->index[j] = (int32_t)i;
    return (long)i;
}
