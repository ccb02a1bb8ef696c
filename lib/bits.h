/* Small helpers shared by every component. */
#ifndef MB_BITS_H
#define MB_BITS_H
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1ULL << PAGE_SHIFT)
#define ALIGN_UP(x, a)   (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BIT(n) (1ULL << (n))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define CACHELINE 64
#define __aligned(n) __attribute__((aligned(n)))
#define unlikely(x) __builtin_expect(!!(x), 0)

static inline uint64_t extract(uint64_t v, int lo, int width)
{
	return (v >> lo) & ((width >= 64) ? ~0ULL : ((1ULL << width) - 1));
}
#endif
