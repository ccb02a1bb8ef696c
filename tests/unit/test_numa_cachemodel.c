/* numa/cachemodel.c: geometry checks, direct-mapped conflicts, LRU in a set, the
 * shared/exclusive states and coherence actions, and a randomized comparison with a naive
 * reference model (timestamps instead of ordered sets). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "cachemodel.h"

static struct cache_model cm;
static void *mem;

static void make(uint32_t size, uint32_t line, uint32_t ways)
{
	struct cache_geometry g = { size, line, ways };
	free(mem);
	uint64_t n = cache_model_bytes(&g);
	assert_true(n > 0);
	mem = aligned_alloc(8, n);
	assert_non_null(mem);
	memset(mem, 0xa5, n);   /* init must clear it */
	assert_int_equal(cache_model_init(&cm, &g, mem), 0);
}

static int teardown(void **state)
{
	(void)state;
	free(mem);
	mem = NULL;
	return 0;
}

static void test_geometry(void **state)
{
	(void)state;
	const char *err;
	struct cache_geometry g = { CM_DEFAULT_SIZE, CM_DEFAULT_LINE, CM_DEFAULT_WAYS };
	assert_int_equal(cache_geometry_check(&g, &err), 0);
	assert_null(err);
	assert_int_equal(cache_model_bytes(&g), (1u << 20) / 128 * 8);   /* 64 KiB per CPU */
	struct { struct cache_geometry g; const char *word; } bad[] = {
		{ { 1 << 20, 100, 1 }, "line" },
		{ { 1 << 20, 8, 1 }, "line" },
		{ { 1 << 20, 8192, 1 }, "line" },
		{ { 1 << 20, 128, 0 }, "ways" },
		{ { 1 << 20, 128, 17 }, "ways" },
		{ { 0, 128, 1 }, "size" },
		{ { 1000, 128, 1 }, "size" },
		{ { 3 * 128 * 4, 128, 4 }, "power of two" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(cache_geometry_check(&bad[i].g, &err), -1);
		assert_non_null(strstr(err, bad[i].word));
		assert_int_equal(cache_model_bytes(&bad[i].g), 0);
	}
	/* 3-way works when the set count is a power of two */
	struct cache_geometry three = { 3 * 128 * 64, 128, 3 };
	assert_int_equal(cache_geometry_check(&three, NULL), 0);
	/* init refuses bad geometry and unaligned or missing storage */
	uint64_t buf[16];
	struct cache_model c;
	assert_int_equal(cache_model_init(&c, &bad[0].g, buf), -1);
	struct cache_geometry tiny = { 128 * 16, 128, 1 };
	assert_int_equal(cache_model_init(&c, &tiny, NULL), -1);
	assert_int_equal(cache_model_init(&c, &tiny, (char *)buf + 4), -1);
	assert_int_equal(cache_model_init(&c, &tiny, buf), 0);
	assert_int_equal(c.sets, 16);
	assert_int_equal(c.line_shift, 7);
}

static void test_direct_mapped(void **state)
{
	(void)state;
	make(1 << 20, 128, 1);
	assert_int_equal(cache_model_access(&cm, 0x1000, false), CM_MISS);
	assert_int_equal(cache_model_access(&cm, 0x1000, false), CM_HIT);
	/* same line, other bytes */
	assert_int_equal(cache_model_access(&cm, 0x107f, false), CM_HIT);
	assert_int_equal(cache_model_access(&cm, 0x1080, false), CM_MISS);
	/* 1 MiB away: same set, evicts */
	assert_int_equal(cache_model_access(&cm, 0x101000, false), CM_MISS);
	assert_int_equal(cache_model_access(&cm, 0x1000, false), CM_MISS);
	assert_true(cache_model_holds(&cm, 0x1000, NULL));
	assert_false(cache_model_holds(&cm, 0x101000, NULL));
	/* a working set of exactly 1 MiB fits: second pass all hits */
	cache_model_flush(&cm);
	for (uint64_t a = 0; a < (1 << 20); a += 128)
		assert_int_equal(cache_model_access(&cm, 0x40000000 + a, false), CM_MISS);
	for (uint64_t a = 0; a < (1 << 20); a += 128)
		assert_int_equal(cache_model_access(&cm, 0x40000000 + a, a & 128), CM_HIT + ((a & 128) ? 2 : 0));
	/* machine addresses well above 4 GiB */
	assert_int_equal(cache_model_access(&cm, 0x1234567800ull, true), CM_MISS);
	assert_int_equal(cache_model_access(&cm, 0x1234567800ull, true), CM_HIT);
}

static void test_lru(void **state)
{
	(void)state;
	make(4 * 128 * 4, 128, 4);      /* 4 sets of 4 ways */
	uint64_t stride = 4 * 128;      /* same set */
	for (int i = 0; i < 4; i++)
		assert_int_equal(cache_model_access(&cm, i * stride, false), CM_MISS);
	for (int i = 0; i < 4; i++)
		assert_int_equal(cache_model_access(&cm, i * stride, false), CM_HIT);
	/* touch 0 again: 1 is now the LRU; a fifth line evicts 1 */
	assert_int_equal(cache_model_access(&cm, 0, false), CM_HIT);
	assert_int_equal(cache_model_access(&cm, 4 * stride, false), CM_MISS);
	assert_false(cache_model_holds(&cm, 1 * stride, NULL));
	assert_true(cache_model_holds(&cm, 0, NULL));
	assert_true(cache_model_holds(&cm, 2 * stride, NULL));
	/* other sets untouched */
	assert_int_equal(cache_model_access(&cm, 128, false), CM_MISS);
	/* invalidating a line leaves room: the next fill evicts nothing */
	assert_true(cache_model_invalidate(&cm, 2 * stride));
	assert_false(cache_model_invalidate(&cm, 2 * stride));
	assert_int_equal(cache_model_access(&cm, 5 * stride, false), CM_MISS);
	for (int i = 0; i < 6; i++)
		assert_int_equal(cache_model_holds(&cm, i * stride, NULL), i == 0 || i == 3 || i == 4 || i == 5);
}

static void test_states_and_coherence(void **state)
{
	(void)state;
	make(1 << 16, 128, 2);
	bool ex;
	/* read fills shared; a write to it is an upgrade, then hits */
	assert_int_equal(cache_model_access(&cm, 0x2000, false), CM_MISS);
	assert_true(cache_model_holds(&cm, 0x2000, &ex));
	assert_false(ex);
	assert_int_equal(cache_model_access(&cm, 0x2000, true), CM_UPGRADE);
	assert_true(cache_model_holds(&cm, 0x2000, &ex));
	assert_true(ex);
	assert_int_equal(cache_model_access(&cm, 0x2000, true), CM_HIT);
	assert_int_equal(cache_model_access(&cm, 0x2000, false), CM_HIT);
	/* a write miss fills exclusive */
	assert_int_equal(cache_model_access(&cm, 0x3000, true), CM_MISS);
	assert_int_equal(cache_model_access(&cm, 0x3000, true), CM_HIT);
	/* another CPU reads it: shared here, the next write upgrades again */
	assert_true(cache_model_downgrade(&cm, 0x3000));
	assert_int_equal(cache_model_access(&cm, 0x3000, false), CM_HIT);
	assert_int_equal(cache_model_access(&cm, 0x3000, true), CM_UPGRADE);
	assert_false(cache_model_downgrade(&cm, 0x9000));
	/* another CPU writes it: gone here */
	assert_true(cache_model_invalidate(&cm, 0x3000));
	assert_false(cache_model_holds(&cm, 0x3000, &ex));
	assert_false(ex);
	assert_int_equal(cache_model_access(&cm, 0x3000, false), CM_MISS);
	/* flush empties everything */
	cache_model_flush(&cm);
	assert_false(cache_model_holds(&cm, 0x2000, NULL));
}

/* Two CPUs ping-ponging a line through the coherence calls, as the plugin does. */
static void test_two_cpus(void **state)
{
	(void)state;
	struct cache_geometry g = { 1 << 14, 64, 2 };
	uint64_t *m0 = aligned_alloc(8, cache_model_bytes(&g)), *m1 = aligned_alloc(8, cache_model_bytes(&g));
	struct cache_model c[2];
	assert_int_equal(cache_model_init(&c[0], &g, m0), 0);
	assert_int_equal(cache_model_init(&c[1], &g, m1), 0);
	int misses = 0;
	for (int i = 0; i < 100; i++) {
		int me = i & 1, other = !me;
		enum cm_result r = cache_model_access(&c[me], 0x5000, true);
		if (r != CM_HIT)
			cache_model_invalidate(&c[other], 0x5000), misses++;
	}
	assert_int_equal(misses, 100);   /* every write by the other CPU is a miss */
	/* both only read: after the first two misses, all hits */
	cache_model_flush(&c[0]);
	cache_model_flush(&c[1]);
	misses = 0;
	for (int i = 0; i < 100; i++) {
		int me = i & 1, other = !me;
		if (cache_model_access(&c[me], 0x6000, false) != CM_HIT)
			cache_model_downgrade(&c[other], 0x6000), misses++;
	}
	assert_int_equal(misses, 2);
	free(m0);
	free(m1);
}

/* Reference: per set, an array of (line, valid, excl, last-use time). */
struct ref_entry { uint64_t line; int valid, excl; uint64_t t; };

static void test_random_vs_reference(void **state)
{
	(void)state;
	uint64_t rng = 12345;
	for (int round = 0; round < 12; round++) {
		uint32_t ways = 1 + (uint32_t)(round % 5), sets = 1u << (round % 4 + 1), line = 16u << (round % 3);
		make(sets * ways * line, line, ways);
		struct ref_entry *ref = calloc((size_t)sets * ways, sizeof *ref);
		uint64_t now = 0;
		for (int i = 0; i < 20000; i++) {
			rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t addr = (rng >> 20) % (sets * ways * line * 3);
			int op = (int)((rng >> 8) % 10);   /* 0-5 read, 6-7 write, 8 invalidate, 9 downgrade */
			uint64_t ln = addr / line;
			struct ref_entry *s = &ref[(ln % sets) * ways];
			int hit = -1;
			for (uint32_t w = 0; w < ways; w++)
				if (s[w].valid && s[w].line == ln)
					hit = (int)w;
			now++;
			if (op <= 7) {
				bool write = op >= 6;
				enum cm_result want;
				if (hit >= 0) {
					want = write && !s[hit].excl ? CM_UPGRADE : CM_HIT;
					s[hit].excl |= write;
					s[hit].t = now;
				} else {
					want = CM_MISS;
					int v = -1;
					for (uint32_t w = 0; w < ways && v < 0; w++)
						if (!s[w].valid)
							v = (int)w;
					if (v < 0) {
						v = 0;
						for (uint32_t w = 1; w < ways; w++)
							if (s[w].t < s[v].t)
								v = (int)w;
					}
					s[v] = (struct ref_entry){ ln, 1, write, now };
				}
				assert_int_equal(cache_model_access(&cm, addr, write), want);
			} else if (op == 8) {
				assert_int_equal(cache_model_invalidate(&cm, addr), hit >= 0);
				if (hit >= 0)
					s[hit].valid = 0;
			} else {
				assert_int_equal(cache_model_downgrade(&cm, addr), hit >= 0);
				if (hit >= 0)
					s[hit].excl = 0;
			}
			/* the line's state now agrees with the reference */
			int at = -1;
			for (uint32_t w = 0; w < ways; w++)
				if (s[w].valid && s[w].line == ln)
					at = (int)w;
			bool ex;
			assert_int_equal(cache_model_holds(&cm, addr, &ex), at >= 0);
			assert_int_equal(ex, at >= 0 && s[at].excl);
		}
		free(ref);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_direct_mapped),
		cmocka_unit_test(test_lru),
		cmocka_unit_test(test_states_and_coherence),
		cmocka_unit_test(test_two_cpus),
		cmocka_unit_test(test_random_vs_reference),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
