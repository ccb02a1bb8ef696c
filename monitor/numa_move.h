/* The NUMA policy's period driver (issue 7): every period CPU 0 reads each hot guest page's
 * misses per node from the counter source, lets the policy decide (numa/policy.h) and the
 * pmap move the page (pmap/numa_apply.h): migration to the node that dominates its misses,
 * read-only replicas on the nodes that only read it. Counter sources: the TCG plugin's
 * per-page counts (numa/plugin/counters.h) or, without it, the monitor's own sampling of
 * stage-2 faults. With the policy off (the default) every hook is one test of a global. */
#ifndef MB_NUMA_MOVE_H
#define MB_NUMA_MOVE_H
#include <stdint.h>
#include <stddef.h>
#include "mirrorball/hostimg.h"

struct vm;

#define NUMA_MAX_SAMPLE     512   /* sampling: pages per VM per period at most (numa_sample_pages) */
#define NUMA_SAMPLE_ROUNDS  4     /* sampling: revocations of the sample per period */

/* At boot, after the host image is validated and numactr_probe ran: take the header's
 * policy. If it asks for the plugin's counters and there are none, say so and stay off. */
void numa_move_init(const struct mb_img_header *h);
/* Is a policy running? */
extern int numa_move_on;
/* Replication is on: VMs get per-node stage-2 roots (vm_boot calls numa_move_vm_boot). */
void numa_move_vm_boot(struct vm *vm);
/* Before a VM's pmap is destroyed (restart, exit): forget its pages' state. */
void numa_move_vm_teardown(struct vm *vm);
/* CPU 0, from the scheduler loop: run a period if one is due. */
void numa_move_tick(void);
/* The next period's deadline in CNTPCT ticks (~0 with the policy off), for CPU 0's timer. */
uint64_t numa_move_deadline(void);
/* Sampling: a stage-2 fault at gpa in vm by a vCPU on `node` (write: a write access). */
void numa_sample_fault(struct vm *vm, uint64_t gpa, int node, int write);
/* ,"moves":{...} for the VM's stats line; returns its length (0 with the policy off). */
int numa_move_stats_json(int vm, char *buf, size_t len);
#endif
