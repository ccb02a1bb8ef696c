/* vmmio: the device side of the virtio-mmio transport, modern layout only (virtio 1.x spec
 * section 4.2.2, Version 2), generic over the device type: the device model (virtio-blk,
 * virtio-net) supplies its config space and a notify callback through struct vmmio_ops and
 * serves the queues in q[i].vq with lib/virtq.  Freestanding: no allocation, no libc beyond
 * mem*; built for the monitor and for the host tests.
 *
 * The guest is hostile: every register value is checked; a value the spec lets the device
 * refuse is ignored (FEATURES_OK / QueueReady then read back 0, so the driver sees it) and
 * counted in errors.  Not thread-safe: the caller serialises every call for one device
 * (vmmio_access, vmmio_used_buffer, vmmio_needs_reset, vmmio_config_changed) and the ops are
 * called with that serialisation held, from inside those calls.
 */
#ifndef MB_VMMIO_H
#define MB_VMMIO_H
#include <stdint.h>
#include "virtq.h"

#define VMMIO_MAX_QUEUES 4
#define VMMIO_SIZE       0x200u       /* the register window */
#define VMMIO_CONFIG     0x100u       /* device-specific config space: 0x100 .. 0x1ff */
#define VMMIO_MAGIC      0x74726976u  /* "virt" */
#define VMMIO_VERSION    2u
#define VMMIO_VENDOR_ID  0x4D42414Cu  /* "MBAL" */

/* Register offsets (spec table 4.1). */
#define VMMIO_R_MAGIC            0x000
#define VMMIO_R_VERSION          0x004
#define VMMIO_R_DEVICE_ID        0x008
#define VMMIO_R_VENDOR_ID        0x00c
#define VMMIO_R_DEV_FEATURES     0x010
#define VMMIO_R_DEV_FEATURES_SEL 0x014
#define VMMIO_R_DRV_FEATURES     0x020
#define VMMIO_R_DRV_FEATURES_SEL 0x024
#define VMMIO_R_QUEUE_SEL        0x030
#define VMMIO_R_QUEUE_NUM_MAX    0x034
#define VMMIO_R_QUEUE_NUM        0x038
#define VMMIO_R_QUEUE_READY      0x044
#define VMMIO_R_QUEUE_NOTIFY     0x050
#define VMMIO_R_INT_STATUS       0x060
#define VMMIO_R_INT_ACK          0x064
#define VMMIO_R_STATUS           0x070
#define VMMIO_R_QUEUE_DESC_LO    0x080
#define VMMIO_R_QUEUE_DESC_HI    0x084
#define VMMIO_R_QUEUE_DRIVER_LO  0x090
#define VMMIO_R_QUEUE_DRIVER_HI  0x094
#define VMMIO_R_QUEUE_DEVICE_LO  0x0a0
#define VMMIO_R_QUEUE_DEVICE_HI  0x0a4
#define VMMIO_R_SHM_SEL          0x0ac
#define VMMIO_R_SHM_LEN_LO       0x0b0
#define VMMIO_R_SHM_LEN_HI       0x0b4
#define VMMIO_R_SHM_BASE_LO      0x0b8
#define VMMIO_R_SHM_BASE_HI      0x0bc
#define VMMIO_R_QUEUE_RESET      0x0c0
#define VMMIO_R_CONFIG_GEN       0x0fc

/* Device status bits (spec 2.1). */
#define VMMIO_S_ACKNOWLEDGE  0x01u
#define VMMIO_S_DRIVER       0x02u
#define VMMIO_S_DRIVER_OK    0x04u
#define VMMIO_S_FEATURES_OK  0x08u
#define VMMIO_S_NEEDS_RESET  0x40u
#define VMMIO_S_FAILED       0x80u

/* InterruptStatus bits. */
#define VMMIO_INT_VRING   1u          /* used buffer notification */
#define VMMIO_INT_CONFIG  2u          /* configuration change (and DEVICE_NEEDS_RESET) */

#define VIRTIO_F_VERSION_1 (1ull << 32)

struct vmmio_dev;

struct vmmio_ops {
	/* Device config space at 0x100 + off, size 1/2/4/8, naturally aligned, off + size <= 0x100.
	 * Return 0 (*val filled; bits above size are dropped) or -1 (out of range). */
	int (*config_read)(struct vmmio_dev *d, uint32_t off, int size, uint64_t *val);
	int (*config_write)(struct vmmio_dev *d, uint32_t off, int size, uint64_t val); /* NULL: read-only */
	/* The driver kicked queue q: only when DRIVER_OK is set, DEVICE_NEEDS_RESET is not, and q
	 * is ready.  Also called once for every ready queue when DRIVER_OK gets set, since the
	 * driver may have queued (and kicked) buffers before. */
	void (*notify)(struct vmmio_dev *d, unsigned q);
	/* The driver wrote 0 to Status; the transport has already reset its own state (queues
	 * not ready, InterruptStatus 0, features 0).  The device drops what it had in flight. */
	void (*reset)(struct vmmio_dev *d);
	/* The interrupt line: 1 when InterruptStatus becomes non-zero, 0 when it goes back to 0
	 * (driver ack or reset).  Only called on a change. */
	void (*irq)(struct vmmio_dev *d, int level);
};

/* q[i].vq is the device model's to serve (virtq_pop/push) while vq.ready.  QueueReady = 1
 * runs virtq_init on it and a reset only clears vq.ready, so fields virtq_init keeps (e.g.
 * buf_ok) may be set once after vmmio_init; max_len is back to the default after each
 * virtq_init (lower it in notify).  The driver can take a queue down (QueueReady = 0, reset)
 * and set it up again while the device holds popped chains: a chain popped under another
 * epoch must be dropped, not pushed (virtq_push already refuses while not ready). */
struct vmmio_queue {
	uint32_t num;                  /* QueueNum: queue_num_max after reset */
	uint64_t desc, avail, used;    /* QueueDesc, QueueDriver, QueueDevice */
	uint32_t epoch;                /* + 1 at every successful QueueReady = 1 */
	struct virtq vq;               /* vq.ready is QueueReady */
};

struct vmmio_dev {
	uint32_t device_id, vendor_id;
	uint64_t device_features;      /* offered; VIRTIO_F_VERSION_1 always added by vmmio_init */
	uint64_t driver_features;      /* what the driver wrote */
	uint32_t dev_features_sel, drv_features_sel, queue_sel, status, int_status, config_generation;
	unsigned nqueues;
	uint32_t queue_num_max;
	struct vmmio_queue q[VMMIO_MAX_QUEUES];
	const struct vmmio_ops *ops;
	void *opaque;                  /* the device model's */
	virtq_gpa_to_hva_fn gpa_to_hva;
	void *gpa_ctx;
	uint32_t errors;               /* driver protocol violations seen (refused values) */
};

/* Sets d up as after a reset.  features: what the device offers; VIRTIO_F_VERSION_1 is added
 * and the transport features this transport and virtq do not implement are removed
 * (RING_PACKED 34, NOTIFICATION_DATA 38, RING_RESET 40).  nqueues is clamped to
 * VMMIO_MAX_QUEUES; queue_num_max to VIRTQ_MAX_SIZE, rounded down to a power of 2. */
void vmmio_init(struct vmmio_dev *d, uint32_t device_id, uint64_t features, unsigned nqueues,
		uint32_t queue_num_max, const struct vmmio_ops *ops, void *opaque,
		virtq_gpa_to_hva_fn fn, void *ctx);

/* One guest access at byte offset off of the 0x200 window; *val is the value written, or
 * receives the value read.  Returns 0, or -1 for an access the device ignores (bad size,
 * alignment or offset, write to a read-only register, read of a write-only one, QueueReset,
 * config access refused by the ops): the caller treats -1 as RAZ/WI and counts it (*val is 0
 * after a refused read).  Registers below 0x100 are 32-bit: size 4, 4-aligned only. */
int vmmio_access(struct vmmio_dev *d, uint64_t off, int size, int write, uint64_t *val);

/* The device put buffers in a used ring and the driver wants an interrupt:
 * InterruptStatus |= 1 (irq(1) on the 0 -> non-zero change).  Ignored unless DRIVER_OK. */
void vmmio_used_buffer(struct vmmio_dev *d);

/* The device hit a broken queue: Status |= DEVICE_NEEDS_RESET; with DRIVER_OK set, also a
 * config change interrupt (InterruptStatus |= 2), as spec 2.1.2 asks.  Notifications stop
 * reaching the device until the driver resets it. */
void vmmio_needs_reset(struct vmmio_dev *d);

/* The device changed its config space (e.g. capacity, link status): ConfigGeneration++ and,
 * with DRIVER_OK set, a config change interrupt. */
void vmmio_config_changed(struct vmmio_dev *d);

/* Negotiated features (device & driver); meaningful once FEATURES_OK is set. */
uint64_t vmmio_features(const struct vmmio_dev *d);

#endif
