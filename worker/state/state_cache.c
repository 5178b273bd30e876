/* state_cache: fixed-capacity (partition, user) -> record table with a clean-LRU. See the header.
 *
 * Index: open addressing with linear probing over a power-of-two table at most half full;
 * deletion shifts the following run back (no tombstones). Each slot holds the entry's hash
 * beside its index, so a probe touches an entry (a cache miss in a table of a million users)
 * only when the hashes match. Entries: a fixed array with a free list. The LRU links only
 * clean, unpinned entries, so eviction is O(1). */
#include "state_cache.h"

#include "key_hash.h"

#include <stdlib.h>
#include <string.h>

#define KEY_INLINE 64

typedef struct {
    uint32_t hash;
    int32_t partition;
    uint32_t key_len;
    int32_t prev, next;   /* clean-LRU links (-1: none) */
    uint8_t in_use, dirty, pinned, in_lru, flushing;
    char key_inline[KEY_INLINE];
    char *key_heap;       /* keys longer than KEY_INLINE */
} entry;

typedef struct {
    int32_t entry;
    uint32_t hash;
} index_slot;

struct state_cache {
    entry *e;
    uint8_t *slab;        /* capacity * stride bytes */
    size_t capacity, stride, n;
    index_slot *index;    /* entry indices (-1 empty) with their hashes */
    size_t index_cap;     /* power of two >= 2 * capacity */
    int32_t *free_list;
    size_t n_free;
    int32_t lru_head, lru_tail;   /* head: most recent */
    int32_t *dirty;
    size_t n_dirty;
    int32_t *flush;       /* the entries of the flush in progress (state_cache_begin_flush) */
    size_t n_flush;
    int32_t *pinned;
    size_t n_pinned;
    uint64_t hits, misses, evictions;
};

static const char *key_of(const entry *x) { return x->key_heap ? x->key_heap : x->key_inline; }

int state_cache_new(state_cache **out, size_t capacity, size_t record_size) {
    *out = NULL;
    if (capacity < 16) capacity = 16;
    if (capacity > (1u << 30)) return -1;
    state_cache *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->capacity = capacity;
    c->stride = (record_size + 7) & ~(size_t)7;
    c->index_cap = 16;
    while (c->index_cap < 2 * capacity) c->index_cap *= 2;
    c->e = calloc(capacity, sizeof *c->e);
    c->slab = malloc(capacity * c->stride);
    c->index = malloc(c->index_cap * sizeof *c->index);
    c->free_list = malloc(capacity * sizeof *c->free_list);
    c->dirty = malloc(capacity * sizeof *c->dirty);
    c->flush = malloc(capacity * sizeof *c->flush);
    c->pinned = malloc(capacity * sizeof *c->pinned);
    if (!c->e || !c->slab || !c->index || !c->free_list || !c->dirty || !c->flush || !c->pinned) {
        state_cache_free(c);
        return -1;
    }
    for (size_t j = 0; j < c->index_cap; j++) c->index[j] = (index_slot){-1, 0};
    for (size_t i = 0; i < capacity; i++) c->free_list[i] = (int32_t)(capacity - 1 - i);
    c->n_free = capacity;
    c->lru_head = c->lru_tail = -1;
    *out = c;
    return 0;
}

void state_cache_free(state_cache *c) {
    if (!c) return;
    if (c->e)
        for (size_t i = 0; i < c->capacity; i++) free(c->e[i].key_heap);
    free(c->e);
    free(c->slab);
    free(c->index);
    free(c->free_list);
    free(c->dirty);
    free(c->flush);
    free(c->pinned);
    free(c);
}

static void lru_unlink(state_cache *c, int32_t i) {
    entry *x = &c->e[i];
    if (!x->in_lru) return;
    if (x->prev >= 0) c->e[x->prev].next = x->next; else c->lru_head = x->next;
    if (x->next >= 0) c->e[x->next].prev = x->prev; else c->lru_tail = x->prev;
    x->prev = x->next = -1;
    x->in_lru = 0;
}

static void lru_push_front(state_cache *c, int32_t i) {
    entry *x = &c->e[i];
    if (x->in_lru || x->dirty || x->pinned || x->flushing) return;
    x->prev = -1;
    x->next = c->lru_head;
    if (c->lru_head >= 0) c->e[c->lru_head].prev = i; else c->lru_tail = i;
    c->lru_head = i;
    x->in_lru = 1;
}

static size_t find_slot(const state_cache *c, int32_t partition, const char *user, size_t len, uint32_t h) {
    size_t mask = c->index_cap - 1;
    for (size_t j = h & mask;; j = (j + 1) & mask) {
        int32_t i = c->index[j].entry;
        if (i < 0) return j;
        if (c->index[j].hash != h) continue;
        const entry *x = &c->e[i];
        if (x->partition == partition && x->key_len == len && memcmp(key_of(x), user, len) == 0) return j;
    }
}

void state_cache_prefetch(const state_cache *c, uint32_t hash, int stage) {
    const index_slot *s = &c->index[hash & (c->index_cap - 1)];
    if (stage == 0) {
        __builtin_prefetch(s, 0, 3);
        return;
    }
    if (s->entry < 0 || s->hash != hash) return;   /* absent, or not at its home slot: the find probes */
    const entry *x = &c->e[s->entry];
    if (stage == 1) {
        __builtin_prefetch(x, 1, 3);
        __builtin_prefetch(c->slab + (size_t)s->entry * c->stride, 0, 3);
        return;
    }
    if (x->in_lru && x->prev >= 0) __builtin_prefetch(&c->e[x->prev], 1, 3);
    if (x->in_lru && x->next >= 0) __builtin_prefetch(&c->e[x->next], 1, 3);
}

long state_cache_find(state_cache *c, int32_t partition, const char *user, size_t user_len) {
    return state_cache_find_hashed(c, partition, user, user_len, key_hash(partition, user, user_len));
}

long state_cache_find_hashed(state_cache *c, int32_t partition, const char *user, size_t user_len, uint32_t h) {
    int32_t i = c->index[find_slot(c, partition, user, user_len, h)].entry;
    if (i < 0) {
        c->misses++;
        return -1;
    }
    c->hits++;
    if (c->e[i].in_lru) {   /* most recently used */
        lru_unlink(c, i);
        lru_push_front(c, i);
    }
    return i;
}

/* Removes entry i from the index (backward-shift deletion) and frees it. */
static void remove_entry(state_cache *c, int32_t i) {
    entry *x = &c->e[i];
    size_t mask = c->index_cap - 1;
    size_t j = x->hash & mask;
    while (c->index[j].entry != i) j = (j + 1) & mask;   /* i is in the index */
    c->index[j].entry = -1;
    for (size_t k = (j + 1) & mask; c->index[k].entry >= 0; k = (k + 1) & mask) {
        size_t home = c->index[k].hash & mask;
        /* The entry at k may move to the hole at j when its home is not in the cyclic range (j, k]. */
        int in_range = j < k ? (home > j && home <= k) : (home > j || home <= k);
        if (!in_range) {
            c->index[j] = c->index[k];
            c->index[k].entry = -1;
            j = k;
        }
    }
    lru_unlink(c, i);
    free(x->key_heap);
    memset(x, 0, sizeof *x);
    x->prev = x->next = -1;
    c->free_list[c->n_free++] = i;
    c->n--;
}

long state_cache_insert(state_cache *c, int32_t partition, const char *user, size_t user_len) {
    if (user_len > UINT32_MAX) return STATE_CACHE_NOMEM;
    if (c->n_free == 0) {
        if (c->lru_tail < 0) return STATE_CACHE_FULL; /* everything dirty, flushing or pinned */
        remove_entry(c, c->lru_tail);
        c->evictions++;
    }
    char *heap = NULL;
    if (user_len > KEY_INLINE && !(heap = malloc(user_len))) return STATE_CACHE_NOMEM;
    int32_t i = c->free_list[--c->n_free];
    entry *x = &c->e[i];
    memset(x, 0, sizeof *x);
    x->hash = key_hash(partition, user, user_len);
    x->partition = partition;
    x->key_len = (uint32_t)user_len;
    x->prev = x->next = -1;
    x->in_use = 1;
    x->key_heap = heap;
    memcpy(heap ? heap : x->key_inline, user, user_len);
    c->index[find_slot(c, partition, user, user_len, x->hash)] = (index_slot){i, x->hash};
    c->n++;
    lru_push_front(c, i);
    return i;
}

void *state_cache_record(state_cache *c, long e) { return c->slab + (size_t)e * c->stride; }
int32_t state_cache_partition(const state_cache *c, long e) { return c->e[e].partition; }
const char *state_cache_user(const state_cache *c, long e, size_t *len) {
    *len = c->e[e].key_len;
    return key_of(&c->e[e]);
}

void state_cache_pin(state_cache *c, long e) {
    entry *x = &c->e[e];
    if (x->pinned) return;
    x->pinned = 1;
    lru_unlink(c, (int32_t)e);
    c->pinned[c->n_pinned++] = (int32_t)e;
}

void state_cache_unpin_all(state_cache *c) {
    for (size_t k = 0; k < c->n_pinned; k++) {
        int32_t i = c->pinned[k];
        if (!c->e[i].in_use) continue;
        c->e[i].pinned = 0;
        lru_push_front(c, i);
    }
    c->n_pinned = 0;
}

void state_cache_mark_dirty(state_cache *c, long e) {
    entry *x = &c->e[e];
    if (x->dirty) return;
    x->dirty = 1;
    lru_unlink(c, (int32_t)e);
    c->dirty[c->n_dirty++] = (int32_t)e;
}

size_t state_cache_dirty_count(const state_cache *c) { return c->n_dirty; }

void state_cache_mark_clean(state_cache *c) {
    for (size_t k = 0; k < c->n_dirty; k++) {
        int32_t i = c->dirty[k];
        if (!c->e[i].in_use) continue;
        c->e[i].dirty = 0;
        lru_push_front(c, i);
    }
    c->n_dirty = 0;
}

size_t state_cache_begin_flush(state_cache *c) {
    for (size_t k = 0; k < c->n_dirty; k++) {
        entry *x = &c->e[c->dirty[k]];
        x->dirty = 0;
        x->flushing = 1;   /* neither dirty nor evictable until state_cache_end_flush */
    }
    int32_t *t = c->flush;   /* the dirty list becomes the flush list */
    c->flush = c->dirty, c->n_flush = c->n_dirty;
    c->dirty = t, c->n_dirty = 0;
    return c->n_flush;
}

long state_cache_flush_at(const state_cache *c, size_t i) { return c->flush[i]; }

void state_cache_end_flush(state_cache *c) {
    for (size_t k = 0; k < c->n_flush; k++) {
        int32_t i = c->flush[k];
        c->e[i].flushing = 0;
        lru_push_front(c, i);   /* unless it became dirty again meanwhile */
    }
    c->n_flush = 0;
}

void state_cache_abort_flush(state_cache *c) {
    for (size_t k = 0; k < c->n_flush; k++) {
        int32_t i = c->flush[k];
        entry *x = &c->e[i];
        if (!x->in_use || !x->flushing) continue;
        x->flushing = 0;
        if (!x->dirty) { /* not written after all: dirty again, for the next checkpoint */
            x->dirty = 1;
            c->dirty[c->n_dirty++] = i;
        }
    }
    c->n_flush = 0;
}

size_t state_cache_flushing(const state_cache *c) { return c->n_flush; }

void state_cache_drop_partition(state_cache *c, int32_t partition) {
    for (size_t i = 0; i < c->capacity; i++)
        if (c->e[i].in_use && c->e[i].partition == partition) remove_entry(c, (int32_t)i);
    /* Keep the dirty and pinned lists free of dropped entries. */
    size_t k = 0;
    for (size_t j = 0; j < c->n_dirty; j++)
        if (c->e[c->dirty[j]].in_use && c->e[c->dirty[j]].dirty) c->dirty[k++] = c->dirty[j];
    c->n_dirty = k;
    k = 0;
    for (size_t j = 0; j < c->n_pinned; j++)
        if (c->e[c->pinned[j]].in_use && c->e[c->pinned[j]].pinned) c->pinned[k++] = c->pinned[j];
    c->n_pinned = k;
}

size_t state_cache_size(const state_cache *c) { return c->n; }
size_t state_cache_capacity(const state_cache *c) { return c->capacity; }
uint64_t state_cache_hits(const state_cache *c) { return c->hits; }
uint64_t state_cache_misses(const state_cache *c) { return c->misses; }
uint64_t state_cache_evictions(const state_cache *c) { return c->evictions; }
