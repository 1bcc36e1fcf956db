/*
 * VM snapshots with the real TIS and libtpms on a LUKS-encrypted qcow2 drive:
 * savevm/loadvm bring PCRs and NV indices back exactly, also across a
 * process restart (-loadvm), before TPM2_Startup, with a command in flight,
 * in the middle of a FIFO transfer, for a TPM 1.2, and for a snapshot made
 * offline without VM state (a power cycle of the TPM). Guest RAM comes back
 * with them, page by page.
 */
#include <string.h>

#include "snapshot-util.h"

#define NV_LEN 8

static const uint8_t nv_a[NV_LEN] = "state-A";
static const uint8_t nv_b[NV_LEN] = "state-B";

static QTestState *start_vm(SnapEnv *env, bool luks, const char *version,
                            const char *extra)
{
    g_autofree char *args = snap_tpm_args(env, "tpm.qcow2", luks, version);

    return qtest_initf("%s %s", args, extra ? extra : "");
}

/* PCR 16 and an NV index as they are at snapshot A. */
static void setup_state_a(QTestState *qts)
{
    tpm2_startup(qts);
    tpm2_extend(qts, 16, 0xa1);
    tpm2_nv_define(qts, NV_LEN);
    tpm2_nv_write(qts, nv_a, NV_LEN);
}

static void assert_state(QTestState *qts, const uint8_t *pcr, const uint8_t *nv)
{
    g_autofree uint8_t *p = tpm2_pcr_read(qts, 16);
    g_autofree uint8_t *n = tpm2_nv_read(qts, NV_LEN);

    g_assert_cmpmem(p, 32, pcr, 32);
    g_assert_cmpmem(n, NV_LEN, nv, NV_LEN);
}

static void test_loadvm_restores_pcr_and_nv(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autofree uint8_t *pcr_a = NULL;
    g_autofree uint8_t *pcr_b = NULL;
    g_autofree char *info = NULL;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", true, 16);
    qts = start_vm(env, true, NULL, NULL);
    tis_claim(qts);
    setup_state_a(qts);
    pcr_a = tpm2_pcr_read(qts, 16);
    snap_hmp_ok(qts, "savevm A");

    tpm2_extend(qts, 16, 0xb2);
    tpm2_nv_write(qts, nv_b, NV_LEN);
    pcr_b = tpm2_pcr_read(qts, 16);
    g_assert_true(memcmp(pcr_a, pcr_b, 32) != 0);

    snap_hmp_ok(qts, "loadvm A");
    assert_state(qts, pcr_a, nv_a);
    /* the TPM keeps working from the restored state */
    tpm2_extend(qts, 16, 0xb2);
    assert_state(qts, pcr_b, nv_a);

    snap_hmp_ok(qts, "delvm A");
    info = qtest_hmp(qts, "info snapshots");
    g_assert_nonnull(strstr(info, "There is no snapshot available."));
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", true);
    snap_env_free(env);
}

static void test_loadvm_at_startup(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autofree uint8_t *pcr_a = NULL;
    g_autofree char *status = NULL;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", true, 16);
    qts = start_vm(env, true, NULL, NULL);
    tis_claim(qts);
    setup_state_a(qts);
    pcr_a = tpm2_pcr_read(qts, 16);
    snap_hmp_ok(qts, "savevm A");
    tpm2_extend(qts, 16, 0xb2);
    tpm2_nv_write(qts, nv_b, NV_LEN);
    snap_quit(qts);

    /* No TPM2_Startup: the volatile state (PCRs) comes from the snapshot. */
    qts = start_vm(env, true, NULL, "-loadvm A");
    status = snap_status(qts);
    g_assert_cmpstr(status, ==, "running");
    tis_claim(qts);
    assert_state(qts, pcr_a, nv_a);
    snap_hmp_ok(qts, "delvm A");
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", true);
    snap_env_free(env);
}

static void test_snapshot_before_startup(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autoptr(GByteArray) cmd = NULL;
    g_autoptr(GBytes) rsp = NULL;
    g_autofree uint8_t *pcr = NULL;
    static const uint8_t zero[32];

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", true, 16);
    qts = start_vm(env, true, NULL, NULL);
    tis_claim(qts);
    snap_hmp_ok(qts, "savevm fresh");
    tpm2_startup(qts);
    tpm2_extend(qts, 16, 0xa1);
    snap_hmp_ok(qts, "loadvm fresh");

    /* Back before TPM2_Startup: the TPM must ask for it again. */
    cmd = tpm2_cmd_pcr_read(16);
    rsp = tpm_transmit(qts, cmd->data, cmd->len);
    g_assert_cmphex(tpm_rc(rsp), ==, TPM_RC_INITIALIZE);
    tpm2_startup(qts);
    pcr = tpm2_pcr_read(qts, 16);
    g_assert_cmpmem(pcr, 32, zero, 32);
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", true);
    snap_env_free(env);
}

static void test_in_flight_command_is_drained(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autoptr(GByteArray) cmd = NULL;
    g_autoptr(GBytes) first = NULL;
    g_autoptr(GBytes) again = NULL;
    uint32_t sts;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", true, 16);
    qts = start_vm(env, true, NULL, NULL);
    tis_claim(qts);
    tpm2_startup(qts);

    /* RSA key generation keeps libtpms busy long enough to be caught. */
    cmd = tpm2_cmd_create_primary_rsa();
    tis_write_partial(qts, cmd->data, cmd->len, 0);
    tis_go(qts);
    sts = tis_sts(qts);
    if (sts & 0x10) {
        g_test_message("CreatePrimary finished before savevm (STS 0x%x)", sts);
    }
    snap_hmp_ok(qts, "savevm busy");
    /* savevm waited for the command: its response is there right away */
    g_assert_cmphex(tis_sts(qts) & 0x90, ==, 0x90);
    first = tis_read_response(qts);
    g_assert_cmphex(tpm_rc(first), ==, TPM_RC_SUCCESS);

    tpm2_extend(qts, 16, 0x33);
    snap_hmp_ok(qts, "loadvm busy");
    /* The snapshot holds the finished command with its response unread. */
    g_assert_cmphex(tis_sts(qts) & 0x90, ==, 0x90);
    again = tis_read_response(qts);
    g_assert_true(g_bytes_equal(first, again));
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", true);
    snap_env_free(env);
}

static void test_mid_fifo_transfer(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autoptr(GByteArray) cmd = NULL;
    g_autoptr(GBytes) rsp1 = NULL;
    g_autoptr(GBytes) rsp2 = NULL;
    g_autofree uint8_t *pcr1 = NULL;
    g_autofree uint8_t *pcr2 = NULL;
    size_t half;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", true, 16);
    qts = start_vm(env, true, NULL, NULL);
    tis_claim(qts);
    tpm2_startup(qts);
    tpm2_extend(qts, 16, 0x01);

    cmd = tpm2_cmd_pcr_extend(16, 0x02);
    half = cmd->len / 2;
    tis_write_partial(qts, cmd->data, half, 0);
    g_assert_cmphex(tis_sts(qts) & 0x88, ==, 0x88); /* valid, expects more */
    snap_hmp_ok(qts, "savevm half");
    tis_write_partial(qts, cmd->data, cmd->len, half);
    tis_go(qts);
    rsp1 = tis_read_response(qts);
    g_assert_cmphex(tpm_rc(rsp1), ==, TPM_RC_SUCCESS);
    pcr1 = tpm2_pcr_read(qts, 16);

    snap_hmp_ok(qts, "loadvm half");
    /* The FIFO holds the first half again and still expects the rest. */
    g_assert_cmphex(tis_sts(qts) & 0x88, ==, 0x88);
    tis_write_partial(qts, cmd->data, cmd->len, half);
    tis_go(qts);
    rsp2 = tis_read_response(qts);
    g_assert_true(g_bytes_equal(rsp1, rsp2));
    pcr2 = tpm2_pcr_read(qts, 16);
    g_assert_cmpmem(pcr1, 32, pcr2, 32);
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", true);
    snap_env_free(env);
}

static void test_tpm12_loadvm_restores_pcr(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autofree uint8_t *pcr_a = NULL;
    g_autofree uint8_t *pcr_b = NULL;
    g_autofree uint8_t *pcr = NULL;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", true, 16);
    qts = start_vm(env, true, "1.2", NULL);
    tis_claim(qts);
    tpm12_startup(qts);
    tpm12_extend(qts, 16, 0xa1);
    pcr_a = tpm12_pcr_read(qts, 16);
    snap_hmp_ok(qts, "savevm A");
    tpm12_extend(qts, 16, 0xb2);
    pcr_b = tpm12_pcr_read(qts, 16);
    g_assert_true(memcmp(pcr_a, pcr_b, 20) != 0);
    snap_hmp_ok(qts, "loadvm A");
    pcr = tpm12_pcr_read(qts, 16);
    g_assert_cmpmem(pcr, 20, pcr_a, 20);
    snap_hmp_ok(qts, "delvm A");
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", true);
    snap_env_free(env);
}

/* A snapshot made offline by `tool` (tpmvm-img or qemu-img) snapshot -c. */
static void check_disk_only_snapshot_is_power_cycle(bool with_tpmvm_img)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autofree char *opts = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree uint8_t *pcr = NULL;
    g_autofree uint8_t *nv = NULL;
    g_autoptr(GByteArray) cmd = NULL;
    g_autoptr(GBytes) rsp = NULL;
    static const uint8_t zero[32];

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", true, 16);
    opts = snap_image_opts(env, "tpm.qcow2", true);
    qts = start_vm(env, true, NULL, NULL);
    tis_claim(qts);
    setup_state_a(qts);
    snap_quit(qts);

    if (with_tpmvm_img) {
        g_assert_cmpint(snap_tpmvm_img(env, &out, "snapshot %s -c offline", opts), ==, 0);
    } else {
        g_assert_cmpint(snap_qemu_img(env, &out, "snapshot %s -c offline", opts), ==, 0);
    }

    qts = start_vm(env, true, NULL, NULL);
    tis_claim(qts);
    tpm2_startup(qts);
    tpm2_nv_write(qts, nv_b, NV_LEN);
    /* At run time a snapshot without VM state is refused, and nothing changes. */
    err = snap_hmp_err(qts, "loadvm offline");
    g_assert_nonnull(strstr(err, "disk-only"));
    nv = tpm2_nv_read(qts, NV_LEN);
    g_assert_cmpmem(nv, NV_LEN, nv_b, NV_LEN);
    g_clear_pointer(&nv, g_free);
    snap_quit(qts);

    /* At start-up it is a power cycle: permanent state from the snapshot only. */
    qts = start_vm(env, true, NULL, "-loadvm offline");
    tis_claim(qts);
    cmd = tpm2_cmd_pcr_read(16);
    rsp = tpm_transmit(qts, cmd->data, cmd->len);
    g_assert_cmphex(tpm_rc(rsp), ==, TPM_RC_INITIALIZE);
    tpm2_startup(qts);
    pcr = tpm2_pcr_read(qts, 16);
    g_assert_cmpmem(pcr, 32, zero, 32);
    nv = tpm2_nv_read(qts, NV_LEN);
    g_assert_cmpmem(nv, NV_LEN, nv_a, NV_LEN);
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", true);
    snap_env_free(env);
}

/*
 * RAM pages in every situation the snapshot's page bitmap and the loader's
 * "is it zero already" shortcut meet: written before and changed after,
 * never written before but written after, written before and zeroed after,
 * the last page of RAM, and a fresh process that never touched its RAM.
 */
#define RAM_MIB 64
#define PAGE 4096u

static const uint64_t ram_pages_at[] = {0x100000, 0x2345000, (RAM_MIB << 20) - PAGE};

static void ram_fill(QTestState *qts, uint64_t addr, uint8_t seed)
{
    uint8_t buf[PAGE];

    for (unsigned i = 0; i < PAGE; i++) {
        buf[i] = (uint8_t)(seed + i * 7);
    }
    qtest_memwrite(qts, addr, buf, PAGE);
}

static void ram_assert(QTestState *qts, uint64_t addr, int seed /* -1: zero page */)
{
    uint8_t buf[PAGE], want[PAGE];

    for (unsigned i = 0; i < PAGE; i++) {
        want[i] = seed < 0 ? 0 : (uint8_t)(seed + i * 7);
    }
    qtest_memread(qts, addr, buf, PAGE);
    g_assert_cmpmem(buf, PAGE, want, PAGE);
}

static void assert_ram_at_a(QTestState *qts)
{
    for (unsigned i = 0; i < G_N_ELEMENTS(ram_pages_at); i++) {
        ram_assert(qts, ram_pages_at[i], (int)(0x10 + i));
    }
    ram_assert(qts, 0x3000000, -1);
    ram_assert(qts, 0x3001000, -1);
}

static void test_ram_restored(void)
{
    SnapEnv *env = snap_env_new();
    g_autofree char *extra = g_strdup_printf("-m %u", RAM_MIB);
    QTestState *qts;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    qts = start_vm(env, false, NULL, extra);
    for (unsigned i = 0; i < G_N_ELEMENTS(ram_pages_at); i++) {
        ram_fill(qts, ram_pages_at[i], (uint8_t)(0x10 + i));
    }
    ram_fill(qts, 0x3001000, 0x33);
    qtest_memset(qts, 0x3001000, 0, PAGE); /* written, but zero again */
    snap_hmp_ok(qts, "savevm A");

    ram_fill(qts, ram_pages_at[0], 0x99);        /* changed */
    qtest_memset(qts, ram_pages_at[1], 0, PAGE); /* zeroed */
    ram_fill(qts, 0x3000000, 0x77);              /* first written after A */
    snap_hmp_ok(qts, "loadvm A");
    assert_ram_at_a(qts);
    snap_quit(qts);

    /* A fresh process: RAM it never touched takes the snapshot's pages. */
    {
        g_autofree char *again = g_strdup_printf("-m %u -loadvm A", RAM_MIB);
        qts = start_vm(env, false, NULL, again);
    }
    assert_ram_at_a(qts);
    snap_hmp_ok(qts, "delvm A");
    snap_quit(qts);
    snap_assert_image_clean(env, "tpm.qcow2", false);
    snap_env_free(env);
}

static void test_disk_only_tpmvm_img(void)
{
    check_disk_only_snapshot_is_power_cycle(true);
}

static void test_disk_only_qemu_img(void)
{
    check_disk_only_snapshot_is_power_cycle(false);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot/tpm2/loadvm-restores-pcr-and-nv",
                    test_loadvm_restores_pcr_and_nv);
    g_test_add_func("/snapshot/tpm2/loadvm-at-startup-restores-pcr-and-nv",
                    test_loadvm_at_startup);
    g_test_add_func("/snapshot/tpm2/snapshot-before-startup-needs-startup-again",
                    test_snapshot_before_startup);
    g_test_add_func("/snapshot/tpm2/in-flight-command-is-drained-into-the-snapshot",
                    test_in_flight_command_is_drained);
    g_test_add_func("/snapshot/tpm2/mid-fifo-transfer-is-restored-mid-transfer",
                    test_mid_fifo_transfer);
    g_test_add_func("/snapshot/tpm12/loadvm-restores-pcr",
                    test_tpm12_loadvm_restores_pcr);
    g_test_add_func(
        "/snapshot/tpm2/disk-only-snapshot-by-tpmvm-img-at-startup-is-a-power-cycle",
        test_disk_only_tpmvm_img);
    g_test_add_func(
        "/snapshot/tpm2/disk-only-snapshot-by-qemu-img-at-startup-is-a-power-cycle",
        test_disk_only_qemu_img);
    g_test_add_func("/snapshot/ram/loadvm-restores-every-kind-of-page",
                    test_ram_restored);
    return g_test_run();
}
