/* test_hash: the two hash functions of model/base/hash.h.
 *  - SipHash-2-4 against the reference vectors of Aumasson and Bernstein's paper (key 00..0f,
 *    message 00..n-1): the round function and the tail handling hash_keyed (1-3) shares;
 *  - hash_keyed differs between keys and tweaks, and is stable under one key;
 *  - FNV-1a 64 against its published vectors.
 */
#include "check.h"
#include "hash.h"

static void test_siphash_vectors(void) {
    /* vectors.h of the reference implementation, vectors_sip64[n], as little-endian u64 */
    static const uint64_t want[] = {0x726fdb47dd0e0e31ull, 0x74f839c593dc67fdull, 0x0d6c8009d9a94f5aull,
                                    0x85676696d7fb7e2dull};
    unsigned char key[16], msg[64];
    for (int i = 0; i < 16; i++) key[i] = (unsigned char)i;
    for (int i = 0; i < 64; i++) msg[i] = (unsigned char)i;
    uint64_t k0 = 0, k1 = 0;
    for (int i = 0; i < 8; i++) k0 |= (uint64_t)key[i] << (8 * i), k1 |= (uint64_t)key[8 + i] << (8 * i);
    for (int n = 0; n < 4; n++)
        CHECK(hash_siphash24(k0, k1, msg, (size_t)n) == want[n], "SipHash-2-4 of %d bytes: %016llx", n,
              (unsigned long long)hash_siphash24(k0, k1, msg, (size_t)n));
    CHECK(hash_siphash24(k0, k1, msg, 15) == 0xa129ca6149be45e5ull, "SipHash-2-4, the paper's 15-byte example");
}

static void test_keyed(void) {
    hash_keyed_set_key(1, 2);
    uint64_t a = hash_keyed(0, "user-1", 6), b = hash_keyed(0, "user-1", 6);
    CHECK(a == b, "the same bytes under the same key and tweak");
    CHECK(hash_keyed(1, "user-1", 6) != a, "another tweak");
    CHECK(hash_keyed(0, "user-2", 6) != a, "other bytes");
    hash_keyed_set_key(3, 4);
    CHECK(hash_keyed(0, "user-1", 6) != a, "another key");
}

static void test_stable(void) {
    CHECK(hash_stable(HASH_FNV_BASIS, "", 0) == 0xcbf29ce484222325ull, "FNV-1a 64 of the empty string");
    CHECK(hash_stable(HASH_FNV_BASIS, "a", 1) == 0xaf63dc4c8601ec8cull, "FNV-1a 64 of 'a'");
    CHECK(hash_stable(HASH_FNV_BASIS, "foobar", 6) == 0x85944171f73967e8ull, "FNV-1a 64 of 'foobar'");
}

int main(void) {
    test_siphash_vectors();
    test_keyed();
    test_stable();
    return check_exit("test_hash");
}
