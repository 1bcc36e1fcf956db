/*
 * Block layer core: the driver table, opening a node graph from dotted
 * options, and the locked entry points every user of a node goes through.
 */
#include <stdio.h>
#include <string.h>

#include "block/block_int.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

static const BlockDriver *const block_drivers[] = {
    &bdrv_file,
    &bdrv_raw,
    &bdrv_qcow2,
    &bdrv_blkcrash,
};

const BlockDriver *bdrv_find_format(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(block_drivers); i++) {
        if (strcmp(block_drivers[i]->format_name, name) == 0) {
            return block_drivers[i];
        }
    }
    return NULL;
}

static BlockDriverState *bdrv_new(const BlockDriver *drv, const char *filename, int flags)
{
    BlockDriverState *bs = g_new0(BlockDriverState, 1);

    bs->drv = drv;
    bs->opaque = drv->instance_size ? g_malloc0(drv->instance_size) : NULL;
    bs->filename = g_strdup(filename);
    bs->flags = flags;
    bs->read_only = !(flags & BDRV_O_RDWR);
    bs->refcnt = 1;
    g_rec_mutex_init(&bs->lock);
    return bs;
}

static void bdrv_delete(BlockDriverState *bs)
{
    g_free(bs->opaque);
    g_free(bs->filename);
    g_free(bs->id);
    g_free(bs->claimed_by);
    g_rec_mutex_clear(&bs->lock);
    g_free(bs);
}

void bdrv_ref(BlockDriverState *bs)
{
    g_rec_mutex_lock(&bs->lock);
    bs->refcnt++;
    g_rec_mutex_unlock(&bs->lock);
}

void bdrv_unref(BlockDriverState *bs)
{
    BlockDriverState *child;

    if (!bs) {
        return;
    }
    g_rec_mutex_lock(&bs->lock);
    if (--bs->refcnt > 0) {
        g_rec_mutex_unlock(&bs->lock);
        return;
    }
    if (bs->drv->close) {
        bs->drv->close(bs);
    }
    child = bs->file;
    bs->file = NULL;
    g_rec_mutex_unlock(&bs->lock);
    bdrv_delete(bs);
    bdrv_unref(child);
}

void bdrv_close(BlockDriverState *bs)
{
    bdrv_unref(bs);
}

/* Undo bdrv_new() after a failed open (the driver's close is not called). */
static void bdrv_open_abort(BlockDriverState *bs)
{
    BlockDriverState *child = bs->file;

    bs->file = NULL;
    bdrv_delete(bs);
    bdrv_unref(child);
}

/* Generic per-node options: read-only, cache.*, force-share, node-name. */
static bool bdrv_apply_generic_opts(KeyVal *opts, int *flags, GError **errp)
{
    bool b;

    if (keyval_has(opts, "read-only")) {
        if (!keyval_get_bool(opts, "read-only", false, &b, errp)) {
            return false;
        }
        if (b) {
            *flags &= ~BDRV_O_RDWR;
        }
    }
    if (keyval_has(opts, "cache.direct")) {
        if (!keyval_get_bool(opts, "cache.direct", false, &b, errp)) {
            return false;
        }
        *flags = b ? (*flags | BDRV_O_NOCACHE) : (*flags & ~BDRV_O_NOCACHE);
    }
    if (keyval_has(opts, "cache.no-flush")) {
        if (!keyval_get_bool(opts, "cache.no-flush", false, &b, errp)) {
            return false;
        }
        *flags = b ? (*flags | BDRV_O_NO_FLUSH) : (*flags & ~BDRV_O_NO_FLUSH);
    }
    if (keyval_has(opts, "force-share")) {
        if (!keyval_get_bool(opts, "force-share", false, &b, errp)) {
            return false;
        }
        if (b) {
            *flags |= BDRV_O_FORCE_SHARE;
        }
    }
    /* Accepted for -blockdev compatibility; they change nothing here. */
    keyval_get(opts, "node-name");
    keyval_get(opts, "auto-read-only");
    keyval_get(opts, "discard");
    keyval_get(opts, "detect-zeroes");
    return true;
}

static const BlockDriver *bdrv_probe(BlockDriverState *child, GError **errp)
{
    uint8_t buf[2048];
    const BlockDriver *best = &bdrv_raw;
    int best_score = 0;

    if (!bdrv_pread(child, 0, buf, sizeof(buf), errp)) {
        return NULL;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(block_drivers); i++) {
        const BlockDriver *drv = block_drivers[i];
        if (drv->probe && !drv->test_only) {
            int score = drv->probe(buf, sizeof(buf));
            if (score > best_score) {
                best_score = score;
                best = drv;
            }
        }
    }
    return best;
}

BlockDriverState *bdrv_open_child(const char *filename, KeyVal *opts, int flags,
                                  GError **errp)
{
    g_autoptr(KeyVal) sub = keyval_extract_prefix(opts, "file.");
    const char *ref = keyval_get(opts, "file");
    const char *const *keys = keyval_keys(sub);

    if (ref && keys[0]) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Cannot reference an existing node ('file=%s') and give "
                    "'file.*' options at the same time",
                    ref);
        return NULL;
    }
    if (ref) {
        /* -blockdev ...,file=NODE: use a node opened earlier. */
        BlockDriverState *child = drive_find(ref);
        if (!child) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_FOUND,
                        "Cannot find device='' nor node-name='%s'", ref);
            return NULL;
        }
        if ((flags & BDRV_O_RDWR) && child->read_only) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                        "Node '%s' is read-only; open the image read-only", ref);
            return NULL;
        }
        bdrv_ref(child);
        return child;
    }
    if (!keyval_has(sub, "driver")) {
        keyval_set(sub, "driver", "file");
    }
    /* The child inherits the open mode; writethrough applies to the top only. */
    return bdrv_open(filename, sub, flags & ~BDRV_O_WRITETHROUGH, errp);
}

BlockDriverState *bdrv_open(const char *filename, KeyVal *opts_in, int flags,
                            GError **errp)
{
    g_autoptr(KeyVal) own = NULL;
    KeyVal *opts = opts_in;
    const char *driver;
    const BlockDriver *drv = NULL;
    BlockDriverState *bs, *child = NULL;

    if (!opts) {
        opts = own = keyval_new();
    }
    if (!bdrv_apply_generic_opts(opts, &flags, errp)) {
        return NULL;
    }
    driver = keyval_get(opts, "driver");
    if (driver) {
        drv = bdrv_find_format(driver);
        if (!drv) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Unknown driver '%s' (supported: file, raw, qcow2)", driver);
            return NULL;
        }
    }

    if (drv && drv->is_protocol) {
        const char *fname = filename;
        if (keyval_has(opts, "filename")) {
            fname = keyval_get(opts, "filename");
        }
        if (!fname || !fname[0]) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "The '%s' block driver requires a file name (option "
                        "'filename')",
                        drv->format_name);
            return NULL;
        }
        bs = bdrv_new(drv, fname, flags);
    } else {
        child = bdrv_open_child(filename, opts, flags, errp);
        if (!child) {
            return NULL;
        }
        if (!drv) {
            drv = bdrv_probe(child, errp);
            if (!drv) {
                bdrv_unref(child);
                return NULL;
            }
            if (drv == &bdrv_raw) {
                warn_report("Image format was not specified for '%s' and probing "
                            "guessed raw.\n"
                            "         Automatically detecting the format is dangerous "
                            "for raw images, write operations on block 0 will be "
                            "restricted.\n"
                            "         Specify the 'raw' format explicitly to remove "
                            "the restrictions.",
                            child->filename);
            }
        }
        bs = bdrv_new(drv, child->filename, flags);
        bs->file = child;
        bs->probed_raw = !driver && drv == &bdrv_raw;
    }

    if (!drv->open(bs, opts, flags, errp)) {
        if (!drv->is_protocol) {
            g_prefix_error(errp, "Could not open '%s': ", bs->filename);
        }
        bdrv_open_abort(bs);
        return NULL;
    }
    {
        g_autofree char *what = g_strdup_printf(
            "Block %s '%s'", drv->is_protocol ? "protocol" : "format", drv->format_name);
        if (!keyval_check_unused(opts, what, errp)) {
            if (drv->close) {
                drv->close(bs);
            }
            bdrv_open_abort(bs);
            return NULL;
        }
    }
    trace_event("bdrv_open", "node=%p driver=%s file=%s flags=0x%x", (void *)bs,
                drv->format_name, bs->filename, flags);
    return bs;
}

/* Name for messages: drive id / node name, else the file name. */
static const char *bdrv_name(const BlockDriverState *bs)
{
    return bs->id ? bs->id : bs->filename;
}

static bool bdrv_check_range(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                             const char *what, GError **errp)
{
    int64_t len;

    if (offset + bytes < offset) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "%s of %" G_GUINT64_FORMAT " bytes at offset %" G_GUINT64_FORMAT
                    " on '%s' overflows",
                    what, bytes, offset, bdrv_name(bs));
        return false;
    }
    if (bs->drv->is_protocol || bs->drv->is_filter) {
        return true;
    }
    len = bs->drv->getlength(bs);
    if (len < 0 || offset + bytes > (uint64_t)len) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "%s beyond the end of '%s' (offset %" G_GUINT64_FORMAT
                    ", %" G_GUINT64_FORMAT " bytes, size %" G_GINT64_FORMAT ")",
                    what, bdrv_name(bs), offset, bytes, len);
        return false;
    }
    return true;
}

bool bdrv_pread(BlockDriverState *bs, uint64_t offset, void *buf, uint64_t bytes,
                GError **errp)
{
    bool ok;

    if (bytes == 0) {
        return true;
    }
    g_rec_mutex_lock(&bs->lock);
    ok = bdrv_check_range(bs, offset, bytes, "Read", errp) &&
         bs->drv->pread(bs, offset, buf, bytes, errp);
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

/* A probed raw image must not turn into another format by a write to sector 0. */
static bool bdrv_raw_sector0_allowed(BlockDriverState *bs, uint64_t offset,
                                     const void *buf, uint64_t bytes, GError **errp)
{
    uint8_t sector[2048];
    uint64_t n;

    if (!bs->probed_raw || offset >= sizeof(sector)) {
        return true;
    }
    if (!bs->drv->pread(bs, 0, sector, sizeof(sector), errp)) {
        return false;
    }
    n = MIN(bytes, sizeof(sector) - offset);
    memcpy(sector + offset, buf, n);
    for (size_t i = 0; i < G_N_ELEMENTS(block_drivers); i++) {
        const BlockDriver *drv = block_drivers[i];
        if (drv != &bdrv_raw && drv->probe && drv->probe(sector, sizeof(sector)) > 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                        "Refusing a write to block 0 of '%s' that would make it look "
                        "like a %s image (its format was probed as raw; give "
                        "format=raw explicitly to lift this restriction)",
                        bdrv_name(bs), drv->format_name);
            return false;
        }
    }
    return true;
}

bool bdrv_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf, uint64_t bytes,
                 GError **errp)
{
    bool ok;

    if (bytes == 0) {
        return true;
    }
    g_rec_mutex_lock(&bs->lock);
    if (bs->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Cannot write to '%s': it was opened read-only", bdrv_name(bs));
        ok = false;
    } else {
        ok = bdrv_check_range(bs, offset, bytes, "Write", errp) &&
             bdrv_raw_sector0_allowed(bs, offset, buf, bytes, errp) &&
             bs->drv->pwrite(bs, offset, buf, bytes, errp);
        if (ok && (bs->flags & BDRV_O_WRITETHROUGH)) {
            ok = bs->drv->flush(bs, errp);
        }
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_flush(BlockDriverState *bs, GError **errp)
{
    bool ok = true;

    g_rec_mutex_lock(&bs->lock);
    if (!bs->read_only && bs->drv->flush) {
        ok = bs->drv->flush(bs, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

int64_t bdrv_getlength(BlockDriverState *bs)
{
    int64_t len;

    g_rec_mutex_lock(&bs->lock);
    len = bs->drv->getlength(bs);
    g_rec_mutex_unlock(&bs->lock);
    return len;
}

int64_t bdrv_get_file_length(BlockDriverState *bs)
{
    while (bs->file) {
        bs = bs->file;
    }
    return bdrv_getlength(bs);
}

bool bdrv_truncate(BlockDriverState *bs, uint64_t size, GError **errp)
{
    bool ok;

    g_rec_mutex_lock(&bs->lock);
    if (bs->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Cannot resize '%s': it was opened read-only", bdrv_name(bs));
        ok = false;
    } else if (!bs->drv->truncate) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Image format '%s' does not support resizing", bs->drv->format_name);
        ok = false;
    } else {
        ok = bs->drv->truncate(bs, size, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

int64_t bdrv_get_allocated_size(BlockDriverState *bs)
{
    int64_t ret;

    g_rec_mutex_lock(&bs->lock);
    if (bs->drv->get_allocated_size) {
        ret = bs->drv->get_allocated_size(bs);
    } else if (bs->file) {
        ret = bdrv_get_allocated_size(bs->file);
    } else {
        ret = -1;
    }
    g_rec_mutex_unlock(&bs->lock);
    return ret;
}

int bdrv_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                      uint64_t *pnum, GError **errp)
{
    int ret;

    g_rec_mutex_lock(&bs->lock);
    if (bs->drv->block_status) {
        ret = bs->drv->block_status(bs, offset, bytes, pnum, errp);
    } else {
        *pnum = bytes;
        ret = BDRV_BLOCK_DATA;
    }
    g_rec_mutex_unlock(&bs->lock);
    return ret;
}

bool bdrv_write_compressed(BlockDriverState *bs, uint64_t offset, const void *buf,
                           uint64_t bytes, GError **errp)
{
    bool ok;

    g_rec_mutex_lock(&bs->lock);
    if (!bs->drv->write_compressed) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Compression is not supported for image format '%s'",
                    bs->drv->format_name);
        ok = false;
    } else {
        ok = bdrv_check_range(bs, offset, bytes, "Write", errp) &&
             bs->drv->write_compressed(bs, offset, buf, bytes, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

uint64_t bdrv_cluster_size(BlockDriverState *bs)
{
    uint64_t ret = 0;

    g_rec_mutex_lock(&bs->lock);
    if (bs->drv->cluster_size) {
        ret = bs->drv->cluster_size(bs);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ret;
}

bool bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi, GError **errp)
{
    bool ok = true;

    memset(bdi, 0, sizeof(*bdi));
    g_rec_mutex_lock(&bs->lock);
    if (bs->drv->get_info) {
        ok = bs->drv->get_info(bs, bdi, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_can_check(BlockDriverState *bs)
{
    return bs->drv->check != NULL;
}

bool bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                GError **errp)
{
    bool ok;

    memset(res, 0, sizeof(*res));
    if (!bs->drv->check) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "This image format does not support checks");
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    ok = bs->drv->check(bs, res, fix, errp);
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_create(const char *format, const char *filename, uint64_t size, KeyVal *opts,
                 GError **errp)
{
    const BlockDriver *drv = bdrv_find_format(format);

    if (!drv || drv->test_only || !drv->create) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Unknown file format '%s' (supported: raw, qcow2)", format);
        return false;
    }
    return drv->create(filename, size, opts, errp);
}

bool bdrv_amend(BlockDriverState *bs, KeyVal *opts, GError **errp)
{
    bool ok;

    g_rec_mutex_lock(&bs->lock);
    if (!bs->drv->amend) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Format driver '%s' does not support option amendment",
                    bs->drv->format_name);
        ok = false;
    } else {
        ok = bs->drv->amend(bs, opts, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

const char *bdrv_get_id(const BlockDriverState *bs)
{
    return bs->id;
}

const char *bdrv_get_filename(const BlockDriverState *bs)
{
    return bs->filename;
}

const char *bdrv_get_format_name(const BlockDriverState *bs)
{
    return bs->drv->format_name;
}

bool bdrv_is_read_only(const BlockDriverState *bs)
{
    return bs->read_only;
}

bool bdrv_is_encrypted(const BlockDriverState *bs)
{
    return bs->drv->is_encrypted && bs->drv->is_encrypted(bs);
}

/* ---- snapshots and vmstate ------------------------------------------------ */

void block_snapshot_info_clear(BlockSnapshotInfo *sn)
{
    g_free(sn->id_str);
    g_free(sn->name);
    memset(sn, 0, sizeof(*sn));
}

bool bdrv_can_snapshot(BlockDriverState *bs)
{
    return bs->drv->snapshot_create != NULL && !bs->read_only;
}

static bool bdrv_snapshot_supported(BlockDriverState *bs, GError **errp)
{
    if (!bs->drv->snapshot_create) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Device '%s' (format '%s') does not support internal snapshots",
                    bdrv_name(bs), bs->drv->format_name);
        return false;
    }
    return true;
}

bool bdrv_snapshot_create(BlockDriverState *bs, BlockSnapshotInfo *sn, GError **errp)
{
    bool ok;

    if (!bdrv_snapshot_supported(bs, errp)) {
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    if (bs->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Cannot create a snapshot on '%s': it was opened read-only",
                    bdrv_name(bs));
        ok = false;
    } else {
        ok = bs->drv->snapshot_create(bs, sn, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

int bdrv_snapshot_list(BlockDriverState *bs, BlockSnapshotInfo **list)
{
    int n;

    *list = NULL;
    if (!bs->drv->snapshot_list) {
        return 0;
    }
    g_rec_mutex_lock(&bs->lock);
    n = bs->drv->snapshot_list(bs, list);
    g_rec_mutex_unlock(&bs->lock);
    return n;
}

static void snapshot_list_free(BlockSnapshotInfo *list, int n)
{
    for (int i = 0; i < n; i++) {
        block_snapshot_info_clear(&list[i]);
    }
    g_free(list);
}

/* Look up by id first, then by name (as QEMU does). */
bool bdrv_snapshot_find(BlockDriverState *bs, const char *name_or_id,
                        BlockSnapshotInfo *out)
{
    BlockSnapshotInfo *list;
    int n = bdrv_snapshot_list(bs, &list);
    int found = -1;

    for (int i = 0; i < n && found < 0; i++) {
        if (strcmp(list[i].id_str, name_or_id) == 0) {
            found = i;
        }
    }
    for (int i = 0; i < n && found < 0; i++) {
        if (strcmp(list[i].name, name_or_id) == 0) {
            found = i;
        }
    }
    if (found >= 0 && out) {
        *out = list[found];
        list[found].id_str = NULL;
        list[found].name = NULL;
    }
    snapshot_list_free(list, n);
    return found >= 0;
}

/* The driver's two-step revert, or an error naming the drive. */
static bool snapshot_goto_step_supported(BlockDriverState *bs, bool writes, GError **errp)
{
    if (!bdrv_snapshot_supported(bs, errp)) {
        return false;
    }
    if (!bs->drv->snapshot_goto_prepare) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Device '%s' (format '%s') cannot revert to a snapshot reversibly",
                    bdrv_name(bs), bs->drv->format_name);
        return false;
    }
    if (writes && bs->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Cannot apply a snapshot to '%s': it was opened read-only",
                    bdrv_name(bs));
        return false;
    }
    return true;
}

/* A revert that is not taken back: the driver's two steps, back to back. */
bool bdrv_snapshot_goto(BlockDriverState *bs, const char *name_or_id, GError **errp)
{
    BlockSnapshotInfo sn = {0};
    bool ok;

    if (!snapshot_goto_step_supported(bs, true, errp)) {
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    if (!bdrv_snapshot_find(bs, name_or_id, &sn)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Can't find snapshot '%s' in '%s'", name_or_id, bdrv_name(bs));
        ok = false;
    } else {
        /* A failed prepare leaves nothing pending. */
        ok = bs->drv->snapshot_goto_prepare(bs, sn.id_str, errp) &&
             bs->drv->snapshot_goto_commit(bs, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    block_snapshot_info_clear(&sn);
    return ok;
}

bool bdrv_snapshot_goto_prepare(BlockDriverState *bs, const char *id, GError **errp)
{
    bool ok;

    if (!snapshot_goto_step_supported(bs, true, errp)) {
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    ok = bs->drv->snapshot_goto_prepare(bs, id, errp);
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

/* Commit (drop the replaced contents) or abort (bring them back). */
static bool snapshot_goto_finish(BlockDriverState *bs, bool commit, GError **errp)
{
    bool ok;

    if (!snapshot_goto_step_supported(bs, true, errp)) {
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    ok = commit ? bs->drv->snapshot_goto_commit(bs, errp)
                : bs->drv->snapshot_goto_abort(bs, errp);
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_snapshot_goto_commit(BlockDriverState *bs, GError **errp)
{
    return snapshot_goto_finish(bs, true, errp);
}

bool bdrv_snapshot_goto_abort(BlockDriverState *bs, GError **errp)
{
    return snapshot_goto_finish(bs, false, errp);
}

bool bdrv_snapshot_load_vmstate(BlockDriverState *bs, const char *id, void *buf,
                                uint64_t pos, uint64_t size, GError **errp)
{
    bool ok;

    if (!snapshot_goto_step_supported(bs, false, errp)) {
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    ok = size == 0 || bs->drv->snapshot_load_vmstate(bs, id, buf, pos, size, errp);
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_snapshot_delete(BlockDriverState *bs, const char *id, const char *name,
                          GError **errp)
{
    BlockSnapshotInfo *list = NULL;
    int n, found = -1;
    bool ok;

    if (!bdrv_snapshot_supported(bs, errp)) {
        return false;
    }
    if (!id && !name) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Deleting a snapshot needs its id or name");
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    n = bdrv_snapshot_list(bs, &list);
    if (id && name) {
        for (int i = 0; i < n && found < 0; i++) {
            if (!strcmp(list[i].id_str, id) && !strcmp(list[i].name, name)) {
                found = i;
            }
        }
    } else {
        /* One of them given: match only that (qemu-img snapshot -d is by name). */
        for (int i = 0; i < n && found < 0; i++) {
            if (id ? !strcmp(list[i].id_str, id) : !strcmp(list[i].name, name)) {
                found = i;
            }
        }
    }
    if (bs->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Cannot delete a snapshot of '%s': it was opened read-only",
                    bdrv_name(bs));
        ok = false;
    } else if (found < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "snapshot not found (%s%s%s%s in '%s')", id ? "id " : "",
                    id ? id : "", name ? (id ? ", name " : "name ") : "",
                    name ? name : "", bdrv_name(bs));
        ok = false;
    } else {
        ok = bs->drv->snapshot_delete(bs, list[found].id_str, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    snapshot_list_free(list, n);
    return ok;
}

bool bdrv_save_vmstate(BlockDriverState *bs, const void *buf, uint64_t pos, uint64_t size,
                       GError **errp)
{
    bool ok;

    if (!bs->drv->save_vmstate) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Device '%s' (format '%s') has no vmstate area", bdrv_name(bs),
                    bs->drv->format_name);
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    if (bs->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Cannot save vmstate to '%s': it was opened read-only",
                    bdrv_name(bs));
        ok = false;
    } else {
        ok = size == 0 || bs->drv->save_vmstate(bs, buf, pos, size, errp);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}

bool bdrv_load_vmstate(BlockDriverState *bs, void *buf, uint64_t pos, uint64_t size,
                       GError **errp)
{
    bool ok;

    if (!bs->drv->load_vmstate) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Device '%s' (format '%s') has no vmstate area", bdrv_name(bs),
                    bs->drv->format_name);
        return false;
    }
    g_rec_mutex_lock(&bs->lock);
    ok = size == 0 || bs->drv->load_vmstate(bs, buf, pos, size, errp);
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}
