/*
 * qcow2 reference counts: reading and updating refcount blocks of any width
 * (1..64 bits), allocating clusters, growing the refcount table.
 *
 * Invariant (qcow2 spec; QEMU's write order): on disk a refcount may be too
 * high (a leak) but never lower than the number of references. So increments
 * reach the disk before the references that need them (the L2 cache
 * barrier), and decrements are queued (qcow2_free_later) until the tables
 * that dropped the reference are durable (qcow2_flush_metadata).
 */
#include <stdio.h>
#include <string.h>

#include "qcow2.h"
#include "util/error.h"
#include "util/trace.h"

uint64_t qcow2_get_refcount_ro(const Qcow2State *s, const uint8_t *block, uint64_t idx)
{
    switch (s->refcount_order) {
    case 0:
    case 1:
    case 2: {
        uint64_t bit = idx << s->refcount_order;
        return (block[bit / 8] >> (bit % 8)) & ((1u << s->refcount_bits) - 1);
    }
    case 3:
        return block[idx];
    case 4:
        return (uint64_t)block[2 * idx] << 8 | block[2 * idx + 1];
    case 5: {
        uint32_t v;
        memcpy(&v, block + 4 * idx, 4);
        return GUINT32_FROM_BE(v);
    }
    default: {
        uint64_t v;
        memcpy(&v, block + 8 * idx, 8);
        return GUINT64_FROM_BE(v);
    }
    }
}

void qcow2_set_refcount_in_block(const Qcow2State *s, uint8_t *block, uint64_t idx,
                                 uint64_t value)
{
    switch (s->refcount_order) {
    case 0:
    case 1:
    case 2: {
        uint64_t bit = idx << s->refcount_order;
        uint8_t mask = ((1u << s->refcount_bits) - 1) << (bit % 8);
        block[bit / 8] = (block[bit / 8] & ~mask) | ((value << (bit % 8)) & mask);
        break;
    }
    case 3:
        block[idx] = value;
        break;
    case 4:
        block[2 * idx] = value >> 8;
        block[2 * idx + 1] = value;
        break;
    case 5: {
        uint32_t v = GUINT32_TO_BE((uint32_t)value);
        memcpy(block + 4 * idx, &v, 4);
        break;
    }
    default: {
        uint64_t v = GUINT64_TO_BE(value);
        memcpy(block + 8 * idx, &v, 8);
        break;
    }
    }
}

/* Offset of the refcount block for reftable index i, or 0; validates it. */
static bool refblock_offset(Qcow2State *s, uint64_t i, uint64_t *offset, GError **errp)
{
    uint64_t off;

    *offset = 0;
    if (i >= s->refcount_table_size) {
        return true;
    }
    off = s->refcount_table[i] & REFT_OFFSET_MASK;
    if (off && qcow2_offset_into_cluster(s, off)) {
        qcow2_signal_corruption(s, errp,
                                "Refblock offset %#" G_GINT64_MODIFIER
                                "x unaligned (reftable index: %#" G_GINT64_MODIFIER "x)",
                                off, i);
        return false;
    }
    *offset = off;
    return true;
}

bool qcow2_get_refcount(Qcow2State *s, uint64_t cluster_index, uint64_t *refcount,
                        GError **errp)
{
    uint64_t i = cluster_index >> s->refblock_bits, off;
    uint8_t *block;

    *refcount = 0;
    if (!refblock_offset(s, i, &off, errp)) {
        return false;
    }
    if (!off) {
        return true;
    }
    if (!qcow2_cache_get(s, &s->refblock_cache, off, &block, errp)) {
        return false;
    }
    *refcount =
        qcow2_get_refcount_ro(s, block, cluster_index & ((1ull << s->refblock_bits) - 1));
    qcow2_cache_put(&s->refblock_cache, block);
    return true;
}

/* Fixed structures that a free cluster must never overlap. */
static bool refcount_cluster_is_fixed_metadata(Qcow2State *s, uint64_t ci)
{
    uint64_t off = ci << s->cluster_bits;

    if (ci == 0) {
        return true;
    }
    if (s->has_crypto_ext && off >= s->crypto_header_offset &&
        off - s->crypto_header_offset < s->crypto_header_length) {
        return true;
    }
    if (s->nb_snapshots && off >= s->snapshots_offset &&
        off - s->snapshots_offset < s->snapshots_size) {
        return true;
    }
    if (off >= s->refcount_table_offset &&
        off < s->refcount_table_offset +
                  ((uint64_t)s->refcount_table_clusters << s->cluster_bits)) {
        return true;
    }
    if (s->l1_size && off >= s->l1_table_offset &&
        off < s->l1_table_offset + (uint64_t)s->l1_size * 8) {
        return true;
    }
    return false;
}

/* First run of n clusters with refcount 0 at or after free_cluster_index. */
static bool refcount_find_free(Qcow2State *s, uint64_t n, uint64_t *index, GError **errp)
{
    uint64_t ci = MAX(s->free_cluster_index, 1), run = 0, start = ci;
    uint64_t limit = (uint64_t)1 << (56 - s->cluster_bits); /* L2E_OFFSET_MASK */
    uint64_t per_block = 1ull << s->refblock_bits;

    /* One refcount block at a time, scanning its entries in place. */
    for (;;) {
        uint64_t bi = ci >> s->refblock_bits, off, end = (bi + 1) * per_block;
        uint8_t *block = NULL;

        if (ci + n > limit) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                        "No free clusters left in '%s' (image too large)",
                        s->bs->filename);
            return false;
        }
        if (!refblock_offset(s, bi, &off, errp)) {
            return false;
        }
        if (off && !qcow2_cache_get(s, &s->refblock_cache, off, &block, errp)) {
            return false;
        }
        for (; ci < end; ci++) {
            uint64_t rc =
                block ? qcow2_get_refcount_ro(s, block, ci & (per_block - 1)) : 0;
            if (rc != 0) {
                run = 0;
                continue;
            }
            if (refcount_cluster_is_fixed_metadata(s, ci)) {
                if (block) {
                    qcow2_cache_put(&s->refblock_cache, block);
                }
                qcow2_signal_corruption(
                    s, errp,
                    "Preventing invalid allocation of cluster %#" G_GINT64_MODIFIER
                    "x: it holds the header, L1, refcount or snapshot table or the "
                    "encryption header",
                    ci << s->cluster_bits);
                return false;
            }
            if (run++ == 0) {
                start = ci;
            }
            if (run == n) {
                if (block) {
                    qcow2_cache_put(&s->refblock_cache, block);
                }
                *index = start;
                return true;
            }
        }
        if (block) {
            qcow2_cache_put(&s->refblock_cache, block);
        }
    }
}

bool qcow2_write_reftable_entry(Qcow2State *s, uint64_t index, GError **errp)
{
    uint64_t be = GUINT64_TO_BE(s->refcount_table[index]);

    if (!bdrv_pwrite(s->file, s->refcount_table_offset + index * 8, &be, 8, errp)) {
        return false;
    }
    s->unsynced = true;
    if (index > s->max_refcount_table_index) {
        s->max_refcount_table_index = index;
    }
    return true;
}

static bool refcount_grow_table(Qcow2State *s, uint64_t min_entries, GError **errp);
static bool refcount_ensure_block(Qcow2State *s, uint64_t ci, GError **errp);

static bool reft_has_block(const Qcow2State *s, uint64_t i)
{
    return i < s->refcount_table_size && (s->refcount_table[i] & REFT_OFFSET_MASK);
}

/* Write a fresh refcount block at `off` describing reftable index i. */
static bool refcount_install_block(Qcow2State *s, uint64_t i, uint64_t off,
                                   bool self_described, GError **errp)
{
    uint8_t *block;

    if (!qcow2_cache_get_empty(s, &s->refblock_cache, off, &block, errp)) {
        return false;
    }
    if (self_described) {
        qcow2_set_refcount_in_block(
            s, block, (off >> s->cluster_bits) & ((1ull << s->refblock_bits) - 1), 1);
    }
    qcow2_cache_mark_dirty(&s->refblock_cache, block);
    qcow2_cache_put(&s->refblock_cache, block);
    /* Block contents (and the refcount of its own cluster) durable first. */
    if (!qcow2_cache_write(s, &s->refblock_cache, errp) || !qcow2_file_flush(s, errp)) {
        return false;
    }
    s->refcount_table[i] = off;
    if (!qcow2_write_reftable_entry(s, i, errp) || !qcow2_file_flush(s, errp)) {
        s->refcount_table[i] = 0;
        return false;
    }
    trace_event("qcow2_alloc_refblock",
                "index=%" G_GUINT64_FORMAT " offset=0x%" G_GINT64_MODIFIER "x", i, off);
    return true;
}

/* Make sure a refcount block describes cluster index ci (may allocate). */
static bool refcount_ensure_block(Qcow2State *s, uint64_t ci, GError **errp)
{
    uint64_t i = ci >> s->refblock_bits;

    for (;;) {
        uint64_t b, bi, rc;

        if (reft_has_block(s, i)) {
            return true;
        }
        if (i >= s->refcount_table_size) {
            if (!refcount_grow_table(s, i + 1, errp)) {
                return false;
            }
            continue;
        }
        if (!refcount_find_free(s, 1, &b, errp)) {
            return false;
        }
        bi = b >> s->refblock_bits;
        if (bi == i) {
            /* The new block lies in the range it describes: count itself. */
            return refcount_install_block(s, i, b << s->cluster_bits, true, errp);
        }
        if (!reft_has_block(s, bi)) {
            if (!refcount_ensure_block(s, b, errp)) {
                return false;
            }
            continue; /* b may have been taken; look again */
        }
        if (!qcow2_get_refcount(s, b, &rc, errp)) {
            return false;
        }
        if (rc != 0) {
            continue;
        }
        if (!qcow2_update_refcount(s, b << s->cluster_bits, s->cluster_size, 1, errp)) {
            return false;
        }
        return refcount_install_block(s, i, b << s->cluster_bits, false, errp);
    }
}

/*
 * Replace the refcount table by a larger copy with at least min_entries
 * entries. The new table and any refcount blocks needed to describe it are
 * placed together in free space; the header switch is the commit point.
 */
static bool refcount_grow_table(Qcow2State *s, uint64_t min_entries, GError **errp)
{
    uint64_t per_cluster = s->cluster_size / 8;
    uint64_t max_clusters = QCOW2_MAX_REFTABLE_BYTES >> s->cluster_bits;
    uint64_t want = MAX(min_entries, s->refcount_table_size + s->refcount_table_size / 2);
    uint64_t new_clusters = (want + per_cluster - 1) / per_cluster;
    uint64_t nb_blocks = 0, t = 0, new_entries, old_off, old_clusters;
    g_autofree uint64_t *new_table = NULL;
    g_autofree uint8_t *table_be = NULL;
    uint8_t header[12];

    if (max_clusters == 0) {
        max_clusters = 1;
    }
    if ((min_entries + per_cluster - 1) / per_cluster > max_clusters) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "Refcount table of '%s' would exceed %u MiB; the image is too "
                    "large for its cluster size and refcount width",
                    s->bs->filename, QCOW2_MAX_REFTABLE_BYTES >> 20);
        return false;
    }
    new_clusters = MIN(new_clusters, max_clusters);

    /* Find room for the table plus the blocks that must describe it. */
    for (;;) {
        uint64_t total = new_clusters + nb_blocks, needed = 0, first, last;
        if (!refcount_find_free(s, total, &t, errp)) {
            return false;
        }
        first = t >> s->refblock_bits;
        last = (t + total - 1) >> s->refblock_bits;
        for (uint64_t i = first; i <= last; i++) {
            needed += !reft_has_block(s, i);
        }
        if (last >= new_clusters * per_cluster) {
            if (new_clusters >= max_clusters) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                            "Refcount table of '%s' cannot grow further",
                            s->bs->filename);
                return false;
            }
            new_clusters++;
            continue;
        }
        if (needed <= nb_blocks) {
            break;
        }
        nb_blocks = needed;
    }

    new_entries = new_clusters * per_cluster;
    new_table = g_new0(uint64_t, new_entries);
    memcpy(new_table, s->refcount_table, s->refcount_table_size * 8);

    /* New blocks follow the table; clusters in existing blocks get +1. */
    {
        uint64_t total = new_clusters + nb_blocks;
        uint64_t first = t >> s->refblock_bits,
                 last = (t + total - 1) >> s->refblock_bits;
        uint64_t next_block = t + new_clusters;
        uint64_t per_block = 1ull << s->refblock_bits;
        g_autofree uint8_t *block = g_malloc(s->cluster_size);

        for (uint64_t i = first; i <= last; i++) {
            uint64_t lo = MAX(t, i * per_block), hi = MIN(t + total, (i + 1) * per_block);
            if (reft_has_block(s, i)) {
                if (!qcow2_update_refcount(s, lo << s->cluster_bits,
                                           (hi - lo) << s->cluster_bits, 1, errp)) {
                    return false;
                }
                continue;
            }
            memset(block, 0, s->cluster_size);
            for (uint64_t c = lo; c < hi; c++) {
                qcow2_set_refcount_in_block(s, block, c & (per_block - 1), 1);
            }
            g_assert(next_block < t + total);
            new_table[i] = next_block << s->cluster_bits;
            if (!bdrv_pwrite(s->file, next_block << s->cluster_bits, block,
                             s->cluster_size, errp)) {
                return false;
            }
            next_block++;
        }
    }
    table_be = g_malloc0(new_clusters << s->cluster_bits);
    for (uint64_t i = 0; i < new_entries; i++) {
        uint64_t be = GUINT64_TO_BE(new_table[i]);
        memcpy(table_be + i * 8, &be, 8);
    }
    s->unsynced = true;
    if (!bdrv_pwrite(s->file, t << s->cluster_bits, table_be,
                     new_clusters << s->cluster_bits, errp) ||
        !qcow2_cache_write(s, &s->refblock_cache, errp) || !qcow2_file_flush(s, errp)) {
        return false;
    }

    /* Commit: one write of the (offset, clusters) pair. */
    {
        uint64_t off_be = GUINT64_TO_BE(t << s->cluster_bits);
        uint32_t cl_be = GUINT32_TO_BE((uint32_t)new_clusters);
        memcpy(header, &off_be, 8);
        memcpy(header + 8, &cl_be, 4);
    }
    if (!qcow2_write_header_field(s, QCOW2_OFF_REFTABLE, header, 12, errp)) {
        return false;
    }
    old_off = s->refcount_table_offset;
    old_clusters = s->refcount_table_clusters;
    g_free(s->refcount_table);
    s->refcount_table = g_steal_pointer(&new_table);
    s->refcount_table_offset = t << s->cluster_bits;
    s->refcount_table_clusters = new_clusters;
    s->refcount_table_size = new_entries;
    for (uint64_t i = 0; i < new_entries; i++) {
        if (s->refcount_table[i]) {
            s->max_refcount_table_index = MAX(s->max_refcount_table_index, i);
        }
    }
    trace_event("qcow2_grow_reftable",
                "offset=0x%" G_GINT64_MODIFIER "x clusters=%" G_GUINT64_FORMAT,
                s->refcount_table_offset, new_clusters);
    /* The old table is unreferenced once the header switch is durable. */
    return qcow2_update_refcount(s, old_off, old_clusters << s->cluster_bits, -1, errp);
}

bool qcow2_update_refcount(Qcow2State *s, uint64_t offset, uint64_t bytes, int64_t addend,
                           GError **errp)
{
    uint64_t first, last;

    if (bytes == 0 || addend == 0) {
        return true;
    }
    first = offset >> s->cluster_bits;
    last = (offset + bytes - 1) >> s->cluster_bits;
    if (addend > 0) {
        for (uint64_t ci = first; ci <= last; ci++) {
            if (ci == first || (ci & ((1ull << s->refblock_bits) - 1)) == 0) {
                if (!refcount_ensure_block(s, ci, errp)) {
                    return false;
                }
            }
        }
    }
    for (uint64_t ci = first; ci <= last; ci++) {
        uint64_t i = ci >> s->refblock_bits, off, old, new;
        uint8_t *block;

        if (!refblock_offset(s, i, &off, errp)) {
            return false;
        }
        if (!off) {
            qcow2_signal_corruption(s, errp,
                                    "Refcount of cluster %#" G_GINT64_MODIFIER
                                    "x would drop below zero (no refcount block)",
                                    ci << s->cluster_bits);
            return false;
        }
        if (!qcow2_cache_get(s, &s->refblock_cache, off, &block, errp)) {
            return false;
        }
        old = qcow2_get_refcount_ro(s, block, ci & ((1ull << s->refblock_bits) - 1));
        if (addend < 0 && old < (uint64_t)-addend) {
            qcow2_cache_put(&s->refblock_cache, block);
            qcow2_signal_corruption(s, errp,
                                    "Refcount of cluster %#" G_GINT64_MODIFIER
                                    "x would drop below zero",
                                    ci << s->cluster_bits);
            return false;
        }
        if (addend > 0 && s->refcount_max - old < (uint64_t)addend) {
            qcow2_cache_put(&s->refblock_cache, block);
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                        "Refcount of cluster %#" G_GINT64_MODIFIER
                        "x in '%s' would exceed %" G_GUINT64_FORMAT
                        " (refcount_bits=%u): %s",
                        ci << s->cluster_bits, s->bs->filename, s->refcount_max,
                        s->refcount_bits, g_strerror(ERANGE));
            return false;
        }
        new = old + addend;
        qcow2_set_refcount_in_block(s, block, ci & ((1ull << s->refblock_bits) - 1), new);
        qcow2_cache_mark_dirty(&s->refblock_cache, block);
        qcow2_cache_put(&s->refblock_cache, block);
        if (new == 0) {
            uint64_t coff = ci << s->cluster_bits;
            /* A freed table must not be served from a cache later. */
            qcow2_cache_discard(&s->l2_cache, coff);
            if (s->cluster_cache_offset != UINT64_MAX &&
                qcow2_start_of_cluster(s, s->cluster_cache_offset &
                                              s->cluster_offset_mask) == coff) {
                s->cluster_cache_offset = UINT64_MAX;
            }
            if (ci < s->free_cluster_index) {
                s->free_cluster_index = ci;
            }
        }
    }
    return true;
}

bool qcow2_alloc_clusters(Qcow2State *s, uint64_t bytes, uint64_t *offset, GError **errp)
{
    uint64_t n = qcow2_size_to_clusters(s, bytes);

    for (;;) {
        uint64_t ci, first, last;
        bool changed = false;

        if (!refcount_find_free(s, n, &ci, errp)) {
            return false;
        }
        first = ci >> s->refblock_bits;
        last = (ci + n - 1) >> s->refblock_bits;
        for (uint64_t i = first; i <= last; i++) {
            if (!reft_has_block(s, i)) {
                uint64_t c = MAX(ci, i << s->refblock_bits);
                if (!refcount_ensure_block(s, c, errp)) {
                    return false;
                }
                changed = true;
            }
        }
        if (changed) {
            continue; /* new refcount blocks may sit in the run we found */
        }
        if (!qcow2_update_refcount(s, ci << s->cluster_bits, n << s->cluster_bits, 1,
                                   errp)) {
            return false;
        }
        s->free_cluster_index = ci + n;
        *offset = ci << s->cluster_bits;
        trace_event("qcow2_alloc_clusters",
                    "offset=0x%" G_GINT64_MODIFIER "x clusters=%" G_GUINT64_FORMAT,
                    *offset, n);
        return true;
    }
}

bool qcow2_alloc_bytes(Qcow2State *s, uint64_t bytes, uint64_t *offset, GError **errp)
{
    uint64_t off = s->free_byte_offset;

    g_assert(bytes > 0 && bytes <= s->cluster_size);
    if (off && qcow2_offset_into_cluster(s, off) &&
        s->cluster_size - qcow2_offset_into_cluster(s, off) >= bytes) {
        uint64_t rc;
        if (!qcow2_get_refcount(s, off >> s->cluster_bits, &rc, errp)) {
            return false;
        }
        if (rc > 0 && rc < s->refcount_max) {
            if (!qcow2_update_refcount(s, off, 1, 1, errp)) {
                return false;
            }
            *offset = off;
            s->free_byte_offset = off + bytes;
            return true;
        }
    }
    if (!qcow2_alloc_clusters(s, s->cluster_size, &off, errp)) {
        return false;
    }
    *offset = off;
    s->free_byte_offset = bytes < s->cluster_size ? off + bytes : 0;
    return true;
}

void qcow2_compressed_range(const Qcow2State *s, uint64_t l2_entry, uint64_t *offset,
                            uint64_t *bytes)
{
    uint64_t coffset = l2_entry & s->cluster_offset_mask;
    uint64_t nb_sectors = ((l2_entry >> s->csize_shift) & s->csize_mask) + 1;

    *offset = coffset;
    *bytes = nb_sectors * QCOW2_SECTOR - (coffset & (QCOW2_SECTOR - 1));
}

void qcow2_free_later(Qcow2State *s, uint64_t offset, uint64_t bytes)
{
    Qcow2PendingFree f = {offset, bytes};

    if (bytes) {
        g_array_append_val(s->pending_frees, f);
    }
}

void qcow2_free_l2_entry_later(Qcow2State *s, uint64_t l2_entry)
{
    uint64_t off, bytes;

    switch (qcow2_l2_entry_type(s, l2_entry)) {
    case QCOW2_CLUSTER_NORMAL:
    case QCOW2_CLUSTER_ZERO_ALLOC:
        qcow2_free_later(s, l2_entry & L2E_OFFSET_MASK, s->cluster_size);
        break;
    case QCOW2_CLUSTER_COMPRESSED:
        qcow2_compressed_range(s, l2_entry, &off, &bytes);
        qcow2_free_later(s, off, bytes);
        break;
    default:
        break;
    }
}

bool qcow2_apply_pending_frees(Qcow2State *s, GError **errp)
{
    while (s->pending_frees->len) {
        Qcow2PendingFree f = g_array_index(s->pending_frees, Qcow2PendingFree, 0);
        g_array_remove_index(s->pending_frees, 0);
        if (!qcow2_update_refcount(s, f.offset, f.bytes, -1, errp)) {
            return false;
        }
    }
    return true;
}

bool qcow2_refcount_init(Qcow2State *s, GError **errp)
{
    uint64_t bytes = (uint64_t)s->refcount_table_clusters << s->cluster_bits;
    g_autofree uint8_t *buf = g_malloc(bytes);

    s->refcount_table_size = bytes / 8;
    if (!bdrv_pread(s->file, s->refcount_table_offset, buf, bytes, errp)) {
        return false;
    }
    s->refcount_table = g_new(uint64_t, s->refcount_table_size);
    s->max_refcount_table_index = 0;
    for (uint64_t i = 0; i < s->refcount_table_size; i++) {
        uint64_t v;
        memcpy(&v, buf + i * 8, 8);
        s->refcount_table[i] = GUINT64_FROM_BE(v);
        if (s->refcount_table[i]) {
            s->max_refcount_table_index = i;
        }
    }
    s->pending_frees = g_array_new(FALSE, FALSE, sizeof(Qcow2PendingFree));
    return true;
}

void qcow2_refcount_close(Qcow2State *s)
{
    g_free(s->refcount_table);
    s->refcount_table = NULL;
    if (s->pending_frees) {
        g_array_unref(s->pending_frees);
        s->pending_frees = NULL;
    }
}
