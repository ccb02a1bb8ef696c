/* vblk: the virtio-blk device driven as Linux's virtio_mmio + virtio_blk would drive it,
 * through vblk_mmio and rings in fake guest RAM (pmap over palloc pages, as test_vdisk):
 * probe, feature negotiation, queue setup, config space, reads (zero-copy) and writes,
 * indirect descriptors, FLUSH, GET_ID, unsupported types, interrupts; then everything a
 * hostile driver can do to a request or a queue. A broken queue sets DEVICE_NEEDS_RESET on
 * that device only; nothing crashes or leaks (ASan, and the page accounting at teardown).
 * A random request-level differential test ends it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "vblk.h"
#include "fake_guest.h"

#define MAX_VMS     4

#define DISK_OFF    0x3000ull
#define DISK_BLOCKS 128u
#define DISK_USED   ((uint64_t)DISK_BLOCKS * VDISK_BLOCK)
#define NSECT       (DISK_USED / VDISK_SECTOR)
#define IMG_BYTES   (DISK_OFF + DISK_USED + 4096)

/* where the driver keeps things in guest RAM (Linux: rings page-aligned, one page each) */
#define QSIZE       128u
#define DESC_GPA    RING_GPA(0)
#define AVAIL_GPA   (RING_GPA(0) + 0x1000)
#define USED_GPA    (RING_GPA(0) + 0x2000)
#define HDR_GPA     (RAM_BASE + 0x203000)
#define STATUS_GPA  (RAM_BASE + 0x203800)
#define ITAB_GPA    (RAM_BASE + 0x204000)
#define DATA_GPA    (RAM_BASE + 0x210000)

#define VIRTIO_BLK_T_DISCARD 11

/* ---- the host image ---- */

static struct {
	uint8_t *img, *orig;
	long readvs, writes, flushes;
	int may_change;
} st;

static int store_readv(void *ctx, uint64_t off, uint64_t *pages, unsigned n)
{
	(void)ctx;
	assert_true(off >= DISK_OFF && off + (uint64_t)n * VDISK_BLOCK <= DISK_OFF + DISK_USED);
	for (unsigned i = 0; i < n; i++)
		memcpy((void *)(uintptr_t)pages[i], st.img + off + (uint64_t)i * VDISK_BLOCK, VDISK_BLOCK);
	st.readvs++;
	return 0;
}

static int store_write(void *ctx, uint64_t off, const void *src, uint64_t len)
{
	(void)ctx;
	assert_true(off >= DISK_OFF && off + len <= DISK_OFF + DISK_USED && len % 512 == 0);
	memcpy(st.img + off, src, len);
	st.writes++;
	return 0;
}

static int store_flush(void *ctx)
{
	(void)ctx;
	st.flushes++;
	return 0;
}

static const struct vdisk_store store = { store_readv, store_write, store_flush, &st };
static const uint8_t *base_at(uint64_t off) { return st.orig + DISK_OFF + off; }

static struct vdisk_base base;

/* ---- the driver ---- */

static struct drv drvs[MAX_VMS];
static int ndrvs;

static int blk_mmio(struct drv *d, uint64_t off, int size, int write, uint64_t *val)
{
	return vblk_mmio(&d->b, off, size, write, val);
}

static struct drv *drv_new(int mode, const char *id)
{
	assert_true(ndrvs < MAX_VMS);
	struct drv *d = &drvs[ndrvs++];
	memset(d, 0, sizeof(*d));
	drv_attach(d, blk_mmio, QSIZE, ITAB_GPA);
	vblk_init(&d->b, &base, mode, &d->v->g, id, on_irq, on_log, d);
	return d;
}

#define F_WANT (VIRTIO_F_VERSION_1 | VBLK_F_SIZE_MAX | VBLK_F_SEG_MAX | VBLK_F_RO | VBLK_F_BLK_SIZE | \
		VBLK_F_FLUSH | VIRTQ_F_INDIRECT_DESC | VIRTQ_F_EVENT_IDX)

/* virtio_mmio probe + virtio_blk probe: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK,
 * queue 0 (zeroed rings, page-aligned), DRIVER_OK. */
static void bring_up(struct drv *d, uint64_t want)
{
	drv_negotiate(d, 2, want);
	drv_queue_setup(d, 0);
	drv_driver_ok(d);
}

static void kick(struct drv *d) { wr(d, VMMIO_R_QUEUE_NOTIFY, 0); }

static void ack_irq(struct drv *d)
{
	wr(d, VMMIO_R_INT_ACK, rd(d, VMMIO_R_INT_STATUS));
	assert_int_equal(d->irq_level, 0);
}

static void put_hdr(struct drv *d, uint64_t gpa, uint32_t type, uint64_t sector)
{
	uint8_t h[16];
	memcpy(h, &type, 4);
	memset(h + 4, 0, 4);               /* ioprio */
	memcpy(h + 8, &sector, 8);
	gwrite(d->v, gpa, h, 16);
}

#define NO_STATUS 0xEE                   /* what the status byte holds if the device left it */

/* One virtio_blk request: header at HDR_GPA, data segments, status byte at STATUS_GPA; kicked
 * and completed synchronously. Returns the status byte; *used gets the used length. */
static uint8_t request(struct drv *d, uint32_t type, uint64_t sector, const struct seg *data, unsigned n,
		       int indirect, uint32_t *used)
{
	struct seg s[VIRTQ_MAX_SEGS];
	assert_true(n + 2 <= VIRTQ_MAX_SEGS);
	put_hdr(d, HDR_GPA, type, sector);
	uint8_t sentinel = NO_STATUS;
	gwrite(d->v, STATUS_GPA, &sentinel, 1);
	s[0] = (struct seg){ HDR_GPA, 16, R };
	if (n)
		memcpy(s + 1, data, n * sizeof(*data));
	s[n + 1] = (struct seg){ STATUS_GPA, 1, W };
	uint16_t head = post(d, 0, s, n + 2, indirect);
	long raises = d->irq_raises;
	kick(d);
	uint32_t id, len;
	assert_true(used_next(d, 0, &id, &len));
	assert_int_equal(id, head);
	assert_false(used_next(d, 0, &id, &len));        /* one request, one used element */
	if (used)
		*used = len;
	/* an interrupt for it (nothing suppressed) */
	assert_int_equal(d->irq_raises, raises + 1);
	assert_int_equal(rd(d, VMMIO_R_INT_STATUS), VMMIO_INT_VRING);
	ack_irq(d);
	return r8(d->v, STATUS_GPA);
}

/* A read or write of one buffer of len bytes at gpa. */
static uint8_t rw(struct drv *d, uint32_t type, uint64_t sector, uint64_t gpa, uint32_t len, uint32_t *used)
{
	struct seg s = { gpa, len, type == VBLK_T_IN ? W : R };
	return request(d, type, sector, &s, 1, 0, used);
}

/* Checks the queue died: NEEDS_RESET and a config interrupt, nothing used. */
static void expect_broken(struct drv *d)
{
	assert_true(rd(d, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	assert_true(rd(d, VMMIO_R_INT_STATUS) & VMMIO_INT_CONFIG);
	assert_int_equal(d->irq_level, 1);
	ack_irq(d);
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
	vdisk_base_init(&base, "base0", DISK_OFF, DISK_USED);
	ndrvs = 0;
	rng_state = 99;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < ndrvs; i++)
		vblk_destroy(&drvs[i].b);
	vms_destroy();
	uint64_t had = base.cache_pages;
	assert_int_equal(vdisk_base_reclaim(&base, UINT64_MAX), had);
	assert_int_equal(g_palloc.node[0].used_pages, 0);       /* every page came back */
	if (!st.may_change)
		assert_memory_equal(st.img, st.orig, IMG_BYTES);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	st.img = malloc(IMG_BYTES);
	st.orig = malloc(IMG_BYTES);
	rng_state = 4242;
	for (uint64_t i = 0; i < IMG_BYTES; i++)
		st.orig[i] = (uint8_t)rnd();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(st.img);
	free(st.orig);
	return 0;
}

/* ================= tests ================= */

/* What Linux reads at probe: identification, features (RO only on a read-only disk), and the
 * config space: capacity in 512-byte sectors, size_max, seg_max, blk_size. */
static void test_probe_and_config(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "disk-a"), *r = drv_new(VDISK_RO, "disk-r");
	bring_up(a, F_WANT);
	bring_up(r, F_WANT);
	uint64_t must = VIRTIO_F_VERSION_1 | VBLK_F_SIZE_MAX | VBLK_F_SEG_MAX | VBLK_F_BLK_SIZE | VBLK_F_FLUSH |
			VIRTQ_F_INDIRECT_DESC;
	assert_int_equal(a->offered & must, must);
	assert_int_equal(a->offered & VBLK_F_RO, 0);
	assert_int_equal(r->offered & VBLK_F_RO, VBLK_F_RO);
	assert_int_equal(r->offered & ~VBLK_F_RO, a->offered);
	/* nothing a device model must not offer without implementing it */
	assert_int_equal(a->offered & VIRTQ_F_EVENT_IDX, 0);
	assert_int_equal(a->offered & ((1ull << 34) | (1ull << 38) | (1ull << 40)), 0);

	assert_int_equal(cfg(a, 0, 8), NSECT);
	assert_int_equal(cfg(a, 8, 4), VBLK_SIZE_MAX);
	assert_int_equal(cfg(a, 12, 4), VBLK_SEG_MAX);
	/* 512-byte logical blocks (commit 327775c: file systems made with 1 KiB blocks must mount) */
	assert_int_equal(cfg(a, 20, 4), VDISK_SECTOR);
	assert_int_equal(cfg(a, 16, 4), 0);                      /* no geometry */
	/* byte by byte, the same little-endian fields */
	uint8_t bytes[36];
	for (int i = 0; i < 36; i++)
		bytes[i] = (uint8_t)cfg(a, (uint32_t)i, 1);
	uint64_t cap;
	uint32_t v;
	memcpy(&cap, bytes, 8);
	assert_int_equal(cap, NSECT);
	memcpy(&v, bytes + 20, 4);
	assert_int_equal(v, VDISK_SECTOR);
	memcpy(&v, bytes + 12, 4);
	assert_int_equal(v, VBLK_SEG_MAX);
	/* one 8-byte access too */
	uint64_t x = 0;
	assert_int_equal(vblk_mmio(&a->b, VMMIO_CONFIG, 8, 0, &x), 0);
	assert_int_equal(x, NSECT);
	/* past the config structure: refused, reads as 0 */
	x = 0x1234;
	assert_int_equal(vblk_mmio(&a->b, VMMIO_CONFIG + 36, 4, 0, &x), -1);
	assert_int_equal(x, 0);
	x = 0x1234;
	assert_int_equal(vblk_mmio(&a->b, VMMIO_CONFIG + 32, 8, 0, &x), -1);
	assert_int_equal(x, 0);
	/* config space is read-only */
	x = 1;
	assert_int_equal(vblk_mmio(&a->b, VMMIO_CONFIG + 32, 1, 1, &x), -1);
	assert_int_equal(cfg(a, 0, 8), NSECT);
	/* bring-up reached no disk and raised no interrupt */
	assert_int_equal(st.readvs, 0);
	assert_int_equal(a->irq_changes, 0);
}

/* Reads (zero-copy into aligned pages, copies otherwise) and writes through the ring: data,
 * status, used lengths, interrupts; the other VM's device sees the base. */
static void test_read_write(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a"), *b = drv_new(VDISK_RO, "b");
	bring_up(a, F_WANT);
	bring_up(b, F_WANT);
	uint8_t buf[3 * 4096];
	uint32_t used;

	/* 8 KiB at sector 16 into two whole pages: mapped from the cache */
	assert_int_equal(rw(a, VBLK_T_IN, 16, DATA_GPA, 8192, &used), VBLK_S_OK);
	assert_int_equal(used, 8192 + 1);
	gread(a->v, DATA_GPA, buf, 8192);
	assert_memory_equal(buf, base_at(16 * 512), 8192);
	assert_true(pmap_lookup(a->v->pm, DATA_GPA) & PMAP_COW);
	assert_int_equal(a->b.disk.zero_copy_pages, 2);
	/* 3 sectors at sector 5 into an odd address: copied */
	assert_int_equal(rw(a, VBLK_T_IN, 5, DATA_GPA + 0x10000 + 77, 1536, &used), VBLK_S_OK);
	assert_int_equal(used, 1537);
	gread(a->v, DATA_GPA + 0x10000 + 77, buf, 1536);
	assert_memory_equal(buf, base_at(5 * 512), 1536);

	/* a writes 3 sectors; reads them back; b does not see them */
	uint8_t data[1536];
	for (int i = 0; i < 1536; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	gwrite(a->v, DATA_GPA + 0x20000, data, sizeof(data));
	assert_int_equal(rw(a, VBLK_T_OUT, 17, DATA_GPA + 0x20000, 1536, &used), VBLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(a->b.disk.writes, 1);
	assert_int_equal(rw(a, VBLK_T_IN, 16, DATA_GPA + 0x30000, 4096, NULL), VBLK_S_OK);
	gread(a->v, DATA_GPA + 0x30000, buf, 4096);
	assert_memory_equal(buf, base_at(16 * 512), 512);
	assert_memory_equal(buf + 512, data, 1536);
	assert_memory_equal(buf + 2048, base_at(20 * 512), 2048);
	/* a's earlier zero-copy pages still hold what was read then */
	gread(a->v, DATA_GPA, buf, 4096);
	assert_memory_equal(buf, base_at(16 * 512), 4096);
	assert_int_equal(rw(b, VBLK_T_IN, 16, DATA_GPA, 4096, NULL), VBLK_S_OK);
	gread(b->v, DATA_GPA, buf, 4096);
	assert_memory_equal(buf, base_at(16 * 512), 4096);

	/* the last sector */
	assert_int_equal(rw(a, VBLK_T_IN, NSECT - 1, DATA_GPA, 512, NULL), VBLK_S_OK);
	assert_int_equal(a->b.bad_requests, 0);
	assert_int_equal(a->b.interrupts, 5);
}

/* Indirect descriptors (what Linux uses for every multi-segment request when negotiated),
 * a maximal one, and direct descriptors before an indirect one. */
static void test_indirect(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a");
	bring_up(a, F_WANT);
	assert_true(a->features & VIRTQ_F_INDIRECT_DESC);
	struct seg d[VBLK_SEG_MAX];
	/* 3 pieces: a whole page, half a page, 1.5 pages across a page boundary */
	d[0] = (struct seg){ DATA_GPA, 4096, W };
	d[1] = (struct seg){ DATA_GPA + 0x3000, 2048, W };
	d[2] = (struct seg){ DATA_GPA + 0x5800, 6144, W };
	uint32_t used;
	assert_int_equal(request(a, VBLK_T_IN, 8, d, 3, 1, &used), VBLK_S_OK);
	assert_int_equal(used, 12288 + 1);
	uint8_t *buf = malloc(VBLK_SEG_MAX * 512);
	gread(a->v, DATA_GPA, buf, 4096);
	assert_memory_equal(buf, base_at(8 * 512), 4096);
	gread(a->v, DATA_GPA + 0x3000, buf, 2048);
	assert_memory_equal(buf, base_at(16 * 512), 2048);
	gread(a->v, DATA_GPA + 0x5800, buf, 6144);
	assert_memory_equal(buf, base_at(20 * 512), 6144);

	/* seg_max sectors in seg_max pieces, each in a page of its own at odd offsets */
	for (unsigned i = 0; i < VBLK_SEG_MAX; i++)
		d[i] = (struct seg){ DATA_GPA + 0x10000 + i * 0x1000 + (i * 37) % 3000, 512, W };
	assert_int_equal(request(a, VBLK_T_IN, 100, d, VBLK_SEG_MAX, 1, &used), VBLK_S_OK);
	assert_int_equal(used, VBLK_SEG_MAX * 512 + 1);
	for (unsigned i = 0; i < VBLK_SEG_MAX; i++) {
		gread(a->v, d[i].gpa, buf, 512);
		assert_memory_equal(buf, base_at((100 + i) * 512), 512);
	}
	/* and written back from other pieces, read again in one */
	for (unsigned i = 0; i < VBLK_SEG_MAX; i++) {
		uint8_t x[512];
		memset(x, (int)i, sizeof(x));
		d[i] = (struct seg){ DATA_GPA + 0x100000 + i * 0x1000 + 512 * (i % 7), 512, R };
		gwrite(a->v, d[i].gpa, x, 512);
	}
	assert_int_equal(request(a, VBLK_T_OUT, 300, d, VBLK_SEG_MAX, 1, &used), VBLK_S_OK);
	assert_int_equal(used, 1);
	assert_int_equal(rw(a, VBLK_T_IN, 300, DATA_GPA + 0x90000, VBLK_SEG_MAX * 512, NULL), VBLK_S_OK);
	gread(a->v, DATA_GPA + 0x90000, buf, VBLK_SEG_MAX * 512);
	for (unsigned i = 0; i < VBLK_SEG_MAX; i++)
		assert_int_equal(buf[i * 512 + 511], (uint8_t)i);

	/* a header in the ring, the data and status in an indirect table after it */
	put_hdr(a, HDR_GPA, VBLK_T_IN, 40);
	gfill(a->v, STATUS_GPA, NO_STATUS, 1);
	put_desc(a, ITAB_GPA, 0, DATA_GPA + 0x8000, 1024, W | VIRTQ_DESC_F_NEXT, 1);
	put_desc(a, ITAB_GPA, 1, STATUS_GPA, 1, W, 0);
	uint16_t head = a->q[0].next_desc;
	put_desc(a, DESC_GPA, head, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(head + 1));
	put_desc(a, DESC_GPA, head + 1, ITAB_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	a->q[0].next_desc = (uint16_t)(head + 2);
	g16(a->v, AVAIL_GPA + 4 + 2 * (a->q[0].avail_idx % QSIZE), head);
	g16(a->v, AVAIL_GPA + 2, ++a->q[0].avail_idx);
	kick(a);
	uint32_t id;
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(id, head);
	assert_int_equal(used, 1025);
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_OK);
	gread(a->v, DATA_GPA + 0x8000, buf, 1024);
	assert_memory_equal(buf, base_at(40 * 512), 1024);
	ack_irq(a);
	free(buf);
}

/* FLUSH (to the store only on a persistent disk), GET_ID (20 bytes, NUL padded, truncated
 * to a shorter buffer without overrun), unknown types: UNSUPP. */
static void test_flush_get_id_unsupported(void **state)
{
	(void)state;
	st.may_change = 1;
	struct drv *a = drv_new(VDISK_COW, "mb-rootfs"), *p = drv_new(VDISK_PERSISTENT, "0123456789abcdefghijKLMN");
	bring_up(a, F_WANT);
	bring_up(p, F_WANT);
	uint32_t used;
	assert_int_equal(request(a, VBLK_T_FLUSH, 0, NULL, 0, 0, &used), VBLK_S_OK);
	assert_int_equal(st.flushes, 0);
	assert_int_equal(request(p, VBLK_T_FLUSH, 0, NULL, 0, 0, &used), VBLK_S_OK);
	assert_int_equal(st.flushes, 1);
	assert_int_equal(used, 1);
	assert_int_equal(p->b.disk.flushes, 1);

	/* GET_ID into a 20-byte buffer (Linux: VIRTIO_BLK_ID_BYTES) with canaries around it */
	uint64_t idg = DATA_GPA + 100;
	gfill(a->v, idg - 8, 0x77, 40);
	struct seg s = { idg, 20, W };
	assert_int_equal(request(a, VBLK_T_GET_ID, 0, &s, 1, 0, &used), VBLK_S_OK);
	assert_int_equal(used, 21);
	char id[40];
	gread(a->v, idg - 8, id, 40);
	assert_memory_equal(id + 8, "mb-rootfs\0\0\0\0\0\0\0\0\0\0\0", 20);
	for (int i = 0; i < 8; i++)
		assert_int_equal((uint8_t)id[i], 0x77);
	for (int i = 28; i < 40; i++)
		assert_int_equal((uint8_t)id[i], 0x77);
	/* a 24-character id is cut to 20 bytes; a 7-byte buffer gets 7 */
	assert_int_equal(request(p, VBLK_T_GET_ID, 0, &s, 1, 0, &used), VBLK_S_OK);
	gread(p->v, idg, id, 20);
	assert_memory_equal(id, "0123456789abcdefghij", 20);
	gfill(p->v, idg, 0x77, 20);
	s.len = 7;
	assert_int_equal(request(p, VBLK_T_GET_ID, 0, &s, 1, 0, &used), VBLK_S_OK);
	assert_int_equal(used, 8);
	gread(p->v, idg, id, 20);
	assert_memory_equal(id, "0123456", 7);
	assert_int_equal((uint8_t)id[7], 0x77);
	/* a 64-byte buffer: 20 bytes of id, the rest left alone */
	s.len = 64;
	gfill(p->v, idg, 0x77, 64);
	assert_int_equal(request(p, VBLK_T_GET_ID, 0, &s, 1, 0, &used), VBLK_S_OK);
	gread(p->v, idg, id, 24);
	assert_memory_equal(id, "0123456789abcdefghij", 20);
	assert_int_equal((uint8_t)id[20], 0x77);

	/* unknown and unimplemented types */
	static const uint32_t types[] = { 2, 3, VIRTIO_BLK_T_DISCARD, 13, 0x80000000u, 0xffffffffu };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct seg d = { DATA_GPA, 512, R };
		assert_int_equal(request(a, types[i], 0, &d, 1, 0, &used), VBLK_S_UNSUPP);
		assert_int_equal(used, 1);
	}
	assert_int_equal(a->b.unsupported, 6);
	assert_int_equal(a->b.bad_requests, 0);
	assert_true(a->logs >= 6);
	assert_int_equal(rd(a, VMMIO_R_STATUS), 0xf);
}

/* A read-only disk: RO offered, writes get IOERR and change nothing, reads work. */
static void test_read_only_disk(void **state)
{
	(void)state;
	struct drv *r = drv_new(VDISK_RO, "ro");
	bring_up(r, F_WANT);
	assert_true(r->features & VBLK_F_RO);
	gfill(r->v, DATA_GPA, 0x11, 4096);
	uint32_t used;
	assert_int_equal(rw(r, VBLK_T_OUT, 8, DATA_GPA, 4096, &used), VBLK_S_IOERR);
	assert_int_equal(used, 1);
	assert_int_equal(r->b.bad_requests, 1);
	assert_int_equal(r->b.disk.writes, 0);
	assert_int_equal(rw(r, VBLK_T_OUT, 8, DATA_GPA, 0, &used), VBLK_S_IOERR);   /* even empty */
	assert_int_equal(rw(r, VBLK_T_IN, 8, DATA_GPA, 4096, NULL), VBLK_S_OK);
	uint8_t buf[4096];
	gread(r->v, DATA_GPA, buf, 4096);
	assert_memory_equal(buf, base_at(8 * 512), 4096);
	assert_int_equal(request(r, VBLK_T_FLUSH, 0, NULL, 0, 0, NULL), VBLK_S_OK);
	assert_int_equal(rd(r, VMMIO_R_STATUS), 0xf);
}

/* Malformed requests: each gets its status (or, with no status byte, is given back with
 * nothing written), the guest's memory is untouched where it should be, and the device goes
 * on serving. */
static void test_malformed_requests(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a");
	bring_up(a, F_WANT);
	uint32_t used;
	uint8_t buf[8192];

	/* a header shorter than 16 bytes */
	put_hdr(a, HDR_GPA, VBLK_T_IN, 0);
	struct seg s[4] = { { HDR_GPA, 15, R }, { DATA_GPA, 512, W }, { STATUS_GPA, 1, W } };
	gfill(a->v, DATA_GPA, 0x5a, 512);
	gfill(a->v, STATUS_GPA, NO_STATUS, 1);
	uint16_t head = post(a, 0, s, 3, 0);
	kick(a);
	uint32_t id;
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(id, head);
	assert_int_equal(used, 1);
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_IOERR);
	gread(a->v, DATA_GPA, buf, 512);
	for (int i = 0; i < 512; i++)
		assert_int_equal(buf[i], 0x5a);
	ack_irq(a);
	assert_int_equal(a->b.bad_requests, 1);

	/* a 16-byte header split 5 + 11 over two descriptors, in two different pages: fine */
	uint8_t h[16];
	uint32_t t = VBLK_T_IN;
	uint64_t sec = 24;
	memset(h, 0, 16);
	memcpy(h, &t, 4);
	memcpy(h + 8, &sec, 8);
	gwrite(a->v, HDR_GPA + 0xffb, h, 5);
	gwrite(a->v, HDR_GPA + 0x1000 + 0x300, h + 5, 11);
	s[0] = (struct seg){ HDR_GPA + 0xffb, 5, R };
	s[1] = (struct seg){ HDR_GPA + 0x1300, 11, R };
	s[2] = (struct seg){ DATA_GPA, 1024, W };
	s[3] = (struct seg){ STATUS_GPA, 1, W };
	gfill(a->v, STATUS_GPA, NO_STATUS, 1);
	head = post(a, 0, s, 4, 1);
	kick(a);
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(used, 1025);
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_OK);
	gread(a->v, DATA_GPA, buf, 1024);
	assert_memory_equal(buf, base_at(24 * 512), 1024);
	ack_irq(a);

	/* the header in 16 one-byte descriptors */
	struct seg many[19];
	sec = 32;
	memcpy(h + 8, &sec, 8);
	for (int i = 0; i < 16; i++) {
		gwrite(a->v, HDR_GPA + 0x100 + 7 * i, h + i, 1);
		many[i] = (struct seg){ HDR_GPA + 0x100 + 7 * i, 1, R };
	}
	many[16] = (struct seg){ DATA_GPA + 0x2000, 512, W };
	many[17] = (struct seg){ DATA_GPA + 0x3000, 512, W };
	many[18] = (struct seg){ STATUS_GPA, 1, W };
	gfill(a->v, STATUS_GPA, NO_STATUS, 1);
	post(a, 0, many, 19, 0);
	kick(a);
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(used, 1025);
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_OK);
	gread(a->v, DATA_GPA + 0x2000, buf, 512);
	assert_memory_equal(buf, base_at(32 * 512), 512);
	gread(a->v, DATA_GPA + 0x3000, buf, 512);
	assert_memory_equal(buf, base_at(33 * 512), 512);
	ack_irq(a);

	/* a write with its data in the header's descriptor (16 + 1024 readable bytes) */
	st.may_change = 0;
	uint8_t hd[16 + 1024];
	t = VBLK_T_OUT;
	sec = 30;
	memset(hd, 0, 16);
	memcpy(hd, &t, 4);
	memcpy(hd + 8, &sec, 8);
	for (int i = 0; i < 1024; i++)
		hd[16 + i] = (uint8_t)(i ^ 0x3c);
	gwrite(a->v, DATA_GPA + 0x4000, hd, sizeof(hd));
	s[0] = (struct seg){ DATA_GPA + 0x4000, sizeof(hd), R };
	s[1] = (struct seg){ STATUS_GPA, 1, W };
	post(a, 0, s, 2, 0);
	kick(a);
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_OK);
	ack_irq(a);
	assert_int_equal(rw(a, VBLK_T_IN, 30, DATA_GPA + 0x6000, 1024, NULL), VBLK_S_OK);
	gread(a->v, DATA_GPA + 0x6000, buf, 1024);
	assert_memory_equal(buf, hd + 16, 1024);

	/* data not a whole number of sectors: IOERR, the buffer untouched */
	long bad = (long)a->b.bad_requests;
	gfill(a->v, DATA_GPA, 0x5a, 1000);
	assert_int_equal(rw(a, VBLK_T_IN, 0, DATA_GPA, 1000, &used), VBLK_S_IOERR);
	assert_int_equal(used, 1);
	gread(a->v, DATA_GPA, buf, 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf[i], 0x5a);
	assert_int_equal(rw(a, VBLK_T_OUT, 0, DATA_GPA, 511, NULL), VBLK_S_IOERR);
	assert_int_equal(rw(a, VBLK_T_OUT, 0, DATA_GPA, 4097, NULL), VBLK_S_IOERR);
	assert_int_equal(a->b.bad_requests, bad + 3);

	/* sectors past the end, and sector + length wrapping around */
	static const struct { uint64_t sector; uint32_t len; uint8_t status; } ends[] = {
		{ NSECT, 512, VBLK_S_IOERR },
		{ NSECT - 1, 1024, VBLK_S_IOERR },
		{ NSECT - 8, 8192, VBLK_S_IOERR },
		{ NSECT - 8, 4096, VBLK_S_OK },
		{ NSECT, 0, VBLK_S_OK },                  /* empty, at the end: harmless */
		{ NSECT + 1, 0, VBLK_S_IOERR },
		{ UINT64_MAX, 512, VBLK_S_IOERR },
		{ UINT64_MAX - 1, 1024, VBLK_S_IOERR },
		{ 1ull << 55, 512, VBLK_S_IOERR },        /* sector * 512 wraps to 0 */
		{ (1ull << 55) + 8, 4096, VBLK_S_IOERR },
		{ (UINT64_MAX / 512) + 1, 4096, VBLK_S_IOERR },
	};
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		gfill(a->v, DATA_GPA, 0x5a, 8192);
		assert_int_equal(rw(a, VBLK_T_IN, ends[i].sector, DATA_GPA, ends[i].len, &used), ends[i].status);
		assert_int_equal(rw(a, VBLK_T_OUT, ends[i].sector, DATA_GPA, ends[i].len, NULL), ends[i].status);
		if (ends[i].status == VBLK_S_IOERR) {
			gread(a->v, DATA_GPA, buf, 8192);
			for (int k = 0; k < 8192; k++)
				assert_int_equal(buf[k], 0x5a);
		}
	}
	assert_int_equal(a->b.disk.overlay_pages, 1 + 1);          /* sector 30.., and NSECT-8 */

	/* no status byte: given back with nothing written, counted */
	bad = (long)a->b.bad_requests;
	put_hdr(a, HDR_GPA, VBLK_T_IN, 0);
	s[0] = (struct seg){ HDR_GPA, 16, R };
	s[1] = (struct seg){ DATA_GPA, 512, R };
	gfill(a->v, DATA_GPA, 0x5a, 512);
	head = post(a, 0, s, 2, 0);
	kick(a);
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(id, head);
	assert_int_equal(used, 0);
	assert_int_equal(a->b.bad_requests, bad + 1);
	ack_irq(a);
	gread(a->v, DATA_GPA, buf, 512);
	assert_int_equal(buf[0], 0x5a);

	/* a chain of nothing but the status byte; a chain of all-writable buffers */
	s[0] = (struct seg){ STATUS_GPA, 1, W };
	gfill(a->v, STATUS_GPA, NO_STATUS, 1);
	post(a, 0, s, 1, 0);
	kick(a);
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(used, 1);
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_IOERR);
	ack_irq(a);
	s[0] = (struct seg){ HDR_GPA, 16, W };
	s[1] = (struct seg){ STATUS_GPA, 1, W };
	gfill(a->v, STATUS_GPA, NO_STATUS, 1);
	post(a, 0, s, 2, 1);
	kick(a);
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_IOERR);
	ack_irq(a);

	/* an empty read: OK, one byte written; data in the wrong direction moves nothing */
	assert_int_equal(request(a, VBLK_T_IN, 3, NULL, 0, 0, &used), VBLK_S_OK);
	assert_int_equal(used, 1);
	struct seg wrongway = { DATA_GPA, 512, W };
	gfill(a->v, DATA_GPA, 0x5a, 512);
	assert_int_equal(request(a, VBLK_T_OUT, 3, &wrongway, 1, 0, &used), VBLK_S_OK);
	gread(a->v, DATA_GPA, buf, 512);
	assert_int_equal(buf[100], 0x5a);

	/* the status byte as the last byte of guest RAM, the data as the first page */
	struct seg edge[3] = { { HDR_GPA, 16, R }, { RAM_BASE, 4096, W }, { RAM_BASE + RAM_SIZE - 1, 1, W } };
	put_hdr(a, HDR_GPA, VBLK_T_IN, 64);
	gfill(a->v, RAM_BASE + RAM_SIZE - 1, NO_STATUS, 1);
	head = post(a, 0, edge, 3, 0);
	kick(a);
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(used, 4097);
	assert_int_equal(r8(a->v, RAM_BASE + RAM_SIZE - 1), VBLK_S_OK);
	ack_irq(a);

	/* after all that, the device is alive and right */
	assert_int_equal(rd(a, VMMIO_R_STATUS), 0xf);
	assert_int_equal(rw(a, VBLK_T_IN, 64, DATA_GPA, 8192, NULL), VBLK_S_OK);
	gread(a->v, DATA_GPA, buf, 8192);
	assert_memory_equal(buf, base_at(64 * 512), 8192);
	assert_int_equal(a->b.broken_queues, 0);
}

/* A hostile driver breaks its queue (buffers outside RAM, loops, avail.idx jumps, bad
 * indirect tables, over-long chains): its device needs a reset, the other VM's device goes on,
 * and after a reset and a new bring-up the device works again. */
static void test_broken_queues(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a"), *b = drv_new(VDISK_COW, "b");
	bring_up(b, F_WANT);
	enum { OUTSIDE, WRAP, HUGE, LOOP, LOOP_INDIRECT, NEXT_RANGE, AVAIL_JUMP, HEAD_RANGE, ORDER,
	       INDIRECT_STRADDLE, INDIRECT_NEST, INDIRECT_EMPTY, TOO_LONG, NCASES };
	for (int c = 0; c < NCASES; c++) {
		bring_up(a, F_WANT);
		/* one good request first */
		assert_int_equal(rw(a, VBLK_T_IN, 0, DATA_GPA, 4096, NULL), VBLK_S_OK);
		put_hdr(a, HDR_GPA, VBLK_T_IN, 0);
		uint16_t h = a->q[0].next_desc;
		struct seg s[3] = { { HDR_GPA, 16, R }, { DATA_GPA, 4096, W }, { STATUS_GPA, 1, W } };
		switch (c) {
		case OUTSIDE:
			s[1].gpa = RAM_BASE + RAM_SIZE;
			post(a, 0, s, 3, 0);
			break;
		case WRAP:
			s[1] = (struct seg){ RAM_BASE + RAM_SIZE - 512, 1024, W };   /* straddles the end */
			post(a, 0, s, 3, 0);
			break;
		case HUGE:
			s[1].len = 0xfffff000u;
			post(a, 0, s, 3, 1);
			break;
		case LOOP:
			post(a, 0, s, 3, 0);
			put_desc(a, DESC_GPA, (h + 2) % QSIZE, STATUS_GPA, 1, W | VIRTQ_DESC_F_NEXT, h);
			break;
		case LOOP_INDIRECT:
			post(a, 0, s, 3, 1);
			put_desc(a, ITAB_GPA, 2, STATUS_GPA, 1, W | VIRTQ_DESC_F_NEXT, 1);
			break;
		case NEXT_RANGE:
			post(a, 0, s, 3, 0);
			put_desc(a, DESC_GPA, h, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, QSIZE);
			break;
		case AVAIL_JUMP:
			post(a, 0, s, 3, 0);
			g16(a->v, AVAIL_GPA + 2, (uint16_t)(a->q[0].avail_idx + QSIZE));
			break;
		case HEAD_RANGE:
			post(a, 0, s, 3, 0);
			g16(a->v, AVAIL_GPA + 4 + 2 * ((a->q[0].avail_idx - 1) % QSIZE), 0xffff);
			break;
		case ORDER:
			s[0].flags = W;                       /* readable header after a writable buffer */
			s[1].flags = R;
			post(a, 0, s, 2, 0);
			break;
		case INDIRECT_STRADDLE:
			/* an indirect table across a page boundary: rings and tables are reached a page
			 * at a time */
			post(a, 0, s, 3, 1);
			put_desc(a, DESC_GPA, h, ITAB_GPA + 0x1000 - 16, 48, VIRTQ_DESC_F_INDIRECT, 0);
			break;
		case INDIRECT_NEST:
			post(a, 0, s, 3, 1);
			put_desc(a, ITAB_GPA, 1, ITAB_GPA, 48, VIRTQ_DESC_F_INDIRECT, 0);
			break;
		case INDIRECT_EMPTY:
			post(a, 0, s, 3, 1);
			put_desc(a, DESC_GPA, h, ITAB_GPA, 0, VIRTQ_DESC_F_INDIRECT, 0);
			break;
		case TOO_LONG: {
			/* one byte more than seg_max * size_max + header + status: more than any
			 * request Linux makes (refused before its buffer is even looked at) */
			struct seg big[3] = { { HDR_GPA, 16, R }, { RAM_BASE, VBLK_SEG_MAX * VBLK_SIZE_MAX + 1, W },
					      { STATUS_GPA, 1, W } };
			post(a, 0, big, 3, 0);
			break;
		}
		}
		uint32_t id, used;
		gfill(a->v, STATUS_GPA, NO_STATUS, 1);
		long broken = (long)a->b.broken_queues;
		kick(a);
		if (a->b.broken_queues != (uint64_t)broken + 1)
			fail_msg("case %d: the queue is not broken", c);
		assert_false(used_next(a, 0, &id, &used));
		assert_int_equal(r8(a->v, STATUS_GPA), NO_STATUS);
		expect_broken(a);
		/* notifications are ignored until the reset */
		kick(a);
		assert_int_equal(a->b.broken_queues, broken + 1);
		assert_false(used_next(a, 0, &id, &used));
		assert_int_equal(a->irq_level, 0);
		/* the other VM's device never noticed */
		assert_int_equal(rd(b, VMMIO_R_STATUS), 0xf);
		assert_int_equal(rw(b, VBLK_T_IN, 8, DATA_GPA, 4096, NULL), VBLK_S_OK);
		/* a reset brings a's device back */
		wr(a, VMMIO_R_STATUS, 0);
		assert_int_equal(rd(a, VMMIO_R_STATUS), 0);
		assert_int_equal(rd(a, VMMIO_R_INT_STATUS), 0);
	}
	bring_up(a, F_WANT);
	assert_int_equal(rw(a, VBLK_T_IN, 8, DATA_GPA, 4096, NULL), VBLK_S_OK);
	assert_int_equal(b->b.broken_queues, 0);
	assert_int_equal(b->b.bad_requests, 0);
}

/* The driver points a read at its own rings and tables: the cache's page gets mapped over
 * the descriptor table or the used ring. The device keeps working through private copies;
 * the cache page (and so the other VM) never changes. */
static void test_read_into_rings(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a"), *b = drv_new(VDISK_RO, "b");
	bring_up(a, F_WANT);
	bring_up(b, F_WANT);
	uint8_t buf[4096];
	/* a disk block over the used ring: the push right after writes through a copy */
	uint32_t used;
	assert_int_equal(rw(a, VBLK_T_IN, 8 * 5, USED_GPA, 4096, &used), VBLK_S_OK);
	assert_int_equal(used, 4097);
	assert_int_equal(rw(b, VBLK_T_IN, 8 * 5, DATA_GPA, 4096, NULL), VBLK_S_OK);
	gread(b->v, DATA_GPA, buf, 4096);
	assert_memory_equal(buf, base_at(5 * 4096), 4096);
	assert_memory_equal((void *)(uintptr_t)PMAP_ADDR(pmap_lookup(b->v->pm, DATA_GPA)), base_at(5 * 4096), 4096);
	/* the used ring now holds disk bytes but for the elements the device wrote: the driver
	 * gets confused or not, the device does not care; reset and set up again */
	wr(a, VMMIO_R_STATUS, 0);
	bring_up(a, F_WANT);
	/* a disk block over the descriptor table: the chain was already read; the driver writes
	 * its next descriptors through a copy */
	assert_int_equal(rw(a, VBLK_T_IN, 8 * 6, DESC_GPA, 4096, NULL), VBLK_S_OK);
	assert_int_equal(rw(a, VBLK_T_IN, 8 * 9, DATA_GPA + 0x4000, 4096, NULL), VBLK_S_OK);
	/* over the avail ring: the status is written, then the device finds disk bytes for
	 * avail.idx and ring entries; whatever it makes of them, it stays sane */
	put_hdr(a, HDR_GPA, VBLK_T_IN, 8 * 7);
	gfill(a->v, STATUS_GPA, NO_STATUS, 1);
	struct seg s[3] = { { HDR_GPA, 16, R }, { AVAIL_GPA, 4096, W }, { STATUS_GPA, 1, W } };
	post(a, 0, s, 3, 0);
	kick(a);
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_OK);
	wr(a, VMMIO_R_INT_ACK, rd(a, VMMIO_R_INT_STATUS));
	/* b still reads the base, from the cache pages a's rings were mapped to */
	assert_int_equal(rw(b, VBLK_T_IN, 8 * 5, DATA_GPA, 3 * 4096, NULL), VBLK_S_OK);
	uint8_t buf3[3 * 4096];
	gread(b->v, DATA_GPA, buf3, sizeof(buf3));
	assert_memory_equal(buf3, base_at(5 * 4096), sizeof(buf3));
	wr(a, VMMIO_R_STATUS, 0);
	bring_up(a, F_WANT);
	assert_int_equal(rw(a, VBLK_T_IN, 0, DATA_GPA, 4096, NULL), VBLK_S_OK);
}

/* Queue setups the device must refuse (QueueReady reads back 0), a driver without VERSION_1,
 * a smaller queue, and buffers made available before DRIVER_OK (served when it comes). */
static void test_queue_setup(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a");
	static const struct { uint64_t desc, avail, used; uint32_t num; } bad[] = {
		{ RAM_BASE + RAM_SIZE, AVAIL_GPA, USED_GPA, QSIZE },          /* outside RAM */
		{ DESC_GPA, RAM_BASE - 0x1000, USED_GPA, QSIZE },
		{ DESC_GPA, AVAIL_GPA, RAM_BASE + RAM_SIZE - 0x100, QSIZE },  /* runs off the end */
		{ DESC_GPA + 0xc00, AVAIL_GPA, USED_GPA, QSIZE },             /* straddles a page */
		{ DESC_GPA, AVAIL_GPA, USED_GPA + 0xc00, QSIZE },
		{ DESC_GPA + 8, AVAIL_GPA, USED_GPA, QSIZE },                 /* misaligned */
		{ DESC_GPA, AVAIL_GPA + 1, USED_GPA, QSIZE },
		{ DESC_GPA, AVAIL_GPA, USED_GPA + 2, QSIZE },
		{ 0xfffffffffffff000ull, AVAIL_GPA, USED_GPA, QSIZE },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		wr(a, VMMIO_R_STATUS, 0);
		status_add(a, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER);
		wr(a, VMMIO_R_DRV_FEATURES_SEL, 1);
		wr(a, VMMIO_R_DRV_FEATURES, 1);
		status_add(a, VMMIO_S_FEATURES_OK);
		wr(a, VMMIO_R_QUEUE_SEL, 0);
		wr(a, VMMIO_R_QUEUE_NUM, bad[i].num);
		wr(a, VMMIO_R_QUEUE_DESC_LO, (uint32_t)bad[i].desc);
		wr(a, VMMIO_R_QUEUE_DESC_HI, (uint32_t)(bad[i].desc >> 32));
		wr(a, VMMIO_R_QUEUE_DRIVER_LO, (uint32_t)bad[i].avail);
		wr(a, VMMIO_R_QUEUE_DRIVER_HI, (uint32_t)(bad[i].avail >> 32));
		wr(a, VMMIO_R_QUEUE_DEVICE_LO, (uint32_t)bad[i].used);
		wr(a, VMMIO_R_QUEUE_DEVICE_HI, (uint32_t)(bad[i].used >> 32));
		wr(a, VMMIO_R_QUEUE_READY, 1);
		if (rd(a, VMMIO_R_QUEUE_READY) != 0)
			fail_msg("setup %zu accepted", i);
		/* a kick of the dead queue does nothing */
		status_add(a, VMMIO_S_DRIVER_OK);
		kick(a);
		assert_int_equal(a->b.broken_queues, 0);
	}
	/* no VERSION_1: FEATURES_OK does not stick */
	wr(a, VMMIO_R_STATUS, 0);
	status_add(a, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER);
	wr(a, VMMIO_R_DRV_FEATURES_SEL, 0);
	wr(a, VMMIO_R_DRV_FEATURES, (uint32_t)VBLK_F_BLK_SIZE);
	status_add(a, VMMIO_S_FEATURES_OK);
	assert_int_equal(rd(a, VMMIO_R_STATUS) & VMMIO_S_FEATURES_OK, 0);

	/* a request queued (and kicked) before DRIVER_OK is served when DRIVER_OK comes */
	wr(a, VMMIO_R_STATUS, 0);
	status_add(a, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER);
	wr(a, VMMIO_R_DRV_FEATURES_SEL, 1);
	wr(a, VMMIO_R_DRV_FEATURES, 1);
	status_add(a, VMMIO_S_FEATURES_OK);
	gfill(a->v, DESC_GPA, 0, 3 * PAGE_SIZE);
	wr(a, VMMIO_R_QUEUE_SEL, 0);
	wr(a, VMMIO_R_QUEUE_NUM, QSIZE);
	wr(a, VMMIO_R_QUEUE_DESC_LO, (uint32_t)DESC_GPA);
	wr(a, VMMIO_R_QUEUE_DRIVER_LO, (uint32_t)AVAIL_GPA);
	wr(a, VMMIO_R_QUEUE_DEVICE_LO, (uint32_t)USED_GPA);
	wr(a, VMMIO_R_QUEUE_READY, 1);
	a->q[0].avail_idx = a->q[0].used_idx = a->q[0].next_desc = 0;
	put_hdr(a, HDR_GPA, VBLK_T_IN, 8);
	struct seg s[3] = { { HDR_GPA, 16, R }, { DATA_GPA, 4096, W }, { STATUS_GPA, 1, W } };
	post(a, 0, s, 3, 0);
	kick(a);
	uint32_t id, used;
	assert_false(used_next(a, 0, &id, &used));
	status_add(a, VMMIO_S_DRIVER_OK);
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(used, 4097);
	assert_int_equal(r8(a->v, STATUS_GPA), VBLK_S_OK);
	ack_irq(a);
}

/* VIRTQ_AVAIL_F_NO_INTERRUPT: requests complete without an interrupt; several requests in
 * one kick make one interrupt. */
static void test_interrupts(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a");
	bring_up(a, F_WANT);
	g16(a->v, AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	put_hdr(a, HDR_GPA, VBLK_T_IN, 0);
	struct seg s[3] = { { HDR_GPA, 16, R }, { DATA_GPA, 4096, W }, { STATUS_GPA, 1, W } };
	post(a, 0, s, 3, 0);
	kick(a);
	uint32_t id, used;
	assert_true(used_next(a, 0, &id, &used));
	assert_int_equal(a->irq_changes, 0);
	assert_int_equal(rd(a, VMMIO_R_INT_STATUS), 0);
	g16(a->v, AVAIL_GPA, 0);
	/* four requests, one kick: four used elements, one interrupt */
	for (int i = 0; i < 4; i++) {
		s[1].gpa = DATA_GPA + 0x1000 * i;
		post(a, 0, s, 3, i & 1);
	}
	kick(a);
	for (int i = 0; i < 4; i++)
		assert_true(used_next(a, 0, &id, &used));
	assert_false(used_next(a, 0, &id, &used));
	assert_int_equal(a->irq_raises, 1);
	assert_int_equal(a->b.interrupts, 1);
	ack_irq(a);
	/* a kick with nothing new: no interrupt */
	kick(a);
	assert_int_equal(a->irq_raises, 1);
}

/* The VM restarts: vblk_reset drops the COW overlay and gives a fresh device, the interrupt
 * line included; vblk_destroy frees the overlay. */
static void test_reset_and_destroy(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a");
	bring_up(a, F_WANT);
	gfill(a->v, DATA_GPA, 0x42, 8192);
	assert_int_equal(rw(a, VBLK_T_OUT, 8, DATA_GPA, 8192, NULL), VBLK_S_OK);
	assert_int_equal(a->b.disk.overlay_pages, 2);
	/* a request completes and its interrupt is still pending when the VM restarts */
	struct seg s[3] = { { HDR_GPA, 16, R }, { DATA_GPA + 0x10000, 4096, W }, { STATUS_GPA, 1, W } };
	put_hdr(a, HDR_GPA, VBLK_T_IN, 8);
	post(a, 0, s, 3, 0);
	kick(a);
	assert_int_equal(a->irq_level, 1);
	uint64_t free_before = palloc_free_pages(&g_palloc, 0);
	vblk_reset(&a->b);
	assert_int_equal(a->b.disk.overlay_pages, 0);
	assert_int_equal(palloc_free_pages(&g_palloc, 0), free_before + 2 + 1 + 1);   /* overlay, node, bounce */
	assert_int_equal(rd(a, VMMIO_R_STATUS), 0);
	assert_int_equal(rd(a, VMMIO_R_INT_STATUS), 0);
	/* the line follows InterruptStatus: a level-triggered line left high with nothing to
	 * acknowledge would storm the restarted guest */
	assert_int_equal(a->irq_level, 0);
	bring_up(a, F_WANT);
	uint8_t buf[8192];
	assert_int_equal(rw(a, VBLK_T_IN, 8, DATA_GPA + 0x20000, 8192, NULL), VBLK_S_OK);
	gread(a->v, DATA_GPA + 0x20000, buf, 8192);
	assert_memory_equal(buf, base_at(8 * 512), 8192);
	gfill(a->v, DATA_GPA, 0x43, 4096);
	assert_int_equal(rw(a, VBLK_T_OUT, 0, DATA_GPA, 4096, NULL), VBLK_S_OK);
	vblk_destroy(&a->b);
	assert_int_equal(a->b.disk.overlay_pages, 0);
}

/* 30k random requests, well-formed and not (directions, lengths, sectors, types, direct and
 * indirect, pieces at any address and length), from a COW device and a read-only one, checked
 * against a byte-array model: statuses, used lengths, data. */
static void test_random_requests(void **state)
{
	(void)state;
	enum { OPS = 30000 };
	struct drv *d[2] = { drv_new(VDISK_COW, "rand-cow"), drv_new(VDISK_RO, "rand-ro") };
	uint8_t *model[2];
	for (int i = 0; i < 2; i++) {
		bring_up(d[i], F_WANT);
		model[i] = malloc(DISK_USED);
		memcpy(model[i], base_at(0), DISK_USED);
	}
	static uint8_t data[64 * 1024], got[64 * 1024];
	long ok = 0, ioerr = 0, unsupp = 0;
	for (long op = 0; op < OPS; op++) {
		struct drv *x = d[rn(2)];
		uint8_t *m = model[x == d[1]];
		uint64_t c = rn(100);
		uint32_t type = c < 45 ? VBLK_T_IN : c < 85 ? VBLK_T_OUT : c < 90 ? VBLK_T_FLUSH :
				c < 95 ? VBLK_T_GET_ID : (uint32_t)rn(20);
		/* mostly good lengths and sectors, sometimes not */
		uint32_t len = (uint32_t)(1 + rn(rn(4) ? 16 : 100)) * 512;
		if (rn(20) == 0)
			len = (uint32_t)rn(20000);
		uint64_t sector = rn(NSECT - len / 512 + 1);
		if (rn(30) == 0)
			sector = NSECT - rn(4) + rn(3) * (rn(2) ? 1 : 1ull << 60);
		/* pieces */
		struct seg s[16];
		unsigned n = type == VBLK_T_FLUSH ? 0 : 1 + (unsigned)rn(8);
		uint32_t left = len;
		uint64_t gpa = DATA_GPA + rn(4096);
		for (unsigned i = 0; i < n; i++) {
			uint32_t k = i + 1 == n ? left : (uint32_t)rn(left + 1);
			if (rn(2) && k > 512)
				k &= ~511u;
			left -= k;
			s[i] = (struct seg){ gpa, k, type == VBLK_T_OUT ? R : W };
			gpa += k + (rn(3) ? 0 : rn(3000));
		}
		if (type == VBLK_T_GET_ID)
			for (unsigned i = 0; i < n; i++)
				s[i].len = s[i].len % 32 + 1;
		uint32_t total = 0;
		for (unsigned i = 0; i < n; i++)
			total += s[i].len;
		if (type == VBLK_T_OUT) {
			for (uint32_t i = 0; i < total; i++)
				data[i] = (uint8_t)rnd();
			uint32_t off = 0;
			for (unsigned i = 0; i < n; i++) {
				gwrite(x->v, s[i].gpa, data + off, s[i].len);
				off += s[i].len;
			}
		}
		/* what the device must answer */
		uint8_t want;
		uint32_t want_used = 1;
		int ro = x->b.disk.mode == VDISK_RO;
		int range_ok = total % 512 == 0 && sector <= NSECT && total / 512 <= NSECT - sector;
		switch (type) {
		case VBLK_T_IN:
			want = range_ok ? VBLK_S_OK : VBLK_S_IOERR;
			if (want == VBLK_S_OK)
				want_used = total + 1;
			break;
		case VBLK_T_OUT:
			want = range_ok && !ro ? VBLK_S_OK : VBLK_S_IOERR;
			break;
		case VBLK_T_FLUSH:
			want = VBLK_S_OK;
			break;
		case VBLK_T_GET_ID:
			want = VBLK_S_OK;
			want_used = (total < 20 ? total : 20) + 1;
			break;
		default:
			want = VBLK_S_UNSUPP;
		}
		uint32_t used;
		uint8_t status = request(x, type, sector, s, n, (int)rn(2), &used);
		if (status != want || used != want_used)
			fail_msg("op %ld: type %u sector %lu len %u: status %u used %u, want %u %u", op, type,
				 (unsigned long)sector, total, status, used, want, want_used);
		if (status == VBLK_S_OK && type == VBLK_T_IN) {
			uint64_t pos = sector * 512;
			for (unsigned i = 0; i < n; i++) {
				gread(x->v, s[i].gpa, got, s[i].len);
				if (memcmp(got, m + pos, s[i].len))
					fail_msg("op %ld: read sector %lu piece %u differs", op, (unsigned long)sector, i);
				pos += s[i].len;
			}
		}
		if (status == VBLK_S_OK && type == VBLK_T_OUT)
			memcpy(m + sector * 512, data, total);
		ok += status == VBLK_S_OK;
		ioerr += status == VBLK_S_IOERR;
		unsupp += status == VBLK_S_UNSUPP;
	}
	assert_true(ok > OPS / 2 && ioerr > 1000 && unsupp > 100);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rd(d[i], VMMIO_R_STATUS), 0xf);
		assert_int_equal(d[i]->b.broken_queues, 0);
		free(model[i]);
	}
}

/* The 16-bit ring indices wrap after 65536 requests: served across it, direct and indirect. */
static void test_ring_index_wrap(void **state)
{
	(void)state;
	struct drv *a = drv_new(VDISK_COW, "a");
	bring_up(a, F_WANT);
	uint8_t buf[1024];
	for (long i = 0; i < 65536 + 300; i++) {
		if (i % 997 == 0 || (i > 65500 && i < 65560)) {
			uint64_t sector = (uint64_t)i % (NSECT - 2);
			struct seg s = { DATA_GPA + (uint64_t)(i % 13) * 100, 1024, W };
			assert_int_equal(request(a, VBLK_T_IN, sector, &s, 1, (int)(i & 1), NULL), VBLK_S_OK);
			gread(a->v, s.gpa, buf, 1024);
			assert_memory_equal(buf, base_at(sector * 512), 1024);
		} else {
			assert_int_equal(request(a, VBLK_T_FLUSH, 0, NULL, 0, (int)(i & 1), NULL), VBLK_S_OK);
		}
	}
	assert_int_equal(a->q[0].avail_idx, 300);
	assert_int_equal(r16(a->v, USED_GPA + 2), 300);
	assert_int_equal(a->b.broken_queues, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_probe_and_config),
		T(test_read_write),
		T(test_indirect),
		T(test_flush_get_id_unsupported),
		T(test_read_only_disk),
		T(test_malformed_requests),
		T(test_broken_queues),
		T(test_read_into_rings),
		T(test_queue_setup),
		T(test_interrupts),
		T(test_reset_and_destroy),
		T(test_random_requests),
		T(test_ring_index_wrap),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
