/* libbtree: boundary cases of insert/delete (split, trim, merge), lookups and iteration,
 * deep trees with tiny fan-outs, allocation-failure injection, and over a million random
 * operations checked against a reference model (tests/fuzz/btree_model.h) and, over a small
 * sector space, against a flat per-sector array. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "btree.h"
#include "../fuzz/btree_model.h"

/* ---- node allocator: counts, and fails on request ---- */

struct talloc {
	long live;                       /* nodes handed out and not given back */
	long allocs;                     /* successful allocations */
	long fail_after;                 /* succeed this many more times, then fail; < 0: never */
};

static void *t_alloc(void *ctx)
{
	struct talloc *a = ctx;
	if (a->fail_after == 0)
		return NULL;
	if (a->fail_after > 0)
		a->fail_after--;
	void *n = malloc(BTREE_NODE_SIZE);
	assert_non_null(n);
	memset(n, 0xa5, BTREE_NODE_SIZE);   /* no reliance on zeroed nodes */
	a->live++;
	a->allocs++;
	return n;
}

static void t_free(void *ctx, void *node)
{
	struct talloc *a = ctx;
	assert_non_null(node);
	a->live--;
	free(node);
}

static struct talloc A;

static void mk(struct btree *t, uint64_t step, unsigned flags, unsigned leaf_max, unsigned inner_max)
{
	A = (struct talloc){ .fail_after = -1 };
	btree_init(t, step, flags, t_alloc, t_free, &A);
	assert_int_equal(btree_set_fanout(t, leaf_max, inner_max), 0);
}

#define X(s, l, v) ((struct btree_extent){ (s), (l), (v) })

static void check_tree(const struct btree *t)
{
	const char *err = btree_check(t);
	if (err)
		fail_msg("btree_check: %s", err);
	assert_int_equal(A.live, (long)btree_nodes(t));
}

/* the tree holds exactly these extents */
static void expect(const struct btree *t, const struct btree_extent *want, size_t n)
{
	struct btree_iter it;
	struct btree_extent x;
	size_t i = 0;
	uint64_t sectors = 0;
	check_tree(t);
	btree_iter_init(&it, t, 0, UINT64_MAX);
	while (btree_iter_next(&it, &x)) {
		if (i >= n)
			fail_msg("extra extent [%lu, +%lu) -> %lu", (unsigned long)x.start,
				 (unsigned long)x.len, (unsigned long)x.value);
		if (memcmp(&x, &want[i], sizeof(x)))
			fail_msg("extent %zu: got [%lu, +%lu) -> %lu, want [%lu, +%lu) -> %lu", i,
				 (unsigned long)x.start, (unsigned long)x.len, (unsigned long)x.value,
				 (unsigned long)want[i].start, (unsigned long)want[i].len,
				 (unsigned long)want[i].value);
		sectors += want[i].len;
		i++;
	}
	assert_int_equal(i, n);
	assert_int_equal(btree_count(t), n);
	assert_int_equal(btree_sectors(t), sectors);
}

#define EXPECT(t, ...) do { \
	const struct btree_extent w_[] = { __VA_ARGS__ }; \
	expect((t), w_, sizeof(w_) / sizeof(w_[0])); \
} while (0)

static void expect_empty(const struct btree *t)
{
	expect(t, NULL, 0);
	assert_int_equal(btree_nodes(t), 0);
}

static void fail_check(const struct model *m, const struct btree *t, const char *what)
{
	const char *err = btree_check(t);
	if (!err)
		err = model_compare(m, t);
	if (err)
		fail_msg("%s: %s", what, err);
}

/* ---- basics ---- */

static void test_empty_and_limits(void **state)
{
	(void)state;
	struct btree t;
	struct btree_extent x;
	mk(&t, 1, 0, 0, 0);
	assert_int_equal(btree_leaf_capacity(), 170);
	assert_int_equal(btree_inner_capacity(), 255);
	expect_empty(&t);
	assert_false(btree_lookup(&t, 0, &x));
	assert_false(btree_lookup_ge(&t, 0, &x));
	assert_int_equal(btree_delete(&t, 0, 100), 0);
	assert_int_equal(btree_insert(&t, 5, 0, 1), 0);
	assert_int_equal(btree_delete(&t, 5, 0), 0);
	expect_empty(&t);
	assert_int_equal(A.allocs, 0);

	/* ranges must end at or below UINT64_MAX */
	assert_int_equal(btree_insert(&t, UINT64_MAX, 1, 0), BTREE_EINVAL);
	assert_int_equal(btree_insert(&t, 1, UINT64_MAX, 0), BTREE_EINVAL);
	assert_int_equal(btree_delete(&t, UINT64_MAX - 1, 2), BTREE_EINVAL);
	expect_empty(&t);
	assert_int_equal(btree_insert(&t, UINT64_MAX - 1, 1, 7), 0);
	EXPECT(&t, X(UINT64_MAX - 1, 1, 7));
	assert_true(btree_lookup(&t, UINT64_MAX - 1, &x));
	assert_false(btree_lookup(&t, UINT64_MAX, &x));
	assert_int_equal(btree_insert(&t, 0, UINT64_MAX, 100), 0);
	EXPECT(&t, X(0, UINT64_MAX, 100));
	assert_int_equal(btree_sectors(&t), UINT64_MAX);
	assert_true(btree_lookup(&t, UINT64_MAX - 1, &x));
	assert_int_equal(x.start, 0);
	assert_int_equal(btree_delete(&t, 1, UINT64_MAX - 2), 0);
	EXPECT(&t, X(0, 1, 100), X(UINT64_MAX - 1, 1, 100 + UINT64_MAX - 1));
	btree_destroy(&t);
	expect_empty(&t);
	assert_int_equal(A.live, 0);

	/* fan-out limits; only on an empty tree */
	assert_int_equal(btree_set_fanout(&t, 3, 4), BTREE_EINVAL);
	assert_int_equal(btree_set_fanout(&t, 4, 3), BTREE_EINVAL);
	assert_int_equal(btree_set_fanout(&t, 171, 4), BTREE_EINVAL);
	assert_int_equal(btree_set_fanout(&t, 4, 256), BTREE_EINVAL);
	assert_int_equal(btree_set_fanout(&t, 170, 255), 0);
	assert_int_equal(btree_insert(&t, 0, 1, 0), 0);
	assert_int_equal(btree_set_fanout(&t, 4, 4), BTREE_EINVAL);
	btree_destroy(&t);
	assert_int_equal(A.live, 0);
}

/* Each case: a fresh tree holding [100, 200) -> 1000, then one insert. */
static void test_insert_boundaries(void **state)
{
	(void)state;
	struct btree t;
	static const struct {
		uint64_t s, e;
		struct btree_extent want[3];
		size_t n;
	} cases[] = {
		{ 100, 200, { X(100, 100, 7) }, 1 },                                   /* exact */
		{ 100, 150, { X(100, 50, 7), X(150, 50, 1050) }, 2 },                  /* left part */
		{ 150, 200, { X(100, 50, 1000), X(150, 50, 7) }, 2 },                  /* right part */
		{ 120, 130, { X(100, 20, 1000), X(120, 10, 7), X(130, 70, 1030) }, 3 }, /* split */
		{ 101, 199, { X(100, 1, 1000), X(101, 98, 7), X(199, 1, 1099) }, 3 },  /* split, 1 left each side */
		{ 50, 100, { X(50, 50, 7), X(100, 100, 1000) }, 2 },                   /* touches on the left */
		{ 200, 250, { X(100, 100, 1000), X(200, 50, 7) }, 2 },                 /* touches on the right */
		{ 50, 101, { X(50, 51, 7), X(101, 99, 1001) }, 2 },                    /* overlaps 1 on the left */
		{ 199, 250, { X(100, 99, 1000), X(199, 51, 7) }, 2 },                  /* overlaps 1 on the right */
		{ 50, 120, { X(50, 70, 7), X(120, 80, 1020) }, 2 },
		{ 180, 250, { X(100, 80, 1000), X(180, 70, 7) }, 2 },
		{ 50, 250, { X(50, 200, 7) }, 1 },                                     /* covers */
		{ 100, 250, { X(100, 150, 7) }, 1 },
		{ 50, 200, { X(50, 150, 7) }, 1 },
		{ 10, 20, { X(10, 10, 7), X(100, 100, 1000) }, 2 },                    /* disjoint */
		{ 300, 301, { X(100, 100, 1000), X(300, 1, 7) }, 2 },
	};
	for (unsigned merge = 0; merge < 2; merge++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			mk(&t, 1, merge ? BTREE_MERGE : 0, 4, 4);
			assert_int_equal(btree_insert(&t, 100, 100, 1000), 0);
			assert_int_equal(btree_insert(&t, cases[i].s, cases[i].e - cases[i].s, 7), 0);
			expect(&t, cases[i].want, cases[i].n);
			btree_destroy(&t);
			assert_int_equal(A.live, 0);
		}
	}

	/* several extents at once: [0,10) [20,30) [40,50) [60,70) */
	mk(&t, 1, 0, 4, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(btree_insert(&t, 20 * i, 10, 1000 * i), 0);
	assert_int_equal(btree_insert(&t, 5, 60, 7), 0);
	EXPECT(&t, X(0, 5, 0), X(5, 60, 7), X(65, 5, 3005));
	assert_int_equal(btree_insert(&t, 70, 5, 9), 0);
	assert_int_equal(btree_insert(&t, 0, 75, 1), 0);
	EXPECT(&t, X(0, 75, 1));
	btree_destroy(&t);
	/* exactly filling gaps leaves the pieces apart without BTREE_MERGE */
	mk(&t, 1, 0, 4, 4);
	assert_int_equal(btree_insert(&t, 0, 10, 0), 0);
	assert_int_equal(btree_insert(&t, 20, 10, 20), 0);
	assert_int_equal(btree_insert(&t, 10, 10, 10), 0);
	EXPECT(&t, X(0, 10, 0), X(10, 10, 10), X(20, 10, 20));
	btree_destroy(&t);
}

static void test_merge(void **state)
{
	(void)state;
	struct btree t;
	mk(&t, 1, BTREE_MERGE, 4, 4);
	assert_int_equal(btree_insert(&t, 0, 10, 100), 0);
	assert_int_equal(btree_insert(&t, 10, 10, 110), 0);        /* continues on the right */
	EXPECT(&t, X(0, 20, 100));
	assert_int_equal(btree_insert(&t, 20, 10, 200), 0);        /* values do not continue */
	EXPECT(&t, X(0, 20, 100), X(20, 10, 200));
	assert_int_equal(btree_insert(&t, 30, 5, 210), 0);
	EXPECT(&t, X(0, 20, 100), X(20, 15, 200));
	assert_int_equal(btree_insert(&t, 45, 5, 225), 0);         /* gap: no merge */
	EXPECT(&t, X(0, 20, 100), X(20, 15, 200), X(45, 5, 225));
	assert_int_equal(btree_insert(&t, 35, 10, 215), 0);        /* fills the gap: both sides */
	EXPECT(&t, X(0, 20, 100), X(20, 30, 200));
	assert_int_equal(btree_insert(&t, 15, 10, 195), 0);        /* overlaps both, continues right */
	EXPECT(&t, X(0, 15, 100), X(15, 35, 195));
	assert_int_equal(btree_insert(&t, 15, 10, 115), 0);        /* overlaps, continues left */
	EXPECT(&t, X(0, 25, 100), X(25, 25, 205));
	long before = A.allocs;
	uint64_t gen = t.gen;
	assert_int_equal(btree_insert(&t, 5, 10, 105), 0);         /* already mapped so: no-op */
	assert_int_equal(btree_insert(&t, 0, 25, 100), 0);
	assert_int_equal(btree_insert(&t, 26, 4, 206), 0);
	EXPECT(&t, X(0, 25, 100), X(25, 25, 205));
	assert_int_equal(A.allocs, before);
	assert_true(t.gen >= gen);
	assert_int_equal(btree_insert(&t, 20, 10, 120), 0);        /* left continues, right does not */
	EXPECT(&t, X(0, 30, 100), X(30, 20, 210));
	assert_int_equal(btree_insert(&t, 25, 10, 125), 0);        /* covered extent reused, merges left */
	EXPECT(&t, X(0, 35, 100), X(35, 15, 215));
	assert_int_equal(btree_insert(&t, 20, 20, 120), 0);
	EXPECT(&t, X(0, 40, 100), X(40, 10, 220));
	assert_int_equal(btree_insert(&t, 40, 10, 140), 0);
	EXPECT(&t, X(0, 50, 100));
	/* delete then refill: the three pieces merge back into one */
	assert_int_equal(btree_delete(&t, 10, 30), 0);
	EXPECT(&t, X(0, 10, 100), X(40, 10, 140));
	assert_int_equal(btree_insert(&t, 20, 10, 120), 0);
	assert_int_equal(btree_insert(&t, 10, 10, 110), 0);
	assert_int_equal(btree_insert(&t, 30, 10, 130), 0);
	EXPECT(&t, X(0, 50, 100));
	btree_destroy(&t);

	/* value_step 0: equal values merge */
	mk(&t, 0, BTREE_MERGE, 4, 4);
	assert_int_equal(btree_insert(&t, 0, 10, 5), 0);
	assert_int_equal(btree_insert(&t, 10, 10, 5), 0);
	assert_int_equal(btree_insert(&t, 30, 10, 5), 0);
	EXPECT(&t, X(0, 20, 5), X(30, 10, 5));
	assert_int_equal(btree_insert(&t, 15, 20, 6), 0);
	EXPECT(&t, X(0, 15, 5), X(15, 20, 6), X(35, 5, 5));
	assert_int_equal(btree_insert(&t, 12, 30, 5), 0);
	EXPECT(&t, X(0, 42, 5));
	btree_destroy(&t);

	/* value_step 512 (byte offsets) and wrapping values */
	mk(&t, 512, BTREE_MERGE, 4, 4);
	assert_int_equal(btree_insert(&t, 8, 8, UINT64_MAX - 4095), 0);
	assert_int_equal(btree_insert(&t, 16, 8, 0), 0);           /* UINT64_MAX - 4095 + 8 * 512 wraps to 0 */
	EXPECT(&t, X(8, 16, UINT64_MAX - 4095));
	assert_int_equal(btree_delete(&t, 10, 2), 0);
	EXPECT(&t, X(8, 2, UINT64_MAX - 4095), X(12, 12, UINT64_MAX - 4095 + 2048));
	btree_destroy(&t);
	assert_int_equal(A.live, 0);
}

/* Each case: a fresh tree holding [100, 200) -> 1000, then one delete. */
static void test_delete_boundaries(void **state)
{
	(void)state;
	struct btree t;
	static const struct {
		uint64_t s, e;
		struct btree_extent want[2];
		size_t n;
	} cases[] = {
		{ 100, 200, { X(0, 0, 0) }, 0 },
		{ 50, 250, { X(0, 0, 0) }, 0 },
		{ 100, 150, { X(150, 50, 1050) }, 1 },
		{ 150, 200, { X(100, 50, 1000) }, 1 },
		{ 120, 130, { X(100, 20, 1000), X(130, 70, 1030) }, 2 },
		{ 101, 199, { X(100, 1, 1000), X(199, 1, 1099) }, 2 },
		{ 50, 101, { X(101, 99, 1001) }, 1 },
		{ 199, 250, { X(100, 99, 1000) }, 1 },
		{ 50, 100, { X(100, 100, 1000) }, 1 },
		{ 200, 250, { X(100, 100, 1000) }, 1 },
		{ 100, 101, { X(101, 99, 1001) }, 1 },
		{ 199, 200, { X(100, 99, 1000) }, 1 },
	};
	for (unsigned merge = 0; merge < 2; merge++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			mk(&t, 1, merge ? BTREE_MERGE : 0, 4, 4);
			assert_int_equal(btree_insert(&t, 100, 100, 1000), 0);
			assert_int_equal(btree_delete(&t, cases[i].s, cases[i].e - cases[i].s), 0);
			expect(&t, cases[i].want, cases[i].n);
			btree_destroy(&t);
			assert_int_equal(A.live, 0);
		}
	}
	/* across several extents and gaps */
	mk(&t, 1, 0, 4, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(btree_insert(&t, 20 * i, 10, 1000 * i), 0);
	assert_int_equal(btree_delete(&t, 5, 60), 0);
	EXPECT(&t, X(0, 5, 0), X(65, 5, 3005));
	assert_int_equal(btree_delete(&t, 10, 50), 0);            /* only a gap */
	EXPECT(&t, X(0, 5, 0), X(65, 5, 3005));
	assert_int_equal(btree_delete(&t, 0, 100), 0);
	expect_empty(&t);
	btree_destroy(&t);
}

/* Every (start, end) over a small layout with every kind of neighbour, both modes, both
 * operations, values that continue the left, the right or neither: against the model. */
static void test_exhaustive_small(void **state)
{
	(void)state;
	/* [10,20)->100 [20,30)->110 (continues) [35,40)->500 [40,42)->900 [44,45)->7 */
	static const struct btree_extent base[] = {
		X(10, 10, 100), X(20, 10, 110), X(35, 5, 500), X(40, 2, 900), X(44, 1, 7),
	};
	long ops = 0;
	for (unsigned merge = 0; merge < 2; merge++)
	for (uint64_t s = 0; s < 48; s++)
	for (uint64_t e = s + 1; e <= 48; e++)
	for (int kind = 0; kind < 5; kind++) {
		struct btree t;
		struct model m;
		struct btree_extent x;
		mk(&t, 1, merge ? BTREE_MERGE : 0, 4, 4);
		model_init(&m, 1, merge);
		for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
			assert_int_equal(btree_insert(&t, base[i].start, base[i].len, base[i].value), 0);
			model_insert(&m, base[i].start, base[i].len, base[i].value);
		}
		uint64_t v = 12345;
		if (kind == 1 && s > 0 && btree_lookup(&t, s - 1, &x))
			v = x.value + (s - x.start);                        /* continues the left */
		if (kind == 2 && btree_lookup(&t, e, &x))
			v = x.value + (e - x.start) - (e - s);              /* continues the right */
		if (kind == 3 && btree_lookup(&t, s, &x))
			v = x.value + (s - x.start);                        /* what is there already */
		if (kind == 4) {
			assert_int_equal(btree_delete(&t, s, e - s), 0);
			model_delete(&m, s, e - s);
		} else {
			assert_int_equal(btree_insert(&t, s, e - s, v), 0);
			model_insert(&m, s, e - s, v);
		}
		fail_check(&m, &t, "exhaustive");
		assert_int_equal(A.live, (long)btree_nodes(&t));
		btree_destroy(&t);
		assert_int_equal(A.live, 0);
		model_free(&m);
		ops++;
	}
	assert_true(ops > 5000);
}

/* ---- lookups and iteration ---- */

struct visit { uint64_t starts[64]; int n, stop_at; };

static int visit_fn(void *arg, const struct btree_extent *e)
{
	struct visit *v = arg;
	v->starts[v->n++] = e->start;
	return v->n == v->stop_at ? 42 : 0;
}

static void test_lookup_iterate(void **state)
{
	(void)state;
	struct btree t;
	struct btree_extent x;
	struct btree_iter it;
	mk(&t, 8, 0, 4, 4);
	/* [10k, 10k + 5) -> 1000k for k = 0..49 */
	for (uint64_t k = 0; k < 50; k++)
		assert_int_equal(btree_insert(&t, 10 * k, 5, 1000 * k), 0);
	check_tree(&t);
	assert_true(t.height >= 3);
	for (uint64_t s = 0; s < 510; s++) {
		bool in = s % 10 < 5 && s < 500;
		assert_int_equal(btree_lookup(&t, s, &x), in);
		if (in) {
			assert_int_equal(x.start, s / 10 * 10);
			assert_int_equal(x.value, s / 10 * 1000);
		}
		bool ge = btree_lookup_ge(&t, s, &x);
		assert_int_equal(ge, s < 495);
		if (ge)
			assert_int_equal(x.start, in ? s / 10 * 10 : (s / 10 + 1) * 10);
	}
	/* overlap iteration: from inside an extent, from a gap, ending inside, at a start */
	static const struct { uint64_t s, e, first, count; } r[] = {
		{ 0, UINT64_MAX, 0, 50 }, { 3, 4, 0, 1 }, { 5, 10, 0, 0 }, { 5, 11, 10, 1 },
		{ 4, 10, 0, 1 }, { 4, 11, 0, 2 }, { 7, 33, 10, 3 }, { 495, 1000, 0, 0 },
		{ 494, 1000, 490, 1 }, { 250, 250, 0, 0 }, { 300, 200, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		uint64_t n = 0, prev = 0;
		btree_iter_init(&it, &t, r[i].s, r[i].e);
		while (btree_iter_next(&it, &x)) {
			if (n == 0)
				assert_int_equal(x.start, r[i].first);
			else
				assert_int_equal(x.start, prev + 10);
			prev = x.start;
			n++;
		}
		assert_int_equal(n, r[i].count);
		assert_false(btree_iter_next(&it, &x));
	}
	/* visit stops at the callback's first non-zero answer */
	struct visit v = { .stop_at = 3 };
	assert_int_equal(btree_visit(&t, 12, 200, visit_fn, &v), 42);
	assert_int_equal(v.n, 3);
	assert_int_equal(v.starts[0], 10);
	assert_int_equal(v.starts[2], 30);
	v = (struct visit){ .stop_at = -1 };
	assert_int_equal(btree_visit(&t, 0, 100, visit_fn, &v), 0);
	assert_int_equal(v.n, 10);

	/* changing the tree while iterating: delete every extent returned */
	uint64_t n = 0;
	btree_iter_init(&it, &t, 0, UINT64_MAX);
	while (btree_iter_next(&it, &x)) {
		assert_int_equal(x.start, 10 * n);
		assert_int_equal(btree_delete(&t, x.start, x.len), 0);
		n++;
	}
	assert_int_equal(n, 50);
	expect_empty(&t);
	/* ... and inserting behind and ahead of the iterator */
	for (uint64_t k = 0; k < 20; k++)
		assert_int_equal(btree_insert(&t, 10 * k, 5, 0), 0);
	n = 0;
	btree_iter_init(&it, &t, 0, UINT64_MAX);
	while (btree_iter_next(&it, &x)) {
		n++;
		if (x.len != 5)
			continue;
		assert_int_equal(btree_insert(&t, x.start + 5, 1, 0), 0);   /* after it: seen next */
		if (x.start >= 10)
			assert_int_equal(btree_insert(&t, x.start - 2, 1, 0), 0);   /* behind: skipped */
	}
	/* each original and each inserted [start+5, +1) once; the one behind never */
	assert_int_equal(n, 40);
	check_tree(&t);
	btree_destroy(&t);
	assert_int_equal(A.live, 0);
}

/* ---- deep trees ---- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void shuffle(uint64_t *a, size_t n)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rnd() % (i + 1);
		uint64_t tmp = a[i];
		a[i] = a[j];
		a[j] = tmp;
	}
}

static void test_deep_trees(void **state)
{
	(void)state;
	enum { N = 20000 };
	static uint64_t order[N];
	static const unsigned fan[][2] = { { 4, 4 }, { 5, 4 }, { 4, 7 }, { 0, 0 } };
	rng_state = 7;
	for (size_t f = 0; f < sizeof(fan) / sizeof(fan[0]); f++)
	for (int pattern = 0; pattern < 3; pattern++) {
		struct btree t;
		struct btree_extent x;
		mk(&t, 1, 0, fan[f][0], fan[f][1]);
		for (size_t i = 0; i < N; i++)
			order[i] = pattern == 1 ? N - 1 - i : i;
		if (pattern == 2)
			shuffle(order, N);
		for (size_t i = 0; i < N; i++) {
			assert_int_equal(btree_insert(&t, 3 * order[i], 2, order[i] << 20), 0);
			if (i % 4096 == 0)
				check_tree(&t);
		}
		check_tree(&t);
		assert_int_equal(btree_count(&t), N);
		if (f == 0)
			assert_true(t.height >= 7);             /* 4^7 < N */
		if (f == 3)
			assert_int_equal(t.height, 2);
		for (size_t i = 0; i < N; i += 97) {
			assert_true(btree_lookup(&t, 3 * i + 1, &x));
			assert_int_equal(x.value, (uint64_t)i << 20);
			assert_false(btree_lookup(&t, 3 * i + 2, &x));
		}
		/* remove half one by one (every boundary kind of rebalancing), then the rest in
		 * large ranges */
		shuffle(order, N);
		for (size_t i = 0; i < N / 2; i++) {
			assert_int_equal(btree_delete(&t, 3 * order[i], 2), 0);
			if (i % 2048 == 0)
				check_tree(&t);
		}
		check_tree(&t);
		assert_int_equal(btree_count(&t), N - N / 2);
		for (uint64_t s = 0; s < 3 * N; s += 3000)
			assert_int_equal(btree_delete(&t, s, 3000), 0);
		expect_empty(&t);
		assert_int_equal(A.live, 0);
	}

	/* a full-size tree three levels deep */
	struct btree t;
	mk(&t, 1, BTREE_MERGE, 0, 0);
	for (uint64_t i = 0; i < 100000; i++)
		assert_int_equal(btree_insert(&t, 2 * i, 1, 2 * i), 0);
	check_tree(&t);
	assert_int_equal(t.height, 3);
	/* filling every gap with continuing values merges everything into one extent */
	for (uint64_t i = 0; i < 100000; i++)
		assert_int_equal(btree_insert(&t, 2 * i + 1, 1, 2 * i + 1), 0);
	EXPECT(&t, X(0, 200000, 0));
	assert_int_equal(btree_nodes(&t), 1);
	btree_destroy(&t);
	assert_int_equal(A.live, 0);
}

/* ---- allocation failure ---- */

static void snapshot_ok(const struct model *m, const struct btree *t, const char *what)
{
	fail_check(m, t, what);
	assert_int_equal(A.live, (long)btree_nodes(t));
}

static void test_alloc_failure(void **state)
{
	(void)state;
	struct btree t;
	struct model m;

	/* an empty tree needs its first leaf */
	mk(&t, 1, 0, 4, 4);
	A.fail_after = 0;
	assert_int_equal(btree_insert(&t, 0, 10, 0), BTREE_ENOMEM);
	expect_empty(&t);
	A.fail_after = -1;

	/* ascending inserts into a full path: each k-th allocation fails in turn */
	model_init(&m, 1, false);
	for (uint64_t i = 0; i < 3000; i++) {
		uint64_t s = 4 * i;
		for (long k = 0;; k++) {
			A.fail_after = k;
			long before = A.allocs;
			int r = btree_insert(&t, s, 2, i);
			A.fail_after = -1;
			if (r == 0) {
				/* it allocated exactly what it needed: k - 1 allocations were not enough */
				assert_int_equal(A.allocs - before, k);
				break;
			}
			assert_int_equal(r, BTREE_ENOMEM);
			assert_true(k <= (long)t.height + 1);
			if (i % 256 == 0 || k > 1)
				snapshot_ok(&m, &t, "failed insert");
		}
		model_insert(&m, s, 2, i);
	}
	snapshot_ok(&m, &t, "after inserts");
	btree_destroy(&t);
	model_free(&m);

	/* holes and splits under failure, with merging */
	mk(&t, 1, BTREE_MERGE, 4, 4);
	model_init(&m, 1, true);
	for (uint64_t i = 0; i < 2000; i++) {
		assert_int_equal(btree_insert(&t, 10 * i, 9, 1000 * i), 0);
		model_insert(&m, 10 * i, 9, 1000 * i);
	}
	for (uint64_t i = 0; i < 2000; i++) {
		uint64_t s = 10 * i + 3;
		int is_delete = i % 2;
		for (long k = 0;; k++) {
			A.fail_after = k;
			int r = is_delete ? btree_delete(&t, s, 2) : btree_insert(&t, s, 2, 5);
			A.fail_after = -1;
			if (r == 0)
				break;
			assert_int_equal(r, BTREE_ENOMEM);
			snapshot_ok(&m, &t, "failed split");
		}
		if (is_delete)
			model_delete(&m, s, 2);
		else
			model_insert(&m, s, 2, 5);
		if (i % 128 == 0)
			snapshot_ok(&m, &t, "after split");
	}
	snapshot_ok(&m, &t, "after splits");
	/* with no allocation possible: removing and trimming still work; splitting does not */
	A.fail_after = 0;
	assert_int_equal(btree_delete(&t, 0, 10), 0);                 /* whole extent pieces */
	model_delete(&m, 0, 10);
	assert_int_equal(btree_delete(&t, 10, 1), 0);                 /* trims */
	model_delete(&m, 10, 1);
	assert_int_equal(btree_insert(&t, 20, 10, 3), 0);             /* replaces covered extents */
	model_insert(&m, 20, 10, 3);
	assert_int_equal(btree_insert(&t, 30, 3, 2000 * 3 + 0), 0);   /* reuses a covered slot */
	model_insert(&m, 30, 3, 6000);
	snapshot_ok(&m, &t, "no allocation");
	btree_destroy(&t);
	model_free(&m);
	A.fail_after = -1;
	assert_int_equal(A.live, 0);
}

/* ---- randomized against the models ---- */

struct run {
	const char *name;
	uint64_t seed;
	unsigned leaf_max, inner_max;
	bool merge;
	uint64_t step;
	uint64_t space;                  /* sectors, for the flat model; 0: sparse 64-bit space */
	long ops;
	int check_every;
};

#define FLAT_MAX 65536
static bool flat_mapped[FLAT_MAX];
static uint64_t flat_val[FLAT_MAX];

static void run_random(const struct run *R, long *total_ops, long *enomem)
{
	struct btree t;
	struct model m;
	struct btree_extent x, y;
	uint64_t anchors[64];
	bool flat = R->space != 0;
	rng_state = R->seed;
	mk(&t, R->step, R->merge ? BTREE_MERGE : 0, R->leaf_max, R->inner_max);
	model_init(&m, R->step, R->merge);
	if (flat) {
		assert_true(R->space <= FLAT_MAX);
		memset(flat_mapped, 0, sizeof(flat_mapped));
	}
	for (int i = 0; i < 64; i++)
		anchors[i] = i == 0 ? 0 : i == 1 ? UINT64_MAX - (1u << 22) : rnd() >> (rnd() % 48);
	unsigned max_height = 0;
	uint64_t max_extents = 0;

	for (long op = 0; op < R->ops; op++) {
		uint64_t s, len;
		if (flat) {
			s = rnd() % R->space;
			/* mostly short ranges; a few long ones, rarer in large spaces so that
			 * those fill up with thousands of extents */
			unsigned c = rnd() % 1000;
			len = c < 600 ? 1 + rnd() % 4 : c < 900 ? 1 + rnd() % 32 :
			      c < (R->space > 8192 ? 999 : 990) ? 1 + rnd() % (R->space > 8192 ? 256 : R->space / 16) :
			      1 + rnd() % R->space;
			if (len > R->space - s)
				len = R->space - s;
		} else {
			s = anchors[rnd() % 64] + rnd() % (1u << 20);
			unsigned c = rnd() % 1000;
			len = c < 500 ? 1 + rnd() % 16 : c < 900 ? 1 + rnd() % 4096 :
			      c < 999 ? 1 + rnd() % (1u << 21) : 1 + (rnd() >> 2);
			if (len > UINT64_MAX - s)
				len = UINT64_MAX - s;
			if (len == 0)
				continue;
		}
		unsigned kind = rnd() % 100;
		if (kind < 65) {
			bool del = kind >= 45;
			uint64_t v = rnd();
			unsigned vk = rnd() % 10;
			if (vk < 3 && s > 0 && btree_lookup(&t, s - 1, &x))
				v = x.value + (s - x.start) * R->step;
			else if (vk < 5 && btree_lookup(&t, s, &x))
				v = x.value + (s - x.start) * R->step;
			else if (vk < 6 && btree_lookup(&t, s + len, &x))
				v = x.value + (s + len - x.start) * R->step - len * R->step;
			if (rnd() % 64 == 0) {
				/* make one of this operation's allocations fail */
				A.fail_after = rnd() % 4;
				int r = del ? btree_delete(&t, s, len) : btree_insert(&t, s, len, v);
				A.fail_after = -1;
				if (r == BTREE_ENOMEM) {
					++*enomem;
					snapshot_ok(&m, &t, "random: after a failed operation");
				} else {
					assert_int_equal(r, 0);
				}
			}
			/* (again, or for the first time) without failure; idempotent */
			int r = del ? btree_delete(&t, s, len) : btree_insert(&t, s, len, v);
			if (r)
				fail_msg("%s op %ld: returned %d", R->name, op, r);
			if (del)
				model_delete(&m, s, len);
			else
				model_insert(&m, s, len, v);
			if (flat)
				for (uint64_t i = s; i < s + len; i++) {
					flat_mapped[i] = !del;
					flat_val[i] = v + (i - s) * R->step;
				}
			assert_int_equal(A.live, (long)btree_nodes(&t));
			assert_int_equal(btree_count(&t), m.n);
		} else if (kind < 90) {
			uint64_t q = flat ? rnd() % R->space : (rnd() % 4 ? s : rnd());
			bool hit = btree_lookup(&t, q, &x);
			bool mhit = model_lookup(&m, q, &y);
			assert_int_equal(hit, mhit);
			if (hit)
				assert_memory_equal(&x, &y, sizeof(x));
			if (flat) {
				assert_int_equal(hit, flat_mapped[q]);
				if (hit)
					assert_int_equal(x.value + (q - x.start) * R->step, flat_val[q]);
			}
			bool ge = btree_lookup_ge(&t, q, &x);
			size_t i = model_first_after(&m, q);
			assert_int_equal(ge, i < m.n);
			if (ge)
				assert_memory_equal(&x, &m.e[i], sizeof(x));
		} else {
			const char *err = model_compare_range(&m, &t, s, s + len);
			if (err)
				fail_msg("%s op %ld: iterate [%lu, %lu): %s", R->name, op,
					 (unsigned long)s, (unsigned long)(s + len), err);
		}
		if (t.height > max_height)
			max_height = t.height;
		if (btree_count(&t) > max_extents)
			max_extents = btree_count(&t);
		if (op % R->check_every == 0 || op == R->ops - 1) {
			const char *err = btree_check(&t);
			if (!err)
				err = model_compare(&m, &t);
			if (err)
				fail_msg("%s op %ld: %s", R->name, op, err);
			if (flat && op % (R->check_every * 16) == 0) {
				/* the model against the flat array, sector by sector */
				for (uint64_t q = 0; q < R->space; q++) {
					bool mhit = model_lookup(&m, q, &y);
					assert_int_equal(mhit, flat_mapped[q]);
					if (mhit)
						assert_int_equal(y.value + (q - y.start) * R->step, flat_val[q]);
				}
			}
		}
	}
	*total_ops += R->ops;
	printf("  %-9s seed %-2lu fan-out %3u/%-3u %-8s step %#-18lx: %6ld ops, up to %5lu extents, height %u\n",
	       R->name, (unsigned long)R->seed, t.leaf_max, t.inner_max, R->merge ? "merge" : "no-merge",
	       (unsigned long)R->step, R->ops, (unsigned long)max_extents, max_height);
	btree_destroy(&t);
	assert_int_equal(A.live, 0);
	model_free(&m);
}

static void test_random(void **state)
{
	(void)state;
	static const struct run runs[] = {
		{ "small",        1, 4, 4,  true,  1,   2048,  180000, 97 },
		{ "small",        2, 4, 4,  false, 1,   2048,  180000, 97 },
		{ "small",        3, 5, 6,  true,  0,   1024,  120000, 61 },
		{ "small",        4, 7, 4,  false, 512, 4096,  120000, 97 },
		{ "small",        5, 16, 8, true,  8,   4096,  100000, 127 },
		{ "small",        6, 4, 5, true, 0x9E3779B97F4A7C15ULL, 2048, 100000, 97 },
		{ "full-size",    7, 0, 0,  false, 1,   65536, 100000, 997 },
		{ "full-size",    8, 0, 0,  true,  1,   65536, 60000,  997 },
		{ "sparse",       9, 4, 4,  true,  1,   0,     100000, 251 },
		{ "sparse",      10, 0, 0,  false, 512, 0,     100000, 997 },
	};
	long total = 0, enomem = 0;
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		run_random(&runs[i], &total, &enomem);
	printf("  random: %ld operations, %ld injected allocation failures hit\n", total, enomem);
	assert_true(total >= 1000000);
	assert_true(enomem > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_and_limits),
		cmocka_unit_test(test_insert_boundaries),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_delete_boundaries),
		cmocka_unit_test(test_exhaustive_small),
		cmocka_unit_test(test_lookup_iterate),
		cmocka_unit_test(test_deep_trees),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
