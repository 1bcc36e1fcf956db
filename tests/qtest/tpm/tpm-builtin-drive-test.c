/*
 * The builtin TPM with its NVRAM on an encrypted qcow2 drive, through a
 * tpmvm process: state across restarts, the path= convenience form, and bad
 * input (wrong or missing passphrase, read-only, too small, locked, unknown
 * drive, corrupt or random store contents). Every failed start must leave
 * the image byte-for-byte unchanged.
 *
 * The tests read and damage the drive's contents (inside the encryption)
 * with tpmvm's own block layer, in this process, while no tpmvm runs.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "block/block.h"
#include "crypto/secret.h"
#include "libqtest.h"
#include "test-builtin-cmds.h"
#include "tpm-builtin-util.h"
#include "util/keyval.h"

/* docs/nvram.md: TPM 2.0 geometry */
#define PERMALL_SLOT0 (64 * 1024)
#define PERMALL_SLOT1 (320 * 1024)

static char *template_dir;
static char *template_img;

typedef struct Fixture {
    char *dir;
    char *img;
    char *pass;
    char *args; /* tpmvm arguments for this drive */
} Fixture;

static uint8_t rsp[4096];

static char *tpmvm_img_path(void)
{
    const char *build = g_getenv("TPMVM_BUILD_DIR");
    return g_build_filename(build ? build : ".", "tools", "tpmvm-img", NULL);
}

/* Make an encrypted qcow2 with tpmvm-img and a fast PBKDF2 (iter-time=10). */
static void make_image(const char *dir, const char *img, const char *size)
{
    g_autofree char *tool = tpmvm_img_path();
    g_autofree char *pass = g_build_filename(dir, "pass", NULL);
    g_autofree char *object = g_strdup_printf("secret,id=sec0,file=%s", pass);
    const char *argv[] = {
        tool,
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        object,
        "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
        img,
        size,
        NULL};
    g_autofree char *err = NULL;
    int status = -1;

    g_assert_true(g_file_set_contents(pass, TPM_TEST_PASS, -1, NULL));
    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               NULL, &err, &status, NULL));
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_error("tpmvm-img create failed: %s", err);
    }
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    gchar *contents;
    gsize len;

    f->dir = g_dir_make_tmp("tpm-builtin-drive-XXXXXX", &err);
    g_assert_no_error(err);
    f->img = g_build_filename(f->dir, "tpm.qcow2", NULL);
    f->pass = g_build_filename(f->dir, "pass", NULL);
    g_assert_true(g_file_set_contents(f->pass, TPM_TEST_PASS, -1, NULL));
    /* a copy of one image made per run: LUKS creation is slow */
    g_assert_true(g_file_get_contents(template_img, &contents, &len, NULL));
    g_assert_true(g_file_set_contents(f->img, contents, len, NULL));
    g_free(contents);
    f->args = g_strdup_printf("-machine pc -object secret,id=sec0,file=%s "
                              "-drive if=none,id=tpmnv,file=%s,format=qcow2,"
                              "encrypt.key-secret=sec0",
                              f->pass, f->img);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(f->dir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->dir);
    g_free(f->img);
    g_free(f->pass);
    g_free(f->args);
}

static QTestState *start(Fixture *f, const char *tpmdev_extra)
{
    return qtest_initf(
        "%s -tpmdev builtin,id=tpm0,drive=tpmnv%s -device tpm-tis,tpmdev=tpm0", f->args,
        tpmdev_extra ? tpmdev_extra : "");
}

/* The drive's contents through tpmvm's block layer (no tpmvm may run). */
static BlockDriverState *drive_open(Fixture *f)
{
    static bool have_secret;
    g_autoptr(KeyVal) opts = keyval_new();
    GError *err = NULL;
    BlockDriverState *bs;

    if (!have_secret) {
        g_autoptr(KeyVal) s = keyval_new();
        keyval_set(s, "id", "test-sec");
        keyval_set(s, "data", TPM_TEST_PASS);
        g_assert_true(secret_create(s, &err));
        have_secret = true;
    }
    keyval_set(opts, "driver", "qcow2");
    keyval_set(opts, "file.filename", f->img);
    keyval_set(opts, "encrypt.key-secret", "test-sec");
    bs = bdrv_open(NULL, opts, BDRV_O_RDWR, &err);
    g_assert_no_error(err);
    return bs;
}

static void drive_pread(Fixture *f, uint64_t off, void *buf, size_t len)
{
    BlockDriverState *bs = drive_open(f);
    GError *err = NULL;

    g_assert_true(bdrv_pread(bs, off, buf, len, &err));
    bdrv_close(bs);
}

static void drive_pwrite(Fixture *f, uint64_t off, const void *buf, size_t len)
{
    BlockDriverState *bs = drive_open(f);
    GError *err = NULL;

    g_assert_true(bdrv_pwrite(bs, off, buf, len, &err));
    g_assert_true(bdrv_flush(bs, &err));
    bdrv_close(bs);
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)tc_get32(p) << 32 | tc_get32(p + 4);
}

static GBytes *file_bytes(const char *path)
{
    gchar *data;
    gsize len;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    return g_bytes_new_take(data, len);
}

/* tpmvm with these arguments must fail with `fragment` and leave the image alone. */
static void start_fails(Fixture *f, const char *args, const char *fragment)
{
    g_autoptr(GBytes) before = file_bytes(f->img);
    g_autoptr(GBytes) after = NULL;
    g_autofree char *out = NULL, *err = NULL;
    g_autofree char *full = g_strdup_printf("-accel qtest -display none %s", args);
    int rc = qtest_run(full, &out, &err);

    g_assert_cmpint(rc, ==, 1);
    if (!strstr(err, fragment)) {
        g_error("expected '%s' in: %s", fragment, err);
    }
    g_assert_null(strstr(err, "Sanitizer"));
    after = file_bytes(f->img);
    g_assert_true(g_bytes_equal(before, after));
}

static uint32_t run(QTestState *qts, GByteArray *cmd)
{
    return tpm_tis_run(qts, cmd, rsp, sizeof(rsp));
}

static void nv_expect(QTestState *qts, const uint8_t *want, uint16_t len)
{
    GByteArray *c = tpm2_cmd_nv_read(TEST_NV_INDEX, len, 0);
    uint32_t n = tpm_tis_transmit(qts, 0, c->data, c->len, rsp, sizeof(rsp), true);
    const uint8_t *got;
    uint16_t got_len = 0;

    g_byte_array_unref(c);
    got = tpm2_rsp_nv_read_data(rsp, n, &got_len);
    g_assert_nonnull(got);
    g_assert_cmpmem(got, got_len, want, len);
}

/* Start, Startup, define the test index and write `msg` (twice: v1 then msg). */
static void tpm_with_nv(Fixture *f, const uint8_t *v1, const uint8_t *msg, uint16_t len)
{
    QTestState *qts = start(f, NULL);

    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_nv_define(TEST_NV_INDEX, len)), ==, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_nv_write(TEST_NV_INDEX, v1, len, 0)), ==, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, len, 0)), ==, 0);
    qtest_quit(qts);
}

static void test_nv_survives_restart_pcrs_reset(Fixture *f, gconstpointer data)
{
    uint8_t msg[32] = "the TPM keeps this across boots", in[32], expect[32] = {0};
    uint8_t zero[32] = {0}, sb[512];
    QTestState *qts = start(f, NULL);
    g_autoptr(GBytes) raw = NULL;

    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_get_random(32)), ==, 0);
    for (int i = 0; i < 2; i++) {
        memset(in, 0x21 + i, sizeof(in));
        g_assert_cmphex(run(qts, tpm2_cmd_pcr_extend(10, in)), ==, 0);
        tpm2_pcr_extend_expect(expect, in);
    }
    g_assert_cmphex(run(qts, tpm2_cmd_pcr_read(10)), ==, 0);
    g_assert_cmpmem(tpm2_rsp_pcr_read_digest(rsp, tc_get32(rsp + 2)), 32, expect, 32);
    g_assert_cmphex(run(qts, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), ==,
                    0);
    qtest_quit(qts);

    /* the state is on the drive, and only encrypted in the image file */
    drive_pread(f, 0, sb, sizeof(sb));
    g_assert_cmpmem(sb, 8, "TPMVM-NV", 8);
    raw = file_bytes(f->img);
    g_assert_null(
        g_strstr_len(g_bytes_get_data(raw, NULL), g_bytes_get_size(raw), "TPMVSLOT"));
    g_assert_null(
        memmem(g_bytes_get_data(raw, NULL), g_bytes_get_size(raw), msg, sizeof(msg)));

    qts = start(f, NULL);
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    nv_expect(qts, msg, sizeof(msg));
    g_assert_cmphex(run(qts, tpm2_cmd_pcr_read(10)), ==, 0);
    g_assert_cmpmem(tpm2_rsp_pcr_read_digest(rsp, tc_get32(rsp + 2)), 32, zero, 32);
    qtest_quit(qts);
}

static void test_tpm12_on_drive(Fixture *f, gconstpointer data)
{
    uint8_t in[20], expect[20] = {0}, zero[20] = {0};
    QTestState *qts = qtest_initf("%s -tpmdev builtin,id=tpm0,drive=tpmnv,version=1.2 "
                                  "-device tpm-tis,tpmdev=tpm0",
                                  f->args);
    g_autofree char *args = NULL;

    memset(in, 0x44, sizeof(in));
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm12_cmd_startup(TPM12_ST_CLEAR)), ==, 0);
    g_assert_cmphex(run(qts, tpm12_cmd_get_capability_pcrs()), ==, 0);
    g_assert_cmpuint(tc_get32(rsp + 14), ==, 24);
    g_assert_cmphex(run(qts, tpm12_cmd_extend(9, in)), ==, 0);
    tpm12_pcr_extend_expect(expect, in);
    g_assert_cmphex(run(qts, tpm12_cmd_pcr_read(9)), ==, 0);
    g_assert_cmpmem(rsp + 10, 20, expect, 20);
    qtest_quit(qts);

    qts = qtest_initf("%s -tpmdev builtin,id=tpm0,drive=tpmnv,version=1.2 "
                      "-device tpm-tis,tpmdev=tpm0",
                      f->args);
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm12_cmd_startup(TPM12_ST_CLEAR)), ==, 0);
    g_assert_cmphex(run(qts, tpm12_cmd_pcr_read(9)), ==, 0);
    g_assert_cmpmem(rsp + 10, 20, zero, 20);
    qtest_quit(qts);

    /* this drive holds a TPM 1.2: a TPM 2.0 on it is refused */
    args = g_strdup_printf("%s -tpmdev builtin,id=tpm0,drive=tpmnv -device "
                           "tpm-tis,tpmdev=tpm0",
                           f->args);
    start_fails(f, args,
                "holds the state of a TPM 1.2, not of a TPM 2.0; use version=1.2");
}

static void test_bad_wrong_passphrase(Fixture *f, gconstpointer data)
{
    g_autofree char *args = g_strdup_printf(
        "-machine pc -object secret,id=sec0,data=not-the-passphrase "
        "-drive if=none,id=tpmnv,file=%s,format=qcow2,encrypt.key-secret=sec0 "
        "-tpmdev builtin,id=tpm0,drive=tpmnv -device tpm-tis,tpmdev=tpm0",
        f->img);

    tpm_with_nv(f, (const uint8_t *)"aaaa", (const uint8_t *)"bbbb", 4);
    start_fails(f, args, "Invalid password");
}

static void test_bad_missing_secret(Fixture *f, gconstpointer data)
{
    g_autofree char *args =
        g_strdup_printf("-machine pc -drive if=none,id=tpmnv,file=%s,format=qcow2 "
                        "-tpmdev builtin,id=tpm0,drive=tpmnv -device tpm-tis,tpmdev=tpm0",
                        f->img);
    g_autofree char *args2 =
        g_strdup_printf("-machine pc -drive "
                        "if=none,id=tpmnv,file=%s,format=qcow2,encrypt.key-secret=nosuch "
                        "-tpmdev builtin,id=tpm0,drive=tpmnv -device tpm-tis,tpmdev=tpm0",
                        f->img);

    start_fails(f, args, "encrypt.key-secret");
    start_fails(f, args2, "nosuch");
}

static void test_bad_read_only(Fixture *f, gconstpointer data)
{
    g_autofree char *args =
        g_strdup_printf("%s,readonly=on -tpmdev builtin,id=tpm0,drive=tpmnv "
                        "-device tpm-tis,tpmdev=tpm0",
                        f->args);

    start_fails(f, args,
                "drive 'tpmnv' is read-only, but the TPM writes its state there");
}

static void test_bad_too_small(Fixture *f, gconstpointer data)
{
    g_autofree char *args = NULL;

    g_unlink(f->img);
    make_image(f->dir, f->img, "256K");
    args = g_strdup_printf(
        "%s -tpmdev builtin,id=tpm0,drive=tpmnv -device tpm-tis,tpmdev=tpm0", f->args);
    start_fails(
        f, args,
        "drive 'tpmnv' is too small for the TPM state: it has 262144 bytes, the TPM "
        "needs 983040 bytes; make an image of at least 960 KiB, e.g. tpmvm-img create");
}

static void test_bad_locked_by_another_process(Fixture *f, gconstpointer data)
{
    QTestState *first = start(f, NULL);
    g_autofree char *args = g_strdup_printf("%s -tpmdev builtin,id=tpm0,drive=tpmnv "
                                            "-device tpm-tis,tpmdev=tpm0",
                                            f->args);

    tpm_tis_request_locality(first, 0);
    g_assert_cmphex(run(first, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    start_fails(f, args, "lock");
    /* the first one is undisturbed */
    g_assert_cmphex(run(first, tpm2_cmd_get_random(8)), ==, 0);
    qtest_quit(first);
}

static void test_bad_unknown_drive(Fixture *f, gconstpointer data)
{
    g_autofree char *args = g_strdup_printf("%s -tpmdev builtin,id=tpm0,drive=nosuch "
                                            "-device tpm-tis,tpmdev=tpm0",
                                            f->args);

    start_fails(f, args, "drive 'nosuch' not found");
}

/* Generation recorded in a permall slot header. */
static uint64_t slot_gen(Fixture *f, uint64_t off)
{
    uint8_t hdr[64];
    drive_pread(f, off, hdr, sizeof(hdr));
    g_assert_cmpmem(hdr, 8, "TPMVSLOT", 8);
    return be64(hdr + 16);
}

static void test_corrupt_newest_slot_falls_back(Fixture *f, gconstpointer data)
{
    uint8_t v1[16] = "older value 0001", v2[16] = "newer value 0002", junk[32];
    uint64_t newest;
    QTestState *qts;
    g_autofree char *err = NULL;

    tpm_with_nv(f, v1, v2, sizeof(v1));
    newest = slot_gen(f, PERMALL_SLOT0) > slot_gen(f, PERMALL_SLOT1) ? PERMALL_SLOT0
                                                                     : PERMALL_SLOT1;
    memset(junk, 0xa5, sizeof(junk));
    drive_pwrite(f, newest + 200, junk, sizeof(junk));

    qts = start(f, NULL);
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    nv_expect(qts, v1, sizeof(v1));
    err = qtest_get_stderr(qts);
    g_assert_nonnull(
        strstr(err, "of TPM state blob 'permall' is corrupt (checksum mismatch)"));
    qtest_quit(qts);
}

static void test_corrupt_both_slots_is_an_error(Fixture *f, gconstpointer data)
{
    uint8_t junk[32];
    g_autofree char *args = g_strdup_printf("%s -tpmdev builtin,id=tpm0,drive=tpmnv "
                                            "-device tpm-tis,tpmdev=tpm0",
                                            f->args);

    tpm_with_nv(f, (const uint8_t *)"v1v1", (const uint8_t *)"v2v2", 4);
    memset(junk, 0x5a, sizeof(junk));
    drive_pwrite(f, PERMALL_SLOT0 + 100, junk, sizeof(junk));
    drive_pwrite(f, PERMALL_SLOT1 + 100, junk, sizeof(junk));
    start_fails(f, args,
                "drive 'tpmnv': both copies of the TPM state blob 'permall' are corrupt "
                "(slot 0: checksum mismatch; slot 1: checksum mismatch)");
}

/*
 * Random bytes over the store area: tpmvm either starts (and its TPM
 * answers) or refuses with a message; it never crashes, and a refusal
 * leaves the image unchanged.
 */
static void test_random_bytes_never_crash(Fixture *f, gconstpointer data)
{
    g_autoptr(GBytes) good = NULL;
    GRand *rnd = g_rand_new_with_seed(g_test_rand_int());
    g_autofree char *args = g_strdup_printf("-accel qtest -display none %s "
                                            "-tpmdev builtin,id=tpm0,drive=tpmnv "
                                            "-device tpm-tis,tpmdev=tpm0",
                                            f->args);
    unsigned refused = 0, runs = 12;

    tpm_with_nv(f, (const uint8_t *)"r1r1", (const uint8_t *)"r2r2", 4);
    good = file_bytes(f->img);
    for (unsigned i = 0; i < runs; i++) {
        uint8_t junk[512];
        uint32_t n = g_rand_int_range(rnd, 1, sizeof(junk));
        /* the superblock, a slot header or anywhere in the slots */
        uint64_t off = i % 3 == 0 ? g_rand_int_range(rnd, 0, 512)
                       : i % 3 == 1
                           ? (g_rand_boolean(rnd) ? PERMALL_SLOT0 : PERMALL_SLOT1) +
                                 g_rand_int_range(rnd, 0, 64)
                           : g_rand_int_range(rnd, 0, 960 * 1024 - 512);
        g_autoptr(GBytes) before = NULL, after = NULL;
        g_autofree char *err = NULL;
        GPid pid;
        int status;
        const char *argv[64];
        g_auto(GStrv) split = NULL;
        g_autofree char *tpmvm = g_strdup(g_getenv("TPMVM_BINARY"));

        g_assert_true(g_file_set_contents(f->img, g_bytes_get_data(good, NULL),
                                          g_bytes_get_size(good), NULL));
        for (uint32_t j = 0; j < n; j++) {
            junk[j] = g_rand_int(rnd);
        }
        drive_pwrite(f, off, junk, n);
        before = file_bytes(f->img);
        /* a start that survives 1 s got past loading the store: killed */
        g_assert_true(g_shell_parse_argv(args, NULL, &split, NULL));
        argv[0] = tpmvm;
        for (unsigned k = 0; split[k] && k < 62; k++) {
            argv[k + 1] = split[k];
            argv[k + 2] = NULL;
        }
        {
            g_autofree char *errfile = g_build_filename(f->dir, "err", NULL);
            int fd = g_open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            bool exited = false;
            g_assert_true(g_spawn_async_with_fds(NULL, (char **)argv, NULL,
                                                 G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
                                                 &pid, -1, -1, fd, NULL));
            close(fd);
            for (int w = 0; w < 100 && !exited; w++) {
                exited = waitpid(pid, &status, WNOHANG) == pid;
                if (!exited) {
                    g_usleep(10000);
                }
            }
            if (!exited) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                continue;
            }
            g_assert_true(g_file_get_contents(errfile, &err, NULL, NULL));
        }
        /* refused: a clean exit 1 with a message, no sanitizer report */
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 1);
        g_assert_null(strstr(err, "Sanitizer"));
        g_assert_null(strstr(err, "runtime error"));
        g_assert_nonnull(strstr(err, "tpmnv"));
        after = file_bytes(f->img);
        g_assert_true(g_bytes_equal(before, after));
        refused++;
    }
    g_test_message("%u of %u damaged drives were refused, the rest started", refused,
                   runs);
    g_rand_free(rnd);
}

/*
 * A store that passes its checksums but holds state libtpms refuses (a TPM
 * 1.2's, relabelled as 2.0): the TPM cannot start, which at machine start
 * ends tpmvm (as QEMU ends when its TPM backend cannot start) with the
 * reason, and the image is left alone.
 */
static void test_libtpms_refusal_is_a_startup_error(Fixture *f, gconstpointer data)
{
    uint8_t sb[512];
    struct sha256_ctx ctx;
    QTestState *qts = qtest_initf("%s -tpmdev builtin,id=tpm0,drive=tpmnv,version=1.2 "
                                  "-device tpm-tis,tpmdev=tpm0",
                                  f->args);
    g_autofree char *args = NULL;

    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm12_cmd_startup(TPM12_ST_CLEAR)), ==, 0);
    qtest_quit(qts);
    /* relabel: superblock TPM version 1 -> 2, checksum made valid again */
    drive_pread(f, 0, sb, sizeof(sb));
    g_assert_cmpuint(tc_get32(sb + 16), ==, 1);
    sb[19] = 2;
    sha256_init(&ctx);
    sha256_update(&ctx, 480, sb);
    sha256_digest(&ctx, 32, sb + 480);
    drive_pwrite(f, 0, sb, sizeof(sb));

    args = g_strdup_printf(
        "%s -tpmdev builtin,id=tpm0,drive=tpmnv -device tpm-tis,tpmdev=tpm0", f->args);
    start_fails(
        f, args,
        "TPM backend 'tpm0' failed to start: libtpms could not start the TPM 2.0");
}

static void test_path_creates_encrypted_image(void)
{
    GError *err = NULL;
    g_autofree char *dir = g_dir_make_tmp("tpm-builtin-path-XXXXXX", &err);
    g_autofree char *img = g_build_filename(dir, "state.qcow2", NULL);
    g_autofree char *pass = g_build_filename(dir, "pass", NULL);
    g_autofree char *args = g_strdup_printf(
        "-machine pc -object secret,id=sec0,file=%s "
        "-tpmdev builtin,id=tpm0,path=%s,key-secret=sec0 -device tpm-tis,tpmdev=tpm0",
        pass, img);
    uint8_t msg[8] = "by-path";
    g_autofree char *info = NULL, *tool = tpmvm_img_path();
    QTestState *qts;

    g_assert_true(g_file_set_contents(pass, TPM_TEST_PASS, -1, NULL));
    qts = qtest_init(args);
    /* the image exists now, as drive tpm0-nvram */
    g_assert_true(g_file_test(img, G_FILE_TEST_EXISTS));
    info = qtest_hmp(qts, "info tpm");
    g_assert_nonnull(strstr(info, "drive=tpm0-nvram"));
    g_assert_nonnull(strstr(info, "path="));
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), ==,
                    0);
    qtest_quit(qts);

    /* a LUKS-encrypted qcow2 */
    {
        g_autofree char *out = NULL;
        const char *argv[] = {tool, "info", img, NULL};
        int status;
        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                                   NULL, NULL, &out, NULL, &status, NULL));
        g_assert_nonnull(strstr(out, "file format: qcow2"));
        g_assert_nonnull(strstr(out, "encrypted: yes"));
    }
    qts = qtest_init(args);
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    nv_expect(qts, msg, sizeof(msg));
    qtest_quit(qts);
    g_unlink(img);
    g_unlink(pass);
    g_rmdir(dir);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    GError *err = NULL;
    int rc;

    g_test_init(&argc, &argv, NULL);
    template_dir = g_dir_make_tmp("tpm-builtin-template-XXXXXX", &err);
    g_assert_no_error(err);
    template_img = g_build_filename(template_dir, "template.qcow2", NULL);
    make_image(template_dir, template_img, "1M");

    ADD("/tpm-builtin/drive/tpm2/nv-survives-restart-pcrs-reset",
        test_nv_survives_restart_pcrs_reset);
    ADD("/tpm-builtin/drive/tpm12/commands-and-version-lock", test_tpm12_on_drive);
    ADD("/tpm-builtin/drive/bad/wrong-passphrase", test_bad_wrong_passphrase);
    ADD("/tpm-builtin/drive/bad/missing-secret", test_bad_missing_secret);
    ADD("/tpm-builtin/drive/bad/read-only", test_bad_read_only);
    ADD("/tpm-builtin/drive/bad/too-small", test_bad_too_small);
    ADD("/tpm-builtin/drive/bad/locked-by-another-process",
        test_bad_locked_by_another_process);
    ADD("/tpm-builtin/drive/bad/unknown-drive", test_bad_unknown_drive);
    ADD("/tpm-builtin/drive/corrupt/newest-slot-falls-back",
        test_corrupt_newest_slot_falls_back);
    ADD("/tpm-builtin/drive/corrupt/both-slots-is-a-clear-error",
        test_corrupt_both_slots_is_an_error);
    ADD("/tpm-builtin/drive/corrupt/random-bytes-never-crash",
        test_random_bytes_never_crash);
    ADD("/tpm-builtin/drive/corrupt/libtpms-refusal-is-a-startup-error",
        test_libtpms_refusal_is_a_startup_error);
    g_test_add_func("/tpm-builtin/path/creates-encrypted-image-then-reopens",
                    test_path_creates_encrypted_image);
    rc = g_test_run();
    g_unlink(template_img);
    {
        g_autofree char *pass = g_build_filename(template_dir, "pass", NULL);
        g_unlink(pass);
    }
    g_rmdir(template_dir);
    return rc;
}
