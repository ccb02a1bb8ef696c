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
 *   uint32_t epoch[pages]                 version 4, the hot-page ring (below): the epoch
 *                                         of page p's counts
 *   uint64_t hot[(pages + 63) / 64]       bit p: page p is in the ring, or being decided
 *   uint32_t ring[MB_NCTR_RING]           page + 1 of each page that turned hot; 0: free
 * pages = node_bytes / 4096, the region's own pages included (they are never counted).
 *
 * The hot-page ring (version 4). FLASH's directory interrupted a processor when a page's
 * count passed a threshold; a monitor that must find hot pages by reading every counted row
 * spent half of its policy time doing so (numa/DESIGN-NUMA.md, thirteenth session). When
 * the monitor sets ring_hot in node 0's header, the plugin (1) counts in epochs: a row whose
 * epoch[] is older than node 0's ring_epoch is decayed by ring_decay per epoch (zeroed at
 * 16 or more) before the miss is counted, so the monitor no longer ages rows it never
 * looks at; and (2) when a row's total reaches ring_hot and its hot[] bit was clear, sets
 * and some other node than the page's own has made ring_remote of them (a page only its own
 * node misses needs nothing: numa/policy.h's rules act only on a remote node with
 * numa_share misses, or with numa_migrate_pct % of at least numa_hot), sets
 * the bit and appends the page to its node's ring (if the ring is full it clears the bit
 * again and counts a drop: the next miss tries again). The monitor takes the pages each
 * period, decides, clears their hot[] bits and then advances ring_epoch. A row the monitor
 * aged itself gets an epoch one ahead (epoch_age() below: "not older"), so the plugin does
 * not age it twice. With ring_hot 0 the plugin counts as version 3 did.
 * The monitor may zero counts at any time (the plugin's increments race with that, and with
 * each other: a lost count now and then is within the model's error). */
#ifndef MB_NUMA_COUNTERS_H
#define MB_NUMA_COUNTERS_H
#include <stdint.h>

#define MB_NCTR_MAGIC     0x3143414d554e424dull   /* "MBNUMAC1" little-endian */
#define MB_NCTR_VERSION   4                       /* 2: cpu_misses[][]; 3: active[], wait_accesses;
						  * 4: the hot-page ring */
#define MB_NCTR_HDR_BYTES 8192ull
#define MB_NCTR_ALIGN     (2ull << 20)            /* the region is whole 2 MiB blocks */
#define MB_NCTR_MAX_NODES 8
#define MB_NCTR_MAX_CPUS  64
#define MB_NCTR_PAGE      4096ull
#define MB_NCTR_RING      32768u                  /* ring entries per node */

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
	/* this node's hot-page ring: head is the plugin's (entries reserved), tail the monitor's
	 * (entries taken); pushed and dropped (ring full) count for the monitor's stats */
	uint64_t ring_head, ring_tail, ring_pushed, ring_dropped;
	/* node 0 only, written by the monitor: the ring's thresholds (ring_hot 0: no ring), the
	 * decay per epoch (a right shift, >= 16 zeroes), and the epoch */
	uint32_t ring_hot, ring_remote, ring_decay, ring_epoch;
	uint64_t reserved[10];
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

/* Byte offsets of epoch[], hot[] and ring[] (version 4), each 8-byte aligned. */
static inline uint64_t mb_nctr_epoch_offset(uint64_t pages, unsigned nnodes)
{
	return mb_nctr_active_offset(pages, nnodes) + (pages + 63) / 64 * sizeof(uint64_t);
}

static inline uint64_t mb_nctr_hot_offset(uint64_t pages, unsigned nnodes)
{
	return mb_nctr_epoch_offset(pages, nnodes) + ((pages * sizeof(uint32_t) + 7) & ~7ull);
}

static inline uint64_t mb_nctr_ring_offset(uint64_t pages, unsigned nnodes)
{
	return mb_nctr_hot_offset(pages, nnodes) + (pages + 63) / 64 * sizeof(uint64_t);
}

static inline uint64_t mb_nctr_region_bytes(uint64_t node_bytes, unsigned nnodes)
{
	uint64_t pages = node_bytes / MB_NCTR_PAGE;
	uint64_t bytes = mb_nctr_ring_offset(pages, nnodes) + MB_NCTR_RING * sizeof(uint32_t);
	return (bytes + MB_NCTR_ALIGN - 1) & ~(MB_NCTR_ALIGN - 1);
}

/* Index of page p's count by CPUs of node n, kind 0 read / 1 write, in the uint16_t array
 * that follows the header. */
static inline uint64_t mb_nctr_index(uint64_t page, unsigned n, unsigned nnodes, unsigned kind)
{
	return (page * nnodes + n) * 2 + kind;
}

/* ---- the hot-page ring: shared by the plugin (producers, one per vCPU thread) and the
 * monitor (the one consumer), and unit-tested on the host ---- */

/* How many epochs old a row is: 0 for this epoch's, and 0 for a row the monitor aged ahead
 * of the plugin (its epoch is now + 1: "not older"). */
static inline uint32_t mb_nctr_epoch_age(uint32_t now, uint32_t row_epoch)
{
	uint32_t age = now - row_epoch;
	return age >= 0x80000000u ? 0 : age;
}

/* Before a miss is counted in a row (2 * nnodes counts) whose epoch is *row_epoch: decay it
 * by `decay` bits per epoch it missed (>= 16: zero) and make it this epoch's. */
static inline void mb_nctr_epoch_catch_up(uint16_t *row, uint32_t *row_epoch, uint32_t now, unsigned nnodes,
					  unsigned decay)
{
	uint32_t age = mb_nctr_epoch_age(now, *row_epoch);
	if (!age)
		return;
	unsigned shift = decay >= 16 || age >= 16 ? 16 : decay * age;
	for (unsigned k = 0; k < 2 * nnodes; k++)
		row[k] = shift >= 16 ? 0 : (uint16_t)(row[k] >> shift);
	*row_epoch = now;
}

/* Whether a row of a page of node `own` belongs in the ring: hot misses in all, and
 * remote of them from one other node. */
static inline int mb_nctr_row_wanted(const uint16_t *row, unsigned nnodes, unsigned own, uint32_t hot,
				     uint32_t remote)
{
	uint32_t total = 0, most = 0;
	for (unsigned n = 0; n < nnodes; n++) {
		uint32_t m = (uint32_t)row[2 * n] + row[2 * n + 1];
		total += m;
		if (n != own && m > most)
			most = m;
	}
	return total >= hot && most >= remote;
}

/* Appends page to a node's ring (head, tail: its header's ring_head, ring_tail; slots: its
 * ring[]). Returns 0 when the ring is full. Any number of producers. A slot is written
 * after it is reserved, so the consumer stops at a reserved slot still 0. */
static inline int mb_nctr_ring_push(uint64_t *head, const uint64_t *tail, uint32_t *slots, uint32_t page)
{
	uint64_t h = __atomic_load_n(head, __ATOMIC_RELAXED);
	do {
		if (h - __atomic_load_n(tail, __ATOMIC_ACQUIRE) >= MB_NCTR_RING)
			return 0;
	} while (!__atomic_compare_exchange_n(head, &h, h + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	__atomic_store_n(&slots[h % MB_NCTR_RING], page + 1, __ATOMIC_RELEASE);
	return 1;
}

/* The one consumer: the next page, or -1 when the ring holds none up to `end` (a head read
 * before, so a period takes only what was there when it began) or the next one is reserved
 * but not yet written. The slot is freed (0) before the tail moves past it. */
static inline int64_t mb_nctr_ring_pop(uint64_t *tail, uint32_t *slots, uint64_t end)
{
	uint64_t t = *tail;
	if (t >= end)
		return -1;
	uint32_t v = __atomic_load_n(&slots[t % MB_NCTR_RING], __ATOMIC_ACQUIRE);
	if (!v)
		return -1;
	slots[t % MB_NCTR_RING] = 0;
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
	return (int64_t)v - 1;
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
