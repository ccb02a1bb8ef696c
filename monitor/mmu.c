/* The monitor's own stage-1 translation at EL2: an identity map in 1 GiB blocks, normal
 * write-back memory for RAM and device memory for the first GiB (MMIO on QEMU virt). */
#include "mmu.h"
#include "arch.h"
#include "bits.h"

static uint64_t el2_l1[512] __aligned(4096);

#define BLK_VALID   1ULL
#define BLK_ATTR(n) ((uint64_t)(n) << 2)
#define BLK_SH_IS   (3ULL << 8)
#define BLK_AF      (1ULL << 10)
#define BLK_XN      (1ULL << 54)
#define TCR_EL2_VAL ((1ULL << 31) | (1ULL << 23) | (2ULL << 16) | (3ULL << 12) | (1ULL << 10) | (1ULL << 8) | 25)
#define MAIR_EL2_VAL 0x00FFULL          /* attr0 normal WB RA/WA, attr1 device nGnRnE */
#define SCTLR_EL2_RES1 0x30C50830ULL

void mmu_build(const struct host_topology *t)
{
	el2_l1[0] = 0 | BLK_VALID | BLK_ATTR(1) | BLK_AF | BLK_XN;
	for (int i = 0; i < t->nmem; i++) {
		uint64_t gib = t->mem[i].base >> 30, end = ALIGN_UP(t->mem[i].base + t->mem[i].size, 1ULL << 30) >> 30;
		for (; gib < end && gib < 512; gib++)
			el2_l1[gib] = (gib << 30) | BLK_VALID | BLK_ATTR(0) | BLK_SH_IS | BLK_AF;
	}
	dsb(ish);
}

void mmu_enable(void)
{
	write_sysreg(mair_el2, MAIR_EL2_VAL);
	write_sysreg(tcr_el2, TCR_EL2_VAL);
	write_sysreg(ttbr0_el2, (uint64_t)(uintptr_t)el2_l1);
	isb();
	__asm__ volatile("tlbi alle2; dsb ish; isb" ::: "memory");
	write_sysreg(sctlr_el2, SCTLR_EL2_RES1 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12));
	isb();
}
