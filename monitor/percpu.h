/* Per-physical-CPU state, reached through TPIDR_EL2. cur_regs must stay the first field:
 * the exception vectors find the running vCPU's register frame through it. */
#ifndef MB_PERCPU_H
#define MB_PERCPU_H
#include <stdint.h>
#include "gregs.h"
#include "palloc.h"
#include "arch.h"
#include "bits.h"
#include "spinlock.h"

#define MAX_PCPUS 8
#define PCPU_MAX_VCPUS 32

struct vcpu;

struct pcpu {
	struct gregs *cur_regs;         /* offset 0: used by vectors.S */
	int id;
	int node;
	uint64_t mpidr;
	uint64_t gicr_rd;               /* this CPU's redistributor RD_base */
	struct vcpu *loaded;            /* whose EL1, FP, timer and vGIC state is in the hardware */
	struct vcpu *lr_owner;          /* whose list registers hw_lr[] mirrors */
	uint64_t hw_lr[16], hw_hcr;     /* what ICH_LR<n>_EL2 and ICH_HCR_EL2 hold */
	struct vcpu *rq[PCPU_MAX_VCPUS];/* vCPUs this pCPU owns; only it changes their run state */
	int nrq;
	/* vCPUs handed over by another pCPU (affinity), for this one to add to rq[] */
	spinlock_t inbox_lock;
	struct vcpu *inbox[PCPU_MAX_VCPUS];
	volatile int ninbox;
	int rq_pos;
	volatile int need_resched;
	uint64_t slice_end;
	struct palloc_cache pcache;
	uint64_t irqs, idle_wakeups;
	volatile int online;
} __aligned(CACHELINE);

extern struct pcpu pcpus[MAX_PCPUS];
extern int nr_pcpus;

static inline struct pcpu *this_cpu(void) { return (struct pcpu *)read_sysreg(tpidr_el2); }
#endif
