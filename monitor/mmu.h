#ifndef MB_MMU_H
#define MB_MMU_H
#include "hostdt.h"
void mmu_build(const struct host_topology *t);   /* once, on CPU 0 */
void mmu_enable(void);                            /* on every CPU */
/* Once, on CPU 0, after the page allocator is up: per-node tables with a node-local copy of
 * the monitor's text and read-only data; returns the number of nodes that got one. */
int mmu_replicate_text(int nnodes);
/* On each CPU before it schedules: load its node's tables (node 0 keeps the boot tables). */
void mmu_use_node(int node);
#endif
