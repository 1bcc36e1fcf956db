/*
 * qcow2 check and repair: leaks, refcount errors (rebuild), COPIED flags,
 * the dirty bit (repaired on a read/write open), the corrupt bit (set on
 * impossible metadata, refusing later read/write opens) and the guard that
 * keeps guest data from overwriting metadata.
 *
 * Layout of a fresh 64 KiB-cluster image from tpmvm: 0 header, 1 refcount
 * table, 2 refcount block, 3 L1; the first write puts its L2 table at 4 and
 * its data at 5.
 */
#include <string.h>
#include <unistd.h>

#include "block-test.h"

#define CS 65536

static char *make_image(const char *name)
{
    char *path = bt_path(name);
    BlockDriverState *bs;

    bt_create("qcow2", path, 16 << 20, NULL);
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, CS, 1);
    bt_write_pattern(bs, 2 * CS, CS, 2);
    bdrv_close(bs);
    g_assert_cmphex(bt_read_be64(path, 3 * CS), ==, (1ull << 63) | 4 * CS);
    return path;
}

static BdrvCheckResult run_check(const char *path, BdrvCheckMode fix)
{
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    g_autoptr(GError) err = NULL;
    BdrvCheckResult res;
    BlockDriverState *bs =
        bt_open_opts(opts, BDRV_O_CHECK | (fix ? BDRV_O_RDWR : 0), &err);

    g_assert_no_error(err);
    g_assert_true(bdrv_check(bs, &res, fix, &err));
    g_assert_no_error(err);
    bdrv_close(bs);
    return res;
}

static void set_refcount(const char *path, uint64_t cluster, uint16_t rc)
{
    bt_patch_be16(path, 2 * CS + 2 * cluster, rc);
}

static void test_clean(void)
{
    g_autofree char *path = make_image("clean.qcow2");
    BdrvCheckResult res = run_check(path, BDRV_FIX_NONE);

    g_assert_cmpint(res.corruptions + res.leaks + res.check_errors, ==, 0);
    g_assert_cmpint(res.allocated_clusters, ==, 2);
    g_assert_cmpint(res.total_clusters, ==, 256);
    g_assert_cmpint(res.fragmented_clusters, ==, 0);
    g_assert_cmpint(res.image_end_offset, ==, 7 * CS);
}

static void test_leak(void)
{
    g_autofree char *path = make_image("leak.qcow2");
    BdrvCheckResult res;
    BlockDriverState *bs;

    g_assert_cmpint(truncate(path, 8 * CS), ==, 0);
    set_refcount(path, 7, 1);
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.leaks, ==, 1);
    g_assert_cmpint(res.corruptions, ==, 0);
    res = run_check(path, BDRV_FIX_LEAKS);
    g_assert_cmpint(res.leaks_fixed, ==, 1);
    g_assert_cmpint(res.leaks, ==, 0);
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.leaks + res.corruptions, ==, 0);
    bs = bt_open(path, "qcow2", false);
    bt_check_pattern(bs, 0, CS, 1);
    bdrv_close(bs);
}

static void test_error_rebuilds(void)
{
    g_autofree char *path = make_image("error.qcow2");
    BdrvCheckResult res;
    BlockDriverState *bs;

    set_refcount(path, 5, 0);
    res = run_check(path, BDRV_FIX_NONE);
    /* the refcount and the COPIED flag of the same cluster */
    g_assert_cmpint(res.corruptions, ==, 2);
    res = run_check(path, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.corruptions_fixed, >=, 1);
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.leaks + res.corruptions + res.check_errors, ==, 0);
    bs = bt_open(path, "qcow2", true);
    bt_check_pattern(bs, 0, CS, 1);
    bt_check_pattern(bs, 2 * CS, CS, 2);
    /* New allocations do not land on referenced clusters. */
    bt_write_pattern(bs, 5 * CS, 4 * CS, 3);
    bt_check_pattern(bs, 0, CS, 1);
    bt_check_pattern(bs, 2 * CS, CS, 2);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_copied_flag(void)
{
    g_autofree char *path = make_image("copied.qcow2");
    BdrvCheckResult res;

    bt_patch_be64(path, 3 * CS, 4 * CS); /* L1[0] without COPIED */
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.corruptions, ==, 1);
    res = run_check(path, BDRV_FIX_ERRORS);
    g_assert_cmpint(res.corruptions_fixed, ==, 1);
    g_assert_cmphex(bt_read_be64(path, 3 * CS), ==, (1ull << 63) | 4 * CS);
    /* refcount 2 with COPIED: a leak and a COPIED error */
    set_refcount(path, 4, 2);
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.leaks, ==, 1);
    g_assert_cmpint(res.corruptions, ==, 1);
}

static void test_dirty_repaired_on_open(void)
{
    g_autofree char *path = make_image("dirty.qcow2");
    g_autofree char *before = NULL, *after = NULL;
    g_autoptr(GError) err = NULL;
    BlockDriverInfo bdi;
    BdrvCheckResult res;
    BlockDriverState *bs;

    g_assert_cmpint(truncate(path, 8 * CS), ==, 0);
    set_refcount(path, 7, 1);
    bt_patch_be64(path, 3 * CS, 4 * CS); /* stale COPIED, as after a crash */
    bt_patch_be64(path, 72, 1);          /* dirty */
    before = bt_file_hash(path);
    bs = bt_open(path, "qcow2", false);
    g_assert_true(bdrv_get_info(bs, &bdi, &err));
    g_assert_true(bdi.dirty);
    bt_check_pattern(bs, 0, CS, 1);
    bdrv_close(bs);
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);

    bs = bt_open(path, "qcow2", true);
    g_assert_true(bdrv_get_info(bs, &bdi, &err));
    g_assert_false(bdi.dirty);
    bt_check_pattern(bs, 0, CS, 1);
    bdrv_close(bs);
    g_assert_cmphex(bt_read_be64(path, 72), ==, 0);
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.leaks + res.corruptions, ==, 0);
}

static void test_corrupt_bit(void)
{
    g_autofree char *path = make_image("corrupt.qcow2");
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    g_autoptr(GError) err = NULL;
    BdrvCheckResult res;
    BlockDriverState *bs;

    bt_patch_be64(path, 72, 2);
    g_assert_null(bt_open_opts(opts, BDRV_O_RDWR, &err));
    g_assert_nonnull(strstr(err->message, "Image is corrupt"));
    g_clear_error(&err);
    bs = bt_open(path, "qcow2", false);
    bt_check_pattern(bs, 0, CS, 1);
    bdrv_close(bs);
    /* check -r all on a consistent image drops the bit */
    res = run_check(path, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmphex(bt_read_be64(path, 72), ==, 0);
    bs = bt_open(path, "qcow2", true);
    bdrv_close(bs);
}

static void test_unaligned_entry_marks_corrupt(void)
{
    g_autofree char *path = make_image("unaligned.qcow2");
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    g_autoptr(GError) err = NULL;
    uint8_t buf[512];
    BlockDriverState *bs;

    bt_patch_be64(path, 4 * CS, (1ull << 63) | (5 * CS + 512));
    bs = bt_open(path, "qcow2", true);
    g_assert_false(bdrv_pread(bs, 0, buf, sizeof(buf), &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message, "unaligned"));
    g_clear_error(&err);
    /* The image became read-only and is marked corrupt on disk. */
    g_assert_false(bdrv_pwrite(bs, 2 * CS, buf, sizeof(buf), &err));
    g_clear_error(&err);
    bdrv_close(bs);
    g_assert_cmphex(bt_read_be64(path, 72) & 2, ==, 2);
    g_assert_null(bt_open_opts(opts, BDRV_O_RDWR, &err));
}

static void test_write_over_metadata_prevented(void)
{
    g_autofree char *path = make_image("overlap.qcow2");
    g_autoptr(GError) err = NULL;
    uint8_t buf[512] = {0xee};
    BlockDriverState *bs;

    /* guest cluster 0 claims to live on top of the L1 table */
    bt_patch_be64(path, 4 * CS, (1ull << 63) | (3 * CS));
    bs = bt_open(path, "qcow2", true);
    g_assert_false(bdrv_pwrite(bs, 0, buf, sizeof(buf), &err));
    g_assert_nonnull(strstr(err->message, "Preventing invalid write on metadata"));
    bdrv_close(bs);
    g_assert_cmphex(bt_read_be64(path, 3 * CS), ==, (1ull << 63) | 4 * CS);
    g_assert_cmphex(bt_read_be64(path, 72) & 2, ==, 2);
}

static void test_l2_over_metadata_prevented(void)
{
    g_autofree char *path = make_image("l2overlap.qcow2");
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    /* L1[0] claims its L2 table is the refcount table */
    bt_patch_be64(path, 3 * CS, (1ull << 63) | CS);
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 512, 4); /* modifies "L2" in the cache only */
    g_assert_false(bdrv_flush(bs, &err));
    g_assert_nonnull(strstr(err->message, "overlaps with refcount table"));
    bdrv_close(bs);
    g_assert_cmphex(bt_read_be64(path, CS), ==, 2 * CS);
    g_assert_cmphex(bt_read_be64(path, 72) & 2, ==, 2);
}

static void test_beyond_eof_reported(void)
{
    g_autofree char *path = make_image("eof.qcow2");
    BdrvCheckResult res;

    bt_patch_be64(path, 4 * CS + 8, (1ull << 63) | (100 * CS));
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.corruptions, >=, 1);
}

static void test_snapshot_refcounts_checked(void)
{
    g_autofree char *path = make_image("snap.qcow2");
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo sn = {.name = g_strdup("s"), .icount = -1};
    BdrvCheckResult res;
    BlockDriverState *bs;

    bs = bt_open(path, "qcow2", true);
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    bdrv_close(bs);
    block_snapshot_info_clear(&sn);
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.leaks + res.corruptions, ==, 0);
    /* the shared data cluster drops to 1: an error (the snapshot still uses it) */
    set_refcount(path, 5, 1);
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.corruptions, >=, 1);
    res = run_check(path, BDRV_FIX_ERRORS | BDRV_FIX_LEAKS);
    res = run_check(path, BDRV_FIX_NONE);
    g_assert_cmpint(res.leaks + res.corruptions, ==, 0);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2/check/clean-image-has-no-errors", test_clean);
    g_test_add_func("/qcow2/check/leak-found-and-repaired", test_leak);
    g_test_add_func("/qcow2/check/refcount-error-rebuilds-structure",
                    test_error_rebuilds);
    g_test_add_func("/qcow2/check/copied-flag-errors-found-and-repaired",
                    test_copied_flag);
    g_test_add_func("/qcow2/check/dirty-image-repaired-on-write-open",
                    test_dirty_repaired_on_open);
    g_test_add_func("/qcow2/check/corrupt-bit-refuses-write-open", test_corrupt_bit);
    g_test_add_func("/qcow2/check/unaligned-entry-marks-image-corrupt",
                    test_unaligned_entry_marks_corrupt);
    g_test_add_func("/qcow2/check/write-over-metadata-prevented",
                    test_write_over_metadata_prevented);
    g_test_add_func("/qcow2/check/l2-table-over-metadata-prevented",
                    test_l2_over_metadata_prevented);
    g_test_add_func("/qcow2/check/reference-beyond-eof-reported",
                    test_beyond_eof_reported);
    g_test_add_func("/qcow2/check/snapshot-references-counted",
                    test_snapshot_refcounts_checked);
    ret = g_test_run();
    bt_cleanup();
    return ret;
}
