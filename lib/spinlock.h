/* Ticket spinlock on GCC atomics: ldaxr/stlxr on AArch64, plain atomics on the host. */
#ifndef MB_SPINLOCK_H
#define MB_SPINLOCK_H
#include <stdint.h>

typedef struct { uint16_t next, owner; } spinlock_t;
#define SPINLOCK_INIT { 0, 0 }

static inline void cpu_relax(void)
{
#ifdef __aarch64__
	__asm__ volatile("yield" ::: "memory");
#endif
}

static inline void spin_lock(spinlock_t *l)
{
	uint16_t me = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
	while (__atomic_load_n(&l->owner, __ATOMIC_ACQUIRE) != me)
		cpu_relax();
}

static inline void spin_unlock(spinlock_t *l)
{
	__atomic_store_n(&l->owner, (uint16_t)(l->owner + 1), __ATOMIC_RELEASE);
}
#endif
