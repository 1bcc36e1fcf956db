/*
 * Accelerators (-accel qtest|kvm): what runs the guest's CPUs. A type
 * registers an AccelClass; the command line picks one by name and calls its
 * hooks in start-up order. Run-time hooks (pause/resume/reset of vCPUs) go
 * through AccelOps in system/runstate.h.
 */
#ifndef SYSTEM_ACCEL_H
#define SYSTEM_ACCEL_H

#include <stdbool.h>
#include <glib.h>

#include "hw/core/machine.h"
#include "util/keyval.h"

typedef struct AccelClass {
    const char *name;
    const char *desc;
    /* Options of -accel NAME,... (the accel key already taken); may be NULL. */
    bool (*parse_opts)(KeyVal *opts, GError **errp);
    /* After the machine created RAM and buses, before any -device. */
    bool (*init_machine)(MachineState *ms, GError **errp);
    /* After devices are realized and the kernel is loaded: create the vCPUs
     * (stopped; vm_start() resumes them through AccelOps). */
    bool (*setup_vcpus)(MachineState *ms, GError **errp);
    /* At exit, after the main loop returned. */
    void (*cleanup)(MachineState *ms);
} AccelClass;

void accel_class_register(const AccelClass *ac);
#define ACCEL_TYPE_REGISTER(ac)                                                          \
    static void __attribute__((constructor)) register_##ac(void)                         \
    {                                                                                    \
        accel_class_register(&ac);                                                       \
    }
const AccelClass *accel_class_find(const char *name);
void accel_list_help(void);

/* The accelerator in use, NULL before the command line chose one. */
const AccelClass *current_accel(void);
void accel_set_current(const AccelClass *ac);

#endif
