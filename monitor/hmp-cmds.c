/*
 * Core human monitor commands on the run state: info status, info name,
 * stop, cont, system_reset, quit. They share their logic with the QMP commands.
 */
#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "system/runstate.h"
#include "system/system.h"

/* "VM status: running", "VM status: paused", "VM status: paused (prelaunch)" */
static bool hmp_info_status(const char *args, GString *out, GError **errp)
{
    RunState s = runstate_get();

    if (runstate_is_running()) {
        g_string_append(out, "VM status: running\n");
    } else if (s == RUN_STATE_PAUSED) {
        g_string_append(out, "VM status: paused\n");
    } else {
        g_string_append_printf(out, "VM status: paused (%s)\n", runstate_name(s));
    }
    return true;
}

/* The -name of the VM; nothing when it has none. */
static bool hmp_info_name(const char *args, GString *out, GError **errp)
{
    if (system_vm_name()) {
        g_string_append_printf(out, "%s\n", system_vm_name());
    }
    return true;
}

static bool hmp_stop(const char *args, GString *out, GError **errp)
{
    return monitor_vm_stop(errp);
}

static bool hmp_cont(const char *args, GString *out, GError **errp)
{
    return monitor_vm_cont(errp);
}

static bool hmp_system_reset(const char *args, GString *out, GError **errp)
{
    system_reset_request(false);
    return true;
}

static bool hmp_quit(const char *args, GString *out, GError **errp)
{
    system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT, 0);
    return true;
}

static void __attribute__((constructor)) hmp_register_system_commands(void)
{
    hmp_register_info("status", "show the current VM status (running|paused)",
                      hmp_info_status);
    hmp_register_info("name", "show the current VM name", hmp_info_name);
    hmp_register_command("stop|s", "", "stop emulation", hmp_stop);
    hmp_register_command("cont|c", "", "resume emulation", hmp_cont);
    hmp_register_command("system_reset", "", "reset the system", hmp_system_reset);
    hmp_register_command("quit|q", "", "quit the emulator", hmp_quit);
}
