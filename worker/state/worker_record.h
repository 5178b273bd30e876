/* worker_record: what the worker stores per user, in RocksDB and in the changelog.
 *
 *   le64 last applied input offset (-1: none) | the model's state blob (model_state_size bytes)
 *
 * The offset makes applying idempotent per user: an event at or below it is already in the
 * state. That is what lets a partition resume from a changelog marker that lags some users'
 * states (see changelog.h).
 *
 * Stored form (the RocksDB value and the changelog record): the record without its trailing
 * zero bytes, never shorter than RECORD_MIN. A state's unused window slots are zeros, so a user
 * with few events stores few slots (one event: at most 700 of 940 bytes at H = D = 64,
 * W = 16), and the bytes a checkpoint writes shrink with them (WAL, memtable, flush,
 * compaction, changelog).
 * record_load pads the zeros back: the record read is bit for bit the record written. A
 * full-size value is the same record untrimmed, and loads the same. */
#ifndef IEVO_WORKER_RECORD_H
#define IEVO_WORKER_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model.h"

#define RECORD_HEADER 8
#define RECORD_MIN (RECORD_HEADER + MODEL_STATE_HEADER)   /* the offset and the state's header */

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

/* The stored length of a record of size bytes (size >= RECORD_MIN): its trailing zeros cut. */
static inline size_t record_stored_len(const void *rec, size_t size) {
    const uint8_t *p = rec;
    size_t n = size;
    for (uint64_t word; n >= RECORD_MIN + 8; n -= 8) {   /* eight bytes at a time, then one */
        memcpy(&word, p + n - 8, 8);
        if (word) break;
    }
    while (n > RECORD_MIN && p[n - 1] == 0) n--;
    return n;
}

/* Loads a stored record of len bytes into rec (size bytes): copies it and zeroes the rest.
 * Returns 0, or -1 (rec untouched) when len is not a stored length for size. */
static inline int record_load(void *rec, size_t size, const void *stored, size_t len) {
    if (len < RECORD_MIN || len > size) return -1;
    memcpy(rec, stored, len);
    memset((uint8_t *)rec + len, 0, size - len);
    return 0;
}

/* Checks a record read back from outside the process (the changelog, RocksDB) before it is
 * used: its state must be one of model m that a step accepts (model_state_validate_stored:
 * header, counters, window slots, finite values) and its applied offset -1 or below input_end
 * (the input partition's end; -1: unknown, not checked). Returns 0, or -1 with why saying what
 * is wrong (worker_record.c). */
int record_check_loaded(const model *m, const void *rec, int64_t input_end, char *why, size_t whylen);
/* record_check_loaded for a record in its stored form (len bytes; records of m are size bytes),
 * loaded into scratch (size bytes), which then holds it. */
int record_check_stored(const model *m, size_t size, const void *stored, size_t len, int64_t input_end, void *scratch,
                        char *why, size_t whylen);

#endif
