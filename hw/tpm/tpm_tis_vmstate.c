/*
 * The saved state of the TIS register logic: section "tpm-tis" version 1,
 * layout in docs/tpm.md. Loading validates everything (phase 1, `check`)
 * before any state changes, since a saved state is read back from a disk
 * image and is hostile input.
 */
#include <string.h>

#include "hw/tpm/tpm_tis.h"
#include "util/error.h"

#define TPM_TIS_VALID_LOCTY(l) ((l) < TPM_TIS_NUM_LOCALITIES)

/*
 * Big-endian layout:
 *   u8 active_locty, u8 aborting_locty, u8 next_locty, u8 0,
 *   u32 rw_offset, u32 buffer_len, buffer_len bytes of buffer,
 *   5 x { u8 state, u8 access, u16 0, u32 sts, u32 iface_id, u32 inte, u32 ints }
 * The buffer length is recorded so that the layout does not depend on 4096.
 */
#define TPM_TIS_VMSTATE_LOC_SIZE 20
#define TPM_TIS_VMSTATE_HEADER_SIZE 12

static void put_u32(GByteArray *out, uint32_t v)
{
    uint8_t b[4] = {v >> 24, v >> 16, v >> 8, v};

    g_byte_array_append(out, b, 4);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool tpm_tis_pre_save(void *opaque, GError **errp)
{
    TPMTISState *s = opaque;

    /* A snapshot never holds a command half-way through execution. */
    tpm_backend_finish_sync(s->be);
    return true;
}

static bool tpm_tis_save(void *opaque, GByteArray *out, GError **errp)
{
    TPMTISState *s = opaque;
    uint8_t hdr[4] = {s->active_locty, s->aborting_locty, s->next_locty, 0};

    if (s->cmd_in_flight) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "tpm-tis: a TPM command is still executing; cannot save the device");
        return false;
    }
    g_byte_array_append(out, hdr, 4);
    put_u32(out, s->rw_offset);
    put_u32(out, s->be_buffer_size);
    g_byte_array_append(out, s->buffer, s->be_buffer_size);
    for (int c = 0; c < TPM_TIS_NUM_LOCALITIES; c++) {
        TPMTISLocality *l = &s->loc[c];
        uint8_t lh[4] = {l->state, l->access, 0, 0};

        g_byte_array_append(out, lh, 4);
        put_u32(out, l->sts);
        put_u32(out, l->iface_id);
        put_u32(out, l->inte);
        put_u32(out, l->ints);
    }
    return true;
}

static bool vmstate_bad(GError **errp, const char *what)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                "vmstate section 'tpm-tis': %s; the saved state is damaged or from an "
                "incompatible TPM",
                what);
    return false;
}

static bool tpm_tis_check(void *opaque, const uint8_t *buf, size_t len, int version_id,
                          GError **errp)
{
    TPMTISState *s = opaque;
    uint64_t buffer_len, expected;
    uint32_t rw_offset;
    int active_count = 0;
    const uint8_t *p;

    if (len < TPM_TIS_VMSTATE_HEADER_SIZE) {
        return vmstate_bad(errp, "section is truncated");
    }
    for (int i = 0; i < 3; i++) {
        if (!TPM_TIS_VALID_LOCTY(buf[i]) && buf[i] != TPM_TIS_NO_LOCALITY) {
            return vmstate_bad(errp, "locality number out of range");
        }
    }
    if (buf[1] != TPM_TIS_NO_LOCALITY || buf[2] != TPM_TIS_NO_LOCALITY) {
        return vmstate_bad(errp, "an abort was pending, which a drained TPM never has");
    }
    rw_offset = get_u32(buf + 4);
    buffer_len = get_u32(buf + 8);
    expected = TPM_TIS_VMSTATE_HEADER_SIZE + buffer_len +
               (uint64_t)TPM_TIS_NUM_LOCALITIES * TPM_TIS_VMSTATE_LOC_SIZE;
    if (len != expected) {
        return vmstate_bad(errp, "section length does not match its buffer length");
    }
    if (buffer_len != s->be_buffer_size) {
        g_set_error(
            errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
            "vmstate section 'tpm-tis': saved TPM buffer size %" G_GUINT64_FORMAT
            " differs from this TPM's %u; use a backend with the same buffer size",
            buffer_len, s->be_buffer_size);
        return false;
    }
    if (rw_offset > buffer_len) {
        return vmstate_bad(errp, "FIFO offset beyond the buffer");
    }
    p = buf + TPM_TIS_VMSTATE_HEADER_SIZE + buffer_len;
    for (int c = 0; c < TPM_TIS_NUM_LOCALITIES; c++, p += TPM_TIS_VMSTATE_LOC_SIZE) {
        bool active = p[1] & TPM_TIS_ACCESS_ACTIVE_LOCALITY;

        if (p[0] >= TPM_TIS_STATE__MAX || p[0] == TPM_TIS_STATE_EXECUTION) {
            return vmstate_bad(errp, "locality state invalid or still executing");
        }
        if (active != (buf[0] == c)) {
            return vmstate_bad(errp, "active locality does not match the ACCESS bits");
        }
        active_count += active;
    }
    if (active_count > 1) {
        return vmstate_bad(errp, "more than one active locality");
    }
    return true;
}

static bool tpm_tis_load(void *opaque, const uint8_t *buf, size_t len, int version_id,
                         GError **errp)
{
    TPMTISState *s = opaque;
    const uint8_t *p;

    if (!tpm_tis_check(opaque, buf, len, version_id, errp)) {
        return false;
    }
    /* A command of the running VM must not complete into the loaded state. */
    tpm_backend_finish_sync(s->be);
    s->cmd_in_flight = false;
    s->active_locty = buf[0];
    s->aborting_locty = TPM_TIS_NO_LOCALITY;
    s->next_locty = TPM_TIS_NO_LOCALITY;
    s->rw_offset = get_u32(buf + 4);
    memcpy(s->buffer, buf + TPM_TIS_VMSTATE_HEADER_SIZE, s->be_buffer_size);
    p = buf + TPM_TIS_VMSTATE_HEADER_SIZE + s->be_buffer_size;
    for (int c = 0; c < TPM_TIS_NUM_LOCALITIES; c++, p += TPM_TIS_VMSTATE_LOC_SIZE) {
        TPMTISLocality *l = &s->loc[c];

        l->state = p[0];
        l->access =
            p[1] & ~(TPM_TIS_ACCESS_PENDING_REQUEST | TPM_TIS_ACCESS_TPM_ESTABLISHMENT);
        l->sts = get_u32(p + 4) & ~TPM_TIS_STS_BURST_COUNT_MASK;
        l->iface_id = get_u32(p + 8);
        l->inte = get_u32(p + 12) & (TPM_TIS_INT_ENABLED | TPM_TIS_INT_POLARITY_MASK |
                                     TPM_TIS_INTERRUPTS_SUPPORTED);
        l->ints = get_u32(p + 16) & TPM_TIS_INTERRUPTS_SUPPORTED;
    }
    return true;
}

static bool tpm_tis_post_load(void *opaque, int version_id, GError **errp)
{
    TPMTISState *s = opaque;

    /* Drive the line to what the loaded status says, whatever it was before. */
    s->irq_level = -1;
    tpm_tis_update_irq(s);
    return true;
}

const VMStateDescription tpm_tis_vmstate = {
    .name = "tpm-tis",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = tpm_tis_pre_save,
    .save = tpm_tis_save,
    .check = tpm_tis_check,
    .load = tpm_tis_load,
    .post_load = tpm_tis_post_load,
};
