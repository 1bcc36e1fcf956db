/*
 * libtpms inside tpmvm: the one TPM instance of the process, its NVRAM
 * callbacks (into a TPMNvram store) and its I/O callbacks (locality).
 *
 * libtpms keeps a single TPM in global variables and is not re-entrant, so
 * this module is a singleton: every call into libtpms goes through it and is
 * serialised by one lock. Commands run on the TPM worker thread; start, stop
 * and state get/set run on the main thread while no command is in flight.
 */
#ifndef HW_TPM_TPM_BUILTIN_LIB_H
#define HW_TPM_TPM_BUILTIN_LIB_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_nvram.h"

/* The three state blobs, indexed by TPMNvramBlob; NULL = absent. */
typedef struct TPMBuiltinBlobs {
    GBytes *blob[TPM_NVRAM_NBLOBS];
} TPMBuiltinBlobs;

void tpm_builtin_blobs_clear(TPMBuiltinBlobs *blobs);

/* Largest blobs libtpms writes for this TPM version (drive sizing). */
void tpm_builtin_lib_blob_limits(TPMVersion version, uint64_t max_blob[TPM_NVRAM_NBLOBS]);
/* I/O buffer size libtpms would use when asked for `wanted` bytes (0: its
 * default). Only while the TPM is stopped. */
uint32_t tpm_builtin_lib_buffer_size(TPMVersion version, uint32_t wanted);

/*
 * Start (or restart) the TPM: choose the version, set the buffer size,
 * register the callbacks over `nv`, optionally set state blobs (permanent,
 * then volatile, then savestate) and run MainInit. On failure the TPM is
 * stopped and errp says why.
 */
bool tpm_builtin_lib_start(TPMVersion version, uint32_t buffer_size, TPMNvram *nv,
                           const TPMBuiltinBlobs *state, GError **errp);
/* Terminate the TPM (volatile state is gone; the store keeps the rest). */
void tpm_builtin_lib_stop(void);
bool tpm_builtin_lib_is_running(void);
/* Buffer size of the running TPM. */
uint32_t tpm_builtin_lib_get_buffer_size(void);

/*
 * Run one command at locality `locty`; the response goes to out (at most
 * out_len bytes) and its length is returned. Always produces a response: a
 * version-correct error when the command cannot run or its state change
 * could not be made durable.
 */
uint32_t tpm_builtin_lib_process(uint8_t locty, const uint8_t *in, uint32_t in_len,
                                 uint8_t *out, uint32_t out_len);
/* Any thread: ask the running command to stop early. Never blocks. */
void tpm_builtin_lib_cancel(void);
/* Cached tpmEstablished flag (read on every TIS ACCESS read). */
bool tpm_builtin_lib_get_established(void);
/* Reset tpmEstablished as asked from `locty` (3 or 4). Never blocks behind a
 * running command: it then takes effect when that command ends. */
bool tpm_builtin_lib_reset_established(uint8_t locty, GError **errp);

/* The running TPM's permanent, volatile and savestate blobs. */
bool tpm_builtin_lib_get_state(TPMBuiltinBlobs *out, GError **errp);

/* Write a 10-byte error response of the given TPM version; returns 10. */
uint32_t tpm_builtin_error_response(TPMVersion version, uint8_t *out, uint32_t out_len,
                                    uint32_t rc2, uint32_t rc12);

#endif
