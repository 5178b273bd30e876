/* readahead: fetched records per partition, batches taken across partitions (readahead.h). */
#include "readahead.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    rd_kafka_message_t **ring;   /* [cap], a FIFO from head */
    size_t cap, head, n;
    int active;                  /* listed in readahead.active */
} lane;

struct readahead {
    readahead_destroy_fn destroy;
    lane *lanes;        /* [n_lanes]: lanes[0] the partitionless, lanes[p + 1] partition p */
    size_t n_lanes;
    size_t *active;     /* [n_active] indices of the partitions' lanes that hold records, in arrival order */
    size_t n_active, active_cap;
    size_t count;       /* messages held, all lanes */
    size_t bytes;       /* their keys' and payloads' bytes */
    size_t cursor;      /* turns taken: the first lane of the next turn */
};

readahead *readahead_new(readahead_destroy_fn destroy) {
    readahead *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->destroy = destroy;
    return r;
}

static size_t msg_bytes(const rd_kafka_message_t *m) { return m->len + m->key_len; }

static rd_kafka_message_t *lane_pop(lane *l) {
    rd_kafka_message_t *m = l->ring[l->head];
    l->head = (l->head + 1) % l->cap;
    l->n--;
    return m;
}

static void lane_clear(readahead *r, lane *l) {
    while (l->n) {
        rd_kafka_message_t *m = lane_pop(l);
        r->count--;
        r->bytes -= msg_bytes(m);
        r->destroy(m);
    }
    l->head = 0;
}

void readahead_clear(readahead *r) {
    for (size_t i = 0; i < r->n_lanes; i++) {
        lane_clear(r, &r->lanes[i]);
        r->lanes[i].active = 0;
    }
    r->n_active = 0;
}

void readahead_free(readahead *r) {
    if (!r) return;
    readahead_clear(r);
    for (size_t i = 0; i < r->n_lanes; i++) free(r->lanes[i].ring);
    free(r->lanes);
    free(r->active);
    free(r);
}

size_t readahead_count(const readahead *r) { return r->count; }

size_t readahead_bytes(const readahead *r) { return r->bytes; }

static int lane_grow(lane *l) {
    size_t cap = l->cap ? 2 * l->cap : 64;
    rd_kafka_message_t **ring = malloc(cap * sizeof *ring);
    if (!ring) return -1;
    for (size_t i = 0; i < l->n; i++) ring[i] = l->ring[(l->head + i) % l->cap];
    free(l->ring);
    l->ring = ring;
    l->cap = cap;
    l->head = 0;
    return 0;
}

int readahead_push(readahead *r, rd_kafka_message_t *m) {
    size_t li = m->partition < 0 ? 0 : (size_t)m->partition + 1;
    if (li >= r->n_lanes) {
        size_t n = r->n_lanes ? r->n_lanes : 16;
        while (n <= li) n *= 2;
        lane *lanes = realloc(r->lanes, n * sizeof *lanes);
        if (!lanes) return -1;
        memset(lanes + r->n_lanes, 0, (n - r->n_lanes) * sizeof *lanes);
        r->lanes = lanes;
        r->n_lanes = n;
    }
    lane *l = &r->lanes[li];
    if (l->n == l->cap && lane_grow(l)) return -1;
    if (li > 0 && !l->active) {
        if (r->n_active == r->active_cap) {
            size_t cap = r->active_cap ? 2 * r->active_cap : 16;
            size_t *a = realloc(r->active, cap * sizeof *a);
            if (!a) return -1;
            r->active = a;
            r->active_cap = cap;
        }
        r->active[r->n_active++] = li;
        l->active = 1;
    }
    l->ring[(l->head + l->n) % l->cap] = m;
    l->n++;
    r->count++;
    r->bytes += msg_bytes(m);
    return 0;
}

/* Removes the lanes that ran empty from the active list, keeping the others' order. */
static void compact_active(readahead *r) {
    size_t k = 0;
    for (size_t i = 0; i < r->n_active; i++) {
        lane *l = &r->lanes[r->active[i]];
        if (l->n) r->active[k++] = r->active[i];
        else l->active = 0;
    }
    r->n_active = k;
}

size_t readahead_take(readahead *r, rd_kafka_message_t **out, size_t max) {
    size_t n = 0;
    if (r->n_lanes) {
        lane *l0 = &r->lanes[0];
        while (n < max && l0->n) out[n++] = lane_pop(l0);
    }
    while (n < max && r->n_active > 0) {
        size_t k = r->n_active, share = (max - n) / k;
        if (share == 0) share = 1;
        for (size_t i = 0; i < k && n < max; i++) {
            lane *l = &r->lanes[r->active[(r->cursor + i) % k]];
            for (size_t j = 0; j < share && l->n && n < max; j++) out[n++] = lane_pop(l);
        }
        compact_active(r);
    }
    r->cursor++;
    r->count -= n;
    for (size_t i = 0; i < n; i++) r->bytes -= msg_bytes(out[i]);
    return n;
}

void readahead_drop_partition(readahead *r, int32_t p) {
    size_t li = p < 0 ? 0 : (size_t)p + 1;
    if (li >= r->n_lanes) return;
    lane *l = &r->lanes[li];
    lane_clear(r, l);
    if (li > 0) compact_active(r);
}
