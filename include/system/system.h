/*
 * The process: command-line entry point and what it was told.
 */
#ifndef SYSTEM_SYSTEM_H
#define SYSTEM_SYSTEM_H

#include <stdbool.h>

/* Parse the command line, build the VM, run the main loop; returns the exit status. */
int tpmvm_main(int argc, char **argv);

/* -name guest=NAME, or NULL. */
const char *system_vm_name(void);
/* -S was given (the VM waits in prelaunch/paused for "cont"). */
bool system_start_paused(void);

#endif
