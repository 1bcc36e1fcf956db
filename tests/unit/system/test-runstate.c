/*
 * Run states: transitions, notifiers, reset and shutdown requests (also from
 * other threads), -no-reboot, start-up hooks.
 */
#include <string.h>

#include "hw/core/device.h"
#include "hw/core/machine.h"
#include "system/main-loop.h"
#include "system/runstate.h"
#include "util/error.h"

static GString *log_text;

static void notifier(void *opaque, bool running, RunState state)
{
    g_string_append_printf(log_text, "%s:%s;", running ? "run" : "stop",
                           runstate_name(state));
}

static void fake_pause(void)
{
    g_string_append(log_text, "pause;");
}

static void fake_resume(void)
{
    g_string_append(log_text, "resume;");
}

static void fake_reset(void)
{
    g_string_append(log_text, "cpu-reset;");
}

static const AccelOps fake_ops = {
    .name = "fake",
    .reset_cpus = fake_reset,
    .pause_cpus = fake_pause,
    .resume_cpus = fake_resume,
};

static void setup(void)
{
    if (log_text) {
        g_string_free(log_text, TRUE);
    }
    log_text = g_string_new(NULL);
}

static void test_names(void)
{
    g_assert_cmpstr(runstate_name(RUN_STATE_PRELAUNCH), ==, "prelaunch");
    g_assert_cmpstr(runstate_name(RUN_STATE_RUNNING), ==, "running");
    g_assert_cmpstr(runstate_name(RUN_STATE_PAUSED), ==, "paused");
    g_assert_cmpstr(runstate_name(RUN_STATE_SAVE_VM), ==, "save-vm");
    g_assert_cmpstr(runstate_name(RUN_STATE_RESTORE_VM), ==, "restore-vm");
    g_assert_cmpstr(runstate_name(RUN_STATE_INTERNAL_ERROR), ==, "internal-error");
    g_assert_cmpstr(runstate_name(RUN_STATE_SHUTDOWN), ==, "shutdown");
    g_assert_cmpstr(runstate_name(RUN_STATE__MAX), ==, "unknown");
}

static void test_start_stop_notify(void)
{
    setup();
    g_assert_cmpint(runstate_get(), ==, RUN_STATE_PRELAUNCH);
    vm_start();
    g_assert_true(runstate_is_running());
    vm_start(); /* already running: nothing happens */
    vm_stop(RUN_STATE_PAUSED);
    g_assert_cmpint(runstate_get(), ==, RUN_STATE_PAUSED);
    vm_stop(RUN_STATE_SAVE_VM); /* not running: only the state changes */
    g_assert_cmpint(runstate_get(), ==, RUN_STATE_SAVE_VM);
    vm_start();
    g_assert_cmpstr(log_text->str, ==,
                    "resume;run:running;pause;stop:paused;resume;run:running;");
    vm_stop(RUN_STATE_PAUSED);
}

static void test_invalid_transition_is_loud(void)
{
    if (g_test_subprocess()) {
        runstate_set(RUN_STATE_RUNNING);
        runstate_set(RUN_STATE_PRELAUNCH);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*invalid run state transition running -> prelaunch*");
}

typedef struct ResetDev {
    DeviceState parent;
} ResetDev;

static void resetdev_reset(DeviceState *dev)
{
    g_string_append(log_text, "dev-reset;");
}

static const DeviceClass resetdev_class = {
    .name = "test-reset-dev",
    .instance_size = sizeof(ResetDev),
    .reset = resetdev_reset,
};
DEVICE_TYPE_REGISTER(resetdev_class)

static void reset_hook(void *opaque)
{
    g_string_append(log_text, "hook;");
}

static void test_reset_request_resets_everything(void)
{
    int status = -1;

    setup();
    g_assert_true(device_realize(device_new("test-reset-dev", NULL), NULL));
    system_add_reset_hook(reset_hook, NULL);
    system_reset_request(false);
    g_assert_false(runstate_main_loop_should_exit(&status));
    g_assert_cmpstr(log_text->str, ==, "dev-reset;cpu-reset;hook;");
    /* a request is acted on once */
    g_assert_false(runstate_main_loop_should_exit(&status));
    g_assert_cmpstr(log_text->str, ==, "dev-reset;cpu-reset;hook;");
}

static gpointer request_shutdown(gpointer data)
{
    system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN, 3);
    system_shutdown_request(SHUTDOWN_CAUSE_HOST_SIGNAL, 3);
    return NULL;
}

static void test_shutdown_from_thread_ends_main_loop(void)
{
    if (g_test_subprocess()) {
        int status;
        setup();
        vm_start();
        g_thread_join(g_thread_new("req", request_shutdown, NULL));
        g_assert_true(system_shutdown_requested());
        status = main_loop_run();
        g_assert_cmpint(status, ==, 3);
        g_assert_cmpint(runstate_get(), ==, RUN_STATE_SHUTDOWN);
        /* stopped for shutdown: notifier runs, no extra pause after it */
        g_assert_true(g_str_has_suffix(log_text->str, "pause;stop:shutdown;"));
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
}

static void test_guest_reset_with_no_reboot_shuts_down(void)
{
    if (g_test_subprocess()) {
        MachineState *ms =
            machine_create(machine_class_find("none"), 0, "qtest", 1, NULL);
        int status = -1;
        g_assert_nonnull(ms);
        ms->no_reboot = true;
        setup();
        system_reset_request(true);
        g_assert_true(runstate_main_loop_should_exit(&status));
        g_assert_cmpint(status, ==, 0);
        /* no reset happened */
        g_assert_null(strstr(log_text->str, "cpu-reset"));
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_passed();
}

static bool hook_ok(void *opaque, GError **errp)
{
    g_string_append_printf(log_text, "%s;", (const char *)opaque);
    return true;
}

static bool hook_fail(void *opaque, GError **errp)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "snapshot '%s' not found",
                system_loadvm_tag());
    return false;
}

static void test_startup_hooks_run_in_order_and_stop_on_error(void)
{
    g_autoptr(GError) err = NULL;

    setup();
    g_assert_null(system_loadvm_tag());
    system_set_loadvm_tag("snap1");
    g_assert_cmpstr(system_loadvm_tag(), ==, "snap1");
    system_add_startup_hook(hook_ok, "first");
    system_add_startup_hook(hook_fail, NULL);
    system_add_startup_hook(hook_ok, "never");
    g_assert_false(system_run_startup_hooks(&err));
    g_assert_cmpstr(err->message, ==, "snapshot 'snap1' not found");
    g_assert_cmpstr(log_text->str, ==, "first;");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    main_loop_init();
    bql_lock();
    accel_set_ops(&fake_ops);
    runstate_add_notifier(notifier, NULL);
    g_test_add_func("/runstate/names-match-qemu", test_names);
    g_test_add_func("/runstate/start-stop/notify-and-drive-the-accelerator",
                    test_start_stop_notify);
    g_test_add_func("/runstate/transition/invalid-is-loud",
                    test_invalid_transition_is_loud);
    g_test_add_func("/runstate/reset/request-resets-devices-cpus-and-hooks",
                    test_reset_request_resets_everything);
    g_test_add_func("/runstate/shutdown/request-from-thread-ends-main-loop",
                    test_shutdown_from_thread_ends_main_loop);
    g_test_add_func("/runstate/reset/guest-reset-with-no-reboot-shuts-down",
                    test_guest_reset_with_no_reboot_shuts_down);
    g_test_add_func("/runstate/startup-hooks/run-in-order-and-stop-on-error",
                    test_startup_hooks_run_in_order_and_stop_on_error);
    return g_test_run();
}
