/*
 * Address spaces and MMIO/PIO dispatch. See include/hw/core/memory.h.
 *
 * An address space is an array of non-overlapping regions sorted by base, so
 * a lookup is a binary search. Every access is checked (inside one region,
 * size accepted, alignment) before the device callback sees it.
 */
#include <stdio.h>

#include "hw/core/memory.h"

#include <string.h>

#include "util/trace.h"

struct AddressSpace {
    char *name;
    GPtrArray *regions; /* MemoryRegion*, sorted by base */
};

AddressSpace *address_space_new(const char *name)
{
    AddressSpace *as = g_new0(AddressSpace, 1);

    as->name = g_strdup(name);
    as->regions = g_ptr_array_new();
    return as;
}

void address_space_free(AddressSpace *as)
{
    if (!as) {
        return;
    }
    g_ptr_array_unref(as->regions);
    g_free(as->name);
    g_free(as);
}

/* Last byte of a region (size >= 1 is enforced at add time). */
static inline uint64_t region_last(const MemoryRegion *mr)
{
    return mr->base + (mr->size - 1);
}

/* Index of the first region whose base is > addr. */
static guint region_upper_bound(const AddressSpace *as, uint64_t addr)
{
    guint lo = 0, hi = as->regions->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        const MemoryRegion *mr = g_ptr_array_index(as->regions, mid);
        if (mr->base <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

void address_space_add(AddressSpace *as, MemoryRegion *mr)
{
    guint idx;

    if (mr->size == 0 || mr->base + (mr->size - 1) < mr->base) {
        g_error("%s: region '%s' at 0x%" G_GINT64_MODIFIER
                "x has an invalid size 0x%" G_GINT64_MODIFIER "x",
                as->name, mr->name, mr->base, mr->size);
    }
    if (!mr->ops && !mr->ram) {
        g_error("%s: region '%s' has neither ops nor RAM", as->name, mr->name);
    }
    idx = region_upper_bound(as, mr->base);
    if (idx > 0) {
        const MemoryRegion *prev = g_ptr_array_index(as->regions, idx - 1);
        if (region_last(prev) >= mr->base) {
            g_error("%s: region '%s' overlaps '%s'", as->name, mr->name, prev->name);
        }
    }
    if (idx < as->regions->len) {
        const MemoryRegion *next = g_ptr_array_index(as->regions, idx);
        if (region_last(mr) >= next->base) {
            g_error("%s: region '%s' overlaps '%s'", as->name, mr->name, next->name);
        }
    }
    g_ptr_array_insert(as->regions, idx, mr);
}

void address_space_del(AddressSpace *as, MemoryRegion *mr)
{
    g_ptr_array_remove(as->regions, mr);
}

MemoryRegion *address_space_lookup(AddressSpace *as, uint64_t addr)
{
    guint idx = region_upper_bound(as, addr);
    MemoryRegion *mr;

    if (idx == 0) {
        return NULL;
    }
    mr = g_ptr_array_index(as->regions, idx - 1);
    return addr <= region_last(mr) ? mr : NULL;
}

static inline uint64_t size_mask(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (size * 8)) - 1;
}

static inline bool size_valid(unsigned size)
{
    return size == 1 || size == 2 || size == 4 || size == 8;
}

/*
 * The region that accepts an access of `size` bytes at addr, or NULL. The
 * offset into the region is returned in *offset.
 */
static MemoryRegion *access_check(AddressSpace *as, uint64_t addr, unsigned size,
                                  uint64_t *offset)
{
    MemoryRegion *mr;
    uint64_t off;

    if (!size_valid(size)) {
        return NULL;
    }
    mr = address_space_lookup(as, addr);
    if (!mr) {
        return NULL;
    }
    off = addr - mr->base;
    /* the access must lie entirely inside the region: off + size <= mr->size */
    if (size > mr->size || off > mr->size - size) {
        return NULL;
    }
    if (mr->ops) {
        unsigned min = mr->ops->min_access_size ? mr->ops->min_access_size : 1;
        unsigned max = mr->ops->max_access_size ? mr->ops->max_access_size : 8;
        if (size < min || size > max) {
            return NULL;
        }
        if (mr->ops->aligned && (off & (size - 1))) {
            return NULL;
        }
    }
    *offset = off;
    return mr;
}

static uint64_t ram_load(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static void ram_store(uint8_t *p, unsigned size, uint64_t v)
{
    for (unsigned i = 0; i < size; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

bool address_space_read(AddressSpace *as, uint64_t addr, unsigned size, uint64_t *val)
{
    uint64_t off;
    MemoryRegion *mr = access_check(as, addr, size, &off);

    if (!mr) {
        trace_event("memory_unassigned_read", "%s addr=0x%" G_GINT64_MODIFIER "x size=%u",
                    as->name, addr, size);
        *val = size_valid(size) ? size_mask(size) : UINT64_MAX;
        return false;
    }
    if (!mr->ops) {
        *val = ram_load(mr->ram + off, size);
        return true;
    }
    *val = mr->ops->read ? mr->ops->read(mr->opaque, off, size) & size_mask(size)
                         : size_mask(size);
    return true;
}

bool address_space_write(AddressSpace *as, uint64_t addr, unsigned size, uint64_t val)
{
    uint64_t off;
    MemoryRegion *mr = access_check(as, addr, size, &off);

    if (!mr) {
        trace_event("memory_unassigned_write",
                    "%s addr=0x%" G_GINT64_MODIFIER "x size=%u val=0x%" G_GINT64_MODIFIER
                    "x",
                    as->name, addr, size, val);
        return false;
    }
    if (!mr->ops) {
        ram_store(mr->ram + off, size, val);
        return true;
    }
    if (mr->ops->write) {
        mr->ops->write(mr->opaque, off, val & size_mask(size), size);
    }
    return true;
}

/*
 * Size of the next access of a buffer transfer at `off` into MMIO region mr:
 * the widest power of two the device accepts that is naturally aligned and
 * fits both the rest of the buffer and the region, so that a 64-byte
 * transfer into a 4-byte register window is 16 accesses, not 64. Bytes go
 * in little-endian lanes (buffer byte i is bits 8i..8i+7), as with
 * single-byte accesses. 1 when nothing wider fits (the device may then
 * refuse it, as before).
 */
static unsigned mmio_chunk(const MemoryRegion *mr, uint64_t off, uint64_t len)
{
    unsigned min = mr->ops->min_access_size ? mr->ops->min_access_size : 1;
    unsigned max = mr->ops->max_access_size ? mr->ops->max_access_size : 8;

    for (unsigned size = 8; size > 1; size /= 2) {
        if (size <= max && size >= min && size <= len && !(off & (size - 1)) &&
            size <= mr->size && off <= mr->size - size) {
            return size;
        }
    }
    return 1;
}

bool address_space_rw(AddressSpace *as, uint64_t addr, void *buf, uint64_t len,
                      bool is_write)
{
    uint8_t *p = buf;
    bool ok = true;

    while (len > 0) {
        MemoryRegion *mr = address_space_lookup(as, addr);
        uint64_t chunk;

        if (mr && !mr->ops) {
            uint64_t off = addr - mr->base;
            chunk = MIN(len, mr->size - off);
            if (is_write) {
                memcpy(mr->ram + off, p, chunk);
            } else {
                memcpy(p, mr->ram + off, chunk);
            }
        } else if (mr) {
            uint64_t v = 0;
            chunk = mmio_chunk(mr, addr - mr->base, len);
            if (is_write) {
                for (unsigned i = 0; i < chunk; i++) {
                    v |= (uint64_t)p[i] << (8 * i);
                }
                ok &= address_space_write(as, addr, chunk, v);
            } else {
                ok &= address_space_read(as, addr, chunk, &v);
                for (unsigned i = 0; i < chunk; i++) {
                    p[i] = (uint8_t)(v >> (8 * i));
                }
            }
        } else {
            /* a gap: up to the next region in one step */
            guint idx = region_upper_bound(as, addr);
            chunk = len;
            if (idx < as->regions->len) {
                const MemoryRegion *next = g_ptr_array_index(as->regions, idx);
                chunk = MIN(len, next->base - addr);
            }
            if (!is_write) {
                memset(p, 0xff, chunk);
            }
            trace_event("memory_unassigned_rw",
                        "%s addr=0x%" G_GINT64_MODIFIER "x len=0x%" G_GINT64_MODIFIER "x",
                        as->name, addr, chunk);
            ok = false;
        }
        p += chunk;
        len -= chunk;
        if (len && addr + chunk < addr) {
            /* wrapped past the top of the 64-bit space: the rest has no region */
            if (!is_write) {
                memset(p, 0xff, len);
            }
            return false;
        }
        addr += chunk;
    }
    return ok;
}

bool address_space_fill(AddressSpace *as, uint64_t addr, uint8_t byte, uint64_t len)
{
    bool ok = true;

    while (len > 0) {
        MemoryRegion *mr = address_space_lookup(as, addr);
        uint64_t chunk;

        if (!mr) {
            /* jump to the next region (or the end) in one step */
            guint idx = region_upper_bound(as, addr);
            ok = false;
            if (idx >= as->regions->len) {
                return false;
            }
            mr = g_ptr_array_index(as->regions, idx);
            chunk = mr->base - addr;
        } else if (!mr->ops) {
            uint64_t off = addr - mr->base;
            chunk = MIN(len, mr->size - off);
            memset(mr->ram + off, byte, chunk);
        } else {
            chunk = 1;
            ok &= address_space_write(as, addr, 1, byte);
        }
        if (chunk >= len) {
            break;
        }
        len -= chunk;
        if (addr + chunk < addr) {
            return false;
        }
        addr += chunk;
    }
    return ok;
}

void *address_space_ram_ptr(AddressSpace *as, uint64_t addr, uint64_t len)
{
    MemoryRegion *mr = address_space_lookup(as, addr);
    uint64_t off;

    if (!mr || mr->ops) {
        return NULL;
    }
    off = addr - mr->base;
    if (len > mr->size - off) {
        return NULL;
    }
    return mr->ram + off;
}
