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

static inline void spin_lock(spinlock_t *l)
{
	for (;;) {
		if (!__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
			return;
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))   /* read-only while held */
			cpu_relax();
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
