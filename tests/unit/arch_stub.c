/* Counting implementations of the arch hooks for host unit tests (see arch_stub.h). */
#include "arch_stub.h"
#include "mirrorball/arch_hooks.h"
#include <string.h>
#include <sys/mman.h>

struct arch_stub_counters arch_stub;

void arch_stub_reset(void)
{
	memset(&arch_stub, 0, sizeof(arch_stub));
}

void arch_s2_flush_ipa(uint16_t vmid, uint64_t ipa, int broadcast)
{
	arch_stub.s2_flushes++;
	arch_stub.last_flush_vmid = vmid;
	arch_stub.last_flush_ipa = ipa;
	arch_stub.last_flush_broadcast = broadcast;
}

int arch_cpu_id(void) { return 0; }

void arch_s2_flush_vmid(uint16_t vmid, int broadcast)
{
	(void)broadcast;
	arch_stub.vmid_flushes++;
	arch_stub.last_flush_vmid = vmid;
}

void arch_clean_dcache(const void *p, size_t len)
{
	arch_stub.dcache_cleans++;
	arch_stub.dcache_bytes += len;
	arch_stub.last_clean = p;
}

void arch_sync_icache(void)
{
	arch_stub.icache_syncs++;
}

void *low_pool_map(size_t bytes)
{
	static const uintptr_t hints[] = { 0x30000000, 0x50000000, 0x10000000, 0x68000000 };
	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		void *m = mmap((void *)hints[i], bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (m != MAP_FAILED && (uintptr_t)m == hints[i])
			return m;
		if (m != MAP_FAILED)
			munmap(m, bytes);
	}
	return NULL;
}
