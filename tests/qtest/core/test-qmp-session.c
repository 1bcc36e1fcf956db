/*
 * libqtest's QMP side against the real monitor: greeting, capabilities
 * negotiation, error replies, and the run-state events (STOP/RESUME on
 * stop/cont, SHUTDOWN on quit) that system/runstate.c emits, and a second
 * monitor client that never reads its replies.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libqtest.h"

static void test_greeting_and_errors(void)
{
    QTestState *qts;
    JsonObject *greeting, *qmp, *rsp, *error;

    qts = qtest_init("-machine none");
    greeting = qtest_qmp_greeting(qts);
    qmp = json_object_get_object_member(greeting, "QMP");
    g_assert_nonnull(qmp);
    g_assert_true(json_object_has_member(qmp, "version"));
    g_assert_true(json_object_has_member(qmp, "capabilities"));
    rsp = qtest_qmp(qts, "{\"execute\": \"no-such-command\"}");
    error = json_object_get_object_member(rsp, "error");
    g_assert_nonnull(error);
    g_assert_cmpstr(json_object_get_string_member(error, "class"), ==, "CommandNotFound");
    json_object_unref(rsp);
    qtest_quit(qts);
}

static void test_stop_cont_and_quit_events(void)
{
    QTestState *qts;
    JsonObject *ev, *data;

    qts = qtest_init("-machine pc -m 16");
    qtest_qmp_assert_success(qts, "{\"execute\": \"stop\"}");
    qtest_qmp_eventwait(qts, "STOP");
    qtest_qmp_assert_success(qts, "{\"execute\": \"cont\"}");
    qtest_qmp_eventwait(qts, "RESUME");
    qtest_qmp_assert_success(qts, "{\"execute\": \"quit\"}");
    ev = qtest_qmp_eventwait_ref(qts, "SHUTDOWN");
    data = json_object_get_object_member(ev, "data");
    g_assert_false(json_object_get_boolean_member(data, "guest"));
    g_assert_cmpstr(json_object_get_string_member(data, "reason"), ==, "host-qmp-quit");
    json_object_unref(ev);
    g_assert_cmpint(qtest_wait_exit(qts, 10000), ==, 0);
    qtest_quit(qts);
}

static const char *query_status(QTestState *qts, bool *running)
{
    static char status[32];
    JsonObject *rsp = qtest_qmp(qts, "{\"execute\": \"query-status\"}");
    JsonObject *ret = json_object_get_object_member(rsp, "return");

    g_assert_nonnull(ret);
    *running = json_object_get_boolean_member(ret, "running");
    g_strlcpy(status, json_object_get_string_member(ret, "status"), sizeof(status));
    json_object_unref(rsp);
    return status;
}

static void test_minus_s_waits_in_prelaunch(void)
{
    QTestState *qts = qtest_init("-machine pc -m 16 -S");
    bool running = true;

    g_assert_cmpstr(query_status(qts, &running), ==, "prelaunch");
    g_assert_false(running);
    qtest_qmp_assert_success(qts, "{\"execute\": \"cont\"}");
    qtest_qmp_eventwait(qts, "RESUME");
    g_assert_cmpstr(query_status(qts, &running), ==, "running");
    g_assert_true(running);
    qtest_quit(qts);
}

static void test_system_reset_emits_reset(void)
{
    QTestState *qts = qtest_init("-machine pc -m 16");
    JsonObject *ev, *data;

    qtest_writel(qts, 0x1000, 0xfeedbeef);
    qtest_qmp_assert_success(qts, "{\"execute\": \"system_reset\"}");
    ev = qtest_qmp_eventwait_ref(qts, "RESET");
    data = json_object_get_object_member(ev, "data");
    g_assert_false(json_object_get_boolean_member(data, "guest"));
    g_assert_cmpstr(json_object_get_string_member(data, "reason"), ==,
                    "host-qmp-system-reset");
    json_object_unref(ev);
    /* a reset resets devices, not RAM (as on real hardware) */
    g_assert_cmphex(qtest_readl(qts, 0x1000), ==, 0xfeedbeef);
    qtest_quit(qts);
}

/*
 * A monitor client that sends commands and never reads the replies must not
 * stall the VM: qtest keeps answering at once and the other monitor keeps
 * working. 20000 replies (about 10 MB) are more than the 8 MiB a client may
 * leave unread, so the stuck client is dropped once it is that far behind.
 */
static void test_client_that_never_reads(void)
{
    g_autofree char *dir = g_dir_make_tmp("qmp-stuck-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "qmp.sock", NULL);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    static const char cmd[] = "{\"execute\": \"query-commands\"}\n";
    QTestState *qts;
    unsigned sent = 0, replies = 0;
    bool eof = false;
    char buf[65536];
    int fd;

    qts = qtest_initf("-machine pc -m 16 -qmp unix:%s,server=on,wait=off", path);
    signal(SIGPIPE, SIG_IGN);
    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(write(fd, "{\"execute\": \"qmp_capabilities\"}\n", 33), ==, 33);
    for (unsigned i = 0; i < 20000; i++) {
        if (write(fd, cmd, sizeof(cmd) - 1) != (ssize_t)sizeof(cmd) - 1) {
            break; /* dropped: the server closed the connection */
        }
        sent++;
        if (i % 250 == 0) {
            gint64 t0 = g_get_monotonic_time();
            qtest_writel(qts, 0x1000, i);
            g_assert_cmphex(qtest_readl(qts, 0x1000), ==, i);
            g_assert_cmpint(g_get_monotonic_time() - t0, <, G_USEC_PER_SEC);
        }
    }
    qtest_qmp_assert_success(qts, "{\"execute\": \"query-status\"}");

    /* The stuck client: everything it asked for (greeting and capabilities
     * reply included), or the end of the connection. */
    g_assert_cmpint(fcntl(fd, F_SETFL, O_NONBLOCK), ==, 0);
    while (!eof && replies < sent + 2) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        g_assert_cmpint(poll(&p, 1, 10000), ==, 1);
        n = read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        eof = n <= 0;
        for (ssize_t j = 0; j < n; j++) {
            replies += buf[j] == '\n';
        }
    }
    g_test_message("sent %u commands; %u lines back, %s", sent, replies,
                   eof ? "then dropped" : "all of them");
    g_assert_true(eof);
    g_assert_cmpuint(replies, >, 2);
    g_assert_cmpuint(replies, <, sent + 2);
    close(fd);
    qtest_quit(qts);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/session/greeting-and-error-replies", test_greeting_and_errors);
    g_test_add_func("/qmp/session/stop-cont-quit-emit-runstate-events",
                    test_stop_cont_and_quit_events);
    g_test_add_func("/qmp/session/minus-S-waits-in-prelaunch",
                    test_minus_s_waits_in_prelaunch);
    g_test_add_func("/qmp/session/system-reset-emits-reset",
                    test_system_reset_emits_reset);
    g_test_add_func("/qmp/session/client-that-never-reads-stalls-nothing",
                    test_client_that_never_reads);
    return g_test_run();
}
