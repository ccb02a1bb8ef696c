/* mb_snprintf: each conversion the monitor uses, widths and flags, truncation. Expected
 * strings are written out, not produced by libc, except where noted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include "fmt.h"

#define CHECK(want, ...) do { \
	char b_[128]; \
	memset(b_, 'Z', sizeof(b_)); \
	int n_ = mb_snprintf(b_, sizeof(b_), __VA_ARGS__); \
	assert_string_equal(b_, want); \
	assert_int_equal(n_, (int)strlen(want)); \
} while (0)

static void test_integers(void **state)
{
	(void)state;
	CHECK("0", "%d", 0);
	CHECK("-42", "%d", -42);
	CHECK("-2147483648", "%d", INT32_MIN);
	CHECK("2147483647", "%i", INT32_MAX);
	CHECK("-9223372036854775808", "%ld", (long)INT64_MIN);
	CHECK("18446744073709551615", "%lu", (unsigned long)UINT64_MAX);
	CHECK("4294967295", "%u", 0xFFFFFFFFu);
	CHECK("123456789012", "%llu", 123456789012ULL);
	CHECK("77", "%zu", (size_t)77);
	CHECK("-1", "%zd", (ssize_t)-1);
	/* without l, the argument is an int: upper bits of a wider value never show */
	CHECK("ffffffff", "%x", -1);
}

static void test_hex(void **state)
{
	(void)state;
	CHECK("deadbeef", "%x", 0xDEADBEEFu);
	CHECK("DEADBEEF", "%X", 0xDEADBEEFu);
	CHECK("40000000", "%lx", 0x40000000UL);
	CHECK("00000000c0ffee00", "%016lx", 0xC0FFEE00UL);
	CHECK("ffffffffffffffff", "%016lx", ~0UL);
	CHECK("0", "%lx", 0UL);
	CHECK("    1f", "%6x", 0x1Fu);
	CHECK("1f    |", "%-6x|", 0x1Fu);
}

static void test_width_and_flags(void **state)
{
	(void)state;
	CHECK("   7", "%4d", 7);
	CHECK("7   |", "%-4d|", 7);
	CHECK("-7  |", "%-4d|", -7);
	CHECK("  -7", "%4d", -7);
	CHECK("-007", "%04d", -7);            /* the sign before the zeros */
	CHECK("0042", "%04u", 42u);
	CHECK("12345", "%3d", 12345);         /* width is a minimum */
	CHECK("[ab   ]", "[%-5s]", "ab");
	CHECK("[   ab]", "[%5s]", "ab");
	CHECK("[abcdef]", "[%3s]", "abcdef");
	CHECK("100%", "%d%%", 100);
}

static void test_strings_chars_pointers(void **state)
{
	(void)state;
	CHECK("vm web: 4 vCPUs", "vm %s: %d vCPUs", "web", 4);
	const char *volatile none = NULL;    /* hidden from the compiler's format checks */
	CHECK("(null)", "%s", none);
	CHECK("", "%s", "");
	CHECK("a-z", "%c-%c", 'a', 'z');
	CHECK("0x1000", "%p", (void *)0x1000);
	CHECK("0xffff000012345678", "%p", (void *)0xFFFF000012345678ULL);
	CHECK("0x0", "%p", NULL);
	/* an unknown conversion is copied, a lone % at the end is dropped */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
	CHECK("%q", "%q");
	CHECK("x", "x%");
#pragma GCC diagnostic pop
}

static void test_truncation(void **state)
{
	(void)state;
	char b[8];
	memset(b, 'Z', sizeof(b));
	/* the return value is the full length; the buffer holds size-1 chars and a NUL */
	assert_int_equal(mb_snprintf(b, 5, "%s-%d", "abcdef", 1234), 11);
	assert_string_equal(b, "abcd");
	assert_int_equal(b[5], 'Z');          /* nothing written past size */

	memset(b, 'Z', sizeof(b));
	assert_int_equal(mb_snprintf(b, 1, "%lx", 0xABCDUL), 4);
	assert_int_equal(b[0], 0);
	assert_int_equal(b[1], 'Z');

	/* size 0: nothing written at all, length still reported */
	memset(b, 'Z', sizeof(b));
	assert_int_equal(mb_snprintf(b, 0, "hello"), 5);
	assert_int_equal(b[0], 'Z');
	assert_int_equal(mb_snprintf(NULL, 0, "%016lx", 1UL), 16);

	/* exactly fitting: all characters and the NUL */
	memset(b, 'Z', sizeof(b));
	assert_int_equal(mb_snprintf(b, 8, "%07d", 5), 7);
	assert_string_equal(b, "0000005");
	memset(b, 'Z', sizeof(b));
	assert_int_equal(mb_snprintf(b, 8, "%08d", 5), 8);
	assert_string_equal(b, "0000000");

	/* truncation in the middle of padding and of a number */
	memset(b, 'Z', sizeof(b));
	assert_int_equal(mb_snprintf(b, 4, "%-6d|", -12), 7);
	assert_string_equal(b, "-12");
}

/* Agreement with the C library on a spread of values and formats both support. */
static void test_matches_libc(void **state)
{
	(void)state;
	static const char *fmts[] = { "%d", "%5d", "%-5d|", "%05d", "%x", "%08x", "%X", "%u", "%-9u|" };
	static const int vals[] = { 0, 1, -1, 9, 10, -10, 255, 4096, -65536, 123456789, INT32_MIN, INT32_MAX };
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
		for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
			char mine[64], libc[64];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
			int a = mb_snprintf(mine, sizeof(mine), fmts[f], vals[v]);
			int b = snprintf(libc, sizeof(libc), fmts[f], vals[v]);
#pragma GCC diagnostic pop
			if (a != b || strcmp(mine, libc)) {
				fprintf(stderr, "format \"%s\" value %d: \"%s\" (%d), libc \"%s\" (%d)\n",
					fmts[f], vals[v], mine, a, libc, b);
				fail();
			}
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_width_and_flags),
		cmocka_unit_test(test_strings_chars_pointers),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_matches_libc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
