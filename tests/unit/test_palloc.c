/* palloc: per-node page allocator on host memory (aligned_alloc'd "machine" ranges):
 * accounting, exhaustion, distance-ordered fallback, per-CPU caches, the memmap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "palloc.h"
#include "bits.h"

#define REGION_PAGES 200
/* 200 memmap entries of 16 bytes take one page at the start of the range */
#define USABLE (REGION_PAGES - 1)

static struct palloc pa;
static uint8_t *region[4];

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++) {
		region[i] = aligned_alloc(PAGE_SIZE, REGION_PAGES * PAGE_SIZE);
		assert_non_null(region[i]);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		free(region[i]);
	return 0;
}

static uint64_t base_of(int i) { return (uint64_t)(uintptr_t)region[i]; }
static uint64_t end_of(int i) { return base_of(i) + REGION_PAGES * PAGE_SIZE; }

/* nnodes nodes, node i owning region i */
static void make(int nnodes)
{
	palloc_reset(&pa, nnodes);
	for (int i = 0; i < nnodes; i++)
		assert_int_equal(palloc_add_range(&pa, i, base_of(i), end_of(i)), 0);
}

static int in_region(uint64_t page, int i) { return page >= base_of(i) && page < end_of(i); }

static void test_add_range(void **state)
{
	(void)state;
	make(2);
	assert_int_equal(palloc_free_pages(&pa, 0), USABLE);
	assert_int_equal(palloc_free_pages(&pa, 1), USABLE);
	/* bad node, empty range, a range too small to hold its memmap and one page */
	assert_int_equal(palloc_add_range(&pa, 2, base_of(2), end_of(2)), -1);
	assert_int_equal(palloc_add_range(&pa, -1, base_of(2), end_of(2)), -1);
	assert_int_equal(palloc_add_range(&pa, 0, base_of(2), base_of(2)), -1);
	assert_int_equal(palloc_add_range(&pa, 0, base_of(2), base_of(2) + PAGE_SIZE), -1);
	/* unaligned bounds are trimmed to whole pages: 2 pages -> memmap + 1 usable */
	assert_int_equal(palloc_add_range(&pa, 0, base_of(2) + 1, base_of(2) + 4 * PAGE_SIZE - 1), 0);
	assert_int_equal(palloc_free_pages(&pa, 0), USABLE + 1);
	/* at most PALLOC_MAX_RANGES per node */
	for (int i = 1; i < PALLOC_MAX_RANGES - 1; i++)
		assert_int_equal(palloc_add_range(&pa, 0, base_of(2) + 10 * i * PAGE_SIZE,
						  base_of(2) + (10 * i + 5) * PAGE_SIZE), 0);
	assert_int_equal(palloc_add_range(&pa, 0, base_of(3), end_of(3)), -1);
}

static void test_alloc_free(void **state)
{
	(void)state;
	make(2);
	uint64_t a = palloc_alloc(&pa, 1, NULL), b = palloc_alloc(&pa, 1, NULL);
	assert_true(a && b && a != b);
	assert_int_equal(a % PAGE_SIZE, 0);
	assert_true(in_region(a, 1) && in_region(b, 1));
	/* the memmap's own page is never handed out */
	assert_true(a > base_of(1) && b > base_of(1));
	assert_int_equal(palloc_node_of(&pa, a), 1);
	assert_int_equal(palloc_free_pages(&pa, 1), USABLE - 2);
	assert_int_equal(palloc_free_pages(&pa, 0), USABLE);
	/* pages are usable memory */
	memset((void *)(uintptr_t)a, 0xA5, PAGE_SIZE);
	palloc_free(&pa, a, NULL);
	assert_int_equal(palloc_free_pages(&pa, 1), USABLE - 1);
	/* a freed page comes back before untouched ones */
	assert_int_equal(palloc_alloc(&pa, 1, NULL), a);
	/* a bad node number falls back to node 0 */
	assert_true(in_region(palloc_alloc(&pa, 7, NULL), 0));
	assert_true(in_region(palloc_alloc(&pa, -3, NULL), 0));
}

static void test_exhaustion(void **state)
{
	(void)state;
	make(1);
	uint64_t pages[USABLE];
	for (int i = 0; i < USABLE; i++) {
		pages[i] = palloc_alloc(&pa, 0, NULL);
		assert_true(in_region(pages[i], 0));
		for (int j = 0; j < i; j++)
			assert_true(pages[j] != pages[i]);
	}
	assert_int_equal(palloc_free_pages(&pa, 0), 0);
	assert_int_equal(palloc_alloc(&pa, 0, NULL), 0);
	assert_int_equal(palloc_alloc(&pa, 0, NULL), 0);
	palloc_free(&pa, pages[17], NULL);
	assert_int_equal(palloc_free_pages(&pa, 0), 1);
	assert_int_equal(palloc_alloc(&pa, 0, NULL), pages[17]);
	assert_int_equal(palloc_alloc(&pa, 0, NULL), 0);
	/* everything back */
	for (int i = 0; i < USABLE; i++)
		palloc_free(&pa, pages[i], NULL);
	assert_int_equal(palloc_free_pages(&pa, 0), USABLE);
}

/* Page moves ask for a page of the moved page's cache colour on one node: it comes from the
 * free list or the frontier (the pages skipped stay allocatable: nothing is lost), never
 * from another node; without one of the colour, any page of the node. */
#define BIG_PAGES (3 * PALLOC_COLOURS)
static uint64_t colour(uint64_t page) { return (page >> PAGE_SHIFT) % PALLOC_COLOURS; }

static void test_alloc_colour(void **state)
{
	(void)state;
	uint8_t *big = aligned_alloc(PAGE_SIZE, BIG_PAGES * PAGE_SIZE);
	assert_non_null(big);
	uint64_t bb = (uint64_t)(uintptr_t)big, be = bb + BIG_PAGES * PAGE_SIZE;
	palloc_reset(&pa, 2);
	assert_int_equal(palloc_add_range(&pa, 0, base_of(0), end_of(0)), 0);
	assert_int_equal(palloc_add_range(&pa, 1, bb, be), 0);
	uint64_t total = palloc_free_pages(&pa, 1);
	/* colours ahead of, at and just behind the frontier's, from the frontier */
	uint64_t front = palloc_alloc(&pa, 1, NULL);
	palloc_free(&pa, front, NULL);
	uint64_t like[] = { front + 5 * PAGE_SIZE, front + PALLOC_COLOURS * PAGE_SIZE, front - PAGE_SIZE,
			    bb + 200 * PAGE_SIZE, base_of(0) };
	uint64_t got[16];
	int n = 0;
	for (unsigned i = 0; i < sizeof like / sizeof like[0]; i++) {
		uint64_t p = palloc_alloc_colour(&pa, 1, like[i]);
		assert_true(p >= bb && p < be);
		assert_int_equal(colour(p), colour(like[i]));
		for (int j = 0; j < n; j++)
			assert_true(got[j] != p);
		got[n++] = p;
	}
	assert_int_equal(palloc_free_pages(&pa, 1), total - (uint64_t)n);
	/* a freed page of the colour is found on the free list */
	palloc_free(&pa, got[2], NULL);
	assert_int_equal(palloc_alloc_colour(&pa, 1, got[2] + 7 * PALLOC_COLOURS * PAGE_SIZE), got[2]);
	/* node 0 has fewer pages than colours: a missing colour gives another page of node 0 */
	uint64_t p0 = palloc_alloc_colour(&pa, 0, base_of(0) + REGION_PAGES * PAGE_SIZE);
	assert_true(in_region(p0, 0));
	/* every page still allocatable exactly once, and then none from node 1, never node 0's */
	uint64_t left = palloc_free_pages(&pa, 1), seen = 0;
	for (uint64_t i = 0; i < left; i++) {
		uint64_t p = i % 3 ? palloc_alloc(&pa, 1, NULL) : palloc_alloc_colour(&pa, 1, like[i % 5]);
		assert_true(p >= bb && p < be);
		seen++;
	}
	assert_int_equal(seen, left);
	assert_int_equal(palloc_free_pages(&pa, 1), 0);
	assert_int_equal(palloc_alloc_colour(&pa, 1, like[0]), 0);
	assert_int_equal(palloc_alloc_colour(&pa, 5, like[0]), 0);
	assert_int_equal(palloc_alloc_colour(&pa, -1, like[0]), 0);
	free(big);
}

static void drain(int node, int expect_from, int count)
{
	for (int i = 0; i < count; i++) {
		uint64_t p = palloc_alloc(&pa, node, NULL);
		assert_true(p != 0);
		assert_int_equal(palloc_node_of(&pa, p), expect_from);
	}
}

static void test_fallback_by_distance(void **state)
{
	(void)state;
	make(3);
	uint32_t dist[8][8] = { { 0 } };
	/* from node 0: node 2 is nearer than node 1 */
	uint32_t d[3][3] = { { 10, 40, 20 }, { 40, 10, 20 }, { 20, 20, 10 } };
	for (int a = 0; a < 3; a++)
		for (int b = 0; b < 3; b++)
			dist[a][b] = d[a][b];
	palloc_set_distances(&pa, dist);
	assert_int_equal(pa.order[0][0], 0);
	assert_int_equal(pa.order[0][1], 2);
	assert_int_equal(pa.order[0][2], 1);

	drain(0, 0, USABLE);
	drain(0, 2, USABLE);
	drain(0, 1, USABLE);
	assert_int_equal(palloc_alloc(&pa, 0, NULL), 0);
	assert_int_equal(palloc_alloc(&pa, 1, NULL), 0);
	for (int n = 0; n < 3; n++)
		assert_int_equal(palloc_free_pages(&pa, n), 0);
}

static void test_fallback_ties_and_default(void **state)
{
	(void)state;
	/* without distances: round robin starting at the node itself */
	make(4);
	assert_int_equal(pa.order[2][0], 2);
	assert_int_equal(pa.order[2][1], 3);
	assert_int_equal(pa.order[2][3], 1);
	drain(2, 2, USABLE);
	drain(2, 3, 1);

	/* equal distances keep node-number order after the local node */
	make(4);
	uint32_t dist[8][8];
	for (int a = 0; a < 8; a++)
		for (int b = 0; b < 8; b++)
			dist[a][b] = a == b ? 10 : 20;
	palloc_set_distances(&pa, dist);
	const uint8_t want[4] = { 3, 0, 1, 2 };
	assert_memory_equal(pa.order[3], want, 4);
	drain(3, 3, USABLE);
	drain(3, 0, 1);
}

static void test_percpu_cache(void **state)
{
	(void)state;
	make(2);
	struct palloc_cache c = { .node = 1 };
	uint64_t a = palloc_alloc(&pa, 1, &c);
	assert_true(in_region(a, 1));
	assert_int_equal(c.n, 0);              /* an empty cache is not refilled by alloc */
	palloc_free(&pa, a, &c);
	assert_int_equal(c.n, 1);              /* freed into the cache ... */
	assert_int_equal(c.page[0], a);
	assert_int_equal(palloc_free_pages(&pa, 1), USABLE);   /* ... and counted as free */
	/* the cache only serves its own node */
	uint64_t b = palloc_alloc(&pa, 0, &c);
	assert_true(in_region(b, 0));
	assert_int_equal(c.n, 1);
	assert_int_equal(palloc_alloc(&pa, 1, &c), a);
	assert_int_equal(c.n, 0);
	assert_int_equal(palloc_free_pages(&pa, 1), USABLE - 1);
	/* a page of another node bypasses the cache */
	palloc_free(&pa, b, &c);
	assert_int_equal(c.n, 0);
	assert_int_equal(palloc_free_pages(&pa, 0), USABLE);

	/* the cache holds PCACHE_SIZE pages; more go back to the node's list */
	uint64_t pages[PCACHE_SIZE + 3];
	for (int i = 0; i < PCACHE_SIZE + 3; i++)
		pages[i] = palloc_alloc(&pa, 1, &c);
	for (int i = 0; i < PCACHE_SIZE + 3; i++)
		palloc_free(&pa, pages[i], &c);
	assert_int_equal(c.n, PCACHE_SIZE);
	assert_int_equal(palloc_free_pages(&pa, 1), USABLE - 1);   /* only 'a' is still out */
	/* LIFO: the last page cached is the first handed out */
	assert_int_equal(palloc_alloc(&pa, 1, &c), pages[PCACHE_SIZE - 1]);
	/* the overflow went to the node's lists: a cacheless alloc gets one of those three */
	uint64_t o = palloc_alloc(&pa, 1, NULL);
	assert_true(o == pages[PCACHE_SIZE] || o == pages[PCACHE_SIZE + 1] || o == pages[PCACHE_SIZE + 2]);
}

/* Free pages wait on one list per colour: a page of any colour is found without a search,
 * and plain allocations take the colours in turn, so pages freed together and allocated
 * again do not come back in one cache set. */
static void test_colour_lists(void **state)
{
	(void)state;
	enum { N = 2 * PALLOC_COLOURS + 8 };
	uint8_t *big = aligned_alloc(PAGE_SIZE, (N + 64) * PAGE_SIZE);
	assert_non_null(big);
	uint64_t bb = (uint64_t)(uintptr_t)big;
	palloc_reset(&pa, 1);
	assert_int_equal(palloc_add_range(&pa, 0, bb, bb + (N + 64) * PAGE_SIZE), 0);
	static uint64_t pg[N];
	for (int i = 0; i < N; i++)
		pg[i] = palloc_alloc(&pa, 0, NULL);
	for (int i = 0; i < N; i++)
		palloc_free(&pa, pg[i], NULL);
	/* every colour at once from its list: the frontier does not move */
	uint64_t before = palloc_free_pages(&pa, 0);
	for (unsigned c = 0; c < PALLOC_COLOURS; c++) {
		uint64_t p = palloc_alloc_colour(&pa, 0, (uint64_t)c << PAGE_SHIFT);
		assert_int_equal(colour(p), c);
		assert_true(p >= pg[0] && p <= pg[N - 1]);
	}
	assert_int_equal(palloc_free_pages(&pa, 0), before - PALLOC_COLOURS);
	/* the rest, plainly: consecutive pages differ in colour until one colour is left */
	uint64_t prev = palloc_alloc(&pa, 0, NULL);
	for (int i = 1; i < N - PALLOC_COLOURS - 8; i++) {
		uint64_t p = palloc_alloc(&pa, 0, NULL);
		assert_true(p >= pg[0] && p <= pg[N - 1]);
		assert_true(colour(p) != colour(prev));
		prev = p;
	}
	free(big);
}


static void test_used_range(void **state)
{
	(void)state;
	make(1);
	static struct memmap_entry mm[REGION_PAGES];
	uint64_t before = palloc_free_pages(&pa, 0);
	assert_int_equal(palloc_add_used_range(&pa, 0, base_of(2), end_of(2), mm, MM_IMAGE), 0);
	/* nothing to hand out, but every page has a record */
	assert_int_equal(palloc_free_pages(&pa, 0), before);
	assert_ptr_equal(memmap_of(&pa, base_of(2)), &mm[0]);
	assert_ptr_equal(memmap_of(&pa, end_of(2) - 1), &mm[REGION_PAGES - 1]);
	assert_int_equal(mm[5].use, MM_IMAGE);
	assert_int_equal(palloc_node_of(&pa, base_of(2) + PAGE_SIZE), 0);
	for (uint64_t i = 0; i < USABLE + 4; i++) {
		uint64_t p = palloc_alloc(&pa, 0, NULL);
		assert_false(in_region(p, 2));
	}
	assert_int_equal(palloc_add_used_range(&pa, 3, base_of(2), end_of(2), mm, MM_IMAGE), -1);
}

static void test_memmap(void **state)
{
	(void)state;
	make(2);
	uint64_t a = palloc_alloc(&pa, 0, NULL), b = palloc_alloc(&pa, 1, NULL);
	struct memmap_entry *ma = memmap_of(&pa, a), *mb = memmap_of(&pa, b);
	assert_non_null(ma);
	assert_non_null(mb);
	assert_ptr_not_equal(ma, mb);
	assert_int_equal(ma->use, MM_FREE);
	/* neighbouring pages have neighbouring entries, stored in the range's first page */
	assert_ptr_equal(memmap_of(&pa, a + PAGE_SIZE), ma + 1);
	assert_true((uint64_t)(uintptr_t)ma >= base_of(0) && (uint64_t)(uintptr_t)ma < base_of(0) + PAGE_SIZE);
	/* any address inside the page finds the same entry */
	assert_ptr_equal(memmap_of(&pa, a + 123), ma);

	/* outside every range: the memmap page itself, the end, foreign memory */
	assert_null(memmap_of(&pa, base_of(0)));
	assert_null(memmap_of(&pa, end_of(0)));
	assert_null(memmap_of(&pa, base_of(3)));
	assert_null(memmap_of(&pa, 0));
	assert_int_equal(palloc_node_of(&pa, base_of(3)), -1);
	assert_ptr_equal(memmap_of(&pa, end_of(1) - PAGE_SIZE), mb + (USABLE - 1));

	/* memmap_of_near agrees with memmap_of whatever the hint: none, right, another range's,
	 * and it leaves the hint on the range it found (none for a page outside) */
	struct palloc_range *near = 0;
	assert_ptr_equal(memmap_of_near(&pa, a, &near), ma);
	assert_ptr_equal(near, &pa.node[0].range[0]);
	assert_ptr_equal(memmap_of_near(&pa, a + PAGE_SIZE, &near), ma + 1);
	assert_ptr_equal(memmap_of_near(&pa, b, &near), mb);          /* the hint is node 0's */
	assert_ptr_equal(near, &pa.node[1].range[0]);
	assert_ptr_equal(memmap_of_near(&pa, a + 123, &near), ma);
	assert_null(memmap_of_near(&pa, base_of(3), &near));
	assert_null(near);
	assert_null(memmap_of_near(&pa, end_of(0), &near));
	assert_ptr_equal(memmap_of_near(&pa, end_of(1) - PAGE_SIZE, &near), mb + (USABLE - 1));

	/* free clears the record */
	ma->use = MM_GUEST;
	ma->vm = 5;
	ma->gpfn = 77;
	palloc_free(&pa, a, NULL);
	assert_int_equal(ma->use, MM_FREE);
	assert_int_equal(ma->vm, 0);
	assert_int_equal(ma->gpfn, 0);

	/* freeing a page palloc never owned changes nothing */
	uint64_t before = palloc_free_pages(&pa, 0);
	palloc_free(&pa, base_of(3), NULL);
	palloc_free(&pa, base_of(0), NULL);        /* the memmap page */
	assert_int_equal(palloc_free_pages(&pa, 0), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_range),
		cmocka_unit_test(test_alloc_free),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_fallback_by_distance),
		cmocka_unit_test(test_fallback_ties_and_default),
		cmocka_unit_test(test_percpu_cache),
		cmocka_unit_test(test_memmap),
		cmocka_unit_test(test_alloc_colour),
		cmocka_unit_test(test_used_range),
		cmocka_unit_test(test_colour_lists),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
