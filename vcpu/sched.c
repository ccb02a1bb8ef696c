/* The vCPU scheduler: each pCPU owns a run queue of the vCPUs assigned to it and is the
 * only one to load, run or park them. Others only flip a vCPU from BLOCKED to RUNNABLE
 * and ring the owner's doorbell (an SGI). Time slices run on the EL2 physical timer,
 * which also wakes descheduled vCPUs whose virtual timer is due. */
#include "vm.h"
#include "percpu.h"
#include "gic.h"
#include "arch.h"
#include "console.h"
#include "nets.h"
#include "share.h"
#include "numa_move.h"
#include "numactr.h"

#define CNTHP_CTL_EL2  S3_4_C14_C2_1
#define CNTHP_CVAL_EL2 S3_4_C14_C2_2
#define SLICE_HZ 100
#define LIVE_REPORT_SECONDS 1       /* also the period of the page-sharing pass */
#define NET_POLL_TICKS() (read_sysreg(cntfrq_el0) / 1000)

static uint64_t slice_ticks;
static uint64_t next_live;      /* CPU 0 reports every VM's figures to the loader */

static void maybe_live_report(struct pcpu *p)
{
	if (p->id != 0)
		return;
	numa_move_tick();
	uint64_t now = read_cntpct();
	if (!next_live)
		next_live = now + LIVE_REPORT_SECONDS * read_sysreg(cntfrq_el0);
	if (now < next_live)
		return;
	next_live = now + LIVE_REPORT_SECONDS * read_sysreg(cntfrq_el0);
	/* the sharing pass works for every VM: like a NUMA period, it is charged to none (the
	 * loaded VM gets what came before; stats.json's numa_plugin still counts it) */
	if (p->loaded)
		numactr_put(p->id, p->loaded->vm->index);
	share_pass();
	if (p->loaded)
		numactr_load(p->id);
	nets_tick();
	vm_live_report();
}

uint64_t sched_slice_ticks(void)
{
	if (!slice_ticks)
		slice_ticks = read_sysreg(cntfrq_el0) / SLICE_HZ;
	return slice_ticks;
}

static int least_loaded(int home_node, int weight)
{
	int best = -1, best_key = 0;
	for (int i = 0; i < nr_pcpus; i++) {
		if (!pcpus[i].online || pcpus[i].nrq + weight > PCPU_MAX_VCPUS)
			continue;
		int key = pcpus[i].nrq * 2 + (pcpus[i].node != home_node);
		if (best < 0 || key < best_key) {
			best = i;
			best_key = key;
		}
	}
	return best < 0 ? 0 : best;   /* every queue full: share CPU 0's, the only choice left */
}

static void enqueue(struct vcpu *v, int cpu)
{
	struct pcpu *p = &pcpus[cpu];
	v->pcpu = cpu;
	p->rq[p->nrq] = v;
	__atomic_store_n(&p->nrq, p->nrq + 1, __ATOMIC_RELEASE);
	if (p != this_cpu() && p->online)
		gic_send_sgi(p->mpidr, SGI_KICK);
}

/* Places a VM's vCPUs, once, on CPU 0 while creating VMs. With pCPUs to spare each vCPU gets
 * the least-loaded pCPU (the VM's home node among equals). When there are more vCPUs than
 * pCPUs, a VM's vCPUs share one pCPU: they would time-share anyway, and then the VM's TLB
 * maintenance and IPIs stay on that pCPU (WFE is trapped there so a spinning vCPU yields). */
void sched_place_vm(struct vm *vm, int oversubscribed)
{
	if (oversubscribed) {
		int cpu = least_loaded(vm->home_node, vm->nvcpus);
		for (int c = 0; c < vm->nvcpus; c++)
			enqueue(vm_new_vcpu(vm, c, pcpus[cpu].node), cpu);
	} else {
		for (int c = 0; c < vm->nvcpus; c++) {
			int cpu = least_loaded(vm->home_node, 1);
			enqueue(vm_new_vcpu(vm, c, pcpus[cpu].node), cpu);
		}
	}
	vm->single_pcpu = 1;
	int one_node = 1;
	for (int c = 1; c < vm->nvcpus; c++) {
		if (vm->vcpu[c]->pcpu != vm->vcpu[0]->pcpu)
			vm->single_pcpu = 0;
		if (pcpus[vm->vcpu[c]->pcpu].node != pcpus[vm->vcpu[0]->pcpu].node)
			one_node = 0;
	}
	/* A fault fills the rest of its aligned block on the faulter's node: cheaper sweeps of
	 * fresh memory, but the guest gives neighbouring pages to processes on other vCPUs, so a
	 * VM spread over nodes places each page on its own first touch (measured in
	 * numa/DESIGN-NUMA.md, seventh session). */
	vm->prefault = one_node ? PREFAULT_PAGES : 1;
}

static int timer_due(const struct vcpu *v, uint64_t now)
{
	uint64_t ctl = v->el1.cntv_ctl;
	return (ctl & 3) == 1 && now >= v->el1.cntv_cval;
}

/* Descheduled vCPUs whose virtual timer has expired get their timer interrupt. */
static void wake_timers(struct pcpu *p)
{
	uint64_t now = read_cntpct();
	for (int i = 0; i < p->nrq; i++) {
		struct vcpu *v = p->rq[i];
		if (v == p->loaded || v->state != VCPU_BLOCKED || !timer_due(v, now))
			continue;
		v->el1.cntv_ctl |= 2;            /* masked until the guest re-arms it */
		vgic_inject(&v->vm->vgic, v->id, MB_PPI_VTIMER);
	}
}

/* Next EL2 timer deadline: the end of a slice if others wait, and unloaded timers. */
static void program_timer(struct pcpu *p, int running_others)
{
	uint64_t deadline = ~0ULL;
	if (running_others)
		deadline = read_cntpct() + sched_slice_ticks();
	for (int i = 0; i < p->nrq; i++) {
		struct vcpu *v = p->rq[i];
		if (v != p->loaded && v->state == VCPU_BLOCKED && (v->el1.cntv_ctl & 3) == 1 &&
		    v->el1.cntv_cval < deadline)
			deadline = v->el1.cntv_cval;
	}
	if (p->id == 0 && next_live && next_live < deadline)
		deadline = next_live;
	if (p->id == 0 && numa_move_deadline() < deadline)
		deadline = numa_move_deadline();
	/* the uplink's NIC is polled: CPU 0 comes back to the loop at least every millisecond */
	if (p->id == 0 && nets_uplink_active() && read_cntpct() + NET_POLL_TICKS() < deadline)
		deadline = read_cntpct() + NET_POLL_TICKS();
	if (deadline == ~0ULL) {
		write_sysreg(CNTHP_CTL_EL2, 0);
	} else {
		write_sysreg(CNTHP_CVAL_EL2, deadline);
		write_sysreg(CNTHP_CTL_EL2, 1);
	}
	isb();
}

void sched_timer_irq(void)
{
	struct pcpu *p = this_cpu();
	write_sysreg(CNTHP_CTL_EL2, 0);
	wake_timers(p);
	p->need_resched = 1;
}

/* ---- moving a vCPU to another pCPU (vCPU affinity, numa_move.c) ----
 * CPU 0 asks (sched_move_vcpu); the owner hands the vCPU over in its loop: puts it away if
 * loaded, takes it off its queue, points v->pcpu at the new pCPU, then puts it in that
 * pCPU's inbox and rings it. A wake-up racing with the move reads v->pcpu after a full
 * barrier (vcpu_owner: vm_kick, vm_stop), as the owner writes it before one: either the kick reaches
 * the new pCPU, or the new pCPU, which takes the inbox before looking at any vCPU's state
 * (after a barrier too), sees what the kick was for. */

struct pcpu *vcpu_owner(const struct vcpu *v)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return &pcpus[__atomic_load_n(&v->pcpu, __ATOMIC_SEQ_CST)];
}

/* The kick makes the owner's vCPU exit; vcpu_run then sees move_to and returns. */
void sched_move_vcpu(struct vcpu *v, int cpu)
{
	if (cpu < 0 || cpu >= nr_pcpus || !pcpus[cpu].online)
		return;
	__atomic_store_n(&v->move_to, cpu + 1, __ATOMIC_RELEASE);
	struct pcpu *p = vcpu_owner(v);
	if (p != this_cpu())
		gic_send_sgi(p->mpidr, SGI_KICK);
	else
		p->need_resched = 1;
}

static void hand_over(struct pcpu *p)
{
	for (int i = 0; i < p->nrq; i++) {
		struct vcpu *v = p->rq[i];
		if (!__atomic_load_n(&v->move_to, __ATOMIC_ACQUIRE))
			continue;           /* (a load: a store on every pass dirtied the vCPU's line) */
		int to = __atomic_exchange_n(&v->move_to, 0, __ATOMIC_ACQ_REL) - 1;
		if (to < 0 || to == p->id || to >= nr_pcpus)
			continue;
		struct pcpu *t = &pcpus[to];
		/* what may change under a move stays: a vCPU off, booting or stopping */
		if (v->state == VCPU_OFF || v->state == VCPU_PARKED || __atomic_load_n(&v->boot_req, __ATOMIC_ACQUIRE) ||
		    v->vm->state != VM_RUNNING)
			continue;
		spin_lock(&t->inbox_lock);      /* held until v is in: room is checked once */
		if (__atomic_load_n(&t->nrq, __ATOMIC_ACQUIRE) + t->ninbox >= PCPU_MAX_VCPUS) {
			spin_unlock(&t->inbox_lock);
			continue;
		}
		if (p->loaded == v)
			vcpu_put(v);
		if (p->lr_owner == v)
			p->lr_owner = 0;
		for (int j = i; j + 1 < p->nrq; j++)
			p->rq[j] = p->rq[j + 1];
		__atomic_store_n(&p->nrq, p->nrq - 1, __ATOMIC_RELEASE);
		if (p->rq_pos >= p->nrq)
			p->rq_pos = 0;
		i--;
		v->arrived = 1;
		v->moves++;
		__atomic_store_n(&v->pcpu, to, __ATOMIC_SEQ_CST);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		t->inbox[t->ninbox] = v;
		__atomic_store_n(&t->ninbox, t->ninbox + 1, __ATOMIC_RELEASE);
		spin_unlock(&t->inbox_lock);
		gic_send_sgi(t->mpidr, SGI_KICK);
	}
}

static void take_arrivals(struct pcpu *p)
{
	if (!__atomic_load_n(&p->ninbox, __ATOMIC_ACQUIRE))
		return;
	spin_lock(&p->inbox_lock);
	int n = p->ninbox, took = 0;
	for (; took < n && p->nrq < PCPU_MAX_VCPUS; took++) {
		p->rq[p->nrq] = p->inbox[took];
		__atomic_store_n(&p->nrq, p->nrq + 1, __ATOMIC_RELEASE);
	}
	for (int i = took; i < n; i++)          /* no room (hand_over checks): they wait */
		p->inbox[i - took] = p->inbox[i];
	__atomic_store_n(&p->ninbox, n - took, __ATOMIC_RELEASE);
	spin_unlock(&p->inbox_lock);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static struct vcpu *pick(struct pcpu *p, int *others)
{
	struct vcpu *found = 0;
	int n = __atomic_load_n(&p->nrq, __ATOMIC_ACQUIRE), runnable = 0;
	for (int k = 1; k <= n; k++) {
		int idx = (p->rq_pos + k) % n;
		struct vcpu *v = p->rq[idx];
		if (v->state == VCPU_PARKED)
			continue;
		if (v->vm->state == VM_STOPPING) {
			vm_vcpu_parked(v);
			continue;
		}
		if (v->vm->state != VM_RUNNING)
			continue;
		if (__atomic_load_n(&v->boot_req, __ATOMIC_ACQUIRE) == 2) {
			if (p->loaded == v)
				vcpu_put(v);
			vcpu_reset(v, v->boot_pc, v->boot_ctx);
			v->state = VCPU_RUNNABLE;
			__atomic_store_n(&v->boot_req, 0, __ATOMIC_RELEASE);
		}
		if (v->state == VCPU_RUNNABLE) {
			runnable++;
			if (!found) {
				found = v;
				p->rq_pos = idx;
			}
		}
	}
	*others = runnable > 1;
	return found;
}

void sched_loop(void)
{
	struct pcpu *p = this_cpu();
	for (;;) {
		int others;
		take_arrivals(p);
		hand_over(p);
		maybe_live_report(p);
		nets_poll();            /* no lock held here: the uplink's frames go to the VMs */
		console_flush();        /* a guest line without its newline yet (a prompt) */
		struct vcpu *v = pick(p, &others);
		if (!v) {
			program_timer(p, 0);
			vgic_hw_quiesce();
			/* WFI with IRQs masked still wakes on a pending interrupt; taking it after
			 * closes the race with a doorbell that arrives between pick() and wfi. */
			wfi();
			irq_enable();
			irq_disable();
			p->idle_wakeups++;
			continue;
		}
		p->need_resched = 0;
		/* switch first: the vCPU we put away may be a sleeper whose timer needs arming */
		if (p->loaded != v) {
			if (p->loaded)
				vcpu_put(p->loaded);
			vcpu_load(v);
		}
		program_timer(p, others);
		vcpu_run(v);
		if (v->vm->state == VM_STOPPING && v->state != VCPU_PARKED)
			vm_vcpu_parked(v);
	}
}
