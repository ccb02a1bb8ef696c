/* The math functions splash.h declares, accurate to a few ulps (well under 1e-12 relative;
 * tests/unit/test_splash_libm.c compares them with glibc's libm over many inputs).
 *
 * sin/cos/tan: argument reduction by pi/2 with a three-part Cody-Waite constant for
 * |x| < 2^20 * pi/2 and an exact reduction (Payne-Hanek style: the bits of 2/pi that matter,
 * 192 at a time, times the 53-bit mantissa in integer arithmetic) beyond; the reduced
 * argument is kept as a double-double. exp: x = k ln2 + r with ln2 in two parts, Taylor
 * series of e^r, |r| <= ln2/2. log: x = 2^k m, m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
 * s = (m-1)/(m+1). atan2: reduction to |z| <= tan(pi/8) and a Taylor series. pow: exact
 * repeated squaring for small integer exponents, else exp(y log x).
 *
 * Portable C: on the host, define LM(n) before including this file to rename the functions. */
#include <stdint.h>

#ifndef LM
#define LM(n) n
#endif

#define HUGE_VAL_ __builtin_inf()
#define NAN_ __builtin_nan("")

static inline uint64_t bits_of(double x)
{
	union { double f; uint64_t u; } v = { x };
	return v.u;
}

static inline double from_bits(uint64_t u)
{
	union { uint64_t u; double f; } v = { u };
	return v.f;
}

double LM(fabs)(double x)
{
	return from_bits(bits_of(x) & ~(1ULL << 63));
}

/* The result of one aarch64 FP instruction on x (the compiler's builtin elsewhere), for
 * sqrt, floor, ceil and round_even. */
#ifdef __aarch64__
#define ONE_INSN(insn, builtin, x) \
	({ double r_; __asm__(insn " %d0, %d1" : "=w"(r_) : "w"(x)); r_; })
#else
#define ONE_INSN(insn, builtin, x) builtin(x)
#endif

double LM(sqrt)(double x)
{
	return ONE_INSN("fsqrt", __builtin_sqrt, x);
}

double LM(floor)(double x)
{
	return ONE_INSN("frintm", __builtin_floor, x);
}

double LM(ceil)(double x)
{
	return ONE_INSN("frintp", __builtin_ceil, x);
}

static inline double round_even(double x)   /* nearest integer, ties to even */
{
	return ONE_INSN("frintn", __builtin_nearbyint, x);
}

/* 2^k for k in [-1022, 1023] */
static inline double pow2i(int k)
{
	return from_bits((uint64_t)(k + 1023) << 52);
}

/* ---- exp ---- */

static const double LN2_HI = 6.93147180369123816490e-01;  /* 0x3fe62e42fee00000: 32 bits */
static const double LN2_LO = 1.90821492927058770002e-10;  /* ln2 - LN2_HI */
static const double INV_LN2 = 1.44269504088896338700e+00;

/* e^r - 1 for |r| <= 0.35, as a series (the 1 is added by the caller, keeping precision) */
static double expm1_small(double r)
{
	/* Taylor coefficients 1/n!, n = 2..14 */
	static const double c[] = {
		1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
		1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600,
		1.0 / 6227020800.0, 1.0 / 87178291200.0,
	};
	double p = c[12];
	for (int i = 11; i >= 0; i--)
		p = p * r + c[i];
	return r + r * r * p;
}

double LM(exp)(double x)
{
	if (x != x)
		return x;
	if (x > 709.782712893384)
		return HUGE_VAL_;
	if (x < -745.1332191019412)
		return 0;
	if (LM(fabs)(x) < 0x1p-54)
		return 1 + x;
	double kd = round_even(x * INV_LN2);
	int k = (int)kd;
	double hi = x - kd * LN2_HI;        /* exact: kd has at most 11 bits, LN2_HI 32 */
	double lo = kd * LN2_LO;
	double r = hi - lo;
	double e = expm1_small(r);
	/* correct for the rounding of r = hi - lo: e^(hi-lo) = e^r * e^((hi-r)-lo) */
	double c = (hi - r) - lo;
	double y = 1 + (e + c * (1 + e));
	if (k > 1023)
		return y * 2.0 * pow2i(k - 1);
	if (k < -1021)
		return y * pow2i(k + 1000) * 0x1p-1000;
	return y * pow2i(k);
}

/* ---- log ---- */

double LM(log)(double x)
{
	uint64_t u = bits_of(x);
	if (x != x)
		return x;
	if (x < 0)
		return NAN_;
	if (x == 0)
		return -HUGE_VAL_;
	if (x == HUGE_VAL_)
		return x;
	int k = 0;
	if (!(u >> 52)) {                   /* subnormal */
		x *= 0x1p54;
		u = bits_of(x);
		k = -54;
	}
	k += (int)(u >> 52) - 1023;
	double m = from_bits((u & ((1ULL << 52) - 1)) | 0x3FF0000000000000ULL);  /* [1, 2) */
	if (m > 1.4142135623730951) {
		m *= 0.5;
		k++;
	}
	/* log m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716 */
	double f = m - 1;                   /* exact */
	double s = f / (m + 1);
	double s2 = s * s;
	/* 2 atanh(s) = 2s + 2s^3/3 + 2s^5/5 + ... ; terms to s^23 */
	double p = 2.0 / 23;
	for (int n = 21; n >= 3; n -= 2)
		p = p * s2 + 2.0 / n;
	/* 2s computed as f - s*f keeps the leading term accurate: 2s = f - s f exactly in
	 * real arithmetic, since 2f/(m+1) = f - f(f)/(m+1) */
	double two_s = f - s * f;
	double lm = two_s + s * s2 * p;
	double kd = k;
	return kd * LN2_HI + (lm + kd * LN2_LO);
}

/* ---- sin, cos, tan ---- */

/* pi/2 in three parts of 33, 33 and 53 bits (Cody-Waite) */
static const double PIO2_1 = 1.57079632673412561417e+00;   /* 0x3FF921FB54400000 */
static const double PIO2_1T = 6.07710050650619224932e-11;
static const double PIO2_2 = 6.07710050630396597660e-11;   /* 0x3DD0B4611A600000 */
static const double PIO2_2T = 2.02226624879595063154e-21;
static const double PIO2_3 = 2.02226624871116645580e-21;   /* 0x3BA3198A2E000000 */
static const double PIO2_3T = 8.47842766036889956997e-32;
static const double INV_PIO2 = 6.36619772367581382433e-01;

/* The bits of 2/pi after the binary point, 64 per word (generated with Python's decimal
 * module by splashos/tools/gen_2overpi.py). */
#include "twooverpi.h"

/* x = n pi/2 + (*hi + *lo), |hi + lo| <= ~pi/4; returns n mod 4 (x finite). */
static int rem_pio2(double x, double *hi, double *lo)
{
	double ax = LM(fabs)(x);
	if (ax <= 0.785398163397448279) {
		*hi = x;
		*lo = 0;
		return 0;
	}
	if (ax < 0x1p20 * 1.5707963267948966) {
		double n = round_even(x * INV_PIO2);
		/* first two parts with their tails, as fdlibm does; the products n*PIO2_k are exact */
		double r = x - n * PIO2_1;
		double w = n * PIO2_1T;
		double y = r - w;
		double t = r;
		w = n * PIO2_2;
		r = t - w;
		w = n * PIO2_2T - ((t - r) - w);
		y = r - w;
		t = r;
		w = n * PIO2_3;
		r = t - w;
		w = n * PIO2_3T - ((t - r) - w);
		y = r - w;
		*hi = y;
		*lo = (r - y) - w;
		return (int)((int64_t)n & 3);
	}
	/* Large: x = m 2^e with a 53-bit integer m. x * 2/pi mod 4 needs the bits of 2/pi from
	 * weight 2^-(e-1)... on: earlier ones give multiples of 4. Take 192 bits starting at
	 * bit index e - 2 (0-based after the point; negative indices are 0), multiply by m. */
	uint64_t u = bits_of(ax);
	int e = (int)(u >> 52) - 1075;
	uint64_t m = (u & ((1ULL << 52) - 1)) | (1ULL << 52);
	int start = e - 2 - 11;             /* a few guard bits before the integer part */
	uint64_t w[4];                      /* bits start .. start+255 of 2/pi, w[0] first */
	for (int i = 0; i < 4; i++) {
		uint64_t v = 0;
		for (int j = 0; j < 64; j++) {
			int bit = start + i * 64 + j;
			int b = 0;
			if (bit >= 0 && bit < TWO_OVER_PI_BITS)
				b = (int)((two_over_pi[bit / 64] >> (63 - bit % 64)) & 1);
			v = v << 1 | (uint64_t)b;
		}
		w[i] = v;
	}
	/* product P = m * W (W = 256-bit integer w[0..3]); value = P * 2^(e - start - 256).
	 * e - start - 256 = 13 - 256: the binary point sits 243 bits up from P's bottom. */
	unsigned __int128 acc = 0;
	uint64_t p[5];
	for (int i = 3; i >= 0; i--) {
		acc += (unsigned __int128)m * w[i];
		p[i + 1] = (uint64_t)acc;
		acc >>= 64;
	}
	p[0] = (uint64_t)acc;
	/* bits of P from the top: p[0] (64) p[1] ... p[4]; total 320 bits; the point is 243 bits
	 * from the bottom = 77 bits from the top. Integer part mod 4 = bits 75, 76 from the top. */
	int q = (int)((p[1] >> 51) & 3);    /* bits 75..76 from the top: p[1] bits 52..51 */
	/* fraction: bits from 77 on; as a 128-bit number F (top 128 bits of the fraction) */
	unsigned __int128 F = ((unsigned __int128)(p[1] << 13 | p[2] >> 51) << 64) | (p[2] << 13 | p[3] >> 51);
	/* nearest quadrant: fraction >= 1/2 -> q+1 and fraction - 1 */
	int neg = 0;
	if (F >> 127) {
		q++;
		F = -F;                         /* 1 - fraction, as a 128-bit fraction */
		neg = 1;
	}
	/* F * 2^-128 * pi/2 as a double-double */
	int sh = 0;
	while (!(F >> 127) && sh < 128) {
		F <<= 1;
		sh++;
	}
	/* split into its top 53 bits and the next 53 */
	uint64_t top = (uint64_t)(F >> 75);
	uint64_t next = (uint64_t)(F >> 22) & ((1ULL << 53) - 1);
	double fh = (double)top * 0x1p-53;
	double fl = (double)next * 0x1p-106;
	double scale = pow2i(-sh);
	fh *= scale;
	fl *= scale;
	/* (fh + fl) * (PIO2_H + PIO2_L) */
	static const double PIO2_H = 1.5707963267948966;        /* 0x3FF921FB54442D18 */
	static const double PIO2_L = 6.123233995736766e-17;
	double ph = fh * PIO2_H;
	double pe = __builtin_fma(fh, PIO2_H, -ph);
	double pl = pe + (fh * PIO2_L + fl * PIO2_H);
	double h = ph + pl;
	double l = pl - (h - ph);
	if (neg) {
		h = -h;
		l = -l;
	}
	if (x < 0) {
		h = -h;
		l = -l;
		q = -q;
	}
	*hi = h;
	*lo = l;
	return q & 3;
}

/* sin(r), cos(r) for |r| <= ~pi/4 (Taylor, to r^21 / r^20) */
static double ksin(double r)
{
	static const double c[] = {
		-1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800, 1.0 / 6227020800.0,
		-1.0 / 1307674368000.0, 1.0 / 355687428096000.0, -1.0 / 121645100408832000.0,
		1.0 / 51090942171709440000.0,
	};
	double r2 = r * r, p = c[9];
	for (int i = 8; i >= 0; i--)
		p = p * r2 + c[i];
	return r + r * r2 * p;
}

static double kcos(double r)
{
	static const double c[] = {
		1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800, 1.0 / 479001600,
		-1.0 / 87178291200.0, 1.0 / 20922789888000.0, -1.0 / 6402373705728000.0,
		1.0 / 2432902008176640000.0,
	};
	double r2 = r * r, p = c[8];
	for (int i = 7; i >= 0; i--)
		p = p * r2 + c[i];
	/* 1 - r2/2 + r2^2 p, with 1 - r2/2 summed carefully */
	double hr2 = 0.5 * r2;
	double w = 1 - hr2;
	return w + (((1 - w) - hr2) + r2 * r2 * p);
}

/* x = q pi/2 + r: returns q (0..3), *s = sin r, *c = cos r (r a double-double hi + lo) */
static int sincos_reduced(double x, double *s, double *c)
{
	double hi, lo;
	int q = rem_pio2(x, &hi, &lo);
	double sh = ksin(hi), ch = kcos(hi);
	*s = sh + lo * ch;
	*c = ch - lo * sh;
	return q;
}

double LM(sin)(double x)
{
	if (x != x || LM(fabs)(x) == HUGE_VAL_)
		return NAN_;
	if (LM(fabs)(x) < 0x1p-27)
		return x;
	double s, c;
	switch (sincos_reduced(x, &s, &c)) {
	case 0: return s;
	case 1: return c;
	case 2: return -s;
	default: return -c;
	}
}

double LM(cos)(double x)
{
	if (x != x || LM(fabs)(x) == HUGE_VAL_)
		return NAN_;
	double s, c;
	switch (sincos_reduced(x, &s, &c)) {
	case 0: return c;
	case 1: return -s;
	case 2: return -c;
	default: return s;
	}
}

double LM(tan)(double x)
{
	if (x != x || LM(fabs)(x) == HUGE_VAL_)
		return NAN_;
	if (LM(fabs)(x) < 0x1p-27)
		return x;
	double s, c;
	int q = sincos_reduced(x, &s, &c);
	return (q & 1) ? -c / s : s / c;
}

/* ---- atan2 ---- */

static const double PI_H = 3.141592653589793116;        /* 0x400921FB54442D18 */
static const double PI_L = 1.2246467991473532e-16;
static const double PIO4_H = 7.853981633974482790e-01;
static const double PIO4_L = 3.061616997868383e-17;

/* atan(z) for 0 <= z <= tan(pi/8) */
static double katan(double z)
{
	double z2 = z * z, p = 0;
	/* z - z^3/3 + z^5/5 - ... to z^45: 0.4142^47/47 < 1e-19 */
	for (int n = 45; n >= 3; n -= 2)
		p = p * z2 + ((n & 2) ? -1.0 : 1.0) / n;
	return z + z * z2 * p;
}

static double katan_signed(double t)
{
	return t < 0 ? -katan(-t) : katan(t);
}

/* atan(z) for z >= 0 */
static double atan_pos(double z)
{
	if (z <= 0.41421356237309503)
		return katan(z);
	if (z <= 2.414213562373095)         /* pi/4 + atan((z-1)/(z+1)) */
		return PIO4_H + (katan_signed((z - 1) / (z + 1)) + PIO4_L);
	return 2 * PIO4_H - (katan(1 / z) - 2 * PIO4_L);   /* pi/2 - atan(1/z) */
}

double LM(atan2)(double y, double x)
{
	if (x != x || y != y)
		return x + y;
	int ny = (int)(bits_of(y) >> 63), nx = (int)(bits_of(x) >> 63);
	double ax = LM(fabs)(x), ay = LM(fabs)(y), a;
	if (ay == 0) {
		a = nx ? PI_H : 0;
	} else if (ax == HUGE_VAL_ && ay == HUGE_VAL_) {
		a = nx ? 3 * PIO4_H : PIO4_H;
	} else if (ax == HUGE_VAL_) {
		a = nx ? PI_H : 0;
	} else if (ay == HUGE_VAL_ || ax == 0) {
		a = 2 * PIO4_H;
	} else {
		a = atan_pos(ay / ax);
		if (nx)
			a = PI_H - (a - PI_L);
	}
	return ny ? -a : a;
}

/* ---- pow ---- */

static int is_int(double y) { return LM(floor)(y) == y; }
static int is_odd_int(double y)
{
	return is_int(y) && LM(fabs)(y) < 0x1p53 && ((int64_t)y & 1);
}

double LM(pow)(double x, double y)
{
	if (y == 0 || x == 1)
		return 1;
	if (x != x || y != y)
		return x + y;
	double ax = LM(fabs)(x), ay = LM(fabs)(y);
	int yodd = ay != HUGE_VAL_ && is_odd_int(y);
	if (x == 0) {
		if (y < 0)
			return yodd ? (bits_of(x) >> 63 ? -HUGE_VAL_ : HUGE_VAL_) : HUGE_VAL_;
		return yodd ? x : 0;
	}
	if (ay == HUGE_VAL_) {
		if (ax == 1)
			return 1;
		return (ax > 1) == (y > 0) ? HUGE_VAL_ : 0;
	}
	if (ax == HUGE_VAL_) {
		double r = y > 0 ? HUGE_VAL_ : 0;
		return x < 0 && yodd ? -r : r;
	}
	if (x < 0 && !is_int(y))
		return NAN_;
	double sign = x < 0 && yodd ? -1 : 1;
	if (ay <= 64 && is_int(y)) {
		/* exact for exact cases (powers of two, small integers): repeated squaring */
		unsigned n = (unsigned)ay;
		double r = 1, b = ax;
		while (n) {
			if (n & 1)
				r *= b;
			b *= b;
			n >>= 1;
		}
		if (y < 0) {
			if (r == HUGE_VAL_ || r < 0x1p-1000)
				goto general;   /* 1/r would lose the subnormal range: use exp/log */
			r = 1 / r;
		}
		return sign * r;
	}
general:;
	double l = LM(log)(ax);
	double yl = y * l;
	double err = __builtin_fma(y, l, -yl);          /* the product's rounding error */
	if (yl > 709.782712893384)
		return sign * HUGE_VAL_;
	if (yl < -745.1332191019412)
		return sign * 0.0;
	double e = LM(exp)(yl);
	return sign * (e + e * err);
}
