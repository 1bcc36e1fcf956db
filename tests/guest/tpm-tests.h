/*
 * What the test guest (and the qtest demo client) does with the TPM: the
 * driver checks, the measured-boot demo, NV persistence across runs, the
 * reset scenario and the hostile register storm. Results are printed as TAP
 * lines ("ok N - ...", "not ok N - ...: why"); each function returns the
 * number of failed checks.
 */
#ifndef GUEST_TPM_TESTS_H
#define GUEST_TPM_TESTS_H

#include "tpm2.h"

/* NV indices in the owner range (TPM 2.0 Part 2, 13.2 TPM_HT_NV_INDEX). */
#define TT_NV_CHECK_INDEX 0x01500010
#define TT_NV_TOKEN_INDEX 0x01500030
#define TT_NV_COUNTER_INDEX 0x01500020
#define TT_NV_TOKEN_SIZE 64
#define TT_PCR_CHECK 16
#define TT_PCR_IMAGE 8
#define TT_PCR_CMDLINE 9

typedef struct TestCtx {
    TisDev tis;
    Tpm tpm;
    unsigned checks;
    unsigned failures;
    uint32_t rng;
    bool quiet; /* print failed checks only (the demo's output is for people) */
} TestCtx;

/* Probe the TPM; false (reported) when there is none. */
bool tt_init(TestCtx *t, uint32_t seed);
/* Record one check result. */
bool tt_check(TestCtx *t, bool ok, const char *what, const char *why);
uint32_t tt_random(TestCtx *t);
void tt_hex(const uint8_t *p, size_t n, char *out, size_t out_len);

/* Driver checks with one transfer mode (byte-wise DATA_FIFO or XDATA bursts). */
unsigned tt_run_check(TestCtx *t, TisXfer xfer, bool first_round, bool strict_startup);
/* Interrupt-driven completion: enable the TPM IRQ, run commands, count wake-ups. */
unsigned tt_run_irq_check(TestCtx *t);
/* Measured-boot demo: identity, random bytes, two measurements, boot counter. */
unsigned tt_run_demo(TestCtx *t, const void *image, size_t image_len,
                     const char *cmdline);
/* Store `token` in NV (TT_NV_TOKEN_INDEX) / check it is there (next run). */
unsigned tt_run_nv_write(TestCtx *t, const char *token);
unsigned tt_run_nv_read(TestCtx *t, const char *token);
/* Boot-time half of the reset scenario: PCR fresh, counter incremented. */
unsigned tt_run_reset_boot(TestCtx *t, uint64_t *counter);
/* Random writes to every register of every locality, then a valid command. */
unsigned tt_run_hostile(TestCtx *t, unsigned rounds);

/* Startup(CLEAR); accepts TPM_RC_INITIALIZE unless strict. */
bool tt_startup(TestCtx *t, bool strict);
/* Read (or create and increment) the boot counter. */
bool tt_boot_counter(TestCtx *t, uint64_t *value);

#endif
