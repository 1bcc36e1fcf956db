/*
 * Hash algorithm names and one-shot hashing over nettle.
 */
#include <string.h>

#include <nettle/sha1.h>
#include <nettle/sha2.h>

#include "crypto/hash.h"

bool crypto_hash_parse(const char *name, CryptoHashAlg *out)
{
    if (!strcmp(name, "sha1")) {
        *out = CRYPTO_HASH_SHA1;
        return true;
    }
    if (!strcmp(name, "sha256")) {
        *out = CRYPTO_HASH_SHA256;
        return true;
    }
    return false;
}

const char *crypto_hash_name(CryptoHashAlg alg)
{
    return alg == CRYPTO_HASH_SHA1 ? "sha1" : "sha256";
}

size_t crypto_hash_digest_len(CryptoHashAlg alg)
{
    return alg == CRYPTO_HASH_SHA1 ? SHA1_DIGEST_SIZE : SHA256_DIGEST_SIZE;
}

void crypto_hash_two(CryptoHashAlg alg, const uint8_t *a, size_t a_len, const uint8_t *b,
                     size_t b_len, uint8_t *digest)
{
    if (alg == CRYPTO_HASH_SHA1) {
        struct sha1_ctx ctx;

        sha1_init(&ctx);
        sha1_update(&ctx, a_len, a);
        sha1_update(&ctx, b_len, b);
        sha1_digest(&ctx, SHA1_DIGEST_SIZE, digest);
    } else {
        struct sha256_ctx ctx;

        sha256_init(&ctx);
        sha256_update(&ctx, a_len, a);
        sha256_update(&ctx, b_len, b);
        sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    }
}
