/* pmap and stage-2 tables on host memory: first touch, copy-on-write, descriptors,
 * break-before-make, allocation failures, teardown accounting, memmap records.
 *
 * Machine addresses are pointers, but descriptors and pmap entries keep only address bits
 * [39:12]: heap pointers (0x6xxxxxxxxxxx under ASan) would be truncated. So every page the
 * code under test sees comes from a pool mapped below 2 GiB (ASan's low application range). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "pmap.h"
#include "stage2.h"
#include "palloc.h"
#include "bits.h"
#include "arch_stub.h"

#define RAM_BASE MB_GUEST_RAM_BASE
#define RAM_SIZE (64ULL << 20)
#define VMID 7
#define VM_INDEX 3

/* ---- low memory pool: first fit over a page map ---- */

#define POOL_PAGES 4096
static uint8_t *pool;
static uint8_t pool_used[POOL_PAGES];

static void pool_init(void)
{
	pool = low_pool_map(POOL_PAGES * PAGE_SIZE);
	assert_non_null(pool);
}

/* n zeroed pages aligned to 'align' pages */
static void *low_alloc(int n, int align)
{
	for (int i = 0; i + n <= POOL_PAGES; i += align) {
		int j = 0;
		while (j < n && !pool_used[i + j])
			j++;
		if (j == n) {
			memset(pool_used + i, 1, n);
			memset(pool + i * PAGE_SIZE, 0, n * PAGE_SIZE);
			return pool + i * PAGE_SIZE;
		}
	}
	fail_msg("test pool exhausted");
	return NULL;
}

static void low_free(void *p, int n)
{
	size_t i = ((uint8_t *)p - pool) / PAGE_SIZE;
	assert_true((uint8_t *)p >= pool && i + n <= POOL_PAGES);
	for (int j = 0; j < n; j++) {
		assert_true(pool_used[i + j]);
		pool_used[i + j] = 0;
	}
}

/* ---- a page source over the pool that counts, and can be told to fail ---- */

#define MAX_LIVE 4096
struct src {
	long allocs, frees, live;
	long fail_after;           /* allocations that succeed before failing; -1 = never */
	uint64_t page[MAX_LIVE];   /* live pages, to check frees are of pages we gave */
	int use_palloc;            /* take pages from g_palloc node 0 instead */
};

static uint64_t src_alloc(void *arg)
{
	struct src *s = arg;
	if (s->fail_after >= 0 && s->allocs >= s->fail_after)
		return 0;
	uint64_t p;
	if (s->use_palloc) {
		p = palloc_alloc(&g_palloc, 0, NULL);
		if (!p)
			return 0;
		memset((void *)(uintptr_t)p, 0, PAGE_SIZE);
	} else {
		p = (uint64_t)(uintptr_t)low_alloc(1, 1);
	}
	for (int i = 0; i < MAX_LIVE; i++)
		if (!s->page[i]) {
			s->page[i] = p;
			break;
		}
	s->allocs++;
	s->live++;
	return p;
}

static void src_free(void *arg, uint64_t page)
{
	struct src *s = arg;
	int found = 0;
	for (int i = 0; i < MAX_LIVE; i++)
		if (s->page[i] == page) {
			s->page[i] = 0;
			found = 1;
			break;
		}
	assert_true(found);            /* never a page this source did not hand out, never twice */
	s->frees++;
	s->live--;
	if (s->use_palloc)
		palloc_free(&g_palloc, page, NULL);
	else
		low_free((void *)(uintptr_t)page, 1);
}

static struct src guest_s, table_s;
static struct page_source guest = { src_alloc, src_free, &guest_s, 0 };
static struct page_source tables = { src_alloc, src_free, &table_s, 0 };
static struct pmap *pm;
static struct stage2 s2;
static uint8_t *palloc_mem;
#define PALLOC_PAGES 64

static int setup(void **state)
{
	(void)state;
	memset(&guest_s, 0, sizeof(guest_s));
	memset(&table_s, 0, sizeof(table_s));
	guest_s.fail_after = table_s.fail_after = -1;
	pm = calloc(1, sizeof(*pm));
	assert_non_null(pm);
	pmap_init(pm, RAM_BASE, RAM_SIZE, VM_INDEX);
	if (!pool)
		pool_init();
	void *root = low_alloc(2, 2);
	s2.root = (uint64_t)(uintptr_t)root;
	s2.vmid = VMID;
	arch_stub_reset();
	memset(&g_palloc, 0, sizeof(g_palloc));
	palloc_mem = NULL;
	return 0;
}

/* Frees whatever a test left behind; the tests that check teardown do it themselves first. */
static int teardown(void **state)
{
	(void)state;
	pmap_destroy(pm, &guest, &tables);
	s2_destroy(&s2, &tables);
	free(pm);
	low_free((void *)(uintptr_t)s2.root, 2);
	memset(&g_palloc, 0, sizeof(g_palloc));
	if (palloc_mem)
		low_free(palloc_mem, PALLOC_PAGES);
	/* everything the tests took from the pool is back */
	for (int i = 0; i < POOL_PAGES; i++)
		assert_int_equal(pool_used[i], 0);
	return 0;
}

static uint8_t *ma(uint64_t e) { return (uint8_t *)(uintptr_t)PMAP_ADDR(e); }

static int zero_page(const uint8_t *p)
{
	for (int i = 0; i < (int)PAGE_SIZE; i++)
		if (p[i])
			return 0;
	return 1;
}

static uint8_t *image_page(uint8_t fill)
{
	uint8_t *p = low_alloc(1, 1);
	for (int i = 0; i < (int)PAGE_SIZE; i++)
		p[i] = (uint8_t)(fill + i * 7);
	return p;
}

/* ---------------- stage 2 alone ---------------- */

static void test_s2_descriptors(void **state)
{
	(void)state;
	uint64_t ipa = 0x40123000, pa = 0x0000001234567000ULL;
	assert_int_equal(s2_lookup(&s2, ipa), 0);
	assert_int_equal(s2_map(&s2, ipa, pa | 0xABC, 0, &tables), 0);
	uint64_t d = s2_lookup(&s2, ipa);
	assert_int_equal(d & 3, 3);                          /* valid page descriptor */
	assert_int_equal(d & S2_ADDR_MASK, pa);             /* low bits of pa dropped */
	assert_int_equal(d & (3ULL << 6), S2_AP_RO);        /* S2AP = 01: read-only */
	assert_true(d & S2_AF);
	assert_int_equal(d & (0xFULL << 2), S2_MEM_NORMAL);
	assert_int_equal(d & (3ULL << 8), S2_SH_INNER);
	assert_int_equal(d >> 40, 0);                        /* no stray upper attributes */
	/* the next page is a different, empty slot of the same L3 table */
	assert_int_equal(s2_lookup(&s2, ipa + PAGE_SIZE), 0);
	/* offsets inside the page find the same descriptor */
	assert_int_equal(s2_lookup(&s2, ipa + 0xFFF), d);
	/* first installation of an entry needs no flush */
	assert_int_equal(arch_stub.s2_flushes, 0);
	/* an L2 and an L3 table (the root is the caller's) */
	assert_int_equal(table_s.allocs, 2);

	assert_int_equal(s2_map(&s2, ipa + PAGE_SIZE, pa, 1, &tables), 0);
	assert_int_equal(s2_lookup(&s2, ipa + PAGE_SIZE) & (3ULL << 6), S2_AP_RW);
	assert_int_equal(table_s.allocs, 2);

	/* IPAs beyond 40 bits are refused */
	assert_int_equal(s2_map(&s2, 1ULL << 40, pa, 1, &tables), -1);
	assert_int_equal(s2_lookup(&s2, 1ULL << 40), 0);
	/* the top of the 40-bit space uses the second concatenated root table */
	uint64_t top = (1ULL << 40) - PAGE_SIZE;
	assert_int_equal(s2_map(&s2, top, pa, 1, &tables), 0);
	assert_int_equal(s2_lookup(&s2, top) & S2_ADDR_MASK, pa);
	assert_true(((uint64_t *)(uintptr_t)s2.root)[1023] & 1);
}

static void test_s2_break_before_make(void **state)
{
	(void)state;
	uint64_t ipa = 0x48000000, pa1 = 0x80000000, pa2 = 0x90000000;
	assert_int_equal(s2_map(&s2, ipa, pa1, 0, &tables), 0);
	assert_int_equal(arch_stub.s2_flushes, 0);
	/* the same descriptor again: nothing to break */
	assert_int_equal(s2_map(&s2, ipa, pa1, 0, &tables), 0);
	assert_int_equal(arch_stub.s2_flushes, 0);
	/* permission change: break, flush, make */
	assert_int_equal(s2_map(&s2, ipa, pa1, 1, &tables), 0);
	assert_int_equal(arch_stub.s2_flushes, 1);
	assert_int_equal(arch_stub.last_flush_vmid, VMID);
	assert_int_equal(arch_stub.last_flush_ipa, ipa);
	/* new output address */
	assert_int_equal(s2_map(&s2, ipa, pa2, 1, &tables), 0);
	assert_int_equal(arch_stub.s2_flushes, 2);
	assert_int_equal(s2_lookup(&s2, ipa) & S2_ADDR_MASK, pa2);
	assert_int_equal(arch_stub.last_flush_broadcast, 1);
	/* a VM that only ever ran on one pCPU gets local invalidation */
	s2.local_tlb = 1;
	assert_int_equal(s2_map(&s2, ipa, pa1, 1, &tables), 0);
	assert_int_equal(arch_stub.s2_flushes, 3);
	assert_int_equal(arch_stub.last_flush_broadcast, 0);
	s2.local_tlb = 0;
	assert_int_equal(s2_map(&s2, ipa, pa2, 1, &tables), 0);
	assert_int_equal(arch_stub.s2_flushes, 4);
	/* unmap flushes; unmapping what is not mapped does not */
	s2_unmap(&s2, ipa);
	assert_int_equal(s2_lookup(&s2, ipa), 0);
	assert_int_equal(arch_stub.s2_flushes, 5);
	s2_unmap(&s2, ipa);
	s2_unmap(&s2, 0x7000000000ULL);        /* no tables there at all */
	assert_int_equal(arch_stub.s2_flushes, 5);
}

static void test_s2_destroy(void **state)
{
	(void)state;
	/* three L3 tables under one L2, plus one under another L1 entry */
	uint64_t ipas[] = { 0x40000000, 0x40001000, 0x40200000, 0x40400000, 0x80000000 };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(s2_map(&s2, ipas[i], 0x1000, 1, &tables), 0);
	assert_int_equal(table_s.live, 6);     /* 2 L2 + 4 L3 */
	s2_destroy(&s2, &tables);
	assert_int_equal(table_s.live, 0);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(s2_lookup(&s2, ipas[i]), 0);
	/* the root itself is the caller's and stays usable */
	assert_int_equal(s2_map(&s2, ipas[0], 0x1000, 1, &tables), 0);
}

static void test_s2_nomem(void **state)
{
	(void)state;
	table_s.fail_after = 1;              /* the L2 table succeeds, the L3 fails */
	assert_int_equal(s2_map(&s2, 0x40000000, 0x1000, 1, &tables), -1);
	assert_int_equal(s2_lookup(&s2, 0x40000000), 0);
	table_s.fail_after = -1;
	assert_int_equal(s2_map(&s2, 0x40000000, 0x1000, 1, &tables), 0);
	assert_int_equal(table_s.live, 2);   /* the L2 from the failed attempt was kept and reused */
	/* no page source: lookups only */
	assert_int_equal(s2_map(&s2, 0x80000000, 0x1000, 1, NULL), -1);
}

/* ---------------- pmap ---------------- */

/* Another vCPU maps the page while this one zeroes its own outside the region's lock: the
 * racing source's first allocation faults the same page in (with the plain source) first. */
static uint64_t race_gpa;
static int raced;
static uint64_t racing_alloc(void *arg)
{
	(void)arg;
	if (!raced++)
		assert_int_equal(pmap_fault(pm, &s2, race_gpa, 1, &guest, &tables), PMAP_OK);
	return src_alloc(&guest_s);
}
static const struct page_source racing = { racing_alloc, src_free, &guest_s, 0 };

static void test_first_touch_race(void **state)
{
	(void)state;
	race_gpa = RAM_BASE + 0x7000;
	raced = 0;
	assert_int_equal(pmap_fault(pm, &s2, race_gpa + 0x10, 0, &racing, &tables), PMAP_OK);
	uint64_t e = pmap_lookup(pm, race_gpa);
	/* the winner's page (the first allocated) stays mapped; the loser's went back */
	assert_int_equal(guest_s.allocs, 2);
	assert_int_equal(guest_s.frees, 1);
	assert_int_equal(guest_s.live, 1);
	assert_true(e & PMAP_PRESENT);
	assert_int_equal(PMAP_ADDR(e), guest_s.page[0]);
	assert_int_equal(s2_lookup(&s2, race_gpa) & S2_ADDR_MASK, PMAP_ADDR(e));
	assert_int_equal(pm->touched, 1);
	assert_int_equal(pm->owned, 1);
	/* a page already present takes nothing before the lock */
	assert_int_equal(pmap_fault(pm, &s2, race_gpa, 1, &racing, &tables), PMAP_OK);
	assert_int_equal(guest_s.allocs, 2);
}

static void test_first_touch(void **state)
{
	(void)state;
	uint64_t gpa = RAM_BASE + 0x5123;
	assert_int_equal(pmap_lookup(pm, gpa), 0);
	assert_int_equal(pmap_fault(pm, &s2, gpa, 0, &guest, &tables), PMAP_OK);
	uint64_t e = pmap_lookup(pm, gpa);
	assert_int_equal(e & (PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED | PMAP_COW), PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED);
	assert_int_equal(guest_s.allocs, 1);
	assert_int_equal(PMAP_ADDR(e), guest_s.page[0]);
	assert_true(zero_page(ma(e)));
	assert_int_equal(pm->touched, 1);
	assert_int_equal(pm->owned, 1);
	assert_int_equal(pm->cow, 0);
	/* the page was cleaned for a guest running with caches off */
	assert_int_equal(arch_stub.dcache_cleans, 1);
	assert_ptr_equal(arch_stub.last_clean, ma(e));
	assert_int_equal(arch_stub.dcache_bytes, PAGE_SIZE);
	/* installed in stage 2, writable, at the page boundary */
	uint64_t d = s2_lookup(&s2, gpa & ~0xFFFULL);
	assert_int_equal(d & 3, 3);
	assert_int_equal(d & S2_ADDR_MASK, PMAP_ADDR(e));
	assert_int_equal(d & (3ULL << 6), S2_AP_RW);
	/* tables: one pmap leaf, one L2 and one L3 */
	assert_int_equal(table_s.allocs, 3);

	/* a second fault on the same page allocates nothing */
	assert_int_equal(pmap_fault(pm, &s2, gpa + 8, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(guest_s.allocs, 1);
	assert_int_equal(pm->touched, 1);
	assert_int_equal(pmap_lookup(pm, gpa), e);

	/* another 2 MiB: a second pmap leaf and L3 table; same L2 */
	assert_int_equal(pmap_fault(pm, &s2, gpa + (2 << 20), 0, &guest, &tables), PMAP_OK);
	assert_int_equal(table_s.allocs, 5);
	assert_int_equal(pm->touched, 2);
	assert_true(PMAP_ADDR(pmap_lookup(pm, gpa + (2 << 20))) != PMAP_ADDR(e));

	/* without a stage 2 (s2 == NULL) only the pmap is filled */
	assert_int_equal(pmap_fault(pm, NULL, gpa + PAGE_SIZE, 0, &guest, &tables), PMAP_OK);
	assert_true(pmap_lookup(pm, gpa + PAGE_SIZE) & PMAP_PRESENT);
	assert_int_equal(s2_lookup(&s2, (gpa + PAGE_SIZE) & ~0xFFFULL), 0);
}

static void test_outside(void **state)
{
	(void)state;
	uint64_t bad[] = { 0, RAM_BASE - 1, RAM_BASE + RAM_SIZE, RAM_BASE + RAM_SIZE + PAGE_SIZE, ~0ULL };
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(pmap_fault(pm, &s2, bad[i], 1, &guest, &tables), PMAP_OUTSIDE);
		assert_int_equal(pmap_map_cow(pm, bad[i], 0x1000, &tables), PMAP_OUTSIDE);
		assert_int_equal(pmap_lookup(pm, bad[i]), 0);
		assert_int_equal(pmap_gpa_to_ma(pm, &s2, bad[i], 0, &guest, &tables), 0);
	}
	assert_int_equal(guest_s.allocs + table_s.allocs, 0);
	/* the last byte of RAM is inside */
	assert_int_equal(pmap_fault(pm, &s2, RAM_BASE + RAM_SIZE - 1, 1, &guest, &tables), PMAP_OK);
}

static void test_cow(void **state)
{
	(void)state;
	uint8_t *img = image_page(0x31), *orig = image_page(0x31);
	uint64_t img_ma = (uint64_t)(uintptr_t)img, gpa = RAM_BASE + 0x10000;

	assert_int_equal(pmap_map_cow(pm, gpa, img_ma, &tables), PMAP_OK);
	uint64_t e = pmap_lookup(pm, gpa);
	assert_int_equal(e & (PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED | PMAP_COW), PMAP_PRESENT | PMAP_COW);
	assert_int_equal(PMAP_ADDR(e), img_ma);
	assert_int_equal(pm->touched, 1);
	assert_int_equal(pm->cow, 1);
	assert_int_equal(pm->owned, 0);
	/* mapping something else on top is refused */
	assert_int_equal(pmap_map_cow(pm, gpa, img_ma, &tables), PMAP_OUTSIDE);

	/* read fault: the shared page, read-only in stage 2, nothing allocated */
	assert_int_equal(pmap_fault(pm, &s2, gpa, 0, &guest, &tables), PMAP_OK);
	assert_int_equal(guest_s.allocs, 0);
	assert_int_equal(pmap_lookup(pm, gpa), e);
	uint64_t d = s2_lookup(&s2, gpa);
	assert_int_equal(d & S2_ADDR_MASK, img_ma);
	assert_int_equal(d & (3ULL << 6), S2_AP_RO);
	assert_int_equal(pm->cow, 1);
	assert_int_equal(pm->cow_breaks, 0);
	unsigned long flushes = arch_stub.s2_flushes;

	/* write fault: a private copy, writable */
	assert_int_equal(pmap_fault(pm, &s2, gpa + 0x10, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(guest_s.allocs, 1);
	uint64_t e2 = pmap_lookup(pm, gpa);
	assert_int_equal(e2 & (PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED | PMAP_COW), PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED);
	assert_true(PMAP_ADDR(e2) != img_ma);
	assert_memory_equal(ma(e2), orig, PAGE_SIZE);          /* content preserved */
	memset(ma(e2), 0xEE, 64);                               /* the guest writes its copy */
	assert_memory_equal(img, orig, PAGE_SIZE);              /* original untouched */
	assert_int_equal(pm->touched, 1);
	assert_int_equal(pm->owned, 1);
	assert_int_equal(pm->cow, 0);
	assert_int_equal(pm->cow_breaks, 1);
	/* stage 2 switched to the copy, read-write, with break-before-make */
	d = s2_lookup(&s2, gpa);
	assert_int_equal(d & S2_ADDR_MASK, PMAP_ADDR(e2));
	assert_int_equal(d & (3ULL << 6), S2_AP_RW);
	assert_int_equal(arch_stub.s2_flushes, flushes + 1);
	assert_int_equal(arch_stub.last_flush_ipa, gpa);
	assert_int_equal(arch_stub.last_flush_vmid, VMID);
	assert_true(arch_stub.icache_syncs >= 1);               /* the copy may be code */
	assert_ptr_equal(arch_stub.last_clean, ma(e2));

	/* another write: no further copy */
	assert_int_equal(pmap_fault(pm, &s2, gpa, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(guest_s.allocs, 1);
	assert_int_equal(pm->cow_breaks, 1);

	pmap_destroy(pm, &guest, &tables);
	assert_memory_equal(img, orig, PAGE_SIZE);              /* shared pages are not freed */
	low_free(img, 1);
	low_free(orig, 1);
}

static void test_gpa_to_ma(void **state)
{
	(void)state;
	uint8_t *img = image_page(0x55);
	uint64_t gpa = RAM_BASE + 0x3000;
	assert_int_equal(pmap_map_cow(pm, gpa, (uint64_t)(uintptr_t)img, &tables), PMAP_OK);
	/* reading goes to the shared page, with the offset */
	assert_int_equal(pmap_gpa_to_ma(pm, &s2, gpa + 0x123, 0, &guest, &tables), (uint64_t)(uintptr_t)img + 0x123);
	assert_int_equal(guest_s.allocs, 0);
	/* writing makes it private first */
	uint64_t w = pmap_gpa_to_ma(pm, &s2, gpa + 0x123, 1, &guest, &tables);
	assert_int_equal(guest_s.allocs, 1);
	assert_int_equal(w & 0xFFF, 0x123);
	assert_int_equal(w & ~0xFFFULL, guest_s.page[0]);
	assert_int_equal(*(uint8_t *)(uintptr_t)w, img[0x123]);
	/* an untouched page is faulted in */
	uint64_t z = pmap_gpa_to_ma(pm, &s2, RAM_BASE + 0x9000, 0, &guest, &tables);
	assert_true(z != 0);
	assert_int_equal(*(uint8_t *)(uintptr_t)z, 0);
	/* no memory: 0 */
	guest_s.fail_after = guest_s.allocs;
	assert_int_equal(pmap_gpa_to_ma(pm, &s2, RAM_BASE + 0xA000, 0, &guest, &tables), 0);
	pmap_destroy(pm, &guest, &tables);
	low_free(img, 1);
}

/* Devices copy through pmap_copy: across pages, reads from a shared page leave it shared,
 * writes make it private first and never touch the shared page. */
static void test_copy(void **state)
{
	(void)state;
	uint8_t *img = image_page(0x66);
	uint64_t gpa = RAM_BASE + 0x5000;
	assert_int_equal(pmap_map_cow(pm, gpa, (uint64_t)(uintptr_t)img, &tables), PMAP_OK);
	uint8_t buf[64];
	/* a read spanning the shared page and an untouched one */
	assert_int_equal(pmap_copy(pm, &s2, gpa + PAGE_SIZE - 32, buf, 64, 0, &guest, &tables), 0);
	assert_memory_equal(buf, img + PAGE_SIZE - 32, 32);
	for (int i = 32; i < 64; i++)
		assert_int_equal(buf[i], 0);
	assert_true(pmap_lookup(pm, gpa) & PMAP_COW);
	/* a write into the shared page copies it for the VM */
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(pmap_copy(pm, &s2, gpa + 8, buf, 16, 1, &guest, &tables), 0);
	uint64_t e = pmap_lookup(pm, gpa);
	assert_true((e & PMAP_OWNED) && (e & PMAP_WRITE));
	uint8_t *priv = (uint8_t *)(uintptr_t)PMAP_ADDR(e);
	assert_int_equal(priv[7], img[7]);
	assert_int_equal(priv[8], 0x77);
	assert_int_equal(priv[23], 0x77);
	assert_int_equal(priv[24], img[24]);
	assert_int_equal(img[8], (uint8_t)(0x66 + 8 * 7));               /* the shared page is untouched */
	/* outside RAM, or running past its end */
	assert_int_equal(pmap_copy(pm, &s2, RAM_BASE - 16, buf, 8, 0, &guest, &tables), -1);
	assert_int_equal(pmap_copy(pm, &s2, RAM_BASE + RAM_SIZE - 8, buf, 16, 0, &guest, &tables), -1);
	pmap_destroy(pm, &guest, &tables);
	low_free(img, 1);
}

static void test_nomem(void **state)
{
	(void)state;
	uint64_t gpa = RAM_BASE + 0x200000;
	/* no leaf for the pmap */
	table_s.fail_after = 0;
	assert_int_equal(pmap_fault(pm, &s2, gpa, 0, &guest, &tables), PMAP_NOMEM);
	assert_int_equal(pmap_map_cow(pm, gpa, 0x1000, &tables), PMAP_NOMEM);
	assert_int_equal(pmap_lookup(pm, gpa), 0);
	/* a first touch takes its page before the region (and its leaf): it went back */
	assert_int_equal(guest_s.allocs, 1);
	assert_int_equal(guest_s.live, 0);
	/* leaf, but no guest page */
	table_s.fail_after = -1;
	guest_s.fail_after = 0;
	assert_int_equal(pmap_fault(pm, &s2, gpa, 0, &guest, &tables), PMAP_NOMEM);
	assert_int_equal(pmap_lookup(pm, gpa), 0);
	assert_int_equal(pm->touched, 0);
	assert_int_equal(pm->owned, 0);
	/* guest pages run out after 3 */
	guest_s.fail_after = guest_s.allocs + 3;
	for (int i = 0; i < 3; i++)
		assert_int_equal(pmap_fault(pm, &s2, gpa + i * PAGE_SIZE, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_fault(pm, &s2, gpa + 3 * PAGE_SIZE, 1, &guest, &tables), PMAP_NOMEM);
	assert_int_equal(pm->touched, 3);
	/* a COW break without memory leaves the shared mapping in place */
	uint8_t *img = image_page(1);
	assert_int_equal(pmap_map_cow(pm, gpa + 8 * PAGE_SIZE, (uint64_t)(uintptr_t)img, &tables), PMAP_OK);
	assert_int_equal(pmap_fault(pm, &s2, gpa + 8 * PAGE_SIZE, 1, &guest, &tables), PMAP_NOMEM);
	uint64_t e = pmap_lookup(pm, gpa + 8 * PAGE_SIZE);
	assert_int_equal(PMAP_ADDR(e), (uint64_t)(uintptr_t)img);
	assert_true(e & PMAP_COW);
	assert_int_equal(pm->cow, 1);
	assert_int_equal(pm->cow_breaks, 0);
	/* stage-2 tables run out (the pmap leaf exists, the L3 table cannot be made) */
	guest_s.fail_after = -1;
	uint64_t far = RAM_BASE + (6 << 20);
	assert_int_equal(pmap_fault(pm, NULL, far, 0, &guest, &tables), PMAP_OK);
	table_s.fail_after = table_s.allocs;
	assert_int_equal(pmap_fault(pm, &s2, far + PAGE_SIZE, 0, &guest, &tables), PMAP_NOMEM);
	assert_true(pmap_lookup(pm, far + PAGE_SIZE) & PMAP_PRESENT);   /* refilled on the next fault */
	assert_int_equal(s2_lookup(&s2, far + PAGE_SIZE), 0);
	/* with memory back, the same faults succeed */
	table_s.fail_after = -1;
	assert_int_equal(pmap_fault(pm, &s2, gpa + 3 * PAGE_SIZE, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_fault(pm, &s2, gpa + 8 * PAGE_SIZE, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_fault(pm, &s2, far + PAGE_SIZE, 0, &guest, &tables), PMAP_OK);
	assert_true(s2_lookup(&s2, far + PAGE_SIZE) & 1);
	assert_int_equal(pm->cow_breaks, 1);
	pmap_destroy(pm, &guest, &tables);
	low_free(img, 1);
}

static void test_destroy_frees_everything(void **state)
{
	(void)state;
	uint8_t *img = image_page(9);
	/* pages in three different 2 MiB leaves, and two COW pages */
	uint64_t gpas[] = { 0, 0x1000, 0x1FF000, 0x200000, 0x3E00000, 0x3FFF000 };
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(pmap_fault(pm, &s2, RAM_BASE + gpas[i], 1, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_map_cow(pm, RAM_BASE + 0x5000, (uint64_t)(uintptr_t)img, &tables), PMAP_OK);
	assert_int_equal(pmap_map_cow(pm, RAM_BASE + 0x6000, (uint64_t)(uintptr_t)img, &tables), PMAP_OK);
	assert_int_equal(pmap_fault(pm, &s2, RAM_BASE + 0x6000, 1, &guest, &tables), PMAP_OK);   /* broken */
	assert_int_equal(guest_s.live, 7);
	assert_int_equal(pm->owned, 7);
	assert_int_equal(pm->touched, 8);
	assert_int_equal(pm->cow, 1);
	long s2_tables = 1 + 3;                 /* one L2, three L3 */
	assert_int_equal(table_s.live, 3 + s2_tables);

	pmap_destroy(pm, &guest, &tables);
	assert_int_equal(guest_s.live, 0);
	assert_int_equal(guest_s.frees, 7);
	assert_int_equal(table_s.live, s2_tables);   /* pmap leaves gone, stage 2 is separate */
	assert_int_equal(pm->touched, 0);
	assert_int_equal(pm->owned, 0);
	assert_int_equal(pm->cow, 0);
	assert_int_equal(pmap_lookup(pm, RAM_BASE), 0);
	s2_destroy(&s2, &tables);
	assert_int_equal(table_s.live, 0);
	/* destroy twice is harmless */
	pmap_destroy(pm, &guest, &tables);
	assert_int_equal(guest_s.frees, 7);
	low_free(img, 1);
}

/* Guest pages come from a one-node g_palloc (so the memmap is live); returns an "image"
 * page filled with fill and marked MM_IMAGE. */
static uint64_t palloc_with_image_page(int fill)
{
	const int pages = PALLOC_PAGES;
	palloc_mem = low_alloc(pages, 1);
	palloc_reset(&g_palloc, 1);
	uint64_t base = (uint64_t)(uintptr_t)palloc_mem;
	assert_int_equal(palloc_add_range(&g_palloc, 0, base, base + pages * PAGE_SIZE), 0);
	guest_s.use_palloc = 1;
	uint64_t img = palloc_alloc(&g_palloc, 0, NULL);
	memset((void *)(uintptr_t)img, fill, PAGE_SIZE);
	memmap_of(&g_palloc, img)->use = MM_IMAGE;
	return img;
}

/* With g_palloc set up, the pmap records owners and COW sharers in the memmap. */
static void test_memmap_records(void **state)
{
	(void)state;
	uint64_t img = palloc_with_image_page(0x77);

	uint64_t gpa = RAM_BASE + 0x42000;
	assert_int_equal(pmap_fault(pm, &s2, gpa, 0, &guest, &tables), PMAP_OK);
	struct memmap_entry *m = memmap_of(&g_palloc, PMAP_ADDR(pmap_lookup(pm, gpa)));
	assert_non_null(m);
	assert_int_equal(m->use, MM_GUEST);
	assert_int_equal(m->vm, VM_INDEX);
	assert_int_equal(m->gpfn, 0x42);

	/* two COW mappings of the image page: two sharers; one breaks: one left */
	assert_int_equal(pmap_map_cow(pm, RAM_BASE + 0x1000, img, &tables), PMAP_OK);
	assert_int_equal(pmap_map_cow(pm, RAM_BASE + 0x2000, img, &tables), PMAP_OK);
	struct memmap_entry *mi = memmap_of(&g_palloc, img);
	assert_int_equal(mi->sharers, 2);
	assert_int_equal(pmap_count_shared(pm), 2);             /* both mappings see 2 sharers */
	assert_int_equal(pmap_fault(pm, &s2, RAM_BASE + 0x2000, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(mi->sharers, 1);
	assert_int_equal(pmap_count_shared(pm), 0);             /* the last sharer shares with nobody */
	assert_int_equal(mi->use, MM_IMAGE);
	struct memmap_entry *mc = memmap_of(&g_palloc, PMAP_ADDR(pmap_lookup(pm, RAM_BASE + 0x2000)));
	assert_int_equal(mc->use, MM_GUEST);
	assert_int_equal(mc->gpfn, 2);

	uint64_t before = palloc_free_pages(&g_palloc, 0);
	pmap_destroy(pm, &guest, &tables);
	assert_int_equal(mi->sharers, 0);                       /* the remaining sharer dropped */
	assert_int_equal(palloc_free_pages(&g_palloc, 0), before + 2);   /* two owned pages back */
	assert_int_equal(m->use, MM_FREE);
	guest_s.use_palloc = 0;
}


static void test_prefault_and_shared(void **state)
{
	(void)state;
	/* a first-touch fault, then the rest of its aligned 16-page block is filled too */
	uint64_t gpa = RAM_BASE + 0x23000;                  /* block 0x20000..0x2ffff */
	assert_int_equal(pmap_fault(pm, &s2, gpa, 0, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_map_cow(pm, RAM_BASE + 0x21000, 0x80000000, &tables), PMAP_OK);
	uint64_t before = guest_s.allocs;
	assert_int_equal(pmap_prefault(pm, &s2, gpa, 16, &guest, &tables), PMAP_OK);
	/* 16 pages, minus the faulting one and the copy-on-write one already there */
	assert_int_equal(guest_s.allocs - before, 14);
	for (uint64_t a = RAM_BASE + 0x20000; a < RAM_BASE + 0x30000; a += PAGE_SIZE)
		assert_true(pmap_lookup(pm, a) & PMAP_PRESENT);
	assert_int_equal(pmap_lookup(pm, RAM_BASE + 0x30000), 0);
	assert_true(pmap_lookup(pm, RAM_BASE + 0x21000) & PMAP_COW);   /* left as it was */
	/* near the end of RAM the block is clipped, not overrun */
	uint64_t last = RAM_BASE + pm->npages * PAGE_SIZE - PAGE_SIZE;
	assert_int_equal(pmap_fault(pm, &s2, last, 0, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_prefault(pm, &s2, last, 16, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_lookup(pm, last + PAGE_SIZE), 0);
	/* a COW page counts as shared with other VMs only when its memmap says >1 sharer;
	 * this address is in no palloc range, so nothing is known about it */
	assert_int_equal(pmap_count_shared(pm), 0);
}

static void test_merge_identical_copies(void **state)
{
	(void)state;
	/* two VMs (pm and pm2) each copied image page img at the same gpa and wrote it alike */
	uint64_t img = palloc_with_image_page(0x11);

	struct pmap *pm2 = calloc(1, sizeof(*pm2));
	pmap_init(pm2, RAM_BASE, RAM_SIZE, VM_INDEX + 1);
	struct stage2 s2b = { .root = (uint64_t)(uintptr_t)low_alloc(2, 2), .vmid = VMID + 1 };
	uint64_t gpa = RAM_BASE + 0x7000;
	struct pmap *p[2] = { pm, pm2 };
	struct stage2 *s[2] = { &s2, &s2b };
	uint64_t ma[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pmap_map_cow(p[i], gpa, img, &tables), PMAP_OK);
		assert_int_equal(pmap_fault(p[i], s[i], gpa, 1, &guest, &tables), PMAP_OK);   /* the copy */
		ma[i] = PMAP_ADDR(pmap_lookup(p[i], gpa));
		memset((void *)(uintptr_t)ma[i], 0x22, 64);                 /* identical writes */
		assert_int_equal(memmap_of(&g_palloc, ma[i])->origin, img >> PAGE_SHIFT);
	}
	assert_int_equal(memmap_of(&g_palloc, img)->sharers, 0);
	uint64_t free_before = palloc_free_pages(&g_palloc, 0);

	/* protect: read-only in pmap and stage 2, no flush (the caller batches it) */
	unsigned long flushes = arch_stub.s2_flushes;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pmap_protect(p[i], s[i], gpa, ma[i]), 0);
		assert_false(pmap_lookup(p[i], gpa) & PMAP_WRITE);
		assert_int_equal(s2_lookup(s[i], gpa) & (3ULL << 6), S2_AP_RO);
	}
	assert_int_equal(arch_stub.s2_flushes, flushes);
	assert_int_equal(pmap_protect(pm, &s2, gpa, ma[0]), -1);          /* not twice */

	/* share: the first copy becomes the shared page, the second maps it */
	assert_int_equal(pmap_share(pm, &s2, gpa, ma[0], ma[0]), 0);
	assert_int_equal(memmap_of(&g_palloc, ma[0])->use, MM_SHARED);
	assert_int_equal(pmap_share(pm2, &s2b, gpa, ma[1], ma[0]), 0);
	assert_int_equal(pmap_lookup(pm2, gpa), ma[0] | PMAP_PRESENT | PMAP_COW);
	assert_int_equal(s2_lookup(&s2b, gpa), 0);                        /* refilled on next touch */
	assert_int_equal(memmap_of(&g_palloc, ma[0])->sharers, 3);         /* two VMs + the caller's hold */
	pmap_shared_put(ma[0]);
	assert_int_equal(memmap_of(&g_palloc, ma[0])->sharers, 2);
	assert_int_equal(pm2->owned, 0);
	assert_int_equal(pm2->cow, 1);
	assert_int_equal(pm2->merged, 1);
	assert_int_equal(pmap_count_shared(pm2), 1);
	palloc_free(&g_palloc, ma[1], NULL);                              /* the caller's job, after a flush */
	for (int i = 0; i < MAX_LIVE; i++)                               /* handed back outside the source */
		if (guest_s.page[i] == ma[1])
			guest_s.page[i] = 0;
	assert_int_equal(palloc_free_pages(&g_palloc, 0), free_before + 1);

	/* writes: each VM gets its own copy again; the last one out frees the shared page */
	assert_int_equal(pmap_fault(pm2, &s2b, gpa, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(memmap_of(&g_palloc, ma[0])->sharers, 1);
	uint64_t copy2 = PMAP_ADDR(pmap_lookup(pm2, gpa));
	assert_int_equal(((uint8_t *)(uintptr_t)copy2)[0], 0x22);
	assert_int_equal(memmap_of(&g_palloc, copy2)->origin, img >> PAGE_SHIFT);  /* still the image page */
	uint64_t free_mid = palloc_free_pages(&g_palloc, 0);
	assert_int_equal(pmap_fault(pm, &s2, gpa, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(palloc_free_pages(&g_palloc, 0), free_mid);     /* one in, the shared one out */
	assert_int_equal(memmap_of(&g_palloc, ma[0])->use, MM_FREE);

	/* different contents are not shared; a protected page that was not shared comes back
	 * writable on the next write */
	uint64_t gpa2 = gpa + PAGE_SIZE;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pmap_map_cow(p[i], gpa2, img, &tables), PMAP_OK);
		assert_int_equal(pmap_fault(p[i], s[i], gpa2, 1, &guest, &tables), PMAP_OK);
		ma[i] = PMAP_ADDR(pmap_lookup(p[i], gpa2));
		((uint8_t *)(uintptr_t)ma[i])[100] = (uint8_t)i;
		assert_int_equal(pmap_protect(p[i], s[i], gpa2, ma[i]), 0);
	}
	assert_int_equal(pmap_share(pm, &s2, gpa2, ma[0], ma[0]), 0);
	assert_int_equal(pmap_share(pm2, &s2b, gpa2, ma[1], ma[0]), -1);
	pmap_shared_put(ma[0]);
	assert_int_equal(memmap_of(&g_palloc, ma[0])->use, MM_SHARED);      /* pm still maps it */
	assert_int_equal(pmap_fault(pm2, &s2b, gpa2, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(pmap_lookup(pm2, gpa2), ma[1] | PMAP_PRESENT | PMAP_WRITE | PMAP_OWNED);
	assert_int_equal(s2_lookup(&s2b, gpa2) & (3ULL << 6), S2_AP_RW);

	pmap_destroy(pm2, &guest, &tables);
	s2_destroy(&s2b, &tables);
	low_free((void *)(uintptr_t)s2b.root, 2);
	free(pm2);
	pmap_destroy(pm, &guest, &tables);
	guest_s.use_palloc = 0;
}

/* The VM whose copy became the shared page writes it again before its twin maps it: the
 * write copies the page and drops that VM's reference, but the merge's hold keeps the page
 * alive for the twin (it used to be freed and reused under the twin's feet). */
static void test_merge_canon_written_before_twin(void **state)
{
	(void)state;
	uint64_t img = palloc_with_image_page(0x33);
	struct pmap *pm2 = calloc(1, sizeof(*pm2));
	pmap_init(pm2, RAM_BASE, RAM_SIZE, VM_INDEX + 1);
	struct stage2 s2b = { .root = (uint64_t)(uintptr_t)low_alloc(2, 2), .vmid = VMID + 1 };
	uint64_t gpa = RAM_BASE + 0x9000;
	struct pmap *p[2] = { pm, pm2 };
	struct stage2 *s[2] = { &s2, &s2b };
	uint64_t ma[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pmap_map_cow(p[i], gpa, img, &tables), PMAP_OK);
		assert_int_equal(pmap_fault(p[i], s[i], gpa, 1, &guest, &tables), PMAP_OK);
		ma[i] = PMAP_ADDR(pmap_lookup(p[i], gpa));
		memset((void *)(uintptr_t)ma[i], 0x44, 128);
		assert_int_equal(pmap_protect(p[i], s[i], gpa, ma[i]), 0);
	}
	assert_int_equal(pmap_share(pm, &s2, gpa, ma[0], ma[0]), 0);
	assert_int_equal(pmap_fault(pm, &s2, gpa, 1, &guest, &tables), PMAP_OK);   /* the canon VM writes */
	assert_int_not_equal(PMAP_ADDR(pmap_lookup(pm, gpa)), ma[0]);
	assert_int_equal(memmap_of(&g_palloc, ma[0])->use, MM_SHARED);             /* held, not freed */
	assert_int_equal(memmap_of(&g_palloc, ma[0])->sharers, 1);
	assert_int_equal(pmap_share(pm2, &s2b, gpa, ma[1], ma[0]), 0);
	palloc_free(&g_palloc, ma[1], NULL);
	for (int i = 0; i < MAX_LIVE; i++)
		if (guest_s.page[i] == ma[1])
			guest_s.page[i] = 0;
	pmap_shared_put(ma[0]);
	assert_int_equal(memmap_of(&g_palloc, ma[0])->use, MM_SHARED);             /* pm2 maps it */
	assert_int_equal(memmap_of(&g_palloc, ma[0])->sharers, 1);
	assert_int_equal(((uint8_t *)(uintptr_t)ma[0])[127], 0x44);
	/* the last mapping gone, the page goes back to the allocator */
	assert_int_equal(pmap_fault(pm2, &s2b, gpa, 1, &guest, &tables), PMAP_OK);
	assert_int_equal(memmap_of(&g_palloc, ma[0])->use, MM_FREE);

	pmap_destroy(pm2, &guest, &tables);
	s2_destroy(&s2b, &tables);
	low_free((void *)(uintptr_t)s2b.root, 2);
	free(pm2);
	pmap_destroy(pm, &guest, &tables);
	guest_s.use_palloc = 0;
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_s2_descriptors),
		T(test_s2_break_before_make),
		T(test_s2_destroy),
		T(test_s2_nomem),
		T(test_first_touch),
		T(test_first_touch_race),
		T(test_outside),
		T(test_cow),
		T(test_gpa_to_ma),
		T(test_copy),
		T(test_nomem),
		T(test_destroy_frees_everything),
		T(test_memmap_records),
		T(test_prefault_and_shared),
		T(test_merge_identical_copies),
		T(test_merge_canon_written_before_twin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
