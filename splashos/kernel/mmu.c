/* Stage-1 identity map at EL1, 4 KiB granule, 32-bit VA (T0SZ = 32, walks start at level 1).
 *   0 .. 2 MiB   unmapped, so a null pointer faults in SPLASHOS itself
 *   2 MiB.. 1 GiB device memory (nGnRE), 2 MiB blocks: GIC, PL011 (no execute)
 *   RAM          normal write-back cacheable, inner shareable, no execute, 2 MiB blocks;
 *                the 2 MiB blocks that hold the image are split into pages: text read-only
 *                and executable, read-only data, data/bss read-write, and each stack with an
 *                unmapped guard page below it
 *   elsewhere    unmapped: a wild pointer faults and gets reported
 * The tables are written with the MMU off and cleaned to the point of coherency. */
#include "kernel.h"

#define PTE_VALID   (1ULL << 0)
#define PTE_TABLE   (1ULL << 1)         /* level 1/2: table; level 3: page */
#define PTE_BLOCK   0ULL
#define PTE_ATTR(i) ((uint64_t)(i) << 2)
#define PTE_RO      (2ULL << 6)         /* AP[2:1] = 10: EL1 read-only */
#define PTE_ISH     (3ULL << 8)
#define PTE_AF      (1ULL << 10)
#define PTE_PXN     (1ULL << 53)
#define PTE_UXN     (1ULL << 54)

#define ATTR_DEVICE 0                   /* MAIR index 0: Device-nGnRE */
#define ATTR_NORMAL 1                   /* MAIR index 1: Normal, inner/outer write-back RW-allocate */

#define NORMAL_RW   (PTE_ATTR(ATTR_NORMAL) | PTE_ISH | PTE_AF | PTE_PXN | PTE_UXN)
#define NORMAL_RX   (PTE_ATTR(ATTR_NORMAL) | PTE_ISH | PTE_AF | PTE_RO | PTE_UXN)
#define NORMAL_RO   (PTE_ATTR(ATTR_NORMAL) | PTE_ISH | PTE_AF | PTE_RO | PTE_PXN | PTE_UXN)
#define DEVICE_RW   (PTE_ATTR(ATTR_DEVICE) | PTE_AF | PTE_PXN | PTE_UXN)

#define GIB (1ULL << 30)
#define MIB2 (2ULL << 20)
#define L3_TABLES 4                     /* the image may span 8 MiB */

static uint64_t l1[512] __attribute__((aligned(4096)));
static uint64_t l2[4][512] __attribute__((aligned(4096)));
static uint64_t l3[L3_TABLES][512] __attribute__((aligned(4096)));

uint64_t mmu_mair, mmu_tcr, mmu_ttbr0, mmu_sctlr;

static uint64_t page_attr(uint64_t a)
{
	uint64_t text = (uintptr_t)_text, etext = (uintptr_t)_etext, erodata = (uintptr_t)_erodata;
	if (a >= text && a < etext)
		return NORMAL_RX;
	if (a >= etext && a < erodata)
		return NORMAL_RO;
	/* guard pages: the first page of every stack slot */
	for (int i = 0; i < MAX_CPUS; i++)
		if (a == (uintptr_t)main_stacks[i] || a == (uintptr_t)exc_stacks[i])
			return 0;
	return NORMAL_RW;
}

void mmu_init(uint64_t ram_base, uint64_t ram_size)
{
	uint64_t ram_end = ram_base + ram_size;
	if (ram_end > 4 * GIB)
		ram_end = 4 * GIB;
	for (int i2 = 1; i2 < 512; i2++)
		l2[0][i2] = (uint64_t)i2 * MIB2 | PTE_VALID | PTE_BLOCK | DEVICE_RW;
	l1[0] = (uintptr_t)l2[0] | PTE_VALID | PTE_TABLE;
	uint64_t img_lo = (uintptr_t)_text & ~(MIB2 - 1);
	uint64_t img_hi = ((uintptr_t)_end + MIB2 - 1) & ~(MIB2 - 1);
	int nl3 = 0;
	for (uint64_t a = ram_base & ~(MIB2 - 1); a < ram_end; a += MIB2) {
		int i1 = (int)(a / GIB);
		if (i1 < 1 || i1 > 3)
			continue;
		uint64_t *t2 = l2[i1];
		l1[i1] = (uintptr_t)t2 | PTE_VALID | PTE_TABLE;
		int i2 = (int)((a % GIB) / MIB2);
		if (a >= img_lo && a < img_hi && nl3 < L3_TABLES) {
			uint64_t *t3 = l3[nl3++];
			for (int i3 = 0; i3 < 512; i3++) {
				uint64_t pa = a + (uint64_t)i3 * 4096;
				uint64_t attr = pa < ram_end ? page_attr(pa) : 0;
				t3[i3] = attr ? (pa | PTE_VALID | PTE_TABLE | attr) : 0;
			}
			t2[i2] = (uintptr_t)t3 | PTE_VALID | PTE_TABLE;
		} else if (a + MIB2 <= ram_end) {
			t2[i2] = a | PTE_VALID | PTE_BLOCK | NORMAL_RW;
		}
	}
	mmu_mair = 0x04ULL << (8 * ATTR_DEVICE) | 0xFFULL << (8 * ATTR_NORMAL);
	/* T0SZ 32, IRGN0/ORGN0 write-back write-allocate, SH0 inner, TG0 4K, EPD1 (no TTBR1
	 * walks), IPS 40 bits */
	mmu_tcr = 32 | 1ULL << 8 | 1ULL << 10 | 3ULL << 12 | 0ULL << 14 | 1ULL << 23 | 2ULL << 32;
	mmu_ttbr0 = (uintptr_t)l1;
	/* RES1 bits of ARMv8.0, M, C, SA, I */
	mmu_sctlr = 0x30D00800ULL | 1ULL << 0 | 1ULL << 2 | 1ULL << 3 | 1ULL << 12;
	/* the tables were written with the MMU off: make sure the walker sees them */
	for (uintptr_t p = (uintptr_t)l1; p < (uintptr_t)l1 + sizeof l1; p += 64)
		__asm__ volatile("dc civac, %0" :: "r"(p) : "memory");
	for (uintptr_t p = (uintptr_t)l2; p < (uintptr_t)l2 + sizeof l2; p += 64)
		__asm__ volatile("dc civac, %0" :: "r"(p) : "memory");
	for (uintptr_t p = (uintptr_t)l3; p < (uintptr_t)l3 + sizeof l3; p += 64)
		__asm__ volatile("dc civac, %0" :: "r"(p) : "memory");
	dsb(ish);
}

void mmu_enable(void)
{
	write_sysreg(mair_el1, mmu_mair);
	write_sysreg(tcr_el1, mmu_tcr);
	write_sysreg(ttbr0_el1, mmu_ttbr0);
	isb();
	__asm__ volatile("tlbi vmalle1; dsb nsh; isb" ::: "memory");
	write_sysreg(sctlr_el1, mmu_sctlr);
	isb();
	__asm__ volatile("ic iallu; dsb nsh; isb" ::: "memory");
}
