/* libFuzzer target for libbtree: the input is a sequence of operations run on a tree and on
 * the reference model (btree_model.h); any difference, broken invariant, leak or wrong return
 * code aborts.  With -DFUZZ_STANDALONE a main() runs the target over files and directories
 * given on the command line, or over a built-in pseudo-random corpus (see README.md).
 *
 * Input: byte 0 configures the tree:
 *   bits 0-1  fan-out (leaf/inner): 4/4, 5/4, 4/7, full (170/255)
 *   bit 2     BTREE_MERGE
 *   bits 3-4  value_step: 1, 0, 512, 0x9E3779B97F4A7C15
 *   bit 5     work near the top of the sector space (ranges end at UINT64_MAX)
 * then operations, one opcode byte each followed by its operands (missing bytes read as 0):
 *   op & 7 = 0..2 insert, 3..4 delete: start (2 bytes), length (1 byte, or 2 if op & 0x80),
 *            insert only: value mode from op bits 3-4 (new / continue left / continue right /
 *            already there) and a value byte
 *   op & 7 = 5 lookup and lookup_ge: sector (2 bytes)
 *   op & 7 = 6 overlap iteration: start (2 bytes), length (2 bytes)
 *   op & 7 = 7 the next insert/delete may allocate only (op >> 3) & 7 nodes
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "btree.h"
#include "btree_model.h"

#define SPACE 4096                       /* starts are within SPACE of the base sector */
#define MAX_OPS 20000

static long stat_ops, stat_enomem;       /* reported by the standalone main */

struct falloc {
	long live;
	long fail_after;                 /* < 0: never */
};

static void *f_alloc(void *ctx)
{
	struct falloc *a = ctx;
	if (a->fail_after == 0)
		return NULL;
	if (a->fail_after > 0)
		a->fail_after--;
	void *n = malloc(BTREE_NODE_SIZE);
	if (!n)
		abort();
	a->live++;
	return n;
}

static void f_free(void *ctx, void *node)
{
	struct falloc *a = ctx;
	a->live--;
	free(node);
}

#define DIE(...) do { \
	fprintf(stderr, "fuzz_btree: op %ld: ", op); \
	fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

struct input {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct input *in, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++) {
		uint64_t b = 0;
		if (in->n) {
			b = *in->p++;
			in->n--;
		}
		v |= b << (8 * i);
	}
	return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned fan[4][2] = { { 4, 4 }, { 5, 4 }, { 4, 7 }, { 0, 0 } };
	static const uint64_t steps[4] = { 1, 0, 512, 0x9E3779B97F4A7C15ULL };
	struct input in = { data, size };
	struct falloc a = { 0, -1 };
	struct btree t;
	struct model m;
	struct btree_extent x, y;
	long op = -1;
	if (size == 0)
		return 0;
	unsigned cfg = take(&in, 1);
	uint64_t step = steps[(cfg >> 3) & 3];
	bool merge = cfg & 4;
	uint64_t base = cfg & 0x20 ? UINT64_MAX - SPACE - 64 : 0;
	btree_init(&t, step, merge ? BTREE_MERGE : 0, f_alloc, f_free, &a);
	if (btree_set_fanout(&t, fan[cfg & 3][0], fan[cfg & 3][1]))
		DIE("set_fanout");
	model_init(&m, step, merge);
	long pending_fail = -1;

	for (op = 0; in.n && op < MAX_OPS; op++) {
		unsigned code = take(&in, 1);
		unsigned kind = code & 7;
		if (kind <= 4) {
			bool del = kind >= 3;
			uint64_t s = base + take(&in, 2) % SPACE;
			uint64_t len = code & 0x80 ? take(&in, 2) + 1 : take(&in, 1) % 32 + 1;
			if (len > UINT64_MAX - s)
				len = UINT64_MAX - s;
			uint64_t v = 0;
			if (!del) {
				unsigned mode = (code >> 3) & 3;
				v = take(&in, 1) * 0x100000001ULL;
				if (mode == 1 && s > 0 && btree_lookup(&t, s - 1, &x))
					v = x.value + (s - x.start) * step;
				else if (mode == 2 && btree_lookup(&t, s + len, &x))
					v = x.value + (s + len - x.start) * step - len * step;
				else if (mode == 3 && btree_lookup(&t, s, &x))
					v = x.value + (s - x.start) * step;
			}
			a.fail_after = pending_fail;
			pending_fail = -1;
			int r = del ? btree_delete(&t, s, len) : btree_insert(&t, s, len, v);
			a.fail_after = -1;
			stat_ops++;
			if (r == BTREE_ENOMEM) {
				/* the tree must be as it was: the model is left alone */
				stat_enomem++;
			} else if (r) {
				DIE("%s returned %d", del ? "delete" : "insert", r);
			} else if (del) {
				model_delete(&m, s, len);
			} else {
				model_insert(&m, s, len, v);
			}
			const char *err = btree_check(&t);
			if (!err)
				err = model_compare(&m, &t);
			if (err)
				DIE("after %s [%#lx, +%#lx) -> %#lx (ret %d): %s", del ? "delete" : "insert",
				    (unsigned long)s, (unsigned long)len, (unsigned long)v, r, err);
			if (a.live != (long)btree_nodes(&t))
				DIE("%ld nodes allocated, the tree holds %lu", a.live, (unsigned long)btree_nodes(&t));
		} else if (kind == 5) {
			uint64_t q = base + take(&in, 2) % (SPACE + 128);
			bool hit = btree_lookup(&t, q, &x);
			if (hit != model_lookup(&m, q, &y) || (hit && memcmp(&x, &y, sizeof(x))))
				DIE("lookup %#lx", (unsigned long)q);
			bool ge = btree_lookup_ge(&t, q, &x);
			size_t i = model_first_after(&m, q);
			if (ge != (i < m.n) || (ge && memcmp(&x, &m.e[i], sizeof(x))))
				DIE("lookup_ge %#lx", (unsigned long)q);
		} else if (kind == 6) {
			uint64_t s = base + take(&in, 2) % SPACE;
			uint64_t len = take(&in, 2);
			uint64_t e = len > UINT64_MAX - s ? UINT64_MAX : s + len;
			const char *err = model_compare_range(&m, &t, s, e);
			if (err)
				DIE("iterate [%#lx, %#lx): %s", (unsigned long)s, (unsigned long)e, err);
		} else {
			pending_fail = (code >> 3) & 7;
		}
	}
	btree_destroy(&t);
	if (a.live != 0)
		DIE("%ld nodes leaked by destroy", a.live);
	if (btree_check(&t) || btree_count(&t) || btree_sectors(&t))
		DIE("tree not empty after destroy");
	model_free(&m);
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

/* FUZZ_BTREE_RUNS inputs (default 3000) of up to 2 KiB, from FUZZ_BTREE_SEED. */
int main(int argc, char **argv)
{
	clock_t t0 = clock();
	long count = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			count += run_path(argv[i]);
	} else {
		const char *env = getenv("FUZZ_BTREE_RUNS");
		long runs = env ? atol(env) : 3000;
		env = getenv("FUZZ_BTREE_SEED");
		if (env)
			rng = strtoull(env, NULL, 0);
		static uint8_t buf[4096];
		for (long r = 0; r < runs; r++) {
			/* well-formed operations, mostly short ranges in a window of 2^k sectors
			 * so that they collide; raw bytes are libFuzzer's job */
			size_t want = 1 + next_rand() % (sizeof(buf) - 8), n = 0;
			uint64_t window = 1u << (4 + next_rand() % 9);
			buf[n++] = r;                /* every configuration in turn */
			while (n < want) {
				uint64_t c = next_rand(), kind = c % 100;
				uint8_t code = kind < 35 ? 0 : kind < 55 ? 3 : kind < 75 ? 5 : kind < 88 ? 6 : 7;
				code |= (c >> 8) & 0x78;
				if (code != 7 && (c >> 16) % 32 == 0)
					code |= 0x80;        /* a long range now and then */
				if (code == 7 && (c >> 24) % 4)
					code = 0;            /* fail injection: less often */
				uint64_t start = next_rand() % window;
				buf[n++] = code;
				if ((code & 7) != 7) {
					buf[n++] = start;
					buf[n++] = start >> 8;
				}
				if ((code & 7) <= 4) {
					buf[n++] = next_rand();
					if (code & 0x80 || (code & 7) <= 2)
						buf[n++] = next_rand();
				} else if ((code & 7) == 6) {
					buf[n++] = next_rand();
					buf[n++] = next_rand() % 4;
				}
			}
			LLVMFuzzerTestOneInput(buf, n);
			count++;
		}
	}
	printf("fuzz_btree: %ld inputs, %ld inserts/deletes (%ld failed allocations injected) OK in %.1f s\n",
	       count, stat_ops, stat_enomem, (double)(clock() - t0) / CLOCKS_PER_SEC);
	return 0;
}
#endif
