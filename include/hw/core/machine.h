/*
 * Machines (-machine pc|none) and the state every device can reach.
 */
#ifndef HW_CORE_MACHINE_H
#define HW_CORE_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/core/irq.h"
#include "hw/core/memory.h"

#define MACHINE_NUM_GSI 24

typedef struct MachineState MachineState;

typedef struct MachineClass {
    const char *name;
    const char *desc;
    bool is_default;
    uint64_t default_ram_size;
    /* Create RAM, buses and built-in devices. */
    bool (*init)(MachineState *ms, GError **errp);
    /* Load the kernel / set initial CPU state after devices are realized. */
    bool (*load_kernel)(MachineState *ms, GError **errp);
} MachineClass;

struct MachineState {
    const MachineClass *klass;
    AddressSpace *sysmem; /* physical memory + MMIO */
    AddressSpace *io;     /* x86 I/O ports */
    uint8_t *ram;
    uint64_t ram_size;
    MemoryRegion ram_region;
    /* Interrupt inputs of the interrupt controller ("ioapic" for qtest). */
    IRQLine *gsi;
    int num_gsi;
    const char *accel; /* "qtest" or "kvm" */
    unsigned smp;
    char *kernel, *initrd, *append;
    bool no_reboot;
    /* RAM above 4 GiB (pc): ram_region covers [0, ram_below_4g) */
    uint64_t ram_below_4g;
    MemoryRegion ram_high_region;
};

extern MachineState *current_machine;

void machine_class_register(const MachineClass *mc);
#define MACHINE_TYPE_REGISTER(mc)                                                        \
    static void __attribute__((constructor)) register_##mc(void)                         \
    {                                                                                    \
        machine_class_register(&mc);                                                     \
    }
const MachineClass *machine_class_find(const char *name);
void machine_list_help(void);
/* Call fn for each machine class (for query-machines). */
void machine_class_foreach(void (*fn)(const MachineClass *mc, void *opaque),
                           void *opaque);

/*
 * Create the machine: allocate MachineState with empty "memory" and "io"
 * address spaces, set current_machine and run the class init. ram_size 0
 * means the class default. `accel` is kept (not copied) in ms->accel.
 */
MachineState *machine_create(const MachineClass *mc, uint64_t ram_size, const char *accel,
                             unsigned smp, GError **errp);
/* Free the machine (RAM, address spaces); current_machine becomes NULL. */
void machine_destroy(MachineState *ms);

/*
 * Guest RAM: anonymous memory reserved lazily (MAP_NORESERVE), so untouched
 * pages cost nothing. Fails with a message naming the size.
 */
uint8_t *machine_ram_alloc(uint64_t size, GError **errp);
void machine_ram_free(uint8_t *ram, uint64_t size);

/*
 * Point every GSI line at fn(opaque, gsi, level) (qtest's IRQ interceptor,
 * the KVM irqchip). Levels already set are kept.
 */
void machine_route_gsi(MachineState *ms, IRQHandler fn, void *opaque);

#endif
