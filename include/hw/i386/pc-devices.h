/*
 * Built-in devices of the pc machine that belong to the boot/platform part:
 * the first UART (serial0, 0x3f8, IRQ 4) and the reset ports (keyboard
 * controller 0x64 command 0xFE, reset control register 0xCF9). The
 * "isa-debug-exit" device (-device isa-debug-exit,iobase=0xf4,iosize=4)
 * lives here too: writing V to it ends tpmvm with exit status (V << 1) | 1.
 */
#ifndef HW_I386_PC_DEVICES_H
#define HW_I386_PC_DEVICES_H

#include <stdbool.h>
#include <glib.h>

#include "hw/core/machine.h"

#define TYPE_ISA_DEBUG_EXIT "isa-debug-exit"

/* Create serial0 (on the first -serial chardev, serial_hd(0), if any) and
 * the reset ports. Called from the pc machine's init. */
bool pc_devices_init(MachineState *ms, GError **errp);

/* The guest asked for a reset (reset port, triple fault): a system reset, or
 * a shutdown with -no-reboot. Any thread. */
void pc_guest_reset_request(void);

#endif
