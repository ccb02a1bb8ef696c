/* vblk: a guest's virtio-blk device (virtio 1.x section 5.2) on the modern virtio-mmio
 * transport, serving one vdisk. Portable: runs in host unit tests. Every request is
 * hostile until checked: a malformed request gets VIRTIO_BLK_S_IOERR (or UNSUPP), a broken
 * queue DEVICE_NEEDS_RESET; the monitor and the other VMs never notice. */
#ifndef MB_VBLK_H
#define MB_VBLK_H
#include "vdisk.h"
#include "vmmio.h"
#include "spinlock.h"

#define VBLK_QUEUE_MAX 128        /* rings of this size fit in one page each, as Linux lays them out */
#define VBLK_SEG_MAX   (VBLK_QUEUE_MAX - 2)
#define VBLK_SIZE_MAX  (64u << 10)

/* feature bits (virtio-blk) */
#define VBLK_F_SIZE_MAX  (1ull << 1)
#define VBLK_F_SEG_MAX   (1ull << 2)
#define VBLK_F_RO        (1ull << 5)
#define VBLK_F_BLK_SIZE  (1ull << 6)
#define VBLK_F_FLUSH     (1ull << 9)

/* request types and status */
#define VBLK_T_IN     0
#define VBLK_T_OUT    1
#define VBLK_T_FLUSH  4
#define VBLK_T_GET_ID 8
#define VBLK_S_OK     0
#define VBLK_S_IOERR  1
#define VBLK_S_UNSUPP 2

struct vblk {
	spinlock_t lock;                  /* one request at a time; vCPUs of the VM kick concurrently */
	struct vmmio_dev mmio;
	struct vdisk disk;
	struct vdisk_guest guest;
	char id[21];                      /* GET_ID: 20 bytes, NUL padded */
	void (*irq)(void *ctx, int level);
	void (*log)(void *ctx, const char *msg);
	void *ctx;
	uint64_t bad_requests, unsupported, broken_queues, interrupts;
	uint32_t log_budget;
	struct virtq_chain chain;         /* the request being served */
	struct vdisk_iov iov[VIRTQ_MAX_SEGS];
};

void vblk_init(struct vblk *b, struct vdisk_base *base, int mode, const struct vdisk_guest *g,
	       const char *id, void (*irq)(void *, int), void (*log)(void *, const char *), void *ctx);
/* A guest access to the device's 0x200-byte window. 0, or -1 (ignored: RAZ/WI). */
int vblk_mmio(struct vblk *b, uint64_t off, int size, int write, uint64_t *val);
/* The VM restarts: a fresh device, a COW overlay dropped. */
void vblk_reset(struct vblk *b);
/* The VM is gone: its COW overlay freed. */
void vblk_destroy(struct vblk *b);
#endif
