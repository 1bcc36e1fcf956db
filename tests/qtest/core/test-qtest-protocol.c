/*
 * The qtest line protocol: every command's reply format, the FAIL/ERR paths,
 * interrupt interception, the virtual clock, and hostile input (huge lines,
 * NUL bytes, garbage numbers, clients leaving mid-line).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libqtest.h"

static void assert_reply(QTestState *qts, const char *req, const char *expected)
{
    g_autofree char *rsp = qtest_raw(qts, req);

    if (g_strcmp0(rsp, expected) != 0) {
        g_error("'%s': expected reply '%s', got '%s'", req, expected, rsp);
    }
}

static void test_reply_formats(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");

    assert_reply(qts, "writel 0x100 0xdeadbeef", "OK");
    assert_reply(qts, "readb 0x100", "OK 0x00000000000000ef");
    assert_reply(qts, "readw 0x100", "OK 0x000000000000beef");
    assert_reply(qts, "readl 0x100", "OK 0x00000000deadbeef");
    assert_reply(qts, "readq 0x100", "OK 0x00000000deadbeef");
    assert_reply(qts, "writeq 256 18446744073709551615", "OK");
    assert_reply(qts, "readq 0x100", "OK 0xffffffffffffffff");
    assert_reply(qts, "writeb 0x100 0x1234", "OK"); /* value truncated to the size */
    assert_reply(qts, "readw 0x100", "OK 0x000000000000ff34");
    assert_reply(qts, "inb 0x80", "OK 0x00ff");
    assert_reply(qts, "inw 0x80", "OK 0xffff");
    assert_reply(qts, "inl 0x80", "OK 0xffffffff");
    assert_reply(qts, "outb 0x80 0x1", "OK");
    assert_reply(qts, "outw 0x80 0x1", "OK");
    assert_reply(qts, "outl 0xffff 0x1", "OK");
    assert_reply(qts, "write 0x200 3 0x0a0b0c", "OK");
    assert_reply(qts, "read 0x200 4", "OK 0x0a0b0c00");
    /* short data is zero-padded to the size */
    assert_reply(qts, "write 0x200 4 0xff", "OK");
    assert_reply(qts, "read 0x200 4", "OK 0xff000000");
    assert_reply(qts, "b64write 0x300 3 AQID", "OK");
    assert_reply(qts, "b64read 0x300 3", "OK AQID");
    assert_reply(qts, "read 0x300 3", "OK 0x010203");
    assert_reply(qts, "memset 0x300 2 0x7f", "OK");
    assert_reply(qts, "b64read 0x300 4", "OK f38DAA==");
    assert_reply(qts, "memset 0x300 0 0x7f", "OK");
    assert_reply(qts, "endianness", "OK little");
    assert_reply(qts, "module_load block curl", "FAIL module loading is not supported");
    /* a trailing \r is accepted (clients on other systems) */
    assert_reply(qts, "readl 0x100\r", "OK 0x00000000ffffff34");
    qtest_quit(qts);
}

static void test_fail_and_err_paths(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");

    assert_reply(qts, "foo", "FAIL Unknown command 'foo'");
    assert_reply(qts, "READL 0x0", "FAIL Unknown command 'READL'");
    assert_reply(qts, "", "ERR empty command");
    assert_reply(qts, "readl", "ERR 'readl' takes 1 argument(s), got 0");
    assert_reply(qts, "readl 0 0", "ERR 'readl' takes 1 argument(s), got 2");
    assert_reply(qts, "readl  0", "ERR 'readl' takes 1 argument(s), got 2");
    assert_reply(qts, "readl 0x", "ERR invalid address '0x'");
    assert_reply(qts, "readl -1", "ERR invalid address '-1'");
    assert_reply(qts, "readl 0x10000000000000000",
                 "ERR invalid address '0x10000000000000000'");
    assert_reply(qts, "writel 0 zz", "ERR invalid value 'zz'");
    assert_reply(qts, "inb 0x10000", "ERR port 0x10000 is above 0xffff");
    assert_reply(qts, "outb 65536 0", "ERR port 0x10000 is above 0xffff");
    assert_reply(qts, "read 0 0", "ERR invalid argument size 0");
    assert_reply(qts, "read 0 16777217",
                 "ERR size 16777217 exceeds the limit of 16777216 bytes");
    assert_reply(qts, "b64read 0 0", "ERR invalid argument size 0");
    assert_reply(qts, "write 0 4 12", "ERR invalid argument size");
    assert_reply(qts, "write 0 4 0x", "ERR invalid argument size");
    assert_reply(qts, "write 0 2 0x0g", "ERR invalid hex data at byte 0");
    assert_reply(qts, "write 0 999999999999 0x00",
                 "ERR size 999999999999 exceeds the limit of "
                 "16777216 bytes");
    assert_reply(qts, "memset 0 1 0x100", "ERR value 0x100 does not fit in a byte");
    assert_reply(qts, "clock_step -5", "ERR invalid step '-5'");
    assert_reply(qts, "clock_set soon", "ERR invalid time 'soon'");
    assert_reply(qts, "clock_step 1 2", "ERR 'clock_step' takes 0 to 1 arguments, got 2");
    assert_reply(qts, "irq_intercept_in /machine/nothing", "FAIL Unknown device");
    assert_reply(qts, "set_irq_in nothing x 0 1", "FAIL Unknown device");
    assert_reply(qts, "set_irq_in ioapic x 24 1",
                 "FAIL no input line 24 on 'ioapic' (0..23)");
    assert_reply(qts, "set_irq_in ioapic x -1 1",
                 "FAIL no input line -1 on 'ioapic' (0..23)");
    assert_reply(qts, "set_irq_in ioapic x one 1", "ERR invalid line number or level");
    assert_reply(qts, "a b c d e f g h i j", "ERR too many arguments");
    /* the server still answers normally */
    assert_reply(qts, "writel 0 0x5", "OK");
    assert_reply(qts, "readl 0", "OK 0x0000000000000005");
    qtest_quit(qts);
}

static void test_b64write_with_mismatched_length(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");

    qtest_memset(qts, 0x400, 0xee, 8);
    /* decoded 3 bytes but size 6: only 3 are written */
    assert_reply(qts, "b64write 0x400 6 AQID", "OK");
    assert_reply(qts, "read 0x400 8", "OK 0x010203eeeeeeeeee");
    /* decoded 3 bytes but size 2: 2 are written */
    assert_reply(qts, "b64write 0x500 2 AQID", "OK");
    assert_reply(qts, "read 0x500 3", "OK 0x010200");
    /* garbage base64 must not crash */
    assert_reply(qts, "b64write 0x500 4 !!!!", "OK");
    assert_reply(qts, "readl 0", "OK 0x0000000000000000");
    qtest_quit(qts);
}

static void test_irq_intercept_reports_level_changes(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");
    g_autofree char *line = NULL;

    qtest_irq_intercept_in(qts, "ioapic");
    assert_reply(qts, "irq_intercept_in ioapic", "FAIL IRQ intercept already enabled");
    assert_reply(qts, "irq_intercept_out /machine/ioapic",
                 "FAIL IRQ intercept already enabled");
    g_assert_false(qtest_get_irq(qts, 5));
    /* the raw stream: the IRQ line comes before the OK, only on changes */
    qtest_send_bytes(qts, "set_irq_in ioapic unnamed-gpio-in 5 1\n", 38);
    qtest_send_bytes(qts, "set_irq_in ioapic unnamed-gpio-in 5 1\n", 38);
    qtest_send_bytes(qts, "set_irq_in /machine/ioapic unnamed-gpio-in 23 7\n", 48);
    for (int i = 0; i < 3; i++) {
        line = qtest_recv_line(qts);
        g_assert_cmpstr(line, ==, "OK");
        g_clear_pointer(&line, g_free);
    }
    g_assert_true(qtest_get_irq(qts, 5));
    g_assert_true(qtest_get_irq(qts, 23));
    g_assert_false(qtest_get_irq(qts, 4));
    qtest_set_irq_in(qts, "ioapic", NULL, 5, 0);
    g_assert_false(qtest_get_irq(qts, 5));
    g_assert_true(qtest_get_irq(qts, 23));
    qtest_quit(qts);
}

static void test_irq_lines_in_raw_order(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");
    static const char *const expected[] = {"IRQ raise 3", "OK", "OK", "IRQ lower 3",
                                           "OK"};

    assert_reply(qts, "irq_intercept_in ioapic", "OK");
    qtest_send_bytes(qts,
                     "set_irq_in ioapic x 3 1\nset_irq_in ioapic x 3 1\n"
                     "set_irq_in ioapic x 3 0\n",
                     72);
    for (size_t i = 0; i < G_N_ELEMENTS(expected); i++) {
        g_autofree char *l = qtest_recv_raw_line(qts);
        g_assert_cmpstr(l, ==, expected[i]);
    }
    g_assert_false(qtest_get_irq(qts, 3));
    qtest_quit(qts);
}

static void test_irq_intercept_needs_a_machine_with_gsis(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine none");

    assert_reply(qts, "irq_intercept_in ioapic", "FAIL Unknown device");
    qtest_quit(qts);
}

static void test_virtual_clock(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine none");

    assert_reply(qts, "clock_step",
                 "FAIL cannot advance clock to the next deadline because there is no "
                 "pending deadline");
    g_assert_cmpint(qtest_clock_step(qts, 0), ==, 0);
    g_assert_cmpint(qtest_clock_step(qts, 1000), ==, 1000);
    g_assert_cmpint(qtest_clock_step(qts, 0x10), ==, 1016);
    g_assert_cmpint(qtest_clock_set(qts, 5000), ==, 5000);
    /* the clock never goes back */
    g_assert_cmpint(qtest_clock_set(qts, 10), ==, 5000);
    assert_reply(qts, "clock_step 9223372036854775807", "OK 9223372036854775807");
    assert_reply(qts, "clock_step 1", "OK 9223372036854775807");
    qtest_quit(qts);
}

static void test_huge_line_fails_and_is_discarded(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");
    size_t len = 200000;
    g_autofree char *big = g_malloc(len);

    /* a writel whose value goes on for 200 KB: must be refused as a whole */
    memset(big, '1', len);
    memcpy(big, "writel 0x0 ", 11);
    qtest_send_bytes(qts, big, len);
    qtest_send_bytes(qts, "\n", 1);
    {
        g_autofree char *rsp = qtest_recv_line(qts);
        g_assert_cmpstr(rsp, ==, "FAIL line too long (the limit is 65536 bytes)");
    }
    assert_reply(qts, "readl 0x0", "OK 0x0000000000000000");
    /* exactly at the limit is still accepted */
    {
        g_autofree char *edge = g_malloc(65536 + 1);
        memset(edge, '0', 65536);
        memcpy(edge, "readl 0x", 8);
        edge[65535] = '4';
        edge[65536] = '\n';
        qtest_send_bytes(qts, edge, 65537);
        g_autofree char *rsp = qtest_recv_line(qts);
        g_assert_cmpstr(rsp, ==, "OK 0x0000000000000000");
    }
    qtest_quit(qts);
}

static void test_nul_bytes_and_binary_garbage(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");
    static const char nul_line[] = "readl 0x0\0junk\n";
    uint8_t garbage[256];

    qtest_send_bytes(qts, nul_line, sizeof(nul_line) - 1);
    {
        g_autofree char *rsp = qtest_recv_line(qts);
        g_assert_cmpstr(rsp, ==, "ERR NUL byte in request");
    }
    for (int i = 0; i < 256; i++) {
        garbage[i] = (uint8_t)(i == '\n' ? 'x' : i);
    }
    qtest_send_bytes(qts, garbage, sizeof(garbage));
    qtest_send_bytes(qts, "\n", 1);
    {
        g_autofree char *rsp = qtest_recv_line(qts);
        g_assert_true(g_str_has_prefix(rsp, "ERR") || g_str_has_prefix(rsp, "FAIL"));
    }
    assert_reply(qts, "endianness", "OK little");
    qtest_quit(qts);
}

/* Start tpmvm with a server-mode qtest socket; returns its pid. */
static GPid spawn_qtest_server(const char *sock)
{
    g_autofree char *spec = g_strdup_printf("unix:%s,server=on,wait=off", sock);
    char *argv[] = {(char *)g_getenv("TPMVM_BINARY"),
                    "-machine",
                    "pc",
                    "-m",
                    "16",
                    "-accel",
                    "qtest",
                    "-qtest",
                    spec,
                    NULL};
    GPid pid;
    g_autoptr(GError) err = NULL;

    g_assert_true(g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                &pid, &err));
    g_assert_no_error(err);
    return pid;
}

static int connect_retry(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};

    g_assert_cmpuint(strlen(path), <, sizeof(addr.sun_path));
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

static char *read_line_fd(int fd)
{
    GString *s = g_string_new(NULL);
    char c;

    while (read(fd, &c, 1) == 1) {
        if (c == '\n') {
            return g_string_free(s, FALSE);
        }
        g_string_append_c(s, c);
    }
    g_string_free(s, TRUE);
    return NULL;
}

static void send_str(int fd, const char *s)
{
    g_assert_cmpint(write(fd, s, strlen(s)), ==, (ssize_t)strlen(s));
}

static void test_client_leaving_mid_line(void)
{
    g_autofree char *dir = g_dir_make_tmp("tpmvm-qtest-XXXXXX", NULL);
    g_autofree char *sock = g_build_filename(dir, "q.sock", NULL);
    GPid pid = spawn_qtest_server(sock);
    int fd, status;
    char *l;

    fd = connect_retry(sock);
    send_str(fd, "writel 0x10 0x1234\n");
    l = read_line_fd(fd);
    g_assert_cmpstr(l, ==, "OK");
    g_free(l);
    /* half a request, then gone */
    send_str(fd, "writel 0x10 0x99");
    close(fd);
    /* the next client starts clean: the half line was dropped, not completed */
    fd = connect_retry(sock);
    send_str(fd, "9\nreadl 0x10\n");
    l = read_line_fd(fd);
    g_assert_cmpstr(l, ==, "FAIL Unknown command '9'");
    g_free(l);
    l = read_line_fd(fd);
    g_assert_cmpstr(l, ==, "OK 0x0000000000001234");
    g_free(l);
    /* leave with a huge half line: must not be kept for the next client */
    {
        size_t n = 100000;
        g_autofree char *big = g_malloc(n);
        memset(big, 'a', n);
        g_assert_cmpint(write(fd, big, n), ==, (ssize_t)n);
    }
    close(fd);
    fd = connect_retry(sock);
    send_str(fd, "readl 0x10\n");
    l = read_line_fd(fd);
    g_assert_cmpstr(l, ==, "OK 0x0000000000001234");
    g_free(l);
    close(fd);
    kill(pid, SIGTERM);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
    g_spawn_close_pid(pid);
    /* the server socket is removed at exit */
    g_assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));
    rmdir(dir);
}

static void test_pipelined_requests_answered_in_order(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");
    GString *batch = g_string_new(NULL);

    for (int i = 0; i < 1000; i++) {
        g_string_append_printf(batch, "writel 0x%x 0x%x\nreadl 0x%x\n", i * 4, i, i * 4);
    }
    qtest_send_bytes(qts, batch->str, batch->len);
    for (int i = 0; i < 1000; i++) {
        g_autofree char *w = qtest_recv_line(qts);
        g_autofree char *r = qtest_recv_line(qts);
        g_autofree char *expect = g_strdup_printf("OK 0x%016x", i);
        g_assert_cmpstr(w, ==, "OK");
        g_assert_cmpstr(r, ==, expect);
    }
    g_string_free(batch, TRUE);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qtest/protocol/replies/have-qemu-formats", test_reply_formats);
    g_test_add_func("/qtest/protocol/malformed/get-fail-or-err", test_fail_and_err_paths);
    g_test_add_func("/qtest/protocol/b64write/mismatched-length-writes-the-shorter",
                    test_b64write_with_mismatched_length);
    g_test_add_func("/qtest/protocol/irq/intercept-reports-level-changes",
                    test_irq_intercept_reports_level_changes);
    g_test_add_func("/qtest/protocol/irq/lines-come-before-the-reply",
                    test_irq_lines_in_raw_order);
    g_test_add_func("/qtest/protocol/irq/intercept-needs-gsis",
                    test_irq_intercept_needs_a_machine_with_gsis);
    g_test_add_func("/qtest/protocol/clock/steps-and-never-goes-back",
                    test_virtual_clock);
    g_test_add_func("/qtest/protocol/limits/huge-line-fails-and-is-discarded",
                    test_huge_line_fails_and_is_discarded);
    g_test_add_func("/qtest/protocol/limits/nul-bytes-and-garbage-are-refused",
                    test_nul_bytes_and_binary_garbage);
    g_test_add_func("/qtest/protocol/socket/client-leaving-mid-line-leaves-no-trace",
                    test_client_leaving_mid_line);
    g_test_add_func("/qtest/protocol/pipelined-requests-answered-in-order",
                    test_pipelined_requests_answered_in_order);
    return g_test_run();
}
