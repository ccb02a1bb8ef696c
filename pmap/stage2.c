#include "stage2.h"
#include "mirrorball/arch_hooks.h"
#include "bits.h"

#define IDX(ipa, level) (((ipa) >> (12 + 9 * (3 - (level)))) & 0x1FF)

static uint64_t *table(uint64_t desc) { return (uint64_t *)(uintptr_t)(desc & S2_ADDR_MASK); }

/* Level-1 index spans both concatenated tables: bits [39:30]. */
static uint64_t *l1_slot(const struct stage2 *s2, uint64_t ipa)
{
	return (uint64_t *)(uintptr_t)s2->root + ((ipa >> 30) & 0x3FF);
}

/* Returns the next-level table, allocating it (racing allocators settle by CAS). */
static uint64_t *descend(uint64_t *slot, const struct page_source *src)
{
	uint64_t d = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (d & 1)
		return table(d);
	if (!src)
		return 0;
	uint64_t page = src->alloc(src->arg);
	if (!page)
		return 0;
	uint64_t want = page | S2_VALID;
	if (__atomic_compare_exchange_n(slot, &d, want, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return table(want);
	src->free(src->arg, page);   /* another vCPU installed the table first */
	return table(d);
}

static uint64_t *leaf_slot(const struct stage2 *s2, uint64_t ipa, const struct page_source *src)
{
	if (ipa >> S2_IPA_BITS)
		return 0;
	uint64_t *l2 = descend(l1_slot(s2, ipa), src);
	if (!l2)
		return 0;
	uint64_t *l3 = descend(&l2[IDX(ipa, 2)], src);
	if (!l3)
		return 0;
	return &l3[IDX(ipa, 3)];
}

int s2_map(struct stage2 *s2, uint64_t ipa, uint64_t pa, int writable, const struct page_source *src)
{
	uint64_t *slot = leaf_slot(s2, ipa, src);
	if (!slot)
		return -1;
	uint64_t desc = (pa & S2_ADDR_MASK) | S2_VALID | S2_MEM_NORMAL | S2_SH_INNER | S2_AF |
			(writable ? S2_AP_RW : S2_AP_RO);
	uint64_t old = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (old == desc)
		return 0;
	if (old & 1) {
		/* break-before-make: another vCPU may hold the old translation in its TLB */
		__atomic_store_n(slot, 0, __ATOMIC_RELEASE);
		arch_s2_flush_ipa(s2->vmid, ipa, s2_flush_broadcast(s2));
	}
	__atomic_store_n(slot, desc, __ATOMIC_RELEASE);
	return 0;
}

void s2_protect_noflush(struct stage2 *s2, uint64_t ipa)
{
	uint64_t *slot = leaf_slot(s2, ipa, 0);
	uint64_t d = slot ? __atomic_load_n(slot, __ATOMIC_ACQUIRE) : 0;
	if (d & 1)      /* lowering permissions needs no break-before-make */
		__atomic_store_n(slot, (d & ~S2_AP_RW) | S2_AP_RO, __ATOMIC_RELEASE);
}

void s2_clear_noflush(struct stage2 *s2, uint64_t ipa)
{
	uint64_t *slot = leaf_slot(s2, ipa, 0);
	if (slot)
		__atomic_store_n(slot, 0, __ATOMIC_RELEASE);
}

void s2_unmap(struct stage2 *s2, uint64_t ipa)
{
	uint64_t *slot = leaf_slot(s2, ipa, 0);
	if (slot && (*slot & 1)) {
		__atomic_store_n(slot, 0, __ATOMIC_RELEASE);
		arch_s2_flush_ipa(s2->vmid, ipa, s2_flush_broadcast(s2));
	}
}

uint64_t s2_lookup(const struct stage2 *s2, uint64_t ipa)
{
	uint64_t *slot = leaf_slot(s2, ipa, 0);
	return slot ? *slot : 0;
}

void s2_destroy(struct stage2 *s2, const struct page_source *src)
{
	uint64_t *l1 = (uint64_t *)(uintptr_t)s2->root;
	for (int i = 0; i < 1024; i++) {
		if (!(l1[i] & 1))
			continue;
		uint64_t *l2 = table(l1[i]);
		for (int j = 0; j < 512; j++)
			if (l2[j] & 1)
				src->free(src->arg, l2[j] & S2_ADDR_MASK);
		src->free(src->arg, l1[i] & S2_ADDR_MASK);
		l1[i] = 0;
	}
}
