/*
 * Guest entry: tpmvm enters in 64-bit mode with flat segments, identity
 * paging of the low 4 GiB and RSI = address of the Linux zero page. Set up a
 * stack inside the image and call guest_main(zero_page); if it returns,
 * report failure through the debug-exit port.
 */
    .section .text.entry, "ax"
    .globl _start
_start:
    cli
    lea __stack_top(%rip), %rsp
    xor %ebp, %ebp
    mov %rsi, %rdi
    call guest_main
    mov $1, %edi
    call guest_exit
1:  hlt
    jmp 1b
    .section .note.GNU-stack, "", @progbits
