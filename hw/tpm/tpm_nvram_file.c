/*
 * A plain file as NVRAM medium: pread/pwrite/fdatasync. Used by tests and
 * tools; tpmvm itself keeps the TPM state on a block-layer drive
 * (tpm_builtin_storage.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hw/tpm/tpm_nvram.h"
#include "util/error.h"

struct TPMNvramFile {
    int fd;
    char *path;
};

static bool file_pread(void *opaque, uint64_t offset, void *buf, uint64_t len,
                       GError **errp)
{
    TPMNvramFile *f = opaque;
    uint8_t *p = buf;

    while (len) {
        ssize_t n = pread(f->fd, p, MIN(len, (uint64_t)G_MAXSSIZE), (off_t)offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_set_errno(errp, errno, "Could not read '%s'", f->path);
            return false;
        }
        if (n == 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                        "Could not read '%s': unexpected end of file", f->path);
            return false;
        }
        p += n;
        offset += n;
        len -= n;
    }
    return true;
}

static bool file_pwrite(void *opaque, uint64_t offset, const void *buf, uint64_t len,
                        GError **errp)
{
    TPMNvramFile *f = opaque;
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = pwrite(f->fd, p, MIN(len, (uint64_t)G_MAXSSIZE), (off_t)offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            error_set_errno(errp, n < 0 ? errno : EIO, "Could not write '%s'", f->path);
            return false;
        }
        p += n;
        offset += n;
        len -= n;
    }
    return true;
}

static bool file_flush(void *opaque, GError **errp)
{
    TPMNvramFile *f = opaque;

    if (fdatasync(f->fd) < 0) {
        error_set_errno(errp, errno, "Could not flush '%s'", f->path);
        return false;
    }
    return true;
}

static int64_t file_size(void *opaque, GError **errp)
{
    TPMNvramFile *f = opaque;
    struct stat st;

    if (fstat(f->fd, &st) < 0) {
        error_set_errno(errp, errno, "Could not stat '%s'", f->path);
        return -1;
    }
    return st.st_size;
}

const TPMNvramOps tpm_nvram_file_ops = {
    .pread = file_pread,
    .pwrite = file_pwrite,
    .flush = file_flush,
    .size = file_size,
};

TPMNvramFile *tpm_nvram_file_open(const char *path, bool writable, GError **errp)
{
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    TPMNvramFile *f;

    if (fd < 0) {
        error_set_errno(errp, errno, "Could not open '%s'", path);
        return NULL;
    }
    f = g_new0(TPMNvramFile, 1);
    f->fd = fd;
    f->path = g_strdup(path);
    return f;
}

void tpm_nvram_file_close(TPMNvramFile *f)
{
    if (f) {
        close(f->fd);
        g_free(f->path);
        g_free(f);
    }
}
