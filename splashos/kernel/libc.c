/* The small libc splash.h declares: memory and string routines, strtol/strtoul/strtod/atoi.
 * Built with -fno-tree-loop-distribute-patterns so GCC does not turn these loops back into
 * calls to themselves.
 * Not the monitor's lib/string.c: memcpy, memmove and memset here go a word (or four) at a
 * time for any length and fill value (the apps' bulk copies and fills; lib/string.c only for
 * whole-word zeroing and copies), memcmp returns -1/0/1, strchr and the strto* are SPLASHOS's
 * alone; only strlen/strcmp/strncmp are the same, and one image cannot link both files. */
#include "kernel.h"

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if ((((uintptr_t)dp | (uintptr_t)sp) & 7) == 0) {
		for (; n >= 32; n -= 32, dp += 32, sp += 32) {
			uint64_t a = ((const uint64_t *)sp)[0], b = ((const uint64_t *)sp)[1];
			uint64_t c = ((const uint64_t *)sp)[2], e = ((const uint64_t *)sp)[3];
			((uint64_t *)dp)[0] = a;
			((uint64_t *)dp)[1] = b;
			((uint64_t *)dp)[2] = c;
			((uint64_t *)dp)[3] = e;
		}
		for (; n >= 8; n -= 8, dp += 8, sp += 8)
			*(uint64_t *)dp = *(const uint64_t *)sp;
	}
	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	if (dp == sp || n == 0)
		return d;
	if (dp < sp || dp >= sp + n)
		return memcpy(d, s, n);
	/* overlapping, destination above: copy backwards */
	dp += n;
	sp += n;
	if ((((uintptr_t)dp | (uintptr_t)sp) & 7) == 0)
		for (; n >= 8; n -= 8) {
			dp -= 8;
			sp -= 8;
			*(uint64_t *)dp = *(const uint64_t *)sp;
		}
	while (n--)
		*--dp = *--sp;
	return d;
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *dp = d;
	while (n && ((uintptr_t)dp & 7)) {
		*dp++ = (unsigned char)c;
		n--;
	}
	uint64_t w = (unsigned char)c * 0x0101010101010101ULL;
	for (; n >= 32; n -= 32, dp += 32) {
		((uint64_t *)dp)[0] = w;
		((uint64_t *)dp)[1] = w;
		((uint64_t *)dp)[2] = w;
		((uint64_t *)dp)[3] = w;
	}
	for (; n >= 8; n -= 8, dp += 8)
		*(uint64_t *)dp = w;
	while (n--)
		*dp++ = (unsigned char)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s)
{
	const char *p = s;
	while (*p)
		p++;
	return (size_t)(p - s);
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

static int isspace_(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int digit_val(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	return 99;
}

/* Parses like C's strtoul (base 0, 2..36, optional sign and 0x prefix), saturating at
 * ULONG_MAX; *neg tells whether a '-' was seen; *any whether a digit was. */
static unsigned long parse_ul(const char *s, char **end, int base, int *neg, int *ovf)
{
	const char *p = s;
	unsigned long v = 0;
	int any = 0;
	*neg = 0;
	*ovf = 0;
	while (isspace_(*p))
		p++;
	if (*p == '+' || *p == '-')
		*neg = *p++ == '-';
	if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && digit_val(p[2]) < 16) {
		p += 2;
		base = 16;
	} else if (base == 0) {
		base = p[0] == '0' ? 8 : 10;
	}
	if (base < 2 || base > 36) {
		if (end)
			*end = (char *)s;
		return 0;
	}
	for (;; p++) {
		int d = digit_val(*p);
		if (d >= base)
			break;
		any = 1;
		if (v > (~0UL - (unsigned long)d) / (unsigned long)base)
			*ovf = 1;
		else
			v = v * (unsigned long)base + (unsigned long)d;
	}
	if (end)
		*end = (char *)(any ? p : s);
	return *ovf ? ~0UL : v;
}

unsigned long strtoul(const char *s, char **end, int base)
{
	int neg, ovf;
	unsigned long v = parse_ul(s, end, base, &neg, &ovf);
	return neg && !ovf ? -v : v;
}

long strtol(const char *s, char **end, int base)
{
	int neg, ovf;
	unsigned long v = parse_ul(s, end, base, &neg, &ovf);
	const unsigned long lim = (unsigned long)__LONG_MAX__;
	if (neg)
		return ovf || v > lim + 1 ? -(long)lim - 1 : (long)(0 - v);
	return ovf || v > lim ? (long)lim : (long)v;
}

int atoi(const char *s)
{
	return (int)strtol(s, NULL, 10);
}

/* Decimal (and inf/nan) to double: up to 19 significant digits are kept exactly, then
 * scaled by an exact power of ten where one exists (|e| <= 22), else by repeated
 * multiplication in two steps (within a few ulps, which is all the apps' inputs need). */
static const double p10[23] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static double scale10(double v, int e)
{
	while (e > 22) {
		v *= 1e22;
		e -= 22;
		if (v > 1.7976931348623157e308)
			return v;
	}
	while (e < -22) {
		v /= 1e22;
		e += 22;
		if (v == 0)
			return v;
	}
	return e >= 0 ? v * p10[e] : v / p10[-e];
}

static int lower_eq(const char *p, const char *w)
{
	for (; *w; p++, w++)
		if ((*p | 0x20) != *w)
			return 0;
	return 1;
}

double strtod(const char *s, char **end)
{
	const char *p = s;
	int neg = 0;
	while (isspace_(*p))
		p++;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	if (lower_eq(p, "inf")) {
		p += lower_eq(p, "infinity") ? 8 : 3;
		if (end)
			*end = (char *)p;
		return neg ? -__builtin_inf() : __builtin_inf();
	}
	if (lower_eq(p, "nan")) {
		if (end)
			*end = (char *)p + 3;
		return neg ? -__builtin_nan("") : __builtin_nan("");
	}
	uint64_t mant = 0;
	int ndig = 0, exp10 = 0, any = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		any = 1;
		if (ndig < 19) {
			mant = mant * 10 + (uint64_t)(*p - '0');
			if (mant)
				ndig++;
		} else {
			exp10++;
		}
	}
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++) {
			any = 1;
			if (ndig < 19) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				if (mant)
					ndig++;
				exp10--;
			}
		}
	}
	if (!any) {
		if (end)
			*end = (char *)s;
		return 0;
	}
	if (*p == 'e' || *p == 'E') {
		const char *q = p + 1;
		int eneg = 0, e = 0, edig = 0;
		if (*q == '+' || *q == '-')
			eneg = *q++ == '-';
		for (; *q >= '0' && *q <= '9'; q++, edig = 1)
			if (e < 100000)
				e = e * 10 + (*q - '0');
		if (edig) {
			exp10 += eneg ? -e : e;
			p = q;
		}
	}
	if (end)
		*end = (char *)p;
	double v;
	if (mant == 0) {
		v = 0;
	} else if (exp10 < -330 + 19 && exp10 >= -343) {
		/* tiny: scale in two steps so the intermediate does not underflow early */
		v = scale10(scale10((double)mant, exp10 + 30), -30);
	} else {
		v = scale10((double)mant, exp10);
	}
	return neg ? -v : v;
}
