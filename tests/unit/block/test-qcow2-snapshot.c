/*
 * qcow2 internal snapshots: create, apply (goto), delete and list, ids,
 * the vmstate area captured by a snapshot (and read without reverting),
 * the two-step revert (prepare, then commit or abort), disk size, refcount
 * overflow, and a random sequence of operations checked against models.
 */
#include <string.h>

#include "block-test.h"

static bool snap(BlockDriverState *bs, const char *name, uint64_t vm_state_size,
                 char **id_out, GError **errp)
{
    BlockSnapshotInfo sn = {0};
    bool ok;

    sn.name = g_strdup(name);
    sn.vm_state_size = vm_state_size;
    sn.date_sec = 1700000000;
    sn.vm_clock_nsec = 1234567890123ull;
    sn.icount = -1;
    ok = bdrv_snapshot_create(bs, &sn, errp);
    if (ok && id_out) {
        *id_out = g_strdup(sn.id_str);
    }
    block_snapshot_info_clear(&sn);
    return ok;
}

static void test_apply_restores_data(void)
{
    g_autofree char *path = bt_path("apply.qcow2");
    g_autoptr(GError) err = NULL;
    g_autofree char *id = NULL;
    BlockSnapshotInfo *list;
    BlockDriverState *bs;
    int n;

    bt_create("qcow2", path, 8 << 20, NULL);
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 2 << 20, 1);
    g_assert_true(snap(bs, "s1", 0, &id, &err));
    g_assert_no_error(err);
    g_assert_cmpstr(id, ==, "1");
    bt_assert_clean(bs);
    bt_write_pattern(bs, 4096, 100000, 2);
    bt_write_pattern(bs, 5 << 20, 4096, 3);
    bt_check_pattern(bs, 4096, 100000, 2);
    g_assert_true(bdrv_snapshot_goto(bs, "s1", &err));
    g_assert_no_error(err);
    bt_check_pattern(bs, 0, 2 << 20, 1);
    bt_check_pattern(bs, 5 << 20, 4096, 0);
    bt_assert_clean(bs);
    bdrv_close(bs);

    bs = bt_open(path, "qcow2", true);
    n = bdrv_snapshot_list(bs, &list);
    g_assert_cmpint(n, ==, 1);
    g_assert_cmpstr(list[0].id_str, ==, "1");
    g_assert_cmpstr(list[0].name, ==, "s1");
    g_assert_cmpint(list[0].date_sec, ==, 1700000000);
    g_assert_cmpint(list[0].vm_clock_nsec, ==, 1234567890123ull);
    g_assert_cmpint(list[0].icount, ==, -1);
    g_assert_cmpint(list[0].disk_size, ==, 8 << 20);
    block_snapshot_info_clear(&list[0]);
    g_free(list);
    g_assert_true(bdrv_snapshot_delete(bs, NULL, "s1", &err));
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_snapshot_list(bs, &list), ==, 0);
    g_free(list);
    bt_check_pattern(bs, 0, 2 << 20, 1);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_ids(void)
{
    g_autofree char *path = bt_path("ids.qcow2");
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo found;
    BlockDriverState *bs;
    char *id = NULL;

    bt_create("qcow2", path, 1 << 20, NULL);
    bs = bt_open(path, "qcow2", true);
    for (int i = 0; i < 3; i++) {
        g_assert_true(snap(bs, "same", 0, NULL, &err));
    }
    g_assert_true(bdrv_snapshot_delete(bs, "2", NULL, &err));
    g_assert_true(snap(bs, "x", 0, &id, &err));
    g_assert_cmpstr(id, ==, "4");
    g_free(id);
    g_assert_true(bdrv_snapshot_delete(bs, "4", NULL, &err));
    g_assert_true(bdrv_snapshot_delete(bs, "3", NULL, &err));
    g_assert_true(snap(bs, "y", 0, &id, &err));
    g_assert_cmpstr(id, ==, "2");
    g_free(id);
    /* goto: an id match wins over a name match */
    g_assert_true(bdrv_snapshot_find(bs, "1", &found));
    g_assert_cmpstr(found.name, ==, "same");
    block_snapshot_info_clear(&found);
    g_assert_false(bdrv_snapshot_delete(bs, NULL, "nothere", &err));
    g_assert_nonnull(strstr(err->message, "snapshot not found"));
    g_clear_error(&err);
    g_assert_false(bdrv_snapshot_goto(bs, "nothere", &err));
    g_clear_error(&err);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_vmstate_captured(void)
{
    g_autofree char *path = bt_path("vmstate.qcow2");
    g_autofree uint8_t *a = g_malloc(300001), *b = g_malloc(300001);
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo found;
    BlockDriverState *bs;

    bt_create("qcow2", path, 2 << 20, "cluster_size=4096");
    bs = bt_open(path, "qcow2", true);
    bt_fill(a, 0, 300001, 1);
    g_assert_true(bdrv_save_vmstate(bs, a, 0, 300001, &err));
    g_assert_true(snap(bs, "vm1", 300001, NULL, &err));
    g_assert_no_error(err);
    g_assert_true(bdrv_snapshot_find(bs, "vm1", &found));
    g_assert_cmpint(found.vm_state_size, ==, 300001);
    block_snapshot_info_clear(&found);
    /* The active vmstate range was discarded after the snapshot. */
    g_assert_true(bdrv_load_vmstate(bs, b, 0, 300001, &err));
    for (int i = 0; i < 300001; i++) {
        g_assert_cmpint(b[i], ==, 0);
    }
    bt_fill(b, 0, 300001, 2);
    g_assert_true(bdrv_save_vmstate(bs, b, 0, 300001, &err));
    g_assert_true(snap(bs, "vm2", 300001, NULL, &err));
    g_assert_true(bdrv_snapshot_goto(bs, "vm1", &err));
    g_assert_true(bdrv_load_vmstate(bs, b, 0, 300001, &err));
    g_assert_true(memcmp(a, b, 300001) == 0);
    g_assert_true(bdrv_snapshot_goto(bs, "vm2", &err));
    g_assert_true(bdrv_load_vmstate(bs, a, 0, 300001, &err));
    bt_fill(b, 0, 300001, 2);
    g_assert_true(memcmp(a, b, 300001) == 0);
    g_assert_no_error(err);
    bt_assert_clean(bs);
    g_assert_true(bdrv_snapshot_delete(bs, NULL, "vm1", &err));
    g_assert_true(bdrv_snapshot_delete(bs, NULL, "vm2", &err));
    bt_assert_clean(bs);
    bdrv_close(bs);
}

/* A snapshot's vmstate is read in place; the active image does not change. */
static void test_vmstate_read_without_revert(void)
{
    g_autofree char *path = bt_path("vmread.qcow2");
    g_autofree uint8_t *a = g_malloc(70000), *b = g_malloc(70000);
    g_autoptr(GError) err = NULL;
    g_autofree char *id = NULL;
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, "cluster_size=4096");
    bs = bt_open(path, "qcow2", true);
    bt_fill(a, 0, 70000, 7);
    g_assert_true(bdrv_save_vmstate(bs, a, 0, 70000, &err));
    g_assert_true(snap(bs, "vm", 70000, &id, &err));
    bt_write_pattern(bs, 0, 1 << 20, 8);
    g_assert_true(bdrv_snapshot_load_vmstate(bs, id, b, 0, 70000, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(a, 70000, b, 70000);
    g_assert_true(bdrv_snapshot_load_vmstate(bs, id, b, 1000, 5000, &err));
    g_assert_cmpmem(a + 1000, 5000, b, 5000);
    bt_check_pattern(bs, 0, 1 << 20, 8);
    g_assert_false(bdrv_snapshot_load_vmstate(bs, "99", b, 0, 1, &err));
    g_assert_nonnull(strstr(err->message, "Can't find snapshot '99'"));
    g_clear_error(&err);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

/*
 * prepare puts the snapshot in place but keeps the old contents: abort brings
 * them back (writes made in between are dropped), commit lets them go, and
 * other snapshot operations wait. The image is clean after each step.
 */
static void test_two_step_revert(void)
{
    g_autofree char *path = bt_path("twostep.qcow2");
    g_autoptr(GError) err = NULL;
    g_autofree char *id = NULL;
    BlockDriverState *bs;

    bt_create("qcow2", path, 4 << 20, "cluster_size=4096");
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 4 << 20, 1);
    g_assert_true(snap(bs, "a", 0, &id, &err));
    bt_write_pattern(bs, 0, 2 << 20, 2);

    g_assert_true(bdrv_snapshot_goto_prepare(bs, id, &err));
    g_assert_no_error(err);
    bt_check_pattern(bs, 0, 4 << 20, 1);
    bt_write_pattern(bs, 1 << 20, 4096, 3); /* made while pending */
    g_assert_false(snap(bs, "b", 0, NULL, &err));
    g_assert_nonnull(strstr(err->message, "still pending"));
    g_clear_error(&err);
    g_assert_false(bdrv_snapshot_goto_prepare(bs, id, &err));
    g_clear_error(&err);
    g_assert_true(bdrv_snapshot_goto_abort(bs, &err));
    g_assert_no_error(err);
    bt_check_pattern(bs, 0, 2 << 20, 2);
    bt_check_pattern(bs, 2 << 20, 2 << 20, 1);
    bt_assert_clean(bs);
    g_assert_false(bdrv_snapshot_goto_commit(bs, &err));
    g_assert_nonnull(strstr(err->message, "No snapshot revert"));
    g_clear_error(&err);

    g_assert_true(bdrv_snapshot_goto_prepare(bs, id, &err));
    bt_write_pattern(bs, 1 << 20, 4096, 4);
    g_assert_true(bdrv_snapshot_goto_commit(bs, &err));
    g_assert_no_error(err);
    bt_check_pattern(bs, 0, 1 << 20, 1);
    bt_check_pattern(bs, 1 << 20, 4096, 4);
    bt_assert_clean(bs);

    /* Closing with a revert pending commits it. */
    g_assert_true(bdrv_snapshot_goto_prepare(bs, id, &err));
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", true);
    bt_check_pattern(bs, 0, 4 << 20, 1);
    bt_assert_clean(bs);
    g_assert_true(bdrv_snapshot_delete(bs, id, NULL, &err));
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_goto_restores_size(void)
{
    g_autofree char *path = bt_path("size.qcow2");
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, "cluster_size=512");
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 1 << 20, 4);
    g_assert_true(snap(bs, "small", 0, NULL, &err));
    g_assert_true(bdrv_truncate(bs, 8 << 20, &err));
    bt_write_pattern(bs, 7 << 20, 1 << 20, 5);
    g_assert_true(snap(bs, "big", 0, NULL, &err));
    g_assert_true(bdrv_snapshot_goto(bs, "small", &err));
    g_assert_no_error(err);
    g_assert_cmpint(bdrv_getlength(bs), ==, 1 << 20);
    bt_check_pattern(bs, 0, 1 << 20, 4);
    bt_assert_clean(bs);
    g_assert_true(bdrv_snapshot_goto(bs, "big", &err));
    g_assert_cmpint(bdrv_getlength(bs), ==, 8 << 20);
    bt_check_pattern(bs, 7 << 20, 1 << 20, 5);
    bdrv_close(bs);
    bs = bt_open(path, "qcow2", false);
    g_assert_cmpint(bdrv_getlength(bs), ==, 8 << 20);
    bt_assert_clean(bs);
    bdrv_close(bs);
}

static void test_refcount_overflow_refused(void)
{
    g_autofree char *path = bt_path("rc1.qcow2");
    g_autofree char *before = NULL, *after = NULL;
    g_autoptr(GError) err = NULL;
    BlockDriverInfo bdi;
    BlockDriverState *bs;

    bt_create("qcow2", path, 1 << 20, "refcount_bits=1");
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 65536, 1);
    g_assert_true(bdrv_flush(bs, &err));
    g_assert_false(snap(bs, "s", 0, NULL, &err));
    g_assert_nonnull(strstr(err->message, "refcount_bits=1"));
    g_clear_error(&err);
    g_assert_true(bdrv_get_info(bs, &bdi, &err));
    g_assert_false(bdi.dirty);
    g_assert_false(bdrv_snapshot_goto(bs, "nothere", &err));
    g_clear_error(&err);
    bt_check_pattern(bs, 0, 65536, 1);
    bt_assert_clean(bs);
    bdrv_close(bs);
    before = bt_file_hash(path);
    bs = bt_open(path, "qcow2", false);
    bdrv_close(bs);
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);
}

/* Random writes, snapshot creates, applies and deletes against models. */
static void run_random(const char *opts, uint32_t seed, const char *secret)
{
    g_autofree char *path = bt_path("random.qcow2");
    const uint64_t size = 1 << 20;
    g_autofree uint8_t *model = g_malloc0(size);
    g_autofree uint8_t *buf = g_malloc(size);
    GHashTable *snaps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GRand *rng = g_rand_new_with_seed(seed);
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;
    int next = 0;

    bt_create("qcow2", path, size, opts);
    bs = secret ? bt_open_luks(path, secret, true) : bt_open(path, "qcow2", true);
    for (int i = 0; i < 120; i++) {
        int op = g_rand_int_range(rng, 0, 10);
        if (op < 6) {
            uint64_t len = g_rand_int_range(rng, 1, 20000);
            uint64_t off = g_rand_int_range(rng, 0, size - len);
            bt_fill(buf, off, len, i + 1);
            memcpy(model + off, buf, len);
            g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
        } else if (op < 8 || g_hash_table_size(snaps) == 0) {
            g_autofree char *name = g_strdup_printf("s%d", next++);
            if (snap(bs, name, 0, NULL, &err)) {
                g_hash_table_insert(snaps, g_strdup(name), g_memdup2(model, size));
            } else {
                /* Narrow refcounts run out: refused, nothing changed. */
                g_assert_nonnull(strstr(err->message, "would exceed"));
                g_clear_error(&err);
                bt_assert_clean(bs);
            }
        } else {
            GList *keys = g_hash_table_get_keys(snaps);
            const char *name =
                g_list_nth_data(keys, g_rand_int_range(rng, 0, g_list_length(keys)));
            if (op == 8) {
                if (bdrv_snapshot_goto(bs, name, &err)) {
                    memcpy(model, g_hash_table_lookup(snaps, name), size);
                } else {
                    /* +1 on the snapshot's tree before the old one drops. */
                    g_assert_nonnull(strstr(err->message, "would exceed"));
                    g_clear_error(&err);
                    bt_assert_clean(bs);
                }
            } else {
                g_assert_true(bdrv_snapshot_delete(bs, NULL, name, &err));
                g_hash_table_remove(snaps, name);
            }
            g_list_free(keys);
        }
        g_assert_no_error(err);
        if (i % 20 == 19) {
            g_assert_true(bdrv_pread(bs, 0, buf, size, &err));
            g_assert_true(memcmp(buf, model, size) == 0);
            bt_assert_clean(bs);
        }
    }
    bdrv_close(bs);
    bs = secret ? bt_open_luks(path, secret, true) : bt_open(path, "qcow2", true);
    {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, snaps);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            if (!bdrv_snapshot_goto(bs, k, &err)) {
                g_assert_nonnull(strstr(err->message, "would exceed"));
                g_clear_error(&err);
                continue;
            }
            g_assert_true(bdrv_pread(bs, 0, buf, size, &err));
            g_assert_true(memcmp(buf, v, size) == 0);
        }
    }
    bt_assert_clean(bs);
    bdrv_close(bs);
    g_hash_table_unref(snaps);
    g_rand_free(rng);
    g_unlink(path);
}

static void test_random_small_clusters(void)
{
    run_random("cluster_size=512", 1, NULL);
    run_random("cluster_size=512,refcount_bits=2", 2, NULL);
}

static void test_random_large_clusters(void)
{
    run_random("cluster_size=65536,refcount_bits=64", 3, NULL);
    run_random("compat=0.10,cluster_size=4096", 4, NULL);
}

static void test_luks_random(void)
{
    bt_secret("sec0", "pw");
    run_random("cluster_size=4096,encrypt.format=luks,encrypt.key-secret=sec0,"
               "encrypt.iter-time=10",
               5, "sec0");
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2/snapshot/apply-restores-data", test_apply_restores_data);
    g_test_add_func("/qcow2/snapshot/ids-are-max-plus-one", test_ids);
    g_test_add_func("/qcow2/snapshot/vmstate-is-captured", test_vmstate_captured);
    g_test_add_func("/qcow2/snapshot/vmstate-read-without-revert",
                    test_vmstate_read_without_revert);
    g_test_add_func("/qcow2/snapshot/two-step-revert-commit-abort", test_two_step_revert);
    g_test_add_func("/qcow2/snapshot/apply-restores-disk-size", test_goto_restores_size);
    g_test_add_func("/qcow2/snapshot/refcount-overflow-refused-cleanly",
                    test_refcount_overflow_refused);
    g_test_add_func("/qcow2/snapshot/random-ops-small-clusters-match-models",
                    test_random_small_clusters);
    g_test_add_func("/qcow2/snapshot/random-ops-large-clusters-match-models",
                    test_random_large_clusters);
    g_test_add_func("/qcow2/snapshot/random-ops-luks-match-models", test_luks_random);
    ret = g_test_run();
    bt_cleanup();
    return ret;
}
