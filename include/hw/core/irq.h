/*
 * Interrupt lines. A device holds an IRQLine* and sets its level; the machine
 * decides what is on the other end (the in-kernel irqchip under KVM, nothing
 * or the qtest interceptor under qtest).
 */
#ifndef HW_CORE_IRQ_H
#define HW_CORE_IRQ_H

#include <stdbool.h>

typedef void (*IRQHandler)(void *opaque, int n, int level);

typedef struct IRQLine {
    IRQHandler handler;
    void *opaque;
    int n;
    int level;
} IRQLine;

/* Allocate `count` lines numbered 0..count-1 that call handler(opaque, n, level). */
IRQLine *irq_lines_new(IRQHandler handler, void *opaque, int count);
void irq_lines_free(IRQLine *lines);

/* Set the level (0/1); the handler runs on every call, even with an unchanged level. */
void irq_set_level(IRQLine *irq, int level);
static inline void irq_raise(IRQLine *irq)
{
    irq_set_level(irq, 1);
}
static inline void irq_lower(IRQLine *irq)
{
    irq_set_level(irq, 0);
}

#endif
