/*
 * Helpers for the builtin TPM's qtests: TPM commands through the TIS of a
 * tpmvm process, as a guest driver sends them (byte-wise FIFO or 64-byte
 * XDATA_FIFO bursts), and the encrypted drives the tests start from.
 */
#ifndef TPM_BUILTIN_UTIL_H
#define TPM_BUILTIN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "libqtest.h"

#define TPM_TIS_ADDR 0xfed40000ull

/* Make `locty` the active locality (request use, wait until granted). */
void tpm_tis_request_locality(QTestState *qts, uint8_t locty);
void tpm_tis_relinquish_locality(QTestState *qts, uint8_t locty);

/*
 * Send one command at `locty` (which must be active) and read the response
 * into rsp; returns its length. burst: XDATA_FIFO bursts instead of one byte
 * per access. Fails the test if the TIS misbehaves or takes over 60 s.
 */
uint32_t tpm_tis_transmit(QTestState *qts, uint8_t locty, const uint8_t *cmd, size_t len,
                          uint8_t *rsp, size_t rsp_max, bool burst);

/* tpm_tis_transmit of a GByteArray (consumed) at locality 0; returns the rc. */
uint32_t tpm_tis_run(QTestState *qts, GByteArray *cmd, uint8_t *rsp, size_t rsp_max);

/* Passphrase of the drives the tests make, and the -object line for it. */
#define TPM_TEST_PASS "tpm-test-passphrase"
#define TPM_TEST_SECRET "-object secret,id=sec0,data=" TPM_TEST_PASS

/*
 * Make a LUKS-encrypted qcow2 of `size` (e.g. "1M") with tpmvm-img and a
 * fast PBKDF2 (iter-time=10; Debian's qemu-img cannot calibrate that low).
 * Returns false with errp set if that fails.
 */
bool tpm_test_make_image(const char *path, const char *size, GError **errp);

#endif
