/* numa/plugin/selftest: runs at EL2 with the MMU off on CPU 0 of a 4 x 64 MiB host, loaded
 * by -kernel at 0x40200000 (node 0). A literal load here checks the plugin's address
 * mapping on node 0; then it jumps to node2.S, which QEMU's generic loader put in node 2. */
	.globl _start
_start:
	ldr x1, lit0
	movz x0, #0x4820, lsl #16      /* node 2: 0x40000000 + 2 * 64 MiB + 2 MiB */
	br x0
	.balign 8
lit0:	.quad 0x1111
