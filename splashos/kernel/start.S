/* SPLASHOS entry: an arm64 Linux Image header, the boot CPU's and the secondaries' entry,
 * and the EL1 exception vectors. Booted like Linux: x0 = DTB, MMU off, EL1h, DAIF masked.
 *
 * Stacks: ordinary code runs on SP_EL0 (SPSel = 0); exceptions switch to SP_EL1, a separate
 * per-vCPU exception stack, so a stack overflow into a guard page still gets reported. */
#include "kernel.h"
#define CPACR_FPEN	(3 << 20)

	.macro	adr_l reg, sym
	adrp	\reg, \sym
	add	\reg, \reg, :lo12:\sym
	.endm

	.section .text.head, "ax"
	.globl	_head
_head:
	b	_start			/* code0 */
	.long	0			/* code1 */
	.quad	0			/* text_offset: at the start of RAM */
	.quad	_image_size		/* image_size: file + bss + stacks */
	.quad	0xA			/* flags: little endian, 4K pages, placement anywhere */
	.quad	0, 0, 0			/* res2..res4 */
	.ascii	"ARM\x64"		/* magic */
	.long	0			/* res5 */

	.text
	.globl	_start
_start:
	msr	daifset, #0xf
	mov	x19, x0			/* DTB */
	mov	x1, #CPACR_FPEN		/* FP/SIMD at EL1 without traps: apps use doubles */
	msr	cpacr_el1, x1
	adr_l	x1, vectors
	msr	vbar_el1, x1
	isb
	/* exception stack (SP_EL1) of vCPU 0, then normal code on SP_EL0 */
	adr_l	x1, exc_stacks
	ldr	x2, =EXC_STACK_SLOT
	add	x1, x1, x2
	mov	sp, x1
	msr	spsel, #0
	adr_l	x1, main_stacks
	ldr	x2, =MAIN_STACK_SLOT
	add	x1, x1, x2
	mov	sp, x1
	msr	tpidr_el1, xzr		/* vCPU (thread) 0 */
	adr_l	x1, _bss_start
	adr_l	x2, _bss_end
1:	cmp	x1, x2
	b.hs	2f
	stp	xzr, xzr, [x1], #16
	b	1b
2:	mov	x0, x19
	bl	kernel_main
	b	psci_system_off_asm

/* Secondary vCPUs from PSCI CPU_ON: x0 = struct cpu_boot * (see kernel.h), MMU off. */
	.globl	secondary_entry
secondary_entry:
	msr	daifset, #0xf
	mov	x1, #CPACR_FPEN
	msr	cpacr_el1, x1
	adr_l	x1, vectors
	msr	vbar_el1, x1
	isb
	ldr	x1, [x0, #0]		/* exc_sp */
	mov	sp, x1
	msr	spsel, #0
	ldr	x1, [x0, #8]		/* sp */
	mov	sp, x1
	ldr	x1, [x0, #16]		/* tid */
	msr	tpidr_el1, x1
	/* the boot CPU's MMU settings */
	ldr	x1, [x0, #24]
	msr	mair_el1, x1
	ldr	x1, [x0, #32]
	msr	tcr_el1, x1
	ldr	x1, [x0, #40]
	msr	ttbr0_el1, x1
	isb
	tlbi	vmalle1
	dsb	nsh
	isb
	ldr	x1, [x0, #48]
	msr	sctlr_el1, x1
	isb
	ldr	x0, [x0, #16]
	bl	secondary_start
	b	psci_system_off_asm

	.globl	psci_system_off_asm
psci_system_off_asm:
	ldr	x0, =0x84000008
	hvc	#0
	wfi
	b	psci_system_off_asm

/* Exception vectors: every exception is unexpected in SPLASHOS (interrupts stay masked;
 * vCPUs are woken from WFI by pending SGIs, which they acknowledge by polling). Save the
 * GPRs on the exception stack and call trap_report(frame, kind), which does not return. */
	.macro	vent kind
	.balign	0x80
	sub	sp, sp, #(34 * 8)
	stp	x0, x1, [sp, #0]
	mov	x0, #\kind
	b	exc_common
	.endm

	.balign	0x800
	.globl	vectors
vectors:
	vent	0	/* current EL, SP_EL0: sync (ordinary code runs here) */
	vent	1	/* irq */
	vent	2	/* fiq */
	vent	3	/* serror */
	vent	4	/* current EL, SP_ELx: sync (inside the exception path itself) */
	vent	5
	vent	6
	vent	7
	vent	8	/* lower EL, AArch64: SPLASHOS has no EL0 */
	vent	9
	vent	10
	vent	11
	vent	12	/* lower EL, AArch32 */
	vent	13
	vent	14
	vent	15

exc_common:
	stp	x2, x3, [sp, #16]
	stp	x4, x5, [sp, #32]
	stp	x6, x7, [sp, #48]
	stp	x8, x9, [sp, #64]
	stp	x10, x11, [sp, #80]
	stp	x12, x13, [sp, #96]
	stp	x14, x15, [sp, #112]
	stp	x16, x17, [sp, #128]
	stp	x18, x19, [sp, #144]
	stp	x20, x21, [sp, #160]
	stp	x22, x23, [sp, #176]
	stp	x24, x25, [sp, #192]
	stp	x26, x27, [sp, #208]
	stp	x28, x29, [sp, #224]
	mrs	x1, sp_el0
	stp	x30, x1, [sp, #240]
	mov	x1, x0			/* kind */
	mov	x0, sp			/* frame: x0..x30, sp_el0 */
	bl	trap_report
1:	wfi
	b	1b

	.ltorg
