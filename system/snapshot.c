/*
 * VM snapshots: savevm / loadvm / delvm over the internal snapshots of the
 * VM's qcow2 drives. See include/system/snapshot.h and docs/snapshots.md.
 *
 * Save: stop the vCPUs, drain the TPM (no command in flight, NVRAM flushed to
 * its drive), stream every vmstate section into the
 * vmstate area of one drive, then create snapshot TAG on every drive - all
 * or none: a failure deletes the ones already made. Resume if it ran.
 *
 * Load is all-or-nothing. The state is read from the snapshot without
 * reverting anything and checked by vmstate's first phase (which changes
 * nothing when it fails). Then every drive reverts in two steps: prepare
 * switches it to TAG but keeps what it held, and only when the TPM has
 * re-read its NVRAM and the device state applied does commit let the old
 * contents go. On any failure every prepared drive aborts (its old contents
 * come back), the TPM re-reads its store, and the devices get back the state
 * kept aside before, so the VM, the TPM and the drives are as they were.
 */
#include "system/snapshot.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"
#include "hw/core/machine.h"
#include "hw/core/vmstate.h"
#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_builtin.h"
#include "system/clock.h"
#include "system/runstate.h"
#include "util/byteorder.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

#include <zlib.h>

/* Room beyond RAM for every other section (TPM blobs are at most a few MiB). */
#define SNAPSHOT_VMSTATE_SLACK (64ull << 20)

/*
 * The vmstate area starts with a small header (docs/snapshots.md) so that a
 * truncated, damaged or newer state is recognised before any of it is
 * parsed: magic "TPSN", u32 version, u64 stream length, u32 CRC-32 of the
 * stream, u32 zero; then the vmstate stream. Big-endian.
 */
#define SNAPSHOT_HDR_MAGIC "TPSN"
#define SNAPSHOT_HDR_VERSION 1
#define SNAPSHOT_HDR_SIZE 24

/* One drive taking part in an operation. */
typedef struct SnapDrive {
    BlockDriverState *bs;
    char *tag_id; /* id of snapshot TAG on this drive, or NULL */
    uint64_t vm_state_size;
    char *new_id;  /* save: the snapshot created by this operation */
    bool reverted; /* load: a revert to TAG is prepared, not yet committed */
} SnapDrive;

typedef struct SnapSet {
    GPtrArray *drives;  /* SnapDrive * */
    SnapDrive *vmstate; /* the drive holding the device state, or NULL */
} SnapSet;

/* What the run state was before an operation stopped the VM. */
typedef struct SnapRun {
    RunState prev;
    bool was_running;
} SnapRun;

static void snap_drive_free(gpointer p)
{
    SnapDrive *d = p;

    g_free(d->tag_id);
    g_free(d->new_id);
    g_free(d);
}

static void snap_set_free(SnapSet *set)
{
    if (set) {
        g_ptr_array_unref(set->drives);
        g_free(set);
    }
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapSet, snap_set_free)

/* "drive 'ID' (FILE)" for messages. */
static char *drive_desc(BlockDriverState *bs)
{
    return g_strdup_printf("drive '%s' (%s)", bdrv_get_id(bs), bdrv_get_filename(bs));
}

static void collect_one(BlockDriverState *bs, void *opaque)
{
    g_ptr_array_add(opaque, bs);
}

/*
 * Why `bs` cannot take part in a consistent snapshot, or NULL. A drive a
 * snapshot would not cover could hold data that no longer matches the RAM
 * and device state put back by loadvm.
 */
static char *drive_refusal(BlockDriverState *bs)
{
    g_autofree char *desc = drive_desc(bs);
    const char *fmt = bdrv_get_format_name(bs);

    if (bdrv_is_read_only(bs)) {
        return g_strdup_printf("%s is read-only, so a snapshot could not be reverted on "
                               "it; open it read-write, or leave it out with the QMP "
                               "'devices' argument",
                               desc);
    }
    if (!fmt || strcmp(fmt, "qcow2") != 0 || !bdrv_can_snapshot(bs)) {
        return g_strdup_printf("%s has format '%s', which has no internal snapshots; "
                               "convert it to qcow2 (qemu-img convert -O qcow2), or "
                               "leave it out with the QMP 'devices' argument",
                               desc, fmt ? fmt : "?");
    }
    return NULL;
}

/*
 * The drives an operation covers. `strict`: every selected drive must be a
 * writable qcow2 drive (save, load); otherwise drives that are not are
 * skipped when no list was given (delete).
 */
static SnapSet *snap_set_collect(const char *const *devices, const char *vmstate,
                                 bool strict, GError **errp)
{
    g_autoptr(SnapSet) set = g_new0(SnapSet, 1);
    g_autoptr(GPtrArray) all = g_ptr_array_new();

    set->drives = g_ptr_array_new_with_free_func(snap_drive_free);
    if (devices) {
        for (unsigned i = 0; devices[i]; i++) {
            BlockDriverState *bs = drive_find(devices[i]);
            if (!bs) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_FOUND,
                            "Device '%s' in 'devices' is not a drive of this VM (see "
                            "query-block)",
                            devices[i]);
                return NULL;
            }
            for (guint j = 0; j < all->len; j++) {
                if (g_ptr_array_index(all, j) == bs) {
                    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                                "Device '%s' is listed twice in 'devices'", devices[i]);
                    return NULL;
                }
            }
            g_ptr_array_add(all, bs);
        }
    } else {
        drive_foreach(collect_one, all);
    }
    for (guint i = 0; i < all->len; i++) {
        BlockDriverState *bs = g_ptr_array_index(all, i);
        g_autofree char *why = drive_refusal(bs);
        SnapDrive *d;

        if (why && (strict || devices)) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "Cannot take a consistent snapshot: %s", why);
            return NULL;
        }
        if (why) {
            continue;
        }
        d = g_new0(SnapDrive, 1);
        d->bs = bs;
        g_ptr_array_add(set->drives, d);
    }
    if (set->drives->len == 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    devices
                        ? "No drive given in 'devices': a snapshot needs at least one "
                          "qcow2 drive"
                        : "No block device can accept snapshots: the VM has no "
                          "writable qcow2 drive (add one with -drive "
                          "if=none,file=F.qcow2,format=qcow2)");
        return NULL;
    }
    if (vmstate) {
        BlockDriverState *vs = drive_find(vmstate);
        for (guint i = 0; vs && i < set->drives->len; i++) {
            SnapDrive *d = g_ptr_array_index(set->drives, i);
            if (d->bs == vs) {
                set->vmstate = d;
            }
        }
        if (!set->vmstate) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_FOUND,
                        vs ? "Device '%s' for 'vmstate' is not one of the snapshot's "
                             "'devices'; list it there too"
                           : "Device '%s' for 'vmstate' is not a drive of this VM (see "
                             "query-block)",
                        vmstate);
            return NULL;
        }
    }
    return g_steal_pointer(&set);
}

/* Snapshot named `name` on bs (names only: a tag is never taken for an id). */
static bool snap_find_by_name(BlockDriverState *bs, const char *name,
                              BlockSnapshotInfo *out)
{
    BlockSnapshotInfo *list = NULL;
    int n = bdrv_snapshot_list(bs, &list);
    int found = -1;

    for (int i = 0; i < n; i++) {
        if (found < 0 && list[i].name && strcmp(list[i].name, name) == 0) {
            found = i;
        }
    }
    if (found >= 0) {
        *out = list[found];
        memset(&list[found], 0, sizeof(list[found]));
    }
    for (int i = 0; i < n; i++) {
        block_snapshot_info_clear(&list[i]);
    }
    g_free(list);
    return found >= 0;
}

/* TAG as a user means it: a name first, else an id (as loadvm 1 does in QEMU). */
static bool snap_resolve(BlockDriverState *bs, const char *tag, BlockSnapshotInfo *out)
{
    return snap_find_by_name(bs, tag, out) || bdrv_snapshot_find(bs, tag, out);
}

/*
 * Look TAG up on every drive (d->tag_id, d->vm_state_size). Returns the
 * number of drives that have it; *missing / *present name one drive of each
 * kind for messages.
 */
static guint snap_set_lookup(SnapSet *set, const char *tag, bool names_only,
                             SnapDrive **present, SnapDrive **missing)
{
    guint count = 0;

    *present = *missing = NULL;
    for (guint i = 0; i < set->drives->len; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        BlockSnapshotInfo sn = {0};
        bool found = names_only ? snap_find_by_name(d->bs, tag, &sn)
                                : snap_resolve(d->bs, tag, &sn);

        g_clear_pointer(&d->tag_id, g_free);
        d->vm_state_size = 0;
        if (found) {
            d->tag_id = g_steal_pointer(&sn.id_str);
            d->vm_state_size = sn.vm_state_size;
            block_snapshot_info_clear(&sn);
            count++;
            if (!*present) {
                *present = d;
            }
        } else if (!*missing) {
            *missing = d;
        }
    }
    return count;
}

static void snap_error_partial(GError **errp, const char *tag, SnapDrive *present,
                               SnapDrive *missing, const char *what)
{
    g_autofree char *p = drive_desc(present->bs);
    g_autofree char *m = drive_desc(missing->bs);

    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "Snapshot '%s' exists on %s but not on %s, so it is not a consistent VM "
                "snapshot and cannot be %s; remove the leftover copies with delvm %s",
                tag, p, m, what, tag);
}

/* ---- run state ---- */

static bool snap_stop(SnapRun *r, RunState to, GError **errp)
{
    RunState s = runstate_get();

    if (s == RUN_STATE_SAVE_VM || s == RUN_STATE_RESTORE_VM) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Another snapshot operation is in progress; wait for it to finish");
        return false;
    }
    if (to == RUN_STATE_SAVE_VM &&
        (s == RUN_STATE_SHUTDOWN || s == RUN_STATE_INTERNAL_ERROR)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Cannot save a snapshot while the VM is in state '%s'; reset it "
                    "(system_reset) first",
                    runstate_name(s));
        return false;
    }
    r->prev = s;
    r->was_running = runstate_is_running();
    vm_stop(to);
    return true;
}

/* Back to where the VM was; `loaded`: a complete state was just loaded. */
static void snap_resume(const SnapRun *r, bool loaded)
{
    if (r->was_running) {
        vm_start();
    } else if (loaded &&
               (r->prev == RUN_STATE_SHUTDOWN || r->prev == RUN_STATE_INTERNAL_ERROR)) {
        runstate_set(RUN_STATE_PAUSED);
    } else {
        runstate_set(r->prev);
    }
}

/* ---- TPM ---- */

typedef struct TpmWalk {
    bool (*fn)(TPMBackend *be, GError **errp);
    bool ok;
    GError *err;
} TpmWalk;

static void tpm_walk_one(TPMBackend *be, void *opaque)
{
    TpmWalk *w = opaque;

    if (w->ok && !w->fn(be, &w->err)) {
        w->ok = false;
    }
}

static bool tpm_walk(bool (*fn)(TPMBackend *be, GError **errp), GError **errp)
{
    TpmWalk w = {fn, true, NULL};

    tpm_backend_foreach(tpm_walk_one, &w);
    if (!w.ok) {
        g_propagate_error(errp, w.err);
    }
    return w.ok;
}

/* No command in flight, and the NVRAM store on its drive is durable. */
static bool tpm_drain_one(TPMBackend *be, GError **errp)
{
    tpm_backend_finish_sync(be);
    if (tpm_builtin_is_builtin(be) && !tpm_builtin_drain(be, errp)) {
        g_prefix_error(errp, "Cannot drain TPM '%s': ", be->id);
        return false;
    }
    return true;
}

/* The drive under the NVRAM store was reverted: read the store again. */
static bool tpm_reload_one(TPMBackend *be, GError **errp)
{
    if (tpm_builtin_is_builtin(be) && !tpm_builtin_reload_drive(be, errp)) {
        g_prefix_error(errp, "TPM '%s' cannot re-read its NVRAM: ", be->id);
        return false;
    }
    return true;
}

static bool tpm_power_cycle_one(TPMBackend *be, GError **errp)
{
    if (tpm_builtin_is_builtin(be)) {
        return tpm_builtin_power_cycle_from_drive(be, errp);
    }
    /* Nothing of other backends is on a drive; the machine was just reset. */
    return true;
}

/* ---- save ---- */

static void snap_fill_info(BlockSnapshotInfo *sn, const char *tag, uint64_t vm_state_size,
                           BlockDriverState *bs)
{
    int64_t now = g_get_real_time();
    int64_t len = bdrv_getlength(bs);
    int64_t clock = vclock_get_ns();

    memset(sn, 0, sizeof(*sn));
    sn->name = g_strdup(tag);
    sn->vm_state_size = vm_state_size;
    sn->date_sec = (uint32_t)(now / G_USEC_PER_SEC);
    sn->date_nsec = (uint32_t)(now % G_USEC_PER_SEC) * 1000;
    sn->vm_clock_nsec = (uint64_t)MAX(clock, 0);
    sn->icount = -1;
    sn->disk_size = len > 0 ? (uint64_t)len : 0;
}

/* CRC-32 (zlib's, the one qcow2 and gzip use) over any length. */
static uint32_t snap_crc32(const uint8_t *buf, uint64_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);

    while (len) {
        uInt chunk = (uInt)MIN(len, (uint64_t)1 << 30);
        crc = crc32(crc, buf, chunk);
        buf += chunk;
        len -= chunk;
    }
    return (uint32_t)crc;
}

/* Fill the header in front of the stream that follows it in `area`. */
static void snap_header_fill(GByteArray *area)
{
    uint64_t len = area->len - SNAPSHOT_HDR_SIZE;

    memcpy(area->data, SNAPSHOT_HDR_MAGIC, 4);
    put_be(area->data + 4, SNAPSHOT_HDR_VERSION, 4);
    put_be(area->data + 8, len, 8);
    put_be(area->data + 16, snap_crc32(area->data + SNAPSHOT_HDR_SIZE, len), 4);
    put_be(area->data + 20, 0, 4);
}

/* Check the header of a vmstate area of `size` bytes; the stream follows it. */
static bool snap_header_check(const uint8_t *area, uint64_t size, const char *what,
                              GError **errp)
{
    uint64_t len;
    uint32_t version;

    if (size < SNAPSHOT_HDR_SIZE || memcmp(area, SNAPSHOT_HDR_MAGIC, 4) != 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s: the VM state (%" G_GUINT64_FORMAT " bytes) is not a tpmvm VM "
                    "state (no 'TPSN' header); it was written by another program or is "
                    "damaged",
                    what, size);
        return false;
    }
    version = (uint32_t)be_at(area + 4, 4);
    if (version != SNAPSHOT_HDR_VERSION) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
            "%s: the VM state has format version %u, but this tpmvm reads version "
            "%d; load it with the tpmvm that saved it",
            what, version, SNAPSHOT_HDR_VERSION);
        return false;
    }
    len = be_at(area + 8, 8);
    if (len != size - SNAPSHOT_HDR_SIZE) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s: the VM state is truncated or damaged: its header announces "
                    "%" G_GUINT64_FORMAT
                    " bytes but the snapshot holds %" G_GUINT64_FORMAT,
                    what, len, size - SNAPSHOT_HDR_SIZE);
        return false;
    }
    if ((uint32_t)be_at(area + 16, 4) != snap_crc32(area + SNAPSHOT_HDR_SIZE, len)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s: the VM state is damaged (CRC-32 mismatch over %" G_GUINT64_FORMAT
                    " bytes)",
                    what, len);
        return false;
    }
    return true;
}

/* Delete the snapshots this operation created (rollback of a failed save). */
static void snap_delete_created(SnapSet *set, const char *tag)
{
    for (guint i = 0; i < set->drives->len; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        GError *err = NULL;

        if (d->new_id && !bdrv_snapshot_delete(d->bs, d->new_id, tag, &err)) {
            g_autofree char *desc = drive_desc(d->bs);
            warn_report("could not remove the partial snapshot '%s' (id %s) from %s: %s",
                        tag, d->new_id, desc, err->message);
            g_error_free(err);
        }
        g_clear_pointer(&d->new_id, g_free);
    }
}

static bool snap_save_stopped(SnapSet *set, const char *tag, GError **errp)
{
    g_autoptr(GByteArray) stream = g_byte_array_new();

    /* bdrv_snapshot_create flushes each drive's caches before it copies the L1. */
    if (!tpm_walk(tpm_drain_one, errp)) {
        return false;
    }
    trace_event("snapshot_save_drained", "tag=%s", tag);
    g_byte_array_set_size(stream, SNAPSHOT_HDR_SIZE);
    if (!vmstate_save_all(stream, errp)) {
        return false;
    }
    snap_header_fill(stream);
    trace_event("snapshot_save_vmstate", "tag=%s bytes=%u", tag, stream->len);
    if (!bdrv_save_vmstate(set->vmstate->bs, stream->data, 0, stream->len, errp)) {
        g_autofree char *desc = drive_desc(set->vmstate->bs);
        g_prefix_error(errp, "Cannot write the VM state to %s: ", desc);
        return false;
    }
    for (guint i = 0; i < set->drives->len; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        BlockSnapshotInfo sn;

        snap_fill_info(&sn, tag, d == set->vmstate ? stream->len : 0, d->bs);
        if (!bdrv_snapshot_create(d->bs, &sn, errp)) {
            g_autofree char *desc = drive_desc(d->bs);
            block_snapshot_info_clear(&sn);
            g_prefix_error(errp, "Cannot create snapshot '%s' on %s: ", tag, desc);
            snap_delete_created(set, tag);
            return false;
        }
        trace_event("snapshot_save_created", "tag=%s drive=%s id=%s", tag,
                    bdrv_get_id(d->bs), sn.id_str);
        d->new_id = g_steal_pointer(&sn.id_str);
        block_snapshot_info_clear(&sn);
    }
    return true;
}

bool snapshot_save(const char *tag, const char *vmstate, const char *const *devices,
                   bool overwrite, GError **errp)
{
    g_autoptr(SnapSet) set = NULL;
    SnapDrive *present, *missing;
    SnapRun run;
    guint have;
    bool ok;

    if (!tag || !*tag) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "A snapshot needs a non-empty tag");
        return false;
    }
    if (strlen(tag) > G_MAXUINT16) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Snapshot tag is %zu bytes long; qcow2 allows at most %u",
                    strlen(tag), G_MAXUINT16);
        return false;
    }
    set = snap_set_collect(devices, vmstate, true, errp);
    if (!set) {
        return false;
    }
    if (!set->vmstate) {
        set->vmstate = g_ptr_array_index(set->drives, 0);
    }
    have = snap_set_lookup(set, tag, true, &present, &missing);
    if (have && !overwrite) {
        g_autofree char *desc = drive_desc(present->bs);
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Snapshot '%s' already exists on %s; delete it first "
                    "(snapshot-delete or delvm) or choose another tag",
                    tag, desc);
        return false;
    }
    if (have && missing) {
        snap_error_partial(errp, tag, present, missing, "replaced");
        return false;
    }
    if (!snap_stop(&run, RUN_STATE_SAVE_VM, errp)) {
        return false;
    }
    trace_event("snapshot_save_start", "tag=%s drives=%u", tag, set->drives->len);
    ok = snap_save_stopped(set, tag, errp);
    if (ok) {
        /* Committed: the old snapshots with this tag go now. */
        for (guint i = 0; i < set->drives->len; i++) {
            SnapDrive *d = g_ptr_array_index(set->drives, i);
            GError *err = NULL;
            if (d->tag_id && !bdrv_snapshot_delete(d->bs, d->tag_id, tag, &err)) {
                g_autofree char *desc = drive_desc(d->bs);
                warn_report("snapshot '%s' was saved, but its older copy (id %s) on %s "
                            "could not be removed: %s",
                            tag, d->tag_id, desc, err->message);
                g_error_free(err);
            }
        }
    }
    snap_resume(&run, false);
    trace_event("snapshot_save_done", "tag=%s ok=%d", tag, ok);
    return ok;
}

/* ---- load ---- */

/* The largest device state this VM could have saved. */
static uint64_t snap_vmstate_limit(void)
{
    uint64_t ram = current_machine ? current_machine->ram_size : 0;

    return ram + ram / (4096 * 8) + SNAPSHOT_VMSTATE_SLACK;
}

/* Abort every prepared revert and let the TPM re-read its (old) store. */
static bool snap_rollback(SnapSet *set, GError **errp)
{
    bool ok = true;

    for (guint i = 0; i < set->drives->len; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        GError *err = NULL;

        if (d->reverted && !bdrv_snapshot_goto_abort(d->bs, &err)) {
            g_autofree char *desc = drive_desc(d->bs);
            if (ok) {
                g_propagate_prefixed_error(errp, err, "%s could not be put back: ", desc);
            } else {
                g_error_free(err);
            }
            ok = false;
            continue;
        }
        d->reverted = false;
    }
    if (ok && !tpm_walk(tpm_reload_one, errp)) {
        ok = false;
    }
    return ok;
}

/* Let go of what every reverted drive held before: the load is complete. */
static void snap_commit(SnapSet *set, const char *tag)
{
    for (guint i = 0; i < set->drives->len; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        GError *err = NULL;

        if (d->reverted && !bdrv_snapshot_goto_commit(d->bs, &err)) {
            g_autofree char *desc = drive_desc(d->bs);
            warn_report("snapshot '%s' was loaded, but %s could not release its old "
                        "contents (%s); qemu-img check -r leaks reclaims the space",
                        tag, desc, err->message);
            g_error_free(err);
        }
        d->reverted = false;
    }
}

/* Read the vmstate of the target snapshot into memory (nothing is reverted). */
static uint8_t *snap_read_vmstate(SnapSet *set, const char *tag, GError **errp)
{
    SnapDrive *vs = set->vmstate;
    uint64_t size = vs->vm_state_size;
    g_autofree char *desc = drive_desc(vs->bs);
    uint8_t *buf;

    if (size > snap_vmstate_limit() || size > G_MAXSIZE) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "Snapshot '%s' on %s claims %" G_GUINT64_FORMAT " bytes of VM state, "
                    "more than this VM can have (%" G_GUINT64_FORMAT
                    "); it was not saved "
                    "by this VM configuration or its snapshot table is damaged",
                    tag, desc, size, snap_vmstate_limit());
        return NULL;
    }
    buf = g_try_malloc(size ? size : 1);
    if (!buf) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "Not enough memory to read %" G_GUINT64_FORMAT " bytes of VM state",
                    size);
        return NULL;
    }
    if (!bdrv_snapshot_load_vmstate(vs->bs, vs->tag_id, buf, 0, size, errp)) {
        g_prefix_error(errp, "Cannot read the VM state of snapshot '%s' from %s: ", tag,
                       desc);
        g_free(buf);
        return NULL;
    }
    return buf;
}

/*
 * Read TAG's device state and check it; nothing changes. NULL with *errp
 * set on failure.
 */
static uint8_t *snap_load_check(SnapSet *set, const char *tag, GError **errp)
{
    g_autofree uint8_t *buf = NULL;
    g_autofree char *what = NULL;
    g_autofree char *desc = drive_desc(set->vmstate->bs);

    buf = snap_read_vmstate(set, tag, errp);
    if (!buf) {
        return NULL;
    }
    what = g_strdup_printf("Snapshot '%s' on %s", tag, desc);
    if (!snap_header_check(buf, set->vmstate->vm_state_size, what, errp)) {
        return NULL;
    }
    trace_event("snapshot_load_read", "tag=%s bytes=%" G_GUINT64_FORMAT, tag,
                set->vmstate->vm_state_size);
    if (!vmstate_check_all(buf + SNAPSHOT_HDR_SIZE,
                           set->vmstate->vm_state_size - SNAPSHOT_HDR_SIZE, errp)) {
        g_prefix_error(errp, "%s cannot be loaded: ", what);
        return NULL;
    }
    return g_steal_pointer(&buf);
}

/*
 * Revert every drive (prepared, not committed), then bring the TPM and the
 * devices to TAG's state (`buf`, checked; NULL for a disk-only snapshot).
 * On failure the caller rolls back; *applying says whether device state may
 * have changed.
 */
static bool snap_load_stopped(SnapSet *set, const char *tag, const uint8_t *buf,
                              bool *applying, GError **errp)
{
    for (guint i = 0; i < set->drives->len; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        if (!bdrv_snapshot_goto_prepare(d->bs, d->tag_id, errp)) {
            g_autofree char *desc = drive_desc(d->bs);
            g_prefix_error(errp, "Cannot revert %s to snapshot '%s': ", desc, tag);
            return false;
        }
        d->reverted = true;
        trace_event("snapshot_load_reverted", "tag=%s drive=%s", tag, bdrv_get_id(d->bs));
    }
    if (!tpm_walk(tpm_reload_one, errp)) {
        return false;
    }
    *applying = true;
    if (!buf) {
        /* No volatile state was saved: what the TPM sees is a power cycle. */
        return tpm_walk(tpm_power_cycle_one, errp);
    }
    if (!vmstate_load_all(buf + SNAPSHOT_HDR_SIZE,
                          set->vmstate->vm_state_size - SNAPSHOT_HDR_SIZE, errp)) {
        g_autofree char *desc = drive_desc(set->vmstate->bs);
        g_prefix_error(errp, "Snapshot '%s' on %s cannot be loaded: ", tag, desc);
        return false;
    }
    return true;
}

/* A load that changed nothing (or was undone): resume, and say so after err. */
static bool snap_load_refused(const SnapRun *run, GError *err, GError **errp)
{
    snap_resume(run, false);
    g_set_error(errp, err->domain, err->code,
                "%s; the VM, its TPM and its drives were left as they were",
                err->message);
    g_error_free(err);
    return false;
}

static bool snap_load(const char *tag, const char *vmstate, const char *const *devices,
                      bool at_startup, GError **errp)
{
    g_autoptr(SnapSet) set = NULL;
    SnapDrive *present, *missing;
    g_autoptr(GByteArray) backup = NULL;
    g_autofree uint8_t *buf = NULL;
    GError *err = NULL, *rb_err = NULL;
    bool disk_only, ok, applying = false;
    SnapRun run;
    guint have;

    if (!tag || !*tag) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Loading a snapshot needs its tag");
        return false;
    }
    set = snap_set_collect(devices, vmstate, true, errp);
    if (!set) {
        return false;
    }
    have = snap_set_lookup(set, tag, false, &present, &missing);
    if (have == 0) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
            "Snapshot '%s' does not exist on any of the VM's %u snapshot drive(s); "
            "see 'info snapshots' for the tags that do",
            tag, set->drives->len);
        return false;
    }
    if (missing) {
        snap_error_partial(errp, tag, present, missing, "loaded");
        return false;
    }
    for (guint i = 0; !set->vmstate && i < set->drives->len; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        if (d->vm_state_size) {
            set->vmstate = d;
        }
    }
    disk_only = !set->vmstate || set->vmstate->vm_state_size == 0;
    if (disk_only && !at_startup) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
            "Snapshot '%s' is a disk-only snapshot (it has no VM state); apply it "
            "at start-up with -loadvm %s, where the TPM sees a power cycle, or "
            "offline with qemu-img snapshot -a",
            tag, tag);
        return false;
    }
    if (!snap_stop(&run, RUN_STATE_RESTORE_VM, errp)) {
        return false;
    }
    trace_event("snapshot_load_start", "tag=%s drives=%u disk_only=%d", tag,
                set->drives->len, disk_only);
    if (!tpm_walk(tpm_drain_one, &err) ||
        (!disk_only && !(buf = snap_load_check(set, tag, &err)))) {
        return snap_load_refused(&run, err, errp);
    }
    /*
     * What the devices and the TPM hold now, without RAM (which loading
     * changes only after every other section applied): put back if applying
     * the snapshot's state fails half-way. At start-up there is nothing to
     * keep, a failure ends the process.
     */
    if (!at_startup) {
        backup = g_byte_array_new();
        ram_vmstate_set_skip(true);
        ok = vmstate_save_all(backup, &err);
        ram_vmstate_set_skip(false);
        trace_event("snapshot_load_backup", "bytes=%u", backup->len);
        if (!ok) {
            g_prefix_error(&err, "Cannot keep the current VM state aside: ");
            snap_resume(&run, false);
            g_propagate_error(errp, err);
            return false;
        }
    }
    if (snap_load_stopped(set, tag, buf, &applying, &err)) {
        snap_commit(set, tag);
        trace_event("snapshot_load_applied", "tag=%s", tag);
        snap_resume(&run, true);
        trace_event("snapshot_load_done", "tag=%s", tag);
        return true;
    }
    trace_event("snapshot_load_rollback", "tag=%s applying=%d: %s", tag, applying,
                err->message);
    if (snap_rollback(set, &rb_err) &&
        (!applying || !backup || vmstate_load_all(backup->data, backup->len, &rb_err))) {
        return snap_load_refused(&run, err, errp);
    }
    runstate_set(RUN_STATE_INTERNAL_ERROR);
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                "%s; putting the VM back also failed (%s). The VM is stopped; loadvm %s "
                "again brings every drive to the snapshot",
                err->message, rb_err->message, tag);
    g_error_free(err);
    g_error_free(rb_err);
    return false;
}

bool snapshot_load(const char *tag, const char *vmstate, const char *const *devices,
                   GError **errp)
{
    return snap_load(tag, vmstate, devices, false, errp);
}

bool snapshot_load_at_startup(const char *tag, GError **errp)
{
    return snap_load(tag, NULL, NULL, true, errp);
}

/* ---- delete ---- */

bool snapshot_delete(const char *tag, const char *const *devices, GError **errp)
{
    g_autoptr(SnapSet) set = NULL;
    SnapDrive *present, *missing;

    if (!tag || !*tag) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Deleting a snapshot needs its tag");
        return false;
    }
    set = snap_set_collect(devices, NULL, false, errp);
    if (!set) {
        return false;
    }
    if (snap_set_lookup(set, tag, false, &present, &missing) == 0) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
            "Snapshot '%s' does not exist on any of the VM's %u snapshot drive(s)", tag,
            set->drives->len);
        return false;
    }
    /* The TPM worker must not write its drive while the main thread changes it. */
    if (!tpm_walk(tpm_drain_one, errp)) {
        return false;
    }
    for (guint i = 0; i < set->drives->len; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        if (d->tag_id && !bdrv_snapshot_delete(d->bs, d->tag_id, NULL, errp)) {
            g_autofree char *desc = drive_desc(d->bs);
            g_prefix_error(errp, "Cannot delete snapshot '%s' from %s: ", tag, desc);
            return false;
        }
    }
    return true;
}

/* ---- info snapshots ---- */

char *snapshot_size_to_str(uint64_t bytes)
{
    static const char *const suffixes[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double div = 1;
    unsigned i = 0;

    /* The largest unit that keeps the number under 1000 (qemu-img's choice). */
    while (i + 1 < G_N_ELEMENTS(suffixes) && (double)bytes >= 1000.0 * div) {
        div *= 1024;
        i++;
    }
    return g_strdup_printf("%0.3g %s", (double)bytes / div, suffixes[i]);
}

static void snap_dump_header(GString *out)
{
    g_string_append_printf(out, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE",
                           "DATE", "VM CLOCK", "ICOUNT");
}

static void snap_dump_row(GString *out, const BlockSnapshotInfo *sn, const char *id)
{
    g_autofree char *size = snapshot_size_to_str(sn->vm_state_size);
    g_autofree char *icount = sn->icount == -1
                                  ? g_strdup("")
                                  : g_strdup_printf("%" G_GINT64_FORMAT, sn->icount);
    char date[32] = "";
    time_t t = (time_t)sn->date_sec;
    struct tm tm;
    uint64_t ms = sn->vm_clock_nsec / 1000000;
    char clock[48];

    if (localtime_r(&t, &tm)) {
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
    }
    g_snprintf(clock, sizeof(clock), "%02" G_GUINT64_FORMAT ":%02u:%02u.%03u",
               ms / 3600000, (unsigned)(ms / 60000 % 60), (unsigned)(ms / 1000 % 60),
               (unsigned)(ms % 1000));
    g_string_append_printf(out, "%-9s %-16s %8s%20s%13s%11s\n", id,
                           sn->name ? sn->name : "", size, date, clock, icount);
}

static bool snap_has_name(BlockSnapshotInfo *list, int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        if (list[i].name && strcmp(list[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

bool snapshot_info(GString *out, GError **errp)
{
    g_autoptr(SnapSet) set = snap_set_collect(NULL, NULL, false, errp);
    BlockSnapshotInfo **lists;
    int *counts;
    guint ndrives;
    int total = 0, available = 0;

    if (!set) {
        return false;
    }
    ndrives = set->drives->len;
    lists = g_new0(BlockSnapshotInfo *, ndrives);
    counts = g_new0(int, ndrives);
    for (guint i = 0; i < ndrives; i++) {
        SnapDrive *d = g_ptr_array_index(set->drives, i);
        int n = bdrv_snapshot_list(d->bs, &lists[i]); /* MAX() would call it twice */
        counts[i] = MAX(n, 0);
        total += counts[i];
    }
    if (total == 0) {
        g_string_append(out, "There is no snapshot available.\n");
    } else {
        /* A snapshot is loadable if every drive has its tag. */
        GString *all = g_string_new(NULL);
        for (int j = 0; j < counts[0]; j++) {
            bool everywhere = true;
            for (guint i = 1; i < ndrives && everywhere; i++) {
                everywhere = snap_has_name(lists[i], counts[i], lists[0][j].name);
            }
            if (everywhere) {
                snap_dump_row(all, &lists[0][j], "--");
                available++;
            }
        }
        g_string_append(out, "List of snapshots present on all disks:\n");
        if (available) {
            snap_dump_header(out);
            g_string_append(out, all->str);
        } else {
            g_string_append(out, "None\n");
        }
        g_string_free(all, TRUE);
        for (guint i = 0; i < ndrives; i++) {
            SnapDrive *d = g_ptr_array_index(set->drives, i);
            bool header = false;
            for (int j = 0; j < counts[i]; j++) {
                bool everywhere = true;
                for (guint k = 0; k < ndrives && everywhere; k++) {
                    everywhere =
                        k == i || snap_has_name(lists[k], counts[k], lists[i][j].name);
                }
                if (everywhere) {
                    continue;
                }
                if (!header) {
                    g_string_append_printf(out,
                                           "\nList of partial (non-loadable) snapshots "
                                           "on '%s':\n",
                                           bdrv_get_id(d->bs));
                    snap_dump_header(out);
                    header = true;
                }
                snap_dump_row(out, &lists[i][j], lists[i][j].id_str);
            }
        }
    }
    for (guint i = 0; i < ndrives; i++) {
        for (int j = 0; j < counts[i]; j++) {
            block_snapshot_info_clear(&lists[i][j]);
        }
        g_free(lists[i]);
    }
    g_free(lists);
    g_free(counts);
    return true;
}

/* ---- start-up ---- */

bool snapshot_startup_hook(void *opaque, GError **errp)
{
    const char *tag = system_loadvm_tag();

    if (current_machine) {
        ram_vmstate_register(current_machine->ram, current_machine->ram_size);
    }
    return !tag || snapshot_load_at_startup(tag, errp);
}
