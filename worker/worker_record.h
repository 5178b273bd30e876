/* worker_record: what the worker stores per user, in RocksDB and in the changelog.
 *
 *   le64 last applied input offset (-1: none) | the model's state blob (model_state_size bytes)
 *
 * The offset makes applying idempotent per user: an event at or below it is already in the
 * state. That is what lets a partition resume from a changelog marker that lags some users'
 * states (see changelog.h). */
#ifndef IEVO_WORKER_RECORD_H
#define IEVO_WORKER_RECORD_H

#include <stdint.h>
#include <string.h>

#define RECORD_HEADER 8

static inline int64_t record_last_offset(const void *rec) {
    uint64_t v = 0;
    const uint8_t *p = rec;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return (int64_t)v;
}

static inline void record_set_last_offset(void *rec, int64_t off) {
    uint64_t v = (uint64_t)off;
    uint8_t *p = rec;
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void *record_blob(void *rec) { return (uint8_t *)rec + RECORD_HEADER; }
static inline const void *record_blob_c(const void *rec) { return (const uint8_t *)rec + RECORD_HEADER; }

#endif
