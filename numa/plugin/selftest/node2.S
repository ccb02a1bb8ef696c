/* Runs from node 2 (0x48200000): three literal loads (64-bit, 32-bit, sign-extended), and
 * the one of `magic`, check the plugin's address mapping there; then the header of node 3's
 * counter region is read: the plugin's magic -> 'Y' on the UART, anything else -> 'N';
 * then 1000 turns of a WFE wait loop (their accesses are the plugin's wait_accesses, not
 * its accesses); then PSCI SYSTEM_OFF. */
	.globl _start
_start:
	ldr x1, lit2
	ldr w2, lit2
	ldrsw x3, lit2
	movz x0, #0x4fe0, lsl #16      /* 0x40000000 + 4 * 64 MiB - 2 MiB (the region) */
	ldr x1, [x0]
	ldr x2, magic
	movz x3, #0x0900, lsl #16      /* PL011 data register */
	mov x4, #'N'
	cmp x1, x2
	b.ne 1f
	mov x4, #'Y'
1:	str w4, [x3]
	mov x4, #'\n'
	str w4, [x3]
	mov x5, #1000
	adr x6, lit2
2:	sevl
	wfe
	ldr x1, [x6]
	subs x5, x5, #1
	b.ne 2b
	movz x0, #0x0008
	movk x0, #0x8400, lsl #16      /* SYSTEM_OFF */
	smc #0
	b .
	.balign 8
lit2:	.quad 0x2222
magic:	.quad 0x3143414d554e424d     /* MB_NCTR_MAGIC */
