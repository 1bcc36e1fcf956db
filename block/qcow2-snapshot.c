/*
 * qcow2 internal snapshots: the snapshot table, create, goto (apply), delete
 * and list (qcow2 spec "Snapshots"; QEMU 7.2 qcow2-snapshot.c behaviour).
 *
 * Each operation runs inside the dirty bit: refcounts and COPIED flags live
 * in different clusters and cannot change atomically, so a crash in the
 * middle leaves a dirty image that the next read/write open repairs. The
 * commit point of create and delete is the one 12-byte header write that
 * switches (nb_snapshots, snapshots_offset); for goto it is the write of the
 * snapshot's L1 over the active L1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qcow2.h"
#include "util/error.h"
#include "util/trace.h"

#define SN_HEADER_SIZE 40
#define SN_EXTRA_SIZE 24 /* vm_state_size_large, disk_size, icount */

static inline uint16_t be16_at(const uint8_t *p)
{
    return (uint16_t)p[0] << 8 | p[1];
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = v >> 8;
    p[1] = v;
}

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

/*
 * Write `list` as the new snapshot table and switch the header to it. The
 * header write is the commit point; the old table is freed afterwards.
 */
static bool snapshot_write_table(Qcow2State *s, Qcow2Snapshot *list, uint32_t nb,
                                 GError **errp)
{
    uint64_t size = 0, new_off = 0, pos = 0;
    uint64_t old_off = s->snapshots_offset, old_size = s->snapshots_size;
    uint32_t old_nb = s->nb_snapshots;
    g_autofree uint8_t *buf = NULL;
    uint8_t header[12];

    for (uint32_t i = 0; i < nb; i++) {
        size += snapshot_entry_size(&list[i]);
    }
    if (size > QCOW2_MAX_SNAPSHOTS_BYTES) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Snapshot table of '%s' would exceed %u MiB", s->bs->filename,
                    QCOW2_MAX_SNAPSHOTS_BYTES >> 20);
        return false;
    }
    if (nb) {
        buf = g_malloc0(size);
        for (uint32_t i = 0; i < nb; i++) {
            Qcow2Snapshot *sn = &list[i];
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
        if (!qcow2_alloc_clusters(s, size, &new_off, errp)) {
            return false;
        }
        if (!bdrv_pwrite(s->file, new_off, buf, size, errp)) {
            qcow2_free_later(s, new_off, size);
            return false;
        }
        s->unsynced = true;
    }
    /* Table and its refcount durable, then the one-write commit. */
    if (!qcow2_flush_metadata(s, errp)) {
        return false;
    }
    put_be32(header, nb);
    put_be64(header + 4, new_off);
    if (!qcow2_write_header_field(s, QCOW2_OFF_NB_SNAPSHOTS, header, 12, errp)) {
        return false;
    }
    s->nb_snapshots = nb;
    s->snapshots_offset = new_off;
    s->snapshots_size = size;
    trace_event("qcow2_snapshot_table", "nb=%u offset=0x%" G_GINT64_MODIFIER "x", nb,
                new_off);
    if (old_nb) {
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

static bool snapshot_begin(Qcow2State *s, GError **errp)
{
    if (s->read_only) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION, "Image '%s' is read-only",
                    s->bs->filename);
        return false;
    }
    return qcow2_flush_metadata(s, errp) &&
           qcow2_set_incompat_bits(s, QCOW2_INCOMPAT_DIRTY, 0, errp);
}

static bool snapshot_end(Qcow2State *s, GError **errp)
{
    return qcow2_flush_metadata(s, errp) &&
           qcow2_set_incompat_bits(s, 0, QCOW2_INCOMPAT_DIRTY, errp);
}

bool qcow2_snapshot_create(BlockDriverState *bs, BlockSnapshotInfo *info, GError **errp)
{
    Qcow2State *s = bs->opaque;
    g_autofree Qcow2Snapshot *list = NULL;
    g_autofree uint8_t *l1buf = NULL;
    g_autofree char *id = NULL;
    uint64_t l1_bytes = (uint64_t)s->l1_size * 8, copy_off = 0;
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
    if (!qcow2_flush_metadata(s, errp) ||
        !qcow2_snapshot_refcount_precheck(s, s->l1_table, s->l1_size, errp) ||
        !snapshot_begin(s, errp)) {
        return false;
    }

    /* 1: a copy of the active L1, as it is (COPIED bits included). */
    if (l1_bytes) {
        l1buf = g_malloc0(l1_bytes);
        for (uint32_t i = 0; i < s->l1_size; i++) {
            put_be64(l1buf + i * 8, s->l1_table[i]);
        }
        if (!qcow2_alloc_clusters(s, l1_bytes, &copy_off, errp)) {
            return false;
        }
        if (!bdrv_pwrite(s->file, copy_off, l1buf, l1_bytes, errp)) {
            goto fail_copy;
        }
        s->unsynced = true;
    }
    /* 2: everything reachable is now shared: +1, and COPIED goes away. A
     * failure here (I/O) leaves the dirty bit for the next open to repair. */
    if (!qcow2_update_snapshot_refcount(s, s->l1_table, s->l1_size, 1, errp)) {
        return false;
    }
    if (!qcow2_fix_copied_flags(s, errp) || !qcow2_flush_metadata(s, errp)) {
        return false;
    }

    /* 3: the new table; its header switch is the commit point. */
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
    if (!snapshot_write_table(s, list, s->nb_snapshots + 1, errp)) {
        g_free(sn->name);
        return false;
    }
    g_free(s->snapshots);
    s->snapshots = g_steal_pointer(&list);
    id = NULL; /* owned by the table now */
    sn = &s->snapshots[s->nb_snapshots - 1];

    /* 4: the active vmstate is not needed any more (QEMU discards it too). */
    if (info->vm_state_size &&
        !qcow2_discard_guest(
            s, qcow2_vm_state_offset(s),
            (info->vm_state_size + s->cluster_size - 1) & ~(s->cluster_size - 1), errp)) {
        return false;
    }
    if (!snapshot_end(s, errp)) {
        return false;
    }
    if (!info->id_str || !info->id_str[0]) {
        g_free(info->id_str);
        info->id_str = g_strdup(sn->id_str);
    }
    info->disk_size = sn->disk_size;
    trace_event("qcow2_snapshot_create", "id=%s name=%s", sn->id_str, sn->name);
    return true;

fail_copy:
    /* Nothing is shared yet: give the copy back; the image is clean again. */
    qcow2_free_later(s, copy_off, l1_bytes);
    snapshot_end(s, NULL);
    return false;
}

bool qcow2_snapshot_goto(BlockDriverState *bs, const char *id, GError **errp)
{
    Qcow2State *s = bs->opaque;
    int idx = snapshot_find_id(s, id);
    g_autofree uint64_t *snap_l1 = NULL;
    g_autofree uint64_t *old_l1 = NULL;
    g_autofree uint8_t *buf = NULL;
    Qcow2Snapshot *sn;
    uint32_t old_size;
    uint64_t want;

    if (idx < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "Can't find snapshot '%s'",
                    id);
        return false;
    }
    sn = &s->snapshots[idx];
    snap_l1 = snapshot_read_l1(s, sn, errp);
    if (!snap_l1) {
        return false;
    }
    want = MAX((uint64_t)sn->l1_size, qcow2_size_to_l1(s, sn->disk_size));
    if (want > qcow2_max_l1_entries() || sn->disk_size > INT64_MAX) {
        g_autofree char *shown = snapshot_id_shown(sn->id_str);

        qcow2_signal_corruption(s, errp, "Snapshot '%s' has an invalid disk size", shown);
        return false;
    }
    if (!qcow2_flush_metadata(s, errp) ||
        !qcow2_snapshot_refcount_precheck(s, snap_l1, sn->l1_size, errp) ||
        !snapshot_begin(s, errp) || !qcow2_grow_l1(s, want, true, errp)) {
        return false;
    }
    /* 1: the snapshot's clusters gain the active image as a user. */
    if (!qcow2_update_snapshot_refcount(s, snap_l1, sn->l1_size, 1, errp) ||
        !qcow2_flush_metadata(s, errp)) {
        return false;
    }
    /* 2: the commit: the snapshot's L1 over the active L1, in place. */
    old_size = s->l1_size;
    old_l1 = g_memdup2(s->l1_table, (uint64_t)old_size * 8);
    buf = g_malloc0((uint64_t)old_size * 8 + 1);
    for (uint32_t i = 0; i < sn->l1_size; i++) {
        put_be64(buf + i * 8, snap_l1[i]);
    }
    if (!bdrv_pwrite(s->file, s->l1_table_offset, buf, (uint64_t)old_size * 8, errp)) {
        return false;
    }
    s->unsynced = true;
    if (!qcow2_file_flush(s, errp)) {
        return false;
    }
    memset(s->l1_table, 0, (uint64_t)old_size * 8);
    memcpy(s->l1_table, snap_l1, (uint64_t)sn->l1_size * 8);
    s->l1_dirty = false;

    /* 3: the old active tree loses its user. */
    if (!qcow2_update_snapshot_refcount(s, old_l1, old_size, -1, errp)) {
        return false;
    }
    if (sn->disk_size != s->size) {
        uint8_t be[8];
        put_be64(be, sn->disk_size);
        if (!qcow2_flush_metadata(s, errp) ||
            !qcow2_write_header_field(s, QCOW2_OFF_SIZE, be, 8, errp)) {
            return false;
        }
        s->size = sn->disk_size;
    }
    /* 4: COPIED follows the refcounts again. */
    if (!qcow2_fix_copied_flags(s, errp) || !snapshot_end(s, errp)) {
        return false;
    }
    trace_event("qcow2_snapshot_goto", "id=%s", id);
    return true;
}

bool qcow2_snapshot_delete(BlockDriverState *bs, const char *id, GError **errp)
{
    Qcow2State *s = bs->opaque;
    int idx = snapshot_find_id(s, id);
    g_autofree uint64_t *snap_l1 = NULL;
    g_autofree Qcow2Snapshot *list = NULL;
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
    /* 1: the table without the entry (commit point). */
    nb = s->nb_snapshots - 1;
    list = g_new0(Qcow2Snapshot, nb + 1);
    memcpy(list, s->snapshots, idx * sizeof(*list));
    memcpy(list + idx, s->snapshots + idx + 1, (nb - idx) * sizeof(*list));
    if (!snapshot_write_table(s, list, nb, errp)) {
        return false;
    }
    removed = s->snapshots[idx];
    g_free(s->snapshots);
    s->snapshots = g_steal_pointer(&list);

    /* 2: its tree loses a user, its L1 copy goes. */
    if (!qcow2_update_snapshot_refcount(s, snap_l1, removed.l1_size, -1, errp) ||
        !qcow2_update_refcount(s, removed.l1_table_offset, (uint64_t)removed.l1_size * 8,
                               -1, errp)) {
        snapshot_clear(&removed);
        return false;
    }
    trace_event("qcow2_snapshot_delete", "id=%s", removed.id_str);
    snapshot_clear(&removed);
    /* 3: COPIED follows the refcounts again. */
    return qcow2_fix_copied_flags(s, errp) && snapshot_end(s, errp);
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
