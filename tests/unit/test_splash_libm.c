/* SPLASHOS's libm (splashos/kernel/libm.c, built here with renamed functions) against glibc's
 * libm over many inputs: relative error well under 1e-12 (in practice a few ulps), special
 * values (NaN, infinities, zeros, negative arguments), exactness of pow for integer powers,
 * and argument reduction for huge arguments (up to 1e300). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define LM(n) splm_##n
#include "../../splashos/kernel/libm.c"

#define TOL 1e-13

static uint64_t rng = 0x1234567;
static double urand(void)   /* [0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) * 0x1p-53;
}

/* x spread over many magnitudes, both signs */
static double wide(int maxexp)
{
	double m = urand() + 0.5;
	int e = (int)(urand() * 2 * maxexp) - maxexp;
	return (urand() < 0.5 ? -1 : 1) * ldexp(m, e);
}

static double rel_err(double got, double want)
{
	if (isnan(want))
		return isnan(got) ? 0 : INFINITY;
	if (isinf(want))
		return got == want ? 0 : INFINITY;
	if (want == 0)
		return fabs(got) < 1e-300 ? 0 : INFINITY;
	return fabs(got - want) / fabs(want);
}

#define CHECK_REL(expr_got, expr_want, x) do { \
	double g_ = (expr_got), w_ = (expr_want); \
	double e_ = rel_err(g_, w_); \
	if (e_ > worst) worst = e_; \
	if (e_ > TOL) { \
		fprintf(stderr, "%s(%.17g): got %.17g want %.17g (rel %.3g)\n", #expr_got, (x), g_, w_, e_); \
		fail(); \
	} \
} while (0)

static void test_sin_cos_tan(void **state)
{
	(void)state;
	double worst = 0;
	for (int i = 0; i < 300000; i++) {
		double x = i % 3 == 0 ? (urand() - 0.5) * 20 : i % 3 == 1 ? wide(30) : wide(1000);
		CHECK_REL(splm_sin(x), sin(x), x);
		CHECK_REL(splm_cos(x), cos(x), x);
		if (fabs(cos(x)) > 1e-300)
			CHECK_REL(splm_tan(x), tan(x), x);
	}
	/* the hard cases: doubles nearest to multiples of pi/2 (tiny results) */
	for (int k = 1; k < 200000; k += 7) {
		double x = k * (M_PI / 2);
		CHECK_REL(splm_sin(x), sin(x), x);
		CHECK_REL(splm_cos(x), cos(x), x);
		CHECK_REL(splm_tan(x), tan(x), x);
		x = nextafter(x, 0);
		CHECK_REL(splm_sin(x), sin(x), x);
		CHECK_REL(splm_cos(x), cos(x), x);
	}
	double big[] = { 1e22, 1e100, 1e300, 1.7976931348623157e308, 0x1.6ac5b262ca1ffp+849, 2.5e17, 1048576.5 };
	for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
		CHECK_REL(splm_sin(big[i]), sin(big[i]), big[i]);
		CHECK_REL(splm_cos(-big[i]), cos(-big[i]), big[i]);
		CHECK_REL(splm_tan(big[i]), tan(big[i]), big[i]);
	}
	assert_true(isnan(splm_sin(INFINITY)) && isnan(splm_cos(-INFINITY)) && isnan(splm_tan(NAN)));
	assert_true(splm_sin(-0.0) == 0 && signbit(splm_sin(-0.0)));
	assert_true(splm_cos(0) == 1);
	print_message("sin/cos/tan: worst relative error %.3g\n", worst);
}

static void test_exp_log(void **state)
{
	(void)state;
	double worst = 0;
	for (int i = 0; i < 300000; i++) {
		double x = i % 2 ? (urand() - 0.5) * 1490 : (urand() - 0.5) * 4;
		double w = exp(x);
		if (w > 0x1p-1022 || w == 0)   /* subnormal results: absolute, not relative */
			CHECK_REL(splm_exp(x), w, x);
		else
			assert_true(fabs(splm_exp(x) - w) <= 0x1p-1070);
		double y = fabs(wide(1000));
		CHECK_REL(splm_log(y), log(y), y);
		double z = 1 + (urand() - 0.5) * 1e-3;     /* near 1: small results */
		CHECK_REL(splm_log(z), log(z), z);
	}
	assert_true(splm_exp(710) == INFINITY && splm_exp(-746) == 0 && splm_exp(0) == 1);
	assert_true(isnan(splm_exp(NAN)) && splm_exp(-INFINITY) == 0 && splm_exp(INFINITY) == INFINITY);
	assert_true(splm_log(0) == -INFINITY && isnan(splm_log(-1)) && splm_log(1) == 0);
	assert_true(splm_log(INFINITY) == INFINITY && isnan(splm_log(NAN)));
	CHECK_REL(splm_log(4.9406564584124654e-324), log(4.9406564584124654e-324), 0.0);
	CHECK_REL(splm_log(2.2250738585072014e-308), log(2.2250738585072014e-308), 0.0);
	print_message("exp/log: worst relative error %.3g\n", worst);
}

static void test_atan2(void **state)
{
	(void)state;
	double worst = 0;
	for (int i = 0; i < 300000; i++) {
		double y = wide(i % 2 ? 20 : 300), x = wide(i % 2 ? 20 : 300);
		CHECK_REL(splm_atan2(y, x), atan2(y, x), y);
	}
	double sp[] = { 0.0, -0.0, 1.0, -1.0, INFINITY, -INFINITY, 1e-300, -1e300 };
	for (size_t i = 0; i < 8; i++)
		for (size_t j = 0; j < 8; j++) {
			double g = splm_atan2(sp[i], sp[j]), w = atan2(sp[i], sp[j]);
			CHECK_REL(g, w, sp[i]);
			assert_true(signbit(g) == signbit(w));
		}
	assert_true(isnan(splm_atan2(NAN, 1)) && isnan(splm_atan2(1, NAN)));
	print_message("atan2: worst relative error %.3g\n", worst);
}

static void test_pow(void **state)
{
	(void)state;
	double worst = 0;
	for (int i = 0; i < 300000; i++) {
		double x = i % 3 ? urand() * 100 : fabs(wide(200)), y = (urand() - 0.5) * (i % 2 ? 60 : 4);
		double w = pow(x, y);
		if (w > 0x1p-1022 || w == 0 || isinf(w))
			CHECK_REL(splm_pow(x, y), w, x);
		double n = floor((urand() - 0.5) * 40);    /* negative bases, integer powers */
		w = pow(-x, n);
		if (fabs(w) > 0x1p-1022 || w == 0 || isinf(w))
			CHECK_REL(splm_pow(-x, n), w, -x);
	}
	for (int k = -60; k <= 60; k++)              /* exact: integer powers of small integers */
		for (int b = 2; b <= 10; b++)
			if (pow(b, k) < 0x1p53)
				assert_true(splm_pow(b, k) == pow(b, k) || k < 0);
	assert_true(splm_pow(2, 30) == 1073741824.0 && splm_pow(-2, 3) == -8);
	/* C99 Annex F special cases */
	double v[] = { 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, INFINITY, -INFINITY, NAN, 1e300, -1e-300 };
	size_t nv = sizeof v / sizeof v[0];
	for (size_t i = 0; i < nv; i++)
		for (size_t j = 0; j < nv; j++) {
			double g = splm_pow(v[i], v[j]), w = pow(v[i], v[j]);
			if (!(isnan(g) && isnan(w)) && !(g == w && signbit(g) == signbit(w)) && rel_err(g, w) > TOL) {
				fprintf(stderr, "pow(%g, %g): got %.17g want %.17g\n", v[i], v[j], g, w);
				fail();
			}
		}
	print_message("pow: worst relative error %.3g\n", worst);
}

static void test_sqrt_floor_ceil(void **state)
{
	(void)state;
	for (int i = 0; i < 100000; i++) {
		double x = wide(300);
		assert_true(splm_sqrt(fabs(x)) == sqrt(fabs(x)));
		assert_true(splm_floor(x) == floor(x) && splm_ceil(x) == ceil(x) && splm_fabs(x) == fabs(x));
		double h = (urand() - 0.5) * 100;
		assert_true(splm_floor(h) == floor(h) && splm_ceil(h) == ceil(h));
	}
	assert_true(isnan(splm_sqrt(-1)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sin_cos_tan),
		cmocka_unit_test(test_exp_log),
		cmocka_unit_test(test_atan2),
		cmocka_unit_test(test_pow),
		cmocka_unit_test(test_sqrt_floor_ceil),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
