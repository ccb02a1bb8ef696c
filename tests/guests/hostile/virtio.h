/* The hostile guest's virtio-mmio driver pieces, shared by disk.c and net.c (virtio.c):
 * the modern virtio-mmio registers, guest memory and MMIO accessors, split virtqueues as the
 * driver keeps them (ring helpers), the bring-up steps Linux takes (virtio 1.x 3.1.1), each
 * read back and checked, and mismatch lines naming the device. */
#ifndef HOSTILE_VIRTIO_H
#define HOSTILE_VIRTIO_H
#include "hostile.h"

#define R_MAGIC            0x000
#define R_VERSION          0x004
#define R_DEVICE_ID        0x008
#define R_VENDOR_ID        0x00c
#define R_DEV_FEATURES     0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES     0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL        0x030
#define R_QUEUE_NUM_MAX    0x034
#define R_QUEUE_NUM        0x038
#define R_QUEUE_READY      0x044
#define R_NOTIFY           0x050
#define R_INT_STATUS       0x060
#define R_INT_ACK          0x064
#define R_STATUS           0x070
#define R_DESC_LO          0x080
#define R_DESC_HI          0x084
#define R_DRIVER_LO        0x090
#define R_DRIVER_HI        0x094
#define R_DEVICE_LO        0x0a0
#define R_DEVICE_HI        0x0a4
#define R_SHM_SEL          0x0ac
#define R_SHM_LEN_LO       0x0b0
#define R_SHM_LEN_HI       0x0b4
#define R_SHM_BASE_LO      0x0b8
#define R_SHM_BASE_HI      0x0bc
#define R_QUEUE_RESET      0x0c0
#define R_CONFIG_GEN       0x0fc
#define R_CONFIG           0x100

#define S_ACK         0x01u
#define S_DRIVER      0x02u
#define S_DRIVER_OK   0x04u
#define S_FEATURES_OK 0x08u
#define S_NEEDS_RESET 0x40u
#define S_FAILED      0x80u
#define S_LIVE        (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK)

/* high feature word (bits 32..63) */
#define FH_VERSION_1  (1u << 0)
#define FH_PACKED     (1u << 2)     /* 34 */
#define FH_NOTIF_DATA (1u << 6)     /* 38 */
#define FH_RING_RESET (1u << 8)     /* 40 */

#define D_NEXT     1
#define D_WRITE    2
#define D_INDIRECT 4

#define WAIT_LONG  (tick_hz() / 10)    /* a completion we expect (they are synchronous) */
#define WAIT_SHORT (tick_hz() / 500)   /* one we expect not to come */

static inline void st8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline void st16(u64 a, u16 v) { *(volatile u16 *)a = v; }
static inline void st32(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline void st64(u64 a, u64 v) { *(volatile u64 *)a = v; }
static inline u8 ld8(u64 a) { return *(volatile u8 *)a; }
static inline u16 ld16(u64 a) { return *(volatile u16 *)a; }
static inline u32 ld32(u64 a) { return *(volatile u32 *)a; }
static inline u64 ld64(u64 a) { return *(volatile u64 *)a; }
static inline void dsb(void) { __asm__ volatile("dsb sy" ::: "memory"); }

/* MMIO of any size (1/2/4/8) with the value */
u64 mmio_rd(u64 a, int size);
void mmio_wr(u64 a, int size, u64 v);
void fill(u64 a, u64 n, u8 v);
void copy_bytes(u64 dst, u64 src, u64 n);

/* One virtqueue of a device, as the driver keeps it. */
struct vq {
	const char *kind;            /* "disk", "net": mismatch lines name kind and slot */
	int slot;
	u64 mmio, dma;               /* the device's window; its DMA memory */
	u64 desc, avail, used;       /* ring addresses the bring-up programs */
	u32 num;
	u16 avail_idx, used_idx;     /* our shadows */
};

struct seg { u64 addr; u32 len; u16 flags; };

/* "hostile: MISMATCH <kind><slot> what: field arg= got= want=" (counted; q may be NULL) */
void vq_mis(const struct vq *q, const char *what, const char *field, u64 arg, u64 got, u64 want);
/* A check: 1 if got == want, else a mismatch and 0. */
int vq_check(const struct vq *q, const char *what, const char *field, u64 arg, u64 got, u64 want);

static inline u32 vr(const struct vq *q, u32 off) { return mmio_r32(q->mmio + off); }
static inline void vw(const struct vq *q, u32 off, u32 v) { mmio_w32(q->mmio + off, v); }

/* ---- rings ---- */

void put_desc_at(u64 table, u32 i, u64 addr, u32 len, u16 flags, u16 next);
void put_desc(struct vq *q, u32 i, u64 addr, u32 len, u16 flags, u16 next);
void publish(struct vq *q, u16 head);
void kick(const struct vq *q);                 /* notifies queue 0 */
/* The next used element within `wait` ticks: 1 (and *id, *len) or 0. */
int used_next(struct vq *q, u32 *id, u32 *len, u64 wait);
/* Lays out a chain of n descriptors from slot (avail_idx mod num) on, wrapping around the
 * table, publishes its head and (unless nokick) kicks. */
extern int nokick;
u16 post(struct vq *q, const struct seg *s, int n);
void zero_rings(struct vq *q);                 /* and our indices */
void program_queue(struct vq *q);              /* QueueNum and the ring addresses */

/* ---- bring-up steps (Linux's order), every one read back; each returns 1 if all was well ---- */

/* Reset (Status and InterruptStatus read 0), ACKNOWLEDGE (read back if check_ack), DRIVER. */
int vio_reset_to_driver(const struct vq *q, const char *w, int check_ack);
/* The device's feature words 0 and 1. */
void vio_dev_features(const struct vq *q, u32 *lo, u32 *hi);
/* Our feature words 0 and 1, then FEATURES_OK, which must stick (arg: for the mismatch line). */
int vio_features_ok(const struct vq *q, const char *w, u32 lo, u32 hi, u64 arg);
/* The selected queue: not ready yet, then q's rings programmed and ready (arg as above). */
int vio_queue_ready(struct vq *q, const char *w, u64 arg_before, u64 arg_after);
/* DRIVER_OK: the device is live. */
int vio_driver_ok(const struct vq *q, const char *w);
#endif
