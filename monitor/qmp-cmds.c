/*
 * Core QMP commands on the run state and the machine: query-status, stop,
 * cont, system_reset, quit, query-machines. STOP, RESUME, RESET and SHUTDOWN
 * events come from the run-state code, not from here, so every path that
 * changes state (HMP, guest, signals) reports the same way.
 */
#include <string.h>

#include "hw/core/machine.h"
#include "monitor/monitor.h"
#include "monitor/monitor-internal.h"
#include "system/runstate.h"
#include "system/system.h"
#include "util/error.h"

static JsonNode *qmp_node_take_object(JsonObject *obj)
{
    JsonNode *node = json_node_init_object(json_node_alloc(), obj);

    json_object_unref(obj);
    return node;
}

/* {"status": "running", "singlestep": false, "running": true} */
static JsonNode *qmp_query_status(JsonObject *args, GError **errp)
{
    JsonObject *ret = json_object_new();

    json_object_set_string_member(ret, "status", runstate_name(runstate_get()));
    json_object_set_boolean_member(ret, "singlestep", false);
    json_object_set_boolean_member(ret, "running", runstate_is_running());
    return qmp_node_take_object(ret);
}

/* Shared with HMP: pause the guest; a VM not started yet simply stays so. */
bool monitor_vm_stop(GError **errp)
{
    if (runstate_is_running()) {
        vm_stop(RUN_STATE_PAUSED);
    }
    return true;
}

/* Shared with HMP: resume, refusing states a plain resume cannot leave. */
bool monitor_vm_cont(GError **errp)
{
    switch (runstate_get()) {
    case RUN_STATE_RUNNING:
        return true;
    case RUN_STATE_INTERNAL_ERROR:
    case RUN_STATE_SHUTDOWN:
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Resetting the Virtual Machine is required (state '%s'); "
                    "use system_reset first",
                    runstate_name(runstate_get()));
        return false;
    case RUN_STATE_SAVE_VM:
    case RUN_STATE_RESTORE_VM:
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "A snapshot operation is in progress (state '%s'); "
                    "try again when it has finished",
                    runstate_name(runstate_get()));
        return false;
    default:
        vm_start();
        return true;
    }
}

static JsonNode *qmp_stop(JsonObject *args, GError **errp)
{
    monitor_vm_stop(errp);
    return NULL; /* {} on success; errp says otherwise */
}

static JsonNode *qmp_cont(JsonObject *args, GError **errp)
{
    monitor_vm_cont(errp);
    return NULL;
}

static JsonNode *qmp_system_reset(JsonObject *args, GError **errp)
{
    system_reset_request(false);
    return NULL;
}

/* The reply goes out now; the main loop then emits SHUTDOWN and exits 0. */
static JsonNode *qmp_quit(JsonObject *args, GError **errp)
{
    system_shutdown_request(SHUTDOWN_CAUSE_HOST_QMP_QUIT, 0);
    return NULL;
}

/* {"name": NAME} with -name, {} without. */
static JsonNode *qmp_query_name(JsonObject *args, GError **errp)
{
    JsonObject *ret = json_object_new();

    if (system_vm_name()) {
        json_object_set_string_member(ret, "name", system_vm_name());
    }
    return qmp_node_take_object(ret);
}

static void qmp_add_machine(const MachineClass *mc, void *opaque)
{
    JsonArray *list = opaque;
    JsonObject *m = json_object_new();

    json_object_set_string_member(m, "name", mc->name);
    if (mc->is_default) {
        json_object_set_boolean_member(m, "is-default", true);
    }
    json_object_set_boolean_member(m, "hotpluggable-cpus", false);
    json_object_set_boolean_member(m, "numa-mem-supported", false);
    json_object_set_boolean_member(m, "deprecated", false);
    if (mc->desc) {
        json_object_set_string_member(m, "description", mc->desc);
    }
    json_object_set_int_member(m, "default-ram-size", (gint64)mc->default_ram_size);
    json_array_add_object_element(list, m);
}

static JsonNode *qmp_query_machines(JsonObject *args, GError **errp)
{
    JsonArray *list = json_array_new();
    JsonNode *node;

    machine_class_foreach(qmp_add_machine, list);
    node = json_node_init_array(json_node_alloc(), list);
    json_array_unref(list);
    return node;
}

static void __attribute__((constructor)) qmp_register_system_commands(void)
{
    qmp_register_command_args("query-status", qmp_query_status, 0, "");
    qmp_register_command_args("stop", qmp_stop, 0, "");
    qmp_register_command_args("cont", qmp_cont, 0, "");
    qmp_register_command_args("system_reset", qmp_system_reset, 0, "");
    qmp_register_command_args("quit", qmp_quit, 0, "");
    qmp_register_command_args("query-name", qmp_query_name, 0, "");
    qmp_register_command_args("query-machines", qmp_query_machines, 0, "compat-props:b?");
}
