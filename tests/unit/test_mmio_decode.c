/* mmio_decode: data-abort syndromes built by hand from the ARM ARM's ISS encoding for data
 * aborts (ISV bit 24, SAS 23:22, SSE 21, SRT 20:16, SF 15, WnR 6), and how a load's value
 * lands in the destination register. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include "mmio_decode.h"

#define EC_DABT_LOW (0x24ULL << 26)
#define IL          (1ULL << 25)

enum { SZ_B = 0, SZ_H = 1, SZ_W = 2, SZ_X = 3 };

static uint64_t esr(int sas, int sse, int srt, int sf, int wnr)
{
	return EC_DABT_LOW | IL | 1ULL << 24 | (uint64_t)sas << 22 | (uint64_t)sse << 21 |
	       (uint64_t)srt << 16 | (uint64_t)sf << 15 | (uint64_t)wnr << 6;
}

static struct gregs regs(void)
{
	struct gregs r;
	for (int i = 0; i < 31; i++)
		r.x[i] = 0xDEAD000000000000ULL | (uint64_t)i;
	r.pc = 0x40080000;
	r.pstate = 0x3c5;
	return r;
}

/* decode + complete a load of 'dev' (what the device returned) into x[srt]; returns x[srt] */
static uint64_t load(int sas, int sse, int srt, int sf, uint64_t dev)
{
	struct gregs r = regs();
	struct mmio_access a;
	assert_int_equal(mmio_decode(esr(sas, sse, srt, sf, 0), 0x09000000, &r, &a), 0);
	assert_int_equal(a.write, 0);
	assert_int_equal(a.size, 1 << sas);
	assert_int_equal(a.reg, srt);
	mmio_complete(&a, dev, &r);
	assert_int_equal(r.pc, 0x40080004);
	return r.x[srt];
}

static void test_store_sizes_and_masking(void **state)
{
	(void)state;
	static const struct { int sas; int size; uint64_t want; } c[] = {
		{ SZ_B, 1, 0x88 },
		{ SZ_H, 2, 0x7788 },
		{ SZ_W, 4, 0x55667788 },
		{ SZ_X, 8, 0x1122334455667788ULL },
	};
	for (size_t i = 0; i < 4; i++) {
		struct gregs r = regs();
		r.x[7] = 0x1122334455667788ULL;
		struct mmio_access a;
		memset(&a, 0xA5, sizeof(a));
		assert_int_equal(mmio_decode(esr(c[i].sas, 0, 7, c[i].sas == SZ_X, 1), 0x0A000050, &r, &a), 0);
		assert_int_equal(a.write, 1);
		assert_int_equal(a.size, c[i].size);
		assert_int_equal(a.reg, 7);
		assert_int_equal(a.gpa, 0x0A000050);
		assert_int_equal(a.value, c[i].want);
		/* a store's completion moves the PC and writes no register */
		struct gregs before = r;
		mmio_complete(&a, 0xFFFFFFFFFFFFFFFFULL, &r);
		assert_int_equal(r.pc, before.pc + 4);
		assert_memory_equal(r.x, before.x, sizeof(r.x));
		assert_int_equal(r.pstate, before.pstate);
	}
}

static void test_store_xzr(void **state)
{
	(void)state;
	for (int sas = 0; sas < 4; sas++) {
		struct gregs r = regs();
		struct mmio_access a;
		a.value = 0x1234;
		assert_int_equal(mmio_decode(esr(sas, 0, 31, sas == SZ_X, 1), 0x09000000, &r, &a), 0);
		assert_int_equal(a.reg, 31);
		assert_int_equal(a.value, 0);      /* register 31 is xzr here, not sp */
	}
	/* x30 is a real register */
	struct gregs r = regs();
	struct mmio_access a;
	assert_int_equal(mmio_decode(esr(SZ_X, 0, 30, 1, 1), 0x09000000, &r, &a), 0);
	assert_int_equal(a.value, r.x[30]);
}

static void test_unsigned_loads(void **state)
{
	(void)state;
	/* LDRB/LDRH/LDR Wt zero the upper bits; the device value is cut to the access size */
	assert_int_equal(load(SZ_B, 0, 3, 0, 0xFFFFFFFFFFFFFF80ULL), 0x80);
	assert_int_equal(load(SZ_H, 0, 3, 0, 0xABCD8001ULL), 0x8001);
	assert_int_equal(load(SZ_W, 0, 3, 0, 0xAABBCCDD80000001ULL), 0x80000001);
	/* LDR Xt */
	assert_int_equal(load(SZ_X, 0, 3, 1, 0x8877665544332211ULL), 0x8877665544332211ULL);
	/* an all-ones device value into Wt: 32 bits, never more */
	assert_int_equal(load(SZ_W, 0, 0, 0, 0xFFFFFFFFFFFFFFFFULL), 0xFFFFFFFFULL);
}

static void test_signed_loads(void **state)
{
	(void)state;
	/* LDRSB/LDRSH into Wt: extended to 32 bits, upper half zero */
	assert_int_equal(load(SZ_B, 1, 5, 0, 0x80), 0xFFFFFF80ULL);
	assert_int_equal(load(SZ_H, 1, 5, 0, 0x8000), 0xFFFF8000ULL);
	/* into Xt: extended to 64 bits */
	assert_int_equal(load(SZ_B, 1, 5, 1, 0x80), 0xFFFFFFFFFFFFFF80ULL);
	assert_int_equal(load(SZ_H, 1, 5, 1, 0xFFFE), 0xFFFFFFFFFFFFFFFEULL);
	assert_int_equal(load(SZ_W, 1, 5, 1, 0x80000000), 0xFFFFFFFF80000000ULL);   /* LDRSW */
	/* positive values are not extended; bits above the access size are ignored */
	assert_int_equal(load(SZ_B, 1, 5, 1, 0x7F), 0x7F);
	assert_int_equal(load(SZ_B, 1, 5, 1, 0xFF7F), 0x7F);
	assert_int_equal(load(SZ_W, 1, 5, 1, 0xFFFFFFFF7FFFFFFFULL), 0x7FFFFFFF);
	/* SSE with a doubleword access changes nothing */
	assert_int_equal(load(SZ_X, 1, 5, 1, 0x8000000000000000ULL), 0x8000000000000000ULL);
}

static void test_load_to_xzr(void **state)
{
	(void)state;
	struct gregs r = regs(), before = r;
	struct mmio_access a;
	assert_int_equal(mmio_decode(esr(SZ_W, 0, 31, 0, 0), 0x09000018, &r, &a), 0);
	mmio_complete(&a, 0x12345678, &r);
	assert_memory_equal(r.x, before.x, sizeof(r.x));   /* no register written */
	assert_int_equal(r.pc, before.pc + 4);
}

static void test_load_only_writes_its_register(void **state)
{
	(void)state;
	struct gregs r = regs(), before = r;
	struct mmio_access a;
	assert_int_equal(mmio_decode(esr(SZ_H, 0, 17, 1, 0), 0x09000018, &r, &a), 0);
	mmio_complete(&a, 0xBEEF, &r);
	assert_int_equal(r.x[17], 0xBEEF);
	before.x[17] = 0xBEEF;
	assert_memory_equal(r.x, before.x, sizeof(r.x));
}

static void test_no_syndrome(void **state)
{
	(void)state;
	struct gregs r = regs();
	struct mmio_access a;
	/* ISV=0 (e.g. a load pair or a post-indexed access): nothing to decode */
	uint64_t e = esr(SZ_W, 0, 3, 0, 1) & ~(1ULL << 24);
	assert_int_equal(mmio_decode(e, 0x09000000, &r, &a), -1);
	assert_int_equal(mmio_decode(EC_DABT_LOW | IL, 0x09000000, &r, &a), -1);
	/* other ISS bits (FnV, S1PTW, DFSC) do not disturb the decode */
	e = esr(SZ_H, 1, 9, 1, 0) | 0x3F | 1ULL << 7 | 1ULL << 10;
	assert_int_equal(mmio_decode(e, 0x09000000, &r, &a), 0);
	assert_int_equal(a.size, 2);
	assert_int_equal(a.sign, 1);
	assert_int_equal(a.sf, 1);
	assert_int_equal(a.reg, 9);
	assert_int_equal(a.write, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_sizes_and_masking),
		cmocka_unit_test(test_store_xzr),
		cmocka_unit_test(test_unsigned_loads),
		cmocka_unit_test(test_signed_loads),
		cmocka_unit_test(test_load_to_xzr),
		cmocka_unit_test(test_load_only_writes_its_register),
		cmocka_unit_test(test_no_syndrome),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
