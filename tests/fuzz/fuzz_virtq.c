/* libFuzzer target for libvirtq: the input is a queue configuration followed by a guest memory
 * image; the target pops chains until the queue is empty or broken, copies out of the readable
 * and into the writable segments, and pushes every chain to the used ring.  Any segment outside
 * the fake guest memory (or in its hole), inconsistent chain totals, a copy of the wrong length
 * or an unexpected return code aborts; ASan catches any access outside the image.  With
 * -DFUZZ_STANDALONE a main() runs the target over files and directories given on the command
 * line, or over a built-in corpus of well-formed queues with a few corrupted bytes (README.md).
 *
 * Input: 16 header bytes (missing bytes read as 0), then the memory image (MEM bytes, zero-padded):
 *   b0   bits 0-3 log2(queue size) % 10; bit 4 VIRTQ_F_INDIRECT_DESC; bit 5 VIRTQ_F_EVENT_IDX;
 *        bits 6-7 where guest memory is: 0x40000000, 0, the top of the 64-bit space,
 *        0x40000000 with an unmapped hole
 *   b1-2 desc offset, b3-4 avail offset, b5-6 used offset (% MEM; aligned unless b15 bit 0)
 *   b7   max_len: 0 = default, else b7 * 64 bytes
 *   b8-9 initial last_avail_idx and used_idx
 *   b10-11 hole offset (% MEM), b12 hole length in 64-byte units
 *   b13  copy offsets and lengths seed, b14 written-length mode, b15 flags (bit 1: toggle
 *        notifications between pops)
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "virtq.h"

#define HDR 16
#define MEM (32u * 1024)

static long stat_inputs, stat_ready, stat_chains, stat_segs, stat_empty, stat_broken[32];

struct gmem {
	uint8_t *mem;
	uint64_t base;
	uint64_t hole, hole_len;         /* offsets: [hole, hole + hole_len) is not mapped */
};

static void *g_map(void *ctx, uint64_t gpa, uint64_t len, int write)
{
	struct gmem *g = ctx;
	(void)write;
	if (gpa < g->base || gpa - g->base >= MEM || len > MEM - (gpa - g->base))
		return NULL;
	uint64_t off = gpa - g->base;
	if (g->hole_len && off < g->hole + g->hole_len && off + len > g->hole)
		return NULL;
	return g->mem + off;
}

#define DIE(...) do { \
	fprintf(stderr, "fuzz_virtq: "); \
	fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

static void check_chain(const struct gmem *g, const struct virtq *q, const struct virtq_chain *c)
{
	uint64_t rl = 0, wl = 0;
	if (c->head >= q->size)
		DIE("head %u >= size %u", c->head, q->size);
	if (c->nseg > VIRTQ_MAX_SEGS || c->nread > c->nseg)
		DIE("nseg %u nread %u", c->nseg, c->nread);
	for (unsigned i = 0; i < c->nseg; i++) {
		const struct virtq_seg *s = &c->seg[i];
		uint64_t off = s->gpa - g->base;
		if (s->gpa < g->base || off >= MEM || s->len == 0 || s->len > MEM - off)
			DIE("segment %u [%#lx, +%#x) outside guest memory", i, (unsigned long)s->gpa, s->len);
		if (g->hole_len && off < g->hole + g->hole_len && off + s->len > g->hole)
			DIE("segment %u in the hole", i);
		if (s->hva != g->mem + off)
			DIE("segment %u hva", i);
		if (s->write != (i >= c->nread))
			DIE("segment %u write flag out of order", i);
		if (s->write)
			wl += s->len;
		else
			rl += s->len;
	}
	if (rl != c->read_len || wl != c->write_len)
		DIE("totals %lu/%lu, segments say %lu/%lu", (unsigned long)c->read_len,
		    (unsigned long)c->write_len, (unsigned long)rl, (unsigned long)wl);
	if (rl + wl > q->max_len)
		DIE("chain of %lu bytes over max_len %lu", (unsigned long)(rl + wl), (unsigned long)q->max_len);
	if (c->ndesc < c->nseg)
		DIE("ndesc %u < nseg %u", c->ndesc, c->nseg);
}

static uint8_t scratch[8192];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[HDR] = { 0 };
	memcpy(h, data, size < HDR ? size : HDR);
	stat_inputs++;
	struct gmem g;
	g.mem = aligned_alloc(64, MEM);
	if (!g.mem)
		abort();
	memset(g.mem, 0, MEM);
	if (size > HDR)
		memcpy(g.mem, data + HDR, size - HDR < MEM ? size - HDR : MEM);
	static const uint64_t bases[4] = { 0x40000000ull, 0, 0 - (uint64_t)MEM, 0x40000000ull };
	g.base = bases[h[0] >> 6];
	g.hole = g.hole_len = 0;
	if ((h[0] >> 6) == 3) {
		g.hole = (h[10] | h[11] << 8) % MEM;
		g.hole_len = h[12] * 64ull;
	}
	uint32_t qsize = 1u << ((h[0] & 15) % 10);
	uint64_t feat = (h[0] & 0x10 ? VIRTQ_F_INDIRECT_DESC : 0) | (h[0] & 0x20 ? VIRTQ_F_EVENT_IDX : 0);
	uint64_t off[3];
	for (int i = 0; i < 3; i++) {
		off[i] = (h[1 + 2 * i] | h[2 + 2 * i] << 8) % MEM;
		if (!(h[15] & 1))
			off[i] &= ~(uint64_t)15;
	}
	struct virtq q;
	int r = virtq_init(&q, qsize, g.base + off[0], g.base + off[1], g.base + off[2], feat, g_map, &g);
	if (r != VIRTQ_OK) {
		if (r != VIRTQ_E_CONFIG || q.ready)
			DIE("init returned %d", r);
		free(g.mem);
		return 0;
	}
	stat_ready++;
	if (h[7])
		q.max_len = h[7] * 64ull;
	q.last_avail_idx = q.used_idx = h[8] | h[9] << 8;

	struct virtq_chain *c = malloc(sizeof(*c));
	if (!c)
		abort();
	unsigned seed = h[13];
	for (unsigned it = 0; it < 4 * qsize + 16; it++) {
		if ((h[15] & 2) && virtq_notify_enable(&q, it & 1) != VIRTQ_OK)
			DIE("notify_enable failed");
		int pend = virtq_pending(&q);
		uint16_t before = q.last_avail_idx;
		r = virtq_pop(&q, c);
		if (pend < 0 && r != pend)
			DIE("pending %d, pop %d", pend, r);
		if (pend == 0 && r != 0)
			DIE("pending 0, pop %d", r);
		if (pend > 0 && r == 0)
			DIE("pending %d, pop 0", pend);
		if (r == 0) {
			stat_empty++;
			if (q.last_avail_idx != before)
				DIE("empty pop moved last_avail_idx");
			break;
		}
		if (r < 0) {
			if (r < VIRTQ_E_NOT_READY || r == VIRTQ_E_CONFIG || r == VIRTQ_E_NOT_READY)
				DIE("pop returned %d", r);
			if (q.broken != r || q.last_avail_idx != before || virtq_pop(&q, c) != r)
				DIE("broken state after %d", r);
			stat_broken[-r]++;
			break;
		}
		if (r != 1 || q.last_avail_idx != (uint16_t)(before + 1))
			DIE("pop returned %d", r);
		stat_chains++;
		stat_segs += c->nseg;
		check_chain(&g, &q, c);

		/* copy out at a few offsets; the length copied must be exactly what is there */
		seed = seed * 1103515245u + 12345u;
		uint64_t o = c->read_len ? (seed >> 8) % (c->read_len + 2) : seed % 3;
		size_t len = (seed >> 4) % sizeof(scratch);
		size_t want = o >= c->read_len ? 0 : (c->read_len - o < len ? c->read_len - o : len);
		if (virtq_chain_read(c, o, scratch, len) != want)
			DIE("chain_read(%lu, %zu) of %lu", (unsigned long)o, len, (unsigned long)c->read_len);
		/* and in: the device's writes may land on the rings themselves (the guest's problem) */
		seed = seed * 1103515245u + 12345u;
		o = c->write_len ? (seed >> 8) % (c->write_len + 2) : seed % 3;
		len = (seed >> 4) % sizeof(scratch);
		want = o >= c->write_len ? 0 : (c->write_len - o < len ? c->write_len - o : len);
		memset(scratch, 0xa5 ^ it, len);
		if (virtq_chain_write(c, o, scratch, len) != want)
			DIE("chain_write(%lu, %zu) of %lu", (unsigned long)o, len, (unsigned long)c->write_len);

		uint32_t written = h[14] & 1 ? (uint32_t)want : h[14] & 2 ? 0xffffffffu : 0;
		uint16_t u = q.used_idx;
		r = virtq_push(&q, c->head, written);
		if (r != 0 && r != 1)
			DIE("push returned %d", r);
		if (q.used_idx != (uint16_t)(u + 1))
			DIE("push did not advance used_idx");
		if (it & 3)
			continue;
		/* now and then give a chain back and take it again: same result */
		virtq_unpop(&q);
		struct virtq_chain *d = malloc(sizeof(*d));
		if (!d)
			abort();
		r = virtq_pop(&q, d);
		if (r == 1)
			check_chain(&g, &q, d);
		else if (r > 1)
			DIE("re-pop returned %d", r);
		free(d);
		if (r < 0) {
			stat_broken[-r]++;
			break;
		}
	}
	free(c);
	free(g.mem);
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

static uint8_t in[HDR + MEM];

static void put(uint32_t off, const void *v, size_t n)
{
	if (off < MEM && n <= MEM - off)
		memcpy(in + HDR + off, v, n);
}

static void put_desc(uint32_t table, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	put(table + 16 * i, d, 16);
}

/* A buffer inside memory, now and then not (straddling, outside, huge). */
static void rand_buf(uint64_t base, uint64_t *addr, uint32_t *len)
{
	uint64_t r = next_rand();
	*len = r % 8 == 0 ? 0 : 1 + (r >> 8) % 2048;
	*addr = base + 0x4000 + (r >> 24) % (MEM - 0x4000 - *len + 1);
	if (r % 397 == 0)
		*addr = base + MEM - 4;
	else if (r % 389 == 0)
		*len = 0xffffffffu;
	else if (r % 383 == 0)
		*addr = (r >> 32) << 20;
}

/* FUZZ_VIRTQ_RUNS inputs (default 10000) from FUZZ_VIRTQ_SEED: a well-formed queue of random
 * chains (direct, indirect, mixed, zero-length buffers, rare bad buffers), then 0-4 random
 * byte corruptions in the rings and tables; raw bytes are libFuzzer's job. */
int main(int argc, char **argv)
{
	clock_t t0 = clock();
	long count = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			count += run_path(argv[i]);
	} else {
		const char *env = getenv("FUZZ_VIRTQ_RUNS");
		long runs = env ? atol(env) : 10000;
		env = getenv("FUZZ_VIRTQ_SEED");
		if (env)
			rng = strtoull(env, NULL, 0);
		static const uint64_t bases[4] = { 0x40000000ull, 0, 0 - (uint64_t)MEM, 0x40000000ull };
		for (long run = 0; run < runs; run++) {
			memset(in, 0, sizeof(in));
			uint64_t r = next_rand();
			unsigned lg = r % 9;                     /* sizes 1..256 */
			uint32_t qsize = 1u << lg;
			uint8_t *h = in;
			h[0] = lg | (r & 0x30) | ((run & 3) << 6);
			if (r % 5 == 0)
				h[0] |= 0x10;                    /* indirect more often */
			uint64_t base = bases[run & 3];
			/* desc at 0, avail at 0x1000, used at 0x2000, indirect tables at 0x3000 */
			uint32_t doff = 0, aoff = 0x1000 + 16 * ((r >> 8) % 4), uoff = 0x2000, itab = 0x3000;
			h[1] = doff; h[2] = doff >> 8;
			h[3] = aoff; h[4] = aoff >> 8;
			h[5] = uoff; h[6] = uoff >> 8;
			h[7] = (r >> 12) % 16 == 0 ? (r >> 16) : 0;
			uint16_t start = (r >> 24) % 4 == 0 ? 0xffff - (r >> 26) % 8 : 0;
			h[8] = start; h[9] = start >> 8;
			uint32_t hole = 0x4000 + (r >> 32) % (MEM - 0x4000);
			h[10] = hole; h[11] = hole >> 8; h[12] = (r >> 40) % 16 < 3 ? 1 + (r >> 36) % 3 : 0;
			h[13] = r >> 44;
			h[14] = r >> 52;
			h[15] = (r >> 56) & 2;
			/* chains */
			uint32_t nchains = 1 + next_rand() % qsize, free_desc = 0, ifree = 0;
			uint16_t idx = start;
			for (uint32_t k = 0; k < nchains && free_desc < qsize; k++) {
				uint64_t c = next_rand();
				uint32_t ndirect = 1 + c % 4, nind = (c >> 4) % 2 && (h[0] & 0x10) ? 1 + (c >> 8) % 12 : 0;
				if (free_desc + ndirect + (nind != 0) > qsize)
					ndirect = qsize - free_desc - (nind != 0);
				if (ndirect == 0 && nind == 0)
					break;
				uint32_t head = free_desc, nw = (c >> 16) % (ndirect + nind + 1);
				uint32_t total = ndirect + nind, pos = 0;
				for (uint32_t i = 0; i < ndirect; i++, pos++) {
					uint64_t a;
					uint32_t l;
					rand_buf(base, &a, &l);
					bool last = i + 1 == ndirect && !nind;
					uint16_t fl = (last ? 0 : VIRTQ_DESC_F_NEXT) | (pos >= total - nw ? VIRTQ_DESC_F_WRITE : 0);
					put_desc(doff, free_desc, a, l, fl, free_desc + 1);
					free_desc++;
				}
				if (nind && ifree + nind <= (0x4000 - 0x3000) / 16) {
					put_desc(doff, free_desc, base + itab + 16 * ifree, 16 * nind, VIRTQ_DESC_F_INDIRECT, 0);
					free_desc++;
					for (uint32_t i = 0; i < nind; i++, pos++) {
						uint64_t a;
						uint32_t l;
						rand_buf(base, &a, &l);
						bool last = i + 1 == nind;
						uint16_t fl = (last ? 0 : VIRTQ_DESC_F_NEXT) | (pos >= total - nw ? VIRTQ_DESC_F_WRITE : 0);
						put_desc(itab + 16 * ifree, i, a, l, fl, i + 1);
					}
					ifree += nind;
				} else if (nind) {
					/* no room: end the direct chain here */
					put_desc(doff, free_desc - 1, base + 0x4000, 1, 0, 0);
				}
				uint16_t hd = head;
				put(aoff + 4 + 2 * (idx & (qsize - 1)), &hd, 2);
				idx++;
			}
			put(aoff + 2, &idx, 2);
			/* corruptions in the rings and tables */
			for (unsigned k = next_rand() % 5; k; k--) {
				uint64_t x = next_rand();
				uint32_t where = x % 0x4000;
				in[HDR + where] ^= 1u << ((x >> 16) % 8);
				if ((x >> 20) % 4 == 0)
					in[HDR + where] = x >> 24;
			}
			if (next_rand() % 50 == 0)
				h[15] |= 1;                      /* raw (maybe misaligned) ring offsets */
			LLVMFuzzerTestOneInput(in, HDR + 0x4000 + next_rand() % (MEM - 0x4000));
			count++;
		}
	}
	printf("fuzz_virtq: %ld inputs (%ld queues), %ld chains, %ld segments, %ld emptied, broken:",
	       count, stat_ready, stat_chains, stat_segs, stat_empty);
	for (int e = 1; e < 32; e++)
		if (stat_broken[e])
			printf(" %d:%ld", -e, stat_broken[e]);
	printf("; OK in %.1f s\n", (double)(clock() - t0) / CLOCKS_PER_SEC);
	return 0;
}
#endif
