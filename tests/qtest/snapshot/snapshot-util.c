/*
 * Helpers for the snapshot tests; see snapshot-util.h.
 */
#include "snapshot-util.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#define SNAP_PASS "snapshot-test-pass"

/* TIS 1.3 registers of locality 0 (PC Client PTP §5.5) */
#define TIS_BASE 0xFED40000ull
#define TIS_ACCESS (TIS_BASE + 0x00)
#define TIS_STS (TIS_BASE + 0x18)
#define TIS_FIFO (TIS_BASE + 0x24)
#define TIS_ACCESS_REQUEST_USE 0x02
#define TIS_ACCESS_ACTIVE_LOCALITY 0x20
#define TIS_STS_VALID 0x80
#define TIS_STS_COMMAND_READY 0x40
#define TIS_STS_GO 0x20
#define TIS_STS_DATA_AVAILABLE 0x10
#define TIS_TIMEOUT_US (60 * G_USEC_PER_SEC)

/* ---- images and VMs ---- */

/* The builtin (libtpms) backend is in this tpmvm (-tpmdev help lists it). */
static bool have_builtin_tpm(void)
{
    static int have = -1;

    if (have < 0) {
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;
        qtest_run("-tpmdev help", &out, &err);
        have = out && strstr(out, "builtin") != NULL;
    }
    return have;
}

SnapEnv *snap_env_new(void)
{
    SnapEnv *env;
    GError *err = NULL;
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");

    if (!qemu_img) {
        g_test_skip("qemu-img is not installed (package qemu-utils)");
        return NULL;
    }
    if (!have_builtin_tpm()) {
        g_test_skip("this tpmvm has no builtin TPM backend (-tpmdev help)");
        return NULL;
    }
    env = g_new0(SnapEnv, 1);
    env->dir = g_dir_make_tmp("snapshot-test-XXXXXX", &err);
    g_assert_no_error(err);
    env->pass_file = g_build_filename(env->dir, "pass.txt", NULL);
    g_file_set_contents(env->pass_file, SNAP_PASS, -1, &err);
    g_assert_no_error(err);
    return env;
}

static void rm_rf(const char *path)
{
    GDir *dir = g_dir_open(path, 0, NULL);
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *p = g_build_filename(path, name, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            rm_rf(p);
        } else {
            unlink(p);
        }
    }
    if (dir) {
        g_dir_close(dir);
    }
    rmdir(path);
}

void snap_env_free(SnapEnv *env)
{
    if (!env) {
        return;
    }
    rm_rf(env->dir);
    g_free(env->dir);
    g_free(env->pass_file);
    g_free(env);
}

char *snap_env_path(SnapEnv *env, const char *name)
{
    return g_build_filename(env->dir, name, NULL);
}

/* Run `tool` SUBCOMMAND --object secret... REST; exit status, output in *out. */
static int run_img_tool(SnapEnv *env, const char *tool, char **out, const char *args)
{
    g_autofree char *line = NULL;
    g_autofree char *so = NULL, *se = NULL;
    g_auto(GStrv) argv = NULL;
    g_auto(GStrv) words = NULL;
    GError *err = NULL;
    int status;

    /* the secret object goes after the subcommand, as qemu-img wants it */
    g_assert_true(g_shell_parse_argv(args, NULL, &words, &err));
    line = g_strdup_printf("%s %s --object secret,id=sec0,file=%s %s", tool, words[0],
                           env->pass_file, args + strlen(words[0]));
    g_assert_true(g_shell_parse_argv(line, NULL, &argv, &err));
    g_assert_true(g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &so,
                               &se, &status, &err));
    g_assert_no_error(err);
    if (out) {
        *out = g_strconcat(so, se, NULL);
    }
    return g_spawn_check_wait_status(status, NULL) ? 0 : WEXITSTATUS(status);
}

int snap_qemu_img(SnapEnv *env, char **out, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *args = NULL;

    va_start(ap, fmt);
    args = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return run_img_tool(env, "qemu-img", out, args);
}

int snap_tpmvm_img(SnapEnv *env, char **out, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *args = NULL;
    g_autofree char *tool = NULL;
    const char *build = g_getenv("TPMVM_BUILD_DIR");

    g_assert_nonnull(build);
    tool = g_build_filename(build, "tools", "tpmvm-img", NULL);
    va_start(ap, fmt);
    args = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return run_img_tool(env, tool, out, args);
}

void snap_assert_image_clean(SnapEnv *env, const char *name, bool luks)
{
    g_autofree char *opts = snap_image_opts(env, name, luks);
    g_autofree char *q = NULL;
    g_autofree char *t = NULL;
    int rc;

    rc = snap_qemu_img(env, &q, "check %s", opts);
    if (rc != 0 || !strstr(q, "No errors were found")) {
        g_error("qemu-img check %s: rc %d: %s", name, rc, q);
    }
    rc = snap_tpmvm_img(env, &t, "check %s", opts);
    if (rc != 0 || !strstr(t, "No errors were found")) {
        g_error("tpmvm-img check %s: rc %d: %s", name, rc, t);
    }
}

char *snap_image_opts(SnapEnv *env, const char *name, bool luks)
{
    g_autofree char *path = snap_env_path(env, name);

    return g_strdup_printf("--image-opts driver=qcow2,file.filename=%s%s", path,
                           luks ? ",encrypt.key-secret=sec0" : "");
}

/*
 * A fresh LUKS image costs qemu-img about two seconds of PBKDF2 calibration
 * whatever iter-time says, so each test program creates one per size and
 * copies it: the copies share a master key, which a test does not mind.
 */
static GHashTable *luks_templates; /* size_mb -> path */
static char *luks_template_dir;

static void luks_templates_cleanup(void)
{
    if (luks_template_dir) {
        rm_rf(luks_template_dir);
    }
}

static void copy_file(const char *from, const char *to)
{
    g_autofree char *data = NULL;
    gsize len;
    GError *err = NULL;

    g_file_get_contents(from, &data, &len, &err);
    g_assert_no_error(err);
    g_file_set_contents(to, data, (gssize)len, &err);
    g_assert_no_error(err);
}

static void image_create_qemu(SnapEnv *env, const char *path, bool luks,
                              unsigned size_mb);

void snap_image_create(SnapEnv *env, const char *name, bool luks, unsigned size_mb)
{
    g_autofree char *path = snap_env_path(env, name);
    const char *tmpl;

    if (!luks) {
        image_create_qemu(env, path, false, size_mb);
        return;
    }
    if (!luks_templates) {
        GError *err = NULL;
        luks_templates =
            g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
        luks_template_dir = g_dir_make_tmp("snapshot-luks-XXXXXX", &err);
        g_assert_no_error(err);
        atexit(luks_templates_cleanup);
    }
    tmpl = g_hash_table_lookup(luks_templates, GUINT_TO_POINTER(size_mb));
    if (!tmpl) {
        char *t = g_strdup_printf("%s/luks-%u.qcow2", luks_template_dir, size_mb);
        image_create_qemu(env, t, true, size_mb);
        g_hash_table_insert(luks_templates, GUINT_TO_POINTER(size_mb), t);
        tmpl = t;
    }
    copy_file(tmpl, path);
}

static void image_create_qemu(SnapEnv *env, const char *path, bool luks, unsigned size_mb)
{
    g_autofree char *out = NULL;
    int rc;

    /*
     * qemu-img's PBKDF2 calibration gives up with "Unable to get accurate CPU
     * usage" when its first short run reads as 0 ms of CPU time, which is
     * common on fast machines; that failure costs a few ms, so retry it.
     */
    for (unsigned attempt = 0; attempt < 50; attempt++) {
        g_clear_pointer(&out, g_free);
        rc = snap_qemu_img(env, &out, "create -q -f qcow2 %s %s %uM",
                           luks ? "-o encrypt.format=luks,encrypt.key-secret=sec0,"
                                  "encrypt.iter-time=10"
                                : "",
                           path, size_mb);
        if (rc == 0 || !strstr(out, "accurate CPU usage")) {
            break;
        }
    }
    if (rc != 0) {
        g_error("qemu-img create %s failed: %s", path, out);
    }
}

char *snap_tpm_args(SnapEnv *env, const char *name, bool luks, const char *version)
{
    g_autofree char *path = snap_env_path(env, name);

    return g_strdup_printf(
        "-machine pc -m 128 -object secret,id=sec0,file=%s "
        "-drive if=none,id=tpmnv,file=%s,format=qcow2%s "
        "-tpmdev builtin,id=tpm0,drive=tpmnv%s%s -device tpm-tis,tpmdev=tpm0",
        env->pass_file, path, luks ? ",encrypt.format=luks,encrypt.key-secret=sec0" : "",
        version ? ",version=" : "", version ? version : "");
}

void snap_hmp_ok(QTestState *qts, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    out = qtest_hmp(qts, "%s", cmd);
    if (strstr(out, "Error")) {
        g_error("HMP '%s' failed: %s", cmd, out);
    }
}

char *snap_hmp_err(QTestState *qts, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *cmd = NULL;
    char *out;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    out = qtest_hmp(qts, "%s", cmd);
    if (!strstr(out, "Error")) {
        g_error("HMP '%s' should have failed but printed: '%s'", cmd, out);
    }
    return out;
}

void snap_quit(QTestState *qts)
{
    JsonObject *rsp = qtest_qmp(qts, "{'execute': 'quit'}");

    json_object_unref(rsp);
    g_assert_cmpint(qtest_wait_exit(qts, 30000), ==, 0);
    qtest_quit(qts);
}

char *snap_status(QTestState *qts)
{
    JsonObject *rsp = qtest_qmp(qts, "{'execute': 'query-status'}");
    JsonObject *ret = json_object_get_object_member(rsp, "return");
    char *s = g_strdup(json_object_get_string_member(ret, "status"));

    json_object_unref(rsp);
    return s;
}

char *snap_job_statuses(QTestState *qts, const char *id, const char *last)
{
    GString *seen = g_string_new(NULL);

    for (;;) {
        JsonObject *ev = qtest_qmp_eventwait_ref(qts, "JOB_STATUS_CHANGE");
        JsonObject *data = json_object_get_object_member(ev, "data");
        const char *status = json_object_get_string_member(data, "status");
        bool done;

        g_assert_cmpstr(json_object_get_string_member(data, "id"), ==, id);
        g_string_append_printf(seen, "%s%s", seen->len ? "," : "", status);
        done = g_str_equal(status, last);
        json_object_unref(ev);
        if (done) {
            return g_string_free(seen, FALSE);
        }
    }
}

/* ---- TIS ---- */

uint32_t tis_sts(QTestState *qts)
{
    return qtest_readl(qts, TIS_STS);
}

void tis_claim(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + TIS_TIMEOUT_US;

    qtest_writeb(qts, TIS_ACCESS, TIS_ACCESS_REQUEST_USE);
    while (!(qtest_readb(qts, TIS_ACCESS) & TIS_ACCESS_ACTIVE_LOCALITY)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(100);
    }
}

void tis_write_partial(QTestState *qts, const uint8_t *cmd, size_t len, size_t from)
{
    if (from == 0) {
        gint64 deadline = g_get_monotonic_time() + TIS_TIMEOUT_US;
        qtest_writel(qts, TIS_STS, TIS_STS_COMMAND_READY);
        while (!(tis_sts(qts) & TIS_STS_COMMAND_READY)) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
            g_usleep(100);
        }
    }
    for (size_t i = from; i < len; i++) {
        qtest_writeb(qts, TIS_FIFO, cmd[i]);
    }
}

void tis_go(QTestState *qts)
{
    qtest_writel(qts, TIS_STS, TIS_STS_GO);
}

GBytes *tis_read_response(QTestState *qts)
{
    gint64 deadline = g_get_monotonic_time() + TIS_TIMEOUT_US;
    uint8_t hdr[10];
    uint32_t size;
    uint8_t *rsp;

    while ((tis_sts(qts) & (TIS_STS_VALID | TIS_STS_DATA_AVAILABLE)) !=
           (TIS_STS_VALID | TIS_STS_DATA_AVAILABLE)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(200);
    }
    for (unsigned i = 0; i < sizeof(hdr); i++) {
        hdr[i] = qtest_readb(qts, TIS_FIFO);
    }
    size =
        (uint32_t)hdr[2] << 24 | (uint32_t)hdr[3] << 16 | (uint32_t)hdr[4] << 8 | hdr[5];
    g_assert_cmpuint(size, >=, 10);
    g_assert_cmpuint(size, <=, 4096);
    rsp = g_malloc(MAX(size, (uint32_t)sizeof(hdr)));
    memcpy(rsp, hdr, sizeof(hdr));
    for (uint32_t i = sizeof(hdr); i < size; i++) {
        rsp[i] = qtest_readb(qts, TIS_FIFO);
    }
    g_assert_false(tis_sts(qts) & TIS_STS_DATA_AVAILABLE);
    qtest_writel(qts, TIS_STS, TIS_STS_COMMAND_READY);
    return g_bytes_new_take(rsp, size);
}

GBytes *tpm_transmit(QTestState *qts, const uint8_t *cmd, size_t len)
{
    tis_write_partial(qts, cmd, len, 0);
    tis_go(qts);
    return tis_read_response(qts);
}

uint32_t tpm_rc(GBytes *rsp)
{
    const uint8_t *p = g_bytes_get_data(rsp, NULL);

    g_assert_cmpuint(g_bytes_get_size(rsp), >=, 10);
    return (uint32_t)p[6] << 24 | (uint32_t)p[7] << 16 | (uint32_t)p[8] << 8 | p[9];
}

/* ---- TPM command marshalling (TPM 2.0 Part 3, TPM 1.2 Part 3) ---- */

static void put16(GByteArray *b, uint16_t v)
{
    uint8_t x[2] = {v >> 8, v};
    g_byte_array_append(b, x, 2);
}

static void put32(GByteArray *b, uint32_t v)
{
    uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
    g_byte_array_append(b, x, 4);
}

static GByteArray *cmd_begin(uint16_t tag, uint32_t cc)
{
    GByteArray *b = g_byte_array_new();

    put16(b, tag);
    put32(b, 0); /* size, filled by cmd_end */
    put32(b, cc);
    return b;
}

static GByteArray *cmd_end(GByteArray *b)
{
    b->data[2] = (uint8_t)(b->len >> 24);
    b->data[3] = (uint8_t)(b->len >> 16);
    b->data[4] = (uint8_t)(b->len >> 8);
    b->data[5] = (uint8_t)b->len;
    return b;
}

#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM2_ST_SESSIONS 0x8002
#define TPM2_RS_PW 0x40000009u
#define TPM2_RH_OWNER 0x40000001u
#define TPM2_ALG_SHA256 0x000B

/* An empty password session (TPM 2.0 Part 1 §19.8.4). */
static void put_pw_session(GByteArray *b)
{
    put32(b, 9);
    put32(b, TPM2_RS_PW);
    put16(b, 0);                                      /* nonce */
    g_byte_array_append(b, (const uint8_t *)"\0", 1); /* attributes */
    put16(b, 0);                                      /* hmac */
}

GByteArray *tpm2_cmd_startup(void)
{
    GByteArray *b = cmd_begin(TPM2_ST_NO_SESSIONS, 0x144);
    put16(b, 0x0000); /* TPM_SU_CLEAR */
    return cmd_end(b);
}

GByteArray *tpm2_cmd_pcr_extend(unsigned pcr, uint8_t fill)
{
    GByteArray *b = cmd_begin(TPM2_ST_SESSIONS, 0x182);
    uint8_t digest[32];

    memset(digest, fill, sizeof(digest));
    put32(b, pcr);
    put_pw_session(b);
    put32(b, 1);
    put16(b, TPM2_ALG_SHA256);
    g_byte_array_append(b, digest, sizeof(digest));
    return cmd_end(b);
}

GByteArray *tpm2_cmd_pcr_read(unsigned pcr)
{
    GByteArray *b = cmd_begin(TPM2_ST_NO_SESSIONS, 0x17E);
    uint8_t select[3] = {0};

    select[pcr / 8] = (uint8_t)(1u << (pcr % 8));
    put32(b, 1);
    put16(b, TPM2_ALG_SHA256);
    g_byte_array_append(b, (const uint8_t *)"\3", 1);
    g_byte_array_append(b, select, sizeof(select));
    return cmd_end(b);
}

GByteArray *tpm2_cmd_nv_define(uint32_t index, uint16_t size)
{
    GByteArray *b = cmd_begin(TPM2_ST_SESSIONS, 0x12A);

    put32(b, TPM2_RH_OWNER);
    put_pw_session(b);
    put16(b, 0);  /* auth */
    put16(b, 14); /* TPMS_NV_PUBLIC */
    put32(b, index);
    put16(b, TPM2_ALG_SHA256);
    /* OWNERWRITE | AUTHWRITE | OWNERREAD | AUTHREAD | NO_DA */
    put32(b, 0x00000002u | 0x00000004u | 0x00020000u | 0x00040000u | 0x02000000u);
    put16(b, 0); /* authPolicy */
    put16(b, size);
    return cmd_end(b);
}

GByteArray *tpm2_cmd_nv_write(uint32_t index, const uint8_t *data, uint16_t len)
{
    GByteArray *b = cmd_begin(TPM2_ST_SESSIONS, 0x137);

    put32(b, index); /* authHandle: the index itself (AUTHWRITE, empty auth) */
    put32(b, index);
    put_pw_session(b);
    put16(b, len);
    g_byte_array_append(b, data, len);
    put16(b, 0); /* offset */
    return cmd_end(b);
}

GByteArray *tpm2_cmd_nv_read(uint32_t index, uint16_t len)
{
    GByteArray *b = cmd_begin(TPM2_ST_SESSIONS, 0x14E);

    put32(b, index);
    put32(b, index);
    put_pw_session(b);
    put16(b, len);
    put16(b, 0);
    return cmd_end(b);
}

GByteArray *tpm2_cmd_create_primary_rsa(void)
{
    GByteArray *b = cmd_begin(TPM2_ST_SESSIONS, 0x131);

    put32(b, TPM2_RH_OWNER);
    put_pw_session(b);
    put16(b, 4); /* inSensitive: empty userAuth and data */
    put16(b, 0);
    put16(b, 0);
    put16(b, 26);     /* inPublic */
    put16(b, 0x0001); /* TPM_ALG_RSA */
    put16(b, TPM2_ALG_SHA256);
    /* fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | decrypt
     */
    put32(b, 0x00030072);
    put16(b, 0);      /* authPolicy */
    put16(b, 0x0006); /* AES */
    put16(b, 128);
    put16(b, 0x0043); /* CFB */
    put16(b, 0x0010); /* scheme: TPM_ALG_NULL */
    put16(b, 2048);
    put32(b, 0); /* exponent */
    put16(b, 0); /* unique */
    put16(b, 0); /* outsideInfo */
    put32(b, 0); /* creationPCR */
    return cmd_end(b);
}

GBytes *tpm2_ok(QTestState *qts, GByteArray *cmd)
{
    GBytes *rsp = tpm_transmit(qts, cmd->data, cmd->len);

    if (tpm_rc(rsp) != TPM_RC_SUCCESS) {
        g_error("TPM command 0x%02x%02x%02x%02x failed with 0x%x", cmd->data[6],
                cmd->data[7], cmd->data[8], cmd->data[9], tpm_rc(rsp));
    }
    g_byte_array_unref(cmd);
    return rsp;
}

void tpm2_startup(QTestState *qts)
{
    g_bytes_unref(tpm2_ok(qts, tpm2_cmd_startup()));
}

void tpm2_extend(QTestState *qts, unsigned pcr, uint8_t fill)
{
    g_bytes_unref(tpm2_ok(qts, tpm2_cmd_pcr_extend(pcr, fill)));
}

uint8_t *tpm2_pcr_read(QTestState *qts, unsigned pcr)
{
    g_autoptr(GBytes) rsp = tpm2_ok(qts, tpm2_cmd_pcr_read(pcr));
    gsize len;
    const uint8_t *p = g_bytes_get_data(rsp, &len);

    /* header, updateCounter, TPML_PCR_SELECTION (10), count, TPM2B_DIGEST */
    g_assert_cmpuint(len, ==, 10 + 4 + 10 + 4 + 2 + 32);
    g_assert_cmpuint(p[24 + 3], ==, 1);
    g_assert_cmpuint(p[28] << 8 | p[29], ==, 32);
    return g_memdup2(p + 30, 32);
}

void tpm2_nv_define(QTestState *qts, uint16_t size)
{
    g_bytes_unref(tpm2_ok(qts, tpm2_cmd_nv_define(TPM2_NV_TEST_INDEX, size)));
}

void tpm2_nv_write(QTestState *qts, const uint8_t *data, uint16_t len)
{
    g_bytes_unref(tpm2_ok(qts, tpm2_cmd_nv_write(TPM2_NV_TEST_INDEX, data, len)));
}

uint8_t *tpm2_nv_read(QTestState *qts, uint16_t len)
{
    g_autoptr(GBytes) rsp = tpm2_ok(qts, tpm2_cmd_nv_read(TPM2_NV_TEST_INDEX, len));
    gsize n;
    const uint8_t *p = g_bytes_get_data(rsp, &n);

    /* header, parameterSize, TPM2B_MAX_NV_BUFFER */
    g_assert_cmpuint(n, >=, 16u + len);
    g_assert_cmpuint(p[14] << 8 | p[15], ==, len);
    return g_memdup2(p + 16, len);
}

#define TPM_TAG_RQU_COMMAND 0x00C1

static GBytes *tpm12_ok(QTestState *qts, GByteArray *cmd)
{
    GBytes *rsp = tpm_transmit(qts, cmd->data, cmd->len);

    if (tpm_rc(rsp) != 0) {
        g_error("TPM 1.2 ordinal 0x%02x failed with 0x%x", cmd->data[9], tpm_rc(rsp));
    }
    g_byte_array_unref(cmd);
    return rsp;
}

void tpm12_startup(QTestState *qts)
{
    GByteArray *b = cmd_begin(TPM_TAG_RQU_COMMAND, 0x99);

    put16(b, 0x0001); /* TPM_ST_CLEAR */
    g_bytes_unref(tpm12_ok(qts, cmd_end(b)));
    b = cmd_begin(TPM_TAG_RQU_COMMAND, 0x53); /* TPM_ContinueSelfTest */
    g_bytes_unref(tpm12_ok(qts, cmd_end(b)));
}

void tpm12_extend(QTestState *qts, unsigned pcr, uint8_t fill)
{
    GByteArray *b = cmd_begin(TPM_TAG_RQU_COMMAND, 0x14);
    uint8_t digest[20];

    memset(digest, fill, sizeof(digest));
    put32(b, pcr);
    g_byte_array_append(b, digest, sizeof(digest));
    g_bytes_unref(tpm12_ok(qts, cmd_end(b)));
}

uint8_t *tpm12_pcr_read(QTestState *qts, unsigned pcr)
{
    GByteArray *b = cmd_begin(TPM_TAG_RQU_COMMAND, 0x15);
    g_autoptr(GBytes) rsp = NULL;
    gsize n;
    const uint8_t *p;

    put32(b, pcr);
    rsp = tpm12_ok(qts, cmd_end(b));
    p = g_bytes_get_data(rsp, &n);
    g_assert_cmpuint(n, ==, 30);
    return g_memdup2(p + 10, 20);
}

/* ---- qcow2 (qcow2 spec: header, snapshot table, L1/L2) ---- */

typedef struct Qcow2Peek {
    int fd;
    unsigned cluster_bits;
    uint64_t size;
    uint64_t sn_entry;  /* file offset of the snapshot's table entry */
    uint64_t l1_offset; /* the snapshot's L1 copy */
    uint32_t l1_size;
    uint64_t vm_state_size;
    uint32_t extra_size;
} Qcow2Peek;

#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    g_assert_cmpint(pread(fd, buf, len, (off_t)off), ==, (ssize_t)len);
}

static void pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
    g_assert_cmpint(pwrite(fd, buf, len, (off_t)off), ==, (ssize_t)len);
}

static bool qcow2_peek_open(Qcow2Peek *q, const char *path, const char *tag)
{
    uint8_t hdr[72];
    uint32_t nb;
    uint64_t off;

    memset(q, 0, sizeof(*q));
    q->fd = open(path, O_RDWR);
    g_assert_cmpint(q->fd, >=, 0);
    pread_full(q->fd, hdr, sizeof(hdr), 0);
    g_assert_cmpuint(be(hdr, 4), ==, 0x514649fb);
    g_assert_cmpuint(be(hdr + 32, 4), ==, 0); /* crypt_method: plain images only */
    q->cluster_bits = (unsigned)be(hdr + 20, 4);
    q->size = be(hdr + 24, 8);
    nb = (uint32_t)be(hdr + 60, 4);
    off = be(hdr + 64, 8);
    for (uint32_t i = 0; i < nb; i++) {
        uint8_t e[40];
        uint16_t id_len, name_len;
        g_autofree char *name = NULL;
        uint32_t extra;

        pread_full(q->fd, e, sizeof(e), off);
        id_len = (uint16_t)be(e + 12, 2);
        name_len = (uint16_t)be(e + 14, 2);
        extra = (uint32_t)be(e + 36, 4);
        name = g_malloc0(name_len + 1u);
        pread_full(q->fd, name, name_len, off + 40 + extra + id_len);
        if (strcmp(name, tag) == 0) {
            q->sn_entry = off;
            q->l1_offset = be(e, 8);
            q->l1_size = (uint32_t)be(e + 8, 4);
            q->extra_size = extra;
            q->vm_state_size = be(e + 32, 4);
            if (extra >= 8) {
                uint8_t big[8];
                pread_full(q->fd, big, 8, off + 40);
                q->vm_state_size = be(big, 8);
            }
            return true;
        }
        off += (40 + extra + id_len + name_len + 7) & ~7ull;
    }
    return false;
}

/* Host offset of guest offset `g` in the snapshot's tables. */
static uint64_t qcow2_peek_map(Qcow2Peek *q, uint64_t g)
{
    unsigned l2_bits = q->cluster_bits - 3;
    uint64_t l1i = g >> (q->cluster_bits + l2_bits);
    uint64_t l2i = (g >> q->cluster_bits) & ((1ull << l2_bits) - 1);
    uint8_t e[8];
    uint64_t l2, data;

    g_assert_cmpuint(l1i, <, q->l1_size);
    pread_full(q->fd, e, 8, q->l1_offset + l1i * 8);
    l2 = be(e, 8) & QCOW2_OFFSET_MASK;
    g_assert_cmpuint(l2, !=, 0);
    pread_full(q->fd, e, 8, l2 + l2i * 8);
    g_assert_false(be(e, 8) & (1ull << 62)); /* not compressed */
    data = be(e, 8) & QCOW2_OFFSET_MASK;
    g_assert_cmpuint(data, !=, 0);
    return data + (g & ((1ull << q->cluster_bits) - 1));
}

static uint64_t qcow2_peek_vmstate_offset(Qcow2Peek *q)
{
    uint64_t l1_span = 1ull << (q->cluster_bits + q->cluster_bits - 3);

    return (q->size + l1_span - 1) / l1_span * l1_span;
}

/* Copy the VM state from (to_disk false) or to the image, cluster by cluster. */
static void qcow2_peek_vmstate_io(Qcow2Peek *q, uint8_t *buf, bool to_disk)
{
    uint64_t base = qcow2_peek_vmstate_offset(q), cs = 1ull << q->cluster_bits;

    for (uint64_t pos = 0; pos < q->vm_state_size;) {
        uint64_t n = MIN(cs - ((base + pos) & (cs - 1)), q->vm_state_size - pos);
        uint64_t host = qcow2_peek_map(q, base + pos);
        if (to_disk) {
            pwrite_full(q->fd, buf + pos, n, host);
        } else {
            pread_full(q->fd, buf + pos, n, host);
        }
        pos += n;
    }
}

GByteArray *qcow2_read_vmstate(const char *path, const char *tag)
{
    Qcow2Peek q;
    GByteArray *out;

    if (!qcow2_peek_open(&q, path, tag)) {
        close(q.fd);
        return NULL;
    }
    out = g_byte_array_sized_new((guint)q.vm_state_size);
    g_byte_array_set_size(out, (guint)q.vm_state_size);
    qcow2_peek_vmstate_io(&q, out->data, false);
    close(q.fd);
    return out;
}

void qcow2_write_vmstate(const char *path, const char *tag, const GByteArray *data)
{
    Qcow2Peek q;

    g_assert_true(qcow2_peek_open(&q, path, tag));
    g_assert_cmpuint(data->len, ==, q.vm_state_size);
    qcow2_peek_vmstate_io(&q, data->data, true);
    g_assert_cmpint(fsync(q.fd), ==, 0);
    close(q.fd);
}

void qcow2_set_vm_state_size(const char *path, const char *tag, uint64_t size)
{
    Qcow2Peek q;
    uint8_t b[8];

    g_assert_true(qcow2_peek_open(&q, path, tag));
    for (unsigned i = 0; i < 4; i++) {
        b[i] = (uint8_t)(size >> (8 * (3 - i)));
    }
    pwrite_full(q.fd, b, 4, q.sn_entry + 32);
    if (q.extra_size >= 8) {
        for (unsigned i = 0; i < 8; i++) {
            b[i] = (uint8_t)(size >> (8 * (7 - i)));
        }
        pwrite_full(q.fd, b, 8, q.sn_entry + 40);
    }
    g_assert_cmpint(fsync(q.fd), ==, 0);
    close(q.fd);
}

/* ---- the VM state layout (docs/snapshots.md, docs/vmstate.md) ---- */

#define SNAP_HDR_SIZE 24

void snap_vmstate_fix_crc(GByteArray *vm)
{
    uint32_t crc;

    g_assert_cmpuint(vm->len, >=, SNAP_HDR_SIZE);
    crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), vm->data + SNAP_HDR_SIZE,
                          vm->len - SNAP_HDR_SIZE);
    for (unsigned i = 0; i < 4; i++) {
        vm->data[16 + i] = (uint8_t)(crc >> (8 * (3 - i)));
    }
}

int64_t snap_vmstate_find_section(const GByteArray *vm, const char *name, uint64_t *len,
                                  uint64_t *version_pos)
{
    uint64_t pos = SNAP_HDR_SIZE + 8; /* "TPVM" + stream version */

    while (pos < vm->len) {
        unsigned nlen = vm->data[pos++];
        uint64_t plen;
        bool match;

        if (nlen == 0) {
            break;
        }
        g_assert_cmpuint(pos + nlen + 16, <=, vm->len);
        match = nlen == strlen(name) && memcmp(vm->data + pos, name, nlen) == 0;
        pos += nlen;
        plen = be(vm->data + pos + 8, 8);
        if (match) {
            *version_pos = pos + 4;
            *len = plen;
            return (int64_t)(pos + 16);
        }
        pos += 16 + plen;
    }
    return -1;
}
