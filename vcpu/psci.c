/* PSCI 1.0 and SMCCC discovery for guests, over HVC (and trapped SMC).
 * Every argument comes from the guest: validated, answered with PSCI error codes. */
#include "vm.h"
#include "percpu.h"
#include "console.h"

#define PSCI_VERSION          0x84000000
#define PSCI_CPU_SUSPEND32    0x84000001
#define PSCI_CPU_SUSPEND64    0xC4000001
#define PSCI_CPU_OFF          0x84000002
#define PSCI_CPU_ON32         0x84000003
#define PSCI_CPU_ON64         0xC4000003
#define PSCI_AFFINITY_INFO32  0x84000004
#define PSCI_AFFINITY_INFO64  0xC4000004
#define PSCI_MIGRATE_INFO_TYPE 0x84000006
#define PSCI_SYSTEM_OFF       0x84000008
#define PSCI_SYSTEM_RESET     0x84000009
#define PSCI_FEATURES         0x8400000A
#define SMCCC_VERSION         0x80000000
#define SMCCC_ARCH_FEATURES   0x80000001

#define PSCI_SUCCESS            0
#define PSCI_NOT_SUPPORTED     -1
#define PSCI_INVALID_PARAMETERS -2
#define PSCI_ALREADY_ON        -4
#define PSCI_ON_PENDING        -5
#define PSCI_INVALID_ADDRESS   -9

static int supported(uint32_t fn)
{
	switch (fn) {
	case PSCI_VERSION: case PSCI_CPU_OFF: case PSCI_CPU_ON32: case PSCI_CPU_ON64:
	case PSCI_AFFINITY_INFO32: case PSCI_AFFINITY_INFO64: case PSCI_MIGRATE_INFO_TYPE:
	case PSCI_SYSTEM_OFF: case PSCI_SYSTEM_RESET: case PSCI_FEATURES: case SMCCC_VERSION:
		return 1;
	}
	return 0;
}

/* A guest MPIDR names one of our vCPUs when Aff3..Aff1 are 0 and Aff0 is an index. */
static struct vcpu *target_of(struct vm *vm, uint64_t mpidr)
{
	if (mpidr & ~0xFFULL || mpidr >= (uint64_t)vm->nvcpus)
		return 0;
	return vm->vcpu[mpidr];
}

static int64_t cpu_on(struct vcpu *v, uint64_t mpidr, uint64_t entry, uint64_t ctx)
{
	struct vm *vm = v->vm;
	struct vcpu *t = target_of(vm, mpidr);
	if (!t)
		return PSCI_INVALID_PARAMETERS;
	if (!pmap_covers(&vm->pmap, entry) || (entry & 3))
		return PSCI_INVALID_ADDRESS;
	if (t->state != VCPU_OFF)
		return PSCI_ALREADY_ON;
	int idle = 0;   /* claim the request slot: two callers may race for one target */
	if (!__atomic_compare_exchange_n(&t->boot_req, &idle, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return PSCI_ON_PENDING;
	t->boot_pc = entry;
	t->boot_ctx = ctx;
	__atomic_store_n(&t->boot_req, 2, __ATOMIC_RELEASE);   /* 2: ready for the owner */
	vm_kick(vm, t->id);
	return PSCI_SUCCESS;
}

void handle_psci(struct vcpu *v, int is_smc)
{
	struct gregs *r = &v->regs;
	uint32_t fn = (uint32_t)r->x[0];
	int64_t ret = PSCI_NOT_SUPPORTED;
	(void)is_smc;

	/* SMC64/HVC64 function IDs carry bit 30; 32-bit ones only use the low 32 bits of args */
	uint64_t a1 = r->x[1], a2 = r->x[2], a3 = r->x[3];
	if (!(fn & 0x40000000)) {
		a1 &= 0xFFFFFFFF;
		a2 &= 0xFFFFFFFF;
		a3 &= 0xFFFFFFFF;
	}
	switch (fn) {
	case PSCI_VERSION:
		ret = 0x10000;                    /* 1.0 */
		break;
	case SMCCC_VERSION:
		ret = 0x10001;                    /* 1.1: ARCH_FEATURES exists */
		break;
	case SMCCC_ARCH_FEATURES:
		ret = PSCI_NOT_SUPPORTED;         /* no firmware workarounds to offer */
		break;
	case PSCI_FEATURES:
		ret = supported((uint32_t)a1) ? PSCI_SUCCESS : PSCI_NOT_SUPPORTED;
		break;
	case PSCI_CPU_ON32:
	case PSCI_CPU_ON64:
		ret = cpu_on(v, a1, a2, a3);
		break;
	case PSCI_CPU_OFF:
		v->state = VCPU_OFF;
		return;                           /* CPU_OFF does not return on success */
	case PSCI_AFFINITY_INFO32:
	case PSCI_AFFINITY_INFO64: {
		struct vcpu *t = target_of(v->vm, a1);
		if (!t || a2 != 0)
			ret = PSCI_INVALID_PARAMETERS;
		else if (t->boot_req)
			ret = 2;                  /* ON_PENDING */
		else
			ret = t->state == VCPU_OFF ? 1 : 0;
		break;
	}
	case PSCI_MIGRATE_INFO_TYPE:
		ret = 2;                          /* no trusted OS: nothing to migrate */
		break;
	case PSCI_SYSTEM_OFF:
		vm_stop(v->vm, VMX_POWEROFF);
		return;
	case PSCI_SYSTEM_RESET:
		vm_stop(v->vm, VMX_RESET);
		return;
	case PSCI_CPU_SUSPEND32:
	case PSCI_CPU_SUSPEND64:
	default:
		ret = PSCI_NOT_SUPPORTED;
	}
	r->x[0] = (uint64_t)ret;
}
