/* The NUMA policy (numa/policy.h) carried out on one guest page by the pmap's mechanism
 * (pmap_migrate, pmap_replicate, pmap_collapse). Portable: the monitor's period driver calls
 * it per hot page; host tests call it to check the policy's budget holds end to end. */
#ifndef MB_NUMA_APPLY_H
#define MB_NUMA_APPLY_H
#include "pmap.h"
#include "policy.h"

struct numa_apply_ctx {
	const struct numa_policy_params *p;
	int nnodes;
	struct pmap *pm;
	struct stage2 *s2;
	const struct page_source *const *node_src;  /* node_src[n] hands out pages on node n */
	const struct page_source *guest, *tables;   /* as for pmap_fault */
};

/* First brings st in line with the pmap (home = the page's node; replicas the pmap no longer
 * has were collapsed by a write fault: committed as a COLLAPSE, which makes the page
 * "written" for the rest of the budget window), then decides with cnt, runs the decision and
 * commits it only if the mechanism did it (a replication commits the nodes it reached).
 * Returns what was done (action NUMA_NONE if nothing). Call under the monitor's devices lock
 * (see pmap.h). */
struct numa_decision numa_apply(const struct numa_apply_ctx *c, uint64_t gpa,
				const struct numa_page_counts *cnt, struct numa_page_state *st,
				uint32_t now);
/* numa_apply in two halves, so a driver can run many decisions' moves in one
 * pmap_move_batch: _decide brings st in line with the pmap and decides (no mechanism);
 * _commit takes the mechanism's result rc (as pmap_migrate / pmap_replicate /
 * pmap_collapse return) and commits d if it was done; returns what was done. */
struct numa_decision numa_apply_decide(const struct numa_apply_ctx *c, uint64_t gpa,
				       const struct numa_page_counts *cnt, struct numa_page_state *st,
				       uint32_t now);
struct numa_decision numa_apply_commit(const struct numa_apply_ctx *c, uint64_t gpa,
				       struct numa_page_state *st, struct numa_decision d, int rc,
				       uint32_t now);
#endif
