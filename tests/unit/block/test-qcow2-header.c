/*
 * Hostile and broken qcow2 headers: every bad field is refused with an error
 * that names the image and the problem, and a failed open leaves the file
 * byte-identical (hashed before and after).
 */
#include <string.h>

#include "block-test.h"

typedef void (*Patch)(const char *path);

static char *template_path;

/* Open `path` read-write and expect failure with `want` in the message. */
static void expect_refused(const char *path, const char *want, int flags)
{
    g_autofree char *before = bt_file_hash(path);
    g_autofree char *after = NULL;
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs = bt_open_opts(opts, flags, &err);

    if (bs) {
        bdrv_close(bs);
        g_error("'%s' opened, expected: %s", path, want);
    }
    g_assert_nonnull(err);
    if (!strstr(err->message, want) || !strstr(err->message, path)) {
        g_error("message '%s' lacks '%s' or the file name", err->message, want);
    }
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);
}

static char *fresh_copy(const char *name)
{
    char *path = bt_path(name);

    bt_copy_file(template_path, path);
    return path;
}

typedef struct BadHeader {
    const char *name;
    uint64_t offset;
    int width; /* 4 or 8; 1 = byte */
    uint64_t value;
    const char *want;
} BadHeader;

static const BadHeader bad_headers[] = {
    {"magic", 0, 4, 0x12345678, "not in qcow2 format"},
    {"version-1", 4, 4, 1, "Unsupported qcow2 version 1"},
    {"version-4", 4, 4, 4, "Unsupported qcow2 version 4"},
    {"cluster-bits-8", 20, 4, 8, "Unsupported cluster size: 2^8"},
    {"cluster-bits-22", 20, 4, 22, "Unsupported cluster size: 2^22"},
    {"cluster-bits-huge", 20, 4, 0xffffffff, "Unsupported cluster size"},
    {"header-too-short", 100, 4, 96, "qcow2 header too short"},
    {"header-too-long", 100, 4, 0x20000, "qcow2 header exceeds cluster size"},
    {"refcount-order-7", 96, 4, 7, "Reference count entry width too large"},
    {"incompat-data-file", 72, 8, 1 << 2,
     "Unsupported qcow2 feature(s): external data file"},
    {"incompat-compression", 72, 8, 1 << 3, "compression type"},
    {"incompat-extl2", 72, 8, 1 << 4, "extended L2 entries"},
    {"incompat-unknown", 72, 8, 1ull << 40, "Unknown incompatible feature: 10000000000"},
    {"corrupt-bit", 72, 8, 1 << 1, "Image is corrupt; cannot be opened read/write"},
    {"reftable-clusters-0", 56, 4, 0, "does not contain a reference count table"},
    {"reftable-huge", 56, 4, 0x7fffffff, "Reference count table too large"},
    {"reftable-unaligned", 48, 8, 0x10200, "Invalid Reference count table offset"},
    {"reftable-beyond-eof", 48, 8, 1ull << 40, "outside the image"},
    {"reftable-offset-wraps", 48, 8, 0xffffffffffff0000ull, "outside the image"},
    {"l1-size-huge", 36, 4, 0xffffffff, "Active L1 table too large"},
    {"l1-too-small", 36, 4, 0, "L1 table is too small"},
    {"l1-unaligned", 40, 8, 0x30008, "Invalid Active L1 table offset"},
    {"l1-beyond-eof", 40, 8, 1ull << 50, "outside the image"},
    {"size-huge", 24, 8, 1ull << 62, "Image is too big"},
    {"size-max", 24, 8, UINT64_MAX, "Image is too big"},
    {"crypt-method-3", 32, 4, 3, "Unsupported encryption method: 3"},
    {"luks-without-fde", 32, 4, 2, "Missing crypto header for crypt method 2"},
    {"too-many-snapshots", 60, 4, 70000, "Too many snapshots"},
    {"snapshot-offset-unaligned", 60, 4, 1, "Invalid snapshot table offset"},
    {"backing-offset-beyond-cluster", 8, 8, 0x20000, "Invalid backing file offset"},
    {"backing-name-too-long", 16, 4, 2000, "Backing file name too long"},
    {"compression-type-byte", 104, 1, 1, "Invalid compression type"},
};

static void test_bad_field(gconstpointer data)
{
    const BadHeader *b = data;
    g_autofree char *name = g_strdup_printf("bad-%s.qcow2", b->name);
    g_autofree char *path = fresh_copy(name);

    if (b->width == 8) {
        bt_patch_be64(path, b->offset, b->value);
    } else if (b->width == 4) {
        bt_patch_be32(path, b->offset, b->value);
    } else {
        uint8_t v = b->value;
        bt_patch(path, b->offset, &v, 1);
    }
    expect_refused(path, b->want, BDRV_O_RDWR);
    if (strcmp(b->name, "corrupt-bit") != 0) {
        /* Only the corrupt bit lets `check -r` in; broken fields never. */
        expect_refused(path, b->want, BDRV_O_RDWR | BDRV_O_CHECK);
    }
    g_unlink(path);
}

static void test_backing_file_refused(void)
{
    g_autofree char *path = fresh_copy("backing.qcow2");

    bt_patch(path, 0x400, "base.qcow2", 10);
    bt_patch_be64(path, 8, 0x400);
    bt_patch_be32(path, 16, 10);
    expect_refused(path, "backing file are not supported", BDRV_O_RDWR);
}

static void test_extension_too_large(void)
{
    g_autofree char *path = fresh_copy("ext.qcow2");

    /* The first extension (feature table) claims to run past cluster 0. */
    bt_patch_be32(path, 112 + 4, 0x7fffffff);
    expect_refused(path, "too large", BDRV_O_RDWR);
}

static void test_fde_without_luks(void)
{
    g_autofree char *path = fresh_copy("fde.qcow2");

    bt_patch_be32(path, 112, 0x0537be77);
    bt_patch_be32(path, 116, 16);
    bt_patch_be64(path, 120, 0x40000);
    bt_patch_be64(path, 128, 0x1000);
    bt_patch_be64(path, 136, 0);
    expect_refused(path, "only allowed with crypt method 2", BDRV_O_RDWR);
    bt_patch_be32(path, 116, 8);
    expect_refused(path, "Crypto header extension size 8", BDRV_O_RDWR);
}

static void test_snapshot_extra_too_large(void)
{
    g_autofree char *path = bt_path("snapextra.qcow2");
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo sn = {.name = g_strdup("s"), .icount = -1};
    BlockDriverState *bs;
    uint64_t table;

    bt_create("qcow2", path, 1 << 20, NULL);
    bs = bt_open(path, "qcow2", true);
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    bdrv_close(bs);
    block_snapshot_info_clear(&sn);
    table = bt_read_be64(path, 64);
    bt_patch_be32(path, table + 36, 2000);
    expect_refused(path, "Too much extra metadata in snapshot table entry 0",
                   BDRV_O_RDWR);
    bt_patch_be32(path, table + 36, 24);
    bt_patch_be32(path, table + 8, 0x7fffffff);
    expect_refused(path, "Snapshot L1 table too large", BDRV_O_RDWR);
}

static void test_luks_bad_fde(void)
{
    g_autofree char *path = bt_path("luksfde.qcow2");

    bt_create_luks(path, 1 << 20, "sec0", NULL);
    /* FDE extension is the first one, at 112: offset, then length. */
    g_assert_cmphex(bt_read_be32(path, 112), ==, 0x0537be77);
    bt_patch_be64(path, 120, 0x40200);
    expect_refused(path, "is not a multiple of cluster size", BDRV_O_RDWR);
    bt_patch_be64(path, 120, 0x40000);
    bt_patch_be64(path, 128, 1ull << 40);
    expect_refused(path, "Invalid encryption header length", BDRV_O_RDWR);
}

static void test_refblock_outside_refused(void)
{
    g_autofree char *path = fresh_copy("refblock.qcow2");
    BdrvCheckResult res;
    g_autoptr(GError) err = NULL;
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    BlockDriverState *bs;

    bt_patch_be64(path, 0x10000, 1ull << 40);
    expect_refused(path, "refcount block 0 is outside the image", BDRV_O_RDWR);
    /* reading works; check -r all rebuilds the refcounts */
    bs = bt_open(path, "qcow2", false);
    bdrv_close(bs);
    bs = bt_open_opts(opts, BDRV_O_RDWR | BDRV_O_CHECK, &err);
    g_assert_no_error(err);
    g_assert_true(
        bdrv_check(bs, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS | BDRV_CHECK_QUIET, &err));
    g_assert_cmpint(res.corruptions, ==, 0);
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", true);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_unknown_autoclear_cleared(void)
{
    g_autofree char *path = fresh_copy("autoclear.qcow2");
    g_autofree char *before = NULL, *after = NULL;
    BlockDriverState *bs;

    bt_patch_be64(path, 88, 0x21);
    before = bt_file_hash(path);
    bs = bt_open(path, "qcow2", false);
    bdrv_close(bs);
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);
    bs = bt_open(path, "qcow2", true);
    g_assert_cmphex(bt_read_be64(path, 88), ==, 0);
    bt_write_pattern(bs, 0, 4096, 1);
    bdrv_close(bs);
}

static void test_unknown_extension_kept(void)
{
    g_autofree char *path = bt_path("unknownext.qcow2");
    static const uint8_t ext[16] = {0x12, 0x34, 0x56, 0x78, 0,   0,  0,
                                    5,    'h',  'e',  'l',  'l', 'o'};
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo sn = {.name = g_strdup("s"), .icount = -1};
    g_autofree char *data = NULL;
    BlockDriverState *bs;
    gsize len;

    bt_create("qcow2", path, 1 << 20, NULL);
    /* Put it in front of the feature table, which moves behind it. */
    {
        g_autofree uint8_t *hdr = g_malloc(4096);
        FILE *f = fopen(path, "rb");
        g_assert_cmpuint(fread(hdr, 1, 4096, f), ==, 4096);
        fclose(f);
        bt_patch(path, 112 + sizeof(ext), hdr + 112, 4096 - 112 - sizeof(ext));
        bt_patch(path, 112, ext, sizeof(ext));
    }
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 100000, 2);
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    bdrv_close(bs);
    block_snapshot_info_clear(&sn);
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_true(memcmp(data + 112, ext, sizeof(ext)) == 0);
    bs = bt_open(path, "qcow2", false);
    bt_check_pattern(bs, 0, 100000, 2);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_not_an_image(void)
{
    g_autofree char *path = bt_path("empty.qcow2");
    g_autofree char *dir_opts =
        g_strdup_printf("driver=qcow2,file.filename=%s", bt_tmpdir());
    g_autoptr(GError) err = NULL;

    bt_write_file(path, "", 0);
    expect_refused(path, "not in qcow2 format", BDRV_O_RDWR);
    g_assert_null(bt_open_opts(dir_opts, 0, &err));
    g_assert_nonnull(strstr(err->message, "directory"));
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    bt_secret("sec0", "pw");
    template_path = bt_path("template.qcow2");
    bt_create("qcow2", template_path, 64 << 20, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_headers); i++) {
        g_autofree char *tp =
            g_strdup_printf("/qcow2/header/%s-refused-unchanged", bad_headers[i].name);
        g_test_add_data_func(tp, &bad_headers[i], test_bad_field);
    }
    g_test_add_func("/qcow2/header/backing-file-refused", test_backing_file_refused);
    g_test_add_func("/qcow2/header/extension-past-cluster-refused",
                    test_extension_too_large);
    g_test_add_func("/qcow2/header/fde-extension-checked", test_fde_without_luks);
    g_test_add_func("/qcow2/header/snapshot-table-entries-checked",
                    test_snapshot_extra_too_large);
    g_test_add_func("/qcow2/header/luks-area-checked", test_luks_bad_fde);
    g_test_add_func("/qcow2/header/refcount-block-outside-refused-for-writing",
                    test_refblock_outside_refused);
    g_test_add_func("/qcow2/header/unknown-autoclear-cleared-on-write-open",
                    test_unknown_autoclear_cleared);
    g_test_add_func("/qcow2/header/unknown-extension-kept", test_unknown_extension_kept);
    g_test_add_func("/qcow2/header/empty-file-and-directory-refused", test_not_an_image);
    ret = g_test_run();
    g_free(template_path);
    bt_cleanup();
    return ret;
}
