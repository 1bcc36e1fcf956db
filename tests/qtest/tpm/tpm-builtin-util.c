/*
 * TPM commands through the TIS of a tpmvm process (TIS 1.3 §5.5 / PTP
 * FIFO interface), for the builtin TPM's qtests.
 */
#include "tpm-builtin-util.h"

#include <string.h>

#define REG_ACCESS 0x00
#define REG_STS 0x18
#define REG_FIFO 0x24
#define REG_XFIFO 0x80
#define STS_VALID 0x80
#define STS_COMMAND_READY 0x40
#define STS_GO 0x20
#define STS_DATA_AVAIL 0x10
#define STS_EXPECT 0x08
#define ACCESS_VALID 0x80
#define ACCESS_ACTIVE 0x20
#define ACCESS_REQUEST_USE 0x02

static uint64_t reg(uint8_t locty, uint32_t off)
{
    return TPM_TIS_ADDR + ((uint64_t)locty << 12) + off;
}

void tpm_tis_request_locality(QTestState *qts, uint8_t locty)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    qtest_writeb(qts, reg(locty, REG_ACCESS), ACCESS_REQUEST_USE);
    while ((qtest_readb(qts, reg(locty, REG_ACCESS)) & (ACCESS_VALID | ACCESS_ACTIVE)) !=
           (ACCESS_VALID | ACCESS_ACTIVE)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
    }
}

void tpm_tis_relinquish_locality(QTestState *qts, uint8_t locty)
{
    qtest_writeb(qts, reg(locty, REG_ACCESS), ACCESS_ACTIVE);
}

/* Wait until (STS & mask) == want; polls, then polls gently. */
static void wait_sts(QTestState *qts, uint8_t locty, uint8_t mask, uint8_t want)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;

    for (unsigned i = 0; (qtest_readb(qts, reg(locty, REG_STS)) & mask) != want; i++) {
        if (g_get_monotonic_time() > deadline) {
            g_error("TIS STS never reached 0x%x (mask 0x%x) at locality %u", want, mask,
                    locty);
        }
        if (i > 1000) {
            g_usleep(100);
        }
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint32_t tpm_tis_transmit(QTestState *qts, uint8_t locty, const uint8_t *cmd, size_t len,
                          uint8_t *rsp, size_t rsp_max, bool burst)
{
    uint32_t size, got = 0;

    g_assert_cmpuint(len, >=, 1);
    qtest_writeb(qts, reg(locty, REG_STS), STS_COMMAND_READY);
    wait_sts(qts, locty, STS_COMMAND_READY, STS_COMMAND_READY);
    if (burst) {
        for (size_t off = 0; off < len; off += 64) {
            qtest_memwrite(qts, reg(locty, REG_XFIFO), cmd + off,
                           MIN((size_t)64, len - off));
        }
    } else {
        for (size_t i = 0; i < len; i++) {
            qtest_writeb(qts, reg(locty, REG_FIFO), cmd[i]);
        }
    }
    /* the whole command is in: Expect must be clear, stsValid set */
    g_assert_cmphex(qtest_readb(qts, reg(locty, REG_STS)) & (STS_VALID | STS_EXPECT), ==,
                    STS_VALID);
    qtest_writeb(qts, reg(locty, REG_STS), STS_GO);
    wait_sts(qts, locty, STS_DATA_AVAIL | STS_VALID, STS_DATA_AVAIL | STS_VALID);
    if (burst) {
        uint8_t chunk[64];
        qtest_memread(qts, reg(locty, REG_XFIFO), chunk, 64);
        size = be32(chunk + 2);
        g_assert_cmpuint(size, >=, 10);
        g_assert_cmpuint(size, <=, rsp_max);
        memcpy(rsp, chunk, MIN(64u, size));
        for (got = MIN(64u, size); got < size; got += 64) {
            qtest_memread(qts, reg(locty, REG_XFIFO), chunk, 64);
            memcpy(rsp + got, chunk, MIN(64u, size - got));
        }
        got = size;
    } else {
        for (; got < 10; got++) {
            rsp[got] = qtest_readb(qts, reg(locty, REG_FIFO));
        }
        size = be32(rsp + 2);
        g_assert_cmpuint(size, >=, 10);
        g_assert_cmpuint(size, <=, rsp_max);
        for (; got < size; got++) {
            rsp[got] = qtest_readb(qts, reg(locty, REG_FIFO));
        }
    }
    /* nothing left over */
    g_assert_cmphex(qtest_readb(qts, reg(locty, REG_STS)) & STS_DATA_AVAIL, ==, 0);
    qtest_writeb(qts, reg(locty, REG_STS), STS_COMMAND_READY);
    return got;
}

uint32_t tpm_tis_run(QTestState *qts, GByteArray *cmd, uint8_t *rsp, size_t rsp_max)
{
    uint32_t len =
        tpm_tis_transmit(qts, 0, cmd->data, cmd->len, rsp, rsp_max, cmd->len > 32);

    g_byte_array_unref(cmd);
    g_assert_cmpuint(len, >=, 10);
    return be32(rsp + 6);
}

bool tpm_test_make_image(const char *path, const char *size, GError **errp)
{
    const char *build = g_getenv("TPMVM_BUILD_DIR");
    g_autofree char *tool =
        g_build_filename(build ? build : ".", "tools", "tpmvm-img", NULL);
    const char *argv[] = {
        tool,
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        "secret,id=sec0,data=" TPM_TEST_PASS,
        "-o",
        "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10",
        path,
        size,
        NULL};
    g_autofree char *err_out = NULL;
    int status = -1;

    if (!g_file_test(tool, G_FILE_TEST_IS_EXECUTABLE)) {
        g_set_error(errp, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s is not built", tool);
        return false;
    }
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL,
                      &err_out, &status, errp)) {
        return false;
    }
    if (!g_spawn_check_wait_status(status, errp)) {
        g_prefix_error(errp, "tpmvm-img create: %s: ", err_out ? err_out : "");
        return false;
    }
    return true;
}
