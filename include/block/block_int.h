/*
 * Inside the block layer: the driver interface and the BlockDriverState
 * layout. Only block/ and tools/ include this; the rest of tpmvm uses
 * block/block.h.
 *
 * A BlockDriverState is one node: a protocol node (file) talks to the host,
 * a format node (raw, qcow2) or a filter (blkcrash) sits above exactly one
 * child node called "file". Public bdrv_* functions take the node's lock and
 * call the driver; drivers call bdrv_* on their child.
 */
#ifndef BLOCK_BLOCK_INT_H
#define BLOCK_BLOCK_INT_H

#include "block/block.h"
#include "crypto/luks.h"

/* Extra open flags used inside the block layer and by tpmvm-img. */
#define BDRV_O_WRITETHROUGH                                                              \
    0x4000 /* flush after every write (cache=writethrough|directsync) */
#define BDRV_O_FORCE_SHARE 0x8000 /* -U: read-only, share every permission */
#define BDRV_O_CHECK 0x10000      /* opened for check: no automatic dirty repair */
#define BDRV_O_NO_IO 0x20000      /* metadata only (info): no secret needed */
#define BDRV_O_CREATE 0x40000     /* file protocol: create/truncate the file */

/* Result of a consistency check (counts as in qemu-img check). */
typedef struct BdrvCheckResult {
    int64_t corruptions;
    int64_t leaks;
    int64_t check_errors;
    int64_t corruptions_fixed;
    int64_t leaks_fixed;
    int64_t image_end_offset;
    int64_t total_clusters;
    int64_t allocated_clusters;
    int64_t fragmented_clusters;
    int64_t compressed_clusters;
} BdrvCheckResult;

typedef enum {
    BDRV_FIX_NONE = 0,
    BDRV_FIX_LEAKS = 1,
    BDRV_FIX_ERRORS = 2,
    BDRV_CHECK_QUIET = 4, /* no per-cluster messages on stderr */
} BdrvCheckMode;

/* block_status answers */
#define BDRV_BLOCK_DATA 0x1 /* bytes are stored in the image */
#define BDRV_BLOCK_ZERO 0x2 /* bytes read as zero */

/* What `tpmvm-img info` shows beyond sizes (format-specific information). */
typedef struct BlockDriverInfo {
    uint64_t cluster_size;
    bool encrypted;
    bool dirty;
    bool is_qcow2;
    uint32_t qcow2_version;
    uint32_t refcount_bits;
    bool lazy_refcounts;
    bool corrupt;
    bool extended_l2;
    const char *compression_type;
    const char *encrypt_format; /* "luks", "aes" or NULL */
    bool has_luks_info;
    LuksInfo luks;
} BlockDriverInfo;

typedef struct BlockDriver {
    const char *format_name;
    size_t instance_size;
    bool is_protocol; /* opened from a filename, has no "file" child */
    bool is_filter;   /* passes data through to its child */
    bool test_only;   /* never probed, not listed to users */

    /* Score 0..100 for "buf (the first bytes of a file) is this format". */
    int (*probe)(const uint8_t *buf, size_t len);
    /* Create an image at filename with the given virtual size. */
    bool (*create)(const char *filename, uint64_t size, KeyVal *opts, GError **errp);

    bool (*open)(BlockDriverState *bs, KeyVal *opts, int flags, GError **errp);
    void (*close)(BlockDriverState *bs);
    bool (*pread)(BlockDriverState *bs, uint64_t offset, void *buf, uint64_t bytes,
                  GError **errp);
    bool (*pwrite)(BlockDriverState *bs, uint64_t offset, const void *buf, uint64_t bytes,
                   GError **errp);
    bool (*flush)(BlockDriverState *bs, GError **errp);
    int64_t (*getlength)(BlockDriverState *bs);
    bool (*truncate)(BlockDriverState *bs, uint64_t size, GError **errp);
    int64_t (*get_allocated_size)(BlockDriverState *bs);
    /* Status of the run starting at offset: BDRV_BLOCK_* flags, *pnum bytes. */
    int (*block_status)(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                        uint64_t *pnum, GError **errp);
    /* Write one whole cluster compressed (convert -c). */
    bool (*write_compressed)(BlockDriverState *bs, uint64_t offset, const void *buf,
                             uint64_t bytes, GError **errp);
    uint64_t (*cluster_size)(BlockDriverState *bs);
    bool (*is_encrypted)(const BlockDriverState *bs);

    bool (*snapshot_create)(BlockDriverState *bs, BlockSnapshotInfo *sn, GError **errp);
    bool (*snapshot_goto_prepare)(BlockDriverState *bs, const char *id, GError **errp);
    bool (*snapshot_goto_commit)(BlockDriverState *bs, GError **errp);
    bool (*snapshot_goto_abort)(BlockDriverState *bs, GError **errp);
    bool (*snapshot_load_vmstate)(BlockDriverState *bs, const char *id, void *buf,
                                  uint64_t pos, uint64_t size, GError **errp);
    bool (*snapshot_delete)(BlockDriverState *bs, const char *id, GError **errp);
    int (*snapshot_list)(BlockDriverState *bs, BlockSnapshotInfo **list);
    bool (*save_vmstate)(BlockDriverState *bs, const void *buf, uint64_t pos,
                         uint64_t size, GError **errp);
    bool (*load_vmstate)(BlockDriverState *bs, void *buf, uint64_t pos, uint64_t size,
                         GError **errp);
    bool (*check)(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                  GError **errp);
    bool (*amend)(BlockDriverState *bs, KeyVal *opts, GError **errp);
    bool (*get_info)(BlockDriverState *bs, BlockDriverInfo *bdi, GError **errp);
} BlockDriver;

struct BlockDriverState {
    const BlockDriver *drv;
    void *opaque;           /* driver state, drv->instance_size bytes */
    BlockDriverState *file; /* child node or NULL */
    char *filename;
    char *id; /* -drive id or -blockdev node-name (may be NULL) */
    char *claimed_by;
    int flags; /* BDRV_O_* */
    bool read_only;
    bool probed_raw; /* format guessed as raw: protect sector 0 */
    int refcnt;
    GRecMutex lock;
};

/* The driver registered under this name, or NULL. */
const BlockDriver *bdrv_find_format(const char *name);
/* Open a child node from the "file." options of opts (or the "file" node-name). */
BlockDriverState *bdrv_open_child(const char *filename, KeyVal *opts, int flags,
                                  GError **errp);
void bdrv_unref(BlockDriverState *bs);
void bdrv_ref(BlockDriverState *bs);

bool bdrv_truncate(BlockDriverState *bs, uint64_t size, GError **errp);
int64_t bdrv_get_allocated_size(BlockDriverState *bs);
/* Length of the node's own storage (for a protocol node: the file size). */
int64_t bdrv_get_file_length(BlockDriverState *bs);
int bdrv_block_status(BlockDriverState *bs, uint64_t offset, uint64_t bytes,
                      uint64_t *pnum, GError **errp);
bool bdrv_write_compressed(BlockDriverState *bs, uint64_t offset, const void *buf,
                           uint64_t bytes, GError **errp);
uint64_t bdrv_cluster_size(BlockDriverState *bs);
bool bdrv_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                GError **errp);
bool bdrv_create(const char *format, const char *filename, uint64_t size, KeyVal *opts,
                 GError **errp);
bool bdrv_amend(BlockDriverState *bs, KeyVal *opts, GError **errp);
bool bdrv_get_info(BlockDriverState *bs, BlockDriverInfo *bdi, GError **errp);
/* True if the driver can check images (qemu-img check rc 63 otherwise). */
bool bdrv_can_check(BlockDriverState *bs);

extern const BlockDriver bdrv_file;
extern const BlockDriver bdrv_raw;
extern const BlockDriver bdrv_qcow2;
extern const BlockDriver bdrv_blkcrash;

#endif
