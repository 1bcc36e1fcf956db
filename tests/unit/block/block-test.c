/*
 * Helpers for the block layer tests; see block-test.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "block-test.h"
#include "crypto/secret.h"

static char *tmpdir;

const char *bt_tmpdir(void)
{
    if (!tmpdir) {
        GError *err = NULL;
        tmpdir = g_dir_make_tmp("tpmvm-block-XXXXXX", &err);
        g_assert_no_error(err);
    }
    return tmpdir;
}

char *bt_path(const char *name)
{
    return g_build_filename(bt_tmpdir(), name, NULL);
}

static void rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;

    if (d) {
        while ((name = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(path, name, NULL);
            if (g_file_test(p, G_FILE_TEST_IS_DIR)) {
                rm_rf(p);
            } else {
                g_unlink(p);
            }
        }
        g_dir_close(d);
    }
    g_rmdir(path);
}

void bt_cleanup(void)
{
    drive_close_all();
    if (tmpdir && g_getenv("TPMVM_TEST_KEEP")) {
        g_printerr("# keeping %s\n", tmpdir);
    } else if (tmpdir) {
        rm_rf(tmpdir);
        g_free(tmpdir);
        tmpdir = NULL;
    }
}

void bt_create(const char *fmt, const char *path, uint64_t size, const char *opts)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_parse(opts ? opts : "", NULL, &err);

    g_assert_no_error(err);
    g_assert_true(bdrv_create(fmt, path, size, kv, &err));
    g_assert_no_error(err);
}

BlockDriverState *bt_open_opts(const char *opts, int flags, GError **errp)
{
    g_autoptr(KeyVal) kv = keyval_parse(opts, NULL, errp);

    if (!kv) {
        return NULL;
    }
    return bdrv_open(NULL, kv, flags, errp);
}

BlockDriverState *bt_open(const char *path, const char *fmt, bool rw)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(KeyVal) kv = keyval_new();
    BlockDriverState *bs;

    keyval_set(kv, "driver", fmt);
    bs = bdrv_open(path, kv, (rw ? BDRV_O_RDWR : 0) | BDRV_O_NO_FLUSH, &err);
    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

uint8_t bt_pattern_byte(uint64_t off, uint32_t seed)
{
    uint64_t x =
        (off + 1) * 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed * 0xBF58476D1CE4E5B9ull);

    if (seed == 0) {
        return 0;
    }
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    return (uint8_t)x;
}

void bt_fill(uint8_t *buf, uint64_t off, uint64_t len, uint32_t seed)
{
    for (uint64_t i = 0; i < len; i++) {
        buf[i] = bt_pattern_byte(off + i, seed);
    }
}

void bt_write_pattern(BlockDriverState *bs, uint64_t off, uint64_t len, uint32_t seed)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *buf = g_malloc(len);

    bt_fill(buf, off, len, seed);
    g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
    g_assert_no_error(err);
}

void bt_check_pattern(BlockDriverState *bs, uint64_t off, uint64_t len, uint32_t seed)
{
    g_autoptr(GError) err = NULL;
    g_autofree uint8_t *buf = g_malloc(len);

    g_assert_true(bdrv_pread(bs, off, buf, len, &err));
    g_assert_no_error(err);
    for (uint64_t i = 0; i < len; i++) {
        if (buf[i] != bt_pattern_byte(off + i, seed)) {
            g_error("byte at offset %" G_GUINT64_FORMAT
                    " is 0x%02x, expected 0x%02x (seed %u)",
                    off + i, buf[i], bt_pattern_byte(off + i, seed), seed);
        }
    }
}

char *bt_file_hash(const char *path)
{
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

int bt_run(char **out, char **err, const char *const *argv)
{
    g_autoptr(GError) gerr = NULL;
    int status = -1;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, out,
                      err, &status, &gerr)) {
        g_error("cannot run %s: %s", argv[0], gerr->message);
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return -1;
}

const char *bt_img_tool(void)
{
    static char *path;

    if (!path) {
        const char *b = g_getenv("TPMVM_BUILD_DIR");
        path = g_build_filename(b ? b : ".", "tools", "tpmvm-img", NULL);
    }
    return path;
}

bool bt_have(const char *prog)
{
    g_autofree char *p = g_find_program_in_path(prog);

    return p != NULL;
}

void bt_assert_clean(BlockDriverState *bs)
{
    g_autoptr(GError) err = NULL;
    BdrvCheckResult res;

    g_assert_true(bdrv_check(bs, &res, BDRV_FIX_NONE, &err));
    g_assert_no_error(err);
    g_assert_cmpint(res.corruptions, ==, 0);
    g_assert_cmpint(res.leaks, ==, 0);
    g_assert_cmpint(res.check_errors, ==, 0);
}

void bt_secret(const char *id, const char *pass)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *name = g_strdup_printf("secret-%s", id);
    g_autofree char *path = bt_path(name);
    g_autofree char *opts = NULL;
    g_autoptr(KeyVal) kv = NULL;

    g_assert_true(g_file_set_contents(path, pass, -1, &err));
    opts = g_strdup_printf("id=%s,file=%s", id, path);
    kv = keyval_parse(opts, NULL, &err);
    g_assert_no_error(err);
    g_assert_true(secret_create(kv, &err));
    g_assert_no_error(err);
}

void bt_create_luks(const char *path, uint64_t size, const char *secret_id,
                    const char *extra)
{
    g_autofree char *opts = g_strdup_printf(
        "encrypt.format=luks,encrypt.key-secret=%s,encrypt.iter-time=10%s%s", secret_id,
        extra ? "," : "", extra ? extra : "");

    bt_create("qcow2", path, size, opts);
}

BlockDriverState *bt_open_luks(const char *path, const char *secret_id, bool rw)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *opts = g_strdup_printf(
        "driver=qcow2,file.filename=%s,encrypt.key-secret=%s", path, secret_id);
    BlockDriverState *bs =
        bt_open_opts(opts, (rw ? BDRV_O_RDWR : 0) | BDRV_O_NO_FLUSH, &err);

    g_assert_no_error(err);
    g_assert_nonnull(bs);
    return bs;
}

void bt_patch(const char *path, uint64_t offset, const void *buf, size_t len)
{
    FILE *f = fopen(path, "r+b");

    g_assert_nonnull(f);
    g_assert_cmpint(fseeko(f, offset, SEEK_SET), ==, 0);
    g_assert_cmpuint(fwrite(buf, 1, len, f), ==, len);
    g_assert_cmpint(fclose(f), ==, 0);
}

void bt_patch_be16(const char *path, uint64_t offset, uint16_t v)
{
    uint16_t be = GUINT16_TO_BE(v);

    bt_patch(path, offset, &be, 2);
}

void bt_patch_be32(const char *path, uint64_t offset, uint32_t v)
{
    uint32_t be = GUINT32_TO_BE(v);

    bt_patch(path, offset, &be, 4);
}

void bt_patch_be64(const char *path, uint64_t offset, uint64_t v)
{
    uint64_t be = GUINT64_TO_BE(v);

    bt_patch(path, offset, &be, 8);
}

static void bt_read(const char *path, uint64_t offset, void *buf, size_t len)
{
    FILE *f = fopen(path, "rb");

    g_assert_nonnull(f);
    g_assert_cmpint(fseeko(f, offset, SEEK_SET), ==, 0);
    g_assert_cmpuint(fread(buf, 1, len, f), ==, len);
    fclose(f);
}

uint64_t bt_read_be64(const char *path, uint64_t offset)
{
    uint64_t v;

    bt_read(path, offset, &v, 8);
    return GUINT64_FROM_BE(v);
}

uint32_t bt_read_be32(const char *path, uint64_t offset)
{
    uint32_t v;

    bt_read(path, offset, &v, 4);
    return GUINT32_FROM_BE(v);
}

void bt_copy_file(const char *from, const char *to)
{
    g_autofree char *data = NULL;
    gsize len;

    g_assert_true(g_file_get_contents(from, &data, &len, NULL));
    bt_write_file(to, data, len);
}

void bt_write_file(const char *path, const void *data, gsize len)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(
        g_file_set_contents_full(path, data, len, G_FILE_SET_CONTENTS_NONE, 0644, &err));
    g_assert_no_error(err);
}
