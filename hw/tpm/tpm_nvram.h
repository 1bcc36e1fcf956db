/*
 * The NVRAM store of the built-in TPM: libtpms' state blobs (permall,
 * volatilestate, savestate) kept crash-safe on a drive. The on-drive layout
 * is described in docs/nvram.md.
 *
 * The medium is reached through a small ops table (read, write, flush,
 * size), so the same store works over a block-layer drive, a plain file
 * (tests) or memory (fuzzing). A store opened without a medium keeps the
 * blobs in memory only.
 *
 * Every blob has two slots; each slot carries its own generation, length and
 * SHA-256, and the newest valid slot wins. A store writes the slot that does
 * not hold the current copy and flushes: one write and one flush per changed
 * blob, and a crash at any point leaves the previous copy intact.
 *
 * Thread rule: a store is used by one thread at a time (the TPM worker while
 * a command runs, the main thread while the TPM is drained).
 */
#ifndef HW_TPM_TPM_NVRAM_H
#define HW_TPM_TPM_NVRAM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef enum TPMNvramBlob {
    TPM_NVRAM_BLOB_PERMALL = 0,   /* libtpms "permall": permanent state */
    TPM_NVRAM_BLOB_VOLATILE = 1,  /* libtpms "volatilestate" */
    TPM_NVRAM_BLOB_SAVESTATE = 2, /* libtpms "savestate" (TPM 1.2 SaveState) */
    TPM_NVRAM_NBLOBS
} TPMNvramBlob;

/* Layout constants (docs/nvram.md). */
#define TPM_NVRAM_LAYOUT_VERSION 1
#define TPM_NVRAM_SUPERBLOCK_SIZE 512 /* bytes covered by the superblock */
#define TPM_NVRAM_ALIGN 65536         /* slots start on 64 KiB boundaries */
#define TPM_NVRAM_SLOT_HEADER_SIZE 64
/* Largest slot a superblock may declare: bounds memory used while loading. */
#define TPM_NVRAM_MAX_SLOT_SIZE (16 * 1024 * 1024)

/* Access to the medium. Offsets and lengths are bytes. */
typedef struct TPMNvramOps {
    bool (*pread)(void *opaque, uint64_t offset, void *buf, uint64_t len, GError **errp);
    bool (*pwrite)(void *opaque, uint64_t offset, const void *buf, uint64_t len,
                   GError **errp);
    bool (*flush)(void *opaque, GError **errp);
    /* Size of the medium in bytes, or -1 with errp set. */
    int64_t (*size)(void *opaque, GError **errp);
} TPMNvramOps;

/* Counters of medium writes since open (benchmarks, tests). */
typedef struct TPMNvramStats {
    uint64_t writes;          /* writes issued (slots and superblock) */
    uint64_t bytes_written;   /* bytes passed to pwrite */
    uint64_t flushes;         /* flushes issued */
    uint64_t unchanged_skips; /* stores skipped because the bytes were equal */
} TPMNvramStats;

typedef struct TPMNvram TPMNvram;

/* libtpms' name of a blob ("permall", ...). */
const char *tpm_nvram_blob_name(TPMNvramBlob blob);
/* Blob for a libtpms name; false for an unknown name. */
bool tpm_nvram_blob_from_name(const char *name, TPMNvramBlob *blob);

/* Bytes a medium needs to hold blobs of at most max_blob[i] bytes each. */
uint64_t tpm_nvram_required_size(const uint64_t max_blob[TPM_NVRAM_NBLOBS]);

/*
 * Open a store on a medium (ops == NULL: memory only). `name` names the
 * medium in messages ("drive 'tpmnv'"). `tpm_version` (1 = TPM 1.2,
 * 2 = TPM 2.0) must match the one recorded on the medium; `max_blob` gives
 * the slot sizes used when the medium is blank. Reads and validates every
 * slot; never writes (a blank medium is formatted by the first store).
 * A corrupt newest slot falls back to the older one with a warning; a blob
 * without any valid slot is an error.
 */
TPMNvram *tpm_nvram_open(const TPMNvramOps *ops, void *opaque, const char *name,
                         uint32_t tpm_version, const uint64_t max_blob[TPM_NVRAM_NBLOBS],
                         GError **errp);
void tpm_nvram_free(TPMNvram *nv);

/* Read every slot again (after the medium changed under the store, e.g. a
 * snapshot was applied). On error the store keeps its previous contents. */
bool tpm_nvram_reload(TPMNvram *nv, GError **errp);

/* Current copy of a blob (owned by the store, valid until the next store,
 * delete or reload); false when the blob is absent. */
bool tpm_nvram_get(TPMNvram *nv, TPMNvramBlob blob, const uint8_t **data, uint32_t *len);
/* Make `data` the blob's durable contents (written and flushed on return).
 * Equal bytes are not written again. */
bool tpm_nvram_store(TPMNvram *nv, TPMNvramBlob blob, const uint8_t *data, uint32_t len,
                     GError **errp);
/* Mark a blob absent (durably); a no-op if it already is. */
bool tpm_nvram_delete(TPMNvram *nv, TPMNvramBlob blob, GError **errp);
/* Flush the medium. */
bool tpm_nvram_flush(TPMNvram *nv, GError **errp);

/* Largest blob a slot can take. */
uint64_t tpm_nvram_capacity(TPMNvram *nv, TPMNvramBlob blob);
/* Generation of the blob's current copy (0: never stored). */
uint64_t tpm_nvram_generation(TPMNvram *nv, TPMNvramBlob blob);
bool tpm_nvram_has_medium(TPMNvram *nv);
void tpm_nvram_get_stats(TPMNvram *nv, TPMNvramStats *stats);
const char *tpm_nvram_get_name(TPMNvram *nv);

/* Medium over a plain file: pread/pwrite/fdatasync (tests, tools). */
typedef struct TPMNvramFile TPMNvramFile;
extern const TPMNvramOps tpm_nvram_file_ops;
TPMNvramFile *tpm_nvram_file_open(const char *path, bool writable, GError **errp);
void tpm_nvram_file_close(TPMNvramFile *f);

#endif
