/* checksum: CRC-32C (the model file's data checksum) and fp64 (the model fingerprint). */
#ifndef IEVO_CHECKSUM_H
#define IEVO_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli), the iSCSI/ext4 one; crc32c(0, "123456789", 9) == 0xE3069283. Chain calls
 * by passing the previous result. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t n);
/* A streaming 64-bit non-cryptographic hash (the model fingerprint): 8-byte words, multiply/
 * rotate mixing, splitmix64 finaliser. Stable across runs and machines of the same byte order. */
typedef struct {
    uint64_t h, total;
    unsigned char tail[8];
    int ntail;
} fp64_t;
void fp64_init(fp64_t *s, uint64_t seed);
void fp64_update(fp64_t *s, const void *buf, size_t n);
uint64_t fp64_final(const fp64_t *s);

#endif
