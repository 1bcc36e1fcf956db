/*
 * Guest loader for the pc machine: ELF64 images (Linux vmlinux or test
 * guests) and Linux bzImages, entered in 64-bit long mode.
 *
 * Layout (docs/kvm.md): GDT at 0x500, identity page tables for the low 4 GiB
 * at 0x1000-0x6fff (2 MiB pages), the Linux zero page at 0x7000, the command
 * line at 0x20000, a bzImage's protected-mode kernel at 1 MiB, ELF segments at
 * their physical addresses, the initrd at the top of RAM. The boot CPU starts
 * with RSI = zero page, the convention of the Linux x86 64-bit boot protocol
 * (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"); non-Linux ELF
 * guests find their command line there too (boot_params.hdr.cmd_line_ptr).
 */
#include "hw/i386/x86-boot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"
#include "util/trace.h"

/* struct boot_params offsets (Linux boot protocol, zero page). */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_SETUP_SECTS 0x1f1
#define BP_VID_MODE 0x1fa
#define BP_BOOT_FLAG 0x1fe
#define BP_JUMP 0x200
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2d0
#define BP_E820_MAX 128
#define BP_SIZE 0x1000

#define SETUP_HDR_MAGIC 0x53726448 /* "HdrS" */
#define LOADFLAG_LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01

#define E820_RAM 1
#define E820_RESERVED 2

/* CR0/CR4/EFER bits (Intel SDM vol. 3, 2.5 and 2.2.1). */
#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_PG (1ULL << 31)
#define CR4_PAE (1ULL << 5)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)

#define PTE_PRESENT 0x01
#define PTE_RW 0x02
#define PTE_ACCESSED 0x20
#define PTE_DIRTY 0x40
#define PTE_PS 0x80

typedef struct BootBlob {
    uint64_t addr;
    GBytes *data;      /* copied to addr */
    uint64_t zero_len; /* then this many zero bytes (ELF .bss) */
} BootBlob;

/*
 * What was loaded, kept so that a system reset can restore it. One machine
 * per process (current_machine), hence file-level state.
 */
static struct {
    GArray *blobs; /* BootBlob */
    X86BootCPUState cpu;
} boot;

const X86BootCPUState *x86_boot_cpu_state(void)
{
    return &boot.cpu;
}

static void boot_blob_clear(gpointer p)
{
    BootBlob *b = p;

    g_bytes_unref(b->data);
}

void x86_boot_clear(void)
{
    if (boot.blobs) {
        g_array_free(boot.blobs, TRUE);
        boot.blobs = NULL;
    }
    memset(&boot.cpu, 0, sizeof(boot.cpu));
}

/* Does [addr, addr+len) lie inside RAM? 64-bit math, no wrap. */
static bool ram_contains(MachineState *ms, uint64_t addr, uint64_t len)
{
    uint64_t base = ms->ram_region.base, size = ms->ram_region.size;

    return addr >= base && len <= size && addr - base <= size - len;
}

static uint8_t *ram_at(MachineState *ms, uint64_t addr)
{
    return ms->ram + (addr - ms->ram_region.base);
}

/* Record a blob and copy it into RAM now. The caller checked the range. */
static void boot_add_blob(MachineState *ms, uint64_t addr, GBytes *data,
                          uint64_t zero_len)
{
    BootBlob b = {.addr = addr, .data = data, .zero_len = zero_len};
    gsize len;
    const uint8_t *p = g_bytes_get_data(data, &len);

    if (!boot.blobs) {
        boot.blobs = g_array_new(FALSE, FALSE, sizeof(BootBlob));
        g_array_set_clear_func(boot.blobs, boot_blob_clear);
    }
    g_array_append_val(boot.blobs, b);
    memcpy(ram_at(ms, addr), p, len);
    memset(ram_at(ms, addr + len), 0, zero_len);
}

void x86_boot_reload(MachineState *ms)
{
    if (!boot.blobs) {
        return;
    }
    for (guint i = 0; i < boot.blobs->len; i++) {
        BootBlob *b = &g_array_index(boot.blobs, BootBlob, i);
        gsize len;
        const uint8_t *p = g_bytes_get_data(b->data, &len);

        memcpy(ram_at(ms, b->addr), p, len);
        memset(ram_at(ms, b->addr + len), 0, b->zero_len);
    }
    trace_event("x86_boot_reload", "blobs=%u", boot.blobs->len);
}

static void put_e820(uint8_t *table, unsigned *n, unsigned max, uint64_t addr,
                     uint64_t size, uint32_t type)
{
    uint8_t *e;

    if (*n >= max || size == 0) {
        return;
    }
    e = table + (size_t)*n * 20;
    for (int i = 0; i < 8; i++) {
        e[i] = addr >> (8 * i);
        e[8 + i] = size >> (8 * i);
    }
    for (int i = 0; i < 4; i++) {
        e[16 + i] = type >> (8 * i);
    }
    (*n)++;
}

unsigned x86_boot_build_e820(MachineState *ms, uint8_t *table, unsigned max)
{
    uint64_t ram_base = ms->ram_region.base;
    uint64_t end = ram_base + ms->ram_region.size;
    unsigned n = 0;

    /* Low RAM below the EBDA, then the legacy BIOS area as reserved. */
    if (ram_base < X86_BOOT_EBDA_ADDR) {
        put_e820(table, &n, max, ram_base, MIN(end, X86_BOOT_EBDA_ADDR) - ram_base,
                 E820_RAM);
    }
    put_e820(table, &n, max, X86_BOOT_EBDA_ADDR, 0xa0000 - X86_BOOT_EBDA_ADDR,
             E820_RESERVED);
    put_e820(table, &n, max, X86_BOOT_BIOS_ADDR, 0x100000 - X86_BOOT_BIOS_ADDR,
             E820_RESERVED);
    if (end > 0x100000) {
        uint64_t start = MAX(ram_base, 0x100000);

        put_e820(table, &n, max, start, end - start, E820_RAM);
    }
    /* IOAPIC, TPM TIS/PPI window and local APIC (not RAM, keep Linux off them). */
    put_e820(table, &n, max, 0xfec00000, 0x1000, E820_RESERVED);
    put_e820(table, &n, max, 0xfed40000, 0x5000, E820_RESERVED);
    put_e820(table, &n, max, 0xfee00000, 0x1000, E820_RESERVED);
    put_e820(table, &n, max, ms->ram_high_region.base, ms->ram_high_region.size,
             E820_RAM);
    return n;
}

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = v;
    p[1] = v >> 8;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = v >> (8 * i);
    }
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = v >> (8 * i);
    }
}

static uint16_t get_le16(const uint8_t *p)
{
    return p[0] | (uint16_t)p[1] << 8;
}

static uint32_t get_le32(const uint8_t *p)
{
    return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
    return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* GDT and identity page tables for long mode, as one blob at 0x500-0x6fff. */
static void boot_build_tables(MachineState *ms)
{
    size_t len = X86_BOOT_PD_ADDR + 4 * 0x1000 - X86_BOOT_GDT_ADDR;
    uint8_t *t = g_malloc0(len);
    uint8_t *gdt = t;
    uint8_t *pml4 = t + (X86_BOOT_PML4_ADDR - X86_BOOT_GDT_ADDR);
    uint8_t *pdpt = t + (X86_BOOT_PDPT_ADDR - X86_BOOT_GDT_ADDR);
    uint8_t *pd = t + (X86_BOOT_PD_ADDR - X86_BOOT_GDT_ADDR);

    /* Null, null, 64-bit code (0x10), flat data (0x18): Linux's __BOOT_CS/DS. */
    put_le64(gdt + X86_BOOT_CS, 0x00af9b000000ffffULL);
    put_le64(gdt + X86_BOOT_DS, 0x00cf93000000ffffULL);

    /*
     * Accessed and dirty are set from the start: under a shadow-paging host
     * (PVM) every first write would otherwise make the host set them in our
     * tables, which it write-protects, over and over.
     */
    put_le64(pml4, X86_BOOT_PDPT_ADDR | PTE_PRESENT | PTE_RW | PTE_ACCESSED);
    for (int i = 0; i < 4; i++) {
        put_le64(pdpt + 8 * i,
                 (X86_BOOT_PD_ADDR + 0x1000 * i) | PTE_PRESENT | PTE_RW | PTE_ACCESSED);
    }
    for (uint64_t i = 0; i < 4 * 512; i++) {
        put_le64(pd + 8 * i,
                 (i << 21) | PTE_PRESENT | PTE_RW | PTE_ACCESSED | PTE_DIRTY | PTE_PS);
    }
    boot_add_blob(ms, X86_BOOT_GDT_ADDR, g_bytes_new_take(t, len), 0);

    boot.cpu.gdt_base = X86_BOOT_GDT_ADDR;
    boot.cpu.gdt_limit = 4 * 8 - 1;
    boot.cpu.cr3 = X86_BOOT_PML4_ADDR;
    boot.cpu.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG;
    boot.cpu.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    boot.cpu.efer = EFER_LME | EFER_LMA;
    boot.cpu.rsp = X86_BOOT_STACK_TOP;
    boot.cpu.rsi = X86_BOOT_ZERO_PAGE_ADDR;
}

/*
 * Load the PT_LOAD segments of an ELF64 x86-64 image at their physical
 * addresses. Every offset and size is checked with 64-bit math against the
 * file and RAM. Returns the highest loaded address in *end.
 */
static bool boot_load_elf64(MachineState *ms, GBytes *file, uint64_t *entry,
                            uint64_t *end, GError **errp)
{
    gsize flen;
    const uint8_t *f = g_bytes_get_data(file, &flen);
    uint64_t phoff, phnum, phentsize;
    bool loaded = false;

    if (flen < 64 || f[4] != 2 /* ELFCLASS64 */) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "only 64-bit ELF images can be loaded (this one is "
                    "ELF class %u); build the guest for x86-64",
                    flen > 4 ? f[4] : 0);
        return false;
    }
    if (f[5] != 1 /* ELFDATA2LSB */ || get_le16(f + 18) != 62 /* EM_X86_64 */) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "not a little-endian x86-64 ELF image (e_machine %u)",
                    get_le16(f + 18));
        return false;
    }
    *entry = get_le64(f + 24);
    phoff = get_le64(f + 32);
    phentsize = get_le16(f + 54);
    phnum = get_le16(f + 56);
    if (phentsize < 56 || phoff > flen || phnum > (flen - phoff) / phentsize) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "program headers lie outside the file (offset %" PRIu64 ", %" PRIu64
                    " entries of %" PRIu64 " bytes, file %zu bytes)",
                    phoff, phnum, phentsize, (size_t)flen);
        return false;
    }
    *end = 0;
    for (uint64_t i = 0; i < phnum; i++) {
        const uint8_t *ph = f + phoff + i * phentsize;
        uint64_t off = get_le64(ph + 8), paddr = get_le64(ph + 24);
        uint64_t filesz = get_le64(ph + 32), memsz = get_le64(ph + 40);

        if (get_le32(ph) != 1 /* PT_LOAD */ || memsz == 0) {
            continue;
        }
        if (filesz > memsz || off > flen || filesz > flen - off) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                        "segment %" PRIu64 " (offset %" PRIu64 ", %" PRIu64
                        " bytes) lies outside the file",
                        i, off, filesz);
            return false;
        }
        if (!ram_contains(ms, paddr, memsz) || paddr < X86_BOOT_KERNEL_ADDR) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "segment %" PRIu64 " at 0x%" PRIx64 "-0x%" PRIx64
                        " does not fit in guest RAM between 1 MiB and 0x%" PRIx64
                        "; link the guest at or above 0x100000 or raise -m",
                        i, paddr, paddr + memsz,
                        ms->ram_region.base + ms->ram_region.size);
            return false;
        }
        boot_add_blob(ms, paddr, g_bytes_new_from_bytes(file, off, filesz),
                      memsz - filesz);
        *end = MAX(*end, paddr + memsz);
        loaded = true;
        trace_event("x86_boot_elf_segment",
                    "paddr=0x%" PRIx64 " filesz=0x%" PRIx64 " memsz=0x%" PRIx64, paddr,
                    filesz, memsz);
    }
    if (!loaded) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "the ELF image has no loadable segment");
        return false;
    }
    return true;
}

/*
 * A bzImage: the setup header says how many 512-byte setup sectors precede
 * the protected-mode kernel, which goes to 1 MiB; its 64-bit entry point is
 * 0x200 bytes in (boot protocol 2.12+, xloadflags XLF_KERNEL_64).
 */
static bool boot_load_bzimage(MachineState *ms, GBytes *file, uint8_t *zp,
                              uint64_t *entry, uint64_t *end, GError **errp)
{
    gsize flen;
    const uint8_t *f = g_bytes_get_data(file, &flen);
    uint16_t version = get_le16(f + BP_VERSION);
    uint64_t setup_sects = f[BP_SETUP_SECTS] ? f[BP_SETUP_SECTS] : 4;
    uint64_t setup_len = (setup_sects + 1) * 512;
    uint64_t hdr_end = BP_HEADER + (uint64_t)f[BP_JUMP + 1];

    if (version < 0x20c || !(get_le16(f + BP_XLOADFLAGS) & XLF_KERNEL_64) ||
        !(f[BP_LOADFLAGS] & LOADFLAG_LOADED_HIGH)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "the kernel has no 64-bit entry point (boot protocol "
                    "%u.%02u, xloadflags 0x%x); tpmvm needs an x86-64 kernel with "
                    "boot protocol 2.12 or newer",
                    version >> 8, version & 0xff, get_le16(f + BP_XLOADFLAGS));
        return false;
    }
    if (setup_len >= flen || hdr_end > 0x280 || hdr_end > flen) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT,
                    "the setup header is inconsistent (%" PRIu64
                    " setup sectors, file %zu bytes)",
                    setup_sects, (size_t)flen);
        return false;
    }
    if (!ram_contains(ms, X86_BOOT_KERNEL_ADDR, flen - setup_len)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "the kernel (%zu bytes) does not fit in guest RAM at "
                    "1 MiB; raise -m",
                    (size_t)(flen - setup_len));
        return false;
    }
    /* The zero page starts as a copy of the image's setup header. */
    memcpy(zp + BP_SETUP_SECTS, f + BP_SETUP_SECTS, hdr_end - BP_SETUP_SECTS);
    boot_add_blob(ms, X86_BOOT_KERNEL_ADDR,
                  g_bytes_new_from_bytes(file, setup_len, flen - setup_len), 0);
    *entry = X86_BOOT_KERNEL_ADDR + 0x200;
    *end = X86_BOOT_KERNEL_ADDR + (flen - setup_len);
    return true;
}

/*
 * Read a whole file. Errors about the -kernel file get "-kernel FILE: " from
 * the command line code (prefix NULL); others are prefixed "OPT FILE: ".
 */
static bool boot_read_file(const char *opt, const char *path, GBytes **out, GError **errp)
{
    g_autoptr(GError) err = NULL;
    char *data;
    gsize len;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        if (opt) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "%s %s: could not read it: %s",
                        opt, path, err->message);
        } else {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_IO, "could not read it: %s",
                        err->message);
        }
        return false;
    }
    *out = g_bytes_new_take(data, len);
    return true;
}

bool x86_load_kernel(MachineState *ms, GError **errp)
{
    g_autoptr(GBytes) file = NULL;
    g_autoptr(GBytes) initrd = NULL;
    uint8_t *zp;
    const uint8_t *f;
    gsize flen;
    uint64_t entry = 0, kernel_end = 0;
    uint64_t initrd_max = 0x37ffffff;
    size_t cmdlen = ms->append ? strlen(ms->append) + 1 : 1;
    X86KernelKind kind;
    unsigned n;

    x86_boot_clear();
    if (!ms->kernel) {
        return true;
    }
    if (!ram_contains(ms, 0, X86_BOOT_KERNEL_ADDR)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "guest RAM must start at 0 and be at least 1 MiB "
                    "(it is 0x%" PRIx64 " bytes); raise -m",
                    ms->ram_region.size);
        return false;
    }
    if (cmdlen > X86_BOOT_CMDLINE_MAX) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-append: the command line is %zu bytes; the limit is %d", cmdlen - 1,
                    X86_BOOT_CMDLINE_MAX - 1);
        return false;
    }
    if (!boot_read_file(NULL, ms->kernel, &file, errp)) {
        return false;
    }
    f = g_bytes_get_data(file, &flen);
    if (flen >= 4 && memcmp(f,
                            "\x7f"
                            "ELF",
                            4) == 0) {
        kind = X86_KERNEL_ELF64;
    } else if (flen >= 0x280 && get_le32(f + BP_HEADER) == SETUP_HDR_MAGIC) {
        kind = X86_KERNEL_BZIMAGE;
    } else {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "not an ELF64 image nor a Linux bzImage (no ELF magic, "
                    "no 'HdrS' setup header)");
        return false;
    }

    zp = g_malloc0(BP_SIZE);
    boot_build_tables(ms);
    if (kind == X86_KERNEL_ELF64) {
        if (!boot_load_elf64(ms, file, &entry, &kernel_end, errp)) {
            goto fail;
        }
        /* What a boot loader fills in for a kernel without its own header. */
        put_le16(zp + BP_BOOT_FLAG, 0xaa55);
        put_le32(zp + BP_HEADER, SETUP_HDR_MAGIC);
        put_le16(zp + BP_VERSION, 0x020f);
        put_le32(zp + BP_KERNEL_ALIGNMENT, 0x1000000);
    } else {
        if (!boot_load_bzimage(ms, file, zp, &entry, &kernel_end, errp)) {
            goto fail;
        }
        initrd_max = get_le32(zp + BP_INITRD_ADDR_MAX);
    }
    zp[BP_TYPE_OF_LOADER] = 0xff;
    put_le16(zp + BP_VID_MODE, 0xffff);
    put_le32(zp + BP_CMD_LINE_PTR, X86_BOOT_CMDLINE_ADDR);
    put_le32(zp + BP_EXT_CMD_LINE_PTR, 0);
    put_le32(zp + BP_CMDLINE_SIZE, X86_BOOT_CMDLINE_MAX - 1);
    boot_add_blob(ms, X86_BOOT_CMDLINE_ADDR,
                  g_bytes_new(ms->append ? ms->append : "", cmdlen), 0);

    if (ms->initrd) {
        gsize ilen;
        uint64_t top =
            MIN(ms->ram_region.base + ms->ram_region.size, (uint64_t)initrd_max + 1);
        uint64_t addr;

        if (!boot_read_file("-initrd", ms->initrd, &initrd, errp)) {
            goto fail;
        }
        g_bytes_get_data(initrd, &ilen);
        /* Highest page-aligned spot below the limit, above the kernel. */
        addr = ilen <= top ? (top - ilen) & ~0xfffULL : 0;
        if (ilen > top || addr < kernel_end || ilen > UINT32_MAX) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "-initrd %s: %zu bytes do not fit between the kernel (ends at "
                        "0x%" PRIx64 ") and 0x%" PRIx64 "; raise -m",
                        ms->initrd, (size_t)ilen, kernel_end, top);
            goto fail;
        }
        boot_add_blob(ms, addr, g_bytes_ref(initrd), 0);
        put_le32(zp + BP_RAMDISK_IMAGE, addr);
        put_le32(zp + BP_RAMDISK_SIZE, ilen);
        put_le32(zp + BP_EXT_RAMDISK_IMAGE, addr >> 32);
        put_le32(zp + BP_EXT_RAMDISK_SIZE, 0);
    }

    n = x86_boot_build_e820(ms, zp + BP_E820_TABLE, BP_E820_MAX);
    zp[BP_E820_ENTRIES] = n;
    boot_add_blob(ms, X86_BOOT_ZERO_PAGE_ADDR, g_bytes_new_take(zp, BP_SIZE), 0);

    boot.cpu.rip = entry;
    boot.cpu.valid = true;
    trace_event("x86_boot_loaded", "kind=%s entry=0x%" PRIx64 " end=0x%" PRIx64,
                kind == X86_KERNEL_ELF64 ? "elf64" : "bzimage", entry, kernel_end);
    return true;

fail:
    g_free(zp);
    x86_boot_clear();
    return false;
}
