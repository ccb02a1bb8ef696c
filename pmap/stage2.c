#include "stage2.h"
#include "mirrorball/arch_hooks.h"
#include "bits.h"

#define IDX(ipa, level) (((ipa) >> (12 + 9 * (3 - (level)))) & 0x1FF)

static uint64_t *table(uint64_t desc) { return (uint64_t *)(uintptr_t)(desc & S2_ADDR_MASK); }

/* Level-1 index spans both concatenated tables: bits [39:30]. */
static uint64_t *l1_slot(uint64_t root, uint64_t ipa)
{
	return (uint64_t *)(uintptr_t)root + ((ipa >> 30) & 0x3FF);
}

/* The roots every operation acts on: `root` alone, or one per node. */
static int roots_of(const struct stage2 *s2, uint64_t *out)
{
	if (!s2->nroots) {
		out[0] = s2->root;
		return 1;
	}
	for (int i = 0; i < s2->nroots; i++)
		out[i] = s2->node_root[i];
	return s2->nroots;
}

int s2_enable_node_roots(struct stage2 *s2, int nnodes, const uint64_t *roots)
{
	if (nnodes < 1 || nnodes > S2_MAX_NODES)
		return -1;
	s2->node_root[0] = s2->root;
	for (int i = 1; i < nnodes; i++)
		s2->node_root[i] = roots[i];
	s2->nroots = nnodes;
	return 0;
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

static uint64_t *leaf_slot_in(uint64_t root, uint64_t ipa, const struct page_source *src)
{
	if (ipa >> S2_IPA_BITS)
		return 0;
	uint64_t *l2 = descend(l1_slot(root, ipa), src);
	if (!l2)
		return 0;
	uint64_t *l3 = descend(&l2[IDX(ipa, 2)], src);
	if (!l3)
		return 0;
	return &l3[IDX(ipa, 3)];
}

static uint64_t make_desc(uint64_t pa, int writable)
{
	return (pa & S2_ADDR_MASK) | S2_VALID | S2_MEM_NORMAL | S2_SH_INNER | S2_AF |
	       (writable ? S2_AP_RW : S2_AP_RO);
}

/* Installs desc in the roots not in skip_mask: every replaced valid entry is broken first,
 * all of them, then one TLB invalidation (the VMID's TLB entries from any root), then made. */
static int map_roots(struct stage2 *s2, uint64_t ipa, uint64_t desc, const struct page_source *src,
		     unsigned skip_mask)
{
	uint64_t roots[S2_MAX_NODES], *slot[S2_MAX_NODES];
	int n = roots_of(s2, roots), broke = 0, rc = 0;
	for (int i = 0; i < n; i++) {
		slot[i] = (skip_mask >> i) & 1 ? 0 : leaf_slot_in(roots[i], ipa, src);
		if (!slot[i]) {
			if (!((skip_mask >> i) & 1))
				rc = -1;
			continue;
		}
		uint64_t old = __atomic_load_n(slot[i], __ATOMIC_ACQUIRE);
		if (old == desc) {
			slot[i] = 0;
		} else if (old & 1) {
			/* break-before-make: another vCPU may hold the old translation in its TLB */
			__atomic_store_n(slot[i], 0, __ATOMIC_RELEASE);
			broke = 1;
		}
	}
	if (broke)
		arch_s2_flush_ipa(s2->vmid, ipa, s2_flush_broadcast(s2));
	for (int i = 0; i < n; i++)
		if (slot[i])
			__atomic_store_n(slot[i], desc, __ATOMIC_RELEASE);
	return rc;
}

int s2_map(struct stage2 *s2, uint64_t ipa, uint64_t pa, int writable, const struct page_source *src)
{
	return map_roots(s2, ipa, make_desc(pa, writable), src, 0);
}

int s2_map_except(struct stage2 *s2, uint64_t ipa, uint64_t pa, int writable,
		  const struct page_source *src, unsigned skip_mask)
{
	return map_roots(s2, ipa, make_desc(pa, writable), src, skip_mask);
}

int s2_map_node(struct stage2 *s2, int node, uint64_t ipa, uint64_t pa, int writable,
		const struct page_source *src)
{
	if (node < 0 || node >= (s2->nroots ? s2->nroots : 1))
		return -1;
	unsigned all = (1u << S2_MAX_NODES) - 1;
	return map_roots(s2, ipa, make_desc(pa, writable), src, all & ~(1u << node));
}

uint64_t s2_lookup_node(const struct stage2 *s2, int node, uint64_t ipa)
{
	if (node < 0 || node >= (s2->nroots ? s2->nroots : 1))
		return 0;
	uint64_t *slot = leaf_slot_in(s2->nroots ? s2->node_root[node] : s2->root, ipa, 0);
	return slot ? __atomic_load_n(slot, __ATOMIC_ACQUIRE) : 0;
}

void s2_protect_noflush(struct stage2 *s2, uint64_t ipa)
{
	uint64_t roots[S2_MAX_NODES];
	for (int i = 0, n = roots_of(s2, roots); i < n; i++) {
		uint64_t *slot = leaf_slot_in(roots[i], ipa, 0);
		uint64_t d = slot ? __atomic_load_n(slot, __ATOMIC_ACQUIRE) : 0;
		if (d & 1)      /* lowering permissions needs no break-before-make */
			__atomic_store_n(slot, (d & ~S2_AP_RW) | S2_AP_RO, __ATOMIC_RELEASE);
	}
}

/* Clears the entry in the roots of mask; 1 if one was valid. */
static int clear_roots_of(struct stage2 *s2, uint64_t ipa, unsigned mask)
{
	uint64_t roots[S2_MAX_NODES];
	int was = 0;
	for (int i = 0, n = roots_of(s2, roots); i < n; i++) {
		if (!((mask >> i) & 1))
			continue;
		uint64_t *slot = leaf_slot_in(roots[i], ipa, 0);
		if (slot && (__atomic_load_n(slot, __ATOMIC_ACQUIRE) & 1)) {
			__atomic_store_n(slot, 0, __ATOMIC_RELEASE);
			was = 1;
		}
	}
	return was;
}

static int clear_roots(struct stage2 *s2, uint64_t ipa) { return clear_roots_of(s2, ipa, ~0u); }

void s2_clear_noflush(struct stage2 *s2, uint64_t ipa)
{
	clear_roots(s2, ipa);
}

int s2_clear_nodes_noflush(struct stage2 *s2, uint64_t ipa, unsigned node_mask)
{
	return clear_roots_of(s2, ipa, node_mask);
}

void s2_unmap(struct stage2 *s2, uint64_t ipa)
{
	if (clear_roots(s2, ipa))
		arch_s2_flush_ipa(s2->vmid, ipa, s2_flush_broadcast(s2));
}

uint64_t s2_lookup(const struct stage2 *s2, uint64_t ipa)
{
	uint64_t *slot = leaf_slot_in(s2->root, ipa, 0);
	return slot ? *slot : 0;
}

void s2_destroy(struct stage2 *s2, const struct page_source *src)
{
	uint64_t roots[S2_MAX_NODES];
	for (int r = 0, n = roots_of(s2, roots); r < n; r++) {
		uint64_t *l1 = (uint64_t *)(uintptr_t)roots[r];
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
}
