/* Hostile test guest: arm64 Image header, entry, EL1 exception vectors.
 * Booted like Linux: at RAM base, x0 = DTB, MMU off, EL1h, DAIF masked. */
	.section .text.head, "ax"
	.globl _head_code
_head_code:
	b	_start			/* code0 */
	.long	0			/* code1 */
	.quad	0			/* text_offset */
	.quad	_image_size		/* image_size: file + bss + stacks */
	.quad	0xA			/* flags: LE, 4K pages, anywhere */
	.quad	0, 0, 0			/* res2..res4 */
	.ascii	"ARM\x64"		/* magic */
	.long	0			/* res5 */

	.text
	.globl	_start
_start:
	mov	x19, x0			/* DTB */
	ldr	x1, =_stack0_top
	mov	sp, x1
	ldr	x1, =vectors
	msr	vbar_el1, x1
	isb
	ldr	x1, =_bss_start
	ldr	x2, =_bss_end
1:	cmp	x1, x2
	b.hs	2f
	str	xzr, [x1], #8
	b	1b
2:	mov	x0, x19
	bl	hostile_main
	/* SYSTEM_OFF; should not return */
3:	ldr	x0, =0x84000008
	hvc	#0
	wfi
	b	3b

/* vCPU 1 enters here from PSCI CPU_ON: x0 = context id, MMU off. */
	.globl	secondary_entry
secondary_entry:
	ldr	x1, =_stack1_top
	mov	sp, x1
	ldr	x1, =vectors
	msr	vbar_el1, x1
	isb
	bl	secondary_main
4:	wfi
	b	4b

/* Exception vectors: save the caller-saved registers, call
 * u64 exc_handler(kind | group << 4, esr, far, elr, x30, frame) which returns the ELR to
 * resume at (and may change the saved SPSR, frame[21]). group: 0 current EL SP_EL0,
 * 1 current EL SP_ELx, 2 lower EL AArch64, 3 lower EL AArch32. */
	.macro	vent kind, group
	.balign	0x80
	sub	sp, sp, #(24 * 8)
	stp	x0, x1, [sp, #0]
	mov	x0, #(\kind | (\group << 4))
	b	exc_common
	.endm

	.balign	0x800
	.globl	vectors
vectors:
	vent	0, 0	/* current EL, SP_EL0: sync */
	vent	1, 0	/* irq */
	vent	2, 0	/* fiq */
	vent	3, 0	/* serror */
	vent	0, 1	/* current EL, SP_ELx: sync */
	vent	1, 1
	vent	2, 1
	vent	3, 1
	vent	0, 2	/* lower EL, AArch64 */
	vent	1, 2
	vent	2, 2
	vent	3, 2
	vent	0, 3	/* lower EL, AArch32 */
	vent	1, 3
	vent	2, 3
	vent	3, 3

exc_common:
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x29, [sp, #144]
	str	x30, [sp, #160]
	mrs	x1, esr_el1
	mrs	x2, far_el1
	mrs	x3, elr_el1
	mov	x4, x30
	mrs	x5, spsr_el1
	str	x5, [sp, #168]
	mov	x5, sp
	bl	exc_handler
	msr	elr_el1, x0
	ldr	x5, [sp, #168]
	msr	spsr_el1, x5
	ldp	x0, x1, [sp, #0]
	ldp	x2, x3, [sp, #16]
	ldp	x4, x5, [sp, #32]
	ldp	x6, x7, [sp, #48]
	ldp	x8, x9, [sp, #64]
	ldp	x10, x11, [sp, #80]
	ldp	x12, x13, [sp, #96]
	ldp	x14, x15, [sp, #112]
	ldp	x16, x17, [sp, #128]
	ldp	x18, x29, [sp, #144]
	ldr	x30, [sp, #160]
	add	sp, sp, #(24 * 8)
	eret

/* u64 run_el0(u64 pc, u64 spsr, u64 arg): eret to EL0 at pc (x2 = arg); an exception taken from EL0 makes
 * the handler resume at el0_return (SPSR EL1h) with x0 = its return value. */
	.globl	run_el0
run_el0:
	stp	x19, x20, [sp, #-96]!
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	msr	elr_el1, x0
	msr	spsr_el1, x1
	isb
	eret
	.globl	el0_return
el0_return:
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	x19, x20, [sp], #96
	ret

/* EL0 test code. A32: MRC CNTP_CTL, MRRC CNTP_CVAL (both trapped to EL2 by
 * CNTHCTL_EL2.EL1PCEN = 0 and not emulated for AArch32: UNDEF), then SVC #0x32. */
	.balign	4
	.globl	el0_a32_mrc, el0_a32_mrrc
el0_a32_mrc:
	.inst	0xee1e0f32		/* mrc  p15, 0, r0, c14, c2, 1  (CNTP_CTL) */
	.inst	0xef000032		/* svc  #0x32 */
el0_a32_mrrc:
	.inst	0xec510f2e		/* mrrc p15, 2, r0, r1, c14     (CNTP_CVAL) */
	.inst	0xef000033		/* svc  #0x33 */
	.globl	el0_a32_ldr
el0_a32_ldr:
	.inst	0xe5920000		/* ldr  r0, [r2]  (r2 = an unmapped address: abort) */
	.inst	0xef000034		/* svc  #0x34 */
/* T32: a 16-bit WFI (trapped by HCR_EL2.TWI; the monitor must step 2 bytes, not 4),
 * then SVC #0x16 right after it; SVC #0x99 4 bytes on, where a wrong step lands. */
	.balign	4
	.globl	el0_t32_wfi
el0_t32_wfi:
	.short	0xbf30			/* wfi */
	.short	0xdf16			/* svc #0x16 */
	.short	0xdf99			/* svc #0x99 */
	.short	0xdf99
/* A64 EL0: CNTP_CTL_EL0 read (trapped, emulated: no exception), then a load from an
 * unmapped address (abort injected to the lower-EL AArch64 vector), then SVC #0x64. */
	.balign	4
	.globl	el0_a64
el0_a64:
	mrs	x1, cntp_ctl_el0
	ldr	x1, [x2]
	svc	#0x64

	.ltorg
