/*
 * tpmvm killed with SIGKILL at random moments while the guest writes an NV
 * index, a few hundred times: every next start succeeds, and the index
 * holds the last value whose response the guest saw, or the one in flight.
 * (Power loss below the file system is test-builtin-crash.c.)
 */
#include <signal.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "libqtest.h"
#include "test-builtin-cmds.h"
#include "tpm-builtin-util.h"

static uint8_t rsp[4096];

static GByteArray *nv_write_value(uint64_t v)
{
    uint8_t data[8];
    for (int i = 0; i < 8; i++) {
        data[i] = v >> (56 - 8 * i);
    }
    return tpm2_cmd_nv_write(TEST_NV_INDEX, data, sizeof(data), 0);
}

static uint64_t nv_read_value(QTestState *qts)
{
    GByteArray *c = tpm2_cmd_nv_read(TEST_NV_INDEX, 8, 0);
    uint32_t n = tpm_tis_transmit(qts, 0, c->data, c->len, rsp, sizeof(rsp), true);
    const uint8_t *p;
    uint16_t len = 0;
    uint64_t v = 0;

    g_byte_array_unref(c);
    g_assert_cmphex(tpm_rsp_code(rsp, n), ==, 0);
    p = tpm2_rsp_nv_read_data(rsp, n, &len);
    g_assert_nonnull(p);
    g_assert_cmpuint(len, ==, 8);
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

static void kill_now(QTestState *qts)
{
    kill(qtest_pid(qts), SIGKILL);
    g_assert_cmpint(qtest_wait_exit(qts, 10000), ==, 128 + SIGKILL);
    qtest_quit(qts);
}

static void test_sigkill_keeps_acknowledged_nv(void)
{
    GError *err = NULL;
    g_autofree char *dir = g_dir_make_tmp("tpm-builtin-crash-XXXXXX", &err);
    g_autofree char *img = g_build_filename(dir, "tpm.qcow2", NULL);
    g_autofree char *pass = g_build_filename(dir, "pass", NULL);
    g_autofree char *args = NULL;
    GRand *rnd = g_rand_new_with_seed(g_test_rand_int());
    gint64 deadline = g_get_monotonic_time() + 40 * G_USEC_PER_SEC;
    unsigned runs = 0, in_flight_kept = 0, max_runs = 300;
    uint64_t acked = 0;
    QTestState *qts;

    g_assert_true(g_file_set_contents(pass, TPM_TEST_PASS, -1, NULL));
    if (!tpm_test_make_image(img, "1M", &err)) {
        g_error("cannot make the TPM image: %s", err->message);
    }
    args =
        g_strdup_printf("-machine pc -object secret,id=sec0,file=%s "
                        "-drive if=none,id=tpmnv,file=%s,format=qcow2,"
                        "encrypt.key-secret=sec0 "
                        "-tpmdev builtin,id=tpm0,drive=tpmnv -device tpm-tis,tpmdev=tpm0",
                        pass, img);
    qts = qtest_init_without_qmp(args);
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    g_assert_cmphex(
        tpm_tis_run(qts, tpm2_cmd_nv_define(TEST_NV_INDEX, 8), rsp, sizeof(rsp)), ==, 0);
    g_assert_cmphex(tpm_tis_run(qts, nv_write_value(0), rsp, sizeof(rsp)), ==, 0);
    kill_now(qts);

    while (runs < max_runs && g_get_monotonic_time() < deadline) {
        unsigned complete = g_rand_int_range(rnd, 0, 4);
        uint64_t v, sent;
        GByteArray *c;

        qts = qtest_init_without_qmp(args);
        tpm_tis_request_locality(qts, 0);
        g_assert_cmphex(
            tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)), ==, 0);
        v = nv_read_value(qts);
        if (v != acked && v != acked + 1) {
            g_error("run %u: NV holds %" G_GUINT64_FORMAT
                    ", the last acknowledged value was "
                    "%" G_GUINT64_FORMAT,
                    runs, v, acked);
        }
        in_flight_kept += runs > 0 && v == acked + 1;
        acked = sent = v;
        for (unsigned i = 0; i < complete; i++) {
            g_assert_cmphex(tpm_tis_run(qts, nv_write_value(++sent), rsp, sizeof(rsp)),
                            ==, 0);
            acked = sent;
        }
        /* one more NV_Write in flight: tpmGo, then SIGKILL at once, within
         * 300 us (while libtpms or the store works) or within 3 ms */
        c = nv_write_value(acked + 1);
        qtest_writeb(qts, TPM_TIS_ADDR + 0x18, 0x40);
        for (guint off = 0; off < c->len; off += 64) {
            qtest_memwrite(qts, TPM_TIS_ADDR + 0x80, c->data + off,
                           MIN(64u, c->len - off));
        }
        g_byte_array_unref(c);
        qtest_writeb(qts, TPM_TIS_ADDR + 0x18, 0x20);
        switch (runs % 3) {
        case 1:
            g_usleep(g_rand_int_range(rnd, 0, 300));
            break;
        case 2:
            g_usleep(g_rand_int_range(rnd, 0, 3000));
            break;
        }
        kill_now(qts);
        runs++;
    }
    /* the final check after the last kill */
    qts = qtest_init_without_qmp(args);
    tpm_tis_request_locality(qts, 0);
    g_assert_cmphex(tpm_tis_run(qts, tpm2_cmd_startup(TPM2_SU_CLEAR), rsp, sizeof(rsp)),
                    ==, 0);
    {
        uint64_t v = nv_read_value(qts);
        g_assert_true(v == acked || v == acked + 1);
    }
    qtest_quit(qts);
    g_test_message("%u kills; the NV_Write in flight was kept %u times", runs,
                   in_flight_kept);
    g_assert_cmpuint(runs, >=, 30);
    g_unlink(img);
    g_unlink(pass);
    g_rmdir(dir);
    g_rand_free(rnd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/tpm-builtin/crash/sigkill-keeps-acknowledged-nv",
                    test_sigkill_keeps_acknowledged_nv);
    return g_test_run();
}
