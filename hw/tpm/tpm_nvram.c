/*
 * NVRAM store of the built-in TPM: two alternating, self-describing slots per
 * libtpms blob on a medium reached through TPMNvramOps. Layout and write
 * costs: docs/nvram.md.
 *
 * Everything read from the medium is hostile: every offset and length is
 * bounded with 64-bit arithmetic against the medium size and the slot size
 * before it is used, and a slot's bytes reach libtpms only after its SHA-256
 * matched.
 */
#include "hw/tpm/tpm_nvram.h"

#include <stdio.h>
#include <string.h>

#include <nettle/sha2.h>

#include "util/byteorder.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

#define SB_MAGIC "TPMVM-NV"
#define SB_HASH_OFFSET (TPM_NVRAM_SUPERBLOCK_SIZE - SHA256_DIGEST_SIZE)
#define SB_BLOB_TABLE_OFFSET 24
#define SB_BLOB_ENTRY_SIZE 24
#define SLOT_MAGIC "TPMVSLOT"
#define SLOT_HASHED_HEADER 32 /* header bytes covered by the slot hash */
#define WRITE_GRANULE 512     /* writes are padded to whole sectors */
#define SLOT_MAX_GENERATION (UINT64_C(1) << 63)

typedef struct NvramSlotGeom {
    uint64_t offset[2];
    uint64_t size; /* header + data capacity */
} NvramSlotGeom;

typedef enum {
    SLOT_EMPTY,   /* never written: header all zero */
    SLOT_VALID,   /* magic, ids, bounds and SHA-256 all good */
    SLOT_CORRUPT, /* anything else */
} NvramSlotState;

typedef struct NvramBlobState {
    int cur_slot;  /* slot holding the current copy, -1: none */
    uint64_t gen;  /* generation of the current copy, 0: none */
    bool present;  /* false: absent or deleted */
    uint8_t *data; /* current copy when present */
    uint32_t len;
} NvramBlobState;

struct TPMNvram {
    const TPMNvramOps *ops; /* NULL: memory only */
    void *opaque;
    char *name;
    uint32_t tpm_version;
    bool formatted; /* superblock on the medium */
    NvramSlotGeom geom[TPM_NVRAM_NBLOBS];
    NvramBlobState blob[TPM_NVRAM_NBLOBS];
    uint8_t *scratch; /* write buffer */
    uint64_t scratch_size;
    TPMNvramStats stats;
};

static const char *const blob_names[TPM_NVRAM_NBLOBS] = {
    [TPM_NVRAM_BLOB_PERMALL] = "permall",
    [TPM_NVRAM_BLOB_VOLATILE] = "volatilestate",
    [TPM_NVRAM_BLOB_SAVESTATE] = "savestate",
};

const char *tpm_nvram_blob_name(TPMNvramBlob blob)
{
    return (unsigned)blob < TPM_NVRAM_NBLOBS ? blob_names[blob] : "?";
}

bool tpm_nvram_blob_from_name(const char *name, TPMNvramBlob *blob)
{
    for (unsigned i = 0; i < TPM_NVRAM_NBLOBS; i++) {
        if (name && strcmp(name, blob_names[i]) == 0) {
            *blob = i;
            return true;
        }
    }
    return false;
}

static uint64_t round_up(uint64_t v, uint64_t align)
{
    return (v + align - 1) / align * align;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

/* Geometry for a blank medium: superblock area, then both slots of each
 * blob, every slot on a 64 KiB boundary so that no two slots share a qcow2
 * cluster (a torn copy-on-write of one can never touch the other). */
static void layout_compute(const uint64_t max_blob[TPM_NVRAM_NBLOBS],
                           NvramSlotGeom geom[TPM_NVRAM_NBLOBS], uint64_t *end)
{
    uint64_t off = TPM_NVRAM_ALIGN;

    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        uint64_t want = MIN(max_blob[b], (uint64_t)UINT32_MAX);
        geom[b].size = round_up(TPM_NVRAM_SLOT_HEADER_SIZE + want, TPM_NVRAM_ALIGN);
        geom[b].size = MIN(geom[b].size, (uint64_t)TPM_NVRAM_MAX_SLOT_SIZE);
        geom[b].offset[0] = off;
        geom[b].offset[1] = off + geom[b].size;
        off += 2 * geom[b].size;
    }
    *end = off;
}

uint64_t tpm_nvram_required_size(const uint64_t max_blob[TPM_NVRAM_NBLOBS])
{
    NvramSlotGeom geom[TPM_NVRAM_NBLOBS];
    uint64_t end;

    layout_compute(max_blob, geom, &end);
    return end;
}

static bool medium_read(TPMNvram *nv, uint64_t off, void *buf, uint64_t len,
                        GError **errp)
{
    g_autoptr(GError) err = NULL;

    if (!nv->ops->pread(nv->opaque, off, buf, len, &err)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "%s: cannot read %" G_GUINT64_FORMAT
                    " bytes at offset %" G_GUINT64_FORMAT ": %s",
                    nv->name, len, off, err ? err->message : "unknown error");
        return false;
    }
    return true;
}

static bool medium_write(TPMNvram *nv, uint64_t off, const void *buf, uint64_t len,
                         GError **errp)
{
    g_autoptr(GError) err = NULL;

    nv->stats.writes++;
    nv->stats.bytes_written += len;
    if (!nv->ops->pwrite(nv->opaque, off, buf, len, &err)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO,
                    "%s: cannot write %" G_GUINT64_FORMAT
                    " bytes at offset %" G_GUINT64_FORMAT ": %s",
                    nv->name, len, off, err ? err->message : "unknown error");
        return false;
    }
    return true;
}

static bool medium_flush(TPMNvram *nv, GError **errp)
{
    g_autoptr(GError) err = NULL;

    nv->stats.flushes++;
    if (!nv->ops->flush(nv->opaque, &err)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "%s: cannot flush: %s", nv->name,
                    err ? err->message : "unknown error");
        return false;
    }
    return true;
}

static void superblock_encode(TPMNvram *nv, uint8_t sb[TPM_NVRAM_SUPERBLOCK_SIZE])
{
    struct sha256_ctx ctx;

    memset(sb, 0, TPM_NVRAM_SUPERBLOCK_SIZE);
    memcpy(sb, SB_MAGIC, 8);
    put_be32(sb + 8, TPM_NVRAM_LAYOUT_VERSION);
    put_be32(sb + 12, TPM_NVRAM_SUPERBLOCK_SIZE);
    put_be32(sb + 16, nv->tpm_version);
    put_be32(sb + 20, TPM_NVRAM_NBLOBS);
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        uint8_t *e = sb + SB_BLOB_TABLE_OFFSET + b * SB_BLOB_ENTRY_SIZE;
        put_be64(e, nv->geom[b].offset[0]);
        put_be64(e + 8, nv->geom[b].offset[1]);
        put_be64(e + 16, nv->geom[b].size);
    }
    sha256_init(&ctx);
    sha256_update(&ctx, SB_HASH_OFFSET, sb);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, sb + SB_HASH_OFFSET);
}

/*
 * Parse and bound a superblock. Every slot must lie after the superblock
 * area and inside the medium, be large enough for a header and at most
 * TPM_NVRAM_MAX_SLOT_SIZE, and overlap no other slot.
 */
static bool superblock_decode(TPMNvram *nv, const uint8_t sb[TPM_NVRAM_SUPERBLOCK_SIZE],
                              uint64_t medium_size, NvramSlotGeom geom[TPM_NVRAM_NBLOBS],
                              bool *torn, GError **errp)
{
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    uint64_t start[2 * TPM_NVRAM_NBLOBS], end[2 * TPM_NVRAM_NBLOBS];
    uint32_t layout, sb_size, version, nblobs;

    if (memcmp(sb, SB_MAGIC, 8) != 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s does not hold TPM state (no tpmvm NVRAM superblock at offset 0); "
                    "use a new, empty drive for the TPM",
                    nv->name);
        return false;
    }
    sha256_init(&ctx);
    sha256_update(&ctx, SB_HASH_OFFSET, sb);
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    if (memcmp(digest, sb + SB_HASH_OFFSET, SHA256_DIGEST_SIZE) != 0) {
        *torn = true;
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
            "%s: the TPM state superblock is corrupt (checksum mismatch); restore the "
            "drive from a backup or snapshot",
            nv->name);
        return false;
    }
    layout = be32_at(sb + 8);
    sb_size = be32_at(sb + 12);
    version = be32_at(sb + 16);
    nblobs = be32_at(sb + 20);
    if (layout != TPM_NVRAM_LAYOUT_VERSION) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s: TPM state layout version %u is not supported (this tpmvm reads "
                    "version %u); use a newer tpmvm",
                    nv->name, layout, TPM_NVRAM_LAYOUT_VERSION);
        return false;
    }
    if (sb_size != TPM_NVRAM_SUPERBLOCK_SIZE || nblobs != TPM_NVRAM_NBLOBS) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s: the TPM state superblock is inconsistent (size %u, %u blobs)",
                    nv->name, sb_size, nblobs);
        return false;
    }
    if (version != nv->tpm_version) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
            "%s holds the state of a TPM %s, not of a TPM %s; use version=%s or a "
            "new drive",
            nv->name,
            version == 1   ? "1.2"
            : version == 2 ? "2.0"
                           : "of unknown version",
            nv->tpm_version == 1 ? "1.2" : "2.0", version == 1 ? "1.2" : "2.0");
        return false;
    }
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        const uint8_t *e = sb + SB_BLOB_TABLE_OFFSET + b * SB_BLOB_ENTRY_SIZE;
        geom[b].offset[0] = be64_at(e);
        geom[b].offset[1] = be64_at(e + 8);
        geom[b].size = be64_at(e + 16);
        if (geom[b].size < TPM_NVRAM_SLOT_HEADER_SIZE ||
            geom[b].size > TPM_NVRAM_MAX_SLOT_SIZE) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "%s: the TPM state superblock declares a %" G_GUINT64_FORMAT
                        "-byte slot for '%s' (allowed: %d to %d)",
                        nv->name, geom[b].size, blob_names[b], TPM_NVRAM_SLOT_HEADER_SIZE,
                        TPM_NVRAM_MAX_SLOT_SIZE);
            return false;
        }
        for (unsigned s = 0; s < 2; s++) {
            uint64_t off = geom[b].offset[s];
            /* off + size <= medium_size, written so that it cannot wrap */
            if (off < TPM_NVRAM_SUPERBLOCK_SIZE || off > medium_size ||
                geom[b].size > medium_size - off) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                            "%s: slot %u of '%s' (offset %" G_GUINT64_FORMAT
                            ", %" G_GUINT64_FORMAT
                            " bytes) lies outside the %" G_GUINT64_FORMAT
                            "-byte drive; was the image truncated?",
                            nv->name, s, blob_names[b], off, geom[b].size, medium_size);
                return false;
            }
            start[2 * b + s] = off;
            end[2 * b + s] = off + geom[b].size;
        }
    }
    for (unsigned i = 0; i < 2 * TPM_NVRAM_NBLOBS; i++) {
        for (unsigned j = i + 1; j < 2 * TPM_NVRAM_NBLOBS; j++) {
            if (start[i] < end[j] && start[j] < end[i]) {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                            "%s: the TPM state superblock declares overlapping slots",
                            nv->name);
                return false;
            }
        }
    }
    return true;
}

static void slot_hash(const uint8_t *header, const uint8_t *data, uint64_t len,
                      uint8_t digest[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx ctx;

    sha256_init(&ctx);
    sha256_update(&ctx, SLOT_HASHED_HEADER, header);
    if (len) {
        sha256_update(&ctx, len, data);
    }
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
}

typedef struct SlotRead {
    NvramSlotState state;
    const char *why; /* for CORRUPT */
    uint64_t gen;
    uint8_t *data; /* VALID: owned copy (NULL for length 0) */
    uint32_t len;
} SlotRead;

/* Read one slot and classify it; only an I/O error fails. */
static bool slot_read(TPMNvram *nv, TPMNvramBlob b, unsigned s, const NvramSlotGeom *g,
                      SlotRead *out, GError **errp)
{
    uint8_t hdr[TPM_NVRAM_SLOT_HEADER_SIZE];
    uint8_t digest[SHA256_DIGEST_SIZE];
    g_autofree uint8_t *data = NULL;
    uint64_t len;

    memset(out, 0, sizeof(*out));
    if (!medium_read(nv, g->offset[s], hdr, sizeof(hdr), errp)) {
        return false;
    }
    if (all_zero(hdr, sizeof(hdr))) {
        out->state = SLOT_EMPTY;
        return true;
    }
    out->state = SLOT_CORRUPT;
    if (memcmp(hdr, SLOT_MAGIC, 8) != 0) {
        out->why = "bad magic";
        return true;
    }
    if (be32_at(hdr + 8) != b || be32_at(hdr + 12) != s) {
        out->why = "slot belongs elsewhere";
        return true;
    }
    out->gen = be64_at(hdr + 16);
    len = be64_at(hdr + 24);
    /* A real drive never gets near 2^63 writes; a larger value is hostile
     * and would let the next generation wrap. */
    if (out->gen == 0 || out->gen > SLOT_MAX_GENERATION) {
        out->why = "bad generation";
        return true;
    }
    /* The slot size is bounded by TPM_NVRAM_MAX_SLOT_SIZE, so len fits 32 bits. */
    if (len > g->size - TPM_NVRAM_SLOT_HEADER_SIZE) {
        out->why = "length exceeds the slot";
        return true;
    }
    if (len) {
        data = g_malloc(len);
        if (!medium_read(nv, g->offset[s] + TPM_NVRAM_SLOT_HEADER_SIZE, data, len,
                         errp)) {
            return false;
        }
    }
    slot_hash(hdr, data, len, digest);
    if (memcmp(digest, hdr + SLOT_HASHED_HEADER, SHA256_DIGEST_SIZE) != 0) {
        out->why = "checksum mismatch";
        return true;
    }
    out->state = SLOT_VALID;
    out->why = NULL;
    out->len = (uint32_t)len;
    out->data = g_steal_pointer(&data);
    return true;
}

static void blob_state_clear(NvramBlobState *bs)
{
    g_free(bs->data);
    memset(bs, 0, sizeof(*bs));
    bs->cur_slot = -1;
}

/*
 * Pick the current copy of a blob from its two slots (docs/nvram.md,
 * "Loading"): the valid slot with the higher generation; a corrupt slot
 * beside a valid one is a torn write or damage and only warns. Corrupt plus
 * empty is a torn first write (nothing was ever acknowledged): absent.
 */
static bool blob_choose(TPMNvram *nv, TPMNvramBlob b, SlotRead r[2], NvramBlobState *out,
                        GError **errp)
{
    int pick = -1;

    blob_state_clear(out);
    if (r[0].state == SLOT_VALID && r[1].state == SLOT_VALID) {
        pick = r[1].gen > r[0].gen ? 1 : 0;
    } else if (r[0].state == SLOT_VALID) {
        pick = 0;
    } else if (r[1].state == SLOT_VALID) {
        pick = 1;
    }
    if (pick < 0) {
        if (r[0].state == SLOT_CORRUPT && r[1].state == SLOT_CORRUPT) {
            g_set_error(
                errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                "%s: both copies of the TPM state blob '%s' are corrupt (slot 0: %s; "
                "slot 1: %s); the TPM state cannot be loaded. Restore the drive from "
                "a backup or snapshot, or use a new drive to get a new TPM",
                nv->name, blob_names[b], r[0].why, r[1].why);
            return false;
        }
        for (unsigned s = 0; s < 2; s++) {
            if (r[s].state == SLOT_CORRUPT) {
                warn_report(
                    "%s: the only copy of TPM state blob '%s' (slot %u) is corrupt "
                    "(%s): an interrupted first write; the blob is treated as absent",
                    nv->name, blob_names[b], s, r[s].why);
            }
        }
        return true;
    }
    if (r[!pick].state == SLOT_CORRUPT) {
        warn_report("%s: slot %d of TPM state blob '%s' is corrupt (%s); using slot %d "
                    "(generation %" G_GUINT64_FORMAT "), the last complete write",
                    nv->name, !pick, blob_names[b], r[!pick].why, pick, r[pick].gen);
    }
    out->cur_slot = pick;
    out->gen = r[pick].gen;
    out->present = r[pick].len > 0;
    out->len = r[pick].len;
    out->data = g_steal_pointer(&r[pick].data);
    return true;
}

/* Read and choose every blob into `blobs`; the store is not changed. */
static bool nvram_load(TPMNvram *nv, bool *formatted,
                       NvramSlotGeom geom[TPM_NVRAM_NBLOBS],
                       NvramBlobState blobs[TPM_NVRAM_NBLOBS],
                       const uint64_t max_blob[TPM_NVRAM_NBLOBS], GError **errp)
{
    uint8_t sb[TPM_NVRAM_SUPERBLOCK_SIZE];
    g_autoptr(GError) sb_err = NULL;
    GError *size_err = NULL;
    int64_t size;
    uint64_t need;
    bool ok = true, torn = false;

    size = nv->ops->size(nv->opaque, &size_err);
    if (size < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "%s: cannot get its size: %s",
                    nv->name, size_err ? size_err->message : "unknown error");
        g_clear_error(&size_err);
        return false;
    }
    if ((uint64_t)size < TPM_NVRAM_SUPERBLOCK_SIZE) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "%s is too small for TPM state (%" G_GINT64_FORMAT " bytes)",
                    nv->name, size);
        return false;
    }
    if (!medium_read(nv, 0, sb, sizeof(sb), errp)) {
        return false;
    }
    *formatted = !all_zero(sb, sizeof(sb));
    if (*formatted && !superblock_decode(nv, sb, size, geom, &torn, &sb_err)) {
        /* Only a torn superblock (ours, bad checksum) may be a blank drive's
         * interrupted format; anything else is refused. */
        if (!torn) {
            g_propagate_error(errp, g_steal_pointer(&sb_err));
            return false;
        }
    }
    if (!*formatted || sb_err) {
        layout_compute(max_blob, geom, &need);
        if (need > (uint64_t)size) {
            if (sb_err) {
                g_propagate_error(errp, g_steal_pointer(&sb_err));
            } else {
                g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                            "%s is too small for the TPM state: it has %" G_GINT64_FORMAT
                            " bytes, the TPM needs %" G_GUINT64_FORMAT " bytes",
                            nv->name, size, need);
            }
            return false;
        }
    }

    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS && ok; b++) {
        SlotRead r[2] = {0};
        ok = slot_read(nv, b, 0, &geom[b], &r[0], errp) &&
             slot_read(nv, b, 1, &geom[b], &r[1], errp);
        if (ok && sb_err) {
            /*
             * The superblock is flushed before any slot is written: a bad
             * superblock above slots that were never written is a torn
             * format of a blank drive; above anything else it is damage.
             */
            if (r[0].state != SLOT_EMPTY || r[1].state != SLOT_EMPTY) {
                g_propagate_error(errp, g_steal_pointer(&sb_err));
                ok = false;
            }
        } else if (ok && !*formatted) {
            if (r[0].state != SLOT_EMPTY || r[1].state != SLOT_EMPTY) {
                g_set_error(
                    errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s: the TPM state superblock is missing (zeroed) but slots hold "
                    "data; restore the drive from a backup or snapshot",
                    nv->name);
                ok = false;
            }
        } else if (ok) {
            ok = blob_choose(nv, b, r, &blobs[b], errp);
        }
        g_free(r[0].data);
        g_free(r[1].data);
    }
    if (ok && sb_err) {
        warn_report("%s: the TPM state superblock is incomplete but no state was ever "
                    "written; treating the drive as blank",
                    nv->name);
        *formatted = false;
    }
    if (!ok) {
        for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
            blob_state_clear(&blobs[b]);
        }
    }
    return ok;
}

TPMNvram *tpm_nvram_open(const TPMNvramOps *ops, void *opaque, const char *name,
                         uint32_t tpm_version, const uint64_t max_blob[TPM_NVRAM_NBLOBS],
                         GError **errp)
{
    TPMNvram *nv = g_new0(TPMNvram, 1);
    uint64_t end;

    nv->ops = ops;
    nv->opaque = opaque;
    nv->name = g_strdup(name ? name : "TPM NVRAM");
    nv->tpm_version = tpm_version;
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        blob_state_clear(&nv->blob[b]);
    }
    layout_compute(max_blob, nv->geom, &end);
    if (ops && !nvram_load(nv, &nv->formatted, nv->geom, nv->blob, max_blob, errp)) {
        tpm_nvram_free(nv);
        return NULL;
    }
    trace_event("tpm_nvram_open", "name=%s formatted=%d permall_gen=%" G_GUINT64_FORMAT,
                nv->name, nv->formatted, nv->blob[TPM_NVRAM_BLOB_PERMALL].gen);
    return nv;
}

void tpm_nvram_free(TPMNvram *nv)
{
    if (!nv) {
        return;
    }
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        blob_state_clear(&nv->blob[b]);
    }
    g_free(nv->scratch);
    g_free(nv->name);
    g_free(nv);
}

bool tpm_nvram_reload(TPMNvram *nv, GError **errp)
{
    NvramSlotGeom geom[TPM_NVRAM_NBLOBS];
    NvramBlobState blobs[TPM_NVRAM_NBLOBS] = {0};
    uint64_t max_blob[TPM_NVRAM_NBLOBS];
    bool formatted;

    if (!nv->ops) {
        return true;
    }
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        blob_state_clear(&blobs[b]);
        max_blob[b] = nv->geom[b].size - TPM_NVRAM_SLOT_HEADER_SIZE;
    }
    if (!nvram_load(nv, &formatted, geom, blobs, max_blob, errp)) {
        return false;
    }
    for (unsigned b = 0; b < TPM_NVRAM_NBLOBS; b++) {
        blob_state_clear(&nv->blob[b]);
        nv->blob[b] = blobs[b];
    }
    memcpy(nv->geom, geom, sizeof(geom));
    nv->formatted = formatted;
    return true;
}

bool tpm_nvram_get(TPMNvram *nv, TPMNvramBlob blob, const uint8_t **data, uint32_t *len)
{
    NvramBlobState *bs = &nv->blob[blob];

    if (!bs->present) {
        *data = NULL;
        *len = 0;
        return false;
    }
    *data = bs->data;
    *len = bs->len;
    return true;
}

static bool nvram_format(TPMNvram *nv, GError **errp)
{
    uint8_t sb[TPM_NVRAM_SUPERBLOCK_SIZE];

    superblock_encode(nv, sb);
    if (!medium_write(nv, 0, sb, sizeof(sb), errp) || !medium_flush(nv, errp)) {
        return false;
    }
    nv->formatted = true;
    return true;
}

/* Write one slot (header + data, padded to whole sectors) and flush. */
static bool slot_write(TPMNvram *nv, TPMNvramBlob b, unsigned s, uint64_t gen,
                       const uint8_t *data, uint32_t len, GError **errp)
{
    uint64_t total = round_up(TPM_NVRAM_SLOT_HEADER_SIZE + (uint64_t)len, WRITE_GRANULE);
    uint8_t *hdr;

    total = MIN(total, nv->geom[b].size);
    if (nv->scratch_size < total) {
        g_free(nv->scratch);
        nv->scratch = g_malloc(total);
        nv->scratch_size = total;
    }
    hdr = nv->scratch;
    memset(hdr, 0, TPM_NVRAM_SLOT_HEADER_SIZE);
    memcpy(hdr, SLOT_MAGIC, 8);
    put_be32(hdr + 8, b);
    put_be32(hdr + 12, s);
    put_be64(hdr + 16, gen);
    put_be64(hdr + 24, len);
    slot_hash(hdr, data, len, hdr + SLOT_HASHED_HEADER);
    if (len) {
        memcpy(hdr + TPM_NVRAM_SLOT_HEADER_SIZE, data, len);
    }
    memset(hdr + TPM_NVRAM_SLOT_HEADER_SIZE + len, 0,
           total - TPM_NVRAM_SLOT_HEADER_SIZE - len);
    trace_event("tpm_nvram_slot_write",
                "blob=%s slot=%u gen=%" G_GUINT64_FORMAT
                " len=%u bytes=%" G_GUINT64_FORMAT,
                blob_names[b], s, gen, len, total);
    return medium_write(nv, nv->geom[b].offset[s], hdr, total, errp) &&
           medium_flush(nv, errp);
}

/* Put a new version (len 0 = deleted) of a blob on the medium. */
static bool blob_commit(TPMNvram *nv, TPMNvramBlob b, const uint8_t *data, uint32_t len,
                        GError **errp)
{
    NvramBlobState *bs = &nv->blob[b];
    uint64_t gen;

    if (!nv->ops) {
        return true;
    }
    if ((uint64_t)len > nv->geom[b].size - TPM_NVRAM_SLOT_HEADER_SIZE) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "%s: TPM state blob '%s' has %u bytes but its slot holds at most "
                    "%" G_GUINT64_FORMAT,
                    nv->name, blob_names[b], len,
                    nv->geom[b].size - TPM_NVRAM_SLOT_HEADER_SIZE);
        return false;
    }
    if (bs->gen >= SLOT_MAX_GENERATION) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "%s: TPM state blob '%s' has generation %" G_GUINT64_FORMAT
                    ", the last one allowed; the drive was tampered with",
                    nv->name, blob_names[b], bs->gen);
        return false;
    }
    if (!nv->formatted && !nvram_format(nv, errp)) {
        return false;
    }
    if (bs->cur_slot < 0) {
        /*
         * First write of this blob: fill both slots, so that afterwards a
         * blob with one unreadable slot always has the other (docs/nvram.md).
         */
        if (!slot_write(nv, b, 0, 1, data, len, errp)) {
            return false;
        }
        bs->cur_slot = 0;
        bs->gen = 1;
    }
    gen = bs->gen + 1;
    if (!slot_write(nv, b, !bs->cur_slot, gen, data, len, errp)) {
        return false;
    }
    bs->cur_slot = !bs->cur_slot;
    bs->gen = gen;
    return true;
}

bool tpm_nvram_store(TPMNvram *nv, TPMNvramBlob blob, const uint8_t *data, uint32_t len,
                     GError **errp)
{
    NvramBlobState *bs = &nv->blob[blob];

    if (len == 0) {
        return tpm_nvram_delete(nv, blob, errp);
    }
    if (bs->present && bs->len == len && memcmp(bs->data, data, len) == 0) {
        nv->stats.unchanged_skips++;
        return true;
    }
    if (!blob_commit(nv, blob, data, len, errp)) {
        return false;
    }
    g_free(bs->data);
    bs->data = g_memdup2(data, len);
    bs->len = len;
    bs->present = true;
    return true;
}

bool tpm_nvram_delete(TPMNvram *nv, TPMNvramBlob blob, GError **errp)
{
    NvramBlobState *bs = &nv->blob[blob];

    if (!bs->present) {
        return true;
    }
    if (!blob_commit(nv, blob, NULL, 0, errp)) {
        return false;
    }
    g_clear_pointer(&bs->data, g_free);
    bs->len = 0;
    bs->present = false;
    return true;
}

bool tpm_nvram_flush(TPMNvram *nv, GError **errp)
{
    return !nv->ops || medium_flush(nv, errp);
}

uint64_t tpm_nvram_capacity(TPMNvram *nv, TPMNvramBlob blob)
{
    return nv->geom[blob].size - TPM_NVRAM_SLOT_HEADER_SIZE;
}

uint64_t tpm_nvram_generation(TPMNvram *nv, TPMNvramBlob blob)
{
    return nv->blob[blob].gen;
}

bool tpm_nvram_has_medium(TPMNvram *nv)
{
    return nv->ops != NULL;
}

void tpm_nvram_get_stats(TPMNvram *nv, TPMNvramStats *stats)
{
    *stats = nv->stats;
}

const char *tpm_nvram_get_name(TPMNvram *nv)
{
    return nv->name;
}
