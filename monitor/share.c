/* Content-based page sharing. Linux writes to most pages of its image while it boots
 * (relocation, alternatives, ftrace), and eight VMs booting one kernel write them
 * identically: every copy of an image page is a candidate to be merged with the other VMs'
 * copies of the same page. A pass on CPU 0 finds copies with equal contents, write-protects
 * them (one TLB invalidation per VM), checks again, maps them all copy-on-write to one of
 * them and frees the rest (a second invalidation first). The stage-2 entries it drops are
 * refilled from the pmap on the next touch. */
#include "share.h"
#include "vm.h"
#include "percpu.h"
#include "console.h"
#include "palloc.h"
#include "mirrorball/arch_hooks.h"
#include "mb_string.h"
#include "arch.h"

#define MAX_CAND 65536

struct cand { uint32_t origin; uint16_t vm; uint16_t state; uint32_t gpfn; uint64_t ma; };
static struct cand cand[MAX_CAND];
static uint64_t to_free[MAX_CAND], held[MAX_CAND];
static uint64_t merged_total, passes, pass_ticks, collect_ticks;

enum { C_NONE, C_CANON, C_MATCH, C_PROTECTED };

static int before(const struct cand *a, const struct cand *b)
{
	return a->origin != b->origin ? a->origin < b->origin : a->vm < b->vm;
}

/* Heapsort: no recursion, no allocation, n log n. */
static void sift(struct cand *c, int i, int n)
{
	for (;;) {
		int l = 2 * i + 1, m = i;
		if (l < n && before(&c[m], &c[l]))
			m = l;
		if (l + 1 < n && before(&c[m], &c[l + 1]))
			m = l + 1;
		if (m == i)
			return;
		struct cand t = c[i];
		c[i] = c[m];
		c[m] = t;
		i = m;
	}
}

static void sort(struct cand *c, int n)
{
	for (int i = n / 2 - 1; i >= 0; i--)
		sift(c, i, n);
	for (int i = n - 1; i > 0; i--) {
		struct cand t = c[0];
		c[0] = c[i];
		c[i] = t;
		sift(c, 0, i);
	}
}

static uint64_t gpa_of(const struct cand *c) { return MB_GUEST_RAM_BASE + ((uint64_t)c->gpfn << PAGE_SHIFT); }

static int collect(void)
{
	int n = 0;
	struct palloc_range *near = 0;
	for (int v = 0; v < nr_vms && n < MAX_CAND; v++) {
		struct vm *vm = &vms[v];
		/* A candidate is a copy of an image page, made when the VM wrote to it: a VM that
		 * never broke a copy-on-write page has none (with a NUMA policy every page is the
		 * VM's own from the start: vm.c load_blob), and walking its pages took CPU 0,
		 * which the policy's moves wait for, 0.7 s a Linux NUMA run (fifteenth session) */
		if (!vm->share_busy || !__atomic_load_n(&vm->pmap.cow_breaks, __ATOMIC_RELAXED))
			continue;
		for (uint64_t d = 0; d < PMAP_DIR_MAX && n < MAX_CAND; d++) {
			const uint64_t *leaf = vm->pmap.leaf[d];
			for (int i = 0; leaf && i < PMAP_LEAF_ENTRIES && n < MAX_CAND; i++) {
				uint64_t e = __atomic_load_n(&leaf[i], __ATOMIC_RELAXED);
				if ((e & (PMAP_PRESENT | PMAP_OWNED | PMAP_WRITE)) != (PMAP_PRESENT | PMAP_OWNED | PMAP_WRITE))
					continue;
				const struct memmap_entry *m = memmap_of_near(&g_palloc, PMAP_ADDR(e), &near);
				if (!m || !m->origin)
					continue;
				cand[n++] = (struct cand){ m->origin, (uint16_t)v, C_NONE, (uint32_t)(d * PMAP_LEAF_ENTRIES + i), PMAP_ADDR(e) };
			}
		}
	}
	return n;
}

/* One invalidation of every VM's translations on every pCPU, rather than one per VM: under
 * QEMU each broadcast stops all emulated CPUs and empties their TLBs whatever its scope. */
static void flush_vms(const uint8_t *touched)
{
	for (int v = 0; v < nr_vms; v++)
		if (touched[v]) {
			__asm__ volatile("dsb ishst; tlbi alle1is; dsb ish; isb" ::: "memory");
			return;
		}
}

void share_pass(void)
{
	static uint8_t touched[MAX_VMS];
	int n, nfree = 0, nheld = 0;
	uint64_t t0 = read_cntpct();
	/* Claim the VMs that run; a VM that stops meanwhile waits for us in its teardown. */
	for (int v = 0; v < nr_vms; v++)
		vm_claim(&vms[v]);
	n = collect();
	/* Nothing new since a pass that merged nothing: the candidates were all compared. */
	static int last_n = -1;
	static uint64_t last_merged = 1;
	if (n == last_n && !last_merged) {
		for (int v = 0; v < nr_vms; v++)
			vm_release(&vms[v]);
		collect_ticks += read_cntpct() - t0;
		pass_ticks += read_cntpct() - t0;
		return;
	}
	last_n = n;
	sort(cand, n);
	collect_ticks += read_cntpct() - t0;
	memset(touched, 0, sizeof(touched));

	/* 1. within each group of one origin, protect the first copy and its identical twins */
	for (int i = 0; i < n;) {
		int j = i + 1;
		while (j < n && cand[j].origin == cand[i].origin)
			j++;
		int twins = 0;
		for (int k = i + 1; k < j; k++)
			if (!memcmp((void *)(uintptr_t)cand[k].ma, (void *)(uintptr_t)cand[i].ma, PAGE_SIZE)) {
				cand[k].state = C_MATCH;
				twins++;
			}
		if (twins && !pmap_protect(&vms[cand[i].vm].pmap, &vms[cand[i].vm].s2, gpa_of(&cand[i]), cand[i].ma)) {
			cand[i].state = C_CANON;
			touched[cand[i].vm] = 1;
			for (int k = i + 1; k < j; k++)
				if (cand[k].state == C_MATCH &&
				    !pmap_protect(&vms[cand[k].vm].pmap, &vms[cand[k].vm].s2, gpa_of(&cand[k]), cand[k].ma)) {
					cand[k].state = C_PROTECTED;
					touched[cand[k].vm] = 1;
				}
		}
		i = j;
	}
	flush_vms(touched);     /* from here on, nobody writes a protected page unseen */

	/* 2. the first copy becomes the shared page; its twins, still equal, map it */
	memset(touched, 0, sizeof(touched));
	uint64_t canon = 0;
	uint32_t canon_origin = 0;
	for (int i = 0; i < n; i++) {
		struct cand *c = &cand[i];
		struct vm *vm = &vms[c->vm];
		if (c->state == C_CANON) {
			canon = c->ma;
			canon_origin = 0;
			if (!pmap_share(&vm->pmap, &vm->s2, gpa_of(c), c->ma, c->ma)) {
				canon_origin = c->origin;
				held[nheld++] = canon;  /* alive until its twins map it */
			}
		} else if (c->state == C_PROTECTED && c->origin == canon_origin) {
			if (!pmap_share(&vm->pmap, &vm->s2, gpa_of(c), c->ma, canon)) {
				to_free[nfree++] = c->ma;
				touched[c->vm] = 1;
			}
		}
	}
	flush_vms(touched);     /* no TLB reaches the merged-away pages any more */
	for (int i = 0; i < nfree; i++)
		palloc_free(&g_palloc, to_free[i], 0);
	for (int i = 0; i < nheld; i++)
		pmap_shared_put(held[i]);
	for (int v = 0; v < nr_vms; v++)
		vm_release(&vms[v]);
	merged_total += nfree;
	last_merged = nfree;
	passes++;
	pass_ticks += read_cntpct() - t0;
}

void share_report(void)
{
	if (passes)
		mb_printf("sharing: %lu passes merged %lu pages (%lu MiB) that VMs had written identically; %lu ms in passes (%lu ms finding candidates)\n",
			  passes, merged_total, merged_total >> 8, pass_ticks / (read_sysreg(cntfrq_el0) / 1000),
			  collect_ticks / (read_sysreg(cntfrq_el0) / 1000));
}
