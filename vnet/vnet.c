/* The guest-facing virtio-net device: config space, TX parsing and validation, delivery into
 * RX (mergeable buffers, checksum fix-up, zero-copy remapping). See vnet.h. */
#include "vnet.h"

int vnet_remap_enabled = 1;
#include "fmt.h"
#include "bits.h"
#include "mb_string.h"

static void say(struct vnet *v, const char *fmt, uint64_t a, uint64_t c)
{
	if (!v->log || v->log_budget == 0)
		return;
	v->log_budget--;
	char msg[160];
	mb_snprintf(msg, sizeof(msg), fmt, a, c);
	v->log(v->ctx, msg);
}

/* ---- guest memory: rings and buffers through pmap/guestmem.c (as vblk) ---- */

static int gcopy(const struct vnet_guest *g, uint64_t gpa, void *buf, uint64_t len, int to_guest)
{
	return guestmem_copy(g, gpa, buf, len, to_guest);
}

/* Copies between buf and the byte stream of pieces p[0..n) at offset off. 0 or -1. */
static int pieces_copy(const struct vnet_guest *g, const struct vnet_piece *p, unsigned n, uint64_t off,
		       void *buf, uint64_t len, int to_guest)
{
	uint8_t *b = buf;
	for (unsigned i = 0; i < n && len; i++) {
		if (off >= p[i].len) {
			off -= p[i].len;
			continue;
		}
		uint64_t k = p[i].len - off < len ? p[i].len - off : len;
		if (gcopy(g, p[i].gpa + off, b, k, to_guest))
			return -1;
		b += k;
		len -= k;
		off = 0;
	}
	return len ? -1 : 0;
}

/* ---- config space (struct virtio_net_config: mac, status, max_virtqueue_pairs, mtu) ---- */

static int config_read(struct vmmio_dev *d, uint32_t off, int size, uint64_t *val)
{
	struct vnet *v = d->opaque;
	uint8_t cfg[12];
	memcpy(cfg, v->mac, 6);
	cfg[6] = VNET_S_LINK_UP;
	cfg[7] = 0;
	cfg[8] = 1;                       /* one queue pair */
	cfg[9] = 0;
	cfg[10] = (uint8_t)v->mtu;
	cfg[11] = (uint8_t)(v->mtu >> 8);
	if (off + (uint32_t)size > sizeof(cfg))
		return -1;
	uint64_t x = 0;
	for (int i = size - 1; i >= 0; i--)
		x = x << 8 | cfg[off + i];
	*val = x;
	return 0;
}

/* ---- the header ---- */

static void hdr_decode(const uint8_t *b, struct vnet_hdr *h)
{
	h->flags = b[0];
	h->gso_type = b[1];
	h->hdr_len = (uint16_t)(b[2] | b[3] << 8);
	h->gso_size = (uint16_t)(b[4] | b[5] << 8);
	h->csum_start = (uint16_t)(b[6] | b[7] << 8);
	h->csum_offset = (uint16_t)(b[8] | b[9] << 8);
	h->num_buffers = (uint16_t)(b[10] | b[11] << 8);
}

static void hdr_encode(const struct vnet_hdr *h, uint8_t *b)
{
	uint16_t w[5] = { h->hdr_len, h->gso_size, h->csum_start, h->csum_offset, h->num_buffers };
	b[0] = h->flags;
	b[1] = h->gso_type;
	for (int i = 0; i < 5; i++) {
		b[2 + 2 * i] = (uint8_t)w[i];
		b[3 + 2 * i] = (uint8_t)(w[i] >> 8);
	}
}

/* ---- TX: a popped chain into v->frame ---- */

/* 1: v->frame holds a frame to switch; 0: malformed (counted). Under v->lock. */
static int tx_parse(struct vnet *v)
{
	const struct virtq_chain *c = &v->txc;
	struct vnet_frame *f = &v->frame;
	uint64_t feat = vmmio_features(&v->mmio);
	f->from = v;
	f->npieces = 0;
	if (c->write_len) {
		say(v, "virtio-net: TX chain with %lu device-writable bytes (head %lu): dropped", c->write_len, c->head);
		goto bad;
	}
	if (c->read_len < VNET_HDR_LEN + VNET_ETH_HLEN) {
		say(v, "virtio-net: TX chain of %lu bytes: no room for the header and an Ethernet header: dropped", c->read_len, 0);
		goto bad;
	}
	for (unsigned i = 0; i < c->nread; i++)
		f->piece[i] = (struct vnet_piece){ c->seg[i].gpa, c->seg[i].len };
	uint8_t b[VNET_HDR_LEN + 12];
	if (pieces_copy(&v->guest, f->piece, c->nread, 0, b, sizeof(b), 0))
		goto bad;
	hdr_decode(b, &f->hdr);
	memcpy(f->dst, b + VNET_HDR_LEN, 6);
	memcpy(f->src, b + VNET_HDR_LEN + 6, 6);
	uint64_t len = c->read_len - VNET_HDR_LEN;
	struct vnet_hdr *h = &f->hdr;
	uint8_t gso = h->gso_type;
	if (gso == VNET_GSO_NONE) {
		if (len > (uint64_t)v->mtu + VNET_ETH_HLEN + VNET_VLAN_HLEN) {
			say(v, "virtio-net: TX frame of %lu bytes over the MTU %lu: dropped", len, v->mtu);
			goto bad;
		}
		h->gso_size = 0;
	} else if (!((gso == VNET_GSO_TCPV4 && (feat & VNET_F_HOST_TSO4)) ||
		     (gso == VNET_GSO_TCPV6 && (feat & VNET_F_HOST_TSO6))) || !h->gso_size ||
		   len > VNET_GSO_FRAME_MAX) {
		say(v, "virtio-net: TX GSO frame (type %lu, %lu bytes) not negotiated or too big: dropped", gso, len);
		goto bad;
	}
	if (h->flags & VNET_HDR_F_NEEDS_CSUM) {
		if (!(feat & VNET_F_CSUM) || (uint64_t)h->csum_start + h->csum_offset + 2 > len) {
			say(v, "virtio-net: TX checksum offload at %lu + %lu not negotiated or past the frame: dropped",
			    h->csum_start, h->csum_offset);
			goto bad;
		}
	} else {
		h->csum_start = h->csum_offset = 0;
	}
	h->flags &= VNET_HDR_F_NEEDS_CSUM;      /* DATA_VALID means nothing on TX */
	h->num_buffers = 0;
	f->len = (uint32_t)len;
	/* the frame: the readable part after the virtio header */
	uint64_t skip = VNET_HDR_LEN;
	for (unsigned i = 0; i < c->nread; i++) {
		const struct virtq_seg *s = &c->seg[i];
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		f->piece[f->npieces++] = (struct vnet_piece){ s->gpa + skip, (uint32_t)(s->len - skip) };
		skip = 0;
	}
	return 1;
bad:
	v->st.drop_malformed++;
	return 0;
}

unsigned vnet_tx_run(struct vnet *v)
{
	unsigned frames = 0;
	int want_irq = 0;
	spin_lock(&v->tx_lock);
	if (v->blocked_on && !v->force_drop) {
		spin_unlock(&v->tx_lock);
		return 0;                         /* still waiting for the receiver's buffers */
	}
	v->blocked_on = 0;
	for (uint32_t budget = VNET_QUEUE_MAX; budget; budget--) {
		spin_lock(&v->lock);
		struct vmmio_queue *mq = &v->mmio.q[VNET_TXQ];
		if (!(v->mmio.status & VMMIO_S_DRIVER_OK) || (v->mmio.status & VMMIO_S_NEEDS_RESET) || !mq->vq.ready) {
			spin_unlock(&v->lock);
			break;
		}
		if (budget == VNET_QUEUE_MAX && mq->vq.size < budget)
			budget = mq->vq.size;     /* one queue's worth per kick, as vblk */
		mq->vq.max_len = VNET_CHAIN_MAX;
		uint32_t epoch = mq->epoch, gen = v->gen;
		int r = virtq_pop(&mq->vq, &v->txc);
		if (r < 0) {
			v->st.broken_queues++;
			say(v, "virtio-net: the driver broke its TX queue (virtq error %ld): device needs reset",
			    (uint64_t)(int64_t)r, 0);
			vmmio_needs_reset(&v->mmio);
			spin_unlock(&v->lock);
			break;
		}
		if (r == 0) {
			spin_unlock(&v->lock);
			break;
		}
		uint16_t head = v->txc.head;
		int ok = tx_parse(v);
		spin_unlock(&v->lock);
		if (ok && v->sw)
			vnet_switch_send(v->sw, &v->frame);
		if (ok && v->blocked_on) {
			/* the receiver has no buffers: the chain goes back, TX waits for it */
			spin_lock(&v->lock);
			if (mq->epoch == epoch && v->gen == gen && mq->vq.ready)
				virtq_unpop(&mq->vq);
			else
				v->blocked_on = 0;        /* the queue was reset meanwhile: nothing waits */
			spin_unlock(&v->lock);
			break;
		}
		if (ok) {
			v->st.tx_frames++;
			v->st.tx_bytes += v->frame.len;
			frames++;
		}
		spin_lock(&v->lock);
		if (mq->epoch == epoch && v->gen == gen && mq->vq.ready) {
			int p = virtq_push(&mq->vq, head, 0);
			if (p > 0)
				want_irq = 1;
		}
		spin_unlock(&v->lock);
	}
	if (want_irq) {
		spin_lock(&v->lock);
		v->st.interrupts++;
		vmmio_used_buffer(&v->mmio);
		spin_unlock(&v->lock);
	}
	v->force_drop = 0;
	spin_unlock(&v->tx_lock);
	return frames;
}

/* ---- RX: delivering a frame ---- */

/* Ones' complement sum of the sender's frame bytes [from, len), for a receiver that did not
 * negotiate GUEST_CSUM: the field already holds the pseudo-header sum (NEEDS_CSUM). */
static int frame_csum(const struct vnet_frame *f, uint8_t *bounce, uint16_t *out)
{
	uint64_t sum = 0, off = 0, pos = f->hdr.csum_start;
	for (unsigned i = 0; i < f->npieces; i++) {
		uint64_t a = off, z = off + f->piece[i].len;
		off = z;
		if (z <= pos)
			continue;
		if (a < pos)
			a = pos;
		while (a < z) {
			uint64_t n = z - a < PAGE_SIZE ? z - a : PAGE_SIZE;
			if (gcopy(&f->from->guest, f->piece[i].gpa + (a - (off - f->piece[i].len)), bounce, n, 0))
				return -1;
			for (uint64_t k = 0; k < n; k++)
				sum += ((a + k - pos) & 1) ? bounce[k] : (uint64_t)bounce[k] << 8;
			a += n;
		}
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	uint16_t c = (uint16_t)~sum;
	*out = c;
	return 0;
}

int vnet_frame_linearize(const struct vnet_frame *f, uint8_t *buf, uint32_t cap)
{
	if (f->len > cap || f->len < VNET_ETH_HLEN || f->hdr.gso_type != VNET_GSO_NONE)
		return -1;
	if (f->data)
		memcpy(buf, f->data, f->len);
	else if (!f->from || pieces_copy(&f->from->guest, f->piece, f->npieces, 0, buf, f->len, 0))
		return -1;
	if (f->hdr.flags & VNET_HDR_F_NEEDS_CSUM) {
		uint32_t start = f->hdr.csum_start, at = start + f->hdr.csum_offset;
		if (at + 2 > f->len)
			return -1;
		/* the field holds the pseudo-header's sum: fold in everything from csum_start */
		uint64_t sum = 0;
		for (uint32_t k = start; k < f->len; k++)
			sum += ((k - start) & 1) ? buf[k] : (uint64_t)buf[k] << 8;
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		uint16_t c = (uint16_t)~sum;
		if (!c)
			c = 0xffff;               /* as Linux does: 0 means "no checksum" to UDP */
		buf[at] = (uint8_t)(c >> 8);
		buf[at + 1] = (uint8_t)c;
	}
	return (int)f->len;
}

/* Gives back the popped RX chains, newest first (none was pushed). */
static void rx_unpop(struct virtq *q, unsigned nb)
{
	while (nb--)
		virtq_unpop(q);
}

static int deliver_locked(struct vnet *v, const struct vnet_frame *f, int may_wait)
{
	struct vmmio_queue *mq = &v->mmio.q[VNET_RXQ];
	struct virtq *q = &mq->vq;
	if (!(v->mmio.status & VMMIO_S_DRIVER_OK) || (v->mmio.status & VMMIO_S_NEEDS_RESET) || !q->ready) {
		v->st.drop_no_rxbuf++;
		return 0;
	}
	uint64_t feat = vmmio_features(&v->mmio);
	struct vnet_hdr h = f->hdr;
	if (h.gso_type != VNET_GSO_NONE &&
	    !((h.gso_type == VNET_GSO_TCPV4 && (feat & VNET_F_GUEST_TSO4)) ||
	      (h.gso_type == VNET_GSO_TCPV6 && (feat & VNET_F_GUEST_TSO6)))) {
		v->st.drop_offload++;
		return 0;
	}
	if (!f->from) {
		h = (struct vnet_hdr){ 0 };     /* from the uplink: a plain frame */
		if (!f->data || f->npieces != 1 || f->piece[0].len != f->len) {
			v->st.drop_malformed++;
			return 0;
		}
	}
	int csum_fix = (h.flags & VNET_HDR_F_NEEDS_CSUM) && !(feat & VNET_F_GUEST_CSUM);
	int mrg = !!(feat & VNET_F_MRG_RXBUF);
	uint64_t need = VNET_HDR_LEN + (uint64_t)f->len, have = 0;
	unsigned nb = 0, np = 0;

	/* take buffers until the frame fits */
	while (have < need) {
		if (nb == VNET_RX_BUFS || (!mrg && nb == 1))
			goto no_buf;
		int r = virtq_pop(q, &v->rxc);
		if (r < 0) {
			v->st.broken_queues++;
			v->st.drop_no_rxbuf++;
			say(v, "virtio-net: the driver broke its RX queue (virtq error %ld): device needs reset",
			    (uint64_t)(int64_t)r, 0);
			vmmio_needs_reset(&v->mmio);
			return 0;
		}
		if (r == 0)
			goto no_buf;
		const struct virtq_chain *c = &v->rxc;
		if (nb == 0 && c->write_len < VNET_HDR_LEN) {
			/* no room for the header: returned unused at once (nothing else is popped) */
			v->st.rx_bad_bufs++;
			say(v, "virtio-net: RX buffer of %lu writable bytes (head %lu): returned unused", c->write_len, c->head);
			if (virtq_push(q, c->head, 0) > 0) {
				v->st.interrupts++;
				vmmio_used_buffer(&v->mmio);
			}
			continue;
		}
		if (np + (c->nseg - c->nread) > VNET_RX_PIECES) {
			virtq_unpop(q);
			goto no_buf;
		}
		if (!c->write_len)
			v->st.rx_bad_bufs++;    /* readable only: carries nothing, used with length 0 */
		v->rxb[nb].head = c->head;
		v->rxb[nb].first = (uint16_t)np;
		v->rxb[nb].n = (uint16_t)(c->nseg - c->nread);
		v->rxb[nb].len = (uint32_t)(c->write_len > need - have ? need - have : c->write_len);
		for (unsigned i = c->nread; i < c->nseg; i++)
			v->rxp[np++] = (struct vnet_piece){ c->seg[i].gpa, c->seg[i].len };
		have += c->write_len;
		nb++;
	}

	/* the header */
	if (csum_fix) {
		h.flags = 0;
		h.csum_start = h.csum_offset = 0;
	}
	h.num_buffers = (uint16_t)(mrg ? nb : 1);
	uint8_t hb[VNET_HDR_LEN];
	hdr_encode(&h, hb);
	if (pieces_copy(&v->guest, v->rxp, np, 0, hb, VNET_HDR_LEN, 1))
		goto no_mem;

	/* the data: sender pieces against receiver pieces, at most a page at a time (a frame
	 * from the uplink is one piece of monitor memory, copied straight in) */
	uint8_t *bounce = f->from ? f->from->bounce : 0;
	unsigned si = 0, di = 0;
	uint64_t soff = 0, doff = VNET_HDR_LEN, left = f->len, remapped = 0, copied = 0;
	while (di < np && doff >= v->rxp[di].len)
		doff -= v->rxp[di++].len;
	while (left) {
		while (si < f->npieces && soff == f->piece[si].len)
			si++, soff = 0;
		while (di < np && doff == v->rxp[di].len)
			di++, doff = 0;
		if (si == f->npieces || di == np)
			goto no_mem;            /* cannot happen: lengths were checked */
		uint64_t sg = f->piece[si].gpa + soff, dg = v->rxp[di].gpa + doff;
		uint64_t n = f->piece[si].len - soff;
		if (n > v->rxp[di].len - doff)
			n = v->rxp[di].len - doff;
		if (n > PAGE_SIZE - (sg & (PAGE_SIZE - 1)))
			n = PAGE_SIZE - (sg & (PAGE_SIZE - 1));
		if (n > PAGE_SIZE - (dg & (PAGE_SIZE - 1)))
			n = PAGE_SIZE - (dg & (PAGE_SIZE - 1));
		if (f->data) {
			if (gcopy(&v->guest, dg, (void *)(uintptr_t)(f->data + (f->len - left)), n, 1))
				goto no_mem;
			copied += n;
		} else if (n == PAGE_SIZE && vnet_remap_enabled && !vnet_remap_page(&f->from->guest, sg, &v->guest, dg, &v->batch)) {
			remapped += n;
		} else {
			if (gcopy(&f->from->guest, sg, bounce, n, 0) || gcopy(&v->guest, dg, bounce, n, 1))
				goto no_mem;
			copied += n;
		}
		soff += n;
		doff += n;
		left -= n;
	}
	if (csum_fix) {
		uint16_t c;
		uint8_t cb[2];
		if (frame_csum(f, bounce, &c))
			goto no_mem;
		cb[0] = (uint8_t)(c >> 8);        /* network order */
		cb[1] = (uint8_t)c;
		if (pieces_copy(&v->guest, v->rxp, np,
				VNET_HDR_LEN + (uint64_t)f->hdr.csum_start + f->hdr.csum_offset, cb, 2, 1))
			goto no_mem;
		v->st.csum_filled++;
	}
	/* no TLB of the receiver reaches its old buffer pages before the driver sees the frame */
	pmap_batch_finish(&v->batch, v->guest.s2, v->guest.pages);
	int want_irq = 0;
	for (unsigned i = 0; i < nb; i++) {
		int p = virtq_push(q, v->rxb[i].head, v->rxb[i].len);
		if (p > 0)
			want_irq = 1;
	}
	if (want_irq) {
		v->st.interrupts++;
		vmmio_used_buffer(&v->mmio);
	}
	v->st.rx_frames++;
	v->st.rx_bytes += f->len;
	if (!f->from) {
		v->st.uplink_rx_frames++;
		v->st.uplink_rx_bytes += f->len;
	}
	v->st.remapped_bytes += remapped;
	v->st.remapped_pages += remapped / PAGE_SIZE;
	v->st.copied_bytes += copied;
	return 1;

no_buf:
	rx_unpop(q, nb);
	if (may_wait)
		return 2;
	v->st.drop_no_rxbuf++;
	return 0;
no_mem:
	pmap_batch_finish(&v->batch, v->guest.s2, v->guest.pages);
	rx_unpop(q, nb);
	v->st.drop_nomem++;
	return 0;
}

int vnet_deliver(struct vnet *v, const struct vnet_frame *f)
{
	spin_lock(&v->lock);
	int ok = deliver_locked(v, f, 0);
	spin_unlock(&v->lock);
	return ok;
}

int vnet_deliver_or_wait(struct vnet *v, const struct vnet_frame *f)
{
	spin_lock(&v->lock);
	int ok = deliver_locked(v, f, 1);
	spin_unlock(&v->lock);
	return ok;
}

/* ---- transport ---- */

static void notify(struct vmmio_dev *d, unsigned qi)
{
	struct vnet *v = d->opaque;
	if (qi == VNET_TXQ)
		v->tx_kicked = 1;               /* served by vnet_mmio once v->lock is dropped */
	else
		v->rx_kicked = 1;               /* senders blocked on us may go on (vnet_mmio) */
}

static void dev_reset(struct vmmio_dev *d)
{
	struct vnet *v = d->opaque;
	v->gen++;                         /* a TX chain popped before is not pushed */
	v->tx_kicked = 0;
}

static void dev_irq(struct vmmio_dev *d, int level)
{
	struct vnet *v = d->opaque;
	if (v->irq)
		v->irq(v->ctx, level);
}

static const struct vmmio_ops vnet_ops = { config_read, 0, notify, dev_reset, dev_irq };

#define VNET_FEATURES (VNET_F_CSUM | VNET_F_GUEST_CSUM | VNET_F_MTU | VNET_F_MAC | VNET_F_GUEST_TSO4 | \
		       VNET_F_GUEST_TSO6 | VNET_F_HOST_TSO4 | VNET_F_HOST_TSO6 | VNET_F_MRG_RXBUF | \
		       VNET_F_STATUS | VIRTQ_F_INDIRECT_DESC)

static void transport_init(struct vnet *v)
{
	vmmio_init(&v->mmio, 1 /* network card */, VNET_FEATURES & ~v->features_off, 2, VNET_QUEUE_MAX, &vnet_ops, v,
		   guestmem_ring, &v->guest);
	v->mmio.q[VNET_RXQ].vq.buf_ok = guestmem_buf_ok;
	v->mmio.q[VNET_TXQ].vq.buf_ok = guestmem_buf_ok;
	v->gen++;
	v->tx_kicked = 0;
}

void vnet_init(struct vnet *v, const struct vnet_guest *g, const uint8_t mac[6], unsigned mtu,
	       void (*irq)(void *, int), void (*log)(void *, const char *), void *ctx)
{
	memset(v, 0, sizeof(*v));
	v->guest = *g;
	v->port = -1;
	memcpy(v->mac, mac, 6);
	if (!mtu)
		mtu = VNET_MTU_DEFAULT;
	if (mtu < VNET_MTU_MIN)
		mtu = VNET_MTU_MIN;
	if (mtu > VNET_MTU_MAX)
		mtu = VNET_MTU_MAX;
	v->mtu = (uint16_t)mtu;
	v->irq = irq;
	v->log = log;
	v->ctx = ctx;
	v->log_budget = 50;
	transport_init(v);
}

void vnet_limit_features(struct vnet *v, uint64_t off)
{
	spin_lock(&v->lock);
	v->features_off = off;
	transport_init(v);
	spin_unlock(&v->lock);
}

int vnet_mmio(struct vnet *v, uint64_t off, int size, int write, uint64_t *val)
{
	spin_lock(&v->lock);
	int rc = vmmio_access(&v->mmio, off, size, write, val);
	int kicked = v->tx_kicked, rx = v->rx_kicked;
	v->tx_kicked = v->rx_kicked = 0;
	spin_unlock(&v->lock);
	if (rx && v->sw)
		vnet_switch_unblock(v->sw, v);
	if (kicked)
		vnet_tx_run(v);
	return rc;
}

void vnet_reset(struct vnet *v)
{
	spin_lock(&v->lock);
	if (v->mmio.int_status && v->irq)
		v->irq(v->ctx, 0);
	transport_init(v);
	v->log_budget = 50;
	spin_unlock(&v->lock);
}
