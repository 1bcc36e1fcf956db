/*
 * The built-in TPM backend (-tpmdev builtin): libtpms inside tpmvm, its
 * NVRAM kept on a drive (docs/nvram.md).
 *
 *   -tpmdev builtin,id=ID[,version=2.0|1.2][,drive=DRIVE-ID]
 *   -tpmdev builtin,id=ID[,version=...],path=FILE.qcow2[,key-secret=SECRET-ID]
 *
 * libtpms is one global TPM per process, so there is at most one builtin
 * backend. What the snapshot code and tools need beyond tpm_backend.h is
 * here; all of it runs on the main thread with the big lock held.
 */
#ifndef HW_TPM_TPM_BUILTIN_H
#define HW_TPM_TPM_BUILTIN_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/tpm/tpm_backend.h"

typedef struct TPMNvramOps TPMNvramOps;

/* True if `be` is a builtin backend. */
bool tpm_builtin_is_builtin(TPMBackend *be);

/*
 * Drain: wait for the command in flight (running its completion) and flush
 * the NVRAM drive. Afterwards the drive holds the TPM's permanent state and
 * no command runs until the next delivery. Call before a drive snapshot.
 */
bool tpm_builtin_drain(TPMBackend *be, GError **errp);

/*
 * Power-cycle from the drive: drain, re-read the NVRAM store from the drive
 * (it may have been changed under the TPM, e.g. by applying a snapshot), and
 * restart libtpms from its permanent state without volatile state: the guest
 * must send TPM2_Startup again. Use after a snapshot without vmstate.
 */
bool tpm_builtin_power_cycle_from_drive(TPMBackend *be, GError **errp);

/*
 * Re-read the NVRAM store from the drive without restarting the TPM (before
 * loading the backend's vmstate after a drive snapshot was applied).
 */
bool tpm_builtin_reload_drive(TPMBackend *be, GError **errp);

/* Counters of the NVRAM store's writes (benchmarks, tests). */
typedef struct TPMBuiltinStats {
    uint64_t commands;      /* commands processed */
    uint64_t writes;        /* writes to the drive */
    uint64_t bytes_written; /* bytes written to the drive */
    uint64_t flushes;       /* drive flushes */
} TPMBuiltinStats;
void tpm_builtin_get_stats(TPMBackend *be, TPMBuiltinStats *stats);

/*
 * Create a builtin backend over an NVRAM medium given directly (ops == NULL:
 * state kept in memory). For tests, fuzzers and tools; -tpmdev uses drives.
 */
TPMBackend *tpm_builtin_new(const char *id, TPMVersion version, const TPMNvramOps *ops,
                            void *opaque, const char *medium_name, GError **errp);

#endif
