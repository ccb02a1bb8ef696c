/* numa/plugin/counters.h: the counter region's size and indexing, and the mapping from
 * QEMU 7.2's reported physical address to node and machine offset. */
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
	 * rounded up to whole 2 MiB blocks */
	assert_int_equal(mb_nctr_region_bytes(GiB, 4), 6 * MiB);
	assert_int_equal(mb_nctr_region_bytes(GiB, 8), 10 * MiB);
	assert_int_equal(mb_nctr_region_bytes(GiB, 1), 2 * MiB);
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
	}
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_size),
		cmocka_unit_test(test_index),
		cmocka_unit_test(test_locate_qemu72),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
