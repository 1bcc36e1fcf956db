/*
 * The built-in TPM's libtpms glue with real libtpms and a real file as its
 * NVRAM medium: commands, persistence across restarts, durability before the
 * response, locality, vmstate blobs, startup errors.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include <libtpms/tpm_tis.h>

#include "hw/tpm/tpm_builtin_lib.h"
#include "hw/tpm/tpm_nvram.h"
#include "test-builtin-cmds.h"
#include "util/error.h"

typedef struct Fixture {
    char *dir;
    char *path;
    TPMNvramFile *file;
    TPMNvram *nv;
    TPMVersion version;
    uint8_t rsp[4096];
    uint32_t rsp_len;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    int fd;

    f->version = GPOINTER_TO_INT(data) ? GPOINTER_TO_INT(data) : TPM_VERSION_2_0;
    f->dir = g_dir_make_tmp("test-builtin-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, "nv.img", NULL);
    fd = open(f->path, O_RDWR | O_CREAT, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 1024 * 1024), ==, 0);
    close(fd);
}

static void store_open(Fixture *f, bool writable)
{
    GError *err = NULL;
    uint64_t max_blob[TPM_NVRAM_NBLOBS];

    tpm_builtin_lib_blob_limits(f->version, max_blob);
    f->file = tpm_nvram_file_open(f->path, writable, &err);
    g_assert_no_error(err);
    f->nv = tpm_nvram_open(&tpm_nvram_file_ops, f->file, "file 'nv.img'", f->version,
                           max_blob, &err);
    g_assert_no_error(err);
}

static void store_close(Fixture *f)
{
    tpm_nvram_free(f->nv);
    tpm_nvram_file_close(f->file);
    f->nv = NULL;
    f->file = NULL;
}

static void tpm_start(Fixture *f)
{
    GError *err = NULL;

    store_open(f, true);
    tpm_builtin_lib_start(f->version, 4096, f->nv, NULL, &err);
    g_assert_no_error(err);
    g_assert_true(tpm_builtin_lib_is_running());
}

static void tpm_stop(Fixture *f)
{
    tpm_builtin_lib_stop();
    g_assert_false(tpm_builtin_lib_is_running());
    store_close(f);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    tpm_builtin_lib_stop();
    store_close(f);
    g_unlink(f->path);
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

/* Run a command (consumed) at a locality; returns the response code. */
static uint32_t run_at(Fixture *f, uint8_t locty, GByteArray *cmd)
{
    f->rsp_len =
        tpm_builtin_lib_process(locty, cmd->data, cmd->len, f->rsp, sizeof(f->rsp));
    g_byte_array_unref(cmd);
    g_assert_cmpuint(f->rsp_len, >=, 10);
    g_assert_cmpuint(tc_get32(f->rsp + 2), ==, f->rsp_len);
    return tpm_rsp_code(f->rsp, f->rsp_len);
}

static uint32_t run(Fixture *f, GByteArray *cmd)
{
    return run_at(f, 0, cmd);
}

static void test_tpm2_startup_and_get_random(Fixture *f, gconstpointer data)
{
    uint8_t first[32];

    tpm_start(f);
    /* before Startup a TPM 2.0 answers TPM_RC_INITIALIZE */
    g_assert_cmphex(run(f, tpm2_cmd_get_random(32)), ==, TPM2_RC_INITIALIZE);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, TPM2_RC_SUCCESS);
    g_assert_cmphex(run(f, tpm2_cmd_get_random(32)), ==, TPM2_RC_SUCCESS);
    g_assert_cmpuint(f->rsp_len, ==, 12 + 32);
    g_assert_cmpuint(tc_get16(f->rsp + 10), ==, 32);
    memcpy(first, f->rsp + 12, 32);
    g_assert_cmphex(run(f, tpm2_cmd_get_random(32)), ==, TPM2_RC_SUCCESS);
    g_assert_true(memcmp(first, f->rsp + 12, 32) != 0);
    tpm_stop(f);
}

static void test_tpm2_pcr_extend_matches_digest(Fixture *f, gconstpointer data)
{
    uint8_t expect[32] = {0}, in[32];

    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    for (int i = 0; i < 3; i++) {
        memset(in, 0xa0 + i, sizeof(in));
        g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(10, in)), ==, 0);
        tpm2_pcr_extend_expect(expect, in);
    }
    g_assert_cmphex(run(f, tpm2_cmd_pcr_read(10)), ==, 0);
    g_assert_nonnull(tpm2_rsp_pcr_read_digest(f->rsp, f->rsp_len));
    g_assert_cmpmem(tpm2_rsp_pcr_read_digest(f->rsp, f->rsp_len), 32, expect, 32);
    tpm_stop(f);
}

static void nv_read_expect(Fixture *f, const uint8_t *want, uint16_t len)
{
    const uint8_t *got;
    uint16_t got_len = 0;

    g_assert_cmphex(run(f, tpm2_cmd_nv_read(TEST_NV_INDEX, len, 0)), ==, 0);
    got = tpm2_rsp_nv_read_data(f->rsp, f->rsp_len, &got_len);
    g_assert_nonnull(got);
    g_assert_cmpmem(got, got_len, want, len);
}

static void test_tpm2_nv_survives_restart_pcrs_reset(Fixture *f, gconstpointer data)
{
    uint8_t msg[16] = "persist me 0123", in[32], zero[32] = {0};

    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), ==, 0);
    memset(in, 0x55, sizeof(in));
    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(10, in)), ==, 0);
    /* process "killed": no Shutdown, libtpms terminated, store closed */
    tpm_stop(f);

    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    nv_read_expect(f, msg, sizeof(msg));
    g_assert_cmphex(run(f, tpm2_cmd_pcr_read(10)), ==, 0);
    g_assert_cmpmem(tpm2_rsp_pcr_read_digest(f->rsp, f->rsp_len), 32, zero, 32);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==,
                    TPM2_RC_NV_DEFINED);
    tpm_stop(f);
}

static void test_tpm2_state_is_durable_before_response(Fixture *f, gconstpointer data)
{
    uint8_t msg[8] = "abcdefg";
    TPMNvramStats a, b;
    uint64_t gen;

    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    gen = tpm_nvram_generation(f->nv, TPM_NVRAM_BLOB_PERMALL);
    tpm_nvram_get_stats(f->nv, &a);
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), ==, 0);
    tpm_nvram_get_stats(f->nv, &b);
    /* one slot write and one flush, done before process() returned */
    g_assert_cmpuint(b.writes - a.writes, ==, 1);
    g_assert_cmpuint(b.flushes - a.flushes, ==, 1);
    g_assert_cmpuint(tpm_nvram_generation(f->nv, TPM_NVRAM_BLOB_PERMALL), ==, gen + 1);
    g_test_message("NV_Write: %" G_GUINT64_FORMAT " bytes written, permall %u bytes",
                   b.bytes_written - a.bytes_written,
                   (unsigned)(b.bytes_written - a.bytes_written));
    /* a second store of the same bytes writes nothing */
    tpm_nvram_get_stats(f->nv, &a);
    g_assert_cmphex(run(f, tpm2_cmd_get_random(8)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_read(0)), ==, 0);
    tpm_nvram_get_stats(f->nv, &b);
    g_assert_cmpuint(b.writes, ==, a.writes);
    tpm_stop(f);
}

static void test_tpm2_failed_store_gives_error_response(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    uint8_t msg[4] = "xyz";
    uint64_t max_blob[TPM_NVRAM_NBLOBS];

    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    tpm_stop(f);

    /* the medium opened read-only: every write fails like a dying disk */
    tpm_builtin_lib_blob_limits(f->version, max_blob);
    f->file = tpm_nvram_file_open(f->path, false, &err);
    f->nv = tpm_nvram_open(&tpm_nvram_file_ops, f->file, "file 'nv.img'", f->version,
                           max_blob, &err);
    g_assert_no_error(err);
    g_assert_true(tpm_builtin_lib_start(f->version, 4096, f->nv, NULL, &err));
    g_assert_no_error(err);
    if (g_test_subprocess()) {
        /* Startup changes the orderly state: its store fails, so must it */
        g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0x101);
        g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), !=,
                        0);
        return;
    }
    tpm_stop(f);
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*state change of a command could not be saved*");
}

static void test_tpm2_locality_reaches_libtpms(Fixture *f, gconstpointer data)
{
    uint8_t in[32];

    memset(in, 1, sizeof(in));
    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    /* PC Client PTP: PCR 17 is extendable only from localities 2-4 */
    g_assert_cmphex(run_at(f, 0, tpm2_cmd_pcr_extend(17, in)), ==, TPM2_RC_LOCALITY);
    g_assert_cmphex(run_at(f, 3, tpm2_cmd_pcr_extend(17, in)), ==, 0);
    tpm_stop(f);
}

static void test_tpm2_established_reset_needs_locality_3(Fixture *f, gconstpointer data)
{
    GError *err = NULL;

    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_false(tpm_builtin_lib_get_established());
    /*
     * A DRTM hash sequence (TIS 1.3 §5.8, locality 4) sets tpmEstablished.
     * The TIS never issues one (it drops locality-4 writes), so the test
     * calls libtpms directly after a command left locality 4 current.
     */
    g_assert_cmphex(run_at(f, 4, tpm2_cmd_get_random(4)), ==, 0);
    g_assert_cmphex(TPM_IO_Hash_Start(), ==, 0);
    g_assert_cmphex(TPM_IO_Hash_End(), ==, 0);
    /* the cached flag follows after the next command */
    g_assert_cmphex(run(f, tpm2_cmd_get_random(4)), ==, 0);
    g_assert_true(tpm_builtin_lib_get_established());
    g_assert_false(tpm_builtin_lib_reset_established(0, &err));
    g_assert_nonnull(strstr(err->message, "locality 3 or 4"));
    g_clear_error(&err);
    g_assert_true(tpm_builtin_lib_reset_established(3, &err));
    g_assert_no_error(err);
    g_assert_false(tpm_builtin_lib_get_established());
    tpm_stop(f);
}

static void test_tpm2_oversized_command_gets_size_error(Fixture *f, gconstpointer data)
{
    GByteArray *big = g_byte_array_new();

    tpm_start(f);
    g_byte_array_set_size(big, 5000);
    memset(big->data, 0x80, big->len);
    g_assert_cmphex(run(f, big), ==, 0x142);
    g_assert_cmphex(tc_get16(f->rsp), ==, TPM2_ST_NO_SESSIONS);
    tpm_stop(f);
}

static void test_tpm2_short_commands_get_errors(Fixture *f, gconstpointer data)
{
    static const uint8_t junk[] = {0x80, 0x01, 0, 0, 0, 0x30, 0, 0, 1, 0x44, 0, 0};

    tpm_start(f);
    for (uint32_t len = 0; len <= sizeof(junk); len++) {
        f->rsp_len = tpm_builtin_lib_process(0, junk, len, f->rsp, sizeof(f->rsp));
        g_assert_cmpuint(f->rsp_len, >=, 10);
        g_assert_cmphex(tpm_rsp_code(f->rsp, f->rsp_len), !=, 0);
    }
    /* still answers a valid command */
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    tpm_stop(f);
}

static void test_tpm2_state_blobs_restore_volatile(Fixture *f, gconstpointer data)
{
    TPMBuiltinBlobs blobs;
    GError *err = NULL;
    uint8_t in[32], expect[32] = {0};

    memset(in, 0x77, sizeof(in));
    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(11, in)), ==, 0);
    tpm2_pcr_extend_expect(expect, in);
    g_assert_true(tpm_builtin_lib_get_state(&blobs, &err));
    g_assert_no_error(err);
    g_assert_nonnull(blobs.blob[TPM_NVRAM_BLOB_PERMALL]);
    g_assert_nonnull(blobs.blob[TPM_NVRAM_BLOB_VOLATILE]);
    g_test_message("permall %zu bytes, volatile %zu bytes",
                   g_bytes_get_size(blobs.blob[TPM_NVRAM_BLOB_PERMALL]),
                   g_bytes_get_size(blobs.blob[TPM_NVRAM_BLOB_VOLATILE]));
    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(11, in)), ==, 0);

    /* restart from the blobs: resumes where get_state was, without Startup */
    g_assert_true(tpm_builtin_lib_start(f->version, 4096, f->nv, &blobs, &err));
    g_assert_no_error(err);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_read(11)), ==, 0);
    g_assert_cmpmem(tpm2_rsp_pcr_read_digest(f->rsp, f->rsp_len), 32, expect, 32);
    tpm_builtin_blobs_clear(&blobs);

    /* a restart without blobs is a power cycle: Startup needed again */
    g_assert_true(tpm_builtin_lib_start(f->version, 4096, f->nv, NULL, &err));
    g_assert_cmphex(run(f, tpm2_cmd_pcr_read(11)), ==, TPM2_RC_INITIALIZE);
    tpm_stop(f);
}

static void test_tpm2_full_nv_fits_its_slot(Fixture *f, gconstpointer data)
{
    uint32_t rc = 0;
    unsigned n = 0;
    const uint8_t *p;
    uint32_t len = 0;

    tpm_start(f);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    /* fill the TPM's NV memory with the largest indices it accepts */
    while (n < 400) {
        rc = run(f, tpm2_cmd_nv_define(TEST_NV_INDEX + n, 2048));
        if (rc != 0) {
            break;
        }
        n++;
    }
    /* TPM_RC_NV_SPACE (0x14b), never a failed store (0x101) */
    g_assert_cmphex(rc, ==, 0x14b);
    g_assert_true(tpm_nvram_get(f->nv, TPM_NVRAM_BLOB_PERMALL, &p, &len));
    g_test_message(
        "%u indices of 2048 bytes; permall %u bytes, slot capacity %" G_GUINT64_FORMAT, n,
        len, tpm_nvram_capacity(f->nv, TPM_NVRAM_BLOB_PERMALL));
    g_assert_cmpuint(len, <=, tpm_nvram_capacity(f->nv, TPM_NVRAM_BLOB_PERMALL));
    tpm_stop(f);
}

static void test_tpm2_garbage_permall_fails_startup(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    uint8_t junk[3000];

    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(i * 13 + 5);
    }
    store_open(f, true);
    /* a well-formed slot whose payload libtpms cannot parse */
    g_assert_true(
        tpm_nvram_store(f->nv, TPM_NVRAM_BLOB_PERMALL, junk, sizeof(junk), &err));
    g_assert_false(tpm_builtin_lib_start(f->version, 4096, f->nv, NULL, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "libtpms could not start the TPM 2.0"));
    g_clear_error(&err);
    g_assert_false(tpm_builtin_lib_is_running());
    /* the process keeps answering with errors, never crashes */
    f->rsp_len = tpm_builtin_lib_process(0, junk, 12, f->rsp, sizeof(f->rsp));
    g_assert_cmphex(tpm_rsp_code(f->rsp, f->rsp_len), ==, 0x101);
}

static void test_tpm12_startup_capability_pcr(Fixture *f, gconstpointer data)
{
    uint8_t in[20], expect[20] = {0};

    tpm_start(f);
    g_assert_cmphex(run(f, tpm12_cmd_startup(TPM12_ST_CLEAR)), ==, 0);
    g_assert_cmphex(tc_get16(f->rsp), ==, 0x00c4);
    g_assert_cmphex(run(f, tpm12_cmd_get_capability_pcrs()), ==, 0);
    g_assert_cmpuint(f->rsp_len, ==, 18);
    g_assert_cmpuint(tc_get32(f->rsp + 10), ==, 4);
    g_assert_cmpuint(tc_get32(f->rsp + 14), ==, 24);
    for (int i = 0; i < 2; i++) {
        memset(in, 0x30 + i, sizeof(in));
        g_assert_cmphex(run(f, tpm12_cmd_extend(7, in)), ==, 0);
        tpm12_pcr_extend_expect(expect, in);
        g_assert_cmpmem(f->rsp + 10, 20, expect, 20);
    }
    g_assert_cmphex(run(f, tpm12_cmd_pcr_read(7)), ==, 0);
    g_assert_cmpmem(f->rsp + 10, 20, expect, 20);
    tpm_stop(f);
    /* the drive now holds a TPM 1.2; asking for 2.0 is refused */
    {
        GError *err = NULL;
        uint64_t max_blob[TPM_NVRAM_NBLOBS];
        TPMNvramFile *file = tpm_nvram_file_open(f->path, true, &err);
        tpm_builtin_lib_blob_limits(TPM_VERSION_2_0, max_blob);
        g_assert_null(
            tpm_nvram_open(&tpm_nvram_file_ops, file, "file", 2, max_blob, &err));
        g_assert_nonnull(strstr(err->message, "TPM 1.2"));
        g_clear_error(&err);
        tpm_nvram_file_close(file);
    }
}

static void test_limits_fit_one_mebibyte(void)
{
    uint64_t max_blob[TPM_NVRAM_NBLOBS];

    tpm_builtin_lib_blob_limits(TPM_VERSION_1_2, max_blob);
    g_assert_cmpuint(max_blob[TPM_NVRAM_BLOB_PERMALL], >=, 10000);
    g_assert_cmpuint(tpm_nvram_required_size(max_blob), <=, 1024 * 1024);
    tpm_builtin_lib_blob_limits(TPM_VERSION_2_0, max_blob);
    g_assert_cmpuint(tpm_nvram_required_size(max_blob), <=, 1024 * 1024);
    g_assert_cmpuint(tpm_builtin_lib_buffer_size(TPM_VERSION_2_0, 0), ==, 4096);
}

#define ADD(path, fn, v)                                                                 \
    g_test_add(path, Fixture, GINT_TO_POINTER(v), fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/builtin/lib/limits-fit-one-mebibyte", test_limits_fit_one_mebibyte);
    ADD("/builtin/lib/tpm2/startup-then-get-random", test_tpm2_startup_and_get_random,
        TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/pcr-extend-matches-independent-digest",
        test_tpm2_pcr_extend_matches_digest, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/nv-survives-restart-pcrs-reset",
        test_tpm2_nv_survives_restart_pcrs_reset, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/state-is-durable-before-response",
        test_tpm2_state_is_durable_before_response, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/failed-store-gives-error-response",
        test_tpm2_failed_store_gives_error_response, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/locality-reaches-libtpms", test_tpm2_locality_reaches_libtpms,
        TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/established-reset-needs-locality-3",
        test_tpm2_established_reset_needs_locality_3, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/oversized-command-gets-size-error",
        test_tpm2_oversized_command_gets_size_error, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/short-commands-get-errors",
        test_tpm2_short_commands_get_errors, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/state-blobs-restore-volatile",
        test_tpm2_state_blobs_restore_volatile, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/full-nv-fits-its-slot", test_tpm2_full_nv_fits_its_slot,
        TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm2/garbage-permall-fails-startup",
        test_tpm2_garbage_permall_fails_startup, TPM_VERSION_2_0);
    ADD("/builtin/lib/tpm12/startup-capability-pcr-extend-read",
        test_tpm12_startup_capability_pcr, TPM_VERSION_1_2);
    return g_test_run();
}
