/*
 * qtests of the tpm-tis device: the shared TIS scenarios
 * (tpm-tis-scenarios.c) run through a tpmvm process over the qtest protocol,
 * exactly as a guest would poke the registers, plus the device's command-line
 * behaviour (one TPM per VM, property errors, the irq property).
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "hw/tpm/tpm_tis_regs.h"
#include "libqtest.h"
#include "tpm-tis-scenarios.h"

/* Whether this tpmvm has a QMP monitor (system_reset, savevm need it). */
static bool have_monitor;

static bool probe_monitor(void)
{
    g_autofree char *err = NULL;

    qtest_run(
        "-machine none -accel qtest -chardev null,id=m0 -mon chardev=m0,mode=control "
        "-device nosuch",
        NULL, &err);
    return !strstr(err, "is not built yet");
}

typedef struct QHarness {
    TisHarness h;
    QTestState *qts;
    char *dir;
    char *script;
    char *log;
} QHarness;

static uint64_t q_read(TisHarness *h, uint64_t addr, unsigned size)
{
    QTestState *qts = ((QHarness *)h)->qts;

    addr += TPM_TIS_ADDR_BASE;
    switch (size) {
    case 1:
        return qtest_readb(qts, addr);
    case 2:
        return qtest_readw(qts, addr);
    default:
        return qtest_readl(qts, addr);
    }
}

static void q_write(TisHarness *h, uint64_t addr, uint64_t val, unsigned size)
{
    QTestState *qts = ((QHarness *)h)->qts;

    addr += TPM_TIS_ADDR_BASE;
    switch (size) {
    case 1:
        qtest_writeb(qts, addr, val);
        break;
    case 2:
        qtest_writew(qts, addr, val);
        break;
    default:
        qtest_writel(qts, addr, val);
        break;
    }
}

static bool q_irq(TisHarness *h)
{
    QHarness *q = (QHarness *)h;

    return qtest_get_irq(q->qts, h->irq_num);
}

static void q_idle(TisHarness *h)
{
    g_usleep(500);
}

/* The test backend's log: one "locty=L HEX" line per command. */
static GBytes *q_last_command(TisHarness *h)
{
    QHarness *q = (QHarness *)h;
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    const char *last = NULL, *hex;
    GByteArray *out;

    if (!g_file_get_contents(q->log, &text, NULL, NULL)) {
        return NULL;
    }
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        if (lines[i][0]) {
            last = lines[i];
        }
    }
    if (!last || !(hex = strchr(last, ' '))) {
        return NULL;
    }
    hex++;
    out = g_byte_array_new();
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
        uint8_t b = g_ascii_xdigit_value(hex[i]) << 4 | g_ascii_xdigit_value(hex[i + 1]);
        g_byte_array_append(out, &b, 1);
    }
    return g_byte_array_free_to_bytes(out);
}

#ifdef TPM_TIS_QTEST_SNAPSHOTS
/* Device state goes through savevm/loadvm into a qcow2 drive's vmstate area. */
static bool q_hmp_ok(QHarness *q, const char *cmd)
{
    g_autofree char *out = qtest_hmp(q->qts, "%s", cmd);

    if (out[0]) {
        g_test_message("'%s' said: %s", cmd, out);
        return false;
    }
    return true;
}

static bool q_save(TisHarness *h)
{
    return q_hmp_ok((QHarness *)h, "savevm tis-mid-transfer");
}

static bool q_load(TisHarness *h)
{
    return q_hmp_ok((QHarness *)h, "loadvm tis-mid-transfer");
}

/* A small qcow2 image for the snapshots, or NULL without qemu-img. */
static char *q_make_disk(QHarness *q)
{
    g_autofree char *disk = g_build_filename(q->dir, "disk.qcow2", NULL);
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
    const char *argv[] = {qemu_img, "create", "-q", "-f", "qcow2", disk, "1M", NULL};
    int status = -1;

    if (!qemu_img ||
        !g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL,
                      &status, NULL) ||
        status != 0) {
        return NULL;
    }
    return g_steal_pointer(&disk);
}
#endif

static void q_reset(TisHarness *h)
{
    QHarness *q = (QHarness *)h;

    qtest_qmp_assert_success(q->qts, "{'execute': 'system_reset'}");
    qtest_qmp_eventwait(q->qts, "RESET");
}

TisHarness *tis_harness_new(const char *backend_opts, const char *script)
{
    QHarness *q = g_new0(QHarness, 1);
    g_autoptr(GError) err = NULL;
    g_autofree char *args = NULL, *drive = NULL;

    q->dir = g_dir_make_tmp("tpm-tis-test-XXXXXX", &err);
    g_assert_no_error(err);
    q->script = g_build_filename(q->dir, "script", NULL);
    q->log = g_build_filename(q->dir, "log", NULL);
    g_assert_true(g_file_set_contents(q->script, script ? script : "", -1, NULL));
#ifdef TPM_TIS_QTEST_SNAPSHOTS
    if (have_monitor) {
        g_autofree char *disk = q_make_disk(q);
        if (disk) {
            drive = g_strdup_printf("-m 16 -drive if=none,id=disk0,file=%s,format=qcow2",
                                    disk);
        }
    }
#endif
    args = g_strdup_printf("-machine pc -tpmdev test,id=tpm0,script=%s,log=%s%s%s "
                           "-device tpm-tis,tpmdev=tpm0 %s",
                           q->script, q->log, backend_opts ? "," : "",
                           backend_opts ? backend_opts : "", drive ? drive : "");
    q->qts = have_monitor ? qtest_init(args) : qtest_init_without_qmp(args);
    qtest_irq_intercept_in(q->qts, "ioapic");
    q->h = (TisHarness){
        .read = q_read,
        .write = q_write,
        .irq = q_irq,
        .idle = q_idle,
        .last_command = q_last_command,
        /* A machine reset is asked for over QMP. */
        .reset = have_monitor ? q_reset : NULL,
        .irq_num = TPM_TIS_IRQ_DEFAULT,
    };
#ifdef TPM_TIS_QTEST_SNAPSHOTS
    if (drive) {
        q->h.save = q_save;
        q->h.load = q_load;
    }
#endif
    return &q->h;
}

void tis_harness_free(TisHarness *h)
{
    QHarness *q = (QHarness *)h;

    qtest_quit(q->qts);
    {
        g_autofree char *disk = g_build_filename(q->dir, "disk.qcow2", NULL);
        g_unlink(disk);
    }
    g_unlink(q->script);
    g_unlink(q->log);
    g_rmdir(q->dir);
    g_free(q->script);
    g_free(q->log);
    g_free(q->dir);
    g_free(q);
}

static void run_fails(const char *args, const char *msg)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = qtest_run(args, &out, &err);

    g_assert_cmpint(status, !=, 0);
    if (!strstr(err, msg)) {
        g_error("'%s' not in stderr of '%s':\n%s", msg, args, err);
    }
}

static void test_one_tpm_per_vm(void)
{
    run_fails(
        "-machine pc -accel qtest -display none -tpmdev test,id=a -tpmdev test,id=b "
        "-device tpm-tis,tpmdev=a -device tpm-tis,tpmdev=b",
        "tpm-tis");
}

static void test_property_errors(void)
{
    run_fails("-machine pc -accel qtest -display none -device tpm-tis", "tpmdev");
    run_fails("-machine pc -accel qtest -display none -device tpm-tis,tpmdev=nope",
              "no TPM backend with id 'nope'");
    run_fails("-machine pc -accel qtest -display none -tpmdev test,id=t0 "
              "-device tpm-tis,tpmdev=t0,irq=16",
              "irq must be an ISA interrupt 0-15, not 16");
    run_fails("-machine pc -accel qtest -display none -tpmdev test,id=t0 "
              "-tpmdev test,id=t0",
              "a TPM backend with id 't0' already exists");
    run_fails("-machine pc -accel qtest -display none -tpmdev bogus,id=t0",
              "'bogus' is not a valid TPM type");
    run_fails("-machine pc -accel qtest -display none -tpmdev test,id=t0,fail-startup=on "
              "-device tpm-tis,tpmdev=t0",
              "failed to start");
}

static void test_help(void)
{
    g_autofree char *out = NULL, *err = NULL;

    g_assert_cmpint(qtest_run("-tpmdev help", &out, &err), ==, 0);
    g_assert_nonnull(strstr(out, "test"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    g_assert_cmpint(qtest_run("-tpmdev test,help", &out, &err), ==, 0);
    g_assert_nonnull(strstr(out, "delay-ms"));
    g_clear_pointer(&out, g_free);
    g_clear_pointer(&err, g_free);
    g_assert_cmpint(qtest_run("-device tpm-tis,help", &out, &err), ==, 0);
    g_assert_nonnull(strstr(out, "tpmdev"));
    g_assert_nonnull(strstr(out, "irq"));
}

static void test_irq_property(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -tpmdev test,id=tpm0 "
                                             "-device tpm-tis,tpmdev=tpm0,irq=10");
    uint64_t base = TPM_TIS_ADDR_BASE;

    qtest_irq_intercept_in(qts, "ioapic");
    g_assert_cmphex(qtest_readl(qts, base + TPM_TIS_REG_INT_VECTOR), ==, 10);
    qtest_writeb(qts, base + TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    qtest_writel(qts, base + TPM_TIS_REG_INT_ENABLE,
                 TPM_TIS_INT_ENABLED | TPM_TIS_INT_COMMAND_READY);
    qtest_writeb(qts, base + TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    /* The line that fires is GSI 10, not the default 5. */
    g_assert_true(qtest_get_irq(qts, 10));
    g_assert_false(qtest_get_irq(qts, 5));
    qtest_writel(qts, base + TPM_TIS_REG_INT_STATUS, TPM_TIS_INT_COMMAND_READY);
    g_assert_false(qtest_get_irq(qts, 10));
    /* Nothing else answers past the window. */
    g_assert_cmphex(qtest_readl(qts, base + TPM_TIS_ADDR_SIZE), ==, 0xffffffff);
    qtest_quit(qts);
}

static void test_trace_points(void)
{
    g_autofree char *dir = g_dir_make_tmp("tpm-tis-trace-XXXXXX", NULL);
    g_autofree char *trace = g_build_filename(dir, "trace", NULL);
    g_autofree char *args =
        g_strdup_printf("-machine pc -trace file=%s -trace tpm_tis_* "
                        "-tpmdev test,id=tpm0 -device tpm-tis,tpmdev=tpm0",
                        trace);
    QTestState *qts = qtest_init_without_qmp(args);
    uint64_t base = TPM_TIS_ADDR_BASE;
    static const uint8_t cmd[10] = {0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x7e};
    g_autofree char *text = NULL;

    qtest_writeb(qts, base + TPM_TIS_REG_ACCESS, TPM_TIS_ACCESS_REQUEST_USE);
    qtest_writeb(qts, base + TPM_TIS_REG_STS, TPM_TIS_STS_COMMAND_READY);
    for (size_t i = 0; i < sizeof(cmd); i++) {
        qtest_writeb(qts, base + TPM_TIS_REG_DATA_FIFO, cmd[i]);
    }
    qtest_writeb(qts, base + TPM_TIS_REG_STS, TPM_TIS_STS_TPM_GO);
    while (!(qtest_readb(qts, base + TPM_TIS_REG_STS) & TPM_TIS_STS_DATA_AVAILABLE)) {
        g_usleep(1000);
    }
    qtest_quit(qts);
    g_assert_true(g_file_get_contents(trace, &text, NULL, NULL));
    /* Every register access and the command's start and end are traced. */
    g_assert_nonnull(
        strstr(text, "tpm_tis_mmio_write locty=0 addr=0x000 size=1 val=0x2"));
    g_assert_nonnull(
        strstr(text, "tpm_tis_mmio_read locty=0 addr=0x018 size=1 val=0x90"));
    g_assert_nonnull(strstr(text, "tpm_tis_locality_change from=-1 to=0"));
    g_assert_nonnull(strstr(text, "tpm_tis_cmd_start locty=0 len=10 ordinal=0x17e"));
    g_assert_nonnull(strstr(text, "tpm_tis_cmd_done locty=0 len=10 rc=0x0"));
    g_unlink(trace);
    g_rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    have_monitor = probe_monitor() && !g_getenv("TPMVM_QTEST_NO_QMP");
    tis_scenarios_add();
    g_test_add_func("/tpm-tis/device/one-tpm-per-vm", test_one_tpm_per_vm);
    g_test_add_func("/tpm-tis/device/property-errors-name-the-problem",
                    test_property_errors);
    g_test_add_func("/tpm-tis/device/help-lists-types-and-properties", test_help);
    g_test_add_func("/tpm-tis/device/irq-property-routes-the-interrupt",
                    test_irq_property);
    g_test_add_func("/tpm-tis/device/trace-shows-accesses-and-commands",
                    test_trace_points);
    return g_test_run();
}
