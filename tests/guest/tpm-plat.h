/*
 * What the TPM driver code (tis.c, tpm2.c, tpm-tests.c) needs from where it
 * runs. Two implementations: the freestanding guest (MMIO, TSC, serial; see
 * guest-main.c) and the host-side qtest client (tpm-qtest-client.c), which
 * performs the same register accesses through tpmvm's qtest protocol.
 */
#ifndef GUEST_TPM_PLAT_H
#define GUEST_TPM_PLAT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if __STDC_HOSTED__
#include <string.h>
#else
#include "guest.h"
#endif

/* One access of `size` bytes (1, 2 or 4) to guest-physical `addr`. */
uint32_t plat_mmio_read(uint64_t addr, unsigned size);
void plat_mmio_write(uint64_t addr, unsigned size, uint32_t val);

/* Monotonic microseconds. */
uint64_t plat_now_us(void);
/* Called between polls of a status register. */
void plat_relax(void);

/* Interrupt line `irq`: is there a way to wait for it here? */
bool plat_irq_available(void);
/* Interrupts seen on the line so far. */
uint64_t plat_irq_count(unsigned irq);
/* Unmask the line at the interrupt controller. */
void plat_irq_enable(unsigned irq);
/* Sleep until the count exceeds `seen` or timeout_us passed. */
bool plat_irq_wait(unsigned irq, uint64_t seen, uint64_t timeout_us);

void plat_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int plat_snprintf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
