/*
 * Address spaces and MMIO/PIO regions.
 *
 * A region is a window [base, base+size) served by ops, or backed by host RAM.
 * Dispatch checks that an access lies entirely inside one region and that its
 * size is one the region accepts before a device callback runs; everything
 * else reads as all-ones and ignores writes (and is traced). Values are
 * little-endian: a 4-byte read at addr returns bytes addr..addr+3 with addr in
 * bits 7:0.
 */
#ifndef HW_CORE_MEMORY_H
#define HW_CORE_MEMORY_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

typedef struct MemoryRegionOps {
    /* addr is relative to the region base; size is 1, 2, 4 or 8 */
    uint64_t (*read)(void *opaque, uint64_t addr, unsigned size);
    void (*write)(void *opaque, uint64_t addr, uint64_t val, unsigned size);
    /* valid access sizes, inclusive; 0 means 1 and 8 */
    unsigned min_access_size;
    unsigned max_access_size;
    /* accesses must be naturally aligned */
    bool aligned;
} MemoryRegionOps;

typedef struct MemoryRegion {
    const char *name;
    uint64_t base;
    uint64_t size;
    const MemoryRegionOps *ops; /* NULL for RAM */
    void *opaque;
    uint8_t *ram; /* host memory for RAM regions */
} MemoryRegion;

typedef struct AddressSpace AddressSpace;

AddressSpace *address_space_new(const char *name);
void address_space_free(AddressSpace *as);

/* Map a region; overlapping an existing region is a programming error. */
void address_space_add(AddressSpace *as, MemoryRegion *mr);
void address_space_del(AddressSpace *as, MemoryRegion *mr);
/* Region containing addr, or NULL. */
MemoryRegion *address_space_lookup(AddressSpace *as, uint64_t addr);

/*
 * One access of `size` bytes (1, 2, 4, 8). Returns false (and reads all-ones)
 * when no region accepts it. Callers hold the big lock (system/main-loop.h)
 * for MMIO; RAM accesses do not need it.
 */
bool address_space_read(AddressSpace *as, uint64_t addr, unsigned size, uint64_t *val);
bool address_space_write(AddressSpace *as, uint64_t addr, unsigned size, uint64_t val);

/*
 * Byte-buffer access spanning RAM and MMIO. MMIO bytes go through the
 * widest naturally aligned accesses the region accepts (up to its
 * max_access_size), buffer bytes in little-endian lanes; 1-byte accesses
 * where nothing wider fits. Returns false if any byte had no region.
 */
bool address_space_rw(AddressSpace *as, uint64_t addr, void *buf, uint64_t len,
                      bool is_write);

/*
 * Fill [addr, addr+len) with `byte`: memset on RAM, 1-byte writes on MMIO,
 * gaps skipped without per-byte work. Returns false if any byte had no region.
 */
bool address_space_fill(AddressSpace *as, uint64_t addr, uint8_t byte, uint64_t len);

/* Host pointer for [addr, addr+len) if it lies inside one RAM region. */
void *address_space_ram_ptr(AddressSpace *as, uint64_t addr, uint64_t len);

#endif
