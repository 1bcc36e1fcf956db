/*
 * Jobs started by QMP commands. See include/system/job.h.
 *
 * All jobs live on the main thread: creation happens in a QMP handler, the
 * work runs from an idle source of the main loop, and query/dismiss come
 * from QMP handlers again, so the list needs no lock of its own (the big
 * lock is held throughout).
 */
#include "system/job.h"

#include <stdio.h>

#include "monitor/monitor.h"
#include "util/error.h"
#include "util/trace.h"

struct Job {
    char *id;
    char *type;
    JobStatus status;
    JobRunFn run;
    void *opaque;
    GDestroyNotify free_opaque;
    char *error;
    guint idle_id;
};

static GPtrArray *jobs; /* Job *, creation order; main thread only */

static const char *const job_status_names[JOB_STATUS__MAX] = {
    [JOB_STATUS_UNDEFINED] = "undefined", [JOB_STATUS_CREATED] = "created",
    [JOB_STATUS_RUNNING] = "running",     [JOB_STATUS_PAUSED] = "paused",
    [JOB_STATUS_READY] = "ready",         [JOB_STATUS_STANDBY] = "standby",
    [JOB_STATUS_WAITING] = "waiting",     [JOB_STATUS_PENDING] = "pending",
    [JOB_STATUS_ABORTING] = "aborting",   [JOB_STATUS_CONCLUDED] = "concluded",
    [JOB_STATUS_NULL] = "null",
};

const char *job_status_name(JobStatus status)
{
    return (unsigned)status < JOB_STATUS__MAX ? job_status_names[status] : "undefined";
}

static void job_free(Job *job)
{
    if (job->idle_id) {
        g_source_remove(job->idle_id);
    }
    if (job->free_opaque && job->opaque) {
        job->free_opaque(job->opaque);
    }
    g_free(job->id);
    g_free(job->type);
    g_free(job->error);
    g_free(job);
}

static void job_set_status(Job *job, JobStatus status)
{
    JsonObject *data = json_object_new();

    job->status = status;
    trace_event("job_status_change", "id=%s status=%s", job->id, job_status_name(status));
    json_object_set_string_member(data, "status", job_status_name(status));
    json_object_set_string_member(data, "id", job->id);
    qmp_send_event("JOB_STATUS_CHANGE", data);
}

/* The id rule of QEMU's job-id: a letter, then letters, digits, '-', '.', '_'. */
static bool job_id_wellformed(const char *id)
{
    if (!g_ascii_isalpha(id[0])) {
        return false;
    }
    for (const char *p = id + 1; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != '_') {
            return false;
        }
    }
    return true;
}

static gboolean job_run_idle(gpointer opaque)
{
    Job *job = opaque;
    GError *err = NULL;

    job->idle_id = 0;
    job_set_status(job, JOB_STATUS_RUNNING);
    if (job->run(job->opaque, &err)) {
        job_set_status(job, JOB_STATUS_WAITING);
        job_set_status(job, JOB_STATUS_PENDING);
    } else {
        job->error = g_strdup(err->message);
        g_error_free(err);
        job_set_status(job, JOB_STATUS_ABORTING);
    }
    if (job->free_opaque && job->opaque) {
        job->free_opaque(job->opaque);
    }
    job->opaque = NULL;
    job_set_status(job, JOB_STATUS_CONCLUDED);
    return G_SOURCE_REMOVE;
}

Job *job_start(const char *id, const char *type, JobRunFn run, void *opaque,
               GDestroyNotify free_opaque, GError **errp)
{
    Job *job;

    if (!id || !job_id_wellformed(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Invalid job ID '%s': it must start with a letter and contain only "
                    "letters, digits, '-', '.' and '_'",
                    id ? id : "");
        return NULL;
    }
    if (job_find(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Job ID '%s' already in use; dismiss the old job with job-dismiss "
                    "or pick another id",
                    id);
        return NULL;
    }
    if (!jobs) {
        jobs = g_ptr_array_new();
    }
    job = g_new0(Job, 1);
    job->id = g_strdup(id);
    job->type = g_strdup(type);
    job->run = run;
    job->opaque = opaque;
    job->free_opaque = free_opaque;
    g_ptr_array_add(jobs, job);
    job_set_status(job, JOB_STATUS_CREATED);
    job->idle_id = g_idle_add(job_run_idle, job);
    return job;
}

Job *job_find(const char *id)
{
    for (guint i = 0; jobs && i < jobs->len; i++) {
        Job *job = g_ptr_array_index(jobs, i);
        if (g_str_equal(job->id, id)) {
            return job;
        }
    }
    return NULL;
}

void job_foreach(void (*fn)(Job *job, void *opaque), void *opaque)
{
    for (guint i = 0; jobs && i < jobs->len; i++) {
        fn(g_ptr_array_index(jobs, i), opaque);
    }
}

const char *job_id(const Job *job)
{
    return job->id;
}

const char *job_type(const Job *job)
{
    return job->type;
}

JobStatus job_status(const Job *job)
{
    return job->status;
}

const char *job_error(const Job *job)
{
    return job->error;
}

void job_progress(const Job *job, int64_t *current, int64_t *total)
{
    *total = 1;
    *current = job->status == JOB_STATUS_CONCLUDED ? 1 : 0;
}

bool job_dismiss(const char *id, GError **errp)
{
    Job *job = job_find(id);

    if (!job) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Job not found: no job with ID '%s' (see query-jobs)", id);
        return false;
    }
    if (job->status != JOB_STATUS_CONCLUDED) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Job '%s' in state '%s' cannot accept command verb 'dismiss'; wait "
                    "for it to conclude",
                    id, job_status_name(job->status));
        return false;
    }
    job_set_status(job, JOB_STATUS_NULL);
    g_ptr_array_remove(jobs, job);
    job_free(job);
    return true;
}
