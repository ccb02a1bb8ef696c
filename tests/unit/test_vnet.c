/* vnet: virtio-net devices on one switch, driven as Linux's virtio_mmio + virtio_net would
 * drive them (fake guests: pmap over palloc pages, as test_vblk): bring-up and config,
 * learning, unicast, flooding, byte-exact frames of random sizes split over random TX
 * descriptors and random mergeable RX buffers (64 KiB GSO frames included), header fields
 * carried, checksum fill-in, zero-copy remapping (COW to the sender's page; a later write by
 * the sender leaves the receiver's copy alone), drops, and hostile descriptors that break one
 * device only. Every page comes back at the end (ASan, page accounting). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
/* The Makefile does not list vnet/ in PORTABLE yet: the test builds the device in. When the vnet .c files
 * join PORTABLE (and -Ivnet the include path), build with -DVNET_PORTABLE or drop these. */
#ifndef VNET_PORTABLE
#include "../../vnet/vnet.c"
#include "../../vnet/switch.c"
#include "../../vnet/remap.c"
#else
#include "vnet.h"
#endif
#include "fake_guest.h"

#define MAX_VMS     4

#define QSIZE       256u                                       /* rings at RING_GPA(q) */
#define ITAB_GPA    (RAM_BASE + 0x206000)
#define TXHDR_GPA   (RAM_BASE + 0x207000)
#define TXDATA_GPA  (RAM_BASE + 0x210000)                      /* up to 0x230000 */
#define RXDATA_GPA  (RAM_BASE + 0x240000)                      /* up to 0x3f0000 */
#define RXDATA_END  (RAM_BASE + 0x3f0000)

/* ---- the driver ---- */
static struct drv *drvs[MAX_VMS];
static int ndrvs;
static struct vnet_switch sw;

static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static void mac_of(int i, uint8_t mac[6])
{
	const uint8_t m[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x10 + i) };
	memcpy(mac, m, 6);
}

static int net_mmio(struct drv *d, uint64_t off, int size, int write, uint64_t *val)
{
	return vnet_mmio(&d->n, off, size, write, val);
}

static struct drv *drv_new(unsigned mtu)
{
	assert_true(ndrvs < MAX_VMS);
	struct drv *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	drvs[ndrvs] = d;
	drv_attach(d, net_mmio, QSIZE, ITAB_GPA);
	uint8_t mac[6];
	mac_of(ndrvs, mac);
	const struct vnet_guest g = { d->v->pm, &d->v->s2, &guest_src, &table_src };
	vnet_init(&d->n, &g, mac, mtu, on_irq, on_log, d);
	assert_int_equal(vnet_switch_attach(&sw, &d->n), ndrvs);
	ndrvs++;
	return d;
}

#define F_LINUX (VIRTIO_F_VERSION_1 | VNET_F_CSUM | VNET_F_GUEST_CSUM | VNET_F_MTU | VNET_F_MAC | \
		 VNET_F_GUEST_TSO4 | VNET_F_GUEST_TSO6 | VNET_F_HOST_TSO4 | VNET_F_HOST_TSO6 | \
		 VNET_F_MRG_RXBUF | VNET_F_STATUS | VIRTQ_F_INDIRECT_DESC | VIRTQ_F_EVENT_IDX | (1ull << 17))

static void post_rx(struct drv *d, unsigned n, uint32_t size);

/* virtio_mmio + virtio_net probe: features, both queues, DRIVER_OK, RX filled. */
static void bring_up(struct drv *d, uint64_t want, unsigned rxbufs, uint32_t rxsize)
{
	drv_negotiate(d, 1, want);
	for (unsigned q = 0; q < 2; q++)
		drv_queue_setup(d, q);
	d->rx_next = RXDATA_GPA;
	d->rx_posted = 0;
	post_rx(d, rxbufs, rxsize);       /* Linux fills RX before DRIVER_OK */
	drv_driver_ok(d);
}

/* n single-descriptor RX buffers of size bytes (Linux's mergeable buffers), wrapping the area. */
static void post_rx(struct drv *d, unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		if (d->rx_next + size > RXDATA_END)
			d->rx_next = RXDATA_GPA;
		struct seg s = { d->rx_next, size, W };
		uint16_t h = post(d, 0, &s, 1, 0);
		d->rec[h].n = 1;
		d->rec[h].s[0] = s;
		d->rx_next += size;
		d->rx_posted++;
	}
}

/* One RX buffer as a chain of segments (direct). */
static void post_rx_chain(struct drv *d, const struct seg *s, unsigned n)
{
	uint16_t h = post(d, 0, s, n, 0);
	d->rec[h].n = n;
	memcpy(d->rec[h].s, s, n * sizeof(*s));
	d->rx_posted++;
}

static void read_buf(struct drv *d, uint32_t id, uint32_t len, uint8_t *out)
{
	assert_true(id < QSIZE);
	for (unsigned i = 0; i < d->rec[id].n && len; i++) {
		uint32_t k = d->rec[id].s[i].len < len ? d->rec[id].s[i].len : len;
		gread(d->v, d->rec[id].s[i].gpa, out, k);
		out += k;
		len -= k;
	}
	assert_int_equal(len, 0);
}

/* The next received frame, as virtio_net's receive_mergeable: header + frame into out; its
 * length (frame only), or -1 if nothing was received. */
static long recv_frame(struct drv *d, struct vnet_hdr *h, uint8_t *out)
{
	static uint8_t buf[VNET_GSO_FRAME_MAX + 4 * 4096];
	uint32_t id, len;
	if (!used_next(d, 0, &id, &len))
		return -1;
	d->rx_posted--;
	assert_true(len >= VNET_HDR_LEN);
	read_buf(d, id, len, buf);
	uint64_t total = len;
	uint16_t nb = (uint16_t)(buf[10] | buf[11] << 8);
	if (d->features & VNET_F_MRG_RXBUF) {
		assert_true(nb >= 1);
		for (unsigned i = 1; i < nb; i++) {
			assert_true(used_next(d, 0, &id, &len));
			d->rx_posted--;
			assert_true(total + len <= sizeof(buf));
			read_buf(d, id, len, buf + total);
			total += len;
		}
	} else {
		assert_int_equal(nb, 1);
	}
	h->flags = buf[0];
	h->gso_type = buf[1];
	h->hdr_len = (uint16_t)(buf[2] | buf[3] << 8);
	h->gso_size = (uint16_t)(buf[4] | buf[5] << 8);
	h->csum_start = (uint16_t)(buf[6] | buf[7] << 8);
	h->csum_offset = (uint16_t)(buf[8] | buf[9] << 8);
	h->num_buffers = nb;
	memcpy(out, buf + VNET_HDR_LEN, total - VNET_HDR_LEN);
	return (long)(total - VNET_HDR_LEN);
}

static void hdr_bytes(const struct vnet_hdr *h, uint8_t b[12])
{
	b[0] = h->flags;
	b[1] = h->gso_type;
	memcpy(b + 2, &h->hdr_len, 2);
	memcpy(b + 4, &h->gso_size, 2);
	memcpy(b + 6, &h->csum_start, 2);
	memcpy(b + 8, &h->csum_offset, 2);
	memset(b + 10, 0, 2);
}

/* Sends one frame: header at TXHDR_GPA (own descriptor), frame at TXDATA_GPA + off, split into
 * nsplit random descriptors (1: one), direct or indirect. Kicks; checks the TX chain came back. */
static void send_frame(struct drv *d, const struct vnet_hdr *h, const uint8_t *frame, uint32_t len,
		       uint64_t off, unsigned nsplit, int indirect)
{
	uint8_t hb[12];
	hdr_bytes(h, hb);
	gwrite(d->v, TXHDR_GPA, hb, 12);
	gwrite(d->v, TXDATA_GPA + off, frame, len);
	struct seg s[64];
	unsigned n = 0;
	s[n++] = (struct seg){ TXHDR_GPA, 12, R };
	uint32_t at = 0;
	while (at < len) {
		uint32_t k = len - at;
		if (n < nsplit && n < 63 && k > 1)
			k = 1 + (uint32_t)rn(k - 1);
		s[n++] = (struct seg){ TXDATA_GPA + off + at, k, R };
		at += k;
	}
	uint32_t id, ulen;
	while (used_next(d, 1, &id, &ulen))
		;                                     /* raw chains posted by a hostile test */
	uint16_t head = post(d, 1, s, n, indirect);
	wr(d, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_true(used_next(d, 1, &id, &ulen));
	assert_int_equal(id, head);
	assert_int_equal(ulen, 0);
}

static void make_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], const uint8_t src[6])
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	for (uint32_t i = 14; i < len; i++)
		f[i] = (uint8_t)rnd();
}

static const struct vnet_hdr NOHDR;

static void ack(struct drv *d)
{
	wr(d, VMMIO_R_INT_ACK, rd(d, VMMIO_R_INT_STATUS));
}

/* ---- fixture ---- */
static int setup(void **state)
{
	(void)state;
	fake_guest_setup();
	vnet_switch_init(&sw);
	ndrvs = 0;
	rng_state = 77;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < ndrvs; i++) {
		vnet_switch_detach(&sw, &drvs[i]->n);
		free(drvs[i]);
	}
	vms_destroy();
	assert_int_equal(g_palloc.node[0].used_pages, 0);       /* every page came back */
	return 0;
}

/* ---- tests ---- */

static void test_bring_up(void **state)
{
	(void)state;
	struct drv *a = drv_new(9000);
	bring_up(a, F_LINUX, 16, 4096);
	uint64_t must = VIRTIO_F_VERSION_1 | VNET_F_CSUM | VNET_F_GUEST_CSUM | VNET_F_MTU | VNET_F_MAC |
			VNET_F_GUEST_TSO4 | VNET_F_GUEST_TSO6 | VNET_F_HOST_TSO4 | VNET_F_HOST_TSO6 |
			VNET_F_MRG_RXBUF | VNET_F_STATUS | VIRTQ_F_INDIRECT_DESC;
	assert_int_equal(a->offered & must, must);
	assert_false(a->offered & (1ull << 17));       /* no control queue */
	assert_false(a->offered & VIRTQ_F_EVENT_IDX);
	uint8_t mac[6];
	mac_of(0, mac);
	for (int i = 0; i < 6; i++)
		assert_int_equal(cfg(a, (uint32_t)i, 1), mac[i]);
	assert_int_equal(cfg(a, 6, 2), VNET_S_LINK_UP);
	assert_int_equal(cfg(a, 8, 2), 1);
	assert_int_equal(cfg(a, 10, 2), 9000);
	uint64_t x;
	assert_int_equal(vnet_mmio(&a->n, VMMIO_CONFIG + 12, 4, 0, &x), -1);
	/* MTU clamped */
	struct drv *b = drv_new(100000);
	assert_int_equal(b->n.mtu, VNET_MTU_MAX);
	struct drv *c = drv_new(0);
	assert_int_equal(c->n.mtu, 1500);
}

/* Two and three VMs: a broadcast floods, a reply is unicast once learnt, unknown unicast floods. */
static void test_learning_and_flooding(void **state)
{
	(void)state;
	struct drv *d[3];
	uint8_t mac[3][6];
	for (int i = 0; i < 3; i++) {
		d[i] = drv_new(1500);
		bring_up(d[i], F_LINUX, 32, 2048);
		mac_of(i, mac[i]);
	}
	static uint8_t f[2048], g[70000];
	struct vnet_hdr h;
	/* A broadcasts (ARP who-has): B and C get it, A does not */
	make_frame(f, 60, BCAST, mac[0]);
	send_frame(d[0], &NOHDR, f, 60, 0, 1, 0);
	assert_int_equal(recv_frame(d[0], &h, g), -1);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(recv_frame(d[i], &h, g), 60);
		assert_memory_equal(g, f, 60);
		assert_int_equal(h.num_buffers, 1);
		assert_int_equal(h.flags, 0);
		assert_true(d[i]->irq_level);
		ack(d[i]);
	}
	/* B replies to A: unicast (A was learnt) */
	make_frame(f, 1514, mac[0], mac[1]);
	send_frame(d[1], &NOHDR, f, 1514, 0, 3, 0);
	assert_int_equal(recv_frame(d[0], &h, g), 1514);
	assert_memory_equal(g, f, 1514);
	assert_int_equal(recv_frame(d[2], &h, g), -1);
	/* A to B: unicast; C sees nothing */
	make_frame(f, 200, mac[1], mac[0]);
	send_frame(d[0], &NOHDR, f, 200, 5, 2, 1);
	assert_int_equal(recv_frame(d[1], &h, g), 200);
	assert_memory_equal(g, f, 200);
	assert_int_equal(recv_frame(d[2], &h, g), -1);
	/* A to C, C never sent: flooded to B and C */
	make_frame(f, 100, mac[2], mac[0]);
	send_frame(d[0], &NOHDR, f, 100, 0, 1, 0);
	assert_int_equal(recv_frame(d[1], &h, g), 100);
	assert_int_equal(recv_frame(d[2], &h, g), 100);
	/* multicast floods too */
	uint8_t mc[6] = { 0x01, 0x00, 0x5e, 0, 0, 1 };
	make_frame(f, 90, mc, mac[2]);
	send_frame(d[2], &NOHDR, f, 90, 0, 1, 0);
	assert_int_equal(recv_frame(d[0], &h, g), 90);
	assert_int_equal(recv_frame(d[1], &h, g), 90);
	assert_int_equal(recv_frame(d[2], &h, g), -1);
	/* now C is known: A to C is unicast */
	make_frame(f, 64, mac[2], mac[0]);
	send_frame(d[0], &NOHDR, f, 64, 0, 1, 0);
	assert_int_equal(recv_frame(d[1], &h, g), -1);
	assert_int_equal(recv_frame(d[2], &h, g), 64);
	assert_int_equal(d[0]->n.st.tx_frames, 4);
	assert_int_equal(d[1]->n.st.rx_frames, 4);
	assert_int_equal(d[2]->n.st.rx_frames, 3);
	assert_int_equal(d[1]->n.st.tx_frames, 1);
}

/* Random frames, random TX splits, random mergeable RX buffer sizes, GSO up to 64 KiB. */
static void test_random_frames(void **state)
{
	(void)state;
	struct drv *a = drv_new(1500), *b = drv_new(1500);
	bring_up(a, F_LINUX, 64, 1536);
	bring_up(b, F_LINUX, 0, 0);
	uint8_t ma[6], mb[6];
	mac_of(0, ma);
	mac_of(1, mb);
	static uint8_t f[VNET_GSO_FRAME_MAX], g[VNET_GSO_FRAME_MAX + 4096];
	uint64_t bytes = 0;
	for (int it = 0; it < 300; it++) {
		int gso = it == 0 || rn(4) == 0;
		uint32_t len = gso ? 1514 + (uint32_t)rn(65536 + 14 - 1514 + 1) : 14 + (uint32_t)rn(1514 - 14 + 1);
		if (it == 0)
			len = 65536 + 14;
		struct vnet_hdr h = { 0 };
		if (gso) {
			h.gso_type = rn(2) ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6;
			h.gso_size = 1448;
			h.hdr_len = 66;
		}
		if (gso || rn(2)) {
			h.flags = VNET_HDR_F_NEEDS_CSUM;
			h.csum_start = 34;
			h.csum_offset = 16;
			if (len < 52)
				len = 52;
		}
		/* RX: enough random-size buffers (at least the header in the first) */
		uint32_t need = len + 12, have = 0;
		unsigned posted = 0;
		while (have < need) {
			uint32_t sz = 64 + (uint32_t)rn(4096);
			post_rx(b, 1, sz);
			have += sz;
			posted++;
		}
		make_frame(f, len, mb, ma);
		send_frame(a, &h, f, len, rn(4096), 1 + (unsigned)rn(40), rn(3) == 0);
		struct vnet_hdr r;
		assert_int_equal(recv_frame(b, &r, g), len);
		assert_memory_equal(g, f, len);
		assert_int_equal(r.flags, h.flags);
		assert_int_equal(r.gso_type, h.gso_type);
		assert_int_equal(r.gso_size, h.gso_size);
		assert_int_equal(r.hdr_len, h.hdr_len);
		assert_int_equal(r.csum_start, h.csum_start);
		assert_int_equal(r.csum_offset, h.csum_offset);
		assert_true(r.num_buffers <= posted);
		/* buffers not used for this frame stay for the next: drain them by count */
		bytes += len;
		ack(b);
	}
	assert_int_equal(b->n.st.rx_frames, 300);
	assert_int_equal(b->n.st.rx_bytes, bytes);
	assert_int_equal(a->n.st.tx_bytes, bytes);
	assert_int_equal(b->n.st.drop_no_rxbuf + b->n.st.drop_malformed + a->n.st.drop_malformed, 0);
	assert_int_equal(b->n.st.copied_bytes + b->n.st.remapped_bytes, bytes);
}

/* Page-aligned whole pages land in page-aligned whole RX pages: remapped copy-on-write. */
static void test_zero_copy(void **state)
{
	(void)state;
	struct drv *a = drv_new(1500), *b = drv_new(1500);
	bring_up(a, F_LINUX, 0, 0);
	bring_up(b, F_LINUX, 0, 0);
	uint8_t ma[6], mb[6];
	mac_of(0, ma);
	mac_of(1, mb);
	static uint8_t f[4 * 4096 + 100], g[5 * 4096];
	uint32_t len = 4 * 4096 + 100;
	make_frame(f, len, mb, ma);
	/* RX: a chain of header space (12 bytes) and five page-aligned pages */
	struct seg s[6];
	s[0] = (struct seg){ RXDATA_GPA, 12, W };
	for (int i = 0; i < 5; i++)
		s[i + 1] = (struct seg){ RXDATA_GPA + 0x1000 + 0x1000ull * i, 4096, W };
	gfill(b->v, RXDATA_GPA, 0xEE, 6 * 4096);       /* the receiver owns its buffer pages */
	post_rx_chain(b, s, 6);
	gfill(a->v, TXDATA_GPA, 0, 6 * 4096);        /* the sender's pages exist before */
	gfill(a->v, TXHDR_GPA, 0, 12);
	long free_before = (long)palloc_free_pages(&g_palloc, 0);
	struct vnet_hdr h = { 0, VNET_GSO_TCPV6, 74, 1428, 0, 0, 0 };
	send_frame(a, &h, f, len, 0, 1, 0);
	struct vnet_hdr r;
	assert_int_equal(recv_frame(b, &r, g), len);
	assert_memory_equal(g, f, len);
	assert_int_equal(b->n.st.remapped_pages, 4);
	assert_int_equal(b->n.st.remapped_bytes, 4 * 4096);
	assert_int_equal(b->n.st.copied_bytes, 100);
	for (int i = 0; i < 4; i++) {
		uint64_t es = pmap_lookup(a->v->pm, TXDATA_GPA + 0x1000ull * i);
		uint64_t er = pmap_lookup(b->v->pm, RXDATA_GPA + 0x1000 + 0x1000ull * i);
		assert_true(es & PMAP_COW);
		assert_true(er & PMAP_COW);
		assert_false(er & PMAP_WRITE);
		assert_int_equal(PMAP_ADDR(es), PMAP_ADDR(er));
		struct memmap_entry *m = memmap_of(&g_palloc, PMAP_ADDR(es));
		assert_int_equal(m->use, MM_SHARED);
		assert_int_equal(m->sharers, 2);
	}
	/* the receiver's four old buffer pages were freed */
	assert_int_equal((long)palloc_free_pages(&g_palloc, 0), free_before + 4);
	assert_int_equal(pmap_count_shared(b->v->pm), 4);
	/* the sender writes its page: COW breaks, the receiver still sees the frame */
	gfill(a->v, TXDATA_GPA, 0x11, 4096);
	uint8_t page[4096];
	gread(b->v, RXDATA_GPA + 0x1000, page, 4096);
	assert_memory_equal(page, f, 4096);
	assert_false(PMAP_ADDR(pmap_lookup(a->v->pm, TXDATA_GPA)) == PMAP_ADDR(pmap_lookup(b->v->pm, RXDATA_GPA + 0x1000)));
	assert_int_equal(memmap_of(&g_palloc, PMAP_ADDR(pmap_lookup(b->v->pm, RXDATA_GPA + 0x1000)))->sharers, 1);
	/* the receiver writes one of its pages: its own private copy */
	gfill(b->v, RXDATA_GPA + 0x2000, 0x22, 16);
	gread(a->v, TXDATA_GPA + 0x1000, page, 4096);
	assert_memory_equal(page, f + 4096, 4096);
	/* the same frame a byte off: copied, nothing remapped */
	post_rx_chain(b, s, 6);
	send_frame(a, &h, f, len, 1, 1, 0);
	assert_int_equal(recv_frame(b, &r, g), len);
	assert_memory_equal(g, f, len);
	assert_int_equal(b->n.st.remapped_pages, 4);
	assert_int_equal(b->n.st.copied_bytes, 100 + len);
	/* the sender's already shared pages are mapped again (no copy) */
	post_rx_chain(b, s, 6);
	send_frame(a, &h, f, len, 0x1000, 1, 0);      /* pages 1..4: 1..3 shared, 4 private */
	assert_int_equal(recv_frame(b, &r, g), len);
	assert_memory_equal(g, f, len);
	assert_int_equal(b->n.st.remapped_pages, 8);
}

/* No RX buffers (or too few): dropped and counted; the sender never notices. */
static void test_no_rx_buffers(void **state)
{
	(void)state;
	struct drv *a = drv_new(1500), *b = drv_new(1500), *c = drv_new(1500);
	bring_up(a, F_LINUX, 0, 0);
	bring_up(b, F_LINUX, 0, 0);
	uint8_t ma[6], mb[6];
	mac_of(0, ma);
	mac_of(1, mb);
	static uint8_t f[65550], g[70000];
	make_frame(f, 1000, mb, ma);
	send_frame(a, &NOHDR, f, 1000, 0, 1, 0);        /* c not up: dropped there too */
	assert_int_equal(b->n.st.drop_no_rxbuf, 1);
	assert_int_equal(c->n.st.drop_no_rxbuf, 1);
	/* buffers for 4000 bytes, a 9000-byte GSO frame: dropped, the buffers stay */
	post_rx(b, 2, 2000);
	struct vnet_hdr h = { VNET_HDR_F_NEEDS_CSUM, VNET_GSO_TCPV4, 66, 1448, 34, 16, 0 };
	make_frame(f, 9000, mb, ma);
	send_frame(a, &h, f, 9000, 0, 4, 0);
	assert_int_equal(b->n.st.drop_no_rxbuf, 2);
	struct vnet_hdr r;
	assert_int_equal(recv_frame(b, &r, g), -1);
	make_frame(f, 3000, mb, ma);
	send_frame(a, &NOHDR, f, 1500, 0, 1, 0);
	assert_int_equal(recv_frame(b, &r, g), 1500);
	assert_memory_equal(g, f, 1500);
	assert_int_equal(r.num_buffers, 1);
	/* without MRG_RXBUF: one buffer must hold it all */
	bring_up(b, F_LINUX & ~VNET_F_MRG_RXBUF, 1, 1000);
	post_rx(b, 1, 2000);
	send_frame(a, &NOHDR, f, 1500, 0, 1, 0);
	assert_int_equal(b->n.st.drop_no_rxbuf, 3);   /* the first buffer is too small: kept */
	assert_int_equal(recv_frame(b, &r, g), -1);
	send_frame(a, &NOHDR, f, 900, 0, 1, 0);
	assert_int_equal(recv_frame(b, &r, g), 900);
	send_frame(a, &NOHDR, f, 1500, 0, 1, 0);
	assert_int_equal(recv_frame(b, &r, g), 1500);
	assert_int_equal(r.num_buffers, 1);
	assert_int_equal(a->n.st.drop_malformed, 0);
}

/* A receiver without GUEST_CSUM gets the checksum filled in; one without GUEST_TSO gets no GSO frame. */
static void test_offloads(void **state)
{
	(void)state;
	struct drv *a = drv_new(1500), *b = drv_new(1500);
	bring_up(a, F_LINUX, 0, 0);
	bring_up(b, F_LINUX & ~(VNET_F_GUEST_CSUM | VNET_F_GUEST_TSO4 | VNET_F_GUEST_TSO6), 8, 2048);
	uint8_t ma[6], mb[6];
	mac_of(0, ma);
	mac_of(1, mb);
	static uint8_t f[9000], g[9000];
	make_frame(f, 101, mb, ma);
	f[34 + 16] = 0x12;                     /* the pseudo-header sum the sender left */
	f[34 + 17] = 0x34;
	struct vnet_hdr h = { VNET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16, 0 };
	send_frame(a, &h, f, 101, 0, 3, 0);
	struct vnet_hdr r;
	assert_int_equal(recv_frame(b, &r, g), 101);
	assert_int_equal(r.flags, 0);
	assert_int_equal(r.csum_start, 0);
	/* the checksum over [34, 101) with the field filled in sums to 0xffff */
	uint32_t sum = 0x1234;                 /* the pseudo-header, as the receiver adds it */
	for (int i = 34; i < 101; i++)
		sum += (i - 34) & 1 ? g[i] : (uint32_t)g[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	assert_int_equal(sum, 0xffff);
	assert_memory_equal(g, f, 34 + 16);
	assert_memory_equal(g + 52, f + 52, 101 - 52);
	assert_int_equal(b->n.st.csum_filled, 1);
	struct vnet_hdr t = { VNET_HDR_F_NEEDS_CSUM, VNET_GSO_TCPV4, 66, 1448, 34, 16, 0 };
	make_frame(f, 9000, mb, ma);
	send_frame(a, &t, f, 9000, 0, 2, 0);
	assert_int_equal(b->n.st.drop_offload, 1);
	assert_int_equal(recv_frame(b, &r, g), -1);
	/* the sender may not use what it did not negotiate */
	struct drv *c = drv_new(1500);
	bring_up(c, F_LINUX & ~(VNET_F_CSUM | VNET_F_HOST_TSO4 | VNET_F_HOST_TSO6), 0, 0);
	send_frame(c, &t, f, 9000, 0, 2, 0);
	send_frame(c, &h, f, 101, 0, 1, 0);
	assert_int_equal(c->n.st.drop_malformed, 2);
	assert_int_equal(c->n.st.tx_frames, 0);
	assert_false(rd(c, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
}

/* Hostile TX chains: dropped or the sender's device broken; the others keep working. */
static void test_hostile_tx(void **state)
{
	(void)state;
	struct drv *a = drv_new(1500), *b = drv_new(1500);
	bring_up(a, F_LINUX, 0, 0);
	bring_up(b, F_LINUX, 64, 2048);
	uint8_t ma[6], mb[6];
	mac_of(0, ma);
	mac_of(1, mb);
	static uint8_t f[70000], g[70000];
	struct vnet_hdr r;
	make_frame(f, 2000, mb, ma);
	/* over the MTU without GSO: dropped */
	send_frame(a, &NOHDR, f, 1600, 0, 1, 0);
	assert_int_equal(a->n.st.drop_malformed, 1);
	/* no room for the header + Ethernet header */
	struct seg s[6] = { { TXHDR_GPA, 20, R } };
	post(a, 1, s, 1, 0);
	wr(a, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_int_equal(a->n.st.drop_malformed, 2);
	/* a device-writable TX descriptor */
	s[0] = (struct seg){ TXHDR_GPA, 12, R };
	s[1] = (struct seg){ TXDATA_GPA, 100, W };
	post(a, 1, s, 2, 0);
	wr(a, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_int_equal(a->n.st.drop_malformed, 3);
	/* GSO frame too big */
	struct vnet_hdr t = { VNET_HDR_F_NEEDS_CSUM, VNET_GSO_TCPV4, 66, 1448, 34, 16, 0 };
	gwrite(a->v, TXDATA_GPA, f, 14);
	s[0] = (struct seg){ TXHDR_GPA, 12, R };
	s[1] = (struct seg){ TXDATA_GPA, VNET_GSO_FRAME_MAX + 1, R };
	uint8_t hb[12];
	hdr_bytes(&t, hb);
	gwrite(a->v, TXHDR_GPA, hb, 12);
	post(a, 1, s, 2, 0);
	wr(a, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_int_equal(a->n.st.drop_malformed, 4);
	/* checksum offsets past the frame */
	struct vnet_hdr cs = { VNET_HDR_F_NEEDS_CSUM, 0, 0, 0, 90, 10, 0 };
	send_frame(a, &cs, f, 100, 0, 1, 0);
	assert_int_equal(a->n.st.drop_malformed, 5);
	/* the header split over three descriptors is fine (no framing assumed) */
	hdr_bytes(&NOHDR, hb);
	gwrite(a->v, TXHDR_GPA, hb, 12);
	gwrite(a->v, TXDATA_GPA, f, 300);
	s[0] = (struct seg){ TXHDR_GPA, 5, R };
	s[1] = (struct seg){ TXHDR_GPA + 5, 7, R };
	s[2] = (struct seg){ TXDATA_GPA, 300, R };
	post(a, 1, s, 3, 0);
	wr(a, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_int_equal(recv_frame(b, &r, g), 300);
	assert_memory_equal(g, f, 300);
	/* header and frame in one descriptor */
	gwrite(a->v, TXDATA_GPA, hb, 12);
	gwrite(a->v, TXDATA_GPA + 12, f, 300);
	s[0] = (struct seg){ TXDATA_GPA, 312, R };
	post(a, 1, s, 1, 0);
	wr(a, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_int_equal(recv_frame(b, &r, g), 300);
	assert_memory_equal(g, f, 300);
	assert_false(rd(a, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	/* a buffer outside RAM: the queue is broken, a's device needs reset */
	s[0] = (struct seg){ TXHDR_GPA, 12, R };
	s[1] = (struct seg){ RAM_BASE + RAM_SIZE - 100, 200, R };
	post(a, 1, s, 2, 0);
	wr(a, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_true(rd(a, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	assert_int_equal(a->n.st.broken_queues, 1);
	/* b still works: it sends to a (dropped: a needs reset), and receives from a third VM */
	make_frame(f, 500, ma, mb);
	send_frame(b, &NOHDR, f, 500, 0, 1, 0);
	assert_int_equal(a->n.st.drop_no_rxbuf, 1);
	struct drv *c = drv_new(1500);
	bring_up(c, F_LINUX, 0, 0);
	make_frame(f, 500, mb, ma);
	send_frame(c, &NOHDR, f, 500, 0, 1, 0);
	assert_int_equal(recv_frame(b, &r, g), 500);
	/* a descriptor loop */
	bring_up(a, F_LINUX, 0, 0);
	assert_false(rd(a, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	put_desc(a, a->q[1].desc, 0, TXHDR_GPA, 100, VIRTQ_DESC_F_NEXT, 1);
	put_desc(a, a->q[1].desc, 1, TXDATA_GPA, 100, VIRTQ_DESC_F_NEXT, 0);
	g16(a->v, a->q[1].avail + 4, 0);
	g16(a->v, a->q[1].avail + 2, 1);
	wr(a, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_true(rd(a, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	assert_int_equal(a->n.st.broken_queues, 2);
	/* a chain longer than the device takes: broken */
	bring_up(a, F_LINUX, 0, 0);
	s[0] = (struct seg){ RAM_BASE, (uint32_t)RAM_SIZE, R };
	s[1] = (struct seg){ RAM_BASE, (uint32_t)RAM_SIZE, R };
	s[2] = (struct seg){ RAM_BASE, (uint32_t)RAM_SIZE, R };
	s[3] = (struct seg){ RAM_BASE, (uint32_t)RAM_SIZE, R };
	s[4] = (struct seg){ RAM_BASE, 1, R };
	post(a, 1, s, 5, 0);
	post(a, 1, s, 1, 0);
	wr(a, VMMIO_R_QUEUE_NOTIFY, 1);
	assert_true(rd(a, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	/* b is untouched by all of it */
	assert_false(rd(b, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	assert_int_equal(b->n.st.broken_queues, 0);
}

/* Hostile RX buffers: the receiver breaks alone; the sender and the others keep going. */
static void test_hostile_rx(void **state)
{
	(void)state;
	struct drv *a = drv_new(1500), *b = drv_new(1500), *c = drv_new(1500);
	bring_up(a, F_LINUX, 0, 0);
	bring_up(b, F_LINUX, 0, 0);
	bring_up(c, F_LINUX, 8, 2048);
	uint8_t mb[6], mc[6], ma[6];
	mac_of(0, ma);
	mac_of(1, mb);
	mac_of(2, mc);
	static uint8_t f[4000], g[70000];
	struct vnet_hdr r;
	/* a first buffer too small for the header: returned unused, the next one takes the frame */
	struct seg s[3] = { { RXDATA_GPA, 8, W } };
	post_rx_chain(b, s, 1);
	post_rx(b, 1, 2048);
	make_frame(f, 600, BCAST, ma);
	send_frame(a, &NOHDR, f, 600, 0, 1, 0);
	uint32_t id, len;
	assert_true(used_next(b, 0, &id, &len));
	assert_int_equal(len, 0);
	assert_int_equal(recv_frame(b, &r, g), 600);
	assert_int_equal(recv_frame(c, &r, g), 600);
	assert_int_equal(b->n.st.rx_bad_bufs, 1);
	/* a buffer outside RAM: b breaks, c still gets the broadcast */
	s[0] = (struct seg){ RAM_BASE + RAM_SIZE, 4096, W };
	post_rx_chain(b, s, 1);
	send_frame(a, &NOHDR, f, 600, 0, 1, 0);
	assert_true(rd(b, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	assert_int_equal(recv_frame(c, &r, g), 600);
	assert_false(rd(a, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	assert_false(rd(c, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	/* b resets and comes back; an RX descriptor loop breaks it again */
	bring_up(b, F_LINUX, 0, 0);
	put_desc(b, b->q[0].desc, 0, RXDATA_GPA, 100, VIRTQ_DESC_F_NEXT | W, 0);
	g16(b->v, b->q[0].avail + 4, 0);
	g16(b->v, b->q[0].avail + 2, 1);
	send_frame(a, &NOHDR, f, 600, 0, 1, 0);
	assert_true(rd(b, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	assert_int_equal(b->n.st.broken_queues, 2);
	assert_int_equal(recv_frame(c, &r, g), 600);
	/* readable descriptor in an RX chain after a writable one: broken (virtq order check) */
	bring_up(b, F_LINUX, 0, 0);
	s[0] = (struct seg){ RXDATA_GPA, 2048, W };
	s[1] = (struct seg){ RXDATA_GPA + 4096, 100, R };
	post_rx_chain(b, s, 2);
	send_frame(a, &NOHDR, f, 600, 0, 1, 0);
	assert_true(rd(b, VMMIO_R_STATUS) & VMMIO_S_NEEDS_RESET);
	assert_int_equal(recv_frame(c, &r, g), 600);
	/* unicast to c keeps working */
	make_frame(f, 700, mc, ma);
	send_frame(a, &NOHDR, f, 700, 0, 1, 0);
	assert_int_equal(recv_frame(c, &r, g), 700);
	assert_memory_equal(g, f, 700);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_bring_up),
		T(test_learning_and_flooding),
		T(test_random_frames),
		T(test_zero_copy),
		T(test_no_rx_buffers),
		T(test_offloads),
		T(test_hostile_tx),
		T(test_hostile_rx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
