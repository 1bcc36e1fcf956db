/*
 * See kvm-test-util.h.
 */
#include "kvm-test-util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#if __has_include(<linux/kvm.h>)
#include <linux/kvm.h>
#define HAVE_LINUX_KVM_H 1
#endif

const char *kvm_test_unavailable(void)
{
    static char why[256];
    int fd;

#ifndef HAVE_LINUX_KVM_H
    return "this build host has no <linux/kvm.h>";
#endif
    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        g_snprintf(why, sizeof(why), "/dev/kvm is not usable here (%s)",
                   g_strerror(errno));
        return why;
    }
#ifdef HAVE_LINUX_KVM_H
    {
        int version = ioctl(fd, KVM_GET_API_VERSION, 0);

        if (version != KVM_API_VERSION) {
            close(fd);
            g_snprintf(why, sizeof(why), "/dev/kvm reports API version %d, not %d",
                       version, KVM_API_VERSION);
            return why;
        }
    }
#endif
    close(fd);
    if (!g_file_test(kvm_test_guest(), G_FILE_TEST_EXISTS)) {
        g_snprintf(why, sizeof(why),
                   "the test guest %s was not built (meson option 'guest' disabled?)",
                   kvm_test_guest());
        return why;
    }
    return NULL;
}

const char *kvm_test_tpm_unavailable(void)
{
    static int state = -1;
    g_autofree char *out = NULL;

    if (state < 0) {
        qtest_run("-machine pc -accel qtest -device help", &out, NULL);
        state = out && strstr(out, "tpm-tis") != NULL;
        g_clear_pointer(&out, g_free);
        if (state) {
            qtest_run("-tpmdev help", &out, NULL);
            state = out && strstr(out, "builtin") != NULL ? 1 : 2;
        }
    }
    return state == 1   ? NULL
           : state == 0 ? "this tpmvm has no tpm-tis device yet"
                        : "this tpmvm has no builtin TPM backend yet";
}

const char *kvm_test_qmp_unavailable(void)
{
    g_autofree char *err = NULL;

    qtest_run(
        "-machine none -accel qtest -chardev null,id=m0 -mon chardev=m0,mode=control "
        "-device nosuch",
        NULL, &err);
    return err && strstr(err, "is not built yet") ? "the QMP monitor is not built yet"
                                                  : NULL;
}

bool kvm_test_skip_if(const char *why)
{
    if (why) {
        g_test_skip(why);
        return true;
    }
    return false;
}

const char *kvm_test_guest(void)
{
    static char *path;

    if (!path) {
        const char *dir = g_getenv("TPMVM_BUILD_DIR");

        path = g_build_filename(dir ? dir : ".", "tests", "guest", "tpm-guest.elf", NULL);
    }
    return path;
}

QTestState *kvm_test_start(const char *append, const char *extra, unsigned flags)
{
    g_autofree char *quoted_append = g_shell_quote(append);
    g_autofree char *quoted_guest = g_shell_quote(kvm_test_guest());
    g_autofree char *args = g_strdup_printf(
        "-machine pc -accel kvm -m 64 -serial stdio -device isa-debug-exit "
        "-kernel %s -append %s %s",
        quoted_guest, quoted_append, extra ? extra : "");

    return qtest_init_flags(args, flags);
}

/* Still running (not exited, not a zombie waiting for libqtest to reap it)? */
static bool kvm_test_alive(QTestState *s)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)qtest_pid(s));
    g_autofree char *stat = NULL;
    const char *p;

    if (!g_file_get_contents(path, &stat, NULL, NULL)) {
        return false;
    }
    p = strrchr(stat, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

unsigned kvm_test_count_output(QTestState *s, const char *needle)
{
    g_autofree char *out = qtest_get_stdout(s);
    unsigned n = 0;

    for (const char *p = out; (p = strstr(p, needle)); p += strlen(needle)) {
        n++;
    }
    return n;
}

bool kvm_test_wait_output(QTestState *s, const char *needle, unsigned count,
                          unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    for (;;) {
        if (kvm_test_count_output(s, needle) >= count) {
            return true;
        }
        if (g_get_monotonic_time() > deadline || !kvm_test_alive(s)) {
            return kvm_test_count_output(s, needle) >= count;
        }
        g_usleep(20 * 1000);
    }
}

int kvm_test_run_guest(const char *append, const char *extra, char **out)
{
    QTestState *s = kvm_test_start(append, extra, QTEST_INIT_NO_QMP);
    int status = qtest_wait_exit(s, 120000);

    if (out) {
        *out = qtest_get_stdout(s);
    }
    if (status != 1) {
        g_autofree char *err = qtest_get_stderr(s);
        g_autofree char *o = qtest_get_stdout(s);

        g_test_message("tpmvm exit status %d\nstdout:\n%s\nstderr:\n%s", status, o, err);
    }
    qtest_quit(s);
    return status;
}
