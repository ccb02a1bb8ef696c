/* AArch64 implementations of the operations portable code asks for. */
#include "mirrorball/arch_hooks.h"
#include "arch.h"
#include "percpu.h"

void arch_s2_flush_ipa(uint16_t vmid, uint64_t ipa, int broadcast)
{
	/* TLBI by IPA acts on the VMID in VTTBR_EL2: switch to the target VM's VMID if needed. */
	uint64_t vttbr = read_sysreg(vttbr_el2);
	int switch_vmid = ((vttbr >> 48) & 0xFF) != vmid;
	if (switch_vmid) {
		write_sysreg(vttbr_el2, (uint64_t)vmid << 48);
		isb();
	}
	if (broadcast) {
		dsb(ishst);
		__asm__ volatile("tlbi ipas2e1is, %0" :: "r"(ipa >> 12) : "memory");
		dsb(ish);
		__asm__ volatile("tlbi vmalle1is" ::: "memory");
		dsb(ish);
	} else {
		/* under QEMU a broadcast stops every emulated CPU: worth avoiding when we can */
		dsb(nshst);
		__asm__ volatile("tlbi ipas2e1, %0" :: "r"(ipa >> 12) : "memory");
		dsb(nsh);
		__asm__ volatile("tlbi vmalle1" ::: "memory");
		dsb(nsh);
	}
	isb();
	if (switch_vmid) {
		write_sysreg(vttbr_el2, vttbr);
		isb();
	}
}

void arch_s2_flush_vmid(uint16_t vmid, int broadcast)
{
	uint64_t vttbr = read_sysreg(vttbr_el2);
	write_sysreg(vttbr_el2, (uint64_t)vmid << 48);
	isb();
	dsb(ishst);
	if (broadcast)
		__asm__ volatile("tlbi vmalls12e1is" ::: "memory");
	else
		__asm__ volatile("tlbi vmalls12e1" ::: "memory");
	dsb(ish);
	write_sysreg(vttbr_el2, vttbr);
	isb();
}

void arch_clean_dcache(const void *p, size_t len)
{
	uint64_t ctr = read_sysreg(ctr_el0);
	uint64_t line = 4ULL << ((ctr >> 16) & 0xF);
	uint64_t a = (uint64_t)(uintptr_t)p & ~(line - 1), end = (uint64_t)(uintptr_t)p + len;
	for (; a < end; a += line)
		__asm__ volatile("dc cvac, %0" :: "r"(a) : "memory");
	dsb(ish);
}

int arch_cpu_id(void)
{
	return this_cpu()->id;
}

void arch_sync_icache(void)
{
	__asm__ volatile("ic ialluis; dsb ish; isb" ::: "memory");
}

void arch_zero_page(void *page)
{
	static uint64_t zva_bytes;
	if (!zva_bytes) {
		uint64_t dczid = read_sysreg(dczid_el0);
		zva_bytes = (dczid & 16) ? 8 : 4ULL << (dczid & 15);   /* DZP set: DC ZVA prohibited */
	}
	if (zva_bytes < 16) {
		uint64_t *q = page;
		for (int i = 0; i < 512; i++)
			q[i] = 0;
		return;
	}
	for (uint64_t a = (uint64_t)(uintptr_t)page, end = a + 4096; a < end; a += zva_bytes)
		__asm__ volatile("dc zva, %0" :: "r"(a) : "memory");
}
