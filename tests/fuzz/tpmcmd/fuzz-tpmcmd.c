/*
 * Fuzz target: guest command bytes through the builtin backend into libtpms
 * (hw/tpm/tpm_builtin*.c), exactly as the TIS delivers them.
 *
 * Input: byte 0 & 7 = locality (5 to 7 are delivered too, to check that they
 * are refused), the rest = the command. The TPM (2.0; FUZZ_TPM_VERSION=1.2
 * for 1.2) keeps its state in memory across inputs, like a guest sending
 * command after command.
 *
 * Properties: every command gets a response whose header size lies within
 * 10 and the buffer size; every 256 inputs, and at the end of the run, a
 * machine reset followed by Startup and GetRandom still works.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_builtin.h"

#define BUF_SIZE 4096

static TPMBackend *be;
static TPMVersion version = TPM_VERSION_2_0;
static uint8_t buf[BUF_SIZE];
static unsigned inputs;

static void completed(void *opaque, TPMBackendCmd *cmd)
{
}

static uint32_t deliver(uint8_t locty, const uint8_t *in, size_t len)
{
    TPMBackendCmd cmd;
    uint32_t rsp_size;

    len = MIN(len, (size_t)BUF_SIZE);
    memcpy(buf, in, len);
    cmd = (TPMBackendCmd){.locty = locty,
                          .in = buf,
                          .in_len = (uint32_t)len,
                          .out = buf,
                          .out_len = BUF_SIZE};
    if (!tpm_backend_deliver_request(be, &cmd, completed, NULL, NULL)) {
        abort();
    }
    tpm_backend_finish_sync(be);
    rsp_size =
        (uint32_t)buf[2] << 24 | (uint32_t)buf[3] << 16 | (uint32_t)buf[4] << 8 | buf[5];
    if (rsp_size < 10 || rsp_size > BUF_SIZE) {
        fprintf(stderr, "response size %u out of range\n", rsp_size);
        abort();
    }
    return (uint32_t)buf[6] << 24 | (uint32_t)buf[7] << 16 | (uint32_t)buf[8] << 8 |
           buf[9];
}

/* Reset the machine's TPM and check that it serves a guest again. */
static void check_alive(void)
{
    static const uint8_t startup2[] = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x44, 0, 0};
    static const uint8_t random2[] = {0x80, 0x01, 0, 0, 0, 0x0c, 0, 0, 0x01, 0x7b, 0, 8};
    static const uint8_t startup12[] = {0, 0xc1, 0, 0, 0, 0x0c, 0, 0, 0, 0x99, 0, 1};
    static const uint8_t random12[] = {0, 0xc1, 0, 0, 0, 0x0e, 0, 0, 0, 0x46, 0, 0, 0, 8};
    GError *err = NULL;
    bool v12 = version == TPM_VERSION_1_2;

    tpm_backend_reset(be);
    if (!tpm_backend_startup_tpm(be, BUF_SIZE, &err)) {
        fprintf(stderr, "restart failed: %s\n", err->message);
        abort();
    }
    if (deliver(0, v12 ? startup12 : startup2, 12) != 0 ||
        deliver(0, v12 ? random12 : random2, v12 ? 14 : 12) != 0) {
        fprintf(stderr, "TPM does not answer Startup + GetRandom after a reset\n");
        abort();
    }
}

static void at_exit_check(void)
{
    if (be) {
        check_alive();
        tpm_backend_destroy(be);
        be = NULL;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!be) {
        GError *err = NULL;
        const char *v = getenv("FUZZ_TPM_VERSION");

        if (v && strcmp(v, "1.2") == 0) {
            version = TPM_VERSION_1_2;
        }
        be = tpm_builtin_new("fuzz0", version, NULL, NULL, "memory", &err);
        if (!be || !tpm_backend_startup_tpm(be, BUF_SIZE, &err)) {
            fprintf(stderr, "cannot start the TPM: %s\n", err ? err->message : "?");
            abort();
        }
        check_alive();
        atexit(at_exit_check);
    }
    if (size == 0) {
        return 0;
    }
    deliver(data[0] & 7, data + 1, size - 1);
    if (++inputs % 256 == 0) {
        check_alive();
    }
    return 0;
}
