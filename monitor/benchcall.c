/* The vendor-specific hypercalls of include/mirrorball/hypercall.h. Every argument comes
 * from the guest: checked before use, answered with an MB_HVC_E_* code. The bench calls act
 * on the calling VM only, and take the locks the real paths take: a migration runs under
 * devices_lock (device emulation reaches guest pages by bare machine address for one request,
 * see pmap.h) and, inside pmap_migrate, the page's pmap region lock. */
#include "benchcall.h"
#include "vm.h"
#include "percpu.h"
#include "disks.h"
#include "palloc.h"
#include "arch.h"
#include "mirrorball/arch_hooks.h"
#include "mirrorball/hostimg.h"
#include "mirrorball/layout.h"

static int bench_enabled(void)
{
	const struct mb_img_header *h = (const void *)(uintptr_t)MB_HOSTIMG_LOAD_ADDR;
	return (h->flags & MB_IMG_F_BENCH_HVC) != 0;
}

/* pCPUs on which a vCPU of vm has run (a vCPU runs only on its owning pCPU). */
static uint64_t ran_mask(const struct vm *vm)
{
	uint64_t m = 0;
	for (int i = 0; i < vm->nvcpus && i < MB_GUEST_MAX_VCPUS; i++)
		if (vm->vcpu[i]->runs && vm->vcpu[i]->pcpu >= 0 && vm->vcpu[i]->pcpu < 64)
			m |= 1ULL << vm->vcpu[i]->pcpu;
	return m;
}

static int64_t check_page(const struct vm *vm, uint64_t gpa)
{
	if (gpa & (PAGE_SIZE - 1))
		return MB_HVC_E_INVALID;
	if (!pmap_covers(&vm->pmap, gpa))
		return MB_HVC_E_OUT_OF_RANGE;
	return MB_HVC_OK;
}

static int64_t bench_node(struct vm *vm, uint64_t gpa, uint64_t *node, uint64_t *flags)
{
	*node = (uint64_t)-1;
	*flags = 0;
	if (!pmap_covers(&vm->pmap, gpa))
		return MB_HVC_E_OUT_OF_RANGE;
	uint64_t e = pmap_lookup(&vm->pmap, gpa);
	if (!(e & PMAP_PRESENT))
		return MB_HVC_E_NOT_PRESENT;
	*node = (uint64_t)(int64_t)palloc_node_of(&g_palloc, PMAP_ADDR(e));
	*flags = e & 0xFFF;
	return MB_HVC_OK;
}

static int64_t bench_migrate(struct vm *vm, uint64_t gpa, uint64_t node, uint64_t *inner,
			     uint64_t *outer, uint64_t *from)
{
	*inner = *outer = 0;
	*from = (uint64_t)-1;
	int64_t rc = check_page(vm, gpa);
	if (rc)
		return rc;
	if (node >= (uint64_t)g_palloc.nnodes)
		return MB_HVC_E_INVALID;
	uint64_t t0 = read_cntpct();
	spin_lock(&devices_lock);
	/* the reason a move would be skipped, looked up under the lock that orders moves */
	uint64_t e = pmap_lookup(&vm->pmap, gpa);
	if (e & PMAP_PRESENT)
		*from = (uint64_t)(int64_t)palloc_node_of(&g_palloc, PMAP_ADDR(e));
	uint64_t t1 = read_cntpct();
	int r = pmap_migrate(&vm->pmap, &vm->s2, gpa, (int)node, &node_pages[node], &guest_pages, &guest_pages);
	uint64_t t2 = read_cntpct();
	spin_unlock(&devices_lock);
	*inner = t2 - t1;
	*outer = t2 - t0;
	switch (r) {
	case PMAP_OK:
		return MB_HVC_OK;
	case PMAP_OUTSIDE:
		return MB_HVC_E_OUT_OF_RANGE;
	case PMAP_NOMEM:
		return MB_HVC_E_NO_MEMORY;
	default:                      /* PMAP_SKIP: say why */
		if (!(e & PMAP_PRESENT))
			return MB_HVC_E_NOT_PRESENT;
		if (*from == node)
			return MB_HVC_E_SAME_NODE;
		return MB_HVC_E_NOT_MOVABLE;
	}
}

static int64_t bench_flush(struct vm *vm, uint64_t gpa, uint64_t *ticks, uint64_t *bcast)
{
	*ticks = *bcast = 0;
	if (gpa) {
		int64_t rc = check_page(vm, gpa);
		if (rc)
			return rc;
	}
	int b = s2_flush_broadcast(&vm->s2);
	uint64_t t0 = read_cntpct();
	if (gpa)
		arch_s2_flush_ipa(vm->vmid, gpa, b);
	else
		arch_s2_flush_vmid(vm->vmid, b);
	*ticks = read_cntpct() - t0;
	*bcast = (uint64_t)b;
	return MB_HVC_OK;
}

void benchcall_handle(struct vcpu *v)
{
	struct gregs *r = &v->regs;
	struct vm *vm = v->vm;
	uint32_t fn = (uint32_t)r->x[0];
	int64_t rc = MB_HVC_NOT_SUPPORTED;

	if (fn == MB_HVC_NULL) {
		r->x[0] = MB_HVC_OK;
		return;
	}
	if (!bench_enabled()) {
		r->x[0] = (uint64_t)(int64_t)MB_HVC_NOT_SUPPORTED;
		return;
	}
	switch (fn) {
	case MB_HVC_BENCH_INFO: {
		struct pcpu *p = this_cpu();
		rc = MB_HVC_OK;
		r->x[1] = ran_mask(vm);
		r->x[2] = (uint64_t)(p->id & 0xFF) | (uint64_t)(p->node & 0xFF) << 8 |
			  (uint64_t)(g_palloc.nnodes & 0xFF) << 16 | (uint64_t)(v->id & 0xFF) << 24 |
			  (uint64_t)vm->nvcpus << 32;
		r->x[3] = read_sysreg(cntfrq_el0);
		break;
	}
	case MB_HVC_BENCH_NODE:
		rc = bench_node(vm, r->x[1], &r->x[1], &r->x[2]);
		break;
	case MB_HVC_BENCH_MIGRATE: {
		uint64_t gpa = r->x[1], node = r->x[2];
		rc = bench_migrate(vm, gpa, node, &r->x[1], &r->x[2], &r->x[3]);
		break;
	}
	case MB_HVC_BENCH_FLUSH: {
		uint64_t gpa = r->x[1];
		rc = bench_flush(vm, gpa, &r->x[1], &r->x[2]);
		r->x[3] = ran_mask(vm);
		break;
	}
	default:
		rc = MB_HVC_NOT_SUPPORTED;
	}
	r->x[0] = (uint64_t)rc;
}
