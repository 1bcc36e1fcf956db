/*
 * The builtin backend through the generic backend API (tpm_backend.h), the
 * way the TIS frontend and the snapshot code use it: option parsing, the
 * single-instance rule, commands on the worker thread, reset, startup
 * errors, vmstate save/check/load, power cycle from the drive, cancel.
 * Real libtpms, a real file as the NVRAM medium.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_builtin.h"
#include "hw/tpm/tpm_nvram.h"
#include "test-builtin-cmds.h"
#include "util/error.h"

typedef struct Fixture {
    char *dir;
    char *path;
    TPMNvramFile *file;
    TPMBackend *be;
    uint8_t buf[4096];
    TPMBackendCmd cmd;
    int completions;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    int fd;

    f->dir = g_dir_make_tmp("test-builtin-be-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, "nv.img", NULL);
    fd = open(f->path, O_RDWR | O_CREAT, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 1024 * 1024), ==, 0);
    close(fd);
}

static void be_close(Fixture *f)
{
    if (f->be) {
        tpm_backend_destroy(f->be);
        f->be = NULL;
    }
    tpm_nvram_file_close(f->file);
    f->file = NULL;
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    be_close(f);
    g_unlink(f->path);
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

/* Backend over the fixture's file, started with a 4096-byte buffer. */
static void be_open(Fixture *f, TPMVersion v)
{
    GError *err = NULL;

    f->file = tpm_nvram_file_open(f->path, true, &err);
    g_assert_no_error(err);
    f->be =
        tpm_builtin_new("tpm0", v, &tpm_nvram_file_ops, f->file, "file 'nv.img'", &err);
    g_assert_no_error(err);
    g_assert_true(tpm_builtin_is_builtin(f->be));
    g_assert_true(tpm_backend_startup_tpm(f->be, 4096, &err));
    g_assert_no_error(err);
}

static void completed(void *opaque, TPMBackendCmd *cmd)
{
    Fixture *f = opaque;
    f->completions++;
}

/* Deliver a command (consumed) like the TIS does, in and out one buffer. */
static uint32_t run_at(Fixture *f, uint8_t locty, GByteArray *c)
{
    GError *err = NULL;
    int before = f->completions;

    g_assert_cmpuint(c->len, <=, sizeof(f->buf));
    memcpy(f->buf, c->data, c->len);
    f->cmd = (TPMBackendCmd){.locty = locty,
                             .in = f->buf,
                             .in_len = c->len,
                             .out = f->buf,
                             .out_len = sizeof(f->buf)};
    g_byte_array_unref(c);
    g_assert_true(tpm_backend_deliver_request(f->be, &f->cmd, completed, f, &err));
    g_assert_no_error(err);
    tpm_backend_finish_sync(f->be);
    g_assert_cmpint(f->completions, ==, before + 1);
    g_assert_cmpuint(tc_get32(f->buf + 2), >=, 10);
    return tc_get32(f->buf + 6);
}

static uint32_t run(Fixture *f, GByteArray *c)
{
    return run_at(f, 0, c);
}

static void nv_expect(Fixture *f, const uint8_t *want, uint16_t len)
{
    const uint8_t *got;
    uint16_t got_len = 0;

    g_assert_cmphex(run(f, tpm2_cmd_nv_read(TEST_NV_INDEX, len, 0)), ==, 0);
    got = tpm2_rsp_nv_read_data(f->buf, tc_get32(f->buf + 2), &got_len);
    g_assert_nonnull(got);
    g_assert_cmpmem(got, got_len, want, len);
}

static void pcr_expect(Fixture *f, uint32_t pcr, const uint8_t want[32])
{
    g_assert_cmphex(run(f, tpm2_cmd_pcr_read(pcr)), ==, 0);
    g_assert_nonnull(tpm2_rsp_pcr_read_digest(f->buf, tc_get32(f->buf + 2)));
    g_assert_cmpmem(tpm2_rsp_pcr_read_digest(f->buf, tc_get32(f->buf + 2)), 32, want, 32);
}

static void expect_create_error(const char *opts, const char *fragment)
{
    GError *err = NULL;
    bool help = false;
    TPMBackend *be = tpm_backend_create_from_string(opts, &help, &err);

    g_assert_null(be);
    g_assert_nonnull(err);
    if (!strstr(err->message, fragment)) {
        g_error("'%s': expected '%s' in: %s", opts, fragment, err->message);
    }
    g_clear_error(&err);
}

static void test_options_and_single_instance(void)
{
    GError *err = NULL;
    g_autoptr(GHashTable) kv =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    TPMBackend *be;

    if (g_test_subprocess()) {
        be = tpm_backend_create_from_string("builtin,id=tpm0,version=1.2", NULL, &err);
        g_assert_no_error(err);
        g_assert_nonnull(be);
        g_assert_cmpint(tpm_backend_get_tpm_version(be), ==, TPM_VERSION_1_2);
        g_assert_cmpuint(tpm_backend_get_buffer_size(be), ==, 4096);
        tpm_backend_get_options(be, kv);
        g_assert_cmpstr(g_hash_table_lookup(kv, "version"), ==, "1.2");
        g_assert_nonnull(g_hash_table_lookup(kv, "state"));
        expect_create_error(
            "builtin,id=tpm1",
            "-tpmdev builtin,id=tpm1: only one builtin TPM can exist per "
            "process (libtpms holds a single TPM) and 'tpm0' is already one");
        tpm_backend_destroy(be);
        /* after destroy, libtpms is free again */
        be = tpm_backend_create_from_string("builtin,id=tpm2", NULL, &err);
        g_assert_no_error(err);
        g_assert_cmpint(tpm_backend_get_tpm_version(be), ==, TPM_VERSION_2_0);
        tpm_backend_destroy(be);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr(
        "*-tpmdev builtin,id=tpm0: no drive= or path=: the TPM state "
        "is kept in memory and lost when tpmvm exits*");
}

static void test_bad_options_are_refused(void)
{
    expect_create_error(
        "builtin,id=t,version=3.0",
        "-tpmdev builtin,id=t: Parameter 'version' expects 2.0 or 1.2, not "
        "'3.0'");
    expect_create_error("builtin,id=t,drive=a,path=b", "cannot be used together");
    expect_create_error("builtin,id=t,drive=a,key-secret=s", "key-secret= only applies");
    if (g_test_subprocess()) {
        expect_create_error("builtin,id=t,bogus=1", "bogus");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
}

static void test_commands_and_selftest(Fixture *f, gconstpointer data)
{
    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_false(f->cmd.selftest_done);
    g_assert_cmphex(run(f, tpm2_cmd_self_test()), ==, 0);
    g_assert_true(f->cmd.selftest_done);
    g_assert_cmphex(run(f, tpm2_cmd_get_random(16)), ==, 0);
    g_assert_cmpuint(tc_get32(f->buf + 2), ==, 12 + 16);
    g_assert_false(f->cmd.selftest_done);
}

static void test_nv_survives_destroy_and_reopen(Fixture *f, gconstpointer data)
{
    uint8_t msg[20] = "backend persistence";
    uint8_t in[32], zero[32] = {0};

    memset(in, 3, sizeof(in));
    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(10, in)), ==, 0);
    be_close(f);

    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    nv_expect(f, msg, sizeof(msg));
    pcr_expect(f, 10, zero);
}

static void test_nv_write_costs_one_write_and_flush(Fixture *f, gconstpointer data)
{
    TPMBuiltinStats a, b;
    uint8_t msg[8] = "counter";

    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    tpm_builtin_get_stats(f->be, &a);
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), ==, 0);
    tpm_builtin_get_stats(f->be, &b);
    /* durable before the completion ran: one slot write, one flush */
    g_assert_cmpuint(b.commands - a.commands, ==, 1);
    g_assert_cmpuint(b.writes - a.writes, ==, 1);
    g_assert_cmpuint(b.flushes - a.flushes, ==, 1);
    g_assert_cmpuint(b.bytes_written - a.bytes_written, <=, 4096);
    /* reading changes nothing on the drive */
    g_assert_cmphex(run(f, tpm2_cmd_nv_read(TEST_NV_INDEX, sizeof(msg), 0)), ==, 0);
    tpm_builtin_get_stats(f->be, &a);
    g_assert_cmpuint(a.writes, ==, b.writes);
    g_assert_cmpuint(a.flushes, ==, b.flushes);
}

static void test_reset_keeps_permanent_drops_volatile(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    uint8_t msg[4] = "rst", in[32], zero[32] = {0};

    memset(in, 4, sizeof(in));
    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(10, in)), ==, 0);
    /* machine reset as the TIS does it */
    tpm_backend_reset(f->be);
    g_assert_true(tpm_backend_startup_tpm(f->be, 4096, &err));
    g_assert_no_error(err);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_read(10)), ==, TPM2_RC_INITIALIZE);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    pcr_expect(f, 10, zero);
    nv_expect(f, msg, sizeof(msg));
}

static void test_startup_error_is_reported(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    uint64_t max_blob[TPM_NVRAM_NBLOBS] = {262080, 65536, 65472};
    uint8_t junk[2000];

    /* a slot with a valid checksum over bytes libtpms cannot use */
    memset(junk, 0x42, sizeof(junk));
    f->file = tpm_nvram_file_open(f->path, true, &err);
    {
        TPMNvram *nv =
            tpm_nvram_open(&tpm_nvram_file_ops, f->file, "x", 2, max_blob, &err);
        g_assert_no_error(err);
        g_assert_true(
            tpm_nvram_store(nv, TPM_NVRAM_BLOB_PERMALL, junk, sizeof(junk), &err));
        tpm_nvram_free(nv);
    }
    f->be = tpm_builtin_new("tpm0", TPM_VERSION_2_0, &tpm_nvram_file_ops, f->file,
                            "file 'nv.img'", &err);
    g_assert_no_error(err);
    g_assert_false(tpm_backend_startup_tpm(f->be, 4096, &err));
    g_assert_nonnull(strstr(err->message,
                            "TPM backend 'tpm0' failed to start: libtpms could "
                            "not start the TPM 2.0"));
    g_clear_error(&err);
    g_assert_true(tpm_backend_had_startup_error(f->be));
    g_assert_nonnull(f->be->startup_error);
    /* a command still gets a (failure) response */
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0x101);
}

static GByteArray *vm_save(Fixture *f)
{
    const VMStateDescription *vmsd = f->be->klass->vmsd;
    GByteArray *out = g_byte_array_new();
    GError *err = NULL;

    g_assert_nonnull(vmsd);
    g_assert_cmpstr(vmsd->name, ==, "tpm-builtin");
    g_assert_true(vmsd->pre_save(f->be, &err));
    g_assert_true(vmsd->save(f->be, out, &err));
    g_assert_no_error(err);
    return out;
}

static bool vm_load(Fixture *f, const uint8_t *buf, size_t len, GError **errp)
{
    const VMStateDescription *vmsd = f->be->klass->vmsd;

    return vmsd->check(f->be, buf, len, 1, errp) && vmsd->load(f->be, buf, len, 1, errp);
}

static void test_vmstate_round_trip(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) saved = NULL;
    uint8_t in[32], expect[32] = {0}, msg[4] = "vm1", msg2[4] = "vm2";
    GError *err = NULL;

    memset(in, 5, sizeof(in));
    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg))), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(12, in)), ==, 0);
    tpm2_pcr_extend_expect(expect, in);
    saved = vm_save(f);
    g_test_message("vmstate section payload: %u bytes", saved->len);

    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(12, in)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, msg2, sizeof(msg2), 0)), ==,
                    0);
    g_assert_true(vm_load(f, saved->data, saved->len, &err));
    g_assert_no_error(err);
    /* volatile (PCR) and permanent (NV) state are back, no Startup needed */
    pcr_expect(f, 12, expect);
    nv_expect(f, msg, sizeof(msg));
    /* and the drive holds the loaded permanent state: a power cycle keeps it */
    g_assert_true(tpm_builtin_power_cycle_from_drive(f->be, &err));
    g_assert_no_error(err);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    nv_expect(f, msg, sizeof(msg));
}

static void test_vmstate_rejects_hostile_sections(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) saved = NULL;
    uint8_t in[32], expect[32] = {0};
    GError *err = NULL;
    g_autofree uint8_t *copy = NULL;
    const struct {
        size_t off;
        uint8_t val;
        const char *fragment;
    } edits[] = {
        {0, 1, "saved TPM is a TPM 1.2"},
        {1, 0x80, "unknown flags"},
        {3, 1, "unknown flags"},
        {4, 0xff, "longer than the section"},
    };

    memset(in, 6, sizeof(in));
    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(13, in)), ==, 0);
    tpm2_pcr_extend_expect(expect, in);
    saved = vm_save(f);
    copy = g_memdup2(saved->data, saved->len);
    for (size_t i = 0; i < G_N_ELEMENTS(edits); i++) {
        memcpy(copy, saved->data, saved->len);
        copy[edits[i].off] = edits[i].val;
        g_assert_false(vm_load(f, copy, saved->len, &err));
        if (!strstr(err->message, edits[i].fragment)) {
            g_error("expected '%s' in: %s", edits[i].fragment, err->message);
        }
        g_clear_error(&err);
    }
    /* every truncation is refused */
    for (size_t len = 0; len < saved->len; len += 1 + len / 4) {
        g_assert_false(vm_load(f, saved->data, len, &err));
        g_assert_nonnull(err);
        g_clear_error(&err);
    }
    /* trailing bytes */
    g_byte_array_append(saved, (const uint8_t *)"x", 1);
    g_assert_false(vm_load(f, saved->data, saved->len, &err));
    g_assert_nonnull(strstr(err->message, "does not match"));
    g_clear_error(&err);
    /* nothing was applied */
    pcr_expect(f, 13, expect);
}

static void test_vmstate_garbage_blobs_keep_state(Fixture *f, gconstpointer data)
{
    g_autoptr(GByteArray) saved = NULL;
    uint8_t in[32], expect[32] = {0};
    GError *err = NULL;

    memset(in, 7, sizeof(in));
    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_pcr_extend(14, in)), ==, 0);
    tpm2_pcr_extend_expect(expect, in);
    saved = vm_save(f);
    /* well-formed section, scrambled permanent blob: libtpms refuses it */
    for (uint32_t i = 12; i < 60 && i < saved->len; i++) {
        saved->data[i] ^= 0x5a;
    }
    g_assert_false(vm_load(f, saved->data, saved->len, &err));
    g_assert_nonnull(strstr(err->message, "the saved TPM state was refused: libtpms"));
    g_clear_error(&err);
    pcr_expect(f, 14, expect);
}

static void test_power_cycle_reads_changed_drive(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    uint8_t a[4] = "AAA", b[4] = "BBB";
    g_autofree char *snap = g_build_filename(f->dir, "snap.img", NULL);
    gchar *contents;
    gsize len;

    be_open(f, TPM_VERSION_2_0);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(a))), ==, 0);
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, a, sizeof(a), 0)), ==, 0);
    /* "snapshot" of the drive: drain, then copy the file */
    g_assert_true(tpm_builtin_drain(f->be, &err));
    g_assert_true(g_file_get_contents(f->path, &contents, &len, NULL));
    g_assert_true(g_file_set_contents(snap, contents, len, NULL));
    g_assert_cmphex(run(f, tpm2_cmd_nv_write(TEST_NV_INDEX, b, sizeof(b), 0)), ==, 0);
    nv_expect(f, b, sizeof(b));
    /* "apply" the snapshot under the TPM (same file, rewritten in place) */
    {
        int fd = open(f->path, O_WRONLY);
        g_assert_cmpint(pwrite(fd, contents, len, 0), ==, (ssize_t)len);
        close(fd);
    }
    g_free(contents);
    g_assert_true(tpm_builtin_power_cycle_from_drive(f->be, &err));
    g_assert_no_error(err);
    g_assert_cmphex(run(f, tpm2_cmd_get_random(8)), ==, TPM2_RC_INITIALIZE);
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    nv_expect(f, a, sizeof(a));
    g_unlink(snap);
}

/* TPM2_CreatePrimary of an RSA-2048 storage key: slow enough to cancel. */
static GByteArray *tpm2_cmd_create_primary_rsa(void)
{
    GByteArray *b = tc_begin(TPM2_ST_SESSIONS, 0x131);
    tc_u32(b, TPM2_RH_OWNER);
    tc_pw_auth(b);
    tc_u16(b, 4); /* inSensitive: empty userAuth and data */
    tc_u16(b, 0);
    tc_u16(b, 0);
    tc_u16(b, 26);    /* inPublic size */
    tc_u16(b, 0x001); /* TPM_ALG_RSA */
    tc_u16(b, TPM2_ALG_SHA256);
    tc_u32(b, 0x00030072); /* fixedTPM fixedParent sensitiveDataOrigin userWithAuth
                              restricted decrypt */
    tc_u16(b, 0);          /* authPolicy */
    tc_u16(b, 0x006);      /* AES */
    tc_u16(b, 128);
    tc_u16(b, 0x043); /* CFB */
    tc_u16(b, 0x010); /* scheme NULL */
    tc_u16(b, 2048);
    tc_u32(b, 0); /* exponent */
    tc_u16(b, 0); /* unique */
    tc_u16(b, 0); /* outsideInfo */
    tc_u32(b, 0); /* creationPCR */
    return tc_end(b);
}

static void test_cancel_never_breaks_the_tpm(Fixture *f, gconstpointer data)
{
    GError *err = NULL;
    GByteArray *c = tpm2_cmd_create_primary_rsa();
    uint32_t rc;

    be_open(f, TPM_VERSION_2_0);
    tpm_backend_cancel_cmd(f->be); /* nothing in flight: no effect */
    g_assert_cmphex(run(f, tpm2_cmd_startup(TPM2_SU_CLEAR)), ==, 0);
    memcpy(f->buf, c->data, c->len);
    f->cmd = (TPMBackendCmd){.locty = 0,
                             .in = f->buf,
                             .in_len = c->len,
                             .out = f->buf,
                             .out_len = sizeof(f->buf)};
    g_byte_array_unref(c);
    g_assert_true(tpm_backend_deliver_request(f->be, &f->cmd, completed, f, &err));
    g_usleep(2000);
    tpm_backend_cancel_cmd(f->be);
    tpm_backend_finish_sync(f->be);
    rc = tc_get32(f->buf + 6);
    g_test_message("CreatePrimary after cancel: rc 0x%x", rc);
    /* TPM_RC_CANCELED (0x909) or, if the key was done first, success */
    g_assert_true(rc == 0 || rc == 0x909);
    g_assert_cmphex(run(f, tpm2_cmd_get_random(8)), ==, 0);
}

static void test_tpm12_through_backend(Fixture *f, gconstpointer data)
{
    uint8_t in[20], expect[20] = {0};

    memset(in, 9, sizeof(in));
    be_open(f, TPM_VERSION_1_2);
    g_assert_cmphex(run(f, tpm12_cmd_startup(TPM12_ST_CLEAR)), ==, 0);
    g_assert_cmphex(run(f, tpm12_cmd_extend(8, in)), ==, 0);
    tpm12_pcr_extend_expect(expect, in);
    g_assert_cmphex(run(f, tpm12_cmd_pcr_read(8)), ==, 0);
    g_assert_cmpmem(f->buf + 10, 20, expect, 20);
    g_assert_cmphex(run(f, tpm12_cmd_get_capability_pcrs()), ==, 0);
    g_assert_cmpuint(tc_get32(f->buf + 14), ==, 24);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/builtin/backend/options-and-single-instance",
                    test_options_and_single_instance);
    g_test_add_func("/builtin/backend/bad-options-are-refused",
                    test_bad_options_are_refused);
    ADD("/builtin/backend/commands-and-selftest-flag", test_commands_and_selftest);
    ADD("/builtin/backend/nv-survives-destroy-and-reopen",
        test_nv_survives_destroy_and_reopen);
    ADD("/builtin/backend/nv-write-costs-one-write-and-one-flush",
        test_nv_write_costs_one_write_and_flush);
    ADD("/builtin/backend/reset-keeps-permanent-drops-volatile",
        test_reset_keeps_permanent_drops_volatile);
    ADD("/builtin/backend/startup-error-is-reported", test_startup_error_is_reported);
    ADD("/builtin/backend/vmstate/round-trip-restores-pcrs-and-nv",
        test_vmstate_round_trip);
    ADD("/builtin/backend/vmstate/hostile-sections-are-refused",
        test_vmstate_rejects_hostile_sections);
    ADD("/builtin/backend/vmstate/garbage-blobs-keep-current-state",
        test_vmstate_garbage_blobs_keep_state);
    ADD("/builtin/backend/power-cycle-reads-changed-drive",
        test_power_cycle_reads_changed_drive);
    ADD("/builtin/backend/cancel-never-breaks-the-tpm", test_cancel_never_breaks_the_tpm);
    ADD("/builtin/backend/tpm12-through-backend", test_tpm12_through_backend);
    return g_test_run();
}
