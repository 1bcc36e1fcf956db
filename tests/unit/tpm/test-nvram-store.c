/*
 * The NVRAM store over a real file: round trips, write counts, slot
 * fallback, corrupt and hostile layouts (docs/nvram.md is the reference the
 * hand-made superblocks below follow).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <nettle/sha2.h>

#include "hw/tpm/tpm_nvram.h"
#include "util/error.h"

#define MIB (1024 * 1024)

typedef struct Fixture {
    char *dir;
    char *path;
} Fixture;

static const uint64_t small_max[TPM_NVRAM_NBLOBS] = {40960, 21319, 21088};

static void fixture_setup(Fixture *f, gconstpointer data)
{
    GError *err = NULL;

    f->dir = g_dir_make_tmp("test-nvram-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, "nv.img", NULL);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_unlink(f->path);
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

static void make_file(const char *path, uint64_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, (off_t)size), ==, 0);
    close(fd);
}

static void file_write(const char *path, uint64_t off, const void *buf, size_t len)
{
    int fd = open(path, O_RDWR);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, buf, len, (off_t)off), ==, (ssize_t)len);
    close(fd);
}

static void file_read(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, len, (off_t)off), ==, (ssize_t)len);
    close(fd);
}

static GBytes *file_contents(const char *path)
{
    gchar *data;
    gsize len;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_bytes_new_take(data, len);
}

typedef struct Store {
    TPMNvramFile *file;
    TPMNvram *nv;
} Store;

static bool store_open(Store *s, const char *path, uint32_t version, GError **errp)
{
    s->file = tpm_nvram_file_open(path, true, errp);
    if (!s->file) {
        return false;
    }
    s->nv = tpm_nvram_open(&tpm_nvram_file_ops, s->file, "file 'nv.img'", version,
                           small_max, errp);
    if (!s->nv) {
        tpm_nvram_file_close(s->file);
        s->file = NULL;
        return false;
    }
    return true;
}

static void store_close(Store *s)
{
    tpm_nvram_free(s->nv);
    tpm_nvram_file_close(s->file);
    s->nv = NULL;
    s->file = NULL;
}

static void store_open_ok(Store *s, const char *path)
{
    GError *err = NULL;
    g_assert_true(store_open(s, path, 2, &err));
    g_assert_no_error(err);
}

static void fill(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(seed + i * 7);
    }
}

static void assert_blob(TPMNvram *nv, TPMNvramBlob b, const uint8_t *want, uint32_t len)
{
    const uint8_t *data;
    uint32_t got;
    g_assert_true(tpm_nvram_get(nv, b, &data, &got));
    g_assert_cmpmem(data, got, want, len);
}

/* Layout facts from docs/nvram.md, written independently of the store. */
static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = v >> (24 - 8 * i);
    }
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, v >> 32);
    put_be32(p + 4, (uint32_t)v);
}

static uint64_t slot_offset(const char *path, TPMNvramBlob b, unsigned s)
{
    uint8_t sb[512];
    file_read(path, 0, sb, sizeof(sb));
    return be64(sb + 24 + b * 24 + s * 8);
}

static void superblock_seal(uint8_t sb[512])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, 480, sb);
    sha256_digest(&ctx, 32, sb + 480);
}

static void test_blank_file_has_no_blobs(Fixture *f, gconstpointer data)
{
    Store s;
    const uint8_t *p;
    uint32_t len;
    TPMNvramStats st;

    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        g_assert_false(tpm_nvram_get(s.nv, b, &p, &len));
        g_assert_cmpuint(tpm_nvram_generation(s.nv, b), ==, 0);
    }
    tpm_nvram_get_stats(s.nv, &st);
    g_assert_cmpuint(st.writes, ==, 0);
    store_close(&s);
}

static void test_store_then_reopen_returns_bytes(Fixture *f, gconstpointer data)
{
    Store s;
    uint8_t perm[30000], sav[1000];
    GError *err = NULL;

    fill(perm, sizeof(perm), 1);
    fill(sav, sizeof(sav), 2);
    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    g_assert_true(
        tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, perm, sizeof(perm), &err));
    g_assert_true(
        tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_SAVESTATE, sav, sizeof(sav), &err));
    g_assert_no_error(err);
    store_close(&s);

    store_open_ok(&s, f->path);
    assert_blob(s.nv, TPM_NVRAM_BLOB_PERMALL, perm, sizeof(perm));
    assert_blob(s.nv, TPM_NVRAM_BLOB_SAVESTATE, sav, sizeof(sav));
    g_assert_false(tpm_nvram_get(s.nv, TPM_NVRAM_BLOB_VOLATILE, &(const uint8_t *){0},
                                 &(uint32_t){0}));
    store_close(&s);
}

static void test_change_costs_one_write_and_one_flush(Fixture *f, gconstpointer data)
{
    Store s;
    uint8_t perm[20000];
    TPMNvramStats a, b;
    GError *err = NULL;

    fill(perm, sizeof(perm), 3);
    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    /* first store: superblock + both slots */
    g_assert_true(
        tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, perm, sizeof(perm), &err));
    tpm_nvram_get_stats(s.nv, &a);
    g_assert_cmpuint(a.writes, ==, 3);
    g_assert_cmpuint(a.flushes, ==, 3);

    perm[100] ^= 1;
    g_assert_true(
        tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, perm, sizeof(perm), &err));
    g_assert_no_error(err);
    tpm_nvram_get_stats(s.nv, &b);
    g_assert_cmpuint(b.writes - a.writes, ==, 1);
    g_assert_cmpuint(b.flushes - a.flushes, ==, 1);
    /* header + data rounded up to whole 512-byte sectors */
    g_assert_cmpuint(b.bytes_written - a.bytes_written, ==,
                     (64 + sizeof(perm) + 511) / 512 * 512);
    store_close(&s);
}

static void test_unchanged_bytes_are_not_written(Fixture *f, gconstpointer data)
{
    Store s;
    uint8_t perm[5000];
    TPMNvramStats a, b;
    GError *err = NULL;

    fill(perm, sizeof(perm), 4);
    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    g_assert_true(
        tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, perm, sizeof(perm), &err));
    tpm_nvram_get_stats(s.nv, &a);
    for (int i = 0; i < 10; i++) {
        g_assert_true(
            tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, perm, sizeof(perm), &err));
    }
    g_assert_no_error(err);
    tpm_nvram_get_stats(s.nv, &b);
    g_assert_cmpuint(b.writes, ==, a.writes);
    g_assert_cmpuint(b.flushes, ==, a.flushes);
    g_assert_cmpuint(b.unchanged_skips - a.unchanged_skips, ==, 10);
    store_close(&s);
}

static void test_writes_alternate_slots(Fixture *f, gconstpointer data)
{
    Store s;
    uint8_t perm[100];
    GError *err = NULL;
    uint8_t h0[64], h1[64];

    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    for (int i = 0; i < 5; i++) {
        fill(perm, sizeof(perm), i);
        g_assert_true(
            tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, perm, sizeof(perm), &err));
        g_assert_no_error(err);
    }
    /* generations 1 (slot 0), 2 (slot 1) for the first write, then 3..6 alternating */
    g_assert_cmpuint(tpm_nvram_generation(s.nv, TPM_NVRAM_BLOB_PERMALL), ==, 6);
    store_close(&s);
    file_read(f->path, slot_offset(f->path, TPM_NVRAM_BLOB_PERMALL, 0), h0, 64);
    file_read(f->path, slot_offset(f->path, TPM_NVRAM_BLOB_PERMALL, 1), h1, 64);
    g_assert_cmpmem(h0, 8, "TPMVSLOT", 8);
    g_assert_cmpmem(h1, 8, "TPMVSLOT", 8);
    g_assert_cmpuint(be64(h0 + 16), ==, 5);
    g_assert_cmpuint(be64(h1 + 16), ==, 6);
    g_assert_cmpuint(be64(h1 + 24), ==, sizeof(perm));
}

/* Write two versions, then damage the newest slot with `damage`. */
static void two_versions(Fixture *f, uint8_t *v1, uint8_t *v2, size_t len,
                         uint64_t *newest)
{
    Store s;
    GError *err = NULL;

    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, len, &err));
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, v2, len, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(tpm_nvram_generation(s.nv, TPM_NVRAM_BLOB_PERMALL), ==, 3);
    store_close(&s);
    /* generation 3 went to slot 0 (1 -> slot 0, 2 -> slot 1, 3 -> slot 0) */
    *newest = slot_offset(f->path, TPM_NVRAM_BLOB_PERMALL, 0);
}

static void test_corrupt_newest_slot_falls_back(Fixture *f, gconstpointer data)
{
    uint8_t v1[3000], v2[3000];
    uint64_t newest;

    fill(v1, sizeof(v1), 10);
    fill(v2, sizeof(v2), 20);
    two_versions(f, v1, v2, sizeof(v1), &newest);
    if (g_test_subprocess()) {
        Store s;
        uint8_t byte;
        file_read(f->path, newest + 64 + 1234, &byte, 1);
        byte ^= 0x40;
        file_write(f->path, newest + 64 + 1234, &byte, 1);
        store_open_ok(&s, f->path);
        assert_blob(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1));
        g_assert_cmpuint(tpm_nvram_generation(s.nv, TPM_NVRAM_BLOB_PERMALL), ==, 2);
        store_close(&s);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*slot 0 of TPM state blob 'permall' is corrupt (checksum "
                              "mismatch); using slot 1*");
}

static void test_torn_newest_slot_falls_back_and_heals(Fixture *f, gconstpointer data)
{
    uint8_t v1[3000], v2[3000], v3[3000], zero[1024] = {0};
    uint64_t newest;
    Store s;
    GError *err = NULL;

    fill(v1, sizeof(v1), 11);
    fill(v2, sizeof(v2), 21);
    fill(v3, sizeof(v3), 31);
    two_versions(f, v1, v2, sizeof(v1), &newest);
    /* a write that reached the disk only up to its second sector */
    file_write(f->path, newest + 1024, zero, sizeof(zero));
    store_open_ok(&s, f->path);
    assert_blob(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1));
    /* the next store overwrites the torn slot */
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, v3, sizeof(v3), &err));
    g_assert_no_error(err);
    store_close(&s);
    store_open_ok(&s, f->path);
    assert_blob(s.nv, TPM_NVRAM_BLOB_PERMALL, v3, sizeof(v3));
    store_close(&s);
}

static void test_both_slots_corrupt_is_an_error(Fixture *f, gconstpointer data)
{
    uint8_t v1[3000], v2[3000], junk[16];
    uint64_t newest, older;
    Store s;
    GError *err = NULL;
    g_autoptr(GBytes) before = NULL, after = NULL;

    fill(v1, sizeof(v1), 12);
    fill(v2, sizeof(v2), 22);
    fill(junk, sizeof(junk), 99);
    two_versions(f, v1, v2, sizeof(v1), &newest);
    older = slot_offset(f->path, TPM_NVRAM_BLOB_PERMALL, 1);
    file_write(f->path, newest + 100, junk, sizeof(junk));
    file_write(f->path, older, junk, sizeof(junk));
    before = file_contents(f->path);
    g_assert_false(store_open(&s, f->path, 2, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message,
                            "both copies of the TPM state blob 'permall' are "
                            "corrupt (slot 0: checksum mismatch; slot 1: bad "
                            "magic)"));
    g_assert_nonnull(strstr(err->message, "Restore the drive"));
    g_clear_error(&err);
    after = file_contents(f->path);
    g_assert_true(g_bytes_equal(before, after));
}

static void test_torn_first_write_is_absent(Fixture *f, gconstpointer data)
{
    uint8_t v1[3000], junk[700];
    Store s;
    const uint8_t *p;
    uint32_t len;
    GError *err = NULL;

    fill(v1, sizeof(v1), 13);
    fill(junk, sizeof(junk), 77);
    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_SAVESTATE, v1, sizeof(v1), &err));
    g_assert_no_error(err);
    store_close(&s);
    /* emulate a first write torn in slot 0 with slot 1 never written */
    file_write(f->path, slot_offset(f->path, TPM_NVRAM_BLOB_SAVESTATE, 0) + 64 + 500,
               junk, sizeof(junk));
    {
        uint8_t zero[4096] = {0};
        file_write(f->path, slot_offset(f->path, TPM_NVRAM_BLOB_SAVESTATE, 1), zero,
                   sizeof(zero));
    }
    store_open_ok(&s, f->path);
    g_assert_false(tpm_nvram_get(s.nv, TPM_NVRAM_BLOB_SAVESTATE, &p, &len));
    store_close(&s);
}

static void test_delete_survives_reopen(Fixture *f, gconstpointer data)
{
    uint8_t v1[500];
    Store s;
    const uint8_t *p;
    uint32_t len;
    GError *err = NULL;

    fill(v1, sizeof(v1), 14);
    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_SAVESTATE, v1, sizeof(v1), &err));
    g_assert_true(tpm_nvram_delete(s.nv, TPM_NVRAM_BLOB_SAVESTATE, &err));
    g_assert_no_error(err);
    g_assert_false(tpm_nvram_get(s.nv, TPM_NVRAM_BLOB_SAVESTATE, &p, &len));
    store_close(&s);
    store_open_ok(&s, f->path);
    g_assert_false(tpm_nvram_get(s.nv, TPM_NVRAM_BLOB_SAVESTATE, &p, &len));
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_SAVESTATE, v1, sizeof(v1), &err));
    g_assert_no_error(err);
    store_close(&s);
    store_open_ok(&s, f->path);
    assert_blob(s.nv, TPM_NVRAM_BLOB_SAVESTATE, v1, sizeof(v1));
    store_close(&s);
}

static void test_too_small_medium_is_refused(Fixture *f, gconstpointer data)
{
    Store s;
    GError *err = NULL;
    uint64_t need = tpm_nvram_required_size(small_max);
    g_autofree char *want = g_strdup_printf("needs %" G_GUINT64_FORMAT " bytes", need);

    make_file(f->path, need - 512);
    g_assert_false(store_open(&s, f->path, 2, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_GENERIC);
    g_assert_nonnull(strstr(err->message, "too small"));
    g_assert_nonnull(strstr(err->message, want));
    g_clear_error(&err);

    make_file(f->path, need);
    store_open_ok(&s, f->path);
    store_close(&s);
}

static void test_version_mismatch_is_refused(Fixture *f, gconstpointer data)
{
    Store s;
    uint8_t v1[100];
    GError *err = NULL;

    fill(v1, sizeof(v1), 15);
    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1), &err));
    store_close(&s);
    g_assert_false(store_open(&s, f->path, 1, &err));
    g_assert_nonnull(
        strstr(err->message, "holds the state of a TPM 2.0, not of a TPM 1.2"));
    g_clear_error(&err);
}

/* Build a sealed superblock over `geom` (offset0, offset1, size per blob). */
static void write_superblock(const char *path, const uint64_t geom[3][3], uint32_t layout)
{
    uint8_t sb[512] = {0};
    memcpy(sb, "TPMVM-NV", 8);
    put_be32(sb + 8, layout);
    put_be32(sb + 12, 512);
    put_be32(sb + 16, 2);
    put_be32(sb + 20, 3);
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < 3; i++) {
            put_be64(sb + 24 + b * 24 + i * 8, geom[b][i]);
        }
    }
    superblock_seal(sb);
    file_write(path, 0, sb, sizeof(sb));
}

static void expect_open_error(Fixture *f, const char *fragment)
{
    Store s;
    GError *err = NULL;
    g_autoptr(GBytes) before = file_contents(f->path);
    g_autoptr(GBytes) after = NULL;

    g_assert_false(store_open(&s, f->path, 2, &err));
    g_assert_nonnull(err);
    if (!strstr(err->message, fragment)) {
        g_error("expected '%s' in: %s", fragment, err->message);
    }
    g_clear_error(&err);
    after = file_contents(f->path);
    g_assert_true(g_bytes_equal(before, after));
}

static void test_hostile_superblocks_are_refused(Fixture *f, gconstpointer data)
{
    const uint64_t K64 = 65536;
    const struct {
        uint64_t geom[3][3];
        const char *fragment;
    } cases[] = {
        /* slot past the end of the 1 MiB file */
        {{{K64, 2 * K64, K64}, {3 * K64, 4 * K64, K64}, {5 * K64, MIB, K64}}, "outside"},
        /* offset + size wraps around 2^64 */
        {{{K64, UINT64_MAX - 100, K64}, {3 * K64, 4 * K64, K64}, {5 * K64, 6 * K64, K64}},
         "outside"},
        /* overlapping slots */
        {{{K64, K64 + 4096, K64}, {3 * K64, 4 * K64, K64}, {5 * K64, 6 * K64, K64}},
         "overlapping"},
        /* slot inside the superblock */
        {{{0, 2 * K64, K64}, {3 * K64, 4 * K64, K64}, {5 * K64, 6 * K64, K64}},
         "outside"},
        /* slot too small for its header, and absurdly large */
        {{{K64, 2 * K64, 10}, {3 * K64, 4 * K64, K64}, {5 * K64, 6 * K64, K64}},
         "-byte slot"},
        {{{K64, 2 * K64, UINT64_MAX}, {3 * K64, 4 * K64, K64}, {5 * K64, 6 * K64, K64}},
         "-byte slot"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        make_file(f->path, MIB);
        write_superblock(f->path, cases[i].geom, 1);
        expect_open_error(f, cases[i].fragment);
    }
    {
        const uint64_t ok[3][3] = {
            {K64, 2 * K64, K64}, {3 * K64, 4 * K64, K64}, {5 * K64, 6 * K64, K64}};
        make_file(f->path, MIB);
        write_superblock(f->path, ok, 7);
        expect_open_error(f, "layout version 7 is not supported");
    }
    {
        uint8_t bad[512];
        make_file(f->path, MIB);
        memset(bad, 0x5a, sizeof(bad));
        file_write(f->path, 0, bad, sizeof(bad));
        expect_open_error(f, "does not hold TPM state");
    }
}

static void test_hostile_slot_length_is_corrupt(Fixture *f, gconstpointer data)
{
    uint8_t v1[200], v2[200], hdr[64];
    uint64_t newest;
    Store s;

    fill(v1, sizeof(v1), 16);
    fill(v2, sizeof(v2), 26);
    two_versions(f, v1, v2, sizeof(v1), &newest);
    file_read(f->path, newest, hdr, sizeof(hdr));
    /* huge length in an otherwise intact header: must be bounded before use */
    put_be64(hdr + 24, UINT64_MAX - 10);
    file_write(f->path, newest, hdr, sizeof(hdr));
    store_open_ok(&s, f->path);
    assert_blob(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1));
    store_close(&s);
}

static void test_generation_limit_refuses_store(Fixture *f, gconstpointer data)
{
    uint8_t v1[100], v2[100], hdr[64], *slot;
    uint64_t newest;
    Store s;
    GError *err = NULL;
    struct sha256_ctx c;

    fill(v1, sizeof(v1), 22);
    fill(v2, sizeof(v2), 32);
    two_versions(f, v1, v2, sizeof(v1), &newest);
    /* a well-sealed newest slot at the last generation allowed, 2^63 */
    slot = g_malloc(64 + sizeof(v2));
    file_read(f->path, newest, slot, 64 + sizeof(v2));
    put_be64(slot + 16, UINT64_C(1) << 63);
    sha256_init(&c);
    sha256_update(&c, 32, slot);
    sha256_update(&c, sizeof(v2), slot + 64);
    sha256_digest(&c, 32, slot + 32);
    memcpy(hdr, slot, sizeof(hdr));
    file_write(f->path, newest, hdr, sizeof(hdr));
    g_free(slot);
    store_open_ok(&s, f->path);
    assert_blob(s.nv, TPM_NVRAM_BLOB_PERMALL, v2, sizeof(v2));
    g_assert_false(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1), &err));
    g_assert_nonnull(strstr(err->message, "the last one allowed"));
    g_clear_error(&err);
    store_close(&s);
    /* one past it is not a valid slot: the older copy wins */
    put_be64(hdr + 16, (UINT64_C(1) << 63) + 1);
    file_write(f->path, newest, hdr, sizeof(hdr));
    store_open_ok(&s, f->path);
    assert_blob(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1));
    store_close(&s);
}

static void test_torn_superblock_on_blank_drive_is_blank(Fixture *f, gconstpointer data)
{
    Store s;
    uint8_t v1[100], half[256];
    uint8_t sb[512];
    GError *err = NULL;

    fill(v1, sizeof(v1), 17);
    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1), &err));
    store_close(&s);
    /* keep the first half of the superblock, drop everything else */
    file_read(f->path, 0, sb, sizeof(sb));
    memcpy(half, sb, sizeof(half));
    make_file(f->path, MIB);
    file_write(f->path, 0, half, sizeof(half));
    store_open_ok(&s, f->path);
    g_assert_cmpuint(tpm_nvram_generation(s.nv, TPM_NVRAM_BLOB_PERMALL), ==, 0);
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1), &err));
    g_assert_no_error(err);
    store_close(&s);
    store_open_ok(&s, f->path);
    assert_blob(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1));
    store_close(&s);
}

static void test_corrupt_superblock_above_state_is_an_error(Fixture *f,
                                                            gconstpointer data)
{
    Store s;
    uint8_t v1[100], b = 0;
    GError *err = NULL;

    fill(v1, sizeof(v1), 18);
    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1), &err));
    store_close(&s);
    file_read(f->path, 30, &b, 1);
    b ^= 1;
    file_write(f->path, 30, &b, 1);
    expect_open_error(f, "superblock is corrupt");
}

static void test_reload_sees_external_change(Fixture *f, gconstpointer data)
{
    Store a, b;
    uint8_t v1[300], v2[300];
    GError *err = NULL;

    fill(v1, sizeof(v1), 19);
    fill(v2, sizeof(v2), 29);
    make_file(f->path, MIB);
    store_open_ok(&a, f->path);
    g_assert_true(tpm_nvram_store(a.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1), &err));
    store_open_ok(&b, f->path);
    g_assert_true(tpm_nvram_store(b.nv, TPM_NVRAM_BLOB_PERMALL, v2, sizeof(v2), &err));
    g_assert_no_error(err);
    assert_blob(a.nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1));
    g_assert_true(tpm_nvram_reload(a.nv, &err));
    g_assert_no_error(err);
    assert_blob(a.nv, TPM_NVRAM_BLOB_PERMALL, v2, sizeof(v2));
    store_close(&b);
    store_close(&a);
}

static void test_memory_only_keeps_blobs(void)
{
    TPMNvram *nv = tpm_nvram_open(NULL, NULL, "memory", 2, small_max, NULL);
    uint8_t v1[64];
    GError *err = NULL;
    TPMNvramStats st;

    fill(v1, sizeof(v1), 20);
    g_assert_nonnull(nv);
    g_assert_false(tpm_nvram_has_medium(nv));
    g_assert_true(tpm_nvram_store(nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1), &err));
    g_assert_no_error(err);
    assert_blob(nv, TPM_NVRAM_BLOB_PERMALL, v1, sizeof(v1));
    tpm_nvram_get_stats(nv, &st);
    g_assert_cmpuint(st.writes, ==, 0);
    tpm_nvram_free(nv);
}

static void test_oversized_blob_is_refused(Fixture *f, gconstpointer data)
{
    Store s;
    GError *err = NULL;
    uint64_t cap;
    g_autofree uint8_t *big = NULL;

    make_file(f->path, MIB);
    store_open_ok(&s, f->path);
    cap = tpm_nvram_capacity(s.nv, TPM_NVRAM_BLOB_SAVESTATE);
    big = g_malloc0(cap + 1);
    g_assert_false(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_SAVESTATE, big, cap + 1, &err));
    g_assert_nonnull(strstr(err->message, "slot holds at most"));
    g_clear_error(&err);
    g_assert_true(tpm_nvram_store(s.nv, TPM_NVRAM_BLOB_SAVESTATE, big, cap, &err));
    g_assert_no_error(err);
    store_close(&s);
}

/* Random bytes over the whole store area: open may fail, never crash. */
static void test_random_bytes_never_crash(Fixture *f, gconstpointer data)
{
    GRand *rand = g_rand_new_with_seed(0x7e57);
    uint8_t v1[2000], v2[2000];
    uint64_t newest;
    g_autoptr(GBytes) good = NULL;

    fill(v1, sizeof(v1), 21);
    fill(v2, sizeof(v2), 31);
    two_versions(f, v1, v2, sizeof(v1), &newest);
    good = file_contents(f->path);
    for (int i = 0; i < 300; i++) {
        Store s;
        GError *err = NULL;
        uint8_t junk[256];
        uint32_t off = g_rand_int_range(rand, 0, 6 * 65536);
        uint32_t n = g_rand_int_range(rand, 1, sizeof(junk));
        const uint8_t *p;
        uint32_t len;

        g_assert_true(g_file_set_contents(f->path, g_bytes_get_data(good, NULL),
                                          g_bytes_get_size(good), NULL));
        for (uint32_t j = 0; j < n; j++) {
            junk[j] = g_rand_int(rand);
        }
        file_write(f->path, off, junk, n);
        if (store_open(&s, f->path, 2, &err)) {
            if (tpm_nvram_get(s.nv, TPM_NVRAM_BLOB_PERMALL, &p, &len)) {
                g_assert_cmpuint(len, ==, sizeof(v1));
                g_assert_true(memcmp(p, v1, len) == 0 || memcmp(p, v2, len) == 0);
            }
            store_close(&s);
        } else {
            g_assert_nonnull(err);
            g_clear_error(&err);
        }
    }
    g_rand_free(rand);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("/nvram/store/blank-file-has-no-blobs", test_blank_file_has_no_blobs);
    ADD("/nvram/store/stored-bytes-survive-reopen", test_store_then_reopen_returns_bytes);
    ADD("/nvram/store/change-costs-one-write-and-one-flush",
        test_change_costs_one_write_and_one_flush);
    ADD("/nvram/store/unchanged-bytes-are-not-written",
        test_unchanged_bytes_are_not_written);
    ADD("/nvram/store/writes-alternate-slots", test_writes_alternate_slots);
    ADD("/nvram/store/corrupt-newest-slot-falls-back-with-warning",
        test_corrupt_newest_slot_falls_back);
    ADD("/nvram/store/torn-newest-slot-falls-back-and-heals",
        test_torn_newest_slot_falls_back_and_heals);
    ADD("/nvram/store/both-slots-corrupt-is-an-error",
        test_both_slots_corrupt_is_an_error);
    ADD("/nvram/store/torn-first-write-is-absent", test_torn_first_write_is_absent);
    ADD("/nvram/store/delete-survives-reopen", test_delete_survives_reopen);
    ADD("/nvram/store/too-small-medium-is-refused", test_too_small_medium_is_refused);
    ADD("/nvram/store/version-mismatch-is-refused", test_version_mismatch_is_refused);
    ADD("/nvram/store/hostile-superblocks-are-refused",
        test_hostile_superblocks_are_refused);
    ADD("/nvram/store/hostile-slot-length-is-corrupt",
        test_hostile_slot_length_is_corrupt);
    ADD("/nvram/store/generation-limit-refuses-store",
        test_generation_limit_refuses_store);
    ADD("/nvram/store/torn-superblock-on-blank-drive-is-blank",
        test_torn_superblock_on_blank_drive_is_blank);
    ADD("/nvram/store/corrupt-superblock-above-state-is-an-error",
        test_corrupt_superblock_above_state_is_an_error);
    ADD("/nvram/store/reload-sees-external-change", test_reload_sees_external_change);
    ADD("/nvram/store/oversized-blob-is-refused", test_oversized_blob_is_refused);
    ADD("/nvram/store/random-bytes-never-crash", test_random_bytes_never_crash);
    g_test_add_func("/nvram/store/memory-only-keeps-blobs", test_memory_only_keeps_blobs);
    return g_test_run();
}
