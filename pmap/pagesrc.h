/* Where table and guest pages come from: the monitor passes its per-node allocator,
 * host tests pass malloc. alloc returns a zeroed page (machine address) or 0. */
#ifndef MB_PAGESRC_H
#define MB_PAGESRC_H
#include <stdint.h>
struct page_source {
	uint64_t (*alloc)(void *arg);
	void (*free)(void *arg, uint64_t page);
	void *arg;
	/* optional: a page like 'like' (the monitor: same node policy as alloc, same cache
	 * colour, for page moves); 0 falls back to alloc */
	uint64_t (*alloc_like)(void *arg, uint64_t like);
};
#endif
