/* vdisk: the data path of guests' disks (Disco section 4.2.5). Portable: the host image is
 * reached through struct vdisk_store, guest memory through the pmap, so the whole path runs
 * in host unit tests.
 *
 * A base is a disk extent of the host image. Its global disk cache maps 4 KiB blocks to
 * machine pages (MM_DCACHE, one sharer held by the cache): a page-aligned full-page read of
 * a block maps that page copy-on-write into the guest; other reads copy from it. Each
 * (disk, VM) attachment sees the base through its mode: read-only, copy-on-write (an overlay
 * B-tree of the sectors the VM wrote, data in monitor pages, dropped at restart) or
 * persistent (writes go to the image, the cached block is dropped). */
#ifndef MB_VDISK_H
#define MB_VDISK_H
#include <stdint.h>
#include <stddef.h>
#include "btree.h"
#include "spinlock.h"
#include "pmap.h"
#include "pagesrc.h"
#include "guestmem.h"

#define VDISK_BLOCK 4096u
#define VDISK_SECTOR 512u
#define VDISK_SECTORS_PER_BLOCK (VDISK_BLOCK / VDISK_SECTOR)
#define VDISK_BATCH 32            /* blocks read from the image in one go on cache misses */

/* The host image, as the monitor's host-disk driver sees it. Offsets and lengths are
 * multiples of 512; readv fills n separate pages from consecutive bytes. 0 or -1. */
struct vdisk_store {
	int (*readv)(void *ctx, uint64_t off, uint64_t *pages, unsigned n);
	int (*write)(void *ctx, uint64_t off, const void *src, uint64_t len);
	int (*flush)(void *ctx);
	void *ctx;
};

/* Machine pages for cache blocks, overlay data and B-tree nodes: any node (cache pages are
 * shared by every VM). alloc returns a zeroed page or 0. */
extern const struct page_source *vdisk_pages;
extern const struct vdisk_store *vdisk_store;

struct vdisk_base {
	char name[48];
	uint64_t offset, bytes;           /* extent in the host image */
	uint64_t blocks;
	spinlock_t lock;                  /* the cache tree and counters */
	struct btree cache;               /* sector -> machine page, one 8-sector extent per block */
	/* pages for the cache tree's nodes, allocated with the lock not held (the monitor's
	 * allocators reclaim cache pages, which takes the lock); given back when the cache empties */
	uint64_t spare[BTREE_MAX_DEPTH + 1];
	unsigned nspare;
	/* counters */
	uint64_t cache_pages;             /* blocks held */
	uint64_t hits, misses;            /* blocks found / read from the image */
	uint64_t image_reads, image_read_bytes, image_writes, image_write_bytes;
	uint64_t reclaimed;
};

enum vdisk_mode { VDISK_RO = 1, VDISK_COW = 2, VDISK_PERSISTENT = 3 };

/* A guest's memory, as the data path needs it: the devices' common view (pmap/guestmem.h),
 * by its old name. */
#define vdisk_guest guest_mem

struct vdisk {
	struct vdisk_base *base;
	int mode;
	struct btree overlay;             /* COW: sector -> byte address of its data (step 512) */
	uint64_t overlay_pages;
	uint8_t *bounce;                  /* one page for assembling blocks (requests are serialised) */
	struct pmap_batch batch;          /* zero-copy remaps of the request being served */
	/* counters (the device's own: reads/writes as the guest asked them) */
	uint64_t reads, read_bytes, writes, write_bytes, flushes, errors;
	uint64_t zero_copy_pages, copied_bytes;
	uint64_t cache_hits, image_read_bytes;   /* blocks found in the cache / bytes this device read from the image */
};

void vdisk_base_init(struct vdisk_base *b, const char *name, uint64_t offset, uint64_t bytes);
void vdisk_init(struct vdisk *d, struct vdisk_base *b, int mode);
/* Drops a COW overlay (VM restart / teardown); nothing for other modes. */
void vdisk_reset(struct vdisk *d);
uint64_t vdisk_sectors(const struct vdisk *d);

/* One piece of guest memory in a request: [gpa, gpa + len). */
struct vdisk_iov { uint64_t gpa; uint32_t len; };

/* Reads / writes the sectors [sector, sector + total/512) to / from the guest pieces
 * (total = sum of lens, a multiple of 512, checked by the caller against the capacity).
 * Returns 0, or -1 (I/O error: a store failure, no memory, a read-only disk). */
int vdisk_read(struct vdisk *d, const struct vdisk_guest *g, uint64_t sector, const struct vdisk_iov *iov, unsigned n);
int vdisk_write(struct vdisk *d, const struct vdisk_guest *g, uint64_t sector, const struct vdisk_iov *iov, unsigned n);
int vdisk_flush(struct vdisk *d);

/* Gives back up to 'want' cache pages that no guest maps; returns how many were freed. */
uint64_t vdisk_base_reclaim(struct vdisk_base *b, uint64_t want);

/* Copies between the monitor and guest memory page by page (faulting pages in; writes make
 * them private). 0, or -1 outside RAM / out of memory. */
int vdisk_guest_copy(const struct vdisk_guest *g, uint64_t gpa, void *buf, uint64_t len, int to_guest);
#endif
