/* SPDX-License-Identifier: MIT */
/* x86-64 System V context switch: pushes the callee-saved registers
 * (rbp, rbx, r12-r15) and an 8-byte slot holding MXCSR (low 4 bytes) and
 * the x87 control word (next 2 bytes), swaps stack pointers, pops the same
 * from the other stack. The saved stack pointer is 16-byte aligned. */
#if defined(__x86_64__)
    .text
    .globl weft__ctx_switch
    .hidden weft__ctx_switch
    .type weft__ctx_switch, @function
    .p2align 4
weft__ctx_switch:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size weft__ctx_switch, .-weft__ctx_switch
#endif
    .section .note.GNU-stack,"",@progbits
