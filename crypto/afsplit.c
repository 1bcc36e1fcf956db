/*
 * AF splitter: merge is d = 0; d = diffuse(d ^ s_i) for the first n-1 stripes;
 * key = d ^ s_{n-1}. Split picks the first n-1 stripes at random and solves
 * for the last one.
 */
#include <string.h>

#include <nettle/memxor.h>

#include "crypto/afsplit.h"
#include "crypto/luks.h"
#include "crypto/secret.h"

/*
 * Replace each digest-sized chunk j of buf (the last may be shorter) with the
 * leading bytes of HASH(BE32(j) || chunk).
 */
static void afsplit_diffuse(CryptoHashAlg alg, uint8_t *buf, size_t len)
{
    size_t digest_len = crypto_hash_digest_len(alg);
    uint8_t digest[CRYPTO_HASH_MAX_DIGEST];
    uint32_t j = 0;

    for (size_t off = 0; off < len; off += digest_len, j++) {
        size_t n = MIN(digest_len, len - off);
        uint8_t be_j[4] = {j >> 24, j >> 16, j >> 8, j};

        crypto_hash_two(alg, be_j, sizeof(be_j), buf + off, n, digest);
        memcpy(buf + off, digest, n);
    }
    explicit_bzero(digest, sizeof(digest));
}

/* d = diffused XOR-chain over the first stripes-1 blocks of `in`. */
static void afsplit_chain(CryptoHashAlg alg, size_t block_len, uint32_t stripes,
                          const uint8_t *in, uint8_t *d)
{
    memset(d, 0, block_len);
    for (uint32_t i = 0; i + 1 < stripes; i++) {
        memxor(d, in + (size_t)i * block_len, block_len);
        afsplit_diffuse(alg, d, block_len);
    }
}

bool afsplit_split(CryptoHashAlg alg, size_t block_len, uint32_t stripes,
                   const uint8_t *in, uint8_t *out, GError **errp)
{
    size_t random_len;
    uint8_t *d;

    g_return_val_if_fail(stripes >= 1 && block_len > 0, false);
    random_len = (size_t)(stripes - 1) * block_len;
    if (!crypto_random_bytes(out, random_len, errp)) {
        return false;
    }
    d = secure_alloc(block_len);
    afsplit_chain(alg, block_len, stripes, out, d);
    memxor3(out + random_len, d, in, block_len);
    secure_free(d, block_len);
    return true;
}

void afsplit_merge(CryptoHashAlg alg, size_t block_len, uint32_t stripes,
                   const uint8_t *in, uint8_t *out)
{
    uint8_t *d;

    g_return_if_fail(stripes >= 1 && block_len > 0);
    d = secure_alloc(block_len);
    afsplit_chain(alg, block_len, stripes, in, d);
    memxor3(out, d, in + (size_t)(stripes - 1) * block_len, block_len);
    secure_free(d, block_len);
}
