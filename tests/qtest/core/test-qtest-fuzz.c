/*
 * Thousands of random protocol lines - garbage, truncated commands, valid
 * commands with hostile numbers - must each get exactly one reply and leave a
 * server that still answers correctly. The seed is fixed so a failure
 * reproduces; set QTEST_FUZZ_SEED to explore others.
 */
#include <stdlib.h>
#include <string.h>

#include "libqtest.h"

#define FUZZ_LINES 5000

static const struct {
    const char *name;
    int args;
} commands[] = {
    {"readb", 1},
    {"readw", 1},
    {"readl", 1},
    {"readq", 1},
    {"writeb", 2},
    {"writew", 2},
    {"writel", 2},
    {"writeq", 2},
    {"inb", 1},
    {"inw", 1},
    {"inl", 1},
    {"outb", 2},
    {"outw", 2},
    {"outl", 2},
    {"read", 2},
    {"write", 3},
    {"b64read", 2},
    {"b64write", 3},
    {"memset", 3},
    {"clock_step", 1},
    {"clock_set", 1},
    {"irq_intercept_in", 1},
    {"irq_intercept_out", 1},
    {"set_irq_in", 4},
    {"endianness", 0},
    {"module_load", 1},
};

/* A number that is often a boundary. */
static void append_number(GString *s, GRand *r)
{
    static const char *const edges[] = {
        "0",
        "1",
        "0x0",
        "0xffffffffffffffff",
        "18446744073709551616",
        "-1",
        "0x",
        "4294967295",
        "0x7fffffffffffffff",
        "65535",
        "65536",
        "16777216",
        "16777217",
        "0xfed40000",
        "0x7ffffff",
        "0x8000000",
        "0100",
        "09",
        "1e3",
        "+5",
        " ",
    };

    switch (g_rand_int_range(r, 0, 4)) {
    case 0:
        g_string_append(s, edges[g_rand_int_range(r, 0, G_N_ELEMENTS(edges))]);
        break;
    case 1:
        g_string_append_printf(s, "0x%x", g_rand_int_range(r, 0, 0x100000));
        break;
    case 2:
        g_string_append_printf(s, "%u", g_rand_int_range(r, 0, 4096));
        break;
    default:
        g_string_append_printf(s, "0x%08x%08x", g_rand_int(r), g_rand_int(r));
        break;
    }
}

static void append_garbage(GString *s, GRand *r, int max)
{
    int n = g_rand_int_range(r, 0, max);

    for (int i = 0; i < n; i++) {
        char c = (char)g_rand_int_range(r, 1, 256);
        g_string_append_c(s, c == '\n' ? ' ' : c);
    }
}

static void make_line(GString *s, GRand *r)
{
    int kind = g_rand_int_range(r, 0, 10);

    g_string_truncate(s, 0);
    if (kind == 0) {
        append_garbage(s, r, 200);
        return;
    }
    if (kind == 1) {
        /* longer than the 64 KiB limit now and then */
        g_string_append(s, "write 0x0 8 0x");
        append_garbage(s, r, g_rand_boolean(r) ? 100 : 70000);
        return;
    }
    int c = g_rand_int_range(r, 0, G_N_ELEMENTS(commands));
    g_string_append(s, commands[c].name);
    /* mostly the right number of arguments, so the handlers get exercised */
    int nargs = g_rand_int_range(r, 0, 4) ? commands[c].args : g_rand_int_range(r, 0, 6);
    for (int n = nargs; n > 0; n--) {
        g_string_append_c(s, ' ');
        if (g_rand_int_range(r, 0, 8) == 0) {
            g_string_append(s, g_rand_boolean(r) ? "ioapic" : "AQIDBA==");
        } else if (g_rand_int_range(r, 0, 8) == 0) {
            g_string_append(s, "0x");
            for (int k = g_rand_int_range(r, 0, 40); k > 0; k--) {
                g_string_append_c(s, "0123456789abcdefg"[g_rand_int_range(r, 0, 17)]);
            }
        } else {
            append_number(s, r);
        }
    }
}

static void test_random_lines_get_one_reply_each(void)
{
    QTestState *qts = qtest_init_without_qmp("-machine pc -m 16");
    const char *seed_env = g_getenv("QTEST_FUZZ_SEED");
    guint32 seed = seed_env ? (guint32)strtoul(seed_env, NULL, 0) : 20240601;
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);
    g_autoptr(GString) line = g_string_new(NULL);
    int ok = 0, fail = 0, err = 0;

    g_test_message("seed %u", seed);
    for (int i = 0; i < FUZZ_LINES; i++) {
        g_autofree char *rsp = NULL;

        make_line(line, r);
        qtest_send_bytes(qts, line->str, line->len);
        qtest_send_bytes(qts, "\n", 1);
        rsp = qtest_recv_line(qts);
        if (g_str_has_prefix(rsp, "OK")) {
            ok++;
        } else if (g_str_has_prefix(rsp, "FAIL")) {
            fail++;
        } else if (g_str_has_prefix(rsp, "ERR")) {
            err++;
        } else {
            g_error("line %d (%.60s...): unexpected reply '%.80s'", i, line->str, rsp);
        }
    }
    g_test_message("OK %d, FAIL %d, ERR %d", ok, fail, err);
    /* the generator reaches all three kinds of reply */
    g_assert_cmpint(ok, >, 1000);
    g_assert_cmpint(fail, >, 100);
    g_assert_cmpint(err, >, 100);
    /* still fully functional */
    qtest_writel(qts, 0x1000, 0x600dc0de);
    g_assert_cmphex(qtest_readl(qts, 0x1000), ==, 0x600dc0de);
    g_assert_cmphex(qtest_readl(qts, 0xfed40000), ==, 0xffffffff);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qtest/fuzz/random-lines-get-one-reply-each",
                    test_random_lines_get_one_reply_each);
    return g_test_run();
}
