/*
 * TPM TIS register logic: localities, the FIFO state machine, interrupts and
 * the hand-off of commands to the backend. Bus independent; see tpm_tis.h.
 *
 * Behaviour follows TCG PC Client TIS 1.3 and the PTP FIFO interface, and
 * matches what QEMU's tpm-tis shows to guests (the Linux driver's trace in
 * tests/qtest/tpm/data/ is replayed against it), with these differences:
 * - the backend works on private copies of the command and the response, so
 *   guest accesses during execution can never race with the worker thread;
 *   FIFO accesses while a command executes read 0xff / are dropped;
 * - a command aborted while executing does not raise dataAvail;
 * - the interrupt line is the OR of every locality's pending, enabled status;
 * - rw_offset restarts at 0 whenever the active locality changes;
 * - a command that fills the buffer while more is announced clears Expect at
 *   once (the guest sees the overflow before it writes the last byte).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hw/tpm/tpm_tis.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

#define TPM_TIS_VALID_LOCTY(l) ((l) < TPM_TIS_NUM_LOCALITIES)

/* Set STS flags, keeping selfTestDone and the family bits (TIS 1.3 §5.5.2.5). */
static void tpm_tis_sts_set(TPMTISLocality *l, uint32_t flags)
{
    l->sts &= TPM_TIS_STS_SELFTEST_DONE | TPM_TIS_STS_TPM_FAMILY_MASK;
    l->sts |= flags;
}

/* Drive the line: high while any locality has an enabled status bit pending. */
void tpm_tis_update_irq(TPMTISState *s)
{
    int level = 0;

    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        if ((s->loc[l].inte & TPM_TIS_INT_ENABLED) && s->loc[l].ints) {
            level = 1;
        }
    }
    if (level != s->irq_level) {
        s->irq_level = level;
        trace_event("tpm_tis_irq", "level=%d", level);
        irq_set_level(s->irq, level);
    }
}

static void tpm_tis_raise_irq(TPMTISState *s, uint8_t locty, uint32_t mask)
{
    TPMTISLocality *l;

    if (!TPM_TIS_VALID_LOCTY(locty)) {
        return;
    }
    l = &s->loc[locty];
    if ((l->inte & TPM_TIS_INT_ENABLED) && (l->inte & mask)) {
        l->ints |= l->inte & mask & TPM_TIS_INTERRUPTS_SUPPORTED;
        tpm_tis_update_irq(s);
    }
}

static uint32_t tpm_tis_response_len(TPMTISState *s)
{
    uint64_t len = tpm_cmd_get_size(s->buffer);

    return len < s->be_buffer_size ? (uint32_t)len : s->be_buffer_size;
}

/* Hand the active locality to `new_locty` (or none): TIS 1.3 §5.5.2.4. */
static void tpm_tis_new_active_locality(TPMTISState *s, uint8_t new_locty)
{
    bool change = s->active_locty != new_locty;

    if (change && TPM_TIS_VALID_LOCTY(s->active_locty)) {
        bool is_seize = TPM_TIS_VALID_LOCTY(new_locty) &&
                        (s->loc[new_locty].access & TPM_TIS_ACCESS_SEIZE);
        TPMTISLocality *old = &s->loc[s->active_locty];

        if (is_seize) {
            old->access &= ~TPM_TIS_ACCESS_ACTIVE_LOCALITY;
            old->access |= TPM_TIS_ACCESS_BEEN_SEIZED;
        } else {
            old->access &= ~(TPM_TIS_ACCESS_ACTIVE_LOCALITY | TPM_TIS_ACCESS_REQUEST_USE);
        }
    }
    if (change) {
        trace_event("tpm_tis_locality_change", "from=%d to=%d",
                    s->active_locty == TPM_TIS_NO_LOCALITY ? -1 : s->active_locty,
                    new_locty == TPM_TIS_NO_LOCALITY ? -1 : new_locty);
        /* The FIFO position belongs to the locality that owned the bus. */
        s->rw_offset = 0;
    }
    s->active_locty = new_locty;
    if (TPM_TIS_VALID_LOCTY(new_locty)) {
        s->loc[new_locty].access |= TPM_TIS_ACCESS_ACTIVE_LOCALITY;
        s->loc[new_locty].access &= ~(TPM_TIS_ACCESS_REQUEST_USE | TPM_TIS_ACCESS_SEIZE);
    }
    if (change) {
        tpm_tis_raise_irq(s, new_locty, TPM_TIS_INT_LOCALITY_CHANGED);
    }
}

/* Carry out a prepared abort: back to READY and/or to the next locality. */
static void tpm_tis_abort(TPMTISState *s)
{
    trace_event("tpm_tis_abort", "aborting=%d next=%d", s->aborting_locty, s->next_locty);
    s->rw_offset = 0;
    if (s->aborting_locty == s->next_locty && TPM_TIS_VALID_LOCTY(s->aborting_locty)) {
        TPMTISLocality *l = &s->loc[s->aborting_locty];

        l->state = TPM_TIS_STATE_READY;
        tpm_tis_sts_set(l, TPM_TIS_STS_COMMAND_READY);
        tpm_tis_raise_irq(s, s->aborting_locty, TPM_TIS_INT_COMMAND_READY);
    }
    tpm_tis_new_active_locality(s, s->next_locty);
    s->next_locty = TPM_TIS_NO_LOCALITY;
    s->aborting_locty = TPM_TIS_NO_LOCALITY;
}

/*
 * Prepare an abort of `locty`'s transfer with `new_locty` active afterwards.
 * With a command executing it is deferred to the completion, and the backend
 * is asked (without blocking) to finish early.
 */
static void tpm_tis_prep_abort(TPMTISState *s, uint8_t locty, uint8_t new_locty)
{
    s->aborting_locty = locty;
    s->next_locty = new_locty;
    /* A locality switch waits for the command; so does aborting the command
     * itself. Aborting another locality's transfer cannot affect it. */
    if (s->cmd_in_flight && (locty != new_locty || locty == s->cmd.locty)) {
        tpm_backend_cancel_cmd(s->be);
        return;
    }
    tpm_tis_abort(s);
}

static void tpm_tis_request_completed(void *opaque, TPMBackendCmd *cmd)
{
    TPMTISState *s = opaque;
    uint8_t locty = cmd->locty;
    TPMTISLocality *l = &s->loc[locty];

    s->cmd_in_flight = false;
    if (cmd->selftest_done) {
        for (int i = 0; i < TPM_TIS_NUM_LOCALITIES; i++) {
            s->loc[i].sts |= TPM_TIS_STS_SELFTEST_DONE;
        }
    }
    memcpy(s->buffer, s->cmd_out, s->be_buffer_size);
    trace_event("tpm_tis_cmd_done", "locty=%u len=%u rc=0x%x", locty,
                tpm_cmd_get_size(s->buffer), tpm_cmd_get_errcode(s->buffer));
    s->rw_offset = 0;
    l->state = TPM_TIS_STATE_COMPLETION;
    tpm_tis_sts_set(l, TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE);
    if (TPM_TIS_VALID_LOCTY(s->next_locty)) {
        /* An abort or locality switch waited for this command: no dataAvail. */
        tpm_tis_abort(s);
        return;
    }
    tpm_tis_raise_irq(s, locty, TPM_TIS_INT_DATA_AVAILABLE | TPM_TIS_INT_STS_VALID);
}

static void tpm_tis_tpm_send(TPMTISState *s, uint8_t locty)
{
    GError *err = NULL;

    s->loc[locty].state = TPM_TIS_STATE_EXECUTION;
    memcpy(s->cmd_in, s->buffer, s->rw_offset);
    s->cmd = (TPMBackendCmd){
        .locty = locty,
        .in = s->cmd_in,
        .in_len = s->rw_offset,
        .out = s->cmd_out,
        .out_len = s->be_buffer_size,
    };
    trace_event("tpm_tis_cmd_start", "locty=%u len=%u ordinal=0x%x", locty, s->rw_offset,
                s->rw_offset >= 10 ? tpm_cmd_get_ordinal(s->cmd_in) : 0);
    s->cmd_in_flight = true;
    if (!tpm_backend_deliver_request(s->be, &s->cmd, tpm_tis_request_completed, s,
                                     &err)) {
        /* Cannot happen with cmd_in_flight tracked; answer rather than hang. */
        warn_report_err(err);
        tpm_util_write_fatal_error_response(s->cmd_out, s->be_buffer_size,
                                            s->be_tpm_version);
        tpm_tis_request_completed(s, &s->cmd);
    }
}

/* One response byte, or TPM_TIS_NO_DATA_BYTE past the end. */
static uint8_t tpm_tis_data_read(TPMTISState *s, TPMTISLocality *l, uint8_t locty)
{
    uint32_t len;
    uint8_t v;

    if (!(l->sts & TPM_TIS_STS_DATA_AVAILABLE)) {
        return TPM_TIS_NO_DATA_BYTE;
    }
    len = tpm_tis_response_len(s);
    if (s->rw_offset >= len) {
        tpm_tis_sts_set(l, TPM_TIS_STS_VALID);
        return TPM_TIS_NO_DATA_BYTE;
    }
    v = s->buffer[s->rw_offset++];
    if (s->rw_offset >= len) {
        /* Last byte read: dataAvail drops, stsValid interrupt (TIS §5.5.2.5). */
        tpm_tis_sts_set(l, TPM_TIS_STS_VALID);
        tpm_tis_raise_irq(s, locty, TPM_TIS_INT_STS_VALID);
    }
    return v;
}

static uint32_t tpm_tis_fifo_read(TPMTISState *s, uint8_t locty, unsigned n)
{
    TPMTISLocality *l = &s->loc[locty];
    uint32_t val = 0;

    for (unsigned i = 0; i < n; i++) {
        uint8_t b = TPM_TIS_NO_DATA_BYTE;
        if (l->state == TPM_TIS_STATE_COMPLETION && !s->cmd_in_flight) {
            b = tpm_tis_data_read(s, l, locty);
        }
        val |= (uint32_t)b << (8 * i);
    }
    return val;
}

static void tpm_tis_fifo_write(TPMTISState *s, uint8_t locty, uint32_t val, unsigned n)
{
    TPMTISLocality *l = &s->loc[locty];

    if (s->cmd_in_flight ||
        (l->state != TPM_TIS_STATE_READY && l->state != TPM_TIS_STATE_RECEPTION)) {
        return;
    }
    if (l->state == TPM_TIS_STATE_READY) {
        l->state = TPM_TIS_STATE_RECEPTION;
        tpm_tis_sts_set(l, TPM_TIS_STS_EXPECT | TPM_TIS_STS_VALID);
    }
    for (unsigned i = 0; i < n && (l->sts & TPM_TIS_STS_EXPECT); i++) {
        if (s->rw_offset >= s->be_buffer_size) {
            tpm_tis_sts_set(l, TPM_TIS_STS_VALID);
            break;
        }
        s->buffer[s->rw_offset++] = val >> (8 * i);
        if (s->rw_offset >= 6) {
            /* The header's size field tells how much is still expected;
             * bytes beyond it are dropped (TIS 1.3 §5.5.2.5 Expect). */
            uint32_t len = tpm_cmd_get_size(s->buffer);
            if (len > s->rw_offset && s->rw_offset < s->be_buffer_size) {
                tpm_tis_sts_set(l, TPM_TIS_STS_EXPECT | TPM_TIS_STS_VALID);
            } else {
                tpm_tis_sts_set(l, TPM_TIS_STS_VALID);
            }
        }
    }
}

static uint8_t tpm_tis_read_access(TPMTISState *s, uint8_t locty)
{
    uint8_t val = s->loc[locty].access & ~TPM_TIS_ACCESS_SEIZE;

    for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
        if (l != locty && (s->loc[l].access & TPM_TIS_ACCESS_REQUEST_USE)) {
            val |= TPM_TIS_ACCESS_PENDING_REQUEST;
            break;
        }
    }
    /* tpmEstablishment reads 1 while no dynamic OS has been launched. */
    if (!tpm_backend_get_tpm_established_flag(s->be)) {
        val |= TPM_TIS_ACCESS_TPM_ESTABLISHMENT;
    }
    return val;
}

static uint32_t tpm_tis_read_sts(TPMTISState *s, uint8_t locty, unsigned size)
{
    TPMTISLocality *l = &s->loc[locty];
    uint32_t avail;

    if (l->sts & TPM_TIS_STS_DATA_AVAILABLE) {
        uint32_t len = tpm_tis_response_len(s);
        avail = len > s->rw_offset ? len - s->rw_offset : 0;
    } else {
        avail = s->be_buffer_size - s->rw_offset;
        /* A one-byte read of the burst count must not show 0 for 256 free bytes:
         * drivers that read 0x19 and 0x1A separately would stall. */
        if (size == 1 && avail > 0xff) {
            avail = 0xff;
        }
    }
    return (avail << TPM_TIS_STS_BURST_COUNT_SHIFT) | l->sts;
}

static uint32_t tpm_tis_intf_capability(TPMTISState *s)
{
    switch (s->be_tpm_version) {
    case TPM_VERSION_1_2:
        return TPM_TIS_CAPABILITIES_SUPPORTED1_3;
    case TPM_VERSION_2_0:
        return TPM_TIS_CAPABILITIES_SUPPORTED2_0;
    default:
        return 0;
    }
}

static inline uint64_t size_mask(unsigned size)
{
    return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

uint64_t tpm_tis_mmio_read(void *opaque, uint64_t addr, unsigned size)
{
    TPMTISState *s = opaque;
    uint8_t locty = (addr >> TPM_TIS_LOCALITY_SHIFT) & 7;
    uint32_t reg = addr & 0xffc;
    unsigned shift = (addr & 3) * 8;
    uint64_t val = ~0ULL;

    if (size == 0 || size > 4) {
        return ~0ULL;
    }
    if (tpm_backend_had_startup_error(s->be)) {
        return 0;
    }
    if (!TPM_TIS_VALID_LOCTY(locty)) {
        return size_mask(size);
    }
    switch (reg) {
    case TPM_TIS_REG_ACCESS:
        val = tpm_tis_read_access(s, locty);
        break;
    case TPM_TIS_REG_INT_ENABLE:
        val = s->loc[locty].inte;
        break;
    case TPM_TIS_REG_INT_VECTOR:
        val = s->irq_num & 0xf;
        break;
    case TPM_TIS_REG_INT_STATUS:
        val = s->loc[locty].ints;
        break;
    case TPM_TIS_REG_INTF_CAPABILITY:
        val = tpm_tis_intf_capability(s);
        break;
    case TPM_TIS_REG_STS:
        val = s->active_locty == locty ? tpm_tis_read_sts(s, locty, size) : 0xffffffffu;
        break;
    case TPM_TIS_REG_DATA_FIFO:
    case TPM_TIS_REG_DATA_XFIFO ... TPM_TIS_REG_DATA_XFIFO_END:
        if (s->active_locty == locty) {
            /* Bytes move lowest lane first; an access is clipped at the dword. */
            unsigned n = MIN(size, 4 - (addr & 3));
            val = tpm_tis_fifo_read(s, locty, n) | (~0ULL << (8 * n));
            shift = 0;
        }
        break;
    case TPM_TIS_REG_INTERFACE_ID:
        val = s->loc[locty].iface_id;
        break;
    case TPM_TIS_REG_DID_VID:
        val = (TPM_TIS_TPM_DID << 16) | TPM_TIS_TPM_VID;
        break;
    case TPM_TIS_REG_RID:
        val = TPM_TIS_TPM_RID;
        break;
    default:
        break;
    }
    val = (val >> shift) & size_mask(size);
    trace_event("tpm_tis_mmio_read", "locty=%u addr=0x%03x size=%u val=0x%" PRIx64, locty,
                (unsigned)(addr & 0xfff), size, val);
    return val;
}

static void tpm_tis_write_access(TPMTISState *s, uint8_t locty, uint8_t val)
{
    uint8_t active_locty = s->active_locty;
    bool set_new_locty = true;

    if (val & TPM_TIS_ACCESS_SEIZE) {
        val &= ~(TPM_TIS_ACCESS_REQUEST_USE | TPM_TIS_ACCESS_ACTIVE_LOCALITY);
    }
    if (val & TPM_TIS_ACCESS_ACTIVE_LOCALITY) {
        if (s->active_locty == locty) {
            /* Relinquish: the highest-numbered requester gets the bus. */
            uint8_t new_locty = TPM_TIS_NO_LOCALITY;
            for (int c = TPM_TIS_NUM_LOCALITIES - 1; c >= 0; c--) {
                if (s->loc[c].access & TPM_TIS_ACCESS_REQUEST_USE) {
                    new_locty = c;
                    break;
                }
            }
            if (TPM_TIS_VALID_LOCTY(new_locty)) {
                set_new_locty = false;
                tpm_tis_prep_abort(s, locty, new_locty);
            } else {
                active_locty = TPM_TIS_NO_LOCALITY;
            }
        } else {
            /* Not the owner: withdraw a pending request. */
            s->loc[locty].access &= ~TPM_TIS_ACCESS_REQUEST_USE;
        }
    }
    if (val & TPM_TIS_ACCESS_BEEN_SEIZED) {
        s->loc[locty].access &= ~TPM_TIS_ACCESS_BEEN_SEIZED;
    }
    if (val & TPM_TIS_ACCESS_SEIZE) {
        /* Allowed when nobody is active or the writer outranks the owner, and
         * no higher locality has a seize pending (TIS 1.3 §5.5.2.4). */
        bool allowed = !TPM_TIS_VALID_LOCTY(s->active_locty) || locty > s->active_locty;

        if (allowed && !(s->loc[locty].access & TPM_TIS_ACCESS_SEIZE)) {
            bool higher_seize = false;
            for (int l = locty + 1; l < TPM_TIS_NUM_LOCALITIES; l++) {
                if (s->loc[l].access & TPM_TIS_ACCESS_SEIZE) {
                    higher_seize = true;
                }
            }
            if (!higher_seize) {
                for (int l = 0; l < locty; l++) {
                    s->loc[l].access &= ~TPM_TIS_ACCESS_SEIZE;
                }
                s->loc[locty].access |= TPM_TIS_ACCESS_SEIZE;
                set_new_locty = false;
                tpm_tis_prep_abort(s, s->active_locty, locty);
            }
        }
    }
    if (val & TPM_TIS_ACCESS_REQUEST_USE) {
        if (s->active_locty != locty) {
            if (TPM_TIS_VALID_LOCTY(s->active_locty)) {
                s->loc[locty].access |= TPM_TIS_ACCESS_REQUEST_USE;
            } else {
                /* Nobody active: the requester gets the bus at once. */
                active_locty = locty;
                set_new_locty = true;
            }
        }
    }
    if (set_new_locty && active_locty != s->active_locty) {
        tpm_tis_new_active_locality(s, active_locty);
    }
}

static void tpm_tis_write_sts(TPMTISState *s, uint8_t locty, uint32_t val)
{
    TPMTISLocality *l = &s->loc[locty];

    if (s->be_tpm_version == TPM_VERSION_2_0) {
        /* PTP: commandCancel and resetEstablishmentBit exist only for TPM 2. */
        if ((val & TPM_TIS_STS_COMMAND_CANCEL) && l->state == TPM_TIS_STATE_EXECUTION) {
            tpm_backend_cancel_cmd(s->be);
        }
        if ((val & TPM_TIS_STS_RESET_ESTABLISHMENT_BIT) && (locty == 3 || locty == 4)) {
            tpm_backend_reset_tpm_established_flag(s->be, locty);
        }
    }
    val &= TPM_TIS_STS_COMMAND_READY | TPM_TIS_STS_TPM_GO | TPM_TIS_STS_RESPONSE_RETRY;
    /* Exactly one of the three action bits acts; combinations are ignored. */
    switch (val) {
    case TPM_TIS_STS_COMMAND_READY:
        switch (l->state) {
        case TPM_TIS_STATE_READY:
            s->rw_offset = 0;
            break;
        case TPM_TIS_STATE_IDLE:
            tpm_tis_sts_set(l, TPM_TIS_STS_COMMAND_READY);
            l->state = TPM_TIS_STATE_READY;
            tpm_tis_raise_irq(s, locty, TPM_TIS_INT_COMMAND_READY);
            break;
        case TPM_TIS_STATE_RECEPTION:
        case TPM_TIS_STATE_EXECUTION:
            tpm_tis_prep_abort(s, locty, locty);
            break;
        case TPM_TIS_STATE_COMPLETION:
            s->rw_offset = 0;
            l->state = TPM_TIS_STATE_READY;
            if (!(l->sts & TPM_TIS_STS_COMMAND_READY)) {
                tpm_tis_sts_set(l, TPM_TIS_STS_COMMAND_READY);
                tpm_tis_raise_irq(s, locty, TPM_TIS_INT_COMMAND_READY);
            }
            l->sts &= ~TPM_TIS_STS_DATA_AVAILABLE;
            break;
        default:
            break;
        }
        break;
    case TPM_TIS_STS_TPM_GO:
        if (l->state == TPM_TIS_STATE_RECEPTION && !(l->sts & TPM_TIS_STS_EXPECT) &&
            !s->cmd_in_flight) {
            tpm_tis_tpm_send(s, locty);
        }
        break;
    case TPM_TIS_STS_RESPONSE_RETRY:
        if (l->state == TPM_TIS_STATE_COMPLETION && !s->cmd_in_flight) {
            s->rw_offset = 0;
            tpm_tis_sts_set(l, TPM_TIS_STS_VALID | TPM_TIS_STS_DATA_AVAILABLE);
        }
        break;
    default:
        break;
    }
}

void tpm_tis_mmio_write(void *opaque, uint64_t addr, uint64_t val, unsigned size)
{
    TPMTISState *s = opaque;
    uint8_t locty = (addr >> TPM_TIS_LOCALITY_SHIFT) & 7;
    uint32_t reg = addr & 0xffc;
    unsigned shift = (addr & 3) * 8;
    uint32_t mask, val32;

    trace_event("tpm_tis_mmio_write", "locty=%u addr=0x%03x size=%u val=0x%" PRIx64,
                locty, (unsigned)(addr & 0xfff), size, val);
    if (size == 0 || size > 4 || !TPM_TIS_VALID_LOCTY(locty)) {
        return;
    }
    /* Locality 4 belongs to the platform hardware; software cannot write it. */
    if (locty == 4 || tpm_backend_had_startup_error(s->be)) {
        return;
    }
    /* The byte lanes this access covers, as bits of the 32-bit register. */
    mask = (uint32_t)(size_mask(size) << shift);
    val32 = (uint32_t)((val & size_mask(size)) << shift);

    switch (reg) {
    case TPM_TIS_REG_ACCESS:
        if (mask & 0xff) {
            tpm_tis_write_access(s, locty, val32 & 0xff);
        }
        break;
    case TPM_TIS_REG_INT_ENABLE:
        if (s->active_locty == locty) {
            TPMTISLocality *l = &s->loc[locty];
            l->inte = (l->inte & ~mask) | (val32 & mask);
            l->inte &= TPM_TIS_INT_ENABLED | TPM_TIS_INT_POLARITY_MASK |
                       TPM_TIS_INTERRUPTS_SUPPORTED;
            tpm_tis_update_irq(s);
        }
        break;
    case TPM_TIS_REG_INT_STATUS:
        if (s->active_locty == locty) {
            /* Write 1 to clear (TIS 1.3 §5.5.2.6). */
            s->loc[locty].ints &= ~(val32 & TPM_TIS_INTERRUPTS_SUPPORTED);
            tpm_tis_update_irq(s);
        }
        break;
    case TPM_TIS_REG_STS:
        if (s->active_locty == locty) {
            tpm_tis_write_sts(s, locty, val32);
        }
        break;
    case TPM_TIS_REG_DATA_FIFO:
    case TPM_TIS_REG_DATA_XFIFO ... TPM_TIS_REG_DATA_XFIFO_END:
        if (s->active_locty == locty) {
            tpm_tis_fifo_write(s, locty, (uint32_t)val, MIN(size, 4 - (addr & 3)));
        }
        break;
    case TPM_TIS_REG_INTERFACE_ID:
        if (val32 & TPM_TIS_IFACE_ID_INT_SEL_LOCK) {
            /* Locks the interface selection in every locality until reset. */
            for (int l = 0; l < TPM_TIS_NUM_LOCALITIES; l++) {
                s->loc[l].iface_id |= TPM_TIS_IFACE_ID_INT_SEL_LOCK;
            }
        }
        break;
    default:
        /* INT_VECTOR is hard-wired; INTF_CAPABILITY, DID_VID, RID are read-only. */
        break;
    }
}

const MemoryRegionOps tpm_tis_mmio_ops = {
    .read = tpm_tis_mmio_read,
    .write = tpm_tis_mmio_write,
    .min_access_size = 1,
    .max_access_size = 4,
    .aligned = true,
};

void tpm_tis_init(TPMTISState *s, TPMBackend *be, IRQLine *irq, uint32_t irq_num)
{
    s->be = be;
    s->irq = irq;
    s->irq_num = irq_num;
    s->active_locty = TPM_TIS_NO_LOCALITY;
    s->aborting_locty = TPM_TIS_NO_LOCALITY;
    s->next_locty = TPM_TIS_NO_LOCALITY;
}

bool tpm_tis_reset(TPMTISState *s, GError **errp)
{
    size_t bufsize;

    /* Let an in-flight command finish before anything is reinitialised. */
    tpm_backend_reset(s->be);
    s->cmd_in_flight = false;
    s->be_tpm_version = tpm_backend_get_tpm_version(s->be);
    bufsize = tpm_backend_get_buffer_size(s->be);
    s->be_buffer_size =
        bufsize < TPM_TIS_BUFFER_MAX ? (uint32_t)bufsize : TPM_TIS_BUFFER_MAX;
    if (s->be_buffer_size < 10) {
        s->be_buffer_size = 10;
    }
    trace_event("tpm_tis_reset", "version=%s buffer=%u",
                tpm_version_name(s->be_tpm_version), s->be_buffer_size);

    s->active_locty = TPM_TIS_NO_LOCALITY;
    s->next_locty = TPM_TIS_NO_LOCALITY;
    s->aborting_locty = TPM_TIS_NO_LOCALITY;
    for (int c = 0; c < TPM_TIS_NUM_LOCALITIES; c++) {
        TPMTISLocality *l = &s->loc[c];

        l->access = TPM_TIS_ACCESS_TPM_REG_VALID_STS;
        switch (s->be_tpm_version) {
        case TPM_VERSION_1_2:
            l->sts = TPM_TIS_STS_TPM_FAMILY1_2;
            l->iface_id = TPM_TIS_IFACE_ID_SUPPORTED_FLAGS1_3;
            break;
        case TPM_VERSION_2_0:
            l->sts = TPM_TIS_STS_TPM_FAMILY2_0;
            l->iface_id = TPM_TIS_IFACE_ID_SUPPORTED_FLAGS2_0;
            break;
        default:
            l->sts = 0;
            l->iface_id = 0;
            break;
        }
        l->inte = TPM_TIS_INT_POLARITY_LOW_LEVEL;
        l->ints = 0;
        l->state = TPM_TIS_STATE_IDLE;
    }
    s->rw_offset = 0;
    memset(s->buffer, 0, sizeof(s->buffer));
    if (s->irq_level) {
        s->irq_level = 0;
        irq_set_level(s->irq, 0);
    }
    return tpm_backend_startup_tpm(s->be, s->be_buffer_size, errp);
}
