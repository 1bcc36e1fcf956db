/*
 * IDT, 8259 PIC set-up and the common interrupt handler of the test guest.
 * PIC programming: Intel 8259A datasheet (ICW1-ICW4, OCW1 mask, OCW2 EOI).
 */
#include "irq.h"

#include "guest.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIC_EOI 0x20
#define PIT_CH0 0x40
#define PIT_MODE 0x43

typedef struct __attribute__((packed)) IdtEntry {
    uint16_t off_lo;
    uint16_t sel;
    uint8_t ist;
    uint8_t type;
    uint16_t off_mid;
    uint32_t off_hi;
    uint32_t zero;
} IdtEntry;

extern const uint64_t isr_table[48];
static IdtEntry idt[48] __attribute__((aligned(16)));
static volatile uint64_t irq_counts[16];
static uint8_t pic_mask[2] = {0xfb, 0xff}; /* cascade line 2 open */

void guest_interrupt(uint64_t vector, uint64_t error, uint64_t rip);

void guest_interrupt(uint64_t vector, uint64_t error, uint64_t rip)
{
    if (vector < IRQ_VECTOR_BASE) {
        guest_printf("FAIL: CPU exception %u (error 0x%lx) at RIP 0x%lx\n",
                     (unsigned)vector, error, rip);
        guest_exit(GUEST_EXIT_FAIL);
    }
    unsigned irq = (unsigned)(vector - IRQ_VECTOR_BASE);

    irq_counts[irq]++;
    if (irq >= 8) {
        outb(PIC2_CMD, PIC_EOI);
    }
    outb(PIC1_CMD, PIC_EOI);
}

void irq_init(void)
{
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};

    for (int i = 0; i < 48; i++) {
        uint64_t a = isr_table[i];

        idt[i] = (IdtEntry){
            .off_lo = (uint16_t)a,
            .sel = 0x10,
            .type = 0x8e, /* present, DPL 0, 64-bit interrupt gate */
            .off_mid = (uint16_t)(a >> 16),
            .off_hi = (uint32_t)(a >> 32),
        };
    }
    __asm__ volatile("lidt %0" : : "m"(idtr));

    /* ICW1: edge, cascade, ICW4 follows; ICW2: vector base; ICW3: wiring;
     * ICW4: 8086 mode. */
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, IRQ_VECTOR_BASE);
    outb(PIC2_DATA, IRQ_VECTOR_BASE + 8);
    outb(PIC1_DATA, 0x04);
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, pic_mask[0]);
    outb(PIC2_DATA, pic_mask[1]);
}

static void pic_apply(void)
{
    outb(PIC1_DATA, pic_mask[0]);
    outb(PIC2_DATA, pic_mask[1]);
}

void irq_enable_line(unsigned irq)
{
    if (irq < 16) {
        pic_mask[irq / 8] &= (uint8_t) ~(1u << (irq % 8));
        pic_apply();
    }
}

void irq_disable_line(unsigned irq)
{
    if (irq < 16 && irq != 2) {
        pic_mask[irq / 8] |= (uint8_t)(1u << (irq % 8));
        pic_apply();
    }
}

uint64_t irq_count(unsigned irq)
{
    return irq < 16 ? irq_counts[irq] : 0;
}

/*
 * Wait with interrupts enabled. The PIT (IRQ 0, ~1 kHz while waiting) wakes
 * hlt periodically so that the timeout is noticed even without the awaited
 * interrupt.
 */
bool irq_wait(unsigned irq, uint64_t seen, uint64_t timeout_us)
{
    uint64_t start = guest_now_us();
    bool ok = false;

    outb(PIT_MODE, 0x34); /* channel 0, lo/hi byte, rate generator */
    outb(PIT_CH0, 1193 & 0xff);
    outb(PIT_CH0, 1193 >> 8);
    irq_enable_line(0);
    for (;;) {
        __asm__ volatile("cli");
        if (irq_count(irq) > seen) {
            ok = true;
            break;
        }
        if (guest_now_us() - start > timeout_us) {
            break;
        }
        /* sti takes effect after the next instruction: no lost wake-up. */
        __asm__ volatile("sti; hlt");
    }
    __asm__ volatile("cli");
    irq_disable_line(0);
    return ok;
}
