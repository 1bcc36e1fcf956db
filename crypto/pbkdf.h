/*
 * PBKDF2-HMAC (RFC 8018 §5.2) and its calibration against CPU time, as LUKS
 * uses them for key slots and the master-key digest.
 */
#ifndef CRYPTO_PBKDF_H
#define CRYPTO_PBKDF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "crypto/hash.h"

/* out = PBKDF2-HMAC-alg(pass, salt, iterations, out_len); iterations must be > 0. */
bool crypto_pbkdf2(CryptoHashAlg alg, const uint8_t *pass, size_t pass_len,
                   const uint8_t *salt, size_t salt_len, uint32_t iterations,
                   uint8_t *out, size_t out_len, GError **errp);

/*
 * Measure PBKDF2 iterations per second of thread CPU time for this output
 * length: runs of growing length until one takes more than 500 ms.
 */
bool crypto_pbkdf2_measure_rate(CryptoHashAlg alg, const uint8_t *pass, size_t pass_len,
                                const uint8_t *salt, size_t salt_len, size_t out_len,
                                uint64_t *iters_per_sec, GError **errp);

/*
 * Same, measured once per process for each (hash, output blocks): the rate
 * is a property of the machine and a measurement costs more than 0.5 s.
 */
bool crypto_pbkdf2_rate(CryptoHashAlg alg, const uint8_t *pass, size_t pass_len,
                        const uint8_t *salt, size_t salt_len, size_t out_len,
                        uint64_t *iters_per_sec, GError **errp);

/*
 * Iterations that take iter_time_ms at `rate`, divided by `divisor`, at least
 * `min`; fails if the result does not fit the header's 32-bit field.
 */
bool crypto_pbkdf2_iters_for_time(uint64_t rate, uint64_t iter_time_ms, uint32_t divisor,
                                  uint32_t min, uint32_t *iters, GError **errp);

#endif
