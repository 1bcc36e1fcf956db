/*
 * LUKS1 as used inside qcow2 (crypt_method 2) and the legacy qcow AES cipher.
 *
 * The LUKS area (header + key material) is a byte range the caller stores;
 * this module parses/creates it through read/write callbacks, unlocks it with
 * a passphrase and en/decrypts 512-byte sectors. The sector number passed to
 * the payload functions is the IV source: for qcow2 it is the host file
 * offset / 512 (qcow2 spec; QEMU's crypt_physical_offset).
 */
#ifndef CRYPTO_LUKS_H
#define CRYPTO_LUKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#define LUKS_SECTOR_SIZE 512

typedef struct LuksBlock LuksBlock;

/*
 * Access to the LUKS area: offsets are relative to its start. Reads outside
 * the area must fail. `opaque` must outlive the LuksBlock that uses it.
 */
typedef struct LuksIO {
    bool (*read)(void *opaque, uint64_t offset, void *buf, size_t len, GError **errp);
    bool (*write)(void *opaque, uint64_t offset, const void *buf, size_t len,
                  GError **errp);
    void *opaque;
} LuksIO;

typedef struct LuksCreateOpts {
    const char *cipher_alg;  /* "aes-256" (default), "aes-128" */
    const char *cipher_mode; /* "xts" (default) */
    const char *ivgen_alg;   /* "plain64" (default) */
    const char *hash_alg;    /* "sha256" (default), "sha1" */
    uint64_t iter_time_ms;   /* PBKDF2 calibration target; 0 = 2000 */
} LuksCreateOpts;

/*
 * Size in bytes of the LUKS area a header with these options needs
 * (header + 8 key-material areas), before cluster rounding; opts may be NULL
 * for the defaults. 0 if opts name an unsupported cipher, mode or hash.
 */
uint64_t luks_area_size(const LuksCreateOpts *opts);

/*
 * Create a new header with a random master key; key slot 0 gets the passphrase.
 * The area must be zero-filled; slot 0's key material is written first and
 * the header last, so an interrupted create leaves no valid header.
 */
LuksBlock *luks_create(const LuksCreateOpts *opts, const uint8_t *pass, size_t pass_len,
                       const LuksIO *io, GError **errp);
/*
 * Open: validate the header (every field bounded before use) and unlock a key
 * slot with the passphrase. Wrong passphrase: TPMVM_ERROR_PERMISSION,
 * "Invalid password, cannot unlock any keyslot". Never writes.
 */
LuksBlock *luks_open(const uint8_t *pass, size_t pass_len, const LuksIO *io,
                     GError **errp);
/* Header validation only (qemu-img info without a secret). */
bool luks_probe(const LuksIO *io, GError **errp);
void luks_free(LuksBlock *luks);

/*
 * Payload sectors: len is a multiple of 512; in place is allowed. The key
 * schedule is read-only, so several threads may call these at once.
 */
bool luks_encrypt(LuksBlock *luks, uint64_t start_sector, uint8_t *buf, size_t len,
                  GError **errp);
bool luks_decrypt(LuksBlock *luks, uint64_t start_sector, uint8_t *buf, size_t len,
                  GError **errp);

/*
 * Key slots (tpmvm-img amend). Add a passphrase in slot want_slot, which
 * must be free (-1: the first free one); erase a slot; find which active
 * slots a passphrase unlocks (match[8]; returns how many, -1 on error; each
 * active slot costs its PBKDF2 time).
 */
bool luks_add_key(LuksBlock *luks, const uint8_t *pass, size_t pass_len,
                  uint64_t iter_time_ms, int want_slot, int *slot_out, GError **errp);
int luks_find_key_slots(LuksBlock *luks, const uint8_t *pass, size_t pass_len,
                        bool match[], GError **errp);
bool luks_erase_key(LuksBlock *luks, int slot, GError **errp);

/* Information for qemu-img-style `info` output. */
typedef struct LuksInfo {
    char cipher_alg[16];  /* "aes-256" */
    char cipher_mode[16]; /* "xts" */
    char ivgen_alg[16];   /* "plain64" */
    char hash_alg[16];    /* "sha256" */
    char uuid[40];
    uint64_t payload_offset; /* bytes */
    uint32_t master_key_iters;
    struct {
        bool active;
        uint32_t iters;
        uint64_t key_offset; /* bytes */
        uint32_t stripes;
    } slots[8];
} LuksInfo;
/* Works on an opened block or, with luks == NULL, by reading the header via io. */
bool luks_get_info(LuksBlock *luks, const LuksIO *io, LuksInfo *info, GError **errp);

/* Legacy qcow AES-128-CBC (crypt_method 1), IV = guest sector (read/convert only). */
typedef struct QcowAes QcowAes;
QcowAes *qcow_aes_new(const uint8_t *pass, size_t pass_len);
void qcow_aes_free(QcowAes *aes);
void qcow_aes_decrypt(QcowAes *aes, uint64_t guest_sector, uint8_t *buf, size_t len);
void qcow_aes_encrypt(QcowAes *aes, uint64_t guest_sector, uint8_t *buf, size_t len);

/* Cryptographic random bytes (getrandom). */
bool crypto_random_bytes(void *buf, size_t len, GError **errp);

#endif
