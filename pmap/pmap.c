#include "pmap.h"
#include "palloc.h"
#include "mirrorball/arch_hooks.h"
#include "bits.h"
#include "mb_string.h"

void pmap_init(struct pmap *pm, uint64_t ram_base, uint64_t ram_bytes, uint16_t vm)
{
	memset(pm, 0, sizeof(*pm));
	pm->ram_base = ram_base;
	pm->npages = ram_bytes >> PAGE_SHIFT;
	pm->vm = vm;
}

static uint64_t *slot_of(struct pmap *pm, uint64_t gpfn, const struct page_source *tables)
{
	uint64_t dir = gpfn / PMAP_LEAF_ENTRIES;
	uint64_t *leaf = pm->leaf[dir];
	if (!leaf) {
		if (!tables)
			return 0;
		uint64_t page = tables->alloc(tables->arg);
		if (!page)
			return 0;
		leaf = (uint64_t *)(uintptr_t)page;
		pm->leaf[dir] = leaf;   /* callers hold lock[dir] */
	}
	return &leaf[gpfn % PMAP_LEAF_ENTRIES];
}

static void record_owner(struct pmap *pm, uint64_t page, uint64_t gpfn)
{
	struct memmap_entry *m = memmap_of(&g_palloc, page);
	if (m) {
		m->use = MM_GUEST;
		m->vm = pm->vm;
		m->gpfn = (uint32_t)gpfn;
	}
}

/* A merged page (MM_SHARED) belongs to nobody: the last mapping to go frees it. Host image
 * pages stay for the monitor's life. */
static void add_sharer(uint64_t page, int delta)
{
	struct memmap_entry *m = memmap_of(&g_palloc, page);
	if (m && __atomic_add_fetch(&m->sharers, delta, __ATOMIC_ACQ_REL) == 0 &&
	    (m->use == MM_SHARED || m->use == MM_DCACHE)) {
		m->use = MM_FREE;
		palloc_free(&g_palloc, page, 0);
	}
}

static int help_move(struct pmap *pm, uint64_t gpfn);
static int batch_open;          /* the batch below is at its copies (events sent on opening) */

/* Takes the lock of the 2 MiB region holding gpa (which must be RAM) and returns its entry,
 * allocating the leaf; NULL if there is no memory for it. The caller unlocks *dir. A page
 * being moved (PMAP_MOVING) is waited for with the lock let go (the mover needs it to
 * finish), and moved by this CPU itself if the batch is at its copies and nobody has taken
 * the page yet: a vCPU that needs the page then waits for one copy, not for the batch's. */
static uint64_t *lock_slot(struct pmap *pm, uint64_t gpa, const struct page_source *tables, uint64_t *dir)
{
	uint64_t gpfn = (gpa - pm->ram_base) >> PAGE_SHIFT;
	*dir = gpfn / PMAP_LEAF_ENTRIES;
	for (;;) {
		spin_lock(&pm->lock[*dir]);
		uint64_t *slot = slot_of(pm, gpfn, tables);
		if (!slot || !(__atomic_load_n(slot, __ATOMIC_ACQUIRE) & PMAP_MOVING))
			return slot;
		spin_unlock(&pm->lock[*dir]);
		for (;;) {
			int open = __atomic_load_n(&batch_open, __ATOMIC_ACQUIRE);
			if (!(__atomic_load_n(slot, __ATOMIC_ACQUIRE) & PMAP_MOVING))
				break;
			if (!help_move(pm, gpfn))     /* until the page is moved or the batch opens */
				wait_while_bits_unless(slot, PMAP_MOVING, &batch_open, open);
		}
	}
}

/* Under the region's lock: the replicas of the page in *slot go (cleared in every root, the
 * translation invalidated, then freed) and the home page becomes writable again. */
static void collapse_locked(struct pmap *pm, uint64_t *slot, uint64_t gpa, const struct page_source *guest)
{
	uint64_t e = *slot, ipa = gpa & ~(PAGE_SIZE - 1), rep[S2_MAX_NODES] = { 0 };
	unsigned mask = PMAP_REPLICAS(e);
	struct stage2 *s2 = pm->repl_s2;
	for (int n = 0; n < S2_MAX_NODES; n++)
		if ((mask >> n) & 1)
			rep[n] = s2 ? s2_lookup_node(s2, n, ipa) & S2_ADDR_MASK : 0;
	if (s2) {
		s2_clear_noflush(s2, ipa);
		arch_s2_flush_ipa(s2->vmid, ipa, s2_flush_broadcast(s2));
	}
	for (int n = 0; n < S2_MAX_NODES; n++)
		if (rep[n])
			guest->free(guest->arg, rep[n]);    /* no TLB reaches it any more */
	*slot = PMAP_ADDR(e) | PMAP_PRESENT | PMAP_OWNED | PMAP_WRITE;
	__atomic_fetch_add(&pm->collapsed, 1, __ATOMIC_RELAXED);
}

/* A fresh page from guest, cleaned for a guest running with its caches off; 0 if none. */
static uint64_t clean_new_page(const struct page_source *guest)
{
	uint64_t page = guest->alloc(guest->arg);
	if (page)
		arch_clean_dcache((void *)(uintptr_t)page, PAGE_SIZE);
	return page;
}

int pmap_fault(struct pmap *pm, struct stage2 *s2, uint64_t gpa, int write,
	       const struct page_source *guest, const struct page_source *tables)
{
	if (!pmap_covers(pm, gpa))
		return PMAP_OUTSIDE;
	uint64_t dir, gpfn = (gpa - pm->ram_base) >> PAGE_SHIFT, old_shared = 0, fresh = 0;
	int rc = PMAP_OK;
	/* A first touch takes and zeroes its page before the region's lock: vCPUs the guest
	 * gives neighbouring pages fault in one region at once, and under emulation a waiter
	 * behind a holder that zeroes a page (or is descheduled by the host meanwhile) waited
	 * milliseconds (measured: numa/DESIGN-NUMA.md). Lost races give the page back. */
	if (!(pmap_lookup(pm, gpa) & PMAP_PRESENT))
		fresh = clean_new_page(guest);
	uint64_t *slot = lock_slot(pm, gpa, tables, &dir);
	if (!slot) {
		rc = PMAP_NOMEM;
		goto out;
	}
	uint64_t e = *slot;
	if (PMAP_REPLICAS(e) && !write) {
		/* an entry dropped from some root: the home page read-only where no replica is */
		if (s2 && s2_map_except(s2, gpa & ~(PAGE_SIZE - 1), PMAP_ADDR(e), 0, tables, PMAP_REPLICAS(e)))
			rc = PMAP_NOMEM;
		goto out;
	}
	if (PMAP_REPLICAS(e)) {         /* a write: one writable page again, first */
		collapse_locked(pm, slot, gpa, guest);
		e = *slot;
	}
	if (!(e & PMAP_PRESENT)) {
		uint64_t page = fresh ? fresh : clean_new_page(guest);
		fresh = 0;
		if (!page) {
			rc = PMAP_NOMEM;
			goto out;
		}
		record_owner(pm, page, gpfn);
		e = page | PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED;
		*slot = e;
		__atomic_fetch_add(&pm->touched, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&pm->owned, 1, __ATOMIC_RELAXED);
	} else if (write && (e & PMAP_COW)) {
		uint64_t page = guest->alloc(guest->arg);
		if (!page) {
			rc = PMAP_NOMEM;
			goto out;
		}
		memcpy((void *)(uintptr_t)page, (void *)(uintptr_t)PMAP_ADDR(e), PAGE_SIZE);
		arch_clean_dcache((void *)(uintptr_t)page, PAGE_SIZE);
		arch_sync_icache();     /* the copy may be code the guest runs next */
		record_owner(pm, page, gpfn);
		/* remember which image page this copy came from: copies of one origin are the
		 * candidates for merging when VMs write them identically */
		struct memmap_entry *from = memmap_of(&g_palloc, PMAP_ADDR(e)), *to = memmap_of(&g_palloc, page);
		if (to)
			to->origin = from && from->origin ? from->origin : (uint32_t)(PMAP_ADDR(e) >> PAGE_SHIFT);
		old_shared = PMAP_ADDR(e);      /* released once no TLB reaches it (below) */
		e = page | PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED;
		*slot = e;
		__atomic_fetch_add(&pm->owned, 1, __ATOMIC_RELAXED);
		__atomic_fetch_sub(&pm->cow, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&pm->cow_breaks, 1, __ATOMIC_RELAXED);
	} else if (write && !(e & PMAP_WRITE) && (e & PMAP_OWNED)) {
		e |= PMAP_WRITE;        /* protected for a merge that did not happen */
		*slot = e;
	}
	if (s2 && s2_map(s2, gpa & ~(PAGE_SIZE - 1), PMAP_ADDR(e), !!(e & PMAP_WRITE), tables))
		rc = PMAP_NOMEM;
	/* After s2_map's break-before-make: a merged page freed here could be handed out and
	 * zeroed while another vCPU of this VM still ran code from it through its TLB. */
	if (old_shared)
		add_sharer(old_shared, -1);
out:
	spin_unlock(&pm->lock[dir]);
	if (fresh)
		guest->free(guest->arg, fresh);     /* another vCPU mapped the page first */
	return rc;
}

int pmap_map_cow(struct pmap *pm, uint64_t gpa, uint64_t page, const struct page_source *tables)
{
	if (!pmap_covers(pm, gpa))
		return PMAP_OUTSIDE;
	uint64_t dir;
	int rc = PMAP_OK;
	uint64_t *slot = lock_slot(pm, gpa, tables, &dir);
	if (!slot) {
		rc = PMAP_NOMEM;
	} else if (*slot & PMAP_PRESENT) {
		rc = PMAP_OUTSIDE;      /* already mapped: the caller laid out overlapping blobs */
	} else {
		*slot = PMAP_ADDR(page) | PMAP_PRESENT | PMAP_COW;
		add_sharer(page, 1);
		__atomic_fetch_add(&pm->touched, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&pm->cow, 1, __ATOMIC_RELAXED);
	}
	spin_unlock(&pm->lock[dir]);
	return rc;
}

uint64_t pmap_lookup(const struct pmap *pm, uint64_t gpa)
{
	if (!pmap_covers(pm, gpa))
		return 0;
	uint64_t gpfn = (gpa - pm->ram_base) >> PAGE_SHIFT;
	const uint64_t *leaf = pm->leaf[gpfn / PMAP_LEAF_ENTRIES];
	return leaf ? __atomic_load_n(&leaf[gpfn % PMAP_LEAF_ENTRIES], __ATOMIC_ACQUIRE) : 0;
}

uint64_t pmap_gpa_to_ma(struct pmap *pm, struct stage2 *s2, uint64_t gpa, int write,
			const struct page_source *guest, const struct page_source *tables)
{
	uint64_t e = pmap_lookup(pm, gpa);
	if (!(e & PMAP_PRESENT) || (write && !(e & PMAP_WRITE))) {
		if (pmap_fault(pm, s2, gpa, write, guest, tables))
			return 0;
		e = pmap_lookup(pm, gpa);
	}
	return PMAP_ADDR(e) | (gpa & (PAGE_SIZE - 1));
}

int pmap_copy(struct pmap *pm, struct stage2 *s2, uint64_t gpa, void *buf, uint64_t len, int to_guest,
	      const struct page_source *guest, const struct page_source *tables)
{
	uint8_t *p = buf;
	while (len) {
		uint64_t n = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
		if (n > len)
			n = len;
		if (!pmap_covers(pm, gpa))
			return -1;
		/* Fault the page in (private, for a write), then copy under the lock of its region:
		 * whatever replaces or frees the page (a COW break, a merge, a zero-copy read of
		 * another device) changes the entry under that lock first, so the page we copy to or
		 * from is the VM's for the whole copy. A racing change just sends us round again. */
		for (int tries = 0;; tries++) {
			uint64_t e = pmap_lookup(pm, gpa);
			if (!(e & PMAP_PRESENT) || (to_guest && !(e & PMAP_WRITE))) {
				if (tries > 8 || pmap_fault(pm, s2, gpa, to_guest, guest, tables))
					return -1;
				continue;
			}
			uint64_t dir;
			uint64_t *slot = lock_slot(pm, gpa, 0, &dir);
			int ok = slot && *slot == e;
			if (ok) {
				void *ma = (void *)(uintptr_t)(PMAP_ADDR(e) | (gpa & (PAGE_SIZE - 1)));
				if (to_guest) {
					memcpy(ma, p, n);
					arch_clean_dcache(ma, n);
				} else {
					memcpy(p, ma, n);
				}
			}
			spin_unlock(&pm->lock[dir]);
			if (ok)
				break;
			if (tries > 8)
				return -1;
		}
		gpa += n;
		p += n;
		len -= n;
	}
	return 0;
}

int pmap_protect(struct pmap *pm, struct stage2 *s2, uint64_t gpa, uint64_t ma)
{
	if (!pmap_covers(pm, gpa))
		return -1;
	uint64_t dir, *slot = lock_slot(pm, gpa, 0, &dir);
	int rc = -1;
	if (slot && *slot == (ma | PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED)) {
		*slot = ma | PMAP_PRESENT | PMAP_OWNED;
		s2_protect_noflush(s2, gpa & ~(PAGE_SIZE - 1));
		rc = 0;
	}
	spin_unlock(&pm->lock[dir]);
	return rc;
}

int pmap_share(struct pmap *pm, struct stage2 *s2, uint64_t gpa, uint64_t ma, uint64_t shared_ma)
{
	if (!pmap_covers(pm, gpa))
		return -1;
	uint64_t dir, *slot = lock_slot(pm, gpa, 0, &dir);
	int rc = -1;
	if (slot && *slot == (ma | PMAP_PRESENT | PMAP_OWNED) &&
	    (ma == shared_ma || !memcmp((void *)(uintptr_t)ma, (void *)(uintptr_t)shared_ma, PAGE_SIZE))) {
		struct memmap_entry *m = memmap_of(&g_palloc, ma);
		if (ma == shared_ma && m) {
			m->use = MM_SHARED;     /* nobody's now: the last mapping frees it */
			m->vm = 0;
			add_sharer(shared_ma, 1);       /* the caller's hold, see pmap_shared_put */
		}
		*slot = shared_ma | PMAP_PRESENT | PMAP_COW;
		if (ma != shared_ma)
			s2_clear_noflush(s2, gpa & ~(PAGE_SIZE - 1));   /* refilled from the pmap on the next touch */
		add_sharer(shared_ma, 1);
		__atomic_fetch_sub(&pm->owned, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&pm->cow, 1, __ATOMIC_RELAXED);
		if (ma != shared_ma)
			__atomic_fetch_add(&pm->merged, 1, __ATOMIC_RELAXED);
		rc = 0;
	}
	spin_unlock(&pm->lock[dir]);
	return rc;
}

void pmap_shared_put(uint64_t shared_ma)
{
	add_sharer(shared_ma, -1);
}

void pmap_shared_get(uint64_t shared_ma)
{
	add_sharer(shared_ma, 1);
}

void pmap_batch_finish(struct pmap_batch *b, struct stage2 *s2, const struct page_source *guest)
{
	if (b->flush && s2)
		arch_s2_flush_vmid(s2->vmid, s2_flush_broadcast(s2));   /* one invalidation for the lot */
	for (unsigned i = 0; i < b->n; i++) {
		if (b->owned[i])
			guest->free(guest->arg, b->page[i]);
		else
			add_sharer(b->page[i], -1);
	}
	b->n = 0;
	b->flush = 0;
}

int pmap_map_shared(struct pmap *pm, struct stage2 *s2, uint64_t gpa, uint64_t page,
		    const struct page_source *guest, const struct page_source *tables)
{
	return pmap_map_shared_batch(pm, s2, gpa, page, guest, tables, 0);
}

int pmap_map_shared_batch(struct pmap *pm, struct stage2 *s2, uint64_t gpa, uint64_t page,
			  const struct page_source *guest, const struct page_source *tables,
			  struct pmap_batch *batch)
{
	if (batch && batch->n == PMAP_BATCH)
		pmap_batch_finish(batch, s2, guest);
	if (!pmap_covers(pm, gpa))
		return PMAP_OUTSIDE;
	uint64_t dir;
	int rc = PMAP_OK;
	uint64_t *slot = lock_slot(pm, gpa, tables, &dir);
	if (!slot) {
		rc = PMAP_NOMEM;
		goto out;
	}
	if (PMAP_REPLICAS(*slot))
		collapse_locked(pm, slot, gpa, guest);
	uint64_t old = *slot;
	if ((old & PMAP_PRESENT) && PMAP_ADDR(old) == page)
		goto out;
	add_sharer(page, 1);
	*slot = PMAP_ADDR(page) | PMAP_PRESENT | PMAP_COW;
	if (s2 && batch) {
		/* cleared now, invalidated once for the batch; the old page waits for that */
		if (s2_lookup(s2, gpa & ~(PAGE_SIZE - 1)) & 1) {
			s2_clear_noflush(s2, gpa & ~(PAGE_SIZE - 1));
			batch->flush = 1;
		}
	} else if (s2) {
		s2_unmap(s2, gpa & ~(PAGE_SIZE - 1));   /* break-before-make; refilled on next touch */
	}
	if (!(old & PMAP_PRESENT)) {
		__atomic_fetch_add(&pm->touched, 1, __ATOMIC_RELAXED);
	} else if (old & (PMAP_OWNED | PMAP_COW)) {
		int owned = !!(old & PMAP_OWNED);
		if (batch) {
			batch->page[batch->n] = PMAP_ADDR(old);
			batch->owned[batch->n++] = (uint8_t)owned;
		} else if (owned) {
			guest->free(guest->arg, PMAP_ADDR(old));   /* no TLB reaches it any more */
		} else {
			add_sharer(PMAP_ADDR(old), -1);
		}
		if (owned)
			__atomic_fetch_sub(&pm->owned, 1, __ATOMIC_RELAXED);
		else
			__atomic_fetch_sub(&pm->cow, 1, __ATOMIC_RELAXED);
	}
	__atomic_fetch_add(&pm->cow, 1, __ATOMIC_RELAXED);
out:
	spin_unlock(&pm->lock[dir]);
	return rc;
}

uint64_t pmap_count_shared(const struct pmap *pm)
{
	uint64_t n = 0;
	struct palloc_range *near = 0;
	for (uint64_t d = 0; d < PMAP_DIR_MAX; d++) {
		const uint64_t *leaf = pm->leaf[d];
		for (int i = 0; leaf && i < PMAP_LEAF_ENTRIES; i++) {
			uint64_t e = __atomic_load_n(&leaf[i], __ATOMIC_RELAXED);
			if ((e & (PMAP_PRESENT | PMAP_COW)) != (PMAP_PRESENT | PMAP_COW))
				continue;
			const struct memmap_entry *m = memmap_of_near(&g_palloc, PMAP_ADDR(e), &near);
			uint32_t others = m ? __atomic_load_n(&m->sharers, __ATOMIC_RELAXED) : 0;
			if (m && m->use == MM_DCACHE && others)
				others--;               /* the disk cache's own reference */
			if (others > 1)
				n++;
		}
	}
	return n;
}

void pmap_destroy(struct pmap *pm, const struct page_source *guest, const struct page_source *tables)
{
	for (uint64_t d = 0; d < PMAP_DIR_MAX; d++) {
		uint64_t *leaf = pm->leaf[d];
		if (!leaf)
			continue;
		for (int i = 0; i < PMAP_LEAF_ENTRIES; i++) {
			uint64_t e = leaf[i];
			if (!(e & PMAP_PRESENT))
				continue;
			if (PMAP_REPLICAS(e) && pm->repl_s2) {
				uint64_t gpa = pm->ram_base + ((d * PMAP_LEAF_ENTRIES + i) << PAGE_SHIFT);
				for (int n = 0; n < S2_MAX_NODES; n++) {
					uint64_t r = (PMAP_REPLICAS(e) >> n) & 1 ? s2_lookup_node(pm->repl_s2, n, gpa) & S2_ADDR_MASK : 0;
					if (r)
						guest->free(guest->arg, r);
				}
			}
			if (e & PMAP_OWNED)
				guest->free(guest->arg, PMAP_ADDR(e));
			else if (e & PMAP_COW)
				add_sharer(PMAP_ADDR(e), -1);
		}
		tables->free(tables->arg, (uint64_t)(uintptr_t)leaf);
		pm->leaf[d] = 0;
	}
	pm->touched = pm->owned = pm->cow = 0;
}

int pmap_prefault(struct pmap *pm, struct stage2 *s2, uint64_t gpa, unsigned pages,
		  const struct page_source *guest, const struct page_source *tables)
{
	uint64_t span = (uint64_t)pages << PAGE_SHIFT;
	uint64_t start = gpa & ~(span - 1);
	for (uint64_t a = start; a < start + span; a += PAGE_SIZE) {
		if (a == (gpa & ~(PAGE_SIZE - 1)) || !pmap_covers(pm, a))
			continue;
		if (pmap_lookup(pm, a) & PMAP_PRESENT)
			continue;
		if (pmap_fault(pm, s2, a, 0, guest, tables))
			return PMAP_NOMEM;
	}
	return PMAP_OK;
}

/* ---- NUMA page movement (see pmap.h) ---- */

static void copy_page(uint64_t to, uint64_t from)
{
	memcpy((void *)(uintptr_t)to, (void *)(uintptr_t)from, PAGE_SIZE);
	arch_clean_dcache((void *)(uintptr_t)to, PAGE_SIZE);
}

/* A page from src on node, or 0 (a page from elsewhere is given back: moving it would not
 * help); like 'like' (its cache colour) where the source can. */
static uint64_t alloc_on(const struct page_source *src, int node, uint64_t like)
{
	uint64_t page = !src ? 0 : src->alloc_like ? src->alloc_like(src->arg, like) : src->alloc(src->arg);
	int got = page ? palloc_node_of(&g_palloc, page) : -1;
	if (page && got >= 0 && got != node) {
		src->free(src->arg, page);
		page = 0;
	}
	return page;
}

/* Under the region's lock, before the invalidation: m's page checked, its target pages
 * taken and its entries broken (migration: cleared in every root) or downgraded (replication:
 * read-only in the pmap and every root). m->rc says whether there is more to do. */
static void move_break(struct pmap *pm, struct stage2 *s2, uint64_t *slot, struct pmap_move *m,
		       const struct page_source *const *node_src)
{
	uint64_t ipa = m->gpa & ~(PAGE_SIZE - 1), e = *slot, home = PMAP_ADDR(e);
	int at = palloc_node_of(&g_palloc, home);
	m->rc = PMAP_SKIP;
	m->old = home;
	if ((e & (PMAP_PRESENT | PMAP_OWNED | PMAP_COW)) != (PMAP_PRESENT | PMAP_OWNED) || at < 0)
		return;
	if (m->kind == PMAP_MOVE_MIGRATE) {
		if (PMAP_REPLICAS(e) || at == m->node || m->node < 0 || m->node >= S2_MAX_NODES)
			return;
		m->rc = PMAP_NOMEM;
		if (!(m->page = alloc_on(node_src[m->node], m->node, home)))
			return;
		m->mapped = 0;
		if (s2) {
			for (int n = 0; n < (s2->nroots ? s2->nroots : 1); n++)
				m->mapped |= (int)(s2_lookup_node(s2, n, ipa) & 1);
			s2_clear_noflush(s2, ipa);
		}
	} else {
		if (!s2 || s2->nroots < 2 || (pm->repl_s2 && pm->repl_s2 != s2))
			return;
		unsigned want = m->nodes & ((1u << s2->nroots) - 1) & ~PMAP_REPLICAS(e) & ~(1u << at);
		if (!want)
			return;
		m->rc = PMAP_NOMEM;
		for (int n = 0; n < s2->nroots; n++)
			if ((want >> n) & 1 && !(m->rep[n] = alloc_on(node_src ? node_src[n] : 0, n, home)))
				want &= ~(1u << n);
		if (!want)
			return;
		pm->repl_s2 = s2;
		__atomic_store_n(slot, e & ~PMAP_WRITE, __ATOMIC_RELEASE);
		/* read-only everywhere, the replicas' nodes included: their vCPUs go on reading the
		 * home page while the copies are made, and their entries are broken only after
		 * (repoint_replicas). Broken here, every read there faulted and the reader copied
		 * the page to every node itself, charged (measured: 1,055 pages a Linux run, 111
		 * remote misses each). */
		s2_protect_noflush(s2, ipa);
	}
	m->rc = PMAP_OK;
}

/* After the invalidation, no lock held: copy (no vCPU can write the page now, and every
 * path that could change its entry waits for PMAP_MOVING to clear). */
static void move_copy(const struct pmap_move *m)
{
	if (m->rc != PMAP_OK)
		return;
	if (m->kind == PMAP_MOVE_MIGRATE)
		copy_page(m->page, m->old);
	else
		for (int n = 0; n < S2_MAX_NODES; n++)
			if (m->rep[n])
				copy_page(m->rep[n], m->old);
}

/* Under the region's lock, after the copies and the I-cache invalidation: make. */
static void move_make(struct pmap *pm, struct stage2 *s2, uint64_t *slot, struct pmap_move *m,
		      const struct page_source *const *node_src, const struct page_source *guest,
		      const struct page_source *tables)
{
	if (m->rc != PMAP_OK)
		return;
	uint64_t ipa = m->gpa & ~(PAGE_SIZE - 1), gpfn = (m->gpa - pm->ram_base) >> PAGE_SHIFT;
	uint64_t e = *slot & ~PMAP_MOVING;      /* stored below: the page is there for all */
	if (m->kind == PMAP_MOVE_MIGRATE) {
		struct memmap_entry *from = memmap_of(&g_palloc, m->old);
		uint32_t origin = from ? from->origin : 0;
		record_owner(pm, m->page, gpfn);
		struct memmap_entry *to = memmap_of(&g_palloc, m->page);
		if (to)
			to->origin = origin;    /* still a candidate for merging with its twins */
		e = m->page | (e & ~PMAP_ADDR(~0ULL));
		__atomic_store_n(slot, e, __ATOMIC_RELEASE);
		/* refilled where it was mapped (a failure here only costs a fault later) */
		if (s2 && m->mapped)
			s2_map(s2, ipa, m->page, !!(e & PMAP_WRITE), tables);
		guest->free(guest->arg, m->old);
		__atomic_fetch_add(&pm->migrated, 1, __ATOMIC_RELAXED);
		return;
	}
	int made = 0;
	for (int n = 0; n < s2->nroots; n++) {
		if (!m->rep[n])
			continue;
		record_owner(pm, m->rep[n], gpfn);
		if (s2_map_node(s2, n, ipa, m->rep[n], 0, tables)) {
			node_src[n]->free(node_src[n]->arg, m->rep[n]);    /* never mapped */
			m->rep[n] = 0;
			continue;
		}
		e |= (uint64_t)1 << (PMAP_REPL_SHIFT + n);
		made++;
	}
	__atomic_store_n(slot, e, __ATOMIC_RELEASE);
	__atomic_fetch_add(&pm->replicated, made, __ATOMIC_RELAXED);
	m->rc = made ? made : PMAP_NOMEM;
}

/* The batch being moved (one at a time: move_lock), shared with the CPUs that fault on its
 * pages. claim[i]: IDLE until the invalidation is done, then OPEN; whoever turns it TAKEN
 * (the mover, or a faulting CPU in help_move) copies and makes page i and turns it DONE;
 * the mover returns only when every page it opened is DONE. Before the invalidation nobody
 * may copy (a vCPU could still write the old page through a stale translation). */
enum { MOVE_IDLE, MOVE_OPEN, MOVE_TAKEN, MOVE_DONE };
static spinlock_t move_lock;
static struct {
	struct pmap *pm;
	struct stage2 *s2;
	const struct page_source *const *node_src;
	const struct page_source *guest, *tables;
	struct pmap_move *mv;
	int n;
	uint64_t *slot[PMAP_MOVE_BATCH];
	uint64_t gpfn[PMAP_MOVE_BATCH];
	int claim[PMAP_MOVE_BATCH];
} batch;

/* Page i of the batch, taken and copied: make it under its region's lock, then DONE. */
static void make_taken(int i)
{
	struct pmap *pm = batch.pm;
	uint64_t dir = batch.gpfn[i] / PMAP_LEAF_ENTRIES;
	spin_lock(&pm->lock[dir]);
	move_make(pm, batch.s2, batch.slot[i], &batch.mv[i], batch.node_src, batch.guest, batch.tables);
	spin_unlock(&pm->lock[dir]);
	__atomic_store_n(&batch.claim[i], MOVE_DONE, __ATOMIC_RELEASE);
}

/* Replications of the batch, copied: their replicas' nodes still map the home page
 * read-only. Break those entries, all of them, then one invalidation, then make each (it
 * maps the local replica where the entry is now empty, with no break of its own). */
static void repoint_replicas(const int *idx, int k)
{
	struct pmap *pm = batch.pm;
	int broke = 0;
	for (int j = 0; j < k; j++) {
		const struct pmap_move *m = &batch.mv[idx[j]];
		unsigned nodes = 0;
		for (int n = 0; n < S2_MAX_NODES; n++)
			if (m->rep[n])
				nodes |= 1u << n;
		uint64_t dir = batch.gpfn[idx[j]] / PMAP_LEAF_ENTRIES;
		spin_lock(&pm->lock[dir]);
		broke |= s2_clear_nodes_noflush(batch.s2, m->gpa & ~(PAGE_SIZE - 1), nodes);
		spin_unlock(&pm->lock[dir]);
	}
	if (broke)
		arch_s2_flush_vmid(batch.s2->vmid, s2_flush_broadcast(batch.s2));
	for (int j = 0; j < k; j++)
		make_taken(idx[j]);
}

static int take(int i)
{
	int open = MOVE_OPEN;
	return __atomic_compare_exchange_n(&batch.claim[i], &open, MOVE_TAKEN, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/* From lock_slot, no lock held: if guest page gpfn of pm is an open page of the batch, move
 * it here and return 1. Whatever entry the claim wins is moved correctly, even if the batch
 * changed since the look (every OPEN entry is an invalidated page of the current batch). */
static int help_move(struct pmap *pm, uint64_t gpfn)
{
	if (!__atomic_load_n(&batch_open, __ATOMIC_ACQUIRE))
		return 0;
	int n = __atomic_load_n(&batch.n, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n && i < PMAP_MOVE_BATCH; i++) {
		if (__atomic_load_n(&batch.gpfn[i], __ATOMIC_RELAXED) != gpfn ||
		    __atomic_load_n(&batch.pm, __ATOMIC_RELAXED) != pm ||
		    __atomic_load_n(&batch.claim[i], __ATOMIC_RELAXED) != MOVE_OPEN)
			continue;
		if (!take(i))
			return 0;
		move_copy(&batch.mv[i]);
		arch_sync_icache();
		__atomic_fetch_add(&batch.pm->moves_helped, 1, __ATOMIC_RELAXED);
		make_taken(i);
		return 1;
	}
	return 0;
}

int pmap_move_batch(struct pmap *pm, struct stage2 *s2, struct pmap_move *mv, int n,
		    const struct page_source *const *node_src, const struct page_source *guest,
		    const struct page_source *tables)
{
	if (n <= 0)
		return 0;
	uint64_t last_gpfn = 0;
	int seen = 0, todo = 0;
	for (int i = 0; i < n; i++) {           /* entries past PMAP_MOVE_BATCH stay so */
		mv[i].rc = PMAP_OUTSIDE;
		mv[i].page = mv[i].old = 0;
		memset(mv[i].rep, 0, sizeof(mv[i].rep));
	}
	if (n > PMAP_MOVE_BATCH)
		n = PMAP_MOVE_BATCH;
	spin_lock(&move_lock);
	for (int i = 0; i < n; i++)
		__atomic_store_n(&batch.claim[i], MOVE_IDLE, __ATOMIC_RELAXED);
	__atomic_store_n(&batch.pm, pm, __ATOMIC_RELAXED);
	batch.s2 = s2;
	batch.node_src = node_src;
	batch.guest = guest;
	batch.tables = tables;
	batch.mv = mv;
	__atomic_store_n(&batch.n, n, __ATOMIC_RELEASE);
	for (int i = 0; i < n; i++) {          /* break, one page at a time under its lock */
		struct pmap_move *m = &mv[i];
		__atomic_store_n(&batch.gpfn[i], ~0ULL, __ATOMIC_RELAXED);
		batch.slot[i] = 0;
		if (!pmap_covers(pm, m->gpa))
			continue;
		m->rc = PMAP_SKIP;
		uint64_t gpfn = (m->gpa - pm->ram_base) >> PAGE_SHIFT, dir;
		if (seen && gpfn <= last_gpfn)          /* out of order, or a page twice */
			continue;
		seen = 1;
		last_gpfn = gpfn;
		uint64_t *slot = lock_slot(pm, m->gpa, 0, &dir);
		if (slot) {
			move_break(pm, s2, slot, m, node_src);
			if (m->rc == PMAP_OK) {
				batch.slot[i] = slot;
				__atomic_store_n(&batch.gpfn[i], gpfn, __ATOMIC_RELAXED);
				__atomic_store_n(slot, *slot | PMAP_MOVING, __ATOMIC_RELEASE);
			}
		}
		spin_unlock(&pm->lock[dir]);
		todo += m->rc == PMAP_OK;
	}
	if (!todo) {
		spin_unlock(&move_lock);
		return 0;
	}
	/* from here on no vCPU reaches a moving page through a stale translation: one that
	 * faults on it waits in lock_slot, or moves it itself once the page is open */
	if (s2)
		arch_s2_flush_vmid(s2->vmid, s2_flush_broadcast(s2));
	for (int i = 0; i < n; i++)
		if (mv[i].rc == PMAP_OK)
			__atomic_store_n(&batch.claim[i], MOVE_OPEN, __ATOMIC_RELEASE);
	__atomic_store_n(&batch_open, 1, __ATOMIC_RELEASE);
	cpu_send_event();       /* vCPUs waiting for a page of it (lock_slot) may help */
	int later[PMAP_MOVE_BATCH], nlater = 0;
	for (int c = 0; c < n; c += PMAP_MOVE_CHUNK) {
		int end = c + PMAP_MOVE_CHUNK < n ? c + PMAP_MOVE_CHUNK : n, took[PMAP_MOVE_CHUNK], k = 0;
		for (int i = c; i < end; i++)
			if (take(i)) {
				move_copy(&mv[i]);
				took[k++] = i;
			}
		if (!k)
			continue;
		arch_sync_icache();     /* the pages may be code (kernel text is the prime candidate) */
		for (int j = 0; j < k; j++) {
			if (s2 && mv[took[j]].kind == PMAP_MOVE_REPLICATE)
				later[nlater++] = took[j];      /* still read where they are */
			else
				make_taken(took[j]);
		}
	}
	if (nlater)
		repoint_replicas(later, nlater);
	__atomic_store_n(&batch_open, 0, __ATOMIC_RELAXED);
	int done = 0;
	for (int i = 0; i < n; i++) {
		int st;
		while ((st = __atomic_load_n(&batch.claim[i], __ATOMIC_ACQUIRE)) == MOVE_TAKEN)
			wait_while_equal32((const uint32_t *)&batch.claim[i], MOVE_TAKEN);   /* a faulting CPU moves it */
		done += st == MOVE_DONE && mv[i].rc >= 0;
	}
	spin_unlock(&move_lock);
	return done;
}

int pmap_migrate(struct pmap *pm, struct stage2 *s2, uint64_t gpa, int node,
		 const struct page_source *target, const struct page_source *guest,
		 const struct page_source *tables)
{
	const struct page_source *src[S2_MAX_NODES] = { 0 };
	if (node >= 0 && node < S2_MAX_NODES)
		src[node] = target;
	struct pmap_move m = { .gpa = gpa, .kind = PMAP_MOVE_MIGRATE, .node = node };
	pmap_move_batch(pm, s2, &m, 1, src, guest, tables);
	return m.rc;
}

int pmap_replicate(struct pmap *pm, struct stage2 *s2, uint64_t gpa, unsigned node_mask,
		   const struct page_source *const *node_src, const struct page_source *tables)
{
	struct pmap_move m = { .gpa = gpa, .kind = PMAP_MOVE_REPLICATE, .nodes = node_mask };
	pmap_move_batch(pm, s2, &m, 1, node_src, 0, tables);
	return m.rc;
}

int pmap_revoke(struct pmap *pm, struct stage2 *s2, uint64_t gpa)
{
	if (!pmap_covers(pm, gpa))
		return PMAP_OUTSIDE;
	uint64_t dir, *slot = lock_slot(pm, gpa, 0, &dir);
	int rc = PMAP_SKIP;
	uint64_t e = slot ? *slot : 0;
	if ((e & (PMAP_PRESENT | PMAP_OWNED | PMAP_COW)) == (PMAP_PRESENT | PMAP_OWNED) && !PMAP_REPLICAS(e)) {
		s2_clear_noflush(s2, gpa & ~(PAGE_SIZE - 1));
		rc = PMAP_OK;
	}
	spin_unlock(&pm->lock[dir]);
	return rc;
}

int pmap_collapse(struct pmap *pm, uint64_t gpa, const struct page_source *guest)
{
	if (!pmap_covers(pm, gpa))
		return PMAP_OUTSIDE;
	uint64_t dir, *slot = lock_slot(pm, gpa, 0, &dir);
	int rc = PMAP_SKIP;
	if (slot && PMAP_REPLICAS(*slot)) {
		collapse_locked(pm, slot, gpa, guest);
		rc = PMAP_OK;
	}
	spin_unlock(&pm->lock[dir]);
	return rc;
}
