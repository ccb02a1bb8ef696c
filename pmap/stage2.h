/* Stage-2 translation tables: the hardware-walked cache of the pmap.
 * 40-bit IPA, 4 KiB granule, starting at level 1 with two concatenated tables (VTCR SL0=1). */
#ifndef MB_STAGE2_H
#define MB_STAGE2_H
#include <stdint.h>
#include "mirrorball/arch_hooks.h"

#define S2_IPA_BITS  40
#define S2_ROOT_SIZE 8192             /* two concatenated level-1 tables */

/* Leaf attributes (page descriptor bits besides the address). */
#define S2_VALID      (3ULL << 0)     /* valid + page (level 3) / table (levels 1-2) */
#define S2_MEM_NORMAL (0xFULL << 2)   /* MemAttr: Normal, outer+inner write-back */
#define S2_AP_RO      (1ULL << 6)
#define S2_AP_RW      (3ULL << 6)
#define S2_SH_INNER   (3ULL << 8)
#define S2_AF         (1ULL << 10)
#define S2_ADDR_MASK  0x000000FFFFFFF000ULL

#include "pagesrc.h"

#define S2_MAX_NODES 8

struct stage2 {
	uint64_t root;    /* machine address, 8 KiB aligned */
	uint16_t vmid;
	int local_tlb;     /* pCPU + 1 if the VM's vCPUs all run on that one pCPU, else 0 */
	/* Per-node roots (page replication, off by default): 0 = one root, `root`, for every
	 * vCPU, exactly as without them. Else node_root[0..nroots) (node_root[0] == root) and a
	 * vCPU loads its pCPU's node's root (s2_root_for_node). They share the VMID: TLB
	 * maintenance by VMID/IPA reaches every root's translations; each pCPU only ever walks
	 * its own node's root (VTTBR.CnP stays 0, translations are private to the PE). Every
	 * operation below acts on all roots alike, except the *_node ones, which the pmap uses
	 * for read-only replicas (a replicated page maps the local replica in its node's root;
	 * the pmap entry records which nodes, and only the pmap changes those entries). */
	int nroots;
	uint64_t node_root[S2_MAX_NODES];
};

/* Turns per-node roots on: roots[n] (8 KiB, 8 KiB aligned, zeroed) for nodes 1..nnodes-1;
 * node 0 keeps s2->root. Call before the VM first runs. -1 if nnodes is out of range. */
int s2_enable_node_roots(struct stage2 *s2, int nnodes, const uint64_t *roots);
/* The root a vCPU on a pCPU of `node` loads into VTTBR_EL2. */
static inline uint64_t s2_root_for_node(const struct stage2 *s2, int node)
{
	return s2->nroots && node >= 0 && node < s2->nroots ? s2->node_root[node] : s2->root;
}
/* One root only (node's), for replicas: install with break-before-make, or look up. */
int s2_map_node(struct stage2 *s2, int node, uint64_t ipa, uint64_t pa, int writable,
		const struct page_source *src);
uint64_t s2_lookup_node(const struct stage2 *s2, int node, uint64_t ipa);
/* Install in every root except the nodes in skip_mask (those map replicas). */
int s2_map_except(struct stage2 *s2, uint64_t ipa, uint64_t pa, int writable,
		  const struct page_source *src, unsigned skip_mask);

/* Install (or replace) the level-3 entry for ipa. A replaced valid entry is broken first
 * (zeroed, TLB flushed), as the architecture requires. Returns 0 or -1 (no memory, bad ipa). */
int s2_map(struct stage2 *s2, uint64_t ipa, uint64_t pa, int writable, const struct page_source *src);
/* Make the entry for ipa read-only, or remove it, WITHOUT invalidating TLBs: for batches
 * that end with one invalidation of the whole VM (the caller's job). */
void s2_protect_noflush(struct stage2 *s2, uint64_t ipa);
void s2_clear_noflush(struct stage2 *s2, uint64_t ipa);
/* The same in the roots of node_mask only (bit n: node n's root; bit 0 alone without
 * per-node roots): a batch breaks entries it will remap, so mapping them needs no flush.
 * Returns 1 if an entry was valid (then the caller invalidates before remapping). */
int s2_clear_nodes_noflush(struct stage2 *s2, uint64_t ipa, unsigned node_mask);
/* Remove the entry for ipa (and flush it). */
void s2_unmap(struct stage2 *s2, uint64_t ipa);
/* Current level-3 descriptor for ipa in node 0's root (`root`), 0 if none. */
uint64_t s2_lookup(const struct stage2 *s2, uint64_t ipa);
/* Calls free_page on every table page below the root(s) (not the roots themselves). */
void s2_destroy(struct stage2 *s2, const struct page_source *src);
/* Whether invalidating this VM's translations must reach every pCPU: yes unless the VM runs
 * on one pCPU and we are on it (a device of another VM may break a COW page of this one). */
static inline int s2_flush_broadcast(const struct stage2 *s2)
{
	return !s2->local_tlb || arch_cpu_id() != s2->local_tlb - 1;
}
#endif
