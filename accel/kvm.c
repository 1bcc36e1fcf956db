/*
 * KVM accelerator: VM setup, vCPU threads and the exit loop.
 *
 * Threads: each vCPU thread runs KVM_RUN and handles port I/O and MMIO exits
 * by taking the big lock and calling address_space_read/write on the
 * machine's I/O and memory spaces. The main thread pauses, resumes and resets
 * vCPUs through AccelOps: it sets a per-vCPU request under kvm.lock, kicks
 * the thread out of the guest (immediate_exit + SIG_KICK) and waits on
 * kvm.cond. Only a vCPU's own thread issues ioctls on its fd while the VM
 * runs (KVM serialises them anyway, but a second caller would block behind
 * KVM_RUN); snapshot code (kvm-vmstate.c) uses them with the vCPUs stopped.
 */
#include "system/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "accel/kvm-internal.h"
#include "hw/core/memory.h"
#include "hw/i386/pc-devices.h"
#include "hw/i386/x86-boot.h"
#include "system/accel.h"
#include "system/main-loop.h"
#include "system/runstate.h"
#include "util/error.h"
#include "util/log.h"
#include "util/trace.h"

/* The signal that kicks a vCPU thread out of KVM_RUN. */
#define SIG_KICK SIGUSR1

/* Guest-physical pages KVM needs for VMX real-mode emulation: above RAM,
 * below the BIOS area at the top of 4 GiB (same spots kvmtool/QEMU use). */
#define KVM_TSS_ADDR 0xfffbd000ULL
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL

/* Local APIC registers (Intel SDM vol. 3, 11.5.1). */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x400
#define APIC_MODE_EXTINT 0x700
#define APIC_LVT_MASKED 0x10000

/* Paravirtual MSRs a previous guest may have left pointing into RAM; KVM
 * keeps writing to those pages until they are disabled (Linux kvm_para.h). */
static const uint32_t kvm_pv_msrs[] = {
    0x11,       /* MSR_KVM_WALL_CLOCK */
    0x12,       /* MSR_KVM_SYSTEM_TIME */
    0x4b564d00, /* MSR_KVM_WALL_CLOCK_NEW */
    0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
    0x4b564d02, /* MSR_KVM_ASYNC_PF_EN */
    0x4b564d03, /* MSR_KVM_STEAL_TIME */
    0x4b564d04, /* MSR_KVM_PV_EOI_EN */
};

typedef struct KVMVCpu {
    int index;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    pthread_t thread;
    bool thread_started;
    struct kvm_sregs reset_sregs; /* KVM's power-on state */
    struct kvm_lapic_state reset_lapic;
    /* vCPU thread only: an I/O or MMIO exit was served but the instruction
     * has not completed yet (it completes on the next KVM_RUN) */
    bool io_pending;
    /* guarded by kvm.lock */
    bool stop;        /* the main thread wants the vCPU out of the guest */
    bool stopped;     /* the vCPU acknowledged and waits */
    bool parked;      /* shut down (triple fault, error): waits for a reset */
    bool needs_reset; /* load the reset/boot state before the next KVM_RUN */
} KVMVCpu;

/* The one VM of this process (there is one machine per process). */
static struct {
    int fd;
    int vm_fd;
    MachineState *ms;
    KVMVCpu *cpus;
    unsigned ncpus;
    struct kvm_cpuid2 *cpuid;
    struct kvm_irqchip reset_pic[3]; /* PIC master, PIC slave, IOAPIC */
    struct kvm_pit_state2 reset_pit;
    GMutex lock;
    GCond cond;
    bool quit;
    /* exit counters (atomic) */
    uint64_t exits_mmio, exits_io, exits_other;
} kvm = {.fd = -1, .vm_fd = -1};
/* kvm.lock and kvm.cond are statically initialised GLib objects (zeroed). */

static __thread KVMVCpu *current_vcpu;

int kvm_vm_fd(void)
{
    return kvm.vm_fd;
}

unsigned kvm_vcpu_count(void)
{
    return kvm.ncpus;
}

int kvm_vcpu_fd(unsigned index)
{
    return index < kvm.ncpus ? kvm.cpus[index].fd : -1;
}

void kvm_vcpu_state_loaded(unsigned index)
{
    g_mutex_lock(&kvm.lock);
    if (index < kvm.ncpus) {
        kvm.cpus[index].needs_reset = false;
        kvm.cpus[index].parked = false;
    }
    g_mutex_unlock(&kvm.lock);
}

void kvm_get_exit_stats(KVMExitStats *out)
{
    out->mmio = __atomic_load_n(&kvm.exits_mmio, __ATOMIC_RELAXED);
    out->io = __atomic_load_n(&kvm.exits_io, __ATOMIC_RELAXED);
    out->other = __atomic_load_n(&kvm.exits_other, __ATOMIC_RELAXED);
}

static int kvm_ioctl(int fd, unsigned long req, void *arg)
{
    int r;

    do {
        r = ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR);
    return r;
}

/* Explain a failure to open /dev/kvm: which errno, and what to do. */
static void kvm_set_open_error(GError **errp, int err)
{
    const char *hint;

    switch (err) {
    case ENOENT:
        hint = "the KVM kernel module is not loaded or the host has no hardware "
               "virtualization; load kvm_intel or kvm_amd (modprobe), or use "
               "-accel qtest";
        break;
    case EACCES:
    case EPERM:
        hint = "this user may not use it; add the user to the 'kvm' group or run "
               "as root";
        break;
    case ENODEV:
    case ENXIO:
        hint = "the device node exists but no KVM driver answers; load kvm_intel or "
               "kvm_amd (modprobe)";
        break;
    default:
        hint = "check the KVM kernel module (dmesg) or use -accel qtest";
        break;
    }
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "could not open " KVM_DEVICE_PATH ": %s; %s", g_strerror(err), hint);
}

static int kvm_open_device(GError **errp)
{
    int fd = open(KVM_DEVICE_PATH, O_RDWR | O_CLOEXEC);
    int version;

    if (fd < 0) {
        kvm_set_open_error(errp, errno);
        return -1;
    }
    version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version < 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "KVM_GET_API_VERSION on " KVM_DEVICE_PATH " failed: %s; it is not a "
                    "KVM device (check the kvm modules, or use -accel qtest)",
                    g_strerror(errno));
        close(fd);
        return -1;
    }
    if (version != KVM_API_VERSION) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "" KVM_DEVICE_PATH " reports API version %d, tpmvm needs "
                    "%d; the host kernel is too old or too new for this build",
                    version, KVM_API_VERSION);
        close(fd);
        return -1;
    }
    return fd;
}

static bool kvm_require_caps(int fd, GError **errp)
{
    static const struct {
        int cap;
        const char *name;
    } caps[] = {
        {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
        {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
        {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
        {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
        {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
        {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(caps); i++) {
        if (ioctl(fd, KVM_CHECK_EXTENSION, caps[i].cap) <= 0) {
            g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                        "" KVM_DEVICE_PATH " lacks %s, which tpmvm needs; "
                        "use a newer host kernel or -accel qtest",
                        caps[i].name);
            return false;
        }
    }
    return true;
}

bool kvm_check_available(GError **errp)
{
    int fd = kvm_open_device(errp);
    bool ok;

    if (fd < 0) {
        return false;
    }
    ok = kvm_require_caps(fd, errp);
    close(fd);
    return ok;
}

/* A VM ioctl that must succeed; the message names the ioctl and errno. */
static bool kvm_vm_ioctl(unsigned long req, const char *name, void *arg, GError **errp)
{
    if (kvm_ioctl(kvm.vm_fd, req, arg) < 0) {
        error_set_errno(errp, errno, "%s failed", name);
        return false;
    }
    return true;
}

static struct kvm_cpuid2 *kvm_get_supported_cpuid(GError **errp)
{
    for (unsigned n = 64; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c =
            g_malloc0(sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));

        c->nent = n;
        if (ioctl(kvm.fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            return c;
        }
        g_free(c);
        if (errno != E2BIG) {
            error_set_errno(errp, errno, "KVM_GET_SUPPORTED_CPUID failed");
            return NULL;
        }
    }
    g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                "KVM_GET_SUPPORTED_CPUID returned too many entries");
    return NULL;
}

/*
 * The host-supported CPUID with per-vCPU fix-ups: the APIC ID of this vCPU,
 * the hypervisor bit, and the TSC frequency in the timing leaf 0x40000010
 * (EAX = kHz) that guests such as the test guest use to turn TSC ticks into
 * time.
 */
static bool kvm_vcpu_set_cpuid(KVMVCpu *cpu, GError **errp)
{
    size_t size =
        sizeof(*kvm.cpuid) + (kvm.cpuid->nent + 1) * sizeof(struct kvm_cpuid_entry2);
    g_autofree struct kvm_cpuid2 *c = g_malloc0(size);
    int tsc_khz = ioctl(cpu->fd, KVM_GET_TSC_KHZ, 0);
    bool have_hv_base = false;

    memcpy(c, kvm.cpuid,
           sizeof(*kvm.cpuid) + kvm.cpuid->nent * sizeof(struct kvm_cpuid_entry2));
    for (unsigned i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];

        switch (e->function) {
        case 1:
            e->ebx = (e->ebx & 0x00ffffff) | ((uint32_t)cpu->index << 24);
            e->ecx |= 1u << 31; /* running under a hypervisor */
            break;
        case 0xb:
        case 0x1f:
            e->edx = cpu->index; /* x2APIC ID */
            break;
        case 0x40000000:
            have_hv_base = true;
            if (tsc_khz > 0 && e->eax < 0x40000010) {
                e->eax = 0x40000010;
            }
            break;
        }
    }
    if (have_hv_base && tsc_khz > 0) {
        struct kvm_cpuid_entry2 *e = &c->entries[c->nent++];

        memset(e, 0, sizeof(*e));
        e->function = 0x40000010;
        e->eax = tsc_khz;
    }
    if (kvm_ioctl(cpu->fd, KVM_SET_CPUID2, c) < 0) {
        error_set_errno(errp, errno, "KVM_SET_CPUID2 failed on vCPU %d", cpu->index);
        return false;
    }
    return true;
}

static bool kvm_vcpu_create(KVMVCpu *cpu, int index, GError **errp)
{
    int mmap_size = ioctl(kvm.fd, KVM_GET_VCPU_MMAP_SIZE, 0);

    cpu->index = index;
    cpu->fd = ioctl(kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
    if (cpu->fd < 0) {
        error_set_errno(errp, errno, "KVM_CREATE_VCPU %d failed", index);
        return false;
    }
    if (mmap_size < (int)sizeof(struct kvm_run)) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "KVM_GET_VCPU_MMAP_SIZE returned %d", mmap_size);
        return false;
    }
    cpu->run_size = mmap_size;
    cpu->run = mmap(NULL, cpu->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, cpu->fd, 0);
    if (cpu->run == MAP_FAILED) {
        cpu->run = NULL;
        error_set_errno(errp, errno, "mapping the kvm_run area of vCPU %d", index);
        return false;
    }
    if (!kvm_vcpu_set_cpuid(cpu, errp)) {
        return false;
    }
    if (kvm_ioctl(cpu->fd, KVM_GET_SREGS, &cpu->reset_sregs) < 0 ||
        kvm_ioctl(cpu->fd, KVM_GET_LAPIC, &cpu->reset_lapic) < 0) {
        error_set_errno(errp, errno, "reading the reset state of vCPU %d", index);
        return false;
    }
    /* Virtual-wire mode as a PC BIOS leaves it: the PIC's output reaches the
     * CPU through LINT0 (ExtINT), NMIs through LINT1. */
    *(uint32_t *)(cpu->reset_lapic.regs + APIC_LVT0) = APIC_MODE_EXTINT;
    *(uint32_t *)(cpu->reset_lapic.regs + APIC_LVT1) = APIC_MODE_NMI;
    cpu->stop = true;
    cpu->needs_reset = true;
    return true;
}

static void kvm_segment_flat(struct kvm_segment *s, uint16_t sel, bool code)
{
    *s = (struct kvm_segment){
        .base = 0,
        .limit = 0xffffffff,
        .selector = sel,
        .type = code ? 0xb : 0x3, /* execute/read accessed : read/write accessed */
        .present = 1,
        .dpl = 0,
        .db = code ? 0 : 1,
        .s = 1,
        .l = code ? 1 : 0,
        .g = 1,
    };
}

/* Put a vCPU in its power-on state; the boot CPU gets the loader's state. */
static bool kvm_vcpu_reset(KVMVCpu *cpu, GError **errp)
{
    const X86BootCPUState *b = x86_boot_cpu_state();
    struct kvm_sregs sregs = cpu->reset_sregs;
    struct kvm_regs regs = {.rflags = 0x2};
    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[G_N_ELEMENTS(kvm_pv_msrs)];
    } msrs = {.hdr.nmsrs = G_N_ELEMENTS(kvm_pv_msrs)};

    if (cpu->index == 0 && b->valid) {
        kvm_segment_flat(&sregs.cs, X86_BOOT_CS, true);
        kvm_segment_flat(&sregs.ds, X86_BOOT_DS, false);
        sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
        /* A 64-bit TSS type so that VM entry checks pass; never used. */
        sregs.tr.type = 0xb;
        sregs.tr.present = 1;
        sregs.tr.s = 0;
        sregs.gdt.base = b->gdt_base;
        sregs.gdt.limit = b->gdt_limit;
        sregs.idt.base = 0;
        sregs.idt.limit = 0;
        sregs.cr0 = b->cr0;
        sregs.cr3 = b->cr3;
        sregs.cr4 = b->cr4;
        sregs.efer = b->efer;
        regs.rip = b->rip;
        regs.rsp = b->rsp;
        regs.rsi = b->rsi;
    } else if (cpu->index == 0) {
        /* No -kernel: the architectural reset vector 0xfffffff0. */
        regs.rip = 0xfff0;
    } else {
        /* Application processors wait for INIT/SIPI from the boot CPU. */
        mp.mp_state = KVM_MP_STATE_INIT_RECEIVED;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(kvm_pv_msrs); i++) {
        msrs.e[i].index = kvm_pv_msrs[i];
    }
    if (kvm_ioctl(cpu->fd, KVM_SET_SREGS, &sregs) < 0 ||
        kvm_ioctl(cpu->fd, KVM_SET_REGS, &regs) < 0 ||
        kvm_ioctl(cpu->fd, KVM_SET_FPU, &fpu) < 0 ||
        kvm_ioctl(cpu->fd, KVM_SET_LAPIC, &cpu->reset_lapic) < 0 ||
        kvm_ioctl(cpu->fd, KVM_SET_MP_STATE, &mp) < 0) {
        error_set_errno(errp, errno, "resetting vCPU %d", cpu->index);
        return false;
    }
    /* Some MSRs may not exist on this host; KVM stops at the first unknown one. */
    ioctl(cpu->fd, KVM_SET_MSRS, &msrs);
    trace_event("kvm_vcpu_reset", "cpu=%d rip=0x%llx", cpu->index,
                (unsigned long long)regs.rip);
    return true;
}

/* Wake waiters on kvm.cond (caller holds kvm.lock). */
static void kvm_broadcast(void)
{
    g_cond_broadcast(&kvm.cond);
}

/* Get a vCPU out of KVM_RUN soon (caller holds kvm.lock and set a request). */
static void kvm_vcpu_kick(KVMVCpu *cpu)
{
    if (cpu == current_vcpu || !cpu->thread_started) {
        return;
    }
    __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    pthread_kill(cpu->thread, SIG_KICK);
}

/* The vCPU stops running guest code until a reset (after a shutdown or an
 * internal error). Called on the vCPU thread. */
static void kvm_vcpu_park(KVMVCpu *cpu)
{
    g_mutex_lock(&kvm.lock);
    cpu->parked = true;
    g_mutex_unlock(&kvm.lock);
}

static gboolean kvm_stop_on_error(gpointer data)
{
    if (runstate_is_running()) {
        vm_stop(RUN_STATE_INTERNAL_ERROR);
    }
    return G_SOURCE_REMOVE;
}

/* KVM could not go on with this vCPU: report, stop the VM (as QEMU does,
 * leaving it for inspection over QMP), park the vCPU. */
static void kvm_vcpu_fail(KVMVCpu *cpu, const char *what)
{
    struct kvm_regs regs = {0};
    struct kvm_sregs sregs = {0};

    ioctl(cpu->fd, KVM_GET_REGS, &regs);
    ioctl(cpu->fd, KVM_GET_SREGS, &sregs);
    error_report("KVM: vCPU %d stopped: %s (RIP=0x%llx CR0=0x%llx CR3=0x%llx "
                 "EFER=0x%llx); the VM is paused in state internal-error",
                 cpu->index, what, (unsigned long long)regs.rip,
                 (unsigned long long)sregs.cr0, (unsigned long long)sregs.cr3,
                 (unsigned long long)sregs.efer);
    kvm_vcpu_park(cpu);
    main_loop_call(kvm_stop_on_error, NULL);
}

static void kvm_handle_io(struct kvm_run *run)
{
    AddressSpace *io = kvm.ms->io;
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;

    __atomic_fetch_add(&kvm.exits_io, 1, __ATOMIC_RELAXED);
    trace_event("kvm_exit_io", "port=0x%x size=%u count=%u %s", run->io.port, size,
                run->io.count, run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in");
    bql_lock();
    /* String I/O (rep ins/outs) repeats the access `count` times. */
    for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        uint64_t val = 0;

        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&val, data, size);
            address_space_write(io, run->io.port, size, val);
        } else {
            address_space_read(io, run->io.port, size, &val);
            memcpy(data, &val, size);
        }
    }
    bql_unlock();
}

static void kvm_handle_mmio(struct kvm_run *run)
{
    AddressSpace *as = kvm.ms->sysmem;
    uint64_t addr = run->mmio.phys_addr;
    unsigned len = run->mmio.len;
    uint64_t val = 0;

    __atomic_fetch_add(&kvm.exits_mmio, 1, __ATOMIC_RELAXED);
    trace_event("kvm_exit_mmio", "addr=0x%" PRIx64 " len=%u %s", addr, len,
                run->mmio.is_write ? "write" : "read");
    bql_lock();
    if (len == 1 || len == 2 || len == 4 || len == 8) {
        if (run->mmio.is_write) {
            memcpy(&val, run->mmio.data, len);
            address_space_write(as, addr, len, val);
        } else {
            address_space_read(as, addr, len, &val);
            memcpy(run->mmio.data, &val, len);
        }
    } else if (len <= sizeof(run->mmio.data)) {
        address_space_rw(as, addr, run->mmio.data, len, run->mmio.is_write);
    }
    bql_unlock();
}

/* Handle one exit; false when the vCPU must stop running guest code. */
static bool kvm_handle_exit(KVMVCpu *cpu)
{
    struct kvm_run *run = cpu->run;
    char what[160];

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        kvm_handle_io(run);
        return true;
    case KVM_EXIT_MMIO:
        kvm_handle_mmio(run);
        return true;
    case KVM_EXIT_INTR:
        return true;
    case KVM_EXIT_SHUTDOWN:
        /* Triple fault: a PC resets (or powers off with -no-reboot). */
        __atomic_fetch_add(&kvm.exits_other, 1, __ATOMIC_RELAXED);
        trace_event("kvm_shutdown", "cpu=%d", cpu->index);
        kvm_vcpu_park(cpu);
        pc_guest_reset_request();
        return false;
    case KVM_EXIT_SYSTEM_EVENT:
        __atomic_fetch_add(&kvm.exits_other, 1, __ATOMIC_RELAXED);
        kvm_vcpu_park(cpu);
        if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
            pc_guest_reset_request();
        } else {
            system_shutdown_request(SHUTDOWN_CAUSE_GUEST_SHUTDOWN, 0);
        }
        return false;
    case KVM_EXIT_HLT:
        /* Only without an in-kernel irqchip; ours has one. Treat as a pause. */
        __atomic_fetch_add(&kvm.exits_other, 1, __ATOMIC_RELAXED);
        g_usleep(1000);
        return true;
    case KVM_EXIT_INTERNAL_ERROR:
        g_snprintf(what, sizeof(what),
                   "KVM internal error, suberror %u (the host could not emulate a "
                   "guest instruction)",
                   run->internal.suberror);
        kvm_vcpu_fail(cpu, what);
        return false;
    case KVM_EXIT_FAIL_ENTRY:
        g_snprintf(what, sizeof(what), "VM entry failed, hardware reason 0x%llx",
                   (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        kvm_vcpu_fail(cpu, what);
        return false;
    default:
        g_snprintf(what, sizeof(what), "unexpected exit reason %u", run->exit_reason);
        kvm_vcpu_fail(cpu, what);
        return false;
    }
}

static void kvm_kick_handler(int sig)
{
    /* Nothing: the signal only interrupts KVM_RUN. */
}

/*
 * Finish the instruction of a served I/O or MMIO exit without running guest
 * code: KVM copies the data in and advances RIP only on the next KVM_RUN, and
 * immediate_exit makes that KVM_RUN return right after (KVM API doc,
 * "immediate_exit"). Without this a vCPU stopped for a snapshot would save
 * RIP at the access and repeat it after loadvm, e.g. reading one more TPM
 * FIFO byte than the guest asked for.
 */
static void kvm_vcpu_complete_io(KVMVCpu *cpu)
{
    __atomic_store_n(&cpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (ioctl(cpu->fd, KVM_RUN, 0) < 0 && errno != EINTR && errno != EAGAIN) {
        warn_report("kvm: completing an I/O exit failed: %s", g_strerror(errno));
    }
    __atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    cpu->io_pending = false;
}

static void *kvm_vcpu_thread(void *opaque)
{
    KVMVCpu *cpu = opaque;
    sigset_t set;

    current_vcpu = cpu;
    sigemptyset(&set);
    sigaddset(&set, SIG_KICK);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);

    for (;;) {
        bool reset;

        g_mutex_lock(&kvm.lock);
        while (!kvm.quit && (cpu->stop || (cpu->parked && !cpu->needs_reset))) {
            if (cpu->io_pending) {
                g_mutex_unlock(&kvm.lock);
                kvm_vcpu_complete_io(cpu);
                g_mutex_lock(&kvm.lock);
                continue;
            }
            cpu->stopped = true;
            kvm_broadcast();
            g_cond_wait(&kvm.cond, &kvm.lock);
        }
        cpu->stopped = false;
        if (kvm.quit) {
            g_mutex_unlock(&kvm.lock);
            break;
        }
        reset = cpu->needs_reset;
        cpu->needs_reset = false;
        if (reset) {
            cpu->parked = false;
        }
        g_mutex_unlock(&kvm.lock);

        if (reset) {
            g_autoptr(GError) err = NULL;

            if (!kvm_vcpu_reset(cpu, &err)) {
                error_report("%s", err->message);
                kvm_vcpu_park(cpu);
                main_loop_call(kvm_stop_on_error, NULL);
                continue;
            }
        }
        if (ioctl(cpu->fd, KVM_RUN, 0) < 0) {
            int err = errno;

            __atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
            if (err == EINTR || err == EAGAIN) {
                continue;
            }
            kvm_vcpu_fail(cpu, g_strerror(err));
            continue;
        }
        __atomic_store_n(&cpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
        kvm_handle_exit(cpu);
        cpu->io_pending = cpu->run->exit_reason == KVM_EXIT_IO ||
                          cpu->run->exit_reason == KVM_EXIT_MMIO;
    }
    return NULL;
}

/*
 * Wait until every vCPU other than the caller acknowledged its stop request.
 * The big lock is dropped while waiting: a vCPU may be blocked on it in an
 * exit handler and can only stop after that access.
 */
static void kvm_wait_stopped(void)
{
    bool had_bql = bql_locked();

    if (had_bql) {
        bql_unlock();
    }
    g_mutex_lock(&kvm.lock);
    for (;;) {
        bool all = true;

        for (unsigned i = 0; i < kvm.ncpus; i++) {
            KVMVCpu *cpu = &kvm.cpus[i];

            if (cpu != current_vcpu && cpu->thread_started && cpu->stop &&
                !cpu->stopped) {
                all = false;
                kvm_vcpu_kick(cpu);
            }
        }
        if (all) {
            break;
        }
        g_cond_wait_until(&kvm.cond, &kvm.lock, g_get_monotonic_time() + 20000);
    }
    g_mutex_unlock(&kvm.lock);
    if (had_bql) {
        bql_lock();
    }
}

static void kvm_pause_cpus(void)
{
    g_mutex_lock(&kvm.lock);
    for (unsigned i = 0; i < kvm.ncpus; i++) {
        kvm.cpus[i].stop = true;
        kvm_vcpu_kick(&kvm.cpus[i]);
    }
    g_mutex_unlock(&kvm.lock);
    kvm_wait_stopped();
}

static void kvm_resume_cpus(void)
{
    g_mutex_lock(&kvm.lock);
    for (unsigned i = 0; i < kvm.ncpus; i++) {
        kvm.cpus[i].stop = false;
    }
    kvm_broadcast();
    g_mutex_unlock(&kvm.lock);
}

/*
 * System reset: reload the guest image, put the in-kernel PIC, IOAPIC and PIT
 * back to their power-on state and have each vCPU load its reset state before
 * it runs again. vCPUs that were running keep running afterwards.
 */
static void kvm_reset_cpus(void)
{
    bool was_stopped[kvm.ncpus];

    g_mutex_lock(&kvm.lock);
    for (unsigned i = 0; i < kvm.ncpus; i++) {
        was_stopped[i] = kvm.cpus[i].stop;
        kvm.cpus[i].stop = true;
        kvm_vcpu_kick(&kvm.cpus[i]);
    }
    g_mutex_unlock(&kvm.lock);
    kvm_wait_stopped();

    x86_boot_reload(kvm.ms);
    for (int i = 0; i < 3; i++) {
        if (ioctl(kvm.vm_fd, KVM_SET_IRQCHIP, &kvm.reset_pic[i]) < 0) {
            warn_report("KVM: resetting irqchip %d failed: %s", i, g_strerror(errno));
        }
    }
    if (ioctl(kvm.vm_fd, KVM_SET_PIT2, &kvm.reset_pit) < 0) {
        warn_report("KVM: resetting the PIT failed: %s", g_strerror(errno));
    }
    for (int i = 0; i < kvm.ms->num_gsi; i++) {
        kvm.ms->gsi[i].level = 0;
    }

    g_mutex_lock(&kvm.lock);
    for (unsigned i = 0; i < kvm.ncpus; i++) {
        kvm.cpus[i].needs_reset = true;
        kvm.cpus[i].stop = was_stopped[i];
    }
    kvm_broadcast();
    g_mutex_unlock(&kvm.lock);
}

static const AccelOps kvm_accel_ops = {
    .name = "kvm",
    .reset_cpus = kvm_reset_cpus,
    .pause_cpus = kvm_pause_cpus,
    .resume_cpus = kvm_resume_cpus,
};

/* GSI level change from a device: the in-kernel PIC and IOAPIC see it. */
static void kvm_gsi_handler(void *opaque, int n, int level)
{
    struct kvm_irq_level irq = {.irq = n, .level = level};

    trace_event("kvm_irq_line", "gsi=%d level=%d", n, level);
    if (ioctl(kvm.vm_fd, KVM_IRQ_LINE, &irq) < 0) {
        warn_report("KVM: KVM_IRQ_LINE gsi %d failed: %s", n, g_strerror(errno));
    }
}

static bool kvm_save_irqchip_reset_state(GError **errp)
{
    static const int chips[3] = {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
                                 KVM_IRQCHIP_IOAPIC};

    for (int i = 0; i < 3; i++) {
        kvm.reset_pic[i].chip_id = chips[i];
        if (!kvm_vm_ioctl(KVM_GET_IRQCHIP, "KVM_GET_IRQCHIP", &kvm.reset_pic[i], errp)) {
            return false;
        }
    }
    return kvm_vm_ioctl(KVM_GET_PIT2, "KVM_GET_PIT2", &kvm.reset_pit, errp);
}

/* Register a RAM region as a memory slot (guest RAM never exits). */
static bool kvm_add_ram_slot(uint32_t slot, const MemoryRegion *mr, GError **errp)
{
    struct kvm_userspace_memory_region r = {
        .slot = slot,
        .guest_phys_addr = mr->base,
        .memory_size = mr->size,
        .userspace_addr = (uintptr_t)mr->ram,
    };

    if (((uintptr_t)mr->ram | mr->base | mr->size) & 0xfff) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "RAM region '%s' is not page-aligned (-m must be a multiple of "
                    "4 KiB)",
                    mr->name);
        return false;
    }
    if (kvm_ioctl(kvm.vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
        error_set_errno(errp, errno,
                        "KVM_SET_USER_MEMORY_REGION for '%s' (0x%" PRIx64 " bytes at "
                        "0x%" PRIx64 ") failed",
                        mr->name, mr->size, mr->base);
        return false;
    }
    return true;
}

static void kvm_close_all(void)
{
    for (unsigned i = 0; i < kvm.ncpus; i++) {
        if (kvm.cpus[i].run) {
            munmap(kvm.cpus[i].run, kvm.cpus[i].run_size);
        }
        if (kvm.cpus[i].fd >= 0) {
            close(kvm.cpus[i].fd);
        }
    }
    g_clear_pointer(&kvm.cpus, g_free);
    kvm.ncpus = 0;
    g_clear_pointer(&kvm.cpuid, g_free);
    if (kvm.vm_fd >= 0) {
        close(kvm.vm_fd);
        kvm.vm_fd = -1;
    }
    if (kvm.fd >= 0) {
        close(kvm.fd);
        kvm.fd = -1;
    }
    kvm.ms = NULL;
}

/*
 * AccelClass.init_machine: the VM, its interrupt controllers and PIT, and
 * the machine's RAM as memory slots. Devices come after this; their GSI
 * lines already lead to the in-kernel irqchip.
 */
static bool kvm_init_machine(MachineState *ms, GError **errp)
{
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    uint64_t identity = KVM_IDENTITY_MAP_ADDR;

    if (kvm.vm_fd >= 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC, "the KVM VM already exists");
        return false;
    }
    if (!ms->ram || !ms->io || !ms->sysmem || ms->num_gsi <= 0) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "machine '%s' has no RAM, I/O space or interrupt lines; use "
                    "-machine pc",
                    ms->klass ? ms->klass->name : "?");
        return false;
    }
    kvm.fd = kvm_open_device(errp);
    if (kvm.fd < 0) {
        return false;
    }
    if (!kvm_require_caps(kvm.fd, errp)) {
        goto fail;
    }
    kvm.vm_fd = ioctl(kvm.fd, KVM_CREATE_VM, 0);
    if (kvm.vm_fd < 0) {
        error_set_errno(errp, errno,
                        "KVM_CREATE_VM failed (is another hypervisor holding the "
                        "virtualization extensions?)");
        goto fail;
    }
    kvm.ms = ms;
    if (ioctl(kvm.vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
        error_set_errno(errp, errno, "KVM_SET_TSS_ADDR failed");
        goto fail;
    }
    if (ioctl(kvm.fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0 &&
        !kvm_vm_ioctl(KVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR", &identity,
                      errp)) {
        goto fail;
    }
    if (!kvm_vm_ioctl(KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", NULL, errp) ||
        !kvm_vm_ioctl(KVM_CREATE_PIT2, "KVM_CREATE_PIT2", &pit, errp) ||
        !kvm_save_irqchip_reset_state(errp)) {
        goto fail;
    }
    if (!kvm_add_ram_slot(0, &ms->ram_region, errp) ||
        (ms->ram_high_region.size && !kvm_add_ram_slot(1, &ms->ram_high_region, errp))) {
        goto fail;
    }
    kvm.cpuid = kvm_get_supported_cpuid(errp);
    if (!kvm.cpuid) {
        goto fail;
    }
    machine_route_gsi(ms, kvm_gsi_handler, NULL);
    trace_event("kvm_init", "ram=0x%" PRIx64, ms->ram_size);
    return true;

fail:
    kvm_close_all();
    return false;
}

/*
 * AccelClass.setup_vcpus: create the vCPUs and their threads (paused until
 * vm_start()) and take over pause/resume/reset.
 */
static bool kvm_setup_vcpus(MachineState *ms, GError **errp)
{
    struct sigaction sa = {.sa_handler = kvm_kick_handler};
    unsigned ncpus = MAX(ms->smp, 1);

    if (ncpus > 64) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "-smp %u: at most 64 vCPUs are supported", ncpus);
        return false;
    }
    if (!x86_boot_cpu_state()->valid) {
        g_set_error(errp, TPMVM_ERROR, TPMVM_ERROR_GENERIC,
                    "there is no firmware in tpmvm; give the guest with -kernel (a "
                    "Linux bzImage/vmlinux or an ELF64 image)");
        return false;
    }
    kvm.cpus = g_new0(KVMVCpu, ncpus);
    kvm.ncpus = ncpus;
    for (unsigned i = 0; i < ncpus; i++) {
        kvm.cpus[i].fd = -1;
    }
    for (unsigned i = 0; i < ncpus; i++) {
        if (!kvm_vcpu_create(&kvm.cpus[i], i, errp)) {
            return false;
        }
    }
    sigemptyset(&sa.sa_mask);
    sigaction(SIG_KICK, &sa, NULL);
    for (unsigned i = 0; i < ncpus; i++) {
        int r = pthread_create(&kvm.cpus[i].thread, NULL, kvm_vcpu_thread, &kvm.cpus[i]);

        if (r != 0) {
            error_set_errno(errp, r, "creating the thread of vCPU %u", i);
            return false;
        }
        kvm.cpus[i].thread_started = true;
    }
    accel_set_ops(&kvm_accel_ops);
    kvm_vmstate_register();
    return true;
}

/* AccelClass.cleanup: end the vCPU threads and close the VM. */
static void kvm_cleanup(MachineState *ms)
{
    bool had_bql = bql_locked();

    if (had_bql) {
        bql_unlock();
    }
    g_mutex_lock(&kvm.lock);
    kvm.quit = true;
    for (unsigned i = 0; i < kvm.ncpus; i++) {
        kvm_vcpu_kick(&kvm.cpus[i]);
    }
    kvm_broadcast();
    g_mutex_unlock(&kvm.lock);
    for (unsigned i = 0; i < kvm.ncpus; i++) {
        if (kvm.cpus[i].thread_started) {
            pthread_join(kvm.cpus[i].thread, NULL);
            kvm.cpus[i].thread_started = false;
        }
    }
    if (had_bql) {
        bql_lock();
    }
    kvm_close_all();
}

static const AccelClass kvm_accel_class = {
    .name = "kvm",
    .desc = "Linux KVM (" KVM_DEVICE_PATH ")",
    .init_machine = kvm_init_machine,
    .setup_vcpus = kvm_setup_vcpus,
    .cleanup = kvm_cleanup,
};
ACCEL_TYPE_REGISTER(kvm_accel_class)
