/* Synchronous exits from a guest, dispatched by exception class (ESR_EL2.EC). */
#include "vm.h"
#include "numa_move.h"
#include "disks.h"
#include "percpu.h"
#include "arch.h"
#include "console.h"
#include "mmio_decode.h"
#include "benchcall.h"

#define EC_WFX    0x01
#define EC_HVC64  0x16
#define EC_SMC64  0x17
#define EC_SYSREG 0x18
#define EC_IABT   0x20
#define EC_DABT   0x24

/* Limit log lines per VM so a hostile guest cannot flood the monitor log. */
#define LOG_BUDGET 32
static int log_budget_left(struct vm *vm) { return vm->unhandled < LOG_BUDGET; }

/* ---- WFI / WFE ---- */

static void handle_wfx(struct vcpu *v, uint64_t esr)
{
	v->regs.pc += (esr & (1ULL << 25)) ? 4 : 2;     /* IL: a T32 WFI is 16 bits */
	if (esr & 1) {                       /* WFE: someone else may want this pCPU */
		v->exits[EX_WFE]++;
		if (this_cpu()->nrq > 1)
			this_cpu()->need_resched = 1;
		return;
	}
	v->exits[EX_WFI]++;
	struct vgic *g = &v->vm->vgic;
	if (vgic_has_pending(g, v->id))
		return;
	/* A timer that already fired wakes it at once (the physical PPI may not be taken yet). */
	uint64_t ctl = read_sysreg(cntv_ctl_el0);
	if ((ctl & 7) == 5)
		return;
	__atomic_store_n(&v->state, VCPU_BLOCKED, __ATOMIC_SEQ_CST);
	/* Re-check: an interrupt may have been posted before we published BLOCKED. */
	if (vgic_has_pending(g, v->id))
		vcpu_wake(v);
}

/* ---- system registers (EC 0x18) ---- */

#define SYSREG(op0, op1, crn, crm, op2) (((op0) << 20) | ((op2) << 17) | ((op1) << 14) | ((crn) << 10) | ((crm) << 1))
#define SR_MASK SYSREG(3, 7, 15, 15, 7)

/* Guest TLB maintenance, trapped (HCR_EL2.TTLB) only for VMs whose vCPUs all share one
 * pCPU: there a broadcast is wasted, and under QEMU it stops every emulated CPU. So the
 * inner-shareable forms are done locally; the VMID is the guest's, loaded in VTTBR_EL2. */
#define TLBI_LOCAL(op)  __asm__ volatile("tlbi " op ", %0" :: "r"(arg) : "memory")
static int guest_tlbi(uint32_t crm, uint32_t op2, uint64_t arg)
{
	if (crm != 3 && crm != 7)
		return -1;
	switch (op2) {
	case 0: __asm__ volatile("tlbi vmalle1" ::: "memory"); break;
	case 1: TLBI_LOCAL("vae1"); break;
	case 2: TLBI_LOCAL("aside1"); break;
	case 3: TLBI_LOCAL("vaae1"); break;
	case 5: TLBI_LOCAL("vale1"); break;
	case 7: TLBI_LOCAL("vaale1"); break;
	default: return -1;
	}
	dsb(nsh);
	return 0;
}

/* PMU registers: PMCR..PMUSERENR (op1 3, CRn 9, CRm 12-14), event counters and types
 * (op1 3, CRn 14, CRm 8-15), PMINTENSET/CLR_EL1 and PMMIR_EL1 (op1 0, CRn 9, CRm 14). */
static int is_pmu_reg(uint32_t iss)
{
	uint32_t op0 = (iss >> 20) & 3, op1 = (iss >> 14) & 7, crn = (iss >> 10) & 15, crm = (iss >> 1) & 15;
	if (op0 != 3)
		return 0;
	return (op1 == 3 && crn == 9 && crm >= 12) || (op1 == 3 && crn == 14 && crm >= 8) ||
	       (op1 == 0 && crn == 9 && crm == 14);
}

static void handle_sysreg(struct vcpu *v, uint64_t esr)
{
	uint32_t iss = ESR_ISS(esr);
	int rt = (iss >> 5) & 31, read = iss & 1;
	uint32_t id = iss & SR_MASK;
	uint64_t val = rt == 31 ? 0 : v->regs.x[rt];
	uint64_t result = 0;

	if (((iss >> 20) & 3) == 1 && ((iss >> 14) & 7) == 0 && ((iss >> 10) & 15) == 8 &&
	    v->vm->single_pcpu && !guest_tlbi((iss >> 1) & 15, (iss >> 17) & 7, val)) {
		v->exits[EX_TLBI]++;
		v->regs.pc += 4;
		return;
	}
	v->exits[EX_SYSREG]++;
	if (id == SYSREG(3, 0, 12, 11, 5) && !read) {             /* ICC_SGI1R_EL1 */
		vgic_sgi1r(&v->vm->vgic, v->id, val);
	} else if ((id == SYSREG(3, 0, 12, 11, 6) || id == SYSREG(3, 0, 12, 11, 7)) && !read) {
		/* ICC_ASGI1R / ICC_SGI0R: no other security state, no group 0: ignored */
	} else if (((iss >> 20) & 3) == 1) {
		/* DC ISW/CSW/CISW (trapped by TSW): set/way maintenance is meaningless for a guest
		 * whose memory the monitor maps; QEMU has no caches to clean. */
	} else if (id == SYSREG(3, 0, 1, 0, 1)) {                 /* ACTLR_EL1 (TACR) */
		result = 0;
	} else if ((id & SYSREG(3, 7, 15, 0, 0)) == SYSREG(3, 3, 14, 0, 0) &&
		   ((iss >> 1) & 15) == 2) {
		/* CNTP_TVAL/CTL/CVAL_EL0: guests get the virtual timer; the physical one reads 0 */
		result = 0;
	} else if (((iss >> 20) & 3) == 2 || is_pmu_reg(iss)) {
		/* debug and PMU registers (MDCR_EL2 traps them): absent for guests, RAZ/WI */
		result = 0;
	} else {
		if (log_budget_left(v->vm))
			vm_log(v->vm, "vcpu%d: %s of unemulated system register op0=%u op1=%u CRn=%u CRm=%u op2=%u at pc %lx: UNDEF",
			       v->id, read ? "read" : "write", (iss >> 20) & 3, (iss >> 14) & 7,
			       (iss >> 10) & 15, (iss >> 1) & 15, (iss >> 17) & 7, v->regs.pc);
		v->exits[EX_UNDEF]++;
		vcpu_inject_undef(v);
		return;
	}
	if (read && rt != 31)
		v->regs.x[rt] = result;
	v->regs.pc += 4;
}

/* ---- data and instruction aborts ---- */

static uint64_t fault_ipa(void)
{
	uint64_t hpfar = read_sysreg(hpfar_el2), far = read_sysreg(far_el2);
	return ((hpfar >> 4) << 12) | (far & 0xFFF);
}

static int device_access(struct vcpu *v, struct mmio_access *a, uint64_t *val)
{
	struct vm *vm = v->vm;
	uint64_t gpa = a->gpa;
	*val = a->value;
	if (gpa >= MB_GUEST_GICD_BASE && gpa < MB_GUEST_GICD_BASE + MB_GUEST_GICD_SIZE)
		return vgic_dist_mmio(&vm->vgic, gpa - MB_GUEST_GICD_BASE, a->size, a->write, val);
	if (gpa >= MB_GUEST_GICR_BASE && gpa < MB_GUEST_GICR_BASE + vm->nvcpus * MB_GUEST_GICR_STRIDE) {
		uint64_t off = gpa - MB_GUEST_GICR_BASE;
		return vgic_redist_mmio(&vm->vgic, (int)(off / MB_GUEST_GICR_STRIDE),
					off % MB_GUEST_GICR_STRIDE, a->size, a->write, val);
	}
	if (gpa >= MB_GUEST_UART_BASE && gpa < MB_GUEST_UART_BASE + MB_GUEST_UART_SIZE)
		return vpl011_mmio(&vm->uart, gpa - MB_GUEST_UART_BASE, a->size, a->write, val);
	if (gpa >= MB_GUEST_VIRTIO_BASE && gpa < MB_GUEST_VIRTIO_BASE + (MB_VM_MAX_DISKS + MB_VM_MAX_NETS) * MB_GUEST_VIRTIO_SIZE)
		return disks_mmio(vm, gpa - MB_GUEST_VIRTIO_BASE, a->size, a->write, val);
	return -2;
}

/* A translation, access-flag or permission fault on guest RAM: the pmap's business. */
static int is_ram_fault(struct vm *vm, uint64_t gpa, uint32_t fsc)
{
	return pmap_covers(&vm->pmap, gpa) && (fsc & 0x30) == 0 && (fsc & 0x0C) != 0;
}

/* Resolve it; on a first touch also fill the rest of an aligned block of 'prefault' pages.
 * No machine memory left stops this VM only. */
static void ram_fault(struct vcpu *v, uint64_t gpa, int write, unsigned prefault)
{
	struct vm *vm = v->vm;
	int first_touch = !(pmap_lookup(&vm->pmap, gpa) & PMAP_PRESENT);
	if (numa_move_on && !first_touch)
		numa_sample_fault(vm, gpa, this_cpu()->node, write);   /* a sampled page coming back? */
	int rc = pmap_fault(&vm->pmap, &vm->s2, gpa, write, &guest_pages, &guest_pages);
	if (!rc && first_touch && prefault > 1)
		rc = pmap_prefault(&vm->pmap, &vm->s2, gpa, prefault, &guest_pages, &guest_pages);
	if (rc) {
		vm_log(vm, "vcpu%d: out of machine memory at gpa %lx; stopping the VM", v->id, gpa);
		vm_stop(vm, VMX_ERROR);
	}
}

static void handle_dabt(struct vcpu *v, uint64_t esr)
{
	struct vm *vm = v->vm;
	uint64_t gpa = fault_ipa(), far = read_sysreg(far_el2);
	uint32_t fsc = esr & 0x3F;
	int s1ptw = (esr >> 7) & 1, write = ((esr >> 6) & 1) && !s1ptw;

	if (is_ram_fault(vm, gpa, fsc)) {
		v->exits[EX_S2FAULT]++;
		if (((esr >> 8) & 1) && (fsc & 0x3C) == 0x0C) {
			/* A cache-maintenance instruction (ISS.CM) hit a read-only copy-on-write page:
			 * it reports itself as a write, but a shared page is clean by construction
			 * (the monitor cleaned it to the point of coherency), so there is nothing to
			 * invalidate and no reason to copy it. */
			v->regs.pc += 4;
			return;
		}
		ram_fault(v, gpa, write, vm->prefault);
		return;
	}
	v->exits[EX_MMIO]++;
	struct mmio_access a;
	if (mmio_decode(esr, gpa, &v->regs, &a)) {
		if (log_budget_left(vm))
			vm_log(vm, "vcpu%d: device access at gpa %lx without syndrome (pc %lx): abort injected",
			       v->id, gpa, v->regs.pc);
		vcpu_inject_dabt(v, far);
		return;
	}
	uint64_t val;
	int rc = device_access(v, &a, &val);
	if (rc == -2) {
		if (log_budget_left(vm))
			vm_log(vm, "vcpu%d: %s of %d bytes at unmapped gpa %lx (pc %lx): abort injected",
			       v->id, a.write ? "write" : "read", a.size, gpa, v->regs.pc);
		vcpu_inject_dabt(v, far);
		return;
	}
	if (rc) {
		vm->bad_mmio++;
		if (vm->bad_mmio <= LOG_BUDGET)
			vm_log(vm, "vcpu%d: %s of %d bytes at device register gpa %lx ignored (RAZ/WI)",
			       v->id, a.write ? "write" : "read", a.size, gpa);
	}
	mmio_complete(&a, val, &v->regs);
}

static void handle_iabt(struct vcpu *v, uint64_t esr)
{
	struct vm *vm = v->vm;
	uint64_t gpa = fault_ipa();
	uint32_t fsc = esr & 0x3F;
	if (is_ram_fault(vm, gpa, fsc)) {
		v->exits[EX_S2FAULT]++;
		ram_fault(v, gpa, 0, 1);
		return;
	}
	v->exits[EX_OTHER]++;
	if (log_budget_left(vm))
		vm_log(vm, "vcpu%d: instruction fetch from non-RAM gpa %lx: abort injected", v->id, gpa);
	vcpu_inject_iabt(v, read_sysreg(far_el2));
}

void handle_guest_sync(struct vcpu *v)
{
	uint64_t esr = read_sysreg(esr_el2);
	switch (ESR_EC(esr)) {
	case EC_WFX:
		handle_wfx(v, esr);
		break;
	case EC_HVC64:
		v->exits[EX_HVC]++;
		if (esr & 0xFFFF)
			v->regs.x[0] = (uint64_t)-1;   /* SMCCC: calls use immediate 0; others are unknown */
		else if (benchcall_owns(v->regs.x[0]))
			benchcall_handle(v);           /* Mirrorball's own: mirrorball/hypercall.h */
		else
			handle_psci(v, 0);
		break;
	case EC_SMC64:
		v->exits[EX_SMC]++;
		v->regs.pc += 4;                 /* a trapped SMC leaves ELR at the SMC itself */
		if (esr & 0xFFFF)
			v->regs.x[0] = (uint64_t)-1;
		else
			handle_psci(v, 1);
		break;
	case EC_SYSREG:
		handle_sysreg(v, esr);
		break;
	case EC_DABT:
		handle_dabt(v, esr);
		break;
	case EC_IABT:
		handle_iabt(v, esr);
		break;
	default:
		v->exits[EX_UNDEF]++;
		if (log_budget_left(v->vm))
			vm_log(v->vm, "vcpu%d: unhandled exception class 0x%x (ESR %lx) at pc %lx: UNDEF",
			       v->id, (unsigned)ESR_EC(esr), esr, v->regs.pc);
		vcpu_inject_undef(v);
	}
}
