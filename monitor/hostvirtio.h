/* The driver side of QEMU's modern virtio-mmio transport, for the monitor's own polled
 * drivers of host devices (hostdisk.c: the host image's virtio-blk; hostnet.c: the uplink's
 * virtio-net). Split virtqueues in monitor memory (identity-mapped: addresses are physical).
 * Nothing here sleeps or takes a lock: each driver serialises its own use. */
#ifndef MB_HOSTVIRTIO_H
#define MB_HOSTVIRTIO_H
#include <stdint.h>
#include "hostdt.h"

#define HV_DESC_NEXT  1
#define HV_DESC_WRITE 2
#define HV_AVAIL_NO_INTERRUPT 1       /* we poll: the device need not interrupt */

struct hv_desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct hv_used_elem { uint32_t id, len; };

/* The memory of one queue of N entries (desc 16-byte, avail 2-byte, used 4-byte aligned). */
#define HV_RING(N) struct { \
	struct hv_desc desc[N] __attribute__((aligned(16))); \
	struct { uint16_t flags, idx, ring[N], event; } avail __attribute__((aligned(2))); \
	struct { uint16_t flags, idx; struct hv_used_elem ring[N]; uint16_t event; } used __attribute__((aligned(4))); }

struct hv_queue {
	volatile uint8_t *dev;
	unsigned index;
	uint16_t size;                /* a power of two */
	uint16_t last_used;           /* used entries consumed so far */
	struct hv_desc *desc;
	uint16_t *avail_flags, *avail_idx, *avail_ring;
	uint16_t *used_idx;
	struct hv_used_elem *used_ring;
};

/* The first device with this virtio device ID among the DT's virtio-mmio slots: its
 * registers, or 0 (*legacy set if one was there but on the legacy transport). */
volatile uint8_t *hv_find(const struct host_topology *t, uint32_t device_id, int *legacy);
/* Reset, ACK, DRIVER, VERSION_1 and the feature bits 0..31 in want that the device offers
 * (those go to *got), FEATURES_OK. 0, or -1 with a reason. */
int hv_negotiate(volatile uint8_t *dev, uint32_t want, uint32_t *got, const char **err);
/* Sets up queue qi of size entries on ring memory r (HV_RING(size)); zeroes it. 0 or -1. */
#define hv_queue_setup(q, dev, qi, r, size, err) \
	hv_queue_init(q, dev, qi, size, (r)->desc, &(r)->avail.flags, &(r)->used.flags, sizeof(*(r)), err)
int hv_queue_init(struct hv_queue *q, volatile uint8_t *dev, unsigned qi, uint16_t size, struct hv_desc *desc,
		  uint16_t *avail, uint16_t *used, uint64_t bytes, const char **err);
void hv_driver_ok(volatile uint8_t *dev);
/* Makes descriptor chain 'head' available (no notification). */
void hv_queue_add(struct hv_queue *q, uint16_t head);
void hv_queue_notify(struct hv_queue *q);
/* Has the device used anything we have not consumed? One load. */
int hv_queue_pending(const struct hv_queue *q);
/* The next used element (1), or 0 if none. The id is the device's word: check it. */
int hv_queue_next_used(struct hv_queue *q, uint32_t *id, uint32_t *len);
/* Waits (polling, at most 'seconds') for the next used element: 0, or -1 on timeout. */
int hv_queue_wait(struct hv_queue *q, uint32_t *id, uint32_t *len, unsigned seconds);
/* Acknowledges any interrupt the device raised (we poll, but keep the line quiet). */
void hv_ack_interrupts(volatile uint8_t *dev);
/* The device-specific configuration space, 32 bits at off. */
uint32_t hv_config32(volatile uint8_t *dev, uint32_t off);
#endif
