/* What hostile.c (with the phase files it includes) and virtio.c share: fixed-size types,
 * 32-bit MMIO, the time base, and the check counters and console output of hostile.c. */
#ifndef HOSTILE_H
#define HOSTILE_H

typedef unsigned long u64;
typedef long s64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned short u16;
typedef unsigned char u8;

#define MAX_MISMATCH_LINES 40

static inline void mmio_w32(u64 a, u32 v) { __asm__ volatile("str %w0, [%1]" :: "r"(v), "r"(a) : "memory"); }
static inline u32 mmio_r32(u64 a) { u32 v; __asm__ volatile("ldr %w0, [%1]" : "=r"(v) : "r"(a) : "memory"); return v; }

#define MRS(reg) ({ u64 _v; __asm__ volatile("mrs %0, " reg : "=r"(_v) :: "memory"); _v; })
#define MSR(reg, val) __asm__ volatile("msr " reg ", %0" :: "r"((u64)(val)) : "memory")

static inline u64 now_ticks(void) { __asm__ volatile("isb" ::: "memory"); return MRS("cntvct_el0"); }
static inline u64 tick_hz(void) { u64 f = MRS("cntfrq_el0"); return f ? f : 62500000; }

/* hostile.c: checks made, mismatches found (at most MAX_MISMATCH_LINES printed) */
extern u64 checks, mismatches;
void puts_(const char *s);
void put_hex(u64 v);
void put_dec(s64 v);

#endif
