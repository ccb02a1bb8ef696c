/* The monitor's own stage-1 translation at EL2: an identity map in 1 GiB blocks, normal
 * write-back memory for RAM and device memory for the first GiB (MMIO on QEMU virt).
 * Nodes other than node 0 (where the monitor is loaded) get their own copy of the tables in
 * which the monitor's text and read-only data are pages of a node-local copy, as Disco
 * replicated its code segment: every exit on every node then fetches its code locally. */
#include "mmu.h"
#include "arch.h"
#include "bits.h"
#include "palloc.h"
#include "mirrorball/arch_hooks.h"
#include "mb_string.h"
#include "console.h"

static uint64_t el2_l1[512] __aligned(4096);

#define BLK_VALID   1ULL
#define BLK_ATTR(n) ((uint64_t)(n) << 2)
#define BLK_SH_IS   (3ULL << 8)
#define BLK_AF      (1ULL << 10)
#define BLK_XN      (1ULL << 54)
#define TBL_VALID   3ULL            /* a table descriptor (L1, L2), or a page descriptor (L3) */
#define RAM_ATTRS   (BLK_ATTR(0) | BLK_SH_IS | BLK_AF)
extern char __image_start[], __text_ro_end[];
static uint64_t node_l1[PALLOC_MAX_NODES];   /* 0: the node uses el2_l1 */
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

static uint64_t *zeroed_page_on(int node)
{
	uint64_t page = palloc_alloc(&g_palloc, node, 0);
	if (!page || palloc_node_of(&g_palloc, page) != node) {
		if (page)
			palloc_free(&g_palloc, page, 0);
		return 0;
	}
	struct memmap_entry *m = memmap_of(&g_palloc, page);
	if (m)
		m->use = MM_MONITOR;
	memset((void *)(uintptr_t)page, 0, PAGE_SIZE);
	return (uint64_t *)(uintptr_t)page;
}

int mmu_replicate_text(int nnodes)
{
	uint64_t start = (uint64_t)(uintptr_t)__image_start, end = (uint64_t)(uintptr_t)__text_ro_end;
	uint64_t blk = start & ~((2ULL << 20) - 1);
	if (end - blk > (2ULL << 20) || (start >> 30) >= 512)
		return -1;                  /* text + rodata must fit the one 2 MiB block we split */
	int made = 0;
	for (int n = 1; n < nnodes && n < PALLOC_MAX_NODES; n++) {
		uint64_t *l1 = zeroed_page_on(n), *l2 = zeroed_page_on(n), *l3 = zeroed_page_on(n);
		if (!l1 || !l2 || !l3)
			continue;              /* (a page or two lost; the node keeps el2_l1) */
		memcpy(l1, el2_l1, sizeof(el2_l1));
		uint64_t gib = start & ~((1ULL << 30) - 1);
		for (int i = 0; i < 512; i++)
			l2[i] = (gib + ((uint64_t)i << 21)) | BLK_VALID | RAM_ATTRS;
		int ok = 1;
		for (int i = 0; i < 512; i++) {
			uint64_t va = blk + ((uint64_t)i << 12), pa = va;
			if (va >= start && va < end) {
				uint64_t *copy = zeroed_page_on(n);
				if (!copy) {
					ok = 0;
					break;
				}
				memcpy(copy, (void *)(uintptr_t)va, PAGE_SIZE);
				arch_clean_dcache(copy, PAGE_SIZE);
				pa = (uint64_t)(uintptr_t)copy;
			}
			l3[i] = pa | TBL_VALID | RAM_ATTRS;
		}
		if (!ok)
			continue;
		l2[(blk >> 21) & 511] = (uint64_t)(uintptr_t)l3 | TBL_VALID;
		l1[start >> 30] = (uint64_t)(uintptr_t)l2 | TBL_VALID;
		dsb(ish);
		node_l1[n] = (uint64_t)(uintptr_t)l1;
		made++;
	}
	__asm__ volatile("ic ialluis; dsb ish; isb" ::: "memory");
	mb_printf("monitor text: %lu KiB replicated on %d of %d other nodes\n", (end - start) >> 10, made,
		  nnodes - 1);
	return made;
}

void mmu_use_node(int node)
{
	if (node <= 0 || node >= PALLOC_MAX_NODES || !node_l1[node])
		return;
	write_sysreg(ttbr0_el2, node_l1[node]);
	isb();
	__asm__ volatile("tlbi alle2; dsb nsh; ic iallu; dsb nsh; isb" ::: "memory");
}
