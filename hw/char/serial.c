/*
 * 16550A UART (National Semiconductor PC16550D datasheet): the registers a
 * PC operating system probes and drives - receive/transmit holding registers,
 * IER/IIR/FCR, line and modem control/status, scratch, divisor latch - with
 * the transmitter always ready (bytes go straight to the chardev) and a
 * receive buffer larger than the chip's 16-byte FIFO so that pasted input is
 * not lost (there is no flow control towards the chardev).
 *
 * Interrupts: received data available and THR empty, reported through IIR by
 * priority; the IRQ line follows "IIR shows an interrupt" (level).
 */
#include "hw/char/serial.h"

#include <stdio.h>
#include <string.h>

#include "hw/core/machine.h"
#include "hw/core/memory.h"
#include "hw/i386/pc-devices.h"
#include "system/chardev.h"
#include "util/error.h"
#include "util/trace.h"

/* Register offsets (PC16550D, Table II). */
#define UART_RBR_THR 0
#define UART_IER 1
#define UART_IIR_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI 0x01  /* received data available */
#define UART_IER_THRI 0x02 /* THR empty */
#define UART_IER_MASK 0x0f

#define UART_IIR_NO_INT 0x01
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_FIFO_ENABLED 0xc0

#define UART_FCR_ENABLE 0x01
#define UART_FCR_CLEAR_RX 0x02

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f

#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

#define SERIAL_RX_SIZE 4096

typedef struct SerialState {
    DeviceState parent;
    /* properties */
    uint32_t iobase;
    uint32_t irq;
    char *chardev;
    /* wiring */
    Chardev *chr;
    MemoryRegion io;
    IRQLine *irq_line;
    /* registers */
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    uint8_t thr_ipending; /* THR-empty interrupt latched, cleared by reading IIR */
    uint8_t overrun;
    uint8_t irq_level;
    /* receive ring */
    uint32_t rx_head, rx_count;
    uint8_t rx[SERIAL_RX_SIZE];
} SerialState;

static uint8_t serial_iir(SerialState *s)
{
    uint8_t iir = UART_IIR_NO_INT;

    if ((s->ier & UART_IER_RDI) && s->rx_count) {
        iir = UART_IIR_RDI;
    } else if ((s->ier & UART_IER_THRI) && s->thr_ipending) {
        iir = UART_IIR_THRI;
    }
    if (s->fcr & UART_FCR_ENABLE) {
        iir |= UART_IIR_FIFO_ENABLED;
    }
    return iir;
}

static void serial_update_irq(SerialState *s)
{
    int level = !(serial_iir(s) & UART_IIR_NO_INT);

    if (level != s->irq_level) {
        s->irq_level = level;
        irq_set_level(s->irq_line, level);
    }
}

static void serial_rx_push(SerialState *s, uint8_t byte)
{
    if (s->rx_count == SERIAL_RX_SIZE) {
        s->overrun = 1;
        return;
    }
    s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_SIZE] = byte;
    s->rx_count++;
}

static uint8_t serial_rx_pop(SerialState *s)
{
    uint8_t b;

    if (!s->rx_count) {
        return 0;
    }
    b = s->rx[s->rx_head];
    s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
    s->rx_count--;
    return b;
}

static uint64_t serial_read(void *opaque, uint64_t addr, unsigned size)
{
    SerialState *s = opaque;
    uint8_t val = 0;

    switch (addr) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB) {
            val = s->dll;
        } else {
            val = serial_rx_pop(s);
        }
        break;
    case UART_IER:
        val = (s->lcr & UART_LCR_DLAB) ? s->dlm : s->ier;
        break;
    case UART_IIR_FCR:
        val = serial_iir(s);
        /* Reading IIR while it reports THR empty acknowledges it (PC16550D). */
        if ((val & 0x0f) == UART_IIR_THRI) {
            s->thr_ipending = 0;
        }
        break;
    case UART_LCR:
        val = s->lcr;
        break;
    case UART_MCR:
        val = s->mcr;
        break;
    case UART_LSR:
        val = UART_LSR_THRE | UART_LSR_TEMT;
        if (s->rx_count) {
            val |= UART_LSR_DR;
        }
        if (s->overrun) {
            val |= UART_LSR_OE;
            s->overrun = 0;
        }
        break;
    case UART_MSR:
        if (s->mcr & UART_MCR_LOOP) {
            /* Loopback wires the modem outputs to the inputs (Linux's probe
             * checks this: MCR 0x0a must read back as MSR 0x90). */
            val = ((s->mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
                  ((s->mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
                  ((s->mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) |
                  ((s->mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0);
        } else {
            val = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
        }
        break;
    case UART_SCR:
        val = s->scr;
        break;
    }
    serial_update_irq(s);
    trace_event("serial_read", "addr=%" G_GUINT64_FORMAT " val=0x%02x", addr, val);
    return val;
}

static void serial_write(void *opaque, uint64_t addr, uint64_t val64, unsigned size)
{
    SerialState *s = opaque;
    uint8_t val = val64;

    trace_event("serial_write", "addr=%" G_GUINT64_FORMAT " val=0x%02x", addr, val);
    switch (addr) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB) {
            s->dll = val;
            break;
        }
        if (s->mcr & UART_MCR_LOOP) {
            serial_rx_push(s, val);
        } else if (s->chr) {
            chardev_write(s->chr, &val, 1);
        }
        /* The byte left at once: THR is empty again. */
        s->thr_ipending = 1;
        break;
    case UART_IER:
        if (s->lcr & UART_LCR_DLAB) {
            s->dlm = val;
            break;
        }
        /* Enabling the THR-empty interrupt while THR is empty raises it. */
        if ((val & UART_IER_THRI) && !(s->ier & UART_IER_THRI)) {
            s->thr_ipending = 1;
        }
        s->ier = val & UART_IER_MASK;
        break;
    case UART_IIR_FCR:
        s->fcr = val & 0xc9;
        if (val & UART_FCR_CLEAR_RX) {
            s->rx_head = s->rx_count = 0;
        }
        break;
    case UART_LCR:
        s->lcr = val;
        break;
    case UART_MCR:
        s->mcr = val & UART_MCR_MASK;
        break;
    case UART_SCR:
        s->scr = val;
        break;
    default:
        break; /* LSR and MSR are read-only */
    }
    serial_update_irq(s);
}

static const MemoryRegionOps serial_ops = {
    .read = serial_read,
    .write = serial_write,
    .min_access_size = 1,
    .max_access_size = 1,
};

/* Chardev input: main loop, big lock held. Loopback mode ignores the line. */
static void serial_chr_read(void *opaque, const uint8_t *buf, size_t len)
{
    SerialState *s = opaque;

    if (s->mcr & UART_MCR_LOOP) {
        return;
    }
    for (size_t i = 0; i < len; i++) {
        serial_rx_push(s, buf[i]);
    }
    serial_update_irq(s);
}

static void serial_reset(DeviceState *dev)
{
    SerialState *s = (SerialState *)dev;

    s->ier = 0;
    s->lcr = 0;
    s->mcr = UART_MCR_OUT2;
    s->scr = 0;
    s->dll = 12; /* 9600 baud */
    s->dlm = 0;
    s->fcr = 0;
    s->thr_ipending = 0;
    s->overrun = 0;
    s->rx_head = s->rx_count = 0;
    s->irq_level = 0;
    irq_set_level(s->irq_line, 0);
}

static bool serial_realize(DeviceState *dev, GError **errp)
{
    SerialState *s = (SerialState *)dev;
    MachineState *ms = current_machine;

    if (!ms || !ms->io) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "the machine has no I/O port space; "
                    "use -machine pc");
        return false;
    }
    if (s->iobase > 0xfff8) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "iobase 0x%x is out of range "
                    "(at most 0xfff8)",
                    s->iobase);
        return false;
    }
    if (s->irq >= (uint32_t)ms->num_gsi) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "irq %u is out of range (0-%d)", s->irq, ms->num_gsi - 1);
        return false;
    }
    if (!pc_io_range_free(ms, s->iobase, 8, errp)) {
        return false;
    }
    if (s->chardev) {
        s->chr = chardev_find(s->chardev);
        if (!s->chr) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_DEVICE_NOT_FOUND,
                        "chardev '%s' not found; define it "
                        "with -chardev or -serial",
                        s->chardev);
            return false;
        }
        if (!chardev_set_handlers(s->chr, serial_chr_read, NULL, s, errp)) {
            return false;
        }
    }
    s->irq_line = &ms->gsi[s->irq];
    s->io = (MemoryRegion){
        .name = dev->id ? dev->id : TYPE_ISA_SERIAL,
        .base = s->iobase,
        .size = 8,
        .ops = &serial_ops,
        .opaque = s,
    };
    address_space_add(ms->io, &s->io);
    serial_reset(dev);
    return true;
}

static void serial_unrealize(DeviceState *dev)
{
    SerialState *s = (SerialState *)dev;

    if (current_machine && current_machine->io) {
        address_space_del(current_machine->io, &s->io);
    }
    if (s->chr) {
        chardev_set_handlers(s->chr, NULL, NULL, NULL, NULL);
    }
}

static const VMStateField serial_vmstate_fields[] = {
    {"ier", VMS_U8, offsetof(SerialState, ier)},
    {"lcr", VMS_U8, offsetof(SerialState, lcr)},
    {"mcr", VMS_U8, offsetof(SerialState, mcr)},
    {"scr", VMS_U8, offsetof(SerialState, scr)},
    {"dll", VMS_U8, offsetof(SerialState, dll)},
    {"dlm", VMS_U8, offsetof(SerialState, dlm)},
    {"fcr", VMS_U8, offsetof(SerialState, fcr)},
    {"thr_ipending", VMS_U8, offsetof(SerialState, thr_ipending)},
    {"overrun", VMS_U8, offsetof(SerialState, overrun)},
    {"rx_head", VMS_U32, offsetof(SerialState, rx_head)},
    {"rx_count", VMS_U32, offsetof(SerialState, rx_count)},
    {"rx", VMS_BUFFER, offsetof(SerialState, rx), SERIAL_RX_SIZE},
    {NULL, VMS_END},
};

static bool serial_post_load(void *opaque, int version_id, GError **errp)
{
    SerialState *s = opaque;

    /* A stream is hostile input: keep the ring indices inside the buffer. */
    if (s->rx_head >= SERIAL_RX_SIZE || s->rx_count > SERIAL_RX_SIZE) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "vmstate section 'serial': receive ring position %u/%u is out of "
                    "range",
                    s->rx_head, s->rx_count);
        s->rx_head = s->rx_count = 0;
        return false;
    }
    s->irq_level = !(serial_iir(s) & UART_IIR_NO_INT);
    irq_set_level(s->irq_line, s->irq_level);
    return true;
}

static const VMStateDescription serial_vmstate = {
    .name = "serial",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = serial_vmstate_fields,
    .post_load = serial_post_load,
};

static const Property serial_props[] = {
    {"iobase", PROP_UINT32, offsetof(SerialState, iobase), "0x3f8", "I/O port base"},
    {"irq", PROP_UINT32, offsetof(SerialState, irq), "4", "interrupt line (GSI)"},
    {"chardev", PROP_STRING, offsetof(SerialState, chardev), NULL,
     "id of the character device"},
    {NULL},
};

static const DeviceClass serial_class = {
    .name = TYPE_ISA_SERIAL,
    .desc = "16550A UART",
    .instance_size = sizeof(SerialState),
    .props = serial_props,
    .realize = serial_realize,
    .reset = serial_reset,
    .unrealize = serial_unrealize,
    .vmsd = &serial_vmstate,
    .user_creatable = true,
    .machines = (const char *const[]){"pc", NULL},
};
DEVICE_TYPE_REGISTER(serial_class)

DeviceState *serial_isa_create(const char *id, const char *chardev_id, uint32_t iobase,
                               uint32_t irq, GError **errp)
{
    DeviceState *dev = device_new(TYPE_ISA_SERIAL, id);
    g_autofree char *base = g_strdup_printf("0x%x", iobase);
    g_autofree char *line = g_strdup_printf("%u", irq);

    if (!dev) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "could not create device '" TYPE_ISA_SERIAL "'");
        return NULL;
    }
    if (!device_set_prop(dev, "iobase", base, errp) ||
        !device_set_prop(dev, "irq", line, errp) ||
        (chardev_id && !device_set_prop(dev, "chardev", chardev_id, errp)) ||
        !device_realize(dev, errp)) {
        return NULL;
    }
    return dev;
}
