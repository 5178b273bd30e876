/* key_hash: the hash of a (partition, user id) key, shared by the batch's user table and the
 * state cache so a batch hashes each user once. FNV-1a over the id's bytes, 64-bit, seeded with
 * the partition and folded to 32 bits. */
#ifndef IEVO_KEY_HASH_H
#define IEVO_KEY_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t key_hash(int32_t partition, const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull ^ (uint32_t)partition;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

#endif
