/*
 * 16550A UART on the ISA I/O space ("isa-serial"): the pc machine puts
 * serial0 at 0x3f8, IRQ 4, fed by -serial (chardev id "serial0").
 *   -device isa-serial,chardev=ID[,iobase=0x2f8][,irq=3]
 */
#ifndef HW_CHAR_SERIAL_H
#define HW_CHAR_SERIAL_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/core/device.h"

#define TYPE_ISA_SERIAL "isa-serial"
#define SERIAL_COM1_IOBASE 0x3f8
#define SERIAL_COM1_IRQ 4

/*
 * Create and realize a UART at iobase/irq fed by chardev `chardev_id` (NULL:
 * output is dropped, no input). `id` names the device ("serial0").
 */
DeviceState *serial_isa_create(const char *id, const char *chardev_id, uint32_t iobase,
                               uint32_t irq, GError **errp);

#endif
