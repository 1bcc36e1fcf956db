/*
 * KVM state in snapshots: one "kvm-vm" section (the in-kernel 8259s, IOAPIC,
 * PIT and kvmclock) and one "kvm-vcpu" section per vCPU (registers, special
 * registers, XSAVE area or FPU, XCRs, local APIC, pending events, MP state and
 * the MSRs a guest OS keeps its state in). Payloads are the KVM UAPI
 * structures as the kernel defines them (x86-64 layout), which is what makes
 * them loadable into a later tpmvm on another host kernel.
 *
 * Saving and loading run in the main thread with the vCPUs stopped (the
 * snapshot code stops them first), so the vCPU ioctls here do not race with
 * KVM_RUN. A stream is hostile input: every length is checked, the MSR list
 * only names MSRs of the table below, and KVM itself validates the values.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "accel/kvm-internal.h"
#include "hw/core/vmstate.h"
#include "util/error.h"

#define KVM_VCPU_SECTION "kvm-vcpu"
#define KVM_VM_SECTION "kvm-vm"
#define KVM_VCPU_HAS_XSAVE 0x1

/* MSRs that carry guest OS state beyond KVM_GET_SREGS (Intel SDM vol. 4;
 * Linux's kvm_para.h for the 0x4b564dxx ones). */
static const uint32_t kvm_saved_msrs[] = {
    0x10,       /* IA32_TSC */
    0x174,      /* IA32_SYSENTER_CS */
    0x175,      /* IA32_SYSENTER_ESP */
    0x176,      /* IA32_SYSENTER_EIP */
    0x1a0,      /* IA32_MISC_ENABLE */
    0x277,      /* IA32_PAT */
    0x6e0,      /* IA32_TSC_DEADLINE */
    0xc0000081, /* STAR */
    0xc0000082, /* LSTAR */
    0xc0000083, /* CSTAR */
    0xc0000084, /* SFMASK */
    0xc0000102, /* KERNEL_GS_BASE */
    0xc0000103, /* TSC_AUX */
    0x11,       /* MSR_KVM_WALL_CLOCK */
    0x12,       /* MSR_KVM_SYSTEM_TIME */
    0x4b564d00, /* MSR_KVM_WALL_CLOCK_NEW */
    0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
    0x4b564d02, /* MSR_KVM_ASYNC_PF_EN */
    0x4b564d03, /* MSR_KVM_STEAL_TIME */
    0x4b564d04, /* MSR_KVM_PV_EOI_EN */
};
#define KVM_MSR_RECORD 16 /* u32 index, u32 zero, u64 value */

/* Fixed part of a kvm-vcpu payload, in this order. */
typedef struct KVMVCpuBlob {
    uint32_t flags;
    uint32_t nmsrs;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_lapic_state lapic;
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp;
} KVMVCpuBlob;

static bool kvm_have_xsave(void)
{
    return ioctl(kvm_vm_fd(), KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0 &&
           ioctl(kvm_vm_fd(), KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
}

static size_t kvm_vcpu_fpu_size(uint32_t flags)
{
    return (flags & KVM_VCPU_HAS_XSAVE)
               ? sizeof(struct kvm_xsave) + sizeof(struct kvm_xcrs)
               : sizeof(struct kvm_fpu);
}

static bool kvm_vcpu_ioctl(int fd, unsigned long req, void *arg, const char *name,
                           unsigned index, GError **errp)
{
    if (ioctl(fd, req, arg) < 0) {
        error_set_errno(errp, errno,
                        "vmstate section '" KVM_VCPU_SECTION "' %u: %s failed", index,
                        name);
        return false;
    }
    return true;
}

static unsigned kvm_vcpu_index(void *opaque)
{
    return (unsigned)(uintptr_t)opaque;
}

static bool kvm_vcpu_save(void *opaque, GByteArray *out, GError **errp)
{
    unsigned index = kvm_vcpu_index(opaque);
    int fd = kvm_vcpu_fd(index);
    KVMVCpuBlob b;

    memset(&b, 0, sizeof(b));
    b.flags = kvm_have_xsave() ? KVM_VCPU_HAS_XSAVE : 0;
    if (!kvm_vcpu_ioctl(fd, KVM_GET_REGS, &b.regs, "KVM_GET_REGS", index, errp) ||
        !kvm_vcpu_ioctl(fd, KVM_GET_SREGS, &b.sregs, "KVM_GET_SREGS", index, errp) ||
        !kvm_vcpu_ioctl(fd, KVM_GET_LAPIC, &b.lapic, "KVM_GET_LAPIC", index, errp) ||
        !kvm_vcpu_ioctl(fd, KVM_GET_VCPU_EVENTS, &b.events, "KVM_GET_VCPU_EVENTS", index,
                        errp) ||
        !kvm_vcpu_ioctl(fd, KVM_GET_MP_STATE, &b.mp, "KVM_GET_MP_STATE", index, errp)) {
        return false;
    }
    /* MSRs one at a time: a host that lacks one just does not save it. */
    g_autoptr(GByteArray) msrs = g_byte_array_new();
    for (size_t i = 0; i < G_N_ELEMENTS(kvm_saved_msrs); i++) {
        struct {
            struct kvm_msrs hdr;
            struct kvm_msr_entry e;
        } m = {.hdr.nmsrs = 1, .e.index = kvm_saved_msrs[i]};
        uint8_t rec[KVM_MSR_RECORD] = {0};

        if (ioctl(fd, KVM_GET_MSRS, &m) == 1) {
            memcpy(rec, &m.e.index, 4);
            memcpy(rec + 8, &m.e.data, 8);
            g_byte_array_append(msrs, rec, sizeof(rec));
            b.nmsrs++;
        }
    }
    g_byte_array_append(out, (const uint8_t *)&b, sizeof(b));
    if (b.flags & KVM_VCPU_HAS_XSAVE) {
        struct kvm_xsave xsave;
        struct kvm_xcrs xcrs;

        if (!kvm_vcpu_ioctl(fd, KVM_GET_XSAVE, &xsave, "KVM_GET_XSAVE", index, errp) ||
            !kvm_vcpu_ioctl(fd, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS", index, errp)) {
            return false;
        }
        g_byte_array_append(out, (const uint8_t *)&xsave, sizeof(xsave));
        g_byte_array_append(out, (const uint8_t *)&xcrs, sizeof(xcrs));
    } else {
        struct kvm_fpu fpu;

        if (!kvm_vcpu_ioctl(fd, KVM_GET_FPU, &fpu, "KVM_GET_FPU", index, errp)) {
            return false;
        }
        g_byte_array_append(out, (const uint8_t *)&fpu, sizeof(fpu));
    }
    g_byte_array_append(out, msrs->data, msrs->len);
    return true;
}

static bool kvm_bad(GError **errp, const char *section, const char *what)
{
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_CORRUPT, "vmstate section '%s': %s",
                section, what);
    return false;
}

static bool kvm_vcpu_check(void *opaque, const uint8_t *buf, size_t len, int version_id,
                           GError **errp)
{
    KVMVCpuBlob b;
    uint64_t want;

    if (len < sizeof(b)) {
        return kvm_bad(errp, KVM_VCPU_SECTION, "too short");
    }
    memcpy(&b, buf, sizeof(b));
    if (b.flags & ~(uint32_t)KVM_VCPU_HAS_XSAVE) {
        return kvm_bad(errp, KVM_VCPU_SECTION, "unknown flags");
    }
    if ((b.flags & KVM_VCPU_HAS_XSAVE) && !kvm_have_xsave()) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "vmstate section '" KVM_VCPU_SECTION "': the snapshot holds an XSAVE "
                    "area but this host's KVM has no XSAVE support; load it on a host "
                    "that has");
        return false;
    }
    if (b.nmsrs > G_N_ELEMENTS(kvm_saved_msrs)) {
        return kvm_bad(errp, KVM_VCPU_SECTION, "too many MSRs");
    }
    want = sizeof(b) + kvm_vcpu_fpu_size(b.flags) + (uint64_t)b.nmsrs * KVM_MSR_RECORD;
    if (len != want) {
        return kvm_bad(errp, KVM_VCPU_SECTION, "length does not match its MSR count");
    }
    for (uint32_t i = 0; i < b.nmsrs; i++) {
        const uint8_t *rec =
            buf + sizeof(b) + kvm_vcpu_fpu_size(b.flags) + (size_t)i * KVM_MSR_RECORD;
        uint32_t index, zero;
        bool known = false;

        memcpy(&index, rec, 4);
        memcpy(&zero, rec + 4, 4);
        for (size_t k = 0; k < G_N_ELEMENTS(kvm_saved_msrs); k++) {
            known |= kvm_saved_msrs[k] == index;
        }
        if (!known || zero) {
            return kvm_bad(errp, KVM_VCPU_SECTION, "names an MSR tpmvm does not save");
        }
    }
    if (kvm_vcpu_index(opaque) >= kvm_vcpu_count()) {
        return kvm_bad(errp, KVM_VCPU_SECTION, "for a vCPU this VM does not have");
    }
    return true;
}

static bool kvm_vcpu_load(void *opaque, const uint8_t *buf, size_t len, int version_id,
                          GError **errp)
{
    unsigned index = kvm_vcpu_index(opaque);
    int fd = kvm_vcpu_fd(index);
    const uint8_t *p;
    KVMVCpuBlob b;

    if (!kvm_vcpu_check(opaque, buf, len, version_id, errp)) {
        return false;
    }
    memcpy(&b, buf, sizeof(b));
    p = buf + sizeof(b);
    /* sregs before regs and events: they set the mode the others belong to. */
    if (!kvm_vcpu_ioctl(fd, KVM_SET_SREGS, &b.sregs, "KVM_SET_SREGS", index, errp) ||
        !kvm_vcpu_ioctl(fd, KVM_SET_REGS, &b.regs, "KVM_SET_REGS", index, errp)) {
        return false;
    }
    if (b.flags & KVM_VCPU_HAS_XSAVE) {
        struct kvm_xsave xsave;
        struct kvm_xcrs xcrs;

        memcpy(&xsave, p, sizeof(xsave));
        memcpy(&xcrs, p + sizeof(xsave), sizeof(xcrs));
        if (!kvm_vcpu_ioctl(fd, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS", index, errp) ||
            !kvm_vcpu_ioctl(fd, KVM_SET_XSAVE, &xsave, "KVM_SET_XSAVE", index, errp)) {
            return false;
        }
    } else {
        struct kvm_fpu fpu;

        memcpy(&fpu, p, sizeof(fpu));
        if (!kvm_vcpu_ioctl(fd, KVM_SET_FPU, &fpu, "KVM_SET_FPU", index, errp)) {
            return false;
        }
    }
    p += kvm_vcpu_fpu_size(b.flags);
    for (uint32_t i = 0; i < b.nmsrs; i++, p += KVM_MSR_RECORD) {
        struct {
            struct kvm_msrs hdr;
            struct kvm_msr_entry e;
        } m = {.hdr.nmsrs = 1};

        memcpy(&m.e.index, p, 4);
        memcpy(&m.e.data, p + 8, 8);
        if (ioctl(fd, KVM_SET_MSRS, &m) != 1) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "vmstate section '" KVM_VCPU_SECTION
                        "' %u: this host refuses MSR "
                        "0x%x = 0x%llx",
                        index, m.e.index, (unsigned long long)m.e.data);
            return false;
        }
    }
    if (!kvm_vcpu_ioctl(fd, KVM_SET_LAPIC, &b.lapic, "KVM_SET_LAPIC", index, errp) ||
        !kvm_vcpu_ioctl(fd, KVM_SET_VCPU_EVENTS, &b.events, "KVM_SET_VCPU_EVENTS", index,
                        errp) ||
        !kvm_vcpu_ioctl(fd, KVM_SET_MP_STATE, &b.mp, "KVM_SET_MP_STATE", index, errp)) {
        return false;
    }
    kvm_vcpu_state_loaded(index);
    return true;
}

static const VMStateDescription kvm_vcpu_vmsd = {
    .name = KVM_VCPU_SECTION,
    .version_id = 1,
    .minimum_version_id = 1,
    .save = kvm_vcpu_save,
    .check = kvm_vcpu_check,
    .load = kvm_vcpu_load,
};

/* kvm-vm: PIC master, PIC slave, IOAPIC, PIT, clock. */
typedef struct KVMVMBlob {
    struct kvm_irqchip chip[3];
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
} KVMVMBlob;

static bool kvm_vm_ioctl_err(unsigned long req, void *arg, const char *name,
                             GError **errp)
{
    if (ioctl(kvm_vm_fd(), req, arg) < 0) {
        error_set_errno(errp, errno, "vmstate section '" KVM_VM_SECTION "': %s failed",
                        name);
        return false;
    }
    return true;
}

static bool kvm_vm_save(void *opaque, GByteArray *out, GError **errp)
{
    static const int ids[3] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
                               KVM_IRQCHIP_IOAPIC};
    KVMVMBlob b;

    memset(&b, 0, sizeof(b));
    for (int i = 0; i < 3; i++) {
        b.chip[i].chip_id = ids[i];
        if (!kvm_vm_ioctl_err(KVM_GET_IRQCHIP, &b.chip[i], "KVM_GET_IRQCHIP", errp)) {
            return false;
        }
    }
    if (!kvm_vm_ioctl_err(KVM_GET_PIT2, &b.pit, "KVM_GET_PIT2", errp) ||
        !kvm_vm_ioctl_err(KVM_GET_CLOCK, &b.clock, "KVM_GET_CLOCK", errp)) {
        return false;
    }
    g_byte_array_append(out, (const uint8_t *)&b, sizeof(b));
    return true;
}

static bool kvm_vm_check(void *opaque, const uint8_t *buf, size_t len, int version_id,
                         GError **errp)
{
    KVMVMBlob b;

    if (len != sizeof(b)) {
        return kvm_bad(errp, KVM_VM_SECTION, "wrong length");
    }
    memcpy(&b, buf, sizeof(b));
    if (b.chip[0].chip_id != KVM_IRQCHIP_PIC_MASTER ||
        b.chip[1].chip_id != KVM_IRQCHIP_PIC_SLAVE ||
        b.chip[2].chip_id != KVM_IRQCHIP_IOAPIC) {
        return kvm_bad(errp, KVM_VM_SECTION, "interrupt controllers out of order");
    }
    return true;
}

static bool kvm_vm_load(void *opaque, const uint8_t *buf, size_t len, int version_id,
                        GError **errp)
{
    KVMVMBlob b;

    if (!kvm_vm_check(opaque, buf, len, version_id, errp)) {
        return false;
    }
    memcpy(&b, buf, sizeof(b));
    /* The clock goes on from the saved time; only the value is set. */
    b.clock.flags = 0;
    for (int i = 0; i < 3; i++) {
        if (!kvm_vm_ioctl_err(KVM_SET_IRQCHIP, &b.chip[i], "KVM_SET_IRQCHIP", errp)) {
            return false;
        }
    }
    return kvm_vm_ioctl_err(KVM_SET_PIT2, &b.pit, "KVM_SET_PIT2", errp) &&
           kvm_vm_ioctl_err(KVM_SET_CLOCK, &b.clock, "KVM_SET_CLOCK", errp);
}

static const VMStateDescription kvm_vm_vmsd = {
    .name = KVM_VM_SECTION,
    .version_id = 1,
    .minimum_version_id = 1,
    .save = kvm_vm_save,
    .check = kvm_vm_check,
    .load = kvm_vm_load,
};

void kvm_vmstate_register(void)
{
    vmstate_register(KVM_VM_SECTION, 0, &kvm_vm_vmsd, NULL);
    for (unsigned i = 0; i < kvm_vcpu_count(); i++) {
        vmstate_register(KVM_VCPU_SECTION, (int)i, &kvm_vcpu_vmsd, (void *)(uintptr_t)i);
    }
}
