/* SPLASHOS's sp_vsnprintf (splashos/kernel/fmt.c, built here on the host) against glibc's
 * snprintf: %f %e %g (and %F %E %G, '#') of random doubles over the whole range with many
 * precisions, widths and flags must give the same bytes (the kernel converts exactly and
 * rounds half to even, as glibc does); integers, strings, truncation and the return value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define SPLASH_HOST
#include "../../splashos/kernel/fmt.c"

static uint64_t rng = 0xfeedbeef;
static uint64_t r64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void same(const char *fmt, ...)
{
	char a[1200], b[1200];
	va_list ap, aq;
	va_start(ap, fmt);
	va_copy(aq, ap);
	int na = sp_vsnprintf(a, sizeof a, fmt, ap);
	int nb = vsnprintf(b, sizeof b, fmt, aq);
	va_end(aq);
	va_end(ap);
	if (na != nb || strcmp(a, b)) {
		fprintf(stderr, "format '%s': sp gave '%s' (%d), glibc '%s' (%d)\n", fmt, a, na, b, nb);
		fail();
	}
}

static double random_double(int i)
{
	switch (i % 5) {
	case 0: {                               /* any bit pattern that is finite */
		union { uint64_t u; double d; } v;
		do
			v.u = r64();
		while (isnan(v.d) || isinf(v.d));
		return v.d;
	}
	case 1: return (double)(int64_t)(r64() % 2000001) / 1000 - 1000;   /* short decimals: ties */
	case 2: return ldexp((double)(r64() >> 11), (int)(r64() % 80) - 90);
	case 3: return (double)(r64() % 1000) + 0.5;                        /* exact halves */
	default: return ldexp((double)(r64() >> 11), (int)(r64() % 2100) - 1100);
	}
}

static void test_floats(void **state)
{
	(void)state;
	static const char *const fmts[] = {
		"%f", "%e", "%g", "%.0f", "%.1f", "%.2f", "%.3f", "%.10f", "%.17f", "%.0e", "%.3e", "%.16e",
		"%.20e", "%.0g", "%.1g", "%.3g", "%.10g", "%.17g", "%#g", "%#.0f", "%#.0e", "%E", "%G", "%F",
		"%12.4f", "%-12.3e|", "%+g", "% f", "%015.3f", "%-+10.2g|", "%.60f", "%.40g",
	};
	for (int i = 0; i < 15000; i++) {
		double x = random_double(i);
		for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
			if (fabs(x) > 1e300 && !strcmp(fmts[k], "%.60f"))
				continue;
			same(fmts[k], x);
		}
	}
	double sp[] = { 0.0, -0.0, INFINITY, -INFINITY, NAN, 5e-324, 1.7976931348623157e308, 0.5, 1.5, 2.5,
			0.125, 9.9999999999999995e-7, 999999.5, 1e-5, 1e16, 123456789.0 };
	static const char *const f2[] = { "%f", "%e", "%g", "%.0f", "%.0e", "%.0g", "%10.3f", "%-8g|", "%08.2f", "%.3g" };
	for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
		for (size_t k = 0; k < sizeof f2 / sizeof f2[0]; k++)
			same(f2[k], sp[i]);
	same("%f %e %g", 1.0 / 3, 2.0 / 3, 1e-10);
	same("%.*f|%*.*e", 3, M_PI, 12, 2, M_E);
}

static void test_ints_strings(void **state)
{
	(void)state;
	for (int i = 0; i < 20000; i++) {
		int64_t v = (int64_t)r64() >> (r64() % 64);
		same("%d|%5d|%-5d|%05d|%+d|% d|%.3d", (int)v, (int)v, (int)v, (int)v, (int)v, (int)v, (int)v);
		same("%lld|%llu|%llx|%llX|%#llx|%llo|%20lld|%-20llu|", (long long)v, (unsigned long long)v,
		     (unsigned long long)v, (unsigned long long)v, (unsigned long long)v, (unsigned long long)v,
		     (long long)v, (unsigned long long)v);
		same("%zu %ld %lu %hd %hhu", (size_t)v, (long)v, (unsigned long)v, (short)v, (unsigned char)v);
	}
	same("%s|%10s|%-10s|%.2s|%c|%%|%5c", "abc", "abc", "abc", "abc", 'x', 'y');
	same("%x %X %#x %#o %o", 0, 255, 255, 8, 0);
	same("%p", (void *)0x1234);
	/* truncation: the return value is the full length; the buffer ends in a NUL */
	char b[8];
	assert_int_equal(sp_snprintf(b, sizeof b, "%s-%d", "hello", 12345), 11);
	assert_string_equal(b, "hello-1");
	assert_int_equal(sp_snprintf(NULL, 0, "%g", 1e100), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_floats),
		cmocka_unit_test(test_ints_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
