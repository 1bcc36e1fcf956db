/*
 * Power loss under the builtin TPM: its NVRAM on a LUKS qcow2 whose file
 * sits on the blkcrash filter (block/blkcrash.h), which at a chosen write
 * drops everything not flushed (keeping a seeded subset) and then ignores
 * all I/O, like a machine that lost power. For every crash point:
 * the next start succeeds, and the NV index holds the last value whose
 * response was returned before the power loss, or the one in flight.
 */
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "block/blkcrash.h"
#include "block/block.h"
#include "crypto/secret.h"
#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_builtin.h"
#include "hw/tpm/tpm_nvram.h"
#include "test-builtin-cmds.h"
#include "util/keyval.h"

static char *dir, *img;
static uint8_t buf[4096];

/* The drive as the TPM sees it (a test-local TPMNvramOps over the block layer). */
static bool bs_pread(void *o, uint64_t off, void *b, uint64_t n, GError **errp)
{
    return bdrv_pread(o, off, b, n, errp);
}

static bool bs_pwrite(void *o, uint64_t off, const void *b, uint64_t n, GError **errp)
{
    return bdrv_pwrite(o, off, b, n, errp);
}

static bool bs_flush(void *o, GError **errp)
{
    return bdrv_flush(o, errp);
}

static int64_t bs_size(void *o, GError **errp)
{
    return bdrv_getlength(o);
}

static const TPMNvramOps bs_ops = {bs_pread, bs_pwrite, bs_flush, bs_size};

static BlockDriverState *drive_open(uint64_t crash_after, uint64_t seed)
{
    g_autoptr(KeyVal) opts = keyval_new();
    GError *err = NULL;
    BlockDriverState *bs;

    keyval_set(opts, "driver", "qcow2");
    keyval_set(opts, "encrypt.key-secret", "sec0");
    if (crash_after) {
        g_autofree char *n = g_strdup_printf("%" G_GUINT64_FORMAT, crash_after);
        g_autofree char *s = g_strdup_printf("%" G_GUINT64_FORMAT, seed);
        keyval_set(opts, "file.driver", "blkcrash");
        keyval_set(opts, "file.crash-after", n);
        keyval_set(opts, "file.seed", s);
        keyval_set(opts, "file.file.driver", "file");
        keyval_set(opts, "file.file.filename", img);
    } else {
        keyval_set(opts, "file.filename", img);
    }
    bs = bdrv_open(NULL, opts, BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    return bs;
}

static TPMBackend *tpm_open(BlockDriverState *bs)
{
    GError *err = NULL;
    TPMBackend *be =
        tpm_builtin_new("tpm0", TPM_VERSION_2_0, &bs_ops, bs, "drive 'crash'", &err);

    g_assert_no_error(err);
    g_assert_true(tpm_backend_startup_tpm(be, 4096, &err));
    g_assert_no_error(err);
    return be;
}

static void completed(void *opaque, TPMBackendCmd *cmd)
{
}

static uint32_t run(TPMBackend *be, GByteArray *c)
{
    TPMBackendCmd cmd;

    memcpy(buf, c->data, c->len);
    cmd =
        (TPMBackendCmd){.in = buf, .in_len = c->len, .out = buf, .out_len = sizeof(buf)};
    g_byte_array_unref(c);
    g_assert_true(tpm_backend_deliver_request(be, &cmd, completed, NULL, NULL));
    tpm_backend_finish_sync(be);
    return tc_get32(buf + 6);
}

static GByteArray *nv_write_value(uint64_t v)
{
    uint8_t data[8];
    for (int i = 0; i < 8; i++) {
        data[i] = v >> (56 - 8 * i);
    }
    return tpm2_cmd_nv_write(TEST_NV_INDEX, data, sizeof(data), 0);
}

static uint64_t nv_read_value(TPMBackend *be)
{
    const uint8_t *p;
    uint16_t len = 0;
    uint64_t v = 0;

    g_assert_cmphex(run(be, tpm2_cmd_nv_read(TEST_NV_INDEX, 8, 0)), ==, 0);
    p = tpm2_rsp_nv_read_data(buf, tc_get32(buf + 2), &len);
    g_assert_nonnull(p);
    g_assert_cmpuint(len, ==, 8);
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void test_power_loss_at_every_write(void)
{
    BlockDriverState *bs = drive_open(0, 0);
    TPMBackend *be = tpm_open(bs);
    uint64_t acked = 0, runs = 0, died = 0, in_flight_kept = 0;
    /* a boot writes about 13 times (Startup, 12 NV_Writes): crash at each */
    unsigned max_crash = 16, seeds = g_test_slow() ? 32 : 8;

    g_assert_cmphex(run(be, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(be, tpm2_cmd_nv_define(TEST_NV_INDEX, 8)), ==, 0);
    g_assert_cmphex(run(be, nv_write_value(0)), ==, 0);
    tpm_backend_destroy(be);
    bdrv_close(bs);

    for (unsigned crash_after = 1; crash_after <= max_crash; crash_after++) {
        for (uint64_t seed = 1; seed <= seeds; seed++) {
            uint64_t v, sent = acked;
            BlockDriverState *crash;

            /* a boot on a disk that loses power at its crash_after-th write */
            crash = drive_open(crash_after, seed);
            be = tpm_open(crash);
            if (run(be, tpm2_cmd_startup(TPM2_SU_CLEAR)) == 0) {
                for (int i = 0; i < 12 && !blkcrash_is_dead(crash); i++) {
                    uint32_t rc = run(be, nv_write_value(++sent));
                    /* a response after the power loss was never seen */
                    if (!blkcrash_is_dead(crash)) {
                        g_assert_cmphex(rc, ==, 0);
                        acked = sent;
                    }
                }
            }
            died += blkcrash_is_dead(crash);
            tpm_backend_destroy(be);
            bdrv_close(crash);

            /* the next boot */
            bs = drive_open(0, 0);
            be = tpm_open(bs);
            g_assert_cmphex(run(be, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
            v = nv_read_value(be);
            if (v != acked && v != acked + 1) {
                g_error("crash after write %u (seed %" G_GUINT64_FORMAT
                        "): NV holds %" G_GUINT64_FORMAT
                        ", acknowledged %" G_GUINT64_FORMAT,
                        crash_after, seed, v, acked);
            }
            in_flight_kept += v == acked + 1 && v <= sent;
            acked = v;
            tpm_backend_destroy(be);
            bdrv_close(bs);
            runs++;
        }
    }
    g_test_message("%" G_GUINT64_FORMAT " power losses, %" G_GUINT64_FORMAT
                   " during the run; the write in flight survived %" G_GUINT64_FORMAT
                   " times",
                   runs, died, in_flight_kept);
    g_assert_cmpuint(died, >, runs * 3 / 4);
}

int main(int argc, char **argv)
{
    g_autoptr(KeyVal) s = keyval_new();
    g_autoptr(KeyVal) o = keyval_new();
    GError *err = NULL;
    int rc;

    g_test_init(&argc, &argv, NULL);
    dir = g_dir_make_tmp("test-builtin-crash-XXXXXX", &err);
    g_assert_no_error(err);
    img = g_build_filename(dir, "tpm.qcow2", NULL);
    keyval_set(s, "id", "sec0");
    keyval_set(s, "data", "crash-test-pass");
    g_assert_true(secret_create(s, &err));
    keyval_set(o, "encrypt.format", "luks");
    keyval_set(o, "encrypt.key-secret", "sec0");
    keyval_set(o, "encrypt.iter-time", "10");
    g_assert_true(bdrv_create("qcow2", img, 1024 * 1024, o, &err));
    g_assert_no_error(err);

    g_test_add_func("/builtin/crash/power-loss-at-every-write-keeps-acknowledged-state",
                    test_power_loss_at_every_write);
    rc = g_test_run();
    g_unlink(img);
    g_rmdir(dir);
    g_free(img);
    g_free(dir);
    return rc;
}
