/*
 * XTS-AES-128/256 plain64 over nettle. The expanded keys live in locked
 * memory; nettle reads them through const pointers, so one context can serve
 * several threads.
 */
#include <string.h>

#include <nettle/xts.h>

#include "crypto/luks.h"
#include "crypto/secret.h"
#include "crypto/xts.h"
#include "util/error.h"

typedef struct CryptoXtsKeys {
    union {
        struct xts_aes128_key aes128;
        struct xts_aes256_key aes256;
    } enc, dec;
} CryptoXtsKeys;

struct CryptoXts {
    size_t key_len;
    CryptoXtsKeys *keys; /* secure_alloc */
};

CryptoXts *crypto_xts_new(const uint8_t *key, size_t key_len, GError **errp)
{
    CryptoXts *xts;

    if (key_len != 32 && key_len != 64) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "XTS-AES needs a 32- or 64-byte key, not %zu bytes", key_len);
        return NULL;
    }
    xts = g_new0(CryptoXts, 1);
    xts->key_len = key_len;
    xts->keys = secure_alloc(sizeof(*xts->keys));
    if (key_len == 32) {
        xts_aes128_set_encrypt_key(&xts->keys->enc.aes128, key);
        xts_aes128_set_decrypt_key(&xts->keys->dec.aes128, key);
    } else {
        xts_aes256_set_encrypt_key(&xts->keys->enc.aes256, key);
        xts_aes256_set_decrypt_key(&xts->keys->dec.aes256, key);
    }
    return xts;
}

void crypto_xts_free(CryptoXts *xts)
{
    if (xts) {
        secure_free(xts->keys, sizeof(*xts->keys));
        g_free(xts);
    }
}

static void crypto_xts_tweak(uint64_t sector, uint8_t tweak[16])
{
    uint64_t le = GUINT64_TO_LE(sector);

    memcpy(tweak, &le, 8);
    memset(tweak + 8, 0, 8);
}

void crypto_xts_encrypt(CryptoXts *xts, uint64_t sector, uint8_t *buf, size_t len)
{
    uint8_t tweak[16];

    g_assert(len % LUKS_SECTOR_SIZE == 0);
    for (size_t off = 0; off < len; off += LUKS_SECTOR_SIZE, sector++) {
        crypto_xts_tweak(sector, tweak);
        if (xts->key_len == 32) {
            xts_aes128_encrypt_message(&xts->keys->enc.aes128, tweak, LUKS_SECTOR_SIZE,
                                       buf + off, buf + off);
        } else {
            xts_aes256_encrypt_message(&xts->keys->enc.aes256, tweak, LUKS_SECTOR_SIZE,
                                       buf + off, buf + off);
        }
    }
}

void crypto_xts_decrypt(CryptoXts *xts, uint64_t sector, uint8_t *buf, size_t len)
{
    uint8_t tweak[16];

    g_assert(len % LUKS_SECTOR_SIZE == 0);
    for (size_t off = 0; off < len; off += LUKS_SECTOR_SIZE, sector++) {
        crypto_xts_tweak(sector, tweak);
        if (xts->key_len == 32) {
            xts_aes128_decrypt_message(&xts->keys->dec.aes128, tweak, LUKS_SECTOR_SIZE,
                                       buf + off, buf + off);
        } else {
            xts_aes256_decrypt_message(&xts->keys->dec.aes256, tweak, LUKS_SECTOR_SIZE,
                                       buf + off, buf + off);
        }
    }
}
