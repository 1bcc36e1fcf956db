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

/* Create serial0 (on the first -serial chardev, serial_hd(0), if any),
 * serial1-3 for further -serial options (0x2f8/3, 0x3e8/4, 0x2e8/3) and the
 * reset ports. Called from the pc machine's init. */
bool pc_devices_init(MachineState *ms, GError **errp);

/*
 * Is [base, base+size) of the I/O space free? If not, set an error naming
 * the port and the region already there (user-placed devices must not abort
 * on a clash).
 */
bool pc_io_range_free(MachineState *ms, uint32_t base, uint32_t size, GError **errp);

/* The guest asked for a reset (reset port, triple fault): a system reset, or
 * a shutdown with -no-reboot. Any thread. */
void pc_guest_reset_request(void);

#endif
