/* Built only into freestanding targets; host builds use the C library's versions. */
#include "mb_string.h"
#include <stdint.h>

#ifdef __aarch64__
static inline uint64_t read_dczid(void)
{
	uint64_t v;
	__asm__("mrs %0, dczid_el0" : "=r"(v));
	return v;
}
#endif

void *memcpy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
#ifdef __aarch64__
	/* Whole pages (page moves, replicas, copy-on-write breaks): 128 bytes an iteration, all
	 * loaded before any is stored. A page's copy is often on the same cache colour as the
	 * original (palloc gives moves the source's colour), so in a direct-mapped cache each
	 * store would evict the source line that the next load needs: storing a whole line's
	 * worth only after reading it makes a copy 2 misses a line, not 4 (with 128-byte lines,
	 * the NUMA plugin's default). Also, under the plugin every memory instruction is a
	 * callback: register pairs make half as many as 8-byte words. */
	if ((((uintptr_t)d | (uintptr_t)s | n) & 127) == 0) {
		for (size_t i = 0; i < n; i += 128)
			__asm__ volatile("ldp x2, x3, [%1]\n\tldp x4, x5, [%1, #16]\n\t"
					 "ldp x6, x7, [%1, #32]\n\tldp x8, x9, [%1, #48]\n\t"
					 "ldp x10, x11, [%1, #64]\n\tldp x12, x13, [%1, #80]\n\t"
					 "ldp x14, x15, [%1, #96]\n\tldp x16, x17, [%1, #112]\n\t"
					 "stp x2, x3, [%0]\n\tstp x4, x5, [%0, #16]\n\t"
					 "stp x6, x7, [%0, #32]\n\tstp x8, x9, [%0, #48]\n\t"
					 "stp x10, x11, [%0, #64]\n\tstp x12, x13, [%0, #80]\n\t"
					 "stp x14, x15, [%0, #96]\n\tstp x16, x17, [%0, #112]"
					 :: "r"(d + i), "r"(s + i)
					 : "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12",
					   "x13", "x14", "x15", "x16", "x17", "memory");
		return dst;
	}
	/* Other 64-byte aligned blocks (disk data): 64 bytes an iteration in register pairs. */
	if ((((uintptr_t)d | (uintptr_t)s | n) & 63) == 0) {
		for (size_t i = 0; i < n; i += 64) {
			uint64_t a, b, c, e, f, g, h, k;
			__asm__ volatile("ldp %0, %1, [%8]\n\tldp %2, %3, [%8, #16]\n\t"
					 "ldp %4, %5, [%8, #32]\n\tldp %6, %7, [%8, #48]"
					 : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(e), "=&r"(f), "=&r"(g), "=&r"(h), "=&r"(k)
					 : "r"(s + i) : "memory");
			__asm__ volatile("stp %0, %1, [%8]\n\tstp %2, %3, [%8, #16]\n\t"
					 "stp %4, %5, [%8, #32]\n\tstp %6, %7, [%8, #48]"
					 :: "r"(a), "r"(b), "r"(c), "r"(e), "r"(f), "r"(g), "r"(h), "r"(k), "r"(d + i)
					 : "memory");
		}
		return dst;
	}
#endif
	if ((((uintptr_t)d | (uintptr_t)s | n) & 7) == 0) {
		uint64_t *d8 = dst;
		const uint64_t *s8 = src;
		for (size_t i = 0; i < n / 8; i++)
			d8[i] = s8[i];
		return dst;
	}
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;
	if (d == s || n == 0)
		return dst;
	if (d < s || d >= s + n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	uint8_t *d = dst;
#ifdef __aarch64__
	/* Large zeroing (memmaps at boot, guest pages) with DC ZVA: 64 bytes an instruction. */
	if (c == 0 && n >= 4096 && (((uintptr_t)d | n) & 63) == 0 && !(read_dczid() & 16) &&
	    (4u << (read_dczid() & 15)) == 64) {
		for (size_t i = 0; i < n; i += 64)
			__asm__ volatile("dc zva, %0" :: "r"(d + i) : "memory");
		return dst;
	}
#endif
	if (c == 0 && (((uintptr_t)d | n) & 7) == 0) {
		uint64_t *d8 = dst;
		for (size_t i = 0; i < n / 8; i++)
			d8[i] = 0;
		return dst;
	}
	while (n--)
		*d++ = (uint8_t)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;
	size_t i = 0;
	if ((((uintptr_t)x | (uintptr_t)y) & 7) == 0)      /* pages: 8 bytes a step to the first difference */
		for (; i + 8 <= n && *(const uint64_t *)(x + i) == *(const uint64_t *)(y + i); i += 8)
			;
	for (; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

size_t strnlen(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
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
		if (*a != *b || !*a)
			return (unsigned char)*a - (unsigned char)*b;
	}
	return 0;
}
