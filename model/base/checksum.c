/* checksum: CRC-32C for the model file's data section and a 64-bit fingerprint hash.
 *
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) is the checksum of record in the file
 * header: it is standard, so a Python reader can verify a file without our code. The byte-table
 * version runs at roughly 1 byte/cycle; model files are tens of MB at most and are checked once
 * at load, so no SSE4.2 path.
 *
 * The fingerprint (fp64) identifies config + parameters + vocabularies inside every state blob.
 * It only has to be stable and well mixed, not standard: 8-byte words are mixed with
 * multiply/rotate (the xxHash64 round) and the result goes through the splitmix64 finaliser.
 */
#include <string.h>

#include "checksum.h"

static uint32_t crc_table[256];
static int crc_table_ready;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
    crc_table_ready = 1;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t n) {
    if (!crc_table_ready) crc_init(); /* idempotent: a race writes the same values */
    const unsigned char *p = buf;
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return ~c;
}

#define FP_P1 0x9E3779B185EBCA87ull
#define FP_P2 0xC2B2AE3D27D4EB4Full

static inline uint64_t fp_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t fp_round(uint64_t h, uint64_t w) {
    h ^= fp_rotl(w * FP_P2, 31) * FP_P1;
    return fp_rotl(h, 27) * FP_P1 + 0x85EBCA77C2B2AE63ull;
}

void fp64_init(fp64_t *s, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->h = seed ^ 0x27D4EB2F165667C5ull;
}

void fp64_update(fp64_t *s, const void *buf, size_t n) {
    const unsigned char *p = buf;
    s->total += n;
    while (n > 0 && s->ntail > 0 && s->ntail < 8) {
        s->tail[s->ntail++] = *p++;
        n--;
    }
    if (s->ntail == 8) {
        uint64_t w;
        memcpy(&w, s->tail, 8);
        s->h = fp_round(s->h, w);
        s->ntail = 0;
    }
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        s->h = fp_round(s->h, w);
    }
    while (n > 0) {
        s->tail[s->ntail++] = *p++;
        n--;
    }
}

uint64_t fp64_final(const fp64_t *s) {
    uint64_t h = s->h;
    if (s->ntail > 0) {
        uint64_t w = 0;
        memcpy(&w, s->tail, (size_t)s->ntail);
        h = fp_round(h, w ^ ((uint64_t)s->ntail << 56));
    }
    h ^= s->total;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}
