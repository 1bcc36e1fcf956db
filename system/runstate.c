/*
 * Run states, their transitions and the reset/shutdown requests.
 * See include/system/runstate.h.
 */
#include <stdio.h>

#include "system/runstate.h"

#include "hw/core/device.h"
#include "hw/core/machine.h"
#include "monitor/monitor.h"
#include "system/main-loop.h"
#include "util/log.h"
#include "util/trace.h"

static RunState current_state = RUN_STATE_PRELAUNCH;
static const AccelOps *accel_ops;

static const char *const runstate_names[RUN_STATE__MAX] = {
    [RUN_STATE_PRELAUNCH] = "prelaunch",   [RUN_STATE_RUNNING] = "running",
    [RUN_STATE_PAUSED] = "paused",         [RUN_STATE_SAVE_VM] = "save-vm",
    [RUN_STATE_RESTORE_VM] = "restore-vm", [RUN_STATE_INTERNAL_ERROR] = "internal-error",
    [RUN_STATE_SHUTDOWN] = "shutdown",
};

/* allowed[from] is a bit mask of the states `from` may move to */
#define RS(s) (1u << (s))
static const unsigned runstate_allowed[RUN_STATE__MAX] = {
    [RUN_STATE_PRELAUNCH] = RS(RUN_STATE_RUNNING) | RS(RUN_STATE_PAUSED) |
                            RS(RUN_STATE_RESTORE_VM) | RS(RUN_STATE_SAVE_VM) |
                            RS(RUN_STATE_INTERNAL_ERROR) | RS(RUN_STATE_SHUTDOWN) |
                            RS(RUN_STATE_PRELAUNCH),
    [RUN_STATE_RUNNING] = RS(RUN_STATE_PAUSED) | RS(RUN_STATE_SAVE_VM) |
                          RS(RUN_STATE_RESTORE_VM) | RS(RUN_STATE_INTERNAL_ERROR) |
                          RS(RUN_STATE_SHUTDOWN),
    [RUN_STATE_PAUSED] = RS(RUN_STATE_RUNNING) | RS(RUN_STATE_PAUSED) |
                         RS(RUN_STATE_SAVE_VM) | RS(RUN_STATE_RESTORE_VM) |
                         RS(RUN_STATE_INTERNAL_ERROR) | RS(RUN_STATE_SHUTDOWN) |
                         RS(RUN_STATE_PRELAUNCH),
    [RUN_STATE_SAVE_VM] = RS(RUN_STATE_RUNNING) | RS(RUN_STATE_PAUSED) |
                          RS(RUN_STATE_PRELAUNCH) | RS(RUN_STATE_INTERNAL_ERROR) |
                          RS(RUN_STATE_SHUTDOWN),
    [RUN_STATE_RESTORE_VM] = RS(RUN_STATE_RUNNING) | RS(RUN_STATE_PAUSED) |
                             RS(RUN_STATE_PRELAUNCH) | RS(RUN_STATE_INTERNAL_ERROR) |
                             RS(RUN_STATE_SHUTDOWN),
    [RUN_STATE_INTERNAL_ERROR] = RS(RUN_STATE_PAUSED) | RS(RUN_STATE_RUNNING) |
                                 RS(RUN_STATE_RESTORE_VM) | RS(RUN_STATE_SHUTDOWN) |
                                 RS(RUN_STATE_PRELAUNCH),
    [RUN_STATE_SHUTDOWN] = RS(RUN_STATE_PAUSED) | RS(RUN_STATE_RUNNING) |
                           RS(RUN_STATE_PRELAUNCH) | RS(RUN_STATE_RESTORE_VM) |
                           RS(RUN_STATE_SHUTDOWN),
};

typedef struct NotifierEntry {
    RunStateNotifier fn;
    void *opaque;
} NotifierEntry;

typedef struct ResetHookEntry {
    ResetHook fn;
    void *opaque;
} ResetHookEntry;

typedef struct StartupHookEntry {
    StartupHook fn;
    void *opaque;
} StartupHookEntry;

static GArray *notifiers;     /* NotifierEntry */
static GArray *reset_hooks;   /* ResetHookEntry */
static GArray *startup_hooks; /* StartupHookEntry */

/* Requests come from any thread: plain atomics, acted on in the main loop. */
static gint shutdown_pending; /* 0 or cause + 1 */
static gint shutdown_status;
static gint reset_pending; /* 0, 1 = host, 2 = guest */
static char *loadvm_tag;

const char *runstate_name(RunState s)
{
    if ((unsigned)s >= RUN_STATE__MAX) {
        return "unknown";
    }
    return runstate_names[s];
}

RunState runstate_get(void)
{
    return current_state;
}

bool runstate_is_running(void)
{
    return current_state == RUN_STATE_RUNNING;
}

void runstate_set(RunState s)
{
    g_return_if_fail((unsigned)s < RUN_STATE__MAX);
    if (!(runstate_allowed[current_state] & RS(s))) {
        /* A programming error: the caller skipped a state. Loud, not fatal. */
        g_critical("invalid run state transition %s -> %s", runstate_name(current_state),
                   runstate_name(s));
    }
    trace_event("runstate_set", "%s -> %s", runstate_name(current_state),
                runstate_name(s));
    current_state = s;
}

static void runstate_notify(bool running)
{
    for (guint i = 0; notifiers && i < notifiers->len; i++) {
        NotifierEntry *e = &g_array_index(notifiers, NotifierEntry, i);
        e->fn(e->opaque, running, current_state);
    }
}

void runstate_add_notifier(RunStateNotifier fn, void *opaque)
{
    NotifierEntry e = {fn, opaque};

    if (!notifiers) {
        notifiers = g_array_new(FALSE, FALSE, sizeof(NotifierEntry));
    }
    g_array_append_val(notifiers, e);
}

void accel_set_ops(const AccelOps *ops)
{
    accel_ops = ops;
}

void vm_start(void)
{
    if (current_state == RUN_STATE_RUNNING) {
        return;
    }
    runstate_set(RUN_STATE_RUNNING);
    if (accel_ops && accel_ops->resume_cpus) {
        accel_ops->resume_cpus();
    }
    runstate_notify(true);
    qmp_send_event("RESUME", NULL);
}

static void vm_stop_internal(RunState to, bool send_event)
{
    if (current_state != RUN_STATE_RUNNING) {
        runstate_set(to);
        return;
    }
    if (accel_ops && accel_ops->pause_cpus) {
        accel_ops->pause_cpus();
    }
    runstate_set(to);
    runstate_notify(false);
    if (send_event) {
        qmp_send_event("STOP", NULL);
    }
}

void vm_stop(RunState to)
{
    vm_stop_internal(to, true);
}

static const char *shutdown_cause_name(ShutdownCause cause)
{
    switch (cause) {
    case SHUTDOWN_CAUSE_HOST_QMP_QUIT:
        return "host-qmp-quit";
    case SHUTDOWN_CAUSE_HOST_SIGNAL:
        return "host-signal";
    case SHUTDOWN_CAUSE_GUEST_SHUTDOWN:
        return "guest-shutdown";
    case SHUTDOWN_CAUSE_GUEST_RESET:
        return "guest-reset";
    case SHUTDOWN_CAUSE_HOST_ERROR:
        return "host-error";
    }
    return "host-error";
}

static bool shutdown_cause_is_guest(ShutdownCause cause)
{
    return cause == SHUTDOWN_CAUSE_GUEST_SHUTDOWN || cause == SHUTDOWN_CAUSE_GUEST_RESET;
}

void system_shutdown_request(ShutdownCause cause, int exit_status)
{
    g_atomic_int_set(&shutdown_status, exit_status);
    /* the first request wins: its cause is the one reported */
    g_atomic_int_compare_and_exchange(&shutdown_pending, 0, (gint)cause + 1);
    main_loop_notify();
}

bool system_shutdown_requested(void)
{
    return g_atomic_int_get(&shutdown_pending) != 0;
}

void system_reset_request(bool guest)
{
    g_atomic_int_set(&reset_pending, guest ? 2 : 1);
    main_loop_notify();
}

void system_add_reset_hook(ResetHook fn, void *opaque)
{
    ResetHookEntry e = {fn, opaque};

    if (!reset_hooks) {
        reset_hooks = g_array_new(FALSE, FALSE, sizeof(ResetHookEntry));
    }
    g_array_append_val(reset_hooks, e);
}

void system_reset(void)
{
    devices_reset_all();
    if (accel_ops && accel_ops->reset_cpus) {
        accel_ops->reset_cpus();
    }
    for (guint i = 0; reset_hooks && i < reset_hooks->len; i++) {
        ResetHookEntry *e = &g_array_index(reset_hooks, ResetHookEntry, i);
        e->fn(e->opaque);
    }
}

static JsonObject *shutdown_event_data(bool guest, const char *reason)
{
    JsonObject *data = json_object_new();

    json_object_set_boolean_member(data, "guest", guest);
    json_object_set_string_member(data, "reason", reason);
    return data;
}

bool runstate_main_loop_should_exit(int *exit_status)
{
    gint reset = g_atomic_int_and(&reset_pending, 0);
    gint shutdown;

    if (reset) {
        bool guest = reset == 2;

        if (guest && current_machine && current_machine->no_reboot) {
            system_shutdown_request(SHUTDOWN_CAUSE_GUEST_RESET, 0);
        } else {
            system_reset();
            qmp_send_event("RESET",
                           shutdown_event_data(guest, guest ? "guest-reset"
                                                            : "host-qmp-system-reset"));
        }
    }
    shutdown = g_atomic_int_get(&shutdown_pending);
    if (shutdown) {
        ShutdownCause cause = (ShutdownCause)(shutdown - 1);

        qmp_send_event("SHUTDOWN", shutdown_event_data(shutdown_cause_is_guest(cause),
                                                       shutdown_cause_name(cause)));
        /* like a quit: the SHUTDOWN event is the last word, no STOP after it */
        vm_stop_internal(RUN_STATE_SHUTDOWN, false);
        *exit_status = g_atomic_int_get(&shutdown_status);
        return true;
    }
    return false;
}

const char *system_loadvm_tag(void)
{
    return loadvm_tag;
}

void system_set_loadvm_tag(const char *tag)
{
    g_free(loadvm_tag);
    loadvm_tag = g_strdup(tag);
}

void system_add_startup_hook(StartupHook fn, void *opaque)
{
    StartupHookEntry e = {fn, opaque};

    if (!startup_hooks) {
        startup_hooks = g_array_new(FALSE, FALSE, sizeof(StartupHookEntry));
    }
    g_array_append_val(startup_hooks, e);
}

bool system_run_startup_hooks(GError **errp)
{
    for (guint i = 0; startup_hooks && i < startup_hooks->len; i++) {
        StartupHookEntry *e = &g_array_index(startup_hooks, StartupHookEntry, i);
        if (!e->fn(e->opaque, errp)) {
            return false;
        }
    }
    return true;
}
