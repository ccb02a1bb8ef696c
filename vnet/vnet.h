/* vnet: a guest's virtio-net device (virtio 1.x section 5.1) on the modern virtio-mmio
 * transport, plugged into a port of the monitor's virtual subnet switch (Disco section 4.2.6).
 * Portable: runs in host unit tests. Every descriptor is hostile until checked: a malformed
 * TX frame is dropped and counted, a broken queue sets DEVICE_NEEDS_RESET on that device
 * only; the sender, the receivers and the monitor never notice.
 *
 * Data path: a TX chain is gathered into a struct vnet_frame (the 12-byte header, parsed, and
 * the frame as a list of pieces of the sender's guest memory, by gpa); the switch picks the
 * destination ports (MAC learning; broadcast, multicast and unknown unicast flooded) and
 * delivers the frame into each one's RX queue (mergeable buffers when negotiated). Each
 * page-aligned whole page of the sender that lands in a page-aligned whole page of a receive
 * buffer is remapped: the sender's page becomes a shared copy-on-write page (MM_SHARED) and is
 * mapped copy-on-write in place of the receiver's buffer page (vnet/remap.c). Everything else
 * is copied page by page through a one-page bounce buffer (pmap_copy on each side), so no
 * two VMs' pmap locks are ever held together.
 *
 * Locking: v->lock serialises the device (transport, queues, RX scratch); v->tx_lock the TX
 * path of one port (one sender at a time, frames in order). The TX path runs after the MMIO
 * access that kicked it, with no device lock held: tx_lock(sender), then device locks one at a
 * time (sender's to pop and push, each receiver's to deliver), then the switch's lock for the
 * MAC table only briefly. No lock is taken while another device's lock is held: no cycles. */
#ifndef MB_VNET_H
#define MB_VNET_H
#include <stdint.h>
#include "vmmio.h"
#include "virtq.h"
#include "spinlock.h"
#include "pmap.h"
#include "pagesrc.h"
#include "guestmem.h"

#define VNET_QUEUE_MAX 256u           /* ring entries; Linux's rings of 256 fit in a page each */
#define VNET_RXQ 0
#define VNET_TXQ 1
#define VNET_HDR_LEN 12u              /* struct virtio_net_hdr_v1 (num_buffers included) */
#define VNET_ETH_HLEN 14u
#define VNET_VLAN_HLEN 4u
#define VNET_MTU_DEFAULT 1500u
#define VNET_MTU_MIN 68u
#define VNET_MTU_MAX (65535u - VNET_HDR_LEN - VNET_ETH_HLEN - VNET_VLAN_HLEN)
#define VNET_GSO_FRAME_MAX (65536u + VNET_ETH_HLEN + VNET_VLAN_HLEN)  /* a TSO frame, L2 header included */
#define VNET_CHAIN_MAX (16u << 20)    /* a longer chain breaks the queue; a shorter too-long frame is dropped */
#define VNET_RX_BUFS 256u             /* mergeable receive buffers one frame may take */
#define VNET_RX_PIECES 512u           /* their writable segments */

/* feature bits (virtio-net) */
#define VNET_F_CSUM        (1ull << 0)
#define VNET_F_GUEST_CSUM  (1ull << 1)
#define VNET_F_MTU         (1ull << 3)
#define VNET_F_MAC         (1ull << 5)
#define VNET_F_GUEST_TSO4  (1ull << 7)
#define VNET_F_GUEST_TSO6  (1ull << 8)
#define VNET_F_HOST_TSO4   (1ull << 11)
#define VNET_F_HOST_TSO6   (1ull << 12)
#define VNET_F_MRG_RXBUF   (1ull << 15)
#define VNET_F_STATUS      (1ull << 16)

/* header flags and GSO types */
#define VNET_HDR_F_NEEDS_CSUM 1u
#define VNET_HDR_F_DATA_VALID 2u
#define VNET_GSO_NONE  0u
#define VNET_GSO_TCPV4 1u
#define VNET_GSO_UDP   3u
#define VNET_GSO_TCPV6 4u
#define VNET_GSO_ECN   0x80u
#define VNET_S_LINK_UP 1u

/* A guest's memory, as the data path needs it: the devices' common view (pmap/guestmem.h);
 * `struct vnet_guest` is its old name, kept for existing callers. */
#define vnet_guest guest_mem

struct vnet_hdr {                     /* struct virtio_net_hdr_v1, decoded */
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};

struct vnet_piece { uint64_t gpa; uint32_t len; };

/* A frame in flight: the sender's header and the frame bytes as pieces of its guest memory,
 * or (from the uplink: from == 0) the bytes themselves in monitor memory at data. */
struct vnet_frame {
	struct vnet *from;
	const uint8_t *data;              /* from the uplink: the frame; its hdr is all zero */
	struct vnet_hdr hdr;
	uint32_t len;                     /* frame bytes (Ethernet header on), after the virtio header */
	uint8_t dst[6], src[6];
	unsigned npieces;
	struct vnet_piece piece[VIRTQ_MAX_SEGS];
};

/* Per-port counters (the port's device, summed over its life; reset keeps them). */
struct vnet_stats {
	uint64_t tx_frames, tx_bytes;     /* frames taken from TX and switched */
	uint64_t rx_frames, rx_bytes;     /* frames delivered into RX */
	uint64_t drop_malformed;          /* TX chains refused (header, size, offloads not negotiated) */
	uint64_t drop_no_rxbuf;           /* frames for this port it had no (or too small) RX buffers for */
	uint64_t drop_offload;            /* GSO frames this port did not negotiate receiving */
	uint64_t rx_bad_bufs;             /* RX buffers without room for a header, returned unused */
	uint64_t remapped_bytes, remapped_pages;   /* received by remapping the sender's page */
	uint64_t copied_bytes;            /* received by copying */
	uint64_t drop_nomem;              /* frames lost to a failed copy (out of memory) */
	uint64_t csum_filled;             /* checksums computed for a receiver without GUEST_CSUM */
	uint64_t broken_queues, interrupts;
	uint64_t uplink_tx_frames, uplink_tx_bytes;   /* of tx: frames the uplink took */
	uint64_t uplink_rx_frames, uplink_rx_bytes;   /* of rx: frames that came from the uplink */
};

struct vnet_switch;

struct vnet {
	spinlock_t lock;                  /* the device: transport, queues, RX scratch */
	spinlock_t tx_lock;               /* this port's TX path */
	struct vmmio_dev mmio;
	struct vnet_guest guest;
	struct vnet_switch *sw;
	int port;                         /* index in sw->port[], -1 if not attached */
	uint8_t mac[6];
	uint16_t mtu;
	uint64_t features_off;            /* not offered (vnet_limit_features) */
	int tx_kicked;                    /* set by notify under lock, served after it */
	int rx_kicked;                    /* the driver added RX buffers: senders waiting on us may go */
	/* Backpressure: a unicast frame for a port with no RX buffers is not dropped; the sender's
	 * TX stops at it (the chain goes back) until that port adds buffers. A port that adds none
	 * for two ticks of vnet_switch_tick gets its frame dropped, so no receiver can stall a
	 * sender for long. */
	struct vnet *blocked_on;
	uint32_t blocked_ticks;
	int force_drop;                   /* this TX run drops instead of waiting (the tick said so) */
	uint32_t gen;                     /* + 1 at every device reset: popped chains of older ones are dropped */
	void (*irq)(void *ctx, int level);
	void (*log)(void *ctx, const char *msg);
	void *ctx;
	uint32_t log_budget;
	struct vnet_stats st;
	/* TX scratch (under tx_lock) */
	struct virtq_chain txc;
	struct vnet_frame frame;
	uint8_t bounce[4096];
	/* RX scratch (under lock) */
	struct virtq_chain rxc;
	struct { uint16_t head; uint16_t first, n; uint32_t len; } rxb[VNET_RX_BUFS];
	struct vnet_piece rxp[VNET_RX_PIECES];
	struct pmap_batch batch;          /* remaps into this guest of the frame being delivered */
};

/* mac: the VM config's address (unicast); mtu: 0 for 1500, clamped to [68, VNET_MTU_MAX]. */
void vnet_init(struct vnet *v, const struct vnet_guest *g, const uint8_t mac[6], unsigned mtu,
	       void (*irq)(void *, int), void (*log)(void *, const char *), void *ctx);
/* Before the guest sees the device: these feature bits are not offered (e.g. HOST_TSO for a
 * network whose uplink takes no GSO frames). Kept across resets. */
void vnet_limit_features(struct vnet *v, uint64_t off);
/* A guest access to the device's 0x200-byte window; serves the TX queue after a kick.
 * 0, or -1 (ignored: RAZ/WI). */
int vnet_mmio(struct vnet *v, uint64_t off, int size, int write, uint64_t *val);
/* Serves up to one queue's worth of TX chains (what a kick does); returns frames taken. */
unsigned vnet_tx_run(struct vnet *v);
/* The VM restarts: a fresh device (counters kept). */
void vnet_reset(struct vnet *v);

/* Delivers one frame into v's RX queue (the switch calls it, v->lock not held). 1 delivered,
 * 0 dropped (counted on v). */
int vnet_deliver(struct vnet *v, const struct vnet_frame *f);
/* The same, but 2 (nothing taken, no drop counted) when v has no RX buffers for it now. */
int vnet_deliver_or_wait(struct vnet *v, const struct vnet_frame *f);

/* Copies f's bytes into buf (at most cap) with a pending checksum (NEEDS_CSUM) filled in:
 * the frame as it would be on a wire. Its length, or -1 (a GSO frame, too big, unreadable). */
int vnet_frame_linearize(const struct vnet_frame *f, uint8_t *buf, uint32_t cap);

/* ---- the switch ---- */
#define VNET_MAX_PORTS 16
#define VNET_FDB_SIZE 64
#define VNET_UPLINK_PORT VNET_MAX_PORTS   /* the uplink's number in the MAC table */

/* A switch's uplink: a port to the world outside the monitor (the host's NIC). Frames for it
 * (unicast to an address learnt on it, and every flooded frame from a guest) go to send, which
 * returns 1 if it took the frame, 0 if it dropped it; it must not block. Frames from it enter
 * through vnet_switch_from_uplink. An address learnt on a guest's port never moves to the
 * uplink (the outside cannot take over a VM's MAC). */
struct vnet_uplink {
	int (*send)(void *ctx, const struct vnet_frame *f);
	void *ctx;
};

struct vnet_switch {
	spinlock_t lock;                  /* ports and the MAC table */
	struct vnet *port[VNET_MAX_PORTS];
	const struct vnet_uplink *uplink; /* 0: none; set before any frame flows */
	struct { uint8_t mac[6]; int8_t port; uint8_t valid; uint32_t age; } fdb[VNET_FDB_SIZE];
	uint32_t clock;                   /* for replacing the oldest entry */
	uint64_t flooded, unicast, filtered;
};

void vnet_switch_init(struct vnet_switch *sw);
/* Plugs v into a free port: its index, or -1 if full. */
int vnet_switch_attach(struct vnet_switch *sw, struct vnet *v);
/* Unplugs v and forgets the addresses learnt on it. Only when no TX of another port can be
 * in flight (the monitor pauses the switch's VMs, or the VMs are gone). */
void vnet_switch_detach(struct vnet_switch *sw, struct vnet *v);
/* Learns f's source on its port, then delivers f to its destinations. Returns the number of
 * ports it was delivered to. */
unsigned vnet_switch_send(struct vnet_switch *sw, const struct vnet_frame *f);
/* Once a second or so: senders blocked on a port that has added no buffers since the last
 * tick drop that frame and go on. */
void vnet_switch_tick(struct vnet_switch *sw);
/* A frame from the uplink: len bytes at data (Ethernet header on, no virtio header), already
 * checked to be 14..VNET_GSO_FRAME_MAX bytes by the caller. Learns its source on the uplink
 * port and delivers it (never waits). Returns the number of ports it was delivered to. */
unsigned vnet_switch_from_uplink(struct vnet_switch *sw, const uint8_t *data, uint32_t len);
/* rx added RX buffers: senders blocked on it run their TX again. */
void vnet_switch_unblock(struct vnet_switch *sw, struct vnet *rx);

/* ---- zero-copy (vnet/remap.c) ---- */
/* 0: every frame is copied (the host image's MB_IMG_F_NO_NET_REMAP, for measuring). */
extern int vnet_remap_enabled;
/* Makes the page at sender gpa 'sgpa' (page-aligned, present) a shared copy-on-write page and
 * maps it copy-on-write at receiver gpa 'rgpa' in place of the buffer page there (released in
 * 'batch', which the caller finishes). 0, or -1: nothing changed for the receiver, copy instead. */
int vnet_remap_page(const struct vnet_guest *from, uint64_t sgpa, const struct vnet_guest *to, uint64_t rgpa,
		    struct pmap_batch *batch);
#endif
