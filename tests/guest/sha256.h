/*
 * SHA-256 (FIPS 180-4) for the test guest, which has no crypto library: it
 * computes the PCR values it expects after TPM2_PCR_Extend.
 */
#ifndef GUEST_SHA256_H
#define GUEST_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32

typedef struct Sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes hashed */
    uint8_t block[64];
    size_t fill;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t len);
void sha256_final(Sha256 *s, uint8_t out[SHA256_DIGEST_SIZE]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);

#endif
