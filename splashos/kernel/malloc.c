/* Memory: the global heap is the RAM between the end of the image and the initrd (or the
 * device tree, whichever is lower). Each thread carves small blocks from its own chunk
 * (ARENA_CHUNK bytes, taken from the global heap under a lock when it runs out), so
 * threads do not contend or share cache lines; freed small blocks go to the freeing
 * thread's free list of their size class (powers of two). Big blocks come straight from the
 * global heap under the lock and are kept on one free list when freed. Every block has a
 * 16-byte header just before it. The monitor gives SPLASHOS zeroed pages on first touch
 * and pages it never touches cost nothing, so a big heap is free. The command loop resets
 * the heap between apps (heap_reset). */
#include "kernel.h"

#define HDR_MAGIC    0x5350484dU        /* "SPHM" */
#define MIN_SHIFT    4                  /* 16 bytes */
#define NCLASS       15                 /* 16 B .. 256 KiB */
#define BIG          (1UL << (MIN_SHIFT + NCLASS - 1))
#define ARENA_CHUNK  (1UL << 20)

struct hdr {
	uint32_t magic;
	uint32_t cls;                       /* size class, or NCLASS for a big block */
	uint64_t size;                      /* usable bytes from the user pointer */
};

struct freeblk { struct freeblk *next; };

struct arena {
	uintptr_t cur, end;
	struct freeblk *free[NCLASS];
	uint64_t allocs;
	char pad[64];
} __attribute__((aligned(64)));

static struct arena arenas[MAX_CPUS];
static sp_lock_t heap_lock = SP_LOCK_INIT;
static uintptr_t heap_start, heap_cur, heap_end;
static struct freeblk *big_free;        /* big blocks: the header says the size */

void heap_init(uint64_t start, uint64_t end)
{
	heap_start = (uintptr_t)((start + 4095) & ~4095ULL);
	heap_end = (uintptr_t)(end & ~4095ULL);
	heap_reset();
}

void heap_reset(void)
{
	sp_lock(&heap_lock);
	heap_cur = heap_start;
	big_free = NULL;
	memset(arenas, 0, sizeof(arenas));
	sp_unlock(&heap_lock);
}

uint64_t heap_used(void)
{
	return heap_cur - heap_start;
}

/* n bytes at `align` (with room for a header before), from the global heap; lock held */
static uintptr_t global_carve(size_t n, size_t align)
{
	uintptr_t p = (heap_cur + sizeof(struct hdr) + align - 1) & ~(uintptr_t)(align - 1);
	if (p > heap_end || n > heap_end - p)
		return 0;
	heap_cur = p + n;
	return p;
}

static void set_hdr(uintptr_t p, uint32_t cls, uint64_t size)
{
	struct hdr *h = (struct hdr *)(p - sizeof(struct hdr));
	h->magic = HDR_MAGIC;
	h->cls = cls;
	h->size = size;
}

static void *big_alloc(size_t n, size_t align)
{
	n = (n + 63) & ~(size_t)63;
	sp_lock(&heap_lock);
	/* reuse a freed block that fits without wasting more than half of it */
	for (struct freeblk **pp = &big_free; *pp; pp = &(*pp)->next) {
		uintptr_t p = (uintptr_t)*pp;
		struct hdr *h = (struct hdr *)(p - sizeof(struct hdr));
		if (h->size >= n && h->size / 2 <= n && !(p & (align - 1))) {
			*pp = (*pp)->next;
			sp_unlock(&heap_lock);
			return (void *)p;
		}
	}
	uintptr_t p = global_carve(n, align < 64 ? 64 : align);
	sp_unlock(&heap_lock);
	if (!p)
		return NULL;
	set_hdr(p, NCLASS, n);
	return (void *)p;
}

void *sp_malloc_aligned(size_t n, size_t align)
{
	if (align < 16)
		align = 16;
	if (align & (align - 1) || align > 4096)
		return NULL;
	if (n == 0)
		n = 1;
	if (n > BIG / 2 || align > 64)
		return big_alloc(n, align);
	int cls = 0;
	while ((1UL << (cls + MIN_SHIFT)) < n)
		cls++;
	size_t sz = 1UL << (cls + MIN_SHIFT);
	struct arena *a = &arenas[this_tid()];
	a->allocs++;
	if (a->free[cls] && !((uintptr_t)a->free[cls] & (align - 1))) {
		struct freeblk *b = a->free[cls];
		a->free[cls] = b->next;
		return b;
	}
	uintptr_t p = (a->cur + sizeof(struct hdr) + align - 1) & ~(uintptr_t)(align - 1);
	if (!a->cur || p + sz > a->end) {
		sp_lock(&heap_lock);
		uintptr_t c = global_carve(ARENA_CHUNK, 64);
		sp_unlock(&heap_lock);
		if (!c)
			return big_alloc(n, align);     /* the last bits of the heap */
		a->cur = c;
		a->end = c + ARENA_CHUNK;
		p = (a->cur + sizeof(struct hdr) + align - 1) & ~(uintptr_t)(align - 1);
	}
	a->cur = p + sz;
	set_hdr(p, (uint32_t)cls, sz);
	return (void *)p;
}

void *sp_malloc(size_t n)
{
	return sp_malloc_aligned(n, 16);
}

void *sp_calloc(size_t n, size_t size)
{
	if (size && n > (size_t)-1 / size)
		return NULL;
	void *p = sp_malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

void sp_free(void *ptr)
{
	if (!ptr)
		return;
	struct hdr *h = (struct hdr *)((uintptr_t)ptr - sizeof(struct hdr));
	if ((uintptr_t)ptr < heap_start || (uintptr_t)ptr >= heap_end || h->magic != HDR_MAGIC ||
	    h->cls > NCLASS) {
		sp_printf("splash: error: sp_free(%p): not a block of sp_malloc (thread %d); ignored\n", ptr,
			  this_tid());
		return;
	}
	struct freeblk *b = ptr;
	if (h->cls == NCLASS) {
		sp_lock(&heap_lock);
		b->next = big_free;
		big_free = b;
		sp_unlock(&heap_lock);
	} else {
		struct arena *a = &arenas[this_tid()];
		b->next = a->free[h->cls];
		a->free[h->cls] = b;
	}
}
