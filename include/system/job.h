/*
 * Jobs: long operations started by a QMP command that answer at once and
 * report their progress with JOB_STATUS_CHANGE events (QEMU's job model, as
 * used by snapshot-save / snapshot-load / snapshot-delete).
 *
 * A job runs once, in the main loop with the big lock held, after the
 * command that created it has returned. Its status moves
 *   created -> running -> waiting -> pending -> concluded   (success)
 *   created -> running -> aborting -> concluded             (failure)
 * and a concluded job stays visible in query-jobs (with its error) until
 * job-dismiss removes it (status "null"). Every change is broadcast as
 * JOB_STATUS_CHANGE {"id": ID, "status": STATUS}.
 */
#ifndef SYSTEM_JOB_H
#define SYSTEM_JOB_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef enum {
    JOB_STATUS_UNDEFINED,
    JOB_STATUS_CREATED,
    JOB_STATUS_RUNNING,
    JOB_STATUS_PAUSED,
    JOB_STATUS_READY,
    JOB_STATUS_STANDBY,
    JOB_STATUS_WAITING,
    JOB_STATUS_PENDING,
    JOB_STATUS_ABORTING,
    JOB_STATUS_CONCLUDED,
    JOB_STATUS_NULL,
    JOB_STATUS__MAX
} JobStatus;

typedef struct Job Job;

/* The work of a job; runs once in the main loop, big lock held. */
typedef bool (*JobRunFn)(void *opaque, GError **errp);

/*
 * Create job `id` of `type` ("snapshot-save") and schedule `run`. The id must
 * start with a letter and hold only letters, digits, '-', '.' and '_', and
 * must not be in use by a job that was not dismissed. `free_opaque` (may be
 * NULL) releases `opaque` once the job has run.
 */
Job *job_start(const char *id, const char *type, JobRunFn run, void *opaque,
               GDestroyNotify free_opaque, GError **errp);

/* The job with this id (not yet dismissed), or NULL. */
Job *job_find(const char *id);
/* Every job not yet dismissed, in creation order. */
void job_foreach(void (*fn)(Job *job, void *opaque), void *opaque);

const char *job_id(const Job *job);
const char *job_type(const Job *job);
JobStatus job_status(const Job *job);
/* The failure message of a concluded job, or NULL if it succeeded (or runs). */
const char *job_error(const Job *job);
/* Progress in abstract units: current <= total; both 1 once the job ran. */
void job_progress(const Job *job, int64_t *current, int64_t *total);
/* QMP name of a status ("created", "concluded", ...). */
const char *job_status_name(JobStatus status);

/* Remove a concluded job (QMP job-dismiss); fails for an unknown id or a job
 * that has not concluded yet. */
bool job_dismiss(const char *id, GError **errp);

#endif
