/* test_use_encoder_sha256: the weight blob's digest (use_encoder_sha256_hex, OpenSSL libcrypto's
 * EVP_Digest) against the FIPS 180-4 example digests and GNU sha256sum, at every block-boundary
 * length the padding has cases for; and the same vectors streamed in odd pieces through
 * libcrypto's EVP_DigestInit_ex / Update / Final_ex, the API a streaming caller would use. */
#include <openssl/evp.h>
#include <string.h>

#include "check.h"
#include "use_encoder.h"

static void hex_of(const unsigned char d[32], char hex[65]) {
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* one shot, then streamed in pieces of `step` bytes */
static void check_digest(const char *what, const void *data, size_t n, const char *want) {
    char hex[65], err[256] = "";
    CHECK(use_encoder_sha256_hex(data, n, hex, err, sizeof err) == 0, "%s: %s", what, err);
    CHECK(strcmp(hex, want) == 0, "%s: one shot %s, want %s", what, hex, want);
    for (size_t step = 1; step <= 67; step += 11) {
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        unsigned char d[EVP_MAX_MD_SIZE] = {0};
        unsigned int dn = 0;
        REQUIRE(c, "EVP_MD_CTX_new: out of memory");
        int ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
        for (size_t i = 0; ok && i < n; i += step)
            ok = EVP_DigestUpdate(c, (const char *)data + i, n - i < step ? n - i : step) == 1;
        ok = ok && EVP_DigestFinal_ex(c, d, &dn) == 1 && dn == 32;
        EVP_MD_CTX_free(c);
        CHECK(ok, "%s: streamed by %zu: an EVP call failed", what, step);
        hex_of(d, hex);
        CHECK(strcmp(hex, want) == 0, "%s: streamed by %zu gives %s, want %s", what, step, hex, want);
    }
}

int main(void) {
    check_digest("empty", "", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_digest("abc", "abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_digest("448-bit", m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* runs of 'a' at the lengths where the padding spills into another block (sha256sum's digests) */
    static const struct {
        size_t n;
        const char *hex;
    } as[] = {
        {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
        {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
        {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
        {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
        {128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"},
        {1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    char *a = malloc(1000000);
    REQUIRE(a, "out of memory");
    memset(a, 'a', 1000000);
    for (size_t i = 0; i < sizeof as / sizeof as[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "%zu x 'a'", as[i].n);
        check_digest(what, a, as[i].n, as[i].hex);
    }
    free(a);
    return check_exit("test_use_encoder_sha256");
}
