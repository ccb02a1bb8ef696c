/* Test-and-test-and-set spinlock on GCC atomics (ldaxr/stxr on AArch64, plain atomics on the
 * host). Not a ticket lock on purpose: under emulation the monitor's CPUs are host threads,
 * more of them than host cores, and a ticket lock hands the lock to the next waiter in line
 * even while the host has that thread descheduled, so every waiter behind it waits a host
 * time slice. Measured on the NUMA bench's Linux workload (numa/DESIGN-NUMA.md): 54 s of
 * ticket waits on the pmap's region locks, 92 ms at worst, for critical sections of
 * microseconds. Here whichever waiter runs takes the lock. Critical sections are short;
 * nothing relies on FIFO order. */
#ifndef MB_SPINLOCK_H
#define MB_SPINLOCK_H
#include <stdint.h>

typedef struct { uint32_t locked; } spinlock_t;
#define SPINLOCK_INIT { 0 }

static inline void cpu_relax(void)
{
#ifdef __aarch64__
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* Waiting the ARMv8 way: SEVL lets the first WFE through; LDXR arms the exclusive monitor on
 * the watched line, and WFE then sleeps until a store to that line (or any event: SEV, an
 * interrupt) wakes it. Hardware makes no accesses while it sleeps. QEMU's WFE does not sleep
 * under MTTCG, so there the loop spins; the NUMA plugin counts the accesses of a block that
 * holds a WFE as waiting, not work (numa/plugin/mbnuma.c), so each loop below keeps its WFE
 * and its loads in one block: no conditional branch between them. */

/* Returns once *p != v (relaxed: the caller's next atomic orders what follows). */
static inline void wait_while_equal32(const uint32_t *p, uint32_t v)
{
#ifdef __aarch64__
	uint32_t t;
	__asm__ volatile("sevl\n"
			 "1: wfe\n"
			 "ldxr %w0, [%1]\n"
			 "cmp %w0, %w2\n"
			 "b.eq 1b\n"
			 "clrex\n"
			 : "=&r"(t) : "r"(p), "r"(v) : "memory", "cc");
#else
	while (__atomic_load_n(p, __ATOMIC_RELAXED) == v)
		;
#endif
}

/* Returns once no bit of mask is set in *word, or *flag is no longer was. The one who
 * changes *flag sends an event (cpu_send_event): the monitor watches *word's line only. */
static inline void wait_while_bits_unless(const uint64_t *word, uint64_t mask, const int *flag, int was)
{
#ifdef __aarch64__
	uint64_t t;
	uint32_t f;
	__asm__ volatile("sevl\n"
			 "1: wfe\n"
			 "ldr %w1, [%3]\n"
			 "ldxr %0, [%2]\n"
			 "and %0, %0, %4\n"
			 "cmp %w1, %w5\n"
			 "csel %0, %0, xzr, eq\n"
			 "cbnz %0, 1b\n"
			 "clrex\n"
			 : "=&r"(t), "=&r"(f) : "r"(word), "r"(flag), "r"(mask), "r"(was) : "memory", "cc");
#else
	while ((__atomic_load_n(word, __ATOMIC_RELAXED) & mask) && __atomic_load_n(flag, __ATOMIC_RELAXED) == was)
		;
#endif
}

/* Wakes every CPU sleeping in a WFE (after a store that a wait_while_bits_unless watches). */
static inline void cpu_send_event(void)
{
#ifdef __aarch64__
	__asm__ volatile("dsb ish\n sev" ::: "memory");
#endif
}

static inline void spin_lock(spinlock_t *l)
{
	for (;;) {
		if (!__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
			return;
		wait_while_equal32(&l->locked, 1);   /* read-only while held */
	}
}

static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

/* For checks (tests: "no allocation with this lock held"), never for synchronisation. */
static inline int spin_is_locked(const spinlock_t *l)
{
	return __atomic_load_n(&l->locked, __ATOMIC_RELAXED) != 0;
}
#endif
