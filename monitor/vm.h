/* Virtual machines and virtual CPUs. */
#ifndef MB_VM_H
#define MB_VM_H
#include <stdint.h>
#include "gregs.h"
#include "vgic.h"
#include "vpl011.h"
#include "pmap.h"
#include "stage2.h"
#include "spinlock.h"
#include "mirrorball/hostimg.h"
#include "bits.h"

#define MAX_VMS MB_IMG_MAX_VMS

enum exit_class { EX_WFI, EX_WFE, EX_HVC, EX_SMC, EX_SYSREG, EX_TLBI, EX_MMIO, EX_S2FAULT, EX_IRQ,
		  EX_UNDEF, EX_OTHER, EX_NCLASSES };
extern const char *const exit_class_name[EX_NCLASSES];

enum vcpu_state { VCPU_OFF, VCPU_RUNNABLE, VCPU_BLOCKED, VCPU_PARKED };
enum vm_state { VM_EMPTY, VM_RUNNING, VM_STOPPING, VM_BOOTING, VM_OFF };
enum vm_exit_reason { VMX_NONE, VMX_POWEROFF, VMX_RESET, VMX_CRASH, VMX_ERROR };

struct el1_state {
	uint64_t sctlr, ttbr0, ttbr1, tcr, mair, amair, vbar, contextidr;
	uint64_t tpidr_el0, tpidrro_el0, tpidr_el1, sp_el0, sp_el1, elr, spsr, esr, far;
	uint64_t afsr0, afsr1, cpacr, cntkctl, par, csselr, mdscr;
	uint64_t cntv_ctl, cntv_cval, vmpidr;
};

/* A first-touch stage-2 fault on a VM whose vCPUs share one node maps this many pages (the
 * aligned block around the faulting one); a VM spread over nodes maps one (sched.c). */
#ifndef PREFAULT_PAGES
#define PREFAULT_PAGES 16
#endif

struct fpsimd { uint64_t q[64]; uint64_t fpsr, fpcr; };

struct vcpu {
	struct gregs regs;             /* first: the vectors save into it */
	struct el1_state el1;
	struct fpsimd fp;
	struct vgic_cpu vgic;
	struct vm *vm;
	int id;
	int pcpu;                      /* owning pCPU */
	volatile int state;            /* enum vcpu_state, changed by CAS */
	volatile int boot_req;         /* PSCI CPU_ON (or VM start) asked to boot it */
	uint64_t boot_pc, boot_ctx;
	/* affinity (sched_move_vcpu): the pCPU + 1 CPU 0 wants it on, read by its owner; set
	 * on arrival, so that vcpu_load drops what this pCPU's TLB holds of the VM */
	volatile int move_to;
	int arrived;
	uint32_t moved_period;         /* the NUMA period it last moved in */
	uint64_t moves;                /* times it moved to another pCPU */
	uint64_t exits[EX_NCLASSES];
	uint64_t runs;
	uint64_t guest_ticks, monitor_ticks;   /* time in the guest / handling its exits */
};

struct vm {
	uint64_t s2_root[1024] __aligned(8192);   /* two concatenated level-1 tables */
	int index;
	char name[32];
	const struct mb_img_vm *desc;
	int nvcpus;
	uint16_t vmid;
	int home_node;
	int single_pcpu;               /* every vCPU on one pCPU: TLB maintenance stays local */
	unsigned prefault;             /* pages a first-touch fault fills (an aligned block) */
	volatile int state;            /* enum vm_state */
	int exit_reason;
	int parked;                    /* vCPUs that have stopped for good */
	uint32_t boot_count;           /* starts before this one (restarts) */
	volatile int share_busy;       /* CPU 0's sharing pass or NUMA driver is in this VM's pmap */
	uint64_t start_ticks;
	uint64_t unhandled;            /* guest accesses we answered with UNDEF or an abort */
	uint64_t bad_mmio;
	struct stage2 s2;
	struct pmap pmap;
	struct vgic vgic;
	struct vpl011 uart;
	/* each vCPU's state in the memory of its pCPU's node (vm_new_vcpu); vcpu_store if
	 * that node had no page */
	struct vcpu *vcpu[MB_GUEST_MAX_VCPUS];
	struct vcpu vcpu_store[MB_GUEST_MAX_VCPUS];
};

extern struct vm vms[MAX_VMS];
extern int nr_vms;

/* vm.c */
void vm_create_all(const void *image);
struct vcpu *vm_new_vcpu(struct vm *vm, int idx, int node);   /* sched_place_vm, at creation */
void vm_stop(struct vm *vm, int reason);   /* from any pCPU: ask its vCPUs to park */
void vm_vcpu_parked(struct vcpu *v);       /* on the owning pCPU, once per vCPU */
void vm_kick(void *vm, int vcpu);          /* vGIC callback: something is pending */
void vcpu_wake(struct vcpu *v);
uint64_t vm_page_alloc(void *arg);          /* page_source for the current pCPU's node */
void vm_page_free(void *arg, uint64_t page);
extern const struct page_source guest_pages;
extern const struct page_source node_pages[];  /* [n]: pages on node n only, not zeroed */
void vm_live_report(void);                 /* one @mb live line per running VM */
/* CPU 0's passes over VMs' pmaps (page sharing, the NUMA driver): claim a running VM (1, or
 * 0 if it does not run: then it is not claimed); a VM that stops meanwhile waits in its
 * teardown until released. */
int vm_claim(struct vm *vm);
void vm_release(struct vm *vm);
void vm_log(struct vm *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vm_lookup_by_name(const char *name);

/* vcpu.c */
void vcpu_load(struct vcpu *v);
void vcpu_put(struct vcpu *v);
void vcpu_reset(struct vcpu *v, uint64_t pc, uint64_t x0);
void vcpu_inject_undef(struct vcpu *v);
void vcpu_inject_dabt(struct vcpu *v, uint64_t far);
void vcpu_inject_iabt(struct vcpu *v, uint64_t far);
int vcpu_run(struct vcpu *v);
void vgic_hw_quiesce(void);               /* runs until it blocks, stops or is preempted */

/* exit.c */
void handle_guest_sync(struct vcpu *v);

/* psci.c */
void handle_psci(struct vcpu *v, int is_smc);

/* sched.c */
void sched_place_vm(struct vm *vm, int oversubscribed);
/* CPU 0 (vCPU affinity): ask v's owner to hand it over to pCPU cpu at its next turn. */
void sched_move_vcpu(struct vcpu *v, int cpu);
/* The pCPU that owns v, read after a full barrier (so that whatever the caller stored
 * before, a wake-up, a stop, is seen by the owner, or by the next one if v is moving). */
struct pcpu *vcpu_owner(const struct vcpu *v);
void sched_loop(void) __attribute__((noreturn));
void sched_timer_irq(void);
uint64_t sched_slice_ticks(void);
#endif
