/*
 * The "raw" format: guest bytes are the file's bytes.
 */
#include "block/block_int.h"

static bool raw_open(BlockDriverState *bs, KeyVal *opts, int flags, GError **errp)
{
    return true;
}

static bool raw_pread(BlockDriverState *bs, uint64_t offset, void *buf, uint64_t bytes,
                      GError **errp)
{
    return bdrv_pread(bs->file, offset, buf, bytes, errp);
}

static bool raw_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf,
                       uint64_t bytes, GError **errp)
{
    return bdrv_pwrite(bs->file, offset, buf, bytes, errp);
}

static bool raw_flush(BlockDriverState *bs, GError **errp)
{
    return bdrv_flush(bs->file, errp);
}

static int64_t raw_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file);
}

static bool raw_truncate(BlockDriverState *bs, uint64_t size, GError **errp)
{
    return bdrv_truncate(bs->file, size, errp);
}

static bool raw_create(const char *filename, uint64_t size, KeyVal *opts, GError **errp)
{
    return bdrv_create("file", filename, size, opts, errp);
}

const BlockDriver bdrv_raw = {
    .format_name = "raw",
    .create = raw_create,
    .open = raw_open,
    .pread = raw_pread,
    .pwrite = raw_pwrite,
    .flush = raw_flush,
    .getlength = raw_getlength,
    .truncate = raw_truncate,
};
