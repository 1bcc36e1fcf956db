/*
 * Block layer core: -drive and -blockdev option strings, the drive
 * registry and claims, cache modes, format probing, raw images, the file
 * protocol (O_DIRECT bounce buffers, image locks between two opens).
 */
#include <string.h>

#include "block-test.h"

static void test_drive_qcow2(void)
{
    g_autofree char *path = bt_path("drive.qcow2");
    g_autofree char *str = NULL;
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, NULL);
    str = g_strdup_printf("if=none,id=d0,file=%s,format=qcow2,cache=writeback", path);
    bs = drive_new_from_string(str, &err);
    g_assert_no_error(err);
    g_assert_true(drive_find("d0") == bs);
    g_assert_cmpstr(bdrv_get_id(bs), ==, "d0");
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "qcow2");
    g_assert_cmpstr(bdrv_get_filename(bs), ==, path);
    g_assert_false(bdrv_is_read_only(bs));
    g_assert_false(bdrv_is_encrypted(bs));
    g_assert_true(bdrv_can_snapshot(bs));
    g_assert_cmpint(bdrv_getlength(bs), ==, 1 << 20);
    bt_write_pattern(bs, 10, 1000, 3);
    g_assert_true(bdrv_flush(bs, &err));
    g_assert_true(drive_claim(bs, "tpm0", &err));
    g_assert_false(drive_claim(bs, "tpm1", &err));
    g_assert_nonnull(strstr(err->message, "'d0' is already in use by 'tpm0'"));
    g_clear_error(&err);
    /* duplicate id */
    g_assert_null(drive_new_from_string(str, &err));
    g_assert_nonnull(strstr(err->message, "Duplicate ID 'd0'"));
    drive_close_all();
    g_assert_null(drive_find("d0"));
    bs = bt_open(path, "qcow2", false);
    bt_check_pattern(bs, 10, 1000, 3);
    bdrv_close(bs);
}

static void test_drive_options(void)
{
    g_autofree char *path = bt_path("opts.qcow2");
    static const char *const caches[] = {"none", "directsync", "writethrough", "unsafe",
                                         "writeback"};
    g_autoptr(GError) err = NULL;

    bt_create("qcow2", path, 1 << 20, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(caches); i++) {
        g_autofree char *s =
            g_strdup_printf("if=none,id=c%zu,file=%s,format=qcow2,cache=%s,"
                            "file.locking=off",
                            i, path, caches[i]);
        BlockDriverState *bs = drive_new_from_string(s, &err);
        g_assert_no_error(err);
        bt_write_pattern(bs, 4096 * i + 1, 3000, i + 1);
        bt_check_pattern(bs, 4096 * i + 1, 3000, i + 1);
        drive_close_all();
    }
    {
        g_autofree char *s =
            g_strdup_printf("if=none,id=ro,file=%s,format=qcow2,readonly=on", path);
        BlockDriverState *bs = drive_new_from_string(s, &err);
        uint8_t b = 0;
        g_assert_no_error(err);
        g_assert_true(bdrv_is_read_only(bs));
        g_assert_false(bdrv_can_snapshot(bs));
        g_assert_false(bdrv_pwrite(bs, 0, &b, 1, &err));
        g_clear_error(&err);
        drive_close_all();
    }
    {
        static const char *const bad[] = {
            "if=ide,id=x,file=%s",
            "id=x,file=%s,cache=bogus",
            "id=x,file=%s,format=vmdk",
            "id=x,file=%s,format=qcow2,nosuch=1",
            "id=x,file=%s,format=qcow2,readonly=maybe",
            "id=x,format=qcow2",
            "id=x,file=%s,format=qcow2,file.locking=sometimes",
        };
        static const char *const want[] = {
            "if=ide is not supported", "Invalid cache option 'bogus'",
            "Unknown driver 'vmdk'",   "Invalid parameter 'nosuch'",
            "expects 'on' or 'off'",   "'file' is missing",
            "locking=sometimes",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
            g_autofree char *s = g_strdup_printf(bad[i], path);
            g_assert_null(drive_new_from_string(s, &err));
            if (!strstr(err->message, want[i])) {
                g_error("'%s': '%s' lacks '%s'", s, err->message, want[i]);
            }
            g_clear_error(&err);
        }
    }
}

static void test_blockdev(void)
{
    g_autofree char *path = bt_path("bd.qcow2");
    g_autofree char *s1 = NULL, *s2 = NULL;
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs, *proto;

    bt_secret("bdsec", "blockdev pass");
    bt_create_luks(path, 1 << 20, "bdsec", NULL);
    s1 = g_strdup_printf("driver=qcow2,node-name=n0,file.driver=file,file.filename=%s,"
                         "encrypt.key-secret=bdsec,cache.direct=on",
                         path);
    bs = blockdev_new_from_string(s1, &err);
    g_assert_no_error(err);
    g_assert_true(drive_find("n0") == bs);
    g_assert_true(bdrv_is_encrypted(bs));
    bt_write_pattern(bs, 100, 5000, 8);
    bt_check_pattern(bs, 100, 5000, 8);
    drive_close_all();

    /* a protocol node and a format node that refers to it */
    s1 = (g_free(s1), g_strdup_printf("driver=file,node-name=proto,filename=%s", path));
    proto = blockdev_new_from_string(s1, &err);
    g_assert_no_error(err);
    s2 =
        g_strdup_printf("driver=qcow2,node-name=fmt,file=proto,encrypt.key-secret=bdsec");
    bs = blockdev_new_from_string(s2, &err);
    g_assert_no_error(err);
    g_assert_true(proto != bs);
    bt_check_pattern(bs, 100, 5000, 8);
    g_assert_null(blockdev_new_from_string(s2, &err));
    g_assert_nonnull(strstr(err->message, "node-name='fmt'"));
    g_clear_error(&err);
    g_assert_null(
        blockdev_new_from_string("driver=qcow2,file=nothere,node-name=z", &err));
    g_assert_nonnull(strstr(err->message, "nothere"));
    g_clear_error(&err);
    g_assert_null(blockdev_new_from_string("node-name=q,file.filename=x", &err));
    g_assert_nonnull(strstr(err->message, "'driver' is missing"));
    g_clear_error(&err);
    drive_close_all();
}

static void test_probe_and_raw(void)
{
    g_autofree char *qpath = bt_path("probe.qcow2");
    g_autofree char *rpath = bt_path("probe.raw");
    g_autofree char *s = NULL;
    g_autoptr(GError) err = NULL;
    uint8_t magic[8] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
    BlockDriverState *bs;

    bt_create("qcow2", qpath, 1 << 20, NULL);
    bt_create("raw", rpath, 1 << 20, NULL);
    s = g_strdup_printf("if=none,id=p1,file=%s", qpath);
    bs = drive_new_from_string(s, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "qcow2");
    g_free(s);
    s = g_strdup_printf("if=none,id=p2,file=%s", rpath);
    bs = drive_new_from_string(s, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(bdrv_get_format_name(bs), ==, "raw");
    /* a probed raw image may not become something else through block 0 */
    g_assert_false(bdrv_pwrite(bs, 0, magic, 8, &err));
    g_assert_nonnull(strstr(err->message, "block 0"));
    g_clear_error(&err);
    bt_write_pattern(bs, 0, 512, 4);
    bt_write_pattern(bs, (1 << 20) - 100, 100, 5);
    g_assert_false(bdrv_pwrite(bs, 1 << 20, magic, 1, &err));
    g_clear_error(&err);
    g_assert_false(
        bdrv_snapshot_create(bs, &(BlockSnapshotInfo){.name = (char *)"x"}, &err));
    g_clear_error(&err);
    drive_close_all();
    bs = bt_open(rpath, "raw", true);
    g_assert_true(bdrv_pwrite(bs, 0, magic, 8, &err)); /* explicit raw: allowed */
    bt_check_pattern(bs, (1 << 20) - 100, 100, 5);
    g_assert_true(bdrv_truncate(bs, 2 << 20, &err));
    g_assert_cmpint(bdrv_getlength(bs), ==, 2 << 20);
    bdrv_close(bs);
}

static void test_locks_between_opens(void)
{
    g_autofree char *path = bt_path("lock.qcow2");
    g_autofree char *opts = NULL;
    g_autoptr(GError) err = NULL;
    BlockDriverState *a, *b;

    bt_create("qcow2", path, 1 << 20, NULL);
    opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    a = bt_open_opts(opts, BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    b = bt_open_opts(opts, BDRV_O_RDWR, &err);
    g_assert_null(b);
    g_assert_nonnull(strstr(err->message, "Failed to get \"write\" lock"));
    g_assert_nonnull(strstr(err->message, path));
    g_clear_error(&err);
    b = bt_open_opts(opts, 0, &err);
    g_assert_null(b);
    g_assert_nonnull(strstr(err->message, "Failed to get shared \"write\" lock"));
    g_clear_error(&err);
    bdrv_close(a);
    /* two readers are fine */
    a = bt_open_opts(opts, 0, &err);
    b = bt_open_opts(opts, 0, &err);
    g_assert_no_error(err);
    bdrv_close(a);
    bdrv_close(b);
}

static void test_file_missing(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *path = bt_path("missing.qcow2");
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);

    g_assert_null(bt_open_opts(opts, 0, &err));
    g_assert_nonnull(strstr(err->message, "No such file or directory"));
    g_assert_nonnull(strstr(err->message, path));
}

static void test_direct_bounce(void)
{
    g_autofree char *path = bt_path("direct.raw");
    g_autofree char *opts = g_strdup_printf("driver=raw,file.filename=%s", path);
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    bt_create("raw", path, 16 << 20, NULL);
    bs = bt_open_opts(opts, BDRV_O_RDWR | BDRV_O_NOCACHE, &err);
    g_assert_no_error(err);
    bt_write_pattern(bs, (1 << 20) + 3, 9 << 20, 7); /* several bounce buffers */
    bt_check_pattern(bs, (1 << 20) + 3, 9 << 20, 7);
    bt_check_pattern(bs, 1 << 20, 3, 0);
    bt_write_pattern(bs, 4095, 2, 1);
    bt_write_pattern(bs, 8192, 4096, 2);
    bt_write_pattern(bs, 13, 9000, 3);
    bt_check_pattern(bs, 0, 13, 0);
    bt_check_pattern(bs, 13, 9000, 3);
    bt_check_pattern(bs, 9013, 8192 + 4096 - 9013, 2);
    bdrv_close(bs);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/block/drive/qcow2-registered-found-and-claimed", test_drive_qcow2);
    g_test_add_func("/block/drive/cache-modes-and-bad-options", test_drive_options);
    g_test_add_func("/block/blockdev/nodes-with-children-and-references", test_blockdev);
    g_test_add_func("/block/probe/format-guessed-raw-block-0-protected",
                    test_probe_and_raw);
    g_test_add_func("/block/file/second-writer-refused-by-lock",
                    test_locks_between_opens);
    g_test_add_func("/block/file/missing-file-named-in-error", test_file_missing);
    g_test_add_func("/block/file/direct-io-unaligned-requests", test_direct_bounce);
    ret = g_test_run();
    bt_cleanup();
    return ret;
}
