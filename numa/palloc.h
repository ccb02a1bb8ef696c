/* Per-node machine-page allocator with per-CPU caches, and the memmap (one record per
 * machine page: who maps it). Portable: machine addresses are pointers (identity map). */
#ifndef MB_PALLOC_H
#define MB_PALLOC_H
#include <stdint.h>
#include "spinlock.h"
#include "bits.h"

#define PALLOC_MAX_NODES   8
#define PALLOC_MAX_RANGES  4      /* per node */
#define PCACHE_SIZE        32

/* Page colours: pages whose addresses agree in these bits fall in the same sets of any
 * physically indexed cache of up to PALLOC_COLOURS pages per way (1 MiB: the NUMA cost
 * model's default direct-mapped cache, and a common L2 way size). */
#define PALLOC_COLOURS     256

/* What a machine page is used for, and by whom. */
/* MM_SHARED: a merged page, nobody's; MM_DCACHE: a disk-cache page (the cache holds one of
 * its sharers). Both are freed when their last sharer goes. */
enum mm_use { MM_FREE = 0, MM_MONITOR, MM_GUEST, MM_IMAGE, MM_PTABLE, MM_SHARED, MM_DCACHE };

struct memmap_entry {
	uint16_t use;        /* enum mm_use */
	uint16_t vm;         /* owning VM index for MM_GUEST */
	uint32_t gpfn;       /* guest page frame (relative to guest RAM base) for MM_GUEST */
	uint32_t sharers;    /* mappings of this page copy-on-write (MM_IMAGE, MM_SHARED) */
	uint32_t origin;     /* MM_GUEST copies: frame number of the image page it was copied from */
};

struct palloc_range {
	uint64_t base, end;          /* usable pages [base, end) */
	uint64_t frontier;           /* pages at or above this were never handed out */
	struct memmap_entry *memmap; /* one entry per page in [base, end) */
};

struct palloc_node {
	spinlock_t lock;
	int nranges;
	struct palloc_range range[PALLOC_MAX_RANGES];
	/* free pages, one list per cache colour (linked through each page's first word), so
	 * a page of a given colour is found at once; plain allocations take the colours in
	 * turn (consecutive allocations fall in different cache sets) */
	uint64_t free_head[PALLOC_COLOURS];
	uint64_t nfree;              /* pages on the lists */
	uint32_t next_colour;        /* the list a plain allocation looks at first */
	uint64_t total_pages;
	uint64_t used_pages;         /* handed out and not returned (cached pages count as free) */
} __attribute__((aligned(64)));

struct palloc_cache {               /* one per pCPU, only touched by its owner */
	int node;
	int n;
	uint64_t page[PCACHE_SIZE];
};

struct palloc {
	int nnodes;
	struct palloc_node node[PALLOC_MAX_NODES];
	uint8_t order[PALLOC_MAX_NODES][PALLOC_MAX_NODES]; /* fallback order by distance */
};

extern struct palloc g_palloc;

void palloc_reset(struct palloc *pa, int nnodes);
/* Gives [base, end) to node; carves the range's memmap from its start. Returns 0 or -1. */
int palloc_add_range(struct palloc *pa, int node, uint64_t base, uint64_t end);
/* Registers [base, end) as memory that is already in use (e.g. the host image) so the memmap
 * can describe it; memmap must hold one entry per page. Nothing is ever allocated from it. */
int palloc_add_used_range(struct palloc *pa, int node, uint64_t base, uint64_t end,
			  struct memmap_entry *memmap, uint16_t use);
/* distance[a][b]: orders the nodes to fall back on when one runs dry. */
void palloc_set_distances(struct palloc *pa, const uint32_t distance[][8]);
/* A page on 'node' (or the nearest node with one); 0 when all memory is used. Not zeroed. */
uint64_t palloc_alloc(struct palloc *pa, int node, struct palloc_cache *cache);
void palloc_free(struct palloc *pa, uint64_t page, struct palloc_cache *cache);
/* A page on 'node' only (no fallback) of the same colour as 'like', for page moves: a
 * moved page keeps its place in the caches, so moving it adds no conflict misses. Takes
 * the colour's free list, else advances a range's frontier to the colour (the pages
 * skipped go to their free lists, nothing is lost); if neither has one, any page of the
 * node. 0 when the node has none. Not zeroed. */
uint64_t palloc_alloc_colour(struct palloc *pa, int node, uint64_t like);
/* The memmap entry of a page that lies in range r. */
static inline struct memmap_entry *palloc_range_entry(const struct palloc_range *r, uint64_t page)
{
	return &r->memmap[(page - r->base) >> PAGE_SHIFT];
}
/* Node holding machine page 'page', or -1. */
int palloc_node_of(struct palloc *pa, uint64_t page);
struct memmap_entry *memmap_of(struct palloc *pa, uint64_t page);
/* memmap_of for walks whose pages mostly lie in one range (a VM's pmap): *hint is the range
 * the last page was found in (start with 0), tried before the search. Under the NUMA plugin
 * every load the monitor makes is a callback, and the sharing pass looked up each of every
 * VM's pages across all nodes' ranges every second. */
struct memmap_entry *memmap_of_near(struct palloc *pa, uint64_t page, struct palloc_range **hint);
uint64_t palloc_free_pages(struct palloc *pa, int node);
#endif
