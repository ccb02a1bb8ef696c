/* Guest memory for device models. See guestmem.h. */
#include "guestmem.h"
#include "bits.h"

void *guestmem_ring(void *ctx, uint64_t gpa, uint64_t len, int write)
{
	const struct guest_mem *g = ctx;
	if (!len || (gpa & (PAGE_SIZE - 1)) + len > PAGE_SIZE || !pmap_covers(g->pm, gpa))
		return 0;
	uint64_t ma = pmap_gpa_to_ma(g->pm, g->s2, gpa, write, g->pages, g->tables);
	return ma ? (void *)(uintptr_t)ma : 0;
}

bool guestmem_buf_ok(void *ctx, uint64_t gpa, uint64_t len, int write)
{
	const struct guest_mem *g = ctx;
	(void)write;
	return len && gpa + len > gpa && pmap_covers(g->pm, gpa) && pmap_covers(g->pm, gpa + len - 1);
}

int guestmem_copy(const struct guest_mem *g, uint64_t gpa, void *buf, uint64_t len, int to_guest)
{
	return pmap_copy(g->pm, g->s2, gpa, buf, len, to_guest, g->pages, g->tables);
}
