/*
 * blkcrash: a test double for power loss; see block/blkcrash.h. Only tests
 * open it (it is never probed and not listed for users).
 */
#include <string.h>

#include "block/blkcrash.h"
#include "block/block_int.h"
#include "util/error.h"

typedef struct CrashWrite {
    uint64_t offset;
    uint64_t len;
    uint8_t *old_data;
    uint8_t *new_data;
} CrashWrite;

typedef struct BlkCrashState {
    GPtrArray *unflushed; /* CrashWrite*, oldest first */
    uint64_t flushed_len; /* file length at the last flush */
    uint64_t writes;
    uint64_t flushes;
    uint64_t crash_after; /* 0: never */
    uint64_t seed;
    bool dead;
} BlkCrashState;

static void crash_write_free(gpointer p)
{
    CrashWrite *w = p;

    g_free(w->old_data);
    g_free(w->new_data);
    g_free(w);
}

static bool blkcrash_open(BlockDriverState *bs, KeyVal *opts, int flags, GError **errp)
{
    BlkCrashState *s = bs->opaque;
    int64_t len;

    if (!keyval_get_uint(opts, "crash-after", 0, &s->crash_after, errp) ||
        !keyval_get_uint(opts, "seed", 0, &s->seed, errp)) {
        return false;
    }
    len = bdrv_getlength(bs->file);
    if (len < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "blkcrash: cannot size child");
        return false;
    }
    s->flushed_len = len;
    s->unflushed = g_ptr_array_new_with_free_func(crash_write_free);
    return true;
}

static void blkcrash_close(BlockDriverState *bs)
{
    BlkCrashState *s = bs->opaque;

    g_ptr_array_unref(s->unflushed);
}

/* Undo what was not flushed, keep a seeded random subset of it, then die. */
static void blkcrash_power_loss(BlockDriverState *bs)
{
    BlkCrashState *s = bs->opaque;
    GRand *rng = g_rand_new_with_seed((guint32)s->seed);

    for (guint i = s->unflushed->len; i > 0; i--) {
        CrashWrite *w = g_ptr_array_index(s->unflushed, i - 1);
        bdrv_pwrite(bs->file, w->offset, w->old_data, w->len, NULL);
    }
    bdrv_truncate(bs->file, s->flushed_len, NULL);
    for (guint i = 0; i < s->unflushed->len; i++) {
        CrashWrite *w = g_ptr_array_index(s->unflushed, i);
        if (g_rand_boolean(rng)) {
            bdrv_pwrite(bs->file, w->offset, w->new_data, w->len, NULL);
        }
    }
    bdrv_flush(bs->file, NULL);
    g_ptr_array_set_size(s->unflushed, 0);
    g_rand_free(rng);
    s->dead = true;
}

static bool blkcrash_pread(BlockDriverState *bs, uint64_t offset, void *buf,
                           uint64_t bytes, GError **errp)
{
    return bdrv_pread(bs->file, offset, buf, bytes, errp);
}

static bool blkcrash_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf,
                            uint64_t bytes, GError **errp)
{
    BlkCrashState *s = bs->opaque;
    CrashWrite *w;

    if (s->dead) {
        return true;
    }
    if (s->crash_after && ++s->writes >= s->crash_after) {
        blkcrash_power_loss(bs);
        return true;
    }
    if (!s->crash_after) {
        s->writes++;
    }
    w = g_new0(CrashWrite, 1);
    w->offset = offset;
    w->len = bytes;
    w->old_data = g_malloc(bytes);
    w->new_data = g_memdup2(buf, bytes);
    if (!bdrv_pread(bs->file, offset, w->old_data, bytes, errp) ||
        !bdrv_pwrite(bs->file, offset, buf, bytes, errp)) {
        crash_write_free(w);
        return false;
    }
    g_ptr_array_add(s->unflushed, w);
    return true;
}

static bool blkcrash_flush(BlockDriverState *bs, GError **errp)
{
    BlkCrashState *s = bs->opaque;
    int64_t len;

    if (s->dead) {
        return true;
    }
    s->flushes++;
    /* Power may also go while a flush is pending: nothing since the last one is safe. */
    if (s->crash_after && ++s->writes >= s->crash_after) {
        blkcrash_power_loss(bs);
        return true;
    }
    if (!s->crash_after) {
        s->writes++;
    }
    if (!bdrv_flush(bs->file, errp)) {
        return false;
    }
    len = bdrv_getlength(bs->file);
    s->flushed_len = len < 0 ? s->flushed_len : (uint64_t)len;
    g_ptr_array_set_size(s->unflushed, 0);
    return true;
}

static int64_t blkcrash_getlength(BlockDriverState *bs)
{
    return bdrv_getlength(bs->file);
}

static bool blkcrash_truncate(BlockDriverState *bs, uint64_t size, GError **errp)
{
    BlkCrashState *s = bs->opaque;

    return s->dead || bdrv_truncate(bs->file, size, errp);
}

const BlockDriver bdrv_blkcrash = {
    .format_name = "blkcrash",
    .instance_size = sizeof(BlkCrashState),
    .is_filter = true,
    .test_only = true,
    .open = blkcrash_open,
    .close = blkcrash_close,
    .pread = blkcrash_pread,
    .pwrite = blkcrash_pwrite,
    .flush = blkcrash_flush,
    .getlength = blkcrash_getlength,
    .truncate = blkcrash_truncate,
};

BlockDriverState *blkcrash_find(BlockDriverState *bs)
{
    while (bs && bs->drv != &bdrv_blkcrash) {
        bs = bs->file;
    }
    return bs;
}

bool blkcrash_is_dead(BlockDriverState *bs)
{
    BlockDriverState *c = blkcrash_find(bs);

    return c && ((BlkCrashState *)c->opaque)->dead;
}

uint64_t blkcrash_write_count(BlockDriverState *bs)
{
    BlockDriverState *c = blkcrash_find(bs);

    return c ? ((BlkCrashState *)c->opaque)->writes : 0;
}

uint64_t blkcrash_flush_count(BlockDriverState *bs)
{
    BlockDriverState *c = blkcrash_find(bs);

    return c ? ((BlkCrashState *)c->opaque)->flushes : 0;
}
