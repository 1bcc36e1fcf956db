/*
 * qcow2 interchange with QEMU 7.2: images written by tpmvm pass qemu-img
 * check and read back through qemu-img/qemu-io; images written by
 * qemu-img/qemu-io read back through tpmvm and pass its check; snapshots
 * made by either side are listed and applied by the other; tpmvm-img prints
 * what qemu-img prints; image locks exclude each other across programs.
 * Every test is skipped when qemu-img/qemu-io are not installed.
 */
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "block-test.h"
#include "crypto/secret.h"

#define SECRET "--object", "secret,id=sec0,data=correct horse"

static bool need_qemu(void)
{
    if (!bt_have("qemu-img") || !bt_have("qemu-io")) {
        g_test_skip("qemu-img/qemu-io not installed (package qemu-utils)");
        return false;
    }
    return true;
}

/* Run argv; fail the test unless it exits with `want_rc`. Returns stdout. */
static char *run_expect(int want_rc, const char *const *argv)
{
    char *out = NULL, *err = NULL;
    int rc = bt_run(&out, &err, argv);

    if (rc != want_rc) {
        g_autofree char *cmd = g_strjoinv(" ", (char **)argv);
        g_error("'%s' exited %d (expected %d)\nstdout: %s\nstderr: %s", cmd, rc, want_rc,
                out, err);
    }
    g_free(err);
    return out;
}

#define RUN(rc, ...)                                                                     \
    ({                                                                                   \
        const char *const argv_[] = {__VA_ARGS__, NULL};                                 \
        run_expect(rc, argv_);                                                           \
    })

static char *image_opts(const char *path, bool luks)
{
    return g_strdup_printf("driver=qcow2,file.filename=%s%s", path,
                           luks ? ",encrypt.key-secret=sec0" : "");
}

/*
 * qemu-img's PBKDF2 calibration gives up with "Unable to get accurate CPU
 * usage" when its first short run reads as 0 ms of getrusage() time (common
 * with SHA-NI); each failure costs a few ms, so retry.
 */
static void qemu_create_luks(const char *path, const char *extra, const char *size)
{
    g_autofree char *o = g_strdup_printf(
        "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10%s%s",
        extra ? "," : "", extra ? extra : "");

    for (int i = 0;; i++) {
        const char *const argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", SECRET,
                                    "-o",       o,        path, size, NULL};
        g_autofree char *out = NULL, *err = NULL;
        if (bt_run(&out, &err, argv) == 0) {
            return;
        }
        if (i == 40 || !strstr(err, "CPU usage")) {
            g_error("qemu-img create failed: %s", err);
        }
    }
}

/* Expect `qemu-img check` rc 0 and no leaks. */
static void qemu_check_clean(const char *path, bool luks)
{
    g_autofree char *opts = image_opts(path, luks);
    g_autofree char *out = RUN(0, "qemu-img", "check", SECRET, "--image-opts", opts);

    g_assert_nonnull(strstr(out, "No errors were found on the image."));
}

/* The whole guest disk as QEMU sees it (qemu-img convert -O raw). */
static char *qemu_read_all(const char *path, bool luks, gsize *len)
{
    g_autofree char *opts = image_opts(path, luks);
    g_autofree char *raw = g_strdup_printf("%s.raw", path);
    char *data = NULL;

    g_free(RUN(0, "qemu-img", "convert", SECRET, "--image-opts", opts, "-O", "raw", raw));
    g_assert_true(g_file_get_contents(raw, &data, len, NULL));
    g_unlink(raw);
    return data;
}

static void ours_write_model(BlockDriverState *bs, uint8_t *model, uint64_t size,
                             int seed)
{
    GRand *rng = g_rand_new_with_seed(seed);
    g_autoptr(GError) err = NULL;

    for (int i = 0; i < 40; i++) {
        uint64_t len = g_rand_int_range(rng, 1, MIN(size / 4, 300000));
        uint64_t off = g_rand_int_range(rng, 0, size - len);
        g_autofree uint8_t *buf = g_malloc(len);
        bt_fill(buf, off, len, seed * 100 + i + 1);
        memcpy(model + off, buf, len);
        g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
        g_assert_no_error(err);
    }
    g_rand_free(rng);
}

/* tpmvm writes (data, snapshot with vmstate, COW after it); QEMU verifies. */
static void ours_to_qemu(const char *cluster_size, bool luks)
{
    g_autofree char *name =
        g_strdup_printf("ours-%s-%s.qcow2", cluster_size, luks ? "luks" : "plain");
    g_autofree char *path = bt_path(name);
    g_autofree char *opts = g_strdup_printf("cluster_size=%s", cluster_size);
    g_autofree char *iopts = image_opts(path, luks);
    const uint64_t size = 4 << 20;
    g_autofree uint8_t *model = g_malloc0(size);
    g_autofree uint8_t *snap_model = NULL;
    g_autofree uint8_t *vmstate = g_malloc(123457);
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo sn = {.name = g_strdup("ours1"),
                            .icount = -1,
                            .vm_state_size = 123457,
                            .date_sec = 1700000000};
    g_autofree char *data = NULL, *list = NULL;
    BlockDriverState *bs;
    gsize len;

    if (!need_qemu()) {
        return;
    }
    if (luks) {
        bt_create_luks(path, size, "sec0", opts);
        bs = bt_open_luks(path, "sec0", true);
    } else {
        bt_create("qcow2", path, size, opts);
        bs = bt_open(path, "qcow2", true);
    }
    ours_write_model(bs, model, size, 1);
    bt_fill(vmstate, 0, 123457, 77);
    g_assert_true(bdrv_save_vmstate(bs, vmstate, 0, 123457, &err));
    g_assert_true(bdrv_snapshot_create(bs, &sn, &err));
    g_assert_no_error(err);
    snap_model = g_memdup2(model, size);
    ours_write_model(bs, model, size, 2);
    {
        /* a uniform range for qemu-io read -P */
        g_autofree uint8_t *a5 = g_malloc(65536);
        memset(a5, 0xa5, 65536);
        g_assert_true(bdrv_pwrite(bs, 1 << 20, a5, 65536, &err));
        memset(model + (1 << 20), 0xa5, 65536);
    }
    bdrv_close(bs);

    qemu_check_clean(path, luks);
    data = qemu_read_all(path, luks, &len);
    g_assert_cmpuint(len, ==, size);
    g_assert_true(memcmp(data, model, size) == 0);
    g_free(RUN(0, "qemu-io", SECRET, "--image-opts", iopts, "-c", "read -P 0xa5 1M 64k"));
    list = RUN(0, "qemu-img", "snapshot", SECRET, "--image-opts", iopts, "-l");
    g_assert_nonnull(strstr(list, "ours1"));
    g_assert_nonnull(strstr(list, "121 KiB"));

    /* QEMU applies our snapshot and deletes it; we read the result. */
    g_free(RUN(0, "qemu-img", "snapshot", SECRET, "--image-opts", iopts, "-a", "ours1"));
    g_free(data);
    data = qemu_read_all(path, luks, &len);
    g_assert_true(memcmp(data, snap_model, size) == 0);
    bs = luks ? bt_open_luks(path, "sec0", true) : bt_open(path, "qcow2", true);
    {
        g_autofree uint8_t *back = g_malloc(123457);
        g_assert_true(bdrv_load_vmstate(bs, back, 0, 123457, &err));
        g_assert_true(memcmp(back, vmstate, 123457) == 0);
    }
    bt_assert_clean(bs);
    bdrv_close(bs);
    g_free(RUN(0, "qemu-img", "snapshot", SECRET, "--image-opts", iopts, "-d", "ours1"));
    qemu_check_clean(path, luks);
    block_snapshot_info_clear(&sn);
    g_unlink(path);
}

static void test_ours_plain_512(void)
{
    ours_to_qemu("512", false);
}

static void test_ours_plain_64k(void)
{
    ours_to_qemu("65536", false);
}

static void test_ours_plain_2m(void)
{
    ours_to_qemu("2M", false);
}

static void test_ours_luks_512(void)
{
    ours_to_qemu("512", true);
}

static void test_ours_luks_64k(void)
{
    ours_to_qemu("65536", true);
}

static void test_ours_luks_2m(void)
{
    ours_to_qemu("2M", true);
}

/* QEMU writes uniform patterns; tpmvm reads them and checks the image. */
static void qemu_to_ours(const char *create_opts, bool luks, const char *name)
{
    g_autofree char *path = bt_path(name);
    g_autofree char *iopts = image_opts(path, luks);
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo *list;
    BlockDriverState *bs;
    int n;

    if (!need_qemu()) {
        return;
    }
    if (luks) {
        qemu_create_luks(path, create_opts, "8M");
    } else {
        g_free(RUN(0, "qemu-img", "create", "-q", "-f", "qcow2", "-o", create_opts, path,
                   "8M"));
    }
    g_free(RUN(0, "qemu-io", SECRET, "--image-opts", iopts, "-c", "write -P 0xa5 0 64k",
               "-c", "write -P 0x5a 1M 4k", "-c", "write -P 0x11 3000 5000"));
    g_free(RUN(0, "qemu-img", "snapshot", SECRET, "--image-opts", iopts, "-c", "qsnap"));
    g_free(RUN(0, "qemu-io", SECRET, "--image-opts", iopts, "-c", "write -P 0x3c 0 4k"));

    bs = luks ? bt_open_luks(path, "sec0", true) : bt_open(path, "qcow2", true);
    {
        g_autofree uint8_t *buf = g_malloc(65536);
        g_assert_true(bdrv_pread(bs, 0, buf, 65536, &err));
        for (int i = 0; i < 65536; i++) {
            uint8_t want = i < 4096 ? 0x3c : (i >= 3000 && i < 8000) ? 0x11 : 0xa5;
            g_assert_cmphex(buf[i], ==, want);
        }
        g_assert_true(bdrv_pread(bs, 1 << 20, buf, 4096, &err));
        for (int i = 0; i < 4096; i++) {
            g_assert_cmphex(buf[i], ==, 0x5a);
        }
    }
    bt_assert_clean(bs);
    n = bdrv_snapshot_list(bs, &list);
    g_assert_cmpint(n, ==, 1);
    g_assert_cmpstr(list[0].name, ==, "qsnap");
    g_assert_cmpint(list[0].icount, ==, 0);
    block_snapshot_info_clear(&list[0]);
    g_free(list);
    g_assert_true(bdrv_snapshot_goto(bs, "qsnap", &err));
    g_assert_no_error(err);
    {
        uint8_t b[16];
        g_assert_true(bdrv_pread(bs, 0, b, sizeof(b), &err));
        g_assert_cmphex(b[0], ==, 0xa5);
    }
    bt_assert_clean(bs);
    bdrv_close(bs);
    qemu_check_clean(path, luks);
    g_free(RUN(0, "qemu-io", SECRET, "--image-opts", iopts, "-c", "read -P 0xa5 0 3000"));
    {
        g_autofree char *out =
            RUN(0, bt_img_tool(), "check", SECRET, "--image-opts", iopts);
        g_assert_nonnull(strstr(out, "No errors were found on the image."));
    }
    g_unlink(path);
}

static void test_qemu_luks(void)
{
    qemu_to_ours(NULL, true, "q-luks.qcow2");
}

static void test_qemu_refcount_1(void)
{
    /* refcount_bits=1 cannot hold a snapshot in QEMU either: plain data only */
    g_autofree char *path = bt_path("q-rc1.qcow2");
    g_autoptr(GError) err = NULL;
    BlockDriverState *bs;
    uint8_t b[4096];

    if (!need_qemu()) {
        return;
    }
    g_free(RUN(0, "qemu-img", "create", "-q", "-f", "qcow2", "-o",
               "refcount_bits=1,cluster_size=512", path, "4M"));
    g_free(RUN(0, "qemu-io", "-c", "write -P 0x77 0 1M", "-c", "write -P 0x78 3M 100k",
               path));
    bs = bt_open(path, "qcow2", true);
    g_assert_true(bdrv_pread(bs, (3 << 20) + 4000, b, sizeof(b), &err));
    g_assert_cmphex(b[0], ==, 0x78);
    g_assert_cmphex(b[4095], ==, 0x78);
    bt_write_pattern(bs, 2 << 20, 200000, 9);
    bt_assert_clean(bs);
    bdrv_close(bs);
    qemu_check_clean(path, false);
}

static void test_qemu_refcount_64(void)
{
    qemu_to_ours("refcount_bits=64", false, "q-rc64.qcow2");
}

static void test_qemu_cluster_512(void)
{
    qemu_to_ours("cluster_size=512", false, "q-512.qcow2");
}

static void test_qemu_cluster_2m(void)
{
    qemu_to_ours("cluster_size=2M", false, "q-2m.qcow2");
}

static void test_qemu_v2(void)
{
    qemu_to_ours("compat=0.10", false, "q-v2.qcow2");
}

static void test_qemu_compressed(void)
{
    g_autofree char *raw = bt_path("src.raw");
    g_autofree char *path = bt_path("q-comp.qcow2");
    g_autofree uint8_t *data = g_malloc0(4 << 20);
    g_autofree uint8_t *back = g_malloc(4 << 20);
    g_autoptr(GError) err = NULL;
    BdrvCheckResult res;
    BlockDriverState *bs;

    if (!need_qemu()) {
        return;
    }
    bt_fill(data, 0, 1 << 20, 5); /* incompressible */
    for (int i = 2 << 20; i < 3 << 20; i++) {
        data[i] = "tpmvm compressed cluster "[i % 25]; /* compressible */
    }
    memset(data + (3 << 20) + 12345, 0x42, 70000);
    bt_write_file(raw, (char *)data, 4 << 20);
    g_free(RUN(0, "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, path));
    bs = bt_open(path, "qcow2", false);
    g_assert_true(bdrv_pread(bs, 0, back, 4 << 20, &err));
    g_assert_true(memcmp(data, back, 4 << 20) == 0);
    g_assert_true(bdrv_check(bs, &res, BDRV_FIX_NONE, &err));
    g_assert_cmpint(res.compressed_clusters, >, 10);
    g_assert_cmpint(res.corruptions + res.leaks, ==, 0);
    bdrv_close(bs);
    /* and our compressed writes (tpmvm-img convert -c) read back in QEMU */
    g_unlink(path);
    g_free(RUN(0, bt_img_tool(), "convert", "-c", "-f", "raw", "-O", "qcow2", raw, path));
    qemu_check_clean(path, false);
    {
        gsize len;
        g_autofree char *q = qemu_read_all(path, false, &len);
        g_assert_cmpuint(len, ==, 4 << 20);
        g_assert_true(memcmp(q, data, len) == 0);
    }
}

static void test_snapshots_cross(void)
{
    g_autofree char *path = bt_path("cross.qcow2");
    g_autofree char *out = NULL;
    const char *tool = bt_img_tool();
    BlockDriverState *bs;

    if (!need_qemu()) {
        return;
    }
    g_free(RUN(0, tool, "create", "-q", "-f", "qcow2", path, "2M"));
    g_free(RUN(0, "qemu-io", "-c", "write -P 0x01 0 128k", path));
    g_free(RUN(0, tool, "snapshot", "-c", "t1", path));
    g_free(RUN(0, "qemu-io", "-c", "write -P 0x02 0 64k", path));
    g_free(RUN(0, "qemu-img", "snapshot", "-c", "q2", path));
    g_free(RUN(0, "qemu-io", "-c", "write -P 0x03 0 4k", path));
    /* both list the same table */
    out = RUN(0, "qemu-img", "snapshot", "-l", path);
    {
        g_autofree char *ours = RUN(0, tool, "snapshot", "-l", path);
        g_assert_cmpstr(ours, ==, out);
    }
    g_free(RUN(0, "qemu-img", "snapshot", "-a", "t1", path));
    g_free(RUN(0, "qemu-io", "-c", "read -P 0x01 0 128k", path));
    g_free(RUN(0, tool, "snapshot", "-a", "q2", path));
    g_free(RUN(0, "qemu-io", "-c", "read -P 0x02 0 64k", "-c", "read -P 0x01 64k 64k",
               path));
    g_free(RUN(0, tool, "snapshot", "-d", "t1", path));
    g_free(RUN(0, "qemu-img", "snapshot", "-d", "q2", path));
    qemu_check_clean(path, false);
    bs = bt_open(path, "qcow2", false);
    bt_assert_clean(bs);
    bdrv_close(bs);
    g_free(RUN(1, "qemu-img", "snapshot", "-d", "nothere", path));
    g_free(RUN(1, tool, "snapshot", "-d", "nothere", path));
}

/* A real savevm from QEMU: its vmstate and snapshot are read by tpmvm. */
static void test_qemu_savevm(void)
{
    g_autofree char *path = bt_path("savevm.qcow2");
    g_autofree char *drive = g_strdup_printf("if=none,id=d0,format=qcow2,file=%s", path);
    g_autoptr(GError) err = NULL;
    BlockSnapshotInfo sn;
    uint8_t magic[8];
    BlockDriverState *bs;

    if (!need_qemu()) {
        return;
    }
    if (!bt_have("qemu-system-x86_64")) {
        g_test_skip("qemu-system-x86_64 not installed (package qemu-system-x86)");
        return;
    }
    g_free(RUN(0, "qemu-img", "create", "-q", "-f", "qcow2", path, "64M"));
    {
        const char *const argv[] = {
            "sh", "-c",
            "printf 'savevm vm1\nquit\n' | timeout 120 "
            "qemu-system-x86_64 -machine pc,accel=tcg -m 32 "
            "-nodefaults -display none -S -monitor stdio -drive \"$0\"",
            drive, NULL};
        g_free(run_expect(0, argv));
    }
    bs = bt_open(path, "qcow2", true);
    g_assert_true(bdrv_snapshot_find(bs, "vm1", &sn));
    g_assert_cmpint(sn.vm_state_size, >, 1000);
    g_assert_cmpint(sn.icount, ==, -1);
    g_assert_true(bdrv_snapshot_goto(bs, "vm1", &err));
    g_assert_no_error(err);
    /* QEMU's migration stream: "QEVM" and version 3 */
    g_assert_true(bdrv_load_vmstate(bs, magic, 0, sizeof(magic), &err));
    g_assert_true(memcmp(magic, "QEVM\0\0\0\3", 8) == 0);
    bt_assert_clean(bs);
    block_snapshot_info_clear(&sn);
    bdrv_close(bs);
    qemu_check_clean(path, false);
    {
        g_autofree char *q = RUN(0, "qemu-img", "snapshot", "-l", path);
        g_autofree char *o = RUN(0, bt_img_tool(), "snapshot", "-l", path);
        g_assert_cmpstr(q, ==, o);
    }
}

/* tpmvm-img and qemu-img print the same for info/check and exit the same. */
static void compare_tool(int rc, const char *const *ours, const char *const *qemu)
{
    g_autofree char *o1 = NULL, *e1 = NULL, *o2 = NULL, *e2 = NULL;
    int r1 = bt_run(&o1, &e1, ours), r2 = bt_run(&o2, &e2, qemu);

    g_assert_cmpint(r1, ==, rc);
    g_assert_cmpint(r2, ==, rc);
    g_assert_cmpstr(o1, ==, o2);
}

static void test_tool_output_matches(void)
{
    g_autofree char *path = bt_path("outputs.qcow2");
    g_autofree char *lpath = bt_path("outputs-luks.qcow2");
    g_autofree char *lopts = image_opts(lpath, true);
    const char *tool = bt_img_tool();

    if (!need_qemu()) {
        return;
    }
    g_free(RUN(0, "qemu-img", "create", "-q", "-f", "qcow2", path, "64M"));
    g_free(RUN(0, "qemu-io", "-c", "write -P 1 0 1M", "-c", "write -P 2 5M 100k", path));
    g_free(RUN(0, "qemu-img", "snapshot", "-c", "snap one", path));
    g_free(RUN(0, "qemu-io", "-c", "write -P 3 0 4k", path));
    for (int json = 0; json < 2; json++) {
        const char *fmt = json ? "--output=json" : "--output=human";
        compare_tool(0, (const char *const[]){tool, "info", fmt, path, NULL},
                     (const char *const[]){"qemu-img", "info", fmt, path, NULL});
        compare_tool(0, (const char *const[]){tool, "check", fmt, path, NULL},
                     (const char *const[]){"qemu-img", "check", fmt, path, NULL});
    }
    qemu_create_luks(lpath, NULL, "16M");
    g_free(RUN(0, "qemu-io", SECRET, "--image-opts", lopts, "-c", "write -P 9 0 300k"));
    compare_tool(0, (const char *const[]){tool, "info", "--output=json", lpath, NULL},
                 (const char *const[]){"qemu-img", "info", "--output=json", lpath, NULL});
    compare_tool(0, (const char *const[]){tool, "info", lpath, NULL},
                 (const char *const[]){"qemu-img", "info", lpath, NULL});
    compare_tool(
        0, (const char *const[]){tool, "check", SECRET, "--image-opts", lopts, NULL},
        (const char *const[]){"qemu-img", "check", SECRET, "--image-opts", lopts, NULL});
    /* without the secret both fail with rc 1 */
    compare_tool(1, (const char *const[]){tool, "check", lpath, NULL},
                 (const char *const[]){"qemu-img", "check", lpath, NULL});

    /* leaks: rc 3, corruptions: rc 2, raw: rc 63 */
    {
        uint64_t end;
        g_autofree char *raw = bt_path("plain.raw");
        g_free(RUN(0, "qemu-img", "create", "-q", "-f", "qcow2", path, "1M"));
        g_free(RUN(0, "qemu-io", "-c", "write -P 1 0 64k", path));
        end = 7 * 65536;
        g_assert_cmpint(truncate(path, end + 65536), ==, 0);
        bt_patch_be16(path, 2 * 65536 + 2 * 7, 1);
        for (int json = 0; json < 2; json++) {
            const char *fmt = json ? "--output=json" : "--output=human";
            compare_tool(3, (const char *const[]){tool, "check", fmt, path, NULL},
                         (const char *const[]){"qemu-img", "check", fmt, path, NULL});
        }
        bt_patch_be16(path, 2 * 65536 + 2 * 5, 0);
        compare_tool(2, (const char *const[]){tool, "check", path, NULL},
                     (const char *const[]){"qemu-img", "check", path, NULL});
        g_free(RUN(0, "qemu-img", "create", "-q", "-f", "raw", raw, "1M"));
        compare_tool(63, (const char *const[]){tool, "check", "-f", "raw", raw, NULL},
                     (const char *const[]){"qemu-img", "check", "-f", "raw", raw, NULL});
    }
}

static void test_wrong_passphrase_tool(void)
{
    g_autofree char *path = bt_path("pw.qcow2");
    g_autofree char *opts = image_opts(path, true);
    g_autofree char *before = NULL, *after = NULL;
    const char *tool = bt_img_tool();

    if (!need_qemu()) {
        return;
    }
    g_free(RUN(0, tool, "create", "-q", "-f", "qcow2", SECRET, "-o",
               "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", path,
               "1M"));
    before = bt_file_hash(path);
    g_free(RUN(1, tool, "check", "--object", "secret,id=sec0,data=wrong", "--image-opts",
               opts));
    g_free(RUN(1, tool, "snapshot", "--object", "secret,id=sec0,data=wrong",
               "--image-opts", opts, "-c", "x"));
    g_free(RUN(1, tool, "snapshot", "--image-opts", opts, "-c", "x"));
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);
    qemu_check_clean(path, true);
}

static void test_legacy_aes(void)
{
    g_autofree char *path = bt_path("aes.qcow2");
    g_autofree char *luks = bt_path("aes-to-luks.qcow2");
    g_autofree char *opts = image_opts(path, true);
    g_autofree char *lopts = image_opts(luks, true);
    g_autofree char *err = NULL, *out = NULL;
    const char *tool = bt_img_tool();

    if (!need_qemu()) {
        return;
    }
    g_free(RUN(0, "qemu-img", "create", "-q", "-f", "qcow2", SECRET, "-o",
               "encrypt.format=aes,encrypt.key-secret=sec0", path, "1M"));
    g_free(
        RUN(0, "qemu-io", SECRET, "--image-opts", opts, "-c", "write -P 0x61 4096 8k"));
    /* read/write open is refused, read-only convert works (with a warning) */
    g_free(RUN(1, tool, "snapshot", SECRET, "--image-opts", opts, "-c", "x"));
    {
        const char *const argv[] = {tool,
                                    "convert",
                                    SECRET,
                                    "--image-opts",
                                    opts,
                                    "-O",
                                    "qcow2",
                                    "-o",
                                    "encrypt.format=luks,encrypt.key-secret=sec0,"
                                    "encrypt.iter-time=10",
                                    luks,
                                    NULL};
        g_assert_cmpint(bt_run(&out, &err, argv), ==, 0);
        g_assert_nonnull(strstr(err, "insecure"));
    }
    g_free(RUN(0, "qemu-io", SECRET, "--image-opts", lopts, "-c", "read -P 0x61 4096 8k",
               "-c", "read -P 0 0 4096"));
    qemu_check_clean(luks, true);
}

/* Hold an image open in qemu-io, which sleeps; returns its pid. */
static GPid qemu_io_hold(const char *path, bool rw)
{
    const char *const argv_rw[] = {"qemu-io", "-c", "sleep 20000", path, NULL};
    const char *const argv_ro[] = {"qemu-io", "-r", "-c", "sleep 20000", path, NULL};
    const char *const *argv = rw ? argv_rw : argv_ro;
    g_autoptr(GError) err = NULL;
    GPid pid;

    g_assert_true(g_spawn_async(NULL, (char **)argv, NULL,
                                G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                    G_SPAWN_STDOUT_TO_DEV_NULL |
                                    G_SPAWN_STDERR_TO_DEV_NULL,
                                NULL, NULL, &pid, &err));
    /* wait until its locks on this file's inode show in /proc/locks */
    {
        struct stat st;
        g_autofree char *needle = NULL;
        g_assert_cmpint(stat(path, &st), ==, 0);
        needle =
            g_strdup_printf(":%lu %s ", (unsigned long)st.st_ino, rw ? "201" : "100");
        for (int i = 0; i < 200; i++) {
            g_autofree char *locks = NULL;
            g_file_get_contents("/proc/locks", &locks, NULL, NULL);
            if (locks && strstr(locks, needle)) {
                break;
            }
            g_usleep(25000);
        }
    }
    return pid;
}

static void stop_process(GPid pid)
{
    int status;

    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    g_spawn_close_pid(pid);
}

static void test_locks_exclude_qemu(void)
{
    g_autofree char *path = bt_path("lock.qcow2");
    g_autofree char *opts = image_opts(path, false);
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL, *errs = NULL;
    BlockDriverState *bs;
    GPid pid;

    if (!need_qemu()) {
        return;
    }
    bt_create("qcow2", path, 1 << 20, NULL);
    /* we write: qemu-io can open neither read-write nor read-only */
    bs = bt_open(path, "qcow2", true);
    {
        const char *const argv[] = {"qemu-io", "-c", "read 0 512", path, NULL};
        g_assert_cmpint(bt_run(&out, &errs, argv), !=, 0);
        g_assert_nonnull(strstr(errs, "Failed to get \"write\" lock"));
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&errs, g_free);
    }
    {
        const char *const argv[] = {"qemu-io", "-r", "-c", "read 0 512", path, NULL};
        g_assert_cmpint(bt_run(&out, &errs, argv), !=, 0);
        g_assert_nonnull(strstr(errs, "Failed to get shared \"write\" lock"));
        g_clear_pointer(&out, g_free);
        g_clear_pointer(&errs, g_free);
    }
    /* ... unless it shares everything (-U) */
    g_free(RUN(0, "qemu-io", "-r", "-U", "-c", "read 0 512", path));
    bdrv_close(bs);

    /* qemu-io writes: we can open neither for writing nor for reading */
    pid = qemu_io_hold(path, true);
    g_assert_null(bt_open_opts(opts, BDRV_O_RDWR, &err));
    g_assert_nonnull(strstr(err->message, "Failed to get \"write\" lock"));
    g_assert_nonnull(strstr(err->message, "Is another process using the image"));
    g_clear_error(&err);
    g_assert_null(bt_open_opts(opts, 0, &err));
    g_assert_nonnull(strstr(err->message, "Failed to get shared \"write\" lock"));
    g_clear_error(&err);
    /* force-share reads and locking=off bypass the locks */
    bs = bt_open_opts(opts, BDRV_O_FORCE_SHARE, &err);
    g_assert_no_error(err);
    bdrv_close(bs);
    {
        g_autofree char *o2 = g_strdup_printf("%s,file.locking=off", opts);
        bs = bt_open_opts(o2, 0, &err);
        g_assert_no_error(err);
        bdrv_close(bs);
    }
    stop_process(pid);

    /* qemu-io reads: we may read too, but not write */
    pid = qemu_io_hold(path, false);
    g_assert_null(bt_open_opts(opts, BDRV_O_RDWR, &err));
    g_assert_nonnull(strstr(err->message, "Failed to get \"write\" lock"));
    g_clear_error(&err);
    bs = bt_open_opts(opts, 0, &err);
    g_assert_no_error(err);
    bdrv_close(bs);
    stop_process(pid);
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    bt_secret("sec0", "correct horse");
    g_test_add_func("/interop/qcow2/ours-plain-512-read-by-qemu", test_ours_plain_512);
    g_test_add_func("/interop/qcow2/ours-plain-64k-read-by-qemu", test_ours_plain_64k);
    g_test_add_func("/interop/qcow2/ours-plain-2m-read-by-qemu", test_ours_plain_2m);
    g_test_add_func("/interop/qcow2/ours-luks-512-read-by-qemu", test_ours_luks_512);
    g_test_add_func("/interop/qcow2/ours-luks-64k-read-by-qemu", test_ours_luks_64k);
    g_test_add_func("/interop/qcow2/ours-luks-2m-read-by-qemu", test_ours_luks_2m);
    g_test_add_func("/interop/qcow2/qemu-luks-read-by-ours", test_qemu_luks);
    g_test_add_func("/interop/qcow2/qemu-refcount-1-read-by-ours", test_qemu_refcount_1);
    g_test_add_func("/interop/qcow2/qemu-refcount-64-read-by-ours",
                    test_qemu_refcount_64);
    g_test_add_func("/interop/qcow2/qemu-cluster-512-read-by-ours",
                    test_qemu_cluster_512);
    g_test_add_func("/interop/qcow2/qemu-cluster-2m-read-by-ours", test_qemu_cluster_2m);
    g_test_add_func("/interop/qcow2/qemu-v2-read-by-ours", test_qemu_v2);
    g_test_add_func("/interop/qcow2/compressed-both-ways", test_qemu_compressed);
    g_test_add_func("/interop/qcow2/qemu-savevm-vmstate-read-by-ours", test_qemu_savevm);
    g_test_add_func("/interop/qcow2/snapshots-listed-and-applied-by-both",
                    test_snapshots_cross);
    g_test_add_func("/interop/tpmvm-img/output-and-exit-codes-match-qemu-img",
                    test_tool_output_matches);
    g_test_add_func("/interop/tpmvm-img/wrong-passphrase-exits-1-unchanged",
                    test_wrong_passphrase_tool);
    g_test_add_func("/interop/tpmvm-img/legacy-aes-read-only-and-converted",
                    test_legacy_aes);
    g_test_add_func("/interop/file/locks-exclude-qemu-io-both-ways",
                    test_locks_exclude_qemu);
    ret = g_test_run();
    secret_delete_all();
    bt_cleanup();
    return ret;
}
