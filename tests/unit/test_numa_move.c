/* NUMA page movement in the pmap (issue 7): pmap_migrate, pmap_replicate, pmap_collapse and
 * the write fault that collapses, on a 4-node g_palloc over host memory, with per-node
 * stage-2 roots; and host threads as vCPUs on the nodes reading and writing guest pages
 * through their node's root while another thread migrates, replicates and collapses them.
 *
 * The simulated vCPU walks its node's stage-2 root for every access (a TLB that holds one
 * translation for one access) and faults through pmap_fault when the entry is missing or
 * read-only. TLB invalidation is modelled as the architecture defines its completion: this
 * binary links with -Wl,--wrap=arch_s2_flush_ipa (Makefile), and the wrapper returns only
 * when every access that was in flight when it was called has finished (a per-thread
 * sequence number, odd during an access). So an access either used the old translation and
 * finished before the invalidation completed, or walks the tables afresh. The vCPUs take
 * turns with the mover (a few accesses each per move, some during it), so the test is
 * quick and every move meets accesses.
 *
 * Pages come from a pool mapped below 2 GiB: pmap entries keep address bits [39:12] only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "pmap.h"
#include "stage2.h"
#include "palloc.h"
#include "policy.h"
#include "numa_apply.h"
#include "bits.h"
#include "arch_stub.h"
#include "mirrorball/arch_hooks.h"

#define NODES 4
#define NODE_PAGES 600
#define RAM_BASE MB_GUEST_RAM_BASE
#define RAM_SIZE (16ULL << 20)
#define VMID 9
#define MAX_THREADS 8

/* ---- TLB invalidation that waits for accesses in flight (see the top) ---- */

static uint64_t inflight[MAX_THREADS];
static int nthreads_live;

static void wait_inflight(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	int n = __atomic_load_n(&nthreads_live, __ATOMIC_SEQ_CST);
	for (int t = 0; t < n; t++) {
		uint64_t s = __atomic_load_n(&inflight[t], __ATOMIC_SEQ_CST);
		if (s & 1)
			while (__atomic_load_n(&inflight[t], __ATOMIC_SEQ_CST) == s)
				sched_yield();  /* the host may have fewer CPUs than vCPU threads */
	}
}

void __real_arch_s2_flush_ipa(uint16_t vmid, uint64_t ipa, int broadcast);
void __wrap_arch_s2_flush_ipa(uint16_t vmid, uint64_t ipa, int broadcast)
{
	__real_arch_s2_flush_ipa(vmid, ipa, broadcast);
	wait_inflight();
}

/* a VM-wide invalidation (page-move batches) waits the same way; a test may look at the
 * pmap from there, between a batch's breaks and its copies */
static void (*during_vmid_flush)(void);
void __real_arch_s2_flush_vmid(uint16_t vmid, int broadcast);
void __wrap_arch_s2_flush_vmid(uint16_t vmid, int broadcast)
{
	__real_arch_s2_flush_vmid(vmid, broadcast);
	wait_inflight();
	if (during_vmid_flush)
		during_vmid_flush();
}

/* The mover thread widens its windows so a broken order shows up even on a host with two
 * CPUs: it yields after each page copy (arch_clean_dcache follows every copy, also wrapped),
 * and a page it frees is poisoned first and yielded on (a vCPU still reading it would see
 * zeros). Correct code has no vCPU reach either page at those points. */
static __thread int is_mover;
static void (*after_mover_copy)(void);      /* a test's look at the pmap between two copies */
void __real_arch_clean_dcache(const void *p, size_t len);
void __wrap_arch_clean_dcache(const void *p, size_t len)
{
	__real_arch_clean_dcache(p, len);
	if (is_mover && len == PAGE_SIZE)
		sched_yield();
	if (is_mover && after_mover_copy)
		after_mover_copy();
}

/* ---- memory: a low pool, 4 nodes of g_palloc in it, roots ---- */

static uint8_t *pool;
#define POOL_PAGES (NODES * NODE_PAGES + 2 * NODES + 64)

static void pool_map(void)
{
	pool = low_pool_map(POOL_PAGES * PAGE_SIZE);
	assert_non_null(pool);
}

/* page sources on g_palloc: one per node; `guest` (first touch, frees) and `tables` on node 0 */
struct nsrc { int node; long live; };
static struct nsrc nsrc[NODES], guest_s = { 0, 0 }, table_s = { 0, 0 };

static uint64_t n_alloc(void *arg)
{
	struct nsrc *s = arg;
	uint64_t p = palloc_alloc(&g_palloc, s->node, NULL);
	if (p) {
		memset((void *)(uintptr_t)p, 0, PAGE_SIZE);
		memmap_of(&g_palloc, p)->use = MM_GUEST;
		__atomic_fetch_add(&s->live, 1, __ATOMIC_RELAXED);
	}
	return p;
}

static void n_free(void *arg, uint64_t page)
{
	struct nsrc *s = arg;
	assert_true(palloc_node_of(&g_palloc, page) >= 0);
	__atomic_fetch_sub(&s->live, 1, __ATOMIC_RELAXED);
	if (is_mover) {
		memset((void *)(uintptr_t)page, 0, PAGE_SIZE);
		sched_yield();
	}
	palloc_free(&g_palloc, page, NULL);
}

static struct page_source node_src_s[NODES];
static const struct page_source *node_src[NODES];
static const struct page_source guest = { n_alloc, n_free, &guest_s, 0 };
static const struct page_source tables = { n_alloc, n_free, &table_s, 0 };

static struct pmap *pm;
static struct stage2 s2;
static uint64_t used0[NODES];

static uint64_t used_pages(int node) { return g_palloc.node[node].used_pages; }

static int setup(void **state)
{
	(void)state;
	if (!pool)
		pool_map();
	memset(pool, 0, POOL_PAGES * PAGE_SIZE);
	palloc_reset(&g_palloc, NODES);
	/* roots first (8 KiB aligned: the pool is page aligned, so take an even page) */
	uint8_t *p = pool;
	if ((uintptr_t)p & PAGE_SIZE)
		p += PAGE_SIZE;
	uint64_t roots[NODES];
	for (int n = 0; n < NODES; n++, p += 2 * PAGE_SIZE)
		roots[n] = (uint64_t)(uintptr_t)p;
	for (int n = 0; n < NODES; n++, p += NODE_PAGES * PAGE_SIZE)
		assert_int_equal(palloc_add_range(&g_palloc, n, (uint64_t)(uintptr_t)p,
						  (uint64_t)(uintptr_t)p + NODE_PAGES * PAGE_SIZE), 0);
	for (int n = 0; n < NODES; n++) {
		nsrc[n] = (struct nsrc){ n, 0 };
		node_src_s[n] = (struct page_source){ n_alloc, n_free, &nsrc[n], 0 };
		node_src[n] = &node_src_s[n];
		used0[n] = used_pages(n);
	}
	guest_s.live = table_s.live = 0;
	pm = calloc(1, sizeof(*pm));
	assert_non_null(pm);
	pmap_init(pm, RAM_BASE, RAM_SIZE, 5);
	memset(&s2, 0, sizeof(s2));
	s2.root = roots[0];
	s2.vmid = VMID;
	assert_int_equal(s2_enable_node_roots(&s2, NODES, roots), 0);
	arch_stub_reset();
	nthreads_live = 0;
	memset(inflight, 0, sizeof(inflight));
	return 0;
}

/* Teardown checks every page came back: pmap_destroy must free replicas too. */
static int teardown(void **state)
{
	(void)state;
	pmap_destroy(pm, &guest, &tables);
	s2_destroy(&s2, &tables);
	free(pm);
	for (int n = 0; n < NODES; n++)
		assert_int_equal(used_pages(n), used0[n]);
	return 0;
}

static uint64_t gpa_of(int i) { return RAM_BASE + (uint64_t)i * PAGE_SIZE; }
static uint8_t *page_at(uint64_t e) { return (uint8_t *)(uintptr_t)PMAP_ADDR(e); }
static int node_of(uint64_t e) { return palloc_node_of(&g_palloc, PMAP_ADDR(e)); }

static void fill(uint64_t gpa, uint8_t seed)
{
	assert_int_equal(pmap_fault(pm, &s2, gpa, 1, &guest, &tables), PMAP_OK);
	uint8_t *m = page_at(pmap_lookup(pm, gpa));
	for (int i = 0; i < (int)PAGE_SIZE; i++)
		m[i] = (uint8_t)(seed + i * 13);
}

static int holds(const uint8_t *m, uint8_t seed)
{
	for (int i = 0; i < (int)PAGE_SIZE; i++)
		if (m[i] != (uint8_t)(seed + i * 13))
			return 0;
	return 1;
}

/* ---------------- migration ---------------- */

static void test_migrate(void **state)
{
	(void)state;
	uint64_t gpa = gpa_of(3);
	fill(gpa, 0x21);
	uint64_t e0 = pmap_lookup(pm, gpa);
	assert_int_equal(node_of(e0), 0);
	uint64_t u0 = used_pages(0), u2 = used_pages(2);
	unsigned long fl = arch_stub.vmid_flushes, ic = arch_stub.icache_syncs;

	assert_int_equal(pmap_migrate(pm, &s2, gpa, 2, node_src[2], &guest, &tables), PMAP_OK);
	uint64_t e1 = pmap_lookup(pm, gpa);
	assert_int_equal(node_of(e1), 2);
	assert_int_equal(e1 & ~PMAP_ADDR(~0ULL), e0 & ~PMAP_ADDR(~0ULL));   /* flags kept */
	assert_true(holds(page_at(e1), 0x21));
	assert_int_equal(used_pages(0), u0 - 1);                       /* old page freed */
	assert_int_equal(used_pages(2), u2 + 1);
	assert_int_equal(arch_stub.vmid_flushes, fl + 1);              /* invalidated */
	assert_int_equal(arch_stub.last_flush_vmid, VMID);
	assert_int_equal(arch_stub.icache_syncs, ic + 1);
	for (int n = 0; n < NODES; n++)                                 /* remapped in every root */
		assert_int_equal(s2_lookup_node(&s2, n, gpa) & S2_ADDR_MASK, PMAP_ADDR(e1));
	assert_int_equal(s2_lookup(&s2, gpa) & S2_AP_RW, S2_AP_RW);
	struct memmap_entry *m = memmap_of(&g_palloc, PMAP_ADDR(e1));
	assert_int_equal(m->use, MM_GUEST);
	assert_int_equal(m->vm, 5);
	assert_int_equal(m->gpfn, 3);
	assert_int_equal(pm->migrated, 1);

	/* already there; not present; outside */
	assert_int_equal(pmap_migrate(pm, &s2, gpa, 2, node_src[2], &guest, &tables), PMAP_SKIP);
	assert_int_equal(pmap_migrate(pm, &s2, gpa_of(4), 1, node_src[1], &guest, &tables), PMAP_SKIP);
	assert_int_equal(pmap_migrate(pm, &s2, RAM_BASE + RAM_SIZE, 1, node_src[1], &guest, &tables), PMAP_OUTSIDE);
	/* a copy-on-write page (mapped by others too) is not moved */
	uint64_t shared = n_alloc(&nsrc[1]);
	memmap_of(&g_palloc, shared)->use = MM_SHARED;
	assert_int_equal(pmap_map_cow(pm, gpa_of(5), shared, &tables), PMAP_OK);
	assert_int_equal(pmap_migrate(pm, &s2, gpa_of(5), 3, node_src[3], &guest, &tables), PMAP_SKIP);
	nsrc[1].live--;         /* freed by its last mapping at teardown, not through the source */
}

static void test_migrate_unmapped_and_nomem(void **state)
{
	(void)state;
	uint64_t gpa = gpa_of(7);
	fill(gpa, 0x5A);
	s2_unmap(&s2, gpa);             /* a cache: dropped entries stay dropped after the move */
	assert_int_equal(pmap_migrate(pm, &s2, gpa, 1, node_src[1], &guest, &tables), PMAP_OK);
	for (int n = 0; n < NODES; n++)
		assert_int_equal(s2_lookup_node(&s2, n, gpa), 0);
	assert_true(holds(page_at(pmap_lookup(pm, gpa)), 0x5A));

	/* node 3 full: palloc falls back to another node, the move is refused, nothing changes */
	uint64_t grab[NODE_PAGES];
	int ng = 0;
	while (palloc_free_pages(&g_palloc, 3))
		grab[ng++] = palloc_alloc(&g_palloc, 3, NULL);
	uint64_t e = pmap_lookup(pm, gpa), u[NODES];
	for (int n = 0; n < NODES; n++)
		u[n] = used_pages(n);
	assert_int_equal(pmap_migrate(pm, &s2, gpa, 3, node_src[3], &guest, &tables), PMAP_NOMEM);
	assert_int_equal(pmap_lookup(pm, gpa), e);
	for (int n = 0; n < NODES; n++)
		assert_int_equal(used_pages(n), u[n]);
	while (ng)
		palloc_free(&g_palloc, grab[--ng], NULL);
}

/* Moves name the page they move to a source that can use it (the monitor's keep its cache
 * colour: palloc_alloc_colour, tested in test_palloc). */
static uint64_t last_like;
static uint64_t n_like(void *arg, uint64_t like)
{
	last_like = like;
	return n_alloc(arg);
}

static void test_moves_pass_the_moved_page(void **state)
{
	(void)state;
	for (int n = 0; n < NODES; n++)
		node_src_s[n].alloc_like = n_like;
	uint64_t gpa = gpa_of(12);
	fill(gpa, 0x44);
	uint64_t old = PMAP_ADDR(pmap_lookup(pm, gpa));
	last_like = 0;
	assert_int_equal(pmap_migrate(pm, &s2, gpa, 1, node_src[1], &guest, &tables), PMAP_OK);
	assert_int_equal(last_like, old);
	fill(gpa_of(13), 0x45);
	uint64_t home = PMAP_ADDR(pmap_lookup(pm, gpa_of(13)));
	last_like = 0;
	assert_int_equal(pmap_replicate(pm, &s2, gpa_of(13), 0x4, node_src, &tables), 1);
	assert_int_equal(last_like, home);
	for (int n = 0; n < NODES; n++)
		node_src_s[n].alloc_like = 0;
}

/* Many moves, over two regions: one VM-wide invalidation (and one more for the replicas'
 * nodes) and one I-cache invalidation for the lot, each page moved as alone; an entry out of
 * order, repeated or bad is refused alone. */
static void test_move_batch(void **state)
{
	(void)state;
	for (int i = 20; i < 24; i++)
		fill(gpa_of(i), (uint8_t)(0x60 + i));
	uint64_t far = gpa_of(PMAP_LEAF_ENTRIES + 3);       /* the next 2 MiB region */
	fill(far, 0x7E);
	uint64_t home21 = PMAP_ADDR(pmap_lookup(pm, gpa_of(21)));
	struct pmap_move mv[] = {
		{ .gpa = gpa_of(20), .kind = PMAP_MOVE_MIGRATE, .node = 1 },
		{ .gpa = gpa_of(21), .kind = PMAP_MOVE_REPLICATE, .nodes = 0xE },
		{ .gpa = gpa_of(22), .kind = PMAP_MOVE_MIGRATE, .node = 0 },   /* already there */
		{ .gpa = gpa_of(23), .kind = PMAP_MOVE_MIGRATE, .node = 3 },
		{ .gpa = far, .kind = PMAP_MOVE_MIGRATE, .node = 2 },           /* another region */
		{ .gpa = gpa_of(24), .kind = PMAP_MOVE_MIGRATE, .node = 2 },    /* out of order */
		{ .gpa = far, .kind = PMAP_MOVE_MIGRATE, .node = 1 },           /* twice */
		{ .gpa = far + 8, .kind = PMAP_MOVE_MIGRATE, .node = 3 },       /* the same page */
		{ .gpa = RAM_BASE + RAM_SIZE, .kind = PMAP_MOVE_MIGRATE, .node = 1 },
	};
	fill(gpa_of(24), 0x24);
	unsigned long fl = arch_stub.vmid_flushes, ic = arch_stub.icache_syncs, ipa_fl = arch_stub.s2_flushes;
	assert_int_equal(pmap_move_batch(pm, &s2, mv, 9, node_src, &guest, &tables), 4);
	/* the second: the replication's nodes mapped the home page until its copies were made */
	assert_int_equal(arch_stub.vmid_flushes, fl + 2);
	assert_int_equal(arch_stub.icache_syncs, ic + 1);
	assert_int_equal(arch_stub.s2_flushes, ipa_fl);        /* no remap needed one of its own */
	assert_int_equal(mv[0].rc, PMAP_OK);
	assert_int_equal(mv[1].rc, 3);
	assert_int_equal(mv[2].rc, PMAP_SKIP);
	assert_int_equal(mv[3].rc, PMAP_OK);
	assert_int_equal(mv[4].rc, PMAP_OK);
	assert_int_equal(mv[5].rc, PMAP_SKIP);
	assert_int_equal(mv[6].rc, PMAP_SKIP);
	assert_int_equal(mv[7].rc, PMAP_SKIP);
	assert_int_equal(mv[8].rc, PMAP_OUTSIDE);
	assert_int_equal(node_of(pmap_lookup(pm, gpa_of(20))), 1);
	assert_int_equal(node_of(pmap_lookup(pm, gpa_of(23))), 3);
	assert_int_equal(node_of(pmap_lookup(pm, far)), 2);
	assert_int_equal(node_of(pmap_lookup(pm, gpa_of(24))), 0);
	assert_int_equal(PMAP_ADDR(pmap_lookup(pm, gpa_of(21))), home21);
	assert_int_equal(PMAP_REPLICAS(pmap_lookup(pm, gpa_of(21))), 0xE);
	for (int i = 20; i < 24; i++)
		for (int n = 0; n < NODES; n++) {
			uint64_t d = s2_lookup_node(&s2, n, gpa_of(i));
			assert_int_equal(d & 1, 1);
			assert_true(holds((uint8_t *)(uintptr_t)(d & S2_ADDR_MASK), (uint8_t)(0x60 + i)));
		}
	assert_true(holds(page_at(pmap_lookup(pm, far)), 0x7E));
	/* nothing to do: no invalidation at all */
	fl = arch_stub.vmid_flushes;
	assert_int_equal(pmap_move_batch(pm, &s2, mv + 3, 1, node_src, &guest, &tables), 0);
	assert_int_equal(arch_stub.vmid_flushes, fl);
}

/* While a page is replicated, the nodes that get a replica go on reading the home page
 * (read-only): at the batch's first invalidation their entries are still valid, so their
 * vCPUs do not fault and copy the page themselves; once made, each maps its own replica. A
 * node that had no entry gets none until the replica (no second invalidation for it). */
static uint64_t seen_at_flush[NODES];
static uint64_t watched_gpa;
static void look_at_roots(void)
{
	during_vmid_flush = NULL;
	for (int n = 0; n < NODES; n++)
		seen_at_flush[n] = s2_lookup_node(&s2, n, watched_gpa);
}

static void test_replication_readers_keep_reading(void **state)
{
	(void)state;
	uint64_t gpa = gpa_of(40);
	fill(gpa, 0x40);
	uint64_t home = PMAP_ADDR(pmap_lookup(pm, gpa));
	watched_gpa = gpa;
	during_vmid_flush = look_at_roots;
	unsigned long fl = arch_stub.vmid_flushes;
	assert_int_equal(pmap_replicate(pm, &s2, gpa, 0x6, node_src, &tables), 2);
	assert_int_equal(arch_stub.vmid_flushes, fl + 2);
	for (int n = 0; n < NODES; n++) {
		assert_int_equal(seen_at_flush[n] & 1, 1);                        /* still mapped */
		assert_int_equal(seen_at_flush[n] & S2_ADDR_MASK, home);          /* the home page */
		assert_int_equal(seen_at_flush[n] & S2_AP_RW, S2_AP_RO);          /* read-only */
	}
	for (int n = 1; n <= 2; n++) {
		uint64_t d = s2_lookup_node(&s2, n, gpa);
		assert_true((d & S2_ADDR_MASK) != home);
		assert_int_equal(node_of(d & S2_ADDR_MASK), n);
		assert_true(holds((uint8_t *)(uintptr_t)(d & S2_ADDR_MASK), 0x40));
	}
	assert_int_equal(s2_lookup_node(&s2, 3, gpa) & S2_ADDR_MASK, home);
	/* a node with no entry: nothing to break, so one invalidation only */
	uint64_t gpa2 = gpa_of(41);
	fill(gpa2, 0x41);
	s2_clear_nodes_noflush(&s2, gpa2, 0x8);
	fl = arch_stub.vmid_flushes;
	assert_int_equal(pmap_replicate(pm, &s2, gpa2, 0x8, node_src, &tables), 1);
	assert_int_equal(arch_stub.vmid_flushes, fl + 1);
	uint64_t d3 = s2_lookup_node(&s2, 3, gpa2);
	assert_int_equal(node_of(d3 & S2_ADDR_MASK), 3);
	assert_true(holds((uint8_t *)(uintptr_t)(d3 & S2_ADDR_MASK), 0x41));
}

/* A batch holds no lock while it copies: in the middle of one (at its invalidation) a fault
 * on another page of a moving page's 2 MiB region completes, and a fault on the moving page
 * waits until that page is made, then finds the new page. (Holding the regions' locks for a
 * whole batch made every vCPU touching them spin for all its copies under QEMU.) */
struct fault_arg { uint64_t gpa; int done, rc; };
static struct fault_arg other_fault, moving_fault;
static pthread_t other_th, moving_th;
static int other_in_time, moving_waited;

static void *fault_thread(void *p)
{
	struct fault_arg *f = p;
	f->rc = pmap_fault(pm, &s2, f->gpa, 1, &guest, &tables);
	__atomic_store_n(&f->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Starts a thread faulting on f->gpa; whether it was done within ms milliseconds. */
static int fault_done_within(pthread_t *th, struct fault_arg *f, long ms)
{
	assert_int_equal(pthread_create(th, NULL, fault_thread, f), 0);
	for (long i = 0; i < ms && !__atomic_load_n(&f->done, __ATOMIC_ACQUIRE); i++)
		sleep_ms(1);
	return __atomic_load_n(&f->done, __ATOMIC_ACQUIRE);
}

static void mid_batch(void)
{
	during_vmid_flush = NULL;
	other_in_time = fault_done_within(&other_th, &other_fault, 2000);
	moving_waited = !fault_done_within(&moving_th, &moving_fault, 50);
}

static void test_move_batch_holds_no_lock_while_copying(void **state)
{
	(void)state;
	fill(gpa_of(30), 0x30);
	fill(gpa_of(31), 0x31);
	other_fault = (struct fault_arg){ gpa_of(31), 0, 99 };
	moving_fault = (struct fault_arg){ gpa_of(30), 0, 99 };
	struct pmap_move mv = { .gpa = gpa_of(30), .kind = PMAP_MOVE_MIGRATE, .node = 2 };
	during_vmid_flush = mid_batch;
	assert_int_equal(pmap_move_batch(pm, &s2, &mv, 1, node_src, &guest, &tables), 1);
	pthread_join(other_th, NULL);
	pthread_join(moving_th, NULL);
	assert_true(other_in_time);                 /* the region was not locked during the batch */
	assert_true(moving_waited);                 /* the moving page itself was waited for */
	assert_int_equal(other_fault.rc, PMAP_OK);
	assert_int_equal(moving_fault.rc, PMAP_OK);
	uint64_t e = pmap_lookup(pm, gpa_of(30));
	assert_int_equal(e & PMAP_MOVING, 0);
	assert_int_equal(node_of(e), 2);
	assert_true(holds(page_at(e), 0x30));
	uint64_t d = s2_lookup_node(&s2, 0, gpa_of(30));
	assert_int_equal(d & S2_ADDR_MASK, PMAP_ADDR(e));   /* the fault mapped the new page */
}

/* A vCPU that faults on a page of a batch the mover has not copied yet copies and makes it
 * itself: with the mover stopped after its first copy, a fault on the batch's second page
 * completes, and the batch still reports both pages moved. */
static int second_in_time;
static void second_page_fault(void)
{
	after_mover_copy = NULL;
	second_in_time = fault_done_within(&moving_th, &moving_fault, 2000);
}

static void test_faulting_vcpu_moves_its_page(void **state)
{
	(void)state;
	fill(gpa_of(33), 0x33);
	fill(gpa_of(34), 0x34);
	moving_fault = (struct fault_arg){ gpa_of(34), 0, 99 };
	second_in_time = 0;
	struct pmap_move mv[] = {
		{ .gpa = gpa_of(33), .kind = PMAP_MOVE_MIGRATE, .node = 1 },
		{ .gpa = gpa_of(34), .kind = PMAP_MOVE_MIGRATE, .node = 3 },
	};
	uint64_t helped = pm->moves_helped;
	is_mover = 1;
	after_mover_copy = second_page_fault;
	int moved = pmap_move_batch(pm, &s2, mv, 2, node_src, &guest, &tables);
	is_mover = 0;
	pthread_join(moving_th, NULL);
	assert_true(second_in_time);                /* it did not wait for the mover */
	assert_int_equal(pm->moves_helped, helped + 1);
	assert_int_equal(moved, 2);
	assert_int_equal(moving_fault.rc, PMAP_OK);
	assert_int_equal(mv[0].rc, PMAP_OK);
	assert_int_equal(mv[1].rc, PMAP_OK);
	assert_int_equal(node_of(pmap_lookup(pm, gpa_of(33))), 1);
	assert_int_equal(node_of(pmap_lookup(pm, gpa_of(34))), 3);
	assert_true(holds(page_at(pmap_lookup(pm, gpa_of(33))), 0x33));
	assert_true(holds(page_at(pmap_lookup(pm, gpa_of(34))), 0x34));
	assert_int_equal(pmap_lookup(pm, gpa_of(34)) & PMAP_MOVING, 0);
}

/* ---------------- replication ---------------- */

static void test_replicate_and_write_collapses(void **state)
{
	(void)state;
	uint64_t gpa = gpa_of(10);
	fill(gpa, 0x33);
	uint64_t home = PMAP_ADDR(pmap_lookup(pm, gpa));
	unsigned long ic = arch_stub.icache_syncs;
	uint64_t u[NODES];
	for (int n = 0; n < NODES; n++)
		u[n] = used_pages(n);

	assert_int_equal(pmap_replicate(pm, &s2, gpa, 0xE, node_src, &tables), 3);
	uint64_t e = pmap_lookup(pm, gpa);
	assert_int_equal(PMAP_ADDR(e), home);
	assert_int_equal(PMAP_REPLICAS(e), 0xE);
	assert_false(e & PMAP_WRITE);
	assert_true(arch_stub.icache_syncs > ic);
	/* read-only everywhere; node 0 (home) maps the home page, the others a local copy */
	for (int n = 0; n < NODES; n++) {
		uint64_t d = s2_lookup_node(&s2, n, gpa);
		assert_int_equal(d & 1, 1);
		assert_int_equal(d & S2_AP_RW, S2_AP_RO);
		uint64_t pa = d & S2_ADDR_MASK;
		assert_int_equal(palloc_node_of(&g_palloc, pa), n);
		assert_true(n == 0 ? pa == home : pa != home);
		assert_true(holds((uint8_t *)(uintptr_t)pa, 0x33));
		assert_int_equal(used_pages(n), u[n] + (n ? 1 : 0));
	}
	/* twice: nothing more to do; a migration of a replicated page is refused */
	assert_int_equal(pmap_replicate(pm, &s2, gpa, 0xE, node_src, &tables), PMAP_SKIP);
	assert_int_equal(pmap_migrate(pm, &s2, gpa, 2, node_src[2], &guest, &tables), PMAP_SKIP);
	/* an entry dropped from one root comes back as that root had it... */
	uint64_t rep2 = s2_lookup_node(&s2, 2, gpa);
	assert_int_equal(pmap_fault(pm, &s2, gpa, 0, &guest, &tables), PMAP_OK);
	assert_int_equal(s2_lookup_node(&s2, 2, gpa), rep2);

	/* a write from node 2: replicas collapse, one writable page in every root */
	assert_int_equal(pmap_fault(pm, &s2, gpa + 8, 1, &guest, &tables), PMAP_OK);
	e = pmap_lookup(pm, gpa);
	assert_int_equal(PMAP_REPLICAS(e), 0);
	assert_true(e & PMAP_WRITE);
	assert_int_equal(PMAP_ADDR(e), home);
	for (int n = 0; n < NODES; n++) {
		assert_int_equal(s2_lookup_node(&s2, n, gpa) & S2_ADDR_MASK, home);
		assert_int_equal(s2_lookup_node(&s2, n, gpa) & S2_AP_RW, S2_AP_RW);
		assert_int_equal(used_pages(n), u[n]);                 /* replicas freed */
	}
	assert_int_equal(pm->collapsed, 1);
	assert_int_equal(pm->replicated, 3);
}

static void test_replicate_refusals(void **state)
{
	(void)state;
	uint64_t gpa = gpa_of(12);
	fill(gpa, 1);
	/* home node only, nodes beyond the roots: nothing to do */
	assert_int_equal(pmap_replicate(pm, &s2, gpa, 0x1, node_src, &tables), PMAP_SKIP);
	assert_int_equal(pmap_replicate(pm, &s2, gpa, 0xF0, node_src, &tables), PMAP_SKIP);
	/* one root (replication off): refused */
	struct stage2 one = s2;
	one.nroots = 0;
	assert_int_equal(pmap_replicate(pm, &one, gpa, 0x2, node_src, &tables), PMAP_SKIP);
	/* copy-on-write page: refused */
	uint64_t shared = n_alloc(&nsrc[1]);
	memmap_of(&g_palloc, shared)->use = MM_SHARED;
	assert_int_equal(pmap_map_cow(pm, gpa_of(13), shared, &tables), PMAP_OK);
	assert_int_equal(pmap_replicate(pm, &s2, gpa_of(13), 0x6, node_src, &tables), PMAP_SKIP);
	nsrc[1].live--;
	/* explicit collapse; collapse of a page without replicas */
	assert_int_equal(pmap_replicate(pm, &s2, gpa, 0x8, node_src, &tables), 1);
	assert_int_equal(pmap_collapse(pm, gpa, &guest), PMAP_OK);
	assert_int_equal(pmap_collapse(pm, gpa, &guest), PMAP_SKIP);
	/* a zero-copy map over a replicated page collapses it first (no replica leaks) */
	assert_int_equal(pmap_replicate(pm, &s2, gpa, 0x6, node_src, &tables), 2);
	uint64_t dc = n_alloc(&nsrc[3]);
	memmap_of(&g_palloc, dc)->use = MM_SHARED;
	assert_int_equal(pmap_map_shared(pm, &s2, gpa, dc, &guest, &tables), PMAP_OK);
	nsrc[3].live--;
	/* teardown with replicas still in place: pmap_destroy frees them (teardown checks) */
	assert_int_equal(pmap_fault(pm, &s2, gpa_of(14), 1, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_replicate(pm, &s2, gpa_of(14), 0xE, node_src, &tables), 3);
}

/* ---------------- vCPUs on four nodes against the mechanism ---------------- */

#define RW_PAGES 6
#define RO_PAGES 6
#define SLOTS 64                   /* words per page a thread owns: slot t*SLOTS .. */
static uint64_t published[RW_PAGES][MAX_THREADS];
static int stop_flag;
static long errors, reads_done, writes_done, faults_taken, allowance;

struct vcpu_arg { int t, node; unsigned seed; };

static uint64_t walk(int node, uint64_t gpa, int write)
{
	uint64_t d = s2_lookup_node(&s2, node, gpa & ~(PAGE_SIZE - 1));
	if (!(d & 1) || (write && (d & S2_AP_RW) != S2_AP_RW))
		return 0;
	return (d & S2_ADDR_MASK) | (gpa & (PAGE_SIZE - 1));
}

static uint64_t guest_read(int t, int node, uint64_t gpa)
{
	for (;;) {
		__atomic_fetch_add(&inflight[t], 1, __ATOMIC_SEQ_CST);
		uint64_t ma = walk(node, gpa, 0), v = 0;
		if (ma)
			v = __atomic_load_n((uint64_t *)(uintptr_t)ma, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&inflight[t], 1, __ATOMIC_SEQ_CST);
		if (ma)
			return v;
		__atomic_fetch_add(&faults_taken, 1, __ATOMIC_RELAXED);
		assert_int_equal(pmap_fault(pm, &s2, gpa, 0, &guest, &tables), PMAP_OK);
	}
}

static void guest_write(int t, int node, uint64_t gpa, uint64_t v)
{
	for (;;) {
		__atomic_fetch_add(&inflight[t], 1, __ATOMIC_SEQ_CST);
		uint64_t ma = walk(node, gpa, 1);
		if (ma)
			__atomic_store_n((uint64_t *)(uintptr_t)ma, v, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&inflight[t], 1, __ATOMIC_SEQ_CST);
		if (ma)
			return;
		__atomic_fetch_add(&faults_taken, 1, __ATOMIC_RELAXED);
		assert_int_equal(pmap_fault(pm, &s2, gpa, 1, &guest, &tables), PMAP_OK);
	}
}

static uint64_t ro_sum(int t, int node, int p)
{
	uint64_t s = 0;
	for (int w = 0; w < (int)(PAGE_SIZE / 8); w += 16)
		s += guest_read(t, node, gpa_of(RW_PAGES + p) + w * 8) * (uint64_t)(w + 1);
	return s;
}

static uint64_t ro_expect[RO_PAGES];

static void *vcpu_thread(void *argp)
{
	struct vcpu_arg *a = argp;
	uint64_t mine[RW_PAGES] = { 0 };
	while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
		if (__atomic_load_n(&reads_done, __ATOMIC_RELAXED) >= __atomic_load_n(&allowance, __ATOMIC_RELAXED)) {
			sched_yield();  /* the mover's turn */
			continue;
		}
		int p = (int)(rand_r(&a->seed) % RW_PAGES);
		int op = (int)(rand_r(&a->seed) % 4);
		if (op == 0) {          /* write my slot, then publish */
			uint64_t v = ++mine[p];
			guest_write(a->t, a->node, gpa_of(p) + a->t * SLOTS * 8, v);
			__atomic_store_n(&published[p][a->t], v, __ATOMIC_SEQ_CST);
			__atomic_fetch_add(&writes_done, 1, __ATOMIC_RELAXED);
		} else if (op == 1) {   /* another vCPU's slot: never older than what it published */
			int u = (int)(rand_r(&a->seed) % (unsigned)nthreads_live);
			uint64_t pub = __atomic_load_n(&published[p][u], __ATOMIC_SEQ_CST);
			if (guest_read(a->t, a->node, gpa_of(p) + u * SLOTS * 8) < pub)
				__atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
		} else if (op == 2) {   /* my own slot: exactly my last write */
			if (guest_read(a->t, a->node, gpa_of(p) + a->t * SLOTS * 8) != mine[p])
				__atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
		} else {                /* a read-only page: its checksum never changes */
			int q = (int)(rand_r(&a->seed) % RO_PAGES);
			if (ro_sum(a->t, a->node, q) != ro_expect[q])
				__atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED);
		}
		__atomic_fetch_add(&reads_done, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

struct mover_stats { long migrations, replications, collapses, refused; };

/* Paced: before each move the vCPUs make a few accesses each, so moves and accesses
 * interleave even on a loaded host with fewer CPUs than threads. */
static void mover(unsigned seed, long rounds, int nthreads, struct mover_stats *ms)
{
	is_mover = 1;
	for (long r = 0; r < rounds; r++) {
		long want = __atomic_load_n(&reads_done, __ATOMIC_RELAXED) + 2 * nthreads;
		__atomic_store_n(&allowance, want, __ATOMIC_RELAXED);
		while (__atomic_load_n(&reads_done, __ATOMIC_RELAXED) < want)
			sched_yield();
		__atomic_store_n(&allowance, want + nthreads, __ATOMIC_RELAXED);  /* some run during the move */
		int p = (int)(rand_r(&seed) % (RW_PAGES + RO_PAGES));
		uint64_t gpa = gpa_of(p);
		int op = (int)(rand_r(&seed) % 4), rc;
		if (op == 3) {          /* a batch: several pages, one invalidation */
			struct pmap_move mvb[4];
			int n = 2 + (int)(rand_r(&seed) % 3);
			for (int i = 0; i < n; i++) {
				int migrate = rand_r(&seed) % 2;
				mvb[i] = (struct pmap_move){ .gpa = gpa_of((int)(rand_r(&seed) % (RW_PAGES + RO_PAGES))),
							     .kind = migrate ? PMAP_MOVE_MIGRATE : PMAP_MOVE_REPLICATE,
							     .node = (int)(rand_r(&seed) % NODES),
							     .nodes = 1 + rand_r(&seed) % 15 };
				for (int j = i; j > 0 && mvb[j].gpa < mvb[j - 1].gpa; j--) {   /* in order */
					struct pmap_move x = mvb[j];
					mvb[j] = mvb[j - 1];
					mvb[j - 1] = x;
				}
			}
			pmap_move_batch(pm, &s2, mvb, n, node_src, &guest, &tables);
			rc = PMAP_SKIP;
			for (int i = 0; i < n; i++) {
				if (mvb[i].kind == PMAP_MOVE_MIGRATE && mvb[i].rc == PMAP_OK)
					ms->migrations++, rc = PMAP_OK;
				else if (mvb[i].kind == PMAP_MOVE_REPLICATE && mvb[i].rc > 0)
					ms->replications++, rc = PMAP_OK;
			}
		} else if (op == 0) {
			int node = (int)(rand_r(&seed) % NODES);
			rc = pmap_migrate(pm, &s2, gpa, node, node_src[node], &guest, &tables);
			if (rc == PMAP_OK)
				ms->migrations++;
		} else if (op == 1) {
			rc = pmap_replicate(pm, &s2, gpa, 1 + rand_r(&seed) % 15, node_src, &tables);
			if (rc > 0)
				ms->replications++;
		} else {
			rc = pmap_collapse(pm, gpa, &guest);
			if (rc == PMAP_OK)
				ms->collapses++;
		}
		if (rc < 0)
			ms->refused++;
	}
}

static void run_race(int nthreads, long rounds, struct mover_stats *ms)
{
	for (int p = 0; p < RW_PAGES; p++)
		assert_int_equal(pmap_fault(pm, &s2, gpa_of(p), 1, &guest, &tables), PMAP_OK);
	for (int q = 0; q < RO_PAGES; q++) {
		fill(gpa_of(RW_PAGES + q), (uint8_t)(0x40 + q));
		ro_expect[q] = 0;
		uint8_t *m = page_at(pmap_lookup(pm, gpa_of(RW_PAGES + q)));
		for (int w = 0; w < (int)(PAGE_SIZE / 8); w += 16)
			ro_expect[q] += ((uint64_t *)m)[w] * (uint64_t)(w + 1);
	}
	memset(published, 0, sizeof(published));
	stop_flag = 0;
	errors = reads_done = writes_done = faults_taken = allowance = 0;
	pthread_t th[MAX_THREADS];
	struct vcpu_arg a[MAX_THREADS];
	__atomic_store_n(&nthreads_live, nthreads, __ATOMIC_SEQ_CST);
	for (int t = 0; t < nthreads; t++) {
		a[t] = (struct vcpu_arg){ t, t % NODES, 1234u + (unsigned)t * 77 };
		assert_int_equal(pthread_create(&th[t], NULL, vcpu_thread, &a[t]), 0);
	}
	memset(ms, 0, sizeof(*ms));
	mover(99, rounds, nthreads, ms);
	is_mover = 0;
	__atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	/* everything collapsed: every page as its last writes left it */
	for (int p = 0; p < RW_PAGES + RO_PAGES; p++)
		pmap_collapse(pm, gpa_of(p), &guest);
	for (int p = 0; p < RW_PAGES; p++)
		for (int t = 0; t < nthreads; t++)
			if (((uint64_t *)page_at(pmap_lookup(pm, gpa_of(p))))[t * SLOTS] != published[p][t])
				errors++;
	for (int q = 0; q < RO_PAGES; q++)
		if (!holds(page_at(pmap_lookup(pm, gpa_of(RW_PAGES + q))), (uint8_t)(0x40 + q)))
			errors++;
	print_message("  %d vCPUs: %ld moves (%ld migrations, %ld replications, %ld collapses, %ld refused), "
		      "%ld accesses, %ld writes, %ld faults (%lu moved a page themselves), %ld errors\n", nthreads,
		      rounds, ms->migrations, ms->replications, ms->collapses, ms->refused, reads_done, writes_done,
		      faults_taken, (unsigned long)pm->moves_helped, errors);
	__atomic_store_n(&nthreads_live, 0, __ATOMIC_SEQ_CST);
}

static void test_race_readers_writers(void **state)
{
	(void)state;
	struct mover_stats ms;
	run_race(4, 5000, &ms);
	assert_int_equal(errors, 0);
	assert_true(ms.migrations > 100 && ms.replications > 100 && ms.collapses > 30);
	assert_true(faults_taken > 100);                        /* the vCPUs did run into the moves */
	assert_true(pm->collapsed > (uint64_t)ms.collapses);   /* writes collapsed replicas too */
}

static void test_race_eight_vcpus(void **state)
{
	(void)state;
	struct mover_stats ms;
	run_race(8, 2500, &ms);
	assert_int_equal(errors, 0);
}

/* ---------------- the policy driving the mechanism: the move budget holds ---------------- */

static void test_policy_budget(void **state)
{
	(void)state;
	struct numa_policy_params p;
	numa_policy_defaults(&p);
	assert_int_equal(numa_policy_check(&p, NODES, NULL), 0);
	struct numa_apply_ctx c = { &p, NODES, pm, &s2, node_src, &guest, &tables };
	uint64_t gpa = gpa_of(20);
	fill(gpa, 0x77);
	struct numa_page_state st;
	numa_page_init(&st, 0);
	struct numa_page_counts cnt;

	/* node 2 dominates: migrated there; node 3 next period: the budget (1 per window) holds
	 * (node 3 writes it: read alone, a page that migrated once is replicated instead) */
	memset(&cnt, 0, sizeof(cnt));
	cnt.read[2] = 500;
	struct numa_decision d = numa_apply(&c, gpa, &cnt, &st, 0);
	assert_int_equal(d.action, NUMA_MIGRATE);
	assert_int_equal(node_of(pmap_lookup(pm, gpa)), 2);
	memset(&cnt, 0, sizeof(cnt));
	cnt.write[3] = 500;
	d = numa_apply(&c, gpa, &cnt, &st, 1);
	assert_int_equal(d.action, NUMA_NONE);
	assert_int_equal(d.reason, NUMA_R_BUDGET);
	assert_int_equal(node_of(pmap_lookup(pm, gpa)), 2);
	d = numa_apply(&c, gpa, &cnt, &st, p.budget_periods);      /* next window */
	assert_int_equal(d.action, NUMA_MIGRATE);
	assert_int_equal(node_of(pmap_lookup(pm, gpa)), 3);
	assert_true(holds(page_at(pmap_lookup(pm, gpa)), 0x77));

	/* read by nodes 0, 1, 2 (home 3): replicated; a guest write collapses it, and the page
	 * stays collapsed for the rest of the window although it is read-shared again */
	uint64_t gpa2 = gpa_of(21);
	fill(gpa2, 0x12);
	numa_page_init(&st, 0);
	memset(&cnt, 0, sizeof(cnt));
	cnt.read[1] = cnt.read[2] = cnt.read[3] = 100;
	d = numa_apply(&c, gpa2, &cnt, &st, 0);
	assert_int_equal(d.action, NUMA_REPLICATE);
	assert_int_equal(PMAP_REPLICAS(pmap_lookup(pm, gpa2)), 0xE);
	assert_int_equal(st.replicas, 0xE);
	assert_int_equal(pmap_fault(pm, &s2, gpa2, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(PMAP_REPLICAS(pmap_lookup(pm, gpa2)), 0);
	d = numa_apply(&c, gpa2, &cnt, &st, 1);
	assert_int_equal(d.action, NUMA_NONE);
	assert_int_equal(st.replicas, 0);
	assert_true(st.flags & NUMA_PG_WRITTEN);
	assert_int_equal(PMAP_REPLICAS(pmap_lookup(pm, gpa2)), 0);

	/* random counts for 200 periods on 8 pages: never more moves per window than the budget,
	 * and the bytes never change (the moves are real) */
	p.move_budget = 2;
	p.budget_periods = 5;
	struct numa_page_state sts[8];
	int moves[8][64] = { { 0 } };
	for (int i = 0; i < 8; i++) {
		fill(gpa_of(30 + i), (uint8_t)(0x90 + i));
		numa_page_init(&sts[i], 0);
	}
	unsigned seed = 7;
	long done = 0;
	for (uint32_t now = 0; now < 200; now++)
		for (int i = 0; i < 8; i++) {
			memset(&cnt, 0, sizeof(cnt));
			for (int n = 0; n < NODES; n++)
				cnt.read[n] = rand_r(&seed) % 3 ? 0 : rand_r(&seed) % 400;
			if (rand_r(&seed) % 8 == 0)
				cnt.write[rand_r(&seed) % NODES] = 5;
			if (rand_r(&seed) % 10 == 0)    /* the guest writes it now and then */
				assert_int_equal(pmap_fault(pm, &s2, gpa_of(30 + i), 1, &guest, &tables), PMAP_OK);
			d = numa_apply(&c, gpa_of(30 + i), &cnt, &sts[i], now);
			if (d.action == NUMA_MIGRATE || d.action == NUMA_REPLICATE) {
				moves[i][now / p.budget_periods]++;
				done++;
			}
		}
	for (int i = 0; i < 8; i++) {
		for (int w = 0; w < 40; w++)
			assert_true(moves[i][w] <= (int)p.move_budget);
		assert_true(holds(page_at(pmap_lookup(pm, gpa_of(30 + i))), (uint8_t)(0x90 + i)));
	}
	print_message("  %ld moves in 200 periods on 8 pages, budget %u per %u periods\n", done,
		      p.move_budget, p.budget_periods);
	assert_true(done > 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_unmapped_and_nomem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_moves_pass_the_moved_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_batch_holds_no_lock_while_copying, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replication_readers_keep_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faulting_vcpu_moves_its_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicate_and_write_collapses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicate_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_readers_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_race_eight_vcpus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_budget, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
