/* numa/plugin/counters.h: the counter region's size and indexing, the mapping from QEMU
 * 7.2's reported physical address to node and machine offset, and the hot-page ring (its
 * epochs, and pushes from several threads against one consumer). */
#include <pthread.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "plugin/counters.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void test_region_size(void **state)
{
	(void)state;
	/* 1 GiB, 4 nodes: 262144 pages * 4 nodes * 2 kinds * 2 bytes = 4 MiB + the header page,
	 * the bitmaps, 1 MiB of epochs and 128 KiB of ring, rounded up to whole 2 MiB blocks */
	assert_int_equal(mb_nctr_region_bytes(GiB, 4), 6 * MiB);
	assert_int_equal(mb_nctr_region_bytes(GiB, 8), 10 * MiB);
	assert_int_equal(mb_nctr_region_bytes(GiB, 1), 4 * MiB);
	assert_int_equal(mb_nctr_region_bytes(64 * MiB, 4), 2 * MiB);
	for (unsigned n = 1; n <= 8; n++) {
		uint64_t r = mb_nctr_region_bytes(GiB, n);
		assert_int_equal(r % MB_NCTR_ALIGN, 0);
		uint64_t last = mb_nctr_index(GiB / MB_NCTR_PAGE - 1, n - 1, n, 1);
		assert_true(MB_NCTR_HDR_BYTES + (last + 1) * sizeof(uint16_t) <= r);
		/* active[] starts after the last row, 8-byte aligned, and its last word fits */
		uint64_t act = mb_nctr_active_offset(GiB / MB_NCTR_PAGE, n);
		assert_true(act >= MB_NCTR_HDR_BYTES + (last + 1) * sizeof(uint16_t));
		assert_int_equal(act % 8, 0);
		assert_true(act + GiB / MB_NCTR_PAGE / 64 * sizeof(uint64_t) <= r);
		/* then epoch[], hot[] and ring[], each after the one before and 8-byte aligned */
		uint64_t pages = GiB / MB_NCTR_PAGE, ep = mb_nctr_epoch_offset(pages, n);
		uint64_t hot = mb_nctr_hot_offset(pages, n), ring = mb_nctr_ring_offset(pages, n);
		assert_int_equal(ep, act + pages / 64 * sizeof(uint64_t));
		assert_int_equal(hot, ep + pages * sizeof(uint32_t));
		assert_int_equal(ring, hot + pages / 64 * sizeof(uint64_t));
		assert_int_equal(ring % 8, 0);
		assert_true(ring + MB_NCTR_RING * sizeof(uint32_t) <= r);
	}
	/* an odd number of pages: the epochs end mid-word, hot[] still starts on a word */
	assert_int_equal(mb_nctr_hot_offset(5, 2) % 8, 0);
	assert_int_equal(mb_nctr_hot_offset(5, 2), mb_nctr_epoch_offset(5, 2) + 24);
	/* 3 nodes of 4 KiB pages: 12 bytes a row, so an odd number of pages ends mid-word */
	assert_int_equal(mb_nctr_active_offset(5, 3), MB_NCTR_HDR_BYTES + 64);
	assert_true(sizeof(struct mb_nctr_header) <= MB_NCTR_HDR_BYTES);
	assert_int_equal(MB_NCTR_MAGIC & 0xff, 'M');   /* "MBNUMAC1" in memory order */
}

static void test_index(void **state)
{
	(void)state;
	/* rows are pages, then requesting node, then read/write */
	assert_int_equal(mb_nctr_index(0, 0, 4, 0), 0);
	assert_int_equal(mb_nctr_index(0, 0, 4, 1), 1);
	assert_int_equal(mb_nctr_index(0, 1, 4, 0), 2);
	assert_int_equal(mb_nctr_index(1, 0, 4, 0), 8);
	assert_int_equal(mb_nctr_index(5, 3, 4, 1), 5 * 8 + 7);
}

static void test_locate_qemu72(void **state)
{
	(void)state;
	uint64_t m, r = mb_nctr_region_bytes(GiB, 4);
	/* the values measured with a bare-metal probe (numa/DESIGN-NUMA.md): guest-physical
	 * 0x40123450 + k GiB was reported as 0x123450 + 2k GiB */
	static const uint64_t reported[4] = { 0x123450, 0x80123450, 0x100123450, 0x180123450 };
	for (int k = 0; k < 4; k++) {
		assert_int_equal(mb_nctr_locate_qemu72(reported[k], GiB, r, 4, &m), k);
		assert_int_equal(m, (uint64_t)k * GiB + 0x123450);
	}
	/* 64 MiB nodes: 0x44123450 was reported as 0x8123450 */
	assert_int_equal(mb_nctr_locate_qemu72(0x8123450, 64 * MiB, 2 * MiB, 4, &m), 1);
	assert_int_equal(m, 64 * MiB + 0x123450);
	/* the gaps between nodes, the counter regions, beyond the last node */
	assert_int_equal(mb_nctr_locate_qemu72(GiB, GiB, r, 4, &m), -1);
	assert_int_equal(mb_nctr_locate_qemu72(2 * GiB - 1, GiB, r, 4, &m), -1);
	assert_int_equal(mb_nctr_locate_qemu72(GiB - r, GiB, r, 4, &m), -1);
	assert_int_equal(mb_nctr_locate_qemu72(GiB - r - 1, GiB, r, 4, &m), 0);
	assert_int_equal(mb_nctr_locate_qemu72(8 * GiB, GiB, r, 4, &m), -1);
	assert_int_equal(mb_nctr_locate_qemu72(6 * GiB + 5, GiB, r, 4, &m), 3);
}

static void test_epoch(void **state)
{
	(void)state;
	uint16_t row[8] = { 64, 32, 16, 8, 4, 2, 1, 0 };
	uint32_t ep = 7;
	mb_nctr_epoch_catch_up(row, &ep, 7, 4, 1);          /* this epoch's: untouched */
	assert_int_equal(row[0], 64);
	assert_int_equal(ep, 7);
	mb_nctr_epoch_catch_up(row, &ep, 9, 4, 1);          /* two epochs, 1 bit each */
	assert_int_equal(row[0], 16);
	assert_int_equal(row[1], 8);
	assert_int_equal(row[5], 0);
	assert_int_equal(ep, 9);
	mb_nctr_epoch_catch_up(row, &ep, 10, 4, 32);        /* decay >= 16: zeroed */
	for (int k = 0; k < 8; k++)
		assert_int_equal(row[k], 0);
	row[0] = 500;
	mb_nctr_epoch_catch_up(row, &ep, 30, 4, 1);         /* 20 epochs of 1 bit: zeroed */
	assert_int_equal(row[0], 0);
	/* aged ahead by the monitor (epoch now + 1): not aged again, and not when that epoch comes */
	row[0] = 40;
	ep = 31;
	mb_nctr_epoch_catch_up(row, &ep, 30, 4, 32);
	assert_int_equal(row[0], 40);
	mb_nctr_epoch_catch_up(row, &ep, 31, 4, 32);
	assert_int_equal(row[0], 40);
	mb_nctr_epoch_catch_up(row, &ep, 32, 4, 32);
	assert_int_equal(row[0], 0);
	/* the epoch wraps: 3 epochs across 2^32 still age */
	row[0] = 80;
	ep = 0xffffffffu;
	mb_nctr_epoch_catch_up(row, &ep, 2, 4, 1);
	assert_int_equal(row[0], 10);
	/* the total counts reads and writes of every node, past 16 bits */
	assert_true(mb_nctr_row_wanted((uint16_t[]){ 1, 2, 3, 4, 5, 6 }, 3, 0, 21, 7));
	assert_false(mb_nctr_row_wanted((uint16_t[]){ 1, 2, 3, 4, 5, 6 }, 3, 0, 22, 7));
	assert_true(mb_nctr_row_wanted((uint16_t[]){ 65535, 65535, 0, 0 }, 2, 1, 131070, 131070));
	/* wanted: hot in all (reads and writes), and one node other than the page's own with
	 * `remote` of them */
	uint16_t r3[6] = { 10, 6, 2, 1, 1, 0 };                    /* node 0: 16, node 1: 3, node 2: 1 */
	assert_true(mb_nctr_row_wanted(r3, 3, 0, 20, 3));
	assert_false(mb_nctr_row_wanted(r3, 3, 0, 21, 3));        /* not hot */
	assert_false(mb_nctr_row_wanted(r3, 3, 0, 20, 4));        /* no remote node with 4 */
	assert_true(mb_nctr_row_wanted(r3, 3, 1, 20, 16));        /* node 0 is remote to a node-1 page */
	assert_false(mb_nctr_row_wanted(r3, 3, 1, 20, 17));
	assert_false(mb_nctr_row_wanted((uint16_t[]){ 40, 9, 0, 0 }, 2, 0, 16, 1));  /* only its own node */
}

static uint32_t slots[MB_NCTR_RING];

static void test_ring_single(void **state)
{
	(void)state;
	uint64_t head = 0, tail = 0;
	memset(slots, 0, sizeof slots);
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), -1);        /* empty */
	assert_true(mb_nctr_ring_push(&head, &tail, slots, 0));           /* page 0 is a page */
	assert_true(mb_nctr_ring_push(&head, &tail, slots, 42));
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, 1), 0);           /* only up to the end given */
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, 1), -1);
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), 42);
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), -1);
	/* fill it: the next push fails, one pop makes room for exactly one; order kept across the wrap */
	for (uint32_t i = 0; i < MB_NCTR_RING; i++)
		assert_true(mb_nctr_ring_push(&head, &tail, slots, i));
	assert_false(mb_nctr_ring_push(&head, &tail, slots, 7));
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), 0);
	assert_true(mb_nctr_ring_push(&head, &tail, slots, 99999));
	assert_false(mb_nctr_ring_push(&head, &tail, slots, 7));
	for (uint32_t i = 1; i < MB_NCTR_RING; i++)
		assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), i);
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), 99999);
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), -1);
	/* a slot reserved but not yet written stops the consumer there */
	head++;
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), -1);
	__atomic_store_n(&slots[(head - 1) % MB_NCTR_RING], 5 + 1, __ATOMIC_RELEASE);
	assert_int_equal(mb_nctr_ring_pop(&tail, slots, head), 5);
}

/* Producers push disjoint page numbers, retrying when full, while one consumer pops: every
 * page comes out once. */
#define PRODUCERS 4
#define PER_PRODUCER 100000u
static uint64_t rhead, rtail;
static void *producer(void *arg)
{
	uint32_t first = (uint32_t)(uintptr_t)arg * PER_PRODUCER;
	for (uint32_t i = 0; i < PER_PRODUCER; i++)
		while (!mb_nctr_ring_push(&rhead, &rtail, slots, first + i))
			;
	return NULL;
}

static void test_ring_threads(void **state)
{
	(void)state;
	static uint8_t seen[PRODUCERS * PER_PRODUCER];
	memset(slots, 0, sizeof slots);
	memset(seen, 0, sizeof seen);
	rhead = rtail = 0;
	pthread_t th[PRODUCERS];
	for (uintptr_t t = 0; t < PRODUCERS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, producer, (void *)t), 0);
	uint32_t got = 0;
	int64_t last[PRODUCERS] = { -1, -1, -1, -1 };
	while (got < PRODUCERS * PER_PRODUCER) {
		int64_t p = mb_nctr_ring_pop(&rtail, slots, __atomic_load_n(&rhead, __ATOMIC_ACQUIRE));
		if (p < 0)
			continue;
		assert_true(p < PRODUCERS * PER_PRODUCER);
		assert_int_equal(seen[p], 0);
		seen[p] = 1;
		/* a producer's next push reserves its slot after the last one's was written */
		uint32_t who = (uint32_t)p / PER_PRODUCER;
		assert_true(p > last[who]);
		last[who] = p;
		got++;
	}
	for (int t = 0; t < PRODUCERS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(mb_nctr_ring_pop(&rtail, slots, rhead), -1);
	assert_int_equal(rhead, (uint64_t)PRODUCERS * PER_PRODUCER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_size),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_locate_qemu72),
		cmocka_unit_test(test_epoch),
		cmocka_unit_test(test_ring_single),
		cmocka_unit_test(test_ring_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
