/*
 * Run states and the requests that move between them (QEMU's names, as shown
 * by query-status).
 */
#ifndef SYSTEM_RUNSTATE_H
#define SYSTEM_RUNSTATE_H

#include <stdbool.h>
#include <glib.h>

typedef enum {
    RUN_STATE_PRELAUNCH,
    RUN_STATE_RUNNING,
    RUN_STATE_PAUSED,
    RUN_STATE_SAVE_VM,
    RUN_STATE_RESTORE_VM,
    RUN_STATE_INTERNAL_ERROR,
    RUN_STATE_SHUTDOWN,
    RUN_STATE__MAX
} RunState;

const char *runstate_name(RunState s);
RunState runstate_get(void);
bool runstate_is_running(void);

/* Start or resume vCPUs; emits RESUME. */
void vm_start(void);
/* Stop vCPUs (waits until they are out of guest code); emits STOP. */
void vm_stop(RunState to);

typedef void (*RunStateNotifier)(void *opaque, bool running, RunState state);
void runstate_add_notifier(RunStateNotifier fn, void *opaque);

/* Requests are safe from any thread; the main loop acts on them. */
typedef enum {
    SHUTDOWN_CAUSE_HOST_QMP_QUIT,
    SHUTDOWN_CAUSE_HOST_SIGNAL,
    SHUTDOWN_CAUSE_GUEST_SHUTDOWN,
    SHUTDOWN_CAUSE_GUEST_RESET, /* with -no-reboot */
    SHUTDOWN_CAUSE_HOST_ERROR,
} ShutdownCause;
void system_shutdown_request(ShutdownCause cause, int exit_status);
void system_reset_request(bool guest);
/* Reset all devices and the CPUs now (main thread, big lock held). */
void system_reset(void);
bool system_shutdown_requested(void);

/* Hooks for the accelerator (CPU reset, pause/resume of vCPU threads). */
typedef struct AccelOps {
    const char *name;
    void (*reset_cpus)(void);
    void (*pause_cpus)(void);
    void (*resume_cpus)(void);
} AccelOps;
void accel_set_ops(const AccelOps *ops);

/*
 * Main loop hook: act on pending reset/shutdown requests; true (and the exit
 * status) once the process should leave the main loop.
 */
bool runstate_main_loop_should_exit(int *exit_status);

/* Move to a state without starting or stopping anything (snapshot code, errors). */
void runstate_set(RunState s);

/* Reset hooks run by system_reset() after every device was reset. */
typedef void (*ResetHook)(void *opaque);
void system_add_reset_hook(ResetHook fn, void *opaque);

/* The tag given with -loadvm, or NULL (the snapshot code restores it at start-up). */
const char *system_loadvm_tag(void);
void system_set_loadvm_tag(const char *tag);

/*
 * Start-up hooks: run once by the command line after the machine and every
 * -device exist, before the VM starts. A failure ends the process with the
 * error shown (used by -loadvm).
 */
typedef bool (*StartupHook)(void *opaque, GError **errp);
void system_add_startup_hook(StartupHook fn, void *opaque);
bool system_run_startup_hooks(GError **errp);

#endif
