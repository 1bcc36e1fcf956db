/*
 * Address spaces: lookup over sorted regions, access checks before a device
 * sees an access, all-ones on a miss, byte transfers across RAM/MMIO/gaps.
 */
#include <string.h>

#include "hw/core/memory.h"

/* A register file that records what reached it. */
typedef struct TestDev {
    uint8_t regs[16];
    unsigned reads, writes;
    uint64_t last_addr;
    unsigned last_size;
    char sizes[32]; /* one digit per access, in order */
} TestDev;

static void testdev_log(TestDev *d, unsigned size)
{
    size_t n = strlen(d->sizes);
    if (n + 1 < sizeof(d->sizes)) {
        d->sizes[n] = (char)('0' + size);
    }
}

static uint64_t testdev_read(void *opaque, uint64_t addr, unsigned size)
{
    TestDev *d = opaque;
    uint64_t v = 0;

    d->reads++;
    testdev_log(d, size);
    d->last_addr = addr;
    d->last_size = size;
    for (unsigned i = 0; i < size; i++) {
        v |= (uint64_t)d->regs[addr + i] << (8 * i);
    }
    return v;
}

static void testdev_write(void *opaque, uint64_t addr, uint64_t val, unsigned size)
{
    TestDev *d = opaque;

    d->writes++;
    testdev_log(d, size);
    d->last_addr = addr;
    d->last_size = size;
    for (unsigned i = 0; i < size; i++) {
        d->regs[addr + i] = (uint8_t)(val >> (8 * i));
    }
}

static const MemoryRegionOps testdev_ops = {
    .read = testdev_read,
    .write = testdev_write,
    .min_access_size = 1,
    .max_access_size = 4,
    .aligned = true,
};

static void test_lookup_finds_every_region(void)
{
    AddressSpace *as = address_space_new("test");
    MemoryRegion mr[64];
    TestDev dev = {0};
    /* insert in a scrambled order; lookups must still find each one */
    for (int k = 0; k < 64; k++) {
        int i = (k * 37) % 64;
        mr[i] = (MemoryRegion){.name = "r",
                               .base = 0x1000ULL * i + 0x100,
                               .size = 0x10,
                               .ops = &testdev_ops,
                               .opaque = &dev};
        address_space_add(as, &mr[i]);
    }
    for (int i = 0; i < 64; i++) {
        uint64_t base = 0x1000ULL * i + 0x100;
        g_assert_true(address_space_lookup(as, base) == &mr[i]);
        g_assert_true(address_space_lookup(as, base + 0xf) == &mr[i]);
        g_assert_null(address_space_lookup(as, base + 0x10));
        g_assert_null(address_space_lookup(as, base - 1));
    }
    g_assert_null(address_space_lookup(as, 0));
    g_assert_null(address_space_lookup(as, UINT64_MAX));
    address_space_del(as, &mr[5]);
    g_assert_null(address_space_lookup(as, 0x5100));
    g_assert_true(address_space_lookup(as, 0x6100) == &mr[6]);
    address_space_free(as);
}

static void test_region_at_top_of_address_space(void)
{
    AddressSpace *as = address_space_new("test");
    uint8_t ram[16] = {0};
    MemoryRegion top = {.name = "top", .base = UINT64_MAX - 15, .size = 16, .ram = ram};
    uint64_t v;

    address_space_add(as, &top);
    g_assert_true(address_space_write(as, UINT64_MAX - 7, 8, 0x1122334455667788ULL));
    g_assert_true(address_space_read(as, UINT64_MAX - 7, 8, &v));
    g_assert_cmphex(v, ==, 0x1122334455667788ULL);
    /* would wrap around: refused */
    g_assert_false(address_space_read(as, UINT64_MAX - 3, 8, &v));
    g_assert_cmphex(v, ==, UINT64_MAX);
    address_space_free(as);
}

static void test_mmio_gets_relative_offset(void)
{
    AddressSpace *as = address_space_new("test");
    TestDev dev = {0};
    MemoryRegion mr = {.name = "dev",
                       .base = 0xfed40000,
                       .size = 16,
                       .ops = &testdev_ops,
                       .opaque = &dev};
    uint64_t v;

    address_space_add(as, &mr);
    g_assert_true(address_space_write(as, 0xfed40004, 4, 0xa1b2c3d4));
    g_assert_cmpuint(dev.last_addr, ==, 4);
    g_assert_cmpuint(dev.last_size, ==, 4);
    g_assert_true(address_space_read(as, 0xfed40006, 2, &v));
    g_assert_cmphex(v, ==, 0xa1b2);
    g_assert_cmpuint(dev.last_addr, ==, 6);
    address_space_free(as);
}

static void test_mmio_rejects_bad_accesses_before_device(void)
{
    AddressSpace *as = address_space_new("test");
    TestDev dev = {0};
    MemoryRegion mr = {
        .name = "dev", .base = 0x1000, .size = 16, .ops = &testdev_ops, .opaque = &dev};
    uint64_t v;

    address_space_add(as, &mr);
    /* too big for the device */
    g_assert_false(address_space_read(as, 0x1000, 8, &v));
    g_assert_cmphex(v, ==, UINT64_MAX);
    g_assert_false(address_space_write(as, 0x1000, 8, 0));
    /* unaligned */
    g_assert_false(address_space_read(as, 0x1001, 2, &v));
    g_assert_cmphex(v, ==, 0xffff);
    g_assert_false(address_space_write(as, 0x1002, 4, 0));
    /* straddling the end */
    g_assert_false(address_space_read(as, 0x100e, 4, &v));
    g_assert_cmphex(v, ==, 0xffffffff);
    /* sizes that do not exist */
    g_assert_false(address_space_read(as, 0x1000, 3, &v));
    g_assert_false(address_space_read(as, 0x1000, 0, &v));
    g_assert_false(address_space_write(as, 0x1000, 16, 0));
    /* nothing reached the device */
    g_assert_cmpuint(dev.reads, ==, 0);
    g_assert_cmpuint(dev.writes, ==, 0);
    /* a miss reads all-ones of the access size */
    g_assert_false(address_space_read(as, 0x2000, 1, &v));
    g_assert_cmphex(v, ==, 0xff);
    address_space_free(as);
}

static void test_mmio_default_sizes_are_1_to_8(void)
{
    static const MemoryRegionOps any_ops = {.read = testdev_read, .write = testdev_write};
    AddressSpace *as = address_space_new("test");
    TestDev dev = {0};
    MemoryRegion mr = {
        .name = "dev", .base = 0, .size = 16, .ops = &any_ops, .opaque = &dev};
    uint64_t v;

    address_space_add(as, &mr);
    g_assert_true(address_space_write(as, 3, 8, 0x0807060504030201ULL));
    g_assert_true(address_space_read(as, 3, 8, &v));
    g_assert_cmphex(v, ==, 0x0807060504030201ULL);
    g_assert_true(address_space_read(as, 1, 1, &v));
    g_assert_cmpuint(dev.reads, ==, 2);
    address_space_free(as);
}

static void test_rw_spans_ram_mmio_and_gaps(void)
{
    AddressSpace *as = address_space_new("test");
    uint8_t ram[32];
    TestDev dev = {0};
    MemoryRegion r = {.name = "ram", .base = 0, .size = 32, .ram = ram};
    MemoryRegion m = {
        .name = "dev", .base = 32, .size = 16, .ops = &testdev_ops, .opaque = &dev};
    uint8_t in[64], out[64];

    memset(ram, 0, sizeof(ram));
    address_space_add(as, &r);
    address_space_add(as, &m);
    for (int i = 0; i < 64; i++) {
        in[i] = (uint8_t)(i + 1);
    }
    /* bytes 48..63 fall in a gap */
    g_assert_false(address_space_rw(as, 0, in, 64, true));
    g_assert_true(address_space_rw(as, 0, in, 48, true));
    g_assert_cmpmem(ram, 32, in, 32);
    g_assert_cmpmem(dev.regs, 16, in + 32, 16);
    g_assert_cmpuint(dev.writes, ==, 8); /* 16 MMIO bytes as four 4-byte writes, twice */
    g_assert_false(address_space_rw(as, 0, out, 64, false));
    g_assert_cmpmem(out, 48, in, 48);
    for (int i = 48; i < 64; i++) {
        g_assert_cmphex(out[i], ==, 0xff);
    }
    address_space_free(as);
}

/*
 * A buffer transfer into MMIO uses the widest aligned access the region
 * accepts, with buffer bytes in little-endian lanes: the device sees the
 * same bytes at the same offsets as with 1-byte accesses.
 */
static void test_rw_mmio_uses_widest_aligned_accesses(void)
{
    AddressSpace *as = address_space_new("test");
    TestDev dev = {0}, narrow = {0};
    static const MemoryRegionOps byte_ops = {
        .read = testdev_read,
        .write = testdev_write,
        .min_access_size = 1,
        .max_access_size = 1,
    };
    MemoryRegion m = {
        .name = "dev", .base = 0, .size = 16, .ops = &testdev_ops, .opaque = &dev};
    MemoryRegion b = {
        .name = "bytes", .base = 16, .size = 16, .ops = &byte_ops, .opaque = &narrow};
    uint8_t in[9] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99}, out[16];

    address_space_add(as, &m);
    address_space_add(as, &b);
    /* offset 1, 9 bytes: 1 byte to reach 2-alignment, 2 to reach 4, then 4, then 2 */
    g_assert_true(address_space_rw(as, 1, in, sizeof(in), true));
    g_assert_cmpstr(dev.sizes, ==, "1242");
    g_assert_cmpmem(dev.regs + 1, 9, in, 9);
    g_assert_cmphex(dev.regs[0], ==, 0);
    g_assert_cmphex(dev.regs[10], ==, 0);
    memset(dev.sizes, 0, sizeof(dev.sizes));
    g_assert_true(address_space_rw(as, 0, out, 16, false));
    g_assert_cmpstr(dev.sizes, ==, "4444");
    g_assert_cmphex(out[0], ==, 0);
    g_assert_cmpmem(out + 1, 9, in, 9);
    /* a region that takes only bytes still gets bytes */
    g_assert_true(address_space_rw(as, 16, in, 4, true));
    g_assert_cmpstr(narrow.sizes, ==, "1111");
    g_assert_cmpmem(narrow.regs, 4, in, 4);
    address_space_free(as);
}

static void test_fill_skips_gaps(void)
{
    AddressSpace *as = address_space_new("test");
    uint8_t a[16], b[16];
    MemoryRegion ra = {.name = "a", .base = 0, .size = 16, .ram = a};
    MemoryRegion rb = {.name = "b", .base = 1ULL << 40, .size = 16, .ram = b};

    memset(a, 0, 16);
    memset(b, 0, 16);
    address_space_add(as, &ra);
    address_space_add(as, &rb);
    /* a terabyte-wide gap must not be walked byte by byte */
    /* 8 bytes of a, the gap, then 4 bytes of b */
    g_assert_false(address_space_fill(as, 8, 0x5a, (1ULL << 40) - 4));
    for (int i = 0; i < 16; i++) {
        g_assert_cmphex(a[i], ==, i < 8 ? 0 : 0x5a);
        g_assert_cmphex(b[i], ==, i < 4 ? 0x5a : 0);
    }
    g_assert_true(address_space_fill(as, 0, 0x11, 16));
    g_assert_false(address_space_fill(as, 1ULL << 41, 0x11, UINT64_MAX));
    address_space_free(as);
}

static void test_ram_ptr_only_inside_one_region(void)
{
    AddressSpace *as = address_space_new("test");
    uint8_t ram[32];
    MemoryRegion r = {.name = "ram", .base = 0x100, .size = 32, .ram = ram};

    address_space_add(as, &r);
    g_assert_true(address_space_ram_ptr(as, 0x100, 32) == ram);
    g_assert_true(address_space_ram_ptr(as, 0x110, 16) == ram + 16);
    g_assert_null(address_space_ram_ptr(as, 0x110, 17));
    g_assert_null(address_space_ram_ptr(as, 0x110, UINT64_MAX));
    g_assert_null(address_space_ram_ptr(as, 0x0, 1));
    address_space_free(as);
}

static void test_overlap_is_a_programming_error(void)
{
    if (g_test_subprocess()) {
        AddressSpace *as = address_space_new("test");
        uint8_t ram[32];
        MemoryRegion a = {.name = "a", .base = 0, .size = 32, .ram = ram};
        MemoryRegion b = {.name = "b", .base = 31, .size = 2, .ram = ram};
        address_space_add(as, &a);
        address_space_add(as, &b);
        return;
    }
    g_test_trap_subprocess(NULL, 0, 0);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*region 'b' overlaps 'a'*");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/memory/lookup/finds-every-region", test_lookup_finds_every_region);
    g_test_add_func("/memory/lookup/region-at-top-of-address-space",
                    test_region_at_top_of_address_space);
    g_test_add_func("/memory/mmio/device-gets-relative-offset",
                    test_mmio_gets_relative_offset);
    g_test_add_func("/memory/mmio/bad-accesses-never-reach-the-device",
                    test_mmio_rejects_bad_accesses_before_device);
    g_test_add_func("/memory/mmio/default-sizes-are-1-to-8",
                    test_mmio_default_sizes_are_1_to_8);
    g_test_add_func("/memory/rw/spans-ram-mmio-and-gaps",
                    test_rw_spans_ram_mmio_and_gaps);
    g_test_add_func("/memory/rw/mmio-uses-widest-aligned-accesses",
                    test_rw_mmio_uses_widest_aligned_accesses);
    g_test_add_func("/memory/fill/skips-gaps", test_fill_skips_gaps);
    g_test_add_func("/memory/ram-ptr/only-inside-one-region",
                    test_ram_ptr_only_inside_one_region);
    g_test_add_func("/memory/add/overlap-is-a-programming-error",
                    test_overlap_is_a_programming_error);
    return g_test_run();
}
