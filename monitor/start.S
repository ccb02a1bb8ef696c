/* EL2 entry for every CPU. QEMU starts CPU 0 here at EL2 with the MMU off; the others
 * arrive at secondary_entry through PSCI CPU_ON with x0 = their CPU index. */
#define STACK_SIZE 16384

	.section .text.boot, "ax"
	.globl _start
_start:
	mov	x19, #0
	b	common

	.globl secondary_entry
secondary_entry:
	mov	x19, x0

common:
	msr	daifset, #0xf
	adrp	x1, boot_stacks
	add	x1, x1, :lo12:boot_stacks
	mov	x2, #STACK_SIZE
	madd	x3, x19, x2, x2
	add	sp, x1, x3
	adrp	x1, el2_vectors
	add	x1, x1, :lo12:el2_vectors
	msr	vbar_el2, x1
	isb
	cbnz	x19, 2f
	/* CPU 0 clears .bss before any C code runs (the stacks live outside it) */
	adrp	x1, __bss_start
	add	x1, x1, :lo12:__bss_start
	adrp	x2, __bss_end
	add	x2, x2, :lo12:__bss_end
1:	cmp	x1, x2
	b.hs	2f
	str	xzr, [x1], #8
	b	1b
2:	mov	x0, x19
	cbnz	x19, 3f
	bl	primary_main
	b	.
3:	bl	secondary_main
	b	.

	.section .stacks, "aw", %nobits
	.balign 16
	.globl boot_stacks
boot_stacks:
	.space STACK_SIZE * 8
