/* libbtree: a B+-tree of sector extents (see btree.h).
 *
 * Nodes are BTREE_NODE_SIZE (4 KiB) bytes: the monitor's allocation unit is a page, and a
 * page-sized node gives a fan-out of 170 extents per leaf and 255 children per inner node,
 * so a tree of a million extents is three levels deep.  A leaf holds extents sorted by start;
 * an inner node holds, for each child, the smallest start in that child's subtree (key[0]
 * included), so descending picks the last child whose key is <= the sector sought.
 *
 * Every operation is planned before anything changes.  Only one step can need new nodes:
 * adding one extent (or, when a range splits an extent, two adjacent extents) to one leaf,
 * which splits at most that leaf and its full ancestors.  The exact number of nodes for that
 * is known from the path, so they are allocated first and the operation either fails with
 * the tree untouched or runs to completion.  Everything else (trimming an extent, moving its
 * start, removing extents and rebalancing) happens in place or frees nodes.  When an insert
 * removes at least one extent, the first removed extent's slot is reused for the new one, so
 * no split is needed.
 */
#include "btree.h"
#include "mb_string.h"

struct bt_hdr {
	uint16_t count;                  /* extents (leaf) or children (inner) */
	uint16_t level;                  /* 0 for a leaf */
	uint32_t pad;
};

#define LEAF_CAP  ((BTREE_NODE_SIZE - sizeof(struct bt_hdr)) / sizeof(struct btree_extent))
#define INNER_CAP ((BTREE_NODE_SIZE - sizeof(struct bt_hdr)) / (sizeof(uint64_t) + sizeof(void *)))

struct bt_leaf {
	struct bt_hdr h;
	struct btree_extent e[LEAF_CAP];
};

struct bt_inner {
	struct bt_hdr h;
	uint64_t key[INNER_CAP];         /* smallest start under child[i] */
	void *child[INNER_CAP];
};

_Static_assert(sizeof(struct bt_leaf) <= BTREE_NODE_SIZE, "leaf fits a node");
_Static_assert(sizeof(struct bt_inner) <= BTREE_NODE_SIZE, "inner node fits a node");
_Static_assert(INNER_CAP < 65536 && LEAF_CAP < 65536, "counts fit 16 bits");

unsigned btree_leaf_capacity(void) { return LEAF_CAP; }
unsigned btree_inner_capacity(void) { return INNER_CAP; }

static inline struct bt_hdr *hdr(void *n) { return n; }
static inline uint64_t ext_end(const struct btree_extent *x) { return x->start + x->len; }

static inline uint64_t val_at(const struct btree *t, const struct btree_extent *x, uint64_t s)
{
	return x->value + (s - x->start) * t->value_step;
}

static inline uint64_t node_min(void *n)
{
	return hdr(n)->level ? ((struct bt_inner *)n)->key[0] : ((struct bt_leaf *)n)->e[0].start;
}

static inline struct btree_extent *entry(const struct btree_path *p)
{
	return &((struct bt_leaf *)p->node[0])->e[p->idx[0]];
}

void btree_init(struct btree *t, uint64_t value_step, unsigned flags,
		void *(*alloc_node)(void *ctx), void (*free_node)(void *ctx, void *node), void *ctx)
{
	memset(t, 0, sizeof(*t));
	t->value_step = value_step;
	t->flags = flags;
	t->leaf_max = LEAF_CAP;
	t->inner_max = INNER_CAP;
	t->alloc_node = alloc_node;
	t->free_node = free_node;
	t->ctx = ctx;
}

int btree_set_fanout(struct btree *t, unsigned leaf_max, unsigned inner_max)
{
	if (t->root)
		return BTREE_EINVAL;
	if (!leaf_max)
		leaf_max = LEAF_CAP;
	if (!inner_max)
		inner_max = INNER_CAP;
	if (leaf_max < 4 || leaf_max > LEAF_CAP || inner_max < 4 || inner_max > INNER_CAP)
		return BTREE_EINVAL;
	t->leaf_max = leaf_max;
	t->inner_max = inner_max;
	return BTREE_OK;
}

/* ---- positions ---- */

/* Path to the last extent whose start is <= key; idx[0] is -1 when key precedes every extent
 * (then the path is the leftmost leaf's).  False if the tree is empty. */
static bool seek(const struct btree *t, uint64_t key, struct btree_path *p)
{
	void *n = t->root;
	if (!n) {
		p->idx[0] = -1;
		return false;
	}
	for (unsigned l = t->height - 1; l > 0; l--) {
		struct bt_inner *in = n;
		int lo = 0, hi = in->h.count - 1;
		while (lo < hi) {
			int mid = (lo + hi + 1) / 2;
			if (in->key[mid] <= key)
				lo = mid;
			else
				hi = mid - 1;
		}
		p->node[l] = n;
		p->idx[l] = lo;
		n = in->child[lo];
	}
	struct bt_leaf *lf = n;
	int lo = -1, hi = lf->h.count - 1;
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;
		if (lf->e[mid].start <= key)
			lo = mid;
		else
			hi = mid - 1;
	}
	p->node[0] = n;
	p->idx[0] = lo;
	return true;
}

/* Path to the last extent starting before s (true), or to the position before the first
 * extent (false; idx[0] == -1). */
static bool seek_before(const struct btree *t, uint64_t s, struct btree_path *p)
{
	if (!seek(t, s ? s - 1 : 0, p))
		return false;
	if (s == 0)
		p->idx[0] = -1;
	return p->idx[0] >= 0;
}

/* Advance to the next extent; false (path unchanged) at the end. */
static bool path_next(const struct btree *t, struct btree_path *p)
{
	if (p->idx[0] + 1 < hdr(p->node[0])->count) {
		p->idx[0]++;
		return true;
	}
	unsigned l = 1;
	while (l < t->height && p->idx[l] + 1 >= hdr(p->node[l])->count)
		l++;
	if (l >= t->height)
		return false;
	p->idx[l]++;
	void *n = ((struct bt_inner *)p->node[l])->child[p->idx[l]];
	while (l-- > 1) {
		p->node[l] = n;
		p->idx[l] = 0;
		n = ((struct bt_inner *)n)->child[0];
	}
	p->node[0] = n;
	p->idx[0] = 0;
	return true;
}

/* Path to the first extent whose start is >= key. */
static bool seek_ge(const struct btree *t, uint64_t key, struct btree_path *p)
{
	if (!seek(t, key, p))
		return false;
	if (p->idx[0] >= 0 && entry(p)->start == key)
		return true;
	return path_next(t, p);
}

/* The smallest start under the node at `level` of the path became key: update the
 * separators above it, as far as it is the leftmost child. */
static void fix_up(struct btree *t, struct btree_path *p, unsigned level, uint64_t key)
{
	for (unsigned l = level + 1; l < t->height; l++) {
		((struct bt_inner *)p->node[l])->key[p->idx[l]] = key;
		if (p->idx[l] != 0)
			break;
	}
}

/* ---- node supply ---- */

static void release_spares(struct btree *t)
{
	while (t->nr_spare)
		t->free_node(t->ctx, t->spare[--t->nr_spare]);
}

/* Hold `need` nodes for the operation about to run (need < 0 is an error to pass on). */
static int reserve(struct btree *t, int need)
{
	if (need < 0)
		return need;
	while (t->nr_spare < (unsigned)need) {
		void *n = t->alloc_node(t->ctx);
		if (!n) {
			release_spares(t);
			return BTREE_ENOMEM;
		}
		t->spare[t->nr_spare++] = n;
	}
	return BTREE_OK;
}

static void *new_node(struct btree *t, unsigned level)
{
	struct bt_hdr *h = t->spare[--t->nr_spare];
	h->count = 0;
	h->level = level;
	h->pad = 0;
	t->nr_nodes++;
	return h;
}

static void drop_node(struct btree *t, void *n)
{
	t->nr_nodes--;
	t->free_node(t->ctx, n);
}

/* Nodes needed to add `extra` (1 or 2) adjacent extents to the leaf of the path: the leaf
 * splits at most once (a split leaves at most max - 1 extents in each half), then each full
 * ancestor splits, then perhaps a new root. */
static int path_need(const struct btree *t, const struct btree_path *p, unsigned extra)
{
	if (!t->root)
		return 1;
	if (hdr(p->node[0])->count + extra <= t->leaf_max)
		return 0;
	int need = 1;
	for (unsigned l = 1; l < t->height; l++) {
		if (hdr(p->node[l])->count + 1u <= t->inner_max)
			return need;
		need++;
	}
	if (t->height >= BTREE_MAX_DEPTH)
		return BTREE_ENOSPC;
	return need + 1;
}

/* ---- items: extents in leaves, (key, child) pairs in inner nodes ---- */

static void copy_items(void *dst, unsigned di, void *src, unsigned si, unsigned cnt)
{
	if (!cnt)
		return;
	if (hdr(dst)->level == 0) {
		memmove(&((struct bt_leaf *)dst)->e[di], &((struct bt_leaf *)src)->e[si],
			cnt * sizeof(struct btree_extent));
	} else {
		struct bt_inner *d = dst, *s = src;
		memmove(&d->key[di], &s->key[si], cnt * sizeof(d->key[0]));
		memmove(&d->child[di], &s->child[si], cnt * sizeof(d->child[0]));
	}
}

static void inner_put(struct bt_inner *in, unsigned pos, uint64_t key, void *child)
{
	copy_items(in, pos + 1, in, pos, in->h.count - pos);
	in->key[pos] = key;
	in->child[pos] = child;
	in->h.count++;
}

/* Add (key, child) right after the path's position at `level`, splitting upwards; at
 * level == height, grow a new root.  pos >= 1, so no node's smallest key changes. */
static void inner_insert(struct btree *t, struct btree_path *p, unsigned level, uint64_t key, void *child)
{
	if (level == t->height) {
		struct bt_inner *root = new_node(t, level);
		root->key[0] = node_min(t->root);
		root->child[0] = t->root;
		root->key[1] = key;
		root->child[1] = child;
		root->h.count = 2;
		t->root = root;
		t->height++;
		return;
	}
	struct bt_inner *in = p->node[level];
	unsigned pos = p->idx[level] + 1, max = t->inner_max;
	if (in->h.count < max) {
		inner_put(in, pos, key, child);
		return;
	}
	struct bt_inner *r = new_node(t, level);
	unsigned m = (max + 1) / 2;          /* the left half ends with m items */
	if (pos < m) {
		copy_items(r, 0, in, m - 1, max - (m - 1));
		r->h.count = max - (m - 1);
		in->h.count = m - 1;
		inner_put(in, pos, key, child);
	} else {
		copy_items(r, 0, in, m, max - m);
		r->h.count = max - m;
		in->h.count = m;
		inner_put(r, pos - m, key, child);
	}
	inner_insert(t, p, level + 1, r->key[0], r);
}

/* Add x at position pos of the path's leaf (creating the root leaf of an empty tree).
 * Uses reserved nodes; the path is stale afterwards. */
static void leaf_insert(struct btree *t, struct btree_path *p, int pos, const struct btree_extent *x)
{
	t->nr_extents++;
	t->nr_sectors += x->len;
	if (!t->root) {
		t->root = new_node(t, 0);
		t->height = 1;
		p->node[0] = t->root;
		pos = 0;
	}
	struct bt_leaf *lf = p->node[0];
	unsigned max = t->leaf_max;
	if (lf->h.count < max) {
		copy_items(lf, pos + 1, lf, pos, lf->h.count - pos);
		lf->e[pos] = *x;
		lf->h.count++;
		if (pos == 0)
			fix_up(t, p, 0, x->start);
		return;
	}
	struct bt_leaf *r = new_node(t, 0);
	unsigned m = (max + 1) / 2;
	if ((unsigned)pos < m) {
		copy_items(r, 0, lf, m - 1, max - (m - 1));
		r->h.count = max - (m - 1);
		copy_items(lf, pos + 1, lf, pos, m - 1 - pos);
		lf->e[pos] = *x;
		lf->h.count = m;
		if (pos == 0)
			fix_up(t, p, 0, x->start);
	} else {
		unsigned rp = pos - m;
		copy_items(r, 0, lf, m, max - m);
		r->h.count = max - m;
		lf->h.count = m;
		copy_items(r, rp + 1, r, rp, r->h.count - rp);
		r->e[rp] = *x;
		r->h.count++;
	}
	inner_insert(t, p, 1, r->e[0].start, r);
}

/* Restore minimum fill at `level` of the path after a removal there. */
static void rebalance(struct btree *t, struct btree_path *p, unsigned level)
{
	struct bt_hdr *n = p->node[level];
	if (level == t->height - 1) {
		if (level == 0 && n->count == 0) {
			drop_node(t, n);
			t->root = NULL;
			t->height = 0;
		} else if (level > 0 && n->count == 1) {
			t->root = ((struct bt_inner *)n)->child[0];
			drop_node(t, n);
			t->height--;
		}
		return;
	}
	unsigned min = (level ? t->inner_max : t->leaf_max) / 2;
	if (n->count >= min)
		return;
	/* not the root, so the parent has at least two children: n has a sibling */
	struct bt_inner *par = p->node[level + 1];
	unsigned pi = p->idx[level + 1];
	struct bt_hdr *left = pi > 0 ? par->child[pi - 1] : NULL;
	struct bt_hdr *right = pi + 1 < par->h.count ? par->child[pi + 1] : NULL;
	if (left && left->count > min) {
		copy_items(n, 1, n, 0, n->count);
		copy_items(n, 0, left, left->count - 1, 1);
		n->count++;
		left->count--;
		par->key[pi] = node_min(n);          /* pi > 0: nothing above changes */
	} else if (right && right->count > min) {
		copy_items(n, n->count, right, 0, 1);
		n->count++;
		copy_items(right, 0, right, 1, right->count - 1);
		right->count--;
		par->key[pi + 1] = node_min(right);
	} else if (left) {
		copy_items(left, left->count, n, 0, n->count);
		left->count += n->count;
		drop_node(t, n);
		copy_items(par, pi, par, pi + 1, par->h.count - pi - 1);
		par->h.count--;
		rebalance(t, p, level + 1);
	} else {
		copy_items(n, n->count, right, 0, right->count);
		n->count += right->count;
		drop_node(t, right);
		copy_items(par, pi + 1, par, pi + 2, par->h.count - pi - 2);
		par->h.count--;
		rebalance(t, p, level + 1);
	}
}

/* Remove the path's extent; never allocates.  The path is stale afterwards. */
static void leaf_delete(struct btree *t, struct btree_path *p)
{
	struct bt_leaf *lf = p->node[0];
	unsigned pos = p->idx[0];
	t->nr_extents--;
	t->nr_sectors -= lf->e[pos].len;
	copy_items(lf, pos, lf, pos + 1, lf->h.count - pos - 1);
	lf->h.count--;
	if (pos == 0 && lf->h.count)
		fix_up(t, p, 0, lf->e[0].start);
	rebalance(t, p, 0);
}

/* Replace the path's extent by x, which must keep the order (x->start between the
 * neighbours' ends and starts). */
static void set_entry(struct btree *t, struct btree_path *p, const struct btree_extent *x)
{
	struct btree_extent *e = entry(p);
	bool rekey = e->start != x->start;
	t->nr_sectors += x->len - e->len;
	*e = *x;
	if (rekey && p->idx[0] == 0)
		fix_up(t, p, 0, x->start);
}

/* Remove every extent whose start is in [lo, hi). */
static void delete_starts(struct btree *t, uint64_t lo, uint64_t hi)
{
	struct btree_path p;
	while (lo < hi && seek_ge(t, lo, &p) && entry(&p)->start < hi)
		leaf_delete(t, &p);
}

static int done(struct btree *t)
{
	release_spares(t);                   /* none left when the plan was right */
	t->gen++;
	return BTREE_OK;
}

/* ---- the operations ---- */

int btree_insert(struct btree *t, uint64_t s, uint64_t n, uint64_t v)
{
	if (n == 0)
		return BTREE_OK;
	if (n > UINT64_MAX - s)
		return BTREE_EINVAL;
	uint64_t e = s + n;
	bool merge = t->flags & BTREE_MERGE;
	struct btree_path p, q;
	struct btree_extent P = { 0, 0, 0 }, C = { 0, 0, 0 }, R = { 0, 0, 0 }, x;
	int r;

	/* P: the last extent starting before s */
	bool has_p = seek_before(t, s, &p);
	if (has_p)
		P = *entry(&p);
	if (has_p && ext_end(&P) > e) {
		/* [s, e) lies inside P with sectors on both sides: P, new, rest of P */
		if (merge && val_at(t, &P, s) == v)
			return BTREE_OK;
		if ((r = reserve(t, path_need(t, &p, 2))))
			return r;
		x = P;
		x.len = s - P.start;
		set_entry(t, &p, &x);
		x = (struct btree_extent){ s, n, v };
		leaf_insert(t, &p, p.idx[0] + 1, &x);
		seek(t, s, &p);
		x = (struct btree_extent){ e, ext_end(&P) - e, val_at(t, &P, e) };
		leaf_insert(t, &p, p.idx[0] + 1, &x);
		return done(t);
	}

	/* C: the last extent starting before e, if it starts at or after s and runs past e */
	bool has_c = false;
	if (seek(t, e - 1, &q) && q.idx[0] >= 0) {
		C = *entry(&q);
		has_c = C.start >= s && ext_end(&C) > e;
	}
	/* is some extent entirely inside [s, e)? (the first starting at or after s) */
	bool covered = seek_ge(t, s, &q) && entry(&q)->start < e && ext_end(entry(&q)) <= e;
	/* R: the extent that will start at e: the rest of C, or one already starting there */
	bool has_r = false;
	if (has_c) {
		R = (struct btree_extent){ e, ext_end(&C) - e, val_at(t, &C, e) };
		has_r = true;
	} else if (seek_ge(t, e, &q) && entry(&q)->start == e) {
		R = *entry(&q);
		has_r = true;
	}
	bool lm = merge && has_p && ext_end(&P) >= s && val_at(t, &P, s) == v;
	bool rm = merge && has_r && R.value == v + n * t->value_step;
	bool add = !lm && !rm && !covered;
	if (add && (r = reserve(t, path_need(t, &p, 1))))
		return r;

	/* nothing fails from here on; the path p stays valid until something is removed */
	if (has_p && ext_end(&P) > s) {
		x = P;
		x.len = s - P.start;
		set_entry(t, &p, &x);
		P = x;
	}
	if (has_c) {
		seek(t, C.start, &q);
		set_entry(t, &q, &R);
	}
	if (add) {
		x = (struct btree_extent){ s, n, v };
		leaf_insert(t, &p, p.idx[0] + 1, &x);
	} else if (lm) {
		delete_starts(t, s, e);
		x = P;
		x.len += n;
		if (rm) {
			seek(t, e, &q);
			leaf_delete(t, &q);
			x.len += R.len;
		}
		seek(t, P.start, &q);
		set_entry(t, &q, &x);
	} else if (rm) {
		delete_starts(t, s, e);
		seek(t, e, &q);
		x = (struct btree_extent){ s, R.len + n, v };
		set_entry(t, &q, &x);
	} else {
		/* reuse the first covered extent's slot, drop the others */
		seek_ge(t, s, &q);
		x = (struct btree_extent){ s, n, v };
		set_entry(t, &q, &x);
		delete_starts(t, s + 1, e);
	}
	return done(t);
}

int btree_delete(struct btree *t, uint64_t s, uint64_t n)
{
	if (n == 0)
		return BTREE_OK;
	if (n > UINT64_MAX - s)
		return BTREE_EINVAL;
	uint64_t e = s + n;
	struct btree_path p, q;
	struct btree_extent P, x;
	int r;

	if (seek_before(t, s, &p)) {
		P = *entry(&p);
		if (ext_end(&P) > e) {
			/* a hole in the middle of P */
			if ((r = reserve(t, path_need(t, &p, 1))))
				return r;
			x = P;
			x.len = s - P.start;
			set_entry(t, &p, &x);
			x = (struct btree_extent){ e, ext_end(&P) - e, val_at(t, &P, e) };
			leaf_insert(t, &p, p.idx[0] + 1, &x);
			return done(t);
		}
		if (ext_end(&P) > s) {
			x = P;
			x.len = s - P.start;
			set_entry(t, &p, &x);
		}
	}
	if (seek(t, e - 1, &q) && q.idx[0] >= 0) {
		struct btree_extent C = *entry(&q);
		if (C.start >= s && ext_end(&C) > e) {
			x = (struct btree_extent){ e, ext_end(&C) - e, val_at(t, &C, e) };
			set_entry(t, &q, &x);
		}
	}
	delete_starts(t, s, e);
	return done(t);
}

bool btree_lookup(const struct btree *t, uint64_t sector, struct btree_extent *out)
{
	struct btree_path p;
	if (!seek(t, sector, &p) || p.idx[0] < 0 || sector >= ext_end(entry(&p)))
		return false;
	*out = *entry(&p);
	return true;
}

bool btree_lookup_ge(const struct btree *t, uint64_t sector, struct btree_extent *out)
{
	struct btree_path p;
	if (!seek(t, sector, &p))
		return false;
	if (!(p.idx[0] >= 0 && sector < ext_end(entry(&p))) && !path_next(t, &p))
		return false;
	*out = *entry(&p);
	return true;
}

void btree_iter_init(struct btree_iter *it, const struct btree *t, uint64_t start, uint64_t end)
{
	it->t = t;
	it->pos = start;
	it->end = end;
	it->gen = 0;
	it->primed = false;
	it->done = start >= end;
}

bool btree_iter_next(struct btree_iter *it, struct btree_extent *out)
{
	const struct btree *t = it->t;
	struct btree_path *p = &it->path;
	bool ok;
	if (it->done)
		return false;
	if (it->primed && it->gen == t->gen) {
		ok = path_next(t, p);
	} else {
		ok = seek(t, it->pos, p);
		if (ok && !(p->idx[0] >= 0 && it->pos < ext_end(entry(p))))
			ok = path_next(t, p);
	}
	if (!ok || entry(p)->start >= it->end) {
		it->done = true;
		return false;
	}
	*out = *entry(p);
	it->pos = ext_end(out);
	it->gen = t->gen;
	it->primed = true;
	return true;
}

int btree_visit(const struct btree *t, uint64_t start, uint64_t end,
		int (*fn)(void *arg, const struct btree_extent *e), void *arg)
{
	struct btree_iter it;
	struct btree_extent x;
	btree_iter_init(&it, t, start, end);
	while (btree_iter_next(&it, &x)) {
		int r = fn(arg, &x);
		if (r)
			return r;
	}
	return 0;
}

static void free_subtree(struct btree *t, void *n)
{
	if (hdr(n)->level) {
		struct bt_inner *in = n;
		for (unsigned i = 0; i < in->h.count; i++)
			free_subtree(t, in->child[i]);
	}
	t->free_node(t->ctx, n);
}

void btree_destroy(struct btree *t)
{
	if (t->root)
		free_subtree(t, t->root);
	release_spares(t);
	t->root = NULL;
	t->height = 0;
	t->nr_extents = 0;
	t->nr_sectors = 0;
	t->nr_nodes = 0;
	t->gen++;
}

/* ---- invariants ---- */

struct check {
	const struct btree *t;
	uint64_t extents, sectors, nodes;
	bool have_prev;
	struct btree_extent prev;
};

static const char *check_node(struct check *c, void *n, unsigned level, bool root, uint64_t *min)
{
	const struct btree *t = c->t;
	struct bt_hdr *h = n;
	c->nodes++;
	if (h->level != level)
		return "node level does not match its depth (leaves at different depths)";
	unsigned max = level ? t->inner_max : t->leaf_max;
	if (h->count > max)
		return "node over capacity";
	if (root) {
		if (level && h->count < 2)
			return "inner root with fewer than two children";
		if (!level && h->count == 0)
			return "empty root leaf";
	} else if (h->count < max / 2) {
		return "node under minimum fill";
	}
	if (level == 0) {
		struct bt_leaf *lf = n;
		for (unsigned i = 0; i < h->count; i++) {
			struct btree_extent *x = &lf->e[i];
			if (x->len == 0)
				return "empty extent";
			if (x->len > UINT64_MAX - x->start)
				return "extent end overflows";
			if (c->have_prev) {
				if (ext_end(&c->prev) > x->start)
					return "extents out of order or overlapping";
				if ((t->flags & BTREE_MERGE) && ext_end(&c->prev) == x->start &&
				    val_at(t, &c->prev, x->start) == x->value)
					return "mergeable neighbours left apart";
			}
			c->prev = *x;
			c->have_prev = true;
			c->extents++;
			c->sectors += x->len;
		}
		*min = lf->e[0].start;
		return NULL;
	}
	struct bt_inner *in = n;
	for (unsigned i = 0; i < h->count; i++) {
		uint64_t cmin;
		const char *err = check_node(c, in->child[i], level - 1, false, &cmin);
		if (err)
			return err;
		if (cmin != in->key[i])
			return "separator is not the smallest start under its child";
	}
	*min = in->key[0];
	return NULL;
}

const char *btree_check(const struct btree *t)
{
	struct check c = { .t = t };
	uint64_t min;
	if (t->nr_spare)
		return "spare nodes held between operations";
	if (!t->root)
		return t->height || t->nr_extents || t->nr_sectors || t->nr_nodes ?
			"empty tree with non-zero height or counters" : NULL;
	if (t->height == 0 || t->height > BTREE_MAX_DEPTH)
		return "bad height";
	const char *err = check_node(&c, t->root, t->height - 1, true, &min);
	if (err)
		return err;
	if (c.extents != t->nr_extents)
		return "extent count is wrong";
	if (c.sectors != t->nr_sectors)
		return "sector count is wrong";
	if (c.nodes != t->nr_nodes)
		return "node count is wrong";
	return NULL;
}
