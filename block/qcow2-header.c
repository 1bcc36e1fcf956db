/*
 * qcow2 header: reading and validating the header fields, the feature bits
 * and the header extensions (qcow2 spec "Header", "Header extensions"), and
 * loading the active L1 table. Every field is checked against QEMU 7.2's
 * limits before it sizes a buffer, an offset or a loop.
 */
#include <string.h>

#include "qcow2.h"
#include "util/error.h"

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

bool qcow2_read_header(Qcow2State *s, int flags, GError **errp)
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

bool qcow2_load_l1(Qcow2State *s, GError **errp)
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
