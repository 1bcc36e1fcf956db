/*
 * The `pc` machine (RAM at 0, "memory" and "io" address spaces, 24 GSI lines
 * of the interrupt controller) and the empty `none` machine.
 *
 * RAM above 3 GiB is split: the first 3 GiB at 0, the rest at 4 GiB, leaving
 * 0xC0000000-0xFFFFFFFF for MMIO (TPM TIS at 0xFED40000, IOAPIC, LAPIC).
 */
#include "hw/core/machine.h"
#include "hw/i386/pc-devices.h"
#include "hw/i386/x86-boot.h"
#include "util/error.h"

#define PC_RAM_BELOW_4G_MAX 0xC0000000ULL
#define PC_HIGH_RAM_BASE 0x100000000ULL
#define PC_RAM_MAX (1ULL << 40)
#define PC_RAM_MIN (1ULL << 20)

/* Map ms->ram_size bytes of RAM at 0 (and above 4 GiB if needed). */
static bool machine_map_ram(MachineState *ms, GError **errp)
{
    if (ms->ram_size < PC_RAM_MIN || ms->ram_size > PC_RAM_MAX) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "RAM size %" G_GUINT64_FORMAT " MiB is out of range for machine '%s' "
                    "(1 MiB to 1 TiB)",
                    ms->ram_size >> 20, ms->klass->name);
        return false;
    }
    if (ms->ram_size & 0xfff) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "RAM size %" G_GUINT64_FORMAT " is not a multiple of 4 KiB",
                    ms->ram_size);
        return false;
    }
    ms->ram = machine_ram_alloc(ms->ram_size, errp);
    if (!ms->ram) {
        return false;
    }
    ms->ram_below_4g = MIN(ms->ram_size, PC_RAM_BELOW_4G_MAX);
    ms->ram_region = (MemoryRegion){
        .name = "ram-below-4g",
        .base = 0,
        .size = ms->ram_below_4g,
        .ram = ms->ram,
    };
    address_space_add(ms->sysmem, &ms->ram_region);
    if (ms->ram_size > ms->ram_below_4g) {
        ms->ram_high_region = (MemoryRegion){
            .name = "ram-above-4g",
            .base = PC_HIGH_RAM_BASE,
            .size = ms->ram_size - ms->ram_below_4g,
            .ram = ms->ram + ms->ram_below_4g,
        };
        address_space_add(ms->sysmem, &ms->ram_high_region);
    }
    return true;
}

static bool pc_init(MachineState *ms, GError **errp)
{
    if (!machine_map_ram(ms, errp)) {
        return false;
    }
    /* Nothing is attached until an accelerator or qtest routes the lines. */
    ms->num_gsi = MACHINE_NUM_GSI;
    ms->gsi = irq_lines_new(NULL, NULL, ms->num_gsi);
    /* serial0 (-serial), reset ports */
    return pc_devices_init(ms, errp);
}

static bool none_init(MachineState *ms, GError **errp)
{
    /* no RAM unless -m asked for some */
    return ms->ram_size == 0 || machine_map_ram(ms, errp);
}

static const MachineClass pc_machine = {
    .name = "pc",
    .desc = "Standard PC (RAM, I/O ports, 24 GSIs)",
    .is_default = true,
    .default_ram_size = 128ULL << 20,
    .init = pc_init,
    .load_kernel = x86_load_kernel,
};
MACHINE_TYPE_REGISTER(pc_machine)

static const MachineClass none_machine = {
    .name = "none",
    .desc = "empty machine",
    .default_ram_size = 0,
    .init = none_init,
};
MACHINE_TYPE_REGISTER(none_machine)
