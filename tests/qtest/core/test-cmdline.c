/*
 * The command line: exact error messages with exit status 1, help and
 * version output with status 0, and options whose effect a test can see
 * (-pidfile, -daemonize, -trace/-D, -qtest-log, signals).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libqtest.h"

typedef struct CmdlineCase {
    const char *args;
    const char *stderr_text; /* exact */
} CmdlineCase;

static const CmdlineCase error_cases[] = {
    {"-foo", "tpmvm: -foo: invalid option\n"},
    {"--bogus-option", "tpmvm: --bogus-option: invalid option\n"},
    {"disk.img", "tpmvm: disk.img: invalid option\n"},
    {"-m", "tpmvm: -m: requires an argument\n"},
    {"-machine none -device", "tpmvm: -device: requires an argument\n"},
    {"-m foo",
     "tpmvm: -m foo: 'foo' is not a valid size (a number with optional suffix K, "
     "M, G, T)\n"},
    {"-m 64,bogus=1", "tpmvm: -m 64,bogus=1: Invalid parameter 'bogus'\n"},
    {"-accel qtest -m 0", "tpmvm: -m 0: RAM size must be larger than 0\n"},
    {"-accel qtest -m 512K",
     "tpmvm: -m 512K: RAM size 0 MiB is out of range for machine 'pc' "
     "(1 MiB to 1 TiB)\n"},
    {"-accel qtest -m 2T",
     "tpmvm: -m 2T: RAM size 2097152 MiB is out of range for machine "
     "'pc' (1 MiB to 1 TiB)\n"},
    {"-accel qtest -m 1025K",
     "tpmvm: -m 1025K: RAM size 1049600 is not a multiple of 4 KiB\n"},
    {"-machine foo",
     "tpmvm: -machine foo: unsupported machine type 'foo' (use -machine help "
     "to list them)\n"},
    {"-machine pc,bogus=1", "tpmvm: -machine pc,bogus=1: Invalid parameter 'bogus'\n"},
    {"-accel foo",
     "tpmvm: -accel foo: invalid accelerator 'foo' (use -accel help to list "
     "them)\n"},
    {"-accel qtest,foo=1 -machine none",
     "tpmvm: -accel qtest,foo=1: Invalid parameter 'foo'\n"},
    {"-smp 0", "tpmvm: -smp 0: the number of CPUs must be between 1 and 255\n"},
    {"-smp 2,cores=x", "tpmvm: -smp 2,cores=x: Parameter 'cores' expects a non-negative "
                       "number, not 'x'\n"},
    {"-display gtk",
     "tpmvm: -display gtk: display 'gtk' is not available (only 'none')\n"},
    {"-d foo", "tpmvm: -d foo: unknown log item 'foo' (use -d help to list them)\n"},
    {"-initrd initrd.img", "tpmvm: -initrd and -append need -kernel\n"},
    {"-machine none -accel qtest -device nosuch",
     "tpmvm: -device nosuch: 'nosuch' is not a valid device model name (see -device "
     "help)\n"},
    {"-machine none -accel qtest -device id=x",
     "tpmvm: -device id=x: Parameter 'driver' is missing (see -device help)\n"},
    {"-chardev socket,id=c0",
     "tpmvm: -chardev socket,id=c0: socket chardev 'c0': Parameter "
     "'path' (or 'port') is missing\n"},
    {"-chardev bogus,id=x",
     "tpmvm: -chardev bogus,id=x: 'bogus' is not a valid char driver "
     "name (see -chardev help)\n"},
    {"-chardev null", "tpmvm: -chardev null: Parameter 'id' is missing\n"},
    {"-chardev null,id=a -chardev null,id=a",
     "tpmvm: -chardev null,id=a: Duplicate chardev ID 'a'; pick another id=\n"},
    {"-chardev null,id=a,path=x", "tpmvm: -chardev null,id=a,path=x: Invalid parameter "
                                  "'path'\n"},
    {"-chardev socket,id=s,path=/nonexistent-dir/sock",
     "tpmvm: -chardev socket,id=s,path=/nonexistent-dir/sock: Failed to connect to "
     "'unix:/nonexistent-dir/sock': No such file or directory\n"},
    {"-serial file:/nonexistent-dir/out", "tpmvm: -serial file:/nonexistent-dir/out: "
                                          "Could not open '/nonexistent-dir/out': No "
                                          "such file or directory\n"},
    {"-serial chardev:nope",
     "tpmvm: -serial chardev:nope: chardev 'nope' not found (define it "
     "with -chardev ...,id=nope)\n"},
    {"-qtest bogus:x",
     "tpmvm: -qtest bogus:x: 'bogus:x' is not a valid character device (use "
     "unix:PATH[,server=on,wait=off], tcp:HOST:PORT[,...], stdio, file:PATH, "
     "null or chardev:ID)\n"},
    {"-machine none -qtest null -qtest-log /nonexistent-dir/log",
     "tpmvm: -qtest-log /nonexistent-dir/log: Could not open '/nonexistent-dir/log': No "
     "such "
     "file or directory\n"},
    {"-object foo,id=x",
     "tpmvm: -object foo,id=x: invalid object type 'foo' (only 'secret' "
     "is supported)\n"},
    {"-object secret", "tpmvm: -object secret: Parameter 'id' is missing\n"},
    {"-object id=x", "tpmvm: -object id=x: Parameter 'qom-type' is missing\n"},
    {"-daemonize -nographic",
     "tpmvm: -daemonize cannot be used with -nographic or stdio\n"},
    {"-trace file=/nonexistent-dir/t", "tpmvm: -trace file=/nonexistent-dir/t: Could not "
                                       "open '/nonexistent-dir/t': No such "
                                       "file or directory\n"},
};

static void test_errors_are_exact_and_exit_1(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(error_cases); i++) {
        g_autofree char *out = NULL, *err = NULL;
        int status = qtest_run(error_cases[i].args, &out, &err);

        if (status != 1 || strcmp(err, error_cases[i].stderr_text) != 0) {
            g_error("'%s': expected status 1 and stderr '%s', got status %d and '%s'",
                    error_cases[i].args, error_cases[i].stderr_text, status, err);
        }
        g_assert_cmpstr(out, ==, "");
    }
}

static bool binary_has_accel(const char *name)
{
    g_autofree char *out = NULL;
    g_autofree char *line = g_strdup_printf("\n%s ", name);

    g_assert_cmpint(qtest_run("-accel help", &out, NULL), ==, 0);
    return strstr(out, line) != NULL;
}

static void test_accel_kvm_without_kvm_support(void)
{
    g_autofree char *err = NULL;

    if (binary_has_accel("kvm")) {
        g_test_skip("this build has KVM support; the message is the KVM part's");
        return;
    }
    g_assert_cmpint(qtest_run("-accel kvm", NULL, &err), ==, 1);
    g_assert_cmpstr(err, ==,
                    "tpmvm: -accel kvm: KVM support is not available in this build\n");
    g_free(g_steal_pointer(&err));
    g_assert_cmpint(qtest_run("-machine none", NULL, &err), ==, 1);
    g_assert_cmpstr(err, ==,
                    "tpmvm: -accel kvm: KVM support is not available in this build\n");
}

static void test_accel_falls_back_in_order(void)
{
    QTestState *qts;
    g_autofree char *err = NULL;

    if (binary_has_accel("kvm") && g_file_test("/dev/kvm", G_FILE_TEST_EXISTS)) {
        g_test_skip("KVM works here: no fall-back happens");
        return;
    }
    qts = qtest_init_without_qmp("-machine pc -m 16 -accel kvm -accel qtest");
    /* the qtest accelerator took over: the machine answers */
    qtest_writel(qts, 0x100, 0x1234);
    g_assert_cmphex(qtest_readl(qts, 0x100), ==, 0x1234);
    err = qtest_get_stderr(qts);
    g_assert_true(g_str_has_prefix(err, "tpmvm: warning: -accel kvm: "));
    g_assert_nonnull(strstr(err, "; trying the next accelerator\n"));
    qtest_quit(qts);
}

static void test_version_and_help(void)
{
    g_autofree char *out = NULL, *err = NULL;

    g_assert_cmpint(qtest_run("-version", &out, &err), ==, 0);
    g_assert_cmpstr(out, ==, "tpmvm version 0.1.0\n");
    g_assert_cmpstr(err, ==, "");
    g_free(g_steal_pointer(&out));
    g_assert_cmpint(qtest_run("-h", &out, NULL), ==, 0);
    g_assert_true(g_str_has_prefix(out, "usage: tpmvm [options]\n"));
    g_assert_nonnull(strstr(out, "-qtest DEV"));
    g_assert_nonnull(strstr(out, "-no-reboot"));
    g_free(g_steal_pointer(&out));
    g_assert_cmpint(qtest_run("-machine help", &out, NULL), ==, 0);
    g_assert_nonnull(strstr(out, "\npc "));
    g_assert_nonnull(strstr(out, "(default)"));
    g_assert_nonnull(strstr(out, "\nnone "));
    g_free(g_steal_pointer(&out));
    g_assert_cmpint(qtest_run("-accel help", &out, NULL), ==, 0);
    g_assert_nonnull(strstr(out, "\nqtest "));
    g_free(g_steal_pointer(&out));
    g_assert_cmpint(qtest_run("-device help", &out, NULL), ==, 0);
    g_assert_true(g_str_has_prefix(out, "Available devices:\n"));
    g_free(g_steal_pointer(&out));
    g_assert_cmpint(qtest_run("-chardev help", &out, NULL), ==, 0);
    g_assert_nonnull(strstr(out, "socket"));
    g_free(g_steal_pointer(&out));
    g_assert_cmpint(qtest_run("-d help", &out, NULL), ==, 0);
    g_assert_nonnull(strstr(out, "trace:PATTERN"));
    g_free(g_steal_pointer(&out));
    g_assert_cmpint(qtest_run("-object help", &out, NULL), ==, 0);
    g_assert_nonnull(strstr(out, "secret"));
}

/* -object, -drive, -tpmdev reach their parts (not a fallback that says "not built") */
static void test_objects_and_backends_reach_their_parts(void)
{
    g_autofree char *out = NULL, *err = NULL;

    g_assert_cmpint(qtest_run("-object secret,id=s0,data=abc -machine none -accel qtest "
                              "-device nosuch",
                              NULL, &err),
                    ==, 1);
    /* the secret part may warn about data=; the failure is the device's */
    g_assert_true(g_str_has_suffix(err, "tpmvm: -device nosuch: 'nosuch' is not a valid "
                                        "device model name (see -device help)\n"));
    g_assert_null(strstr(err, "not built yet"));
    g_free(g_steal_pointer(&err));
    g_assert_cmpint(qtest_run("-machine none -accel qtest -drive "
                              "if=none,id=d0,file=/nonexistent-dir/x.qcow2,format=qcow2",
                              NULL, &err),
                    ==, 1);
    g_assert_true(g_str_has_prefix(err, "tpmvm: -drive if=none,id=d0,"));
    g_assert_true(g_str_has_suffix(err, ": No such file or directory\n"));
    g_free(g_steal_pointer(&err));
    g_assert_cmpint(qtest_run("-tpmdev help", &out, &err), ==, 0);
    g_assert_cmpstr(err, ==, "");
    g_assert_cmpstr(out, !=, "");
}

static void test_sigterm_exits_cleanly(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine none");
    g_autofree char *err = NULL;

    kill(qtest_pid(qts), SIGTERM);
    g_assert_cmpint(qtest_wait_exit(qts, 10000), ==, 0);
    err = qtest_get_stderr(qts);
    g_assert_cmpstr(err, ==, "tpmvm: terminating on signal 15\n");
    qtest_quit(qts);
}

static void test_trace_and_qtest_log_files(void)
{
    g_autofree char *dir = g_dir_make_tmp("tpmvm-cmdline-XXXXXX", NULL);
    g_autofree char *trace = g_build_filename(dir, "trace.txt", NULL);
    g_autofree char *log = g_build_filename(dir, "qtest.log", NULL);
    g_autofree char *args = g_strdup_printf("-machine pc -m 16 -trace 'qtest_*' -D %s "
                                            "-d guest_errors -qtest-log %s",
                                            trace, log);
    QTestState *qts = qtest_init_without_qmp(args);
    g_autofree char *t = NULL, *l = NULL;

    qtest_writel(qts, 0x10, 0x42);
    g_assert_cmphex(qtest_readl(qts, 0xc0000000), ==, 0xffffffff);
    qtest_quit(qts);
    g_assert_true(g_file_get_contents(trace, &t, NULL, NULL));
    g_assert_nonnull(strstr(t, " qtest_request writel 0x10 0x42\n"));
    /* -d guest_errors shows the access that hit no device */
    g_assert_nonnull(
        strstr(t, " memory_unassigned_read memory addr=0xc0000000 size=4\n"));
    g_assert_true(g_file_get_contents(log, &l, NULL, NULL));
    g_assert_true(
        g_regex_match_simple("\\[R \\+[0-9.]+\\] writel 0x10 0x42\n\\[S \\+[0-9.]+\\] "
                             "OK\n",
                             l, 0, 0));
    g_assert_true(
        g_regex_match_simple("\\[S \\+[0-9.]+\\] OK 0x00000000ffffffff\n", l, 0, 0));
    unlink(trace);
    unlink(log);
    rmdir(dir);
}

static int connect_retry(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    strcpy(addr.sun_path, path);
    for (int i = 0; i < 2000; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
            return fd;
        }
        close(fd);
        g_usleep(5000);
    }
    g_error("could not connect to %s", path);
}

static void test_daemonize_and_pidfile(void)
{
    g_autofree char *dir = g_dir_make_tmp("tpmvm-cmdline-XXXXXX", NULL);
    g_autofree char *pidfile = g_build_filename(dir, "vm.pid", NULL);
    g_autofree char *sock = g_build_filename(dir, "q.sock", NULL);
    g_autofree char *args = g_strdup_printf("-daemonize -pidfile %s -machine pc -m 16 "
                                            "-qtest unix:%s,server=on,wait=off",
                                            pidfile, sock);
    g_autofree char *pidtext = NULL, *out = NULL, *err = NULL;
    char reply[64] = "";
    pid_t pid;
    int fd;
    ssize_t n = 0;

    /* the parent returns 0 once the daemon is set up */
    g_assert_cmpint(qtest_run(args, &out, &err), ==, 0);
    g_assert_cmpstr(err, ==, "");
    g_assert_true(g_file_get_contents(pidfile, &pidtext, NULL, NULL));
    pid = (pid_t)atoi(pidtext);
    g_assert_cmpint(pid, >, 1);
    g_assert_cmpint(kill(pid, 0), ==, 0);
    fd = connect_retry(sock);
    g_assert_cmpint(write(fd, "endianness\n", 11), ==, 11);
    while (n < (ssize_t)sizeof(reply) - 1 && !strchr(reply, '\n')) {
        ssize_t r = read(fd, reply + n, sizeof(reply) - 1 - n);
        g_assert_cmpint(r, >, 0);
        n += r;
    }
    g_assert_cmpstr(reply, ==, "OK little\n");
    close(fd);
    kill(pid, SIGTERM);
    /* it removes its pid file when it goes */
    for (int i = 0; i < 2000 && g_file_test(pidfile, G_FILE_TEST_EXISTS); i++) {
        g_usleep(5000);
    }
    g_assert_false(g_file_test(pidfile, G_FILE_TEST_EXISTS));
    unlink(sock);
    rmdir(dir);
}

static void test_daemonize_reports_setup_failure(void)
{
    g_autofree char *err = NULL;

    g_assert_cmpint(
        qtest_run("-daemonize -machine none -accel qtest -device nosuch", NULL, &err), ==,
        1);
    g_assert_cmpstr(err, ==,
                    "tpmvm: -device nosuch: 'nosuch' is not a valid device model name "
                    "(see -device help)\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cmdline/errors/are-exact-and-exit-1",
                    test_errors_are_exact_and_exit_1);
    g_test_add_func("/cmdline/accel/kvm-without-kvm-support-is-refused",
                    test_accel_kvm_without_kvm_support);
    g_test_add_func("/cmdline/accel/falls-back-in-order", test_accel_falls_back_in_order);
    g_test_add_func("/cmdline/help/version-and-lists-exit-0", test_version_and_help);
    g_test_add_func("/cmdline/objects/secret-drive-and-tpmdev-reach-their-parts",
                    test_objects_and_backends_reach_their_parts);
    g_test_add_func("/cmdline/signal/sigterm-exits-cleanly", test_sigterm_exits_cleanly);
    g_test_add_func("/cmdline/logging/trace-and-qtest-log-files",
                    test_trace_and_qtest_log_files);
    g_test_add_func("/cmdline/daemonize/pidfile-names-the-daemon",
                    test_daemonize_and_pidfile);
    g_test_add_func("/cmdline/daemonize/setup-failure-reaches-the-caller",
                    test_daemonize_reports_setup_failure);
    return g_test_run();
}
