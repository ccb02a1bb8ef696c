#include "palloc.h"
#include "bits.h"
#include "mb_string.h"

struct palloc g_palloc;

void palloc_reset(struct palloc *pa, int nnodes)
{
	memset(pa, 0, sizeof(*pa));
	pa->nnodes = nnodes;
	for (int a = 0; a < nnodes; a++)
		for (int b = 0; b < nnodes; b++)
			pa->order[a][b] = (uint8_t)((a + b) % nnodes);
}

void palloc_set_distances(struct palloc *pa, const uint32_t distance[][8])
{
	for (int a = 0; a < pa->nnodes; a++) {
		uint8_t *o = pa->order[a];
		for (int i = 0; i < pa->nnodes; i++)
			o[i] = (uint8_t)i;
		/* insertion sort by distance from a; a itself first (smallest distance) */
		for (int i = 1; i < pa->nnodes; i++)
			for (int j = i; j > 0 && distance[a][o[j]] < distance[a][o[j - 1]]; j--) {
				uint8_t t = o[j];
				o[j] = o[j - 1];
				o[j - 1] = t;
			}
	}
}

int palloc_add_range(struct palloc *pa, int node, uint64_t base, uint64_t end)
{
	if (node < 0 || node >= pa->nnodes)
		return -1;
	struct palloc_node *n = &pa->node[node];
	base = ALIGN_UP(base, PAGE_SIZE);
	end = ALIGN_DOWN(end, PAGE_SIZE);
	if (n->nranges >= PALLOC_MAX_RANGES || end <= base)
		return -1;
	uint64_t pages = (end - base) >> PAGE_SHIFT;
	uint64_t mm_bytes = ALIGN_UP(pages * sizeof(struct memmap_entry), PAGE_SIZE);
	if (mm_bytes + PAGE_SIZE > end - base)
		return -1;
	struct palloc_range *r = &n->range[n->nranges++];
	r->memmap = (struct memmap_entry *)(uintptr_t)base;
	r->base = base + mm_bytes;
	r->end = end;
	r->frontier = r->base;
	/* entry 0 describes r->base: the memmap's own pages are not in the range */
	memset(r->memmap, 0, mm_bytes);
	n->total_pages += (r->end - r->base) >> PAGE_SHIFT;
	return 0;
}

int palloc_add_used_range(struct palloc *pa, int node, uint64_t base, uint64_t end,
			  struct memmap_entry *memmap, uint16_t use)
{
	if (node < 0 || node >= pa->nnodes)
		return -1;
	struct palloc_node *n = &pa->node[node];
	base = ALIGN_DOWN(base, PAGE_SIZE);
	end = ALIGN_UP(end, PAGE_SIZE);
	if (n->nranges >= PALLOC_MAX_RANGES || end <= base)
		return -1;
	struct palloc_range *r = &n->range[n->nranges++];
	r->base = base;
	r->end = end;
	r->frontier = end;
	r->memmap = memmap;
	for (uint64_t i = 0; i < (end - base) >> PAGE_SHIFT; i++) {
		memset(&memmap[i], 0, sizeof(memmap[i]));
		memmap[i].use = use;
	}
	return 0;
}

static struct palloc_range *range_of(struct palloc *pa, uint64_t page, int *node)
{
	for (int i = 0; i < pa->nnodes; i++)
		for (int j = 0; j < pa->node[i].nranges; j++) {
			struct palloc_range *r = &pa->node[i].range[j];
			if (page >= r->base && page < r->end) {
				if (node)
					*node = i;
				return r;
			}
		}
	return 0;
}

int palloc_node_of(struct palloc *pa, uint64_t page)
{
	int node = -1;
	range_of(pa, page, &node);
	return node;
}

struct memmap_entry *memmap_of_near(struct palloc *pa, uint64_t page, struct palloc_range **hint)
{
	struct palloc_range *r = *hint;
	if (!r || page < r->base || page >= r->end)
		*hint = r = range_of(pa, page, 0);
	return r ? palloc_range_entry(r, page) : 0;
}

struct memmap_entry *memmap_of(struct palloc *pa, uint64_t page)
{
	struct palloc_range *none = 0;
	return memmap_of_near(pa, page, &none);
}

static uint64_t colour_of(uint64_t page) { return (page >> PAGE_SHIFT) & (PALLOC_COLOURS - 1); }

/* n->lock held: page onto its colour's free list. */
static void push_free(struct palloc_node *n, uint64_t page)
{
	uint64_t *head = &n->free_head[colour_of(page)];
	*(uint64_t *)(uintptr_t)page = *head;
	*head = page;
	n->nfree++;
}

/* n->lock held: a free page of 'colour' unlinked, or 0. */
static uint64_t take_free_colour(struct palloc_node *n, uint64_t colour)
{
	uint64_t *head = &n->free_head[colour], page = *head;
	if (page) {
		*head = *(uint64_t *)(uintptr_t)page;
		n->nfree--;
	}
	return page;
}

static uint64_t node_take(struct palloc_node *n)
{
	uint64_t page = 0;
	spin_lock(&n->lock);
	for (uint32_t i = 0; n->nfree && i < PALLOC_COLOURS && !page; i++) {
		uint32_t c = (n->next_colour + i) % PALLOC_COLOURS;
		page = take_free_colour(n, c);
		if (page)
			n->next_colour = c + 1;
	}
	if (!page) {
		for (int i = 0; i < n->nranges && !page; i++)
			if (n->range[i].frontier < n->range[i].end) {
				page = n->range[i].frontier;
				n->range[i].frontier += PAGE_SIZE;
			}
	}
	if (page)
		n->used_pages++;
	spin_unlock(&n->lock);
	return page;
}

/* n->lock held: the first never-used page of 'colour' in some range; the pages before it
 * go to their free lists. 0 if no range has one left. */
static uint64_t take_frontier_colour(struct palloc_node *n, uint64_t colour)
{
	for (int i = 0; i < n->nranges; i++) {
		struct palloc_range *r = &n->range[i];
		uint64_t skip = ((colour - colour_of(r->frontier)) & (PALLOC_COLOURS - 1)) << PAGE_SHIFT;
		if (r->frontier >= r->end || r->end - r->frontier <= skip)
			continue;
		for (uint64_t p = r->frontier; p < r->frontier + skip; p += PAGE_SIZE)
			push_free(n, p);
		uint64_t page = r->frontier + skip;
		r->frontier = page + PAGE_SIZE;
		return page;
	}
	return 0;
}

uint64_t palloc_alloc_colour(struct palloc *pa, int node, uint64_t like)
{
	if (node < 0 || node >= pa->nnodes)
		return 0;
	struct palloc_node *n = &pa->node[node];
	uint64_t colour = colour_of(like);
	spin_lock(&n->lock);
	uint64_t page = take_free_colour(n, colour);
	if (!page)
		page = take_frontier_colour(n, colour);
	if (page)
		n->used_pages++;
	spin_unlock(&n->lock);
	return page ? page : node_take(n);
}

uint64_t palloc_alloc(struct palloc *pa, int node, struct palloc_cache *cache)
{
	if (node < 0 || node >= pa->nnodes)
		node = 0;
	if (cache && cache->node == node && cache->n > 0) {
		__atomic_fetch_add(&pa->node[node].used_pages, 1, __ATOMIC_RELAXED);
		return cache->page[--cache->n];
	}
	for (int i = 0; i < pa->nnodes; i++) {
		uint64_t page = node_take(&pa->node[pa->order[node][i]]);
		if (page)
			return page;
	}
	return 0;
}

void palloc_free(struct palloc *pa, uint64_t page, struct palloc_cache *cache)
{
	int node;
	struct palloc_range *r = range_of(pa, page, &node);
	if (!r)
		return;
	struct palloc_node *n = &pa->node[node];
	memset(palloc_range_entry(r, page), 0, sizeof(struct memmap_entry));
	if (cache && cache->node == node && cache->n < PCACHE_SIZE) {
		cache->page[cache->n++] = page;
		__atomic_fetch_sub(&n->used_pages, 1, __ATOMIC_RELAXED);
		return;
	}
	spin_lock(&n->lock);
	push_free(n, page);
	n->used_pages--;
	spin_unlock(&n->lock);
}

uint64_t palloc_free_pages(struct palloc *pa, int node)
{
	struct palloc_node *n = &pa->node[node];
	return n->total_pages - __atomic_load_n(&n->used_pages, __ATOMIC_RELAXED);
}
