/*
 * Freestanding runtime of the test guest: port and MMIO access, serial
 * console, a small printf, the boot command line, timing and exit.
 */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* isa-debug-exit port: writing V ends tpmvm with status (V << 1) | 1. */
#define GUEST_DEBUG_EXIT_PORT 0xf4
#define GUEST_EXIT_PASS 0 /* tpmvm exit status 1 */
#define GUEST_EXIT_FAIL 1 /* tpmvm exit status 3 */

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;

    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c,
                         uint32_t *d)
{
    __asm__ volatile("cpuid"
                     : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
                     : "a"(leaf), "c"(0));
}

/* The zero page tpmvm passes in RSI (Linux struct boot_params layout). */
void guest_set_boot_params(const void *zero_page);
const char *guest_cmdline(void);
/* Value of "key=value" on the command line, copied into buf; false if absent. */
bool guest_cmdline_get(const char *key, char *buf, size_t len);
unsigned long guest_cmdline_uint(const char *key, unsigned long def);

void guest_putc(char c);
void guest_puts(const char *s);
void guest_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void guest_vprintf(const char *fmt, va_list ap);
int guest_snprintf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int guest_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap);

/* TSC ticks per microsecond (CPUID 0x40000010 from tpmvm, else a guess). */
uint64_t guest_tsc_per_us(void);
uint64_t guest_now_us(void);

void guest_exit(int code) __attribute__((noreturn));

void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
