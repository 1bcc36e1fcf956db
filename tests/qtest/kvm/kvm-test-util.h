/*
 * Helpers for the KVM tests: whether KVM and the test guest are usable here
 * (and why not), starting tpmvm under KVM with the guest, and waiting for
 * what the guest prints on its serial port (tpmvm's stdout).
 */
#ifndef KVM_TEST_UTIL_H
#define KVM_TEST_UTIL_H

#include <stdbool.h>

#include "libqtest.h"

/* NULL when the KVM tests can run; otherwise the reason to skip. */
const char *kvm_test_unavailable(void);
/* NULL when tpmvm has a TPM TIS device and the builtin backend. */
const char *kvm_test_tpm_unavailable(void);
/* NULL when tpmvm has a QMP monitor. */
const char *kvm_test_qmp_unavailable(void);

/* Skip the current test (and return true) if `why` is set. */
bool kvm_test_skip_if(const char *why);

/* Path of the test guest ELF (tests/guest/tpm-guest.elf in the build). */
const char *kvm_test_guest(void);

/*
 * Start tpmvm -accel kvm with the test guest, `append` as its command line,
 * the debug-exit device, serial on stdout, and `extra` arguments.
 */
QTestState *kvm_test_start(const char *append, const char *extra, unsigned flags);

/*
 * Wait until the serial output holds `needle` `count` times (or the process
 * exits, or timeout_ms passes). Returns whether it did.
 */
bool kvm_test_wait_output(QTestState *s, const char *needle, unsigned count,
                          unsigned timeout_ms);
/* How often `needle` occurs in the output so far. */
unsigned kvm_test_count_output(QTestState *s, const char *needle);

/* Run the guest to its end: returns tpmvm's exit status; *out gets stdout. */
int kvm_test_run_guest(const char *append, const char *extra, char **out);

#endif
