/* Guests' networks: the switches and each VM's virtio-net devices. Device work of every VM
 * runs under devices_lock (disks.c): a frame remaps pages into another VM, which may be
 * using them as a ring of one of its devices. */
#include "nets.h"
#include "disks.h"
#include "hostnet.h"
#include "hostdt.h"
#include "vm.h"
#include "vnet.h"
#include "console.h"
#include "fmt.h"
#include "mb_string.h"
#include "mirrorball/hostimg.h"
#include "mirrorball/layout.h"

static struct vnet_switch switches[MB_IMG_MAX_NETWORKS];
static int switch_ready[MB_IMG_MAX_NETWORKS];
static struct vnet devices[MAX_VMS][MB_VM_MAX_NETS];
static int attached[MAX_VMS][MB_VM_MAX_NETS];

/* The uplink ([host] uplink): QEMU's user network through hostnet.c, one more port of one
 * network's switch. Set up at the first VM boot, from the host image's header. */
static int uplink_checked;
static int uplink_net = -1;           /* the network with a working uplink, or -1 */
static int uplink_wanted = -1;        /* the network the image asks for */
static uint8_t uplink_frame[HOSTNET_FRAME_MAX];
static uint64_t uplink_drop_offload;  /* guests' frames for the uplink that cannot go (GSO) */

static int uplink_send(void *ctx, const struct vnet_frame *f)
{
	(void)ctx;
	int len = vnet_frame_linearize(f, uplink_frame, sizeof(uplink_frame));
	if (len < 0) {
		uplink_drop_offload++;
		return 0;
	}
	return hostnet_send(uplink_frame, (uint32_t)len);
}

static const struct vnet_uplink uplink_port = { uplink_send, 0 };

static void uplink_rx(void *ctx, const uint8_t *frame, uint32_t len)
{
	vnet_switch_from_uplink(ctx, frame, len);
}

/* Under devices_lock, once: the header's MB_IMG_F_UPLINK, the host's virtio-net. */
static void uplink_setup(void)
{
	const struct mb_img_header *h = (const void *)(uintptr_t)MB_HOSTIMG_LOAD_ADDR;
	uplink_checked = 1;
	if (!(h->flags & MB_IMG_F_UPLINK) || h->uplink_network >= MB_IMG_MAX_NETWORKS)
		return;
	uplink_wanted = (int)h->uplink_network;
	static struct host_topology t;
	const char *err = 0;
	if (hostdt_parse((const void *)(uintptr_t)MB_HOST_RAM_BASE, 2u << 20, &t, &err) || hostnet_open(&t, &err)) {
		mb_printf("uplink: network %d gets no uplink: %s\n", uplink_wanted, err);
		return;
	}
	if (!switch_ready[uplink_wanted]) {
		vnet_switch_init(&switches[uplink_wanted]);
		switch_ready[uplink_wanted] = 1;
	}
	switches[uplink_wanted].uplink = &uplink_port;
	__atomic_store_n(&uplink_net, uplink_wanted, __ATOMIC_RELEASE);
	mb_printf("uplink: network %d <-> QEMU's user network (host virtio-net)\n", uplink_net);
}

int nets_uplink_active(void)
{
	return __atomic_load_n(&uplink_net, __ATOMIC_ACQUIRE) >= 0;
}

void nets_poll(void)
{
	if (!nets_uplink_active() || !hostnet_rx_pending())
		return;
	spin_lock(&devices_lock);
	hostnet_poll(uplink_rx, &switches[uplink_net], 64);
	spin_unlock(&devices_lock);
}

static void net_irq(void *ctx, int level)
{
	struct vnet *v = ctx;
	int idx = (int)(v - &devices[0][0]);
	struct vm *vm = &vms[idx / MB_VM_MAX_NETS];
	vgic_set_level(&vm->vgic, 32 + MB_GUEST_VIRTIO_SPI0 + MB_VM_NET_SLOT0 + (uint32_t)(idx % MB_VM_MAX_NETS), level);
}

static void net_log(void *ctx, const char *msg)
{
	struct vnet *v = ctx;
	int idx = (int)(v - &devices[0][0]);
	vm_log(&vms[idx / MB_VM_MAX_NETS], "net %d: %s", idx % MB_VM_MAX_NETS, msg);
}

void nets_attach(struct vm *vm)
{
	spin_lock(&devices_lock);
	if (!uplink_checked)
		uplink_setup();
	for (int s = 0; s < MB_VM_MAX_NETS; s++) {
		const struct mb_img_net *n = &vm->desc->nets[s];
		if (!n->present || n->network >= MB_IMG_MAX_NETWORKS)
			continue;
		if (!switch_ready[n->network]) {
			vnet_switch_init(&switches[n->network]);
			switch_ready[n->network] = 1;
		}
		struct vnet *v = &devices[vm->index][s];
		struct vnet_guest g = { &vm->pmap, &vm->s2, &guest_pages, &guest_pages };
		if (attached[vm->index][s])
			vnet_switch_detach(&switches[n->network], v);
		vnet_init(v, &g, n->mac, n->mtu, net_irq, net_log, v);
		if (n->network == uplink_wanted)
			vnet_limit_features(v, VNET_F_HOST_TSO4 | VNET_F_HOST_TSO6);   /* the uplink takes no GSO frames */
		attached[vm->index][s] = vnet_switch_attach(&switches[n->network], v) >= 0;
		if (!attached[vm->index][s])
			vm_log(vm, "net %d: network %u has no free port; the device stays unplugged", s, n->network);
	}
	spin_unlock(&devices_lock);
}

void nets_detach(struct vm *vm)
{
	spin_lock(&devices_lock);
	for (int s = 0; s < MB_VM_MAX_NETS; s++)
		if (attached[vm->index][s]) {
			vnet_switch_detach(&switches[vm->desc->nets[s].network], &devices[vm->index][s]);
			attached[vm->index][s] = 0;
		}
	spin_unlock(&devices_lock);
}

int nets_mmio(struct vm *vm, uint64_t off, int size, int write, uint64_t *val)
{
	uint64_t slot = off / MB_GUEST_VIRTIO_SIZE;
	if (slot < MB_VM_NET_SLOT0 || slot >= MB_VM_NET_SLOT0 + MB_VM_MAX_NETS)
		return -2;
	int s = (int)(slot - MB_VM_NET_SLOT0);
	if (!vm->desc->nets[s].present || !attached[vm->index][s])
		return -2;
	spin_lock(&devices_lock);
	int rc = vnet_mmio(&devices[vm->index][s], off % MB_GUEST_VIRTIO_SIZE, size, write, val);
	spin_unlock(&devices_lock);
	return rc;
}

void nets_tick(void)
{
	spin_lock(&devices_lock);
	for (int n = 0; n < MB_IMG_MAX_NETWORKS; n++)
		if (switch_ready[n])
			vnet_switch_tick(&switches[n]);
	spin_unlock(&devices_lock);
}

int nets_stats_json(struct vm *vm, char *buf, size_t len)
{
	int n = mb_snprintf(buf, len, ",\"nets\":[");
	int first = 1;
	for (int s = 0; s < MB_VM_MAX_NETS; s++) {
		if (!attached[vm->index][s])
			continue;
		const struct vnet_stats *st = &devices[vm->index][s].st;
		n += mb_snprintf(buf + n, len - n,
				 "%s{\"slot\":%d,\"network\":%u,\"tx_frames\":%lu,\"tx_bytes\":%lu,\"rx_frames\":%lu,"
				 "\"rx_bytes\":%lu,\"remapped_bytes\":%lu,\"copied_bytes\":%lu,\"drop_malformed\":%lu,"
				 "\"drop_no_rxbuf\":%lu,\"drop_offload\":%lu,\"broken_queues\":%lu",
				 first ? "" : ",", s, vm->desc->nets[s].network, st->tx_frames, st->tx_bytes,
				 st->rx_frames, st->rx_bytes, st->remapped_bytes, st->copied_bytes,
				 st->drop_malformed, st->drop_no_rxbuf, st->drop_offload, st->broken_queues);
		if (vm->desc->nets[s].network == uplink_wanted) {
			/* this VM's traffic with the outside, then the uplink's own (the whole network's) */
			const struct hostnet_counters *u = &hostnet_stats;
			n += mb_snprintf(buf + n, len - n,
					 ",\"uplink_tx_frames\":%lu,\"uplink_tx_bytes\":%lu,\"uplink_rx_frames\":%lu,"
					 "\"uplink_rx_bytes\":%lu,\"uplink\":{\"up\":%d,\"tx_frames\":%lu,\"tx_bytes\":%lu,"
					 "\"rx_frames\":%lu,\"rx_bytes\":%lu,\"tx_drop_full\":%lu,\"tx_drop_bad\":%lu,"
					 "\"tx_drop_offload\":%lu,\"rx_bad\":%lu,\"bad_ids\":%lu}",
					 st->uplink_tx_frames, st->uplink_tx_bytes, st->uplink_rx_frames, st->uplink_rx_bytes,
					 uplink_net >= 0 && !u->broken, u->tx_frames, u->tx_bytes, u->rx_frames, u->rx_bytes,
					 u->tx_drop_full, u->tx_drop_bad, uplink_drop_offload, u->rx_bad, u->bad_ids);
		}
		n += mb_snprintf(buf + n, len - n, "}");
		first = 0;
	}
	n += mb_snprintf(buf + n, len - n, "]");
	return n;
}
