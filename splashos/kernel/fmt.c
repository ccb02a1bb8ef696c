/* sp_vsnprintf: %d %i %u %x %X %o %c %s %p %% with the l/ll/z/h modifiers, flags - 0 + space
 * #, width and precision (also *), and %f %e %g (%F %E %G) with correct rounding: a double
 * is converted exactly to decimal (a small bignum), then rounded half-to-even on the exact
 * digits, as glibc does. Portable: tests/unit/test_splash_fmt.c builds it on the host and
 * compares it with glibc's snprintf. */
#include "../include/splash.h"

struct out {
	char *buf;
	size_t size, n;
};

static void emit(struct out *o, char c)
{
	if (o->n + 1 < o->size)
		o->buf[o->n] = c;
	o->n++;
}

static void emit_n(struct out *o, char c, int n)
{
	while (n-- > 0)
		emit(o, c);
}

static void emit_s(struct out *o, const char *s, int n)
{
	for (int i = 0; i < n; i++)
		emit(o, s[i]);
}

/* ---- exact decimal expansion of a double ---- */

#define LIMBS 90                       /* 10^(9*90): m * 5^1074 < 10^768 fits */
#define MAXDIG (9 * LIMBS + 9)

struct big {
	uint32_t l[LIMBS];                  /* base 1e9, little endian */
	int n;
};

static void big_mul(struct big *b, uint32_t m)
{
	uint64_t carry = 0;
	for (int i = 0; i < b->n; i++) {
		uint64_t t = (uint64_t)b->l[i] * m + carry;
		b->l[i] = (uint32_t)(t % 1000000000u);
		carry = t / 1000000000u;
	}
	while (carry && b->n < LIMBS) {
		b->l[b->n++] = (uint32_t)(carry % 1000000000u);
		carry /= 1000000000u;
	}
}

/* |x| (finite, non-zero) = 0.d[0]d[1]...d[n-1] * 10^*e10; returns n (trailing zeros cut). */
static int exact_digits(double x, char *d, int *e10)
{
	union { double f; uint64_t u; } v = { x };
	int bexp = (int)((v.u >> 52) & 0x7FF);
	uint64_t m = v.u & ((1ULL << 52) - 1);
	if (bexp)
		m |= 1ULL << 52;
	else
		bexp = 1;
	int e = bexp - 1075;                /* |x| = m * 2^e */
	struct big b;
	b.n = 0;
	while (m) {
		b.l[b.n++] = (uint32_t)(m % 1000000000u);
		m /= 1000000000u;
	}
	int shift10 = 0;
	if (e >= 0) {
		for (; e >= 29; e -= 29)
			big_mul(&b, 1u << 29);
		big_mul(&b, 1u << e);
	} else {
		int k = -e;                     /* m * 2^-k = m * 5^k / 10^k */
		for (; k >= 13; k -= 13)
			big_mul(&b, 1220703125u);
		uint32_t p = 1;
		while (k--)
			p *= 5;
		big_mul(&b, p);
		shift10 = e;
	}
	int n = 0;
	char t[9];
	for (int i = b.n - 1; i >= 0; i--) {
		uint32_t w = b.l[i];
		for (int j = 8; j >= 0; j--) {
			t[j] = (char)('0' + w % 10);
			w /= 10;
		}
		int j = 0;
		if (i == b.n - 1)
			while (j < 8 && t[j] == '0')
				j++;
		for (; j < 9; j++)
			d[n++] = t[j];
	}
	*e10 = n + shift10;
	while (n > 0 && d[n - 1] == '0')
		n--;
	return n;
}

/* Keep `keep` digits, rounding half to even on the exact digits. */
static void round_digits(char *d, int *n, int *e10, int keep)
{
	if (keep >= *n)
		return;
	if (keep < 0) {
		*n = 0;
		return;
	}
	int up;
	char r = d[keep];
	if (r > '5') {
		up = 1;
	} else if (r < '5') {
		up = 0;
	} else {
		int rest = 0;
		for (int i = keep + 1; i < *n; i++)
			if (d[i] != '0')
				rest = 1;
		up = rest || (keep > 0 && ((d[keep - 1] - '0') & 1));
	}
	*n = keep;
	if (!up) {
		while (*n > 0 && d[*n - 1] == '0')
			(*n)--;
		return;
	}
	int i = keep - 1;
	while (i >= 0 && d[i] == '9')
		i--;
	if (i < 0) {
		d[0] = '1';
		*n = 1;
		(*e10)++;
		return;
	}
	d[i]++;
	*n = i + 1;
}

static char digit_at(const char *d, int n, int i)
{
	return i >= 0 && i < n ? d[i] : '0';
}

struct spec {
	int left, zero, plus, space, alt, width, prec, upper;
};

static void pad_out(struct out *o, const struct spec *sp, char sign, const char *body, int blen)
{
	int len = blen + (sign != 0);
	if (!sp->left && !sp->zero)
		emit_n(o, ' ', sp->width - len);
	if (sign)
		emit(o, sign);
	if (!sp->left && sp->zero)
		emit_n(o, '0', sp->width - len);
	emit_s(o, body, blen);
	if (sp->left)
		emit_n(o, ' ', sp->width - len);
}

/* Body of %f (style 'f') or %e ('e') for the digits d (n of them, exponent e10). */
static int body_f(char *b, const char *d, int n, int e10, int prec, int alt)
{
	int k = 0;
	if (e10 <= 0)
		b[k++] = '0';
	else
		for (int i = 0; i < e10; i++)
			b[k++] = digit_at(d, n, i);
	if (prec > 0 || alt)
		b[k++] = '.';
	for (int j = 0; j < prec; j++)
		b[k++] = digit_at(d, n, e10 + j);
	return k;
}

static int body_e(char *b, const char *d, int n, int e10, int prec, int alt, int upper)
{
	int k = 0;
	int x = n ? e10 - 1 : 0;
	b[k++] = digit_at(d, n, 0);
	if (prec > 0 || alt)
		b[k++] = '.';
	for (int j = 1; j <= prec; j++)
		b[k++] = digit_at(d, n, j);
	b[k++] = upper ? 'E' : 'e';
	b[k++] = x < 0 ? '-' : '+';
	if (x < 0)
		x = -x;
	char t[6];
	int m = 0;
	do
		t[m++] = (char)('0' + x % 10);
	while ((x /= 10));
	if (m < 2)
		t[m++] = '0';
	while (m)
		b[k++] = t[--m];
	return k;
}

static void fmt_double(struct out *o, struct spec *sp, double x, char conv)
{
	union { double f; uint64_t u; } v = { x };
	char sign = (v.u >> 63) ? '-' : sp->plus ? '+' : sp->space ? ' ' : 0;
	int upper = conv == 'F' || conv == 'E' || conv == 'G';
	if (((v.u >> 52) & 0x7FF) == 0x7FF) {
		const char *s = (v.u & ((1ULL << 52) - 1)) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
		struct spec s2 = *sp;
		s2.zero = 0;
		pad_out(o, &s2, sign, s, 3);
		return;
	}
	char d[MAXDIG + 16];
	int e10 = 0, n = 0;
	if (x != 0)
		n = exact_digits(x, d, &e10);
	int prec = sp->prec < 0 ? 6 : sp->prec;
	if (prec > 400)
		prec = 400;
	/* body: up to 309 integer digits + point + 400 fraction digits (+ exponent) */
	char b[800];
	int blen;
	char c = (char)(conv | 0x20);
	if (c == 'f') {
		round_digits(d, &n, &e10, e10 + prec);
		blen = body_f(b, d, n, e10, prec, sp->alt);
	} else if (c == 'e') {
		round_digits(d, &n, &e10, prec + 1);
		blen = body_e(b, d, n, e10, prec, sp->alt, upper);
	} else {
		int P = prec == 0 ? 1 : prec;
		round_digits(d, &n, &e10, P);
		int X = n ? e10 - 1 : 0;
		if (P > X && X >= -4) {
			blen = body_f(b, d, n, e10, P - 1 - X, sp->alt);
		} else {
			blen = body_e(b, d, n, e10, P - 1, sp->alt, upper);
		}
		if (!sp->alt) {
			/* strip trailing zeros of the fraction, and a bare point */
			int epos = blen;
			for (int i = 0; i < blen; i++)
				if (b[i] == 'e' || b[i] == 'E')
					epos = i;
			int has_point = 0;
			for (int i = 0; i < epos; i++)
				if (b[i] == '.')
					has_point = 1;
			if (has_point) {
				int k = epos;
				while (k > 0 && b[k - 1] == '0')
					k--;
				if (k > 0 && b[k - 1] == '.')
					k--;
				for (int i = epos; i < blen; i++)
					b[k + i - epos] = b[i];
				blen = k + blen - epos;
			}
		}
	}
	pad_out(o, sp, sign, b, blen);
}

static void fmt_int(struct out *o, struct spec *sp, unsigned long long u, int neg, int base, int upper,
		    const char *prefix)
{
	char t[32];
	int k = 0;
	const char *digs = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	while (u) {
		t[k++] = digs[u % (unsigned)base];
		u /= (unsigned)base;
	}
	int prec = sp->prec;
	char body[96];
	int blen = 0;
	int pl = prefix ? (int)strlen(prefix) : 0;
	for (int i = 0; i < pl; i++)
		body[blen++] = prefix[i];
	int zeros = (prec >= 0 ? prec : 1) - k;
	if (prec > 64)
		zeros = 64 - k;
	for (int i = 0; i < zeros; i++)
		body[blen++] = '0';
	while (k)
		body[blen++] = t[--k];
	struct spec s2 = *sp;
	if (prec >= 0)
		s2.zero = 0;
	char sign = neg ? '-' : sp->plus ? '+' : sp->space ? ' ' : 0;
	if (s2.zero && !s2.left && pl) {
		/* zero padding goes after the 0x prefix */
		int len = blen + (sign != 0);
		if (sign)
			emit(o, sign);
		emit_s(o, body, pl);
		emit_n(o, '0', s2.width - len);
		emit_s(o, body + pl, blen - pl);
		return;
	}
	pad_out(o, &s2, sign, body, blen);
}

int sp_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			emit(&o, *p);
			continue;
		}
		const char *start = p++;
		struct spec sp = { 0, 0, 0, 0, 0, 0, -1, 0 };
		for (;; p++) {
			if (*p == '-') sp.left = 1;
			else if (*p == '0') sp.zero = 1;
			else if (*p == '+') sp.plus = 1;
			else if (*p == ' ') sp.space = 1;
			else if (*p == '#') sp.alt = 1;
			else break;
		}
		if (*p == '*') {
			sp.width = va_arg(ap, int);
			if (sp.width < 0) {
				sp.left = 1;
				sp.width = -sp.width;
			}
			p++;
		} else {
			while (*p >= '0' && *p <= '9')
				sp.width = sp.width * 10 + (*p++ - '0');
		}
		if (*p == '.') {
			p++;
			sp.prec = 0;
			if (*p == '*') {
				sp.prec = va_arg(ap, int);
				p++;
			} else {
				while (*p >= '0' && *p <= '9')
					sp.prec = sp.prec * 10 + (*p++ - '0');
			}
		}
		if (sp.width > 1000)
			sp.width = 1000;
		if (sp.left)
			sp.zero = 0;
		int lng = 0;                   /* 0 int, 1 long, 2 long long, -1 short, -2 char */
		for (;; p++) {
			if (*p == 'l') lng = lng >= 1 ? 2 : 1;
			else if (*p == 'z' || *p == 't' || *p == 'j') lng = 2;
			else if (*p == 'h') lng = lng == -1 ? -2 : -1;
			else if (*p == 'L') lng = 2;
			else break;
		}
		char c = *p;
		switch (c) {
		case 'd': case 'i': {
			long long v = lng == 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
			if (lng == -1) v = (short)v;
			if (lng == -2) v = (signed char)v;
			unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
			fmt_int(&o, &sp, u, v < 0, 10, 0, NULL);
			break;
		}
		case 'u': case 'x': case 'X': case 'o': {
			unsigned long long u = lng == 2 ? va_arg(ap, unsigned long long)
				: lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			if (lng == -1) u = (unsigned short)u;
			if (lng == -2) u = (unsigned char)u;
			int base = c == 'u' ? 10 : c == 'o' ? 8 : 16;
			sp.plus = sp.space = 0;
			const char *prefix = NULL;
			if (sp.alt && u && base == 16)
				prefix = c == 'X' ? "0X" : "0x";
			if (sp.alt && base == 8 && (sp.prec <= 0))
				sp.prec = 1;  /* approximately C's: a leading 0 */
			if (sp.alt && base == 8 && u) {
				prefix = "0";
			}
			fmt_int(&o, &sp, u, 0, base, c == 'X', prefix);
			break;
		}
		case 'p': {
			void *ptr = va_arg(ap, void *);
			if (!ptr) {
				sp.zero = 0;
				pad_out(&o, &sp, 0, "(nil)", 5);
			} else {
				sp.plus = sp.space = 0;
				fmt_int(&o, &sp, (unsigned long long)(uintptr_t)ptr, 0, 16, 0, "0x");
			}
			break;
		}
		case 'c': {
			char ch = (char)va_arg(ap, int);
			sp.zero = 0;
			pad_out(&o, &sp, 0, &ch, 1);
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int len = 0;
			while (s[len] && (sp.prec < 0 || len < sp.prec))
				len++;
			sp.zero = 0;
			pad_out(&o, &sp, 0, s, len);
			break;
		}
		case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
			double v = va_arg(ap, double);
			fmt_double(&o, &sp, v, c);
			break;
		}
		case '%':
			emit(&o, '%');
			break;
		default:
			/* unknown conversion: print it as it was written */
			for (const char *q = start; q <= p && *q; q++)
				emit(&o, *q);
			if (!*p)
				p--;
			break;
		}
	}
	if (size)
		buf[o.n < size ? o.n : size - 1] = 0;
	return (int)o.n;
}

int sp_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = sp_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return r;
}
