/* Reference model for libbtree: a sorted array of extents with the same semantics, written
 * the obvious way (binary search + memmove).  Shared by tests/unit/test_btree.c and
 * tests/fuzz/fuzz_btree.c; host only (uses malloc). */
#ifndef MB_BTREE_MODEL_H
#define MB_BTREE_MODEL_H
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "btree.h"

struct model {
	struct btree_extent *e;
	size_t n, cap;
	uint64_t step;
	bool merge;
};

static inline uint64_t m_end(const struct btree_extent *x) { return x->start + x->len; }

static void model_init(struct model *m, uint64_t step, bool merge)
{
	memset(m, 0, sizeof(*m));
	m->step = step;
	m->merge = merge;
}

static void model_free(struct model *m)
{
	free(m->e);
	m->e = NULL;
	m->n = m->cap = 0;
}

/* first index whose extent ends after s */
static size_t model_first_after(const struct model *m, uint64_t s)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m_end(&m->e[mid]) > s)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void model_put(struct model *m, size_t i, struct btree_extent x)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
		if (!m->e)
			abort();
	}
	memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
	m->e[i] = x;
	m->n++;
}

static void model_remove(struct model *m, size_t i, size_t cnt)
{
	if (cnt)
		memmove(&m->e[i], &m->e[i + cnt], (m->n - i - cnt) * sizeof(*m->e));
	m->n -= cnt;
}

static void model_delete(struct model *m, uint64_t s, uint64_t len)
{
	if (!len)
		return;
	uint64_t e = s + len;
	size_t i = model_first_after(m, s);
	if (i < m->n && m->e[i].start < s) {
		struct btree_extent x = m->e[i];
		m->e[i].len = s - x.start;
		i++;
		if (m_end(&x) > e) {
			struct btree_extent rest = { e, m_end(&x) - e, x.value + (e - x.start) * m->step };
			model_put(m, i, rest);
			return;
		}
	}
	size_t j = i;
	while (j < m->n && m->e[j].start < e && m_end(&m->e[j]) <= e)
		j++;
	if (j < m->n && m->e[j].start < e) {
		struct btree_extent *x = &m->e[j];
		x->value += (e - x->start) * m->step;
		x->len = m_end(x) - e;
		x->start = e;
	}
	model_remove(m, i, j - i);
}

static bool model_mergeable(const struct model *m, const struct btree_extent *a, const struct btree_extent *b)
{
	return m_end(a) == b->start && a->value + a->len * m->step == b->value;
}

static void model_insert(struct model *m, uint64_t s, uint64_t len, uint64_t v)
{
	if (!len)
		return;
	model_delete(m, s, len);
	size_t i = model_first_after(m, s);
	struct btree_extent x = { s, len, v };
	model_put(m, i, x);
	if (!m->merge)
		return;
	if (i + 1 < m->n && model_mergeable(m, &m->e[i], &m->e[i + 1])) {
		m->e[i].len += m->e[i + 1].len;
		model_remove(m, i + 1, 1);
	}
	if (i > 0 && model_mergeable(m, &m->e[i - 1], &m->e[i])) {
		m->e[i - 1].len += m->e[i].len;
		model_remove(m, i, 1);
	}
}

static bool model_lookup(const struct model *m, uint64_t sector, struct btree_extent *out)
{
	size_t i = model_first_after(m, sector);
	if (i < m->n && m->e[i].start <= sector) {
		*out = m->e[i];
		return true;
	}
	return false;
}

static uint64_t model_sectors(const struct model *m)
{
	uint64_t s = 0;
	for (size_t i = 0; i < m->n; i++)
		s += m->e[i].len;
	return s;
}

/* Compare the tree's extents overlapping [s, e) with the model's; NULL if equal. */
static const char *model_compare_range(const struct model *m, const struct btree *t, uint64_t s, uint64_t e)
{
	struct btree_iter it;
	struct btree_extent x;
	size_t i = model_first_after(m, s);
	btree_iter_init(&it, t, s, e);
	while (btree_iter_next(&it, &x)) {
		if (i >= m->n || m->e[i].start >= e)
			return "tree iterates an extent the model lacks";
		if (memcmp(&x, &m->e[i], sizeof(x)))
			return "tree and model extents differ";
		i++;
	}
	if (s < e && i < m->n && m->e[i].start < e)
		return "model has an extent the tree does not iterate";
	return NULL;
}

/* Whole-tree comparison, counters included; NULL if equal. */
static const char *model_compare(const struct model *m, const struct btree *t)
{
	const char *err = model_compare_range(m, t, 0, UINT64_MAX);
	if (err)
		return err;
	if (btree_count(t) != m->n)
		return "extent count differs from the model";
	if (btree_sectors(t) != model_sectors(m))
		return "sector count differs from the model";
	return NULL;
}
#endif
