/* The few machine operations portable code needs. The monitor implements them for AArch64
 * (monitor/arch_hooks.c); host tests implement them with counters. */
#ifndef MB_ARCH_HOOKS_H
#define MB_ARCH_HOOKS_H
#include <stdint.h>
#include <stddef.h>
/* Invalidate stage-2 TLB entries for one IPA of the VM with this VMID: on every pCPU if
 * broadcast, else only on this one (the VM has never run anywhere else). */
void arch_s2_flush_ipa(uint16_t vmid, uint64_t ipa, int broadcast);
/* Invalidate every stage-1 and stage-2 TLB entry of a VMID (before the VMID is reused). */
void arch_s2_flush_vmid(uint16_t vmid, int broadcast);
/* Clean data cache lines covering [p, p+len) to the point of coherency (guests may run
 * with their MMU off, i.e. non-cacheable, and must see what the monitor wrote). */
void arch_clean_dcache(const void *p, size_t len);
/* Zero one 4 KiB page (DC ZVA on AArch64: a tenth of the instructions of a store loop). */
void arch_zero_page(void *page);
/* Make new instructions visible after the monitor wrote guest code. */
void arch_sync_icache(void);
/* The pCPU the caller runs on (0 in host tests). */
int arch_cpu_id(void);
#endif
