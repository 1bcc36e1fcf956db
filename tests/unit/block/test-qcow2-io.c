/*
 * qcow2 guest I/O: allocation, copy-on-write of partial clusters, every
 * cluster size and refcount width, table growth, compressed clusters,
 * resize and the vmstate area, checked against an in-memory model.
 */
#include <string.h>

#include "block-test.h"

static void test_allocate_read_back(void)
{
    g_autofree char *path = bt_path("alloc.qcow2");
    BlockDriverState *bs;

    bt_create("qcow2", path, 64 << 20, NULL);
    bs = bt_open(path, "qcow2", true);
    g_assert_cmpint(bdrv_getlength(bs), ==, 64 << 20);
    bt_check_pattern(bs, 0, 1 << 20, 0);
    bt_write_pattern(bs, 0, 65536, 1);
    bt_write_pattern(bs, 1 << 20, 4096, 2);
    bt_write_pattern(bs, (10 << 20) + 123, 70000, 3);
    bt_write_pattern(bs, (64 << 20) - 513, 513, 4);
    bdrv_close(bs);

    bs = bt_open(path, "qcow2", false);
    bt_check_pattern(bs, 0, 65536, 1);
    bt_check_pattern(bs, 65536, (1 << 20) - 65536, 0);
    bt_check_pattern(bs, 1 << 20, 4096, 2);
    bt_check_pattern(bs, (10 << 20) + 123, 70000, 3);
    bt_check_pattern(bs, (10 << 20), 123, 0);
    bt_check_pattern(bs, (64 << 20) - 513, 513, 4);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_partial_write_keeps_rest(void)
{
    g_autofree char *path = bt_path("partial.qcow2");
    BlockDriverState *bs;

    bt_create("qcow2", path, 4 << 20, "cluster_size=4096");
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 3 * 4096, 7);
    /* overwrite the middle of each cluster in place */
    bt_write_pattern(bs, 100, 200, 8);
    bt_write_pattern(bs, 4096 + 4000, 200, 9);
    bt_check_pattern(bs, 0, 100, 7);
    bt_check_pattern(bs, 100, 200, 8);
    bt_check_pattern(bs, 300, 4096 + 4000 - 300, 7);
    bt_check_pattern(bs, 4096 + 4000, 200, 9);
    bt_check_pattern(bs, 4096 + 4200, 2 * 4096 - 4200, 7);
    /* a new cluster written partially reads zeros around the data */
    bt_write_pattern(bs, 10 * 4096 + 1000, 10, 10);
    bt_check_pattern(bs, 10 * 4096, 1000, 0);
    bt_check_pattern(bs, 10 * 4096 + 1010, 4096 - 1010, 0);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

/* Random writes against a model, reopening now and then. */
static void run_model(const char *name, const char *opts, uint64_t size, int ops,
                      uint64_t max_len, uint32_t seed)
{
    g_autofree char *path = bt_path(name);
    g_autofree uint8_t *model = g_malloc0(size);
    g_autofree uint8_t *buf = g_malloc(max_len);
    GRand *rng = g_rand_new_with_seed(seed);
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    bt_create("qcow2", path, size, opts);
    bs = bt_open(path, "qcow2", true);
    for (int i = 0; i < ops; i++) {
        uint64_t len = g_rand_int_range(rng, 1, max_len);
        uint64_t off = (uint64_t)g_rand_double_range(rng, 0, size - len);
        if (g_rand_boolean(rng)) {
            off &= ~511ull;
        }
        if (g_rand_int_range(rng, 0, 3) == 0) {
            g_assert_true(bdrv_pread(bs, off, buf, len, &err));
            g_assert_no_error(err);
            g_assert_true(memcmp(buf, model + off, len) == 0);
            continue;
        }
        bt_fill(buf, off, len, i + 1);
        memcpy(model + off, buf, len);
        g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
        g_assert_no_error(err);
        if (i % (ops / 4 + 1) == ops / 8) {
            g_assert_true(bdrv_flush(bs, &err));
            bdrv_close(bs);
            bs = bt_open(path, "qcow2", true);
        }
    }
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", false);
    for (uint64_t off = 0; off < size; off += max_len) {
        uint64_t len = MIN(max_len, size - off);
        g_assert_true(bdrv_pread(bs, off, buf, len, &err));
        g_assert_true(memcmp(buf, model + off, len) == 0);
    }
    bt_assert_clean(bs);
    bdrv_close(bs);
    g_rand_free(rng);
    g_unlink(path);
}

static void test_cluster_sizes(void)
{
    static const char *const sizes[] = {"512", "1024", "4096", "65536", "2M"};

    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_autofree char *opts = g_strdup_printf("cluster_size=%s", sizes[i]);
        run_model("cs.qcow2", opts, 8 << 20, 150, 100000, i + 1);
    }
}

static void test_refcount_widths(void)
{
    for (int bits = 1; bits <= 64; bits *= 2) {
        g_autofree char *opts =
            g_strdup_printf("cluster_size=512,refcount_bits=%d", bits);
        run_model("rc.qcow2", opts, 2 << 20, 80, 20000, bits);
    }
}

static void test_reftable_grows(void)
{
    g_autofree char *path = bt_path("grow.qcow2");
    BlockDriverState *bs;

    /* 64-bit refcounts in 512-byte clusters: one block covers 32 KiB. */
    bt_create("qcow2", path, 8 << 20, "cluster_size=512,refcount_bits=64");
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 6 << 20, 5);
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", false);
    bt_check_pattern(bs, 0, 6 << 20, 5);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_v2_image(void)
{
    run_model("v2.qcow2", "compat=0.10", 4 << 20, 60, 70000, 77);
}

static void test_vmstate_beyond_disk(void)
{
    g_autofree char *path = bt_path("vmstate.qcow2");
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *buf = g_malloc(300000), *back = g_malloc(300000);
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, "cluster_size=4096");
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 1 << 20, 3);
    bt_fill(buf, 0, 300000, 4);
    g_assert_true(bdrv_save_vmstate(bs, buf, 0, 1000, &err));
    g_assert_true(bdrv_save_vmstate(bs, buf + 1000, 1000, 299000, &err));
    g_assert_no_error(err);
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", false);
    g_assert_true(bdrv_load_vmstate(bs, back, 0, 300000, &err));
    g_assert_no_error(err);
    g_assert_true(memcmp(buf, back, 300000) == 0);
    bt_check_pattern(bs, 0, 1 << 20, 3);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_resize_grow(void)
{
    g_autofree char *path = bt_path("resize.qcow2");
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, "cluster_size=512");
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 1 << 20, 6);
    g_assert_true(bdrv_truncate(bs, 40 << 20, &err));
    g_assert_no_error(err);
    g_assert_false(bdrv_truncate(bs, 1 << 20, &err));
    g_assert_nonnull(strstr(err->message, "Shrinking"));
    bt_write_pattern(bs, 39 << 20, 1 << 20, 7);
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", false);
    g_assert_cmpint(bdrv_getlength(bs), ==, 40 << 20);
    bt_check_pattern(bs, 0, 1 << 20, 6);
    bt_check_pattern(bs, 1 << 20, 38 << 20, 0);
    bt_check_pattern(bs, 39 << 20, 1 << 20, 7);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_compressed_write_read(void)
{
    g_autofree char *path = bt_path("comp.qcow2");
    g_autofree uint8_t *buf = g_malloc(65536);
    g_autoptr(GError) err = NULL;
    BdrvCheckResult res;
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, NULL);
    bs = bt_open(path, "qcow2", true);
    for (int c = 0; c < 8; c++) {
        for (int i = 0; i < 65536; i++) {
            buf[i] = (i / (c + 5)) & 0x0f; /* compressible */
        }
        if (c == 3) {
            bt_fill(buf, 0, 65536, 99); /* incompressible: stored normally */
        }
        g_assert_true(bdrv_write_compressed(bs, c * 65536, buf, 65536, &err));
        g_assert_no_error(err);
    }
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", true);
    for (int c = 0; c < 8; c++) {
        g_autofree uint8_t *back = g_malloc(65536);
        for (int i = 0; i < 65536; i++) {
            buf[i] = (i / (c + 5)) & 0x0f;
        }
        if (c == 3) {
            bt_fill(buf, 0, 65536, 99);
        }
        g_assert_true(bdrv_pread(bs, c * 65536, back, 65536, &err));
        g_assert_true(memcmp(buf, back, 65536) == 0);
    }
    g_assert_true(bdrv_check(bs, &res, BDRV_FIX_NONE, &err));
    g_assert_cmpint(res.compressed_clusters, ==, 7);
    g_assert_cmpint(res.corruptions + res.leaks, ==, 0);
    /* overwriting part of a compressed cluster decompresses it (COW) */
    bt_write_pattern(bs, 2 * 65536 + 10, 100, 5);
    bt_check_pattern(bs, 2 * 65536 + 10, 100, 5);
    g_assert_true(bdrv_pread(bs, 2 * 65536, buf, 10, &err));
    g_assert_cmpint(buf[9], ==, (9 / 7) & 0x0f);
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", false);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_cache_none_unaligned(void)
{
    g_autofree char *path = bt_path("direct.qcow2");
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s", path);
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    bt_create("qcow2", path, 4 << 20, "cluster_size=1024");
    bs = bt_open_opts(opts, BDRV_O_RDWR | BDRV_O_NOCACHE, &err);
    g_assert_no_error(err);
    bt_write_pattern(bs, 7, 10000, 3);
    bt_write_pattern(bs, 3 << 20, 333, 4);
    bt_check_pattern(bs, 7, 10000, 3);
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", false);
    bt_check_pattern(bs, 0, 7, 0);
    bt_check_pattern(bs, 7, 10000, 3);
    bt_check_pattern(bs, 3 << 20, 333, 4);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_read_only_refuses_write(void)
{
    g_autofree char *path = bt_path("ro.qcow2");
    g_autoptr(GError) err = NULL;
    g_autofree char *before = NULL, *after = NULL;
    uint8_t b = 1;
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, NULL);
    before = bt_file_hash(path);
    bs = bt_open(path, "qcow2", false);
    g_assert_false(bdrv_pwrite(bs, 0, &b, 1, &err));
    g_assert_error(err, TPMVM_ERROR, TPMVM_ERROR_PERMISSION);
    bdrv_close(bs);
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);
}

static void test_write_beyond_end_fails(void)
{
    g_autofree char *path = bt_path("end.qcow2");
    g_autoptr(GError) err = NULL;
    uint8_t b[2] = {1, 2};
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, NULL);
    bs = bt_open(path, "qcow2", true);
    g_assert_false(bdrv_pwrite(bs, (1 << 20) - 1, b, 2, &err));
    g_assert_nonnull(strstr(err->message, "beyond the end"));
    g_clear_error(&err);
    g_assert_false(bdrv_pread(bs, UINT64_MAX - 1, b, 2, &err));
    bdrv_close(bs);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2/io/allocate-and-read-back", test_allocate_read_back);
    g_test_add_func("/qcow2/io/partial-write-keeps-rest-of-cluster",
                    test_partial_write_keeps_rest);
    g_test_add_func("/qcow2/io/cluster-sizes-512-to-2M-match-model", test_cluster_sizes);
    g_test_add_func("/qcow2/io/refcount-widths-1-to-64-match-model",
                    test_refcount_widths);
    g_test_add_func("/qcow2/io/refcount-table-grows", test_reftable_grows);
    g_test_add_func("/qcow2/io/v2-image-matches-model", test_v2_image);
    g_test_add_func("/qcow2/io/vmstate-beyond-disk-round-trips",
                    test_vmstate_beyond_disk);
    g_test_add_func("/qcow2/io/resize-grows-and-refuses-shrink", test_resize_grow);
    g_test_add_func("/qcow2/io/compressed-clusters-read-back",
                    test_compressed_write_read);
    g_test_add_func("/qcow2/io/cache-none-unaligned-requests", test_cache_none_unaligned);
    g_test_add_func("/qcow2/io/read-only-refuses-writes", test_read_only_refuses_write);
    g_test_add_func("/qcow2/io/access-beyond-end-fails", test_write_beyond_end_fails);
    ret = g_test_run();
    bt_cleanup();
    return ret;
}
