/* Host stand-ins for include/mirrorball/arch_hooks.h: they only count, so tests can check
 * that the portable code flushed, cleaned and synchronised when it had to. */
#ifndef MB_TEST_ARCH_STUB_H
#define MB_TEST_ARCH_STUB_H
#include <stddef.h>
#include <stdint.h>

struct arch_stub_counters {
	unsigned long s2_flushes;      /* arch_s2_flush_ipa calls */
	uint16_t last_flush_vmid;
	uint64_t last_flush_ipa;
	int last_flush_broadcast;      /* 0: the VM ran on one pCPU only */
	unsigned long vmid_flushes;    /* arch_s2_flush_vmid calls */
	unsigned long dcache_cleans;   /* arch_clean_dcache calls */
	size_t dcache_bytes;           /* sum of their lengths */
	const void *last_clean;
	unsigned long icache_syncs;    /* arch_sync_icache calls */
};

extern struct arch_stub_counters arch_stub;
void arch_stub_reset(void);

/* `bytes` of zeroed memory mapped below 2 GiB (machine addresses must fit the pmap's and the
 * stage-2 entries' address fields), at one of a few fixed hints; NULL if none is free. */
void *low_pool_map(size_t bytes);
#endif
