/*
 * Guest RAM and buses of the pc machine through the qtest protocol: typed
 * accesses, hex and base64 transfers, memset, I/O ports, unassigned space.
 */
#include <string.h>

#include "libqtest.h"

static void test_ram_readl_round_trip(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 64");

    g_assert_cmphex(qtest_readl(qts, 0x1000), ==, 0);
    qtest_writel(qts, 0x1000, 0xdeadbeef);
    g_assert_cmphex(qtest_readl(qts, 0x1000), ==, 0xdeadbeef);
    qtest_quit(qts);
}

static void test_ram_sizes_are_little_endian(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 64");

    qtest_writeq(qts, 0x2000, 0x0102030405060708ULL);
    g_assert_cmphex(qtest_readb(qts, 0x2000), ==, 0x08);
    g_assert_cmphex(qtest_readw(qts, 0x2000), ==, 0x0708);
    g_assert_cmphex(qtest_readl(qts, 0x2004), ==, 0x01020304);
    g_assert_cmphex(qtest_readq(qts, 0x2000), ==, 0x0102030405060708ULL);
    qtest_writeb(qts, 0x2001, 0xaa);
    qtest_writew(qts, 0x2002, 0xbbcc);
    g_assert_cmphex(qtest_readl(qts, 0x2000), ==, 0xbbccaa08);
    qtest_quit(qts);
}

static void test_ram_hex_and_base64_transfers(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 64");
    /* bigger than one protocol chunk, so the client splits it */
    size_t len = 40000;
    g_autofree uint8_t *data = g_malloc(len);
    g_autofree uint8_t *back = g_malloc(len);

    for (size_t i = 0; i < len; i++) {
        data[i] = (uint8_t)(i * 7 + 3);
    }
    qtest_memwrite(qts, 0x10000, data, len);
    qtest_bufread(qts, 0x10000, back, len);
    g_assert_cmpmem(data, len, back, len);
    memset(back, 0, len);
    qtest_bufwrite(qts, 0x40000, data, len);
    qtest_memread(qts, 0x40000, back, len);
    g_assert_cmpmem(data, len, back, len);
    qtest_quit(qts);
}

static void test_ram_memset_fills_exactly(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 64");
    uint8_t buf[34];

    qtest_memset(qts, 0x3000, 0xa5, 32);
    qtest_memread(qts, 0x2fff, buf, sizeof(buf));
    g_assert_cmphex(buf[0], ==, 0);
    for (int i = 1; i <= 32; i++) {
        g_assert_cmphex(buf[i], ==, 0xa5);
    }
    g_assert_cmphex(buf[33], ==, 0);
    /* size 0 is allowed and writes nothing */
    qtest_memset(qts, 0x2fff, 0x11, 0);
    g_assert_cmphex(qtest_readb(qts, 0x2fff), ==, 0);
    qtest_quit(qts);
}

static void test_ram_top_and_unassigned_space(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 64");
    uint64_t top = 64ULL << 20;

    qtest_writel(qts, top - 4, 0x11223344);
    g_assert_cmphex(qtest_readl(qts, top - 4), ==, 0x11223344);
    /* past the end of RAM: all-ones, writes ignored */
    qtest_writel(qts, top, 0);
    g_assert_cmphex(qtest_readl(qts, top), ==, 0xffffffff);
    g_assert_cmphex(qtest_readq(qts, 0xfffffffffffffff8ULL), ==, UINT64_MAX);
    /* an access straddling the end of RAM is refused as a whole */
    g_assert_cmphex(qtest_readl(qts, top - 2), ==, 0xffffffff);
    /* no device on these ports */
    g_assert_cmphex(qtest_inb(qts, 0x80), ==, 0xff);
    g_assert_cmphex(qtest_inw(qts, 0x80), ==, 0xffff);
    g_assert_cmphex(qtest_inl(qts, 0x80), ==, 0xffffffff);
    qtest_outb(qts, 0x80, 1);
    qtest_outw(qts, 0x80, 1);
    qtest_outl(qts, 0x80, 1);
    qtest_quit(qts);
}

static void test_ram_above_4g_when_large(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 4G");

    qtest_writel(qts, 0xbffffffc, 0xcafef00d);
    g_assert_cmphex(qtest_readl(qts, 0xbffffffc), ==, 0xcafef00d);
    /* the hole below 4 GiB is not RAM */
    g_assert_cmphex(qtest_readl(qts, 0xc0000000), ==, 0xffffffff);
    qtest_writel(qts, 0x100000000ULL, 0x5a5a5a5a);
    g_assert_cmphex(qtest_readl(qts, 0x100000000ULL), ==, 0x5a5a5a5a);
    g_assert_cmphex(qtest_readl(qts, 0x140000000ULL - 4), ==, 0);
    g_assert_cmphex(qtest_readl(qts, 0x140000000ULL), ==, 0xffffffff);
    qtest_quit(qts);
}

static void test_none_machine_has_no_ram(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine none");

    qtest_writel(qts, 0, 0x12345678);
    g_assert_cmphex(qtest_readl(qts, 0), ==, 0xffffffff);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qtest/memory/ram/readl-round-trip", test_ram_readl_round_trip);
    g_test_add_func("/qtest/memory/ram/sizes-are-little-endian",
                    test_ram_sizes_are_little_endian);
    g_test_add_func("/qtest/memory/ram/hex-and-base64-transfers-round-trip",
                    test_ram_hex_and_base64_transfers);
    g_test_add_func("/qtest/memory/ram/memset-fills-exactly",
                    test_ram_memset_fills_exactly);
    g_test_add_func("/qtest/memory/unassigned/reads-all-ones-and-ignores-writes",
                    test_ram_top_and_unassigned_space);
    g_test_add_func("/qtest/memory/ram/above-4g-when-large",
                    test_ram_above_4g_when_large);
    g_test_add_func("/qtest/memory/machine-none/has-no-ram",
                    test_none_machine_has_no_ram);
    return g_test_run();
}
