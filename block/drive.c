/*
 * The drive registry: nodes opened from -drive and -blockdev, found by drive
 * id or node-name, each claimed by at most one user (a -tpmdev, a device).
 */
#include <string.h>

#include "block/block_int.h"
#include "util/error.h"
#include "util/log.h"

/* All registered nodes, in order of creation; guarded by drives_lock. */
static GPtrArray *drives;
static GMutex drives_lock;
static unsigned drive_anon_count;

static BlockDriverState *drive_find_locked(const char *id)
{
    for (guint i = 0; drives && i < drives->len; i++) {
        BlockDriverState *bs = g_ptr_array_index(drives, i);
        if (bs->id && strcmp(bs->id, id) == 0) {
            return bs;
        }
    }
    return NULL;
}

BlockDriverState *drive_find(const char *id)
{
    BlockDriverState *bs;

    g_mutex_lock(&drives_lock);
    bs = drive_find_locked(id);
    g_mutex_unlock(&drives_lock);
    return bs;
}

static bool drive_register(BlockDriverState *bs, const char *id, const char *kind,
                           GError **errp)
{
    bool ok = true;

    g_mutex_lock(&drives_lock);
    if (drive_find_locked(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Duplicate %s '%s': every drive id and node-name must be unique",
                    kind, id);
        ok = false;
    } else {
        if (!drives) {
            drives = g_ptr_array_new();
        }
        g_free(bs->id);
        bs->id = g_strdup(id);
        g_ptr_array_add(drives, bs);
    }
    g_mutex_unlock(&drives_lock);
    return ok;
}

/* cache= modes of -drive as open flags. */
static bool drive_parse_cache(const char *mode, int *flags, GError **errp)
{
    if (!strcmp(mode, "writeback")) {
        return true;
    } else if (!strcmp(mode, "none")) {
        *flags |= BDRV_O_NOCACHE;
    } else if (!strcmp(mode, "directsync")) {
        *flags |= BDRV_O_NOCACHE | BDRV_O_WRITETHROUGH;
    } else if (!strcmp(mode, "writethrough")) {
        *flags |= BDRV_O_WRITETHROUGH;
    } else if (!strcmp(mode, "unsafe")) {
        *flags |= BDRV_O_NO_FLUSH;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Invalid cache option '%s' (use writeback, none, directsync, "
                    "writethrough or unsafe)",
                    mode);
        return false;
    }
    return true;
}

static const char *const drive_own_keys[] = {
    "if", "id", "file", "format", "readonly", "cache", NULL,
};

static bool drive_is_own_key(const char *key)
{
    for (int i = 0; drive_own_keys[i]; i++) {
        if (!strcmp(key, drive_own_keys[i])) {
            return true;
        }
    }
    return false;
}

BlockDriverState *drive_new_from_string(const char *optstr, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(optstr, NULL, errp);
    g_autoptr(KeyVal) opts = NULL;
    g_autofree char *auto_id = NULL;
    const char *iface, *id, *file, *format, *cache;
    int flags = BDRV_O_RDWR;
    bool readonly;
    BlockDriverState *bs;

    if (!kv) {
        return NULL;
    }
    iface = keyval_get(kv, "if");
    if (iface && strcmp(iface, "none") != 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-drive if=%s is not supported; use if=none and attach the drive "
                    "with its id",
                    iface);
        return NULL;
    }
    id = keyval_get(kv, "id");
    if (!id) {
        g_mutex_lock(&drives_lock);
        auto_id = g_strdup_printf("none%u", drive_anon_count++);
        g_mutex_unlock(&drives_lock);
        id = auto_id;
    }
    if (drive_find(id)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "Duplicate ID '%s' for drive",
                    id);
        return NULL;
    }
    file = keyval_get(kv, "file");
    if (!file || !file[0]) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-drive id=%s: Parameter 'file' is missing (the image file name)",
                    id);
        return NULL;
    }
    format = keyval_get(kv, "format");
    if (!keyval_get_bool(kv, "readonly", false, &readonly, errp)) {
        return NULL;
    }
    if (readonly) {
        flags &= ~BDRV_O_RDWR;
    }
    cache = keyval_get(kv, "cache");
    if (cache && !drive_parse_cache(cache, &flags, errp)) {
        return NULL;
    }

    /* Everything else (encrypt.*, file.*) is for the format and protocol nodes. */
    opts = keyval_new();
    if (format) {
        keyval_set(opts, "driver", format);
    }
    for (const char *const *k = keyval_keys(kv); *k; k++) {
        if (!drive_is_own_key(*k)) {
            keyval_set(opts, *k, keyval_get(kv, *k));
        }
    }
    bs = bdrv_open(file, opts, flags, errp);
    if (!bs) {
        return NULL;
    }
    if (!drive_register(bs, id, "ID", errp)) {
        bdrv_unref(bs);
        return NULL;
    }
    return bs;
}

BlockDriverState *blockdev_new_from_string(const char *optstr, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(optstr, NULL, errp);
    g_autofree char *node_name = NULL;
    BlockDriverState *bs;

    if (!kv) {
        return NULL;
    }
    if (!keyval_has(kv, "driver")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-blockdev: Parameter 'driver' is missing");
        return NULL;
    }
    if (!keyval_has(kv, "node-name")) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-blockdev: Parameter 'node-name' is missing (a name for the node)");
        return NULL;
    }
    node_name = g_strdup(keyval_get(kv, "node-name"));
    if (drive_find(node_name)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Duplicate nodes with node-name='%s'", node_name);
        return NULL;
    }
    bs = bdrv_open(NULL, kv, BDRV_O_RDWR, errp);
    if (!bs) {
        return NULL;
    }
    if (!drive_register(bs, node_name, "node-name", errp)) {
        bdrv_unref(bs);
        return NULL;
    }
    return bs;
}

void drive_foreach(void (*fn)(BlockDriverState *bs, void *opaque), void *opaque)
{
    g_autoptr(GPtrArray) copy = g_ptr_array_new();

    g_mutex_lock(&drives_lock);
    for (guint i = 0; drives && i < drives->len; i++) {
        g_ptr_array_add(copy, g_ptr_array_index(drives, i));
    }
    g_mutex_unlock(&drives_lock);
    for (guint i = 0; i < copy->len; i++) {
        fn(g_ptr_array_index(copy, i), opaque);
    }
}

void drive_close_all(void)
{
    GPtrArray *all;

    g_mutex_lock(&drives_lock);
    all = drives;
    drives = NULL;
    drive_anon_count = 0;
    g_mutex_unlock(&drives_lock);
    if (!all) {
        return;
    }
    /* Newest first: a node may hold a reference to an older one. */
    for (guint i = all->len; i > 0; i--) {
        BlockDriverState *bs = g_ptr_array_index(all, i - 1);
        GError *err = NULL;
        if (!bdrv_flush(bs, &err)) {
            warn_report_err(err);
        }
        bdrv_unref(bs);
    }
    g_ptr_array_unref(all);
}

bool drive_claim(BlockDriverState *bs, const char *user, GError **errp)
{
    bool ok = true;

    g_rec_mutex_lock(&bs->lock);
    if (bs->claimed_by) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "Drive '%s' is already in use by '%s'",
                    bs->id ? bs->id : bs->filename, bs->claimed_by);
        ok = false;
    } else {
        bs->claimed_by = g_strdup(user);
    }
    g_rec_mutex_unlock(&bs->lock);
    return ok;
}
