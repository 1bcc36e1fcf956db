/*
 * Encryption glue for qcow2: LUKS (crypt_method 2) through crypto/luks.h,
 * with its header in the refcounted area named by the full disk encryption
 * header extension, and the legacy AES-CBC method 1 (read-only).
 *
 * IVs (qcow2 spec, "Full disk encryption header pointer"): LUKS uses the
 * host file offset / 512, legacy AES the guest offset / 512.
 */
#include <string.h>

#include "crypto/secret.h"
#include "qcow2.h"
#include "util/error.h"
#include "util/log.h"

static bool luks_io_read(void *opaque, uint64_t offset, void *buf, size_t len,
                         GError **errp)
{
    Qcow2State *s = opaque;

    if (offset > s->crypto_header_length || len > s->crypto_header_length - offset) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "LUKS header of '%s' is larger than its area (%" G_GUINT64_FORMAT
                    " bytes)",
                    s->bs->filename, s->crypto_header_length);
        return false;
    }
    return bdrv_pread(s->file, s->crypto_header_offset + offset, buf, len, errp);
}

static bool luks_io_write(void *opaque, uint64_t offset, const void *buf, size_t len,
                          GError **errp)
{
    Qcow2State *s = opaque;

    if (offset > s->crypto_header_length || len > s->crypto_header_length - offset) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "LUKS header write beyond its area in '%s'", s->bs->filename);
        return false;
    }
    s->unsynced = true;
    return bdrv_pwrite(s->file, s->crypto_header_offset + offset, buf, len, errp);
}

LuksIO qcow2_luks_io(Qcow2State *s)
{
    LuksIO io = {.read = luks_io_read, .write = luks_io_write, .opaque = s};

    return io;
}

static bool crypto_get_secret(Qcow2State *s, const char *key_secret, uint8_t **pw,
                              size_t *len, GError **errp)
{
    GError *err = NULL;

    if (!key_secret) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Parameter 'encrypt.key-secret' is required for cipher");
        return false;
    }
    if (!secret_lookup(key_secret, pw, len, &err)) {
        g_propagate_error(errp, err);
        return false;
    }
    return true;
}

bool qcow2_crypto_open(Qcow2State *s, KeyVal *encrypt, int flags, GError **errp)
{
    const char *fmt = keyval_get(encrypt, "format");
    const char *key_secret = keyval_get(encrypt, "key-secret");
    const char *want = s->crypt_method == QCOW2_CRYPT_LUKS  ? "luks"
                       : s->crypt_method == QCOW2_CRYPT_AES ? "aes"
                                                            : NULL;
    LuksIO io = qcow2_luks_io(s);
    uint8_t *pw = NULL;
    size_t pw_len = 0;

    if (fmt && strcmp(fmt, "luks") && strcmp(fmt, "aes")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Invalid parameter encrypt.format=%s (use luks or aes)", fmt);
        return false;
    }
    if (!want) {
        if (fmt) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Image '%s' is not encrypted, but encrypt.format=%s was given",
                        s->bs->filename, fmt);
            return false;
        }
        return true;
    }
    if (fmt && strcmp(fmt, want)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Header reported '%s' encryption format but options specify '%s'",
                    want, fmt);
        return false;
    }

    if (s->crypt_method == QCOW2_CRYPT_LUKS) {
        if (!key_secret && (flags & BDRV_O_NO_IO)) {
            return luks_probe(&io, errp);
        }
        if (!crypto_get_secret(s, key_secret, &pw, &pw_len, errp)) {
            return false;
        }
        s->luks = luks_open(pw, pw_len, &io, errp);
        secret_bytes_free(pw, pw_len);
        return s->luks != NULL;
    }

    /* Legacy AES-CBC: the passphrase is the key, IVs repeat across snapshots. */
    if (!(flags & BDRV_O_RDWR) && !key_secret && (flags & BDRV_O_NO_IO)) {
        return true;
    }
    if (flags & BDRV_O_RDWR) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "'%s' uses the insecure legacy AES-CBC qcow2 encryption, which can "
                    "only be opened read-only; convert it to LUKS with tpmvm-img "
                    "convert -O qcow2 -o encrypt.format=luks,encrypt.key-secret=ID",
                    s->bs->filename);
        return false;
    }
    if (!crypto_get_secret(s, key_secret, &pw, &pw_len, errp)) {
        return false;
    }
    warn_report(
        "'%s' uses the legacy AES-CBC qcow2 encryption, which is insecure; "
        "convert it to LUKS (tpmvm-img convert -O qcow2 -o encrypt.format=luks,...)",
        s->bs->filename);
    s->aes = qcow_aes_new(pw, pw_len);
    secret_bytes_free(pw, pw_len);
    return true;
}

void qcow2_crypto_close(Qcow2State *s)
{
    if (s->luks) {
        luks_free(s->luks);
        s->luks = NULL;
    }
    if (s->aes) {
        qcow_aes_free(s->aes);
        s->aes = NULL;
    }
}

static bool crypto_ready(Qcow2State *s, GError **errp)
{
    if (s->luks || s->aes) {
        return true;
    }
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                "'%s' is encrypted and was opened without its key (encrypt.key-secret)",
                s->bs->filename);
    return false;
}

bool qcow2_encrypt(Qcow2State *s, uint64_t host_offset, uint64_t guest_offset,
                   uint8_t *buf, uint64_t len, GError **errp)
{
    g_assert(((host_offset | guest_offset | len) & (QCOW2_SECTOR - 1)) == 0);
    if (!crypto_ready(s, errp)) {
        return false;
    }
    if (s->luks) {
        return luks_encrypt(s->luks, host_offset / QCOW2_SECTOR, buf, len, errp);
    }
    qcow_aes_encrypt(s->aes, guest_offset / QCOW2_SECTOR, buf, len);
    return true;
}

bool qcow2_decrypt(Qcow2State *s, uint64_t host_offset, uint64_t guest_offset,
                   uint8_t *buf, uint64_t len, GError **errp)
{
    g_assert(((host_offset | guest_offset | len) & (QCOW2_SECTOR - 1)) == 0);
    if (!crypto_ready(s, errp)) {
        return false;
    }
    if (s->luks) {
        return luks_decrypt(s->luks, host_offset / QCOW2_SECTOR, buf, len, errp);
    }
    qcow_aes_decrypt(s->aes, guest_offset / QCOW2_SECTOR, buf, len);
    return true;
}
