/*
 * Interrupts in the test guest: an IDT for vectors 0-47 (exceptions end the
 * test with a message), the legacy 8259 PICs remapped to vectors 32-47 (tpmvm
 * leaves the local APIC in virtual-wire mode, so the PIC output reaches the
 * CPU), and waiting for one IRQ line.
 */
#ifndef GUEST_IRQ_H
#define GUEST_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#define IRQ_VECTOR_BASE 32

void irq_init(void);
/* Unmask an ISA IRQ (0-15) at the PIC. */
void irq_enable_line(unsigned irq);
void irq_disable_line(unsigned irq);
/* Interrupts seen on a line since start. */
uint64_t irq_count(unsigned irq);
/* Sleep (sti; hlt) until the line's count passes `seen` or timeout; true if it did. */
bool irq_wait(unsigned irq, uint64_t seen, uint64_t timeout_us);

#endif
