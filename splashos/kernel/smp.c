/* vCPUs, threads and synchronisation.
 *
 * One worker thread per vCPU. vCPU 0 runs the command loop and the apps' main(); the others
 * park until sp_parallel() publishes (fn, arg, generation). Locks and barriers are built on
 * exclusive loads and stores (LDAXR/STLXR).
 *
 * Waiting: spin a little, then sleep in WFI. Under the monitor, a VM's vCPUs may share one
 * pCPU (when the host is oversubscribed), and WFE does not yield there (QEMU does not trap
 * it), so a waiter that only spun would burn its whole time slice while the vCPU it waits
 * for cannot run. A sleeper publishes itself in sleep_mask, re-checks its condition and
 * executes WFI, which traps to the monitor and blocks the vCPU until an interrupt is
 * pending for it. Whoever makes a condition true sends an SGI (ICC_SGI1R_EL1) to the
 * sleepers; the woken vCPU acknowledges it by polling ICC_IAR1_EL1 (interrupts stay masked
 * in PSTATE: SPLASHOS takes no interrupts). Both sides order their store and their load
 * with DMB ISH, so either the sleeper sees the condition or the waker sees the sleeper. */
#include "kernel.h"

#define SGI_WAKE        1
#define SPIN_NS         20000ULL        /* spin this long before sleeping */

#define PSCI_CPU_ON64   0xC4000003ULL
#define PSCI_SYSTEM_OFF 0x84000008ULL

int nr_threads = 1;
static struct cpu_boot cpu_boot[MAX_CPUS];
static volatile uint32_t sleep_mask;            /* bit i: vCPU i is (about to be) in WFI */
static uint64_t spin_ticks = 1000;

/* ---- PSCI ---- */

uint64_t psci_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
	register uint64_t x0 __asm__("x0") = fn, x1 __asm__("x1") = a1, x2 __asm__("x2") = a2,
		 x3 __asm__("x3") = a3;
	if (boot.psci_smc)
		__asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) :: "memory");
	else
		__asm__ volatile("hvc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) :: "memory");
	return x0;
}

void psci_system_off(void)
{
	for (;;) {
		psci_call(PSCI_SYSTEM_OFF, 0, 0, 0);
		__asm__ volatile("wfi");
	}
}

/* ---- exclusives ---- */

/* old = *p; *p = old OP v, as one exclusive (acquire-release) read-modify-write; returns old.
 * OP is the A64 instruction: orr, bic (and-not) or add. */
#define EXCLUSIVE_RMW32(op, p, v)							\
	({										\
		uint32_t old_, tmp_, fail_;						\
		__asm__ volatile("1: ldaxr %w0, [%3]\n"					\
				 "   " op "   %w1, %w0, %w4\n"				\
				 "   stlxr %w2, %w1, [%3]\n"					\
				 "   cbnz  %w2, 1b\n"						\
				 : "=&r"(old_), "=&r"(tmp_), "=&r"(fail_) : "r"(p), "r"(v) : "memory"); \
		old_;									\
	})

static inline uint32_t atomic_or32(volatile uint32_t *p, uint32_t v)
{
	return EXCLUSIVE_RMW32("orr", p, v);
}

static inline uint32_t atomic_andnot32(volatile uint32_t *p, uint32_t v)
{
	return EXCLUSIVE_RMW32("bic", p, v);
}

static inline uint32_t atomic_add32(volatile uint32_t *p, uint32_t v)	/* returns the new value */
{
	return EXCLUSIVE_RMW32("add", p, v) + v;
}

static inline uint32_t load_acquire32(const volatile uint32_t *p)
{
	uint32_t v;
	__asm__ volatile("ldar %w0, [%1]" : "=r"(v) : "r"(p) : "memory");
	return v;
}

static inline void store_release32(volatile uint32_t *p, uint32_t v)
{
	__asm__ volatile("stlr %w0, [%1]" :: "r"(v), "r"(p) : "memory");
}

/* ---- sleeping and waking ---- */

static void send_sgi(uint32_t targets)
{
	if (!targets)
		return;
	dsb(ish);
	write_sysreg(S3_0_C12_C11_5, (uint64_t)SGI_WAKE << 24 | (targets & 0xFFFF));  /* ICC_SGI1R_EL1 */
	isb();
}

static void ack_irqs(void)
{
	for (int i = 0; i < 16; i++) {
		uint64_t iar = read_sysreg(S3_0_C12_C12_0);     /* ICC_IAR1_EL1 */
		if ((iar & 0xFFFFFF) >= 1020)
			break;
		write_sysreg(S3_0_C12_C12_1, iar);              /* ICC_EOIR1_EL1 */
		isb();
	}
}

void sp_wake_all(void)
{
	dmb(ish);
	uint32_t m = load_acquire32(&sleep_mask) & ~(1u << this_tid());
	send_sgi(m);
}

void sp_wake_cpu(int tid)
{
	dmb(ish);
	uint32_t m = load_acquire32(&sleep_mask) & (1u << tid) & ~(1u << this_tid());
	send_sgi(m);
}

void sp_wait(int (*cond)(void *), void *arg)
{
	if (cond(arg))
		return;
	uint64_t until = read_cntvct() + spin_ticks;
	while (read_cntvct() < until) {
		for (int i = 0; i < 64; i++)
			__asm__ volatile("yield");
		if (cond(arg))
			return;
	}
	uint32_t me = 1u << this_tid();
	for (;;) {
		atomic_or32(&sleep_mask, me);
		dmb(ish);
		if (cond(arg))
			break;
		__asm__ volatile("dsb sy; wfi" ::: "memory");
		ack_irqs();
		atomic_andnot32(&sleep_mask, me);
		dmb(ish);
		if (cond(arg))
			return;
	}
	atomic_andnot32(&sleep_mask, me);
}

/* ---- locks: bit 0 held, bit 1 + i: vCPU i sleeps waiting for it ---- */

int sp_trylock(sp_lock_t *l)
{
	uint32_t old, fail = 1;
	__asm__ volatile("   ldaxr %w0, [%2]\n"
			 "   tbnz  %w0, #0, 1f\n"
			 "   orr   %w0, %w0, #1\n"
			 "   stxr  %w1, %w0, [%2]\n"
			 "1:\n"
			 : "=&r"(old), "+&r"(fail) : "r"(&l->v) : "memory");
	return fail == 0;
}

struct lockwait { sp_lock_t *l; uint32_t me; };

static int lock_free_or_taken(void *p)
{
	struct lockwait *w = p;
	if (sp_trylock(w->l)) {
		w->me |= 0x80000000u;          /* got it */
		return 1;
	}
	return 0;
}

void sp_lock(sp_lock_t *l)
{
	if (sp_trylock(l))
		return;
	uint64_t until = read_cntvct() + spin_ticks;
	while (read_cntvct() < until) {
		for (int i = 0; i < 16; i++) {
			if (!(l->v & 1) && sp_trylock(l))
				return;
			__asm__ volatile("yield");
		}
	}
	/* Slow path: mark ourselves as a waiter in the lock word, sleep until woken. */
	uint32_t mine = 2u << this_tid();
	struct lockwait w = { l, 0 };
	for (;;) {
		atomic_or32(&l->v, mine);
		dmb(ish);
		w.me = 0;
		sp_wait(lock_free_or_taken, &w);
		if (w.me & 0x80000000u) {
			atomic_andnot32(&l->v, mine);
			return;
		}
	}
}

void sp_unlock(sp_lock_t *l)
{
	uint32_t old = atomic_andnot32(&l->v, 1);   /* release (STLXR) */
	if (old & ~1u) {
		dmb(ish);
		send_sgi((old >> 1) & load_acquire32(&sleep_mask) & ~(1u << this_tid()));
	}
}

/* ---- barriers (sense-reversing) ---- */

void sp_barrier_init(sp_barrier_t *b, int n)
{
	b->count = 0;
	b->sense = 0;
	b->n = (uint32_t)(n > 0 ? n : 1);
}

struct barwait { sp_barrier_t *b; uint32_t sense; };

static int sense_flipped(void *p)
{
	struct barwait *w = p;
	return load_acquire32(&w->b->sense) != w->sense;
}

void sp_barrier(sp_barrier_t *b)
{
	uint32_t s = load_acquire32(&b->sense);
	if (atomic_add32(&b->count, 1) == b->n) {
		b->count = 0;
		store_release32(&b->sense, !s);
		sp_wake_all();
	} else {
		struct barwait w = { b, s };
		sp_wait(sense_flipped, &w);
	}
}

/* ---- threads ---- */

int sp_nthreads(void) { return nr_threads; }
int sp_tid(void) { return this_tid(); }

static struct {
	void (*fn)(void *);
	void *arg;
	volatile uint32_t gen;
	volatile uint32_t done;
	volatile uint32_t busy;
} work;

static int new_work(void *p)
{
	return load_acquire32(&work.gen) != *(uint32_t *)p;
}

static int all_done(void *p)
{
	(void)p;
	return load_acquire32(&work.done) == (uint32_t)nr_threads - 1;
}

void sp_parallel(void (*fn)(void *arg), void *arg)
{
	if (this_tid() != 0 || work.busy) {
		sp_printf("splash: error: sp_parallel called from thread %d%s\n", this_tid(),
			  work.busy ? " inside sp_parallel (nesting is not supported)" : "");
		psci_system_off();
	}
	if (nr_threads == 1) {
		fn(arg);
		return;
	}
	work.busy = 1;
	work.fn = fn;
	work.arg = arg;
	store_release32(&work.done, 0);
	store_release32(&work.gen, work.gen + 1);
	sp_wake_all();
	fn(arg);
	sp_wait(all_done, 0);
	work.busy = 0;
}

void secondary_main(uint64_t tid)
{
	uint32_t seen = load_acquire32(&work.gen);
	__atomic_store_n(&cpu_boot[tid].online, 1, __ATOMIC_RELEASE);
	sp_wake_cpu(0);
	for (;;) {
		sp_wait(new_work, &seen);
		seen = load_acquire32(&work.gen);
		work.fn(work.arg);
		atomic_add32(&work.done, 1);
		sp_wake_cpu(0);
	}
}

static int cpu_online(void *p)
{
	return (int)__atomic_load_n(&((struct cpu_boot *)p)->online, __ATOMIC_ACQUIRE);
}

static void clean_dcache(const void *p, size_t n)
{
	for (uintptr_t a = (uintptr_t)p & ~63ul; a < (uintptr_t)p + n; a += 64)
		__asm__ volatile("dc civac, %0" :: "r"(a) : "memory");
	dsb(ish);
}

extern char secondary_entry[];

int smp_start(int ncpus)
{
	spin_ticks = read_cntfrq() * SPIN_NS / 1000000000ULL + 1;
	/* GIC CPU interface of vCPU 0 (the secondaries do the same in secondary_main's caller) */
	int online = 1;
	for (int i = 1; i < ncpus; i++) {
		struct cpu_boot *cb = &cpu_boot[i];
		cb->exc_sp = (uint64_t)(uintptr_t)(exc_stacks[i] + EXC_STACK_SLOT);
		cb->sp = (uint64_t)(uintptr_t)(main_stacks[i] + MAIN_STACK_SLOT);
		cb->tid = (uint64_t)i;
		cb->mair = mmu_mair;
		cb->tcr = mmu_tcr;
		cb->ttbr0 = mmu_ttbr0;
		cb->sctlr = mmu_sctlr;
		cb->online = 0;
		clean_dcache(cb, sizeof(*cb));
		int64_t r = (int64_t)psci_call(PSCI_CPU_ON64, (uint64_t)i, (uint64_t)(uintptr_t)secondary_entry,
					       (uint64_t)(uintptr_t)cb);
		if (r != 0) {
			sp_printf("splash: error: PSCI CPU_ON of vCPU %d failed (%lld)\n", i, (long long)r);
			break;
		}
		/* wait (with a deadline) until it runs C code */
		uint64_t end = read_cntvct() + 10 * read_cntfrq();
		while (!cpu_online(cb) && read_cntvct() < end)
			__asm__ volatile("yield");
		if (!cpu_online(cb)) {
			sp_printf("splash: error: vCPU %d did not come up within 10 s\n", i);
			break;
		}
		online++;
	}
	nr_threads = online;
	return online;
}

/* GICv3 for SGI wake-ups, as real hardware needs it: the distributor with affinity routing
 * and group 1 on (vCPU 0), this vCPU's redistributor awake with the wake-up SGI in group 1
 * and enabled, then the CPU interface (system registers, priority mask open, group 1 on).
 * Interrupts stay masked in PSTATE: a pending SGI only ends WFI. */
#define GICD_CTLR          0x0000
#define GICD_CTLR_ARE      (1u << 4)
#define GICD_CTLR_GRP1     (1u << 1)
#define GICD_CTLR_RWP      (1u << 31)
#define GICR_STRIDE        0x20000u
#define GICR_TYPER         0x0008
#define GICR_TYPER_LAST    (1u << 4)
#define GICR_WAKER         0x0014
#define GICR_WAKER_SLEEP   (1u << 1)
#define GICR_WAKER_ASLEEP  (1u << 2)
#define GICR_SGI           0x10000u
#define GICR_IGROUPR0      0x0080
#define GICR_ISENABLER0    0x0100
#define GICR_IPRIORITYR    0x0400

static inline uint32_t mmio_r32(uint64_t a) { return *(volatile uint32_t *)(uintptr_t)a; }
static inline uint64_t mmio_r64(uint64_t a) { return *(volatile uint64_t *)(uintptr_t)a; }
static inline void mmio_w32(uint64_t a, uint32_t v) { *(volatile uint32_t *)(uintptr_t)a = v; }
static inline void mmio_w8(uint64_t a, uint8_t v) { *(volatile uint8_t *)(uintptr_t)a = v; }

/* This vCPU's redistributor frame, found by affinity (GICR_TYPER[63:32]); 0 if none. */
static uint64_t my_gicr(void)
{
	uint64_t mpidr = read_sysreg(mpidr_el1);
	uint32_t aff = (uint32_t)((mpidr & 0xFFFFFF) | (mpidr >> 32 & 0xFF) << 24);
	uint64_t f = boot.gicr_base;
	for (int i = 0; f && i < 4 * MAX_CPUS; i++, f += GICR_STRIDE) {
		uint64_t typer = mmio_r64(f + GICR_TYPER);
		if ((uint32_t)(typer >> 32) == aff)
			return f;
		if (typer & GICR_TYPER_LAST)
			break;
	}
	return 0;
}

void gic_cpu_init(void)
{
	if (boot.gicd_base && this_tid() == 0) {
		mmio_w32(boot.gicd_base + GICD_CTLR, mmio_r32(boot.gicd_base + GICD_CTLR) | GICD_CTLR_ARE);
		mmio_w32(boot.gicd_base + GICD_CTLR, mmio_r32(boot.gicd_base + GICD_CTLR) | GICD_CTLR_GRP1);
		for (int i = 0; i < 100000 && (mmio_r32(boot.gicd_base + GICD_CTLR) & GICD_CTLR_RWP); i++)
			;
	}
	uint64_t r = my_gicr();
	if (r) {
		mmio_w32(r + GICR_WAKER, mmio_r32(r + GICR_WAKER) & ~GICR_WAKER_SLEEP);
		for (int i = 0; i < 100000 && (mmio_r32(r + GICR_WAKER) & GICR_WAKER_ASLEEP); i++)
			;
		mmio_w32(r + GICR_SGI + GICR_IGROUPR0, mmio_r32(r + GICR_SGI + GICR_IGROUPR0) | 1u << SGI_WAKE);
		mmio_w8(r + GICR_SGI + GICR_IPRIORITYR + SGI_WAKE, 0x80);
		mmio_w32(r + GICR_SGI + GICR_ISENABLER0, 1u << SGI_WAKE);
	} else {
		sp_printf("splash: warning: no GIC redistributor for this vCPU (MPIDR %#llx): wake-ups rely on the defaults\n",
			  (unsigned long long)read_sysreg(mpidr_el1));
	}
	write_sysreg(S3_0_C12_C12_5, read_sysreg(S3_0_C12_C12_5) | 1);   /* ICC_SRE_EL1.SRE */
	isb();
	write_sysreg(S3_0_C4_C6_0, 0xFF);       /* ICC_PMR_EL1 */
	write_sysreg(S3_0_C12_C12_3, 0);        /* ICC_BPR1_EL1 */
	write_sysreg(S3_0_C12_C12_7, 1);        /* ICC_IGRPEN1_EL1 */
	isb();
}
