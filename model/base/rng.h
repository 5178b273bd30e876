/* rng: a tiny deterministic random generator for model initialisation (and tests).
 *
 * splitmix64 expands the seed into the state of xoshiro256** (Blackman & Vigna); both are
 * public-domain algorithms with published reference outputs. Same seed, same sequence, on any
 * platform: initialisation must be reproducible so that `ievo model init --seed N` always
 * writes the same file. Normal draws use Box-Muller (libm log/sqrt/cos: same glibc, same bits).
 */
#ifndef IEVO_RNG_H
#define IEVO_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; } rng_t;

static inline uint64_t rng_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void rng_seed(rng_t *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = rng_splitmix64(&x);
}

static inline uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** next(). */
static inline uint64_t rng_u64(rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = rng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double rng_uniform(rng_t *r) { return (double)(rng_u64(r) >> 11) * 0x1.0p-53; }

/* Uniform in [-bound, bound). */
static inline float rng_symmetric(rng_t *r, double bound) { return (float)((2.0 * rng_uniform(r) - 1.0) * bound); }

/* Standard normal (Box-Muller, one value per two uniforms: simple and reproducible). */
static inline double rng_normal(rng_t *r) {
    double u1 = 1.0 - rng_uniform(r); /* (0, 1]: log is finite */
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
