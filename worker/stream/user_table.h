/* user_table: the users of one micro-batch, keyed by (partition, user_id), each with its state
 * buffer and how many of its events the batch holds so far (its next wave number).
 *
 * Open addressing over a power-of-two table; entries and their state buffers live in arrays
 * that are reused batch after batch, so a steady-state batch allocates nothing. Keys point
 * into the batch's Kafka messages, which outlive the table's use. */
#ifndef IEVO_USER_TABLE_H
#define IEVO_USER_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *user;     /* not NUL-terminated; points into a message payload */
    size_t user_len;
    int32_t partition;
    uint32_t hash;        /* key_hash(partition, user): the state cache's too */
    int waves;            /* events of this user applied so far in the batch */
    int found;            /* record loaded from the store (vs. freshly initialised) */
    int64_t last_offset;  /* last input offset applied to this user (-1: none) */
    long entry;           /* the worker's state_cache entry holding the user's record */
} user_slot;

typedef struct {
    user_slot *slots;     /* n used, in first-seen order */
    uint8_t *states;      /* n * state_size bytes, slot i at states + i*state_size (none if 0) */
    size_t n, cap;
    size_t state_size;
    int32_t *index;       /* hash table of slot indices, -1 = empty */
    size_t index_cap;     /* power of two, >= 2 * cap */
} user_table;

int user_table_init(user_table *t, size_t state_size, size_t initial_cap);
void user_table_free(user_table *t);
void user_table_clear(user_table *t);
/* Finds or adds the slot for (partition, user). Returns its index, or -1 on ENOMEM. */
long user_table_upsert(user_table *t, int32_t partition, const char *user, size_t user_len);
static inline void *user_table_state(user_table *t, size_t i) { return t->states + i * t->state_size; }

#endif
