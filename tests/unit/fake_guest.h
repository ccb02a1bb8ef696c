/* The fake guests and the fake Linux virtio-mmio driver that test_vdisk, test_vblk and
 * test_vnet drive the device models with (fake_guest.c).
 *
 * Machine memory: g_palloc over a pool mapped below 2 GiB (pmap entries keep only address
 * bits [39:12]), so the memmap is live and the tests count pages by their use; stage-2 roots
 * come from just after the palloc range. Every page the code under test sees (guest pages,
 * pmap leaves and stage-2 tables, disk cache and overlay pages, B-tree nodes) comes from one
 * of the page sources below.
 *
 * Guests: a pmap + stage-2 per VM over RAM_SIZE bytes at RAM_BASE; loads and stores as the
 * guest would make them (gread, gwrite: a store faults its page writable first).
 *
 * The driver: one virtio-mmio device per struct drv, driven as Linux's virtio_mmio would
 * (probe, feature negotiation, queue setup, DRIVER_OK), with queue qi's rings at
 * RING_GPA(qi) (descriptor table, available ring and used ring a page each) and indirect
 * tables at d->itab. */
#ifndef MB_TEST_FAKE_GUEST_H
#define MB_TEST_FAKE_GUEST_H
#include <stdint.h>
#include "pmap.h"
#include "stage2.h"
#include "palloc.h"
#include "bits.h"
#include "virtq.h"
#include "vblk.h"
#include "vnet.h"

#define RAM_BASE    MB_GUEST_RAM_BASE
#define RAM_SIZE    (4ull << 20)              /* 1024 guest pages per VM, two pmap leaves */
#define POOL_PAGES  8192                      /* palloc's range (32 MiB) */
#define FG_MAX_VMS  8
#define ROOT_PAGES  (2 * FG_MAX_VMS)          /* stage-2 roots (8 KiB aligned) after it */

/* ---- PRNG (splitmix64); each test seeds rng_state ---- */

extern uint64_t rng_state;
uint64_t rnd(void);
uint64_t rn(uint64_t n);                      /* in [0, n), 0 if n is 0 */

/* ---- machine memory ---- */

extern uint8_t *pool;                         /* POOL_PAGES for palloc, then ROOT_PAGES */

/* A page source over g_palloc: hands out zeroed pages in memmap use 'use' (no sharers) and
 * checks that each comes back through it, in that use. It can run out of memory on demand
 * (armed): after 'budget' more allocations, or when palloc has 'used_limit' pages out; then
 * it first asks 'reclaim' (if set) for pages back and fails only if that gave none. */
struct src {
	uint16_t use;             /* memmap use of the pages it hands out */
	long allocs, frees;
	int armed;                /* out of memory after 'budget' more allocations */
	long budget, failed;
	uint64_t used_limit;      /* or: out of memory when palloc has this many pages out */
	uint64_t (*reclaim)(void);/* out of memory: pages given back, tried before failing */
	long reclaimed;
};

/* guest pages (MM_GUEST), page tables (MM_PTABLE), the disk code's pages (MM_MONITOR) */
extern struct src guest_s, table_s, disk_s;
extern const struct page_source guest_src, table_src, disk_src;

/* Pages of g_palloc in a given memmap use; pages palloc has out. */
uint64_t mm_count(uint16_t use);
uint64_t used_pages(void);
struct memmap_entry *mm(uint64_t page);

/* ---- guests ---- */

struct vm {
	struct pmap *pm;
	struct stage2 s2;
	struct vdisk_guest g;     /* pm, s2 and the guest and table sources */
};

extern struct vm vms[FG_MAX_VMS];
extern int nvms;

/* Each test's setup: fresh g_palloc over the pool (mapped on first use), arch stub counters
 * and page sources reset, no VMs. */
void fake_guest_setup(void);

void vm_init_at(int i);                       /* a fresh, empty guest in slot i */
struct vm *vm_new(void);                      /* one in the next slot */
void vm_destroy(struct vm *v);                /* its pages back (nothing if not there) */
void vms_destroy(void);                       /* every VM's */

/* As a guest load: what the VM sees at gpa, without faulting anything in. */
void gread(struct vm *v, uint64_t gpa, void *buf, uint64_t len);
/* As a guest store: a write fault first where the page is not writable (copy-on-write).
 * The guest's own faults are not what the tests inject memory failures into. */
void gwrite(struct vm *v, uint64_t gpa, const void *buf, uint64_t len);
void gfill(struct vm *v, uint64_t gpa, int c, uint64_t len);
void g16(struct vm *v, uint64_t gpa, uint16_t x);
uint8_t r8(struct vm *v, uint64_t gpa);
uint16_t r16(struct vm *v, uint64_t gpa);
uint32_t r32(struct vm *v, uint64_t gpa);
uint64_t ma_of(struct vm *v, uint64_t gpa);   /* machine page mapped at gpa */

/* ---- the driver ---- */

#define RING_GPA(q) (RAM_BASE + 0x200000 + 0x3000ull * (q))   /* desc, avail, used: a page each */
#define FG_MAX_QUEUES 2
#define FG_MAX_QSIZE  256u

struct seg { uint64_t gpa; uint32_t len; uint16_t flags; };
#define R 0
#define W VIRTQ_DESC_F_WRITE

struct dq { uint16_t avail_idx, used_idx, next_desc; uint64_t desc, avail, used; };
struct rxrec { unsigned n; struct seg s[8]; };

struct drv {
	struct vm *v;
	int (*mmio)(struct drv *d, uint64_t off, int size, int write, uint64_t *val);
	uint32_t qsize;                   /* entries per queue */
	uint64_t itab;                    /* where post() puts an indirect table */
	uint64_t offered, features;
	struct dq q[FG_MAX_QUEUES];
	int irq_level;
	long irq_raises, irq_changes, logs;
	union {                           /* the device model driven */
		struct vblk b;
		struct {                  /* virtio-net, and test_vnet's RX bookkeeping */
			struct vnet n;
			struct rxrec rec[FG_MAX_QSIZE];   /* what each posted RX chain is */
			uint64_t rx_next;         /* where the next RX buffer goes */
			unsigned rx_posted;       /* buffers posted, not used */
		};
	};
};

/* d (zeroed by the caller) gets a new VM; its queues' rings are at RING_GPA(q). The caller
 * then initialises the device with on_irq, on_log and d as the context. */
void drv_attach(struct drv *d, int (*mmio)(struct drv *, uint64_t, int, int, uint64_t *), uint32_t qsize,
		uint64_t itab);
void on_irq(void *ctx, int level);             /* checks the line only moves on a change */
void on_log(void *ctx, const char *msg);

uint32_t rd(struct drv *d, uint32_t off);
void wr(struct drv *d, uint32_t off, uint32_t val);
/* A config space field as virtio_mmio's vm_get reads it: 8 bytes as two 32-bit reads. */
uint64_t cfg(struct drv *d, uint32_t off, int size);
void status_add(struct drv *d, uint32_t bits);

/* Bring-up as virtio_mmio's probe: drv_negotiate checks the device (magic, version 2,
 * device_id), resets it, sets ACKNOWLEDGE and DRIVER, reads the offered features and
 * accepts those in want (FEATURES_OK must stick); drv_queue_setup zeroes queue qi's rings
 * and sets it up with qsize entries; drv_driver_ok sets DRIVER_OK. */
void drv_negotiate(struct drv *d, uint32_t device_id, uint64_t want);
void drv_queue_setup(struct drv *d, unsigned qi);
void drv_driver_ok(struct drv *d);

void put_desc(struct drv *d, uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
	      uint16_t next);
/* Makes a chain of the segments available on queue qi (in the ring's descriptors, or in one
 * indirect table at d->itab) and returns its head; does not kick. */
uint16_t post(struct drv *d, unsigned qi, const struct seg *s, unsigned n, int indirect);
/* The next used element of queue qi, if any. */
int used_next(struct drv *d, unsigned qi, uint32_t *id, uint32_t *len);
#endif
