/*
 * TPM TIS register logic, independent of the bus it sits on (TCG PC Client
 * TIS 1.3 / PTP FIFO interface). The ISA glue (tpm_tis_isa.c) maps it at
 * 0xFED40000; unit tests and fuzzers call tpm_tis_mmio_read/write directly.
 *
 * Five localities share one command/response buffer and one rw_offset; each
 * has its own ACCESS, STS, INT_ENABLE, INT_STATUS, INTERFACE_ID and state.
 * All functions run with the big lock held (main thread or a vCPU/qtest
 * thread that took it).
 */
#ifndef HW_TPM_TPM_TIS_H
#define HW_TPM_TPM_TIS_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/core/irq.h"
#include "hw/core/memory.h"
#include "hw/core/vmstate.h"
#include "hw/tpm/tpm_backend.h"
#include "hw/tpm/tpm_tis_regs.h"

typedef enum {
    TPM_TIS_STATE_IDLE = 0,
    TPM_TIS_STATE_READY,
    TPM_TIS_STATE_RECEPTION,
    TPM_TIS_STATE_EXECUTION,
    TPM_TIS_STATE_COMPLETION,
    TPM_TIS_STATE__MAX
} TPMTISLocState;

typedef struct TPMTISLocality {
    TPMTISLocState state;
    uint8_t access; /* stored bits; pendingRequest and tpmEstablishment are computed */
    uint32_t sts;   /* stored bits; burstCount is computed */
    uint32_t iface_id;
    uint32_t inte;
    uint32_t ints;
} TPMTISLocality;

typedef struct TPMTISState {
    TPMBackend *be;
    IRQLine *irq;
    uint32_t irq_num;
    int irq_level; /* last level driven on irq */

    TPMVersion be_tpm_version; /* taken from the backend at reset */
    uint32_t be_buffer_size;   /* min(backend buffer size, TPM_TIS_BUFFER_MAX) */

    uint8_t active_locty;   /* TPM_TIS_NO_LOCALITY or 0..4 */
    uint8_t aborting_locty; /* a prepared abort/switch waiting for a command */
    uint8_t next_locty;
    bool cmd_in_flight; /* a command is with the backend */
    uint32_t rw_offset; /* FIFO position in buffer, <= be_buffer_size */
    TPMTISLocality loc[TPM_TIS_NUM_LOCALITIES];

    uint8_t buffer[TPM_TIS_BUFFER_MAX]; /* what the guest writes and reads */
    /* The backend worker only sees these copies, never `buffer`. */
    TPMBackendCmd cmd;
    uint8_t cmd_in[TPM_TIS_BUFFER_MAX];
    uint8_t cmd_out[TPM_TIS_BUFFER_MAX];
} TPMTISState;

/* Bind a backend and an interrupt line; call tpm_tis_reset() before use. */
void tpm_tis_init(TPMTISState *s, TPMBackend *be, IRQLine *irq, uint32_t irq_num);
/*
 * Device reset (TIS 1.3 §5.5 reset values): finish any command, reset the
 * backend, reinitialise the localities and start the backend with the
 * negotiated buffer size. Fails if the backend cannot start; the device then
 * reads 0 and ignores writes until a reset succeeds.
 */
bool tpm_tis_reset(TPMTISState *s, GError **errp);

/* Register access; addr is relative to the window base (0..0x4FFF), size 1..4. */
uint64_t tpm_tis_mmio_read(void *opaque, uint64_t addr, unsigned size);
void tpm_tis_mmio_write(void *opaque, uint64_t addr, uint64_t val, unsigned size);

/* Drive the interrupt line from the INT_STATUS/INT_ENABLE bits (after a load). */
void tpm_tis_update_irq(TPMTISState *s);

/* Region ops for the 0x5000 window: 1..4 byte, naturally aligned accesses. */
extern const MemoryRegionOps tpm_tis_mmio_ops;
/* Device state section "tpm-tis" (opaque = TPMTISState); layout in docs/tpm.md. */
extern const VMStateDescription tpm_tis_vmstate;

#endif
