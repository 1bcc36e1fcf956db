/*
 * Snapshot commands: HMP savevm / loadvm / delvm / info snapshots and the QMP
 * jobs snapshot-save / snapshot-load / snapshot-delete with query-jobs and
 * job-dismiss, with QEMU's names and arguments. The work is in
 * system/snapshot.c; the job life cycle in system/job.c.
 */
#include <string.h>

#include "monitor/monitor.h"
#include "system/job.h"
#include "system/snapshot.h"
#include "util/error.h"

/* ---- HMP ---- */

/* "savevm [tag]": without a tag QEMU names the snapshot after the time. */
static bool hmp_savevm(const char *args, GString *out, GError **errp)
{
    g_autofree char *tag = NULL;

    if (args && *args) {
        tag = g_strdup(args);
    } else {
        g_autoptr(GDateTime) now = g_date_time_new_now_local();
        tag = g_date_time_format(now, "vm-%Y%m%d%H%M%S");
    }
    return snapshot_save(tag, NULL, NULL, true, errp);
}

static bool hmp_need_tag(const char *cmd, const char *args, GError **errp)
{
    if (!args || !*args) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "%s needs the snapshot's tag: %s TAG (see 'info snapshots')", cmd,
                    cmd);
        return false;
    }
    return true;
}

static bool hmp_loadvm(const char *args, GString *out, GError **errp)
{
    return hmp_need_tag("loadvm", args, errp) && snapshot_load(args, NULL, NULL, errp);
}

static bool hmp_delvm(const char *args, GString *out, GError **errp)
{
    return hmp_need_tag("delvm", args, errp) && snapshot_delete(args, NULL, errp);
}

static bool hmp_info_snapshots(const char *args, GString *out, GError **errp)
{
    return snapshot_info(out, errp);
}

/* ---- QMP jobs ---- */

typedef enum { SNAP_JOB_SAVE, SNAP_JOB_LOAD, SNAP_JOB_DELETE } SnapJobKind;

typedef struct SnapJob {
    SnapJobKind kind;
    char *tag;
    char *vmstate;
    char **devices; /* NULL-terminated */
} SnapJob;

static void snap_job_free(void *p)
{
    SnapJob *sj = p;

    g_free(sj->tag);
    g_free(sj->vmstate);
    g_strfreev(sj->devices);
    g_free(sj);
}

static bool snap_job_run(void *opaque, GError **errp)
{
    SnapJob *sj = opaque;
    const char *const *devices = (const char *const *)sj->devices;

    switch (sj->kind) {
    case SNAP_JOB_SAVE:
        return snapshot_save(sj->tag, sj->vmstate, devices, false, errp);
    case SNAP_JOB_LOAD:
        return snapshot_load(sj->tag, sj->vmstate, devices, errp);
    case SNAP_JOB_DELETE:
        return snapshot_delete(sj->tag, devices, errp);
    }
    return false;
}

/* The "devices" array of strings (declared as an array; checked element-wise). */
static char **qmp_arg_devices(JsonObject *args, GError **errp)
{
    JsonArray *arr = json_object_get_array_member(args, "devices");
    guint n = arr ? json_array_get_length(arr) : 0;
    char **devices = g_new0(char *, n + 1);

    for (guint i = 0; i < n; i++) {
        JsonNode *node = json_array_get_element(arr, i);
        if (!JSON_NODE_HOLDS_VALUE(node) ||
            json_node_get_value_type(node) != G_TYPE_STRING) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Invalid parameter type for 'devices[%u]', expected: string", i);
            g_strfreev(devices);
            return NULL;
        }
        devices[i] = g_strdup(json_node_get_string(node));
    }
    return devices;
}

static JsonNode *qmp_snapshot_job(SnapJobKind kind, const char *type, JsonObject *args,
                                  GError **errp)
{
    SnapJob *sj = g_new0(SnapJob, 1);
    const char *job_id, *tag, *vmstate = NULL;

    sj->kind = kind;
    if (!qmp_arg_str(args, "job-id", true, &job_id, errp) ||
        !qmp_arg_str(args, "tag", true, &tag, errp) ||
        (kind != SNAP_JOB_DELETE &&
         !qmp_arg_str(args, "vmstate", true, &vmstate, errp)) ||
        !(sj->devices = qmp_arg_devices(args, errp))) {
        snap_job_free(sj);
        return NULL;
    }
    sj->tag = g_strdup(tag);
    sj->vmstate = g_strdup(vmstate);
    if (!job_start(job_id, type, snap_job_run, sj, snap_job_free, errp)) {
        snap_job_free(sj);
    }
    return NULL;
}

static JsonNode *qmp_snapshot_save(JsonObject *args, GError **errp)
{
    return qmp_snapshot_job(SNAP_JOB_SAVE, "snapshot-save", args, errp);
}

static JsonNode *qmp_snapshot_load(JsonObject *args, GError **errp)
{
    return qmp_snapshot_job(SNAP_JOB_LOAD, "snapshot-load", args, errp);
}

static JsonNode *qmp_snapshot_delete(JsonObject *args, GError **errp)
{
    return qmp_snapshot_job(SNAP_JOB_DELETE, "snapshot-delete", args, errp);
}

static void query_jobs_one(Job *job, void *opaque)
{
    JsonArray *arr = opaque;
    JsonObject *info = json_object_new();
    int64_t current, total;

    job_progress(job, &current, &total);
    json_object_set_string_member(info, "id", job_id(job));
    json_object_set_string_member(info, "type", job_type(job));
    json_object_set_string_member(info, "status", job_status_name(job_status(job)));
    json_object_set_int_member(info, "current-progress", current);
    json_object_set_int_member(info, "total-progress", total);
    if (job_error(job)) {
        json_object_set_string_member(info, "error", job_error(job));
    }
    json_array_add_object_element(arr, info);
}

static JsonNode *qmp_query_jobs(JsonObject *args, GError **errp)
{
    JsonArray *arr = json_array_new();
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);

    job_foreach(query_jobs_one, arr);
    json_node_take_array(node, arr);
    return node;
}

static JsonNode *qmp_job_dismiss(JsonObject *args, GError **errp)
{
    const char *id;

    if (qmp_arg_str(args, "id", true, &id, errp)) {
        job_dismiss(id, errp);
    }
    return NULL;
}

static void __attribute__((constructor)) snapshot_cmds_register(void)
{
    hmp_register_command("savevm", "[tag]",
                         "save a VM snapshot (RAM, devices, TPM) on every qcow2 drive; "
                         "an existing tag is replaced",
                         hmp_savevm);
    hmp_register_command("loadvm", "tag",
                         "restore a VM snapshot: drives, RAM, devices and the TPM",
                         hmp_loadvm);
    hmp_register_command("delvm", "tag", "delete a VM snapshot from every drive",
                         hmp_delvm);
    hmp_register_info("snapshots", "show the VM snapshots on the drives",
                      hmp_info_snapshots);
    qmp_register_command_args("snapshot-save", qmp_snapshot_save, 0,
                              "job-id:s,tag:s,vmstate:s,devices:a");
    qmp_register_command_args("snapshot-load", qmp_snapshot_load, 0,
                              "job-id:s,tag:s,vmstate:s,devices:a");
    qmp_register_command_args("snapshot-delete", qmp_snapshot_delete, 0,
                              "job-id:s,tag:s,devices:a");
    qmp_register_command_args("query-jobs", qmp_query_jobs, 0, "");
    qmp_register_command_args("job-dismiss", qmp_job_dismiss, 0, "id:s");
}
