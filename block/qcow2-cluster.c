/*
 * qcow2 guest I/O: mapping guest offsets through L1/L2, reading normal, zero
 * and compressed clusters, allocating on write with copy-on-write of shared
 * clusters (decrypting and re-encrypting for LUKS, since the IV is the host
 * offset), discards and compressed writes.
 */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "qcow2.h"
#include "util/error.h"
#include "util/trace.h"

Qcow2ClusterType qcow2_l2_entry_type(const Qcow2State *s, uint64_t e)
{
    if (e & QCOW_OFLAG_COMPRESSED) {
        return QCOW2_CLUSTER_COMPRESSED;
    }
    if (e & QCOW_OFLAG_ZERO) {
        return (e & L2E_OFFSET_MASK) ? QCOW2_CLUSTER_ZERO_ALLOC
                                     : QCOW2_CLUSTER_ZERO_PLAIN;
    }
    if (!(e & L2E_OFFSET_MASK)) {
        return QCOW2_CLUSTER_UNALLOCATED;
    }
    return QCOW2_CLUSTER_NORMAL;
}

static inline uint64_t l2_get(const uint8_t *l2, uint64_t i)
{
    uint64_t v;
    memcpy(&v, l2 + i * 8, 8);
    return GUINT64_FROM_BE(v);
}

static inline void l2_set(uint8_t *l2, uint64_t i, uint64_t e)
{
    uint64_t v = GUINT64_TO_BE(e);
    memcpy(l2 + i * 8, &v, 8);
}

/* L2 table for an L1 index, or *l2 = NULL when none is allocated. */
bool qcow2_load_l2(Qcow2State *s, uint64_t l1_index, uint8_t **l2, GError **errp)
{
    uint64_t off;

    *l2 = NULL;
    if (l1_index >= s->l1_size) {
        return true;
    }
    off = s->l1_table[l1_index] & L1E_OFFSET_MASK;
    if (!off) {
        return true;
    }
    if (qcow2_offset_into_cluster(s, off)) {
        qcow2_signal_corruption(s, errp,
                                "L2 table offset %#" G_GINT64_MODIFIER
                                "x unaligned (L1 index: %#" G_GINT64_MODIFIER "x)",
                                off, l1_index);
        return false;
    }
    return qcow2_cache_get(s, &s->l2_cache, off, l2, errp);
}

static bool check_data_offset(Qcow2State *s, uint64_t e, uint64_t l1i, uint64_t l2i,
                              GError **errp)
{
    uint64_t off = e & L2E_OFFSET_MASK;

    if (qcow2_offset_into_cluster(s, off)) {
        qcow2_signal_corruption(s, errp,
                                "Cluster allocation offset %#" G_GINT64_MODIFIER
                                "x unaligned (L2 offset: %#" G_GINT64_MODIFIER
                                "x, L2 index: %#" G_GINT64_MODIFIER "x)",
                                off, s->l1_table[l1i] & L1E_OFFSET_MASK, l2i);
        return false;
    }
    return true;
}

/* Decompress the cluster an L2 entry describes into s->cluster_data. */
static bool decompress_cluster(Qcow2State *s, uint64_t e, GError **errp)
{
    uint64_t coffset, csize;
    g_autofree uint8_t *in = NULL;
    z_stream strm = {0};
    int ret;

    /* UINT64_MAX marks the cache empty; an L2 entry of all ones is valid input. */
    if (s->cluster_data && e != UINT64_MAX && s->cluster_cache_offset == e) {
        return true;
    }
    qcow2_compressed_range(s, e, &coffset, &csize);
    in = g_malloc(csize);
    /* The range may run past the end of the file: the file reads zeros there. */
    if (!bdrv_pread(s->file, coffset, in, csize, errp)) {
        return false;
    }
    if (!s->cluster_data) {
        s->cluster_data = g_malloc(s->cluster_size);
    }
    s->cluster_cache_offset = UINT64_MAX;
    /* Raw deflate; QEMU writes window 12, any window up to 15 is read. */
    if (inflateInit2(&strm, -15) != Z_OK) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "zlib inflateInit2 failed");
        return false;
    }
    strm.next_in = in;
    strm.avail_in = csize;
    strm.next_out = s->cluster_data;
    strm.avail_out = s->cluster_size;
    ret = inflate(&strm, Z_FINISH);
    inflateEnd(&strm);
    if (strm.avail_out != 0 ||
        (ret != Z_STREAM_END && ret != Z_BUF_ERROR && ret != Z_OK)) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_IO,
            "Could not decompress the compressed cluster at offset %#" G_GINT64_MODIFIER
            "x of '%s'",
            coffset, s->bs->filename);
        return false;
    }
    s->cluster_cache_offset = e;
    return true;
}

/*
 * One mapping run at `offset`: *type and *bytes (clamped to max_bytes) for
 * clusters of the same kind that are contiguous on the host.
 */
static bool get_mapping(Qcow2State *s, uint64_t offset, uint64_t max_bytes,
                        Qcow2ClusterType *type, uint64_t *host, uint64_t *entry,
                        uint64_t *bytes, GError **errp)
{
    uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits);
    uint64_t l2i = (offset >> s->cluster_bits) & (s->l2_size - 1);
    uint64_t in_cluster = qcow2_offset_into_cluster(s, offset);
    uint64_t avail = ((s->l2_size - l2i) << s->cluster_bits) - in_cluster;
    uint64_t n, e, i;
    uint8_t *l2;

    max_bytes = MIN(max_bytes, avail);
    if (!qcow2_load_l2(s, l1i, &l2, errp)) {
        return false;
    }
    if (!l2) {
        *type = QCOW2_CLUSTER_UNALLOCATED;
        *host = 0;
        *entry = 0;
        *bytes = max_bytes;
        return true;
    }
    e = l2_get(l2, l2i);
    *entry = e;
    *type = qcow2_l2_entry_type(s, e);
    *host = 0;
    n = s->cluster_size - in_cluster;
    if (*type == QCOW2_CLUSTER_NORMAL) {
        if (!check_data_offset(s, e, l1i, l2i, errp)) {
            qcow2_cache_put(&s->l2_cache, l2);
            return false;
        }
        *host = (e & L2E_OFFSET_MASK) + in_cluster;
        for (i = l2i + 1; n < max_bytes && i < s->l2_size; i++) {
            uint64_t e2 = l2_get(l2, i);
            if (qcow2_l2_entry_type(s, e2) != QCOW2_CLUSTER_NORMAL ||
                (e2 & L2E_OFFSET_MASK) !=
                    (e & L2E_OFFSET_MASK) + ((i - l2i) << s->cluster_bits)) {
                break;
            }
            n += s->cluster_size;
        }
    } else if (*type != QCOW2_CLUSTER_COMPRESSED) {
        for (i = l2i + 1; n < max_bytes && i < s->l2_size; i++) {
            Qcow2ClusterType t2 = qcow2_l2_entry_type(s, l2_get(l2, i));
            if (t2 == QCOW2_CLUSTER_NORMAL || t2 == QCOW2_CLUSTER_COMPRESSED) {
                break;
            }
            n += s->cluster_size;
        }
    }
    qcow2_cache_put(&s->l2_cache, l2);
    *bytes = MIN(n, max_bytes);
    return true;
}

/* Read with offset and length already 512-aligned when encrypted. */
static bool read_aligned(Qcow2State *s, uint64_t offset, uint8_t *buf, uint64_t bytes,
                         GError **errp)
{
    while (bytes > 0) {
        Qcow2ClusterType type;
        uint64_t host, entry, n;

        if (!get_mapping(s, offset, bytes, &type, &host, &entry, &n, errp)) {
            return false;
        }
        switch (type) {
        case QCOW2_CLUSTER_UNALLOCATED:
        case QCOW2_CLUSTER_ZERO_PLAIN:
        case QCOW2_CLUSTER_ZERO_ALLOC:
            memset(buf, 0, n);
            break;
        case QCOW2_CLUSTER_NORMAL:
            if (!bdrv_pread(s->file, host, buf, n, errp)) {
                return false;
            }
            if (qcow2_is_encrypted_state(s) &&
                !qcow2_decrypt(s, host, offset, buf, n, errp)) {
                return false;
            }
            break;
        case QCOW2_CLUSTER_COMPRESSED:
            if (!decompress_cluster(s, entry, errp)) {
                return false;
            }
            memcpy(buf, s->cluster_data + qcow2_offset_into_cluster(s, offset), n);
            break;
        }
        offset += n;
        buf += n;
        bytes -= n;
    }
    return true;
}

bool qcow2_read_guest(Qcow2State *s, uint64_t offset, uint8_t *buf, uint64_t bytes,
                      GError **errp)
{
    uint8_t sector[QCOW2_SECTOR];

    if (!qcow2_is_encrypted_state(s)) {
        return read_aligned(s, offset, buf, bytes, errp);
    }
    /* Encryption works on whole 512-byte sectors: partial ones go through a bounce. */
    while (bytes > 0) {
        uint64_t head = offset & (QCOW2_SECTOR - 1), n;
        if (head || bytes < QCOW2_SECTOR) {
            n = MIN(bytes, QCOW2_SECTOR - head);
            if (!read_aligned(s, offset - head, sector, QCOW2_SECTOR, errp)) {
                return false;
            }
            memcpy(buf, sector + head, n);
        } else {
            n = bytes & ~(uint64_t)(QCOW2_SECTOR - 1);
            if (!read_aligned(s, offset, buf, n, errp)) {
                return false;
            }
        }
        offset += n;
        buf += n;
        bytes -= n;
    }
    return true;
}

/*
 * The L2 table for l1i, ready to be modified: allocated if missing, copied
 * if shared with a snapshot (L1 entry without COPIED). The new L1 entry is
 * written by qcow2_flush_metadata after the table itself is durable.
 */
static bool get_l2_for_write(Qcow2State *s, uint64_t l1i, uint8_t **l2, GError **errp)
{
    uint64_t l1e, old, new;
    uint8_t *old_table;

    if (l1i >= s->l1_size && !qcow2_grow_l1(s, l1i + 1, false, errp)) {
        return false;
    }
    l1e = s->l1_table[l1i];
    old = l1e & L1E_OFFSET_MASK;
    if (old && (l1e & QCOW_OFLAG_COPIED)) {
        return qcow2_load_l2(s, l1i, l2, errp);
    }
    if (old && qcow2_offset_into_cluster(s, old)) {
        return qcow2_load_l2(s, l1i, l2, errp); /* reports the corruption */
    }
    if (!qcow2_alloc_clusters(s, s->cluster_size, &new, errp)) {
        return false;
    }
    if (!qcow2_cache_get_empty(s, &s->l2_cache, new, l2, errp)) {
        return false;
    }
    if (old) {
        if (!qcow2_cache_get(s, &s->l2_cache, old, &old_table, errp)) {
            qcow2_cache_put(&s->l2_cache, *l2);
            return false;
        }
        memcpy(*l2, old_table, s->cluster_size);
        qcow2_cache_put(&s->l2_cache, old_table);
        qcow2_free_later(s, old, s->cluster_size);
    }
    qcow2_cache_mark_dirty(&s->l2_cache, *l2);
    s->l1_table[l1i] = new | QCOW_OFLAG_COPIED;
    s->l1_dirty = true;
    if (s->l1_fresh_lo >= s->l1_fresh_hi) {
        s->l1_fresh_lo = (uint32_t)l1i;
        s->l1_fresh_hi = (uint32_t)l1i + 1;
    } else {
        s->l1_fresh_lo = MIN(s->l1_fresh_lo, (uint32_t)l1i);
        s->l1_fresh_hi = MAX(s->l1_fresh_hi, (uint32_t)l1i + 1);
    }
    trace_event("qcow2_l2_allocate",
                "l1_index=%" G_GUINT64_FORMAT " old=0x%" G_GINT64_MODIFIER
                "x new=0x%" G_GINT64_MODIFIER "x",
                l1i, old, new);
    return true;
}

/* Guest bytes [from, from + len) of the cluster an old L2 entry describes. */
static bool read_old_cluster_part(Qcow2State *s, uint64_t e, uint64_t guest_cluster,
                                  uint64_t from, uint64_t len, uint8_t *dst,
                                  GError **errp)
{
    uint64_t host;

    if (len == 0) {
        return true;
    }
    switch (qcow2_l2_entry_type(s, e)) {
    case QCOW2_CLUSTER_NORMAL:
        host = (e & L2E_OFFSET_MASK) + from;
        if (!bdrv_pread(s->file, host, dst, len, errp)) {
            return false;
        }
        return !qcow2_is_encrypted_state(s) ||
               qcow2_decrypt(s, host, guest_cluster + from, dst, len, errp);
    case QCOW2_CLUSTER_COMPRESSED:
        if (!decompress_cluster(s, e, errp)) {
            return false;
        }
        memcpy(dst, s->cluster_data + from, len);
        return true;
    default:
        memset(dst, 0, len);
        return true;
    }
}

/*
 * A 4 KiB-aligned bounce buffer (O_DIRECT needs aligned memory) for data
 * being encrypted or assembled; up to 1 MiB of it stays for the next write.
 */
static uint8_t *bounce_get(Qcow2State *s, uint64_t size)
{
    if (s->bounce_size < size) {
        g_aligned_free(s->bounce);
        s->bounce = g_aligned_alloc(size, 1, 4096);
        s->bounce_size = size;
    }
    return s->bounce;
}

static void bounce_release(Qcow2State *s)
{
    if (s->bounce_size > (1u << 20)) {
        g_aligned_free(s->bounce);
        s->bounce = NULL;
        s->bounce_size = 0;
    }
}

static bool entry_writable_in_place(const Qcow2State *s, uint64_t e)
{
    return qcow2_l2_entry_type(s, e) == QCOW2_CLUSTER_NORMAL && (e & QCOW_OFLAG_COPIED);
}

/* Write a run that needs new clusters: COW head/tail, encrypt, map. */
static bool write_allocating(Qcow2State *s, uint64_t offset, const uint8_t *buf,
                             uint64_t bytes, uint8_t *l2, uint64_t l2i,
                             uint64_t nclusters, GError **errp)
{
    uint64_t in_cluster = qcow2_offset_into_cluster(s, offset);
    uint64_t guest_cluster = qcow2_start_of_cluster(s, offset);
    uint64_t total = nclusters << s->cluster_bits, new_off;
    uint64_t tail_from = in_cluster + bytes;
    uint64_t last_cluster_start = (nclusters - 1) << s->cluster_bits;
    uint8_t *data;

    if (!qcow2_alloc_clusters(s, total, &new_off, errp)) {
        return false;
    }
    data = bounce_get(s, total);
    if (!read_old_cluster_part(s, l2_get(l2, l2i), guest_cluster, 0, in_cluster, data,
                               errp)) {
        goto fail;
    }
    if (tail_from < total &&
        !read_old_cluster_part(
            s, l2_get(l2, l2i + nclusters - 1), guest_cluster + last_cluster_start,
            tail_from - last_cluster_start, total - tail_from, data + tail_from, errp)) {
        goto fail;
    }
    memcpy(data + in_cluster, buf, bytes);
    if (qcow2_is_encrypted_state(s) &&
        !qcow2_encrypt(s, new_off, guest_cluster, data, total, errp)) {
        goto fail;
    }
    if (!qcow2_check_overlap(s, new_off, total, 0, errp) ||
        !bdrv_pwrite(s->file, new_off, data, total, errp)) {
        goto fail;
    }
    s->unsynced = true;
    for (uint64_t i = 0; i < nclusters; i++) {
        uint64_t old = l2_get(l2, l2i + i);
        l2_set(l2, l2i + i, (new_off + (i << s->cluster_bits)) | QCOW_OFLAG_COPIED);
        qcow2_free_l2_entry_later(s, old);
    }
    qcow2_cache_mark_dirty(&s->l2_cache, l2);
    trace_event("qcow2_write_alloc",
                "guest=0x%" G_GINT64_MODIFIER "x host=0x%" G_GINT64_MODIFIER
                "x clusters=%" G_GUINT64_FORMAT,
                guest_cluster, new_off, nclusters);
    return true;

fail:
    /* Unreferenced new clusters: a leak unless given back now. */
    qcow2_free_later(s, new_off, total);
    return false;
}

static bool write_aligned_runs(Qcow2State *s, uint64_t offset, const uint8_t *buf,
                               uint64_t bytes, GError **errp)
{
    while (bytes > 0) {
        uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits);
        uint64_t l2i = (offset >> s->cluster_bits) & (s->l2_size - 1);
        uint64_t in_cluster = qcow2_offset_into_cluster(s, offset);
        /* Bounded runs: bounce buffers (encryption, new clusters) stay small. */
        uint64_t max =
            MIN(MIN(bytes, ((s->l2_size - l2i) << s->cluster_bits) - in_cluster),
                MAX(QCOW2_MAX_RUN, s->cluster_size) - in_cluster);
        uint64_t e, n, k;
        uint8_t *l2;
        bool ok;

        if (!get_l2_for_write(s, l1i, &l2, errp)) {
            return false;
        }
        e = l2_get(l2, l2i);
        n = s->cluster_size - in_cluster;
        if (entry_writable_in_place(s, e)) {
            uint64_t host;
            if (!check_data_offset(s, e, l1i, l2i, errp)) {
                qcow2_cache_put(&s->l2_cache, l2);
                return false;
            }
            for (k = l2i + 1; n < max && k < s->l2_size; k++) {
                uint64_t e2 = l2_get(l2, k);
                if (!entry_writable_in_place(s, e2) ||
                    (e2 & L2E_OFFSET_MASK) !=
                        (e & L2E_OFFSET_MASK) + ((k - l2i) << s->cluster_bits)) {
                    break;
                }
                n += s->cluster_size;
            }
            qcow2_cache_put(&s->l2_cache, l2);
            n = MIN(n, max);
            host = (e & L2E_OFFSET_MASK) + in_cluster;
            if (!qcow2_check_overlap(s, host, n, 0, errp)) {
                return false;
            }
            if (qcow2_is_encrypted_state(s)) {
                uint8_t *bounce = bounce_get(s, n);
                memcpy(bounce, buf, n);
                if (!qcow2_encrypt(s, host, offset, bounce, n, errp) ||
                    !bdrv_pwrite(s->file, host, bounce, n, errp)) {
                    return false;
                }
            } else if (!bdrv_pwrite(s->file, host, buf, n, errp)) {
                return false;
            }
            s->unsynced = true;
        } else {
            uint64_t nclusters = 1;
            for (k = l2i + 1; n < max && k < s->l2_size; k++) {
                if (entry_writable_in_place(s, l2_get(l2, k))) {
                    break;
                }
                n += s->cluster_size;
                nclusters++;
            }
            n = MIN(n, max);
            ok = write_allocating(s, offset, buf, n, l2, l2i, nclusters, errp);
            qcow2_cache_put(&s->l2_cache, l2);
            if (!ok) {
                return false;
            }
        }
        offset += n;
        buf += n;
        bytes -= n;
    }
    return true;
}

static bool write_aligned(Qcow2State *s, uint64_t offset, const uint8_t *buf,
                          uint64_t bytes, GError **errp)
{
    bool ok = write_aligned_runs(s, offset, buf, bytes, errp);

    bounce_release(s);
    return ok;
}

bool qcow2_write_guest(Qcow2State *s, uint64_t offset, const uint8_t *buf, uint64_t bytes,
                       GError **errp)
{
    uint8_t sector[QCOW2_SECTOR];

    if (!qcow2_is_encrypted_state(s)) {
        return write_aligned(s, offset, buf, bytes, errp);
    }
    /* Read-modify-write of partial 512-byte sectors; whole ones go straight. */
    while (bytes > 0) {
        uint64_t head = offset & (QCOW2_SECTOR - 1), n;
        if (head || bytes < QCOW2_SECTOR) {
            n = MIN(bytes, QCOW2_SECTOR - head);
            if (!read_aligned(s, offset - head, sector, QCOW2_SECTOR, errp)) {
                return false;
            }
            memcpy(sector + head, buf, n);
            if (!write_aligned(s, offset - head, sector, QCOW2_SECTOR, errp)) {
                return false;
            }
        } else {
            n = bytes & ~(uint64_t)(QCOW2_SECTOR - 1);
            if (!write_aligned(s, offset, buf, n, errp)) {
                return false;
            }
        }
        offset += n;
        buf += n;
        bytes -= n;
    }
    return true;
}

bool qcow2_discard_guest(Qcow2State *s, uint64_t offset, uint64_t bytes, GError **errp)
{
    uint64_t end = offset + bytes;

    /* Only whole clusters can be dropped. */
    offset = (offset + s->cluster_size - 1) & ~(s->cluster_size - 1);
    end = qcow2_start_of_cluster(s, end);
    while (offset < end) {
        uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits);
        uint64_t l2i = (offset >> s->cluster_bits) & (s->l2_size - 1);
        uint64_t n = MIN(s->l2_size - l2i, (end - offset) >> s->cluster_bits);
        bool need = false;
        uint8_t *l2;

        if (!qcow2_load_l2(s, l1i, &l2, errp)) {
            return false;
        }
        if (l2) {
            for (uint64_t i = 0; i < n && !need; i++) {
                Qcow2ClusterType t = qcow2_l2_entry_type(s, l2_get(l2, l2i + i));
                need = t != QCOW2_CLUSTER_UNALLOCATED &&
                       !(t == QCOW2_CLUSTER_ZERO_PLAIN && s->version >= 3);
            }
            qcow2_cache_put(&s->l2_cache, l2);
        }
        if (need) {
            if (!get_l2_for_write(s, l1i, &l2, errp)) {
                return false;
            }
            for (uint64_t i = 0; i < n; i++) {
                uint64_t old = l2_get(l2, l2i + i);
                /* v3 marks the range as zeros like QEMU; v2 has no zero flag. */
                l2_set(l2, l2i + i, s->version >= 3 ? QCOW_OFLAG_ZERO : 0);
                qcow2_free_l2_entry_later(s, old);
            }
            qcow2_cache_mark_dirty(&s->l2_cache, l2);
            qcow2_cache_put(&s->l2_cache, l2);
        }
        offset += n << s->cluster_bits;
    }
    return true;
}

bool qcow2_write_compressed_cluster(Qcow2State *s, uint64_t offset, const uint8_t *buf,
                                    uint64_t bytes, GError **errp)
{
    uint64_t l1i = offset >> (s->cluster_bits + s->l2_bits);
    uint64_t l2i = (offset >> s->cluster_bits) & (s->l2_size - 1);
    g_autofree uint8_t *in = g_malloc0(s->cluster_size);
    g_autofree uint8_t *out = g_malloc(s->cluster_size);
    z_stream strm = {0};
    uint64_t out_len, host, nb_csectors, e;
    uint8_t *l2;
    int ret;

    if (qcow2_is_encrypted_state(s)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Compression and encryption not supported at the same time");
        return false;
    }
    if (qcow2_offset_into_cluster(s, offset) || bytes > s->cluster_size) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Compressed writes must cover one whole cluster");
        return false;
    }
    memcpy(in, buf, bytes);
    /* Raw deflate with a 4 KiB window, as QEMU writes it. */
    if (deflateInit2(&strm, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "zlib deflateInit2 failed");
        return false;
    }
    strm.next_in = in;
    strm.avail_in = s->cluster_size;
    strm.next_out = out;
    strm.avail_out = s->cluster_size;
    ret = deflate(&strm, Z_FINISH);
    out_len = s->cluster_size - strm.avail_out;
    deflateEnd(&strm);
    if (ret != Z_STREAM_END || out_len >= s->cluster_size) {
        /* Incompressible: store it as a normal cluster. */
        return qcow2_write_guest(s, offset, in, s->cluster_size, errp);
    }

    if (!get_l2_for_write(s, l1i, &l2, errp)) {
        return false;
    }
    e = l2_get(l2, l2i);
    if (qcow2_l2_entry_type(s, e) != QCOW2_CLUSTER_UNALLOCATED &&
        qcow2_l2_entry_type(s, e) != QCOW2_CLUSTER_ZERO_PLAIN) {
        qcow2_cache_put(&s->l2_cache, l2);
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Compressed writes are only possible to unallocated clusters "
                    "(guest offset %#" G_GINT64_MODIFIER "x)",
                    offset);
        return false;
    }
    if (!qcow2_alloc_bytes(s, out_len, &host, errp)) {
        qcow2_cache_put(&s->l2_cache, l2);
        return false;
    }
    if (!qcow2_check_overlap(s, host, out_len, 0, errp) ||
        !bdrv_pwrite(s->file, host, out, out_len, errp)) {
        qcow2_cache_put(&s->l2_cache, l2);
        qcow2_free_later(s, host, out_len);
        return false;
    }
    s->unsynced = true;
    nb_csectors = ((host + out_len - 1) >> 9) - (host >> 9);
    l2_set(l2, l2i, QCOW_OFLAG_COMPRESSED | (nb_csectors << s->csize_shift) | host);
    qcow2_cache_mark_dirty(&s->l2_cache, l2);
    qcow2_cache_put(&s->l2_cache, l2);
    return true;
}

int qcow2_guest_block_status(Qcow2State *s, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, GError **errp)
{
    Qcow2ClusterType type;
    uint64_t host, entry;

    if (!get_mapping(s, offset, bytes, &type, &host, &entry, pnum, errp)) {
        return -1;
    }
    switch (type) {
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_COMPRESSED:
        return BDRV_BLOCK_DATA;
    default:
        return BDRV_BLOCK_ZERO;
    }
}

bool qcow2_fix_copied_flags(Qcow2State *s, GError **errp)
{
    for (uint64_t i = 0; i < s->l1_size; i++) {
        uint64_t l1e = s->l1_table[i], off = l1e & L1E_OFFSET_MASK, rc, want;
        uint8_t *l2;
        bool dirty = false;

        if (!off) {
            if (l1e & QCOW_OFLAG_COPIED) {
                s->l1_table[i] = 0;
                s->l1_dirty = true;
            }
            continue;
        }
        if (!qcow2_get_refcount(s, off >> s->cluster_bits, &rc, errp)) {
            return false;
        }
        want = rc == 1 ? (l1e | QCOW_OFLAG_COPIED) : (l1e & ~QCOW_OFLAG_COPIED);
        if (want != l1e) {
            s->l1_table[i] = want;
            s->l1_dirty = true;
        }
        if (!qcow2_load_l2(s, i, &l2, errp)) {
            return false;
        }
        for (uint64_t j = 0; j < s->l2_size; j++) {
            uint64_t e = l2_get(l2, j), ne = e;
            switch (qcow2_l2_entry_type(s, e)) {
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                if (!qcow2_get_refcount(s, (e & L2E_OFFSET_MASK) >> s->cluster_bits, &rc,
                                        errp)) {
                    qcow2_cache_put(&s->l2_cache, l2);
                    return false;
                }
                ne = rc == 1 ? (e | QCOW_OFLAG_COPIED) : (e & ~QCOW_OFLAG_COPIED);
                break;
            default:
                ne = e & ~QCOW_OFLAG_COPIED;
                break;
            }
            if (ne != e) {
                l2_set(l2, j, ne);
                dirty = true;
            }
        }
        if (dirty) {
            qcow2_cache_mark_dirty(&s->l2_cache, l2);
        }
        qcow2_cache_put(&s->l2_cache, l2);
    }
    return true;
}

bool qcow2_snapshot_refcount_precheck(Qcow2State *s, const uint64_t *l1, uint32_t l1_size,
                                      GError **errp)
{
    g_autoptr(GHashTable) inc =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    g_autofree uint8_t *l2 = g_malloc(s->cluster_size);
    GHashTableIter it;
    gpointer key, value;

#define COUNT(ci)                                                                        \
    do {                                                                                 \
        uint64_t k_ = (ci);                                                              \
        gpointer v_ = g_hash_table_lookup(inc, &k_);                                     \
        if (!v_) {                                                                       \
            g_hash_table_insert(inc, g_memdup2(&k_, sizeof(k_)), GUINT_TO_POINTER(1));   \
        } else {                                                                         \
            g_hash_table_insert(inc, g_memdup2(&k_, sizeof(k_)),                         \
                                GUINT_TO_POINTER(GPOINTER_TO_UINT(v_) + 1));             \
        }                                                                                \
    } while (0)

    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t off = l1[i] & L1E_OFFSET_MASK;
        uint8_t *t;
        if (!off) {
            continue;
        }
        if (qcow2_offset_into_cluster(s, off)) {
            qcow2_signal_corruption(s, errp,
                                    "L2 table offset %#" G_GINT64_MODIFIER
                                    "x unaligned (L1 index: %#x)",
                                    off, i);
            return false;
        }
        COUNT(off >> s->cluster_bits);
        if (!qcow2_cache_get(s, &s->l2_cache, off, &t, errp)) {
            return false;
        }
        memcpy(l2, t, s->cluster_size);
        qcow2_cache_put(&s->l2_cache, t);
        for (uint64_t j = 0; j < s->l2_size; j++) {
            uint64_t e = l2_get(l2, j), coff, csize;
            switch (qcow2_l2_entry_type(s, e)) {
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                COUNT((e & L2E_OFFSET_MASK) >> s->cluster_bits);
                break;
            case QCOW2_CLUSTER_COMPRESSED:
                qcow2_compressed_range(s, e, &coff, &csize);
                for (uint64_t c = coff >> s->cluster_bits;
                     c <= (coff + csize - 1) >> s->cluster_bits; c++) {
                    COUNT(c);
                }
                break;
            default:
                break;
            }
        }
    }
#undef COUNT
    g_hash_table_iter_init(&it, inc);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        uint64_t ci = *(uint64_t *)key, rc;
        if (!qcow2_get_refcount(s, ci, &rc, errp)) {
            return false;
        }
        if (s->refcount_max - rc < GPOINTER_TO_UINT(value)) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                        "Refcount of cluster %#" G_GINT64_MODIFIER "x in '%s' would "
                        "exceed %" G_GUINT64_FORMAT " (refcount_bits=%u); convert the "
                        "image with a larger refcount_bits to take snapshots",
                        ci << s->cluster_bits, s->bs->filename, s->refcount_max,
                        s->refcount_bits);
            return false;
        }
    }
    return true;
}

bool qcow2_update_snapshot_refcount(Qcow2State *s, const uint64_t *l1, uint32_t l1_size,
                                    int addend, GError **errp)
{
    g_autofree uint8_t *l2 = g_malloc(s->cluster_size);

    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t off = l1[i] & L1E_OFFSET_MASK;
        uint8_t *t;
        if (!off) {
            continue;
        }
        if (qcow2_offset_into_cluster(s, off)) {
            qcow2_signal_corruption(s, errp,
                                    "L2 table offset %#" G_GINT64_MODIFIER
                                    "x unaligned (L1 index: %#x)",
                                    off, i);
            return false;
        }
        if (!qcow2_cache_get(s, &s->l2_cache, off, &t, errp)) {
            return false;
        }
        memcpy(l2, t, s->cluster_size);
        qcow2_cache_put(&s->l2_cache, t);
        for (uint64_t j = 0; j < s->l2_size; j++) {
            uint64_t e = l2_get(l2, j), coff, csize;
            switch (qcow2_l2_entry_type(s, e)) {
            case QCOW2_CLUSTER_NORMAL:
            case QCOW2_CLUSTER_ZERO_ALLOC:
                if (!qcow2_update_refcount(s, e & L2E_OFFSET_MASK, s->cluster_size,
                                           addend, errp)) {
                    return false;
                }
                break;
            case QCOW2_CLUSTER_COMPRESSED:
                qcow2_compressed_range(s, e, &coff, &csize);
                if (!qcow2_update_refcount(s, coff, csize, addend, errp)) {
                    return false;
                }
                break;
            default:
                break;
            }
        }
        if (!qcow2_update_refcount(s, off, s->cluster_size, addend, errp)) {
            return false;
        }
    }
    return true;
}
