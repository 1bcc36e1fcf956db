/*
 * Memory for keys and secrets: its own mapping, locked so it is never
 * swapped, excluded from core dumps, wiped before it is unmapped.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crypto/secret.h"
#include "crypto/secure-mem.h"
#include "util/log.h"

void (*secure_free_observer)(const void *p, size_t mapped_len);

static size_t secure_mapped_len(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    len = MAX(len, 1);
    return (len + page - 1) / page * page;
}

void *secure_alloc(size_t len)
{
    size_t mapped = secure_mapped_len(len);
    void *p;

    if (len > SIZE_MAX / 2) {
        g_error("secure_alloc: impossible size %zu", len);
    }
    p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        g_error("secure_alloc: cannot map %zu bytes: %s", mapped, g_strerror(errno));
    }
    if (mlock(p, mapped) < 0) {
        static gsize warned;

        /* RLIMIT_MEMLOCK is often small; keys still work, only swap is a risk. */
        if (g_once_init_enter(&warned)) {
            warn_report("cannot lock key memory (%s); keys may be swapped to disk. "
                        "Raise the memlock limit (ulimit -l) to avoid this",
                        g_strerror(errno));
            g_once_init_leave(&warned, 1);
        }
    }
    madvise(p, mapped, MADV_DONTDUMP);
    return p;
}

void secure_free(void *p, size_t len)
{
    size_t mapped = secure_mapped_len(len);

    if (!p) {
        return;
    }
    explicit_bzero(p, mapped);
    if (secure_free_observer) {
        secure_free_observer(p, mapped);
    }
    munlock(p, mapped);
    munmap(p, mapped);
}
