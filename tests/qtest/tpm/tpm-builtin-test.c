/*
 * The builtin TPM through the real TIS of a tpmvm process, with real
 * libtpms: TPM 2.0 and 1.2 commands, localities, tpmEstablished, reset,
 * the monitor's view, the single-instance rule, and random guest command
 * bytes. The TPM keeps its state in memory here; the drive tests are in
 * tpm-builtin-drive-test.c.
 */
#include <string.h>

#include <glib.h>

#include "libqtest.h"
#include "test-builtin-cmds.h"
#include "tpm-builtin-util.h"

#define ARGS_TPM2 "-machine pc -tpmdev builtin,id=tpm0 -device tpm-tis,tpmdev=tpm0"
#define ARGS_TPM12                                                                       \
    "-machine pc -tpmdev builtin,id=tpm0,version=1.2 -device tpm-tis,tpmdev=tpm0"

static uint8_t rsp[4096];

static void pcr_read_expect(QTestState *qts, uint32_t pcr, const uint8_t want[32])
{
    uint32_t len;
    GByteArray *c = tpm2_cmd_pcr_read(pcr);

    len = tpm_tis_transmit(qts, 0, c->data, c->len, rsp, sizeof(rsp), false);
    g_byte_array_unref(c);
    g_assert_cmphex(tpm_rsp_code(rsp, len), ==, 0);
    g_assert_nonnull(tpm2_rsp_pcr_read_digest(rsp, len));
    g_assert_cmpmem(tpm2_rsp_pcr_read_digest(rsp, len), 32, want, 32);
}

static void test_tpm2_startup_random_pcr(gconstpointer data)
{
    bool burst = GPOINTER_TO_INT(data);
    QTestState *qts = qtest_init(ARGS_TPM2);
    uint8_t in[32], expect[32] = {0}, first[32];
    GByteArray *c;
    uint32_t len;

    tpm_tis_request_locality(qts, 0);
    c = tpm2_cmd_startup(TPM2_SU_CLEAR);
    len = tpm_tis_transmit(qts, 0, c->data, c->len, rsp, sizeof(rsp), burst);
    g_byte_array_unref(c);
    g_assert_cmpuint(len, ==, 10);
    g_assert_cmphex(tpm_rsp_code(rsp, len), ==, 0);

    for (int i = 0; i < 2; i++) {
        c = tpm2_cmd_get_random(32);
        len = tpm_tis_transmit(qts, 0, c->data, c->len, rsp, sizeof(rsp), burst);
        g_byte_array_unref(c);
        g_assert_cmphex(tpm_rsp_code(rsp, len), ==, 0);
        g_assert_cmpuint(len, ==, 12 + 32);
        if (i == 0) {
            memcpy(first, rsp + 12, 32);
        } else {
            g_assert_true(memcmp(first, rsp + 12, 32) != 0);
        }
    }
    for (int i = 0; i < 3; i++) {
        memset(in, 0x10 + i, sizeof(in));
        c = tpm2_cmd_pcr_extend(16, in);
        len = tpm_tis_transmit(qts, 0, c->data, c->len, rsp, sizeof(rsp), burst);
        g_byte_array_unref(c);
        g_assert_cmphex(tpm_rsp_code(rsp, len), ==, 0);
        tpm2_pcr_extend_expect(expect, in);
    }
    pcr_read_expect(qts, 16, expect);
    qtest_quit(qts);
}

static void test_tpm12_startup_capability_pcr(void)
{
    QTestState *qts = qtest_init(ARGS_TPM12);
    uint8_t in[20], expect[20] = {0};

    tpm_tis_request_locality(qts, 0);
    /* the TIS announces a TPM 1.2: STS family bits 27:26 = 00 */
    g_assert_cmphex(qtest_readl(qts, TPM_TIS_ADDR + 0x18) & 0x0c000000, ==, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm12_cmd_startup(TPM12_ST_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    g_assert_cmphex(tc_get16(rsp), ==, 0x00c4);
    g_assert_cmphex(tpm_tis_run(qts, tpm12_cmd_get_capability_pcrs(), rsp, sizeof(rsp)),
                    ==, 0);
    g_assert_cmpuint(tc_get32(rsp + 14), ==, 24);
    for (int i = 0; i < 2; i++) {
        memset(in, 0x60 + i, sizeof(in));
        g_assert_cmphex(tpm_tis_run(qts, tpm12_cmd_extend(5, in), rsp, sizeof(rsp)), ==,
                        0);
        tpm12_pcr_extend_expect(expect, in);
    }
    g_assert_cmphex(tpm_tis_run(qts, tpm12_cmd_pcr_read(5), rsp, sizeof(rsp)), ==, 0);
    g_assert_cmpmem(rsp + 10, 20, expect, 20);
    qtest_quit(qts);
}

static void test_memory_only_warns(void)
{
    QTestState *qts = qtest_init(ARGS_TPM2);
    g_autofree char *err = NULL;

    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    err = qtest_get_stderr(qts);
    g_assert_nonnull(strstr(err,
                            "-tpmdev builtin,id=tpm0: no drive= or path=: the TPM state "
                            "is kept in memory and lost when tpmvm exits"));
    qtest_quit(qts);
}

static void test_second_builtin_is_refused(void)
{
    g_autofree char *out = NULL, *err = NULL;
    int rc = qtest_run("-machine pc -accel qtest -display none -tpmdev builtin,id=a "
                       "-tpmdev builtin,id=b -device tpm-tis,tpmdev=a",
                       &out, &err);

    g_assert_cmpint(rc, !=, 0);
    g_assert_nonnull(strstr(err,
                            "-tpmdev builtin,id=b: only one builtin TPM can exist per "
                            "process (libtpms holds a single TPM) and 'a' is already "
                            "one"));
}

static void test_bad_version_is_refused(void)
{
    g_autofree char *out = NULL, *err = NULL;
    int rc = qtest_run("-machine pc -accel qtest -display none "
                       "-tpmdev builtin,id=t,version=3 -device tpm-tis,tpmdev=t",
                       &out, &err);

    g_assert_cmpint(rc, !=, 0);
    g_assert_nonnull(strstr(err, "Parameter 'version' expects 2.0 or 1.2, not '3'"));
}

static char *qmp_return_text(QTestState *qts, const char *cmd)
{
    JsonObject *rsp = qtest_qmp(qts, "%s", cmd);
    g_autoptr(JsonNode) node = NULL;
    char *text;

    g_assert_true(json_object_has_member(rsp, "return"));
    node = json_node_copy(json_object_get_member(rsp, "return"));
    text = json_to_string(node, FALSE);
    json_object_unref(rsp);
    return text;
}

static void test_monitor_shows_builtin(void)
{
    QTestState *qts = qtest_init(ARGS_TPM12);
    g_autofree char *tpm = qmp_return_text(qts, "{'execute': 'query-tpm'}");
    g_autofree char *types = qmp_return_text(qts, "{'execute': 'query-tpm-types'}");
    g_autofree char *info = qtest_hmp(qts, "info tpm");

    g_assert_cmpstr(
        tpm, ==,
        "[{\"model\":\"tpm-tis\",\"id\":\"tpm0\",\"options\":{\"type\":\"builtin\","
        "\"data\":{\"state\":\"memory\",\"version\":\"1.2\"}}}]");
    g_assert_nonnull(strstr(types, "\"builtin\""));
    g_assert_nonnull(strstr(info, "tpm0: type=builtin,state=memory,version=1.2"));
    qtest_quit(qts);
}

static void test_reset_drops_volatile_keeps_permanent(void)
{
    QTestState *qts = qtest_init(ARGS_TPM2);
    uint8_t in[32], zero[32] = {0}, msg[8] = "nv-keep", *got;
    uint16_t got_len = 0;
    uint32_t len;
    GByteArray *c;

    memset(in, 0x42, sizeof(in));
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_nv_define(TEST_NV_INDEX, sizeof(msg)), rsp,
                                sizeof(rsp)),
                    ==, 0);
    g_assert_cmphex(tpm_tis_run(qts,
                                tpm2_cmd_nv_write(TEST_NV_INDEX, msg, sizeof(msg), 0),
                                rsp, sizeof(rsp)),
                    ==, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_pcr_extend(16, in), rsp, sizeof(rsp)), ==,
                    0);

    qtest_qmp_assert_success(qts, "{'execute': 'system_reset'}");
    qtest_qmp_eventwait(qts, "RESET");
    tpm_tis_request_locality(qts, 0);
    /* a reset TPM wants TPM2_Startup again: tpmvm does not send it */
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_get_random(8), rsp, sizeof(rsp)), ==,
                    TPM2_RC_INITIALIZE);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    pcr_read_expect(qts, 16, zero);
    c = tpm2_cmd_nv_read(TEST_NV_INDEX, sizeof(msg), 0);
    len = tpm_tis_transmit(qts, 0, c->data, c->len, rsp, sizeof(rsp), true);
    g_byte_array_unref(c);
    got = (uint8_t *)tpm2_rsp_nv_read_data(rsp, len, &got_len);
    g_assert_nonnull(got);
    g_assert_cmpmem(got, got_len, msg, sizeof(msg));
    qtest_quit(qts);
}

static void test_locality_reaches_libtpms(void)
{
    QTestState *qts = qtest_init(ARGS_TPM2);
    uint8_t in[32];
    GByteArray *c;
    uint32_t len;

    memset(in, 7, sizeof(in));
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    /* PC Client PTP: PCR 17 can be extended from localities 2-4 only */
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_pcr_extend(17, in), rsp, sizeof(rsp)), ==,
                    TPM2_RC_LOCALITY);
    tpm_tis_relinquish_locality(qts, 0);
    tpm_tis_request_locality(qts, 3);
    c = tpm2_cmd_pcr_extend(17, in);
    len = tpm_tis_transmit(qts, 3, c->data, c->len, rsp, sizeof(rsp), false);
    g_byte_array_unref(c);
    g_assert_cmphex(tpm_rsp_code(rsp, len), ==, 0);
    qtest_quit(qts);
}

static void test_established_reset_from_locality_3(void)
{
    QTestState *qts = qtest_init(ARGS_TPM2);
    uint8_t access;

    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    tpm_tis_relinquish_locality(qts, 0);
    tpm_tis_request_locality(qts, 3);
    /* PTP: resetEstablishmentBit (STS bit 25) from locality 3 clears the flag:
     * ACCESS bit 0 then reads 1 ("no dynamic OS launched") */
    qtest_writel(qts, TPM_TIS_ADDR + 0x3018, 1u << 25);
    access = qtest_readb(qts, TPM_TIS_ADDR + 0x3000);
    g_assert_cmphex(access & 0x01, ==, 0x01);
    g_assert_cmphex(access & 0xa0, ==, 0xa0);
    qtest_quit(qts);
}

/*
 * Random command bytes of random lengths through the TIS to libtpms, as a
 * hostile guest would send them; the process must answer each complete
 * command and still serve a proper TPM2_Startup + GetRandom afterwards.
 */
static void test_random_commands_through_tis(void)
{
    QTestState *qts = qtest_init(ARGS_TPM2);
    GRand *rnd = g_rand_new_with_seed(g_test_rand_int());
    unsigned iterations = g_test_slow() ? 2000 : 300, answered = 0;
    uint8_t *cmd = g_malloc(4096);

    tpm_tis_request_locality(qts, 0);
    for (unsigned i = 0; i < iterations; i++) {
        uint32_t len = g_rand_boolean(rnd) ? g_rand_int_range(rnd, 1, 64)
                                           : g_rand_int_range(rnd, 1, 4097);
        uint8_t sts;

        for (uint32_t j = 0; j < len; j++) {
            cmd[j] = g_rand_int(rnd);
        }
        if (len >= 10 && g_rand_int_range(rnd, 0, 10)) {
            /* mostly a plausible header: TPM 2.0 tag, true size, known ordinal range */
            cmd[0] = 0x80;
            cmd[1] = g_rand_boolean(rnd) ? 0x01 : 0x02;
            cmd[2] = len >> 24;
            cmd[3] = len >> 16;
            cmd[4] = len >> 8;
            cmd[5] = len;
            cmd[6] = cmd[7] = 0;
            cmd[8] = 1;
            cmd[9] = 0x1f + g_rand_int_range(rnd, 0, 0x80);
        }
        qtest_writeb(qts, TPM_TIS_ADDR + 0x18, 0x40);
        for (uint32_t off = 0; off < len; off += 64) {
            qtest_memwrite(qts, TPM_TIS_ADDR + 0x80, cmd + off, MIN(64u, len - off));
        }
        sts = qtest_readb(qts, TPM_TIS_ADDR + 0x18);
        if (sts & 0x08) {
            /* header incomplete or larger than sent: abort, as a driver would */
            qtest_writeb(qts, TPM_TIS_ADDR + 0x18, 0x40);
            continue;
        }
        qtest_writeb(qts, TPM_TIS_ADDR + 0x18, 0x20);
        for (gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
             (qtest_readb(qts, TPM_TIS_ADDR + 0x18) & 0x90) != 0x90;) {
            g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        }
        qtest_memread(qts, TPM_TIS_ADDR + 0x80, rsp, 64);
        g_assert_cmpuint(tc_get32(rsp + 2), >=, 10);
        g_assert_cmpuint(tc_get32(rsp + 2), <=, 4096);
        answered++;
        qtest_writeb(qts, TPM_TIS_ADDR + 0x18, 0x40);
    }
    g_test_message("%u of %u random commands were complete and answered", answered,
                   iterations);
    g_assert_cmpuint(answered, >, iterations / 2);
    qtest_qmp_assert_success(qts, "{'execute': 'system_reset'}");
    qtest_qmp_eventwait(qts, "RESET");
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_get_random(16), rsp, sizeof(rsp)), ==, 0);
    g_free(cmd);
    g_rand_free(rnd);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/tpm-builtin/tpm2/startup-random-pcr/byte-wise",
                         GINT_TO_POINTER(0), test_tpm2_startup_random_pcr);
    g_test_add_data_func("/tpm-builtin/tpm2/startup-random-pcr/xdata-bursts",
                         GINT_TO_POINTER(1), test_tpm2_startup_random_pcr);
    g_test_add_func("/tpm-builtin/tpm12/startup-capability-pcr-extend-read",
                    test_tpm12_startup_capability_pcr);
    g_test_add_func("/tpm-builtin/memory-only/warns-that-state-is-lost",
                    test_memory_only_warns);
    g_test_add_func("/tpm-builtin/cmdline/second-builtin-is-refused",
                    test_second_builtin_is_refused);
    g_test_add_func("/tpm-builtin/cmdline/bad-version-is-refused",
                    test_bad_version_is_refused);
    g_test_add_func("/tpm-builtin/monitor/query-tpm-and-info-tpm-show-builtin",
                    test_monitor_shows_builtin);
    g_test_add_func("/tpm-builtin/reset/drops-volatile-keeps-permanent",
                    test_reset_drops_volatile_keeps_permanent);
    g_test_add_func("/tpm-builtin/locality/reaches-libtpms",
                    test_locality_reaches_libtpms);
    g_test_add_func("/tpm-builtin/established/reset-from-locality-3",
                    test_established_reset_from_locality_3);
    g_test_add_func("/tpm-builtin/fuzz/random-commands-through-tis",
                    test_random_commands_through_tis);
    return g_test_run();
}
