/*
 * LUKS1 ("LUKS On-Disk Format Specification" 1.2, cryptsetup) as QEMU stores
 * it inside qcow2: a 592-byte big-endian header, eight key slots whose key
 * material is the AF-split master key encrypted with a PBKDF2-derived slot
 * key, and payload sectors in AES-XTS plain64.
 *
 * The header is hostile input: every field is checked, with 64-bit math,
 * before it sizes a buffer, an offset or a loop.
 */
#include <string.h>

#include <nettle/memops.h>

#include "crypto/afsplit.h"
#include "crypto/luks.h"
#include "crypto/pbkdf.h"
#include "crypto/secret.h"
#include "crypto/xts.h"
#include "util/byteorder.h"
#include "util/error.h"

#define LUKS_MAGIC_LEN 6
#define LUKS_VERSION 1
#define LUKS_HEADER_LEN 592
#define LUKS_NAME_LEN 32
#define LUKS_DIGEST_LEN 20
#define LUKS_SALT_LEN 32
#define LUKS_UUID_LEN 40
#define LUKS_NUM_SLOTS 8
#define LUKS_SLOT_LEN 48
#define LUKS_SLOTS_OFFSET 208
#define LUKS_STRIPES 4000
#define LUKS_SLOT_ENABLED 0x00AC71F3u
#define LUKS_SLOT_DISABLED 0x0000DEADu
/* Header and each key-material area start on 4 KiB (8-sector) boundaries. */
#define LUKS_ALIGN_SECTORS 8
#define LUKS_HEADER_SECTORS 8
#define LUKS_MIN_ITERS 1000
#define LUKS_DEFAULT_ITER_TIME_MS 2000
/* The master-key digest gets 1/8 of the slot time (cryptsetup's choice). */
#define LUKS_MK_DIGEST_DIVISOR 8

static const uint8_t luks_magic[LUKS_MAGIC_LEN] = {'L', 'U', 'K', 'S', 0xba, 0xbe};

G_STATIC_ASSERT(LUKS_SLOTS_OFFSET + LUKS_NUM_SLOTS * LUKS_SLOT_LEN == LUKS_HEADER_LEN);

typedef struct LuksSlot {
    uint32_t active;
    uint32_t iterations;
    uint8_t salt[LUKS_SALT_LEN];
    uint32_t key_offset; /* sectors from the start of the LUKS area */
    uint32_t stripes;
} LuksSlot;

typedef struct LuksHeader {
    uint8_t magic[LUKS_MAGIC_LEN];
    uint16_t version;
    char cipher_name[LUKS_NAME_LEN];
    char cipher_mode[LUKS_NAME_LEN];
    char hash_spec[LUKS_NAME_LEN];
    uint32_t payload_offset; /* sectors */
    uint32_t key_bytes;
    uint8_t mk_digest[LUKS_DIGEST_LEN];
    uint8_t mk_digest_salt[LUKS_SALT_LEN];
    uint32_t mk_digest_iterations;
    char uuid[LUKS_UUID_LEN];
    LuksSlot slots[LUKS_NUM_SLOTS];
} LuksHeader;

struct LuksBlock {
    LuksIO io;
    LuksHeader hdr;
    CryptoHashAlg hash;
    size_t key_bytes;
    uint8_t *master_key; /* secure_alloc, key_bytes */
    CryptoXts *xts;
};

/* Parameters of a new header, from LuksCreateOpts. */
typedef struct LuksParams {
    size_t key_bytes;
    CryptoHashAlg hash;
    uint64_t iter_time_ms;
} LuksParams;

static void luks_header_decode(const uint8_t *buf, LuksHeader *h)
{
    memcpy(h->magic, buf, LUKS_MAGIC_LEN);
    h->version = (uint16_t)(buf[6] << 8 | buf[7]);
    memcpy(h->cipher_name, buf + 8, LUKS_NAME_LEN);
    memcpy(h->cipher_mode, buf + 40, LUKS_NAME_LEN);
    memcpy(h->hash_spec, buf + 72, LUKS_NAME_LEN);
    h->payload_offset = be32_at(buf + 104);
    h->key_bytes = be32_at(buf + 108);
    memcpy(h->mk_digest, buf + 112, LUKS_DIGEST_LEN);
    memcpy(h->mk_digest_salt, buf + 132, LUKS_SALT_LEN);
    h->mk_digest_iterations = be32_at(buf + 164);
    memcpy(h->uuid, buf + 168, LUKS_UUID_LEN);
    for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
        const uint8_t *s = buf + LUKS_SLOTS_OFFSET + i * LUKS_SLOT_LEN;

        h->slots[i].active = be32_at(s);
        h->slots[i].iterations = be32_at(s + 4);
        memcpy(h->slots[i].salt, s + 8, LUKS_SALT_LEN);
        h->slots[i].key_offset = be32_at(s + 40);
        h->slots[i].stripes = be32_at(s + 44);
    }
}

static void luks_header_encode(const LuksHeader *h, uint8_t *buf)
{
    memset(buf, 0, LUKS_HEADER_LEN);
    memcpy(buf, h->magic, LUKS_MAGIC_LEN);
    buf[6] = h->version >> 8;
    buf[7] = h->version & 0xff;
    memcpy(buf + 8, h->cipher_name, LUKS_NAME_LEN);
    memcpy(buf + 40, h->cipher_mode, LUKS_NAME_LEN);
    memcpy(buf + 72, h->hash_spec, LUKS_NAME_LEN);
    put_be32(buf + 104, h->payload_offset);
    put_be32(buf + 108, h->key_bytes);
    memcpy(buf + 112, h->mk_digest, LUKS_DIGEST_LEN);
    memcpy(buf + 132, h->mk_digest_salt, LUKS_SALT_LEN);
    put_be32(buf + 164, h->mk_digest_iterations);
    memcpy(buf + 168, h->uuid, LUKS_UUID_LEN);
    for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
        uint8_t *s = buf + LUKS_SLOTS_OFFSET + i * LUKS_SLOT_LEN;

        put_be32(s, h->slots[i].active);
        put_be32(s + 4, h->slots[i].iterations);
        memcpy(s + 8, h->slots[i].salt, LUKS_SALT_LEN);
        put_be32(s + 40, h->slots[i].key_offset);
        put_be32(s + 44, h->slots[i].stripes);
    }
}

/* Sectors the key material of one slot occupies (not aligned). */
static uint64_t luks_material_sectors(uint64_t key_bytes, uint64_t stripes)
{
    return (key_bytes * stripes + LUKS_SECTOR_SIZE - 1) / LUKS_SECTOR_SIZE;
}

/* Distance between key-material areas: the material rounded up to 4 KiB. */
static uint64_t luks_slot_stride(uint64_t key_bytes)
{
    uint64_t n = luks_material_sectors(key_bytes, LUKS_STRIPES);

    return (n + LUKS_ALIGN_SECTORS - 1) / LUKS_ALIGN_SECTORS * LUKS_ALIGN_SECTORS;
}

static bool luks_field_terminated(const char *field, const char *name, GError **errp)
{
    if (!memchr(field, '\0', LUKS_NAME_LEN)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "LUKS header field %s is not NUL-terminated", name);
        return false;
    }
    return true;
}

/*
 * The checks QEMU's LUKS driver runs on open, plus what our cipher support
 * needs. On success *hash is the header's hash.
 */
static bool luks_header_check(const LuksHeader *h, CryptoHashAlg *hash, GError **errp)
{
    if (memcmp(h->magic, luks_magic, LUKS_MAGIC_LEN) != 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Volume is not in LUKS format (bad magic)");
        return false;
    }
    if (h->version != LUKS_VERSION) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "LUKS version %u is not supported (only LUKS1)", h->version);
        return false;
    }
    if (!luks_field_terminated(h->cipher_name, "cipher_name", errp) ||
        !luks_field_terminated(h->cipher_mode, "cipher_mode", errp) ||
        !luks_field_terminated(h->hash_spec, "hash_spec", errp)) {
        return false;
    }
    if (strcmp(h->cipher_name, "aes") != 0 ||
        strcmp(h->cipher_mode, "xts-plain64") != 0) {
        g_autofree char *name = g_strescape(h->cipher_name, NULL);
        g_autofree char *mode = g_strescape(h->cipher_mode, NULL);

        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Unsupported LUKS cipher '%s-%s'; only aes-xts-plain64 is supported",
                    name, mode);
        return false;
    }
    if (!crypto_hash_parse(h->hash_spec, hash)) {
        g_autofree char *spec = g_strescape(h->hash_spec, NULL);

        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Unsupported LUKS hash '%s'; only sha1 and sha256 are supported",
                    spec);
        return false;
    }
    if (h->key_bytes != 32 && h->key_bytes != 64) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "LUKS master key length %u bytes is invalid for aes-xts "
                    "(expected 32 or 64)",
                    h->key_bytes);
        return false;
    }
    if (h->payload_offset < LUKS_HEADER_SECTORS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "LUKS payload offset %u sectors lies inside the header "
                    "(minimum %u)",
                    h->payload_offset, LUKS_HEADER_SECTORS);
        return false;
    }
    if (h->mk_digest_iterations == 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "LUKS master key digest has 0 PBKDF2 iterations");
        return false;
    }
    for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
        const LuksSlot *s = &h->slots[i];
        uint64_t start = s->key_offset;
        uint64_t end;

        if (s->stripes != LUKS_STRIPES) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "LUKS key slot %d has %u stripes (expected %u)", i, s->stripes,
                        LUKS_STRIPES);
            return false;
        }
        if (s->active != LUKS_SLOT_ENABLED && s->active != LUKS_SLOT_DISABLED) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "LUKS key slot %d has invalid state 0x%08x", i, s->active);
            return false;
        }
        if (s->active == LUKS_SLOT_ENABLED && s->iterations == 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "LUKS key slot %d is active with 0 PBKDF2 iterations", i);
            return false;
        }
        end = start + luks_material_sectors(h->key_bytes, s->stripes);
        if (start < LUKS_HEADER_SECTORS) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "LUKS key slot %d key material at sector %u overlaps the header",
                        i, s->key_offset);
            return false;
        }
        if (end > h->payload_offset) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "LUKS key slot %d key material (sectors %" G_GUINT64_FORMAT
                        "..%" G_GUINT64_FORMAT ") overlaps the payload at sector %u",
                        i, start, end - 1, h->payload_offset);
            return false;
        }
        for (int j = 0; j < i; j++) {
            uint64_t start_j = h->slots[j].key_offset;
            uint64_t end_j = start_j + luks_material_sectors(h->key_bytes, LUKS_STRIPES);

            if (start < end_j && start_j < end) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                            "LUKS key slots %d and %d have overlapping key material", j,
                            i);
                return false;
            }
        }
    }
    return true;
}

static bool luks_read_header(const LuksIO *io, LuksHeader *h, CryptoHashAlg *hash,
                             GError **errp)
{
    uint8_t buf[LUKS_HEADER_LEN];

    if (!io->read(io->opaque, 0, buf, sizeof(buf), errp)) {
        return false;
    }
    luks_header_decode(buf, h);
    return luks_header_check(h, hash, errp);
}

static bool luks_write_header(LuksBlock *luks, GError **errp)
{
    uint8_t buf[LUKS_HEADER_LEN];

    luks_header_encode(&luks->hdr, buf);
    return luks->io.write(luks->io.opaque, 0, buf, sizeof(buf), errp);
}

static bool luks_parse_opts(const LuksCreateOpts *opts, LuksParams *p, GError **errp)
{
    const char *alg = opts && opts->cipher_alg ? opts->cipher_alg : "aes-256";
    const char *mode = opts && opts->cipher_mode ? opts->cipher_mode : "xts";
    const char *ivgen = opts && opts->ivgen_alg ? opts->ivgen_alg : "plain64";
    const char *hash = opts && opts->hash_alg ? opts->hash_alg : "sha256";

    if (!strcmp(alg, "aes-256")) {
        p->key_bytes = 64;
    } else if (!strcmp(alg, "aes-128")) {
        p->key_bytes = 32;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "LUKS cipher algorithm '%s' is not supported; use aes-256 or aes-128",
                    alg);
        return false;
    }
    if (strcmp(mode, "xts") != 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "LUKS cipher mode '%s' is not supported; use xts", mode);
        return false;
    }
    if (strcmp(ivgen, "plain64") != 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "LUKS IV generator '%s' is not supported; use plain64", ivgen);
        return false;
    }
    if (!crypto_hash_parse(hash, &p->hash)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "LUKS hash algorithm '%s' is not supported; use sha256 or sha1",
                    hash);
        return false;
    }
    p->iter_time_ms =
        opts && opts->iter_time_ms ? opts->iter_time_ms : LUKS_DEFAULT_ITER_TIME_MS;
    return true;
}

uint64_t luks_area_size(const LuksCreateOpts *opts)
{
    LuksParams p;

    if (!luks_parse_opts(opts, &p, NULL)) {
        return 0;
    }
    return (LUKS_HEADER_SECTORS + LUKS_NUM_SLOTS * luks_slot_stride(p.key_bytes)) *
           LUKS_SECTOR_SIZE;
}

static LuksBlock *luks_block_new(const LuksIO *io, CryptoHashAlg hash, size_t key_bytes)
{
    LuksBlock *luks = g_new0(LuksBlock, 1);

    luks->io = *io;
    luks->hash = hash;
    luks->key_bytes = key_bytes;
    luks->master_key = secure_alloc(key_bytes);
    return luks;
}

void luks_free(LuksBlock *luks)
{
    if (luks) {
        secure_free(luks->master_key, luks->key_bytes);
        crypto_xts_free(luks->xts);
        g_free(luks);
    }
}

static bool luks_random_uuid(char *out, GError **errp)
{
    uint8_t b[16];

    if (!crypto_random_bytes(b, sizeof(b), errp)) {
        return false;
    }
    b[6] = (b[6] & 0x0f) | 0x40; /* RFC 4122 version 4 */
    b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
    g_snprintf(out, LUKS_UUID_LEN,
               "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
               b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
               b[12], b[13], b[14], b[15]);
    return true;
}

/*
 * Put the master key into slot `i` under `pass`: new salt, calibrated
 * iterations, AF-split, encrypted with the slot key (sectors from 0), written
 * to the slot's key-material area. Updates luks->hdr only on success; the
 * caller writes the header.
 */
static bool luks_slot_store(LuksBlock *luks, int i, const uint8_t *pass, size_t pass_len,
                            uint64_t iter_time_ms, GError **errp)
{
    LuksSlot slot = luks->hdr.slots[i];
    size_t kb = luks->key_bytes;
    size_t material_len = kb * LUKS_STRIPES;
    uint8_t *slot_key = secure_alloc(kb);
    uint8_t *material = secure_alloc(material_len);
    CryptoXts *xts = NULL;
    uint64_t rate;
    bool ok = false;

    if (!crypto_random_bytes(slot.salt, LUKS_SALT_LEN, errp) ||
        !crypto_pbkdf2_rate(luks->hash, pass, pass_len, slot.salt, LUKS_SALT_LEN, kb,
                            &rate, errp) ||
        !crypto_pbkdf2_iters_for_time(rate, iter_time_ms, 1, LUKS_MIN_ITERS,
                                      &slot.iterations, errp) ||
        !crypto_pbkdf2(luks->hash, pass, pass_len, slot.salt, LUKS_SALT_LEN,
                       slot.iterations, slot_key, kb, errp) ||
        !afsplit_split(luks->hash, kb, LUKS_STRIPES, luks->master_key, material, errp)) {
        goto out;
    }
    xts = crypto_xts_new(slot_key, kb, errp);
    if (!xts) {
        goto out;
    }
    crypto_xts_encrypt(xts, 0, material, material_len);
    if (!luks->io.write(luks->io.opaque, (uint64_t)slot.key_offset * LUKS_SECTOR_SIZE,
                        material, material_len, errp)) {
        goto out;
    }
    slot.active = LUKS_SLOT_ENABLED;
    luks->hdr.slots[i] = slot;
    ok = true;
out:
    crypto_xts_free(xts);
    secure_free(material, material_len);
    secure_free(slot_key, kb);
    return ok;
}

/*
 * Try to recover the master key from slot `i`. Returns 1 and fills mk on a
 * match, 0 if the passphrase does not fit, -1 on I/O error.
 */
static int luks_slot_unlock(LuksBlock *luks, int i, const uint8_t *pass, size_t pass_len,
                            uint8_t *mk, GError **errp)
{
    const LuksSlot *slot = &luks->hdr.slots[i];
    size_t kb = luks->key_bytes;
    size_t material_len = kb * LUKS_STRIPES;
    uint8_t *slot_key = secure_alloc(kb);
    uint8_t *material = secure_alloc(material_len);
    uint8_t digest[LUKS_DIGEST_LEN];
    CryptoXts *xts = NULL;
    int ret = -1;

    if (!crypto_pbkdf2(luks->hash, pass, pass_len, slot->salt, LUKS_SALT_LEN,
                       slot->iterations, slot_key, kb, errp) ||
        !luks->io.read(luks->io.opaque, (uint64_t)slot->key_offset * LUKS_SECTOR_SIZE,
                       material, material_len, errp)) {
        goto out;
    }
    xts = crypto_xts_new(slot_key, kb, errp);
    if (!xts) {
        goto out;
    }
    /* Key material is encrypted with sector numbers counted from its start. */
    crypto_xts_decrypt(xts, 0, material, material_len);
    afsplit_merge(luks->hash, kb, LUKS_STRIPES, material, mk);
    if (!crypto_pbkdf2(luks->hash, mk, kb, luks->hdr.mk_digest_salt, LUKS_SALT_LEN,
                       luks->hdr.mk_digest_iterations, digest, LUKS_DIGEST_LEN, errp)) {
        goto out;
    }
    ret = memeql_sec(digest, luks->hdr.mk_digest, LUKS_DIGEST_LEN) ? 1 : 0;
out:
    explicit_bzero(digest, sizeof(digest));
    crypto_xts_free(xts);
    secure_free(material, material_len);
    secure_free(slot_key, kb);
    return ret;
}

static bool luks_set_master_key(LuksBlock *luks, GError **errp)
{
    luks->xts = crypto_xts_new(luks->master_key, luks->key_bytes, errp);
    return luks->xts != NULL;
}

LuksBlock *luks_create(const LuksCreateOpts *opts, const uint8_t *pass, size_t pass_len,
                       const LuksIO *io, GError **errp)
{
    LuksParams p;
    LuksBlock *luks;
    LuksHeader *h;
    uint64_t stride;
    uint64_t rate;
    CryptoHashAlg check_hash;

    if (!luks_parse_opts(opts, &p, errp)) {
        return NULL;
    }
    luks = luks_block_new(io, p.hash, p.key_bytes);
    h = &luks->hdr;
    memcpy(h->magic, luks_magic, LUKS_MAGIC_LEN);
    h->version = LUKS_VERSION;
    g_strlcpy(h->cipher_name, "aes", LUKS_NAME_LEN);
    g_strlcpy(h->cipher_mode, "xts-plain64", LUKS_NAME_LEN);
    g_strlcpy(h->hash_spec, crypto_hash_name(p.hash), LUKS_NAME_LEN);
    h->key_bytes = (uint32_t)p.key_bytes;

    stride = luks_slot_stride(p.key_bytes);
    for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
        h->slots[i].active = LUKS_SLOT_DISABLED;
        h->slots[i].key_offset = (uint32_t)(LUKS_HEADER_SECTORS + i * stride);
        h->slots[i].stripes = LUKS_STRIPES;
    }
    h->payload_offset = (uint32_t)(LUKS_HEADER_SECTORS + LUKS_NUM_SLOTS * stride);

    if (!luks_random_uuid(h->uuid, errp) ||
        !crypto_random_bytes(luks->master_key, p.key_bytes, errp) ||
        !crypto_random_bytes(h->mk_digest_salt, LUKS_SALT_LEN, errp) ||
        !crypto_pbkdf2_rate(p.hash, luks->master_key, p.key_bytes, h->mk_digest_salt,
                            LUKS_SALT_LEN, LUKS_DIGEST_LEN, &rate, errp) ||
        !crypto_pbkdf2_iters_for_time(rate, p.iter_time_ms, LUKS_MK_DIGEST_DIVISOR,
                                      LUKS_MIN_ITERS, &h->mk_digest_iterations, errp) ||
        !crypto_pbkdf2(p.hash, luks->master_key, p.key_bytes, h->mk_digest_salt,
                       LUKS_SALT_LEN, h->mk_digest_iterations, h->mk_digest,
                       LUKS_DIGEST_LEN, errp) ||
        !luks_set_master_key(luks, errp) ||
        /* Key material first, header last: a torn create leaves no valid header. */
        !luks_slot_store(luks, 0, pass, pass_len, p.iter_time_ms, errp)) {
        goto fail;
    }
    /* Our own output must pass the checks every reader (QEMU too) runs. */
    if (!luks_header_check(h, &check_hash, errp) || !luks_write_header(luks, errp)) {
        goto fail;
    }
    return luks;
fail:
    luks_free(luks);
    return NULL;
}

LuksBlock *luks_open(const uint8_t *pass, size_t pass_len, const LuksIO *io,
                     GError **errp)
{
    LuksHeader h;
    CryptoHashAlg hash;
    LuksBlock *luks;

    if (!luks_read_header(io, &h, &hash, errp)) {
        return NULL;
    }
    luks = luks_block_new(io, hash, h.key_bytes);
    luks->hdr = h;
    for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
        int r;

        if (h.slots[i].active != LUKS_SLOT_ENABLED) {
            continue;
        }
        r = luks_slot_unlock(luks, i, pass, pass_len, luks->master_key, errp);
        if (r < 0) {
            goto fail;
        }
        if (r == 1) {
            if (!luks_set_master_key(luks, errp)) {
                goto fail;
            }
            return luks;
        }
    }
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                "Invalid password, cannot unlock any keyslot");
fail:
    luks_free(luks);
    return NULL;
}

bool luks_probe(const LuksIO *io, GError **errp)
{
    LuksHeader h;
    CryptoHashAlg hash;

    return luks_read_header(io, &h, &hash, errp);
}

static bool luks_check_payload_args(LuksBlock *luks, size_t len, GError **errp)
{
    if (len % LUKS_SECTOR_SIZE != 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "LUKS payload I/O of %zu bytes is not a multiple of %d-byte sectors",
                    len, LUKS_SECTOR_SIZE);
        return false;
    }
    return true;
}

bool luks_encrypt(LuksBlock *luks, uint64_t start_sector, uint8_t *buf, size_t len,
                  GError **errp)
{
    if (!luks_check_payload_args(luks, len, errp)) {
        return false;
    }
    crypto_xts_encrypt(luks->xts, start_sector, buf, len);
    return true;
}

bool luks_decrypt(LuksBlock *luks, uint64_t start_sector, uint8_t *buf, size_t len,
                  GError **errp)
{
    if (!luks_check_payload_args(luks, len, errp)) {
        return false;
    }
    crypto_xts_decrypt(luks->xts, start_sector, buf, len);
    return true;
}

bool luks_add_key(LuksBlock *luks, const uint8_t *pass, size_t pass_len,
                  uint64_t iter_time_ms, int want_slot, int *slot_out, GError **errp)
{
    LuksSlot saved;
    int i = want_slot;

    if (want_slot >= LUKS_NUM_SLOTS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "LUKS key slot %d does not exist (valid: 0..%d)", want_slot,
                    LUKS_NUM_SLOTS - 1);
        return false;
    }
    if (want_slot >= 0 && luks->hdr.slots[i].active != LUKS_SLOT_DISABLED) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Refusing to overwrite active keyslot %d - please erase it first", i);
        return false;
    }
    if (want_slot < 0) {
        for (i = 0; i < LUKS_NUM_SLOTS; i++) {
            if (luks->hdr.slots[i].active == LUKS_SLOT_DISABLED) {
                break;
            }
        }
    }
    if (i == LUKS_NUM_SLOTS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "All %d LUKS key slots are in use; erase one before adding a key",
                    LUKS_NUM_SLOTS);
        return false;
    }
    saved = luks->hdr.slots[i];
    if (!luks_slot_store(luks, i, pass, pass_len,
                         iter_time_ms ? iter_time_ms : LUKS_DEFAULT_ITER_TIME_MS, errp)) {
        return false;
    }
    if (!luks_write_header(luks, errp)) {
        luks->hdr.slots[i] = saved;
        return false;
    }
    if (slot_out) {
        *slot_out = i;
    }
    return true;
}

int luks_find_key_slots(LuksBlock *luks, const uint8_t *pass, size_t pass_len,
                        bool match[], GError **errp)
{
    uint8_t *mk = secure_alloc(luks->key_bytes);
    int n = 0;

    for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
        int r = 0;

        if (luks->hdr.slots[i].active == LUKS_SLOT_ENABLED) {
            r = luks_slot_unlock(luks, i, pass, pass_len, mk, errp);
        }
        if (r < 0) {
            n = -1;
            break;
        }
        match[i] = r == 1;
        n += r;
    }
    secure_free(mk, luks->key_bytes);
    return n;
}

bool luks_erase_key(LuksBlock *luks, int slot, GError **errp)
{
    size_t material_len = luks->key_bytes * LUKS_STRIPES;
    g_autofree uint8_t *noise = NULL;
    LuksSlot saved;
    int active = 0;

    if (slot < 0 || slot >= LUKS_NUM_SLOTS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "LUKS key slot %d does not exist (valid: 0..%d)", slot,
                    LUKS_NUM_SLOTS - 1);
        return false;
    }
    if (luks->hdr.slots[slot].active != LUKS_SLOT_ENABLED) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "LUKS key slot %d is not in use", slot);
        return false;
    }
    for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
        active += luks->hdr.slots[i].active == LUKS_SLOT_ENABLED;
    }
    if (active == 1) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Refusing to erase LUKS key slot %d: it is the last one and the "
                    "image could never be unlocked again",
                    slot);
        return false;
    }
    /* Overwrite the key material first: with it gone the slot is dead anyway. */
    noise = g_malloc(material_len);
    if (!crypto_random_bytes(noise, material_len, errp) ||
        !luks->io.write(luks->io.opaque,
                        (uint64_t)luks->hdr.slots[slot].key_offset * LUKS_SECTOR_SIZE,
                        noise, material_len, errp)) {
        return false;
    }
    saved = luks->hdr.slots[slot];
    luks->hdr.slots[slot].active = LUKS_SLOT_DISABLED;
    luks->hdr.slots[slot].iterations = 0;
    memset(luks->hdr.slots[slot].salt, 0, LUKS_SALT_LEN);
    if (!luks_write_header(luks, errp)) {
        luks->hdr.slots[slot] = saved;
        return false;
    }
    return true;
}

bool luks_get_info(LuksBlock *luks, const LuksIO *io, LuksInfo *info, GError **errp)
{
    LuksHeader read_hdr;
    const LuksHeader *h;
    CryptoHashAlg hash;

    if (luks) {
        h = &luks->hdr;
        hash = luks->hash;
    } else {
        if (!luks_read_header(io, &read_hdr, &hash, errp)) {
            return false;
        }
        h = &read_hdr;
    }
    memset(info, 0, sizeof(*info));
    g_strlcpy(info->cipher_alg, h->key_bytes == 32 ? "aes-128" : "aes-256",
              sizeof(info->cipher_alg));
    g_strlcpy(info->cipher_mode, "xts", sizeof(info->cipher_mode));
    g_strlcpy(info->ivgen_alg, "plain64", sizeof(info->ivgen_alg));
    g_strlcpy(info->hash_alg, crypto_hash_name(hash), sizeof(info->hash_alg));
    /* The uuid field need not be NUL-terminated: copy at most its size. */
    memcpy(info->uuid, h->uuid, MIN(sizeof(info->uuid) - 1, (size_t)LUKS_UUID_LEN));
    info->payload_offset = (uint64_t)h->payload_offset * LUKS_SECTOR_SIZE;
    info->master_key_iters = h->mk_digest_iterations;
    for (int i = 0; i < LUKS_NUM_SLOTS; i++) {
        info->slots[i].active = h->slots[i].active == LUKS_SLOT_ENABLED;
        info->slots[i].iters = h->slots[i].iterations;
        info->slots[i].key_offset = (uint64_t)h->slots[i].key_offset * LUKS_SECTOR_SIZE;
        info->slots[i].stripes = h->slots[i].stripes;
    }
    return true;
}
