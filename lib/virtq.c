/* virtq: device side of a virtio 1.x split virtqueue.  See virtq.h for the contract.
 *
 * Layout (spec 2.7): descriptor table of size 16-byte entries {le64 addr, le32 len, le16 flags,
 * le16 next}; available ring {le16 flags, le16 idx, le16 ring[size], le16 used_event};
 * used ring {le16 flags, le16 idx, {le32 id, le32 len} ring[size], le16 avail_event}.
 * Both targets (AArch64 and the x86-64/AArch64 host) are little-endian, so fields are read as
 * native integers.
 */
#include "virtq.h"
#include "mb_string.h"

#define DESC_SIZE 16u

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static inline bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static uint64_t avail_bytes(const struct virtq *q)
{
	return 4 + 2ull * q->size + 2;   /* used_event included (always: harmless when unused) */
}

static uint64_t used_bytes(const struct virtq *q)
{
	return 4 + 8ull * q->size + 2;   /* avail_event included */
}

/* Maps [gpa, gpa + len) and checks the host pointer's alignment (atomic accesses need it). */
static void *map(const struct virtq *q, uint64_t gpa, uint64_t len, int write, uintptr_t align,
		 int *err)
{
	if (gpa + len < gpa) {
		*err = VIRTQ_E_RING_MAP;
		return NULL;
	}
	void *p = q->gpa_to_hva(q->ctx, gpa, len, write);
	if (!p) {
		*err = VIRTQ_E_RING_MAP;
		return NULL;
	}
	if ((uintptr_t)p & (align - 1)) {
		*err = VIRTQ_E_ALIGN;
		return NULL;
	}
	return p;
}

int virtq_init(struct virtq *q, uint32_t size, uint64_t desc_gpa, uint64_t avail_gpa,
	       uint64_t used_gpa, uint64_t features, virtq_gpa_to_hva_fn gpa_to_hva, void *ctx)
{
	virtq_buf_ok_fn buf_ok = q->buf_ok;
	memset(q, 0, sizeof(*q));
	q->buf_ok = buf_ok;
	q->size = size;
	q->desc_gpa = desc_gpa;
	q->avail_gpa = avail_gpa;
	q->used_gpa = used_gpa;
	q->features = features & (VIRTQ_F_INDIRECT_DESC | VIRTQ_F_EVENT_IDX);
	q->gpa_to_hva = gpa_to_hva;
	q->ctx = ctx;
	q->max_len = VIRTQ_DEFAULT_MAX_LEN;
	if (!gpa_to_hva || !is_pow2(size) || size > VIRTQ_MAX_SIZE)
		return VIRTQ_E_CONFIG;
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3))
		return VIRTQ_E_CONFIG;
	int err;
	if (!map(q, desc_gpa, (uint64_t)DESC_SIZE * size, 0, 1, &err) ||
	    !map(q, avail_gpa, avail_bytes(q), 0, 2, &err) ||
	    !map(q, used_gpa, used_bytes(q), 1, 4, &err))
		return VIRTQ_E_CONFIG;
	q->ready = true;
	return VIRTQ_OK;
}

/* Reads avail.idx once (acquire: ring entries and descriptors are read after it). */
static int read_avail_idx(struct virtq *q, uint16_t *idx)
{
	int err;
	uint16_t *p = map(q, q->avail_gpa + 2, 2, 0, 2, &err);
	if (!p)
		return err;
	*idx = __atomic_load_n(p, __ATOMIC_ACQUIRE);
	return VIRTQ_OK;
}

int virtq_pending(struct virtq *q)
{
	if (!q->ready)
		return VIRTQ_E_NOT_READY;
	if (q->broken)
		return q->broken;
	uint16_t idx;
	int r = read_avail_idx(q, &idx);
	if (r)
		return r;
	uint16_t n = idx - q->last_avail_idx;
	if (n > q->size)
		return VIRTQ_E_AVAIL_IDX;
	return n;
}

static void decode(struct vdesc *d, const void *p)
{
	uint8_t raw[DESC_SIZE];
	memcpy(raw, p, DESC_SIZE);       /* one read of the guest's bytes; decode the copy */
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
}

static int read_desc(struct virtq *q, uint16_t i, struct vdesc *d)
{
	int err;
	void *p = map(q, q->desc_gpa + (uint64_t)DESC_SIZE * i, DESC_SIZE, 0, 1, &err);
	if (!p)
		return err;
	decode(d, p);
	return VIRTQ_OK;
}

/* Appends one buffer descriptor (not an indirect one) to the chain. */
static int add_buf(struct virtq *q, struct virtq_chain *c, const struct vdesc *d, bool *seen_write)
{
	bool w = d->flags & VIRTQ_DESC_F_WRITE;
	if (w)
		*seen_write = true;
	else if (*seen_write)
		return VIRTQ_E_ORDER;
	if (d->len == 0)
		return VIRTQ_OK;          /* nothing to transfer: no segment, no mapping */
	/* totals are sums of at most 32768 * 1024 u32 lengths: no u64 overflow */
	if (c->read_len + c->write_len + d->len > q->max_len)
		return VIRTQ_E_TOO_LONG;
	if (c->nseg >= VIRTQ_MAX_SEGS)
		return VIRTQ_E_TOO_MANY;
	if (d->addr + d->len < d->addr)
		return VIRTQ_E_BUF_MAP;
	void *p = NULL;
	if (q->buf_ok) {
		if (!q->buf_ok(q->ctx, d->addr, d->len, w))
			return VIRTQ_E_BUF_MAP;
	} else if (!(p = q->gpa_to_hva(q->ctx, d->addr, d->len, w))) {
		return VIRTQ_E_BUF_MAP;
	}
	struct virtq_seg *s = &c->seg[c->nseg++];
	s->gpa = d->addr;
	s->hva = p;
	s->len = d->len;
	s->write = w;
	if (w) {
		c->write_len += d->len;
	} else {
		c->nread++;
		c->read_len += d->len;
	}
	return VIRTQ_OK;
}

/* Walks the indirect table that descriptor d points to (d has INDIRECT, not NEXT). */
static int walk_indirect(struct virtq *q, struct virtq_chain *c, const struct vdesc *d,
			 bool *seen_write)
{
	if (!(q->features & VIRTQ_F_INDIRECT_DESC))
		return VIRTQ_E_INDIRECT_OFF;
	if (d->flags & VIRTQ_DESC_F_NEXT)
		return VIRTQ_E_INDIRECT_NEXT;
	if (d->len == 0 || d->len % DESC_SIZE || d->len / DESC_SIZE > VIRTQ_MAX_INDIRECT)
		return VIRTQ_E_INDIRECT_LEN;
	uint32_t count = d->len / DESC_SIZE;
	if (d->addr + d->len < d->addr)
		return VIRTQ_E_INDIRECT_MAP;
	const uint8_t *table = q->gpa_to_hva(q->ctx, d->addr, d->len, 0);
	if (!table)
		return VIRTQ_E_INDIRECT_MAP;
	uint32_t i = 0, walked = 0;
	for (;;) {
		struct vdesc e;
		if (++walked > count)
			return VIRTQ_E_LOOP;
		decode(&e, table + (uint64_t)DESC_SIZE * i);
		c->ndesc++;
		if (e.flags & VIRTQ_DESC_F_INDIRECT)
			return VIRTQ_E_INDIRECT_NEST;
		int r = add_buf(q, c, &e, seen_write);
		if (r)
			return r;
		if (!(e.flags & VIRTQ_DESC_F_NEXT))
			return VIRTQ_OK;
		i = e.next;
		if (i >= count)
			return VIRTQ_E_NEXT;
	}
}

static int walk(struct virtq *q, struct virtq_chain *c, uint16_t head)
{
	bool seen_write = false;
	uint32_t walked = 0;
	uint16_t i = head;
	c->head = head;
	c->nseg = c->nread = c->ndesc = 0;
	c->read_len = c->write_len = 0;
	if (head >= q->size)
		return VIRTQ_E_HEAD;
	for (;;) {
		struct vdesc d;
		if (++walked > q->size)
			return VIRTQ_E_LOOP;
		int r = read_desc(q, i, &d);
		if (r)
			return r;
		c->ndesc++;
		/* an indirect descriptor ends the chain (it may not have NEXT); the spec allows
		 * direct descriptors before it, so accept them (its WRITE flag is ignored) */
		if (d.flags & VIRTQ_DESC_F_INDIRECT)
			return walk_indirect(q, c, &d, &seen_write);
		r = add_buf(q, c, &d, &seen_write);
		if (r)
			return r;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return VIRTQ_OK;
		if (d.next >= q->size)
			return VIRTQ_E_NEXT;
		i = d.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
	if (!q->ready)
		return VIRTQ_E_NOT_READY;
	if (q->broken)
		return q->broken;
	uint16_t idx;
	int r = read_avail_idx(q, &idx);
	if (!r) {
		uint16_t n = idx - q->last_avail_idx;
		if (n == 0)
			return 0;
		if (n > q->size) {
			r = VIRTQ_E_AVAIL_IDX;
		} else {
			uint16_t *slot = map(q, q->avail_gpa + 4 + 2ull * (q->last_avail_idx & (q->size - 1)),
					     2, 0, 2, &r);
			if (slot)
				r = walk(q, c, __atomic_load_n(slot, __ATOMIC_RELAXED));
		}
	}
	if (r) {
		q->broken = r;
		return r;
	}
	q->last_avail_idx++;
	return 1;
}

void virtq_unpop(struct virtq *q)
{
	q->last_avail_idx--;
}

/* Copies between buf and the chain's segments [first, last), starting off bytes into them. */
static size_t chain_copy(const struct virtq_chain *c, unsigned first, unsigned last, uint64_t off,
			 uint8_t *buf, size_t len, int to_guest)
{
	size_t done = 0;
	for (unsigned i = first; i < last && i < VIRTQ_MAX_SEGS && done < len; i++) {
		const struct virtq_seg *s = &c->seg[i];
		if (!s->hva)
			break;                /* checked only (buf_ok): the caller copies by gpa */
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		uint64_t n = s->len - off;
		if (n > len - done)
			n = len - done;
		if (to_guest)
			memcpy((uint8_t *)s->hva + off, buf + done, n);
		else
			memcpy(buf + done, (const uint8_t *)s->hva + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t virtq_chain_read(const struct virtq_chain *c, uint64_t off, void *buf, size_t len)
{
	return chain_copy(c, 0, c->nread, off, buf, len, 0);
}

size_t virtq_chain_write(const struct virtq_chain *c, uint64_t off, const void *buf, size_t len)
{
	return chain_copy(c, c->nread, c->nseg, off, (uint8_t *)(uintptr_t)buf, len, 1);
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	int err;
	if (!q->ready)
		return VIRTQ_E_NOT_READY;
	if (head >= q->size)
		return VIRTQ_E_HEAD;
	uint16_t old = q->used_idx, new = old + 1;
	uint32_t *elem = map(q, q->used_gpa + 4 + 8ull * (old & (q->size - 1)), 8, 1, 4, &err);
	if (!elem)
		return err;
	uint16_t *used_idx = map(q, q->used_gpa + 2, 2, 1, 2, &err);
	if (!used_idx)
		return err;
	__atomic_store_n(&elem[0], (uint32_t)head, __ATOMIC_RELAXED);
	__atomic_store_n(&elem[1], written, __ATOMIC_RELAXED);
	__atomic_store_n(used_idx, new, __ATOMIC_RELEASE);
	q->used_idx = new;
	/* the driver's suppression must be read after used.idx is visible */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->features & VIRTQ_F_EVENT_IDX) {
		uint16_t *ue = map(q, q->avail_gpa + 4 + 2ull * q->size, 2, 0, 2, &err);
		if (!ue)
			return err;
		uint16_t event = __atomic_load_n(ue, __ATOMIC_RELAXED);
		/* vring_need_event: did [old, new) cross event? */
		return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
	}
	uint16_t *flags = map(q, q->avail_gpa, 2, 0, 2, &err);
	if (!flags)
		return err;
	return !(__atomic_load_n(flags, __ATOMIC_RELAXED) & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

int virtq_notify_enable(struct virtq *q, bool on)
{
	int err;
	if (!q->ready)
		return VIRTQ_E_NOT_READY;
	if (q->features & VIRTQ_F_EVENT_IDX) {
		if (on) {
			uint16_t *ae = map(q, q->used_gpa + 4 + 8ull * q->size, 2, 1, 2, &err);
			if (!ae)
				return err;
			__atomic_store_n(ae, q->last_avail_idx, __ATOMIC_RELAXED);
		}
	} else {
		uint16_t *flags = map(q, q->used_gpa, 2, 1, 2, &err);
		if (!flags)
			return err;
		__atomic_store_n(flags, (uint16_t)(on ? 0 : VIRTQ_USED_F_NO_NOTIFY), __ATOMIC_RELAXED);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return VIRTQ_OK;
}

const char *virtq_strerror(int err)
{
	switch (err) {
	case VIRTQ_OK:              return "ok";
	case VIRTQ_E_CONFIG:        return "bad queue configuration (size, alignment, or ring outside RAM)";
	case VIRTQ_E_AVAIL_IDX:     return "avail.idx more than queue size ahead";
	case VIRTQ_E_RING_MAP:      return "ring or descriptor table entry outside guest RAM";
	case VIRTQ_E_ALIGN:         return "ring index at a misaligned host address";
	case VIRTQ_E_HEAD:          return "head index out of range";
	case VIRTQ_E_NEXT:          return "next index out of range";
	case VIRTQ_E_LOOP:          return "descriptor chain loops";
	case VIRTQ_E_ORDER:         return "device-readable descriptor after a writable one";
	case VIRTQ_E_BUF_MAP:       return "buffer outside guest RAM";
	case VIRTQ_E_TOO_MANY:      return "too many segments";
	case VIRTQ_E_TOO_LONG:      return "chain too long (bytes)";
	case VIRTQ_E_INDIRECT_OFF:  return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
	case VIRTQ_E_INDIRECT_NEST: return "indirect descriptor inside an indirect table";
	case VIRTQ_E_INDIRECT_NEXT: return "indirect descriptor with NEXT";
	case VIRTQ_E_INDIRECT_LEN:  return "bad indirect table length";
	case VIRTQ_E_INDIRECT_MAP:  return "indirect table outside guest RAM";
	case VIRTQ_E_NOT_READY:     return "queue not configured";
	default:                    return "unknown virtq error";
	}
}
