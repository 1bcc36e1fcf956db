/*
 * Interrupt entry stubs for vectors 0-47: push a dummy error code where the
 * CPU does not push one, push the vector, save the registers C code may clobber and
 * call guest_interrupt(vector, error_code, rip).
 */
    .text
    .macro stub vec
    .globl isr_\vec
isr_\vec:
    .if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    .else
    pushq $0
    .endif
    pushq $\vec
    jmp isr_common
    .endm

    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    stub \v
    .endr

isr_common:
    push %rbx
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov 80(%rsp), %rdi      /* vector */
    mov 88(%rsp), %rsi      /* error code */
    mov 96(%rsp), %rdx      /* interrupted RIP */
    mov %rsp, %rbx
    and $-16, %rsp
    call guest_interrupt
    mov %rbx, %rsp
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    pop %rbx
    add $16, %rsp
    iretq

    .section .rodata
    .globl isr_table
    .align 8
isr_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    .quad isr_\v
    .endr
    .section .note.GNU-stack, "", @progbits
