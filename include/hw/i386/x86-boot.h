/*
 * Loading a guest into the pc machine's RAM: a Linux bzImage, a Linux
 * vmlinux (ELF64) or any other ELF64 guest, with an optional initrd and a
 * command line. tpmvm has no firmware: the loader builds what a boot loader
 * would (identity page tables, a GDT, the Linux "zero page" with e820 map and
 * command line) and describes the CPU state the boot CPU starts in. Every
 * guest, Linux or not, is entered in 64-bit long mode. docs/kvm.md has the
 * memory layout.
 */
#ifndef HW_I386_X86_BOOT_H
#define HW_I386_X86_BOOT_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#include "hw/core/machine.h"

/* Fixed guest-physical layout below 1 MiB (docs/kvm.md). */
#define X86_BOOT_GDT_ADDR 0x0500
#define X86_BOOT_PML4_ADDR 0x1000
#define X86_BOOT_PDPT_ADDR 0x2000
#define X86_BOOT_PD_ADDR 0x3000 /* four page directories: 0x3000-0x6fff */
#define X86_BOOT_ZERO_PAGE_ADDR 0x7000
#define X86_BOOT_STACK_TOP 0x1f000
#define X86_BOOT_CMDLINE_ADDR 0x20000
#define X86_BOOT_CMDLINE_MAX 0x10000 /* bytes, including the NUL */
#define X86_BOOT_KERNEL_ADDR 0x100000
/* Identity-mapped range (2 MiB pages): RAM below 4 GiB and the MMIO hole. */
#define X86_BOOT_IDENTITY_MAP_SIZE 0x100000000ULL
/* Legacy holes kept out of the e820 RAM entries. */
#define X86_BOOT_EBDA_ADDR 0x9fc00
#define X86_BOOT_BIOS_ADDR 0xf0000

/* Boot segment selectors, the values Linux's 64-bit boot protocol expects. */
#define X86_BOOT_CS 0x10
#define X86_BOOT_DS 0x18

/* The state the boot CPU starts in (long mode, flat segments). */
typedef struct X86BootCPUState {
    bool valid; /* false: no guest was loaded */
    uint64_t rip;
    uint64_t rsp;
    uint64_t rsi; /* Linux: address of the zero page (boot_params) */
    uint64_t cr0, cr3, cr4, efer;
    uint64_t gdt_base;
    uint16_t gdt_limit;
} X86BootCPUState;

/* What kind of image -kernel named. */
typedef enum {
    X86_KERNEL_ELF64,   /* vmlinux or another ELF64 guest */
    X86_KERNEL_BZIMAGE, /* Linux bzImage with a setup header ("HdrS") */
} X86KernelKind;

/*
 * Load ms->kernel (plus ms->initrd, ms->append) into RAM and compute the boot
 * CPU state. Errors name the file and what is wrong with it. Called once,
 * after devices are realized (MachineClass.load_kernel).
 */
bool x86_load_kernel(MachineState *ms, GError **errp);

/* Copy the loaded images back into RAM (system reset: the guest may have
 * overwritten them). No-op when nothing was loaded. */
void x86_boot_reload(MachineState *ms);

/* The boot CPU's start state; valid == false before x86_load_kernel(). */
const X86BootCPUState *x86_boot_cpu_state(void);

/* Forget what was loaded (tests that load several images in one process). */
void x86_boot_clear(void);

/*
 * Write the machine's e820 map into `table` (20-byte entries, Linux layout),
 * returning the number of entries (at most `max`).
 */
unsigned x86_boot_build_e820(MachineState *ms, uint8_t *table, unsigned max);

#endif
