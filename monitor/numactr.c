/* NUMA miss counters from the TCG plugin: see numactr.h and numa/DESIGN-NUMA.md. */
#include "numactr.h"
#include "console.h"
#include "fmt.h"
#include "vm.h"

volatile struct mb_nctr_cpu *numactr_cpus;
static volatile struct mb_nctr_header *hdr0;
struct numactr_snap numactr_snap[HOST_MAX_CPUS];

static uint64_t region_base[HOST_MAX_MEM];     /* 0: that range has no counter region */
static uint64_t range_base[HOST_MAX_MEM], range_size[HOST_MAX_MEM];
static int range_node[HOST_MAX_MEM];
static struct { uint64_t local, remote, accesses, wait_accesses; } charged[MAX_VMS];
static uint32_t lat_local, lat_remote;

void numactr_probe(const struct host_topology *t)
{
	int found = 0;
	volatile struct mb_nctr_header *h0 = 0;
	for (int i = 0; i < t->nmem && i < HOST_MAX_MEM; i++) {
		uint64_t size = t->mem[i].size, bytes = mb_nctr_region_bytes(size, (unsigned)t->nnodes);
		if (bytes >= size)
			continue;
		volatile struct mb_nctr_header *h = (volatile void *)(uintptr_t)(t->mem[i].base + size - bytes);
		if (h->magic != MB_NCTR_MAGIC || h->version != MB_NCTR_VERSION || h->node != (uint32_t)t->mem[i].node ||
		    h->nnodes != (uint32_t)t->nnodes || h->node_bytes != size || h->region_bytes != bytes)
			continue;
		region_base[i] = t->mem[i].base + size - bytes;
		range_base[i] = t->mem[i].base;
		range_size[i] = size;
		range_node[i] = t->mem[i].node;
		found++;
		if (h->node == 0)
			h0 = h;
	}
	if (!found)
		return;                     /* no plugin: nothing changes */
	mb_printf("numa counters: the plugin's regions on %d of %d nodes (the top %lu KiB of each is not RAM)\n",
		  found, t->nnodes, (unsigned long)(mb_nctr_region_bytes(t->mem[0].size, (unsigned)t->nnodes) >> 10));
	if (!h0 || found != t->nnodes) {
		mb_printf("numa counters: not every node has a region: no per-VM figures\n");
		return;
	}
	/* The plugin numbers CPUs as QEMU does; we charge by our pCPU number. They must agree. */
	int ok = h0->ncpus == (uint32_t)t->ncpus && h0->cpus_per_node;
	for (int c = 0; ok && c < t->ncpus; c++)
		ok = (uint32_t)t->cpu_node[c] == (uint32_t)c / h0->cpus_per_node;
	if (!ok) {
		mb_printf("numa counters: the plugin's CPUs (%u, %u per node) do not match the host's: no per-VM figures\n",
			  h0->ncpus, h0->cpus_per_node);
		return;
	}
	lat_local = h0->lat_local_ns;
	lat_remote = h0->lat_remote_ns;
	mb_printf("numa counters: cache %u KiB, %u-byte lines, %u-way; %u ns local, %u ns remote\n",
		  h0->cache_bytes >> 10, h0->line_bytes, h0->cache_ways, lat_local, lat_remote);
	numactr_cpus = (volatile struct mb_nctr_cpu *)h0->cpu;
	hdr0 = h0;
}

uint64_t numactr_ram_end(int i, uint64_t end)
{
	if (i >= 0 && i < HOST_MAX_MEM && region_base[i] && region_base[i] < end)
		return region_base[i];
	return end;
}

uint64_t numactr_limit(uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < HOST_MAX_MEM; i++)
		if (region_base[i] > lo && region_base[i] < hi)
			hi = region_base[i];
	return hi;
}

void numactr_charge(int cpu, int vm)
{
	volatile struct mb_nctr_cpu *c = &numactr_cpus[cpu];
	uint64_t l = c->local, r = c->remote, a = c->accesses, w = c->wait_accesses;
	__atomic_add_fetch(&charged[vm].local, l - numactr_snap[cpu].local, __ATOMIC_RELAXED);
	__atomic_add_fetch(&charged[vm].remote, r - numactr_snap[cpu].remote, __ATOMIC_RELAXED);
	__atomic_add_fetch(&charged[vm].accesses, a - numactr_snap[cpu].accesses, __ATOMIC_RELAXED);
	__atomic_add_fetch(&charged[vm].wait_accesses, w - numactr_snap[cpu].wait_accesses, __ATOMIC_RELAXED);
	numactr_snap[cpu].local = l;
	numactr_snap[cpu].remote = r;
	numactr_snap[cpu].accesses = a;
	numactr_snap[cpu].wait_accesses = w;
}

uint64_t numactr_cpu_misses(int cpu, int node)
{
	if (!hdr0 || cpu < 0 || cpu >= MB_NCTR_MAX_CPUS || node < 0 || node >= MB_NCTR_MAX_NODES)
		return 0;
	return hdr0->cpu_misses[cpu][node];
}

int numactr_stats_json(int vm, char *buf, size_t len)
{
	if (!numactr_cpus || vm < 0 || vm >= MAX_VMS)
		return 0;
	uint64_t l = __atomic_load_n(&charged[vm].local, __ATOMIC_RELAXED);
	uint64_t r = __atomic_load_n(&charged[vm].remote, __ATOMIC_RELAXED);
	uint64_t a = __atomic_load_n(&charged[vm].accesses, __ATOMIC_RELAXED);
	uint64_t w = __atomic_load_n(&charged[vm].wait_accesses, __ATOMIC_RELAXED);
	/* no floating point at EL2 (-mgeneral-regs-only): the fraction in millionths */
	char frac[24] = "null";
	if (l + r) {
		uint64_t ppm = (l * 1000000 + (l + r) / 2) / (l + r);
		mb_snprintf(frac, sizeof(frac), "%lu.%06lu", ppm / 1000000, ppm % 1000000);
	}
	return mb_snprintf(buf, len, ",\"numa\":{\"local_misses\":%lu,\"remote_misses\":%lu,\"local_fraction\":%s,"
			   "\"modelled_stall_ns\":%lu,\"lat_local_ns\":%u,\"lat_remote_ns\":%u,\"accesses\":%lu,"
			   "\"wait_accesses\":%lu}",
			   l, r, frac, l * lat_local + r * lat_remote, lat_local, lat_remote, a, w);
}

int numactr_region(int node, struct numactr_region *r)
{
	if (!numactr_cpus)
		return 0;                   /* no plugin, or its CPUs are not ours: no node is known */
	for (int i = 0; i < HOST_MAX_MEM; i++)
		if (region_base[i] && range_node[i] == node) {
			uint64_t pages = range_size[i] / MB_NCTR_PAGE, b = region_base[i];
			unsigned nn = hdr0->nnodes;
			r->counts = (volatile uint16_t *)(uintptr_t)(b + MB_NCTR_HDR_BYTES);
			r->base = range_base[i];
			r->pages = pages;
			r->active = (volatile uint64_t *)(uintptr_t)(b + mb_nctr_active_offset(pages, nn));
			r->hdr = (volatile struct mb_nctr_header *)(uintptr_t)b;
			r->epoch = (volatile uint32_t *)(uintptr_t)(b + mb_nctr_epoch_offset(pages, nn));
			r->hot = (volatile uint64_t *)(uintptr_t)(b + mb_nctr_hot_offset(pages, nn));
			r->slots = (volatile uint32_t *)(uintptr_t)(b + mb_nctr_ring_offset(pages, nn));
			return 1;
		}
	return 0;
}

void numactr_ring_on(uint32_t hot, uint32_t remote, uint32_t decay)
{
	if (!hdr0)
		return;
	hdr0->ring_decay = decay;
	hdr0->ring_remote = remote;
	__atomic_store_n(&hdr0->ring_hot, hot, __ATOMIC_RELEASE);
}

uint32_t numactr_ring_epoch(int advance)
{
	if (!hdr0)
		return 0;
	if (advance)
		return __atomic_add_fetch(&hdr0->ring_epoch, 1, __ATOMIC_RELEASE);
	return __atomic_load_n(&hdr0->ring_epoch, __ATOMIC_ACQUIRE);
}
