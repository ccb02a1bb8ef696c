/* libvirtq: a fake guest memory (a buffer at a fake guest-physical base) and a driver-side
 * helper that builds descriptor tables and rings in it; well-formed chains (direct, indirect,
 * mixed, zero-length descriptors, 16-bit index wraparound), every way a guest can break a
 * queue, scatter/gather copies, the used ring and interrupt suppression. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "virtq.h"

/* ---- fake guest memory ---- */

#define BASE     0x40000000ull
#define MEM_SIZE (1u << 20)
#define DESC     (BASE + 0x00000)        /* descriptor table (up to 32768 entries: 512 KiB) */
#define AVAIL    (BASE + 0x80000)
#define USED     (BASE + 0x90000)
#define ITAB     (BASE + 0xd0000)        /* indirect tables */
#define DATA     (BASE + 0xe0000)        /* buffers */

static uint8_t *mem;
static long map_calls;
static bool map_everything;              /* any range "maps" (to a dummy) for huge lengths */
static uint8_t dummy[16];

static void *fake_map(void *ctx, uint64_t gpa, uint64_t len, int write)
{
	(void)ctx;
	(void)write;
	map_calls++;
	if (map_everything && gpa >= DATA)
		return dummy;
	if (gpa < BASE || gpa - BASE > MEM_SIZE || len > MEM_SIZE - (gpa - BASE))
		return NULL;
	return mem + (gpa - BASE);
}

static void *H(uint64_t gpa)
{
	return mem + (gpa - BASE);
}

static void w16(uint64_t gpa, uint16_t v) { memcpy(H(gpa), &v, 2); }
static uint16_t r16(uint64_t gpa) { uint16_t v; memcpy(&v, H(gpa), 2); return v; }
static uint32_t r32(uint64_t gpa) { uint32_t v; memcpy(&v, H(gpa), 4); return v; }

/* ---- driver side ---- */

struct drv {
	struct virtq q;
	uint32_t size;
	uint16_t avail_idx;
};

static struct drv D;
static struct virtq_chain C;

static void setup(uint32_t size, uint64_t features)
{
	memset(mem, 0, MEM_SIZE);
	map_everything = false;
	D.size = size;
	D.avail_idx = 0;
	assert_int_equal(virtq_init(&D.q, size, DESC, AVAIL, USED, features, fake_map, NULL), VIRTQ_OK);
}

static void desc_at(uint64_t table, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	uint8_t *p = H(table + 16ull * i);
	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void desc(uint32_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(DESC, i, addr, len, flags, next);
}

static void publish(uint16_t head)
{
	w16(AVAIL + 4 + 2ull * (D.avail_idx & (D.size - 1)), head);
	D.avail_idx++;
	w16(AVAIL + 2, D.avail_idx);
}

#define R VIRTQ_DESC_F_NEXT
#define W VIRTQ_DESC_F_WRITE
#define N VIRTQ_DESC_F_NEXT
#define I VIRTQ_DESC_F_INDIRECT

static int pop1(void)
{
	return virtq_pop(&D.q, &C);
}

static void expect_broken(int err)
{
	assert_int_equal(pop1(), err);
	assert_true(D.q.broken == err);
	assert_int_equal(pop1(), err);          /* sticky */
	assert_int_equal(virtq_pending(&D.q), err);
	assert_string_not_equal(virtq_strerror(err), "unknown virtq error");
}

static void seg_is(unsigned i, uint64_t gpa, uint32_t len, bool write)
{
	assert_true(i < C.nseg);
	assert_int_equal(C.seg[i].gpa, gpa);
	assert_int_equal(C.seg[i].len, len);
	assert_int_equal(C.seg[i].write, write);
	assert_ptr_equal(C.seg[i].hva, H(gpa));
}

static int grp_setup(void **state)
{
	(void)state;
	mem = aligned_alloc(4096, MEM_SIZE);
	return mem ? 0 : -1;
}

static int grp_teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

/* ---- configuration ---- */

static void test_init(void **state)
{
	(void)state;
	struct virtq q;
	assert_int_equal(virtq_init(&q, 0, DESC, AVAIL, USED, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_int_equal(virtq_init(&q, 3, DESC, AVAIL, USED, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_int_equal(virtq_init(&q, 65536, DESC, AVAIL, USED, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_int_equal(virtq_init(&q, 8, DESC + 8, AVAIL, USED, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_int_equal(virtq_init(&q, 8, DESC, AVAIL + 1, USED, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_int_equal(virtq_init(&q, 8, DESC, AVAIL, USED + 2, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_int_equal(virtq_init(&q, 8, DESC, AVAIL, USED, 0, NULL, NULL), VIRTQ_E_CONFIG);
	/* rings outside RAM, straddling its end, wrapping */
	assert_int_equal(virtq_init(&q, 8, 0x1000, AVAIL, USED, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_int_equal(virtq_init(&q, 8, DESC, BASE + MEM_SIZE - 8, USED, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_int_equal(virtq_init(&q, 8, DESC, AVAIL, UINT64_MAX - 3, 0, fake_map, NULL), VIRTQ_E_CONFIG);
	assert_false(q.ready);
	assert_int_equal(virtq_pop(&q, &C), VIRTQ_E_NOT_READY);
	assert_int_equal(virtq_push(&q, 0, 0), VIRTQ_E_NOT_READY);
	assert_int_equal(virtq_init(&q, 1, DESC, AVAIL, USED, 0, fake_map, NULL), VIRTQ_OK);
	assert_int_equal(virtq_init(&q, 32768, DESC, AVAIL, USED, 0, fake_map, NULL), VIRTQ_OK);
	assert_int_equal(q.max_len, VIRTQ_DEFAULT_MAX_LEN);
	/* unknown feature bits are dropped */
	assert_int_equal(virtq_init(&q, 8, DESC, AVAIL, USED, ~0ull, fake_map, NULL), VIRTQ_OK);
	assert_int_equal(q.features, VIRTQ_F_INDIRECT_DESC | VIRTQ_F_EVENT_IDX);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(virtq_strerror(0), "ok");
	for (int e = -1; e >= VIRTQ_E_NOT_READY; e--) {
		assert_string_not_equal(virtq_strerror(e), "unknown virtq error");
		for (int f = e + 1; f <= -1; f++)
			assert_string_not_equal(virtq_strerror(e), virtq_strerror(f));
	}
	assert_string_equal(virtq_strerror(-1000), "unknown virtq error");
}

/* ---- well-formed chains ---- */

static void test_empty(void **state)
{
	(void)state;
	setup(8, 0);
	assert_int_equal(virtq_pending(&D.q), 0);
	assert_int_equal(pop1(), 0);
	assert_int_equal(D.q.last_avail_idx, 0);
	assert_int_equal(D.q.broken, 0);
}

static void test_simple(void **state)
{
	(void)state;
	setup(8, 0);
	desc(5, DATA, 16, N, 2);
	desc(2, DATA + 0x100, 100, N, 7);
	desc(7, DATA + 0x1000, 512, W, 0);
	publish(5);
	desc(1, DATA + 0x2000, 4, 0, 0);        /* a one-descriptor chain */
	publish(1);
	assert_int_equal(virtq_pending(&D.q), 2);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.head, 5);
	assert_int_equal(C.nseg, 3);
	assert_int_equal(C.nread, 2);
	assert_int_equal(C.ndesc, 3);
	assert_int_equal(C.read_len, 116);
	assert_int_equal(C.write_len, 512);
	seg_is(0, DATA, 16, false);
	seg_is(1, DATA + 0x100, 100, false);
	seg_is(2, DATA + 0x1000, 512, true);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.head, 1);
	assert_int_equal(C.nseg, 1);
	seg_is(0, DATA + 0x2000, 4, false);
	assert_int_equal(pop1(), 0);
	assert_int_equal(D.q.last_avail_idx, 2);
	/* only writable segments, and a write-only chain */
	desc(0, DATA, 8, W | N, 1);
	desc(1, DATA + 8, 8, W, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.nread, 0);
	assert_int_equal(C.nseg, 2);
	assert_int_equal(C.write_len, 16);
}

static void test_zero_length(void **state)
{
	(void)state;
	setup(8, 0);
	/* zero-length descriptors make no segment and are not mapped (address may be junk) */
	desc(0, DATA, 0, N, 1);
	desc(1, 0xdeadbeef000ull, 0, N, 2);
	desc(2, DATA + 64, 8, W | N, 3);
	desc(3, UINT64_MAX, 0, W, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.nseg, 1);
	assert_int_equal(C.ndesc, 4);
	assert_int_equal(C.nread, 0);
	seg_is(0, DATA + 64, 8, true);
	/* but order still counts: readable zero-length after writable */
	desc(0, DATA, 8, W | N, 1);
	desc(1, DATA, 0, 0, 0);
	publish(0);
	expect_broken(VIRTQ_E_ORDER);
}

static void test_indirect(void **state)
{
	(void)state;
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, DATA, 16, N, 2);        /* order inside the table follows next */
	desc_at(ITAB, 2, DATA + 0x100, 32, N, 1);
	desc_at(ITAB, 1, DATA + 0x200, 64, W, 0);
	desc(3, ITAB, 3 * 16, I | W, 0);        /* WRITE on the indirect descriptor: ignored */
	publish(3);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.head, 3);
	assert_int_equal(C.nseg, 3);
	assert_int_equal(C.nread, 2);
	assert_int_equal(C.ndesc, 4);
	seg_is(0, DATA, 16, false);
	seg_is(1, DATA + 0x100, 32, false);
	seg_is(2, DATA + 0x200, 64, true);
	/* a table longer than the chain uses; the queue size does not bound the table */
	for (int i = 0; i < 20; i++)
		desc_at(ITAB, i, DATA + i, 1, i < 19 ? N : 0, i + 1);
	desc(0, ITAB, 64 * 16, I, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.nseg, 20);
	assert_int_equal(C.read_len, 20);
}

static void test_mixed(void **state)
{
	(void)state;
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, DATA + 0x100, 512, N, 1);
	desc_at(ITAB, 1, DATA + 0x400, 1, W, 0);
	desc(6, DATA, 16, N, 4);
	desc(4, ITAB, 32, I, 0);
	publish(6);
	desc(0, DATA + 0x800, 8, 0, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.head, 6);
	assert_int_equal(C.nseg, 3);
	assert_int_equal(C.nread, 2);
	seg_is(0, DATA, 16, false);
	seg_is(1, DATA + 0x100, 512, false);
	seg_is(2, DATA + 0x400, 1, true);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.head, 0);
	/* writable direct descriptor, then an indirect table with a readable one */
	desc_at(ITAB, 0, DATA, 8, 0, 0);
	desc(1, DATA, 8, W | N, 2);
	desc(2, ITAB, 16, I, 0);
	publish(1);
	expect_broken(VIRTQ_E_ORDER);
}

static void test_wraparound(void **state)
{
	(void)state;
	setup(4, 0);
	D.q.last_avail_idx = D.q.used_idx = 0xfffd;
	D.avail_idx = 0xfffd;
	w16(USED + 2, 0xfffd);
	for (int round = 0; round < 3; round++) {
		for (uint16_t h = 0; h < 4; h++) {
			desc(h, DATA + 16 * h, 16, h & 1 ? W : 0, 0);
			publish(h);
		}
		assert_int_equal(virtq_pending(&D.q), 4);
		for (uint16_t h = 0; h < 4; h++) {
			assert_int_equal(pop1(), 1);
			assert_int_equal(C.head, h);
			seg_is(0, DATA + 16 * h, 16, h & 1);
			assert_int_equal(virtq_push(&D.q, h, h * 3), 1);
		}
		assert_int_equal(pop1(), 0);
		assert_int_equal(r16(USED + 2), D.avail_idx);
	}
	assert_int_equal(D.q.last_avail_idx, (uint16_t)(0xfffd + 12));
	/* used elements: the last round wrote heads 0..3 into slots (idx & 3) */
	for (uint16_t k = 0; k < 4; k++) {
		uint16_t idx = D.avail_idx - 4 + k;
		assert_int_equal(r32(USED + 4 + 8 * (idx & 3)), k);
		assert_int_equal(r32(USED + 8 + 8 * (idx & 3)), k * 3);
	}
}

static void test_full_queue(void **state)
{
	(void)state;
	/* exactly size available is fine, and a chain of exactly size descriptors too */
	setup(256, 0);
	for (int i = 0; i < 256; i++)
		desc(i, DATA + i, 1, i < 255 ? N : 0, i + 1);
	for (int i = 0; i < 256; i++)
		publish(0);
	assert_int_equal(virtq_pending(&D.q), 256);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.nseg, 256);
	assert_int_equal(C.ndesc, 256);
	assert_int_equal(virtq_pending(&D.q), 255);
}

static void test_unpop(void **state)
{
	(void)state;
	setup(8, 0);
	desc(3, DATA, 8, 0, 0);
	publish(3);
	assert_int_equal(pop1(), 1);
	assert_int_equal(pop1(), 0);
	virtq_unpop(&D.q);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.head, 3);
}

/* ---- broken queues ---- */

static void test_avail_idx_too_far(void **state)
{
	(void)state;
	setup(8, 0);
	w16(AVAIL + 2, 9);
	expect_broken(VIRTQ_E_AVAIL_IDX);
	assert_int_equal(D.q.last_avail_idx, 0);
	setup(8, 0);
	w16(AVAIL + 2, 0xffff);                  /* "behind" reads as far ahead */
	expect_broken(VIRTQ_E_AVAIL_IDX);
	/* re-initialising clears the broken state */
	setup(8, 0);
	assert_int_equal(pop1(), 0);
}

static void test_head_out_of_range(void **state)
{
	(void)state;
	setup(8, 0);
	publish(8);
	expect_broken(VIRTQ_E_HEAD);
	setup(8, 0);
	publish(0xffff);
	expect_broken(VIRTQ_E_HEAD);
}

static void test_loops(void **state)
{
	(void)state;
	setup(8, 0);
	desc(0, DATA, 8, N, 0);                  /* self loop */
	publish(0);
	expect_broken(VIRTQ_E_LOOP);

	setup(8, 0);
	desc(1, DATA, 8, N, 2);                  /* 2-cycle */
	desc(2, DATA, 8, N, 1);
	publish(1);
	expect_broken(VIRTQ_E_LOOP);

	setup(8, 0);
	desc(0, DATA, 0, N, 0);                  /* self loop of zero-length descriptors */
	publish(0);
	expect_broken(VIRTQ_E_LOOP);

	/* a long cycle through every descriptor of a 128-entry queue (fewer than 256 segments,
	 * so only the loop check can stop it) */
	setup(128, 0);
	for (int i = 0; i < 128; i++)
		desc(i, DATA + i, 1, N, (i + 1) % 128);
	publish(17);
	expect_broken(VIRTQ_E_LOOP);

	/* the tail of a chain loops back into its middle */
	setup(16, 0);
	for (int i = 0; i < 10; i++)
		desc(i, DATA, 4, N, i + 1);
	desc(10, DATA, 4, N, 5);
	publish(0);
	expect_broken(VIRTQ_E_LOOP);

	/* loops inside an indirect table */
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, DATA, 4, N, 1);
	desc_at(ITAB, 1, DATA, 4, N, 0);
	desc(0, ITAB, 32, I, 0);
	publish(0);
	expect_broken(VIRTQ_E_LOOP);
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, DATA, 0, N, 0);
	desc(0, ITAB, 16, I, 0);
	publish(0);
	expect_broken(VIRTQ_E_LOOP);
}

static void test_next_out_of_range(void **state)
{
	(void)state;
	setup(8, 0);
	desc(0, DATA, 8, N, 8);
	publish(0);
	expect_broken(VIRTQ_E_NEXT);
	setup(8, 0);
	desc(0, DATA, 8, N, 0xffff);
	publish(0);
	expect_broken(VIRTQ_E_NEXT);
	/* without NEXT, a junk next field is ignored */
	setup(8, 0);
	desc(0, DATA, 8, 0, 0xffff);
	publish(0);
	assert_int_equal(pop1(), 1);
	/* inside an indirect table: bounded by the table, not the queue */
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, DATA, 4, N, 2);
	desc(0, ITAB, 32, I, 0);
	publish(0);
	expect_broken(VIRTQ_E_NEXT);
}

static void test_write_before_read(void **state)
{
	(void)state;
	setup(8, 0);
	desc(0, DATA, 8, N, 1);
	desc(1, DATA + 8, 8, W | N, 2);
	desc(2, DATA + 16, 8, 0, 0);
	publish(0);
	expect_broken(VIRTQ_E_ORDER);
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, DATA, 8, W | N, 1);
	desc_at(ITAB, 1, DATA, 8, 0, 0);
	desc(0, ITAB, 32, I, 0);
	publish(0);
	expect_broken(VIRTQ_E_ORDER);
}

static void test_outside_memory(void **state)
{
	(void)state;
	static const struct { uint64_t addr; uint32_t len; } bad[] = {
		{ 0, 8 },                                /* below RAM */
		{ BASE - 4, 8 },                         /* straddling the start */
		{ BASE + MEM_SIZE - 4, 8 },              /* straddling the end */
		{ BASE + MEM_SIZE, 1 },                  /* just past the end */
		{ UINT64_MAX - 7, 16 },                  /* wrapping */
		{ UINT64_MAX, 1 },
		{ DATA, 0xffffffffu },                   /* u32 max length */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		for (int w = 0; w < 2; w++) {
			setup(8, 0);
			desc(0, DATA, 0, N, 1);       /* zero-length: the total stays that of desc 1 */
			desc(1, bad[k].addr, bad[k].len, w ? W : 0, 0);
			publish(0);
			expect_broken(VIRTQ_E_BUF_MAP);
		}
	}
	/* the last byte of RAM is fine */
	setup(8, 0);
	desc(0, BASE + MEM_SIZE - 1, 1, 0, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	seg_is(0, BASE + MEM_SIZE - 1, 1, false);
}

static void test_huge_lengths(void **state)
{
	(void)state;
	setup(8, 0);
	map_everything = true;                   /* buffers "map" whatever their size */
	desc(0, DATA, 0xffffffffu, 0, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	assert_int_equal(C.read_len, 0xffffffffu);
	desc(0, DATA, 0x80000000u, N, 1);
	desc(1, DATA, 0x80000000u, W, 0);
	publish(0);
	expect_broken(VIRTQ_E_TOO_LONG);

	setup(8, 0);
	map_everything = true;
	desc(0, DATA, 0xffffffffu, N, 1);
	desc(1, DATA, 1, 0, 0);
	publish(0);
	expect_broken(VIRTQ_E_TOO_LONG);

	/* a caller's lower limit */
	setup(8, 0);
	D.q.max_len = 4096;
	desc(0, DATA, 4000, N, 1);
	desc(1, DATA, 96, W, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	desc(0, DATA, 4000, N, 1);
	desc(1, DATA, 97, W, 0);
	publish(0);
	expect_broken(VIRTQ_E_TOO_LONG);
}

static void test_indirect_errors(void **state)
{
	(void)state;
	/* not negotiated */
	setup(8, 0);
	desc_at(ITAB, 0, DATA, 8, 0, 0);
	desc(0, ITAB, 16, I, 0);
	publish(0);
	expect_broken(VIRTQ_E_INDIRECT_OFF);

	/* indirect inside indirect */
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, DATA, 8, N, 1);
	desc_at(ITAB, 1, ITAB + 0x100, 16, I, 0);
	desc_at(ITAB + 0x100, 0, DATA, 8, 0, 0);
	desc(0, ITAB, 32, I, 0);
	publish(0);
	expect_broken(VIRTQ_E_INDIRECT_NEST);

	/* indirect with NEXT */
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, DATA, 8, 0, 0);
	desc(0, ITAB, 16, I | N, 1);
	desc(1, DATA, 8, W, 0);
	publish(0);
	expect_broken(VIRTQ_E_INDIRECT_NEXT);

	/* table lengths: 0, not a multiple of 16, too big */
	static const uint32_t lens[] = { 0, 8, 24, 17, (VIRTQ_MAX_INDIRECT + 1) * 16, 0xfffffff0u };
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		setup(8, VIRTQ_F_INDIRECT_DESC);
		desc_at(ITAB, 0, DATA, 8, 0, 0);
		desc(0, ITAB, lens[k], I, 0);
		publish(0);
		expect_broken(VIRTQ_E_INDIRECT_LEN);
	}

	/* table outside RAM, straddling its end, wrapping */
	static const uint64_t addrs[] = { 0x1000, BASE + MEM_SIZE - 16, UINT64_MAX - 15 };
	for (size_t k = 0; k < sizeof(addrs) / sizeof(addrs[0]); k++) {
		setup(8, VIRTQ_F_INDIRECT_DESC);
		desc(0, addrs[k], 32, I, 0);
		publish(0);
		expect_broken(VIRTQ_E_INDIRECT_MAP);
	}

	/* a buffer in the table outside RAM */
	setup(8, VIRTQ_F_INDIRECT_DESC);
	desc_at(ITAB, 0, BASE + MEM_SIZE - 1, 2, 0, 0);
	desc(0, ITAB, 16, I, 0);
	publish(0);
	expect_broken(VIRTQ_E_BUF_MAP);

	/* the largest table is accepted */
	setup(8, VIRTQ_F_INDIRECT_DESC);
	memset(H(ITAB), 0, VIRTQ_MAX_INDIRECT * 16);
	desc_at(ITAB, 0, DATA, 8, 0, 0);
	desc(0, ITAB, VIRTQ_MAX_INDIRECT * 16, I, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
}

static void test_too_many_segments(void **state)
{
	(void)state;
	for (unsigned n = VIRTQ_MAX_SEGS; n <= VIRTQ_MAX_SEGS + 1; n++) {
		setup(8, VIRTQ_F_INDIRECT_DESC);
		for (unsigned i = 0; i < n; i++)
			desc_at(ITAB, i, DATA + i, 1, i + 1 < n ? N : 0, i + 1);
		desc(0, ITAB, n * 16, I, 0);
		publish(0);
		if (n == VIRTQ_MAX_SEGS) {
			assert_int_equal(pop1(), 1);
			assert_int_equal(C.nseg, VIRTQ_MAX_SEGS);
		} else {
			expect_broken(VIRTQ_E_TOO_MANY);
		}
	}
	/* direct chain of 512 descriptors in a 512-entry queue */
	setup(512, 0);
	for (int i = 0; i < 512; i++)
		desc(i, DATA + i, 1, i < 511 ? N : 0, i + 1);
	publish(0);
	expect_broken(VIRTQ_E_TOO_MANY);
}

/* ---- copies ---- */

static void test_copies(void **state)
{
	(void)state;
	setup(8, VIRTQ_F_INDIRECT_DESC);
	for (int i = 0; i < 0x1000; i++)
		((uint8_t *)H(DATA))[i] = i * 7;
	desc(0, DATA + 0x10, 3, N, 1);
	desc(1, DATA + 0x100, 5, N, 2);
	desc(2, DATA + 0x200, 0, N, 3);
	desc(3, DATA + 0x300, 10, N, 4);
	desc(4, DATA + 0x800, 4, W | N, 5);
	desc(5, DATA + 0x900, 6, W, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	uint8_t want[18], got[32];
	for (int i = 0; i < 3; i++) want[i] = (0x10 + i) * 7;
	for (int i = 0; i < 5; i++) want[3 + i] = (0x100 + i) * 7;
	for (int i = 0; i < 10; i++) want[8 + i] = (0x300 + i) * 7;
	for (uint64_t off = 0; off <= 20; off++) {
		for (size_t len = 0; len <= 20; len++) {
			memset(got, 0, sizeof(got));
			size_t exp = off >= 18 ? 0 : (18 - off < len ? 18 - off : len);
			assert_int_equal(virtq_chain_read(&C, off, got, len), exp);
			assert_memory_equal(got, want + (off < 18 ? off : 0), exp);
		}
	}
	assert_int_equal(virtq_chain_read(&C, UINT64_MAX, got, 8), 0);
	/* writes land only in the writable segments */
	uint8_t src[12];
	for (int i = 0; i < 12; i++)
		src[i] = 0xa0 + i;
	memset(H(DATA + 0x800), 0, 0x200);
	assert_int_equal(virtq_chain_write(&C, 2, src, 12), 8);
	uint8_t *w0 = H(DATA + 0x800), *w1 = H(DATA + 0x900);
	assert_int_equal(w0[0], 0);
	assert_int_equal(w0[1], 0);
	assert_int_equal(w0[2], 0xa0);
	assert_int_equal(w0[3], 0xa1);
	assert_int_equal(w0[4], 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(w1[i], 0xa2 + i);
	assert_int_equal(w1[6], 0);
	assert_int_equal(virtq_chain_write(&C, 10, src, 12), 0);
	assert_int_equal(virtq_chain_write(&C, 0, src, 0), 0);
	/* the readable part was not touched */
	assert_int_equal(((uint8_t *)H(DATA + 0x300))[9], (uint8_t)((0x300 + 9) * 7));
}

/* ---- used ring and interrupts ---- */

static void test_push(void **state)
{
	(void)state;
	setup(8, 0);
	desc(2, DATA, 8, N, 4);
	desc(4, DATA + 8, 64, W, 0);
	publish(2);
	desc(6, DATA + 0x100, 64, W, 0);
	publish(6);
	assert_int_equal(pop1(), 1);
	assert_int_equal(virtq_push(&D.q, C.head, 33), 1);
	assert_int_equal(r16(USED + 2), 1);
	assert_int_equal(r32(USED + 4), 2);
	assert_int_equal(r32(USED + 8), 33);
	assert_int_equal(pop1(), 1);
	assert_int_equal(virtq_push(&D.q, C.head, 64), 1);
	assert_int_equal(r16(USED + 2), 2);
	assert_int_equal(r32(USED + 12), 6);
	assert_int_equal(r32(USED + 16), 64);
	assert_int_equal(virtq_push(&D.q, 8, 0), VIRTQ_E_HEAD);
	assert_int_equal(r16(USED + 2), 2);
	assert_int_equal(r16(USED), 0);             /* used.flags untouched */
}

static void test_no_interrupt(void **state)
{
	(void)state;
	setup(8, 0);
	w16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
	desc(0, DATA, 8, 0, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	assert_int_equal(virtq_push(&D.q, 0, 0), 0);
	assert_int_equal(r16(USED + 2), 1);         /* still published */
	w16(AVAIL, 0);
	assert_int_equal(virtq_push(&D.q, 0, 0), 1);
	/* notifications from the driver: the NO_NOTIFY flag */
	assert_int_equal(virtq_notify_enable(&D.q, false), VIRTQ_OK);
	assert_int_equal(r16(USED), VIRTQ_USED_F_NO_NOTIFY);
	assert_int_equal(virtq_notify_enable(&D.q, true), VIRTQ_OK);
	assert_int_equal(r16(USED), 0);
}

static void test_event_idx(void **state)
{
	(void)state;
	setup(8, VIRTQ_F_EVENT_IDX);
	w16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);     /* ignored with EVENT_IDX */
	w16(AVAIL + 4 + 2 * 8, 2);                  /* used_event: interrupt when entry 2 is used */
	for (int i = 0; i < 5; i++) {
		desc(i, DATA, 8, 0, 0);
		publish(i);
	}
	int want[5] = { 0, 0, 1, 0, 0 };
	for (int i = 0; i < 5; i++) {
		assert_int_equal(pop1(), 1);
		assert_int_equal(virtq_push(&D.q, C.head, 0), want[i]);
	}
	/* used_event == the index just used: interrupt */
	w16(AVAIL + 4 + 2 * 8, 5);
	desc(0, DATA, 8, 0, 0);
	publish(0);
	assert_int_equal(pop1(), 1);
	assert_int_equal(virtq_push(&D.q, 0, 0), 1);
	/* avail_event follows last_avail_idx when notifications are enabled */
	assert_int_equal(virtq_notify_enable(&D.q, true), VIRTQ_OK);
	assert_int_equal(r16(USED + 4 + 8 * 8), 6);
	assert_int_equal(r16(USED), 0);
	assert_int_equal(virtq_notify_enable(&D.q, false), VIRTQ_OK);
	assert_int_equal(r16(USED + 4 + 8 * 8), 6);
	/* wraparound of the event comparison */
	setup(8, VIRTQ_F_EVENT_IDX);
	D.q.used_idx = 0xffff;
	w16(AVAIL + 4 + 2 * 8, 0xffff);
	assert_int_equal(virtq_push(&D.q, 0, 0), 1);
	assert_int_equal(r16(USED + 2), 0);
	assert_int_equal(virtq_push(&D.q, 0, 0), 0);
}

static void test_map_calls(void **state)
{
	(void)state;
	/* every guest access goes through the callback; a pop maps a bounded number of things */
	setup(8, 0);
	desc(0, DATA, 8, N, 1);
	desc(1, DATA, 8, W, 0);
	publish(0);
	map_calls = 0;
	assert_int_equal(pop1(), 1);
	assert_int_equal(map_calls, 1 + 1 + 2 + 2);  /* avail.idx, ring slot, 2 desc, 2 buffers */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_zero_length),
		cmocka_unit_test(test_indirect),
		cmocka_unit_test(test_mixed),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_full_queue),
		cmocka_unit_test(test_unpop),
		cmocka_unit_test(test_avail_idx_too_far),
		cmocka_unit_test(test_head_out_of_range),
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_next_out_of_range),
		cmocka_unit_test(test_write_before_read),
		cmocka_unit_test(test_outside_memory),
		cmocka_unit_test(test_huge_lengths),
		cmocka_unit_test(test_indirect_errors),
		cmocka_unit_test(test_too_many_segments),
		cmocka_unit_test(test_copies),
		cmocka_unit_test(test_push),
		cmocka_unit_test(test_no_interrupt),
		cmocka_unit_test(test_event_idx),
		cmocka_unit_test(test_map_calls),
	};
	return cmocka_run_group_tests(tests, grp_setup, grp_teardown);
}
