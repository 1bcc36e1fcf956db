/*
 * qcow2 driver internals shared by the qcow2*.c files.
 *
 * Layout facts come from the qcow2 specification (QEMU docs/interop/qcow2.txt)
 * and the limits from QEMU 7.2's block/qcow2.h, so that images are
 * interchangeable with qemu-img.
 */
#ifndef BLOCK_QCOW2_H
#define BLOCK_QCOW2_H

#include "block/block_int.h"
#include "crypto/luks.h"
#include "util/byteorder.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_DEFAULT_CLUSTER_BITS 16
#define QCOW2_MAX_REFCOUNT_ORDER 6
#define QCOW2_MAX_L1_BYTES (32u * 1024 * 1024)
#define QCOW2_MAX_REFTABLE_BYTES (8u * 1024 * 1024)
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAPSHOTS_BYTES (64u * 1024 * 1024)
#define QCOW2_MAX_SNAPSHOT_EXTRA 1024
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_V2_HEADER_LENGTH 72
#define QCOW2_V3_HEADER_LENGTH 104
#define QCOW2_WRITE_HEADER_LENGTH 112 /* what qemu-img 7.2 writes */

/* Header field offsets (qcow2 spec "Header"). */
#define QCOW2_OFF_SIZE 24
#define QCOW2_OFF_L1_SIZE 36
#define QCOW2_OFF_REFTABLE 48
#define QCOW2_OFF_NB_SNAPSHOTS 60
#define QCOW2_OFF_INCOMPAT 72
#define QCOW2_OFF_AUTOCLEAR 88

#define QCOW2_INCOMPAT_DIRTY (UINT64_C(1) << 0)
#define QCOW2_INCOMPAT_CORRUPT (UINT64_C(1) << 1)
#define QCOW2_INCOMPAT_DATA_FILE (UINT64_C(1) << 2)
#define QCOW2_INCOMPAT_COMPRESSION (UINT64_C(1) << 3)
#define QCOW2_INCOMPAT_EXTL2 (UINT64_C(1) << 4)
#define QCOW2_INCOMPAT_SUPPORTED (QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (UINT64_C(1) << 0)

#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_BITMAPS 0x23852875u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u

#define QCOW2_CRYPT_NONE 0
#define QCOW2_CRYPT_AES 1
#define QCOW2_CRYPT_LUKS 2

/* L1/L2/refcount-table entries (qcow2 spec "Cluster mapping"). */
#define QCOW_OFLAG_COPIED (UINT64_C(1) << 63)
#define QCOW_OFLAG_COMPRESSED (UINT64_C(1) << 62)
#define QCOW_OFLAG_ZERO (UINT64_C(1) << 0)
#define L1E_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L1E_RESERVED_MASK UINT64_C(0x7f000000000001ff)
#define L2E_OFFSET_MASK UINT64_C(0x00fffffffffffe00)
#define L2E_STD_RESERVED_MASK UINT64_C(0x3f000000000001fe)
#define REFT_OFFSET_MASK UINT64_C(0xfffffffffffffe00)
#define REFT_RESERVED_MASK UINT64_C(0x1ff)

#define QCOW2_SECTOR 512
/* Largest run written at once (bounds bounce buffers for encryption and COW). */
#define QCOW2_MAX_RUN (8u << 20)

typedef enum {
    QCOW2_CLUSTER_UNALLOCATED,
    QCOW2_CLUSTER_ZERO_PLAIN,
    QCOW2_CLUSTER_ZERO_ALLOC,
    QCOW2_CLUSTER_NORMAL,
    QCOW2_CLUSTER_COMPRESSED,
} Qcow2ClusterType;

typedef struct Qcow2Snapshot {
    uint64_t l1_table_offset;
    uint32_t l1_size;
    char *id_str;
    char *name;
    uint32_t date_sec;
    uint32_t date_nsec;
    uint64_t vm_clock_nsec;
    uint64_t vm_state_size;
    uint64_t disk_size;
    int64_t icount;
    uint32_t extra_data_size; /* as found on disk; >= 24 when we write */
    uint8_t *unknown_extra;   /* extra data past the fields we know */
    uint32_t unknown_extra_size;
} Qcow2Snapshot;

typedef struct Qcow2UnknownExt {
    uint32_t type;
    uint32_t len;
    uint8_t *data;
} Qcow2UnknownExt;

/* One metadata table (L2 table or refcount block) kept in memory. */
typedef struct Qcow2CacheEntry {
    uint64_t offset; /* host offset; 0 = slot unused */
    uint8_t *table;  /* cluster_size bytes, big-endian as on disk */
    uint64_t lru;
    int pins;
    bool dirty;
} Qcow2CacheEntry;

typedef struct Qcow2Cache {
    Qcow2CacheEntry *entries;
    int size;
    GHashTable *index;    /* host offset -> entry */
    GHashTable *by_table; /* table pointer -> entry */
    uint64_t lru_clock;
    bool is_l2; /* L2 tables may only reach disk after a barrier */
} Qcow2Cache;

/* A decrement of a cluster range waiting for the references to leave disk. */
typedef struct Qcow2PendingFree {
    uint64_t offset;
    uint64_t bytes;
} Qcow2PendingFree;

typedef struct Qcow2State {
    BlockDriverState *bs;
    BlockDriverState *file;

    /* header */
    uint32_t version;
    uint32_t cluster_bits;
    uint64_t cluster_size;
    uint32_t l2_bits; /* log2 of entries per L2 table */
    uint64_t l2_size; /* entries per L2 table */
    uint64_t size;    /* virtual disk size */
    uint32_t crypt_method;
    uint64_t incompatible;
    uint64_t compatible;
    uint64_t autoclear;
    uint32_t header_length;
    uint8_t compression_type;

    uint32_t l1_size;
    uint64_t l1_table_offset;
    uint64_t *l1_table; /* host byte order, l1_size entries */
    bool l1_dirty;
    /* L1 entries [lo, hi) may point at L2 tables not yet on disk. */
    uint32_t l1_fresh_lo, l1_fresh_hi;

    uint32_t refcount_order;
    uint32_t refcount_bits;
    uint64_t refcount_max;
    uint32_t refblock_bits; /* log2 of entries per refcount block */
    uint64_t refcount_table_offset;
    uint32_t refcount_table_clusters;
    uint64_t refcount_table_size; /* entries */
    uint64_t *refcount_table;     /* host byte order */
    uint64_t max_refcount_table_index;

    /* A prepared goto: the active L1 and size before it; that tree is still
     * referenced until commit or abort. NULL: none pending. */
    uint64_t *goto_undo_l1;
    uint32_t goto_undo_l1_size;
    uint64_t goto_undo_size;

    uint32_t nb_snapshots;
    uint64_t snapshots_offset;
    uint64_t snapshots_size; /* bytes of the on-disk table */
    Qcow2Snapshot *snapshots;

    /* header extensions */
    uint64_t crypto_header_offset; /* FDE extension */
    uint64_t crypto_header_length;
    bool has_crypto_ext;
    char *backing_format;
    GPtrArray *unknown_exts;  /* Qcow2UnknownExt*, kept verbatim */
    GPtrArray *feature_names; /* from the feature table, for messages */

    /* compressed clusters: x = 62 - (cluster_bits - 8) */
    uint32_t csize_shift;
    uint64_t csize_mask;
    uint64_t cluster_offset_mask;
    uint64_t free_byte_offset; /* packing of compressed data */

    Qcow2Cache l2_cache;
    Qcow2Cache refblock_cache;
    uint64_t free_cluster_index;
    GArray *pending_frees; /* Qcow2PendingFree */
    bool unsynced;         /* written since the last flush of the file */

    uint8_t *bounce; /* write bounce buffer, 4 KiB aligned */
    uint64_t bounce_size;

    /* decompression cache: one guest cluster */
    uint8_t *cluster_data;
    uint64_t cluster_cache_offset; /* host descriptor; UINT64_MAX = empty */

    LuksBlock *luks;
    QcowAes *aes;

    bool read_only;
    bool corrupt_reported;
    bool in_repair;
} Qcow2State;

static inline uint64_t qcow2_offset_into_cluster(const Qcow2State *s, uint64_t off)
{
    return off & (s->cluster_size - 1);
}

static inline uint64_t qcow2_start_of_cluster(const Qcow2State *s, uint64_t off)
{
    return off & ~(s->cluster_size - 1);
}

static inline uint64_t qcow2_size_to_clusters(const Qcow2State *s, uint64_t size)
{
    return (size >> s->cluster_bits) + ((size & (s->cluster_size - 1)) != 0);
}

/* L1 entries needed to map `size` guest bytes. */
static inline uint64_t qcow2_size_to_l1(const Qcow2State *s, uint64_t size)
{
    uint32_t shift = s->cluster_bits + s->l2_bits;
    return (size >> shift) + ((size & ((1ull << shift) - 1)) != 0);
}

static inline uint64_t qcow2_vm_state_offset(const Qcow2State *s)
{
    return qcow2_size_to_l1(s, s->size) << (s->cluster_bits + s->l2_bits);
}

static inline uint64_t qcow2_max_l1_entries(void)
{
    return QCOW2_MAX_L1_BYTES / sizeof(uint64_t);
}

static inline bool qcow2_is_encrypted_state(const Qcow2State *s)
{
    return s->crypt_method != QCOW2_CRYPT_NONE;
}

/* qcow2-header.c */
/* Read and validate the header and its extensions into s; never writes. */
bool qcow2_read_header(Qcow2State *s, int flags, GError **errp);
bool qcow2_load_l1(Qcow2State *s, GError **errp);

/* qcow2.c */
/* Report impossible metadata: set the corrupt bit (if writable), EIO. */
void qcow2_signal_corruption(Qcow2State *s, GError **errp, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
bool qcow2_write_header_field(Qcow2State *s, uint64_t off, const void *buf, size_t len,
                              GError **errp);
bool qcow2_set_incompat_bits(Qcow2State *s, uint64_t set, uint64_t clear, GError **errp);
/*
 * Clear the dirty bit after what was written so far is durable; the
 * clearing itself becomes durable with the next flush (until then a crash
 * leaves a dirty image, which the next open repairs).
 */
bool qcow2_clear_dirty_lazily(Qcow2State *s, GError **errp);
bool qcow2_file_flush(Qcow2State *s, GError **errp);
bool qcow2_write_l1(Qcow2State *s, GError **errp);
bool qcow2_grow_l1(Qcow2State *s, uint64_t min_size, bool exact, GError **errp);
/* Write out all metadata in crash-safe order and make it durable. */
bool qcow2_flush_metadata(Qcow2State *s, GError **errp);
/*
 * Check a host range before writing into it: guest data may overlap no
 * metadata; an L2 table or refcount block being written back may overlap
 * nothing but its own kind (QCOW2_OL_* to ignore). Marks the image corrupt.
 */
#define QCOW2_OL_L2 1u
#define QCOW2_OL_REFBLOCK 2u
bool qcow2_check_overlap(Qcow2State *s, uint64_t offset, uint64_t bytes, unsigned ignore,
                         GError **errp);

/* qcow2-cache.c */
void qcow2_cache_init(Qcow2Cache *c, int size, bool is_l2);
void qcow2_cache_destroy(Qcow2Cache *c);
bool qcow2_cache_get(Qcow2State *s, Qcow2Cache *c, uint64_t offset, uint8_t **table,
                     GError **errp);
bool qcow2_cache_get_empty(Qcow2State *s, Qcow2Cache *c, uint64_t offset, uint8_t **table,
                           GError **errp);
void qcow2_cache_put(Qcow2Cache *c, uint8_t *table);
void qcow2_cache_mark_dirty(Qcow2Cache *c, uint8_t *table);
bool qcow2_cache_write(Qcow2State *s, Qcow2Cache *c, GError **errp);
/* The same without the refcount barrier before L2 tables (dirty image only). */
bool qcow2_cache_write_unordered(Qcow2State *s, Qcow2Cache *c, GError **errp);
bool qcow2_cache_is_dirty(Qcow2Cache *c);
void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset);
void qcow2_cache_clear(Qcow2Cache *c);

/* qcow2-refcount.c */
bool qcow2_refcount_init(Qcow2State *s, GError **errp);
void qcow2_refcount_close(Qcow2State *s);
uint64_t qcow2_get_refcount_ro(const Qcow2State *s, const uint8_t *block, uint64_t idx);
void qcow2_set_refcount_in_block(const Qcow2State *s, uint8_t *block, uint64_t idx,
                                 uint64_t value);
bool qcow2_get_refcount(Qcow2State *s, uint64_t cluster_index, uint64_t *refcount,
                        GError **errp);
/* Add `addend` to every cluster touched by [offset, offset + bytes). */
bool qcow2_update_refcount(Qcow2State *s, uint64_t offset, uint64_t bytes, int64_t addend,
                           GError **errp);
/* Allocate `bytes` (rounded to clusters) of contiguous free clusters. */
bool qcow2_alloc_clusters(Qcow2State *s, uint64_t bytes, uint64_t *offset, GError **errp);
/* Allocate bytes for compressed data inside one host cluster. */
bool qcow2_alloc_bytes(Qcow2State *s, uint64_t bytes, uint64_t *offset, GError **errp);
/* Drop a reference once the tables pointing at it are durable. */
void qcow2_free_later(Qcow2State *s, uint64_t offset, uint64_t bytes);
/* Drop the reference(s) an L2 entry holds, once durable. */
void qcow2_free_l2_entry_later(Qcow2State *s, uint64_t l2_entry);
bool qcow2_apply_pending_frees(Qcow2State *s, GError **errp);
/* Host range referenced by a compressed L2 entry. */
void qcow2_compressed_range(const Qcow2State *s, uint64_t l2_entry, uint64_t *offset,
                            uint64_t *bytes);
bool qcow2_write_reftable_entry(Qcow2State *s, uint64_t index, GError **errp);

/* qcow2-cluster.c */
Qcow2ClusterType qcow2_l2_entry_type(const Qcow2State *s, uint64_t l2_entry);
bool qcow2_read_guest(Qcow2State *s, uint64_t offset, uint8_t *buf, uint64_t bytes,
                      GError **errp);
bool qcow2_write_guest(Qcow2State *s, uint64_t offset, const uint8_t *buf, uint64_t bytes,
                       GError **errp);
/* Make [offset, offset + bytes) read as zero, dropping its clusters. */
bool qcow2_discard_guest(Qcow2State *s, uint64_t offset, uint64_t bytes, GError **errp);
bool qcow2_write_compressed_cluster(Qcow2State *s, uint64_t offset, const uint8_t *buf,
                                    uint64_t bytes, GError **errp);
int qcow2_guest_block_status(Qcow2State *s, uint64_t offset, uint64_t bytes,
                             uint64_t *pnum, GError **errp);
/* Set COPIED on every active L1/L2 entry iff its cluster's refcount is 1. */
bool qcow2_fix_copied_flags(Qcow2State *s, GError **errp);
/* Refuse (ERANGE) if a +1 walk of this L1 table would overflow a refcount. */
bool qcow2_snapshot_refcount_precheck(Qcow2State *s, const uint64_t *l1, uint32_t l1_size,
                                      GError **errp);
/* Add addend to every cluster reached from an L1 table. */
bool qcow2_update_snapshot_refcount(Qcow2State *s, const uint64_t *l1, uint32_t l1_size,
                                    int addend, GError **errp);
bool qcow2_load_l2(Qcow2State *s, uint64_t l1_index, uint8_t **l2, GError **errp);

/* qcow2-crypto.c */
bool qcow2_crypto_open(Qcow2State *s, KeyVal *encrypt, int flags, GError **errp);
void qcow2_crypto_close(Qcow2State *s);
/* In place; offset/len multiples of 512; host_offset selects the IV. */
bool qcow2_encrypt(Qcow2State *s, uint64_t host_offset, uint64_t guest_offset,
                   uint8_t *buf, uint64_t len, GError **errp);
bool qcow2_decrypt(Qcow2State *s, uint64_t host_offset, uint64_t guest_offset,
                   uint8_t *buf, uint64_t len, GError **errp);
LuksIO qcow2_luks_io(Qcow2State *s);

/* qcow2-create.c */
bool qcow2_create(const char *filename, uint64_t size, KeyVal *opts, GError **errp);
/* Change LUKS key slots (the only options that can be amended). */
bool qcow2_amend(BlockDriverState *bs, KeyVal *opts, GError **errp);

/* The vmstate area can hold `size` bytes at `pos`. */
bool qcow2_vmstate_range_ok(Qcow2State *s, uint64_t pos, uint64_t size, GError **errp);

/* qcow2-snapshot.c */
bool qcow2_read_snapshots(Qcow2State *s, GError **errp);
void qcow2_free_snapshots(Qcow2State *s);
bool qcow2_snapshot_create(BlockDriverState *bs, BlockSnapshotInfo *sn, GError **errp);
bool qcow2_snapshot_goto_prepare(BlockDriverState *bs, const char *id, GError **errp);
bool qcow2_snapshot_goto_commit(BlockDriverState *bs, GError **errp);
bool qcow2_snapshot_goto_abort(BlockDriverState *bs, GError **errp);
bool qcow2_snapshot_load_vmstate(BlockDriverState *bs, const char *id, void *buf,
                                 uint64_t pos, uint64_t size, GError **errp);
bool qcow2_snapshot_delete(BlockDriverState *bs, const char *id, GError **errp);
int qcow2_snapshot_list(BlockDriverState *bs, BlockSnapshotInfo **list);

/* qcow2-check.c */
bool qcow2_check(BlockDriverState *bs, BdrvCheckResult *res, BdrvCheckMode fix,
                 GError **errp);
/* Rebuild refcounts and COPIED flags (dirty image on read/write open). */
bool qcow2_repair(Qcow2State *s, GError **errp);

#endif
