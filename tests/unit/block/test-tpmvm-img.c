/*
 * tpmvm-img as a program: every command, its texts and its exit codes
 * (qemu-img's), and images left untouched when a command fails.
 */
#include <string.h>
#include <unistd.h>

#include "block-test.h"

#define SECRET "--object", "secret,id=sec0,file=%PW%"

static char *pwfile;

/* Run tpmvm-img with args (%PW% is replaced); check the exit code. */
static char *img(int want_rc, char **err_out, const char *const *args)
{
    GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
    char *out = NULL, *err = NULL;
    int rc;

    g_ptr_array_add(argv, g_strdup(bt_img_tool()));
    for (int i = 0; args[i]; i++) {
        g_autofree char *a = g_strdup(args[i]);
        char *p = strstr(a, "%PW%");
        if (p) {
            *p = '\0';
            g_ptr_array_add(argv, g_strconcat(a, pwfile, p + 4, NULL));
        } else {
            g_ptr_array_add(argv, g_strdup(a));
        }
    }
    g_ptr_array_add(argv, NULL);
    rc = bt_run(&out, &err, (const char *const *)argv->pdata);
    if (rc != want_rc) {
        g_autofree char *cmd = g_strjoinv(" ", (char **)argv->pdata);
        g_error("'%s' exited %d, expected %d\n%s%s", cmd, rc, want_rc, out, err);
    }
    g_ptr_array_unref(argv);
    if (err_out) {
        *err_out = err;
    } else {
        g_clear_pointer(&err, g_free);
    }
    return out;
}

#define IMG(rc, err, ...) img(rc, err, (const char *const[]){__VA_ARGS__, NULL})

static void test_create_info_check(void)
{
    g_autofree char *path = bt_path("t.qcow2");
    g_autofree char *out = NULL, *err = NULL;

    out = IMG(0, NULL, "create", "-f", "qcow2", "-o", "cluster_size=4k,refcount_bits=8",
              path, "10M");
    g_assert_nonnull(strstr(out, "fmt=qcow2 cluster_size=4096 extended_l2=off "
                                 "compression_type=zlib size=10485760 lazy_refcounts=off "
                                 "refcount_bits=8"));
    g_clear_pointer(&out, g_free);
    out = IMG(0, NULL, "info", path);
    g_assert_nonnull(strstr(out, "virtual size: 10 MiB (10485760 bytes)"));
    g_assert_nonnull(strstr(out, "cluster_size: 4096"));
    g_assert_nonnull(strstr(out, "    refcount bits: 8\n"));
    g_clear_pointer(&out, g_free);
    out = IMG(0, NULL, "info", "--output=json", path);
    g_assert_nonnull(strstr(out, "\"virtual-size\": 10485760"));
    g_assert_nonnull(strstr(out, "\"dirty-flag\": false"));
    g_clear_pointer(&out, g_free);
    out = IMG(0, NULL, "check", path);
    g_assert_nonnull(strstr(out, "No errors were found on the image."));
    g_clear_pointer(&out, g_free);
    out = IMG(1, &err, "create", "-f", "qcow2", path);
    g_assert_nonnull(strstr(err, "Image creation needs a size parameter"));
    g_clear_pointer(&err, g_free);
    g_clear_pointer(&out, g_free);
    out = IMG(1, &err, "create", "-f", "qcow2", "-o", "cluster_size=3000", path, "1M");
    g_assert_nonnull(strstr(err, "Cluster size must be a power of two"));
    g_clear_pointer(&err, g_free);
    g_clear_pointer(&out, g_free);
    out = IMG(1, &err, "create", "-f", "qcow2", path, "-5");
    g_clear_pointer(&err, g_free);
    g_clear_pointer(&out, g_free);
    out = IMG(1, &err, "info", "--output=xml", path);
    g_clear_pointer(&err, g_free);
    g_clear_pointer(&out, g_free);
    out = IMG(1, &err, "frobnicate");
    g_assert_nonnull(strstr(err, "Command not found: frobnicate"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    out = IMG(1, &err, "info", "/nonexistent/x.qcow2");
    g_assert_nonnull(strstr(err, "Could not open '/nonexistent/x.qcow2'"));
}

static void test_snapshot_commands(void)
{
    g_autofree char *path = bt_path("s.qcow2");
    g_autofree char *out = NULL, *err = NULL;
    BlockDriverState *bs;

    g_free(IMG(0, NULL, "create", "-q", "-f", "qcow2", path, "1M"));
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 8192, 1);
    bdrv_close(bs);
    out = IMG(0, NULL, "snapshot", "-l", path);
    g_assert_cmpstr(out, ==, "");
    g_clear_pointer(&out, g_free);
    g_free(IMG(0, NULL, "snapshot", "-c", "first", path));
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 8192, 2);
    bdrv_close(bs);
    out = IMG(0, NULL, "snapshot", "-l", path);
    g_assert_true(
        g_str_has_prefix(out, "Snapshot list:\nID        TAG               VM SIZE"));
    g_assert_nonnull(strstr(out, "\n1         first                 0 B "));
    g_clear_pointer(&out, g_free);
    g_free(IMG(0, NULL, "snapshot", "-a", "first", path));
    bs = bt_open(path, "qcow2", false);
    bt_check_pattern(bs, 0, 8192, 1);
    bdrv_close(bs);
    out = IMG(1, &err, "snapshot", "-d", "1", path); /* by name only, like qemu-img */
    g_assert_nonnull(strstr(err, "Could not delete snapshot '1'"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    out = IMG(1, &err, "snapshot", "-a", "nothere", path);
    g_assert_nonnull(strstr(err, "Could not apply snapshot 'nothere'"));
    g_clear_pointer(&out, g_free);
    g_free(IMG(0, NULL, "snapshot", "-d", "first", path));
    out = IMG(0, NULL, "snapshot", "-l", path);
    g_assert_cmpstr(out, ==, "");
}

static void test_convert_round_trip(void)
{
    g_autofree char *raw = bt_path("c.raw");
    g_autofree char *q = bt_path("c.qcow2");
    g_autofree char *l = bt_path("c-luks.qcow2");
    g_autofree char *z = bt_path("c-comp.qcow2");
    g_autofree char *back = bt_path("c-back.raw");
    g_autofree char *lopts = g_strdup_printf("driver=qcow2,file.filename=%s,"
                                             "encrypt.key-secret=sec0",
                                             l);
    g_autofree uint8_t *data = g_malloc0(3 << 20);
    g_autofree char *a = NULL, *b = NULL;
    gsize la, lb;

    bt_fill(data + 12345, 12345, 1 << 20, 5);
    memset(data + (2 << 20), 'x', 300000);
    bt_write_file(raw, data, 3 << 20);
    g_free(IMG(0, NULL, "convert", "-f", "raw", "-O", "qcow2", raw, q));
    g_free(IMG(0, NULL, "convert", "-O", "qcow2", SECRET, "-o",
               "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", q, l));
    g_free(
        IMG(0, NULL, "convert", "-c", "-O", "qcow2", SECRET, "--image-opts", lopts, z));
    g_free(IMG(0, NULL, "convert", "-O", "raw", z, back));
    g_assert_true(g_file_get_contents(raw, &a, &la, NULL));
    g_assert_true(g_file_get_contents(back, &b, &lb, NULL));
    g_assert_cmpuint(la, ==, lb);
    g_assert_true(memcmp(a, b, la) == 0);
    g_free(IMG(0, NULL, "check", z));
    g_free(IMG(0, NULL, "check", SECRET, "--image-opts", lopts));
    g_free(IMG(1, NULL, "convert", "-c", "-O", "qcow2", SECRET, "-o",
               "encrypt.format=luks,encrypt.key-secret=sec0", q, z));
}

static void test_resize_and_amend(void)
{
    g_autofree char *path = bt_path("r.qcow2");
    g_autofree char *opts = g_strdup_printf("driver=qcow2,file.filename=%s,"
                                            "encrypt.key-secret=sec0",
                                            path);
    g_autofree char *before = NULL, *after = NULL;
    g_autofree char *out = NULL, *err = NULL;

    g_free(IMG(0, NULL, "create", "-q", "-f", "qcow2", SECRET, "-o",
               "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10", path,
               "1M"));
    out = IMG(0, NULL, "resize", SECRET, "--image-opts", opts, "+3M");
    g_assert_cmpstr(out, ==, "Image resized.\n");
    g_clear_pointer(&out, g_free);
    out = IMG(0, NULL, "info", "--output=json", path);
    g_assert_nonnull(strstr(out, "\"virtual-size\": 4194304"));
    g_clear_pointer(&out, g_free);
    out = IMG(1, &err, "resize", SECRET, "--image-opts", opts, "1M");
    g_assert_nonnull(strstr(err, "--shrink"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    out = IMG(0, NULL, "amend", SECRET, "--object", "secret,id=sec1,data=other",
              "--image-opts", opts, "-o",
              "encrypt.state=active,encrypt.new-secret=sec1,encrypt.iter-time=10");
    g_clear_pointer(&out, g_free);
    out = IMG(0, NULL, "info", path);
    g_assert_nonnull(strstr(out, "            [1]:\n                active: true\n"));
    g_clear_pointer(&out, g_free);
    /* failures leave the image as it was */
    before = bt_file_hash(path);
    out = IMG(1, &err, "amend", SECRET, "--image-opts", opts, "-o", "cluster_size=512");
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    out = IMG(1, &err, "resize", "--object", "secret,id=sec0,data=wrong", "--image-opts",
              opts, "+1M");
    g_assert_nonnull(strstr(err, "Invalid password"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    out = IMG(1, &err, "check", path);
    g_assert_nonnull(
        strstr(err, "Parameter 'encrypt.key-secret' is required for cipher"));
    after = bt_file_hash(path);
    g_assert_cmpstr(before, ==, after);
}

static void test_check_repair(void)
{
    g_autofree char *path = bt_path("rep.qcow2");
    g_autofree char *out = NULL, *err = NULL;
    BlockDriverState *bs;

    g_free(IMG(0, NULL, "create", "-q", "-f", "qcow2", path, "1M"));
    bs = bt_open(path, "qcow2", true);
    bt_write_pattern(bs, 0, 65536, 1);
    bdrv_close(bs);
    g_assert_cmpint(truncate(path, 8 * 65536), ==, 0);
    bt_patch_be16(path, 2 * 65536 + 2 * 7, 1);
    out = IMG(3, &err, "check", path);
    g_assert_nonnull(strstr(out, "1 leaked clusters were found on the image."));
    g_assert_nonnull(strstr(err, "Leaked cluster 7 refcount=1 reference=0"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    out = IMG(0, NULL, "check", "-r", "leaks", path);
    g_assert_nonnull(strstr(out,
                            "The following inconsistencies were found and repaired:\n\n"
                            "    1 leaked clusters\n    0 corruptions\n"));
    g_assert_nonnull(strstr(out, "No errors were found on the image."));
    g_clear_pointer(&out, g_free);
    out = IMG(0, NULL, "check", "-q", path);
    g_assert_cmpstr(out, ==, "");
}

int main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    pwfile = bt_path("pw.txt");
    bt_write_file(pwfile, "tool pass", 9);
    g_test_add_func("/tpmvm-img/create-info-check-and-errors", test_create_info_check);
    g_test_add_func("/tpmvm-img/snapshot-list-create-apply-delete",
                    test_snapshot_commands);
    g_test_add_func("/tpmvm-img/convert-plain-luks-compressed-round-trip",
                    test_convert_round_trip);
    g_test_add_func("/tpmvm-img/resize-and-amend-failures-leave-image",
                    test_resize_and_amend);
    g_test_add_func("/tpmvm-img/check-reports-and-repairs-leaks", test_check_repair);
    ret = g_test_run();
    g_free(pwfile);
    bt_cleanup();
    return ret;
}
