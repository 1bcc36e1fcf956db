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

static inline uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t be64_at(const uint8_t *p)
{
    return (uint64_t)be32_at(p) << 32 | be32_at(p + 4);
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, v >> 32);
    put_be32(p + 4, v);
}

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

bool qcow2_set_incompat_bits(Qcow2State *s, uint64_t set, uint64_t clear, GError **errp)
{
    uint64_t v = (s->incompatible | set) & ~clear;
    uint8_t be[8];

    if (s->version < 3 || v == s->incompatible) {
        return true;
    }
    put_be64(be, v);
    /* Setting: before what follows; clearing: after what came before. */
    if (s->unsynced && !qcow2_file_flush(s, errp)) {
        return false;
    }
    if (!qcow2_write_header_field(s, QCOW2_OFF_INCOMPAT, be, 8, errp)) {
        return false;
    }
    s->incompatible = v;
    return true;
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
    return true;
}

bool qcow2_flush_metadata(Qcow2State *s, GError **errp)
{
    if (s->read_only) {
        return true;
    }
    /* 1: new refcounts; 2: L2 tables (after a barrier); 3: the L1 table. */
    if (!qcow2_cache_write(s, &s->refblock_cache, errp) ||
        !qcow2_cache_write(s, &s->l2_cache, errp)) {
        return false;
    }
    if (s->l1_dirty) {
        if ((s->unsynced && !qcow2_file_flush(s, errp)) || !qcow2_write_l1(s, errp)) {
            return false;
        }
    }
    /* 4: references are gone from disk: now the decrements may follow. */
    if (s->pending_frees->len) {
        if ((s->unsynced && !qcow2_file_flush(s, errp)) ||
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

bool qcow2_check_data_overlap(Qcow2State *s, uint64_t offset, uint64_t bytes,
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
    for (uint64_t i = 0;
         !what && i <= s->max_refcount_table_index && i < s->refcount_table_size; i++) {
        uint64_t o = s->refcount_table[i] & REFT_OFFSET_MASK;
        if (o && OVERLAPS(o, cs)) {
            what = "refcount block";
        }
    }
    for (uint32_t i = 0; !what && i < s->l1_size; i++) {
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

/* ---- header ---------------------------------------------------------------- */

static const char *const incompat_names[] = {
    "dirty bit",        "corrupt bit",         "external data file",
    "compression type", "extended L2 entries",
};

static char *feature_name(Qcow2State *s, int type, int bit)
{
    if (s->feature_names) {
        for (guint i = 0; i < s->feature_names->len; i++) {
            const uint8_t *e = g_ptr_array_index(s->feature_names, i);
            if (e[0] == type && e[1] == bit) {
                /*
                 * The name comes from the image: bytes other than printable
                 * ASCII are shown as \xHH, never as they are.
                 */
                GString *name = g_string_new(NULL);

                for (int c = 2; c < 48 && e[c]; c++) {
                    if (e[c] >= 0x20 && e[c] < 0x7f && e[c] != '\\') {
                        g_string_append_c(name, (char)e[c]);
                    } else {
                        g_string_append_printf(name, "\\x%02x", e[c]);
                    }
                }
                return g_string_free(name, FALSE);
            }
        }
    }
    if (type == 0 && bit < (int)G_N_ELEMENTS(incompat_names)) {
        return g_strdup(incompat_names[bit]);
    }
    return g_strdup_printf("Unknown incompatible feature: %llx", 1ull << bit);
}

static bool parse_extensions(Qcow2State *s, const uint8_t *hdr, uint64_t start,
                             uint64_t end, GError **errp)
{
    uint64_t off = start;

    while (off + 8 <= end) {
        uint32_t type = be32_at(hdr + off), len = be32_at(hdr + off + 4);
        const uint8_t *data = hdr + off + 8;

        if (type == QCOW2_EXT_END) {
            return true;
        }
        if (len > end - off - 8) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "Header extension 0x%08x is too large (%u bytes)", type, len);
            return false;
        }
        switch (type) {
        case QCOW2_EXT_CRYPTO:
            if (len != 16) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                            "Crypto header extension size %u, but expected size 16", len);
                return false;
            }
            s->crypto_header_offset = be64_at(data);
            s->crypto_header_length = be64_at(data + 8);
            s->has_crypto_ext = true;
            break;
        case QCOW2_EXT_BACKING_FORMAT:
            g_free(s->backing_format);
            s->backing_format = g_strndup((const char *)data, len);
            break;
        case QCOW2_EXT_FEATURE_TABLE:
            if (!s->feature_names) {
                s->feature_names = g_ptr_array_new_with_free_func(g_free);
            }
            for (uint32_t i = 0; i + 48 <= len; i += 48) {
                g_ptr_array_add(s->feature_names, g_memdup2(data + i, 48));
            }
            break;
        default: {
            /* Unknown (or unsupported, e.g. bitmaps): kept as it is. */
            Qcow2UnknownExt *u = g_new0(Qcow2UnknownExt, 1);
            u->type = type;
            u->len = len;
            u->data = g_memdup2(data, len);
            g_ptr_array_add(s->unknown_exts, u);
            break;
        }
        }
        off += 8 + (((uint64_t)len + 7) & ~7ull);
    }
    return true;
}

static void unknown_ext_free(gpointer p)
{
    Qcow2UnknownExt *u = p;

    g_free(u->data);
    g_free(u);
}

/* Validate an (offset, entries) table against the file and a size limit. */
static bool validate_table(Qcow2State *s, uint64_t offset, uint64_t entries,
                           uint64_t entry_len, uint64_t max_bytes, uint64_t file_len,
                           const char *name, GError **errp)
{
    if (entries > max_bytes / entry_len) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT, "%s too large", name);
        return false;
    }
    if (qcow2_offset_into_cluster(s, offset)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT, "Invalid %s offset", name);
        return false;
    }
    if (entries &&
        (offset == 0 || offset >= file_len || offset > INT64_MAX - entries * entry_len)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s offset %#" G_GINT64_MODIFIER "x is outside the image", name,
                    offset);
        return false;
    }
    return true;
}

static bool qcow2_read_header(Qcow2State *s, int flags, GError **errp)
{
    uint8_t h[QCOW2_V3_HEADER_LENGTH + 8];
    g_autofree uint8_t *cluster0 = NULL;
    int64_t file_len = bdrv_getlength(s->file);
    uint64_t backing_off, ext_end, need_l1;
    uint32_t backing_size;

    if (file_len < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "Could not get the file size");
        return false;
    }
    if (!bdrv_pread(s->file, 0, h, sizeof(h), errp)) {
        return false;
    }
    if (be32_at(h) != QCOW2_MAGIC) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Image is not in qcow2 format");
        return false;
    }
    s->version = be32_at(h + 4);
    if (s->version < 2 || s->version > 3) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Unsupported qcow2 version %u", s->version);
        return false;
    }
    s->cluster_bits = be32_at(h + 20);
    if (s->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
        s->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Unsupported cluster size: 2^%u", s->cluster_bits);
        return false;
    }
    s->cluster_size = 1ull << s->cluster_bits;
    backing_off = be64_at(h + 8);
    backing_size = be32_at(h + 16);
    s->size = be64_at(h + 24);
    s->crypt_method = be32_at(h + 32);
    s->l1_size = be32_at(h + 36);
    s->l1_table_offset = be64_at(h + 40);
    s->refcount_table_offset = be64_at(h + 48);
    s->refcount_table_clusters = be32_at(h + 56);
    s->nb_snapshots = be32_at(h + 60);
    s->snapshots_offset = be64_at(h + 64);
    if (s->version == 2) {
        s->incompatible = s->compatible = s->autoclear = 0;
        s->refcount_order = 4;
        s->header_length = QCOW2_V2_HEADER_LENGTH;
    } else {
        s->incompatible = be64_at(h + 72);
        s->compatible = be64_at(h + 80);
        s->autoclear = be64_at(h + 88);
        s->refcount_order = be32_at(h + 96);
        s->header_length = be32_at(h + 100);
        if (s->header_length < QCOW2_V3_HEADER_LENGTH) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT, "qcow2 header too short");
            return false;
        }
        if (s->header_length > s->cluster_size) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "qcow2 header exceeds cluster size");
            return false;
        }
    }

    /* Cluster 0 holds the header, the extensions and the backing file name. */
    cluster0 = g_malloc(s->cluster_size);
    if (!bdrv_pread(s->file, 0, cluster0, s->cluster_size, errp)) {
        return false;
    }
    if (backing_off > s->cluster_size || backing_size > QCOW2_MAX_BACKING_NAME ||
        (backing_off && backing_size > s->cluster_size - backing_off)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    backing_size > QCOW2_MAX_BACKING_NAME
                        ? "Backing file name too long"
                        : "Invalid backing file offset");
        return false;
    }
    s->unknown_exts = g_ptr_array_new_with_free_func(unknown_ext_free);
    ext_end = backing_off > s->header_length ? backing_off : s->cluster_size;
    if (s->header_length > QCOW2_V3_HEADER_LENGTH) {
        s->compression_type = cluster0[104];
    }
    if (!parse_extensions(s, cluster0, s->header_length, ext_end, errp)) {
        return false;
    }

    if (s->incompatible & ~QCOW2_INCOMPAT_SUPPORTED) {
        GString *names = g_string_new(NULL);
        uint64_t bits = s->incompatible & ~QCOW2_INCOMPAT_SUPPORTED;
        for (int b = 0; b < 64; b++) {
            if (bits & (1ull << b)) {
                g_autofree char *n = feature_name(s, 0, b);
                g_string_append_printf(names, "%s%s", names->len ? ", " : "", n);
            }
        }
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Unsupported qcow2 feature(s): %s", names->str);
        g_string_free(names, TRUE);
        return false;
    }
    if (s->compression_type != 0) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
            "Invalid compression type %u without the compression type feature bit",
            s->compression_type);
        return false;
    }
    if (s->refcount_order > QCOW2_MAX_REFCOUNT_ORDER) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Reference count entry width too large; may not exceed 64 bits");
        return false;
    }
    s->refcount_bits = 1u << s->refcount_order;
    s->refcount_max =
        s->refcount_bits == 64 ? UINT64_MAX : (1ull << s->refcount_bits) - 1;
    s->refblock_bits = s->cluster_bits + 3 - s->refcount_order;
    s->l2_bits = s->cluster_bits - 3;
    s->l2_size = 1ull << s->l2_bits;
    s->csize_shift = 62 - (s->cluster_bits - 8);
    s->csize_mask = (1ull << (s->cluster_bits - 8)) - 1;
    s->cluster_offset_mask = (1ull << s->csize_shift) - 1;

    if ((s->incompatible & QCOW2_INCOMPAT_CORRUPT) && (flags & BDRV_O_RDWR) &&
        !(flags & BDRV_O_CHECK)) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
            "qcow2: Image is corrupt; cannot be opened read/write (repair it with "
            "'tpmvm-img check -r all' or open it read-only)");
        return false;
    }
    if (backing_off && backing_size) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Images with a backing file are not supported; flatten it first "
                    "(qemu-img convert -O qcow2)");
        return false;
    }
    if (s->crypt_method > QCOW2_CRYPT_LUKS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Unsupported encryption method: %u", s->crypt_method);
        return false;
    }
    if (s->crypt_method == QCOW2_CRYPT_LUKS) {
        if (!s->has_crypto_ext) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "Missing crypto header for crypt method 2");
            return false;
        }
        if (qcow2_offset_into_cluster(s, s->crypto_header_offset) ||
            s->crypto_header_offset == 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "Encryption header offset '%" G_GUINT64_FORMAT
                        "' is not a multiple of cluster size '%" G_GUINT64_FORMAT "'",
                        s->crypto_header_offset, s->cluster_size);
            return false;
        }
        if (s->crypto_header_length == 0 || s->crypto_header_length > (64u << 20) ||
            s->crypto_header_offset > (uint64_t)file_len) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "Invalid encryption header length %" G_GUINT64_FORMAT
                        " at offset %#" G_GINT64_MODIFIER "x",
                        s->crypto_header_length, s->crypto_header_offset);
            return false;
        }
    } else if (s->has_crypto_ext) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Encryption header extension is only allowed with crypt method 2 "
                    "(LUKS), but the image has crypt method %u",
                    s->crypt_method);
        return false;
    }

    if (s->refcount_table_clusters == 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Image does not contain a reference count table");
        return false;
    }
    if (!validate_table(s, s->refcount_table_offset, s->refcount_table_clusters,
                        s->cluster_size, QCOW2_MAX_REFTABLE_BYTES, file_len,
                        "Reference count table", errp)) {
        return false;
    }
    if (!validate_table(s, s->l1_table_offset, s->l1_size, 8, QCOW2_MAX_L1_BYTES,
                        file_len, "Active L1 table", errp)) {
        return false;
    }
    need_l1 = qcow2_size_to_l1(s, s->size);
    if (need_l1 > qcow2_max_l1_entries() || s->size > INT64_MAX) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT, "Image is too big");
        return false;
    }
    if (s->l1_size < need_l1) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT, "L1 table is too small");
        return false;
    }
    if (s->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Too many snapshots (%u, at most %u)", s->nb_snapshots,
                    QCOW2_MAX_SNAPSHOTS);
        return false;
    }
    if (s->nb_snapshots &&
        (qcow2_offset_into_cluster(s, s->snapshots_offset) || s->snapshots_offset == 0 ||
         s->snapshots_offset >= (uint64_t)file_len)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Invalid snapshot table offset");
        return false;
    }
    return true;
}

static bool qcow2_load_l1(Qcow2State *s, GError **errp)
{
    uint64_t bytes = (uint64_t)s->l1_size * 8;
    g_autofree uint8_t *buf = g_malloc(bytes + 1);

    s->l1_table = g_new0(uint64_t, s->l1_size + 1);
    if (bytes && !bdrv_pread(s->file, s->l1_table_offset, buf, bytes, errp)) {
        return false;
    }
    for (uint32_t i = 0; i < s->l1_size; i++) {
        s->l1_table[i] = be64_at(buf + i * 8);
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
    g_free(s->cluster_data);
    s->cluster_data = NULL;
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

static bool qcow2_co_pread(BlockDriverState *bs, uint64_t offset, void *buf,
                           uint64_t bytes, GError **errp)
{
    return qcow2_read_guest(bs->opaque, offset, buf, bytes, errp);
}

static bool qcow2_co_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf,
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

static bool vmstate_range_ok(Qcow2State *s, uint64_t pos, uint64_t size, GError **errp)
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

    return qcow2_check_writable(s, errp) && vmstate_range_ok(s, pos, size, errp) &&
           qcow2_write_guest(s, qcow2_vm_state_offset(s) + pos, buf, size, errp);
}

static bool qcow2_load_vmstate(BlockDriverState *bs, void *buf, uint64_t pos,
                               uint64_t size, GError **errp)
{
    Qcow2State *s = bs->opaque;

    return vmstate_range_ok(s, pos, size, errp) &&
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

bool qcow2_amend(BlockDriverState *bs, KeyVal *opts, GError **errp);
bool qcow2_co_create(const char *filename, uint64_t size, KeyVal *opts, GError **errp);

const BlockDriver bdrv_qcow2 = {
    .format_name = "qcow2",
    .instance_size = sizeof(Qcow2State),
    .probe = qcow2_probe,
    .create = qcow2_co_create,
    .open = qcow2_open,
    .close = qcow2_close,
    .pread = qcow2_co_pread,
    .pwrite = qcow2_co_pwrite,
    .flush = qcow2_flush,
    .getlength = qcow2_getlength,
    .truncate = qcow2_truncate,
    .get_allocated_size = qcow2_get_allocated_size,
    .block_status = qcow2_block_status,
    .write_compressed = qcow2_write_compressed,
    .cluster_size = qcow2_get_cluster_size,
    .is_encrypted = qcow2_is_encrypted,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_goto = qcow2_snapshot_goto,
    .snapshot_delete = qcow2_snapshot_delete,
    .snapshot_list = qcow2_snapshot_list,
    .save_vmstate = qcow2_save_vmstate,
    .load_vmstate = qcow2_load_vmstate,
    .check = qcow2_check,
    .amend = qcow2_amend,
    .get_info = qcow2_get_info,
};
