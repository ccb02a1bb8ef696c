/* The physical-to-machine map: per VM, authoritative, guest page -> machine page + flags.
 * Stage-2 tables are only a cache of it: any stage-2 entry may be dropped and refilled
 * from here on the next fault (what later migration, replication and reclaim rely on).
 * Locking: one lock per 2 MiB of guest RAM; the fault path takes no VM-wide lock. */
#ifndef MB_PMAP_H
#define MB_PMAP_H
#include <stdint.h>
#include "spinlock.h"
#include "stage2.h"
#include "pagesrc.h"
#include "mirrorball/layout.h"

#define PMAP_PRESENT  (1ULL << 0)
#define PMAP_WRITE    (1ULL << 1)   /* the guest may write it (stage-2 read-write) */
#define PMAP_COW      (1ULL << 2)   /* shared read-only; the first write copies it */
#define PMAP_OWNED    (1ULL << 3)   /* the machine page is this VM's alone */
#define PMAP_ADDR(e)  ((e) & 0x000000FFFFFFF000ULL)
/* Bits [11:4]: nodes whose stage-2 root maps a read-only replica of this (PMAP_OWNED, read-only)
 * page instead of the page itself; the replica's address lives only in that node's root
 * entry, which nothing but the pmap changes while the bit is set. 0 = not replicated. */
#define PMAP_REPL_SHIFT 4
#define PMAP_REPL_MASK  (0xFFULL << PMAP_REPL_SHIFT)
#define PMAP_REPLICAS(e) ((unsigned)(((e) & PMAP_REPL_MASK) >> PMAP_REPL_SHIFT))
/* Set by pmap_move_batch from the break of a page to its make: the page is being copied.
 * Every path that takes the entry under its region's lock waits for the bit to clear first
 * (without the lock), so a move holds no lock while it copies. */
#define PMAP_MOVING     (1ULL << 62)

#define PMAP_LEAF_ENTRIES 512                       /* one leaf page covers 2 MiB */
#define PMAP_DIR_MAX (MB_GUEST_RAM_MAX >> 21)

struct pmap {
	uint64_t ram_base;          /* guest-physical base of RAM */
	uint64_t npages;            /* guest RAM pages */
	uint16_t vm;                /* VM index, recorded in the memmap */
	uint64_t touched;           /* present entries */
	uint64_t owned;             /* machine pages owned */
	uint64_t cow;               /* present entries still shared copy-on-write */
	uint64_t cow_breaks;        /* copies made on write */
	uint64_t merged;            /* private pages given up for an identical shared one */
	uint64_t migrated;          /* pages moved to another node (pmap_migrate) */
	uint64_t replicated;        /* replicas made (pmap_replicate) */
	uint64_t collapsed;         /* replicated pages collapsed back to one (writes, explicit) */
	uint64_t moves_helped;      /* pages of a move batch copied by a CPU that faulted on them */
	struct stage2 *repl_s2;     /* the per-node roots holding this VM's replicas, if any */
	uint64_t *leaf[PMAP_DIR_MAX];
	spinlock_t lock[PMAP_DIR_MAX];
};

enum pmap_result { PMAP_OK = 0, PMAP_NOMEM = -1, PMAP_OUTSIDE = -2, PMAP_SKIP = -3 };

void pmap_init(struct pmap *pm, uint64_t ram_base, uint64_t ram_bytes, uint16_t vm);
/* Is gpa guest RAM? */
static inline int pmap_covers(const struct pmap *pm, uint64_t gpa)
{
	return gpa >= pm->ram_base && gpa - pm->ram_base < pm->npages * 4096;
}
/* Resolve a stage-2 fault at gpa: allocate on first touch, copy on a write to a COW page,
 * then install the translation. guest: pages for the guest (zeroed); tables: for pmap leaves
 * and stage-2 tables. */
int pmap_fault(struct pmap *pm, struct stage2 *s2, uint64_t gpa, int write,
	       const struct page_source *guest, const struct page_source *tables);
/* After a first-touch fault at gpa: also fill the not-yet-present pages of the aligned
 * 'pages'-page block around it, saving the guest the exits it would take one by one. */
int pmap_prefault(struct pmap *pm, struct stage2 *s2, uint64_t gpa, unsigned pages,
		  const struct page_source *guest, const struct page_source *tables);
/* Map machine page 'page' read-only copy-on-write at gpa (e.g. a page of the host image). */
int pmap_map_cow(struct pmap *pm, uint64_t gpa, uint64_t page, const struct page_source *tables);
/* Entry for gpa, 0 if none. */
uint64_t pmap_lookup(const struct pmap *pm, uint64_t gpa);
/* Machine address the monitor can use to access guest bytes at gpa (for device emulation),
 * faulting the page in (for write: making it private) first. 0 outside RAM or no memory. */
uint64_t pmap_gpa_to_ma(struct pmap *pm, struct stage2 *s2, uint64_t gpa, int write,
			const struct page_source *guest, const struct page_source *tables);
/* Copies len bytes between buf and guest memory at gpa (to_guest: into the guest, making
 * its pages private first), page by page under the pmap's locks, so no page can be freed or
 * replaced under the copy (devices use this, never a bare machine address). 0, or -1
 * outside RAM / out of memory. */
int pmap_copy(struct pmap *pm, struct stage2 *s2, uint64_t gpa, void *buf, uint64_t len, int to_guest,
	      const struct page_source *guest, const struct page_source *tables);
/* Present copy-on-write pages that at least one other VM maps too (memmap sharers > 1). */
uint64_t pmap_count_shared(const struct pmap *pm);
/* Content-based sharing, in two steps around one TLB invalidation of the whole VM:
 * pmap_protect makes the private page at gpa (expected at machine page ma) read-only, so its
 * contents cannot change; pmap_share then maps gpa copy-on-write to shared_ma if the page
 * still is ma and holds the same bytes (shared_ma == ma turns the VM's own page into the
 * shared one, and gives the caller a hold on it: without it, the VM's next write would
 * copy the page and free it before its twins map it; pmap_shared_put drops the hold, freeing
 * the page if no VM maps it). Both return 0 on success, -1 if the page changed meanwhile. After
 * pmap_share(ma != shared_ma) the caller frees ma once no TLB can still reach it. A write to
 * a protected page that was not shared just makes it writable again. */
int pmap_protect(struct pmap *pm, struct stage2 *s2, uint64_t gpa, uint64_t ma);
int pmap_share(struct pmap *pm, struct stage2 *s2, uint64_t gpa, uint64_t ma, uint64_t shared_ma);
void pmap_shared_put(uint64_t shared_ma);
void pmap_shared_get(uint64_t shared_ma);
/* Maps gpa copy-on-write to 'page' (MM_SHARED or MM_DCACHE, a reference taken for the
 * mapping) in place of whatever the guest had there: zero-copy disk reads. The old page is
 * released after the stage-2 break-before-make (freed if the VM owned it). */
int pmap_map_shared(struct pmap *pm, struct stage2 *s2, uint64_t gpa, uint64_t page,
		    const struct page_source *guest, const struct page_source *tables);
/* The same for many pages (one disk request): stage-2 entries are cleared without
 * invalidation and the old pages kept in the batch; pmap_batch_finish invalidates the VM's
 * translations once, then releases them (also done when the batch is full). A re-read into
 * pages the guest already maps then costs one TLB invalidation, not one per page. */
#define PMAP_BATCH 64
struct pmap_batch { unsigned n; int flush; uint64_t page[PMAP_BATCH]; uint8_t owned[PMAP_BATCH]; };
int pmap_map_shared_batch(struct pmap *pm, struct stage2 *s2, uint64_t gpa, uint64_t page,
			  const struct page_source *guest, const struct page_source *tables,
			  struct pmap_batch *batch);
void pmap_batch_finish(struct pmap_batch *b, struct stage2 *s2, const struct page_source *guest);
/* ---- NUMA page movement (issue 7). All three run under the lock of the page's 2 MiB region,
 * the lock COW breaks, faults, merges (pmap_protect/pmap_share) and zero-copy remaps take,
 * so each sees the page before or after a move, never during one. Device emulation reaches
 * guest pages by bare machine address for the length of one request (guestmem_ring), so the
 * monitor calls these under devices_lock, as it does zero-copy remaps. Only pages the VM owns
 * alone (PMAP_OWNED) move: copy-on-write pages (host image, merged, disk cache) have mappers
 * in other VMs' pmaps, which one VM's lock does not cover; they are skipped (PMAP_SKIP).
 *
 * pmap_migrate: move the page at gpa to a page from `target` (which must hand out pages on
 * `node`; a page from another node is given back and PMAP_NOMEM returned): break-before-make
 * in every stage-2 root (entries cleared, the VMID's translations invalidated: VM-wide, as
 * stage-1 entries hold both stages anyway; scoped by s2_flush_broadcast as for COW breaks),
 * copy, clean to PoC, invalidate the I-cache (the
 * page may be code), repoint the pmap (flags kept), remap where it was mapped, free the old
 * page through guest->free. PMAP_SKIP: not present, not owned, replicated, already on node. */
int pmap_migrate(struct pmap *pm, struct stage2 *s2, uint64_t gpa, int node,
		 const struct page_source *target, const struct page_source *guest,
		 const struct page_source *tables);
/* pmap_replicate: read-only replicas of the owned page at gpa on the nodes of node_mask
 * (besides its home node and nodes that have one; s2 needs per-node roots): the page is
 * made read-only in the pmap and in every root and the VMID's translations invalidated, then
 * copied to a page from node_src[n] for each node n, cleaned to PoC, the I-cache invalidated,
 * and each replica mapped read-only in its node's root (break-before-make). Returns the number
 * of replicas made (> 0), PMAP_SKIP, or PMAP_NOMEM (none could be made). A write fault on the
 * page (pmap_fault, pmap_copy to the guest, ...) collapses the replicas first. */
int pmap_replicate(struct pmap *pm, struct stage2 *s2, uint64_t gpa, unsigned node_mask,
		   const struct page_source *const *node_src, const struct page_source *tables);
/* pmap_move_batch: several migrations and replications, in ascending page order (an entry
 * out of order or for a page already in the batch gets PMAP_SKIP), at most PMAP_MOVE_BATCH,
 * as the two above do one page but with one VM-wide invalidation for the lot: each page is
 * broken (migration) or made read-only (replication) and marked PMAP_MOVING under its
 * region's lock, then the VMID's translations are invalidated, then the pages are copied
 * PMAP_MOVE_CHUNK at a time, the I-cache invalidated and each made under its region's lock
 * again. A replication's nodes read the home page until all copies are made; then their
 * entries are broken, the VMID invalidated a second time (only if one was mapped), and the
 * replicas mapped. No lock is held while copying: a vCPU that faults on any
 * other page of a moving page's 2 MiB region does not wait, and one that faults on a moving
 * page copies and makes that page itself if the mover has not taken it yet (else waits for
 * it): under QEMU a batch's copies took tens of ms, and holding the regions' locks for them,
 * or waiting for the mover to reach the page, made the vCPUs touching them spin meanwhile. Under QEMU every broadcast
 * invalidation stops all emulated CPUs (1.5 ms to tens of ms with 8 vCPUs on 2 busy host
 * cores), which made a move cost 3-17 ms there with per-page invalidations. A migration's
 * target page comes from node_src[node]. Each m->rc is what pmap_migrate / pmap_replicate
 * would return; the return value is the number of pages moved. Callers serialise moves
 * (the monitor: devices_lock). */
#define PMAP_MOVE_BATCH 128
#define PMAP_MOVE_CHUNK 8    /* pages copied between two I-cache invalidations */
enum { PMAP_MOVE_MIGRATE, PMAP_MOVE_REPLICATE };
struct pmap_move {
	uint64_t gpa;
	int kind;           /* PMAP_MOVE_* */
	int node;           /* migration: the target node */
	unsigned nodes;     /* replication: the nodes wanted */
	int rc;             /* out */
	/* the mechanism's own */
	int mapped;
	uint64_t old, page, rep[S2_MAX_NODES];
};
int pmap_move_batch(struct pmap *pm, struct stage2 *s2, struct pmap_move *mv, int n,
		    const struct page_source *const *node_src, const struct page_source *guest,
		    const struct page_source *tables);
/* pmap_collapse: back to the one (home) page, writable again, in every root; replicas freed
 * through guest->free after the invalidation. PMAP_SKIP if the page has no replicas. */
int pmap_collapse(struct pmap *pm, uint64_t gpa, const struct page_source *guest);
/* pmap_revoke: for sampling page use, drop the stage-2 entries of the owned, not replicated
 * page at gpa in every root (the pmap keeps it; the next access faults and refills). No
 * invalidation: the caller invalidates the VM's translations once after a batch. PMAP_SKIP
 * for any other page. */
int pmap_revoke(struct pmap *pm, struct stage2 *s2, uint64_t gpa);
/* Release every page the VM owns (replicas too) and every leaf. */
void pmap_destroy(struct pmap *pm, const struct page_source *guest, const struct page_source *tables);
#endif
