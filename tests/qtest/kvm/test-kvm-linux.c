/*
 * Linux under tpmvm -accel kvm (suite "slow", not in the default run):
 * Debian's cloud kernel, fetched by scripts/fetch-guest-kernel.sh, must print
 * its banner on our 16550, booted as a vmlinux ELF and as a bzImage. On a
 * host with VMX or SVM it must also boot to a busybox /init
 * (scripts/build-initramfs.sh) and find the TPM at 0xFED40000 without ACPI
 * (acpi=off tpm_tis.force=1 tpm_tis.interrupts=0). On a PVM host (no VMX/SVM
 * flag) stock Linux stops early on instructions PVM cannot emulate, so that
 * part skips with the reason (docs/kvm.md).
 */
#include <stdio.h>
#include <string.h>

#include "kvm-test-util.h"

#define LINUX_APPEND                                                                     \
    "console=ttyS0 earlyprintk=serial,ttyS0,115200 acpi=off tpm_tis.force=1 "            \
    "tpm_tis.interrupts=0 panic=-1"

static const char *source_dir(void)
{
    const char *d = g_getenv("TPMVM_SOURCE_DIR");

    return d ? d : ".";
}

/* What scripts/fetch-guest-kernel.sh said on stderr (why a file is missing). */
static char *fetch_messages;

/* The kernel cache (fetched once); NULL + skip when it cannot be had. */
static const char *guest_kernel_dir(void)
{
    static char *dir;
    static bool tried;
    g_autofree char *script = NULL, *out = NULL, *err = NULL;
    const char *build = g_getenv("TPMVM_BUILD_DIR");
    int status = -1;

    if (tried) {
        return dir;
    }
    tried = true;
    script = g_build_filename(source_dir(), "scripts", "fetch-guest-kernel.sh", NULL);
    {
        g_autofree char *cache =
            g_build_filename(build ? build : ".", "guest-kernel", NULL);
        const char *env_dir = g_getenv("TPMVM_GUEST_KERNEL_DIR");
        char *argv[] = {"sh", script, (char *)(env_dir ? env_dir : cache), NULL};

        if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                          &status, NULL) ||
            !g_spawn_check_wait_status(status, NULL)) {
            g_test_message("fetch-guest-kernel.sh: %s", err ? err : "");
            return NULL;
        }
        fetch_messages = g_strstrip(g_strdup(err ? err : ""));
    }
    g_strstrip(out);
    dir = g_strdup(out);
    return dir;
}

static bool host_has_vmx_or_svm(void)
{
    g_autofree char *cpuinfo = NULL;

    if (!g_file_get_contents("/proc/cpuinfo", &cpuinfo, NULL, NULL)) {
        return false;
    }
    return strstr(cpuinfo, " vmx") || strstr(cpuinfo, " svm");
}

static const char *tpm_args(void)
{
    return kvm_test_tpm_unavailable()
               ? ""
               : "-tpmdev builtin,id=tpm0 -device tpm-tis,tpmdev=tpm0";
}

static QTestState *boot_linux(const char *kernel, const char *initrd)
{
    g_autofree char *qk = g_shell_quote(kernel);
    g_autofree char *qi = initrd ? g_shell_quote(initrd) : NULL;
    g_autofree char *args = g_strdup_printf(
        "-machine pc -accel kvm -m 512 -serial stdio -no-reboot -kernel %s %s%s "
        "-append '" LINUX_APPEND "' %s",
        qk, qi ? "-initrd " : "", qi ? qi : "", tpm_args());

    return qtest_init_flags(args, QTEST_INIT_NO_QMP);
}

static void check_banner(const char *file, unsigned timeout_s)
{
    const char *dir;
    g_autofree char *kernel = NULL, *version = NULL, *vfile = NULL, *want = NULL;
    QTestState *s;
    bool seen;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    dir = guest_kernel_dir();
    if (!dir) {
        g_test_skip(
            "could not fetch linux-image-cloud-amd64 (scripts/fetch-guest-kernel.sh "
            "failed: no apt or no network)");
        return;
    }
    kernel = g_build_filename(dir, file, NULL);
    if (!g_file_test(kernel, G_FILE_TEST_EXISTS)) {
        g_autofree char *why = g_strdup_printf("%s is missing: %s", kernel,
                                               fetch_messages ? fetch_messages : "");

        g_test_skip(why);
        return;
    }
    vfile = g_build_filename(dir, "version", NULL);
    g_assert_true(g_file_get_contents(vfile, &version, NULL, NULL));
    g_strstrip(version);
    want = g_strdup_printf("Linux version %s", version);
    s = boot_linux(kernel, NULL);
    seen = kvm_test_wait_output(s, want, 1, timeout_s * 1000);
    if (!seen) {
        g_autofree char *out = qtest_get_stdout(s);
        g_autofree char *err = qtest_get_stderr(s);

        g_test_message("serial:\n%s\nstderr:\n%s", out, err);
    }
    qtest_quit(s);
    g_assert_true(seen);
}

static void test_vmlinux_banner(void)
{
    check_banner("vmlinux", 120);
}

/* The bzImage decompresses itself first: ~110 s on a PVM host. */
static void test_bzimage_banner(void)
{
    check_banner("vmlinuz", 400);
}

static void test_boot_to_init_finds_tpm(void)
{
    const char *dir;
    g_autofree char *tmp = NULL, *initrd = NULL, *script = NULL, *kernel = NULL;
    g_autofree char *out = NULL, *err = NULL;
    char *argv[4];
    QTestState *s;
    bool done;
    int status = -1;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    if (!host_has_vmx_or_svm()) {
        g_test_skip("the host CPU has no VMX/SVM flag (a PVM host): stock Linux stops "
                    "in early boot here, so only its banner is checked");
        return;
    }
    if (kvm_test_skip_if(kvm_test_tpm_unavailable())) {
        return;
    }
    dir = guest_kernel_dir();
    if (!dir) {
        g_test_skip("could not fetch linux-image-cloud-amd64");
        return;
    }
    tmp = g_dir_make_tmp("kvm-linux-XXXXXX", NULL);
    initrd = g_build_filename(tmp, "initramfs.cpio.gz", NULL);
    script = g_build_filename(source_dir(), "scripts", "build-initramfs.sh", NULL);
    argv[0] = "sh";
    argv[1] = script;
    argv[2] = initrd;
    argv[3] = NULL;
    if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                      &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        g_test_message("build-initramfs.sh: %s", err ? err : "");
        g_test_skip("could not build the busybox initramfs (busybox-static, cpio)");
        rmdir(tmp);
        return;
    }
    kernel = g_build_filename(dir, "vmlinux", NULL);
    if (!g_file_test(kernel, G_FILE_TEST_EXISTS)) {
        g_free(kernel);
        kernel = g_build_filename(dir, "vmlinuz", NULL);
    }
    s = boot_linux(kernel, initrd);
    done = kvm_test_wait_output(s, "TPMVM-INIT: done", 1, 300000);
    g_free(out);
    out = qtest_get_stdout(s);
    qtest_quit(s);
    unlink(initrd);
    rmdir(tmp);
    g_test_message("serial:\n%s", out);
    g_assert_true(done);
    g_assert_nonnull(strstr(out, "TPMVM-INIT: tpm0 2"));
    g_assert_nonnull(strstr(out, "2.0 TPM"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm/linux/vmlinux-prints-its-banner-on-the-serial-port",
                    test_vmlinux_banner);
    g_test_add_func("/kvm/linux/bzimage-prints-its-banner-on-the-serial-port",
                    test_bzimage_banner);
    g_test_add_func("/kvm/linux/boots-to-init-and-finds-the-tpm",
                    test_boot_to_init_finds_tpm);
    return g_test_run();
}
