/* libbtree: a B+-tree of sector extents, freestanding (no malloc, no libc beyond mem*).
 *
 * An extent maps the sectors [start, start + len) to values: sector s maps to
 * value + (s - start) * value_step, with value_step fixed per tree (e.g. 512 for a byte
 * offset into a backing store, 1 for a sector number, 0 for a plain tag).  Extents never
 * overlap.  Arithmetic on values is modulo 2^64.  A range must satisfy len >= 1 and
 * start + len <= UINT64_MAX (so the last sector, UINT64_MAX, can never be mapped).
 *
 * Node memory comes from the caller: alloc_node returns BTREE_NODE_SIZE bytes aligned to at
 * least 8 (a 4 KiB page is the intended unit), or NULL; free_node gives one back.  An empty
 * tree holds no node.  The tree keeps no spare nodes between operations.
 *
 * Every mutating call either succeeds or returns an error with the tree exactly as it was
 * (allocation happens up front, before anything is changed).  Not thread-safe: callers
 * serialise access to a tree (readers included, if a writer may run concurrently).
 */
#ifndef MB_BTREE_H
#define MB_BTREE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BTREE_NODE_SIZE 4096u
#define BTREE_MAX_DEPTH 24           /* levels, leaves included; far beyond any real tree */

/* Return codes (negative, errno values). */
#define BTREE_OK      0
#define BTREE_ENOMEM  (-12)          /* alloc_node returned NULL */
#define BTREE_EINVAL  (-22)          /* start + len overflows */
#define BTREE_ENOSPC  (-28)          /* the tree would exceed BTREE_MAX_DEPTH (tiny test fan-outs only) */

/* btree_init flags */
#define BTREE_MERGE   1u             /* coalesce extents whose sectors and values both continue */

struct btree_extent {
	uint64_t start;
	uint64_t len;
	uint64_t value;                  /* the value of sector `start` */
};

struct btree {
	void *root;                      /* NULL when empty */
	unsigned height;                 /* levels: 0 empty, 1 a single leaf */
	unsigned flags;
	unsigned leaf_max, inner_max;    /* fan-out in use (see btree_set_fanout) */
	uint64_t value_step;
	uint64_t nr_extents;
	uint64_t nr_sectors;             /* sectors covered by all extents */
	uint64_t nr_nodes;               /* nodes currently held */
	uint64_t gen;                    /* bumped by every change; iterators re-seek on a mismatch */
	void *(*alloc_node)(void *ctx);
	void (*free_node)(void *ctx, void *node);
	void *ctx;
	void *spare[BTREE_MAX_DEPTH + 1];/* nodes reserved for the operation in progress */
	unsigned nr_spare;
};

/* A position in the tree (internal, but iterators embed it). */
struct btree_path {
	void *node[BTREE_MAX_DEPTH];     /* [0] is the leaf */
	int idx[BTREE_MAX_DEPTH];
};

struct btree_iter {
	const struct btree *t;
	uint64_t pos;                    /* next extent to return ends after this sector */
	uint64_t end;                    /* ... and starts before this one */
	uint64_t gen;
	bool primed, done;
	struct btree_path path;
};

/* An empty tree; allocates nothing. */
void btree_init(struct btree *t, uint64_t value_step, unsigned flags,
		void *(*alloc_node)(void *ctx), void (*free_node)(void *ctx, void *node), void *ctx);

/* Testing aid: use at most leaf_max extents per leaf and inner_max children per inner node
 * (4 <= x <= the node's capacity; 0 = the capacity) to build deep trees from few extents.
 * Only on an empty tree; returns BTREE_EINVAL otherwise. */
int btree_set_fanout(struct btree *t, unsigned leaf_max, unsigned inner_max);

/* Map [start, start + len) to value..., replacing whatever mapped any of it: overlapping
 * extents are trimmed, split or removed.  With BTREE_MERGE the new extent absorbs neighbours
 * that touch it and continue its values, and inserting a mapping that is already there is a
 * no-op.  len == 0 is a no-op.  Allocates at most height + 1 nodes. */
int btree_insert(struct btree *t, uint64_t start, uint64_t len, uint64_t value);

/* Unmap [start, start + len): trims, splits or removes extents.  Allocates (at most
 * height + 1 nodes) only to split an extent that covers the range with sectors on both
 * sides; otherwise it cannot fail except for BTREE_EINVAL.  len == 0 is a no-op. */
int btree_delete(struct btree *t, uint64_t start, uint64_t len);

/* The extent containing sector; false if none. */
bool btree_lookup(const struct btree *t, uint64_t sector, struct btree_extent *out);

/* Like btree_lookup, but on a miss returns the first extent after sector (false if none):
 * a reader can tell how far the unmapped gap at sector reaches. */
bool btree_lookup_ge(const struct btree *t, uint64_t sector, struct btree_extent *out);

/* Iterate, in order, over whole (unclipped) extents that overlap [start, end); use
 * start = 0, end = UINT64_MAX for everything.  The tree may be changed between calls to
 * btree_iter_next: iteration then resumes with the first extent that ends after the end of
 * the last one returned. */
void btree_iter_init(struct btree_iter *it, const struct btree *t, uint64_t start, uint64_t end);
bool btree_iter_next(struct btree_iter *it, struct btree_extent *out);

/* Calls fn for each extent overlapping [start, end) in order; stops at and returns the first
 * non-zero value fn returns, 0 otherwise.  fn must not change the tree. */
int btree_visit(const struct btree *t, uint64_t start, uint64_t end,
		int (*fn)(void *arg, const struct btree_extent *e), void *arg);

static inline uint64_t btree_count(const struct btree *t) { return t->nr_extents; }
static inline uint64_t btree_sectors(const struct btree *t) { return t->nr_sectors; }
static inline uint64_t btree_nodes(const struct btree *t) { return t->nr_nodes; }

/* Free every node through free_node; the tree is then empty and usable again. */
void btree_destroy(struct btree *t);

/* Check every invariant (order, no overlap, lengths, separator keys, node fill, uniform depth,
 * counters, no mergeable neighbours under BTREE_MERGE).  NULL if all hold, else what failed. */
const char *btree_check(const struct btree *t);

/* Capacities of a BTREE_NODE_SIZE node. */
unsigned btree_leaf_capacity(void);
unsigned btree_inner_capacity(void);
#endif
