/* vCPU context: loading and saving the EL1, FP/SIMD, timer and GIC-interface state of a
 * guest CPU, injecting exceptions, and the enter/exit loop. AArch64 only. */
#include "vm.h"
#include "percpu.h"
#include "arch.h"
#include "console.h"
#include "mb_string.h"
#include "numactr.h"
#include "mirrorball/arch_hooks.h"

void fpsimd_save(struct fpsimd *f);
void fpsimd_restore(const struct fpsimd *f);
int guest_enter(struct gregs *r);
void handle_irqs(void);

#define PSTATE_EL1H_MASKED 0x3C5ULL      /* EL1h, D, A, I, F masked */
#define SCTLR_EL1_RESET    0x30D00800ULL /* RES1 bits, MMU and caches off */
#define HCR_GUEST (HCR_VM | HCR_SWIO | HCR_FMO | HCR_IMO | HCR_AMO | HCR_BSU_IS | \
		   HCR_TWI | HCR_TSC | HCR_TIDCP | HCR_TACR | HCR_TSW | HCR_RW)

#define LR_CASE(n, crm, op2) case n: if (w) write_sysreg(S3_4_C12_##crm##_##op2, *v); else *v = read_sysreg(S3_4_C12_##crm##_##op2); break;
static void lr_access(int n, uint64_t *v, int w)
{
	switch (n) {
	LR_CASE(0, C12, 0) LR_CASE(1, C12, 1) LR_CASE(2, C12, 2) LR_CASE(3, C12, 3)
	LR_CASE(4, C12, 4) LR_CASE(5, C12, 5) LR_CASE(6, C12, 6) LR_CASE(7, C12, 7)
	LR_CASE(8, C13, 0) LR_CASE(9, C13, 1) LR_CASE(10, C13, 2) LR_CASE(11, C13, 3)
	LR_CASE(12, C13, 4) LR_CASE(13, C13, 5) LR_CASE(14, C13, 6) LR_CASE(15, C13, 7)
	}
}

void vcpu_reset(struct vcpu *v, uint64_t pc, uint64_t x0)
{
	memset(&v->regs, 0, sizeof(v->regs));
	memset(&v->el1, 0, sizeof(v->el1));
	memset(&v->fp, 0, sizeof(v->fp));
	v->regs.x[0] = x0;
	v->regs.pc = pc;
	v->regs.pstate = PSTATE_EL1H_MASKED;
	v->el1.sctlr = SCTLR_EL1_RESET;
	v->el1.vmpidr = (1ULL << 31) | (uint64_t)v->id;
	memset(v->vgic.lr, 0, sizeof(v->vgic.lr));
	v->vgic.vmcr = v->vgic.ap0r0 = v->vgic.ap1r0 = 0;
}

void vcpu_load(struct vcpu *v)
{
	struct el1_state *e = &v->el1;
	write_sysreg(sctlr_el1, e->sctlr);
	write_sysreg(ttbr0_el1, e->ttbr0);
	write_sysreg(ttbr1_el1, e->ttbr1);
	write_sysreg(tcr_el1, e->tcr);
	write_sysreg(mair_el1, e->mair);
	write_sysreg(amair_el1, e->amair);
	write_sysreg(vbar_el1, e->vbar);
	write_sysreg(contextidr_el1, e->contextidr);
	write_sysreg(tpidr_el0, e->tpidr_el0);
	write_sysreg(tpidrro_el0, e->tpidrro_el0);
	write_sysreg(tpidr_el1, e->tpidr_el1);
	write_sysreg(sp_el0, e->sp_el0);
	write_sysreg(sp_el1, e->sp_el1);
	write_sysreg(elr_el1, e->elr);
	write_sysreg(spsr_el1, e->spsr);
	write_sysreg(esr_el1, e->esr);
	write_sysreg(far_el1, e->far);
	write_sysreg(afsr0_el1, e->afsr0);
	write_sysreg(afsr1_el1, e->afsr1);
	write_sysreg(cpacr_el1, e->cpacr);
	write_sysreg(cntkctl_el1, e->cntkctl);
	write_sysreg(par_el1, e->par);
	write_sysreg(csselr_el1, e->csselr);
	write_sysreg(mdscr_el1, e->mdscr);
	write_sysreg(vmpidr_el2, e->vmpidr);
	write_sysreg(cntv_cval_el0, e->cntv_cval);
	write_sysreg(cntv_ctl_el0, e->cntv_ctl & 3);
	fpsimd_restore(&v->fp);
	write_sysreg(ICH_VMCR_EL2, v->vgic.vmcr);
	write_sysreg(ICH_AP0R0_EL2, v->vgic.ap0r0);
	write_sysreg(ICH_AP1R0_EL2, v->vgic.ap1r0);
	/* its pCPU's node's stage-2 root (the one root unless per-node roots are on) */
	write_sysreg(vttbr_el2, s2_root_for_node(&v->vm->s2, this_cpu()->node) | (uint64_t)v->vm->vmid << 48);
	if (v->arrived) {
		/* moved here from another pCPU: this one's TLB may hold the VM's translations from
		 * another of its vCPUs that ran here, which v's local TLB maintenance never reached */
		v->arrived = 0;
		arch_s2_flush_vmid(v->vm->vmid, 0);
	}
	/* TTLB: keep a one-pCPU VM's TLB maintenance local. TWE: a vCPU spinning in WFE
	 * yields to the vCPUs it shares the pCPU with (one of them may hold its lock). */
	write_sysreg(hcr_el2, HCR_GUEST | (v->vm->single_pcpu ? HCR_TTLB : 0) |
			      (this_cpu()->nrq > 1 ? HCR_TWE : 0));
	isb();
	this_cpu()->loaded = v;
	numactr_load(this_cpu()->id);
}

void vcpu_put(struct vcpu *v)
{
	struct el1_state *e = &v->el1;
	e->sctlr = read_sysreg(sctlr_el1);
	e->ttbr0 = read_sysreg(ttbr0_el1);
	e->ttbr1 = read_sysreg(ttbr1_el1);
	e->tcr = read_sysreg(tcr_el1);
	e->mair = read_sysreg(mair_el1);
	e->amair = read_sysreg(amair_el1);
	e->vbar = read_sysreg(vbar_el1);
	e->contextidr = read_sysreg(contextidr_el1);
	e->tpidr_el0 = read_sysreg(tpidr_el0);
	e->tpidrro_el0 = read_sysreg(tpidrro_el0);
	e->tpidr_el1 = read_sysreg(tpidr_el1);
	e->sp_el0 = read_sysreg(sp_el0);
	e->sp_el1 = read_sysreg(sp_el1);
	e->elr = read_sysreg(elr_el1);
	e->spsr = read_sysreg(spsr_el1);
	e->esr = read_sysreg(esr_el1);
	e->far = read_sysreg(far_el1);
	e->afsr0 = read_sysreg(afsr0_el1);
	e->afsr1 = read_sysreg(afsr1_el1);
	e->cpacr = read_sysreg(cpacr_el1);
	e->cntkctl = read_sysreg(cntkctl_el1);
	e->par = read_sysreg(par_el1);
	e->csselr = read_sysreg(csselr_el1);
	e->mdscr = read_sysreg(mdscr_el1);
	e->cntv_cval = read_sysreg(cntv_cval_el0);
	e->cntv_ctl = read_sysreg(cntv_ctl_el0);
	write_sysreg(cntv_ctl_el0, 0);     /* it must not fire for the next vCPU */
	fpsimd_save(&v->fp);
	v->vgic.vmcr = read_sysreg(ICH_VMCR_EL2);
	v->vgic.ap0r0 = read_sysreg(ICH_AP0R0_EL2);
	v->vgic.ap1r0 = read_sysreg(ICH_AP1R0_EL2);
	isb();
	this_cpu()->loaded = 0;
	numactr_put(this_cpu()->id, v->vm->index);
}

/* Deliver a synchronous exception to the guest's EL1, as the hardware would have. */
static void inject_sync(struct vcpu *v, uint64_t esr, uint64_t far)
{
	uint64_t pstate = v->regs.pstate, vbar = read_sysreg(vbar_el1), off;
	switch (pstate & 0xF) {
	case 0x4: off = 0x000; break;      /* EL1t */
	case 0x5: off = 0x200; break;      /* EL1h */
	default: off = (pstate & 0x10) ? 0x600 : 0x400; break;   /* EL0: AArch32 or AArch64 */
	}
	write_sysreg(elr_el1, v->regs.pc);
	write_sysreg(spsr_el1, pstate);
	write_sysreg(esr_el1, esr);
	write_sysreg(far_el1, far);
	v->regs.pc = vbar + off;
	v->regs.pstate = PSTATE_EL1H_MASKED;
	v->vm->unhandled++;
}

static int from_el1(struct vcpu *v) { return (v->regs.pstate & 0xC) == 0x4; }

void vcpu_inject_undef(struct vcpu *v) { inject_sync(v, 1ULL << 25, 0); }

void vcpu_inject_dabt(struct vcpu *v, uint64_t far)
{
	uint64_t ec = from_el1(v) ? 0x25 : 0x24;
	inject_sync(v, ec << 26 | 1ULL << 25 | 0x10, far);   /* synchronous external abort */
}

void vcpu_inject_iabt(struct vcpu *v, uint64_t far)
{
	uint64_t ec = from_el1(v) ? 0x21 : 0x20;
	inject_sync(v, ec << 26 | 1ULL << 25 | 0x10, far);
}

enum { RUN_BLOCKED, RUN_STOP, RUN_PREEMPT };

/* Every ICH_* access is slow under emulation, so the pCPU remembers what its list
 * registers and ICH_HCR_EL2 hold and touches only what changed. */
static void load_lrs(struct pcpu *pc, struct vcpu *v)
{
	struct vgic_cpu *c = &v->vgic;
	int all = pc->lr_owner != v;
	for (int i = 0; i < c->nlr; i++)
		if (all || pc->hw_lr[i] != c->lr[i]) {
			lr_access(i, &c->lr[i], 1);
			pc->hw_lr[i] = c->lr[i];
		}
	pc->lr_owner = v;
	if (pc->hw_hcr != c->hcr) {
		write_sysreg(ICH_HCR_EL2, c->hcr);
		pc->hw_hcr = c->hcr;
	}
	isb();
}

static void save_lrs(struct pcpu *pc, struct vcpu *v)
{
	struct vgic_cpu *c = &v->vgic;
	int maint = (pc->hw_hcr & ICH_HCR_UIE) != 0;
	for (int i = 0; i < c->nlr; i++)
		if (pc->hw_lr[i]) {          /* an empty LR stays empty: only we fill them */
			lr_access(i, &c->lr[i], 0);
			pc->hw_lr[i] = c->lr[i];
			maint |= (c->lr[i] & LR_EOI) != 0;
		}
	if (maint) {                         /* no maintenance interrupts while we are out */
		write_sysreg(ICH_HCR_EL2, 0);
		pc->hw_hcr = 0;
		isb();
	}
}

/* Before the pCPU idles: a pending virtual interrupt must not keep WFI from sleeping. */
void vgic_hw_quiesce(void)
{
	struct pcpu *pc = this_cpu();
	if (pc->hw_hcr) {
		write_sysreg(ICH_HCR_EL2, 0);
		pc->hw_hcr = 0;
		isb();
	}
}

int vcpu_run(struct vcpu *v)
{
	struct pcpu *pc = this_cpu();
	struct vgic *g = &v->vm->vgic;
	for (;;) {
		if (v->vm->state != VM_RUNNING)
			return RUN_STOP;
		if (v->state != VCPU_RUNNABLE)
			return RUN_BLOCKED;
		if (pc->need_resched) {
			pc->need_resched = 0;
			return RUN_PREEMPT;
		}
		if (__atomic_load_n(&v->move_to, __ATOMIC_ACQUIRE))
			return RUN_PREEMPT;      /* the affinity moves it: sched.c hand_over */
		vgic_flush_lrs(g, v->id);
		load_lrs(pc, v);
		uint64_t t_in = read_cntpct();
		int kind = guest_enter(&v->regs);
		uint64_t t_out = read_cntpct();
		v->guest_ticks += t_out - t_in;
		save_lrs(pc, v);
		vgic_sync_lrs(g, v->id);
		v->runs++;
		if (kind == 0) {
			handle_guest_sync(v);
		} else if (kind == 1) {
			v->exits[EX_IRQ]++;
			handle_irqs();
		} else {
			v->exits[EX_OTHER]++;
			vm_log(v->vm, "vcpu%d: %s from the guest at pc %lx; stopping the VM", v->id,
			       kind == 2 ? "FIQ" : "SError", v->regs.pc);
			vm_stop(v->vm, VMX_CRASH);
		}
		v->monitor_ticks += read_cntpct() - t_out;
	}
}
