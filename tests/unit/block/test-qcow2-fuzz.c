/*
 * Corruption fuzzing: small qcow2 images (plain, LUKS, snapshots, vmstate,
 * compressed clusters, 512 B to 64 KiB clusters) get random bytes flipped
 * thousands of times; opening, reading, snapshot operations, writing and
 * check (with and without repair) must never crash or hang - errors are
 * fine. Run under ASan in CI to catch memory errors. Set TPMVM_FUZZ_ITERS
 * to run more.
 */
#include <stdlib.h>
#include <string.h>

#include "block-test.h"

typedef struct Template {
    const char *name;
    const char *create_opts;
    bool luks;
    char *data;
    gsize len;
} Template;

static Template templates[] = {
    {"plain-512", "cluster_size=512", false},
    {"plain-4k-rc1", "cluster_size=4096,refcount_bits=1", false},
    {"plain-64k", NULL, false},
    {"v2-1k", "compat=0.10,cluster_size=1024", false},
    {"luks-4k", "cluster_size=4096", true}, /* must stay last */
};

static void build_template(Template *t)
{
    g_autofree char *path = bt_path(t->name);
    g_autofree uint8_t *buf = g_malloc0(4096);
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo sn = {.name = g_strdup("fz"), .icount = -1, .vm_state_size = 3000};
    BlockDriverState *bs;

    if (t->luks) {
        bt_create_luks(path, 256 << 10, "sec0", t->create_opts);
        bs = bt_open_luks(path, "sec0", true);
    } else {
        bt_create("qcow2", path, 256 << 10, t->create_opts);
        bs = bt_open(path, "qcow2", true);
    }
    bt_write_pattern(bs, 0, 20000, 1);
    bt_write_pattern(bs, 100000, 3000, 2);
    g_assert_true(bdrv_save_vmstate(bs, buf, 0, 3000, &err));
    /* refcount_bits=1 cannot hold a snapshot: that failure is fine here */
    bdrv_snapshot_create(bs, &sn, NULL);
    bt_write_pattern(bs, 1000, 5000, 3);
    if (!t->luks && bdrv_cluster_size(bs) >= 4096) {
        memset(buf, 'z', 4096);
        bdrv_write_compressed(bs, 200 << 10, buf,
                              bdrv_cluster_size(bs) > 4096 ? 4096 : 4096, NULL);
    }
    bdrv_close(bs);
    block_snapshot_info_clear(&sn);
    g_assert_true(g_file_get_contents(path, &t->data, &t->len, NULL));
}

/* Exercise everything on a possibly broken image; only crashes fail. */
static void exercise(const char *path, bool luks)
{
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s%s", path,
                                            luks ? ",encrypt.key-secret=sec0" : "");
    g_autofree uint8_t *buf = g_malloc(64 << 10);
    BlockSnapshotInfo *list = NULL;
    BdrvCheckResult res;
    BlockDriverState *bs;
    int n;

    bs = bt_open_opts(opts, BDRV_O_NO_FLUSH, NULL);
    if (bs) {
        int64_t len = bdrv_getlength(bs);
        for (int64_t off = 0; off < MIN(len, 512 << 10); off += 64 << 10) {
            bdrv_pread(bs, off, buf, 64 << 10, NULL);
        }
        bdrv_load_vmstate(bs, buf, 0, 4000, NULL);
        n = bdrv_snapshot_list(bs, &list);
        for (int i = 0; i < n; i++) {
            block_snapshot_info_clear(&list[i]);
        }
        g_free(list);
        bdrv_check(bs, &res, BDRV_CHECK_QUIET, NULL);
        bdrv_close(bs);
    }
    bs = bt_open_opts(opts, BDRV_O_RDWR | BDRV_O_NO_FLUSH, NULL);
    if (bs) {
        BlockSnapshotInfo sn = {.name = g_strdup("new"), .icount = -1};
        memset(buf, 0x5c, 70000 > (64 << 10) ? 64 << 10 : 70000);
        bdrv_pwrite(bs, 4000, buf, 60000, NULL);
        bdrv_save_vmstate(bs, buf, 10, 5000, NULL);
        bdrv_snapshot_create(bs, &sn, NULL);
        bdrv_pwrite(bs, 50000, buf, 3000, NULL);
        bdrv_snapshot_goto(bs, "fz", NULL);
        bdrv_snapshot_delete(bs, NULL, "new", NULL);
        bdrv_truncate(bs, 1 << 20, NULL);
        bdrv_flush(bs, NULL);
        block_snapshot_info_clear(&sn);
        bdrv_close(bs);
    }
    bs = bt_open_opts(opts, BDRV_O_RDWR | BDRV_O_CHECK | BDRV_O_NO_FLUSH, NULL);
    if (bs) {
        if (bdrv_check(bs, &res, BDRV_FIX_LEAKS | BDRV_FIX_ERRORS | BDRV_CHECK_QUIET,
                       NULL)) {
            bdrv_check(bs, &res, BDRV_CHECK_QUIET, NULL);
        }
        bdrv_close(bs);
    }
}

static void test_flip_bytes(void)
{
    const char *env = g_getenv("TPMVM_FUZZ_ITERS");
    int iters = env ? atoi(env) : 1200;
    g_autofree char *path = bt_path("fuzz.qcow2");
    GRand *rng = g_rand_new_with_seed(0x7a3d);

    for (int i = 0; i < iters; i++) {
        /* LUKS opens pay PBKDF2 each time: one iteration in ten */
        Template *t = i % 10 == 9 ? &templates[G_N_ELEMENTS(templates) - 1]
                                  : &templates[i % (G_N_ELEMENTS(templates) - 1)];
        g_autofree char *copy = g_memdup2(t->data, t->len);
        int flips = g_rand_int_range(rng, 1, 9);
        /* metadata lives mostly in the first clusters: bias towards them */
        gsize window = g_rand_boolean(rng) ? MIN(t->len, 8192) : t->len;

        for (int f = 0; f < flips; f++) {
            gsize pos = g_rand_int_range(rng, 0, window);
            switch (g_rand_int_range(rng, 0, 4)) {
            case 0:
                copy[pos] ^= 1 << g_rand_int_range(rng, 0, 8);
                break;
            case 1:
                copy[pos] = 0xff;
                break;
            case 2:
                copy[pos] = 0;
                break;
            default:
                copy[pos] = g_rand_int(rng);
                break;
            }
        }
        bt_write_file(path, copy, t->len);
        exercise(path, t->luks);
    }
    g_rand_free(rng);
}

/* Whole header fields set to extreme values. */
static void test_extreme_fields(void)
{
    static const struct {
        uint32_t off;
        int width;
    } fields[] = {
        {8, 8},  {16, 4}, {20, 4}, {24, 8}, {32, 4}, {36, 4}, {40, 8},  {48, 8},
        {56, 4}, {60, 4}, {64, 8}, {72, 8}, {88, 8}, {96, 4}, {100, 4},
    };
    static const uint64_t values[] = {
        0,          1,
        0x1ff,      0x200,
        0x10000,    0x7fffffff,
        0xffffffff, 0x8000000000000000ull,
        UINT64_MAX, 0x0000fffffffffe00ull,
    };
    g_autofree char *path = bt_path("extreme.qcow2");

    for (size_t t = 0; t < G_N_ELEMENTS(templates) - 1; t++) {
        for (size_t f = 0; f < G_N_ELEMENTS(fields); f++) {
            for (size_t v = 0; v < G_N_ELEMENTS(values); v++) {
                bt_write_file(path, templates[t].data, templates[t].len);
                if (fields[f].width == 8) {
                    bt_patch_be64(path, fields[f].off, values[v]);
                } else {
                    bt_patch_be32(path, fields[f].off, (uint32_t)values[v]);
                }
                exercise(path, templates[t].luks);
            }
        }
    }
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);
    bt_secret("sec0", "fuzz");
    for (size_t i = 0; i < G_N_ELEMENTS(templates); i++) {
        build_template(&templates[i]);
    }
    g_test_add_func("/qcow2/fuzz/flipped-bytes-never-crash", test_flip_bytes);
    g_test_add_func("/qcow2/fuzz/extreme-header-fields-never-crash", test_extreme_fields);
    ret = g_test_run();
    for (size_t i = 0; i < G_N_ELEMENTS(templates); i++) {
        g_free(templates[i].data);
    }
    bt_cleanup();
    return ret;
}
