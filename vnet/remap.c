/* Zero-copy page remapping between two VMs (Disco 4.2.6), on pmap's public API only: the
 * same steps as content-based sharing (pmap_protect, a TLB invalidation, pmap_share with
 * shared_ma == ma, which turns the sender's page into an MM_SHARED page and gives us a hold
 * on it), then pmap_map_shared_batch into the receiver and the hold dropped. See vnet.h. */
#include "vnet.h"
#include "palloc.h"
#include "mirrorball/arch_hooks.h"
#include "bits.h"

/* A hold on the shared page the sender maps copy-on-write at gpa, taken under the lock of
 * its region: a COW break or a remap of that entry changes it under the same lock before it
 * lets go of its reference, so the page cannot be freed between our look and our hold. */
static uint64_t hold_cow(struct pmap *pm, uint64_t gpa, uint64_t e)
{
	uint64_t dir = ((gpa - pm->ram_base) >> PAGE_SHIFT) / PMAP_LEAF_ENTRIES, page = 0;
	spin_lock(&pm->lock[dir]);
	if (pmap_lookup(pm, gpa) == e) {
		page = PMAP_ADDR(e);
		pmap_shared_get(page);
	}
	spin_unlock(&pm->lock[dir]);
	return page;
}

int vnet_remap_page(const struct vnet_guest *from, uint64_t sgpa, const struct vnet_guest *to, uint64_t rgpa,
		    struct pmap_batch *batch)
{
	struct pmap *pm = from->pm;
	if ((sgpa | rgpa) & (PAGE_SIZE - 1) || !pmap_covers(pm, sgpa) || !pmap_covers(to->pm, rgpa))
		return -1;
	uint64_t e = pmap_lookup(pm, sgpa), page = 0;
	if (!(e & PMAP_PRESENT))
		return -1;                      /* never touched: zeros, copying them is as cheap */
	if (e & PMAP_COW) {
		page = hold_cow(pm, sgpa, e);   /* already shared (merged, disk cache, image): map it too */
		if (!page)
			return -1;
	} else if (e & PMAP_OWNED) {
		uint64_t ma = PMAP_ADDR(e);
		if (e & PMAP_WRITE) {
			if (pmap_protect(pm, from->s2, sgpa, ma))
				return -1;
			/* no vCPU of the sender may keep writing through a stale writable translation
			 * once the receiver maps the page */
			if (from->s2)
				arch_s2_flush_ipa(from->s2->vmid, sgpa, s2_flush_broadcast(from->s2));
		}
		if (pmap_share(pm, from->s2, sgpa, ma, ma))
			return -1;              /* the sender wrote it meanwhile: it is writable again */
		page = ma;
	} else {
		return -1;
	}
	int rc = pmap_map_shared_batch(to->pm, to->s2, rgpa, page, to->pages, to->tables, batch);
	pmap_shared_put(page);                  /* the mapping holds it now (or nobody, on failure) */
	return rc == PMAP_OK ? 0 : -1;
}
