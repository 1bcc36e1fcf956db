/*
 * PBKDF2 over nettle, and iteration-count calibration.
 */
#include <time.h>

#include <nettle/pbkdf2.h>

#include "crypto/pbkdf.h"
#include "util/error.h"

/* Calibration follows QEMU's crypto/pbkdf.c so that images look alike. */
#define PBKDF2_CALIBRATE_START_ITERS (1u << 15)
#define PBKDF2_CALIBRATE_MIN_NS (500 * 1000000ull)
#define PBKDF2_CALIBRATE_SHORT_NS (100 * 1000000ull)

bool crypto_pbkdf2(CryptoHashAlg alg, const uint8_t *pass, size_t pass_len,
                   const uint8_t *salt, size_t salt_len, uint32_t iterations,
                   uint8_t *out, size_t out_len, GError **errp)
{
    /* nettle asserts on both; a hostile header must not reach that. */
    if (iterations == 0 || out_len == 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "PBKDF2 needs at least one iteration and one output byte");
        return false;
    }
    if (alg == CRYPTO_HASH_SHA1) {
        pbkdf2_hmac_sha1(pass_len, pass, iterations, salt_len, salt, out_len, out);
    } else {
        pbkdf2_hmac_sha256(pass_len, pass, iterations, salt_len, salt, out_len, out);
    }
    return true;
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool crypto_pbkdf2_measure_rate(CryptoHashAlg alg, const uint8_t *pass, size_t pass_len,
                                const uint8_t *salt, size_t salt_len, size_t out_len,
                                uint64_t *iters_per_sec, GError **errp)
{
    g_autofree uint8_t *out = g_malloc(out_len ? out_len : 1);
    uint64_t iters = PBKDF2_CALIBRATE_START_ITERS;
    uint64_t ns;

    for (;;) {
        uint64_t start = thread_cpu_ns();

        if (!crypto_pbkdf2(alg, pass, pass_len, salt, salt_len, (uint32_t)iters, out,
                           out_len, errp)) {
            return false;
        }
        ns = thread_cpu_ns() - start;
        if (ns > PBKDF2_CALIBRATE_MIN_NS || iters == UINT32_MAX) {
            break;
        }
        if (ns < PBKDF2_CALIBRATE_SHORT_NS) {
            iters *= 10;
        } else {
            /* Close enough: aim the next run at about one second. */
            iters = iters * 1000000000ull / ns;
        }
        iters = MIN(iters, UINT32_MAX);
    }
    explicit_bzero(out, out_len);
    *iters_per_sec = iters * 1000000000ull / MAX(ns, 1);
    return true;
}

/* Process-wide cache of measured rates, indexed by hash and output blocks. */
#define PBKDF2_RATE_CACHE_BLOCKS 8
static GMutex pbkdf2_rate_lock;
static uint64_t pbkdf2_rate_cache[2][PBKDF2_RATE_CACHE_BLOCKS + 1];

bool crypto_pbkdf2_rate(CryptoHashAlg alg, const uint8_t *pass, size_t pass_len,
                        const uint8_t *salt, size_t salt_len, size_t out_len,
                        uint64_t *iters_per_sec, GError **errp)
{
    size_t digest = crypto_hash_digest_len(alg);
    size_t blocks = (out_len + digest - 1) / digest;
    uint64_t *slot;
    bool ok = true;

    if (blocks == 0 || blocks > PBKDF2_RATE_CACHE_BLOCKS) {
        return crypto_pbkdf2_measure_rate(alg, pass, pass_len, salt, salt_len, out_len,
                                          iters_per_sec, errp);
    }
    g_mutex_lock(&pbkdf2_rate_lock);
    slot = &pbkdf2_rate_cache[alg == CRYPTO_HASH_SHA1 ? 0 : 1][blocks];
    if (*slot == 0) {
        ok = crypto_pbkdf2_measure_rate(alg, pass, pass_len, salt, salt_len, out_len,
                                        slot, errp);
    }
    *iters_per_sec = *slot;
    g_mutex_unlock(&pbkdf2_rate_lock);
    return ok;
}

bool crypto_pbkdf2_iters_for_time(uint64_t rate, uint64_t iter_time_ms, uint32_t divisor,
                                  uint32_t min, uint32_t *iters, GError **errp)
{
    uint64_t n;

    if (iter_time_ms != 0 && rate > UINT64_MAX / iter_time_ms) {
        n = UINT64_MAX;
    } else {
        n = rate * iter_time_ms / 1000 / MAX(divisor, 1);
    }
    if (n > UINT32_MAX) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "PBKDF2 iteration time %" G_GUINT64_FORMAT
                    " ms needs more iterations than a LUKS header can hold; "
                    "use a smaller iter-time",
                    iter_time_ms);
        return false;
    }
    *iters = MAX((uint32_t)n, min);
    return true;
}
