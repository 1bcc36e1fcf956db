/*
 * The TPM demo without KVM: starts tpmvm with the qtest accelerator and the
 * given TPM options, and runs the test guest's own TIS driver and demo
 * sequence (tpm-tests.c) on the host, each register access going through
 * the qtest protocol instead of a guest instruction. Used by
 * scripts/run-demo.sh when /dev/kvm is not usable.
 *
 *   TPMVM_BINARY=build/tpmvm tpm-qtest-demo [--mode demo|check] \
 *       [--payload FILE] -- TPMVM-ARGS...
 *
 * Exit status 0 when every step passed, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "libqtest.h"
#include "tpm-tests.h"

/* The tpmvm process every plat_* call talks to. */
static QTestState *qts;

uint32_t plat_mmio_read(uint64_t addr, unsigned size)
{
    switch (size) {
    case 1:
        return qtest_readb(qts, addr);
    case 2:
        return qtest_readw(qts, addr);
    default:
        return qtest_readl(qts, addr);
    }
}

void plat_mmio_write(uint64_t addr, unsigned size, uint32_t val)
{
    switch (size) {
    case 1:
        qtest_writeb(qts, addr, (uint8_t)val);
        break;
    case 2:
        qtest_writew(qts, addr, (uint16_t)val);
        break;
    default:
        qtest_writel(qts, addr, val);
        break;
    }
}

uint64_t plat_now_us(void)
{
    return (uint64_t)g_get_monotonic_time();
}

void plat_relax(void)
{
    g_usleep(50);
}

/* qtest has no CPU to interrupt: the driver polls. */
bool plat_irq_available(void)
{
    return false;
}

uint64_t plat_irq_count(unsigned irq)
{
    return 0;
}

void plat_irq_enable(unsigned irq)
{
}

bool plat_irq_wait(unsigned irq, uint64_t seen, uint64_t timeout_us)
{
    return false;
}

void plat_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

int plat_snprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = g_vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

int main(int argc, char **argv)
{
    const char *mode = "demo", *payload_path = NULL, *cmdline = "mode=demo";
    g_autofree char *payload = NULL;
    g_autoptr(GString) args = g_string_new("-machine pc -m 16");
    gsize payload_len = 0;
    static TestCtx ctx;
    unsigned fails;
    int i;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            mode = argv[++i];
        } else if (!strcmp(argv[i], "--payload") && i + 1 < argc) {
            payload_path = argv[++i];
        } else if (!strcmp(argv[i], "--")) {
            i++;
            break;
        } else {
            fprintf(stderr,
                    "usage: %s [--mode demo|check] [--payload FILE] -- TPMVM-ARGS...\n",
                    argv[0]);
            return 2;
        }
    }
    for (; i < argc; i++) {
        g_autofree char *q = g_shell_quote(argv[i]);

        g_string_append_printf(args, " %s", q);
    }
    if (!g_getenv("TPMVM_BINARY")) {
        fprintf(stderr, "%s: set TPMVM_BINARY to the tpmvm binary\n", argv[0]);
        return 2;
    }
    if (payload_path &&
        !g_file_get_contents(payload_path, &payload, &payload_len, NULL)) {
        fprintf(stderr, "%s: cannot read the payload %s\n", argv[0], payload_path);
        return 2;
    }
    if (!payload) {
        payload = g_strdup("tpmvm qtest demo payload");
        payload_len = strlen(payload);
    }

    qts = qtest_init_flags(args->str, QTEST_INIT_NO_QMP);
    if (!tt_init(&ctx, (uint32_t)g_get_real_time())) {
        qtest_quit(qts);
        return 1;
    }
    if (!strcmp(mode, "check")) {
        fails = tt_run_check(&ctx, TIS_XFER_BYTE, true, true);
        fails += tt_run_check(&ctx, TIS_XFER_BURST, false, true);
    } else {
        fails = tt_run_demo(&ctx, payload, payload_len, cmdline);
    }
    qtest_quit(qts);
    printf("RESULT: %s (%u checks, %u failed)\n", fails ? "FAIL" : "PASS", ctx.checks,
           fails);
    return fails ? 1 : 0;
}
