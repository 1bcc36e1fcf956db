/*
 * QMP through a real tpmvm process: replies and errors on the wire, run-state
 * commands and their events, several clients at once, reconnects, quit.
 */
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "libqtest.h"
#include "monitor-client.h"

#define TIMEOUT_MS 10000

/* Extra monitor sockets live here; the test removes it. */
typedef struct Fixture {
    char *dir;
    char *qmp2; /* -qmp ...,server=on */
    char *qmp3; /* -chardev socket + -mon mode=control */
    QTestState *qts;
} Fixture;

static void fixture_start(Fixture *f, const char *extra)
{
    g_autoptr(GError) err = NULL;

    f->dir = g_dir_make_tmp("test-monitor-qmp-XXXXXX", &err);
    g_assert_no_error(err);
    f->qmp2 = g_build_filename(f->dir, "qmp2.sock", NULL);
    f->qmp3 = g_build_filename(f->dir, "qmp3.sock", NULL);
    f->qts = qtest_initf("-machine pc -m 16 %s -qmp unix:%s,server=on,wait=off "
                         "-chardev socket,id=qmp3,path=%s,server=on,wait=off "
                         "-mon chardev=qmp3,mode=control",
                         extra, f->qmp2, f->qmp3);
}

static void fixture_stop(Fixture *f)
{
    if (f->qts) {
        qtest_quit(f->qts);
    }
    g_unlink(f->qmp2);
    g_unlink(f->qmp3);
    g_rmdir(f->dir);
    g_free(f->qmp2);
    g_free(f->qmp3);
    g_free(f->dir);
}

static const char *error_desc(JsonObject *rsp)
{
    JsonObject *e = json_object_get_object_member(rsp, "error");

    g_assert_nonnull(e);
    return json_object_get_string_member(e, "desc");
}

static const char *error_class(JsonObject *rsp)
{
    return json_object_get_string_member(json_object_get_object_member(rsp, "error"),
                                         "class");
}

static char *query_status(QTestState *qts, bool *running)
{
    JsonObject *rsp = qtest_qmp(qts, "{\"execute\": \"query-status\"}");
    JsonObject *ret = json_object_get_object_member(rsp, "return");
    char *status;

    g_assert_nonnull(ret);
    g_assert_false(json_object_get_boolean_member(ret, "singlestep"));
    *running = json_object_get_boolean_member(ret, "running");
    status = g_strdup(json_object_get_string_member(ret, "status"));
    json_object_unref(rsp);
    return status;
}

static void test_greeting_has_version(void)
{
    QTestState *qts = qtest_init("-machine none");
    JsonObject *qmp = json_object_get_object_member(qtest_qmp_greeting(qts), "QMP");
    JsonObject *ver = json_object_get_object_member(qmp, "version");
    JsonObject *triple = json_object_get_object_member(ver, "qemu");

    g_assert_cmpint(json_object_get_int_member(triple, "major"), ==, 0);
    g_assert_cmpint(json_object_get_int_member(triple, "minor"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(triple, "micro"), ==, 0);
    g_assert_cmpstr(json_object_get_string_member(ver, "package"), ==, "tpmvm");
    g_assert_cmpuint(
        json_array_get_length(json_object_get_array_member(qmp, "capabilities")), ==, 0);
    qtest_quit(qts);
}

static void test_errors_on_the_wire(void)
{
    QTestState *qts = qtest_init("-machine none");
    JsonObject *rsp;

    rsp = qtest_qmp(qts, "{\"execute\": \"no-such\", \"id\": \"e1\"}");
    g_assert_cmpstr(error_class(rsp), ==, "CommandNotFound");
    g_assert_cmpstr(error_desc(rsp), ==, "The command no-such has not been found");
    g_assert_cmpstr(json_object_get_string_member(rsp, "id"), ==, "e1");
    json_object_unref(rsp);

    rsp = qtest_qmp(qts, "{\"execute\": \"human-monitor-command\"}");
    g_assert_cmpstr(error_desc(rsp), ==, "Parameter 'command-line' is missing");
    json_object_unref(rsp);

    rsp = qtest_qmp(qts, "{\"execute\": \"stop\", \"arguments\": {\"now\": true}}");
    g_assert_cmpstr(error_desc(rsp), ==, "Parameter 'now' is unexpected");
    json_object_unref(rsp);

    rsp = qtest_qmp(qts, "[\"execute\", \"stop\"]");
    g_assert_cmpstr(error_desc(rsp), ==, "QMP input must be a JSON object");
    json_object_unref(rsp);

    rsp = qtest_qmp(qts, "{\"execute\": \"stop\" \"id\": 1}");
    g_assert_true(g_str_has_prefix(error_desc(rsp), "JSON parse error, "));
    json_object_unref(rsp);

    rsp = qtest_qmp(qts, "{\"execute\": \"qmp_capabilities\"}");
    g_assert_cmpstr(error_class(rsp), ==, "CommandNotFound");
    json_object_unref(rsp);
    qtest_quit(qts);
}

static void test_stop_cont_change_status(void)
{
    QTestState *qts = qtest_init("-machine pc -m 16 -S");
    g_autofree char *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
    g_autofree char *h1 = NULL, *h2 = NULL, *h3 = NULL;
    bool running;

    s1 = query_status(qts, &running);
    g_assert_cmpstr(s1, ==, "prelaunch");
    g_assert_false(running);
    h1 = qtest_hmp(qts, "info status");
    g_assert_cmpstr(h1, ==, "VM status: paused (prelaunch)\r\n");

    /* stop before the first cont leaves the VM in prelaunch, without STOP */
    qtest_qmp_assert_success(qts, "{\"execute\": \"stop\"}");
    s2 = query_status(qts, &running);
    g_assert_cmpstr(s2, ==, "prelaunch");

    qtest_qmp_assert_success(qts, "{\"execute\": \"cont\"}");
    qtest_qmp_eventwait(qts, "RESUME");
    s3 = query_status(qts, &running);
    g_assert_cmpstr(s3, ==, "running");
    g_assert_true(running);
    h2 = qtest_hmp(qts, "info status");
    g_assert_cmpstr(h2, ==, "VM status: running\r\n");

    qtest_qmp_assert_success(qts, "{\"execute\": \"stop\"}");
    qtest_qmp_eventwait(qts, "STOP");
    s4 = query_status(qts, &running);
    g_assert_cmpstr(s4, ==, "paused");
    g_assert_false(running);
    h3 = qtest_hmp(qts, "info status");
    g_assert_cmpstr(h3, ==, "VM status: paused\r\n");
    qtest_quit(qts);
}

static void test_system_reset_emits_reset(void)
{
    QTestState *qts = qtest_init("-machine pc -m 16");
    JsonObject *ev, *data;

    qtest_qmp_assert_success(qts, "{\"execute\": \"system_reset\"}");
    ev = qtest_qmp_eventwait_ref(qts, "RESET");
    data = json_object_get_object_member(ev, "data");
    g_assert_false(json_object_get_boolean_member(data, "guest"));
    g_assert_cmpstr(json_object_get_string_member(data, "reason"), ==,
                    "host-qmp-system-reset");
    json_object_unref(ev);
    qtest_quit(qts);
}

static void test_query_machines_and_commands(void)
{
    QTestState *qts = qtest_init("-machine none");
    JsonObject *rsp = qtest_qmp(qts, "{\"execute\": \"query-machines\"}");
    JsonArray *list = json_object_get_array_member(rsp, "return");
    g_autoptr(GHashTable) names =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    bool pc_default = false;
    const char *core[] = {"qmp_capabilities",
                          "query-version",
                          "query-commands",
                          "query-status",
                          "query-machines",
                          "query-name",
                          "stop",
                          "cont",
                          "system_reset",
                          "quit",
                          "human-monitor-command"};

    g_assert_nonnull(list);
    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonObject *m = json_array_get_object_element(list, i);

        if (strcmp(json_object_get_string_member(m, "name"), "pc") == 0) {
            pc_default =
                json_object_get_boolean_member_with_default(m, "is-default", false);
        }
        g_hash_table_add(names, g_strdup(json_object_get_string_member(m, "name")));
    }
    g_assert_true(pc_default);
    g_assert_true(g_hash_table_contains(names, "none"));
    json_object_unref(rsp);

    g_hash_table_remove_all(names);
    rsp = qtest_qmp(qts, "{\"execute\": \"query-commands\"}");
    list = json_object_get_array_member(rsp, "return");
    for (guint i = 0; i < json_array_get_length(list); i++) {
        JsonObject *c = json_array_get_object_element(list, i);

        g_hash_table_add(names, g_strdup(json_object_get_string_member(c, "name")));
    }
    for (guint i = 0; i < G_N_ELEMENTS(core); i++) {
        g_assert_true(g_hash_table_contains(names, core[i]));
    }
    json_object_unref(rsp);
    qtest_quit(qts);
}

static void test_query_name(void)
{
    QTestState *named = qtest_init("-machine none -name guest=vm-one");
    QTestState *plain = qtest_init("-machine none");
    JsonObject *rsp = qtest_qmp(named, "{\"execute\": \"query-name\"}");
    JsonObject *ret = json_object_get_object_member(rsp, "return");

    g_assert_cmpstr(json_object_get_string_member(ret, "name"), ==, "vm-one");
    json_object_unref(rsp);
    rsp = qtest_qmp(plain, "{\"execute\": \"query-name\"}");
    ret = json_object_get_object_member(rsp, "return");
    g_assert_cmpuint(json_object_get_size(ret), ==, 0);
    json_object_unref(rsp);
    qtest_quit(named);
    qtest_quit(plain);
}

static void test_human_monitor_command(void)
{
    QTestState *qts = qtest_init("-machine none");
    g_autofree char *ver = qtest_hmp(qts, "info version");
    g_autofree char *unknown = qtest_hmp(qts, "foo");
    g_autofree char *help = qtest_hmp(qts, "help");
    g_autofree char *extra = qtest_hmp(qts, "stop now");

    g_assert_cmpstr(ver, ==, "0.1.0\r\n");
    g_assert_cmpstr(unknown, ==, "unknown command: 'foo'\r\n");
    g_assert_nonnull(strstr(help, "cont|c  -- resume emulation\r\n"));
    g_assert_nonnull(strstr(help, "quit|q  -- quit the emulator\r\n"));
    g_assert_cmpstr(extra, ==,
                    "stop|s: extraneous characters at the end of line\r\n"
                    "Try \"help stop\" for more information\r\n");
    qtest_quit(qts);
}

/* Every negotiated client gets the event; one that has not negotiated does not. */
static void test_two_clients_receive_events(void)
{
    Fixture f = {0};
    MonClient *b, *c;
    JsonObject *ev, *rsp;
    g_autofree char *greeting = NULL;

    fixture_start(&f, "");
    b = mon_client_connect(f.qmp2);
    mon_client_qmp_handshake(b);
    c = mon_client_connect(f.qmp3);
    greeting = mon_client_read_line(c, TIMEOUT_MS);
    g_assert_nonnull(strstr(greeting, "\"QMP\""));

    qtest_qmp_assert_success(f.qts, "{\"execute\": \"stop\"}");
    qtest_qmp_eventwait(f.qts, "STOP");
    ev = mon_client_qmp_read(b);
    g_assert_cmpstr(json_object_get_string_member(ev, "event"), ==, "STOP");
    g_assert_true(json_object_has_member(ev, "timestamp"));
    json_object_unref(ev);

    /* the un-negotiated client saw nothing: its next line answers its request */
    mon_client_send_str(c, "{\"execute\": \"qmp_capabilities\", \"id\": \"c\"}");
    rsp = mon_client_qmp_read(c);
    g_assert_cmpstr(json_object_get_string_member(rsp, "id"), ==, "c");
    json_object_unref(rsp);

    /* a command from the second client is seen by all three */
    rsp = mon_client_qmp(b, "{\"execute\": \"cont\"}");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    qtest_qmp_eventwait(f.qts, "RESUME");
    ev = mon_client_qmp_read(c);
    g_assert_cmpstr(json_object_get_string_member(ev, "event"), ==, "RESUME");
    json_object_unref(ev);

    mon_client_free(b);
    mon_client_free(c);
    fixture_stop(&f);
}

/* A client that leaves mid-request; the next one starts from a clean session. */
static void test_reconnect_starts_fresh_session(void)
{
    Fixture f = {0};
    MonClient *b;
    JsonObject *rsp;
    g_autofree char *greeting = NULL;

    fixture_start(&f, "");
    b = mon_client_connect(f.qmp2);
    mon_client_qmp_handshake(b);
    mon_client_send_str(b, "{\"execute\": \"query-status\", \"arguments\": {\"x\": \"");
    mon_client_free(b);

    b = mon_client_connect(f.qmp2);
    greeting = mon_client_read_line(b, TIMEOUT_MS);
    g_assert_nonnull(greeting);
    g_assert_true(g_str_has_prefix(greeting, "{\"QMP\": "));
    rsp = mon_client_qmp(b, "{\"execute\": \"query-status\"}");
    g_assert_cmpstr(error_desc(rsp), ==,
                    "Expecting capabilities negotiation with 'qmp_capabilities'");
    json_object_unref(rsp);
    rsp = mon_client_qmp(b, "{\"execute\": \"qmp_capabilities\"}");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    mon_client_free(b);
    fixture_stop(&f);
}

/* quit: the reply, then SHUTDOWN, then the connection closes and the exit status is 0. */
static void test_quit_replies_then_exits(void)
{
    Fixture f = {0};
    MonClient *b;
    JsonObject *rsp, *ev;

    fixture_start(&f, "");
    b = mon_client_connect(f.qmp2);
    mon_client_qmp_handshake(b);
    mon_client_send_str(b, "{\"execute\": \"quit\", \"id\": \"bye\"}");
    rsp = mon_client_qmp_read(b);
    g_assert_cmpstr(json_object_get_string_member(rsp, "id"), ==, "bye");
    g_assert_true(json_object_has_member(rsp, "return"));
    json_object_unref(rsp);
    ev = mon_client_qmp_read(b);
    g_assert_cmpstr(json_object_get_string_member(ev, "event"), ==, "SHUTDOWN");
    g_assert_cmpstr(json_object_get_string_member(
                        json_object_get_object_member(ev, "data"), "reason"),
                    ==, "host-qmp-quit");
    json_object_unref(ev);
    g_assert_true(mon_client_wait_eof(b, TIMEOUT_MS));
    g_assert_cmpint(qtest_wait_exit(f.qts, TIMEOUT_MS), ==, 0);
    mon_client_free(b);
    fixture_stop(&f);
}

static void test_pretty_monitor_indents(void)
{
    Fixture f = {0};
    g_autofree char *sock = NULL;
    g_autofree char *greeting = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonNode) node = NULL;
    MonClient *p;

    f.dir = g_dir_make_tmp("test-monitor-qmp-XXXXXX", &err);
    g_assert_no_error(err);
    sock = g_build_filename(f.dir, "pretty.sock", NULL);
    f.qts = qtest_initf("-machine none -qmp-pretty unix:%s,server=on,wait=off", sock);
    p = mon_client_connect(sock);
    greeting = mon_client_read_until(p, "\n}\n", TIMEOUT_MS);
    g_assert_nonnull(greeting);
    g_assert_true(g_str_has_prefix(greeting, "{\n    \"QMP\": {\n"));
    node = json_from_string(greeting, &err);
    g_assert_no_error(err);
    mon_client_free(p);
    qtest_quit(f.qts);
    g_unlink(sock);
    g_rmdir(f.dir);
    g_free(f.dir);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/monitor/qmp/greeting-names-tpmvm-version",
                    test_greeting_has_version);
    g_test_add_func("/monitor/qmp/errors-come-back-in-qemu-form",
                    test_errors_on_the_wire);
    g_test_add_func("/monitor/qmp/stop-and-cont-change-query-status",
                    test_stop_cont_change_status);
    g_test_add_func("/monitor/qmp/system-reset-emits-reset",
                    test_system_reset_emits_reset);
    g_test_add_func("/monitor/qmp/query-machines-and-commands-list-the-build",
                    test_query_machines_and_commands);
    g_test_add_func("/monitor/qmp/query-name-reports-name", test_query_name);
    g_test_add_func("/monitor/qmp/human-monitor-command-runs-hmp",
                    test_human_monitor_command);
    g_test_add_func("/monitor/qmp/every-negotiated-client-gets-events",
                    test_two_clients_receive_events);
    g_test_add_func("/monitor/qmp/reconnect-starts-a-fresh-session",
                    test_reconnect_starts_fresh_session);
    g_test_add_func("/monitor/qmp/quit-replies-then-exits-0",
                    test_quit_replies_then_exits);
    g_test_add_func("/monitor/qmp/pretty-monitor-indents", test_pretty_monitor_indents);
    return g_test_run();
}
