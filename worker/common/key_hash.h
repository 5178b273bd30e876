/* key_hash: the hash of a (partition, user id) key, shared by the batch's user table and the
 * state cache so a batch hashes each user once. The user id is a producer's choice, so the hash
 * is keyed (hash.h: SipHash-1-3 under a per-process random key, the partition as the tweak),
 * folded to 32 bits. */
#ifndef IEVO_KEY_HASH_H
#define IEVO_KEY_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

static inline uint32_t key_hash(int32_t partition, const char *s, size_t n) {
    uint64_t h = hash_keyed((uint32_t)partition, s, n);
    return (uint32_t)(h ^ (h >> 32));
}

#endif
