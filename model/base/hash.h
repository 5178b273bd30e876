/* hash: the code base's two hash functions, each for one job.
 *
 *   hash_stable   FNV-1a 64: the same value in every process and on every machine. For what is
 *                 stored or compared across processes (item keys in states, the fingerprint of
 *                 a text blob). Not for tables keyed by outside bytes: anyone can compute
 *                 colliding inputs.
 *   hash_keyed    SipHash-1-3 under a key drawn at random once per process (getrandom): for
 *                 every in-memory table keyed by bytes that producers choose (user ids, item
 *                 ids), so precomputed colliding ids cannot turn lookups into long probes. Its
 *                 values differ between processes: never store them.
 */
#ifndef IEVO_HASH_H
#define IEVO_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV_BASIS 0xcbf29ce484222325ull
#define HASH_FNV_PRIME 0x100000001b3ull

/* FNV-1a 64 of p[0..n), continuing from h (HASH_FNV_BASIS to start). */
static inline uint64_t hash_stable(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * HASH_FNV_PRIME;
    return h;
}

/* SipHash-1-3 of p[0..n) under this process's key, with tweak mixed into the key (a table's
 * partition, say), so equal bytes under two tweaks hash apart. */
uint64_t hash_keyed(uint64_t tweak, const void *p, size_t n);

/* SipHash-2-4 under (k0, k1): the paper's reference function, for the test vectors that pin
 * the round function hash_keyed shares. */
uint64_t hash_siphash24(uint64_t k0, uint64_t k1, const void *p, size_t n);

/* Replaces this process's key (tests only: a fixed key makes collisions reproducible). */
void hash_keyed_set_key(uint64_t k0, uint64_t k1);

#endif
