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

	.section .bss
	.balign 16
init_stack:
	.skip 4096
init_stack_end:
	.section .note.GNU-stack, "", @progbits
