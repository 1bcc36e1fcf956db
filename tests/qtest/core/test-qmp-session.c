/*
 * libqtest's QMP side against the real monitor: greeting, capabilities
 * negotiation, error replies, and the run-state events (STOP/RESUME on
 * stop/cont, SHUTDOWN on quit) that system/runstate.c emits.
 *
 * Skipped while this build has no monitor (its part has not landed).
 */
#include <string.h>

#include "libqtest.h"

static bool monitor_missing(void)
{
    g_autofree char *err = NULL;

    /* with -version nothing is built: use a chardev that cannot connect */
    qtest_run("-machine none -accel qtest -chardev null,id=m0 -mon chardev=m0,mode=control "
              "-device nosuch",
              NULL, &err);
    return strstr(err, "is not built yet") != NULL;
}

static void test_greeting_and_errors(void)
{
    QTestState *qts;
    JsonObject *greeting, *qmp, *rsp, *error;

    if (monitor_missing()) {
        g_test_skip("the QMP monitor is not built yet");
        return;
    }
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

    if (monitor_missing()) {
        g_test_skip("the QMP monitor is not built yet");
        return;
    }
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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/session/greeting-and-error-replies", test_greeting_and_errors);
    g_test_add_func("/qmp/session/stop-cont-quit-emit-runstate-events",
                    test_stop_cont_and_quit_events);
    return g_test_run();
}
