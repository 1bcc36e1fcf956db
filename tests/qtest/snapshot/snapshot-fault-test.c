/*
 * Snapshots that cannot be loaded or cannot be consistent: a missing tag, a
 * truncated VM state, one from a newer format, a TPM blob that fails its
 * check, a damaged state; drives that are not qcow2, read-only drives,
 * tags that exist on some drives only, and a second drive that cannot revert
 * after the first one did. Every failure must leave the VM, its
 * TPM and its drives as they were.
 *
 * The VM state is damaged directly in the image file, which needs a plain
 * (unencrypted) image: in a LUKS image it is ciphertext.
 */
#include <string.h>
#include <unistd.h>

#include "snapshot-util.h"

#define NV_LEN 8

static const uint8_t nv_a[NV_LEN] = "state-A";
static const uint8_t nv_b[NV_LEN] = "state-B";

typedef struct Fixture {
    SnapEnv *env;
    char *image; /* path of tpm.qcow2 */
    QTestState *qts;
    uint8_t pcr_now[32]; /* PCR 16 after the snapshot */
} Fixture;

static QTestState *fixture_start(Fixture *f, const char *extra)
{
    g_autofree char *args = snap_tpm_args(f->env, "tpm.qcow2", false, NULL);

    return qtest_initf("%s %s", args, extra ? extra : "");
}

/*
 * A plain TPM image with snapshot A (NV = "state-A"), then a VM that moved on
 * (NV = "state-B", PCR 16 extended again) with A damaged by `damage` while
 * no process had the image open.
 */
static bool fixture_setup(Fixture *f, void (*damage)(Fixture *f))
{
    g_autofree uint8_t *pcr = NULL;

    memset(f, 0, sizeof(*f));
    f->env = snap_env_new();
    if (!f->env) {
        return false;
    }
    snap_image_create(f->env, "tpm.qcow2", false, 16);
    f->image = snap_env_path(f->env, "tpm.qcow2");
    f->qts = fixture_start(f, NULL);
    tis_claim(f->qts);
    tpm2_startup(f->qts);
    tpm2_extend(f->qts, 16, 0xa1);
    tpm2_nv_define(f->qts, NV_LEN);
    tpm2_nv_write(f->qts, nv_a, NV_LEN);
    snap_hmp_ok(f->qts, "savevm A");
    snap_quit(f->qts);
    if (damage) {
        damage(f);
    }
    f->qts = fixture_start(f, NULL);
    tis_claim(f->qts);
    tpm2_startup(f->qts);
    tpm2_extend(f->qts, 16, 0xb2);
    tpm2_nv_write(f->qts, nv_b, NV_LEN);
    pcr = tpm2_pcr_read(f->qts, 16);
    memcpy(f->pcr_now, pcr, 32);
    return true;
}

/* The VM, its TPM and its drive are as they were before the failed loadvm. */
static void assert_unchanged(Fixture *f)
{
    g_autofree uint8_t *pcr = tpm2_pcr_read(f->qts, 16);
    g_autofree uint8_t *nv = tpm2_nv_read(f->qts, NV_LEN);
    g_autofree char *status = snap_status(f->qts);
    g_autofree char *info = qtest_hmp(f->qts, "info snapshots");

    g_assert_cmpmem(pcr, 32, f->pcr_now, 32);
    g_assert_cmpmem(nv, NV_LEN, nv_b, NV_LEN);
    g_assert_cmpstr(status, ==, "running");
    /* A is still there, and no temporary undo snapshot was left behind */
    g_assert_nonnull(strstr(info, " A "));
    g_assert_null(strstr(info, "undo"));
    /* the TPM still works */
    tpm2_extend(f->qts, 16, 0xc3);
}

static void fixture_teardown(Fixture *f)
{
    snap_quit(f->qts);
    snap_assert_image_clean(f->env, "tpm.qcow2", false);
    g_free(f->image);
    snap_env_free(f->env);
}

/* Fail loading A with an error that contains `expect`. */
static void check_load_refused(void (*damage)(Fixture *f), const char *expect)
{
    Fixture f;
    g_autofree char *err = NULL;

    if (!fixture_setup(&f, damage)) {
        return;
    }
    err = snap_hmp_err(f.qts, "loadvm A");
    g_test_message("loadvm A: %s", err);
    if (!strstr(err, expect)) {
        g_error("loadvm A failed with '%s', expected a message containing '%s'", err,
                expect);
    }
    g_assert_nonnull(strstr(err, "left as they were"));
    assert_unchanged(&f);
    fixture_teardown(&f);
}

static void test_missing_tag(void)
{
    Fixture f;
    g_autofree char *err = NULL;

    if (!fixture_setup(&f, NULL)) {
        return;
    }
    err = snap_hmp_err(f.qts, "loadvm nosuchtag");
    g_assert_nonnull(strstr(err, "'nosuchtag' does not exist"));
    assert_unchanged(&f);
    fixture_teardown(&f);
}

static void damage_truncate(Fixture *f)
{
    g_autoptr(GByteArray) vm = qcow2_read_vmstate(f->image, "A");

    g_assert_nonnull(vm);
    qcow2_set_vm_state_size(f->image, "A", vm->len - 100);
}

static void test_truncated_vmstate(void)
{
    check_load_refused(damage_truncate, "truncated");
}

static void damage_header_version(Fixture *f)
{
    g_autoptr(GByteArray) vm = qcow2_read_vmstate(f->image, "A");

    vm->data[7] = 2; /* header format version 2 */
    qcow2_write_vmstate(f->image, "A", vm);
}

static void test_newer_header_format(void)
{
    check_load_refused(damage_header_version, "format version 2");
}

static void damage_stream_version(Fixture *f)
{
    g_autoptr(GByteArray) vm = qcow2_read_vmstate(f->image, "A");

    g_assert_cmpmem(vm->data + 24, 4, "TPVM", 4);
    vm->data[24 + 7] = 9; /* vmstate stream version 9 */
    snap_vmstate_fix_crc(vm);
    qcow2_write_vmstate(f->image, "A", vm);
}

static void test_newer_stream_format(void)
{
    check_load_refused(damage_stream_version, "stream version 9");
}

static void damage_section_version(Fixture *f)
{
    g_autoptr(GByteArray) vm = qcow2_read_vmstate(f->image, "A");
    uint64_t len, vpos;

    g_assert_cmpint(snap_vmstate_find_section(vm, "tpm-builtin", &len, &vpos), >, 0);
    vm->data[vpos + 3] = 77; /* section version 77 */
    snap_vmstate_fix_crc(vm);
    qcow2_write_vmstate(f->image, "A", vm);
}

static void test_newer_section_version(void)
{
    check_load_refused(damage_section_version, "newer");
}

static void damage_tpm_blob(Fixture *f)
{
    g_autoptr(GByteArray) vm = qcow2_read_vmstate(f->image, "A");
    uint64_t len, vpos, perm_len;
    int64_t pos = snap_vmstate_find_section(vm, "tpm-builtin", &len, &vpos);

    /* payload: 4-byte header, then u32 length + bytes of permall */
    g_assert_cmpint(pos, >, 0);
    perm_len = (uint64_t)vm->data[pos + 4] << 24 | vm->data[pos + 5] << 16 |
               vm->data[pos + 6] << 8 | vm->data[pos + 7];
    g_assert_cmpuint(perm_len, >, 64);
    vm->data[pos + 8 + perm_len / 2] ^= 0x5a;
    snap_vmstate_fix_crc(vm);
    qcow2_write_vmstate(f->image, "A", vm);
}

static void test_tpm_blob_fails_check(void)
{
    check_load_refused(damage_tpm_blob, "tpm-builtin");
}

static void damage_flip_byte(Fixture *f)
{
    g_autoptr(GByteArray) vm = qcow2_read_vmstate(f->image, "A");

    vm->data[vm->len - 3] ^= 0x01;
    qcow2_write_vmstate(f->image, "A", vm);
}

static void test_damaged_vmstate(void)
{
    check_load_refused(damage_flip_byte, "CRC-32");
}

/* ---- drives that make a snapshot inconsistent ---- */

static void test_refuses_raw_drive(void)
{
    SnapEnv *env = snap_env_new();
    g_autofree char *raw = NULL;
    g_autofree char *err = NULL;
    g_autofree char *info = NULL;
    QTestState *qts;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    raw = snap_env_path(env, "data.raw");
    g_assert_true(g_file_set_contents(raw, "", 0, NULL));
    g_assert_cmpint(truncate(raw, 1 << 20), ==, 0);
    {
        g_autofree char *args = snap_tpm_args(env, "tpm.qcow2", false, NULL);
        qts = qtest_initf("%s -drive if=none,id=data,file=%s,format=raw", args, raw);
    }
    err = snap_hmp_err(qts, "savevm A");
    g_assert_nonnull(strstr(err, "drive 'data'"));
    g_assert_nonnull(strstr(err, "'raw'"));
    /* nothing was created on the qcow2 drive either */
    info = qtest_hmp(qts, "info snapshots");
    g_assert_nonnull(strstr(info, "There is no snapshot available."));
    /* the QMP job can leave the raw drive out */
    qtest_qmp_assert_success(qts,
                             "{'execute': 'snapshot-save', 'arguments': {'job-id': 'j1', "
                             "'tag': 'A', 'vmstate': 'tpmnv', 'devices': ['tpmnv']}}");
    {
        JsonObject *ev;
        for (;;) {
            ev = qtest_qmp_eventwait_ref(qts, "JOB_STATUS_CHANGE");
            JsonObject *data = json_object_get_object_member(ev, "data");
            bool done =
                g_str_equal(json_object_get_string_member(data, "status"), "concluded");
            json_object_unref(ev);
            if (done) {
                break;
            }
        }
    }
    {
        JsonObject *rsp = qtest_qmp(qts, "{'execute': 'query-jobs'}");
        JsonArray *jobs = json_object_get_array_member(rsp, "return");
        JsonObject *job = json_array_get_object_element(jobs, 0);
        g_assert_false(json_object_has_member(job, "error"));
        json_object_unref(rsp);
    }
    snap_quit(qts);
    snap_env_free(env);
}

static void test_refuses_read_only_drive(void)
{
    SnapEnv *env = snap_env_new();
    g_autofree char *ro = NULL;
    g_autofree char *err = NULL;
    QTestState *qts;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    snap_image_create(env, "ro.qcow2", false, 16);
    ro = snap_env_path(env, "ro.qcow2");
    {
        g_autofree char *args = snap_tpm_args(env, "tpm.qcow2", false, NULL);
        qts = qtest_initf("%s -drive if=none,id=ro,file=%s,format=qcow2,readonly=on",
                          args, ro);
    }
    err = snap_hmp_err(qts, "savevm A");
    g_assert_nonnull(strstr(err, "drive 'ro'"));
    g_assert_nonnull(strstr(err, "read-only"));
    snap_quit(qts);
    snap_env_free(env);
}

static void test_refuses_partial_tag(void)
{
    SnapEnv *env = snap_env_new();
    g_autofree char *d1 = NULL;
    g_autofree char *opts = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *info = NULL;
    g_autofree uint8_t *pcr_before = NULL;
    g_autofree uint8_t *pcr_after = NULL;
    QTestState *qts;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    snap_image_create(env, "d1.qcow2", false, 16);
    d1 = snap_env_path(env, "d1.qcow2");
    opts = snap_image_opts(env, "d1.qcow2", false);
    g_assert_cmpint(snap_qemu_img(env, &out, "snapshot %s -c X", opts), ==, 0);
    {
        g_autofree char *args = snap_tpm_args(env, "tpm.qcow2", false, NULL);
        qts = qtest_initf("%s -drive if=none,id=d1,file=%s,format=qcow2", args, d1);
    }
    tis_claim(qts);
    tpm2_startup(qts);
    tpm2_extend(qts, 16, 0x11);
    pcr_before = tpm2_pcr_read(qts, 16);

    err = snap_hmp_err(qts, "loadvm X");
    g_assert_nonnull(strstr(err, "exists on drive 'd1'"));
    g_assert_nonnull(strstr(err, "not on drive 'tpmnv'"));
    g_clear_pointer(&err, g_free);
    err = snap_hmp_err(qts, "savevm X");
    g_assert_nonnull(strstr(err, "not a consistent VM snapshot"));
    pcr_after = tpm2_pcr_read(qts, 16);
    g_assert_cmpmem(pcr_before, 32, pcr_after, 32);

    info = qtest_hmp(qts, "info snapshots");
    g_assert_nonnull(strstr(info, "List of partial (non-loadable) snapshots on 'd1'"));
    snap_hmp_ok(qts, "delvm X");
    g_clear_pointer(&info, g_free);
    info = qtest_hmp(qts, "info snapshots");
    g_assert_nonnull(strstr(info, "There is no snapshot available."));
    snap_quit(qts);
    snap_env_free(env);
}

/* Run a snapshot job by QMP and wait until it concluded; dismiss it. */
static void run_job(QTestState *qts, const char *cmd, const char *id)
{
    g_autofree char *statuses = NULL;

    qtest_qmp_assert_success(qts, "%s", cmd);
    statuses = snap_job_statuses(qts, id, "concluded");
    g_assert_cmpstr(statuses, ==, "created,running,waiting,pending,concluded");
    qtest_qmp_assert_success(qts, "{'execute': 'job-dismiss', 'arguments': {'id': '%s'}}",
                             id);
}

/*
 * Two drives: the TPM's, then one with 1-bit refcounts whose snapshot A
 * holds the VM state in clusters only A uses. A drive with 1-bit refcounts
 * cannot give the active image a second user of those clusters, so its
 * revert fails after the TPM drive's revert was prepared: that one must be
 * put back, and the VM and its TPM must not change.
 */
static void test_second_drive_revert_fails(void)
{
    SnapEnv *env = snap_env_new();
    g_autofree char *data = NULL;
    g_autofree char *args = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *status = NULL;
    g_autofree uint8_t *pcr_b = NULL;
    g_autofree uint8_t *pcr = NULL;
    g_autofree uint8_t *nv = NULL;
    QTestState *qts;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    data = snap_env_path(env, "data.qcow2");
    g_assert_cmpint(
        snap_tpmvm_img(env, &out, "create -q -f qcow2 -o refcount_bits=1 %s 4M", data),
        ==, 0);
    args = snap_tpm_args(env, "tpm.qcow2", false, NULL);
    qts = qtest_initf("%s -drive if=none,id=data,file=%s,format=qcow2", args, data);
    tis_claim(qts);
    tpm2_startup(qts);
    tpm2_extend(qts, 16, 0xa1);
    tpm2_nv_define(qts, NV_LEN);
    tpm2_nv_write(qts, nv_a, NV_LEN);
    run_job(qts,
            "{'execute': 'snapshot-save', 'arguments': {'job-id': 's', 'tag': 'A', "
            "'vmstate': 'data', 'devices': ['tpmnv', 'data']}}",
            "s");
    tpm2_extend(qts, 16, 0xb2);
    tpm2_nv_write(qts, nv_b, NV_LEN);
    pcr_b = tpm2_pcr_read(qts, 16);

    err = snap_hmp_err(qts, "loadvm A");
    g_test_message("loadvm A: %s", err);
    g_assert_nonnull(strstr(err, "drive 'data'"));
    g_assert_nonnull(strstr(err, "refcount_bits=1"));
    g_assert_nonnull(strstr(err, "left as they were"));
    pcr = tpm2_pcr_read(qts, 16);
    nv = tpm2_nv_read(qts, NV_LEN);
    status = snap_status(qts);
    g_assert_cmpmem(pcr, 32, pcr_b, 32);
    g_assert_cmpmem(nv, NV_LEN, nv_b, NV_LEN);
    g_assert_cmpstr(status, ==, "running");
    tpm2_extend(qts, 16, 0xc3);
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", false);
    snap_assert_image_clean(env, "data.qcow2", false);

    /* The TPM drive itself was put back: a fresh start reads NV as it was. */
    qts = qtest_initf("%s -drive if=none,id=data,file=%s,format=qcow2", args, data);
    tis_claim(qts);
    tpm2_startup(qts);
    g_clear_pointer(&nv, g_free);
    nv = tpm2_nv_read(qts, NV_LEN);
    g_assert_cmpmem(nv, NV_LEN, nv_b, NV_LEN);
    snap_quit(qts);
    snap_env_free(env);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot/bad-input/loadvm-of-a-missing-tag-changes-nothing",
                    test_missing_tag);
    g_test_add_func("/snapshot/bad-input/truncated-vmstate-is-refused",
                    test_truncated_vmstate);
    g_test_add_func("/snapshot/bad-input/newer-header-format-is-refused",
                    test_newer_header_format);
    g_test_add_func("/snapshot/bad-input/newer-stream-format-is-refused",
                    test_newer_stream_format);
    g_test_add_func("/snapshot/bad-input/newer-section-version-is-refused",
                    test_newer_section_version);
    g_test_add_func("/snapshot/bad-input/tpm-blob-failing-its-check-is-refused",
                    test_tpm_blob_fails_check);
    g_test_add_func("/snapshot/bad-input/damaged-vmstate-fails-its-crc",
                    test_damaged_vmstate);
    g_test_add_func("/snapshot/consistency/raw-drive-is-refused", test_refuses_raw_drive);
    g_test_add_func("/snapshot/consistency/read-only-drive-is-refused",
                    test_refuses_read_only_drive);
    g_test_add_func("/snapshot/consistency/tag-on-some-drives-only-is-refused",
                    test_refuses_partial_tag);
    g_test_add_func(
        "/snapshot/consistency/second-drive-failing-to-revert-puts-first-back",
        test_second_drive_revert_fails);
    return g_test_run();
}
