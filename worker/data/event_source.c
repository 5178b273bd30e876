/* event_source: the event list the loaders fill, its string arena (interning), and the stable
 * sort by event time. The loaders themselves live in movielens.c, jsonl_source.c, synthetic.c.
 *
 * Memory: one source_event per event in a single array, strings in 1 MiB arena chunks with an
 * open-addressing hash table over them (load <= 1/2). Sorting builds a (ts, index) key array,
 * sorts it and permutes the events in place by following cycles, so a 10 M event list needs
 * 16 bytes per event extra, not a second copy of the events.
 */
#include "event_source_internal.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define EVENT_ARENA_CHUNK (1u << 20)

typedef struct event_chunk {
    struct event_chunk *next;
    size_t used, cap;
    char data[];
} event_chunk;

typedef struct {
    event_chunk *chunks;      /* newest first */
    const char **slots;       /* hash table of interned strings */
    uint64_t *hashes;         /* their hashes (0 = empty slot) */
    size_t nslots, nused;
    size_t ev_cap;            /* capacity of event_list.ev */
} event_arena;

int event_list_init(event_list *l) {
    memset(l, 0, sizeof *l);
    event_arena *a = calloc(1, sizeof *a);
    if (!a) return -1;
    l->arena = a;
    return 0;
}

void event_list_free(event_list *l) {
    if (!l) return;
    event_arena *a = l->arena;
    if (a) {
        for (event_chunk *c = a->chunks, *next; c; c = next) {
            next = c->next;
            free(c);
        }
        free(a->slots);
        free(a->hashes);
        free(a);
    }
    free(l->ev);
    memset(l, 0, sizeof *l);
}

int event_list_reserve(event_list *l, size_t n) {
    event_arena *a = l->arena;
    if (n <= a->ev_cap) return 0;
    if (n > SIZE_MAX / sizeof(source_event)) return -1;
    source_event *ne = realloc(l->ev, n * sizeof *ne);
    if (!ne) return -1;
    l->ev = ne;
    a->ev_cap = n;
    return 0;
}

source_event *event_list_push(event_list *l) {
    event_arena *a = l->arena;
    if (l->n == a->ev_cap && event_list_reserve(l, a->ev_cap ? a->ev_cap * 2 : 1024)) return NULL;
    source_event *e = &l->ev[l->n++];
    memset(e, 0, sizeof *e);
    e->topic = SOURCE_NO_TOPIC;
    return e;
}

static char *event_arena_alloc(event_arena *a, size_t n) {
    event_chunk *c = a->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > EVENT_ARENA_CHUNK ? n : EVENT_ARENA_CHUNK;
        event_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc) return NULL;
        nc->next = a->chunks;
        nc->used = 0;
        nc->cap = cap;
        a->chunks = c = nc;
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

const char *event_list_store(event_list *l, const char *s, size_t n) {
    char *p = event_arena_alloc(l->arena, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* hash_keyed (the strings are ids from outside), never 0 (0 marks an empty slot). */
static uint64_t event_hash(const char *s, size_t n) {
    uint64_t h = hash_keyed(0, s, n);
    return h ? h : 1;
}

static int event_arena_grow(event_arena *a) {
    size_t ns = a->nslots ? a->nslots * 2 : 1024;
    const char **slots = calloc(ns, sizeof *slots);
    uint64_t *hashes = calloc(ns, sizeof *hashes);
    if (!slots || !hashes) {
        free(slots);
        free(hashes);
        return -1;
    }
    for (size_t i = 0; i < a->nslots; i++) {
        if (!a->hashes[i]) continue;
        size_t j = a->hashes[i] & (ns - 1);
        while (hashes[j]) j = (j + 1) & (ns - 1);
        hashes[j] = a->hashes[i];
        slots[j] = a->slots[i];
    }
    free(a->slots);
    free(a->hashes);
    a->slots = slots;
    a->hashes = hashes;
    a->nslots = ns;
    return 0;
}

const char *event_list_intern(event_list *l, const char *s, size_t n) {
    event_arena *a = l->arena;
    if (2 * (a->nused + 1) > a->nslots && event_arena_grow(a)) return NULL;
    uint64_t h = event_hash(s, n);
    size_t j = h & (a->nslots - 1);
    while (a->hashes[j]) {
        if (a->hashes[j] == h && strncmp(a->slots[j], s, n) == 0 && a->slots[j][n] == 0) return a->slots[j];
        j = (j + 1) & (a->nslots - 1);
    }
    const char *p = event_list_store(l, s, n);
    if (!p) return NULL;
    a->hashes[j] = h;
    a->slots[j] = p;
    a->nused++;
    return p;
}

typedef struct {
    int64_t ts;
    size_t idx;
} event_sort_key;

static int event_sort_cmp(const void *pa, const void *pb) {
    const event_sort_key *a = pa, *b = pb;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

int event_list_sort_stable(event_list *l) {
    size_t n = l->n, k;
    for (k = 1; k < n && l->ev[k - 1].ts <= l->ev[k].ts; k++) {}
    if (k >= n) return 0;   /* already sorted: the common case for event logs */
    event_sort_key *keys = malloc(n * sizeof *keys);
    if (!keys) return -1;
    for (size_t i = 0; i < n; i++) keys[i] = (event_sort_key){l->ev[i].ts, i};
    /* The index breaks ties, so qsort's instability cannot reorder equal timestamps. */
    qsort(keys, n, sizeof *keys, event_sort_cmp);
    /* Permute in place: position i takes the event at keys[i].idx; a done position has idx == i. */
    for (size_t i = 0; i < n; i++) {
        if (keys[i].idx == i) continue;
        source_event tmp = l->ev[i];
        size_t j = i;
        for (;;) {
            size_t src = keys[j].idx;
            keys[j].idx = j;
            if (src == i) {
                l->ev[j] = tmp;
                break;
            }
            l->ev[j] = l->ev[src];
            j = src;
        }
    }
    free(keys);
    return 0;
}
