/*
 * Hash algorithms used by LUKS (AF splitter, PBKDF2): names as they appear in
 * a LUKS1 header's hash_spec and in `encrypt.hash-alg`.
 */
#ifndef CRYPTO_HASH_H
#define CRYPTO_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CRYPTO_HASH_SHA1,
    CRYPTO_HASH_SHA256,
} CryptoHashAlg;

#define CRYPTO_HASH_MAX_DIGEST 32

/* "sha1" / "sha256" -> algorithm; false for anything else. */
bool crypto_hash_parse(const char *name, CryptoHashAlg *out);
const char *crypto_hash_name(CryptoHashAlg alg);
size_t crypto_hash_digest_len(CryptoHashAlg alg);
/* digest = HASH(a || b); digest holds crypto_hash_digest_len(alg) bytes. */
void crypto_hash_two(CryptoHashAlg alg, const uint8_t *a, size_t a_len, const uint8_t *b,
                     size_t b_len, uint8_t *digest);

#endif
