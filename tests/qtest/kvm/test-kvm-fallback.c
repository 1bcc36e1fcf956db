/*
 * The no-KVM path of the main job: tpm-qtest-demo runs the test guest's TIS
 * driver checks and the demo through the qtest protocol. Needs no /dev/kvm;
 * skipped when tpmvm has no TPM device or builtin backend.
 */
#include <string.h>
#include <sys/wait.h>

#include "kvm-test-util.h"

static char *demo_binary(void)
{
    const char *dir = g_getenv("TPMVM_BUILD_DIR");

    return g_build_filename(dir ? dir : ".", "tests", "guest", "tpm-qtest-demo", NULL);
}

/* Run the client; returns its exit status, *out = its stdout. */
static int run_demo(const char *mode, char **out)
{
    g_autofree char *bin = demo_binary();
    g_autofree char *err = NULL;
    char *argv[] = {bin,       "--mode",          (char *)mode, "--",
                    "-tpmdev", "builtin,id=tpm0", "-device",    "tpm-tis,tpmdev=tpm0",
                    NULL};
    int status = -1;

    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, &err,
                               &status, NULL));
    g_test_message("stdout:\n%s\nstderr:\n%s", *out, err);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void test_driver_checks(void)
{
    g_autofree char *out = NULL;

    if (kvm_test_skip_if(kvm_test_tpm_unavailable())) {
        return;
    }
    g_assert_cmpint(run_demo("check", &out), ==, 0);
    g_assert_nonnull(strstr(out, "TPM2_NV_Read returns what was written, byte"));
    g_assert_nonnull(strstr(out, "TPM2_NV_Read returns what was written, burst"));
    g_assert_null(strstr(out, "not ok"));
    g_assert_nonnull(strstr(out, "RESULT: PASS"));
}

static void test_demo(void)
{
    g_autofree char *out = NULL;

    if (kvm_test_skip_if(kvm_test_tpm_unavailable())) {
        return;
    }
    g_assert_cmpint(run_demo("demo", &out), ==, 0);
    g_assert_nonnull(strstr(out, "TPM identity: manufacturer 'IBM'"));
    g_assert_nonnull(strstr(out, "Boot counter (TPM NV index 0x1500020): 1"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm/fallback/qtest-client-passes-the-driver-checks",
                    test_driver_checks);
    g_test_add_func("/kvm/fallback/qtest-client-runs-the-demo", test_demo);
    return g_test_run();
}
