/*
 * The snapshot commands as management tools see them: QMP snapshot-save /
 * snapshot-load / snapshot-delete jobs with JOB_STATUS_CHANGE events,
 * query-jobs and job-dismiss (QEMU's names and arguments), the run state
 * around savevm/loadvm, and HMP on -monitor stdio with QEMU's
 * "info snapshots" layout.
 */
#include <string.h>

#include "snapshot-util.h"

static QTestState *start_vm(SnapEnv *env, const char *extra)
{
    g_autofree char *args = snap_tpm_args(env, "tpm.qcow2", false, NULL);

    return qtest_initf("%s %s", args, extra ? extra : "");
}

/* query-jobs entry of `id` (ref'd), or NULL. */
static JsonObject *query_job(QTestState *qts, const char *id)
{
    JsonObject *rsp = qtest_qmp(qts, "{'execute': 'query-jobs'}");
    JsonArray *jobs = json_object_get_array_member(rsp, "return");
    JsonObject *found = NULL;

    for (guint i = 0; i < json_array_get_length(jobs); i++) {
        JsonObject *job = json_array_get_object_element(jobs, i);
        if (g_str_equal(json_object_get_string_member(job, "id"), id)) {
            found = json_object_ref(job);
        }
    }
    json_object_unref(rsp);
    return found;
}

static void dismiss(QTestState *qts, const char *id)
{
    g_autofree char *statuses = NULL;

    qtest_qmp_assert_success(qts, "{'execute': 'job-dismiss', 'arguments': {'id': '%s'}}",
                             id);
    statuses = snap_job_statuses(qts, id, "null");
    g_assert_cmpstr(statuses, ==, "null");
    g_assert_null(query_job(qts, id));
}

static void test_jobs_save_load_delete(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autofree uint8_t *pcr_a = NULL;
    g_autofree uint8_t *pcr = NULL;
    g_autofree char *statuses = NULL;
    g_autofree char *info = NULL;
    JsonObject *job;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    qts = start_vm(env, NULL);
    tis_claim(qts);
    tpm2_startup(qts);
    tpm2_extend(qts, 16, 0x42);
    pcr_a = tpm2_pcr_read(qts, 16);

    qtest_qmp_assert_success(qts, "{'execute': 'snapshot-save', 'arguments': {"
                                  "'job-id': 'save0', 'tag': 'A', 'vmstate': 'tpmnv', "
                                  "'devices': ['tpmnv']}}");
    statuses = snap_job_statuses(qts, "save0", "concluded");
    g_assert_cmpstr(statuses, ==, "created,running,waiting,pending,concluded");
    job = query_job(qts, "save0");
    g_assert_nonnull(job);
    g_assert_cmpstr(json_object_get_string_member(job, "type"), ==, "snapshot-save");
    g_assert_cmpstr(json_object_get_string_member(job, "status"), ==, "concluded");
    g_assert_cmpint(json_object_get_int_member(job, "current-progress"), ==, 1);
    g_assert_cmpint(json_object_get_int_member(job, "total-progress"), ==, 1);
    g_assert_false(json_object_has_member(job, "error"));
    json_object_unref(job);
    dismiss(qts, "save0");

    info = qtest_hmp(qts, "info snapshots");
    g_assert_nonnull(strstr(info, "--        A "));

    tpm2_extend(qts, 16, 0x43);
    qtest_qmp_assert_success(qts, "{'execute': 'snapshot-load', 'arguments': {"
                                  "'job-id': 'load0', 'tag': 'A', 'vmstate': 'tpmnv', "
                                  "'devices': ['tpmnv']}}");
    g_clear_pointer(&statuses, g_free);
    statuses = snap_job_statuses(qts, "load0", "concluded");
    g_assert_cmpstr(statuses, ==, "created,running,waiting,pending,concluded");
    pcr = tpm2_pcr_read(qts, 16);
    g_assert_cmpmem(pcr, 32, pcr_a, 32);
    dismiss(qts, "load0");

    qtest_qmp_assert_success(qts, "{'execute': 'snapshot-delete', 'arguments': {"
                                  "'job-id': 'del0', 'tag': 'A', 'devices': ['tpmnv']}}");
    g_clear_pointer(&statuses, g_free);
    statuses = snap_job_statuses(qts, "del0", "concluded");
    g_assert_cmpstr(statuses, ==, "created,running,waiting,pending,concluded");
    dismiss(qts, "del0");
    g_clear_pointer(&info, g_free);
    info = qtest_hmp(qts, "info snapshots");
    g_assert_nonnull(strstr(info, "There is no snapshot available."));
    snap_quit(qts);
    snap_env_free(env);
}

static void test_failed_job_reports_error(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autofree char *statuses = NULL;
    JsonObject *job;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    qts = start_vm(env, NULL);
    qtest_qmp_assert_success(qts, "{'execute': 'snapshot-load', 'arguments': {"
                                  "'job-id': 'load1', 'tag': 'nope', 'vmstate': 'tpmnv', "
                                  "'devices': ['tpmnv']}}");
    statuses = snap_job_statuses(qts, "load1", "concluded");
    g_assert_cmpstr(statuses, ==, "created,running,aborting,concluded");
    job = query_job(qts, "load1");
    g_assert_nonnull(
        strstr(json_object_get_string_member(job, "error"), "'nope' does not exist"));
    json_object_unref(job);

    /* an id stays taken until the job is dismissed */
    {
        JsonObject *rsp =
            qtest_qmp(qts, "{'execute': 'snapshot-delete', 'arguments': {"
                           "'job-id': 'load1', 'tag': 'x', 'devices': []}}");
        JsonObject *err = json_object_get_object_member(rsp, "error");
        g_assert_nonnull(err);
        g_assert_nonnull(strstr(json_object_get_string_member(err, "desc"),
                                "Job ID 'load1' already in use"));
        json_object_unref(rsp);
    }
    dismiss(qts, "load1");

    /* 'vmstate' must be one of 'devices' */
    qtest_qmp_assert_success(qts, "{'execute': 'snapshot-save', 'arguments': {"
                                  "'job-id': 'save1', 'tag': 'A', 'vmstate': 'tpmnv', "
                                  "'devices': []}}");
    g_clear_pointer(&statuses, g_free);
    statuses = snap_job_statuses(qts, "save1", "concluded");
    g_assert_cmpstr(statuses, ==, "created,running,aborting,concluded");
    job = query_job(qts, "save1");
    g_assert_nonnull(json_object_get_string_member(job, "error"));
    json_object_unref(job);
    dismiss(qts, "save1");

    /* QMP does not overwrite: saving an existing tag fails */
    snap_hmp_ok(qts, "savevm A");
    qtest_qmp_assert_success(qts, "{'execute': 'snapshot-save', 'arguments': {"
                                  "'job-id': 'save2', 'tag': 'A', 'vmstate': 'tpmnv', "
                                  "'devices': ['tpmnv']}}");
    g_clear_pointer(&statuses, g_free);
    statuses = snap_job_statuses(qts, "save2", "concluded");
    job = query_job(qts, "save2");
    g_assert_nonnull(
        strstr(json_object_get_string_member(job, "error"), "already exists"));
    json_object_unref(job);
    snap_quit(qts);
    snap_env_free(env);
}

static void test_job_command_errors(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    JsonObject *rsp;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    qts = start_vm(env, NULL);
    rsp = qtest_qmp(qts, "{'execute': 'snapshot-save', 'arguments': {'job-id': '1bad', "
                         "'tag': 'A', 'vmstate': 'tpmnv', 'devices': ['tpmnv']}}");
    g_assert_nonnull(strstr(json_object_get_string_member(
                                json_object_get_object_member(rsp, "error"), "desc"),
                            "Invalid job ID '1bad'"));
    json_object_unref(rsp);
    rsp = qtest_qmp(qts, "{'execute': 'job-dismiss', 'arguments': {'id': 'ghost'}}");
    g_assert_nonnull(strstr(json_object_get_string_member(
                                json_object_get_object_member(rsp, "error"), "desc"),
                            "Job not found"));
    json_object_unref(rsp);
    rsp = qtest_qmp(qts, "{'execute': 'snapshot-save', 'arguments': {'job-id': 'j', "
                         "'tag': 'A', 'vmstate': 'tpmnv'}}");
    g_assert_cmpstr(json_object_get_string_member(
                        json_object_get_object_member(rsp, "error"), "desc"),
                    ==, "Parameter 'devices' is missing");
    json_object_unref(rsp);
    rsp = qtest_qmp(qts, "{'execute': 'snapshot-save', 'arguments': {'job-id': 'j', "
                         "'tag': 'A', 'vmstate': 'tpmnv', 'devices': [1]}}");
    g_assert_nonnull(strstr(json_object_get_string_member(
                                json_object_get_object_member(rsp, "error"), "desc"),
                            "devices[0]"));
    json_object_unref(rsp);
    snap_quit(qts);
    snap_env_free(env);
}

static void test_run_state_kept(void)
{
    SnapEnv *env = snap_env_new();
    QTestState *qts;
    g_autofree char *st = NULL;

    if (!env) {
        return;
    }
    snap_image_create(env, "tpm.qcow2", false, 16);
    qts = start_vm(env, "-S");
    st = snap_status(qts);
    g_assert_cmpstr(st, ==, "prelaunch");
    snap_hmp_ok(qts, "savevm P");
    g_clear_pointer(&st, g_free);
    st = snap_status(qts);
    g_assert_cmpstr(st, ==, "prelaunch");
    snap_hmp_ok(qts, "loadvm P");
    g_clear_pointer(&st, g_free);
    st = snap_status(qts);
    g_assert_cmpstr(st, ==, "prelaunch");

    qtest_qmp_assert_success(qts, "{'execute': 'cont'}");
    g_clear_pointer(&st, g_free);
    st = snap_status(qts);
    g_assert_cmpstr(st, ==, "running");
    /* a running VM is stopped for the snapshot and resumed after it */
    snap_hmp_ok(qts, "savevm R");
    qtest_qmp_eventwait(qts, "STOP");
    qtest_qmp_eventwait(qts, "RESUME");
    g_clear_pointer(&st, g_free);
    st = snap_status(qts);
    g_assert_cmpstr(st, ==, "running");
    snap_quit(qts);
    snap_env_free(env);
}

static void test_hmp_on_monitor_stdio(void)
{
    SnapEnv *env = snap_env_new();
    g_autoptr(GSubprocess) proc = NULL;
    g_autofree char *args = NULL;
    g_autofree char *line = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_auto(GStrv) argv = NULL;
    GError *error = NULL;
    const char *bin = g_getenv("TPMVM_BINARY");
    GPtrArray *full;

    if (!env) {
        return;
    }
    g_assert_nonnull(bin);
    snap_image_create(env, "tpm.qcow2", false, 16);
    args = snap_tpm_args(env, "tpm.qcow2", false, NULL);
    line = g_strdup_printf("%s %s -accel qtest -qtest null -display none -monitor stdio",
                           bin, args);
    g_assert_true(g_shell_parse_argv(line, NULL, &argv, &error));
    full = g_ptr_array_new();
    for (unsigned i = 0; argv[i]; i++) {
        g_ptr_array_add(full, argv[i]);
    }
    g_ptr_array_add(full, NULL);
    proc =
        g_subprocess_newv((const char *const *)full->pdata,
                          G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                              G_SUBPROCESS_FLAGS_STDERR_PIPE,
                          &error);
    g_ptr_array_free(full, TRUE);
    g_assert_no_error(error);
    g_assert_true(g_subprocess_communicate_utf8(
        proc,
        "savevm A\ninfo snapshots\nloadvm A\nloadvm B\ndelvm A\ninfo snapshots\nquit\n",
        NULL, &out, &err, &error));
    g_assert_no_error(error);
    g_test_message("%s", out);
    g_assert_nonnull(strstr(out, "List of snapshots present on all disks:"));
    g_assert_nonnull(strstr(out, "ID        TAG               VM SIZE                DATE"
                                 "     VM CLOCK     ICOUNT"));
    g_assert_true(g_regex_match_simple(
        "--        A                 *[0-9.]+ KiB 20[0-9][0-9]-[0-9][0-9]-[0-9][0-9] "
        "[0-9:]{8} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}",
        out, 0, 0));
    g_assert_nonnull(strstr(out, "Error: Snapshot 'B' does not exist"));
    g_assert_nonnull(strstr(out, "There is no snapshot available."));
    g_assert_true(g_subprocess_get_successful(proc));
    snap_env_free(env);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot/qmp/save-load-delete-jobs-report-every-status",
                    test_jobs_save_load_delete);
    g_test_add_func("/snapshot/qmp/failed-job-concludes-with-its-error",
                    test_failed_job_reports_error);
    g_test_add_func("/snapshot/qmp/bad-job-arguments-are-refused-at-once",
                    test_job_command_errors);
    g_test_add_func("/snapshot/run-state/paused-stays-paused-running-resumes",
                    test_run_state_kept);
    g_test_add_func("/snapshot/hmp/monitor-stdio-prints-qemu-layout",
                    test_hmp_on_monitor_stdio);
    return g_test_run();
}
