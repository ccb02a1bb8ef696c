/* The NUMA policy's period driver: see numa_move.h. Runs on CPU 0 only (as the sharing pass
 * does), so its own state needs no lock; the pages it moves are guarded by the pmap's region
 * locks and devices_lock (pmap.h), the VM's life by share_busy (vm_teardown waits for it). */
#include "numa_move.h"
#include "numactr.h"
#include "hostimg.h"
#include "numa_apply.h"
#include "affinity.h"
#include "palloc.h"
#include "vm.h"
#include "disks.h"
#include "percpu.h"
#include "arch.h"
#include "console.h"
#include "fmt.h"
#include "mb_string.h"

int numa_move_on;
static int policy_kind, counter_kind, nnodes;
static struct numa_policy_params params;
static uint32_t period;                 /* the policy's period number ("now") */
static uint64_t period_ticks, next_period, sub_ticks, next_sub;
static uint32_t sample_pages;

/* Per VM: the policy's state of each guest page, one page of states per 2 MiB, made on
 * first need; and what the driver did. */
static struct numa_page_state *st_leaf[MAX_VMS][PMAP_DIR_MAX];
static struct {
	uint64_t considered, migrations, replications, replicas, collapses, skipped, failed;
	uint64_t remigrations;          /* migrations of a page that had migrated before */
	uint64_t move_ticks, periods, batches;
	uint64_t sampled, sample_faults;
} mv[MAX_VMS];
static uint64_t scan_ticks;
/* Periods whose own work (scan, moves) took longer than a period, and the longest: while CPU 0
 * is at it no period starts, so this is how late the policy can be to a page turning hot */
static uint64_t slow_periods, longest_period_ticks;
static uint64_t aff_moves[MAX_VMS];     /* vCPU moves by the affinity, per VM */
/* With the plugin: the hot pages come from its ring (counters.h, version 4), or from a scan
 * of every counted row (active[]); each node's counter region (counts 0: not counted) */
static int use_ring;
static uint32_t epoch_now;              /* the ring's epoch, advanced after each period */
static struct numactr_region nctr[PALLOC_MAX_NODES];
/* Misses the periods saw that were remote to the page's node, by what the policy made of the
 * page in that period (enum numa_reason; NUMA_R_NR: not a VM's page as mapped, e.g. a replica
 * or a page on its way out). All VMs together: a cold page is never looked up. With the ring
 * a period sees only the pages the plugin offered (hot, with a remote node among them). */
static uint64_t remote_seen[NUMA_R_NR + 1];

/* numa_apply's view of vm.c's node_pages */
static const struct page_source *node_src[PALLOC_MAX_NODES];

struct sample {
	uint64_t gpa;
	uint16_t read[NUMA_MAX_NODES], write[NUMA_MAX_NODES];
};
static struct sample samples[MAX_VMS][NUMA_MAX_SAMPLE];
static uint32_t nsamples[MAX_VMS];
static uint64_t cursor[MAX_VMS];

/* The roots of the other nodes (node 0 uses vm->s2_root) for VMs with replication. */
static uint64_t node_roots[MAX_VMS][S2_MAX_NODES - 1][1024] __attribute__((aligned(8192)));

void numa_move_init(const struct mb_img_header *h)
{
	const struct mb_img_numa *c = &h->numa;
	if (c->policy == MB_NUMA_OFF)
		return;
	nnodes = g_palloc.nnodes;
	hostimg_numa_params(c, &params);
	policy_kind = (int)c->policy;
	counter_kind = (int)c->counters;
	sample_pages = c->sample_pages;
	const char *why = 0;
	if (numa_policy_check(&params, nnodes, &why)) {       /* hostimg_validate checked it too */
		mb_printf("numa policy: %s: the policy stays off\n", why);
		return;
	}
	if (counter_kind == MB_NUMA_CTR_PLUGIN && !numactr_region(0, &nctr[0])) {
		mb_printf("numa policy: numa_counters = plugin, but the plugin's counters are not there (or "
			  "do not match the host): the policy stays off\n");
		return;
	}
	for (int n = 0; n < nnodes; n++)
		node_src[n] = &node_pages[n];
	if (counter_kind == MB_NUMA_CTR_PLUGIN) {
		for (int n = 0; n < nnodes; n++)
			numactr_region(n, &nctr[n]);    /* left zero for a node the plugin does not count */
		use_ring = c->hot_pages == MB_NUMA_HOT_RING;
		if (use_ring) {
			/* a page no other node misses this much needs nothing (numa/policy.h): its
			 * rules act on a remote sharer, or on a remote node with migrate_pct % of
			 * at least hot misses */
			uint32_t dominant = (params.hot_threshold * params.migrate_pct + 99) / 100;
			uint32_t remote = params.share_threshold < dominant ? params.share_threshold : dominant;
			epoch_now = numactr_ring_epoch(0);
			numactr_ring_on(params.hot_threshold, remote ? remote : 1, params.decay_shift);
		}
	}
	uint64_t hz = read_sysreg(cntfrq_el0);
	period_ticks = hz * params.period_ms / 1000;
	if (!period_ticks)
		period_ticks = 1;
	sub_ticks = period_ticks / NUMA_SAMPLE_ROUNDS ? period_ticks / NUMA_SAMPLE_ROUNDS : 1;
	next_period = read_cntpct() + period_ticks;
	next_sub = read_cntpct() + sub_ticks;
	numa_move_on = 1;
	if (params.affinity_pct && counter_kind != MB_NUMA_CTR_PLUGIN) {
		mb_printf("numa policy: vCPU affinity needs the plugin's per-CPU counts: off\n");
		params.affinity_pct = 0;
	}
	char aff[32] = "off";
	if (params.affinity_pct)
		mb_snprintf(aff, sizeof(aff), "at %u%%", params.affinity_pct);
	mb_printf("numa policy: %s, counters from %s, every %u ms: hot %u, sharer %u, write %u, migrate at %u%%, "
		  "%u replicas at most, %u moves per page per %u periods, decay %u, vCPU affinity %s%s\n",
		  params.replicate ? "migration and replication" : "migration",
		  counter_kind == MB_NUMA_CTR_SAMPLE ? "sampled stage-2 faults"
		  : use_ring ? "the TCG plugin (hot-page ring)" : "the TCG plugin (scan)", params.period_ms,
		  params.hot_threshold, params.share_threshold, params.write_threshold, params.migrate_pct,
		  params.max_replicas, params.move_budget, params.budget_periods, params.decay_shift,
		  aff, nnodes < 2 ? " (one node: nothing to move)" : "");
}

void numa_move_vm_boot(struct vm *vm)
{
	if (!numa_move_on || !params.replicate || nnodes < 2)
		return;
	uint64_t roots[S2_MAX_NODES] = { 0 };
	for (int n = 1; n < nnodes; n++) {
		memset(node_roots[vm->index][n - 1], 0, sizeof(node_roots[0][0]));
		roots[n] = (uint64_t)(uintptr_t)node_roots[vm->index][n - 1];
	}
	s2_enable_node_roots(&vm->s2, nnodes, roots);
}

void numa_move_vm_teardown(struct vm *vm)
{
	for (uint64_t d = 0; d < PMAP_DIR_MAX; d++)
		if (st_leaf[vm->index][d]) {
			palloc_free(&g_palloc, (uint64_t)(uintptr_t)st_leaf[vm->index][d], 0);
			st_leaf[vm->index][d] = 0;
		}
	vm->s2.nroots = 0;
	memset(&mv[vm->index], 0, sizeof(mv[0]));       /* its stats line is out */
	aff_moves[vm->index] = 0;
	nsamples[vm->index] = 0;
}

/* The page's policy state, made (homed where the page is) on first need; 0 without memory. */
static struct numa_page_state *state_of(struct vm *vm, uint64_t gpfn)
{
	uint64_t d = gpfn / PMAP_LEAF_ENTRIES;
	struct numa_page_state *leaf = st_leaf[vm->index][d];
	_Static_assert(sizeof(struct numa_page_state) * PMAP_LEAF_ENTRIES == PAGE_SIZE, "one page of states per 2 MiB");
	if (!leaf) {
		uint64_t page = palloc_alloc(&g_palloc, 0, 0);
		if (!page)
			return 0;
		struct memmap_entry *m = memmap_of(&g_palloc, page);
		if (m)
			m->use = MM_MONITOR;
		leaf = (struct numa_page_state *)(uintptr_t)page;
		for (int i = 0; i < PMAP_LEAF_ENTRIES; i++)
			numa_page_init(&leaf[i], 0);
		st_leaf[vm->index][d] = leaf;
	}
	return &leaf[gpfn % PMAP_LEAF_ENTRIES];     /* numa_apply sets home from the pmap */
}

/* With the ring, a row the monitor aged is given the next epoch, so the plugin does not age
 * it again when that epoch begins (counters.h). */
static void row_epoch_ahead(volatile uint16_t *row)
{
	for (int n = 0; n < nnodes; n++) {
		if (!nctr[n].counts || row < nctr[n].counts)
			continue;
		uint64_t i = (uint64_t)(row - nctr[n].counts) / (2 * (uint64_t)nnodes);
		if (i < nctr[n].pages) {
			nctr[n].epoch[i] = epoch_now + 1;
			return;
		}
	}
}

static void age_row(volatile uint16_t *row, int zero)
{
	if (use_ring)
		row_epoch_ahead(row);
	zero |= params.decay_shift >= 16;
	if (zero && nnodes % 2 == 0) {          /* 8 bytes a store, as row_total reads */
		for (int j = 0; j < nnodes / 2; j++)
			((volatile uint64_t *)row)[j] = 0;
		return;
	}
	for (int k = 0; k < nnodes * 2; k++)
		row[k] = zero ? 0 : (uint16_t)(row[k] >> params.decay_shift);
}

/* The sum of a row's counts, and in *own those of node 'own_node', from one read of the row.
 * The scan reads every counted page's row each period, and under the plugin each load the
 * monitor makes costs a callback: for an even number of nodes the row is read 8 bytes (two
 * nodes' counts) at a time. */
static uint32_t row_total(volatile uint16_t *row, int own_node, uint32_t *own)
{
	uint32_t total = 0;
	*own = 0;
	if (nnodes % 2 == 0) {
		const volatile uint64_t *w = (const volatile uint64_t *)row;
		for (int j = 0; j < nnodes / 2; j++) {
			uint64_t v = w[j];
			uint64_t lanes = (v & 0x0000ffff0000ffffull) + ((v >> 16) & 0x0000ffff0000ffffull);
			uint32_t lo = (uint32_t)lanes, hi = (uint32_t)(lanes >> 32);  /* nodes 2j, 2j + 1 */
			total += lo + hi;
			if (own_node / 2 == j)
				*own = own_node % 2 ? hi : lo;
		}
		return total;
	}
	for (int k = 0; k < nnodes; k++) {
		uint32_t m = (uint32_t)row[2 * k] + row[2 * k + 1];
		total += m;
		if (k == own_node)
			*own = m;
	}
	return total;
}

/* The counter row of a machine page the plugin counts, or 0. */
static volatile uint16_t *row_of(uint64_t page)
{
	int n = palloc_node_of(&g_palloc, page);
	const struct numactr_region *r = n >= 0 && n < PALLOC_MAX_NODES ? &nctr[n] : 0;
	if (!r || !r->counts || page < r->base || (page - r->base) / PAGE_SIZE >= r->pages)
		return 0;
	return r->counts + mb_nctr_index((page - r->base) / PAGE_SIZE, 0, (unsigned)nnodes, 0);
}

static struct numa_apply_ctx ctx_of(struct vm *vm)
{
	struct numa_apply_ctx c = { &params, nnodes, &vm->pmap, &vm->s2, node_src, &guest_pages, &guest_pages };
	return c;
}

/* A page's bit in its node's hot[] (the ring: counters.h), or no word. Cleared once the
 * page is decided and its row aged, the plugin may offer the page again. */
struct hot_ref {
	volatile uint64_t *word;
	uint64_t bit;
};

static void hot_clear(struct hot_ref h)
{
	if (h.word)
		__atomic_fetch_and(h.word, ~h.bit, __ATOMIC_RELEASE);
}

/* Moves decided during a scan wait here and then run in batches, one pmap_move_batch (one
 * TLB invalidation) per VM and PMAP_MOVE_BATCH pages; under QEMU a per-page invalidation
 * stopped every emulated CPU for each page moved. Entries point at VMs the scan has claimed. */
#define MAX_PENDING 1024
static struct pending {
	uint64_t gpa;
	struct numa_decision d;
	struct numa_page_state *st;
	volatile uint16_t *row;         /* the plugin's counts of the page, or 0 (sampling) */
	struct hot_ref hot;             /* its bit in the ring's hot[], cleared once it is moved */
	uint16_t vm;
} pend[MAX_PENDING];
static int npend;

static int pend_before(const struct pending *a, const struct pending *b)
{
	return a->vm != b->vm ? a->vm < b->vm : a->gpa < b->gpa;
}

/* pend[] in (VM, gpa) order, as pmap_move_batch wants its pages: a merge sort, as the ring
 * gives pages in the order they turned hot (an insertion sort, right for the scan's nearly
 * ordered pages, made a full pend[] cost CPU 0 some 10^5 moves of an entry). */
static void sort_pending(void)
{
	static struct pending tmp[MAX_PENDING];         /* CPU 0 only */
	struct pending *from = pend, *to = tmp;
	for (int w = 1; w < npend; w *= 2) {
		for (int lo = 0; lo < npend; lo += 2 * w) {
			int mid = lo + w < npend ? lo + w : npend, hi = lo + 2 * w < npend ? lo + 2 * w : npend;
			int a = lo, b = mid, k = lo;
			while (a < mid && b < hi)
				to[k++] = pend_before(&from[b], &from[a]) ? from[b++] : from[a++];
			while (a < mid)
				to[k++] = from[a++];
			while (b < hi)
				to[k++] = from[b++];
		}
		struct pending *t = from;
		from = to;
		to = t;
	}
	if (from != pend)
		memcpy(pend, from, (size_t)npend * sizeof(pend[0]));
}

static void run_pending(void)
{
	sort_pending();
	static struct pmap_move batch[PMAP_MOVE_BATCH];      /* CPU 0 only; too big for its stack */
	for (int i = 0, j; i < npend; i = j) {
		struct vm *vm = &vms[pend[i].vm];
		for (j = i; j < npend && j - i < PMAP_MOVE_BATCH && pend[j].vm == pend[i].vm; j++)
			batch[j - i] = (struct pmap_move){ .gpa = pend[j].gpa, .node = pend[j].d.target, .nodes = pend[j].d.nodes,
							   .kind = pend[j].d.action == NUMA_MIGRATE ? PMAP_MOVE_MIGRATE
												   : PMAP_MOVE_REPLICATE };
		uint64_t t0 = read_cntpct();
		spin_lock(&devices_lock);
		pmap_move_batch(&vm->pmap, &vm->s2, batch, j - i, node_src, &guest_pages, &guest_pages);
		spin_unlock(&devices_lock);
		int idx = vm->index;
		mv[idx].move_ticks += read_cntpct() - t0;
		mv[idx].batches++;
		struct numa_apply_ctx ctx = ctx_of(vm);
		for (int k = i; k < j; k++) {
			int moved_before = (pend[k].st->flags & NUMA_PG_MIGRATED) != 0;
			struct numa_decision d = numa_apply_commit(&ctx, pend[k].gpa, pend[k].st, pend[k].d,
								   batch[k - i].rc, period);
			if (d.action == NUMA_MIGRATE) {
				mv[idx].migrations++;
				mv[idx].remigrations += moved_before;
				/* the new page's row counted the copy: start afresh */
				volatile uint16_t *nrow = row_of(PMAP_ADDR(pmap_lookup(&vm->pmap, pend[k].gpa)));
				if (nrow)
					age_row(nrow, 1);
			} else if (d.action == NUMA_REPLICATE) {
				mv[idx].replications++;
				for (unsigned m = d.nodes; m; m &= m - 1)
					mv[idx].replicas++;
			} else {
				mv[idx].failed++;              /* decided, but the mechanism could not */
			}
			/* a moved page's counts belong to a freed page (migration) or include the
			 * copy the monitor made (replication): start afresh, as the new page does */
			if (pend[k].row)
				age_row(pend[k].row, d.action != NUMA_NONE);
			hot_clear(pend[k].hot);
		}
	}
	npend = 0;
}

/* The nodes the VM's vCPUs run on (numa_page_counts.vm_nodes: a read-shared page gets a
 * replica on each). Taken once per VM and period, when the driver claims the VM. */
static uint8_t vm_nodes_of(const struct vm *vm)
{
	uint8_t m = 0;
	for (int i = 0; i < vm->nvcpus; i++)
		m |= (uint8_t)(1u << (pcpus[vm->vcpu[i]->pcpu].node & 7));
	return m;
}

/* Decide for one page of a running VM; a move waits in pend[] (run_pending), a collapse the
 * policy asks for runs now. row: the plugin's counts of the page, aged here or after the move. */
static int consider(struct vm *vm, uint64_t gpa, const struct numa_page_counts *cnt, volatile uint16_t *row,
		    struct hot_ref hot)
{
	uint64_t gpfn = (gpa - vm->pmap.ram_base) >> PAGE_SHIFT;
	struct numa_page_state *st = state_of(vm, gpfn);
	int idx = vm->index;
	struct numa_decision d = { NUMA_NONE, NUMA_R_COLD, 0, 0 };
	struct numa_apply_ctx ctx = ctx_of(vm);
	if (st) {
		mv[idx].considered++;
		d = numa_apply_decide(&ctx, gpa, cnt, st, period);
	}
	if (d.action == NUMA_MIGRATE || d.action == NUMA_REPLICATE) {
		if (npend == MAX_PENDING)
			run_pending();
		pend[npend++] = (struct pending){ gpa, d, st, row, hot, (uint16_t)idx };
		return NUMA_R_MOVE;
	}
	if (d.action == NUMA_COLLAPSE) {
		uint64_t t0 = read_cntpct();
		spin_lock(&devices_lock);
		int rc = pmap_collapse(&vm->pmap, gpa, &guest_pages);
		spin_unlock(&devices_lock);
		mv[idx].move_ticks += read_cntpct() - t0;
		d = numa_apply_commit(&ctx, gpa, st, d, rc, period);
		if (d.action == NUMA_COLLAPSE)
			mv[idx].collapses++;
		else
			mv[idx].failed++;
	} else if (d.reason != NUMA_R_LOCAL && d.reason != NUMA_R_COLD) {
		mv[idx].skipped++;              /* budget, write sharing, turned off, ... */
	}
	if (row)
		age_row(row, 0);
	hot_clear(hot);
	return d.reason;
}

/* Claims VM i for this period (vm_claim), or returns 0. */
static struct vm *claim(int i) { return vm_claim(&vms[i]) ? &vms[i] : 0; }

/* ---- counter source 1: the TCG plugin's per-page counts ---- */

/* The VMs the scan has met this period: each is claimed (vm_claim) the first time one of its
 * pages comes up, and let go when the scan is over. */
struct scan_vms {
	struct vm *claimed[MAX_VMS];
	int tried[MAX_VMS];
	uint8_t nodes[MAX_VMS];         /* vm_nodes_of() of each claimed VM */
};

/* One counted page of node n (m: its memmap entry): its row read, the page decided for (and
 * aged); hot: its bit in the ring's hot[], cleared when it is decided. */
static void scan_page(struct scan_vms *sv, int n, const struct memmap_entry *m, uint64_t page, volatile uint16_t *row,
		      struct hot_ref hot)
{
	uint32_t own, total = row_total(row, n, &own), remote = total - own;
	if (!total) {
		hot_clear(hot);
		return;
	}
	if (total < params.hot_threshold) {     /* cold whatever else holds */
		remote_seen[NUMA_R_COLD] += remote;
		age_row(row, 0);
		hot_clear(hot);
		return;
	}
	struct numa_page_counts c;
	for (int k = 0; k < nnodes; k++) {
		c.read[k] = row[2 * k];
		c.write[k] = row[2 * k + 1];
	}
	if (m->use != MM_GUEST || m->vm >= nr_vms) {
		remote_seen[NUMA_R_NR] += remote;
		age_row(row, 1);
		hot_clear(hot);
		return;
	}
	int i = m->vm;
	if (!sv->tried[i]) {
		sv->tried[i] = 1;
		sv->claimed[i] = claim(i);
		if (sv->claimed[i])
			sv->nodes[i] = vm_nodes_of(sv->claimed[i]);
	}
	struct vm *vm = sv->claimed[i];
	uint64_t gpa = vm ? vm->pmap.ram_base + ((uint64_t)m->gpfn << PAGE_SHIFT) : 0;
	if (!vm || PMAP_ADDR(pmap_lookup(&vm->pmap, gpa)) != page) {
		remote_seen[NUMA_R_NR] += remote;
		age_row(row, 1);       /* a replica, or a page on its way out */
		hot_clear(hot);
		return;
	}
	for (int k = nnodes; k < NUMA_MAX_NODES; k++)
		c.read[k] = c.write[k] = 0;
	c.vm_nodes = sv->nodes[i];
	int why = consider(vm, gpa, &c, row, hot);
	remote_seen[why >= 0 && why < NUMA_R_NR ? why : NUMA_R_NR] += remote;
}

/* The scan's end: the moves it decided run, then the VMs it claimed are let go. */
static void release_scanned(struct scan_vms *sv)
{
	run_pending();                  /* before the VMs are let go */
	for (int i = 0; i < nr_vms; i++)
		if (sv->claimed[i]) {
			mv[i].periods++;
			vm_release(sv->claimed[i]);
		}
}

/* Each period: the rows of the pages the plugin counted since the last (its active[] bits),
 * in each node's allocator ranges. A word's bits are taken (cleared) before its rows are
 * read, so a miss counted meanwhile sets its bit again; a row left non-zero (decayed, or
 * kept below the threshold) keeps its bit, so it is read again next period as a full scan
 * would. Bits of pages outside the ranges are left alone. */
static void plugin_period(void)
{
	struct scan_vms sv = { 0 };
	for (int n = 0; n < nnodes; n++) {
		uint64_t base = nctr[n].base, pages = nctr[n].pages;
		volatile uint64_t *active = nctr[n].active;
		volatile uint16_t *cnt = nctr[n].counts;
		struct palloc_node *pn = &g_palloc.node[n];
		for (int r = 0; cnt && r < pn->nranges; r++) {
			const struct palloc_range *rg = &pn->range[r];
			if (rg->base < base || rg->frontier <= rg->base)
				continue;
			uint64_t first = (rg->base - base) / PAGE_SIZE, end = (rg->frontier - base) / PAGE_SIZE;
			if (end > pages)
				end = pages;
			for (uint64_t w = first / 64; w * 64 < end; w++) {
				if (!active[w])
					continue;
				uint64_t bits = __atomic_exchange_n(&active[w], 0, __ATOMIC_ACQ_REL), keep = 0;
				for (uint64_t left = bits; left; left &= left - 1) {
					uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(left), bit = left & -left;
					if (p < first || p >= end) {
						keep |= bit;           /* another range's, or no range's */
						continue;
					}
					volatile uint16_t *row = cnt + mb_nctr_index(p, 0, (unsigned)nnodes, 0);
					scan_page(&sv, n, palloc_range_entry(rg, base + p * PAGE_SIZE), base + p * PAGE_SIZE, row,
						  (struct hot_ref){ 0, 0 });
					uint32_t own;
					if (row_total(row, n, &own))
						keep |= bit;
				}
				if (keep)
					__atomic_fetch_or(&active[w], keep, __ATOMIC_RELEASE);
			}
		}
	}
	release_scanned(&sv);
}

/* Each period with the ring: the pages that reached numa_hot misses since they were last
 * decided, as the plugin pushed them (counters.h), and only those; then the next epoch,
 * which the plugin ages the other rows by when it next counts in them. The ring is read up
 * to where it was when the period began: a page offered again meanwhile waits for the next. */
static void ring_period(void)
{
	struct scan_vms sv = { 0 };
	for (int n = 0; n < nnodes; n++) {
		if (!nctr[n].counts)
			continue;
		volatile struct mb_nctr_header *h = nctr[n].hdr;
		uint64_t end = __atomic_load_n(&h->ring_head, __ATOMIC_ACQUIRE);
		struct palloc_range *hint = 0;
		int64_t p;
		while ((p = mb_nctr_ring_pop((uint64_t *)&h->ring_tail, (uint32_t *)nctr[n].slots, end)) >= 0) {
			if ((uint64_t)p >= nctr[n].pages)
				continue;               /* not a page of this node: not the plugin's */
			uint64_t page = nctr[n].base + (uint64_t)p * PAGE_SIZE;
			volatile uint16_t *row = nctr[n].counts + mb_nctr_index((uint64_t)p, 0, (unsigned)nnodes, 0);
			struct hot_ref hot = { &nctr[n].hot[p / 64], 1ull << (p % 64) };
			struct memmap_entry *m = memmap_of_near(&g_palloc, page, &hint);
			if (!m || page >= hint->frontier) {
				age_row(row, 1);        /* not the allocator's: the monitor's own pages */
				hot_clear(hot);
				continue;
			}
			scan_page(&sv, n, m, page, row, hot);
		}
	}
	release_scanned(&sv);
	epoch_now = numactr_ring_epoch(1);
}

/* ---- vCPU affinity (numa/affinity.h): with the plugin, each period, before the scan ----
 * A pCPU's misses by node since the last period are its vCPU's when it runs one alone
 * (what the monitor did for it included); CPU 0's own scan and moves are left out (its
 * snapshot is taken again after them). A vCPU moves at most once per AFF_COOLDOWN periods
 * (its misses right after a move still show the old node's cache). */
#define AFF_COOLDOWN       10
#define AFF_MOVES_PER_PERIOD 4
static uint64_t aff_snap[MAX_PCPUS][NUMA_MAX_NODES];

static void aff_resnap(int c)
{
	for (int k = 0; k < nnodes; k++)
		aff_snap[c][k] = numactr_cpu_misses(c, k);
}

static void affinity_period(void)
{
	struct aff_cpu cpus[MAX_PCPUS];
	static struct aff_vcpu av[AFF_MAX_VCPUS];     /* CPU 0 only */
	struct vcpu *who[AFF_MAX_VCPUS];
	int nv = 0;
	for (int c = 0; c < nr_pcpus && c < MAX_PCPUS; c++) {
		uint64_t d[NUMA_MAX_NODES] = { 0 };
		for (int k = 0; k < nnodes; k++) {
			uint64_t m = numactr_cpu_misses(c, k);
			d[k] = m - aff_snap[c][k];
			aff_snap[c][k] = m;
		}
		struct pcpu *p = &pcpus[c];
		int n = __atomic_load_n(&p->nrq, __ATOMIC_ACQUIRE);
		cpus[c] = (struct aff_cpu){ p->node, AFF_BUSY };
		if (!p->online || __atomic_load_n(&p->ninbox, __ATOMIC_ACQUIRE))
			continue;
		if (!n) {
			cpus[c].vcpu = AFF_IDLE;
			continue;
		}
		struct vcpu *v = n == 1 ? p->rq[0] : 0;
		if (!v || v->vm->state != VM_RUNNING || v->vm->single_pcpu || v->move_to || nv == AFF_MAX_VCPUS)
			continue;
		cpus[c].vcpu = nv;
		who[nv] = v;
		av[nv] = (struct aff_vcpu){ .cpu = c, .may_move = !v->moves || period - v->moved_period >= AFF_COOLDOWN };
		for (int k = 0; k < nnodes; k++)
			av[nv].misses[k] = d[k];
		nv++;
	}
	struct aff_move m[AFF_MOVES_PER_PERIOD];
	int n = aff_plan(cpus, nr_pcpus < MAX_PCPUS ? nr_pcpus : MAX_PCPUS, av, nv, nnodes, params.affinity_pct, m,
			 AFF_MOVES_PER_PERIOD);
	for (int i = 0; i < n; i++) {
		struct vcpu *v = who[m[i].vcpu];
		const struct aff_vcpu *a = &av[m[i].vcpu];
		if (m[i].wanted)        /* a vCPU that only made room may move on next period */
			v->moved_period = period;
		aff_moves[v->vm->index]++;
		mb_printf("numa: %s vCPU %d: pCPU %d (node %d) -> pCPU %d (node %d): %lu misses to node %d, %lu to its own%s\n",
			  v->vm->name, v->id, a->cpu, pcpus[a->cpu].node, m[i].to_cpu, pcpus[m[i].to_cpu].node,
			  a->misses[pcpus[m[i].to_cpu].node], pcpus[m[i].to_cpu].node, a->misses[pcpus[a->cpu].node],
			  m[i].wanted ? "" : " (makes room)");
		sched_move_vcpu(v, m[i].to_cpu);
	}
}

/* ---- counter source 2: sampling. Each period a sample of each VM's private pages (the next
 * sample_pages present, owned, not replicated pages from a cursor that walks guest RAM) has
 * its stage-2 entries cleared NUMA_SAMPLE_ROUNDS times; each fault that brings one back is a
 * "miss" of the faulting vCPU's node. With one root only the first node to touch a page in a
 * round sees it; with per-node roots every node does. The counts are small (at most one per
 * node per round): numa_hot and numa_share are set for that (loader/CONFIG.md). ---- */

static void sample_revoke(struct vm *vm)
{
	int i = vm->index;
	for (uint32_t k = 0; k < nsamples[i]; k++)
		pmap_revoke(&vm->pmap, &vm->s2, samples[i][k].gpa);
	arch_s2_flush_vmid(vm->vmid, 1);
}

static void sample_choose(struct vm *vm)
{
	int i = vm->index;
	uint32_t n = 0;
	uint64_t npages = vm->pmap.npages, start = cursor[i] % (npages ? npages : 1);
	for (uint64_t k = 0; k < npages && n < sample_pages && n < NUMA_MAX_SAMPLE; k++) {
		uint64_t gpfn = (start + k) % npages, gpa = vm->pmap.ram_base + (gpfn << PAGE_SHIFT);
		uint64_t e = pmap_lookup(&vm->pmap, gpa);
		if ((e & (PMAP_PRESENT | PMAP_OWNED)) != (PMAP_PRESENT | PMAP_OWNED) || PMAP_REPLICAS(e))
			continue;
		struct sample *s = &samples[i][n++];
		memset(s, 0, sizeof(*s));
		s->gpa = gpa;
		cursor[i] = gpfn + 1;
	}
	/* sorted by gpa (the walk wraps once at most): the fault hook searches it */
	for (uint32_t a = 1; a < n; a++)
		for (uint32_t b = a; b > 0 && samples[i][b - 1].gpa > samples[i][b].gpa; b--) {
			struct sample t = samples[i][b];
			samples[i][b] = samples[i][b - 1];
			samples[i][b - 1] = t;
		}
	mv[i].sampled += n;
	__atomic_store_n(&nsamples[i], n, __ATOMIC_RELEASE);
}

void numa_sample_fault(struct vm *vm, uint64_t gpa, int node, int write)
{
	int i = vm->index;
	uint32_t n = __atomic_load_n(&nsamples[i], __ATOMIC_ACQUIRE), lo = 0, hi = n;
	gpa &= ~(uint64_t)(PAGE_SIZE - 1);
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (samples[i][mid].gpa < gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= n || samples[i][lo].gpa != gpa || node < 0 || node >= NUMA_MAX_NODES)
		return;
	uint16_t *c = write ? &samples[i][lo].write[node] : &samples[i][lo].read[node];
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);    /* vCPUs of several pCPUs fault at once */
	__atomic_fetch_add(&mv[i].sample_faults, 1, __ATOMIC_RELAXED);
}

static void sample_period(int end_of_period)
{
	for (int i = 0; i < nr_vms; i++) {
		struct vm *vm = claim(i);
		if (!vm)
			continue;
		if (end_of_period) {
			/* the sample is over: stop counting, decide, then choose the next one */
			uint32_t n = nsamples[i];
			__atomic_store_n(&nsamples[i], 0, __ATOMIC_RELEASE);
			uint8_t nodes = vm_nodes_of(vm);
			for (uint32_t k = 0; k < n; k++) {
				struct numa_page_counts c = { { 0 }, { 0 }, nodes };
				for (int m = 0; m < nnodes; m++) {
					c.read[m] = samples[i][k].read[m];
					c.write[m] = samples[i][k].write[m];
				}
				consider(vm, samples[i][k].gpa, &c, 0, (struct hot_ref){ 0, 0 });
			}
			run_pending();
			sample_choose(vm);
			mv[i].periods++;
		}
		sample_revoke(vm);
		vm_release(vm);
	}
}

/* ---- the period ---- */

uint64_t numa_move_deadline(void)
{
	if (!numa_move_on)
		return ~0ULL;
	return counter_kind == MB_NUMA_CTR_SAMPLE && next_sub < next_period ? next_sub : next_period;
}

void numa_move_tick(void)
{
	if (!numa_move_on || nnodes < 2)
		return;
	uint64_t now = read_cntpct();
	if (counter_kind == MB_NUMA_CTR_SAMPLE && now >= next_sub && now < next_period) {
		next_sub = now + sub_ticks;
		sample_period(0);
		return;
	}
	if (now < next_period)
		return;
	/* the scan and the copies are the monitor's work, not the loaded VM's: charge the VM up
	 * to here and start its snapshot again after (the plugin would count them to it) */
	struct pcpu *p = this_cpu();
	if (p->loaded)
		numactr_put(p->id, p->loaded->vm->index);
	if (counter_kind == MB_NUMA_CTR_SAMPLE) {
		sample_period(1);
	} else {
		if (params.affinity_pct)
			affinity_period();
		if (use_ring)
			ring_period();
		else
			plugin_period();
		if (params.affinity_pct)
			aff_resnap(p->id);
	}
	if (p->loaded)
		numactr_load(p->id);
	period++;
	uint64_t end = read_cntpct(), took = end - now;
	scan_ticks += took;
	slow_periods += took > period_ticks;
	if (took > longest_period_ticks)
		longest_period_ticks = took;
	/* a period that took longer than the period does not run back to back */
	next_period = end + period_ticks;
	next_sub = end + sub_ticks;
}

static uint64_t ticks_to_ns(uint64_t t)
{
	uint64_t hz = read_sysreg(cntfrq_el0);
	return hz ? t / hz * 1000000000ULL + t % hz * 1000000000ULL / hz : 0;
}

int numa_move_stats_json(int vm, char *buf, size_t len)
{
	if (!numa_move_on || vm < 0 || vm >= MAX_VMS)
		return 0;
	const struct pmap *pm = &vms[vm].pmap;
	uint64_t moves = mv[vm].migrations + mv[vm].replications;
	int n = 0;
	if (counter_kind == MB_NUMA_CTR_PLUGIN) {
		n = mb_snprintf(buf, len, ",\"numa_remote_seen\":{");
		for (int r = 0; r <= NUMA_R_NR && n >= 0 && (size_t)n < len; r++)
			n += mb_snprintf(buf + n, len - (size_t)n, "%s\"%s\":%lu", r ? "," : "",
					 r < NUMA_R_NR ? numa_reason_name(r) : "unmapped", remote_seen[r]);
		if (n < 0 || (size_t)n >= len)
			return 0;
		uint64_t pushed = 0, dropped = 0;
		for (int k = 0; k < nnodes; k++)
			if (nctr[k].counts) {
				pushed += nctr[k].hdr->ring_pushed;
				dropped += nctr[k].hdr->ring_dropped;
			}
		n += mb_snprintf(buf + n, len - (size_t)n, "},\"numa_hot_pages\":{\"from\":\"%s\",\"ring_pushed\":%lu,"
				 "\"ring_dropped\":%lu}", use_ring ? "ring" : "scan", pushed, dropped);
		if ((size_t)n >= len)
			return 0;
	}
	return n + mb_snprintf(buf + n, len - (size_t)n, ",\"numa_moves\":{\"policy\":\"%s\",\"counters\":\"%s\",\"periods\":%lu,"
			   "\"considered\":%lu,\"migrations\":%lu,\"remigrations\":%lu,\"replications\":%lu,\"replicas\":%lu,"
			   "\"collapses_by_policy\":%lu,\"collapses\":%lu,\"skipped\":%lu,\"failed\":%lu,"
			   "\"move_ns_avg\":%lu,\"batches\":%lu,\"moved_by_faults\":%lu,\"sampled\":%lu,\"sample_faults\":%lu,\"driver_ms\":%lu,\"slow_periods\":%lu,\"longest_period_ms\":%lu,\"vcpu_moves\":%lu}",
			   policy_kind == MB_NUMA_REPLICATE ? "replicate" : "migrate",
			   counter_kind == MB_NUMA_CTR_PLUGIN ? "plugin" : "sample", mv[vm].periods,
			   mv[vm].considered, mv[vm].migrations, mv[vm].remigrations, mv[vm].replications, mv[vm].replicas,
			   mv[vm].collapses, pm->collapsed, mv[vm].skipped, mv[vm].failed,
			   moves ? ticks_to_ns(mv[vm].move_ticks) / moves : 0, mv[vm].batches, pm->moves_helped, mv[vm].sampled, mv[vm].sample_faults,
			   ticks_to_ns(scan_ticks) / 1000000, slow_periods, ticks_to_ns(longest_period_ticks) / 1000000,
			   aff_moves[vm]);
}
