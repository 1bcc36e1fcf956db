/*
 * Small pc platform devices: reset ports and the debug-exit port.
 *
 * Reset: Linux (arch/x86/kernel/reboot.c) tries the keyboard controller
 * (command 0xFE written to port 0x64) and the PCI reset control register
 * (0xCF9, bit 2 "reset CPU") among other methods; a triple fault ends up here
 * too through the accelerator.
 */
#include "hw/i386/pc-devices.h"

#include <stdio.h>
#include <string.h>

#include "hw/char/serial.h"
#include "hw/core/device.h"
#include "hw/core/memory.h"
#include "system/chardev.h"
#include "system/runstate.h"
#include "util/error.h"
#include "util/trace.h"

#define I8042_CMD_PORT 0x64
#define I8042_CMD_PULSE_RESET 0xfe
#define RCR_PORT 0xcf9
#define RCR_SYS_RST 0x02
#define RCR_RST_CPU 0x04
#define RCR_FULL_RST 0x08

void pc_guest_reset_request(void)
{
    if (current_machine && current_machine->no_reboot) {
        system_shutdown_request(SHUTDOWN_CAUSE_GUEST_RESET, 0);
    } else {
        system_reset_request(true);
    }
}

bool pc_io_range_free(MachineState *ms, uint32_t base, uint32_t size, GError **errp)
{
    for (uint64_t port = base; port < (uint64_t)base + size; port++) {
        MemoryRegion *mr = address_space_lookup(ms->io, port);

        if (mr) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "I/O port 0x%x is already used by '%s'; choose another iobase",
                        (unsigned)port, mr->name);
            return false;
        }
    }
    return true;
}

typedef struct PCResetPorts {
    DeviceState parent;
    MemoryRegion kbd;
    MemoryRegion rcr;
    uint8_t rcr_val;
} PCResetPorts;

/* No keyboard controller: status reads as all-ones ("none present"). */
static uint64_t kbd_read(void *opaque, uint64_t addr, unsigned size)
{
    return 0xff;
}

static void kbd_write(void *opaque, uint64_t addr, uint64_t val, unsigned size)
{
    if (val == I8042_CMD_PULSE_RESET) {
        trace_event("pc_reset", "source=i8042");
        pc_guest_reset_request();
    }
}

static const MemoryRegionOps kbd_ops = {
    .read = kbd_read,
    .write = kbd_write,
    .min_access_size = 1,
    .max_access_size = 1,
};

static uint64_t rcr_read(void *opaque, uint64_t addr, unsigned size)
{
    PCResetPorts *s = opaque;

    return s->rcr_val;
}

static void rcr_write(void *opaque, uint64_t addr, uint64_t val, unsigned size)
{
    PCResetPorts *s = opaque;

    if (val & RCR_RST_CPU) {
        trace_event("pc_reset", "source=cf9 val=0x%x", (unsigned)val);
        s->rcr_val = 0;
        pc_guest_reset_request();
        return;
    }
    s->rcr_val = val & (RCR_SYS_RST | RCR_FULL_RST);
}

static const MemoryRegionOps rcr_ops = {
    .read = rcr_read,
    .write = rcr_write,
    .min_access_size = 1,
    .max_access_size = 1,
};

static bool reset_ports_realize(DeviceState *dev, GError **errp)
{
    PCResetPorts *s = (PCResetPorts *)dev;

    if (!current_machine || !current_machine->io) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "pc-reset-ports: the machine has no I/O port space");
        return false;
    }
    if (!pc_io_range_free(current_machine, I8042_CMD_PORT, 1, errp) ||
        !pc_io_range_free(current_machine, RCR_PORT, 1, errp)) {
        return false;
    }
    s->kbd = (MemoryRegion){.name = "i8042-cmd",
                            .base = I8042_CMD_PORT,
                            .size = 1,
                            .ops = &kbd_ops,
                            .opaque = s};
    s->rcr = (MemoryRegion){.name = "reset-control",
                            .base = RCR_PORT,
                            .size = 1,
                            .ops = &rcr_ops,
                            .opaque = s};
    address_space_add(current_machine->io, &s->kbd);
    address_space_add(current_machine->io, &s->rcr);
    return true;
}

static void reset_ports_reset(DeviceState *dev)
{
    ((PCResetPorts *)dev)->rcr_val = 0;
}

static const Property reset_ports_props[] = {{NULL}};

static const DeviceClass reset_ports_class = {
    .name = "pc-reset-ports",
    .desc = "keyboard-controller and 0xCF9 reset ports",
    .instance_size = sizeof(PCResetPorts),
    .props = reset_ports_props,
    .realize = reset_ports_realize,
    .reset = reset_ports_reset,
    .user_creatable = false,
    .singleton = true,
    .machines = (const char *const[]){"pc", NULL},
};
DEVICE_TYPE_REGISTER(reset_ports_class)

typedef struct DebugExit {
    DeviceState parent;
    uint32_t iobase;
    uint32_t iosize;
    MemoryRegion io;
} DebugExit;

/* Test guests report pass/fail here, QEMU's isa-debug-exit convention. */
static uint64_t debug_exit_read(void *opaque, uint64_t addr, unsigned size)
{
    return 0;
}

static void debug_exit_write(void *opaque, uint64_t addr, uint64_t val, unsigned size)
{
    int status = (int)(((val << 1) | 1) & 0xff);

    trace_event("debug_exit", "val=0x%" G_GINT64_MODIFIER "x status=%d", val, status);
    system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN, status);
}

static const MemoryRegionOps debug_exit_ops = {
    .read = debug_exit_read,
    .write = debug_exit_write,
    .min_access_size = 1,
    .max_access_size = 4,
};

static bool debug_exit_realize(DeviceState *dev, GError **errp)
{
    DebugExit *s = (DebugExit *)dev;

    if (!current_machine || !current_machine->io) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "the machine has no I/O port "
                    "space; use -machine pc");
        return false;
    }
    if (s->iosize == 0 || s->iosize > 4 || s->iobase > 0x10000 - s->iosize) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "iobase 0x%x / iosize %u are out "
                    "of range (iosize 1-4, ports up to 0xffff)",
                    s->iobase, s->iosize);
        return false;
    }
    if (!pc_io_range_free(current_machine, s->iobase, s->iosize, errp)) {
        return false;
    }
    s->io = (MemoryRegion){.name = dev->id ? dev->id : TYPE_ISA_DEBUG_EXIT,
                           .base = s->iobase,
                           .size = s->iosize,
                           .ops = &debug_exit_ops,
                           .opaque = s};
    address_space_add(current_machine->io, &s->io);
    return true;
}

static void debug_exit_unrealize(DeviceState *dev)
{
    DebugExit *s = (DebugExit *)dev;

    if (current_machine && current_machine->io) {
        address_space_del(current_machine->io, &s->io);
    }
}

static const Property debug_exit_props[] = {
    {"iobase", PROP_UINT32, offsetof(DebugExit, iobase), "0xf4", "I/O port"},
    {"iosize", PROP_UINT32, offsetof(DebugExit, iosize), "0x4", "bytes of ports"},
    {NULL},
};

static const DeviceClass debug_exit_class = {
    .name = TYPE_ISA_DEBUG_EXIT,
    .desc = "exit tpmvm with status (V << 1) | 1 when V is written",
    .instance_size = sizeof(DebugExit),
    .props = debug_exit_props,
    .realize = debug_exit_realize,
    .unrealize = debug_exit_unrealize,
    .user_creatable = true,
    .singleton = true,
    .machines = (const char *const[]){"pc", NULL},
};
DEVICE_TYPE_REGISTER(debug_exit_class)

/* The PC's COM1-COM4 (serial1-3 exist only when -serial asked for them). */
static const struct {
    uint32_t iobase, irq;
} pc_serial_ports[SERIAL_HD_MAX] = {{0x3f8, 4}, {0x2f8, 3}, {0x3e8, 4}, {0x2e8, 3}};

bool pc_devices_init(MachineState *ms, GError **errp)
{
    DeviceState *dev;

    for (int i = 0; i < SERIAL_HD_MAX && i < (int)G_N_ELEMENTS(pc_serial_ports); i++) {
        Chardev *chr = serial_hd(i);
        g_autofree char *id = g_strdup_printf("serial%d", i);

        if (i > 0 && !chr) {
            continue;
        }
        if (!serial_isa_create(id, chr ? chardev_id(chr) : NULL,
                               pc_serial_ports[i].iobase, pc_serial_ports[i].irq, errp)) {
            return false;
        }
    }
    dev = device_new("pc-reset-ports", NULL);
    return dev && device_realize(dev, errp);
}
