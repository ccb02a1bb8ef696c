/* A polled virtio-net driver for the uplink: QEMU's user-mode network on the host's
 * virtio-mmio bus. One RX and one TX queue of NBUF entries, each entry one descriptor over a
 * fixed buffer of the monitor's: the 12-byte virtio-net header, then the frame. No offloads
 * are negotiated, so the device hands us plain frames and takes plain frames: the switch fills
 * in checksums the guests left to the device (vnet_frame_linearize). See hostnet.h. */
#include "hostnet.h"
#include "hostvirtio.h"
#include "arch.h"
#include "bits.h"
#include "mb_string.h"

#define VIRTIO_ID_NET 1
#define RXQ 0
#define TXQ 1
#define NBUF 64                       /* entries per queue: a power of two */
#define HDR 12u                       /* struct virtio_net_hdr_v1 */
#define BUF 2048u                     /* header + frame */

static HV_RING(NBUF) rx_ring, tx_ring;
static uint8_t rx_buf[NBUF][BUF] __aligned(64);
static uint8_t tx_buf[NBUF][BUF] __aligned(64);
static struct hv_queue rxq, txq;
static volatile uint8_t *dev;
static uint8_t rx_posted[NBUF], tx_busy[NBUF];
static uint16_t tx_free[NBUF];        /* a stack of idle TX slots */
static unsigned ntx_free;
struct hostnet_counters hostnet_stats;

static void post_rx(uint16_t id)
{
	rxq.desc[id] = (struct hv_desc){ (uint64_t)(uintptr_t)rx_buf[id], BUF, HV_DESC_WRITE, 0 };
	rx_posted[id] = 1;
	hv_queue_add(&rxq, id);
}

/* The device said something impossible: stop talking to it. */
static void broken(void)
{
	hostnet_stats.bad_ids++;
	hostnet_stats.broken = 1;
}

int hostnet_open(const struct host_topology *t, const char **err)
{
	int legacy;
	uint32_t got;
	dev = hv_find(t, VIRTIO_ID_NET, &legacy);
	if (!dev)
		return *err = legacy ? "the host's virtio-net uses the legacy transport (QEMU needs -global virtio-mmio.force-legacy=false)"
				     : "no virtio-net device on the host", -1;
	/* no features beyond VERSION_1: plain frames both ways, one frame per buffer */
	if (hv_negotiate(dev, 0, &got, err) || hv_queue_setup(&rxq, dev, RXQ, &rx_ring, NBUF, err) ||
	    hv_queue_setup(&txq, dev, TXQ, &tx_ring, NBUF, err)) {
		dev = 0;
		return -1;
	}
	*rxq.avail_flags = HV_AVAIL_NO_INTERRUPT;
	*txq.avail_flags = HV_AVAIL_NO_INTERRUPT;
	ntx_free = 0;
	for (uint16_t i = 0; i < NBUF; i++) {
		tx_busy[i] = 0;
		tx_free[ntx_free++] = (uint16_t)(NBUF - 1 - i);
		post_rx(i);
	}
	hv_driver_ok(dev);
	hv_queue_notify(&rxq);
	return 0;
}

/* Takes back the TX slots the device is done with. */
static void reclaim_tx(void)
{
	uint32_t id, len;
	while (!hostnet_stats.broken && hv_queue_next_used(&txq, &id, &len)) {
		if (id >= NBUF || !tx_busy[id]) {
			broken();
			return;
		}
		tx_busy[id] = 0;
		tx_free[ntx_free++] = (uint16_t)id;
	}
}

int hostnet_send(const uint8_t *frame, uint32_t len)
{
	if (!dev || hostnet_stats.broken)
		return 0;
	if (len < 14 || len > HOSTNET_FRAME_MAX) {
		hostnet_stats.tx_drop_bad++;
		return 0;
	}
	reclaim_tx();
	if (!ntx_free || hostnet_stats.broken) {
		hostnet_stats.tx_drop_full++;
		return 0;
	}
	uint16_t id = tx_free[--ntx_free];
	memset(tx_buf[id], 0, HDR);
	memcpy(tx_buf[id] + HDR, frame, len);
	txq.desc[id] = (struct hv_desc){ (uint64_t)(uintptr_t)tx_buf[id], HDR + len, 0, 0 };
	tx_busy[id] = 1;
	hv_queue_add(&txq, id);
	hv_queue_notify(&txq);
	hostnet_stats.tx_frames++;
	hostnet_stats.tx_bytes += len;
	return 1;
}

int hostnet_rx_pending(void)
{
	return dev && !hostnet_stats.broken && hv_queue_pending(&rxq);
}

unsigned hostnet_poll(void (*rx)(void *ctx, const uint8_t *frame, uint32_t len), void *ctx, unsigned budget)
{
	unsigned got = 0, reposted = 0;
	uint32_t id, len;
	if (!dev || hostnet_stats.broken)
		return 0;
	while (got < budget && hv_queue_next_used(&rxq, &id, &len)) {
		if (id >= NBUF || !rx_posted[id]) {
			broken();
			break;
		}
		rx_posted[id] = 0;
		/* the device's length covers the header and the frame, within the buffer we gave */
		if (len < HDR + 14 || len > BUF || len - HDR > HOSTNET_FRAME_MAX) {
			hostnet_stats.rx_bad++;
		} else {
			hostnet_stats.rx_frames++;
			hostnet_stats.rx_bytes += len - HDR;
			rx(ctx, rx_buf[id] + HDR, len - HDR);
			got++;
		}
		post_rx((uint16_t)id);
		reposted++;
	}
	if (reposted) {
		hv_queue_notify(&rxq);
		hv_ack_interrupts(dev);
	}
	reclaim_tx();
	return got;
}
