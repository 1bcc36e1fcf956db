/*
 * XTS-AES-128/256 plain64 over nettle. The expanded keys live in locked
 * memory; nettle reads them through const pointers, so one context can serve
 * several threads.
 */
#include <string.h>

#include <nettle/aes.h>
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

/*
 * One 512-byte sector (IEEE 1619 data unit): the 32 block tweaks are computed
 * first (T_0 = E_K2(LE64(n) || 0^64), T_j+1 = T_j * alpha in GF(2^128)), so
 * that the block cipher runs over the whole sector in one call, which lets
 * nettle's AES code stream the blocks: several times faster than the
 * block-at-a-time loop of xts_*_message.
 */
static void crypto_xts_sector(const void *cipher_ctx, nettle_cipher_func *cipher,
                              const void *tweak_ctx, nettle_cipher_func *tweak_cipher,
                              uint64_t sector, uint8_t *buf)
{
    uint8_t t[16], tweaks[LUKS_SECTOR_SIZE];
    uint64_t lo, hi;

    lo = GUINT64_TO_LE(sector);
    memcpy(t, &lo, 8);
    memset(t + 8, 0, 8);
    tweak_cipher(tweak_ctx, 16, t, t);
    memcpy(&lo, t, 8);
    memcpy(&hi, t + 8, 8);
    lo = GUINT64_FROM_LE(lo);
    hi = GUINT64_FROM_LE(hi);
    for (size_t b = 0; b < LUKS_SECTOR_SIZE; b += 16) {
        uint64_t le_lo = GUINT64_TO_LE(lo), le_hi = GUINT64_TO_LE(hi), carry = hi >> 63;
        memcpy(tweaks + b, &le_lo, 8);
        memcpy(tweaks + b + 8, &le_hi, 8);
        hi = (hi << 1) | (lo >> 63);
        lo = (lo << 1) ^ (carry ? 0x87 : 0);
    }
    for (size_t i = 0; i < LUKS_SECTOR_SIZE; i += 8) {
        uint64_t a, k;
        memcpy(&a, buf + i, 8);
        memcpy(&k, tweaks + i, 8);
        a ^= k;
        memcpy(buf + i, &a, 8);
    }
    cipher(cipher_ctx, LUKS_SECTOR_SIZE, buf, buf);
    for (size_t i = 0; i < LUKS_SECTOR_SIZE; i += 8) {
        uint64_t a, k;
        memcpy(&a, buf + i, 8);
        memcpy(&k, tweaks + i, 8);
        a ^= k;
        memcpy(buf + i, &a, 8);
    }
}

void crypto_xts_encrypt(CryptoXts *xts, uint64_t sector, uint8_t *buf, size_t len)
{
    g_assert(len % LUKS_SECTOR_SIZE == 0);
    for (size_t off = 0; off < len; off += LUKS_SECTOR_SIZE, sector++) {
        if (xts->key_len == 32) {
            crypto_xts_sector(&xts->keys->enc.aes128.cipher,
                              (nettle_cipher_func *)aes128_encrypt,
                              &xts->keys->enc.aes128.tweak_cipher,
                              (nettle_cipher_func *)aes128_encrypt, sector, buf + off);
        } else {
            crypto_xts_sector(&xts->keys->enc.aes256.cipher,
                              (nettle_cipher_func *)aes256_encrypt,
                              &xts->keys->enc.aes256.tweak_cipher,
                              (nettle_cipher_func *)aes256_encrypt, sector, buf + off);
        }
    }
}

void crypto_xts_decrypt(CryptoXts *xts, uint64_t sector, uint8_t *buf, size_t len)
{
    g_assert(len % LUKS_SECTOR_SIZE == 0);
    for (size_t off = 0; off < len; off += LUKS_SECTOR_SIZE, sector++) {
        if (xts->key_len == 32) {
            crypto_xts_sector(&xts->keys->dec.aes128.cipher,
                              (nettle_cipher_func *)aes128_decrypt,
                              &xts->keys->dec.aes128.tweak_cipher,
                              (nettle_cipher_func *)aes128_encrypt, sector, buf + off);
        } else {
            crypto_xts_sector(&xts->keys->dec.aes256.cipher,
                              (nettle_cipher_func *)aes256_decrypt,
                              &xts->keys->dec.aes256.tweak_cipher,
                              (nettle_cipher_func *)aes256_encrypt, sector, buf + off);
        }
    }
}
