/* Driver side of modern virtio-mmio for the monitor's host devices. See hostvirtio.h. */
#include "hostvirtio.h"
#include "arch.h"
#include "bits.h"
#include "mb_string.h"
#include "vmmio.h"

/* Register offsets and status bits: lib/vmmio.h, the device side of the same transport. */

static uint32_t rd(volatile uint8_t *d, uint32_t off) { return *(volatile uint32_t *)(d + off); }
static void wr(volatile uint8_t *d, uint32_t off, uint32_t v) { *(volatile uint32_t *)(d + off) = v; }
static void wr64(volatile uint8_t *d, uint32_t off, uint64_t v) { wr(d, off, (uint32_t)v); wr(d, off + 4, (uint32_t)(v >> 32)); }

volatile uint8_t *hv_find(const struct host_topology *t, uint32_t device_id, int *legacy)
{
	*legacy = 0;
	for (int i = 0; i < t->nvirtio; i++) {
		volatile uint8_t *d = (volatile uint8_t *)(uintptr_t)t->virtio_base[i];
		if (rd(d, VMMIO_R_MAGIC) != VMMIO_MAGIC || rd(d, VMMIO_R_DEVICE_ID) != device_id)
			continue;
		if (rd(d, VMMIO_R_VERSION) != 2) {
			*legacy = 1;
			continue;
		}
		return d;
	}
	return 0;
}

int hv_negotiate(volatile uint8_t *dev, uint32_t want, uint32_t *got, const char **err)
{
	wr(dev, VMMIO_R_STATUS, 0);
	wr(dev, VMMIO_R_STATUS, VMMIO_S_ACKNOWLEDGE);
	wr(dev, VMMIO_R_STATUS, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER);
	wr(dev, VMMIO_R_DEV_FEATURES_SEL, 1);
	if (!(rd(dev, VMMIO_R_DEV_FEATURES) & 1))           /* VIRTIO_F_VERSION_1 */
		return *err = "the device does not offer VIRTIO_F_VERSION_1", -1;
	wr(dev, VMMIO_R_DEV_FEATURES_SEL, 0);
	*got = rd(dev, VMMIO_R_DEV_FEATURES) & want;
	wr(dev, VMMIO_R_DRV_FEATURES_SEL, 0);
	wr(dev, VMMIO_R_DRV_FEATURES, *got);
	wr(dev, VMMIO_R_DRV_FEATURES_SEL, 1);
	wr(dev, VMMIO_R_DRV_FEATURES, 1);
	wr(dev, VMMIO_R_STATUS, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER | VMMIO_S_FEATURES_OK);
	if (!(rd(dev, VMMIO_R_STATUS) & VMMIO_S_FEATURES_OK))
		return *err = "the device refused our features", -1;
	return 0;
}

int hv_queue_init(struct hv_queue *q, volatile uint8_t *dev, unsigned qi, uint16_t size, struct hv_desc *desc,
		  uint16_t *avail, uint16_t *used, uint64_t bytes, const char **err)
{
	wr(dev, VMMIO_R_QUEUE_SEL, qi);
	if (rd(dev, VMMIO_R_QUEUE_NUM_MAX) < size)
		return *err = "the device's queue is too small", -1;
	memset(desc, 0, bytes);
	q->dev = dev;
	q->index = qi;
	q->size = size;
	q->last_used = 0;
	q->desc = desc;
	q->avail_flags = avail;
	q->avail_idx = avail + 1;
	q->avail_ring = avail + 2;
	q->used_idx = used + 1;
	q->used_ring = (struct hv_used_elem *)(used + 2);
	wr(dev, VMMIO_R_QUEUE_NUM, size);
	wr64(dev, VMMIO_R_QUEUE_DESC_LO, (uint64_t)(uintptr_t)desc);
	wr64(dev, VMMIO_R_QUEUE_DRIVER_LO, (uint64_t)(uintptr_t)avail);
	wr64(dev, VMMIO_R_QUEUE_DEVICE_LO, (uint64_t)(uintptr_t)used);
	wr(dev, VMMIO_R_QUEUE_READY, 1);
	return 0;
}

void hv_driver_ok(volatile uint8_t *dev)
{
	wr(dev, VMMIO_R_STATUS, VMMIO_S_ACKNOWLEDGE | VMMIO_S_DRIVER | VMMIO_S_FEATURES_OK | VMMIO_S_DRIVER_OK);
}

void hv_queue_add(struct hv_queue *q, uint16_t head)
{
	uint16_t idx = *q->avail_idx;
	q->avail_ring[idx & (q->size - 1)] = head;
	dsb(sy);                          /* the entry before the index */
	__atomic_store_n(q->avail_idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

void hv_queue_notify(struct hv_queue *q)
{
	dsb(sy);                          /* the index before the doorbell */
	wr(q->dev, VMMIO_R_QUEUE_NOTIFY, q->index);
}

int hv_queue_pending(const struct hv_queue *q)
{
	return __atomic_load_n(q->used_idx, __ATOMIC_ACQUIRE) != q->last_used;
}

int hv_queue_next_used(struct hv_queue *q, uint32_t *id, uint32_t *len)
{
	if (!hv_queue_pending(q))
		return 0;
	const struct hv_used_elem *e = &q->used_ring[q->last_used & (q->size - 1)];
	*id = __atomic_load_n(&e->id, __ATOMIC_RELAXED);
	*len = __atomic_load_n(&e->len, __ATOMIC_RELAXED);
	q->last_used++;
	return 1;
}

int hv_queue_wait(struct hv_queue *q, uint32_t *id, uint32_t *len, unsigned seconds)
{
	uint64_t deadline = read_cntpct() + seconds * read_sysreg(cntfrq_el0);
	while (!hv_queue_next_used(q, id, len))
		if (read_cntpct() > deadline)
			return -1;
	return 0;
}

void hv_ack_interrupts(volatile uint8_t *dev)
{
	uint32_t s = rd(dev, VMMIO_R_INT_STATUS);
	if (s)
		wr(dev, VMMIO_R_INT_ACK, s);
}

uint32_t hv_config32(volatile uint8_t *dev, uint32_t off)
{
	return rd(dev, VMMIO_CONFIG + off);
}
