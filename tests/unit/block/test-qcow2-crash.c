/*
 * Crash safety: a workload of allocating writes, vmstate writes, flushes and
 * snapshot create/apply/delete (apply also in two steps: prepare, guest writes,
 * then commit or abort) runs on a qcow2 image above the blkcrash filter (a
 * test double for power loss), which cuts it at a random write and keeps a
 * random subset of the unflushed writes. Every resulting image must open
 * read-write (repairing a dirty image), have no corruption in check (leaks
 * are allowed), read back every byte that was flushed before the cut and
 * not written since, and every snapshot it lists must hold the data it was
 * created with.
 */
#include <string.h>

#include "block-test.h"
#include "block/blkcrash.h"

#define DISK (2 << 20)
#define SECTOR 512

typedef struct Workload {
    uint8_t *model;    /* what the guest wrote */
    uint8_t *durable;  /* the model at the last acknowledged flush */
    uint8_t *dirty;    /* per sector: written since that flush */
    GHashTable *snaps; /* name -> model at creation */
    bool uncertain;    /* cut inside an apply: either state is fine */
} Workload;

static void workload_init(Workload *w)
{
    w->model = g_malloc0(DISK);
    w->durable = g_malloc0(DISK);
    w->dirty = g_malloc0(DISK / SECTOR);
    w->snaps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    w->uncertain = false;
}

static void workload_free(Workload *w)
{
    g_free(w->model);
    g_free(w->durable);
    g_free(w->dirty);
    g_hash_table_unref(w->snaps);
}

static void workload_acked(Workload *w)
{
    memcpy(w->durable, w->model, DISK);
    memset(w->dirty, 0, DISK / SECTOR);
}

/* Run the seeded workload until it ends or the power is lost. */
static void workload_run(BlockDriverState *bs, Workload *w, uint32_t seed)
{
    GRand *rng = g_rand_new_with_seed(seed);
    g_autofree uint8_t *buf = g_malloc(128 << 10);
    int next = 0;

    for (int i = 0; i < 60 && !blkcrash_is_dead(bs); i++) {
        int op = g_rand_int_range(rng, 0, 21);
        if (op == 20) {
            /* vmstate beyond the disk: grows the L1 table */
            uint64_t pos = g_rand_int_range(rng, 0, 1 << 20);
            bt_fill(buf, pos, 5000, i + 1);
            bdrv_save_vmstate(bs, buf, pos, 5000, NULL);
        } else if (op < 12) {
            uint64_t len = g_rand_int_range(rng, 1, 128 << 10);
            uint64_t off = g_rand_int_range(rng, 0, DISK - len);
            bt_fill(buf, off, len, seed * 1000 + i);
            memcpy(w->model + off, buf, len);
            memset(w->dirty + off / SECTOR, 1,
                   (off + len - 1) / SECTOR - off / SECTOR + 1);
            bdrv_pwrite(bs, off, buf, len, NULL);
        } else if (op < 15) {
            if (bdrv_flush(bs, NULL) && !blkcrash_is_dead(bs)) {
                workload_acked(w);
            }
        } else if (op < 17 || g_hash_table_size(w->snaps) == 0) {
            g_autofree char *name = g_strdup_printf("c%d", next++);
            BlockSnapshotInfo sn = {.name = g_strdup(name), .icount = -1};
            /* the snapshot holds the model as it is now, even if cut */
            g_hash_table_insert(w->snaps, g_strdup(name), g_memdup2(w->model, DISK));
            {
                GError *cerr = NULL;
                if (bdrv_snapshot_create(bs, &sn, &cerr) && !blkcrash_is_dead(bs)) {
                    workload_acked(w);
                } else if (!blkcrash_is_dead(bs)) {
                    g_error("create failed without a crash: %s", cerr->message);
                }
                g_clear_error(&cerr);
            }
            block_snapshot_info_clear(&sn);
        } else {
            GList *keys = g_hash_table_get_keys(w->snaps);
            const char *name =
                g_list_nth_data(keys, g_rand_int_range(rng, 0, g_list_length(keys)));
            g_autofree char *n = g_strdup(name);
            g_list_free(keys);
            if (op < 19) {
                int how = g_rand_int_range(rng, 0, 3); /* goto, commit, abort */
                BlockSnapshotInfo sn = {0};
                g_autofree uint8_t *before = g_memdup2(w->model, DISK);
                bool ok;

                w->uncertain = true;
                if (how == 0) {
                    ok = bdrv_snapshot_goto(bs, n, NULL);
                    memcpy(w->model, g_hash_table_lookup(w->snaps, n), DISK);
                } else {
                    uint64_t len = g_rand_int_range(rng, 1, 64 << 10);
                    uint64_t off = g_rand_int_range(rng, 0, DISK - len);

                    g_assert_true(bdrv_snapshot_find(bs, n, &sn));
                    ok = bdrv_snapshot_goto_prepare(bs, sn.id_str, NULL);
                    block_snapshot_info_clear(&sn);
                    memcpy(w->model, g_hash_table_lookup(w->snaps, n), DISK);
                    /* a guest write while the revert is pending */
                    bt_fill(buf, off, len, seed * 1000 + i + 500);
                    memcpy(w->model + off, buf, len);
                    ok = ok && bdrv_pwrite(bs, off, buf, len, NULL);
                    if (how == 1) {
                        ok = ok && bdrv_snapshot_goto_commit(bs, NULL);
                    } else {
                        ok = ok && bdrv_snapshot_goto_abort(bs, NULL);
                        memcpy(w->model, before, DISK);
                    }
                }
                if (ok && !blkcrash_is_dead(bs)) {
                    workload_acked(w);
                    w->uncertain = false;
                } else if (!blkcrash_is_dead(bs)) {
                    g_error("snapshot apply (%d) failed without a crash", how);
                }
            } else if (bdrv_snapshot_delete(bs, NULL, n, NULL) && !blkcrash_is_dead(bs)) {
                g_hash_table_remove(w->snaps, n);
                workload_acked(w);
            }
        }
    }
    g_rand_free(rng);
}

static void verify(const char *path, Workload *w, const char *secret)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *disk = g_malloc(DISK);
    BlockSnapshotInfo *list;
    BdrvCheckResult res;
    BlockDriverState *bs;
    int n;

    /* A read/write open repairs what the dirty bit says may be stale. */
    bs = secret ? bt_open_luks(path, secret, true) : bt_open(path, "qcow2", true);
    g_assert_true(bdrv_check(bs, &res, BDRV_CHECK_QUIET, &err));
    g_assert_no_error(err);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.check_errors, ==, 0);
    g_assert_true(bdrv_pread(bs, 0, disk, DISK, &err));
    g_assert_no_error(err);
    if (!w->uncertain) {
        for (uint64_t s = 0; s < DISK / SECTOR; s++) {
            if (!w->dirty[s] &&
                memcmp(disk + s * SECTOR, w->durable + s * SECTOR, SECTOR)) {
                g_error("sector %" G_GUINT64_FORMAT " lost flushed data", s);
            }
        }
    }
    n = bdrv_snapshot_list(bs, &list);
    for (int i = 0; i < n; i++) {
        const uint8_t *want = g_hash_table_lookup(w->snaps, list[i].name);
        g_assert_nonnull(want);
        g_assert_true(bdrv_snapshot_goto(bs, list[i].name, &err));
        g_assert_no_error(err);
        g_assert_true(bdrv_pread(bs, 0, disk, DISK, &err));
        if (memcmp(disk, want, DISK) != 0) {
            g_error("snapshot %s does not hold its data", list[i].name);
        }
        block_snapshot_info_clear(&list[i]);
    }
    g_free(list);
    g_assert_true(bdrv_check(bs, &res, BDRV_CHECK_QUIET, &err));
    g_assert_cmpint(res.corruptions, ==, 0);
    /* leaks are allowed after a crash, and check -r leaks removes them */
    g_assert_true(bdrv_check(bs, &res, BDRV_FIX_LEAKS | BDRV_CHECK_QUIET, &err));
    g_assert_true(bdrv_check(bs, &res, BDRV_CHECK_QUIET, &err));
    g_assert_cmpint(res.leaks + res.corruptions, ==, 0);
    bdrv_close(bs);
}

static BlockDriverState *open_crashy(const char *path, uint64_t crash_after,
                                     uint32_t seed, const char *secret)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *opts = g_strdup_printf(
        "driver=qcow2,file.driver=blkcrash,file.crash-after=%" G_GUINT64_FORMAT
        ",file.seed=%u,file.file.driver=file,file.file.filename=%s,"
        "file.file.cache.no-flush=on%s%s",
        crash_after, seed, path, secret ? ",encrypt.key-secret=" : "",
        secret ? secret : "");
    BlockDriverState *bs = bt_open_opts(opts, BDRV_O_RDWR, &err);

    g_assert_no_error(err);
    return bs;
}

static void run_crashes(const char *create_opts, const char *secret, int points,
                        uint32_t base_seed)
{
    g_autofree char *tmpl = bt_path("crash-template.qcow2");
    g_autofree char *path = bt_path("crash.qcow2");
    GRand *rng = g_rand_new_with_seed(base_seed);

    if (secret) {
        bt_create_luks(tmpl, DISK, secret, create_opts);
    } else {
        bt_create("qcow2", tmpl, DISK, create_opts);
    }
    for (int p = 0; p < points; p++) {
        uint32_t seed = base_seed + p / 8; /* a few cuts per workload */
        uint64_t total, cut;
        Workload w;
        BlockDriverState *bs;

        /* Count the writes of the whole workload, then cut inside it. */
        workload_init(&w);
        bt_copy_file(tmpl, path);
        bs = open_crashy(path, 0, 0, secret);
        workload_run(bs, &w, seed);
        total = blkcrash_write_count(bs);
        bdrv_close(bs);
        workload_free(&w);
        g_assert_cmpuint(total, >, 0);

        cut = g_rand_int_range(rng, 1, total + 1);
        workload_init(&w);
        bt_copy_file(tmpl, path);
        bs = open_crashy(path, cut, g_rand_int(rng), secret);
        workload_run(bs, &w, seed);
        g_assert_true(blkcrash_is_dead(bs));
        bdrv_close(bs);
        verify(path, &w, secret);
        workload_free(&w);
    }
    g_rand_free(rng);
}

static void test_crash_4k(void)
{
    run_crashes("cluster_size=4096", NULL, 120, 1000);
}

static void test_crash_64k_refcount_64(void)
{
    run_crashes("refcount_bits=64", NULL, 80, 2000);
}

static void test_crash_512(void)
{
    run_crashes("cluster_size=512", NULL, 60, 3000);
}

static void test_crash_table_growth(void)
{
    /* 64-bit refcounts in 512 B clusters: the refcount table grows too */
    run_crashes("cluster_size=512,refcount_bits=64", NULL, 40, 5000);
}

static void test_crash_luks(void)
{
    run_crashes("cluster_size=4096", "sec0", 40, 4000);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    bt_secret("sec0", "pw");
    g_test_add_func("/qcow2/crash/cut-anywhere-4k-clusters-no-corruption", test_crash_4k);
    g_test_add_func("/qcow2/crash/cut-anywhere-64k-refcount-64-no-corruption",
                    test_crash_64k_refcount_64);
    g_test_add_func("/qcow2/crash/cut-anywhere-512-clusters-no-corruption",
                    test_crash_512);
    g_test_add_func("/qcow2/crash/cut-anywhere-table-growth-no-corruption",
                    test_crash_table_growth);
    g_test_add_func("/qcow2/crash/cut-anywhere-luks-no-corruption", test_crash_luks);
    ret = g_test_run();
    bt_cleanup();
    return ret;
}
