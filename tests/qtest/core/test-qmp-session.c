/*
 * libqtest's QMP side against the real monitor: greeting, capabilities
 * negotiation, error replies, and the run-state events (STOP/RESUME on
 * stop/cont, SHUTDOWN on quit) that system/runstate.c emits.
 */
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
    return g_test_run();
}
