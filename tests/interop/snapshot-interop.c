/*
 * Interop of tpmvm's VM snapshots with QEMU.
 *
 * After 100 cycles of savevm / loadvm / delvm on one LUKS-encrypted TPM image
 * (and 40 on a plain one), qemu-img check finds no errors and no leaks, and
 * qemu-img snapshot -l / info list exactly the live snapshots with their VM
 * state size (and a blank ICOUNT, as for a savevm of QEMU's system
 * emulator); tpmvm-img agrees.
 *
 * A snapshot that QEMU's system emulator saved with its own device state is
 * listed like any other, but loadvm refuses its VM state with a clear
 * message and leaves the VM, the TPM and the drives as they were.
 */
#include <string.h>

#include "snapshot-util.h"

static void check_with_qemu_img(SnapEnv *env, bool luks, unsigned cycles,
                                unsigned keep_every)
{
    g_autofree char *opts = snap_image_opts(env, "tpm.qcow2", luks);
    g_autofree char *out = NULL;
    g_autofree char *list = NULL;
    g_autofree char *json = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonArray *sns;
    GError *err = NULL;
    unsigned rows = 0;

    if (snap_qemu_img(env, &out, "check %s", opts) != 0) {
        g_error("qemu-img check: %s", out);
    }
    g_assert_nonnull(strstr(out, "No errors were found on the image."));
    g_assert_null(strstr(out, "leak"));

    g_assert_cmpint(snap_qemu_img(env, &list, "snapshot -l %s", opts), ==, 0);
    g_test_message("%s", list);
    /* tpmvm-img agrees with qemu-img, line for line */
    {
        g_autofree char *ours = NULL;
        g_assert_cmpint(snap_tpmvm_img(env, &ours, "snapshot -l %s", opts), ==, 0);
        g_assert_cmpstr(ours, ==, list);
    }
    snap_assert_image_clean(env, "tpm.qcow2", luks);
    g_assert_nonnull(strstr(
        list, "ID        TAG               VM SIZE                DATE     VM CLOCK"));
    for (unsigned n = keep_every; n <= cycles; n += keep_every) {
        g_autofree char *re = g_strdup_printf(
            "\\n[0-9]+ +c%u +[0-9.]+ KiB 20[0-9-]+ [0-9:]+ +[0-9:.]+ *\\n", n);
        if (!g_regex_match_simple(re, list, 0, 0)) {
            g_error("qemu-img snapshot -l does not list c%u with its VM state:\n%s", n,
                    list);
        }
        rows++;
    }

    g_assert_cmpint(snap_qemu_img(env, &json, "info --output=json %s", opts), ==, 0);
    g_assert_true(json_parser_load_from_data(parser, json, -1, &err));
    g_assert_no_error(err);
    sns = json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)),
                                       "snapshots");
    g_assert_cmpuint(json_array_get_length(sns), ==, rows);
    for (guint i = 0; i < json_array_get_length(sns); i++) {
        JsonObject *sn = json_array_get_object_element(sns, i);
        g_assert_true(g_str_has_prefix(json_object_get_string_member(sn, "name"), "c"));
        g_assert_cmpint(json_object_get_int_member(sn, "vm-state-size"), >, 4096);
        g_assert_false(json_object_has_member(sn, "icount"));
    }
}

/* `cycles` rounds; snapshots c<keep_every>, c<2*keep_every>... stay. */
static void run_cycles(bool luks, unsigned cycles, unsigned keep_every)
{
    SnapEnv *env = snap_env_new();
    g_autofree char *args = NULL;
    QTestState *qts;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", luks, 16);
    args = snap_tpm_args(env, "tpm.qcow2", luks, NULL);
    qts = qtest_init(args);
    tis_claim(qts);
    tpm2_startup(qts);
    for (unsigned n = 1; n <= cycles; n++) {
        g_autofree uint8_t *pcr = NULL;
        g_autofree uint8_t *back = NULL;

        tpm2_extend(qts, 16, (uint8_t)n);
        pcr = tpm2_pcr_read(qts, 16);
        snap_hmp_ok(qts, "savevm c%u", n);
        tpm2_extend(qts, 16, 0xee);
        snap_hmp_ok(qts, "loadvm c%u", n);
        back = tpm2_pcr_read(qts, 16);
        g_assert_cmpmem(back, 32, pcr, 32);
        if (n > 1 && (n - 1) % keep_every != 0) {
            snap_hmp_ok(qts, "delvm c%u", n - 1);
        }
    }
    snap_quit(qts);
    check_with_qemu_img(env, luks, cycles, keep_every);
    snap_env_free(env);
}

static void test_cycles_luks(void)
{
    run_cycles(true, 100, 25);
}

static void test_cycles_plain(void)
{
    /* the plain image only adds coverage of the unencrypted path: fewer rounds */
    run_cycles(false, 40, 10);
}

/* QEMU 7.2 savevm of a paused VM on the plain image `path` (tag "qemu1"). */
static bool qemu_savevm(const char *path)
{
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
    g_autofree char *drive = g_strdup_printf("if=none,id=d0,file=%s,format=qcow2", path);
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    GSubprocess *proc;
    GError *error = NULL;
    bool ok;

    if (!qemu) {
        return false;
    }
    proc =
        g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                             G_SUBPROCESS_FLAGS_STDERR_PIPE,
                         &error, qemu, "-machine", "pc", "-m", "32", "-S", "-nodefaults",
                         "-display", "none", "-monitor", "stdio", "-drive", drive, NULL);
    g_assert_no_error(error);
    ok = g_subprocess_communicate_utf8(proc, "savevm qemu1\nquit\n", NULL, &out, &err,
                                       &error);
    g_assert_no_error(error);
    g_assert_true(ok);
    g_assert_true(g_subprocess_get_successful(proc));
    g_object_unref(proc);
    return true;
}

static void test_qemu_vmstate_is_refused(void)
{
    SnapEnv *env = snap_env_new();
    g_autofree char *data = NULL;
    g_autofree char *args = NULL;
    g_autofree char *err = NULL;
    g_autofree char *info = NULL;
    g_autofree char *opts = NULL;
    g_autofree char *out = NULL;
    g_autofree uint8_t *pcr_before = NULL;
    g_autofree uint8_t *pcr_after = NULL;
    QTestState *qts;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    snap_image_create(env, "data.qcow2", false, 16);
    data = snap_env_path(env, "data.qcow2");
    if (!qemu_savevm(data)) {
        g_test_skip("qemu-system-x86_64 is not installed (package qemu-system-x86)");
        snap_env_free(env);
        return;
    }
    /* The TPM drive gets the tag offline, so that both drives have it. */
    opts = snap_image_opts(env, "tpm.qcow2", false);
    g_assert_cmpint(snap_qemu_img(env, &out, "snapshot %s -c qemu1", opts), ==, 0);

    args = snap_tpm_args(env, "tpm.qcow2", false, NULL);
    qts = qtest_initf("%s -drive if=none,id=data,file=%s,format=qcow2", args, data);
    info = qtest_hmp(qts, "info snapshots");
    g_assert_nonnull(strstr(info, "--        qemu1 "));
    tis_claim(qts);
    tpm2_startup(qts);
    tpm2_extend(qts, 16, 0x77);
    pcr_before = tpm2_pcr_read(qts, 16);

    err = snap_hmp_err(qts, "loadvm qemu1");
    g_test_message("%s", err);
    g_assert_nonnull(strstr(err, "not a tpmvm VM state"));
    g_assert_nonnull(strstr(err, "left as they were"));
    pcr_after = tpm2_pcr_read(qts, 16);
    g_assert_cmpmem(pcr_before, 32, pcr_after, 32);
    g_clear_pointer(&info, g_free);
    info = qtest_hmp(qts, "info snapshots");
    g_assert_nonnull(strstr(info, "--        qemu1 "));
    g_assert_null(strstr(info, "undo"));
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", false);
    snap_assert_image_clean(env, "data.qcow2", false);
    snap_env_free(env);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot/interop/100-cycles-on-luks-image-pass-qemu-img-check",
                    test_cycles_luks);
    g_test_add_func("/snapshot/interop/40-cycles-on-plain-image-pass-qemu-img-check",
                    test_cycles_plain);
    g_test_add_func("/snapshot/interop/qemu-savevm-state-is-refused-and-changes-nothing",
                    test_qemu_vmstate_is_refused);
    return g_test_run();
}
