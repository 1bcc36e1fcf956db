/*
 * The human monitor on a chardev (-monitor, -mon mode=readline) of a real
 * tpmvm process: banner, prompt, run-state commands, errors, quit.
 */
#include <string.h>

#include <glib/gstdio.h>

#include "libqtest.h"
#include "monitor-client.h"

#define TIMEOUT_MS 10000
#define PROMPT "(tpmvm) "

typedef struct Fixture {
    char *dir;
    char *sock;
    QTestState *qts;
    MonClient *mon;
} Fixture;

/* Start with a human monitor from `how` ("-monitor" or "-mon") and read the banner. */
static void fixture_start(Fixture *f, bool via_mon)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *banner = NULL;

    f->dir = g_dir_make_tmp("test-monitor-hmp-XXXXXX", &err);
    g_assert_no_error(err);
    f->sock = g_build_filename(f->dir, "hmp.sock", NULL);
    if (via_mon) {
        f->qts = qtest_initf("-machine pc -m 16 -S "
                             "-chardev socket,id=h0,path=%s,server=on,wait=off "
                             "-mon chardev=h0,mode=readline",
                             f->sock);
    } else {
        f->qts = qtest_initf("-machine pc -m 16 -S -monitor unix:%s,server=on,wait=off",
                             f->sock);
    }
    f->mon = mon_client_connect(f->sock);
    banner = mon_client_read_until(f->mon, PROMPT, TIMEOUT_MS);
    g_assert_cmpstr(banner, ==,
                    "tpmvm 0.1.0 monitor - type 'help' for more information\r\n" PROMPT);
}

static void fixture_stop(Fixture *f)
{
    mon_client_free(f->mon);
    qtest_quit(f->qts);
    g_unlink(f->sock);
    g_rmdir(f->dir);
    g_free(f->sock);
    g_free(f->dir);
}

/* Send one line; return its output without the trailing prompt. */
static char *hmp(Fixture *f, const char *line)
{
    g_autofree char *raw = NULL;

    mon_client_send_str(f->mon, line);
    mon_client_send_str(f->mon, "\n");
    raw = mon_client_read_until(f->mon, PROMPT, TIMEOUT_MS);
    g_assert_nonnull(raw);
    return g_strndup(raw, strlen(raw) - strlen(PROMPT));
}

static void assert_hmp(Fixture *f, const char *line, const char *expected)
{
    g_autofree char *out = hmp(f, line);

    g_assert_cmpstr(out, ==, expected);
}

static void run_state_commands(bool via_mon)
{
    Fixture f = {0};

    fixture_start(&f, via_mon);
    assert_hmp(&f, "info status", "VM status: paused (prelaunch)\r\n");
    assert_hmp(&f, "c", "");
    qtest_qmp_eventwait(f.qts, "RESUME");
    assert_hmp(&f, "info status", "VM status: running\r\n");
    assert_hmp(&f, "stop", "");
    qtest_qmp_eventwait(f.qts, "STOP");
    assert_hmp(&f, "info status", "VM status: paused\r\n");
    assert_hmp(&f, "cont", "");
    assert_hmp(&f, "info status", "VM status: running\r\n");
    assert_hmp(&f, "system_reset", "");
    qtest_qmp_eventwait(f.qts, "RESET");
    fixture_stop(&f);
}

static void test_monitor_option_runs_commands(void)
{
    run_state_commands(false);
}

static void test_mon_readline_runs_commands(void)
{
    run_state_commands(true);
}

static void test_errors_and_help(void)
{
    Fixture f = {0};
    g_autofree char *help = NULL;
    g_autofree char *info = NULL;

    fixture_start(&f, false);
    assert_hmp(&f, "foo", "unknown command: 'foo'\r\n");
    assert_hmp(&f, "info nothing", "unknown command: 'info nothing'\r\n");
    assert_hmp(&f, "", "");
    assert_hmp(&f, "info version", "0.1.0\r\n");
    help = hmp(&f, "help");
    g_assert_nonnull(strstr(help, "stop|s  -- stop emulation\r\n"));
    g_assert_nonnull(strstr(help, "system_reset  -- reset the system\r\n"));
    info = hmp(&f, "info");
    g_assert_nonnull(strstr(info, "info status  -- show the current VM status"));
    g_assert_nonnull(strstr(info, "info version  -- "));
    fixture_stop(&f);
}

static void test_quit_exits_0(void)
{
    Fixture f = {0};

    fixture_start(&f, false);
    mon_client_send_str(f.mon, "quit\n");
    g_assert_true(mon_client_wait_eof(f.mon, TIMEOUT_MS));
    g_assert_cmpint(qtest_wait_exit(f.qts, TIMEOUT_MS), ==, 0);
    fixture_stop(&f);
}

/* The monitor survives garbage and huge lines, and a reconnect gets a new banner. */
static void test_garbage_and_reconnect(void)
{
    Fixture f = {0};
    GString *big = g_string_new(NULL);
    g_autofree char *out = NULL;
    g_autofree char *banner = NULL;
    uint8_t junk[256];

    fixture_start(&f, false);
    for (int i = 0; i < 20000; i++) {
        g_string_append_c(big, 'x');
    }
    out = hmp(&f, big->str);
    g_assert_cmpstr(out, ==, "Error: line longer than 4096 bytes, ignored\r\n");
    for (int i = 0; i < 256; i++) {
        junk[i] = (uint8_t)(i == '\n' || i == '\r' ? ' ' : i);
    }
    mon_client_send(f.mon, junk, sizeof(junk));
    g_free(hmp(&f, ""));
    assert_hmp(&f, "info version", "0.1.0\r\n");

    mon_client_send_str(f.mon, "info sta");
    mon_client_free(f.mon);
    f.mon = mon_client_connect(f.sock);
    banner = mon_client_read_until(f.mon, PROMPT, TIMEOUT_MS);
    g_assert_nonnull(banner);
    assert_hmp(&f, "tus", "unknown command: 'tus'\r\n");
    g_string_free(big, TRUE);
    fixture_stop(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/monitor/hmp/monitor-option-runs-run-state-commands",
                    test_monitor_option_runs_commands);
    g_test_add_func("/monitor/hmp/mon-readline-runs-run-state-commands",
                    test_mon_readline_runs_commands);
    g_test_add_func("/monitor/hmp/errors-and-help", test_errors_and_help);
    g_test_add_func("/monitor/hmp/quit-exits-0", test_quit_exits_0);
    g_test_add_func("/monitor/hmp/survives-garbage-and-reconnects",
                    test_garbage_and_reconnect);
    return g_test_run();
}
