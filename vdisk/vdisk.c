/* The disk data path: global disk cache, copy-on-write overlays, persistent write-through.
 * See vdisk.h. */
#include "vdisk.h"
#include "palloc.h"
#include "mirrorball/arch_hooks.h"
#include "mb_string.h"

const struct page_source *vdisk_pages;
const struct vdisk_store *vdisk_store;

#define SPB VDISK_SECTORS_PER_BLOCK

static void *node_alloc(void *ctx)
{
	(void)ctx;
	return (void *)(uintptr_t)vdisk_pages->alloc(vdisk_pages->arg);
}

static void node_free(void *ctx, void *node)
{
	(void)ctx;
	vdisk_pages->free(vdisk_pages->arg, (uint64_t)(uintptr_t)node);
}

/* Cache tree nodes come from the base's spares: the tree only changes under the base lock,
 * and a page allocation made there could reclaim, i.e. take the same lock again. Base locked. */
static void *cache_node_alloc(void *ctx)
{
	struct vdisk_base *b = ctx;
	return b->nspare ? (void *)(uintptr_t)b->spare[--b->nspare] : 0;
}

/* Tops the spares up to what one insert may take (height + 1 nodes), allocating with the
 * lock not held. 0, or -1 out of memory. */
static int spares_fill(struct vdisk_base *b)
{
	for (;;) {
		spin_lock(&b->lock);
		int enough = b->nspare >= b->cache.height + 1;
		spin_unlock(&b->lock);
		if (enough)
			return 0;
		uint64_t page = vdisk_pages->alloc(vdisk_pages->arg);
		if (!page)
			return -1;
		spin_lock(&b->lock);
		if (b->nspare < sizeof(b->spare) / sizeof(b->spare[0])) {
			b->spare[b->nspare++] = page;
			page = 0;
		}
		spin_unlock(&b->lock);
		if (page)
			vdisk_pages->free(vdisk_pages->arg, page);
	}
}

void vdisk_base_init(struct vdisk_base *b, const char *name, uint64_t offset, uint64_t bytes)
{
	memset(b, 0, sizeof(*b));
	size_t i = 0;
	for (; name && name[i] && i + 1 < sizeof(b->name); i++)
		b->name[i] = name[i];
	b->offset = offset;
	b->bytes = bytes - bytes % VDISK_BLOCK;
	b->blocks = b->bytes / VDISK_BLOCK;
	btree_init(&b->cache, VDISK_SECTOR, 0, cache_node_alloc, node_free, b);
}

void vdisk_init(struct vdisk *d, struct vdisk_base *b, int mode)
{
	memset(d, 0, sizeof(*d));
	d->base = b;
	d->mode = mode;
	btree_init(&d->overlay, VDISK_SECTOR, BTREE_MERGE, node_alloc, node_free, d);
}

uint64_t vdisk_sectors(const struct vdisk *d) { return d->base->bytes / VDISK_SECTOR; }

/* ---- the global disk cache ---- */

/* The cached page of blk with a hold on it (pmap_shared_put when done), or 0. Base locked. */
static uint64_t cache_hold_locked(struct vdisk_base *b, uint64_t blk)
{
	struct btree_extent e;
	if (!btree_lookup(&b->cache, blk * SPB, &e))
		return 0;
	uint64_t page = e.value + (blk * SPB - e.start) * VDISK_SECTOR;
	pmap_shared_get(page);
	return page;
}

/* Takes a fresh page into the cache for blk unless another CPU got there first (or there is
 * no memory for a tree node: the block then stays uncached). With hold: returns the cached
 * page of blk held, taken under the same lock (a reclaim, e.g. by the next insert's
 * allocation, cannot free it first), or 0. */
static uint64_t cache_insert(struct vdisk_base *b, uint64_t blk, uint64_t page, int hold)
{
	uint64_t held = 0;
	struct memmap_entry *m = memmap_of(&g_palloc, page);
	int taken = 0, again;
	do {
		again = 0;
		if (spares_fill(b))
			break;
		spin_lock(&b->lock);
		struct btree_extent e;
		if (!btree_lookup(&b->cache, blk * SPB, &e)) {
			int rc = btree_insert(&b->cache, blk * SPB, SPB, page);
			taken = rc == BTREE_OK;
			again = rc == BTREE_ENOMEM;      /* the tree grew meanwhile: more spares */
		}
		if (taken) {
			if (m) {
				m->use = MM_DCACHE;
				m->sharers = 1;          /* the cache's own reference */
				m->origin = 0;
			}
			b->cache_pages++;
		}
		if (hold && !again)
			held = cache_hold_locked(b, blk);
		spin_unlock(&b->lock);
	} while (again);
	if (!taken)
		vdisk_pages->free(vdisk_pages->arg, page);
	return held;
}

/* The page holding block blk, held; on a miss reads blk and up to ahead-1 following
 * uncached blocks from the image in one request. 0 on failure. */
static uint64_t base_get(struct vdisk *d, uint64_t blk, uint64_t ahead)
{
	struct vdisk_base *b = d->base;
	spin_lock(&b->lock);
	uint64_t page = cache_hold_locked(b, blk);
	if (page)
		b->hits++;
	spin_unlock(&b->lock);
	if (page) {
		d->cache_hits++;
		return page;
	}

	uint64_t pages[VDISK_BATCH];
	unsigned n = 0;
	if (ahead > VDISK_BATCH)
		ahead = VDISK_BATCH;
	if (ahead == 0)
		ahead = 1;
	spin_lock(&b->lock);
	for (; n < ahead && blk + n < b->blocks; n++) {
		struct btree_extent e;
		if (n && btree_lookup(&b->cache, (blk + n) * SPB, &e))
			break;           /* the run of misses ends at a cached block */
	}
	spin_unlock(&b->lock);
	/* the tree nodes the inserts may need first, then as many blocks as there is memory for */
	if (spares_fill(b))
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (!(pages[i] = vdisk_pages->alloc(vdisk_pages->arg))) {
			n = i;
			break;
		}
	if (!n || vdisk_store->readv(vdisk_store->ctx, b->offset + blk * VDISK_BLOCK, pages, n)) {
		for (unsigned i = 0; i < n; i++)
			vdisk_pages->free(vdisk_pages->arg, pages[i]);
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		arch_clean_dcache((void *)(uintptr_t)pages[i], VDISK_BLOCK);   /* guests may map it uncached-clean */
	spin_lock(&b->lock);
	b->misses += n;
	b->image_reads++;
	b->image_read_bytes += (uint64_t)n * VDISK_BLOCK;
	spin_unlock(&b->lock);
	d->image_read_bytes += (uint64_t)n * VDISK_BLOCK;
	page = cache_insert(b, blk, pages[0], 1);
	for (unsigned i = 1; i < n; i++)
		cache_insert(b, blk + i, pages[i], 0);
	return page;
}

/* A persistent disk wrote blk: the cache forgets it (guests that mapped the old page keep
 * their copy-on-write snapshot, as they had read it). */
static void cache_drop(struct vdisk_base *b, uint64_t blk)
{
	spin_lock(&b->lock);
	uint64_t page = cache_hold_locked(b, blk);
	if (page && btree_delete(&b->cache, blk * SPB, SPB) == BTREE_OK) {
		b->cache_pages--;
		pmap_shared_put(page);           /* the cache's reference */
	}
	spin_unlock(&b->lock);
	if (page)
		pmap_shared_put(page);           /* ours */
}

uint64_t vdisk_base_reclaim(struct vdisk_base *b, uint64_t want)
{
	uint64_t freed = 0;
	struct btree_iter it;
	struct btree_extent e;
	spin_lock(&b->lock);
	btree_iter_init(&it, &b->cache, 0, UINT64_MAX);
	while (freed < want && btree_iter_next(&it, &e)) {
		/* holds are only taken under this lock, so one sharer means only the cache */
		struct memmap_entry *m = memmap_of(&g_palloc, e.value);
		if (!m || __atomic_load_n(&m->sharers, __ATOMIC_ACQUIRE) != 1)
			continue;
		if (btree_delete(&b->cache, e.start, e.len) != BTREE_OK)
			break;
		b->cache_pages--;
		b->reclaimed++;
		pmap_shared_put(e.value);
		freed++;
	}
	if (!b->cache_pages)
		while (b->nspare)                /* nothing cached: hold no spare nodes either */
			vdisk_pages->free(vdisk_pages->arg, b->spare[--b->nspare]);
	spin_unlock(&b->lock);
	return freed;
}

/* ---- guest memory ---- */

int vdisk_guest_copy(const struct vdisk_guest *g, uint64_t gpa, void *buf, uint64_t len, int to_guest)
{
	return pmap_copy(g->pm, g->s2, gpa, buf, len, to_guest, g->pages, g->tables);
}

/* Walks a request's guest pieces. */
struct cursor { const struct vdisk_iov *iov; unsigned n, i; uint32_t off; };

static void cur_skip_empty(struct cursor *c)
{
	while (c->i < c->n && c->off == c->iov[c->i].len) {
		c->i++;
		c->off = 0;
	}
}

/* The guest page at the cursor, if the next 4 KiB are one whole, aligned guest page. */
static int cur_whole_page(struct cursor *c, uint64_t *gpa)
{
	cur_skip_empty(c);
	if (c->i >= c->n)
		return 0;
	uint64_t a = c->iov[c->i].gpa + c->off;
	if ((a & (VDISK_BLOCK - 1)) || c->iov[c->i].len - c->off < VDISK_BLOCK)
		return 0;
	*gpa = a;
	return 1;
}

static int cur_copy(struct cursor *c, const struct vdisk_guest *g, uint8_t *buf, uint64_t len, int to_guest)
{
	while (len) {
		cur_skip_empty(c);
		if (c->i >= c->n)
			return -1;
		uint64_t n = c->iov[c->i].len - c->off;
		if (n > len)
			n = len;
		if (buf && vdisk_guest_copy(g, c->iov[c->i].gpa + c->off, buf, n, to_guest))
			return -1;
		c->off += (uint32_t)n;
		if (buf)
			buf += n;
		len -= n;
	}
	return 0;
}

/* ---- the copy-on-write overlay ---- */

/* Machine address of the overlay page of blk, or 0 if the VM wrote nothing in it. */
static uint64_t overlay_page(const struct vdisk *d, uint64_t blk)
{
	struct btree_extent e;
	if (d->mode != VDISK_COW || !btree_lookup_ge(&d->overlay, blk * SPB, &e))
		return 0;
	if (e.start >= (blk + 1) * SPB)
		return 0;
	/* sector s lives at value + (s - start) * 512; the page starts at sector blk*8 */
	return e.value + (blk * SPB - e.start) * VDISK_SECTOR;
}

struct overlay_fill { const struct vdisk *d; uint64_t blk; uint8_t *dst; };

static int overlay_copy_extent(void *arg, const struct btree_extent *e)
{
	struct overlay_fill *f = arg;
	uint64_t first = f->blk * SPB, last = first + SPB;
	uint64_t s = e->start > first ? e->start : first, end = e->start + e->len < last ? e->start + e->len : last;
	if (s < end)
		memcpy(f->dst + (s - first) * VDISK_SECTOR,
		       (const void *)(uintptr_t)(e->value + (s - e->start) * VDISK_SECTOR),
		       (end - s) * VDISK_SECTOR);
	return 0;
}

/* ---- requests ---- */

/* The 4 KiB of blk as this VM sees it: the cached base page (held: *hold) or, when the VM
 * wrote part of it, the base with its sectors laid over, in bounce. */
static const uint8_t *block_view(struct vdisk *d, uint64_t blk, uint64_t ahead, uint8_t *bounce, uint64_t *hold)
{
	*hold = 0;
	uint64_t page = base_get(d, blk, ahead);
	if (!page)
		return 0;
	if (!overlay_page(d, blk)) {
		*hold = page;
		return (const uint8_t *)(uintptr_t)page;
	}
	memcpy(bounce, (const void *)(uintptr_t)page, VDISK_BLOCK);
	pmap_shared_put(page);
	struct overlay_fill f = { d, blk, bounce };
	btree_visit(&d->overlay, blk * SPB, (blk + 1) * SPB, overlay_copy_extent, &f);
	return bounce;
}

static uint64_t iov_total(const struct vdisk_iov *iov, unsigned n)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < n; i++)
		t += iov[i].len;
	return t;
}

static uint8_t *bounce_of(struct vdisk *d)
{
	if (!d->bounce)
		d->bounce = (uint8_t *)(uintptr_t)vdisk_pages->alloc(vdisk_pages->arg);
	return d->bounce;
}

int vdisk_read(struct vdisk *d, const struct vdisk_guest *g, uint64_t sector, const struct vdisk_iov *iov, unsigned n)
{
	struct cursor c = { iov, n, 0, 0 };
	uint64_t pos = sector * VDISK_SECTOR, end = pos + iov_total(iov, n);
	uint8_t *bounce = bounce_of(d);
	struct pmap_batch *batch = &d->batch;
	batch->n = 0;
	batch->flush = 0;
	if (!bounce || end > d->base->bytes)
		goto fail;
	while (pos < end) {
		uint64_t blk = pos / VDISK_BLOCK, boff = pos % VDISK_BLOCK;
		uint64_t chunk = VDISK_BLOCK - boff < end - pos ? VDISK_BLOCK - boff : end - pos;
		uint64_t ahead = (end - 1) / VDISK_BLOCK - blk + 1, gpa, hold;
		if (chunk == VDISK_BLOCK && !overlay_page(d, blk) && cur_whole_page(&c, &gpa)) {
			/* the Disco path: the guest's page becomes the cache's page, copy-on-write */
			uint64_t page = base_get(d, blk, ahead);
			if (!page)
				goto fail;
			int rc = pmap_map_shared_batch(g->pm, g->s2, gpa, page, g->pages, g->tables, batch);
			pmap_shared_put(page);
			if (rc)
				goto fail;
			cur_copy(&c, g, 0, VDISK_BLOCK, 1);
			d->zero_copy_pages++;
		} else {
			const uint8_t *src = block_view(d, blk, ahead, bounce, &hold);
			int rc = src ? cur_copy(&c, g, (uint8_t *)(uintptr_t)(src + boff), chunk, 1) : -1;
			if (hold)
				pmap_shared_put(hold);
			if (rc)
				goto fail;
			d->copied_bytes += chunk;
		}
		pos += chunk;
	}
	pmap_batch_finish(batch, g->s2, g->pages);
	d->reads++;
	d->read_bytes += end - sector * VDISK_SECTOR;
	return 0;
fail:
	pmap_batch_finish(batch, g->s2, g->pages);
	d->errors++;
	return -1;
}

/* COW: the bytes [boff, boff+len) of blk, already in src, go to the VM's overlay page. */
static int overlay_write(struct vdisk *d, uint64_t blk, uint64_t boff, const uint8_t *src, uint64_t len)
{
	uint64_t page = overlay_page(d, blk);
	int fresh = !page;
	if (fresh && !(page = vdisk_pages->alloc(vdisk_pages->arg)))
		return -1;
	uint64_t first = blk * SPB + boff / VDISK_SECTOR, last = blk * SPB + (boff + len + VDISK_SECTOR - 1) / VDISK_SECTOR;
	if (btree_insert(&d->overlay, first, last - first, page + (first - blk * SPB) * VDISK_SECTOR) != BTREE_OK) {
		if (fresh)
			vdisk_pages->free(vdisk_pages->arg, page);
		return -1;
	}
	memcpy((uint8_t *)(uintptr_t)page + boff, src, len);
	if (fresh)
		d->overlay_pages++;
	return 0;
}

int vdisk_write(struct vdisk *d, const struct vdisk_guest *g, uint64_t sector, const struct vdisk_iov *iov, unsigned n)
{
	struct cursor c = { iov, n, 0, 0 };
	uint64_t pos = sector * VDISK_SECTOR, end = pos + iov_total(iov, n);
	uint8_t *bounce = bounce_of(d);
	if (d->mode == VDISK_RO || !bounce || end > d->base->bytes)
		goto fail;
	while (pos < end) {
		uint64_t blk = pos / VDISK_BLOCK, boff = pos % VDISK_BLOCK;
		uint64_t chunk = VDISK_BLOCK - boff < end - pos ? VDISK_BLOCK - boff : end - pos;
		if (cur_copy(&c, g, bounce + boff, chunk, 0))
			goto fail;
		if (d->mode == VDISK_COW) {
			if (overlay_write(d, blk, boff, bounce + boff, chunk))
				goto fail;
		} else {
			/* persistent: straight to the image (whole sectors: the request is) */
			if (vdisk_store->write(vdisk_store->ctx, d->base->offset + pos, bounce + boff, chunk))
				goto fail;
			cache_drop(d->base, blk);
			spin_lock(&d->base->lock);
			d->base->image_writes++;
			d->base->image_write_bytes += chunk;
			spin_unlock(&d->base->lock);
		}
		pos += chunk;
	}
	d->writes++;
	d->write_bytes += end - sector * VDISK_SECTOR;
	return 0;
fail:
	d->errors++;
	return -1;
}

int vdisk_flush(struct vdisk *d)
{
	d->flushes++;
	if (d->mode != VDISK_PERSISTENT)
		return 0;        /* nothing volatile: a COW overlay lives as long as the VM */
	if (vdisk_store->flush(vdisk_store->ctx)) {
		d->errors++;
		return -1;
	}
	return 0;
}

void vdisk_reset(struct vdisk *d)
{
	/* one page per block the VM wrote in: find each block once, free its page, then the tree */
	struct btree_extent e;
	uint64_t s = 0;
	while (btree_lookup_ge(&d->overlay, s, &e)) {
		uint64_t blk = (e.start > s ? e.start : s) / SPB;
		vdisk_pages->free(vdisk_pages->arg, overlay_page(d, blk));
		s = (blk + 1) * SPB;
	}
	btree_destroy(&d->overlay);
	d->overlay_pages = 0;
	if (d->bounce) {
		vdisk_pages->free(vdisk_pages->arg, (uint64_t)(uintptr_t)d->bounce);
		d->bounce = 0;
	}
}
