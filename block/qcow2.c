/*
 * qcow2 format driver: header parsing and validation, open/close, flush
 * ordering, L1 growth, resize, the vmstate area and the driver table.
 *
 * Every header field is checked against QEMU 7.2's limits before it is used
 * in a multiplication or an allocation, and a failed open never writes.
 */
#include <stdio.h>
#include <stdarg.h>
#include <string.h>

#include "qcow2.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

static bool qcow2_is_encrypted(const BlockDriverState *bs)
{
    const Qcow2State *s = bs->opaque;

    return qcow2_is_encrypted_state(s);
}

static int qcow2_probe(const uint8_t *buf, size_t len)
{
    if (len >= 8 && be32_at(buf) == QCOW2_MAGIC && be32_at(buf + 4) >= 2) {
        return 100;
    }
    return 0;
}

void qcow2_signal_corruption(Qcow2State *s, GError **errp, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    if (!s->read_only && !s->in_repair && !(s->incompatible & QCOW2_INCOMPAT_CORRUPT)) {
        error_report("qcow2: Marking image as corrupt: %s; further corruption events "
                     "will be suppressed",
                     msg);
        /* Best effort: the image is already in trouble. */
        qcow2_set_incompat_bits(s, QCOW2_INCOMPAT_CORRUPT, 0, NULL);
        s->read_only = true;
        s->corrupt_reported = true;
    } else if (!s->corrupt_reported && !s->in_repair) {
        error_report("qcow2: Image is corrupt: %s; further non-fatal corruption events "
                     "will be suppressed",
                     msg);
        s->corrupt_reported = true;
    }
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT, "Image '%s' is corrupt: %s",
                s->bs->filename, msg);
}

bool qcow2_file_flush(Qcow2State *s, GError **errp)
{
    if (!bdrv_flush(s->file, errp)) {
        return false;
    }
    s->unsynced = false;
    return true;
}

bool qcow2_write_header_field(Qcow2State *s, uint64_t off, const void *buf, size_t len,
                              GError **errp)
{
    /* A header update is a commit point: write it alone and make it durable. */
    if (!bdrv_pwrite(s->file, off, buf, len, errp)) {
        return false;
    }
    s->unsynced = true;
    return qcow2_file_flush(s, errp);
}

/*
 * Change incompatible feature bits. Clearing a bit vouches for everything
 * written before, which goes to disk first. `durable`: the header write is
 * flushed too; otherwise it becomes durable with the next flush.
 */
static bool incompat_update(Qcow2State *s, uint64_t set, uint64_t clear, bool durable,
                            GError **errp)
{
    uint64_t v = (s->incompatible | set) & ~clear;
    uint8_t be[8];

    if (s->version < 3 || v == s->incompatible) {
        return true;
    }
    put_be64(be, v);
    if ((s->incompatible & ~v) && s->unsynced && !qcow2_file_flush(s, errp)) {
        return false;
    }
    if (durable ? !qcow2_write_header_field(s, QCOW2_OFF_INCOMPAT, be, 8, errp)
                : !bdrv_pwrite(s->file, QCOW2_OFF_INCOMPAT, be, 8, errp)) {
        return false;
    }
    s->unsynced |= !durable;
    s->incompatible = v;
    return true;
}

bool qcow2_set_incompat_bits(Qcow2State *s, uint64_t set, uint64_t clear, GError **errp)
{
    return incompat_update(s, set, clear, true, errp);
}

bool qcow2_clear_dirty_lazily(Qcow2State *s, GError **errp)
{
    return incompat_update(s, 0, QCOW2_INCOMPAT_DIRTY, false, errp);
}

bool qcow2_write_l1(Qcow2State *s, GError **errp)
{
    g_autofree uint8_t *buf = g_malloc((uint64_t)s->l1_size * 8 + 1);

    for (uint32_t i = 0; i < s->l1_size; i++) {
        put_be64(buf + i * 8, s->l1_table[i]);
    }
    if (s->l1_size &&
        !bdrv_pwrite(s->file, s->l1_table_offset, buf, (uint64_t)s->l1_size * 8, errp)) {
        return false;
    }
    s->unsynced = true;
    s->l1_dirty = false;
    s->l1_fresh_lo = s->l1_fresh_hi = 0;
    return true;
}

bool qcow2_flush_metadata(Qcow2State *s, GError **errp)
{
    /*
     * With the dirty bit on disk, a crash makes the next open rebuild the
     * refcounts and COPIED flags from the tables, so their order does not
     * matter and only one barrier is left: the L1 after new L2 tables it
     * points at.
     */
    bool relaxed = s->incompatible & QCOW2_INCOMPAT_DIRTY;
    bool fresh = s->l1_fresh_lo < s->l1_fresh_hi;

    if (s->read_only) {
        return true;
    }
    /* 1: new refcounts; 2: L2 tables (after a barrier); 3: the L1 table. */
    if (relaxed) {
        if (!qcow2_cache_write_unordered(s, &s->refblock_cache, errp) ||
            !qcow2_cache_write_unordered(s, &s->l2_cache, errp)) {
            return false;
        }
    } else if (!qcow2_cache_write(s, &s->refblock_cache, errp) ||
               !qcow2_cache_write(s, &s->l2_cache, errp)) {
        return false;
    }
    if (s->l1_dirty) {
        if ((s->unsynced && (fresh || !relaxed) && !qcow2_file_flush(s, errp)) ||
            !qcow2_write_l1(s, errp)) {
            return false;
        }
    }
    /*
     * 4: references are gone from disk: now the decrements may follow. A
     * freed cluster is reused only after this function's final flush, so
     * a dirty image needs no barrier here either.
     */
    if (s->pending_frees->len) {
        if ((!relaxed && s->unsynced && !qcow2_file_flush(s, errp)) ||
            !qcow2_apply_pending_frees(s, errp) ||
            !qcow2_cache_write(s, &s->refblock_cache, errp)) {
            return false;
        }
    }
    if (s->unsynced) {
        return qcow2_file_flush(s, errp);
    }
    return true;
}

bool qcow2_grow_l1(Qcow2State *s, uint64_t min_size, bool exact, GError **errp)
{
    uint64_t new_size, bytes, new_off, old_off = s->l1_table_offset;
    uint64_t old_bytes = (uint64_t)s->l1_size * 8;
    g_autofree uint8_t *buf = NULL;
    uint8_t header[12];

    if (min_size <= s->l1_size) {
        return true;
    }
    if (min_size > qcow2_max_l1_entries()) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "L1 table of '%s' would exceed %u MiB (offset beyond what the "
                    "image can map)",
                    s->bs->filename, QCOW2_MAX_L1_BYTES >> 20);
        return false;
    }
    new_size = min_size;
    if (!exact) {
        new_size = MAX(min_size, (uint64_t)s->l1_size + s->l1_size / 2);
        new_size = MIN(new_size, qcow2_max_l1_entries());
    }
    bytes = new_size * 8;

    /* Everything the copied table points at must be durable first. */
    if (!qcow2_flush_metadata(s, errp) ||
        !qcow2_alloc_clusters(s, bytes, &new_off, errp) ||
        !qcow2_cache_write(s, &s->refblock_cache, errp)) {
        return false;
    }
    buf = g_malloc0(qcow2_size_to_clusters(s, bytes) << s->cluster_bits);
    for (uint32_t i = 0; i < s->l1_size; i++) {
        put_be64(buf + i * 8, s->l1_table[i]);
    }
    if (!bdrv_pwrite(s->file, new_off, buf,
                     qcow2_size_to_clusters(s, bytes) << s->cluster_bits, errp)) {
        goto fail;
    }
    s->unsynced = true;
    if (!qcow2_file_flush(s, errp)) {
        goto fail;
    }
    put_be32(header, new_size);
    put_be64(header + 4, new_off);
    if (!qcow2_write_header_field(s, QCOW2_OFF_L1_SIZE, header, 12, errp)) {
        goto fail;
    }
    s->l1_table = g_renew(uint64_t, s->l1_table, new_size);
    memset(s->l1_table + s->l1_size, 0, (new_size - s->l1_size) * 8);
    s->l1_size = new_size;
    s->l1_table_offset = new_off;
    trace_event("qcow2_grow_l1",
                "size=%" G_GUINT64_FORMAT " offset=0x%" G_GINT64_MODIFIER "x", new_size,
                new_off);
    /* The old table is unreferenced now that the header switch is durable. */
    return qcow2_update_refcount(s, old_off, old_bytes, -1, errp);

fail:
    qcow2_free_later(s, new_off, bytes);
    return false;
}

bool qcow2_check_overlap(Qcow2State *s, uint64_t offset, uint64_t bytes, unsigned ignore,
                         GError **errp)
{
    uint64_t end = offset + bytes, cs = s->cluster_size;
    const char *what = NULL;

#define OVERLAPS(o, n) ((n) > 0 && (o) < end && offset < (o) + (n))
    if (OVERLAPS(0, cs)) {
        what = "qcow2_header";
    } else if (OVERLAPS(s->l1_table_offset, (uint64_t)s->l1_size * 8)) {
        what = "active L1 table";
    } else if (OVERLAPS(s->refcount_table_offset,
                        (uint64_t)s->refcount_table_clusters << s->cluster_bits)) {
        what = "refcount table";
    } else if (s->nb_snapshots && OVERLAPS(s->snapshots_offset, s->snapshots_size)) {
        what = "snapshot table";
    } else if (s->has_crypto_ext &&
               OVERLAPS(s->crypto_header_offset, s->crypto_header_length)) {
        what = "encryption header";
    }
    for (uint64_t i = 0; !what && !(ignore & QCOW2_OL_REFBLOCK) &&
                         i <= s->max_refcount_table_index && i < s->refcount_table_size;
         i++) {
        uint64_t o = s->refcount_table[i] & REFT_OFFSET_MASK;
        if (o && OVERLAPS(o, cs)) {
            what = "refcount block";
        }
    }
    for (uint32_t i = 0; !what && !(ignore & QCOW2_OL_L2) && i < s->l1_size; i++) {
        uint64_t o = s->l1_table[i] & L1E_OFFSET_MASK;
        if (o && OVERLAPS(o, cs)) {
            what = "active L2 table";
        }
    }
    for (uint32_t i = 0; !what && i < s->nb_snapshots; i++) {
        if (OVERLAPS(s->snapshots[i].l1_table_offset,
                     (uint64_t)s->snapshots[i].l1_size * 8)) {
            what = "inactive L1 table";
        }
    }
#undef OVERLAPS
    if (what) {
        qcow2_signal_corruption(
            s, errp, "Preventing invalid write on metadata (overlaps with %s)", what);
        return false;
    }
    return true;
}

static void qcow2_free_state(Qcow2State *s)
{
    qcow2_crypto_close(s);
    qcow2_cache_destroy(&s->l2_cache);
    qcow2_cache_destroy(&s->refblock_cache);
    qcow2_refcount_close(s);
    qcow2_free_snapshots(s);
    g_free(s->l1_table);
    s->l1_table = NULL;
    g_clear_pointer(&s->goto_undo_l1, g_free);
    g_free(s->cluster_data);
    s->cluster_data = NULL;
    g_aligned_free(s->bounce);
    s->bounce = NULL;
    s->bounce_size = 0;
    g_free(s->backing_format);
    s->backing_format = NULL;
    if (s->unknown_exts) {
        g_ptr_array_unref(s->unknown_exts);
        s->unknown_exts = NULL;
    }
    if (s->feature_names) {
        g_ptr_array_unref(s->feature_names);
        s->feature_names = NULL;
    }
}

static void qcow2_init_caches(Qcow2State *s, int64_t file_len)
{
    uint64_t l2_want = qcow2_size_to_l1(s, s->size) + 4;
    uint64_t l2_max = MAX(16, (32u << 20) >> s->cluster_bits);
    uint64_t rb_want = (((uint64_t)file_len >> s->cluster_bits) >> s->refblock_bits) +
                       ((s->size >> s->cluster_bits) >> s->refblock_bits) + 4;
    uint64_t rb_max = MAX(16, (8u << 20) >> s->cluster_bits);

    qcow2_cache_init(&s->l2_cache, CLAMP(l2_want, 16, l2_max), true);
    qcow2_cache_init(&s->refblock_cache, CLAMP(rb_want, 16, rb_max), false);
}

static bool qcow2_open(BlockDriverState *bs, KeyVal *opts, int flags, GError **errp)
{
    Qcow2State *s = bs->opaque;
    g_autoptr(KeyVal) encrypt = keyval_extract_prefix(opts, "encrypt.");
    bool rw = flags & BDRV_O_RDWR;

    s->bs = bs;
    s->file = bs->file;
    s->read_only = true; /* nothing is written until the open succeeded */
    s->cluster_cache_offset = UINT64_MAX;
    if (!qcow2_read_header(s, flags, errp) || !qcow2_load_l1(s, errp) ||
        !qcow2_refcount_init(s, errp) || !qcow2_read_snapshots(s, errp)) {
        goto fail;
    }
    qcow2_init_caches(s, bdrv_getlength(s->file));
    if (!qcow2_crypto_open(s, encrypt, flags, errp) ||
        !keyval_check_unused(encrypt, "encrypt", errp)) {
        goto fail;
    }
    if (!rw) {
        return true;
    }
    /* Writing through a refcount block that is not in the file would hand
     * out clusters that are in use: refuse, check -r all can rebuild it. */
    if (!(flags & BDRV_O_CHECK)) {
        int64_t file_len = bdrv_getlength(s->file);
        for (uint64_t i = 0;
             i <= s->max_refcount_table_index && i < s->refcount_table_size; i++) {
            uint64_t off = s->refcount_table[i] & REFT_OFFSET_MASK;
            if (off && (qcow2_offset_into_cluster(s, off) || off >= (uint64_t)file_len)) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                            "Image is corrupt: refcount block %" G_GUINT64_FORMAT
                            " is outside the image or unaligned; repair it with "
                            "'tpmvm-img check -r all'",
                            i);
                goto fail;
            }
        }
    }

    /* From here on the image may be written. */
    s->read_only = false;
    if (s->autoclear) {
        /* Autoclear bits we do not maintain (bitmaps...) must go before a write. */
        uint8_t zero[8] = {0};
        if (!qcow2_write_header_field(s, QCOW2_OFF_AUTOCLEAR, zero, 8, errp)) {
            goto fail;
        }
        s->autoclear = 0;
    }
    if ((s->incompatible & QCOW2_INCOMPAT_DIRTY) && !(flags & BDRV_O_CHECK)) {
        GError *err = NULL;
        if (!qcow2_repair(s, &err)) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "Could not repair dirty image: %s", err->message);
            g_error_free(err);
            goto fail;
        }
    }
    return true;

fail:
    s->read_only = true;
    qcow2_free_state(s);
    return false;
}

static void qcow2_close(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;
    GError *err = NULL;

    if (s->goto_undo_l1 && !qcow2_snapshot_goto_commit(bs, &err)) {
        warn_report("Could not release the tree a snapshot revert replaced in '%s' (the "
                    "image leaks clusters; qemu-img check -r leaks reclaims them): %s",
                    bs->filename, err->message);
        g_clear_error(&err);
    }
    if (!s->read_only && !qcow2_flush_metadata(s, &err)) {
        warn_report("Could not write metadata of '%s' at close: %s", bs->filename,
                    err->message);
        g_error_free(err);
    }
    qcow2_free_state(s);
}

static bool qcow2_check_writable(Qcow2State *s, GError **errp)
{
    if (s->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "Image '%s' is read-only%s", s->bs->filename,
                    (s->incompatible & QCOW2_INCOMPAT_CORRUPT) ? " (marked corrupt)"
                                                               : "");
        return false;
    }
    return true;
}

static bool qcow2_drv_pread(BlockDriverState *bs, uint64_t offset, void *buf,
                            uint64_t bytes, GError **errp)
{
    return qcow2_read_guest(bs->opaque, offset, buf, bytes, errp);
}

static bool qcow2_drv_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf,
                             uint64_t bytes, GError **errp)
{
    Qcow2State *s = bs->opaque;

    return qcow2_check_writable(s, errp) &&
           qcow2_write_guest(s, offset, buf, bytes, errp);
}

static bool qcow2_flush(BlockDriverState *bs, GError **errp)
{
    Qcow2State *s = bs->opaque;

    return qcow2_flush_metadata(s, errp);
}

static int64_t qcow2_getlength(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;

    return s->size;
}

static uint64_t qcow2_get_cluster_size(BlockDriverState *bs)
{
    Qcow2State *s = bs->opaque;

    return s->cluster_size;
}

static int64_t qcow2_get_allocated_size(BlockDriverState *bs)
{
    return bdrv_get_allocated_size(bs->file);
}

static int qcow2_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                              uint64_t *pnum, GError **errp)
{
    return qcow2_guest_block_status(bs->opaque, offset, bytes, pnum, errp);
}

static bool qcow2_write_compressed(BlockDriverState *bs, uint64_t offset, const void *buf,
                                   uint64_t bytes, GError **errp)
{
    Qcow2State *s = bs->opaque;

    return qcow2_check_writable(s, errp) &&
           qcow2_write_compressed_cluster(s, offset, buf, bytes, errp);
}

static bool qcow2_truncate(BlockDriverState *bs, uint64_t size, GError **errp)
{
    Qcow2State *s = bs->opaque;
    uint64_t old = s->size, old_aligned, new_aligned;
    uint8_t be[8];

    if (!qcow2_check_writable(s, errp)) {
        return false;
    }
    if (size % QCOW2_SECTOR) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "The new size must be a multiple of %u", QCOW2_SECTOR);
        return false;
    }
    if (size < old) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Shrinking qcow2 images is not supported; only growing");
        return false;
    }
    if (size == old) {
        return true;
    }
    if (qcow2_size_to_l1(s, size) > qcow2_max_l1_entries() || size > INT64_MAX) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Image size %" G_GUINT64_FORMAT
                    " is too big for cluster size %" G_GUINT64_FORMAT,
                    size, s->cluster_size);
        return false;
    }
    /* The old vmstate area may become disk space: it must read as zeros. */
    old_aligned = (old + s->cluster_size - 1) & ~(s->cluster_size - 1);
    new_aligned = (size + s->cluster_size - 1) & ~(s->cluster_size - 1);
    if (!qcow2_discard_guest(s, old_aligned, new_aligned - old_aligned, errp) ||
        !qcow2_grow_l1(s, qcow2_size_to_l1(s, size), true, errp) ||
        !qcow2_flush_metadata(s, errp)) {
        return false;
    }
    put_be64(be, size);
    if (!qcow2_write_header_field(s, QCOW2_OFF_SIZE, be, 8, errp)) {
        return false;
    }
    s->size = size;
    return true;
}

bool qcow2_vmstate_range_ok(Qcow2State *s, uint64_t pos, uint64_t size, GError **errp)
{
    uint64_t base = qcow2_vm_state_offset(s);
    uint64_t limit = qcow2_max_l1_entries() << (s->cluster_bits + s->l2_bits);

    if (pos + size < pos || base + pos + size < base || base + pos + size > limit) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "vmstate range (%" G_GUINT64_FORMAT " bytes at %" G_GUINT64_FORMAT
                    ") does not fit into '%s'",
                    size, pos, s->bs->filename);
        return false;
    }
    return true;
}

static bool qcow2_save_vmstate(BlockDriverState *bs, const void *buf, uint64_t pos,
                               uint64_t size, GError **errp)
{
    Qcow2State *s = bs->opaque;

    return qcow2_check_writable(s, errp) && qcow2_vmstate_range_ok(s, pos, size, errp) &&
           qcow2_write_guest(s, qcow2_vm_state_offset(s) + pos, buf, size, errp);
}

static bool qcow2_load_vmstate(BlockDriverState *bs, void *buf, uint64_t pos,
                               uint64_t size, GError **errp)
{
    Qcow2State *s = bs->opaque;

    return qcow2_vmstate_range_ok(s, pos, size, errp) &&
           qcow2_read_guest(s, qcow2_vm_state_offset(s) + pos, buf, size, errp);
}

static bool qcow2_get_info(BlockDriverState *bs, BlockDriverInfo *bdi, GError **errp)
{
    Qcow2State *s = bs->opaque;

    bdi->cluster_size = s->cluster_size;
    bdi->encrypted = qcow2_is_encrypted_state(s);
    bdi->dirty = s->incompatible & QCOW2_INCOMPAT_DIRTY;
    bdi->is_qcow2 = true;
    bdi->qcow2_version = s->version;
    bdi->refcount_bits = s->refcount_bits;
    bdi->lazy_refcounts = s->compatible & QCOW2_COMPAT_LAZY_REFCOUNTS;
    bdi->corrupt = s->incompatible & QCOW2_INCOMPAT_CORRUPT;
    bdi->extended_l2 = false;
    bdi->compression_type = "zlib";
    if (s->crypt_method == QCOW2_CRYPT_AES) {
        bdi->encrypt_format = "aes";
    } else if (s->crypt_method == QCOW2_CRYPT_LUKS) {
        LuksIO io = qcow2_luks_io(s);
        bdi->encrypt_format = "luks";
        if (!luks_get_info(s->luks, &io, &bdi->luks, errp)) {
            return false;
        }
        bdi->has_luks_info = true;
    }
    return true;
}

const BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .instance_size = sizeof(Qcow2State),
    .probe = qcow2_probe,
    .create = qcow2_create,
    .open = qcow2_open,
    .close = qcow2_close,
    .pread = qcow2_drv_pread,
    .pwrite = qcow2_drv_pwrite,
    .flush = qcow2_flush,
    .getlength = qcow2_getlength,
    .truncate = qcow2_truncate,
    .get_allocated_size = qcow2_get_allocated_size,
    .block_status = qcow2_block_status,
    .write_compressed = qcow2_write_compressed,
    .cluster_size = qcow2_get_cluster_size,
    .is_encrypted = qcow2_is_encrypted,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_goto_prepare = qcow2_snapshot_goto_prepare,
    .snapshot_goto_commit = qcow2_snapshot_goto_commit,
    .snapshot_goto_abort = qcow2_snapshot_goto_abort,
    .snapshot_load_vmstate = qcow2_snapshot_load_vmstate,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_list = qcow2_snapshot_list,
    .save_vmstate = qcow2_save_vmstate,
    .load_vmstate = qcow2_load_vmstate,
    .check = qcow2_check,
    .amend = qcow2_amend,
    .get_info = qcow2_get_info,
};
