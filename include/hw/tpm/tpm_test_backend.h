/*
 * The "test" TPM backend: a scripted TPM for exercising the TIS frontend
 * without libtpms (-tpmdev test,id=X[,script=FILE][,delay-ms=N]
 * [,version=2.0|1.2][,log=FILE][,buffer-size=N][,established=on|off]
 * [,fail-startup=on]).
 *
 * It answers each command with the next reply of its script (then a default
 * success reply of the right TPM version), can hold a command for delay-ms
 * (ended early by a cancel), and records every command it received. The
 * script format is in docs/tpm.md. These functions let in-process tests
 * (unit tests, fuzzers) drive it without files.
 */
#ifndef HW_TPM_TPM_TEST_BACKEND_H
#define HW_TPM_TPM_TEST_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "hw/tpm/tpm_backend.h"

/* Append a reply to the script queue (used before the default reply). */
void tpm_test_backend_push_reply(TPMBackend *be, const uint8_t *reply, size_t len);
/* Commands received so far, oldest first (a new reference). */
GPtrArray *tpm_test_backend_get_commands(TPMBackend *be);
/* Locality of the last command, or -1 if none was received. */
int tpm_test_backend_last_locality(TPMBackend *be);
/* How often cancel_cmd / reset_tpm_established_flag / startup_tpm were called. */
unsigned tpm_test_backend_cancel_count(TPMBackend *be);
unsigned tpm_test_backend_established_reset_count(TPMBackend *be);
unsigned tpm_test_backend_startup_count(TPMBackend *be);
/* The buffer size the frontend asked for at the last startup. */
size_t tpm_test_backend_startup_buffer_size(TPMBackend *be);
/* Drop queued replies and the record of received commands. */
void tpm_test_backend_clear(TPMBackend *be);
/* Change how long a command is held (milliseconds, 0 = answer at once). */
void tpm_test_backend_set_delay_ms(TPMBackend *be, unsigned delay_ms);

#endif
