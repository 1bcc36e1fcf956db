/*
 * KVM accelerator (-accel kvm): one VM with the machine's RAM as a memory
 * slot, the in-kernel interrupt controllers and PIT, and one thread per vCPU
 * that turns port I/O and MMIO exits into accesses on the machine's address
 * spaces (under the big lock). It registers itself as AccelClass "kvm"
 * (system/accel.h); the guest must be given with -kernel (no firmware).
 * See docs/kvm.md.
 */
#ifndef SYSTEM_KVM_H
#define SYSTEM_KVM_H

#include <stdbool.h>
#include <stdint.h>
#include <glib.h>

#define KVM_DEVICE_PATH "/dev/kvm"

/*
 * Can this process use /dev/kvm? On failure the error says what is wrong
 * (missing device, permission, API version, missing capability) and what to
 * do about it.
 */
bool kvm_check_available(GError **errp);

/* Counters of exits handled in user space, for benchmarks and tests. */
typedef struct KVMExitStats {
    uint64_t mmio;
    uint64_t io;
    uint64_t other;
} KVMExitStats;
void kvm_get_exit_stats(KVMExitStats *out);

#endif
