/*
 * Fuzz target: the NVRAM store loader (hw/tpm/tpm_nvram.c) over a hostile
 * drive. Each input edits a valid store image in memory and opens it.
 *
 * Input: byte 0 = flags (bit 0: re-seal the superblock checksum after the
 * edits, bit 1: re-seal every slot checksum over its declared length, so
 * that the fields behind the checksums are reached), then edits
 * {u8 region, u16 offset, u8 length, bytes}: region 0 is the superblock,
 * 1..6 the slots (blob * 2 + slot + 1), anything else the whole image.
 *
 * Properties: opening never crashes or reads out of bounds; a store that
 * opened accepts a new permall, and opening the result again returns it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <nettle/sha2.h>

#include "hw/tpm/tpm_nvram.h"

#define IMAGE_SIZE (512 * 1024)

static const uint64_t max_blob[TPM_NVRAM_NBLOBS] = {4000, 4000, 4000};
static uint8_t base[IMAGE_SIZE];
static uint8_t image[IMAGE_SIZE];

/* Memory medium: the fuzz input's image (writes stay in memory). */
static bool mem_pread(void *opaque, uint64_t off, void *buf, uint64_t len, GError **errp)
{
    if (off > IMAGE_SIZE || len > IMAGE_SIZE - off) {
        g_set_error_literal(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL, "read out of range");
        return false;
    }
    memcpy(buf, image + off, len);
    return true;
}

static bool mem_pwrite(void *opaque, uint64_t off, const void *buf, uint64_t len,
                       GError **errp)
{
    if (off > IMAGE_SIZE || len > IMAGE_SIZE - off) {
        g_set_error_literal(errp, G_FILE_ERROR, G_FILE_ERROR_INVAL, "write out of range");
        return false;
    }
    memcpy(image + off, buf, len);
    return true;
}

static bool mem_flush(void *opaque, GError **errp)
{
    return true;
}

static int64_t mem_size(void *opaque, GError **errp)
{
    return IMAGE_SIZE;
}

static const TPMNvramOps mem_ops = {
    .pread = mem_pread, .pwrite = mem_pwrite, .flush = mem_flush, .size = mem_size};

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void base_build(void)
{
    uint8_t blob[3000];
    TPMNvram *nv;

    memset(image, 0, sizeof(image));
    nv = tpm_nvram_open(&mem_ops, NULL, "fuzz", 2, max_blob, NULL);
    g_assert(nv);
    for (int v = 0; v < 2; v++) {
        for (size_t i = 0; i < sizeof(blob); i++) {
            blob[i] = (uint8_t)(i * 31 + v);
        }
        g_assert(tpm_nvram_store(nv, TPM_NVRAM_BLOB_PERMALL, blob, sizeof(blob), NULL));
    }
    g_assert(tpm_nvram_store(nv, TPM_NVRAM_BLOB_SAVESTATE, blob, 500, NULL));
    g_assert(tpm_nvram_delete(nv, TPM_NVRAM_BLOB_SAVESTATE, NULL));
    g_assert(tpm_nvram_store(nv, TPM_NVRAM_BLOB_VOLATILE, blob, 100, NULL));
    tpm_nvram_free(nv);
    memcpy(base, image, sizeof(base));
}

/* Slot offset as recorded in the base superblock (docs/nvram.md). */
static uint64_t region_offset(unsigned region)
{
    unsigned b = (region - 1) / 2, s = (region - 1) % 2;
    return be64(base + 24 + b * 24 + s * 8);
}

static void reseal_superblock(void)
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, 480, image);
    sha256_digest(&c, 32, image + 480);
}

static void reseal_slots(void)
{
    for (unsigned region = 1; region <= 6; region++) {
        uint64_t off = region_offset(region);
        uint8_t *hdr = image + off;
        uint64_t len = be64(hdr + 24);
        struct sha256_ctx c;

        /* the base slots are 64 KiB; beyond that the slot is not resealable */
        if (len > 65536 - 64) {
            continue;
        }
        sha256_init(&c);
        sha256_update(&c, 32, hdr);
        sha256_update(&c, len, hdr + 64);
        sha256_digest(&c, 32, hdr + 32);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    uint8_t flags = size ? data[0] : 0;
    size_t pos = 1;
    TPMNvram *nv;
    GError *err = NULL;

    if (!ready) {
        base_build();
        ready = true;
    }
    memcpy(image, base, sizeof(image));
    while (pos + 4 <= size) {
        unsigned region = data[pos];
        uint32_t off = (uint32_t)data[pos + 1] << 8 | data[pos + 2];
        uint32_t n = data[pos + 3];
        uint64_t at;
        pos += 4;
        n = MIN(n, (uint32_t)(size - pos));
        if (region == 0) {
            at = off % 512;
        } else if (region <= 6) {
            at = region_offset(region) + off % 4200;
        } else {
            at = ((uint64_t)region << 16 | off) % IMAGE_SIZE;
        }
        n = MIN(n, (uint32_t)(IMAGE_SIZE - at));
        memcpy(image + at, data + pos, n);
        pos += n;
    }
    if (flags & 2) {
        reseal_slots();
    }
    if (flags & 1) {
        reseal_superblock();
    }

    nv = tpm_nvram_open(&mem_ops, NULL, "fuzz", 2, max_blob, &err);
    if (!nv) {
        g_assert(err && err->message[0]);
        g_clear_error(&err);
        return 0;
    }
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        const uint8_t *p;
        uint32_t len;
        if (tpm_nvram_get(nv, b, &p, &len)) {
            g_assert(len <= tpm_nvram_capacity(nv, b));
            /* touch every byte so that ASan checks the copy */
            volatile uint8_t sum = 0;
            for (uint32_t i = 0; i < len; i++) {
                sum += p[i];
            }
            (void)sum;
        }
    }
    {
        static const uint8_t fresh[] = "a new permanent state";
        const uint8_t *p;
        uint32_t len;
        bool stored =
            tpm_nvram_store(nv, TPM_NVRAM_BLOB_PERMALL, fresh, sizeof(fresh), &err);
        tpm_nvram_free(nv);
        if (!stored) {
            /* only a slot too small for the blob, or a generation at the
             * limit, may refuse it */
            g_assert(err);
            g_clear_error(&err);
            return 0;
        }
        nv = tpm_nvram_open(&mem_ops, NULL, "fuzz", 2, max_blob, &err);
        if (!nv) {
            fprintf(stderr, "reopen after a store failed: %s\n", err->message);
            g_assert_not_reached();
        }
        g_assert(tpm_nvram_get(nv, TPM_NVRAM_BLOB_PERMALL, &p, &len));
        g_assert(len == sizeof(fresh) && memcmp(p, fresh, len) == 0);
        tpm_nvram_free(nv);
    }
    return 0;
}
