/* The guest-facing virtio-blk device: config space, request parsing and validation, status.
 * The data path is vdisk's. See vblk.h. */
#include "vblk.h"
#include "fmt.h"
#include "mb_string.h"

#define HDR_LEN 16u                       /* struct virtio_blk_outhdr: type, reserved, sector */

static void say(struct vblk *b, const char *fmt, uint64_t a, uint64_t c)
{
	if (!b->log || b->log_budget == 0)
		return;
	b->log_budget--;
	char msg[160];
	mb_snprintf(msg, sizeof(msg), fmt, a, c);
	b->log(b->ctx, msg);
}

/* ---- guest memory for the rings and buffers: pmap/guestmem.c ----
 * Rings are reached through one page at a time: Linux puts each of them in one page for
 * queues of VBLK_QUEUE_MAX entries. A ring straddling two pages is refused. */

/* ---- config space (struct virtio_blk_config) ---- */

static int config_read(struct vmmio_dev *d, uint32_t off, int size, uint64_t *val)
{
	struct vblk *b = d->opaque;
	uint8_t cfg[36];
	memset(cfg, 0, sizeof(cfg));
	uint64_t cap = vdisk_sectors(&b->disk);
	uint32_t size_max = VBLK_SIZE_MAX, seg_max = VBLK_SEG_MAX, blk_size = VDISK_SECTOR;
	for (int i = 0; i < 8; i++)
		cfg[i] = (uint8_t)(cap >> (8 * i));
	for (int i = 0; i < 4; i++) {
		cfg[8 + i] = (uint8_t)(size_max >> (8 * i));
		cfg[12 + i] = (uint8_t)(seg_max >> (8 * i));
		/* 512-byte logical blocks, as any disk image expects (a file system made with 1 KiB
		 * blocks cannot be mounted on 4 KiB sectors); page-cache reads still come whole and
		 * aligned, which is what zero-copy needs */
		cfg[20 + i] = (uint8_t)(blk_size >> (8 * i));
	}
	if (off + (uint32_t)size > sizeof(cfg))
		return -1;
	uint64_t v = 0;
	for (int i = size - 1; i >= 0; i--)
		v = v << 8 | cfg[off + i];
	*val = v;
	return 0;
}

/* ---- requests ---- */

/* Copies len bytes at byte offset off of the chain's readable (write = 0) or writable part
 * to / from buf, by gpa. 0 or -1. */
static int chain_copy(struct vblk *b, int writable, uint64_t off, void *buf, uint64_t len, int to_guest)
{
	const struct virtq_chain *c = &b->chain;
	unsigned first = writable ? c->nread : 0, last = writable ? c->nseg : c->nread;
	uint8_t *p = buf;
	for (unsigned i = first; i < last && len; i++) {
		const struct virtq_seg *s = &c->seg[i];
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		uint64_t n = s->len - off < len ? s->len - off : len;
		if (vdisk_guest_copy(&b->guest, s->gpa + off, p, n, to_guest))
			return -1;
		p += n;
		len -= n;
		off = 0;
	}
	return len ? -1 : 0;
}

/* The guest pieces [off, off + len) of the readable or writable part, into b->iov. */
static unsigned chain_iov(struct vblk *b, int writable, uint64_t off, uint64_t len)
{
	const struct virtq_chain *c = &b->chain;
	unsigned first = writable ? c->nread : 0, last = writable ? c->nseg : c->nread, n = 0;
	for (unsigned i = first; i < last && len; i++) {
		const struct virtq_seg *s = &c->seg[i];
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		uint64_t k = s->len - off < len ? s->len - off : len;
		b->iov[n++] = (struct vdisk_iov){ s->gpa + off, (uint32_t)k };
		len -= k;
		off = 0;
	}
	return n;
}

/* Serves the popped chain; returns the status and sets *written (bytes the device wrote). */
static uint8_t serve(struct vblk *b, uint32_t *written)
{
	const struct virtq_chain *c = &b->chain;
	uint8_t hdr[HDR_LEN];
	*written = 1;
	if (c->read_len < HDR_LEN || chain_copy(b, 0, 0, hdr, HDR_LEN, 0)) {
		b->bad_requests++;
		say(b, "virtio-blk: request without a 16-byte header (%lu readable bytes): IOERR", c->read_len, 0);
		return VBLK_S_IOERR;
	}
	uint32_t type = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
	uint64_t sector = 0;
	for (int i = 7; i >= 0; i--)
		sector = sector << 8 | hdr[8 + i];
	uint64_t cap = vdisk_sectors(&b->disk);
	uint64_t in_len = c->write_len - 1, out_len = c->read_len - HDR_LEN;

	switch (type) {
	case VBLK_T_IN:
	case VBLK_T_OUT: {
		uint64_t len = type == VBLK_T_IN ? in_len : out_len;
		if (len % VDISK_SECTOR || sector > cap || len / VDISK_SECTOR > cap - sector) {
			b->bad_requests++;
			say(b, "virtio-blk: %lu bytes at sector %lu: not whole sectors or past the end: IOERR", len, sector);
			return VBLK_S_IOERR;
		}
		if (type == VBLK_T_OUT && b->disk.mode == VDISK_RO) {
			b->bad_requests++;
			say(b, "virtio-blk: write to a read-only disk at sector %lu (%lu bytes): IOERR", sector, len);
			return VBLK_S_IOERR;
		}
		if (!len)
			return VBLK_S_OK;
		int rc;
		if (type == VBLK_T_IN) {
			unsigned n = chain_iov(b, 1, 0, len);
			rc = vdisk_read(&b->disk, &b->guest, sector, b->iov, n);
			if (!rc)
				*written = (uint32_t)len + 1;
		} else {
			unsigned n = chain_iov(b, 0, HDR_LEN, len);
			rc = vdisk_write(&b->disk, &b->guest, sector, b->iov, n);
		}
		if (rc)
			say(b, "virtio-blk: I/O error at sector %lu (%lu bytes)", sector, len);
		return rc ? VBLK_S_IOERR : VBLK_S_OK;
	}
	case VBLK_T_FLUSH:
		return vdisk_flush(&b->disk) ? VBLK_S_IOERR : VBLK_S_OK;
	case VBLK_T_GET_ID: {
		uint64_t n = in_len < 20 ? in_len : 20;
		if (chain_copy(b, 1, 0, b->id, n, 1))
			return VBLK_S_IOERR;
		*written = (uint32_t)n + 1;
		return VBLK_S_OK;
	}
	default:
		b->unsupported++;
		say(b, "virtio-blk: request type %lu not supported: UNSUPP", type, 0);
		return VBLK_S_UNSUPP;
	}
}

static void notify(struct vmmio_dev *d, unsigned qi)
{
	struct vblk *b = d->opaque;
	struct virtq *q = &d->q[qi].vq;
	int want_irq = 0, r = 0;
	if (qi != 0)
		return;
	q->max_len = (uint64_t)VBLK_SEG_MAX * VBLK_SIZE_MAX + HDR_LEN + 1;
	/* At most one queue's worth per kick: a driver that keeps adding chains must not hold
	 * this pCPU in the monitor. Nothing is lost: we never suppress notifications, so every
	 * chain made available after this loop began comes with a kick of its own. */
	uint32_t budget = q->size;
	while (budget-- && (r = virtq_pop(q, &b->chain)) > 0) {
		uint32_t written;
		uint8_t status;
		if (b->chain.write_len < 1) {
			/* nowhere to put a status: the driver learns nothing, but the chain goes back */
			b->bad_requests++;
			say(b, "virtio-blk: request without a status byte (head %lu): dropped", b->chain.head, 0);
			written = 0;
		} else {
			status = serve(b, &written);
			if (chain_copy(b, 1, b->chain.write_len - 1, &status, 1, 1))
				written = 0;
		}
		int p = virtq_push(q, b->chain.head, written);
		if (p < 0)
			break;
		want_irq |= p;
	}
	if (r < 0) {
		b->broken_queues++;
		say(b, "virtio-blk: the driver broke its queue (virtq error %ld): device needs reset", (uint64_t)(int64_t)r, 0);
		vmmio_needs_reset(d);
	}
	if (want_irq) {
		b->interrupts++;
		vmmio_used_buffer(d);
	}
}

static void dev_reset(struct vmmio_dev *d)
{
	(void)d;                          /* requests complete synchronously: nothing in flight */
}

static void dev_irq(struct vmmio_dev *d, int level)
{
	struct vblk *b = d->opaque;
	if (b->irq)
		b->irq(b->ctx, level);
}

static const struct vmmio_ops vblk_ops = { config_read, 0, notify, dev_reset, dev_irq };

static void transport_init(struct vblk *b)
{
	uint64_t f = VBLK_F_SIZE_MAX | VBLK_F_SEG_MAX | VBLK_F_BLK_SIZE | VBLK_F_FLUSH | VIRTQ_F_INDIRECT_DESC;
	if (b->disk.mode == VDISK_RO)
		f |= VBLK_F_RO;
	vmmio_init(&b->mmio, 2 /* block */, f, 1, VBLK_QUEUE_MAX, &vblk_ops, b, guestmem_ring, &b->guest);
	b->mmio.q[0].vq.buf_ok = guestmem_buf_ok;   /* buffers are copied page by page (vdisk_guest_copy) */
}

void vblk_init(struct vblk *b, struct vdisk_base *base, int mode, const struct vdisk_guest *g,
	       const char *id, void (*irq)(void *, int), void (*log)(void *, const char *), void *ctx)
{
	memset(b, 0, sizeof(*b));
	vdisk_init(&b->disk, base, mode);
	b->guest = *g;
	for (int i = 0; id && id[i] && i < 20; i++)
		b->id[i] = id[i];
	b->irq = irq;
	b->log = log;
	b->ctx = ctx;
	b->log_budget = 50;
	transport_init(b);
}

int vblk_mmio(struct vblk *b, uint64_t off, int size, int write, uint64_t *val)
{
	spin_lock(&b->lock);
	int rc = vmmio_access(&b->mmio, off, size, write, val);
	spin_unlock(&b->lock);
	return rc;
}

void vblk_reset(struct vblk *b)
{
	spin_lock(&b->lock);
	vdisk_reset(&b->disk);
	/* transport_init clears InterruptStatus without telling the line: lower it here, or a
	 * level-triggered line stays high with nothing for the restarted driver to acknowledge */
	if (b->mmio.int_status && b->irq)
		b->irq(b->ctx, 0);
	transport_init(b);
	b->log_budget = 50;
	spin_unlock(&b->lock);
}

void vblk_destroy(struct vblk *b)
{
	spin_lock(&b->lock);
	vdisk_reset(&b->disk);
	spin_unlock(&b->lock);
}
