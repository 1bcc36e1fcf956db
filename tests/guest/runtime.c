/*
 * Test guest runtime: the C library pieces the guest uses, the serial console
 * (polled 16550 at 0x3f8), the command line from the zero page and exit
 * through the debug-exit port.
 */
#include "guest.h"

#define COM1 0x3f8
#define UART_LSR 5
#define UART_LSR_THRE 0x20
/* boot_params.hdr.cmd_line_ptr (Linux boot protocol). */
#define BP_CMD_LINE_PTR 0x228

static const char *cmdline = "";

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;

    while (n--) {
        *dp++ = *sp++;
    }
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;

    if (dp < sp) {
        return memcpy(d, s, n);
    }
    while (n--) {
        dp[n] = sp[n];
    }
    return d;
}

void *memset(void *d, int c, size_t n)
{
    uint8_t *dp = d;

    while (n--) {
        *dp++ = (uint8_t)c;
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *ap = a, *bp = b;

    for (size_t i = 0; i < n; i++) {
        if (ap[i] != bp[i]) {
            return ap[i] - bp[i];
        }
    }
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n]) {
        n++;
    }
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i] || !a[i]) {
            return (uint8_t)a[i] - (uint8_t)b[i];
        }
    }
    return 0;
}

int strcmp(const char *a, const char *b)
{
    return strncmp(a, b, (size_t)-1);
}

void guest_set_boot_params(const void *zero_page)
{
    const uint8_t *zp = zero_page;
    uint32_t ptr;

    if (!zp) {
        return;
    }
    memcpy(&ptr, zp + BP_CMD_LINE_PTR, 4);
    if (ptr) {
        cmdline = (const char *)(uintptr_t)ptr;
    }
}

const char *guest_cmdline(void)
{
    return cmdline;
}

bool guest_cmdline_get(const char *key, char *buf, size_t len)
{
    size_t klen = strlen(key);
    const char *p = cmdline;

    while (*p) {
        const char *tok = p;
        size_t tlen = 0;

        while (tok[tlen] && tok[tlen] != ' ') {
            tlen++;
        }
        if (tlen > klen && strncmp(tok, key, klen) == 0 && tok[klen] == '=') {
            size_t vlen = tlen - klen - 1;

            if (vlen >= len) {
                vlen = len - 1;
            }
            memcpy(buf, tok + klen + 1, vlen);
            buf[vlen] = 0;
            return true;
        }
        p = tok + tlen;
        while (*p == ' ') {
            p++;
        }
    }
    return false;
}

unsigned long guest_cmdline_uint(const char *key, unsigned long def)
{
    char buf[24];
    unsigned long v = 0;

    if (!guest_cmdline_get(key, buf, sizeof(buf)) || !buf[0]) {
        return def;
    }
    for (char *p = buf; *p; p++) {
        if (*p < '0' || *p > '9') {
            return def;
        }
        v = v * 10 + (unsigned long)(*p - '0');
    }
    return v;
}

void guest_putc(char c)
{
    if (c == '\n') {
        guest_putc('\r');
    }
    while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE)) {
    }
    outb(COM1, (uint8_t)c);
}

void guest_puts(const char *s)
{
    while (*s) {
        guest_putc(*s++);
    }
}

/* Output sink for the formatter: the console, or a bounded buffer. */
typedef struct Sink {
    char *buf;
    size_t len, pos;
} Sink;

static void sink_put(Sink *s, char c)
{
    if (!s->buf) {
        guest_putc(c);
        return;
    }
    if (s->pos + 1 < s->len) {
        s->buf[s->pos] = c;
    }
    s->pos++;
}

static void sink_num(Sink *s, uint64_t v, unsigned base, int width, char pad, bool neg)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg) {
        tmp[n++] = '-';
    }
    while (width-- > n) {
        sink_put(s, pad);
    }
    while (n) {
        sink_put(s, tmp[--n]);
    }
}

/* %d %u %x %s %c %p %%, with 0/width and l/ll/z length modifiers. */
static void sink_vprintf(Sink *s, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        int width = 0, lng = 0;
        char pad = ' ';

        if (*fmt != '%') {
            sink_put(s, *fmt);
            continue;
        }
        fmt++;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }
        while (*fmt == 'l' || *fmt == 'z') {
            lng++;
            fmt++;
        }
        switch (*fmt) {
        case 'd': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);

            sink_num(s, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, width, pad, v < 0);
            break;
        }
        case 'u':
            sink_num(s, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, width, pad,
                     false);
            break;
        case 'x':
            sink_num(s, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, width, pad,
                     false);
            break;
        case 'p':
            sink_num(s, (uintptr_t)va_arg(ap, void *), 16, width, pad, false);
            break;
        case 'c':
            sink_put(s, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            int len = (int)strlen(str ? str : "(null)");

            while (width-- > len) {
                sink_put(s, ' ');
            }
            for (const char *p = str ? str : "(null)"; *p; p++) {
                sink_put(s, *p);
            }
            break;
        }
        case '%':
            sink_put(s, '%');
            break;
        default:
            sink_put(s, '?');
            break;
        }
    }
}

void guest_vprintf(const char *fmt, va_list ap)
{
    Sink s = {0};

    sink_vprintf(&s, fmt, ap);
}

void guest_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    guest_vprintf(fmt, ap);
    va_end(ap);
}

int guest_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
    Sink s = {.buf = buf, .len = len};

    sink_vprintf(&s, fmt, ap);
    if (len) {
        buf[s.pos < len ? s.pos : len - 1] = 0;
    }
    return (int)s.pos;
}

int guest_snprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = guest_vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

uint64_t guest_tsc_per_us(void)
{
    static uint64_t per_us;
    uint32_t a, b, c, d;

    if (!per_us) {
        cpuid(0x40000000, &a, &b, &c, &d);
        if (a >= 0x40000010) {
            cpuid(0x40000010, &a, &b, &c, &d);
            per_us = a / 1000;
        }
        if (!per_us) {
            per_us = 2000; /* no timing leaf: assume 2 GHz */
        }
    }
    return per_us;
}

uint64_t guest_now_us(void)
{
    return rdtsc() / guest_tsc_per_us();
}

void guest_exit(int code)
{
    outb(GUEST_DEBUG_EXIT_PORT, (uint8_t)code);
    for (;;) {
        __asm__ volatile("cli; hlt");
    }
}
