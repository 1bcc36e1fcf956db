/*
 * Interop: tpmvm's VM snapshots seen by QEMU's tools. After 100 cycles of
 * savevm / loadvm / delvm on one TPM image (LUKS-encrypted, and plain),
 * qemu-img check finds no errors and no leaks, and qemu-img snapshot -l /
 * info list exactly the live snapshots with their VM state size (and a blank
 * ICOUNT, as for a savevm of QEMU's system emulator); tpmvm-img agrees.
 */
#include <string.h>

#include "snapshot-util.h"

#define CYCLES 100
#define KEEP_EVERY 25

static void check_with_qemu_img(SnapEnv *env, bool luks)
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
    for (unsigned n = KEEP_EVERY; n <= CYCLES; n += KEEP_EVERY) {
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

static void run_cycles(bool luks)
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
    for (unsigned n = 1; n <= CYCLES; n++) {
        g_autofree uint8_t *pcr = NULL;
        g_autofree uint8_t *back = NULL;

        tpm2_extend(qts, 16, (uint8_t)n);
        pcr = tpm2_pcr_read(qts, 16);
        snap_hmp_ok(qts, "savevm c%u", n);
        tpm2_extend(qts, 16, 0xee);
        snap_hmp_ok(qts, "loadvm c%u", n);
        back = tpm2_pcr_read(qts, 16);
        g_assert_cmpmem(back, 32, pcr, 32);
        /* keep c25, c50, c75 and c100 */
        if (n > 1 && (n - 1) % KEEP_EVERY != 0) {
            snap_hmp_ok(qts, "delvm c%u", n - 1);
        }
    }
    snap_quit(qts);
    check_with_qemu_img(env, luks);
    snap_env_free(env);
}

static void test_cycles_luks(void)
{
    run_cycles(true);
}

static void test_cycles_plain(void)
{
    run_cycles(false);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot/interop/100-cycles-on-luks-image-pass-qemu-img-check",
                    test_cycles_luks);
    g_test_add_func("/snapshot/interop/100-cycles-on-plain-image-pass-qemu-img-check",
                    test_cycles_plain);
    return g_test_run();
}
