/*
 * Interrupt lines. See include/hw/core/irq.h.
 */
#include "hw/core/irq.h"

#include <glib.h>

IRQLine *irq_lines_new(IRQHandler handler, void *opaque, int count)
{
    IRQLine *lines = g_new0(IRQLine, count);

    for (int i = 0; i < count; i++) {
        lines[i].handler = handler;
        lines[i].opaque = opaque;
        lines[i].n = i;
    }
    return lines;
}

void irq_lines_free(IRQLine *lines)
{
    g_free(lines);
}

void irq_set_level(IRQLine *irq, int level)
{
    if (!irq) {
        return;
    }
    irq->level = level != 0;
    if (irq->handler) {
        irq->handler(irq->opaque, irq->n, irq->level);
    }
}
