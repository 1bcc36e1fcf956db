/*
 * Legacy qcow/qcow2 AES (crypt_method 1): the passphrase, truncated or
 * zero-padded to 16 bytes, is the AES-128 key; each 512-byte sector is
 * AES-128-CBC with IV = LE64(guest sector) padded with zeros. Insecure by
 * design (no KDF, IVs repeat across snapshots); kept to read old images.
 */
#include <string.h>

#include <nettle/aes.h>
#include <nettle/cbc.h>

#include "crypto/luks.h"
#include "crypto/secret.h"

struct QcowAes {
    struct aes128_ctx enc;
    struct aes128_ctx dec;
};

QcowAes *qcow_aes_new(const uint8_t *pass, size_t pass_len)
{
    QcowAes *aes = secure_alloc(sizeof(*aes));
    uint8_t key[AES128_KEY_SIZE] = {0};

    if (pass_len > 0) {
        memcpy(key, pass, MIN(pass_len, sizeof(key)));
    }
    aes128_set_encrypt_key(&aes->enc, key);
    aes128_set_decrypt_key(&aes->dec, key);
    explicit_bzero(key, sizeof(key));
    return aes;
}

void qcow_aes_free(QcowAes *aes)
{
    secure_free(aes, sizeof(*aes));
}

static void qcow_aes_iv(uint64_t sector, uint8_t iv[AES_BLOCK_SIZE])
{
    uint64_t le = GUINT64_TO_LE(sector);

    memcpy(iv, &le, 8);
    memset(iv + 8, 0, 8);
}

void qcow_aes_decrypt(QcowAes *aes, uint64_t guest_sector, uint8_t *buf, size_t len)
{
    uint8_t iv[AES_BLOCK_SIZE];

    g_assert(len % LUKS_SECTOR_SIZE == 0);
    for (size_t off = 0; off < len; off += LUKS_SECTOR_SIZE, guest_sector++) {
        qcow_aes_iv(guest_sector, iv);
        cbc_decrypt(&aes->dec, (nettle_cipher_func *)aes128_decrypt, AES_BLOCK_SIZE, iv,
                    LUKS_SECTOR_SIZE, buf + off, buf + off);
    }
}

void qcow_aes_encrypt(QcowAes *aes, uint64_t guest_sector, uint8_t *buf, size_t len)
{
    uint8_t iv[AES_BLOCK_SIZE];

    g_assert(len % LUKS_SECTOR_SIZE == 0);
    for (size_t off = 0; off < len; off += LUKS_SECTOR_SIZE, guest_sector++) {
        qcow_aes_iv(guest_sector, iv);
        cbc_encrypt(&aes->enc, (nettle_cipher_func *)aes128_encrypt, AES_BLOCK_SIZE, iv,
                    LUKS_SECTOR_SIZE, buf + off, buf + off);
    }
}
