/* vdisk: the disk data path against a fake host image and fake guests. The global disk cache
 * (zero-copy reads that map cache pages copy-on-write into guests, batched misses, sharing
 * between VMs, reclaim), unaligned and scattered requests, copy-on-write overlays, read-only
 * and persistent disks, store failures and out-of-memory, and two random differential tests
 * (100k COW operations; persistent + RO + COW on one base) against byte-array models.
 *
 * Every page the code under test sees (guest pages, pmap leaves and stage-2 tables, cache and
 * overlay pages, B-tree nodes) comes from g_palloc over a pool mapped below 2 GiB (pmap
 * entries keep only address bits [39:12]), so the memmap is live: the tests count pages by
 * their memmap use and check that nothing leaks (palloc back to zero pages used after each
 * test) and that the sharers counts are right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vdisk.h"
#include "fake_guest.h"
#include "arch_stub.h"

#define MAX_VMS     FG_MAX_VMS

/* The host image: the disk extent starts on a sector, not a block, boundary, and the disk's
 * size is not a whole number of blocks (the tail is dropped). */
#define DISK_OFF    0x10200ull
#define DISK_BLOCKS 64u
#define DISK_BYTES  ((uint64_t)DISK_BLOCKS * VDISK_BLOCK + 1536)
#define DISK_USED   ((uint64_t)DISK_BLOCKS * VDISK_BLOCK)
#define NSECT       (DISK_USED / VDISK_SECTOR)
#define IMG_BYTES   (DISK_OFF + DISK_BYTES + 8192)

static struct vdisk_base base;

/* disk_s's reclaim (test_allocation_reclaims_cache): the monitor's page allocators
 * (disk_page_alloc, the guest pages') call disks_reclaim when memory runs out, which takes
 * every base's lock: an allocation made with a base lock held would spin on it forever. */
static uint64_t reclaim_cache(void)
{
	if (spin_is_locked(&base.lock))
		fail_msg("a page allocated with the base lock held: the monitor would deadlock reclaiming");
	return vdisk_base_reclaim(&base, 256);
}

/* ---- the fake host image ---- */

#define LOG_MAX 64
static struct {
	uint8_t *img, *orig;               /* the image, and what it was before any test wrote */
	long readv_calls, readv_blocks, write_calls, flush_calls;
	uint64_t write_bytes, last_write_off, last_write_len;
	struct { uint64_t off; unsigned n; } log[LOG_MAX];   /* readv requests, in order */
	int fail_readv, fail_write, fail_flush;
	int may_change;                    /* a test with a persistent disk: the image changes */
} st;

static int store_readv(void *ctx, uint64_t off, uint64_t *pages, unsigned n)
{
	assert_ptr_equal(ctx, &st);
	/* whole blocks of this disk's extent only, never past the blocks it has */
	assert_true(n >= 1 && n <= VDISK_BATCH);
	assert_int_equal((off - DISK_OFF) % VDISK_BLOCK, 0);
	assert_true(off >= DISK_OFF && off + (uint64_t)n * VDISK_BLOCK <= DISK_OFF + DISK_USED);
	if (st.readv_calls < LOG_MAX) {
		st.log[st.readv_calls].off = off;
		st.log[st.readv_calls].n = n;
	}
	st.readv_calls++;
	if (st.fail_readv) {
		memset((void *)(uintptr_t)pages[0], 0xEE, 100);   /* a failed read may leave junk */
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(memmap_of(&g_palloc, pages[i])->use, MM_MONITOR);   /* fresh pages */
		memcpy((void *)(uintptr_t)pages[i], st.img + off + (uint64_t)i * VDISK_BLOCK, VDISK_BLOCK);
	}
	st.readv_blocks += n;
	return 0;
}

static int store_write(void *ctx, uint64_t off, const void *src, uint64_t len)
{
	assert_ptr_equal(ctx, &st);
	assert_true(len > 0 && len % VDISK_SECTOR == 0 && off % VDISK_SECTOR == 0);
	assert_true(off >= DISK_OFF && off + len <= DISK_OFF + DISK_USED);
	st.write_calls++;
	if (st.fail_write)
		return -1;
	memcpy(st.img + off, src, len);
	st.write_bytes += len;
	st.last_write_off = off;
	st.last_write_len = len;
	return 0;
}

static int store_flush(void *ctx)
{
	assert_ptr_equal(ctx, &st);
	st.flush_calls++;
	return st.fail_flush ? -1 : 0;
}

static const struct vdisk_store store = { store_readv, store_write, store_flush, &st };

/* The disk's bytes as they were before the test: byte off of the disk. */
static const uint8_t *base_at(uint64_t off) { return st.orig + DISK_OFF + off; }

/* Guest bytes around a request are filled with canaries: the byte at gpa is
 * canary_pat[gpa % CANARY_PERIOD], so a window is one memcpy. */
#define WIN_MAX (512u << 10)
#define CANARY_PERIOD 8191u                 /* canary byte of gpa: canary_pat[gpa % period] */
static uint8_t canary_pat[CANARY_PERIOD + WIN_MAX], got_buf[WIN_MAX];

/* ---- fake guests (fake_guest.h), and their disks ---- */

static struct vdisk disks[MAX_VMS];
static int ndisks;

static struct vdisk *disk_new(int mode)
{
	assert_true(ndisks < MAX_VMS);
	struct vdisk *d = &disks[ndisks++];
	vdisk_init(d, &base, mode);
	return d;
}

/* ---- invariants ---- */

/* Every monitor page the disks hold: cache tree nodes and spare nodes, and per disk its
 * overlay nodes, overlay pages and bounce page. */
static uint64_t expected_monitor_pages(void)
{
	uint64_t n = btree_nodes(&base.cache) + base.nspare;
	for (int i = 0; i < ndisks; i++)
		n += btree_nodes(&disks[i].overlay) + disks[i].overlay_pages + (disks[i].bounce != NULL);
	return n;
}

static int cache_block_check(void *arg, const struct btree_extent *e)
{
	const uint8_t *disk = arg;       /* what the base holds now, from byte 0 */
	assert_int_equal(e->len, VDISK_SECTORS_PER_BLOCK);
	assert_int_equal(e->start % VDISK_SECTORS_PER_BLOCK, 0);
	assert_int_equal(mm(e->value)->use, MM_DCACHE);
	assert_true(mm(e->value)->sharers >= 1);
	assert_memory_equal((const void *)(uintptr_t)e->value, disk + e->start * VDISK_SECTOR, VDISK_BLOCK);
	return 0;
}

/* The cache holds blocks of the base as it is now (nobody wrote through a cache page, a
 * persistent write dropped its block), and the page accounting adds up. exact_dcache: no
 * page dropped from the cache can still be mapped (no persistent disk). */
static void check_invariants(const uint8_t *disk_now, int exact_dcache)
{
	assert_null(btree_check(&base.cache));
	assert_int_equal(btree_count(&base.cache), base.cache_pages);
	btree_visit(&base.cache, 0, UINT64_MAX, cache_block_check, (void *)disk_now);
	for (int i = 0; i < ndisks; i++)
		assert_null(btree_check(&disks[i].overlay));
	assert_int_equal(mm_count(MM_MONITOR), expected_monitor_pages());
	if (exact_dcache)
		assert_int_equal(mm_count(MM_DCACHE), base.cache_pages);
	else
		assert_true(mm_count(MM_DCACHE) >= base.cache_pages);
}

/* ---- fixture ---- */

static int setup(void **state)
{
	(void)state;
	fake_guest_setup();

	uint8_t *img = st.img, *orig = st.orig;
	memset(&st, 0, sizeof(st));
	st.img = img;
	st.orig = orig;
	memcpy(st.img, st.orig, IMG_BYTES);

	vdisk_pages = &disk_src;
	vdisk_store = &store;
	vdisk_base_init(&base, "base0", DISK_OFF, DISK_BYTES);
	ndisks = 0;
	memset(disks, 0, sizeof(disks));
	rng_state = 0x1234;
	return 0;
}

/* Tears every VM and disk down, empties the cache and checks that every page came back. */
static int teardown(void **state)
{
	(void)state;
	disk_s.armed = guest_s.armed = table_s.armed = 0;
	/* a test that failed inside vdisk (a fail_msg from a page source) may have left the base
	 * locked: unlock it so the teardown does not spin, and fail */
	int locked = spin_is_locked(&base.lock);
	if (locked)
		spin_unlock(&base.lock);
	vms_destroy();
	for (int i = 0; i < ndisks; i++) {
		vdisk_reset(&disks[i]);
		assert_int_equal(disks[i].overlay_pages, 0);
		assert_int_equal(btree_nodes(&disks[i].overlay), 0);
	}
	/* nobody maps a cache page now: reclaim gives every one back */
	uint64_t had = base.cache_pages;
	assert_int_equal(vdisk_base_reclaim(&base, UINT64_MAX), had);
	assert_int_equal(base.cache_pages, 0);
	assert_int_equal(btree_nodes(&base.cache), 0);
	assert_int_equal(base.nspare, 0);
	assert_int_equal(used_pages(), 0);
	assert_false(locked);
	if (!st.may_change)
		assert_memory_equal(st.img, st.orig, IMG_BYTES);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	st.img = malloc(IMG_BYTES);
	st.orig = malloc(IMG_BYTES);
	assert_non_null(st.img);
	assert_non_null(st.orig);
	rng_state = 0xfeedbeef;
	for (size_t i = 0; i < sizeof(canary_pat); i++)
		canary_pat[i] = (uint8_t)(0xA5 ^ (i % CANARY_PERIOD) * 13 ^ (i % CANARY_PERIOD) >> 7);
	for (uint64_t i = 0; i < IMG_BYTES; i += 8) {
		uint64_t r = rnd();
		memcpy(st.orig + i, &r, IMG_BYTES - i < 8 ? IMG_BYTES - i : 8);
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(st.img);
	free(st.orig);
	return 0;
}

/* ---- requests ---- */

#define MAXP 16
struct req {
	uint64_t sector;
	unsigned n;
	struct vdisk_iov iov[MAXP];
};

static uint64_t req_bytes(const struct req *r)
{
	uint64_t t = 0;
	for (unsigned i = 0; i < r->n; i++)
		t += r->iov[i].len;
	return t;
}

/* Lays pieces of the given lengths out from gpa: each piece starts gaps[i] bytes after the
 * previous one ends (pieces never overlap). */
static void layout(struct req *r, uint64_t sector, uint64_t gpa, const uint32_t *lens,
		   const uint32_t *gaps, unsigned n)
{
	r->sector = sector;
	r->n = n;
	for (unsigned i = 0; i < n; i++) {
		gpa += gaps ? gaps[i] : 0;
		r->iov[i] = (struct vdisk_iov){ gpa, lens[i] };
		gpa += lens[i];
	}
}

#define SLACK 200                          /* canary bytes checked on each side of a request */

static uint64_t win_lo(const struct req *r) { return r->iov[0].gpa - SLACK; }
static uint64_t win_hi(const struct req *r)
{
	const struct vdisk_iov *l = &r->iov[r->n - 1];
	return l->gpa + l->len + SLACK;
}

static const uint8_t *canary_at(uint64_t gpa) { return canary_pat + gpa % CANARY_PERIOD; }

static void expect_bytes(const uint8_t *got, const uint8_t *want, uint64_t len, uint64_t gpa, const char *what)
{
	if (!len || !memcmp(got, want, len))
		return;
	uint64_t i = 0;
	while (got[i] == want[i])
		i++;
	fail_msg("%s: guest byte at gpa %#lx is %#x, want %#x", what, (unsigned long)(gpa + i), got[i], want[i]);
}

/* Reads r into v through d, with the window around the pieces filled with canaries first
 * (as guest stores). Then every byte of the window outside the pieces must still be the
 * canary and, if the read succeeded, the pieces must hold the disk as v sees it ('view',
 * from byte 0 of the disk). Returns vdisk_read's result. */
static int read_check(struct vm *v, struct vdisk *d, const struct req *r, const uint8_t *view)
{
	uint64_t lo = win_lo(r), hi = win_hi(r), len = hi - lo;
	assert_true(len <= WIN_MAX && lo >= RAM_BASE && hi <= RAM_BASE + RAM_SIZE);
	gwrite(v, lo, canary_at(lo), len);
	int rc = vdisk_read(d, &v->g, r->sector, r->iov, r->n);
	gread(v, lo, got_buf, len);
	uint64_t at = lo, pos = r->sector * VDISK_SECTOR;
	for (unsigned i = 0; i < r->n; i++) {
		const struct vdisk_iov *p = &r->iov[i];
		if (!p->len)
			continue;
		assert_true(p->gpa >= at);
		expect_bytes(got_buf + (at - lo), canary_at(at), p->gpa - at, at, "outside the pieces");
		if (rc == 0)
			expect_bytes(got_buf + (p->gpa - lo), view + pos, p->len, p->gpa, "read");
		pos += p->len;
		at = p->gpa + p->len;
	}
	expect_bytes(got_buf + (at - lo), canary_at(at), hi - at, at, "after the pieces");
	return rc;
}

/* Writes data (req_bytes(r) bytes) into the pieces as the guest would, then asks d to write
 * them to the disk. */
static int write_req(struct vm *v, struct vdisk *d, const struct req *r, const uint8_t *data)
{
	uint64_t off = 0;
	for (unsigned i = 0; i < r->n; i++) {
		gwrite(v, r->iov[i].gpa, data + off, r->iov[i].len);
		off += r->iov[i].len;
	}
	return vdisk_write(d, &v->g, r->sector, r->iov, r->n);
}

static struct req one(uint64_t sector, uint64_t gpa, uint32_t len)
{
	struct req r;
	layout(&r, sector, gpa, &len, NULL, 1);
	return r;
}

static void fill_random(uint8_t *p, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd();
}

/* ================= tests ================= */

/* The Disco path: a block-aligned read of whole, aligned guest pages maps the cache's pages
 * copy-on-write; a second VM gets the very same machine pages without touching the image. */
static void test_zero_copy_read_shares_cache_pages(void **state)
{
	(void)state;
	struct vm *a = vm_new(), *b = vm_new();
	struct vdisk *da = disk_new(VDISK_RO), *db = disk_new(VDISK_COW);
	assert_int_equal(vdisk_sectors(da), NSECT);             /* the partial tail block is dropped */
	uint64_t gpa = RAM_BASE + 0x10000;

	/* the guest had used the first page before (Linux reuses page-cache pages) */
	uint8_t junk[16] = "old page bytes!";
	gwrite(a, gpa, junk, sizeof(junk));
	assert_true(s2_lookup(&a->s2, gpa) != 0);
	uint64_t guest_pages = mm_count(MM_GUEST);
	unsigned long cleans = arch_stub.dcache_cleans;

	struct req r = one(8, gpa, 4 * VDISK_BLOCK);             /* blocks 1..4 */
	assert_int_equal(read_check(a, da, &r, base_at(0)), 0);
	/* one image read of the 4 missing blocks, at the disk's offset in the image */
	assert_int_equal(st.readv_calls, 1);
	assert_int_equal(st.log[0].n, 4);
	assert_int_equal(st.log[0].off, DISK_OFF + VDISK_BLOCK);
	assert_int_equal(da->image_read_bytes, 4 * VDISK_BLOCK);
	assert_int_equal(base.misses, 4);
	/* blocks 2..4 came in with block 1's miss and were then found in the cache: hits count
	 * lookups that found their block, misses count blocks read from the image */
	assert_int_equal(da->cache_hits, 3);
	assert_int_equal(base.hits, 3);
	assert_int_equal(base.image_reads, 1);
	assert_int_equal(base.image_read_bytes, 4 * VDISK_BLOCK);
	assert_int_equal(base.cache_pages, 4);
	assert_int_equal(da->zero_copy_pages, 4);
	assert_int_equal(da->copied_bytes, 0);
	assert_int_equal(da->reads, 1);
	assert_int_equal(da->read_bytes, 4 * VDISK_BLOCK);
	/* cache pages are cleaned to the point of coherency (guests may run uncached) */
	assert_true(arch_stub.dcache_cleans - cleans >= 4);

	uint64_t page[4];
	for (int i = 0; i < 4; i++) {
		uint64_t e = pmap_lookup(a->pm, gpa + i * PAGE_SIZE);
		assert_int_equal(e & (PMAP_PRESENT | PMAP_COW | PMAP_WRITE | PMAP_OWNED), PMAP_PRESENT | PMAP_COW);
		page[i] = PMAP_ADDR(e);
		assert_int_equal(mm(page[i])->use, MM_DCACHE);
		assert_int_equal(mm(page[i])->sharers, 2);          /* the cache and VM a */
		assert_memory_equal((void *)(uintptr_t)page[i], base_at((1 + i) * VDISK_BLOCK), VDISK_BLOCK);
	}
	/* the page the guest had is gone from stage 2 (break-before-make) and freed; the pages
	 * read_check touched around the request are the only guest pages left */
	assert_int_equal(s2_lookup(&a->s2, gpa), 0);
	assert_int_equal(a->pm->owned, mm_count(MM_GUEST));
	assert_true(mm_count(MM_GUEST) <= guest_pages + 1);
	assert_int_equal(a->pm->cow, 4);

	/* another VM, another disk mode, other guest pages, two pieces: the same machine pages */
	uint32_t lens[2] = { 2 * VDISK_BLOCK, 2 * VDISK_BLOCK }, gaps[2] = { 0, 0x20000 };
	struct req rb;
	layout(&rb, 8, RAM_BASE + 0x40000, lens, gaps, 2);
	assert_int_equal(read_check(b, db, &rb, base_at(0)), 0);
	assert_int_equal(st.readv_calls, 1);
	assert_int_equal(db->cache_hits, 4);
	assert_int_equal(db->image_read_bytes, 0);
	assert_int_equal(db->zero_copy_pages, 4);
	assert_int_equal(base.hits, 3 + 4);
	assert_int_equal(base.misses, 4);
	for (int i = 0; i < 4; i++) {
		uint64_t g = rb.iov[i / 2].gpa + (i % 2) * PAGE_SIZE;
		assert_int_equal(ma_of(b, g), page[i]);
		assert_int_equal(mm(page[i])->sharers, 3);
	}
	assert_int_equal(pmap_count_shared(b->pm), 4);

	/* reading the same blocks again where they already are takes no new reference */
	assert_int_equal(vdisk_read(da, &a->g, 8, r.iov, 1), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(mm(page[i])->sharers, 3);
	assert_int_equal(da->cache_hits, 3 + 4);
	assert_int_equal(st.readv_calls, 1);
	check_invariants(base_at(0), 1);
}

/* Misses are read in batches: a run of uncached blocks of the request in one readv, cut at
 * a cached block, at VDISK_BATCH blocks and at the end of the disk. */
static void test_batched_misses(void **state)
{
	(void)state;
	struct vm *a = vm_new();
	struct vdisk *d = disk_new(VDISK_COW);
	uint64_t g = RAM_BASE + 0x1000;

	struct req r = one(10 * 8, g, VDISK_BLOCK);               /* block 10 alone */
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(st.readv_calls, 1);
	assert_int_equal(st.log[0].n, 1);

	r = one(8 * 8, g + 0x10000, 8 * VDISK_BLOCK);             /* blocks 8..15 */
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(st.readv_calls, 3);
	assert_int_equal(st.log[1].off, DISK_OFF + 8 * VDISK_BLOCK);
	assert_int_equal(st.log[1].n, 2);                         /* 8, 9: then 10 is cached */
	assert_int_equal(st.log[2].off, DISK_OFF + 11 * VDISK_BLOCK);
	assert_int_equal(st.log[2].n, 5);                         /* 11..15 */
	assert_int_equal(d->cache_hits, 6);                      /* 9, 10 and 12..15 */
	assert_int_equal(base.misses, 8);

	/* a cached block right after the missing one ends the batch at one block; a copied
	 * (unaligned) read batches too */
	r = one(17 * 8, g + 0x20000, VDISK_BLOCK);
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(st.readv_calls, 4);
	r = one(16 * 8, g + 0x30000 + 8, 4 * VDISK_BLOCK);
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(st.readv_calls, 6);
	assert_int_equal(st.log[4].off, DISK_OFF + 16 * VDISK_BLOCK);
	assert_int_equal(st.log[4].n, 1);
	assert_int_equal(st.log[5].off, DISK_OFF + 18 * VDISK_BLOCK);
	assert_int_equal(st.log[5].n, 2);
	assert_int_equal(d->zero_copy_pages, 10);
	assert_int_equal(d->copied_bytes, 4 * VDISK_BLOCK);

	/* 40 blocks: 32, then 8; reaching the last block of the disk */
	r = one(24 * 8, g + 0x40000, 40 * VDISK_BLOCK);
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(st.readv_calls, 8);
	assert_int_equal(st.log[6].off, DISK_OFF + 24 * VDISK_BLOCK);
	assert_int_equal(st.log[6].n, VDISK_BATCH);
	assert_int_equal(st.log[7].off, DISK_OFF + (24 + VDISK_BATCH) * VDISK_BLOCK);
	assert_int_equal(st.log[7].n, 8);
	assert_int_equal(base.cache_pages, 8 + 4 + 40);               /* 8..15, 16..19, 24..63 */
	assert_int_equal(base.image_read_bytes, (uint64_t)st.readv_blocks * VDISK_BLOCK);
	assert_int_equal(base.misses, st.readv_blocks);

	/* past the end: refused before anything is read */
	long errors = (long)d->errors;
	r = one(NSECT - 1, g + 0x80000, 2 * VDISK_SECTOR);
	assert_int_equal(vdisk_read(d, &a->g, r.sector, r.iov, 1), -1);
	assert_int_equal(d->errors, errors + 1);
	r = one(NSECT, g + 0x80000, VDISK_SECTOR);
	assert_int_equal(vdisk_read(d, &a->g, r.sector, r.iov, 1), -1);
	assert_int_equal(st.readv_calls, 8);
	/* the last sector itself is fine */
	r = one(NSECT - 1, g + 0x80000, VDISK_SECTOR);
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	check_invariants(base_at(0), 1);
}

/* Unaligned positions, odd piece lengths, pieces that split sectors and cross guest pages:
 * the right bytes land in the pieces and nothing around them changes. */
static void test_unaligned_reads(void **state)
{
	(void)state;
	struct vm *a = vm_new();
	struct vdisk *d = disk_new(VDISK_RO);
	static const struct {
		uint64_t sector, gpa;
		unsigned n;
		uint32_t lens[6], gaps[6];
		unsigned zero_copy;           /* pages that can be mapped */
	} cases[] = {
		{ 3, 0x1000 + 100, 1, { 512 }, { 0 }, 0 },
		{ 3, 0x3000 + 1, 4, { 1, 511, 700, 1348 }, { 0, 3, 0, 4095 }, 0 },
		{ 7, 0x6000, 1, { 9 * 512 }, { 0 }, 0 },                 /* block 1 at gpa + 512 */
		{ 8, 0x9800, 3, { 0x800, 0x1000, 0x1800 }, { 0, 0x800, 0 }, 1 },  /* the last block lines up */
		{ 16, 0xd000, 2, { 4096, 4096 }, { 0, 16 }, 1 },        /* aligned, then 16 bytes off */
		{ 24, 0x11000, 3, { 4096, 2048, 2048 }, { 0, 0, 4096 }, 1 },  /* the 2nd block split: copied */
		{ 5, 0x15000 + 4000, 3, { 300, 2000, 260 }, { 0, 7, 1 }, 0 },
		{ 62 * 8 + 7, 0x18000 + 77, 2, { 333, 4096 + 179 }, { 0, 0 }, 0 },  /* to the last sector */
		{ 40, 0x1c000, 4, { 4096, 0, 4096, 4096 }, { 0, 0, 0, 0 }, 3 },     /* an empty piece */
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct req r;
		layout(&r, cases[c].sector, RAM_BASE + cases[c].gpa, cases[c].lens, cases[c].gaps, cases[c].n);
		assert_int_equal(req_bytes(&r) % VDISK_SECTOR, 0);
		uint64_t zc = d->zero_copy_pages, copied = d->copied_bytes;
		assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
		if (d->zero_copy_pages - zc != cases[c].zero_copy)
			fail_msg("case %zu: %lu pages mapped", c, (unsigned long)(d->zero_copy_pages - zc));
		assert_int_equal(d->copied_bytes - copied, req_bytes(&r) - cases[c].zero_copy * VDISK_BLOCK);
	}
	assert_int_equal(d->errors, 0);
	check_invariants(base_at(0), 1);
}

/* Copy-on-write: a VM's writes go to its overlay (partial blocks, across blocks, split
 * pieces); that VM reads them back, another VM and the image do not see them, and a reset
 * frees every overlay page. */
static void test_cow_overlay(void **state)
{
	(void)state;
	struct vm *a = vm_new(), *b = vm_new();
	struct vdisk *da = disk_new(VDISK_COW), *db = disk_new(VDISK_COW);
	uint8_t *model = malloc(DISK_USED);
	memcpy(model, base_at(0), DISK_USED);

	/* fill the cache and a's bounce page first: what the writes take is then overlay only */
	struct req r = one(0, RAM_BASE + 0x40000, 4 * VDISK_BLOCK);
	assert_int_equal(read_check(a, da, &r, model), 0);
	assert_int_equal(read_check(b, db, &r, model), 0);
	uint64_t monitor_before = mm_count(MM_MONITOR);

	uint8_t data[3 * VDISK_BLOCK];
	/* sectors 5..6 of block 0 from two pieces that split a sector */
	uint32_t lens1[2] = { 300, 724 }, gaps1[2] = { 0, 9 };
	struct req w;
	layout(&w, 5, RAM_BASE + 0x7, lens1, gaps1, 2);
	fill_random(data, 1024);
	assert_int_equal(write_req(a, da, &w, data), 0);
	memcpy(model + 5 * 512, data, 1024);
	assert_int_equal(da->overlay_pages, 1);
	/* sectors 14..17: the end of block 1 and the start of block 2 */
	w = one(14, RAM_BASE + 0x3000 + 17, 2048);
	fill_random(data, 2048);
	assert_int_equal(write_req(a, da, &w, data), 0);
	memcpy(model + 14 * 512, data, 2048);
	assert_int_equal(da->overlay_pages, 3);
	assert_int_equal(da->writes, 2);
	assert_int_equal(da->write_bytes, 3072);
	assert_int_equal(st.write_calls, 0);

	/* a sees its writes: blocks 0..2 are copied (overlay), block 3 still mapped */
	uint64_t zc = da->zero_copy_pages;
	r = one(0, RAM_BASE + 0x80000, 4 * VDISK_BLOCK);
	assert_int_equal(read_check(a, da, &r, model), 0);
	assert_int_equal(da->zero_copy_pages - zc, 1);
	/* sector-sized pieces too */
	r = one(4, RAM_BASE + 0x90000 + 3, 14 * 512);
	assert_int_equal(read_check(a, da, &r, model), 0);
	/* b and the cache see the base */
	r = one(0, RAM_BASE + 0x80000, 4 * VDISK_BLOCK);
	assert_int_equal(read_check(b, db, &r, base_at(0)), 0);
	check_invariants(base_at(0), 1);

	/* a whole block, then a partial rewrite of it */
	fill_random(data, VDISK_BLOCK);
	w = one(8 * 8, RAM_BASE + 0xa0000, VDISK_BLOCK);
	assert_int_equal(write_req(a, da, &w, data), 0);
	memcpy(model + 64 * 512, data, VDISK_BLOCK);
	fill_random(data, 512);
	w = one(8 * 8 + 3, RAM_BASE + 0xa0000, 512);
	assert_int_equal(write_req(a, da, &w, data), 0);
	memcpy(model + 67 * 512, data, 512);
	assert_int_equal(da->overlay_pages, 4);
	r = one(8 * 8, RAM_BASE + 0xb0000, VDISK_BLOCK);
	assert_int_equal(read_check(a, da, &r, model), 0);
	assert_true(pmap_lookup(a->pm, RAM_BASE + 0xb0000) & PMAP_OWNED);   /* copied, not mapped */
	assert_int_equal(read_check(b, db, &r, base_at(0)), 0);
	assert_true(pmap_lookup(b->pm, RAM_BASE + 0xb0000) & PMAP_COW);
	check_invariants(base_at(0), 1);

	/* reset: every overlay page and node back (and the bounce page), a reads the base again */
	uint64_t nodes = btree_nodes(&da->overlay);
	assert_true(nodes >= 1);
	uint64_t free_pre_reset = palloc_free_pages(&g_palloc, 0);
	vdisk_reset(da);
	assert_int_equal(da->overlay_pages, 0);
	assert_int_equal(btree_nodes(&da->overlay), 0);
	assert_int_equal(palloc_free_pages(&g_palloc, 0), free_pre_reset + 4 + nodes + 1);
	assert_int_equal(mm_count(MM_MONITOR), monitor_before - 1);
	r = one(0, RAM_BASE + 0xc0000, 9 * VDISK_BLOCK);
	assert_int_equal(read_check(a, da, &r, base_at(0)), 0);
	check_invariants(base_at(0), 1);
	free(model);
}

/* Writing the same sectors again and again reuses the block's overlay page. */
static void test_cow_overwrite_bounded(void **state)
{
	(void)state;
	struct vm *a = vm_new();
	struct vdisk *d = disk_new(VDISK_COW);
	uint8_t *model = malloc(DISK_USED);
	memcpy(model, base_at(0), DISK_USED);
	uint8_t data[2 * VDISK_BLOCK];
	uint64_t monitor_after_first = 0;
	for (int i = 0; i < 3000; i++) {
		/* any sectors of blocks 4..5 */
		uint64_t s = 32 + rn(16), n = 1 + rn(48 - s);
		fill_random(data, n * 512);
		struct req w = one(s, RAM_BASE + 0x1000 + rn(4) * 0x555, (uint32_t)(n * 512));
		assert_int_equal(write_req(a, d, &w, data), 0);
		memcpy(model + s * 512, data, n * 512);
		assert_true(d->overlay_pages <= 2);
		if (i == 100)
			monitor_after_first = mm_count(MM_MONITOR);
		if (i > 100)
			assert_int_equal(mm_count(MM_MONITOR), monitor_after_first);
	}
	assert_int_equal(d->overlay_pages, 2);
	struct req r = one(24, RAM_BASE + 0x10000, 4 * VDISK_BLOCK);
	assert_int_equal(read_check(a, d, &r, model), 0);
	check_invariants(base_at(0), 1);
	free(model);
}

/* A read-only disk refuses writes (counted), flushes trivially, reads as usual. */
static void test_read_only(void **state)
{
	(void)state;
	struct vm *a = vm_new();
	struct vdisk *d = disk_new(VDISK_RO);
	uint8_t data[1024];
	fill_random(data, sizeof(data));
	struct req w = one(3, RAM_BASE, sizeof(data));
	assert_int_equal(write_req(a, d, &w, data), -1);
	assert_int_equal(d->errors, 1);
	assert_int_equal(d->writes, 0);
	assert_int_equal(d->overlay_pages, 0);
	assert_int_equal(st.write_calls, 0);
	assert_int_equal(vdisk_flush(d), 0);
	assert_int_equal(st.flush_calls, 0);
	assert_int_equal(d->flushes, 1);
	struct req r = one(0, RAM_BASE + 0x10000, VDISK_BLOCK);
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(d->errors, 1);
	check_invariants(base_at(0), 1);
}

/* Persistent: writes reach the image at the disk's offset, flushes reach the store, written
 * blocks leave the cache so the next read sees the new bytes, and a guest that had mapped the
 * old block keeps what it read. */
static void test_persistent_write_through(void **state)
{
	(void)state;
	st.may_change = 1;
	struct vm *p = vm_new(), *o = vm_new();
	struct vdisk *dp = disk_new(VDISK_PERSISTENT), *dro = disk_new(VDISK_RO), *dc = disk_new(VDISK_COW);
	uint8_t *model = malloc(DISK_USED);
	memcpy(model, base_at(0), DISK_USED);

	/* o maps blocks 1..2 zero-copy */
	uint64_t og = RAM_BASE + 0x20000;
	struct req r = one(8, og, 2 * VDISK_BLOCK);
	assert_int_equal(read_check(o, dro, &r, model), 0);
	uint64_t old1 = ma_of(o, og), old2 = ma_of(o, og + PAGE_SIZE);
	assert_int_equal(mm(old1)->sharers, 2);
	assert_int_equal(base.cache_pages, 2);

	/* p writes sectors 9..10 (in block 1), split in pieces */
	uint8_t data[3 * VDISK_BLOCK];
	fill_random(data, 1024);
	uint32_t lens[3] = { 100, 412, 512 }, gaps[3] = { 0, 0, 33 };
	struct req w;
	layout(&w, 9, RAM_BASE + 0x1000 - 100, lens, gaps, 3);
	assert_int_equal(write_req(p, dp, &w, data), 0);
	memcpy(model + 9 * 512, data, 1024);
	assert_int_equal(st.write_calls, 1);
	assert_int_equal(st.last_write_off, DISK_OFF + 9 * 512);
	assert_int_equal(st.last_write_len, 1024);
	assert_memory_equal(st.img + DISK_OFF, model, DISK_USED);
	assert_int_equal(base.image_writes, 1);
	assert_int_equal(base.image_write_bytes, 1024);
	assert_int_equal(dp->writes, 1);
	/* block 1 left the cache; o keeps its snapshot in the old page, now the only sharer */
	assert_int_equal(base.cache_pages, 1);
	assert_int_equal(ma_of(o, og), old1);
	assert_int_equal(mm(old1)->sharers, 1);
	assert_int_equal(mm(old1)->use, MM_DCACHE);
	assert_memory_equal((void *)(uintptr_t)old1, base_at(VDISK_BLOCK), VDISK_BLOCK);
	assert_int_equal(mm(old2)->sharers, 2);
	check_invariants(model, 0);

	/* o reads block 1 again elsewhere: from the image (a miss), the new bytes */
	long readvs = st.readv_calls;
	r = one(8, RAM_BASE + 0x30000, VDISK_BLOCK);
	assert_int_equal(read_check(o, dro, &r, model), 0);
	assert_int_equal(st.readv_calls, readvs + 1);
	assert_int_not_equal(ma_of(o, RAM_BASE + 0x30000), old1);
	/* a COW disk of the same base sees the new base under its own writes */
	fill_random(data, 512);
	struct req wc = one(8, RAM_BASE + 0x50000, 512);
	assert_int_equal(write_req(o, dc, &wc, data), 0);
	uint8_t *cmodel = malloc(DISK_USED);
	memcpy(cmodel, model, DISK_USED);
	memcpy(cmodel + 8 * 512, data, 512);
	r = one(8, RAM_BASE + 0x60000, 2 * VDISK_BLOCK);
	assert_int_equal(read_check(o, dc, &r, cmodel), 0);

	/* o lets go of the old page: it is freed, not returned to the cache */
	uint8_t z[1] = { 1 };
	gwrite(o, og, z, 1);
	assert_int_equal(mm(old1)->use, MM_FREE);
	check_invariants(model, 1);

	/* a write over three blocks: three image writes (one per block), all three dropped */
	r = one(16, RAM_BASE + 0x70000, 3 * VDISK_BLOCK);
	assert_int_equal(read_check(p, dp, &r, model), 0);
	assert_int_equal(base.cache_pages, 4);               /* blocks 1 (o's new read) and 2..4 */
	long writes = st.write_calls;
	fill_random(data, 3 * VDISK_BLOCK - 1024);
	w = one(17, RAM_BASE + 0x80000 + 5, 3 * VDISK_BLOCK - 1024);
	assert_int_equal(write_req(p, dp, &w, data), 0);
	memcpy(model + 17 * 512, data, 3 * VDISK_BLOCK - 1024);
	assert_int_equal(st.write_calls, writes + 3);
	assert_memory_equal(st.img + DISK_OFF, model, DISK_USED);
	assert_int_equal(base.cache_pages, 1);
	/* p's own zero-copy pages still hold what p read */
	assert_memory_equal((void *)(uintptr_t)ma_of(p, RAM_BASE + 0x70000), base_at(2 * VDISK_BLOCK), VDISK_BLOCK);
	r = one(16, RAM_BASE + 0x90000, 3 * VDISK_BLOCK);
	assert_int_equal(read_check(p, dp, &r, model), 0);
	check_invariants(model, 0);

	/* flush reaches the store; a COW flush does not */
	assert_int_equal(vdisk_flush(dp), 0);
	assert_int_equal(st.flush_calls, 1);
	assert_int_equal(vdisk_flush(dc), 0);
	assert_int_equal(st.flush_calls, 1);
	st.fail_flush = 1;
	assert_int_equal(vdisk_flush(dp), -1);
	assert_int_equal(dp->errors, 1);
	assert_int_equal(dp->flushes, 2);
	assert_int_equal(dc->flushes, 1);
	/* a failing image write: an error, and the image unchanged */
	st.fail_write = 1;
	w = one(40, RAM_BASE + 0xa0000, 512);
	assert_int_equal(write_req(p, dp, &w, data), -1);
	assert_int_equal(dp->errors, 2);
	assert_memory_equal(st.img + DISK_OFF, model, DISK_USED);
	free(model);
	free(cmodel);
}

/* A guest store to a page it read zero-copy copies the page: the cache page, and the other
 * VM mapping it, keep the disk's bytes. */
static void test_guest_write_breaks_cow(void **state)
{
	(void)state;
	struct vm *a = vm_new(), *b = vm_new();
	struct vdisk *da = disk_new(VDISK_COW), *db = disk_new(VDISK_RO);
	uint64_t g = RAM_BASE + 0x5000;
	struct req r = one(5 * 8, g, VDISK_BLOCK);
	assert_int_equal(read_check(a, da, &r, base_at(0)), 0);
	assert_int_equal(read_check(b, db, &r, base_at(0)), 0);
	uint64_t cp = ma_of(a, g);
	assert_int_equal(ma_of(b, g), cp);
	assert_int_equal(mm(cp)->sharers, 3);

	uint8_t x[64];
	memset(x, 0x5c, sizeof(x));
	gwrite(a, g + 1000, x, sizeof(x));
	uint64_t mine = ma_of(a, g);
	assert_int_not_equal(mine, cp);
	assert_true(pmap_lookup(a->pm, g) & PMAP_OWNED);
	assert_int_equal(mm(cp)->sharers, 2);
	assert_memory_equal((void *)(uintptr_t)cp, base_at(5 * VDISK_BLOCK), VDISK_BLOCK);
	assert_memory_equal((uint8_t *)(uintptr_t)mine + 1000, x, sizeof(x));
	assert_memory_equal((void *)(uintptr_t)mine, base_at(5 * VDISK_BLOCK), 1000);
	/* b still reads the disk's bytes, from memory and from the disk */
	uint8_t buf[VDISK_BLOCK];
	gread(b, g, buf, sizeof(buf));
	assert_memory_equal(buf, base_at(5 * VDISK_BLOCK), VDISK_BLOCK);
	r = one(5 * 8, RAM_BASE + 0x9000, VDISK_BLOCK);
	assert_int_equal(read_check(b, db, &r, base_at(0)), 0);
	assert_int_equal(ma_of(b, RAM_BASE + 0x9000), cp);
	/* a reads the block again into the same page: the cache page again, its copy freed */
	uint64_t owned = a->pm->owned;
	assert_int_equal(vdisk_read(da, &a->g, 5 * 8, &(struct vdisk_iov){ g, VDISK_BLOCK }, 1), 0);
	assert_int_equal(ma_of(a, g), cp);
	assert_int_equal(a->pm->owned, owned - 1);
	assert_int_equal(mm(mine)->use, MM_FREE);
	check_invariants(base_at(0), 1);
}

/* Reclaim frees only the cache pages no guest maps, as many as asked. */
static void test_reclaim(void **state)
{
	(void)state;
	struct vm *a = vm_new();
	struct vdisk *d = disk_new(VDISK_RO);
	uint64_t g = RAM_BASE + 0x10000;
	struct req r = one(0, g, 4 * VDISK_BLOCK);                 /* blocks 0..3 mapped */
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	r = one(10 * 8, RAM_BASE + 0x30000 + 1, 4 * VDISK_BLOCK);  /* blocks 10..13 copied only */
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(base.cache_pages, 8);

	assert_int_equal(vdisk_base_reclaim(&base, 0), 0);
	assert_int_equal(vdisk_base_reclaim(&base, 3), 3);
	assert_int_equal(base.cache_pages, 5);
	assert_int_equal(base.reclaimed, 3);
	assert_int_equal(vdisk_base_reclaim(&base, 100), 1);
	assert_int_equal(base.cache_pages, 4);
	assert_int_equal(mm_count(MM_DCACHE), 4);
	assert_int_equal(vdisk_base_reclaim(&base, 100), 0);        /* the rest is mapped */
	for (int i = 0; i < 4; i++)
		assert_int_equal(mm(ma_of(a, g + i * PAGE_SIZE))->use, MM_DCACHE);

	/* the guest writes block 1's page: only the cache holds that page now */
	uint8_t x = 7;
	gwrite(a, g + PAGE_SIZE + 5, &x, 1);
	assert_int_equal(vdisk_base_reclaim(&base, 100), 1);
	assert_int_equal(base.cache_pages, 3);
	struct btree_extent e;
	assert_false(btree_lookup(&base.cache, 8, &e));

	/* reads after reclaim: misses again, right bytes */
	long readvs = st.readv_calls;
	r = one(8, RAM_BASE + 0x50000, 13 * VDISK_BLOCK);          /* blocks 1..13 */
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(st.readv_calls, readvs + 2);               /* 1, then 4..13 */
	assert_int_equal(base.cache_pages, 14);
	check_invariants(base_at(0), 1);

	/* once the guest is gone everything can go */
	vm_destroy(a);
	assert_int_equal(vdisk_base_reclaim(&base, UINT64_MAX), 14);
	assert_int_equal(base.cache_pages, 0);
	assert_int_equal(mm_count(MM_DCACHE), 0);
	assert_int_equal(btree_nodes(&base.cache), 0);
}

/* A failing image read: -1, nothing mapped, no page kept; the next read works. */
static void test_store_failure(void **state)
{
	(void)state;
	struct vm *a = vm_new();
	struct vdisk *d = disk_new(VDISK_COW);
	uint64_t g = RAM_BASE + 0x10000;
	struct req r = one(0, g, VDISK_BLOCK);
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);          /* block 0 cached */
	uint64_t guest_before = mm_count(MM_GUEST);

	st.fail_readv = 1;
	r = one(0, g + 0x10000, 4 * VDISK_BLOCK);
	assert_int_equal(vdisk_read(d, &a->g, 0, r.iov, 1), -1);
	assert_int_equal(d->errors, 1);
	/* block 0 was mapped before the failure; nothing after it */
	assert_true(pmap_lookup(a->pm, g + 0x10000) & PMAP_COW);
	for (int i = 1; i < 4; i++)
		assert_int_equal(pmap_lookup(a->pm, g + 0x10000 + i * PAGE_SIZE), 0);
	assert_int_equal(base.cache_pages, 1);
	assert_int_equal(mm_count(MM_GUEST), guest_before);
	/* a copied read fails the same way */
	r = one(3, g + 0x20000 + 3, 1024);
	assert_int_equal(vdisk_read(d, &a->g, r.sector, r.iov, 1), 0);  /* block 0: cached */
	r = one(9, g + 0x20000 + 3, 1024);
	assert_int_equal(vdisk_read(d, &a->g, r.sector, r.iov, 1), -1);
	assert_int_equal(d->errors, 2);
	check_invariants(base_at(0), 1);

	st.fail_readv = 0;
	r = one(0, g + 0x30000, 4 * VDISK_BLOCK);
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);
	assert_int_equal(base.cache_pages, 4);

	/* guest memory outside RAM: -1, the held cache page let go */
	r = one(0, RAM_BASE + RAM_SIZE, VDISK_BLOCK);
	assert_int_equal(vdisk_read(d, &a->g, 0, r.iov, 1), -1);
	r = one(0, RAM_BASE + RAM_SIZE - 512, 1024);
	assert_int_equal(vdisk_read(d, &a->g, 0, r.iov, 1), -1);
	r = one(0, RAM_BASE - VDISK_BLOCK, VDISK_BLOCK);
	assert_int_equal(vdisk_write(d, &a->g, 0, r.iov, 1), -1);
	assert_int_equal(d->overlay_pages, 0);
	uint8_t b8[8];
	assert_int_equal(vdisk_guest_copy(&a->g, RAM_BASE + RAM_SIZE - 4, b8, 8, 0), -1);
	check_invariants(base_at(0), 1);
}

/* Out of memory anywhere (monitor pages for the cache, the overlay, B-tree nodes or the
 * bounce page; guest pages; table pages), at every point of a few requests: -1 or success
 * with the right bytes, nothing written outside the pieces, no page leaked (the invariants
 * after each request and the teardown check that). */
static void test_out_of_memory(void **state)
{
	(void)state;
	struct vm *a = vm_new();
	struct vdisk *d = disk_new(VDISK_COW);
	uint8_t *model = malloc(DISK_USED), *got = malloc(VDISK_BLOCK * 4);
	struct src *srcs[3] = { &disk_s, &guest_s, &table_s };
	int fails = 0, oks = 0;
	for (int which = 0; which < 3; which++) {
		struct src *s = srcs[which];
		for (long k = 0; k < 24; k++) {
			/* from scratch: a new guest, no overlay, nothing cached */
			vm_destroy(a);
			vm_init_at(0);
			vdisk_reset(d);
			vdisk_base_reclaim(&base, UINT64_MAX);
			assert_int_equal(base.cache_pages, 0);
			memcpy(model, base_at(0), DISK_USED);
			uint64_t sec = 8 + rn(NSECT - 80);
			struct req reqs[4] = {
				one(sec & ~7ull, RAM_BASE + 0x10000, 6 * VDISK_BLOCK),     /* zero copy */
				one(sec, RAM_BASE + 0x30000 + 9, 5 * 512),                  /* copied */
				one(sec + 3, RAM_BASE + 0x40000 + 1, 9 * 512),              /* a COW write */
				one(sec - 8, RAM_BASE + 0x50000, 24 * 512),                 /* read back */
			};
			/* the zero-copy read lands in a 2 MiB region of its own on some rounds, so
			 * the pmap needs a new leaf there */
			if (k & 1)
				reqs[0].iov[0].gpa = RAM_BASE + RAM_SIZE - 6 * VDISK_BLOCK;
			s->armed = 1;
			s->budget = k;
			for (int q = 0; q < 4; q++) {
				int rc;
				if (q == 2) {
					uint8_t data[9 * 512];
					fill_random(data, sizeof(data));
					rc = write_req(a, d, &reqs[q], data);
					/* the write went through, or did not, block by block: each sector is
					 * either the old bytes or the new ones; learn which with memory */
					int armed = s->armed;
					s->armed = 0;
					struct req back = one(sec + 3, RAM_BASE + 0x60000, 9 * 512);
					assert_int_equal(vdisk_read(d, &a->g, back.sector, back.iov, 1), 0);
					gread(a, back.iov[0].gpa, got, 9 * 512);
					s->armed = armed;
					for (int i = 0; i < 9; i++) {
						const uint8_t *now = got + i * 512;
						if (rc == 0)
							assert_memory_equal(now, data + i * 512, 512);
						else if (memcmp(now, model + (sec + 3 + i) * 512, 512))
							assert_memory_equal(now, data + i * 512, 512);
					}
					memcpy(model + (sec + 3) * 512, got, 9 * 512);
				} else {
					/* into untouched guest memory: the read itself needs guest pages and
					 * tables */
					rc = vdisk_read(d, &a->g, reqs[q].sector, reqs[q].iov, 1);
					if (rc == 0) {
						uint8_t *buf = malloc(reqs[q].iov[0].len);
						gread(a, reqs[q].iov[0].gpa, buf, reqs[q].iov[0].len);
						assert_memory_equal(buf, model + reqs[q].sector * 512, reqs[q].iov[0].len);
						free(buf);
					}
				}
				assert_true(rc == 0 || rc == -1);
				if (rc)
					fails++;
				else
					oks++;
				check_invariants(base_at(0), 1);
			}
			s->armed = 0;
			/* with memory again, everything reads right */
			struct req r = one(sec - 8, RAM_BASE + 0x70000, 32 * 512);
			assert_int_equal(read_check(a, d, &r, model), 0);
			check_invariants(base_at(0), 1);
		}
		assert_true(s->failed > 0);
	}
	assert_true(fails > 0 && oks > 0);
	free(model);
	free(got);
}

/* Memory runs out while the cache grows, and the allocator takes cache pages back (as the
 * monitor's do): every read either works with the right bytes or fails cleanly; no page is
 * ever allocated while a base lock is held (the allocator's reclaim takes that lock). */
static void test_allocation_reclaims_cache(void **state)
{
	(void)state;
	struct vm *a = vm_new();
	struct vdisk *d = disk_new(VDISK_RO);
	struct req r = one(0, RAM_BASE + 0x10000 + 8, 24 * 512);
	assert_int_equal(read_check(a, d, &r, base_at(0)), 0);   /* the guest's pages are there */
	int ok = 0, failed = 0;
	for (uint64_t room = 0; room < 12; room++) {
		vdisk_base_reclaim(&base, UINT64_MAX);           /* an empty cache: its tree needs a node */
		disk_s.armed = 1;
		disk_s.reclaim = reclaim_cache;
		disk_s.used_limit = used_pages() + room;         /* 'room' more pages, for good */
		/* copied reads all over the disk: the cache fills, nothing maps its pages, so
		 * the allocator can take some back once there are any */
		for (int i = 0; i < 40; i++) {
			uint64_t sector = rn(NSECT - 24);
			r = one(sector, RAM_BASE + 0x10000 + 8, (uint32_t)(1 + rn(24)) * 512);
			int rc = read_check(a, d, &r, base_at(0));
			if (rc)
				failed++;
			else
				ok++;
			check_invariants(base_at(0), 1);
			assert_true(used_pages() <= disk_s.used_limit);
		}
		disk_s.armed = 0;
		disk_s.used_limit = 0;
	}
	/* too little room for a block and a tree node: failures; with room, the cache lives
	 * within it, taking its own pages back */
	assert_true(disk_s.reclaimed > 100);
	assert_true(failed > 0 && ok > 300);
}

/* A random request for the differential tests: a third "page-shaped" (whole blocks into whole
 * aligned guest pages, the zero-copy path, now and then nudged off alignment), the rest any
 * sectors split into pieces of any length (sectors split between pieces) at any guest
 * address, with gaps, sometimes an empty piece. */
static void gen_req(struct req *r)
{
	uint64_t gpa = RAM_BASE + 0x1000 + rn(256) * PAGE_SIZE;
	if (rn(3) == 0) {
		unsigned nblk = 1 + (unsigned)rn(6), np = 1 + (unsigned)rn(nblk < 3 ? nblk : 3);
		uint64_t blk = rn(DISK_BLOCKS - nblk + 1);
		uint32_t lens[MAXP], gaps[MAXP];
		unsigned left = nblk;
		for (unsigned i = 0; i < np; i++) {
			unsigned k = i == np - 1 ? left : 1 + (unsigned)rn(left - (np - 1 - i));
			left -= k;
			lens[i] = k * VDISK_BLOCK;
			gaps[i] = i ? (uint32_t)rn(3) * PAGE_SIZE : 0;
		}
		if (rn(4) == 0)
			gaps[rn(np)] += 1 + (uint32_t)rn(600);
		layout(r, blk * VDISK_SECTORS_PER_BLOCK, gpa, lens, gaps, np);
		return;
	}
	unsigned nsec = 1 + (unsigned)rn(rn(4) ? 12 : 40);
	uint64_t sector = rn(NSECT - nsec + 1);
	uint32_t total = nsec * VDISK_SECTOR, lens[MAXP], gaps[MAXP];
	unsigned np = 1 + (unsigned)rn(6);
	uint32_t cuts[MAXP];
	for (unsigned i = 0; i + 1 < np; i++)
		cuts[i] = rn(2) ? 1 + (uint32_t)rn(total - 1) : (uint32_t)(1 + rn(nsec - 1 ? nsec - 1 : 1)) * 512 % total;
	cuts[np - 1] = total;
	for (unsigned i = 1; i < np; i++)             /* sort */
		for (unsigned j = i; j > 0 && cuts[j] < cuts[j - 1]; j--) {
			uint32_t t = cuts[j];
			cuts[j] = cuts[j - 1];
			cuts[j - 1] = t;
		}
	uint32_t prev = 0;
	for (unsigned i = 0; i < np; i++) {
		lens[i] = cuts[i] - prev;                /* may be 0: an empty piece */
		prev = cuts[i];
		gaps[i] = i == 0 ? (uint32_t)rn(PAGE_SIZE) : rn(3) ? 0 : (uint32_t)rn(5000);
	}
	layout(r, sector, gpa, lens, gaps, np);
}

/* Several VMs with COW disks (and one read-only) over one base, 100k random reads and
 * writes, each checked against a byte array per VM; guests also scribble on their memory,
 * the cache is reclaimed and overlays reset now and then. The image never changes and the
 * cache always holds its bytes. */
static void test_random_cow_differential(void **state)
{
	(void)state;
	enum { NV = 4, RO = 3, OPS = 100000 };
	struct vm *v[NV];
	struct vdisk *d[NV];
	uint8_t *model[NV];
	for (int i = 0; i < NV; i++) {
		v[i] = vm_new();
		d[i] = disk_new(i == RO ? VDISK_RO : VDISK_COW);
		model[i] = malloc(DISK_USED);
		memcpy(model[i], base_at(0), DISK_USED);
	}
	static uint8_t data[64 * 1024];
	long reads = 0, writes = 0, resets = 0, reclaimed = 0;
	for (long op = 0; op < OPS; op++) {
		int k = (int)rn(NV);
		uint64_t c = rn(1000);
		struct req r;
		gen_req(&r);
		if (c < 560) {
			assert_int_equal(read_check(v[k], d[k], &r, model[k]), 0);
			reads++;
		} else if (c < 960) {
			uint64_t n = req_bytes(&r);
			fill_random(data, n);
			int rc = write_req(v[k], d[k], &r, data);
			if (k == RO) {
				assert_int_equal(rc, -1);
			} else {
				assert_int_equal(rc, 0);
				memcpy(model[k] + r.sector * VDISK_SECTOR, data, n);
				writes++;
			}
		} else if (c < 990) {
			/* the guest writes its memory (maybe a page it read zero-copy) */
			uint8_t x[8];
			fill_random(x, sizeof(x));
			gwrite(v[k], RAM_BASE + rn(RAM_SIZE - sizeof(x)), x, sizeof(x));
		} else if (c < 998) {
			uint64_t before = base.cache_pages, got = vdisk_base_reclaim(&base, rn(16));
			assert_int_equal(base.cache_pages, before - got);
			reclaimed += got;
		} else if (k != RO) {
			vdisk_reset(d[k]);
			memcpy(model[k], base_at(0), DISK_USED);
			resets++;
		}
		if (op % 5000 == 0) {
			check_invariants(base_at(0), 1);
			assert_memory_equal(st.img, st.orig, IMG_BYTES);
		}
	}
	/* every VM reads its whole disk back */
	for (int i = 0; i < NV; i++)
		for (uint64_t blk = 0; blk < DISK_BLOCKS; blk += 16) {
			struct req r = one(blk * VDISK_SECTORS_PER_BLOCK, RAM_BASE + 0x100000, 16 * VDISK_BLOCK);
			assert_int_equal(read_check(v[i], d[i], &r, model[i]), 0);
		}
	check_invariants(base_at(0), 1);
	/* the run went through every path */
	uint64_t zc = 0, copied = 0;
	for (int i = 0; i < NV; i++) {
		zc += d[i]->zero_copy_pages;
		copied += d[i]->copied_bytes;
		assert_true(d[i]->overlay_pages <= DISK_BLOCKS);
	}
	assert_true(zc > 1000 && copied > 1000000 && resets > 0 && reclaimed > 100 && writes > 10000 && reads > 10000);
	assert_int_equal(d[RO]->errors, d[RO]->errors);
	assert_int_equal(d[0]->errors + d[1]->errors + d[2]->errors, 0);
	for (int i = 0; i < NV; i++)
		free(model[i]);
}

/* One persistent disk, two read-only ones and a COW one over the same base, 20k random
 * operations: the image is the persistent VM's model at all times, every VM reads the
 * current base (the COW one under its overlay), the cache never holds a stale block, and
 * flushes reach the store. */
static void test_random_persistent_differential(void **state)
{
	(void)state;
	st.may_change = 1;
	enum { P = 0, R1 = 1, R2 = 2, C = 3, NV = 4, OPS = 20000 };
	struct vm *v[NV];
	struct vdisk *d[NV];
	for (int i = 0; i < NV; i++) {
		v[i] = vm_new();
		d[i] = disk_new(i == P ? VDISK_PERSISTENT : i == C ? VDISK_COW : VDISK_RO);
	}
	uint8_t *disk = malloc(DISK_USED), *cdata = malloc(DISK_USED), *cview = malloc(DISK_USED);
	uint8_t *cmask = calloc(NSECT, 1);
	memcpy(disk, base_at(0), DISK_USED);
	static uint8_t data[64 * 1024];
	long flushes = 0;
	for (long op = 0; op < OPS; op++) {
		int k = (int)rn(NV);
		uint64_t c = rn(1000);
		struct req r;
		gen_req(&r);
		uint64_t n = req_bytes(&r), s0 = r.sector, ns = n / VDISK_SECTOR;
		if (c < 550) {
			const uint8_t *view = disk;
			if (k == C) {
				for (uint64_t s = s0; s < s0 + ns; s++)
					memcpy(cview + s * 512, (cmask[s] ? cdata : disk) + s * 512, 512);
				view = cview;
			}
			assert_int_equal(read_check(v[k], d[k], &r, view), 0);
		} else if (c < 950) {
			fill_random(data, n);
			int rc = write_req(v[k], d[k], &r, data);
			if (k == P) {
				assert_int_equal(rc, 0);
				memcpy(disk + s0 * 512, data, n);
			} else if (k == C) {
				assert_int_equal(rc, 0);
				memcpy(cdata + s0 * 512, data, n);
				memset(cmask + s0, 1, ns);
			} else {
				assert_int_equal(rc, -1);
			}
		} else if (c < 970) {
			assert_int_equal(vdisk_flush(d[P]), 0);
			flushes++;
		} else if (c < 990) {
			uint8_t x[8];
			fill_random(x, sizeof(x));
			gwrite(v[k], RAM_BASE + rn(RAM_SIZE - sizeof(x)), x, sizeof(x));
		} else {
			vdisk_base_reclaim(&base, rn(16));
		}
		if (op % 1000 == 0) {
			assert_memory_equal(st.img + DISK_OFF, disk, DISK_USED);
			check_invariants(disk, 0);
		}
	}
	assert_memory_equal(st.img + DISK_OFF, disk, DISK_USED);
	/* outside the disk's extent the image never changed */
	assert_memory_equal(st.img, st.orig, DISK_OFF);
	assert_memory_equal(st.img + DISK_OFF + DISK_USED, st.orig + DISK_OFF + DISK_USED, IMG_BYTES - DISK_OFF - DISK_USED);
	assert_int_equal(st.flush_calls, flushes);
	check_invariants(disk, 0);
	free(disk);
	free(cdata);
	free(cview);
	free(cmask);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_zero_copy_read_shares_cache_pages),
		T(test_batched_misses),
		T(test_unaligned_reads),
		T(test_cow_overlay),
		T(test_cow_overwrite_bounded),
		T(test_read_only),
		T(test_persistent_write_through),
		T(test_guest_write_breaks_cow),
		T(test_reclaim),
		T(test_store_failure),
		T(test_out_of_memory),
		T(test_allocation_reclaims_cache),
		T(test_random_cow_differential),
		T(test_random_persistent_differential),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
