/* Hostile test guest, virtio-blk phase (included by hostile.c: it uses its checking and
 * console helpers, and virtio.c's registers, rings and bring-up steps). The VM's disks are
 * modern virtio-mmio devices at 0x0A000000 + i*0x200 (the device tree's virtio_mmio nodes,
 * SPI 16+i). For each disk: a bring-up like Linux's, good reads (copied and zero-copy),
 * writes on the writable one; then everything a driver must not do, each answer checked:
 *   - bad requests: IOERR (1) or UNSUPP (2) in the status byte, used length 1, the device
 *     stays live; a chain without a writable byte is dropped (used length 0);
 *   - broken queues (loops, bad indices, buffers outside RAM, bad indirect tables, ...):
 *     no completion, Status shows DEVICE_NEEDS_RESET (0x40) with a config interrupt, kicks do
 *     nothing until a reset (Status = 0), after which a fresh bring-up works;
 *   - register junk (read-only and write-only registers, bad sizes, QueueSel and QueueNum out
 *     of range, refused feature sets and status transitions, config writes and reads past the
 *     config space): RAZ/WI or the documented refusal (lib/vmmio.h), never an exception;
 *   - data buffers over the rings and the request itself (the guest may hurt itself only);
 *   - vCPU 1 kicking the queue in a loop while vCPU 0 submits requests, vCPU 1 making the
 *     same chain available again and again while vCPU 0 is inside one kick (a note says how
 *     many requests one kick served), vCPU 1 writing all over a page that vCPU 0's zero-copy
 *     reads keep mapping disk cache pages into (the cache must stay clean).
 * The disks hold a pattern (tests/guests/hostile/mkdisk.py): word j of sector n is
 * seed ^ n * 0x9E3779B1 ^ j * 0x01000193 (mod 2^32), seed SEED_RW for a writable disk and
 * SEED_RO for one that offers VIRTIO_BLK_F_RO. Per disk the guest prints how many requests
 * the device must have counted as bad and how many broken queues it saw:
 *   hostile: disk slot=S ro=R capacity=C requests=N ok=K ioerr=I unsupp=U dropped=D bad_requests=B broken_queues=Q
 * which the integration test compares with stats.json, then
 *   hostile: disks done disks=N rw=W ro=R mismatches=M
 */

#define VIO_BASE      0x0A000000UL
#define VIO_STRIDE    0x200UL
#define VIO_SPI0      16

#define F_BARRIER     (1u << 0)
#define F_SIZE_MAX    (1u << 1)
#define F_SEG_MAX     (1u << 2)
#define F_RO          (1u << 5)
#define F_BLK_SIZE    (1u << 6)
#define F_FLUSH       (1u << 9)
#define F_INDIRECT    (1u << 28)
#define F_EVENT_IDX   (1u << 29)
#define T_IN     0u
#define T_OUT    1u
#define T_FLUSH  4u
#define T_GET_ID 8u
#define ST_OK     0
#define ST_IOERR  1
#define ST_UNSUPP 2

#define SEED_RW 0x4D424C4Bu         /* "MBLK" */
#define SEED_RO 0x524F4449u         /* "RODI" */
#define SEED_W  0x57524954u         /* "WRIT": what we write */

/* DMA memory: 1 MiB per slot from RAM + 16 MiB (far above our image and stacks) */
#define DMA_BASE   (RAM_BASE + 0x01000000UL)
#define DMA_SLOT   0x100000UL
#define O_DESC     0x0000
#define O_AVAIL    0x1000
#define O_USED     0x2000
#define O_HDR      0x3000
#define O_STATUS   0x3800
#define O_IND      0x4000           /* indirect tables, two pages */
#define O_DATA     0x8000           /* 16 data pages */
#define O_DATA2    0x18000          /* 16 more */
#define O_SCRATCH  0x28000
#define BIG_BUF    (RAM_BASE + 0x02000000UL)  /* 16 MiB nobody uses */

#define QNUM 8

struct vdev {
	struct vq q;                 /* slot, window, DMA memory, the request queue */
	u64 cap;
	u32 feat_lo, feat_hi, blk_size;
	int ro;
	u32 seed;
	u64 written;                 /* bit s: sector s (< 64) holds what we wrote (SEED_W) */
	/* what we saw */
	u64 requests, n_ok, n_ioerr, n_unsupp, n_dropped, breaks;
	u64 want_bad;                /* requests the device must count in bad_requests */
};

static struct vdev vdevs[VIO_MAX];
static int nvdev;

static void dmis(const struct vdev *d, const char *what, const char *field, u64 arg, u64 got, u64 want)
{
	vq_mis(&d->q, what, field, arg, got, want);
}

static int dcheck(const struct vdev *d, const char *what, const char *field, u64 arg, u64 got, u64 want)
{
	return vq_check(&d->q, what, field, arg, got, want);
}

/* ---- the pattern ---- */

static u32 pat(u32 seed, u64 sector, u32 j) { return seed ^ (u32)(sector * 0x9E3779B1UL) ^ (j * 0x01000193u); }

static u32 want_word(const struct vdev *d, u64 sector, u32 j)
{
	if (sector < 64 && (d->written >> sector & 1))
		return pat(SEED_W, sector, j);
	return pat(d->seed, sector, j);
}

static void fill_pattern(u64 buf, u64 sector, u64 nsect, u32 seed)
{
	for (u64 s = 0; s < nsect; s++)
		for (u32 j = 0; j < 128; j++)
			st32(buf + s * 512 + 4 * j, pat(seed, sector + s, j));
}

/* buf must hold sectors [sector, sector + nsect) as the disk has them: 1 if so */
static int check_data(const struct vdev *d, const char *what, u64 buf, u64 sector, u64 nsect)
{
	checks++;
	for (u64 s = 0; s < nsect; s++)
		for (u32 j = 0; j < 128; j++) {
			u32 got = ld32(buf + s * 512 + 4 * j), want = want_word(d, sector + s, j);
			if (got != want) {
				dmis(d, what, "data (arg = sector << 8 | word)", (sector + s) << 8 | j, got, want);
				return 0;
			}
		}
	return 1;
}

/* ---- requests ---- */

static void set_hdr(u64 a, u32 type, u64 sector)
{
	st32(a, type);
	st32(a + 4, 0);
	st64(a + 8, sector);
}

struct res { int done; u32 id, len; int status; };

static struct res finish(struct vdev *d, u16 head, u64 status_addr)
{
	struct res r = { 0, 0, 0, -1 };
	d->requests++;
	r.done = used_next(&d->q, &r.id, &r.len, WAIT_LONG);
	if (r.done && status_addr)
		r.status = ld8(status_addr);
	if (r.done)
		dcheck(d, "used element", "id", head, r.id, head);
	return r;
}

/* [header 16, R][data len, W for IN and the rest, R for OUT][status 1, W]; not waited for */
static u16 post_blk(struct vdev *d, u32 type, u64 sector, u64 data, u32 len)
{
	u64 hdr = d->q.dma + O_HDR, st = d->q.dma + O_STATUS;
	set_hdr(hdr, type, sector);
	st8(st, 0xFF);
	struct seg s[3];
	int n = 0;
	s[n++] = (struct seg){ hdr, 16, 0 };
	if (len)
		s[n++] = (struct seg){ data, len, type == T_OUT ? 0 : D_WRITE };
	s[n++] = (struct seg){ st, 1, D_WRITE };
	return post(&d->q, s, n);
}

static struct res blk(struct vdev *d, u32 type, u64 sector, u64 data, u32 len)
{
	return finish(d, post_blk(d, type, sector, data, len), d->q.dma + O_STATUS);
}

/* ---- bring-up ---- */

static void std_rings(struct vdev *d)
{
	d->q.desc = d->q.dma + O_DESC;
	d->q.avail = d->q.dma + O_AVAIL;
	d->q.used = d->q.dma + O_USED;
	d->q.num = QNUM;
}

static void reset_to_driver(struct vdev *d)
{
	vw(&d->q, R_STATUS, 0);
	vw(&d->q, R_STATUS, S_ACK);
	vw(&d->q, R_STATUS, S_ACK | S_DRIVER);
}

#define UP_FULL      0
#define UP_NO_DRV_OK 1

/* Linux's order (virtio 1.x 3.1.1), every step read back. feat_lo: the low feature word
 * the driver asks for (masked with what is offered); VERSION_1 always. 0 or -1. */
static int vblk_up(struct vdev *d, u32 feat_lo, int how)
{
	const char *w = "bring-up";
	int ok = vio_reset_to_driver(&d->q, w, 1);
	u32 lo, hi;
	vio_dev_features(&d->q, &lo, &hi);
	ok &= dcheck(d, w, "VERSION_1 offered (bit 32)", hi, hi & FH_VERSION_1, FH_VERSION_1);
	dcheck(d, w, "no packed ring / notification data / queue reset offered", hi,
	       hi & (FH_PACKED | FH_NOTIF_DATA | FH_RING_RESET), 0);
	vw(&d->q, R_DEV_FEATURES_SEL, 2);
	dcheck(d, w, "device features word 2", 0, vr(&d->q, R_DEV_FEATURES), 0);
	d->feat_lo = lo;
	d->feat_hi = hi;
	ok &= vio_features_ok(&d->q, w, feat_lo & lo, FH_VERSION_1, feat_lo);
	vw(&d->q, R_QUEUE_SEL, 0);
	u32 max = vr(&d->q, R_QUEUE_NUM_MAX);
	ok &= dcheck(d, w, "QueueNumMax >= our size, a power of 2", max, max >= d->q.num && !(max & (max - 1)), 1);
	zero_rings(&d->q);
	ok &= vio_queue_ready(&d->q, w, 0, d->q.desc);
	if (how == UP_NO_DRV_OK)
		return ok ? 0 : -1;
	ok &= vio_driver_ok(&d->q, w);
	return ok ? 0 : -1;
}

#define FEAT_WANT (F_SIZE_MAX | F_SEG_MAX | F_RO | F_BLK_SIZE | F_FLUSH | F_INDIRECT)

static void good_read(struct vdev *d, const char *what, u64 sector, u32 nsect, u64 buf);

/* Reset, a fresh bring-up, and a good read: the device must work again. */
static void recover(struct vdev *d)
{
	std_rings(d);
	if (vblk_up(d, FEAT_WANT, UP_FULL))
		dmis(d, "recover", "bring-up after reset failed", 0, vr(&d->q, R_STATUS), S_LIVE);
	good_read(d, "read after reset", 1, 1, d->q.dma + O_DATA);
}

/* r completed with status `want` and used length want_len, the device still live. */
static void expect_res(struct vdev *d, const char *what, u64 arg, struct res r, int want, u32 want_len)
{
	if (!dcheck(d, what, "completed", arg, r.done, 1)) {
		recover(d);
		return;
	}
	dcheck(d, what, "status byte", arg, (u64)(s64)r.status, (u64)(s64)want);
	dcheck(d, what, "used length", arg, r.len, want_len);
	if (r.status == ST_OK) d->n_ok++;
	else if (r.status == ST_IOERR) d->n_ioerr++;
	else if (r.status == ST_UNSUPP) d->n_unsupp++;
	if (want == ST_IOERR)
		d->want_bad++;
	if (!dcheck(d, what, "device status afterwards", arg, vr(&d->q, R_STATUS), S_LIVE))
		recover(d);
}

static void good_read(struct vdev *d, const char *what, u64 sector, u32 nsect, u64 buf)
{
	fill(buf, nsect * 512UL, 0xEE);
	struct res r = blk(d, T_IN, sector, buf, nsect * 512);
	expect_res(d, what, sector, r, ST_OK, nsect * 512 + 1);
	if (r.done && r.status == ST_OK)
		check_data(d, what, buf, sector, nsect);
}

static void good_write(struct vdev *d, const char *what, u64 sector, u32 nsect, u64 buf)
{
	fill_pattern(buf, sector, nsect, SEED_W);
	struct res r = blk(d, T_OUT, sector, buf, nsect * 512);
	expect_res(d, what, sector, r, ST_OK, 1);
	for (u64 s = sector; s < sector + nsect && s < 64; s++)
		d->written |= 1UL << s;
}

/* The last kick must have broken the queue: nothing completes, Status = live |
 * NEEDS_RESET with a config-change interrupt, kicks do nothing, the driver cannot clear
 * NEEDS_RESET, re-arming the queue does not revive it; then a reset and a fresh bring-up. */
static void expect_broken(struct vdev *d, const char *what, u64 arg)
{
	u32 id, len;
	checks++;
	if (used_next(&d->q, &id, &len, WAIT_SHORT))
		dmis(d, what, "a broken chain completed (used length)", arg, len, 0);
	u32 st = vr(&d->q, R_STATUS);
	if (dcheck(d, what, "status DEVICE_NEEDS_RESET", arg, st, S_LIVE | S_NEEDS_RESET))
		d->breaks++;
	u32 is = vr(&d->q, R_INT_STATUS);
	dcheck(d, what, "config-change interrupt", arg, is & 2, 2);
	vw(&d->q, R_INT_ACK, is);
	/* a good request now: nothing may happen */
	u64 buf = d->q.dma + O_DATA;
	fill(buf, 512, 0xEE);
	d->q.avail_idx = ld16(d->q.avail + 2);         /* (some attacks left it anywhere) */
	post_blk(d, T_IN, 1, buf, 512);
	kick(&d->q);
	checks++;
	if (ld16(d->q.used + 2) != d->q.used_idx || ld8(d->q.dma + O_STATUS) != 0xFF || ld64(buf) != 0xEEEEEEEEEEEEEEEEUL)
		dmis(d, what, "a kick after DEVICE_NEEDS_RESET did something (used.idx)", arg, ld16(d->q.used + 2), d->q.used_idx);
	vw(&d->q, R_STATUS, S_LIVE);                   /* the driver's copy of NEEDS_RESET: ignored */
	dcheck(d, what, "status after the driver wrote it without NEEDS_RESET", arg, vr(&d->q, R_STATUS), S_LIVE | S_NEEDS_RESET);
	vw(&d->q, R_QUEUE_READY, 0);
	vw(&d->q, R_QUEUE_READY, 1);
	kick(&d->q);
	checks++;
	if (ld16(d->q.used + 2) != d->q.used_idx || ld8(d->q.dma + O_STATUS) != 0xFF)
		dmis(d, what, "re-arming the queue revived a broken device (used.idx)", arg, ld16(d->q.used + 2), d->q.used_idx);
	recover(d);
}

/* ---- phase pieces ---- */

static const char *const slot_name[] = { "slot0", "slot1", "slot2", "slot3" };

static void disk_identify(struct vdev *d)
{
	const char *w = "identity";
	dcheck(d, w, "magic", 0, vr(&d->q, R_MAGIC), 0x74726976);
	dcheck(d, w, "version (modern)", 0, vr(&d->q, R_VERSION), 2);
	dcheck(d, w, "device id (block)", 0, vr(&d->q, R_DEVICE_ID), 2);
	dcheck(d, w, "vendor id", 0, vr(&d->q, R_VENDOR_ID), 0x4D42414C);
	dcheck(d, w, "device tree reg", d->q.slot, dt_vio_base[d->q.slot], d->q.mmio);
	dcheck(d, w, "device tree interrupts: SPI", d->q.slot, dt_vio_irq[d->q.slot][0], 0);
	dcheck(d, w, "device tree interrupts: number", d->q.slot, dt_vio_irq[d->q.slot][1], VIO_SPI0 + d->q.slot);
	std_rings(d);
	vblk_up(d, FEAT_WANT, UP_FULL);
	d->ro = !!(d->feat_lo & F_RO);
	d->seed = d->ro ? SEED_RO : SEED_RW;
	d->cap = (u64)vr(&d->q, R_CONFIG + 4) << 32 | vr(&d->q, R_CONFIG);
	d->blk_size = vr(&d->q, R_CONFIG + 20);
	u32 size_max = vr(&d->q, R_CONFIG + 8), seg_max = vr(&d->q, R_CONFIG + 12);
	dcheck(d, w, "capacity: whole 4 KiB blocks, not 0", d->cap, d->cap && !(d->cap & 7), 1);
	dcheck(d, w, "features: SIZE_MAX SEG_MAX BLK_SIZE FLUSH INDIRECT", d->feat_lo,
	       d->feat_lo & (F_SIZE_MAX | F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_INDIRECT),
	       F_SIZE_MAX | F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_INDIRECT);
	dcheck(d, w, "blk_size a power of 2 in 512..4096", d->blk_size,
	       d->blk_size >= 512 && d->blk_size <= 4096 && !(d->blk_size & (d->blk_size - 1)), 1);
	dcheck(d, w, "size_max >= 4096, seg_max >= 1", (u64)size_max << 32 | seg_max, size_max >= 4096 && seg_max >= 1, 1);
	puts_("hostile: disk ");
	puts_(slot_name[d->q.slot]);
	puts_(": capacity ");
	put_dec(d->cap);
	puts_(" sectors, features ");
	put_hex((u64)d->feat_hi << 32 | d->feat_lo);
	puts_(d->ro ? " (read-only)" : " (writable)");
	puts_(", blk_size ");
	put_dec(d->blk_size);
	puts_(", size_max ");
	put_dec(size_max);
	puts_(", seg_max ");
	put_dec(seg_max);
	puts_("\n");
}

static void disk_good(struct vdev *d)
{
	u64 data = d->q.dma + O_DATA, data2 = d->q.dma + O_DATA2;
	good_read(d, "read sector 0", 0, 1, data);
	good_read(d, "read block 0 into a page (zero-copy)", 0, 8, data);
	good_read(d, "read sectors 1..7 unaligned", 1, 7, data2 + 512);
	good_read(d, "read the last sector", d->cap - 1, 1, data);
	good_read(d, "read the last block", d->cap - 8, 8, data + 0x1000);
	good_read(d, "read 64 KiB", 8, 128, data);
	/* GET_ID: 20 bytes, "mb-<disk name>" */
	u64 id = d->q.dma + O_SCRATCH;
	fill(id, 32, 0xEE);
	struct res r = blk(d, T_GET_ID, 0, id, 20);
	expect_res(d, "get id", 0, r, ST_OK, 21);
	dcheck(d, "get id", "starts with mb-", 0, ld32(id) & 0xFFFFFF, 0x2D626D);
	dcheck(d, "get id", "bytes past 20 untouched", 0, ld8(id + 20), 0xEE);
	puts_("hostile: disk ");
	puts_(slot_name[d->q.slot]);
	puts_(": id ");
	for (int i = 0; i < 20 && ld8(id + i) >= 0x20 && ld8(id + i) < 0x7F; i++)
		putc_(ld8(id + i));
	puts_("\n");
	r = blk(d, T_FLUSH, 0, 0, 0);
	expect_res(d, "flush", 0, r, ST_OK, 1);
	r = blk(d, T_IN, 3, 0, 0);
	expect_res(d, "read of 0 bytes", 3, r, ST_OK, 1);

	/* A zero-copy page the guest then writes: its copy only, the disk is unchanged. */
	good_read(d, "zero-copy read of block 1", 8, 8, data2);
	fill(data2, 4096, 0x5A);
	good_read(d, "block 1 again after writing over the zero-copy page", 8, 8, data2 + 0x1000);
	good_read(d, "sector 9 after writing over the zero-copy page (copied)", 9, 1, data + 512);
	checks++;
	if (ld64(data2 + 8) != 0x5A5A5A5A5A5A5A5AUL)
		dmis(d, "zero-copy page", "our own write to it did not stick", 0, ld64(data2 + 8), 0x5A5A5A5A5A5A5A5AUL);

	if (d->ro)
		return;
	good_write(d, "write sector 5", 5, 1, data);
	good_read(d, "read sectors 4..6 after writing 5", 4, 3, data2 + 0x2000);
	good_write(d, "write block 2 (sectors 16..23)", 16, 8, data + 0x1000);
	good_read(d, "read block 2 back into a page", 16, 8, data2 + 0x3000);
	good_write(d, "write sectors 26..27", 26, 2, data + 0x2000);
	good_read(d, "read block 3 (partly written) into a page", 24, 8, data2 + 0x4000);
	r = blk(d, T_FLUSH, 0, 0, 0);
	expect_res(d, "flush after writes", 0, r, ST_OK, 1);
}

/* A standard request expected to fail with `want`, its data buffer untouched. */
static void bad_io(struct vdev *d, const char *what, u32 type, u64 sector, u32 len, int want)
{
	u64 buf = d->q.dma + O_DATA;
	fill(buf, 8192, 0xEE);
	struct res r = blk(d, type, sector, buf, len);
	expect_res(d, what, sector, r, want, 1);
	checks++;
	if (ld64(buf) != 0xEEEEEEEEEEEEEEEEUL || ld64(buf + 4096) != 0xEEEEEEEEEEEEEEEEUL)
		dmis(d, what, "data buffer written", sector, ld64(buf), 0xEEEEEEEEEEEEEEEEUL);
}

#define DROPPED (-1)   /* custom(): the chain must come back with used length 0 */
#define RAW     (-2)   /* custom(): the caller checks */

/* A custom chain, expected to complete with status `want` and used length want_len. */
static struct res custom(struct vdev *d, const char *what, u64 arg, const struct seg *s, int n, int want, u32 want_len)
{
	u64 st = d->q.dma + O_STATUS;
	st8(st, 0xFF);
	struct res r = finish(d, post(&d->q, s, n), st);
	if (want == RAW)
		return r;
	if (want >= 0) {
		expect_res(d, what, arg, r, want, want_len);
		return r;
	}
	/* dropped: the chain comes back with nothing written */
	if (dcheck(d, what, "dropped chain came back", arg, r.done, 1)) {
		dcheck(d, what, "used length of a dropped chain", arg, r.len, 0);
		d->n_dropped++;
		d->want_bad++;
	}
	if (!dcheck(d, what, "device status afterwards", arg, vr(&d->q, R_STATUS), S_LIVE))
		recover(d);
	return r;
}

static void disk_bad_requests(struct vdev *d)
{
	u64 cap = d->cap, hdr = d->q.dma + O_HDR, st = d->q.dma + O_STATUS, buf = d->q.dma + O_DATA;
	if (!quiet)
		puts_("hostile: disk bad requests\n");
	bad_io(d, "read of 100 bytes", T_IN, 0, 100, ST_IOERR);
	bad_io(d, "read of 513 bytes", T_IN, 0, 513, ST_IOERR);
	bad_io(d, "read of 4095 bytes", T_IN, 0, 4095, ST_IOERR);
	bad_io(d, "read at the capacity", T_IN, cap, 512, ST_IOERR);
	bad_io(d, "read across the end", T_IN, cap - 1, 1024, ST_IOERR);
	bad_io(d, "read of 4 KiB across the end", T_IN, cap - 4, 4096, ST_IOERR);
	bad_io(d, "read at sector 2^64-1", T_IN, ~0UL, 512, ST_IOERR);
	bad_io(d, "read at sector 2^64-8 (sector+len wraps)", T_IN, ~0UL - 7, 4096, ST_IOERR);
	bad_io(d, "read at sector 2^55 (bytes wrap)", T_IN, 1UL << 55, 512, ST_IOERR);
	bad_io(d, "read at sector 2^63", T_IN, 1UL << 63, 512, ST_IOERR);
	bad_io(d, "zero-byte read at capacity+1", T_IN, cap + 1, 0, ST_IOERR);
	if (!d->ro) {
		bad_io(d, "write at the capacity", T_OUT, cap, 512, ST_IOERR);
		bad_io(d, "write across the end", T_OUT, cap - 1, 1024, ST_IOERR);
		bad_io(d, "write at sector 2^64-1", T_OUT, ~0UL, 512, ST_IOERR);
		bad_io(d, "write at sector 2^64-8", T_OUT, ~0UL - 7, 4096, ST_IOERR);
		bad_io(d, "write of 100 bytes", T_OUT, 40, 100, ST_IOERR);
	} else {
		bad_io(d, "write to a read-only disk", T_OUT, 0, 512, ST_IOERR);
		bad_io(d, "write of 4 KiB to a read-only disk", T_OUT, 8, 4096, ST_IOERR);
		bad_io(d, "write of 0 bytes to a read-only disk", T_OUT, 0, 0, ST_IOERR);
		good_read(d, "read-only disk after the refused writes", 0, 16, buf);
		struct res r = blk(d, T_FLUSH, 0, 0, 0);
		expect_res(d, "flush on a read-only disk", 0, r, ST_OK, 1);
	}
	const u32 types[] = { 2, 3, 5, 6, 7, 9, 11, 13, 0x10, 0x80000000u, 0xFFFFFFFFu };
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		bad_io(d, "unknown request type", types[i], 0, 512, ST_UNSUPP);
		bad_io(d, "unknown request type, no data", types[i], 0, 0, ST_UNSUPP);
	}

	/* headers */
	struct seg s[8];
	set_hdr(hdr, T_IN, 2);
	fill(buf, 1024, 0xEE);
	s[0] = (struct seg){ hdr, 8, 0 };
	s[1] = (struct seg){ buf, 512, D_WRITE };
	s[2] = (struct seg){ st, 1, D_WRITE };
	custom(d, "8-byte header", 8, s, 3, ST_IOERR, 1);
	s[0].len = 15;
	custom(d, "15-byte header", 15, s, 3, ST_IOERR, 1);
	s[0].len = 0;
	custom(d, "0-byte header descriptor", 0, s, 3, ST_IOERR, 1);
	custom(d, "no header at all", 0, s + 1, 2, ST_IOERR, 1);
	checks++;
	if (ld64(buf) != 0xEEEEEEEEEEEEEEEEUL)
		dmis(d, "short headers", "data buffer written", 0, ld64(buf), 0xEEEEEEEEEEEEEEEEUL);
	/* a header in two pieces is a header */
	s[0] = (struct seg){ hdr, 8, 0 };
	s[1] = (struct seg){ hdr + 8, 8, 0 };
	s[2] = (struct seg){ buf, 512, D_WRITE };
	s[3] = (struct seg){ st, 1, D_WRITE };
	struct res r = custom(d, "header split 8+8", 2, s, 4, ST_OK, 513);
	if (r.done && r.status == ST_OK)
		check_data(d, "header split 8+8", buf, 2, 1);
	/* the status byte as the last byte of the data descriptor */
	set_hdr(hdr, T_IN, 3);
	fill(buf, 1024, 0xEE);
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ buf, 513, D_WRITE };
	st8(buf + 512, 0xFF);
	r = custom(d, "data and status in one descriptor", 3, s, 2, RAW, 0);
	checks++;
	if (!r.done || ld8(buf + 512) != ST_OK || r.len != 513)
		dmis(d, "data and status in one descriptor", "status byte / used length", 3, ld8(buf + 512) | (u64)r.len << 8, 513 << 8);
	else
		d->n_ok++;
	check_data(d, "data and status in one descriptor", buf, 3, 1);
	dcheck(d, "data and status in one descriptor", "device status", 0, vr(&d->q, R_STATUS), S_LIVE);
	/* scattered data: 100 + 312 + 100 bytes */
	set_hdr(hdr, T_IN, 4);
	fill(buf, 4096, 0xEE);
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ buf, 100, D_WRITE };
	s[2] = (struct seg){ buf + 1024, 312, D_WRITE };
	s[3] = (struct seg){ buf + 2048 + 4, 100, D_WRITE };
	s[4] = (struct seg){ st, 1, D_WRITE };
	r = custom(d, "read scattered 100+312+100", 4, s, 5, ST_OK, 513);
	u64 scratch = d->q.dma + O_SCRATCH;
	copy_bytes(scratch, buf, 100);
	copy_bytes(scratch + 100, buf + 1024, 312);
	copy_bytes(scratch + 412, buf + 2048 + 4, 100);
	check_data(d, "read scattered 100+312+100", scratch, 4, 1);
	/* a zero-length status descriptor: the status goes in the data's last byte, and
	 * 511 bytes of data is not whole sectors */
	set_hdr(hdr, T_IN, 2);
	fill(buf, 1024, 0xEE);
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ buf, 512, D_WRITE };
	s[2] = (struct seg){ st, 0, D_WRITE };
	r = custom(d, "zero-length status descriptor", 0, s, 3, RAW, 0);
	checks++;
	if (!r.done || r.len != 1 || ld8(buf + 511) != ST_IOERR || ld8(st) != 0xFF)
		dmis(d, "zero-length status descriptor", "used len / status in data[511] / status byte",
		     0, (u64)r.len << 16 | (u64)ld8(buf + 511) << 8 | ld8(st), 1 << 16 | ST_IOERR << 8 | 0xFF);
	else
		d->n_ioerr++, d->want_bad++;
	dcheck(d, "zero-length status descriptor", "device status", 0, vr(&d->q, R_STATUS), S_LIVE);
	/* no writable byte at all: dropped, the queue goes on */
	set_hdr(hdr, T_IN, 0);
	s[0] = (struct seg){ hdr, 16, 0 };
	custom(d, "header only, no status byte", 0, s, 1, DROPPED, 0);
	set_hdr(hdr, T_OUT, 40);
	fill_pattern(buf, 40, 1, SEED_W);
	s[1] = (struct seg){ buf, 512, 0 };
	custom(d, "write without a status byte", 40, s, 2, DROPPED, 0);
	good_read(d, "sector 40 after a dropped write (not written)", 40, 1, buf + 1024);
	set_hdr(hdr, 0x12345678, 0);
	custom(d, "unknown type without a status byte", 0, s, 1, DROPPED, 0);
	good_read(d, "read after the dropped chains", 0, 2, buf);
}

/* Register junk on a live device: nothing may change, nothing may fault. */
static void disk_registers(struct vdev *d)
{
	const char *w = "registers";
	struct snap s0 = take();
	if (!quiet)
		puts_("hostile: disk register junk\n");
	/* read-only registers: writes ignored */
	const u32 ro_regs[] = { R_MAGIC, R_VERSION, R_DEVICE_ID, R_VENDOR_ID, R_DEV_FEATURES, R_QUEUE_NUM_MAX,
				R_INT_STATUS, R_CONFIG_GEN, R_SHM_LEN_LO, R_SHM_LEN_HI, R_SHM_BASE_LO, R_SHM_BASE_HI };
	for (unsigned i = 0; i < sizeof(ro_regs) / sizeof(ro_regs[0]); i++) {
		u32 before = vr(&d->q, ro_regs[i]);
		vw(&d->q, ro_regs[i], ~before);
		vw(&d->q, ro_regs[i], (u32)rnd());
		dcheck(d, w, "read-only register after writes", ro_regs[i], vr(&d->q, ro_regs[i]), before);
	}
	dcheck(d, w, "SHM length (none)", 0, vr(&d->q, R_SHM_LEN_LO), 0xFFFFFFFF);
	/* write-only, reserved and unimplemented registers read as 0 */
	for (u32 off = 0; off < R_CONFIG; off += 4) {
		switch (off) {
		case R_MAGIC: case R_VERSION: case R_DEVICE_ID: case R_VENDOR_ID: case R_DEV_FEATURES:
		case R_QUEUE_NUM_MAX: case R_QUEUE_READY: case R_INT_STATUS: case R_STATUS: case R_CONFIG_GEN:
		case R_SHM_LEN_LO: case R_SHM_LEN_HI: case R_SHM_BASE_LO: case R_SHM_BASE_HI:
			continue;
		}
		dcheck(d, w, "write-only or reserved register reads 0", off, vr(&d->q, off), 0);
	}
	/* reserved / QueueReset / legacy offsets: writes of junk go nowhere */
	for (u32 off = 0; off < R_CONFIG; off += 4) {
		switch (off) {
		case R_MAGIC: case R_VERSION: case R_DEVICE_ID: case R_VENDOR_ID: case R_DEV_FEATURES:
		case R_DEV_FEATURES_SEL: case R_DRV_FEATURES: case R_DRV_FEATURES_SEL: case R_QUEUE_SEL:
		case R_QUEUE_NUM_MAX: case R_QUEUE_NUM: case R_QUEUE_READY: case R_NOTIFY: case R_INT_STATUS:
		case R_INT_ACK: case R_STATUS: case R_DESC_LO: case R_DESC_HI: case R_DRIVER_LO: case R_DRIVER_HI:
		case R_DEVICE_LO: case R_DEVICE_HI: case R_SHM_SEL: case R_CONFIG_GEN:
			continue;
		}
		vw(&d->q, off, (u32)rnd());
	}
	dcheck(d, w, "status after junk in reserved registers", 0, vr(&d->q, R_STATUS), S_LIVE);
	/* bad sizes: 1, 2 and 8-byte accesses to 32-bit registers are RAZ/WI */
	const u32 some[] = { R_MAGIC, R_VERSION, R_STATUS, R_QUEUE_READY, R_QUEUE_NUM_MAX, R_DEV_FEATURES };
	for (unsigned i = 0; i < sizeof(some) / sizeof(some[0]); i++) {
		u64 a = d->q.mmio + some[i];
		dcheck(d, w, "1-byte read of a register", some[i], mmio_rd(a, 1), 0);
		dcheck(d, w, "1-byte read of a register + 3", some[i], mmio_rd(a + 3, 1), 0);
		dcheck(d, w, "2-byte read of a register", some[i], mmio_rd(a, 2), 0);
		dcheck(d, w, "2-byte read of a register + 2", some[i], mmio_rd(a + 2, 2), 0);
		dcheck(d, w, "8-byte read of a register pair", some[i], mmio_rd(a & ~7UL, 8), 0);
	}
	/* writes of 0 in the wrong size would reset the device or take the queue down */
	for (int sz = 1; sz <= 8; sz *= 2) {
		if (sz == 4)
			continue;
		u64 m = sz == 8 ? ~7UL : ~0UL;           /* (aligned: our MMU is off) */
		mmio_wr(d->q.mmio + R_STATUS, sz, 0);
		mmio_wr((d->q.mmio + R_QUEUE_READY) & m, sz, 0);
		mmio_wr(d->q.mmio + R_QUEUE_SEL, sz, 0xFF);
		mmio_wr((d->q.mmio + R_INT_ACK) & m, sz, ~0UL);
		dcheck(d, w, "status after a wrong-size write of 0", sz, vr(&d->q, R_STATUS), S_LIVE);
		dcheck(d, w, "QueueReady after a wrong-size write of 0", sz, vr(&d->q, R_QUEUE_READY), 1);
	}
	/* a wrong-size kick is no kick, nor is a kick of another queue */
	u64 buf = d->q.dma + O_DATA;
	u32 id, len;
	fill(buf, 512, 0xEE);
	{
		u64 hdr = d->q.dma + O_HDR, st = d->q.dma + O_STATUS;
		set_hdr(hdr, T_IN, 6);
		st8(st, 0xFF);
		u16 first = d->q.avail_idx & (d->q.num - 1), n1 = (first + 1) & (d->q.num - 1), n2 = (first + 2) & (d->q.num - 1);
		put_desc(&d->q, first, hdr, 16, D_NEXT, n1);
		put_desc(&d->q, n1, buf, 512, D_WRITE | D_NEXT, n2);
		put_desc(&d->q, n2, st, 1, D_WRITE, 0);
		publish(&d->q, first);
		mmio_wr(d->q.mmio + R_NOTIFY, 8, 0);
		mmio_wr(d->q.mmio + R_NOTIFY, 2, 0);
		mmio_wr(d->q.mmio + R_NOTIFY, 1, 0);
		vw(&d->q, R_NOTIFY, 5);                      /* no queue 5 */
		vw(&d->q, R_NOTIFY, 1);
		vw(&d->q, R_NOTIFY, 0xFFFFFFFF);
		vw(&d->q, R_NOTIFY, 0x10000);                /* queue 0 with junk above the index */
		checks++;
		if (used_next(&d->q, &id, &len, WAIT_SHORT))
			dmis(d, w, "a wrong-size kick or a kick of another queue served queue 0", 0, len, 0);
		kick(&d->q);
		struct res r = finish(d, first, st);
		expect_res(d, "the request after the bad kicks", 6, r, ST_OK, 513);
		if (r.done && r.status == ST_OK)
			check_data(d, "the request after the bad kicks", buf, 6, 1);
	}
	/* QueueSel out of range */
	const u32 sels[] = { 1, 3, 4, 0x100, 0x80000000u, 0xFFFFFFFFu };
	for (unsigned i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
		vw(&d->q, R_QUEUE_SEL, sels[i]);
		dcheck(d, w, "QueueNumMax of an absent queue", sels[i], vr(&d->q, R_QUEUE_NUM_MAX), 0);
		dcheck(d, w, "QueueReady of an absent queue", sels[i], vr(&d->q, R_QUEUE_READY), 0);
		vw(&d->q, R_QUEUE_NUM, 8);
		vw(&d->q, R_DESC_LO, 0);
		vw(&d->q, R_QUEUE_READY, 1);
		dcheck(d, w, "QueueReady of an absent queue after writing 1", sels[i], vr(&d->q, R_QUEUE_READY), 0);
		vw(&d->q, R_NOTIFY, sels[i]);
	}
	vw(&d->q, R_QUEUE_SEL, 0);
	dcheck(d, w, "queue 0 still ready", 0, vr(&d->q, R_QUEUE_READY), 1);
	/* a live queue's size and addresses cannot change */
	vw(&d->q, R_QUEUE_NUM, 4);
	vw(&d->q, R_QUEUE_NUM, 3);
	vw(&d->q, R_DESC_LO, 0);
	vw(&d->q, R_DRIVER_LO, 0x1234);
	vw(&d->q, R_DEVICE_LO, 2);
	vw(&d->q, R_DEVICE_HI, 0xFFFF);
	vw(&d->q, R_QUEUE_READY, 2);
	dcheck(d, w, "QueueReady after writing 2", 0, vr(&d->q, R_QUEUE_READY), 1);
	vw(&d->q, R_QUEUE_READY, 1);
	for (int i = 0; i < 12; i++)                 /* 12 > QNUM: the ring wraps */
		good_read(d, "read after changing a live queue's registers", 8 + i, 1, buf);
	/* status junk on a live device */
	const u32 bad_status[] = { S_ACK | S_DRIVER, S_ACK, S_LIVE | 0x10, S_LIVE | 0x20, 0xFFFFFFFFu,
				   S_LIVE | 0x100, S_LIVE | S_NEEDS_RESET, S_LIVE & ~S_FEATURES_OK };
	for (unsigned i = 0; i < sizeof(bad_status) / sizeof(bad_status[0]); i++) {
		vw(&d->q, R_STATUS, bad_status[i]);
		dcheck(d, w, "status after a refused status write", bad_status[i], vr(&d->q, R_STATUS), S_LIVE);
	}
	/* interrupts: a completion raises bit 0, ACK clears only what it names */
	vw(&d->q, R_INT_ACK, 0xFFFFFFFF);
	dcheck(d, w, "interrupt status after ack all", 0, vr(&d->q, R_INT_STATUS), 0);
	good_read(d, "read for an interrupt", 7, 1, buf);
	dcheck(d, w, "interrupt status after a completion", 0, vr(&d->q, R_INT_STATUS), 1);
	vw(&d->q, R_INT_ACK, 2);
	dcheck(d, w, "interrupt status after acking another bit", 0, vr(&d->q, R_INT_STATUS), 1);
	vw(&d->q, R_INT_STATUS, 0);
	dcheck(d, w, "interrupt status after writing it", 0, vr(&d->q, R_INT_STATUS), 1);
	vw(&d->q, R_INT_ACK, 1);
	dcheck(d, w, "interrupt status after ack", 0, vr(&d->q, R_INT_STATUS), 0);
	st16(d->q.avail, 1);                           /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	good_read(d, "read with interrupts suppressed", 7, 1, buf);
	dcheck(d, w, "interrupt status with NO_INTERRUPT", 0, vr(&d->q, R_INT_STATUS), 0);
	st16(d->q.avail, 0);
	/* config space: the fields in every size, writes ignored, nothing past it */
	u64 cfg = d->q.mmio + R_CONFIG;
	dcheck(d, w, "config capacity, 8-byte read", 0, mmio_rd(cfg, 8), d->cap);
	dcheck(d, w, "config capacity, 2-byte read", 0, mmio_rd(cfg, 2), d->cap & 0xFFFF);
	dcheck(d, w, "config capacity byte 1", 0, mmio_rd(cfg + 1, 1), (d->cap >> 8) & 0xFF);
	dcheck(d, w, "config blk_size byte 1", 0, mmio_rd(cfg + 21, 1), (d->blk_size >> 8) & 0xFF);
	u32 gen = vr(&d->q, R_CONFIG_GEN);
	const u32 cfg_offs[] = { 0, 4, 8, 12, 16, 20, 24, 32, 36, 0x40, 0xF8, 0xFC };
	for (unsigned i = 0; i < sizeof(cfg_offs) / sizeof(cfg_offs[0]); i++)
		for (int sz = 1; sz <= 8; sz *= 2)
			if (!(cfg_offs[i] & (sz - 1)))
				mmio_wr(cfg + cfg_offs[i], sz, rnd());
	mmio_wr(cfg + 0xFF, 1, 0xFF);
	dcheck(d, w, "capacity after config writes", 0, mmio_rd(cfg, 8), d->cap);
	dcheck(d, w, "blk_size after config writes", 0, vr(&d->q, R_CONFIG + 20), d->blk_size);
	dcheck(d, w, "config generation unchanged", 0, vr(&d->q, R_CONFIG_GEN), gen);
	const u32 past[] = { 36, 40, 0x40, 0x80, 0xF8, 0xFC };
	for (unsigned i = 0; i < sizeof(past) / sizeof(past[0]); i++) {
		dcheck(d, w, "config read past its end (4 bytes)", past[i], mmio_rd(cfg + past[i], 4), 0);
		dcheck(d, w, "config read past its end (1 byte)", past[i], mmio_rd(cfg + past[i] + 3, 1), 0);
		if (!(past[i] & 7))
			dcheck(d, w, "config read past its end (8 bytes)", past[i], mmio_rd(cfg + past[i], 8), 0);
	}
	dcheck(d, w, "config read across its end (8 bytes at 32)", 32, mmio_rd(cfg + 32, 8), 0);
	dcheck(d, w, "status after the register junk", 0, vr(&d->q, R_STATUS), S_LIVE);
	good_read(d, "read after the register junk", 0, 8, buf);
	checks++;
	if (exc[0].sync != s0.sync)
		dmis(d, w, "exceptions during register junk (last ESR)", exc[0].sync - s0.sync, exc[0].last_esr, 0);
}

/* Bring-ups gone wrong, each refused the documented way, then a good one. */
static void disk_negotiation(struct vdev *d)
{
	const char *w = "negotiation";
	struct snap s0 = take();
	if (!quiet)
		puts_("hostile: disk negotiation junk\n");
	/* DRIVER_OK without FEATURES_OK */
	reset_to_driver(d);
	vw(&d->q, R_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
	dcheck(d, w, "DRIVER_OK without FEATURES_OK", 0, vr(&d->q, R_STATUS), S_ACK | S_DRIVER);
	vw(&d->q, R_STATUS, S_LIVE);                     /* features 0: no VERSION_1 */
	dcheck(d, w, "FEATURES_OK with no features", 0, vr(&d->q, R_STATUS), S_ACK | S_DRIVER);
	/* the status can go nowhere but up, and only through known bits */
	vw(&d->q, R_STATUS, S_ACK);
	dcheck(d, w, "status bit cleared by the driver", 0, vr(&d->q, R_STATUS), S_ACK | S_DRIVER);
	vw(&d->q, R_STATUS, S_ACK | S_DRIVER | 0x10);
	dcheck(d, w, "status with an unknown bit", 0, vr(&d->q, R_STATUS), S_ACK | S_DRIVER);
	/* feature sets the device must refuse: FEATURES_OK reads back clear */
	const u32 bad_lo[] = { F_INDIRECT, F_BARRIER | F_INDIRECT, F_EVENT_IDX, 0, 0, 0 };
	const u32 bad_hi[] = { 0, FH_VERSION_1, FH_VERSION_1, FH_VERSION_1 | FH_PACKED, FH_VERSION_1 | FH_RING_RESET,
			       FH_VERSION_1 | 0x80000000u };
	for (unsigned i = 0; i < sizeof(bad_lo) / sizeof(bad_lo[0]); i++) {
		reset_to_driver(d);
		vw(&d->q, R_DRV_FEATURES_SEL, 0);
		vw(&d->q, R_DRV_FEATURES, bad_lo[i]);
		vw(&d->q, R_DRV_FEATURES_SEL, 1);
		vw(&d->q, R_DRV_FEATURES, bad_hi[i]);
		vw(&d->q, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
		dcheck(d, w, "refused feature set: FEATURES_OK clear", (u64)bad_hi[i] << 32 | bad_lo[i],
		       vr(&d->q, R_STATUS), S_ACK | S_DRIVER);
		/* the queue cannot go live without FEATURES_OK */
		std_rings(d);
		zero_rings(&d->q);
		vw(&d->q, R_QUEUE_SEL, 0);
		program_queue(&d->q);
		vw(&d->q, R_QUEUE_READY, 1);
		dcheck(d, w, "QueueReady without FEATURES_OK", i, vr(&d->q, R_QUEUE_READY), 0);
		vw(&d->q, R_STATUS, S_LIVE);
		dcheck(d, w, "DRIVER_OK after refused features", i, vr(&d->q, R_STATUS), S_ACK | S_DRIVER);
	}
	/* DriverFeaturesSel 2 and up go nowhere; then a good set is accepted */
	reset_to_driver(d);
	vw(&d->q, R_DRV_FEATURES_SEL, 2);
	vw(&d->q, R_DRV_FEATURES, 0xFFFFFFFF);
	vw(&d->q, R_DRV_FEATURES_SEL, 7);
	vw(&d->q, R_DRV_FEATURES, 0xFFFFFFFF);
	vw(&d->q, R_DRV_FEATURES_SEL, 0);
	vw(&d->q, R_DRV_FEATURES, F_INDIRECT);
	vw(&d->q, R_DRV_FEATURES_SEL, 1);
	vw(&d->q, R_DRV_FEATURES, FH_VERSION_1);
	vw(&d->q, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	dcheck(d, w, "features accepted after writes to selector 2 and 7", 0, vr(&d->q, R_STATUS), S_ACK | S_DRIVER | S_FEATURES_OK);
	/* frozen once accepted */
	vw(&d->q, R_DRV_FEATURES_SEL, 1);
	vw(&d->q, R_DRV_FEATURES, FH_VERSION_1 | FH_PACKED);
	/* QueueNum: not a power of 2, 0, above the maximum: ignored (the last good one stays) */
	std_rings(d);
	zero_rings(&d->q);
	vw(&d->q, R_QUEUE_SEL, 0);
	program_queue(&d->q);
	const u32 bad_num[] = { 0, 3, 12, 129, 256, 0x10000, 0xFFFFFFFFu };
	for (unsigned i = 0; i < sizeof(bad_num) / sizeof(bad_num[0]); i++)
		vw(&d->q, R_QUEUE_NUM, bad_num[i]);
	/* bad ring addresses: QueueReady stays 0 */
	const u64 bad_desc[] = { d->q.dma + O_DESC + 8, 0, 0x08000000UL, VIO_BASE, ram_end - 64, ram_end, 0x1000000000000UL };
	for (unsigned i = 0; i < sizeof(bad_desc) / sizeof(bad_desc[0]); i++) {
		vw(&d->q, R_DESC_LO, (u32)bad_desc[i]);
		vw(&d->q, R_DESC_HI, (u32)(bad_desc[i] >> 32));
		vw(&d->q, R_QUEUE_READY, 1);
		dcheck(d, w, "QueueReady with a bad descriptor table address", bad_desc[i], vr(&d->q, R_QUEUE_READY), 0);
	}
	vw(&d->q, R_DESC_LO, (u32)d->q.desc);
	vw(&d->q, R_DESC_HI, (u32)(d->q.desc >> 32));
	const u64 bad_avail[] = { d->q.avail + 1, 0, ram_end - 4, 0xFFFFFFFFFFFFFFF0UL };
	for (unsigned i = 0; i < sizeof(bad_avail) / sizeof(bad_avail[0]); i++) {
		vw(&d->q, R_DRIVER_LO, (u32)bad_avail[i]);
		vw(&d->q, R_DRIVER_HI, (u32)(bad_avail[i] >> 32));
		vw(&d->q, R_QUEUE_READY, 1);
		dcheck(d, w, "QueueReady with a bad driver area address", bad_avail[i], vr(&d->q, R_QUEUE_READY), 0);
	}
	vw(&d->q, R_DRIVER_LO, (u32)d->q.avail);
	vw(&d->q, R_DRIVER_HI, (u32)(d->q.avail >> 32));
	const u64 bad_used[] = { d->q.used + 2, 0, GICD_BASE, UART_BASE, d->q.mmio, ram_end - 16 };
	for (unsigned i = 0; i < sizeof(bad_used) / sizeof(bad_used[0]); i++) {
		vw(&d->q, R_DEVICE_LO, (u32)bad_used[i]);
		vw(&d->q, R_DEVICE_HI, (u32)(bad_used[i] >> 32));
		vw(&d->q, R_QUEUE_READY, 1);
		dcheck(d, w, "QueueReady with a bad device area address", bad_used[i], vr(&d->q, R_QUEUE_READY), 0);
	}
	/* (a ring that straddles a page boundary: legal for the spec, refused by this device;
	 * informational) */
	vw(&d->q, R_DEVICE_LO, (u32)(d->q.used + 0xFF0));
	vw(&d->q, R_DEVICE_HI, (u32)((d->q.used + 0xFF0) >> 32));
	vw(&d->q, R_QUEUE_READY, 1);
	u32 straddle = vr(&d->q, R_QUEUE_READY);
	if (straddle) {
		vw(&d->q, R_QUEUE_READY, 0);
	}
	if (!quiet) {
		puts_("hostile: note: a used ring across a page boundary: QueueReady reads ");
		put_dec(straddle);
		puts_("\n");
	}
	vw(&d->q, R_DEVICE_LO, (u32)d->q.used);
	vw(&d->q, R_DEVICE_HI, (u32)(d->q.used >> 32));
	vw(&d->q, R_QUEUE_READY, 1);
	dcheck(d, w, "QueueReady with good addresses", 0, vr(&d->q, R_QUEUE_READY), 1);
	/* a kick before DRIVER_OK is held back; DRIVER_OK serves what was queued */
	u64 buf = d->q.dma + O_DATA;
	fill(buf, 1024, 0xEE);
	u16 head = post_blk(d, T_IN, 10, buf, 1024);
	u32 id, len;
	checks++;
	if (used_next(&d->q, &id, &len, WAIT_SHORT))
		dmis(d, w, "served before DRIVER_OK", 0, len, 0);
	vw(&d->q, R_STATUS, S_LIVE);
	dcheck(d, w, "DRIVER_OK", 0, vr(&d->q, R_STATUS), S_LIVE);
	struct res r = finish(d, head, d->q.dma + O_STATUS);
	expect_res(d, "request queued before DRIVER_OK", 10, r, ST_OK, 1025);
	if (r.done && r.status == ST_OK)
		check_data(d, "request queued before DRIVER_OK", buf, 10, 2);
	/* the ring is QNUM entries: go around it twice (a wrong QueueNum would show) */
	for (int i = 0; i < 2 * QNUM + 1; i++)
		good_read(d, "read after the QueueNum junk", (u64)i * 3, 1 + (i & 3), buf);
	/* FAILED is a status the driver may set: then a reset brings it back */
	vw(&d->q, R_STATUS, S_LIVE | S_FAILED);
	dcheck(d, w, "status FAILED", 0, vr(&d->q, R_STATUS), S_LIVE | S_FAILED);
	recover(d);
	checks++;
	if (exc[0].sync != s0.sync)
		dmis(d, w, "exceptions during negotiation junk (last ESR)", exc[0].sync - s0.sync, exc[0].last_esr, 0);
}

/* ---- queue-breaking ---- */

static void break_with(struct vdev *d, const char *what, u64 arg, const struct seg *s, int n)
{
	post(&d->q, s, n);
	expect_broken(d, what, arg);
}

static void disk_break(struct vdev *d)
{
	u64 hdr = d->q.dma + O_HDR, st = d->q.dma + O_STATUS, buf = d->q.dma + O_DATA, ind = d->q.dma + O_IND;
	struct seg s[4];
	if (!quiet)
		puts_("hostile: disk queue breaking\n");
	set_hdr(hdr, T_IN, 0);
	/* descriptor loops */
	u16 h = d->q.avail_idx & (d->q.num - 1), h1 = (h + 1) & (d->q.num - 1);
	put_desc(&d->q, h, hdr, 16, D_NEXT, h1);
	put_desc(&d->q, h1, hdr, 16, D_NEXT, h);
	publish(&d->q, h);
	kick(&d->q);
	expect_broken(d, "descriptor loop of 2", h);
	h = d->q.avail_idx & (d->q.num - 1);
	put_desc(&d->q, h, hdr, 16, D_NEXT, h);
	publish(&d->q, h);
	kick(&d->q);
	expect_broken(d, "descriptor pointing at itself", h);
	/* a loop among writable descriptors after a good start */
	h = d->q.avail_idx & (d->q.num - 1);
	h1 = (h + 1) & (d->q.num - 1);
	u16 h2 = (h + 2) & (d->q.num - 1);
	put_desc(&d->q, h, hdr, 16, D_NEXT, h1);
	put_desc(&d->q, h1, buf, 512, D_WRITE | D_NEXT, h2);
	put_desc(&d->q, h2, st, 1, D_WRITE | D_NEXT, h1);
	publish(&d->q, h);
	kick(&d->q);
	expect_broken(d, "descriptor loop after a good start", h);
	/* next and head out of range */
	const u16 bad_next[] = { QNUM, QNUM + 1, 0x7FFF, 0x8000, 0xFFFF };
	for (unsigned i = 0; i < sizeof(bad_next) / sizeof(bad_next[0]); i++) {
		h = d->q.avail_idx & (d->q.num - 1);
		put_desc(&d->q, h, hdr, 16, D_NEXT, bad_next[i]);
		publish(&d->q, h);
		kick(&d->q);
		expect_broken(d, "next index >= queue size", bad_next[i]);
	}
	const u16 bad_head[] = { QNUM, 0x100, 0xFFFF };
	for (unsigned i = 0; i < sizeof(bad_head) / sizeof(bad_head[0]); i++) {
		publish(&d->q, bad_head[i]);
		kick(&d->q);
		expect_broken(d, "head index >= queue size", bad_head[i]);
	}
	/* avail.idx runs ahead of what the driver may have made available */
	const u16 jumps[] = { QNUM + 1, 0x8000, 0xFFFF };
	for (unsigned i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
		d->q.avail_idx += jumps[i] - 1;
		post_blk(d, T_IN, 0, buf, 512);
		expect_broken(d, "avail.idx jumps ahead", jumps[i]);
	}
	/* buffers outside guest RAM (or wrapping the address space) */
	const u64 bad_buf[] = { 0, 0x1000, 0x1000000000000UL, ram_end, ram_end - 256, RAM_BASE - 256,
				0x08000000UL, VIO_BASE, d->q.mmio, 0xFFFFFFFFFFFFFF00UL, 0x3FFFFFFFFFFUL };
	for (unsigned i = 0; i < sizeof(bad_buf) / sizeof(bad_buf[0]); i++) {
		post_blk(d, T_IN, 0, bad_buf[i], 512);
		expect_broken(d, "data buffer outside RAM", bad_buf[i]);
	}
	const u64 bad_hdr[] = { 0, 0x1000000000000UL, ram_end - 8, 0x08000000UL };
	const u64 bad_st[] = { 0, 0x1000000000000UL, ram_end, 0x08000000UL };
	for (unsigned i = 0; i < 4; i++) {
		s[0] = (struct seg){ bad_hdr[i], 16, 0 };
		s[1] = (struct seg){ buf, 512, D_WRITE };
		s[2] = (struct seg){ st, 1, D_WRITE };
		break_with(d, "header outside RAM", bad_hdr[i], s, 3);
		s[0] = (struct seg){ hdr, 16, 0 };
		s[2] = (struct seg){ bad_st[i], 1, D_WRITE };
		break_with(d, "status byte outside RAM", bad_st[i], s, 3);
	}
	/* a data buffer of 16 MiB: more than a request may be */
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ BIG_BUF, 16u << 20, D_WRITE };
	s[2] = (struct seg){ st, 1, D_WRITE };
	break_with(d, "16 MiB data buffer", 16u << 20, s, 3);
	s[1] = (struct seg){ BIG_BUF, 0xFFFFFFFFu, D_WRITE };
	break_with(d, "4 GiB data buffer", 0xFFFFFFFFu, s, 3);
	/* a readable descriptor after a writable one */
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ buf, 512, D_WRITE };
	s[2] = (struct seg){ buf + 512, 512, 0 };
	s[3] = (struct seg){ st, 1, D_WRITE };
	break_with(d, "readable after writable", 0, s, 4);

	/* indirect tables: first a good one, then broken ones */
	set_hdr(hdr, T_IN, 11);
	fill(buf, 1024, 0xEE);
	put_desc_at(ind, 0, hdr, 16, D_NEXT, 1);
	put_desc_at(ind, 1, buf, 1024, D_WRITE | D_NEXT, 2);
	put_desc_at(ind, 2, st, 1, D_WRITE, 0);
	s[0] = (struct seg){ ind, 48, D_INDIRECT };
	struct res r = custom(d, "indirect read", 11, s, 1, ST_OK, 1025);
	if (r.done && r.status == ST_OK)
		check_data(d, "indirect read", buf, 11, 2);
	/* direct header, then an indirect table with the rest */
	set_hdr(hdr, T_IN, 13);
	put_desc_at(ind, 0, buf, 512, D_WRITE | D_NEXT, 1);
	put_desc_at(ind, 1, st, 1, D_WRITE, 0);
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ ind, 32, D_INDIRECT | D_WRITE };
	r = custom(d, "direct header + indirect table", 13, s, 2, ST_OK, 513);
	if (r.done && r.status == ST_OK)
		check_data(d, "direct header + indirect table", buf, 13, 1);
	/* broken ones */
	put_desc_at(ind, 0, hdr, 16, D_NEXT, 1);
	put_desc_at(ind, 1, buf, 512, D_WRITE | D_NEXT, 2);
	put_desc_at(ind, 2, st, 1, D_WRITE, 0);
	const u32 bad_len[] = { 0, 8, 24, 47, 16 * 1025 };
	for (unsigned i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
		s[0] = (struct seg){ ind, bad_len[i], D_INDIRECT };
		break_with(d, "indirect table of bad length", bad_len[i], s, 1);
	}
	/* a table with an entry past the chain's end (never walked): fine */
	s[0] = (struct seg){ ind, 64, D_INDIRECT };
	put_desc_at(ind, 3, 0, 0, 0, 0);
	r = custom(d, "indirect table longer than its chain", 0, s, 1, ST_OK, 513);
	const u64 bad_tab[] = { 0, 0x1000000000000UL, ram_end - 16, VIO_BASE, 0xFFFFFFFFFFFFFFF0UL };
	for (unsigned i = 0; i < sizeof(bad_tab) / sizeof(bad_tab[0]); i++) {
		s[0] = (struct seg){ bad_tab[i], 48, D_INDIRECT };
		break_with(d, "indirect table outside RAM", bad_tab[i], s, 1);
	}
	/* nested */
	put_desc_at(ind + 0x800, 0, hdr, 16, D_NEXT, 1);
	put_desc_at(ind + 0x800, 1, ind, 48, D_INDIRECT, 0);
	s[0] = (struct seg){ ind + 0x800, 32, D_INDIRECT };
	break_with(d, "nested indirect table", 0, s, 1);
	put_desc_at(ind + 0x800, 0, ind + 0x800, 16, D_INDIRECT, 0);
	s[0] = (struct seg){ ind + 0x800, 16, D_INDIRECT };
	break_with(d, "indirect table pointing at itself", 0, s, 1);
	/* INDIRECT with NEXT */
	h = d->q.avail_idx & (d->q.num - 1);
	h1 = (h + 1) & (d->q.num - 1);
	put_desc(&d->q, h, ind, 48, D_INDIRECT | D_NEXT, h1);
	put_desc(&d->q, h1, st, 1, D_WRITE, 0);
	publish(&d->q, h);
	kick(&d->q);
	expect_broken(d, "indirect with NEXT", h);
	/* next out of the table, loops inside it */
	put_desc_at(ind, 0, hdr, 16, D_NEXT, 3);
	s[0] = (struct seg){ ind, 48, D_INDIRECT };
	break_with(d, "indirect next past the table", 3, s, 1);
	put_desc_at(ind, 0, hdr, 16, D_NEXT, 1);
	put_desc_at(ind, 1, hdr, 16, D_NEXT, 0);
	break_with(d, "indirect loop", 0, s, 1);
	put_desc_at(ind, 1, buf, 512, D_WRITE | D_NEXT, 2);
	put_desc_at(ind, 2, hdr, 16, 0, 0);
	break_with(d, "indirect: readable after writable", 0, s, 1);
	/* more segments than the device takes: a direct header and 256 indirect ones */
	for (u32 i = 0; i < 256; i++)
		put_desc_at(ind, i, buf, 512, D_WRITE | (i < 255 ? D_NEXT : 0), (u16)(i + 1));
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ ind, 4096, D_INDIRECT };
	break_with(d, "257 segments", 257, s, 2);
	/* a table across a page boundary (spec-legal; this device refuses it: informational) */
	set_hdr(hdr, T_IN, 12);
	put_desc_at(ind + 0xFF0, 0, hdr, 16, D_NEXT, 1);
	put_desc_at(ind + 0xFF0, 1, buf, 512, D_WRITE | D_NEXT, 2);
	put_desc_at(ind + 0xFF0, 2, st, 1, D_WRITE, 0);
	s[0] = (struct seg){ ind + 0xFF0, 48, D_INDIRECT };
	st8(st, 0xFF);
	post(&d->q, s, 1);
	u32 id, len;
	int done = used_next(&d->q, &id, &len, WAIT_SHORT);
	u32 stat = vr(&d->q, R_STATUS);
	if (!quiet) {
		puts_("hostile: note: indirect table across a page boundary: ");
		puts_(done ? "served, status byte " : "not served, device status ");
		put_hex(done ? ld8(st) : stat);
		puts_("\n");
	}
	if (stat & S_NEEDS_RESET)
		d->breaks++;
	recover(d);

	/* INDIRECT when the driver did not take VIRTIO_F_INDIRECT_DESC */
	std_rings(d);
	vblk_up(d, FEAT_WANT & ~F_INDIRECT, UP_FULL);
	good_read(d, "read without indirect descriptors", 0, 1, buf);
	put_desc_at(ind, 0, hdr, 16, D_NEXT, 1);
	put_desc_at(ind, 1, buf, 512, D_WRITE | D_NEXT, 2);
	put_desc_at(ind, 2, st, 1, D_WRITE, 0);
	s[0] = (struct seg){ ind, 48, D_INDIRECT };
	break_with(d, "indirect not negotiated", 0, s, 1);
}

/* ---- data buffers over our own rings and request ---- */

/* After an overlap attack: the device either completed (we may have wrecked our own ring)
 * or broke the queue; either way a reset must bring it back. */
static void after_overlap(struct vdev *d, const char *what)
{
	u32 st = vr(&d->q, R_STATUS);
	if (st & S_NEEDS_RESET)
		d->breaks++;
	if (!quiet) {
		puts_("hostile: overlap ");
		puts_(what);
		puts_(": device status ");
		put_hex(st);
		puts_("\n");
	}
	recover(d);
}

static void disk_overlap(struct vdev *d)
{
	u64 hdr = d->q.dma + O_HDR, st = d->q.dma + O_STATUS, buf = d->q.dma + O_DATA;
	struct seg s[4];
	struct res r;
	if (!quiet)
		puts_("hostile: disk data buffers over the rings\n");
	/* a whole block (zero-copy) into the used ring's page: the push that follows writes
	 * our copy; the rest of the page holds the block */
	r = blk(d, T_IN, 8, d->q.used, 4096);
	checks++;
	if (!r.done || r.status != ST_OK || r.len != 4097)
		dmis(d, "block into the used ring page", "done / status / used length", 8, (u64)r.done << 32 | (u64)(r.status & 0xFF) << 16 | r.len, 1UL << 32 | 4097);
	else
		d->n_ok++;
	check_data(d, "block into the used ring page (past the ring)", d->q.used + 512, 9, 7);
	after_overlap(d, "used ring page");
	/* 512 bytes (copied) over the used ring itself */
	r = blk(d, T_IN, 9, d->q.used, 512);
	dcheck(d, "sector over the used ring", "completed (used.idx the device's)", 9, r.done, 1);
	after_overlap(d, "used ring");
	/* a whole block into the descriptor table's page */
	r = blk(d, T_IN, 16, d->q.desc, 4096);
	dcheck(d, "block into the descriptor table page", "completed", 16, r.done && r.status == ST_OK, 1);
	after_overlap(d, "descriptor table page");
	/* a whole block into the available ring's page: avail.idx becomes disk data; choose a
	 * sector whose data puts it far ahead, so the device must call the queue broken */
	u64 sec = 64;
	while ((u16)((pat(d->seed, sec, 0) >> 16) - (d->q.avail_idx + 1)) <= QNUM)
		sec += 8;
	post_blk(d, T_IN, sec, d->q.avail, 4096);
	checks++;
	if (!(vr(&d->q, R_STATUS) & S_NEEDS_RESET))
		dmis(d, "block into the available ring page", "device status (avail.idx is junk now)", sec, vr(&d->q, R_STATUS), S_LIVE | S_NEEDS_RESET);
	after_overlap(d, "available ring page");
	/* data over the header it came with */
	set_hdr(hdr, T_IN, 17);
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ hdr, 512, D_WRITE };
	s[2] = (struct seg){ st, 1, D_WRITE };
	r = custom(d, "data over its own header", 17, s, 3, ST_OK, 513);
	if (r.done && r.status == ST_OK)
		check_data(d, "data over its own header", hdr, 17, 1);
	/* a whole block over the header's page: the status byte is in it, written after */
	set_hdr(hdr, T_IN, 24);
	s[1] = (struct seg){ hdr, 4096, D_WRITE };
	r = custom(d, "block over the header and status page", 24, s, 3, RAW, 0);
	checks++;
	if (!r.done || r.len != 4097 || ld8(st) != ST_OK)
		dmis(d, "block over the header and status page", "used length / status", 24, (u64)r.len << 8 | ld8(st), 4097 << 8);
	else
		d->n_ok++;
	check_data(d, "block over the header page (sector 25)", hdr + 512, 25, 1);
	after_overlap(d, "header page");
	/* the status byte inside the data */
	set_hdr(hdr, T_IN, 18);
	fill(buf, 1024, 0xEE);
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ buf, 512, D_WRITE };
	s[2] = (struct seg){ buf + 100, 1, D_WRITE };
	r = custom(d, "status byte inside the data", 18, s, 3, RAW, 0);
	checks++;
	if (!r.done || r.len != 513 || ld8(buf + 100) != ST_OK)
		dmis(d, "status byte inside the data", "used length / status", 18, (u64)r.len << 8 | ld8(buf + 100), 513 << 8);
	else
		d->n_ok++;
	/* one page twice in one request, and 16 times through an indirect table: the device
	 * maps cache pages over it again and again; the last block wins */
	u64 pg = d->q.dma + O_DATA2;
	set_hdr(hdr, T_IN, 32);
	s[0] = (struct seg){ hdr, 16, 0 };
	s[1] = (struct seg){ pg, 4096, D_WRITE };
	s[2] = (struct seg){ pg, 4096, D_WRITE };
	s[3] = (struct seg){ st, 1, D_WRITE };
	r = custom(d, "one page twice", 32, s, 4, ST_OK, 8193);
	if (r.done && r.status == ST_OK)
		check_data(d, "one page twice", pg, 40, 8);
	u64 ind = d->q.dma + O_IND;
	put_desc_at(ind, 0, hdr, 16, D_NEXT, 1);
	for (u32 i = 1; i <= 16; i++)
		put_desc_at(ind, i, pg, 4096, D_WRITE | D_NEXT, (u16)(i + 1));
	put_desc_at(ind, 17, st, 1, D_WRITE, 0);
	set_hdr(hdr, T_IN, 0);
	s[0] = (struct seg){ ind, 18 * 16, D_INDIRECT };
	r = custom(d, "one page 16 times", 0, s, 1, ST_OK, 65537);
	if (r.done && r.status == ST_OK)
		check_data(d, "one page 16 times", pg, 120, 8);
	/* the indirect table is the data buffer */
	put_desc_at(ind, 0, hdr, 16, D_NEXT, 1);
	put_desc_at(ind, 1, ind, 4096, D_WRITE | D_NEXT, 2);
	put_desc_at(ind, 2, st, 1, D_WRITE, 0);
	set_hdr(hdr, T_IN, 48);
	s[0] = (struct seg){ ind, 48, D_INDIRECT };
	r = custom(d, "data over its indirect table", 48, s, 1, ST_OK, 4097);
	if (r.done && r.status == ST_OK)
		check_data(d, "data over its indirect table", ind, 48, 8);
	/* a write from the ring pages, then read back */
	if (!d->ro) {
		r = blk(d, T_OUT, 56, d->q.desc, 1024);
		expect_res(d, "write from the descriptor table", 56, r, ST_OK, 1);
		copy_bytes(d->q.dma + O_SCRATCH, d->q.desc, 1024);
		r = blk(d, T_IN, 56, buf, 1024);
		expect_res(d, "read back what came from the descriptor table", 56, r, ST_OK, 1025);
		checks++;
		for (u64 i = 0; i < 1024; i += 8)
			if (ld64(buf + i) != ld64(d->q.dma + O_SCRATCH + i)) {
				dmis(d, "write from the descriptor table", "read back", i, ld64(buf + i), ld64(d->q.dma + O_SCRATCH + i));
				break;
			}
		/* (sectors 56..57 are not the pattern any more: nothing reads them again) */
	}
	good_read(d, "read after the overlap attacks", 0, 8, buf);
}

/* ---- vCPU 1 kicks (or feeds the ring) while vCPU 0 submits ---- */

static volatile u64 kick_mmio, kick_stop, kick_count, kick_started;
static volatile u64 feed_avail, feed_used, feed_num, feed_n, feed_done;
static volatile u64 scribble_page, scribbles;

/* vCPU 1, DISK_SCRIBBLER_CTX: write all over one page until told to stop (5 s at most). */
static void disk_scribbler(void)
{
	kick_started = 1;
	dsb();
	u64 t0 = now_ticks(), limit = 5 * tick_hz();
	while (!kick_stop && now_ticks() - t0 < limit) {
		for (u64 off = 0; off < 4096; off += 64)
			st64(scribble_page + off, 0xDEADBEEF00000000UL | off);
		scribbles++;
	}
}

/* vCPU 1, DISK_KICKER_CTX: kick queue 0 until told to stop (5 s at most). */
static void disk_kicker(void)
{
	kick_started = 1;
	dsb();
	u64 t0 = now_ticks(), limit = 5 * tick_hz();
	while (!kick_stop && now_ticks() - t0 < limit) {
		mmio_w32(kick_mmio + R_NOTIFY, 0);
		(void)mmio_r32(kick_mmio + R_STATUS);
		kick_count++;
	}
}

/* vCPU 1, DISK_FEEDER_CTX: make the same chain available again and again (never more than
 * the ring holds outstanding), feed_n times, without ever kicking (5 s at most). */
static void disk_feeder(void)
{
	u16 idx = ld16(feed_avail + 2);
	u64 t0 = now_ticks(), limit = 5 * tick_hz();
	kick_started = 1;
	dsb();
	while (feed_done < feed_n && now_ticks() - t0 < limit) {
		if ((u16)(idx - ld16(feed_used + 2)) >= feed_num)
			continue;
		idx++;
		st16(feed_avail + 2, idx);
		dsb();
		feed_done++;
	}
}

static void start_vcpu1(struct vdev *d, u64 ctx, const char *what)
{
	kick_started = 0;
	dsb();
	expect_call(0, PSCI_CPU_ON64, 1, (u64)secondary_entry, ctx, 0, what);
	u64 t0 = now_ticks();
	while (!kick_started && now_ticks() - t0 < 3 * tick_hz())
		;
	dcheck(d, what, "vcpu1 started", 0, kick_started, 1);
}

static void disk_concurrent(struct vdev *d, int nvcpus)
{
	if (nvcpus < 2)
		return;
	if (!quiet)
		puts_("hostile: disk requests while vcpu1 kicks\n");
	kick_mmio = d->q.mmio;
	kick_stop = 0;
	kick_count = 0;
	start_vcpu1(d, DISK_KICKER_CTX, "cpu_on vcpu1 (disk kicker)");
	u64 buf = d->q.dma + O_DATA;
	u64 by_vcpu1 = 0;
	for (int i = 0; i < 64; i++) {
		u64 sector = (u64)(i * 5) % 40;
		u32 n = 1 + (i % 8);
		u64 b = (i & 1) ? buf : buf + 512 * (i & 6);
		fill(b, n * 512UL, 0xEE);
		/* made available without a kick: vCPU 1's kicks serve it, or ours after 2 ms */
		nokick = 1;
		u16 head = post_blk(d, T_IN, sector, b, n * 512);
		nokick = 0;
		u64 t0 = now_ticks();
		while (ld16(d->q.used + 2) == d->q.used_idx && now_ticks() - t0 < WAIT_SHORT)
			;
		if (ld16(d->q.used + 2) != d->q.used_idx)
			by_vcpu1++;
		else
			kick(&d->q);
		struct res r = finish(d, head, d->q.dma + O_STATUS);
		expect_res(d, "read while vcpu1 kicks", sector, r, ST_OK, n * 512 + 1);
		if (r.done && r.status == ST_OK)
			check_data(d, "read while vcpu1 kicks", b, sector, n);
	}
	kick_stop = 1;
	dsb();
	dcheck(d, "kicker", "vcpu1 off afterwards", 0, (u64)wait_affinity(1, 1), 1);
	if (!quiet) {
		puts_("hostile: note: ");
		put_dec(by_vcpu1);
		puts_(" of 64 requests were served by vcpu1's kicks\n");
	}

	/* vCPU 1 keeps the ring full while vCPU 0 is inside one kick: how long does the monitor
	 * stay in that one trap? (one vCPU's guest time; the pCPU runs nothing else meanwhile) */
	const u64 N = 3000;
	u64 hdr = d->q.dma + O_HDR, st = d->q.dma + O_STATUS;
	set_hdr(hdr, T_IN, 7);
	fill(buf, 512, 0xEE);
	st8(st, 0xFF);
	put_desc(&d->q, 0, hdr, 16, D_NEXT, 1);
	put_desc(&d->q, 1, buf, 512, D_WRITE | D_NEXT, 2);
	put_desc(&d->q, 2, st, 1, D_WRITE, 0);
	for (u32 i = 0; i < d->q.num; i++)
		st16(d->q.avail + 4 + 2 * i, 0);
	dsb();
	u16 used0 = ld16(d->q.used + 2);
	dcheck(d, "feeder", "nothing outstanding", used0, ld16(d->q.avail + 2), used0);
	feed_avail = d->q.avail;
	feed_used = d->q.used;
	feed_num = d->q.num;
	feed_n = N;
	feed_done = 0;
	start_vcpu1(d, DISK_FEEDER_CTX, "cpu_on vcpu1 (disk feeder)");
	u64 t0 = now_ticks();
	while (ld16(d->q.avail + 2) == used0 && now_ticks() - t0 < tick_hz())
		;
	u64 kicks = 0, most = 0, most_ticks = 0;
	while ((u16)(ld16(d->q.used + 2) - used0) != (u16)N && now_ticks() - t0 < 6 * tick_hz()) {
		if (ld16(d->q.avail + 2) == ld16(d->q.used + 2))
			continue;
		u16 before = ld16(d->q.used + 2);
		u64 tk = now_ticks();
		kick(&d->q);
		tk = now_ticks() - tk;
		u16 served = ld16(d->q.used + 2) - before;
		kicks++;
		if (served > most)
			most = served, most_ticks = tk;
	}
	dcheck(d, "feeder", "requests completed", N, (u16)(ld16(d->q.used + 2) - used0), (u16)N);
	dcheck(d, "feeder", "vcpu1 fed them all", N, feed_done, N);
	dcheck(d, "feeder", "last status byte", 0, ld8(st), ST_OK);
	check_data(d, "feeder", buf, 7, 1);
	dcheck(d, "feeder", "device status", 0, vr(&d->q, R_STATUS), S_LIVE);
	d->requests += N;
	d->n_ok += N;
	d->q.avail_idx = ld16(d->q.avail + 2);
	d->q.used_idx = ld16(d->q.used + 2);
	dcheck(d, "feeder", "vcpu1 off afterwards", 0, (u64)wait_affinity(1, 1), 1);

	/* vCPU 1 writes all over a page while our zero-copy reads map disk cache pages there:
	 * its writes must land in copies, never in the cache (the Linux VM reads these blocks) */
	u64 page = d->q.dma + O_SCRATCH;
	scribble_page = page;
	scribbles = 0;
	kick_stop = 0;
	start_vcpu1(d, DISK_SCRIBBLER_CTX, "cpu_on vcpu1 (scribbler)");
	for (int i = 0; i < 96; i++) {
		struct res r = blk(d, T_IN, 64 + 8 * (i % 8), page, 4096);
		expect_res(d, "zero-copy read into a page vcpu1 writes", 64 + 8 * (i % 8), r, ST_OK, 4097);
	}
	kick_stop = 1;
	dsb();
	dcheck(d, "scribbler", "vcpu1 off afterwards", 0, (u64)wait_affinity(1, 1), 1);
	for (int i = 0; i < 8; i++) {
		good_read(d, "block after the scribbling (zero-copy)", 64 + 8 * i, 8, d->q.dma + O_DATA + 0x1000 * i);
		good_read(d, "sector after the scribbling (copied)", 64 + 8 * i + 3, 1, d->q.dma + O_DATA2 + 512);
	}
	if (!quiet) {
		puts_("hostile: note: one kick served up to ");
		put_dec(most);
		puts_(" of ");
		put_dec(N);
		puts_(" requests that vcpu1 kept making available, in ");
		put_dec(most_ticks * 1000000 / tick_hz());
		puts_(" us (");
		put_dec(kicks);
		puts_(" kicks in all)\n");
		puts_("hostile: note: vcpu1 wrote over the page ");
		puts_(scribbles > 96 ? "more often than we read into it\n" : "less often than we read into it\n");
	}
	recover(d);
}

/* ---- the phase ---- */

/* after_reboot: the devices must be as after a reset, before we touch them */
static void phase_disks(int nvcpus, int after_reboot)
{
	u64 mism0 = mismatches;
	struct snap s0 = take();
	u64 probes = 0;
	puts_("hostile: phase disks: ");
	put_dec(dt_nvio);
	puts_(" virtio-mmio nodes\n");
	checks++;
	if (dt_vio_extra)
		mismatch("more than 4 virtio-mmio nodes", 0, dt_nvio + dt_vio_extra, VIO_MAX);
	nvdev = 0;
	for (int i = 0; i < dt_nvio; i++) {
		struct vdev *d = &vdevs[nvdev];
		memset(d, 0, sizeof(*d));
		d->q.kind = "disk";
		d->q.slot = i;
		d->q.mmio = VIO_BASE + (u64)i * VIO_STRIDE;
		d->q.dma = DMA_BASE + (u64)i * DMA_SLOT;
		nvdev++;
	}
	/* slots without a disk, and past the last slot: nothing there, every access aborts */
	for (int i = nvdev; i <= VIO_MAX; i++) {
		if (i >= 4 && i - 4 < dt_nnet)
			continue;                    /* a virtio-net slot (net.c) */
		u64 a = VIO_BASE + (u64)i * VIO_STRIDE;
		struct snap s = take();
		sink += mmio_r32(a + R_MAGIC);
		expect_one(s, EC_DABT_CUR, a, "absent virtio slot: read", a);
		s = take();
		mmio_w32(a + R_STATUS, 0);
		expect_one(s, EC_DABT_CUR, a + R_STATUS, "absent virtio slot: write", a);
		probes += 2;
	}
	if (nvdev) {
		/* no syndrome (a pair, a write-back): abort even on a present device */
		struct snap s = take();
		access(A_LDPW, VIO_BASE, 0);
		expect_one(s, EC_DABT_CUR, VIO_BASE, "ldp on a virtio device", VIO_BASE);
		s = take();
		access(A_STR_PRE, VIO_BASE + R_STATUS - 8, 0);
		expect_one(s, EC_DABT_CUR, VIO_BASE + R_STATUS, "str pre-index on a virtio device", VIO_BASE);
		probes += 2;
	}
	int rw = -1, ro = -1;
	for (int i = 0; i < nvdev && after_reboot; i++) {
		struct vdev *d = &vdevs[i];
		dcheck(d, "after reboot", "status", 0, vr(&d->q, R_STATUS), 0);
		dcheck(d, "after reboot", "interrupt status", 0, vr(&d->q, R_INT_STATUS), 0);
		vw(&d->q, R_QUEUE_SEL, 0);
		dcheck(d, "after reboot", "QueueReady", 0, vr(&d->q, R_QUEUE_READY), 0);
		dcheck(d, "after reboot", "config generation", 0, vr(&d->q, R_CONFIG_GEN), 0);
	}
	for (int i = 0; i < nvdev; i++) {
		disk_identify(&vdevs[i]);
		if (vdevs[i].ro && ro < 0)
			ro = i;
		if (!vdevs[i].ro && rw < 0)
			rw = i;
	}
	for (int i = 0; i < nvdev; i++)
		disk_good(&vdevs[i]);
	for (int i = 0; i < nvdev; i++)
		disk_bad_requests(&vdevs[i]);
	if (rw >= 0) {
		struct vdev *d = &vdevs[rw];
		disk_registers(d);
		disk_negotiation(d);
		disk_break(d);
		disk_overlap(d);
		disk_concurrent(d, nvcpus);
		/* our writes outlived every reset (they live as long as the VM) */
		good_read(d, "written sectors after all the resets", 0, 32, d->q.dma + O_DATA);
	}
	if (ro >= 0) {
		/* a few on the read-only disk too */
		struct vdev *d = &vdevs[ro];
		u64 hdr = d->q.dma + O_HDR;
		set_hdr(hdr, T_IN, 0);
		u16 h = d->q.avail_idx & (d->q.num - 1);
		put_desc(&d->q, h, hdr, 16, D_NEXT, h);
		publish(&d->q, h);
		kick(&d->q);
		expect_broken(d, "descriptor loop (read-only disk)", h);
		post_blk(d, T_IN, 0, 0x1000000000000UL, 4096);
		expect_broken(d, "buffer outside RAM (read-only disk)", 0);
		disk_overlap(d);
	}
	if (nvdev)
		good_read(&vdevs[0], "last read", 0, 8, vdevs[0].q.dma + O_DATA);
	checks++;
	if (exc[0].sync - s0.sync != probes)
		mismatch("exceptions in the disk phase (besides the probes)", exc[0].last_esr, exc[0].sync - s0.sync, probes);
	for (int i = 0; i < nvdev; i++) {
		struct vdev *d = &vdevs[i];
		puts_("hostile: disk slot=");
		put_dec(d->q.slot);
		puts_(" ro=");
		put_dec(d->ro);
		puts_(" capacity=");
		put_dec(d->cap);
		puts_(" requests=");
		put_dec(d->requests);
		puts_(" ok=");
		put_dec(d->n_ok);
		puts_(" ioerr=");
		put_dec(d->n_ioerr);
		puts_(" unsupp=");
		put_dec(d->n_unsupp);
		puts_(" dropped=");
		put_dec(d->n_dropped);
		puts_(" bad_requests=");
		put_dec(d->want_bad);
		puts_(" broken_queues=");
		put_dec(d->breaks);
		puts_("\n");
	}
	puts_("hostile: disks done disks=");
	put_dec(nvdev);
	puts_(" rw=");
	put_dec(rw >= 0);
	puts_(" ro=");
	put_dec(ro >= 0);
	puts_(" mismatches=");
	put_dec(mismatches - mism0);
	puts_("\n");
}

/* cmdline "disk-reboot": boot 0 runs the disk phase, leaves the devices in a mess (a live
 * queue with a request made available but not kicked and an interrupt not acknowledged,
 * zero-copy pages mapped, a broken queue, writes in the cow overlay) and reboots; boot 1
 * finds them as after a reset, its overlay gone (the disk phase reads the pattern), and
 * runs the disk phase again. */
static void phase_disks_reboot(int nvcpus, u32 boot)
{
	if (boot > 1) {
		mismatch("booted more than twice", 0, boot, 1);
		return;
	}
	phase_disks(nvcpus, boot == 1);
	if (boot == 1)
		return;
	for (int i = 0; i < nvdev; i++) {
		struct vdev *d = &vdevs[i];
		recover(d);
		if (!d->ro)
			good_write(d, "write before the reboot", 5, 1, d->q.dma + O_DATA);
		good_read(d, "zero-copy read before the reboot", 8, 16, d->q.dma + O_DATA2);
		dcheck(d, "before the reboot", "interrupt pending", 0, vr(&d->q, R_INT_STATUS) & 1, 1);
		if (d->ro) {
			post_blk(d, T_IN, 0, 0, 512);
			expect_broken(d, "buffer at 0 before the reboot", 0);
			post_blk(d, T_IN, 0, 0, 512);
			dcheck(d, "before the reboot", "broken", 0, vr(&d->q, R_STATUS), S_LIVE | S_NEEDS_RESET);
		} else {
			nokick = 1;
			post_blk(d, T_IN, 1, d->q.dma + O_DATA, 512);
			nokick = 0;
		}
	}
	puts_("hostile: rebooting with the disks in a mess, mismatches so far=");
	put_dec(mismatches);
	puts_("\n");
	CALL("hvc #0", PSCI_SYSTEM_RESET, 0, 0, 0, 0, 0, 0, 0);
	mismatch("SYSTEM_RESET returned", 0, 1, 0);
}
