/*
 * The TPM test guest: a freestanding ELF64 that drives tpmvm's TPM TIS like
 * an OS driver and reports on the serial port. The mode comes from the
 * command line (-append), read from the zero page tpmvm passes in RSI:
 *
 *   mode=check     driver checks, byte-wise and burst (xfer=byte|burst|both),
 *                  plus interrupt-driven completion (irq=1)
 *   mode=demo      measured boot: TPM identity, random bytes, PCR 8/9
 *                  measurements (measure-bytes=N of the image, default 4096),
 *                  boot counter in NV
 *   mode=nv-write token=T / mode=nv-read token=T   NV persistence across runs
 *   mode=reset     boot half of the reset scenario, then idle ("boot N")
 *   mode=loop      GetRandom forever, printing "tick N" after a checked PCR 16
 *                  extend every 10 commands (stop/cont, savevm/loadvm)
 *   mode=hostile   random register storm (rounds=N, seed=N), then a command
 *   mode=bench     commands per second, MMIO accesses per command, exit cost
 *   mode=hello     print and exit
 *   mode=exit code=N            exit through the debug port with value N
 *   mode=reset-cf9|reset-kbd|triple-fault   reset the machine that way
 *   mode=uart      16550 checks as Linux's 8250 probe makes them
 *   mode=echo      read a line from the serial port (RX interrupt), echo it
 *
 * The guest exits through isa-debug-exit (port 0xf4): 0 = pass (tpmvm exit
 * status 1), 1 = fail (status 3). It prints "RESULT: PASS|FAIL" before.
 */
#include "guest.h"
#include "irq.h"
#include "sha256.h"
#include "tpm-tests.h"

/* Linker-provided bounds of the image (guest.ld). */
extern const uint8_t __image_start[], __text_end[];

void guest_main(const void *zero_page);

/* Platform layer of tpm-plat.h for the guest. The inline assembly makes
 * every access exactly one instruction of the requested width. */
uint32_t plat_mmio_read(uint64_t addr, unsigned size)
{
    volatile void *p = (volatile void *)(uintptr_t)addr;
    uint32_t v;

    switch (size) {
    case 1: {
        uint8_t b;

        __asm__ volatile("movb %1, %0" : "=q"(b) : "m"(*(volatile uint8_t *)p));
        return b;
    }
    case 2: {
        uint16_t w;

        __asm__ volatile("movw %1, %0" : "=r"(w) : "m"(*(volatile uint16_t *)p));
        return w;
    }
    default:
        __asm__ volatile("movl %1, %0" : "=r"(v) : "m"(*(volatile uint32_t *)p));
        return v;
    }
}

void plat_mmio_write(uint64_t addr, unsigned size, uint32_t val)
{
    volatile void *p = (volatile void *)(uintptr_t)addr;

    switch (size) {
    case 1:
        __asm__ volatile("movb %1, %0"
                         : "=m"(*(volatile uint8_t *)p)
                         : "q"((uint8_t)val));
        break;
    case 2:
        __asm__ volatile("movw %1, %0"
                         : "=m"(*(volatile uint16_t *)p)
                         : "r"((uint16_t)val));
        break;
    default:
        __asm__ volatile("movl %1, %0" : "=m"(*(volatile uint32_t *)p) : "r"(val));
        break;
    }
}

uint64_t plat_now_us(void)
{
    return guest_now_us();
}

void plat_relax(void)
{
    __asm__ volatile("pause");
}

bool plat_irq_available(void)
{
    return true;
}

uint64_t plat_irq_count(unsigned irq)
{
    return irq_count(irq);
}

void plat_irq_enable(unsigned irq)
{
    irq_enable_line(irq);
}

bool plat_irq_wait(unsigned irq, uint64_t seen, uint64_t timeout_us)
{
    return irq_wait(irq, seen, timeout_us);
}

void plat_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    guest_vprintf(fmt, ap);
    va_end(ap);
}

int plat_snprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = guest_vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

static bool streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Bench: how long one operation takes and how many MMIO accesses it makes. */
typedef int (*BenchOp)(TestCtx *t, unsigned i);

static int bench_getrandom(TestCtx *t, unsigned i __attribute__((unused)))
{
    uint8_t r[32];
    uint16_t got;

    return tpm2_get_random(&t->tpm, r, sizeof(r), &got);
}

static int bench_extend(TestCtx *t, unsigned i)
{
    uint8_t d[32];

    memset(d, (int)i, sizeof(d));
    return tpm2_pcr_extend(&t->tpm, TT_PCR_CHECK, d);
}

static int bench_nv_write(TestCtx *t, unsigned i)
{
    uint8_t d[32];

    memset(d, (int)i, sizeof(d));
    return tpm2_nv_write(&t->tpm, TT_NV_CHECK_INDEX, d, sizeof(d), 0);
}

/* Round trip of one MMIO exit: reads of an address no device claims (ns). */
static uint64_t bench_exit_ns(unsigned n)
{
    uint64_t t0 = rdtsc();

    for (unsigned i = 0; i < n; i++) {
        plat_mmio_read(0xfeb00000, 4);
    }
    return (rdtsc() - t0) * 1000 / guest_tsc_per_us() / n;
}

/* Cost of one iteration of an empty loop: ~1 ns natively, much more where
 * the host emulates guest kernel code (PVM). */
static uint64_t bench_loop_ns(unsigned n)
{
    uint64_t t0 = rdtsc();

    for (unsigned i = 0; i < n; i++) {
        __asm__ volatile("");
    }
    return (rdtsc() - t0) * 1000 / guest_tsc_per_us() / n;
}

/*
 * One operation for at least min_us: time per op, MMIO accesses per op, and
 * the exit cost measured right before (the host's load changes over time).
 */
static void bench_one(TestCtx *t, const char *name, BenchOp op, unsigned min_iters,
                      uint64_t min_us)
{
    uint64_t exit_ns = bench_exit_ns(2000);
    uint64_t acc0 = t->tis.accesses, t0 = guest_now_us(), t1;
    unsigned n = 0;

    for (;;) {
        int rc = op(t, n);

        if (rc) {
            guest_printf("BENCH op=%s error=%s\n", name, t->tpm.err);
            t->failures++;
            return;
        }
        n++;
        t1 = guest_now_us();
        if (n >= min_iters && t1 - t0 >= min_us) {
            break;
        }
    }
    guest_printf("BENCH op=%s xfer=%s n=%u total_us=%lu ns_per_op=%lu mmio_per_op=%lu "
                 "exit_ns=%lu\n",
                 name, t->tis.xfer == TIS_XFER_BURST ? "burst" : "byte", n, t1 - t0,
                 (t1 - t0) * 1000 / n, (t->tis.accesses - acc0) / n, exit_ns);
}

static void bench_platform(unsigned n)
{
    uint64_t t0, t1;

    guest_printf("BENCH op=mmio-exit n=%u ns_per_exit=%lu\n", n, bench_exit_ns(n));
    t0 = rdtsc();
    for (unsigned i = 0; i < n; i++) {
        inb(0x510);
    }
    t1 = rdtsc();
    guest_printf("BENCH op=pio-exit n=%u ns_per_exit=%lu\n", n,
                 (t1 - t0) * 1000 / guest_tsc_per_us() / n);
    guest_printf("BENCH op=guest-loop n=%u ns_per_iteration=%lu\n", n * 10,
                 bench_loop_ns(n * 10));
}

static void run_bench(TestCtx *t, TisXfer xfer, uint64_t min_us)
{
    t->tis.xfer = xfer;
    bench_one(t, "getrandom", bench_getrandom, 20, min_us);
    bench_one(t, "pcr-extend", bench_extend, 20, min_us);
    bench_one(t, "nv-write", bench_nv_write, 10, min_us);
}

static unsigned mode_bench(TestCtx *t)
{
    uint64_t min_us = guest_cmdline_uint("bench-ms", 1000) * 1000;
    char xfer[16] = "both";

    if (!tt_startup(t, false)) {
        return 1;
    }
    if (tpm2_nv_define(&t->tpm, TT_NV_CHECK_INDEX,
                       TPMA_NV_OWNERWRITE | TPMA_NV_AUTHWRITE | TPMA_NV_OWNERREAD |
                           TPMA_NV_AUTHREAD | TPMA_NV_NO_DA,
                       32) != 0) {
        tpm2_nv_undefine(&t->tpm, TT_NV_CHECK_INDEX);
        tt_check(t,
                 tpm2_nv_define(&t->tpm, TT_NV_CHECK_INDEX,
                                TPMA_NV_OWNERWRITE | TPMA_NV_AUTHWRITE |
                                    TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA,
                                32) == 0,
                 "define the bench NV index", t->tpm.err);
    }
    bench_platform((unsigned)guest_cmdline_uint("exit-iters", 5000));
    guest_cmdline_get("xfer", xfer, sizeof(xfer));
    if (!streq(xfer, "burst")) {
        run_bench(t, TIS_XFER_BYTE, min_us);
    }
    if (!streq(xfer, "byte")) {
        run_bench(t, TIS_XFER_BURST, min_us);
    }
    tpm2_nv_undefine(&t->tpm, TT_NV_CHECK_INDEX);
    return t->failures;
}

static unsigned mode_check(TestCtx *t)
{
    char xfer[16] = "both";
    bool strict = guest_cmdline_uint("strict-startup", 1) != 0;
    bool first = true;

    guest_cmdline_get("xfer", xfer, sizeof(xfer));
    if (!streq(xfer, "burst")) {
        tt_run_check(t, TIS_XFER_BYTE, first, strict);
        first = false;
    }
    if (!streq(xfer, "byte")) {
        tt_run_check(t, TIS_XFER_BURST, first, strict);
    }
    if (guest_cmdline_uint("irq", 0)) {
        tt_run_irq_check(t);
    }
    return t->failures;
}

static void idle_forever(void)
{
    for (;;) {
        __asm__ volatile("sti; hlt");
    }
}

static void mode_reset(TestCtx *t)
{
    uint64_t counter = 0;
    unsigned fails = tt_run_reset_boot(t, &counter);

    guest_printf("RESET-BOOT counter=%u result=%s\n", (unsigned)counter,
                 fails ? "FAIL" : "PASS");
    if (fails) {
        guest_exit(GUEST_EXIT_FAIL);
    }
    idle_forever();
}

/*
 * GetRandom forever; every 10 commands a PCR 16 extend whose result is
 * checked against the value the guest computes itself ("tick N"). After a
 * loadvm the guest's memory and the TPM's PCRs must still agree.
 */
static void mode_loop(TestCtx *t)
{
    uint8_t r[8], pcr[32], expect[32], d[32], cat[64];
    uint16_t got;

    if (!tt_startup(t, false) || tpm2_pcr_read(&t->tpm, TT_PCR_CHECK, expect) != 0) {
        guest_exit(GUEST_EXIT_FAIL);
    }
    for (uint64_t i = 1;; i++) {
        if (tpm2_get_random(&t->tpm, r, sizeof(r), &got) != 0) {
            guest_printf("not ok - GetRandom in loop: %s\n", t->tpm.err);
            guest_exit(GUEST_EXIT_FAIL);
        }
        if (i % 10 != 0) {
            continue;
        }
        memset(d, (int)(i / 10), sizeof(d));
        memcpy(cat, expect, 32);
        memcpy(cat + 32, d, 32);
        sha256(cat, sizeof(cat), expect);
        if (tpm2_pcr_extend(&t->tpm, TT_PCR_CHECK, d) != 0 ||
            tpm2_pcr_read(&t->tpm, TT_PCR_CHECK, pcr) != 0) {
            guest_printf("not ok - PCR 16 in loop: %s\n", t->tpm.err);
            guest_exit(GUEST_EXIT_FAIL);
        }
        if (memcmp(pcr, expect, 32) != 0) {
            guest_printf(
                "not ok - PCR 16 differs from the guest's own value at tick %lu\n",
                i / 10);
            guest_exit(GUEST_EXIT_FAIL);
        }
        guest_printf("tick %lu\n", i / 10);
    }
}

/* 16550 registers (PC16550D). */
#define COM1 0x3f8
#define UART_IER 1
#define UART_IIR 2
#define UART_FCR 2
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

static bool uart_check(const char *what, bool ok, unsigned val, unsigned *fails)
{
    guest_printf("%s - UART %s (read 0x%02x)\n", ok ? "ok" : "not ok", what, val);
    *fails += !ok;
    return ok;
}

/* The register behaviour an OS probe relies on (Linux 8250 autoconfig). */
static unsigned mode_uart(void)
{
    unsigned fails = 0, v, msr, lsr, rbr;

    outb(COM1 + UART_SCR, 0x55);
    v = inb(COM1 + UART_SCR);
    outb(COM1 + UART_SCR, 0xaa);
    v = v << 8 | inb(COM1 + UART_SCR);
    uart_check("scratch register keeps 0x55 and 0xaa", v == 0x55aa, v & 0xff, &fails);
    outb(COM1 + UART_IER, 0x0f);
    v = inb(COM1 + UART_IER);
    outb(COM1 + UART_IER, 0);
    uart_check("IER keeps 0x0f", v == 0x0f, v, &fails);
    /* Loopback: modem outputs wired to inputs, transmitted bytes received. */
    outb(COM1 + UART_MCR, 0x1a);
    msr = inb(COM1 + UART_MSR) & 0xf0;
    outb(COM1, 'Z');
    lsr = inb(COM1 + UART_LSR);
    rbr = inb(COM1);
    outb(COM1 + UART_MCR, 0x0b);
    uart_check("loopback MSR is 0x90 for MCR 0x1a", msr == 0x90, msr, &fails);
    uart_check("loopback byte shows data ready", lsr & 1, lsr, &fails);
    uart_check("loopback byte reads back", rbr == 'Z', rbr, &fails);
    outb(COM1 + UART_FCR, 0x07);
    v = inb(COM1 + UART_IIR);
    outb(COM1 + UART_FCR, 0);
    uart_check("FIFO enable shows in IIR bits 7:6", (v & 0xc0) == 0xc0, v, &fails);
    v = inb(COM1 + UART_LSR);
    uart_check("transmitter empty", (v & 0x60) == 0x60, v, &fails);
    return fails;
}

/* Read one line on the RX interrupt (IRQ 4 through the PIC) and echo it. */
static unsigned mode_echo(void)
{
    char line[80];
    size_t n = 0;
    uint64_t deadline = guest_now_us() + 30000000;

    /* Input that came before this point stays: enabling the RX interrupt
     * with data waiting raises it at once. */
    outb(COM1 + UART_IER, 0x01);
    irq_enable_line(4);
    guest_printf("echo: ready\n");
    /* Nothing is read before the first RX interrupt: that is what is tested. */
    if (!irq_wait(4, 0, 30000000)) {
        guest_printf("not ok - no serial interrupt within 30 s\n");
        return 1;
    }
    while (n < sizeof(line) - 1) {
        uint64_t seen = irq_count(4);

        if (!(inb(COM1 + UART_LSR) & 1)) {
            if (guest_now_us() > deadline) {
                guest_printf("not ok - no serial input within 30 s\n");
                return 1;
            }
            irq_wait(4, seen, 100000);
            continue;
        }
        line[n] = (char)inb(COM1);
        if (line[n] == '\n' || line[n] == '\r') {
            break;
        }
        n++;
    }
    line[n] = 0;
    outb(COM1 + UART_IER, 0);
    guest_printf("echo: '%s' (%u serial interrupts)\n", line, (unsigned)irq_count(4));
    return irq_count(4) ? 0 : 1;
}

static void mode_reset_machine(const char *how)
{
    guest_printf("resetting via %s\n", how);
    if (streq(how, "reset-cf9")) {
        outb(0xcf9, 0x02);
        outb(0xcf9, 0x06);
    } else if (streq(how, "reset-kbd")) {
        outb(0x64, 0xfe);
    } else {
        /* No IDT at all: the next exception cannot be delivered. */
        struct __attribute__((packed)) {
            uint16_t limit;
            uint64_t base;
        } idtr = {0, 0};

        __asm__ volatile("lidt %0; ud2" : : "m"(idtr));
    }
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}

void guest_main(const void *zero_page)
{
    char mode[24] = "check", token[TT_NV_TOKEN_SIZE] = "tpmvm";
    TestCtx *t;
    static TestCtx ctx;
    unsigned fails = 0;

    guest_set_boot_params(zero_page);
    irq_init();
    guest_cmdline_get("mode", mode, sizeof(mode));
    guest_cmdline_get("token", token, sizeof(token));
    guest_printf("tpmvm test guest: mode %s, command line '%s'\n", mode, guest_cmdline());
    if (streq(mode, "hello")) {
        guest_printf("RESULT: PASS\n");
        guest_exit(GUEST_EXIT_PASS);
    } else if (streq(mode, "exit")) {
        guest_exit((int)guest_cmdline_uint("code", 0));
    } else if (streq(mode, "reset-cf9") || streq(mode, "reset-kbd") ||
               streq(mode, "triple-fault")) {
        mode_reset_machine(mode);
    } else if (streq(mode, "uart") || streq(mode, "echo")) {
        fails = streq(mode, "uart") ? mode_uart() : mode_echo();
        guest_printf("RESULT: %s\n", fails ? "FAIL" : "PASS");
        guest_exit(fails ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS);
    }

    t = &ctx;
    if (!tt_init(t, (uint32_t)guest_cmdline_uint("seed", (unsigned long)rdtsc()))) {
        guest_printf("RESULT: FAIL\n");
        guest_exit(GUEST_EXIT_FAIL);
    }
    if (streq(mode, "check")) {
        fails = mode_check(t);
    } else if (streq(mode, "demo")) {
        /* The first 4 KiB of the code (entry page and runtime): hashing it
         * all takes seconds where the host emulates guest kernel code. */
        size_t len = (size_t)(__text_end - __image_start);

        fails = tt_run_demo(t, __image_start,
                            guest_cmdline_uint("measure-bytes", 4096) < len
                                ? guest_cmdline_uint("measure-bytes", 4096)
                                : len,
                            guest_cmdline());
    } else if (streq(mode, "nv-write")) {
        fails = tt_run_nv_write(t, token);
    } else if (streq(mode, "nv-read")) {
        fails = tt_run_nv_read(t, token);
    } else if (streq(mode, "reset")) {
        mode_reset(t);
    } else if (streq(mode, "loop")) {
        mode_loop(t);
    } else if (streq(mode, "hostile")) {
        fails = tt_run_hostile(t, (unsigned)guest_cmdline_uint("rounds", 3000));
    } else if (streq(mode, "bench")) {
        fails = mode_bench(t);
    } else {
        guest_printf("not ok - unknown mode '%s'\n", mode);
        fails = 1;
    }
    if (!t->quiet) {
        guest_printf("1..%u\n", t->checks);
    }
    guest_printf("RESULT: %s (%u checks, %u failed)\n", fails ? "FAIL" : "PASS",
                 t->checks, fails);
    guest_exit(fails ? GUEST_EXIT_FAIL : GUEST_EXIT_PASS);
}
