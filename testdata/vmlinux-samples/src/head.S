/* SPDX-License-Identifier: GPL-2.0 */
/* head.S - entry point, like arch/x86/kernel/head_64.S. */
	.section .head.text, "ax"
	.globl startup_64
	.type startup_64, @function
startup_64:
	movq	$init_stack_end, %rsp
	xorl	%ebp, %ebp
	call	start_kernel
1:	hlt
	jmp	1b
	.size startup_64, . - startup_64

/* A stand-in for arch/x86/entry/entry_64.S: nr in %rax, argument in %rdi. */
	.text
	.globl entry_SYSCALL_64
	.type entry_SYSCALL_64, @function
entry_SYSCALL_64:
	pushq	%rbp
	movq	%rsp, %rbp
	movq	%rdi, %rsi
	movq	%rax, %rdi
	call	do_syscall_64
	popq	%rbp
	sysretq
	.size entry_SYSCALL_64, . - entry_SYSCALL_64

	.section .bss
	.balign 16
init_stack:
	.skip 4096
init_stack_end:
	.section .note.GNU-stack, "", @progbits
