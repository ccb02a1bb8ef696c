/* The NUMA miss counters of the TCG plugin (numa/plugin/counters.h, issue 7): finding the
 * plugin's regions at boot, keeping them out of the page allocator, and charging the misses
 * to the VMs. Without the plugin (no header at the top of the nodes) every hook is one load
 * and a not-taken branch, and the monitor behaves exactly as before. */
#ifndef MB_NUMACTR_H
#define MB_NUMACTR_H
#include <stdint.h>
#include <stddef.h>
#include "hostdt.h"
#include "plugin/counters.h"

/* Node 0's per-CPU totals (cpu[] of its header), NULL without the plugin or when the
 * plugin's CPU numbering does not match ours (then regions are still reserved). */
extern volatile struct mb_nctr_cpu *numactr_cpus;

struct numactr_snap { uint64_t local, remote, accesses, wait_accesses; } __attribute__((aligned(64)));
extern struct numactr_snap numactr_snap[HOST_MAX_CPUS];
void numactr_charge(int cpu, int vm);

/* At boot, after the EL2 map is on: look for a valid header at the top of each memory range. */
void numactr_probe(const struct host_topology *t);
/* The end of memory range i that is RAM (its counter region cut off), given its end. */
uint64_t numactr_ram_end(int i, uint64_t end);
/* The lowest region base in (lo, hi], else hi: how far the host image may be read. */
uint64_t numactr_limit(uint64_t lo, uint64_t hi);

/* World switch, on the pCPU itself: vcpu_load snapshots the pCPU's totals, vcpu_put adds
 * what changed since to the VM that ran. */
static inline void numactr_load(int cpu)
{
	volatile struct mb_nctr_cpu *c = numactr_cpus;
	if (c) {
		numactr_snap[cpu].local = c[cpu].local;
		numactr_snap[cpu].remote = c[cpu].remote;
		numactr_snap[cpu].accesses = c[cpu].accesses;
		numactr_snap[cpu].wait_accesses = c[cpu].wait_accesses;
		c[cpu].charging = 1;
	}
}

static inline void numactr_put(int cpu, int vm)
{
	if (numactr_cpus) {
		numactr_charge(cpu, vm);
		numactr_cpus[cpu].charging = 0;
	}
}

/* Node `node`'s counter region (counters.h) as the policy reads it: the per-page counts of
 * the node's memory (count[page][node][read, write], page 0 at base, `pages` rows), the
 * bitmap of the pages counted since their bit was cleared (active), and the hot-page ring
 * (version 4): the region's header (ring_head, ring_tail, ...) and its epoch[], hot[] and
 * ring[] arrays. Returns 0 (and leaves *r alone) without the plugin or when its CPU
 * numbering is not the host's. */
struct numactr_region {
	volatile uint16_t *counts;
	uint64_t base, pages;
	volatile uint64_t *active;
	volatile struct mb_nctr_header *hdr;
	volatile uint32_t *epoch;
	volatile uint64_t *hot;
	volatile uint32_t *slots;
};
int numactr_region(int node, struct numactr_region *r);
/* Node 0's ring controls: numactr_ring_on(hot, remote, decay) makes the plugin count by
 * epoch and push pages that reach `hot` misses, `remote` of them from one other node than
 * the page's (counters.h); numactr_ring_epoch(1) starts the next epoch and
 * returns it, numactr_ring_epoch(0) returns the current one. */
void numactr_ring_on(uint32_t hot, uint32_t remote, uint32_t decay);
uint32_t numactr_ring_epoch(int advance);

/* Misses of pCPU cpu to node node's memory so far (0 without the plugin). */
uint64_t numactr_cpu_misses(int cpu, int node);

/* ,"numa":{...} for VM vm's stats line (nothing without the plugin); returns its length. */
int numactr_stats_json(int vm, char *buf, size_t len);
#endif
