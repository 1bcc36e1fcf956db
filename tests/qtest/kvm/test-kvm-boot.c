/*
 * The KVM accelerator and the pc platform with the test guest: long-mode
 * entry of an ELF64 guest, its command line, the debug-exit status, the
 * 16550 (registers, and input through IRQ 4 and the in-kernel PIC), the
 * reset paths (0xCF9, keyboard controller, triple fault) with and without
 * -no-reboot, more than one vCPU, and the errors a user sees.
 * Skipped with the reason when /dev/kvm is not usable.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvm-test-util.h"

static void test_guest_gets_command_line(void)
{
    g_autofree char *out = NULL;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    g_assert_cmpint(kvm_test_run_guest("mode=hello marker=xyzzy-42", NULL, &out), ==, 1);
    g_assert_nonnull(strstr(out, "command line 'mode=hello marker=xyzzy-42'"));
    g_assert_nonnull(strstr(out, "RESULT: PASS"));
}

static void test_debug_exit_status(void)
{
    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    /* value 0x21 -> (0x21 << 1) | 1 */
    g_assert_cmpint(kvm_test_run_guest("mode=exit code=33", NULL, NULL), ==, 0x43);
}

static void test_two_vcpus(void)
{
    g_autofree char *out = NULL;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    /* The second vCPU waits for INIT/SIPI; the boot CPU runs the guest. */
    g_assert_cmpint(kvm_test_run_guest("mode=hello", "-smp 2", &out), ==, 1);
    g_assert_nonnull(strstr(out, "RESULT: PASS"));
}

static void test_uart_registers(void)
{
    g_autofree char *out = NULL;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    g_assert_cmpint(kvm_test_run_guest("mode=uart", NULL, &out), ==, 1);
    g_assert_null(strstr(out, "not ok"));
    g_assert_nonnull(strstr(out, "ok - UART loopback MSR is 0x90"));
}

/* Input on a socket chardev reaches the guest through the RX interrupt. */
static void test_serial_input_interrupt(void)
{
    g_autofree char *dir = NULL, *sock = NULL, *args = NULL;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    GString *got = g_string_new(NULL);
    QTestState *s;
    gint64 deadline;
    int fd, status;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        g_string_free(got, TRUE);
        return;
    }
    dir = g_dir_make_tmp("kvm-serial-XXXXXX", NULL);
    sock = g_build_filename(dir, "serial.sock", NULL);
    args = g_strdup_printf("-machine pc -accel kvm -m 64 -device isa-debug-exit "
                           "-chardev socket,id=ser,path=%s,server=on,wait=off "
                           "-serial chardev:ser -kernel %s -append mode=echo",
                           sock, kvm_test_guest());
    s = qtest_init_flags(args, QTEST_INIT_NO_QMP);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(sa.sun_path, sock, sizeof(sa.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(write(fd, "ping 123\n", 9), ==, 9);
    deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    while (!strstr(got->str, "RESULT") && g_get_monotonic_time() < deadline) {
        char buf[256];
        struct timeval tv = {.tv_sec = 1};
        ssize_t n;

        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = read(fd, buf, sizeof(buf));
        if (n > 0) {
            g_string_append_len(got, buf, n);
        } else if (n == 0) {
            break;
        }
    }
    close(fd);
    status = qtest_wait_exit(s, 30000);
    qtest_quit(s);
    unlink(sock);
    rmdir(dir);
    g_test_message("serial output: %s", got->str);
    g_assert_nonnull(strstr(got->str, "echo: 'ping 123' ("));
    g_assert_null(strstr(got->str, "(0 serial interrupts)"));
    g_assert_cmpint(status, ==, 1);
    g_string_free(got, TRUE);
}

typedef struct ResetCase {
    const char *path;
    const char *mode;
} ResetCase;

static const ResetCase reset_cases[] = {
    {"/kvm/boot/reset/cf9-with-no-reboot-powers-off", "reset-cf9"},
    {"/kvm/boot/reset/keyboard-controller-with-no-reboot-powers-off", "reset-kbd"},
    {"/kvm/boot/reset/triple-fault-with-no-reboot-powers-off", "triple-fault"},
};

static void test_reset_no_reboot(const void *opaque)
{
    const ResetCase *c = opaque;
    g_autofree char *append = g_strdup_printf("mode=%s", c->mode);
    g_autofree char *out = NULL;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    /* -no-reboot turns the guest's reset into a clean exit (status 0). */
    g_assert_cmpint(kvm_test_run_guest(append, "-no-reboot", &out), ==, 0);
    g_assert_nonnull(strstr(out, "resetting via"));
}

static void test_reset_reboots(void)
{
    QTestState *s;
    bool rebooted;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    /* Without -no-reboot the guest starts over: its banner appears again. */
    s = kvm_test_start("mode=triple-fault", NULL, QTEST_INIT_NO_QMP);
    rebooted = kvm_test_wait_output(s, "tpmvm test guest: mode triple-fault", 3, 30000);
    qtest_quit(s);
    g_assert_true(rebooted);
}

static void test_error_no_kernel(void)
{
    g_autofree char *err = NULL;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    g_assert_cmpint(qtest_run("-machine pc -accel kvm -m 16 -display none", NULL, &err),
                    ==, 1);
    g_assert_nonnull(strstr(err, "-accel kvm: there is no firmware in tpmvm; give the "
                                 "guest with -kernel"));
}

static void test_error_bad_kernel(void)
{
    g_autofree char *dir = g_dir_make_tmp("kvm-kernel-XXXXXX", NULL);
    g_autofree char *elf32 = g_build_filename(dir, "elf32", NULL);
    g_autofree char *junk = g_build_filename(dir, "junk", NULL);
    g_autofree char *args = NULL, *err = NULL, *err2 = NULL;
    uint8_t hdr[64] = {0x7f, 'E', 'L', 'F', 1 /* ELFCLASS32 */, 1, 1};

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        rmdir(dir);
        return;
    }
    g_assert_true(g_file_set_contents(elf32, (const char *)hdr, sizeof(hdr), NULL));
    g_assert_true(g_file_set_contents(junk, "not a kernel", -1, NULL));
    args =
        g_strdup_printf("-machine pc -accel kvm -m 16 -display none -kernel %s", elf32);
    g_assert_cmpint(qtest_run(args, NULL, &err), ==, 1);
    g_assert_nonnull(strstr(err, "only 64-bit ELF images can be loaded"));
    g_free(args);
    args = g_strdup_printf("-machine pc -accel kvm -m 16 -display none -kernel %s", junk);
    g_assert_cmpint(qtest_run(args, NULL, &err2), ==, 1);
    g_assert_nonnull(strstr(err2, "not an ELF64 image nor a Linux bzImage"));
    unlink(elf32);
    unlink(junk);
    rmdir(dir);
}

/* Without access to /dev/kvm the message names it, the errno and a fix. */
static void test_error_dev_kvm_unusable(void)
{
    g_autofree char *cmd = NULL, *err = NULL;
    const char *bin = g_getenv("TPMVM_BINARY");
    g_autofree char *setpriv = g_find_program_in_path("setpriv");
    int status = -1;

    if (kvm_test_skip_if(kvm_test_unavailable())) {
        return;
    }
    if (getuid() != 0 || !setpriv || !bin) {
        g_test_skip("needs root and setpriv to run tpmvm as a user without /dev/kvm");
        return;
    }
    cmd = g_strdup_printf("%s --reuid=65534 --regid=65534 --clear-groups %s -machine pc "
                          "-accel kvm -m 16 -display none -kernel %s",
                          setpriv, bin, kvm_test_guest());
    g_assert_true(g_spawn_command_line_sync(cmd, NULL, &err, &status, NULL));
    if (strstr(err, "cannot execute") || strstr(err, "Permission denied") == NULL) {
        g_test_message("stderr: %s", err);
    }
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
    g_assert_nonnull(
        strstr(err, "-accel kvm: could not open /dev/kvm: Permission denied;"));
    g_assert_nonnull(strstr(err, "'kvm' group"));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm/boot/elf-guest-gets-its-command-line",
                    test_guest_gets_command_line);
    g_test_add_func("/kvm/boot/debug-exit-status-is-value-times-two-plus-one",
                    test_debug_exit_status);
    g_test_add_func("/kvm/boot/second-vcpu-waits-while-the-first-runs", test_two_vcpus);
    g_test_add_func("/kvm/boot/uart-registers-behave-like-a-16550a", test_uart_registers);
    g_test_add_func("/kvm/boot/serial-input-arrives-through-irq4",
                    test_serial_input_interrupt);
    for (size_t i = 0; i < G_N_ELEMENTS(reset_cases); i++) {
        g_test_add_data_func(reset_cases[i].path, &reset_cases[i], test_reset_no_reboot);
    }
    g_test_add_func("/kvm/boot/reset/triple-fault-restarts-the-guest",
                    test_reset_reboots);
    g_test_add_func("/kvm/boot/errors/no-kernel-says-there-is-no-firmware",
                    test_error_no_kernel);
    g_test_add_func("/kvm/boot/errors/bad-kernel-file-is-named", test_error_bad_kernel);
    g_test_add_func("/kvm/boot/errors/unusable-dev-kvm-names-device-errno-and-fix",
                    test_error_dev_kvm_unusable);
    return g_test_run();
}
