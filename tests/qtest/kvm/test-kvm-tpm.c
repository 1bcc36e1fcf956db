/*
 * The TPM under KVM, driven by the test guest's own TIS driver: every driver
 * check byte-wise and in XDATA bursts, completion by interrupt through the
 * in-kernel irqchip, the measured-boot demo, NV written in one run and read
 * in the next, a hostile register storm, and the monitor while the guest
 * runs (system_reset resets PCRs and keeps NV, stop/cont, query-tpm, quit),
 * and savevm/loadvm of a running guest (vCPUs, RAM and TPM state together).
 * Skips with the reason when KVM, the TPM device or the monitor is missing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvm-test-util.h"

#define TPM_ARGS "-tpmdev builtin,id=tpm0 -device tpm-tis,tpmdev=tpm0"

static bool skip_unless_tpm(void)
{
    return kvm_test_skip_if(kvm_test_unavailable()) ||
           kvm_test_skip_if(kvm_test_tpm_unavailable());
}

static bool skip_unless_qmp(void)
{
    return skip_unless_tpm() || kvm_test_skip_if(kvm_test_qmp_unavailable());
}

static void assert_guest_passes(const char *append, const char *extra, char **out)
{
    g_autofree char *args = g_strdup_printf("%s %s", TPM_ARGS, extra ? extra : "");
    g_autofree char *o = NULL;

    g_assert_cmpint(kvm_test_run_guest(append, args, &o), ==, 1);
    g_assert_nonnull(strstr(o, "RESULT: PASS"));
    g_assert_null(strstr(o, "not ok"));
    if (out) {
        *out = g_steal_pointer(&o);
    }
}

static void test_driver_byte_and_burst(void)
{
    g_autofree char *out = NULL;

    if (skip_unless_tpm()) {
        return;
    }
    assert_guest_passes("mode=check xfer=both", NULL, &out);
    g_assert_nonnull(strstr(out, "TPM2_NV_Read returns what was written, byte"));
    g_assert_nonnull(strstr(out, "TPM2_NV_Read returns what was written, burst"));
    g_assert_nonnull(strstr(out, "PCR 16 extend #2 matches SHA-256, burst"));
    g_assert_nonnull(strstr(out, "ok 25 - commandReady aborts a half-sent command"));
}

static void test_driver_interrupt(void)
{
    g_autofree char *out = NULL;

    if (skip_unless_tpm()) {
        return;
    }
    assert_guest_passes("mode=check xfer=burst irq=1", NULL, &out);
    g_assert_nonnull(
        strstr(out, "ok 31 - one dataAvail interrupt completed each command"));
}

static void test_demo(void)
{
    g_autofree char *out = NULL;

    if (skip_unless_tpm()) {
        return;
    }
    assert_guest_passes("mode=demo", NULL, &out);
    g_assert_nonnull(strstr(out, "TPM identity: manufacturer 'IBM'"));
    g_assert_nonnull(strstr(out, "Random bytes from the TPM: "));
    g_assert_nonnull(strstr(out, "PCR 8 = "));
    g_assert_nonnull(strstr(out, "Boot counter (TPM NV index 0x1500020): 1\r\n"));
}

static void test_hostile(void)
{
    g_autofree char *out = NULL;

    if (skip_unless_tpm()) {
        return;
    }
    /* The guest's own check fails unless a valid response comes afterwards;
     * status 1 also shows tpmvm survived until the guest's exit. */
    assert_guest_passes("mode=hostile seed=4242 rounds=4000", NULL, &out);
    g_assert_nonnull(
        strstr(out, "after the storm a TPM2_GetRandom gets a valid response"));
}

/* The drive-backed TPM state: NV survives the process. */
static void test_nv_persists(void)
{
    g_autofree char *dir = NULL, *img = NULL, *extra = NULL, *out = NULL;
    g_autofree char *err = NULL, *probe = NULL;
    int status;

    if (skip_unless_tpm()) {
        return;
    }
    dir = g_dir_make_tmp("kvm-tpm-nv-XXXXXX", NULL);
    img = g_build_filename(dir, "tpm.qcow2", NULL);
    extra = g_strdup_printf("-tpmdev builtin,id=tpm0,path=%s -device tpm-tis,tpmdev=tpm0",
                            img);
    /* -tpmdev is set up before -device: "nosuch" ends the probe at once, and
     * an error about path= comes first if this tpmvm cannot do it. */
    probe = g_strdup_printf("-machine pc -accel qtest -display none "
                            "-tpmdev builtin,id=probe,path=%s/probe.qcow2 -device nosuch",
                            dir);
    qtest_run(probe, NULL, &err);
    if (err && strstr(err, "path=")) {
        g_test_message("%s", err);
        g_test_skip("this tpmvm cannot keep TPM state in an image yet (path=)");
        g_free(probe);
        probe = g_strdup_printf("%s/probe.qcow2", dir);
        unlink(probe);
        rmdir(dir);
        return;
    }
    g_assert_cmpint(kvm_test_run_guest("mode=nv-write token=run-one-7f3a", extra, NULL),
                    ==, 1);
    g_assert_cmpint(kvm_test_run_guest("mode=nv-read token=run-one-7f3a", extra, &out),
                    ==, 1);
    g_assert_nonnull(strstr(out, "nv-read: found token 'run-one-7f3a'"));
    /* The check can fail: another token is not what NV holds. */
    status = kvm_test_run_guest("mode=nv-read token=something-else", extra, NULL);
    g_assert_cmpint(status, ==, 3);
    unlink(img);
    g_free(probe);
    probe = g_strdup_printf("%s/probe.qcow2", dir);
    unlink(probe);
    rmdir(dir);
}

static JsonObject *qmp_return(QTestState *s, const char *cmd)
{
    JsonObject *rsp = qtest_qmp(s, "%s", cmd);
    JsonObject *ret;

    g_assert_true(json_object_has_member(rsp, "return"));
    ret = json_object_ref(json_object_get_object_member(rsp, "return"));
    json_object_unref(rsp);
    return ret;
}

static void assert_status(QTestState *s, const char *status, bool running)
{
    JsonObject *ret = qmp_return(s, "{\"execute\": \"query-status\"}");

    g_assert_cmpstr(json_object_get_string_member(ret, "status"), ==, status);
    g_assert_cmpint(json_object_get_boolean_member(ret, "running"), ==, running);
    json_object_unref(ret);
}

static void test_qmp_system_reset(void)
{
    QTestState *s;

    if (skip_unless_qmp()) {
        return;
    }
    s = kvm_test_start("mode=reset", TPM_ARGS, 0);
    g_assert_true(kvm_test_wait_output(s, "RESET-BOOT counter=1 result=PASS", 1, 60000));
    qtest_qmp_assert_success(s, "{\"execute\": \"system_reset\"}");
    /* The guest boots again: PCR 16 must be zero again, the NV counter kept. */
    g_assert_true(kvm_test_wait_output(s, "RESET-BOOT counter=2 result=PASS", 1, 60000));
    qtest_qmp_assert_success(s, "{\"execute\": \"system_reset\"}");
    g_assert_true(kvm_test_wait_output(s, "RESET-BOOT counter=3 result=PASS", 1, 60000));
    g_assert_cmpuint(kvm_test_count_output(s, "result=FAIL"), ==, 0);
    assert_status(s, "running", true);
    qtest_quit(s);
}

/* Wait until no new "tick " line has arrived for 500 ms (at most 20 s);
 * returns how many there are. */
static unsigned wait_output_quiet(QTestState *s)
{
    unsigned n = kvm_test_count_output(s, "tick ");

    for (int i = 0; i < 40; i++) {
        unsigned now;

        g_usleep(500 * 1000);
        now = kvm_test_count_output(s, "tick ");
        if (now == n) {
            break;
        }
        n = now;
    }
    return n;
}

static void test_qmp_stop_cont(void)
{
    QTestState *s;
    unsigned ticks;

    if (skip_unless_qmp()) {
        return;
    }
    s = kvm_test_start("mode=loop", TPM_ARGS, 0);
    g_assert_true(kvm_test_wait_output(s, "tick ", 3, 60000));
    qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
    assert_status(s, "paused", false);
    /* Lines already on their way to us may still arrive on a loaded host;
     * once they have, a stopped guest prints nothing more. */
    ticks = wait_output_quiet(s);
    g_usleep(500 * 1000);
    g_assert_cmpuint(kvm_test_count_output(s, "tick "), ==, ticks);
    qtest_qmp_assert_success(s, "{\"execute\": \"cont\"}");
    assert_status(s, "running", true);
    g_assert_true(kvm_test_wait_output(s, "tick ", ticks + 3, 60000));
    g_assert_cmpuint(kvm_test_count_output(s, "not ok"), ==, 0);
    qtest_quit(s);
}

/* A qcow2 drive under the TPM: where savevm keeps the VM state. */
static char *make_tpm_image(const char *dir)
{
    g_autofree char *img = g_build_filename(dir, "tpm.qcow2", NULL);
    g_autofree char *cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 1M", img);
    int status = -1;

    if (!g_spawn_command_line_sync(cmd, NULL, NULL, &status, NULL) || status != 0) {
        return NULL;
    }
    return g_steal_pointer(&img);
}

static unsigned last_tick(QTestState *s)
{
    g_autofree char *out = qtest_get_stdout(s);
    const char *p = g_strrstr(out, "tick ");

    return p ? (unsigned)strtoul(p + 5, NULL, 10) : 0;
}

static void test_snapshot_resumes(void)
{
    g_autofree char *dir = NULL, *img = NULL, *extra = NULL, *rsp = NULL, *again = NULL;
    QTestState *s;
    unsigned saved;

    if (skip_unless_qmp()) {
        return;
    }
    dir = g_dir_make_tmp("kvm-snap-XXXXXX", NULL);
    img = make_tpm_image(dir);
    if (!img) {
        g_test_skip("qemu-img could not create a qcow2 image");
        rmdir(dir);
        return;
    }
    extra =
        g_strdup_printf("-drive if=none,id=tpmnv,file=%s,format=qcow2 "
                        "-tpmdev builtin,id=tpm0,drive=tpmnv -device tpm-tis,tpmdev=tpm0",
                        img);
    s = kvm_test_start("mode=loop", extra, 0);
    g_assert_true(kvm_test_wait_output(s, "tick ", 3, 60000));
    /* Stopped first, so that the last tick we see is the one in the snapshot. */
    qtest_qmp_assert_success(s, "{\"execute\": \"stop\"}");
    wait_output_quiet(s);
    rsp = qtest_hmp(s, "savevm kvm-snap");
    if (strstr(rsp, "unknown command")) {
        g_test_skip("this tpmvm has no savevm yet");
        qtest_quit(s);
        unlink(img);
        rmdir(dir);
        return;
    }
    g_assert_cmpstr(g_strstrip(rsp), ==, "");
    saved = last_tick(s);
    qtest_qmp_assert_success(s, "{\"execute\": \"cont\"}");
    /* Run on, then go back: the guest continues from the saved tick, and
     * its memory and the TPM's PCR 16 still agree (the guest checks). */
    g_assert_true(kvm_test_wait_output(s, "tick ", saved + 4, 60000));
    g_free(rsp);
    rsp = qtest_hmp(s, "loadvm kvm-snap");
    g_assert_cmpstr(g_strstrip(rsp), ==, "");
    again = g_strdup_printf("tick %u\r\n", saved + 2);
    if (!kvm_test_wait_output(s, again, 2, 60000)) {
        g_autofree char *out = qtest_get_stdout(s);
        g_autofree char *err = qtest_get_stderr(s);
        g_test_message("saved tick %u; guest output:\n%s\nstderr:\n%s", saved, out, err);
        g_assert_not_reached();
    }
    g_assert_cmpuint(kvm_test_count_output(s, "not ok"), ==, 0);
    assert_status(s, "running", true);
    qtest_quit(s);
    unlink(img);
    rmdir(dir);
}

static void test_qmp_query_tpm_and_quit(void)
{
    QTestState *s;
    JsonObject *rsp;
    g_autofree char *text = NULL;

    if (skip_unless_qmp()) {
        return;
    }
    s = kvm_test_start("mode=loop", TPM_ARGS, 0);
    g_assert_true(kvm_test_wait_output(s, "tick ", 1, 60000));
    rsp = qtest_qmp(s, "{\"execute\": \"query-tpm\"}");
    text = json_to_string(json_node_init_object(json_node_alloc(), rsp), FALSE);
    g_test_message("query-tpm: %s", text);
    g_assert_nonnull(strstr(text, "\"tpm0\""));
    g_assert_nonnull(strstr(text, "tpm-tis"));
    g_assert_nonnull(strstr(text, "builtin"));
    json_object_unref(rsp);
    qtest_qmp_send(s, "{\"execute\": \"quit\"}");
    g_assert_cmpint(qtest_wait_exit(s, 30000), ==, 0);
    qtest_quit(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm/tpm/driver/byte-wise-and-burst-checks-pass",
                    test_driver_byte_and_burst);
    g_test_add_func("/kvm/tpm/driver/interrupt-completes-every-command",
                    test_driver_interrupt);
    g_test_add_func("/kvm/tpm/demo/measures-the-boot-and-counts-it", test_demo);
    g_test_add_func("/kvm/tpm/hostile/register-storm-then-a-valid-response",
                    test_hostile);
    g_test_add_func("/kvm/tpm/nv/written-in-one-run-read-in-the-next", test_nv_persists);
    g_test_add_func("/kvm/tpm/qmp/system-reset-clears-pcrs-and-keeps-nv",
                    test_qmp_system_reset);
    g_test_add_func("/kvm/tpm/qmp/stop-and-cont-while-the-guest-works",
                    test_qmp_stop_cont);
    g_test_add_func("/kvm/tpm/qmp/query-tpm-and-quit-while-the-guest-works",
                    test_qmp_query_tpm_and_quit);
    g_test_add_func("/kvm/tpm/snapshot/loadvm-resumes-the-guest-where-savevm-left-it",
                    test_snapshot_resumes);
    return g_test_run();
}
