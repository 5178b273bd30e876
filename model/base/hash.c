/* hash: SipHash-1-3 (Aumasson and Bernstein; the variant Rust's HashMap and Python's str hash
 * use: one compression round per word, three finalisation rounds) under a per-process key.
 * Written here because it is 40 lines and called per lookup: OpenSSL's SipHash is an EVP_MAC,
 * whose per-call context set-up costs more than hashing a user id. */
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "hash.h"

static uint64_t key0, key1;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void key_init(void) {
    uint64_t k[2] = {0, 0};
    ssize_t got = getrandom(k, sizeof k, 0);
    if (got != (ssize_t)sizeof k) { /* no entropy source: fall back to what varies per process */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[0] ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&ts;
        k[1] ^= (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)(uintptr_t)&key0;
    }
    key0 = k[0], key1 = k[1];
}

void hash_keyed_set_key(uint64_t k0, uint64_t k1) {
    pthread_once(&key_once, key_init);
    key0 = k0, key1 = k1;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                       \
    do {                                                                                                               \
        v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32);                                                      \
        v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                                                                         \
        v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                                                                         \
        v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32);                                                      \
    } while (0)

/* SipHash-c-d of p[0..n) under (k0, k1). */
static uint64_t siphash(int c, int d, uint64_t k0, uint64_t k1, const void *p, size_t n) {
    const unsigned char *in = p;
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    uint64_t b = (uint64_t)n << 56, m;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&m, in + i, 8); /* little-endian machines only (x86-64, arm64), as the state format */
        v3 ^= m;
        for (int r = 0; r < c; r++) SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; i + j < n; j++) b |= (uint64_t)in[i + j] << (8 * j);
    v3 ^= b;
    for (int r = 0; r < c; r++) SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    for (int r = 0; r < d; r++) SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t hash_keyed(uint64_t tweak, const void *p, size_t n) {
    pthread_once(&key_once, key_init);
    return siphash(1, 3, key0 ^ tweak, key1, p, n);
}

uint64_t hash_siphash24(uint64_t k0, uint64_t k1, const void *p, size_t n) { return siphash(2, 4, k0, k1, p, n); }
