/*
 * The block layer as the rest of tpmvm sees it: drives opened from -drive /
 * -blockdev options, byte-granular I/O, internal snapshots and the vmstate
 * area. Nothing here knows about TPMs.
 *
 * Thread rule: a BlockDriverState may be used from one thread at a time; each
 * one has an internal lock so that the TPM worker (while a command runs) and
 * the main thread (only while the TPM is drained) never race.
 */
#ifndef BLOCK_BLOCK_H
#define BLOCK_BLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "util/keyval.h"

typedef struct BlockDriverState BlockDriverState;

/* Open flags */
#define BDRV_O_RDWR 0x0002
#define BDRV_O_NOCACHE 0x0020  /* O_DIRECT (cache=none|directsync) */
#define BDRV_O_NO_FLUSH 0x0200 /* cache=unsafe */
#define BDRV_O_NO_LOCK 0x1000  /* file.locking=off */

/*
 * Open an image. `opts` holds driver options in dotted form (driver=qcow2,
 * file.filename=..., encrypt.key-secret=..., cache=...); filename may be NULL
 * if opts has file.filename. Opening never modifies the image unless it is
 * read-write and needs a repair (dirty bit), and a failed open never does.
 */
BlockDriverState *bdrv_open(const char *filename, KeyVal *opts, int flags, GError **errp);
void bdrv_close(BlockDriverState *bs);

/*
 * Create an image like "qemu-img create -f FORMAT -o OPTS FILE SIZE"; opts in
 * -o form (encrypt.format=luks, encrypt.key-secret=ID, ...). Also declared in
 * block_int.h; here for users outside block/ (the TPM's path= image).
 */
bool bdrv_create(const char *format, const char *filename, uint64_t size, KeyVal *opts,
                 GError **errp);

/* -drive if=none,id=ID,file=F,format=qcow2,... : open and register under id. */
BlockDriverState *drive_new_from_string(const char *optstr, GError **errp);
/* -blockdev driver=qcow2,node-name=N,file.driver=file,file.filename=F,... */
BlockDriverState *blockdev_new_from_string(const char *optstr, GError **errp);
/* Find a drive by id or node-name. */
BlockDriverState *drive_find(const char *id);
void drive_foreach(void (*fn)(BlockDriverState *bs, void *opaque), void *opaque);
void drive_close_all(void);
/* Claim a drive for one user (a second claim fails naming the first user). */
bool drive_claim(BlockDriverState *bs, const char *user, GError **errp);

const char *bdrv_get_id(const BlockDriverState *bs); /* drive id / node name */
const char *bdrv_get_filename(const BlockDriverState *bs);
const char *bdrv_get_format_name(const BlockDriverState *bs); /* "qcow2", "raw" */
bool bdrv_is_read_only(const BlockDriverState *bs);
bool bdrv_is_encrypted(const BlockDriverState *bs);
int64_t bdrv_getlength(BlockDriverState *bs); /* virtual size */

bool bdrv_pread(BlockDriverState *bs, uint64_t offset, void *buf, uint64_t bytes,
                GError **errp);
bool bdrv_pwrite(BlockDriverState *bs, uint64_t offset, const void *buf, uint64_t bytes,
                 GError **errp);
bool bdrv_flush(BlockDriverState *bs, GError **errp);

/* Internal snapshots (qcow2) */
typedef struct BlockSnapshotInfo {
    char *id_str;
    char *name;
    uint64_t vm_state_size;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    int64_t icount; /* -1: none */
    uint64_t disk_size;
} BlockSnapshotInfo;

void block_snapshot_info_clear(BlockSnapshotInfo *sn);

bool bdrv_can_snapshot(BlockDriverState *bs);
/* Fills sn->id_str if empty. */
bool bdrv_snapshot_create(BlockDriverState *bs, BlockSnapshotInfo *sn, GError **errp);
bool bdrv_snapshot_goto(BlockDriverState *bs, const char *name_or_id, GError **errp);
/*
 * A revert that can be taken back, for loadvm across several drives:
 * prepare switches the drive to snapshot `id` (an id, not a name) but keeps
 * what it held until commit lets it go or abort puts it back. At most one
 * revert is pending per drive; closing the drive commits it.
 */
bool bdrv_snapshot_goto_prepare(BlockDriverState *bs, const char *id, GError **errp);
bool bdrv_snapshot_goto_commit(BlockDriverState *bs, GError **errp);
bool bdrv_snapshot_goto_abort(BlockDriverState *bs, GError **errp);
/* Read the vmstate of snapshot `id` without reverting to it. */
bool bdrv_snapshot_load_vmstate(BlockDriverState *bs, const char *id, void *buf,
                                uint64_t pos, uint64_t size, GError **errp);
bool bdrv_snapshot_delete(BlockDriverState *bs, const char *id, const char *name,
                          GError **errp);
/* Array of snapshots (caller frees with block_snapshot_info_clear + g_free). */
int bdrv_snapshot_list(BlockDriverState *bs, BlockSnapshotInfo **list);
bool bdrv_snapshot_find(BlockDriverState *bs, const char *name_or_id,
                        BlockSnapshotInfo *out);

/* The vmstate area (beyond the end of the disk; any offset and length). */
bool bdrv_save_vmstate(BlockDriverState *bs, const void *buf, uint64_t pos, uint64_t size,
                       GError **errp);
bool bdrv_load_vmstate(BlockDriverState *bs, void *buf, uint64_t pos, uint64_t size,
                       GError **errp);

#endif
