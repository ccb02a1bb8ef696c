/* vmmio: device side of the modern virtio-mmio transport.  See vmmio.h for the contract.
 *
 * Register directions follow spec table 4.1: a read of a write-only register or a write to a
 * read-only one returns -1 (the caller's RAZ/WI).  A well-formed access with a value the
 * device refuses returns 0 and counts in d->errors.
 */
#include "vmmio.h"
#include "mb_string.h"

#define F_RING_PACKED       (1ull << 34)
#define F_NOTIFICATION_DATA (1ull << 38)
#define F_RING_RESET        (1ull << 40)

#define S_KNOWN (VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER | VMMIO_S_DRIVER_OK | VMMIO_S_FEATURES_OK | \
		 VMMIO_S_NEEDS_RESET | VMMIO_S_FAILED)

static inline int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* InterruptStatus changes go through here so the line follows (InterruptStatus != 0). */
static void set_int(struct vmmio_dev *d, uint32_t v)
{
	uint32_t old = d->int_status;
	d->int_status = v;
	if (!old != !v && d->ops && d->ops->irq)
		d->ops->irq(d, v != 0);
}

static void reset_state(struct vmmio_dev *d)
{
	d->driver_features = 0;
	d->dev_features_sel = d->drv_features_sel = d->queue_sel = 0;
	d->status = 0;
	for (unsigned i = 0; i < VMMIO_MAX_QUEUES; i++) {
		struct vmmio_queue *q = &d->q[i];
		q->num = d->queue_num_max;        /* as PCI's queue_size: the maximum after reset */
		q->desc = q->avail = q->used = 0;
		/* Only ready: virtq_init sets the rest, and keeps what the device model put in vq
		 * for every incarnation of the queue (e.g. buf_ok). */
		q->vq.ready = false;
	}
}

void vmmio_init(struct vmmio_dev *d, uint32_t device_id, uint64_t features, unsigned nqueues,
		uint32_t queue_num_max, const struct vmmio_ops *ops, void *opaque,
		virtq_gpa_to_hva_fn fn, void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->device_id = device_id;
	d->vendor_id = VMMIO_VENDOR_ID;
	/* Packed rings, notification data and queue reset would each need support here or in
	 * virtq that does not exist: never offer them, whatever the device model says. */
	d->device_features = (features | VIRTIO_F_VERSION_1) &
			     ~(F_RING_PACKED | F_NOTIFICATION_DATA | F_RING_RESET);
	d->nqueues = nqueues < VMMIO_MAX_QUEUES ? nqueues : VMMIO_MAX_QUEUES;
	if (queue_num_max > VIRTQ_MAX_SIZE)
		queue_num_max = VIRTQ_MAX_SIZE;
	while (queue_num_max & (queue_num_max - 1))
		queue_num_max &= queue_num_max - 1;      /* round down to a power of 2 */
	d->queue_num_max = queue_num_max;
	d->ops = ops;
	d->opaque = opaque;
	d->gpa_to_hva = fn;
	d->gpa_ctx = ctx;
	reset_state(d);
}

uint64_t vmmio_features(const struct vmmio_dev *d)
{
	return d->device_features & d->driver_features;
}

static int driver_ok(const struct vmmio_dev *d)
{
	return (d->status & (VMMIO_S_DRIVER_OK | VMMIO_S_NEEDS_RESET)) == VMMIO_S_DRIVER_OK;
}

static struct vmmio_queue *cur_queue(struct vmmio_dev *d)
{
	return d->queue_sel < d->nqueues ? &d->q[d->queue_sel] : NULL;
}

/* The spec lets the device refuse a feature set by leaving FEATURES_OK clear (3.1.1 step 6):
 * nothing it did not offer, and VERSION_1 (this transport has no legacy mode). */
static int features_acceptable(const struct vmmio_dev *d)
{
	return !(d->driver_features & ~d->device_features) &&
	       (d->driver_features & VIRTIO_F_VERSION_1);
}

static void write_status(struct vmmio_dev *d, uint32_t v)
{
	uint32_t cur = d->status;

	if (v == 0) {
		set_int(d, 0);
		reset_state(d);
		if (d->ops && d->ops->reset)
			d->ops->reset(d);
		return;
	}
	/* The driver only sets bits (reset is the one way back); NEEDS_RESET is the device's, so
	 * the driver's copy of it is ignored either way. */
	if ((v & ~S_KNOWN) || (cur & ~v & ~VMMIO_S_NEEDS_RESET)) {
		d->errors++;
		return;
	}
	v = (v & ~VMMIO_S_NEEDS_RESET) | (cur & VMMIO_S_NEEDS_RESET);
	if ((v & ~cur & VMMIO_S_FEATURES_OK) && !features_acceptable(d)) {
		v &= ~VMMIO_S_FEATURES_OK;           /* refused: the driver reads it back clear */
		d->errors++;
	}
	if ((v & ~cur & VMMIO_S_DRIVER_OK) && !(v & VMMIO_S_FEATURES_OK)) {
		v &= ~VMMIO_S_DRIVER_OK;
		d->errors++;
	}
	d->status = v;
	/* Buffers may have been made available (and kicked, which we dropped) before DRIVER_OK.
	 * driver_ok is rechecked: a notify may have ended in vmmio_needs_reset. */
	if ((v & ~cur & VMMIO_S_DRIVER_OK) && d->ops && d->ops->notify)
		for (unsigned i = 0; i < d->nqueues; i++)
			if (driver_ok(d) && d->q[i].vq.ready)
				d->ops->notify(d, i);
}

static void write_queue_ready(struct vmmio_dev *d, struct vmmio_queue *q, uint32_t v)
{
	if (v == 0) {
		q->vq.ready = false;
		return;
	}
	if (v != 1) {
		d->errors++;
		return;
	}
	if (q->vq.ready)
		return;                              /* already live: re-init would lose its indices */
	/* virtq_init takes the negotiated ring features: they must be final (FEATURES_OK). */
	if (!(d->status & VMMIO_S_FEATURES_OK) ||
	    virtq_init(&q->vq, q->num, q->desc, q->avail, q->used, vmmio_features(d),
		       d->gpa_to_hva, d->gpa_ctx) != VIRTQ_OK) {
		q->vq.ready = false;
		d->errors++;
		return;
	}
	q->epoch++;
}

static void set_half(uint64_t *reg, int high, uint32_t v)
{
	if (high)
		*reg = (*reg & 0xffffffffull) | (uint64_t)v << 32;
	else
		*reg = (*reg & ~0xffffffffull) | v;
}

/* Writes to the selected queue's registers; QueueSel out of range or the queue live: ignored
 * (spec 4.2.2.2: the driver must not change a ready queue's size or addresses). */
static void write_queue_reg(struct vmmio_dev *d, uint32_t off, uint32_t v)
{
	struct vmmio_queue *q = cur_queue(d);

	if (!q) {
		d->errors++;
		return;
	}
	if (off == VMMIO_R_QUEUE_READY) {
		write_queue_ready(d, q, v);
		return;
	}
	if (q->vq.ready) {
		d->errors++;
		return;
	}
	switch (off) {
	case VMMIO_R_QUEUE_NUM:
		if (is_pow2(v) && v <= d->queue_num_max)
			q->num = v;
		else
			d->errors++;
		break;
	case VMMIO_R_QUEUE_DESC_LO: case VMMIO_R_QUEUE_DESC_HI:
		set_half(&q->desc, off & 4, v);
		break;
	case VMMIO_R_QUEUE_DRIVER_LO: case VMMIO_R_QUEUE_DRIVER_HI:
		set_half(&q->avail, off & 4, v);
		break;
	default:   /* VMMIO_R_QUEUE_DEVICE_LO / _HI */
		set_half(&q->used, off & 4, v);
		break;
	}
}

static void notify(struct vmmio_dev *d, uint32_t v)
{
	if (v >= d->nqueues || !d->q[v].vq.ready) {
		d->errors++;
		return;
	}
	/* Before DRIVER_OK the device must not touch the queue (replayed at DRIVER_OK); after
	 * NEEDS_RESET it is broken until reset.  Neither is the driver's fault: not counted. */
	if (driver_ok(d) && d->ops && d->ops->notify)
		d->ops->notify(d, v);
}

static int reg_write(struct vmmio_dev *d, uint32_t off, uint32_t v)
{
	switch (off) {
	case VMMIO_R_DEV_FEATURES_SEL:
		d->dev_features_sel = v;
		return 0;
	case VMMIO_R_DRV_FEATURES:
		/* Features are frozen once accepted (the rings were set up with them). */
		if (d->drv_features_sel > 1 || (d->status & VMMIO_S_FEATURES_OK))
			d->errors++;
		else
			set_half(&d->driver_features, d->drv_features_sel == 1, v);
		return 0;
	case VMMIO_R_DRV_FEATURES_SEL:
		d->drv_features_sel = v;
		return 0;
	case VMMIO_R_QUEUE_SEL:
		d->queue_sel = v;                    /* checked where used */
		return 0;
	case VMMIO_R_QUEUE_NUM:
	case VMMIO_R_QUEUE_READY:
	case VMMIO_R_QUEUE_DESC_LO: case VMMIO_R_QUEUE_DESC_HI:
	case VMMIO_R_QUEUE_DRIVER_LO: case VMMIO_R_QUEUE_DRIVER_HI:
	case VMMIO_R_QUEUE_DEVICE_LO: case VMMIO_R_QUEUE_DEVICE_HI:
		write_queue_reg(d, off, v);
		return 0;
	case VMMIO_R_QUEUE_NOTIFY:
		notify(d, v);
		return 0;
	case VMMIO_R_INT_ACK:
		set_int(d, d->int_status & ~v);
		return 0;
	case VMMIO_R_STATUS:
		write_status(d, v);
		return 0;
	case VMMIO_R_SHM_SEL:
		return 0;                            /* every id selects "no region" */
	default:
		return -1;                           /* read-only, reserved, QueueReset, legacy */
	}
}

static int reg_read(struct vmmio_dev *d, uint32_t off, uint32_t *v)
{
	struct vmmio_queue *q = cur_queue(d);

	switch (off) {
	case VMMIO_R_MAGIC:       *v = VMMIO_MAGIC; return 0;
	case VMMIO_R_VERSION:     *v = VMMIO_VERSION; return 0;
	case VMMIO_R_DEVICE_ID:   *v = d->device_id; return 0;
	case VMMIO_R_VENDOR_ID:   *v = d->vendor_id; return 0;
	case VMMIO_R_DEV_FEATURES:
		*v = d->dev_features_sel > 1 ? 0 : (uint32_t)(d->device_features >> (32 * d->dev_features_sel));
		return 0;
	case VMMIO_R_QUEUE_NUM_MAX: *v = q ? d->queue_num_max : 0; return 0;
	case VMMIO_R_QUEUE_READY:   *v = q ? q->vq.ready : 0; return 0;
	case VMMIO_R_INT_STATUS:    *v = d->int_status; return 0;
	case VMMIO_R_STATUS:        *v = d->status; return 0;
	case VMMIO_R_CONFIG_GEN:    *v = d->config_generation; return 0;
	/* No shared memory regions: a length of -1 says "absent" (spec 4.2.2, Linux checks it). */
	case VMMIO_R_SHM_LEN_LO: case VMMIO_R_SHM_LEN_HI: *v = 0xffffffffu; return 0;
	case VMMIO_R_SHM_BASE_LO: case VMMIO_R_SHM_BASE_HI: *v = 0; return 0;
	default:
		return -1;                           /* write-only, reserved, QueueReset, legacy */
	}
}

static int config_access(struct vmmio_dev *d, uint32_t off, int size, int write, uint64_t *val)
{
	const struct vmmio_ops *ops = d->ops;
	uint64_t mask = size < 8 ? (1ull << (8 * size)) - 1 : ~0ull;

	if (off & (uint32_t)(size - 1))
		return -1;                           /* naturally aligned: never straddles 0x200 */
	if (write)
		return ops && ops->config_write && !ops->config_write(d, off, size, *val & mask) ? 0 : -1;
	if (!ops || !ops->config_read || ops->config_read(d, off, size, val)) {
		*val = 0;
		return -1;
	}
	*val &= mask;
	return 0;
}

int vmmio_access(struct vmmio_dev *d, uint64_t off, int size, int write, uint64_t *val)
{
	if (!write)
		*val = 0;
	if (off >= VMMIO_SIZE || (size != 1 && size != 2 && size != 4 && size != 8))
		return -1;
	if (off >= VMMIO_CONFIG)
		return config_access(d, (uint32_t)off - VMMIO_CONFIG, size, write, val);
	if (size != 4 || (off & 3))
		return -1;
	if (write)
		return reg_write(d, (uint32_t)off, (uint32_t)*val);
	uint32_t v;
	if (reg_read(d, (uint32_t)off, &v))
		return -1;
	*val = v;
	return 0;
}

void vmmio_used_buffer(struct vmmio_dev *d)
{
	if (d->status & VMMIO_S_DRIVER_OK)           /* spec 3.1.1: none before DRIVER_OK */
		set_int(d, d->int_status | VMMIO_INT_VRING);
}

void vmmio_needs_reset(struct vmmio_dev *d)
{
	d->status |= VMMIO_S_NEEDS_RESET;
	if (d->status & VMMIO_S_DRIVER_OK)           /* spec 2.1.2 */
		set_int(d, d->int_status | VMMIO_INT_CONFIG);
}

void vmmio_config_changed(struct vmmio_dev *d)
{
	d->config_generation++;
	if (d->status & VMMIO_S_DRIVER_OK)
		set_int(d, d->int_status | VMMIO_INT_CONFIG);
}
