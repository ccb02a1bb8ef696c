/* vCPU scheduling affinity that follows memory (issue 7): every policy period the monitor
 * gives this planner each pCPU (its node, and the one vCPU it runs, if any) and each such
 * vCPU's cache misses in the period by the node of the memory; it says which vCPUs should
 * move to which pCPU. Moving a vCPU to its memory costs one switch; moving its memory to it
 * costs a copy per page, and pages the policy may not move (write-shared, over budget) stay
 * remote. Only vCPUs alone on their pCPU move, to an idle pCPU or by swapping with a vCPU
 * that wants to go the other way, so no pCPU ever gets a second vCPU. Portable: unit-tested
 * on the host (tests/unit/test_numa_affinity.c). */
#ifndef MB_NUMA_AFFINITY_H
#define MB_NUMA_AFFINITY_H
#include <stdbool.h>
#include <stdint.h>
#include "policy.h"

#define AFF_IDLE (-1)             /* aff_cpu.vcpu: the pCPU runs no vCPU */
#define AFF_BUSY (-2)             /* aff_cpu.vcpu: leave this pCPU alone (several vCPUs, ...) */
/* A vCPU with fewer misses than this in a period stays where it is: its placement matters
 * little, and small counts say little. A GUESS (a busy vCPU has 10^4-10^6 per 100 ms under
 * the TCG plugin). */
#define AFF_MIN_MISSES 1024
#define AFF_MAX_VCPUS  64      /* vCPUs one plan considers (one per pCPU at most) */

struct aff_cpu {
	int node;
	int vcpu;                          /* index into the planner's vCPUs, AFF_IDLE or AFF_BUSY */
};

struct aff_vcpu {
	int cpu;                           /* the pCPU it runs on alone */
	bool may_move;                     /* not moved lately; its VM spans pCPUs */
	uint64_t misses[NUMA_MAX_NODES];   /* in the period, by the node of the memory */
};

struct aff_move {
	int vcpu, to_cpu;
	bool wanted;                       /* it wanted this node (false: a swap partner that
					    * made room; the monitor starts no cool-down for it) */
};

/* The node a vCPU on own_node would rather run on, or -1: the node its misses went to most,
 * if it is not own_node, has at least AFF_MIN_MISSES and at least pct percent of own_node's
 * misses (pct > 100; 0: never). */
int aff_wanted_node(const struct aff_vcpu *v, int nnodes, int own_node, uint32_t pct);

/* At most max moves, strongest want first (most misses gained): a vCPU that wants node t
 * goes to an idle pCPU of t, else swaps with a vCPU on t that wants the first one's node,
 * else swaps with a vCPU on t that has nothing to lose there: one that may move and either
 * wants to leave t too or is quiet (fewer than AFF_MIN_MISSES in the period), the one with
 * the fewest misses on t first. The last kind is what undoes a guest scheduler's moves: a
 * process that moved to the vCPU of another node, leaving its old vCPU idle, gets that
 * node's pCPU back by a swap with the idle vCPU, and a rotation of processes around the
 * nodes unwinds one swap at a time (the displaced vCPU wants on, to the next node). A swap
 * is two moves. cpus[] is updated as if the moves were made. Returns how many moves out[]
 * holds. */
int aff_plan(struct aff_cpu *cpus, int ncpus, const struct aff_vcpu *v, int nv, int nnodes, uint32_t pct,
	     struct aff_move *out, int max);
#endif
