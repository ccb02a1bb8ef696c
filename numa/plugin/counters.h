/* The miss-counter region: what the TCG plugin (numa/plugin/mbnuma.c) writes and the
 * monitor reads and resets (issue 7). Portable, no libc: the monitor will include it.
 *
 * Where: the last mb_nctr_region_bytes() bytes of every node's RAM. Each node's RAM is a
 * `memory-backend-file,share=on` file that the plugin maps too, so its stores are in guest
 * memory at once. FLASH kept its per-page counters in each node's directory memory; here
 * each node's region counts the misses to that node's pages.
 *
 * How the monitor finds it: for each memory node of the host DT, look at
 * base + size - mb_nctr_region_bytes(size, nnodes): if it starts with a header whose magic,
 * version, node, nnodes and node_bytes match, the plugin is there and that tail is not RAM
 * for palloc; otherwise there is no plugin and the node is all RAM. The plugin writes the
 * header (and zeroes the counters) when QEMU loads it, before any guest code runs.
 *
 * Layout of a node's region:
 *   struct mb_nctr_header                 (8 KiB)
 *   uint16_t count[pages][nnodes][2]      misses to page p of this node by CPUs of node n,
 *                                         [0] reads (and instruction fetches), [1] writes
 *                                         (write misses and upgrades); saturating at 65535
 *   uint64_t active[(pages + 63) / 64]    bit p set by the plugin when it counts a miss to
 *                                         page p; the monitor clears a word when it reads the
 *                                         rows of its set bits. The scan then reads only the
 *                                         rows that changed (FLASH told the monitor of hot
 *                                         pages; a full scan of every row each period took a
 *                                         third of CPU 0's time under TCG)
 * pages = node_bytes / 4096, the region's own pages included (they are never counted).
 * The monitor may zero counts at any time (the plugin's increments race with that, and with
 * each other: a lost count now and then is within the model's error). */
#ifndef MB_NUMA_COUNTERS_H
#define MB_NUMA_COUNTERS_H
#include <stdint.h>

#define MB_NCTR_MAGIC     0x3143414d554e424dull   /* "MBNUMAC1" little-endian */
#define MB_NCTR_VERSION   3                       /* 2: cpu_misses[][]; 3: active[], wait_accesses */
#define MB_NCTR_HDR_BYTES 8192ull
#define MB_NCTR_ALIGN     (2ull << 20)            /* the region is whole 2 MiB blocks */
#define MB_NCTR_MAX_NODES 8
#define MB_NCTR_MAX_CPUS  64
#define MB_NCTR_PAGE      4096ull

struct mb_nctr_cpu {               /* per physical CPU, in node 0's header only */
	uint64_t local;                /* misses served by the CPU's own node */
	uint64_t remote;               /* misses served by another node */
	uint64_t stall_ns;             /* local * lat_local_ns + remote * lat_remote_ns */
	uint64_t accesses;             /* loads, stores and fetched lines seen, but for: */
	uint64_t wait_accesses;        /* those of WFE wait loops (mbnuma.c access_line) */
	uint64_t charging;             /* the monitor's: 1 while these go to a VM (vCPU loaded) */
};

struct mb_nctr_header {
	uint64_t magic;                /* MB_NCTR_MAGIC, written last by the plugin */
	uint32_t version;              /* MB_NCTR_VERSION */
	uint32_t node;                 /* the node this region belongs to */
	uint32_t nnodes;
	uint32_t ncpus;
	uint32_t cpus_per_node;        /* CPU c is on node c / cpus_per_node */
	uint32_t line_bytes;           /* the modelled cache: line, size, ways */
	uint32_t cache_bytes;
	uint32_t cache_ways;
	uint32_t lat_local_ns;
	uint32_t lat_remote_ns;
	uint64_t node_bytes;           /* the node's whole RAM, the region included */
	uint64_t region_bytes;
	uint64_t pages;                /* rows of count[] */
	uint64_t served[MB_NCTR_MAX_NODES]; /* misses to this node's memory by CPUs of node n */
	uint64_t reserved[16];
	struct mb_nctr_cpu cpu[MB_NCTR_MAX_CPUS];  /* node 0 only */
	/* node 0 only: misses of CPU c to node k's memory (the monitor's vCPU affinity) */
	uint64_t cpu_misses[MB_NCTR_MAX_CPUS][MB_NCTR_MAX_NODES];
};

_Static_assert(sizeof(struct mb_nctr_header) <= MB_NCTR_HDR_BYTES, "header fits its pages");

/* Byte offset of active[] in a node's region (8-byte aligned: the rows are 4 bytes a node). */
static inline uint64_t mb_nctr_active_offset(uint64_t pages, unsigned nnodes)
{
	return MB_NCTR_HDR_BYTES + ((pages * nnodes * 2 * sizeof(uint16_t) + 7) & ~7ull);
}

static inline uint64_t mb_nctr_region_bytes(uint64_t node_bytes, unsigned nnodes)
{
	uint64_t pages = node_bytes / MB_NCTR_PAGE;
	uint64_t bytes = mb_nctr_active_offset(pages, nnodes) + (pages + 63) / 64 * sizeof(uint64_t);
	return (bytes + MB_NCTR_ALIGN - 1) & ~(MB_NCTR_ALIGN - 1);
}

/* Index of page p's count by CPUs of node n, kind 0 read / 1 write, in the uint16_t array
 * that follows the header. */
static inline uint64_t mb_nctr_index(uint64_t page, unsigned n, unsigned nnodes, unsigned kind)
{
	return (page * nnodes + n) * 2 + kind;
}

/* QEMU 7.2's qemu_plugin_hwaddr_phys_addr() for RAM is the RAM block's ram_addr offset +
 * the offset in the block + the block's memory region address in its container. With one
 * equal-sized memory-backend per node, created in node order, node k's block sits at
 * k * node_bytes and its region at k * node_bytes in the machine's RAM container, so node
 * k reports [2k * node_bytes, 2k * node_bytes + node_bytes) (measured: numa/DESIGN-NUMA.md).
 * Returns the node and sets *maddr to the machine offset (node 0's RAM start = 0), or -1
 * for an address in no node's RAM or in a counter region. */
static inline int mb_nctr_locate_qemu72(uint64_t reported, uint64_t node_bytes,
					uint64_t region_bytes, unsigned nnodes, uint64_t *maddr)
{
	uint64_t k = reported / (2 * node_bytes), off = reported % (2 * node_bytes);
	if (k >= nnodes || off >= node_bytes - region_bytes)
		return -1;
	*maddr = k * node_bytes + off;
	return (int)k;
}

#endif
