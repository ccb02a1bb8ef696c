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

struct stage2 {
	uint64_t root;    /* machine address, 8 KiB aligned */
	uint16_t vmid;
	int local_tlb;     /* pCPU + 1 if the VM's vCPUs all run on that one pCPU, else 0 */
};

/* Install (or replace) the level-3 entry for ipa. A replaced valid entry is broken first
 * (zeroed, TLB flushed), as the architecture requires. Returns 0 or -1 (no memory, bad ipa). */
int s2_map(struct stage2 *s2, uint64_t ipa, uint64_t pa, int writable, const struct page_source *src);
/* Make the entry for ipa read-only, or remove it, WITHOUT invalidating TLBs: for batches
 * that end with one invalidation of the whole VM (the caller's job). */
void s2_protect_noflush(struct stage2 *s2, uint64_t ipa);
void s2_clear_noflush(struct stage2 *s2, uint64_t ipa);
/* Remove the entry for ipa (and flush it). */
void s2_unmap(struct stage2 *s2, uint64_t ipa);
/* Current level-3 descriptor for ipa, 0 if none. */
uint64_t s2_lookup(const struct stage2 *s2, uint64_t ipa);
/* Calls free_page on every table page below the root (not the root itself). */
void s2_destroy(struct stage2 *s2, const struct page_source *src);
/* Whether invalidating this VM's translations must reach every pCPU: yes unless the VM runs
 * on one pCPU and we are on it (a device of another VM may break a COW page of this one). */
static inline int s2_flush_broadcast(const struct stage2 *s2)
{
	return !s2->local_tlb || arch_cpu_id() != s2->local_tlb - 1;
}
#endif
