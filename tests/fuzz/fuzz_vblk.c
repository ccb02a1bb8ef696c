/* libFuzzer target for the virtio-blk device (vdisk/vblk.c over vdisk/vdisk.c, lib/vmmio.c,
 * lib/virtq.c, pmap/pmap.c): the input is a device and queue configuration followed by a guest
 * RAM image holding the rings, tables, request headers and buffers. The target brings the
 * device up through its MMIO window as Linux would, kicks, and may make more ring entries
 * available and kick again. Guest RAM is a pmap over palloc pages (as in the unit tests), so
 * zero-copy reads really map disk-cache pages into it. It aborts if:
 *
 * - the device broke its queue without DEVICE_NEEDS_RESET, or set it without a broken queue;
 * - the interrupt line does not follow InterruptStatus;
 * - a cached block differs from the image (a write through a cache page, a stale block);
 * - a read-only or copy-on-write disk changed the image, or anything wrote outside the disk;
 * - a page leaked (palloc has every page back after teardown) or a cache page was freed
 *   behind its sharers' backs (pages are freed through the source they came from, in the use
 *   they were given for).
 *
 * ASan and UBSan catch the rest. With -DFUZZ_STANDALONE a main() runs the target over files
 * and directories given on the command line, or over a built-in corpus: FUZZ_VBLK_RUNS
 * (3000) queues of random requests from FUZZ_VBLK_SEED (reads, writes, flushes, GET_ID,
 * unknown types; direct and indirect; short and split headers, partial sectors, sectors past
 * the end or wrapping, missing status bytes, buffers off the end of RAM; one in eight with
 * failing image reads or few monitor pages), then up to four corrupted bytes in the rings,
 * tables and headers. 3000 inputs serve about 40k chains in 0.4 s under ASan and UBSan.
 *
 *   gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -DFUZZ_STANDALONE \
 *       -Iinclude -Ilib -Ipmap -Inuma -Ivdisk -Itests/unit -Itests/fuzz -o build/fuzz/fuzz_vblk \
 *       tests/fuzz/fuzz_vblk.c vdisk/vblk.c vdisk/vdisk.c lib/vmmio.c lib/virtq.c lib/btree.c \
 *       lib/fmt.c pmap/pmap.c pmap/stage2.c numa/palloc.c tests/unit/arch_stub.c
 *   clang -O1 -g -fsanitize=fuzzer,address,undefined (same -I and sources) -o build/fuzz/fuzz_vblk_lf
 *   build/fuzz/fuzz_vblk_lf -max_len=65552 -max_total_time=300 build/fuzz/corpus-vblk
 *
 * Input: 16 header bytes (missing bytes read as 0), then the guest RAM image (MEM bytes,
 * zero-padded), RAM_PAGES pages at RAM_BASE:
 *   b0   bits 0-1 disk mode: 0 or 3 copy-on-write, 1 read-only, 2 persistent;
 *        bits 2-4 log2(queue size) (1..128); bit 5 negotiate INDIRECT_DESC;
 *        bit 6 the driver asks for no interrupts (avail.flags); bit 7 raw ring offsets
 *   b1, b2, b3  desc, avail, used page (% RAM_PAGES)
 *   b4, b5, b6  their offsets in the page: b * 16, b * 2, b * 4 (raw: b)
 *   b7   extra rounds (% 4): each makes b8 % 8 + 1 more ring entries available and kicks
 *   b8   see b7
 *   b9   bit 0: image reads fail from the (b10 + 1)-th on; bit 1: monitor pages (cache, overlay,
 *        B-tree nodes, bounce) run out after b11 allocations (then each allocation first
 *        reclaims cache pages, as the monitor's allocators do)
 *   b10, b11  see b9;  b12-15 unused
 */
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "arch_stub.h"
#include "vblk.h"
#include "pmap.h"
#include "stage2.h"
#include "palloc.h"

#define HDR        16
#define RAM_BASE   0x40000000ull
#define RAM_PAGES  16u
#define MEM        (RAM_PAGES * 4096u)
#define DISK_OFF   0x2200ull                /* the disk's extent in the host image */
#define DISK_BLOCKS 32u
#define DISK_BYTES ((uint64_t)DISK_BLOCKS * VDISK_BLOCK)
#define IMG_BYTES  (DISK_OFF + DISK_BYTES + 4096)
#define POOL_PAGES 1024u

#define DIE(...) do { \
	fprintf(stderr, "fuzz_vblk: "); \
	fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

static long stat_inputs, stat_up, stat_chains, stat_broken, stat_bad, stat_unsupp, stat_reads, stat_writes,
	stat_zero_copy, stat_errors;

/* ---- machine memory: palloc over a pool below 2 GiB (pmap entries keep address bits
 * [39:12]), plus the stage-2 root ---- */

static uint8_t *pool;

static void pool_init(void)
{
	pool = low_pool_map((size_t)(POOL_PAGES + 2) * 4096);
	if (!pool)
		DIE("no memory below 2 GiB for the page pool");
}

struct src { uint16_t use; };
static long disk_budget = -1;              /* monitor page allocations left; -1: no limit */
static struct vdisk_base base;

static uint64_t src_alloc(void *arg)
{
	const struct src *s = arg;
	if (s->use == MM_MONITOR && disk_budget >= 0 && disk_budget-- == 0) {
		/* out of memory: as the monitor's allocators do, take back cache pages nobody maps
		 * (which takes the base lock: never allocate holding it) */
		disk_budget = 0;
		if (spin_is_locked(&base.lock))
			DIE("a page allocated with the base lock held: reclaiming would deadlock");
		if (!vdisk_base_reclaim(&base, 256))
			return 0;
	}
	uint64_t p = palloc_alloc(&g_palloc, 0, NULL);
	if (!p)
		return 0;
	memset((void *)(uintptr_t)p, 0, 4096);
	struct memmap_entry *m = memmap_of(&g_palloc, p);
	m->use = s->use;
	m->sharers = 0;
	return p;
}

static void src_free(void *arg, uint64_t page)
{
	const struct src *s = arg;
	struct memmap_entry *m = memmap_of(&g_palloc, page);
	if (!m || m->use != s->use || m->sharers)
		DIE("page %#lx freed as use %u, is use %u with %u sharers", (unsigned long)page, s->use,
		    m ? m->use : 0, m ? m->sharers : 0);
	palloc_free(&g_palloc, page, NULL);
}

static const struct src guest_use = { MM_GUEST }, table_use = { MM_PTABLE }, disk_use = { MM_MONITOR };
static const struct page_source guest_src = { src_alloc, src_free, (void *)&guest_use, 0 };
static const struct page_source table_src = { src_alloc, src_free, (void *)&table_use, 0 };
static const struct page_source disk_src = { src_alloc, src_free, (void *)&disk_use, 0 };

/* ---- the host image ---- */

static uint8_t img[IMG_BYTES], orig[IMG_BYTES];
static long readv_budget = -1;             /* image reads that succeed; -1: all */

static int st_readv(void *ctx, uint64_t off, uint64_t *pages, unsigned n)
{
	(void)ctx;
	if (!n || n > VDISK_BATCH || off < DISK_OFF || off + (uint64_t)n * VDISK_BLOCK > DISK_OFF + DISK_BYTES)
		DIE("readv of %u blocks at %#lx", n, (unsigned long)off);
	if (readv_budget >= 0 && readv_budget-- == 0) {
		readv_budget = 0;
		memset((void *)(uintptr_t)pages[0], 0xEE, 512);   /* a failed read may leave junk */
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		memcpy((void *)(uintptr_t)pages[i], img + off + (uint64_t)i * VDISK_BLOCK, VDISK_BLOCK);
	return 0;
}

static int st_write(void *ctx, uint64_t off, const void *src, uint64_t len)
{
	(void)ctx;
	if (!len || len % 512 || off % 512 || off < DISK_OFF || off + len > DISK_OFF + DISK_BYTES)
		DIE("write of %lu bytes at %#lx", (unsigned long)len, (unsigned long)off);
	memcpy(img + off, src, len);
	return 0;
}

static int st_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

static const struct vdisk_store store = { st_readv, st_write, st_flush, NULL };

/* ---- the guest ---- */

static struct pmap *pm;
static struct stage2 s2;
static struct vblk dev;
static int irq_level;

static void on_irq(void *ctx, int level)
{
	(void)ctx;
	if (level == irq_level || (level != 0 && level != 1))
		DIE("irq %d while at %d", level, irq_level);
	irq_level = level;
}

static void gwrite(uint64_t gpa, const void *buf, uint64_t len)
{
	const uint8_t *p = buf;
	while (len) {
		uint64_t n = 4096 - (gpa & 4095);
		if (n > len)
			n = len;
		uint64_t ma = pmap_gpa_to_ma(pm, &s2, gpa, 1, &guest_src, &table_src);
		if (!ma)
			DIE("guest store at %#lx", (unsigned long)gpa);
		memcpy((void *)(uintptr_t)ma, p, n);
		gpa += n;
		p += n;
		len -= n;
	}
}

static uint16_t gread16(uint64_t gpa)
{
	uint64_t e = pmap_lookup(pm, gpa);
	uint16_t v = 0;
	if (e & PMAP_PRESENT)
		memcpy(&v, (const uint8_t *)(uintptr_t)PMAP_ADDR(e) + (gpa & 4095), 2);
	return v;
}

static uint32_t rd(uint32_t off)
{
	uint64_t v;
	if (vblk_mmio(&dev, off, 4, 0, &v))
		DIE("read of register %#x refused", off);
	return (uint32_t)v;
}

static void wr(uint32_t off, uint32_t val)
{
	uint64_t v = val;
	if (vblk_mmio(&dev, off, 4, 1, &v))
		DIE("write of register %#x refused", off);
}

static int cache_check(void *arg, const struct btree_extent *e)
{
	(void)arg;
	const struct memmap_entry *m = memmap_of(&g_palloc, e->value);
	if (!m || m->use != MM_DCACHE || !m->sharers)
		DIE("cache page of sector %lu: use %u, %u sharers", (unsigned long)e->start, m ? m->use : 0,
		    m ? m->sharers : 0);
	if (memcmp((const void *)(uintptr_t)e->value, img + DISK_OFF + e->start * VDISK_SECTOR, VDISK_BLOCK))
		DIE("cached block at sector %lu differs from the image", (unsigned long)e->start);
	return 0;
}

/* After a kick: the device's state is consistent. */
static void check(uint64_t broken_before)
{
	uint32_t status = rd(VMMIO_R_STATUS), ints = rd(VMMIO_R_INT_STATUS);
	if (irq_level != (ints != 0))
		DIE("irq line %d, InterruptStatus %#x", irq_level, ints);
	int now = dev.broken_queues != broken_before;
	if (!!dev.broken_queues != !!(status & VMMIO_S_NEEDS_RESET) || (now && !(ints & VMMIO_INT_CONFIG)))
		DIE("broken %lu (%d now), status %#x, InterruptStatus %#x", (unsigned long)dev.broken_queues, now,
		    status, ints);
	if (dev.broken_queues > 1)
		DIE("broken twice without a reset");
	btree_visit(&dev.disk.base->cache, 0, UINT64_MAX, cache_check, NULL);
	if (dev.disk.mode != VDISK_PERSISTENT && memcmp(img, orig, IMG_BYTES))
		DIE("a mode %d disk changed the image", dev.disk.mode);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t h[HDR] = { 0 };
	memcpy(h, data, size < HDR ? size : HDR);
	stat_inputs++;
	if (!pool) {
		pool_init();
		for (uint64_t i = 0; i < IMG_BYTES; i++)
			orig[i] = (uint8_t)(i * 2654435761u >> 13 ^ i >> 9);
	}
	memcpy(img, orig, IMG_BYTES);
	palloc_reset(&g_palloc, 1);
	uint64_t pb = (uint64_t)(uintptr_t)pool;
	if (palloc_add_range(&g_palloc, 0, pb, pb + (uint64_t)POOL_PAGES * 4096))
		DIE("palloc");
	vdisk_pages = &disk_src;
	vdisk_store = &store;
	vdisk_base_init(&base, "fuzz", DISK_OFF, DISK_BYTES);

	pm = calloc(1, sizeof(*pm));
	if (!pm)
		abort();
	pmap_init(pm, RAM_BASE, MEM, 1);
	uint8_t *root = pool + (size_t)POOL_PAGES * 4096;
	memset(root, 0, S2_ROOT_SIZE);
	s2 = (struct stage2){ .root = (uint64_t)(uintptr_t)root, .vmid = 1 };
	/* guest RAM: the image, written as the guest would */
	static uint8_t mem[MEM];
	memset(mem, 0, MEM);
	if (size > HDR)
		memcpy(mem, data + HDR, size - HDR < MEM ? size - HDR : MEM);
	gwrite(RAM_BASE, mem, MEM);

	readv_budget = h[9] & 1 ? h[10] : -1;
	disk_budget = h[9] & 2 ? h[11] : -1;
	static const int modes[4] = { VDISK_COW, VDISK_RO, VDISK_PERSISTENT, VDISK_COW };
	struct vdisk_guest g = { pm, &s2, &guest_src, &table_src };
	irq_level = 0;
	vblk_init(&dev, &base, modes[h[0] & 3], &g, "fuzz-disk", on_irq, NULL, NULL);

	/* Linux's probe */
	uint32_t qsize = 1u << ((h[0] >> 2) & 7);
	int raw = h[0] >> 7;
	uint64_t desc = RAM_BASE + (h[1] % RAM_PAGES) * 4096ull + (raw ? h[4] : h[4] * 16u % 4096);
	uint64_t avail = RAM_BASE + (h[2] % RAM_PAGES) * 4096ull + (raw ? h[5] : h[5] * 2u);
	uint64_t used = RAM_BASE + (h[3] % RAM_PAGES) * 4096ull + (raw ? h[6] : h[6] * 4u);
	uint64_t features = VIRTIO_F_VERSION_1 | VBLK_F_SIZE_MAX | VBLK_F_SEG_MAX | VBLK_F_BLK_SIZE | VBLK_F_FLUSH |
			    VBLK_F_RO | (h[0] & 0x20 ? VIRTQ_F_INDIRECT_DESC : 0);
	wr(VMMIO_R_STATUS, 0);
	wr(VMMIO_R_STATUS, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER);
	wr(VMMIO_R_DEV_FEATURES_SEL, 1);
	uint64_t offered = (uint64_t)rd(VMMIO_R_DEV_FEATURES) << 32;
	wr(VMMIO_R_DEV_FEATURES_SEL, 0);
	offered |= rd(VMMIO_R_DEV_FEATURES);
	features &= offered;
	wr(VMMIO_R_DRV_FEATURES_SEL, 1);
	wr(VMMIO_R_DRV_FEATURES, (uint32_t)(features >> 32));
	wr(VMMIO_R_DRV_FEATURES_SEL, 0);
	wr(VMMIO_R_DRV_FEATURES, (uint32_t)features);
	wr(VMMIO_R_STATUS, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER | VMMIO_S_FEATURES_OK);
	if (!(rd(VMMIO_R_STATUS) & VMMIO_S_FEATURES_OK))
		DIE("features %#lx refused", (unsigned long)features);
	wr(VMMIO_R_QUEUE_SEL, 0);
	wr(VMMIO_R_QUEUE_NUM, qsize);
	wr(VMMIO_R_QUEUE_DESC_LO, (uint32_t)desc);
	wr(VMMIO_R_QUEUE_DESC_HI, (uint32_t)(desc >> 32));
	wr(VMMIO_R_QUEUE_DRIVER_LO, (uint32_t)avail);
	wr(VMMIO_R_QUEUE_DRIVER_HI, (uint32_t)(avail >> 32));
	wr(VMMIO_R_QUEUE_DEVICE_LO, (uint32_t)used);
	wr(VMMIO_R_QUEUE_DEVICE_HI, (uint32_t)(used >> 32));
	wr(VMMIO_R_QUEUE_READY, 1);
	if (rd(VMMIO_R_QUEUE_READY)) {
		stat_up++;
		if (h[0] & 0x40) {
			uint16_t f = VIRTQ_AVAIL_F_NO_INTERRUPT;
			gwrite(avail, &f, 2);
		}
		/* DRIVER_OK serves what is already available; then the kicks */
		wr(VMMIO_R_STATUS, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER | VMMIO_S_FEATURES_OK | VMMIO_S_DRIVER_OK);
		check(0);
		wr(VMMIO_R_QUEUE_NOTIFY, 0);
		check(0);
		for (unsigned round = 0; round < h[7] % 4u; round++) {
			/* more entries of the ring (whatever they hold) become available */
			uint16_t idx = (uint16_t)(gread16(avail + 2) + h[8] % 8u + 1);
			gwrite(avail + 2, &idx, 2);
			uint64_t before = dev.broken_queues;
			wr(VMMIO_R_INT_ACK, rd(VMMIO_R_INT_STATUS));
			wr(VMMIO_R_QUEUE_NOTIFY, 0);
			check(before);
		}
		stat_chains += dev.mmio.q[0].vq.used_idx;
	}
	stat_broken += dev.broken_queues;
	stat_bad += dev.bad_requests;
	stat_unsupp += dev.unsupported;
	stat_reads += dev.disk.reads;
	stat_writes += dev.disk.writes;
	stat_zero_copy += dev.disk.zero_copy_pages;
	stat_errors += dev.disk.errors;

	/* the VM goes away: every page must come back */
	disk_budget = readv_budget = -1;
	vblk_destroy(&dev);
	pmap_destroy(pm, &guest_src, &table_src);
	s2_destroy(&s2, &table_src);
	free(pm);
	uint64_t had = base.cache_pages;
	if (vdisk_base_reclaim(&base, UINT64_MAX) != had || base.cache_pages || btree_nodes(&base.cache))
		DIE("cache not emptied: %lu pages left", (unsigned long)base.cache_pages);
	if (g_palloc.node[0].used_pages)
		DIE("%lu pages leaked", (unsigned long)g_palloc.node[0].used_pages);
	return 0;
}

#ifdef FUZZ_STANDALONE
#include "standalone.h"

static uint8_t in[HDR + MEM];

/* the built-in corpus' layout: rings in pages 0-2, indirect tables in page 3, headers and
 * status bytes in page 4, data in pages 5.. */
#define P_DESC  0u
#define P_AVAIL 1u
#define P_USED  2u
#define P_ITAB  3u
#define P_HDR   4u
#define P_DATA  5u

static void put(uint64_t off, const void *v, size_t n)
{
	if (off < MEM && n <= MEM - off)
		memcpy(in + HDR + off, v, n);
}

static void put_desc(uint64_t table_off, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t d[16];
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
	put(table_off + 16ull * i, d, 16);
}

struct gseg { uint64_t addr; uint32_t len; uint16_t flags; };

/* A request: header (sometimes short or split), data pieces, status (sometimes missing). */
static unsigned gen_request(unsigned k, struct gseg *s)
{
	uint64_t r = next_rand();
	uint32_t type = r % 10 < 4 ? VBLK_T_IN : r % 10 < 7 ? VBLK_T_OUT : r % 10 == 7 ? VBLK_T_FLUSH :
			r % 10 == 8 ? VBLK_T_GET_ID : (uint32_t)(r >> 40) % 16;
	uint64_t nsect = DISK_BYTES / 512;
	uint64_t sector = (r >> 8) % nsect;
	if ((r >> 34) % 2)
		sector &= ~7ull;                             /* block-aligned: zero copy possible */
	if ((r >> 16) % 16 == 0)
		sector = nsect - (r >> 20) % 4 + ((r >> 22) % 2 ? 1ull << 55 : 0);
	uint8_t hdr[16] = { 0 };
	memcpy(hdr, &type, 4);
	memcpy(hdr + 8, &sector, 8);
	uint64_t hoff = P_HDR * 4096ull + 32ull * k;
	put(hoff, hdr, 16);
	unsigned n = 0;
	if ((r >> 24) % 8 == 0) {
		s[n++] = (struct gseg){ RAM_BASE + hoff, 5, 0 };
		s[n++] = (struct gseg){ RAM_BASE + hoff + 5, (r >> 27) % 8 == 0 ? 10 : 11, 0 };
	} else {
		s[n++] = (struct gseg){ RAM_BASE + hoff, (r >> 27) % 32 == 0 ? 15 : 16, 0 };
	}
	unsigned pieces = type == VBLK_T_FLUSH ? 0 : (unsigned)((r >> 30) % 4);
	uint16_t dir = type == VBLK_T_OUT ? 0 : VIRTQ_DESC_F_WRITE;
	for (unsigned i = 0; i < pieces; i++) {
		uint64_t x = next_rand();
		uint32_t len = x % 8 == 0 ? (uint32_t)(x >> 8) % 9000 :
			       x % 8 < 4 ? (uint32_t)(1 + (x >> 8) % 2) * 4096 : (uint32_t)(1 + (x >> 8) % 8) * 512;
		uint64_t at = P_DATA * 4096ull + (x % 8 < 5 ? ((x >> 32) % (RAM_PAGES - P_DATA)) * 4096 :
						   (x >> 32) % ((RAM_PAGES - P_DATA) * 4096));
		if (at + len > MEM)
			len = (uint32_t)(MEM - at);
		if (x % 101 == 0)
			at = MEM - 100;                       /* runs off the end of RAM */
		s[n++] = (struct gseg){ RAM_BASE + at, len, dir };
	}
	if ((r >> 33) % 32)
		s[n++] = (struct gseg){ RAM_BASE + P_HDR * 4096ull + 2048 + k, 1, VIRTQ_DESC_F_WRITE };
	return n;
}

/* FUZZ_VBLK_RUNS inputs (default 3000) from FUZZ_VBLK_SEED: a queue of random requests
 * (direct or indirect), then 0-4 random byte corruptions in the rings, tables and headers. */
int main(int argc, char **argv)
{
	clock_t t0 = clock();
	long count = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			count += run_path(argv[i]);
	} else {
		const char *env = getenv("FUZZ_VBLK_RUNS");
		long runs = env ? atol(env) : 3000;
		env = getenv("FUZZ_VBLK_SEED");
		if (env)
			rng = strtoull(env, NULL, 0);
		for (long run = 0; run < runs; run++) {
			memset(in, 0, sizeof(in));
			uint64_t r = next_rand();
			unsigned lg = 3 + r % 5;                 /* queues of 8..128 */
			uint32_t qsize = 1u << lg;
			uint8_t *h = in;
			h[0] = (uint8_t)((r >> 8) % 4 | lg << 2 | ((r >> 10) % 4 ? 0x20 : 0) | ((r >> 12) % 8 == 0 ? 0x40 : 0));
			h[1] = P_DESC;
			h[2] = P_AVAIL;
			h[3] = P_USED;
			h[7] = (uint8_t)(r >> 16);
			h[8] = (uint8_t)(r >> 24);
			if ((r >> 32) % 8 == 0) {
				h[9] = (uint8_t)(1 + (r >> 35) % 3);     /* failing image reads, little memory */
				h[10] = (uint8_t)((r >> 40) % 8);
				h[11] = (uint8_t)((r >> 48) % 24);
			}
			unsigned nreq = 1 + (unsigned)(next_rand() % (qsize < 24 ? qsize : 24));
			uint32_t free_desc = 0, itab = 0;
			uint16_t idx = 0;
			for (unsigned k = 0; k < nreq; k++) {
				struct gseg s[8];
				unsigned n = gen_request(k, s);
				int indirect = (h[0] & 0x20) && next_rand() % 2 && itab + n <= 4096 / 16;
				uint32_t head = free_desc;
				if (indirect) {
					if (free_desc + 1 > qsize)
						break;
					for (unsigned i = 0; i < n; i++)
						put_desc(P_ITAB * 4096ull, itab + i, s[i].addr, s[i].len,
							 (uint16_t)(s[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)), (uint16_t)(i + 1));
					put_desc(P_DESC * 4096ull, free_desc++, RAM_BASE + P_ITAB * 4096ull + 16ull * itab, 16 * n,
						 VIRTQ_DESC_F_INDIRECT, 0);
					itab += n;
				} else {
					if (free_desc + n > qsize)
						break;
					for (unsigned i = 0; i < n; i++, free_desc++)
						put_desc(P_DESC * 4096ull, free_desc, s[i].addr, s[i].len,
							 (uint16_t)(s[i].flags | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
							 (uint16_t)(free_desc + 1));
				}
				uint16_t hd = (uint16_t)head;
				put(P_AVAIL * 4096ull + 4 + 2 * (idx % qsize), &hd, 2);
				idx++;
			}
			put(P_AVAIL * 4096ull + 2, &idx, 2);
			for (unsigned k = next_rand() % 5; k; k--) {
				uint64_t x = next_rand();
				uint32_t where = (uint32_t)(x % (5 * 4096));
				in[HDR + where] ^= (uint8_t)(1u << ((x >> 16) % 8));
				if ((x >> 20) % 4 == 0)
					in[HDR + where] = (uint8_t)(x >> 24);
			}
			LLVMFuzzerTestOneInput(in, sizeof(in));
			count++;
		}
	}
	printf("fuzz_vblk: %ld inputs (%ld devices up), %ld chains, %ld reads, %ld writes, %ld zero-copy pages, "
	       "%ld bad requests, %ld unsupported, %ld I/O errors, %ld broken queues; OK in %.1f s\n",
	       count, stat_up, stat_chains, stat_reads, stat_writes, stat_zero_copy, stat_bad, stat_unsupp,
	       stat_errors, stat_broken, (double)(clock() - t0) / CLOCKS_PER_SEC);
	return 0;
}
#endif
