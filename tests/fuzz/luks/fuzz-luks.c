/*
 * Fuzz target for the LUKS1 header parser and key-slot code (crypto/luks.c):
 * a LUKS area comes from a qcow2 image, which may come from anywhere.
 *
 * Input: the LUKS area. Reads inside [0, payload offset) that lie beyond the
 * input see zeros (so seeds need not carry empty key-material areas; at most
 * 4 MiB), reads beyond both fail as reads outside a qcow2 LUKS area do. Byte
 * 592 (the first byte after the header, unused by LUKS) holds harness flags:
 * bit 0 = after a successful unlock, also add a key slot, unlock with it,
 * erase it and unlock again.
 *
 * Iteration cap: luks_open() is only called when the master-key digest and
 * every active slot ask for at most FUZZ_LUKS_MAX_ITERS PBKDF2 iterations.
 * Counts are deliberately uncapped in crypto/luks.c (any count QEMU or
 * cryptsetup writes must open), so a bigger count only costs time, and
 * skipping such inputs keeps the target at hundreds of executions a second.
 * Probing and luks_get_info() still run on them.
 *
 * Checks beyond "does not crash":
 *   - luks_probe() and luks_get_info() agree, and a failure always sets an
 *     error whose message is printable UTF-8;
 *   - luks_get_info() reports exactly the header's fields;
 *   - luks_open() with the seeds' passphrase "fuzz" either fails with an
 *     error, or returns a block whose info matches and whose XTS
 *     decrypt(encrypt(x)) == x != encrypt(x);
 *   - with flag bit 0: a new passphrase added with luks_add_key() unlocks the
 *     same master key (same ciphertext) and the old one still works; after
 *     luks_erase_key() the new one fails with "Invalid password"; a failed
 *     luks_add_key() leaves the header bytes unchanged.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "crypto/luks.h"
#include "util/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LUKS_MAX_ITERS 5000
#define FUZZ_LUKS_MAX_AREA (4u << 20)
#define LUKS_HDR_LEN 592
#define FLAG_KEY_MANAGEMENT 0x1

static const uint8_t pass[] = "fuzz";
static const uint8_t pass2[] = "second passphrase";

/* The area: the input, zero-extended to `len`; a private copy once written. */
typedef struct FuzzArea {
    const uint8_t *in;
    size_t in_len;
    size_t len;
    uint8_t *copy;
} FuzzArea;

static void G_GNUC_NORETURN fail(const char *what, const GError *err)
{
    fprintf(stderr, "fuzz-luks: invariant broken: %s\n", what);
    if (err) {
        fprintf(stderr, "fuzz-luks: error: %s\n", err->message);
    }
    abort();
}

static bool area_read(void *opaque, uint64_t offset, void *buf, size_t len, GError **errp)
{
    FuzzArea *a = opaque;

    if (offset > a->len || len > a->len - offset) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "read of %zu bytes at %" G_GUINT64_FORMAT " is outside the area", len,
                    offset);
        return false;
    }
    if (a->copy) {
        memcpy(buf, a->copy + offset, len);
        return true;
    }
    memset(buf, 0, len);
    if (offset < a->in_len) {
        memcpy(buf, a->in + offset, MIN(len, a->in_len - (size_t)offset));
    }
    return true;
}

static bool area_write(void *opaque, uint64_t offset, const void *buf, size_t len,
                       GError **errp)
{
    FuzzArea *a = opaque;

    if (offset > a->len || len > a->len - offset) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "write of %zu bytes at %" G_GUINT64_FORMAT " is outside the area",
                    len, offset);
        return false;
    }
    if (!a->copy) {
        a->copy = g_malloc0(a->len);
        memcpy(a->copy, a->in, MIN(a->in_len, a->len));
    }
    memcpy(a->copy + offset, buf, len);
    return true;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool message_is_printable(const char *msg)
{
    if (!g_utf8_validate(msg, -1, NULL)) {
        return false;
    }
    for (const char *p = msg; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
            return false;
        }
    }
    return true;
}

static void check_error(const GError *err, const char *what)
{
    if (!err) {
        fail(what, NULL);
    }
    if (!message_is_printable(err->message)) {
        fail("an error message with control characters or invalid UTF-8", err);
    }
}

/* luks_get_info() must report the header's fields as they are. */
static void check_info(const LuksInfo *info, const uint8_t *hdr)
{
    uint32_t key_bytes = be32(hdr + 108);

    if (info->payload_offset != (uint64_t)be32(hdr + 104) * 512 ||
        info->master_key_iters != be32(hdr + 164) ||
        strcmp(info->cipher_alg, key_bytes == 32 ? "aes-128" : "aes-256") != 0 ||
        strcmp(info->cipher_mode, "xts") != 0 ||
        strcmp(info->ivgen_alg, "plain64") != 0 ||
        strncmp(info->hash_alg, (const char *)hdr + 72, 32) != 0 ||
        memchr(info->uuid, '\0', sizeof(info->uuid)) == NULL) {
        fail("luks_get_info differs from the header", NULL);
    }
    for (int i = 0; i < 8; i++) {
        const uint8_t *s = hdr + 208 + 48 * i;

        if (info->slots[i].active != (be32(s) == 0x00AC71F3u) ||
            info->slots[i].iters != be32(s + 4) ||
            info->slots[i].key_offset != (uint64_t)be32(s + 40) * 512 ||
            info->slots[i].stripes != be32(s + 44)) {
            fail("luks_get_info differs from the header's key slots", NULL);
        }
    }
}

static bool iterations_within_cap(const uint8_t *hdr)
{
    if (be32(hdr + 164) > FUZZ_LUKS_MAX_ITERS) {
        return false;
    }
    for (int i = 0; i < 8; i++) {
        const uint8_t *s = hdr + 208 + 48 * i;
        if (be32(s) == 0x00AC71F3u && be32(s + 4) > FUZZ_LUKS_MAX_ITERS) {
            return false;
        }
    }
    return true;
}

/* Two sectors encrypted with `luks` at `sector` (the IV source). */
static void encrypt_sample(LuksBlock *luks, uint64_t sector, uint8_t out[1024])
{
    g_autoptr(GError) err = NULL;

    for (int i = 0; i < 1024; i++) {
        out[i] = (uint8_t)(i * 7 + 1);
    }
    if (!luks_encrypt(luks, sector, out, 1024, &err)) {
        fail("encrypting whole sectors failed", err);
    }
}

static void check_unlocked(LuksBlock *luks, const uint8_t *hdr, uint64_t sector)
{
    g_autoptr(GError) err = NULL;
    uint8_t buf[1024], plain[1024];
    LuksInfo info;

    if (!luks_get_info(luks, NULL, &info, &err)) {
        fail("luks_get_info on an open block failed", err);
    }
    check_info(&info, hdr);
    encrypt_sample(luks, sector, buf);
    for (int i = 0; i < 1024; i++) {
        plain[i] = (uint8_t)(i * 7 + 1);
    }
    if (memcmp(buf, plain, sizeof(buf)) == 0) {
        fail("encryption left the data as it was", NULL);
    }
    if (!luks_decrypt(luks, sector, buf, sizeof(buf), &err) ||
        memcmp(buf, plain, sizeof(buf)) != 0) {
        fail("decrypt(encrypt(x)) != x", err);
    }
    if (luks_encrypt(luks, sector, buf, 100, NULL)) {
        fail("a partial sector was accepted", NULL);
    }
}

/* Add a passphrase, use it, erase it: the master key must never change. */
static void exercise_key_slots(LuksBlock *luks, FuzzArea *area, const LuksIO *io,
                               uint64_t sector)
{
    g_autoptr(GError) err = NULL;
    uint8_t want[1024], got[1024], hdr_before[LUKS_HDR_LEN];
    LuksBlock *other;
    int slot = -1;

    encrypt_sample(luks, sector, want);
    if (!area_read(area, 0, hdr_before, sizeof(hdr_before), NULL)) {
        fail("the header became unreadable", NULL);
    }
    if (!luks_add_key(luks, pass2, sizeof(pass2) - 1, 1, -1, &slot, &err)) {
        uint8_t hdr_after[LUKS_HDR_LEN];

        check_error(err, "luks_add_key failed without an error");
        area_read(area, 0, hdr_after, sizeof(hdr_after), NULL);
        if (memcmp(hdr_before, hdr_after, sizeof(hdr_before)) != 0) {
            fail("a failed luks_add_key changed the header", err);
        }
        return;
    }
    if (slot < 0 || slot > 7) {
        fail("luks_add_key reported no valid slot", NULL);
    }
    other = luks_open(pass2, sizeof(pass2) - 1, io, &err);
    if (!other) {
        fail("the added passphrase does not unlock", err);
    }
    encrypt_sample(other, sector, got);
    luks_free(other);
    if (memcmp(want, got, sizeof(want)) != 0) {
        fail("the added passphrase unlocks a different master key", NULL);
    }
    other = luks_open(pass, sizeof(pass) - 1, io, &err);
    if (!other) {
        fail("adding a key slot locked out the old passphrase", err);
    }
    luks_free(other);
    if (!luks_erase_key(luks, slot, &err)) {
        fail("erasing the added key slot failed", err);
    }
    other = luks_open(pass2, sizeof(pass2) - 1, io, &err);
    if (other || !g_error_matches(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION)) {
        fail("an erased passphrase still unlocks (or failed otherwise)", err);
    }
    g_clear_error(&err);
    other = luks_open(pass, sizeof(pass) - 1, io, &err);
    if (!other) {
        fail("erasing a key slot locked out the old passphrase", err);
    }
    luks_free(other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GError) info_err = NULL;
    FuzzArea area = {data, size, size, NULL};
    LuksIO io = {area_read, area_write, &area};
    uint8_t hdr[LUKS_HDR_LEN] = {0};
    bool probed, have_info;
    uint64_t sector;
    LuksInfo info;
    LuksBlock *luks;

    if (size >= LUKS_HDR_LEN) {
        uint64_t payload = (uint64_t)be32(data + 104) * 512;

        memcpy(hdr, data, LUKS_HDR_LEN);
        area.len = MAX(size, (size_t)MIN(payload, (uint64_t)FUZZ_LUKS_MAX_AREA));
    }
    probed = luks_probe(&io, &err);
    have_info = luks_get_info(NULL, &io, &info, &info_err);
    if (probed != have_info) {
        fail("luks_probe and luks_get_info disagree", err ? err : info_err);
    }
    if (!probed) {
        check_error(err, "luks_probe failed without an error");
        check_error(info_err, "luks_get_info failed without an error");
        return 0;
    }
    check_info(&info, hdr);
    if (!iterations_within_cap(hdr)) {
        return 0;
    }
    g_clear_error(&err);
    luks = luks_open(pass, sizeof(pass) - 1, &io, &err);
    if (!luks) {
        check_error(err, "luks_open failed without an error");
        g_free(area.copy);
        return 0;
    }
    if (err) {
        fail("luks_open succeeded with an error set", err);
    }
    sector = size > 600 ? be32(data + 596) : 0;
    check_unlocked(luks, hdr, sector);
    if (size > LUKS_HDR_LEN && (data[LUKS_HDR_LEN] & FLAG_KEY_MANAGEMENT)) {
        exercise_key_slots(luks, &area, &io, sector);
    }
    luks_free(luks);
    g_free(area.copy);
    return 0;
}
