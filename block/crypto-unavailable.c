/*
 * Placeholder for crypto/ (LUKS, secrets) until that part is merged: every
 * entry point fails cleanly, so unencrypted images work and encrypted ones
 * are refused with a clear message.
 */
#include "crypto/luks.h"
#include "crypto/secret.h"
#include "util/error.h"

#define UNAVAILABLE(errp)                                                                \
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,                                  \
                "LUKS encryption is not available in this build")

uint64_t luks_area_size(const LuksCreateOpts *opts)
{
    return 2068480;
}

LuksBlock *luks_create(const LuksCreateOpts *opts, const uint8_t *pass, size_t pass_len,
                       const LuksIO *io, GError **errp)
{
    UNAVAILABLE(errp);
    return NULL;
}

LuksBlock *luks_open(const uint8_t *pass, size_t pass_len, const LuksIO *io,
                     GError **errp)
{
    UNAVAILABLE(errp);
    return NULL;
}

bool luks_probe(const LuksIO *io, GError **errp)
{
    return true;
}

void luks_free(LuksBlock *luks)
{
}

bool luks_encrypt(LuksBlock *luks, uint64_t start_sector, uint8_t *buf, size_t len,
                  GError **errp)
{
    UNAVAILABLE(errp);
    return false;
}

bool luks_decrypt(LuksBlock *luks, uint64_t start_sector, uint8_t *buf, size_t len,
                  GError **errp)
{
    UNAVAILABLE(errp);
    return false;
}

bool luks_add_key(LuksBlock *luks, const uint8_t *pass, size_t pass_len,
                  uint64_t iter_time_ms, int *slot_out, GError **errp)
{
    UNAVAILABLE(errp);
    return false;
}

bool luks_erase_key(LuksBlock *luks, int slot, GError **errp)
{
    UNAVAILABLE(errp);
    return false;
}

bool luks_get_info(LuksBlock *luks, const LuksIO *io, LuksInfo *info, GError **errp)
{
    UNAVAILABLE(errp);
    return false;
}

QcowAes *qcow_aes_new(const uint8_t *pass, size_t pass_len)
{
    return NULL;
}

void qcow_aes_free(QcowAes *aes)
{
}

void qcow_aes_decrypt(QcowAes *aes, uint64_t guest_sector, uint8_t *buf, size_t len)
{
}

void qcow_aes_encrypt(QcowAes *aes, uint64_t guest_sector, uint8_t *buf, size_t len)
{
}

bool secret_create(KeyVal *opts, GError **errp)
{
    UNAVAILABLE(errp);
    return false;
}

bool secret_lookup(const char *id, uint8_t **data, size_t *len, GError **errp)
{
    UNAVAILABLE(errp);
    return false;
}

void secret_bytes_free(uint8_t *data, size_t len)
{
}

void secret_delete_all(void)
{
}

bool secret_exists(const char *id)
{
    return false;
}
