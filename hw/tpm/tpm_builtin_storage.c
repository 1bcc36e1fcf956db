/*
 * Storage of the built-in TPM on a drive of the block layer: drive=ID (a
 * drive the user made with -drive if=none,...) or path=FILE (a qcow2 image,
 * LUKS-encrypted with key-secret=, created at the right size on first use).
 * The TPM sees the drive only as a TPMNvramOps medium: read, write, flush,
 * size. The block layer's own lock makes the drive safe to use from the TPM
 * worker.
 */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "block/block.h"
#include "hw/tpm/tpm_builtin_storage.h"
#include "util/error.h"
#include "util/keyval.h"
#include "util/log.h"

/* Images made by path= are at least this big (docs/nvram.md: fits either TPM). */
#define STORAGE_MIN_NEW_SIZE (1024 * 1024)

struct TPMBuiltinStorage {
    BlockDriverState *bs;
    char *name;
    char *drive_id;
    char *path;
};

static bool storage_pread(void *opaque, uint64_t offset, void *buf, uint64_t len,
                          GError **errp)
{
    TPMBuiltinStorage *s = opaque;

    return bdrv_pread(s->bs, offset, buf, len, errp);
}

static bool storage_pwrite(void *opaque, uint64_t offset, const void *buf, uint64_t len,
                           GError **errp)
{
    TPMBuiltinStorage *s = opaque;

    return bdrv_pwrite(s->bs, offset, buf, len, errp);
}

static bool storage_flush(void *opaque, GError **errp)
{
    TPMBuiltinStorage *s = opaque;

    return bdrv_flush(s->bs, errp);
}

static int64_t storage_size(void *opaque, GError **errp)
{
    TPMBuiltinStorage *s = opaque;
    int64_t len = bdrv_getlength(s->bs);

    if (len < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "cannot get the size of %s",
                    s->name);
    }
    return len;
}

static const TPMNvramOps storage_ops = {
    .pread = storage_pread,
    .pwrite = storage_pwrite,
    .flush = storage_flush,
    .size = storage_size,
};

static BlockDriverState *storage_open_drive(const char *drive_id, const char *user,
                                            GError **errp)
{
    BlockDriverState *bs = drive_find(drive_id);

    if (!bs) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_FOUND,
                    "drive '%s' not found; define it first with -drive "
                    "if=none,id=%s,file=FILE.qcow2,...",
                    drive_id, drive_id);
        return NULL;
    }
    if (bdrv_is_read_only(bs)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_PERMISSION,
                    "drive '%s' is read-only, but the TPM writes its state there; remove "
                    "readonly=on from its -drive",
                    drive_id);
        return NULL;
    }
    if (!drive_claim(bs, user, errp)) {
        return NULL;
    }
    return bs;
}

/* Make a new qcow2 (LUKS-encrypted when a secret is given) at `path`. */
static bool storage_create_image(const char *path, const char *key_secret, uint64_t need,
                                 GError **errp)
{
    g_autoptr(KeyVal) opts = keyval_new();
    uint64_t size = MAX(need, (uint64_t)STORAGE_MIN_NEW_SIZE);

    if (key_secret) {
        keyval_set(opts, "encrypt.format", "luks");
        keyval_set(opts, "encrypt.key-secret", key_secret);
    }
    if (!bdrv_create("qcow2", path, size, opts, errp)) {
        g_prefix_error(errp, "cannot create the TPM state image '%s': ", path);
        unlink(path);
        return false;
    }
    if (!key_secret) {
        warn_report("the TPM state image '%s' is not encrypted; give key-secret= to "
                    "encrypt it",
                    path);
    }
    return true;
}

/* path= with commas doubled, as -drive option values need them. */
static char *escape_commas(const char *str)
{
    GString *out = g_string_new(NULL);

    for (const char *p = str; *p; p++) {
        g_string_append_c(out, *p);
        if (*p == ',') {
            g_string_append_c(out, ',');
        }
    }
    return g_string_free(out, FALSE);
}

/*
 * Open path= as a drive named ID-nvram, so that snapshots (which cover every
 * drive) take the TPM state along, exactly as with drive=.
 */
static BlockDriverState *storage_open_path(const char *path, const char *key_secret,
                                           uint64_t need, const char *drive_id,
                                           GError **errp)
{
    g_autofree char *file = escape_commas(path);
    g_autofree char *optstr = NULL;
    bool created = false;
    BlockDriverState *bs;

    if (drive_find(drive_id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "path= opens its image as drive '%s', but a drive with that id "
                    "exists; rename that drive",
                    drive_id);
        return NULL;
    }
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        if (!storage_create_image(path, key_secret, need, errp)) {
            return NULL;
        }
        created = true;
    }
    optstr = g_strdup_printf("if=none,id=%s,file=%s,format=qcow2%s%s", drive_id, file,
                             key_secret ? ",encrypt.key-secret=" : "",
                             key_secret ? key_secret : "");
    bs = drive_new_from_string(optstr, errp);
    if (!bs) {
        if (created) {
            unlink(path);
        }
        return NULL;
    }
    return bs;
}

TPMBuiltinStorage *tpm_builtin_storage_open(const char *drive_id, const char *path,
                                            const char *key_secret, uint64_t need,
                                            const char *backend_id, GError **errp)
{
    g_autofree char *user = g_strdup_printf("tpmdev '%s'", backend_id);
    g_autofree char *path_drive = g_strdup_printf("%s-nvram", backend_id);
    TPMBuiltinStorage *s;
    BlockDriverState *bs;

    if (drive_id) {
        bs = storage_open_drive(drive_id, user, errp);
    } else {
        bs = storage_open_path(path, key_secret, need, path_drive, errp);
        if (bs && !drive_claim(bs, user, errp)) {
            bs = NULL;
        }
    }
    if (!bs) {
        return NULL;
    }
    s = g_new0(TPMBuiltinStorage, 1);
    s->bs = bs;
    s->drive_id = g_strdup(drive_id ? drive_id : path_drive);
    s->path = g_strdup(path);
    s->name = drive_id ? g_strdup_printf("drive '%s'", drive_id)
                       : g_strdup_printf("TPM state image '%s'", path);
    return s;
}

void tpm_builtin_storage_close(TPMBuiltinStorage *s)
{
    if (!s) {
        return;
    }
    g_free(s->name);
    g_free(s->drive_id);
    g_free(s->path);
    g_free(s);
}

const TPMNvramOps *tpm_builtin_storage_ops(TPMBuiltinStorage *s)
{
    return &storage_ops;
}

void *tpm_builtin_storage_opaque(TPMBuiltinStorage *s)
{
    return s;
}

const char *tpm_builtin_storage_name(TPMBuiltinStorage *s)
{
    return s->name;
}

int64_t tpm_builtin_storage_size(TPMBuiltinStorage *s)
{
    return bdrv_getlength(s->bs);
}

void tpm_builtin_storage_get_options(TPMBuiltinStorage *s, GHashTable *kv)
{
    g_hash_table_insert(kv, g_strdup("drive"), g_strdup(s->drive_id));
    if (s->path) {
        g_hash_table_insert(kv, g_strdup("path"), g_strdup(s->path));
    }
}
