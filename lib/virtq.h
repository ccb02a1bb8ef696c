/* virtq: the device side of a virtio 1.x split virtqueue (virtio spec section 2.7), shared by
 * the virtio-blk and virtio-net device models.  Freestanding: no allocation, no libc beyond
 * mem*; built for the monitor (AArch64, -mgeneral-regs-only) and for the host (tests, fuzzer).
 *
 * Guest memory is reached only through the caller's gpa_to_hva callback, which returns a host
 * pointer valid for [gpa, gpa + len) or NULL.  It is called for every guest access (ring
 * entries, descriptors, indirect tables, buffers); nothing is cached between calls except the
 * buffer pointers of a popped chain (struct virtq_seg.hva), which stay valid as long as the
 * caller does not change the guest's memory map before it has finished with the chain.
 *
 * Everything read from guest memory is untrusted: shared indices are read once with an
 * acquire load, descriptors are copied once into local memory, then validated.  A malformed
 * queue makes virtq_pop return a negative VIRTQ_E_* code; the queue is then "broken" (sticky,
 * until virtq_init) and the device model should set DEVICE_NEEDS_RESET.
 *
 * Ordering: virtq_pop uses a load-acquire on avail.idx before reading ring entries and
 * descriptors; virtq_push writes the used element, then publishes used.idx with a
 * store-release, then a full barrier before reading the driver's interrupt suppression
 * (flags or used_event).  Not thread-safe: one thread serves a queue at a time.
 */
#ifndef MB_VIRTQ_H
#define MB_VIRTQ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIRTQ_MAX_SIZE      32768u    /* largest queue size (spec: 2^15) */
#define VIRTQ_MAX_SEGS      256u      /* segments per popped chain */
#define VIRTQ_MAX_INDIRECT  1024u     /* descriptors in one indirect table (as QEMU) */
#define VIRTQ_DEFAULT_MAX_LEN 0xffffffffull  /* bytes per chain (spec: < 2^32) */

/* Descriptor, ring flags (spec 2.7.5 - 2.7.8). */
#define VIRTQ_DESC_F_NEXT     1u
#define VIRTQ_DESC_F_WRITE    2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY     1u

/* Feature bits, in the virtio feature space, so negotiated features can be passed as they are. */
#define VIRTQ_F_INDIRECT_DESC (1ull << 28)
#define VIRTQ_F_EVENT_IDX     (1ull << 29)

/* Return codes: negative means the driver broke the queue (or, for VIRTQ_E_CONFIG and
 * VIRTQ_E_HEAD from virtq_push, the caller passed a bad argument). */
#define VIRTQ_OK               0
#define VIRTQ_E_CONFIG        (-1)    /* virtq_init: bad size / alignment / ring outside RAM */
#define VIRTQ_E_AVAIL_IDX     (-2)    /* avail.idx is more than size ahead of last_avail_idx */
#define VIRTQ_E_RING_MAP      (-3)    /* a ring entry or descriptor could not be mapped */
#define VIRTQ_E_ALIGN         (-4)    /* a ring index mapped to a misaligned host address */
#define VIRTQ_E_HEAD          (-5)    /* head index >= queue size */
#define VIRTQ_E_NEXT          (-6)    /* next index >= queue size (or indirect table length) */
#define VIRTQ_E_LOOP          (-7)    /* chain longer than the table: a loop */
#define VIRTQ_E_ORDER         (-8)    /* a device-readable descriptor after a writable one */
#define VIRTQ_E_BUF_MAP       (-9)    /* a buffer lies (partly) outside guest RAM, or wraps */
#define VIRTQ_E_TOO_MANY      (-10)   /* more than VIRTQ_MAX_SEGS segments */
#define VIRTQ_E_TOO_LONG      (-11)   /* total length over q->max_len */
#define VIRTQ_E_INDIRECT_OFF  (-12)   /* INDIRECT used but VIRTQ_F_INDIRECT_DESC not negotiated */
#define VIRTQ_E_INDIRECT_NEST (-13)   /* INDIRECT inside an indirect table */
#define VIRTQ_E_INDIRECT_NEXT (-14)   /* INDIRECT together with NEXT */
#define VIRTQ_E_INDIRECT_LEN  (-15)   /* indirect table length 0, not a multiple of 16, too big */
#define VIRTQ_E_INDIRECT_MAP  (-16)   /* indirect table (partly) outside guest RAM */
#define VIRTQ_E_NOT_READY     (-17)   /* virtq_pop/push on a queue virtq_init did not accept */

typedef void *(*virtq_gpa_to_hva_fn)(void *ctx, uint64_t gpa, uint64_t len, int write);
/* Optional: checks a buffer lies in guest RAM without mapping it (see struct virtq.buf_ok). */
typedef bool (*virtq_buf_ok_fn)(void *ctx, uint64_t gpa, uint64_t len, int write);

struct virtq {
	/* set by virtq_init */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint64_t features;               /* VIRTQ_F_* negotiated */
	virtq_gpa_to_hva_fn gpa_to_hva;
	void *ctx;
	uint32_t size;                   /* power of 2, 1..VIRTQ_MAX_SIZE */
	/* the caller may lower this after virtq_init (e.g. virtio-blk's max request) */
	uint64_t max_len;                /* bytes per chain, readable + writable */
	/* The caller may set this (virtq_init keeps it): buffers are then only checked with it,
	 * never mapped, and their segments get hva = NULL. For devices that reach buffers page
	 * by page through their own translation (a buffer contiguous in guest memory need not be
	 * in machine memory); virtq_chain_read/write copy nothing from such segments. */
	virtq_buf_ok_fn buf_ok;
	/* state */
	uint16_t last_avail_idx;         /* next avail ring slot to take */
	uint16_t used_idx;               /* next used ring slot to fill (our shadow of used.idx) */
	int broken;                      /* 0, or the first error virtq_pop returned (sticky) */
	bool ready;
};

struct virtq_seg {
	uint64_t gpa;
	void *hva;                       /* gpa_to_hva(gpa, len, write), checked non-NULL */
	uint32_t len;                    /* > 0: zero-length descriptors make no segment */
	bool write;                      /* device-writable */
};

struct virtq_chain {
	uint16_t head;                   /* what to pass to virtq_push */
	uint16_t nseg;                   /* segments in seg[] */
	uint16_t nread;                  /* seg[0 .. nread) readable, seg[nread .. nseg) writable */
	uint16_t ndesc;                  /* descriptors walked (indirect tables included) */
	uint64_t read_len, write_len;    /* byte totals of the readable / writable segments */
	struct virtq_seg seg[VIRTQ_MAX_SEGS];
};

/* Sets q up (last_avail_idx = used_idx = 0, not broken) and checks the configuration: size a
 * power of 2 <= VIRTQ_MAX_SIZE, desc 16-aligned, avail 2-aligned, used 4-aligned, and each of
 * the three areas (with the event fields when VIRTQ_F_EVENT_IDX) mappable through gpa_to_hva.
 * Returns VIRTQ_OK or VIRTQ_E_CONFIG (then q->ready is false and pop/push refuse). */
int virtq_init(struct virtq *q, uint32_t size, uint64_t desc_gpa, uint64_t avail_gpa,
	       uint64_t used_gpa, uint64_t features, virtq_gpa_to_hva_fn gpa_to_hva, void *ctx);

/* Number of available chains not yet popped (0..size), or a negative VIRTQ_E_*. */
int virtq_pending(struct virtq *q);

/* Takes the next available chain and walks it into c.  Returns 1 (c filled), 0 (queue empty,
 * c untouched), or a negative VIRTQ_E_* (the queue is broken: c holds a partial walk,
 * last_avail_idx is not advanced and later calls return the same code).
 *
 * Checked: avail.idx at most size ahead; head and every next < size (< table length inside an
 * indirect table); at most size descriptors walked in the table and at most the table's length
 * in an indirect one (so loops end); INDIRECT only if negotiated, never with NEXT, never inside
 * an indirect table, table length a non-zero multiple of 16 up to VIRTQ_MAX_INDIRECT entries and
 * mappable as a whole; readable descriptors before writable ones (zero-length ones included);
 * total length <= max_len; at most VIRTQ_MAX_SEGS segments; every non-empty buffer mapped
 * whole through gpa_to_hva (no wrap).  Zero-length descriptors make no segment and are not
 * mapped.  Direct descriptors may precede an indirect one (which ends the chain); the indirect
 * descriptor's own WRITE flag is ignored (spec 2.7.5.3.2). */
int virtq_pop(struct virtq *q, struct virtq_chain *c);

/* Gives the last popped chain back (e.g. virtio-net RX with nothing to receive). */
void virtq_unpop(struct virtq *q);

/* Copies up to len bytes of the chain's readable part, starting at byte offset off, into buf.
 * Returns the bytes copied (less than len if the readable part is shorter). */
size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *buf, size_t len);

/* Copies up to len bytes from buf into the chain's writable part at byte offset off (offset 0
 * is the first writable byte).  Returns the bytes copied. */
size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *buf, size_t len);

/* Returns chain `head` to the driver with `written` bytes written: writes the used element,
 * publishes used.idx (release).  Returns 1 if the driver wants an interrupt (no
 * VIRTQ_AVAIL_F_NO_INTERRUPT; or, with EVENT_IDX, used_event was crossed), 0 if not, or a
 * negative VIRTQ_E_* (VIRTQ_E_HEAD if head >= size; VIRTQ_E_RING_MAP / VIRTQ_E_ALIGN). */
int virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/* Driver notifications (kicks).  on = false asks the driver not to kick (VIRTQ_USED_F_NO_NOTIFY,
 * or with EVENT_IDX nothing is written: avail_event is left behind); on = true asks for a kick
 * at the next buffer (clears the flag; with EVENT_IDX writes avail_event = last_avail_idx),
 * then a full barrier: the caller must then call virtq_pending again before sleeping.
 * Returns VIRTQ_OK or a negative VIRTQ_E_*. */
int virtq_notify_enable(struct virtq *q, bool on);

/* A constant string for a VIRTQ_E_* code (or "ok", or "unknown virtq error"). */
const char *virtq_strerror(int err);

#endif
