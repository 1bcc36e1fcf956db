/*
 * Machine registry and the machine instance. See include/hw/core/machine.h.
 */
#include "hw/core/machine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "util/error.h"

MachineState *current_machine;
static GPtrArray *machine_classes; /* const MachineClass*, registration order */

void machine_class_register(const MachineClass *mc)
{
    if (!machine_classes) {
        machine_classes = g_ptr_array_new();
    }
    if (machine_class_find(mc->name)) {
        g_error("machine type '%s' registered twice", mc->name);
    }
    g_ptr_array_add(machine_classes, (gpointer)mc);
}

const MachineClass *machine_class_find(const char *name)
{
    for (guint i = 0; name && machine_classes && i < machine_classes->len; i++) {
        const MachineClass *mc = g_ptr_array_index(machine_classes, i);
        if (strcmp(mc->name, name) == 0) {
            return mc;
        }
    }
    return NULL;
}

void machine_class_foreach(void (*fn)(const MachineClass *mc, void *opaque), void *opaque)
{
    for (guint i = 0; machine_classes && i < machine_classes->len; i++) {
        fn(g_ptr_array_index(machine_classes, i), opaque);
    }
}

void machine_list_help(void)
{
    printf("Supported machines are:\n");
    for (guint i = 0; machine_classes && i < machine_classes->len; i++) {
        const MachineClass *mc = g_ptr_array_index(machine_classes, i);
        printf("%-20s %s%s\n", mc->name, mc->desc ? mc->desc : "",
               mc->is_default ? " (default)" : "");
    }
}

uint8_t *machine_ram_alloc(uint64_t size, GError **errp)
{
    void *p;

    if (size == 0 || size > SIZE_MAX) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "cannot allocate %" G_GUINT64_FORMAT " bytes of guest RAM", size);
        return NULL;
    }
    p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        error_set_errno(errp, errno,
                        "cannot allocate %" G_GUINT64_FORMAT " MiB of guest RAM (try a "
                        "smaller -m)",
                        size >> 20);
        return NULL;
    }
    return p;
}

void machine_ram_free(uint8_t *ram, uint64_t size)
{
    if (ram) {
        munmap(ram, (size_t)size);
    }
}

MachineState *machine_create(const MachineClass *mc, uint64_t ram_size, const char *accel,
                             unsigned smp, GError **errp)
{
    MachineState *ms = g_new0(MachineState, 1);

    ms->klass = mc;
    ms->sysmem = address_space_new("memory");
    ms->io = address_space_new("io");
    ms->ram_size = ram_size ? ram_size : mc->default_ram_size;
    ms->accel = accel;
    ms->smp = smp ? smp : 1;
    current_machine = ms;
    if (mc->init && !mc->init(ms, errp)) {
        machine_destroy(ms);
        return NULL;
    }
    return ms;
}

void machine_destroy(MachineState *ms)
{
    if (!ms) {
        return;
    }
    machine_ram_free(ms->ram, ms->ram_size);
    irq_lines_free(ms->gsi);
    address_space_free(ms->sysmem);
    address_space_free(ms->io);
    g_free(ms->kernel);
    g_free(ms->initrd);
    g_free(ms->append);
    if (current_machine == ms) {
        current_machine = NULL;
    }
    g_free(ms);
}

void machine_route_gsi(MachineState *ms, IRQHandler fn, void *opaque)
{
    for (int i = 0; i < ms->num_gsi; i++) {
        ms->gsi[i].handler = fn;
        ms->gsi[i].opaque = opaque;
    }
}
