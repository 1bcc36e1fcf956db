/*
 * qcow2 internal snapshots: the snapshot table, create, goto (apply), delete
 * and list (qcow2 spec "Snapshots"; QEMU 7.2 qcow2-snapshot.c behaviour).
 *
 * Crash safety comes from write order alone, as in QEMU. At every moment the
 * image on disk has refcounts at least as high as the references to each
 * cluster (a crash may leak clusters, which check -r leaks reclaims, but
 * never frees one in use) and no COPIED flag on a cluster with more than one
 * user. Each operation has one commit point: the 12-byte header write that
 * switches (nb_snapshots, snapshots_offset) for create and delete, the
 * write of the new active L1 for goto. What must come before it is flushed
 * before it; what follows it only drops references the image no longer
 * has, so it waits in the metadata caches for the next flush.
 *
 * A goto can be prepared and then committed or aborted: until the commit
 * the replaced tree keeps its references, so putting it back is one more L1
 * write. loadvm uses this to stay all-or-nothing across drives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util/byteorder.h"
#include "util/error.h"
#include "util/trace.h"

#define SN_HEADER_SIZE 40
#define SN_EXTRA_SIZE 24 /* vm_state_size_large, disk_size, icount */

static void snapshot_clear(Qcow2Snapshot *sn)
{
    g_free(sn->id_str);
    g_free(sn->name);
    g_free(sn->unknown_extra);
    memset(sn, 0, sizeof(*sn));
}

void qcow2_free_snapshots(Qcow2State *s)
{
    for (uint32_t i = 0; s->snapshots && i < s->nb_snapshots; i++) {
        snapshot_clear(&s->snapshots[i]);
    }
    g_free(s->snapshots);
    s->snapshots = NULL;
}

/*
 * A snapshot id read from the image, for messages: bytes other than printable
 * ASCII are shown as \xHH, never as they are.
 */
static char *snapshot_id_shown(const char *id)
{
    GString *out = g_string_new(NULL);

    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\') {
            g_string_append_c(out, (char)*p);
        } else {
            g_string_append_printf(out, "\\x%02x", *p);
        }
    }
    return g_string_free(out, FALSE);
}

bool qcow2_read_snapshots(Qcow2State *s, GError **errp)
{
    uint64_t off = s->snapshots_offset, used = 0;
    uint8_t h[SN_HEADER_SIZE];

    s->snapshots_size = 0;
    if (s->nb_snapshots == 0) {
        return true;
    }
    s->snapshots = g_new0(Qcow2Snapshot, s->nb_snapshots);
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        Qcow2Snapshot *sn = &s->snapshots[i];
        uint32_t extra, id_len, name_len, entry;
        g_autofree uint8_t *rest = NULL;

        if (used + SN_HEADER_SIZE > QCOW2_MAX_SNAPSHOTS_BYTES) {
            goto too_large;
        }
        if (!bdrv_pread(s->file, off + used, h, SN_HEADER_SIZE, errp)) {
            return false;
        }
        sn->l1_table_offset = be64_at(h);
        sn->l1_size = be32_at(h + 8);
        id_len = be16_at(h + 12);
        name_len = be16_at(h + 14);
        sn->date_sec = be32_at(h + 16);
        sn->date_nsec = be32_at(h + 20);
        sn->vm_clock_nsec = be64_at(h + 24);
        sn->vm_state_size = be32_at(h + 32);
        extra = be32_at(h + 36);
        if (extra > QCOW2_MAX_SNAPSHOT_EXTRA) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "Too much extra metadata in snapshot table entry %u", i);
            return false;
        }
        entry = extra + id_len + name_len;
        if (used + SN_HEADER_SIZE + entry > QCOW2_MAX_SNAPSHOTS_BYTES) {
            goto too_large;
        }
        rest = g_malloc(entry + 1);
        if (!bdrv_pread(s->file, off + used + SN_HEADER_SIZE, rest, entry, errp)) {
            return false;
        }
        sn->extra_data_size = extra;
        sn->disk_size = s->size;
        sn->icount = -1;
        if (extra >= 8) {
            sn->vm_state_size = be64_at(rest);
        }
        if (extra >= 16) {
            sn->disk_size = be64_at(rest + 8);
        }
        if (extra >= 24) {
            sn->icount = (int64_t)be64_at(rest + 16);
        }
        if (extra > SN_EXTRA_SIZE) {
            sn->unknown_extra_size = extra - SN_EXTRA_SIZE;
            sn->unknown_extra = g_memdup2(rest + SN_EXTRA_SIZE, sn->unknown_extra_size);
        }
        sn->id_str = g_strndup((const char *)rest + extra, id_len);
        sn->name = g_strndup((const char *)rest + extra + id_len, name_len);
        used += ((uint64_t)SN_HEADER_SIZE + entry + 7) & ~7ull;
        if (sn->l1_size > qcow2_max_l1_entries()) {
            g_autofree char *shown = snapshot_id_shown(sn->id_str);

            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "Snapshot L1 table too large (snapshot '%s')", shown);
            return false;
        }
    }
    s->snapshots_size = used;
    return true;

too_large:
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                "Snapshot table too large (more than %u MiB)",
                QCOW2_MAX_SNAPSHOTS_BYTES >> 20);
    return false;
}

static uint64_t snapshot_entry_size(const Qcow2Snapshot *sn)
{
    uint64_t n = SN_HEADER_SIZE + SN_EXTRA_SIZE + sn->unknown_extra_size +
                 strlen(sn->id_str) + strlen(sn->name);
    return (n + 7) & ~7ull;
}

/* A snapshot table written to new clusters, not yet the image's. */
typedef struct SnapshotTable {
    uint32_t nb;
    uint64_t offset;
    uint64_t size;
} SnapshotTable;

/* Write `list` (nb entries) to newly allocated clusters. */
static bool snapshot_table_write(Qcow2State *s, const Qcow2Snapshot *list, uint32_t nb,
                                 SnapshotTable *t, GError **errp)
{
    uint64_t size = 0, pos = 0;
    g_autofree uint8_t *buf = NULL;

    for (uint32_t i = 0; i < nb; i++) {
        size += snapshot_entry_size(&list[i]);
    }
    if (size > QCOW2_MAX_SNAPSHOTS_BYTES) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Snapshot table of '%s' would exceed %u MiB", s->bs->filename,
                    QCOW2_MAX_SNAPSHOTS_BYTES >> 20);
        return false;
    }
    *t = (SnapshotTable){.nb = nb, .offset = 0, .size = size};
    if (!nb) {
        return true;
    }
    buf = g_malloc0(size);
    for (uint32_t i = 0; i < nb; i++) {
        const Qcow2Snapshot *sn = &list[i];
        uint8_t *p = buf + pos;
        size_t id_len = strlen(sn->id_str), name_len = strlen(sn->name);
        uint32_t extra = SN_EXTRA_SIZE + sn->unknown_extra_size;

        put_be64(p, sn->l1_table_offset);
        put_be32(p + 8, sn->l1_size);
        put_be16(p + 12, id_len);
        put_be16(p + 14, name_len);
        put_be32(p + 16, sn->date_sec);
        put_be32(p + 20, sn->date_nsec);
        put_be64(p + 24, sn->vm_clock_nsec);
        put_be32(p + 32, sn->vm_state_size > UINT32_MAX ? 0 : sn->vm_state_size);
        put_be32(p + 36, extra);
        put_be64(p + 40, sn->vm_state_size);
        put_be64(p + 48, sn->disk_size);
        put_be64(p + 56, (uint64_t)sn->icount);
        if (sn->unknown_extra_size) {
            memcpy(p + 64, sn->unknown_extra, sn->unknown_extra_size);
        }
        memcpy(p + SN_HEADER_SIZE + extra, sn->id_str, id_len);
        memcpy(p + SN_HEADER_SIZE + extra + id_len, sn->name, name_len);
        pos += snapshot_entry_size(sn);
    }
    if (!qcow2_alloc_clusters(s, size, &t->offset, errp)) {
        return false;
    }
    if (!bdrv_pwrite(s->file, t->offset, buf, size, errp)) {
        qcow2_free_later(s, t->offset, size);
        return false;
    }
    s->unsynced = true;
    return true;
}

/*
 * The commit point of create and delete: everything written so far made
 * durable, then one header write switches (nb_snapshots, snapshots_offset)
 * to table `t`. Inside a dirty section the same write clears the dirty bit
 * (the fields are adjacent, bytes 60-79 of the first sector), the old table
 * is freed before it (the caller allocates nothing after that), and the
 * operation is complete; otherwise the old table is freed after it, which
 * a crash can only turn into a leak.
 */
static bool snapshot_table_commit(Qcow2State *s, const SnapshotTable *t, GError **errp)
{
    bool dirty = s->incompatible & QCOW2_INCOMPAT_DIRTY;
    uint64_t old_off = s->snapshots_offset, old_size = s->snapshots_size;
    uint32_t old_nb = s->nb_snapshots;
    uint8_t header[20];

    if (dirty && old_nb && !qcow2_update_refcount(s, old_off, old_size, -1, errp)) {
        return false;
    }
    if (!qcow2_flush_metadata(s, errp)) {
        return false;
    }
    put_be32(header, t->nb);
    put_be64(header + 4, t->offset);
    put_be64(header + 12, s->incompatible & ~QCOW2_INCOMPAT_DIRTY);
    if (!qcow2_write_header_field(s, QCOW2_OFF_NB_SNAPSHOTS, header, dirty ? 20 : 12,
                                  errp)) {
        return false;
    }
    s->incompatible &= ~QCOW2_INCOMPAT_DIRTY;
    s->nb_snapshots = t->nb;
    s->snapshots_offset = t->offset;
    s->snapshots_size = t->size;
    trace_event("qcow2_snapshot_table", "nb=%u offset=0x%" G_GINT64_MODIFIER "x", t->nb,
                t->offset);
    if (!dirty && old_nb) {
        return qcow2_update_refcount(s, old_off, old_size, -1, errp);
    }
    return true;
}

static int snapshot_find_id(Qcow2State *s, const char *id)
{
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if (strcmp(s->snapshots[i].id_str, id) == 0) {
            return i;
        }
    }
    return -1;
}

/* A snapshot's L1 table, validated (it is only used on explicit request). */
static uint64_t *snapshot_read_l1(Qcow2State *s, const Qcow2Snapshot *sn, GError **errp)
{
    uint64_t bytes = (uint64_t)sn->l1_size * 8;
    int64_t file_len = bdrv_getlength(s->file);
    g_autofree uint8_t *buf = NULL;
    uint64_t *l1;

    if (sn->l1_size > qcow2_max_l1_entries() ||
        qcow2_offset_into_cluster(s, sn->l1_table_offset) ||
        (sn->l1_size && (sn->l1_table_offset == 0 ||
                         sn->l1_table_offset + bytes > (uint64_t)file_len))) {
        g_autofree char *shown = snapshot_id_shown(sn->id_str);

        qcow2_signal_corruption(s, errp,
                                "Snapshot L1 table offset %#" G_GINT64_MODIFIER
                                "x or size %u invalid (snapshot '%s')",
                                sn->l1_table_offset, sn->l1_size, shown);
        return NULL;
    }
    buf = g_malloc(bytes + 1);
    if (bytes && !bdrv_pread(s->file, sn->l1_table_offset, buf, bytes, errp)) {
        return NULL;
    }
    l1 = g_new0(uint64_t, sn->l1_size + 1);
    for (uint32_t i = 0; i < sn->l1_size; i++) {
        l1[i] = be64_at(buf + i * 8);
    }
    return l1;
}

/*
 * Start an operation: the image must be writable with no revert pending,
 * and the dirty bit goes on disk before anything else changes.
 */
static bool snapshot_begin(Qcow2State *s, GError **errp)
{
    if (s->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION, "Image '%s' is read-only",
                    s->bs->filename);
        return false;
    }
    if (s->goto_undo_l1) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
            "A snapshot revert of '%s' is still pending; commit or abort it first",
            s->bs->filename);
        return false;
    }
    return qcow2_set_incompat_bits(s, QCOW2_INCOMPAT_DIRTY, 0, errp);
}

/* End an operation without a table commit: flush, then clear the dirty bit. */
static bool snapshot_end(Qcow2State *s, GError **errp)
{
    return qcow2_flush_metadata(s, errp) && qcow2_clear_dirty_lazily(s, errp);
}

/* Where the vmstate area starts in the L1 table (it has L2 tables of its own). */
static uint32_t snapshot_vmstate_l1_index(const Qcow2State *s)
{
    return (uint32_t)MIN((uint64_t)s->l1_size, qcow2_size_to_l1(s, s->size));
}

bool qcow2_snapshot_create(BlockDriverState *bs, BlockSnapshotInfo *info, GError **errp)
{
    Qcow2State *s = bs->opaque;
    g_autofree Qcow2Snapshot *list = NULL;
    g_autofree uint8_t *l1buf = NULL;
    g_autofree char *id = NULL;
    uint64_t l1_bytes = (uint64_t)s->l1_size * 8, copy_off = 0;
    bool dirty = s->version >= 3;
    /* What becomes shared: without the vmstate area, which is handed over. */
    uint32_t shared_l1 = dirty ? snapshot_vmstate_l1_index(s) : s->l1_size;
    SnapshotTable table;
    Qcow2Snapshot *sn;

    if (info->id_str && info->id_str[0]) {
        if (snapshot_find_id(s, info->id_str) >= 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Snapshot ID '%s' already exists in '%s'", info->id_str,
                        bs->filename);
            return false;
        }
        id = g_strdup(info->id_str);
    } else {
        /* QEMU picks max(numeric ids) + 1. */
        uint64_t max = 0;
        for (uint32_t i = 0; i < s->nb_snapshots; i++) {
            max = MAX(max, g_ascii_strtoull(s->snapshots[i].id_str, NULL, 10));
        }
        id = g_strdup_printf("%" G_GUINT64_FORMAT, max + 1);
    }
    if (strlen(id) > UINT16_MAX || (info->name && strlen(info->name) > UINT16_MAX)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "Snapshot name too long");
        return false;
    }
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Too many snapshots in '%s' (at most %u)", bs->filename,
                    QCOW2_MAX_SNAPSHOTS);
        return false;
    }
    if (!qcow2_snapshot_refcount_precheck(s, s->l1_table, shared_l1, errp) ||
        !snapshot_begin(s, errp)) {
        return false;
    }

    /* 1: the disk's clusters gain the snapshot as a user (COPIED goes below). */
    if (!qcow2_update_snapshot_refcount(s, s->l1_table, shared_l1, 1, errp)) {
        return false;
    }
    /*
     * 2: the snapshot's L1: a copy of the active one. The vmstate area's
     * L2 tables pass to the snapshot as they are (no refcount changes: one
     * user for another); the active image keeps no vmstate, as in QEMU. On
     * a version 2 image (no dirty bit) that hand-over waits for the commit.
     */
    if (l1_bytes) {
        l1buf = g_malloc0(l1_bytes);
        for (uint32_t i = 0; i < s->l1_size; i++) {
            put_be64(l1buf + i * 8, s->l1_table[i] & ~QCOW_OFLAG_COPIED);
        }
        if (!qcow2_alloc_clusters(s, l1_bytes, &copy_off, errp)) {
            return false;
        }
        if (!bdrv_pwrite(s->file, copy_off, l1buf, l1_bytes, errp)) {
            qcow2_free_later(s, copy_off, l1_bytes);
            return false;
        }
        s->unsynced = true;
    }
    if (shared_l1 < s->l1_size) {
        memset(s->l1_table + shared_l1, 0, (uint64_t)(s->l1_size - shared_l1) * 8);
        s->l1_dirty = true;
        if (s->l1_fresh_lo >= shared_l1) {
            s->l1_fresh_lo = s->l1_fresh_hi = 0; /* the new vmstate tables went */
        }
    }
    if (!qcow2_fix_copied_flags(s, errp)) {
        return false;
    }

    /* 3: the new table, then the commit. */
    list = g_new0(Qcow2Snapshot, s->nb_snapshots + 1);
    if (s->nb_snapshots) {
        memcpy(list, s->snapshots, s->nb_snapshots * sizeof(*list));
    }
    sn = &list[s->nb_snapshots];
    sn->l1_table_offset = copy_off;
    sn->l1_size = s->l1_size;
    sn->id_str = id;
    sn->name = g_strdup(info->name ? info->name : "");
    sn->date_sec = info->date_sec;
    sn->date_nsec = info->date_nsec;
    sn->vm_clock_nsec = info->vm_clock_nsec;
    sn->vm_state_size = info->vm_state_size;
    sn->disk_size = s->size;
    sn->icount = info->icount;
    sn->extra_data_size = SN_EXTRA_SIZE;
    if (!snapshot_table_write(s, list, s->nb_snapshots + 1, &table, errp) ||
        !snapshot_table_commit(s, &table, errp)) {
        g_free(sn->name);
        return false;
    }
    g_free(s->snapshots);
    s->snapshots = g_steal_pointer(&list);
    id = NULL; /* owned by the table now */
    sn = &s->snapshots[s->nb_snapshots - 1];

    /* 4 (version 2): the active image lets go of its vmstate only now. */
    if (!dirty && info->vm_state_size &&
        !qcow2_discard_guest(
            s, qcow2_vm_state_offset(s),
            (info->vm_state_size + s->cluster_size - 1) & ~(s->cluster_size - 1), errp)) {
        return false;
    }
    if (!info->id_str || !info->id_str[0]) {
        g_free(info->id_str);
        info->id_str = g_strdup(sn->id_str);
    }
    info->disk_size = sn->disk_size;
    trace_event("qcow2_snapshot_create", "id=%s name=%s", sn->id_str, sn->name);
    return true;
}

/*
 * Make `l1` (n entries) the active L1, in place: the commit point of a goto.
 * Every L2 table it names is shared with a snapshot, so it carries no
 * COPIED flag. Whatever the caches hold goes first: the L2 tables `l1`
 * names must be on disk before it (an abort puts back an L1 whose newest
 * tables were still cached), and on a version 2 image so must the
 * refcounts that make them reachable. Inside a dirty section the write
 * itself becomes durable with the section's final flush; otherwise it is
 * durable on return.
 */
static bool snapshot_switch_active_l1(Qcow2State *s, const uint64_t *l1, uint32_t n,
                                      GError **errp)
{
    bool dirty = s->incompatible & QCOW2_INCOMPAT_DIRTY;
    uint64_t bytes = (uint64_t)s->l1_size * 8;
    g_autofree uint8_t *buf = g_malloc0(bytes + 1);

    g_assert(n <= s->l1_size);
    for (uint32_t i = 0; i < n; i++) {
        put_be64(buf + i * 8, l1[i] & ~QCOW_OFLAG_COPIED);
    }
    /* In a dirty section with every L2 table on disk, refcounts may stay cached. */
    if ((!dirty || s->unsynced || s->l1_dirty || qcow2_cache_is_dirty(&s->l2_cache)) &&
        !qcow2_flush_metadata(s, errp)) {
        return false;
    }
    if (!bdrv_pwrite(s->file, s->l1_table_offset, buf, bytes, errp)) {
        s->l1_dirty = true; /* the next flush writes the in-memory L1 again */
        return false;
    }
    s->unsynced = true;
    if (!dirty && !qcow2_file_flush(s, errp)) {
        s->l1_dirty = true;
        return false;
    }
    memset(s->l1_table, 0, bytes);
    for (uint32_t i = 0; i < n; i++) {
        s->l1_table[i] = l1[i] & ~QCOW_OFLAG_COPIED;
    }
    s->l1_dirty = false;
    s->l1_fresh_lo = s->l1_fresh_hi = 0;
    return true;
}

static bool snapshot_set_disk_size(Qcow2State *s, uint64_t size, GError **errp)
{
    uint8_t be[8];

    if (size == s->size) {
        return true;
    }
    put_be64(be, size);
    if (!qcow2_write_header_field(s, QCOW2_OFF_SIZE, be, 8, errp)) {
        return false;
    }
    s->size = size;
    return true;
}

/* A copy of the active L1 (never NULL, even when it has no entries). */
static uint64_t *snapshot_copy_active_l1(const Qcow2State *s)
{
    uint64_t *l1 = g_new0(uint64_t, (gsize)s->l1_size + 1);

    memcpy(l1, s->l1_table, (uint64_t)s->l1_size * 8);
    return l1;
}

/* Snapshot `id` with its L1 table (*l1, validated), or NULL. */
static Qcow2Snapshot *snapshot_lookup(Qcow2State *s, const char *id, uint64_t **l1,
                                      GError **errp)
{
    int idx = snapshot_find_id(s, id);
    Qcow2Snapshot *sn;

    if (idx < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "Can't find snapshot '%s'",
                    id);
        return NULL;
    }
    sn = &s->snapshots[idx];
    if (sn->disk_size > INT64_MAX ||
        qcow2_size_to_l1(s, sn->disk_size) > qcow2_max_l1_entries()) {
        g_autofree char *shown = snapshot_id_shown(sn->id_str);

        qcow2_signal_corruption(s, errp, "Snapshot '%s' has an invalid disk size", shown);
        return NULL;
    }
    *l1 = snapshot_read_l1(s, sn, errp);
    return *l1 ? sn : NULL;
}

bool qcow2_snapshot_goto_prepare(BlockDriverState *bs, const char *id, GError **errp)
{
    Qcow2State *s = bs->opaque;
    g_autofree uint64_t *snap_l1 = NULL;
    g_autofree uint64_t *old_l1 = NULL;
    uint64_t old_disk_size = s->size;
    Qcow2Snapshot *sn = snapshot_lookup(s, id, &snap_l1, errp);
    uint32_t old_size;
    uint64_t want;

    if (!sn) {
        return false;
    }
    want = MAX((uint64_t)sn->l1_size, qcow2_size_to_l1(s, sn->disk_size));
    if (!qcow2_snapshot_refcount_precheck(s, snap_l1, sn->l1_size, errp) ||
        !snapshot_begin(s, errp) || !qcow2_grow_l1(s, want, true, errp)) {
        return false;
    }
    /* 1: the snapshot's tree gains the active image as a user. */
    if (!qcow2_update_snapshot_refcount(s, snap_l1, sn->l1_size, 1, errp)) {
        return false;
    }
    /* 2: the switch. The replaced tree keeps its references for now. */
    old_size = s->l1_size;
    old_l1 = snapshot_copy_active_l1(s);
    if (!snapshot_switch_active_l1(s, snap_l1, sn->l1_size, errp)) {
        return false;
    }
    s->goto_undo_l1 = g_steal_pointer(&old_l1);
    s->goto_undo_l1_size = old_size;
    s->goto_undo_size = old_disk_size;
    /*
     * 3: COPIED follows the refcounts before anything writes (a snapshot
     * made elsewhere may carry stale flags in its L2 tables).
     */
    if (!snapshot_set_disk_size(s, sn->disk_size, errp) ||
        !qcow2_fix_copied_flags(s, errp)) {
        qcow2_snapshot_goto_abort(bs, NULL); /* all or nothing */
        return false;
    }
    trace_event("qcow2_snapshot_goto_prepare", "id=%s", id);
    return true;
}

static bool snapshot_goto_pending(Qcow2State *s, GError **errp)
{
    if (!s->goto_undo_l1) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "No snapshot revert of '%s' is pending", s->bs->filename);
        return false;
    }
    return true;
}

bool qcow2_snapshot_goto_commit(BlockDriverState *bs, GError **errp)
{
    Qcow2State *s = bs->opaque;
    g_autofree uint64_t *old_l1 = NULL;

    if (!snapshot_goto_pending(s, errp)) {
        return false;
    }
    old_l1 = g_steal_pointer(&s->goto_undo_l1);
    /* The replaced tree loses its user; then everything durable, dirty off. */
    if (!qcow2_update_snapshot_refcount(s, old_l1, s->goto_undo_l1_size, -1, errp) ||
        !snapshot_end(s, errp)) {
        return false;
    }
    trace_event("qcow2_snapshot_goto_commit", "l1_size=%u", s->goto_undo_l1_size);
    return true;
}

bool qcow2_snapshot_goto_abort(BlockDriverState *bs, GError **errp)
{
    Qcow2State *s = bs->opaque;
    g_autofree uint64_t *cur_l1 = NULL;
    uint32_t cur_size = s->l1_size;

    if (!snapshot_goto_pending(s, errp)) {
        return false;
    }
    /* The replaced tree kept its references: it becomes the active one again. */
    cur_l1 = snapshot_copy_active_l1(s);
    if (!snapshot_switch_active_l1(s, s->goto_undo_l1, s->goto_undo_l1_size, errp) ||
        !snapshot_set_disk_size(s, s->goto_undo_size, errp)) {
        return false;
    }
    g_clear_pointer(&s->goto_undo_l1, g_free);
    /* What the revert made active (and anything written since) loses its user. */
    if (!qcow2_update_snapshot_refcount(s, cur_l1, cur_size, -1, errp) ||
        !qcow2_fix_copied_flags(s, errp) || !snapshot_end(s, errp)) {
        return false;
    }
    trace_event("qcow2_snapshot_goto_abort", "l1_size=%u", cur_size);
    return true;
}

bool qcow2_snapshot_load_vmstate(BlockDriverState *bs, const char *id, void *buf,
                                 uint64_t pos, uint64_t size, GError **errp)
{
    Qcow2State *s = bs->opaque;
    g_autofree uint64_t *snap_l1 = NULL;
    uint64_t *active_l1 = s->l1_table;
    uint32_t active_size = s->l1_size;
    uint64_t active_disk_size = s->size;
    Qcow2Snapshot *sn = snapshot_lookup(s, id, &snap_l1, errp);
    bool ok;

    if (!sn) {
        return false;
    }
    /*
     * Read through the snapshot's L1 in place of the active one. Reads
     * change no metadata, and the L2 cache is keyed by table offset, so the
     * active image is untouched.
     */
    s->l1_table = snap_l1;
    s->l1_size = sn->l1_size;
    s->size = sn->disk_size;
    ok = qcow2_vmstate_range_ok(s, pos, size, errp) &&
         qcow2_read_guest(s, qcow2_vm_state_offset(s) + pos, buf, size, errp);
    s->l1_table = active_l1;
    s->l1_size = active_size;
    s->size = active_disk_size;
    return ok;
}

bool qcow2_snapshot_delete(BlockDriverState *bs, const char *id, GError **errp)
{
    Qcow2State *s = bs->opaque;
    int idx = snapshot_find_id(s, id);
    bool dirty = s->version >= 3;
    g_autofree uint64_t *snap_l1 = NULL;
    g_autofree Qcow2Snapshot *list = NULL;
    SnapshotTable table;
    Qcow2Snapshot removed;
    uint32_t nb;

    if (idx < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "Can't find snapshot '%s'",
                    id);
        return false;
    }
    snap_l1 = snapshot_read_l1(s, &s->snapshots[idx], errp);
    if (!snap_l1 || !snapshot_begin(s, errp)) {
        return false;
    }
    nb = s->nb_snapshots - 1;
    list = g_new0(Qcow2Snapshot, nb + 1);
    memcpy(list, s->snapshots, idx * sizeof(*list));
    memcpy(list + idx, s->snapshots + idx + 1, (nb - idx) * sizeof(*list));
    removed = s->snapshots[idx];
    if (!snapshot_table_write(s, list, nb, &table, errp)) {
        return false;
    }
    /*
     * Its tree loses a user, its L1 copy goes, and COPIED follows the
     * refcounts again: inside the dirty section before the commit (nothing
     * is allocated after this), on a version 2 image after it.
     */
    if (dirty &&
        (!qcow2_update_snapshot_refcount(s, snap_l1, removed.l1_size, -1, errp) ||
         !qcow2_update_refcount(s, removed.l1_table_offset, (uint64_t)removed.l1_size * 8,
                                -1, errp) ||
         !qcow2_fix_copied_flags(s, errp))) {
        return false;
    }
    if (!snapshot_table_commit(s, &table, errp)) {
        return false;
    }
    g_free(s->snapshots);
    s->snapshots = g_steal_pointer(&list);
    if (!dirty &&
        (!qcow2_update_snapshot_refcount(s, snap_l1, removed.l1_size, -1, errp) ||
         !qcow2_update_refcount(s, removed.l1_table_offset, (uint64_t)removed.l1_size * 8,
                                -1, errp) ||
         !qcow2_fix_copied_flags(s, errp))) {
        snapshot_clear(&removed);
        return false;
    }
    trace_event("qcow2_snapshot_delete", "id=%s", removed.id_str);
    snapshot_clear(&removed);
    return true;
}

int qcow2_snapshot_list(BlockDriverState *bs, BlockSnapshotInfo **list)
{
    Qcow2State *s = bs->opaque;
    BlockSnapshotInfo *l = g_new0(BlockSnapshotInfo, s->nb_snapshots + 1);

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];
        l[i].id_str = g_strdup(sn->id_str);
        l[i].name = g_strdup(sn->name);
        l[i].vm_state_size = sn->vm_state_size;
        l[i].date_sec = sn->date_sec;
        l[i].date_nsec = sn->date_nsec;
        l[i].vm_clock_nsec = sn->vm_clock_nsec;
        l[i].icount = sn->icount;
        l[i].disk_size = sn->disk_size;
    }
    *list = l;
    return s->nb_snapshots;
}
