/*
 * AES-XTS over 512-byte sectors with the plain64 IV generator: the tweak of
 * sector n is LE64(n) followed by 8 zero bytes (IEEE 1619 data unit number).
 */
#ifndef CRYPTO_XTS_H
#define CRYPTO_XTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

typedef struct CryptoXts CryptoXts;

/* key_len 32 (XTS-AES-128) or 64 (XTS-AES-256): data key, then tweak key. */
CryptoXts *crypto_xts_new(const uint8_t *key, size_t key_len, GError **errp);
void crypto_xts_free(CryptoXts *xts);
/* In place; len is a multiple of 512; the first sector has number `sector`. */
void crypto_xts_encrypt(CryptoXts *xts, uint64_t sector, uint8_t *buf, size_t len);
void crypto_xts_decrypt(CryptoXts *xts, uint64_t sector, uint8_t *buf, size_t len);

#endif
