/*
 * Cryptographic randomness from the kernel (salts, master keys, AF stripes).
 */
#include <errno.h>
#include <sys/random.h>

#include "crypto/luks.h"
#include "util/error.h"

bool crypto_random_bytes(void *buf, size_t len, GError **errp)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_set_errno(errp, errno, "Cannot read random bytes from the kernel");
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}
