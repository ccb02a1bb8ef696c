/* The uplink's NIC: QEMU's virtio-net (`-netdev user`) on the modern virtio-mmio transport,
 * driven by polling. Every call is made with devices_lock held (disks.c): the driver has no
 * lock of its own. Everything the device hands back (used ids, lengths) is checked. */
#ifndef MB_HOSTNET_H
#define MB_HOSTNET_H
#include <stdint.h>
#include "hostdt.h"

#define HOSTNET_FRAME_MAX 1518u      /* MTU 1500 + Ethernet + VLAN headers: slirp's frames */

/* Finds the virtio-net device among the DT's slots and brings it up with RX buffers posted.
 * 0, or -1 with a reason. */
int hostnet_open(const struct host_topology *t, const char **err);
/* Queues one frame (Ethernet header on, 14..HOSTNET_FRAME_MAX bytes) for the outside. 1 taken,
 * 0 dropped (counted: TX ring full, bad length, device broken). */
int hostnet_send(const uint8_t *frame, uint32_t len);
/* Anything received? One load; safe without the lock (a hint only). */
int hostnet_rx_pending(void);
/* Hands up to budget received frames to rx (which must copy what it needs before it returns)
 * and gives their buffers back to the device. Returns frames handed over. */
unsigned hostnet_poll(void (*rx)(void *ctx, const uint8_t *frame, uint32_t len), void *ctx, unsigned budget);

struct hostnet_counters {
	uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes;
	uint64_t tx_drop_full;       /* no free TX slot: the device has not used earlier frames */
	uint64_t tx_drop_bad;        /* a frame of a bad length or one the switch could not copy */
	uint64_t rx_bad;             /* used RX entries with a bad length (buffer reposted) */
	uint64_t bad_ids;            /* used entries naming a buffer we did not post: device broken */
	int broken;                  /* 1: the device misbehaved; the uplink stays down */
};
extern struct hostnet_counters hostnet_stats;
#endif
