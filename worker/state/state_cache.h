/* state_cache: the hot users' records in memory, written back to RocksDB and the changelog in
 * checkpoints rather than after every batch.
 *
 * A fixed-capacity table of (partition, user_id) -> record (worker_record.h), with an LRU list of
 * clean entries and a list of dirty ones. Records live in one slab allocated at start-up, keys
 * inline up to 64 bytes (a longer key takes one allocation per user, never per event), so a
 * steady-state batch allocates nothing. The cache never writes anything itself: the worker's
 * checkpoint (worker/stream/checkpoint.c) writes the dirty records out between begin_flush and
 * end_flush. Only clean, unpinned entries are evicted; when none is left the caller must
 * checkpoint first.
 */
#ifndef IEVO_STATE_CACHE_H
#define IEVO_STATE_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct state_cache state_cache;

/* capacity: entries; record_size: bytes per record. */
int state_cache_new(state_cache **out, size_t capacity, size_t record_size);
void state_cache_free(state_cache *c);

/* Entry index of (partition, user), or -1 when absent. Counts a hit or a miss. */
long state_cache_find(state_cache *c, int32_t partition, const char *user, size_t user_len);
/* The same with the key's hash given: hash = key_hash(partition, user, user_len) (key_hash.h). */
long state_cache_find_hashed(state_cache *c, int32_t partition, const char *user, size_t user_len, uint32_t hash);
/* Asks the CPU for what a find of the key with this hash will read, without reading it: a batch
 * runs each stage over all its keys before the next stage, and then its finds, so the cache
 * misses of a table of a million users overlap instead of coming one find at a time.
 *   stage 0: the key's home index slot;
 *   stage 1: the entry there when its hash matches, and the first line of its record;
 *   stage 2: that entry's LRU neighbours (a hit moves it from between them). */
void state_cache_prefetch(const state_cache *c, uint32_t hash, int stage);
/* Adds (partition, user) (absent), evicting the least recently used clean unpinned entry when
 * full. Returns the new entry, STATE_CACHE_FULL when full of dirty, flushing or pinned entries
 * (checkpoint, then retry), or STATE_CACHE_NOMEM. The record's content is undefined until the
 * caller fills it. */
enum { STATE_CACHE_FULL = -1, STATE_CACHE_NOMEM = -2 };
long state_cache_insert(state_cache *c, int32_t partition, const char *user, size_t user_len);

void *state_cache_record(state_cache *c, long e);
int32_t state_cache_partition(const state_cache *c, long e);
const char *state_cache_user(const state_cache *c, long e, size_t *len);

/* Pinned entries are in use by the current batch and are never evicted. Unpin all at its end. */
void state_cache_pin(state_cache *c, long e);
void state_cache_unpin_all(state_cache *c);
void state_cache_mark_dirty(state_cache *c, long e);

/* How many entries are dirty. */
size_t state_cache_dirty_count(const state_cache *c);
/* After a checkpoint wrote every dirty record: all become clean (evictable). */
void state_cache_mark_clean(state_cache *c);

/* A checkpoint (worker/stream/checkpoint.c): begin_flush turns every dirty entry into a flushing
 * one (returns how many) and empties the dirty list; a flushing entry is not evictable, and a
 * change to it makes it dirty again (for the next checkpoint). end_flush, once the flushed
 * records are durable, makes the flushing entries that stayed unchanged clean. One flush at a
 * time; no partition is dropped while one is in progress. */
size_t state_cache_begin_flush(state_cache *c);
long state_cache_flush_at(const state_cache *c, size_t i);
void state_cache_end_flush(state_cache *c);
/* A flush that did not make its records durable: every flushing entry is dirty again. */
void state_cache_abort_flush(state_cache *c);
size_t state_cache_flushing(const state_cache *c);

/* Drops every entry of one partition (revoked, or about to be restored). Dirty entries of it
 * must have been checkpointed first. */
void state_cache_drop_partition(state_cache *c, int32_t partition);

size_t state_cache_size(const state_cache *c);
size_t state_cache_capacity(const state_cache *c);
uint64_t state_cache_hits(const state_cache *c);
uint64_t state_cache_misses(const state_cache *c);
uint64_t state_cache_evictions(const state_cache *c);

#endif
