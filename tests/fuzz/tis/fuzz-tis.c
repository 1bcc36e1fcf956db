/*
 * Fuzz target for the TPM TIS register logic (hw/tpm/tpm_tis.c): a guest can
 * issue any sequence of MMIO accesses, so every sequence must leave the
 * device consistent, with no crash, hang or out-of-bounds access.
 *
 * Input: byte 0 picks the backend (bits 0-1: TPM 2.0, TPM 1.2, TPM 2.0 with a
 * 64-byte buffer, TPM 1.2 with a 128-byte buffer) and the IRQ number (bits
 * 2-5), then 8-byte steps:
 *   op       bits 0-2 kind, bits 3-5 locality (5-7 are out of range)
 *   off_lo, off_hi  offset in the locality page (low 12 bits used)
 *   size     1, 2, 4 as given, other values wrap into 0..8
 *   value    4 bytes, little endian
 * kinds: 0 read, 1 write, 2 tpmGo (write STS), 3 completion (finish the
 * backend's command), 4 queue a reply (header size = value, length = offset),
 * 5 vmstate save + check + load, 6 cancel (write commandCancel), 7 reset.
 *
 * After every step: at most one locality is active and it is the one the
 * ACCESS bits say, rw_offset lies within the buffer, every state is known,
 * the interrupt line matches INT_STATUS/INT_ENABLE, and the in-flight flag
 * matches the backend.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "hw/tpm/tpm_test_backend.h"
#include "hw/tpm/tpm_tis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    OP_READ,
    OP_WRITE,
    OP_TPM_GO,
    OP_COMPLETE,
    OP_REPLY,
    OP_VMSTATE,
    OP_CANCEL,
    OP_RESET,
};

static TPMBackend *backends[4];
static TPMTISState *tis;
static IRQLine *irq;
static int irq_level;

static void irq_handler(void *opaque, int n, int level)
{
    irq_level = level;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz-tis: invariant broken: %s\n", what);
    abort();
}

static void check_invariants(TPMTISState *s)
{
    int active = 0, want_level = 0;

    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        bool is_active = s->loc[l].access & TPM_TIS_ACCESS_ACTIVE_LOCALITY;

        active += is_active;
        if (is_active != (s->active_locty == l)) {
            fail("ACCESS activeLocality differs from the active locality");
        }
        if (s->loc[l].state >= TPM_TIS_STATE__MAX) {
            fail("unknown locality state");
        }
        if ((s->loc[l].inte & TPM_TIS_INT_ENABLED) && s->loc[l].ints) {
            want_level = 1;
        }
        if (s->loc[l].ints & ~TPM_TIS_INTERRUPTS_SUPPORTED) {
            fail("unsupported INT_STATUS bit");
        }
    }
    if (active > 1) {
        fail("more than one active locality");
    }
    if (s->active_locty != TPM_TIS_NO_LOCALITY &&
        s->active_locty >= TPM_TIS_NUM_LOCALITIES) {
        fail("active locality out of range");
    }
    if (s->rw_offset > s->be_buffer_size || s->be_buffer_size > TPM_TIS_BUFFER_MAX) {
        fail("rw_offset beyond the buffer");
    }
    if (s->irq_level != want_level || irq_level != want_level) {
        fail("interrupt line does not match INT_STATUS");
    }
    if (s->cmd_in_flight != tpm_backend_cmd_pending(s->be)) {
        fail("in-flight flag differs from the backend");
    }
    if (s->cmd_in_flight && s->loc[s->cmd.locty].state != TPM_TIS_STATE_EXECUTION) {
        fail("a command is in flight but its locality is not executing");
    }
}

static void fuzz_init(void)
{
    g_autoptr(GError) err = NULL;

    static const char *const opts[4] = {
        "test,id=fuzz2",
        "test,id=fuzz12,version=1.2",
        "test,id=fuzz2s,buffer-size=64",
        "test,id=fuzz12s,version=1.2,buffer-size=128",
    };

    for (int i = 0; i < 4; i++) {
        backends[i] = tpm_backend_create_from_string(opts[i], NULL, &err);
        if (!backends[i]) {
            fprintf(stderr, "fuzz-tis: %s\n", err ? err->message : "no backend");
            abort();
        }
    }
    irq = irq_lines_new(irq_handler, NULL, 1);
    tis = g_new0(TPMTISState, 1);
}

static void do_vmstate(TPMTISState *s)
{
    const VMStateDescription *d = &tpm_tis_vmstate;
    g_autoptr(GByteArray) out = g_byte_array_new();

    if (!d->pre_save(s, NULL) || !d->save(s, out, NULL)) {
        fail("saving the device state failed");
    }
    /* What the device saved it must accept again, unchanged. */
    if (!d->check(s, out->data, out->len, d->version_id, NULL) ||
        !d->load(s, out->data, out->len, d->version_id, NULL) ||
        !d->post_load(s, d->version_id, NULL)) {
        fail("the device rejected its own saved state");
    }
}

static void do_reply(TPMBackend *be, uint32_t size_field, unsigned len)
{
    uint8_t reply[8192] = {0x80, 0x01};

    len = MIN(len, sizeof(reply));
    reply[2] = size_field >> 24;
    reply[3] = size_field >> 16;
    reply[4] = size_field >> 8;
    reply[5] = size_field;
    for (unsigned i = 10; i < len; i++) {
        reply[i] = i;
    }
    tpm_test_backend_push_reply(be, reply, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TPMBackend *be;

    if (!tis) {
        fuzz_init();
    }
    if (size < 1) {
        return 0;
    }
    be = backends[data[0] & 3];
    memset(tis, 0, sizeof(*tis));
    irq_level = 0;
    tpm_tis_init(tis, be, irq, (data[0] >> 2) & 0xf);
    if (!tpm_tis_reset(tis, NULL)) {
        abort();
    }
    check_invariants(tis);

    for (size_t p = 1; p + 8 <= size; p += 8) {
        const uint8_t *st = data + p;
        unsigned kind = st[0] & 7;
        uint64_t locty = (st[0] >> 3) & 7;
        uint64_t off = (st[1] | st[2] << 8) & 0xfff;
        unsigned sz = st[3];
        uint32_t val = st[4] | st[5] << 8 | st[6] << 16 | (uint32_t)st[7] << 24;
        uint64_t addr = locty << TPM_TIS_LOCALITY_SHIFT | off;

        if (sz != 1 && sz != 2 && sz != 4) {
            sz %= 9;
        }
        switch (kind) {
        case OP_READ:
            tpm_tis_mmio_read(tis, addr, sz);
            break;
        case OP_WRITE:
            tpm_tis_mmio_write(tis, addr, val, sz);
            break;
        case OP_TPM_GO:
            tpm_tis_mmio_write(tis, locty << TPM_TIS_LOCALITY_SHIFT | TPM_TIS_REG_STS,
                               TPM_TIS_STS_TPM_GO, 1);
            break;
        case OP_COMPLETE:
            tpm_backend_finish_sync(be);
            break;
        case OP_REPLY:
            do_reply(be, val, off * 2);
            break;
        case OP_VMSTATE:
            do_vmstate(tis);
            break;
        case OP_CANCEL:
            tpm_tis_mmio_write(tis, locty << TPM_TIS_LOCALITY_SHIFT | TPM_TIS_REG_STS,
                               TPM_TIS_STS_COMMAND_CANCEL, 4);
            break;
        case OP_RESET:
            if (!tpm_tis_reset(tis, NULL)) {
                abort();
            }
            break;
        }
        check_invariants(tis);
    }
    /* Leave nothing behind for the next input: no command, no queued reply. */
    tpm_backend_finish_sync(be);
    while (g_main_context_iteration(NULL, FALSE)) {
    }
    check_invariants(tis);
    tpm_test_backend_clear(be);
    return 0;
}
