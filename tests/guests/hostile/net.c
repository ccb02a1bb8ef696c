/* Hostile test guest, virtio-net phase (included by hostile.c after disk.c: it uses their
 * checking and console helpers, and virtio.c's registers, rings and bring-up steps). The
 * VM's network cards are modern virtio-mmio devices at 0x0A000000 + (4+i)*0x200 (SPI
 * 16+4+i), the device tree's virtio_mmio nodes at those addresses; /chosen has
 * mirrorball,net<i> ("A.B.C.D/P") and mirrorball,net<i>-mac. On the first card, with a
 * Linux VM (the peer: our address with last byte 1) on the same network:
 *   - a Linux-like bring-up (VERSION_1, MRG_RXBUF, CSUM, HOST_TSO4, MAC, MTU, STATUS;
 *     FEATURES_OK read back), config space (MAC as in /chosen, link up, MTU 1500);
 *   - RX buffers posted, an ARP request for the peer and an ICMP echo to it (checksums ours):
 *     the ARP reply and the echo reply must arrive intact in an RX buffer;
 *   - malformed TX chains (no room for the header, device-writable descriptors, over the MTU
 *     without GSO, GSO types not negotiated or without gso_size, csum_start/offset past the
 *     end): used with length 0, dropped and counted (drop_malformed), the device stays live;
 *     a header split over descriptors is accepted (the echo reply comes back);
 *   - broken TX queues (buffers outside RAM, loops, a chain over 16 MiB, a bad head, a bad
 *     avail index, readable after writable, indirect not negotiated): no used element,
 *     DEVICE_NEEDS_RESET with a config interrupt; then a reset and a fresh bring-up work;
 *   - RX: a first buffer too small for the header and a readable-only one (returned unused,
 *     length 0), then buffers outside RAM and a descriptor loop (NEEDS_RESET at the next
 *     frame for us);
 *   - frames to broadcast and unknown unicast MACs, then a storm of broadcast frames while
 *     the Linux VMs ping each other;
 *   - register junk on the window (bad sizes, read-only registers, QueueSel out of range);
 *   - at last it answers ARP and pings for its own address until both Linux VMs (.1, .2)
 *     have pinged it once (they take that as "the attack is over"), or a deadline.
 * Summary lines, which the integration test compares with stats.json:
 *   hostile: net slot=S malformed=M broken_queues=Q tx_ok=T replies=R storm=N answered=A
 *   hostile: nets done nets=N mismatches=M
 */

#define NET_DMA     (RAM_BASE + 0x01400000UL)   /* after the disks' 4 MiB of DMA memory */
#define N_RXDESC    0x00000
#define N_RXAVAIL   0x01000
#define N_RXUSED    0x02000
#define N_TXDESC    0x03000
#define N_TXAVAIL   0x04000
#define N_TXUSED    0x05000
#define N_RXBUF     0x10000                     /* NQ buffers of RXB bytes */
#define N_TXBUF     0x40000                     /* frames we send, 4 KiB each */
#define N_SCRATCH   0x60000
#define NQ          64
#define RXB         2048
#define HDR         12
#define ETH_ARP     0x0806
#define ETH_IP      0x0800
#define ETH_JUNK    0x88B5                      /* local experimental: every host ignores it */

#define NF_CSUM      (1u << 0)
#define NF_MTU       (1u << 3)
#define NF_MAC       (1u << 5)
#define NF_HOST_TSO4 (1u << 11)
#define NF_MRG_RXBUF (1u << 15)
#define NF_STATUS    (1u << 16)
#define NET_FEAT     (NF_CSUM | NF_MTU | NF_MAC | NF_HOST_TSO4 | NF_MRG_RXBUF | NF_STATUS)

#define NET_WAIT     (tick_hz() * 2)            /* a reply from a Linux VM (its vCPU must run) */

struct ndev {
	int slot;                 /* 4 + i */
	u64 mmio, dma;
	struct vq rx, tx;         /* the two queues */
	u8 mac[6], peer_mac[6];
	u32 ip, peer_ip;
	int have_peer;
	u64 malformed, breaks, tx_ok, replies, others, storm, answered;
	u64 answered_from[2];     /* echo requests answered from .1 and .2 */
	int serving;              /* answer ARP and pings for our address (only at the end) */
	int seen2;                /* an ARP request from .2 came by (linux2 started pinging) */
	int rx_breaking;          /* a broken RX buffer is posted: the next frame for us (the
	                           * peer's reply may beat our status read) breaks the queue */
	u64 storm_ms;
	u16 icmp_seq;
};

static struct ndev ndevs[VNET_MAX];

static void nmis(const struct ndev *n, const char *what, const char *field, u64 arg, u64 got, u64 want)
{
	const struct vq id = { .kind = "net", .slot = n ? n->slot : -1 };
	vq_mis(&id, what, field, arg, got, want);
}

static int ncheck(const struct ndev *n, const char *what, const char *field, u64 arg, u64 got, u64 want)
{
	const struct vq id = { .kind = "net", .slot = n ? n->slot : -1 };
	return vq_check(&id, what, field, arg, got, want);
}

static u32 nr(const struct ndev *n, u32 off) { return mmio_r32(n->mmio + off); }
static void nw(const struct ndev *n, u32 off, u32 v) { mmio_w32(n->mmio + off, v); }
static void ntx_kick(const struct ndev *n) { nw(n, R_NOTIFY, 1); }

/* ---- bytes ---- */

static void be16_st(u64 a, u16 v) { st8(a, (u8)(v >> 8)); st8(a + 1, (u8)v); }
static u16 be16_ld(u64 a) { return (u16)(ld8(a) << 8 | ld8(a + 1)); }
static void be32_st(u64 a, u32 v) { be16_st(a, (u16)(v >> 16)); be16_st(a + 2, (u16)v); }
static u32 be32_ld(u64 a) { return (u32)be16_ld(a) << 16 | be16_ld(a + 2); }
static void mac_st(u64 a, const u8 *m) { for (int i = 0; i < 6; i++) st8(a + i, m[i]); }
static int mac_eq(u64 a, const u8 *m) { for (int i = 0; i < 6; i++) if (ld8(a + i) != m[i]) return 0; return 1; }

static u16 csum(u64 a, u32 len)                 /* the Internet checksum of [a, a + len) */
{
	u64 s = 0;
	for (u32 i = 0; i + 1 < len; i += 2)
		s += be16_ld(a + i);
	if (len & 1)
		s += (u64)ld8(a + len - 1) << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (u16)~s;
}

static int parse_hex2(const char *s, u8 *out)
{
	u32 v = 0;
	for (int i = 0; i < 2; i++) {
		char c = s[i];
		u32 d = c >= '0' && c <= '9' ? (u32)(c - '0') : c >= 'a' && c <= 'f' ? (u32)(c - 'a' + 10) : 99;
		if (d > 15)
			return -1;
		v = v << 4 | d;
	}
	*out = (u8)v;
	return 0;
}

static int parse_mac(const char *s, u8 *m)
{
	for (int i = 0; i < 6; i++) {
		if (parse_hex2(s + 3 * i, &m[i]) || (i < 5 && s[3 * i + 2] != ':'))
			return -1;
	}
	return s[17] ? -1 : 0;
}

static int parse_ip(const char *s, u32 *ip)
{
	u32 v = 0;
	for (int i = 0; i < 4; i++) {
		u32 b = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9')
			b = b * 10 + (u32)(*s++ - '0'), digits++;
		if (!digits || b > 255 || (i < 3 && *s++ != '.'))
			return -1;
		v = v << 8 | b;
	}
	*ip = v;
	return 0;
}

/* ---- queues ---- */

static void nq_ident(struct ndev *n)              /* whose queues they are */
{
	n->rx.kind = n->tx.kind = "net";
	n->rx.slot = n->tx.slot = n->slot;
	n->rx.mmio = n->tx.mmio = n->mmio;
	n->rx.dma = n->tx.dma = n->dma;
}

static void nq_init(struct ndev *n)
{
	n->rx.desc = n->dma + N_RXDESC;
	n->rx.avail = n->dma + N_RXAVAIL;
	n->rx.used = n->dma + N_RXUSED;
	n->tx.desc = n->dma + N_TXDESC;
	n->tx.avail = n->dma + N_TXAVAIL;
	n->tx.used = n->dma + N_TXUSED;
	n->rx.num = n->tx.num = NQ;
	zero_rings(&n->rx);
	zero_rings(&n->tx);
}

static void rx_post(struct ndev *n, u16 i)      /* RX buffer i: descriptor i, one writable segment */
{
	put_desc(&n->rx, i, n->dma + N_RXBUF + (u64)i * RXB, RXB, D_WRITE, 0);
	publish(&n->rx, i);
}

static void rx_fill(struct ndev *n)
{
	for (u16 i = 0; i < NQ; i++)
		rx_post(n, i);
	nw(n, R_NOTIFY, 0);
}

#define NUP_NO_RXBUFS 1
static u32 net_extra_feat;    /* more low feature bits to ask for (net-remap's receiver) */

/* Linux's order (virtio 1.x 3.1.1, 5.1.5), every step read back; both queues; RX buffers
 * posted unless told not to. 0 or -1. */
static int net_up(struct ndev *n, int how)
{
	const char *w = "bring-up";
	nq_ident(n);
	int ok = vio_reset_to_driver(&n->rx, w, 0);
	u32 lo, hi;
	vio_dev_features(&n->rx, &lo, &hi);
	ok &= ncheck(n, w, "features offered (ours)", lo, lo & NET_FEAT, NET_FEAT);
	ok &= ncheck(n, w, "VERSION_1 offered", hi, hi & FH_VERSION_1, FH_VERSION_1);
	ok &= vio_features_ok(&n->rx, w, NET_FEAT | (net_extra_feat & lo), FH_VERSION_1, 0);
	nq_init(n);
	struct vq *q[2] = { &n->rx, &n->tx };
	for (u32 i = 0; i < 2; i++) {
		nw(n, R_QUEUE_SEL, i);
		ok &= ncheck(n, w, "QueueNumMax", i, nr(n, R_QUEUE_NUM_MAX), 256);
		ok &= vio_queue_ready(q[i], w, i, i);
	}
	nw(n, R_QUEUE_SEL, 2);
	ok &= ncheck(n, w, "QueueNumMax of queue 2 (none)", 2, nr(n, R_QUEUE_NUM_MAX), 0);
	ok &= vio_driver_ok(&n->rx, w);
	if (how != NUP_NO_RXBUFS)
		rx_fill(n);
	return ok ? 0 : -1;
}

/* ---- sending ---- */

/* A TX chain of n segments; kicked. Returns its head. */
static u16 tx_post(struct ndev *n, const struct seg *s, int cnt)
{
	nokick = 1;
	u16 h = post(&n->tx, s, cnt);
	nokick = 0;
	ntx_kick(n);
	return h;
}

/* The chain must have been used (the device serves TX during the kick) with length 0, the
 * device still live. `bad`: a malformed frame the device must count. */
static int tx_expect_used(struct ndev *n, const char *what, u64 arg, u16 head, int bad)
{
	u32 id, len;
	checks++;
	if (!used_next(&n->tx, &id, &len, WAIT_LONG)) {
		nmis(n, what, "TX chain not used", arg, nr(n, R_STATUS), S_LIVE);
		return 0;
	}
	ncheck(n, what, "TX used id", arg, id, head);
	ncheck(n, what, "TX used length", arg, len, 0);
	u32 st = nr(n, R_STATUS);
	if (n->rx_breaking && st == (S_LIVE | S_NEEDS_RESET))
		st = S_LIVE;            /* the reply arrived first and broke RX, as it is meant to */
	ncheck(n, what, "status afterwards", arg, st, S_LIVE);
	if (bad)
		n->malformed++;
	else
		n->tx_ok++;
	return 1;
}

/* virtio header at a */
static void vhdr(u64 a, u8 flags, u8 gso, u16 hdr_len, u16 gso_size, u16 cstart, u16 coff)
{
	st8(a, flags);
	st8(a + 1, gso);
	st16(a + 2, hdr_len);
	st16(a + 4, gso_size);
	st16(a + 6, cstart);
	st16(a + 8, coff);
	st16(a + 10, 0);
}

static void eth(u64 a, const u8 *dst, const u8 *src, u16 type)
{
	mac_st(a, dst);
	mac_st(a + 6, src);
	be16_st(a + 12, type);
}

static const u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static const u8 nobody[6] = { 0x52, 0x54, 0x4d, 0x7e, 0x7e, 0x7e };   /* on no port */
static const u8 zero6[6] = { 0, 0, 0, 0, 0, 0 };

/* An ARP packet (request or reply) at a: 60 bytes of frame (padded). */
static u32 arp_frame(u64 a, const u8 *dst, const u8 *src, u16 op, const u8 *sha, u32 spa, const u8 *tha, u32 tpa)
{
	fill(a, 60, 0);
	eth(a, dst, src, ETH_ARP);
	u64 p = a + 14;
	be16_st(p, 1);
	be16_st(p + 2, ETH_IP);
	st8(p + 4, 6);
	st8(p + 5, 4);
	be16_st(p + 6, op);
	mac_st(p + 8, sha);
	be32_st(p + 14, spa);
	mac_st(p + 18, tha);
	be32_st(p + 24, tpa);
	return 60;
}

#define ICMP_DATA 56

/* An ICMP echo (type 8) or reply (0) at a; payload: `pay` bytes copied from pay_src, or a
 * pattern of seq when pay_src is 0. Checksums ours. Returns the frame length. */
static u32 icmp_frame(u64 a, const u8 *dst, const u8 *src, u32 sip, u32 dip, u8 type, u16 id, u16 seq,
		      u64 pay_src, u32 pay)
{
	eth(a, dst, src, ETH_IP);
	u64 ip = a + 14, ic = ip + 20;
	u32 tot = 20 + 8 + pay;
	st8(ip, 0x45);
	st8(ip + 1, 0);
	be16_st(ip + 2, (u16)tot);
	be16_st(ip + 4, seq);
	be16_st(ip + 6, 0x4000);
	st8(ip + 8, 64);
	st8(ip + 9, 1);
	be16_st(ip + 10, 0);
	be32_st(ip + 12, sip);
	be32_st(ip + 16, dip);
	be16_st(ip + 10, csum(ip, 20));
	st8(ic, type);
	st8(ic + 1, 0);
	be16_st(ic + 2, 0);
	be16_st(ic + 4, id);
	be16_st(ic + 6, seq);
	for (u32 i = 0; i < pay; i++)
		st8(ic + 8 + i, pay_src ? ld8(pay_src + i) : (u8)(seq * 7 + i));
	be16_st(ic + 2, csum(ic, 8 + pay));
	return 14 + tot;
}

/* ---- receiving ---- */

#define RX_ARP_REPLY 1      /* ARP reply from the peer to us */
#define RX_ECHO_REPLY 2     /* ICMP echo reply from the peer, id/seq as asked */

/* Frames we answer wherever they arrive: ARP requests for our address, pings to us. */
static void answer(struct ndev *n, u64 f, u32 len)
{
	u64 t = n->dma + N_TXBUF + 0x8000;      /* one buffer for answers */
	if (len >= 42 && be16_ld(f + 12) == ETH_ARP && be16_ld(f + 20) == 1 && be32_ld(f + 28) == ((n->ip & ~0xffu) | 2))
		n->seen2 = 1;
	if (!n->serving)
		return;
	if (len >= 42 && be16_ld(f + 12) == ETH_ARP && be16_ld(f + 20) == 1 && be32_ld(f + 38) == n->ip) {
		u8 sha[6];
		for (int i = 0; i < 6; i++)
			sha[i] = ld8(f + 22 + i);
		vhdr(t, 0, 0, 0, 0, 0, 0);
		u32 l = arp_frame(t + HDR, sha, n->mac, 2, n->mac, n->ip, sha, be32_ld(f + 28));
		struct seg s[1] = { { t, HDR + l, 0 } };
		tx_expect_used(n, "ARP reply of ours", 0, tx_post(n, s, 1), 0);
		return;
	}
	if (len >= 42 && be16_ld(f + 12) == ETH_IP && be32_ld(f + 30) == n->ip && ld8(f + 23) == 1 &&
	    ld8(f + 34) == 8 && (ld8(f + 14) & 0xf) == 5) {
		u32 tot = be16_ld(f + 16);
		if (tot < 28 || tot + 14 > len || tot > 1400)
			return;
		u8 src[6];
		for (int i = 0; i < 6; i++)
			src[i] = ld8(f + 6 + i);
		u32 sip = be32_ld(f + 26);
		vhdr(t, 0, 0, 0, 0, 0, 0);
		u32 l = icmp_frame(t + HDR, src, n->mac, n->ip, sip, 0, be16_ld(f + 38), be16_ld(f + 40), f + 42, tot - 28);
		struct seg s[1] = { { t, HDR + l, 0 } };
		tx_expect_used(n, "echo reply of ours", sip, tx_post(n, s, 1), 0);
		n->answered++;
		if ((sip & 0xff) == 1 || (sip & 0xff) == 2)
			n->answered_from[(sip & 0xff) - 1]++;
	}
}

/* Is the frame at f (len bytes) what we wait for? */
static int rx_match(struct ndev *n, u64 f, u32 len, int kind, u16 id, u16 seq, u64 sent)
{
	if (kind == RX_ARP_REPLY) {
		if (len < 42 || be16_ld(f + 12) != ETH_ARP || be16_ld(f + 20) != 2 || be32_ld(f + 28) != n->peer_ip)
			return 0;
		ncheck(n, "ARP reply", "to our MAC", 0, mac_eq(f, n->mac), 1);
		ncheck(n, "ARP reply", "target MAC ours", 0, mac_eq(f + 32, n->mac), 1);
		ncheck(n, "ARP reply", "target IP ours", 0, be32_ld(f + 38), n->ip);
		ncheck(n, "ARP reply", "length", 0, len >= 42 && len <= 64, 1);
		for (int i = 0; i < 6; i++)
			n->peer_mac[i] = ld8(f + 22 + i);
		ncheck(n, "ARP reply", "source MAC = sender MAC", 0, mac_eq(f + 6, n->peer_mac), 1);
		n->have_peer = 1;
		return 1;
	}
	if (len < 42 || be16_ld(f + 12) != ETH_IP || ld8(f + 23) != 1 || ld8(f + 34) != 0 ||
	    be16_ld(f + 38) != id || be16_ld(f + 40) != seq)
		return 0;
	const char *w = "echo reply";
	ncheck(n, w, "length", seq, len, 14 + 20 + 8 + ICMP_DATA);
	ncheck(n, w, "to our MAC", seq, mac_eq(f, n->mac), 1);
	ncheck(n, w, "from the peer's MAC", seq, mac_eq(f + 6, n->peer_mac), 1);
	ncheck(n, w, "IP source", seq, be32_ld(f + 26), n->peer_ip);
	ncheck(n, w, "IP destination", seq, be32_ld(f + 30), n->ip);
	ncheck(n, w, "IP header checksum", seq, csum(f + 14, 20), 0);
	ncheck(n, w, "ICMP checksum (filled by the device if offloaded)", seq, csum(f + 34, 8 + ICMP_DATA), 0);
	checks++;
	for (u32 i = 0; i < ICMP_DATA; i++)
		if (ld8(f + 42 + i) != ld8(sent + 42 + i)) {
			nmis(n, w, "payload byte", i, ld8(f + 42 + i), ld8(sent + 42 + i));
			break;
		}
	return 1;
}

/* Takes used RX buffers for up to `wait` ticks, reposting each, answering what is for us;
 * returns 1 when a frame of `kind` (0: none) arrived. Frames over several buffers are skipped. */
static int rx_wait(struct ndev *n, int kind, u16 id, u16 seq, u64 sent, u64 wait)
{
	u64 t0 = now_ticks();
	int found = 0;
	while (!found) {
		u32 uid, len;
		u64 left = now_ticks() - t0 > wait ? 0 : wait - (now_ticks() - t0);
		if (!used_next(&n->rx, &uid, &len, left))
			break;
		if (!ncheck(n, "RX used", "id < queue size", uid, uid < NQ, 1))
			continue;
		u64 b = n->dma + N_RXBUF + (u64)uid * RXB;
		u16 nbuf = ld16(b + 10);
		if (len >= HDR + 14 && len <= RXB && nbuf == 1) {
			ncheck(n, "RX header", "flags / gso_type (no GUEST_CSUM, no GUEST_TSO)", uid, ld16(b), 0);
			u64 f = b + HDR;
			u32 fl = len - HDR;
			if (kind && rx_match(n, f, fl, kind, id, seq, sent))
				found = 1;
			else {
				n->others++;
				answer(n, f, fl);
			}
		} else {
			n->others++;
			if (len >= HDR + 14 && nbuf > 1)
				for (u16 k = 1; k < nbuf; k++)      /* the rest of a merged frame */
					if (used_next(&n->rx, &uid, &len, WAIT_LONG) && uid < NQ)
						rx_post(n, (u16)uid);
		}
		rx_post(n, (u16)uid);
		nw(n, R_NOTIFY, 0);
	}
	return found;
}

static void arp_probe_send(struct ndev *n)
{
	u64 t = n->dma + N_TXBUF;
	vhdr(t, 0, 0, 0, 0, 0, 0);
	u32 l = arp_frame(t + HDR, bcast, n->mac, 1, n->mac, n->ip, zero6, n->peer_ip);
	struct seg s[1] = { { t, HDR + l, 0 } };
	tx_expect_used(n, "ARP request", 0, tx_post(n, s, 1), 0);
}

static int arp_probe(struct ndev *n, u64 wait)
{
	arp_probe_send(n);
	return rx_wait(n, RX_ARP_REPLY, 0, 0, 0, wait);
}

/* An echo to the peer; `split`: how the header is cut (0: one descriptor; k: the first k
 * header bytes, then the rest with the frame; 100: header in three pieces, frame in two). */
static int ping_peer(struct ndev *n, const char *what, int split)
{
	u64 t = n->dma + N_TXBUF + 0x1000;
	u16 seq = ++n->icmp_seq;
	vhdr(t, 0, 0, 0, 0, 0, 0);
	u32 l = icmp_frame(t + HDR, n->peer_mac, n->mac, n->ip, n->peer_ip, 8, 0x4d42, seq, 0, ICMP_DATA);
	struct seg s[5];
	int cnt = 0;
	if (split == 0) {
		s[cnt++] = (struct seg){ t, HDR + l, 0 };
	} else if (split < HDR) {
		s[cnt++] = (struct seg){ t, (u32)split, 0 };
		s[cnt++] = (struct seg){ t + split, HDR + l - split, 0 };
	} else {
		s[cnt++] = (struct seg){ t, 1, 0 };
		s[cnt++] = (struct seg){ t + 1, 0, 0 };          /* an empty one, too */
		s[cnt++] = (struct seg){ t + 1, 10, 0 };
		s[cnt++] = (struct seg){ t + 11, 7, 0 };
		s[cnt++] = (struct seg){ t + 18, HDR + l - 18, 0 };
	}
	tx_expect_used(n, what, split, tx_post(n, s, cnt), 0);
	int ok = rx_wait(n, RX_ECHO_REPLY, 0x4d42, seq, t + HDR, NET_WAIT);
	n->replies += ok;
	return ok;
}

/* ---- broken queues ---- */

/* The last kick (TX) or frame (RX) must have broken the device: no used element, Status
 * live | NEEDS_RESET with a config interrupt; then a reset and a fresh bring-up work. */
static void net_expect_broken(struct ndev *n, struct vq *q, const char *what, u64 arg, u64 wait)
{
	u32 id, len;
	u64 t0 = now_ticks();
	while (!(nr(n, R_STATUS) & S_NEEDS_RESET) && now_ticks() - t0 < wait)
		;
	u32 st = nr(n, R_STATUS);
	checks++;
	if (q == &n->tx && used_next(q, &id, &len, WAIT_SHORT))
		nmis(n, what, "a broken chain was used (length)", arg, len, 0);
	if (ncheck(n, what, "status DEVICE_NEEDS_RESET", arg, st, S_LIVE | S_NEEDS_RESET))
		n->breaks++;
	u32 is = nr(n, R_INT_STATUS);
	ncheck(n, what, "config-change interrupt", arg, is & 2, 2);
	nw(n, R_INT_ACK, is);
	/* a good frame now: nothing may happen */
	u64 t = n->dma + N_TXBUF + 0x2000;
	vhdr(t, 0, 0, 0, 0, 0, 0);
	eth(t + HDR, bcast, n->mac, ETH_JUNK);
	n->tx.avail_idx = ld16(n->tx.avail + 2);
	u16 tu = ld16(n->tx.used + 2);
	struct seg s[1] = { { t, HDR + 60, 0 } };
	tx_post(n, s, 1);
	ncheck(n, what, "a kick after DEVICE_NEEDS_RESET used a chain (used.idx)", arg, ld16(n->tx.used + 2), tu);
	nw(n, R_STATUS, S_LIVE);
	ncheck(n, what, "status after the driver wrote it without NEEDS_RESET", arg, nr(n, R_STATUS),
	       S_LIVE | S_NEEDS_RESET);
	/* reset, fresh bring-up, and the peer answers again */
	if (net_up(n, 0))
		nmis(n, what, "bring-up after reset failed", arg, nr(n, R_STATUS), S_LIVE);
	if (n->have_peer && !ping_peer(n, "ping after reset", 0))
		nmis(n, what, "no echo reply after the reset", arg, 0, 1);
}

static void tx_break(struct ndev *n, const char *what, u64 arg, const struct seg *s, int cnt)
{
	tx_post(n, s, cnt);
	net_expect_broken(n, &n->tx, what, arg, 0);
}

/* ---- the pieces ---- */

static void net_config(struct ndev *n, int i)
{
	const char *w = "config";
	u8 dtmac[6];
	for (int k = 0; k < 6; k++)
		n->mac[k] = (u8)mmio_rd(n->mmio + R_CONFIG + k, 1);
	if (ncheck(n, w, "/chosen mirrorball,net<i>-mac parses", i, parse_mac(dt_net_mac[i], dtmac), 0))
		for (int k = 0; k < 6; k++)
			ncheck(n, w, "MAC = /chosen's", k, n->mac[k], dtmac[k]);
	ncheck(n, w, "MAC 52:54:4d:..", 0, n->mac[0] << 16 | n->mac[1] << 8 | n->mac[2], 0x52544d);
	ncheck(n, w, "MAC byte 5 = slot", 0, n->mac[5], (u64)i);
	ncheck(n, w, "link status", 0, mmio_rd(n->mmio + R_CONFIG + 6, 2), 1);
	ncheck(n, w, "max_virtqueue_pairs", 0, mmio_rd(n->mmio + R_CONFIG + 8, 2), 1);
	ncheck(n, w, "mtu", 0, mmio_rd(n->mmio + R_CONFIG + 10, 2), 1500);
	ncheck(n, w, "past the config space", 0, mmio_rd(n->mmio + R_CONFIG + 12, 4), 0);
	ncheck(n, w, "MAC as a 4-byte read", 0, mmio_rd(n->mmio + R_CONFIG, 4),
	       (u32)n->mac[0] | (u32)n->mac[1] << 8 | (u32)n->mac[2] << 16 | (u32)n->mac[3] << 24);
	mmio_wr(n->mmio + R_CONFIG, 4, 0xdeadbeef);            /* read-only config: ignored */
	ncheck(n, w, "MAC after a config write", 0, mmio_rd(n->mmio + R_CONFIG, 1), n->mac[0]);
	ncheck(n, w, "/chosen mirrorball,net<i> parses", i, parse_ip(dt_net_ip[i], &n->ip), 0);
	n->peer_ip = (n->ip & ~0xffu) | 1;
}

static void net_registers(struct ndev *n)
{
	const char *w = "registers";
	ncheck(n, w, "magic", 0, nr(n, R_MAGIC), 0x74726976);
	ncheck(n, w, "version", 0, nr(n, R_VERSION), 2);
	ncheck(n, w, "device id (network card)", 0, nr(n, R_DEVICE_ID), 1);
	const u32 ro_regs[] = { R_MAGIC, R_VERSION, R_DEVICE_ID, R_VENDOR_ID, R_DEV_FEATURES, R_QUEUE_NUM_MAX,
				R_INT_STATUS, R_CONFIG_GEN };
	for (unsigned i = 0; i < sizeof(ro_regs) / sizeof(ro_regs[0]); i++) {
		u32 before = nr(n, ro_regs[i]);
		nw(n, ro_regs[i], ~before);
		nw(n, ro_regs[i], (u32)rnd());
		ncheck(n, w, "read-only register after writes", ro_regs[i], nr(n, ro_regs[i]), before);
	}
	const u32 some[] = { R_MAGIC, R_STATUS, R_QUEUE_READY, R_QUEUE_NUM_MAX, R_DEV_FEATURES };
	for (unsigned i = 0; i < sizeof(some) / sizeof(some[0]); i++) {
		u64 a = n->mmio + some[i];
		ncheck(n, w, "1-byte read of a register", some[i], mmio_rd(a, 1), 0);
		ncheck(n, w, "2-byte read of a register", some[i], mmio_rd(a, 2), 0);
		ncheck(n, w, "8-byte read of a register pair", some[i], mmio_rd(a & ~7UL, 8), 0);
	}
	for (int sz = 1; sz <= 8; sz *= 2) {
		if (sz == 4)
			continue;
		u64 m = sz == 8 ? ~7UL : ~0UL;
		mmio_wr(n->mmio + R_STATUS, sz, 0);
		mmio_wr((n->mmio + R_QUEUE_READY) & m, sz, 0);
		mmio_wr((n->mmio + R_NOTIFY) & m, sz, 1);
		ncheck(n, w, "status after a wrong-size write of 0", sz, nr(n, R_STATUS), S_LIVE);
	}
	/* QueueSel out of range: no queue there, writes go nowhere, queues 0/1 untouched */
	const u32 sels[] = { 2, 3, 4, 255, 0x10000, 0xFFFFFFFF };
	for (unsigned i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
		nw(n, R_QUEUE_SEL, sels[i]);
		ncheck(n, w, "QueueNumMax of an absent queue", sels[i], nr(n, R_QUEUE_NUM_MAX), 0);
		nw(n, R_QUEUE_NUM, 16);
		nw(n, R_DESC_LO, 0x1234);
		nw(n, R_QUEUE_READY, 1);
		ncheck(n, w, "QueueReady of an absent queue", sels[i], nr(n, R_QUEUE_READY), 0);
		nw(n, R_QUEUE_READY, 0);
	}
	for (u32 i = 0; i < 2; i++) {
		nw(n, R_QUEUE_SEL, i);
		ncheck(n, w, "QueueReady of a live queue after the junk", i, nr(n, R_QUEUE_READY), 1);
	}
	/* features and queue setup while live: refused */
	nw(n, R_DRV_FEATURES_SEL, 0);
	nw(n, R_DRV_FEATURES, 0xFFFFFFFF);
	nw(n, R_QUEUE_SEL, 1);
	nw(n, R_QUEUE_NUM, 3);                       /* not a power of 2, and live */
	ncheck(n, w, "status after the junk", 0, nr(n, R_STATUS), S_LIVE);
	nw(n, R_INT_ACK, nr(n, R_INT_STATUS));
}

/* Malformed TX chains: each used with length 0 and counted, the device live. */
static void net_tx_malformed(struct ndev *n)
{
	const char *w = "malformed TX";
	u64 t = n->dma + N_TXBUF + 0x3000;            /* 0x3000..0x6000: one big frame */
	fill(t, 0x3000, 0);
	vhdr(t, 0, 0, 0, 0, 0, 0);
	eth(t + HDR, bcast, n->mac, ETH_JUNK);
	struct seg s[3];
	/* no room for the header */
	for (u32 len = 1; len < HDR + 14; len += 5) {
		s[0] = (struct seg){ t, len, 0 };
		tx_expect_used(n, w, len, tx_post(n, s, 1), 1);
	}
	/* device-writable TX descriptors */
	s[0] = (struct seg){ t, HDR + 60, D_WRITE };
	tx_expect_used(n, "writable-only TX chain", 0, tx_post(n, s, 1), 1);
	s[0] = (struct seg){ t, HDR + 60, 0 };
	s[1] = (struct seg){ n->dma + N_SCRATCH, 64, D_WRITE };
	tx_expect_used(n, "TX chain with a writable tail", 0, tx_post(n, s, 2), 1);
	/* the MTU: 1500 + 14 + 4 (a VLAN tag) is the most without GSO */
	s[0] = (struct seg){ t, HDR + 1518, 0 };
	tx_expect_used(n, "frame of MTU + 18 bytes", 1518, tx_post(n, s, 1), 0);
	s[0] = (struct seg){ t, HDR + 1519, 0 };
	tx_expect_used(n, "frame of MTU + 19 bytes", 1519, tx_post(n, s, 1), 1);
	s[0] = (struct seg){ t, HDR + 9000, 0 };
	tx_expect_used(n, "jumbo frame without GSO", 9000, tx_post(n, s, 1), 1);
	/* GSO types not negotiated, or without gso_size */
	const u8 gsos[] = { 3 /* UDP */, 4 /* TCPV6: not negotiated */, 0x81 /* ECN */, 5, 0x7f, 0xff };
	for (unsigned i = 0; i < sizeof(gsos); i++) {
		vhdr(t, 0, gsos[i], 54, 1448, 0, 0);
		s[0] = (struct seg){ t, HDR + 3000, 0 };
		tx_expect_used(n, "GSO type not negotiated", gsos[i], tx_post(n, s, 1), 1);
	}
	vhdr(t, 0, 1 /* TCPV4 */, 54, 0, 0, 0);
	s[0] = (struct seg){ t, HDR + 3000, 0 };
	tx_expect_used(n, "TCPV4 GSO with gso_size 0", 0, tx_post(n, s, 1), 1);
	/* checksum offload past the end */
	const u16 cs[][2] = { { 58, 1 }, { 59, 0 }, { 34, 25 }, { 0xFFFF, 0xFFFF }, { 0, 0xFFFF }, { 0xFFFF, 0 } };
	for (unsigned i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		vhdr(t, 1 /* NEEDS_CSUM */, 0, 0, 0, cs[i][0], cs[i][1]);
		s[0] = (struct seg){ t, HDR + 60, 0 };
		tx_expect_used(n, "csum_start + csum_offset past the end", (u64)cs[i][0] << 16 | cs[i][1],
			       tx_post(n, s, 1), 1);
	}
	/* the last two bytes exactly: accepted */
	vhdr(t, 1, 0, 0, 0, 34, 24);
	s[0] = (struct seg){ t, HDR + 60, 0 };
	tx_expect_used(n, "csum at the last two bytes", 0, tx_post(n, s, 1), 0);
	/* frames to broadcast and to nobody: switched (flooded), the device live */
	vhdr(t, 0, 0, 0, 0, 0, 0);
	eth(t + HDR, nobody, n->mac, ETH_JUNK);
	s[0] = (struct seg){ t, HDR + 60, 0 };
	tx_expect_used(n, "frame to an unknown MAC", 0, tx_post(n, s, 1), 0);
	eth(t + HDR, bcast, n->mac, ETH_JUNK);
	tx_expect_used(n, "broadcast frame", 0, tx_post(n, s, 1), 0);
	eth(t + HDR, n->mac, n->mac, ETH_JUNK);
	tx_expect_used(n, "frame to ourselves", 0, tx_post(n, s, 1), 0);
	rx_wait(n, 0, 0, 0, 0, WAIT_SHORT);            /* (it may come back: whatever came is taken) */
}

static void net_tx_broken(struct ndev *n)
{
	struct seg s[4];
	u64 t = n->dma + N_TXBUF + 0x2000;
	vhdr(t, 0, 0, 0, 0, 0, 0);
	eth(t + HDR, bcast, n->mac, ETH_JUNK);
	s[0] = (struct seg){ 0x1000000000000UL, HDR + 60, 0 };
	tx_break(n, "TX buffer outside RAM", 0, s, 1);
	s[0] = (struct seg){ ram_end - 16, HDR + 60, 0 };
	tx_break(n, "TX buffer across the end of RAM", 1, s, 1);
	s[0] = (struct seg){ t, HDR, 0 };
	s[1] = (struct seg){ 0x08000000UL, 60, 0 };      /* the GIC */
	tx_break(n, "TX buffer on the GIC", 2, s, 2);
	/* a loop */
	u16 h = n->tx.avail_idx & (NQ - 1);
	put_desc(&n->tx, h, t, HDR + 60, D_NEXT, h);
	publish(&n->tx, h);
	ntx_kick(n);
	net_expect_broken(n, &n->tx, "TX descriptor loop", h, 0);
	/* a chain over 16 MiB (three 8 MiB pieces of RAM nobody uses) */
	for (int i = 0; i < 3; i++)
		s[i] = (struct seg){ BIG_BUF, 8u << 20, 0 };
	tx_break(n, "TX chain of 24 MiB", 24, s, 3);
	/* exactly 16 MiB: not broken, but too long a frame: dropped */
	s[0] = (struct seg){ BIG_BUF, 8u << 20, 0 };
	s[1] = (struct seg){ BIG_BUF, 8u << 20, 0 };
	tx_expect_used(n, "TX chain of 16 MiB", 16, tx_post(n, s, 2), 1);
	/* readable after writable */
	s[0] = (struct seg){ n->dma + N_SCRATCH, 64, D_WRITE };
	s[1] = (struct seg){ t, HDR + 60, 0 };
	tx_break(n, "TX readable after writable", 0, s, 2);
	/* indirect, not negotiated */
	s[0] = (struct seg){ n->dma + N_SCRATCH, 32, D_INDIRECT };
	put_desc_at(n->dma + N_SCRATCH, 0, t, HDR + 60, 0, 0);
	tx_break(n, "TX indirect (not negotiated)", 0, s, 1);
	/* a head out of range */
	st16(n->tx.avail + 4 + 2UL * (n->tx.avail_idx & (NQ - 1)), NQ + 3);
	n->tx.avail_idx++;
	st16(n->tx.avail + 2, n->tx.avail_idx);
	ntx_kick(n);
	net_expect_broken(n, &n->tx, "TX head out of range", NQ + 3, 0);
	/* avail.idx far ahead */
	st16(n->tx.avail + 2, (u16)(n->tx.avail_idx + NQ + 1));
	ntx_kick(n);
	net_expect_broken(n, &n->tx, "TX avail.idx too far ahead", NQ + 1, 0);
}

/* TSO frames to the peer made of whole page-aligned pages (the device may remap them into
 * the peer's buffers, copy-on-write): ours stay ours (we write them right after and read our
 * writes back), even when the pages are our own rings (the device's next used element must
 * still reach us). */
#define GSO_PAGES 15
static void net_gso(struct ndev *n)
{
	const char *w = "TSO frame of whole pages";
	u64 h = n->dma + N_TXBUF + 0x9000, pg = n->dma + 0x80000;
	for (int round = 0; round < 2; round++) {
		vhdr(h, 1 /* NEEDS_CSUM */, 1 /* TCPV4 */, 54, 1448, 34, 16);
		eth(h + HDR, n->peer_mac, n->mac, ETH_IP);
		u64 ip = h + HDR + 14, tcp = ip + 20;
		u32 paylen = round ? 5 * 4096 : GSO_PAGES * 4096;
		fill(ip, 40, 0);
		st8(ip, 0x45);
		be16_st(ip + 2, (u16)(40 + paylen > 0xffff ? 0xffff : 40 + paylen));
		be16_st(ip + 6, 0x4000);
		st8(ip + 8, 64);
		st8(ip + 9, 6);
		be32_st(ip + 12, n->ip);
		be32_st(ip + 16, n->peer_ip);
		be16_st(ip + 10, csum(ip, 20));
		be16_st(tcp, 40000);
		be16_st(tcp + 2, 9);                  /* discard: nobody listens, a RST at most */
		be32_st(tcp + 4, (u32)rnd());
		st8(tcp + 12, 0x50);
		st8(tcp + 13, 0x18);                  /* PSH ACK */
		be16_st(tcp + 14, 1024);
		struct seg s[1 + GSO_PAGES];
		int cnt = 0;
		s[cnt++] = (struct seg){ h, HDR + 54, 0 };
		if (round == 0) {
			for (int i = 0; i < GSO_PAGES; i++) {
				fill(pg + 4096UL * i, 4096, (u8)(0xA0 + i));
				s[cnt++] = (struct seg){ pg + 4096UL * i, 4096, 0 };
			}
		} else {                              /* our own rings and RX buffers */
			const u64 pages[5] = { n->tx.desc, n->tx.avail, n->tx.used, n->rx.used, n->dma + N_RXBUF };
			for (int i = 0; i < 5; i++)
				s[cnt++] = (struct seg){ pages[i], 4096, 0 };
		}
		tx_expect_used(n, w, round, tx_post(n, s, cnt), 0);
		if (round == 0) {
			for (int i = 0; i < GSO_PAGES; i++)
				fill(pg + 4096UL * i, 4096, (u8)(0x50 + i));
			checks++;
			for (int i = 0; i < GSO_PAGES; i++)
				for (u64 a = pg + 4096UL * i; a < pg + 4096UL * (i + 1); a += 512)
					if (ld8(a) != (u8)(0x50 + i)) {
						nmis(n, w, "our page after sending it (and writing it)", a, ld8(a), (u8)(0x50 + i));
						i = GSO_PAGES;
						break;
					}
		}
		if (n->have_peer && !ping_peer(n, "ping after a TSO frame", 0))
			nmis(n, w, "no echo reply afterwards", round, 0, 1);
	}
}

/* RX attacks. Each needs a frame for us: an ARP request for the peer brings its reply. */
static void net_rx(struct ndev *n)
{
	/* a first buffer too small for the header, a readable-only one: returned unused */
	net_up(n, NUP_NO_RXBUFS);
	u64 sm = n->dma + N_SCRATCH;
	put_desc(&n->rx, 0, sm, 8, D_WRITE, 0);
	publish(&n->rx, 0);
	put_desc(&n->rx, 1, sm + 64, 2048, 0, 0);
	publish(&n->rx, 1);
	for (u16 i = 2; i < NQ; i++)
		rx_post(n, i);
	nw(n, R_NOTIFY, 0);
	/* the first frame for us takes both bad ones back, then a good one */
	u32 id, len;
	int ok = 1;
	arp_probe_send(n);
	for (u16 want = 0; want < 2; want++) {
		if (!used_next(&n->rx, &id, &len, NET_WAIT)) {
			nmis(n, "small / readable RX buffer", "not returned", want, 0, 1);
			ok = 0;
			break;
		}
		ncheck(n, "small / readable RX buffer", "returned first, in order", want, id, want);
		ncheck(n, "small / readable RX buffer", "used length", want, len, 0);
	}
	ncheck(n, "small / readable RX buffers", "status afterwards", 0, nr(n, R_STATUS), S_LIVE);
	if (ok) {
		rx_post(n, 0);
		rx_post(n, 1);
		if (!ping_peer(n, "ping after small RX buffers", 0))
			nmis(n, "small RX buffer", "no echo reply afterwards", 0, 0, 1);
	}

	/* RX buffers outside RAM, a loop, readable after writable: broken at the next frame */
	for (int k = 0; k < 4; k++) {
		net_up(n, NUP_NO_RXBUFS);
		if (k == 0)
			put_desc(&n->rx, 0, 0x1000000000000UL, 2048, D_WRITE, 0);
		else if (k == 1)
			put_desc(&n->rx, 0, ram_end - 1024, 2048, D_WRITE, 0);
		else if (k == 2)
			put_desc(&n->rx, 0, sm, 2048, D_WRITE | D_NEXT, 0);
		else {
			put_desc(&n->rx, 0, sm, 2048, D_WRITE | D_NEXT, 1);
			put_desc(&n->rx, 1, sm + 2048, 64, 0, 0);
		}
		publish(&n->rx, 0);
		nw(n, R_NOTIFY, 0);
		n->rx_breaking = 1;
		arp_probe_send(n);
		n->rx_breaking = 0;
		net_expect_broken(n, &n->rx, k == 0 ? "RX buffer outside RAM" : k == 1 ? "RX buffer across the end of RAM" :
				  k == 2 ? "RX descriptor loop" : "RX readable after writable", k, NET_WAIT);
	}
}

/* A storm of broadcast frames (and a few to nobody) while the Linux VMs ping each other:
 * 64 per kick, each used with length 0 at once; at least STORM frames and STORM_SECS. */
#define STORM 4000
#define STORM_SECS 4
static void net_storm(struct ndev *n)
{
	u64 t0 = now_ticks();
	u64 t = n->dma + N_TXBUF + 0x3000;
	vhdr(t, 0, 0, 0, 0, 0, 0);
	eth(t + HDR, bcast, n->mac, ETH_JUNK);
	u64 t2 = t + 0x1000;
	vhdr(t2, 0, 0, 0, 0, 0, 0);
	eth(t2 + HDR, nobody, n->mac, ETH_JUNK);
	for (u32 done = 0; done < STORM || now_ticks() - t0 < STORM_SECS * tick_hz();) {
		u16 first = n->tx.avail_idx;
		for (u32 k = 0; k < NQ; k++, done++) {
			u16 i = n->tx.avail_idx & (NQ - 1);
			u32 len = 60 + (done * 37) % 1400;
			put_desc(&n->tx, i, (done & 15) == 7 ? t2 : t, HDR + len, 0, 0);
			st16(n->tx.avail + 4 + 2UL * i, i);
			n->tx.avail_idx++;
		}
		dsb();
		st16(n->tx.avail + 2, n->tx.avail_idx);
		dsb();
		ntx_kick(n);
		u16 cnt = (u16)(n->tx.avail_idx - first);
		if (!ncheck(n, "storm", "used.idx after a kick", done, ld16(n->tx.used + 2), n->tx.avail_idx))
			break;
		n->tx.used_idx = n->tx.avail_idx;
		n->storm += cnt;
		n->tx_ok += cnt;
		if ((done & 511) < NQ)
			rx_wait(n, 0, 0, 0, 0, 0);           /* keep our RX going (answers) */
	}
	n->storm_ms = (now_ticks() - t0) * 1000 / tick_hz();
	ncheck(n, "storm", "status afterwards", 0, nr(n, R_STATUS), S_LIVE);
}

/* Answers ARP and pings for our address until both Linux VMs pinged us, or a deadline. */
static void net_serve(struct ndev *n, u64 secs)
{
	u64 t0 = now_ticks();
	n->serving = 1;
	while (now_ticks() - t0 < secs * tick_hz() && !(n->answered_from[0] && n->answered_from[1]))
		rx_wait(n, 0, 0, 0, 0, tick_hz() / 10);
}

static void phase_nets(void)
{
	u64 mism0 = mismatches;
	struct snap s0 = take();
	u64 probes = 0;
	puts_("hostile: phase nets: ");
	put_dec(dt_nnet);
	puts_(" virtio-net nodes\n");
	checks++;
	if (dt_net_extra)
		mismatch("more than 2 virtio-net nodes", 0, dt_nnet + dt_net_extra, VNET_MAX);
	/* slots without a card, and the slot past the last: every access aborts */
	for (int i = dt_nnet; i <= VNET_MAX; i++) {
		u64 a = VIO_BASE + (u64)(4 + i) * VIO_STRIDE;
		struct snap s = take();
		sink += mmio_r32(a + R_MAGIC);
		expect_one(s, EC_DABT_CUR, a, "absent virtio-net slot: read", a);
		probes++;
	}
	for (int i = 0; i < dt_nnet; i++) {
		struct ndev *n = &ndevs[i];
		memset(n, 0, sizeof(*n));
		n->slot = 4 + i;
		n->mmio = VIO_BASE + (u64)n->slot * VIO_STRIDE;
		n->dma = NET_DMA + (u64)i * DMA_SLOT;
		ncheck(n, "device tree", "reg", i, dt_net_base[i], n->mmio);
		ncheck(n, "device tree", "SPI", i, dt_net_spi[i], VIO_SPI0 + (u64)n->slot);
		net_config(n, i);
		if (net_up(n, 0))
			continue;
	}
	if (dt_nnet) {
		struct ndev *n = &ndevs[0];
		/* the peer (a Linux VM) boots meanwhile: ARP for it for up to 120 s */
		u64 t0 = now_ticks();
		while (!n->have_peer && now_ticks() - t0 < 120 * tick_hz())
			arp_probe(n, tick_hz() / 2);
		ncheck(n, "peer", "answered our ARP request", n->peer_ip, n->have_peer, 1);
		puts_("hostile: net peer found\n");
		if (n->have_peer) {
			ncheck(n, "ping", "echo reply", 0, ping_peer(n, "ping", 0), 1);
			ncheck(n, "ping", "echo reply, header split 5+7", 5, ping_peer(n, "ping split", 5), 1);
			ncheck(n, "ping", "echo reply, header split 1+0+10+7+...", 100, ping_peer(n, "ping split", 100), 1);
		}
		/* the attack starts when linux2 pings the Linux VM (its ARP request for it comes by) */
		t0 = now_ticks();
		while (!n->seen2 && now_ticks() - t0 < 60 * tick_hz())
			rx_wait(n, 0, 0, 0, 0, tick_hz() / 10);
		puts_("hostile: net linux2 seen=");
		put_dec(n->seen2);
		puts_(" after ");
		put_dec((now_ticks() - t0) * 1000 / tick_hz());
		puts_(" ms\n");
		net_registers(n);
		net_tx_malformed(n);
		if (n->have_peer)
			net_gso(n);
		puts_("hostile: net broken TX queues\n");
		net_tx_broken(n);
		puts_("hostile: net RX attacks\n");
		net_rx(n);
		net_up(n, 0);
		puts_("hostile: net storm\n");
		net_storm(n);
		if (n->have_peer)
			ncheck(n, "ping", "echo reply after the storm", 0, ping_peer(n, "ping after the storm", 0), 1);
		puts_("hostile: net storm took ");
		put_dec(n->storm_ms);
		puts_(" ms, serving\n");
		net_serve(n, 60);
		ncheck(n, "serve", "pinged by .1 and .2", 0, !!n->answered_from[0] << 1 | !!n->answered_from[1], 3);
	}
	checks++;
	if (exc[0].sync - s0.sync != probes)
		mismatch("exceptions in the net phase (besides the probes)", exc[0].last_esr, exc[0].sync - s0.sync, probes);
	for (int i = 0; i < dt_nnet; i++) {
		struct ndev *n = &ndevs[i];
		puts_("hostile: net slot=");
		put_dec(n->slot);
		puts_(" malformed=");
		put_dec(n->malformed);
		puts_(" broken_queues=");
		put_dec(n->breaks);
		puts_(" tx_ok=");
		put_dec(n->tx_ok);
		puts_(" replies=");
		put_dec(n->replies);
		puts_(" storm=");
		put_dec(n->storm);
		puts_(" answered=");
		put_dec(n->answered);
		puts_("\n");
	}
	puts_("hostile: nets done nets=");
	put_dec(dt_nnet);
	puts_(" mismatches=");
	put_dec(mismatches - mism0);
	puts_("\n");
}

/* cmdline "hostile net-remap": two hostile VMs on one network, .9 the sender, .10 the
 * receiver. The receiver posts RX chains of [66 bytes][15 whole pages] (page-aligned), so
 * the sender's TSO frames of [header][15 whole pages] can be remapped page by page (shared
 * copy-on-write). The sender overwrites one frame's pages right after sending it; the
 * receiver must still find what was sent, then writes its pages; the sender's other pages
 * must stay as they were. Protocol frames are ETH_JUNK broadcasts with one byte at 14:
 * 'H' (receiver: hello), 'J' (sender: junked), 'S' (receiver: frame 3 summed), 'T' (sender:
 * heard S, so its device wrote its RX rings and buffers since), 'W' (receiver: written).
 * Frame 3 is made of the sender's own ring pages and RX buffer pages: after it, the device
 * keeps writing them for the sender (copy-on-write broken), and the receiver's copy must not
 * change. */
static u32 rm_sum(u64 a, u64 len) { u32 x = 0; for (u64 i = 0; i < len; i += 8) x = x * 31 + (u32)ld64(a + i) + (u32)(ld64(a + i) >> 32); return x; }
#define RM_FRAMES 3        /* of pattern pages; then one of our own rings and RX buffers */
#define RM_PAGES 11
#define RM_STRIDE (1 + RM_PAGES)
static u8 rm_pat(int k, int i) { return (u8)((k << 4 | i) ^ 0x5A); }

static void rm_say(struct ndev *n, u8 what)
{
	u64 t = n->dma + N_TXBUF + 0xA000;
	vhdr(t, 0, 0, 0, 0, 0, 0);
	fill(t + HDR, 60, 0);
	eth(t + HDR, bcast, n->mac, ETH_JUNK);
	st8(t + HDR + 14, what);
	struct seg s[1] = { { t, HDR + 60, 0 } };
	tx_expect_used(n, "remap protocol frame", what, tx_post(n, s, 1), 0);
}

/* Next protocol frame `what` within `wait` (normal RX buffers); its source MAC into mac. */
static int rm_hear(struct ndev *n, u8 what, u8 *mac, u64 wait)
{
	u64 t0 = now_ticks();
	u32 id, len;
	while (now_ticks() - t0 < wait) {
		if (!used_next(&n->rx, &id, &len, tick_hz() / 10) || id >= NQ)
			continue;
		u64 f = n->dma + N_RXBUF + (u64)id * RXB + HDR;
		int hit = len >= HDR + 15 && be16_ld(f + 12) == ETH_JUNK && ld8(f + 14) == what;
		if (hit && mac)
			for (int i = 0; i < 6; i++)
				mac[i] = ld8(f + 6 + i);
		rx_post(n, (u16)id);
		nw(n, R_NOTIFY, 0);
		if (hit)
			return 1;
	}
	return 0;
}

/* The receiver's RX: chain 4 (the J's) reposted, a protocol frame lands in its header piece. */
static int rm_hear_special(struct ndev *n, u8 what, u64 wait)
{
	u64 hb = n->dma + N_SCRATCH, t0 = now_ticks();
	u32 id, len;
	while (now_ticks() - t0 < wait) {
		if (!used_next(&n->rx, &id, &len, tick_hz() / 10))
			continue;
		int hit = id == 4 * RM_STRIDE && ld8(hb + 128 * 4 + HDR + 14) == what;
		publish(&n->rx, 4 * RM_STRIDE);
		nw(n, R_NOTIFY, 0);
		if (hit)
			return 1;
	}
	return 0;
}

static int rm_rx_used;        /* cmdline net-remap-rx-used: frame 3 has our RX used ring page too */

static void phase_net_remap(void)
{
	u64 mism0 = mismatches;
	const char *w = "remap";
	struct ndev *n = &ndevs[0];
	if (!dt_nnet) {
		mismatch("net-remap without a network card", 0, 0, 1);
		return;
	}
	memset(n, 0, sizeof(*n));
	n->slot = 4;
	n->mmio = VIO_BASE + 4 * VIO_STRIDE;
	n->dma = NET_DMA;
	net_config(n, 0);
	int sender = (n->ip & 0xff) == 9;
	u64 pg = n->dma + 0x80000;                 /* RM_FRAMES * RM_PAGES pages */
	u64 ok = 0;
	if (sender) {
		net_up(n, 0);
		ncheck(n, w, "heard the receiver", 0, rm_hear(n, 'H', n->peer_mac, 60 * tick_hz()), 1);
		u64 h = n->dma + N_TXBUF + 0x9000;
		for (int k = 0; k < RM_FRAMES; k++) {
			vhdr(h, 0, 1 /* TCPV4 */, 54, 1448, 0, 0);
			fill(h + HDR, 54, 0);
			eth(h + HDR, n->peer_mac, n->mac, ETH_IP);
			struct seg s[1 + RM_PAGES];
			s[0] = (struct seg){ h, HDR + 54, 0 };
			for (int i = 0; i < RM_PAGES; i++) {
				u64 p = pg + 4096UL * (k * RM_PAGES + i);
				fill(p, 4096, rm_pat(k, i));
				s[1 + i] = (struct seg){ p, 4096, 0 };
			}
			ok += tx_expect_used(n, "TSO frame of whole pages", k, tx_post(n, s, 1 + RM_PAGES), 0);
			if (k == 0)                    /* frame 0: junk over our pages at once */
				fill(pg, 4096UL * RM_PAGES, 0xEE);
		}
		{                                     /* frame 3: our rings and RX buffers */
			const u64 own[RM_PAGES] = { n->tx.desc, n->tx.avail, n->tx.used, n->rx.desc, n->rx.avail,
						    rm_rx_used ? n->rx.used : n->dma + 0x7000,
						    n->dma + N_RXBUF, n->dma + N_RXBUF + 0x1000, n->dma + N_RXBUF + 0x2000,
						    n->dma + N_RXBUF + 0x3000, n->dma + N_TXBUF + 0x9000 };
			struct seg s[1 + RM_PAGES];
			s[0] = (struct seg){ h, HDR + 54, 0 };
			for (int i = 0; i < RM_PAGES; i++)
				s[1 + i] = (struct seg){ own[i], 4096, 0 };
			ok += tx_expect_used(n, "TSO frame of our own ring pages", 3, tx_post(n, s, 1 + RM_PAGES), 0);
		}
		rm_say(n, 'J');
		if (!ncheck(n, w, "heard the receiver's sum", 0, rm_hear(n, 'S', 0, 10 * tick_hz()), 1)) {
			puts_("hostile: remap diag rx.used.idx=");
			put_dec(ld16(n->rx.used + 2));
			puts_(" shadow=");
			put_dec(n->rx.used_idx);
			puts_(" rx.avail.idx=");
			put_dec(ld16(n->rx.avail + 2));
			puts_(" tx.used.idx=");
			put_dec(ld16(n->tx.used + 2));
			puts_(" tx shadow=");
			put_dec(n->tx.used_idx);
			for (int b = 0; b < 8; b++) {
				puts_(" buf");
				put_dec(b);
				puts_("=");
				put_hex(ld64(n->dma + N_RXBUF + (u64)b * RXB + HDR + 12));
			}
			puts_("\n");
		}
		rm_say(n, 'T');
		ncheck(n, w, "heard the receiver's writes", 0, rm_hear(n, 'W', 0, 20 * tick_hz()), 1);
		checks++;
		for (int k = 0; k < RM_FRAMES; k++)
			for (int i = 0; i < RM_PAGES; i++)
				for (u64 a = 0; a < 4096; a += 64) {
					u64 p = pg + 4096UL * (k * RM_PAGES + i) + a;
					u8 want = k == 0 ? 0xEE : rm_pat(k, i);
					if (ld8(p) != want) {
						nmis(n, w, "sender's page after the receiver wrote its copy", p, ld8(p), want);
						k = RM_FRAMES, i = RM_PAGES;
						break;
					}
				}
	} else {
		net_extra_feat = 1u << 7;              /* GUEST_TSO4: TSO frames come in whole */
		net_up(n, NUP_NO_RXBUFS);
		u64 hb = n->dma + N_SCRATCH;           /* 4 x 66-byte header pieces */
		u64 rb = pg;                            /* 4 chains' pages */
		for (int c = 0; c < 5; c++) {
			u16 d0 = (u16)(c * RM_STRIDE);
			put_desc(&n->rx, d0, hb + 128UL * c, HDR + 54, D_WRITE | D_NEXT, d0 + 1);
			for (int i = 0; i < RM_PAGES; i++)
				put_desc(&n->rx, d0 + 1 + i, rb + 4096UL * (c * RM_PAGES + i), 4096,
					 D_WRITE | (i + 1 < RM_PAGES ? D_NEXT : 0), d0 + 2 + i);
			if (c < 4)
				fill(rb + 4096UL * c * RM_PAGES, 4096UL * RM_PAGES, 0x11);
			publish(&n->rx, d0);
		}
		nw(n, R_NOTIFY, 0);
		/* hello until the three frames and the sender's 'J' are in */
		u64 t0 = now_ticks(), last = 0;
		int got = 0;
		while (got < RM_FRAMES + 2 && now_ticks() - t0 < 60 * tick_hz()) {
			if (now_ticks() - last > tick_hz() / 2 && got == 0) {
				rm_say(n, 'H');
				last = now_ticks();
			}
			u32 id, len;
			if (!used_next(&n->rx, &id, &len, tick_hz() / 20))
				continue;
			int c = (int)id / RM_STRIDE;
			ncheck(n, w, "RX used id (a chain head)", got, id % RM_STRIDE, 0);
			if (got <= RM_FRAMES) {
				ncheck(n, w, "TSO frame length", got, len, HDR + 54 + 4096UL * RM_PAGES);
				ncheck(n, w, "num_buffers", got, ld16(hb + 128UL * c + 10), 1);
				ncheck(n, w, "gso_type", got, ld8(hb + 128UL * c + 1), 1);
			} else {
				ncheck(n, w, "the sender's J", got, ld8(hb + 128UL * c + HDR + 14), 'J');
			}
			got++;
		}
		ncheck(n, w, "frames received", 0, got, RM_FRAMES + 2);
		u64 f3 = rb + 4096UL * RM_FRAMES * RM_PAGES;
		u32 sum3 = rm_sum(f3, 4096UL * RM_PAGES);
		publish(&n->rx, 4 * RM_STRIDE);        /* (before S: the T may come at once) */
		nw(n, R_NOTIFY, 0);
		rm_say(n, 'S');
		ncheck(n, w, "heard the sender's T", 0, rm_hear_special(n, 'T', 20 * tick_hz()), 1);
		ncheck(n, w, "frame 3 (the sender's rings) unchanged since", 0, rm_sum(f3, 4096UL * RM_PAGES), sum3);
		checks++;
		for (int k = 0; k < RM_FRAMES && k < got; k++)
			for (int i = 0; i < RM_PAGES; i++)
				for (u64 a = 0; a < 4096; a += 64) {
					u64 p = rb + 4096UL * (k * RM_PAGES + i) + a;
					if (ld8(p) != rm_pat(k, i)) {
						nmis(n, w, "received page", p, ld8(p), rm_pat(k, i));
						k = RM_FRAMES, i = RM_PAGES;
						break;
					}
				}
		fill(rb, 4096UL * (RM_FRAMES + 1) * RM_PAGES, 0x33);   /* our copies: written */
		checks++;
		for (u64 a = rb; a < rb + 4096UL * (RM_FRAMES + 1) * RM_PAGES; a += 256)
			if (ld8(a) != 0x33) {
				nmis(n, w, "received page after our write", a, ld8(a), 0x33);
				break;
			}
		ok = got - 1;
		for (int i = 0; i < 3; i++)
			rm_say(n, 'W');
		/* (the sender may be slow to hear it: say it a while longer) */
		for (u64 t1 = now_ticks(); now_ticks() - t1 < tick_hz();)
			;
		rm_say(n, 'W');
	}
	puts_("hostile: net remap role=");
	puts_(sender ? "sender" : "receiver");
	puts_(" frames=");
	put_dec(ok);
	puts_(" mismatches=");
	put_dec(mismatches - mism0);
	puts_("\n");
}
