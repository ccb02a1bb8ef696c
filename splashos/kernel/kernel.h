/* SPLASHOS internals shared by the kernel's files (not the apps': they see splash.h). */
#ifndef SPLASHOS_KERNEL_H
#define SPLASHOS_KERNEL_H

#define MAX_CPUS        8               /* MB_GUEST_MAX_VCPUS */
#define GUARD_SIZE      4096
#define MAIN_STACK_SIZE (252 * 1024)    /* per vCPU, apps' code runs here */
#define EXC_STACK_SIZE  (12 * 1024)     /* per vCPU, for the exception report */
#define MAIN_STACK_SLOT (GUARD_SIZE + MAIN_STACK_SIZE)
#define EXC_STACK_SLOT  (GUARD_SIZE + EXC_STACK_SIZE)

#ifndef __ASSEMBLER__
#include <stdint.h>
#include <stddef.h>
#include <stdarg.h>
#include "splash.h"

/* What a secondary vCPU needs before it can run C (start.S reads it with the MMU off). */
struct cpu_boot {
	uint64_t exc_sp, sp, tid, mair, tcr, ttbr0, sctlr;
	volatile uint64_t online;
};

extern char _text[], _etext[], _erodata[], _edata[], _bss_start[], _bss_end[], _end[];
extern char main_stacks[MAX_CPUS][MAIN_STACK_SLOT];
extern char exc_stacks[MAX_CPUS][EXC_STACK_SLOT];

/* dt.c: what SPLASHOS reads from its device tree */
struct bootinfo {
	uint64_t mem_base, mem_size;
	int ncpus;
	const char *bootargs, *script;
	uint64_t initrd_start, initrd_end;
	uint64_t uart_base;
	int psci_smc;                   /* conduit: 0 hvc, 1 smc */
	uint64_t dtb, dtb_size;
	uint64_t gicd_base, gicr_base;  /* GICv3 distributor and first redistributor */
	const char *problem;            /* first thing that looked wrong, or NULL */
};
extern struct bootinfo boot;
int dt_parse(const void *dtb, struct bootinfo *bi);

/* console.c */
void console_init(uint64_t base);
void console_write(const char *s, size_t n);     /* caller holds console_lock or is alone */
void console_write_locked(const char *s, size_t n);
int console_trylock_spin(void);                  /* for the exception path */
void console_unlock(void);
void kputs(const char *s);                        /* lock + write */
void console_lock_acquire(void);
void console_lock_release(void);

/* mmu.c */
void mmu_init(uint64_t ram_base, uint64_t ram_size);
void mmu_enable(void);
extern uint64_t mmu_mair, mmu_tcr, mmu_ttbr0, mmu_sctlr;

/* smp.c */
int smp_start(int ncpus);                         /* returns the vCPUs online */
void secondary_main(uint64_t tid);
void smp_wait_all_parked(void);
uint64_t psci_call(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3);
void psci_system_off(void) __attribute__((noreturn));
extern int nr_threads;
/* Sleep until cond(arg) is true: spin a little, then WFI until another vCPU's SGI. */
void sp_wait(int (*cond)(void *), void *arg);
void sp_wake_all(void);
void sp_wake_cpu(int tid);
int sp_trylock(sp_lock_t *l);

/* malloc.c */
void heap_init(uint64_t start, uint64_t end);
void heap_reset(void);
uint64_t heap_used(void);

/* files.c */
void files_init(uint64_t start, uint64_t end);
extern int output_suppressed;

/* time */
static inline uint64_t read_cntvct(void)
{
	uint64_t v;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v) :: "memory");
	return v;
}
static inline uint64_t read_cntfrq(void)
{
	uint64_t v;
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(v));
	return v;
}
static inline int this_tid(void)
{
	uint64_t v;
	__asm__ volatile("mrs %0, tpidr_el1" : "=r"(v));
	return (int)v;
}
#define dsb(opt) __asm__ volatile("dsb " #opt ::: "memory")
#define dmb(opt) __asm__ volatile("dmb " #opt ::: "memory")
#define isb()    __asm__ volatile("isb" ::: "memory")
#define write_sysreg(r, v) __asm__ volatile("msr " #r ", %0" :: "r"((uint64_t)(v)) : "memory")
#define read_sysreg(r) ({ uint64_t __v; __asm__ volatile("mrs %0, " #r : "=r"(__v) :: "memory"); __v; })

#endif
#endif
