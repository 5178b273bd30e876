/* use_sha256: SHA-256 (FIPS 180-4), to check the USE-lite weight blob against its pinned digest.
 *
 * Why here: model/ links nothing but oneDNN and libm, and the only other checksum in the project
 * (CRC-32C, checksum.c) guards against accidents, not against a swapped file. A plain portable
 * implementation hashes the 28 MB blob in about 0.1 s, once per process.
 */
#ifndef IEVO_USE_SHA256_H
#define IEVO_USE_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t total;        /* bytes hashed so far */
    unsigned char buf[64]; /* a partial block */
    size_t nbuf;
} use_sha256_ctx;

void use_sha256_init(use_sha256_ctx *c);
void use_sha256_update(use_sha256_ctx *c, const void *data, size_t n);
void use_sha256_final(use_sha256_ctx *c, unsigned char digest[32]);
/* One shot, digest as 64 lower-case hex characters plus NUL. */
void use_sha256_hex(const void *data, size_t n, char hex[65]);

#endif
