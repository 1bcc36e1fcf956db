/*
 * The "file" protocol: a host file or block device.
 *
 * I/O loops over EINTR and short transfers; reads past the end of the file
 * return zeros. cache=none|directsync open with O_DIRECT and go through an
 * aligned bounce buffer when the caller's request is not aligned.
 *
 * Image locking uses open file description locks (F_OFD_SETLK) on the same
 * bytes as QEMU, so that tpmvm and qemu-img/qemu-io see each other's locks:
 * byte 100 + p is read-locked while we hold permission p, byte 200 + p while
 * we refuse to share p with others.
 */
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block_int.h"
#include "util/error.h"
#include "util/trace.h"

#define FILE_LOCK_PERM_BASE 100
#define FILE_LOCK_SHARED_BASE 200

/* Permission numbers, as QEMU's BLK_PERM_* bit positions. */
enum {
    FILE_PERM_CONSISTENT_READ = 0,
    FILE_PERM_WRITE = 1,
    FILE_PERM_WRITE_UNCHANGED = 2,
    FILE_PERM_RESIZE = 3,
    FILE_PERM_COUNT = 4,
};

static const char *const file_perm_names[FILE_PERM_COUNT] = {
    "consistent read",
    "write",
    "write unchanged",
    "resize",
};

/* O_DIRECT alignment for offsets, lengths and buffers (safe for 512e and 4Kn). */
#define FILE_DIRECT_ALIGN 4096

typedef struct FileState {
    int fd;
    bool direct;
    bool no_flush;
    bool is_blockdev;
} FileState;

static bool file_lock_byte(int fd, off_t off)
{
    struct flock fl = {
        .l_type = F_RDLCK,
        .l_whence = SEEK_SET,
        .l_start = off,
        .l_len = 1,
    };
    return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

/* True if another open file description holds a lock on the byte. */
static bool file_byte_locked_by_other(int fd, off_t off, int *err)
{
    struct flock fl = {
        .l_type = F_WRLCK,
        .l_whence = SEEK_SET,
        .l_start = off,
        .l_len = 1,
    };
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        *err = errno;
        return false;
    }
    *err = 0;
    return fl.l_type != F_UNLCK;
}

/*
 * Take the locks for `held` permissions and for the permissions in `unshared`,
 * then look for another user's locks that conflict with them.
 */
static bool file_lock(BlockDriverState *bs, int fd, unsigned held, unsigned unshared,
                      bool required, bool *locked, GError **errp)
{
    int err;

    *locked = false;
    for (int p = 0; p < FILE_PERM_COUNT; p++) {
        if (((held >> p) & 1) && !file_lock_byte(fd, FILE_LOCK_PERM_BASE + p)) {
            goto no_locks;
        }
        if (((unshared >> p) & 1) && !file_lock_byte(fd, FILE_LOCK_SHARED_BASE + p)) {
            goto no_locks;
        }
    }
    for (int p = 0; p < FILE_PERM_COUNT; p++) {
        if (((held >> p) & 1) &&
            file_byte_locked_by_other(fd, FILE_LOCK_SHARED_BASE + p, &err)) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                        "Could not open '%s': Failed to get \"%s\" lock\n"
                        "Is another process using the image [%s]?",
                        bs->filename, file_perm_names[p], bs->filename);
            return false;
        }
        if (((unshared >> p) & 1) &&
            file_byte_locked_by_other(fd, FILE_LOCK_PERM_BASE + p, &err)) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                        "Could not open '%s': Failed to get shared \"%s\" lock\n"
                        "Is another process using the image [%s]?",
                        bs->filename, file_perm_names[p], bs->filename);
            return false;
        }
    }
    *locked = true;
    return true;

no_locks:
    err = errno;
    if (required) {
        error_set_errno(errp, err,
                        "Failed to lock '%s' (locking=on needs OFD locks; use "
                        "file.locking=off on file systems without them)",
                        bs->filename);
        return false;
    }
    /* locking=auto: the file system has no OFD locks; run without. */
    return true;
}

static bool file_open(BlockDriverState *bs, KeyVal *opts, int flags, GError **errp)
{
    FileState *s = bs->opaque;
    const char *locking = keyval_get(opts, "locking");
    const char *aio = keyval_get(opts, "aio");
    bool rw = flags & BDRV_O_RDWR;
    int oflags = O_CLOEXEC | (rw ? O_RDWR : O_RDONLY);
    bool lock_required = false, lock = true, locked;
    struct stat st;
    unsigned held, unshared;

    keyval_get(opts, "filename");
    if (aio && strcmp(aio, "threads") && strcmp(aio, "native") &&
        strcmp(aio, "io_uring")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Invalid parameter aio=%s (use threads, native or io_uring)", aio);
        return false;
    }
    if (locking) {
        if (!strcmp(locking, "on")) {
            lock_required = true;
        } else if (!strcmp(locking, "off")) {
            lock = false;
        } else if (strcmp(locking, "auto") != 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Invalid parameter locking=%s (use on, off or auto)", locking);
            return false;
        }
    }
    if (flags & BDRV_O_NO_LOCK) {
        lock = false;
    }
    if (flags & BDRV_O_NOCACHE) {
        oflags |= O_DIRECT;
    }
    if (flags & BDRV_O_CREATE) {
        oflags |= O_CREAT;
    }
    s->fd = open(bs->filename, oflags, 0644);
    if (s->fd < 0 && errno == EINVAL && (oflags & O_DIRECT)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "Could not open '%s': the file system does not support O_DIRECT "
                    "(cache=none/directsync); use cache=writeback",
                    bs->filename);
        return false;
    }
    if (s->fd < 0) {
        error_set_errno(errp, errno, "Could not open '%s'", bs->filename);
        return false;
    }
    if (fstat(s->fd, &st) < 0) {
        error_set_errno(errp, errno, "Could not stat '%s'", bs->filename);
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "Could not open '%s': it is a directory, not an image file",
                    bs->filename);
        goto fail;
    }
    s->is_blockdev = S_ISBLK(st.st_mode);
    s->direct = oflags & O_DIRECT;
    s->no_flush = flags & BDRV_O_NO_FLUSH;

    if (lock) {
        if (flags & BDRV_O_FORCE_SHARE) {
            held = unshared = 0;
        } else if (rw) {
            held = 1u << FILE_PERM_CONSISTENT_READ | 1u << FILE_PERM_WRITE |
                   1u << FILE_PERM_RESIZE;
            unshared = 1u << FILE_PERM_WRITE | 1u << FILE_PERM_RESIZE;
        } else {
            held = 1u << FILE_PERM_CONSISTENT_READ;
            unshared = 1u << FILE_PERM_WRITE;
        }
        if (!file_lock(bs, s->fd, held, unshared, lock_required, &locked, errp)) {
            goto fail;
        }
    }
    /* Truncate only once we know nobody else uses the file. */
    if ((flags & BDRV_O_CREATE) && !s->is_blockdev && ftruncate(s->fd, 0) < 0) {
        error_set_errno(errp, errno, "Could not truncate '%s'", bs->filename);
        goto fail;
    }
    return true;

fail:
    close(s->fd);
    s->fd = -1;
    return false;
}

static void file_close(BlockDriverState *bs)
{
    FileState *s = bs->opaque;

    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

/* Plain read loop: EINTR and short reads; zeros past the end of the file. */
static bool file_read_loop(BlockDriverState *bs, uint64_t offset, uint8_t *buf,
                           uint64_t bytes, GError **errp)
{
    FileState *s = bs->opaque;
    uint64_t done = 0;

    while (done < bytes) {
        ssize_t ret =
            pread(s->fd, buf + done, MIN(bytes - done, (uint64_t)1 << 30), offset + done);
        if (ret < 0 && errno == EINTR) {
            continue;
        }
        if (ret < 0 && s->direct && errno == EINVAL && done > 0) {
            ret = 0; /* unaligned tail after a short O_DIRECT read: EOF */
        }
        if (ret < 0) {
            error_set_errno(errp, errno,
                            "Could not read %" G_GUINT64_FORMAT " bytes at offset "
                            "%" G_GUINT64_FORMAT " of '%s'",
                            bytes, offset, bs->filename);
            return false;
        }
        if (ret == 0) {
            memset(buf + done, 0, bytes - done);
            break;
        }
        done += ret;
    }
    return true;
}

static bool file_write_loop(BlockDriverState *bs, uint64_t offset, const uint8_t *buf,
                            uint64_t bytes, GError **errp)
{
    FileState *s = bs->opaque;
    uint64_t done = 0;

    while (done < bytes) {
        ssize_t ret = pwrite(s->fd, buf + done, MIN(bytes - done, (uint64_t)1 << 30),
                             offset + done);
        if (ret < 0 && errno == EINTR) {
            continue;
        }
        if (ret <= 0) {
            error_set_errno(errp, ret < 0 ? errno : ENOSPC,
                            "Could not write %" G_GUINT64_FORMAT " bytes at offset "
                            "%" G_GUINT64_FORMAT " of '%s'",
                            bytes, offset, bs->filename);
            return false;
        }
        done += ret;
    }
    return true;
}

static bool file_is_aligned(uint64_t offset, const void *buf, uint64_t bytes)
{
    return ((offset | bytes | (uintptr_t)buf) & (FILE_DIRECT_ALIGN - 1)) == 0;
}

/* Largest request copied through one O_DIRECT bounce buffer. */
#define FILE_BOUNCE_MAX (4u << 20)

static bool file_pread_bounce(BlockDriverState *bs, uint64_t offset, uint8_t *buf,
                              uint64_t bytes, GError **errp)
{
    uint64_t start, end;
    uint8_t *bounce;
    bool ok;

    start = offset & ~(uint64_t)(FILE_DIRECT_ALIGN - 1);
    end = (offset + bytes + FILE_DIRECT_ALIGN - 1) & ~(uint64_t)(FILE_DIRECT_ALIGN - 1);
    bounce = g_aligned_alloc(end - start, 1, FILE_DIRECT_ALIGN);
    ok = file_read_loop(bs, start, bounce, end - start, errp);
    if (ok) {
        memcpy(buf, bounce + (offset - start), bytes);
    }
    g_aligned_free(bounce);
    return ok;
}

static bool file_pwrite_bounce(BlockDriverState *bs, uint64_t offset, const uint8_t *buf,
                               uint64_t bytes, GError **errp)
{
    uint64_t start, end, tail;
    uint8_t *bounce;
    bool ok = true;

    /* Read-modify-write of the partial blocks at both ends. */
    start = offset & ~(uint64_t)(FILE_DIRECT_ALIGN - 1);
    end = (offset + bytes + FILE_DIRECT_ALIGN - 1) & ~(uint64_t)(FILE_DIRECT_ALIGN - 1);
    bounce = g_aligned_alloc(end - start, 1, FILE_DIRECT_ALIGN);
    tail = end - FILE_DIRECT_ALIGN;
    if (offset != start) {
        ok = file_read_loop(bs, start, bounce, FILE_DIRECT_ALIGN, errp);
    }
    if (ok && offset + bytes != end && !(tail == start && offset != start)) {
        ok = file_read_loop(bs, tail, bounce + (tail - start), FILE_DIRECT_ALIGN, errp);
    }
    if (ok) {
        memcpy(bounce + (offset - start), buf, bytes);
        ok = file_write_loop(bs, start, bounce, end - start, errp);
    }
    g_aligned_free(bounce);
    return ok;
}

static bool file_pread(BlockDriverState *bs, uint64_t offset, void *buf, uint64_t bytes,
                       GError **errp)
{
    FileState *s = bs->opaque;
    uint8_t *p = buf;

    if (!s->direct || file_is_aligned(offset, buf, bytes)) {
        return file_read_loop(bs, offset, buf, bytes, errp);
    }
    while (bytes > 0) {
        uint64_t n = MIN(bytes, FILE_BOUNCE_MAX);
        if (!file_pread_bounce(bs, offset, p, n, errp)) {
            return false;
        }
        offset += n;
        p += n;
        bytes -= n;
    }
    return true;
}

static bool file_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf,
                        uint64_t bytes, GError **errp)
{
    FileState *s = bs->opaque;
    const uint8_t *p = buf;

    trace_event("file_pwrite",
                "file=%s offset=0x%" G_GINT64_MODIFIER "x bytes=%" G_GUINT64_FORMAT,
                bs->filename, offset, bytes);
    if (!s->direct || file_is_aligned(offset, buf, bytes)) {
        return file_write_loop(bs, offset, buf, bytes, errp);
    }
    while (bytes > 0) {
        uint64_t n = MIN(bytes, FILE_BOUNCE_MAX);
        if (!file_pwrite_bounce(bs, offset, p, n, errp)) {
            return false;
        }
        offset += n;
        p += n;
        bytes -= n;
    }
    return true;
}

static bool file_flush(BlockDriverState *bs, GError **errp)
{
    FileState *s = bs->opaque;

    if (s->no_flush) {
        return true;
    }
    trace_event("file_flush", "file=%s", bs->filename);
    if (fdatasync(s->fd) < 0) {
        error_set_errno(errp, errno, "Could not flush '%s'", bs->filename);
        return false;
    }
    return true;
}

static int64_t file_getlength(BlockDriverState *bs)
{
    FileState *s = bs->opaque;
    struct stat st;

    if (s->is_blockdev) {
        uint64_t size;
        if (ioctl(s->fd, BLKGETSIZE64, &size) < 0) {
            return -errno;
        }
        return size;
    }
    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return st.st_size;
}

static bool file_truncate(BlockDriverState *bs, uint64_t size, GError **errp)
{
    FileState *s = bs->opaque;

    if (s->is_blockdev) {
        if ((uint64_t)file_getlength(bs) < size) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                        "Cannot grow block device '%s'", bs->filename);
            return false;
        }
        return true;
    }
    if (size > INT64_MAX || ftruncate(s->fd, size) < 0) {
        error_set_errno(errp, size > INT64_MAX ? EFBIG : errno,
                        "Could not resize '%s' to %" G_GUINT64_FORMAT " bytes",
                        bs->filename, size);
        return false;
    }
    return true;
}

static int64_t file_get_allocated_size(BlockDriverState *bs)
{
    FileState *s = bs->opaque;
    struct stat st;

    if (fstat(s->fd, &st) < 0) {
        return -errno;
    }
    return (int64_t)st.st_blocks * 512;
}

static bool file_create(const char *filename, uint64_t size, KeyVal *opts, GError **errp)
{
    BlockDriverState *bs;
    g_autoptr(KeyVal) o = keyval_new();
    bool ok;

    keyval_set(o, "driver", "file");
    bs = bdrv_open(filename, o, BDRV_O_RDWR | BDRV_O_CREATE, errp);
    if (!bs) {
        return false;
    }
    ok = bdrv_truncate(bs, size, errp) && bdrv_flush(bs, errp);
    bdrv_unref(bs);
    return ok;
}

const BlockDriver bdrv_file = {
    .format_name = "file",
    .instance_size = sizeof(FileState),
    .is_protocol = true,
    .create = file_create,
    .open = file_open,
    .close = file_close,
    .pread = file_pread,
    .pwrite = file_pwrite,
    .flush = file_flush,
    .getlength = file_getlength,
    .truncate = file_truncate,
    .get_allocated_size = file_get_allocated_size,
};
