/*
 * What accel/kvm.c shares with accel/kvm-vmstate.c (not a public interface).
 */
#ifndef ACCEL_KVM_INTERNAL_H
#define ACCEL_KVM_INTERNAL_H

#include <stdbool.h>

/* The VM's fd, the number of vCPUs and a vCPU's fd (-1 if none). */
int kvm_vm_fd(void);
unsigned kvm_vcpu_count(void);
int kvm_vcpu_fd(unsigned index);

/* A vCPU's state was just loaded from a snapshot: it must neither load its
 * reset state nor stay parked when it runs next. Call with the VM stopped. */
void kvm_vcpu_state_loaded(unsigned index);

/* Register the "kvm-vm" and "kvm-vcpu" vmstate sections (kvm-vmstate.c). */
void kvm_vmstate_register(void);

#endif
